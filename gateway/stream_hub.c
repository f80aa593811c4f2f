/*
 * stream_hub.c - who listens to which conversation, and the fan-out of message events to them.
 *
 * One mutex guards a hash of conversation -> subscriber list.  Each subscriber owns a push stream
 * (common/http_push.c: a bounded queue that MHD drains, so a client costs no thread) and remembers
 * the highest version it was sent per message.  An event for a message whose remembered version
 * is at least the event's is not news and is skipped: this removes the overlap between a resumed
 * client's backlog and the live events, and Kafka's redeliveries.  The memory of versions is
 * bounded: past SENT_MAX messages the older half is forgotten and replaced by a floor version,
 * below which an unknown message counts as sent (a conversation's events arrive in version order,
 * messaging-svc's counter lock and the outbox relay guarantee it, so only replays fall below it).
 * A resumed client starts with its Last-Event-ID as the floor.
 *
 * A subscriber joins in backlog mode: live events are copied aside (held, bounded like the queue)
 * while its handler sends the backlog in version order; gw_sub_live then sends the held events
 * that are still news, so no change falls between the backlog and the live stream.
 *
 * A ticker thread writes ": ping" to every live subscriber each PARLEY_SSE_PING_MS; a stream that
 * refuses a write (client gone, or dropped for not reading) is forgotten then or at the next event.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parley/err.h"
#include "parley/log.h"
#include "svc.h"

#define NBUCKETS 256
#define SENT_MAX 1024 /* messages whose sent version a subscriber remembers exactly */

static const char ping[] = ": ping\n\n";

/* An event held for a subscriber that is still sending its backlog. */
struct frame {
    struct frame *next;
    char msg_id[37];
    long long version;
    size_t len;
    char text[];
};

struct gw_sub {
    struct gw_sub *next;
    struct conv *conv;
    struct pl_push *push;
    json_t *sent;     /* message id -> highest version sent */
    long long floor;  /* an unknown message at or below this version was sent */
    long long top;    /* highest version sent */
    bool backlog;     /* still sending the backlog: live events are held */
    bool overflow;    /* held events outgrew the queue */
    struct frame *held, **held_tail;
    size_t held_bytes;
};

struct conv {
    struct conv *next;
    char id[37];
    long long last_version; /* highest version the hub has seen */
    struct gw_sub *subs;
};

struct gw_hub {
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the ticker's sleep, cut short by stop */
    struct conv *bucket[NBUCKETS];
    pthread_t ticker;
    bool stop;
    long ping_ms;
    atomic_bool ready;
    struct gw_stream_kafka *kafka;
};

/* ---- conversations ---- */

