/* flushmgr — see flushmgr.h. */
#include "core/flushmgr.h"
#include "memory/memory.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void) { return time_mono_ns() / 1000000; }

/* Waits (fm->mu held, released meanwhile) until until_ms, at most FLUSHMGR_POLL_MS: workers poll rather
 * than sleep on a condition variable. Under load, pthread_cond_timedwait timing out while another thread
 * broadcast deadlocked inside glibc 2.36's condvar (every thread stuck in its internal lock; seen three
 * times in test_flushmgr); a job waits at most a poll interval longer this way, beside LLM calls of
 * tens of milliseconds and more. */
static void timed_wait(flushmgr *fm, int64_t until_ms)
{
    int64_t ms = until_ms - now_ms();
    if (ms < 1)
        ms = 1;
    if (ms > FLUSHMGR_POLL_MS)
        ms = FLUSHMGR_POLL_MS;
    struct timespec ts = {0, (long)ms * 1000000L};
    pthread_mutex_unlock(&fm->mu);
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&fm->mu);
}

static int same(const fm_job *a, const char *flush_id, int layer)
{
    return a->layer == layer && strcmp(a->flush_id, flush_id) == 0;
}

/* Queued or running already (fm->mu held). */
static int known(const flushmgr *fm, const char *flush_id, int layer)
{
    for (size_t i = 0; i < fm->count; i++)
        if (same(&fm->queue[i], flush_id, layer))
            return 1;
    for (int i = 0; i < fm->n_threads; i++)
        if (same(&fm->running[i], flush_id, layer))
            return 1;
    return 0;
}

/* Queues one job (fm->mu held); a full queue marks the manager behind. */
static void enqueue(flushmgr *fm, const char *flush_id, const char *user_id, int layer)
{
    if (strlen(flush_id) >= FLUSHMGR_ID_MAX || strlen(user_id) >= FLUSHMGR_ID_MAX)
        return;
    if (known(fm, flush_id, layer))
        return;
    if (fm->count == (size_t)fm->cfg.capacity) {
        fm->behind = 1;
        return;
    }
    fm_job *j = &fm->queue[fm->count++];
    snprintf(j->flush_id, sizeof j->flush_id, "%s", flush_id);
    snprintf(j->user_id, sizeof j->user_id, "%s", user_id);
    j->layer = layer;
}

void flushmgr_push(flushmgr *fm, const char *flush_id, const char *user_id)
{
    if (!fm->queue || !flush_id || !user_id)
        return;
    pthread_mutex_lock(&fm->mu);
    enqueue(fm, flush_id, user_id, 1);
    enqueue(fm, flush_id, user_id, 2);
    atomic_fetch_add(&fm->pushed, 1);
    pthread_mutex_unlock(&fm->mu);
}

void flushmgr_poke(flushmgr *fm)
{
    if (!fm->queue)
        return;
    pthread_mutex_lock(&fm->mu);
    fm->behind = 1;
    fm->scan_at_ms = 0;
    pthread_mutex_unlock(&fm->mu);
}

/* The first queued job a worker may run now: not an M2 of a user whose M2 runs (fm->mu held); -1: none. */
static long runnable(const flushmgr *fm)
{
    for (size_t i = 0; i < fm->count; i++) {
        const fm_job *j = &fm->queue[i];
        int busy = 0;
        for (int w = 0; j->layer == 2 && w < fm->n_threads && !busy; w++)
            busy = fm->running[w].layer == 2 && fm->running[w].flush_id[0] &&
                   strcmp(fm->running[w].user_id, j->user_id) == 0;
        if (!busy)
            return (long)i;
    }
    return -1;
}

/* Backoff before attempt `attempts + 1`: base * 2^(attempts-1), capped, with up to 25% jitter. */
static int64_t backoff_ms(const flushmgr *fm, int attempts)
{
    int64_t d = fm->cfg.retry_base_ms;
    for (int i = 1; i < attempts && d < fm->cfg.retry_max_ms; i++)
        d *= 2;
    if (d > fm->cfg.retry_max_ms)
        d = fm->cfg.retry_max_ms;
    return d + (d / 4 > 0 ? (int64_t)((uint64_t)time_mono_ns() % (uint64_t)(d / 4)) : 0);
}

/* A failed job is due again at `at` (monotonic ms): a scan then finds it in the store. Kept apart from
 * scan_at_ms, so that a scan running meanwhile, or one asked for sooner, cannot use the retry up before it
 * is due (fm->mu not held). */
static void retry_at(flushmgr *fm, int64_t at)
{
    pthread_mutex_lock(&fm->mu);
    if (!fm->retry_at_ms || at < fm->retry_at_ms)
        fm->retry_at_ms = at;
    pthread_mutex_unlock(&fm->mu);
}

