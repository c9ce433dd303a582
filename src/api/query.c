/* query — SPEC §8, the memory query.
 *
 * Checks in the spec's order (user, session of that user, agent), then searches two paths at once: BM25
 * over the user's units (the store's keyword index) on the request thread, and dense search of the user's
 * vector index on the task pool. Units are messages and knowledge (level 0), and with the LLM layers on,
 * episodes (level 1) and current facts (level 2); the ext flags include_episodes / include_facts (default
 * true) select the latter like include_messages / include_knowledge do the former. store_type null fuses
 * both paths by reciprocal rank (search/fusion.h); "keyword" / "vector" answer from one path; "graph"
 * answers from the facts (their text and entities) by both paths fused. */
#include "api/api.h"
#include "core/qcache.h"
#include "search/fusion.h"
#include "search/terms.h"
#include "search/vindex.h"
#include "util/log.h"
#include "util/opstats.h"
#include "util/timeutil.h"

#include <xxhash.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const STORE_TYPES[] = {"vector", "keyword", "graph", NULL};

typedef struct query_req {
    const char *query, *session_id, *agent_id, *store_type;
    int64_t top_k;
    int include_messages, include_knowledge, include_episodes, include_facts, explain;
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
    q->include_messages = q->include_knowledge = q->include_episodes = q->include_facts = 1;
    q->explain = 0;
    v_bool(v, body, NULL, "include_messages", &q->include_messages);
    v_bool(v, body, NULL, "include_knowledge", &q->include_knowledge);
    v_bool(v, body, NULL, "include_episodes", &q->include_episodes);
    v_bool(v, body, NULL, "include_facts", &q->include_facts);
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

/* Hash of everything that shapes the answer. */
static uint64_t cache_key(const query_req *q, const char *user_id)
{
    uint64_t h = 0x6d656d66757365ull; /* chained: each field seeds the next */
    const char *parts[5] = {user_id, q->query, q->session_id, q->agent_id, q->store_type};
    for (int i = 0; i < 5; i++) {
        const char *p = parts[i] ? parts[i] : "";
        h = XXH3_64bits_withSeed(p, strlen(p) + 1, h ^ (parts[i] ? 1u : 2u)); /* NULL and "" differ */
    }
    int64_t opts[6] = {q->top_k, q->include_messages, q->include_knowledge, q->include_episodes, q->include_facts,
                       q->explain};
    return XXH3_64bits_withSeed(opts, sizeof opts, h);
}

/* One result candidate: found by BM25 (rank_k > 0, hit set), by dense search (rank_v > 0), or both. */
typedef struct cand {
    const char *id;
    int type;
    int rank_k, rank_v;
    double bm25, score;
    float sim;
    const store_hit *hit;
} cand;

static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(x->id, y->id);
}

static void write_hit(jw *j, const cand *c, const query_req *q, const char *user_id)
{
    static const char *const TYPE_NAMES[STORE_UNIT_TYPES] = {"message", "knowledge", "episode", "fact"};
    static const int LEVELS[STORE_UNIT_TYPES] = {0, 0, 1, 2};
    const store_hit *h = c->hit;
    int t = (int)h->type >= 0 && h->type < STORE_UNIT_TYPES ? (int)h->type : 0;
    jw_obj(j);
    jw_kstr(j, "id", h->id);
    jw_kstr(j, "content", h->content);
    jw_kdouble(j, "score", c->score);
    jw_kstr(j, "type", TYPE_NAMES[t]);
    jw_kstr(j, "role", t == STORE_HIT_MESSAGE ? h->role : NULL);
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
    jw_kint(j, "level", LEVELS[t]);
    if (t == STORE_HIT_EPISODE) {
        jw_kstr(j, "occurred_at", h->occurred_at);
        api_write_json_array(j, "message_ids", h->source_ids);
    } else if (t == STORE_HIT_FACT) {
        jw_kstr(j, "fact_type", h->fact_type);
        jw_kdouble(j, "confidence", h->confidence);
        api_write_json_array(j, "entities", h->entities);
        jw_kstr(j, "valid_from", h->valid_from);
        api_write_json_array(j, "message_ids", h->source_ids);
    }
    jw_key(j, "retrieval");
    jw_obj(j);
    jw_kstr(j, "source", q->store_type ? q->store_type : "hybrid");
    if (c->rank_v)
        jw_kdouble(j, "similarity", c->sim);
    if (q->explain) {
        if (c->rank_k) {
            jw_key(j, "keyword");
            jw_obj(j);
            jw_kint(j, "rank", c->rank_k);
            jw_kdouble(j, "score", c->bm25);
            jw_obj_end(j);
        }
        if (c->rank_v) {
            jw_key(j, "vector");
            jw_obj(j);
            jw_kint(j, "rank", c->rank_v);
            jw_kdouble(j, "similarity", c->sim);
            jw_obj_end(j);
        }
    }
    jw_obj_end(j);
    jw_obj_end(j);
    jw_obj_end(j);
}

