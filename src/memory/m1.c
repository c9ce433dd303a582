/* m1 — episodes: one chat call per flush turns its conversation into self-contained descriptions of what
 * happened, with time and participants. See memory.h. */
#include "memory/mem_internal.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

static const char M1_SYSTEM[] =
    "memfuse-task: episodes\n"
    "You write the episodic memory of a conversation between a user and an AI assistant. Read the numbered "
    "messages and describe what happened as one or more episodes (usually one; several only for clearly "
    "separate events or topics).\n"
    "Each episode must be self-contained: third person, names and concrete details kept, understandable "
    "without the conversation. Resolve relative times (\"yesterday\", \"last week\", \"next Friday\") against "
    "the timestamps of the messages and write absolute dates. Do not invent anything.\n"
    "Answer with one JSON object and nothing else:\n"
    "{\"episodes\": [{\"content\": \"what happened\", \"occurred_at\": \"YYYY-MM-DD (when it happened; null if "
    "unknown)\", \"participants\": [\"user\", \"assistant\", \"other people named\"], \"messages\": [1, 2]}]}\n"
    "\"messages\" lists the numbers of the messages the episode covers.";

/* "YYYY-MM-DD" optionally followed by a time: the model's date, else NULL. */
static const char *date_of(arena *a, const cJSON *item)
{
    static const char *const keys[] = {"occurred_at", "date", "time", "when", NULL};
    const cJSON *v = llm_json_any(item, keys);
    if (!cJSON_IsString(v) || !v->valuestring)
        return NULL;
    const char *s = v->valuestring;
    while (*s == ' ')
        s++;
    static const char shape[] = "dddd-dd-dd";
    for (int i = 0; shape[i]; i++)
        if (shape[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != '-')
            return NULL;
    size_t n = 10;
    while (n < 35 && s[n] && (isalnum((unsigned char)s[n]) || strchr(":.+-TZ ", s[n])))
        n++;
    while (n > 10 && s[n - 1] == ' ')
        n--;
    return arena_strndup(a, s, n);
}

int m1_parse(const char *text, size_t len, int n_msgs, arena *a, m1_episode **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    cJSON *root = llm_json_extract(text, len);
    if (!root)
        return -1;
    static const char *const list_keys[] = {"episodes", "episode", "memories", "items", NULL};
    const cJSON *list = cJSON_IsArray(root) ? root : llm_json_any(root, list_keys);
    const cJSON *lone = NULL; /* one episode given as an object: {"episodes": {...}} or the episode itself */
    if (cJSON_IsObject(list))
        lone = list;
    else if (!list && cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "content"))
        lone = root;
    cJSON *single = NULL;
    if (lone && (single = cJSON_CreateArray()) != NULL) {
        cJSON_AddItemReferenceToArray(single, (cJSON *)lone);
        list = single;
    }
    int rc = -1;
    if (!cJSON_IsArray(list))
        goto done;
    m1_episode *eps = arena_calloc(a, MEM_MAX_EPISODES, sizeof *eps);
    if (!eps)
        goto done;
    int items = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        items++;
        if (*n == MEM_MAX_EPISODES || !cJSON_IsObject(it))
            continue;
        static const char *const text_keys[] = {"content", "summary", "description", "text", NULL};
        char *content = NULL;
        for (int k = 0; text_keys[k] && !content; k++)
            content = mem_text(a, it, text_keys[k], MEM_TEXT_MAX);
        if (!content)
            continue;
        m1_episode *e = &eps[*n];
        e->content = content;
        e->occurred_at = date_of(a, it);
        e->participants = mem_names(a, it, "participants", &e->n_participants);
        e->refs = mem_refs(a, it, n_msgs, &e->n_refs);
        if (n_msgs > 0 && !e->refs)
            goto done;
        (*n)++;
    }
    if (items > 0 && *n == 0) /* a list of nothing usable: garbage, not "no episodes" */
        goto done;
    *out = eps;
    rc = 0;
done:
    cJSON_Delete(single);
    cJSON_Delete(root);
    if (rc)
        *n = 0;
    return rc;
}

int m1_run(mem_ctx *m, const store_flush *f, char *err, size_t errlen)
{
    int64_t t0 = time_mono_ns(), llm_ns = 0;
    arena a;
    arena_init(&a);
    int rc = MEM_RETRY;
    store_message *msgs;
    size_t n;
    llm_reply r;
    if ((rc = mem_ask_flush(m, f, M1_SYSTEM, &a, &msgs, &n, &r, &llm_ns, err, errlen)) != MEM_OK)
        goto out;
    rc = MEM_RETRY;
    m1_episode *eps = NULL;
    size_t ne = 0;
    if (r.content) {
        if (m1_parse(r.content, strlen(r.content), (int)n, &a, &eps, &ne) != 0) {
            rc = mem_bad_output(m, &r, "episodes", err, errlen);
            goto out;
        }
        llm_reply_free(&r);
    }
    store_episode_in *in = arena_calloc(&a, ne ? ne : 1, sizeof *in);
    if (!in) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ne; i++) {
        in[i].content = eps[i].content;
        in[i].occurred_at = eps[i].occurred_at;
        in[i].participants = mem_json_names(&a, eps[i].participants, eps[i].n_participants);
        in[i].source_ids = mem_json_ids(&a, msgs, eps[i].refs, eps[i].n_refs);
        if (!in[i].participants || !in[i].source_ids) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    const char **ids = NULL;
    int src = m->st->ops->episodes_add(m->st, f->id, in, ne, &a, &ids);
    if (src != STORE_OK) {
        snprintf(err, errlen, "storing episodes: %s", store_rc_name(src));
        rc = src == STORE_NOT_FOUND ? MEM_GONE : MEM_RETRY;
        goto out;
    }
    if (ids && ne) {
        atomic_fetch_add(&m->stats.episodes, ne);
        if (m->eq)
            embedq_push(m->eq, STORE_HIT_EPISODE, ids, ne);
        mem_changed(m, f->user_id);
        log_debug("m1: flush %s: %zu episodes", f->id, ne);
    }
    rc = MEM_OK;
    met_hist_observe(&m->stats.total[1], time_mono_ns() - t0);
    met_hist_observe(&m->stats.llm[1], llm_ns);
out:
    arena_free(&a);
    return rc;
}