/* Runs one job (fm->mu not held). */
static void run_job(flushmgr *fm, const fm_job *j, arena *a)
{
    store_flush f;
    int rc = fm->st->ops->flush_get(fm->st, j->flush_id, a, &f);
    if (rc == STORE_NOT_FOUND) {
        atomic_fetch_add(&fm->gone, 1);
        return;
    }
    if (rc != STORE_OK) {
        log_warn("flush manager: reading flush %s failed: %s (will retry)", j->flush_id, store_rc_name(rc));
        retry_at(fm, now_ms() + 1000);
        return;
    }
    if (f.state[j->layer] != STORE_LAYER_PENDING)
        return;
    char err[512] = "";
    int mrc = fm->run(fm->run_ctx, &f, j->layer, err, sizeof err);
    if (mrc == MEM_OK) {
        atomic_fetch_add(&fm->done[j->layer], 1);
        return;
    }
    if (mrc == MEM_GONE) {
        atomic_fetch_add(&fm->gone, 1);
        return;
    }
    pthread_mutex_lock(&fm->mu);
    int stopping = fm->stopping;
    pthread_mutex_unlock(&fm->mu);
    if (stopping) /* interrupted by shutdown: not an attempt; the next start picks it up */
        return;
    int attempts = f.attempts[j->layer] + 1;
    int give_up = attempts >= (mrc == MEM_BAD_OUTPUT ? fm->cfg.bad_output_attempts : fm->cfg.max_attempts);
    int64_t delay = backoff_ms(fm, attempts);
    char next_at[TIME_ISO_LEN + 1];
    time_iso(time_now_us() + delay * 1000, next_at);
    atomic_fetch_add(&fm->failed[j->layer], 1);
    if (give_up)
        atomic_fetch_add(&fm->gave_up[j->layer], 1);
    log_warn("flush manager: M%d of flush %s failed (attempt %d, %s): %s; %s", j->layer, j->flush_id, attempts,
             mem_rc_name(mrc), err, give_up ? "giving up" : "will retry");
    rc = fm->st->ops->flush_failed(fm->st, j->flush_id, j->layer, next_at, err, give_up);
    if (rc != STORE_OK && rc != STORE_NOT_FOUND)
        log_warn("flush manager: recording the failure of flush %s failed: %s", j->flush_id, store_rc_name(rc));
    if (give_up && rc == STORE_OK)
        return;
    /* + 5 ms: next_at was taken from the wall clock before the store write, this from a millisecond
     * monotonic clock after it; a scan a fraction of a millisecond early would find the flush not yet due */
    retry_at(fm, now_ms() + (rc == STORE_OK ? delay : 1000) + 5);
}

/* One full scan of the store's due pending flushes into the queue (fm->mu not held). 0, or -1 on failure. */
static int scan(flushmgr *fm, int all, arena *a)
{
    char now[TIME_ISO_LEN + 1];
    if (all) /* the first scan after start retries at once whatever was left, due or not */
        snprintf(now, sizeof now, "9999-12-31T23:59:59.999999Z");
    else
        time_now_iso(now);
    char after[FLUSHMGR_ID_MAX] = "";
    atomic_fetch_add(&fm->scans, 1);
    for (;;) {
        store_flush *f;
        size_t n;
        int rc = fm->st->ops->flushes_pending(fm->st, now, after[0] ? after : NULL, 64, a, &f, &n);
        if (rc != STORE_OK) {
            log_warn("flush manager: scanning pending flushes failed: %s (will retry)", store_rc_name(rc));
            return -1;
        }
        pthread_mutex_lock(&fm->mu);
        for (size_t i = 0; i < n; i++)
            for (int layer = 1; layer <= 2; layer++)
                if (f[i].state[layer] == STORE_LAYER_PENDING)
                    enqueue(fm, f[i].id, f[i].user_id, layer);
        int full = fm->count == (size_t)fm->cfg.capacity;
        pthread_mutex_unlock(&fm->mu);
        if (n < 64 || full)
            return full ? 1 : 0;
        snprintf(after, sizeof after, "%s", f[n - 1].id);
        arena_reset(a);
    }
}

