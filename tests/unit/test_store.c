/* store (src/store/store.h) through the SQLite backend: every operation of store_ops on a fresh data
 * directory per test — conflicts, the NO_USER/NO_AGENT order, generated session names, cascades (FTS rows
 * included), messages with their sort/order/buffer filters and all-or-nothing id lists, knowledge, API
 * keys, keyword search, rounds, chunks, the admin operations, 8 concurrent writers on one session (the
 * group-commit writer), and reopening. */
#include <sqlite3.h>

#include "testutil.h"

#include "http/json.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/timeutil.h"

typedef struct fx {
    char *dir;
    ids_gen ids;
    store *st;
    arena a;
} fx;

static store *open_store(fx *f)
{
    store_config cfg = {.kind = "sqlite", .data_dir = f->dir, .read_conns = 4, .ids = &f->ids};
    char err[512] = "";
    store *s = store_open(&cfg, err, sizeof err);
    if (!s)
        fail_msg("store_open(%s): %s", f->dir, err);
    return s;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_mkdtemp();
    ids_gen_init(&f->ids);
    arena_init(&f->a);
    f->st = open_store(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    store_close(f->st);
    arena_free(&f->a);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

#define OPS (f->st->ops)

#define RC(want, call)                                                                                        \
    do {                                                                                                      \
        int rc_ = (call);                                                                                     \
        if (rc_ != (want))                                                                                    \
            fail_msg("%s\n  gave '%s', want '%s'", #call, store_rc_name(rc_), store_rc_name(want));          \
    } while (0)

static const char *mk_entity(fx *f, enum store_kind k, const char *name)
{
    store_entity e;
    RC(STORE_OK, OPS->entity_create(f->st, k, name, NULL, &f->a, &e));
    return e.id;
}
#define mk_user(f, name) mk_entity(f, STORE_USERS, name)
#define mk_agent(f, name) mk_entity(f, STORE_AGENTS, name)

static const char *mk_session(fx *f, const char *uid, const char *aid, const char *name)
{
    store_session s;
    RC(STORE_OK, OPS->session_create(f->st, uid, aid, name, &f->a, &s));
    return s.id;
}

/* Adds one round of the given contents (roles alternate user/assistant). */
static store_added add_round(fx *f, const char *sid, const char *const *contents, size_t n, int consolidate_new,
                             const char *const *consolidate, size_t n_cons)
{
    store_msg_in *m = arena_alloc(&f->a, (n ? n : 1) * sizeof *m);
    for (size_t i = 0; i < n; i++) {
        m[i].role = i % 2 ? "assistant" : "user";
        m[i].content = contents[i];
    }
    store_added out;
    memset(&out, 0, sizeof out);
    RC(STORE_OK, OPS->messages_add(f->st, sid, m, n, (int)(3 * n), consolidate_new, consolidate, n_cons, &f->a, &out));
    assert_int_equal(out.n, n);
    return out;
}

#define STRS(...) ((const char *const[]){__VA_ARGS__})
#define NSTRS(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
#define ADD(f, sid, cn, ...) add_round(f, sid, STRS(__VA_ARGS__), NSTRS(__VA_ARGS__), cn, NULL, 0)

/* Runs SQL on the database file through a connection of the test's own (for corruption and vectors). */
static void raw_sql(fx *f, const char *sql)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/memfuse.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        print_error("%s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        fail();
    }
    sqlite3_close(db);
}

static void assert_valid(fx *f)
{
    char report[1024];
    int rc = OPS->validate(f->st, report, sizeof report);
    if (rc != STORE_OK)
        fail_msg("validate: %s (%s)", store_rc_name(rc), report);
}

static store_counts counts(fx *f)
{
    store_counts c;
    memset(&c, 0, sizeof c);
    RC(STORE_OK, OPS->counts(f->st, &c));
    return c;
}

static size_t list_messages(fx *f, const char *sid, int limit, enum store_sort sort, int desc,
                            enum store_filter buffer, store_message **out)
{
    store_page p = {.limit = limit, .sort = sort, .desc = desc, .buffer = buffer};
    size_t n = 0;
    RC(STORE_OK, OPS->messages_list(f->st, sid, &p, &f->a, out, &n));
    return n;
}

static size_t search(fx *f, const char *uid, const char *aid, const char *const *terms, size_t nt, int msgs,
                     int know, int limit, store_hit **hits)
{
    store_search q = {.user_id = uid, .agent_id = aid, .terms = terms, .n_terms = nt, .include_messages = msgs,
                      .include_knowledge = know, .limit = limit};
    size_t n = 99;
    RC(STORE_OK, OPS->search_keyword(f->st, &q, &f->a, hits, &n));
    return n;
}

/* --- open, describe, empty state ------------------------------------------------------------------------ */

static void test_open_and_empty(void **state)
{
    fx *f = *state;
    const char *d = OPS->describe(f->st);
    char want[1100];
    snprintf(want, sizeof want, "sqlite:%s/memfuse.db", f->dir);
    assert_string_equal(d, want);
    store_counts c = counts(f);
    assert_true(c.schema_version >= 1);
    assert_int_equal(c.users + c.agents + c.sessions + c.rounds + c.messages + c.knowledge + c.api_keys + c.vectors, 0);
    assert_valid(f);

    store_entity *list = NULL;
    size_t n = 9;
    RC(STORE_OK, OPS->entity_list(f->st, STORE_USERS, &f->a, &list, &n));
    assert_int_equal(n, 0);

    /* other kinds and bad directories are refused with a reason */
    char err[256] = "";
    store_config cfg = {.kind = "postgres", .ids = &f->ids};
    assert_null(store_open(&cfg, err, sizeof err));
    assert_true(strlen(err) > 0);
    err[0] = '\0';
    cfg.kind = "mysql";
    assert_null(store_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "mysql"));
    char path[1100];
    snprintf(path, sizeof path, "%s/memfuse.db/sub", f->dir); /* under a regular file */
    cfg.kind = "sqlite";
    cfg.data_dir = path;
    err[0] = '\0';
    assert_null(store_open(&cfg, err, sizeof err));
    assert_true(strlen(err) > 0);

    assert_string_equal(store_rc_name(STORE_OK), "ok");
    assert_string_equal(store_rc_name(STORE_CONFLICT), "conflict");
    assert_string_equal(store_rc_name(STORE_ERROR), "error");
    assert_string_equal(store_rc_name(-1), "unknown");
    assert_string_equal(store_rc_name(STORE_ERROR + 1), "unknown");
}

static void test_newer_schema_refused(void **state)
{
    fx *f = *state;
    int version = counts(f).schema_version;
    store_close(f->st);
    raw_sql(f, "PRAGMA user_version = 999");
    store_config cfg = {.kind = "sqlite", .data_dir = f->dir, .read_conns = 2, .ids = &f->ids};
    char err[256] = "";
    f->st = store_open(&cfg, err, sizeof err);
    assert_null(f->st);
    assert_non_null(strstr(err, "newer"));
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version);
    raw_sql(f, sql);
    f->st = open_store(f);
    assert_valid(f);
}

/* --- users and agents ----------------------------------------------------------------------------------- */

static void entity_ops(fx *f, enum store_kind k)
{
    store_entity e, g;
    RC(STORE_OK, OPS->entity_create(f->st, k, "alice", "first", &f->a, &e));
    assert_true(ids_is_uuid(e.id));
    assert_string_equal(e.name, "alice");
    assert_string_equal(e.description, "first");
    assert_int_equal(strlen(e.created_at), TIME_ISO_LEN);
    assert_string_equal(e.created_at, e.updated_at);

    RC(STORE_OK, OPS->entity_get(f->st, k, e.id, &f->a, &g));
    assert_string_equal(g.id, e.id);
    assert_string_equal(g.name, "alice");
    assert_string_equal(g.description, "first");
    assert_string_equal(g.created_at, e.created_at);
    RC(STORE_OK, OPS->entity_get_by_name(f->st, k, "alice", &f->a, &g));
    assert_string_equal(g.id, e.id);
    RC(STORE_NOT_FOUND, OPS->entity_get(f->st, k, "no-such-id", &f->a, &g));
    RC(STORE_NOT_FOUND, OPS->entity_get_by_name(f->st, k, "Alice", &f->a, &g)); /* names are case-sensitive */

    /* names are unique */
    RC(STORE_CONFLICT, OPS->entity_create(f->st, k, "alice", NULL, &f->a, &g));
    store_entity b;
    RC(STORE_OK, OPS->entity_create(f->st, k, "bob", NULL, &f->a, &b));
    assert_null(b.description);
    RC(STORE_OK, OPS->entity_get(f->st, k, b.id, &f->a, &g));
    assert_null(g.description);

    store_entity *list = NULL;
    size_t n = 0;
    RC(STORE_OK, OPS->entity_list(f->st, k, &f->a, &list, &n));
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "alice"); /* creation order */
    assert_string_equal(list[1].name, "bob");

    /* update: NULL keeps, updated_at moves forward only */
    store_entity u;
    RC(STORE_OK, OPS->entity_update(f->st, k, e.id, "alice2", NULL, &f->a, &u));
    assert_string_equal(u.name, "alice2");
    assert_string_equal(u.description, "first");
    assert_string_equal(u.created_at, e.created_at);
    assert_true(strcmp(u.updated_at, e.updated_at) >= 0);
    RC(STORE_OK, OPS->entity_update(f->st, k, e.id, NULL, "second", &f->a, &u));
    assert_string_equal(u.name, "alice2");
    assert_string_equal(u.description, "second");
    const char *prev = u.updated_at;
    RC(STORE_OK, OPS->entity_update(f->st, k, e.id, NULL, NULL, &f->a, &u));
    assert_true(strcmp(u.updated_at, prev) >= 0);
    RC(STORE_CONFLICT, OPS->entity_update(f->st, k, e.id, "bob", NULL, &f->a, &u));
    RC(STORE_OK, OPS->entity_get(f->st, k, e.id, &f->a, &g));
    assert_string_equal(g.name, "alice2"); /* unchanged by the failed update */
    RC(STORE_NOT_FOUND, OPS->entity_update(f->st, k, "no-such-id", "x", NULL, &f->a, &u));
    /* the freed name can be taken again */
    RC(STORE_OK, OPS->entity_create(f->st, k, "alice", NULL, &f->a, &g));

    RC(STORE_OK, OPS->entity_delete(f->st, k, b.id));
    RC(STORE_NOT_FOUND, OPS->entity_get(f->st, k, b.id, &f->a, &g));
    RC(STORE_NOT_FOUND, OPS->entity_delete(f->st, k, b.id));
}

