/* store_layers_cases — the conformance cases of the LLM layers' store operations (src/store/store.h: flushes,
 * M1 episodes, M2 facts, and episodes / current facts as retrieval units), written against the store
 * interface only so that every backend runs the same cases (tests/unit/test_store_layers.c on SQLite,
 * tests/pg/test_pg_store_layers.c on PostgreSQL).
 *
 * The including file provides the fixture, before including this header:
 *
 *   static store *layers_store(void **state);
 *       the test's store; each test starts from an empty one opened with store_config.flushes = 1
 *   static arena *layers_arena(void **state);
 *       an arena that lives as long as the test
 *   static store *layers_reopen(void **state, int flushes);
 *       closes the test's store and opens the same database again with store_config.flushes = flushes
 *       (data kept); returns the new store, which later layers_store() calls return too
 *
 * and lists the cases in its CMUnitTest array with STORE_LAYERS_CASES(setup, teardown).
 *
 * What the cases pin down (beyond store.h's text): flush ids are distinct per session of one consolidation;
 * a flush records only rounds that were still buffered; flush_messages on a missing flush is
 * STORE_NOT_FOUND; facts_apply with a flush of another user is STORE_NOT_FOUND; NULL optional fields of
 * episodes and facts are stored and returned as NULL. Ties in time order are not relied on. */
#ifndef MEMFUSE_STORE_LAYERS_CASES_H
#define MEMFUSE_STORE_LAYERS_CASES_H

#include "testutil.h"

#include "store/store.h"
#include "util/arena.h"
#include "util/timeutil.h"

/* --- helpers ------------------------------------------------------------------------------------------------ */

typedef struct lc {
    void **state;
    store *s;
    arena *a;
} lc;

static lc lc_begin(void **state)
{
    lc x = {.state = state, .s = layers_store(state), .a = layers_arena(state)};
    assert_non_null(x.s);
    assert_non_null(x.a);
    return x;
}

#define LC_RC(want, call)                                                                                     \
    do {                                                                                                      \
        int lc_rc_ = (call);                                                                                  \
        if (lc_rc_ != (want))                                                                                 \
            fail_msg("%s\n  gave '%s', want '%s'", #call, store_rc_name(lc_rc_), store_rc_name(want));       \
    } while (0)

#define LC_OPS (x->s->ops)
#define LC_STRS(...) ((const char *const[]){__VA_ARGS__})
#define LC_NSTRS(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

static const char *lc_entity(lc *x, enum store_kind k, const char *name)
{
    store_entity e;
    LC_RC(STORE_OK, LC_OPS->entity_create(x->s, k, name, NULL, x->a, &e));
    return e.id;
}
#define lc_user(x, name) lc_entity(x, STORE_USERS, name)
#define lc_agent(x, name) lc_entity(x, STORE_AGENTS, name)

static const char *lc_session(lc *x, const char *uid, const char *aid, const char *name)
{
    store_session s;
    LC_RC(STORE_OK, LC_OPS->session_create(x->s, uid, aid, name, x->a, &s));
    return s.id;
}

/* One round of the given contents (roles alternate user / assistant). */
static store_added lc_add(lc *x, const char *sid, int consolidate_new, const char *const *cons, size_t n_cons,
                          const char *const *contents, size_t n)
{
    store_msg_in *m = arena_alloc(x->a, (n ? n : 1) * sizeof *m);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++) {
        m[i].role = i % 2 ? "assistant" : "user";
        m[i].content = contents[i];
    }
    store_added out;
    memset(&out, 0, sizeof out);
    out.flush_id = "unset";
    LC_RC(STORE_OK, LC_OPS->messages_add(x->s, sid, m, n, (int)(3 * n), consolidate_new, cons, n_cons, x->a, &out));
    assert_int_equal(out.n, n);
    return out;
}
/* A round, buffered (cn 0) or consolidated (cn 1), consolidating nothing else. */
#define LC_ROUND(x, sid, cn, ...) lc_add(x, sid, cn, NULL, 0, LC_STRS(__VA_ARGS__), LC_NSTRS(__VA_ARGS__))

static store_flush lc_flush(lc *x, const char *id)
{
    store_flush f;
    memset(&f, 0, sizeof f);
    LC_RC(STORE_OK, LC_OPS->flush_get(x->s, id, x->a, &f));
    assert_string_equal(f.id, id);
    return f;
}

static size_t lc_pending(lc *x, const char *now, const char *after, int limit, store_flush **out)
{
    size_t n = 999;
    LC_RC(STORE_OK, LC_OPS->flushes_pending(x->s, now, after, limit, x->a, out, &n));
    return n;
}

/* A wire timestamp offset_s seconds from now. */
static const char *lc_time(lc *x, int64_t offset_s)
{
    char *t = arena_alloc(x->a, TIME_ISO_LEN + 1);
    assert_non_null(t);
    time_iso(time_now_us() + offset_s * 1000000, t);
    return t;
}

static size_t lc_flush_messages(lc *x, const char *flush_id, store_message **out)
{
    size_t n = 999;
    LC_RC(STORE_OK, LC_OPS->flush_messages(x->s, flush_id, x->a, out, &n));
    return n;
}

static store_episode_in lc_ep(const char *content, const char *sources)
{
    store_episode_in e = {.content = content, .occurred_at = "2026-03-01T10:00:00.000000Z",
                          .participants = "[\"user\",\"assistant\"]", .source_ids = sources};
    return e;
}

static const char **lc_episodes(lc *x, const char *flush_id, const store_episode_in *eps, size_t n)
{
    const char **ids = (const char **)"unset";
    LC_RC(STORE_OK, LC_OPS->episodes_add(x->s, flush_id, eps, n, x->a, &ids));
    return ids;
}

static size_t lc_episode_list(lc *x, const char *uid, const char *sid, enum store_sort sort, int desc, int limit,
                              store_episode **out)
{
    store_page p = {.limit = limit, .sort = sort, .desc = desc, .buffer = STORE_ALL};
    size_t n = 999;
    LC_RC(STORE_OK, LC_OPS->episodes_list(x->s, uid, sid, &p, x->a, out, &n));
    return n;
}

static store_fact_op lc_op(int action, const char *target, const char *content, const char *hash, const char *sources)
{
    store_fact_op o = {.action = action, .target_id = target, .content = content, .fact_type = "preference",
                       .entities = "[\"coffee\"]", .source_ids = sources, .content_hash = hash, .confidence = 0.75,
                       .valid_from = NULL};
    return o;
}

/* Applies ops; returns the new fact ids (NULL when the flush's M2 was already done), *retired the retired. */
static const char **lc_apply(lc *x, const char *uid, const char *flush_id, const store_fact_op *ops, size_t n,
                             const char ***retired)
{
    const char **ids = (const char **)"unset", **ret = (const char **)"unset";
    LC_RC(STORE_OK, LC_OPS->facts_apply(x->s, uid, flush_id, ops, n, x->a, &ids, &ret));
    if (retired)
        *retired = ret;
    return ids;
}

/* One op of one flush; returns the new fact's id (NULL when none). */
static const char *lc_apply1(lc *x, const char *uid, const char *flush_id, store_fact_op op, const char **retired)
{
    const char **ret = NULL;
    const char **ids = lc_apply(x, uid, flush_id, &op, 1, &ret);
    assert_non_null(ids);
    assert_non_null(ret);
    if (retired)
        *retired = ret[0];
    return ids[0];
}

static store_fact lc_fact(lc *x, const char *uid, const char *id)
{
    store_fact f;
    memset(&f, 0, sizeof f);
    LC_RC(STORE_OK, LC_OPS->fact_get(x->s, uid, id, x->a, &f));
    assert_string_equal(f.id, id);
    return f;
}

static size_t lc_facts(lc *x, const char *uid, int history, store_fact **out)
{
    size_t n = 999;
    LC_RC(STORE_OK, LC_OPS->facts_list(x->s, uid, history, x->a, out, &n));
    return n;
}

static store_counts lc_counts(lc *x)
{
    store_counts c;
    memset(&c, 0, sizeof c);
    LC_RC(STORE_OK, LC_OPS->counts(x->s, &c));
    return c;
}

static void lc_valid(lc *x)
{
    char report[1024] = "";
    int rc = LC_OPS->validate(x->s, report, sizeof report);
    if (rc != STORE_OK)
        fail_msg("validate: %s (%s)", store_rc_name(rc), report);
}

/* Keyword search of one term over the chosen unit types (bit i: type i). */
static size_t lc_search(lc *x, const char *uid, const char *aid, const char *term, unsigned types, store_hit **out)
{
    const char *const terms[1] = {term};
    store_search q = {.user_id = uid, .agent_id = aid, .terms = terms, .n_terms = 1,
                      .include_messages = !!(types & 1), .include_knowledge = !!(types & 2),
                      .include_episodes = !!(types & 4), .include_facts = !!(types & 8), .limit = 50};
    size_t n = 999;
    LC_RC(STORE_OK, LC_OPS->search_keyword(x->s, &q, x->a, out, &n));
    return n;
}
#define LC_EPISODES 4u
#define LC_FACTS 8u
#define LC_ALL_TYPES 15u

static int lc_hits_have(const store_hit *h, size_t n, enum store_hit_type t, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].type == t && strcmp(h[i].id, id) == 0)
            return 1;
    return 0;
}

/* A user with one agent and one session; most cases start here. */
typedef struct lc_world {
    const char *user, *agent, *session;
} lc_world;

static lc_world lc_world_new(lc *x, const char *user_name, const char *agent_name)
{
    lc_world w;
    w.user = lc_user(x, user_name);
    w.agent = lc_agent(x, agent_name);
    w.session = lc_session(x, w.user, w.agent, NULL);
    return w;
}

/* A new consolidated round in sid; returns its flush. */
static const char *lc_new_flush(lc *x, const char *sid, const char *text)
{
    store_added ad = LC_ROUND(x, sid, 1, text, "noted");
    assert_non_null(ad.flush_id);
    return ad.flush_id;
}

/* --- flushes recorded by consolidation ------------------------------------------------------------------- */

static void test_layers_flush_on_consolidate_new(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    store_flush *pend = NULL;

    store_added b = LC_ROUND(x, w.session, 0, "still buffered", "ok");
    assert_null(b.flush_id); /* nothing consolidated */
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 0);
    assert_int_equal(lc_counts(x).flushes_pending, 0);

    store_added ad = LC_ROUND(x, w.session, 1, "I moved to Lisbon", "Nice city");
    assert_non_null(ad.flush_id);
    store_flush f = lc_flush(x, ad.flush_id);
    assert_string_equal(f.user_id, w.user);
    assert_string_equal(f.session_id, w.session);
    assert_string_equal(f.agent_id, w.agent);
    assert_non_null(f.created_at);
    assert_int_equal(f.state[1], STORE_LAYER_PENDING);
    assert_int_equal(f.state[2], STORE_LAYER_PENDING);
    assert_int_equal(f.attempts[1], 0);
    assert_int_equal(f.attempts[2], 0);
    assert_null(f.next_at);
    assert_null(f.last_error);

    /* the flush holds the new round only: the buffered one was not consolidated */
    store_message *m = NULL;
    assert_int_equal(lc_flush_messages(x, ad.flush_id, &m), 2);
    assert_string_equal(m[0].id, ad.message_ids[0]);
    assert_string_equal(m[1].id, ad.message_ids[1]);
    assert_string_equal(m[0].content, "I moved to Lisbon");
    assert_string_equal(m[0].role, "user");
    assert_string_equal(m[1].role, "assistant");
    assert_string_equal(m[0].session_id, w.session);
    assert_string_equal(m[0].round_id, ad.round_id);
    assert_int_equal(m[0].buffered, 0);

    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 1);
    assert_string_equal(pend[0].id, ad.flush_id);
    assert_string_equal(pend[0].session_id, w.session);
    assert_int_equal(lc_counts(x).flushes_pending, 1);

    store_flush none;
    LC_RC(STORE_NOT_FOUND, LC_OPS->flush_get(x->s, "0190aaaa-0000-7000-8000-000000000000", x->a, &none));
    size_t n = 9;
    LC_RC(STORE_NOT_FOUND, LC_OPS->flush_messages(x->s, "0190aaaa-0000-7000-8000-000000000000", x->a, &m, &n));
    lc_valid(x);
}

