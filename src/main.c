/* main — the memfuse command.
 *
 *   memfuse serve [flags]        run the server (flags below; each has a MEMFUSE_* environment twin)
 *   memfuse db status|reset|validate|recreate [--data-dir D] [--store S]
 *   memfuse embed [flags] [TEXT...]
 *   memfuse reindex [flags]      drop every vector and embed everything again
 *   memfuse bench [flags]        load generator (src/bench): scenarios against a given URL or a server it starts
 *   memfuse version | help
 *
 * Start-up order: logging, store (schema migrated), registry and round buffer (restored from the store),
 * embedder and embedding pipeline (which first embeds whatever the store holds without a vector), HTTP
 * server; then one line on stdout saying where it listens. SIGTERM/SIGINT: stop accepting, wait for
 * requests in flight, stop the pipeline and the timer, close the store (WAL checkpointed), exit 0. */
#include "api/api.h"
#include "core/qcache.h"
#include "embed/embed.h"
#include "embed/embed_cli.h"
#include "http/server.h"
#include "bench/bench.h"
#include "search/hnsw.h"
#include "util/log.h"
#include "util/opstats.h"
#include "util/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { OPT_STR, OPT_INT, OPT_SIZE, OPT_FLAG, OPT_DOUBLE } opt_type;

typedef struct option_def {
    const char *flag, *env;
    opt_type type;
    void *target;
    const char *help;
} option_def;

static void usage(FILE *f)
{
    fprintf(f, "usage: memfuse serve [--host H] [--port P] [--data-dir D] [--store sqlite] [--threads N]\n"
               "                     [--max-body BYTES] [--conn-timeout S] [--auth] [--admin-key KEY] [--log-level L]\n"
               "                     [--buffer-rounds N] [--buffer-tokens N] [--buffer-idle SECONDS]\n"
               "                     [--embedder use-lite|hash|remote] [--model-dir D] [--embed-url U]\n"
               "                     [--op-threshold NAME=MS ...] [--op-thresholds LIST] [--op-baseline N]\n"
               "                     [--op-window S] [--op-regression-factor K] ...\n"
               "       memfuse db status|reset|validate|recreate [--data-dir D] [--store S]\n"
               "       memfuse embed [--embedder E] [--model-dir D] [TEXT...]\n"
               "       memfuse reindex [--data-dir D] [--embedder E] [--model-dir D]\n"
               "       memfuse bench [--url U] [--scenario S] [--connections N] [--duration S] [--memories N] [--json]\n"
               "       memfuse version\n");
}

/* Parses "123", "8M", "8MiB", "64k" into bytes. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned long long mul = 1;
    if (*end) {
        char u = (char)(*end | 0x20);
        mul = u == 'k' ? 1ull << 10 : u == 'm' ? 1ull << 20 : u == 'g' ? 1ull << 30 : 0;
        const char *rest = end + 1;
        if (!mul || !(*rest == '\0' || strcasecmp(rest, "b") == 0 || strcasecmp(rest, "ib") == 0))
            return -1;
    }
    if (v == 0 || v > (1ull << 30) / mul) /* 1 GiB at most */
        return -1;
    *out = (size_t)(v * mul);
    return 0;
}

static int set_option(const option_def *o, const char *val)
{
    switch (o->type) {
    case OPT_STR:
        *(const char **)o->target = val;
        return 0;
    case OPT_FLAG:
        *(int *)o->target = !val || strcmp(val, "1") == 0 || strcasecmp(val, "true") == 0 || strcasecmp(val, "yes") == 0;
        return 0;
    case OPT_INT: {
        char *end;
        errno = 0;
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < 0 || v > 1000000000)
            return -1;
        *(int *)o->target = (int)v;
        return 0;
    }
    case OPT_SIZE:
        return parse_size(val, (size_t *)o->target);
    case OPT_DOUBLE: {
        char *end;
        errno = 0;
        double v = strtod(val, &end);
        if (errno || end == val || *end || !(v >= 0 && v <= 1000))
            return -1;
        *(double *)o->target = v;
        return 0;
    }
    }
    return -1;
}