static void test_users(void **state) { entity_ops(*state, STORE_USERS); }
static void test_agents(void **state) { entity_ops(*state, STORE_AGENTS); }

static void test_user_and_agent_names_independent(void **state)
{
    fx *f = *state;
    mk_user(f, "same");
    mk_agent(f, "same");
    store_counts c = counts(f);
    assert_int_equal(c.users, 1);
    assert_int_equal(c.agents, 1);
}

/* --- sessions ------------------------------------------------------------------------------------------- */

static void test_sessions(void **state)
{
    fx *f = *state;
    const char *u1 = mk_user(f, "ann"), *u2 = mk_user(f, "ben");
    const char *a1 = mk_agent(f, "helper"), *a2 = mk_agent(f, "coder");
    store_session s, g;
    RC(STORE_OK, OPS->session_create(f->st, u1, a1, "chat", &f->a, &s));
    assert_true(ids_is_uuid(s.id));
    assert_string_equal(s.user_id, u1);
    assert_string_equal(s.agent_id, a1);
    assert_string_equal(s.name, "chat");
    assert_string_equal(s.created_at, s.updated_at);

    /* the name is unique per user, not globally */
    RC(STORE_CONFLICT, OPS->session_create(f->st, u1, a2, "chat", &f->a, &g));
    RC(STORE_OK, OPS->session_create(f->st, u2, a1, "chat", &f->a, &g));
    const char *s_u2 = g.id;

    /* the user is checked first, then the agent */
    RC(STORE_NO_USER, OPS->session_create(f->st, "nope", "nope", "x", &f->a, &g));
    RC(STORE_NO_USER, OPS->session_create(f->st, "nope", a1, "x", &f->a, &g));
    RC(STORE_NO_AGENT, OPS->session_create(f->st, u1, "nope", "x", &f->a, &g));
    RC(STORE_NO_AGENT, OPS->session_create(f->st, u1, "nope", "chat", &f->a, &g)); /* before the conflict */

    /* generated name: "<user>-<agent>-<8 hex>" */
    store_session gen1, gen2;
    RC(STORE_OK, OPS->session_create(f->st, u1, a2, NULL, &f->a, &gen1));
    RC(STORE_OK, OPS->session_create(f->st, u1, a2, NULL, &f->a, &gen2));
    assert_int_equal(strlen(gen1.name), strlen("ann-coder-") + 8);
    assert_memory_equal(gen1.name, "ann-coder-", 10);
    for (int i = 10; i < 18; i++)
        assert_non_null(strchr("0123456789abcdef", gen1.name[i]));
    assert_string_not_equal(gen1.name, gen2.name);
    RC(STORE_OK, OPS->session_get(f->st, gen1.id, &f->a, &g));
    assert_string_equal(g.name, gen1.name);

    arena a;
    arena_init(&a);
    const char *dn = store_session_default_name(&a, "u", "a");
    assert_int_equal(strlen(dn), 12);
    assert_memory_equal(dn, "u-a-", 4);
    /* two names of the 256-byte maximum still give a name within 256 bytes, cut at UTF-8 boundaries */
    char longu[257], longa[257];
    for (int i = 0; i < 128; i++)
        memcpy(longu + 2 * i, "\xC3\xA9", 2);
    longu[256] = '\0';
    memset(longa, 'q', 256);
    longa[256] = '\0';
    dn = store_session_default_name(&a, longu, longa);
    assert_non_null(dn);
    assert_true(strlen(dn) <= 256);
    assert_true(json_utf8_valid(dn, strlen(dn)));
    assert_memory_equal(dn, longu, 100);
    assert_non_null(strstr(dn, "-qqqq"));
    arena_free(&a);

    /* get, by name (optionally within a user) */
    RC(STORE_OK, OPS->session_get(f->st, s.id, &f->a, &g));
    assert_string_equal(g.name, "chat");
    assert_string_equal(g.user_id, u1);
    RC(STORE_NOT_FOUND, OPS->session_get(f->st, "nope", &f->a, &g));
    RC(STORE_OK, OPS->session_get_by_name(f->st, "chat", u2, &f->a, &g));
    assert_string_equal(g.id, s_u2);
    RC(STORE_OK, OPS->session_get_by_name(f->st, "chat", u1, &f->a, &g));
    assert_string_equal(g.id, s.id);
    RC(STORE_OK, OPS->session_get_by_name(f->st, "chat", NULL, &f->a, &g));
    assert_string_equal(g.id, s.id); /* the oldest */
    RC(STORE_NOT_FOUND, OPS->session_get_by_name(f->st, gen1.name, u2, &f->a, &g));

    /* lists with filters */
    store_session *l = NULL;
    size_t n = 0;
    RC(STORE_OK, OPS->session_list(f->st, NULL, NULL, &f->a, &l, &n));
    assert_int_equal(n, 4);
    assert_string_equal(l[0].id, s.id);
    RC(STORE_OK, OPS->session_list(f->st, u1, NULL, &f->a, &l, &n));
    assert_int_equal(n, 3);
    RC(STORE_OK, OPS->session_list(f->st, NULL, a1, &f->a, &l, &n));
    assert_int_equal(n, 2);
    RC(STORE_OK, OPS->session_list(f->st, u1, a2, &f->a, &l, &n));
    assert_int_equal(n, 2);
    assert_string_equal(l[0].id, gen1.id);
    assert_string_equal(l[1].id, gen2.id);
    RC(STORE_OK, OPS->session_list(f->st, "nope", NULL, &f->a, &l, &n));
    assert_int_equal(n, 0);

    /* update */
    store_session up;
    RC(STORE_OK, OPS->session_update(f->st, s.id, "renamed", &f->a, &up));
    assert_string_equal(up.name, "renamed");
    assert_string_equal(up.user_id, u1);
    assert_true(strcmp(up.updated_at, s.updated_at) >= 0);
    RC(STORE_CONFLICT, OPS->session_update(f->st, s.id, gen1.name, &f->a, &up));
    RC(STORE_OK, OPS->session_update(f->st, s_u2, "renamed", &f->a, &up)); /* other user's: fine */
    RC(STORE_OK, OPS->session_update(f->st, s.id, NULL, &f->a, &up));
    assert_string_equal(up.name, "renamed");
    RC(STORE_NOT_FOUND, OPS->session_update(f->st, "nope", "x", &f->a, &up));

    /* delete */
    RC(STORE_OK, OPS->session_delete(f->st, gen2.id));
    RC(STORE_NOT_FOUND, OPS->session_get(f->st, gen2.id, &f->a, &g));
    RC(STORE_NOT_FOUND, OPS->session_delete(f->st, gen2.id));
    assert_int_equal(counts(f).sessions, 3);
}

/* --- messages ------------------------------------------------------------------------------------------- */

typedef struct conv {
    const char *u, *a, *s;
    store_added r1, r2;
} conv;

/* u/a/s with round r1 (3 messages, buffered) and r2 (2 messages, consolidated). */
static conv make_conv(fx *f)
{
    conv c;
    c.u = mk_user(f, "u");
    c.a = mk_agent(f, "a");
    c.s = mk_session(f, c.u, c.a, "s");
    c.r1 = ADD(f, c.s, 0, "m0 apples", "m1 bananas", "m2 cherries");
    c.r2 = ADD(f, c.s, 1, "m3 dates", "m4 elderberries");
    return c;
}

static void expect_contents(store_message *m, size_t n, const char *const *want, size_t nw)
{
    if (n != nw)
        fail_msg("%zu messages, want %zu", n, nw);
    for (size_t i = 0; i < n; i++)
        if (strncmp(m[i].content, want[i], 2) != 0)
            fail_msg("message %zu is '%s', want '%s'", i, m[i].content, want[i]);
}
#define EXPECT(m, n, ...) expect_contents(m, n, STRS(__VA_ARGS__), NSTRS(__VA_ARGS__))

