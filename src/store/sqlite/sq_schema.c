/* sq_schema — the SQLite schema, its versioned migrations, and the admin operations over it
 * (counts, reset, recreate, validate).
 *
 * The version lives in PRAGMA user_version. Migration N takes the schema from version N-1 to N; all
 * pending migrations run in one transaction at open, so a crash mid-migration leaves the old version.
 * Keyword indexes (FTS5, porter + unicode61 without diacritics) are kept in sync by triggers, so they
 * change in the same transaction as the rows they index, cascaded deletes included. Migration 2 adds the
 * LLM layers (flushes, episodes, facts and their vectors; sq_layers.c); migration 3 indexes each message with
 * the one before it (message_fts.prev); migration 4 keys keyword rows by user (users.ukey), so a search reads
 * its user's rows only. An older database migrates in place at open. */
#include "store/sqlite/sq.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

/* The keyword row key of a unit row ("new" or "old" in a trigger) without its rid: its user's ukey * 2^32
 * (migration 4). */
#define UKEY(row) "(SELECT ukey FROM users WHERE id = " row ".user_id) * 4294967296"

static const char *const migrations[] = {
    /* 1: the initial schema */
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
    /* Vectors of messages and knowledge (filled by the embedding pipeline); dropped when the text changes */
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
    "  DELETE FROM knowledge_vectors WHERE rid = old.rid; END;",

    /* 2: the LLM layers (sq_layers.c). A flush is one consolidation of one session's rounds (rounds.flush_id
     * names it); episodes (M1) and facts (M2) come from flushes and carry the flush's user, session and
     * agent, so deleting any of those takes them along. Facts keep their lineage: supersedes /
     * superseded_by point at other facts and become NULL when those are deleted. Only current facts
     * (status 0) are units: they alone are in fact_fts (their text and entity names, so a query can find a
     * fact by an entity it names: store_type "graph"), and retiring a fact drops its vector. */
    "CREATE TABLE flushes("
    "  id TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    "  agent_id TEXT NOT NULL, created_at TEXT NOT NULL,"
    "  m1_state INTEGER NOT NULL DEFAULT 0, m2_state INTEGER NOT NULL DEFAULT 0,"
    "  m1_attempts INTEGER NOT NULL DEFAULT 0, m2_attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at TEXT, last_error TEXT);"
    "CREATE INDEX flushes_pending ON flushes(id) WHERE m1_state = 0 OR m2_state = 0;"
    "CREATE INDEX flushes_user ON flushes(user_id);"
    "CREATE INDEX flushes_session ON flushes(session_id);"
    "ALTER TABLE rounds ADD COLUMN flush_id TEXT REFERENCES flushes(id) ON DELETE SET NULL;"
    "CREATE INDEX rounds_flush ON rounds(flush_id) WHERE flush_id IS NOT NULL;"
    "CREATE TABLE episodes("
    "  rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    "  agent_id TEXT NOT NULL,"
    "  flush_id TEXT NOT NULL REFERENCES flushes(id) ON DELETE CASCADE,"
    "  content TEXT NOT NULL, occurred_at TEXT, participants TEXT, source_ids TEXT,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE INDEX episodes_user ON episodes(user_id, created_at);"
    "CREATE INDEX episodes_session ON episodes(session_id, created_at);"
    "CREATE INDEX episodes_flush ON episodes(flush_id);"
    "CREATE TABLE facts("
    "  rid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  session_id TEXT REFERENCES sessions(id) ON DELETE CASCADE,"
    "  agent_id TEXT,"
    "  flush_id TEXT REFERENCES flushes(id) ON DELETE CASCADE,"
    "  episode_id TEXT REFERENCES episodes(id) ON DELETE SET NULL,"
    "  content TEXT NOT NULL, fact_type TEXT, entities TEXT, source_ids TEXT, content_hash TEXT,"
    "  confidence REAL NOT NULL DEFAULT 0, status INTEGER NOT NULL DEFAULT 0,"
    "  valid_from TEXT NOT NULL, valid_to TEXT,"
    "  superseded_by TEXT REFERENCES facts(id) ON DELETE SET NULL,"
    "  supersedes TEXT REFERENCES facts(id) ON DELETE SET NULL,"
    "  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE INDEX facts_user ON facts(user_id, created_at);"
    "CREATE INDEX facts_hash ON facts(user_id, content_hash) WHERE status = 0;"
    "CREATE INDEX facts_session ON facts(session_id);"
    "CREATE INDEX facts_flush ON facts(flush_id);"
    "CREATE INDEX facts_episode ON facts(episode_id);"
    "CREATE INDEX facts_supersedes ON facts(supersedes);"
    "CREATE INDEX facts_superseded_by ON facts(superseded_by);"
    "CREATE TABLE episode_vectors("
    "  rid INTEGER PRIMARY KEY REFERENCES episodes(rid) ON DELETE CASCADE,"
    "  model TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL);"
    "CREATE TABLE fact_vectors("
    "  rid INTEGER PRIMARY KEY REFERENCES facts(rid) ON DELETE CASCADE,"
    "  model TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL);"
    "CREATE VIRTUAL TABLE episode_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');"
    "CREATE VIRTUAL TABLE fact_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');"
    "CREATE TRIGGER episodes_ai AFTER INSERT ON episodes BEGIN"
    "  INSERT INTO episode_fts(rowid, body) VALUES (new.rid, new.content); END;"
    "CREATE TRIGGER episodes_ad AFTER DELETE ON episodes BEGIN"
    "  DELETE FROM episode_fts WHERE rowid = old.rid; END;"
    "CREATE TRIGGER episodes_au AFTER UPDATE OF content ON episodes BEGIN"
    "  UPDATE episode_fts SET body = new.content WHERE rowid = old.rid;"
    "  DELETE FROM episode_vectors WHERE rid = old.rid; END;"
    "CREATE TRIGGER facts_ai AFTER INSERT ON facts WHEN new.status = 0 BEGIN"
    "  INSERT INTO fact_fts(rowid, body) VALUES (new.rid, new.content || ' ' || coalesce(new.entities, '')); END;"
    "CREATE TRIGGER facts_ad AFTER DELETE ON facts BEGIN"
    "  DELETE FROM fact_fts WHERE rowid = old.rid; END;"
    /* a text change or a retirement: out of the keyword index and without a vector; back in while current */
    "CREATE TRIGGER facts_au AFTER UPDATE OF content, status ON facts"
    "  WHEN new.content IS NOT old.content OR new.status IS NOT old.status BEGIN"
    "  DELETE FROM fact_fts WHERE rowid = old.rid;"
    "  DELETE FROM fact_vectors WHERE rid = old.rid;"
    "  INSERT INTO fact_fts(rowid, body) SELECT new.rid, new.content || ' ' || coalesce(new.entities, '')"
    "  WHERE new.status = 0; END;",

    /* 3: a message's keyword row also holds the message before it in its session (column prev), which the
     * search weighs little (sq_search.c): the context makes a reply findable by the words of what it answers
     * and smooths document frequencies and lengths (BENCHMARKS.md, retrieval quality). The session's order
     * is created_at, then insertion (rid); an insert, a delete or a text change re-links the message after
     * it (an insert is normally the session's last, unless the clock went back). */
    "DROP TRIGGER messages_ai; DROP TRIGGER messages_ad; DROP TRIGGER messages_au; DROP TABLE message_fts;"
    "CREATE VIRTUAL TABLE message_fts USING fts5(body, prev, tokenize = 'porter unicode61 remove_diacritics 2');"
    "INSERT INTO message_fts(rowid, body, prev)"
    "  SELECT rid, content, lag(content) OVER (PARTITION BY session_id ORDER BY created_at, rid) FROM messages;"
    "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN"
    "  INSERT INTO message_fts(rowid, body, prev) VALUES (new.rid, new.content,"
    "    (SELECT content FROM messages WHERE session_id = new.session_id"
    "     AND (created_at, rid) < (new.created_at, new.rid) ORDER BY created_at DESC, rid DESC LIMIT 1));"
    "  UPDATE message_fts SET prev = new.content"
    "  WHERE rowid = (SELECT rid FROM messages WHERE session_id = new.session_id"
    "    AND (created_at, rid) > (new.created_at, new.rid) ORDER BY created_at, rid LIMIT 1); END;"
    "CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN"
    "  DELETE FROM message_fts WHERE rowid = old.rid;"
    "  UPDATE message_fts SET prev = (SELECT content FROM messages WHERE session_id = old.session_id"
    "    AND (created_at, rid) < (old.created_at, old.rid) ORDER BY created_at DESC, rid DESC LIMIT 1)"
    "  WHERE rowid = (SELECT rid FROM messages WHERE session_id = old.session_id"
    "    AND (created_at, rid) > (old.created_at, old.rid) ORDER BY created_at, rid LIMIT 1); END;"
    "CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN"
    "  UPDATE message_fts SET body = new.content WHERE rowid = old.rid;"
    "  UPDATE message_fts SET prev = new.content"
    "  WHERE rowid = (SELECT rid FROM messages WHERE session_id = new.session_id"
    "    AND (created_at, rid) > (new.created_at, new.rid) ORDER BY created_at, rid LIMIT 1);"
    "  DELETE FROM message_vectors WHERE rid = old.rid; END;",

    /* 4: keyword rows keyed by user, rowid = users.ukey * 2^32 + the unit's rid (SQ_FTS_KEY), so a search
     * reads one rowid range, its user's, instead of every user's rows that match (BENCHMARKS.md, "keyword
     * search with many users"). users.ukey is a stable number per user (the implicit rowid of a table whose
     * key is not an INTEGER PRIMARY KEY may change in a VACUUM); a unit's rid stays below 2^32. A user's
     * deletion removes its keyword rows first (users_bd): the units' delete triggers, run by the cascade
     * after the user row is gone, no longer find its ukey. The keyword tables hold derived data only: they
     * are rebuilt from the units. */
    "ALTER TABLE users ADD COLUMN ukey INTEGER;"
    "UPDATE users SET ukey = rowid;"
    "CREATE UNIQUE INDEX users_ukey ON users(ukey);"
    "CREATE TRIGGER users_ai AFTER INSERT ON users WHEN new.ukey IS NULL BEGIN"
    "  UPDATE users SET ukey = (SELECT coalesce(max(ukey), 0) + 1 FROM users) WHERE id = new.id; END;"
    "CREATE TRIGGER users_bd BEFORE DELETE ON users BEGIN"
    "  DELETE FROM message_fts WHERE rowid BETWEEN old.ukey * 4294967296 AND old.ukey * 4294967296 + 4294967295;"
    "  DELETE FROM knowledge_fts WHERE rowid BETWEEN old.ukey * 4294967296 AND old.ukey * 4294967296 + 4294967295;"
    "  DELETE FROM episode_fts WHERE rowid BETWEEN old.ukey * 4294967296 AND old.ukey * 4294967296 + 4294967295;"
    "  DELETE FROM fact_fts WHERE rowid BETWEEN old.ukey * 4294967296 AND old.ukey * 4294967296 + 4294967295;"
    "  END;"
    "DROP TRIGGER messages_ai; DROP TRIGGER messages_ad; DROP TRIGGER messages_au; DROP TABLE message_fts;"
    "DROP TRIGGER knowledge_ai; DROP TRIGGER knowledge_ad; DROP TRIGGER knowledge_au; DROP TABLE knowledge_fts;"
    "DROP TRIGGER episodes_ai; DROP TRIGGER episodes_ad; DROP TRIGGER episodes_au; DROP TABLE episode_fts;"
    "DROP TRIGGER facts_ai; DROP TRIGGER facts_ad; DROP TRIGGER facts_au; DROP TABLE fact_fts;"
    "CREATE VIRTUAL TABLE message_fts USING fts5(body, prev, tokenize = 'porter unicode61 remove_diacritics 2');"
    "CREATE VIRTUAL TABLE knowledge_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');"
    "CREATE VIRTUAL TABLE episode_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');"
    "CREATE VIRTUAL TABLE fact_fts USING fts5(body, tokenize = 'porter unicode61 remove_diacritics 2');"
    "INSERT INTO message_fts(rowid, body, prev)"
    "  SELECT u.ukey * 4294967296 + m.rid, m.content,"
    "    lag(m.content) OVER (PARTITION BY m.session_id ORDER BY m.created_at, m.rid)"
    "  FROM messages m JOIN users u ON u.id = m.user_id;"
    "INSERT INTO knowledge_fts(rowid, body)"
    "  SELECT u.ukey * 4294967296 + k.rid, k.content FROM knowledge k JOIN users u ON u.id = k.user_id;"
    "INSERT INTO episode_fts(rowid, body)"
    "  SELECT u.ukey * 4294967296 + e.rid, e.content FROM episodes e JOIN users u ON u.id = e.user_id;"
    "INSERT INTO fact_fts(rowid, body)"
    "  SELECT u.ukey * 4294967296 + f.rid, f.content || ' ' || coalesce(f.entities, '')"
    "  FROM facts f JOIN users u ON u.id = f.user_id WHERE f.status = 0;"
    "CREATE TRIGGER messages_ai AFTER INSERT ON messages BEGIN"
    "  INSERT INTO message_fts(rowid, body, prev) VALUES (" UKEY("new") " + new.rid, new.content,"
    "    (SELECT content FROM messages WHERE session_id = new.session_id"
    "     AND (created_at, rid) < (new.created_at, new.rid) ORDER BY created_at DESC, rid DESC LIMIT 1));"
    "  UPDATE message_fts SET prev = new.content"
    "  WHERE rowid = " UKEY("new") " + (SELECT rid FROM messages WHERE session_id = new.session_id"
    "    AND (created_at, rid) > (new.created_at, new.rid) ORDER BY created_at, rid LIMIT 1); END;"
    "CREATE TRIGGER messages_ad AFTER DELETE ON messages BEGIN"
    "  DELETE FROM message_fts WHERE rowid = " UKEY("old") " + old.rid;"
    "  UPDATE message_fts SET prev = (SELECT content FROM messages WHERE session_id = old.session_id"
    "    AND (created_at, rid) < (old.created_at, old.rid) ORDER BY created_at DESC, rid DESC LIMIT 1)"
    "  WHERE rowid = " UKEY("old") " + (SELECT rid FROM messages WHERE session_id = old.session_id"
    "    AND (created_at, rid) > (old.created_at, old.rid) ORDER BY created_at, rid LIMIT 1); END;"
    "CREATE TRIGGER messages_au AFTER UPDATE OF content ON messages BEGIN"
    "  UPDATE message_fts SET body = new.content WHERE rowid = " UKEY("old") " + old.rid;"
    "  UPDATE message_fts SET prev = new.content"
    "  WHERE rowid = " UKEY("new") " + (SELECT rid FROM messages WHERE session_id = new.session_id"
    "    AND (created_at, rid) > (new.created_at, new.rid) ORDER BY created_at, rid LIMIT 1);"
    "  DELETE FROM message_vectors WHERE rid = old.rid; END;"
    "CREATE TRIGGER knowledge_ai AFTER INSERT ON knowledge BEGIN"
    "  INSERT INTO knowledge_fts(rowid, body) VALUES (" UKEY("new") " + new.rid, new.content); END;"
    "CREATE TRIGGER knowledge_ad AFTER DELETE ON knowledge BEGIN"
    "  DELETE FROM knowledge_fts WHERE rowid = " UKEY("old") " + old.rid; END;"
    "CREATE TRIGGER knowledge_au AFTER UPDATE OF content ON knowledge BEGIN"
    "  UPDATE knowledge_fts SET body = new.content WHERE rowid = " UKEY("old") " + old.rid;"
    "  DELETE FROM knowledge_vectors WHERE rid = old.rid; END;"
    "CREATE TRIGGER episodes_ai AFTER INSERT ON episodes BEGIN"
    "  INSERT INTO episode_fts(rowid, body) VALUES (" UKEY("new") " + new.rid, new.content); END;"
    "CREATE TRIGGER episodes_ad AFTER DELETE ON episodes BEGIN"
    "  DELETE FROM episode_fts WHERE rowid = " UKEY("old") " + old.rid; END;"
    "CREATE TRIGGER episodes_au AFTER UPDATE OF content ON episodes BEGIN"
    "  UPDATE episode_fts SET body = new.content WHERE rowid = " UKEY("old") " + old.rid;"
    "  DELETE FROM episode_vectors WHERE rid = old.rid; END;"
    "CREATE TRIGGER facts_ai AFTER INSERT ON facts WHEN new.status = 0 BEGIN"
    "  INSERT INTO fact_fts(rowid, body)"
    "  VALUES (" UKEY("new") " + new.rid, new.content || ' ' || coalesce(new.entities, '')); END;"
    "CREATE TRIGGER facts_ad AFTER DELETE ON facts BEGIN"
    "  DELETE FROM fact_fts WHERE rowid = " UKEY("old") " + old.rid; END;"
    "CREATE TRIGGER facts_au AFTER UPDATE OF content, status ON facts"
    "  WHEN new.content IS NOT old.content OR new.status IS NOT old.status BEGIN"
    "  DELETE FROM fact_fts WHERE rowid = " UKEY("old") " + old.rid;"
    "  DELETE FROM fact_vectors WHERE rid = old.rid;"
    "  INSERT INTO fact_fts(rowid, body)"
    "  SELECT " UKEY("new") " + new.rid, new.content || ' ' || coalesce(new.entities, '') WHERE new.status = 0;"
    "  END;",
};

