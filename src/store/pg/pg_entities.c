/* pg_entities — users, agents and sessions in PostgreSQL. Reads take a pool connection; writes are
 * group-committed jobs (pg_write) so that checks and changes happen in one transaction. Mirrors
 * sq_entities.c, error codes included. */
#include "store/pg/pg.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

#define ENTITY_COLS "id, name, description, created_at, updated_at"

static int read_entity(PGresult *r, int row, arena *a, void *dst)
{
    store_entity *e = dst;
    e->id = pg_dup(a, r, row, 0);
    e->name = pg_dup(a, r, row, 1);
    e->description = pg_dup(a, r, row, 2);
    e->created_at = pg_dup(a, r, row, 3);
    e->updated_at = pg_dup(a, r, row, 4);
    return e->id && e->name && e->created_at && e->updated_at ? STORE_OK : STORE_ERROR;
}

/* Table names come from this fixed pair only; every value is a parameter. */
static const char *const LIST_SQL[2] = {
    "SELECT " ENTITY_COLS " FROM users ORDER BY created_at, id",
    "SELECT " ENTITY_COLS " FROM agents ORDER BY created_at, id",
};
static const char *const BY_ID_SQL[2] = {
    "SELECT " ENTITY_COLS " FROM users WHERE id = $1",
    "SELECT " ENTITY_COLS " FROM agents WHERE id = $1",
};
static const char *const BY_NAME_SQL[2] = {
    "SELECT " ENTITY_COLS " FROM users WHERE name = $1",
    "SELECT " ENTITY_COLS " FROM agents WHERE name = $1",
};
static const char *const INSERT_SQL[2] = {
    "INSERT INTO users(" ENTITY_COLS ") VALUES ($1, $2, $3, $4, $4)",
    "INSERT INTO agents(" ENTITY_COLS ") VALUES ($1, $2, $3, $4, $4)",
};
static const char *const UPDATE_SQL[2] = {
    "UPDATE users SET name = coalesce($2, name), description = coalesce($3, description),"
    " updated_at = greatest($4, updated_at) WHERE id = $1 RETURNING " ENTITY_COLS,
    "UPDATE agents SET name = coalesce($2, name), description = coalesce($3, description),"
    " updated_at = greatest($4, updated_at) WHERE id = $1 RETURNING " ENTITY_COLS,
};

static int op_entity_list(store *s, enum store_kind k, arena *a, store_entity **out, size_t *n)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, LIST_SQL[k == STORE_AGENTS], 0, NULL, a, sizeof **out, read_entity, (void **)out, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int get_one(store *s, const char *sql, const char *val, arena *a, store_entity *out)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[1] = {val};
    int rc = pg_collect_one(c, sql, 1, p, a, sizeof *out, read_entity, out);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_entity_get(store *s, enum store_kind k, const char *id, arena *a, store_entity *out)
{
    return get_one(s, BY_ID_SQL[k == STORE_AGENTS], id, a, out);
}

static int op_entity_get_by_name(store *s, enum store_kind k, const char *name, arena *a, store_entity *out)
{
    return get_one(s, BY_NAME_SQL[k == STORE_AGENTS], name, a, out);
}

/* --- writes ------------------------------------------------------------------------------------------ */

typedef struct entity_job {
    pg_store *s;
    enum store_kind kind;
    const char *id, *name, *description;
    arena *a;
    store_entity *out;
} entity_job;

static int job_entity_create(pg_conn *c, void *arg)
{
    entity_job *j = arg;
    char id[UUID_STR_LEN + 1], now[TIME_ISO_LEN + 1];
    ids_uuid7(j->s->ids, id);
    time_now_iso(now);
    const char *p[4] = {id, j->name, j->description, now};
    int rc = pg_cmd(c, INSERT_SQL[j->kind == STORE_AGENTS], 4, p, NULL);
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
    entity_job j = {.s = PGS(s), .kind = k, .name = name, .description = description, .a = a, .out = out};
    return pg_write(PGS(s), job_entity_create, &j);
}

static int job_entity_update(pg_conn *c, void *arg)
{
    entity_job *j = arg;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    const char *p[4] = {j->id, j->name, j->description, now};
    return pg_collect_one(c, UPDATE_SQL[j->kind == STORE_AGENTS], 4, p, j->a, sizeof *j->out, read_entity, j->out);
}

static int op_entity_update(store *s, enum store_kind k, const char *id, const char *name,
                            const char *description, arena *a, store_entity *out)
{
    entity_job j = {.s = PGS(s), .kind = k, .id = id, .name = name, .description = description, .a = a, .out = out};
    return pg_write(PGS(s), job_entity_update, &j);
}

/* Deletes one row by id with the statement in sql; STORE_NOT_FOUND when there was none. */
typedef struct delete_job {
    const char *sql;
    const char *id;
} delete_job;

static int job_delete(pg_conn *c, void *arg)
{
    delete_job *j = arg;
    const char *p[1] = {j->id};
    long n = 0;
    int rc = pg_cmd(c, j->sql, 1, p, &n);
    if (rc != STORE_OK)
        return rc;
    return n ? STORE_OK : STORE_NOT_FOUND;
}

