/* The chat client (src/llm/llm.c) against tests/fakes/fake_openai.py, started here on a loopback port with
 * an API key: the answer and its usage (sent or estimated), the base URL forms, retries (500s, 429 with
 * Retry-After) then success or giving up, 4xx rejected at once, malformed and empty answers, the fallback
 * for servers without JSON mode, the deadline (slow server, backoff longer than the time left), the
 * concurrency limit (seen by the fake as its max_in_flight), llm_shutdown waking a waiting and a retrying
 * call, per-user accounting and stats, the API key, and configuration errors. Request counts come from the
 * fake's /stats?model=NAME; every test uses model names of its own. Worker threads only record what they
 * saw; the asserts run on the main thread. */
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

#include <cjson/cJSON.h>

#include "llm/llm.h"
#include "util/log.h"
#include "util/timeutil.h"

#define API_KEY "sk-test-llm-456"

typedef struct fake {
    pid_t pid;
    int port;
    char base[64];
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
        execl("/usr/bin/python3", "python3", "tests/fakes/fake_openai.py", "--port", "0", "--api-key", API_KEY,
              (char *)NULL);
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
    if (!f) return -1;
    f->pid = pid;
    if (sscanf(line, "PORT %d", &f->port) != 1) {
        fprintf(stderr, "fake server did not start (got \"%s\")\n", line);
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
        free(f);
        return -1;
    }
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", f->port);
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

static size_t sink(char *d, size_t s, size_t n, void *ud) {
    char **buf = ud;
    size_t old = *buf ? strlen(*buf) : 0;
    char *nb = realloc(*buf, old + s * n + 1);
    if (!nb) return 0;
    *buf = nb;
    memcpy(*buf + old, d, s * n);
    (*buf)[old + s * n] = 0;
    return s * n;
}

/* GET (post == NULL) or POST a path of the fake; returns the parsed JSON answer (caller deletes). */
static cJSON *fake_call(const fake *f, const char *path, const char *post) {
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512], *body = NULL;
    snprintf(url, sizeof url, "%s%s", f->base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    if (post) curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    assert_non_null(body);
    cJSON *o = cJSON_Parse(body);
    free(body);
    assert_non_null(o);
    return o;
}

/* Requests the fake has seen for a model name. */
static int requests_of(const fake *f, const char *model) {
    CURL *c = curl_easy_init();
    char *esc = curl_easy_escape(c, model, 0), path[512];
    snprintf(path, sizeof path, "/stats?model=%s", esc);
    curl_free(esc);
    curl_easy_cleanup(c);
    cJSON *o = fake_call(f, path, NULL);
    int v = (int)cJSON_GetObjectItem(o, "requests")->valuedouble;
    cJSON_Delete(o);
    return v;
}

static void config(const fake *f, llm_config *cfg, const char *model) {
    memset(cfg, 0, sizeof *cfg);
    cfg->base_url = f->base;
    cfg->model = model;
    cfg->api_key = API_KEY;
    cfg->timeout_ms = 5000;
    cfg->retries = 2;
    cfg->backoff_ms = 10;
    cfg->concurrency = 4;
    cfg->max_tokens = 256;
}

static llm *open_ok(const llm_config *cfg) {
    char err[256] = "";
    llm *l = llm_open(cfg, err, sizeof err);
    if (!l) fail_msg("llm_open: %s", err);
    return l;
}

static int64_t now_ms(void) { return time_mono_ns() / 1000000; }

static int64_t ceil4(size_t n) { return (int64_t)((n + 3) / 4); }

#define SYS "You are a test."
#define USER "hello world"

static void test_ok_reply_and_usage(void **state) {
    fake *f = *state;
    llm_config cfg;
    config(f, &cfg, "fake-ok#ok");
    llm *l = open_ok(&cfg);
    /* describe: model and base, never the key */
    assert_non_null(strstr(llm_describe(l), "fake-ok#ok @ http://127.0.0.1:"));
    assert_null(strstr(llm_describe(l), API_KEY));
    llm_reply r;
    char err[512] = "x";
    assert_int_equal(llm_chat(l, "u1", SYS, USER, 1, 0, &r, err, sizeof err), LLM_OK);
    assert_string_equal(err, "");
    assert_string_equal(r.content, "{\"echo\": \"hello world\"}");
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.prompt_tokens, ceil4(strlen(SYS) + strlen(USER))); /* the fake's own count */
    assert_int_equal(r.completion_tokens, ceil4(strlen(r.content)));
    assert_true(r.latency_us > 0);
    llm_reply_free(&r);
    assert_null(r.content);
    /* no system message and JSON-looking text survive the request encoding */
    assert_int_equal(llm_chat(l, NULL, NULL, "quote \" back\\slash \xc3\xa9 \n end", 0, 0, &r, err, sizeof err), LLM_OK);
    cJSON *o = cJSON_Parse(r.content);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "echo")->valuestring, "quote \" back\\slash \xc3\xa9 \n end");
    cJSON_Delete(o);
    llm_reply_free(&r);
    assert_int_equal(requests_of(f, "fake-ok#ok"), 2);
    llm_close(l);

    /* the base URL with "/", "/v1", "/v1/" or the whole path all reach the same endpoint */
    const char *suffixes[] = {"/", "/v1", "/v1/", "/v1/chat/completions", "//"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char base[128];
        snprintf(base, sizeof base, "%s%s", f->base, suffixes[i]);
        config(f, &cfg, "fake-echo#base");
        cfg.base_url = base;
        l = open_ok(&cfg);
        if (llm_chat(l, NULL, SYS, "same", 0, 0, &r, err, sizeof err) != LLM_OK) fail_msg("base %s: %s", base, err);
        assert_string_equal(r.content, "same");
        llm_reply_free(&r);
        llm_close(l);
    }
    assert_int_equal(requests_of(f, "fake-echo#base"), 5);
}

