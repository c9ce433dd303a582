/* pg_messages — rounds, messages and their chunk views in PostgreSQL. Mirrors sq_messages.c.
 *
 * A round is one add call; its messages share its created_at and keep input order through their
 * bigserial seq, which orders ties. A message is buffered exactly while its round's status is 0. A
 * consolidation (messages_add's, rounds_consolidate) hands the rounds it actually moved to
 * pg_flushes_record (pg_layers.c), which records their flushes in the same transaction. */
#include "store/pg/pg.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

int pg_read_message(PGresult *r, int row, arena *a, void *dst)
{
    store_message *m = dst;
    m->id = pg_dup(a, r, row, 0);
    m->session_id = pg_dup(a, r, row, 1);
    m->round_id = pg_dup(a, r, row, 2);
    m->role = pg_dup(a, r, row, 3);
    m->content = pg_dup(a, r, row, 4);
    m->created_at = pg_dup(a, r, row, 5);
    m->updated_at = pg_dup(a, r, row, 6);
    m->buffered = pg_get_int(r, row, 7);
    return m->id && m->session_id && m->round_id && m->role && m->content && m->created_at && m->updated_at
               ? STORE_OK
               : STORE_ERROR;
}

/* STORE_OK when the session exists, STORE_NO_SESSION when not, else the error. */
static int session_check(pg_conn *c, const char *session_id)
{
    const char *p[1] = {session_id};
    int64_t n = pg_query_int(c, "SELECT count(*) FROM sessions WHERE id = $1", 1, p);
    return n < 0 ? (c->broken ? STORE_UNAVAILABLE : STORE_ERROR) : n > 0 ? STORE_OK : STORE_NO_SESSION;
}

/* --- add ------------------------------------------------------------------------------------------------ */

typedef struct add_job {
    pg_store *s;
    const char *session_id;
    const store_msg_in *msgs;
    size_t n;
    int tokens, consolidate_new;
    const char *const *consolidate;
    size_t n_consolidate;
    arena *a;
    store_added *out;
} add_job;

/* Marks the buffered rounds among ids consolidated and appends the ids it actually moved to moved[]
 * (room for n more; *n_moved counts them). */
static int consolidate_ids(pg_conn *c, const char *const *ids, size_t n, arena *a, const char **moved, size_t *n_moved)
{
    if (n == 0)
        return STORE_OK;
    const char *p[1] = {pg_text_array(a, ids, n)};
    if (!p[0])
        return STORE_ERROR;
    int rc;
    PGresult *r = pg_run(c, "UPDATE rounds SET status = 1 WHERE status = 0 AND id = ANY($1::text[]) RETURNING id", 1, p,
                         &rc);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && (size_t)i < n && rc == STORE_OK; i++)
        if (!(moved[(*n_moved)++] = pg_dup(a, r, i, 0)))
            rc = STORE_ERROR;
    PQclear(r);
    return rc;
}

