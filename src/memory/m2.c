/* m2 — facts: extraction, duplicate detection, conflict decisions and their application with history.
 * See memory.h for the flow. */
#include "memory/mem_internal.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char M2_FACTS_SYSTEM[] =
    "memfuse-task: facts\n"
    "You extract durable facts about the user from a conversation between the user and an AI assistant: "
    "preferences (likes, dislikes, habits), personal facts (name, family, work, places, possessions, health), "
    "plans (intentions, with their dates) and decisions. Only what the user states or clearly implies about "
    "themselves; not the assistant's suggestions, not small talk, not questions.\n"
    "Write each fact as one standalone sentence about the user in the third person (\"User prefers green tea "
    "to coffee\"), keeping names and details; resolve relative dates against the messages' timestamps.\n"
    "Answer with one JSON object and nothing else:\n"
    "{\"facts\": [{\"content\": \"...\", \"type\": \"preference|personal|plan|decision|other\", \"confidence\": "
    "0.0-1.0, \"entities\": [\"the people, places and things the fact is about\"], \"messages\": [numbers of "
    "the messages it comes from]}]}\n"
    "Answer {\"facts\": []} when there is nothing durable.";

static const char M2_DECIDE_SYSTEM[] =
    "memfuse-task: decide\n"
    "You keep a user's memory of facts consistent. For each new fact, compare it with the existing facts and "
    "decide:\n"
    "- \"add\": new information; keep it beside the existing facts;\n"
    "- \"update\": the same subject as an existing fact, newer or more complete: it replaces that fact (name "
    "it in \"target\");\n"
    "- \"invalidate\": it contradicts an existing fact, which is no longer true (name it in \"target\");\n"
    "- \"ignore\": an existing fact already says the same (name it in \"target\").\n"
    "Answer with one JSON object and nothing else, one decision per new fact:\n"
    "{\"decisions\": [{\"fact\": 1, \"action\": \"add|update|invalidate|ignore\", \"target\": \"F1\"}]}";

static const char *const FACT_TYPES[] = {"preference", "personal", "plan", "decision", "other", NULL};

static const char *fact_type(const cJSON *it)
{
    char buf[64];
    const char *t = llm_json_str(it, "type", buf, sizeof buf);
    if (!t)
        t = llm_json_str(it, "category", buf, sizeof buf);
    if (!t)
        return "other";
    for (int i = 0; FACT_TYPES[i]; i++) {
        size_t n = strlen(FACT_TYPES[i]);
        if (strncasecmp(t, FACT_TYPES[i], n) == 0) /* "preferences", "personal_fact", "Plan" */
            return FACT_TYPES[i];
    }
    return "other";
}

/* The list of items under one of keys, or the root itself when it is an array. */
static const cJSON *list_of(const cJSON *root, const char *const *keys)
{
    return cJSON_IsArray(root) ? root : llm_json_any(root, keys);
}

int m2_parse_facts(const char *text, size_t len, int n_msgs, arena *a, m2_fact **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    cJSON *root = llm_json_extract(text, len);
    if (!root)
        return -1;
    static const char *const keys[] = {"facts", "memories", "items", NULL};
    const cJSON *list = list_of(root, keys);
    int rc = -1;
    m2_fact *facts = cJSON_IsArray(list) ? arena_calloc(a, MEM_MAX_FACTS, sizeof *facts) : NULL;
    if (!facts)
        goto done;
    int items = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        items++;
        if (*n == MEM_MAX_FACTS)
            break;
        m2_fact *f = &facts[*n];
        if (cJSON_IsString(it)) { /* ["User likes tea", ...] */
            cJSON *wrap = cJSON_CreateObject();
            if (!wrap)
                goto done;
            cJSON_AddItemToObject(wrap, "content", cJSON_CreateStringReference(it->valuestring));
            f->content = mem_text(a, wrap, "content", MEM_TEXT_MAX);
            cJSON_Delete(wrap);
        } else if (cJSON_IsObject(it)) {
            f->content = mem_text(a, it, "content", MEM_TEXT_MAX);
            if (!f->content)
                f->content = mem_text(a, it, "fact", MEM_TEXT_MAX);
            if (!f->content)
                f->content = mem_text(a, it, "text", MEM_TEXT_MAX);
        }
        if (!f->content)
            continue;
        f->type = cJSON_IsObject(it) ? fact_type(it) : "other";
        double c = 0.8;
        if (cJSON_IsObject(it) && llm_json_num(it, "confidence", 1, &c) == 0 && c > 1 && c <= 100)
            c /= 100; /* 90 meaning 90% */
        f->confidence = c < 0 ? 0 : c > 1 ? 1 : c;
        f->entities = cJSON_IsObject(it) ? mem_names(a, it, "entities", &f->n_entities) : NULL;
        f->refs = mem_refs(a, cJSON_IsObject(it) ? it : NULL, n_msgs, &f->n_refs);
        if (n_msgs > 0 && !f->refs)
            goto done;
        (*n)++;
    }
    if (items > 0 && *n == 0)
        goto done;
    *out = facts;
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc)
        *n = 0;
    return rc;
}

