/* pg_pool_bench — acquire/release latency of the PostgreSQL connection pool (src/store/pg/pg_pool.h)
 * under 1, 8 and 64 threads, and the cost of validating on every checkout versus only after idling.
 *
 * Needs a running PostgreSQL: MEMFUSE_TEST_PG_DSN (scripts/with-postgres.sh sets it):
 *   make bench-pg      (runs it under scripts/with-postgres.sh)
 * Each thread does ITERS acquire+release pairs, timing each pair with CLOCK_MONOTONIC; the pool holds
 * max(threads/2, 1) connections so the many-thread cases also measure waiting. Prints p50/p99 per case. */
#include "store/pg/pg_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ITERS 20000

typedef struct arg {
    pg_pool *p;
    int64_t *lat;
    int n;
    int fails;
} arg;

static void *run(void *p)
{
    arg *a = p;
    for (int i = 0; i < a->n; i++) {
        int64_t t0 = pg_now_ns();
        pg_conn *c = pg_pool_acquire(a->p);
        if (!c) {
            a->fails++;
            continue;
        }
        pg_pool_release(a->p, c);
        a->lat[i] = pg_now_ns() - t0;
    }
    return NULL;
}

static int cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static int bench(const char *dsn, const char *tag, int threads, int validate_idle_ms, int iters)
{
    char d[1024];
    snprintf(d, sizeof d, "%s application_name=bench_%s_%d", dsn, tag, threads);
    pg_pool_opts o;
    pg_pool_opts_default(&o);
    o.max_conns = threads / 2 > 0 ? threads / 2 : 1;
    o.min_conns = o.max_conns;
    o.acquire_timeout_ms = 10000;
    o.validate_idle_ms = validate_idle_ms;
    char err[256];
    pg_pool *p = pg_pool_get(d, &o, err, sizeof err);
    if (!p) {
        fprintf(stderr, "pool: %s\n", err);
        return 1;
    }
    pthread_t t[64];
    arg a[64];
    size_t total = (size_t)threads * (size_t)iters;
    int64_t *lat = calloc(total, sizeof *lat);
    if (!lat)
        return 1;
    for (int i = 0; i < threads; i++) {
        a[i] = (arg){.p = p, .lat = lat + (size_t)i * (size_t)iters, .n = iters};
        pthread_create(&t[i], NULL, run, &a[i]);
    }
    int fails = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(t[i], NULL);
        fails += a[i].fails;
    }
    qsort(lat, total, sizeof *lat, cmp);
    printf("%-22s threads=%-3d conns=%-3d pairs=%-8zu p50=%8.2f us  p99=%9.2f us  failures=%d\n", tag, threads,
           o.max_conns, total, lat[total / 2] / 1e3, lat[total * 99 / 100] / 1e3, fails);
    free(lat);
    pg_pool_put(p);
    return fails != 0;
}

int main(void)
{
    const char *dsn = getenv("MEMFUSE_TEST_PG_DSN");
    if (!dsn) {
        fprintf(stderr, "set MEMFUSE_TEST_PG_DSN (or run through scripts/with-postgres.sh)\n");
        return 2;
    }
    int rc = 0;
    int threads[] = {1, 8, 64};
    for (int i = 0; i < 3; i++)
        rc |= bench(dsn, "validate-if-idle>5s", threads[i], 5000, ITERS);
    for (int i = 0; i < 3; i++) /* SELECT 1 round trip on every checkout: far fewer pairs */
        rc |= bench(dsn, "validate-every-checkout", threads[i], 0, 2000);
    return rc;
}
