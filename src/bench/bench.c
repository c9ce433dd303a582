/* bench — see bench.h.
 *
 * How a run goes: parse the options; start the server (unless --url); set up what the chosen scenarios
 * need over one setup connection (a user holding --memories messages in one session, loaded in rounds of
 * 100, then waiting until their vectors are stored; a writer user for adds; a user per connection for
 * chat); run each scenario with --connections threads until the duration is up, each thread recording
 * the latency of every request it makes; merge, sort and print; read the server's own operation
 * statistics; stop the server.
 *
 * Texts are generated (a deterministic generator over a small vocabulary of everyday events), so
 * keyword and vector queries made of the same words find something; every query is drawn afresh, so
 * the server's answer cache does not serve repeats. Generated text is plain ASCII without quotes or
 * backslashes, so request bodies are formatted directly. */
#include "bench/bench.h"
#include "bench/bench_http.h"
#include "util/timeutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define MAX_SERVER_ARGS 32
#define ID_MAX 64

typedef struct bench_opts {
    const char *url;
    const char *scenario;
    int connections;
    double duration;
    int memories;
    int json;
    const char *api_key;
    const char *server_args[MAX_SERVER_ARGS];
    int n_server_args;
    int timeout_ms;
} bench_opts;

/* ---- text generator ------------------------------------------------------------------------------ */

static const char *const SUBJ[] = {"I", "my sister", "my brother", "our team", "the doctor", "my friend Anna",
                                   "my manager", "the kids", "my neighbour", "grandma", "we", "my partner"};
static const char *const VERB[] = {"visited", "booked", "cooked", "painted", "repaired", "ordered", "planned",
                                   "cancelled", "recommended", "discussed", "forgot", "bought", "reviewed",
                                   "photographed"};
static const char *const OBJ[] = {"a trip to Lisbon", "the blue bicycle", "a vegetarian lasagna",
                                  "the kitchen cabinets", "tickets for the jazz concert", "a birthday present",
                                  "the quarterly budget", "a new laptop", "the garden fence", "a pottery class",
                                  "the dentist appointment", "a mountain hike", "the wedding playlist",
                                  "a sourdough starter", "the chess tournament", "a yoga retreat"};
static const char *const PLACE[] = {"near the harbour", "in the old town", "at the office", "downtown",
                                    "by the lake", "at home", "in Berlin", "at the farmers market",
                                    "in the mountains", "at the library"};
static const char *const WHEN[] = {"last weekend", "yesterday morning", "on Friday", "two weeks ago",
                                   "before the holidays", "this summer", "last night", "in March",
                                   "after work", "on my birthday"};
#define PICK(rng, a) (a)[rng_next(rng) % (sizeof(a) / sizeof((a)[0]))]

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static void sentence(uint64_t *rng, char *out, size_t cap)
{
    snprintf(out, cap, "%s %s %s %s %s", PICK(rng, SUBJ), PICK(rng, VERB), PICK(rng, OBJ), PICK(rng, PLACE),
             PICK(rng, WHEN));
    out[0] = (char)(out[0] >= 'a' && out[0] <= 'z' ? out[0] - 32 : out[0]);
}

/* A query: 2 to 5 consecutive words of a fresh sentence. */
static void query_text(uint64_t *rng, char *out, size_t cap)
{
    char s[256];
    sentence(rng, s, sizeof s);
    char *words[32];
    int n = 0;
    for (char *save = NULL, *w = strtok_r(s, " ", &save); w && n < 32; w = strtok_r(NULL, " ", &save))
        words[n++] = w;
    int len = 2 + (int)(rng_next(rng) % 4);
    if (len > n)
        len = n;
    int start = (int)(rng_next(rng) % (uint64_t)(n - len + 1));
    size_t o = 0;
    out[0] = 0;
    for (int i = start; i < start + len && o < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i > start ? " " : "", words[i]);
}

/* ---- results ------------------------------------------------------------------------------------- */

typedef struct lat_buf {
    int64_t *v;
    size_t n, cap;
} lat_buf;

static int lat_push(lat_buf *b, int64_t ns)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        int64_t *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return -1;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = ns;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* nearest rank */
static double pct_ms(const lat_buf *b, double q)
{
    if (!b->n)
        return 0;
    size_t r = (size_t)(q * (double)b->n + 0.999999);
    if (r < 1)
        r = 1;
    if (r > b->n)
        r = b->n;
    return (double)b->v[r - 1] / 1e6;
}

typedef struct result {
    const char *name;
    int connections;
    double seconds;
    uint64_t requests, errors;
    double p50, p90, p99, p999, max, mean;
    char first_error[160];
} result;

/* ---- the run's shared state ---------------------------------------------------------------------- */

