/* sq_search — keyword (BM25) search over a user's messages and knowledge with FTS5.
 *
 * Terms are quoted as FTS5 strings and OR-ed, so no user text is ever read as query syntax. Messages and
 * knowledge are searched separately (each has its own index) and merged by score; the score is -bm25(),
 * which FTS5 keeps positive. */
#include "store/sqlite/sq.h"

#include <stdlib.h>
#include <string.h>

static char *fts_query(arena *a, const char *const *terms, size_t n)
{
    size_t cap = 1;
    for (size_t i = 0; i < n; i++)
        cap += 2 * strlen(terms[i]) + 6;
    char *q = arena_alloc(a, cap);
    if (!q)
        return NULL;
    size_t o = 0;
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
    q[o] = '\0';
    return q;
}

static int read_msg_hit(sqlite3_stmt *st, arena *a, void *dst)
{
    store_hit *h = dst;
    h->type = STORE_HIT_MESSAGE;
    h->id = sq_col_dup(a, st, 0);
    h->content = sq_col_dup(a, st, 1);
    h->role = sq_col_dup(a, st, 2);
    h->created_at = sq_col_dup(a, st, 3);
    h->updated_at = sq_col_dup(a, st, 4);
    h->session_id = sq_col_dup(a, st, 5);
    h->session_name = sq_col_dup(a, st, 6);
    h->agent_id = sq_col_dup(a, st, 7);
    h->score = sqlite3_column_double(st, 8);
    return h->id && h->content ? STORE_OK : STORE_ERROR;
}

static int read_know_hit(sqlite3_stmt *st, arena *a, void *dst)
{
    store_hit *h = dst;
    memset(h, 0, sizeof *h);
    h->type = STORE_HIT_KNOWLEDGE;
    h->id = sq_col_dup(a, st, 0);
    h->content = sq_col_dup(a, st, 1);
    h->created_at = sq_col_dup(a, st, 2);
    h->updated_at = sq_col_dup(a, st, 3);
    h->score = sqlite3_column_double(st, 4);
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
    char *match = fts_query(a, q->terms, q->n_terms);
    if (!match)
        return STORE_ERROR;
    store_hit *mh = NULL, *kh = NULL;
    size_t nm = 0, nk = 0;
    int rc = STORE_OK;
    sq_conn *c = sq_reader_get(SQ(s));
    sq_exec(c, "BEGIN");
    if (q->include_messages) {
        sqlite3_stmt *st = sq_prepare(c,
            "SELECT m.id, m.content, m.role, m.created_at, m.updated_at, m.session_id, s.name, s.agent_id,"
            " -bm25(message_fts) AS score"
            " FROM message_fts JOIN messages m ON m.rid = message_fts.rowid JOIN sessions s ON s.id = m.session_id"
            " WHERE message_fts MATCH ?1 AND m.user_id = ?2 AND (?3 IS NULL OR s.agent_id = ?3)"
            " ORDER BY score DESC LIMIT ?4");
        if (!st) {
            rc = STORE_ERROR;
        } else {
            sq_bind_text(st, 1, match);
            sq_bind_text(st, 2, q->user_id);
            sq_bind_text(st, 3, q->agent_id);
            sqlite3_bind_int(st, 4, q->limit);
            rc = sq_collect(st, a, sizeof *mh, read_msg_hit, (size_t)-1, (void **)&mh, &nm);
        }
    }
    if (rc == STORE_OK && q->include_knowledge) {
        sqlite3_stmt *st = sq_prepare(c,
            "SELECT k.id, k.content, k.created_at, k.updated_at, -bm25(knowledge_fts) AS score"
            " FROM knowledge_fts JOIN knowledge k ON k.rid = knowledge_fts.rowid"
            " WHERE knowledge_fts MATCH ?1 AND k.user_id = ?2 ORDER BY score DESC LIMIT ?3");
        if (!st) {
            rc = STORE_ERROR;
        } else {
            sq_bind_text(st, 1, match);
            sq_bind_text(st, 2, q->user_id);
            sqlite3_bind_int(st, 3, q->limit);
            rc = sq_collect(st, a, sizeof *kh, read_know_hit, (size_t)-1, (void **)&kh, &nk);
        }
    }
    sq_exec(c, "COMMIT");
    sq_reader_put(SQ(s), c);
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

void sq_ops_search(store_ops *ops) { ops->search_keyword = op_search_keyword; }