static int action_of(const char *s)
{
    static const struct {
        const char *word;
        int action;
    } words[] = {{"add", M2_ADD},           {"new", M2_ADD},        {"insert", M2_ADD},
                 {"update", M2_UPDATE},     {"replace", M2_UPDATE}, {"merge", M2_UPDATE},
                 {"supersede", M2_UPDATE},  {"invalidate", M2_INVALIDATE}, {"contradict", M2_INVALIDATE},
                 {"delete", M2_INVALIDATE}, {"remove", M2_INVALIDATE}, {"ignore", M2_IGNORE},
                 {"duplicate", M2_IGNORE},  {"skip", M2_IGNORE},   {"none", M2_IGNORE},
                 {"noop", M2_IGNORE}};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strncasecmp(s, words[i].word, strlen(words[i].word)) == 0)
            return words[i].action;
    return -1;
}

/* "F2", "f2", "2", 2 -> 2; 0 when absent or out of range. */
static int number_of(const cJSON *v, int max)
{
    double x = -1;
    if (cJSON_IsNumber(v)) {
        x = v->valuedouble;
    } else if (cJSON_IsString(v) && v->valuestring) {
        const char *s = v->valuestring;
        while (*s == ' ' || *s == '[' || *s == '#' || *s == 'F' || *s == 'f')
            s++;
        char *end;
        long k = strtol(s, &end, 10);
        if (end != s)
            x = (double)k;
    }
    return x >= 1 && x <= max && x == floor(x) ? (int)x : 0;
}

int m2_parse_decisions(const char *text, size_t len, int n_facts, int n_cands, m2_decision *out)
{
    for (int i = 0; i < n_facts; i++)
        out[i] = (m2_decision){M2_ADD, 0};
    cJSON *root = llm_json_extract(text, len);
    if (!root)
        return -1;
    static const char *const keys[] = {"decisions", "results", "items", NULL};
    const cJSON *list = list_of(root, keys);
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *it;
    int pos = 0;
    cJSON_ArrayForEach(it, list)
    {
        pos++;
        if (!cJSON_IsObject(it))
            continue;
        static const char *const fact_keys[] = {"fact", "new_fact", "id", "index", NULL};
        const cJSON *fv = llm_json_any(it, fact_keys);
        int fact = fv ? number_of(fv, n_facts) : (pos <= n_facts ? pos : 0); /* unnumbered: in order */
        char buf[32];
        const char *act = llm_json_str(it, "action", buf, sizeof buf);
        if (!act)
            act = llm_json_str(it, "decision", buf, sizeof buf);
        int action = act ? action_of(act) : -1;
        if (!fact || action < 0)
            continue;
        static const char *const target_keys[] = {"target", "existing", "target_id", "existing_fact", NULL};
        const cJSON *tv = llm_json_any(it, target_keys);
        int target = tv ? number_of(tv, n_cands) : 0;
        if (action != M2_ADD && !target)
            action = M2_ADD; /* a replacement or duplicate of nothing named: keep the fact */
        out[fact - 1] = (m2_decision){action, action == M2_ADD ? 0 : target};
    }
    cJSON_Delete(root);
    return 0;
}

/* --- the operation ------------------------------------------------------------------------------- */

typedef struct kept {
    const m2_fact *f;
    char hash[65];
    const float *vec;      /* embedding (NULL without an embedder) */
    int cand[8];           /* candidate numbers (1-based into the flush's candidate list) */
    int n_cand;
    m2_decision d;
} kept;

typedef struct cand_list {
    const char **ids;
    const char **texts;
    int n, cap;
} cand_list;

static int cand_add(cand_list *cl, const char *id)
{
    for (int i = 0; i < cl->n; i++)
        if (strcmp(cl->ids[i], id) == 0)
            return i + 1;
    if (cl->n == cl->cap)
        return 0;
    cl->ids[cl->n] = id;
    return ++cl->n;
}

