/* pg_pool — connection pools keyed by DSN behind a rwlock'd registry. See pg_pool.h for the contract. */
#include "store/pg/pg_pool.h"
#include "util/log.h"
#include "util/opstats.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pg_pool {
    char *dsn;
    pg_pool_opts o;
    atomic_int refs;
    struct pg_pool *next; /* registry list */

    pthread_mutex_t mu;
    pthread_cond_t cv; /* a connection came back or a slot freed */
    pg_conn *idle;
    int open;          /* connections existing (idle + in use + being opened) */
    int idle_n, waiting;
    unsigned generation;
    uint64_t acquires, waits, timeouts, connects, connect_failures, validations, recycled, discarded;
};

static pthread_rwlock_t registry_lock = PTHREAD_RWLOCK_INITIALIZER;
static pg_pool *registry; /* guarded by registry_lock */

int64_t pg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void pg_pool_opts_default(pg_pool_opts *o)
{
    o->min_conns = 2;
    o->max_conns = 16;
    o->acquire_timeout_ms = 2000;
    o->validate_idle_ms = 5000;
    o->max_age_ms = 30 * 60 * 1000;
    o->connect_timeout_s = 3;
    o->statement_timeout_ms = 15000;
}

static void quiet_notices(void *arg, const char *msg)
{
    (void)arg;
    log_debug("postgres: %s", msg);
}

pg_conn *pg_conn_open(const char *dsn, const pg_pool_opts *o, char *err, size_t errlen)
{
    char ct[16], opts[64];
    snprintf(ct, sizeof ct, "%d", o->connect_timeout_s > 0 ? o->connect_timeout_s : 3);
    snprintf(opts, sizeof opts, "-c statement_timeout=%d", o->statement_timeout_ms > 0 ? o->statement_timeout_ms : 0);
    /* ours first, the DSN last: what the DSN sets explicitly wins */
    const char *const keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                "keepalives_count", "options", "application_name", "dbname", NULL};
    const char *const vals[] = {ct, "1", "10", "5", "3", opts, "memfuse", dsn, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        const char *m = pg ? PQerrorMessage(pg) : "out of memory";
        snprintf(err, errlen, "cannot connect to postgres: %.*s", (int)strcspn(m, "\n"), m);
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, quiet_notices, NULL);
    pg_conn *c = calloc(1, sizeof *c);
    if (c) {
        c->nprepared = 64;
        c->prepared = calloc(c->nprepared, sizeof *c->prepared);
    }
    if (!c || !c->prepared) {
        snprintf(err, errlen, "out of memory");
        if (c)
            free(c);
        PQfinish(pg);
        return NULL;
    }
    c->pg = pg;
    c->opened_ns = c->last_used_ns = pg_now_ns();
    return c;
}

void pg_conn_close(pg_conn *c)
{
    if (!c)
        return;
    PQfinish(c->pg);
    free(c->prepared);
    free(c);
}

/* --- one pool ------------------------------------------------------------------------------------------ */

static pg_conn *connect_one(pg_pool *p)
{
    char err[256];
    pg_conn *c = pg_conn_open(p->dsn, &p->o, err, sizeof err);
    pthread_mutex_lock(&p->mu);
    if (c) {
        p->connects++;
        c->generation = p->generation;
    } else {
        p->connect_failures++;
    }
    pthread_mutex_unlock(&p->mu);
    if (!c)
        log_warn("postgres pool: %s", err);
    return c;
}

