/*
 * routes.c - conversation-svc's table of contents.
 */
#include "svc.h"

const struct pl_route conv_routes[] = {
    { "POST", "/api/conversations", conv_conversations_create, PL_ROUTE_JSON },
    { "GET", "/api/conversations", conv_conversations_list, 0 },
    { "GET", "/api/conversations/{id}", conv_conversations_get, 0 },
    { "PATCH", "/api/conversations/{id}", conv_conversations_update, PL_ROUTE_JSON },
    { "POST", "/api/conversations/{id}/participants", conv_participants_add, PL_ROUTE_JSON },
    { "GET", "/api/conversations/{id}/participants/{customer_id}", conv_participants_get, 0 },
    { "DELETE", "/api/conversations/{id}/participants/{customer_id}", conv_participants_remove, 0 },
    { "PUT", "/api/conversations/by-chat/{channel}/{chat_id}", conv_chats_put, PL_ROUTE_JSON },
    { "POST", "/api/conversations/by-chat/{channel}/{chat_id}/migrate", conv_chats_migrate,
      PL_ROUTE_JSON },
    { NULL, NULL, NULL, 0 },
};
