/* round_buffer (src/core/round_buffer.h) against a real SQLite store: the thresholds (rounds, tokens),
 * session change, idle flush with an explicit now, abort restoring what a plan took, rb_forget_session,
 * rb_restore after reopening the store (replaying the policy), the timer thread, and concurrent adds of
 * one user keeping the buffer and the store's buffered rounds identical. */
#include "testutil.h"

#include "core/registry.h"
#include "core/round_buffer.h"
#include "store/store.h"
#include "util/log.h"

typedef struct fx {
    char *dir;
    ids_gen ids;
    store *st;
    registry reg;
    round_buffer rb;
    int rb_live;
    arena a;
    const char *u, *u2, *ag, *s1, *s2, *s3;
} fx;

#define OPS (f->st->ops)

#define RC(want, call)                                                                                        \
    do {                                                                                                      \
        int rc_ = (call);                                                                                     \
        if (rc_ != (want))                                                                                    \
            fail_msg("%s\n  gave '%s', want '%s'", #call, store_rc_name(rc_), store_rc_name(want));          \
    } while (0)

static void open_all(fx *f, int max_rounds, int max_tokens, int idle_ms)
{
    store_config cfg = {.kind = "sqlite", .data_dir = f->dir, .read_conns = 4, .ids = &f->ids};
    char err[512] = "";
    f->st = store_open(&cfg, err, sizeof err);
    if (!f->st)
        fail_msg("store_open: %s", err);
    assert_int_equal(registry_init(&f->reg), 0);
    rb_config rc = {.max_rounds = max_rounds, .max_tokens = max_tokens, .idle_ms = idle_ms};
    assert_int_equal(rb_init(&f->rb, &rc, &f->reg, f->st), 0);
    f->rb_live = 1;
}

static void close_all(fx *f)
{
    if (f->rb_live)
        rb_stop(&f->rb);
    f->rb_live = 0;
    registry_destroy(&f->reg);
    store_close(f->st);
    f->st = NULL;
}

static const char *mk(fx *f, enum store_kind k, const char *name)
{
    store_entity e;
    RC(STORE_OK, OPS->entity_create(f->st, k, name, NULL, &f->a, &e));
    return e.id;
}

static const char *mk_session(fx *f, const char *uid, const char *name)
{
    store_session s;
    RC(STORE_OK, OPS->session_create(f->st, uid, f->ag, name, &f->a, &s));
    return s.id;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_mkdtemp();
    ids_gen_init(&f->ids);
    arena_init(&f->a);
    open_all(f, 3, 100, 1000);
    f->u = mk(f, STORE_USERS, "rb-user");
    f->u2 = mk(f, STORE_USERS, "rb-user-2");
    f->ag = mk(f, STORE_AGENTS, "rb-agent");
    f->s1 = mk_session(f, f->u, "s1");
    f->s2 = mk_session(f, f->u, "s2");
    f->s3 = mk_session(f, f->u2, "s3");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->st)
        close_all(f);
    arena_free(&f->a);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

typedef struct added {
    const char *round_id;
    size_t n_taken;
    int consolidate_new;
} added;

/* The API's add path: plan, store with the plan's consolidation, commit. */
static added rb_add(fx *f, const char *uid, const char *sid, int tokens)
{
    rb_plan p;
    assert_int_equal(rb_plan_add(&f->rb, uid, sid, tokens, &f->a, &p), 0);
    store_msg_in m = {"user", "hello"};
    store_added out;
    int rc = OPS->messages_add(f->st, sid, &m, 1, tokens, p.consolidate_new, p.consolidate, p.n_taken, &f->a, &out);
    if (rc != STORE_OK) {
        rb_abort(&f->rb, &p);
        fail_msg("messages_add: %s", store_rc_name(rc));
    }
    added a = {.round_id = out.round_id, .n_taken = p.n_taken, .consolidate_new = p.consolidate_new};
    rb_commit(&f->rb, &p, out.round_id);
    return a;
}

static int buffered_in_store(fx *f, const char *round_id)
{
    store_round r;
    RC(STORE_OK, OPS->round_get(f->st, round_id, &f->a, &r));
    return r.buffered;
}

/* Snapshot of a user's buffer. */
typedef struct snap {
    size_t n;
    int tokens, pending, pending_tokens;
    char session_id[REG_ID_MAX];
    char rounds[64][REG_ID_MAX];
    int64_t last_write_ms;
} snap;

static snap buf_of(fx *f, const char *uid)
{
    snap s;
    memset(&s, 0, sizeof s);
    user_svc *u = registry_get(&f->reg, uid, 0);
    if (!u)
        return s;
    pthread_mutex_lock(&u->mu);
    s.n = u->n;
    s.tokens = u->tokens;
    s.pending = u->pending;
    s.pending_tokens = u->pending_tokens;
    snprintf(s.session_id, sizeof s.session_id, "%s", u->session_id);
    for (size_t i = 0; i < u->n && i < 64; i++)
        snprintf(s.rounds[i], sizeof s.rounds[i], "%s", u->rounds[i].round_id);
    s.last_write_ms = u->last_write_ms;
    pthread_mutex_unlock(&u->mu);
    registry_put(u);
    return s;
}

/* --- basics ----------------------------------------------------------------------------------------------- */

static void test_estimate_and_defaults(void **state)
{
    fx *f = *state;
    assert_int_equal(rb_estimate_tokens(""), 1);
    assert_int_equal(rb_estimate_tokens("a"), 1);
    assert_int_equal(rb_estimate_tokens("abcd"), 1);
    assert_int_equal(rb_estimate_tokens("abcde"), 2);
    assert_int_equal(rb_estimate_tokens("abcdefgh"), 2);
    assert_int_equal(rb_estimate_tokens("\xC3\xA9\xC3\xA9\xC3\xA9"), 2); /* UTF-8 bytes, not characters */
    char big[1001];
    memset(big, 'x', 1000);
    big[1000] = '\0';
    assert_int_equal(rb_estimate_tokens(big), 250);

    round_buffer rb;
    rb_config zero = {0};
    assert_int_equal(rb_init(&rb, &zero, &f->reg, f->st), 0);
    assert_int_equal(rb.cfg.max_rounds, 5);
    assert_int_equal(rb.cfg.max_tokens, 800);
    assert_int_equal(rb.cfg.idle_ms, 60000);
    rb_stop(&rb); /* never started: only releases its lock */
}

static void test_rounds_threshold(void **state)
{
    fx *f = *state; /* max_rounds 3 */
    added r1 = rb_add(f, f->u, f->s1, 1);
    added r2 = rb_add(f, f->u, f->s1, 1);
    assert_false(r1.consolidate_new || r2.consolidate_new);
    assert_int_equal(r1.n_taken + r2.n_taken, 0);
    snap b = buf_of(f, f->u);
    assert_int_equal(b.n, 2);
    assert_string_equal(b.rounds[0], r1.round_id);
    assert_string_equal(b.rounds[1], r2.round_id);
    assert_string_equal(b.session_id, f->s1);
    assert_int_equal(b.tokens, 2);
    assert_int_equal(b.pending, 0);
    assert_true(buffered_in_store(f, r1.round_id));

    /* the third round reaches max_rounds: all three are consolidated in its transaction */
    added r3 = rb_add(f, f->u, f->s1, 1);
    assert_true(r3.consolidate_new);
    assert_int_equal(r3.n_taken, 2);
    assert_false(buffered_in_store(f, r1.round_id));
    assert_false(buffered_in_store(f, r2.round_id));
    assert_false(buffered_in_store(f, r3.round_id));
    b = buf_of(f, f->u);
    assert_int_equal(b.n, 0);
    assert_int_equal(b.tokens, 0);

    added r4 = rb_add(f, f->u, f->s1, 1);
    assert_false(r4.consolidate_new);
    assert_true(buffered_in_store(f, r4.round_id));
    assert_int_equal(buf_of(f, f->u).n, 1);
    /* another user's buffer is separate */
    added o = rb_add(f, f->u2, f->s3, 1);
    assert_int_equal(o.n_taken, 0);
    assert_int_equal(buf_of(f, f->u).n, 1);
    assert_int_equal(buf_of(f, f->u2).n, 1);
}

static void test_tokens_threshold(void **state)
{
    fx *f = *state; /* max_tokens 100 */
    added a = rb_add(f, f->u, f->s1, 60);
    added b = rb_add(f, f->u, f->s1, 40); /* exactly 100: not more than the limit */
    assert_false(b.consolidate_new);
    assert_int_equal(buf_of(f, f->u).tokens, 100);
    added c = rb_add(f, f->u, f->s1, 1); /* 101 */
    assert_true(c.consolidate_new);
    assert_int_equal(c.n_taken, 2);
    assert_false(buffered_in_store(f, a.round_id));
    assert_false(buffered_in_store(f, c.round_id));
    assert_int_equal(buf_of(f, f->u).n, 0);
    assert_int_equal(buf_of(f, f->u).tokens, 0);
    /* one round alone over the limit goes straight to consolidated */
    added big = rb_add(f, f->u, f->s1, 150);
    assert_true(big.consolidate_new);
    assert_int_equal(big.n_taken, 0);
    assert_false(buffered_in_store(f, big.round_id));
    assert_int_equal(buf_of(f, f->u).n, 0);
}

static void test_session_change(void **state)
{
    fx *f = *state;
    added a = rb_add(f, f->u, f->s1, 5);
    added b = rb_add(f, f->u, f->s1, 5);
    added c = rb_add(f, f->u, f->s2, 5);
    assert_false(c.consolidate_new);
    assert_int_equal(c.n_taken, 2); /* the older session's rounds go */
    assert_false(buffered_in_store(f, a.round_id));
    assert_false(buffered_in_store(f, b.round_id));
    assert_true(buffered_in_store(f, c.round_id)); /* the new one stays */
    snap s = buf_of(f, f->u);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.rounds[0], c.round_id);
    assert_string_equal(s.session_id, f->s2);
    assert_int_equal(s.tokens, 5);
    /* and back again */
    added d = rb_add(f, f->u, f->s1, 5);
    assert_int_equal(d.n_taken, 1);
    assert_false(buffered_in_store(f, c.round_id));
    assert_string_equal(buf_of(f, f->u).session_id, f->s1);
}