static void test_messages_add(void **state)
{
    fx *f = *state;
    conv c = make_conv(f);
    assert_true(ids_is_uuid(c.r1.round_id));
    assert_int_equal(strlen(c.r1.created_at), TIME_ISO_LEN);
    for (size_t i = 0; i < 3; i++)
        assert_true(ids_is_uuid(c.r1.message_ids[i]));
    assert_true(strcmp(c.r1.message_ids[0], c.r1.message_ids[1]) < 0);
    assert_true(strcmp(c.r1.message_ids[2], c.r2.message_ids[0]) < 0);

    store_message *m = NULL;
    size_t n = list_messages(f, c.s, 100, STORE_SORT_TIME, 0, STORE_ALL, &m);
    EXPECT(m, n, "m0", "m1", "m2", "m3", "m4");
    assert_string_equal(m[0].id, c.r1.message_ids[0]);
    assert_string_equal(m[0].session_id, c.s);
    assert_string_equal(m[0].round_id, c.r1.round_id);
    assert_string_equal(m[0].role, "user");
    assert_string_equal(m[1].role, "assistant");
    assert_string_equal(m[0].content, "m0 apples");
    assert_string_equal(m[0].created_at, c.r1.created_at);
    assert_string_equal(m[0].created_at, m[0].updated_at);
    assert_int_equal(m[0].buffered, 1);
    assert_int_equal(m[3].buffered, 0);
    assert_string_equal(m[4].round_id, c.r2.round_id);

    store_round r;
    RC(STORE_OK, OPS->round_get(f->st, c.r1.round_id, &f->a, &r));
    assert_string_equal(r.session_id, c.s);
    assert_string_equal(r.user_id, c.u);
    assert_int_equal(r.tokens, 9);
    assert_int_equal(r.buffered, 1);
    RC(STORE_OK, OPS->round_get(f->st, c.r2.round_id, &f->a, &r));
    assert_int_equal(r.buffered, 0);

    /* a missing session changes nothing */
    store_msg_in in = {"user", "lost"};
    store_added out;
    RC(STORE_NO_SESSION, OPS->messages_add(f->st, "nope", &in, 1, 1, 0, NULL, 0, &f->a, &out));
    store_counts k = counts(f);
    assert_int_equal(k.rounds, 2);
    assert_int_equal(k.messages, 5);

    /* consolidate lists: older rounds marked in the add's transaction; unknown ids are ignored */
    store_added r3 = add_round(f, c.s, STRS("m5 figs"), 1, 0, STRS(c.r1.round_id, "unknown-round"), 2);
    RC(STORE_OK, OPS->round_get(f->st, c.r1.round_id, &f->a, &r));
    assert_int_equal(r.buffered, 0);
    RC(STORE_OK, OPS->round_get(f->st, r3.round_id, &f->a, &r));
    assert_int_equal(r.buffered, 1);
    n = list_messages(f, c.s, 100, STORE_SORT_TIME, 0, STORE_BUFFERED, &m);
    EXPECT(m, n, "m5");
    assert_valid(f);
}

static void test_messages_list_orders_and_filters(void **state)
{
    fx *f = *state;
    conv c = make_conv(f);
    store_message *m = NULL;
    size_t n;
    /* time: ties (one round shares created_at) keep input order, and reverse exactly when descending */
    n = list_messages(f, c.s, 100, STORE_SORT_TIME, 0, STORE_ALL, &m);
    EXPECT(m, n, "m0", "m1", "m2", "m3", "m4");
    n = list_messages(f, c.s, 100, STORE_SORT_TIME, 1, STORE_ALL, &m);
    EXPECT(m, n, "m4", "m3", "m2", "m1", "m0");
    n = list_messages(f, c.s, 100, STORE_SORT_ID, 0, STORE_ALL, &m);
    EXPECT(m, n, "m0", "m1", "m2", "m3", "m4");
    n = list_messages(f, c.s, 100, STORE_SORT_ID, 1, STORE_ALL, &m);
    EXPECT(m, n, "m4", "m3", "m2", "m1", "m0");
    n = list_messages(f, c.s, 100, STORE_SORT_STRATEGY, 0, STORE_ALL, &m);
    EXPECT(m, n, "m0", "m1", "m2", "m3", "m4");
    /* limit */
    n = list_messages(f, c.s, 2, STORE_SORT_TIME, 0, STORE_ALL, &m);
    EXPECT(m, n, "m0", "m1");
    n = list_messages(f, c.s, 2, STORE_SORT_TIME, 1, STORE_ALL, &m);
    EXPECT(m, n, "m4", "m3");
    n = list_messages(f, c.s, 1, STORE_SORT_ID, 1, STORE_ALL, &m);
    EXPECT(m, n, "m4");
    /* buffer filters */
    n = list_messages(f, c.s, 100, STORE_SORT_TIME, 0, STORE_BUFFERED, &m);
    EXPECT(m, n, "m0", "m1", "m2");
    for (size_t i = 0; i < n; i++)
        assert_int_equal(m[i].buffered, 1);
    n = list_messages(f, c.s, 100, STORE_SORT_TIME, 1, STORE_CONSOLIDATED, &m);
    EXPECT(m, n, "m4", "m3");
    for (size_t i = 0; i < n; i++)
        assert_int_equal(m[i].buffered, 0);
    n = list_messages(f, c.s, 2, STORE_SORT_ID, 1, STORE_BUFFERED, &m);
    EXPECT(m, n, "m2", "m1");
    /* another session's messages never show; an unknown session lists nothing */
    const char *s2 = mk_session(f, c.u, c.a, "other");
    ADD(f, s2, 0, "x0 other");
    n = list_messages(f, c.s, 100, STORE_SORT_TIME, 0, STORE_ALL, &m);
    assert_int_equal(n, 5);
    n = list_messages(f, "nope", 100, STORE_SORT_TIME, 0, STORE_ALL, &m);
    assert_int_equal(n, 0);
}

static void test_messages_read(void **state)
{
    fx *f = *state;
    conv c = make_conv(f);
    store_message out[8];
    const char **missing = NULL;
    size_t nm = 99;
    const char *const *ids1 = c.r1.message_ids;
    const char *const *ids2 = c.r2.message_ids;
    RC(STORE_OK, OPS->messages_read(f->st, c.s, STRS(ids2[1], ids1[0], ids1[0]), 3, &f->a, out, &missing, &nm));
    assert_string_equal(out[0].content, "m4 elderberries"); /* request order */
    assert_string_equal(out[1].content, "m0 apples");
    assert_string_equal(out[2].id, ids1[0]);
    assert_int_equal(out[0].buffered, 0);
    assert_int_equal(out[1].buffered, 1);
    assert_int_equal(nm, 0);

    /* missing ids: reported once each, in request order */
    RC(STORE_NOT_FOUND, OPS->messages_read(f->st, c.s, STRS(ids1[0], "zz-missing", ids1[1], "zz-missing", "aa-missing"),
                                           5, &f->a, out, &missing, &nm));
    assert_int_equal(nm, 2);
    assert_string_equal(missing[0], "zz-missing");
    assert_string_equal(missing[1], "aa-missing");

    /* a message of another session is missing here */
    const char *s2 = mk_session(f, c.u, c.a, "other");
    store_added x = ADD(f, s2, 0, "x0 other");
    RC(STORE_NOT_FOUND, OPS->messages_read(f->st, c.s, STRS(x.message_ids[0]), 1, &f->a, out, &missing, &nm));
    assert_int_equal(nm, 1);
    assert_string_equal(missing[0], x.message_ids[0]);
    RC(STORE_NO_SESSION, OPS->messages_read(f->st, "nope", STRS(ids1[0]), 1, &f->a, out, &missing, &nm));
}

static void test_messages_update(void **state)
{
    fx *f = *state;
    conv c = make_conv(f);
    const char *const *ids1 = c.r1.message_ids;
    const char **missing = NULL;
    size_t nm = 99;
    store_msg_in upd[2] = {{"system", "zucchini salad"}, {"user", "yams"}};
    RC(STORE_OK, OPS->messages_update(f->st, c.s, STRS(ids1[0], ids1[2]), upd, 2, &f->a, &missing, &nm));
    store_message out[3];
    RC(STORE_OK, OPS->messages_read(f->st, c.s, ids1, 3, &f->a, out, &missing, &nm));
    assert_string_equal(out[0].role, "system");
    assert_string_equal(out[0].content, "zucchini salad");
    assert_true(strcmp(out[0].updated_at, out[0].created_at) >= 0);
    assert_string_equal(out[1].content, "m1 bananas"); /* untouched */
    assert_string_equal(out[1].updated_at, out[1].created_at);
    assert_string_equal(out[2].content, "yams");
    assert_string_equal(out[2].round_id, c.r1.round_id); /* stays in its round */

    /* the keyword index follows the new text */
    store_hit *h;
    assert_int_equal(search(f, c.u, NULL, STRS("zucchini"), 1, 1, 0, 10, &h), 1);
    assert_string_equal(h[0].id, ids1[0]);
    assert_int_equal(search(f, c.u, NULL, STRS("apples"), 1, 1, 0, 10, &h), 0);

    /* one unknown id: nothing changes */
    store_msg_in upd2[3] = {{"user", "CHANGED"}, {"user", "CHANGED"}, {"user", "CHANGED"}};
    RC(STORE_NOT_FOUND, OPS->messages_update(f->st, c.s, STRS(ids1[1], "nope", "nope"), upd2, 3, &f->a, &missing, &nm));
    assert_int_equal(nm, 1);
    assert_string_equal(missing[0], "nope");
    RC(STORE_OK, OPS->messages_read(f->st, c.s, ids1, 3, &f->a, out, &missing, &nm));
    assert_string_equal(out[1].content, "m1 bananas");
    RC(STORE_NO_SESSION, OPS->messages_update(f->st, "nope", STRS(ids1[1]), upd2, 1, &f->a, &missing, &nm));
    assert_valid(f);
}

