/* sq_layers — the LLM layers' state in SQLite: flushes, M1 episodes and M2 facts (schema: migration 2 in
 * sq_schema.c; the PostgreSQL backend's pg_layers.c implements the same operations).
 *
 * Data flow: a consolidation (sq_messages.c) calls sq_flushes_record inside its own write, which inserts one
 * flushes row per session among the rounds it moved and points those rounds' flush_id at it. The flush
 * manager scans flushes_pending; each layer reads flush_messages and writes its results with episodes_add
 * (M1) or facts_apply (M2). Both run on the single writer (sq_writer.c), read the layer's state first and
 * store the results and the "done" mark in the same transaction, so a retried or repeated run finds the
 * layer done and stores nothing. A failed run is recorded by flush_failed (attempts, next_at, last_error;
 * give_up marks the layer failed).
 *
 * Facts are versioned, never edited: UPDATE / INVALIDATE insert the new fact and retire the target (status,
 * valid_to, superseded_by; the new fact's supersedes names the target); fact_retract retires one through the
 * API. Retiring a fact takes it out of fact_fts and drops its vector (trigger facts_au); the unit operations
 * (sq_vectors.c, sq_search.c) only see current facts. A fact is linked to the first episode of its flush
 * sharing one of its source messages, else to the flush's first episode (LINK_FACTS, run by both
 * episodes_add and facts_apply, whichever comes second finds the other's rows). */
#include "store/sqlite/sq.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

/* --- flushes ---------------------------------------------------------------------------------------------- */

#define FLUSH_COLS "id, user_id, session_id, agent_id, created_at, m1_state, m2_state, m1_attempts, m2_attempts," \
                   " next_at, last_error"

static int read_flush(sqlite3_stmt *st, arena *a, void *dst)
{
    store_flush *f = dst;
    memset(f, 0, sizeof *f);
    f->id = sq_col_dup(a, st, 0);
    f->user_id = sq_col_dup(a, st, 1);
    f->session_id = sq_col_dup(a, st, 2);
    f->agent_id = sq_col_dup(a, st, 3);
    f->created_at = sq_col_dup(a, st, 4);
    f->state[1] = sqlite3_column_int(st, 5);
    f->state[2] = sqlite3_column_int(st, 6);
    f->attempts[1] = sqlite3_column_int(st, 7);
    f->attempts[2] = sqlite3_column_int(st, 8);
    f->next_at = sq_col_dup(a, st, 9);
    f->last_error = sq_col_dup(a, st, 10);
    return f->id && f->user_id && f->session_id && f->agent_id && f->created_at ? STORE_OK : STORE_ERROR;
}

int sq_flushes_record(sq_store *s, sq_conn *c, const char *const *moved, size_t n, const char *own_session,
                      arena *a, const char **own_flush)
{
    if (own_flush)
        *own_flush = NULL;
    if (!s->flushes || n == 0)
        return STORE_OK;
    /* sessions in the order of their oldest moved round, so flush ids follow the conversations' order */
    sqlite3_stmt *st = sq_prepare(c, "SELECT session_id FROM rounds WHERE id IN (SELECT value FROM json_each(?1))"
                                     " GROUP BY session_id ORDER BY min(created_at), session_id");
    const char **sessions = NULL;
    size_t ns = 0;
    if (!st || sq_bind_id_array(st, 1, moved, n, a) != SQLITE_OK)
        return STORE_ERROR;
    sessions = arena_alloc(a, n * sizeof *sessions);
    if (!sessions)
        return STORE_ERROR;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && ns < n)
        if (!(sessions[ns++] = sq_col_dup(a, st, 0))) {
            sqlite3_reset(st);
            return STORE_ERROR;
        }
    sqlite3_reset(st);
    if (r != SQLITE_DONE && r != SQLITE_ROW)
        return sq_rc(r) == STORE_OK ? STORE_ERROR : sq_rc(r);
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    for (size_t i = 0; i < ns; i++) {
        char id[UUID_STR_LEN + 1];
        ids_uuid7(s->ids, id);
        st = sq_prepare(c, "INSERT INTO flushes(id, user_id, session_id, agent_id, created_at)"
                           " SELECT ?1, user_id, id, agent_id, ?3 FROM sessions WHERE id = ?2");
        if (!st)
            return STORE_ERROR;
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, sessions[i]);
        sq_bind_text(st, 3, now);
        int rc = sq_step_done(st);
        if (rc != STORE_OK)
            return rc;
        st = sq_prepare(c, "UPDATE rounds SET flush_id = ?1 WHERE session_id = ?2"
                           " AND id IN (SELECT value FROM json_each(?3))");
        if (!st || sq_bind_id_array(st, 3, moved, n, a) != SQLITE_OK)
            return STORE_ERROR;
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, sessions[i]);
        if ((rc = sq_step_done(st)) != STORE_OK)
            return rc;
        if (own_flush && own_session && strcmp(sessions[i], own_session) == 0 && !(*own_flush = arena_strdup(a, id)))
            return STORE_ERROR;
    }
    return STORE_OK;
}

