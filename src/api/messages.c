/* messages — SPEC §6: add (one call = one round, durable before 201), list, read, update, delete. */
#include "api/api.h"
#include "core/qcache.h"
#include "util/opstats.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const ROLES[] = {"user", "assistant", "system", NULL};

/* Validates an array of message objects under key; returns an arena array of n inputs. */
static store_msg_in *parse_messages(vctx *v, const cJSON *body, const char *key, size_t *n)
{
    *n = 0;
    const cJSON *arr = v_array(v, body, NULL, key, V_REQUIRED, API_BATCH_MAX);
    if (!arr)
        return NULL;
    size_t len = (size_t)cJSON_GetArraySize(arr);
    store_msg_in *in = arena_calloc(v->a, len ? len : 1, sizeof *in);
    if (!in)
        return NULL;
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        const char *path = v_path_index(v, key, i);
        if (!cJSON_IsObject(it)) {
            v_add(v, path, "model_type", "Input should be a valid dictionary or object");
            continue;
        }
        in[i].role = v_enum(v, it, path, "role", V_REQUIRED, ROLES);
        in[i].content = v_string(v, it, path, "content", V_REQUIRED | V_NONEMPTY, API_CONTENT_MAX);
    }
    *n = len;
    return in;
}

static void ids_not_found(http_response *res, const char *const *missing, size_t n, arena *a)
{
    size_t cap = 32;
    for (size_t i = 0; i < n; i++)
        cap += strlen(missing[i]) + 2;
    char *list = arena_alloc(a, cap);
    if (!list) {
        env_error(res, 404, "Some message IDs were not found", "message_ids", "Message IDs not found");
        return;
    }
    size_t o = (size_t)snprintf(list, cap, "Message IDs not found: ");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(list + o, cap - o, "%s%s", i ? ", " : "", missing[i]);
    env_error(res, 404, "Some message IDs were not found", "message_ids", list);
}

void api_messages_add(http_request *req, http_response *res)
{
    vctx v;
    v_init(&v, req->a);
    cJSON *body = api_body(req, res, &v);
    if (!body)
        goto out;
    size_t n;
    store_msg_in *msgs = parse_messages(&v, body, "messages", &n);
    if (v_ok(&v) && n == 0)
        v_add(&v, "messages", "too_short", "List should have at least 1 item after validation, not 0");
    if (!v_ok(&v) || !msgs) {
        v_respond(&v, res);
        goto out;
    }
    store_session s;
    if (api_load_session(req, res, req->params[0], &s))
        goto out;
    int tokens = 0;
    for (size_t i = 0; i < n; i++) {
        int t = rb_estimate_tokens(msgs[i].content);
        tokens = tokens > 2000000000 - t ? 2000000000 : tokens + t;
    }
    app *ap = api_app(req);
    rb_plan plan;
    if (rb_plan_add(&ap->rb, s.user_id, s.id, tokens, req->a, &plan) != 0) {
        api_store_error(res, STORE_ERROR, "add messages");
        goto out;
    }
    store_added added = {0};
    int64_t t0 = time_mono_ns();
    int rc = ap->st->ops->messages_add(ap->st, s.id, msgs, n, tokens, plan.consolidate_new,
                                       (const char *const *)plan.consolidate, plan.n_taken, req->a, &added);
    opstats_observe_ns(OP_M0, time_mono_ns() - t0);
    if (rc != STORE_OK) {
        rb_abort(&ap->rb, &plan);
        if (rc == STORE_NO_SESSION)
            api_session_not_found(res, req->params[0]);
        else
            api_store_error(res, rc, "add messages");
        goto out;
    }
    rb_commit(&ap->rb, &plan, added.round_id);
    if (ap->layers && added.flush_id) {
        int64_t h0 = time_mono_ns();
        flushmgr_push(&ap->fm, added.flush_id, s.user_id); /* M1 and M2 run in the background */
        opstats_observe_ns(OP_FLUSH_HANDOFF, time_mono_ns() - h0);
    }
    api_changed(ap, s.user_id);
    if (ap->dense)
        embedq_push(&ap->eq, STORE_HIT_MESSAGE, added.message_ids, added.n);
    jw *j = env_begin(res, 201);
    jw_obj(j);
    api_write_id_list(j, "message_ids", added.message_ids, added.n);
    jw_kstr(j, "round_id", added.round_id);
    jw_kbool(j, "buffered", !plan.consolidate_new);
    jw_obj_end(j);
    env_end(res, "Messages added successfully");
out:
    v_free(&v);
}