/* The messages after given ones in their sessions (the query's context window reads them). */
static void test_messages_following(void **state)
{
    fx *f = *state;
    const char *u = mk_user(f, "fol"), *a = mk_agent(f, "fol-agent");
    const char *s1 = mk_session(f, u, a, "one"), *s2 = mk_session(f, u, a, "two");
    store_added r1 = ADD(f, s1, 0, "a0", "a1", "a2"); /* one round: one created_at, insertion breaks ties */
    store_added r2 = ADD(f, s1, 0, "b0", "b1");
    store_added r3 = ADD(f, s2, 0, "c0");
    const char **k = NULL;
    RC(STORE_OK, OPS->knowledge_add(f->st, u, STRS("a fact"), 1, &f->a, &k));
    store_follow *fo;
    size_t n = 99;
    RC(STORE_OK, OPS->messages_following(f->st, STRS(r1.message_ids[1]), 1, 3, &f->a, &fo, &n));
    assert_int_equal(n, 3);
    const char *want[3] = {r1.message_ids[2], r2.message_ids[0], r2.message_ids[1]};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(fo[i].from, r1.message_ids[1]);
        assert_string_equal(fo[i].id, want[i]);
        assert_int_equal(fo[i].distance, i + 1);
    }
    /* grouped in request order; the last of a session, unknown ids and knowledge give nothing; other
     * sessions never follow */
    RC(STORE_OK, OPS->messages_following(f->st, STRS(r2.message_ids[1], "nope", k[0], r3.message_ids[0],
                                                     r1.message_ids[0]), 5, 2, &f->a, &fo, &n));
    assert_int_equal(n, 2);
    assert_string_equal(fo[0].from, r1.message_ids[0]);
    assert_string_equal(fo[0].id, r1.message_ids[1]);
    assert_string_equal(fo[1].id, r1.message_ids[2]);
    assert_int_equal(fo[1].distance, 2);
    RC(STORE_OK, OPS->messages_following(f->st, STRS(r1.message_ids[0]), 1, 0, &f->a, &fo, &n));
    assert_int_equal(n, 0);
    RC(STORE_OK, OPS->messages_following(f->st, NULL, 0, 3, &f->a, &fo, &n));
    assert_int_equal(n, 0);
    /* a deleted message is skipped over */
    const char **missing = NULL;
    size_t nm = 0;
    RC(STORE_OK, OPS->messages_delete(f->st, s1, STRS(r1.message_ids[2]), 1, &f->a, &missing, &nm));
    RC(STORE_OK, OPS->messages_following(f->st, STRS(r1.message_ids[1]), 1, 1, &f->a, &fo, &n));
    assert_int_equal(n, 1);
    assert_string_equal(fo[0].id, r2.message_ids[0]);
}

static void test_messages_delete(void **state)
{
    fx *f = *state;
    conv c = make_conv(f);
    const char *const *ids1 = c.r1.message_ids;
    const char *const *ids2 = c.r2.message_ids;
    const char **missing = NULL;
    size_t nm = 99;
    /* any unknown id: nothing deleted, unknown ids listed once, in request order */
    RC(STORE_NOT_FOUND, OPS->messages_delete(f->st, c.s, STRS(ids1[0], "b-nope", "a-nope", "b-nope"), 4, &f->a,
                                             &missing, &nm));
    assert_int_equal(nm, 2);
    assert_string_equal(missing[0], "b-nope");
    assert_string_equal(missing[1], "a-nope");
    assert_int_equal(counts(f).messages, 5);

    RC(STORE_OK, OPS->messages_delete(f->st, c.s, STRS(ids1[0], ids1[0]), 2, &f->a, &missing, &nm));
    store_message *m;
    size_t n = list_messages(f, c.s, 100, STORE_SORT_TIME, 0, STORE_ALL, &m);
    EXPECT(m, n, "m1", "m2", "m3", "m4");
    store_hit *h;
    assert_int_equal(search(f, c.u, NULL, STRS("apples"), 1, 1, 1, 10, &h), 0);

    /* a round left without messages goes too */
    RC(STORE_OK, OPS->messages_delete(f->st, c.s, ids2, 2, &f->a, &missing, &nm));
    store_round r;
    RC(STORE_NOT_FOUND, OPS->round_get(f->st, c.r2.round_id, &f->a, &r));
    RC(STORE_OK, OPS->round_get(f->st, c.r1.round_id, &f->a, &r));
    store_counts k = counts(f);
    assert_int_equal(k.messages, 2);
    assert_int_equal(k.rounds, 1);
    RC(STORE_NO_SESSION, OPS->messages_delete(f->st, "nope", STRS(ids1[1]), 1, &f->a, &missing, &nm));
    assert_valid(f);
}

/* --- knowledge ------------------------------------------------------------------------------------------ */

static void test_knowledge(void **state)
{
    fx *f = *state;
    const char *u1 = mk_user(f, "k1"), *u2 = mk_user(f, "k2");
    const char **k = NULL, **k2 = NULL;
    RC(STORE_OK, OPS->knowledge_add(f->st, u1, STRS("kiwi one", "kiwi two", "kiwi three"), 3, &f->a, &k));
    RC(STORE_OK, OPS->knowledge_add(f->st, u2, STRS("kiwi other"), 1, &f->a, &k2));
    assert_true(ids_is_uuid(k[0]));
    RC(STORE_NO_USER, OPS->knowledge_add(f->st, "nope", STRS("x"), 1, &f->a, &k2));

    store_knowledge *l = NULL;
    size_t n = 0;
    RC(STORE_OK, OPS->knowledge_list(f->st, u1, &f->a, &l, &n));
    assert_int_equal(n, 3);
    assert_string_equal(l[0].content, "kiwi one");
    assert_string_equal(l[2].content, "kiwi three");
    assert_string_equal(l[0].id, k[0]);
    assert_string_equal(l[0].user_id, u1);
    assert_string_equal(l[0].created_at, l[0].updated_at);

    /* read: only the user's ids that exist, in request order */
    RC(STORE_OK, OPS->knowledge_read(f->st, u1, STRS(k[2], k2[0], "nope", k[0]), 4, &f->a, &l, &n));
    assert_int_equal(n, 2);
    assert_string_equal(l[0].id, k[2]);
    assert_string_equal(l[1].id, k[0]);

    /* update is pairwise; another user's id is skipped */
    const char **done = NULL;
    size_t nd = 99;
    RC(STORE_OK, OPS->knowledge_update(f->st, u1, STRS(k2[0], k[1], "nope"), STRS("HACKED", "kiwi TWO", "x"), 3, &f->a,
                                       &done, &nd));
    assert_int_equal(nd, 1);
    assert_string_equal(done[0], k[1]);
    RC(STORE_OK, OPS->knowledge_read(f->st, u2, STRS(k2[0]), 1, &f->a, &l, &n));
    assert_string_equal(l[0].content, "kiwi other");
    RC(STORE_OK, OPS->knowledge_read(f->st, u1, STRS(k[1]), 1, &f->a, &l, &n));
    assert_string_equal(l[0].content, "kiwi TWO");
    assert_true(strcmp(l[0].updated_at, l[0].created_at) >= 0);
    RC(STORE_NO_USER, OPS->knowledge_update(f->st, "nope", STRS(k[1]), STRS("x"), 1, &f->a, &done, &nd));

    /* delete: likewise only the user's */
    RC(STORE_OK, OPS->knowledge_delete(f->st, u1, STRS(k2[0], k[0], k[0]), 3, &f->a, &done, &nd));
    assert_int_equal(nd, 1);
    assert_string_equal(done[0], k[0]);
    RC(STORE_OK, OPS->knowledge_list(f->st, u1, &f->a, &l, &n));
    assert_int_equal(n, 2);
    RC(STORE_OK, OPS->knowledge_list(f->st, u2, &f->a, &l, &n));
    assert_int_equal(n, 1);
    RC(STORE_NO_USER, OPS->knowledge_delete(f->st, "nope", STRS(k[1]), 1, &f->a, &done, &nd));

    store_hit *h;
    assert_int_equal(search(f, u1, NULL, STRS("kiwi"), 1, 0, 1, 10, &h), 2);
    assert_valid(f);
}

/* --- API keys ------------------------------------------------------------------------------------------- */