const int SQ_SCHEMA_VERSION = (int)(sizeof migrations / sizeof migrations[0]);

/* Every object the current schema must have, for validate. */
static const char *const expected_objects[] = {
    "users", "agents", "sessions", "rounds", "messages", "knowledge", "api_keys", "message_vectors",
    "knowledge_vectors", "message_fts", "knowledge_fts", "sessions_agent", "sessions_name",
    "rounds_session", "rounds_buffered", "messages_session_time", "messages_round", "messages_user",
    "knowledge_user", "api_keys_user", "messages_ai", "messages_ad", "messages_au", "knowledge_ai",
    "knowledge_ad", "knowledge_au",
    "flushes", "flushes_pending", "flushes_user", "flushes_session", "rounds_flush", "episodes", "episodes_user",
    "episodes_session", "episodes_flush", "facts", "facts_user", "facts_hash", "facts_session", "facts_flush",
    "facts_episode", "facts_supersedes", "facts_superseded_by", "episode_vectors", "fact_vectors", "episode_fts",
    "fact_fts", "episodes_ai", "episodes_ad", "episodes_au", "facts_ai", "facts_ad", "facts_au",
    "users_ukey", "users_ai", "users_bd",
};

/* Tables in deletion order (children first) for reset. */
static const char *const data_tables[] = {
    "fact_vectors", "episode_vectors", "facts", "episodes", "message_vectors", "knowledge_vectors", "api_keys",
    "knowledge", "messages", "rounds", "flushes", "sessions", "agents", "users",
};

