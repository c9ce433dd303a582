/* validate — see validate.h. */
#include "http/validate.h"
#include "http/envelope.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void v_init(vctx *v, arena *a)
{
    memset(v, 0, sizeof *v);
    v->a = a;
}

void v_free(vctx *v)
{
    cJSON_Delete(v->root);
    v->root = NULL;
}

void v_add(vctx *v, const char *path, const char *type, const char *msg)
{
    if (v->n < V_MAX_ISSUES)
        v->issues[v->n++] = (v_issue){.type = type, .msg = msg, .path = path ? path : ""};
}

const char *v_path(vctx *v, const char *parent, const char *key)
{
    if (!parent || !*parent)
        return key;
    const char *p = arena_sprintf(v->a, "%s.%s", parent, key);
    return p ? p : key;
}

const char *v_path_index(vctx *v, const char *parent, size_t i)
{
    const char *p = arena_sprintf(v->a, "%s%s%zu", parent ? parent : "", parent && *parent ? "." : "", i);
    return p ? p : "";
}

/* Value of the 4 hex digits at p, or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Control bytes inside strings make the body invalid JSON. Escapes that cJSON would cut or refuse —
 * \u0000 and unpaired surrogates — are rewritten to bytes that are not valid UTF-8 (see validate.h), so
 * the field holding them is the one named. Returns 0, or -1 with *pos at the offending byte. */
static int prescan(char *b, size_t n, size_t *pos)
{
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!in_str) {
            if (c == '"')
                in_str = 1;
            else if (c == 0) {
                *pos = i;
                return -1;
            }
            continue;
        }
        if (c < 0x20) {
            *pos = i;
            return -1;
        }
        if (c == '"') {
            in_str = 0;
        } else if (c == '\\' && i + 1 < n) {
            long u = b[i + 1] == 'u' && i + 5 < n ? hex4(b + i + 2) : -1;
            int paired = u >= 0xD800 && u <= 0xDBFF && i + 11 < n && b[i + 6] == '\\' && b[i + 7] == 'u' &&
                         hex4(b + i + 8) >= 0xDC00 && hex4(b + i + 8) <= 0xDFFF;
            if (u == 0 || (u >= 0xD800 && u <= 0xDFFF && !paired)) {
                /* six bytes -> three overlong NULs (C0 80): invalid UTF-8 of the same length */
                for (int k = 0; k < 6; k += 2) {
                    b[i + (size_t)k] = (char)0xC0;
                    b[i + (size_t)k + 1] = (char)0x80;
                }
                i += 5;
            } else if (paired) {
                i += 11;
            } else {
                i++; /* skip the escaped character */
            }
        }
    }
    return 0;
}

cJSON *v_parse_body(vctx *v, const http_request *req)
{
    if (!req->body || req->body_len == 0) {
        v_add(v, NULL, "missing", "Field required");
        return NULL;
    }
    char *copy = arena_strndup(v->a, req->body, req->body_len);
    if (!copy) {
        v_add(v, NULL, "json_invalid", "JSON decode error");
        return NULL;
    }
    size_t pos = 0;
    const char *end = NULL;
    if (prescan(copy, req->body_len, &pos) == 0)
        v->root = cJSON_ParseWithLengthOpts(copy, req->body_len, &end, 0);
    if (v->root) {
        /* nothing but white space may follow the value */
        const char *lim = copy + req->body_len;
        while (end < lim && isspace((unsigned char)*end))
            end++;
        if (end < lim) {
            cJSON_Delete(v->root);
            v->root = NULL;
        }
    }
    if (!v->root) {
        v_add(v, NULL, "json_invalid", "JSON decode error");
        return NULL;
    }
    if (!cJSON_IsObject(v->root)) {
        v_add(v, NULL, "model_attributes_type", "Input should be a valid dictionary or object to extract fields from");
        return NULL;
    }
    return v->root;
}

