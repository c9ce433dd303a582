/* sq_store — opening and closing the SQLite backend; its operations table. See sq.h. */
#include "store/sqlite/sq.h"
#include "util/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void sq_close(store *base)
{
    sq_store *s = SQ(base);
    sq_writer_stop(s);
    for (int i = 0; i < s->n_readers; i++)
        sq_conn_close(&s->readers[i]);
    free(s->readers);
    if (s->writer.db) {
        /* fold the WAL back into the main file so the directory holds one file at rest */
        sqlite3_wal_checkpoint_v2(s->writer.db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
    }
    sq_conn_close(&s->writer);
    pthread_mutex_destroy(&s->pool_mu);
    pthread_cond_destroy(&s->pool_cv);
    free(s->path);
    free(s->describe);
    free(s);
}

static const char *sq_describe(store *base) { return SQ(base)->describe; }

static store_ops sq_ops;
static pthread_once_t sq_ops_once = PTHREAD_ONCE_INIT;

static void sq_ops_init(void)
{
    sq_ops.close = sq_close;
    sq_ops.describe = sq_describe;
    sq_ops.pool_stats = sq_pool_stats;
    sq_ops_entities(&sq_ops);
    sq_ops_messages(&sq_ops);
    sq_ops_knowledge(&sq_ops);
    sq_ops_search(&sq_ops);
    sq_ops_admin(&sq_ops);
    sq_ops_vectors(&sq_ops);
    sq_ops_layers(&sq_ops);
}

static int mkdir_p(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

store *sq_store_open(const store_config *cfg, char *err, size_t errlen);

store *sq_store_open(const store_config *cfg, char *err, size_t errlen)
{
    pthread_once(&sq_ops_once, sq_ops_init);
    const char *dir = cfg->data_dir ? cfg->data_dir : "./data";
    if (mkdir_p(dir) != 0) {
        snprintf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
        return NULL;
    }
    if (sqlite3_threadsafe() == 0) {
        snprintf(err, errlen, "SQLite was built without thread support");
        return NULL;
    }
    sq_store *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &sq_ops;
    s->ids = cfg->ids;
    s->flushes = cfg->flushes;
    pthread_mutex_init(&s->pool_mu, NULL);
    pthread_cond_init(&s->pool_cv, NULL);
    size_t plen = strlen(dir) + 16;
    s->path = malloc(plen);
    s->describe = malloc(plen + 8);
    if (!s->path || !s->describe) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    snprintf(s->path, plen, "%s/memfuse.db", dir);
    snprintf(s->describe, plen + 8, "sqlite:%s", s->path);

    if (sq_conn_open(&s->writer, s->path, 0, err, errlen) != 0)
        goto fail;
    if (sq_schema_migrate(&s->writer, err, errlen) != 0)
        goto fail;

    s->n_readers = cfg->read_conns > 0 ? cfg->read_conns : 8;
    s->readers = calloc((size_t)s->n_readers, sizeof *s->readers);
    if (!s->readers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (int i = 0; i < s->n_readers; i++) {
        if (sq_conn_open(&s->readers[i], s->path, 1, err, errlen) != 0) {
            s->n_readers = i;
            goto fail;
        }
        /* one read now, so the connection opens its WAL and shared-memory files at start: the process's
         * file descriptors are then constant under load instead of growing as more readers first read */
        sq_exec(&s->readers[i], "SELECT count(*) FROM sqlite_master");
        s->readers[i].next_free = s->free_readers;
        s->free_readers = &s->readers[i];
    }
    if (sq_writer_start(s, err, errlen) != 0)
        goto fail;
    return &s->base;
fail:
    sq_close(&s->base);
    return NULL;
}
