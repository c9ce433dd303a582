/* The LLM layers' store operations (flushes, episodes, facts; src/store/store.h) through the SQLite backend:
 * the backend-agnostic conformance cases of store_layers_cases.h on a fresh data directory per test (opened
 * with store_config.flushes = 1), plus SQLite-only tests: a version-1 database holding data migrates to
 * the current version in place at open, and validate notices damage to the layers' tables (keyword indexes out of sync,
 * a vector left on a retired fact, a current fact with an end, a round pointing at another session's flush). */
#include <sqlite3.h>

#include "testutil.h"

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

static store *open_sq(fx *f, int flushes)
{
    store_config cfg = {.kind = "sqlite", .data_dir = f->dir, .read_conns = 4, .ids = &f->ids, .flushes = flushes};
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
    f->st = open_sq(f, 1);
    *state = f;
    return 0;
}

/* A fixture without a store yet: the test prepares the database file first. */
static int setup_empty_dir(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_mkdtemp();
    ids_gen_init(&f->ids);
    arena_init(&f->a);
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

/* The fixture hooks of store_layers_cases.h */
static store *layers_store(void **state) { return ((fx *)*state)->st; }
static arena *layers_arena(void **state) { return &((fx *)*state)->a; }
static store *layers_reopen(void **state, int flushes)
{
    fx *f = *state;
    store_close(f->st);
    f->st = NULL;
    f->st = open_sq(f, flushes);
    return f->st;
}

#include "store_layers_cases.h"

/* --- SQLite only ------------------------------------------------------------------------------------------------ */

static sqlite3 *raw_open(fx *f)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/memfuse.db", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static void raw_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        print_error("%s: %s\n", sql, msg ? msg : "?");
        sqlite3_free(msg);
        fail();
    }
}

static void raw_sql(fx *f, const char *sql)
{
    sqlite3 *db = raw_open(f);
    raw_exec(db, sql);
    sqlite3_close(db);
}

/* The schema of version 1 as it shipped (sq_schema.c, migration 1), frozen here: the migration test must
 * start from what old servers wrote, not from whatever migration 1 says today. */