/* Environment first, then flags; unknown flags are an error. */
static int parse_options(const option_def *opts, int nopts, int argc, char **argv)
{
    for (int i = 0; i < nopts; i++) {
        const char *e = opts[i].env ? getenv(opts[i].env) : NULL;
        if (e && *e && set_option(&opts[i], e) != 0) {
            fprintf(stderr, "memfuse: invalid value '%s' in %s\n", e, opts[i].env);
            return -1;
        }
    }
    for (int a = 1; a < argc; a++) {
        const char *arg = argv[a];
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        const option_def *o = NULL;
        for (int i = 0; i < nopts && !o; i++)
            if (strlen(opts[i].flag) == flen && strncmp(opts[i].flag, arg, flen) == 0)
                o = &opts[i];
        if (!o) {
            fprintf(stderr, "memfuse: unknown option '%s'\n", arg);
            return -1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val && o->type != OPT_FLAG) {
            if (a + 1 >= argc) {
                fprintf(stderr, "memfuse: %s needs a value\n", o->flag);
                return -1;
            }
            val = argv[++a];
        }
        if (set_option(o, val) != 0) {
            fprintf(stderr, "memfuse: invalid value '%s' for %s\n", val ? val : "", o->flag);
            return -1;
        }
    }
    return 0;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    int t = n > 0 ? (int)n * 4 : 8;
    return t < 8 ? 8 : t > 64 ? 64 : t;
}

static store *open_store(const app_config *cfg, ids_gen *ids, int read_conns)
{
    store_config sc = {.kind = cfg->store_kind, .data_dir = cfg->data_dir, .pg_dsn = cfg->pg_dsn,
                       .read_conns = read_conns, .ids = ids, .pg_pool_min = cfg->pg_pool_min,
                       .pg_pool_max = cfg->pg_pool_max, .pg_acquire_timeout_ms = cfg->pg_acquire_timeout_ms,
                       .pg_validate_idle_ms = cfg->pg_validate_idle_ms, .pg_max_age_s = cfg->pg_max_age_s,
                       .flushes = cfg->llm.base_url && *cfg->llm.base_url};
    char err[512];
    store *st = store_open(&sc, err, sizeof err);
    if (!st)
        log_error("cannot open the store: %s", err);
    return st;
}

/* Another process on the same database changed a user's data ("*": anything): drop what this process
 * cached for it; it reloads from the store on the next query. */
static void on_remote_change(void *ctx, const char *user_id)
{
    app *ap = ctx;
    if (strcmp(user_id, "*") == 0) {
        qcache_bump_all(&ap->reg);
        uidx_unload_all(&ap->ui);
    } else {
        qcache_bump(&ap->reg, user_id);
        uidx_forget_user(&ap->ui, user_id);
    }
}

static void layers_changed(void *ctx, const char *user_id) { api_changed(ctx, user_id); }

static int run_layer(void *ctx, const store_flush *f, int layer, char *err, size_t errlen)
{
    return mem_run_layer(ctx, f, layer, err, errlen);
}

static void consolidated(void *ctx) { flushmgr_poke(ctx); }

/* The LLM client, the memory layers and the flush manager, when an LLM is configured. */
static int start_layers(app *ap)
{
    const app_config *cfg = ap->cfg;
    if (!cfg->llm.base_url || !*cfg->llm.base_url) {
        log_info("no LLM configured (--llm-base-url): the M1 episode and M2 fact layers are off");
        return 0;
    }
    if (!cfg->llm.model || !*cfg->llm.model) {
        log_error("--llm-base-url needs --llm-model (the chat model to ask)");
        return -1;
    }
    char err[512];
    ap->llm = llm_open(&cfg->llm, err, sizeof err);
    if (!ap->llm) {
        log_error("cannot set up the LLM client: %s", err);
        return -1;
    }
    mem_init(&ap->mem, &cfg->mem, ap->st, ap->llm, ap->dense ? ap->emb : NULL, ap->dense ? &ap->ui : NULL,
             ap->dense ? &ap->eq : NULL);
    ap->mem.changed = layers_changed;
    ap->mem.changed_ctx = ap;
    if (flushmgr_start(&ap->fm, &cfg->flush, ap->st, run_layer, &ap->mem) != 0) {
        log_error("cannot start the flush manager");
        llm_close(ap->llm);
        ap->llm = NULL;
        return -1;
    }
    ap->rb.consolidated = consolidated;
    ap->rb.consolidated_ctx = &ap->fm;
    ap->layers = 1;
    log_info("memory layers M1 (episodes) and M2 (facts) on: LLM %s, %d flush workers", llm_describe(ap->llm),
             ap->fm.cfg.workers);
    return 0;
}