static void *worker(void *arg)
{
    flushmgr *fm = arg;
    pthread_mutex_lock(&fm->mu);
    int slot = 0;
    while (slot < fm->n_threads && !pthread_equal(fm->threads[slot], pthread_self()))
        slot++;
    arena a;
    arena_init(&a);
    while (!fm->stopping) {
        long i = runnable(fm);
        if (i >= 0) {
            fm_job j = fm->queue[i];
            memmove(&fm->queue[i], &fm->queue[i + 1], (fm->count - (size_t)i - 1) * sizeof j);
            fm->count--;
            fm->running[slot] = j;
            pthread_mutex_unlock(&fm->mu);
            run_job(fm, &j, &a);
            arena_reset(&a);
            pthread_mutex_lock(&fm->mu);
            fm->running[slot].flush_id[0] = 0;
            continue;
        }
        if (fm->retry_at_ms && now_ms() >= fm->retry_at_ms) { /* a retry came due: scan for it now */
            fm->retry_at_ms = 0;
            fm->behind = 1;
            fm->scan_at_ms = 0;
        }
        if (fm->behind && !fm->scanning && now_ms() >= fm->scan_at_ms) {
            fm->behind = 0;
            fm->scanning = 1;
            int all = !fm->scanned_once;
            pthread_mutex_unlock(&fm->mu);
            int rc = scan(fm, all, &a);
            arena_reset(&a);
            pthread_mutex_lock(&fm->mu);
            fm->scanning = 0;
            fm->last_scan_ms = now_ms();
            if (rc == 0)
                fm->scanned_once = 1;
            if (rc != 0) { /* failed, or the queue filled: scan again later */
                fm->behind = 1;
                fm->scan_at_ms = now_ms() + (rc < 0 ? 1000 : 100);
            } else if (!fm->behind) { /* (asked again during the scan: keep that request) */
                fm->scan_at_ms = 0;
            }
            continue;
        }
        int64_t until = fm->behind && !fm->scanning ? fm->scan_at_ms : now_ms() + FLUSHMGR_RESCAN_MS;
        if (fm->retry_at_ms && fm->retry_at_ms < until)
            until = fm->retry_at_ms;
        int idle = !fm->behind || fm->scanning;
        timed_wait(fm, until);
        /* idle: look again now and then (flushes other processes on the database recorded) */
        if (idle && !fm->scanning && now_ms() - fm->last_scan_ms >= FLUSHMGR_RESCAN_MS)
            fm->behind = 1;
    }
    pthread_mutex_unlock(&fm->mu);
    arena_free(&a);
    return NULL;
}

int flushmgr_start(flushmgr *fm, const flushmgr_config *cfg, store *st, flushmgr_run_fn run, void *run_ctx)
{
    memset(fm, 0, sizeof *fm);
    fm->cfg = *cfg;
    if (fm->cfg.workers < 1)
        fm->cfg.workers = 2;
    if (fm->cfg.workers > FLUSHMGR_MAX_WORKERS)
        fm->cfg.workers = FLUSHMGR_MAX_WORKERS;
    if (fm->cfg.capacity < 2)
        fm->cfg.capacity = 4096;
    if (fm->cfg.max_attempts < 1)
        fm->cfg.max_attempts = 20;
    if (fm->cfg.bad_output_attempts < 1)
        fm->cfg.bad_output_attempts = 3;
    if (fm->cfg.retry_base_ms < 1)
        fm->cfg.retry_base_ms = 2000;
    if (fm->cfg.retry_max_ms < fm->cfg.retry_base_ms)
        fm->cfg.retry_max_ms = fm->cfg.retry_base_ms > 300000 ? fm->cfg.retry_base_ms : 300000;
    fm->st = st;
    fm->run = run;
    fm->run_ctx = run_ctx;
    fm->queue = malloc((size_t)fm->cfg.capacity * sizeof *fm->queue);
    if (!fm->queue)
        return -1;
    pthread_mutex_init(&fm->mu, NULL);
    fm->behind = 1; /* at start: what a crash or shutdown left pending */
    pthread_mutex_lock(&fm->mu); /* workers find their slot once every thread id is written */
    for (int i = 0; i < fm->cfg.workers; i++) {
        if (pthread_create(&fm->threads[fm->n_threads], NULL, worker, fm) != 0)
            break;
        fm->n_threads++;
    }
    pthread_mutex_unlock(&fm->mu);
    if (fm->n_threads == 0) {
        flushmgr_stop(fm);
        return -1;
    }
    return 0;
}

void flushmgr_stop(flushmgr *fm)
{
    if (!fm->queue)
        return;
    pthread_mutex_lock(&fm->mu);
    fm->stopping = 1;
    pthread_mutex_unlock(&fm->mu);
    for (int i = 0; i < fm->n_threads; i++)
        pthread_join(fm->threads[i], NULL);
    pthread_mutex_destroy(&fm->mu);
    free(fm->queue);
    fm->queue = NULL;
}

size_t flushmgr_depth(flushmgr *fm)
{
    if (!fm->queue)
        return 0;
    pthread_mutex_lock(&fm->mu);
    size_t n = fm->count;
    pthread_mutex_unlock(&fm->mu);
    return n;
}

int flushmgr_running(flushmgr *fm)
{
    if (!fm->queue)
        return 0;
    pthread_mutex_lock(&fm->mu);
    int n = 0;
    for (int i = 0; i < fm->n_threads; i++)
        n += fm->running[i].flush_id[0] != 0;
    pthread_mutex_unlock(&fm->mu);
    return n;
}