typedef struct ctx {
    const bench_opts *o;
    bh_target target;
    char auth[512];
    char agent[ID_MAX];
    char mem_user[ID_MAX], mem_session[ID_MAX]; /* the user holding --memories messages */
    char writer_user[ID_MAX];
    char (*add_sessions)[ID_MAX];  /* one per connection */
    char (*chat_users)[ID_MAX];    /* one per connection */
    char (*chat_sessions)[ID_MAX]; /* one per connection */
    int have_mem, have_writer, have_chat;
    double ingest_s, vectors_s;
    int64_t vectors_seen;
    uint64_t seq; /* unique names */
} ctx;

/* Workers report that they warmed up; the run's clock starts once all have, and they all start at once. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int warmed, open;
    int64_t t0, deadline_ns;
} gate;

typedef struct worker {
    ctx *c;
    int index;
    const struct scenario *sc;
    bh_conn conn;
    uint64_t rng;
    lat_buf lat;
    uint64_t errors;
    struct gate *gate; /* the timed run starts when every worker has warmed up */
    char err[160];
    char body[4096];
    char path[512];
} worker;

static int timed(worker *w, const char *method, const char *path, const char *body)
{
    char err[160];
    int64_t t0 = time_mono_ns();
    int st = bh_request(&w->conn, method, path, body, body ? strlen(body) : 0, err, sizeof err);
    int64_t dt = time_mono_ns() - t0;
    if (lat_push(&w->lat, dt) != 0)
        return -1;
    if (st < 200 || st > 299) {
        w->errors++;
        if (!w->err[0]) {
            if (st < 0)
                snprintf(w->err, sizeof w->err, "%s %.60s: %.80s", method, path, err);
            else
                snprintf(w->err, sizeof w->err, "%s %.60s: HTTP %d %.70s", method, path, st, w->conn.body);
        }
    }
    return 0;
}

static void query_body(worker *w, const char *store_type)
{
    char q[160];
    query_text(&w->rng, q, sizeof q);
    if (store_type)
        snprintf(w->body, sizeof w->body, "{\"query\":\"%s\",\"top_k\":10,\"store_type\":\"%s\"}", q, store_type);
    else
        snprintf(w->body, sizeof w->body, "{\"query\":\"%s\",\"top_k\":10}", q);
}

static int step_query(worker *w, const char *store_type)
{
    query_body(w, store_type);
    snprintf(w->path, sizeof w->path, "/api/v1/users/%s/query", w->c->mem_user);
    return timed(w, "POST", w->path, w->body);
}

static int step_query_keyword(worker *w) { return step_query(w, "keyword"); }
static int step_query_vector(worker *w) { return step_query(w, "vector"); }
static int step_query_hybrid(worker *w) { return step_query(w, NULL); }

static int step_list(worker *w)
{
    snprintf(w->path, sizeof w->path, "/api/v1/sessions/%s/messages?limit=20", w->c->mem_session);
    return timed(w, "GET", w->path, NULL);
}

