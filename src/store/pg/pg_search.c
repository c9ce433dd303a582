/* pg_search — keyword search over a user's messages, knowledge, episodes and facts with PostgreSQL full-text search.
 *
 * The terms (already split and lower-cased by src/search/terms.c) become one tsquery text of quoted
 * lexemes OR-ed together ('a' | 'b'), passed as a parameter to to_tsquery('memfuse_english', $1): no user
 * text is ever read as SQL, and quoting keeps it from being read as tsquery operators. Messages,
 * knowledge, episodes and current facts are searched separately (each has its own GIN index; the facts'
 * holds only current ones) and merged by score; the score is ts_rank_cd, positive for every match. */
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

static int by_score_desc(const void *x, const void *y)
{
    const store_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return strcmp(a->id, b->id);
}

/* Per unit type: $1 the tsquery text, $2 the user, $3 the agent (NULL: any), $4 the limit; knowledge
 * belongs to the user, not to an agent, so its $3 is the limit; messages take $5, whether their context (the
 * message before them, column ctx) also matches, weighed 0.1 as in the SQLite backend. Columns as pg_read_hit
 * reads them, the score last. */
static const char *const SEARCH[STORE_UNIT_TYPES] = {
    "SELECT 0, m.id, m.content, m.role, m.created_at, m.updated_at, m.session_id, s.name, s.agent_id,"
    " " PG_HIT_NO_LAYER_COLS ", ts_rank_cd(m.tsv, q.q)"
    "   + CASE WHEN $5::bool THEN 0.1 * coalesce(ts_rank_cd(m.ctx, q.q), 0) ELSE 0 END AS score"
    " FROM to_tsquery('memfuse_english', $1) AS q(q), messages m JOIN sessions s ON s.id = m.session_id"
    " WHERE (m.tsv @@ q.q OR ($5::bool AND m.ctx @@ q.q)) AND m.user_id = $2"
    " AND ($3::text IS NULL OR s.agent_id = $3) ORDER BY score DESC, m.id LIMIT $4",
    "SELECT 1, k.id, k.content, NULL, k.created_at, k.updated_at, NULL, NULL, NULL,"
    " " PG_HIT_NO_LAYER_COLS ", ts_rank_cd(k.tsv, q.q) AS score"
    " FROM to_tsquery('memfuse_english', $1) AS q(q), knowledge k"
    " WHERE k.tsv @@ q.q AND k.user_id = $2 ORDER BY score DESC, k.id LIMIT $3",
    "SELECT " PG_HIT_EPISODE_COLS ", ts_rank_cd(e.tsv, q.q) AS score"
    " FROM to_tsquery('memfuse_english', $1) AS q(q), episodes e LEFT JOIN sessions s ON s.id = e.session_id"
    " WHERE e.tsv @@ q.q AND e.user_id = $2 AND ($3::text IS NULL OR e.agent_id = $3)"
    " ORDER BY score DESC, e.id LIMIT $4",
    /* status = 0 also selects the partial index that holds only current facts */
    "SELECT " PG_HIT_FACT_COLS ", ts_rank_cd(x.tsv, q.q) AS score"
    " FROM to_tsquery('memfuse_english', $1) AS q(q), facts x LEFT JOIN sessions s ON s.id = x.session_id"
    " WHERE x.status = 0 AND x.tsv @@ q.q AND x.user_id = $2 AND ($3::text IS NULL OR x.agent_id = $3)"
    " ORDER BY score DESC, x.id LIMIT $4",
};

static int op_search_keyword(store *s, const store_search *q, arena *a, store_hit **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int include[STORE_UNIT_TYPES] = {q->include_messages, q->include_knowledge, q->include_episodes,
                                     q->include_facts};
    int any = 0;
    for (int t = 0; t < STORE_UNIT_TYPES; t++)
        any |= include[t];
    if (q->n_terms == 0 || q->limit <= 0 || !any)
        return STORE_OK;
    const char *tq = tsquery_text(a, q->terms, q->n_terms), *limit = pg_itoa(a, q->limit);
    if (!tq || !limit)
        return STORE_ERROR;
    store_hit *part[STORE_UNIT_TYPES] = {0};
    size_t np[STORE_UNIT_TYPES] = {0}, total = 0;
    pg_conn *c = pg_reader(PGS(s));
    if (!c)
        return STORE_UNAVAILABLE;
    int rc = pg_snapshot_begin(c);
    for (int t = 0; t < STORE_UNIT_TYPES && rc == STORE_OK; t++) {
        if (!include[t])
            continue;
        const char *with_agent[5] = {tq, q->user_id, q->agent_id, limit, q->context ? "t" : "f"};
        const char *without[3] = {tq, q->user_id, limit};
        int knowledge = t == STORE_HIT_KNOWLEDGE, nparams = knowledge ? 3 : t == STORE_HIT_MESSAGE ? 5 : 4;
        rc = pg_collect(c, SEARCH[t], nparams, knowledge ? without : with_agent, a, sizeof **part,
                        pg_read_hit, (void **)&part[t], &np[t]);
        total += np[t];
    }
    rc = pg_snapshot_end(c, rc);
    pg_reader_done(PGS(s), c);
    if (rc != STORE_OK)
        return rc;
    store_hit *all = arena_alloc(a, (total + 1) * sizeof *all);
    if (!all)
        return STORE_ERROR;
    size_t o = 0;
    for (int t = 0; t < STORE_UNIT_TYPES; t++) {
        if (np[t])
            memcpy(all + o, part[t], np[t] * sizeof *all);
        o += np[t];
    }
    qsort(all, total, sizeof *all, by_score_desc);
    *out = all;
    *n = total < (size_t)q->limit ? total : (size_t)q->limit;
    return STORE_OK;
}

void pg_ops_search(store_ops *ops) { ops->search_keyword = op_search_keyword; }