static void stop_layers(app *ap)
{
    if (!ap->llm)
        return;
    llm_shutdown(ap->llm); /* calls in flight return at once; their flushes stay pending */
    if (ap->layers)
        flushmgr_stop(&ap->fm);
    llm_close(ap->llm);
    ap->llm = NULL;
    ap->layers = 0;
}

/* Stop signals. A library may start threads before main runs (OpenBLAS starts its workers in a constructor),
 * and those do not block SIGTERM/SIGINT, so the kernel may deliver either there, where the default action
 * would end the process without a graceful stop. A handler makes that harmless: whichever thread takes the
 * signal writes its number into a pipe that main reads. Our own threads block both (they inherit the mask
 * set before the first of them starts), so their blocking calls are never interrupted. */
static int stop_pipe[2] = {-1, -1};

static void on_stop_signal(int sig)
{
    int saved = errno;
    unsigned char b = (unsigned char)sig;
    ssize_t w = write(stop_pipe[1], &b, 1); /* non-blocking: a flood of signals never stalls a thread */
    (void)w;
    errno = saved;
}

static int stop_signals_install(sigset_t *sigs)
{
    if (pipe2(stop_pipe, O_CLOEXEC) != 0 || fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigemptyset(sigs);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGINT);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    return pthread_sigmask(SIG_BLOCK, sigs, NULL) == 0 ? 0 : -1;
}

/* Blocks until a stop signal arrives (on any thread); returns it. */
static int stop_signals_wait(const sigset_t *sigs)
{
    pthread_sigmask(SIG_UNBLOCK, sigs, NULL); /* main takes them from now on */
    unsigned char b;
    for (;;) {
        ssize_t r = read(stop_pipe[0], &b, 1);
        if (r == 1)
            return b;
        if (r < 0 && errno == EINTR)
            continue;
        return SIGTERM; /* the pipe failed: stop rather than serve on unstoppable */
    }
}

