/* pg_layers — the LLM layers' state in PostgreSQL: flushes, M1 episodes and M2 facts (schema: migration 2 in
 * pg_schema.c). Mirrors the SQLite backend's operations of the same names.
 *
 * Data flow: a consolidation (pg_messages.c) calls pg_flushes_record inside its own transaction, which
 * inserts one flushes row per session among the rounds it moved and points those rounds' flush_id at it.
 * The flush manager scans flushes_pending, each layer reads flush_messages and writes its results with
 * episodes_add (M1) or facts_apply (M2). Both lock the flush row (FOR UPDATE) and check the layer's state
 * first, then store the results and mark the layer done in the same transaction, so a retried or repeated
 * run (this process or another on the same database) finds the layer done and stores nothing. A failed run
 * is recorded by flush_failed (attempts, next_at, last_error; give_up marks the layer failed).
 *
 * Facts are versioned, never edited: UPDATE / INVALIDATE insert the new fact and retire the target (status,
 * valid_to, superseded_by; the new fact's supersedes names the target), fact_retract retires one through
 * the API. Retired facts leave the keyword index (its GIN index is partial on status 0) and lose their
 * vector (trigger facts_au); the unit operations (pg_vectors.c, pg_search.c) only see current facts. A fact
 * is linked to the first episode of its flush sharing one of its source messages, else the flush's first
 * episode: by facts_apply when M1 ran first, else by episodes_add. The source_ids JSON is compared here with
 * cJSON, so stored text that is not a JSON array only fails to match. */
#include "store/pg/pg.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- flushes ---------------------------------------------------------------------------------------------- */

#define FLUSH_COLS "id, user_id, session_id, agent_id, created_at, m1_state, m2_state, m1_attempts, m2_attempts," \
                   " next_at, last_error"

static int read_flush(PGresult *r, int row, arena *a, void *dst)
{
    store_flush *f = dst;
    memset(f, 0, sizeof *f);
    f->id = pg_dup(a, r, row, 0);
    f->user_id = pg_dup(a, r, row, 1);
    f->session_id = pg_dup(a, r, row, 2);
    f->agent_id = pg_dup(a, r, row, 3);
    f->created_at = pg_dup(a, r, row, 4);
    f->state[1] = pg_get_int(r, row, 5);
    f->state[2] = pg_get_int(r, row, 6);
    f->attempts[1] = pg_get_int(r, row, 7);
    f->attempts[2] = pg_get_int(r, row, 8);
    f->next_at = pg_dup(a, r, row, 9);
    f->last_error = pg_dup(a, r, row, 10);
    return f->id && f->user_id && f->session_id && f->agent_id && f->created_at ? STORE_OK : STORE_ERROR;
}

int pg_flushes_record(pg_store *s, pg_conn *c, const char *const *ids, size_t n, const char *own_session, arena *a,
                      const char **own_flush)
{
    if (own_flush)
        *own_flush = NULL;
    if (!s->flushes || n == 0)
        return STORE_OK;
    const char *arr = pg_text_array(a, ids, n);
    if (!arr)
        return STORE_ERROR;
    const char *p[1] = {arr};
    int rc;
    /* sessions in the order of their oldest moved round, so flush ids follow the conversations' order */
    PGresult *r = pg_run(c, "SELECT session_id FROM rounds WHERE id = ANY($1::text[])"
                            " GROUP BY session_id ORDER BY min(created_at), session_id",
                         1, p, &rc);
    if (!r)
        return rc;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    int rows = PQntuples(r);
    for (int i = 0; i < rows && rc == STORE_OK; i++) {
        const char *session = pg_dup(a, r, i, 0);
        if (!session) {
            rc = STORE_ERROR;
            break;
        }
        char id[UUID_STR_LEN + 1];
        ids_uuid7(s->ids, id);
        const char *fp[3] = {id, session, now};
        rc = pg_cmd(c, "INSERT INTO flushes(id, user_id, session_id, agent_id, created_at)"
                       " SELECT $1, user_id, id, agent_id, $3 FROM sessions WHERE id = $2",
                    3, fp, NULL);
        const char *up[3] = {id, session, arr};
        if (rc == STORE_OK)
            rc = pg_cmd(c, "UPDATE rounds SET flush_id = $1 WHERE session_id = $2 AND id = ANY($3::text[])", 3, up,
                        NULL);
        if (rc == STORE_OK && own_flush && own_session && strcmp(session, own_session) == 0 &&
            !(*own_flush = arena_strdup(a, id)))
            rc = STORE_ERROR;
    }
    PQclear(r);
    return rc;
}