static int op_entity_delete(store *s, enum store_kind k, const char *id)
{
    delete_job j = {.sql = k == STORE_USERS ? "DELETE FROM users WHERE id = $1" : "DELETE FROM agents WHERE id = $1",
                    .id = id};
    return pg_write(PGS(s), job_delete, &j);
}

/* --- sessions ------------------------------------------------------------------------------------------ */

#define SESSION_COLS "id, user_id, agent_id, name, created_at, updated_at"

static int read_session(PGresult *r, int row, arena *a, void *dst)
{
    store_session *e = dst;
    e->id = pg_dup(a, r, row, 0);
    e->user_id = pg_dup(a, r, row, 1);
    e->agent_id = pg_dup(a, r, row, 2);
    e->name = pg_dup(a, r, row, 3);
    e->created_at = pg_dup(a, r, row, 4);
    e->updated_at = pg_dup(a, r, row, 5);
    return e->id && e->user_id && e->agent_id && e->name && e->created_at && e->updated_at ? STORE_OK : STORE_ERROR;
}

static int op_session_list(store *s, const char *user_id, const char *agent_id, arena *a, store_session **out,
                           size_t *n)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[2] = {user_id, agent_id};
    int rc = pg_collect(c, "SELECT " SESSION_COLS " FROM sessions"
                           " WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR agent_id = $2)"
                           " ORDER BY created_at, id",
                        2, p, a, sizeof **out, read_session, (void **)out, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int one_session(store *s, const char *sql, int n, const char *a1, const char *a2, arena *a, store_session *out)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[2] = {a1, a2};
    int rc = pg_collect_one(c, sql, n, p, a, sizeof *out, read_session, out);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_session_get(store *s, const char *id, arena *a, store_session *out)
{
    return one_session(s, "SELECT " SESSION_COLS " FROM sessions WHERE id = $1", 1, id, NULL, a, out);
}

static int op_session_get_by_name(store *s, const char *name, const char *user_id, arena *a, store_session *out)
{
    return one_session(s, "SELECT " SESSION_COLS " FROM sessions WHERE name = $1 AND ($2::text IS NULL OR user_id = $2)"
                          " ORDER BY created_at, id LIMIT 1",
                       2, name, user_id, a, out);
}

typedef struct session_job {
    pg_store *s;
    const char *id, *user_id, *agent_id, *name;
    arena *a;
    store_session *out;
} session_job;

static const char *name_of(pg_conn *c, const char *sql, const char *id, arena *a, int *rc)
{
    const char *p[1] = {id};
    PGresult *r = pg_run(c, sql, 1, p, rc);
    if (!r)
        return NULL;
    const char *name = NULL;
    if (PQntuples(r) == 0)
        *rc = STORE_NOT_FOUND;
    else if (!(name = pg_dup(a, r, 0, 0)))
        *rc = STORE_ERROR;
    PQclear(r);
    return name;
}

static int job_session_create(pg_conn *c, void *arg)
{
    session_job *j = arg;
    int rc;
    const char *uname = name_of(c, "SELECT name FROM users WHERE id = $1", j->user_id, j->a, &rc);
    if (rc != STORE_OK)
        return rc == STORE_NOT_FOUND ? STORE_NO_USER : rc;
    const char *aname = name_of(c, "SELECT name FROM agents WHERE id = $1", j->agent_id, j->a, &rc);
    if (rc != STORE_OK)
        return rc == STORE_NOT_FOUND ? STORE_NO_AGENT : rc;
    const char *name = j->name;
    if (!name && !(name = store_session_default_name(j->a, uname, aname)))
        return STORE_ERROR;
    char id[UUID_STR_LEN + 1], now[TIME_ISO_LEN + 1];
    ids_uuid7(j->s->ids, id);
    time_now_iso(now);
    const char *p[5] = {id, j->user_id, j->agent_id, name, now};
    if ((rc = pg_cmd(c, "INSERT INTO sessions(" SESSION_COLS ") VALUES ($1, $2, $3, $4, $5, $5)", 5, p, NULL)) !=
        STORE_OK)
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
    session_job j = {.s = PGS(s), .user_id = user_id, .agent_id = agent_id, .name = name, .a = a, .out = out};
    return pg_write(PGS(s), job_session_create, &j);
}

static int job_session_update(pg_conn *c, void *arg)
{
    session_job *j = arg;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    const char *p[3] = {j->id, j->name, now};
    return pg_collect_one(c, "UPDATE sessions SET name = coalesce($2, name), updated_at = greatest($3, updated_at)"
                             " WHERE id = $1 RETURNING " SESSION_COLS,
                          3, p, j->a, sizeof *j->out, read_session, j->out);
}

static int op_session_update(store *s, const char *id, const char *name, arena *a, store_session *out)
{
    session_job j = {.s = PGS(s), .id = id, .name = name, .a = a, .out = out};
    return pg_write(PGS(s), job_session_update, &j);
}

static int op_session_delete(store *s, const char *id)
{
    delete_job j = {.sql = "DELETE FROM sessions WHERE id = $1", .id = id};
    return pg_write(PGS(s), job_delete, &j);
}

void pg_ops_entities(store_ops *ops)
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
