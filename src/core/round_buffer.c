/* round_buffer — see round_buffer.h. */
#include "core/round_buffer.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rb_estimate_tokens(const char *text)
{
    size_t n = strlen(text);
    size_t t = (n + 3) / 4;
    return t < 1 ? 1 : t > 1000000000 ? 1000000000 : (int)t;
}

int rb_init(round_buffer *rb, const rb_config *cfg, registry *reg, store *st)
{
    memset(rb, 0, sizeof *rb);
    rb->cfg = *cfg;
    if (rb->cfg.max_rounds < 1)
        rb->cfg.max_rounds = 5;
    if (rb->cfg.max_tokens < 1)
        rb->cfg.max_tokens = 800;
    if (rb->cfg.idle_ms < 1)
        rb->cfg.idle_ms = 60000;
    rb->reg = reg;
    rb->st = st;
    pthread_mutex_init(&rb->timer_mu, NULL);
    pthread_cond_init(&rb->timer_cv, NULL);
    return 0;
}

static int64_t now_ms(void) { return time_mono_ns() / 1000000; }

/* Consolidates rounds in the store and tells the hook (the flush manager) that flushes may be waiting. */
static int rb_consolidate(round_buffer *rb, const char *const *ids, size_t n)
{
    int rc = rb->st->ops->rounds_consolidate(rb->st, ids, n);
    if (rc == STORE_OK && n > 0 && rb->consolidated)
        rb->consolidated(rb->consolidated_ctx);
    return rc;
}

static int push_round(user_svc *u, const char *round_id, int tokens)
{
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 8;
        rb_round *nr = realloc(u->rounds, cap * sizeof *nr);
        if (!nr)
            return -1;
        u->rounds = nr;
        u->cap = cap;
    }
    rb_round *r = &u->rounds[u->n++];
    snprintf(r->round_id, sizeof r->round_id, "%s", round_id);
    r->tokens = tokens;
    u->tokens += tokens;
    return 0;
}

/* Moves every buffered round of u into the plan (u->mu held). */
static int take_all(user_svc *u, rb_plan *p, arena *a)
{
    if (u->n == 0)
        return 0;
    snprintf(p->taken_session, sizeof p->taken_session, "%s", u->session_id);
    rb_round *t = arena_alloc(a, (p->n_taken + u->n) * sizeof *t);
    const char **ids = arena_alloc(a, (p->n_taken + u->n) * sizeof *ids);
    if (!t || !ids)
        return -1;
    if (p->n_taken)
        memcpy(t, p->taken, p->n_taken * sizeof *t);
    memcpy(t + p->n_taken, u->rounds, u->n * sizeof *t);
    p->taken = t;
    p->n_taken += u->n;
    for (size_t i = 0; i < p->n_taken; i++)
        ids[i] = p->taken[i].round_id;
    p->consolidate = ids;
    u->n = 0;
    u->tokens = 0;
    return 0;
}

int rb_plan_add(round_buffer *rb, const char *user_id, const char *session_id, int tokens, arena *a, rb_plan *p)
{
    memset(p, 0, sizeof *p);
    if (strlen(session_id) >= REG_ID_MAX)
        return -1;
    user_svc *u = registry_get(rb->reg, user_id, 1);
    if (!u)
        return -1;
    p->u = u;
    snprintf(p->session_id, sizeof p->session_id, "%s", session_id);
    p->tokens = tokens;
    int rc = 0;
    pthread_mutex_lock(&u->mu);
    if (u->n > 0 && strcmp(u->session_id, session_id) != 0)
        rc = take_all(u, p, a); /* session change: the older rounds go */
    if (rc == 0 && (int)u->n + u->pending + 1 >= rb->cfg.max_rounds)
        p->consolidate_new = 1;
    if (rc == 0 && (int64_t)u->tokens + u->pending_tokens + tokens > rb->cfg.max_tokens)
        p->consolidate_new = 1;
    if (rc == 0 && p->consolidate_new)
        rc = take_all(u, p, a);
    if (rc == 0) {
        u->pending++;
        u->pending_tokens += tokens;
        if (u->n == 0 && u->pending == 1)
            snprintf(u->session_id, sizeof u->session_id, "%s", session_id);
    }
    pthread_mutex_unlock(&u->mu);
    if (rc != 0) {
        rb_abort(rb, p);
        return -1;
    }
    return 0;
}