static void test_usage_estimated_when_absent(void **state) {
    fake *f = *state;
    llm_config cfg;
    config(f, &cfg, "fake-nousage#a");
    llm *l = open_ok(&cfg);
    llm_reply r;
    char err[512];
    const char *user = "twelve bytes and some more";
    assert_int_equal(llm_chat(l, "u", SYS, user, 0, 0, &r, err, sizeof err), LLM_OK);
    assert_int_equal(r.prompt_tokens, ceil4(strlen(SYS) + strlen(user)));
    assert_int_equal(r.completion_tokens, ceil4(strlen(r.content)));
    llm_reply_free(&r);
    llm_close(l);
}

static void test_retries_then_success(void **state) {
    fake *f = *state;
    llm_config cfg;
    llm_reply r;
    char err[512];

    config(f, &cfg, "fake-flaky-2#a"); /* two 500s, then fine */
    llm *l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_OK);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(requests_of(f, "fake-flaky-2#a"), 3);
    llm_reply_free(&r);
    llm_stats st;
    llm_get_stats(l, &st);
    assert_int_equal(st.calls, 1);
    assert_int_equal(st.ok, 1);
    assert_int_equal(st.retries, 2);
    assert_int_equal(st.failures, 0);
    llm_close(l);

    /* 429 with "Retry-After: 0": the server's word beats a 5 s backoff */
    config(f, &cfg, "fake-429-2#a");
    cfg.backoff_ms = 5000;
    l = open_ok(&cfg);
    int64_t t0 = now_ms();
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_OK);
    assert_true(now_ms() - t0 < 3000);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(requests_of(f, "fake-429-2#a"), 3);
    llm_reply_free(&r);
    llm_close(l);

    /* 429 with "Retry-After: 1": waited for, although the backoff would be 10 ms */
    config(f, &cfg, "fake-429-1-1#b");
    l = open_ok(&cfg);
    t0 = now_ms();
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_OK);
    assert_true(now_ms() - t0 >= 950);
    assert_int_equal(r.attempts, 2);
    llm_reply_free(&r);
    llm_close(l);
}