static int step_add(worker *w)
{
    char s[256];
    sentence(&w->rng, s, sizeof s);
    snprintf(w->body, sizeof w->body, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", s);
    snprintf(w->path, sizeof w->path, "/api/v1/sessions/%s/messages", w->c->add_sessions[w->index]);
    return timed(w, "POST", w->path, w->body);
}

/* The Python SDK's chat turn: recall for the user's message, store the turn, read the history. */
static int step_chat(worker *w)
{
    char said[256], reply[256];
    sentence(&w->rng, said, sizeof said);
    sentence(&w->rng, reply, sizeof reply);
    snprintf(w->body, sizeof w->body, "{\"query\":\"%s\",\"top_k\":5}", said);
    snprintf(w->path, sizeof w->path, "/api/v1/users/%s/query", w->c->chat_users[w->index]);
    if (timed(w, "POST", w->path, w->body) != 0)
        return -1;
    snprintf(w->body, sizeof w->body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},{\"role\":\"assistant\",\"content\":\"Noted: %s\"}]}",
             said, reply);
    snprintf(w->path, sizeof w->path, "/api/v1/sessions/%s/messages", w->c->chat_sessions[w->index]);
    if (timed(w, "POST", w->path, w->body) != 0)
        return -1;
    snprintf(w->path, sizeof w->path, "/api/v1/sessions/%s/messages?limit=20", w->c->chat_sessions[w->index]);
    return timed(w, "GET", w->path, NULL);
}

static int step_health(worker *w) { return timed(w, "GET", "/api/v1/health", NULL); }

enum { NEED_MEM = 1, NEED_WRITER = 2, NEED_CHAT = 4 };

typedef struct scenario {
    const char *name;
    int needs;
    int (*step)(worker *w);
    const char *what;
} scenario;

static const scenario SCENARIOS[] = {
    {"query-keyword", NEED_MEM, step_query_keyword, "POST /users/{id}/query store_type keyword, top_k 10"},
    {"query-vector", NEED_MEM, step_query_vector, "POST /users/{id}/query store_type vector, top_k 10"},
    {"query-hybrid", NEED_MEM, step_query_hybrid, "POST /users/{id}/query (hybrid default), top_k 10"},
    {"list", NEED_MEM, step_list, "GET /sessions/{id}/messages?limit=20"},
    {"add", NEED_WRITER, step_add, "POST /sessions/{id}/messages, one message, durable"},
    {"chat", NEED_CHAT, step_chat, "query + add a turn of 2 messages + list the history, per request"},
    {"health", 0, step_health, "GET /api/v1/health (keep-alive)"},
};
#define N_SCENARIOS ((int)(sizeof SCENARIOS / sizeof SCENARIOS[0]))

/* ---- setup over one connection ------------------------------------------------------------------- */

/* Runs a request that must succeed; returns its parsed data object (caller deletes the root). */
static cJSON *must(bh_conn *conn, const char *method, const char *path, const char *body, cJSON **root)
{
    char err[256];
    int st = bh_request(conn, method, path, body, body ? strlen(body) : 0, err, sizeof err);
    if (st < 200 || st > 299) {
        fprintf(stderr, "memfuse bench: %s %s failed: %s\n", method, path,
                st < 0 ? err : conn->body_len ? conn->body : "(no body)");
        return NULL;
    }
    *root = cJSON_Parse(conn->body);
    cJSON *data = *root ? cJSON_GetObjectItemCaseSensitive(*root, "data") : NULL;
    if (!cJSON_IsObject(data)) {
        fprintf(stderr, "memfuse bench: %s %s: no data object in the answer\n", method, path);
        cJSON_Delete(*root);
        *root = NULL;
        return NULL;
    }
    return data;
}

/* POST path {"name":...} (plus extra JSON members) and copy data.<kind>.id into out. */
static int create(ctx *c, bh_conn *conn, const char *path, const char *kind, const char *extra, char out[ID_MAX])
{
    char body[512];
    snprintf(body, sizeof body, "{\"name\":\"bench-%ld-%llu\"%s%s}", (long)getpid(), (unsigned long long)++c->seq,
             extra ? "," : "", extra ? extra : "");
    cJSON *root = NULL, *data = must(conn, "POST", path, body, &root);
    if (!data)
        return -1;
    const cJSON *rec = cJSON_GetObjectItemCaseSensitive(data, kind);
    const cJSON *id = rec ? cJSON_GetObjectItemCaseSensitive(rec, "id") : NULL;
    int rc = cJSON_IsString(id) && strlen(id->valuestring) < ID_MAX ? 0 : -1;
    if (rc == 0)
        snprintf(out, ID_MAX, "%s", id->valuestring);
    else
        fprintf(stderr, "memfuse bench: POST %s: no %s id in the answer\n", path, kind);
    cJSON_Delete(root);
    return rc;
}

static int create_session(ctx *c, bh_conn *conn, const char *user, char out[ID_MAX])
{
    char extra[200];
    snprintf(extra, sizeof extra, "\"user_id\":\"%s\",\"agent_id\":\"%s\"", user, c->agent);
    return create(c, conn, "/api/v1/sessions", "session", extra, out);
}

static int64_t vectors_of(bh_conn *conn, const char *user)
{
    char path[200];
    snprintf(path, sizeof path, "/api/v1/chunks/stats?user_id=%s", user);
    cJSON *root = NULL, *data = must(conn, "GET", path, NULL, &root);
    if (!data)
        return -1;
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(data, "by_store");
    const cJSON *v = bs ? cJSON_GetObjectItemCaseSensitive(bs, "vector") : NULL;
    int64_t n = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
    cJSON_Delete(root);
    return n;
}

static double now_s(void) { return (double)time_mono_ns() / 1e9; }

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The --memories user: N messages in rounds of 100, then wait for their vectors (while they keep coming). */
static int setup_memories(ctx *c, bh_conn *conn)
{
    if (create(c, conn, "/api/v1/users", "user", NULL, c->mem_user) != 0 ||
        create_session(c, conn, c->mem_user, c->mem_session) != 0)
        return -1;
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    size_t cap = 100 * 320 + 64;
    char *body = malloc(cap);
    if (!body)
        return -1;
    char path[200];
    snprintf(path, sizeof path, "/api/v1/sessions/%s/messages", c->mem_session);
    double t0 = now_s();
    int rc = 0;
    for (int start = 0; start < c->o->memories && rc == 0; start += 100) {
        size_t o = (size_t)snprintf(body, cap, "{\"messages\":[");
        for (int i = start; i < start + 100 && i < c->o->memories; i++) {
            char s[256];
            sentence(&rng, s, sizeof s);
            o += (size_t)snprintf(body + o, cap - o, "%s{\"role\":\"%s\",\"content\":\"%s (note %d)\"}",
                                  i > start ? "," : "", i % 2 ? "assistant" : "user", s, i);
        }
        snprintf(body + o, cap - o, "]}");
        cJSON *root = NULL;
        if (!must(conn, "POST", path, body, &root))
            rc = -1;
        cJSON_Delete(root);
    }
    free(body);
    if (rc != 0)
        return -1;
    c->ingest_s = now_s() - t0;
    /* vectors: wait while they arrive; a server without the dense path never stores any */
    int64_t last = -1;
    double last_change = now_s();
    for (;;) {
        int64_t v = vectors_of(conn, c->mem_user);
        if (v < 0)
            return -1;
        if (v != last) {
            last = v;
            last_change = now_s();
        }
        if (v >= c->o->memories)
            break;
        if (now_s() - last_change > 15) {
            fprintf(stderr, "memfuse bench: %lld of %d memories have a vector after %.0f s without progress; going on\n",
                    (long long)v, c->o->memories, now_s() - t0);
            break;
        }
        sleep_ms(100);
    }
    c->vectors_seen = last;
    c->vectors_s = now_s() - t0;
    c->have_mem = 1;
    return 0;
}

static int setup(ctx *c, bh_conn *conn, int needs)
{
    if (needs && !c->agent[0] && create(c, conn, "/api/v1/agents", "agent", NULL, c->agent) != 0)
        return -1;
    if ((needs & NEED_MEM) && !c->have_mem && setup_memories(c, conn) != 0)
        return -1;
    if ((needs & NEED_WRITER) && !c->have_writer) {
        if (create(c, conn, "/api/v1/users", "user", NULL, c->writer_user) != 0)
            return -1;
        for (int i = 0; i < c->o->connections; i++)
            if (create_session(c, conn, c->writer_user, c->add_sessions[i]) != 0)
                return -1;
        c->have_writer = 1;
    }
    if ((needs & NEED_CHAT) && !c->have_chat) {
        for (int i = 0; i < c->o->connections; i++)
            if (create(c, conn, "/api/v1/users", "user", NULL, c->chat_users[i]) != 0 ||
                create_session(c, conn, c->chat_users[i], c->chat_sessions[i]) != 0)
                return -1;
        c->have_chat = 1;
    }
    return 0;
}

/* ---- running a scenario -------------------------------------------------------------------------- */

static void *run_worker(void *arg)
{
    worker *w = arg;
    /* one untimed request first: the connection is open and the user's index loaded (a first dense query
     * may load it and build its graph, which can take seconds) before the clock of the run starts */
    if (w->sc->step(w) == 0) {
        w->lat.n = 0;
        w->errors = 0;
        w->err[0] = 0;
    }
    gate *g = w->gate;
    pthread_mutex_lock(&g->mu);
    g->warmed++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    int64_t deadline = g->deadline_ns;
    pthread_mutex_unlock(&g->mu);
    while (time_mono_ns() < deadline)
        if (w->sc->step(w) != 0)
            break;
    return NULL;
}

static int run_scenario(ctx *c, const scenario *sc, result *r)
{
    int n = c->o->connections;
    worker *ws = calloc((size_t)n, sizeof *ws);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    if (!ws || !th) {
        free(ws);
        free(th);
        return -1;
    }
    gate g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    uint64_t seed = (uint64_t)time_mono_ns();
    int started = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        ws[i] = (worker){.c = c, .index = i, .sc = sc, .rng = 0x1234567ull * (uint64_t)(i + 1) ^ seed, .gate = &g};
        if (!ws[i].rng)
            ws[i].rng = 1;
        bh_init(&ws[i].conn, &c->target, c->auth[0] ? c->auth : NULL, c->o->timeout_ms);
        if (pthread_create(&th[i], NULL, run_worker, &ws[i]) != 0) {
            rc = -1;
            break;
        }
        started++;
    }
    pthread_mutex_lock(&g.mu);
    while (g.warmed < started)
        pthread_cond_wait(&g.cv, &g.mu);
    g.t0 = time_mono_ns();
    g.deadline_ns = g.t0 + (int64_t)(c->o->duration * 1e9);
    g.open = 1;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double secs = (double)(time_mono_ns() - g.t0) / 1e9;
    lat_buf all = {0};
    *r = (result){.name = sc->name, .connections = n, .seconds = secs};
    for (int i = 0; i < started && rc == 0; i++) {
        r->errors += ws[i].errors;
        if (!r->first_error[0] && ws[i].err[0])
            snprintf(r->first_error, sizeof r->first_error, "%s", ws[i].err);
        for (size_t k = 0; k < ws[i].lat.n && rc == 0; k++)
            rc = lat_push(&all, ws[i].lat.v[k]);
    }
    for (int i = 0; i < n; i++) {
        bh_close(&ws[i].conn);
        free(ws[i].lat.v);
    }
    free(ws);
    free(th);
    if (rc != 0) {
        free(all.v);
        return -1;
    }
    qsort(all.v, all.n, sizeof *all.v, cmp_i64);
    double sum = 0;
    for (size_t k = 0; k < all.n; k++)
        sum += (double)all.v[k];
    r->requests = all.n;
    r->p50 = pct_ms(&all, 0.50);
    r->p90 = pct_ms(&all, 0.90);
    r->p99 = pct_ms(&all, 0.99);
    r->p999 = pct_ms(&all, 0.999);
    r->max = all.n ? (double)all.v[all.n - 1] / 1e6 : 0;
    r->mean = all.n ? sum / (double)all.n / 1e6 : 0;
    free(all.v);
    return 0;
}

