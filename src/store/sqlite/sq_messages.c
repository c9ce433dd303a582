/* sq_messages — rounds, messages and their chunk views in SQLite.
 *
 * A round is one add call; its messages share its created_at and keep input order through their rowid
 * (rid), which orders ties. A message is buffered exactly while its round's status is 0. A consolidation
 * records its flushes for the LLM layers in the same transaction (sq_flushes_record, sq_layers.c). */
#include "store/sqlite/sq.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

int sq_read_message(sqlite3_stmt *st, arena *a, void *dst)
{
    store_message *m = dst;
    m->id = sq_col_dup(a, st, 0);
    m->session_id = sq_col_dup(a, st, 1);
    m->round_id = sq_col_dup(a, st, 2);
    m->role = sq_col_dup(a, st, 3);
    m->content = sq_col_dup(a, st, 4);
    m->created_at = sq_col_dup(a, st, 5);
    m->updated_at = sq_col_dup(a, st, 6);
    m->buffered = sqlite3_column_int(st, 7);
    return m->id && m->session_id && m->round_id && m->role && m->content && m->created_at && m->updated_at
               ? STORE_OK
               : STORE_ERROR;
}

static int session_exists(sq_conn *c, const char *session_id)
{
    int64_t n = sq_query_int(c, "SELECT count(*) FROM sessions WHERE id = ?1", session_id);
    return n < 0 ? -1 : n > 0;
}

/* --- add ------------------------------------------------------------------------------------------------ */

typedef struct add_job {
    sq_store *s;
    const char *session_id;
    const store_msg_in *msgs;
    size_t n;
    int tokens, consolidate_new;
    const char *const *consolidate;
    size_t n_consolidate;
    arena *a;
    store_added *out;
} add_job;

/* Marks the named rounds consolidated and, with flushes on, records the flushes of those that were still
 * buffered (plus `also`, the add's own new round when it is stored consolidated). *own_flush: the flush of
 * own_session (the add's). */
static int consolidate_ids(sq_store *s, sq_conn *c, const char *const *ids, size_t n, const char *also,
                           const char *own_session, arena *a, const char **own_flush)
{
    const char **moved = NULL;
    size_t n_moved = 0;
    if (s->flushes) {
        moved = arena_alloc(a, (n + 1) * sizeof *moved);
        if (!moved)
            return STORE_ERROR;
        if (also)
            moved[n_moved++] = also;
        if (n) {
            sqlite3_stmt *st = sq_prepare(c, "SELECT id FROM rounds WHERE status = 0 AND id IN"
                                             " (SELECT value FROM json_each(?1))");
            if (!st || sq_bind_id_array(st, 1, ids, n, a) != SQLITE_OK)
                return STORE_ERROR;
            int r;
            while ((r = sqlite3_step(st)) == SQLITE_ROW && n_moved <= n)
                if (!(moved[n_moved++] = sq_col_dup(a, st, 0))) {
                    sqlite3_reset(st);
                    return STORE_ERROR;
                }
            sqlite3_reset(st);
            if (r != SQLITE_DONE && r != SQLITE_ROW)
                return sq_rc(r);
        }
    }
    if (n) {
        sqlite3_stmt *st = sq_prepare(c, "UPDATE rounds SET status = 1 WHERE status = 0 AND id IN"
                                         " (SELECT value FROM json_each(?1))");
        if (!st || sq_bind_id_array(st, 1, ids, n, a) != SQLITE_OK)
            return STORE_ERROR;
        int rc = sq_step_done(st);
        if (rc != STORE_OK)
            return rc;
    }
    return sq_flushes_record(s, c, moved, n_moved, own_session, a, own_flush);
}

