/* sq_entities — users, agents and sessions in SQLite. Reads use the read pool; writes are group-committed
 * jobs (sq_write) so that checks and changes happen in one transaction. */
#include "store/sqlite/sq.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

static const char *table_of(enum store_kind k) { return k == STORE_USERS ? "users" : "agents"; }

#define ENTITY_COLS "id, name, description, created_at, updated_at"

static int read_entity(sqlite3_stmt *st, arena *a, void *dst)
{
    store_entity *e = dst;
    e->id = sq_col_dup(a, st, 0);
    e->name = sq_col_dup(a, st, 1);
    e->description = sq_col_dup(a, st, 2);
    e->created_at = sq_col_dup(a, st, 3);
    e->updated_at = sq_col_dup(a, st, 4);
    return e->id && e->name && e->created_at && e->updated_at ? STORE_OK : STORE_ERROR;
}

static int one_entity(sq_conn *c, const char *sql, const char *arg, arena *a, store_entity *out)
{
    sqlite3_stmt *st = sq_prepare(c, sql);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, arg);
    int rc = sqlite3_step(st);
    int res;
    if (rc == SQLITE_ROW)
        res = read_entity(st, a, out);
    else
        res = rc == SQLITE_DONE ? STORE_NOT_FOUND : (sq_rc(rc) == STORE_OK ? STORE_ERROR : sq_rc(rc));
    sqlite3_reset(st);
    return res;
}

static int op_entity_list(store *s, enum store_kind k, arena *a, store_entity **out, size_t *n)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT " ENTITY_COLS " FROM %s ORDER BY created_at, id", table_of(k));
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, sql);
    int rc = st ? sq_collect(st, a, sizeof **out, read_entity, (size_t)-1, (void **)out, n) : STORE_ERROR;
    sq_reader_put(SQ(s), c);
    return rc;
}

static int get_entity(store *s, enum store_kind k, const char *col, const char *val, arena *a, store_entity *out)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT " ENTITY_COLS " FROM %s WHERE %s = ?1", table_of(k), col);
    sq_conn *c = sq_reader_get(SQ(s));
    int rc = one_entity(c, sql, val, a, out);
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_entity_get(store *s, enum store_kind k, const char *id, arena *a, store_entity *out)
{
    return get_entity(s, k, "id", id, a, out);
}

static int op_entity_get_by_name(store *s, enum store_kind k, const char *name, arena *a, store_entity *out)
{
    return get_entity(s, k, "name", name, a, out);
}

/* --- writes ------------------------------------------------------------------------------------------ */

typedef struct entity_job {
    sq_store *s;
    enum store_kind kind;
    const char *id, *name, *description;
    arena *a;
    store_entity *out;
} entity_job;

static int job_entity_create(sq_conn *c, void *arg)
{
    entity_job *j = arg;
    char sql[160];
    snprintf(sql, sizeof sql, "INSERT INTO %s(" ENTITY_COLS ") VALUES (?1, ?2, ?3, ?4, ?4)", table_of(j->kind));
    sqlite3_stmt *st = sq_prepare(c, sql);
    if (!st)
        return STORE_ERROR;
    char id[UUID_STR_LEN + 1], now[TIME_ISO_LEN + 1];
    ids_uuid7(j->s->ids, id);
    time_now_iso(now);
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, j->name);
    sq_bind_text(st, 3, j->description);
    sq_bind_text(st, 4, now);
    int rc = sq_step_done(st);
    if (rc != STORE_OK)
        return rc;
    j->out->id = arena_strdup(j->a, id);
    j->out->name = arena_strdup(j->a, j->name);
    j->out->description = arena_strdup(j->a, j->description);
    j->out->created_at = j->out->updated_at = arena_strdup(j->a, now);
    return j->out->id && j->out->name && j->out->created_at ? STORE_OK : STORE_ERROR;
}

static int op_entity_create(store *s, enum store_kind k, const char *name, const char *description, arena *a,
                            store_entity *out)
{
    entity_job j = {.s = SQ(s), .kind = k, .name = name, .description = description, .a = a, .out = out};
    return sq_write(SQ(s), job_entity_create, &j);
}

