/* chunks — SPEC §10 introspection: the retrieval units built from a session or a round (today one chunk
 * per message, strategy "message"), with their embedding state, and counts per derived store. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>

static const char *const STORES[] = {"vector", "keyword", "graph", NULL};

/* Parses the listing parameters; store_type NULL means all. */
static int params(http_request *req, http_response *res, store_page *p, enum store_chunk_store *which,
                  const char **store_type)
{
    static const char *const sorts[] = {"created_at", "chunk_id", "strategy", NULL};
    static const enum store_sort values[] = {STORE_SORT_TIME, STORE_SORT_ID, STORE_SORT_STRATEGY};
    if (api_page_params(req, res, sorts, values, "created_at, chunk_id, strategy", p))
        return -1;
    *which = STORE_CHUNKS_ALL;
    *store_type = http_query(req, "store_type");
    if (*store_type) {
        int i = 0;
        while (STORES[i] && strcmp(STORES[i], *store_type) != 0)
            i++;
        if (!STORES[i]) {
            api_bad_param(res, "store_type", "store_type must be one of: vector, keyword, graph");
            return -1;
        }
        *which = (enum store_chunk_store)(STORE_CHUNKS_VECTOR + i);
    }
    return 0;
}

static void chunks_out(http_response *res, const store_chunk *c, size_t n, int64_t total, const char *key,
                       const char *id, const char *store_type)
{
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "chunks");
    jw_arr(j);
    for (size_t i = 0; i < n; i++) {
        jw_obj(j);
        jw_kstr(j, "chunk_id", c[i].chunk_id);
        jw_kstr(j, "content", c[i].content);
        jw_key(j, "metadata");
        jw_obj(j);
        jw_kstr(j, "session_id", c[i].session_id);
        jw_kstr(j, "round_id", c[i].round_id);
        jw_kstr(j, "user_id", c[i].user_id);
        jw_kstr(j, "agent_id", c[i].agent_id);
        jw_kstr(j, "role", c[i].role);
        jw_kstr(j, "strategy", "message");
        jw_kstr(j, "created_at", c[i].created_at);
        jw_kbool(j, "has_embedding", c[i].has_embedding);
        jw_obj_end(j);
        jw_obj_end(j);
    }
    jw_arr_end(j);
    jw_kint(j, "total_count", total);
    jw_kstr(j, key, id);
    jw_kstr(j, "store_type", store_type);
    jw_obj_end(j);
    env_end(res, "Chunks retrieved successfully");
}

static void list(http_request *req, http_response *res, const char *session_id, const char *round_id)
{
    store_page p;
    enum store_chunk_store which;
    const char *store_type;
    if (params(req, res, &p, &which, &store_type))
        return;
    store *st = api_app(req)->st;
    if (session_id) {
        store_session s;
        if (api_load_session(req, res, session_id, &s))
            return;
    } else {
        store_round r;
        int rc = st->ops->round_get(st, round_id, req->a, &r);
        if (rc == STORE_NOT_FOUND) {
            char msg[512];
            snprintf(msg, sizeof msg, "Round with ID '%s' not found", round_id);
            env_error(res, 404, msg, "round_id", msg);
            return;
        }
        if (rc != STORE_OK) {
            api_store_error(res, rc, "retrieve chunks");
            return;
        }
        if (api_allow_user(req, res, r.user_id))
            return;
    }
    store_chunk *c;
    size_t n;
    int64_t total;
    int rc = st->ops->chunks_list(st, session_id, round_id, which, &p, req->a, &c, &n, &total);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve chunks");
        return;
    }
    chunks_out(res, c, n, total, session_id ? "session_id" : "round_id", session_id ? session_id : round_id,
               store_type);
}

void api_chunks_session(http_request *req, http_response *res) { list(req, res, req->params[0], NULL); }
void api_chunks_round(http_request *req, http_response *res) { list(req, res, NULL, req->params[0]); }

void api_chunks_stats(http_request *req, http_response *res)
{
    const char *user_id = http_query(req, "user_id");
    const char *session_id = http_query(req, "session_id");
    if (user_id && !*user_id)
        user_id = NULL;
    if (session_id && !*session_id)
        session_id = NULL;
    if (!req->auth_admin && !user_id)
        user_id = req->auth_user; /* a user key counts its own chunks */
    store_entity u;
    if (user_id && api_load_user(req, res, user_id, &u))
        return;
    if (session_id) {
        store_session s;
        if (api_load_session(req, res, session_id, &s))
            return;
        if (user_id && strcmp(s.user_id, user_id) != 0) {
            api_session_not_found(res, session_id);
            return;
        }
    } else if (!req->auth_admin && !user_id) {
        api_forbidden(res);
        return;
    }
    store *st = api_app(req)->st;
    store_chunk_stats cs;
    int rc = st->ops->chunks_stats(st, user_id, session_id, &cs);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve chunk statistics");
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_kint(j, "total_chunks", cs.total);
    jw_key(j, "by_store");
    jw_obj(j);
    jw_kint(j, "vector", cs.vector);
    jw_kint(j, "keyword", cs.keyword);
    jw_kint(j, "graph", cs.graph);
    jw_obj_end(j);
    jw_key(j, "filters");
    jw_obj(j);
    jw_kstr(j, "user_id", user_id);
    jw_kstr(j, "session_id", session_id);
    jw_obj_end(j);
    jw_obj_end(j);
    env_end(res, "Chunk statistics retrieved successfully");
}
