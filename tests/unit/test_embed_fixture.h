/* test_embed_fixture — shared by the embedder tests: the model directory and the golden fixture
 * (tests/fixtures/embed_use_lite.jsonl, written by scripts/golden/make_golden.js from the reference).
 * Tests run from the repository root. Without the model files the tests fail with a pointer to
 * scripts/fetch-model.sh, unless MEMFUSE_SKIP_MODEL_TESTS=1 asks to skip them. */
#ifndef TEST_EMBED_FIXTURE_H
#define TEST_EMBED_FIXTURE_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GOLDEN_PATH "tests/fixtures/embed_use_lite.jsonl"
#define GOLDEN_DIM 512

typedef struct golden_row {
    char *text;
    size_t len;
    int32_t *ids;
    int nids;
    float vec[GOLDEN_DIM];
} golden_row;

static inline const char *golden_model_dir(void) {
    const char *d = getenv("MEMFUSE_MODEL_DIR");
    return d && *d ? d : "models/use-lite";
}

/* 1 if the model files are there; otherwise 0 after explaining (the caller fails or skips). */
static inline int golden_model_present(void) {
    char p[1200];
    struct stat st;
    snprintf(p, sizeof p, "%s/model.json", golden_model_dir());
    if (stat(p, &st) == 0) return 1;
    fprintf(stderr, "model files missing in %s: run scripts/fetch-model.sh (or set MEMFUSE_SKIP_MODEL_TESTS=1)\n",
            golden_model_dir());
    return 0;
}

static inline int golden_skip_requested(void) {
    const char *s = getenv("MEMFUSE_SKIP_MODEL_TESTS");
    return s && !strcmp(s, "1");
}

static inline int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static inline int b64_decode(const char *s, unsigned char *out, size_t cap) {
    size_t n = 0;
    int bits = 0;
    uint32_t acc = 0;
    for (; *s && *s != '='; s++) {
        int v = b64val((unsigned char)*s);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= cap) return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)n;
}

static inline void golden_free(golden_row *rows, int n) {
    for (int i = 0; i < n; i++) {
        free(rows[i].text);
        free(rows[i].ids);
    }
    free(rows);
}

/* Reads the fixture; returns the row count (rows in *out, free with golden_free) or -1. */
static inline int golden_load(golden_row **out) {
    FILE *f = fopen(GOLDEN_PATH, "rb");
    if (!f) return -1;
    golden_row *rows = NULL;
    int n = 0, cap = 0, bad = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while ((got = getline(&line, &lcap, f)) > 0) {
        cJSON *o = cJSON_ParseWithLength(line, (size_t)got);
        const cJSON *t = cJSON_GetObjectItem(o, "text"), *ids = cJSON_GetObjectItem(o, "ids"),
                    *v = cJSON_GetObjectItem(o, "vec");
        if (!cJSON_IsString(t)) { /* the header line */
            cJSON_Delete(o);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            rows = realloc(rows, (size_t)cap * sizeof *rows);
        }
        golden_row *r = &rows[n++];
        /* The exact bytes come base64-encoded in "utf8" (cJSON strings stop at U+0000). */
        const cJSON *u8 = cJSON_GetObjectItem(o, "utf8");
        size_t cap8 = cJSON_IsString(u8) ? strlen(u8->valuestring) : 0;
        r->text = malloc(cap8 + 1);
        int k = cJSON_IsString(u8) ? b64_decode(u8->valuestring, (unsigned char *)r->text, cap8) : -1;
        if (k < 0) bad = 1, k = 0;
        r->text[k] = 0;
        r->len = (size_t)k;
        r->nids = cJSON_GetArraySize(ids);
        r->ids = malloc(sizeof(int32_t) * (size_t)(r->nids ? r->nids : 1));
        for (int i = 0; i < r->nids; i++) r->ids[i] = (int32_t)cJSON_GetArrayItem(ids, i)->valuedouble;
        unsigned char raw[GOLDEN_DIM * 4];
        if (!cJSON_IsString(v) || b64_decode(v->valuestring, raw, sizeof raw) != (int)sizeof raw) bad = 1;
        else memcpy(r->vec, raw, sizeof raw); /* little-endian float32, as on x86-64 */
        cJSON_Delete(o);
    }
    free(line);
    fclose(f);
    if (bad || n == 0) {
        golden_free(rows, n);
        return -1;
    }
    *out = rows;
    return n;
}

#endif
