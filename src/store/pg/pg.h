/* pg — internals of the PostgreSQL backend (not included above src/store).
 *
 * Same schema concepts as the SQLite backend (store/sqlite/sq_schema.c): text ids and wire-format
 * timestamps (COLLATE "C", so string order is time order), a bigserial `seq` on every unit table
 * (messages, knowledge, episodes, facts) that orders ties (the rowid's role in SQLite), keyword search
 * through a generated tsvector column ('english' config) with a GIN index, vectors as bytea with model and
 * dimension.
 *
 * Connections come from a pg_pool (pg_pool.h). Reads take one for the call; multi-statement reads run in
 * one REPEATABLE READ READ ONLY transaction (one snapshot). Writes are group-committed (pg_writer.c): one
 * writer thread holds a dedicated pool connection and runs every job queued so far in one transaction,
 * each job inside its own SAVEPOINT; if the connection breaks mid-batch, every job of the batch fails with
 * STORE_UNAVAILABLE (nothing of it was acknowledged) and the writer reconnects for the next batch.
 *
 * Statements (pg_exec.c) are prepared once per connection, named after a hash of their SQL text; every
 * value is a parameter, never spliced into SQL. */
#ifndef MEMFUSE_PG_H
#define MEMFUSE_PG_H

#include <pthread.h>

#include "store/pg/pg_pool.h"
#include "store/store.h"

typedef struct pg_job pg_job;
typedef int (*pg_job_fn)(pg_conn *c, void *arg);

typedef struct pg_store {
    store base;
    pg_pool *pool;
    char *describe;
    ids_gen *ids;
    int flushes; /* store_config.flushes: consolidations record flushes for the LLM layers */

    /* writer */
    pg_conn *wconn; /* owned by the writer thread while it runs */
    pthread_t writer_thread;
    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cv;   /* jobs queued, or stop */
    pthread_cond_t done_cv; /* a batch finished */
    pg_job *wq_head, *wq_tail;
    int wq_n;                             /* jobs queued, not yet taken (wq_mu) */
    uint64_t w_batches, w_jobs;           /* transactions committed; jobs they carried (wq_mu) */
    int stopping;
    int writer_started;

    /* LISTEN/NOTIFY (pg_notify.c) */
    char *dsn;
    char token[17]; /* this process's mark on its own notifications */
    pthread_t listen_thread;
    int listening;
    _Atomic int listen_stop;
    void (*listen_cb)(void *ctx, const char *user_id);
    void *listen_ctx;
} pg_store;

#define PGS(s) ((pg_store *)(s))

/* --- pg_exec: running statements ------------------------------------------------------------------------ */

/* Runs sql with n text parameters (NULL entries are SQL NULL) as a per-connection prepared statement.
 * Returns the result (tuples or command ok) to PQclear, or NULL with *rc set to the mapped error. */
PGresult *pg_run(pg_conn *c, const char *sql, int n, const char *const *params, int *rc);
/* Same for statements without a result set; *affected (may be NULL) gets the row count. */
int pg_cmd(pg_conn *c, const char *sql, int n, const char *const *params, long *affected);
/* Runs SQL text directly (transaction control, DDL; may hold several statements). */
int pg_exec(pg_conn *c, const char *sql);
/* Maps a failed result (or NULL) on c to a store_rc; marks c broken on connection-level failures. */
int pg_error(pg_conn *c, const PGresult *r, const char *what);

typedef int (*pg_row_fn)(PGresult *r, int row, arena *a, void *dst);
/* All rows (at most max) through fn into an arena array of elem-byte records. */
int pg_collect(pg_conn *c, const char *sql, int n, const char *const *params, arena *a, size_t elem, pg_row_fn fn,
               void **out, size_t *n_out);
/* The first row into out, or STORE_NOT_FOUND. */
int pg_collect_one(pg_conn *c, const char *sql, int n, const char *const *params, arena *a, size_t elem,
                   pg_row_fn fn, void *out);
/* First column of the first row as int64; -1 on error or no row. */
int64_t pg_query_int(pg_conn *c, const char *sql, int n, const char *const *params);

