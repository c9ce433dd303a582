/* sq_vectors — the embedding pipeline's view of the SQLite store: units to embed (messages, knowledge,
 * episodes and current facts), vectors stored as blobs (little-endian float32, with model and dimension;
 * one table per unit type), and hit records for dense results.
 * Vectors hang off their unit's rowid and go with it (ON DELETE CASCADE); a text update deletes the
 * vector (trigger), and vectors_put checks the unit's version so a vector computed from an older text is
 * never stored. */
#include "store/sqlite/sq.h"

#include <string.h>

/* Per unit type (enum store_hit_type): ?1 model, ?2 after (seq), ?3 limit. */
static const char *const UNEMBEDDED[STORE_UNIT_TYPES] = {
    "SELECT m.rid, m.id, m.user_id, m.session_id, s.agent_id, m.content, m.updated_at"
    " FROM messages m JOIN sessions s ON s.id = m.session_id"
    " WHERE m.rid > ?2 AND NOT EXISTS (SELECT 1 FROM message_vectors v WHERE v.rid = m.rid AND v.model = ?1)"
    " ORDER BY m.rid LIMIT ?3",
    "SELECT k.rid, k.id, k.user_id, NULL, NULL, k.content, k.updated_at FROM knowledge k"
    " WHERE k.rid > ?2 AND NOT EXISTS (SELECT 1 FROM knowledge_vectors v WHERE v.rid = k.rid AND v.model = ?1)"
    " ORDER BY k.rid LIMIT ?3",
    "SELECT e.rid, e.id, e.user_id, e.session_id, e.agent_id, e.content, e.updated_at FROM episodes e"
    " WHERE e.rid > ?2 AND NOT EXISTS (SELECT 1 FROM episode_vectors v WHERE v.rid = e.rid AND v.model = ?1)"
    " ORDER BY e.rid LIMIT ?3",
    "SELECT f.rid, f.id, f.user_id, f.session_id, f.agent_id, f.content, f.updated_at FROM facts f"
    " WHERE f.rid > ?2 AND f.status = 0"
    " AND NOT EXISTS (SELECT 1 FROM fact_vectors v WHERE v.rid = f.rid AND v.model = ?1)"
    " ORDER BY f.rid LIMIT ?3",
};

/* ?1: JSON array of ids; rows in its order. */
static const char *const UNITS_GET[STORE_UNIT_TYPES] = {
    "SELECT m.rid, m.id, m.user_id, m.session_id, s.agent_id, m.content, m.updated_at"
    " FROM json_each(?1) j JOIN messages m ON m.id = j.value JOIN sessions s ON s.id = m.session_id ORDER BY j.key",
    "SELECT k.rid, k.id, k.user_id, NULL, NULL, k.content, k.updated_at"
    " FROM json_each(?1) j JOIN knowledge k ON k.id = j.value ORDER BY j.key",
    "SELECT e.rid, e.id, e.user_id, e.session_id, e.agent_id, e.content, e.updated_at"
    " FROM json_each(?1) j JOIN episodes e ON e.id = j.value ORDER BY j.key",
    "SELECT f.rid, f.id, f.user_id, f.session_id, f.agent_id, f.content, f.updated_at"
    " FROM json_each(?1) j JOIN facts f ON f.id = j.value WHERE f.status = 0 ORDER BY j.key",
};

static int valid_type(enum store_hit_type t) { return (int)t >= 0 && (int)t < STORE_UNIT_TYPES; }

static int read_unit(sqlite3_stmt *st, arena *a, void *dst)
{
    store_unit *u = dst;
    u->seq = sqlite3_column_int64(st, 0);
    u->id = sq_col_dup(a, st, 1);
    u->user_id = sq_col_dup(a, st, 2);
    u->session_id = sq_col_dup(a, st, 3);
    u->agent_id = sq_col_dup(a, st, 4);
    u->text = sq_col_dup(a, st, 5);
    u->version = sq_col_dup(a, st, 6);
    return u->id && u->user_id && u->text && u->version ? STORE_OK : STORE_ERROR;
}

static void set_type(store_unit *u, size_t n, enum store_hit_type t)
{
    for (size_t i = 0; i < n; i++)
        u[i].type = t;
}

static int op_units_unembedded(store *s, enum store_hit_type type, const char *model, int64_t after, int limit,
                               arena *a, store_unit **out, size_t *n)
{
    if (!valid_type(type))
        return STORE_ERROR;
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, UNEMBEDDED[type]);
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, model);
        sqlite3_bind_int64(st, 2, after);
        sqlite3_bind_int(st, 3, limit);
        rc = sq_collect(st, a, sizeof **out, read_unit, (size_t)-1, (void **)out, n);
    }
    sq_reader_put(SQ(s), c);
    if (rc == STORE_OK)
        set_type(*out, *n, type);
    return rc;
}