static void test_gives_up(void **state) {
    fake *f = *state;
    llm_config cfg;
    llm_reply r;
    char err[512];

    config(f, &cfg, "fake-500#a");
    llm *l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, "u", SYS, USER, 1, 0, &r, err, sizeof err), LLM_UNAVAILABLE);
    assert_null(r.content);
    assert_int_equal(r.attempts, 3);
    if (!strstr(err, "HTTP 500") || !strstr(err, "failed on purpose") || !strstr(err, "gave up after 3 attempts"))
        fail_msg("unclear error: %s", err);
    assert_int_equal(requests_of(f, "fake-500#a"), 3);
    llm_stats st;
    llm_get_stats(l, &st);
    assert_int_equal(st.failures, 1);
    assert_int_equal(st.ok, 0);
    assert_int_equal(st.retries, 2);
    assert_non_null(strstr(st.last_error, "HTTP 500"));
    assert_true(st.last_error_us > 0);
    assert_int_equal(st.last_ok_us, 0);
    llm_usage u;
    assert_int_equal(llm_usage_of(l, "u", &u), -1); /* failures charge nothing */
    llm_close(l);

    config(f, &cfg, "fake-close#a"); /* connection dropped: retried, then reported */
    l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_UNAVAILABLE);
    assert_non_null(strstr(err, "attempt 3"));
    assert_int_equal(requests_of(f, "fake-close#a"), 3);
    llm_close(l);

    /* nothing listening (the discard port) */
    config(f, &cfg, "m");
    cfg.base_url = "http://127.0.0.1:9";
    cfg.retries = 1;
    l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_UNAVAILABLE);
    assert_non_null(strstr(err, "127.0.0.1:9/v1/chat/completions"));
    llm_close(l);
}

static void test_rejected_at_once(void **state) {
    fake *f = *state;
    llm_config cfg;
    llm_reply r;
    char err[512];

    config(f, &cfg, "fake-unknown-mode#a"); /* the fake answers 400 */
    llm *l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_REJECTED);
    assert_int_equal(r.attempts, 1);
    assert_non_null(strstr(err, "HTTP 400"));
    assert_non_null(strstr(err, "unknown fake mode"));
    assert_int_equal(requests_of(f, "fake-unknown-mode#a"), 1);
    llm_close(l);

    /* wrong key: 401 at once; the fake quotes the key it got, the client masks it in every message */
    config(f, &cfg, "fake-ok#badkey");
    cfg.api_key = "sk-wrong-key";
    l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_REJECTED);
    assert_non_null(strstr(err, "HTTP 401"));
    assert_non_null(strstr(err, "Incorrect API key provided: ***"));
    assert_null(strstr(err, "sk-wrong-key"));
    assert_int_equal(r.attempts, 1);
    llm_stats st;
    llm_get_stats(l, &st);
    assert_null(strstr(st.last_error, "sk-wrong-key"));
    assert_non_null(strstr(st.last_error, "HTTP 401"));
    llm_close(l);

    /* no key at all: no Authorization header, so the fake refuses too */
    cfg.api_key = "";
    l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_REJECTED);
    assert_non_null(strstr(err, "HTTP 401"));
    llm_close(l);
    /* with the right key (as every other test): accepted */
    cfg.api_key = API_KEY;
    l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_OK);
    llm_reply_free(&r);
    llm_close(l);
}

static void test_bad_replies(void **state) {
    fake *f = *state;
    llm_config cfg;
    llm_reply r;
    char err[512];

    /* 200 with a body that is not JSON: LLM_BAD_REPLY, not retried */
    config(f, &cfg, "fake-malformed#a");
    llm *l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_BAD_REPLY);
    assert_null(r.content);
    assert_non_null(strstr(err, "not JSON"));
    assert_int_equal(requests_of(f, "fake-malformed#a"), 1);
    llm_close(l);

    config(f, &cfg, "fake-nochoices#a");
    l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_BAD_REPLY);
    assert_non_null(strstr(err, "no choices"));
    assert_int_equal(requests_of(f, "fake-nochoices#a"), 1);
    llm_close(l);

    /* an empty content is no usable answer either */
    config(f, &cfg, "fake-echo#empty");
    l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, "", 1, 0, &r, err, sizeof err), LLM_BAD_REPLY);
    assert_non_null(strstr(err, "empty message content"));
    llm_close(l);
}

static void test_no_json_mode_fallback(void **state) {
    fake *f = *state;
    llm_config cfg;
    llm_reply r;
    char err[512];
    config(f, &cfg, "fake-nojson#a");
    llm *l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_OK);
    assert_int_equal(r.attempts, 2); /* 400 naming response_format, then without it */
    assert_string_equal(r.content, "{\"echo\": \"hello world\"}");
    llm_reply_free(&r);
    assert_int_equal(requests_of(f, "fake-nojson#a"), 2);
    /* remembered: the next call does not ask for JSON mode again */
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_OK);
    assert_int_equal(r.attempts, 1);
    llm_reply_free(&r);
    assert_int_equal(requests_of(f, "fake-nojson#a"), 3);
    llm_close(l);
    /* no retries allowed: the fallback is still made (it is not a retry of a failure) */
    config(f, &cfg, "fake-nojson#b");
    cfg.retries = 0;
    l = open_ok(&cfg);
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_OK);
    llm_reply_free(&r);
    /* without json_mode, nothing to fall back from */
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 0, 0, &r, err, sizeof err), LLM_OK);
    assert_int_equal(r.attempts, 1);
    llm_reply_free(&r);
    llm_close(l);
}

