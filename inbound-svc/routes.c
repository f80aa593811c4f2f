/*
 * routes.c - inbound-svc's table of contents.  The webhook routes are public: the channel calls
 * them through the gateway without the service token, and proves itself by its signature (the
 * raw bytes matter, so they are not PL_ROUTE_JSON), and take deliveries of up to 3 MiB (SPEC 2);
 * every other body is held to PARLEY_MAX_BODY_BYTES.  The dead-letter routes need the token.
 */
#include "svc.h"

const struct pl_route inb_routes[] = {
    { "GET", "/api/webhooks/whatsapp", inb_whatsapp_verify, PL_ROUTE_PUBLIC },
    { "POST", "/api/webhooks/whatsapp", inb_whatsapp_receive, PL_ROUTE_PUBLIC | PL_ROUTE_BIG_BODY },
    { "POST", "/api/webhooks/telegram", inb_telegram_receive, PL_ROUTE_PUBLIC | PL_ROUTE_BIG_BODY },
    { "GET", "/api/webhooks/dead", inb_webhooks_dead, 0 },
    { "POST", "/api/webhooks/{id}/replay", inb_webhooks_replay, 0 },
    { NULL, NULL, NULL, 0 },
};