static int op_units_get(store *s, enum store_hit_type type, const char *const *ids, size_t n, arena *a,
                        store_unit **out, size_t *n_out)
{
    if (!valid_type(type))
        return STORE_ERROR;
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, UNITS_GET[type]);
    int rc = STORE_ERROR;
    if (st && sq_bind_id_array(st, 1, ids, n, a) == SQLITE_OK)
        rc = sq_collect(st, a, sizeof **out, read_unit, (size_t)-1, (void **)out, n_out);
    sq_reader_put(SQ(s), c);
    if (rc == STORE_OK)
        set_type(*out, *n_out, type);
    return rc;
}

static int op_users_recent(store *s, int limit, arena *a, const char ***ids, size_t *n)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT user_id FROM rounds GROUP BY user_id ORDER BY max(created_at) DESC LIMIT ?1");
    int rc = STORE_ERROR;
    if (st) {
        sqlite3_bind_int(st, 1, limit);
        rc = sq_collect(st, a, sizeof **ids, sq_read_id, (size_t)-1, (void **)ids, n);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

static int job_clear(sq_conn *c, void *arg)
{
    (void)arg;
    int rc = sq_exec(c, "DELETE FROM message_vectors; DELETE FROM knowledge_vectors;"
                        " DELETE FROM episode_vectors; DELETE FROM fact_vectors;");
    return rc == SQLITE_OK ? STORE_OK : sq_rc(rc) == STORE_OK ? STORE_ERROR : sq_rc(rc);
}

static int op_vectors_clear(store *s) { return sq_write(SQ(s), job_clear, NULL); }

typedef struct put_job {
    const store_unit *units;
    size_t n;
    const float *vecs;
    int dim;
    const char *model;
    size_t *stored;
} put_job;

static int job_put(sq_conn *c, void *arg)
{
    put_job *j = arg;
    static const char *const SQL[STORE_UNIT_TYPES] = {
        "INSERT OR REPLACE INTO message_vectors(rid, model, dim, vec)"
        " SELECT rid, ?2, ?3, ?4 FROM messages WHERE id = ?1 AND updated_at = ?5",
        "INSERT OR REPLACE INTO knowledge_vectors(rid, model, dim, vec)"
        " SELECT rid, ?2, ?3, ?4 FROM knowledge WHERE id = ?1 AND updated_at = ?5",
        "INSERT OR REPLACE INTO episode_vectors(rid, model, dim, vec)"
        " SELECT rid, ?2, ?3, ?4 FROM episodes WHERE id = ?1 AND updated_at = ?5",
        "INSERT OR REPLACE INTO fact_vectors(rid, model, dim, vec)"
        " SELECT rid, ?2, ?3, ?4 FROM facts WHERE id = ?1 AND updated_at = ?5 AND status = 0",
    };
    size_t stored = 0;
    for (size_t i = 0; i < j->n; i++) {
        if (!valid_type(j->units[i].type))
            return STORE_ERROR;
        sqlite3_stmt *st = sq_prepare(c, SQL[j->units[i].type]);
        if (!st)
            return STORE_ERROR;
        sq_bind_text(st, 1, j->units[i].id);
        sq_bind_text(st, 2, j->model);
        sqlite3_bind_int(st, 3, j->dim);
        sqlite3_bind_blob(st, 4, j->vecs + (size_t)j->dim * i, (int)(sizeof(float) * (size_t)j->dim), SQLITE_STATIC);
        sq_bind_text(st, 5, j->units[i].version);
        int rc = sq_step_done(st);
        if (rc != STORE_OK)
            return rc;
        stored += (size_t)sqlite3_changes(c->db) > 0;
    }
    *j->stored = stored;
    return STORE_OK;
}

static int op_vectors_put(store *s, const store_unit *units, size_t n, const float *vecs, int dim, const char *model,
                          size_t *stored)
{
    *stored = 0;
    put_job j = {.units = units, .n = n, .vecs = vecs, .dim = dim, .model = model, .stored = stored};
    return n ? sq_write(SQ(s), job_put, &j) : STORE_OK;
}

static int op_vectors_of_user(store *s, const char *user_id, const char *model, int dim, arena *a, store_vector **out,
                              size_t *n)
{
    static const char *const SQL =
        "SELECT 0, m.id, m.session_id, s.agent_id, v.vec FROM messages m JOIN message_vectors v ON v.rid = m.rid"
        " JOIN sessions s ON s.id = m.session_id WHERE m.user_id = ?1 AND v.model = ?2 AND v.dim = ?3"
        " UNION ALL "
        "SELECT 1, k.id, NULL, NULL, v.vec FROM knowledge k JOIN knowledge_vectors v ON v.rid = k.rid"
        " WHERE k.user_id = ?1 AND v.model = ?2 AND v.dim = ?3"
        " UNION ALL "
        "SELECT 2, e.id, e.session_id, e.agent_id, v.vec FROM episodes e JOIN episode_vectors v ON v.rid = e.rid"
        " WHERE e.user_id = ?1 AND v.model = ?2 AND v.dim = ?3"
        " UNION ALL "
        "SELECT 3, f.id, f.session_id, f.agent_id, v.vec FROM facts f JOIN fact_vectors v ON v.rid = f.rid"
        " WHERE f.user_id = ?1 AND f.status = 0 AND v.model = ?2 AND v.dim = ?3";
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, SQL);
    int rc = st ? STORE_OK : STORE_ERROR;
    size_t cap = 64, len = 0;
    store_vector *v = arena_alloc(a, cap * sizeof *v);
    size_t bytes = sizeof(float) * (size_t)dim;
    if (st) {
        sq_bind_text(st, 1, user_id);
        sq_bind_text(st, 2, model);
        sqlite3_bind_int(st, 3, dim);
        int r;
        while (rc == STORE_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            if (!v || sqlite3_column_bytes(st, 4) != (int)bytes) {
                rc = STORE_ERROR;
                break;
            }
            if (len == cap) {
                store_vector *nv = arena_alloc(a, 2 * cap * sizeof *nv);
                if (!nv) {
                    rc = STORE_ERROR;
                    break;
                }
                memcpy(nv, v, len * sizeof *v);
                v = nv;
                cap *= 2;
            }
            store_vector *e = &v[len];
            memset(e, 0, sizeof *e);
            e->u.type = (enum store_hit_type)sqlite3_column_int(st, 0);
            e->u.id = sq_col_dup(a, st, 1);
            e->u.user_id = user_id;
            e->u.session_id = sq_col_dup(a, st, 2);
            e->u.agent_id = sq_col_dup(a, st, 3);
            float *f = arena_alloc(a, bytes);
            if (!f || !e->u.id) {
                rc = STORE_ERROR;
                break;
            }
            memcpy(f, sqlite3_column_blob(st, 4), bytes);
            e->vec = f;
            len++;
        }
        if (rc == STORE_OK && r != SQLITE_DONE)
            rc = sq_rc(r) == STORE_OK ? STORE_ERROR : sq_rc(r);
        sqlite3_reset(st);
    }
    sq_reader_put(SQ(s), c);
    *out = rc == STORE_OK ? v : NULL;
    *n = rc == STORE_OK ? len : 0;
    return rc;
}

