/* stats — what the server tells about itself: GET /metrics (Prometheus text, public, as SPEC §2 allows)
 * and GET /api/v1/admin/stats (the same families as JSON inside the envelope; admin only when auth is
 * on). Aggregates only: nothing of any user's data, no configuration secrets.
 *
 * The content is one list of sections, each writing its families through an expo writer (api/expo.h),
 * which renders them in either format, so the two routes cannot drift apart. A new source of figures is
 * one more section function and one more line in SECTIONS. Admin stats adds what /metrics must not show:
 * the LLM tokens charged to each user (llm_usage). */
#include "api/api.h"
#include "api/expo.h"
#include "util/opstats.h"
#include "util/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sec_process(expo *e, app *ap)
{
    const char *const build[] = {"version", MEMFUSE_VERSION, NULL};
    expo_family(e, "memfuse_build_info", "gauge", "Always 1; the version as a label.");
    expo_value(e, build, 1);
    expo_family(e, "memfuse_uptime_seconds", "gauge", "Seconds since the server started.");
    expo_value(e, NULL, (double)(time_now_us() - ap->started_us) / 1e6);
    expo_family(e, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    expo_value(e, NULL, (double)met_rss_bytes());
}

static void sec_http(expo *e, app *ap)
{
    int n = app_route_count();
    expo_family(e, "memfuse_http_requests_total", "counter", "HTTP requests by route, method and status.");
    for (int i = 0; i <= n; i++) {
        const route_stats *rs = &ap->routes[i < n ? i : APP_MAX_ROUTES];
        const char *method, *pattern;
        app_route_describe(i < n ? i : -1, &method, &pattern);
        for (int k = 0; k < APP_NSTATUS; k++) {
            uint64_t v = atomic_load_explicit(&rs->by_status[k], memory_order_relaxed);
            if (!v)
                continue;
            char status[16];
            if (app_status_code(k))
                snprintf(status, sizeof status, "%d", app_status_code(k));
            else
                snprintf(status, sizeof status, "other");
            const char *const labels[] = {"method", method, "route", pattern, "status", status, NULL};
            expo_count(e, labels, v);
        }
    }
    expo_family(e, "memfuse_http_request_duration_seconds", "histogram", "Time from routing to response, by route.");
    for (int i = 0; i <= n; i++) {
        const route_stats *rs = &ap->routes[i < n ? i : APP_MAX_ROUTES];
        uint64_t b[MET_NBUCKETS], total = 0;
        for (int k = 0; k < MET_NBUCKETS; k++)
            total += b[k] = atomic_load_explicit(&rs->latency.buckets[k], memory_order_relaxed);
        if (!total)
            continue;
        const char *method, *pattern;
        app_route_describe(i < n ? i : -1, &method, &pattern);
        const char *const labels[] = {"method", method, "route", pattern, NULL};
        expo_hist(e, labels, met_bucket_le, b, MET_NBUCKETS,
                  (double)atomic_load_explicit(&rs->latency.sum_ns, memory_order_relaxed) / 1e9);
    }
}

/* The seed's operations (util/opstats.h): latency, thresholds and their crossings, the regression check. */
static void sec_ops(expo *e, app *ap)
{
    (void)ap;
    opstats_op *ops = malloc(sizeof(opstats_op) * OP_KINDS);
    if (!ops) {
        expo_family(e, "memfuse_op_stats_unavailable", "gauge", "1 when the operation statistics could not be read.");
        expo_value(e, NULL, 1);
        return;
    }
    opstats_snapshot(ops);
    opstats_config cfg;
    opstats_config_get(&cfg);
#define OP_LABELS(k) const char *const labels[] = {"op", opstats_name((enum op_kind)(k)), NULL}
    expo_family(e, "memfuse_op_duration_seconds", "histogram",
                "Latency of the seed's operations (pool acquire, service lookup, flush hand-off, M0/M1/M2, "
                "embedding batch, vector search, BM25 search, fusion).");
    for (int k = 0; k < OP_KINDS; k++) {
        OP_LABELS(k);
        expo_hist(e, labels, opstats_bucket_le, ops[k].all.buckets, OPSTATS_NBUCKETS, (double)ops[k].all.sum_ns / 1e9);
    }
    expo_family(e, "memfuse_op_threshold_seconds", "gauge", "Alert threshold of each operation (absent: off).");
    for (int k = 0; k < OP_KINDS; k++) {
        OP_LABELS(k);
        if (ops[k].threshold_ms >= 0)
            expo_value(e, labels, ops[k].threshold_ms / 1e3);
    }
    expo_family(e, "memfuse_op_threshold_crossings_total", "counter", "Observations over the operation's threshold.");
    for (int k = 0; k < OP_KINDS; k++) {
        OP_LABELS(k);
        expo_count(e, labels, ops[k].crossings);
    }
    expo_family(e, "memfuse_op_baseline_count", "gauge",
                "Observations in the operation's baseline window (0 until the baseline is complete).");
    for (int k = 0; k < OP_KINDS; k++) {
        OP_LABELS(k);
        expo_count(e, labels, ops[k].baseline_ready ? ops[k].baseline.count : 0);
    }
    static const struct {
        const char *name, *help;
        size_t off;
        int baseline;
    } qs[] = {
        {"memfuse_op_baseline_p50_seconds", "Median of the baseline window.", offsetof(opstats_op, baseline_p50), 1},
        {"memfuse_op_baseline_p99_seconds", "p99 of the baseline window.", offsetof(opstats_op, baseline_p99), 1},
        {"memfuse_op_recent_p50_seconds", "Median of the recent window.", offsetof(opstats_op, recent_p50), 0},
        {"memfuse_op_recent_p99_seconds", "p99 of the recent window.", offsetof(opstats_op, recent_p99), 0},
    };
    for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++) {
        expo_family(e, qs[q].name, "gauge", qs[q].help);
        for (int k = 0; k < OP_KINDS; k++) {
            if (qs[q].baseline ? !ops[k].baseline_ready : ops[k].recent.count == 0)
                continue;
            OP_LABELS(k);
            expo_value(e, labels, *(const double *)((const char *)&ops[k] + qs[q].off));
        }
    }
    expo_family(e, "memfuse_op_recent_count", "gauge", "Observations in the recent window.");
    for (int k = 0; k < OP_KINDS; k++) {
        OP_LABELS(k);
        expo_count(e, labels, ops[k].recent.count);
    }
    expo_family(e, "memfuse_op_regressed", "gauge",
                "1 while the recent p99 is over the regression factor times the baseline p99.");
    for (int k = 0; k < OP_KINDS; k++) {
        OP_LABELS(k);
        expo_value(e, labels, ops[k].regressed);
    }
    expo_family(e, "memfuse_op_regressions_total", "counter", "Times the operation turned regressed.");
    for (int k = 0; k < OP_KINDS; k++) {
        OP_LABELS(k);
        expo_count(e, labels, ops[k].regressions);
    }
#undef OP_LABELS
    expo_family(e, "memfuse_op_recent_window_seconds", "gauge", "Time the recent window covers.");
    expo_value(e, NULL, ops[0].recent_span_s);
    expo_family(e, "memfuse_op_regression_factor", "gauge", "Recent p99 over this times baseline p99 is a regression.");
    expo_value(e, NULL, cfg.regression_factor);
    free(ops);
}

