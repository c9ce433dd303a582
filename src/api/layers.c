/* layers — (ext) the LLM memory layers of a user: facts (M2) and episodes (M1).
 *
 *   GET    /api/v1/users/{uid}/facts[?history=true]   current facts, or every version (newest first)
 *   GET    /api/v1/users/{uid}/facts/{fid}            one fact with its version chain
 *   DELETE /api/v1/users/{uid}/facts/{fid}            retract a current fact (kept in the history)
 *   GET    /api/v1/users/{uid}/episodes[?session_id=S][&limit=N][&sort_by=timestamp|id][&order=asc|desc]
 *
 * Errors use the SPEC envelope: the user 404/403 as every route under a user id; an unknown fact 404
 * "Fact with ID '<id>' not found" (field fact_id); retracting a fact that is no longer current 400
 * "Fact with ID '<id>' is not current" (field fact_id); bad query parameters 400 naming the parameter. */
#include "api/api.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const FACT_STATUS[] = {"current", "superseded", "invalidated", "retracted"};

static void write_fact(jw *j, const store_fact *f)
{
    jw_obj(j);
    jw_kstr(j, "id", f->id);
    jw_kstr(j, "user_id", f->user_id);
    jw_kstr(j, "content", f->content);
    jw_kstr(j, "type", f->fact_type);
    jw_kdouble(j, "confidence", f->confidence);
    api_write_json_array(j, "entities", f->entities);
    jw_kstr(j, "status", f->status >= 0 && f->status <= 3 ? FACT_STATUS[f->status] : "unknown");
    jw_kstr(j, "valid_from", f->valid_from);
    jw_kstr(j, "valid_to", f->valid_to);
    jw_kstr(j, "supersedes", f->supersedes);
    jw_kstr(j, "superseded_by", f->superseded_by);
    jw_kstr(j, "session_id", f->session_id);
    jw_kstr(j, "agent_id", f->agent_id);
    jw_kstr(j, "episode_id", f->episode_id);
    api_write_json_array(j, "message_ids", f->source_ids);
    jw_kstr(j, "created_at", f->created_at);
    jw_kstr(j, "updated_at", f->updated_at);
    jw_obj_end(j);
}

static void write_episode(jw *j, const store_episode *e)
{
    jw_obj(j);
    jw_kstr(j, "id", e->id);
    jw_kstr(j, "user_id", e->user_id);
    jw_kstr(j, "content", e->content);
    jw_kstr(j, "occurred_at", e->occurred_at);
    api_write_json_array(j, "participants", e->participants);
    api_write_json_array(j, "message_ids", e->source_ids);
    jw_kstr(j, "session_id", e->session_id);
    jw_kstr(j, "agent_id", e->agent_id);
    jw_kstr(j, "created_at", e->created_at);
    jw_kstr(j, "updated_at", e->updated_at);
    jw_obj_end(j);
}

static void fact_not_found(http_response *res, const char *id)
{
    char msg[256];
    snprintf(msg, sizeof msg, "Fact with ID '%.200s' not found", id);
    env_error(res, 404, msg, "fact_id", msg);
}

/* "true" / "false" (any case) into *out; absent keeps it. -1 after answering 400. */
static int bool_param(http_request *req, http_response *res, const char *name, int *out)
{
    const char *v = http_query(req, name);
    if (!v)
        return 0;
    if (strcasecmp(v, "true") == 0 || strcasecmp(v, "false") == 0) {
        *out = strcasecmp(v, "true") == 0;
        return 0;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "%s must be 'true' or 'false'", name);
    api_bad_param(res, name, msg);
    return -1;
}

void api_facts_list(http_request *req, http_response *res)
{
    int history = 0;
    if (bool_param(req, res, "history", &history))
        return;
    store_entity u;
    if (api_load_user(req, res, req->params[0], &u))
        return;
    store *st = api_app(req)->st;
    store_fact *f;
    size_t n;
    int rc = st->ops->facts_list(st, u.id, history, req->a, &f, &n);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve facts");
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "facts");
    jw_arr(j);
    for (size_t i = 0; i < n; i++)
        write_fact(j, &f[i]);
    jw_arr_end(j);
    jw_obj_end(j);
    env_end(res, "Facts retrieved successfully");
}

