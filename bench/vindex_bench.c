/* vindex_bench — exact scan vs HNSW graph in one user's vector index (src/search/vindex.c, hnsw.c).
 *
 *   build/bench/vindex_bench [N [DIM [QUERIES]]]      defaults 100000 512 1000
 *
 * Data: N unit vectors around 1000 random centres (noise of about the centre's length), queries from the same
 * distribution. Reports the graph build time (vindex_put crossing the threshold, then incremental puts),
 * per-query p50/p99 of the exact scan and of the graph (k = 10, no filter, and a filter 1% of rows pass),
 * recall@10 of the graph against the exact scan at ef 64, 128, 256 and 512 (vindex_set_hnsw_ef), and the
 * exact scan's bytes per second next to a plain read of a matrix of the same size (the memory-bandwidth
 * ceiling of a scan). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "search/vindex.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static void point(float *v, const float *centres, int nc, int dim, uint64_t *s)
{
    const float *c = centres + (size_t)(rng_next(s) % (uint64_t)nc) * dim;
    float sigma = 1.0f / sqrtf((float)dim);
    for (int i = 0; i < dim; i++)
        v[i] = c[i] + sigma * gauss(s);
    normalise(v, dim);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void pct(const char *what, double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    printf("  %-28s p50 %8.1f us   p99 %8.1f us\n", what, t[n / 2] * 1e6, t[(n * 99) / 100] * 1e6);
}

/* How many of the graph's hits are among the exact scan's K. */
static size_t overlap(const vindex_hit *got, size_t n, const vindex_hit *exact)
{
    size_t found = 0;
    for (size_t j = 0; j < n; j++)
        for (int e = 0; e < 10; e++)
            if (strcmp(got[j].id, exact[e].id) == 0) {
                found++;
                break;
            }
    return found;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    int dim = argc > 2 ? atoi(argv[2]) : 512;
    int nq = argc > 3 ? atoi(argv[3]) : 1000;
    enum { K = 10, NC = 1000 };
    if (!n || dim <= 0 || nq <= 0)
        return 2;
    float *mat = malloc(n * (size_t)dim * sizeof *mat), *q = malloc((size_t)nq * dim * sizeof *q);
    float *cen = malloc((size_t)NC * dim * sizeof *cen);
    double *t = malloc((size_t)nq * sizeof *t);
    vindex *ex = vindex_new(dim), *gr = vindex_new(dim);
    vindex_hit *he = malloc((size_t)nq * K * sizeof *he), hg[K];
    if (!mat || !q || !cen || !t || !ex || !gr || !he || vindex_set_hnsw_threshold(ex, 0) != 0 ||
        vindex_set_hnsw_threshold(gr, n / 2) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    uint64_t s = 1;
    for (int c = 0; c < NC; c++) {
        for (int i = 0; i < dim; i++)
            cen[(size_t)c * dim + i] = gauss(&s);
        normalise(cen + (size_t)c * dim, dim);
    }
    for (size_t i = 0; i < n; i++)
        point(mat + i * dim, cen, NC, dim, &s);
    for (int i = 0; i < nq; i++)
        point(q + (size_t)i * dim, cen, NC, dim, &s);
    printf("vindex_bench: %zu vectors of dim %d (%.0f MB), %d queries, k=%d\n", n, dim,
           (double)n * dim * 4 / 1e6, nq, K);

    char id[VINDEX_ID_MAX], agent[16];
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "id-%zu", i);
        snprintf(agent, sizeof agent, "a%zu", i % 100);
        if (vindex_put(ex, id, 0, "s", agent, mat + i * dim) != 0)
            return 1;
    }
    double t0 = now_s(), tb = 0;
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof id, "id-%zu", i);
        snprintf(agent, sizeof agent, "a%zu", i % 100);
        double a = now_s();
        if (vindex_put(gr, id, 0, "s", agent, mat + i * dim) != 0)
            return 1;
        if (i + 1 == n / 2)
            tb = now_s() - a;
    }
    double tbuild = now_s() - t0;
    printf("  graph: %s; build of %zu rows at the threshold %.2f s; all %zu puts %.2f s (%.0f inserts/s after)\n",
           vindex_has_graph(gr) ? "on" : "OFF", n / 2, tb, n, tbuild, (double)(n - n / 2) / (tbuild - tb));
    printf("  bytes: exact index %.0f MB, with graph %.0f MB\n", vindex_bytes(ex) / 1e6, vindex_bytes(gr) / 1e6);

    vindex_filter all = {.messages = 1, .knowledge = 1}, rare = {.agent_id = "a7", .messages = 1};
    for (int i = 0; i < nq; i++) {
        double a = now_s();
        vindex_search(ex, q + (size_t)i * dim, K, &all, he + (size_t)i * K);
        t[i] = now_s() - a;
    }
    double scan_sum = 0;
    for (int i = 0; i < nq; i++)
        scan_sum += t[i];
    pct("exact scan", t, nq);
    static const size_t efs[] = {64, 128, 256, 512};
    for (size_t e = 0; e < sizeof efs / sizeof *efs; e++) {
        vindex_set_hnsw_ef(gr, efs[e]);
        size_t found = 0;
        for (int i = 0; i < nq; i++) {
            double a = now_s();
            size_t got = vindex_search(gr, q + (size_t)i * dim, K, &all, hg);
            t[i] = now_s() - a;
            found += overlap(hg, got, he + (size_t)i * K);
        }
        char what[32];
        snprintf(what, sizeof what, "hnsw (ef %zu)", efs[e]);
        pct(what, t, nq);
        printf("  recall@10 of hnsw (ef %zu) vs exact: %.4f\n", efs[e], (double)found / ((double)nq * K));
    }
    vindex_set_hnsw_ef(gr, 0);
    for (int i = 0; i < nq; i++) {
        double a = now_s();
        vindex_search(ex, q + (size_t)i * dim, K, &rare, hg);
        t[i] = now_s() - a;
    }
    pct("exact, 1% filter", t, nq);
    for (int i = 0; i < nq; i++) {
        double a = now_s();
        vindex_search(gr, q + (size_t)i * dim, K, &rare, hg);
        t[i] = now_s() - a;
    }
    pct("graph index, 1% filter", t, nq);

    /* the scan's ceiling: a plain read of a matrix of the same size */
    double bytes = (double)n * dim * sizeof(float), best = 1e9;
    volatile float sink = 0;
    for (int r = 0; r < 5; r++) {
        double a = now_s();
        float acc[8] = {0};
        for (size_t i = 0; i < n * (size_t)dim; i += 8)
            for (int j = 0; j < 8; j++)
                acc[j] += mat[i + j];
        double d = now_s() - a;
        sink += acc[0] + acc[7];
        if (d < best)
            best = d;
    }
    printf("  exact scan reads %.1f GB/s (mean query %.2f ms); plain read of the same matrix %.1f GB/s\n",
           bytes / (scan_sum / nq) / 1e9, scan_sum / nq * 1e3, bytes / best / 1e9);
    (void)sink;
    vindex_free(ex);
    vindex_free(gr);
    free(mat);
    free(q);
    free(cen);
    free(t);
    free(he);
    return 0;
}