static int job_add(pg_conn *c, void *arg)
{
    add_job *j = arg;
    /* user_id comes from the session, which also proves it exists */
    const char *p[7] = {j->session_id};
    int rc;
    PGresult *r = pg_run(c, "SELECT user_id FROM sessions WHERE id = $1", 1, p, &rc);
    if (!r)
        return rc;
    const char *user_id = PQntuples(r) ? pg_dup(j->a, r, 0, 0) : NULL;
    int found = PQntuples(r) > 0;
    PQclear(r);
    if (!found)
        return STORE_NO_SESSION;
    if (!user_id)
        return STORE_ERROR;

    char round_id[UUID_STR_LEN + 1], now[TIME_ISO_LEN + 1], tokens[24];
    ids_uuid7(j->s->ids, round_id);
    time_now_iso(now);
    snprintf(tokens, sizeof tokens, "%d", j->tokens);
    const char *rp[6] = {round_id, j->session_id, user_id, j->consolidate_new ? "1" : "0", tokens, now};
    if ((rc = pg_cmd(c, "INSERT INTO rounds(id, session_id, user_id, status, tokens, created_at)"
                        " VALUES ($1, $2, $3, $4, $5, $6)",
                     6, rp, NULL)) != STORE_OK)
        return rc;

    const char **ids = arena_alloc(j->a, (j->n ? j->n : 1) * sizeof *ids);
    if (!ids)
        return STORE_ERROR;
    for (size_t i = 0; i < j->n; i++) {
        char id[UUID_STR_LEN + 1];
        ids_uuid7(j->s->ids, id);
        const char *mp[7] = {id, j->session_id, round_id, user_id, j->msgs[i].role, j->msgs[i].content, now};
        if ((rc = pg_cmd(c, "INSERT INTO messages(id, session_id, round_id, user_id, role, content, created_at,"
                            " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                         7, mp, NULL)) != STORE_OK)
            return rc;
        if (!(ids[i] = arena_strdup(j->a, id)))
            return STORE_ERROR;
    }
    /* the rounds this add consolidates: its own (when consolidate_new) and the still buffered of consolidate[] */
    const char **moved = arena_alloc(j->a, (j->n_consolidate + 1) * sizeof *moved);
    size_t n_moved = 0;
    if (!moved)
        return STORE_ERROR;
    if (j->consolidate_new && !(moved[n_moved++] = arena_strdup(j->a, round_id)))
        return STORE_ERROR;
    if ((rc = consolidate_ids(c, j->consolidate, j->n_consolidate, j->a, moved, &n_moved)) != STORE_OK)
        return rc;
    j->out->flush_id = NULL;
    if ((rc = pg_flushes_record(j->s, c, moved, n_moved, j->session_id, j->a, &j->out->flush_id)) != STORE_OK)
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
    add_job j = {.s = PGS(s), .session_id = session_id, .msgs = msgs, .n = n, .tokens = tokens,
                 .consolidate_new = consolidate_new, .consolidate = consolidate, .n_consolidate = n_consolidate,
                 .a = a, .out = out};
    return pg_write(PGS(s), job_add, &j);
}

/* --- list / read ---------------------------------------------------------------------------------------- */

static int op_messages_list(store *s, const char *session_id, const store_page *p, arena *a, store_message **out,
                            size_t *n)
{
    char sql[512];
    const char *dir = p->desc ? "DESC" : "ASC";
    const char *filter = p->buffer == STORE_BUFFERED      ? " AND r.status = 0"
                         : p->buffer == STORE_CONSOLIDATED ? " AND r.status = 1"
                                                           : "";
    if (p->sort == STORE_SORT_ID)
        snprintf(sql, sizeof sql, "SELECT " PG_MSG_COLS " FROM messages m JOIN rounds r ON r.id = m.round_id"
                 " WHERE m.session_id = $1%s ORDER BY m.id %s LIMIT $2", filter, dir);
    else
        snprintf(sql, sizeof sql, "SELECT " PG_MSG_COLS " FROM messages m JOIN rounds r ON r.id = m.round_id"
                 " WHERE m.session_id = $1%s ORDER BY m.created_at %s, m.seq %s LIMIT $2", filter, dir, dir);
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *par[2] = {session_id, pg_itoa(a, p->limit)};
    int rc = par[1] ? pg_collect(c, sql, 2, par, a, sizeof **out, pg_read_message, (void **)out, n) : STORE_ERROR;
    pg_reader_done(PGS(s), c);
    return rc;
}

/* Looks up every id in the session in one statement; fills out (may be NULL) in request order and the
 * missing list (request order, no repeats). */
static int lookup_ids(pg_conn *c, const char *session_id, const char *const *ids, size_t n, arena *a,
                      store_message *out, const char ***missing, size_t *n_missing)
{
    const char **miss = arena_alloc(a, (n ? n : 1) * sizeof *miss);
    const char *p[2] = {pg_text_array(a, ids, n), session_id};
    if (!miss || !p[0])
        return STORE_ERROR;
    int rc;
    /* one row per requested position; the message columns are NULL where the id is not in the session */
    PGresult *r = pg_run(c, "SELECT " PG_MSG_COLS ", q.ord FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord)"
                            " LEFT JOIN (messages m JOIN rounds r ON r.id = m.round_id)"
                            "   ON m.id = q.id AND m.session_id = $2 ORDER BY q.ord",
                         2, p, &rc);
    if (!r)
        return rc;
    size_t nm = 0;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && rc == STORE_OK; i++) {
        size_t at = (size_t)pg_get_i64(r, i, 8) - 1;
        if (at >= n) {
            rc = STORE_ERROR;
        } else if (!PQgetisnull(r, i, 0)) {
            if (out && pg_read_message(r, i, a, &out[at]) != STORE_OK)
                rc = STORE_ERROR;
        } else {
            int seen = 0;
            for (size_t k = 0; k < nm && !seen; k++)
                seen = strcmp(miss[k], ids[at]) == 0;
            if (!seen)
                miss[nm++] = ids[at];
        }
    }
    PQclear(r);
    if (rc != STORE_OK)
        return rc;
    *missing = miss;
    *n_missing = nm;
    return nm ? STORE_NOT_FOUND : STORE_OK;
}

static int op_messages_read(store *s, const char *session_id, const char *const *ids, size_t n, arena *a,
                            store_message *out, const char ***missing, size_t *n_missing)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_snapshot_begin(c); /* one snapshot for every id */
    if (rc == STORE_OK && (rc = session_check(c, session_id)) == STORE_OK)
        rc = lookup_ids(c, session_id, ids, n, a, out, missing, n_missing);
    int e = pg_exec(c, "COMMIT");
    if (rc == STORE_OK)
        rc = e;
    pg_reader_done(PGS(s), c);
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

static int job_change(pg_conn *c, void *arg)
{
    change_job *j = arg;
    int rc = session_check(c, j->session_id);
    if (rc != STORE_OK)
        return rc;
    if ((rc = lookup_ids(c, j->session_id, j->ids, j->n, j->a, NULL, j->missing, j->n_missing)) != STORE_OK)
        return rc; /* any unknown id: change nothing */
    char now[TIME_ISO_LEN + 1];
    time_now_iso(now);
    for (size_t i = 0; i < j->n && rc == STORE_OK; i++) {
        if (j->msgs) {
            const char *p[4] = {j->ids[i], j->msgs[i].role, j->msgs[i].content, now};
            rc = pg_cmd(c, "UPDATE messages SET role = $2, content = $3, updated_at = greatest($4, updated_at)"
                           " WHERE id = $1",
                        4, p, NULL);
        } else {
            const char *p[1] = {j->ids[i]};
            rc = pg_cmd(c, "DELETE FROM messages WHERE id = $1", 1, p, NULL);
        }
    }
    /* a round left without messages has nothing to consolidate or show: drop it */
    if (rc == STORE_OK && !j->msgs) {
        const char *p[1] = {j->session_id};
        rc = pg_cmd(c, "DELETE FROM rounds WHERE session_id = $1 AND NOT EXISTS"
                       " (SELECT 1 FROM messages m WHERE m.round_id = rounds.id)",
                    1, p, NULL);
    }
    return rc;
}

static int op_messages_update(store *s, const char *session_id, const char *const *ids, const store_msg_in *msgs,
                              size_t n, arena *a, const char ***missing, size_t *n_missing)
{
    change_job j = {.session_id = session_id, .ids = ids, .msgs = msgs, .n = n, .a = a, .missing = missing,
                    .n_missing = n_missing};
    return pg_write(PGS(s), job_change, &j);
}

static int op_messages_delete(store *s, const char *session_id, const char *const *ids, size_t n, arena *a,
                              const char ***missing, size_t *n_missing)
{
    change_job j = {.session_id = session_id, .ids = ids, .msgs = NULL, .n = n, .a = a, .missing = missing,
                    .n_missing = n_missing};
    return pg_write(PGS(s), job_change, &j);
}

/* --- rounds ----------------------------------------------------------------------------------------------- */

static int read_round(PGresult *r, int row, arena *a, void *dst)
{
    store_round *o = dst;
    o->id = pg_dup(a, r, row, 0);
    o->session_id = pg_dup(a, r, row, 1);
    o->user_id = pg_dup(a, r, row, 2);
    o->created_at = pg_dup(a, r, row, 3);
    o->tokens = pg_get_int(r, row, 4);
    o->buffered = pg_get_int(r, row, 5) == 0;
    return o->id && o->session_id && o->user_id && o->created_at ? STORE_OK : STORE_ERROR;
}

#define ROUND_COLS "id, session_id, user_id, created_at, tokens, status"

static int op_rounds_buffered(store *s, arena *a, store_round **out, size_t *n)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c, "SELECT " ROUND_COLS " FROM rounds WHERE status = 0 ORDER BY created_at, id", 0, NULL, a,
                        sizeof **out, read_round, (void **)out, n);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_round_get(store *s, const char *id, arena *a, store_round *out)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[1] = {id};
    int rc = pg_collect_one(c, "SELECT " ROUND_COLS " FROM rounds WHERE id = $1", 1, p, a, sizeof *out, read_round, out);
    pg_reader_done(PGS(s), c);
    return rc;
}