static void test_idle_flush(void **state)
{
    fx *f = *state; /* idle_ms 1000 */
    added a = rb_add(f, f->u, f->s1, 1);
    added b = rb_add(f, f->u, f->s1, 1);
    int64_t last = buf_of(f, f->u).last_write_ms;
    assert_true(last > 0);
    assert_int_equal(rb_flush_idle(&f->rb, last + 999), 0);
    assert_int_equal(buf_of(f, f->u).n, 2);
    assert_true(buffered_in_store(f, a.round_id));
    assert_int_equal(rb_flush_idle(&f->rb, last + 1000), 2);
    assert_false(buffered_in_store(f, a.round_id));
    assert_false(buffered_in_store(f, b.round_id));
    assert_int_equal(buf_of(f, f->u).n, 0);
    assert_int_equal(buf_of(f, f->u).tokens, 0);
    assert_int_equal(rb_flush_idle(&f->rb, last + 100000), 0); /* nothing left */

    /* each user by their own last write */
    added o = rb_add(f, f->u2, f->s3, 1);
    added p1 = rb_add(f, f->u, f->s1, 1);
    int64_t l2 = buf_of(f, f->u2).last_write_ms, l1 = buf_of(f, f->u).last_write_ms;
    assert_true(l1 >= l2);
    assert_int_equal(rb_flush_idle(&f->rb, l2 + 999), 0);
    assert_int_equal(rb_flush_idle(&f->rb, l2 + 1000), l1 == l2 ? 2 : 1);
    assert_false(buffered_in_store(f, o.round_id));
    assert_int_equal(rb_flush_idle(&f->rb, l1 + 1000), l1 == l2 ? 0 : 1);
    assert_false(buffered_in_store(f, p1.round_id));

    /* a user with an add in flight is not idle */
    added c = rb_add(f, f->u, f->s1, 1);
    rb_plan p;
    assert_int_equal(rb_plan_add(&f->rb, f->u, f->s1, 1, &f->a, &p), 0);
    assert_int_equal(rb_flush_idle(&f->rb, INT64_MAX / 2), 0);
    assert_true(buffered_in_store(f, c.round_id));
    rb_abort(&f->rb, &p);
    assert_int_equal(rb_flush_idle(&f->rb, INT64_MAX / 2), 1);
    assert_false(buffered_in_store(f, c.round_id));
}