static void test_layers_flush_per_session_of_consolidate_list(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *agent2 = lc_agent(x, "coach");
    const char *s2 = lc_session(x, w.user, agent2, "second");
    const char *bob = lc_user(x, "bob");
    const char *s3 = lc_session(x, bob, w.agent, NULL);

    store_added r1 = LC_ROUND(x, w.session, 0, "one");
    store_added r2 = LC_ROUND(x, s2, 0, "two");
    store_added r3 = LC_ROUND(x, w.session, 0, "three");
    store_added r4 = LC_ROUND(x, s3, 0, "four");
    store_added r5 = LC_ROUND(x, w.session, 0, "five (stays buffered)");

    /* a buffered add in session 1 consolidating rounds of three sessions of two users */
    const char *const cons[] = {r1.round_id, r2.round_id, r3.round_id, r4.round_id, "no-such-round"};
    store_added ad = lc_add(x, w.session, 0, cons, 5, LC_STRS("six"), 1);
    assert_non_null(ad.flush_id);

    store_flush *pend = NULL;
    size_t n = lc_pending(x, lc_time(x, 0), NULL, 10, &pend);
    assert_int_equal(n, 3);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(pend[i - 1].id, pend[i].id) < 0);
    const char *f1 = NULL, *f2 = NULL, *f3 = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(pend[i].session_id, w.session) == 0)
            f1 = pend[i].id;
        else if (strcmp(pend[i].session_id, s2) == 0)
            f2 = pend[i].id;
        else if (strcmp(pend[i].session_id, s3) == 0)
            f3 = pend[i].id;
    }
    assert_non_null(f1);
    assert_non_null(f2);
    assert_non_null(f3);
    assert_string_equal(ad.flush_id, f1); /* the add's own session's flush */
    store_flush g2 = lc_flush(x, f2);
    assert_string_equal(g2.agent_id, agent2);
    assert_string_equal(g2.user_id, w.user);
    assert_string_equal(lc_flush(x, f3).user_id, bob);

    store_message *m = NULL;
    assert_int_equal(lc_flush_messages(x, f1, &m), 2); /* r1 and r3; not the add's own buffered round, not r5 */
    assert_string_equal(m[0].id, r1.message_ids[0]);
    assert_string_equal(m[1].id, r3.message_ids[0]);
    assert_int_equal(lc_flush_messages(x, f2, &m), 1);
    assert_string_equal(m[0].id, r2.message_ids[0]);
    assert_int_equal(lc_flush_messages(x, f3, &m), 1);
    assert_string_equal(m[0].id, r4.message_ids[0]);

    /* consolidating rounds already consolidated records nothing */
    store_added again = lc_add(x, w.session, 0, cons, 4, LC_STRS("seven"), 1);
    assert_null(again.flush_id);
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 3);

    /* an add whose consolidation moves only another session's round: a flush for that session, none for its own */
    const char *const other[] = {r5.round_id};
    store_added cross = lc_add(x, s2, 0, other, 1, LC_STRS("eight"), 1);
    assert_null(cross.flush_id);
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 4);
    assert_string_equal(pend[3].session_id, w.session);
    assert_int_equal(lc_flush_messages(x, pend[3].id, &m), 1);
    assert_string_equal(m[0].id, r5.message_ids[0]);

    /* consolidate_new with consolidate[] of the same session: one flush holding both, oldest first */
    store_added r9 = LC_ROUND(x, s2, 0, "nine");
    const char *const mine[] = {r9.round_id};
    store_added both = lc_add(x, s2, 1, mine, 1, LC_STRS("ten", "eleven"), 2);
    assert_non_null(both.flush_id);
    assert_int_equal(lc_flush_messages(x, both.flush_id, &m), 3);
    assert_string_equal(m[0].id, r9.message_ids[0]);
    assert_string_equal(m[1].id, both.message_ids[0]);
    assert_string_equal(m[2].id, both.message_ids[1]);
    assert_int_equal(lc_counts(x).flushes_pending, 5);
    lc_valid(x);
}

static void test_layers_rounds_consolidate_records_flushes(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *s2 = lc_session(x, w.user, w.agent, "second");
    store_added a1 = LC_ROUND(x, w.session, 0, "a1");
    store_added a2 = LC_ROUND(x, s2, 0, "a2");
    store_added a3 = LC_ROUND(x, w.session, 0, "a3", "a3 reply");

    const char *const ids[] = {a3.round_id, a2.round_id, a1.round_id, "missing"};
    LC_RC(STORE_OK, LC_OPS->rounds_consolidate(x->s, ids, 4));
    store_flush *pend = NULL;
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 2);
    const char *f1 = strcmp(pend[0].session_id, w.session) == 0 ? pend[0].id : pend[1].id;
    const char *f2 = strcmp(pend[0].session_id, s2) == 0 ? pend[0].id : pend[1].id;
    assert_string_not_equal(f1, f2);

    /* oldest first whatever the order of the ids */
    store_message *m = NULL;
    assert_int_equal(lc_flush_messages(x, f1, &m), 3);
    assert_string_equal(m[0].id, a1.message_ids[0]);
    assert_string_equal(m[1].id, a3.message_ids[0]);
    assert_string_equal(m[2].id, a3.message_ids[1]);
    assert_int_equal(lc_flush_messages(x, f2, &m), 1);
    assert_string_equal(m[0].id, a2.message_ids[0]);

    store_round r;
    LC_RC(STORE_OK, LC_OPS->round_get(x->s, a1.round_id, x->a, &r));
    assert_int_equal(r.buffered, 0);

    /* again: nothing is still buffered, so nothing is recorded */
    LC_RC(STORE_OK, LC_OPS->rounds_consolidate(x->s, ids, 4));
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 2);
    LC_RC(STORE_OK, LC_OPS->rounds_consolidate(x->s, ids, 0));
    assert_int_equal(lc_counts(x).flushes_pending, 2);

    /* messages deleted after the flush leave it; the flush itself stays */
    LC_RC(STORE_OK, LC_OPS->messages_delete(x->s, w.session, LC_STRS(a3.message_ids[0]), 1, x->a,
                                            &(const char **){NULL}, &(size_t){0}));
    assert_int_equal(lc_flush_messages(x, f1, &m), 2);
    assert_string_equal(m[0].id, a1.message_ids[0]);
    assert_string_equal(m[1].id, a3.message_ids[1]);
    lc_valid(x);
}

static void test_layers_no_flush_when_off(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    store_added b = LC_ROUND(x, w.session, 0, "buffered before");
    x->s = layers_reopen(state, 0);

    store_added ad = LC_ROUND(x, w.session, 1, "consolidated without an LLM");
    assert_null(ad.flush_id);
    const char *const ids[] = {b.round_id};
    LC_RC(STORE_OK, LC_OPS->rounds_consolidate(x->s, ids, 1));
    store_added more = LC_ROUND(x, w.session, 0, "buffered");
    const char *const ids2[] = {more.round_id};
    store_added cons = lc_add(x, w.session, 1, ids2, 1, LC_STRS("and consolidated"), 1);
    assert_null(cons.flush_id);
    store_flush *pend = NULL;
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 0);
    assert_int_equal(lc_counts(x).flushes_pending, 0);

    /* turned on again: only consolidations from now on record flushes */
    x->s = layers_reopen(state, 1);
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 0);
    const char *f = lc_new_flush(x, w.session, "with an LLM again");
    store_message *m = NULL;
    assert_int_equal(lc_flush_messages(x, f, &m), 2);
    assert_string_equal(m[0].content, "with an LLM again");
    lc_valid(x);
}

/* --- pending scan and failures ------------------------------------------------------------------------------- */

static void test_layers_flushes_pending(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *f[4];
    for (int i = 0; i < 4; i++)
        f[i] = lc_new_flush(x, w.session, "round");
    for (int i = 1; i < 4; i++)
        assert_true(strcmp(f[i - 1], f[i]) < 0); /* id order is creation order */
    const char *now = lc_time(x, 0), *later = lc_time(x, 7200);
    store_flush *p = NULL;

    assert_int_equal(lc_pending(x, now, NULL, 10, &p), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(p[i].id, f[i]);
    assert_int_equal(lc_pending(x, now, NULL, 2, &p), 2); /* limit */
    assert_string_equal(p[1].id, f[1]);
    assert_int_equal(lc_pending(x, now, f[1], 10, &p), 2); /* after */
    assert_string_equal(p[0].id, f[2]);
    assert_string_equal(p[1].id, f[3]);
    assert_int_equal(lc_pending(x, now, f[3], 10, &p), 0);

    /* not due before next_at */
    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f[1], 1, lc_time(x, 3600), "timeout", 0));
    assert_int_equal(lc_pending(x, now, NULL, 10, &p), 3);
    assert_string_equal(p[1].id, f[2]);
    assert_int_equal(lc_pending(x, later, NULL, 10, &p), 4);
    assert_string_equal(p[1].id, f[1]);
    assert_non_null(p[1].next_at);
    /* next_at in the past: due */
    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f[1], 2, lc_time(x, -60), "again", 0));
    assert_int_equal(lc_pending(x, now, NULL, 10, &p), 4);

    /* both layers done: no longer pending; one layer done: still pending */
    assert_non_null(lc_episodes(x, f[0], NULL, 0));
    assert_int_equal(lc_pending(x, now, NULL, 10, &p), 4);
    assert_non_null(lc_apply(x, w.user, f[0], NULL, 0, NULL));
    assert_int_equal(lc_pending(x, now, NULL, 10, &p), 3);
    assert_string_equal(p[0].id, f[1]);
    store_flush g = lc_flush(x, f[0]);
    assert_int_equal(g.state[1], STORE_LAYER_DONE);
    assert_int_equal(g.state[2], STORE_LAYER_DONE);

    /* a layer given up counts as not pending */
    lc_episodes(x, f[3], NULL, 0);
    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f[3], 2, NULL, "bad output", 1));
    assert_int_equal(lc_pending(x, later, NULL, 10, &p), 2);
    assert_string_equal(p[0].id, f[1]);
    assert_string_equal(p[1].id, f[2]);
    assert_int_equal(lc_counts(x).flushes_pending, 2);

    /* limit 0 or less: nothing, without error */
    assert_int_equal(lc_pending(x, later, NULL, 0, &p), 0);
    lc_valid(x);
}

