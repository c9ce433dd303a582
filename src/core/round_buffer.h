/* round_buffer — the short-term buffer of each user's recent conversation (SPEC §6 buffer_only).
 *
 * Owns: the buffering policy and its background timer. Every add call is one round. A user's buffer
 * holds rounds of one session; its rounds are *consolidated* (a status persisted with them, the moment
 * later layers hang their work on) when
 *   - the buffer reaches max_rounds rounds, or holds more than max_tokens tokens, counting the new round
 *     (it is then consolidated together with the others, in the add's own transaction);
 *   - a round arrives for another session (the older rounds are consolidated, the new one stays);
 *   - no round arrived for idle_ms (the timer thread consolidates the buffer).
 * Token estimate: per message ceil(UTF-8 bytes / 4), at least 1; a round's tokens are the sum.
 *
 * An add is planned, stored, then committed or aborted: rb_plan() decides (under the user's mutex) what
 * the add's transaction must consolidate and takes those rounds out of the buffer; the caller passes the
 * plan to store->messages_add(); rb_commit() records the new round, or rb_abort() puts the taken rounds
 * back. Concurrent adds of one user never hold the mutex while storing, so they still group-commit;
 * adds planned but not committed count toward the thresholds. */
#ifndef MEMFUSE_ROUND_BUFFER_H
#define MEMFUSE_ROUND_BUFFER_H

#include <pthread.h>

#include "core/registry.h"
#include "store/store.h"

typedef struct rb_config {
    int max_rounds; /* default 5 */
    int max_tokens; /* default 800 */
    int idle_ms;    /* default 60000 */
} rb_config;

typedef struct round_buffer {
    rb_config cfg;
    registry *reg;
    store *st;
    pthread_t timer;
    pthread_mutex_t timer_mu;
    pthread_cond_t timer_cv;
    int stopping, timer_started;
    /* Called after rounds were consolidated outside an add (timer, restore, a superseded session); the
     * flush manager scans for the flushes the store recorded. NULL: nobody listens. */
    void (*consolidated)(void *ctx);
    void *consolidated_ctx;
} round_buffer;

typedef struct rb_plan {
    user_svc *u;
    char session_id[REG_ID_MAX];
    char taken_session[REG_ID_MAX]; /* session of the taken rounds, restored with them on abort */
    int tokens;
    int consolidate_new;
    rb_round *taken; /* arena array */
    size_t n_taken;
    const char **consolidate; /* their ids, for the store */
} rb_plan;

int rb_init(round_buffer *rb, const rb_config *cfg, registry *reg, store *st);
/* Starts the idle timer. */
int rb_start(round_buffer *rb);
void rb_stop(round_buffer *rb);

int rb_estimate_tokens(const char *text);

/* Returns 0, or -1 if the user's service cannot be had (out of memory). */
int rb_plan_add(round_buffer *rb, const char *user_id, const char *session_id, int tokens, arena *a, rb_plan *p);
void rb_commit(round_buffer *rb, rb_plan *p, const char *round_id);
void rb_abort(round_buffer *rb, rb_plan *p);

/* Drops buffered rounds that belong to a deleted session or user. */
void rb_forget_session(round_buffer *rb, const char *user_id, const char *session_id);

/* Rebuilds the buffers from the rounds still marked buffered in the store (start-up), consolidating what
 * the policy would have consolidated. Returns a store_rc. */
int rb_restore(round_buffer *rb);

/* Consolidates every buffer idle for at least idle_ms at now_ms (the timer calls this). Returns the number
 * of rounds consolidated. */
int rb_flush_idle(round_buffer *rb, int64_t now_ms);

#endif
