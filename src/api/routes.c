/* routes — the route table of API v1 and the dispatcher: route, authenticate, run the handler; 404 and
 * 405 for what matches no route. Every route answers with and without a trailing slash (router.h). */
#include "api/api.h"
#include "http/router.h"
#include "util/log.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <string.h>

enum { PUBLIC = 1 }; /* no authentication even when auth is on */

static void api_metrics(http_request *req, http_response *res);

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

/* GET /metrics: Prometheus text. Aggregates only; nothing of any user's data. */
static void api_metrics(http_request *req, http_response *res)
{
    app *ap = api_app(req);
    strbuf b = {0};
    met_header(&b, "memfuse_http_requests_total", "counter", "HTTP requests by route, method and status.");
    for (int i = 0; i <= N_ROUTES; i++) {
        int slot = i < N_ROUTES ? i : APP_MAX_ROUTES;
        for (int k = 0; k < APP_NSTATUS; k++) {
            uint64_t v = atomic_load_explicit(&ap->routes[slot].by_status[k], memory_order_relaxed);
            if (!v)
                continue;
            sb_printf(&b, "memfuse_http_requests_total{method=\"%s\",route=\"%s\",status=\"%s%d\"} %llu\n",
                      i < N_ROUTES ? ROUTES[i].method : "", i < N_ROUTES ? ROUTES[i].pattern : "unmatched",
                      k < APP_NSTATUS - 1 ? "" : "other", k < APP_NSTATUS - 1 ? STATUSES[k] : 0,
                      (unsigned long long)v);
        }
    }
    met_header(&b, "memfuse_http_request_duration_seconds", "histogram", "Time from routing to response, by route.");
    for (int i = 0; i <= N_ROUTES; i++) {
        int slot = i < N_ROUTES ? i : APP_MAX_ROUTES;
        if (!atomic_load_explicit(&ap->routes[slot].latency.count, memory_order_relaxed))
            continue;
        char labels[160];
        snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"", i < N_ROUTES ? ROUTES[i].method : "",
                 i < N_ROUTES ? ROUTES[i].pattern : "unmatched");
        met_write_hist(&b, "memfuse_http_request_duration_seconds", labels, &ap->routes[slot].latency);
    }
    met_header(&b, "memfuse_uptime_seconds", "gauge", "Seconds since the server started.");
    sb_printf(&b, "memfuse_uptime_seconds %.3f\n", (double)(time_now_us() - ap->started_us) / 1e6);
    met_header(&b, "memfuse_user_services", "gauge", "Per-user services held in memory.");
    sb_printf(&b, "memfuse_user_services %zu\n", registry_count(&ap->reg));
    met_header(&b, "memfuse_query_cache_hits_total", "counter", "Query answers served from the per-user cache.");
    sb_printf(&b, "memfuse_query_cache_hits_total %llu\n", (unsigned long long)atomic_load(&ap->cache_hits));
    met_header(&b, "memfuse_query_cache_misses_total", "counter", "Query answers computed.");
    sb_printf(&b, "memfuse_query_cache_misses_total %llu\n", (unsigned long long)atomic_load(&ap->cache_misses));
    if (ap->dense) {
        met_header(&b, "memfuse_embed_queue_depth", "gauge", "Units queued for embedding.");
        sb_printf(&b, "memfuse_embed_queue_depth %zu\n", embedq_depth(&ap->eq));
        met_header(&b, "memfuse_embedded_total", "counter", "Vectors computed and stored.");
        sb_printf(&b, "memfuse_embedded_total %llu\n", (unsigned long long)atomic_load(&ap->eq.embedded));
        met_header(&b, "memfuse_embed_dropped_total", "counter", "Units not queued (full queue); the store scan embeds them.");
        sb_printf(&b, "memfuse_embed_dropped_total %llu\n", (unsigned long long)atomic_load(&ap->eq.dropped));
        met_header(&b, "memfuse_embed_failures_total", "counter", "Embedding batches or scans that failed and were retried.");
        sb_printf(&b, "memfuse_embed_failures_total %llu\n", (unsigned long long)atomic_load(&ap->eq.failures));
        met_header(&b, "memfuse_vector_index_bytes", "gauge", "Bytes of loaded per-user vector indexes.");
        sb_printf(&b, "memfuse_vector_index_bytes %zu\n", (size_t)atomic_load(&ap->ui.loaded));
        met_header(&b, "memfuse_vector_index_budget_bytes", "gauge", "Budget of loaded vector indexes.");
        sb_printf(&b, "memfuse_vector_index_budget_bytes %zu\n", ap->ui.budget);
        met_header(&b, "memfuse_vector_index_loads_total", "counter", "Per-user indexes loaded from the store.");
        sb_printf(&b, "memfuse_vector_index_loads_total %llu\n", (unsigned long long)atomic_load(&ap->ui.loads));
        met_header(&b, "memfuse_vector_index_evictions_total", "counter", "Per-user indexes unloaded to fit the budget.");
        sb_printf(&b, "memfuse_vector_index_evictions_total %llu\n", (unsigned long long)atomic_load(&ap->ui.evictions));
    }
    met_header(&b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    sb_printf(&b, "process_resident_memory_bytes %lld\n", (long long)met_rss_bytes());
    size_t len;
    char *text = strbuf_take(&b, &len);
    if (!text) {
        api_store_error(res, STORE_ERROR, "render metrics");
        return;
    }
    res->status = 200;
    res->raw = text;
    res->raw_len = len;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
