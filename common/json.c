/*
 * json.c - request body checks and UTF-8 helpers over jansson.
 *
 * jansson already rejects malformed UTF-8 and NUL escapes when parsing, so strings reaching a
 * handler are valid UTF-8; lengths are still counted in code points, as SPEC section 10 states them.
 */
#include "parley/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley/arena.h"
#include "parley/uuid.h"

static const char *const kind_names[] = {
    [PL_F_STRING] = "a string", [PL_F_OBJECT] = "an object", [PL_F_INTEGER] = "an integer",
    [PL_F_BOOL] = "a boolean",  [PL_F_ARRAY] = "an array",   [PL_F_UUID] = "a UUID string",
};

void
pl_json_error_add(json_t **errors, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    json_t *list;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (*errors == NULL)
        *errors = json_object();
    list = json_object_get(*errors, field);
    if (list == NULL) {
        list = json_array();
        json_object_set_new(*errors, field, list);
    }
    json_array_append_new(list, json_string(msg));
}

size_t
pl_utf8_chars(const char *s, size_t n)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += ((unsigned char)s[i] & 0xc0) != 0x80;
    return count;
}

bool
pl_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        unsigned c = p[i], need, cp;

        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            need = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            need = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            need = 3, cp = c & 0x07;
        else
            return false;
        if (i + need >= n)
            return false;
        for (unsigned k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
    }
    return true;
}

static bool
kind_matches(const json_t *v, enum pl_field_kind kind)
{
    switch (kind) {
    case PL_F_STRING: return json_is_string(v);
    case PL_F_OBJECT: return json_is_object(v);
    case PL_F_INTEGER: return json_is_integer(v);
    case PL_F_BOOL: return json_is_boolean(v);
    case PL_F_ARRAY: return json_is_array(v);
    case PL_F_UUID: return json_is_string(v) && pl_uuid_valid(json_string_value(v));
    }
    return false;
}

/* Checks the size limits of one present, well-typed value. */
static void
check_limits(const json_t *v, const struct pl_field *f, json_t **errors)
{
    size_t n;
    char *text;

    switch (f->kind) {
    case PL_F_STRING:
        n = pl_utf8_chars(json_string_value(v), json_string_length(v));
        if (f->max && n > f->max)
            pl_json_error_add(errors, f->name, "must be at most %zu characters", f->max);
        else if (n < f->min && f->min == 1)
            pl_json_error_add(errors, f->name, "must not be empty");
        else if (n < f->min)
            pl_json_error_add(errors, f->name, "must be at least %zu characters", f->min);
        break;
    case PL_F_OBJECT:
        if (!f->max)
            break;
        text = json_dumps(v, JSON_COMPACT);
        if (text != NULL && strlen(text) > f->max)
            pl_json_error_add(errors, f->name, "must be at most %zu bytes serialized", f->max);
        free(text);
        break;
    case PL_F_ARRAY:
        if (f->max && json_array_size(v) > f->max)
            pl_json_error_add(errors, f->name, "must have at most %zu items", f->max);
        break;
    default:
        break;
    }
}

bool
pl_json_check(const json_t *root, const struct pl_field *fields, json_t **errors)
{
    *errors = NULL;
    if (!json_is_object(root)) {
        pl_json_error_add(errors, "body", "must be a JSON object");
        return false;
    }
    for (const struct pl_field *f = fields; f->name != NULL; f++) {
        const json_t *v = json_object_get(root, f->name);

        if (v == NULL) {
            if (f->required)
                pl_json_error_add(errors, f->name, "is required");
            continue;
        }
        if (json_is_null(v)) {
            if (!f->nullable)
                pl_json_error_add(errors, f->name, "must not be null");
            continue;
        }
        if (!kind_matches(v, f->kind)) {
            pl_json_error_add(errors, f->name, "must be %s", kind_names[f->kind]);
            continue;
        }
        check_limits(v, f, errors);
    }
    return *errors == NULL;
}

char *
pl_json_dump(struct pl_arena *a, const json_t *j)
{
    char *text, *copy;

    if (j == NULL)
        return NULL;
    text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return NULL;
    copy = pl_arena_strdup(a, text);
    free(text);
    return copy;
}

static void
decref_cb(void *p)
{
    json_decref(p);
}

json_t *
pl_json_keep(struct pl_arena *a, json_t *j)
{
    if (j != NULL)
        pl_arena_defer(a, decref_cb, j);
    return j;
}
