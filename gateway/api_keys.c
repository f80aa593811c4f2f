/*
 * api_keys.c - the admin endpoints for API keys, and key material.
 *
 * A key is "pk_" and 48 hex digits from RAND_bytes; only its SHA-256 is stored.  The secret is
 * shown once, in the 201 of its creation.
 */
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/db.h"
#include "parley/err.h"
#include "parley/json.h"
#include "parley/log.h"
#include "parley/uuid.h"
#include "parley/hex.h"
#include "svc.h"

static const struct pl_field create_fields[] = {
    { "name", PL_F_STRING, true, false, 255, 1 },
    { "scopes", PL_F_ARRAY, false, false, 3, 0 },
    { NULL, 0, false, false, 0, 0 },
};

void
gw_key_generate(char out[52])
{
    unsigned char raw[24];

    PL_ASSERT(RAND_bytes(raw, sizeof(raw)) == 1);
    memcpy(out, "pk_", 3);
    pl_hex(raw, sizeof(raw), out + 3);
}

void
gw_key_hash(const char *key, char out[65])
{
    pl_sha256_hex(key, strlen(key), out);
}

/* "read,write" from the request's scopes array (default read, write); NULL after a 422. */
static const char *
scopes_text(struct pl_req *req, const json_t *scopes, json_t **errors)
{
    char *out = pl_arena_alloc(pl_req_arena(req), 32);
    size_t i;
    json_t *s;

    if (scopes == NULL)
        return "read,write";
    out[0] = '\0';
    json_array_foreach(scopes, i, s) {
        const char *v = json_string_value(s);

        if (v == NULL || (strcmp(v, "read") && strcmp(v, "write") && strcmp(v, "admin"))) {
            pl_json_error_add(errors, "scopes", "each scope must be read, write or admin");
            return NULL;
        }
        if (strstr(out, v) == NULL)
            snprintf(out + strlen(out), 32 - strlen(out), "%s%s", *out ? "," : "", v);
    }
    if (*out == '\0') {
        pl_json_error_add(errors, "scopes", "must name at least one scope");
        return NULL;
    }
    return out;
}

enum MHD_Result
gw_api_keys_create(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const json_t *body = pl_req_json(req);
    struct gw_caller caller;
    char key[52], hash[65];
    const char *scopes, *json = NULL;
    json_t *errors = NULL, *out;
    enum MHD_Result rc;
    PGconn *db;

    if (!gw_authorize(req, GW_ADMIN, &caller, &rc))
        return rc;
    if (pl_req_header(req, "Idempotency-Key") != NULL) /* SPEC 10: never show a secret twice */
        return pl_reply_error(req, 409, "conflict", "API keys are not created idempotently");
    if (!pl_json_check(body, create_fields, &errors) ||
        (scopes = scopes_text(req, json_object_get(body, "scopes"), &errors)) == NULL)
        return pl_reply_invalid(req, errors);
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    gw_key_generate(key);
    gw_key_hash(key, hash);
    if (gw_db_key_create(db, pl_req_arena(req), json_string_value(json_object_get(body, "name")),
                         hash, scopes, &json, &err) < 0)
        return pl_reply_err(req, &err);
    out = pl_json_keep(pl_req_arena(req), json_loads(json, 0, NULL));
    json_object_set_new(out, "key", json_string(key));
    return pl_reply_json(req, 201, json_incref(out));
}

enum MHD_Result
gw_api_keys_list(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    struct gw_caller caller;
    const char *json = NULL;
    enum MHD_Result rc;
    PGconn *db;
    char *page;

    if (!gw_authorize(req, GW_ADMIN, &caller, &rc))
        return rc;
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    if (gw_db_key_list(db, pl_req_arena(req), &json, &err) < 0)
        return pl_reply_err(req, &err);
    page = pl_arena_printf(pl_req_arena(req), "{\"data\":%s}", json);
    return pl_reply_json_text(req, 200, page, strlen(page));
}

enum MHD_Result
gw_api_keys_revoke(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *id = pl_req_param(req, "id"), *json = NULL;
    struct gw_caller caller;
    enum MHD_Result rc;
    PGconn *db;
    int r;

    if (!gw_authorize(req, GW_ADMIN, &caller, &rc))
        return rc;
    if (!pl_uuid_valid(id))
        return pl_reply_error(req, 404, "Not found", "no API key with that id");
    if ((db = pl_req_db(req, &rc)) == NULL)
        return rc;
    r = gw_db_key_revoke(db, pl_req_arena(req), id, &json, &err);
    return pl_reply_row(req, r, 200, json, &err, "Not found", "no API key with that id");
}

/* Stores a key under name (scopes "read,write,admin"-style) and prints its secret once. */
int
gw_key_create_cli(struct pl_db *db, const char *name, const char *scopes)
{
    struct pl_err err = PL_ERR_INIT;
    struct pl_arena *a = pl_arena_new(1024);
    PGconn *c = pl_db_conn(db, &err);
    char key[52], hash[65];
    const char *json = NULL;
    int rc = 1;

    gw_key_generate(key);
    gw_key_hash(key, hash);
    if (c != NULL && gw_db_key_create(c, a, name, hash, scopes, &json, &err) == PL_DB_ROW) {
        printf("%s\nkey: %s\n", json, key);
        rc = 0;
    } else {
        fprintf(stderr, "could not create the API key: %s\n", err.msg);
    }
    pl_arena_free(a);
    return rc;
}

/* The bootstrap key of PARLEY_BOOTSTRAP_API_KEY exists (as its hash) with every scope. */
void
gw_key_ensure_bootstrap(struct pl_db *db, const char *key)
{
    struct pl_err err = PL_ERR_INIT;
    PGconn *c = pl_db_conn(db, &err);
    char hash[65];

    gw_key_hash(key, hash);
    if (c == NULL || gw_db_key_ensure(c, "bootstrap", hash, &err) != PL_OK)
        pl_fatal("could not store the bootstrap API key: %s", err.msg);
    pl_db_thread_close();
}
