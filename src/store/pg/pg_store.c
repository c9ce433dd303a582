/* pg_store — opening and closing the PostgreSQL backend; its operations table and description.
 *
 * Owns: a reference on the pool for its DSN (pg_pool registry), the writer thread, the description
 * string (the DSN's host, port, dbname and user — never its password). */
#include "store/pg/pg.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pg_close(store *base)
{
    pg_store *s = PGS(base);
    pg_listen_stop(s);
    pg_writer_stop(s);
    pg_pool_put(s->pool);
    free(s->describe);
    free(s->dsn);
    free(s);
}

static const char *pg_describe(store *base) { return PGS(base)->describe; }

static int pg_pool_state(store *base, store_pool_stats *out)
{
    pg_pool *p = PGS(base)->pool;
    pg_pool_stats ps;
    pg_pool_stats_get(p, &ps);
    *out = (store_pool_stats){.name = "postgres", .size = pg_pool_options(p)->max_conns, .open = ps.open,
                              .idle = ps.idle, .in_use = ps.open - ps.idle, .waiting = ps.waiting,
                              .acquires = ps.acquires, .waits = ps.waits, .timeouts = ps.timeouts};
    pg_store *s = PGS(base);
    if (s->writer_started) {
        pthread_mutex_lock(&s->wq_mu);
        out->write_queue = s->wq_n;
        out->write_batches = s->w_batches;
        out->write_jobs = s->w_jobs;
        pthread_mutex_unlock(&s->wq_mu);
    }
    return STORE_OK;
}

static store_ops pg_ops;
static pthread_once_t pg_ops_once = PTHREAD_ONCE_INIT;

static void pg_ops_init(void)
{
    pg_ops.close = pg_close;
    pg_ops.describe = pg_describe;
    pg_ops.pool_stats = pg_pool_state;
    pg_ops_entities(&pg_ops);
    pg_ops_notify(&pg_ops);
    pg_ops_messages(&pg_ops);
    pg_ops_knowledge(&pg_ops);
    pg_ops_search(&pg_ops);
    pg_ops_admin(&pg_ops);
    pg_ops_vectors(&pg_ops);
    pg_ops_layers(&pg_ops);
}

/* "postgres:host=H port=P dbname=D user=U" from the DSN's parsed options (no password, no other keys). */
static char *describe_dsn(const char *dsn)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &err);
    if (!opts) {
        PQfreemem(err);
        return strdup("postgres:?");
    }
    static const char *const keep[] = {"host", "hostaddr", "port", "dbname", "user"};
    char buf[1024];
    size_t o = (size_t)snprintf(buf, sizeof buf, "postgres:");
    for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++) {
        for (PQconninfoOption *p = opts; p->keyword; p++) {
            if (p->val && *p->val && strcmp(p->keyword, keep[k]) == 0 && o < sizeof buf) {
                int w = snprintf(buf + o, sizeof buf - o, "%s%s=%s", o > 9 ? " " : "", p->keyword, p->val);
                o = w < 0 ? o : o + (size_t)w;
            }
        }
    }
    PQconninfoFree(opts);
    return strdup(buf);
}

store *pg_store_open(const store_config *cfg, char *err, size_t errlen)
{
    pthread_once(&pg_ops_once, pg_ops_init);
    if (!cfg->pg_dsn || !*cfg->pg_dsn) {
        snprintf(err, errlen, "the postgres store needs a connection string (--pg-dsn or MEMFUSE_PG_DSN)");
        return NULL;
    }
    if (!PQisthreadsafe()) {
        snprintf(err, errlen, "libpq was built without thread safety");
        return NULL;
    }
    pg_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &pg_ops;
    s->ids = cfg->ids;
    s->flushes = cfg->flushes;
    if (!(s->describe = describe_dsn(cfg->pg_dsn)) || !(s->dsn = strdup(cfg->pg_dsn)) ||
        ids_random_hex(s->token, 8) != 0) {
        snprintf(err, errlen, "out of memory");
        free(s->describe);
        free(s->dsn);
        free(s);
        return NULL;
    }
    pg_pool_opts o;
    pg_pool_opts_default(&o);
    /* readers plus the writer's dedicated connection plus headroom for admin work */
    o.max_conns = (cfg->read_conns > 0 ? cfg->read_conns : 8) + 2;
    if (cfg->pg_pool_min > 0)
        o.min_conns = cfg->pg_pool_min;
    if (cfg->pg_pool_max > 0)
        o.max_conns = cfg->pg_pool_max;
    if (o.min_conns > o.max_conns)
        o.min_conns = o.max_conns;
    if (cfg->pg_acquire_timeout_ms > 0)
        o.acquire_timeout_ms = cfg->pg_acquire_timeout_ms;
    if (cfg->pg_validate_idle_ms >= 0 && cfg->pg_validate_idle_ms != PG_UNSET)
        o.validate_idle_ms = cfg->pg_validate_idle_ms;
    if (cfg->pg_max_age_s > 0)
        o.max_age_ms = cfg->pg_max_age_s * 1000;
    if (!(s->pool = pg_pool_get(cfg->pg_dsn, &o, err, errlen))) {
        free(s->describe);
        free(s->dsn);
        free(s);
        return NULL;
    }
    pg_conn *c = pg_pool_acquire(s->pool);
    if (!c) {
        snprintf(err, errlen, "cannot get a connection to postgres (%s)", s->describe);
        goto fail;
    }
    int mig = pg_schema_migrate(c, err, errlen);
    pg_pool_release(s->pool, c);
    if (mig != 0)
        goto fail;
    if (pg_writer_start(s, err, errlen) != 0)
        goto fail;
    return &s->base;
fail:
    pg_close(&s->base);
    return NULL;
}