int sq_schema_version(sq_conn *c) { return (int)sq_query_int(c, "PRAGMA user_version", NULL); }

int sq_schema_migrate(sq_conn *c, char *err, size_t errlen)
{
    int v = sq_schema_version(c);
    if (v < 0) {
        snprintf(err, errlen, "cannot read the schema version: %s", sqlite3_errmsg(c->db));
        return -1;
    }
    if (v > SQ_SCHEMA_VERSION) {
        snprintf(err, errlen, "database schema version %d is newer than this server's %d", v, SQ_SCHEMA_VERSION);
        return -1;
    }
    if (v == SQ_SCHEMA_VERSION)
        return 0;
    if (sq_exec(c, "BEGIN IMMEDIATE") != SQLITE_OK) {
        snprintf(err, errlen, "cannot lock the database for migration: %s", sqlite3_errmsg(c->db));
        return -1;
    }
    v = sq_schema_version(c); /* another process may have migrated meanwhile */
    for (int i = v; i < SQ_SCHEMA_VERSION; i++) {
        char *msg = NULL;
        if (sqlite3_exec(c->db, migrations[i], NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "migration %d failed: %s", i + 1, msg ? msg : "?");
            sqlite3_free(msg);
            sq_exec(c, "ROLLBACK");
            return -1;
        }
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", i + 1);
        sq_exec(c, sql);
        log_info("sqlite schema migrated to version %d", i + 1);
    }
    if (sq_exec(c, "COMMIT") != SQLITE_OK) {
        snprintf(err, errlen, "migration commit failed: %s", sqlite3_errmsg(c->db));
        sq_exec(c, "ROLLBACK");
        return -1;
    }
    return 0;
}