static int op_flushes_pending(store *s, const char *now, const char *after, int limit, arena *a, store_flush **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit <= 0)
        return STORE_OK;
    const char *p[3] = {now, after, pg_itoa(a, limit)};
    if (!p[2])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, "SELECT " FLUSH_COLS " FROM flushes WHERE (m1_state = 0 OR m2_state = 0)"
                           " AND (next_at IS NULL OR next_at <= $1) AND ($2::text IS NULL OR id > $2)"
                           " ORDER BY id LIMIT $3",
                        3, p, a, sizeof **out, read_flush, (void **)out, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_flush_get(store *s, const char *id, arena *a, store_flush *out)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[1] = {id};
    int rc = pg_collect_one(c, "SELECT " FLUSH_COLS " FROM flushes WHERE id = $1", 1, p, a, sizeof *out, read_flush,
                            out);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_flush_messages(store *s, const char *flush_id, arena *a, store_message **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[1] = {flush_id};
    int rc = pg_snapshot_begin(c); /* the flush and its messages from one snapshot */
    if (rc == STORE_OK) {
        int64_t found = pg_query_int(c, "SELECT count(*) FROM flushes WHERE id = $1", 1, p);
        rc = found < 0 ? (c->broken ? STORE_UNAVAILABLE : STORE_ERROR) : found ? STORE_OK : STORE_NOT_FOUND;
    }
    if (rc == STORE_OK)
        rc = pg_collect(c, "SELECT " PG_MSG_COLS " FROM messages m JOIN rounds r ON r.id = m.round_id"
                           " WHERE r.flush_id = $1 ORDER BY m.created_at, m.id",
                        1, p, a, sizeof **out, pg_read_message, (void **)out, n);
    rc = pg_snapshot_end(c, rc);
    pg_reader_done(PGS(s), c);
    return rc;
}

typedef struct failed_job {
    const char *flush_id, *next_at, *error;
    int layer, give_up;
} failed_job;

static int job_flush_failed(pg_conn *c, void *arg)
{
    failed_job *j = arg;
    static const char *const SQL[3] = {
        NULL,
        "UPDATE flushes SET m1_attempts = m1_attempts + 1, next_at = $2, last_error = $3,"
        " m1_state = CASE WHEN $4::int = 1 AND m1_state = 0 THEN 2 ELSE m1_state END WHERE id = $1",
        "UPDATE flushes SET m2_attempts = m2_attempts + 1, next_at = $2, last_error = $3,"
        " m2_state = CASE WHEN $4::int = 1 AND m2_state = 0 THEN 2 ELSE m2_state END WHERE id = $1",
    };
    const char *p[4] = {j->flush_id, j->next_at, j->error, j->give_up ? "1" : "0"};
    long changed = 0;
    int rc = pg_cmd(c, SQL[j->layer], 4, p, &changed);
    return rc != STORE_OK ? rc : changed ? STORE_OK : STORE_NOT_FOUND;
}

static int op_flush_failed(store *s, const char *flush_id, int layer, const char *next_at, const char *error,
                           int give_up)
{
    if (layer != 1 && layer != 2)
        return STORE_ERROR;
    failed_job j = {.flush_id = flush_id, .next_at = next_at, .error = error, .layer = layer, .give_up = give_up};
    return pg_write(PGS(s), job_flush_failed, &j);
}