static void test_layers_flush_failed(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *f = lc_new_flush(x, w.session, "round");
    const char *t1 = lc_time(x, 30), *t2 = lc_time(x, 90);

    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f, 1, t1, "LLM timeout", 0));
    store_flush g = lc_flush(x, f);
    assert_int_equal(g.attempts[1], 1);
    assert_int_equal(g.attempts[2], 0);
    assert_int_equal(g.state[1], STORE_LAYER_PENDING);
    assert_string_equal(g.next_at, t1);
    assert_string_equal(g.last_error, "LLM timeout");

    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f, 2, t2, "HTTP 503", 0));
    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f, 2, t2, "HTTP 429", 0));
    g = lc_flush(x, f);
    assert_int_equal(g.attempts[1], 1);
    assert_int_equal(g.attempts[2], 2);
    assert_string_equal(g.next_at, t2);
    assert_string_equal(g.last_error, "HTTP 429");

    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f, 1, NULL, NULL, 1)); /* give up, no error text */
    g = lc_flush(x, f);
    assert_int_equal(g.attempts[1], 2);
    assert_int_equal(g.state[1], STORE_LAYER_FAILED);
    assert_int_equal(g.state[2], STORE_LAYER_PENDING);
    assert_null(g.next_at);
    assert_null(g.last_error);

    /* M1 given up, M2 still pending: the flush is still scanned until M2 ends too */
    store_flush *p = NULL;
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &p), 1); /* M2 still pending */
    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f, 2, NULL, "gave up", 1));
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &p), 0);
    assert_int_equal(lc_flush(x, f).state[2], STORE_LAYER_FAILED);

    LC_RC(STORE_NOT_FOUND, LC_OPS->flush_failed(x->s, "0190aaaa-0000-7000-8000-000000000000", 1, NULL, "x", 0));
    assert_int_not_equal(LC_OPS->flush_failed(x->s, f, 0, NULL, "x", 0), STORE_OK);
    assert_int_not_equal(LC_OPS->flush_failed(x->s, f, 3, NULL, "x", 0), STORE_OK);
    lc_valid(x);
}

/* --- episodes ---------------------------------------------------------------------------------------------------- */

static void test_layers_episodes_add(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    store_added ad = LC_ROUND(x, w.session, 1, "We hiked Sintra on Sunday", "Sounds lovely");
    const char *src = arena_sprintf(x->a, "[\"%s\",\"%s\"]", ad.message_ids[0], ad.message_ids[1]);
    store_episode_in eps[3] = {lc_ep("Alice hiked in Sintra", src), lc_ep("Alice plans a second hike", NULL),
                               {.content = "No optional fields"}};
    eps[1].occurred_at = NULL;
    const char **ids = lc_episodes(x, ad.flush_id, eps, 3);
    assert_non_null(ids);
    for (int i = 0; i < 3; i++)
        assert_non_null(ids[i]);
    assert_true(strcmp(ids[0], ids[1]) < 0 && strcmp(ids[1], ids[2]) < 0);
    assert_int_equal(lc_flush(x, ad.flush_id).state[1], STORE_LAYER_DONE);
    assert_int_equal(lc_flush(x, ad.flush_id).state[2], STORE_LAYER_PENDING);
    assert_int_equal(lc_counts(x).episodes, 3);

    store_episode *e = NULL;
    assert_int_equal(lc_episode_list(x, w.user, NULL, STORE_SORT_TIME, 0, 10, &e), 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(e[i].id, ids[i]);
        assert_string_equal(e[i].user_id, w.user);
        assert_string_equal(e[i].session_id, w.session);
        assert_string_equal(e[i].agent_id, w.agent);
        assert_string_equal(e[i].flush_id, ad.flush_id);
        assert_string_equal(e[i].content, eps[i].content);
        assert_non_null(e[i].created_at);
        assert_non_null(e[i].updated_at);
    }
    assert_string_equal(e[0].occurred_at, "2026-03-01T10:00:00.000000Z");
    assert_string_equal(e[0].participants, "[\"user\",\"assistant\"]");
    assert_string_equal(e[0].source_ids, src);
    assert_null(e[1].occurred_at);
    assert_null(e[1].source_ids);
    assert_null(e[2].occurred_at);
    assert_null(e[2].participants);
    assert_null(e[2].source_ids);

    /* a repeated M1 (a retry after a lost reply, another worker) stores nothing */
    const char **again = (const char **)"unset";
    LC_RC(STORE_OK, LC_OPS->episodes_add(x->s, ad.flush_id, eps, 2, x->a, &again));
    assert_null(again);
    assert_int_equal(lc_counts(x).episodes, 3);
    LC_RC(STORE_OK, LC_OPS->episodes_add(x->s, ad.flush_id, NULL, 0, x->a, &again));
    assert_null(again);

    /* n episodes but no array: refused, nothing stored */
    const char *fz = lc_new_flush(x, w.session, "no array");
    assert_int_not_equal(LC_OPS->episodes_add(x->s, fz, NULL, 2, x->a, &again), STORE_OK);
    assert_int_equal(lc_flush(x, fz).state[1], STORE_LAYER_PENDING);

    /* missing flush */
    LC_RC(STORE_NOT_FOUND, LC_OPS->episodes_add(x->s, "0190aaaa-0000-7000-8000-000000000000", eps, 1, x->a, &again));
    assert_null(again);
    LC_RC(STORE_NOT_FOUND, LC_OPS->episodes_add(x->s, NULL, eps, 1, x->a, &again));
    assert_int_equal(lc_counts(x).episodes, 3);

    /* zero episodes still mark M1 done */
    const char *f2 = lc_new_flush(x, w.session, "small talk");
    lc_episodes(x, f2, NULL, 0);
    assert_int_equal(lc_flush(x, f2).state[1], STORE_LAYER_DONE);
    assert_int_equal(lc_counts(x).episodes, 3);

    /* a failing batch (an episode without content) stores none of it and leaves M1 pending */
    const char *f3 = lc_new_flush(x, w.session, "more");
    store_episode_in bad[2] = {lc_ep("fine", NULL), {.content = NULL}};
    assert_int_not_equal(LC_OPS->episodes_add(x->s, f3, bad, 2, x->a, &again), STORE_OK);
    assert_int_equal(lc_flush(x, f3).state[1], STORE_LAYER_PENDING);
    assert_int_equal(lc_counts(x).episodes, 3);
    lc_valid(x);
}

static void test_layers_episodes_list(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *s2 = lc_session(x, w.user, w.agent, "second");
    lc_world bob = lc_world_new(x, "bob", "other");
    const char *all[4];
    const char *f1 = lc_new_flush(x, w.session, "r1");
    store_episode_in e1[2] = {lc_ep("first", NULL), lc_ep("second", NULL)};
    const char **i1 = lc_episodes(x, f1, e1, 2);
    const char *f2 = lc_new_flush(x, s2, "r2");
    store_episode_in e2[1] = {lc_ep("third", NULL)};
    const char **i2 = lc_episodes(x, f2, e2, 1);
    const char *f3 = lc_new_flush(x, w.session, "r3");
    store_episode_in e3[1] = {lc_ep("fourth", NULL)};
    const char **i3 = lc_episodes(x, f3, e3, 1);
    all[0] = i1[0], all[1] = i1[1], all[2] = i2[0], all[3] = i3[0];
    const char *fb = lc_new_flush(x, bob.session, "rb");
    store_episode_in eb[1] = {lc_ep("bob's", NULL)};
    lc_episodes(x, fb, eb, 1);

    store_episode *e = NULL;
    assert_int_equal(lc_episode_list(x, w.user, NULL, STORE_SORT_TIME, 0, 10, &e), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(e[i].id, all[i]);
    assert_int_equal(lc_episode_list(x, w.user, NULL, STORE_SORT_TIME, 1, 10, &e), 4);
    for (int i = 0; i < 4; i++)
        assert_string_equal(e[i].id, all[3 - i]);
    assert_int_equal(lc_episode_list(x, w.user, NULL, STORE_SORT_ID, 1, 2, &e), 2);
    assert_string_equal(e[0].id, all[3]);
    assert_string_equal(e[1].id, all[2]);
    assert_int_equal(lc_episode_list(x, w.user, NULL, STORE_SORT_ID, 0, 1, &e), 1);
    assert_string_equal(e[0].id, all[0]);
    assert_int_equal(lc_episode_list(x, w.user, w.session, STORE_SORT_TIME, 0, 10, &e), 3);
    assert_string_equal(e[0].id, all[0]);
    assert_string_equal(e[2].id, all[3]);
    assert_int_equal(lc_episode_list(x, w.user, s2, STORE_SORT_TIME, 0, 10, &e), 1);
    assert_string_equal(e[0].content, "third");
    /* another user's session lists nothing for this user */
    assert_int_equal(lc_episode_list(x, w.user, bob.session, STORE_SORT_TIME, 0, 10, &e), 0);
    assert_int_equal(lc_episode_list(x, bob.user, NULL, STORE_SORT_TIME, 0, 10, &e), 1);
    assert_int_equal(lc_episode_list(x, "no-such-user", NULL, STORE_SORT_TIME, 0, 10, &e), 0);
}

static void test_layers_episodes_keyword_search(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *coach = lc_agent(x, "coach");
    const char *s2 = lc_session(x, w.user, coach, "training");
    lc_world bob = lc_world_new(x, "bob", "bobs-agent");

    store_added a1 = LC_ROUND(x, w.session, 1, "the marathon is in April");
    const char *src = arena_sprintf(x->a, "[\"%s\"]", a1.message_ids[0]);
    store_episode_in e1[1] = {lc_ep("Alice signed up for the marathon", src)};
    const char *ep1 = lc_episodes(x, a1.flush_id, e1, 1)[0];
    const char *f2 = lc_new_flush(x, s2, "intervals");
    store_episode_in e2[1] = {lc_ep("Coach planned marathon intervals", NULL)};
    const char *ep2 = lc_episodes(x, f2, e2, 1)[0];
    const char *fb = lc_new_flush(x, bob.session, "bob");
    store_episode_in eb[1] = {lc_ep("Bob watched a marathon", NULL)};
    lc_episodes(x, fb, eb, 1);

    store_hit *h = NULL;
    size_t n = lc_search(x, w.user, NULL, "marathon", LC_EPISODES, &h);
    assert_int_equal(n, 2);
    assert_true(lc_hits_have(h, n, STORE_HIT_EPISODE, ep1));
    assert_true(lc_hits_have(h, n, STORE_HIT_EPISODE, ep2));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(h[i].type, STORE_HIT_EPISODE);
        assert_null(h[i].role);
        assert_true(h[i].score >= 0);
        assert_non_null(h[i].created_at);
        assert_non_null(h[i].updated_at);
        if (strcmp(h[i].id, ep1) == 0) {
            assert_string_equal(h[i].content, "Alice signed up for the marathon");
            assert_string_equal(h[i].session_id, w.session);
            assert_non_null(h[i].session_name);
            assert_string_equal(h[i].agent_id, w.agent);
            assert_string_equal(h[i].occurred_at, "2026-03-01T10:00:00.000000Z");
            assert_string_equal(h[i].source_ids, src);
        }
    }
    /* the agent filter, like messages */
    n = lc_search(x, w.user, coach, "marathon", LC_EPISODES, &h);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].id, ep2);
    assert_string_equal(h[0].session_name, "training");
    /* only the types asked for: the message holding "marathon" shows up with messages only */
    n = lc_search(x, w.user, NULL, "marathon", 1u, &h);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].type, STORE_HIT_MESSAGE);
    n = lc_search(x, w.user, NULL, "marathon", LC_ALL_TYPES, &h);
    assert_int_equal(n, 3);
    n = lc_search(x, w.user, NULL, "marathon", LC_FACTS | 2u, &h);
    assert_int_equal(n, 0);
    n = lc_search(x, w.user, NULL, "sintra", LC_EPISODES, &h);
    assert_int_equal(n, 0);
    /* stemming as for messages */
    n = lc_search(x, w.user, NULL, "interval", LC_EPISODES, &h);
    assert_int_equal(n, 1);
    /* the user's own only */
    n = lc_search(x, bob.user, NULL, "marathon", LC_EPISODES, &h);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].content, "Bob watched a marathon");
    lc_valid(x);
}

