/* flushmgr — the flush manager (seed phase 3): runs the LLM layers of every consolidation in the
 * background, M1 and M2 of one flush in parallel.
 *
 * Owns: a bounded queue of layer jobs (flush id, layer) and the worker threads that serve it. A flush
 * recorded by the store (store_config.flushes) is handed over as two jobs, (flush, M1) and (flush, M2),
 * which different workers take at once: neither layer waits for the other, and a failing one never holds
 * up the other, nor the add that consolidated (the hand-off only queues).
 *
 * The store is the truth: a job only names a flush, and a worker re-reads the flush and runs the layer only
 * while the store still marks it pending. So nothing is lost when the queue is full or the process dies: a
 * push that does not fit marks the manager behind, and a worker with nothing queued then scans the store
 * for pending flushes whose retry time has come (store.flushes_pending) — also at start, where it takes
 * every pending flush at once (the work a crash or shutdown left), when a failed layer's retry comes due,
 * and every FLUSHMGR_RESCAN_MS when idle (flushes another process on the same database recorded). A
 * failed layer is recorded in the store (attempts, error, next attempt after an exponential backoff with
 * jitter); unusable model output is given up on after
 * bad_output_attempts, anything else (LLM or store down) after max_attempts.
 *
 * A job already queued or running is not queued twice; M2 jobs of one user never run at once (each M2
 * reads the facts the previous one left), a worker skips to another job meanwhile. */
#ifndef MEMFUSE_FLUSHMGR_H
#define MEMFUSE_FLUSHMGR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store/store.h"

#define FLUSHMGR_MAX_WORKERS 16
#define FLUSHMGR_ID_MAX 40
#define FLUSHMGR_RESCAN_MS 10000 /* an idle manager scans the store this often */
#define FLUSHMGR_POLL_MS 10      /* an idle worker looks for work this often */

typedef struct flushmgr_config {
    int workers;             /* threads (default 2: M1 and M2 of a flush at once) */
    int capacity;            /* queued jobs (default 4096) */
    int max_attempts;        /* failures of a layer before giving up (default 20) */
    int bad_output_attempts; /* failures by unusable model output before giving up (default 3) */
    int retry_base_ms;       /* first backoff (default 2000), doubled per attempt */
    int retry_max_ms;        /* backoff cap (default 300000) */
} flushmgr_config;

/* Runs one layer (1 or 2) of a flush; returns an enum mem_rc (memory/memory.h), err set when not OK. */
typedef int (*flushmgr_run_fn)(void *ctx, const store_flush *f, int layer, char *err, size_t errlen);

typedef struct fm_job {
    char flush_id[FLUSHMGR_ID_MAX];
    char user_id[FLUSHMGR_ID_MAX];
    int layer;
} fm_job;

typedef struct flushmgr {
    flushmgr_config cfg;
    store *st;
    flushmgr_run_fn run;
    void *run_ctx;
    pthread_mutex_t mu;
    fm_job *queue; /* FIFO in queue[0..count) */
    size_t count;
    fm_job running[FLUSHMGR_MAX_WORKERS]; /* flush_id "" when the slot is idle */
    int behind;                 /* the store may hold pending jobs that are not queued */
    int scanning, scanned_once; /* the first scan takes every pending flush, due or not */
    int64_t last_scan_ms;
    int64_t scan_at_ms;         /* no scan before this (monotonic ms) */
    int64_t retry_at_ms;        /* the earliest failed job's retry time (monotonic ms), 0: none */
    int stopping, n_threads;
    pthread_t threads[FLUSHMGR_MAX_WORKERS];
    _Atomic uint64_t pushed, done[3], failed[3], gave_up[3], gone, scans;
} flushmgr;

int flushmgr_start(flushmgr *fm, const flushmgr_config *cfg, store *st, flushmgr_run_fn run, void *run_ctx);
/* Workers finish the layer they run (the LLM client's shutdown makes that quick) and exit; what is left
 * stays pending in the store for the next start. */
void flushmgr_stop(flushmgr *fm);
/* Hands a recorded flush over (never blocks). */
void flushmgr_push(flushmgr *fm, const char *flush_id, const char *user_id);
/* The store may hold flushes nobody pushed (e.g. consolidated by the idle timer): scan for them. */
void flushmgr_poke(flushmgr *fm);
/* Jobs queued and not yet taken; jobs running. */
size_t flushmgr_depth(flushmgr *fm);
int flushmgr_running(flushmgr *fm);

#endif
