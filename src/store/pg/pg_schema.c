/* pg_schema — the PostgreSQL schema, its versioned migrations, and the admin operations over it
 * (counts, reset, recreate, validate).
 *
 * The version lives in memfuse_schema(version). Migration N takes the schema from N-1 to N; pending
 * migrations run in one transaction holding pg_advisory_xact_lock(PG_MIGRATION_LOCK), and the version is
 * re-read under the lock, so two processes starting at once do not race (the second waits, then finds
 * the schema current). Keyword search uses a stored generated tsvector column with a GIN index, so it
 * changes in the same statement as the text it indexes; its config memfuse_english is PostgreSQL's
 * 'english' with Snowball stemming but no stop-word list, like SQLite's porter tokenizer.
 * A text update drops the unit's vector (trigger), as in SQLite. Migration 2 adds the LLM layers (flushes,
 * episodes, facts and their vectors; see pg_layers.c); a version-1 database migrates to it in place. */
#include "store/pg/pg.h"
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* pg_advisory_xact_lock key: "memfuse" in ASCII */
#define PG_MIGRATION_LOCK "30792293006275429"

#define T "text COLLATE \"C\""

/* What a fact's keyword index holds: its text and its entity names. */
#define PG_FACT_TEXT "content || ' ' || translate(coalesce(entities, ''), '[]\",', '    ')"