static void test_abort_restores_taken(void **state)
{
    fx *f = *state;
    added a = rb_add(f, f->u, f->s1, 10);
    added b = rb_add(f, f->u, f->s1, 20);
    rb_plan p;
    assert_int_equal(rb_plan_add(&f->rb, f->u, f->s1, 30, &f->a, &p), 0); /* the third round: takes both */
    assert_true(p.consolidate_new);
    assert_int_equal(p.n_taken, 2);
    assert_string_equal(p.consolidate[0], a.round_id);
    assert_string_equal(p.consolidate[1], b.round_id);
    snap s = buf_of(f, f->u);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.pending, 1);
    assert_int_equal(s.pending_tokens, 30);
    rb_abort(&f->rb, &p); /* the store write failed, say */
    assert_null(p.u);
    s = buf_of(f, f->u);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.rounds[0], a.round_id);
    assert_string_equal(s.rounds[1], b.round_id);
    assert_int_equal(s.tokens, 30);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.pending_tokens, 0);
    assert_string_equal(s.session_id, f->s1);
    assert_true(buffered_in_store(f, a.round_id));
    /* the same add again decides the same */
    added c = rb_add(f, f->u, f->s1, 30);
    assert_true(c.consolidate_new);
    assert_int_equal(c.n_taken, 2);
    assert_false(buffered_in_store(f, a.round_id));
    /* abort of a plan that took nothing */
    assert_int_equal(rb_plan_add(&f->rb, f->u, f->s1, 1, &f->a, &p), 0);
    rb_abort(&f->rb, &p);
    s = buf_of(f, f->u);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.pending, 0);
}