/* --- episode links ---------------------------------------------------------------------------------------- */

typedef struct ep_ref {
    const char *id;
    cJSON *src; /* parsed source_ids; NULL when absent or not JSON */
} ep_ref;

static int shares_source(const cJSON *x, const cJSON *y)
{
    if (!cJSON_IsArray(x) || !cJSON_IsArray(y))
        return 0;
    const cJSON *a, *b;
    cJSON_ArrayForEach(a, x)
    {
        if (!cJSON_IsString(a))
            continue;
        cJSON_ArrayForEach(b, y)
        {
            if (cJSON_IsString(b) && strcmp(a->valuestring, b->valuestring) == 0)
                return 1;
        }
    }
    return 0;
}

/* The episode a fact with these source ids belongs to: the first sharing a source, else the first; NULL
 * when the flush has none. */
static const char *pick_episode(const ep_ref *eps, size_t n, const char *fact_sources)
{
    if (n == 0)
        return NULL;
    cJSON *fs = fact_sources ? cJSON_Parse(fact_sources) : NULL;
    const char *pick = eps[0].id;
    for (size_t i = 0; i < n; i++) {
        if (shares_source(eps[i].src, fs)) {
            pick = eps[i].id;
            break;
        }
    }
    cJSON_Delete(fs);
    return pick;
}

static void free_refs(ep_ref *eps, size_t n)
{
    for (size_t i = 0; eps && i < n; i++)
        cJSON_Delete(eps[i].src);
}

/* --- episodes ---------------------------------------------------------------------------------------------- */

#define EP_COLS "id, user_id, session_id, agent_id, flush_id, content, occurred_at, participants, source_ids," \
                " created_at, updated_at"

static int read_episode(PGresult *r, int row, arena *a, void *dst)
{
    store_episode *e = dst;
    e->id = pg_dup(a, r, row, 0);
    e->user_id = pg_dup(a, r, row, 1);
    e->session_id = pg_dup(a, r, row, 2);
    e->agent_id = pg_dup(a, r, row, 3);
    e->flush_id = pg_dup(a, r, row, 4);
    e->content = pg_dup(a, r, row, 5);
    e->occurred_at = pg_dup(a, r, row, 6);
    e->participants = pg_dup(a, r, row, 7);
    e->source_ids = pg_dup(a, r, row, 8);
    e->created_at = pg_dup(a, r, row, 9);
    e->updated_at = pg_dup(a, r, row, 10);
    return e->id && e->user_id && e->content && e->created_at && e->updated_at ? STORE_OK : STORE_ERROR;
}

typedef struct flush_row {
    const char *user_id, *session_id, *agent_id;
    int state; /* of the layer asked for */
} flush_row;

/* Locks the flush row for the rest of the transaction and reads it: STORE_OK or STORE_NOT_FOUND. */
static int lock_flush(pg_conn *c, const char *flush_id, int layer, arena *a, flush_row *out)
{
    static const char *const SQL[3] = {
        NULL,
        "SELECT user_id, session_id, agent_id, m1_state FROM flushes WHERE id = $1 FOR UPDATE",
        "SELECT user_id, session_id, agent_id, m2_state FROM flushes WHERE id = $1 FOR UPDATE",
    };
    const char *p[1] = {flush_id};
    int rc;
    PGresult *r = pg_run(c, SQL[layer], 1, p, &rc);
    if (!r)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return STORE_NOT_FOUND;
    }
    out->user_id = pg_dup(a, r, 0, 0);
    out->session_id = pg_dup(a, r, 0, 1);
    out->agent_id = pg_dup(a, r, 0, 2);
    out->state = pg_get_int(r, 0, 3);
    PQclear(r);
    return out->user_id && out->session_id && out->agent_id ? STORE_OK : STORE_ERROR;
}

typedef struct episodes_job {
    pg_store *s;
    const char *flush_id;
    const store_episode_in *eps;
    size_t n;
    arena *a;
    const char ***ids;
    ep_ref *refs; /* freed by the caller */
    size_t n_refs;
} episodes_job;

