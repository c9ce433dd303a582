/* mem_common — what both layers share: the conversation as prompts show it, fact hashing, the lenient
 * readers of lists and message references, and the per-layer dispatch. See memory.h. */
#include "memory/mem_internal.h"
#include "util/opstats.h"
#include "util/timeutil.h"
#include "http/json.h"
#include "util/sha256.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mem_rc_name(int rc)
{
    switch (rc) {
    case MEM_OK: return "ok";
    case MEM_RETRY: return "retry";
    case MEM_BAD_OUTPUT: return "bad_output";
    case MEM_GONE: return "gone";
    default: return "unknown";
    }
}

void mem_init(mem_ctx *m, const mem_config *cfg, store *st, llm *l, embedder *emb, user_index *ui, embedq *eq)
{
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    if (!(m->cfg.min_confidence >= 0 && m->cfg.min_confidence <= 1))
        m->cfg.min_confidence = 0.6;
    if (!(m->cfg.dup_similarity > 0 && m->cfg.dup_similarity <= 1))
        m->cfg.dup_similarity = 0.95;
    if (!(m->cfg.candidate_similarity >= -1 && m->cfg.candidate_similarity <= 1))
        m->cfg.candidate_similarity = 0.6;
    if (m->cfg.candidates < 1)
        m->cfg.candidates = 4;
    if (m->cfg.timeout_ms < 1)
        m->cfg.timeout_ms = 120000;
    m->st = st;
    m->llm = l;
    m->emb = emb;
    m->ui = emb ? ui : NULL;
    m->eq = eq;
}

int mem_run_layer(mem_ctx *m, const store_flush *f, int layer, char *err, size_t errlen)
{
    int64_t t0 = time_mono_ns();
    int rc = layer == 1 ? m1_run(m, f, err, errlen) : m2_run(m, f, err, errlen);
    if (rc == MEM_OK) /* the seed's M1/M2 operation latency, LLM calls included */
        opstats_observe_ns(layer == 1 ? OP_M1 : OP_M2, time_mono_ns() - t0);
    return rc;
}

int mem_ask_flush(mem_ctx *m, const store_flush *f, const char *system, arena *a, store_message **msgs, size_t *n,
                  llm_reply *r, int64_t *llm_ns, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int src = m->st->ops->flush_messages(m->st, f->id, a, msgs, n);
    if (src != STORE_OK) {
        snprintf(err, errlen, "reading the flush's messages: %s", store_rc_name(src));
        return src == STORE_NOT_FOUND ? MEM_GONE : MEM_RETRY;
    }
    if (*n == 0)
        return MEM_OK;
    char *conv = mem_format_messages(a, *msgs, *n);
    char *prompt = conv ? arena_sprintf(a, "Conversation, oldest first (times are UTC):\n%s", conv) : NULL;
    if (!prompt) {
        snprintf(err, errlen, "out of memory");
        return MEM_RETRY;
    }
    if (llm_chat(m->llm, f->user_id, system, prompt, 1, m->cfg.timeout_ms, r, err, errlen) != LLM_OK)
        return MEM_RETRY; /* err set by the client */
    *llm_ns += r->latency_us * 1000;
    return MEM_OK;
}

int mem_bad_output(mem_ctx *m, llm_reply *r, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "the model's %s could not be read: %.120s", what, r->content);
    llm_reply_free(r);
    atomic_fetch_add(&m->stats.bad_output, 1);
    return MEM_BAD_OUTPUT;
}

/* Length of the longest prefix of s[0..n) that is at most max bytes and ends on a UTF-8 boundary. */
static size_t utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t k = max;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
        k--;
    return k;
}

char *mem_format_messages(arena *a, const store_message *msgs, size_t n)
{
    size_t cap = 64;
    for (size_t i = 0; i < n; i++)
        cap += 96 + strlen(msgs[i].role) + utf8_cut(msgs[i].content, strlen(msgs[i].content), MEM_PROMPT_MSG_MAX) + 4;
    char *out = arena_alloc(a, cap);
    if (!out)
        return NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(out + len, cap - len, "[%zu] %s %s: ", i + 1, msgs[i].created_at, msgs[i].role);
        const char *c = msgs[i].content;
        size_t cl = strlen(c), keep = utf8_cut(c, cl, MEM_PROMPT_MSG_MAX);
        for (size_t k = 0; k < keep; k++) /* one line per message: control characters become spaces */
            out[len++] = ((unsigned char)c[k] < 0x20 || c[k] == 0x7f) ? ' ' : c[k];
        if (keep < cl)
            len += (size_t)snprintf(out + len, cap - len, " ...");
        out[len++] = '\n';
    }
    out[len] = 0;
    return out;
}

