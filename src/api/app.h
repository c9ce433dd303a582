/* app — the server's application state, shared by every handler.
 *
 * Owns nothing itself: main.c creates each part in order (store, registry, round buffer, HTTP server)
 * and tears them down in reverse. Handlers receive it through http_request.app. */
#ifndef MEMFUSE_APP_H
#define MEMFUSE_APP_H

#include <stddef.h>
#include <stdint.h>

#include "core/embedq.h"
#include "core/flushmgr.h"
#include "core/registry.h"
#include "core/user_index.h"
#include "http/http.h"
#include "llm/llm.h"
#include "memory/memory.h"
#include "core/round_buffer.h"
#include "search/fusion.h"
#include "core/taskpool.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/metrics.h"

#define MEMFUSE_VERSION "0.1.0"

typedef struct app_config {
    const char *host;
    int port;
    const char *data_dir;
    const char *store_kind;
    const char *pg_dsn;
    int pg_pool_min, pg_pool_max, pg_acquire_timeout_ms, pg_validate_idle_ms, pg_max_age_s;
    int threads;
    size_t max_body;
    int auth;
    const char *admin_key;
    const char *log_level;
    rb_config buffer;
    const char *embedder; /* name reported by health */
    embedq_config embedq;
    double w_keyword, w_vector; /* fusion weights of the two paths (search/fusion.h) */
    int fusion_rrf;             /* 1: reciprocal-rank fusion; 0: score fusion (the default) */
    double window[FUSION_WINDOW_MAX]; /* context window: weight of the d-th message before (search/fusion.h) */
    int n_window;                     /* 0: no window */
    double speaker_boost;             /* a named speaker's messages score (1 + this)x; 0: off (search/fusion.h) */
    int index_memory_mb;        /* budget of loaded vector indexes */
    int hnsw_threshold;         /* vectors per user from which dense search walks an HNSW graph; 0: never */
    int hnsw_ef;                /* candidate list of an HNSW search */
    int preload_users;          /* indexes loaded at start */
    llm_config llm;             /* base_url NULL: no LLM, the M1/M2 layers are off */
    flushmgr_config flush;
    mem_config mem;
} app_config;

/* Per-route request metrics (the last slot counts requests that matched no route). */
#define APP_MAX_ROUTES 64
#define APP_NSTATUS 15 /* 200 201 204 400 401 403 404 405 409 413 422 429 500 503, other */

typedef struct route_stats {
    met_hist latency;
    _Atomic uint64_t by_status[APP_NSTATUS];
} route_stats;

typedef struct app {
    const app_config *cfg;
    store *st;
    ids_gen ids;
    registry reg;
    round_buffer rb;
    embedder *emb;
    user_index ui;
    embedq eq;
    int dense; /* the store keeps vectors and the pipeline runs: the vector path is on */
    taskpool tasks; /* runs the dense half of hybrid queries beside the keyword half */
    _Atomic uint64_t cache_hits, cache_misses; /* query answers served from / not from the cache */
    llm *llm;     /* NULL without an LLM */
    int layers;   /* M1 and M2 run (an LLM is configured) */
    mem_ctx mem;
    flushmgr fm;
    int64_t started_us;
    route_stats routes[APP_MAX_ROUTES + 1];
} app;

/* The route table and the dispatcher handed to the HTTP server (routes.c). */
void app_dispatch(void *app_ctx, http_request *req, http_response *res);
/* The route table for the exporters (api/stats.c): route i's stats are app.routes[i] (i < count), those of
 * requests that matched no route app.routes[APP_MAX_ROUTES] (described as method "", pattern "unmatched");
 * app_status_code(k) is the status by_status[k] counts, 0 for the last slot (any other status). */
int app_route_count(void);
void app_route_describe(int i, const char **method, const char **pattern);
int app_status_code(int k);

#endif