typedef struct consolidate_job {
    pg_store *s;
    const char *const *ids;
    size_t n;
    arena a;
} consolidate_job;

static int job_consolidate(pg_conn *c, void *arg)
{
    consolidate_job *j = arg;
    const char **moved = arena_alloc(&j->a, (j->n + 1) * sizeof *moved);
    size_t n_moved = 0;
    if (!moved)
        return STORE_ERROR;
    int rc = consolidate_ids(c, j->ids, j->n, &j->a, moved, &n_moved);
    return rc == STORE_OK ? pg_flushes_record(j->s, c, moved, n_moved, NULL, &j->a, NULL) : rc;
}

static int op_rounds_consolidate(store *s, const char *const *ids, size_t n)
{
    consolidate_job j = {.s = PGS(s), .ids = ids, .n = n};
    arena_init(&j.a);
    int rc = pg_write(PGS(s), job_consolidate, &j);
    arena_free(&j.a);
    return rc;
}

/* --- chunks ----------------------------------------------------------------------------------------------- */

#define CHUNK_COLS "m.id, m.content, m.session_id, m.round_id, m.user_id, s.agent_id, m.role, m.created_at," \
                   " EXISTS (SELECT 1 FROM message_vectors v WHERE v.seq = m.seq)::int"

static int read_chunk(PGresult *r, int row, arena *a, void *dst)
{
    store_chunk *k = dst;
    k->chunk_id = pg_dup(a, r, row, 0);
    k->content = pg_dup(a, r, row, 1);
    k->session_id = pg_dup(a, r, row, 2);
    k->round_id = pg_dup(a, r, row, 3);
    k->user_id = pg_dup(a, r, row, 4);
    k->agent_id = pg_dup(a, r, row, 5);
    k->role = pg_dup(a, r, row, 6);
    k->created_at = pg_dup(a, r, row, 7);
    k->has_embedding = pg_get_int(r, row, 8);
    return k->chunk_id && k->content && k->created_at ? STORE_OK : STORE_ERROR;
}

