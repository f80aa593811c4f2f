/*
 * openapi.c - GET /api/v1/openapi.yaml: the OpenAPI 3.1 description of the public API
 * (docs/openapi.yaml), without an API key.
 *
 * The document describes this binary, so it is fixed for the life of the process.  It comes, in
 * this order, from the file PARLEY_OPENAPI_PATH names when that is set; from the binary itself
 * when the build embedded it (the weak symbols gw_openapi_doc..gw_openapi_doc_end, defined by a
 * .incbin object the Makefile may link in, and NULL otherwise); from docs/openapi.yaml under the
 * working directory (the local stack and the tests run from the repository root); or from beside
 * the binary, build/bin/../../docs (a binary started elsewhere in a checkout).  A file is read
 * once, on the first request.  A missing document is a deployment fault: 500, logged once.
 */
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parley/log.h"
#include "svc.h"

#define DOC_MAX (1 << 20) /* far above the document's size; a bigger file is not ours */
#define DOC_DEFAULT "docs/openapi.yaml"

/* The embedded copy, when the build links one in (see the Makefile); else both NULL. */
extern const char gw_openapi_doc[] __attribute__((weak));
extern const char gw_openapi_doc_end[] __attribute__((weak));

static const char *doc; /* written once under pthread_once, then only read */
static size_t doc_len;
static pthread_once_t doc_once = PTHREAD_ONCE_INIT;

/* The whole file, malloc'd, or NULL. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0;

    if (f == NULL)
        return NULL;
    buf = malloc(DOC_MAX + 1);
    if (buf != NULL)
        n = fread(buf, 1, DOC_MAX + 1, f);
    if (buf != NULL && (ferror(f) || n == 0 || n > DOC_MAX)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

/* dirname(/proc/self/exe)/../../docs/openapi.yaml into out; false when it cannot be known. */
static bool
beside_binary(char *out, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n <= 0)
        return false;
    exe[n] = '\0';
    return snprintf(out, size, "%s/../../%s", dirname(exe), DOC_DEFAULT) < (int)size;
}

static void
load(void)
{
    const char *env = getenv("PARLEY_OPENAPI_PATH");
    const char *start = gw_openapi_doc, *end = gw_openapi_doc_end;
    char other[PATH_MAX + 32] = "";

    if (env != NULL && env[0] != '\0') {
        doc = slurp(env, &doc_len);
        if (doc == NULL)
            pl_log_error("could not read the OpenAPI document \"%s\"", env);
        return;
    }
    if (start != NULL && end > start) {
        doc = start;
        doc_len = (size_t)(end - start);
        return;
    }
    doc = slurp(DOC_DEFAULT, &doc_len);
    if (doc == NULL && beside_binary(other, sizeof(other)))
        doc = slurp(other, &doc_len);
    if (doc == NULL)
        pl_log_error("could not read the OpenAPI document \"%s\" nor \"%s\"", DOC_DEFAULT, other);
}

enum MHD_Result
gw_openapi(struct pl_req *req)
{
    pthread_once(&doc_once, load);
    if (doc == NULL)
        return pl_reply_error(req, 500, "internal", "the API description is not available");
    return pl_reply_text(req, 200, "application/yaml", doc, doc_len);
}
