/* opstats — latency of the seed's operations (DESIGN §2 phase 4), always on.
 *
 * Owns: one fixed-bucket histogram per operation kind (process-wide: the operations happen in modules
 * that share no other state, the store's pool included), each with an alert threshold (the seed's
 * 10/100/150/150/50/10 ms levels by default, configurable); an observation over its threshold is counted
 * and logged (rate-limited). A regression check compares recent percentiles with a baseline window.
 * opstats_observe() is lock-free and safe from any thread.
 *
 * Recording: each thread adds to its own stripe of relaxed atomic counters (a bucket, the count, the sum;
 * stripes are cache-line aligned), so concurrent observers do not share a line; a read sums the stripes.
 * Buckets run from 250 ns to 10 s in 1-2.5-5 steps (opstats_bucket_le), fine enough for a pool checkout of
 * a microsecond and an LLM call of seconds alike. Percentiles are interpolated linearly inside a bucket
 * (as Prometheus' histogram_quantile does).
 *
 * Default thresholds (the seed's six levels, mapped onto our operations):
 *   10 ms  pool acquire                 (seed: connection pool)
 *  100 ms  M0 (a durable message add)   (seed: M0)
 *  150 ms  M1 (one flush's episodes)    (seed: M1)
 *  150 ms  M2 (one flush's facts)       (seed: M2)
 *   50 ms  embedding batch              (seed: embedding)
 *   10 ms  service lookup, flush hand-off, vector search, BM25 search, fusion
 *          (seed: service access — the in-memory steps of serving a request)
 * A threshold is crossed by an observation strictly longer than it; "off" disables it.
 *
 * Regression check: the baseline of an operation is (about) its first baseline_count observations,
 * frozen once reached; the recent window is what was observed over the last window_s seconds (at least:
 * the window is measured between checkpoints of the cumulative histogram, taken when the check runs — on
 * every snapshot and, while there is traffic, from the observers every few hundred observations with a
 * trylock, never waiting). An operation is "regressed" while its recent window holds at least min_recent
 * observations and recent p99 > regression_factor x baseline p99; a change either way is logged once.
 *
 * Locks: observers take none. The check and snapshots serialise on one internal mutex. Configuration
 * (opstats_configure) is meant for start-up, before other threads observe; thresholds are atomics and may
 * change at any time. */
#ifndef MEMFUSE_OPSTATS_H
#define MEMFUSE_OPSTATS_H

#include <stddef.h>
#include <stdint.h>

enum op_kind {
    OP_POOL_ACQUIRE = 0, /* a store connection checked out */
    OP_SERVICE_LOOKUP,   /* a user's service found or created in the registry */
    OP_FLUSH_HANDOFF,    /* consolidated rounds handed to the flush manager */
    OP_M0,               /* a message add made durable (M0 write) */
    OP_M1,               /* one M1 (episode) operation for a flush, LLM call included */
    OP_M2,               /* one M2 (fact) operation for a flush, LLM calls included */
    OP_EMBED_BATCH,      /* one embedding batch */
    OP_VECTOR_SEARCH,    /* one dense search of a user's index */
    OP_BM25_SEARCH,      /* one keyword search */
    OP_FUSION,           /* fusing and ranking the candidates of one query */
    OP_KINDS
};

void opstats_observe(enum op_kind k, int64_t us);
/* The same in nanoseconds (the sub-microsecond operations: pool acquire, service lookup). */
void opstats_observe_ns(enum op_kind k, int64_t ns);

/* "pool_acquire", "service_lookup", "flush_handoff", "m0", "m1", "m2", "embed_batch", "vector_search",
 * "bm25_search", "fusion"; opstats_kind is the reverse (-1 for an unknown name). */
const char *opstats_name(enum op_kind k);
int opstats_kind(const char *name);

/* --- configuration ------------------------------------------------------------------------------ */
typedef struct opstats_config {
    double threshold_ms[OP_KINDS]; /* < 0: off */
    int baseline_count;            /* observations forming the baseline (default 1000) */
    int window_s;                  /* recent window (default 60) */
    double regression_factor;      /* recent p99 > factor x baseline p99 is a regression (default 2) */
    int min_recent;                /* observations the recent window needs before it is judged (default 100) */
    int auto_check;                /* observers run the check now and then (default 1; tests turn it off) */
} opstats_config;

void opstats_config_default(opstats_config *c);
/* "NAME=MS[,NAME=MS...]" (MS a number of milliseconds, fractions allowed, or "off"). 0, or -1 with a
 * reason in err (the names it knows are listed there). */
int opstats_parse_thresholds(opstats_config *c, const char *list, char *err, size_t errlen);
/* MEMFUSE_OP_THRESHOLDS, MEMFUSE_OP_BASELINE, MEMFUSE_OP_WINDOW, MEMFUSE_OP_REGRESSION_FACTOR. */
int opstats_config_from_env(opstats_config *c, char *err, size_t errlen);
/* Consumes its flags from argv (argv[0] kept), the way embed_config_from_args does:
 * --op-threshold NAME=MS (repeatable), --op-thresholds LIST, --op-baseline N, --op-window S,
 * --op-regression-factor K. */
int opstats_config_from_args(opstats_config *c, int *argc, char **argv, char *err, size_t errlen);
/* Applies c and starts the windows afresh (checkpoint history and baselines are dropped; counts stay). */
void opstats_configure(const opstats_config *c);
/* Zeroes every count and restores the defaults. Not safe while other threads observe (tests). */
void opstats_reset(void);

/* --- reading ------------------------------------------------------------------------------------ */
#define OPSTATS_NBUCKETS 25
extern const double opstats_bucket_le[OPSTATS_NBUCKETS]; /* upper bounds in seconds; the last is +Inf */

typedef struct opstats_hist {
    uint64_t buckets[OPSTATS_NBUCKETS]; /* per bucket, not cumulative */
    uint64_t count;                     /* the sum of buckets */
    uint64_t sum_ns;
} opstats_hist;

/* The q-quantile (0..1) in seconds, interpolated inside its bucket; 0 for an empty histogram. */
double opstats_hist_quantile(const opstats_hist *h, double q);

typedef struct opstats_op {
    opstats_hist all;     /* since start */
    double threshold_ms;  /* < 0: off */
    uint64_t crossings;   /* observations over the threshold */
    int baseline_ready;
    opstats_hist baseline, recent;
    double recent_span_s; /* the time the recent window actually covers */
    double baseline_p50, baseline_p99, recent_p50, recent_p99; /* seconds */
    int regressed;
    uint64_t regressions; /* times it turned regressed */
} opstats_op;

/* Runs the check, then copies every operation's state into out. */
void opstats_snapshot(opstats_op out[OP_KINDS]);
/* The same at a given monotonic time in milliseconds (tests drive the windows with it). */
void opstats_snapshot_at(opstats_op out[OP_KINDS], int64_t now_ms);
/* The regression check alone (the snapshot runs it too). */
void opstats_check_at(int64_t now_ms);
/* The configuration in force. */
void opstats_config_get(opstats_config *out);

#endif