static void sec_store_pool(expo *e, app *ap)
{
    store_pool_stats ps;
    if (!ap->st->ops->pool_stats || ap->st->ops->pool_stats(ap->st, &ps) != STORE_OK)
        return;
    const char *const pool[] = {"pool", ps.name, NULL};
    const char *const idle[] = {"pool", ps.name, "state", "idle", NULL};
    const char *const busy[] = {"pool", ps.name, "state", "in_use", NULL};
    expo_family(e, "memfuse_store_pool_size", "gauge", "Most connections the store's pool may hold.");
    expo_count(e, pool, (uint64_t)ps.size);
    expo_family(e, "memfuse_store_pool_connections", "gauge", "Open connections of the store's pool by state.");
    expo_count(e, idle, (uint64_t)ps.idle);
    expo_count(e, busy, (uint64_t)(ps.in_use > 0 ? ps.in_use : 0));
    expo_family(e, "memfuse_store_pool_waiting", "gauge", "Callers waiting for a connection now.");
    expo_count(e, pool, (uint64_t)ps.waiting);
    expo_family(e, "memfuse_store_pool_acquires_total", "counter", "Connections checked out.");
    expo_count(e, pool, ps.acquires);
    expo_family(e, "memfuse_store_pool_waits_total", "counter", "Checkouts that had to wait for a connection.");
    expo_count(e, pool, ps.waits);
    expo_family(e, "memfuse_store_pool_timeouts_total", "counter", "Checkouts that gave up waiting (503).");
    expo_count(e, pool, ps.timeouts);
    expo_family(e, "memfuse_store_write_queue_depth", "gauge", "Writes queued for the group-commit writer now.");
    expo_count(e, NULL, (uint64_t)(ps.write_queue > 0 ? ps.write_queue : 0));
    expo_family(e, "memfuse_store_write_batches_total", "counter",
                "Group commits: transactions of the writer, each carrying every write queued meanwhile.");
    expo_count(e, NULL, ps.write_batches);
    expo_family(e, "memfuse_store_write_jobs_total", "counter",
                "Writes carried by the group commits (over batches: the mean group size).");
    expo_count(e, NULL, ps.write_jobs);
}