void v_respond(vctx *v, http_response *res)
{
    env_errors_begin(res, 422, "Request validation failed");
    for (int i = 0; i < v->n; i++)
        env_errors_item(res, *v->issues[i].path ? v->issues[i].path : "body", v->issues[i].msg);
    jw *w = &res->body;
    jw_arr_end(w);
    jw_key(w, "detail");
    jw_arr(w);
    for (int i = 0; i < v->n; i++) {
        jw_obj(w);
        jw_kstr(w, "type", v->issues[i].type);
        jw_key(w, "loc");
        jw_arr(w);
        jw_str(w, "body");
        const char *p = v->issues[i].path;
        while (*p) {
            const char *dot = strchr(p, '.');
            size_t len = dot ? (size_t)(dot - p) : strlen(p);
            int numeric = len > 0;
            for (size_t k = 0; k < len; k++)
                numeric &= isdigit((unsigned char)p[k]) != 0;
            if (numeric)
                jw_raw(w, p, len);
            else
                jw_strn(w, p, len);
            p += len;
            if (*p == '.')
                p++;
        }
        jw_arr_end(w);
        jw_kstr(w, "msg", v->issues[i].msg);
        jw_obj_end(w);
    }
    jw_arr_end(w);
    jw_obj_end(w);
}

static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *f = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    return f && !cJSON_IsNull(f) ? f : NULL;
}

const char *v_string_value(vctx *v, const cJSON *item, const char *path, int flags, size_t max_bytes)
{
    if (!item || cJSON_IsNull(item)) {
        if (flags & V_REQUIRED)
            v_add(v, path, "missing", "Field required");
        return NULL;
    }
    if (!cJSON_IsString(item) || !item->valuestring) {
        v_add(v, path, "string_type", "Input should be a valid string");
        return NULL;
    }
    const char *s = item->valuestring;
    size_t len = strlen(s);
    if (!json_utf8_valid(s, len)) {
        v_add(v, path, "string_unicode", "Input should be a valid UTF-8 string without NUL characters");
        return NULL;
    }
    if ((flags & V_NONEMPTY) && len == 0) {
        v_add(v, path, "string_too_short", "String should have at least 1 character");
        return NULL;
    }
    if (max_bytes && len > max_bytes) {
        const char *m = arena_sprintf(v->a, "String should have at most %zu bytes", max_bytes);
        v_add(v, path, "string_too_long", m ? m : "String is too long");
        return NULL;
    }
    return s;
}

const char *v_string(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags, size_t max_bytes)
{
    return v_string_value(v, field(obj, key), v_path(v, parent, key), flags, max_bytes);
}

int v_int(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags, int64_t *out)
{
    const cJSON *f = field(obj, key);
    const char *path = v_path(v, parent, key);
    if (!f) {
        if (flags & V_REQUIRED) {
            v_add(v, path, "missing", "Field required");
            return -1;
        }
        return 0;
    }
    double d;
    if (cJSON_IsNumber(f)) {
        d = f->valuedouble;
        if (!isfinite(d) || d != floor(d)) {
            v_add(v, path, "int_from_float", "Input should be a valid integer, got a number with a fractional part");
            return -1;
        }
    } else if (cJSON_IsString(f) && f->valuestring) {
        /* numeric strings are accepted, as the original's validation does */
        char *end = NULL;
        const char *s = f->valuestring;
        while (isspace((unsigned char)*s))
            s++;
        long long ll = strtoll(s, &end, 10);
        while (end && isspace((unsigned char)*end))
            end++;
        if (!*s || !end || *end) {
            v_add(v, path, "int_parsing", "Input should be a valid integer, unable to parse string as an integer");
            return -1;
        }
        d = (double)ll;
    } else {
        v_add(v, path, "int_type", "Input should be a valid integer");
        return -1;
    }
    if (d > 9.0e15 || d < -9.0e15) {
        v_add(v, path, "int_parsing_size", "Unable to parse input string as an integer, exceeded maximum size");
        return -1;
    }
    *out = (int64_t)d;
    return 1;
}