static const char *chunk_filter(enum store_chunk_store which)
{
    switch (which) {
    case STORE_CHUNKS_VECTOR:
        return " AND EXISTS (SELECT 1 FROM message_vectors v WHERE v.seq = m.seq)";
    case STORE_CHUNKS_GRAPH:
        return " AND false"; /* no graph layer holds message chunks */
    default:
        return ""; /* every message chunk is in the keyword index */
    }
}

static int op_chunks_list(store *s, const char *session_id, const char *round_id, enum store_chunk_store which,
                          const store_page *p, arena *a, store_chunk **out, size_t *n, int64_t *total)
{
    const char *where = session_id ? "m.session_id = $1" : "m.round_id = $1";
    const char *dir = p->desc ? "DESC" : "ASC";
    char order[96];
    if (p->sort == STORE_SORT_ID)
        snprintf(order, sizeof order, "m.id %s", dir);
    else /* every chunk has the strategy "message": strategy order falls back to time */
        snprintf(order, sizeof order, "m.created_at %s, m.seq %s", dir, dir);
    char sql[768], csql[384];
    snprintf(sql, sizeof sql, "SELECT " CHUNK_COLS " FROM messages m JOIN sessions s ON s.id = m.session_id"
             " WHERE %s%s ORDER BY %s LIMIT $2", where, chunk_filter(which), order);
    snprintf(csql, sizeof csql, "SELECT count(*) FROM messages m WHERE %s%s", where, chunk_filter(which));
    const char *par[2] = {session_id ? session_id : round_id, pg_itoa(a, p->limit)};
    if (!par[1])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_snapshot_begin(c);
    if (rc == STORE_OK)
        rc = pg_collect(c, sql, 2, par, a, sizeof **out, read_chunk, (void **)out, n);
    if (rc == STORE_OK && (*total = pg_query_int(c, csql, 1, par)) < 0)
        rc = c->broken ? STORE_UNAVAILABLE : STORE_ERROR;
    rc = pg_snapshot_end(c, rc);
    pg_reader_done(PGS(s), c);
    return rc;
}