static int job_add(sq_conn *c, void *arg)
{
    add_job *j = arg;
    /* user_id comes from the session, which also proves it exists */
    sqlite3_stmt *st = sq_prepare(c, "SELECT user_id FROM sessions WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, j->session_id);
    int r = sqlite3_step(st);
    const char *user_id = r == SQLITE_ROW ? sq_col_dup(j->a, st, 0) : NULL;
    sqlite3_reset(st);
    if (r == SQLITE_DONE)
        return STORE_NO_SESSION;
    if (!user_id)
        return STORE_ERROR;

    char round_id[UUID_STR_LEN + 1], now[TIME_ISO_LEN + 1];
    ids_uuid7(j->s->ids, round_id);
    time_now_iso(now);
    st = sq_prepare(c, "INSERT INTO rounds(id, session_id, user_id, status, tokens, created_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!st)
        return STORE_ERROR;
    sq_bind_text(st, 1, round_id);
    sq_bind_text(st, 2, j->session_id);
    sq_bind_text(st, 3, user_id);
    sqlite3_bind_int(st, 4, j->consolidate_new ? 1 : 0);
    sqlite3_bind_int(st, 5, j->tokens);
    sq_bind_text(st, 6, now);
    int rc = sq_step_done(st);
    if (rc != STORE_OK)
        return rc;

    const char **ids = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *ids);
    if (!ids)
        return STORE_ERROR;
    st = sq_prepare(c, "INSERT INTO messages(id, session_id, round_id, user_id, role, content, created_at, updated_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)");
    if (!st)
        return STORE_ERROR;
    for (size_t i = 0; i < j->n; i++) {
        char id[UUID_STR_LEN + 1];
        ids_uuid7(j->s->ids, id);
        sqlite3_reset(st);
        sq_bind_text(st, 1, id);
        sq_bind_text(st, 2, j->session_id);
        sq_bind_text(st, 3, round_id);
        sq_bind_text(st, 4, user_id);
        sq_bind_text(st, 5, j->msgs[i].role);
        sq_bind_text(st, 6, j->msgs[i].content);
        sq_bind_text(st, 7, now);
        if ((rc = sq_step_done(st)) != STORE_OK)
            return rc;
        if (!(ids[i] = arena_strdup(j->a, id)))
            return STORE_ERROR;
    }
    j->out->flush_id = NULL;
    if ((rc = consolidate_ids(j->s, c, j->consolidate, j->n_consolidate, j->consolidate_new ? round_id : NULL,
                              j->session_id, j->a, &j->out->flush_id)) != STORE_OK)
        return rc;
    j->out->round_id = arena_strdup(j->a, round_id);
    j->out->created_at = arena_strdup(j->a, now);
    j->out->message_ids = ids;
    j->out->n = j->n;
    return j->out->round_id && j->out->created_at ? STORE_OK : STORE_ERROR;
}

static int op_messages_add(store *s, const char *session_id, const store_msg_in *msgs, size_t n, int tokens,
                           int consolidate_new, const char *const *consolidate, size_t n_consolidate, arena *a,
                           store_added *out)
{
    add_job j = {.s = SQ(s), .session_id = session_id, .msgs = msgs, .n = n, .tokens = tokens,
                 .consolidate_new = consolidate_new, .consolidate = consolidate, .n_consolidate = n_consolidate,
                 .a = a, .out = out};
    return sq_write(SQ(s), job_add, &j);
}

/* --- list / read ---------------------------------------------------------------------------------------- */

static int op_messages_list(store *s, const char *session_id, const store_page *p, arena *a, store_message **out,
                            size_t *n)
{
    char sql[512];
    const char *dir = p->desc ? "DESC" : "ASC";
    const char *filter = p->buffer == STORE_BUFFERED ? " AND r.status = 0" : p->buffer == STORE_CONSOLIDATED ? " AND r.status = 1" : "";
    if (p->sort == STORE_SORT_ID)
        snprintf(sql, sizeof sql, "SELECT " SQ_MSG_COLS " FROM messages m JOIN rounds r ON r.id = m.round_id"
                 " WHERE m.session_id = ?1%s ORDER BY m.id %s LIMIT ?2", filter, dir);
    else
        snprintf(sql, sizeof sql, "SELECT " SQ_MSG_COLS " FROM messages m JOIN rounds r ON r.id = m.round_id"
                 " WHERE m.session_id = ?1%s ORDER BY m.created_at %s, m.rid %s LIMIT ?2", filter, dir, dir);
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, sql);
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, session_id);
        sqlite3_bind_int(st, 2, p->limit);
        rc = sq_collect(st, a, sizeof **out, sq_read_message, (size_t)-1, (void **)out, n);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

/* Looks up each id in the session; fills out (may be NULL) and the missing list. */
static int lookup_ids(sq_conn *c, const char *session_id, const char *const *ids, size_t n, arena *a,
                      store_message *out, const char ***missing, size_t *n_missing)
{
    sqlite3_stmt *st = sq_prepare(c, "SELECT " SQ_MSG_COLS " FROM messages m JOIN rounds r ON r.id = m.round_id"
                                     " WHERE m.id = ?1 AND m.session_id = ?2");
    if (!st)
        return STORE_ERROR;
    const char **miss = arena_alloc(a, (n ? n : 1) * sizeof *miss);
    if (!miss)
        return STORE_ERROR;
    size_t nm = 0;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sq_bind_text(st, 1, ids[i]);
        sq_bind_text(st, 2, session_id);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            if (out && sq_read_message(st, a, &out[i]) != STORE_OK) {
                sqlite3_reset(st);
                return STORE_ERROR;
            }
        } else if (r == SQLITE_DONE) {
            int seen = 0;
            for (size_t k = 0; k < nm && !seen; k++)
                seen = strcmp(miss[k], ids[i]) == 0;
            if (!seen)
                miss[nm++] = ids[i];
        } else {
            sqlite3_reset(st);
            return sq_rc(r) == STORE_OK ? STORE_ERROR : sq_rc(r);
        }
    }
    sqlite3_reset(st);
    *missing = miss;
    *n_missing = nm;
    return nm ? STORE_NOT_FOUND : STORE_OK;
}