static void test_deadline(void **state) {
    fake *f = *state;
    llm_config cfg;
    llm_reply r;
    char err[512];

    /* a slow server and a deadline far below the per-attempt timeout */
    config(f, &cfg, "fake-slow-3000#a");
    cfg.timeout_ms = 20000;
    llm *l = open_ok(&cfg);
    int64_t t0 = now_ms();
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 400, &r, err, sizeof err), LLM_UNAVAILABLE);
    int64_t took = now_ms() - t0;
    if (took >= 1200) fail_msg("a 400 ms deadline took %lld ms", (long long)took);
    assert_non_null(strstr(err, "timed out"));
    assert_true(r.latency_us >= 350000);
    llm_close(l);

    /* a backoff that would end past the deadline is not waited for */
    config(f, &cfg, "fake-500#deadline");
    cfg.backoff_ms = 5000;
    cfg.retries = 3;
    l = open_ok(&cfg);
    t0 = now_ms();
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 1000, &r, err, sizeof err), LLM_UNAVAILABLE);
    took = now_ms() - t0;
    if (took >= 3000) fail_msg("a 1000 ms deadline took %lld ms", (long long)took);
    assert_non_null(strstr(err, "deadline"));
    assert_non_null(strstr(err, "HTTP 500"));
    assert_int_equal(requests_of(f, "fake-500#deadline"), 1);
    llm_close(l);
}

typedef struct worker {
    llm *l;
    const char *user_id, *text;
    int deadline_ms;
    int rc;
    int64_t took_ms;
    char err[512];
} worker;

static void *call_worker(void *arg) {
    worker *w = arg;
    llm_reply r;
    int64_t t0 = now_ms();
    w->rc = llm_chat(w->l, w->user_id, SYS, w->text ? w->text : USER, 1, w->deadline_ms, &r, w->err, sizeof w->err);
    w->took_ms = now_ms() - t0;
    llm_reply_free(&r);
    return NULL;
}

static int chat_stat(const fake *f, const char *field) {
    cJSON *o = fake_call(f, "/stats/chat", NULL);
    int v = (int)cJSON_GetObjectItem(o, field)->valuedouble;
    cJSON_Delete(o);
    return v;
}

/* Waits for requests of earlier tests (slow ones the client gave up on) to end, then clears the chat stats. */
static void fake_reset_quiet(const fake *f) {
    for (int i = 0; i < 100 && chat_stat(f, "in_flight") > 0; i++) usleep(100 * 1000);
    assert_int_equal(chat_stat(f, "in_flight"), 0);
    cJSON_Delete(fake_call(f, "/control/reset", "{}"));
}

static void test_concurrency_limit(void **state) {
    fake *f = *state;
    llm_config cfg;
    worker w[6];

    /* six callers, two slots: the fake never sees more than two requests at once */
    fake_reset_quiet(f);
    config(f, &cfg, "fake-slow-400#cc2");
    cfg.concurrency = 2;
    llm *l = open_ok(&cfg);
    memset(w, 0, sizeof w);
    for (int i = 0; i < 6; i++) w[i].l = l;
    int64_t t0 = now_ms();
    tu_run_threads(6, call_worker, w, sizeof w[0]);
    int64_t took = now_ms() - t0;
    for (int i = 0; i < 6; i++)
        if (w[i].rc != LLM_OK) fail_msg("worker %d: %s: %s", i, llm_rc_name(w[i].rc), w[i].err);
    assert_int_equal(chat_stat(f, "max_in_flight"), 2);
    assert_true(took >= 3 * 400 - 50); /* three rounds of two */
    llm_stats st;
    llm_get_stats(l, &st);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.ok, 6);
    llm_close(l);

    /* the same with six slots: the fake does see them overlap (so the measure above means something) */
    fake_reset_quiet(f);
    config(f, &cfg, "fake-slow-400#cc6");
    cfg.concurrency = 6;
    l = open_ok(&cfg);
    memset(w, 0, sizeof w);
    for (int i = 0; i < 6; i++) w[i].l = l;
    tu_run_threads(6, call_worker, w, sizeof w[0]);
    for (int i = 0; i < 6; i++) assert_int_equal(w[i].rc, LLM_OK);
    assert_true(chat_stat(f, "max_in_flight") > 2);
    llm_close(l);

    /* a caller that cannot get a slot within its deadline gives up with a message saying so */
    config(f, &cfg, "fake-slow-1500#cc1");
    cfg.concurrency = 1;
    l = open_ok(&cfg);
    memset(w, 0, sizeof w);
    w[0].l = w[1].l = l;
    w[1].deadline_ms = 300;
    pthread_t a, b;
    assert_int_equal(pthread_create(&a, NULL, call_worker, &w[0]), 0);
    usleep(200 * 1000);
    assert_int_equal(pthread_create(&b, NULL, call_worker, &w[1]), 0);
    pthread_join(b, NULL);
    pthread_join(a, NULL);
    assert_int_equal(w[0].rc, LLM_OK);
    assert_int_equal(w[1].rc, LLM_UNAVAILABLE);
    assert_non_null(strstr(w[1].err, "no free slot"));
    assert_true(w[1].took_ms < 1000);
    llm_close(l);
}