/* ---- the server this run starts ------------------------------------------------------------------ */

typedef struct server_proc {
    pid_t pid;
    char dir[PATH_MAX];
    char url[128];
    double start_ms;
    int64_t idle_rss;
} server_proc;

static int64_t rss_of(pid_t pid)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%ld/statm", (long)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    long size, rss;
    int ok = fscanf(f, "%ld %ld", &size, &rss) == 2;
    fclose(f);
    return ok ? (int64_t)rss * sysconf(_SC_PAGESIZE) : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "memfuse bench: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void server_log_tail(const server_proc *s)
{
    char p[PATH_MAX + 16];
    snprintf(p, sizeof p, "%s/server.log", s->dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    fprintf(stderr, "--- server log ---\n%s\n", buf);
}

static int server_start(const bench_opts *o, server_proc *s)
{
    memset(s, 0, sizeof *s);
    s->pid = -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/memfuse-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "memfuse bench: mkdtemp: %s\n", strerror(errno));
        s->dir[0] = 0;
        return -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        fprintf(stderr, "memfuse bench: cannot find this binary: %s\n", strerror(errno));
        return -1;
    }
    exe[n] = 0;
    char data[PATH_MAX + 8], logp[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data", s->dir);
    snprintf(logp, sizeof logp, "%s/server.log", s->dir);
    const char *argv[16 + MAX_SERVER_ARGS];
    int a = 0;
    argv[a++] = exe;
    argv[a++] = "serve";
    argv[a++] = "--host";
    argv[a++] = "127.0.0.1";
    argv[a++] = "--port";
    argv[a++] = "0";
    argv[a++] = "--data-dir";
    argv[a++] = data;
    argv[a++] = "--log-level";
    argv[a++] = "warn";
    for (int i = 0; i < o->n_server_args; i++)
        argv[a++] = o->server_args[i];
    argv[a] = NULL;
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        fprintf(stderr, "memfuse bench: pipe: %s\n", strerror(errno));
        return -1;
    }
    double t0 = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "memfuse bench: fork: %s\n", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the bench */
        int lf = open(logp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (lf < 0 || dup2(pfd[1], 1) < 0 || dup2(lf, 2) < 0)
            _exit(127);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    s->pid = pid;
    /* the first stdout line says where it listens */
    char line[256];
    size_t len = 0;
    int rc = -1;
    while (len < sizeof line - 1) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&p, 1, 60000);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            break;
        ssize_t r = read(pfd[0], line + len, 1);
        if (r <= 0)
            break;
        if (line[len] == '\n') {
            line[len] = 0;
            rc = 0;
            break;
        }
        len++;
    }
    close(pfd[0]);
    const char *url = rc == 0 ? strstr(line, "http://") : NULL;
    if (!url) {
        fprintf(stderr, "memfuse bench: the server did not start\n");
        server_log_tail(s);
        return -1;
    }
    s->start_ms = (now_s() - t0) * 1e3;
    snprintf(s->url, sizeof s->url, "%s", url);
    sleep_ms(300); /* let the start-up work settle before reading the idle footprint */
    s->idle_rss = rss_of(pid);
    return 0;
}