static int job_entity_update(sq_conn *c, void *arg)
{
    entity_job *j = arg;
    char sql[200];
    snprintf(sql, sizeof sql,
             "UPDATE %s SET name = coalesce(?2, name), description = coalesce(?3, description),"
             " updated_at = max(?4, updated_at) WHERE id = ?1",
             table_of(j->kind));
    sqlite3_stmt *st = sq_prepare(c, sql);
    if (!st)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    sq_bind_text(st, 1, j->id);
    sq_bind_text(st, 2, j->name);
    sq_bind_text(st, 3, j->description);
    sq_bind_text(st, 4, now);
    int rc = sq_step_done(st);
    if (rc != STORE_OK)
        return rc;
    if (sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    snprintf(sql, sizeof sql, "SELECT " ENTITY_COLS " FROM %s WHERE id = ?1", table_of(j->kind));
    return one_entity(c, sql, j->id, j->a, j->out);
}

static int op_entity_update(store *s, enum store_kind k, const char *id, const char *name,
                            const char *description, arena *a, store_entity *out)
{
    entity_job j = {.s = SQ(s), .kind = k, .id = id, .name = name, .description = description, .a = a, .out = out};
    return sq_write(SQ(s), job_entity_update, &j);
}

/* Deletes one row by id from the table in sql; STORE_NOT_FOUND when there was none. */
typedef struct delete_job {
    const char *sql;
    const char *id;
} delete_job;

static int job_delete(sq_conn *c, void *arg)
{
    delete_job *j = arg;
    sqlite3_stmt *st = sq_prepare(c, j->sql);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, j->id);
    int rc = sq_step_done(st);
    if (rc != STORE_OK)
        return rc;
    return sqlite3_changes(c->db) ? STORE_OK : STORE_NOT_FOUND;
}

static int op_entity_delete(store *s, enum store_kind k, const char *id)
{
    delete_job j = {.sql = k == STORE_USERS ? "DELETE FROM users WHERE id = ?1" : "DELETE FROM agents WHERE id = ?1",
                    .id = id};
    return sq_write(SQ(s), job_delete, &j);
}

/* --- sessions ------------------------------------------------------------------------------------------ */

#define SESSION_COLS "id, user_id, agent_id, name, created_at, updated_at"

static int read_session(sqlite3_stmt *st, arena *a, void *dst)
{
    store_session *e = dst;
    e->id = sq_col_dup(a, st, 0);
    e->user_id = sq_col_dup(a, st, 1);
    e->agent_id = sq_col_dup(a, st, 2);
    e->name = sq_col_dup(a, st, 3);
    e->created_at = sq_col_dup(a, st, 4);
    e->updated_at = sq_col_dup(a, st, 5);
    return e->id && e->user_id && e->agent_id && e->name && e->created_at && e->updated_at ? STORE_OK : STORE_ERROR;
}

static int op_session_list(store *s, const char *user_id, const char *agent_id, arena *a, store_session **out,
                           size_t *n)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " SESSION_COLS " FROM sessions"
                                     " WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR agent_id = ?2)"
                                     " ORDER BY created_at, id");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, user_id);
        sq_bind_text(st, 2, agent_id);
        rc = sq_collect(st, a, sizeof **out, read_session, (size_t)-1, (void **)out, n);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

static int one_session(sq_conn *c, const char *sql, const char *a1, const char *a2, arena *a, store_session *out)
{
    sqlite3_stmt *st = sq_prepare(c, sql);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, a1);
    sq_bind_text(st, 2, a2);
    return sq_collect_one(st, a, sizeof *out, read_session, out);
}