/* A plan that takes the buffer for a session change sets the buffer's session to the new one
 * (rb_plan_add: "u->n == 0 && u->pending == 1"); rb_abort must undo that too, or the restored rounds are
 * filed under the wrong session. */
static void test_abort_after_session_change(void **state)
{
    fx *f = *state;
    added a = rb_add(f, f->u, f->s1, 10);
    rb_plan p;
    assert_int_equal(rb_plan_add(&f->rb, f->u, f->s2, 10, &f->a, &p), 0);
    assert_int_equal(p.n_taken, 1); /* s1's round would go */
    rb_abort(&f->rb, &p);
    /* back to exactly the state before the plan: s1's round, buffered for s1 */
    snap s = buf_of(f, f->u);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.rounds[0], a.round_id);
    assert_string_equal(s.session_id, f->s1);
    /* so another s1 round joins it rather than pushing it out */
    added b = rb_add(f, f->u, f->s1, 10);
    assert_int_equal(b.n_taken, 0);
    assert_true(buffered_in_store(f, a.round_id));
    s = buf_of(f, f->u);
    assert_int_equal(s.n, 2);
    /* and an s2 round does push both out */
    added c = rb_add(f, f->u, f->s2, 10);
    assert_int_equal(c.n_taken, 2);
    assert_false(buffered_in_store(f, a.round_id));
    assert_false(buffered_in_store(f, b.round_id));
}

static void test_forget_session(void **state)
{
    fx *f = *state;
    rb_add(f, f->u, f->s1, 10);
    rb_add(f, f->u, f->s1, 10);
    rb_forget_session(&f->rb, f->u, f->s2); /* not the buffered session: nothing */
    assert_int_equal(buf_of(f, f->u).n, 2);
    rb_forget_session(&f->rb, f->u, f->s1);
    assert_int_equal(buf_of(f, f->u).n, 0);
    assert_int_equal(buf_of(f, f->u).tokens, 0);
    rb_add(f, f->u, f->s2, 10);
    rb_forget_session(&f->rb, f->u, NULL); /* the user is gone: everything */
    assert_int_equal(buf_of(f, f->u).n, 0);
    size_t count = registry_count(&f->reg);
    rb_forget_session(&f->rb, "no-such-user", NULL); /* does not create a service */
    assert_int_equal(registry_count(&f->reg), count);
}