static int op_messages_read(store *s, const char *session_id, const char *const *ids, size_t n, arena *a,
                            store_message *out, const char ***missing, size_t *n_missing)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sq_exec(c, "BEGIN"); /* one snapshot for every id */
    int rc = session_exists(c, session_id);
    rc = rc < 0 ? STORE_ERROR : rc == 0 ? STORE_NO_SESSION : lookup_ids(c, session_id, ids, n, a, out, missing, n_missing);
    sq_exec(c, "COMMIT");
    sq_reader_put(SQ(s), c);
    return rc;
}

/* --- update / delete -------------------------------------------------------------------------------------- */

typedef struct change_job {
    const char *session_id;
    const char *const *ids;
    const store_msg_in *msgs; /* NULL: delete */
    size_t n;
    arena *a;
    const char ***missing;
    size_t *n_missing;
} change_job;

static int job_change(sq_conn *c, void *arg)
{
    change_job *j = arg;
    int rc = session_exists(c, j->session_id);
    if (rc <= 0)
        return rc < 0 ? STORE_ERROR : STORE_NO_SESSION;
    if ((rc = lookup_ids(c, j->session_id, j->ids, j->n, j->a, NULL, j->missing, j->n_missing)) != STORE_OK)
        return rc; /* any unknown id: change nothing */
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    sqlite3_stmt *st = j->msgs ? sq_prepare(c, "UPDATE messages SET role = ?2, content = ?3, updated_at = max(?4, updated_at)"
                                               " WHERE id = ?1")
                               : sq_prepare(c, "DELETE FROM messages WHERE id = ?1");
    if (!st)
        return STORE_ERROR;
    for (size_t i = 0; i < j->n; i++) {
        sqlite3_reset(st);
        sq_bind_text(st, 1, j->ids[i]);
        if (j->msgs) {
            sq_bind_text(st, 2, j->msgs[i].role);
            sq_bind_text(st, 3, j->msgs[i].content);
            sq_bind_text(st, 4, now);
        }
        if ((rc = sq_step_done(st)) != STORE_OK)
            return rc;
    }
    /* a round left without messages has nothing to consolidate or show: drop it */
    if (!j->msgs) {
        st = sq_prepare(c, "DELETE FROM rounds WHERE session_id = ?1 AND NOT EXISTS"
                           " (SELECT 1 FROM messages m WHERE m.round_id = rounds.id)");
        if (!st)
            return STORE_ERROR;
        sq_bind_text(st, 1, j->session_id);
        if ((rc = sq_step_done(st)) != STORE_OK)
            return rc;
    }
    return STORE_OK;
}

static int op_messages_update(store *s, const char *session_id, const char *const *ids, const store_msg_in *msgs,
                              size_t n, arena *a, const char ***missing, size_t *n_missing)
{
    change_job j = {.session_id = session_id, .ids = ids, .msgs = msgs, .n = n, .a = a, .missing = missing,
                    .n_missing = n_missing};
    return sq_write(SQ(s), job_change, &j);
}

static int op_messages_delete(store *s, const char *session_id, const char *const *ids, size_t n, arena *a,
                              const char ***missing, size_t *n_missing)
{
    change_job j = {.session_id = session_id, .ids = ids, .msgs = NULL, .n = n, .a = a, .missing = missing,
                    .n_missing = n_missing};
    return sq_write(SQ(s), job_change, &j);
}

/* --- rounds ----------------------------------------------------------------------------------------------- */

static int read_round(sqlite3_stmt *st, arena *a, void *dst)
{
    store_round *r = dst;
    r->id = sq_col_dup(a, st, 0);
    r->session_id = sq_col_dup(a, st, 1);
    r->user_id = sq_col_dup(a, st, 2);
    r->created_at = sq_col_dup(a, st, 3);
    r->tokens = sqlite3_column_int(st, 4);
    r->buffered = sqlite3_column_int(st, 5) == 0;
    return r->id && r->session_id && r->user_id && r->created_at ? STORE_OK : STORE_ERROR;
}

