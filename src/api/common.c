/* common — see api.h. */
#include "api/api.h"
#include "core/qcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_store_error(http_response *res, int rc, const char *op)
{
    if (rc == STORE_UNAVAILABLE) {
        env_error(res, 503, "Service temporarily unavailable", "general", "The store is busy or unreachable; retry");
        res->retry_after = "1";
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg, "Failed to %s", op);
    env_error(res, 500, msg, "general", msg);
}

void api_changed(app *ap, const char *user_id)
{
    if (strcmp(user_id, "*") == 0)
        qcache_bump_all(&ap->reg);
    else
        qcache_bump(&ap->reg, user_id);
    if (ap->st->ops->notify_user)
        ap->st->ops->notify_user(ap->st, user_id); /* best effort: a lost notice only costs staleness */
}

void api_forbidden(http_response *res) { env_error(res, 403, "Forbidden", "general", "Forbidden"); }

static void not_found(http_response *res, const char *what, const char *id, const char *field)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s with ID '%s' not found", what, id);
    env_error(res, 404, msg, field, msg);
}

void api_user_not_found(http_response *res, const char *id) { not_found(res, "User", id, "user_id"); }
void api_agent_not_found(http_response *res, const char *id) { not_found(res, "Agent", id, "agent_id"); }
void api_session_not_found(http_response *res, const char *id) { not_found(res, "Session", id, "session_id"); }

int api_load_user(http_request *req, http_response *res, const char *user_id, store_entity *out)
{
    store *st = api_app(req)->st;
    int rc = st->ops->entity_get(st, STORE_USERS, user_id, req->a, out);
    if (rc == STORE_NOT_FOUND) {
        api_user_not_found(res, user_id);
        return -1;
    }
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve user");
        return -1;
    }
    return api_allow_user(req, res, user_id);
}

int api_load_session(http_request *req, http_response *res, const char *session_id, store_session *out)
{
    store *st = api_app(req)->st;
    int rc = st->ops->session_get(st, session_id, req->a, out);
    if (rc == STORE_NOT_FOUND) {
        api_session_not_found(res, session_id);
        return -1;
    }
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve session");
        return -1;
    }
    return api_allow_user(req, res, out->user_id);
}

cJSON *api_body(http_request *req, http_response *res, vctx *v)
{
    cJSON *body = v_parse_body(v, req);
    if (!body)
        v_respond(v, res);
    return body;
}

void api_write_entity(jw *w, const store_entity *e)
{
    jw_obj(w);
    jw_kstr(w, "id", e->id);
    jw_kstr(w, "name", e->name);
    jw_kstr(w, "description", e->description);
    jw_kstr(w, "created_at", e->created_at);
    jw_kstr(w, "updated_at", e->updated_at);
    jw_obj_end(w);
}

void api_write_session(jw *w, const store_session *s)
{
    jw_obj(w);
    jw_kstr(w, "id", s->id);
    jw_kstr(w, "user_id", s->user_id);
    jw_kstr(w, "agent_id", s->agent_id);
    jw_kstr(w, "name", s->name);
    jw_kstr(w, "created_at", s->created_at);
    jw_kstr(w, "updated_at", s->updated_at);
    jw_obj_end(w);
}

void api_write_message(jw *w, const store_message *m)
{
    jw_obj(w);
    jw_kstr(w, "id", m->id);
    jw_kstr(w, "session_id", m->session_id);
    jw_kstr(w, "role", m->role);
    jw_kstr(w, "content", m->content);
    jw_kstr(w, "created_at", m->created_at);
    jw_kstr(w, "updated_at", m->updated_at);
    jw_obj_end(w);
}

void api_write_knowledge(jw *w, const store_knowledge *k)
{
    jw_obj(w);
    jw_kstr(w, "id", k->id);
    jw_kstr(w, "user_id", k->user_id);
    jw_kstr(w, "content", k->content);
    jw_kstr(w, "created_at", k->created_at);
    jw_kstr(w, "updated_at", k->updated_at);
    jw_obj_end(w);
}

void api_write_id_list(jw *w, const char *key, const char *const *ids, size_t n)
{
    jw_key(w, key);
    jw_arr(w);
    for (size_t i = 0; i < n; i++)
        jw_str(w, ids[i]);
    jw_arr_end(w);
}

void api_bad_param(http_response *res, const char *name, const char *field_message)
{
    char msg[96];
    snprintf(msg, sizeof msg, "Invalid %s parameter", name);
    env_error(res, 400, msg, name, field_message);
}

int api_page_params(http_request *req, http_response *res, const char *const *sorts, const enum store_sort *values,
                    const char *sort_list, store_page *p)
{
    p->limit = 20;
    p->sort = values[0];
    p->desc = 1;
    p->buffer = STORE_ALL;
    const char *limit = http_query(req, "limit");
    if (limit) {
        const char *s = limit;
        if (*s == '+' || *s == '-')
            s++;
        int digits = *s != '\0';
        for (const char *q = s; *q; q++)
            digits &= *q >= '0' && *q <= '9';
        if (!digits) {
            api_bad_param(res, "limit", "Limit must be an integer");
            return -1;
        }
        int negative = limit[0] == '-';
        while (*s == '0')
            s++;
        if (negative || *s == '\0') {
            api_bad_param(res, "limit", "Limit must be greater than 0");
            return -1;
        }
        p->limit = strlen(s) > 3 ? 100 : atoi(s);
        if (p->limit > 100)
            p->limit = 100;
    }
    const char *sort = http_query(req, "sort_by");
    if (sort) {
        int found = 0;
        for (int i = 0; sorts[i]; i++) {
            if (strcmp(sort, sorts[i]) == 0) {
                p->sort = values[i];
                found = 1;
            }
        }
        if (!found) {
            char m[160];
            snprintf(m, sizeof m, "sort_by must be one of: %s", sort_list);
            api_bad_param(res, "sort_by", m);
            return -1;
        }
    }
    const char *order = http_query(req, "order");
    if (order) {
        if (strcmp(order, "asc") == 0) {
            p->desc = 0;
        } else if (strcmp(order, "desc") != 0) {
            api_bad_param(res, "order", "order must be one of: asc, desc");
            return -1;
        }
    }
    return 0;
}

void api_write_json_array(jw *w, const char *key, const char *text)
{
    jw_key(w, key);
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    if (cJSON_IsArray(v)) {
        jw_raw(w, text, strlen(text));
    } else {
        jw_arr(w);
        jw_arr_end(w);
    }
    cJSON_Delete(v);
}
