/* The LLM layers' store operations (flushes, episodes, facts; src/store/store.h) through the PostgreSQL
 * backend against a real PostgreSQL ($MEMFUSE_TEST_PG_DSN, set by scripts/with-postgres.sh; `make test-pg`
 * runs this): the backend-agnostic conformance cases of store_layers_cases.h with a store whose schema is
 * recreated before each test (store_config.flushes = 1), plus PostgreSQL-only tests: a version-1 database
 * holding data migrates to the current version in place (in a schema of its own, so it cannot disturb other tests),
 * and two stores on one database (two writer connections, as two server processes would have) racing on one
 * flush store each layer's results once. */
#include "testutil.h"

#include "store/pg/pg.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/timeutil.h"

static const char *test_dsn(void)
{
    const char *d = getenv("MEMFUSE_TEST_PG_DSN");
    if (!d || !*d)
        fail_msg("MEMFUSE_TEST_PG_DSN is not set (run through scripts/with-postgres.sh or make test-pg)");
    return d;
}

static store *open_pg(const char *dsn, ids_gen *ids, int flushes)
{
    store_config cfg = {.kind = "postgres", .pg_dsn = dsn, .read_conns = 4, .ids = ids, .flushes = flushes};
    char err[512] = "";
    store *s = store_open(&cfg, err, sizeof err);
    if (!s)
        fail_msg("store_open(postgres): %s", err);
    return s;
}

/* --- the conformance fixture ------------------------------------------------------------------------------- */

typedef struct fx {
    ids_gen ids;
    store *st;
    arena a;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    ids_gen_init(&f->ids);
    arena_init(&f->a);
    f->st = open_pg(test_dsn(), &f->ids, 1);
    int rc = f->st->ops->recreate(f->st); /* every test starts from an empty database */
    if (rc != STORE_OK)
        fail_msg("recreate: %s", store_rc_name(rc));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    store_close(f->st);
    arena_free(&f->a);
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
    f->st = open_pg(test_dsn(), &f->ids, flushes); /* the same database, data kept */
    return f->st;
}

#include "store_layers_cases.h"

/* --- PostgreSQL only ------------------------------------------------------------------------------------------ */

#define PG_RC(want, call)                                                                                     \
    do {                                                                                                      \
        int rc_ = (call);                                                                                     \
        if (rc_ != (want))                                                                                    \
            fail_msg("%s\n  gave '%s', want '%s'", #call, store_rc_name(rc_), store_rc_name(want));          \
    } while (0)

static void pg_assert_valid(store *s)
{
    char report[1024];
    int rc = s->ops->validate(s, report, sizeof report);
    if (rc != STORE_OK)
        fail_msg("validate: %s (%s)", store_rc_name(rc), report);
}

static void raw(pg_conn *c, const char *sql)
{
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        print_error("%s\n  %s", sql, PQresultErrorMessage(r));
        PQclear(r);
        fail();
    }
    PQclear(r);
}

/* --- v1 -> current in place ------------------------------------------------------------------------------------- */

#define MIGRATION_SCHEMA "memfuse_migration_test"