/* --- facts ------------------------------------------------------------------------------------------------------- */

static void test_layers_facts_apply_add_update_invalidate(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *f1 = lc_new_flush(x, w.session, "I like coffee");

    store_fact_op add = lc_op(STORE_FACT_ADD, NULL, "Alice likes coffee", "h-coffee", "[\"m1\"]");
    add.valid_from = "2026-02-01T00:00:00.000000Z";
    const char *retired = "unset";
    const char *a = lc_apply1(x, w.user, f1, add, &retired);
    assert_non_null(a);
    assert_null(retired);
    store_fact fa = lc_fact(x, w.user, a);
    assert_string_equal(fa.user_id, w.user);
    assert_string_equal(fa.session_id, w.session);
    assert_string_equal(fa.agent_id, w.agent);
    assert_string_equal(fa.flush_id, f1);
    assert_null(fa.episode_id);
    assert_string_equal(fa.content, "Alice likes coffee");
    assert_string_equal(fa.fact_type, "preference");
    assert_string_equal(fa.entities, "[\"coffee\"]");
    assert_string_equal(fa.source_ids, "[\"m1\"]");
    assert_string_equal(fa.content_hash, "h-coffee");
    assert_true(fa.confidence > 0.74 && fa.confidence < 0.76);
    assert_int_equal(fa.status, STORE_FACT_CURRENT);
    assert_string_equal(fa.valid_from, "2026-02-01T00:00:00.000000Z");
    assert_null(fa.valid_to);
    assert_null(fa.superseded_by);
    assert_null(fa.supersedes);
    assert_non_null(fa.created_at);
    assert_non_null(fa.updated_at);
    store_flush g = lc_flush(x, f1);
    assert_int_equal(g.state[2], STORE_LAYER_DONE);
    assert_int_equal(g.state[1], STORE_LAYER_PENDING);

    /* UPDATE: a new version, the old one superseded from the new one's valid_from */
    const char *f2 = lc_new_flush(x, w.session, "now tea");
    store_fact_op up = lc_op(STORE_FACT_UPDATE, a, "Alice prefers tea now", "h-tea", "[\"m2\"]");
    up.valid_from = "2026-03-01T00:00:00.000000Z";
    const char *b = lc_apply1(x, w.user, f2, up, &retired);
    assert_non_null(b);
    assert_string_equal(retired, a);
    store_fact fb = lc_fact(x, w.user, b);
    assert_int_equal(fb.status, STORE_FACT_CURRENT);
    assert_string_equal(fb.supersedes, a);
    assert_string_equal(fb.flush_id, f2);
    fa = lc_fact(x, w.user, a);
    assert_int_equal(fa.status, STORE_FACT_SUPERSEDED);
    assert_string_equal(fa.valid_to, "2026-03-01T00:00:00.000000Z");
    assert_string_equal(fa.superseded_by, b);
    assert_true(strcmp(fa.updated_at, fa.created_at) >= 0);

    /* INVALIDATE with content: the contradicting fact is stored, the target invalidated */
    const char *f3 = lc_new_flush(x, w.session, "no more tea");
    const char *cnew = lc_apply1(x, w.user, f3, lc_op(STORE_FACT_INVALIDATE, b, "Alice stopped drinking tea",
                                                      "h-notea", NULL), &retired);
    assert_non_null(cnew);
    assert_string_equal(retired, b);
    store_fact fc = lc_fact(x, w.user, cnew);
    assert_string_equal(fc.supersedes, b);
    assert_non_null(fc.valid_from); /* NULL: now */
    fb = lc_fact(x, w.user, b);
    assert_int_equal(fb.status, STORE_FACT_INVALIDATED);
    assert_string_equal(fb.superseded_by, cnew);
    assert_string_equal(fb.valid_to, fc.valid_from);

    /* INVALIDATE without content: the target retired, nothing stored */
    const char *f4 = lc_new_flush(x, w.session, "forget it");
    const char *none = lc_apply1(x, w.user, f4, lc_op(STORE_FACT_INVALIDATE, cnew, NULL, NULL, NULL), &retired);
    assert_null(none);
    assert_string_equal(retired, cnew);
    fc = lc_fact(x, w.user, cnew);
    assert_int_equal(fc.status, STORE_FACT_INVALIDATED);
    assert_null(fc.superseded_by);
    assert_non_null(fc.valid_to);
    assert_int_equal(lc_flush(x, f4).state[2], STORE_LAYER_DONE);

    store_fact *list = NULL;
    assert_int_equal(lc_facts(x, w.user, 0, &list), 0);
    assert_int_equal(lc_facts(x, w.user, 1, &list), 3);
    assert_int_equal(lc_counts(x).facts, 0);
    lc_valid(x);
}

static void test_layers_facts_apply_bad_targets(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    lc_world bob = lc_world_new(x, "bob", "bobs-agent");
    const char *fb = lc_new_flush(x, bob.session, "bob");
    const char *bobs = lc_apply1(x, bob.user, fb, lc_op(STORE_FACT_ADD, NULL, "Bob has a dog", "h-dog", NULL), NULL);

    /* several ops of one flush, in order: later ops see earlier ones */
    const char *f1 = lc_new_flush(x, w.session, "stuff");
    store_fact_op ops[6] = {
        lc_op(STORE_FACT_ADD, NULL, "Alice has a cat", "h-cat", NULL),
        lc_op(STORE_FACT_UPDATE, "0190aaaa-0000-7000-8000-000000000000", "Alice has two cats", "h-2cats", NULL),
        lc_op(STORE_FACT_UPDATE, bobs, "Alice has a dog too", "h-adog", NULL), /* another user's fact */
        lc_op(STORE_FACT_INVALIDATE, "0190aaaa-0000-7000-8000-000000000000", NULL, NULL, NULL),
        lc_op(STORE_FACT_INVALIDATE, bobs, "Alice is allergic to dogs", "h-allergy", NULL),
        lc_op(STORE_FACT_UPDATE, NULL, "Alice lives alone", "h-alone", NULL), /* no target at all */
    };
    const char **ret = NULL;
    const char **ids = lc_apply(x, w.user, f1, ops, 6, &ret);
    assert_non_null(ids);
    assert_non_null(ret);
    for (int i = 0; i < 6; i++)
        assert_null(ret[i]);
    assert_non_null(ids[0]);
    assert_non_null(ids[1]);
    assert_non_null(ids[2]);
    assert_null(ids[3]); /* invalidating nothing current, storing nothing: a no-op */
    assert_non_null(ids[4]);
    assert_non_null(ids[5]);
    for (int i = 0; i < 6; i++) {
        if (!ids[i])
            continue;
        store_fact f = lc_fact(x, w.user, ids[i]);
        assert_int_equal(f.status, STORE_FACT_CURRENT);
        assert_null(f.supersedes);
    }
    assert_int_equal(lc_fact(x, bob.user, bobs).status, STORE_FACT_CURRENT); /* untouched */
    assert_null(lc_fact(x, bob.user, bobs).superseded_by);

    /* a target already retired is not current: the op becomes an ADD */
    const char *f2 = lc_new_flush(x, w.session, "more");
    store_fact_op two[2] = {lc_op(STORE_FACT_UPDATE, ids[0], "Alice has a black cat", "h-black", NULL),
                            lc_op(STORE_FACT_UPDATE, ids[0], "Alice has a white cat", "h-white", NULL)};
    const char **ids2 = lc_apply(x, w.user, f2, two, 2, &ret);
    assert_string_equal(ret[0], ids[0]);
    assert_null(ret[1]);
    assert_string_equal(lc_fact(x, w.user, ids2[0]).supersedes, ids[0]);
    assert_null(lc_fact(x, w.user, ids2[1]).supersedes);
    assert_string_equal(lc_fact(x, w.user, ids[0]).superseded_by, ids2[0]);
    assert_int_equal(lc_counts(x).facts, 7); /* alice: 5 + 2 - 1 retired; bob: 1 */
    lc_valid(x);
}