static const char *const migrations[] = {
    /* 1: the initial schema */
    /* text search: English Snowball stemming without a stop-word list (the API removes its own stop words
     * before searching, like the SQLite backend's porter tokenizer, which keeps every word) */
    "CREATE TEXT SEARCH DICTIONARY memfuse_stem (TEMPLATE = snowball, Language = english);"
    "CREATE TEXT SEARCH CONFIGURATION memfuse_english (COPY = english);"
    "ALTER TEXT SEARCH CONFIGURATION memfuse_english ALTER MAPPING FOR asciiword, asciihword, hword_asciipart,"
    "  word, hword, hword_part WITH memfuse_stem;"
    "CREATE TABLE users(id " T " PRIMARY KEY, name " T " NOT NULL UNIQUE, description text,"
    "  created_at " T " NOT NULL, updated_at " T " NOT NULL);"
    "CREATE TABLE agents(id " T " PRIMARY KEY, name " T " NOT NULL UNIQUE, description text,"
    "  created_at " T " NOT NULL, updated_at " T " NOT NULL);"
    "CREATE TABLE sessions(id " T " PRIMARY KEY,"
    "  user_id " T " NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  agent_id " T " NOT NULL REFERENCES agents(id) ON DELETE CASCADE,"
    "  name " T " NOT NULL, created_at " T " NOT NULL, updated_at " T " NOT NULL, UNIQUE(user_id, name));"
    "CREATE INDEX sessions_agent ON sessions(agent_id);"
    "CREATE INDEX sessions_name ON sessions(name);"
    "CREATE TABLE rounds(id " T " PRIMARY KEY,"
    "  session_id " T " NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    "  user_id " T " NOT NULL, status integer NOT NULL, tokens integer NOT NULL, created_at " T " NOT NULL);"
    "CREATE INDEX rounds_session ON rounds(session_id);"
    "CREATE INDEX rounds_buffered ON rounds(created_at) WHERE status = 0;"
    "CREATE TABLE messages(seq bigserial PRIMARY KEY, id " T " NOT NULL UNIQUE,"
    "  session_id " T " NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    "  round_id " T " NOT NULL REFERENCES rounds(id) ON DELETE CASCADE,"
    "  user_id " T " NOT NULL, role " T " NOT NULL, content text NOT NULL,"
    "  created_at " T " NOT NULL, updated_at " T " NOT NULL,"
    "  tsv tsvector GENERATED ALWAYS AS (to_tsvector('memfuse_english', content)) STORED);"
    "CREATE INDEX messages_session_time ON messages(session_id, created_at);"
    "CREATE INDEX messages_round ON messages(round_id);"
    "CREATE INDEX messages_user ON messages(user_id);"
    "CREATE INDEX messages_tsv ON messages USING gin(tsv);"
    "CREATE TABLE knowledge(seq bigserial PRIMARY KEY, id " T " NOT NULL UNIQUE,"
    "  user_id " T " NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  content text NOT NULL, created_at " T " NOT NULL, updated_at " T " NOT NULL,"
    "  tsv tsvector GENERATED ALWAYS AS (to_tsvector('memfuse_english', content)) STORED);"
    "CREATE INDEX knowledge_user ON knowledge(user_id, created_at);"
    "CREATE INDEX knowledge_tsv ON knowledge USING gin(tsv);"
    "CREATE TABLE api_keys(id " T " PRIMARY KEY,"
    "  user_id " T " NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name text, key_hash " T " NOT NULL UNIQUE, permissions text,"
    "  created_at " T " NOT NULL, expires_at " T ");"
    "CREATE INDEX api_keys_user ON api_keys(user_id);"
    "CREATE TABLE message_vectors(seq bigint PRIMARY KEY REFERENCES messages(seq) ON DELETE CASCADE,"
    "  model " T " NOT NULL, dim integer NOT NULL, vec bytea NOT NULL);"
    "CREATE TABLE knowledge_vectors(seq bigint PRIMARY KEY REFERENCES knowledge(seq) ON DELETE CASCADE,"
    "  model " T " NOT NULL, dim integer NOT NULL, vec bytea NOT NULL);"
    "CREATE FUNCTION memfuse_messages_au() RETURNS trigger LANGUAGE plpgsql AS"
    "  $$BEGIN DELETE FROM message_vectors WHERE seq = OLD.seq; RETURN NULL; END$$;"
    "CREATE FUNCTION memfuse_knowledge_au() RETURNS trigger LANGUAGE plpgsql AS"
    "  $$BEGIN DELETE FROM knowledge_vectors WHERE seq = OLD.seq; RETURN NULL; END$$;"
    "CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages FOR EACH ROW"
    "  EXECUTE FUNCTION memfuse_messages_au();"
    "CREATE TRIGGER knowledge_au AFTER UPDATE OF content ON knowledge FOR EACH ROW"
    "  EXECUTE FUNCTION memfuse_knowledge_au();",

    /* 2: the LLM layers. A flush is one consolidation of one session's rounds (rounds.flush_id names it);
     * episodes (M1) and facts (M2) come from flushes and carry the flush's user, session and agent, so
     * deleting any of those takes them along. Facts keep their lineage: supersedes / superseded_by point
     * at other facts and become NULL when those are deleted. Only current facts (status 0) are units: the
     * facts' keyword index is partial, and retiring a fact drops its vector (trigger). */
    "CREATE TABLE flushes(id " T " PRIMARY KEY,"
    "  user_id " T " NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  session_id " T " NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    "  agent_id " T " NOT NULL, created_at " T " NOT NULL,"
    "  m1_state integer NOT NULL DEFAULT 0, m2_state integer NOT NULL DEFAULT 0,"
    "  m1_attempts integer NOT NULL DEFAULT 0, m2_attempts integer NOT NULL DEFAULT 0,"
    "  next_at " T ", last_error text);"
    "CREATE INDEX flushes_pending ON flushes(id) WHERE m1_state = 0 OR m2_state = 0;"
    "CREATE INDEX flushes_user ON flushes(user_id);"
    "CREATE INDEX flushes_session ON flushes(session_id);"
    "ALTER TABLE rounds ADD COLUMN flush_id " T " REFERENCES flushes(id) ON DELETE SET NULL;"
    "CREATE INDEX rounds_flush ON rounds(flush_id) WHERE flush_id IS NOT NULL;"
    "CREATE TABLE episodes(seq bigserial PRIMARY KEY, id " T " NOT NULL UNIQUE,"
    "  user_id " T " NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  session_id " T " NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    "  agent_id " T " NOT NULL,"
    "  flush_id " T " NOT NULL REFERENCES flushes(id) ON DELETE CASCADE,"
    "  content text NOT NULL, occurred_at text, participants text, source_ids text,"
    "  created_at " T " NOT NULL, updated_at " T " NOT NULL,"
    "  tsv tsvector GENERATED ALWAYS AS (to_tsvector('memfuse_english', content)) STORED);"
    "CREATE INDEX episodes_user ON episodes(user_id, created_at);"
    "CREATE INDEX episodes_session ON episodes(session_id, created_at);"
    "CREATE INDEX episodes_flush ON episodes(flush_id);"
    "CREATE INDEX episodes_tsv ON episodes USING gin(tsv);"
    "CREATE TABLE facts(seq bigserial PRIMARY KEY, id " T " NOT NULL UNIQUE,"
    "  user_id " T " NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  session_id " T " REFERENCES sessions(id) ON DELETE CASCADE,"
    "  agent_id " T ","
    "  flush_id " T " REFERENCES flushes(id) ON DELETE CASCADE,"
    "  episode_id " T " REFERENCES episodes(id) ON DELETE SET NULL,"
    "  content text NOT NULL, fact_type text, entities text, source_ids text, content_hash " T ","
    "  confidence double precision NOT NULL DEFAULT 0, status integer NOT NULL DEFAULT 0,"
    "  valid_from " T " NOT NULL, valid_to " T ","
    "  superseded_by " T " REFERENCES facts(id) ON DELETE SET NULL,"
    "  supersedes " T " REFERENCES facts(id) ON DELETE SET NULL,"
    "  created_at " T " NOT NULL, updated_at " T " NOT NULL,"
    /* text and entity names (the JSON array's punctuation as spaces): store_type "graph" finds a fact by
     * an entity it names */
    "  tsv tsvector GENERATED ALWAYS AS (to_tsvector('memfuse_english', " PG_FACT_TEXT ")) STORED);"
    "CREATE INDEX facts_user ON facts(user_id, created_at);"
    "CREATE INDEX facts_hash ON facts(user_id, content_hash) WHERE status = 0;"
    "CREATE INDEX facts_session ON facts(session_id);"
    "CREATE INDEX facts_flush ON facts(flush_id);"
    "CREATE INDEX facts_episode ON facts(episode_id);"
    "CREATE INDEX facts_supersedes ON facts(supersedes);"
    "CREATE INDEX facts_superseded_by ON facts(superseded_by);"
    "CREATE INDEX facts_tsv ON facts USING gin(tsv) WHERE status = 0;"
    "CREATE TABLE episode_vectors(seq bigint PRIMARY KEY REFERENCES episodes(seq) ON DELETE CASCADE,"
    "  model " T " NOT NULL, dim integer NOT NULL, vec bytea NOT NULL);"
    "CREATE TABLE fact_vectors(seq bigint PRIMARY KEY REFERENCES facts(seq) ON DELETE CASCADE,"
    "  model " T " NOT NULL, dim integer NOT NULL, vec bytea NOT NULL);"
    "CREATE FUNCTION memfuse_episodes_au() RETURNS trigger LANGUAGE plpgsql AS"
    "  $$BEGIN DELETE FROM episode_vectors WHERE seq = OLD.seq; RETURN NULL; END$$;"
    "CREATE FUNCTION memfuse_facts_au() RETURNS trigger LANGUAGE plpgsql AS"
    "  $$BEGIN DELETE FROM fact_vectors WHERE seq = OLD.seq; RETURN NULL; END$$;"
    "CREATE TRIGGER episodes_au AFTER UPDATE OF content ON episodes FOR EACH ROW"
    "  EXECUTE FUNCTION memfuse_episodes_au();"
    /* a text change, or retirement (a retired fact is no unit any more) */
    "CREATE TRIGGER facts_au AFTER UPDATE OF content, status ON facts FOR EACH ROW"
    "  WHEN (NEW.content IS DISTINCT FROM OLD.content OR NEW.status <> 0)"
    "  EXECUTE FUNCTION memfuse_facts_au();",

    /* 3: a message's keyword context, ctx: the tsvector of the message before it in its session (order
     * created_at, seq), as in the SQLite backend's message_fts.prev. Set before an insert; an insert (normally
     * the session's last, unless the clock went back), a delete or a text change re-links the message after it. The triggers of one session take one transaction-scoped
     * advisory lock, so writers in several processes cannot each miss the other's uncommitted neighbour;
     * the functions are volatile, so each of their reads sees what committed before the lock was granted. */
    "ALTER TABLE messages ADD COLUMN ctx tsvector;"
    "UPDATE messages m SET ctx = to_tsvector('memfuse_english', p.prev) FROM (SELECT seq, lag(content) OVER"
    "  (PARTITION BY session_id ORDER BY created_at, seq) AS prev FROM messages) p"
    "  WHERE p.seq = m.seq AND p.prev IS NOT NULL;"
    "CREATE INDEX messages_ctx ON messages USING gin(ctx);"
    "CREATE FUNCTION memfuse_messages_prev(sid text, at text, s bigint) RETURNS tsvector LANGUAGE sql AS"
    "  $$SELECT to_tsvector('memfuse_english', p.content) FROM messages p WHERE p.session_id = sid"
    "    AND (p.created_at, p.seq) < (at, s) ORDER BY p.created_at DESC, p.seq DESC LIMIT 1$$;"
    "CREATE FUNCTION memfuse_messages_ctx_bi() RETURNS trigger LANGUAGE plpgsql AS"
    "  $$BEGIN PERFORM pg_advisory_xact_lock(hashtext('memfuse.ctx:' || NEW.session_id));"
    "    NEW.ctx := memfuse_messages_prev(NEW.session_id, NEW.created_at, NEW.seq); RETURN NEW; END$$;"
    "CREATE FUNCTION memfuse_messages_ctx_next() RETURNS trigger LANGUAGE plpgsql AS"
    "  $$DECLARE m messages%ROWTYPE; BEGIN"
    "    IF TG_OP = 'DELETE' THEN m := OLD; ELSE m := NEW; END IF;"
    "    PERFORM pg_advisory_xact_lock(hashtext('memfuse.ctx:' || m.session_id));"
    "    UPDATE messages n SET ctx = CASE WHEN TG_OP = 'DELETE'"
    "        THEN memfuse_messages_prev(m.session_id, m.created_at, m.seq)"
    "        ELSE to_tsvector('memfuse_english', m.content) END"
    "      WHERE n.seq = (SELECT x.seq FROM messages x WHERE x.session_id = m.session_id"
    "        AND (x.created_at, x.seq) > (m.created_at, m.seq) ORDER BY x.created_at, x.seq LIMIT 1);"
    "    RETURN NULL; END$$;"
    "CREATE TRIGGER messages_ctx_bi BEFORE INSERT ON messages FOR EACH ROW"
    "  EXECUTE FUNCTION memfuse_messages_ctx_bi();"
    "CREATE TRIGGER messages_ctx_ai AFTER INSERT ON messages FOR EACH ROW"
    "  EXECUTE FUNCTION memfuse_messages_ctx_next();"
    "CREATE TRIGGER messages_ctx_ad AFTER DELETE ON messages FOR EACH ROW"
    "  EXECUTE FUNCTION memfuse_messages_ctx_next();"
    "CREATE TRIGGER messages_ctx_au AFTER UPDATE OF content ON messages FOR EACH ROW"
    "  EXECUTE FUNCTION memfuse_messages_ctx_next();",
};

