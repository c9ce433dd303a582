/* pg_knowledge — a user's knowledge items and API keys in PostgreSQL. Mirrors sq_knowledge.c: knowledge
 * operations touch only the user's own ids. */
#include "store/pg/pg.h"
#include "util/timeutil.h"

#include <string.h>

#define KNOW_COLS "id, user_id, content, created_at, updated_at"

static int read_knowledge(PGresult *r, int row, arena *a, void *dst)
{
    store_knowledge *k = dst;
    k->id = pg_dup(a, r, row, 0);
    k->user_id = pg_dup(a, r, row, 1);
    k->content = pg_dup(a, r, row, 2);
    k->created_at = pg_dup(a, r, row, 3);
    k->updated_at = pg_dup(a, r, row, 4);
    return k->id && k->user_id && k->content && k->created_at && k->updated_at ? STORE_OK : STORE_ERROR;
}

static int user_check(pg_conn *c, const char *user_id)
{
    const char *p[1] = {user_id};
    int64_t n = pg_query_int(c, "SELECT count(*) FROM users WHERE id = $1", 1, p);
    return n < 0 ? (c->broken ? STORE_UNAVAILABLE : STORE_ERROR) : n ? STORE_OK : STORE_NO_USER;
}

static int op_knowledge_list(store *s, const char *user_id, arena *a, store_knowledge **out, size_t *n)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[1] = {user_id};
    int rc = pg_collect(c, "SELECT " KNOW_COLS " FROM knowledge WHERE user_id = $1 ORDER BY created_at, seq", 1, p, a,
                        sizeof **out, read_knowledge, (void **)out, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_knowledge_read(store *s, const char *user_id, const char *const *ids, size_t n, arena *a,
                             store_knowledge **out, size_t *n_out)
{
    const char *p[2] = {user_id, pg_text_array(a, ids, n)};
    if (!p[1])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, "SELECT k.id, k.user_id, k.content, k.created_at, k.updated_at"
                           " FROM unnest($2::text[]) WITH ORDINALITY AS q(id, ord) JOIN knowledge k ON k.id = q.id"
                           " WHERE k.user_id = $1 ORDER BY q.ord",
                        2, p, a, sizeof **out, read_knowledge, (void **)out, n_out);
    pg_reader_done(PGS(s), c);
    return rc;
}

typedef struct know_job {
    pg_store *s;
    const char *user_id;
    const char *const *ids, *const *texts;
    size_t n;
    arena *a;
    const char ***done;
    size_t *n_done;
} know_job;

static int job_knowledge_add(pg_conn *c, void *arg)
{
    know_job *j = arg;
    int rc = user_check(c, j->user_id);
    if (rc != STORE_OK)
        return rc;
    const char **ids = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *ids);
    if (!ids)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    for (size_t i = 0; i < j->n; i++) {
        char id[UUID_STR_LEN + 1];
        ids_uuid7(j->s->ids, id);
        const char *p[4] = {id, j->user_id, j->texts[i], now};
        if ((rc = pg_cmd(c, "INSERT INTO knowledge(" KNOW_COLS ") VALUES ($1, $2, $3, $4, $4)", 4, p, NULL)) !=
            STORE_OK)
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
    know_job j = {.s = PGS(s), .user_id = user_id, .texts = texts, .n = n, .a = a, .done = ids, .n_done = &n_done};
    return pg_write(PGS(s), job_knowledge_add, &j);
}

/* Update (texts set) or delete (texts NULL) each id of the user's; records the ids actually changed. */
static int job_knowledge_change(pg_conn *c, void *arg)
{
    know_job *j = arg;
    int rc = user_check(c, j->user_id);
    if (rc != STORE_OK)
        return rc;
    const char **done = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *done);
    if (!done)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    size_t nd = 0;
    for (size_t i = 0; i < j->n; i++) {
        long changed = 0;
        if (j->texts) {
            const char *p[4] = {j->ids[i], j->user_id, j->texts[i], now};
            rc = pg_cmd(c, "UPDATE knowledge SET content = $3, updated_at = greatest($4, updated_at)"
                           " WHERE id = $1 AND user_id = $2",
                        4, p, &changed);
        } else {
            const char *p[2] = {j->ids[i], j->user_id};
            rc = pg_cmd(c, "DELETE FROM knowledge WHERE id = $1 AND user_id = $2", 2, p, &changed);
        }
        if (rc != STORE_OK)
            return rc;
        if (changed > 0)
            done[nd++] = j->ids[i];
    }
    *j->done = done;
    *j->n_done = nd;
    return STORE_OK;
}