static void test_layers_facts_apply_done_and_missing_flush(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    lc_world bob = lc_world_new(x, "bob", "bobs-agent");
    const char *f = lc_new_flush(x, w.session, "fact");
    const char *a = lc_apply1(x, w.user, f, lc_op(STORE_FACT_ADD, NULL, "Alice is a nurse", "h-nurse", NULL), NULL);

    /* M2 of this flush is done: a repeat stores and retires nothing */
    store_fact_op again[2] = {lc_op(STORE_FACT_ADD, NULL, "Alice is a nurse", "h-nurse", NULL),
                              lc_op(STORE_FACT_INVALIDATE, a, NULL, NULL, NULL)};
    const char **ret = (const char **)"unset";
    assert_null(lc_apply(x, w.user, f, again, 2, &ret));
    assert_null(ret);
    store_fact *list = NULL;
    assert_int_equal(lc_facts(x, w.user, 1, &list), 1);
    assert_int_equal(lc_fact(x, w.user, a).status, STORE_FACT_CURRENT);

    /* a missing flush, or another user's */
    const char **ids = (const char **)"unset";
    LC_RC(STORE_NOT_FOUND, LC_OPS->facts_apply(x->s, w.user, "0190aaaa-0000-7000-8000-000000000000", again, 1, x->a,
                                               &ids, &ret));
    const char *fb = lc_new_flush(x, bob.session, "bob");
    LC_RC(STORE_NOT_FOUND, LC_OPS->facts_apply(x->s, w.user, fb, again, 1, x->a, &ids, &ret));
    assert_int_equal(lc_flush(x, fb).state[2], STORE_LAYER_PENDING);
    assert_int_equal(lc_facts(x, w.user, 1, &list), 1);
    assert_int_equal(lc_facts(x, bob.user, 1, &list), 0);

    /* no flush: facts without session or agent, nothing marked */
    const char *loose = lc_apply1(x, w.user, NULL, lc_op(STORE_FACT_ADD, NULL, "Alice speaks Dutch", "h-nl", NULL),
                                  NULL);
    store_fact fl = lc_fact(x, w.user, loose);
    assert_null(fl.flush_id);
    assert_null(fl.session_id);
    assert_null(fl.agent_id);
    assert_null(fl.episode_id);

    /* without a flush nothing vouches for the user: an unknown one is refused */
    LC_RC(STORE_NO_USER, LC_OPS->facts_apply(x->s, "no-such-user", NULL, again, 1, x->a, &ids, &ret));
    LC_RC(STORE_NO_USER, LC_OPS->facts_apply(x->s, NULL, NULL, again, 1, x->a, &ids, &ret));
    /* with a flush and no user: the flush's user */
    const char *fn = lc_new_flush(x, w.session, "whose");
    const char *theirs = lc_apply1(x, NULL, fn, lc_op(STORE_FACT_ADD, NULL, "Alice cycles", "h-cyc", NULL), NULL);
    assert_string_equal(lc_fact(x, w.user, theirs).session_id, w.session);

    /* an ADD or UPDATE without content stores and retires nothing; the rest of the batch applies */
    const char *fm = lc_new_flush(x, w.session, "malformed");
    store_fact_op mixed[3] = {lc_op(STORE_FACT_ADD, NULL, NULL, "h-x", NULL),
                              lc_op(STORE_FACT_UPDATE, loose, NULL, "h-y", NULL),
                              lc_op(STORE_FACT_ADD, NULL, "Alice reads", "h-read", NULL)};
    const char **mids = lc_apply(x, w.user, fm, mixed, 3, &ret);
    assert_null(mids[0]);
    assert_null(ret[0]);
    assert_null(mids[1]);
    assert_null(ret[1]);
    assert_non_null(mids[2]);
    assert_int_equal(lc_fact(x, w.user, loose).status, STORE_FACT_CURRENT);
    LC_RC(STORE_OK, LC_OPS->fact_by_hash(x->s, w.user, "h-read", x->a, &(store_fact){0}));

    /* optional fields NULL */
    const char *f2 = lc_new_flush(x, w.session, "bare");
    store_fact_op bare = {.action = STORE_FACT_ADD, .content = "Alice exists"};
    const char *id = lc_apply1(x, w.user, f2, bare, NULL);
    store_fact fe = lc_fact(x, w.user, id);
    assert_null(fe.fact_type);
    assert_null(fe.entities);
    assert_null(fe.source_ids);
    assert_null(fe.content_hash);
    assert_non_null(fe.valid_from);
    assert_int_equal(fe.status, STORE_FACT_CURRENT);

    /* zero ops still mark M2 done */
    const char *f3 = lc_new_flush(x, w.session, "nothing to learn");
    assert_non_null(lc_apply(x, w.user, f3, NULL, 0, NULL));
    assert_int_equal(lc_flush(x, f3).state[2], STORE_LAYER_DONE);
    lc_valid(x);
}

static void test_layers_fact_by_hash_and_lists(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    lc_world bob = lc_world_new(x, "bob", "bobs-agent");
    const char *f1 = lc_new_flush(x, w.session, "one");
    store_fact_op first[2] = {lc_op(STORE_FACT_ADD, NULL, "Alice runs", "h-run", NULL),
                              lc_op(STORE_FACT_ADD, NULL, "Alice swims", "h-swim", NULL)};
    const char **ids1 = lc_apply(x, w.user, f1, first, 2, NULL);
    const char *f2 = lc_new_flush(x, w.session, "two");
    const char *run2 = lc_apply1(x, w.user, f2, lc_op(STORE_FACT_UPDATE, ids1[0], "Alice runs daily", "h-run2", NULL),
                                 NULL);
    const char *fb = lc_new_flush(x, bob.session, "bob");
    const char *bobs = lc_apply1(x, bob.user, fb, lc_op(STORE_FACT_ADD, NULL, "Bob runs", "h-run", NULL), NULL);

    store_fact out;
    LC_RC(STORE_OK, LC_OPS->fact_by_hash(x->s, w.user, "h-swim", x->a, &out));
    assert_string_equal(out.id, ids1[1]);
    LC_RC(STORE_OK, LC_OPS->fact_by_hash(x->s, w.user, "h-run2", x->a, &out));
    assert_string_equal(out.id, run2);
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_by_hash(x->s, w.user, "h-run", x->a, &out)); /* superseded */
    LC_RC(STORE_OK, LC_OPS->fact_by_hash(x->s, bob.user, "h-run", x->a, &out));
    assert_string_equal(out.id, bobs);
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_by_hash(x->s, bob.user, "h-swim", x->a, &out));
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_by_hash(x->s, w.user, NULL, x->a, &out));
    /* several current facts with one hash (M2 checks before it adds; the store does not refuse): the newest */
    const char *f3 = lc_new_flush(x, w.session, "three");
    const char *swim2 = lc_apply1(x, w.user, f3, lc_op(STORE_FACT_ADD, NULL, "Alice swims!", "h-swim", NULL), NULL);
    LC_RC(STORE_OK, LC_OPS->fact_by_hash(x->s, w.user, "h-swim", x->a, &out));
    assert_string_equal(out.id, swim2);
    LC_RC(STORE_OK, LC_OPS->fact_retract(x->s, w.user, swim2));

    /* current only, newest first; history: every version, newest first */
    store_fact *list = NULL;
    assert_int_equal(lc_facts(x, w.user, 0, &list), 2);
    assert_string_equal(list[0].id, run2);
    assert_string_equal(list[1].id, ids1[1]);
    assert_int_equal(lc_facts(x, w.user, 1, &list), 4);
    assert_string_equal(list[0].id, swim2);
    list++;
    assert_string_equal(list[0].id, run2);
    /* ids1[0] and ids1[1] were created in one apply: same created_at, so the later id first */
    assert_string_equal(list[1].id, ids1[1]);
    assert_string_equal(list[2].id, ids1[0]);
    assert_int_equal(list[2].status, STORE_FACT_SUPERSEDED);
    for (size_t i = 1; i < 3; i++)
        assert_true(strcmp(list[i - 1].created_at, list[i].created_at) >= 0);
    assert_int_equal(lc_facts(x, bob.user, 1, &list), 1);
    assert_int_equal(lc_facts(x, "no-such-user", 1, &list), 0);
}

static void test_layers_fact_get_and_retract(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    lc_world bob = lc_world_new(x, "bob", "bobs-agent");
    const char *f1 = lc_new_flush(x, w.session, "one");
    store_fact_op ops[2] = {lc_op(STORE_FACT_ADD, NULL, "Alice owns a bicycle", "h-bike", NULL),
                            lc_op(STORE_FACT_ADD, NULL, "Alice owns a kayak", "h-kayak", NULL)};
    const char **ids = lc_apply(x, w.user, f1, ops, 2, NULL);
    const char *f2 = lc_new_flush(x, w.session, "two");
    const char *bike2 = lc_apply1(x, w.user, f2, lc_op(STORE_FACT_UPDATE, ids[0], "Alice owns an e-bike",
                                                       "h-ebike", NULL), NULL);

    store_fact out;
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_get(x->s, bob.user, ids[1], x->a, &out)); /* another user's */
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_get(x->s, w.user, "0190aaaa-0000-7000-8000-000000000000", x->a, &out));
    assert_int_equal(lc_fact(x, w.user, ids[0]).status, STORE_FACT_SUPERSEDED); /* any status */

    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_retract(x->s, bob.user, ids[1]));
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_retract(x->s, w.user, "0190aaaa-0000-7000-8000-000000000000"));
    LC_RC(STORE_CONFLICT, LC_OPS->fact_retract(x->s, w.user, ids[0])); /* superseded: not current */
    assert_int_equal(lc_fact(x, w.user, ids[0]).status, STORE_FACT_SUPERSEDED);

    store_hit *h = NULL;
    assert_int_equal(lc_search(x, w.user, NULL, "kayak", LC_FACTS, &h), 1);
    LC_RC(STORE_OK, LC_OPS->fact_retract(x->s, w.user, ids[1]));
    store_fact r = lc_fact(x, w.user, ids[1]);
    assert_int_equal(r.status, STORE_FACT_RETRACTED);
    assert_non_null(r.valid_to);
    assert_null(r.superseded_by);
    assert_true(strcmp(r.updated_at, r.created_at) >= 0);
    LC_RC(STORE_CONFLICT, LC_OPS->fact_retract(x->s, w.user, ids[1])); /* twice */

    /* retracted: out of search, hash lookups, current lists and counts */
    assert_int_equal(lc_search(x, w.user, NULL, "kayak", LC_FACTS, &h), 0);
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_by_hash(x->s, w.user, "h-kayak", x->a, &out));
    store_fact *list = NULL;
    assert_int_equal(lc_facts(x, w.user, 0, &list), 1);
    assert_string_equal(list[0].id, bike2);
    assert_int_equal(lc_facts(x, w.user, 1, &list), 3);
    assert_int_equal(lc_counts(x).facts, 1);

    /* a retracted fact cannot be a target any more: the op becomes an ADD */
    const char *f3 = lc_new_flush(x, w.session, "three");
    const char *retired = "unset";
    const char *k2 = lc_apply1(x, w.user, f3, lc_op(STORE_FACT_UPDATE, ids[1], "Alice sold her kayak", "h-sold",
                                                    NULL), &retired);
    assert_null(retired);
    assert_null(lc_fact(x, w.user, k2).supersedes);
    assert_int_equal(lc_fact(x, w.user, ids[1]).status, STORE_FACT_RETRACTED);
    lc_valid(x);
}

/* --- retrieval units ------------------------------------------------------------------------------------------ */

static int lc_units_have(const store_unit *u, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(u[i].id, id) == 0)
            return 1;
    return 0;
}

static size_t lc_unembedded(lc *x, enum store_hit_type t, const char *model, store_unit **out)
{
    size_t n = 999;
    LC_RC(STORE_OK, LC_OPS->units_unembedded(x->s, t, model, 0, 100, x->a, out, &n));
    for (size_t i = 0; i < n; i++)
        assert_int_equal((*out)[i].type, t);
    for (size_t i = 1; i < n; i++)
        assert_true((*out)[i - 1].seq < (*out)[i].seq);
    return n;
}

static size_t lc_user_vectors(lc *x, const char *uid, store_vector **out)
{
    size_t n = 999;
    LC_RC(STORE_OK, LC_OPS->vectors_of_user(x->s, uid, "test-model", 2, x->a, out, &n));
    return n;
}

static int lc_vectors_have(const store_vector *v, size_t n, enum store_hit_type t, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].u.type == t && strcmp(v[i].u.id, id) == 0)
            return 1;
    return 0;
}

