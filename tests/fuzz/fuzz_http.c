/* libFuzzer target for the HTTP request path: method, path, query string, headers and body go through
 * app_dispatch (router, authentication, validation, handlers) against a real SQLite store in a temporary
 * directory (on /dev/shm when there is one, so syncs are cheap).
 *
 * Input: "METHOD PATH[?QUERY]\n" then header lines "Name: value" up to an empty line, then the body. In
 * the path, query and body, $U, $A, $S, $K stand for the ids of a user, agent, session and API key created
 * at start, so the fuzzer reaches past the 404s. Every other request alternates auth off and on.
 * Checked: no crash or sanitizer report; the status is one SPEC allows; a JSON body parses and carries
 * the envelope's "status" (or "detail" for 404/405); 204 has no body. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/app.h"
#include "http/http.h"
#include "util/log.h"

int LLVMFuzzerInitialize(int *argc, char **argv[]);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static app g_app;
static app_config g_cfg, g_cfg_auth;
static char g_user[40], g_agent[40], g_session[40], g_key_id[40];

static void cleanup(void)
{
    store_close(g_app.st);
    const char *files[] = {"memfuse.db", "memfuse.db-wal", "memfuse.db-shm"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", g_cfg.data_dir, files[i]);
        unlink(path);
    }
    rmdir(g_cfg.data_dir);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_http: %s\n", what);
    abort();
}

int LLVMFuzzerInitialize(int *argc, char **argv[])
{
    (void)argc;
    (void)argv;
    log_init(LOG_OFF);
    char tmpl[64];
    snprintf(tmpl, sizeof tmpl, "%s/memfuse-fuzz-XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    char *dir = mkdtemp(tmpl);
    if (!dir)
        die("mkdtemp");
    g_cfg = (app_config){.store_kind = "sqlite", .data_dir = strdup(dir), .threads = 1, .max_body = 1 << 20,
                         .buffer = {.max_rounds = 5, .max_tokens = 800, .idle_ms = 60000},
                         .embedder = "none", .w_keyword = 2, .w_vector = 1};
    g_cfg_auth = g_cfg;
    g_cfg_auth.auth = 1;
    g_cfg_auth.admin_key = "fuzz-admin-key-0123456789";
    ids_gen_init(&g_app.ids);
    store_config sc = {.kind = "sqlite", .data_dir = g_cfg.data_dir, .read_conns = 2, .ids = &g_app.ids};
    char err[256];
    g_app.st = store_open(&sc, err, sizeof err);
    if (!g_app.st || registry_init(&g_app.reg) != 0 || taskpool_start(&g_app.tasks, 0) != 0)
        die("store");
    atexit(cleanup);
    rb_init(&g_app.rb, &g_cfg.buffer, &g_app.reg, g_app.st);
    g_app.ui = (user_index){.reg = &g_app.reg, .st = g_app.st, .model = "none", .dim = 8}; /* dense path off */
    g_app.cfg = &g_cfg;
    /* fixtures the input can name */
    arena a;
    arena_init(&a);
    store_entity u, ag;
    store_session s;
    store_apikey k;
    store *st = g_app.st;
    if (st->ops->entity_create(st, STORE_USERS, "fuzz-user", NULL, &a, &u) != STORE_OK ||
        st->ops->entity_create(st, STORE_AGENTS, "fuzz-agent", NULL, &a, &ag) != STORE_OK ||
        st->ops->session_create(st, u.id, ag.id, "fuzz-session", &a, &s) != STORE_OK ||
        st->ops->apikey_create(st, u.id, "k", "0000000000000000000000000000000000000000000000000000000000000000",
                               NULL, NULL, &a, &k) != STORE_OK)
        die("fixtures");
    snprintf(g_user, sizeof g_user, "%s", u.id);
    snprintf(g_agent, sizeof g_agent, "%s", ag.id);
    snprintf(g_session, sizeof g_session, "%s", s.id);
    snprintf(g_key_id, sizeof g_key_id, "%s", k.id);
    arena_free(&a);
    return 0;
}