/* --- restore ---------------------------------------------------------------------------------------------- */

static void test_restore_after_reopen(void **state)
{
    fx *f = *state;
    added a1 = rb_add(f, f->u, f->s1, 10);
    added a2 = rb_add(f, f->u, f->s1, 10);
    added b1 = rb_add(f, f->u2, f->s3, 10);
    close_all(f);

    /* same policy: the buffers come back as they were, nothing consolidated */
    open_all(f, 3, 100, 1000);
    RC(STORE_OK, rb_restore(&f->rb));
    snap s = buf_of(f, f->u);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.rounds[0], a1.round_id);
    assert_string_equal(s.rounds[1], a2.round_id);
    assert_string_equal(s.session_id, f->s1);
    assert_int_equal(s.tokens, 20);
    assert_int_equal(s.pending, 0);
    assert_int_equal(buf_of(f, f->u2).n, 1);
    assert_true(buffered_in_store(f, a1.round_id));
    assert_true(buffered_in_store(f, b1.round_id));
    /* and go on working: the third round of u consolidates all */
    added a3 = rb_add(f, f->u, f->s1, 10);
    assert_int_equal(a3.n_taken, 2);
    assert_false(buffered_in_store(f, a1.round_id));
    close_all(f);

    /* a stricter policy at restart consolidates what it would have */
    open_all(f, 3, 100, 1000);
    store_msg_in m = {"user", "x"};
    store_added o1, o2;
    RC(STORE_OK, OPS->messages_add(f->st, f->s1, &m, 1, 10, 0, NULL, 0, &f->a, &o1));
    RC(STORE_OK, OPS->messages_add(f->st, f->s1, &m, 1, 10, 0, NULL, 0, &f->a, &o2));
    close_all(f);
    open_all(f, 2, 100, 1000);
    RC(STORE_OK, rb_restore(&f->rb));
    assert_false(buffered_in_store(f, o1.round_id));
    assert_false(buffered_in_store(f, o2.round_id));
    assert_int_equal(buf_of(f, f->u).n, 0);
    assert_true(buffered_in_store(f, b1.round_id)); /* u2's single round stays */
    assert_int_equal(buf_of(f, f->u2).n, 1);
    close_all(f);

    /* rounds of two sessions in the store (written by an older server, say): the older session's go */
    open_all(f, 5, 1000, 1000);
    store_added p1, p2, p3;
    RC(STORE_OK, OPS->messages_add(f->st, f->s1, &m, 1, 1, 0, NULL, 0, &f->a, &p1));
    RC(STORE_OK, OPS->messages_add(f->st, f->s2, &m, 1, 1, 0, NULL, 0, &f->a, &p2));
    RC(STORE_OK, OPS->messages_add(f->st, f->s2, &m, 1, 1, 0, NULL, 0, &f->a, &p3));
    close_all(f);
    open_all(f, 5, 1000, 1000);
    RC(STORE_OK, rb_restore(&f->rb));
    assert_false(buffered_in_store(f, p1.round_id));
    assert_true(buffered_in_store(f, p2.round_id));
    assert_true(buffered_in_store(f, p3.round_id));
    s = buf_of(f, f->u);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.session_id, f->s2);
    /* restoring an already restored store changes nothing */
    store_round *rb;
    size_t n1, n2;
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n1));
    close_all(f);
    open_all(f, 5, 1000, 1000);
    RC(STORE_OK, rb_restore(&f->rb));
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n2));
    assert_int_equal(n1, n2);
}

/* --- the timer -------------------------------------------------------------------------------------------- */

static void test_timer_consolidates_idle(void **state)
{
    fx *f = *state;
    close_all(f);
    open_all(f, 5, 1000, 50); /* idle after 50 ms */
    assert_int_equal(rb_start(&f->rb), 0);
    added a = rb_add(f, f->u, f->s1, 1);
    int done = 0;
    for (int i = 0; i < 300 && !done; i++) { /* up to 3 s */
        usleep(10000);
        done = !buffered_in_store(f, a.round_id);
    }
    assert_true(done);
    assert_int_equal(buf_of(f, f->u).n, 0);
    rb_stop(&f->rb);
    f->rb_live = 0;
}

