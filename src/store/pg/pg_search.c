/* pg_search — keyword search over a user's messages and knowledge with PostgreSQL full-text search.
 *
 * The terms (already split and lower-cased by src/search/terms.c) become one tsquery text of quoted
 * lexemes OR-ed together ('a' | 'b'), passed as a parameter to to_tsquery('memfuse_english', $1): no user
 * text is ever read as SQL, and quoting keeps it from being read as tsquery operators. Messages and
 * knowledge are searched separately (each has its own GIN index) and merged by score; the score is
 * ts_rank_cd, positive for every match. */
#include "store/pg/pg.h"

#include <stdlib.h>
#include <string.h>

static char *tsquery_text(arena *a, const char *const *terms, size_t n)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(terms[i]) + 5;
    char *q = arena_alloc(a, cap);
    if (!q)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) {
            memcpy(q + o, " | ", 3);
            o += 3;
        }
        q[o++] = '\'';
        for (const char *p = terms[i]; *p; p++) {
            if (*p == '\'' || *p == '\\')
                q[o++] = '\\';
            q[o++] = *p;
        }
        q[o++] = '\'';
    }
    q[o] = '\0';
    return q;
}

static int read_msg_hit(PGresult *r, int row, arena *a, void *dst)
{
    store_hit *h = dst;
    h->type = STORE_HIT_MESSAGE;
    h->id = pg_dup(a, r, row, 0);
    h->content = pg_dup(a, r, row, 1);
    h->role = pg_dup(a, r, row, 2);
    h->created_at = pg_dup(a, r, row, 3);
    h->updated_at = pg_dup(a, r, row, 4);
    h->session_id = pg_dup(a, r, row, 5);
    h->session_name = pg_dup(a, r, row, 6);
    h->agent_id = pg_dup(a, r, row, 7);
    h->score = strtod(PQgetvalue(r, row, 8), NULL);
    return h->id && h->content ? STORE_OK : STORE_ERROR;
}

static int read_know_hit(PGresult *r, int row, arena *a, void *dst)
{
    store_hit *h = dst;
    memset(h, 0, sizeof *h);
    h->type = STORE_HIT_KNOWLEDGE;
    h->id = pg_dup(a, r, row, 0);
    h->content = pg_dup(a, r, row, 1);
    h->created_at = pg_dup(a, r, row, 2);
    h->updated_at = pg_dup(a, r, row, 3);
    h->score = strtod(PQgetvalue(r, row, 4), NULL);
    return h->id && h->content ? STORE_OK : STORE_ERROR;
}

static int by_score_desc(const void *x, const void *y)
{
    const store_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return strcmp(a->id, b->id);
}

static int op_search_keyword(store *s, const store_search *q, arena *a, store_hit **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (q->n_terms == 0 || q->limit <= 0 || (!q->include_messages && !q->include_knowledge))
        return STORE_OK;
    const char *tq = tsquery_text(a, q->terms, q->n_terms), *limit = pg_itoa(a, q->limit);
    if (!tq || !limit)
        return STORE_ERROR;
    store_hit *mh = NULL, *kh = NULL;
    size_t nm = 0, nk = 0;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_snapshot_begin(c);
    if (rc == STORE_OK && q->include_messages) {
        const char *p[4] = {tq, q->user_id, q->agent_id, limit};
        rc = pg_collect(c,
            "SELECT m.id, m.content, m.role, m.created_at, m.updated_at, m.session_id, s.name, s.agent_id,"
            " ts_rank_cd(m.tsv, q.q) AS score"
            " FROM to_tsquery('memfuse_english', $1) AS q(q), messages m JOIN sessions s ON s.id = m.session_id"
            " WHERE m.tsv @@ q.q AND m.user_id = $2 AND ($3::text IS NULL OR s.agent_id = $3)"
            " ORDER BY score DESC, m.id LIMIT $4",
            4, p, a, sizeof *mh, read_msg_hit, (void **)&mh, &nm);
    }
    if (rc == STORE_OK && q->include_knowledge) {
        const char *p[3] = {tq, q->user_id, limit};
        rc = pg_collect(c,
            "SELECT k.id, k.content, k.created_at, k.updated_at, ts_rank_cd(k.tsv, q.q) AS score"
            " FROM to_tsquery('memfuse_english', $1) AS q(q), knowledge k"
            " WHERE k.tsv @@ q.q AND k.user_id = $2 ORDER BY score DESC, k.id LIMIT $3",
            3, p, a, sizeof *kh, read_know_hit, (void **)&kh, &nk);
    }
    rc = pg_snapshot_end(c, rc);
    pg_reader_done(PGS(s), c);
    if (rc != STORE_OK)
        return rc;
    store_hit *all = arena_alloc(a, (nm + nk + 1) * sizeof *all);
    if (!all)
        return STORE_ERROR;
    if (nm)
        memcpy(all, mh, nm * sizeof *all);
    if (nk)
        memcpy(all + nm, kh, nk * sizeof *all);
    qsort(all, nm + nk, sizeof *all, by_score_desc);
    *out = all;
    *n = nm + nk < (size_t)q->limit ? nm + nk : (size_t)q->limit;
    return STORE_OK;
}

void pg_ops_search(store_ops *ops) { ops->search_keyword = op_search_keyword; }
