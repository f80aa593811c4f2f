/*
 * routes.c - media-svc's table of contents.
 *
 * The upload streams its body (PL_ROUTE_STREAM): nothing is buffered whole.  The content route is
 * public at the HTTP layer because a signed URL opens it without the service token; its handler
 * checks one or the other.  The fetch is internal: inbound-svc stores a channel's media with it.
 */
#include "svc.h"

const struct pl_route media_routes[] = {
    { "POST", "/api/media/upload", media_upload, PL_ROUTE_STREAM },
    { "POST", "/api/media/fetch", media_fetch, PL_ROUTE_JSON },
    { "GET", "/api/media/{id}", media_get, 0 },
    { "GET", "/api/media/{id}/download", media_download, 0 },
    { "GET", "/api/media/{id}/content", media_content, PL_ROUTE_PUBLIC },
    { NULL, NULL, NULL, 0 },
};
