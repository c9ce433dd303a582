/* hnsw — see hnsw.h.
 *
 * Layout: node i has row[i] (its row in the caller's matrix, or TOMB | slot of its vector in tomb[]),
 * level[i], a fixed layer-0 block l0[i·(1+m0)] = {count, links...} and, when level[i] > 0, a block up[i] of
 * level[i] × (1+m) for layers 1..level. Searches keep two heaps of (sim, node): the candidates (best on top)
 * and the ef best seen (worst on top); a filtered search also keeps the k best accepted nodes it evaluated. */
#include "search/hnsw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "search/vindex.h"

#define TOMB 0x80000000u
#define MAX_LEVEL 15

typedef struct cand {
    float sim;
    uint32_t id;
} cand;

typedef struct cvec {
    cand *a;
    size_t n, cap;
} cvec;

/* Nodes seen by one layer search: an epoch per node (inserts, under the write lock) or a bitmap (a search). */
typedef struct visited {
    uint32_t *mark, epoch;
    uint64_t *bits;
} visited;

struct hnsw {
    int dim, m, m0, ef_c, ef_s;
    double ml;
    uint64_t rng;
    size_t n, cap;
    uint32_t *row;
    uint8_t *level;
    uint32_t *l0;
    uint32_t **up;
    size_t up_bytes;
    size_t ntomb, tcap;
    float *tomb;
    uint32_t entry;
    int maxlevel; /* -1: empty */
    /* insert scratch */
    uint32_t *mark, epoch;
    cvec cands;
    cand *w;   /* ef_c */
    cand *sel; /* max(ef_c, m0 + 1) */
    uint32_t *chosen;
};

void hnsw_config_default(hnsw_config *c)
{
    *c = (hnsw_config){
        .m = 16, .ef_construction = 200, .ef_search = HNSW_EF_DEFAULT, .seed = 0x9e3779b97f4a7c15ull};
}

hnsw *hnsw_new(int dim, const hnsw_config *c)
{
    hnsw_config d;
    if (!c) {
        hnsw_config_default(&d);
        c = &d;
    }
    if (dim <= 0 || c->m < 2 || c->m > 64 || c->ef_construction < 1)
        return NULL;
    hnsw *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->dim = dim;
    h->m = c->m;
    h->m0 = 2 * c->m;
    h->ef_c = c->ef_construction;
    h->ef_s = c->ef_search > 0 ? c->ef_search : HNSW_EF_DEFAULT;
    h->ml = 1.0 / log((double)c->m);
    h->rng = c->seed;
    h->maxlevel = -1;
    size_t nsel = (size_t)(h->ef_c > h->m0 + 1 ? h->ef_c : h->m0 + 1);
    h->w = malloc((size_t)h->ef_c * sizeof *h->w);
    h->sel = malloc(nsel * sizeof *h->sel);
    h->chosen = malloc(nsel * sizeof *h->chosen);
    if (!h->w || !h->sel || !h->chosen) {
        hnsw_free(h);
        return NULL;
    }
    return h;
}

void hnsw_free(hnsw *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        free(h->up[i]);
    free(h->row);
    free(h->level);
    free(h->l0);
    free(h->up);
    free(h->tomb);
    free(h->mark);
    free(h->cands.a);
    free(h->w);
    free(h->sel);
    free(h->chosen);
    free(h);
}

size_t hnsw_nodes(const hnsw *h) { return h->n; }
size_t hnsw_tombstones(const hnsw *h) { return h->ntomb; }
size_t hnsw_bytes(const hnsw *h)
{
    size_t per = sizeof(uint32_t) + 1 + (size_t)(1 + h->m0) * sizeof(uint32_t) + sizeof(uint32_t *) +
                 sizeof(uint32_t) + sizeof(cand);
    return sizeof *h + h->cap * per + h->up_bytes + h->tcap * (size_t)h->dim * sizeof(float) +
           (size_t)h->ef_c * sizeof(cand) * 3;
}

static inline const float *vec_of(const hnsw *h, const float *mat, uint32_t id)
{
    uint32_t r = h->row[id];
    return r & TOMB ? h->tomb + (size_t)(r & ~TOMB) * h->dim : mat + (size_t)r * h->dim;
}

static inline uint32_t *links_of(const hnsw *h, uint32_t id, int layer)
{
    return layer == 0 ? h->l0 + (size_t)id * (1 + h->m0) : h->up[id] + (size_t)(layer - 1) * (1 + h->m);
}