static const char V1_SCHEMA[] =
    "CREATE TABLE users("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE TABLE agents("
    "  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, description TEXT,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE TABLE sessions("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
    "  UNIQUE(user_id, name));"
    "CREATE INDEX sessions_agent ON sessions(agent_id);"
    "CREATE INDEX sessions_name ON sessions(name);"
    "CREATE TABLE rounds("
    "  id TEXT PRIMARY KEY,"
    "  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL, status INTEGER NOT NULL, tokens INTEGER NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE INDEX rounds_session ON rounds(session_id);"
    "CREATE INDEX rounds_buffered ON rounds(created_at) WHERE status = 0;"
    "CREATE TABLE messages("
    "  rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    "  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    "  round_id TEXT NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE INDEX messages_session_time ON messages(session_id, created_at);"
    "CREATE INDEX messages_round ON messages(round_id);"
    "CREATE INDEX messages_user ON messages(user_id);"
    "CREATE TABLE knowledge("
    "  rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  content TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE INDEX knowledge_user ON knowledge(user_id, created_at);"
    "CREATE TABLE api_keys("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT, key_hash TEXT NOT NULL UNIQUE, permissions TEXT,"
    "  created_at TEXT NOT NULL, expires_at TEXT);"
    "CREATE INDEX api_keys_user ON api_keys(user_id);"
    "CREATE TABLE message_vectors("
    "  rid INTEGER PRIMARY KEY REFERENCES messages(rid) ON DELETE CASCADE,"
    "  model TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL);"
    "CREATE TABLE knowledge_vectors("
    "  rid INTEGER PRIMARY KEY REFERENCES knowledge(rid) ON DELETE CASCADE,"
    "  model TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL);"
    "CREATE VIRTUAL TABLE message_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');"
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');"
    "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN"
    "  INSERT INTO message_fts(rowid, body) VALUES (new.rid, new.content); END;"
    "CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN"
    "  DELETE FROM message_fts WHERE rowid = old.rid; END;"
    "CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN"
    "  UPDATE message_fts SET body = new.content WHERE rowid = old.rid;"
    "  DELETE FROM message_vectors WHERE rid = old.rid; END;"
    "CREATE TRIGGER knowledge_ai AFTER INSERT ON knowledge BEGIN"
    "  INSERT INTO knowledge_fts(rowid, body) VALUES (new.rid, new.content); END;"
    "CREATE TRIGGER knowledge_ad AFTER DELETE ON knowledge BEGIN"
    "  DELETE FROM knowledge_fts WHERE rowid = old.rid; END;"
    "CREATE TRIGGER knowledge_au AFTER UPDATE OF content ON knowledge BEGIN"
    "  UPDATE knowledge_fts SET body = new.content WHERE rowid = old.rid;"
    "  DELETE FROM knowledge_vectors WHERE rid = old.rid; END;";

/* Data as a version-1 server left it: a user with a session, one consolidated round and one still buffered,
 * knowledge, an API key and a message vector. */
static const char V1_DATA[] =
    "INSERT INTO users VALUES ('u1', 'alice', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');"
    "INSERT INTO agents VALUES ('a1', 'helper', 'old agent', '2026-01-01T00:00:00.000000Z',"
    " '2026-01-01T00:00:00.000000Z');"
    "INSERT INTO sessions VALUES ('s1', 'u1', 'a1', 'old-session', '2026-01-01T00:00:00.000000Z',"
    " '2026-01-01T00:00:00.000000Z');"
    "INSERT INTO rounds VALUES ('r1', 's1', 'u1', 1, 6, '2026-01-01T00:00:01.000000Z');"
    "INSERT INTO rounds VALUES ('r2', 's1', 'u1', 0, 6, '2026-01-01T00:00:02.000000Z');"
    "INSERT INTO messages(id, session_id, round_id, user_id, role, content, created_at, updated_at) VALUES"
    " ('m1', 's1', 'r1', 'u1', 'user', 'my violin lessons start in May', '2026-01-01T00:00:01.000000Z',"
    "  '2026-01-01T00:00:01.000000Z'),"
    " ('m2', 's1', 'r1', 'u1', 'assistant', 'good luck with the violin', '2026-01-01T00:00:01.000000Z',"
    "  '2026-01-01T00:00:01.000000Z'),"
    " ('m3', 's1', 'r2', 'u1', 'user', 'the teacher is called Clara', '2026-01-01T00:00:02.000000Z',"
    "  '2026-01-01T00:00:02.000000Z');"
    "INSERT INTO knowledge(id, user_id, content, created_at, updated_at) VALUES"
    " ('k1', 'u1', 'alice plays the violin', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');"
    "INSERT INTO api_keys VALUES ('key1', 'u1', 'main', 'abcd', NULL, '2026-01-01T00:00:00.000000Z', NULL);"
    "INSERT INTO message_vectors(rid, model, dim, vec) SELECT rid, 'test-model', 2, x'0000803f00000000'"
    " FROM messages WHERE id = 'm1';"
    "PRAGMA user_version = 1;";

/* Writes a version-1 database with V1_DATA and then extra (NULL: nothing more), as an old server left it. */
static void write_v1_database(fx *f, const char *extra)
{
    sqlite3 *db = raw_open(f);
    raw_exec(db, "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;");
    raw_exec(db, V1_SCHEMA);
    raw_exec(db, V1_DATA);
    if (extra)
        raw_exec(db, extra);
    sqlite3_close(db);
}

static void test_v1_database_migrates_in_place(void **state)
{
    fx *f = *state;
    write_v1_database(f, NULL);

    f->st = open_sq(f, 1);
    lc c = lc_begin(state), *x = &c;
    store_counts k = lc_counts(x);
    assert_int_equal(k.schema_version, 4);
    assert_int_equal(k.users, 1);
    assert_int_equal(k.agents, 1);
    assert_int_equal(k.sessions, 1);
    assert_int_equal(k.rounds, 2);
    assert_int_equal(k.messages, 3);
    assert_int_equal(k.knowledge, 1);
    assert_int_equal(k.api_keys, 1);
    assert_int_equal(k.vectors, 1);
    assert_int_equal(k.episodes + k.facts + k.flushes_pending, 0);
    lc_valid(x);

    /* old data reads as before: messages in order with their buffer state, keyword index, vectors, keys */
    store_page p = {.limit = 10, .sort = STORE_SORT_TIME, .desc = 0, .buffer = STORE_ALL};
    store_message *m = NULL;
    size_t n = 0;
    LC_RC(STORE_OK, LC_OPS->messages_list(x->s, "s1", &p, x->a, &m, &n));
    assert_int_equal(n, 3);
    assert_string_equal(m[0].id, "m1");
    assert_string_equal(m[2].id, "m3");
    assert_int_equal(m[0].buffered, 0);
    assert_int_equal(m[2].buffered, 1);
    store_hit *h = NULL;
    assert_int_equal(lc_search(x, "u1", NULL, "violin", 3u, &h), 3);
    store_vector *v = NULL;
    LC_RC(STORE_OK, LC_OPS->vectors_of_user(x->s, "u1", "test-model", 2, x->a, &v, &n));
    assert_int_equal(n, 1);
    assert_string_equal(v[0].u.id, "m1");
    assert_true(v[0].vec[0] == 1.0f && v[0].vec[1] == 0.0f);
    store_apikey key;
    LC_RC(STORE_OK, LC_OPS->apikey_lookup(x->s, "abcd", x->a, &key));
    assert_string_equal(key.user_id, "u1");

    /* rounds consolidated before the migration have no flush; the buffered one gets one when it moves */
    store_flush *pend = NULL;
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 0);
    LC_RC(STORE_OK, LC_OPS->rounds_consolidate(x->s, LC_STRS("r1", "r2"), 2));
    assert_int_equal(lc_pending(x, lc_time(x, 0), NULL, 10, &pend), 1);
    assert_string_equal(pend[0].session_id, "s1");
    assert_string_equal(pend[0].agent_id, "a1");
    assert_int_equal(lc_flush_messages(x, pend[0].id, &m), 1);
    assert_string_equal(m[0].id, "m3");

    /* the layers work on the migrated database */
    store_episode_in eps[1] = {lc_ep("Alice has a violin teacher, Clara", "[\"m3\"]")};
    const char *ep = lc_episodes(x, pend[0].id, eps, 1)[0];
    const char *fact = lc_apply1(x, "u1", pend[0].id, lc_op(STORE_FACT_ADD, NULL, "Alice's violin teacher is Clara",
                                                            "h-clara", "[\"m3\"]"), NULL);
    assert_string_equal(lc_fact(x, "u1", fact).episode_id, ep);
    assert_int_equal(lc_search(x, "u1", NULL, "clara", LC_ALL_TYPES, &h), 3);
    lc_valid(x);

    /* a reopen finds version 4 and migrates nothing */
    x->s = layers_reopen(state, 1);
    assert_int_equal(lc_counts(x).schema_version, 4);
    assert_int_equal(lc_counts(x).messages, 3);
    assert_int_equal(lc_counts(x).episodes, 1);
    lc_valid(x);
}