static int cmd_serve(int argc, char **argv)
{
    app_config cfg = {.host = "0.0.0.0", .port = 8000, .data_dir = "./data", .store_kind = "sqlite",
                      .threads = default_threads(), .max_body = 8u << 20, .log_level = "info",
                      .buffer = {.max_rounds = 5, .max_tokens = 800, .idle_ms = 60000},
                      .llm = {.retries = -1, .max_tokens = -1}, /* -1: the client's defaults (llm.h) */
                      .embedq = {.capacity = 65536, .batch_max = 32, .wait_ms = 2, .workers = 1},
                      .w_keyword = 0.6, .w_vector = 0.4, .speaker_boost = 0.4,
                      .index_memory_mb = 1024, .preload_users = 100,
                      .hnsw_threshold = VINDEX_HNSW_THRESHOLD, .hnsw_ef = HNSW_EF_DEFAULT,
                      .pg_validate_idle_ms = PG_UNSET,
                      .mem = {.min_confidence = 0.6, .dup_similarity = 0.95, .candidate_similarity = 0.6,
                              .candidates = 4}};
    int idle_s = 60, conn_timeout_s = 60;
    const char *fusion = "score", *context_window = "0.6,0.5,0.2";
    char err[512];
    embed_config ec;
    embed_config_default(&ec);
    if (embed_config_from_env(&ec, err, sizeof err) != 0 || embed_config_from_args(&ec, &argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "memfuse: %s\n", err);
        return 2;
    }
    opstats_config oc; /* --op-threshold NAME=MS (repeatable), --op-thresholds, --op-baseline, ... */
    opstats_config_default(&oc);
    if (opstats_config_from_env(&oc, err, sizeof err) != 0 || opstats_config_from_args(&oc, &argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "memfuse: %s\n", err);
        return 2;
    }
    const option_def opts[] = {
        {"--host", "MEMFUSE_HOST", OPT_STR, &cfg.host, "listen address"},
        {"--port", "MEMFUSE_PORT", OPT_INT, &cfg.port, "listen port"},
        {"--data-dir", "MEMFUSE_DATA_DIR", OPT_STR, &cfg.data_dir, "data directory"},
        {"--store", "MEMFUSE_STORE", OPT_STR, &cfg.store_kind, "sqlite or postgres"},
        {"--pg-dsn", "MEMFUSE_PG_DSN", OPT_STR, &cfg.pg_dsn, "PostgreSQL connection string"},
        {"--pg-pool-min", "MEMFUSE_PG_POOL_MIN", OPT_INT, &cfg.pg_pool_min, "connections opened at start"},
        {"--pg-pool-max", "MEMFUSE_PG_POOL_MAX", OPT_INT, &cfg.pg_pool_max, "most connections"},
        {"--pg-acquire-timeout-ms", "MEMFUSE_PG_ACQUIRE_TIMEOUT_MS", OPT_INT, &cfg.pg_acquire_timeout_ms,
         "longest wait for a connection"},
        {"--pg-validate-idle-ms", "MEMFUSE_PG_VALIDATE_IDLE_MS", OPT_INT, &cfg.pg_validate_idle_ms,
         "validate a connection idle longer than this (0: at every checkout)"},
        {"--pg-max-age-s", "MEMFUSE_PG_MAX_AGE_S", OPT_INT, &cfg.pg_max_age_s, "recycle connections older than this"},
        {"--threads", "MEMFUSE_THREADS", OPT_INT, &cfg.threads, "HTTP worker threads"},
        {"--max-body", "MEMFUSE_MAX_BODY", OPT_SIZE, &cfg.max_body, "request body limit"},
        {"--conn-timeout", "MEMFUSE_CONN_TIMEOUT", OPT_INT, &conn_timeout_s,
         "seconds a connection may stay silent (idle keep-alive, or a request arriving too slowly) before it is closed"},
        {"--auth", "MEMFUSE_AUTH", OPT_FLAG, &cfg.auth, "require API keys"},
        {"--admin-key", "MEMFUSE_ADMIN_KEY", OPT_STR, &cfg.admin_key, "admin API key"},
        {"--log-level", "MEMFUSE_LOG_LEVEL", OPT_STR, &cfg.log_level, "debug|info|warn|error"},
        {"--buffer-rounds", "MEMFUSE_BUFFER_ROUNDS", OPT_INT, &cfg.buffer.max_rounds, "rounds per buffer"},
        {"--buffer-tokens", "MEMFUSE_BUFFER_TOKENS", OPT_INT, &cfg.buffer.max_tokens, "tokens per buffer"},
        {"--buffer-idle", "MEMFUSE_BUFFER_IDLE", OPT_INT, &idle_s, "seconds before an idle buffer flushes"},
        {"--embed-workers", "MEMFUSE_EMBED_WORKERS", OPT_INT, &cfg.embedq.workers, "embedding worker threads"},
        {"--embed-batch", "MEMFUSE_EMBED_BATCH", OPT_INT, &cfg.embedq.batch_max, "texts per embedding batch"},
        {"--embed-wait-ms", "MEMFUSE_EMBED_WAIT_MS", OPT_INT, &cfg.embedq.wait_ms, "longest wait for a batch"},
        {"--embed-queue", "MEMFUSE_EMBED_QUEUE", OPT_INT, &cfg.embedq.capacity, "embedding queue capacity"},
        {"--fusion", "MEMFUSE_FUSION", OPT_STR, &fusion,
         "score (weighted mean of scaled scores) or rrf (reciprocal rank) for hybrid queries"},
        {"--weight-keyword", "MEMFUSE_WEIGHT_KEYWORD", OPT_DOUBLE, &cfg.w_keyword, "fusion weight of BM25"},
        {"--weight-vector", "MEMFUSE_WEIGHT_VECTOR", OPT_DOUBLE, &cfg.w_vector, "fusion weight of dense search"},
        {"--speaker-boost", "MEMFUSE_SPEAKER_BOOST", OPT_DOUBLE, &cfg.speaker_boost,
         "a query naming one speaker (\"Name: text\") favours their messages by this share (0: off)"},
        {"--context-window", "MEMFUSE_CONTEXT_WINDOW", OPT_STR, &context_window,
         "weights of the 1st, 2nd, ... message before a message in hybrid scoring (0: none)"},
        {"--index-memory", "MEMFUSE_INDEX_MEMORY", OPT_INT, &cfg.index_memory_mb, "MiB of loaded vector indexes"},
        {"--hnsw-threshold", "MEMFUSE_HNSW_THRESHOLD", OPT_INT, &cfg.hnsw_threshold, "vectors per user from which search uses HNSW (0: never)"},
        {"--hnsw-ef", "MEMFUSE_HNSW_EF", OPT_INT, &cfg.hnsw_ef, "candidate list of an HNSW search (more: better recall, slower)"},
        {"--preload-users", "MEMFUSE_PRELOAD_USERS", OPT_INT, &cfg.preload_users, "indexes loaded at start"},
        {"--llm-base-url", "MEMFUSE_LLM_BASE_URL", OPT_STR, &cfg.llm.base_url,
         "OpenAI-compatible endpoint; turns the M1/M2 layers on"},
        {"--llm-model", "MEMFUSE_LLM_MODEL", OPT_STR, &cfg.llm.model, "chat model name"},
        {"--llm-api-key", "MEMFUSE_LLM_API_KEY", OPT_STR, &cfg.llm.api_key, "bearer key of the endpoint"},
        {"--llm-timeout-ms", "MEMFUSE_LLM_TIMEOUT_MS", OPT_INT, &cfg.llm.timeout_ms, "one chat request"},
        {"--llm-retries", "MEMFUSE_LLM_RETRIES", OPT_INT, &cfg.llm.retries, "retries of a failed chat request"},
        {"--llm-concurrency", "MEMFUSE_LLM_CONCURRENCY", OPT_INT, &cfg.llm.concurrency, "chat requests in flight"},
        {"--llm-max-tokens", "MEMFUSE_LLM_MAX_TOKENS", OPT_INT, &cfg.llm.max_tokens, "completion token limit"},
        {"--flush-workers", "MEMFUSE_FLUSH_WORKERS", OPT_INT, &cfg.flush.workers, "threads running M1/M2"},
        {"--flush-retry-ms", "MEMFUSE_FLUSH_RETRY_MS", OPT_INT, &cfg.flush.retry_base_ms,
         "first backoff after a failed layer"},
        {"--layer-timeout-ms", "MEMFUSE_LAYER_TIMEOUT_MS", OPT_INT, &cfg.mem.timeout_ms,
         "deadline of one layer's chat calls"},
        {"--fact-min-confidence", "MEMFUSE_FACT_MIN_CONFIDENCE", OPT_DOUBLE, &cfg.mem.min_confidence,
         "facts below are dropped"},
        {"--fact-dup-similarity", "MEMFUSE_FACT_DUP_SIMILARITY", OPT_DOUBLE, &cfg.mem.dup_similarity,
         "cosine from which a new fact duplicates a current one"},
        {"--fact-candidate-similarity", "MEMFUSE_FACT_CANDIDATE_SIMILARITY", OPT_DOUBLE,
         &cfg.mem.candidate_similarity, "cosine from which a current fact is shown to the decider"},
        {"--fact-candidates", "MEMFUSE_FACT_CANDIDATES", OPT_INT, &cfg.mem.candidates,
         "current facts shown per new fact"},
    };
    if (parse_options(opts, (int)(sizeof opts / sizeof opts[0]), argc, argv) != 0) {
        usage(stderr);
        return 2;
    }
    enum log_level lvl;
    if (log_parse_level(cfg.log_level, &lvl) != 0) {
        fprintf(stderr, "memfuse: unknown log level '%s'\n", cfg.log_level);
        return 2;
    }
    log_init(lvl);
    opstats_configure(&oc);
    if (cfg.port < 0 || cfg.port > 65535 || cfg.threads < 1 || cfg.buffer.max_rounds < 1 || cfg.buffer.max_tokens < 1 ||
        idle_s < 1 || conn_timeout_s < 1) {
        fprintf(stderr, "memfuse: --port, --threads, --conn-timeout and the buffer settings must be in range\n");
        return 2;
    }
    cfg.buffer.idle_ms = idle_s * 1000;
    if (strcmp(fusion, "score") != 0 && strcmp(fusion, "rrf") != 0) {
        fprintf(stderr, "memfuse: --fusion must be score or rrf, not '%s'\n", fusion);
        return 2;
    }
    cfg.fusion_rrf = strcmp(fusion, "rrf") == 0;
    if (cfg.hnsw_ef < 1 || cfg.hnsw_ef > HNSW_EF_MAX) {
        fprintf(stderr, "memfuse: --hnsw-ef must be in 1..%d, not %d\n", HNSW_EF_MAX, cfg.hnsw_ef);
        return 2;
    }
    if (!(cfg.w_keyword >= 0 && cfg.w_vector >= 0 && cfg.w_keyword + cfg.w_vector > 0 &&
          cfg.w_keyword + cfg.w_vector < 1e9)) {
        fprintf(stderr, "memfuse: --weight-keyword and --weight-vector must be >= 0 and not both 0\n");
        return 2;
    }
    if (!(cfg.speaker_boost >= 0 && cfg.speaker_boost <= 10)) {
        fprintf(stderr, "memfuse: --speaker-boost must be in [0, 10]\n");
        return 2;
    }
    if (fusion_parse_window(context_window, cfg.window, &cfg.n_window) != 0) {
        fprintf(stderr, "memfuse: --context-window takes up to %d comma-separated weights in [0,1], not '%s'\n",
                FUSION_WINDOW_MAX, context_window);
        return 2;
    }
    if (cfg.auth && (!cfg.admin_key || !*cfg.admin_key))
        log_warn("auth is on without an admin key: users and agents cannot be created or listed");

    /* stop signals: a handler and a pipe (stop_signals_install); blocked before any thread of ours starts, so
     * all of them inherit the mask */
    sigset_t sigs;
    if (stop_signals_install(&sigs) != 0) {
        fprintf(stderr, "memfuse: cannot install the signal handlers: %s\n", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    app ap = {.cfg = &cfg, .started_us = time_now_us()};
    ids_gen_init(&ap.ids);
    int rc = 1;
    int rb_ok = 0, eq_ok = 0, tp_ok = 0;
    http_server *srv = NULL;
    ap.st = open_store(&cfg, &ap.ids, cfg.threads + 2);
    if (!ap.st)
        return 1;
    if (registry_init(&ap.reg) != 0) {
        log_error("out of memory");
        goto done;
    }
    rb_init(&ap.rb, &cfg.buffer, &ap.reg, ap.st);
    rb_ok = 1;
    ap.emb = embed_open(&ec, err, sizeof err);
    if (!ap.emb) {
        log_error("cannot open the embedder: %s", err);
        goto done;
    }
    cfg.embedder = embed_model_id(ap.emb);
    ap.ui = (user_index){.reg = &ap.reg, .st = ap.st, .model = embed_model_id(ap.emb), .dim = embed_dim(ap.emb),
                         .budget = (size_t)cfg.index_memory_mb << 20, .hnsw_threshold = (size_t)cfg.hnsw_threshold,
                         .hnsw_ef = (size_t)cfg.hnsw_ef};
    const store_ops *so = ap.st->ops;
    if (!so->units_unembedded || !so->units_get || !so->vectors_put || !so->vectors_of_user || !so->hits_get) {
        log_warn("store %s keeps no vectors yet: dense retrieval is off (keyword search only)", cfg.store_kind);
    } else if (embedq_start(&ap.eq, &cfg.embedq, ap.st, ap.emb, &ap.ui) != 0) {
        log_error("cannot start the embedding pipeline");
        goto done;
    } else {
        eq_ok = 1;
        ap.dense = 1;
        int64_t t0 = time_mono_ns();
        int pre = uidx_preload(&ap.ui, cfg.preload_users);
        if (pre)
            log_info("preloaded the vector indexes of %d users (%zu bytes) in %.1f ms", pre,
                     (size_t)atomic_load(&ap.ui.loaded), (double)(time_mono_ns() - t0) / 1e6);
    }

    if (start_layers(&ap) != 0)
        goto done;
    int rrc = rb_restore(&ap.rb); /* after the flush manager: what it consolidates is handed over */
    if (rrc != STORE_OK) {
        log_error("cannot restore the round buffers: %s", store_rc_name(rrc));
        goto done;
    }
    if (rb_start(&ap.rb) != 0) {
        log_error("cannot start the round-buffer timer");
        goto done;
    }

    if (ap.st->ops->listen && ap.st->ops->listen(ap.st, on_remote_change, &ap) != STORE_OK) {
        log_error("cannot listen for other processes' changes");
        goto done;
    }
    if (taskpool_start(&ap.tasks, cfg.threads > 4 ? cfg.threads / 2 : 2) != 0) {
        log_error("cannot start the query task pool");
        goto done;
    }
    tp_ok = 1;

    http_server_config hc = {.host = cfg.host, .port = cfg.port, .threads = cfg.threads, .max_body = cfg.max_body,
                             .connection_timeout_s = conn_timeout_s};
    srv = http_server_start(&hc, app_dispatch, &ap, err, sizeof err);
    if (!srv) {
        log_error("%s", err);
        goto done;
    }
    log_info("memfuse %s serving on %s:%d (store %s, embedder %s, %d threads, auth %s)", MEMFUSE_VERSION, cfg.host,
             http_server_port(srv), ap.st->ops->describe(ap.st), cfg.embedder, cfg.threads, cfg.auth ? "on" : "off");
    printf("memfuse listening on http://%s:%d\n", cfg.host, http_server_port(srv));
    fflush(stdout);

    int sig = stop_signals_wait(&sigs);
    log_info("received %s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_quiesce(srv);
    int left = http_server_drain(srv, 10000);
    if (left)
        log_warn("%d requests still in flight after 10 s; closing them", left);
    rc = 0;
done:
    http_server_stop(srv);
    if (tp_ok)
        taskpool_stop(&ap.tasks);
    if (rb_ok)
        rb_stop(&ap.rb);
    stop_layers(&ap);
    if (eq_ok)
        embedq_stop(&ap.eq);
    embed_close(ap.emb);
    store_close(ap.st);
    registry_destroy(&ap.reg);
    if (rc == 0)
        log_info("stopped cleanly");
    return rc;
}

static int cmd_db(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *action = argv[1];
    app_config cfg = {.data_dir = "./data", .store_kind = "sqlite", .log_level = "warn", .pg_validate_idle_ms = PG_UNSET};
    const option_def opts[] = {
        {"--data-dir", "MEMFUSE_DATA_DIR", OPT_STR, &cfg.data_dir, "data directory"},
        {"--store", "MEMFUSE_STORE", OPT_STR, &cfg.store_kind, "sqlite or postgres"},
        {"--pg-dsn", "MEMFUSE_PG_DSN", OPT_STR, &cfg.pg_dsn, "PostgreSQL connection string"},
        {"--log-level", "MEMFUSE_LOG_LEVEL", OPT_STR, &cfg.log_level, "debug|info|warn|error"},
    };
    if (parse_options(opts, (int)(sizeof opts / sizeof opts[0]), argc - 1, argv + 1) != 0)
        return 2;
    enum log_level lvl = LOG_WARN;
    log_parse_level(cfg.log_level, &lvl);
    log_init(lvl);
    if (strcmp(action, "status") && strcmp(action, "reset") && strcmp(action, "validate") && strcmp(action, "recreate")) {
        fprintf(stderr, "memfuse db: unknown action '%s' (status, reset, validate, recreate)\n", action);
        return 2;
    }
    ids_gen ids;
    ids_gen_init(&ids);
    store *st = open_store(&cfg, &ids, 1);
    if (!st)
        return 1;
    int rc = 0;
    if (strcmp(action, "status") == 0) {
        store_counts c;
        if (st->ops->counts(st, &c) != STORE_OK) {
            fprintf(stderr, "memfuse db status: cannot count rows\n");
            rc = 1;
        } else {
            jw w;
            jw_init(&w);
            jw_obj(&w);
            jw_kstr(&w, "store", cfg.store_kind);
            const char *where = st->ops->describe(st); /* "kind:location" */
            const char *colon = strchr(where, ':');
            jw_kstr(&w, "path", colon ? colon + 1 : where);
            jw_kint(&w, "schema_version", c.schema_version);
            jw_key(&w, "counts");
            jw_obj(&w);
            jw_kint(&w, "users", c.users);
            jw_kint(&w, "agents", c.agents);
            jw_kint(&w, "sessions", c.sessions);
            jw_kint(&w, "rounds", c.rounds);
            jw_kint(&w, "messages", c.messages);
            jw_kint(&w, "knowledge", c.knowledge);
            jw_kint(&w, "api_keys", c.api_keys);
            jw_kint(&w, "vectors", c.vectors);
            jw_kint(&w, "episodes", c.episodes);
            jw_kint(&w, "facts", c.facts);
            jw_kint(&w, "flushes_pending", c.flushes_pending);
            jw_obj_end(&w);
            jw_obj_end(&w);
            char *s = jw_take(&w, NULL);
            printf("%s\n", s ? s : "{}");
            free(s);
        }
    } else if (strcmp(action, "reset") == 0) {
        rc = st->ops->reset(st) == STORE_OK ? 0 : 1;
        printf(rc ? "reset failed\n" : "all data deleted; schema kept\n");
    } else if (strcmp(action, "recreate") == 0) {
        rc = st->ops->recreate(st) == STORE_OK ? 0 : 1;
        printf(rc ? "recreate failed\n" : "schema dropped and created again\n");
    } else {
        char report[2048];
        rc = st->ops->validate(st, report, sizeof report) == STORE_OK ? 0 : 1;
        printf(rc ? "invalid: %s\n" : "valid%s\n", report);
    }
    store_close(st);
    return rc;
}

/* memfuse reindex: drop every stored vector and embed everything again with the configured embedder. */
static int cmd_reindex(int argc, char **argv)
{
    app_config cfg = {.data_dir = "./data", .store_kind = "sqlite", .log_level = "info", .pg_validate_idle_ms = PG_UNSET};
    char err[512];
    embed_config ec;
    embed_config_default(&ec);
    ec.allow_fallback = 0; /* reindexing with the fallback would replace real vectors with hash vectors */
    if (embed_config_from_env(&ec, err, sizeof err) != 0 || embed_config_from_args(&ec, &argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "memfuse: %s\n", err);
        return 2;
    }
    int batch = 64;
    const option_def opts[] = {
        {"--data-dir", "MEMFUSE_DATA_DIR", OPT_STR, &cfg.data_dir, "data directory"},
        {"--store", "MEMFUSE_STORE", OPT_STR, &cfg.store_kind, "sqlite or postgres"},
        {"--pg-dsn", "MEMFUSE_PG_DSN", OPT_STR, &cfg.pg_dsn, "PostgreSQL connection string"},
        {"--log-level", "MEMFUSE_LOG_LEVEL", OPT_STR, &cfg.log_level, "debug|info|warn|error"},
        {"--embed-batch", "MEMFUSE_EMBED_BATCH", OPT_INT, &batch, "texts per embedding batch"},
    };
    if (parse_options(opts, (int)(sizeof opts / sizeof opts[0]), argc, argv) != 0)
        return 2;
    enum log_level lvl = LOG_INFO;
    log_parse_level(cfg.log_level, &lvl);
    log_init(lvl);
    ids_gen ids;
    ids_gen_init(&ids);
    store *st = open_store(&cfg, &ids, 2);
    if (!st)
        return 1;
    int rc = 1;
    embedder *emb = embed_open(&ec, err, sizeof err);
    if (!emb) {
        fprintf(stderr, "memfuse reindex: cannot open the embedder: %s\n", err);
    } else if (!st->ops->vectors_clear || !st->ops->units_unembedded || !st->ops->vectors_put) {
        fprintf(stderr, "memfuse reindex: the %s store keeps no vectors yet\n", cfg.store_kind);
    } else if (st->ops->vectors_clear(st) != STORE_OK) {
        fprintf(stderr, "memfuse reindex: cannot clear the stored vectors\n");
    } else {
        int64_t cursor[STORE_UNIT_TYPES] = {0}, total = 0, t0 = time_mono_ns();
        arena a;
        arena_init(&a);
        int got;
        while ((got = embed_scan_page(st, emb, NULL, cursor, batch < 1 ? 64 : batch, &a)) > 0) {
            total += got;
            arena_reset(&a);
        }
        arena_free(&a);
        double s = (double)(time_mono_ns() - t0) / 1e9;
        if (got == 0) {
            printf("reindexed %lld units with %s in %.2f s\n", (long long)total, embed_model_id(emb), s);
            rc = 0;
        } else {
            fprintf(stderr, "memfuse reindex: stopped after %lld units; the server embeds the rest at start\n",
                    (long long)total);
        }
    }
    embed_close(emb);
    store_close(st);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "db") == 0)
        return cmd_db(argc - 1, argv + 1);
    if (strcmp(cmd, "embed") == 0)
        return embed_cli_main(argc - 1, argv + 1);
    if (strcmp(cmd, "reindex") == 0)
        return cmd_reindex(argc - 1, argv + 1);
    if (strcmp(cmd, "bench") == 0)
        return bench_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("memfuse %s\n", MEMFUSE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "memfuse: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
