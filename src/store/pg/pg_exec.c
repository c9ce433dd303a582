/* pg_exec — running statements on a pg_conn: per-connection prepared statements, error mapping, result
 * helpers, and the reader checkout of the PostgreSQL backend. See pg.h. */
#include "store/pg/pg.h"
#include "util/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int pg_error(pg_conn *c, const PGresult *r, const char *what)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c->pg);
    if (PQstatus(c->pg) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
        c->broken = 1; /* the connection is gone or going: the pool replaces it */
        log_warn("postgres %s: connection failure: %.*s", what, (int)strcspn(msg, "\n"), msg);
        return STORE_UNAVAILABLE;
    }
    if (strcmp(state, "23505") == 0)
        return STORE_CONFLICT;
    /* a parameter that is not valid in the database encoding (the HTTP layer passes %00 as C0 80 so it
     * cannot cut a string short): no stored record can have it, so it addresses nothing */
    if (strcmp(state, "22021") == 0)
        return STORE_NOT_FOUND;
    /* statement timeout, lock timeout, serialization/deadlock, resources exhausted: try again later */
    if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0 || strncmp(state, "40", 2) == 0 ||
        strncmp(state, "53", 2) == 0) {
        log_warn("postgres %s: %s %.*s", what, state, (int)strcspn(msg, "\n"), msg);
        return STORE_UNAVAILABLE;
    }
    log_error("postgres %s: %s %.*s", what, state, (int)strcspn(msg, "\n"), msg);
    return STORE_ERROR;
}

/* The prepared-statement set: open addressing on the 64-bit hash of the SQL text (0 marks empty). */
static uint64_t *slot_of(uint64_t *set, size_t nset, uint64_t key)
{
    size_t i = (size_t)key & (nset - 1);
    while (set[i] && set[i] != key)
        i = (i + 1) & (nset - 1);
    return &set[i];
}

static int remember(pg_conn *c, uint64_t key)
{
    if ((c->used + 1) * 2 > c->nprepared) {
        size_t n = c->nprepared * 2;
        uint64_t *ns = calloc(n, sizeof *ns);
        if (!ns)
            return -1;
        for (size_t i = 0; i < c->nprepared; i++)
            if (c->prepared[i])
                *slot_of(ns, n, c->prepared[i]) = c->prepared[i];
        free(c->prepared);
        c->prepared = ns;
        c->nprepared = n;
    }
    *slot_of(c->prepared, c->nprepared, key) = key;
    c->used++;
    return 0;
}

PGresult *pg_run(pg_conn *c, const char *sql, int n, const char *const *params, int *rc)
{
    uint64_t key = XXH3_64bits(sql, strlen(sql));
    if (key == 0)
        key = 1;
    char name[24];
    snprintf(name, sizeof name, "mf_%016" PRIx64, key);
    if (!*slot_of(c->prepared, c->nprepared, key)) {
        PGresult *p = PQprepare(c->pg, name, sql, n, NULL);
        if (!p || PQresultStatus(p) != PGRES_COMMAND_OK) {
            *rc = pg_error(c, p, "prepare");
            if (*rc == STORE_ERROR)
                log_error("postgres prepare failed for: %.200s", sql);
            PQclear(p);
            return NULL;
        }
        PQclear(p);
        if (remember(c, key) != 0) {
            *rc = STORE_ERROR;
            return NULL;
        }
    }
    PGresult *r = PQexecPrepared(c->pg, name, n, params, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        *rc = pg_error(c, r, "query");
        PQclear(r);
        return NULL;
    }
    *rc = STORE_OK;
    return r;
}

int pg_cmd(pg_conn *c, const char *sql, int n, const char *const *params, long *affected)
{
    int rc;
    PGresult *r = pg_run(c, sql, n, params, &rc);
    if (!r)
        return rc;
    if (affected)
        *affected = atol(PQcmdTuples(r));
    PQclear(r);
    return STORE_OK;
}

int pg_exec(pg_conn *c, const char *sql)
{
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? STORE_OK : pg_error(c, r, "exec");
    PQclear(r);
    return rc;
}

int pg_collect(pg_conn *c, const char *sql, int n, const char *const *params, arena *a, size_t elem, pg_row_fn fn,
               void **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    int rc;
    PGresult *r = pg_run(c, sql, n, params, &rc);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    unsigned char *v = arena_alloc(a, (size_t)(rows ? rows : 1) * elem);
    if (!v) {
        PQclear(r);
        return STORE_ERROR;
    }
    for (int i = 0; i < rows; i++) {
        if (fn(r, i, a, v + (size_t)i * elem) != STORE_OK) {
            PQclear(r);
            return STORE_ERROR;
        }
    }
    PQclear(r);
    *out = v;
    *n_out = (size_t)rows;
    return STORE_OK;
}

int pg_collect_one(pg_conn *c, const char *sql, int n, const char *const *params, arena *a, size_t elem,
                   pg_row_fn fn, void *out)
{
    void *v;
    size_t rows;
    int rc = pg_collect(c, sql, n, params, a, elem, fn, &v, &rows);
    if (rc == STORE_OK && rows == 0)
        return STORE_NOT_FOUND;
    if (rc == STORE_OK)
        memcpy(out, v, elem);
    return rc;
}

int64_t pg_query_int(pg_conn *c, const char *sql, int n, const char *const *params)
{
    int rc;
    PGresult *r = pg_run(c, sql, n, params, &rc);
    if (!r)
        return -1;
    int64_t v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    return v;
}

const char *pg_dup(arena *a, PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return arena_strndup(a, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

int pg_get_int(PGresult *r, int row, int col) { return (int)strtol(PQgetvalue(r, row, col), NULL, 10); }
int64_t pg_get_i64(PGresult *r, int row, int col) { return strtoll(PQgetvalue(r, row, col), NULL, 10); }

char *pg_text_array(arena *a, const char *const *ids, size_t n)
{
    size_t cap = 3;
    for (size_t k = 0; k < n; k++)
        cap += 2 * strlen(ids[k]) + 3;
    char *buf = arena_alloc(a, cap);
    if (!buf)
        return NULL;
    size_t o = 0;
    buf[o++] = '{';
    for (size_t k = 0; k < n; k++) {
        if (k)
            buf[o++] = ',';
        buf[o++] = '"';
        for (const char *p = ids[k]; *p; p++) {
            if (*p == '"' || *p == '\\')
                buf[o++] = '\\';
            buf[o++] = *p;
        }
        buf[o++] = '"';
    }
    buf[o++] = '}';
    buf[o] = '\0';
    return buf;
}

char *pg_itoa(arena *a, int64_t v) { return arena_sprintf(a, "%" PRId64, v); }

pg_conn *pg_reader(pg_store *s) { return pg_pool_acquire(s->pool); }
void pg_reader_done(pg_store *s, pg_conn *c) { pg_pool_release(s->pool, c); }

int pg_snapshot_begin(pg_conn *c) { return pg_exec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }

int pg_snapshot_end(pg_conn *c, int rc)
{
    int e = pg_exec(c, rc == STORE_OK ? "COMMIT" : "ROLLBACK");
    return rc != STORE_OK ? rc : e;
}
