/* knowledge — SPEC §7: a user's knowledge items. */
#include "api/api.h"
#include "core/qcache.h"

static void knowledge_array(http_response *res, int code, const store_knowledge *k, size_t n, const char *msg)
{
    jw *j = env_begin(res, code);
    jw_obj(j);
    jw_key(j, "knowledge");
    jw_arr(j);
    for (size_t i = 0; i < n; i++)
        api_write_knowledge(j, &k[i]);
    jw_arr_end(j);
    jw_obj_end(j);
    env_end(res, msg);
}

static void id_array(http_response *res, int code, const char *const *ids, size_t n, const char *msg)
{
    jw *j = env_begin(res, code);
    jw_obj(j);
    api_write_id_list(j, "knowledge_ids", ids, n);
    jw_obj_end(j);
    env_end(res, msg);
}

/* The user (404/403) for every call. */
static int load(http_request *req, http_response *res)
{
    store_entity u;
    return api_load_user(req, res, req->params[0], &u);
}

void api_knowledge_list(http_request *req, http_response *res)
{
    if (load(req, res))
        return;
    store *st = api_app(req)->st;
    store_knowledge *k;
    size_t n;
    int rc = st->ops->knowledge_list(st, req->params[0], req->a, &k, &n);
    if (rc != STORE_OK)
        api_store_error(res, rc, "retrieve knowledge items");
    else
        knowledge_array(res, 200, k, n, "Knowledge items retrieved successfully");
}

void api_knowledge_add(http_request *req, http_response *res)
{
    vctx v;
    v_init(&v, req->a);
    cJSON *body = api_body(req, res, &v);
    if (!body)
        goto out;
    size_t n;
    const char **texts = v_string_array(&v, body, NULL, "knowledge", V_REQUIRED | V_NONEMPTY, API_BATCH_MAX,
                                        API_CONTENT_MAX, &n);
    if (!v_ok(&v)) {
        v_respond(&v, res);
        goto out;
    }
    if (load(req, res))
        goto out;
    store *st = api_app(req)->st;
    const char **ids = NULL;
    int rc = n ? st->ops->knowledge_add(st, req->params[0], texts, n, req->a, &ids) : STORE_OK;
    if (rc == STORE_NO_USER)
        api_user_not_found(res, req->params[0]);
    else if (rc != STORE_OK)
        api_store_error(res, rc, "add knowledge items");
    else {
        api_changed(api_app(req), req->params[0]);
        if (api_app(req)->dense)
            embedq_push(&api_app(req)->eq, STORE_HIT_KNOWLEDGE, ids, n);
        id_array(res, 201, ids, n, "Knowledge items added successfully");
    }
out:
    v_free(&v);
}

/* Parses {"knowledge_ids": [...]} (and, for update, "new_knowledge"), then loads the user. */
static int ids_request(http_request *req, http_response *res, vctx *v, const char ***ids, size_t *n,
                       const char ***texts)
{
    cJSON *body = api_body(req, res, v);
    if (!body)
        return -1;
    *ids = v_string_array(v, body, NULL, "knowledge_ids", V_REQUIRED, API_BATCH_MAX, API_ID_MAX, n);
    if (texts) {
        size_t nt;
        *texts = v_string_array(v, body, NULL, "new_knowledge", V_REQUIRED | V_NONEMPTY, 0, API_CONTENT_MAX, &nt);
        if (v_ok(v) && nt < *n)
            v_add(v, "new_knowledge", "value_error", "new_knowledge must have at least as many items as knowledge_ids");
    }
    if (!v_ok(v)) {
        v_respond(v, res);
        return -1;
    }
    return load(req, res);
}

void api_knowledge_read(http_request *req, http_response *res)
{
    vctx v;
    v_init(&v, req->a);
    const char **ids;
    size_t n;
    if (ids_request(req, res, &v, &ids, &n, NULL) == 0) {
        store *st = api_app(req)->st;
        store_knowledge *k = NULL;
        size_t nk = 0;
        int rc = n ? st->ops->knowledge_read(st, req->params[0], ids, n, req->a, &k, &nk) : STORE_OK;
        if (rc != STORE_OK)
            api_store_error(res, rc, "retrieve knowledge items");
        else
            knowledge_array(res, 200, k, nk, "Knowledge items retrieved successfully");
    }
    v_free(&v);
}

/* Update (with texts) or delete each id of the user's; answers with the ids actually changed. */
static void change(http_request *req, http_response *res, int update)
{
    vctx v;
    v_init(&v, req->a);
    const char **ids, **texts = NULL;
    size_t n;
    if (ids_request(req, res, &v, &ids, &n, update ? &texts : NULL) == 0) {
        store *st = api_app(req)->st;
        const char **done = NULL;
        size_t nd = 0;
        int rc = STORE_OK;
        if (n)
            rc = update ? st->ops->knowledge_update(st, req->params[0], ids, texts, n, req->a, &done, &nd)
                        : st->ops->knowledge_delete(st, req->params[0], ids, n, req->a, &done, &nd);
        if (rc == STORE_NO_USER)
            api_user_not_found(res, req->params[0]);
        else if (rc != STORE_OK)
            api_store_error(res, rc, update ? "update knowledge items" : "delete knowledge items");
        else {
            app *ap = api_app(req);
            uidx_remove(&ap->ui, req->params[0], done, nd);
            api_changed(ap, req->params[0]);
            if (update && ap->dense)
                embedq_push(&ap->eq, STORE_HIT_KNOWLEDGE, done, nd);
            id_array(res, 200, done, nd, update ? "Knowledge items updated successfully" : "Knowledge items deleted successfully");
        }
    }
    v_free(&v);
}

void api_knowledge_update(http_request *req, http_response *res) { change(req, res, 1); }
void api_knowledge_delete(http_request *req, http_response *res) { change(req, res, 0); }
