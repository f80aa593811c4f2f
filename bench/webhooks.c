/*
 * webhooks.c - bench-webhooks: a load generator for inbound-svc's WhatsApp webhook (issue 5).
 *
 * It plays Meta's side: N keep-alive connections post signed WhatsApp Cloud API deliveries for
 * a fixed time, then it watches the databases until every acknowledged message is stored.  One
 * run reports both halves of the pipeline of SPEC 5: how fast deliveries are verified, stored
 * and answered (acks/s, 201 answers, with p50/p99 latency), and how fast the workers turn them
 * into messages (messages stored per second, from the first request until the last message of
 * an acknowledged delivery is in parley_messaging).
 *
 * Deliveries follow the documented envelope (object, entry[], changes[], value with
 * messaging_product, metadata, contacts and messages or statuses) and vary as real traffic does:
 * many customers (wa_ids) and a few business numbers, unique wamids, texts from two letters to
 * a few kilobytes with emoji and right-to-left script, replies with context, reactions,
 * locations, several messages in one delivery, several entries in one delivery, and statuses
 * (sent, delivered, read) of outbound messages the bench creates through the services before
 * the load.  No media messages: inbound-svc fetches each from the provider's API before storing
 * it, which would measure the provider (a local fake, or nothing) rather than Parley.  Each body
 * is signed with HMAC-SHA256 of its exact bytes (X-Hub-Signature-256) under
 * PARLEY_WHATSAPP_APP_SECRET, with inbound-svc's own signature.h.
 *
 * The client is one thread, non-blocking sockets and epoll, one request in flight per
 * connection (HTTP/1.1 keep-alive, no pipelining): on a 2-core machine the generator must cost
 * far less CPU than the service it measures.  Every request carries X-Request-Id
 * "bench-<run>-<n>", and every wamid starts with "wamid.BENCH<run>.", so the database polls
 * count this run's rows only, through existing indexes.
 *
 * Exit status: 0 when every answer was 201 and every acknowledged message was stored before the
 * deadline, 1 otherwise, 2 on bad usage or an unreachable database.  Targets are printed beside
 * the figures, never turned into the exit status.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../inbound-svc/signature.h"

#define TARGET_ACKS 5000.0
#define TARGET_PROCESSED 1500.0
#define IN_BUF 16384
#define MAX_STATUS 600
#define OUTBOUND_POOL 12
#define POLL_FAR_MS 500 /* polls cost the databases CPU: rare while much is left, */
#define POLL_NEAR_MS 50 /* frequent near the end, whose time is the measured one */
#define GRACE_NS (5 * NS_PER_S) /* answers still awaited after the load ends */
#define NS_PER_S 1000000000ull

/* A growable byte string. */
struct sbuf {
    char *p;
    size_t len, cap;
};

struct opts {
    int conns;
    int seconds;
    long max_deliveries; /* 0: as many as the time allows */
    int deadline;        /* seconds to wait for processing after the load */
    int customers;       /* distinct wa_ids */
    int businesses;      /* distinct phone_number_ids */
    int status_pct;      /* share of deliveries that carry statuses */
    const char *url;
    const char *secret;
    const char *messaging_db;
    const char *inbound_db;
    const char *service_token;
    const char *customer_url, *conversation_url, *messaging_url;
};

/* The payload generator's state. */
struct gen {
    uint64_t rng;
    char run[17];   /* this run's tag, in wamids and request ids */
    unsigned long next_msg;
    unsigned long requests;
    int customers, businesses, status_pct;
    int outbound; /* outbound messages created for statuses (0: no statuses) */
};

enum conn_state { C_IDLE, C_CONNECTING, C_SENDING, C_READING };

struct conn {
    int fd;
    enum conn_state st;
    uint32_t events; /* the epoll mask registered */
    struct sbuf out;
    size_t out_off;
    char in[IN_BUF];
    size_t in_len;
    uint64_t t_sent, retry_at;
    unsigned msgs; /* messages in the delivery in flight */
};

/* What the load phase saw. */
struct tally {
    unsigned long sent, acks, msgs_acked, transport, unanswered;
    unsigned long by_status[MAX_STATUS];
    uint32_t *lat_us; /* latency of every 201, microseconds */
    size_t lat_n, lat_cap;
    uint64_t t0, t_end;
};

struct target {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[300];
    char path[1024];
};

struct bench {
    struct opts o;
    struct gen g;
    struct target t;
    struct tally tl;
    struct conn *conns;
    int ep;
    bool stopping;
};

