/*
 * routes.c - customer-svc's table of contents.
 */
#include "svc.h"

const struct pl_route cust_routes[] = {
    { "POST", "/api/customers", cust_customers_create, PL_ROUTE_JSON },
    { "GET", "/api/customers", cust_customers_list, 0 },
    { "GET", "/api/customers/{id}", cust_customers_get, 0 },
    { "PATCH", "/api/customers/{id}", cust_customers_update, PL_ROUTE_JSON },
    { "GET", "/api/customers/external/{type}/{external_id}", cust_customers_get_external, 0 },
    { "GET", "/api/stats/channels", cust_stats_channels, 0 },
    { NULL, NULL, NULL, 0 },
};