static void test_layers_units_and_vectors(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    lc_world bob = lc_world_new(x, "bob", "bobs-agent");
    const char *f = lc_new_flush(x, w.session, "round");
    store_episode_in eps[2] = {lc_ep("Alice baked bread", "[\"m1\"]"), lc_ep("Alice ate the bread", NULL)};
    const char **ep = lc_episodes(x, f, eps, 2);
    store_fact_op ops[2] = {lc_op(STORE_FACT_ADD, NULL, "Alice bakes", "h-bake", "[\"m1\"]"),
                            lc_op(STORE_FACT_ADD, NULL, "Alice likes rye", "h-rye", NULL)};
    const char **fa = lc_apply(x, w.user, f, ops, 2, NULL);
    const char *fb = lc_new_flush(x, bob.session, "bob");
    store_episode_in be[1] = {lc_ep("Bob fixed a bike", NULL)};
    const char *bob_ep = lc_episodes(x, fb, be, 1)[0];

    /* unembedded: every episode, every current fact, with what the vector index filters on */
    store_unit *u = NULL;
    assert_int_equal(lc_unembedded(x, STORE_HIT_EPISODE, "test-model", &u), 3);
    assert_true(lc_units_have(u, 3, ep[0]) && lc_units_have(u, 3, ep[1]) && lc_units_have(u, 3, bob_ep));
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(u[i].id, ep[0]) != 0)
            continue;
        assert_string_equal(u[i].user_id, w.user);
        assert_string_equal(u[i].session_id, w.session);
        assert_string_equal(u[i].agent_id, w.agent);
        assert_string_equal(u[i].text, "Alice baked bread");
        assert_non_null(u[i].version);
    }
    /* resumable by seq */
    size_t n = 9;
    store_unit *rest = NULL;
    LC_RC(STORE_OK, LC_OPS->units_unembedded(x->s, STORE_HIT_EPISODE, "test-model", u[0].seq, 100, x->a, &rest, &n));
    assert_int_equal(n, 2);
    assert_string_equal(rest[0].id, u[1].id);
    LC_RC(STORE_OK, LC_OPS->units_unembedded(x->s, STORE_HIT_EPISODE, "test-model", 0, 1, x->a, &rest, &n));
    assert_int_equal(n, 1);

    store_unit *fu = NULL;
    assert_int_equal(lc_unembedded(x, STORE_HIT_FACT, "test-model", &fu), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(fu[i].user_id, w.user);
        assert_string_equal(fu[i].session_id, w.session);
        assert_string_equal(fu[i].agent_id, w.agent);
        store_fact full = lc_fact(x, w.user, fu[i].id);
        assert_string_equal(fu[i].text, full.content);
        assert_string_equal(fu[i].version, full.updated_at);
    }

    /* units_get: the current state, request order, missing ids left out */
    store_unit *g = NULL;
    LC_RC(STORE_OK, LC_OPS->units_get(x->s, STORE_HIT_EPISODE, LC_STRS(ep[1], "missing", ep[0]), 3, x->a, &g, &n));
    assert_int_equal(n, 2);
    assert_string_equal(g[0].id, ep[1]);
    assert_string_equal(g[1].id, ep[0]);
    assert_int_equal(g[0].type, STORE_HIT_EPISODE);
    assert_string_equal(g[0].text, "Alice ate the bread");
    LC_RC(STORE_OK, LC_OPS->units_get(x->s, STORE_HIT_FACT, LC_STRS(fa[1], fa[0]), 2, x->a, &g, &n));
    assert_int_equal(n, 2);
    assert_string_equal(g[0].id, fa[1]);
    assert_int_equal(g[0].type, STORE_HIT_FACT);
    /* an episode id is not a fact */
    LC_RC(STORE_OK, LC_OPS->units_get(x->s, STORE_HIT_FACT, LC_STRS(ep[0]), 1, x->a, &g, &n));
    assert_int_equal(n, 0);

    /* vectors_put: stored while the version holds; a stale version is refused */
    store_unit put[4] = {u[0], u[1], fu[0], fu[1]};
    float vecs[8] = {1, 0, 0, 1, 0.5f, 0.5f, 0.25f, 0.75f};
    size_t stored = 99;
    store_unit stale = fu[0];
    stale.version = "2000-01-01T00:00:00.000000Z";
    LC_RC(STORE_OK, LC_OPS->vectors_put(x->s, &stale, 1, vecs, 2, "test-model", &stored));
    assert_int_equal(stored, 0);
    LC_RC(STORE_OK, LC_OPS->vectors_put(x->s, put, 4, vecs, 2, "test-model", &stored));
    assert_int_equal(stored, 4);
    assert_int_equal(lc_counts(x).vectors, 4);
    assert_int_equal(lc_unembedded(x, STORE_HIT_FACT, "test-model", &fu), 0);
    assert_int_equal(lc_unembedded(x, STORE_HIT_EPISODE, "test-model", &u), 1); /* bob's, or whichever was left */
    assert_int_equal(lc_unembedded(x, STORE_HIT_FACT, "other-model", &fu), 2);

    store_vector *v = NULL;
    size_t nv = lc_user_vectors(x, w.user, &v);
    size_t want_ep = 0, want_f = 0;
    for (size_t i = 0; i < 4; i++) {
        if (put[i].type == STORE_HIT_EPISODE && strcmp(put[i].user_id, w.user) == 0)
            want_ep++;
        if (put[i].type == STORE_HIT_FACT)
            want_f++;
    }
    assert_int_equal(nv, want_ep + want_f);
    for (size_t i = 0; i < nv; i++) {
        assert_true(v[i].u.type == STORE_HIT_EPISODE || v[i].u.type == STORE_HIT_FACT);
        assert_string_equal(v[i].u.user_id, w.user);
        assert_string_equal(v[i].u.session_id, w.session);
        assert_string_equal(v[i].u.agent_id, w.agent);
        assert_non_null(v[i].vec);
        for (size_t k = 0; k < 4; k++)
            if (strcmp(put[k].id, v[i].u.id) == 0) {
                assert_true(v[i].vec[0] == vecs[2 * k] && v[i].vec[1] == vecs[2 * k + 1]);
            }
    }
    assert_true(lc_vectors_have(v, nv, STORE_HIT_FACT, fa[0]));
    assert_true(lc_vectors_have(v, nv, STORE_HIT_FACT, fa[1]));
    store_vector *other = NULL;
    LC_RC(STORE_OK, LC_OPS->vectors_of_user(x->s, w.user, "test-model", 3, x->a, &other, &n));
    assert_int_equal(n, 0); /* another dimension */

    /* hits_get: full records with the layer fields, request order */
    store_hit *h = NULL;
    LC_RC(STORE_OK, LC_OPS->hits_get(x->s, STORE_HIT_EPISODE, LC_STRS(ep[1], "missing", ep[0]), 3, x->a, &h, &n));
    assert_int_equal(n, 2);
    assert_string_equal(h[0].id, ep[1]);
    assert_int_equal(h[0].type, STORE_HIT_EPISODE);
    assert_string_equal(h[1].content, "Alice baked bread");
    assert_string_equal(h[1].session_id, w.session);
    assert_non_null(h[1].session_name);
    assert_string_equal(h[1].agent_id, w.agent);
    assert_string_equal(h[1].occurred_at, "2026-03-01T10:00:00.000000Z");
    assert_string_equal(h[1].source_ids, "[\"m1\"]");
    assert_null(h[1].role);
    assert_non_null(h[1].created_at);
    LC_RC(STORE_OK, LC_OPS->hits_get(x->s, STORE_HIT_FACT, LC_STRS(fa[0]), 1, x->a, &h, &n));
    assert_int_equal(n, 1);
    assert_int_equal(h[0].type, STORE_HIT_FACT);
    assert_string_equal(h[0].content, "Alice bakes");
    assert_string_equal(h[0].fact_type, "preference");
    assert_string_equal(h[0].entities, "[\"coffee\"]");
    assert_string_equal(h[0].source_ids, "[\"m1\"]");
    assert_non_null(h[0].valid_from);
    assert_true(h[0].confidence > 0.74 && h[0].confidence < 0.76);
    assert_string_equal(h[0].session_id, w.session);
    assert_non_null(h[0].session_name);
    assert_string_equal(h[0].agent_id, w.agent);
    assert_null(h[0].role);
    assert_null(h[0].occurred_at);

    /* facts in keyword search carry the same fields */
    assert_int_equal(lc_search(x, w.user, NULL, "rye", LC_FACTS, &h), 1);
    assert_int_equal(h[0].type, STORE_HIT_FACT);
    assert_string_equal(h[0].id, fa[1]);
    assert_string_equal(h[0].fact_type, "preference");
    assert_string_equal(h[0].agent_id, w.agent);
    assert_int_equal(lc_search(x, w.user, lc_agent(x, "elsewhere"), "rye", LC_FACTS, &h), 0);

    /* reindex: every vector goes, episodes and facts are unembedded again */
    LC_RC(STORE_OK, LC_OPS->vectors_clear(x->s));
    assert_int_equal(lc_counts(x).vectors, 0);
    assert_int_equal(lc_user_vectors(x, w.user, &v), 0);
    assert_int_equal(lc_unembedded(x, STORE_HIT_EPISODE, "test-model", &u), 3);
    assert_int_equal(lc_unembedded(x, STORE_HIT_FACT, "test-model", &fu), 2);
    lc_valid(x);
}

static void test_layers_only_current_facts_are_units(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *f1 = lc_new_flush(x, w.session, "one");
    store_fact_op ops[3] = {lc_op(STORE_FACT_ADD, NULL, "Alice plays chess", "h-chess", NULL),
                            lc_op(STORE_FACT_ADD, NULL, "Alice plays go", "h-go", NULL),
                            lc_op(STORE_FACT_ADD, NULL, "Alice plays poker", "h-poker", NULL)};
    const char **ids = lc_apply(x, w.user, f1, ops, 3, NULL);
    store_unit *u = NULL;
    assert_int_equal(lc_unembedded(x, STORE_HIT_FACT, "test-model", &u), 3);
    float vecs[6] = {1, 0, 0, 1, 1, 1};
    size_t stored = 0;
    LC_RC(STORE_OK, LC_OPS->vectors_put(x->s, u, 3, vecs, 2, "test-model", &stored));
    assert_int_equal(stored, 3);

    /* retire two: superseded (chess), invalidated (go); poker retracted through the API */
    const char *f2 = lc_new_flush(x, w.session, "two");
    store_fact_op ch[2] = {lc_op(STORE_FACT_UPDATE, ids[0], "Alice plays blitz chess", "h-blitz", NULL),
                           lc_op(STORE_FACT_INVALIDATE, ids[1], NULL, NULL, NULL)};
    const char **ids2 = lc_apply(x, w.user, f2, ch, 2, NULL);
    LC_RC(STORE_OK, LC_OPS->fact_retract(x->s, w.user, ids[2]));

    store_hit *h = NULL;
    size_t n = lc_search(x, w.user, NULL, "plays", LC_FACTS, &h);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].id, ids2[0]);
    assert_int_equal(lc_search(x, w.user, NULL, "poker", LC_ALL_TYPES, &h), 0);

    assert_int_equal(lc_unembedded(x, STORE_HIT_FACT, "test-model", &u), 1);
    assert_string_equal(u[0].id, ids2[0]);
    LC_RC(STORE_OK, LC_OPS->units_get(x->s, STORE_HIT_FACT, LC_STRS(ids[0], ids[1], ids[2], ids2[0]), 4, x->a, &u, &n));
    assert_int_equal(n, 1);
    assert_string_equal(u[0].id, ids2[0]);
    LC_RC(STORE_OK, LC_OPS->hits_get(x->s, STORE_HIT_FACT, LC_STRS(ids[0], ids[1], ids[2], ids2[0]), 4, x->a, &h, &n));
    assert_int_equal(n, 1);
    assert_string_equal(h[0].id, ids2[0]);
    store_vector *v = NULL;
    assert_int_equal(lc_user_vectors(x, w.user, &v), 0); /* the retired had vectors; the current has none yet */

    /* a vector computed for a fact before it was retired is not stored */
    store_unit old = {.type = STORE_HIT_FACT, .id = ids[0], .user_id = w.user, .text = "Alice plays chess",
                      .version = lc_fact(x, w.user, ids[0]).updated_at};
    LC_RC(STORE_OK, LC_OPS->vectors_put(x->s, &old, 1, vecs, 2, "test-model", &stored));
    assert_int_equal(stored, 0);
    assert_int_equal(lc_user_vectors(x, w.user, &v), 0);
    assert_int_equal(lc_counts(x).facts, 1);
    lc_valid(x);
}

