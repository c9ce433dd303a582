/* opstats: observations land in the right bucket, percentiles are interpolated inside their bucket,
 * crossings count only observations strictly over the threshold, the regression flag follows recent p99
 * against the baseline's, flags and lists parse, and concurrent observers lose nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "util/log.h"
#include "util/opstats.h"
#include "util/timeutil.h"

static opstats_op snap[OP_KINDS];

static int64_t mono_ms(void) { return time_mono_ns() / 1000000; }

static int setup(void **state)
{
    (void)state;
    log_init(LOG_OFF);
    opstats_reset();
    opstats_config c;
    opstats_config_default(&c);
    c.auto_check = 0; /* the tests drive the check with their own clock */
    opstats_configure(&c);
    return 0;
}

static void test_buckets(void **state)
{
    (void)state;
    opstats_observe_ns(OP_FUSION, 0);           /* bucket 0: <= 250 ns */
    opstats_observe_ns(OP_FUSION, 250);         /* still bucket 0 (upper bounds are inclusive) */
    opstats_observe_ns(OP_FUSION, 251);         /* bucket 1 */
    opstats_observe_ns(OP_FUSION, -5);          /* clamped to 0 */
    opstats_observe(OP_FUSION, 1000);           /* 1 ms in µs: bucket of le 1e-3 (index 11) */
    opstats_observe_ns(OP_FUSION, 10000000000); /* 10 s: the last finite bucket */
    opstats_observe_ns(OP_FUSION, 10000000001); /* +Inf */
    opstats_snapshot_at(snap, mono_ms());
    const opstats_hist *h = &snap[OP_FUSION].all;
    assert_int_equal(h->count, 7);
    assert_int_equal(h->buckets[0], 3);
    assert_int_equal(h->buckets[1], 1);
    assert_int_equal(h->buckets[11], 1);
    assert_int_equal(h->buckets[OPSTATS_NBUCKETS - 2], 1);
    assert_int_equal(h->buckets[OPSTATS_NBUCKETS - 1], 1);
    assert_int_equal(h->sum_ns, 250 + 251 + 1000000 + 10000000000 + 10000000001);
    assert_true(opstats_bucket_le[11] == 1e-3);
    for (int k = 0; k < OP_KINDS; k++)
        if (k != OP_FUSION)
            assert_int_equal(snap[k].all.count, 0);
}

static void test_percentiles(void **state)
{
    (void)state;
    for (int us = 1; us <= 100; us++)
        opstats_observe(OP_BM25_SEARCH, us);
    opstats_snapshot_at(snap, mono_ms());
    const opstats_hist *h = &snap[OP_BM25_SEARCH].all;
    assert_int_equal(h->count, 100);
    double p50 = opstats_hist_quantile(h, 0.5), p99 = opstats_hist_quantile(h, 0.99);
    /* 26 values are <= 25 µs and 51 are <= 50 µs: the median lies in (25, 50] µs, interpolated near 49 µs */
    assert_true(p50 > 45e-6 && p50 <= 50e-6);
    assert_true(p99 > 95e-6 && p99 <= 100e-6);
    assert_true(opstats_hist_quantile(h, 0) <= 1e-6);
    opstats_hist empty = {0};
    assert_true(opstats_hist_quantile(&empty, 0.99) == 0);
    /* everything in +Inf: the lower bound is the answer */
    opstats_hist inf = {0};
    inf.buckets[OPSTATS_NBUCKETS - 1] = inf.count = 3;
    assert_true(opstats_hist_quantile(&inf, 0.5) == 10.0);
}

