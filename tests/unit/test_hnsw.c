/* hnsw and the vindex graph path: recall@10 against exact search on clustered unit vectors, deletions
 * (tombstones never returned, recall kept), filters inside the search (k results whenever k rows pass, even
 * when 1% pass), determinism, and the build when vindex_put crosses the threshold, rebuilds included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search/hnsw.h"
#include "search/vindex.h"

#define DIM 64
#define N 20000
#define CENTRES 200
#define NQ 200
#define K 10
#ifndef AGENTS
#define AGENTS 100
#endif

typedef struct fixture {
    float *mat;    /* N x DIM, row i = id i */
    float *q;      /* NQ x DIM */
    float *centre; /* CENTRES x DIM */
    int *alive;
    vindex *vi;    /* every row, graph on (threshold N) */
} fixture;

static fixture fx;

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float gauss(uint64_t *s)
{
    double u = ((double)(rng_next(s) >> 11) + 1) / 9007199254740993.0, v = (double)(rng_next(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

static void normalise(float *v, int dim)
{
    double n = 0;
    for (int i = 0; i < dim; i++)
        n += (double)v[i] * v[i];
    for (int i = 0; i < dim; i++)
        v[i] = (float)(v[i] / sqrt(n));
}

/* a random centre plus noise of about the centre's length, normalised */
static void clustered(float *v, const float *centres, int ncentres, uint64_t *s)
{
    const float *c = centres + (size_t)(rng_next(s) % (uint64_t)ncentres) * DIM;
    for (int i = 0; i < DIM; i++)
        v[i] = c[i] + 0.12f * gauss(s);
    normalise(v, DIM);
}

static void id_of(char *buf, int i) { snprintf(buf, VINDEX_ID_MAX, "id-%05d", i); }
static int id_num(const char *id) { return atoi(id + 3); }

static int type_of(int i) { return i % 5 == 0; } /* 20% knowledge */
static void agent_of(char *buf, int i) { snprintf(buf, 16, "a%d", i % AGENTS); }

static int passes(int i, const vindex_filter *f)
{
    if (type_of(i) ? !f->knowledge : !f->messages)
        return 0;
    if (!f->agent_id || type_of(i))
        return 1;
    char a[16];
    agent_of(a, i);
    return strcmp(a, f->agent_id) == 0;
}

/* the exact top k (ids) of the live rows passing f */
static size_t exact(const float *q, size_t k, const vindex_filter *f, int *best)
{
    float bs[64];
    size_t nb = 0;
    for (int i = 0; i < N; i++) {
        if (!fx.alive[i] || (f && !passes(i, f)))
            continue;
        float s = vindex_dot(q, fx.mat + (size_t)i * DIM, DIM);
        if (nb == k && s <= bs[k - 1])
            continue;
        size_t p = nb < k ? nb++ : k - 1;
        while (p > 0 && bs[p - 1] < s) {
            bs[p] = bs[p - 1];
            best[p] = best[p - 1];
            p--;
        }
        bs[p] = s;
        best[p] = i;
    }
    return nb;
}

/* recall@K of the vindex against exact, over the fixture's queries */
static double recall(const vindex_filter *f)
{
    size_t found = 0, want = 0;
    for (int qi = 0; qi < NQ; qi++) {
        const float *q = fx.q + (size_t)qi * DIM;
        int best[K];
        size_t nb = exact(q, K, f, best);
        vindex_hit hits[K];
        size_t got = vindex_search(fx.vi, q, K, f, hits);
        assert_int_equal(got, nb);
        for (size_t i = 0; i < got; i++) {
            int id = id_num(hits[i].id);
            assert_true(fx.alive[id]);
            assert_true(passes(id, f));
            for (size_t j = 0; j < nb; j++)
                if (best[j] == id) {
                    found++;
                    break;
                }
        }
        want += nb;
    }
    return (double)found / (double)want;
}

static int setup(void **state)
{
    (void)state;
    uint64_t s = 42;
    fx.mat = malloc((size_t)N * DIM * sizeof(float));
    fx.q = malloc((size_t)NQ * DIM * sizeof(float));
    fx.centre = malloc((size_t)CENTRES * DIM * sizeof(float));
    fx.alive = malloc(N * sizeof(int));
    fx.vi = vindex_new(DIM);
    if (!fx.mat || !fx.q || !fx.centre || !fx.alive || !fx.vi)
        return -1;
    for (int c = 0; c < CENTRES; c++) {
        for (int i = 0; i < DIM; i++)
            fx.centre[c * DIM + i] = gauss(&s);
        normalise(fx.centre + c * DIM, DIM);
    }
    for (int i = 0; i < N; i++)
        clustered(fx.mat + (size_t)i * DIM, fx.centre, CENTRES, &s);
    for (int i = 0; i < NQ; i++)
        clustered(fx.q + (size_t)i * DIM, fx.centre, CENTRES, &s);
    if (vindex_set_hnsw_threshold(fx.vi, N) != 0)
        return -1;
    for (int i = 0; i < N; i++) {
        char id[VINDEX_ID_MAX], sess[16], agent[16];
        id_of(id, i);
        snprintf(sess, sizeof sess, "s%d", i % 1000);
        agent_of(agent, i);
        if (vindex_put(fx.vi, id, type_of(i), type_of(i) ? NULL : sess, type_of(i) ? NULL : agent,
                       fx.mat + (size_t)i * DIM) != 0)
            return -1;
        fx.alive[i] = 1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vindex_free(fx.vi);
    free(fx.mat);
    free(fx.q);
    free(fx.centre);
    free(fx.alive);
    return 0;
}

static void test_recall(void **state)
{
    (void)state;
    assert_true(vindex_has_graph(fx.vi));
    vindex_filter all = {.messages = 1, .knowledge = 1};
    double r = recall(&all);
    print_message("recall@10 over %d clustered unit vectors (dim %d), %d queries: %.4f\n", N, DIM, NQ, r);
    assert_true(r >= 0.98);
}

/* The search's candidate list (vindex_set_hnsw_ef): the smallest (k itself) finds fewer of the true
 * nearest than the default, a large one more; 0 restores the default. */
static void test_ef(void **state)
{
    (void)state;
    vindex_filter all = {.messages = 1, .knowledge = 1};
    vindex_set_hnsw_ef(fx.vi, 1); /* raised to k */
    double lo = recall(&all);
    vindex_set_hnsw_ef(fx.vi, 0);
    double def = recall(&all);
    vindex_set_hnsw_ef(fx.vi, 256);
    double hi = recall(&all);
    vindex_set_hnsw_ef(fx.vi, 0);
    print_message("recall@10 by ef: k %.4f, default %.4f, 256 %.4f\n", lo, def, hi);
    assert_true(lo < def);
    assert_true(hi >= def);
    assert_true(hi >= 0.995);
    assert_true(recall(&all) == def);
}

static void test_filters(void **state)
{
    (void)state;
    vindex_filter know = {.messages = 0, .knowledge = 1};     /* 20% of rows */
    vindex_filter msgs = {.messages = 1, .knowledge = 0};     /* 80% */
    vindex_filter agent = {.agent_id = "a7", .messages = 1, .knowledge = 1}; /* a7's messages + knowledge */
    vindex_filter rare = {.agent_id = "a7", .messages = 1, .knowledge = 0};  /* 1% of rows */
    vindex_filter none = {.agent_id = "nobody", .messages = 1, .knowledge = 0};
    double rk = recall(&know), rm = recall(&msgs), ra = recall(&agent), rr = recall(&rare);
    print_message("filtered recall@10: knowledge %.4f, messages %.4f, agent %.4f, 1%% filter %.4f\n", rk, rm, ra, rr);
    assert_true(rk >= 0.95 && rm >= 0.95 && ra >= 0.95 && rr >= 0.95);
    vindex_hit hits[K];
    assert_int_equal(vindex_search(fx.vi, fx.q, K, &none, hits), 0);
    /* k larger than what passes: every passing row comes back */
    vindex_hit many[64];
    vindex_filter one = {.agent_id = "a7", .messages = 1, .knowledge = 0};
    int best[64];
    assert_int_equal(vindex_search(fx.vi, fx.q, 64, &one, many), exact(fx.q, 64, &one, best));
}

static void test_deletions(void **state)
{
    (void)state;
    /* 20% of the rows: tombstones below the rebuild fraction, so the same graph keeps answering */
    for (int i = 0; i < N; i += 5) {
        char id[VINDEX_ID_MAX];
        id_of(id, (i * 7919) % N);
        assert_int_equal(vindex_remove(fx.vi, id), 1);
        fx.alive[(i * 7919) % N] = 0;
    }
    assert_int_equal(vindex_size(fx.vi), N - N / 5);
    assert_true(vindex_has_graph(fx.vi));
    vindex_filter all = {.messages = 1, .knowledge = 1};
    double r = recall(&all); /* asserts no deleted row comes back */
    print_message("recall@10 after deleting 20%%: %.4f\n", r);
    assert_true(r >= 0.98);
}

static int accept_even(size_t row, void *ctx)
{
    (void)ctx;
    return row % 2 == 0;
}

static void test_determinism(void **state)
{
    (void)state;
    enum { M = 3000 };
    hnsw *a = hnsw_new(DIM, NULL), *b = hnsw_new(DIM, NULL);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < M; i++) {
        uint32_t na, nb;
        assert_int_equal(hnsw_insert(a, fx.mat, i, &na), 0);
        assert_int_equal(hnsw_insert(b, fx.mat, i, &nb), 0);
        assert_int_equal(na, i);
        assert_int_equal(nb, i);
    }
    for (uint32_t i = 0; i < M; i += 3) {
        assert_int_equal(hnsw_delete(a, fx.mat, i), 0);
        assert_int_equal(hnsw_delete(b, fx.mat, i), 0);
    }
    assert_int_equal(hnsw_tombstones(a), M / 3);
    for (int qi = 0; qi < 50; qi++) {
        hnsw_hit ha[K], hb[K];
        size_t na, nb;
        const float *q = fx.q + (size_t)qi * DIM;
        assert_int_equal(hnsw_search(a, fx.mat, q, K, 0, accept_even, NULL, ha, &na), 0);
        assert_int_equal(hnsw_search(b, fx.mat, q, K, 0, accept_even, NULL, hb, &nb), 0);
        assert_int_equal(na, K);
        assert_int_equal(na, nb);
        for (size_t i = 0; i < na; i++) {
            assert_int_equal(ha[i].row, hb[i].row);
            assert_true(ha[i].row % 2 == 0 && ha[i].row % 3 != 0); /* passes, not deleted */
            assert_true(ha[i].sim == hb[i].sim);
            if (i)
                assert_true(ha[i - 1].sim >= ha[i].sim);
        }
    }
    hnsw_free(a);
    hnsw_free(b);
    hnsw_hit h1[1];
    size_t n1;
    hnsw *e = hnsw_new(DIM, NULL);
    assert_int_equal(hnsw_search(e, fx.mat, fx.q, 1, 0, NULL, NULL, h1, &n1), 0); /* empty graph */
    assert_int_equal(n1, 0);
    hnsw_free(e);
    hnsw_config bad;
    hnsw_config_default(&bad);
    bad.m = 1;
    assert_null(hnsw_new(DIM, &bad));
}

/* top-1 of the small vindex against its exact answer over `rows` rows of the fixture */
static int top1_agree(vindex *vi, const int *live, int rows)
{
    int agree = 0;
    vindex_filter all = {.messages = 1, .knowledge = 1};
    for (int qi = 0; qi < NQ; qi++) {
        const float *q = fx.q + (size_t)qi * DIM;
        int best = -1;
        float bs = -2;
        for (int i = 0; i < rows; i++) {
            float s = vindex_dot(q, fx.mat + (size_t)i * DIM, DIM);
            if (live[i] && s > bs) {
                bs = s;
                best = i;
            }
        }
        vindex_hit h[1];
        assert_int_equal(vindex_search(vi, q, 1, &all, h), 1);
        assert_true(live[id_num(h[0].id)]);
        agree += id_num(h[0].id) == best;
    }
    return agree;
}

static void test_threshold_crossing(void **state)
{
    (void)state;
    enum { ROWS = 2000, T = 500 };
    static int live[ROWS];
    vindex *vi = vindex_new(DIM);
    assert_non_null(vi);
    assert_int_equal(vindex_set_hnsw_threshold(vi, T), 0);
    for (int i = 0; i < ROWS; i++) {
        char id[VINDEX_ID_MAX];
        id_of(id, i);
        assert_int_equal(vindex_put(vi, id, 0, "s", "a", fx.mat + (size_t)i * DIM), 0);
        live[i] = 1;
        assert_int_equal(vindex_has_graph(vi), i + 1 >= T);
    }
    int agree = top1_agree(vi, live, ROWS);
    print_message("top-1 equal to exact after crossing the threshold: %d/%d\n", agree, NQ);
    assert_true(agree >= NQ * 95 / 100);
    /* replacing rows (delete + insert in the graph) keeps answers right */
    for (int i = 0; i < ROWS; i += 10) {
        char id[VINDEX_ID_MAX];
        id_of(id, i);
        assert_int_equal(vindex_put(vi, id, 0, "s", "a", fx.mat + (size_t)i * DIM), 0);
    }
    assert_true(top1_agree(vi, live, ROWS) >= NQ * 95 / 100);
    /* removing 40%: rebuilds past a quarter of tombstones, stays on the graph above the threshold */
    for (int i = 0; i < ROWS; i++)
        if (i % 5 < 2) {
            char id[VINDEX_ID_MAX];
            id_of(id, i);
            assert_int_equal(vindex_remove(vi, id), 1);
            live[i] = 0;
        }
    assert_true(vindex_has_graph(vi));
    assert_true(top1_agree(vi, live, ROWS) >= NQ * 95 / 100);
    /* below the threshold with many tombstones: the graph goes, exact search answers */
    for (int i = 0; i < ROWS; i++)
        if (live[i] && i >= 600) {
            char id[VINDEX_ID_MAX];
            id_of(id, i);
            assert_int_equal(vindex_remove(vi, id), 1);
            live[i] = 0;
        }
    assert_false(vindex_has_graph(vi));
    assert_int_equal(top1_agree(vi, live, ROWS), NQ);
    assert_int_equal(vindex_set_hnsw_threshold(vi, 100), 0);
    assert_true(vindex_has_graph(vi));
    assert_int_equal(vindex_set_hnsw_threshold(vi, 0), 0);
    assert_false(vindex_has_graph(vi));
    vindex_free(vi);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recall),
        cmocka_unit_test(test_ef),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_threshold_crossing),
        cmocka_unit_test(test_deletions), /* last: it deletes from the shared index */
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