#define ROUND_COLS "id, session_id, user_id, created_at, tokens, status"

static int op_rounds_buffered(store *s, arena *a, store_round **out, size_t *n)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " ROUND_COLS " FROM rounds WHERE status = 0 ORDER BY created_at, id");
    int rc = st ? sq_collect(st, a, sizeof **out, read_round, (size_t)-1, (void **)out, n) : STORE_ERROR;
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_round_get(store *s, const char *id, arena *a, store_round *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sqlite3_stmt *st = sq_prepare(c, "SELECT " ROUND_COLS " FROM rounds WHERE id = ?1");
    int rc = STORE_ERROR;
    if (st) {
        sq_bind_text(st, 1, id);
        rc = sq_collect_one(st, a, sizeof *out, read_round, out);
    }
    sq_reader_put(SQ(s), c);
    return rc;
}

typedef struct consolidate_job {
    sq_store *s;
    const char *const *ids;
    size_t n;
    arena a;
} consolidate_job;

static int job_consolidate(sq_conn *c, void *arg)
{
    consolidate_job *j = arg;
    return consolidate_ids(j->s, c, j->ids, j->n, NULL, NULL, &j->a, NULL);
}

static int op_rounds_consolidate(store *s, const char *const *ids, size_t n)
{
    consolidate_job j = {.s = SQ(s), .ids = ids, .n = n};
    arena_init(&j.a);
    int rc = sq_write(SQ(s), job_consolidate, &j);
    arena_free(&j.a);
    return rc;
}

/* --- chunks ----------------------------------------------------------------------------------------------- */

#define CHUNK_COLS "m.id, m.content, m.session_id, m.round_id, m.user_id, s.agent_id, m.role, m.created_at," \
                   " EXISTS (SELECT 1 FROM message_vectors v WHERE v.rid = m.rid)"

static int read_chunk(sqlite3_stmt *st, arena *a, void *dst)
{
    store_chunk *k = dst;
    k->chunk_id = sq_col_dup(a, st, 0);
    k->content = sq_col_dup(a, st, 1);
    k->session_id = sq_col_dup(a, st, 2);
    k->round_id = sq_col_dup(a, st, 3);
    k->user_id = sq_col_dup(a, st, 4);
    k->agent_id = sq_col_dup(a, st, 5);
    k->role = sq_col_dup(a, st, 6);
    k->created_at = sq_col_dup(a, st, 7);
    k->has_embedding = sqlite3_column_int(st, 8);
    return k->chunk_id && k->content && k->created_at ? STORE_OK : STORE_ERROR;
}

static const char *chunk_filter(enum store_chunk_store which)
{
    switch (which) {
    case STORE_CHUNKS_VECTOR:
        return " AND EXISTS (SELECT 1 FROM message_vectors v WHERE v.rid = m.rid)";
    case STORE_CHUNKS_GRAPH:
        return " AND 0"; /* no graph layer holds message chunks */
    default:
        return ""; /* every message chunk is in the keyword index */
    }
}

static int op_chunks_list(store *s, const char *session_id, const char *round_id, enum store_chunk_store which,
                          const store_page *p, arena *a, store_chunk **out, size_t *n, int64_t *total)
{
    const char *where = session_id ? "m.session_id = ?1" : "m.round_id = ?1";
    const char *dir = p->desc ? "DESC" : "ASC";
    char order[96];
    if (p->sort == STORE_SORT_ID)
        snprintf(order, sizeof order, "m.id %s", dir);
    else /* every chunk has the strategy "message": strategy order falls back to time */
        snprintf(order, sizeof order, "m.created_at %s, m.rid %s", dir, dir);
    char sql[768], csql[384];
    snprintf(sql, sizeof sql, "SELECT " CHUNK_COLS " FROM messages m JOIN sessions s ON s.id = m.session_id"
             " WHERE %s%s ORDER BY %s LIMIT ?2", where, chunk_filter(which), order);
    snprintf(csql, sizeof csql, "SELECT count(*) FROM messages m WHERE %s%s", where, chunk_filter(which));
    const char *key = session_id ? session_id : round_id;
    sq_conn *c = sq_reader_get(SQ(s));
    sq_exec(c, "BEGIN");
    int rc = STORE_ERROR;
    sqlite3_stmt *st = sq_prepare(c, sql);
    if (st) {
        sq_bind_text(st, 1, key);
        sqlite3_bind_int(st, 2, p->limit);
        rc = sq_collect(st, a, sizeof **out, read_chunk, (size_t)-1, (void **)out, n);
    }
    if (rc == STORE_OK && (*total = sq_query_int(c, csql, key)) < 0)
        rc = STORE_ERROR;
    sq_exec(c, "COMMIT");
    sq_reader_put(SQ(s), c);
    return rc;
}