/* --- concurrency ------------------------------------------------------------------------------------------ */

enum { RTHREADS = 4, RADDS = 30 };

typedef struct rarg {
    fx *f;
    const char *sid;
    int errors;
} rarg;

static void *radd_thread(void *p)
{
    rarg *r = p;
    fx *f = r->f;
    arena a;
    arena_init(&a);
    for (int i = 0; i < RADDS; i++) {
        rb_plan plan;
        if (rb_plan_add(&f->rb, f->u, r->sid, 7, &a, &plan) != 0) {
            r->errors++;
            continue;
        }
        store_msg_in m = {"user", "concurrent"};
        store_added out;
        int rc = f->st->ops->messages_add(f->st, r->sid, &m, 1, 7, plan.consolidate_new, plan.consolidate,
                                          plan.n_taken, &a, &out);
        if (rc == STORE_OK) {
            rb_commit(&f->rb, &plan, out.round_id);
        } else {
            rb_abort(&f->rb, &plan);
            r->errors++;
        }
        arena_reset(&a);
    }
    arena_free(&a);
    return NULL;
}

/* After concurrent adds the buffer holds exactly the rounds the store has buffered for the user, all of
 * the buffer's session, and nothing is left pending. */
static void check_buffer_matches_store(fx *f, int max_rounds)
{
    snap s = buf_of(f, f->u);
    assert_int_equal(s.pending, 0);
    assert_int_equal(s.pending_tokens, 0);
    assert_true(s.n < (size_t)max_rounds);
    assert_int_equal(s.tokens, 7 * (int)s.n);
    store_round *rb;
    size_t n;
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n));
    size_t mine = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rb[i].user_id, f->u) != 0)
            continue;
        mine++;
        assert_string_equal(rb[i].session_id, s.session_id);
        int found = 0;
        for (size_t k = 0; k < s.n && !found; k++)
            found = strcmp(s.rounds[k], rb[i].id) == 0;
        if (!found)
            fail_msg("round %s is buffered in the store but not in the buffer", rb[i].id);
    }
    assert_int_equal(mine, s.n);
}

static void test_concurrent_adds_one_session(void **state)
{
    fx *f = *state;
    close_all(f);
    open_all(f, 5, 100000, 100000);
    rarg args[RTHREADS];
    for (int t = 0; t < RTHREADS; t++)
        args[t] = (rarg){.f = f, .sid = f->s1};
    tu_run_threads(RTHREADS, radd_thread, args, sizeof args[0]);
    for (int t = 0; t < RTHREADS; t++)
        assert_int_equal(args[t].errors, 0);
    check_buffer_matches_store(f, 5);
    store_counts c;
    RC(STORE_OK, OPS->counts(f->st, &c));
    assert_int_equal(c.rounds, RTHREADS * RADDS);
}

static void test_concurrent_adds_two_sessions(void **state)
{
    fx *f = *state;
    close_all(f);
    open_all(f, 5, 100000, 100000);
    rarg args[RTHREADS];
    for (int t = 0; t < RTHREADS; t++)
        args[t] = (rarg){.f = f, .sid = t % 2 ? f->s2 : f->s1};
    tu_run_threads(RTHREADS, radd_thread, args, sizeof args[0]);
    for (int t = 0; t < RTHREADS; t++)
        assert_int_equal(args[t].errors, 0);
    check_buffer_matches_store(f, 5);
}

int main(void)
{
    log_init(LOG_ERROR);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_estimate_and_defaults),
        T(test_rounds_threshold),
        T(test_tokens_threshold),
        T(test_session_change),
        T(test_idle_flush),
        T(test_abort_restores_taken),
        T(test_abort_after_session_change),
        T(test_forget_session),
        T(test_restore_after_reopen),
        T(test_timer_consolidates_idle),
        T(test_concurrent_adds_one_session),
        T(test_concurrent_adds_two_sessions),
    };
    return cmocka_run_group_tests_name("round_buffer", tests, NULL, NULL);
}
