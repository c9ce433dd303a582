/* pg_pool (src/store/pg/pg_pool.h) against a real PostgreSQL ($MEMFUSE_TEST_PG_DSN, set by
 * scripts/with-postgres.sh; `make test-pg` runs this): the DSN registry (one pool per DSN, reference
 * counted), warm-up, acquisition timeout, validation only after idling (and on every checkout with 0),
 * max-age recycling, replacement of a connection whose backend was killed, prepared statements kept per
 * connection, an unreachable server failing fast, and 8 threads sharing a pool of 3. Each test uses its
 * own DSN variant (application_name) so it gets a pool of its own with its own options. */
#include "testutil.h"

#include "store/pg/pg.h"
#include "store/pg/pg_pool.h"

#include <time.h>

static const char *base_dsn(void)
{
    const char *d = getenv("MEMFUSE_TEST_PG_DSN");
    if (!d || !*d)
        fail_msg("MEMFUSE_TEST_PG_DSN is not set (run through scripts/with-postgres.sh or make test-pg)");
    return d;
}

/* A DSN unique to the test, so its pool (and options) are its own. */
static char *dsn_for(const char *tag)
{
    char *d = NULL;
    assert_true(asprintf(&d, "%s application_name=memfuse_test_%s", base_dsn(), tag) > 0);
    return d;
}

static pg_pool_opts opts(int min, int max)
{
    pg_pool_opts o;
    pg_pool_opts_default(&o);
    o.min_conns = min;
    o.max_conns = max;
    o.acquire_timeout_ms = 200;
    return o;
}

static pg_pool *get(const char *dsn, const pg_pool_opts *o)
{
    char err[256] = "";
    pg_pool *p = pg_pool_get(dsn, o, err, sizeof err);
    if (!p)
        fail_msg("pg_pool_get: %s", err);
    return p;
}

static pg_pool_stats stats(pg_pool *p)
{
    pg_pool_stats s;
    pg_pool_stats_get(p, &s);
    return s;
}

static int backend_pid(pg_conn *c)
{
    int rc;
    PGresult *r = pg_run(c, "SELECT pg_backend_pid()", 0, NULL, &rc);
    assert_non_null(r);
    int pid = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return pid;
}

static void test_registry_one_pool_per_dsn(void **state)
{
    (void)state;
    char *d1 = dsn_for("reg1"), *d2 = dsn_for("reg2");
    pg_pool_opts o = opts(1, 2);
    pg_pool *a = get(d1, &o), *b = get(d1, NULL), *c = get(d2, &o);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_int_equal(pg_pool_options(b)->max_conns, 2); /* the first get's options stay */
    assert_string_equal(pg_pool_dsn(a), d1);
    pg_pool_put(b);
    /* still registered: a new get finds the same pool (its warm-up counter did not move) */
    pg_pool *again = get(d1, NULL);
    assert_ptr_equal(again, a);
    assert_int_equal(stats(again).connects, 1);
    pg_pool_put(again);
    pg_pool_put(a);
    pg_pool_put(c);
    /* the last put closed it: the next get builds a new pool, warming up again */
    pg_pool *fresh = get(d1, &o);
    assert_int_equal(stats(fresh).connects, 1);
    pg_pool_put(fresh);
    free(d1);
    free(d2);
}

static void test_warm_up_and_lifo_reuse(void **state)
{
    (void)state;
    char *d = dsn_for("warm");
    pg_pool_opts o = opts(3, 4);
    pg_pool *p = get(d, &o);
    pg_pool_stats s = stats(p);
    assert_int_equal(s.open, 3);
    assert_int_equal(s.idle, 3);
    assert_int_equal(s.connects, 3);
    pg_conn *c = pg_pool_acquire(p);
    assert_non_null(c);
    int pid = backend_pid(c);
    pg_pool_release(p, c);
    c = pg_pool_acquire(p);
    assert_int_equal(backend_pid(c), pid); /* the hot connection comes back first */
    pg_pool_release(p, c);
    assert_int_equal(stats(p).connects, 3);
    pg_pool_put(p);
    free(d);
}

