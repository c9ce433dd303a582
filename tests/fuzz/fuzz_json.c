/* libFuzzer target for JSON in and out: arbitrary bytes as a request body through v_parse_body (the
 * pre-scan that rewrites \u0000 and unpaired surrogates, cJSON, the trailing-bytes check) and every field
 * getter; then every string the parse produced is written back with our writer (jw) and must read back,
 * through cJSON, as the same string when it is valid UTF-8 (as U+FFFD-repaired text otherwise); and the
 * 422 answer for whatever problems were found must itself be valid JSON.
 * Checked: no crash or sanitizer report, and the round-trip and well-formedness properties above. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/envelope.h"
#include "http/json.h"
#include "http/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *no_lookup(const http_request *r, const char *k)
{
    (void)r;
    (void)k;
    return NULL;
}

static void roundtrip(const char *s)
{
    jw w;
    jw_init(&w);
    jw_arr(&w);
    jw_str(&w, s);
    jw_arr_end(&w);
    size_t len;
    char *out = jw_take(&w, &len);
    if (!out)
        abort();
    cJSON *back = cJSON_ParseWithLength(out, len);
    if (!back || !cJSON_IsArray(back) || !cJSON_IsString(back->child))
        abort();
    if (json_utf8_valid(s, strlen(s)) && strcmp(back->child->valuestring, s) != 0)
        abort();
    cJSON_Delete(back);
    free(out);
}

static void walk(vctx *v, const cJSON *node, const char *path, int depth)
{
    if (!node || depth > 8)
        return;
    for (const cJSON *c = node->child; c; c = c->next) {
        const char *p = c->string ? v_path(v, path, c->string) : v_path_index(v, path, 0);
        if (cJSON_IsString(c)) {
            v_string_value(v, c, p, V_NONEMPTY, 1 << 20);
            roundtrip(c->valuestring);
        }
        if (c->string) {
            int64_t iv;
            int bv;
            static const char *const E[] = {"vector", "keyword", "graph", NULL};
            v_int(v, node, path, c->string, 0, &iv);
            v_bool(v, node, path, c->string, &bv);
            v_enum(v, node, path, c->string, 0, E);
            size_t n;
            v_string_array(v, node, path, c->string, 0, 1000, 256, &n);
            roundtrip(c->string);
        }
        walk(v, c, p, depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    arena a;
    arena_init(&a);
    http_request req = {.body = (const char *)data, .body_len = size, .a = &a, .get_query = no_lookup,
                        .get_header = no_lookup};
    vctx v;
    v_init(&v, &a);
    cJSON *body = v_parse_body(&v, &req);
    if (body) {
        v_string(&v, body, NULL, "name", V_REQUIRED | V_NONEMPTY, 256);
        walk(&v, body, NULL, 0);
    }
    if (!v_ok(&v)) {
        http_response res = {0};
        jw_init(&res.body);
        v_respond(&v, &res);
        size_t len;
        char *out = jw_take(&res.body, &len);
        cJSON *j = out ? cJSON_ParseWithLength(out, len) : NULL;
        if (!j || !cJSON_GetObjectItemCaseSensitive(j, "detail"))
            abort();
        cJSON_Delete(j);
        free(out);
    }
    v_free(&v);
    arena_free(&a);
    return 0;
}
