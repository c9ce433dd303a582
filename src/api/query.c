/* query — SPEC §8, the memory query.
 *
 * Checks in the spec's order (user, session of that user, agent), then searches two paths at once: BM25
 * over the user's units (the store's keyword index) on the request thread, and dense search of the user's
 * vector index on the task pool. Units are messages and knowledge (level 0), and with the LLM layers on,
 * episodes (level 1) and current facts (level 2); the ext flags include_episodes / include_facts (default
 * true) select the latter like include_messages / include_knowledge do the former. store_type null fuses
 * both paths by scaled scores (or by rank, --fusion rrf) and then applies the context window: a message also
 * scores by the few messages before it in its session, and is matched (weighed little) by the words of the
 * one before it, and when the query names one of the speakers ("Name: text"), that speaker's messages
 * score higher (search/fusion.h; chosen with bench/recall, BENCHMARKS.md). "keyword" / "vector" answer from
 * one path, by the units' own text; "graph" answers from the facts (their text and entities) by both paths
 * fused. */
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

/* One result candidate: found by BM25 (rank_k > 0, hit set), by dense search (rank_v > 0), both, or added by
 * the context window as a message following a found one (neither rank). base is its fused score, ctx what
 * the messages before it add (search/fusion.h). */
typedef struct cand {
    const char *id;
    int type;
    int rank_k, rank_v;
    int speaker; /* 1: a message of the one speaker the query names (search/fusion.h) */
    double bm25, base, ctx, score;
    float sim;
    const store_hit *hit;
} cand;

/* The candidates with an id -> candidate hash (open addressing; slot holds index + 1). Capacity is fixed at
 * init: the most candidates the query can make. */
typedef struct cand_set {
    cand *c;
    size_t n, cap;
    uint32_t *slot;
    size_t mask;
} cand_set;

static int cands_init(cand_set *s, arena *a, size_t cap)
{
    size_t slots = 16;
    while (slots < 2 * cap)
        slots <<= 1;
    s->c = arena_calloc(a, cap + 1, sizeof *s->c);
    s->slot = arena_calloc(a, slots, sizeof *s->slot);
    s->n = 0;
    s->cap = cap;
    s->mask = slots - 1;
    return s->c && s->slot ? 0 : -1;
}

/* The candidate for id, added (zeroed, with its type) when absent and there is room; NULL when full. */
static cand *cands_get(cand_set *s, const char *id, int type)
{
    size_t i = (size_t)XXH3_64bits(id, strlen(id)) & s->mask;
    for (; s->slot[i]; i = (i + 1) & s->mask)
        if (strcmp(s->c[s->slot[i] - 1].id, id) == 0)
            return &s->c[s->slot[i] - 1];
    if (s->n == s->cap)
        return NULL;
    cand *c = &s->c[s->n++];
    *c = (cand){.id = id, .type = type};
    s->slot[i] = (uint32_t)s->n;
    return c;
}

static int by_score(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return strcmp(x->id, y->id);
}

static int by_base(const void *a, const void *b)
{
    const cand *x = *(const cand *const *)a, *y = *(const cand *const *)b;
    if (x->base != y->base)
        return x->base < y->base ? 1 : -1;
    return strcmp(x->id, y->id);
}

/* The context window (search/fusion.h): the best-scoring found messages pass a share of their fused score to
 * the messages after them in their sessions, which become candidates if they were not. Without the store's
 * answer the hits keep their fused scores. */
static void apply_window(http_request *req, cand_set *cs, const app_config *cfg, size_t n_src)
{
    cand **src = arena_alloc(req->a, (cs->n ? cs->n : 1) * sizeof *src);
    if (!src)
        return;
    size_t ns = 0;
    for (size_t i = 0; i < cs->n; i++)
        if (cs->c[i].type == STORE_HIT_MESSAGE && cs->c[i].base > 0)
            src[ns++] = &cs->c[i];
    qsort(src, ns, sizeof *src, by_base);
    if (ns > n_src)
        ns = n_src;
    const char **ids = arena_alloc(req->a, (ns ? ns : 1) * sizeof *ids);
    double *base = arena_alloc(req->a, (ns ? ns : 1) * sizeof *base);
    if (!ids || !base)
        return;
    for (size_t i = 0; i < ns; i++) {
        ids[i] = src[i]->id;
        base[i] = src[i]->base; /* src pointers stay valid: cands_get only appends, within capacity */
    }
    store_follow *f;
    size_t nf;
    int rc = api_app(req)->st->ops->messages_following(api_app(req)->st, ids, ns, cfg->n_window, req->a, &f, &nf);
    if (rc != STORE_OK) {
        log_warn("query: context window skipped: %s", store_rc_name(rc));
        return;
    }
    size_t si = 0;
    for (size_t i = 0; i < nf; i++) {
        while (si < ns && strcmp(ids[si], f[i].from) != 0) /* grouped by source, in source order */
            si++;
        if (si == ns)
            break;
        cand *c = cands_get(cs, f[i].id, STORE_HIT_MESSAGE);
        if (c && f[i].distance >= 1 && f[i].distance <= cfg->n_window)
            c->ctx += cfg->window[f[i].distance - 1] * base[si];
    }
}

static int hydrate(http_request *req, cand *c, size_t n);

/* The speaker match (search/fusion.h) over c[0..n), ranked by score (base + ctx): marks the messages of the
 * one speaker the query names, if it names exactly one of the speakers among them. Only the candidates that
 * the factor could lift into the top k are read (their records loaded, to see their labels): the rest rank
 * below k candidates whatever happens, so the answer is the same and fewer records are loaded. */