static int job_episodes_add(pg_conn *c, void *arg)
{
    episodes_job *j = arg;
    *j->ids = NULL;
    flush_row f;
    int rc = lock_flush(c, j->flush_id, 1, j->a, &f);
    if (rc != STORE_OK || f.state == STORE_LAYER_DONE)
        return rc; /* missing, or M1 already stored: nothing to do */
    const char **ids = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *ids);
    if (!ids)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    for (size_t i = 0; i < j->n; i++) {
        const store_episode_in *e = &j->eps[i];
        if (!e->content)
            return STORE_ERROR;
        char id[UUID_STR_LEN + 1];
        ids_uuid7(j->s->ids, id);
        const char *p[10] = {id, f.user_id, f.session_id, f.agent_id, j->flush_id, e->content, e->occurred_at,
                             e->participants, e->source_ids, now};
        if ((rc = pg_cmd(c, "INSERT INTO episodes(id, user_id, session_id, agent_id, flush_id, content, occurred_at,"
                            " participants, source_ids, created_at, updated_at)"
                            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                         10, p, NULL)) != STORE_OK)
            return rc;
        if (!(ids[i] = arena_strdup(j->a, id)))
            return STORE_ERROR;
        j->refs[j->n_refs].id = ids[i];
        j->refs[j->n_refs++].src = e->source_ids ? cJSON_Parse(e->source_ids) : NULL;
    }
    const char *p[1] = {j->flush_id};
    if ((rc = pg_cmd(c, "UPDATE flushes SET m1_state = 1 WHERE id = $1", 1, p, NULL)) != STORE_OK)
        return rc;
    if (j->n > 0) { /* facts M2 stored before these episodes existed */
        PGresult *r = pg_run(c, "SELECT id, source_ids FROM facts WHERE flush_id = $1 AND episode_id IS NULL"
                                " ORDER BY seq",
                             1, p, &rc);
        if (!r)
            return rc;
        for (int i = 0; i < PQntuples(r) && rc == STORE_OK; i++) {
            const char *fid = PQgetvalue(r, i, 0);
            const char *src = PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1);
            const char *up[2] = {fid, pick_episode(j->refs, j->n_refs, src)};
            rc = pg_cmd(c, "UPDATE facts SET episode_id = $2 WHERE id = $1", 2, up, NULL);
        }
        PQclear(r);
        if (rc != STORE_OK)
            return rc;
    }
    *j->ids = ids;
    return STORE_OK;
}

static int op_episodes_add(store *s, const char *flush_id, const store_episode_in *eps, size_t n, arena *a,
                           const char ***ids)
{
    *ids = NULL;
    if (!flush_id)
        return STORE_NOT_FOUND;
    if (n && !eps)
        return STORE_ERROR;
    episodes_job j = {.s = PGS(s), .flush_id = flush_id, .eps = eps, .n = n, .a = a, .ids = ids};
    j.refs = arena_calloc(a, n ? n : 1, sizeof *j.refs);
    if (!j.refs)
        return STORE_ERROR;
    int rc = pg_write(PGS(s), job_episodes_add, &j);
    free_refs(j.refs, j.n_refs);
    if (rc != STORE_OK)
        *ids = NULL;
    return rc;
}

static int op_episodes_list(store *s, const char *user_id, const char *session_id, const store_page *p, arena *a,
                            store_episode **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!p || p->limit <= 0)
        return STORE_OK;
    const char *dir = p->desc ? "DESC" : "ASC";
    char sql[384];
    if (p->sort == STORE_SORT_ID)
        snprintf(sql, sizeof sql, "SELECT " EP_COLS " FROM episodes WHERE user_id = $1"
                 " AND ($2::text IS NULL OR session_id = $2) ORDER BY id %s LIMIT $3", dir);
    else
        snprintf(sql, sizeof sql, "SELECT " EP_COLS " FROM episodes WHERE user_id = $1"
                 " AND ($2::text IS NULL OR session_id = $2) ORDER BY created_at %s, id %s LIMIT $3", dir, dir);
    const char *par[3] = {user_id, session_id, pg_itoa(a, p->limit)};
    if (!par[2])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, sql, 3, par, a, sizeof **out, read_episode, (void **)out, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