static int read_hit(sqlite3_stmt *st, arena *a, void *dst) { return sq_read_hit(st, a, dst, 0); }

static int op_hits_get(store *s, enum store_hit_type type, const char *const *ids, size_t n, arena *a, store_hit **out,
                       size_t *n_out)
{
    static const char *const SQL[STORE_UNIT_TYPES] = {
        "SELECT " SQ_HIT_MESSAGE
        " FROM json_each(?1) j JOIN messages m ON m.id = j.value JOIN sessions s ON s.id = m.session_id ORDER BY j.key",
        "SELECT " SQ_HIT_KNOWLEDGE " FROM json_each(?1) j JOIN knowledge k ON k.id = j.value ORDER BY j.key",
        "SELECT " SQ_HIT_EPISODE
        " FROM json_each(?1) j JOIN episodes e ON e.id = j.value JOIN sessions s ON s.id = e.session_id ORDER BY j.key",
        "SELECT " SQ_HIT_FACT " FROM json_each(?1) j JOIN facts f ON f.id = j.value"
        " LEFT JOIN sessions s ON s.id = f.session_id WHERE f.status = 0 ORDER BY j.key",
    };
    if (!valid_type(type))
        return STORE_ERROR;
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, SQL[type]);
    int rc = STORE_ERROR;
    if (st && sq_bind_id_array(st, 1, ids, n, a) == SQLITE_OK)
        rc = sq_collect(st, a, sizeof **out, read_hit, (size_t)-1, (void **)out, n_out);
    sq_reader_put(SQ(s), c);
    return rc;
}

void sq_ops_vectors(store_ops *ops)
{
    ops->units_unembedded = op_units_unembedded;
    ops->units_get = op_units_get;
    ops->vectors_put = op_vectors_put;
    ops->vectors_clear = op_vectors_clear;
    ops->users_recent = op_users_recent;
    ops->vectors_of_user = op_vectors_of_user;
    ops->hits_get = op_hits_get;
}
