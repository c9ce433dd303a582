/* validate — request bodies: parse with cJSON and check fields, collecting every problem for one 422.
 *
 * A problem has a FastAPI-style type, message and location (a dotted path under "body", e.g.
 * "messages.0.content"); v_respond() writes the SPEC §0.2 answer: the envelope with message
 * "Request validation failed" and one errors item per problem, plus "detail" [{type, loc, msg}].
 *
 * Before parsing, the body is checked for what cJSON would silently accept or mangle: control bytes
 * inside strings (invalid JSON), \u0000 escapes (cJSON would cut the string there) and unpaired surrogate
 * escapes (cJSON would fail the whole body). Such escapes are rewritten to bytes that are not valid UTF-8,
 * so the field that holds them fails the UTF-8 check and is named in the error. Every string getter checks UTF-8 validity. Strings returned point into the parsed
 * tree, which lives until v_free(). */
#ifndef MEMFUSE_VALIDATE_H
#define MEMFUSE_VALIDATE_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "http/http.h"

#define V_MAX_ISSUES 32

enum { V_REQUIRED = 1, V_NONEMPTY = 2 };

typedef struct v_issue {
    const char *type, *msg, *path;
} v_issue;

typedef struct vctx {
    arena *a;
    cJSON *root;
    v_issue issues[V_MAX_ISSUES];
    int n;
} vctx;

void v_init(vctx *v, arena *a);
void v_free(vctx *v);
/* Parses req's body; it must be a JSON object. Returns the object, or NULL with the problem recorded. */
cJSON *v_parse_body(vctx *v, const http_request *req);
void v_add(vctx *v, const char *path, const char *type, const char *msg);
static inline int v_ok(const vctx *v) { return v->n == 0; }
void v_respond(vctx *v, http_response *res);

/* Joins a parent path and a key ("messages" + 0 -> "messages.0"). */
const char *v_path(vctx *v, const char *parent, const char *key);
const char *v_path_index(vctx *v, const char *parent, size_t i);

/* Field getters: look up key in obj (absent and null are the same). On a problem they record it and
 * return NULL / -1. */
const char *v_string(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags, size_t max_bytes);
const char *v_string_value(vctx *v, const cJSON *item, const char *path, int flags, size_t max_bytes);
/* 0: absent (out untouched), 1: set, -1: invalid */
int v_int(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags, int64_t *out);
int v_bool(vctx *v, const cJSON *obj, const char *parent, const char *key, int *out);
/* One of allowed[] (NULL-terminated); NULL when absent or invalid. */
const char *v_enum(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags,
                   const char *const *allowed);
/* An array (absent -> NULL; with V_REQUIRED a problem); max_items bounds its length. */
const cJSON *v_array(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags, size_t max_items);
/* An array of strings, copied into an arena array; *n its length. NULL when absent or invalid
 * (distinguish with v_ok()). */
const char **v_string_array(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags,
                            size_t max_items, size_t max_bytes, size_t *n);

#endif