/* --- facts -------------------------------------------------------------------------------------------------- */

#define FACT_COLS "id, user_id, session_id, agent_id, flush_id, episode_id, content, fact_type, entities, source_ids," \
                  " content_hash, confidence, status, valid_from, valid_to, superseded_by, supersedes, created_at," \
                  " updated_at"

static int read_fact(PGresult *r, int row, arena *a, void *dst)
{
    store_fact *f = dst;
    f->id = pg_dup(a, r, row, 0);
    f->user_id = pg_dup(a, r, row, 1);
    f->session_id = pg_dup(a, r, row, 2);
    f->agent_id = pg_dup(a, r, row, 3);
    f->flush_id = pg_dup(a, r, row, 4);
    f->episode_id = pg_dup(a, r, row, 5);
    f->content = pg_dup(a, r, row, 6);
    f->fact_type = pg_dup(a, r, row, 7);
    f->entities = pg_dup(a, r, row, 8);
    f->source_ids = pg_dup(a, r, row, 9);
    f->content_hash = pg_dup(a, r, row, 10);
    f->confidence = strtod(PQgetvalue(r, row, 11), NULL);
    f->status = pg_get_int(r, row, 12);
    f->valid_from = pg_dup(a, r, row, 13);
    f->valid_to = pg_dup(a, r, row, 14);
    f->superseded_by = pg_dup(a, r, row, 15);
    f->supersedes = pg_dup(a, r, row, 16);
    f->created_at = pg_dup(a, r, row, 17);
    f->updated_at = pg_dup(a, r, row, 18);
    return f->id && f->user_id && f->content && f->valid_from && f->created_at && f->updated_at ? STORE_OK
                                                                                                : STORE_ERROR;
}

typedef struct apply_job {
    pg_store *s;
    const char *user_id, *flush_id;
    const store_fact_op *ops;
    size_t n;
    arena *a;
    const char ***ids, ***retired;
    ep_ref *refs; /* the flush's episodes, loaded by the job; freed by the caller */
    size_t n_refs;
} apply_job;

static int load_refs(pg_conn *c, apply_job *j)
{
    const char *p[1] = {j->flush_id};
    int rc;
    PGresult *r = pg_run(c, "SELECT id, source_ids FROM episodes WHERE flush_id = $1 ORDER BY seq", 1, p, &rc);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    if (rows > 0 && !(j->refs = arena_calloc(j->a, (size_t)rows, sizeof *j->refs)))
        rc = STORE_ERROR;
    for (int i = 0; i < rows && rc == STORE_OK; i++) {
        if (!(j->refs[i].id = pg_dup(j->a, r, i, 0))) {
            rc = STORE_ERROR;
            break;
        }
        j->refs[i].src = PQgetisnull(r, i, 1) ? NULL : cJSON_Parse(PQgetvalue(r, i, 1));
        j->n_refs++;
    }
    PQclear(r);
    return rc;
}