const int PG_SCHEMA_VERSION = (int)(sizeof migrations / sizeof migrations[0]);

/* Relations the current schema must have (tables and indexes), for validate. */
static const char *const expected_relations[] = {
    "users", "agents", "sessions", "rounds", "messages", "knowledge", "api_keys", "message_vectors",
    "knowledge_vectors", "sessions_agent", "sessions_name", "rounds_session", "rounds_buffered",
    "messages_session_time", "messages_round", "messages_user", "messages_tsv", "knowledge_user",
    "knowledge_tsv", "api_keys_user",
    "flushes", "flushes_pending", "flushes_user", "flushes_session", "rounds_flush", "episodes", "episodes_user",
    "episodes_session", "episodes_flush", "episodes_tsv", "facts", "facts_user", "facts_hash", "facts_session",
    "facts_flush", "facts_episode", "facts_supersedes", "facts_superseded_by", "facts_tsv", "episode_vectors",
    "fact_vectors", "messages_ctx",
};

static const char *const expected_triggers[] = {"messages_au", "knowledge_au", "episodes_au", "facts_au",
                                                "messages_ctx_bi", "messages_ctx_ai", "messages_ctx_ad",
                                                "messages_ctx_au"};

#define DATA_TABLES "fact_vectors, episode_vectors, facts, episodes, flushes, message_vectors, knowledge_vectors," \
                    " api_keys, knowledge, messages, rounds, sessions, agents, users"