static unsigned
hash(const char *id)
{
    unsigned h = 2166136261u;

    for (; *id != '\0'; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % NBUCKETS;
}

/* The conversation's entry, made when create; NULL otherwise.  Holds mu. */
static struct conv *
conv_find(struct gw_hub *h, const char *id, bool create)
{
    struct conv **head = &h->bucket[hash(id)], *c;

    for (c = *head; c != NULL; c = c->next)
        if (strcmp(c->id, id) == 0)
            return c;
    if (!create)
        return NULL;
    c = calloc(1, sizeof(*c));
    PL_ASSERT(c != NULL);
    snprintf(c->id, sizeof(c->id), "%s", id);
    c->next = *head;
    *head = c;
    return c;
}

/* Drops the entry of a conversation nobody listens to any more.  Holds mu. */
static void
conv_release(struct gw_hub *h, struct conv *c)
{
    struct conv **pp = &h->bucket[hash(c->id)];

    if (c->subs != NULL)
        return;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    free(c);
}

/* ---- subscribers ---- */

static void
held_free(struct gw_sub *s)
{
    while (s->held != NULL) {
        struct frame *f = s->held;

        s->held = f->next;
        free(f);
    }
    s->held_tail = &s->held;
    s->held_bytes = 0;
}

/* Unlinks s from its conversation and frees it.  Holds mu. */
static void
sub_free(struct gw_hub *h, struct gw_sub *s)
{
    struct conv *c = s->conv;
    struct gw_sub **pp = &c->subs;

    while (*pp != s)
        pp = &(*pp)->next;
    *pp = s->next;
    conv_release(h, c);
    held_free(s);
    json_decref(s->sent);
    pl_push_release(s->push);
    free(s);
}

/* Forgets the older half of the sent versions, raising the floor to match. */
static void
sent_prune(struct gw_sub *s)
{
    long long lo = s->top, mid;
    const char *key;
    json_t *v, *tmp;

    json_object_foreach(s->sent, key, v)
        if (json_integer_value(v) < lo)
            lo = json_integer_value(v);
    mid = lo + (s->top - lo) / 2;
    json_object_foreach_safe(s->sent, tmp, key, v)
        if (json_integer_value(v) <= mid)
            json_object_del(s->sent, key);
    if (mid > s->floor)
        s->floor = mid;
}

/* True when version of msg_id is news to s; then remembers it as sent. */
static bool
is_news(struct gw_sub *s, const char *msg_id, long long version)
{
    json_t *v = json_object_get(s->sent, msg_id);
    long long seen = v != NULL ? json_integer_value(v) : s->floor;

    if (version <= seen)
        return false;
    json_object_set_new(s->sent, msg_id, json_integer(version));
    if (version > s->top)
        s->top = version;
    if (json_object_size(s->sent) > SENT_MAX)
        sent_prune(s);
    return true;
}

/* Sends one frame when it is news.  PL_ERR when the stream is over. */
static int
deliver(struct gw_sub *s, const char *msg_id, long long version, const char *text, size_t len)
{
    if (!is_news(s, msg_id, version))
        return PL_OK;
    return pl_push_write(s->push, text, len);
}

/* Copies a frame aside for a subscriber in backlog mode. */
static void
hold(struct gw_sub *s, const char *msg_id, long long version, const char *text, size_t len)
{
    struct frame *f;

    if (s->overflow || len > GW_STREAM_QUEUE_MAX - s->held_bytes) {
        s->overflow = true;
        held_free(s);
        return;
    }
    f = malloc(sizeof(*f) + len);
    PL_ASSERT(f != NULL);
    f->next = NULL;
    snprintf(f->msg_id, sizeof(f->msg_id), "%s", msg_id);
    f->version = version;
    f->len = len;
    memcpy(f->text, text, len);
    *s->held_tail = f;
    s->held_tail = &f->next;
    s->held_bytes += len;
}

struct gw_sub *
gw_sub_join(struct gw_hub *h, const char *conversation_id, struct pl_push *p, long long since)
{
    struct gw_sub *s = calloc(1, sizeof(*s));

    PL_ASSERT(s != NULL);
    s->push = p;
    s->sent = json_object();
    s->floor = s->top = since;
    s->backlog = true;
    s->held_tail = &s->held;
    pthread_mutex_lock(&h->mu);
    s->conv = conv_find(h, conversation_id, true);
    s->next = s->conv->subs;
    s->conv->subs = s;
    pthread_mutex_unlock(&h->mu);
    return s;
}

/* ---- frames ---- */

/* The frame of msg under event (malloc'd), with its message id and version; NULL when msg is
 * not a message object. */
static char *
frame_of(const char *event, const json_t *msg, const char **msg_id, long long *version,
         size_t *len)
{
    char *data = NULL, *text = NULL;
    int n;

    *msg_id = json_string_value(json_object_get(msg, "id"));
    *version = json_integer_value(json_object_get(msg, "version"));
    if (*msg_id == NULL || strlen(*msg_id) != 36 || *version <= 0 ||
        (data = json_dumps(msg, JSON_COMPACT)) == NULL) /* compact JSON has no newline */
        return NULL;
    n = asprintf(&text, "id: %lld\nevent: %s\ndata: %s\n\n", *version, event, data);
    free(data);
    PL_ASSERT(n > 0);
    *len = (size_t)n;
    return text;
}

const char *
gw_stream_event_of(const json_t *msg)
{
    const char *created = json_string_value(json_object_get(msg, "created_at"));
    const char *updated = json_string_value(json_object_get(msg, "updated_at"));
    const char *status = json_string_value(json_object_get(msg, "status_updated_at"));

    /* A change sets updated_at; a status change also status_updated_at, in one statement. */
    if (created == NULL || updated == NULL || strcmp(created, updated) == 0)
        return "message.created";
    if (status != NULL && strcmp(status, updated) == 0)
        return "message.status.updated";
    return "message.updated";
}

int
gw_sub_backlog(struct gw_hub *h, struct gw_sub *s, const json_t *msg)
{
    const char *id;
    long long version;
    size_t len = 0;
    char *text = frame_of(gw_stream_event_of(msg), msg, &id, &version, &len);
    int rc = PL_OK;

    if (text == NULL)
        return PL_OK;
    pthread_mutex_lock(&h->mu);
    if (len > pl_push_room(s->push))
        rc = PL_RETRY;
    else
        deliver(s, id, version, text, len);
    pthread_mutex_unlock(&h->mu);
    free(text);
    return rc;
}

int
gw_sub_live(struct gw_hub *h, struct gw_sub *s)
{
    int rc = PL_OK;

    pthread_mutex_lock(&h->mu);
    if (s->overflow) {
        sub_free(h, s);
        rc = PL_RETRY;
        goto out;
    }
    for (struct frame *f = s->held; f != NULL; f = f->next) {
        if (deliver(s, f->msg_id, f->version, f->text, f->len) != PL_OK) {
            sub_free(h, s);
            goto out;
        }
    }
    held_free(s);
    s->backlog = false;
    if (s->top > s->conv->last_version)
        s->conv->last_version = s->top;
out:
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void
gw_sub_leave(struct gw_hub *h, struct gw_sub *s)
{
    pthread_mutex_lock(&h->mu);
    sub_free(h, s);
    pthread_mutex_unlock(&h->mu);
}

/* Gives the frame to every subscriber of c: held in backlog mode, else sent.  Holds mu. */
static void
fan_out(struct gw_hub *h, struct conv *c, const char *id, long long version, const char *text,
        size_t len)
{
    struct gw_sub *s = c->subs, *next;

    if (version > c->last_version)
        c->last_version = version;
    for (; s != NULL; s = next) {
        next = s->next;
        if (s->backlog)
            hold(s, id, version, text, len);
        else if (deliver(s, id, version, text, len) != PL_OK)
            sub_free(h, s); /* may free c with the last one: the loop is over then */
    }
}

void
gw_hub_publish(struct gw_hub *h, const char *event, const json_t *msg)
{
    const char *conv_id = json_string_value(json_object_get(msg, "conversation_id"));
    const char *id;
    long long version;
    size_t len = 0;
    char *text;
    struct conv *c;

    if (conv_id == NULL || (text = frame_of(event, msg, &id, &version, &len)) == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    if ((c = conv_find(h, conv_id, false)) != NULL)
        fan_out(h, c, id, version, text, len);
    pthread_mutex_unlock(&h->mu);
    free(text);
}

bool
gw_hub_watched(struct gw_hub *h, const char *conversation_id, long long *last_version)
{
    struct conv *c;

    pthread_mutex_lock(&h->mu);
    c = conv_find(h, conversation_id, false);
    *last_version = c != NULL ? c->last_version : 0;
    pthread_mutex_unlock(&h->mu);
    return c != NULL;
}

/* ---- heartbeat and life cycle ---- */

/* Writes ": ping" to every live subscriber, forgetting those whose stream is over.  Holds mu. */
static void
ping_all(struct gw_hub *h)
{
    for (int b = 0; b < NBUCKETS; b++) {
        struct conv *c = h->bucket[b], *cnext;

        for (; c != NULL; c = cnext) {
            struct gw_sub *s = c->subs, *snext;

            cnext = c->next; /* c goes with its last subscriber */
            for (; s != NULL; s = snext) {
                snext = s->next;
                if (!s->backlog && pl_push_write(s->push, ping, sizeof(ping) - 1) != PL_OK)
                    sub_free(h, s);
            }
        }
    }
}

static void *
ticker_main(void *arg)
{
    struct gw_hub *h = arg;
    struct timespec at;

    pthread_mutex_lock(&h->mu);
    clock_gettime(CLOCK_MONOTONIC, &at);
    while (!h->stop) {
        at.tv_sec += h->ping_ms / 1000;
        at.tv_nsec += (h->ping_ms % 1000) * 1000000L;
        if (at.tv_nsec >= 1000000000L) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000L;
        }
        while (!h->stop && pthread_cond_timedwait(&h->wake, &h->mu, &at) == 0)
            ;
        if (!h->stop)
            ping_all(h);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

struct gw_hub *
gw_hub_start(const struct gw_cfg *cfg)
{
    struct gw_hub *h = calloc(1, sizeof(*h));
    pthread_condattr_t ca;

    PL_ASSERT(h != NULL);
    pthread_mutex_init(&h->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->wake, &ca);
    pthread_condattr_destroy(&ca);
    h->ping_ms = cfg->sse_ping_ms;
    if (pthread_create(&h->ticker, NULL, ticker_main, h) != 0)
        pl_fatal("could not start the event stream ticker");
    h->kafka = gw_stream_kafka_start(h, cfg);
    return h;
}

bool
gw_hub_ready(struct gw_hub *h)
{
    return atomic_load(&h->ready);
}

void
gw_hub_set_ready(struct gw_hub *h, bool ready)
{
    atomic_store(&h->ready, ready);
}

/*
 * After the HTTP drain, which ended every stream: stops the consumer and the ticker and frees
 * the subscribers left.  A handler still sending its backlog (the drain timed out) keeps its
 * subscriber, and then the hub is left allocated for it: the process is exiting anyway.
 */
void
gw_hub_stop(struct gw_hub *h)
{
    int busy = 0;

    if (h == NULL)
        return;
    gw_stream_kafka_stop(h->kafka);
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->ticker, NULL);
    pthread_mutex_lock(&h->mu);
    for (int b = 0; b < NBUCKETS; b++) {
        struct conv *c = h->bucket[b], *cnext;

        for (; c != NULL; c = cnext) {
            struct gw_sub *s = c->subs, *snext;

            cnext = c->next;
            for (; s != NULL; s = snext) {
                snext = s->next;
                if (s->backlog)
                    busy++;
                else
                    sub_free(h, s);
            }
        }
    }
    pthread_mutex_unlock(&h->mu);
    if (busy > 0)
        return;
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