static void test_api_keys(void **state)
{
    fx *f = *state;
    const char *u1 = mk_user(f, "key1"), *u2 = mk_user(f, "key2");
    char h1[65], h2[65];
    memset(h1, 'a', 64);
    h1[64] = '\0';
    memset(h2, 'b', 64);
    h2[64] = '\0';
    store_apikey k, g;
    RC(STORE_OK, OPS->apikey_create(f->st, u1, "ci", h1, "{\"read\":true}", "2999-01-01T00:00:00.000000Z", &f->a, &k));
    assert_true(ids_is_uuid(k.id));
    assert_string_equal(k.user_id, u1);
    assert_string_equal(k.name, "ci");
    assert_string_equal(k.permissions, "{\"read\":true}");
    assert_string_equal(k.expires_at, "2999-01-01T00:00:00.000000Z");
    assert_int_equal(strlen(k.created_at), TIME_ISO_LEN);

    /* a hash is unique over all users */
    RC(STORE_CONFLICT, OPS->apikey_create(f->st, u2, NULL, h1, NULL, NULL, &f->a, &g));
    RC(STORE_NO_USER, OPS->apikey_create(f->st, "nope", NULL, h2, NULL, NULL, &f->a, &g));
    store_apikey k2;
    RC(STORE_OK, OPS->apikey_create(f->st, u2, NULL, h2, NULL, NULL, &f->a, &k2));
    assert_null(k2.name);
    assert_null(k2.permissions);
    assert_null(k2.expires_at);

    RC(STORE_OK, OPS->apikey_lookup(f->st, h1, &f->a, &g));
    assert_string_equal(g.id, k.id);
    assert_string_equal(g.user_id, u1);
    assert_string_equal(g.permissions, "{\"read\":true}");
    RC(STORE_OK, OPS->apikey_lookup(f->st, h2, &f->a, &g));
    assert_null(g.expires_at);
    RC(STORE_NOT_FOUND, OPS->apikey_lookup(f->st, "cccc", &f->a, &g));

    store_apikey *l = NULL;
    size_t n = 0;
    RC(STORE_OK, OPS->apikey_list(f->st, u1, &f->a, &l, &n));
    assert_int_equal(n, 1);
    assert_string_equal(l[0].id, k.id);

    /* deleting another user's key is not found, and leaves it */
    RC(STORE_NOT_FOUND, OPS->apikey_delete(f->st, u2, k.id));
    RC(STORE_OK, OPS->apikey_lookup(f->st, h1, &f->a, &g));
    RC(STORE_OK, OPS->apikey_delete(f->st, u1, k.id));
    RC(STORE_NOT_FOUND, OPS->apikey_lookup(f->st, h1, &f->a, &g));
    RC(STORE_NOT_FOUND, OPS->apikey_delete(f->st, u1, k.id));
    RC(STORE_OK, OPS->apikey_list(f->st, u1, &f->a, &l, &n));
    assert_int_equal(n, 0);
}

/* --- keyword search ------------------------------------------------------------------------------------- */

static void test_search_keyword(void **state)
{
    fx *f = *state;
    const char *u1 = mk_user(f, "s1"), *u2 = mk_user(f, "s2");
    const char *a1 = mk_agent(f, "a1"), *a2 = mk_agent(f, "a2");
    const char *s11 = mk_session(f, u1, a1, "one"), *s12 = mk_session(f, u1, a2, "two");
    const char *s21 = mk_session(f, u2, a1, "one");
    store_added m_fox = ADD(f, s11, 0, "the quick brown fox jumps over a lazy dog by the river bank today");
    store_added m_bear = ADD(f, s12, 0, "brown bear");
    store_added m_foxes = ADD(f, s11, 0, "fox fox fox");
    ADD(f, s21, 0, "brown fox of another user");
    const char **k = NULL;
    RC(STORE_OK, OPS->knowledge_add(f->st, u1, STRS("fox facts"), 1, &f->a, &k));
    RC(STORE_OK, OPS->knowledge_add(f->st, u2, STRS("fox secrets of user two"), 1, &f->a, &k));

    store_hit *h;
    size_t n = search(f, u1, NULL, STRS("fox"), 1, 1, 1, 10, &h);
    assert_int_equal(n, 3); /* never user two's rows */
    for (size_t i = 0; i < n; i++) {
        assert_null(strstr(h[i].content, "user"));
        assert_true(h[i].score >= 0);
        if (i)
            assert_true(h[i - 1].score >= h[i].score);
    }
    /* the message that says fox three times outranks the long one */
    size_t pos_many = 99, pos_long = 99;
    for (size_t i = 0; i < n; i++) {
        if (h[i].type == STORE_HIT_MESSAGE && strcmp(h[i].id, m_foxes.message_ids[0]) == 0)
            pos_many = i;
        if (h[i].type == STORE_HIT_MESSAGE && strcmp(h[i].id, m_fox.message_ids[0]) == 0)
            pos_long = i;
    }
    assert_true(pos_many < pos_long && pos_long < n);
    for (size_t i = 0; i < n; i++) {
        if (h[i].type == STORE_HIT_MESSAGE) {
            assert_string_equal(h[i].session_id, s11);
            assert_string_equal(h[i].session_name, "one");
            assert_string_equal(h[i].agent_id, a1);
            assert_string_equal(h[i].role, "user");
        } else {
            assert_int_equal(h[i].type, STORE_HIT_KNOWLEDGE);
            assert_string_equal(h[i].content, "fox facts");
            assert_null(h[i].session_id);
            assert_null(h[i].agent_id);
            assert_non_null(h[i].created_at);
        }
    }

    /* include flags */
    n = search(f, u1, NULL, STRS("fox"), 1, 1, 0, 10, &h);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(h[i].type, STORE_HIT_MESSAGE);
    n = search(f, u1, NULL, STRS("fox"), 1, 0, 1, 10, &h);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].type, STORE_HIT_KNOWLEDGE);
    assert_int_equal(search(f, u1, NULL, STRS("fox"), 1, 0, 0, 10, &h), 0);

    /* agent filter: only that agent's sessions */
    n = search(f, u1, a2, STRS("brown"), 1, 1, 0, 10, &h);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].id, m_bear.message_ids[0]);
    n = search(f, u1, a1, STRS("bear"), 1, 1, 0, 10, &h);
    assert_int_equal(n, 0);

    /* terms are OR-ed; limit keeps the best */
    n = search(f, u1, NULL, STRS("bear", "fox"), 2, 1, 1, 10, &h);
    assert_int_equal(n, 4);
    store_hit *all = h;
    n = search(f, u1, NULL, STRS("bear", "fox"), 2, 1, 1, 2, &h);
    assert_int_equal(n, 2);
    assert_string_equal(h[0].id, all[0].id);
    assert_string_equal(h[1].id, all[1].id);
    assert_int_equal(search(f, u1, NULL, STRS("fox"), 1, 1, 1, 0, &h), 0);
    assert_int_equal(search(f, u1, NULL, NULL, 0, 1, 1, 10, &h), 0);
    assert_int_equal(search(f, "nope", NULL, STRS("fox"), 1, 1, 1, 10, &h), 0);

    /* query syntax in terms is only text: no error, no match-everything */
    assert_int_equal(search(f, u1, NULL, STRS("a\"b", "NEAR", "*", "OR", "zebra:", "(", "-"), 7, 1, 1, 10, &h), 0);
    assert_int_equal(search(f, u1, NULL, STRS("\xF0\x9F\x98\x80"), 1, 1, 1, 10, &h), 0);
    /* porter stemming and case folding */
    assert_true(search(f, u1, NULL, STRS("FOXES"), 1, 1, 1, 10, &h) >= 2);
    assert_true(search(f, u1, NULL, STRS("jumping"), 1, 1, 0, 10, &h) == 1);
}

/* Keyword search with context: a message's row also holds the message before it in its session (weighed
 * little), so a reply is found by the words of what it answers; adds, text changes and deletes keep that link
 * right, validate notices a stale one, and a search without context matches own text only. */
/* Keyword rows are keyed by user (sq_schema.c, migration 4): a search reads its user's key range. A deleted
 * user's rows leave the index with it, and a user created after, who may get the same key, finds only its own. */
static void test_search_keyword_per_user_keys(void **state)
{
    fx *f = *state;
    const char *ua = mk_user(f, "ka"), *ub = mk_user(f, "kb");
    const char *ag = mk_agent(f, "kag");
    const char *sa = mk_session(f, ua, ag, "one"), *sb = mk_session(f, ub, ag, "one");
    ADD(f, sa, 0, "the heron stood in the shallows");
    ADD(f, sb, 0, "a heron of user b", "and another heron of user b");
    const char **k = NULL;
    RC(STORE_OK, OPS->knowledge_add(f->st, ub, STRS("herons eat fish (b)"), 1, &f->a, &k));
    store_hit *h;
    assert_int_equal(search(f, ua, NULL, STRS("heron"), 1, 1, 1, 10, &h), 1);
    assert_int_equal(search(f, ub, NULL, STRS("heron"), 1, 1, 1, 10, &h), 3);
    assert_int_equal(search(f, "no-such-user", NULL, STRS("heron"), 1, 1, 1, 10, &h), 0);
    assert_valid(f);

    /* the last user created goes; the next one gets its key back and sees none of its rows */
    RC(STORE_OK, OPS->entity_delete(f->st, STORE_USERS, ub));
    assert_valid(f); /* no keyword row left behind */
    const char *uc = mk_user(f, "kc");
    const char *sc = mk_session(f, uc, ag, "one");
    assert_int_equal(search(f, uc, NULL, STRS("heron"), 1, 1, 1, 10, &h), 0);
    ADD(f, sc, 0, "user c saw a heron too");
    assert_int_equal(search(f, uc, NULL, STRS("heron"), 1, 1, 1, 10, &h), 1);
    assert_non_null(strstr(h[0].content, "user c"));
    assert_int_equal(search(f, ua, NULL, STRS("heron"), 1, 1, 1, 10, &h), 1);
    assert_non_null(strstr(h[0].content, "shallows"));
    assert_valid(f);
}

