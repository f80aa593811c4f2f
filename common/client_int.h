/*
 * client_int.h - what client.c shares with client_stream.c, private to common/.
 */
#ifndef PARLEY_CLIENT_INT_H
#define PARLEY_CLIENT_INT_H

#include <curl/curl.h>

#include "parley/client.h"

struct pl_err;

/*
 * The header lines of a call: o's extra headers, Accept (application/json unless o names one),
 * Content-Type application/json for a JSON body o does not type, X-Service-Token and the calling
 * thread's X-Request-Id.  Free with curl_slist_free_all.
 */
struct curl_slist *pl_client_headers(const struct pl_client_opts *o);

/*
 * What every call sets on its easy handle: the URL, sent as built (no dot-segment folding: ids
 * are data, and ".." in one must reach the service as such), http and https only, no signals,
 * and the connect timeout: the call's timeout, at most 2 s.
 */
void pl_client_easy_target(CURL *e, const char *url, long timeout_ms);

/* Logs a failed transfer and maps it: 504 timeout, 502 too large an answer, else 503.  PL_ERR. */
int pl_client_map_error(CURLcode rc, const char *url, struct pl_err *err);
/* The same mapping, without the log line. */
int pl_client_fill_error(CURLcode rc, struct pl_err *err);
/* CURLOPT_WRITEFUNCTION appending to the struct pl_buf of CURLOPT_WRITEDATA, failing the
 * transfer (CURLE_WRITE_ERROR) past 8 MiB. */
size_t pl_client_collect(char *p, size_t size, size_t n, void *arg);

#endif
