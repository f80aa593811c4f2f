/*
 * outbox.c - transactional outbox and the relay that publishes it to Kafka.
 *
 * Writers add rows inside their own transaction (pl_outbox_add, or outbox_add() in SQL), so an
 * event exists exactly when its change committed.  One relay per database publishes: each replica
 * runs the thread, but only the holder of an advisory lock on its own connection works, the others
 * wait to take over.  The leader reads pending rows in id order and hands them to an idempotent
 * producer (acks=all) whose message timeout is infinite: during a Kafka outage messages wait inside
 * librdkafka, in order, instead of failing, and the API keeps answering because writers never touch
 * Kafka.  Rows are marked sent only after the broker acknowledged them, so a crash can only cause a
 * re-publication (same event_id), never a loss.
 *
 * Rows for one key are written in key order (each writer holds the resource's row lock while it
 * inserts its outbox row), so publishing in id order keeps every key, and so every partition, in
 * commit order.  The relay wakes on NOTIFY parley_outbox, fired by a statement trigger at commit;
 * under load it lets a few milliseconds of events gather between batches.
 */
#include "parley/outbox.h"

#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "parley/buf.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/metrics.h"
#include "parley/uuid.h"

#define BATCH 500
#define RELAY_LOCK "5782446175927744335"
#define PURGE_EVERY_US (60LL * 1000000)
#define GATHER_US 5000

enum { MSG_PENDING = 0, MSG_OK, MSG_FAILED };

struct pl_outbox {
    struct pl_db *db;
    char *brokers;
    rd_kafka_t *rk;
    pthread_t thread;
    int wake_fd;
    atomic_bool stop;
    atomic_int outstanding;
    atomic_ullong produce_errors;
    atomic_ullong published;
    PGconn *conn;
    bool leader;
    int64_t last_purge_us;
};

static const char *source_service = "parley";

void
pl_outbox_set_source(const char *service)
{
    source_service = service;
}

int
pl_outbox_add(PGconn *c, const char *topic, const char *key, const char *payload,
              struct pl_err *err)
{
    static const struct pl_stmt add = {
        "pl_outbox_add", "SELECT outbox_add($1, $2, $3, $4, $5, $6::json)", 6
    };
    char event_id[PL_UUID_STRLEN + 1];
    const char *trace = pl_log_request_id();
    const char *params[] = { event_id, topic, key, source_service, trace ? trace : "", payload };
    PGresult *res = NULL;
    int rc;

    pl_uuid_v7(event_id);
    rc = pl_db_query(c, &add, params, &res, err);
    PQclear(res);
    return rc < 0 ? rc : PL_OK;
}

/* ---- producer ---- */

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct pl_outbox *ob = opaque;
    unsigned char *state = msg->_private;

    (void)rk;
    if (msg->err) {
        atomic_fetch_add(&ob->produce_errors, 1);
        pl_log_warn("event not delivered to %s: %s", rd_kafka_topic_name(msg->rkt),
                    rd_kafka_err2str(msg->err));
    }
    *state = msg->err ? MSG_FAILED : MSG_OK;
    atomic_fetch_sub(&ob->outstanding, 1);
}

static void
on_kafka_error(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    pl_log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)code), reason);
}

static rd_kafka_t *
producer_new(struct pl_outbox *ob, struct pl_err *err)
{
    static const char *const settings[][2] = {
        { "enable.idempotence", "true" }, /* implies acks=all, ordered retries */
        { "acks", "all" },
        { "message.timeout.ms", "0" },    /* never give up: an outage delays, it cannot drop */
        { "linger.ms", "2" },
        { "socket.keepalive.enable", "true" },
        { "reconnect.backoff.max.ms", "2000" },
    };
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", ob->brokers, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        goto fail;
    for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            goto fail;
    rd_kafka_conf_set_opaque(conf, ob);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk != NULL)
        return rk;
    pl_err_set(err, 500, "kafka", "could not create the Kafka producer: %s", errstr);
    return NULL;
fail:
    rd_kafka_conf_destroy(conf);
    pl_err_set(err, 500, "kafka", "bad Kafka setting: %s", errstr);
    return NULL;
}