static const char *const phrases[] = {
    "Hi, is my order on its way?",
    "Hello! I would like to change my delivery address please",
    "Thanks, that worked 👍",
    "Can I pay by card when the courier arrives?",
    "مرحبا، أريد الاستفسار عن طلبي",
    "שלום, מתי החנות פתוחה?",
    "Guten Tag, die Rechnung fehlt noch.",
    "Bonjour, je n'ai pas reçu le colis 📦",
    "ok",
    "😀😃😄😁😆",
    "The app says payment failed but my bank shows the charge. Can you check?",
    "こんにちは、注文番号を忘れました",
};
#define N_PHRASES (sizeof(phrases) / sizeof(phrases[0]))

static const char *const first_names[] = { "Ada", "Yusuf", "Mei", "Olga", "Rahul", "Sofía",
                                           "Kwame", "Noa", "Léa", "Jonas", "Amira", "Tom" };
#define N_NAMES (sizeof(first_names) / sizeof(first_names[0]))

static const char *const statuses[] = { "sent", "delivered", "read" };

/* ---- small helpers ---------------------------------------------------------------------- */

static void
die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("bench-webhooks: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void
sb_reserve(struct sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    while (b->len + extra + 1 > b->cap)
        b->cap = b->cap ? 2 * b->cap : 4096;
    if ((b->p = realloc(b->p, b->cap)) == NULL)
        die("out of memory");
}

static void
sb_add(struct sbuf *b, const void *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* xorshift64*: fast, and good enough to pick payload shapes. */
static uint32_t
rnd(struct gen *g, uint32_t n)
{
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    return (uint32_t)((g->rng * 2685821657736338717ull) >> 33) % n;
}

/* ---- payloads --------------------------------------------------------------------------- */

/* The wa_id of customer i: a stable set of numbers, shared by every run. */
static void
wa_id(int i, char out[24])
{
    snprintf(out, 24, "49151%08d", 10000000 + i * 7);
}

/* The next unique wamid of this run (Meta's are opaque strings; these carry the run's tag). */
static void
next_wamid(struct gen *g, char out[64])
{
    snprintf(out, 64, "wamid.BENCH%s.%08lX", g->run, g->next_msg++);
}

static void
put_metadata(struct sbuf *b, int biz)
{
    sb_printf(b,
              "\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
              "\"1555000%04d\",\"phone_number_id\":\"10654035224%04d\"}",
              biz, biz);
}

static void
put_contact(struct sbuf *b, int cust)
{
    char id[24];

    wa_id(cust, id);
    sb_printf(b, "\"contacts\":[{\"profile\":{\"name\":\"%s %d\"},\"wa_id\":\"%s\"}]",
              first_names[cust % N_NAMES], cust, id);
}

/* A text body: usually a phrase, sometimes a long message of several. */
static void
put_text(struct gen *g, struct sbuf *b)
{
    int parts = rnd(g, 20) == 0 ? 10 + (int)rnd(g, 30) : 1;

    sb_add(b, "\"text\":{\"body\":\"", 16);
    for (int i = 0; i < parts; i++) {
        const char *p = phrases[rnd(g, N_PHRASES)];

        sb_printf(b, "%s%s", i ? " " : "", p);
    }
    sb_add(b, "\"}", 2);
}

/*
 * One message object from cust; prev is the wamid of an earlier message of the delivery (for
 * replies and reactions), or "".
 */
static void
put_message(struct gen *g, struct sbuf *b, int cust, const char *prev, char wamid[64])
{
    char from[24];
    uint32_t kind = rnd(g, 100);

    wa_id(cust, from);
    next_wamid(g, wamid);
    sb_printf(b, "{\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"%ld\",", from, wamid,
              (long)time(NULL));
    if (kind < 4 && prev[0] != '\0') {
        sb_printf(b, "\"type\":\"reaction\",\"reaction\":{\"message_id\":\"%s\",\"emoji\":\"%s\"}}",
                  prev, "❤️");
    } else if (kind < 8) { /* no media: each would be fetched from the provider first */
        sb_printf(b,
                  "\"type\":\"location\",\"location\":{\"latitude\":52.%04u,"
                  "\"longitude\":13.%04u,\"name\":\"Pickup point\","
                  "\"address\":\"Hauptstraße %u, Berlin\"}}",
                  rnd(g, 10000), rnd(g, 10000), 1 + rnd(g, 200));
    } else {
        if (kind < 20 && prev[0] != '\0')
            sb_printf(b, "\"context\":{\"from\":\"%s\",\"id\":\"%s\"},", from, prev);
        sb_add(b, "\"type\":\"text\",", 14);
        put_text(g, b);
        sb_add(b, "}", 1);
    }
}

/* One change with 1..n messages from one customer; returns the number of messages. */
static unsigned
put_message_change(struct gen *g, struct sbuf *b, int n)
{
    int cust = (int)rnd(g, (uint32_t)g->customers);
    char wamid[64] = "", prev[64] = "";

    sb_add(b, "{\"value\":{", 10);
    put_metadata(b, cust % g->businesses);
    sb_add(b, ",", 1);
    put_contact(b, cust);
    sb_add(b, ",\"messages\":[", 13);
    for (int i = 0; i < n; i++) {
        sb_add(b, i ? "," : "", i ? 1 : 0);
        put_message(g, b, cust, prev, wamid);
        memcpy(prev, wamid, sizeof(prev));
    }
    sb_add(b, "]},\"field\":\"messages\"}", 22);
    return (unsigned)n;
}

/*
 * One change with 1..3 statuses of the outbound messages made at setup.  The pricing
 * conversation id differs per delivery, so that two status deliveries are never the same bytes
 * (which inbound-svc would rightly answer as a redelivery).
 */
static void
put_status_change(struct gen *g, struct sbuf *b)
{
    int n = 1 + (int)rnd(g, 3);
    char to[24];

    wa_id(0, to);
    sb_add(b, "{\"value\":{", 10);
    put_metadata(b, 0);
    sb_add(b, ",\"statuses\":[", 13);
    for (int i = 0; i < n; i++)
        sb_printf(b,
                  "%s{\"id\":\"wamid.OUTBENCH%s.%02u\",\"status\":\"%s\",\"timestamp\":\"%ld\","
                  "\"recipient_id\":\"%s\",\"conversation\":{\"id\":\"CONV%s%lu\",\"origin\":"
                  "{\"type\":\"service\"}},\"pricing\":{\"billable\":true,\"pricing_model\":"
                  "\"CBP\",\"category\":\"service\"}}",
                  i ? "," : "", g->run, rnd(g, (uint32_t)g->outbound), statuses[i],
                  (long)time(NULL), to, g->run, g->requests);
    sb_add(b, "]},\"field\":\"messages\"}", 22);
}

/*
 * Writes one delivery into b (reset first) and returns the number of messages in it: 75% one
 * message, 12% two or three from one customer, 8% two entries, the rest statuses.
 */
static unsigned
gen_delivery(struct gen *g, struct sbuf *b)
{
    uint32_t shape = rnd(g, 100);
    int entries = shape >= 87 && shape < 95 ? 2 : 1;
    unsigned msgs = 0;

    b->len = 0;
    sb_add(b, "{\"object\":\"whatsapp_business_account\",\"entry\":[", 47);
    for (int e = 0; e < entries; e++) {
        sb_printf(b, "%s{\"id\":\"10200000%04d\",\"changes\":[", e ? "," : "", e);
        if (g->outbound > 0 && shape >= 100 - (uint32_t)g->status_pct)
            put_status_change(g, b);
        else
            msgs += put_message_change(g, b, shape >= 75 && shape < 87 ? 2 + (int)rnd(g, 2) : 1);
        sb_add(b, "]}", 2);
    }
    sb_add(b, "]}", 2);
    return msgs;
}

/* ---- setup: the outbound messages that the status deliveries refer to ------------------ */

static size_t
curl_sink(char *p, size_t size, size_t n, void *arg)
{
    sb_add(arg, p, size * n);
    return size * n;
}

/* POSTs body (taken) to base+path with the service token; returns the answer's "id" or NULL. */
static char *
svc_post(const struct opts *o, CURL *h, const char *base, const char *path, json_t *body)
{
    char url[512], hdr[256], *text = json_dumps(body, JSON_COMPACT), *id = NULL;
    struct curl_slist *hl = NULL;
    struct sbuf ans = { 0 };
    long status = 0;
    json_t *root;

    snprintf(url, sizeof(url), "%s%s", base, path);
    snprintf(hdr, sizeof(hdr), "X-Service-Token: %s", o->service_token);
    hl = curl_slist_append(curl_slist_append(hl, hdr), "Content-Type: application/json");
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &ans);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(h) == CURLE_OK &&
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status / 100 == 2 &&
        ans.p != NULL && (root = json_loads(ans.p, 0, NULL)) != NULL) {
        if (json_string_value(json_object_get(root, "id")) != NULL)
            id = strdup(json_string_value(json_object_get(root, "id")));
        json_decref(root);
    }
    if (id == NULL)
        fprintf(stderr, "bench-webhooks: setup POST %s: HTTP %ld %.200s\n", url, status,
                ans.p ? ans.p : "");
    curl_slist_free_all(hl);
    free(text);
    free(ans.p);
    json_decref(body);
    return id;
}