static void sec_services(expo *e, app *ap)
{
    expo_family(e, "memfuse_user_services", "gauge", "Per-user services held in memory.");
    expo_count(e, NULL, registry_count(&ap->reg));
    uint64_t hits = atomic_load(&ap->cache_hits), misses = atomic_load(&ap->cache_misses);
    expo_family(e, "memfuse_query_cache_hits_total", "counter", "Query answers served from the per-user cache.");
    expo_count(e, NULL, hits);
    expo_family(e, "memfuse_query_cache_misses_total", "counter", "Query answers computed.");
    expo_count(e, NULL, misses);
    expo_family(e, "memfuse_query_cache_hit_ratio", "gauge", "Cache hits over all queries since start (0 before any).");
    expo_value(e, NULL, hits + misses ? (double)hits / (double)(hits + misses) : 0);
}

static void sec_embedding(expo *e, app *ap)
{
    if (!ap->dense)
        return;
    embedq_lag lag;
    embedq_lag_get(&ap->eq, &lag);
    expo_family(e, "memfuse_embed_queue_depth", "gauge", "Units queued for embedding.");
    expo_count(e, NULL, lag.depth);
    expo_family(e, "memfuse_embed_lag_seconds", "gauge", "Age of the oldest unit queued for embedding (0: none).");
    expo_value(e, NULL, (double)lag.oldest_ms / 1e3);
    expo_family(e, "memfuse_embed_behind", "gauge",
                "1 while units dropped from a full queue or a failed batch wait for the store scan.");
    expo_count(e, NULL, (uint64_t)(lag.behind != 0));
    expo_family(e, "memfuse_embedded_total", "counter", "Vectors computed and stored.");
    expo_count(e, NULL, atomic_load(&ap->eq.embedded));
    expo_family(e, "memfuse_embed_batches_total", "counter", "Embedding batches from the queue.");
    expo_count(e, NULL, atomic_load(&ap->eq.batches));
    expo_family(e, "memfuse_embed_dropped_total", "counter", "Units not queued (full queue); the store scan embeds them.");
    expo_count(e, NULL, atomic_load(&ap->eq.dropped));
    expo_family(e, "memfuse_embed_failures_total", "counter", "Embedding batches or scans that failed and were retried.");
    expo_count(e, NULL, atomic_load(&ap->eq.failures));
    expo_family(e, "memfuse_vector_index_bytes", "gauge", "Bytes of loaded per-user vector indexes.");
    expo_count(e, NULL, (uint64_t)atomic_load(&ap->ui.loaded));
    expo_family(e, "memfuse_vector_index_budget_bytes", "gauge", "Budget of loaded vector indexes.");
    expo_count(e, NULL, ap->ui.budget);
    expo_family(e, "memfuse_vector_index_loads_total", "counter", "Per-user indexes loaded from the store.");
    expo_count(e, NULL, atomic_load(&ap->ui.loads));
    expo_family(e, "memfuse_vector_index_evictions_total", "counter", "Per-user indexes unloaded to fit the budget.");
    expo_count(e, NULL, atomic_load(&ap->ui.evictions));
}

