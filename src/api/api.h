/* api — what every resource handler shares: limits, record writers, lookups that answer 404/403 for
 * the handler, store-error answers, and the handler declarations of each resource file.
 *
 * Conventions: a handler validates everything before it changes anything; it answers through the
 * envelope (http/envelope.h); a helper that returns -1 has already written the response. */
#ifndef MEMFUSE_API_H
#define MEMFUSE_API_H

#include "api/app.h"
#include "http/envelope.h"
#include "http/http.h"
#include "http/validate.h"
#include "store/store.h"

#define API_NAME_MAX 256
#define API_CONTENT_MAX (1u << 20)
#define API_BATCH_MAX 1000
#define API_TOPK_MAX 1000
#define API_ID_MAX 256 /* ids in bodies; longer ones cannot exist */

static inline app *api_app(const http_request *req) { return (app *)req->app; }

/* 500 "Failed to <op>" or 503 with Retry-After for a store failure. */
void api_store_error(http_response *res, int rc, const char *op);
void api_forbidden(http_response *res);
void api_user_not_found(http_response *res, const char *id);
void api_agent_not_found(http_response *res, const char *id);
void api_session_not_found(http_response *res, const char *id);

/* Authorization (auth.c): 0 when allowed, else -1 with 403 written. Always allowed when auth is off. */
int api_allow_admin(const http_request *req, http_response *res);
int api_allow_user(const http_request *req, http_response *res, const char *user_id);
/* Authenticates the request (when auth is on). 0, or -1 with 401 written. */
int api_authenticate(http_request *req, http_response *res);

/* Loads and authorizes: the user exists (404) and the caller may reach it (403). */
int api_load_user(http_request *req, http_response *res, const char *user_id, store_entity *out);
int api_load_session(http_request *req, http_response *res, const char *session_id, store_session *out);

/* Record writers (exact key sets of SPEC.md). */
void api_write_entity(jw *w, const store_entity *e);
void api_write_session(jw *w, const store_session *s);
void api_write_message(jw *w, const store_message *m);
void api_write_knowledge(jw *w, const store_knowledge *k);
void api_write_id_list(jw *w, const char *key, const char *const *ids, size_t n);
/* key: a JSON array the store keeps as text (source ids, entities), or [] when the text is not one. */
void api_write_json_array(jw *w, const char *key, const char *text);

/* A write of user_id ("*": of anything) is durable: drop this process's cached answers for it and tell the
 * other processes on the same database (store->notify_user), which drop their cached state too. */
void api_changed(app *ap, const char *user_id);

/* Validates the body as a JSON object: NULL after answering 422. */
cJSON *api_body(http_request *req, http_response *res, vctx *v);

/* Handlers */
void api_health(http_request *req, http_response *res);
/* (ext) the LLM layers: facts and episodes of a user (layers.c) */
void api_facts_list(http_request *req, http_response *res);
void api_facts_get(http_request *req, http_response *res);
void api_facts_delete(http_request *req, http_response *res);
void api_episodes_list(http_request *req, http_response *res);

void api_users_list(http_request *req, http_response *res);
void api_users_create(http_request *req, http_response *res);
void api_users_get(http_request *req, http_response *res);
void api_users_update(http_request *req, http_response *res);
void api_users_delete(http_request *req, http_response *res);
void api_agents_list(http_request *req, http_response *res);
void api_agents_create(http_request *req, http_response *res);
void api_agents_get(http_request *req, http_response *res);
void api_agents_update(http_request *req, http_response *res);
void api_agents_delete(http_request *req, http_response *res);

void api_sessions_list(http_request *req, http_response *res);
void api_sessions_create(http_request *req, http_response *res);
void api_sessions_get(http_request *req, http_response *res);
void api_sessions_update(http_request *req, http_response *res);
void api_sessions_delete(http_request *req, http_response *res);

void api_messages_add(http_request *req, http_response *res);
void api_messages_list(http_request *req, http_response *res);
void api_messages_read(http_request *req, http_response *res);
void api_messages_update(http_request *req, http_response *res);
void api_messages_delete(http_request *req, http_response *res);

void api_knowledge_list(http_request *req, http_response *res);
void api_knowledge_add(http_request *req, http_response *res);
void api_knowledge_read(http_request *req, http_response *res);
void api_knowledge_update(http_request *req, http_response *res);
void api_knowledge_delete(http_request *req, http_response *res);

void api_query(http_request *req, http_response *res);

void api_keys_create(http_request *req, http_response *res);
void api_keys_list(http_request *req, http_response *res);
void api_keys_delete(http_request *req, http_response *res);

void api_chunks_session(http_request *req, http_response *res);
void api_chunks_round(http_request *req, http_response *res);
void api_chunks_stats(http_request *req, http_response *res);

/* GET /metrics (Prometheus text, public) and GET /api/v1/admin/stats (the same as JSON, admin only when
 * auth is on): api/stats.c. */
void api_metrics(http_request *req, http_response *res);
void api_admin_stats(http_request *req, http_response *res);

#endif

/* Query parameters of listings (SPEC §6 table): limit (default 20, >= 1, capped at 100), sort_by (one of
 * sorts[], mapped to the store_sort at the same index of values[]), order (asc|desc, default desc).
 * Returns 0, or -1 with the 400 written. */
int api_page_params(http_request *req, http_response *res, const char *const *sorts, const enum store_sort *values,
                    const char *sort_list, store_page *p);
/* A 400 with message "Invalid <name> parameter" and one errors item. */
void api_bad_param(http_response *res, const char *name, const char *field_message);