static int mark_speaker(http_request *req, cand *c, size_t n, size_t k, double factor, const char *query)
{
    if (k > n)
        k = n;
    size_t m = k;
    while (m < n && k > 0 && c[m].score * factor >= c[k - 1].score)
        m++;
    int rc = hydrate(req, c, m);
    if (rc != STORE_OK)
        return rc;
    const char *named = NULL;
    size_t named_len = 0;
    for (size_t i = 0; i < m; i++) {
        const store_hit *h = c[i].hit;
        size_t len = h && h->type == STORE_HIT_MESSAGE ? fusion_speaker_label(h->content) : 0;
        if (!len || (named && len == named_len && memcmp(named, h->content, len) == 0))
            continue;
        if (!fusion_names(query, h->content, len))
            continue;
        if (named)
            return STORE_OK; /* two speakers named: no one's turns are favoured */
        named = h->content;
        named_len = len;
    }
    for (size_t i = 0; named && i < m; i++) {
        const store_hit *h = c[i].hit;
        c[i].speaker = h && h->type == STORE_HIT_MESSAGE && fusion_speaker_label(h->content) == named_len &&
                       memcmp(h->content, named, named_len) == 0;
    }
    return STORE_OK;
}

static void write_hit(jw *j, const cand *c, const query_req *q, const app_config *cfg, const char *user_id)
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
        if (c->ctx > 0) {
            jw_key(j, "context"); /* what the messages before it in its session added */
            jw_obj(j);
            jw_kdouble(j, "score", c->ctx);
            jw_obj_end(j);
        }
        if (c->speaker) {
            jw_key(j, "speaker"); /* a message of the speaker the query names */
            jw_obj(j);
            jw_kdouble(j, "factor", 1 + cfg->speaker_boost);
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
                          .limit = depth, .context = hybrid};
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
    const app_config *cfg = ap->cfg;
    int window = hybrid && cfg->n_window > 0 && q.include_messages;
    size_t n_src = (size_t)(q.top_k * 2 < 20 ? 20 : q.top_k * 2);
    cand_set cs;
    if (cands_init(&cs, req->a, nk + nv + (window ? n_src * (size_t)cfg->n_window : 0))) {
        api_store_error(res, STORE_ERROR, "query memory");
        goto out;
    }
    for (size_t i = 0; i < nk; i++) {
        cand *c = cands_get(&cs, kh[i].id, kh[i].type);
        c->rank_k = (int)i + 1;
        c->bm25 = kh[i].score;
        c->hit = &kh[i];
    }
    for (size_t i = 0; i < nv; i++) {
        cand *c = cands_get(&cs, vh[i].id, vh[i].type);
        c->rank_v = (int)i + 1;
        c->sim = vh[i].sim;
    }
    /* each path scaled to [0,1]: BM25 by the best BM25, cosine between the dense path's last and best */
    double kmax = nk ? kh[0].score : 0, vhi = nv ? vh[0].sim : 0, vlo = nv ? vh[nv - 1].sim : 0;
    double weights[2] = {cfg->w_keyword, cfg->w_vector};
    for (size_t i = 0; i < cs.n; i++) {
        cand *c = &cs.c[i];
        double kscaled = c->rank_k ? (kmax > 0 ? c->bm25 / kmax : 1.0) : 0;
        double vscaled = c->rank_v ? fusion_minmax(c->sim, vlo, vhi) : 0;
        if (hybrid && cfg->fusion_rrf) {
            int ranks[2] = {c->rank_k, c->rank_v};
            c->base = fusion_rrf(ranks, weights, 2);
        } else if (hybrid) {
            double scaled[2] = {kscaled, vscaled};
            c->base = fusion_mean(scaled, weights, 2);
        } else if (want_k) {
            c->base = kscaled;
        } else {
            c->base = c->sim < 0 ? 0 : c->sim > 1 ? 1 : c->sim;
        }
    }
    if (window)
        apply_window(req, &cs, cfg, n_src);
    /* ranked by (base + ctx) x the speaker factor, rescaled so the best hit keeps the best fused score (first
     * on every path: 1) */
    double factor = 1 + cfg->speaker_boost;
    for (size_t i = 0; i < cs.n; i++)
        cs.c[i].score = cs.c[i].base + cs.c[i].ctx;
    if (hybrid && cfg->speaker_boost > 0 && q.include_messages) {
        qsort(cs.c, cs.n, sizeof *cs.c, by_score); /* no cands_get from here on: its hash is left behind */
        int src = mark_speaker(req, cs.c, cs.n, (size_t)q.top_k, factor, q.query);
        if (src != STORE_OK) {
            api_store_error(res, src, "query memory");
            goto out;
        }
    }
    double best_base = 0, best = 0;
    for (size_t i = 0; i < cs.n; i++) {
        cand *ci = &cs.c[i];
        ci->score *= ci->speaker ? factor : 1;
        best_base = ci->base > best_base ? ci->base : best_base;
        best = ci->score > best ? ci->score : best;
    }
    double scale = best > 0 ? best_base / best : 1;
    for (size_t i = 0; i < cs.n; i++)
        cs.c[i].score *= scale;
    cand *c = cs.c;
    size_t n = cs.n;
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
            write_hit(j, &c[i], &q, cfg, user_id);
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
