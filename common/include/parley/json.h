/*
 * json.h - JSON helpers on jansson: declarative field checks for request bodies, UTF-8 lengths.
 *
 * A handler declares a static const table of struct pl_field and calls pl_json_check() once; every
 * problem lands in one "errors" object keyed by field, which becomes the 422 envelope.
 */
#ifndef PARLEY_JSON_H
#define PARLEY_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct pl_arena;

enum pl_field_kind { PL_F_STRING, PL_F_OBJECT, PL_F_INTEGER, PL_F_BOOL, PL_F_ARRAY, PL_F_UUID };

struct pl_field {
    const char *name;
    enum pl_field_kind kind;
    bool required;  /* missing (or null when !nullable) is an error */
    bool nullable;  /* JSON null accepted */
    size_t max;     /* STRING: max Unicode characters; OBJECT: max serialized bytes; ARRAY: items */
    size_t min;     /* STRING: min characters (1 = non-empty) */
};

/* Maximum serialized size of any metadata object (SPEC section 10). */
#define PL_METADATA_MAX 16384

/*
 * Checks root (must be an object) against fields, terminated by a zero entry.  Returns true when
 * valid.  Otherwise returns false and sets *errors to a new object {"field": ["message", ...]}
 * (owned by the caller); a non-object root yields {"body": ["must be a JSON object"]}.
 */
bool pl_json_check(const json_t *root, const struct pl_field *fields, json_t **errors);

/* Adds message to errors[field] (creating errors when *errors is NULL). */
void pl_json_error_add(json_t **errors, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Number of Unicode code points in the valid UTF-8 string s of n bytes. */
size_t pl_utf8_chars(const char *s, size_t n);
/* True when s[0..n) is valid UTF-8 without NUL bytes or surrogates. */
bool pl_utf8_valid(const char *s, size_t n);

/* Serializes j compactly into the arena; returns NULL only when j is NULL. */
char *pl_json_dump(struct pl_arena *a, const json_t *j);
/* Registers json_decref(j) on the arena and returns j. */
json_t *pl_json_keep(struct pl_arena *a, json_t *j);

#endif
