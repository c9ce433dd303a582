/* embed_bench — the embedding benchmarks of BENCHMARKS.md, all from one run:
 *   1. the machine's cblas_sgemm peak (OpenBLAS, 1 thread and all cores), best of several square products;
 *   2. latency of one text of exactly 8, 32 and 128 tokens (p50/p90/p99 over many calls);
 *   3. batch throughput on bench/embed_texts.txt (512 texts of ~56 characters) in batches of 64, with one
 *      worker and with one worker per core (each worker one BLAS thread), as texts/s and GFLOP/s beside
 *      the sgemm peak; and on 128-token texts, where the GEMMs are largest;
 *   4. ten texts in one call versus the same ten one call at a time (the seed's 9.3x case);
 *   5. resident memory: process RSS before and after loading the model, and after the runs above.
 * Usage: embed_bench [--model-dir DIR] [--texts FILE]   (run from the repository root)
 * Prints medians and percentiles; nothing here asserts a time. */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "embed/embed.h"
#include "embed/use_model.h"
#include "util/log.h"
#include "util/timeutil.h"

static double now_s(void) { return (double)time_mono_ns() / 1e9; }

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static long rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

static void must_embed(embedder *e, const char *const *t, const size_t *l, int n, float *out) {
    char err[512];
    if (embed_batch(e, t, l, n, out, err, sizeof err)) {
        fprintf(stderr, "embed_batch: %s\n", err);
        exit(1);
    }
}

/* ---- sgemm peak ---- */
static double sgemm_gflops(int threads, int n, int reps) {
    openblas_set_num_threads(threads);
    float *a = aligned_alloc(64, sizeof(float) * (size_t)n * n), *b = aligned_alloc(64, sizeof(float) * (size_t)n * n),
          *c = aligned_alloc(64, sizeof(float) * (size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) a[i] = (float)(i % 7) * 0.1f, b[i] = (float)(i % 5) * 0.1f;
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double g = 2.0 * n * (double)n * n / (now_s() - t0) / 1e9;
        if (g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    openblas_set_num_threads(1);
    return best;
}

typedef struct peak_job {
    int n, reps;
    double gflops;
} peak_job;

static void *peak_worker(void *arg) {
    peak_job *j = arg;
    j->gflops = sgemm_gflops(1, j->n, j->reps);
    return NULL;
}

/* `workers` threads each running its own one-thread sgemm at once: the peak for one BLAS thread per worker. */
static double sgemm_concurrent(int workers, int n, int reps) {
    pthread_t th[8];
    peak_job j[8];
    for (int w = 0; w < workers; w++) {
        j[w] = (peak_job){.n = n, .reps = reps};
        pthread_create(&th[w], NULL, peak_worker, &j[w]);
    }
    double sum = 0;
    for (int w = 0; w < workers; w++) {
        pthread_join(th[w], NULL);
        sum += j[w].gflops;
    }
    return sum;
}

static void loadavg(char *out, size_t cap) {
    FILE *f = fopen("/proc/loadavg", "r");
    out[0] = 0;
    if (f && !fgets(out, (int)cap, f)) out[0] = 0;
    if (f) fclose(f);
}

/* ---- texts ---- */
typedef struct texts {
    char **t;
    size_t *len;
    int n;
} texts;

static int load_texts(const char *path, texts *tx) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    tx->t = NULL;
    tx->len = NULL;
    tx->n = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] == '\n') line[--got] = 0;
        if (!got) continue;
        tx->t = realloc(tx->t, sizeof *tx->t * (size_t)(tx->n + 1));
        tx->len = realloc(tx->len, sizeof *tx->len * (size_t)(tx->n + 1));
        tx->t[tx->n] = strdup(line);
        tx->len[tx->n] = (size_t)got;
        tx->n++;
    }
    free(line);
    fclose(f);
    return tx->n > 0 ? 0 : -1;
}

/* A text of exactly k tokens: words from the sample texts until the count reaches k, then "the"s. */
static char *text_of_tokens(embedder *e, const texts *tx, int k) {
    size_t cap = 8192;
    char *s = calloc(1, cap);
    int32_t ids[256];
    for (int i = 0; i < tx->n; i++) {
        const char *w = tx->t[i];
        char *copy = strdup(w), *save = NULL;
        for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            size_t old = strlen(s);
            snprintf(s + old, cap - old, "%s%s", old ? " " : "", tok);
            if (embed_tokenize(e, s, strlen(s), ids, 256) > k) {
                s[old] = 0;
                free(copy);
                goto pad;
            }
        }
        free(copy);
    }
pad:
    while (embed_tokenize(e, s, strlen(s), ids, 256) < k) {
        size_t old = strlen(s);
        snprintf(s + old, cap - old, "%sthe", old ? " " : "");
    }
    return s;
}

typedef struct job {
    embedder *e;
    const texts *tx;
    int first, count, batch, rounds;
    double seconds;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    float *out = malloc(sizeof(float) * 512 * (size_t)j->batch);
    double t0 = now_s();
    for (int r = 0; r < j->rounds; r++)
        for (int i = j->first; i < j->first + j->count; i += j->batch) {
            int m = j->first + j->count - i < j->batch ? j->first + j->count - i : j->batch;
            must_embed(j->e, (const char *const *)j->tx->t + i, j->tx->len + i, m, out);
        }
    j->seconds = now_s() - t0;
    free(out);
    return NULL;
}