/*
 * Creates, as the workers would, customer 0, the first business account, their direct
 * conversation and OUTBOUND_POOL outbound messages with this run's wamids.  Returns how many
 * messages exist (0 turns statuses off).
 */
static int
setup_outbound(const struct opts *o, const struct gen *g)
{
    char ext[24], *cust, *biz, *conv = NULL, *msg;
    CURL *h = curl_easy_init();
    int made = 0;

    if (h == NULL)
        die("curl_easy_init failed");
    wa_id(0, ext);
    cust = svc_post(o, h, o->customer_url, "/api/customers",
                    json_pack("{s:s, s:s}", "external_type", "whatsapp", "external_id", ext));
    biz = svc_post(o, h, o->customer_url, "/api/customers",
                   json_pack("{s:s, s:s}", "external_type", "whatsapp_business", "external_id",
                             "106540352240000"));
    if (cust != NULL && biz != NULL)
        conv = svc_post(o, h, o->conversation_url, "/api/conversations",
                        json_pack("{s:s, s:[s,s]}", "type", "direct", "participants", cust, biz));
    for (int k = 0; conv != NULL && k < OUTBOUND_POOL; k++) {
        char wamid[64];

        snprintf(wamid, sizeof(wamid), "wamid.OUTBENCH%s.%02d", g->run, k);
        msg = svc_post(o, h, o->messaging_url, "/api/messages",
                       json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "conversation_id", conv,
                                 "sender_customer_id", biz, "direction", "outbound", "channel",
                                 "whatsapp", "external_message_id", wamid, "body",
                                 "Your order has shipped"));
        made += msg != NULL;
        free(msg);
    }
    free(cust);
    free(biz);
    free(conv);
    curl_easy_cleanup(h);
    return made == OUTBOUND_POOL ? made : 0;
}