static void release_pending(user_svc *u, rb_plan *p)
{
    u->pending--;
    u->pending_tokens -= p->tokens;
}

void rb_commit(round_buffer *rb, rb_plan *p, const char *round_id)
{
    user_svc *u = p->u;
    if (!u)
        return;
    const char *stale = NULL; /* rounds of another session that must go now */
    rb_plan other = {0};
    arena a;
    arena_init(&a);
    pthread_mutex_lock(&u->mu);
    release_pending(u, p);
    if (!p->consolidate_new) {
        if (u->n > 0 && strcmp(u->session_id, p->session_id) != 0) {
            /* a concurrent add of another session filled the buffer meanwhile; ours is the newer */
            if (take_all(u, &other, &a) == 0)
                stale = "session change";
        }
        if (push_round(u, round_id, p->tokens) == 0)
            snprintf(u->session_id, sizeof u->session_id, "%s", p->session_id);
    }
    u->last_write_ms = now_ms();
    pthread_mutex_unlock(&u->mu);
    if (stale) {
        int rc = rb_consolidate(rb, other.consolidate, other.n_taken);
        if (rc != STORE_OK)
            log_warn("round buffer: consolidating %zu rounds after a %s failed: %s", other.n_taken, stale, store_rc_name(rc));
    }
    arena_free(&a);
    registry_put(u);
    p->u = NULL;
}

/* Puts the rounds a plan took back (u->mu held). If rounds of another session arrived meanwhile, the taken
 * ones are older than those and of a different session: the buffer keeps the newer rounds and the taken
 * ones are returned to the caller for consolidation (*stale set). */
static void restore_taken(user_svc *u, const rb_plan *p, int *stale)
{
    *stale = 0;
    if (!p->n_taken)
        return;
    if (u->n > 0 && strcmp(u->session_id, p->taken_session) != 0) {
        *stale = 1;
        return;
    }
    snprintf(u->session_id, sizeof u->session_id, "%s", p->taken_session);
    rb_round *keep = u->rounds;
    size_t n = u->n;
    u->rounds = NULL;
    u->n = u->cap = 0;
    u->tokens = 0;
    for (size_t i = 0; i < p->n_taken; i++)
        push_round(u, p->taken[i].round_id, p->taken[i].tokens);
    for (size_t i = 0; i < n; i++)
        push_round(u, keep[i].round_id, keep[i].tokens);
    free(keep);
}

void rb_abort(round_buffer *rb, rb_plan *p)
{
    user_svc *u = p->u;
    if (!u)
        return;
    int stale;
    pthread_mutex_lock(&u->mu);
    restore_taken(u, p, &stale);
    release_pending(u, p);
    pthread_mutex_unlock(&u->mu);
    if (stale) {
        int rc = rb_consolidate(rb, p->consolidate, p->n_taken);
        if (rc != STORE_OK)
            log_warn("round buffer: consolidating %zu rounds of a superseded session failed: %s", p->n_taken,
                     store_rc_name(rc));
    }
    registry_put(u);
    p->u = NULL;
}

void rb_forget_session(round_buffer *rb, const char *user_id, const char *session_id)
{
    user_svc *u = registry_get(rb->reg, user_id, 0);
    if (!u)
        return;
    pthread_mutex_lock(&u->mu);
    if (!session_id || strcmp(u->session_id, session_id) == 0) {
        u->n = 0;
        u->tokens = 0;
    }
    pthread_mutex_unlock(&u->mu);
    registry_put(u);
}