static void test_shutdown_wakes_calls(void **state) {
    fake *f = *state;
    llm_config cfg;
    worker w[3];
    memset(w, 0, sizeof w);

    /* one slot: w0 is in a slow transfer, w1 waits for the slot; w2 (another llm) sleeps between retries */
    config(f, &cfg, "fake-slow-5000#sd");
    cfg.concurrency = 1;
    cfg.timeout_ms = 20000;
    llm *l = open_ok(&cfg);
    llm_config cfg2;
    config(f, &cfg2, "fake-500#sd");
    cfg2.backoff_ms = 8000;
    cfg2.retries = 3;
    llm *l2 = open_ok(&cfg2);
    w[0].l = w[1].l = l;
    w[2].l = l2;
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, call_worker, &w[i]), 0);
        usleep(150 * 1000);
    }
    usleep(300 * 1000);
    llm_stats st;
    llm_get_stats(l, &st);
    assert_int_equal(st.in_flight, 1);
    int64_t t0 = now_ms();
    llm_shutdown(l);
    llm_shutdown(l2);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    int64_t took = now_ms() - t0;
    for (int i = 0; i < 3; i++)
        if (w[i].rc != LLM_SHUTDOWN) fail_msg("worker %d: %s: %s", i, llm_rc_name(w[i].rc), w[i].err);
    if (took >= 3000) fail_msg("shutdown took %lld ms to wake the calls", (long long)took);
    assert_int_equal(requests_of(f, "fake-500#sd"), 1);
    /* after shutdown every call returns at once */
    llm_reply r;
    char err[256];
    t0 = now_ms();
    assert_int_equal(llm_chat(l, NULL, SYS, USER, 1, 0, &r, err, sizeof err), LLM_SHUTDOWN);
    assert_true(now_ms() - t0 < 500);
    assert_null(r.content);
    llm_get_stats(l, &st);
    assert_int_equal(st.in_flight, 0);
    llm_close(l);
    llm_close(l2);
}

typedef struct seen {
    int n;
    uint64_t calls;
    int saw_a, saw_b;
} seen;

static void each_user(void *ctx, const char *id, const llm_usage *u) {
    seen *s = ctx;
    s->n++;
    s->calls += u->calls;
    if (!strcmp(id, "user-a")) s->saw_a = 1;
    if (!strcmp(id, "user-b")) s->saw_b = 1;
}