/* ---- the HTTP/1.1 client ---------------------------------------------------------------- */

/* Splits "http://host:port/path" and resolves host (IPv4 or IPv6, first answer). */
static void
target_parse(const char *url, struct target *t)
{
    char port[16] = "80";
    const char *p, *hp;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
    size_t n;

    if (strncmp(url, "http://", 7) != 0)
        die("url \"%s\": only http:// is supported", url);
    hp = url + 7;
    p = strchr(hp, '/');
    n = p ? (size_t)(p - hp) : strlen(hp);
    if (n == 0 || n >= sizeof(t->host))
        die("url \"%s\": bad host", url);
    memcpy(t->host, hp, n);
    t->host[n] = '\0';
    snprintf(t->path, sizeof(t->path), "%s", p ? p : "/");
    {
        char name[300], *colon = strrchr(t->host, ':');

        snprintf(name, sizeof(name), "%s", t->host);
        if (colon != NULL && strchr(colon, ']') == NULL) {
            name[colon - t->host] = '\0';
            snprintf(port, sizeof(port), "%s", colon + 1);
        }
        if (name[0] == '[') { /* [::1]:8005 */
            memmove(name, name + 1, strlen(name));
            name[strcspn(name, "]")] = '\0';
        }
        if (getaddrinfo(name, port, &hints, &ai) != 0 || ai == NULL)
            die("url \"%s\": cannot resolve host", url);
    }
    memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
    t->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
}

static void
ep_set(struct bench *b, struct conn *c, uint32_t events)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };

    if (c->events == events)
        return;
    if (epoll_ctl(b->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) != 0)
        die("epoll_ctl: %s", strerror(errno));
    c->events = events;
}

static void
conn_close(struct conn *c, uint64_t retry_at)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
    c->events = 0;
    c->st = C_IDLE;
    c->in_len = 0;
    c->retry_at = retry_at;
}

/* A transport failure: counted, and the connection is retried shortly. */
static void
conn_fail(struct bench *b, struct conn *c)
{
    b->tl.transport++;
    conn_close(c, now_ns() + 10 * 1000000ull);
}

/* Builds the next signed request into c->out; false when the run has sent enough. */
static bool
conn_prepare(struct bench *b, struct conn *c)
{
    static struct sbuf body;
    char sig[72];

    if (b->stopping || (b->o.max_deliveries > 0 && (long)b->g.requests >= b->o.max_deliveries))
        return false;
    c->msgs = gen_delivery(&b->g, &body);
    inb_sig_make(b->o.secret, body.p, body.len, sig);
    c->out.len = 0;
    c->out_off = 0;
    sb_printf(&c->out,
              "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: parley-bench-webhooks\r\n"
              "Content-Type: application/json\r\nX-Hub-Signature-256: %s\r\n"
              "X-Request-Id: bench-%s-%lu\r\nContent-Length: %zu\r\n\r\n",
              b->t.path, b->t.host, sig, b->g.run, b->g.requests++, body.len);
    sb_add(&c->out, body.p, body.len);
    return true;
}

/* Writes what is left of the request; then waits for the answer. */
static void
conn_send(struct bench *b, struct conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);

        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ep_set(b, c, EPOLLOUT);
            return;
        }
        if (n <= 0) {
            conn_fail(b, c);
            return;
        }
        c->out_off += (size_t)n;
    }
    c->st = C_READING;
    ep_set(b, c, EPOLLIN);
}

