/*
 * idcache.h - inbound-svc private: the process-wide cache of customer ids by channel identity,
 * so that a repeat sender costs no customer upsert (issue 5, processing rate).
 *
 * A customer's id never changes for its (external_type, external_id): customers are never
 * deleted and the pair is unique.  What an upsert may still change is the name and metadata, so
 * each entry also keeps a fingerprint of the name and metadata last sent for it, and a lookup
 * hits only when the item would send the same again (an upsert that changes nothing) or sends
 * nothing at all.  Entries expire after INB_IDCACHE_TTL_MS (five minutes), which bounds how long
 * a change made elsewhere (an operator's PATCH, an older profile written by another replica)
 * stays without the channel's current profile written back.  A cached id is never wrong: only
 * the name and metadata can lag, and only within the TTL.
 *
 * Two-way set associative (a new identity evicts the entry of its set that expires first),
 * fixed size, one mutex held only for a slot copy.  Header-only (static inline) so the unit
 * tests reach it while linking only libparley.  Thread-safe after inb_idcache_new.
 */
#ifndef INBOUND_IDCACHE_H
#define INBOUND_IDCACHE_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/err.h"

#define INB_IDCACHE_SLOTS 16384 /* power of two: about 3 MiB, in sets of two */
#define INB_IDCACHE_KEY 128     /* longer identities are not cached */
#define INB_IDCACHE_ID 40       /* a UUID and its NUL */
#define INB_IDCACHE_ANY 0       /* fingerprint of "no name, no metadata": any entry matches */
#define INB_IDCACHE_TTL_MS 300000

struct inb_idslot {
    char key[INB_IDCACHE_KEY]; /* see inb_idcache_set; "" = empty */
    char id[INB_IDCACHE_ID];
    uint64_t fp;        /* name and metadata last sent */
    int64_t expires_us; /* monotonic */
};

struct inb_idcache {
    pthread_mutex_t lock;
    int64_t ttl_us;
    struct inb_idslot slots[INB_IDCACHE_SLOTS];
};

/* A new empty cache whose entries live ttl_ms; free with inb_idcache_free. */
static inline struct inb_idcache *
inb_idcache_new(long ttl_ms)
{
    struct inb_idcache *c = calloc(1, sizeof(*c));

    PL_ASSERT(c != NULL);
    pthread_mutex_init(&c->lock, NULL);
    c->ttl_us = (int64_t)ttl_ms * 1000;
    return c;
}

/* NULL-safe. */
static inline void
inb_idcache_free(struct inb_idcache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* FNV-1a, 64 bits, of n bytes continuing from h. */
static inline uint64_t
inb_idcache_hash(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/*
 * The fingerprint of what an upsert would send: the name (NULL or "" for none) and the metadata
 * (NULL or {} for none; keys sorted, so member order does not matter).  INB_IDCACHE_ANY when
 * both are absent: such an upsert changes nothing, whatever the row holds.
 */
static inline uint64_t
inb_idcache_fp(const char *name, const json_t *meta)
{
    uint64_t h = 14695981039346656037ull;
    char *dump = NULL;

    if ((name == NULL || *name == '\0') && json_object_size(meta) == 0)
        return INB_IDCACHE_ANY;
    if (name != NULL)
        h = inb_idcache_hash(h, name, strlen(name) + 1);
    else
        h = inb_idcache_hash(h, "\xff", 1); /* no name differs from every name */
    if (json_object_size(meta) > 0 &&
        (dump = json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS)) != NULL)
        h = inb_idcache_hash(h, dump, strlen(dump));
    free(dump);
    return h == INB_IDCACHE_ANY ? 1 : h;
}

/*
 * The first slot of the set of the identity (type, ext), with its key "<length of type>:<type>
 * <ext>" in key (the length keeps ("a b", "c") apart from ("a", "b c")); NULL when too long to
 * cache.  The set is that slot and the next.
 */
static inline struct inb_idslot *
inb_idcache_set(struct inb_idcache *c, const char *type, const char *ext,
                char key[INB_IDCACHE_KEY])
{
    int n = snprintf(key, INB_IDCACHE_KEY, "%zu:%s%s", strlen(type), type, ext);

    if (n < 0 || n >= INB_IDCACHE_KEY)
        return NULL;
    return &c->slots[inb_idcache_hash(14695981039346656037ull, key, (size_t)n) &
                     (INB_IDCACHE_SLOTS - 2)];
}

/*
 * Copies into id the customer id of (type, ext) when cached, not expired at now_us, and last
 * upserted with fingerprint fp (any entry when fp is INB_IDCACHE_ANY).  False on a miss.
 */
static inline bool
inb_idcache_get(struct inb_idcache *c, const char *type, const char *ext, uint64_t fp,
                int64_t now_us, char id[INB_IDCACHE_ID])
{
    char key[INB_IDCACHE_KEY];
    struct inb_idslot *set = inb_idcache_set(c, type, ext, key);
    bool hit = false;

    if (set == NULL)
        return false;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < 2 && !hit; i++) {
        const struct inb_idslot *s = &set[i];

        if (strcmp(s->key, key) == 0 && s->expires_us > now_us &&
            (fp == INB_IDCACHE_ANY || fp == s->fp)) {
            memcpy(id, s->id, INB_IDCACHE_ID);
            hit = true;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

/*
 * Records that (type, ext) is customer id, just upserted with fingerprint fp at now_us: in the
 * identity's own slot when it has one, else in the slot of its set that expires first.
 */
static inline void
inb_idcache_put(struct inb_idcache *c, const char *type, const char *ext, uint64_t fp,
                int64_t now_us, const char *id)
{
    char key[INB_IDCACHE_KEY];
    struct inb_idslot *set = inb_idcache_set(c, type, ext, key), *s;

    if (set == NULL || strlen(id) >= INB_IDCACHE_ID)
        return;
    pthread_mutex_lock(&c->lock);
    if (strcmp(set[0].key, key) == 0)
        s = &set[0];
    else if (strcmp(set[1].key, key) == 0)
        s = &set[1];
    else
        s = set[0].expires_us <= set[1].expires_us ? &set[0] : &set[1];
    s->fp = fp;
    memcpy(s->key, key, sizeof(s->key));
    memcpy(s->id, id, strlen(id) + 1);
    s->expires_us = now_us + c->ttl_us;
    pthread_mutex_unlock(&c->lock);
}

#endif
