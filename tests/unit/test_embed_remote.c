/* The remote embedder against tests/fakes/fake_openai.py (started here on a loopback port): success,
 * batching, out-of-order answers, learned dimension, and the failure modes — timeouts, HTTP 500 (retried
 * then given up), flaky servers (retried then fine), 429, malformed JSON, wrong dimension, short answers,
 * dropped connections, wrong API key and nothing listening. Request counts come from the fake's /stats. */
#include <curl/curl.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "embed/embed.h"
#include "util/log.h"

#define FAKE_DIM 8
#define API_KEY "sk-test-123"

typedef struct fake {
    pid_t pid;
    int port;
} fake;

static int start_fake(void **state) {
    int fds[2];
    if (pipe(fds)) return -1;
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl("/usr/bin/python3", "python3", "tests/fakes/fake_openai.py", "--port", "0", "--dim", "8", "--api-key",
              API_KEY, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char line[64] = "";
    size_t n = 0;
    while (n + 1 < sizeof line) {
        ssize_t k = read(fds[0], line + n, 1);
        if (k <= 0 || line[n] == '\n') break;
        n++;
    }
    line[n] = 0;
    close(fds[0]);
    fake *f = calloc(1, sizeof *f);
    f->pid = pid;
    if (sscanf(line, "PORT %d", &f->port) != 1) {
        fprintf(stderr, "fake server did not start (got \"%s\")\n", line);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int stop_fake(void **state) {
    fake *f = *state;
    if (!f) return 0;
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    free(f);
    return 0;
}

static void config(const fake *f, embed_config *cfg, const char *model) {
    embed_config_default(cfg);
    cfg->kind = EMBED_REMOTE;
    snprintf(cfg->url, sizeof cfg->url, "http://127.0.0.1:%d", f->port);
    snprintf(cfg->model, sizeof cfg->model, "%s", model);
    snprintf(cfg->api_key, sizeof cfg->api_key, "%s", API_KEY);
    cfg->dim = FAKE_DIM;
    cfg->timeout_ms = 2000;
    cfg->retries = 2;
    cfg->backoff_ms = 10;
}

static size_t sink(char *d, size_t s, size_t n, void *ud) {
    char **buf = ud;
    size_t old = *buf ? strlen(*buf) : 0;
    *buf = realloc(*buf, old + s * n + 1);
    memcpy(*buf + old, d, s * n);
    (*buf)[old + s * n] = 0;
    return s * n;
}

/* Requests the fake has seen for a model name. */
static int stat_of(const fake *f, const char *model, const char *field) {
    CURL *c = curl_easy_init();
    char *esc = curl_easy_escape(c, model, 0), url[512], *body = NULL;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/stats?model=%s", f->port, esc);
    curl_free(esc);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    cJSON *o = cJSON_Parse(body);
    int v = (int)cJSON_GetObjectItem(o, field)->valuedouble;
    cJSON_Delete(o);
    free(body);
    return v;
}

static const char *TEXTS[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"};
static const size_t LENS[] = {5, 4, 5, 5, 7, 4, 3, 5, 4, 5};

static void test_ok_batching_and_order(void **state) {
    fake *f = *state;
    embed_config cfg;
    config(f, &cfg, "fake-ok#batching");
    cfg.batch_max = 3;
    char err[512] = "";
    embedder *e = embed_open(&cfg, err, sizeof err);
    assert_non_null(e);
    assert_int_equal(embed_dim(e), FAKE_DIM);
    assert_string_equal(embed_model_id(e), "remote:fake-ok#batching");
    float v[10 * FAKE_DIM], w[10 * FAKE_DIM];
    assert_int_equal(embed_batch(e, TEXTS, LENS, 10, v, err, sizeof err), 0);
    assert_int_equal(stat_of(f, "fake-ok#batching", "requests"), 4); /* ceil(10 / 3) */
    assert_int_equal(stat_of(f, "fake-ok#batching", "max_batch"), 3);
    for (int i = 0; i < 10; i++) {
        double ss = 0;
        for (int d = 0; d < FAKE_DIM; d++) ss += (double)v[i * FAKE_DIM + d] * v[i * FAKE_DIM + d];
        assert_true(fabs(ss - 1) < 1e-5); /* normalised by the client: the fake's are not */
    }
    /* one at a time gives the same rows; rows differ between texts */
    for (int i = 0; i < 10; i++) assert_int_equal(embed_batch(e, &TEXTS[i], &LENS[i], 1, w + i * FAKE_DIM, err, sizeof err), 0);
    assert_memory_equal(v, w, sizeof v);
    assert_memory_not_equal(v, v + FAKE_DIM, FAKE_DIM * sizeof(float));
    embed_close(e);

    /* data in reverse order with indexes: rows still land where they belong */
    config(f, &cfg, "fake-shuffle#1");
    cfg.batch_max = 64;
    e = embed_open(&cfg, err, sizeof err);
    assert_non_null(e);
    assert_int_equal(embed_batch(e, TEXTS, LENS, 10, w, err, sizeof err), 0);
    assert_memory_equal(v, w, sizeof v);
    embed_close(e);
}

static void test_learned_dimension(void **state) {
    fake *f = *state;
    embed_config cfg;
    config(f, &cfg, "fake-ok#probe");
    cfg.dim = 0;
    char err[512] = "";
    embedder *e = embed_open(&cfg, err, sizeof err);
    assert_non_null(e);
    assert_int_equal(embed_dim(e), FAKE_DIM);
    assert_int_equal(stat_of(f, "fake-ok#probe", "requests"), 1);
    embed_close(e);
    /* a probe that fails makes open fail with the cause */
    config(f, &cfg, "fake-malformed#probe");
    cfg.dim = 0;
    assert_null(embed_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "malformed JSON"));
}

static embedder *open_ok(const fake *f, const char *model, embed_config *cfg) {
    config(f, cfg, model);
    char err[512] = "";
    embedder *e = embed_open(cfg, err, sizeof err);
    assert_non_null(e);
    return e;
}

static void expect_fail(embedder *e, const char *needle, char *err, size_t errlen) {
    float v[10 * FAKE_DIM];
    err[0] = 0;
    assert_int_equal(embed_batch(e, TEXTS, LENS, 2, v, err, errlen), -1);
    if (!strstr(err, needle)) fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
}

static void test_failure_modes(void **state) {
    fake *f = *state;
    embed_config cfg;
    char err[512];
    embedder *e;

    e = open_ok(f, "fake-500#a", &cfg); /* retried twice, then the error names the status */
    expect_fail(e, "HTTP 500", err, sizeof err);
    assert_non_null(strstr(err, "failed on purpose"));
    assert_int_equal(stat_of(f, "fake-500#a", "requests"), 3);
    embed_close(e);

    e = open_ok(f, "fake-flaky-2#a", &cfg); /* two 500s, then fine */
    float v[2 * FAKE_DIM];
    assert_int_equal(embed_batch(e, TEXTS, LENS, 2, v, err, sizeof err), 0);
    assert_int_equal(stat_of(f, "fake-flaky-2#a", "requests"), 3);
    embed_close(e);

    e = open_ok(f, "fake-429-1#a", &cfg); /* rate limited once, then fine */
    assert_int_equal(embed_batch(e, TEXTS, LENS, 2, v, err, sizeof err), 0);
    assert_int_equal(stat_of(f, "fake-429-1#a", "requests"), 2);
    embed_close(e);

    e = open_ok(f, "fake-malformed#a", &cfg); /* not retried */
    expect_fail(e, "malformed JSON", err, sizeof err);
    assert_int_equal(stat_of(f, "fake-malformed#a", "requests"), 1);
    embed_close(e);

    e = open_ok(f, "fake-wrong-dim#a", &cfg);
    expect_fail(e, "wrong dimension", err, sizeof err);
    assert_non_null(strstr(err, "got 9, expected 8"));
    embed_close(e);

    e = open_ok(f, "fake-short#a", &cfg);
    expect_fail(e, "returned 1 embeddings for 2 texts", err, sizeof err);
    embed_close(e);

    e = open_ok(f, "fake-close#a", &cfg); /* connection dropped: retried, then reported */
    expect_fail(e, "attempt 3", err, sizeof err);
    assert_int_equal(stat_of(f, "fake-close#a", "requests"), 3);
    embed_close(e);

    config(f, &cfg, "fake-slow-1500#a"); /* timeout: each attempt gives up after 200 ms */
    cfg.timeout_ms = 200;
    cfg.retries = 1;
    e = embed_open(&cfg, err, sizeof err);
    assert_non_null(e);
    expect_fail(e, "timed out after 200 ms", err, sizeof err);
    embed_close(e);

    config(f, &cfg, "fake-ok#badkey"); /* wrong key: 401, not retried */
    snprintf(cfg.api_key, sizeof cfg.api_key, "wrong");
    e = embed_open(&cfg, err, sizeof err);
    assert_non_null(e);
    expect_fail(e, "HTTP 401", err, sizeof err);
    assert_non_null(strstr(err, "Incorrect API key"));
    embed_close(e);
}

static void test_nothing_listening_and_bad_config(void **state) {
    (void)state;
    embed_config cfg;
    fake dead = {.pid = 0, .port = 9}; /* discard port: nothing listens on loopback */
    config(&dead, &cfg, "m");
    cfg.retries = 1;
    char err[512] = "";
    embedder *e = embed_open(&cfg, err, sizeof err);
    assert_non_null(e);
    expect_fail(e, "127.0.0.1:9/v1/embeddings", err, sizeof err);
    embed_close(e);
    /* credentials in the URL never reach a message */
    snprintf(cfg.url, sizeof cfg.url, "http://user:s3cret@127.0.0.1:9/v1/");
    e = embed_open(&cfg, err, sizeof err);
    assert_non_null(e);
    expect_fail(e, "http://127.0.0.1:9/v1/embeddings", err, sizeof err);
    assert_null(strstr(err, "s3cret"));
    embed_close(e);
    embed_config_default(&cfg);
    cfg.kind = EMBED_REMOTE;
    assert_null(embed_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "--embed-url"));
    snprintf(cfg.url, sizeof cfg.url, "ftp://x");
    snprintf(cfg.model, sizeof cfg.model, "m");
    assert_null(embed_open(&cfg, err, sizeof err));
}

int main(void) {
    log_init(LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_batching_and_order),
        cmocka_unit_test(test_learned_dimension),
        cmocka_unit_test(test_failure_modes),
        cmocka_unit_test(test_nothing_listening_and_bad_config),
    };
    int rc = cmocka_run_group_tests_name("embed_remote", tests, start_fake, stop_fake);
    curl_global_cleanup();
    return rc;
}