static int server_stop(server_proc *s)
{
    int rc = 0;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int status = 0, waited = 0;
        while (waitpid(s->pid, &status, WNOHANG) == 0) {
            if (waited++ > 1500) { /* 15 s */
                fprintf(stderr, "memfuse bench: the server did not stop within 15 s; killing it\n");
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &status, 0);
                rc = -1;
                break;
            }
            sleep_ms(10);
        }
        if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            fprintf(stderr, "memfuse bench: the server exited with status %d\n", status);
            server_log_tail(s);
            rc = -1;
        }
        s->pid = -1;
    }
    if (s->dir[0])
        nftw(s->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->dir[0] = 0;
    return rc;
}

/* ---- output ------------------------------------------------------------------------------------- */

typedef struct server_info {
    char version[32], store[32], embedder[64];
    int64_t rss;
    struct {
        uint64_t count;
        double p50, p99;
        int have;
    } ops[16];
    char op_names[16][24];
    int n_ops;
} server_info;

static void copy_str(char *out, size_t cap, const cJSON *o, const char *key)
{
    const cJSON *v = o ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
    snprintf(out, cap, "%s", cJSON_IsString(v) ? v->valuestring : "?");
}

static void read_health(bh_conn *conn, server_info *si)
{
    cJSON *root = NULL, *data = must(conn, "GET", "/api/v1/health", NULL, &root);
    copy_str(si->version, sizeof si->version, data, "version");
    copy_str(si->store, sizeof si->store, data, "store");
    copy_str(si->embedder, sizeof si->embedder, data, "embedder");
    cJSON_Delete(root);
}

