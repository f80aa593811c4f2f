/*
 * stats.c - channel statistics: customers counted per external_type, in the Kobliat shape
 * [{"name": "Whatsapp", "value": 3}, ...].
 */
#include <string.h>

#include "parley/db.h"
#include "parley/err.h"
#include "svc.h"

enum MHD_Result
cust_stats_channels(struct pl_req *req)
{
    struct pl_err err = PL_ERR_INIT;
    const char *json = NULL;
    enum MHD_Result rc;
    PGconn *db = pl_req_db(req, &rc);

    if (db == NULL)
        return rc;
    if (cust_db_stats_channels(db, pl_req_arena(req), &json, &err) < 0)
        return pl_reply_err(req, &err);
    return pl_reply_json_text(req, 200, json, strlen(json));
}