/* The versions linked to f (older through supersedes, newer through superseded_by), oldest first. */
static void write_chain(jw *j, const store_fact *f, const store_fact *all, size_t n)
{
    const store_fact *oldest = f;
    for (size_t guard = 0; oldest->supersedes && guard < n; guard++) {
        const store_fact *prev = NULL;
        for (size_t i = 0; i < n && !prev; i++)
            if (strcmp(all[i].id, oldest->supersedes) == 0)
                prev = &all[i];
        if (!prev)
            break;
        oldest = prev;
    }
    jw_arr(j);
    const store_fact *cur = oldest;
    for (size_t guard = 0; cur && guard <= n; guard++) {
        write_fact(j, cur);
        const store_fact *next = NULL;
        for (size_t i = 0; cur->superseded_by && i < n && !next; i++)
            if (strcmp(all[i].id, cur->superseded_by) == 0)
                next = &all[i];
        cur = next;
    }
    jw_arr_end(j);
}

void api_facts_get(http_request *req, http_response *res)
{
    store_entity u;
    if (api_load_user(req, res, req->params[0], &u))
        return;
    store *st = api_app(req)->st;
    store_fact *all;
    size_t n;
    int rc = st->ops->facts_list(st, u.id, 1, req->a, &all, &n);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve the fact");
        return;
    }
    const store_fact *f = NULL;
    for (size_t i = 0; i < n && !f; i++)
        if (strcmp(all[i].id, req->params[1]) == 0)
            f = &all[i];
    if (!f) {
        fact_not_found(res, req->params[1]);
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "fact");
    write_fact(j, f);
    jw_key(j, "history");
    write_chain(j, f, all, n);
    jw_obj_end(j);
    env_end(res, "Fact retrieved successfully");
}

void api_facts_delete(http_request *req, http_response *res)
{
    store_entity u;
    if (api_load_user(req, res, req->params[0], &u))
        return;
    app *ap = api_app(req);
    const char *id = req->params[1];
    int rc = ap->st->ops->fact_retract(ap->st, u.id, id);
    if (rc == STORE_NOT_FOUND) {
        fact_not_found(res, id);
        return;
    }
    if (rc == STORE_CONFLICT) {
        char msg[256];
        snprintf(msg, sizeof msg, "Fact with ID '%.200s' is not current", id);
        env_error(res, 400, msg, "fact_id", msg);
        return;
    }
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retract the fact");
        return;
    }
    if (ap->dense)
        uidx_remove(&ap->ui, u.id, &id, 1);
    api_changed(ap, u.id);
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_kstr(j, "fact_id", id);
    jw_obj_end(j);
    env_end(res, "Fact retracted successfully");
}

void api_episodes_list(http_request *req, http_response *res)
{
    static const char *const sorts[] = {"timestamp", "id", NULL};
    static const enum store_sort values[] = {STORE_SORT_TIME, STORE_SORT_ID};
    store_page p;
    if (api_page_params(req, res, sorts, values, "timestamp, id", &p))
        return;
    store_entity u;
    if (api_load_user(req, res, req->params[0], &u))
        return;
    store *st = api_app(req)->st;
    const char *sid = http_query(req, "session_id");
    if (sid) {
        store_session s;
        int rc = st->ops->session_get(st, sid, req->a, &s);
        if (rc == STORE_OK && strcmp(s.user_id, u.id) != 0)
            rc = STORE_NOT_FOUND;
        if (rc == STORE_NOT_FOUND) {
            api_session_not_found(res, sid);
            return;
        }
        if (rc != STORE_OK) {
            api_store_error(res, rc, "retrieve episodes");
            return;
        }
    }
    store_episode *e;
    size_t n;
    int rc = st->ops->episodes_list(st, u.id, sid, &p, req->a, &e, &n);
    if (rc != STORE_OK) {
        api_store_error(res, rc, "retrieve episodes");
        return;
    }
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "episodes");
    jw_arr(j);
    for (size_t i = 0; i < n; i++)
        write_episode(j, &e[i]);
    jw_arr_end(j);
    jw_obj_end(j);
    env_end(res, "Episodes retrieved successfully");
}
