/* entities — users (SPEC §3) and agents (SPEC §4): one implementation, two vocabularies. */
#include "api/api.h"
#include "core/qcache.h"

#include <stdio.h>

typedef struct entity_words {
    enum store_kind kind;
    const char *Title;      /* "User" */
    const char *one, *many; /* "user", "users" */
    const char *id_field;   /* "user_id" */
} entity_words;

static const entity_words USERS = {STORE_USERS, "User", "user", "users", "user_id"};
static const entity_words AGENTS = {STORE_AGENTS, "Agent", "agent", "agents", "agent_id"};

static void not_found_id(http_response *res, const entity_words *w, const char *id)
{
    if (w->kind == STORE_USERS)
        api_user_not_found(res, id);
    else
        api_agent_not_found(res, id);
}

static void name_taken(http_response *res, const entity_words *w, const char *name)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s with name '%s' already exists", w->Title, name);
    env_error(res, 400, msg, "name", msg);
}

static void one_entity(http_response *res, int code, const entity_words *w, const store_entity *e, const char *msg)
{
    jw *j = env_begin(res, code);
    jw_obj(j);
    jw_key(j, w->one);
    api_write_entity(j, e);
    jw_obj_end(j);
    env_end(res, msg);
}

static void entity_list(http_request *req, http_response *res, const entity_words *w)
{
    if (api_allow_admin(req, res))
        return;
    store *st = api_app(req)->st;
    const char *name = http_query(req, "name");
    char msg[512];
    if (name) {
        store_entity e;
        int rc = st->ops->entity_get_by_name(st, w->kind, name, req->a, &e);
        if (rc == STORE_NOT_FOUND) {
            snprintf(msg, sizeof msg, "%s with name '%s' not found", w->Title, name);
            env_error(res, 404, msg, "name", msg);
            return;
        }
        if (rc != STORE_OK) {
            snprintf(msg, sizeof msg, "retrieve %s", w->one);
            api_store_error(res, rc, msg);
            return;
        }
        jw *j = env_begin(res, 200);
        jw_obj(j);
        jw_key(j, w->many);
        jw_arr(j);
        api_write_entity(j, &e);
        jw_arr_end(j);
        jw_obj_end(j);
        snprintf(msg, sizeof msg, "%s retrieved successfully", w->Title);
        env_end(res, msg);
        return;
    }
    store_entity *all;
    size_t n;
    int rc = st->ops->entity_list(st, w->kind, req->a, &all, &n);
    if (rc != STORE_OK) {
        snprintf(msg, sizeof msg, "list %s", w->many);
        api_store_error(res, rc, msg);
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, w->many);
    jw_arr(j);
    for (size_t i = 0; i < n; i++)
        api_write_entity(j, &all[i]);
    jw_arr_end(j);
    jw_obj_end(j);
    snprintf(msg, sizeof msg, "%ss retrieved successfully", w->Title);
    env_end(res, msg);
}

static void entity_create(http_request *req, http_response *res, const entity_words *w)
{
    if (api_allow_admin(req, res))
        return;
    vctx v;
    v_init(&v, req->a);
    cJSON *body = api_body(req, res, &v);
    if (!body)
        goto out;
    const char *name = v_string(&v, body, NULL, "name", V_REQUIRED | V_NONEMPTY, API_NAME_MAX);
    const char *desc = v_string(&v, body, NULL, "description", 0, API_CONTENT_MAX);
    if (!v_ok(&v)) {
        v_respond(&v, res);
        goto out;
    }
    store *st = api_app(req)->st;
    store_entity e;
    int rc = st->ops->entity_create(st, w->kind, name, desc, req->a, &e);
    char msg[128];
    if (rc == STORE_CONFLICT) {
        name_taken(res, w, name);
    } else if (rc != STORE_OK) {
        snprintf(msg, sizeof msg, "create %s", w->one);
        api_store_error(res, rc, msg);
    } else {
        snprintf(msg, sizeof msg, "%s created successfully", w->Title);
        one_entity(res, 201, w, &e, msg);
    }
out:
    v_free(&v);
}