static void test_thresholds(void **state)
{
    (void)state;
    opstats_config c;
    opstats_config_default(&c);
    c.auto_check = 0;
    assert_true(c.threshold_ms[OP_POOL_ACQUIRE] == 10 && c.threshold_ms[OP_M0] == 100 &&
                c.threshold_ms[OP_M1] == 150 && c.threshold_ms[OP_M2] == 150 && c.threshold_ms[OP_EMBED_BATCH] == 50 &&
                c.threshold_ms[OP_VECTOR_SEARCH] == 10);
    char err[256];
    assert_int_equal(opstats_parse_thresholds(&c, "bm25_search=1, fusion=off,,m0=0.001", err, sizeof err), 0);
    assert_true(c.threshold_ms[OP_BM25_SEARCH] == 1 && c.threshold_ms[OP_FUSION] < 0 &&
                c.threshold_ms[OP_M0] == 0.001);
    assert_int_equal(opstats_parse_thresholds(&c, "nope=1", err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown operation 'nope'"));
    assert_int_equal(opstats_parse_thresholds(&c, "m0=fast", err, sizeof err), -1);
    assert_int_equal(opstats_parse_thresholds(&c, "m0", err, sizeof err), -1);
    assert_int_equal(opstats_parse_thresholds(&c, "m0=-1", err, sizeof err), -1);
    opstats_configure(&c);
    opstats_observe_ns(OP_BM25_SEARCH, 500000);  /* 0.5 ms: under */
    opstats_observe_ns(OP_BM25_SEARCH, 1000000); /* exactly 1 ms: not over */
    opstats_observe_ns(OP_BM25_SEARCH, 1000001); /* over */
    opstats_observe(OP_BM25_SEARCH, 5000);       /* over */
    for (int i = 0; i < 50; i++)
        opstats_observe_ns(OP_FUSION, 1000000000); /* off: never counted */
    opstats_observe_ns(OP_M0, 1000);             /* 1 µs = the threshold */
    opstats_observe_ns(OP_M0, 1001);
    opstats_snapshot_at(snap, mono_ms());
    assert_int_equal(snap[OP_BM25_SEARCH].crossings, 2);
    assert_true(snap[OP_BM25_SEARCH].threshold_ms == 1);
    assert_int_equal(snap[OP_FUSION].crossings, 0);
    assert_true(snap[OP_FUSION].threshold_ms < 0);
    assert_int_equal(snap[OP_M0].crossings, 1);
    assert_int_equal(opstats_kind("vector_search"), OP_VECTOR_SEARCH);
    assert_int_equal(opstats_kind("bogus"), -1);
    assert_string_equal(opstats_name(OP_EMBED_BATCH), "embed_batch");
}

static void test_flags(void **state)
{
    (void)state;
    opstats_config c;
    opstats_config_default(&c);
    char a0[] = "serve", a1[] = "--op-threshold", a2[] = "m0=5", a3[] = "--port", a4[] = "1",
         a5[] = "--op-threshold=fusion=off", a6[] = "--op-window", a7[] = "30", a8[] = "--op-regression-factor=3",
         a9[] = "--op-baseline", a10[] = "50", a11[] = "--op-unknown";
    char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, NULL};
    int argc = 12;
    char err[256];
    assert_int_equal(opstats_config_from_args(&c, &argc, argv, err, sizeof err), 0);
    assert_int_equal(argc, 4);
    assert_string_equal(argv[1], "--port");
    assert_string_equal(argv[2], "1");
    assert_string_equal(argv[3], "--op-unknown"); /* not ours: left for the caller to reject */
    assert_null(argv[4]);
    assert_true(c.threshold_ms[OP_M0] == 5 && c.threshold_ms[OP_FUSION] < 0);
    assert_int_equal(c.window_s, 30);
    assert_int_equal(c.baseline_count, 50);
    assert_true(c.regression_factor == 3);
    char b0[] = "serve", b1[] = "--op-window", b2[] = "zero";
    char *bad[] = {b0, b1, b2, NULL};
    argc = 3;
    assert_int_equal(opstats_config_from_args(&c, &argc, bad, err, sizeof err), -1);
    char d0[] = "serve", d1[] = "--op-threshold";
    char *dangling[] = {d0, d1, NULL};
    argc = 2;
    assert_int_equal(opstats_config_from_args(&c, &argc, dangling, err, sizeof err), -1);
}

static void test_regression(void **state)
{
    (void)state;
    opstats_config c;
    opstats_config_default(&c);
    c.auto_check = 0;
    c.baseline_count = 100;
    c.window_s = 10;
    c.min_recent = 50;
    c.regression_factor = 2;
    int64_t t0 = mono_ms();
    opstats_configure(&c); /* the windows start about now */
    for (int i = 0; i < 200; i++)
        opstats_observe(OP_VECTOR_SEARCH, 100);
    opstats_snapshot_at(snap, t0 + 1000);
    const opstats_op *o = &snap[OP_VECTOR_SEARCH];
    assert_true(o->baseline_ready);
    assert_int_equal(o->baseline.count, 200);
    assert_true(o->baseline_p99 > 50e-6 && o->baseline_p99 <= 100e-6);
    assert_false(o->regressed);
    assert_false(snap[OP_BM25_SEARCH].baseline_ready); /* nothing observed there */

    opstats_check_at(t0 + 20000); /* a checkpoint after the fast phase */
    for (int i = 0; i < 200; i++)
        opstats_observe(OP_VECTOR_SEARCH, 5000); /* 50x slower */
    opstats_snapshot_at(snap, t0 + 31000);
    assert_int_equal(o->recent.count, 200); /* only the slow phase is in the last window */
    assert_true(o->recent_span_s >= 10);
    assert_true(o->recent_p99 > 2.5e-3 && o->recent_p99 <= 5e-3);
    assert_true(o->regressed);
    assert_int_equal(o->regressions, 1);
    assert_int_equal(o->baseline.count, 200); /* the baseline stays frozen */

    for (int i = 0; i < 200; i++)
        opstats_observe(OP_VECTOR_SEARCH, 100);
    opstats_snapshot_at(snap, t0 + 42000);
    assert_int_equal(o->recent.count, 200);
    assert_false(o->regressed);
    assert_int_equal(o->regressions, 1);

    /* too few recent observations do not make a regression */
    for (int i = 0; i < 10; i++)
        opstats_observe(OP_VECTOR_SEARCH, 50000);
    opstats_snapshot_at(snap, t0 + 53000);
    assert_int_equal(o->recent.count, 10);
    assert_false(o->regressed);
}

typedef struct worker_arg {
    int id;
} worker_arg;

enum { THREADS = 4, PER_THREAD = 100000 };

static void *observer(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < PER_THREAD; i++)
        opstats_observe_ns(OP_POOL_ACQUIRE, 100 + (i % 7) + a->id);
    return NULL;
}