int pg_schema_version(pg_conn *c)
{
    int64_t exists = pg_query_int(c, "SELECT count(*) FROM pg_catalog.pg_tables"
                                     " WHERE tablename = 'memfuse_schema' AND schemaname = current_schema()",
                                  0, NULL);
    if (exists < 0)
        return -1;
    if (exists == 0)
        return 0;
    int64_t v = pg_query_int(c, "SELECT coalesce(max(version), 0) FROM memfuse_schema", 0, NULL);
    return (int)v;
}

int pg_schema_migrate(pg_conn *c, char *err, size_t errlen)
{
    return pg_schema_migrate_to(c, PG_SCHEMA_VERSION, err, errlen);
}

int pg_schema_migrate_to(pg_conn *c, int target, char *err, size_t errlen)
{
    if (target < 1 || target > PG_SCHEMA_VERSION) {
        snprintf(err, errlen, "no schema version %d (this server knows 1 to %d)", target, PG_SCHEMA_VERSION);
        return -1;
    }
    int v = pg_schema_version(c);
    if (v < 0) {
        snprintf(err, errlen, "cannot read the schema version: %s", PQerrorMessage(c->pg));
        return -1;
    }
    if (v > PG_SCHEMA_VERSION) {
        snprintf(err, errlen, "database schema version %d is newer than this server's %d", v, PG_SCHEMA_VERSION);
        return -1;
    }
    if (v >= target)
        return 0;
    if (pg_exec(c, "BEGIN") != STORE_OK ||
        pg_exec(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATION_LOCK ")") != STORE_OK ||
        pg_exec(c, "CREATE TABLE IF NOT EXISTS memfuse_schema(version integer NOT NULL)") != STORE_OK) {
        snprintf(err, errlen, "cannot lock the database for migration: %s", PQerrorMessage(c->pg));
        pg_exec(c, "ROLLBACK");
        return -1;
    }
    v = pg_schema_version(c); /* another process may have migrated while we waited for the lock */
    for (int i = v < 0 ? target : v; i < target; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM memfuse_schema; INSERT INTO memfuse_schema VALUES (%d)", i + 1);
        if (pg_exec(c, migrations[i]) != STORE_OK || pg_exec(c, sql) != STORE_OK) {
            snprintf(err, errlen, "migration %d failed: %s", i + 1, PQerrorMessage(c->pg));
            pg_exec(c, "ROLLBACK");
            return -1;
        }
        log_info("postgres schema migrated to version %d", i + 1);
    }
    if (v < 0 || pg_exec(c, "COMMIT") != STORE_OK) {
        snprintf(err, errlen, "migration commit failed: %s", PQerrorMessage(c->pg));
        pg_exec(c, "ROLLBACK");
        return -1;
    }
    return 0;
}