static size_t search_ctx(fx *f, const char *uid, const char *term, int context, store_hit **hits)
{
    store_search q = {.user_id = uid, .terms = (const char *const[]){term}, .n_terms = 1, .include_messages = 1,
                      .limit = 10, .context = context};
    size_t n = 99;
    RC(STORE_OK, OPS->search_keyword(f->st, &q, &f->a, hits, &n));
    return n;
}

static void test_search_keyword_context(void **state)
{
    fx *f = *state;
    const char *u = mk_user(f, "ctx"), *a = mk_agent(f, "ctx-agent");
    const char *s1 = mk_session(f, u, a, "one"), *s2 = mk_session(f, u, a, "two");
    store_added r1 = ADD(f, s1, 0, "what did you paint last weekend", "a sunset over the lake");
    store_added r2 = ADD(f, s2, 0, "the heron came back"); /* another session: no context from s1 */
    store_added r3 = ADD(f, s1, 0, "it had purple clouds");
    const char *ask = r1.message_ids[0], *sunset = r1.message_ids[1], *purple = r3.message_ids[0];
    store_hit *h;
    assert_int_equal(search_ctx(f, u, "paint", 1, &h), 2);
    assert_string_equal(h[0].id, ask); /* own words outrank the context */
    assert_string_equal(h[1].id, sunset);
    assert_true(h[1].score > 0 && h[1].score < h[0].score);
    assert_int_equal(search_ctx(f, u, "paint", 0, &h), 1);
    assert_string_equal(h[0].id, ask);
    assert_int_equal(search_ctx(f, u, "lake", 1, &h), 2); /* across rounds of one session */
    assert_string_equal(h[1].id, purple);
    assert_int_equal(search_ctx(f, u, "heron", 1, &h), 1);
    assert_string_equal(h[0].id, r2.message_ids[0]);
    assert_valid(f);

    /* a changed text moves into the next message's context */
    const char **missing = NULL;
    size_t nm = 0;
    store_msg_in upd[1] = {{"assistant", "a sunrise over the sea"}};
    RC(STORE_OK, OPS->messages_update(f->st, s1, STRS(sunset), upd, 1, &f->a, &missing, &nm));
    assert_int_equal(search_ctx(f, u, "lake", 1, &h), 0);
    assert_int_equal(search_ctx(f, u, "sunrise", 1, &h), 2);
    assert_string_equal(h[1].id, purple);
    assert_valid(f);

    /* a deleted message's successor takes its predecessor as context */
    RC(STORE_OK, OPS->messages_delete(f->st, s1, STRS(sunset), 1, &f->a, &missing, &nm));
    assert_int_equal(search_ctx(f, u, "sunrise", 1, &h), 0);
    assert_int_equal(search_ctx(f, u, "paint", 1, &h), 2);
    assert_string_equal(h[1].id, purple);
    assert_valid(f);

    /* the first message of a session is left with no context */
    RC(STORE_OK, OPS->messages_delete(f->st, s1, STRS(ask), 1, &f->a, &missing, &nm));
    assert_int_equal(search_ctx(f, u, "paint", 1, &h), 0);
    assert_int_equal(search_ctx(f, u, "purple", 1, &h), 1);
    assert_valid(f);

    /* a message stamped before the session's last (the clock went back) slots in by time: both it and the
     * message now after it get the right context */
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO messages(id, session_id, round_id, user_id, role, content, created_at, updated_at)"
             " SELECT 'late-1', session_id, round_id, user_id, 'user', 'an otter swam past', '2000-01-01T00:00:00Z',"
             " '2000-01-01T00:00:00Z' FROM messages WHERE id = '%s'", purple);
    raw_sql(f, sql);
    assert_int_equal(search_ctx(f, u, "otter", 1, &h), 2);
    assert_string_equal(h[1].id, purple);
    assert_valid(f);

    /* validate notices a context that is not the message before */
    raw_sql(f, "UPDATE message_fts SET prev = 'stale words' WHERE rowid = (SELECT u.ukey * 4294967296 + m.rid"
               " FROM messages m JOIN users u ON u.id = m.user_id ORDER BY m.rid DESC LIMIT 1)");
    char report[1024];
    RC(STORE_ERROR, OPS->validate(f->st, report, sizeof report));
    assert_non_null(strstr(report, "keyword context"));
}

/* --- cascades ------------------------------------------------------------------------------------------- */

typedef struct world {
    const char *u1, *u2, *a1, *a2, *s1a1, *s1a2, *s2a1;
    store_added r1a1, r1a2, r2a1;
    const char **k1, **k2;
    char h1[65], h2[65];
} world;

static void make_world(fx *f, world *w)
{
    w->u1 = mk_user(f, "w1");
    w->u2 = mk_user(f, "w2");
    w->a1 = mk_agent(f, "wa1");
    w->a2 = mk_agent(f, "wa2");
    w->s1a1 = mk_session(f, w->u1, w->a1, "x");
    w->s1a2 = mk_session(f, w->u1, w->a2, "y");
    w->s2a1 = mk_session(f, w->u2, w->a1, "x");
    w->r1a1 = ADD(f, w->s1a1, 0, "walrus one", "walrus two");
    w->r1a2 = ADD(f, w->s1a2, 1, "walrus three");
    w->r2a1 = ADD(f, w->s2a1, 0, "walrus four");
    RC(STORE_OK, OPS->knowledge_add(f->st, w->u1, STRS("walrus knowledge"), 1, &f->a, &w->k1));
    RC(STORE_OK, OPS->knowledge_add(f->st, w->u2, STRS("walrus lore"), 1, &f->a, &w->k2));
    store_apikey k;
    memset(w->h1, '1', 64);
    w->h1[64] = '\0';
    memset(w->h2, '2', 64);
    w->h2[64] = '\0';
    RC(STORE_OK, OPS->apikey_create(f->st, w->u1, NULL, w->h1, NULL, NULL, &f->a, &k));
    RC(STORE_OK, OPS->apikey_create(f->st, w->u2, NULL, w->h2, NULL, NULL, &f->a, &k));
}

static void test_delete_user_cascades(void **state)
{
    fx *f = *state;
    world w;
    make_world(f, &w);
    store_counts c = counts(f);
    assert_int_equal(c.messages, 4);
    assert_int_equal(c.rounds, 3);
    RC(STORE_OK, OPS->entity_delete(f->st, STORE_USERS, w.u1));
    c = counts(f);
    assert_int_equal(c.users, 1);
    assert_int_equal(c.agents, 2); /* agents stay */
    assert_int_equal(c.sessions, 1);
    assert_int_equal(c.rounds, 1);
    assert_int_equal(c.messages, 1);
    assert_int_equal(c.knowledge, 1);
    assert_int_equal(c.api_keys, 1);

    store_session s;
    RC(STORE_NOT_FOUND, OPS->session_get(f->st, w.s1a1, &f->a, &s));
    RC(STORE_NOT_FOUND, OPS->session_get(f->st, w.s1a2, &f->a, &s));
    store_round r;
    RC(STORE_NOT_FOUND, OPS->round_get(f->st, w.r1a1.round_id, &f->a, &r));
    store_apikey k;
    RC(STORE_NOT_FOUND, OPS->apikey_lookup(f->st, w.h1, &f->a, &k));
    RC(STORE_OK, OPS->apikey_lookup(f->st, w.h2, &f->a, &k));
    store_knowledge *kl;
    size_t n;
    RC(STORE_OK, OPS->knowledge_list(f->st, w.u1, &f->a, &kl, &n));
    assert_int_equal(n, 0);
    store_round *rb;
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n));
    assert_int_equal(n, 1);
    assert_string_equal(rb[0].id, w.r2a1.round_id);

    /* the keyword index lost the rows too */
    store_hit *h;
    assert_int_equal(search(f, w.u1, NULL, STRS("walrus"), 1, 1, 1, 10, &h), 0);
    assert_int_equal(search(f, w.u2, NULL, STRS("walrus"), 1, 1, 1, 10, &h), 2);
    assert_valid(f);
}