/* The server's own view: per-operation percentiles and RSS from GET /api/v1/admin/stats. */
static void read_server_stats(bh_conn *conn, server_info *si)
{
    char err[200];
    int st = bh_request(conn, "GET", "/api/v1/admin/stats", NULL, 0, err, sizeof err);
    if (st != 200)
        return;
    cJSON *root = cJSON_Parse(conn->body);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "data"), "metrics");
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, "memfuse_op_duration_seconds"), "samples");
    const cJSON *s;
    cJSON_ArrayForEach(s, ops)
    {
        if (si->n_ops >= 16)
            break;
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "labels"), "op");
        const cJSON *cnt = cJSON_GetObjectItemCaseSensitive(s, "count");
        const cJSON *p50 = cJSON_GetObjectItemCaseSensitive(s, "p50");
        const cJSON *p99 = cJSON_GetObjectItemCaseSensitive(s, "p99");
        if (!cJSON_IsString(op) || !cJSON_IsNumber(cnt))
            continue;
        int k = si->n_ops++;
        snprintf(si->op_names[k], sizeof si->op_names[k], "%s", op->valuestring);
        si->ops[k].have = 1;
        si->ops[k].count = (uint64_t)cnt->valuedouble;
        si->ops[k].p50 = cJSON_IsNumber(p50) ? p50->valuedouble * 1e3 : 0;
        si->ops[k].p99 = cJSON_IsNumber(p99) ? p99->valuedouble * 1e3 : 0;
    }
    const cJSON *rss = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, "process_resident_memory_bytes"), "samples");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rss, 0), "value");
    si->rss = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
    cJSON_Delete(root);
}

static void print_text(const ctx *c, const server_proc *sp, const server_info *si, const result *rs, int n)
{
    const bench_opts *o = c->o;
    printf("memfuse bench: %s (%s, store %s, embedder %s)%s\n", sp ? sp->url : o->url, si->version, si->store,
           si->embedder, sp ? ", started by the bench" : "");
    if (sp)
        printf("server start: listening %.1f ms after exec; idle RSS %.1f MiB\n", sp->start_ms,
               (double)sp->idle_rss / 1048576.0);
    if (c->have_mem)
        printf("memories: %d for one user, acknowledged in %.2f s (%.0f msg/s), %lld with a vector after %.2f s\n",
               o->memories, c->ingest_s, c->ingest_s > 0 ? o->memories / c->ingest_s : 0, (long long)c->vectors_seen,
               c->vectors_s);
    printf("%-14s %5s %9s %7s %10s %9s %9s %9s %9s\n", "scenario", "conns", "requests", "errors", "req/s", "p50 ms",
           "p90 ms", "p99 ms", "p99.9 ms");
    for (int i = 0; i < n; i++)
        printf("%-14s %5d %9llu %7llu %10.1f %9.3f %9.3f %9.3f %9.3f\n", rs[i].name, rs[i].connections,
               (unsigned long long)rs[i].requests, (unsigned long long)rs[i].errors,
               rs[i].seconds > 0 ? (double)rs[i].requests / rs[i].seconds : 0, rs[i].p50, rs[i].p90, rs[i].p99,
               rs[i].p999);
    for (int i = 0; i < n; i++)
        if (rs[i].first_error[0])
            printf("first error in %s: %s\n", rs[i].name, rs[i].first_error);
    if (si->n_ops) {
        printf("server-side operations (GET /api/v1/admin/stats):\n");
        for (int k = 0; k < si->n_ops; k++)
            if (si->ops[k].count)
                printf("  %-16s %10llu  p50 %9.4f ms  p99 %9.4f ms\n", si->op_names[k],
                       (unsigned long long)si->ops[k].count, si->ops[k].p50, si->ops[k].p99);
    }
}