int rb_restore(round_buffer *rb)
{
    arena a;
    arena_init(&a);
    store_round *rounds = NULL;
    size_t n = 0;
    int rc = rb->st->ops->rounds_buffered(rb->st, &a, &rounds, &n);
    size_t n_cons = 0;
    const char **cons = rc == STORE_OK ? arena_alloc(&a, (n ? n : 1) * sizeof *cons) : NULL;
    if (rc == STORE_OK && !cons)
        rc = STORE_ERROR;
    for (size_t i = 0; rc == STORE_OK && i < n; i++) {
        /* replay the add policy, oldest first */
        rb_plan p;
        if (rb_plan_add(rb, rounds[i].user_id, rounds[i].session_id, rounds[i].tokens, &a, &p) != 0) {
            rc = STORE_ERROR;
            break;
        }
        for (size_t k = 0; k < p.n_taken; k++)
            cons[n_cons++] = arena_strdup(&a, p.consolidate[k]);
        if (p.consolidate_new)
            cons[n_cons++] = rounds[i].id;
        rb_commit(rb, &p, rounds[i].id);
    }
    if (rc == STORE_OK && n_cons)
        rc = rb_consolidate(rb, cons, n_cons);
    if (rc == STORE_OK && n)
        log_info("round buffer: restored %zu buffered rounds, consolidated %zu of them", n, n_cons);
    arena_free(&a);
    return rc;
}

typedef struct idle_ctx {
    round_buffer *rb;
    int64_t now;
    int flushed;
} idle_ctx;

static void flush_if_idle(user_svc *u, void *arg)
{
    idle_ctx *c = arg;
    rb_plan p = {0};
    arena a;
    arena_init(&a);
    pthread_mutex_lock(&u->mu);
    int idle = u->n > 0 && u->pending == 0 && c->now - u->last_write_ms >= c->rb->cfg.idle_ms;
    if (idle && take_all(u, &p, &a) != 0)
        idle = 0;
    pthread_mutex_unlock(&u->mu);
    if (idle) {
        int rc = rb_consolidate(c->rb, p.consolidate, p.n_taken);
        if (rc == STORE_OK) {
            c->flushed += (int)p.n_taken;
        } else {
            log_warn("round buffer: idle consolidation of %zu rounds failed: %s (will retry)", p.n_taken, store_rc_name(rc));
            int stale;
            pthread_mutex_lock(&u->mu);
            restore_taken(u, &p, &stale);
            pthread_mutex_unlock(&u->mu);
            if (stale) /* rounds of another session arrived meanwhile: these stay buffered in the store */
                log_warn("round buffer: %zu rounds stay buffered until the next start restores them", p.n_taken);
        }
    }
    arena_free(&a);
}

int rb_flush_idle(round_buffer *rb, int64_t now)
{
    idle_ctx c = {.rb = rb, .now = now};
    registry_foreach(rb->reg, flush_if_idle, &c);
    return c.flushed;
}

static void *timer_main(void *arg)
{
    round_buffer *rb = arg;
    int64_t period = rb->cfg.idle_ms / 4;
    if (period > 1000)
        period = 1000;
    if (period < 10)
        period = 10;
    pthread_mutex_lock(&rb->timer_mu);
    while (!rb->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)(period % 1000) * 1000000L;
        ts.tv_sec += period / 1000 + ts.tv_nsec / 1000000000L;
        ts.tv_nsec %= 1000000000L;
        int rc = pthread_cond_timedwait(&rb->timer_cv, &rb->timer_mu, &ts);
        if (rb->stopping)
            break;
        if (rc != ETIMEDOUT)
            continue;
        pthread_mutex_unlock(&rb->timer_mu);
        int n = rb_flush_idle(rb, now_ms());
        if (n)
            log_debug("round buffer: consolidated %d idle rounds", n);
        pthread_mutex_lock(&rb->timer_mu);
    }
    pthread_mutex_unlock(&rb->timer_mu);
    return NULL;
}

int rb_start(round_buffer *rb)
{
    if (pthread_create(&rb->timer, NULL, timer_main, rb) != 0)
        return -1;
    rb->timer_started = 1;
    return 0;
}

void rb_stop(round_buffer *rb)
{
    if (rb->timer_started) {
        pthread_mutex_lock(&rb->timer_mu);
        rb->stopping = 1;
        pthread_cond_signal(&rb->timer_cv);
        pthread_mutex_unlock(&rb->timer_mu);
        pthread_join(rb->timer, NULL);
        rb->timer_started = 0;
    }
    pthread_mutex_destroy(&rb->timer_mu);
    pthread_cond_destroy(&rb->timer_cv);
}