static int op_chunks_stats(store *s, const char *user_id, const char *session_id, store_chunk_stats *out)
{
    sq_conn *c = sq_reader_get(SQ(s));
    sq_exec(c, "BEGIN");
    int rc = STORE_ERROR;
    sqlite3_stmt *st = sq_prepare(c,
        "SELECT"
        " (SELECT count(*) FROM messages m WHERE (?1 IS NULL OR m.user_id = ?1) AND (?2 IS NULL OR m.session_id = ?2)),"
        " (SELECT count(*) FROM messages m JOIN message_vectors v ON v.rid = m.rid"
        "   WHERE (?1 IS NULL OR m.user_id = ?1) AND (?2 IS NULL OR m.session_id = ?2)),"
        " CASE WHEN ?2 IS NULL THEN (SELECT count(*) FROM knowledge k WHERE (?1 IS NULL OR k.user_id = ?1)) ELSE 0 END,"
        " CASE WHEN ?2 IS NULL THEN (SELECT count(*) FROM knowledge k JOIN knowledge_vectors v ON v.rid = k.rid"
        "   WHERE (?1 IS NULL OR k.user_id = ?1)) ELSE 0 END");
    if (st) {
        sq_bind_text(st, 1, user_id);
        sq_bind_text(st, 2, session_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            int64_t msgs = sqlite3_column_int64(st, 0), mvec = sqlite3_column_int64(st, 1);
            int64_t know = sqlite3_column_int64(st, 2), kvec = sqlite3_column_int64(st, 3);
            out->total = msgs + know;
            out->keyword = msgs + know;
            out->vector = mvec + kvec;
            out->graph = 0;
            rc = STORE_OK;
        }
        sqlite3_reset(st);
    }
    sq_exec(c, "COMMIT");
    sq_reader_put(SQ(s), c);
    return rc;
}

/* One indexed range read per given message (messages_session_time: session, then time; rid breaks ties), all
 * in one read transaction. */
static int op_messages_following(store *s, const char *const *ids, size_t n, int depth, arena *a, store_follow **out,
                                 size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0 || depth <= 0)
        return STORE_OK;
    store_follow *f = arena_alloc(a, n * (size_t)depth * sizeof *f);
    if (!f)
        return STORE_ERROR;
    size_t o = 0;
    int rc = STORE_OK;
    sq_conn *c = sq_reader_get(SQ(s));
    sq_exec(c, "BEGIN");
    for (size_t i = 0; i < n && rc == STORE_OK; i++) {
        sqlite3_stmt *st = sq_prepare(c, "SELECT n.id FROM messages m JOIN messages n ON n.session_id = m.session_id"
                                         " AND (n.created_at, n.rid) > (m.created_at, m.rid)"
                                         " WHERE m.id = ?1 ORDER BY n.created_at, n.rid LIMIT ?2");
        if (!st) {
            rc = STORE_ERROR;
            break;
        }
        sq_bind_text(st, 1, ids[i]);
        sqlite3_bind_int(st, 2, depth);
        const char **next = NULL;
        size_t nn = 0;
        rc = sq_collect(st, a, sizeof *next, sq_read_id, (size_t)depth, (void **)&next, &nn);
        for (size_t k = 0; k < nn && rc == STORE_OK; k++)
            f[o++] = (store_follow){.from = ids[i], .id = next[k], .distance = (int)k + 1};
    }
    sq_exec(c, "COMMIT");
    sq_reader_put(SQ(s), c);
    if (rc != STORE_OK)
        return rc;
    *out = f;
    *n_out = o;
    return STORE_OK;
}

void sq_ops_messages(store_ops *ops)
{
    ops->messages_add = op_messages_add;
    ops->messages_following = op_messages_following;
    ops->messages_list = op_messages_list;
    ops->messages_read = op_messages_read;
    ops->messages_update = op_messages_update;
    ops->messages_delete = op_messages_delete;
    ops->rounds_buffered = op_rounds_buffered;
    ops->rounds_consolidate = op_rounds_consolidate;
    ops->round_get = op_round_get;
    ops->chunks_list = op_chunks_list;
    ops->chunks_stats = op_chunks_stats;
}