/* One op: (*new_id) the fact it inserted, (*old_id) the fact it retired (NULL when none). */
static int apply_one(pg_conn *c, apply_job *j, const flush_row *f, const store_fact_op *op, const char *now,
                     const char **new_id, const char **old_id)
{
    *new_id = *old_id = NULL;
    int action = op->action;
    const char *target = NULL;
    int rc;
    if ((action == STORE_FACT_UPDATE || action == STORE_FACT_INVALIDATE) && op->target_id) {
        const char *p[2] = {op->target_id, f->user_id};
        int64_t cur = pg_query_int(c, "SELECT count(*) FROM (SELECT 1 FROM facts WHERE id = $1 AND user_id = $2"
                                      " AND status = 0 FOR UPDATE) t",
                                   2, p);
        if (cur < 0)
            return c->broken ? STORE_UNAVAILABLE : STORE_ERROR;
        if (cur > 0)
            target = op->target_id;
    }
    if (!target && action != STORE_FACT_INVALIDATE)
        action = STORE_FACT_ADD; /* nothing current to supersede: a new fact */
    if (!target && !op->content)
        return STORE_OK; /* an INVALIDATE of nothing, storing nothing */
    if (action == STORE_FACT_UPDATE && !op->content)
        return STORE_OK; /* an update without a new version: nothing to store or retire */
    const char *valid_from = op->valid_from ? op->valid_from : now;
    if (op->content) {
        char id[UUID_STR_LEN + 1], conf[40];
        ids_uuid7(j->s->ids, id);
        snprintf(conf, sizeof conf, "%.17g", op->confidence);
        const char *p[15] = {id, f->user_id, f->session_id, f->agent_id, j->flush_id,
                             pick_episode(j->refs, j->n_refs, op->source_ids), op->content, op->fact_type,
                             op->entities, op->source_ids, op->content_hash, conf, valid_from, target, now};
        rc = pg_cmd(c, "INSERT INTO facts(id, user_id, session_id, agent_id, flush_id, episode_id, content, fact_type,"
                       " entities, source_ids, content_hash, confidence, status, valid_from, supersedes, created_at,"
                       " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 0, $13, $14, $15, $15)",
                    15, p, NULL);
        if (rc != STORE_OK)
            return rc;
        if (!(*new_id = arena_strdup(j->a, id)))
            return STORE_ERROR;
    }
    if (target) {
        const char *p[5] = {target, action == STORE_FACT_UPDATE ? "1" : "2", *new_id ? valid_from : now, *new_id,
                            now};
        if ((rc = pg_cmd(c, "UPDATE facts SET status = $2, valid_to = $3, superseded_by = $4, updated_at = $5"
                            " WHERE id = $1",
                         5, p, NULL)) != STORE_OK)
            return rc;
        if (!(*old_id = arena_strdup(j->a, target)))
            return STORE_ERROR;
    }
    return STORE_OK;
}

static int job_facts_apply(pg_conn *c, void *arg)
{
    apply_job *j = arg;
    *j->ids = *j->retired = NULL;
    flush_row f = {.user_id = j->user_id};
    int rc;
    if (j->flush_id) {
        if ((rc = lock_flush(c, j->flush_id, 2, j->a, &f)) != STORE_OK)
            return rc;
        if (j->user_id && strcmp(j->user_id, f.user_id) != 0)
            return STORE_NOT_FOUND; /* no such flush of this user */
        if (f.state == STORE_LAYER_DONE)
            return STORE_OK;
        if ((rc = load_refs(c, j)) != STORE_OK)
            return rc;
    } else {
        f.session_id = f.agent_id = NULL;
        const char *p[1] = {j->user_id};
        int64_t users = j->user_id ? pg_query_int(c, "SELECT count(*) FROM users WHERE id = $1", 1, p) : 0;
        if (users < 0)
            return c->broken ? STORE_UNAVAILABLE : STORE_ERROR;
        if (users == 0)
            return STORE_NO_USER;
    }
    const char **ids = arena_calloc(j->a, j->n ? j->n : 1, sizeof *ids);
    const char **retired = arena_calloc(j->a, j->n ? j->n : 1, sizeof *retired);
    if (!ids || !retired)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    for (size_t i = 0; i < j->n; i++)
        if ((rc = apply_one(c, j, &f, &j->ops[i], now, &ids[i], &retired[i])) != STORE_OK)
            return rc;
    if (j->flush_id) {
        const char *p[1] = {j->flush_id};
        if ((rc = pg_cmd(c, "UPDATE flushes SET m2_state = 1 WHERE id = $1", 1, p, NULL)) != STORE_OK)
            return rc;
    }
    *j->ids = ids;
    *j->retired = retired;
    return STORE_OK;
}