/* Schema 4 keys keyword rows by user: a version-1 database whose two users' rows interleave migrates with
 * every row at its user's key, each user finds only its own, and a user created or deleted afterwards
 * keeps the index exact. */
static void test_v1_two_users_get_their_own_keyword_keys(void **state)
{
    fx *f = *state;
    write_v1_database(f,
             "INSERT INTO users VALUES ('u2', 'bob', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');"
             "INSERT INTO sessions VALUES ('s2', 'u2', 'a1', 'bob-session', '2026-01-01T00:00:00.000000Z',"
             " '2026-01-01T00:00:00.000000Z');"
             "INSERT INTO rounds VALUES ('r3', 's2', 'u2', 1, 6, '2026-01-01T00:00:03.000000Z');"
             "INSERT INTO messages(id, session_id, round_id, user_id, role, content, created_at, updated_at) VALUES"
             " ('b1', 's2', 'r3', 'u2', 'user', 'bob sold his violin', '2026-01-01T00:00:03.000000Z',"
             "  '2026-01-01T00:00:03.000000Z'),"
             " ('b2', 's2', 'r3', 'u2', 'assistant', 'a violin for a cello', '2026-01-01T00:00:03.000000Z',"
             "  '2026-01-01T00:00:03.000000Z');"
             "INSERT INTO messages(id, session_id, round_id, user_id, role, content, created_at, updated_at) VALUES"
             " ('m4', 's1', 'r2', 'u1', 'user', 'violin practice again', '2026-01-01T00:00:04.000000Z',"
             "  '2026-01-01T00:00:04.000000Z');"
             "INSERT INTO knowledge(id, user_id, content, created_at, updated_at) VALUES"
             " ('k2', 'u2', 'bob tunes violins', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');");

    f->st = open_sq(f, 1);
    lc c = lc_begin(state), *x = &c;
    assert_int_equal(lc_counts(x).schema_version, 4);
    lc_valid(x);
    store_hit *h = NULL;
    size_t n = lc_search(x, "u1", NULL, "violin", 3u, &h);
    assert_int_equal(n, 4); /* m1, m2, m4 and k1 */
    for (size_t i = 0; i < n; i++)
        assert_true(h[i].id[0] == 'm' || strcmp(h[i].id, "k1") == 0);
    n = lc_search(x, "u2", NULL, "violin", 3u, &h);
    assert_int_equal(n, 3); /* b1, b2 and k2 */
    for (size_t i = 0; i < n; i++)
        assert_true(h[i].id[0] == 'b' || strcmp(h[i].id, "k2") == 0);

    /* the context column came through the migration: with context, bob's reply is found by the words of
     * the message before it (2 hits); by own text only, not (1) */
    assert_int_equal(lc_search(x, "u2", NULL, "sold", 1u, &h), 1);
    const char *const sold[1] = {"sold"};
    store_search q = {.user_id = "u2", .terms = sold, .n_terms = 1, .include_messages = 1, .limit = 10,
                      .context = 1};
    LC_RC(STORE_OK, LC_OPS->search_keyword(x->s, &q, x->a, &h, &n));
    assert_int_equal(n, 2);

    /* a user created now gets a key of its own; the first user's deletion takes its rows along */
    lc_world w = lc_world_new(x, "carol", "carol-agent");
    (void)w;
    LC_RC(STORE_OK, LC_OPS->entity_delete(x->s, STORE_USERS, "u1"));
    lc_valid(x);
    assert_int_equal(lc_search(x, "u1", NULL, "violin", 3u, &h), 0);
    assert_int_equal(lc_search(x, "u2", NULL, "violin", 3u, &h), 3);
}