static inline int visit(visited *v, uint32_t id)
{
    if (v->bits) {
        uint64_t bit = 1ull << (id & 63);
        if (v->bits[id >> 6] & bit)
            return 1;
        v->bits[id >> 6] |= bit;
        return 0;
    }
    if (v->mark[id] == v->epoch)
        return 1;
    v->mark[id] = v->epoch;
    return 0;
}

/* --- heaps of cand: max = best (highest sim) on top, min = worst on top ------------------------------- */

static inline int above(cand a, cand b, int max) { return max ? a.sim > b.sim : a.sim < b.sim; }

static void heap_up(cand *h, size_t i, int max)
{
    cand c = h[i];
    while (i > 0 && above(c, h[(i - 1) / 2], max)) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static void heap_down(cand *h, size_t n, size_t i, int max)
{
    cand c = h[i];
    for (;;) {
        size_t l = 2 * i + 1, b = l;
        if (l >= n)
            break;
        if (l + 1 < n && above(h[l + 1], h[l], max))
            b = l + 1;
        if (!above(h[b], c, max))
            break;
        h[i] = h[b];
        i = b;
    }
    h[i] = c;
}

static cand heap_pop(cand *h, size_t *n, int max)
{
    cand top = h[0];
    h[0] = h[--*n];
    if (*n)
        heap_down(h, *n, 0, max);
    return top;
}

/* Keeps the best cap: a min-heap of at most cap entries. */
static void keep_best(cand *h, size_t *n, size_t cap, cand c)
{
    if (*n < cap) {
        h[*n] = c;
        heap_up(h, (*n)++, 0);
    } else if (c.sim > h[0].sim) {
        h[0] = c;
        heap_down(h, *n, 0, 0);
    }
}

static int cvec_push(cvec *v, cand c)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? 2 * v->cap : 256;
        cand *a = realloc(v->a, cap * sizeof *a);
        if (!a)
            return -1;
        v->a = a;
        v->cap = cap;
    }
    v->a[v->n] = c;
    heap_up(v->a, v->n++, 1);
    return 0;
}

/* The accepted-results side of a layer-0 search. */
typedef struct taker {
    hnsw_accept_fn accept;
    void *ctx;
    cand *r;
    size_t n, k;
    size_t seen, passed; /* live nodes evaluated, and how many of them the filter took */
} taker;

static void offer(const hnsw *h, taker *t, cand c)
{
    uint32_t row = h->row[c.id];
    if (row & TOMB)
        return;
    t->seen++;
    if (t->accept && !t->accept(row, t->ctx))
        return;
    t->passed++;
    keep_best(t->r, &t->n, t->k, c);
}

/* Best-first search of one layer from ep: the ef best nodes into w (a min-heap, *nw of them). -1 when the
 * candidate heap cannot grow. */
static int search_layer(const hnsw *h, const float *mat, const float *q, cand ep, size_t ef, int layer,
                        visited *vis, cvec *cands, cand *w, size_t *nw, taker *t)
{
    *nw = 0;
    cands->n = 0;
    visit(vis, ep.id);
    if (cvec_push(cands, ep) != 0)
        return -1;
    keep_best(w, nw, ef, ep);
    if (t)
        offer(h, t, ep);
    while (cands->n) {
        cand c = heap_pop(cands->a, &cands->n, 1);
        if (*nw >= ef && c.sim < w[0].sim)
            break;
        const uint32_t *l = links_of(h, c.id, layer);
        uint32_t cnt = l[0];
        for (uint32_t j = 1; j <= cnt; j++)
            __builtin_prefetch(vec_of(h, mat, l[j]));
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t e = l[j];
            if (visit(vis, e))
                continue;
            cand ce = {vindex_dot(q, vec_of(h, mat, e), h->dim), e};
            if (*nw < ef || ce.sim > w[0].sim) {
                if (cvec_push(cands, ce) != 0)
                    return -1;
                keep_best(w, nw, ef, ce);
            }
            if (t)
                offer(h, t, ce);
        }
    }
    return 0;
}

/* Greedy walk (ef = 1) down to layer `down`, from the entry point. */
static cand descend(const hnsw *h, const float *mat, const float *q, int down)
{
    cand cur = {vindex_dot(q, vec_of(h, mat, h->entry), h->dim), h->entry};
    for (int layer = h->maxlevel; layer > down; layer--) {
        for (int changed = 1; changed;) {
            changed = 0;
            const uint32_t *l = links_of(h, cur.id, layer);
            for (uint32_t j = 1; j <= l[0]; j++) {
                float s = vindex_dot(q, vec_of(h, mat, l[j]), h->dim);
                if (s > cur.sim) {
                    cur = (cand){s, l[j]};
                    changed = 1;
                }
            }
        }
    }
    return cur;
}