int v_bool(vctx *v, const cJSON *obj, const char *parent, const char *key, int *out)
{
    const cJSON *f = field(obj, key);
    if (!f)
        return 0;
    if (cJSON_IsBool(f)) {
        *out = cJSON_IsTrue(f);
        return 1;
    }
    if (cJSON_IsNumber(f) && (f->valuedouble == 0 || f->valuedouble == 1)) {
        *out = f->valuedouble == 1;
        return 1;
    }
    if (cJSON_IsString(f) && f->valuestring) {
        static const char *const yes[] = {"true", "1", "yes", "on", "t", "y"};
        static const char *const no[] = {"false", "0", "no", "off", "f", "n"};
        for (size_t i = 0; i < 6; i++) {
            if (strcasecmp(f->valuestring, yes[i]) == 0) {
                *out = 1;
                return 1;
            }
            if (strcasecmp(f->valuestring, no[i]) == 0) {
                *out = 0;
                return 1;
            }
        }
    }
    v_add(v, v_path(v, parent, key), "bool_type", "Input should be a valid boolean");
    return -1;
}

const char *v_enum(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags,
                   const char *const *allowed)
{
    const char *path = v_path(v, parent, key);
    const cJSON *f = field(obj, key);
    if (!f) {
        if (flags & V_REQUIRED)
            v_add(v, path, "missing", "Field required");
        return NULL;
    }
    if (cJSON_IsString(f) && f->valuestring) {
        for (int i = 0; allowed[i]; i++)
            if (strcmp(f->valuestring, allowed[i]) == 0)
                return allowed[i];
    }
    /* "Input should be 'a', 'b' or 'c'" */
    char msg[256];
    size_t o = (size_t)snprintf(msg, sizeof msg, "Input should be ");
    for (int i = 0; allowed[i] && o < sizeof msg; i++) {
        const char *sep = i == 0 ? "" : allowed[i + 1] ? ", " : " or ";
        o += (size_t)snprintf(msg + o, sizeof msg - o, "%s'%s'", sep, allowed[i]);
    }
    const char *m = arena_strdup(v->a, msg);
    v_add(v, path, "literal_error", m ? m : "Input should be one of the allowed values");
    return NULL;
}

const cJSON *v_array(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags, size_t max_items)
{
    const char *path = v_path(v, parent, key);
    const cJSON *f = field(obj, key);
    if (!f) {
        if (flags & V_REQUIRED)
            v_add(v, path, "missing", "Field required");
        return NULL;
    }
    if (!cJSON_IsArray(f)) {
        v_add(v, path, "list_type", "Input should be a valid list");
        return NULL;
    }
    size_t n = (size_t)cJSON_GetArraySize(f);
    if (max_items && n > max_items) {
        const char *m = arena_sprintf(v->a, "List should have at most %zu items after validation, not %zu", max_items, n);
        v_add(v, path, "too_long", m ? m : "List is too long");
        return NULL;
    }
    return f;
}

const char **v_string_array(vctx *v, const cJSON *obj, const char *parent, const char *key, int flags,
                            size_t max_items, size_t max_bytes, size_t *n)
{
    *n = 0;
    const cJSON *arr = v_array(v, obj, parent, key, flags, max_items);
    if (!arr)
        return NULL;
    size_t len = (size_t)cJSON_GetArraySize(arr);
    const char **out = arena_alloc(v->a, (len ? len : 1) * sizeof *out);
    if (!out) {
        v_add(v, v_path(v, parent, key), "internal", "Out of memory");
        return NULL;
    }
    const char *path = v_path(v, parent, key);
    size_t i = 0;
    int bad = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        out[i] = v_string_value(v, it, v_path_index(v, path, i), V_REQUIRED | (flags & V_NONEMPTY), max_bytes);
        bad |= out[i] == NULL;
    }
    if (bad)
        return NULL;
    *n = len;
    return out;
}