void api_messages_list(http_request *req, http_response *res)
{
    static const char *const sorts[] = {"timestamp", "id", NULL};
    static const enum store_sort values[] = {STORE_SORT_TIME, STORE_SORT_ID};
    store_page p;
    if (api_page_params(req, res, sorts, values, "timestamp, id", &p))
        return;
    const char *bo = http_query(req, "buffer_only");
    if (bo) {
        if (strcasecmp(bo, "true") == 0) {
            p.buffer = STORE_BUFFERED;
        } else if (strcasecmp(bo, "false") == 0) {
            p.buffer = STORE_CONSOLIDATED;
        } else {
            api_bad_param(res, "buffer_only", "buffer_only must be 'true' or 'false'");
            return;
        }
    }
    store_session s;
    if (api_load_session(req, res, req->params[0], &s))
        return;
    store *st = api_app(req)->st;
    store_message *msgs;
    size_t n;
    int rc = st->ops->messages_list(st, s.id, &p, req->a, &msgs, &n);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve messages");
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "messages");
    jw_arr(j);
    for (size_t i = 0; i < n; i++)
        api_write_message(j, &msgs[i]);
    jw_arr_end(j);
    jw_obj_end(j);
    env_end(res, "Messages retrieved successfully");
}

/* Parses {"message_ids": [...]} (and, for update, "new_messages"); then loads the session. */
static int ids_request(http_request *req, http_response *res, vctx *v, int with_new, const char ***ids, size_t *n,
                       store_msg_in **msgs, store_session *s)
{
    cJSON *body = api_body(req, res, v);
    if (!body)
        return -1;
    *ids = v_string_array(v, body, NULL, "message_ids", V_REQUIRED, API_BATCH_MAX, API_ID_MAX, n);
    if (with_new) {
        size_t nm;
        *msgs = parse_messages(v, body, "new_messages", &nm);
        if (v_ok(v) && nm != *n)
            v_add(v, "new_messages", "value_error", "new_messages must have the same length as message_ids");
    }
    if (!v_ok(v)) {
        v_respond(v, res);
        return -1;
    }
    return api_load_session(req, res, req->params[0], s);
}

void api_messages_read(http_request *req, http_response *res)
{
    vctx v;
    v_init(&v, req->a);
    const char **ids;
    size_t n;
    store_session s;
    if (ids_request(req, res, &v, 0, &ids, &n, NULL, &s))
        goto out;
    store *st = api_app(req)->st;
    store_message *msgs = arena_calloc(req->a, n ? n : 1, sizeof *msgs);
    const char **missing;
    size_t nm;
    int rc = msgs ? st->ops->messages_read(st, s.id, ids, n, req->a, msgs, &missing, &nm) : STORE_ERROR;
    if (rc == STORE_NOT_FOUND) {
        ids_not_found(res, missing, nm, req->a);
    } else if (rc == STORE_NO_SESSION) {
        api_session_not_found(res, req->params[0]);
    } else if (rc != STORE_OK) {
        api_store_error(res, rc, "read messages");
    } else {
        jw *j = env_begin(res, 200);
        jw_obj(j);
        jw_key(j, "messages");
        jw_arr(j);
        for (size_t i = 0; i < n; i++)
            api_write_message(j, &msgs[i]);
        jw_arr_end(j);
        jw_obj_end(j);
        env_end(res, "Messages read successfully");
    }
out:
    v_free(&v);
}

static void change(http_request *req, http_response *res, int update)
{
    vctx v;
    v_init(&v, req->a);
    const char **ids;
    size_t n;
    store_msg_in *msgs = NULL;
    store_session s;
    if (ids_request(req, res, &v, update, &ids, &n, &msgs, &s))
        goto out;
    store *st = api_app(req)->st;
    const char **missing;
    size_t nm;
    int rc = update ? st->ops->messages_update(st, s.id, ids, msgs, n, req->a, &missing, &nm)
                    : st->ops->messages_delete(st, s.id, ids, n, req->a, &missing, &nm);
    if (rc == STORE_NOT_FOUND) {
        ids_not_found(res, missing, nm, req->a);
    } else if (rc == STORE_NO_SESSION) {
        api_session_not_found(res, req->params[0]);
    } else if (rc != STORE_OK) {
        api_store_error(res, rc, update ? "update messages" : "delete messages");
    } else {
        app *ap = api_app(req);
        uidx_remove(&ap->ui, s.user_id, ids, n); /* stale vectors leave the index; updates are re-embedded */
        api_changed(ap, s.user_id);
        if (update && ap->dense)
            embedq_push(&ap->eq, STORE_HIT_MESSAGE, ids, n);
        jw *j = env_begin(res, 200);
        jw_obj(j);
        api_write_id_list(j, "message_ids", ids, n);
        jw_obj_end(j);
        env_end(res, update ? "Messages updated successfully" : "Messages deleted successfully");
    }
out:
    v_free(&v);
}

void api_messages_update(http_request *req, http_response *res) { change(req, res, 1); }
void api_messages_delete(http_request *req, http_response *res) { change(req, res, 0); }
