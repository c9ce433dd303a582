/* spm — see spm.h for the behaviour reproduced. How it is done here:
 *
 * The trie is built once: nodes in an array, each node's children as a run of (code point, child) pairs
 * sorted by code point in two flat arrays, found by binary search. A node that ends a piece carries the id
 * of the last piece inserted with that spelling (the reference overwrites on duplicates).
 *
 * Encoding allocates per call (nothing shared is written): the code points of the preprocessed text; for
 * each start position a bit mask of the piece lengths that match there plus their ids in length order
 * (so the edge of length L from start s is found in O(1) with a popcount); then best[] (double, as the
 * reference's JavaScript numbers) and words[] over the positions. Pieces are at most 32 code points. */
#include "embed/spm.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_utf8.h"

#define SPM_MAX_PIECE 32 /* code points; longer pieces are refused at load */
#define SPM_SEP 0x2581

typedef struct spm_node {
    int32_t id; /* piece id ending here, -1 if none */
    uint32_t child_off, child_cnt;
} spm_node;

struct spm {
    int n;             /* vocabulary size */
    char **pieces;     /* UTF-8 */
    double *scores;    /* null -> 0 */
    uint8_t *u16len;   /* UTF-16 length of each piece, capped at 255 (what the backtrack subtracts) */
    spm_node *nodes;
    uint32_t nnodes;
    int32_t *edge_cp;  /* children runs */
    uint32_t *edge_to;
};

/* ---- construction ------------------------------------------------------------------------------- */

typedef struct tmp_node {
    int32_t id;
    int32_t first, next; /* first child, next sibling (indices, -1 none) */
    int32_t cp;
} tmp_node;

static int cmp_edge(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

static spm *build(char **pieces, double *scores, int n, int reserved, char *err, size_t errlen) {
    spm *s = calloc(1, sizeof *s);
    tmp_node *t = NULL;
    int64_t *run = NULL;
    size_t tn = 1, tcap = 1024;
    if (!s) goto oom;
    s->n = n;
    s->pieces = pieces;
    s->scores = scores;
    s->u16len = malloc((size_t)(n ? n : 1));
    t = malloc(tcap * sizeof *t);
    if (!s->u16len || !t) goto oom;
    t[0] = (tmp_node){.id = -1, .first = -1, .next = -1, .cp = 0};
    for (int i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)pieces[i];
        size_t plen = strlen(pieces[i]), u16 = 0, ncp = 0;
        for (size_t k = 0; k < plen;) {
            int32_t cp;
            k += embed_utf8_next(p + k, plen - k, &cp);
            u16 += cp > 0xFFFF ? 2 : 1;
            ncp++;
        }
        s->u16len[i] = (uint8_t)(u16 > 255 ? 255 : u16);
        if (i < reserved || plen == 0) continue;
        if (ncp > SPM_MAX_PIECE) {
            snprintf(err, errlen, "vocabulary piece %d is longer than %d code points", i, SPM_MAX_PIECE);
            goto fail;
        }
        int32_t node = 0;
        for (size_t k = 0; k < plen;) {
            int32_t cp;
            k += embed_utf8_next(p + k, plen - k, &cp);
            int32_t c = t[node].first;
            while (c >= 0 && t[c].cp != cp) c = t[c].next;
            if (c < 0) {
                if (tn == tcap) {
                    tcap *= 2;
                    tmp_node *nt = realloc(t, tcap * sizeof *nt);
                    if (!nt) goto oom;
                    t = nt;
                }
                c = (int32_t)tn++;
                t[c] = (tmp_node){.id = -1, .first = -1, .next = t[node].first, .cp = cp};
                t[node].first = c;
            }
            node = c;
        }
        t[node].id = i; /* later duplicates win, as in the reference */
    }
    /* Flatten: node indices stay; each node's children become a sorted run. */
    s->nnodes = (uint32_t)tn;
    s->nodes = malloc(tn * sizeof *s->nodes);
    s->edge_cp = malloc(tn * sizeof *s->edge_cp);
    s->edge_to = malloc(tn * sizeof *s->edge_to);
    run = malloc(tn * sizeof *run);
    if (!s->nodes || !s->edge_cp || !s->edge_to || !run) goto oom;
    uint32_t off = 0;
    for (size_t i = 0; i < tn; i++) {
        uint32_t cnt = 0;
        for (int32_t c = t[i].first; c >= 0; c = t[c].next) run[cnt++] = ((int64_t)t[c].cp << 32) | (uint32_t)c;
        qsort(run, cnt, sizeof *run, cmp_edge);
        s->nodes[i] = (spm_node){.id = t[i].id, .child_off = off, .child_cnt = cnt};
        for (uint32_t k = 0; k < cnt; k++) {
            s->edge_cp[off + k] = (int32_t)(run[k] >> 32);
            s->edge_to[off + k] = (uint32_t)(run[k] & 0xffffffffu);
        }
        off += cnt;
    }
    free(run);
    free(t);
    return s;
oom:
    snprintf(err, errlen, "out of memory building the tokenizer");
fail:
    free(run);
    free(t);
    if (s) {
        s->pieces = NULL; /* the caller still owns pieces/scores on failure */
        s->scores = NULL;
        spm_free(s);
    }
    return NULL;
}