static void test_delete_agent_cascades(void **state)
{
    fx *f = *state;
    world w;
    make_world(f, &w);
    RC(STORE_OK, OPS->entity_delete(f->st, STORE_AGENTS, w.a1));
    store_counts c = counts(f);
    assert_int_equal(c.users, 2);
    assert_int_equal(c.sessions, 1); /* only u1's session with a2 */
    assert_int_equal(c.rounds, 1);
    assert_int_equal(c.messages, 1);
    assert_int_equal(c.knowledge, 2); /* knowledge belongs to users */
    assert_int_equal(c.api_keys, 2);
    store_session s;
    RC(STORE_NOT_FOUND, OPS->session_get(f->st, w.s1a1, &f->a, &s));
    RC(STORE_NOT_FOUND, OPS->session_get(f->st, w.s2a1, &f->a, &s));
    RC(STORE_OK, OPS->session_get(f->st, w.s1a2, &f->a, &s));
    store_hit *h;
    size_t n = search(f, w.u1, NULL, STRS("walrus"), 1, 1, 0, 10, &h);
    assert_int_equal(n, 1);
    assert_string_equal(h[0].content, "walrus three");
    assert_int_equal(search(f, w.u2, NULL, STRS("walrus"), 1, 1, 0, 10, &h), 0);
    assert_valid(f);
}

static void test_delete_session_cascades(void **state)
{
    fx *f = *state;
    world w;
    make_world(f, &w);
    RC(STORE_OK, OPS->session_delete(f->st, w.s1a1));
    store_counts c = counts(f);
    assert_int_equal(c.sessions, 2);
    assert_int_equal(c.rounds, 2);
    assert_int_equal(c.messages, 2);
    const char **missing;
    size_t nm;
    store_message out[2];
    RC(STORE_NO_SESSION, OPS->messages_read(f->st, w.s1a1, w.r1a1.message_ids, 2, &f->a, out, &missing, &nm));
    store_hit *h;
    assert_int_equal(search(f, w.u1, NULL, STRS("walrus"), 1, 1, 0, 10, &h), 1);
    assert_valid(f);
}

/* --- rounds and chunks ---------------------------------------------------------------------------------- */

static void test_rounds(void **state)
{
    fx *f = *state;
    world w;
    make_world(f, &w);
    store_round *rb;
    size_t n;
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n));
    assert_int_equal(n, 2); /* r1a2 was stored consolidated */
    assert_string_equal(rb[0].id, w.r1a1.round_id); /* oldest first */
    assert_string_equal(rb[1].id, w.r2a1.round_id);
    assert_string_equal(rb[0].user_id, w.u1);
    assert_string_equal(rb[0].session_id, w.s1a1);
    assert_int_equal(rb[0].tokens, 6);
    assert_int_equal(rb[0].buffered, 1);

    RC(STORE_OK, OPS->rounds_consolidate(f->st, NULL, 0));
    RC(STORE_OK, OPS->rounds_consolidate(f->st, STRS(w.r2a1.round_id, "unknown", w.r1a2.round_id), 3));
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n));
    assert_int_equal(n, 1);
    assert_string_equal(rb[0].id, w.r1a1.round_id);
    store_round r;
    RC(STORE_OK, OPS->round_get(f->st, w.r2a1.round_id, &f->a, &r));
    assert_int_equal(r.buffered, 0);
    assert_string_equal(r.created_at, w.r2a1.created_at);
    RC(STORE_NOT_FOUND, OPS->round_get(f->st, "unknown", &f->a, &r));

    /* a round id with JSON specials in the consolidate list is only data */
    RC(STORE_OK, OPS->rounds_consolidate(f->st, STRS("x\"]", "\\", w.r1a1.round_id), 3));
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n));
    assert_int_equal(n, 0);
}

static void test_chunks(void **state)
{
    fx *f = *state;
    conv c = make_conv(f);
    const char **k;
    RC(STORE_OK, OPS->knowledge_add(f->st, c.u, STRS("know one", "know two"), 2, &f->a, &k));
    store_page p = {.limit = 10, .sort = STORE_SORT_TIME, .desc = 0};
    store_chunk *ch;
    size_t n;
    int64_t total;
    RC(STORE_OK, OPS->chunks_list(f->st, c.s, NULL, STORE_CHUNKS_ALL, &p, &f->a, &ch, &n, &total));
    assert_int_equal(n, 5);
    assert_int_equal(total, 5);
    assert_string_equal(ch[0].chunk_id, c.r1.message_ids[0]);
    assert_string_equal(ch[0].content, "m0 apples");
    assert_string_equal(ch[0].session_id, c.s);
    assert_string_equal(ch[0].round_id, c.r1.round_id);
    assert_string_equal(ch[0].user_id, c.u);
    assert_string_equal(ch[0].agent_id, c.a);
    assert_string_equal(ch[0].role, "user");
    assert_string_equal(ch[4].content, "m4 elderberries");
    assert_int_equal(ch[0].has_embedding, 0);

    p.limit = 2;
    p.desc = 1;
    RC(STORE_OK, OPS->chunks_list(f->st, c.s, NULL, STORE_CHUNKS_ALL, &p, &f->a, &ch, &n, &total));
    assert_int_equal(n, 2);
    assert_int_equal(total, 5); /* counts all, not only the page */
    assert_string_equal(ch[0].content, "m4 elderberries");
    assert_string_equal(ch[1].content, "m3 dates");
    p.sort = STORE_SORT_ID;
    p.desc = 0;
    RC(STORE_OK, OPS->chunks_list(f->st, c.s, NULL, STORE_CHUNKS_KEYWORD, &p, &f->a, &ch, &n, &total));
    assert_int_equal(n, 2);
    assert_int_equal(total, 5);
    assert_string_equal(ch[0].content, "m0 apples");

    /* by round */
    p.limit = 10;
    RC(STORE_OK, OPS->chunks_list(f->st, NULL, c.r2.round_id, STORE_CHUNKS_ALL, &p, &f->a, &ch, &n, &total));
    assert_int_equal(n, 2);
    assert_int_equal(total, 2);
    assert_string_equal(ch[0].round_id, c.r2.round_id);
    RC(STORE_OK, OPS->chunks_list(f->st, NULL, "nope", STORE_CHUNKS_ALL, &p, &f->a, &ch, &n, &total));
    assert_int_equal(n, 0);
    assert_int_equal(total, 0);

    /* no vectors yet, no graph ever */
    RC(STORE_OK, OPS->chunks_list(f->st, c.s, NULL, STORE_CHUNKS_VECTOR, &p, &f->a, &ch, &n, &total));
    assert_int_equal(n, 0);
    assert_int_equal(total, 0);
    RC(STORE_OK, OPS->chunks_list(f->st, c.s, NULL, STORE_CHUNKS_GRAPH, &p, &f->a, &ch, &n, &total));
    assert_int_equal(total, 0);

    store_chunk_stats st;
    RC(STORE_OK, OPS->chunks_stats(f->st, c.u, NULL, &st));
    assert_int_equal(st.total, 7);
    assert_int_equal(st.keyword, 7);
    assert_int_equal(st.vector, 0);
    assert_int_equal(st.graph, 0);
    RC(STORE_OK, OPS->chunks_stats(f->st, NULL, c.s, &st));
    assert_int_equal(st.total, 5); /* a session's stats exclude knowledge */
    RC(STORE_OK, OPS->chunks_stats(f->st, "nope", NULL, &st));
    assert_int_equal(st.total, 0);

    /* a vector (as the embedding pipeline would write it) shows in the vector views and counts... */
    raw_sql(f, "INSERT INTO message_vectors(rid, model, dim, vec) SELECT rid, 'test', 1, x'00000000'"
               " FROM messages WHERE content = 'm1 bananas'");
    RC(STORE_OK, OPS->chunks_list(f->st, c.s, NULL, STORE_CHUNKS_VECTOR, &p, &f->a, &ch, &n, &total));
    assert_int_equal(n, 1);
    assert_int_equal(total, 1);
    assert_string_equal(ch[0].content, "m1 bananas");
    assert_int_equal(ch[0].has_embedding, 1);
    RC(STORE_OK, OPS->chunks_stats(f->st, NULL, NULL, &st));
    assert_int_equal(st.vector, 1);
    assert_int_equal(counts(f).vectors, 1);
    /* ...and goes when the text changes */
    const char **missing;
    size_t nm;
    store_msg_in upd = {"user", "new text"};
    RC(STORE_OK, OPS->messages_update(f->st, c.s, STRS(c.r1.message_ids[1]), &upd, 1, &f->a, &missing, &nm));
    assert_int_equal(counts(f).vectors, 0);
}

/* --- admin ---------------------------------------------------------------------------------------------- */

static void test_counts_and_reset(void **state)
{
    fx *f = *state;
    world w;
    make_world(f, &w);
    store_counts c = counts(f);
    assert_int_equal(c.users, 2);
    assert_int_equal(c.agents, 2);
    assert_int_equal(c.sessions, 3);
    assert_int_equal(c.rounds, 3);
    assert_int_equal(c.messages, 4);
    assert_int_equal(c.knowledge, 2);
    assert_int_equal(c.api_keys, 2);
    assert_int_equal(c.vectors, 0);

    RC(STORE_OK, OPS->reset(f->st));
    c = counts(f);
    assert_int_equal(c.users + c.agents + c.sessions + c.rounds + c.messages + c.knowledge + c.api_keys, 0);
    assert_true(c.schema_version >= 1);
    assert_valid(f);
    store_hit *h;
    assert_int_equal(search(f, w.u1, NULL, STRS("walrus"), 1, 1, 1, 10, &h), 0);
    /* the schema is still there and usable */
    make_world(f, &w);
    assert_int_equal(counts(f).messages, 4);
}

