/* sessions — SPEC §5. */
#include "api/api.h"
#include "core/qcache.h"

#include <stdio.h>
#include <string.h>

static void session_out(http_response *res, int code, const store_session *s, const char *msg)
{
    jw *j = env_begin(res, code);
    jw_obj(j);
    jw_key(j, "session");
    api_write_session(j, s);
    jw_obj_end(j);
    env_end(res, msg);
}

static void name_taken(http_response *res, const char *name)
{
    char msg[512];
    snprintf(msg, sizeof msg, "Session with name '%s' already exists for this user", name);
    env_error(res, 400, msg, "name", msg);
}

void api_sessions_list(http_request *req, http_response *res)
{
    store *st = api_app(req)->st;
    const char *user_id = http_query(req, "user_id");
    const char *agent_id = http_query(req, "agent_id");
    const char *name = http_query(req, "name");
    if (user_id && !*user_id)
        user_id = NULL;
    if (agent_id && !*agent_id)
        agent_id = NULL;
    if (!req->auth_admin) {
        /* a user key sees its own sessions only */
        if (user_id && api_allow_user(req, res, user_id))
            return;
        user_id = req->auth_user;
    }
    if (name) {
        store_session s;
        int rc = st->ops->session_get_by_name(st, name, user_id, req->a, &s);
        if (rc == STORE_OK && agent_id && strcmp(s.agent_id, agent_id) != 0)
            rc = STORE_NOT_FOUND;
        if (rc == STORE_NOT_FOUND) {
            char msg[1024];
            if (http_query(req, "user_id") && user_id)
                snprintf(msg, sizeof msg, "Session with name '%s' not found for user '%s'", name, user_id);
            else
                snprintf(msg, sizeof msg, "Session with name '%s' not found", name);
            env_error(res, 404, msg, "name", msg);
            return;
        }
        if (rc != STORE_OK) {
            api_store_error(res, rc, "retrieve session");
            return;
        }
        jw *j = env_begin(res, 200);
        jw_obj(j);
        jw_key(j, "sessions");
        jw_arr(j);
        api_write_session(j, &s);
        jw_arr_end(j);
        jw_obj_end(j);
        env_end(res, "Session retrieved successfully");
        return;
    }
    store_entity e;
    int rc;
    if (user_id && (rc = st->ops->entity_get(st, STORE_USERS, user_id, req->a, &e)) != STORE_OK) {
        if (rc == STORE_NOT_FOUND)
            api_user_not_found(res, user_id);
        else
            api_store_error(res, rc, "list sessions");
        return;
    }
    if (agent_id && (rc = st->ops->entity_get(st, STORE_AGENTS, agent_id, req->a, &e)) != STORE_OK) {
        if (rc == STORE_NOT_FOUND)
            api_agent_not_found(res, agent_id);
        else
            api_store_error(res, rc, "list sessions");
        return;
    }
    store_session *all;
    size_t n;
    rc = st->ops->session_list(st, user_id, agent_id, req->a, &all, &n);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "list sessions");
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "sessions");
    jw_arr(j);
    for (size_t i = 0; i < n; i++)
        api_write_session(j, &all[i]);
    jw_arr_end(j);
    jw_obj_end(j);
    env_end(res, "Sessions retrieved successfully");
}

void api_sessions_create(http_request *req, http_response *res)
{
    vctx v;
    v_init(&v, req->a);
    cJSON *body = api_body(req, res, &v);
    if (!body)
        goto out;
    const char *user_id = v_string(&v, body, NULL, "user_id", V_REQUIRED | V_NONEMPTY, API_ID_MAX);
    const char *agent_id = v_string(&v, body, NULL, "agent_id", V_REQUIRED | V_NONEMPTY, API_ID_MAX);
    const char *name = v_string(&v, body, NULL, "name", V_NONEMPTY, API_NAME_MAX);
    if (!v_ok(&v)) {
        v_respond(&v, res);
        goto out;
    }
    if (api_allow_user(req, res, user_id))
        goto out;
    store *st = api_app(req)->st;
    store_session s;
    int rc = st->ops->session_create(st, user_id, agent_id, name, req->a, &s);
    if (rc == STORE_NO_USER)
        api_user_not_found(res, user_id);
    else if (rc == STORE_NO_AGENT)
        api_agent_not_found(res, agent_id);
    else if (rc == STORE_CONFLICT)
        name ? name_taken(res, name) : api_store_error(res, STORE_ERROR, "create session");
    else if (rc != STORE_OK)
        api_store_error(res, rc, "create session");
    else
        session_out(res, 201, &s, "Session created successfully");
out:
    v_free(&v);
}

void api_sessions_get(http_request *req, http_response *res)
{
    store_session s;
    if (api_load_session(req, res, req->params[0], &s) == 0)
        session_out(res, 200, &s, "Session retrieved successfully");
}

void api_sessions_update(http_request *req, http_response *res)
{
    store_session s;
    if (api_load_session(req, res, req->params[0], &s))
        return;
    vctx v;
    v_init(&v, req->a);
    cJSON *body = api_body(req, res, &v);
    if (!body)
        goto out;
    const char *name = v_string(&v, body, NULL, "name", V_NONEMPTY, API_NAME_MAX);
    if (!v_ok(&v)) {
        v_respond(&v, res);
        goto out;
    }
    store *st = api_app(req)->st;
    int rc = st->ops->session_update(st, s.id, name, req->a, &s);
    if (rc == STORE_NOT_FOUND)
        api_session_not_found(res, req->params[0]);
    else if (rc == STORE_CONFLICT)
        name_taken(res, name);
    else if (rc != STORE_OK)
        api_store_error(res, rc, "update session");
    else {
        api_changed(api_app(req), s.user_id); /* answers carry the session's name */
        session_out(res, 200, &s, "Session updated successfully");
    }
out:
    v_free(&v);
}

void api_sessions_delete(http_request *req, http_response *res)
{
    store_session s;
    if (api_load_session(req, res, req->params[0], &s))
        return;
    app *ap = api_app(req);
    int rc = ap->st->ops->session_delete(ap->st, s.id);
    if (rc == STORE_NOT_FOUND) {
        api_session_not_found(res, req->params[0]);
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(res, rc, "delete session");
        return;
    }
    rb_forget_session(&ap->rb, s.user_id, s.id);
    uidx_remove_session(&ap->ui, s.user_id, s.id);
    api_changed(ap, s.user_id);
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_kstr(j, "session_id", s.id);
    jw_obj_end(j);
    env_end(res, "Session deleted successfully");
}
