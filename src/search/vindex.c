/* vindex — see vindex.h.
 *
 * The graph (hnsw.h) keeps one node per row it has seen; each row knows its node (vrow.node) and the graph
 * knows each live node's row, so the swap-with-last of a removal is one hnsw_move. A replaced or removed row
 * leaves a tombstone; when tombstones pass a quarter of the nodes the graph is rebuilt from the live rows
 * (or dropped, when the rows fell below the threshold). */
#include "search/vindex.h"
#include "search/hnsw.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

typedef struct vrow {
    char id[VINDEX_ID_MAX];
    char session_id[VINDEX_ID_MAX];
    char agent_id[VINDEX_ID_MAX];
    int type;
    uint32_t node; /* in the graph, when there is one */
} vrow;

struct vindex {
    int dim;
    size_t n, cap;
    float *mat;  /* cap * dim */
    vrow *rows;  /* cap */
    size_t *slots; /* open addressing: row index + 1, 0 = empty; nslots a power of two >= 2 * cap */
    size_t nslots;
    size_t threshold; /* rows from which the graph is used; 0: never */
    size_t ef;        /* graph search candidate list; 0: the graph's default */
    hnsw *g;          /* NULL: exact scan only */
};

static float dot_scalar(const float *a, const float *b, int dim)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= dim; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < dim; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int dim)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    for (; i + 8 <= dim; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    __m256 acc = _mm256_add_ps(acc0, acc1);
    __m128 lo = _mm256_castps256_ps128(acc), hi = _mm256_extractf128_ps(acc, 1);
    __m128 s = _mm_add_ps(lo, hi);
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    float r = _mm_cvtss_f32(s);
    for (; i < dim; i++)
        r += a[i] * b[i];
    return r;
}

static int have_avx2(void)
{
    static int cached = -1; /* a pure function of the CPU; a benign race sets it to the same value */
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}
#endif

float vindex_dot(const float *a, const float *b, int dim)
{
#if defined(__x86_64__)
    if (have_avx2())
        return dot_avx2(a, b, dim);
#endif
    return dot_scalar(a, b, dim);
}

vindex *vindex_new(int dim)
{
    if (dim <= 0)
        return NULL;
    vindex *v = calloc(1, sizeof *v);
    if (v) {
        v->dim = dim;
        v->threshold = VINDEX_HNSW_THRESHOLD;
    }
    return v;
}

void vindex_free(vindex *v)
{
    if (!v)
        return;
    free(v->mat);
    free(v->rows);
    free(v->slots);
    hnsw_free(v->g);
    free(v);
}

int vindex_dim(const vindex *v) { return v->dim; }
size_t vindex_size(const vindex *v) { return v->n; }
size_t vindex_bytes(const vindex *v)
{
    return v->cap * ((size_t)v->dim * sizeof(float) + sizeof(vrow)) + v->nslots * sizeof(size_t) +
           (v->g ? hnsw_bytes(v->g) : 0);
}

int vindex_has_graph(const vindex *v) { return v->g != NULL; }

static void drop_graph(vindex *v)
{
    hnsw_free(v->g);
    v->g = NULL;
}

/* A graph over every row, replacing the current one. -1 when out of memory (the current one stays). */
static int build_graph(vindex *v)
{
    hnsw *g = hnsw_new(v->dim, NULL);
    if (!g)
        return -1;
    for (size_t r = 0; r < v->n; r++) {
        uint32_t node;
        if (hnsw_insert(g, v->mat, r, &node) != 0) {
            hnsw_free(g);
            return -1;
        }
    }
    for (size_t r = 0; r < v->n; r++)
        v->rows[r].node = (uint32_t)r; /* a fresh graph numbers its nodes in insertion order */
    hnsw_free(v->g);
    v->g = g;
    return 0;
}

/* After a change: build the graph when the rows reach the threshold, rebuild it when a quarter of its
 * nodes are tombstones (drop it when the rows fell below the threshold). */