static void test_recreate(void **state)
{
    fx *f = *state;
    world w;
    make_world(f, &w);
    int version = counts(f).schema_version;
    RC(STORE_OK, OPS->recreate(f->st));
    store_counts c = counts(f);
    assert_int_equal(c.schema_version, version);
    assert_int_equal(c.users + c.agents + c.sessions + c.rounds + c.messages + c.knowledge + c.api_keys, 0);
    assert_valid(f);
    /* reads and writes work after it (statement caches must not point at dropped tables) */
    make_world(f, &w);
    store_hit *h;
    assert_int_equal(search(f, w.u1, NULL, STRS("walrus"), 1, 1, 1, 10, &h), 4);
    store_message *m;
    assert_int_equal(list_messages(f, w.s1a1, 10, STORE_SORT_TIME, 0, STORE_ALL, &m), 2);
    assert_valid(f);
}

static void test_validate_detects_damage(void **state)
{
    fx *f = *state;
    world w;
    make_world(f, &w);
    assert_valid(f);
    char report[1024];
    /* a keyword index row gone behind the store's back */
    raw_sql(f, "DELETE FROM message_fts WHERE rowid = (SELECT u.ukey * 4294967296 + m.rid"
               " FROM messages m JOIN users u ON u.id = m.user_id ORDER BY m.rid LIMIT 1)");
    RC(STORE_ERROR, OPS->validate(f->st, report, sizeof report));
    assert_non_null(strstr(report, "keyword index"));
    /* an index of the schema missing */
    raw_sql(f, "DROP INDEX messages_user");
    RC(STORE_ERROR, OPS->validate(f->st, report, sizeof report));
    assert_non_null(strstr(report, "missing messages_user"));
    /* a tiny report buffer is not overrun */
    char tiny[8];
    RC(STORE_ERROR, OPS->validate(f->st, tiny, sizeof tiny));
    assert_true(memchr(tiny, '\0', sizeof tiny) != NULL);
}

/* --- concurrency and durability ------------------------------------------------------------------------- */

enum { CTHREADS = 8, CADDS = 200 };

typedef struct cadd {
    fx *f;
    const char *sid;
    int t;
    int errors;
    char rounds[CADDS][UUID_STR_LEN + 1];
    char msg_ids[CADDS][2][UUID_STR_LEN + 1];
} cadd;

static void *cadd_thread(void *p)
{
    cadd *c = p;
    store *st = c->f->st;
    arena a;
    arena_init(&a);
    for (int i = 0; i < CADDS; i++) {
        char m0[32], m1[32];
        snprintf(m0, sizeof m0, "t%d m%d a", c->t, i);
        snprintf(m1, sizeof m1, "t%d m%d b", c->t, i);
        store_msg_in in[2] = {{"user", m0}, {"assistant", m1}};
        store_added out;
        int rc = st->ops->messages_add(st, c->sid, in, 2, 2, 0, NULL, 0, &a, &out);
        if (rc != STORE_OK || out.n != 2) {
            c->errors++;
        } else {
            snprintf(c->rounds[i], sizeof c->rounds[i], "%s", out.round_id);
            snprintf(c->msg_ids[i][0], sizeof c->msg_ids[i][0], "%s", out.message_ids[0]);
            snprintf(c->msg_ids[i][1], sizeof c->msg_ids[i][1], "%s", out.message_ids[1]);
        }
        arena_reset(&a);
    }
    arena_free(&a);
    return NULL;
}

/* Every thread's messages appear in the order it added them, a before b within each round. */
static void check_concurrent_listing(store_message *m, size_t n, cadd *args)
{
    assert_int_equal(n, CTHREADS * CADDS * 2);
    int next[CTHREADS] = {0}; /* next expected (i * 2 + k) per thread */
    for (size_t j = 0; j < n; j++) {
        int t, i;
        char k;
        if (sscanf(m[j].content, "t%d m%d %c", &t, &i, &k) != 3 || t < 0 || t >= CTHREADS)
            fail_msg("unexpected message '%s'", m[j].content);
        int seq = i * 2 + (k == 'b');
        if (seq != next[t])
            fail_msg("thread %d: message '%s' at position %zu, expected sequence %d", t, m[j].content, j, next[t]);
        next[t]++;
        assert_string_equal(m[j].round_id, args[t].rounds[i]);
        assert_string_equal(m[j].id, args[t].msg_ids[i][k == 'b']);
        assert_string_equal(m[j].role, k == 'a' ? "user" : "assistant");
    }
    for (int t = 0; t < CTHREADS; t++)
        assert_int_equal(next[t], CADDS * 2);
}

static void test_concurrent_adds_one_session(void **state)
{
    fx *f = *state;
    const char *u = mk_user(f, "busy"), *a = mk_agent(f, "busy-agent");
    const char *sid = mk_session(f, u, a, "busy-session");
    cadd *args = calloc(CTHREADS, sizeof *args);
    assert_non_null(args);
    for (int t = 0; t < CTHREADS; t++) {
        args[t].f = f;
        args[t].sid = sid;
        args[t].t = t;
    }
    tu_run_threads(CTHREADS, cadd_thread, args, sizeof args[0]);
    for (int t = 0; t < CTHREADS; t++)
        assert_int_equal(args[t].errors, 0);

    store_message *m;
    size_t n = list_messages(f, sid, 100000, STORE_SORT_TIME, 0, STORE_ALL, &m);
    check_concurrent_listing(m, n, args);
    n = list_messages(f, sid, 100000, STORE_SORT_ID, 0, STORE_ALL, &m); /* ids are creation order too */
    check_concurrent_listing(m, n, args);
    store_counts c = counts(f);
    assert_int_equal(c.rounds, CTHREADS * CADDS);
    assert_int_equal(c.messages, CTHREADS * CADDS * 2);
    store_round *rb;
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n));
    assert_int_equal(n, CTHREADS * CADDS);
    assert_valid(f);

    /* all of it is durable: a reopened store sees the same */
    store_close(f->st);
    f->st = open_store(f);
    n = list_messages(f, sid, 100000, STORE_SORT_TIME, 0, STORE_ALL, &m);
    check_concurrent_listing(m, n, args);
    assert_valid(f);
    free(args);
}

static void test_reopen_sees_everything(void **state)
{
    fx *f = *state;
    world w;
    make_world(f, &w);
    RC(STORE_OK, OPS->rounds_consolidate(f->st, STRS(w.r2a1.round_id), 1));
    store_counts before = counts(f);
    store_close(f->st);
    f->st = open_store(f);
    store_counts after = counts(f);
    assert_memory_equal(&before, &after, sizeof before);
    store_entity e;
    RC(STORE_OK, OPS->entity_get_by_name(f->st, STORE_USERS, "w1", &f->a, &e));
    assert_string_equal(e.id, w.u1);
    store_session s;
    RC(STORE_OK, OPS->session_get(f->st, w.s1a1, &f->a, &s));
    store_message *m;
    size_t n = list_messages(f, w.s1a1, 10, STORE_SORT_TIME, 0, STORE_ALL, &m);
    assert_int_equal(n, 2);
    assert_string_equal(m[1].content, "walrus two");
    store_round *rb;
    RC(STORE_OK, OPS->rounds_buffered(f->st, &f->a, &rb, &n));
    assert_int_equal(n, 1);
    assert_string_equal(rb[0].id, w.r1a1.round_id);
    store_apikey k;
    RC(STORE_OK, OPS->apikey_lookup(f->st, w.h1, &f->a, &k));
    store_hit *h;
    assert_int_equal(search(f, w.u1, NULL, STRS("walrus"), 1, 1, 1, 10, &h), 4);
    /* new ids after a reopen still sort after the old ones */
    store_added more = ADD(f, w.s1a1, 0, "walrus five");
    assert_true(strcmp(more.message_ids[0], w.r2a1.message_ids[0]) > 0);
    assert_valid(f);
}

int main(void)
{
    log_init(LOG_OFF); /* failures are expected in some tests; keep the output to cmocka's */
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_and_empty),
        T(test_newer_schema_refused),
        T(test_users),
        T(test_agents),
        T(test_user_and_agent_names_independent),
        T(test_sessions),
        T(test_messages_add),
        T(test_messages_list_orders_and_filters),
        T(test_messages_read),
        T(test_messages_update),
        T(test_messages_following),
        T(test_messages_delete),
        T(test_knowledge),
        T(test_api_keys),
        T(test_search_keyword),
        T(test_search_keyword_context),
        T(test_search_keyword_per_user_keys),
        T(test_delete_user_cascades),
        T(test_delete_agent_cascades),
        T(test_delete_session_cascades),
        T(test_rounds),
        T(test_chunks),
        T(test_counts_and_reset),
        T(test_recreate),
        T(test_validate_detects_damage),
        T(test_concurrent_adds_one_session),
        T(test_reopen_sees_everything),
    };
    return cmocka_run_group_tests_name("store (sqlite)", tests, NULL, NULL);
}