static void test_v1_database_migrates_in_place(void **state)
{
    (void)state;
    char *dsn = NULL;
    assert_true(asprintf(&dsn, "%s options='-c search_path=" MIGRATION_SCHEMA "'", test_dsn()) > 0);
    pg_pool_opts o;
    pg_pool_opts_default(&o);
    char err[512] = "";
    pg_conn *c = pg_conn_open(dsn, &o, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    raw(c, "DROP SCHEMA IF EXISTS " MIGRATION_SCHEMA " CASCADE; CREATE SCHEMA " MIGRATION_SCHEMA);
    if (pg_schema_migrate_to(c, 1, err, sizeof err) != 0)
        fail_msg("building the version-1 schema: %s", err);
    assert_int_equal(pg_schema_version(c), 1);
    /* a v1 database as a v1 server left it: one buffered and one consolidated round, knowledge, a vector */
    raw(c, "INSERT INTO users VALUES ('u1', 'alice', NULL, '2026-01-01T00:00:00.000000Z',"
           " '2026-01-01T00:00:00.000000Z');"
           "INSERT INTO agents VALUES ('a1', 'bot', NULL, '2026-01-01T00:00:00.000000Z',"
           " '2026-01-01T00:00:00.000000Z');"
           "INSERT INTO sessions VALUES ('s1', 'u1', 'a1', 'talk', '2026-01-01T00:00:00.000000Z',"
           " '2026-01-01T00:00:00.000000Z');"
           "INSERT INTO rounds VALUES ('r1', 's1', 'u1', 1, 10, '2026-01-01T00:00:01.000000Z'),"
           " ('r2', 's1', 'u1', 0, 10, '2026-01-01T00:00:02.000000Z');"
           "INSERT INTO messages(id, session_id, round_id, user_id, role, content, created_at, updated_at) VALUES"
           " ('m1', 's1', 'r1', 'u1', 'user', 'I adopted a greyhound called Pixel', '2026-01-01T00:00:01.000000Z',"
           "  '2026-01-01T00:00:01.000000Z'),"
           " ('m2', 's1', 'r1', 'u1', 'assistant', 'Pixel is a lovely name', '2026-01-01T00:00:01.000000Z',"
           "  '2026-01-01T00:00:01.000000Z'),"
           " ('m3', 's1', 'r2', 'u1', 'user', 'Pixel loves the beach', '2026-01-01T00:00:02.000000Z',"
           "  '2026-01-01T00:00:02.000000Z');"
           "INSERT INTO knowledge(id, user_id, content, created_at, updated_at) VALUES"
           " ('k1', 'u1', 'alice is vegetarian', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');"
           "INSERT INTO message_vectors SELECT seq, 'model', 2, '\\x0000803f00000040'::bytea FROM messages"
           " WHERE id = 'm1'");
    pg_conn_close(c);

    ids_gen ids;
    ids_gen_init(&ids);
    store *s = open_pg(dsn, &ids, 1); /* migrates */
    arena a;
    arena_init(&a);
    store_counts n;
    PG_RC(STORE_OK, s->ops->counts(s, &n));
    assert_int_equal(n.schema_version, 3);
    assert_int_equal(n.users, 1);
    assert_int_equal(n.sessions, 1);
    /* migration 3 gave every message its context (validate compares it with the message before), and a
     * search with context finds m2 by the words of m1 before it, one without context does not */
    char report[512];
    if (s->ops->validate(s, report, sizeof report) != STORE_OK)
        fail_msg("validate after the migration: %s", report);
    store_search cq = {.user_id = "u1", .terms = (const char *const[]){"greyhound"}, .n_terms = 1,
                       .include_messages = 1, .limit = 10, .context = 1};
    store_hit *ch = NULL;
    size_t nch = 0;
    PG_RC(STORE_OK, s->ops->search_keyword(s, &cq, &a, &ch, &nch));
    assert_int_equal(nch, 2);
    assert_string_equal(ch[0].id, "m1");
    assert_string_equal(ch[1].id, "m2");
    cq.context = 0;
    PG_RC(STORE_OK, s->ops->search_keyword(s, &cq, &a, &ch, &nch));
    assert_int_equal(nch, 1);
    assert_int_equal(n.rounds, 2);
    assert_int_equal(n.messages, 3);
    assert_int_equal(n.knowledge, 1);
    assert_int_equal(n.vectors, 1);
    assert_int_equal(n.episodes + n.facts + n.flushes_pending, 0);
    pg_assert_valid(s);

    /* the old data reads as before */
    store_page p = {.limit = 10, .sort = STORE_SORT_TIME, .buffer = STORE_ALL};
    store_message *msgs;
    size_t nm;
    PG_RC(STORE_OK, s->ops->messages_list(s, "s1", &p, &a, &msgs, &nm));
    assert_int_equal(nm, 3);
    assert_string_equal(msgs[0].id, "m1");
    assert_int_equal(msgs[0].buffered, 0);
    assert_int_equal(msgs[2].buffered, 1);
    const char *terms[] = {"pixel"};
    store_search q = {.user_id = "u1", .terms = terms, .n_terms = 1, .include_messages = 1, .include_knowledge = 1,
                      .include_episodes = 1, .include_facts = 1, .limit = 10};
    store_hit *hits;
    size_t nh;
    PG_RC(STORE_OK, s->ops->search_keyword(s, &q, &a, &hits, &nh));
    assert_int_equal(nh, 3);
    store_vector *vecs;
    size_t nv;
    PG_RC(STORE_OK, s->ops->vectors_of_user(s, "u1", "model", 2, &a, &vecs, &nv));
    assert_int_equal(nv, 1);
    assert_string_equal(vecs[0].u.id, "m1");
    assert_true(vecs[0].vec[0] == 1.0f && vecs[0].vec[1] == 2.0f);

    /* a round consolidated before the upgrade belongs to no flush; the buffered one gets one when it moves */
    store_flush *fl;
    size_t nf;
    PG_RC(STORE_OK, s->ops->flushes_pending(s, "9999-12-31T23:59:59.999999Z", NULL, 10, &a, &fl, &nf));
    assert_int_equal(nf, 0);
    PG_RC(STORE_OK, s->ops->rounds_consolidate(s, (const char *const[]){"r1", "r2"}, 2));
    PG_RC(STORE_OK, s->ops->flushes_pending(s, "9999-12-31T23:59:59.999999Z", NULL, 10, &a, &fl, &nf));
    assert_int_equal(nf, 1);
    assert_string_equal(fl[0].session_id, "s1");
    assert_string_equal(fl[0].user_id, "u1");
    assert_string_equal(fl[0].agent_id, "a1");
    PG_RC(STORE_OK, s->ops->flush_messages(s, fl[0].id, &a, &msgs, &nm));
    assert_int_equal(nm, 1);
    assert_string_equal(msgs[0].id, "m3");
    const char **eids;
    store_episode_in ep = {.content = "Pixel the greyhound went to the beach", .source_ids = "[\"m3\"]"};
    PG_RC(STORE_OK, s->ops->episodes_add(s, fl[0].id, &ep, 1, &a, &eids));
    assert_non_null(eids);
    PG_RC(STORE_OK, s->ops->search_keyword(s, &q, &a, &hits, &nh));
    assert_int_equal(nh, 4);
    pg_assert_valid(s);

    /* opening again finds the schema current */
    store_close(s);
    s = open_pg(dsn, &ids, 1);
    PG_RC(STORE_OK, s->ops->counts(s, &n));
    assert_int_equal(n.schema_version, 3);
    assert_int_equal(n.episodes, 1);
    store_close(s);

    c = pg_conn_open(dsn, &o, err, sizeof err);
    assert_non_null(c);
    raw(c, "DROP SCHEMA " MIGRATION_SCHEMA " CASCADE");
    pg_conn_close(c);
    arena_free(&a);
    free(dsn);
}

/* --- two stores racing on one flush -------------------------------------------------------------------------- */

typedef struct racer {
    store *st;
    const char *flush_id, *user_id;
    int layer;
    int rc, stored;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    arena a;
    arena_init(&a);
    if (r->layer == 1) {
        store_episode_in eps[2] = {{.content = "first part of the talk"}, {.content = "second part of the talk"}};
        const char **ids = NULL;
        r->rc = r->st->ops->episodes_add(r->st, r->flush_id, eps, 2, &a, &ids);
        r->stored = ids != NULL;
    } else {
        store_fact_op ops[1] = {{.action = STORE_FACT_ADD, .content = "the user races stores", .content_hash = "race",
                                 .confidence = 0.9}};
        const char **ids = NULL, **retired = NULL;
        r->rc = r->st->ops->facts_apply(r->st, r->user_id, r->flush_id, ops, 1, &a, &ids, &retired);
        r->stored = ids != NULL;
    }
    arena_free(&a);
    return NULL;
}

static void test_two_stores_store_a_flush_once(void **state)
{
    (void)state;
    ids_gen ids;
    ids_gen_init(&ids);
    /* different DSNs: separate pools, writers and connections, like two server processes */
    char *d1 = NULL, *d2 = NULL;
    assert_true(asprintf(&d1, "%s application_name=memfuse_race_1", test_dsn()) > 0);
    assert_true(asprintf(&d2, "%s application_name=memfuse_race_2", test_dsn()) > 0);
    store *s1 = open_pg(d1, &ids, 1), *s2 = open_pg(d2, &ids, 1);
    PG_RC(STORE_OK, s1->ops->recreate(s1));
    arena a;
    arena_init(&a);
    store_entity u, ag;
    store_session se;
    PG_RC(STORE_OK, s1->ops->entity_create(s1, STORE_USERS, "racer", NULL, &a, &u));
    PG_RC(STORE_OK, s1->ops->entity_create(s1, STORE_AGENTS, "bot", NULL, &a, &ag));
    PG_RC(STORE_OK, s1->ops->session_create(s1, u.id, ag.id, "race", &a, &se));
    for (int round = 0; round < 10; round++) {
        store_msg_in m[1] = {{"user", "we race"}};
        store_added added;
        PG_RC(STORE_OK, s2->ops->messages_add(s2, se.id, m, 1, 3, 1, NULL, 0, &a, &added));
        assert_non_null(added.flush_id);
        for (int layer = 1; layer <= 2; layer++) {
            racer r[2] = {{.st = s1, .flush_id = added.flush_id, .user_id = u.id, .layer = layer},
                          {.st = s2, .flush_id = added.flush_id, .user_id = u.id, .layer = layer}};
            pthread_t t[2];
            for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
            for (int i = 0; i < 2; i++)
                pthread_join(t[i], NULL);
            PG_RC(STORE_OK, r[0].rc);
            PG_RC(STORE_OK, r[1].rc);
            assert_int_equal(r[0].stored + r[1].stored, 1); /* exactly one of them stored */
        }
    }
    store_counts n;
    PG_RC(STORE_OK, s1->ops->counts(s1, &n));
    assert_int_equal(n.episodes, 20);
    assert_int_equal(n.facts, 10);
    assert_int_equal(n.flushes_pending, 0);
    pg_assert_valid(s2);
    store_close(s1);
    store_close(s2);
    arena_free(&a);
    free(d1);
    free(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        STORE_LAYERS_CASES(setup, teardown),
        cmocka_unit_test(test_v1_database_migrates_in_place),
        cmocka_unit_test(test_two_stores_store_a_flush_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