/* Copies s[0..n) into the arena replacing $U/$A/$S/$K; NUL bytes end it (as in a C string from MHD). */
static char *expand(arena *a, const char *s, size_t n, size_t *out_len)
{
    char *o = arena_alloc(a, n * 40 + 1);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = NULL;
        if (s[i] == '$' && i + 1 < n)
            id = s[i + 1] == 'U' ? g_user : s[i + 1] == 'A' ? g_agent : s[i + 1] == 'S' ? g_session
                 : s[i + 1] == 'K' ? g_key_id : NULL;
        if (id) {
            memcpy(o + w, id, strlen(id));
            w += strlen(id);
            i++;
        } else {
            o[w++] = s[i];
        }
    }
    o[w] = '\0';
    if (out_len)
        *out_len = w;
    return o;
}

typedef struct fuzz_req {
    http_request r;
    const char *query;   /* "k=v&k2=v2" */
    const char *headers; /* "Name: value\n..." */
} fuzz_req;

static const char *lookup(const char *list, char sep, char kv, const char *key, arena *a, int ci)
{
    size_t kl = strlen(key);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, sep);
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, kv, len);
        if (eq && (size_t)(eq - p) == kl && (ci ? strncasecmp(p, key, kl) == 0 : strncmp(p, key, kl) == 0)) {
            const char *v = eq + 1;
            while (*v == ' ' && v < p + len)
                v++;
            return arena_strndup(a, v, len - (size_t)(v - p));
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

static const char *get_query(const http_request *r, const char *key)
{
    const fuzz_req *f = (const fuzz_req *)r;
    return lookup(f->query, '&', '=', key, r->a, 0);
}

static const char *get_header(const http_request *r, const char *name)
{
    const fuzz_req *f = (const fuzz_req *)r;
    return lookup(f->headers, '\n', ':', name, r->a, 1);
}

static int allowed(int s)
{
    static const int ok[] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == s)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long n_calls;
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    if (!nl)
        return 0;
    arena a;
    arena_init(&a);
    fuzz_req f;
    memset(&f, 0, sizeof f);
    size_t line_len = (size_t)(nl - in);
    char *line = expand(&a, in, line_len, NULL);
    char *sp = strchr(line, ' ');
    if (!sp) {
        arena_free(&a);
        return 0;
    }
    *sp = '\0';
    f.r.method = line;
    char *path = sp + 1, *q = strchr(path, '?');
    if (q) {
        *q = '\0';
        f.query = q + 1;
    }
    f.r.path = path;
    const char *rest = nl + 1;
    size_t rest_len = size - line_len - 1;
    const char *blank = NULL;
    for (size_t i = 0; i + 1 < rest_len && !blank; i++)
        if (rest[i] == '\n' && rest[i + 1] == '\n')
            blank = rest + i;
    size_t hdr_len = blank ? (size_t)(blank - rest) : rest_len;
    f.headers = expand(&a, rest, hdr_len, NULL);
    if (blank) {
        size_t blen;
        f.r.body = expand(&a, blank + 2, rest_len - hdr_len - 2, &blen);
        f.r.body_len = blen;
    }
    f.r.a = &a;
    f.r.get_query = get_query;
    f.r.get_header = get_header;
    g_app.cfg = (n_calls++ & 1) ? &g_cfg_auth : &g_cfg;

    http_response res = {.status = 200};
    jw_init(&res.body);
    app_dispatch(&g_app, &f.r, &res);
    if (!allowed(res.status))
        abort();
    if (res.no_body) {
        if (res.status != 204 || res.body.len)
            abort();
    } else if (res.raw) {
        free(res.raw);
    } else {
        size_t len;
        char *body = jw_take(&res.body, &len);
        if (!body)
            abort();
        cJSON *j = cJSON_ParseWithLength(body, len);
        if (!j || !(cJSON_GetObjectItemCaseSensitive(j, "status") || cJSON_GetObjectItemCaseSensitive(j, "detail")))
            abort();
        cJSON_Delete(j);
        free(body);
    }
    jw_free(&res.body);
    arena_free(&a);
    return 0;
}