static void print_json(const ctx *c, const server_proc *sp, const server_info *si, const result *rs, int n)
{
    const bench_opts *o = c->o;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "url", sp ? sp->url : o->url);
    cJSON_AddBoolToObject(root, "started_server", sp != NULL);
    cJSON *srv = cJSON_AddObjectToObject(root, "server");
    cJSON_AddStringToObject(srv, "version", si->version);
    cJSON_AddStringToObject(srv, "store", si->store);
    cJSON_AddStringToObject(srv, "embedder", si->embedder);
    if (sp) {
        cJSON_AddNumberToObject(srv, "start_ms", sp->start_ms);
        cJSON_AddNumberToObject(srv, "idle_rss_bytes", (double)sp->idle_rss);
    }
    if (si->rss >= 0)
        cJSON_AddNumberToObject(srv, "rss_bytes_after", (double)si->rss);
    cJSON *ops = cJSON_AddObjectToObject(srv, "ops");
    for (int k = 0; k < si->n_ops; k++) {
        cJSON *op = cJSON_AddObjectToObject(ops, si->op_names[k]);
        cJSON_AddNumberToObject(op, "count", (double)si->ops[k].count);
        cJSON_AddNumberToObject(op, "p50_ms", si->ops[k].p50);
        cJSON_AddNumberToObject(op, "p99_ms", si->ops[k].p99);
    }
    cJSON_AddNumberToObject(root, "connections", o->connections);
    cJSON_AddNumberToObject(root, "duration_s", o->duration);
    cJSON_AddNumberToObject(root, "memories", c->have_mem ? o->memories : 0);
    if (c->have_mem) {
        cJSON *pre = cJSON_AddObjectToObject(root, "preload");
        cJSON_AddNumberToObject(pre, "ingest_s", c->ingest_s);
        cJSON_AddNumberToObject(pre, "ingest_msg_per_s", c->ingest_s > 0 ? o->memories / c->ingest_s : 0);
        cJSON_AddNumberToObject(pre, "vectors", (double)c->vectors_seen);
        cJSON_AddNumberToObject(pre, "vectors_s", c->vectors_s);
    }
    cJSON *arr = cJSON_AddArrayToObject(root, "scenarios");
    for (int i = 0; i < n; i++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "name", rs[i].name);
        cJSON_AddNumberToObject(s, "connections", rs[i].connections);
        cJSON_AddNumberToObject(s, "seconds", rs[i].seconds);
        cJSON_AddNumberToObject(s, "requests", (double)rs[i].requests);
        cJSON_AddNumberToObject(s, "errors", (double)rs[i].errors);
        cJSON_AddNumberToObject(s, "throughput_rps", rs[i].seconds > 0 ? (double)rs[i].requests / rs[i].seconds : 0);
        cJSON_AddNumberToObject(s, "p50_ms", rs[i].p50);
        cJSON_AddNumberToObject(s, "p90_ms", rs[i].p90);
        cJSON_AddNumberToObject(s, "p99_ms", rs[i].p99);
        cJSON_AddNumberToObject(s, "p999_ms", rs[i].p999);
        cJSON_AddNumberToObject(s, "max_ms", rs[i].max);
        cJSON_AddNumberToObject(s, "mean_ms", rs[i].mean);
        if (rs[i].first_error[0])
            cJSON_AddStringToObject(s, "first_error", rs[i].first_error);
        cJSON_AddItemToArray(arr, s);
    }
    char *text = cJSON_Print(root);
    if (text)
        printf("%s\n", text);
    else
        fprintf(stderr, "memfuse bench: out of memory\n");
    free(text);
    cJSON_Delete(root);
}

/* ---- options and main ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: memfuse bench [--url http://127.0.0.1:PORT] [--scenario NAME] [--connections N]\n"
               "                     [--duration SECONDS] [--memories N] [--json] [--api-key KEY]\n"
               "                     [--server-arg FLAG ...] [--timeout-ms MS]\n"
               "scenarios: add, list, query-keyword, query-vector, query-hybrid, chat, health, all (default),\n"
               "           or several separated by commas (add,health)\n"
               "without --url it starts `memfuse serve` on 127.0.0.1 (free port, temporary data dir) and stops it\n");
}

static int parse_num(const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= lo && d <= hi))
        return -1;
    *out = d;
    return 0;
}

static int parse_opts(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.scenario = "all", .connections = 8, .duration = 5, .memories = 1000, .timeout_ms = 30000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *eq = strchr(a, '=');
        char name[32];
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof name) {
            fprintf(stderr, "memfuse bench: unknown option '%s'\n", a);
            return -1;
        }
        memcpy(name, a, nlen);
        name[nlen] = 0;
        if (strcmp(name, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        const char *v = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!v) {
            fprintf(stderr, "memfuse bench: %s needs a value\n", name);
            return -1;
        }
        double d;
        if (strcmp(name, "--url") == 0) {
            o->url = v;
        } else if (strcmp(name, "--scenario") == 0) {
            o->scenario = v;
        } else if (strcmp(name, "--api-key") == 0) {
            o->api_key = v;
        } else if (strcmp(name, "--server-arg") == 0) {
            if (o->n_server_args >= MAX_SERVER_ARGS) {
                fprintf(stderr, "memfuse bench: too many --server-arg\n");
                return -1;
            }
            o->server_args[o->n_server_args++] = v;
        } else if (strcmp(name, "--connections") == 0 && parse_num(v, 1, MAX_CONNS, &d) == 0) {
            o->connections = (int)d;
        } else if (strcmp(name, "--duration") == 0 && parse_num(v, 0.05, 3600, &d) == 0) {
            o->duration = d;
        } else if (strcmp(name, "--memories") == 0 && parse_num(v, 0, 10000000, &d) == 0) {
            o->memories = (int)d;
        } else if (strcmp(name, "--timeout-ms") == 0 && parse_num(v, 1, 3600000, &d) == 0) {
            o->timeout_ms = (int)d;
        } else {
            fprintf(stderr, "memfuse bench: unknown option or bad value: %s %s\n", name, v);
            return -1;
        }
    }
    return 0;
}

/* "all", or names separated by commas (run in that order, each once). */
static int select_scenarios(const char *list, int chosen[N_SCENARIOS], int *n)
{
    *n = 0;
    if (strcmp(list, "all") == 0) {
        for (int i = 0; i < N_SCENARIOS; i++)
            chosen[(*n)++] = i;
        return 0;
    }
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int found = -1;
        for (int i = 0; i < N_SCENARIOS; i++)
            if (strlen(SCENARIOS[i].name) == len && strncmp(p, SCENARIOS[i].name, len) == 0)
                found = i;
        if (found < 0) {
            fprintf(stderr, "memfuse bench: unknown scenario '%.*s'\n", (int)len, p);
            return -1;
        }
        int dup = 0;
        for (int k = 0; k < *n; k++)
            dup |= chosen[k] == found;
        if (!dup)
            chosen[(*n)++] = found;
        p += len;
        if (*p == ',')
            p++;
    }
    if (!*n) {
        fprintf(stderr, "memfuse bench: no scenario chosen\n");
        return -1;
    }
    return 0;
}