void mem_fact_hash(const char *content, char out[65])
{
    size_t n = strlen(content);
    char *norm = malloc(n + 1);
    if (!norm) { /* hash the raw text: still deterministic */
        sha256_hex(content, n, out);
        return;
    }
    size_t k = 0;
    int space = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)content[i];
        if (isspace(ch)) {
            space = k > 0;
            continue;
        }
        if (space)
            norm[k++] = ' ';
        space = 0;
        norm[k++] = (char)tolower(ch);
    }
    while (k > 0 && (norm[k - 1] == '.' || norm[k - 1] == '!' || norm[k - 1] == '?' || norm[k - 1] == ' '))
        k--;
    sha256_hex(norm, k, out);
    free(norm);
}

char *mem_text(arena *a, const cJSON *obj, const char *key, size_t max)
{
    char buf[MEM_TEXT_MAX + 1];
    if (max > MEM_TEXT_MAX)
        max = MEM_TEXT_MAX;
    const char *s = llm_json_str(obj, key, buf, max + 1);
    if (!s || !json_utf8_valid(s, strlen(s)))
        return NULL;
    return arena_strdup(a, s);
}

const char **mem_names(arena *a, const cJSON *obj, const char *key, size_t *n)
{
    *n = 0;
    const cJSON *arr = llm_json_arr(obj, key);
    if (!arr)
        return NULL;
    const char **out = arena_alloc(a, MEM_MAX_LIST * sizeof *out);
    if (!out)
        return NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (*n == MEM_MAX_LIST)
            break;
        if (!cJSON_IsString(it) || !it->valuestring)
            continue;
        cJSON *wrap = cJSON_CreateObject(); /* reuse the trimming and cutting of llm_json_str */
        if (!wrap)
            break;
        cJSON_AddItemToObject(wrap, "v", cJSON_CreateStringReference(it->valuestring));
        char *s = mem_text(a, wrap, "v", MEM_NAME_MAX);
        cJSON_Delete(wrap);
        if (!s)
            continue;
        size_t d = 0;
        while (d < *n && strcmp(out[d], s) != 0)
            d++;
        if (d == *n)
            out[(*n)++] = s;
    }
    return out;
}

/* A message reference: 3, 3.0, "3", "[3]", "#3". 0 when unusable. */
static int ref_of(const cJSON *it, int n_msgs)
{
    double v = -1;
    if (cJSON_IsNumber(it)) {
        v = it->valuedouble;
    } else if (cJSON_IsString(it) && it->valuestring) {
        const char *s = it->valuestring;
        while (*s == ' ' || *s == '[' || *s == '#')
            s++;
        char *end;
        long x = strtol(s, &end, 10);
        if (end != s && (*end == 0 || *end == ']' || *end == ' '))
            v = (double)x;
    }
    if (!(v >= 1 && v <= n_msgs) || v != floor(v))
        return 0;
    return (int)v;
}

int *mem_refs(arena *a, const cJSON *obj, int n_msgs, size_t *n)
{
    *n = 0;
    if (n_msgs < 1)
        return NULL;
    unsigned char *seen = arena_calloc(a, (size_t)n_msgs + 1, 1);
    int *out = arena_alloc(a, (size_t)n_msgs * sizeof *out);
    if (!seen || !out)
        return NULL;
    static const char *const keys[] = {"messages", "message_ids", "sources", "source_messages", NULL};
    const cJSON *arr = llm_json_any(obj, keys);
    if (cJSON_IsArray(arr)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, arr)
        {
            int r = ref_of(it, n_msgs);
            if (r)
                seen[r] = 1;
        }
    } else if (arr) {
        int r = ref_of(arr, n_msgs);
        if (r)
            seen[r] = 1;
    }
    for (int r = 1; r <= n_msgs; r++)
        if (seen[r])
            out[(*n)++] = r;
    if (*n == 0) /* the model named none: the whole flush */
        for (int r = 1; r <= n_msgs; r++)
            out[(*n)++] = r;
    return out;
}

char *mem_json_names(arena *a, const char *const *names, size_t n)
{
    jw w;
    jw_init(&w);
    jw_arr(&w);
    for (size_t i = 0; i < n; i++)
        jw_str(&w, names[i]);
    jw_arr_end(&w);
    size_t len;
    char *s = jw_take(&w, &len);
    char *out = s ? arena_strndup(a, s, len) : NULL;
    free(s);
    return out;
}

char *mem_json_ids(arena *a, const store_message *msgs, const int *refs, size_t n)
{
    const char **ids = arena_alloc(a, (n ? n : 1) * sizeof *ids);
    if (!ids)
        return NULL;
    for (size_t i = 0; i < n; i++)
        ids[i] = msgs[refs[i] - 1].id;
    return mem_json_names(a, ids, n);
}

void mem_changed(mem_ctx *m, const char *user_id)
{
    if (m->changed)
        m->changed(m->changed_ctx, user_id);
}
