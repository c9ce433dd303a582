/* sq_knowledge — a user's knowledge items and API keys in SQLite. */
#include "store/sqlite/sq.h"
#include "util/timeutil.h"

#include <string.h>

#define KNOW_COLS "id, user_id, content, created_at, updated_at"

static int read_knowledge(sqlite3_stmt *st, arena *a, void *dst)
{
    store_knowledge *k = dst;
    k->id = sq_col_dup(a, st, 0);
    k->user_id = sq_col_dup(a, st, 1);
    k->content = sq_col_dup(a, st, 2);
    k->created_at = sq_col_dup(a, st, 3);
    k->updated_at = sq_col_dup(a, st, 4);
    return k->id && k->user_id && k->content && k->created_at && k->updated_at ? STORE_OK : STORE_ERROR;
}

static int user_exists(sq_conn *c, const char *user_id)
{
    int64_t n = sq_query_int(c, "SELECT count(*) FROM users WHERE id = ?1", user_id);
    return n < 0 ? STORE_ERROR : n ? STORE_OK : STORE_NO_USER;
}

static int op_knowledge_list(store *s, const char *user_id, arena *a, store_knowledge **out, size_t *n)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " KNOW_COLS " FROM knowledge WHERE user_id = ?1 ORDER BY created_at, rid");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, user_id);
        rc = sq_collect(st, a, sizeof **out, read_knowledge, (size_t)-1, (void **)out, n);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_knowledge_read(store *s, const char *user_id, const char *const *ids, size_t n, arena *a,
                             store_knowledge **out, size_t *n_out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT k." KNOW_COLS " FROM json_each(?2) j JOIN knowledge k ON k.id = j.value"
                                     " WHERE k.user_id = ?1 ORDER BY j.key");
    int rc = STORE_ERROR;
    if (st && sq_bind_id_array(st, 2, ids, n, a) == SQLITE_OK) {
        sq_bind_text(st, 1, user_id);
        rc = sq_collect(st, a, sizeof **out, read_knowledge, (size_t)-1, (void **)out, n_out);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

typedef struct know_job {
    sq_store *s;
    const char *user_id;
    const char *const *ids, *const *texts;
    size_t n;
    arena *a;
    const char ***done;
    size_t *n_done;
} know_job;

static int job_knowledge_add(sq_conn *c, void *arg)
{
    know_job *j = arg;
    int rc = user_exists(c, j->user_id);
    if (rc != STORE_OK)
        return rc;
    const char **ids = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *ids);
    sqlite3_stmt *st = sq_prepare(c, "INSERT INTO knowledge(" KNOW_COLS ") VALUES (?1, ?2, ?3, ?4, ?4)");
    if (!ids || !st)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    for (size_t i = 0; i < j->n; i++) {
        char id[UUID_STR_LEN + 1];
        ids_uuid7(j->s->ids, id);
        sqlite3_reset(st);
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, j->user_id);
        sq_bind_text(st, 3, j->texts[i]);
        sq_bind_text(st, 4, now);
        if ((rc = sq_step_done(st)) != STORE_OK)
            return rc;
        if (!(ids[i] = arena_strdup(j->a, id)))
            return STORE_ERROR;
    }
    *j->done = ids;
    *j->n_done = j->n;
    return STORE_OK;
}

static int op_knowledge_add(store *s, const char *user_id, const char *const *texts, size_t n, arena *a,
                            const char ***ids)
{
    size_t n_done;
    know_job j = {.s = SQ(s), .user_id = user_id, .texts = texts, .n = n, .a = a, .done = ids, .n_done = &n_done};
    return sq_write(SQ(s), job_knowledge_add, &j);
}

/* Update (texts set) or delete (texts NULL) each id of the user's; records the ids actually changed. */
static int job_knowledge_change(sq_conn *c, void *arg)
{
    know_job *j = arg;
    int rc = user_exists(c, j->user_id);
    if (rc != STORE_OK)
        return rc;
    const char **done = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *done);
    sqlite3_stmt *st = j->texts ? sq_prepare(c, "UPDATE knowledge SET content = ?3, updated_at = max(?4, updated_at)"
                                                " WHERE id = ?1 AND user_id = ?2")
                                : sq_prepare(c, "DELETE FROM knowledge WHERE id = ?1 AND user_id = ?2");
    if (!done || !st)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    size_t nd = 0;
    for (size_t i = 0; i < j->n; i++) {
        sqlite3_reset(st);
        sq_bind_text(st, 1, j->ids[i]);
        sq_bind_text(st, 2, j->user_id);
        if (j->texts) {
            sq_bind_text(st, 3, j->texts[i]);
            sq_bind_text(st, 4, now);
        }
        if ((rc = sq_step_done(st)) != STORE_OK)
            return rc;
        if (sqlite3_changes(c->db) > 0)
            done[nd++] = j->ids[i];
    }
    *j->done = done;
    *j->n_done = nd;
    return STORE_OK;
}