/* Starts the next request on an open connection, or closes it when the run is over. */
static void
conn_next(struct bench *b, struct conn *c)
{
    if (!conn_prepare(b, c)) {
        conn_close(c, UINT64_MAX);
        return;
    }
    b->tl.sent++;
    c->st = C_SENDING;
    c->t_sent = now_ns();
    conn_send(b, c);
}

static void
conn_open(struct bench *b, struct conn *c)
{
    int one = 1;

    if (!conn_prepare(b, c)) {
        c->retry_at = UINT64_MAX;
        return;
    }
    c->fd = socket(b->t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket: %s", strerror(errno));
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    b->tl.sent++;
    c->t_sent = now_ns();
    if (connect(c->fd, (struct sockaddr *)&b->t.addr, b->t.addr_len) == 0) {
        c->st = C_SENDING;
        conn_send(b, c);
    } else if (errno == EINPROGRESS) {
        c->st = C_CONNECTING;
        ep_set(b, c, EPOLLOUT);
    } else {
        conn_fail(b, c);
    }
}

/* Case-insensitive search of a header's value in the header block [h, end). */
static const char *
header_value(const char *h, const char *end, const char *name)
{
    size_t n = strlen(name);

    for (const char *l = h; l < end;) {
        const char *eol = memchr(l, '\n', (size_t)(end - l));

        if (eol == NULL)
            break;
        if ((size_t)(eol - l) > n && strncasecmp(l, name, n) == 0 && l[n] == ':')
            return l + n + 1;
        l = eol + 1;
    }
    return NULL;
}

/*
 * Parses the answer in c->in: 1 when complete (status and keep-alive filled), 0 when more bytes
 * are needed, -1 when it is not HTTP.  Answers are small and never pipelined, so a complete one
 * fills the buffer exactly.
 */
static int
parse_answer(const struct conn *c, int *status, bool *keep)
{
    const char *hdr_end = memmem(c->in, c->in_len, "\r\n\r\n", 4), *v;
    size_t head, need;

    if (hdr_end == NULL)
        return c->in_len == sizeof(c->in) ? -1 : 0;
    if (c->in_len < 12 || strncmp(c->in, "HTTP/1.", 7) != 0)
        return -1;
    *status = atoi(c->in + 9);
    head = (size_t)(hdr_end - c->in) + 4;
    v = header_value(c->in, hdr_end + 2, "Connection");
    *keep = !(v != NULL && strncasecmp(v + strspn(v, " "), "close", 5) == 0);
    if ((v = header_value(c->in, hdr_end + 2, "Content-Length")) != NULL) {
        need = head + strtoul(v, NULL, 10);
        return c->in_len >= need ? 1 : (need > sizeof(c->in) ? -1 : 0);
    }
    v = header_value(c->in, hdr_end + 2, "Transfer-Encoding");
    if (v != NULL && strcasestr(v, "chunked") != NULL) /* done at the zero-size chunk */
        return memmem(c->in + head - 2, c->in_len - head + 2, "\r\n0\r\n\r\n", 7) != NULL;
    return 1; /* no length: an empty body (the body is not needed) */
}

static void
record(struct bench *b, const struct conn *c, int status)
{
    struct tally *t = &b->tl;

    t->by_status[status > 0 && status < MAX_STATUS ? status : 0]++;
    if (status != 201)
        return;
    t->acks++;
    t->msgs_acked += c->msgs;
    if (t->lat_n == t->lat_cap) {
        t->lat_cap = t->lat_cap ? 2 * t->lat_cap : 65536;
        if ((t->lat_us = realloc(t->lat_us, t->lat_cap * sizeof(*t->lat_us))) == NULL)
            die("out of memory");
    }
    t->lat_us[t->lat_n++] = (uint32_t)((now_ns() - c->t_sent) / 1000);
}

static void
conn_read(struct bench *b, struct conn *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
    int status = 0, rc;
    bool keep = true;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        conn_fail(b, c);
        return;
    }
    c->in_len += (size_t)n;
    if ((rc = parse_answer(c, &status, &keep)) == 0)
        return;
    if (rc < 0) {
        conn_fail(b, c);
        return;
    }
    record(b, c, status);
    c->in_len = 0;
    if (keep)
        conn_next(b, c);
    else
        conn_close(c, now_ns());
}