static int op_flushes_pending(store *s, const char *now, const char *after, int limit, arena *a, store_flush **out,
                              size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit <= 0)
        return STORE_OK;
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " FLUSH_COLS " FROM flushes WHERE (m1_state = 0 OR m2_state = 0)"
                                     " AND (next_at IS NULL OR next_at <= ?1) AND (?2 IS NULL OR id > ?2)"
                                     " ORDER BY id LIMIT ?3");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, now);
        sq_bind_text(st, 2, after);
        sqlite3_bind_int(st, 3, limit);
        rc = sq_collect(st, a, sizeof **out, read_flush, (size_t)-1, (void **)out, n);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_flush_get(store *s, const char *id, arena *a, store_flush *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " FLUSH_COLS " FROM flushes WHERE id = ?1");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, id);
        rc = sq_collect_one(st, a, sizeof *out, read_flush, out);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_flush_messages(store *s, const char *flush_id, arena *a, store_message **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sq_conn *c = sq_reader_get(SQ(s));
    sq_exec(c, "BEGIN"); /* the flush and its messages from one snapshot */
    int64_t found = sq_query_int(c, "SELECT count(*) FROM flushes WHERE id = ?1", flush_id);
    int rc = found < 0 ? STORE_ERROR : found ? STORE_OK : STORE_NOT_FOUND;
    if (rc == STORE_OK) {
        sqlite3_stmt *st = sq_prepare(c, "SELECT " SQ_MSG_COLS " FROM messages m JOIN rounds r ON r.id = m.round_id"
                                         " WHERE r.flush_id = ?1 ORDER BY m.created_at, m.id");
        rc = STORE_ERROR;
        if (st) {
            sq_bind_text(st, 1, flush_id);
            rc = sq_collect(st, a, sizeof **out, sq_read_message, (size_t)-1, (void **)out, n);
        }
    }
    sq_exec(c, "COMMIT");
    sq_reader_put(SQ(s), c);
    return rc;
}

typedef struct failed_job {
    const char *flush_id, *next_at, *error;
    int layer, give_up;
} failed_job;

static int job_flush_failed(sq_conn *c, void *arg)
{
    failed_job *j = arg;
    static const char *const SQL[3] = {
        NULL,
        "UPDATE flushes SET m1_attempts = m1_attempts + 1, next_at = ?2, last_error = ?3,"
        " m1_state = CASE WHEN ?4 = 1 AND m1_state = 0 THEN 2 ELSE m1_state END WHERE id = ?1",
        "UPDATE flushes SET m2_attempts = m2_attempts + 1, next_at = ?2, last_error = ?3,"
        " m2_state = CASE WHEN ?4 = 1 AND m2_state = 0 THEN 2 ELSE m2_state END WHERE id = ?1",
    };
    sqlite3_stmt *st = sq_prepare(c, SQL[j->layer]);
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, j->flush_id);
    sq_bind_text(st, 2, j->next_at);
    sq_bind_text(st, 3, j->error);
    sqlite3_bind_int(st, 4, j->give_up ? 1 : 0);
    int rc = sq_step_done(st);
    return rc != STORE_OK ? rc : sqlite3_changes(c->db) ? STORE_OK : STORE_NOT_FOUND;
}