static int by_sim_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->sim != y->sim)
        return x->sim < y->sim ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

/* The paper's heuristic (algorithm 4): of c (sims to the base vector), best first, keep a candidate only if
 * it is closer to the base than to every one kept so far; at most m, into out. Sorts c. */
static size_t select_neighbours(const hnsw *h, const float *mat, cand *c, size_t nc, size_t m, uint32_t *out)
{
    qsort(c, nc, sizeof *c, by_sim_desc);
    size_t no = 0;
    for (size_t i = 0; i < nc && no < m; i++) {
        const float *ve = vec_of(h, mat, c[i].id);
        int keep = 1;
        for (size_t j = 0; j < no && keep; j++)
            if (vindex_dot(ve, vec_of(h, mat, out[j]), h->dim) > c[i].sim)
                keep = 0;
        if (keep)
            out[no++] = c[i].id;
    }
    return no;
}

/* Adds the link e -> id on layer, shrinking e's list with the heuristic when it is full. */
static void link_back(hnsw *h, const float *mat, uint32_t e, uint32_t id, int layer)
{
    uint32_t *l = links_of(h, e, layer);
    uint32_t cap = (uint32_t)(layer == 0 ? h->m0 : h->m);
    if (l[0] < cap) {
        l[++l[0]] = id;
        return;
    }
    const float *ve = vec_of(h, mat, e);
    size_t nc = 0;
    for (uint32_t j = 1; j <= l[0]; j++)
        h->sel[nc++] = (cand){vindex_dot(ve, vec_of(h, mat, l[j]), h->dim), l[j]};
    h->sel[nc++] = (cand){vindex_dot(ve, vec_of(h, mat, id), h->dim), id};
    size_t no = select_neighbours(h, mat, h->sel, nc, cap, h->chosen);
    l[0] = (uint32_t)no;
    memcpy(l + 1, h->chosen, no * sizeof *l);
}

static int reserve(hnsw *h, size_t need)
{
    if (need <= h->cap)
        return 0;
    size_t cap = h->cap ? 2 * h->cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap >= TOMB)
        return -1;
    uint32_t *row = realloc(h->row, cap * sizeof *row);
    if (!row)
        return -1;
    h->row = row;
    uint8_t *level = realloc(h->level, cap * sizeof *level);
    if (!level)
        return -1;
    h->level = level;
    uint32_t *l0 = realloc(h->l0, cap * (size_t)(1 + h->m0) * sizeof *l0);
    if (!l0)
        return -1;
    h->l0 = l0;
    uint32_t **up = realloc(h->up, cap * sizeof *up);
    if (!up)
        return -1;
    h->up = up;
    uint32_t *mark = realloc(h->mark, cap * sizeof *mark);
    if (!mark)
        return -1;
    memset(mark + h->cap, 0, (cap - h->cap) * sizeof *mark); /* never equal to a live epoch (>= 1) */
    h->mark = mark;
    cand *ca = realloc(h->cands.a, cap * sizeof *ca); /* a layer search pushes each node at most once */
    if (!ca)
        return -1;
    h->cands.a = ca;
    h->cands.cap = cap;
    h->cap = cap;
    return 0;
}