static void
conn_event(struct bench *b, struct conn *c, uint32_t events)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (c->st == C_CONNECTING) {
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            conn_fail(b, c);
            return;
        }
        c->st = C_SENDING;
    }
    if (c->st == C_SENDING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        conn_send(b, c);
    else if (c->st == C_READING && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        conn_read(b, c);
}

/* True while a connection waits for an answer. */
static bool
any_busy(const struct bench *b)
{
    for (int i = 0; i < b->o.conns; i++)
        if (b->conns[i].st != C_IDLE)
            return true;
    return false;
}

/* The load phase: o.seconds of requests (or max_deliveries), then the answers still due. */
static void
run_load(struct bench *b)
{
    struct epoll_event evs[256];

    b->tl.t0 = now_ns();
    b->tl.t_end = b->tl.t0 + (uint64_t)b->o.seconds * NS_PER_S;
    for (;;) {
        uint64_t now = now_ns();
        int n;

        b->stopping = b->stopping || now >= b->tl.t_end;
        for (int i = 0; i < b->o.conns; i++)
            if (b->conns[i].st == C_IDLE && b->conns[i].retry_at <= now)
                conn_open(b, &b->conns[i]);
        if ((b->stopping || (b->o.max_deliveries > 0 &&
                             (long)b->g.requests >= b->o.max_deliveries)) && !any_busy(b))
            break;
        if (now >= b->tl.t_end + GRACE_NS)
            break;
        n = epoll_wait(b->ep, evs, 256, 5);
        for (int i = 0; i < n; i++)
            conn_event(b, evs[i].data.ptr, evs[i].events);
    }
    b->tl.t_end = now_ns();
    for (int i = 0; i < b->o.conns; i++) {
        b->tl.unanswered += b->conns[i].st != C_IDLE;
        conn_close(&b->conns[i], UINT64_MAX);
    }
}

/* ---- processing: polling the databases ------------------------------------------------- */

/* What the databases say about this run. */
struct progress {
    long stored;  /* messages of this run in parley_messaging */
    long waiting; /* this run's inbound_webhooks rows pending or processing */
    long dead;    /* this run's rows that died */
};

static PGconn *
db_open(const char *url)
{
    PGconn *db = PQconnectdb(url);

    if (PQstatus(db) != CONNECTION_OK)
        die("cannot connect to %s: %s", url, PQerrorMessage(db));
    return db;
}

/* One count(*) query with up to two text parameters; -1 on failure. */
static long
db_count(PGconn *db, const char *sql, const char *p1, const char *p2)
{
    const char *params[] = { p1, p2 };
    PGresult *res = PQexecParams(db, sql, p2 ? 2 : 1, NULL, params, NULL, NULL, 0);
    long n = -1;

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
        n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    else
        fprintf(stderr, "bench-webhooks: poll failed: %s", PQerrorMessage(db));
    PQclear(res);
    return n;
}

/*
 * This run's messages are the whatsapp messages whose id lies in ["wamid.BENCH<run>.",
 * "wamid.BENCH<run>/"): a range of the unique (channel, external_message_id) index, so the
 * poll stays cheap however large the table grows.  The webhook rows are found through the
 * partial indexes of pending/processing and dead rows, by their request id.
 */
static void
poll_progress(PGconn *msg_db, PGconn *inb_db, const char *run, struct progress *p)
{
    static const char stored_sql[] =
        "SELECT count(*) FROM messages WHERE channel = 'whatsapp'"
        " AND external_message_id >= $1 AND external_message_id < $2";
    static const char waiting_sql[] =
        "SELECT count(*) FROM inbound_webhooks WHERE status IN ('pending', 'processing')"
        " AND request_id LIKE $1";
    static const char dead_sql[] =
        "SELECT count(*) FROM inbound_webhooks WHERE status = 'dead' AND request_id LIKE $1";
    char lo[64], hi[64], like[64];

    snprintf(lo, sizeof(lo), "wamid.BENCH%s.", run);
    snprintf(hi, sizeof(hi), "wamid.BENCH%s/", run);
    snprintf(like, sizeof(like), "bench-%s-%%", run);
    p->stored = db_count(msg_db, stored_sql, lo, hi);
    p->waiting = db_count(inb_db, waiting_sql, like, NULL);
    p->dead = db_count(inb_db, dead_sql, like, NULL);
}

/*
 * Polls until every acknowledged message is stored and no row of the run waits, or until the
 * deadline.  Returns the time the last change was seen (the moment processing finished).
 */
static uint64_t
run_drain(const struct bench *b, struct progress *p, struct progress *at_load_end)
{
    PGconn *msg_db = db_open(b->o.messaging_db), *inb_db = db_open(b->o.inbound_db);
    uint64_t deadline = b->tl.t_end + (uint64_t)b->o.deadline * NS_PER_S, t_last = b->tl.t_end;
    long last_stored = -1;
    struct timespec nap = { 0, 0 };
    bool near;

    for (bool first = true;; first = false) {
        poll_progress(msg_db, inb_db, b->g.run, p);
        if (first)
            *at_load_end = *p;
        if (p->stored != last_stored) {
            last_stored = p->stored;
            t_last = now_ns();
        }
        if ((p->stored >= (long)b->tl.msgs_acked && p->waiting == 0) || now_ns() >= deadline)
            break;
        near = p->stored >= (long)b->tl.msgs_acked * 9 / 10;
        nap.tv_nsec = (near ? POLL_NEAR_MS : POLL_FAR_MS) * 1000000L;
        nanosleep(&nap, NULL);
    }
    PQfinish(msg_db);
    PQfinish(inb_db);
    return t_last;
}

/* ---- report ------------------------------------------------------------------------------ */

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return (x > y) - (x < y);
}