static void free_pieces(char **pieces, int n) {
    if (!pieces) return;
    for (int i = 0; i < n; i++) free(pieces[i]);
    free(pieces);
}

spm *spm_from_pieces(const char *const *pieces, const double *scores, int n, int reserved, char *err,
                     size_t errlen) {
    if (n < 1) {
        snprintf(err, errlen, "empty vocabulary");
        return NULL;
    }
    char **p = calloc((size_t)n, sizeof *p);
    double *sc = malloc((size_t)n * sizeof *sc);
    if (!p || !sc) goto oom;
    for (int i = 0; i < n; i++) {
        p[i] = strdup(pieces[i]);
        if (!p[i]) goto oom;
        sc[i] = isnan(scores[i]) ? 0.0 : scores[i];
    }
    spm *s = build(p, sc, n, reserved, err, errlen);
    if (!s) {
        free_pieces(p, n);
        free(sc);
    }
    return s;
oom:
    snprintf(err, errlen, "out of memory");
    free_pieces(p, n);
    free(sc);
    return NULL;
}

static char *read_file(const char *path, size_t *len, int *missing, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (missing) *missing = (errno == ENOENT);
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    long sz = -1;
    if (fseek(f, 0, SEEK_END) == 0) sz = ftell(f);
    if (sz < 0 || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: cannot size the file", path);
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        snprintf(err, errlen, "%s: %s", path, buf ? "short read" : "out of memory");
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[sz] = 0;
    *len = (size_t)sz;
    return buf;
}

spm *spm_load(const char *path, int reserved, int *missing, char *err, size_t errlen) {
    if (missing) *missing = 0;
    size_t len;
    char *text = read_file(path, &len, missing, err, errlen);
    if (!text) return NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsArray(root)) {
        snprintf(err, errlen, "%s: not a JSON array", path);
        cJSON_Delete(root);
        return NULL;
    }
    int n = cJSON_GetArraySize(root);
    char **p = n > 0 ? calloc((size_t)n, sizeof *p) : NULL;
    double *sc = n > 0 ? malloc((size_t)n * sizeof *sc) : NULL;
    spm *s = NULL;
    if (n < 1) {
        snprintf(err, errlen, "%s: empty vocabulary", path);
        goto out;
    }
    if (!p || !sc) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, root) {
        const cJSON *piece = cJSON_GetArrayItem(item, 0), *score = cJSON_GetArrayItem(item, 1);
        if (!cJSON_IsArray(item) || !cJSON_IsString(piece) || !(cJSON_IsNumber(score) || cJSON_IsNull(score))) {
            snprintf(err, errlen, "%s: entry %d is not [piece, score]", path, i);
            goto out;
        }
        p[i] = strdup(piece->valuestring);
        if (!p[i]) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        sc[i] = cJSON_IsNull(score) ? 0.0 : score->valuedouble;
        i++;
    }
    s = build(p, sc, n, reserved, err, errlen);
out:
    cJSON_Delete(root);
    if (!s) {
        free_pieces(p, n);
        free(sc);
    }
    return s;
}

void spm_free(spm *s) {
    if (!s) return;
    free_pieces(s->pieces, s->n);
    free(s->scores);
    free(s->u16len);
    free(s->nodes);
    free(s->edge_cp);
    free(s->edge_to);
    free(s);
}

int spm_vocab_size(const spm *s) { return s->n; }