static int settle(vindex *v)
{
    if (!v->g)
        return v->threshold && v->n >= v->threshold ? build_graph(v) : 0;
    if (hnsw_tombstones(v->g) * 4 <= hnsw_nodes(v->g))
        return 0;
    if (!v->threshold || v->n < v->threshold) {
        drop_graph(v);
        return 0;
    }
    build_graph(v); /* out of memory: the old graph still answers correctly */
    return 0;
}

int vindex_set_hnsw_threshold(vindex *v, size_t threshold)
{
    v->threshold = threshold;
    if (!threshold)
        drop_graph(v);
    return settle(v);
}

void vindex_set_hnsw_ef(vindex *v, size_t ef) { v->ef = ef; }

static size_t *slot_of(const vindex *v, const char *id)
{
    if (!v->nslots)
        return NULL;
    size_t i = (size_t)XXH3_64bits(id, strlen(id)) & (v->nslots - 1);
    while (v->slots[i]) {
        if (strcmp(v->rows[v->slots[i] - 1].id, id) == 0)
            return &v->slots[i];
        i = (i + 1) & (v->nslots - 1);
    }
    return &v->slots[i]; /* the empty slot where id would go */
}

static int rehash(vindex *v, size_t nslots)
{
    size_t *ns = calloc(nslots, sizeof *ns);
    if (!ns)
        return -1;
    free(v->slots);
    v->slots = ns;
    v->nslots = nslots;
    for (size_t r = 0; r < v->n; r++)
        *slot_of(v, v->rows[r].id) = r + 1;
    return 0;
}

static int grow(vindex *v)
{
    size_t cap = v->cap ? v->cap * 2 : 64;
    float *m = realloc(v->mat, cap * (size_t)v->dim * sizeof *m);
    if (!m)
        return -1;
    v->mat = m;
    vrow *r = realloc(v->rows, cap * sizeof *r);
    if (!r)
        return -1;
    v->rows = r;
    v->cap = cap;
    return rehash(v, cap * 2);
}

static void copy_id(char dst[VINDEX_ID_MAX], const char *src)
{
    size_t n = src ? strlen(src) : 0;
    memcpy(dst, src ? src : "", n + 1);
}

int vindex_put(vindex *v, const char *id, int type, const char *session_id, const char *agent_id, const float *vec)
{
    if (strlen(id) >= VINDEX_ID_MAX || (session_id && strlen(session_id) >= VINDEX_ID_MAX) ||
        (agent_id && strlen(agent_id) >= VINDEX_ID_MAX))
        return -1;
    size_t *sl = slot_of(v, id);
    size_t row;
    if (sl && *sl) {
        row = *sl - 1;
        if (v->g && hnsw_delete(v->g, v->mat, v->rows[row].node) != 0)
            drop_graph(v); /* out of memory: exact search until the next build */
    } else {
        if (v->n == v->cap && grow(v) != 0)
            return -1;
        row = v->n++;
        *slot_of(v, id) = row + 1;
    }
    vrow *r = &v->rows[row];
    copy_id(r->id, id);
    copy_id(r->session_id, session_id);
    copy_id(r->agent_id, agent_id);
    r->type = type;
    memcpy(v->mat + row * (size_t)v->dim, vec, (size_t)v->dim * sizeof(float));
    if (v->g && hnsw_insert(v->g, v->mat, row, &r->node) != 0) {
        drop_graph(v);
        return -1;
    }
    return settle(v);
}

static void remove_row(vindex *v, size_t row)
{
    size_t last = v->n - 1;
    /* delete row's slot, re-inserting the cluster after it (linear probing) */
    size_t i = (size_t)(slot_of(v, v->rows[row].id) - v->slots);
    v->slots[i] = 0;
    if (v->g && hnsw_delete(v->g, v->mat, v->rows[row].node) != 0)
        drop_graph(v); /* out of memory: exact search until the next build */
    for (size_t j = (i + 1) & (v->nslots - 1); v->slots[j]; j = (j + 1) & (v->nslots - 1)) {
        size_t r = v->slots[j];
        v->slots[j] = 0;
        *slot_of(v, v->rows[r - 1].id) = r;
    }
    if (row != last) {
        v->rows[row] = v->rows[last];
        memcpy(v->mat + row * (size_t)v->dim, v->mat + last * (size_t)v->dim, (size_t)v->dim * sizeof(float));
        *slot_of(v, v->rows[row].id) = row + 1;
        if (v->g)
            hnsw_move(v->g, v->rows[row].node, row);
    }
    v->n--;
}