static double
percentile_ms(const struct tally *t, double q)
{
    size_t i;

    if (t->lat_n == 0)
        return 0;
    i = (size_t)(q * (double)(t->lat_n - 1) + 0.5);
    return t->lat_us[i] / 1000.0;
}

/* The answers line: every status seen (0: not HTTP), then transport errors. */
static void
print_answers(const struct tally *t)
{
    bool any = false;

    printf("answers            ");
    for (int s = 0; s < MAX_STATUS; s++) {
        if (t->by_status[s] > 0)
            printf(" HTTP %d x %lu", s, t->by_status[s]);
        any = any || t->by_status[s] > 0;
    }
    printf("%s; transport errors %lu; unanswered %lu\n", any ? "" : " none", t->transport,
           t->unanswered);
}

/* Prints the figures; returns the exit status (0: clean and complete). */
static int
report(const struct bench *b, const struct progress *p, const struct progress *at_end,
       uint64_t t_done)
{
    const struct tally *t = &b->tl;
    double load_s = (double)(t->t_end - t->t0) / NS_PER_S;
    double acks = (double)t->acks / load_s;
    double done_s = (double)(t_done - t->t0) / NS_PER_S;
    bool complete = p->stored >= (long)t->msgs_acked && p->waiting == 0;
    double processed = (double)(p->stored > 0 ? p->stored : 0) / done_s;
    bool clean = t->acks == t->sent && t->transport == 0 && t->unanswered == 0 && p->dead == 0;

    printf("deliveries sent     %lu in %.2f s (%lu messages in the %lu acknowledged)\n", t->sent,
           load_s, t->msgs_acked, t->acks);
    print_answers(t);
    printf("acks/s              %.0f   (target >= %.0f: %s)\n", acks, TARGET_ACKS,
           acks >= TARGET_ACKS ? "met" : "MISSED");
    printf("ack latency         p50 %.2f ms   p99 %.2f ms   max %.2f ms\n",
           percentile_ms(t, 0.50), percentile_ms(t, 0.99), percentile_ms(t, 1.0));
    printf("stored at load end  %ld of %lu messages\n", at_end->stored, t->msgs_acked);
    printf("processed/s         %.0f   (target >= %.0f: %s): %ld of %lu messages stored %.2f s "
           "after the first request%s\n",
           processed, TARGET_PROCESSED, processed >= TARGET_PROCESSED ? "met" : "MISSED",
           p->stored, t->msgs_acked, done_s, complete ? "" : " (deadline: INCOMPLETE)");
    printf("webhook rows        %ld waiting, %ld dead\n", p->waiting, p->dead);
    return clean && complete ? 0 : 1;
}

/* ---- options and main -------------------------------------------------------------------- */

static const char usage[] =
    "usage: bench-webhooks [options]\n"
    "  -c, --connections N   concurrent keep-alive connections (32)\n"
    "  -d, --duration S      seconds of load (10)\n"
    "  -n, --deliveries N    stop after N deliveries (0: no limit)\n"
    "  -w, --deadline S      seconds to wait for processing after the load (60)\n"
    "  -C, --customers N     distinct customers (wa_ids) (2000)\n"
    "  -B, --businesses N    distinct business phone numbers (3)\n"
    "  -s, --statuses PCT    share of deliveries carrying statuses (5; 0: none, no setup)\n"
    "  -g, --gateway         post to the gateway (:8000/api/v1/webhooks/whatsapp)\n"
    "  -u, --url URL         post to URL (default http://127.0.0.1:8005/api/webhooks/whatsapp)\n"
    "Environment: PARLEY_WHATSAPP_APP_SECRET (dev-whatsapp-secret), PARLEY_SERVICE_TOKEN,\n"
    "PARLEY_CUSTOMER_URL, PARLEY_CONVERSATION_URL, PARLEY_MESSAGING_URL (setup),\n"
    "BENCH_MESSAGING_DATABASE_URL, BENCH_INBOUND_DATABASE_URL (the polls).\n";

static const char *
env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : def;
}

/* A positive (or, with zero_ok, non-negative) integer option, or exit 2. */
static long
num_arg(const char *s, const char *what, long max, bool zero_ok)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < (zero_ok ? 0 : 1) || v > max)
        die("%s \"%s\": expected an integer in %d..%ld", what, s, zero_ok ? 0 : 1, max);
    return v;
}