/* --- admin operations ------------------------------------------------------------------------------ */

static int op_counts(store *s, store_counts *out)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_snapshot_begin(c);
    PGresult *r = NULL;
    if (rc == STORE_OK) {
        out->schema_version = pg_schema_version(c);
        r = pg_run(c,
                   "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM agents), (SELECT count(*) FROM sessions),"
                   " (SELECT count(*) FROM rounds), (SELECT count(*) FROM messages), (SELECT count(*) FROM knowledge),"
                   " (SELECT count(*) FROM api_keys),"
                   " (SELECT count(*) FROM message_vectors) + (SELECT count(*) FROM knowledge_vectors)"
                   "  + (SELECT count(*) FROM episode_vectors) + (SELECT count(*) FROM fact_vectors),"
                   " (SELECT count(*) FROM episodes), (SELECT count(*) FROM facts WHERE status = 0),"
                   " (SELECT count(*) FROM flushes WHERE m1_state = 0 OR m2_state = 0)",
                   0, NULL, &rc);
    }
    if (r) {
        out->users = pg_get_i64(r, 0, 0);
        out->agents = pg_get_i64(r, 0, 1);
        out->sessions = pg_get_i64(r, 0, 2);
        out->rounds = pg_get_i64(r, 0, 3);
        out->messages = pg_get_i64(r, 0, 4);
        out->knowledge = pg_get_i64(r, 0, 5);
        out->api_keys = pg_get_i64(r, 0, 6);
        out->vectors = pg_get_i64(r, 0, 7);
        out->episodes = pg_get_i64(r, 0, 8);
        out->facts = pg_get_i64(r, 0, 9);
        out->flushes_pending = pg_get_i64(r, 0, 10);
        PQclear(r);
    }
    rc = pg_snapshot_end(c, rc);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int job_reset(pg_conn *c, void *arg)
{
    (void)arg;
    return pg_exec(c, "TRUNCATE " DATA_TABLES);
}

