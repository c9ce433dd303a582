/* use_lite — the use-lite embedder backend: SentencePiece tokenizer (spm.c) + the C forward pass of
 * Universal Sentence Encoder lite (use_model.c, use_forward.c).
 *
 * Open reads vocab.json, model.json and the shards once; tokenizer and weights are then read-only and
 * shared by every caller. A call tokenizes its texts (each cut to the model's 128 positions), packs them
 * into chunks of at most USE_CHUNK_TOKENS tokens (one set of sgemm calls per chunk; measured on the
 * benchmark texts, 512 tokens per chunk runs as fast as 1024 or 2048 and 256 is 4% slower, and it bounds
 * the scratch memory to ~10 MB per concurrent caller), and
 * runs the forward pass with a scratch buffer taken from the handle's pool. The pool is the only shared
 * mutable state: a mutex guards its free list, held only to push or pop. */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_backend.h"
#include "embed/embed_utf8.h"
#include "embed/spm.h"
#include "embed/use_model.h"

#ifndef USE_CHUNK_TOKENS
#define USE_CHUNK_TOKENS 512
#endif
/* Only the first 128 tokens reach the model, and 128 tokens of text are at most a few KB (a piece is at
 * most 16 code points), so a text is cut to this many bytes (at its last space before the limit) before
 * tokenizing: that bounds a call's memory (the lattice costs ~40 bytes per code point) for any input.
 * Ids can only differ from the reference's for a longer text whose first 128 tokens span more than 64 KB
 * (e.g. a 64 KB run of characters the vocabulary lacks, which is one token). */
#define USE_MAX_TEXT_BYTES 65536

typedef struct use_lite {
    spm *tok;
    use_model *m;
    pthread_mutex_t lock;
    use_scratch **free_list;
    int nfree, cap;
} use_lite;

static use_scratch *scratch_get(use_lite *u) {
    use_scratch *s = NULL;
    pthread_mutex_lock(&u->lock);
    if (u->nfree) s = u->free_list[--u->nfree];
    pthread_mutex_unlock(&u->lock);
    return s ? s : calloc(1, sizeof *s);
}

static void scratch_put(use_lite *u, use_scratch *s) {
    if (!s) return;
    pthread_mutex_lock(&u->lock);
    if (u->nfree == u->cap) {
        int cap = u->cap ? u->cap * 2 : 4;
        use_scratch **nl = realloc(u->free_list, (size_t)cap * sizeof *nl);
        if (nl) {
            u->free_list = nl;
            u->cap = cap;
        }
    }
    if (u->nfree < u->cap) {
        u->free_list[u->nfree++] = s;
        s = NULL;
    }
    pthread_mutex_unlock(&u->lock);
    if (s) { /* could not keep it */
        use_scratch_free(s);
        free(s);
    }
}

static size_t clip(const char *text, size_t len) { return embed_utf8_clip(text, len, USE_MAX_TEXT_BYTES); }

static int use_tokenize(void *state, const char *text, size_t len, int32_t *ids, int max_ids) {
    use_lite *u = state;
    len = clip(text, len);
    int cap = max_ids < u->m->max_len ? max_ids : u->m->max_len;
    int n = spm_encode(u->tok, text, len, ids, cap);
    if (n < 0) return -1;
    return n < u->m->max_len ? n : u->m->max_len;
}

static int use_batch(void *state, const char *const *texts, const size_t *lens, int n, float *out, char *err,
                     size_t errlen) {
    use_lite *u = state;
    const use_model *m = u->m;
    int32_t *ids = malloc((size_t)n * (size_t)m->max_len * sizeof *ids);
    int *off = malloc((size_t)n * sizeof *off), *ntok = malloc((size_t)n * sizeof *ntok);
    use_scratch *s = scratch_get(u);
    int rc = 0;
    if (!ids || !off || !ntok || !s) {
        rc = embed_fail(err, errlen, "use-lite: out of memory");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        off[i] = i * m->max_len;
        const char *t = texts[i] ? texts[i] : "";
        int k = spm_encode(u->tok, t, clip(t, lens[i]), ids + off[i], m->max_len);
        if (k < 0) {
            rc = embed_fail(err, errlen, "use-lite: out of memory tokenizing text %d", i);
            goto out;
        }
        ntok[i] = k < m->max_len ? k : m->max_len;
    }
    for (int i = 0; i < n;) {
        int j = i, tokens = 0;
        while (j < n && (j == i || tokens + ntok[j] <= USE_CHUNK_TOKENS)) tokens += ntok[j++];
        if (use_forward(m, s, ids, off + i, ntok + i, j - i, out + (size_t)i * m->d_out)) {
            rc = embed_fail(err, errlen, "use-lite: out of memory in the forward pass");
            goto out;
        }
        i = j;
    }
out:
    free(ids);
    free(off);
    free(ntok);
    scratch_put(u, s);
    return rc;
}

static void use_close(void *state) {
    use_lite *u = state;
    if (!u) return;
    for (int i = 0; i < u->nfree; i++) {
        use_scratch_free(u->free_list[i]);
        free(u->free_list[i]);
    }
    free(u->free_list);
    pthread_mutex_destroy(&u->lock);
    use_model_free(u->m);
    spm_free(u->tok);
    free(u);
}

static const embed_ops use_ops = {.batch = use_batch, .tokenize = use_tokenize, .close = use_close};

/* Returns 0, -1 on error, or -2 when the model files are missing (the caller may fall back). */
int embed_use_lite_open(const embed_config *cfg, embed_backend *out, char *err, size_t errlen) {
    use_lite *u = calloc(1, sizeof *u);
    if (!u) return embed_fail(err, errlen, "out of memory");
    if (pthread_mutex_init(&u->lock, NULL)) {
        free(u);
        return embed_fail(err, errlen, "use-lite: cannot create a mutex");
    }
    /* One BLAS thread: parallelism comes from concurrent callers (see embed.h). */
    openblas_set_num_threads(1);
    char path[EMBED_PATH_MAX + 32];
    int missing = 0;
    snprintf(path, sizeof path, "%s/vocab.json", cfg->model_dir);
    u->tok = spm_load(path, SPM_RESERVED_DEFAULT, &missing, err, errlen);
    if (u->tok) u->m = use_model_load(cfg->model_dir, &missing, err, errlen);
    if (!u->tok || !u->m) {
        use_close(u);
        return missing ? -2 : -1;
    }
    if (spm_vocab_size(u->tok) > u->m->vocab) {
        int v = spm_vocab_size(u->tok), e = u->m->vocab;
        use_close(u);
        return embed_fail(err, errlen, "use-lite: vocabulary has %d pieces but the embedding table %d rows", v, e);
    }
    out->ops = &use_ops;
    out->state = u;
    out->dim = u->m->d_out;
    snprintf(out->model_id, sizeof out->model_id, "use-lite");
    return 0;
}