/* ---- relay ---- */

static void
relay_disconnect(struct pl_outbox *ob)
{
    PQfinish(ob->conn);
    ob->conn = NULL;
    ob->leader = false;
}

/* Connects, listens, and tries to become the publishing replica.  Returns true when leader. */
static bool
relay_lead(struct pl_outbox *ob)
{
    PGresult *res;

    if (ob->conn != NULL && PQstatus(ob->conn) != CONNECTION_OK)
        relay_disconnect(ob);
    if (ob->conn == NULL) {
        static const char *const keys[] = { "dbname", "connect_timeout", "application_name",
                                             NULL };
        const char *vals[] = { pl_db_conninfo(ob->db), "5", "parley-outbox-relay", NULL };

        ob->conn = PQconnectdbParams(keys, vals, 1);
        if (PQstatus(ob->conn) != CONNECTION_OK) {
            relay_disconnect(ob);
            return false;
        }
        PQclear(PQexec(ob->conn, "LISTEN parley_outbox"));
    }
    if (ob->leader)
        return true;
    res = PQexec(ob->conn, "SELECT pg_try_advisory_lock(" RELAY_LOCK ")");
    ob->leader = PQresultStatus(res) == PGRES_TUPLES_OK && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (ob->leader)
        pl_log_info("outbox relay is publishing for this database");
    return ob->leader;
}