/* --- admin operations ------------------------------------------------------------------------------ */

static int64_t count_rows(sq_conn *c, const char *table)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return sq_query_int(c, sql, NULL);
}

static int op_counts(store *s, store_counts *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sq_exec(c, "BEGIN"); /* one snapshot for all counts */
    out->schema_version = sq_schema_version(c);
    out->users = count_rows(c, "users");
    out->agents = count_rows(c, "agents");
    out->sessions = count_rows(c, "sessions");
    out->rounds = count_rows(c, "rounds");
    out->messages = count_rows(c, "messages");
    out->knowledge = count_rows(c, "knowledge");
    out->api_keys = count_rows(c, "api_keys");
    out->vectors = sq_query_int(c, "SELECT (SELECT count(*) FROM message_vectors) + (SELECT count(*) FROM"
                                   " knowledge_vectors) + (SELECT count(*) FROM episode_vectors) + (SELECT count(*)"
                                   " FROM fact_vectors)", NULL);
    out->episodes = count_rows(c, "episodes");
    out->facts = sq_query_int(c, "SELECT count(*) FROM facts WHERE status = 0", NULL);
    out->flushes_pending = sq_query_int(c, "SELECT count(*) FROM flushes WHERE m1_state = 0 OR m2_state = 0", NULL);
    sq_exec(c, "COMMIT");
    sq_reader_put(SQ(s), c);
    return out->users < 0 || out->messages < 0 || out->vectors < 0 || out->flushes_pending < 0 ? STORE_ERROR
                                                                                                 : STORE_OK;
}