const char *spm_piece(const spm *s, int id) { return (id >= 0 && id < s->n) ? s->pieces[id] : NULL; }

/* ---- encoding ----------------------------------------------------------------------------------- */

static int32_t child(const spm *s, uint32_t node, int32_t cp) {
    const spm_node *nd = &s->nodes[node];
    uint32_t lo = nd->child_off, hi = nd->child_off + nd->child_cnt;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int32_t c = s->edge_cp[mid];
        if (c == cp) return (int32_t)s->edge_to[mid];
        if (c < cp) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

int spm_encode(const spm *s, const char *text, size_t len, int32_t *ids, int max_ids) {
    size_t nlen;
    char *norm = embed_utf8_nfkc(text, len, 0, &nlen);
    if (!norm) return -1;
    if (nlen == 0) {
        free(norm);
        return 0;
    }
    /* Code points of "▁" + norm with ' ' -> '▁'. */
    size_t n = 1;
    int32_t *sym = malloc((nlen + 1) * sizeof *sym);
    uint32_t *mask = NULL, *eoff = NULL;
    int32_t *eid = NULL, *words = NULL;
    double *best = NULL;
    int total = -1;
    if (!sym) goto out;
    sym[0] = SPM_SEP;
    for (size_t i = 0; i < nlen;) {
        int32_t cp;
        i += embed_utf8_next((const unsigned char *)norm + i, nlen - i, &cp);
        sym[n++] = cp == ' ' ? SPM_SEP : cp;
    }
    mask = malloc(n * sizeof *mask);
    eoff = malloc((n + 1) * sizeof *eoff);
    eid = malloc(n * 4 * sizeof *eid); /* grows if a text has many long matches */
    words = calloc(n + 1, sizeof *words);
    best = calloc(n + 1, sizeof *best);
    if (!mask || !eoff || !eid || !words || !best) goto out;
    size_t ecap = n * 4, ne = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t m = 0;
        eoff[i] = (uint32_t)ne;
        int32_t node = child(s, 0, sym[i]);
        for (size_t k = i; node >= 0;) {
            int32_t id = s->nodes[node].id;
            if (id >= 0) {
                if (ne == ecap) {
                    ecap *= 2;
                    int32_t *ne_ = realloc(eid, ecap * sizeof *eid);
                    if (!ne_) goto out;
                    eid = ne_;
                }
                m |= 1u << (k - i); /* bit L-1 for a piece of L code points */
                eid[ne++] = id;
            }
            if (++k >= n) break;
            node = child(s, (uint32_t)node, sym[k]);
        }
        if (!m) { /* no piece starts here: the code point alone as unknown */
            if (ne == ecap) {
                ecap *= 2;
                int32_t *ne_ = realloc(eid, ecap * sizeof *eid);
                if (!ne_) goto out;
                eid = ne_;
            }
            m = 1;
            eid[ne++] = 0;
        }
        mask[i] = m;
    }
    eoff[n] = (uint32_t)ne;
    for (size_t end = 1; end <= n; end++) {
        size_t start = end > SPM_MAX_PIECE ? end - SPM_MAX_PIECE : 0;
        for (; start < end; start++) {
            uint32_t bit = 1u << (end - start - 1);
            if (!(mask[start] & bit)) continue;
            int32_t id = eid[eoff[start] + (uint32_t)__builtin_popcount(mask[start] & (bit - 1))];
            double score = s->scores[id] + best[start];
            if (best[end] == 0 || score >= best[end]) {
                best[end] = score;
                words[end] = id;
            }
        }
    }
    /* Backtrack from the end (ids come out reversed), collapsing runs of unknowns; eid is reused as the
     * stack (cnt <= n <= capacity). A zero-length piece cannot be chosen, but step at least 1 anyway. */
    size_t cnt = 0;
    int prev_unk = 0;
    for (long it = (long)n; it > 0;) {
        int32_t id = words[it];
        if (!(prev_unk && id == 0)) eid[cnt++] = id;
        prev_unk = id == 0;
        it -= s->u16len[id] ? s->u16len[id] : 1;
    }
    for (size_t k = 0; k < cnt && k < (size_t)max_ids; k++) ids[k] = eid[cnt - 1 - k];
    total = (int)cnt;
out:
    free(norm);
    free(sym);
    free(mask);
    free(eoff);
    free(eid);
    free(words);
    free(best);
    return total;
}
