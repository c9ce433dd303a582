/* metrics — lock-free latency histograms and counters, and the Prometheus text format.
 *
 * A histogram has fixed buckets (50 µs … 10 s) of atomic counters, so observing is a few relaxed atomic
 * adds with no lock: cheap enough to stay on in production. Writers render into a strbuf, a growable
 * malloc'ed text buffer whose memory the caller takes with strbuf_take(). */
#ifndef MEMFUSE_METRICS_H
#define MEMFUSE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MET_NBUCKETS 18

extern const double met_bucket_le[MET_NBUCKETS]; /* upper bounds in seconds; the last is +Inf */

typedef struct met_hist {
    _Atomic uint64_t buckets[MET_NBUCKETS];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
} met_hist;

void met_hist_observe(met_hist *h, int64_t ns);
/* The q-quantile (0..1) estimated from the buckets (upper bound of the bucket that holds it), seconds. */
double met_hist_quantile(const met_hist *h, double q);
/* The q-quantile of any bucketed histogram: le[] upper bounds (the last may be +Inf), buckets[] per-bucket
 * (not cumulative) counts; interpolated linearly inside the bucket that holds it (the lower bound for the
 * +Inf bucket), as Prometheus' histogram_quantile does. 0 when empty. */
double met_quantile(const double *le, const uint64_t *buckets, int nb, double q);

typedef struct strbuf {
    char *buf;
    size_t len, cap;
    int err;
} strbuf;

void sb_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *strbuf_take(strbuf *b, size_t *len); /* NULL after an allocation failure */

/* "# HELP" and "# TYPE" lines. */
void met_header(strbuf *b, const char *name, const char *type, const char *help);
/* The _bucket/_sum/_count lines of one histogram series; labels is "k=\"v\",…" or "". */
void met_write_hist(strbuf *b, const char *name, const char *labels, const met_hist *h);

/* Resident set size of this process in bytes (from /proc/self/statm), or -1. */
int64_t met_rss_bytes(void);

#endif