static int job_reset(sq_conn *c, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sizeof data_tables / sizeof data_tables[0]; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "DELETE FROM %s", data_tables[i]);
        int rc = sq_exec(c, sql);
        if (rc != SQLITE_OK)
            return sq_rc(rc) == STORE_OK ? STORE_ERROR : sq_rc(rc);
    }
    /* the keyword indexes were emptied row by row by the delete triggers */
    return STORE_OK;
}

static int op_reset(store *s) { return sq_write(SQ(s), job_reset, NULL); }

static int drop_all(sq_conn *c)
{
    /* collect names first: dropping while iterating sqlite_master is not allowed. Triggers go with their
     * tables, and FTS5 shadow tables (created with quoted names: "CREATE TABLE '...") with their virtual
     * table, so neither is selected. */
    char names[128][64];
    char types[128][16];
    int n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT type, name FROM sqlite_master WHERE type IN ('table','view')"
                           " AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE 'CREATE TABLE ''%'",
                           -1, &st, NULL) != SQLITE_OK)
        return STORE_ERROR;
    while (sqlite3_step(st) == SQLITE_ROW && n < 128) {
        snprintf(types[n], sizeof types[n], "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(names[n], sizeof names[n], "%s", (const char *)sqlite3_column_text(st, 1));
        n++;
    }
    sqlite3_finalize(st);
    sq_exec(c, "PRAGMA foreign_keys=OFF");
    int rc = SQLITE_OK;
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        char sql[sizeof names[0] + sizeof types[0] + 32];
        if (snprintf(sql, sizeof sql, "DROP %s IF EXISTS \"%s\"", types[i], names[i]) >= (int)sizeof sql)
            return STORE_ERROR;
        rc = sq_exec(c, sql);
    }
    sq_exec(c, "PRAGMA foreign_keys=ON");
    if (rc == SQLITE_OK)
        rc = sq_exec(c, "PRAGMA user_version = 0");
    return rc == SQLITE_OK ? STORE_OK : STORE_ERROR;
}