/* Prompt line text: control characters as spaces so each fact stays on its line. */
static char *one_line(arena *a, const char *s)
{
    char *o = arena_strdup(a, s);
    for (char *p = o; p && *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    return o;
}

/* Finds the current facts most like each kept fact (through the user's index); drops near duplicates.
 * Returns a store_rc. */
static int find_similar(mem_ctx *m, const store_flush *f, kept *k, size_t *nk, cand_list *cl, arena *a)
{
    if (!m->emb || *nk == 0)
        return STORE_OK;
    int dim = embed_dim(m->emb);
    const char **texts = arena_alloc(a, *nk * sizeof *texts);
    size_t *lens = arena_alloc(a, *nk * sizeof *lens);
    float *vecs = arena_alloc(a, *nk * (size_t)dim * sizeof *vecs);
    vindex_hit *hits = arena_alloc(a, (size_t)m->cfg.candidates * sizeof *hits);
    if (!texts || !lens || !vecs || !hits)
        return STORE_ERROR;
    for (size_t i = 0; i < *nk; i++) {
        texts[i] = k[i].f->content;
        lens[i] = strlen(texts[i]);
    }
    char err[256];
    if (embed_batch(m->emb, texts, lens, (int)*nk, vecs, err, sizeof err) != 0) {
        log_warn("m2: embedding new facts failed: %s", err);
        return STORE_UNAVAILABLE;
    }
    user_svc *svc;
    int rc;
    vindex *vi = uidx_acquire(m->ui, f->user_id, &svc, &rc);
    if (!vi)
        return rc;
    vindex_filter filt = {.facts = 1};
    size_t out = 0;
    for (size_t i = 0; i < *nk; i++) {
        const float *v = vecs + i * (size_t)dim;
        int dup = 0;
        for (size_t j = 0; j < out && !dup; j++) /* near duplicates within the flush */
            dup = vindex_dot(v, k[j].vec, dim) >= m->cfg.dup_similarity;
        size_t nh = dup ? 0 : vindex_search(vi, v, (size_t)m->cfg.candidates, &filt, hits);
        if (nh > 0 && hits[0].sim >= m->cfg.dup_similarity)
            dup = 1;
        if (dup) {
            atomic_fetch_add(&m->stats.dup_near, 1);
            continue;
        }
        kept cur = k[i];
        cur.vec = v;
        cur.n_cand = 0;
        for (size_t h = 0; h < nh && cur.n_cand < (int)(sizeof cur.cand / sizeof cur.cand[0]); h++) {
            if (hits[h].sim < m->cfg.candidate_similarity)
                break;
            char *id = arena_strdup(a, hits[h].id);
            int c = id ? cand_add(cl, id) : 0;
            if (c)
                cur.cand[cur.n_cand++] = c;
        }
        k[out++] = cur;
    }
    uidx_release(svc);
    *nk = out;
    return STORE_OK;
}

/* Asks the model to decide every kept fact that has candidates. Returns a mem_rc. */
static int decide(mem_ctx *m, const store_flush *f, kept *k, size_t nk, cand_list *cl, arena *a, int64_t *llm_ns,
                  char *err, size_t errlen)
{
    int any = 0;
    for (size_t i = 0; i < nk; i++) {
        k[i].d = (m2_decision){M2_ADD, 0};
        any |= k[i].n_cand > 0;
    }
    if (!any)
        return MEM_OK;
    store_hit *h;
    size_t nh;
    int src = m->st->ops->hits_get(m->st, STORE_HIT_FACT, cl->ids, (size_t)cl->n, a, &h, &nh);
    if (src != STORE_OK) {
        snprintf(err, errlen, "reading candidate facts: %s", store_rc_name(src));
        return MEM_RETRY;
    }
    for (int c = 0; c < cl->n; c++) { /* a candidate retracted meanwhile is shown as such and never targeted */
        cl->texts[c] = NULL;
        for (size_t j = 0; j < nh; j++)
            if (strcmp(h[j].id, cl->ids[c]) == 0)
                cl->texts[c] = h[j].content;
    }
    size_t cap = 64;
    for (size_t i = 0; i < nk; i++)
        cap += strlen(k[i].f->content) + 16;
    for (int c = 0; c < cl->n; c++)
        cap += (cl->texts[c] ? strlen(cl->texts[c]) : 0) + 16;
    char *prompt = arena_alloc(a, cap);
    if (!prompt)
        return MEM_RETRY;
    size_t len = (size_t)snprintf(prompt, cap, "New facts:\n");
    for (size_t i = 0; i < nk; i++)
        len += (size_t)snprintf(prompt + len, cap - len, "%zu: %s\n", i + 1, one_line(a, k[i].f->content));
    len += (size_t)snprintf(prompt + len, cap - len, "Existing facts:\n");
    for (int c = 0; c < cl->n; c++)
        if (cl->texts[c])
            len += (size_t)snprintf(prompt + len, cap - len, "F%d: %s\n", c + 1, one_line(a, cl->texts[c]));
    llm_reply r;
    atomic_fetch_add(&m->stats.decide_calls, 1);
    if (llm_chat(m->llm, f->user_id, M2_DECIDE_SYSTEM, prompt, 1, m->cfg.timeout_ms, &r, err, errlen) != LLM_OK)
        return MEM_RETRY;
    *llm_ns += r.latency_us * 1000;
    m2_decision *d = arena_alloc(a, nk * sizeof *d);
    int prc = d ? m2_parse_decisions(r.content, strlen(r.content), (int)nk, cl->n, d) : -1;
    if (prc != 0)
        return mem_bad_output(m, &r, "decisions", err, errlen);
    llm_reply_free(&r);
    for (size_t i = 0; i < nk; i++) {
        if (d[i].target && !cl->texts[d[i].target - 1])
            d[i] = (m2_decision){M2_ADD, 0};
        k[i].d = d[i];
    }
    return MEM_OK;
}

/* Stores the vectors of the new facts (computed for the duplicate check) and puts them in the index. */
static void index_new(mem_ctx *m, const kept *k, const char *const *ids, size_t n, arena *a)
{
    if (!m->emb)
        return;
    const char **want = arena_alloc(a, (n ? n : 1) * sizeof *want);
    if (!want)
        return;
    size_t nw = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i])
            want[nw++] = ids[i];
    store_unit *u;
    size_t nu;
    if (!nw || m->st->ops->units_get(m->st, STORE_HIT_FACT, want, nw, a, &u, &nu) != STORE_OK || !nu)
        return;
    int dim = embed_dim(m->emb);
    float *vecs = arena_alloc(a, nu * (size_t)dim * sizeof *vecs);
    if (!vecs)
        return;
    for (size_t j = 0; j < nu; j++)
        for (size_t i = 0; i < n; i++)
            if (ids[i] && strcmp(ids[i], u[j].id) == 0)
                memcpy(vecs + j * (size_t)dim, k[i].vec, (size_t)dim * sizeof *vecs);
    size_t stored = 0;
    if (m->st->ops->vectors_put(m->st, u, nu, vecs, dim, embed_model_id(m->emb), &stored) != STORE_OK) {
        if (m->eq) /* the embedding pipeline will store them */
            embedq_push(m->eq, STORE_HIT_FACT, want, nw);
        return;
    }
    for (size_t j = 0; m->ui && j < nu; j++)
        uidx_put(m->ui, &u[j], vecs + j * (size_t)dim);
}

