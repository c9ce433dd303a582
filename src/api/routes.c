/* routes — the route table of API v1 and the dispatcher: route, authenticate, run the handler; 404 and
 * 405 for what matches no route. Every route answers with and without a trailing slash (router.h). */
#include "api/api.h"
#include "http/router.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

enum { PUBLIC = 1 }; /* no authentication even when auth is on */

#define V1 "/api/v1"

static const route ROUTES[] = {
    {"GET", V1 "/health", api_health, PUBLIC},
    {"GET", "/metrics", api_metrics, PUBLIC},

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

    /* (ext) the LLM memory layers */
    {"GET", V1 "/users/{}/facts", api_facts_list, 0},
    {"GET", V1 "/users/{}/facts/{}", api_facts_get, 0},
    {"DELETE", V1 "/users/{}/facts/{}", api_facts_delete, 0},
    {"GET", V1 "/users/{}/episodes", api_episodes_list, 0},

    {"POST", V1 "/users/{}/api-keys", api_keys_create, 0},
    {"GET", V1 "/users/{}/api-keys", api_keys_list, 0},
    {"DELETE", V1 "/users/{}/api-keys/{}", api_keys_delete, 0},

    {"GET", V1 "/sessions/{}/chunks", api_chunks_session, 0},
    {"GET", V1 "/rounds/{}/chunks", api_chunks_round, 0},
    {"GET", V1 "/chunks/stats", api_chunks_stats, 0},

    {"GET", V1 "/admin/stats", api_admin_stats, 0},
};

#define N_ROUTES ((int)(sizeof ROUTES / sizeof ROUTES[0]))
_Static_assert(sizeof ROUTES / sizeof ROUTES[0] <= APP_MAX_ROUTES, "raise APP_MAX_ROUTES");

static const int STATUSES[APP_NSTATUS - 1] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503};

static int status_slot(int status)
{
    for (int i = 0; i < APP_NSTATUS - 1; i++)
        if (STATUSES[i] == status)
            return i;
    return APP_NSTATUS - 1;
}

static void record(app *ap, int slot, int status, int64_t t0)
{
    route_stats *rs = &ap->routes[slot];
    met_hist_observe(&rs->latency, time_mono_ns() - t0);
    atomic_fetch_add_explicit(&rs->by_status[status_slot(status)], 1, memory_order_relaxed);
}

void app_dispatch(void *app_ctx, http_request *req, http_response *res)
{
    int64_t t0 = time_mono_ns();
    app *ap = app_ctx;
    req->app = app_ctx;
    size_t len = strlen(req->path);
    char *scratch = arena_alloc(req->a, len + 1);
    char allow[64];
    const route *r = NULL;
    route_result m = scratch ? router_match(ROUTES, N_ROUTES, req->method, req->path, scratch, len + 1, req, &r,
                                            allow, sizeof allow)
                             : ROUTE_NOT_FOUND;
    if (m != ROUTE_FOUND) {
        if (m == ROUTE_NOT_FOUND) {
            env_detail(res, 404, "Not Found");
        } else {
            env_detail(res, 405, "Method Not Allowed");
            res->allow = arena_strdup(req->a, allow);
        }
        record(ap, APP_MAX_ROUTES, res->status, t0);
        return;
    }
    if ((r->flags & PUBLIC) || api_authenticate(req, res) == 0)
        r->handler(req, res);
    record(ap, (int)(r - ROUTES), res->status, t0);
    if (res->status >= 500)
        log_warn("%s %s -> %d", req->method, req->path, res->status);
    else
        log_debug("%s %s -> %d", req->method, req->path, res->status);
}

int app_route_count(void) { return N_ROUTES; }

void app_route_describe(int i, const char **method, const char **pattern)
{
    *method = i >= 0 && i < N_ROUTES ? ROUTES[i].method : "";
    *pattern = i >= 0 && i < N_ROUTES ? ROUTES[i].pattern : "unmatched";
}

int app_status_code(int k) { return k >= 0 && k < APP_NSTATUS - 1 ? STATUSES[k] : 0; }
