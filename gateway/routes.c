/*
 * routes.c - the gateway's table of contents: every public /api/v1 route of SPEC section 3 and
 * where it goes.  No route takes the service token: callers authenticate with an API key, checked
 * by each handler with the scope it needs.
 */
#include "svc.h"

#define PUB PL_ROUTE_PUBLIC

const struct pl_route gw_routes[] = {
    { "POST", "/api/v1/customers", gw_to_customer, PUB },
    { "GET", "/api/v1/customers", gw_to_customer, PUB },
    { "GET", "/api/v1/customers/{id}", gw_to_customer, PUB },
    { "PATCH", "/api/v1/customers/{id}", gw_to_customer, PUB },
    { "GET", "/api/v1/customers/external/{type}/{external_id}", gw_to_customer, PUB },
    { "GET", "/api/v1/stats/channels", gw_to_customer, PUB },
    { "POST", "/api/v1/conversations", gw_to_conversation, PUB },
    { "GET", "/api/v1/conversations", gw_to_conversation, PUB },
    { "GET", "/api/v1/conversations/{id}", gw_to_conversation, PUB },
    { "PATCH", "/api/v1/conversations/{id}", gw_to_conversation, PUB },
    { "POST", "/api/v1/conversations/{id}/participants", gw_to_conversation, PUB },
    { "DELETE", "/api/v1/conversations/{id}/participants/{customer_id}", gw_to_conversation, PUB },
    { "GET", "/api/v1/conversations/{id}/messages", gw_to_messaging, PUB },
    { "GET", "/api/v1/conversations/{id}/details", gw_conversation_details, PUB },
    { "GET", "/api/v1/conversations/{id}/stream", gw_stream, PUB },
    { "POST", "/api/v1/messages", gw_to_messaging, PUB },
    { "GET", "/api/v1/messages/{id}", gw_to_messaging, PUB },
    { "PUT", "/api/v1/messages/{id}", gw_to_messaging, PUB },
    { "GET", "/api/v1/messages/{id}/history", gw_to_messaging, PUB },
    { "POST", "/api/v1/media/upload", gw_media_upload, PUB | PL_ROUTE_STREAM },
    { "GET", "/api/v1/media/{id}", gw_to_media, PUB },
    { "GET", "/api/v1/media/{id}/download", gw_to_media, PUB },
    { "GET", "/api/v1/media/{id}/content", gw_media_content, PUB },
    { "GET", "/api/v1/webhooks/whatsapp", gw_to_inbound, PUB },
    { "POST", "/api/v1/webhooks/whatsapp", gw_to_inbound, PUB | PL_ROUTE_BIG_BODY },
    { "POST", "/api/v1/webhooks/telegram", gw_to_inbound, PUB | PL_ROUTE_BIG_BODY },
    { "GET", "/api/v1/webhooks/dead", gw_webhooks_admin, PUB },
    { "POST", "/api/v1/webhooks/{id}/replay", gw_webhooks_admin, PUB },
    { "POST", "/api/v1/api-keys", gw_api_keys_create, PUB | PL_ROUTE_JSON },
    { "GET", "/api/v1/api-keys", gw_api_keys_list, PUB },
    { "DELETE", "/api/v1/api-keys/{id}", gw_api_keys_revoke, PUB },
    { "GET", "/api/v1/services/health", gw_health_all, PUB },
    { "GET", "/api/v1/services/health/{service}", gw_health_one, PUB },
    { "GET", "/api/v1/notifications", gw_notifications, PUB },
    { "GET", "/api/v1/logs", gw_logs_list, PUB },
    { "GET", "/api/v1/logs/{id}", gw_logs_get, PUB },
    { "GET", "/api/v1/telemetry/metrics", gw_telemetry, PUB },
    { "GET", "/api/v1/openapi.yaml", gw_openapi, PUB },
    { NULL, NULL, NULL, 0 },
};