static int op_flush_failed(store *s, const char *flush_id, int layer, const char *next_at, const char *error,
                           int give_up)
{
    if (layer != 1 && layer != 2)
        return STORE_ERROR;
    failed_job j = {.flush_id = flush_id, .next_at = next_at, .error = error, .layer = layer, .give_up = give_up};
    return sq_write(SQ(s), job_flush_failed, &j);
}

/* The flush's user, session, agent and the state of one layer: STORE_OK or STORE_NOT_FOUND. Runs inside the
 * writer's transaction, which no other write interleaves with. */
typedef struct flush_row {
    const char *user_id, *session_id, *agent_id;
    int state;
} flush_row;

static int read_flush_row(sqlite3_stmt *st, arena *a, void *dst)
{
    flush_row *f = dst;
    f->user_id = sq_col_dup(a, st, 0);
    f->session_id = sq_col_dup(a, st, 1);
    f->agent_id = sq_col_dup(a, st, 2);
    f->state = sqlite3_column_int(st, 3);
    return f->user_id && f->session_id && f->agent_id ? STORE_OK : STORE_ERROR;
}

static int load_flush(sq_conn *c, const char *flush_id, int layer, arena *a, flush_row *out)
{
    sqlite3_stmt *st = sq_prepare(c, layer == 1 ? "SELECT user_id, session_id, agent_id, m1_state FROM flushes WHERE id = ?1"
                                                : "SELECT user_id, session_id, agent_id, m2_state FROM flushes WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, flush_id);
    return sq_collect_one(st, a, sizeof *out, read_flush_row, out);
}

/* Links the flush's facts without an episode: the first episode of the flush sharing a source message, else
 * the flush's first episode (none: they stay unlinked). Source lists that are not JSON match nothing. */
static int link_facts(sq_conn *c, const char *flush_id)
{
    sqlite3_stmt *st = sq_prepare(
        c, "UPDATE facts SET episode_id = coalesce("
           " (SELECT e.id FROM episodes e WHERE e.flush_id = facts.flush_id AND EXISTS (SELECT 1"
           "   FROM json_each(CASE WHEN json_valid(e.source_ids) THEN e.source_ids ELSE '[]' END) x,"
           "        json_each(CASE WHEN json_valid(facts.source_ids) THEN facts.source_ids ELSE '[]' END) y"
           "   WHERE x.type = 'text' AND y.type = 'text' AND x.value = y.value) ORDER BY e.rid LIMIT 1),"
           " (SELECT e.id FROM episodes e WHERE e.flush_id = facts.flush_id ORDER BY e.rid LIMIT 1))"
           " WHERE flush_id = ?1 AND episode_id IS NULL");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, flush_id);
    return sq_step_done(st);
}

/* --- episodes ---------------------------------------------------------------------------------------------- */

typedef struct episodes_job {
    sq_store *s;
    const char *flush_id;
    const store_episode_in *eps;
    size_t n;
    arena *a;
    const char ***ids;
} episodes_job;

static int job_episodes_add(sq_conn *c, void *arg)
{
    episodes_job *j = arg;
    *j->ids = NULL;
    flush_row f;
    int rc = load_flush(c, j->flush_id, 1, j->a, &f);
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
        sqlite3_stmt *st = sq_prepare(c, "INSERT INTO episodes(id, user_id, session_id, agent_id, flush_id, content,"
                                         " occurred_at, participants, source_ids, created_at, updated_at)"
                                         " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)");
        if (!st)
            return STORE_ERROR;
        const char *v[10] = {id, f.user_id, f.session_id, f.agent_id, j->flush_id, e->content, e->occurred_at,
                             e->participants, e->source_ids, now};
        for (int k = 0; k < 10; k++)
            sq_bind_text(st, k + 1, v[k]);
        if ((rc = sq_step_done(st)) != STORE_OK)
            return rc;
        if (!(ids[i] = arena_strdup(j->a, id)))
            return STORE_ERROR;
    }
    sqlite3_stmt *st = sq_prepare(c, "UPDATE flushes SET m1_state = 1 WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, j->flush_id);
    if ((rc = sq_step_done(st)) != STORE_OK)
        return rc;
    if (j->n && (rc = link_facts(c, j->flush_id)) != STORE_OK) /* facts M2 stored before these episodes */
        return rc;
    *j->ids = ids;
    return STORE_OK;
}

