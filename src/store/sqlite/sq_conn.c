/* sq_conn — SQLite connections, their statement caches, the read pool and binding helpers. See sq.h. */
#include "store/sqlite/sq.h"
#include "util/log.h"
#include "util/opstats.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int sq_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return STORE_OK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
        return STORE_UNAVAILABLE;
    case SQLITE_CONSTRAINT:
        return STORE_CONFLICT;
    default:
        return STORE_ERROR;
    }
}

int sq_conn_open(sq_conn *c, const char *path, int readonly, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    int flags = SQLITE_OPEN_NOMUTEX | (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        c->db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(c->db, 5000);
    sqlite3_extended_result_codes(c->db, 1);
    const char *pragmas = readonly ? "PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;"
                                   : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                                     " PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864;";
    char *msg = NULL;
    if (sqlite3_exec(c->db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot configure %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(c->db);
        c->db = NULL;
        return -1;
    }
    c->nslots = 64;
    c->slots = calloc(c->nslots, sizeof *c->slots);
    if (!c->slots) {
        snprintf(err, errlen, "out of memory");
        sqlite3_close(c->db);
        c->db = NULL;
        return -1;
    }
    return 0;
}

static void slots_free(sq_stmt_slot *slots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (slots[i].sql) {
            sqlite3_finalize(slots[i].stmt);
            free((void *)slots[i].sql);
        }
    }
    free(slots);
}

void sq_conn_close(sq_conn *c)
{
    if (c->slots)
        slots_free(c->slots, c->nslots);
    c->slots = NULL;
    if (c->db)
        sqlite3_close_v2(c->db);
    c->db = NULL;
}

static sq_stmt_slot *slot_find(sq_stmt_slot *slots, size_t nslots, const char *sql, size_t len)
{
    size_t i = (size_t)XXH3_64bits(sql, len) & (nslots - 1);
    while (slots[i].sql && (slots[i].len != len || memcmp(slots[i].sql, sql, len) != 0))
        i = (i + 1) & (nslots - 1);
    return &slots[i];
}

static int cache_grow(sq_conn *c)
{
    size_t n = c->nslots * 2;
    sq_stmt_slot *ns = calloc(n, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < c->nslots; i++) {
        if (c->slots[i].sql)
            *slot_find(ns, n, c->slots[i].sql, c->slots[i].len) = c->slots[i];
    }
    free(c->slots);
    c->slots = ns;
    c->nslots = n;
    return 0;
}

sqlite3_stmt *sq_prepare(sq_conn *c, const char *sql)
{
    size_t len = strlen(sql);
    sq_stmt_slot *sl = slot_find(c->slots, c->nslots, sql, len);
    if (sl->sql) {
        sqlite3_reset(sl->stmt);
        sqlite3_clear_bindings(sl->stmt);
        return sl->stmt;
    }
    if ((c->used + 1) * 2 > c->nslots) {
        if (cache_grow(c) != 0)
            return NULL;
        sl = slot_find(c->slots, c->nslots, sql, len);
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, (int)len + 1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        log_error("sqlite prepare failed: %s: %.200s", sqlite3_errmsg(c->db), sql);
        return NULL;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        sqlite3_finalize(st);
        return NULL;
    }
    memcpy(copy, sql, len + 1);
    sl->sql = copy;
    sl->len = len;
    sl->stmt = st;
    c->used++;
    return st;
}

int sq_exec(sq_conn *c, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        log_error("sqlite exec failed (%d): %s", rc, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

sq_conn *sq_reader_get(sq_store *s)
{
    int64_t t0 = time_mono_ns();
    pthread_mutex_lock(&s->pool_mu);
    s->pool_acquires++;
    if (!s->free_readers)
        s->pool_waits++;
    while (!s->free_readers) {
        s->pool_waiting++;
        pthread_cond_wait(&s->pool_cv, &s->pool_mu);
        s->pool_waiting--;
    }
    sq_conn *c = s->free_readers;
    s->free_readers = c->next_free;
    pthread_mutex_unlock(&s->pool_mu);
    opstats_observe_ns(OP_POOL_ACQUIRE, time_mono_ns() - t0);
    return c;
}

int sq_pool_stats(store *base, store_pool_stats *out)
{
    sq_store *s = SQ(base);
    pthread_mutex_lock(&s->pool_mu);
    int idle = 0;
    for (const sq_conn *c = s->free_readers; c; c = c->next_free)
        idle++;
    *out = (store_pool_stats){.name = "sqlite_read", .size = s->n_readers, .open = s->n_readers, .idle = idle,
                              .in_use = s->n_readers - idle, .waiting = s->pool_waiting,
                              .acquires = s->pool_acquires, .waits = s->pool_waits};
    pthread_mutex_unlock(&s->pool_mu);
    if (s->writer_started) {
        pthread_mutex_lock(&s->wq_mu);
        out->write_queue = s->wq_n;
        out->write_batches = s->w_batches;
        out->write_jobs = s->w_jobs;
        pthread_mutex_unlock(&s->wq_mu);
    }
    return STORE_OK;
}

void sq_reader_put(sq_store *s, sq_conn *c)
{
    pthread_mutex_lock(&s->pool_mu);
    c->next_free = s->free_readers;
    s->free_readers = c;
    pthread_cond_signal(&s->pool_cv);
    pthread_mutex_unlock(&s->pool_mu);
}

void sq_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

const char *sq_col_dup(arena *a, sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    return t ? arena_strndup(a, (const char *)t, (size_t)n) : NULL;
}

int sq_bind_id_array(sqlite3_stmt *st, int i, const char *const *ids, size_t n, arena *a)
{
    /* ids were validated as UTF-8 strings by the API layer; escape the two JSON specials anyway */
    size_t cap = 3;
    for (size_t k = 0; k < n; k++)
        cap += 2 * strlen(ids[k]) + 3;
    char *buf = arena_alloc(a, cap);
    if (!buf)
        return SQLITE_NOMEM;
    size_t o = 0;
    buf[o++] = '[';
    for (size_t k = 0; k < n; k++) {
        if (k)
            buf[o++] = ',';
        buf[o++] = '"';
        for (const char *p = ids[k]; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch == '"' || ch == '\\')
                buf[o++] = '\\';
            if (ch < 0x20) /* never in a validated id; keep the JSON well-formed regardless */
                ch = ' ';
            buf[o++] = (char)ch;
        }
        buf[o++] = '"';
    }
    buf[o++] = ']';
    return sqlite3_bind_text(st, i, buf, (int)o, SQLITE_STATIC);
}

int64_t sq_query_int(sq_conn *c, const char *sql, const char *arg)
{
    sqlite3_stmt *st = sq_prepare(c, sql);
    if (!st)
        return -1;
    if (arg)
        sq_bind_text(st, 1, arg);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
}

int sq_collect(sqlite3_stmt *st, arena *a, size_t elem, sq_row_fn fn, size_t max, void **out, size_t *n)
{
    size_t cap = 16, len = 0;
    unsigned char *v = arena_alloc(a, cap * elem);
    int rc = SQLITE_DONE, res = STORE_OK;
    while (v && len < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            unsigned char *nv = arena_alloc(a, 2 * cap * elem);
            if (!nv) {
                v = NULL;
                break;
            }
            memcpy(nv, v, len * elem);
            v = nv;
            cap *= 2;
        }
        if (fn(st, a, v + len * elem) != STORE_OK) {
            v = NULL;
            break;
        }
        len++;
    }
    if (!v)
        res = STORE_ERROR;
    else if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        res = sq_rc(rc) == STORE_OK ? STORE_ERROR : sq_rc(rc);
    sqlite3_reset(st);
    *out = res == STORE_OK ? v : NULL;
    *n = res == STORE_OK ? len : 0;
    return res;
}

int sq_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return STORE_OK;
    return sq_rc(rc) == STORE_OK ? STORE_ERROR : sq_rc(rc);
}

int sq_read_id(sqlite3_stmt *st, arena *a, void *dst)
{
    const char **id = dst;
    *id = sq_col_dup(a, st, 0);
    return *id ? STORE_OK : STORE_ERROR;
}

int sq_collect_one(sqlite3_stmt *st, arena *a, size_t elem, sq_row_fn fn, void *out)
{
    void *v;
    size_t n;
    int rc = sq_collect(st, a, elem, fn, 1, &v, &n);
    if (rc == STORE_OK && n == 0)
        return STORE_NOT_FOUND;
    if (rc == STORE_OK)
        memcpy(out, v, elem);
    return rc;
}