/* One histogram family member from a met_hist (skipped while empty). */
static void hist_of(expo *e, const char *const *labels, const met_hist *h)
{
    uint64_t b[MET_NBUCKETS], total = 0;
    for (int k = 0; k < MET_NBUCKETS; k++)
        total += b[k] = atomic_load_explicit(&h->buckets[k], memory_order_relaxed);
    if (total)
        expo_hist(e, labels, met_bucket_le, b, MET_NBUCKETS,
                  (double)atomic_load_explicit(&h->sum_ns, memory_order_relaxed) / 1e9);
}

/* The LLM client and the memory layers (issue 6): calls and tokens, what M1/M2 did, the flush manager. */
static void sec_layers(expo *e, app *ap)
{
    expo_family(e, "memfuse_layers_enabled", "gauge", "1 when an LLM is configured and M1/M2 run.");
    expo_count(e, NULL, (uint64_t)(ap->layers != 0));
    if (!ap->layers || !ap->llm)
        return;
    llm_stats ls;
    llm_get_stats(ap->llm, &ls);
    expo_family(e, "memfuse_llm_calls_total", "counter", "Chat calls by result (retries inside a call not counted).");
    const char *const ok[] = {"result", "ok", NULL}, *const failed[] = {"result", "failed", NULL};
    expo_count(e, ok, ls.ok);
    expo_count(e, failed, ls.failures);
    expo_family(e, "memfuse_llm_retries_total", "counter", "Chat requests retried after a transient failure.");
    expo_count(e, NULL, ls.retries);
    expo_family(e, "memfuse_llm_tokens_total", "counter", "Tokens of successful chat calls, by kind.");
    const char *const prompt[] = {"kind", "prompt", NULL}, *const completion[] = {"kind", "completion", NULL};
    expo_count(e, prompt, ls.prompt_tokens);
    expo_count(e, completion, ls.completion_tokens);
    expo_family(e, "memfuse_llm_in_flight", "gauge", "Chat calls waiting for an answer now.");
    expo_count(e, NULL, (uint64_t)(ls.in_flight > 0 ? ls.in_flight : 0));

    mem_stats *ms = &ap->mem.stats;
    static const char *const layer_names[3] = {NULL, "M1", "M2"};
    expo_family(e, "memfuse_layer_duration_seconds", "histogram",
                "Successful M1/M2 operations per flush: the whole operation (part total) and the LLM wait in it.");
    for (int l = 1; l <= 2; l++) {
        const char *const tot[] = {"layer", layer_names[l], "part", "total", NULL};
        const char *const wait[] = {"layer", layer_names[l], "part", "llm", NULL};
        hist_of(e, tot, &ms->total[l]);
        hist_of(e, wait, &ms->llm[l]);
    }
    expo_family(e, "memfuse_episodes_stored_total", "counter", "Episodes stored by M1.");
    expo_count(e, NULL, atomic_load(&ms->episodes));
    expo_family(e, "memfuse_facts_extracted_total", "counter", "Facts the model extracted (before any filter).");
    expo_count(e, NULL, atomic_load(&ms->facts_extracted));
    expo_family(e, "memfuse_facts_dropped_total", "counter", "Extracted facts not stored, by reason.");
    const char *const low[] = {"reason", "low_confidence", NULL}, *const exact[] = {"reason", "exact_duplicate", NULL},
                      *const near[] = {"reason", "near_duplicate", NULL};
    expo_count(e, low, atomic_load(&ms->facts_low_confidence));
    expo_count(e, exact, atomic_load(&ms->dup_exact));
    expo_count(e, near, atomic_load(&ms->dup_near));
    expo_family(e, "memfuse_fact_decisions_total", "counter", "Decisions taken on new facts, by action.");
    static const char *const actions[4] = {"add", "update", "invalidate", "ignore"};
    for (int k = 0; k < 4; k++) {
        const char *const lab[] = {"action", actions[k], NULL};
        expo_count(e, lab, atomic_load(&ms->decided[k]));
    }
    expo_family(e, "memfuse_decide_calls_total", "counter", "Decision calls made to the model.");
    expo_count(e, NULL, atomic_load(&ms->decide_calls));
    expo_family(e, "memfuse_decide_calls_saved_total", "counter",
                "Flushes whose only similar facts were duplicates: a decision call avoided.");
    expo_count(e, NULL, atomic_load(&ms->decide_saved));
    expo_family(e, "memfuse_facts_stored_total", "counter", "Fact versions stored by M2.");
    expo_count(e, NULL, atomic_load(&ms->facts_stored));
    expo_family(e, "memfuse_facts_retired_total", "counter", "Facts superseded or invalidated by M2.");
    expo_count(e, NULL, atomic_load(&ms->facts_retired));
    expo_family(e, "memfuse_model_output_unusable_total", "counter", "Model answers that could not be read.");
    expo_count(e, NULL, atomic_load(&ms->bad_output));

    flushmgr *fm = &ap->fm;
    expo_family(e, "memfuse_flush_queue_depth", "gauge", "Layer jobs queued for the flush workers.");
    expo_count(e, NULL, flushmgr_depth(fm));
    expo_family(e, "memfuse_flush_running", "gauge", "Layer jobs running now.");
    expo_count(e, NULL, (uint64_t)flushmgr_running(fm));
    expo_family(e, "memfuse_flush_layers_total", "counter", "Layer runs of flushes, by layer and outcome.");
    for (int l = 1; l <= 2; l++) {
        const char *const done[] = {"layer", layer_names[l], "outcome", "done", NULL};
        const char *const fail[] = {"layer", layer_names[l], "outcome", "failed", NULL};
        const char *const gave[] = {"layer", layer_names[l], "outcome", "gave_up", NULL};
        expo_count(e, done, atomic_load(&fm->done[l]));
        expo_count(e, fail, atomic_load(&fm->failed[l]));
        expo_count(e, gave, atomic_load(&fm->gave_up[l]));
    }
    expo_family(e, "memfuse_flushes_gone_total", "counter", "Flushes dropped because their session or user was deleted.");
    expo_count(e, NULL, atomic_load(&fm->gone));
}