static int op_episodes_add(store *s, const char *flush_id, const store_episode_in *eps, size_t n, arena *a,
                           const char ***ids)
{
    *ids = NULL;
    if (n && !eps)
        return STORE_ERROR;
    episodes_job j = {.s = SQ(s), .flush_id = flush_id, .eps = eps, .n = n, .a = a, .ids = ids};
    return sq_write(SQ(s), job_episodes_add, &j);
}

#define EP_COLS "id, user_id, session_id, agent_id, flush_id, content, occurred_at, participants, source_ids," \
                " created_at, updated_at"

static int read_episode(sqlite3_stmt *st, arena *a, void *dst)
{
    store_episode *e = dst;
    e->id = sq_col_dup(a, st, 0);
    e->user_id = sq_col_dup(a, st, 1);
    e->session_id = sq_col_dup(a, st, 2);
    e->agent_id = sq_col_dup(a, st, 3);
    e->flush_id = sq_col_dup(a, st, 4);
    e->content = sq_col_dup(a, st, 5);
    e->occurred_at = sq_col_dup(a, st, 6);
    e->participants = sq_col_dup(a, st, 7);
    e->source_ids = sq_col_dup(a, st, 8);
    e->created_at = sq_col_dup(a, st, 9);
    e->updated_at = sq_col_dup(a, st, 10);
    return e->id && e->user_id && e->content && e->created_at && e->updated_at ? STORE_OK : STORE_ERROR;
}

static int op_episodes_list(store *s, const char *user_id, const char *session_id, const store_page *p, arena *a,
                            store_episode **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const char *dir = p->desc ? "DESC" : "ASC";
    char sql[512];
    if (p->sort == STORE_SORT_ID)
        snprintf(sql, sizeof sql,
                 "SELECT " EP_COLS " FROM episodes WHERE user_id = ?1 AND (?2 IS NULL OR session_id = ?2)"
                 " ORDER BY id %s LIMIT ?3", dir);
    else
        snprintf(sql, sizeof sql,
                 "SELECT " EP_COLS " FROM episodes WHERE user_id = ?1 AND (?2 IS NULL OR session_id = ?2)"
                 " ORDER BY created_at %s, id %s LIMIT ?3", dir, dir);
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, sql);
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, user_id);
        sq_bind_text(st, 2, session_id);
        sqlite3_bind_int(st, 3, p->limit > 0 ? p->limit : 1);
        rc = sq_collect(st, a, sizeof **out, read_episode, (size_t)-1, (void **)out, n);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

/* --- facts --------------------------------------------------------------------------------------------------- */

#define FACT_COLS "id, user_id, session_id, agent_id, flush_id, episode_id, content, fact_type, entities, source_ids," \
                  " content_hash, confidence, status, valid_from, valid_to, superseded_by, supersedes, created_at," \
                  " updated_at"

static int read_fact(sqlite3_stmt *st, arena *a, void *dst)
{
    store_fact *f = dst;
    f->id = sq_col_dup(a, st, 0);
    f->user_id = sq_col_dup(a, st, 1);
    f->session_id = sq_col_dup(a, st, 2);
    f->agent_id = sq_col_dup(a, st, 3);
    f->flush_id = sq_col_dup(a, st, 4);
    f->episode_id = sq_col_dup(a, st, 5);
    f->content = sq_col_dup(a, st, 6);
    f->fact_type = sq_col_dup(a, st, 7);
    f->entities = sq_col_dup(a, st, 8);
    f->source_ids = sq_col_dup(a, st, 9);
    f->content_hash = sq_col_dup(a, st, 10);
    f->confidence = sqlite3_column_double(st, 11);
    f->status = sqlite3_column_int(st, 12);
    f->valid_from = sq_col_dup(a, st, 13);
    f->valid_to = sq_col_dup(a, st, 14);
    f->superseded_by = sq_col_dup(a, st, 15);
    f->supersedes = sq_col_dup(a, st, 16);
    f->created_at = sq_col_dup(a, st, 17);
    f->updated_at = sq_col_dup(a, st, 18);
    return f->id && f->user_id && f->content && f->valid_from && f->created_at && f->updated_at ? STORE_OK
                                                                                                  : STORE_ERROR;
}