/* Gives back a reserved slot whose connection is gone. */
static void slot_free(pg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->open--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static int validate(pg_conn *c)
{
    PGresult *r = PQexec(c->pg, "SELECT 1");
    int ok = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQstatus(c->pg) == CONNECTION_OK;
    PQclear(r);
    return ok;
}

/* The checkout checks on a connection that holds a slot: may replace it. 0 ok, -1 slot given back. */
static int check(pg_pool *p, pg_conn **cp)
{
    pg_conn *c = *cp;
    int64_t now = pg_now_ns();
    /* PQconsumeInput reads whatever the server sent while the connection sat idle, without a round trip
     * (a non-blocking recv): a server that shut down sent a FATAL message and closed the socket. The
     * first call takes in that message, the second sees the end of the stream and turns the status bad,
     * so the connection is replaced here instead of failing the caller's first statement. */
    int replace = c->broken || c->generation != p->generation || !PQconsumeInput(c->pg) ||
                  !PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK;
    int validated = 0, recycled = 0;
    if (!replace && p->o.max_age_ms > 0 && now - c->opened_ns > (int64_t)p->o.max_age_ms * 1000000)
        replace = recycled = 1;
    if (!replace && now - c->last_used_ns >= (int64_t)p->o.validate_idle_ms * 1000000) {
        validated = 1;
        replace = !validate(c);
    }
    if (validated || recycled || replace) {
        pthread_mutex_lock(&p->mu);
        p->validations += (uint64_t)validated;
        p->recycled += (uint64_t)recycled;
        p->discarded += (uint64_t)(replace && !recycled);
        pthread_mutex_unlock(&p->mu);
    }
    if (!replace)
        return 0;
    pg_conn_close(c);
    *cp = connect_one(p);
    if (!*cp) {
        slot_free(p);
        return -1;
    }
    return 0;
}

static pg_conn *acquire(pg_pool *p)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    int64_t ns = deadline.tv_nsec + (int64_t)(p->o.acquire_timeout_ms % 1000) * 1000000;
    deadline.tv_sec += p->o.acquire_timeout_ms / 1000 + ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;

    pthread_mutex_lock(&p->mu);
    p->acquires++;
    int waited = 0;
    for (;;) {
        if (p->idle) {
            pg_conn *c = p->idle;
            p->idle = c->next;
            p->idle_n--;
            pthread_mutex_unlock(&p->mu);
            c->next = NULL;
            return check(p, &c) == 0 ? c : NULL;
        }
        if (p->open < p->o.max_conns) {
            p->open++; /* reserve the slot, connect outside the lock */
            pthread_mutex_unlock(&p->mu);
            pg_conn *c = connect_one(p);
            if (!c)
                slot_free(p);
            return c;
        }
        p->waits += !waited;
        waited = 1;
        p->waiting++;
        int rc = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
        p->waiting--;
        if (rc == ETIMEDOUT && !p->idle && p->open >= p->o.max_conns) {
            p->timeouts++;
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
    }
}

/* Timed for the operation statistics (OP_POOL_ACQUIRE), waits and failures included. */
pg_conn *pg_pool_acquire(pg_pool *p)
{
    int64_t t0 = pg_now_ns();
    pg_conn *c = acquire(p);
    opstats_observe_ns(OP_POOL_ACQUIRE, pg_now_ns() - t0);
    return c;
}

void pg_pool_release(pg_pool *p, pg_conn *c)
{
    if (!c)
        return;
    if (!c->broken && PQstatus(c->pg) == CONNECTION_OK && PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        /* left inside a transaction by a failed operation: roll it back or give the connection up */
        PGresult *r = PQexec(c->pg, "ROLLBACK");
        if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
            c->broken = 1;
        PQclear(r);
    }
    c->last_used_ns = pg_now_ns();
    pthread_mutex_lock(&p->mu);
    if (c->broken || PQstatus(c->pg) != CONNECTION_OK || c->generation != p->generation) {
        p->open--;
        p->discarded++;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pg_conn_close(c);
        return;
    }
    c->next = p->idle;
    p->idle = c;
    p->idle_n++;
    if (p->waiting)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int pg_pool_refresh(pg_pool *p, pg_conn **c)
{
    if (!*c) {
        pthread_mutex_lock(&p->mu);
        if (p->open >= p->o.max_conns) {
            pthread_mutex_unlock(&p->mu);
            *c = pg_pool_acquire(p);
            return *c ? 0 : -1;
        }
        p->open++;
        pthread_mutex_unlock(&p->mu);
        if (!(*c = connect_one(p))) {
            slot_free(p);
            return -1;
        }
        return 0;
    }
    int rc = check(p, c);
    if (*c)
        (*c)->last_used_ns = pg_now_ns();
    return rc;
}

void pg_pool_flush(pg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->generation++;
    pg_conn *list = p->idle;
    p->open -= p->idle_n;
    p->idle = NULL;
    p->idle_n = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    while (list) {
        pg_conn *next = list->next;
        pg_conn_close(list);
        list = next;
    }
}

void pg_pool_stats_get(pg_pool *p, pg_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = (pg_pool_stats){.open = p->open, .idle = p->idle_n, .waiting = p->waiting, .acquires = p->acquires,
                           .waits = p->waits, .timeouts = p->timeouts, .connects = p->connects,
                           .connect_failures = p->connect_failures, .validations = p->validations,
                           .recycled = p->recycled, .discarded = p->discarded};
    pthread_mutex_unlock(&p->mu);
}

const pg_pool_opts *pg_pool_options(const pg_pool *p) { return &p->o; }
const char *pg_pool_dsn(const pg_pool *p) { return p->dsn; }

static void pool_destroy(pg_pool *p)
{
    while (p->idle) {
        pg_conn *c = p->idle;
        p->idle = c->next;
        pg_conn_close(c);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->dsn);
    free(p);
}

static pg_pool *pool_create(const char *dsn, const pg_pool_opts *o, char *err, size_t errlen)
{
    pg_pool *p = calloc(1, sizeof *p);
    if (!p || !(p->dsn = strdup(dsn))) {
        free(p);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (o)
        p->o = *o;
    else
        pg_pool_opts_default(&p->o);
    if (p->o.max_conns < 1)
        p->o.max_conns = 1;
    if (p->o.min_conns > p->o.max_conns)
        p->o.min_conns = p->o.max_conns;
    atomic_init(&p->refs, 1);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < p->o.min_conns; i++) { /* warm-up */
        pg_conn *c = pg_conn_open(p->dsn, &p->o, err, errlen);
        if (!c) {
            pool_destroy(p);
            return NULL;
        }
        c->next = p->idle;
        p->idle = c;
        p->idle_n++;
        p->open++;
        p->connects++;
    }
    return p;
}

static pg_pool *find(const char *dsn)
{
    for (pg_pool *p = registry; p; p = p->next)
        if (strcmp(p->dsn, dsn) == 0)
            return p;
    return NULL;
}

pg_pool *pg_pool_get(const char *dsn, const pg_pool_opts *o, char *err, size_t errlen)
{
    pthread_rwlock_rdlock(&registry_lock);
    pg_pool *p = find(dsn);
    if (p)
        atomic_fetch_add(&p->refs, 1); /* puts need the write lock, so p cannot go away here */
    pthread_rwlock_unlock(&registry_lock);
    if (p)
        return p;

    pthread_rwlock_wrlock(&registry_lock);
    if ((p = find(dsn))) { /* created meanwhile */
        atomic_fetch_add(&p->refs, 1);
    } else if ((p = pool_create(dsn, o, err, errlen))) {
        p->next = registry;
        registry = p;
    }
    pthread_rwlock_unlock(&registry_lock);
    return p;
}

void pg_pool_put(pg_pool *p)
{
    if (!p)
        return;
    pthread_rwlock_wrlock(&registry_lock);
    if (atomic_fetch_sub(&p->refs, 1) == 1) {
        for (pg_pool **pp = &registry; *pp; pp = &(*pp)->next) {
            if (*pp == p) {
                *pp = p->next;
                break;
            }
        }
    } else {
        p = NULL;
    }
    pthread_rwlock_unlock(&registry_lock);
    if (p)
        pool_destroy(p);
}