/* --- linking facts to episodes -------------------------------------------------------------------------------- */

static void test_layers_episode_linking(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");

    /* M2 before M1: episodes_add links the flush's unlinked facts */
    const char *f = lc_new_flush(x, w.session, "round");
    store_fact_op ops[4] = {lc_op(STORE_FACT_ADD, NULL, "shares m2", "h1", "[\"m2\"]"),
                            lc_op(STORE_FACT_ADD, NULL, "shares nothing", "h2", "[\"zz\"]"),
                            lc_op(STORE_FACT_ADD, NULL, "no sources", "h3", NULL),
                            lc_op(STORE_FACT_ADD, NULL, "shares m3 and m1", "h4", "[\"m3\",\"m1\"]")};
    const char **fid = lc_apply(x, w.user, f, ops, 4, NULL);
    for (int i = 0; i < 4; i++)
        assert_null(lc_fact(x, w.user, fid[i]).episode_id); /* no episode yet */
    store_episode_in eps[3] = {lc_ep("E1", "[\"m1\"]"), lc_ep("E2", "[\"m2\",\"m3\"]"), lc_ep("E3", "[\"m3\"]")};
    const char **eid = lc_episodes(x, f, eps, 3);
    assert_string_equal(lc_fact(x, w.user, fid[0]).episode_id, eid[1]);
    assert_string_equal(lc_fact(x, w.user, fid[1]).episode_id, eid[0]); /* the flush's first episode */
    assert_string_equal(lc_fact(x, w.user, fid[2]).episode_id, eid[0]);
    assert_string_equal(lc_fact(x, w.user, fid[3]).episode_id, eid[0]); /* first episode sharing one: E1 (m1) */

    /* M1 before M2: facts_apply links at once */
    const char *g = lc_new_flush(x, w.session, "round two");
    store_episode_in eps2[2] = {lc_ep("F1", "[\"n1\"]"), lc_ep("F2", "[\"n2\"]")};
    const char **eid2 = lc_episodes(x, g, eps2, 2);
    store_fact_op ops2[2] = {lc_op(STORE_FACT_ADD, NULL, "from n2", "h5", "[\"n2\"]"),
                             lc_op(STORE_FACT_ADD, NULL, "from elsewhere", "h6", "[\"m2\"]")};
    const char **fid2 = lc_apply(x, w.user, g, ops2, 2, NULL);
    assert_string_equal(lc_fact(x, w.user, fid2[0]).episode_id, eid2[1]);
    assert_string_equal(lc_fact(x, w.user, fid2[1]).episode_id, eid2[0]); /* m2 is in another flush's episode */

    /* a flush without episodes leaves its facts unlinked */
    const char *h = lc_new_flush(x, w.session, "round three");
    lc_episodes(x, h, NULL, 0);
    const char *lone = lc_apply1(x, w.user, h, lc_op(STORE_FACT_ADD, NULL, "lonely", "h7", "[\"m1\"]"), NULL);
    assert_null(lc_fact(x, w.user, lone).episode_id);

    /* source lists that are not JSON arrays only fail to match */
    const char *k = lc_new_flush(x, w.session, "round four");
    const char *odd = lc_apply1(x, w.user, k, lc_op(STORE_FACT_ADD, NULL, "odd", "h8", "not json"), NULL);
    store_episode_in eps3[2] = {lc_ep("G1", "{\"a\":1}"), lc_ep("G2", "[\"not json\"]")};
    const char **eid3 = lc_episodes(x, k, eps3, 2);
    assert_string_equal(lc_fact(x, w.user, odd).episode_id, eid3[0]);
    lc_valid(x);
}

/* --- counts, cascades, admin ------------------------------------------------------------------------------------- */

static void test_layers_counts(void **state)
{
    lc c = lc_begin(state), *x = &c;
    store_counts z = lc_counts(x);
    assert_int_equal(z.episodes + z.facts + z.flushes_pending, 0);
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *f1 = lc_new_flush(x, w.session, "one");
    const char *f2 = lc_new_flush(x, w.session, "two");
    assert_int_equal(lc_counts(x).flushes_pending, 2);
    store_episode_in eps[2] = {lc_ep("e1", NULL), lc_ep("e2", NULL)};
    lc_episodes(x, f1, eps, 2);
    assert_int_equal(lc_counts(x).flushes_pending, 2);
    store_fact_op ops[2] = {lc_op(STORE_FACT_ADD, NULL, "a", "ha", NULL), lc_op(STORE_FACT_ADD, NULL, "b", "hb", NULL)};
    const char **ids = lc_apply(x, w.user, f1, ops, 2, NULL);
    store_counts k = lc_counts(x);
    assert_int_equal(k.flushes_pending, 1);
    assert_int_equal(k.episodes, 2);
    assert_int_equal(k.facts, 2);
    lc_apply1(x, w.user, f2, lc_op(STORE_FACT_UPDATE, ids[0], "a2", "ha2", NULL), NULL);
    k = lc_counts(x);
    assert_int_equal(k.facts, 2); /* current only */
    assert_int_equal(k.flushes_pending, 1);
    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, f2, 1, NULL, "gave up", 1));
    assert_int_equal(lc_counts(x).flushes_pending, 0);
    assert_true(lc_counts(x).schema_version >= 2);
}

/* Builds, for one user, a session with a flush, episodes and facts; returns the flush. */
static const char *lc_populate(lc *x, const char *uid, const char *sid, const char *word, const char ***facts,
                               const char ***episodes)
{
    store_added ad = LC_ROUND(x, sid, 1, word, "ok");
    store_episode_in eps[1] = {lc_ep(arena_sprintf(x->a, "episode about %s", word), NULL)};
    *episodes = lc_episodes(x, ad.flush_id, eps, 1);
    store_fact_op ops[2] = {lc_op(STORE_FACT_ADD, NULL, arena_sprintf(x->a, "fact about %s", word),
                                  arena_sprintf(x->a, "h-%s-1", word), NULL),
                            lc_op(STORE_FACT_ADD, NULL, arena_sprintf(x->a, "second fact about %s", word),
                                  arena_sprintf(x->a, "h-%s-2", word), NULL)};
    *facts = lc_apply(x, uid, ad.flush_id, ops, 2, NULL);
    return ad.flush_id;
}

static void test_layers_cascade_session(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *s2 = lc_session(x, w.user, w.agent, "second");
    const char *s3 = lc_session(x, w.user, w.agent, "third");
    const char **f1, **e1, **f2, **e2, **f3, **e3;
    const char *fl1 = lc_populate(x, w.user, w.session, "apples", &f1, &e1);
    const char *fl2 = lc_populate(x, w.user, s2, "pears", &f2, &e2);
    lc_populate(x, w.user, s3, "plums", &f3, &e3);
    /* lineage across sessions: s2 supersedes a fact of s1; s3 supersedes a fact of s2 */
    const char *n2 = lc_new_flush(x, s2, "update");
    const char *up2 = lc_apply1(x, w.user, n2, lc_op(STORE_FACT_UPDATE, f1[0], "apples, green ones", "h-g", NULL),
                                NULL);
    const char *n3 = lc_new_flush(x, s3, "update");
    const char *up3 = lc_apply1(x, w.user, n3, lc_op(STORE_FACT_UPDATE, f2[0], "pears, ripe ones", "h-r", NULL),
                                NULL);
    store_unit *u = NULL;
    size_t nu = lc_unembedded(x, STORE_HIT_EPISODE, "test-model", &u);
    float vecs[8] = {0};
    size_t stored = 0;
    LC_RC(STORE_OK, LC_OPS->vectors_put(x->s, u, nu, vecs, 2, "test-model", &stored));

    /* delete session 1: its flush, episodes and facts go; up2 (in s2) no longer names what it superseded */
    LC_RC(STORE_OK, LC_OPS->session_delete(x->s, w.session));
    store_flush gone;
    LC_RC(STORE_NOT_FOUND, LC_OPS->flush_get(x->s, fl1, x->a, &gone));
    store_fact ff;
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_get(x->s, w.user, f1[0], x->a, &ff));
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_get(x->s, w.user, f1[1], x->a, &ff));
    assert_null(lc_fact(x, w.user, up2).supersedes);
    assert_int_equal(lc_fact(x, w.user, up2).status, STORE_FACT_CURRENT);
    store_episode *e = NULL;
    assert_int_equal(lc_episode_list(x, w.user, w.session, STORE_SORT_TIME, 0, 10, &e), 0);
    assert_int_equal(lc_episode_list(x, w.user, NULL, STORE_SORT_TIME, 0, 10, &e), 2);
    store_hit *h = NULL;
    assert_int_equal(lc_search(x, w.user, NULL, "apples", LC_ALL_TYPES, &h), 1); /* up2 only */
    assert_string_equal(h[0].id, up2);
    LC_RC(STORE_NOT_FOUND, LC_OPS->episodes_add(x->s, fl1, NULL, 0, x->a, &(const char **){NULL}));
    LC_RC(STORE_NOT_FOUND, LC_OPS->facts_apply(x->s, w.user, fl1, NULL, 0, x->a, &(const char **){NULL},
                                               &(const char **){NULL}));
    size_t nm = 9;
    store_message *m = NULL;
    LC_RC(STORE_NOT_FOUND, LC_OPS->flush_messages(x->s, fl1, x->a, &m, &nm));
    store_vector *v = NULL;
    assert_int_equal(lc_user_vectors(x, w.user, &v), 2); /* s2's and s3's episodes */

    /* delete session 3: f2[0], superseded by up3 (in s3), no longer names its successor */
    LC_RC(STORE_OK, LC_OPS->session_delete(x->s, s3));
    store_fact old = lc_fact(x, w.user, f2[0]);
    assert_null(old.superseded_by);
    assert_int_equal(old.status, STORE_FACT_SUPERSEDED);
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_get(x->s, w.user, up3, x->a, &ff));
    assert_int_equal(lc_user_vectors(x, w.user, &v), 1);

    /* what is left: s2's flushes, episode and facts */
    assert_string_equal(lc_flush(x, fl2).session_id, s2);
    store_counts k = lc_counts(x);
    assert_int_equal(k.episodes, 1);
    assert_int_equal(k.facts, 2); /* f2[1] and up2 */
    store_fact *list = NULL;
    assert_int_equal(lc_facts(x, w.user, 1, &list), 3);
    lc_valid(x);
}

