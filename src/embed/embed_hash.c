/* embed_hash — deterministic feature-hashing embedder; needs no files.
 *
 * How it works: the text is NFKC-casefolded; words are maximal runs of letters, marks and numbers. Each
 * word gives a word feature (weight 1) and the character 3-, 4- and 5-grams of "<word>" (weight 0.5, as in
 * fastText), so that inflections and typos still overlap. Every distinct feature is hashed with XXH3-64:
 * the low bits pick one of dim buckets, the top bit a sign (+/-), which keeps collisions unbiased. Its
 * value is weight * (1 + ln tf) (sub-linear term frequency). The vector is L2-normalised; a text without
 * any feature gets one fixed "empty" feature so that every output has unit norm.
 *
 * Texts longer than HASH_MAX_TEXT_BYTES are read up to their last space before that limit (or a character
 * boundary), which bounds the memory of a call (~200 bytes of features per word); longer documents are
 * meant to be chunked.
 *
 * The embedder has no mutable state: any number of threads may call it at once. Vectors are stable
 * across runs and machines (XXH3 is specified bit-exactly), so they may be stored. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include <xxhash.h>

#include "embed/embed_backend.h"
#include "embed/embed_utf8.h"

typedef struct hash_state {
    int dim;
} hash_state;

typedef struct feat {
    uint64_t h;
    float w;
} feat;

typedef struct feat_vec {
    feat *v;
    size_t n, cap;
} feat_vec;

static int feat_push(feat_vec *f, const void *bytes, size_t len, uint64_t seed, float w) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        feat *nv = realloc(f->v, cap * sizeof *nv);
        if (!nv) return -1;
        f->v = nv;
        f->cap = cap;
    }
    f->v[f->n].h = XXH3_64bits_withSeed(bytes, len, seed);
    f->v[f->n].w = w;
    f->n++;
    return 0;
}

static int feat_cmp(const void *a, const void *b) {
    uint64_t x = ((const feat *)a)->h, y = ((const feat *)b)->h;
    return x < y ? -1 : x > y;
}

static int is_word_cp(int32_t cp) {
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return 1;
    default: return 0;
    }
}

#define HASH_MAX_TEXT_BYTES (256u << 10)

enum { SEED_WORD = 0x776f7264, SEED_NGRAM = 0x6e6772, SEED_EMPTY = 0x656d70 };

/* Features of one word w[0..wlen) (UTF-8); offs[0..ncp] are the byte offsets of its code points. */
static int word_features(feat_vec *f, const char *w, size_t wlen, const size_t *offs, size_t ncp) {
    if (feat_push(f, w, wlen, SEED_WORD, 1.0f)) return -1;
    /* n-grams over "<" word ">": positions -1 and ncp are the boundary marks. */
    char buf[4 * 5 + 2];
    for (int n = 3; n <= 5; n++) {
        if ((size_t)n > ncp + 2) break;
        for (long s = -1; s + n <= (long)ncp + 1; s++) {
            size_t bl = 0;
            long e = s + n; /* exclusive, in the padded coordinates */
            long a = s < 0 ? 0 : s, b = e > (long)ncp ? (long)ncp : e;
            if (s < 0) buf[bl++] = '<';
            size_t nb = offs[b] - offs[a];
            memcpy(buf + bl, w + offs[a], nb);
            bl += nb;
            if (e > (long)ncp) buf[bl++] = '>';
            if (feat_push(f, buf, bl, SEED_NGRAM, 0.5f)) return -1;
        }
    }
    return 0;
}

static int hash_one(const hash_state *st, const char *text, size_t len, float *out) {
    len = embed_utf8_clip(text, len, HASH_MAX_TEXT_BYTES);
    size_t nlen;
    char *norm = embed_utf8_nfkc(text, len, 1, &nlen);
    if (!norm) return -1;
    feat_vec f = {0};
    size_t *offs = malloc((nlen + 1) * sizeof *offs);
    int rc = offs ? 0 : -1;
    const unsigned char *u = (const unsigned char *)norm;
    for (size_t i = 0; rc == 0 && i < nlen;) {
        int32_t cp;
        size_t k = embed_utf8_next(u + i, nlen - i, &cp);
        if (!is_word_cp(cp)) {
            i += k;
            continue;
        }
        size_t start = i, ncp = 0;
        while (i < nlen) {
            k = embed_utf8_next(u + i, nlen - i, &cp);
            if (!is_word_cp(cp)) break;
            offs[ncp++] = i - start;
            i += k;
        }
        offs[ncp] = i - start;
        rc = word_features(&f, norm + start, i - start, offs, ncp);
    }
    if (rc == 0 && f.n == 0) rc = feat_push(&f, "", 0, SEED_EMPTY, 1.0f);
    if (rc == 0) {
        memset(out, 0, (size_t)st->dim * sizeof *out);
        qsort(f.v, f.n, sizeof *f.v, feat_cmp);
        for (size_t i = 0; i < f.n;) {
            size_t j = i;
            while (j < f.n && f.v[j].h == f.v[i].h) j++;
            uint64_t h = f.v[i].h;
            float val = f.v[i].w * (1.0f + logf((float)(j - i)));
            out[(h & 0xffffffffu) % (uint64_t)st->dim] += (h >> 63) ? -val : val;
            i = j;
        }
        embed_l2_normalize(out, st->dim);
        /* All features may cancel out in their buckets; keep the unit-norm promise. */
        double ss = 0;
        for (int d = 0; d < st->dim; d++) ss += (double)out[d] * out[d];
        if (ss == 0.0) out[0] = 1.0f;
    }
    free(offs);
    free(f.v);
    free(norm);
    return rc;
}

static int hash_batch(void *state, const char *const *texts, const size_t *lens, int n, float *out, char *err,
                      size_t errlen) {
    const hash_state *st = state;
    for (int i = 0; i < n; i++)
        if (hash_one(st, texts[i] ? texts[i] : "", lens[i], out + (size_t)i * st->dim))
            return embed_fail(err, errlen, "hash embedder: out of memory");
    return 0;
}

static void hash_close(void *state) { free(state); }

static const embed_ops hash_ops = {.batch = hash_batch, .tokenize = NULL, .close = hash_close};

int embed_hash_open(const embed_config *cfg, embed_backend *out, char *err, size_t errlen) {
    int dim = cfg->hash_dim > 0 ? cfg->hash_dim : 512;
    if (dim < 8 || dim > 65536) return embed_fail(err, errlen, "hash dimension %d out of [8, 65536]", dim);
    hash_state *st = malloc(sizeof *st);
    if (!st) return embed_fail(err, errlen, "out of memory");
    st->dim = dim;
    out->ops = &hash_ops;
    out->state = st;
    out->dim = dim;
    snprintf(out->model_id, sizeof out->model_id, "hash-v1-%d", dim);
    return 0;
}