/* texts/s with `workers` threads splitting the texts; best and median of `reps` repetitions. */
static void throughput(embedder *e, const texts *tx, int workers, int batch, int rounds, int reps, double *med,
                       double *best) {
    double v[16];
    for (int r = 0; r < reps; r++) {
        pthread_t th[8];
        job j[8];
        int per = tx->n / workers;
        double t0 = now_s();
        for (int w = 0; w < workers; w++) {
            j[w] = (job){.e = e, .tx = tx, .first = w * per, .count = per, .batch = batch, .rounds = rounds};
            pthread_create(&th[w], NULL, run_job, &j[w]);
        }
        for (int w = 0; w < workers; w++) pthread_join(th[w], NULL);
        v[r] = (double)per * workers * rounds / (now_s() - t0);
    }
    *best = 0;
    for (int r = 0; r < reps; r++)
        if (v[r] > *best) *best = v[r];
    *med = pct(v, reps, 0.5);
}

int main(int argc, char **argv) {
    log_init(LOG_WARN);
    const char *dir = "models/use-lite", *tpath = "bench/embed_texts.txt";
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--model-dir")) dir = argv[++i];
        else if (!strcmp(argv[i], "--texts")) tpath = argv[++i];
    }
    int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (cores > 8) cores = 8;
    char la[128];
    loadavg(la, sizeof la);
    printf("machine: %d cores, %s (%s); load average at start: %s", cores, openblas_get_config(), openblas_get_corename(), la);

    /* 5, measured first (before BLAS or anything else allocates): resident memory of the loaded model. */
    long rss0 = rss_kb();
    embed_config cfg;
    embed_config_default(&cfg);
    snprintf(cfg.model_dir, sizeof cfg.model_dir, "%s", dir);
    cfg.allow_fallback = 0;
    char err[512];
    double t0 = now_s();
    embedder *e = embed_open(&cfg, err, sizeof err);
    double open_ms = (now_s() - t0) * 1e3;
    if (!e) {
        fprintf(stderr, "embed_open: %s\n", err);
        return 1;
    }
    long rss1 = rss_kb();
    texts tx;
    if (load_texts(tpath, &tx)) {
        fprintf(stderr, "cannot load %s\n", tpath);
        return 1;
    }
    float *warm = malloc(sizeof(float) * 512 * 64);
    must_embed(e, (const char *const *)tx.t, tx.len, 64, warm);
    free(warm);
    long rss2 = rss_kb();
    printf("resident memory: %.1f MB before open, %.1f MB after open (model +%.1f MB), %.1f MB after a first batch of 64 "
           "(+%.1f MB: one scratch buffer, OpenBLAS work buffers); open took %.1f ms\n",
           rss0 / 1024.0, rss1 / 1024.0, (rss1 - rss0) / 1024.0, rss2 / 1024.0, (rss2 - rss1) / 1024.0, open_ms);

    /* 1. sgemm peak */
    double peak1 = 0, peakn = 0;
    for (int n = 512; n <= 2048; n *= 2) {
        double g = sgemm_gflops(1, n, n >= 2048 ? 3 : 6);
        if (g > peak1) peak1 = g;
    }
    for (int n = 1024; n <= 2048; n *= 2) {
        double g = sgemm_concurrent(cores, n, 4);
        if (g > peakn) peakn = g;
    }
    printf("sgemm peak (best of 512^3..2048^3): 1 thread %.1f GFLOP/s; %d threads each running its own 1-thread sgemm: "
           "%.1f GFLOP/s in total\n", peak1, cores, peakn);

    use_model *fm = use_model_load(dir, NULL, err, sizeof err); /* only to count FLOPs */
    if (!fm) {
        fprintf(stderr, "use_model_load: %s\n", err);
        return 1;
    }
    int *ntok = malloc(sizeof *ntok * (size_t)tx.n);
    double chars = 0, mean_tok = 0;
    int32_t ids[128];
    for (int i = 0; i < tx.n; i++) {
        ntok[i] = embed_tokenize(e, tx.t[i], tx.len[i], ids, 128);
        chars += (double)tx.len[i];
        mean_tok += ntok[i];
    }
    mean_tok /= tx.n;
    double flops_all = use_forward_flops(fm, ntok, tx.n);

    /* 2. latency of one text */
    printf("\nlatency of one text (embed_batch with n=1, tokenization included):\n");
    int ks[3] = {8, 32, 128};
    for (int q = 0; q < 3; q++) {
        char *s = text_of_tokens(e, &tx, ks[q]);
        size_t sl = strlen(s);
        const char *sp = s;
        float v[512];
        int reps = ks[q] == 128 ? 300 : 1000;
        double *lat = malloc(sizeof *lat * (size_t)reps);
        for (int w = 0; w < 20; w++) must_embed(e, &sp, &sl, 1, v);
        for (int r = 0; r < reps; r++) {
            double a = now_s();
            must_embed(e, &sp, &sl, 1, v);
            lat[r] = (now_s() - a) * 1e6;
        }
        int nt = ks[q];
        double fl = use_forward_flops(fm, &nt, 1);
        double p50 = pct(lat, reps, 0.5);
        printf("  %3d tokens: p50 %7.1f us  p90 %7.1f us  p99 %7.1f us  (%.1f MFLOP, %.1f GFLOP/s at p50; %d calls)\n", ks[q],
               p50, pct(lat, reps, 0.9), pct(lat, reps, 0.99), fl / 1e6, fl / (p50 * 1e-6) / 1e9, reps);
        free(lat);
        free(s);
    }

    /* 3. throughput */
    printf("\nbatch throughput, %d texts of mean %.1f characters / %.1f tokens (%.0f MFLOP per text), batches of 64:\n",
           tx.n, chars / tx.n, mean_tok, flops_all / tx.n / 1e6);
    double med, best;
    throughput(e, &tx, 1, 64, 1, 1, &med, &best); /* warm-up */
    throughput(e, &tx, 1, 64, 4, 7, &med, &best);
    double gf1 = med * (flops_all / tx.n) / 1e9, tp1 = med;
    printf("  1 worker : median %7.1f texts/s (best %.1f)  %6.1f GFLOP/s = %4.1f%% of the 1-thread sgemm peak\n", med, best,
           gf1, 100 * gf1 / peak1);
    throughput(e, &tx, cores, 64, 4, 7, &med, &best);
    double gfn = med * (flops_all / tx.n) / 1e9, tpn = med;
    printf("  %d workers: median %7.1f texts/s (best %.1f)  %6.1f GFLOP/s = %4.1f%% of the %d-worker sgemm peak\n", cores, med,
           best, gfn, 100 * gfn / peakn, cores);
    texts t128 = {.n = 128};
    t128.t = malloc(sizeof *t128.t * 128);
    t128.len = malloc(sizeof *t128.len * 128);
    for (int i = 0; i < 128; i++) {
        texts rot = {.t = tx.t + (i * 3) % (tx.n - 64), .len = tx.len + (i * 3) % (tx.n - 64), .n = 64};
        t128.t[i] = text_of_tokens(e, &rot, 128);
        t128.len[i] = strlen(t128.t[i]);
    }
    int n128[128];
    for (int i = 0; i < 128; i++) n128[i] = 128;
    double fl128 = use_forward_flops(fm, n128, 128) / 128;
    throughput(e, &t128, 1, 8, 1, 5, &med, &best);
    double g128 = med * fl128 / 1e9;
    printf("  128-token texts, batches of 8, 1 worker : median %6.1f texts/s  %6.1f GFLOP/s = %4.1f%% of peak\n", med, g128,
           100 * g128 / peak1);
    throughput(e, &t128, cores, 8, 1, 5, &med, &best);
    g128 = med * fl128 / 1e9;
    printf("  128-token texts, batches of 8, %d workers: median %6.1f texts/s  %6.1f GFLOP/s = %4.1f%% of peak\n", cores, med,
           g128, 100 * g128 / peakn);

    /* 4. ten batched vs ten one at a time */
    double bt[60], st[60];
    float out[10 * 512];
    for (int r = 0; r < 60; r++) {
        double a = now_s();
        must_embed(e, (const char *const *)tx.t, tx.len, 10, out);
        bt[r] = (now_s() - a) * 1e3;
        a = now_s();
        for (int i = 0; i < 10; i++) must_embed(e, (const char *const *)tx.t + i, tx.len + i, 1, out);
        st[r] = (now_s() - a) * 1e3;
    }
    double b50 = pct(bt, 60, 0.5), s50 = pct(st, 60, 0.5);
    printf("\nten texts (~56 chars): one call p50 %.3f ms (p99 %.3f), ten calls p50 %.3f ms (p99 %.3f): batched is %.2fx\n",
           b50, pct(bt, 60, 0.99), s50, pct(st, 60, 0.99), s50 / b50);

    /* OpenBLAS's own threading on one big product, last: its threads keep spinning for a while after. */
    double blasn = 0;
    for (int n = 1024; n <= 2048; n *= 2) {
        double g = sgemm_gflops(cores, n, 4);
        if (g > blasn) blasn = g;
    }
    printf("\n(for reference: one sgemm on %d OpenBLAS threads: %.1f GFLOP/s)\n", cores, blasn);
    printf("summary: %.1f texts/s (1 worker), %.1f texts/s (%d workers) on ~%.0f-char texts\n", tp1, tpn, cores, chars / tx.n);
    loadavg(la, sizeof la);
    printf("load average at end: %s", la);
    for (int i = 0; i < 128; i++) free(t128.t[i]);
    free(t128.t);
    free(t128.len);
    for (int i = 0; i < tx.n; i++) free(tx.t[i]);
    free(tx.t);
    free(tx.len);
    free(ntok);
    use_model_free(fm);
    embed_close(e);
    return 0;
}
