/* query — SPEC §8, the memory query.
 *
 * Checks in the spec's order (user, session of that user, agent), then searches. Paths that exist today:
 * BM25 over the user's messages and knowledge (FTS5). store_type null fuses the available paths by
 * reciprocal rank (search/fusion.h); "keyword" reports the BM25 score mapped to [0,1] as s/(1+s);
 * "vector" and "graph" answer from layers that hold no data yet, so they return no results. */
#include "api/api.h"
#include "search/fusion.h"
#include "search/terms.h"

#include <stdio.h>
#include <string.h>

static const char *const STORE_TYPES[] = {"vector", "keyword", "graph", NULL};

typedef struct query_req {
    const char *query, *session_id, *agent_id, *store_type;
    int64_t top_k;
    int include_messages, include_knowledge, explain;
} query_req;

static int parse(http_request *req, http_response *res, vctx *v, query_req *q)
{
    cJSON *body = api_body(req, res, v);
    if (!body)
        return -1;
    q->query = v_string(v, body, NULL, "query", V_REQUIRED | V_NONEMPTY, API_CONTENT_MAX);
    q->top_k = 5;
    if (v_int(v, body, NULL, "top_k", 0, &q->top_k) == 1) {
        if (q->top_k > API_TOPK_MAX)
            v_add(v, "top_k", "less_than_equal", "Input should be less than or equal to 1000");
        else if (q->top_k < 1)
            q->top_k = 5;
    }
    q->session_id = v_string(v, body, NULL, "session_id", 0, API_ID_MAX);
    q->agent_id = v_string(v, body, NULL, "agent_id", 0, API_ID_MAX);
    q->store_type = v_enum(v, body, NULL, "store_type", 0, STORE_TYPES);
    q->include_messages = q->include_knowledge = 1;
    q->explain = 0;
    v_bool(v, body, NULL, "include_messages", &q->include_messages);
    v_bool(v, body, NULL, "include_knowledge", &q->include_knowledge);
    v_bool(v, body, NULL, "explain", &q->explain);
    if (!v_ok(v)) {
        v_respond(v, res);
        return -1;
    }
    return 0;
}

static int check_scope(http_request *req, http_response *res, const query_req *q, const char *user_id)
{
    store *st = api_app(req)->st;
    char msg[768];
    if (q->session_id) {
        store_session s;
        int rc = st->ops->session_get(st, q->session_id, req->a, &s);
        if (rc == STORE_OK && strcmp(s.user_id, user_id) != 0)
            rc = STORE_NOT_FOUND;
        if (rc == STORE_NOT_FOUND) {
            snprintf(msg, sizeof msg, "Session '%s' not found for user '%s'", q->session_id, user_id);
            env_error(res, 404, msg, "session_id", msg);
            return -1;
        }
        if (rc != STORE_OK) {
            api_store_error(res, rc, "query memory");
            return -1;
        }
    }
    if (q->agent_id) {
        store_entity e;
        int rc = st->ops->entity_get(st, STORE_AGENTS, q->agent_id, req->a, &e);
        if (rc == STORE_NOT_FOUND) {
            snprintf(msg, sizeof msg, "Agent '%s' not found", q->agent_id);
            env_error(res, 404, msg, "agent_id", msg);
            return -1;
        }
        if (rc != STORE_OK) {
            api_store_error(res, rc, "query memory");
            return -1;
        }
    }
    return 0;
}

static void write_hit(jw *j, const store_hit *h, int rank, double score, const query_req *q, const char *user_id)
{
    int is_msg = h->type == STORE_HIT_MESSAGE;
    jw_obj(j);
    jw_kstr(j, "id", h->id);
    jw_kstr(j, "content", h->content);
    jw_kdouble(j, "score", score);
    jw_kstr(j, "type", is_msg ? "message" : "knowledge");
    jw_kstr(j, "role", is_msg ? h->role : NULL);
    jw_kstr(j, "created_at", h->created_at);
    jw_kstr(j, "updated_at", h->updated_at);
    jw_key(j, "metadata");
    jw_obj(j);
    jw_kstr(j, "user_id", user_id);
    jw_kstr(j, "agent_id", h->agent_id);
    jw_kstr(j, "session_id", h->session_id);
    jw_kstr(j, "session_name", h->session_name);
    if (q->session_id && h->session_id)
        jw_kstr(j, "scope", strcmp(q->session_id, h->session_id) == 0 ? "in_session" : "cross_session");
    else
        jw_knull(j, "scope");
    jw_kint(j, "level", 0);
    jw_key(j, "retrieval");
    jw_obj(j);
    jw_kstr(j, "source", q->store_type ? q->store_type : "hybrid");
    if (q->explain) {
        jw_key(j, "keyword");
        jw_obj(j);
        jw_kint(j, "rank", rank);
        jw_kdouble(j, "score", h->score);
        jw_obj_end(j);
    }
    jw_obj_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

void api_query(http_request *req, http_response *res)
{
    vctx v;
    v_init(&v, req->a);
    query_req q;
    if (parse(req, res, &v, &q))
        goto out;
    const char *user_id = req->params[0];
    store_entity user;
    if (api_load_user(req, res, user_id, &user) || check_scope(req, res, &q, user_id))
        goto out;

    store_hit *hits = NULL;
    size_t n = 0;
    int keyword_path = !q.store_type || strcmp(q.store_type, "keyword") == 0;
    if (keyword_path) {
        size_t nt;
        const char **terms = terms_extract(req->a, q.query, &nt);
        store_search s = {.user_id = user_id, .agent_id = q.agent_id, .terms = terms, .n_terms = terms ? nt : 0,
                          .include_messages = q.include_messages, .include_knowledge = q.include_knowledge,
                          .limit = (int)q.top_k};
        store *st = api_app(req)->st;
        int rc = st->ops->search_keyword(st, &s, req->a, &hits, &n);
        if (rc != STORE_OK) {
            api_store_error(res, rc, "query memory");
            goto out;
        }
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "results");
    jw_arr(j);
    static const double weights[1] = {1.0};
    for (size_t i = 0; i < n; i++) {
        int rank = (int)i + 1;
        double score = q.store_type ? (hits[0].score > 0 ? hits[i].score / hits[0].score : 1.0)
                                    : fusion_rrf(&rank, weights, 1);
        write_hit(j, &hits[i], rank, score, &q, user_id);
    }
    jw_arr_end(j);
    jw_kint(j, "total", (int64_t)n);
    jw_obj_end(j);
    char msg[64];
    if (n)
        snprintf(msg, sizeof msg, "Found %zu results", n);
    else
        snprintf(msg, sizeof msg, "No results found");
    env_end(res, msg);
out:
    v_free(&v);
}