static int op_reset(store *s) { return pg_write(PGS(s), job_reset, NULL); }

static int drop_all(pg_conn *c)
{
    int rc = pg_exec(c, "BEGIN");
    if (rc == STORE_OK)
        rc = pg_exec(c, "SELECT pg_advisory_xact_lock(" PG_MIGRATION_LOCK ")");
    if (rc == STORE_OK)
        rc = pg_exec(c, "DROP TABLE IF EXISTS " DATA_TABLES ", memfuse_schema CASCADE;"
                        "DROP FUNCTION IF EXISTS memfuse_messages_au(), memfuse_knowledge_au(),"
                        "  memfuse_episodes_au(), memfuse_facts_au(), memfuse_messages_ctx_bi(),"
                        "  memfuse_messages_ctx_next(), memfuse_messages_prev(text, text, bigint);"
                        "DROP TEXT SEARCH CONFIGURATION IF EXISTS memfuse_english;"
                        "DROP TEXT SEARCH DICTIONARY IF EXISTS memfuse_stem");
    int e = pg_exec(c, rc == STORE_OK ? "COMMIT" : "ROLLBACK");
    return rc != STORE_OK ? rc : e;
}

static int op_recreate(store *s)
{
    /* schema changes run outside the group-commit loop: stop it (it gives its connection back) first */
    pg_store *q = PGS(s);
    pg_writer_stop(q);
    int rc = STORE_UNAVAILABLE;
    pg_conn *c = pg_pool_acquire(q->pool);
    char err[256];
    if (c) {
        rc = drop_all(c);
        if (rc == STORE_OK && pg_schema_migrate(c, err, sizeof err) != 0) {
            log_error("recreate: %s", err);
            rc = STORE_ERROR;
        }
        pg_pool_release(q->pool, c);
    }
    /* statements prepared on pooled connections were planned for the dropped tables */
    pg_pool_flush(q->pool);
    if (pg_writer_start(q, err, sizeof err) != 0)
        return STORE_ERROR;
    return rc;
}

