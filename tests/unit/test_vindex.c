/* vindex: exact search agrees with a brute-force reference; put/replace/remove keep the id map and the
 * matrix consistent; filters apply inside the search. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search/vindex.h"

#define DIM 37 /* not a multiple of 8 or 16: exercises the SIMD tails */

static void rand_unit(float *v, unsigned *seed)
{
    double n = 0;
    for (int i = 0; i < DIM; i++) {
        v[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
        n += (double)v[i] * v[i];
    }
    for (int i = 0; i < DIM; i++)
        v[i] = (float)(v[i] / sqrt(n));
}

static void id_of(char *buf, int i) { snprintf(buf, VINDEX_ID_MAX, "id-%05d", i); }

static void test_dot_matches_scalar(void **state)
{
    (void)state;
    unsigned seed = 1;
    for (int dim = 1; dim < 70; dim++) {
        float a[70], b[70];
        double ref = 0;
        for (int i = 0; i < dim; i++) {
            a[i] = (float)rand_r(&seed) / (float)RAND_MAX;
            b[i] = (float)rand_r(&seed) / (float)RAND_MAX;
            ref += (double)a[i] * b[i];
        }
        assert_true(fabs(vindex_dot(a, b, dim) - ref) < 1e-4);
    }
}

/* brute force over a shadow copy: the best k ids passing the filter */
typedef struct shadow {
    int alive;
    int type;
    int agent; /* 0 or 1 */
    float v[DIM];
} shadow;

static void check_search(vindex *vi, shadow *sh, int n, const float *q, size_t k, const vindex_filter *f, int agent)
{
    float best[64];
    int bid[64];
    size_t nb = 0;
    for (int i = 0; i < n; i++) {
        if (!sh[i].alive || (sh[i].type == 0 ? !f->messages : !f->knowledge))
            continue;
        if (f->agent_id && sh[i].type == 0 && sh[i].agent != agent)
            continue;
        float s = vindex_dot(q, sh[i].v, DIM);
        size_t p = nb < k ? nb++ : k;
        if (p == k && s <= best[k - 1])
            continue;
        if (p == k)
            p = k - 1;
        while (p > 0 && best[p - 1] < s) {
            best[p] = best[p - 1];
            bid[p] = bid[p - 1];
            p--;
        }
        best[p] = s;
        bid[p] = i;
    }
    vindex_hit hits[64];
    size_t got = vindex_search(vi, q, k, f, hits);
    assert_int_equal(got, nb);
    for (size_t i = 0; i < got; i++) {
        char want[VINDEX_ID_MAX];
        id_of(want, bid[i]);
        assert_true(fabsf(hits[i].sim - best[i]) < 1e-5);
        if (i + 1 < got && fabsf(best[i] - best[i + 1]) > 1e-6)
            assert_string_equal(hits[i].id, want); /* ties may come in either order */
    }
}

static void test_search_matches_brute_force(void **state)
{
    (void)state;
    enum { N = 600 };
    static shadow sh[N];
    unsigned seed = 7;
    vindex *vi = vindex_new(DIM);
    assert_non_null(vi);
    for (int i = 0; i < N; i++) {
        char id[VINDEX_ID_MAX], sess[VINDEX_ID_MAX];
        id_of(id, i);
        snprintf(sess, sizeof sess, "s%d", i % 10);
        sh[i].alive = 1;
        sh[i].type = i % 5 == 0;
        sh[i].agent = (i % 10) < 5;
        rand_unit(sh[i].v, &seed);
        assert_int_equal(vindex_put(vi, id, sh[i].type, sh[i].type ? NULL : sess,
                                    sh[i].type ? NULL : (sh[i].agent ? "agent-1" : "agent-0"), sh[i].v), 0);
    }
    assert_int_equal(vindex_size(vi), N);
    /* replace some vectors, remove others (exercising the swap-with-last path and the probe chains) */
    for (int i = 0; i < N; i += 7) {
        char id[VINDEX_ID_MAX];
        id_of(id, i);
        rand_unit(sh[i].v, &seed);
        assert_int_equal(vindex_put(vi, id, sh[i].type, sh[i].type ? NULL : "s-x", sh[i].type ? NULL : (sh[i].agent ? "agent-1" : "agent-0"), sh[i].v), 0);
    }
    int removed = 0;
    for (int i = 3; i < N; i += 11) {
        char id[VINDEX_ID_MAX];
        id_of(id, i);
        assert_int_equal(vindex_remove(vi, id), 1);
        assert_int_equal(vindex_remove(vi, id), 0);
        sh[i].alive = 0;
        removed++;
    }
    assert_int_equal(vindex_size(vi), N - removed);
    for (int t = 0; t < 20; t++) {
        float q[DIM];
        rand_unit(q, &seed);
        vindex_filter all = {.messages = 1, .knowledge = 1};
        vindex_filter msgs = {.messages = 1, .knowledge = 0};
        vindex_filter know = {.messages = 0, .knowledge = 1};
        vindex_filter agent = {.agent_id = "agent-1", .messages = 1, .knowledge = 1};
        check_search(vi, sh, N, q, 10, &all, 0);
        check_search(vi, sh, N, q, 1, &msgs, 0);
        check_search(vi, sh, N, q, 25, &know, 0);
        check_search(vi, sh, N, q, 10, &agent, 1);
    }
    vindex_free(vi);
}

static void test_remove_session_and_limits(void **state)
{
    (void)state;
    vindex *vi = vindex_new(DIM);
    float v[DIM] = {1};
    assert_int_equal(vindex_put(vi, "a", 0, "s1", "ag", v), 0);
    assert_int_equal(vindex_put(vi, "b", 0, "s2", "ag", v), 0);
    assert_int_equal(vindex_put(vi, "c", 0, "s1", "ag", v), 0);
    assert_int_equal(vindex_put(vi, "k", 1, NULL, NULL, v), 0);
    assert_int_equal(vindex_remove_session(vi, "s1"), 2);
    assert_int_equal(vindex_size(vi), 2);
    vindex_hit hits[4];
    vindex_filter all = {.messages = 1, .knowledge = 1};
    assert_int_equal(vindex_search(vi, v, 4, &all, hits), 2);
    assert_int_equal(vindex_search(vi, v, 0, &all, hits), 0);
    char longid[VINDEX_ID_MAX + 8];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    assert_int_equal(vindex_put(vi, longid, 0, "s", "a", v), -1);
    assert_null(vindex_new(0));
    vindex_free(vi);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_matches_scalar),
        cmocka_unit_test(test_search_matches_brute_force),
        cmocka_unit_test(test_remove_session_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
