/* embed_cli — see embed_cli.h. Output lines are built in a growable buffer and written with one fwrite
 * each, so a consumer reading lines never sees half an object; the text is re-encoded as valid UTF-8
 * (ill-formed bytes become U+FFFD) and floats are printed with 9 significant digits (exact for float32). */
#include "embed/embed_cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "embed/embed_utf8.h"

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_reserve(sbuf *b, size_t more) {
    if (b->oom || b->n + more + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void sb_put(sbuf *b, const char *s, size_t n) {
    sb_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    sb_reserve(b, 64);
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    if (k < 0) { b->oom = 1; return; }
    if ((size_t)k >= b->cap - b->n) {
        sb_reserve(b, (size_t)k);
        if (b->oom) return;
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)k;
}

static void sb_json_string(sbuf *b, const char *s, size_t len) {
    if (len > ((size_t)-1 - 3) / 6) {
        b->oom = 1;
        return;
    }
    sb_reserve(b, 6 * len + 3);
    if (b->oom) return;
    b->n += embed_utf8_json_quote(s, len, b->p + b->n);
}

static int emit(embedder *e, FILE *out, const char *text, size_t len, const float *vec, sbuf *b) {
    int32_t ids[512];
    int nt = embed_tokenize(e, text, len, ids, (int)(sizeof ids / sizeof ids[0]));
    if (nt < 0) return -1;
    if (nt > (int)(sizeof ids / sizeof ids[0])) nt = (int)(sizeof ids / sizeof ids[0]);
    b->n = 0;
    sb_put(b, "{\"text\": ", 9);
    sb_json_string(b, text, len);
    sb_put(b, ", \"tokens\": [", 13);
    for (int i = 0; i < nt; i++) sb_printf(b, i ? ", %d" : "%d", (int)ids[i]);
    sb_put(b, "], \"vector\": [", 14);
    int dim = embed_dim(e);
    for (int i = 0; i < dim; i++) sb_printf(b, i ? ", %.9g" : "%.9g", (double)vec[i]);
    sb_put(b, "]}\n", 3);
    if (b->oom) return -1;
    return fwrite(b->p, 1, b->n, out) == b->n ? 0 : -1;
}

/* Embeds and prints n texts; returns 0 or -1 (message already on stderr). */
static int run_batch(embedder *e, FILE *out, const char *const *texts, const size_t *lens, int n, sbuf *b) {
    if (n == 0) return 0;
    int dim = embed_dim(e);
    float *vecs = malloc((size_t)n * (size_t)dim * sizeof *vecs);
    if (!vecs) {
        fprintf(stderr, "memfuse embed: out of memory\n");
        return -1;
    }
    char err[512] = "";
    int rc = embed_batch(e, texts, lens, n, vecs, err, sizeof err);
    if (rc != 0) fprintf(stderr, "memfuse embed: %s\n", err);
    for (int i = 0; rc == 0 && i < n; i++) {
        errno = 0;
        rc = emit(e, out, texts[i], lens[i], vecs + (size_t)i * dim, b);
        if (rc) fprintf(stderr, "memfuse embed: cannot write text %d: %s\n", i, errno ? strerror(errno) : "out of memory");
    }
    free(vecs);
    return rc;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: memfuse embed [--embedder use-lite|hash|remote] [--model-dir DIR] [--embed-url URL]\n"
            "                     [--embed-model NAME] [--embed-api-key KEY] [--embed-dim N]\n"
            "                     [--embed-timeout-ms MS] [--batch N] [TEXT...]\n"
            "Embeds each TEXT, or each line of standard input when no TEXT is given, and prints one JSON\n"
            "object per line: {\"text\": ..., \"tokens\": [ids], \"vector\": [floats]}.\n"
            "Environment: MEMFUSE_EMBEDDER, MEMFUSE_MODEL_DIR, MEMFUSE_EMBED_URL, MEMFUSE_EMBED_MODEL,\n"
            "MEMFUSE_EMBED_API_KEY, MEMFUSE_EMBED_DIM, MEMFUSE_EMBED_TIMEOUT_MS (flags win).\n");
}

int embed_cli_main(int argc, char **argv) {
    embed_config cfg;
    char err[512] = "";
    embed_config_default(&cfg);
    if (embed_config_from_env(&cfg, err, sizeof err) || embed_config_from_args(&cfg, &argc, argv, err, sizeof err)) {
        fprintf(stderr, "memfuse embed: %s\n", err);
        return 2;
    }
    int batch = 32, first_text = argc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) { first_text = i + 1; break; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--batch") || !strncmp(a, "--batch=", 8)) {
            const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
            char *end;
            long x = v ? strtol(v, &end, 10) : 0;
            if (!v || *end || x < 1 || x > 4096) {
                fprintf(stderr, "memfuse embed: --batch needs an integer in [1, 4096]\n");
                return 2;
            }
            batch = (int)x;
            continue;
        }
        if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "memfuse embed: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        first_text = i;
        break;
    }
    embedder *e = embed_open(&cfg, err, sizeof err);
    if (!e) {
        fprintf(stderr, "memfuse embed: %s\n", err);
        return 1;
    }
    sbuf b = {0};
    int rc = 0;
    if (first_text < argc) {
        int n = argc - first_text;
        size_t *lens = malloc((size_t)n * sizeof *lens);
        if (!lens) rc = -1;
        for (int i = 0; rc == 0 && i < n; i++) lens[i] = strlen(argv[first_text + i]);
        if (rc == 0) rc = run_batch(e, stdout, (const char *const *)(argv + first_text), lens, n, &b);
        free(lens);
    } else {
        char **texts = calloc((size_t)batch, sizeof *texts);
        size_t *lens = calloc((size_t)batch, sizeof *lens);
        int n = 0;
        if (!texts || !lens) rc = -1;
        char *line = NULL;
        size_t cap = 0;
        ssize_t got;
        while (rc == 0 && (got = getline(&line, &cap, stdin)) >= 0) {
            size_t len = (size_t)got;
            if (len && line[len - 1] == '\n') len--;
            if (len && line[len - 1] == '\r') len--;
            texts[n] = malloc(len + 1);
            if (!texts[n]) { rc = -1; break; }
            memcpy(texts[n], line, len);
            texts[n][len] = 0;
            lens[n++] = len;
            if (n == batch) {
                rc = run_batch(e, stdout, (const char *const *)texts, lens, n, &b);
                for (int i = 0; i < n; i++) { free(texts[i]); texts[i] = NULL; }
                n = 0;
            }
        }
        if (rc == 0 && ferror(stdin)) {
            fprintf(stderr, "memfuse embed: cannot read standard input: %s\n", strerror(errno));
            rc = -1;
        }
        if (rc == 0) rc = run_batch(e, stdout, (const char *const *)texts, lens, n, &b);
        for (int i = 0; texts && i < n; i++) free(texts[i]);
        free(line);
        free(texts);
        free(lens);
    }
    if (rc == 0 && fflush(stdout) != 0) {
        fprintf(stderr, "memfuse embed: cannot write output: %s\n", strerror(errno));
        rc = -1;
    }
    free(b.p);
    embed_close(e);
    return rc == 0 ? 0 : 1;
}
