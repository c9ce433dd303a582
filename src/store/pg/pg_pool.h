/* pg_pool — pools of libpq connections, one per DSN, shared through a process-wide registry.
 *
 * Owns: every PGconn it opens (each wrapped in a pg_conn with its own set of prepared statements), the
 * registry of pools (the only global mutable state of the PostgreSQL backend).
 *
 * Locks:
 * - registry: a pthread_rwlock. pg_pool_get takes the read lock to find an existing pool (the fast path;
 *   the reference count is atomic) and the write lock only to create one; pg_pool_put takes the write lock
 *   (the last reference unlinks and closes the pool).
 * - each pool: one mutex over its idle list and counters, and a condvar signalled when a connection comes
 *   back or a slot frees up. No I/O happens under the mutex: connecting, validating and closing run
 *   outside it, on a slot reserved under it.
 *
 * Behaviour:
 * - min_conns connections are opened when the pool is created (warm-up); creation fails if they cannot be.
 * - acquire: an idle connection (LIFO, so hot connections stay hot), else a new one while fewer than
 *   max_conns exist, else waits at most acquire_timeout_ms (pthread_cond_timedwait). It returns NULL —
 *   never blocks longer — when the wait times out or a needed connection cannot be opened (the database is
 *   down): callers answer STORE_UNAVAILABLE.
 * - a connection idle for longer than validate_idle_ms is checked with `SELECT 1` at checkout (not on
 *   every checkout; validate_idle_ms = 0 validates every checkout, for comparison); one older than
 *   max_age_ms is closed and replaced; one the server closed while it sat idle (seen at checkout by
 *   PQconsumeInput, without a round trip) is replaced; one that failed (PQstatus not OK, marked broken by
 *   pg_exec, or left inside a transaction that cannot be rolled back) is closed at release.
 * - every connection is opened with connect_timeout, TCP keepalives and a statement_timeout, so no call
 *   waits on the network indefinitely.
 * - pg_pool_flush makes every connection opened so far be closed instead of reused (after a schema
 *   recreate, so no prepared statement outlives the tables it was planned for).
 * A pool's options are those of the first pg_pool_get for its DSN. */
#ifndef MEMFUSE_PG_POOL_H
#define MEMFUSE_PG_POOL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pg_pool_opts {
    int min_conns;            /* opened at creation (warm-up) */
    int max_conns;            /* upper bound of open connections */
    int acquire_timeout_ms;   /* longest wait for a free connection */
    int validate_idle_ms;     /* validate at checkout only when idle longer than this (0: always) */
    int max_age_ms;           /* recycle connections older than this (0: never) */
    int connect_timeout_s;    /* libpq connect_timeout */
    int statement_timeout_ms; /* server-side statement_timeout (0: none) */
} pg_pool_opts;

/* Defaults: min 2, max 16, 2 s acquire, validate after 5 s idle, recycle after 30 min, connect 3 s,
 * statements 15 s. */
void pg_pool_opts_default(pg_pool_opts *o);

typedef struct pg_conn {
    PGconn *pg;
    int64_t opened_ns, last_used_ns; /* CLOCK_MONOTONIC */
    unsigned generation;             /* pool generation it was opened in */
    int broken;                      /* set by pg_exec on a connection-level failure */
    uint64_t *prepared;              /* open-addressing set of prepared statement keys (0 = empty) */
    size_t nprepared, used;
    struct pg_conn *next;            /* idle list */
} pg_conn;

typedef struct pg_pool pg_pool;

typedef struct pg_pool_stats {
    int open, idle, waiting;
    uint64_t acquires, waits /* acquires that had to wait */, timeouts, connects, connect_failures, validations, recycled, discarded;
} pg_pool_stats;

/* The pool for dsn (created with o, or the defaults when o is NULL, on first use); NULL with a reason
 * in err when it had to be created and its warm-up failed. Every successful get needs one put. */
pg_pool *pg_pool_get(const char *dsn, const pg_pool_opts *o, char *err, size_t errlen);
void pg_pool_put(pg_pool *p);

pg_conn *pg_pool_acquire(pg_pool *p);
void pg_pool_release(pg_pool *p, pg_conn *c);
/* For a connection held across many uses (the writer's): applies the checkout checks (age, idle
 * validation, broken) to *c, replacing it when needed. 0 when *c is usable; -1 when no connection could
 * be had (*c is then NULL and its slot given back). */
int pg_pool_refresh(pg_pool *p, pg_conn **c);
void pg_pool_flush(pg_pool *p);
void pg_pool_stats_get(pg_pool *p, pg_pool_stats *out);
const pg_pool_opts *pg_pool_options(const pg_pool *p);
const char *pg_pool_dsn(const pg_pool *p);

/* A single connection outside any pool (used by the pool itself and by tools); NULL with err set. */
pg_conn *pg_conn_open(const char *dsn, const pg_pool_opts *o, char *err, size_t errlen);
void pg_conn_close(pg_conn *c);

int64_t pg_now_ns(void);

#endif