static void test_layers_cascade_agent_and_user(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *coach = lc_agent(x, "coach");
    const char *s2 = lc_session(x, w.user, coach, "training");
    lc_world bob = lc_world_new(x, "bob", "bobs-agent");
    const char *bs2 = lc_session(x, bob.user, coach, "bob-training");
    const char **fa, **ea, **fc, **ec, **fb, **eb, **fbc, **ebc;
    lc_populate(x, w.user, w.session, "apples", &fa, &ea);
    const char *flc = lc_populate(x, w.user, s2, "squats", &fc, &ec);
    const char *flb = lc_populate(x, bob.user, bob.session, "bananas", &fb, &eb);
    lc_populate(x, bob.user, bs2, "lunges", &fbc, &ebc);
    const char *up = lc_apply1(x, w.user, NULL, lc_op(STORE_FACT_UPDATE, fc[0], "squats, deep ones", "h-d", NULL),
                               NULL); /* no flush: survives the agent */
    assert_int_equal(lc_counts(x).episodes, 4);
    assert_int_equal(lc_counts(x).facts, 8);

    /* deleting the coach takes both users' coach sessions along, with their layers */
    LC_RC(STORE_OK, LC_OPS->entity_delete(x->s, STORE_AGENTS, coach));
    store_flush gone;
    LC_RC(STORE_NOT_FOUND, LC_OPS->flush_get(x->s, flc, x->a, &gone));
    store_fact ff;
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_get(x->s, w.user, fc[0], x->a, &ff));
    LC_RC(STORE_NOT_FOUND, LC_OPS->fact_get(x->s, bob.user, fbc[1], x->a, &ff));
    assert_null(lc_fact(x, w.user, up).supersedes);
    store_hit *h = NULL;
    assert_int_equal(lc_search(x, w.user, NULL, "squats", LC_EPISODES, &h), 0);
    assert_int_equal(lc_search(x, bob.user, NULL, "lunges", LC_ALL_TYPES, &h), 0);
    store_counts k = lc_counts(x);
    assert_int_equal(k.episodes, 2);
    assert_int_equal(k.facts, 5); /* apples x2, bananas x2, up */
    lc_valid(x);

    /* deleting alice: everything of hers; bob's untouched */
    LC_RC(STORE_OK, LC_OPS->entity_delete(x->s, STORE_USERS, w.user));
    store_fact *list = NULL;
    assert_int_equal(lc_facts(x, w.user, 1, &list), 0);
    store_episode *e = NULL;
    assert_int_equal(lc_episode_list(x, w.user, NULL, STORE_SORT_TIME, 0, 10, &e), 0);
    assert_int_equal(lc_search(x, w.user, NULL, "apples", LC_ALL_TYPES, &h), 0);
    k = lc_counts(x);
    assert_int_equal(k.episodes, 1);
    assert_int_equal(k.facts, 2);
    assert_string_equal(lc_flush(x, flb).user_id, bob.user);
    assert_int_equal(lc_facts(x, bob.user, 1, &list), 2);
    assert_int_equal(lc_search(x, bob.user, NULL, "bananas", LC_EPISODES | LC_FACTS, &h), 3);
    store_flush *p = NULL;
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &p), 0);
    lc_valid(x);
}

static void test_layers_messages_delete_keeps_layers(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    store_added ad = LC_ROUND(x, w.session, 1, "I adopted a parrot", "What's its name?");
    const char *src = arena_sprintf(x->a, "[\"%s\"]", ad.message_ids[0]);
    store_episode_in eps[1] = {lc_ep("Alice adopted a parrot", src)};
    const char *ep = lc_episodes(x, ad.flush_id, eps, 1)[0];
    const char *fact = lc_apply1(x, w.user, ad.flush_id, lc_op(STORE_FACT_ADD, NULL, "Alice has a parrot", "h-p", src),
                                 NULL);
    const char **missing = NULL;
    size_t nmiss = 0;
    LC_RC(STORE_OK, LC_OPS->messages_delete(x->s, w.session, ad.message_ids, 2, x->a, &missing, &nmiss));
    /* the sources are gone, what was learned from them stays (source_ids name deleted messages) */
    store_fact f = lc_fact(x, w.user, fact);
    assert_string_equal(f.source_ids, src);
    assert_string_equal(f.episode_id, ep);
    store_hit *h = NULL;
    assert_int_equal(lc_search(x, w.user, NULL, "parrot", LC_ALL_TYPES, &h), 2);
    store_message *m = NULL;
    assert_int_equal(lc_flush_messages(x, ad.flush_id, &m), 0);
    assert_int_equal(lc_flush(x, ad.flush_id).state[1], STORE_LAYER_DONE);
    lc_valid(x);
}

static void test_layers_reset_and_recreate(void **state)
{
    lc c = lc_begin(state), *x = &c;
    for (int round = 0; round < 2; round++) {
        lc_world w = lc_world_new(x, "alice", "helper");
        const char **f, **e;
        lc_populate(x, w.user, w.session, "apples", &f, &e);
        lc_new_flush(x, w.session, "pending");
        store_unit *u = NULL;
        size_t nu = lc_unembedded(x, STORE_HIT_FACT, "test-model", &u);
        float vecs[4] = {1, 2, 3, 4};
        size_t stored = 0;
        LC_RC(STORE_OK, LC_OPS->vectors_put(x->s, u, nu, vecs, 2, "test-model", &stored));
        assert_int_equal(stored, 2);
        store_counts k = lc_counts(x);
        assert_true(k.episodes == 1 && k.facts == 2 && k.flushes_pending == 1 && k.vectors == 2);

        LC_RC(STORE_OK, round == 0 ? LC_OPS->reset(x->s) : LC_OPS->recreate(x->s));
        k = lc_counts(x);
        assert_int_equal(k.users + k.sessions + k.rounds + k.messages + k.vectors, 0);
        assert_int_equal(k.episodes + k.facts + k.flushes_pending, 0);
        store_hit *h = NULL;
        assert_int_equal(lc_search(x, w.user, NULL, "apples", LC_ALL_TYPES, &h), 0);
        lc_valid(x);

        /* the layers work on the emptied store */
        lc_world w2 = lc_world_new(x, "carol", "helper2");
        const char *fl = lc_new_flush(x, w2.session, "fresh");
        store_episode_in eps[1] = {lc_ep("fresh episode", NULL)};
        lc_episodes(x, fl, eps, 1);
        lc_apply1(x, w2.user, fl, lc_op(STORE_FACT_ADD, NULL, "fresh fact", "h-fresh", NULL), NULL);
        assert_int_equal(lc_search(x, w2.user, NULL, "fresh", LC_EPISODES | LC_FACTS, &h), 2);
        LC_RC(STORE_OK, LC_OPS->reset(x->s));
    }
}

static void test_layers_validate_good_data(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_valid(x);
    lc_world w = lc_world_new(x, "alice", "helper");
    const char **f, **e;
    const char *fl = lc_populate(x, w.user, w.session, "apples", &f, &e);
    lc_valid(x);
    const char *n = lc_new_flush(x, w.session, "more");
    store_fact_op ops[3] = {lc_op(STORE_FACT_UPDATE, f[0], "apples again", "h-a", NULL),
                            lc_op(STORE_FACT_INVALIDATE, f[1], NULL, NULL, NULL),
                            lc_op(STORE_FACT_ADD, NULL, "more apples", "h-m", NULL)};
    const char **ids = lc_apply(x, w.user, n, ops, 3, NULL);
    LC_RC(STORE_OK, LC_OPS->fact_retract(x->s, w.user, ids[2]));
    LC_RC(STORE_OK, LC_OPS->flush_failed(x->s, n, 1, lc_time(x, 60), "later", 0));
    lc_valid(x);
    (void)fl;
    x->s = layers_reopen(state, 1); /* what was stored survives a reopen */
    lc_valid(x);
    assert_int_equal(lc_fact(x, w.user, ids[0]).status, STORE_FACT_CURRENT);
    assert_int_equal(lc_fact(x, w.user, f[1]).status, STORE_FACT_INVALIDATED);
    assert_int_equal(lc_fact(x, w.user, ids[2]).status, STORE_FACT_RETRACTED);
    assert_int_equal(lc_flush(x, n).attempts[1], 1);
}

/* --- concurrency ------------------------------------------------------------------------------------------------ */

typedef struct lc_racer {
    store *s;
    const char *user, *flush;
    int layer;
    int rc, stored;
} lc_racer;

static void *lc_race(void *p)
{
    lc_racer *r = p;
    arena a;
    arena_init(&a);
    if (r->layer == 1) {
        store_episode_in eps[2] = {lc_ep("raced episode one", NULL), lc_ep("raced episode two", NULL)};
        const char **ids = NULL;
        r->rc = r->s->ops->episodes_add(r->s, r->flush, eps, 2, &a, &ids);
        r->stored = ids != NULL;
    } else {
        store_fact_op op = lc_op(STORE_FACT_ADD, NULL, "raced fact", "h-race", NULL);
        const char **ids = NULL, **retired = NULL;
        r->rc = r->s->ops->facts_apply(r->s, r->user, r->flush, &op, 1, &a, &ids, &retired);
        r->stored = ids != NULL;
    }
    arena_free(&a);
    return NULL;
}

/* Several workers running the same flush's layers at once: each layer's results are stored exactly once. */
static void test_layers_concurrent_layers_store_once(void **state)
{
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *f = lc_new_flush(x, w.session, "raced round");
    enum { N = 8 };
    lc_racer r[N];
    for (int i = 0; i < N; i++)
        r[i] = (lc_racer){.s = x->s, .user = w.user, .flush = f, .layer = 1 + i % 2, .rc = -1};
    tu_run_threads(N, lc_race, r, sizeof r[0]);
    int stored[3] = {0, 0, 0};
    for (int i = 0; i < N; i++) {
        LC_RC(STORE_OK, r[i].rc);
        stored[r[i].layer] += r[i].stored;
    }
    assert_int_equal(stored[1], 1);
    assert_int_equal(stored[2], 1);
    store_counts k = lc_counts(x);
    assert_int_equal(k.episodes, 2);
    assert_int_equal(k.facts, 1);
    assert_int_equal(k.flushes_pending, 0);
    store_fact *list = NULL;
    assert_int_equal(lc_facts(x, w.user, 0, &list), 1);
    assert_non_null(list[0].episode_id); /* linked whichever layer finished first */
    lc_valid(x);
}

#define STORE_LAYERS_CASES(setup, teardown)                                                                    \
    cmocka_unit_test_setup_teardown(test_layers_flush_on_consolidate_new, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(test_layers_flush_per_session_of_consolidate_list, setup, teardown),   \
        cmocka_unit_test_setup_teardown(test_layers_rounds_consolidate_records_flushes, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_layers_no_flush_when_off, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(test_layers_flushes_pending, setup, teardown),                         \
        cmocka_unit_test_setup_teardown(test_layers_flush_failed, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(test_layers_episodes_add, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(test_layers_episodes_list, setup, teardown),                           \
        cmocka_unit_test_setup_teardown(test_layers_episodes_keyword_search, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_layers_facts_apply_add_update_invalidate, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_layers_facts_apply_bad_targets, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_layers_facts_apply_done_and_missing_flush, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_layers_fact_by_hash_and_lists, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_layers_fact_get_and_retract, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(test_layers_units_and_vectors, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(test_layers_only_current_facts_are_units, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_layers_episode_linking, setup, teardown),                         \
        cmocka_unit_test_setup_teardown(test_layers_counts, setup, teardown),                                  \
        cmocka_unit_test_setup_teardown(test_layers_cascade_session, setup, teardown),                         \
        cmocka_unit_test_setup_teardown(test_layers_cascade_agent_and_user, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_layers_messages_delete_keeps_layers, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_layers_reset_and_recreate, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_layers_validate_good_data, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_layers_concurrent_layers_store_once, setup, teardown)

#endif
