/*
 * svc.h - customer-svc private declarations: configuration, context, handlers, SQL functions.
 */
#ifndef CUSTOMER_SVC_H
#define CUSTOMER_SVC_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "parley/config.h"
#include "parley/http.h"

struct pl_arena;
struct pl_db;
struct pl_err;

#define CUST_SERVICE "customer-svc"
#define CUST_PER_PAGE_DEFAULT 20
#define CUST_IDS_MAX 200

struct cust_cfg {
    struct pl_cfg_common c;
};

struct svc_ctx {
    const struct cust_cfg *cfg;
};

/* An upsert or a patch.  Strings borrowed from the request body. */
struct customer_input {
    const char *external_type;
    const char *external_id;
    bool has_name;     /* name given (possibly null) */
    const char *name;  /* NULL for JSON null */
    const char *metadata; /* serialized object to merge, or NULL */
};

struct customer_filter {
    const char *external_type; /* NULL = any */
    const char *external_id;
    const char *q;   /* case-insensitive name prefix */
    const char *ids; /* PostgreSQL uuid[] literal of validated ids */
    long long limit;
    long long offset;
};

extern const struct pl_route cust_routes[];

enum MHD_Result cust_customers_create(struct pl_req *req);
enum MHD_Result cust_customers_get(struct pl_req *req);
enum MHD_Result cust_customers_get_external(struct pl_req *req);
enum MHD_Result cust_customers_list(struct pl_req *req);
enum MHD_Result cust_customers_update(struct pl_req *req);
enum MHD_Result cust_stats_channels(struct pl_req *req);

/*
 * SQL.  Each returns PL_DB_ROW, PL_DB_NONE or a failure code with err filled; JSON text results are
 * copied into the arena.  Writes emit their event through the outbox in the same statement.
 */
int cust_db_customer_upsert(PGconn *db, struct pl_arena *a, const struct customer_input *in,
                            const char **json, bool *created, struct pl_err *err);
int cust_db_customer_get(PGconn *db, struct pl_arena *a, const char *id, const char **json,
                         struct pl_err *err);
int cust_db_customer_get_external(PGconn *db, struct pl_arena *a, const char *type,
                                  const char *external_id, const char **json, struct pl_err *err);
int cust_db_customer_patch(PGconn *db, struct pl_arena *a, const char *id,
                           const struct customer_input *in, const char **json, struct pl_err *err);
int cust_db_customer_list(PGconn *db, struct pl_arena *a, const struct customer_filter *f,
                          const char ***items, int *n, long long *total, struct pl_err *err);
int cust_db_stats_channels(PGconn *db, struct pl_arena *a, const char **json, struct pl_err *err);

#endif