typedef void (*stats_section)(expo *e, app *ap);

static const stats_section SECTIONS[] = {sec_process,  sec_http,      sec_ops,   sec_store_pool,
                                         sec_services, sec_embedding, sec_layers};

static void write_all(expo *e, app *ap)
{
    for (size_t i = 0; i < sizeof SECTIONS / sizeof SECTIONS[0]; i++)
        SECTIONS[i](e, ap);
    expo_finish(e);
}

void api_metrics(http_request *req, http_response *res)
{
    expo e;
    expo_init_text(&e);
    write_all(&e, api_app(req));
    size_t len;
    char *text = expo_take_text(&e, &len);
    if (!text) {
        api_store_error(res, STORE_ERROR, "render metrics");
        return;
    }
    res->status = 200;
    res->raw = text;
    res->raw_len = len;
    res->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void usage_row(void *ctx, const char *user_id, const llm_usage *u)
{
    jw *j = ctx;
    jw_obj(j);
    jw_kstr(j, "user_id", user_id);
    jw_kint(j, "calls", (int64_t)u->calls);
    jw_kint(j, "prompt_tokens", (int64_t)u->prompt_tokens);
    jw_kint(j, "completion_tokens", (int64_t)u->completion_tokens);
    jw_obj_end(j);
}

void api_admin_stats(http_request *req, http_response *res)
{
    if (api_allow_admin(req, res))
        return;
    jw *j = env_begin(res, 200);
    jw_obj(j);
    jw_key(j, "metrics");
    expo e;
    expo_init_json(&e, j);
    app *ap = api_app(req);
    write_all(&e, ap);
    /* the LLM tokens charged to each user (admin only: /metrics names no user) */
    jw_key(j, "llm_usage");
    jw_arr(j);
    if (ap->llm)
        llm_usage_each(ap->llm, usage_row, j);
    jw_arr_end(j);
    jw_obj_end(j);
    if (j->err) {
        env_reset(res);
        api_store_error(res, STORE_ERROR, "retrieve stats");
        return;
    }
    env_end(res, "Stats retrieved successfully");
}
