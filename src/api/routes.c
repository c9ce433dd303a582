/* routes — the route table of API v1 and the dispatcher: route, authenticate, run the handler; 404 and
 * 405 for what matches no route. Every route answers with and without a trailing slash (router.h). */
#include "api/api.h"
#include "http/router.h"
#include "util/log.h"

#include <string.h>

enum { PUBLIC = 1 }; /* no authentication even when auth is on */

#define V1 "/api/v1"

static const route ROUTES[] = {
    {"GET", V1 "/health", api_health, PUBLIC},

    {"GET", V1 "/users", api_users_list, 0},
    {"POST", V1 "/users", api_users_create, 0},
    {"GET", V1 "/users/{}", api_users_get, 0},
    {"PUT", V1 "/users/{}", api_users_update, 0},
    {"DELETE", V1 "/users/{}", api_users_delete, 0},

    {"GET", V1 "/agents", api_agents_list, 0},
    {"POST", V1 "/agents", api_agents_create, 0},
    {"GET", V1 "/agents/{}", api_agents_get, 0},
    {"PUT", V1 "/agents/{}", api_agents_update, 0},
    {"DELETE", V1 "/agents/{}", api_agents_delete, 0},

    {"GET", V1 "/sessions", api_sessions_list, 0},
    {"POST", V1 "/sessions", api_sessions_create, 0},
    {"GET", V1 "/sessions/{}", api_sessions_get, 0},
    {"PUT", V1 "/sessions/{}", api_sessions_update, 0},
    {"DELETE", V1 "/sessions/{}", api_sessions_delete, 0},

    {"GET", V1 "/sessions/{}/messages", api_messages_list, 0},
    {"POST", V1 "/sessions/{}/messages", api_messages_add, 0},
    {"PUT", V1 "/sessions/{}/messages", api_messages_update, 0},
    {"DELETE", V1 "/sessions/{}/messages", api_messages_delete, 0},
    {"POST", V1 "/sessions/{}/messages/read", api_messages_read, 0},

    {"GET", V1 "/users/{}/knowledge", api_knowledge_list, 0},
    {"POST", V1 "/users/{}/knowledge", api_knowledge_add, 0},
    {"PUT", V1 "/users/{}/knowledge", api_knowledge_update, 0},
    {"DELETE", V1 "/users/{}/knowledge", api_knowledge_delete, 0},
    {"POST", V1 "/users/{}/knowledge/read", api_knowledge_read, 0},

    {"POST", V1 "/users/{}/query", api_query, 0},

    {"POST", V1 "/users/{}/api-keys", api_keys_create, 0},
    {"GET", V1 "/users/{}/api-keys", api_keys_list, 0},
    {"DELETE", V1 "/users/{}/api-keys/{}", api_keys_delete, 0},

    {"GET", V1 "/sessions/{}/chunks", api_chunks_session, 0},
    {"GET", V1 "/rounds/{}/chunks", api_chunks_round, 0},
    {"GET", V1 "/chunks/stats", api_chunks_stats, 0},
};

void app_dispatch(void *app_ctx, http_request *req, http_response *res)
{
    req->app = app_ctx;
    size_t len = strlen(req->path);
    char *scratch = arena_alloc(req->a, len + 1);
    char allow[64];
    const route *r = NULL;
    route_result m = scratch ? router_match(ROUTES, (int)(sizeof ROUTES / sizeof ROUTES[0]), req->method, req->path,
                                            scratch, len + 1, req, &r, allow, sizeof allow)
                             : ROUTE_NOT_FOUND;
    if (m == ROUTE_NOT_FOUND) {
        env_detail(res, 404, "Not Found");
        return;
    }
    if (m == ROUTE_BAD_METHOD) {
        env_detail(res, 405, "Method Not Allowed");
        res->allow = arena_strdup(req->a, allow);
        return;
    }
    if (!(r->flags & PUBLIC) && api_authenticate(req, res) != 0)
        return;
    r->handler(req, res);
    if (res->status >= 500)
        log_warn("%s %s -> %d", req->method, req->path, res->status);
    else
        log_debug("%s %s -> %d", req->method, req->path, res->status);
}
