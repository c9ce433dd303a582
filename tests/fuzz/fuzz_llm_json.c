/* libFuzzer target for reading JSON out of model output (src/llm/llm_json.c): arbitrary bytes through
 * llm_json_extract, then every getter on every member of every object of what it found (strings into buffers
 * of several sizes, numbers with and without percentages, arrays, alternative keys), then a round trip: the
 * tree printed by cJSON must parse back to the same text, and extracting from that printed text must give it again.
 * Checked: no crash or sanitizer report; extract gives NULL, an object or an array; getter results are
 * non-empty, trimmed, fit their buffer, keep valid UTF-8 valid, and numbers are finite. (A tree holding a
 * number beyond the range of a double skips the round trip: cJSON prints an infinity as null.) */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/json.h"
#include "llm/llm_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static void check_str(const cJSON *obj, const cJSON *member) {
    static const size_t sizes[] = {1, 2, 3, 4, 5, 7, 16, 300};
    char buf[300];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        const char *s = llm_json_str(obj, member->string, buf, sizes[i]);
        if (!s) continue;
        size_t n = strlen(s);
        if (s != buf || n == 0 || n >= sizes[i]) abort();
        if (space((unsigned char)s[0]) || space((unsigned char)s[n - 1])) abort();
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, member->string);
        if (!v) v = cJSON_GetObjectItem(obj, member->string);
        if (!cJSON_IsString(v)) abort();
        if (json_utf8_valid(v->valuestring, strlen(v->valuestring)) && !json_utf8_valid(s, n)) abort();
        if (!strstr(v->valuestring, s)) abort(); /* a trimmed, possibly cut, piece of the original */
    }
}

static void walk(const cJSON *node, int depth) {
    if (!node || depth > 70) return;
    for (const cJSON *c = node->child; c; c = c->next) {
        if (cJSON_IsObject(node) && c->string) {
            check_str(node, c);
            double d;
            for (int pct = 0; pct < 2; pct++)
                if (llm_json_num(node, c->string, pct, &d) == 0 && !isfinite(d)) abort();
            const cJSON *a = llm_json_arr(node, c->string);
            if (a && !cJSON_IsArray(a)) abort();
            /* the first member of that name decides (duplicate names: the first wins, as for every getter) */
            const cJSON *first = cJSON_GetObjectItemCaseSensitive(node, c->string);
            const char *keys[] = {"no such key \x01", c->string, NULL};
            if (!llm_json_any(node, keys) && first && !cJSON_IsNull(first)) abort();
        }
        walk(c, depth + 1);
    }
}

/* A number too large for a double reads as an infinity, which cJSON prints as null: no round trip then. */
static int all_finite(const cJSON *node, int depth) {
    if (!node || depth > 70) return 1;
    if (cJSON_IsNumber(node) && !isfinite(node->valuedouble)) return 0;
    for (const cJSON *c = node->child; c; c = c->next)
        if (!all_finite(c, depth + 1)) return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *v = llm_json_extract((const char *)data, size);
    if (!v) return 0;
    if (!cJSON_IsObject(v) && !cJSON_IsArray(v)) abort();
    walk(v, 0);
    if (!all_finite(v, 0)) {
        cJSON_Delete(v);
        return 0;
    }
    char *printed = cJSON_PrintUnformatted(v);
    if (!printed) abort();
    /* compared as printed text: cJSON_Compare pairs members by name, so it fails on duplicate names */
    cJSON *back = cJSON_Parse(printed);
    char *back_printed = back ? cJSON_PrintUnformatted(back) : NULL;
    if (!back_printed || strcmp(printed, back_printed)) abort();
    cJSON *again = llm_json_extract(printed, strlen(printed));
    char *again_printed = again ? cJSON_PrintUnformatted(again) : NULL;
    if (!again_printed || strcmp(printed, again_printed)) abort();
    free(again_printed);
    free(back_printed);
    cJSON_Delete(again);
    cJSON_Delete(back);
    free(printed);
    cJSON_Delete(v);
    return 0;
}
