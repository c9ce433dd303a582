/* metrics — see metrics.h. */
#include "util/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const double met_bucket_le[MET_NBUCKETS] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                            0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   1e300};

void met_hist_observe(met_hist *h, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    double s = (double)ns / 1e9;
    int i = 0;
    while (i < MET_NBUCKETS - 1 && s > met_bucket_le[i])
        i++;
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)ns, memory_order_relaxed);
}

double met_hist_quantile(const met_hist *h, double q)
{
    uint64_t counts[MET_NBUCKETS], total = 0;
    for (int i = 0; i < MET_NBUCKETS; i++) {
        counts[i] = atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        total += counts[i];
    }
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total + 0.5), seen = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i < MET_NBUCKETS; i++) {
        seen += counts[i];
        if (seen >= want)
            return met_bucket_le[i];
    }
    return met_bucket_le[MET_NBUCKETS - 1];
}

double met_quantile(const double *le, const uint64_t *buckets, int nb, double q)
{
    uint64_t total = 0;
    for (int i = 0; i < nb; i++)
        total += buckets[i];
    if (total == 0)
        return 0;
    double rank = (q < 0 ? 0 : q > 1 ? 1 : q) * (double)total;
    uint64_t seen = 0;
    for (int i = 0; i < nb; i++) {
        if (buckets[i] && (double)(seen + buckets[i]) >= rank) {
            double lo = i ? le[i - 1] : 0;
            if (i == nb - 1 && le[i] > 1e299)
                return lo; /* the +Inf bucket: its lower bound is all that is known */
            double f = (rank - (double)seen) / (double)buckets[i];
            return lo + (le[i] - lo) * (f < 0 ? 0 : f);
        }
        seen += buckets[i];
    }
    return nb > 1 ? le[nb - 2] : 0;
}

void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->err)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = 1;
            return;
        }
        if (b->buf && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->err = 1;
            return;
        }
        b->buf = nb;
        b->cap = cap;
    }
}

char *strbuf_take(strbuf *b, size_t *len)
{
    if (b->err || !b->buf) {
        free(b->buf);
        b->buf = NULL;
        return NULL;
    }
    char *r = b->buf;
    *len = b->len;
    b->buf = NULL;
    b->len = b->cap = 0;
    return r;
}

void met_header(strbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void met_write_hist(strbuf *b, const char *name, const char *labels, const met_hist *h)
{
    const char *sep = *labels ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i < MET_NBUCKETS; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i == MET_NBUCKETS - 1)
            sb_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
        else
            sb_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, met_bucket_le[i], (unsigned long long)cum);
    }
    sb_printf(b, "%s_sum{%s} %.9f\n", name, labels,
              (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
    sb_printf(b, "%s_count{%s} %llu\n", name, labels,
              (unsigned long long)atomic_load_explicit(&h->count, memory_order_relaxed));
}

int64_t met_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size, rss;
    int ok = fscanf(f, "%ld %ld", &size, &rss) == 2;
    fclose(f);
    return ok ? (int64_t)rss * sysconf(_SC_PAGESIZE) : -1;
}