int bench_main(int argc, char **argv)
{
    bench_opts o;
    if (parse_opts(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    int chosen[N_SCENARIOS], n_chosen = 0, needs = 0;
    if (select_scenarios(o.scenario, chosen, &n_chosen) != 0) {
        usage(stderr);
        return 2;
    }
    for (int i = 0; i < n_chosen; i++)
        needs |= SCENARIOS[chosen[i]].needs;
    signal(SIGPIPE, SIG_IGN);
    ctx c = {.o = &o};
    c.add_sessions = calloc((size_t)o.connections, sizeof *c.add_sessions);
    c.chat_users = calloc((size_t)o.connections, sizeof *c.chat_users);
    c.chat_sessions = calloc((size_t)o.connections, sizeof *c.chat_sessions);
    result *rs = calloc((size_t)n_chosen, sizeof *rs);
    server_proc sp = {.pid = -1};
    int started = 0, rc = 1;
    if (!c.add_sessions || !c.chat_users || !c.chat_sessions || !rs) {
        fprintf(stderr, "memfuse bench: out of memory\n");
        goto done;
    }
    if (o.api_key)
        snprintf(c.auth, sizeof c.auth, "Bearer %s", o.api_key);
    if (!o.url) {
        if (server_start(&o, &sp) != 0)
            goto done;
        started = 1;
    }
    char err[256];
    if (bh_parse_url(started ? sp.url : o.url, &c.target, err, sizeof err) != 0) {
        fprintf(stderr, "memfuse bench: %s\n", err);
        goto done;
    }
    bh_conn conn;
    bh_init(&conn, &c.target, c.auth[0] ? c.auth : NULL, o.timeout_ms > 120000 ? o.timeout_ms : 120000);
    server_info si = {.rss = -1};
    read_health(&conn, &si);
    if (!o.json)
        fprintf(stderr, "memfuse bench: setting up (%d memories)...\n", (needs & NEED_MEM) ? o.memories : 0);
    if (setup(&c, &conn, needs) != 0) {
        bh_close(&conn);
        goto done;
    }
    int ok = 1;
    for (int i = 0; i < n_chosen && ok; i++) {
        if (!o.json)
            fprintf(stderr, "memfuse bench: %s, %d connections, %.1f s: %s\n", SCENARIOS[chosen[i]].name,
                    o.connections, o.duration, SCENARIOS[chosen[i]].what);
        ok = run_scenario(&c, &SCENARIOS[chosen[i]], &rs[i]) == 0;
    }
    if (!ok) {
        fprintf(stderr, "memfuse bench: out of memory while recording\n");
        bh_close(&conn);
        goto done;
    }
    read_server_stats(&conn, &si);
    bh_close(&conn);
    if (o.json)
        print_json(&c, started ? &sp : NULL, &si, rs, n_chosen);
    else
        print_text(&c, started ? &sp : NULL, &si, rs, n_chosen);
    rc = 0;
    for (int i = 0; i < n_chosen; i++)
        if (rs[i].requests == 0)
            rc = 1; /* a scenario that completed no request measured nothing */
done:
    fflush(stdout);
    if (started && server_stop(&sp) != 0)
        rc = 1;
    else if (!started && sp.dir[0])
        server_stop(&sp);
    free(c.add_sessions);
    free(c.chat_users);
    free(c.chat_sessions);
    free(rs);
    return rc;
}