/* Dense path: embeds the query and searches the user's index. It runs on the task pool while the request
 * thread runs BM25, so it touches no arena: its buffers are allocated before it is submitted. */
typedef struct dense_job {
    app *ap;
    const query_req *q;
    const char *user_id;
    float *qv;
    vindex_hit *hits;
    size_t k, n;
    int rc;
} dense_job;

static void dense_run(void *arg)
{
    dense_job *j = arg;
    size_t len = strlen(j->q->query);
    char err[256];
    if (embed_batch(j->ap->emb, &j->q->query, &len, 1, j->qv, err, sizeof err) != 0) {
        log_warn("query embedding failed: %s", err);
        j->rc = STORE_UNAVAILABLE;
        return;
    }
    user_svc *svc;
    vindex *vi = uidx_acquire(&j->ap->ui, j->user_id, &svc, &j->rc);
    if (!vi)
        return;
    vindex_filter f = {.agent_id = j->q->agent_id, .messages = j->q->include_messages,
                       .knowledge = j->q->include_knowledge, .episodes = j->q->include_episodes,
                       .facts = j->q->include_facts};
    int64_t t0 = time_mono_ns();
    j->n = vindex_search(vi, j->qv, j->k, &f, j->hits);
    opstats_observe_ns(OP_VECTOR_SEARCH, time_mono_ns() - t0);
    uidx_release(svc);
    j->rc = STORE_OK;
}

/* Loads the records of candidates found only by the dense path. */
static int hydrate(http_request *req, cand *c, size_t n)
{
    store *st = api_app(req)->st;
    for (int type = 0; type < STORE_UNIT_TYPES; type++) {
        const char **ids = arena_alloc(req->a, (n ? n : 1) * sizeof *ids);
        if (!ids)
            return STORE_ERROR;
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (!c[i].hit && c[i].type == type)
                ids[k++] = c[i].id;
        if (!k)
            continue;
        store_hit *h;
        size_t nh;
        int rc = st->ops->hits_get(st, (enum store_hit_type)type, ids, k, req->a, &h, &nh);
        if (rc != STORE_OK)
            return rc;
        for (size_t i = 0; i < nh; i++)
            for (size_t m = 0; m < n; m++)
                if (!c[m].hit && c[m].type == type && strcmp(c[m].id, h[i].id) == 0)
                    c[m].hit = &h[i];
    }
    return STORE_OK;
}