int m2_run(mem_ctx *m, const store_flush *f, char *err, size_t errlen)
{
    int64_t t0 = time_mono_ns(), llm_ns = 0;
    arena a;
    arena_init(&a);
    int rc = MEM_RETRY;
    store_message *msgs;
    size_t n;
    llm_reply r;
    if ((rc = mem_ask_flush(m, f, M2_FACTS_SYSTEM, &a, &msgs, &n, &r, &llm_ns, err, errlen)) != MEM_OK)
        goto out;
    rc = MEM_RETRY;
    int src;
    m2_fact *facts = NULL;
    size_t nf = 0;
    if (r.content) {
        if (m2_parse_facts(r.content, strlen(r.content), (int)n, &a, &facts, &nf) != 0) {
            rc = mem_bad_output(m, &r, "facts", err, errlen);
            goto out;
        }
        llm_reply_free(&r);
    }
    atomic_fetch_add(&m->stats.facts_extracted, nf);
    /* confidence, then exact duplicates (within the flush, then among the user's current facts) */
    kept *k = arena_calloc(&a, nf ? nf : 1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t nk = 0;
    for (size_t i = 0; i < nf; i++) {
        if (facts[i].confidence < m->cfg.min_confidence) {
            atomic_fetch_add(&m->stats.facts_low_confidence, 1);
            continue;
        }
        kept cur = {.f = &facts[i]};
        mem_fact_hash(facts[i].content, cur.hash);
        int dup = 0;
        for (size_t j = 0; j < nk && !dup; j++)
            dup = strcmp(k[j].hash, cur.hash) == 0;
        store_fact old;
        if (!dup) {
            src = m->st->ops->fact_by_hash(m->st, f->user_id, cur.hash, &a, &old);
            if (src != STORE_OK && src != STORE_NOT_FOUND) {
                snprintf(err, errlen, "checking duplicates: %s", store_rc_name(src));
                goto out;
            }
            dup = src == STORE_OK;
        }
        if (dup) {
            atomic_fetch_add(&m->stats.dup_exact, 1);
            continue;
        }
        k[nk++] = cur;
    }
    cand_list cl = {.cap = (int)(nk * 8 + 1)};
    cl.ids = arena_alloc(&a, (size_t)cl.cap * sizeof *cl.ids);
    cl.texts = arena_alloc(&a, (size_t)cl.cap * sizeof *cl.texts);
    if (!cl.ids || !cl.texts) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t before_near = nk;
    src = find_similar(m, f, k, &nk, &cl, &a);
    if (src != STORE_OK) {
        snprintf(err, errlen, "searching similar facts: %s", store_rc_name(src));
        goto out;
    }
    size_t dropped = (nf - before_near) + (before_near - nk); /* low confidence and duplicates */
    size_t low = 0;
    for (size_t i = 0; i < nf; i++)
        low += facts[i].confidence < m->cfg.min_confidence;
    int has_cand = 0;
    for (size_t i = 0; i < nk; i++)
        has_cand |= k[i].n_cand > 0;
    if (dropped > low && !has_cand) /* duplicates would have been candidates of themselves */
        atomic_fetch_add(&m->stats.decide_saved, 1);
    log_debug("m2: flush %s: %zu facts read, %zu under the confidence threshold, %zu duplicates, %zu kept", f->id, nf,
              low, dropped - low, nk);
    rc = decide(m, f, k, nk, &cl, &a, &llm_ns, err, errlen);
    if (rc != MEM_OK)
        goto out;
    rc = MEM_RETRY;
    store_fact_op *ops = arena_calloc(&a, nk ? nk : 1, sizeof *ops);
    kept *applied = arena_calloc(&a, nk ? nk : 1, sizeof *applied);
    if (!ops || !applied) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    size_t nops = 0;
    for (size_t i = 0; i < nk; i++) {
        atomic_fetch_add(&m->stats.decided[k[i].d.action], 1);
        if (k[i].d.action == M2_IGNORE)
            continue;
        const m2_fact *x = k[i].f;
        store_fact_op *op = &ops[nops];
        op->action = k[i].d.action == M2_UPDATE ? STORE_FACT_UPDATE
                   : k[i].d.action == M2_INVALIDATE ? STORE_FACT_INVALIDATE : STORE_FACT_ADD;
        op->target_id = k[i].d.target ? cl.ids[k[i].d.target - 1] : NULL;
        op->content = x->content;
        op->fact_type = x->type;
        op->confidence = x->confidence;
        op->entities = mem_json_names(&a, x->entities, x->n_entities);
        op->source_ids = mem_json_ids(&a, msgs, x->refs, x->n_refs);
        op->content_hash = arena_strdup(&a, k[i].hash);
        if (!op->entities || !op->source_ids || !op->content_hash) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        applied[nops++] = k[i];
    }
    const char **ids = NULL, **retired = NULL;
    src = m->st->ops->facts_apply(m->st, f->user_id, f->id, ops, nops, &a, &ids, &retired);
    if (src != STORE_OK) {
        snprintf(err, errlen, "storing facts: %s", store_rc_name(src));
        rc = src == STORE_NOT_FOUND ? MEM_GONE : MEM_RETRY;
        goto out;
    }
    if (ids && nops) {
        size_t nr = 0;
        for (size_t i = 0; i < nops; i++)
            if (retired[i])
                retired[nr++] = retired[i];
        if (nr && m->ui)
            uidx_remove(m->ui, f->user_id, retired, nr);
        index_new(m, applied, ids, nops, &a);
        atomic_fetch_add(&m->stats.facts_stored, nops);
        atomic_fetch_add(&m->stats.facts_retired, nr);
        mem_changed(m, f->user_id);
        log_debug("m2: flush %s: %zu facts stored, %zu retired", f->id, nops, nr);
    }
    rc = MEM_OK;
    met_hist_observe(&m->stats.total[2], time_mono_ns() - t0);
    met_hist_observe(&m->stats.llm[2], llm_ns);
out:
    arena_free(&a);
    return rc;
}