static int op_facts_apply(store *s, const char *user_id, const char *flush_id, const store_fact_op *ops, size_t n,
                          arena *a, const char ***ids, const char ***retired)
{
    *ids = *retired = NULL;
    if (n && !ops)
        return STORE_ERROR;
    apply_job j = {.s = PGS(s), .user_id = user_id, .flush_id = flush_id, .ops = ops, .n = n, .a = a, .ids = ids,
                   .retired = retired};
    int rc = pg_write(PGS(s), job_facts_apply, &j);
    free_refs(j.refs, j.n_refs);
    if (rc != STORE_OK)
        *ids = *retired = NULL;
    return rc;
}

static int op_facts_list(store *s, const char *user_id, int history, arena *a, store_fact **out, size_t *n)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[1] = {user_id};
    int rc = pg_collect(c, history ? "SELECT " FACT_COLS " FROM facts WHERE user_id = $1"
                                     " ORDER BY created_at DESC, id DESC"
                                   : "SELECT " FACT_COLS " FROM facts WHERE user_id = $1 AND status = 0"
                                     " ORDER BY created_at DESC, id DESC",
                        1, p, a, sizeof **out, read_fact, (void **)out, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_fact_get(store *s, const char *user_id, const char *id, arena *a, store_fact *out)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[2] = {id, user_id};
    int rc = pg_collect_one(c, "SELECT " FACT_COLS " FROM facts WHERE id = $1 AND user_id = $2", 2, p, a, sizeof *out,
                            read_fact, out);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_fact_by_hash(store *s, const char *user_id, const char *content_hash, arena *a, store_fact *out)
{
    if (!content_hash)
        return STORE_NOT_FOUND;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[2] = {user_id, content_hash};
    int rc = pg_collect_one(c, "SELECT " FACT_COLS " FROM facts WHERE user_id = $1 AND content_hash = $2"
                               " AND status = 0 ORDER BY created_at DESC, id DESC LIMIT 1",
                            2, p, a, sizeof *out, read_fact, out);
    pg_reader_done(PGS(s), c);
    return rc;
}

typedef struct retract_job {
    const char *user_id, *id;
} retract_job;

static int job_fact_retract(pg_conn *c, void *arg)
{
    retract_job *j = arg;
    const char *p[2] = {j->id, j->user_id};
    int rc;
    PGresult *r = pg_run(c, "SELECT status FROM facts WHERE id = $1 AND user_id = $2 FOR UPDATE", 2, p, &rc);
    if (!r)
        return rc;
    int found = PQntuples(r) > 0, status = found ? pg_get_int(r, 0, 0) : -1;
    PQclear(r);
    if (!found)
        return STORE_NOT_FOUND;
    if (status != STORE_FACT_CURRENT)
        return STORE_CONFLICT;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    const char *up[2] = {j->id, now};
    return pg_cmd(c, "UPDATE facts SET status = 3, valid_to = $2, updated_at = $2 WHERE id = $1", 2, up, NULL);
}

static int op_fact_retract(store *s, const char *user_id, const char *id)
{
    if (!user_id || !id)
        return STORE_NOT_FOUND;
    retract_job j = {.user_id = user_id, .id = id};
    return pg_write(PGS(s), job_fact_retract, &j);
}

void pg_ops_layers(store_ops *ops)
{
    ops->flushes_pending = op_flushes_pending;
    ops->flush_get = op_flush_get;
    ops->flush_messages = op_flush_messages;
    ops->flush_failed = op_flush_failed;
    ops->episodes_add = op_episodes_add;
    ops->episodes_list = op_episodes_list;
    ops->facts_apply = op_facts_apply;
    ops->facts_list = op_facts_list;
    ops->fact_get = op_fact_get;
    ops->fact_retract = op_fact_retract;
    ops->fact_by_hash = op_fact_by_hash;
}
