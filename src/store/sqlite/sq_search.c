/* sq_search — keyword (BM25) search over a user's messages, knowledge, episodes and current facts with FTS5.
 * A message's row also holds the message before it (column prev, weighed SQ_CONTEXT_WEIGHT); a search
 * without context matches the own text only (a column filter).
 *
 * Terms are quoted as FTS5 strings and OR-ed, so no user text is ever read as query syntax. Each unit type
 * has its own index and is searched separately (in one read transaction, so all see one snapshot); the
 * results are merged by score; the score is -bm25(), which FTS5 keeps positive. Only current facts are in
 * fact_fts (sq_schema.c's triggers). Keyword rows are keyed by user (rowid = users.ukey * 2^32 + rid), and
 * a search reads its user's key range only. */
#include "store/sqlite/sq.h"

#include <stdlib.h>
#include <string.h>

/* '"t1" OR "t2" ...', or with own_text 'body : ("t1" OR ...)', which leaves the context column out. */
static char *fts_query(arena *a, const char *const *terms, size_t n, int own_text)
{
    size_t cap = 16;
    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(terms[i]) + 6;
    char *q = arena_alloc(a, cap);
    if (!q)
        return NULL;
    size_t o = 0;
    if (own_text) {
        memcpy(q, "body : (", 8);
        o = 8;
    }
    for (size_t i = 0; i < n; i++) {
        if (i) {
            memcpy(q + o, " OR ", 4);
            o += 4;
        }
        q[o++] = '"';
        for (const char *p = terms[i]; *p; p++) {
            if (*p == '"')
                q[o++] = '"';
            q[o++] = *p;
        }
        q[o++] = '"';
    }
    if (own_text)
        q[o++] = ')';
    q[o] = '\0';
    return q;
}

int sq_read_hit(sqlite3_stmt *st, arena *a, store_hit *h, int with_score)
{
    memset(h, 0, sizeof *h);
    int t = sqlite3_column_int(st, 0);
    h->type = t >= 0 && t < STORE_UNIT_TYPES ? (enum store_hit_type)t : STORE_HIT_MESSAGE;
    h->id = sq_col_dup(a, st, 1);
    h->content = sq_col_dup(a, st, 2);
    h->role = sq_col_dup(a, st, 3);
    h->created_at = sq_col_dup(a, st, 4);
    h->updated_at = sq_col_dup(a, st, 5);
    h->session_id = sq_col_dup(a, st, 6);
    h->session_name = sq_col_dup(a, st, 7);
    h->agent_id = sq_col_dup(a, st, 8);
    h->occurred_at = sq_col_dup(a, st, 9);
    h->source_ids = sq_col_dup(a, st, 10);
    h->fact_type = sq_col_dup(a, st, 11);
    h->entities = sq_col_dup(a, st, 12);
    h->valid_from = sq_col_dup(a, st, 13);
    h->confidence = sqlite3_column_double(st, 14);
    if (with_score)
        h->score = sqlite3_column_double(st, 15);
    return h->id && h->content ? STORE_OK : STORE_ERROR;
}

static int read_scored_hit(sqlite3_stmt *st, arena *a, void *dst) { return sq_read_hit(st, a, dst, 1); }

static int by_score_desc(const void *x, const void *y)
{
    const store_hit *a = x, *b = y;
    if (a->score != b->score)
        return a->score < b->score ? 1 : -1;
    return strcmp(a->id, b->id);
}

/* The BM25 weight of a message's context column (the message before it) against its own text's 1.0: small,
 * so its own words decide, but its neighbour still counts in document frequencies and lengths and finds a
 * reply by what it answers (chosen with bench/recall, BENCHMARKS.md). */
#define SQ_CONTEXT_WEIGHT "0.1"

/* Per unit type: ?1 the FTS5 query, ?2 the user, ?3 the agent (NULL: any), ?4 the limit, ?5 and ?6 the
 * user's range of keyword row keys (sq_schema.c, migration 4): FTS5 then reads only that range of each
 * term's postings, not every user's. The user_id condition stays as well. */
static const char *const SEARCH[STORE_UNIT_TYPES] = {
    "SELECT " SQ_HIT_MESSAGE ", -bm25(message_fts, 1.0, " SQ_CONTEXT_WEIGHT ") AS score"
    " FROM message_fts JOIN messages m ON m.rid = message_fts.rowid - ?5 JOIN sessions s ON s.id = m.session_id"
    " WHERE message_fts MATCH ?1 AND message_fts.rowid BETWEEN ?5 AND ?6 AND m.user_id = ?2"
    " AND (?3 IS NULL OR s.agent_id = ?3)"
    " ORDER BY score DESC LIMIT ?4",
    "SELECT " SQ_HIT_KNOWLEDGE ", -bm25(knowledge_fts) AS score"
    " FROM knowledge_fts JOIN knowledge k ON k.rid = knowledge_fts.rowid - ?5"
    " WHERE knowledge_fts MATCH ?1 AND knowledge_fts.rowid BETWEEN ?5 AND ?6 AND k.user_id = ?2"
    " ORDER BY score DESC LIMIT ?4", /* no agent: user-wide */
    "SELECT " SQ_HIT_EPISODE ", -bm25(episode_fts) AS score"
    " FROM episode_fts JOIN episodes e ON e.rid = episode_fts.rowid - ?5 JOIN sessions s ON s.id = e.session_id"
    " WHERE episode_fts MATCH ?1 AND episode_fts.rowid BETWEEN ?5 AND ?6 AND e.user_id = ?2"
    " AND (?3 IS NULL OR e.agent_id = ?3)"
    " ORDER BY score DESC LIMIT ?4",
    "SELECT " SQ_HIT_FACT ", -bm25(fact_fts) AS score"
    " FROM fact_fts JOIN facts f ON f.rid = fact_fts.rowid - ?5 LEFT JOIN sessions s ON s.id = f.session_id"
    " WHERE fact_fts MATCH ?1 AND fact_fts.rowid BETWEEN ?5 AND ?6 AND f.user_id = ?2 AND f.status = 0"
    " AND (?3 IS NULL OR f.agent_id = ?3)"
    " ORDER BY score DESC LIMIT ?4",
};

