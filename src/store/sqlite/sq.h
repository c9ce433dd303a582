/* sq — internals of the SQLite backend (not included above src/store).
 *
 * One database file <data_dir>/memfuse.db in WAL mode with synchronous=FULL, foreign keys on.
 *
 * Connections (sq_conn): each owns a cache of prepared statements keyed by SQL text, so every statement
 * is compiled once per connection. Readers take a connection from a fixed pool (mutex + condvar) and give
 * it back; WAL lets them read while the writer writes.
 *
 * Writes (group commit): all writes run on one writer thread that owns the write connection. A caller
 * packages its write as a job (a function and its argument) and blocks in sq_write() until the job's
 * transaction is durable. The writer takes every job queued so far as one batch: BEGIN IMMEDIATE, each
 * job inside its own SAVEPOINT (a job that fails is rolled back alone and reports its own error), then one
 * COMMIT — one WAL sync for the whole batch. While a batch commits, the next one queues, so batching costs
 * no added wait. A failed COMMIT fails every job of the batch that had succeeded. */
#ifndef MEMFUSE_SQ_H
#define MEMFUSE_SQ_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

typedef struct sq_stmt_slot {
    const char *sql; /* owned copy */
    size_t len;
    sqlite3_stmt *stmt;
} sq_stmt_slot;

typedef struct sq_conn {
    sqlite3 *db;
    sq_stmt_slot *slots; /* open addressing on hash of the SQL text */
    size_t nslots, used;
    struct sq_conn *next_free;
} sq_conn;

typedef struct sq_job sq_job;
typedef int (*sq_job_fn)(sq_conn *c, void *arg);

typedef struct sq_store {
    store base;
    char *path;
    char *describe;
    ids_gen *ids;
    int flushes; /* store_config.flushes: consolidations record flushes */

    /* read pool */
    sq_conn *readers;
    int n_readers;
    sq_conn *free_readers;
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv;
    int pool_waiting;                  /* callers waiting for a reader (pool_mu) */
    uint64_t pool_acquires, pool_waits; /* checkouts; those that had to wait (pool_mu) */

    /* writer */
    sq_conn writer;
    pthread_t writer_thread;
    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cv;   /* jobs queued, or stop */
    pthread_cond_t done_cv; /* a batch finished */
    sq_job *wq_head, *wq_tail;
    int wq_n;                             /* jobs queued, not yet taken (wq_mu) */
    uint64_t w_batches, w_jobs;           /* transactions committed; jobs they carried (wq_mu) */
    int stopping;
    int writer_started;
} sq_store;

/* Connections */
int sq_conn_open(sq_conn *c, const char *path, int readonly, char *err, size_t errlen);
void sq_conn_close(sq_conn *c);
/* The cached statement for sql, reset and with bindings cleared; NULL on a prepare error (logged). */
sqlite3_stmt *sq_prepare(sq_conn *c, const char *sql);
/* Runs SQL that returns no rows (may hold several statements); returns a SQLite result code. */
int sq_exec(sq_conn *c, const char *sql);
int sq_rc(int sqlite_rc); /* maps a SQLite result code to a store_rc */

/* Checkouts are timed for the operation statistics (OP_POOL_ACQUIRE). */
sq_conn *sq_reader_get(sq_store *s);
void sq_reader_put(sq_store *s, sq_conn *c);
int sq_pool_stats(store *base, store_pool_stats *out); /* the read pool (store_ops.pool_stats) */

/* Writer */
int sq_writer_start(sq_store *s, char *err, size_t errlen);
void sq_writer_stop(sq_store *s);
/* Runs fn(conn, arg) in the next group-committed transaction; returns fn's store_rc, or the commit's. */
int sq_write(sq_store *s, sq_job_fn fn, void *arg);

/* Schema */
int sq_schema_migrate(sq_conn *c, char *err, size_t errlen);
int sq_schema_version(sq_conn *c);
extern const int SQ_SCHEMA_VERSION;