static void entity_get(http_request *req, http_response *res, const entity_words *w)
{
    const char *id = req->params[0];
    if (w->kind == STORE_USERS ? api_allow_user(req, res, id) : 0)
        return;
    store *st = api_app(req)->st;
    store_entity e;
    int rc = st->ops->entity_get(st, w->kind, id, req->a, &e);
    char msg[128];
    if (rc == STORE_NOT_FOUND) {
        not_found_id(res, w, id);
    } else if (rc != STORE_OK) {
        snprintf(msg, sizeof msg, "retrieve %s", w->one);
        api_store_error(res, rc, msg);
    } else {
        snprintf(msg, sizeof msg, "%s retrieved successfully", w->Title);
        one_entity(res, 200, w, &e, msg);
    }
}

static void entity_update(http_request *req, http_response *res, const entity_words *w)
{
    const char *id = req->params[0];
    if (w->kind == STORE_USERS ? api_allow_user(req, res, id) : api_allow_admin(req, res))
        return;
    vctx v;
    v_init(&v, req->a);
    cJSON *body = api_body(req, res, &v);
    if (!body)
        goto out;
    const char *name = v_string(&v, body, NULL, "name", V_NONEMPTY, API_NAME_MAX);
    const char *desc = v_string(&v, body, NULL, "description", 0, API_CONTENT_MAX);
    if (!v_ok(&v)) {
        v_respond(&v, res);
        goto out;
    }
    store *st = api_app(req)->st;
    store_entity e;
    int rc = st->ops->entity_update(st, w->kind, id, name, desc, req->a, &e);
    char msg[128];
    if (rc == STORE_NOT_FOUND) {
        not_found_id(res, w, id);
    } else if (rc == STORE_CONFLICT) {
        name_taken(res, w, name);
    } else if (rc != STORE_OK) {
        snprintf(msg, sizeof msg, "update %s", w->one);
        api_store_error(res, rc, msg);
    } else {
        snprintf(msg, sizeof msg, "%s updated successfully", w->Title);
        one_entity(res, 200, w, &e, msg);
    }
out:
    v_free(&v);
}

static void entity_delete(http_request *req, http_response *res, const entity_words *w)
{
    const char *id = req->params[0];
    if (w->kind == STORE_USERS ? api_allow_user(req, res, id) : api_allow_admin(req, res))
        return;
    app *ap = api_app(req);
    int rc = ap->st->ops->entity_delete(ap->st, w->kind, id);
    char msg[128];
    if (rc == STORE_NOT_FOUND) {
        not_found_id(res, w, id);
        return;
    }
    if (rc != STORE_OK) {
        snprintf(msg, sizeof msg, "delete %s", w->one);
        api_store_error(res, rc, msg);
        return;
    }
    if (w->kind == STORE_USERS) {
        uidx_forget_user(&ap->ui, id);
        registry_remove(&ap->reg, id); /* its buffers and indexes go with it */
        if (ap->st->ops->notify_user)
            ap->st->ops->notify_user(ap->st, id);
        res->status = 204;
        res->no_body = 1;
        return;
    }
    uidx_unload_all(&ap->ui); /* its sessions (of any user) are gone: indexes reload from the store */
    api_changed(ap, "*");
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_kstr(j, "agent_id", id);
    jw_obj_end(j);
    env_end(res, "Agent deleted successfully");
}

void api_users_list(http_request *req, http_response *res) { entity_list(req, res, &USERS); }
void api_users_create(http_request *req, http_response *res) { entity_create(req, res, &USERS); }
void api_users_get(http_request *req, http_response *res) { entity_get(req, res, &USERS); }
void api_users_update(http_request *req, http_response *res) { entity_update(req, res, &USERS); }
void api_users_delete(http_request *req, http_response *res) { entity_delete(req, res, &USERS); }
void api_agents_list(http_request *req, http_response *res) { entity_list(req, res, &AGENTS); }
void api_agents_create(http_request *req, http_response *res) { entity_create(req, res, &AGENTS); }
void api_agents_get(http_request *req, http_response *res) { entity_get(req, res, &AGENTS); }
void api_agents_update(http_request *req, http_response *res) { entity_update(req, res, &AGENTS); }
void api_agents_delete(http_request *req, http_response *res) { entity_delete(req, res, &AGENTS); }