static int op_chunks_stats(store *s, const char *user_id, const char *session_id, store_chunk_stats *out)
{
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    const char *p[2] = {user_id, session_id};
    int rc;
    PGresult *r = pg_run(c,
        "SELECT"
        " (SELECT count(*) FROM messages m WHERE ($1::text IS NULL OR m.user_id = $1)"
        "   AND ($2::text IS NULL OR m.session_id = $2)),"
        " (SELECT count(*) FROM messages m JOIN message_vectors v ON v.seq = m.seq"
        "   WHERE ($1::text IS NULL OR m.user_id = $1) AND ($2::text IS NULL OR m.session_id = $2)),"
        " CASE WHEN $2::text IS NULL THEN (SELECT count(*) FROM knowledge k WHERE ($1::text IS NULL OR k.user_id = $1))"
        "   ELSE 0 END,"
        " CASE WHEN $2::text IS NULL THEN (SELECT count(*) FROM knowledge k JOIN knowledge_vectors v ON v.seq = k.seq"
        "   WHERE ($1::text IS NULL OR k.user_id = $1)) ELSE 0 END",
        2, p, &rc);
    if (r) {
        int64_t msgs = pg_get_i64(r, 0, 0), mvec = pg_get_i64(r, 0, 1), know = pg_get_i64(r, 0, 2), kvec = pg_get_i64(r, 0, 3);
        out->total = msgs + know;
        out->keyword = msgs + know;
        out->vector = mvec + kvec;
        out->graph = 0;
        PQclear(r);
    }
    pg_reader_done(PGS(s), c);
    return rc;
}

static int read_follow(PGresult *r, int row, arena *a, void *dst)
{
    store_follow *f = dst;
    f->from = pg_dup(a, r, row, 0);
    f->id = pg_dup(a, r, row, 1);
    f->distance = pg_get_int(r, row, 2);
    return f->from && f->id ? STORE_OK : STORE_ERROR;
}

/* One round trip: a LATERAL range read per given message over messages_session_time. */
static int op_messages_following(store *s, const char *const *ids, size_t n, int depth, arena *a, store_follow **out,
                                 size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (n == 0 || depth <= 0)
        return STORE_OK;
    const char *p[2] = {pg_text_array(a, ids, n), pg_itoa(a, depth)};
    if (!p[0] || !p[1])
        return STORE_ERROR;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_collect(c,
                        "SELECT q.id, f.id, f.d FROM unnest($1::text[]) WITH ORDINALITY AS q(id, ord)"
                        " JOIN messages m ON m.id = q.id CROSS JOIN LATERAL"
                        " (SELECT x.id, row_number() OVER (ORDER BY x.created_at, x.seq) AS d FROM"
                        "   (SELECT n.id, n.created_at, n.seq FROM messages n WHERE n.session_id = m.session_id"
                        "    AND (n.created_at, n.seq) > (m.created_at, m.seq) ORDER BY n.created_at, n.seq"
                        "    LIMIT $2::int) x) f"
                        " ORDER BY q.ord, f.d",
                        2, p, a, sizeof **out, read_follow, (void **)out, n_out);
    pg_reader_done(PGS(s), c);
    return rc;
}

void pg_ops_messages(store_ops *ops)
{
    ops->messages_add = op_messages_add;
    ops->messages_list = op_messages_list;
    ops->messages_read = op_messages_read;
    ops->messages_update = op_messages_update;
    ops->messages_delete = op_messages_delete;
    ops->messages_following = op_messages_following;
    ops->rounds_buffered = op_rounds_buffered;
    ops->rounds_consolidate = op_rounds_consolidate;
    ops->round_get = op_round_get;
    ops->chunks_list = op_chunks_list;
    ops->chunks_stats = op_chunks_stats;
}