/* Hands rows to the producer; returns how many were queued (rows are queued in order). */
static int
produce_rows(struct pl_outbox *ob, PGresult *res, unsigned char *state)
{
    int n = PQntuples(res);

    for (int i = 0; i < n; i++) {
        const char *topic = PQgetvalue(res, i, 1), *key = PQgetvalue(res, i, 2);
        const char *val = PQgetvalue(res, i, 3);
        rd_kafka_resp_err_t e;

        state[i] = MSG_PENDING;
        atomic_fetch_add(&ob->outstanding, 1);
        do {
            e = rd_kafka_producev(ob->rk, RD_KAFKA_V_TOPIC(topic),
                                  RD_KAFKA_V_KEY(key, (size_t)PQgetlength(res, i, 2)),
                                  RD_KAFKA_V_VALUE((void *)(uintptr_t)val, (size_t)PQgetlength(res, i, 3)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_OPAQUE(&state[i]), RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(ob->rk, 100);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !atomic_load(&ob->stop));
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            atomic_fetch_sub(&ob->outstanding, 1);
            atomic_fetch_add(&ob->produce_errors, 1);
            pl_log_warn("could not queue event for %s: %s", topic, rd_kafka_err2str(e));
            return i; /* later rows wait, so order holds */
        }
    }
    return n;
}

/* Marks the acknowledged rows sent; returns PL_OK or PL_ERR. */
static int
mark_sent(struct pl_outbox *ob, PGresult *rows, const unsigned char *state, int n)
{
    struct pl_buf ids = PL_BUF_INIT;
    const char *params[1];
    PGresult *res;
    int rc;

    pl_buf_puts(&ids, "{");
    for (int i = 0; i < n; i++)
        if (state[i] == MSG_OK)
            pl_buf_printf(&ids, "%s%s", ids.len > 1 ? "," : "", PQgetvalue(rows, i, 0));
    pl_buf_puts(&ids, "}");
    params[0] = ids.data;
    res = PQexecParams(ob->conn, "UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                       1, NULL, params, NULL, NULL, 0);
    rc = PQresultStatus(res) == PGRES_COMMAND_OK ? PL_OK : PL_ERR;
    if (rc != PL_OK)
        pl_log_detail(PL_LOG_ERROR, PQerrorMessage(ob->conn), "could not mark events sent");
    PQclear(res);
    pl_buf_cleanup(&ids);
    return rc;
}

/* Publishes one batch.  Returns rows published, or -1 after a failure (caller backs off). */
static int
publish_batch(struct pl_outbox *ob)
{
    static unsigned char state[BATCH];
    PGresult *res = PQexec(ob->conn, "SELECT id, topic, key, envelope FROM outbox "
                                     "WHERE sent_at IS NULL ORDER BY id LIMIT 500");
    int n, queued, ok = 0;

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pl_log_detail(PL_LOG_ERROR, PQerrorMessage(ob->conn), "could not read the outbox");
        PQclear(res);
        return -1;
    }
    n = PQntuples(res);
    queued = produce_rows(ob, res, state);
    /* Wait for every acknowledgement; during an outage this waits, the API does not. */
    while (atomic_load(&ob->outstanding) > 0 && !atomic_load(&ob->stop))
        rd_kafka_poll(ob->rk, 100);
    for (int i = 0; i < queued; i++)
        ok += state[i] == MSG_OK;
    if (ok > 0 && mark_sent(ob, res, state, queued) != PL_OK)
        ok = -1;
    atomic_fetch_add(&ob->published, ok > 0 ? (unsigned long long)ok : 0);
    PQclear(res);
    return ok < queued || queued < n ? -1 : ok;
}

/* Deletes rows sent more than an hour ago, at most once a minute. */
static void
purge_sent(struct pl_outbox *ob)
{
    int64_t now = pl_time_mono_us();

    if (now - ob->last_purge_us < PURGE_EVERY_US)
        return;
    ob->last_purge_us = now;
    PQclear(PQexec(ob->conn, "DELETE FROM outbox WHERE sent_at < now() - interval '1 hour'"));
}

/* Takes the NOTIFYs libpq has read; true when there were any. */
static bool
relay_drain(struct pl_outbox *ob)
{
    PGnotify *note;
    bool any = false;

    if (ob->conn == NULL)
        return false;
    PQconsumeInput(ob->conn);
    while ((note = PQnotifies(ob->conn)) != NULL) {
        PQfreemem(note);
        any = true;
    }
    return any;
}

/*
 * Sleeps until a NOTIFY, a wake-up, or timeout_ms.  A NOTIFY that libpq read while the last batch
 * ran (a commit after its SELECT) is already in hand: then it returns at once.
 */
static void
relay_wait(struct pl_outbox *ob, int timeout_ms)
{
    struct pollfd pfd[2] = { { ob->wake_fd, POLLIN, 0 }, { -1, POLLIN, 0 } };
    uint64_t v;

    if (ob->conn != NULL)
        pfd[1].fd = PQsocket(ob->conn);
    if (!relay_drain(ob) && poll(pfd, 2, timeout_ms) > 0 && (pfd[0].revents & POLLIN))
        if (read(ob->wake_fd, &v, sizeof(v)) < 0)
            v = 0;
    (void)relay_drain(ob);
    rd_kafka_poll(ob->rk, 0);
}

/*
 * After a batch, lets events gather until GATHER_US after it began (a stop cuts this short).
 * Idle, the first event goes out at once; busy, each Kafka request and each mark-sent commit
 * carries several events instead of one per writer's commit.
 */
static void
relay_gather(struct pl_outbox *ob, int64_t began_us)
{
    int64_t left = began_us + GATHER_US - pl_time_mono_us();
    struct pollfd pfd = { ob->wake_fd, POLLIN, 0 };

    if (left > 0)
        (void)poll(&pfd, 1, (int)((left + 999) / 1000));
}

/*
 * An idempotent producer that hits a fatal error (for example, the broker lost its producer
 * state) refuses every message from then on.  Replace it; the rows it did not deliver are still
 * pending and go out through the new producer, in order.
 */
static void
relay_check_fatal(struct pl_outbox *ob)
{
    char why[256];
    struct pl_err err = PL_ERR_INIT;
    rd_kafka_t *fresh;

    if (rd_kafka_fatal_error(ob->rk, why, sizeof(why)) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    pl_log_error("Kafka producer failed for good (%s); replacing it", why);
    fresh = producer_new(ob, &err);
    if (fresh == NULL) {
        pl_log_error("%s", err.msg);
        return;
    }
    rd_kafka_purge(ob->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(ob->rk, 0);
    rd_kafka_destroy(ob->rk);
    atomic_store(&ob->outstanding, 0);
    ob->rk = fresh;
}

static void *
relay_main(void *arg)
{
    struct pl_outbox *ob = arg;

    while (!atomic_load(&ob->stop)) {
        int64_t began;
        int n;

        if (!relay_lead(ob)) {
            relay_wait(ob, 2000);
            continue;
        }
        began = pl_time_mono_us();
        n = publish_batch(ob);
        if (n == BATCH)
            continue;
        if (n < 0) {
            relay_check_fatal(ob);
            if (PQstatus(ob->conn) != CONNECTION_OK)
                relay_disconnect(ob);
            relay_wait(ob, 1000); /* back off after a failure */
            continue;
        }
        purge_sent(ob);
        if (n > 0)
            relay_gather(ob, began);
        relay_wait(ob, 1000);
    }
    relay_disconnect(ob);
    return NULL;
}

static void
outbox_metrics(struct pl_buf *out, void *arg)
{
    struct pl_outbox *ob = arg;
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(ob->db, &err);
    PGresult *res = NULL;

    pl_buf_printf(out, "# TYPE parley_outbox_published_total counter\n"
                       "parley_outbox_published_total %llu\n"
                       "# TYPE parley_kafka_produce_errors_total counter\n"
                       "parley_kafka_produce_errors_total %llu\n"
                       "# TYPE parley_db_connections gauge\nparley_db_connections %ld\n",
                  atomic_load(&ob->published), atomic_load(&ob->produce_errors),
                  pl_db_open_count());
    if (c != NULL)
        res = PQexec(c, "SELECT count(*), COALESCE(extract(epoch FROM now() - min(created_at)), 0) "
                        "FROM outbox WHERE sent_at IS NULL");
    if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
        pl_buf_printf(out, "# TYPE parley_outbox_backlog gauge\nparley_outbox_backlog %s\n"
                           "# TYPE parley_outbox_oldest_age_seconds gauge\n"
                           "parley_outbox_oldest_age_seconds %s\n",
                      PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    PQclear(res);
}

struct pl_outbox *
pl_outbox_start(struct pl_db *db, const char *brokers, struct pl_err *err)
{
    struct pl_outbox *ob = calloc(1, sizeof(*ob));

    PL_ASSERT(ob != NULL);
    ob->db = db;
    ob->brokers = strdup(brokers);
    ob->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    PL_ASSERT(ob->brokers != NULL && ob->wake_fd >= 0);
    ob->rk = producer_new(ob, err);
    if (ob->rk == NULL || pthread_create(&ob->thread, NULL, relay_main, ob) != 0) {
        if (ob->rk != NULL)
            rd_kafka_destroy(ob->rk);
        close(ob->wake_fd);
        free(ob->brokers);
        free(ob);
        return NULL;
    }
    pl_metrics_register(outbox_metrics, ob);
    return ob;
}

void
pl_outbox_stop(struct pl_outbox *ob, int flush_ms)
{
    uint64_t one = 1;

    if (ob == NULL)
        return;
    pl_metrics_unregister(outbox_metrics, ob);
    atomic_store(&ob->stop, true);
    if (write(ob->wake_fd, &one, sizeof(one)) < 0)
        pl_log_warn("could not wake the outbox relay");
    pthread_join(ob->thread, NULL);
    /*
     * Bounded: anything not acknowledged by now stays pending in the table (the relay marks
     * rows only after acknowledgement) and is published after the restart.
     */
    rd_kafka_flush(ob->rk, flush_ms);
    rd_kafka_purge(ob->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT |
                               RD_KAFKA_PURGE_F_NON_BLOCKING);
    rd_kafka_poll(ob->rk, 100);
    /* With the broker unreachable, destroy can wait on its threads for a long time; the
     * process is exiting, so leave the handle to the kernel instead. */
    if (rd_kafka_outq_len(ob->rk) == 0)
        rd_kafka_destroy(ob->rk);
    else
        pl_log_warn("exiting with %d Kafka requests outstanding", rd_kafka_outq_len(ob->rk));
    close(ob->wake_fd);
    free(ob->brokers);
    free(ob);
}
