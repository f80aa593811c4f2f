/*
 * participants.c - "is this sender an active participant of this conversation?", asked of
 * conversation-svc (GET /api/conversations/{id}/participants/{customer_id}) before a create.
 *
 * Positive answers are cached for 30 s in a small direct-mapped table under one mutex: a busy
 * conversation then costs one call per half minute instead of one per message.  Negative answers
 * are never cached, so a participant added a moment ago is seen at once; the price of caching is
 * that a participant removed less than 30 s ago may still post, which SPEC 4.3 tolerates
 * ("cache positive answers briefly").  A collision simply evicts the older entry.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/client.h"
#include "parley/err.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "svc.h"

#define CACHE_SLOTS 4096 /* power of two */

struct slot {
    char key[2 * PL_UUID_STRLEN + 1]; /* conversation id then customer id; "" = empty */
    int64_t expires_us;              /* monotonic */
};

struct msg_part_cache {
    pthread_mutex_t lock;
    struct slot slots[CACHE_SLOTS];
};

struct msg_part_cache *
msg_part_cache_new(void)
{
    struct msg_part_cache *c = calloc(1, sizeof(*c));

    PL_ASSERT(c != NULL);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void
msg_part_cache_free(struct msg_part_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* FNV-1a over the 72 characters of the key. */
static size_t
slot_of(const char *key)
{
    uint32_t h = 2166136261u;

    for (const char *p = key; *p != '\0'; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h & (CACHE_SLOTS - 1);
}

static bool
cache_hit(struct msg_part_cache *c, const char *key)
{
    struct slot *s = &c->slots[slot_of(key)];
    bool hit;

    pthread_mutex_lock(&c->lock);
    hit = strcmp(s->key, key) == 0 && s->expires_us > pl_time_mono_us();
    pthread_mutex_unlock(&c->lock);
    return hit;
}

static void
cache_put(struct msg_part_cache *c, const char *key)
{
    struct slot *s = &c->slots[slot_of(key)];

    pthread_mutex_lock(&c->lock);
    memcpy(s->key, key, sizeof(s->key));
    s->expires_us = pl_time_mono_us() + MSG_PARTICIPANT_TTL_US;
    pthread_mutex_unlock(&c->lock);
}

/*
 * Maps conversation-svc's 404 body to the request field at fault: "participant not found" or
 * "conversation not found".  Its router's own 404 ("no route ...") means a conversation-svc that
 * lacks the route, which is our trouble, not the client's.
 */
static int
not_found(const struct pl_client_resp *r, struct pl_err *err)
{
    const char *msg = json_string_value(json_object_get(r->json, "message"));
    bool conversation = msg == NULL || strstr(msg, "participant") == NULL;

    if (msg != NULL && strstr(msg, "no route") != NULL) {
        pl_log_error("conversation-svc has no participant route: %s", msg);
        return pl_err_set(err, 503, "upstream_unavailable", "conversation-svc could not answer");
    }

    pl_err_set(err, 422, "validation_failed",
               conversation ? "conversation does not exist"
                            : "is not an active participant of the conversation");
    snprintf(err->field, sizeof(err->field), "%s",
             conversation ? "conversation_id" : "sender_customer_id");
    return PL_ERR;
}

int
msg_participant_check(const struct svc_ctx *ctx, struct pl_arena *a,
                      const char *conversation_id, const char *customer_id,
                      struct pl_err *err)
{
    struct pl_client_resp r = { 0 };
    char key[2 * PL_UUID_STRLEN + 1];
    const char *url;

    snprintf(key, sizeof(key), "%s%s", conversation_id, customer_id);
    if (cache_hit(ctx->parts, key))
        return PL_OK;
    url = pl_arena_printf(a, "%s/api/conversations/%s/participants/%s",
                          ctx->cfg->conversation_url, conversation_id, customer_id);
    if (pl_client_call(a, "GET", url, NULL, MSG_PARTICIPANT_TIMEOUT_MS, &r, err) != PL_OK)
        return pl_err_set(err, 503, "upstream_unavailable", "conversation-svc is not reachable");
    if (r.status == 200) {
        cache_put(ctx->parts, key);
        return PL_OK;
    }
    if (r.status == 404)
        return not_found(&r, err);
    pl_log_warn("conversation-svc answered %ld to a participant check", r.status);
    return pl_err_set(err, 503, "upstream_unavailable", "conversation-svc could not answer");
}