int vindex_remove(vindex *v, const char *id)
{
    size_t *sl = slot_of(v, id);
    if (!sl || !*sl)
        return 0;
    remove_row(v, *sl - 1);
    settle(v);
    return 1;
}

size_t vindex_remove_session(vindex *v, const char *session_id)
{
    size_t removed = 0;
    for (size_t r = v->n; r-- > 0;) {
        if (v->rows[r].session_id[0] && strcmp(v->rows[r].session_id, session_id) == 0) {
            remove_row(v, r);
            removed++;
        }
    }
    if (removed)
        settle(v);
    return removed;
}

/* min-heap on sim of the best k so far */
static void heap_push(vindex_hit *h, size_t *n, size_t k, const vrow *r, float sim)
{
    if (*n == k) {
        if (sim <= h[0].sim)
            return;
        h[0] = h[--*n]; /* drop the worst, then sift it down */
        size_t i = 0;
        for (;;) {
            size_t l = 2 * i + 1, m = i;
            if (l < *n && h[l].sim < h[m].sim)
                m = l;
            if (l + 1 < *n && h[l + 1].sim < h[m].sim)
                m = l + 1;
            if (m == i)
                break;
            vindex_hit t = h[i];
            h[i] = h[m];
            h[m] = t;
            i = m;
        }
    }
    size_t i = (*n)++;
    memcpy(h[i].id, r->id, sizeof h[i].id);
    h[i].type = r->type;
    h[i].sim = sim;
    while (i > 0 && h[(i - 1) / 2].sim > h[i].sim) {
        vindex_hit t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static int by_sim_desc(const void *a, const void *b)
{
    float x = ((const vindex_hit *)a)->sim, y = ((const vindex_hit *)b)->sim;
    return (x < y) - (x > y);
}

static int passes(const vrow *row, const vindex_filter *f)
{
    int allowed = row->type == 0 ? f->messages : row->type == 1 ? f->knowledge : row->type == 2 ? f->episodes
                : row->type == 3 ? f->facts : 0;
    if (!allowed)
        return 0;
    return !f->agent_id || row->type == 1 || strcmp(row->agent_id, f->agent_id) == 0;
}

typedef struct accept_ctx {
    const vindex *v;
    const vindex_filter *f;
} accept_ctx;

static int accept_row(size_t row, void *ctx)
{
    const accept_ctx *a = ctx;
    return passes(&a->v->rows[row], a->f);
}

/* The graph's answer, or 0 when it has fewer than k (out of memory, or the filter passes too few rows for
 * the walk): the caller then scans. */
static size_t graph_search(const vindex *v, const float *q, size_t k, const vindex_filter *f, vindex_hit *out)
{
    hnsw_hit stack[64], *hh = k <= 64 ? stack : malloc(k * sizeof *hh);
    if (!hh)
        return 0;
    accept_ctx a = {v, f};
    size_t n = 0;
    if (hnsw_search(v->g, v->mat, q, k, v->ef, accept_row, &a, hh, &n) != 0 || n < k)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        const vrow *row = &v->rows[hh[i].row];
        memcpy(out[i].id, row->id, sizeof out[i].id);
        out[i].type = row->type;
        out[i].sim = hh[i].sim;
    }
    if (hh != stack)
        free(hh);
    return n;
}

size_t vindex_search(const vindex *v, const float *q, size_t k, const vindex_filter *f, vindex_hit *out)
{
    size_t n = 0;
    if (k == 0)
        return 0;
    if (v->g && k < v->n && (n = graph_search(v, q, k, f, out)) > 0)
        return n;
    for (size_t r = 0; r < v->n; r++) {
        const vrow *row = &v->rows[r];
        if (!passes(row, f))
            continue;
        heap_push(out, &n, k, row, vindex_dot(q, v->mat + r * (size_t)v->dim, v->dim));
    }
    qsort(out, n, sizeof *out, by_sim_desc);
    return n;
}