static void test_accounting_and_stats(void **state) {
    fake *f = *state;
    llm_config cfg;
    config(f, &cfg, "fake-ok#acct");
    llm *l = open_ok(&cfg);
    llm_reply r;
    char err[512];
    int64_t pa = 0, ca = 0, pb = 0, cb = 0, ptotal = 0, ctotal = 0;
    const char *texts[] = {"one", "a longer message for user a", "third"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(llm_chat(l, "user-a", SYS, texts[i], 1, 0, &r, err, sizeof err), LLM_OK);
        pa += r.prompt_tokens, ca += r.completion_tokens;
        llm_reply_free(&r);
    }
    assert_int_equal(llm_chat(l, "user-b", SYS, "b", 1, 0, &r, err, sizeof err), LLM_OK);
    pb += r.prompt_tokens, cb += r.completion_tokens;
    llm_reply_free(&r);
    assert_int_equal(llm_chat(l, NULL, SYS, "nobody", 1, 0, &r, err, sizeof err), LLM_OK); /* not charged */
    ptotal = pa + pb + r.prompt_tokens, ctotal = ca + cb + r.completion_tokens;
    llm_reply_free(&r);

    llm_usage u;
    assert_int_equal(llm_usage_of(l, "user-a", &u), 0);
    assert_int_equal(u.calls, 3);
    assert_int_equal(u.prompt_tokens, pa);
    assert_int_equal(u.completion_tokens, ca);
    assert_int_equal(llm_usage_of(l, "user-b", &u), 0);
    assert_int_equal(u.calls, 1);
    assert_int_equal(u.prompt_tokens, pb);
    assert_int_equal(u.completion_tokens, cb);
    assert_int_equal(llm_usage_of(l, "user-c", &u), -1);
    assert_int_equal(llm_usage_of(l, "(other)", &u), -1);
    seen s = {0};
    llm_usage_each(l, each_user, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.calls, 4);
    assert_true(s.saw_a && s.saw_b);

    llm_stats st;
    llm_get_stats(l, &st);
    assert_int_equal(st.calls, 5);
    assert_int_equal(st.ok, 5);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.retries, 0);
    assert_int_equal(st.prompt_tokens, ptotal);
    assert_int_equal(st.completion_tokens, ctotal);
    assert_int_equal(st.in_flight, 0);
    assert_true(st.last_ok_us > 0);
    assert_int_equal(st.last_error_us, 0);
    assert_string_equal(st.last_error, "");
    llm_close(l);

    /* many users from many threads: every call charged once */
    config(f, &cfg, "fake-ok#acct-threads");
    l = open_ok(&cfg);
    worker w[8];
    char ids[8][16];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 8; i++) {
        snprintf(ids[i], sizeof ids[i], "t%d", i % 3);
        w[i].l = l;
        w[i].user_id = ids[i];
    }
    tu_run_threads(8, call_worker, w, sizeof w[0]);
    s = (seen){0};
    llm_usage_each(l, each_user, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.calls, 8);
    llm_close(l);
}

static void test_bad_config(void **state) {
    (void)state;
    char err[256];
    llm_config cfg = {0};
    assert_null(llm_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "base URL"));
    cfg.base_url = "ftp://127.0.0.1";
    cfg.model = "m";
    assert_null(llm_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "http://"));
    cfg.base_url = "http://127.0.0.1:9";
    cfg.model = "";
    assert_null(llm_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "model"));
    cfg.model = "m";
    cfg.api_key = "bad\r\nX-Injected: 1";
    assert_null(llm_open(&cfg, err, sizeof err));
    /* credentials in the URL reach neither llm_describe nor a message */
    cfg.api_key = NULL;
    cfg.base_url = "http://user:s3cret@127.0.0.1:9/v1/";
    cfg.retries = 0;
    llm *l = llm_open(&cfg, err, sizeof err);
    assert_non_null(l);
    assert_string_equal(llm_describe(l), "m @ http://127.0.0.1:9/v1");
    llm_reply r;
    assert_int_equal(llm_chat(l, NULL, "s", "u", 0, 0, &r, err, sizeof err), LLM_UNAVAILABLE);
    assert_non_null(strstr(err, "http://127.0.0.1:9/v1/chat/completions"));
    assert_null(strstr(err, "s3cret"));
    llm_close(l);
    assert_string_equal(llm_rc_name(LLM_OK), "ok");
    assert_string_equal(llm_rc_name(LLM_SHUTDOWN), "shutdown");
    assert_string_equal(llm_rc_name(99), "unknown");
}

int main(void) {
    log_init(LOG_OFF); /* failures are provoked on purpose; their messages are checked through err */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_reply_and_usage),
        cmocka_unit_test(test_usage_estimated_when_absent),
        cmocka_unit_test(test_retries_then_success),
        cmocka_unit_test(test_gives_up),
        cmocka_unit_test(test_rejected_at_once),
        cmocka_unit_test(test_bad_replies),
        cmocka_unit_test(test_no_json_mode_fallback),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_concurrency_limit),
        cmocka_unit_test(test_shutdown_wakes_calls),
        cmocka_unit_test(test_accounting_and_stats),
        cmocka_unit_test(test_bad_config),
    };
    int rc = cmocka_run_group_tests_name("llm", tests, start_fake, stop_fake);
    curl_global_cleanup();
    return rc;
}