void api_query(http_request *req, http_response *res)
{
    user_svc *svc = NULL;
    vctx v;
    v_init(&v, req->a);
    query_req q;
    if (parse(req, res, &v, &q))
        goto out;
    const char *user_id = req->params[0];
    store_entity user;
    if (api_load_user(req, res, user_id, &user) || check_scope(req, res, &q, user_id))
        goto out;
    app *ap = api_app(req);
    /* the cache: same request, no write of the user since -> the same answer */
    uint64_t key = cache_key(&q, user_id);
    svc = registry_get(&ap->reg, user_id, 1);
    uint64_t gen = svc ? qcache_gen(svc) : 0;
    if (svc && qcache_get(svc, key, gen, &res->raw, &res->raw_len)) {
        atomic_fetch_add(&ap->cache_hits, 1);
        res->status = 200;
        res->content_type = "application/json";
        goto out;
    }
    atomic_fetch_add(&ap->cache_misses, 1);
    if (q.store_type && strcmp(q.store_type, "graph") == 0) /* the fact layer, by both paths */
        q.include_messages = q.include_knowledge = q.include_episodes = 0;
    int hybrid = !q.store_type || strcmp(q.store_type, "graph") == 0;
    int want_k = hybrid || strcmp(q.store_type, "keyword") == 0;
    int want_v = ap->dense && (hybrid || strcmp(q.store_type, "vector") == 0);
    /* each path looks deeper than top_k when results are fused */
    int depth = hybrid ? (int)(q.top_k * 2 < 50 ? 50 : q.top_k * 2) : (int)q.top_k;
    if (depth > API_TOPK_MAX)
        depth = API_TOPK_MAX;
    if (!q.include_messages && !q.include_knowledge && !q.include_episodes && !q.include_facts)
        want_k = want_v = 0;

    dense_job dj = {.ap = ap, .q = &q, .user_id = user_id, .k = (size_t)depth, .rc = STORE_OK};
    pool_task dt = {.fn = dense_run, .arg = &dj};
    if (want_v) {
        dj.qv = arena_alloc(req->a, (size_t)embed_dim(ap->emb) * sizeof *dj.qv);
        dj.hits = arena_alloc(req->a, (size_t)depth * sizeof *dj.hits);
        if (!dj.qv || !dj.hits) {
            api_store_error(res, STORE_ERROR, "query memory");
            goto out;
        }
        taskpool_submit(&ap->tasks, &dt); /* runs beside the keyword path below */
    }
    store_hit *kh = NULL;
    size_t nk = 0;
    int krc = STORE_OK;
    if (want_k) {
        size_t nt;
        const char **terms = terms_extract(req->a, q.query, &nt);
        store_search s = {.user_id = user_id, .agent_id = q.agent_id, .terms = terms, .n_terms = terms ? nt : 0,
                          .include_messages = q.include_messages, .include_knowledge = q.include_knowledge,
                          .include_episodes = q.include_episodes, .include_facts = q.include_facts,
                          .limit = depth};
        int64_t t0 = time_mono_ns();
        krc = ap->st->ops->search_keyword(ap->st, &s, req->a, &kh, &nk);
        opstats_observe_ns(OP_BM25_SEARCH, time_mono_ns() - t0);
    }
    if (want_v)
        taskpool_wait(&ap->tasks, &dt);
    if (krc != STORE_OK) {
        api_store_error(res, krc, "query memory");
        goto out;
    }
    vindex_hit *vh = dj.hits;
    size_t nv = want_v ? dj.n : 0;
    if (want_v && dj.rc != STORE_OK) {
        if (!hybrid) {
            api_store_error(res, dj.rc, "query memory");
            goto out;
        }
        nv = 0; /* hybrid degrades to the keyword path */
    }

    int64_t t_fuse = time_mono_ns();
    cand *c = arena_calloc(req->a, nk + nv + 1, sizeof *c);
    if (!c) {
        api_store_error(res, STORE_ERROR, "query memory");
        goto out;
    }
    size_t n = 0;
    for (size_t i = 0; i < nk; i++)
        c[n++] = (cand){.id = kh[i].id, .type = kh[i].type, .rank_k = (int)i + 1, .bm25 = kh[i].score, .hit = &kh[i]};
    for (size_t i = 0; i < nv; i++) {
        size_t m = 0;
        while (m < nk && strcmp(c[m].id, vh[i].id) != 0)
            m++;
        if (m == nk)
            c[m = n++] = (cand){.id = vh[i].id, .type = vh[i].type};
        c[m].rank_v = (int)i + 1;
        c[m].sim = vh[i].sim;
    }
    double weights[2] = {ap->cfg->w_keyword, ap->cfg->w_vector};
    for (size_t i = 0; i < n; i++) {
        if (hybrid) {
            int ranks[2] = {c[i].rank_k, c[i].rank_v};
            c[i].score = fusion_rrf(ranks, weights, 2);
        } else if (want_k) {
            c[i].score = kh[0].score > 0 ? c[i].bm25 / kh[0].score : 1.0;
        } else {
            c[i].score = c[i].sim < 0 ? 0 : c[i].sim > 1 ? 1 : c[i].sim;
        }
    }
    qsort(c, n, sizeof *c, by_score);
    opstats_observe_ns(OP_FUSION, time_mono_ns() - t_fuse);
    if (n > (size_t)q.top_k)
        n = (size_t)q.top_k;
    int rc = hydrate(req, c, n);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "query memory");
        goto out;
    }
    size_t shown = 0;
    for (size_t i = 0; i < n; i++)
        shown += c[i].hit != NULL; /* a unit deleted since the index saw it is left out */
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "results");
    jw_arr(j);
    for (size_t i = 0; i < n; i++)
        if (c[i].hit)
            write_hit(j, &c[i], &q, user_id);
    jw_arr_end(j);
    jw_kint(j, "total", (int64_t)shown);
    jw_obj_end(j);
    char msg[64];
    if (shown)
        snprintf(msg, sizeof msg, "Found %zu results", shown);
    else
        snprintf(msg, sizeof msg, "No results found");
    env_end(res, msg);
    if (svc && !res->body.err && res->body.buf)
        qcache_put(svc, key, gen, res->body.buf, res->body.len);
out:
    if (svc)
        registry_put(svc);
    v_free(&v);
}