static void test_concurrent_observers(void **state)
{
    (void)state;
    opstats_config c;
    opstats_config_default(&c);
    c.auto_check = 1; /* the observers also run the check now and then: it must not disturb them */
    opstats_configure(&c);
    pthread_t t[THREADS];
    worker_arg args[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, observer, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    opstats_snapshot(snap);
    const opstats_hist *h = &snap[OP_POOL_ACQUIRE].all;
    assert_int_equal(h->count, (uint64_t)THREADS * PER_THREAD);
    assert_int_equal(h->buckets[0], (uint64_t)THREADS * PER_THREAD); /* all <= 250 ns */
    uint64_t want = 0;
    for (int id = 0; id < THREADS; id++)
        for (int i = 0; i < PER_THREAD; i++)
            want += (uint64_t)(100 + (i % 7) + id);
    assert_int_equal(h->sum_ns, want);
    assert_int_equal(snap[OP_POOL_ACQUIRE].crossings, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_buckets, setup),
        cmocka_unit_test_setup(test_percentiles, setup),
        cmocka_unit_test_setup(test_thresholds, setup),
        cmocka_unit_test_setup(test_flags, setup),
        cmocka_unit_test_setup(test_regression, setup),
        cmocka_unit_test_setup(test_concurrent_observers, setup),
    };
    return cmocka_run_group_tests_name("opstats", tests, NULL, NULL);
}
