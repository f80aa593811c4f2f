/*
 * routes.c - messaging-svc's table of contents.
 */
#include "svc.h"

const struct pl_route msg_routes[] = {
    { "POST", "/api/messages", msg_messages_create, PL_ROUTE_JSON },
    { "POST", "/api/messages/batch", msg_messages_create_batch, PL_ROUTE_JSON },
    { "GET", "/api/messages/{id}", msg_messages_get, 0 },
    { "PUT", "/api/messages/{id}", msg_messages_update, PL_ROUTE_JSON },
    { "GET", "/api/messages/{id}/history", msg_messages_history, 0 },
    { "PUT", "/api/messages/by-external/{channel}/{external_message_id}",
      msg_messages_update_external, PL_ROUTE_JSON },
    { "GET", "/api/conversations/{id}/messages", msg_conversation_messages, 0 },
    { NULL, NULL, NULL, 0 },
};