__attribute__((format(printf, 4, 5))) static size_t addf(char *report, size_t len, size_t o, const char *fmt, ...)
{
    if (o >= len)
        return o;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(report + o, len - o, fmt, ap);
    va_end(ap);
    return k < 0 ? o : o + (size_t)k;
}

static int op_validate(store *s, char *report, size_t len)
{
    report[0] = '\0';
    pg_conn *c = pg_reader(PGS(s));
    if (!c) {
        snprintf(report, len, "database unavailable");
        return STORE_UNAVAILABLE;
    }
    size_t o = 0;
    int ok = 1;
    int v = pg_schema_version(c);
    if (v != PG_SCHEMA_VERSION) {
        o = addf(report, len, o, "schema version %d, expected %d; ", v, PG_SCHEMA_VERSION);
        ok = 0;
    }
    for (size_t i = 0; i < sizeof expected_relations / sizeof expected_relations[0]; i++) {
        const char *p[1] = {expected_relations[i]};
        if (pg_query_int(c, "SELECT count(*) FROM pg_catalog.pg_class WHERE relname = $1"
                            " AND relnamespace = current_schema()::regnamespace", 1, p) != 1) {
            o = addf(report, len, o, "missing %s; ", expected_relations[i]);
            ok = 0;
        }
    }
    for (size_t i = 0; i < sizeof expected_triggers / sizeof expected_triggers[0]; i++) {
        const char *p[1] = {expected_triggers[i]};
        if (pg_query_int(c, "SELECT count(*) FROM pg_catalog.pg_trigger t"
                            " JOIN pg_catalog.pg_class r ON r.oid = t.tgrelid"
                            " WHERE t.tgname = $1 AND r.relnamespace = current_schema()::regnamespace", 1, p) != 1) {
            o = addf(report, len, o, "missing trigger %s; ", expected_triggers[i]);
            ok = 0;
        }
    }
    if (ok) {
        int rc;
        PGresult *r = pg_run(c,
            "SELECT"
            " (SELECT count(*) FROM messages WHERE tsv IS DISTINCT FROM to_tsvector('memfuse_english', content)),"
            " (SELECT count(*) FROM knowledge WHERE tsv IS DISTINCT FROM to_tsvector('memfuse_english', content)),"
            " (SELECT count(*) FROM message_vectors WHERE length(vec) <> 4 * dim)"
            "  + (SELECT count(*) FROM knowledge_vectors WHERE length(vec) <> 4 * dim)"
            "  + (SELECT count(*) FROM episode_vectors WHERE length(vec) <> 4 * dim)"
            "  + (SELECT count(*) FROM fact_vectors WHERE length(vec) <> 4 * dim),"
            " (SELECT count(*) FROM messages m WHERE m.session_id <> (SELECT r.session_id FROM rounds r"
            "   WHERE r.id = m.round_id)),"
            " (SELECT count(*) FROM episodes WHERE tsv IS DISTINCT FROM to_tsvector('memfuse_english', content)),"
            " (SELECT count(*) FROM facts WHERE tsv IS DISTINCT FROM to_tsvector('memfuse_english', " PG_FACT_TEXT ")),"
            /* rounds in a flush of another session; layer rows that disagree with their flush */
            " (SELECT count(*) FROM rounds r JOIN flushes f ON f.id = r.flush_id WHERE f.session_id <> r.session_id)"
            "  + (SELECT count(*) FROM episodes e JOIN flushes f ON f.id = e.flush_id"
            "     WHERE f.session_id <> e.session_id OR f.user_id <> e.user_id)"
            "  + (SELECT count(*) FROM facts x JOIN flushes f ON f.id = x.flush_id"
            "     WHERE f.session_id <> x.session_id OR f.user_id <> x.user_id),"
            /* facts naming a missing flush or episode (foreign keys forbid it; checked all the same) */
            " (SELECT count(*) FROM facts x WHERE (x.flush_id IS NOT NULL AND NOT EXISTS"
            "   (SELECT 1 FROM flushes f WHERE f.id = x.flush_id)) OR (x.episode_id IS NOT NULL AND NOT EXISTS"
            "   (SELECT 1 FROM episodes e WHERE e.id = x.episode_id))),"
            /* lineage: a current fact is open and succeeded by nothing; a retired one is closed; only
             * current facts have vectors */
            " (SELECT count(*) FROM facts WHERE (status = 0) <> (valid_to IS NULL)"
            "   OR (status = 0 AND superseded_by IS NOT NULL) OR status NOT IN (0, 1, 2, 3))"
            "  + (SELECT count(*) FROM fact_vectors v JOIN facts x ON x.seq = v.seq WHERE x.status <> 0),"
            " (SELECT count(*) FROM flushes WHERE m1_state NOT IN (0, 1, 2) OR m2_state NOT IN (0, 1, 2)),"
            /* each message's context is the message before it in its session */
            " (SELECT count(*) FROM (SELECT seq, ctx, lag(content) OVER (PARTITION BY session_id"
            "   ORDER BY created_at, seq) AS prev FROM messages) x"
            "   WHERE x.ctx IS DISTINCT FROM to_tsvector('memfuse_english', x.prev))",
            0, NULL, &rc);
        if (!r) {
            o = addf(report, len, o, "cannot check the data (%s); ", store_rc_name(rc));
            ok = 0;
        } else {
            long long mk = pg_get_i64(r, 0, 0), kk = pg_get_i64(r, 0, 1), bad = pg_get_i64(r, 0, 2);
            long long cross = pg_get_i64(r, 0, 3), ek = pg_get_i64(r, 0, 4), fk = pg_get_i64(r, 0, 5);
            long long layer_cross = pg_get_i64(r, 0, 6), dangling = pg_get_i64(r, 0, 7);
            long long lineage = pg_get_i64(r, 0, 8), states = pg_get_i64(r, 0, 9), stale = pg_get_i64(r, 0, 10);
            PQclear(r);
            if (stale) {
                o = addf(report, len, o, "keyword context of %lld messages out of date; ", stale);
                ok = 0;
            }
            if (mk || kk || ek || fk) {
                o = addf(report, len, o, "keyword index out of sync (%lld messages, %lld knowledge, %lld episodes,"
                         " %lld facts); ", mk, kk, ek, fk);
                ok = 0;
            }
            if (layer_cross) {
                o = addf(report, len, o, "%lld rounds, episodes or facts disagree with their flush; ", layer_cross);
                ok = 0;
            }
            if (dangling) {
                o = addf(report, len, o, "%lld facts reference a missing flush or episode; ", dangling);
                ok = 0;
            }
            if (lineage) {
                o = addf(report, len, o, "%lld facts with an inconsistent status, validity or vector; ", lineage);
                ok = 0;
            }
            if (states) {
                o = addf(report, len, o, "%lld flushes with an unknown layer state; ", states);
                ok = 0;
            }
            if (bad) {
                o = addf(report, len, o, "%lld vectors with a wrong size; ", bad);
                ok = 0;
            }
            if (cross) {
                o = addf(report, len, o, "%lld messages in a round of another session; ", cross);
                ok = 0;
            }
        }
    }
    pg_reader_done(PGS(s), c);
    return ok ? STORE_OK : STORE_ERROR;
}

void pg_ops_admin(store_ops *ops)
{
    ops->counts = op_counts;
    ops->reset = op_reset;
    ops->recreate = op_recreate;
    ops->validate = op_validate;
}