static int random_level(hnsw *h)
{
    uint64_t z = (h->rng += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    double u = ((double)(z >> 11) + 1.0) / 9007199254740993.0; /* (0, 1] */
    int l = (int)(-log(u) * h->ml);
    return l > MAX_LEVEL ? MAX_LEVEL : l;
}

static void next_epoch(hnsw *h, visited *v)
{
    if (++h->epoch == 0) {
        memset(h->mark, 0, h->cap * sizeof *h->mark);
        h->epoch = 1;
    }
    v->mark = h->mark;
    v->epoch = h->epoch;
    v->bits = NULL;
}

int hnsw_insert(hnsw *h, const float *mat, size_t row, uint32_t *node)
{
    if (row >= TOMB || reserve(h, h->n + 1) != 0)
        return -1;
    int lv = random_level(h);
    uint32_t *up = NULL;
    if (lv > 0) {
        size_t b = (size_t)lv * (1 + h->m) * sizeof *up;
        if (!(up = calloc(1, b)))
            return -1;
        h->up_bytes += b;
    }
    /* nothing below can fail: every buffer is reserved */
    uint32_t id = (uint32_t)h->n++;
    h->row[id] = (uint32_t)row;
    h->level[id] = (uint8_t)lv;
    h->l0[(size_t)id * (1 + h->m0)] = 0;
    h->up[id] = up;
    *node = id;
    if (h->maxlevel < 0) {
        h->entry = id;
        h->maxlevel = lv;
        return 0;
    }
    const float *q = mat + row * (size_t)h->dim;
    cand ep = descend(h, mat, q, lv);
    for (int layer = lv < h->maxlevel ? lv : h->maxlevel; layer >= 0; layer--) {
        visited vis;
        next_epoch(h, &vis);
        size_t nw;
        search_layer(h, mat, q, ep, (size_t)h->ef_c, layer, &vis, &h->cands, h->w, &nw, NULL);
        for (size_t i = 0; i < nw; i++) /* the next layer starts from the best found here */
            if (h->w[i].sim > ep.sim || (h->w[i].sim == ep.sim && h->w[i].id < ep.id))
                ep = h->w[i];
        memcpy(h->sel, h->w, nw * sizeof *h->sel);
        size_t no = select_neighbours(h, mat, h->sel, nw, (size_t)h->m, h->chosen);
        uint32_t *l = links_of(h, id, layer);
        l[0] = (uint32_t)no;
        memcpy(l + 1, h->chosen, no * sizeof *l);
        for (size_t i = 0; i < no; i++)
            link_back(h, mat, l[1 + i], id, layer);
    }
    if (lv > h->maxlevel) {
        h->maxlevel = lv;
        h->entry = id;
    }
    return 0;
}

int hnsw_delete(hnsw *h, const float *mat, uint32_t node)
{
    if (node >= h->n || (h->row[node] & TOMB))
        return 0;
    if (h->ntomb == h->tcap) {
        size_t cap = h->tcap ? 2 * h->tcap : 64;
        float *t = realloc(h->tomb, cap * (size_t)h->dim * sizeof *t);
        if (!t)
            return -1;
        h->tomb = t;
        h->tcap = cap;
    }
    memcpy(h->tomb + h->ntomb * (size_t)h->dim, mat + (size_t)h->row[node] * h->dim, (size_t)h->dim * sizeof(float));
    h->row[node] = TOMB | (uint32_t)h->ntomb++;
    return 0;
}

void hnsw_move(hnsw *h, uint32_t node, size_t row)
{
    if (node < h->n && !(h->row[node] & TOMB))
        h->row[node] = (uint32_t)row;
}

int hnsw_search(const hnsw *h, const float *mat, const float *q, size_t k, size_t ef, hnsw_accept_fn accept,
                void *ctx, hnsw_hit *out, size_t *n)
{
    *n = 0;
    if (k == 0 || h->maxlevel < 0)
        return 0;
    if (ef == 0)
        ef = (size_t)h->ef_s;
    if (ef < k)
        ef = k;
    size_t nwords = (h->n + 63) / 64;
    visited vis = {.bits = malloc(nwords * sizeof(uint64_t))};
    cvec cands = {0};
    cand *w = NULL, *r = malloc(k * sizeof *r);
    int rc = -1;
    if (!vis.bits || !r)
        goto out;
    cand ep = descend(h, mat, q, 0);
    taker t = {.accept = accept, .ctx = ctx, .r = r, .k = k};
    for (;;) {
        cand *nw_buf = realloc(w, ef * sizeof *w);
        if (!nw_buf)
            goto out;
        w = nw_buf;
        memset(vis.bits, 0, nwords * sizeof(uint64_t));
        t.n = t.seen = t.passed = 0;
        size_t nw;
        if (search_layer(h, mat, q, ep, ef, 0, &vis, &cands, w, &nw, &t) != 0)
            goto out;
        if (t.passed * 100 < t.seen * HNSW_MIN_PASS_PCT) {
            rc = 1; /* too selective for the walk to find the right ones: the caller scans */
            goto out;
        }
        /* enough accepted, or the whole graph was within reach, or ef at its ceiling */
        if (t.n >= k || nw < ef || ef >= HNSW_EF_MAX)
            break;
        ef = ef * 4 > HNSW_EF_MAX ? HNSW_EF_MAX : ef * 4;
    }
    qsort(r, t.n, sizeof *r, by_sim_desc);
    for (size_t i = 0; i < t.n; i++)
        out[i] = (hnsw_hit){.row = h->row[r[i].id], .sim = r[i].sim};
    *n = t.n;
    rc = 0;
out:
    free(vis.bits);
    free(cands.a);
    free(w);
    free(r);
    return rc;
}