/* Binding and column helpers */
void sq_bind_text(sqlite3_stmt *st, int i, const char *s); /* NULL binds NULL */
const char *sq_col_dup(arena *a, sqlite3_stmt *st, int i); /* NULL column gives NULL; NULL also on OOM */
/* Binds ids as a JSON array text, for "IN (SELECT value FROM json_each(?))". */
int sq_bind_id_array(sqlite3_stmt *st, int i, const char *const *ids, size_t n, arena *a);
/* Steps st to the end collecting at most max rows: fn reads one row into dst (an element of elem bytes).
 * *out is an arena array. Resets st. */
typedef int (*sq_row_fn)(sqlite3_stmt *st, arena *a, void *dst);
int sq_collect(sqlite3_stmt *st, arena *a, size_t elem, sq_row_fn fn, size_t max, void **out, size_t *n);
/* A row fn reading column 0 as a string into a const char * element. */
int sq_read_id(sqlite3_stmt *st, arena *a, void *dst);
/* The first row into *out (elem bytes), or STORE_NOT_FOUND when there is none. Resets st. */
int sq_collect_one(sqlite3_stmt *st, arena *a, size_t elem, sq_row_fn fn, void *out);
/* Steps a statement that returns no rows; resets it; returns a store_rc. */
int sq_step_done(sqlite3_stmt *st);
/* Keyword rows are keyed by user: rowid = users.ukey * SQ_FTS_USER_SPAN + the unit's rid (sq_schema.c). */
#define SQ_FTS_USER_SPAN 4294967296LL

/* Runs a stepping query for a single int64 (first column of first row); -1 on error. */
int64_t sq_query_int(sq_conn *c, const char *sql, const char *arg);

/* Message rows: select SQ_MSG_COLS from messages m joined with their rounds r, read with sq_read_message. */
#define SQ_MSG_COLS "m.id, m.session_id, m.round_id, m.role, m.content, m.created_at, m.updated_at, r.status = 0"
int sq_read_message(sqlite3_stmt *st, arena *a, void *dst);

/* Hit records (keyword search, hits_get): every unit type selects these 15 columns, in this order, then
 * optionally a score. */
#define SQ_HIT_MESSAGE "0, m.id, m.content, m.role, m.created_at, m.updated_at, m.session_id, s.name, s.agent_id," \
                       " NULL, NULL, NULL, NULL, NULL, 0"
#define SQ_HIT_KNOWLEDGE "1, k.id, k.content, NULL, k.created_at, k.updated_at, NULL, NULL, NULL," \
                         " NULL, NULL, NULL, NULL, NULL, 0"
#define SQ_HIT_EPISODE "2, e.id, e.content, NULL, e.created_at, e.updated_at, e.session_id, s.name, e.agent_id," \
                       " e.occurred_at, e.source_ids, NULL, NULL, NULL, 0"
#define SQ_HIT_FACT "3, f.id, f.content, NULL, f.created_at, f.updated_at, f.session_id, s.name, f.agent_id," \
                    " NULL, f.source_ids, f.fact_type, f.entities, f.valid_from, f.confidence"
/* Reads those columns (and the score at column 15 when with_score) into a store_hit. */
int sq_read_hit(sqlite3_stmt *st, arena *a, store_hit *h, int with_score);

/* Operation groups (each file fills its part of the ops table) */
void sq_ops_entities(store_ops *ops);
void sq_ops_messages(store_ops *ops);
void sq_ops_knowledge(store_ops *ops);
void sq_ops_search(store_ops *ops);
void sq_ops_admin(store_ops *ops);
void sq_ops_vectors(store_ops *ops);
void sq_ops_layers(store_ops *ops);

/* LLM layers (sq_layers.c). Inside a consolidating write: records one flush per session among the rounds
 * `moved` (just turned consolidated) and points those rounds at it; *own_flush (may be NULL) gets the flush
 * of own_session. Nothing when flushes are off or n is 0. */
int sq_flushes_record(sq_store *s, sq_conn *c, const char *const *moved, size_t n, const char *own_session,
                      arena *a, const char **own_flush);

#define SQ(s) ((sq_store *)(s))

#endif