static void test_acquire_times_out_then_recovers(void **state)
{
    (void)state;
    char *d = dsn_for("timeout");
    pg_pool_opts o = opts(0, 2);
    pg_pool *p = get(d, &o);
    pg_conn *a = pg_pool_acquire(p), *b = pg_pool_acquire(p);
    assert_non_null(a);
    assert_non_null(b);
    int64_t t0 = pg_now_ns();
    assert_null(pg_pool_acquire(p));
    int64_t waited_ms = (pg_now_ns() - t0) / 1000000;
    assert_true(waited_ms >= 190 && waited_ms < 1500);
    assert_int_equal(stats(p).timeouts, 1);
    pg_pool_release(p, a);
    pg_conn *c = pg_pool_acquire(p);
    assert_ptr_equal(c, a);
    pg_pool_release(p, b);
    pg_pool_release(p, c);
    assert_int_equal(stats(p).open, 2);
    pg_pool_put(p);
    free(d);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void test_validation_only_after_idle(void **state)
{
    (void)state;
    char *d = dsn_for("idle");
    pg_pool_opts o = opts(1, 2);
    o.validate_idle_ms = 150;
    pg_pool *p = get(d, &o);
    sleep_ms(200); /* the warmed-up connection is now idle for longer than the interval */
    pg_conn *c = pg_pool_acquire(p);
    assert_non_null(c);
    assert_int_equal(stats(p).validations, 1);
    for (int i = 0; i < 50; i++) { /* busy: no validation at all */
        pg_pool_release(p, c);
        c = pg_pool_acquire(p);
    }
    assert_int_equal(stats(p).validations, 1);
    pg_pool_release(p, c);
    sleep_ms(200);
    c = pg_pool_acquire(p);
    assert_int_equal(stats(p).validations, 2);
    pg_pool_release(p, c);
    pg_pool_put(p);
    free(d);

    d = dsn_for("always");
    o.validate_idle_ms = 0; /* for comparison: every checkout */
    p = get(d, &o);
    for (int i = 0; i < 10; i++)
        pg_pool_release(p, pg_pool_acquire(p));
    assert_int_equal(stats(p).validations, 10);
    pg_pool_put(p);
    free(d);
}

static void test_max_age_recycles(void **state)
{
    (void)state;
    char *d = dsn_for("age");
    pg_pool_opts o = opts(1, 2);
    o.max_age_ms = 100;
    pg_pool *p = get(d, &o);
    pg_conn *c = pg_pool_acquire(p);
    int pid = backend_pid(c);
    pg_pool_release(p, c);
    sleep_ms(150);
    c = pg_pool_acquire(p);
    assert_non_null(c);
    assert_int_not_equal(backend_pid(c), pid);
    pg_pool_stats s = stats(p);
    assert_int_equal(s.recycled, 1);
    assert_int_equal(s.connects, 2);
    assert_int_equal(s.open, 1);
    pg_pool_release(p, c);
    pg_pool_put(p);
    free(d);
}

static void test_killed_backend_is_replaced(void **state)
{
    (void)state;
    char *d = dsn_for("kill");
    pg_pool_opts o = opts(2, 2);
    pg_pool *p = get(d, &o);
    pg_conn *victim = pg_pool_acquire(p), *killer = pg_pool_acquire(p);
    int pid = backend_pid(victim);
    char spid[16];
    snprintf(spid, sizeof spid, "%d", pid);
    const char *par[1] = {spid};
    assert_int_equal(pg_query_int(killer, "SELECT pg_terminate_backend($1::int)::int", 1, par), 1);
    sleep_ms(50);
    int rc;
    PGresult *r = pg_run(victim, "SELECT 1", 0, NULL, &rc);
    assert_null(r);
    assert_int_equal(rc, STORE_UNAVAILABLE);
    assert_true(victim->broken);
    pg_pool_release(p, victim); /* closed, its slot freed */
    assert_int_equal(stats(p).open, 1);
    assert_int_equal(stats(p).discarded, 1);
    pg_conn *c = pg_pool_acquire(p);
    assert_non_null(c);
    assert_int_not_equal(backend_pid(c), pid);
    pg_pool_release(p, c);
    pg_pool_release(p, killer);
    pg_pool_put(p);
    free(d);
}

static void test_prepared_once_per_connection(void **state)
{
    (void)state;
    char *d = dsn_for("prep");
    pg_pool_opts o = opts(1, 1);
    pg_pool *p = get(d, &o);
    pg_conn *c = pg_pool_acquire(p);
    const char *par[1] = {"41"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(pg_query_int(c, "SELECT $1::int + 1", 1, par), 42);
    assert_int_equal(c->used, 1);
    assert_int_equal(pg_query_int(c, "SELECT count(*) FROM pg_prepared_statements", 0, NULL), 2);
    /* a statement error leaves the connection usable and unbroken */
    int rc;
    assert_null(pg_run(c, "SELECT 1/0", 0, NULL, &rc));
    assert_int_equal(rc, STORE_ERROR);
    assert_false(c->broken);
    assert_int_equal(pg_query_int(c, "SELECT $1::int + 1", 1, par), 42);
    pg_pool_release(p, c);
    pg_pool_put(p);
    free(d);
}

static void test_unreachable_fails_fast(void **state)
{
    (void)state;
    /* a loopback port nobody listens on: refused at once, no pool is registered */
    int64_t t0 = pg_now_ns();
    char err[256] = "";
    pg_pool_opts o = opts(1, 2);
    assert_null(pg_pool_get("host=127.0.0.1 port=1 dbname=x user=x", &o, err, sizeof err));
    assert_non_null(strstr(err, "cannot connect"));
    assert_true((pg_now_ns() - t0) / 1000000 < 3000);
    /* a pool with no warm-up over the same address: acquire answers NULL instead of waiting */
    o.min_conns = 0;
    pg_pool *p = pg_pool_get("host=127.0.0.1 port=1 dbname=x user=x", &o, err, sizeof err);
    assert_non_null(p);
    assert_null(pg_pool_acquire(p));
    assert_int_equal(stats(p).open, 0);
    assert_int_equal(stats(p).connect_failures, 1);
    pg_pool_put(p);
}

typedef struct shared {
    pg_pool *p;
    int failures;
    pthread_mutex_t mu;
} shared;

static void *hammer(void *arg)
{
    shared *sh = arg;
    for (int i = 0; i < 300; i++) {
        pg_conn *c = pg_pool_acquire(sh->p);
        if (!c || (i % 10 == 0 && pg_query_int(c, "SELECT 7", 0, NULL) != 7)) {
            pthread_mutex_lock(&sh->mu);
            sh->failures++;
            pthread_mutex_unlock(&sh->mu);
        }
        pg_pool_release(sh->p, c);
    }
    return NULL;
}

static void test_threads_share_a_small_pool(void **state)
{
    (void)state;
    char *d = dsn_for("threads");
    pg_pool_opts o = opts(1, 3);
    o.acquire_timeout_ms = 5000;
    shared sh = {.p = get(d, &o)};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &sh), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(sh.failures, 0);
    pg_pool_stats s = stats(sh.p);
    assert_true(s.open <= 3);
    assert_int_equal(s.idle, s.open);
    assert_int_equal(s.acquires, 2400);
    pthread_mutex_destroy(&sh.mu);
    pg_pool_put(sh.p);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_one_pool_per_dsn),
        cmocka_unit_test(test_warm_up_and_lifo_reuse),
        cmocka_unit_test(test_acquire_times_out_then_recovers),
        cmocka_unit_test(test_validation_only_after_idle),
        cmocka_unit_test(test_max_age_recycles),
        cmocka_unit_test(test_killed_backend_is_replaced),
        cmocka_unit_test(test_prepared_once_per_connection),
        cmocka_unit_test(test_unreachable_fails_fast),
        cmocka_unit_test(test_threads_share_a_small_pool),
    };
    return cmocka_run_group_tests_name("pg_pool", tests, NULL, NULL);
}