static int op_knowledge_update(store *s, const char *user_id, const char *const *ids, const char *const *texts,
                               size_t n, arena *a, const char ***done, size_t *n_done)
{
    know_job j = {.s = PGS(s), .user_id = user_id, .ids = ids, .texts = texts, .n = n, .a = a, .done = done,
                  .n_done = n_done};
    return pg_write(PGS(s), job_knowledge_change, &j);
}

static int op_knowledge_delete(store *s, const char *user_id, const char *const *ids, size_t n, arena *a,
                               const char ***done, size_t *n_done)
{
    know_job j = {.s = PGS(s), .user_id = user_id, .ids = ids, .texts = NULL, .n = n, .a = a, .done = done,
                  .n_done = n_done};
    return pg_write(PGS(s), job_knowledge_change, &j);
}

/* --- API keys --------------------------------------------------------------------------------------------- */

#define KEY_COLS "id, user_id, name, permissions, created_at, expires_at"

static int read_key(PGresult *r, int row, arena *a, void *dst)
{
    store_apikey *k = dst;
    k->id = pg_dup(a, r, row, 0);
    k->user_id = pg_dup(a, r, row, 1);
    k->name = pg_dup(a, r, row, 2);
    k->permissions = pg_dup(a, r, row, 3);
    k->created_at = pg_dup(a, r, row, 4);
    k->expires_at = pg_dup(a, r, row, 5);
    return k->id && k->user_id && k->created_at ? STORE_OK : STORE_ERROR;
}

typedef struct key_job {
    pg_store *s;
    const char *user_id, *name, *hash, *permissions, *expires_at, *key_id;
    arena *a;
    store_apikey *out;
} key_job;

static int job_key_create(pg_conn *c, void *arg)
{
    key_job *j = arg;
    int rc = user_check(c, j->user_id);
    if (rc != STORE_OK)
        return rc;
    char id[UUID_STR_LEN + 1], now[TIME_ISO_LEN + 1];
    ids_uuid7(j->s->ids, id);
    time_now_iso(now);
    const char *p[7] = {id, j->user_id, j->name, j->hash, j->permissions, now, j->expires_at};
    if ((rc = pg_cmd(c, "INSERT INTO api_keys(id, user_id, name, key_hash, permissions, created_at, expires_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
                     7, p, NULL)) != STORE_OK)
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
    key_job j = {.s = PGS(s), .user_id = user_id, .name = name, .hash = key_hash, .permissions = permissions,
                 .expires_at = expires_at, .a = a, .out = out};
    return pg_write(PGS(s), job_key_create, &j);
}

static int op_apikey_list(store *s, const char *user_id, arena *a, store_apikey **out, size_t *n)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[1] = {user_id};
    int rc = pg_collect(c, "SELECT " KEY_COLS " FROM api_keys WHERE user_id = $1 ORDER BY created_at, id", 1, p, a,
                        sizeof **out, read_key, (void **)out, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int job_key_delete(pg_conn *c, void *arg)
{
    key_job *j = arg;
    const char *p[2] = {j->key_id, j->user_id};
    long n = 0;
    int rc = pg_cmd(c, "DELETE FROM api_keys WHERE id = $1 AND user_id = $2", 2, p, &n);
    if (rc != STORE_OK)
        return rc;
    return n ? STORE_OK : STORE_NOT_FOUND;
}

static int op_apikey_delete(store *s, const char *user_id, const char *key_id)
{
    key_job j = {.s = PGS(s), .user_id = user_id, .key_id = key_id};
    return pg_write(PGS(s), job_key_delete, &j);
}

static int op_apikey_lookup(store *s, const char *key_hash, arena *a, store_apikey *out)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[1] = {key_hash};
    int rc = pg_collect_one(c, "SELECT " KEY_COLS " FROM api_keys WHERE key_hash = $1", 1, p, a, sizeof *out, read_key,
                            out);
    pg_reader_done(PGS(s), c);
    return rc;
}

void pg_ops_knowledge(store_ops *ops)
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