static int op_recreate(store *s)
{
    /* schema changes run on the writer connection, outside the group-commit loop: stop it first */
    sq_store *q = SQ(s);
    sq_writer_stop(q);
    int rc = drop_all(&q->writer);
    char err[256];
    if (rc == STORE_OK && sq_schema_migrate(&q->writer, err, sizeof err) != 0) {
        log_error("recreate: %s", err);
        rc = STORE_ERROR;
    }
    /* cached statements of the writer refer to dropped tables; start again with an empty cache */
    if (sq_writer_start(q, err, sizeof err) != 0)
        return STORE_ERROR;
    return rc;
}

static int op_validate(store *s, char *report, size_t len)
{
    sq_conn *c = sq_reader_get(SQ(s));
    size_t o = 0;
    report[0] = '\0';
    int ok = 1;
    int v = sq_schema_version(c);
    if (v != SQ_SCHEMA_VERSION) {
        o += (size_t)snprintf(report + o, len - o, "schema version %d, expected %d; ", v, SQ_SCHEMA_VERSION);
        ok = 0;
    }
    for (size_t i = 0; i < sizeof expected_objects / sizeof expected_objects[0] && o < len; i++) {
        if (sq_query_int(c, "SELECT count(*) FROM sqlite_master WHERE name = ?1", expected_objects[i]) != 1) {
            o += (size_t)snprintf(report + o, len - o, "missing %s; ", expected_objects[i]);
            ok = 0;
        }
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW && o < len) {
            const char *r = (const char *)sqlite3_column_text(st, 0);
            if (r && strcmp(r, "ok") != 0) {
                o += (size_t)snprintf(report + o, len - o, "integrity: %s; ", r);
                ok = 0;
            }
        }
        sqlite3_finalize(st);
    }
    if (ok && sqlite3_prepare_v2(c->db, "PRAGMA foreign_key_check", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW && o < len) {
            o += (size_t)snprintf(report + o, len - o, "foreign key violation in %s; ",
                                  (const char *)sqlite3_column_text(st, 0));
            ok = 0;
        }
        sqlite3_finalize(st);
    }
    if (ok && v == SQ_SCHEMA_VERSION) {
        /* keyword indexes must hold exactly the rows they index */
        int64_t m = sq_query_int(c, "SELECT count(*) FROM messages", NULL);
        int64_t mf = sq_query_int(c, "SELECT count(*) FROM message_fts", NULL);
        int64_t k = sq_query_int(c, "SELECT count(*) FROM knowledge", NULL);
        int64_t kf = sq_query_int(c, "SELECT count(*) FROM knowledge_fts", NULL);
        int64_t e = sq_query_int(c, "SELECT count(*) FROM episodes", NULL);
        int64_t ef = sq_query_int(c, "SELECT count(*) FROM episode_fts", NULL);
        int64_t f = sq_query_int(c, "SELECT count(*) FROM facts WHERE status = 0", NULL);
        int64_t ff = sq_query_int(c, "SELECT count(*) FROM fact_fts", NULL);
        /* each message's context column holds the text of the message before it in its session */
        int64_t stale = sq_query_int(c,
                                     "SELECT count(*) FROM (SELECT rid, lag(content) OVER (PARTITION BY session_id"
                                     " ORDER BY created_at, rid) AS p, user_id FROM messages) m"
                                     " JOIN users u ON u.id = m.user_id"
                                     " JOIN message_fts f ON f.rowid = u.ukey * 4294967296 + m.rid"
                                     " WHERE f.prev IS NOT m.p", NULL);
        /* and every unit's keyword row sits at its key (its user's range) */
        int64_t placed = sq_query_int(
            c,
            "SELECT (SELECT count(*) FROM messages m JOIN users u ON u.id = m.user_id"
            "        JOIN message_fts f ON f.rowid = u.ukey * 4294967296 + m.rid)"
            " + (SELECT count(*) FROM knowledge k JOIN users u ON u.id = k.user_id"
            "    JOIN knowledge_fts f ON f.rowid = u.ukey * 4294967296 + k.rid)"
            " + (SELECT count(*) FROM episodes e JOIN users u ON u.id = e.user_id"
            "    JOIN episode_fts f ON f.rowid = u.ukey * 4294967296 + e.rid)"
            " + (SELECT count(*) FROM facts x JOIN users u ON u.id = x.user_id"
            "    JOIN fact_fts f ON f.rowid = u.ukey * 4294967296 + x.rid WHERE x.status = 0)",
            NULL);
        if (stale > 0) {
            o += (size_t)snprintf(report + o, len - o, "keyword context of %lld messages out of date; ",
                                  (long long)stale);
            ok = 0;
        }
        if (m != mf || k != kf || e != ef || f != ff || placed != m + k + e + f) {
            o += (size_t)snprintf(report + o, len - o,
                                  "keyword index out of sync (%lld/%lld, %lld/%lld, %lld/%lld, %lld/%lld; %lld at"
                                  " their key); ",
                                  (long long)m, (long long)mf, (long long)k, (long long)kf, (long long)e,
                                  (long long)ef, (long long)f, (long long)ff, (long long)placed);
            ok = 0;
        }
        /* layer rows that disagree with their flush */
        int64_t bad = sq_query_int(
            c,
            "SELECT (SELECT count(*) FROM rounds r JOIN flushes f ON f.id = r.flush_id"
            "        WHERE f.session_id <> r.session_id)"
            " + (SELECT count(*) FROM episodes e JOIN flushes f ON f.id = e.flush_id"
            "    WHERE f.session_id <> e.session_id OR f.user_id <> e.user_id)"
            " + (SELECT count(*) FROM facts x JOIN flushes f ON f.id = x.flush_id"
            "    WHERE f.user_id <> x.user_id OR f.session_id IS NOT x.session_id)",
            NULL);
        if (bad != 0 && o < len) {
            o += (size_t)snprintf(report + o, len - o, "%lld layer rows disagree with their flush; ", (long long)bad);
            ok = 0;
        }
        /* only current facts are units (no vector once retired), and a current fact has no successor or end */
        int64_t retired_vec = sq_query_int(
            c, "SELECT count(*) FROM fact_vectors v JOIN facts x ON x.rid = v.rid WHERE x.status <> 0", NULL);
        int64_t lineage = sq_query_int(
            c, "SELECT count(*) FROM facts WHERE status = 0 AND (superseded_by IS NOT NULL OR valid_to IS NOT NULL)",
            NULL);
        if ((retired_vec != 0 || lineage != 0) && o < len) {
            o += (size_t)snprintf(report + o, len - o, "%lld vectors of retired facts, %lld current facts retired; ",
                                  (long long)retired_vec, (long long)lineage);
            ok = 0;
        }
    }
    sq_reader_put(SQ(s), c);
    return ok ? STORE_OK : STORE_ERROR;
}

void sq_ops_admin(store_ops *ops)
{
    ops->counts = op_counts;
    ops->reset = op_reset;
    ops->recreate = op_recreate;
    ops->validate = op_validate;
}