static int op_knowledge_update(store *s, const char *user_id, const char *const *ids, const char *const *texts,
                               size_t n, arena *a, const char ***done, size_t *n_done)
{
    know_job j = {.s = SQ(s), .user_id = user_id, .ids = ids, .texts = texts, .n = n, .a = a, .done = done,
                  .n_done = n_done};
    return sq_write(SQ(s), job_knowledge_change, &j);
}

static int op_knowledge_delete(store *s, const char *user_id, const char *const *ids, size_t n, arena *a,
                               const char ***done, size_t *n_done)
{
    know_job j = {.s = SQ(s), .user_id = user_id, .ids = ids, .texts = NULL, .n = n, .a = a, .done = done,
                  .n_done = n_done};
    return sq_write(SQ(s), job_knowledge_change, &j);
}

/* --- API keys --------------------------------------------------------------------------------------------- */

#define KEY_COLS "id, user_id, name, permissions, created_at, expires_at"

static int read_key(sqlite3_stmt *st, arena *a, void *dst)
{
    store_apikey *k = dst;
    k->id = sq_col_dup(a, st, 0);
    k->user_id = sq_col_dup(a, st, 1);
    k->name = sq_col_dup(a, st, 2);
    k->permissions = sq_col_dup(a, st, 3);
    k->created_at = sq_col_dup(a, st, 4);
    k->expires_at = sq_col_dup(a, st, 5);
    return k->id && k->user_id && k->created_at ? STORE_OK : STORE_ERROR;
}

typedef struct key_job {
    sq_store *s;
    const char *user_id, *name, *hash, *permissions, *expires_at, *key_id;
    arena *a;
    store_apikey *out;
} key_job;

static int job_key_create(sq_conn *c, void *arg)
{
    key_job *j = arg;
    int rc = user_exists(c, j->user_id);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = sq_prepare(c, "INSERT INTO api_keys(id, user_id, name, key_hash, permissions, created_at, expires_at)"
                                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!st)
        return STORE_ERROR;
    char id[UUID_STR_LEN + 1], now[TIME_ISO_LEN + 1];
    ids_uuid7(j->s->ids, id);
    time_now_iso(now);
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, j->user_id);
    sq_bind_text(st, 3, j->name);
    sq_bind_text(st, 4, j->hash);
    sq_bind_text(st, 5, j->permissions);
    sq_bind_text(st, 6, now);
    sq_bind_text(st, 7, j->expires_at);
    if ((rc = sq_step_done(st)) != STORE_OK)
        return rc;
    store_apikey *o = j->out;
    o->id = arena_strdup(j->a, id);
    o->user_id = arena_strdup(j->a, j->user_id);
    o->name = arena_strdup(j->a, j->name);
    o->permissions = arena_strdup(j->a, j->permissions);
    o->created_at = arena_strdup(j->a, now);
    o->expires_at = arena_strdup(j->a, j->expires_at);
    return o->id && o->user_id && o->created_at ? STORE_OK : STORE_ERROR;
}

static int op_apikey_create(store *s, const char *user_id, const char *name, const char *key_hash,
                            const char *permissions, const char *expires_at, arena *a, store_apikey *out)
{
    key_job j = {.s = SQ(s), .user_id = user_id, .name = name, .hash = key_hash, .permissions = permissions,
                 .expires_at = expires_at, .a = a, .out = out};
    return sq_write(SQ(s), job_key_create, &j);
}

static int op_apikey_list(store *s, const char *user_id, arena *a, store_apikey **out, size_t *n)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " KEY_COLS " FROM api_keys WHERE user_id = ?1 ORDER BY created_at, id");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, user_id);
        rc = sq_collect(st, a, sizeof **out, read_key, (size_t)-1, (void **)out, n);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

static int job_key_delete(sq_conn *c, void *arg)
{
    key_job *j = arg;
    sqlite3_stmt *st = sq_prepare(c, "DELETE FROM api_keys WHERE id = ?1 AND user_id = ?2");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, j->key_id);
    sq_bind_text(st, 2, j->user_id);
    int rc = sq_step_done(st);
    if (rc != STORE_OK)
        return rc;
    return sqlite3_changes(c->db) ? STORE_OK : STORE_NOT_FOUND;
}

static int op_apikey_delete(store *s, const char *user_id, const char *key_id)
{
    key_job j = {.s = SQ(s), .user_id = user_id, .key_id = key_id};
    return sq_write(SQ(s), job_key_delete, &j);
}

static int op_apikey_lookup(store *s, const char *key_hash, arena *a, store_apikey *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " KEY_COLS " FROM api_keys WHERE key_hash = ?1");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, key_hash);
        rc = sq_collect_one(st, a, sizeof *out, read_key, out);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

void sq_ops_knowledge(store_ops *ops)
{
    ops->knowledge_list = op_knowledge_list;
    ops->knowledge_add = op_knowledge_add;
    ops->knowledge_read = op_knowledge_read;
    ops->knowledge_update = op_knowledge_update;
    ops->knowledge_delete = op_knowledge_delete;
    ops->apikey_create = op_apikey_create;
    ops->apikey_list = op_apikey_list;
    ops->apikey_delete = op_apikey_delete;
    ops->apikey_lookup = op_apikey_lookup;
}
