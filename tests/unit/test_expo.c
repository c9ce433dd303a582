/* expo: one family written in text mode is the exact Prometheus exposition (HELP/TYPE, escaped label
 * values, cumulative histogram buckets ending in +Inf, _sum, _count), and the same calls in JSON mode give
 * the same content as an object (cumulative buckets, interpolated quantiles); met_quantile interpolates
 * inside the bucket as Prometheus' histogram_quantile does. */
#include "testutil.h"

#include <math.h>

#include "api/expo.h"
#include "util/metrics.h"

static const double LE[4] = {0.001, 0.01, 0.1, INFINITY};

static void write_families(expo *e)
{
    const char *const lab[] = {"route", "/a\"b\\c\nd", "method", "GET", NULL};
    expo_family(e, "t_requests_total", "counter", "Requests.");
    expo_count(e, lab, 7);
    expo_count(e, NULL, 0);
    expo_family(e, "t_ratio", "gauge", "A ratio.");
    expo_value(e, NULL, 0.25);
    const uint64_t b[4] = {1, 2, 0, 1};
    const char *const op[] = {"op", "m0", NULL};
    expo_family(e, "t_seconds", "histogram", "Latency.");
    expo_hist(e, op, LE, b, 4, 1.5);
    expo_finish(e);
}

static void test_text(void **state)
{
    (void)state;
    expo e;
    expo_init_text(&e);
    write_families(&e);
    size_t len;
    char *t = expo_take_text(&e, &len);
    assert_non_null(t);
    assert_int_equal(len, strlen(t));
    assert_string_equal(t, "# HELP t_requests_total Requests.\n"
                           "# TYPE t_requests_total counter\n"
                           "t_requests_total{route=\"/a\\\"b\\\\c\\nd\",method=\"GET\"} 7\n"
                           "t_requests_total 0\n"
                           "# HELP t_ratio A ratio.\n"
                           "# TYPE t_ratio gauge\n"
                           "t_ratio 0.25\n"
                           "# HELP t_seconds Latency.\n"
                           "# TYPE t_seconds histogram\n"
                           "t_seconds_bucket{op=\"m0\",le=\"0.001\"} 1\n"
                           "t_seconds_bucket{op=\"m0\",le=\"0.01\"} 3\n"
                           "t_seconds_bucket{op=\"m0\",le=\"0.1\"} 3\n"
                           "t_seconds_bucket{op=\"m0\",le=\"+Inf\"} 4\n"
                           "t_seconds_sum{op=\"m0\"} 1.5\n"
                           "t_seconds_count{op=\"m0\"} 4\n");
    free(t);
}

static void test_json(void **state)
{
    (void)state;
    jw j;
    jw_init(&j);
    expo e;
    expo_init_json(&e, &j);
    write_families(&e);
    char *t = tu_jw_take(&j);
    /* q50 of {1, 2, 0, 1}: rank 2 lies in the second bucket (0.001, 0.01], half way: 0.0055 */
    const char *want =
        "{\"t_requests_total\":{\"type\":\"counter\",\"help\":\"Requests.\",\"samples\":["
        "{\"labels\":{\"route\":\"/a\\\"b\\\\c\\nd\",\"method\":\"GET\"},\"value\":7},{\"value\":0}]},"
        "\"t_ratio\":{\"type\":\"gauge\",\"help\":\"A ratio.\",\"samples\":[{\"value\":0.25}]},"
        "\"t_seconds\":{\"type\":\"histogram\",\"help\":\"Latency.\",\"samples\":[{\"labels\":{\"op\":\"m0\"},"
        "\"count\":4,\"sum\":1.5,\"p50\":0.0055,";
    assert_memory_equal(t, want, strlen(want));
    assert_non_null(strstr(t, "\"buckets\":[[\"0.001\",1],[\"0.01\",3],[\"0.1\",3],[\"+Inf\",4]]}]}}"));
    free(t);
}

static void test_quantile(void **state)
{
    (void)state;
    const uint64_t none[4] = {0};
    assert_true(met_quantile(LE, none, 4, 0.5) == 0);
    const uint64_t one[4] = {0, 10, 0, 0};
    assert_true(fabs(met_quantile(LE, one, 4, 0.5) - 0.0055) < 1e-12);
    assert_true(fabs(met_quantile(LE, one, 4, 1.0) - 0.01) < 1e-12);
    assert_true(fabs(met_quantile(LE, one, 4, 0.0) - 0.001) < 1e-12);
    const uint64_t inf[4] = {0, 0, 1, 1}; /* the top half is in +Inf: its lower bound is all that is known */
    assert_true(fabs(met_quantile(LE, inf, 4, 0.99) - 0.1) < 1e-12);
    assert_true(fabs(met_quantile(LE, inf, 4, 2.0) - 0.1) < 1e-12); /* q clamped to 1 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_quantile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