static void expect_invalid(lc *x, const char *what)
{
    char report[1024] = "";
    LC_RC(STORE_ERROR, LC_OPS->validate(x->s, report, sizeof report));
    if (!strstr(report, what))
        fail_msg("validate report '%s' does not mention '%s'", report, what);
}

static void test_validate_detects_layer_damage(void **state)
{
    fx *f = *state;
    lc c = lc_begin(state), *x = &c;
    lc_world w = lc_world_new(x, "alice", "helper");
    const char *s2 = lc_session(x, w.user, w.agent, "second");
    const char **facts, **eps;
    lc_populate(x, w.user, w.session, "apples", &facts, &eps);
    const char *other = lc_new_flush(x, s2, "other");
    lc_valid(x);

    raw_sql(f, "DELETE FROM episode_fts");
    expect_invalid(x, "keyword index out of sync");
    raw_sql(f, "INSERT INTO episode_fts(rowid, body) SELECT rid, content FROM episodes");
    expect_invalid(x, "keyword index out of sync"); /* all there, but not at their user's keys */
    raw_sql(f, "DELETE FROM episode_fts; INSERT INTO episode_fts(rowid, body)"
               " SELECT u.ukey * 4294967296 + e.rid, e.content FROM episodes e JOIN users u ON u.id = e.user_id");
    lc_valid(x);

    /* a retired fact still in the keyword index */
    raw_sql(f, "DROP TRIGGER facts_au");
    LC_RC(STORE_OK, LC_OPS->fact_retract(x->s, w.user, facts[0]));
    expect_invalid(x, "facts_au");
    raw_sql(f, "DELETE FROM fact_fts WHERE rowid = (SELECT u.ukey * 4294967296 + x.rid FROM facts x"
               " JOIN users u ON u.id = x.user_id WHERE x.status <> 0)");
    expect_invalid(x, "missing facts_au");
    x->s = layers_reopen(state, 1);
    LC_RC(STORE_OK, LC_OPS->recreate(x->s)); /* the cure for a damaged schema */
    lc_valid(x);

    /* a round of one session pointing at another session's flush; a vector on a retired fact */
    w = lc_world_new(x, "alice", "helper");
    s2 = lc_session(x, w.user, w.agent, "second");
    lc_populate(x, w.user, w.session, "pears", &facts, &eps);
    other = lc_new_flush(x, s2, "other");
    char sql[512];
    snprintf(sql, sizeof sql, "UPDATE rounds SET flush_id = '%s' WHERE session_id = '%s'", other, w.session);
    raw_sql(f, sql);
    expect_invalid(x, "disagree with their flush");
    snprintf(sql, sizeof sql, "UPDATE rounds SET flush_id = NULL WHERE session_id = '%s'", w.session);
    raw_sql(f, sql);
    lc_valid(x);
    LC_RC(STORE_OK, LC_OPS->fact_retract(x->s, w.user, facts[1]));
    snprintf(sql, sizeof sql, "INSERT INTO fact_vectors(rid, model, dim, vec) SELECT rid, 'm', 1, x'00000000'"
                              " FROM facts WHERE id = '%s'", facts[1]);
    raw_sql(f, sql);
    expect_invalid(x, "1 vectors of retired facts");
    raw_sql(f, "DELETE FROM fact_vectors");
    lc_valid(x);
    /* a current fact that says it has ended */
    snprintf(sql, sizeof sql, "UPDATE facts SET valid_to = '2026-01-01T00:00:00.000000Z' WHERE id = '%s'", facts[0]);
    raw_sql(f, sql);
    expect_invalid(x, "1 current facts retired");
}

int main(void)
{
    log_init(LOG_OFF); /* the damage test provokes logged errors; keep the output to cmocka's */
    const struct CMUnitTest tests[] = {
        STORE_LAYERS_CASES(setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_database_migrates_in_place, setup_empty_dir, teardown),
        cmocka_unit_test_setup_teardown(test_v1_two_users_get_their_own_keyword_keys, setup_empty_dir, teardown),
        cmocka_unit_test_setup_teardown(test_validate_detects_layer_damage, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