static int op_session_get(store *s, const char *id, arena *a, store_session *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    int rc = one_session(c, "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1", id, NULL, a, out);
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_session_get_by_name(store *s, const char *name, const char *user_id, arena *a, store_session *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    int rc = one_session(c, "SELECT " SESSION_COLS " FROM sessions WHERE name = ?1 AND (?2 IS NULL OR user_id = ?2)"
                            " ORDER BY created_at, id LIMIT 1",
                         name, user_id, a, out);
    sq_reader_put(SQ(s), c);
    return rc;
}

typedef struct session_job {
    sq_store *s;
    const char *id, *user_id, *agent_id, *name;
    arena *a;
    store_session *out;
} session_job;

static const char *name_of(sq_conn *c, const char *sql, const char *id, arena *a, int *rc)
{
    sqlite3_stmt *st = sq_prepare(c, sql);
    if (!st) {
        *rc = STORE_ERROR;
        return NULL;
    }
    sq_bind_text(st, 1, id);
    int r = sqlite3_step(st);
    const char *name = r == SQLITE_ROW ? sq_col_dup(a, st, 0) : NULL;
    *rc = r == SQLITE_ROW ? (name ? STORE_OK : STORE_ERROR)
                          : (r == SQLITE_DONE ? STORE_NOT_FOUND : (sq_rc(r) == STORE_OK ? STORE_ERROR : sq_rc(r)));
    sqlite3_reset(st);
    return name;
}

static int job_session_create(sq_conn *c, void *arg)
{
    session_job *j = arg;
    int rc;
    const char *uname = name_of(c, "SELECT name FROM users WHERE id = ?1", j->user_id, j->a, &rc);
    if (rc != STORE_OK)
        return rc == STORE_NOT_FOUND ? STORE_NO_USER : rc;
    const char *aname = name_of(c, "SELECT name FROM agents WHERE id = ?1", j->agent_id, j->a, &rc);
    if (rc != STORE_OK)
        return rc == STORE_NOT_FOUND ? STORE_NO_AGENT : rc;
    const char *name = j->name;
    if (!name && !(name = store_session_default_name(j->a, uname, aname)))
        return STORE_ERROR;
    sqlite3_stmt *st = sq_prepare(c, "INSERT INTO sessions(" SESSION_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?5)");
    if (!st)
        return STORE_ERROR;
    char id[UUID_STR_LEN + 1], now[TIME_ISO_LEN + 1];
    ids_uuid7(j->s->ids, id);
    time_now_iso(now);
    sq_bind_text(st, 1, id);
    sq_bind_text(st, 2, j->user_id);
    sq_bind_text(st, 3, j->agent_id);
    sq_bind_text(st, 4, name);
    sq_bind_text(st, 5, now);
    if ((rc = sq_step_done(st)) != STORE_OK)
        return rc;
    store_session *o = j->out;
    o->id = arena_strdup(j->a, id);
    o->user_id = arena_strdup(j->a, j->user_id);
    o->agent_id = arena_strdup(j->a, j->agent_id);
    o->name = arena_strdup(j->a, name);
    o->created_at = o->updated_at = arena_strdup(j->a, now);
    return o->id && o->user_id && o->agent_id && o->name && o->created_at ? STORE_OK : STORE_ERROR;
}

static int op_session_create(store *s, const char *user_id, const char *agent_id, const char *name, arena *a,
                             store_session *out)
{
    session_job j = {.s = SQ(s), .user_id = user_id, .agent_id = agent_id, .name = name, .a = a, .out = out};
    return sq_write(SQ(s), job_session_create, &j);
}

static int job_session_update(sq_conn *c, void *arg)
{
    session_job *j = arg;
    sqlite3_stmt *st = sq_prepare(c, "UPDATE sessions SET name = coalesce(?2, name), updated_at = max(?3, updated_at)"
                                     " WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    sq_bind_text(st, 1, j->id);
    sq_bind_text(st, 2, j->name);
    sq_bind_text(st, 3, now);
    int rc = sq_step_done(st);
    if (rc != STORE_OK)
        return rc;
    if (sqlite3_changes(c->db) == 0)
        return STORE_NOT_FOUND;
    return one_session(c, "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1", j->id, NULL, j->a, j->out);
}

static int op_session_update(store *s, const char *id, const char *name, arena *a, store_session *out)
{
    session_job j = {.s = SQ(s), .id = id, .name = name, .a = a, .out = out};
    return sq_write(SQ(s), job_session_update, &j);
}

static int op_session_delete(store *s, const char *id)
{
    delete_job j = {.sql = "DELETE FROM sessions WHERE id = ?1", .id = id};
    return sq_write(SQ(s), job_delete, &j);
}

void sq_ops_entities(store_ops *ops)
{
    ops->entity_list = op_entity_list;
    ops->entity_get = op_entity_get;
    ops->entity_get_by_name = op_entity_get_by_name;
    ops->entity_create = op_entity_create;
    ops->entity_update = op_entity_update;
    ops->entity_delete = op_entity_delete;
    ops->session_list = op_session_list;
    ops->session_get = op_session_get;
    ops->session_get_by_name = op_session_get_by_name;
    ops->session_create = op_session_create;
    ops->session_update = op_session_update;
    ops->session_delete = op_session_delete;
}
