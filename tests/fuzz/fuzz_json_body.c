/*
 * fuzz_json_body.c - libFuzzer target for request bodies: jansson parsing exactly as the server
 * does it, then the declarative field checks and UTF-8 helpers of common/json.c.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "parley/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct pl_field fields[] = {
    { "external_type", PL_F_STRING, true, false, 64, 1 },
    { "external_id", PL_F_STRING, true, false, 255, 1 },
    { "name", PL_F_STRING, false, true, 255, 0 },
    { "metadata", PL_F_OBJECT, false, true, PL_METADATA_MAX, 0 },
    { "participants", PL_F_ARRAY, false, false, 50, 0 },
    { "id", PL_F_UUID, false, false, 0, 0 },
    { "count", PL_F_INTEGER, false, false, 0, 0 },
    { "flag", PL_F_BOOL, false, false, 0, 0 },
    { NULL, 0, false, false, 0, 0 },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    json_t *errors = NULL;

    (void)pl_utf8_valid((const char *)data, size);
    (void)pl_utf8_chars((const char *)data, size);
    if (root == NULL)
        return 0;
    if (!pl_json_check(root, fields, &errors) && errors == NULL)
        abort(); /* a failed check must say why */
    json_decref(errors);
    json_decref(root);
    return 0;
}