typedef struct facts_job {
    sq_store *s;
    const char *user_id, *flush_id;
    const store_fact_op *ops;
    size_t n;
    arena *a;
    const char ***ids, ***retired;
} facts_job;

/* Whether target is a current fact of the user. */
static int is_current(sq_conn *c, const char *user_id, const char *target, int *yes)
{
    *yes = 0;
    if (!target)
        return STORE_OK;
    sqlite3_stmt *st = sq_prepare(c, "SELECT 1 FROM facts WHERE id = ?1 AND user_id = ?2 AND status = 0");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, target);
    sq_bind_text(st, 2, user_id);
    int r = sqlite3_step(st);
    sqlite3_reset(st);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        return sq_rc(r) == STORE_OK ? STORE_ERROR : sq_rc(r);
    *yes = r == SQLITE_ROW;
    return STORE_OK;
}

static int job_facts_apply(sq_conn *c, void *arg)
{
    facts_job *j = arg;
    *j->ids = *j->retired = NULL;
    flush_row f = {0};
    int rc;
    const char *user_id = j->user_id;
    if (j->flush_id) {
        if ((rc = load_flush(c, j->flush_id, 2, j->a, &f)) != STORE_OK)
            return rc;
        if (user_id && strcmp(f.user_id, user_id) != 0)
            return STORE_NOT_FOUND; /* not this user's flush */
        if (f.state == STORE_LAYER_DONE)
            return STORE_OK;
        user_id = f.user_id;
    } else {
        /* no flush to vouch for the user: check it, rather than fail on the foreign key as a conflict */
        int64_t users = user_id ? sq_query_int(c, "SELECT count(*) FROM users WHERE id = ?1", user_id) : 0;
        if (users < 0)
            return STORE_ERROR;
        if (users == 0)
            return STORE_NO_USER;
    }
    const char **ids = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *ids);
    const char **retired = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *retired);
    if (!ids || !retired)
        return STORE_ERROR;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    for (size_t i = 0; i < j->n; i++) {
        const store_fact_op *op = &j->ops[i];
        ids[i] = retired[i] = NULL;
        int target_ok = 0;
        if (op->action != STORE_FACT_ADD && (rc = is_current(c, user_id, op->target_id, &target_ok)) != STORE_OK)
            return rc;
        if (!op->content && (op->action != STORE_FACT_INVALIDATE || !target_ok))
            continue; /* nothing to store and nothing (or, for an UPDATE, no new version) to retire: no-op */
        const char *valid_from = op->valid_from ? op->valid_from : now;
        if (op->content) {
            char id[UUID_STR_LEN + 1];
            ids_uuid7(j->s->ids, id);
            sqlite3_stmt *st = sq_prepare(
                c, "INSERT INTO facts(id, user_id, session_id, agent_id, flush_id, content, fact_type, entities,"
                   " source_ids, content_hash, confidence, status, valid_from, supersedes, created_at, updated_at)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?13, ?14, ?14)");
            if (!st)
                return STORE_ERROR;
            const char *v[10] = {id, user_id, f.session_id, f.agent_id, j->flush_id, op->content, op->fact_type,
                                 op->entities, op->source_ids, op->content_hash};
            for (int k = 0; k < 10; k++)
                sq_bind_text(st, k + 1, v[k]);
            sqlite3_bind_double(st, 11, op->confidence);
            sq_bind_text(st, 12, valid_from);
            sq_bind_text(st, 13, target_ok ? op->target_id : NULL);
            sq_bind_text(st, 14, now);
            if ((rc = sq_step_done(st)) != STORE_OK)
                return rc;
            if (!(ids[i] = arena_strdup(j->a, id)))
                return STORE_ERROR;
        }
        if (target_ok) {
            sqlite3_stmt *st = sq_prepare(c, "UPDATE facts SET status = ?2, valid_to = ?3, superseded_by = ?4,"
                                             " updated_at = ?5 WHERE id = ?1");
            if (!st)
                return STORE_ERROR;
            sq_bind_text(st, 1, op->target_id);
            sqlite3_bind_int(st, 2, op->action == STORE_FACT_UPDATE ? STORE_FACT_SUPERSEDED : STORE_FACT_INVALIDATED);
            sq_bind_text(st, 3, ids[i] ? valid_from : now);
            sq_bind_text(st, 4, ids[i]);
            sq_bind_text(st, 5, now);
            if ((rc = sq_step_done(st)) != STORE_OK)
                return rc;
            if (!(retired[i] = arena_strdup(j->a, op->target_id)))
                return STORE_ERROR;
        }
    }
    if (j->flush_id) {
        sqlite3_stmt *st = sq_prepare(c, "UPDATE flushes SET m2_state = 1 WHERE id = ?1");
        if (!st)
            return STORE_ERROR;
        sq_bind_text(st, 1, j->flush_id);
        if ((rc = sq_step_done(st)) != STORE_OK || (rc = link_facts(c, j->flush_id)) != STORE_OK)
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
    for (size_t i = 0; i < n; i++)
        if (ops[i].action < STORE_FACT_ADD || ops[i].action > STORE_FACT_INVALIDATE)
            return STORE_ERROR;
    facts_job j = {.s = SQ(s), .user_id = user_id, .flush_id = flush_id, .ops = ops, .n = n, .a = a, .ids = ids,
                   .retired = retired};
    return sq_write(SQ(s), job_facts_apply, &j);
}