static void
opts_defaults(struct opts *o)
{
    *o = (struct opts){ .conns = 32, .seconds = 10, .deadline = 60, .customers = 2000,
                        .businesses = 3, .status_pct = 5 };
    o->url = "http://127.0.0.1:8005/api/webhooks/whatsapp";
    o->secret = env_or("PARLEY_WHATSAPP_APP_SECRET", "dev-whatsapp-secret");
    o->service_token = env_or("PARLEY_SERVICE_TOKEN", "dev-service-token");
    o->customer_url = env_or("PARLEY_CUSTOMER_URL", "http://127.0.0.1:8001");
    o->conversation_url = env_or("PARLEY_CONVERSATION_URL", "http://127.0.0.1:8002");
    o->messaging_url = env_or("PARLEY_MESSAGING_URL", "http://127.0.0.1:8003");
    o->messaging_db = env_or("BENCH_MESSAGING_DATABASE_URL",
                             "postgresql://parley:parley@127.0.0.1:55432/parley_messaging");
    o->inbound_db = env_or("BENCH_INBOUND_DATABASE_URL",
                           "postgresql://parley:parley@127.0.0.1:55432/parley_inbound");
}

static void
opts_parse(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        { "connections", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, 'd' },
        { "deliveries", required_argument, NULL, 'n' },
        { "deadline", required_argument, NULL, 'w' },
        { "customers", required_argument, NULL, 'C' },
        { "businesses", required_argument, NULL, 'B' },
        { "statuses", required_argument, NULL, 's' },
        { "gateway", no_argument, NULL, 'g' },
        { "url", required_argument, NULL, 'u' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int ch;

    opts_defaults(o);
    while ((ch = getopt_long(argc, argv, "c:d:n:w:C:B:s:gu:h", longs, NULL)) != -1) {
        if (ch == 'c')
            o->conns = (int)num_arg(optarg, "connections", 10000, false);
        else if (ch == 'd')
            o->seconds = (int)num_arg(optarg, "duration", 3600, false);
        else if (ch == 'n')
            o->max_deliveries = num_arg(optarg, "deliveries", 100000000, true);
        else if (ch == 'w')
            o->deadline = (int)num_arg(optarg, "deadline", 86400, true);
        else if (ch == 'C')
            o->customers = (int)num_arg(optarg, "customers", 10000000, false);
        else if (ch == 'B')
            o->businesses = (int)num_arg(optarg, "businesses", 9999, false);
        else if (ch == 's')
            o->status_pct = (int)num_arg(optarg, "statuses", 100, true);
        else if (ch == 'g')
            o->url = "http://127.0.0.1:8000/api/v1/webhooks/whatsapp";
        else if (ch == 'u')
            o->url = optarg;
        else if (ch == 'h') {
            fputs(usage, stdout);
            exit(0);
        } else {
            fputs(usage, stderr);
            exit(2);
        }
    }
    if (optind != argc)
        die("unexpected argument \"%s\"", argv[optind]);
}

/* This run's tag: the wall clock and the pid, so runs never share wamids or request ids. */
static void
gen_init(struct gen *g, const struct opts *o)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(g->run, sizeof(g->run), "%08lX%04X", (unsigned long)ts.tv_sec & 0xffffffffu,
             (unsigned)getpid() & 0xffffu);
    g->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ull;
    g->customers = o->customers;
    g->businesses = o->businesses;
    g->status_pct = o->status_pct;
}

int
main(int argc, char **argv)
{
    struct bench b = { .ep = -1 };
    struct progress p = { 0 }, at_end = { 0 };
    uint64_t t_done;
    int rc;

    opts_parse(argc, argv, &b.o);
    gen_init(&b.g, &b.o);
    target_parse(b.o.url, &b.t);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (b.o.status_pct > 0 && (b.g.outbound = setup_outbound(&b.o, &b.g)) == 0)
        fprintf(stderr, "bench-webhooks: no outbound messages made: no statuses this run\n");
    if ((b.ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1: %s", strerror(errno));
    if ((b.conns = calloc((size_t)b.o.conns, sizeof(*b.conns))) == NULL)
        die("out of memory");
    for (int i = 0; i < b.o.conns; i++)
        b.conns[i].fd = -1;
    printf("bench-webhooks: run %s, %d connections, %d s, POST %s\n", b.g.run, b.o.conns,
           b.o.seconds, b.o.url);
    fflush(stdout);
    run_load(&b);
    if (b.tl.lat_n > 0)
        qsort(b.tl.lat_us, b.tl.lat_n, sizeof(*b.tl.lat_us), cmp_u32);
    t_done = run_drain(&b, &p, &at_end);
    rc = report(&b, &p, &at_end, t_done);
    for (int i = 0; i < b.o.conns; i++)
        free(b.conns[i].out.p);
    free(b.conns);
    free(b.tl.lat_us);
    close(b.ep);
    curl_global_cleanup();
    return rc;
}