const char *pg_dup(arena *a, PGresult *r, int row, int col); /* NULL for SQL NULL (or OOM) */
int pg_get_int(PGresult *r, int row, int col);
int64_t pg_get_i64(PGresult *r, int row, int col);
/* ids as a text[] literal for "$n::text[]" (quoted and escaped: array_in parses it, not SQL). */
char *pg_text_array(arena *a, const char *const *ids, size_t n);
char *pg_itoa(arena *a, int64_t v);

/* Reads: a pool connection (NULL: STORE_UNAVAILABLE) and its release. */
pg_conn *pg_reader(pg_store *s);
void pg_reader_done(pg_store *s, pg_conn *c);
/* BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY / COMMIT on a reader. */
int pg_snapshot_begin(pg_conn *c);
int pg_snapshot_end(pg_conn *c, int rc);

/* --- pg_writer: group commit ------------------------------------------------------------------------------ */
int pg_writer_start(pg_store *s, char *err, size_t errlen);
void pg_writer_stop(pg_store *s);
int pg_write(pg_store *s, pg_job_fn fn, void *arg);

/* --- pg_schema ------------------------------------------------------------------------------------------- */
extern const int PG_SCHEMA_VERSION;
int pg_schema_migrate(pg_conn *c, char *err, size_t errlen);
/* Migrates only up to version target (tests build an older schema with it); 0 or -1 with err. */
int pg_schema_migrate_to(pg_conn *c, int target, char *err, size_t errlen);
int pg_schema_version(pg_conn *c); /* 0: no schema; -1: error */

/* --- shared row readers and the layers' hook into consolidation --------------------------------------------- */

/* Columns pg_read_message (pg_messages.c) expects, over "messages m JOIN rounds r ON r.id = m.round_id". */
#define PG_MSG_COLS "m.id, m.session_id, m.round_id, m.role, m.content, m.created_at, m.updated_at, " \
                    "(r.status = 0)::int"
int pg_read_message(PGresult *r, int row, arena *a, void *dst);
/* Hit records (pg_vectors.c): pg_read_hit reads the columns type, id, content, role, created_at, updated_at,
 * session_id, session_name, agent_id, occurred_at, source_ids, fact_type, entities, valid_from, confidence
 * and, when the result has a 16th column, the score. The macros give the layer columns for each unit type
 * (episodes as e, facts as x, their sessions as s). */
int pg_read_hit(PGresult *r, int row, arena *a, void *dst);
#define PG_HIT_NO_LAYER_COLS "NULL, NULL, NULL, NULL, NULL, NULL"
#define PG_HIT_EPISODE_COLS "2, e.id, e.content, NULL, e.created_at, e.updated_at, e.session_id, s.name, e.agent_id," \
                            " e.occurred_at, e.source_ids, NULL, NULL, NULL, NULL"
#define PG_HIT_FACT_COLS "3, x.id, x.content, NULL, x.created_at, x.updated_at, x.session_id, s.name, x.agent_id," \
                         " NULL, x.source_ids, x.fact_type, x.entities, x.valid_from, x.confidence"
/* Records one flush per session among the n rounds just consolidated (ids), and links those rounds to it
 * (pg_layers.c). *own_flush (may be NULL) gets the flush of own_session, or NULL when none was recorded.
 * Does nothing when the store records no flushes. */
int pg_flushes_record(pg_store *s, pg_conn *c, const char *const *ids, size_t n, const char *own_session, arena *a,
                      const char **own_flush);

/* Operation groups (each file fills its part of the ops table) */
void pg_ops_entities(store_ops *ops);
void pg_ops_messages(store_ops *ops);
void pg_ops_knowledge(store_ops *ops);
void pg_ops_search(store_ops *ops);
void pg_ops_admin(store_ops *ops);
void pg_ops_vectors(store_ops *ops);
void pg_ops_notify(store_ops *ops);
void pg_ops_layers(store_ops *ops);
void pg_listen_stop(pg_store *s);

store *pg_store_open(const store_config *cfg, char *err, size_t errlen);

#endif