/* The same without an agent filter, in two steps: FTS5 alone ranks its matches within the user's key range
 * (the range holds that user's rows only) and keeps the best ?4, and only those are joined with their rows.
 * Joining every match before the sort was up to half of the search (10k memories: keyword p50 2.6 ms
 * joined first, 1.4 ms ranked first). With an agent filter the
 * matches of other agents must not take the places, so SEARCH joins first. */
static const char *const SEARCH_ANY_AGENT[STORE_UNIT_TYPES] = {
    "SELECT " SQ_HIT_MESSAGE ", t.score FROM (SELECT rowid AS r, -bm25(message_fts, 1.0, " SQ_CONTEXT_WEIGHT ")"
    " AS score FROM message_fts WHERE message_fts MATCH ?1 AND rowid BETWEEN ?5 AND ?6"
    " ORDER BY score DESC LIMIT ?4) t"
    " JOIN messages m ON m.rid = t.r - ?5 JOIN sessions s ON s.id = m.session_id WHERE m.user_id = ?2"
    " ORDER BY t.score DESC",
    NULL, /* knowledge has no agent: SEARCH's */
    "SELECT " SQ_HIT_EPISODE ", t.score FROM (SELECT rowid AS r, -bm25(episode_fts) AS score FROM episode_fts"
    " WHERE episode_fts MATCH ?1 AND rowid BETWEEN ?5 AND ?6 ORDER BY score DESC LIMIT ?4) t"
    " JOIN episodes e ON e.rid = t.r - ?5 JOIN sessions s ON s.id = e.session_id WHERE e.user_id = ?2"
    " ORDER BY t.score DESC",
    "SELECT " SQ_HIT_FACT ", t.score FROM (SELECT rowid AS r, -bm25(fact_fts) AS score FROM fact_fts"
    " WHERE fact_fts MATCH ?1 AND rowid BETWEEN ?5 AND ?6 ORDER BY score DESC LIMIT ?4) t"
    " JOIN facts f ON f.rid = t.r - ?5 LEFT JOIN sessions s ON s.id = f.session_id"
    " WHERE f.user_id = ?2 AND f.status = 0 ORDER BY t.score DESC",
};

static int op_search_keyword(store *s, const store_search *q, arena *a, store_hit **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const int include[STORE_UNIT_TYPES] = {q->include_messages, q->include_knowledge, q->include_episodes,
                                           q->include_facts};
    int any = 0;
    for (int t = 0; t < STORE_UNIT_TYPES; t++)
        any |= include[t];
    if (q->n_terms == 0 || q->limit <= 0 || !any)
        return STORE_OK;
    char *match = fts_query(a, q->terms, q->n_terms, !q->context);
    if (!match)
        return STORE_ERROR;
    store_hit *part[STORE_UNIT_TYPES] = {0};
    size_t np[STORE_UNIT_TYPES] = {0}, total = 0;
    int rc = STORE_OK;
    sq_conn *c = sq_reader_get(SQ(s));
    sq_exec(c, "BEGIN");
    int64_t ukey = sq_query_int(c, "SELECT coalesce((SELECT ukey FROM users WHERE id = ?1), 0)", q->user_id);
    if (ukey <= 0) { /* 0: no such user, nothing of theirs to find; -1: a read error */
        sq_exec(c, "COMMIT");
        sq_reader_put(SQ(s), c);
        return ukey == 0 ? STORE_OK : STORE_ERROR;
    }
    for (int t = 0; t < STORE_UNIT_TYPES && rc == STORE_OK; t++) {
        if (!include[t])
            continue;
        sqlite3_stmt *st = sq_prepare(c, !q->agent_id && SEARCH_ANY_AGENT[t] ? SEARCH_ANY_AGENT[t] : SEARCH[t]);
        if (!st) {
            rc = STORE_ERROR;
            break;
        }
        sq_bind_text(st, 1, match);
        sq_bind_text(st, 2, q->user_id);
        sq_bind_text(st, 3, q->agent_id);
        sqlite3_bind_int(st, 4, q->limit);
        sqlite3_bind_int64(st, 5, ukey * SQ_FTS_USER_SPAN);
        sqlite3_bind_int64(st, 6, ukey * SQ_FTS_USER_SPAN + (SQ_FTS_USER_SPAN - 1));
        rc = sq_collect(st, a, sizeof(store_hit), read_scored_hit, (size_t)-1, (void **)&part[t], &np[t]);
        total += np[t];
    }
    sq_exec(c, "COMMIT");
    sq_reader_put(SQ(s), c);
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

void sq_ops_search(store_ops *ops) { ops->search_keyword = op_search_keyword; }