static int op_facts_list(store *s, const char *user_id, int history, arena *a, store_fact **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " FACT_COLS " FROM facts WHERE user_id = ?1 AND (?2 OR status = 0)"
                                     " ORDER BY created_at DESC, id DESC");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, user_id);
        sqlite3_bind_int(st, 2, history ? 1 : 0);
        rc = sq_collect(st, a, sizeof **out, read_fact, (size_t)-1, (void **)out, n);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_fact_get(store *s, const char *user_id, const char *id, arena *a, store_fact *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " FACT_COLS " FROM facts WHERE id = ?1 AND user_id = ?2");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, user_id);
        rc = sq_collect_one(st, a, sizeof *out, read_fact, out);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_fact_by_hash(store *s, const char *user_id, const char *content_hash, arena *a, store_fact *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " FACT_COLS " FROM facts WHERE user_id = ?1 AND content_hash = ?2"
                                     " AND status = 0 ORDER BY created_at DESC, id DESC LIMIT 1");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, user_id);
        sq_bind_text(st, 2, content_hash);
        rc = sq_collect_one(st, a, sizeof *out, read_fact, out);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

typedef struct retract_job {
    const char *user_id, *id;
} retract_job;

static int job_fact_retract(sq_conn *c, void *arg)
{
    retract_job *j = arg;
    sqlite3_stmt *st = sq_prepare(c, "SELECT status FROM facts WHERE id = ?1 AND user_id = ?2");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, j->id);
    sq_bind_text(st, 2, j->user_id);
    int r = sqlite3_step(st);
    int status = r == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_reset(st);
    if (r == SQLITE_DONE)
        return STORE_NOT_FOUND;
    if (r != SQLITE_ROW)
        return sq_rc(r) == STORE_OK ? STORE_ERROR : sq_rc(r);
    if (status != STORE_FACT_CURRENT)
        return STORE_CONFLICT;
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    st = sq_prepare(c, "UPDATE facts SET status = 3, valid_to = ?2, updated_at = ?2 WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, j->id);
    sq_bind_text(st, 2, now);
    return sq_step_done(st);
}

static int op_fact_retract(store *s, const char *user_id, const char *id)
{
    retract_job j = {.user_id = user_id, .id = id};
    return sq_write(SQ(s), job_fact_retract, &j);
}

void sq_ops_layers(store_ops *ops)
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
