/* llm — the OpenAI-compatible chat client (contract in llm.h).
 *
 * How a call runs: llm_chat() takes a slot from the counting semaphore (mutex `mu` + condvar `slot_cv`,
 * waiting at most until the call's deadline), keeps it for all its attempts and backoffs (so a failing
 * server is not hammered by more than `concurrency` callers), and gives it back at the end. Each attempt
 * is one curl easy handle with a timeout of min(timeout_ms, time left before the deadline). Backoffs are
 * timed waits on `stop_cv` (monotonic clock), so llm_shutdown() — which sets `stopping` and broadcasts both
 * condvars — wakes slot waiters and sleeping retries at once; a transfer in progress sees `stopping` from
 * curl's progress callback and is aborted within about a second. All of them return LLM_SHUTDOWN.
 *
 * Retry delay: Retry-After (whole seconds) when a 429 or 503 carries one, else backoff_ms << retry; capped
 * at 10 s. A retry whose delay would end past the deadline is not made: the call fails at once with the last
 * error. A 400 or 422 naming response_format is retried once at once without it (not counted against
 * `retries`), and the client then stops sending response_format on later calls (the server has no JSON
 * mode; the prompts ask for JSON anyway).
 *
 * Outcome mapping: transport failures and 408/429/5xx -> LLM_UNAVAILABLE once retries or the deadline run
 * out; other non-2xx -> LLM_REJECTED at once; a 2xx whose body is not JSON, has no choices[0].message.content
 * string (or an empty one), or is larger than LLM_MAX_RESPONSE -> LLM_BAD_REPLY at once (not retried: a
 * model answering garbage would answer garbage again, and the caller decides what to do with the rounds).
 *
 * State: configuration read-only after open; counters are C11 atomics; last_error under `err_mu`; the
 * per-user accounting (an open-addressing hash table of at most LLM_MAX_USERS users, then the shared
 * "(other)" bucket) under `acct_mu`. No lock is held during a transfer or while logging. The API key lives
 * only in the Authorization header line and is never logged or put in a message. */
#include "llm/llm.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/json.h"
#include "util/log.h"
#include "util/timeutil.h"

#define LLM_MAX_RESPONSE (8u << 20)
#define LLM_MAX_BACKOFF_MS 10000
#define LLM_MAX_USERS 100000
#define LLM_OTHER_USER "(other)"
#define LLM_URL_MAX 2048

#define DEF_TIMEOUT_MS 60000
#define DEF_RETRIES 3
#define DEF_BACKOFF_MS 500
#define DEF_CONCURRENCY 4
#define DEF_MAX_TOKENS 2048

typedef struct acct_ent {
    char *id; /* NULL: free slot */
    uint64_t hash;
    llm_usage u;
} acct_ent;

struct llm {
    /* configuration, read-only after open */
    char endpoint[LLM_URL_MAX + 32];
    char describe[LLM_URL_MAX + 300]; /* "model @ base_url", credentials removed */
    char shown[LLM_URL_MAX + 32];     /* the endpoint without user:password@, for messages */
    char model[256];
    char *auth; /* "Authorization: Bearer KEY" or NULL */
    int timeout_ms, retries, backoff_ms, concurrency, max_tokens;

    /* concurrency limit and shutdown */
    pthread_mutex_t mu;
    pthread_cond_t slot_cv; /* a slot was freed */
    pthread_cond_t stop_cv; /* only broadcast by llm_shutdown: wakes backoffs */
    int in_flight;          /* under mu */
    atomic_int stopping;    /* written under mu, read anywhere (progress callback) */
    atomic_int no_json_mode; /* the server refused response_format once */

    /* statistics */
    atomic_uint_least64_t calls, ok, failures, retries_n, prompt_tokens, completion_tokens;
    atomic_int_least64_t last_ok_us;
    pthread_mutex_t err_mu;
    int64_t last_error_us; /* under err_mu */
    char last_error[256];  /* under err_mu */

    /* per-user accounting, under acct_mu */
    pthread_mutex_t acct_mu;
    acct_ent *tab;
    size_t tab_cap, tab_n;
    llm_usage other;
    int other_used;
};

const char *llm_rc_name(int rc) {
    switch (rc) {
    case LLM_OK: return "ok";
    case LLM_UNAVAILABLE: return "unavailable";
    case LLM_REJECTED: return "rejected";
    case LLM_BAD_REPLY: return "bad_reply";
    case LLM_SHUTDOWN: return "shutdown";
    default: return "unknown";
    }
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- time helpers ------------------------------------------------------------------------------------ */

static struct timespec mono_abs(int64_t ns) {
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000)};
    return ts;
}

static int64_t ms_left(int64_t deadline_ns) {
    int64_t d = deadline_ns - time_mono_ns();
    return d <= 0 ? 0 : (d + 999999) / 1000000;
}

/* ---- slots and shutdown --------------------------------------------------------------------------------- */

/* Takes a slot before deadline_ns. Returns LLM_OK, LLM_SHUTDOWN or LLM_UNAVAILABLE (no slot in time). */
static int slot_take(llm *l, int64_t deadline_ns) {
    int rc = LLM_OK;
    pthread_mutex_lock(&l->mu);
    while (!atomic_load(&l->stopping) && l->in_flight >= l->concurrency) {
        if (time_mono_ns() >= deadline_ns) {
            rc = LLM_UNAVAILABLE;
            break;
        }
        struct timespec ts = mono_abs(deadline_ns);
        int e = pthread_cond_timedwait(&l->slot_cv, &l->mu, &ts);
        if (e && e != ETIMEDOUT && e != EINTR) {
            rc = LLM_UNAVAILABLE;
            break;
        }
    }
    if (atomic_load(&l->stopping)) rc = LLM_SHUTDOWN;
    if (rc == LLM_OK) l->in_flight++;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static void slot_give(llm *l) {
    pthread_mutex_lock(&l->mu);
    l->in_flight--;
    pthread_cond_signal(&l->slot_cv);
    pthread_mutex_unlock(&l->mu);
}

/* Waits until until_ns (monotonic) or shutdown. Returns 1 when shutting down. */
static int pause_until(llm *l, int64_t until_ns) {
    pthread_mutex_lock(&l->mu);
    while (!atomic_load(&l->stopping) && time_mono_ns() < until_ns) {
        struct timespec ts = mono_abs(until_ns);
        int e = pthread_cond_timedwait(&l->stop_cv, &l->mu, &ts);
        if (e && e != ETIMEDOUT && e != EINTR) break;
    }
    int stop = atomic_load(&l->stopping);
    pthread_mutex_unlock(&l->mu);
    return stop;
}

void llm_shutdown(llm *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    atomic_store(&l->stopping, 1);
    pthread_cond_broadcast(&l->slot_cv);
    pthread_cond_broadcast(&l->stop_cv);
    pthread_mutex_unlock(&l->mu);
}

/* ---- per-user accounting ------------------------------------------------------------------------------ */

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The entry of id, or NULL (caller holds acct_mu). */
static acct_ent *acct_find(llm *l, const char *id, uint64_t h) {
    if (!l->tab_cap) return NULL;
    for (size_t i = (size_t)h & (l->tab_cap - 1);; i = (i + 1) & (l->tab_cap - 1)) {
        acct_ent *e = &l->tab[i];
        if (!e->id) return NULL;
        if (e->hash == h && !strcmp(e->id, id)) return e;
    }
}

/* Doubles the table (caller holds acct_mu). Returns 0 or -1 when out of memory (the table is unchanged). */
static int acct_grow(llm *l) {
    size_t cap = l->tab_cap ? l->tab_cap * 2 : 64;
    acct_ent *t = calloc(cap, sizeof *t);
    if (!t) return -1;
    for (size_t i = 0; i < l->tab_cap; i++) {
        if (!l->tab[i].id) continue;
        size_t j = (size_t)l->tab[i].hash & (cap - 1);
        while (t[j].id) j = (j + 1) & (cap - 1);
        t[j] = l->tab[i];
    }
    free(l->tab);
    l->tab = t;
    l->tab_cap = cap;
    return 0;
}

static void acct_charge(llm *l, const char *id, int64_t pt, int64_t ct) {
    if (!id || !id[0]) return;
    uint64_t h = hash_str(id);
    int overflow = 0;
    pthread_mutex_lock(&l->acct_mu);
    llm_usage *u = NULL;
    acct_ent *e = acct_find(l, id, h);
    if (e) {
        u = &e->u;
    } else if (l->tab_n < LLM_MAX_USERS && ((l->tab_n + 1) * 2 <= l->tab_cap || acct_grow(l) == 0)) {
        char *copy = strdup(id);
        if (copy) {
            size_t i = (size_t)h & (l->tab_cap - 1);
            while (l->tab[i].id) i = (i + 1) & (l->tab_cap - 1);
            l->tab[i].id = copy;
            l->tab[i].hash = h;
            l->tab_n++;
            u = &l->tab[i].u;
        }
    }
    if (!u) {
        overflow = !l->other_used;
        l->other_used = 1;
        u = &l->other;
    }
    u->calls++;
    u->prompt_tokens += (uint64_t)pt;
    u->completion_tokens += (uint64_t)ct;
    pthread_mutex_unlock(&l->acct_mu);
    if (overflow)
        log_warn("llm: per-user token accounting is full (%d users or out of memory); further users are charged "
                 "to \"%s\"", LLM_MAX_USERS, LLM_OTHER_USER);
}

int llm_usage_of(llm *l, const char *user_id, llm_usage *out) {
    if (!l || !user_id) return -1;
    int rc = -1;
    pthread_mutex_lock(&l->acct_mu);
    acct_ent *e = acct_find(l, user_id, hash_str(user_id));
    if (e) {
        *out = e->u;
        rc = 0;
    } else if (l->other_used && !strcmp(user_id, LLM_OTHER_USER)) {
        *out = l->other;
        rc = 0;
    }
    pthread_mutex_unlock(&l->acct_mu);
    return rc;
}

void llm_usage_each(llm *l, void (*fn)(void *ctx, const char *user_id, const llm_usage *u), void *ctx) {
    if (!l || !fn) return;
    pthread_mutex_lock(&l->acct_mu);
    for (size_t i = 0; i < l->tab_cap; i++)
        if (l->tab[i].id) fn(ctx, l->tab[i].id, &l->tab[i].u);
    if (l->other_used) fn(ctx, LLM_OTHER_USER, &l->other);
    pthread_mutex_unlock(&l->acct_mu);
}

/* ---- statistics ----------------------------------------------------------------------------------------- */

static void note_error(llm *l, const char *msg) {
    pthread_mutex_lock(&l->err_mu);
    size_t n = strlen(msg); /* cut to fit (an error message: a cut is fine) */
    if (n >= sizeof l->last_error)
        n = sizeof l->last_error - 1;
    memcpy(l->last_error, msg, n);
    l->last_error[n] = '\0';
    l->last_error_us = time_now_us();
    pthread_mutex_unlock(&l->err_mu);
}

void llm_get_stats(llm *l, llm_stats *out) {
    memset(out, 0, sizeof *out);
    if (!l) return;
    out->calls = atomic_load(&l->calls);
    out->ok = atomic_load(&l->ok);
    out->failures = atomic_load(&l->failures);
    out->retries = atomic_load(&l->retries_n);
    out->prompt_tokens = atomic_load(&l->prompt_tokens);
    out->completion_tokens = atomic_load(&l->completion_tokens);
    out->last_ok_us = atomic_load(&l->last_ok_us);
    pthread_mutex_lock(&l->mu);
    out->in_flight = l->in_flight;
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_lock(&l->err_mu);
    out->last_error_us = l->last_error_us;
    snprintf(out->last_error, sizeof out->last_error, "%s", l->last_error);
    pthread_mutex_unlock(&l->err_mu);
}

/* ---- one HTTP attempt ----------------------------------------------------------------------------------- */

typedef struct xfer {
    llm *l;
    char *p; /* response body, NUL-terminated */
    size_t n, cap;
    int too_big, oom;
    int retry_after; /* seconds, -1: none */
} xfer;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t k = size * nmemb;
    if (x->n + k > LLM_MAX_RESPONSE) {
        x->too_big = 1;
        return 0;
    }
    if (x->n + k + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 8192;
        while (cap < x->n + k + 1) cap *= 2;
        char *np = realloc(x->p, cap);
        if (!np) {
            x->oom = 1;
            return 0;
        }
        x->p = np;
        x->cap = cap;
    }
    memcpy(x->p + x->n, data, k);
    x->n += k;
    x->p[x->n] = 0;
    return k;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
    xfer *x = ud;
    size_t k = size * nmemb;
    if (k >= 5 && !strncmp(data, "HTTP/", 5)) x->retry_after = -1; /* a new response (after 100 Continue) */
    if (k > 12 && !strncasecmp(data, "Retry-After:", 12)) {
        size_t i = 12;
        while (i < k && (data[i] == ' ' || data[i] == '\t')) i++;
        long v = 0;
        int digits = 0;
        while (i < k && data[i] >= '0' && data[i] <= '9' && v < 1000000) v = v * 10 + (data[i++] - '0'), digits++;
        while (i < k && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) i++;
        if (digits && i == k) x->retry_after = (int)(v > 86400 ? 86400 : v); /* an HTTP date is ignored */
    }
    return k;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt, (void)dn, (void)ut, (void)un;
    const xfer *x = ud;
    return atomic_load(&x->l->stopping) ? 1 : 0;
}

/* A short, printable excerpt of a body for messages. */
static void excerpt(const char *body, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap && i < 160; i++) {
        unsigned char c = (unsigned char)body[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > 160 && o + 4 < cap) out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = 0;
}

/* The error text of a non-2xx answer: error.message, a string "error", or an excerpt of the body. */
static void error_text(const xfer *x, char *out, size_t cap) {
    cJSON *e = cJSON_ParseWithLength(x->p ? x->p : "", x->n);
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(e, "error");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(er, "message");
    if (cJSON_IsString(msg)) snprintf(out, cap, "%.200s", msg->valuestring);
    else if (cJSON_IsString(er)) snprintf(out, cap, "%.200s", er->valuestring);
    else excerpt(x->p ? x->p : "", x->n, out, cap);
    cJSON_Delete(e);
}

/* The request body; malloc'd or NULL when out of memory. */
static char *request_body(const llm *l, const char *system, const char *user, int json_mode) {
    jw w;
    jw_init(&w);
    jw_obj(&w);
    jw_kstr(&w, "model", l->model);
    jw_key(&w, "messages");
    jw_arr(&w);
    if (system) {
        jw_obj(&w);
        jw_kstr(&w, "role", "system");
        jw_kstr(&w, "content", system);
        jw_obj_end(&w);
    }
    jw_obj(&w);
    jw_kstr(&w, "role", "user");
    jw_kstr(&w, "content", user);
    jw_obj_end(&w);
    jw_arr_end(&w);
    jw_kint(&w, "temperature", 0);
    if (l->max_tokens > 0) jw_kint(&w, "max_tokens", l->max_tokens);
    if (json_mode) {
        jw_key(&w, "response_format");
        jw_obj(&w);
        jw_kstr(&w, "type", "json_object");
        jw_obj_end(&w);
    }
    jw_obj_end(&w);
    return jw_take(&w, NULL);
}

static int64_t estimate_tokens(size_t bytes) { return (int64_t)((bytes + 3) / 4); }

static int usage_field(const cJSON *usage, const char *key, int64_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e15) return -1;
    *out = (int64_t)v->valuedouble;
    return 0;
}

/* Reads a 2xx body into out. Returns 0, or -1 with why. */
static int parse_reply(const llm *l, const xfer *x, size_t prompt_bytes, llm_reply *out, char *why, size_t whylen) {
    char ex[200];
    cJSON *root = cJSON_ParseWithLength(x->p ? x->p : "", x->n);
    if (!root) {
        excerpt(x->p ? x->p : "", x->n, ex, sizeof ex);
        return fail(why, whylen, "llm: %s answered 200 with a body that is not JSON: %s", l->shown, ex);
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    const cJSON *c0 = cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!cJSON_IsString(content) || !content->valuestring[0]) {
        const char *what = "empty message content";
        if (!c0) what = "no choices";
        else if (!msg) what = "no choices[0].message";
        else if (!content || cJSON_IsNull(content)) what = "no message content";
        else if (!cJSON_IsString(content)) what = "message content that is not a string";
        char etext[220] = "";
        const cJSON *er = cJSON_GetObjectItemCaseSensitive(root, "error");
        if (er) error_text(x, etext, sizeof etext);
        cJSON_Delete(root);
        return fail(why, whylen, "llm: %s answered 200 with %s%s%s", l->shown, what, etext[0] ? ": " : "", etext);
    }
    size_t clen = strlen(content->valuestring);
    out->content = malloc(clen + 1);
    if (!out->content) {
        cJSON_Delete(root);
        return fail(why, whylen, "llm: out of memory reading the answer");
    }
    memcpy(out->content, content->valuestring, clen + 1);
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(root, "usage");
    if (usage_field(usage, "prompt_tokens", &out->prompt_tokens)) out->prompt_tokens = estimate_tokens(prompt_bytes);
    if (usage_field(usage, "completion_tokens", &out->completion_tokens))
        out->completion_tokens = estimate_tokens(clen);
    cJSON_Delete(root);
    return 0;
}

enum verdict { V_OK, V_RETRY, V_REJECTED, V_BAD, V_SHUTDOWN, V_NO_JSON_MODE };

/* One POST. Returns a verdict; why holds the error of anything but V_OK; *status the HTTP status (0: none). */
static enum verdict attempt_once(llm *l, const char *body, long timeout_ms, size_t prompt_bytes, int attempt,
                                 int json_mode, llm_reply *out, long *status, int *retry_after, char *why,
                                 size_t whylen) {
    xfer x = {.l = l, .retry_after = -1};
    enum verdict v = V_RETRY;
    *status = 0;
    *retry_after = -1;
    CURL *c = curl_easy_init();
    if (!c) {
        fail(why, whylen, "llm: cannot create a curl handle");
        return V_RETRY;
    }
    struct curl_slist *h = NULL, *h2;
    int hdr_ok = 1;
    const char *lines[] = {"Content-Type: application/json", "Expect:", l->auth};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        if (!lines[i]) continue;
        if (!(h2 = curl_slist_append(h, lines[i]))) hdr_ok = 0;
        else h = h2;
    }
    if (!hdr_ok) {
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        fail(why, whylen, "llm: out of memory building the request headers");
        return V_RETRY;
    }
    curl_easy_setopt(c, CURLOPT_URL, l->endpoint);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "memfuse-llm/1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (cc == CURLE_ABORTED_BY_CALLBACK || atomic_load(&l->stopping)) {
        fail(why, whylen, "llm: shut down");
        v = V_SHUTDOWN;
    } else if (cc != CURLE_OK) {
        if (x.too_big) {
            fail(why, whylen, "llm: answer from %s is larger than %u bytes", l->shown, LLM_MAX_RESPONSE);
            v = V_BAD;
        } else if (x.oom) {
            fail(why, whylen, "llm: out of memory reading the answer from %s", l->shown);
            v = V_BAD;
        } else if (cc == CURLE_OPERATION_TIMEDOUT) {
            fail(why, whylen, "llm: %s timed out after %ld ms (attempt %d)", l->shown, timeout_ms, attempt);
        } else {
            fail(why, whylen, "llm: %s: %s (attempt %d)", l->shown, curl_easy_strerror(cc), attempt);
        }
    } else if (*status >= 200 && *status < 300) {
        v = parse_reply(l, &x, prompt_bytes, out, why, whylen) ? V_BAD : V_OK;
    } else {
        char et[220];
        error_text(&x, et, sizeof et);
        fail(why, whylen, "llm: HTTP %ld from %s: %s (attempt %d)", *status, l->shown, et, attempt);
        if ((*status == 400 || *status == 422) && json_mode &&
            (strstr(et, "response_format") || (x.p && strstr(x.p, "response_format"))))
            v = V_NO_JSON_MODE;
        else if (*status == 408 || *status == 429 || *status >= 500)
            v = V_RETRY;
        else
            v = V_REJECTED;
        if (*status == 429 || *status == 503) *retry_after = x.retry_after;
    }
    free(x.p);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return v;
}

/* ---- the call ------------------------------------------------------------------------------------------- */

/* Attempts with retries while holding a slot. Returns enum llm_rc; why says why on failure. */
static int run_attempts(llm *l, const char *system, const char *user, int json_mode, int64_t deadline_ns,
                        int budget_ms, llm_reply *out, char *why, size_t whylen) {
    int send_rf = json_mode && !atomic_load(&l->no_json_mode);
    char *body = request_body(l, system, user, send_rf);
    if (!body) {
        fail(why, whylen, "llm: out of memory building the request");
        return LLM_UNAVAILABLE;
    }
    size_t prompt_bytes = (system ? strlen(system) : 0) + strlen(user);
    int rc = LLM_UNAVAILABLE, retries_used = 0, rf_dropped = 0;
    char last[512] = "";
    for (int attempt = 1;; attempt++) {
        int64_t left = ms_left(deadline_ns);
        if (left <= 0) {
            fail(why, whylen, "llm: deadline of %d ms reached after %d attempt%s; last: %s", budget_ms, attempt - 1,
                 attempt == 2 ? "" : "s", last);
            rc = LLM_UNAVAILABLE;
            break;
        }
        long status;
        int retry_after;
        enum verdict v = attempt_once(l, body, (long)(left < l->timeout_ms ? left : l->timeout_ms), prompt_bytes,
                                      attempt, send_rf, out, &status, &retry_after, last, sizeof last);
        out->attempts = attempt;
        if (v == V_OK) {
            rc = LLM_OK;
            break;
        }
        if (v == V_SHUTDOWN || v == V_BAD || v == V_REJECTED) {
            rc = v == V_SHUTDOWN ? LLM_SHUTDOWN : v == V_BAD ? LLM_BAD_REPLY : LLM_REJECTED;
            fail(why, whylen, "%s", last);
            break;
        }
        if (v == V_NO_JSON_MODE && !rf_dropped) {
            char *plain = request_body(l, system, user, 0);
            if (!plain) {
                fail(why, whylen, "llm: out of memory building the request");
                rc = LLM_UNAVAILABLE;
                break;
            }
            free(body);
            body = plain;
            send_rf = 0;
            rf_dropped = 1;
            if (!atomic_exchange(&l->no_json_mode, 1))
                log_info("llm: %s refused response_format; JSON mode is no longer requested from it", l->shown);
            atomic_fetch_add(&l->retries_n, 1);
            continue;
        }
        if (v == V_NO_JSON_MODE) { /* refused again without it: the request itself is wrong */
            rc = LLM_REJECTED;
            fail(why, whylen, "%s", last);
            break;
        }
        /* V_RETRY */
        if (retries_used >= l->retries) {
            fail(why, whylen, "%s; gave up after %d attempt%s", last, attempt, attempt == 1 ? "" : "s");
            rc = LLM_UNAVAILABLE;
            break;
        }
        int64_t delay_ms = retry_after >= 0 ? (int64_t)retry_after * 1000
                                            : (int64_t)l->backoff_ms << (retries_used < 16 ? retries_used : 16);
        if (delay_ms > LLM_MAX_BACKOFF_MS) delay_ms = LLM_MAX_BACKOFF_MS;
        int64_t until = time_mono_ns() + delay_ms * 1000000;
        if (until >= deadline_ns) {
            fail(why, whylen, "%s; no retry: the deadline of %d ms comes before the next attempt (in %lld ms)", last,
                 budget_ms, (long long)delay_ms);
            rc = LLM_UNAVAILABLE;
            break;
        }
        log_debug("llm: retrying in %lld ms: %s", (long long)delay_ms, last);
        if (pause_until(l, until)) {
            fail(why, whylen, "llm: shut down while waiting to retry (after %d attempt%s)", attempt,
                 attempt == 1 ? "" : "s");
            rc = LLM_SHUTDOWN;
            break;
        }
        retries_used++;
        atomic_fetch_add(&l->retries_n, 1);
    }
    free(body);
    return rc;
}

/* Masks the API key wherever it appears in s (servers may quote the key they refused in their message). */
static void redact_key(const llm *l, char *s) {
    static const char prefix[] = "Authorization: Bearer ";
    if (!l->auth) return;
    const char *key = l->auth + sizeof prefix - 1;
    size_t kl = strlen(key);
    if (kl < 4) return;
    for (char *p = strstr(s, key); p; p = strstr(p, key)) {
        memset(p, '*', 3);
        memmove(p + 3, p + kl, strlen(p + kl) + 1);
        p += 3;
    }
}

/* The default deadline: every attempt's timeout plus every backoff. */
static int default_budget_ms(const llm *l) {
    int64_t total = (int64_t)(l->retries + 1) * l->timeout_ms;
    for (int i = 0; i < l->retries; i++) {
        int64_t d = (int64_t)l->backoff_ms << (i < 16 ? i : 16);
        total += d > LLM_MAX_BACKOFF_MS ? LLM_MAX_BACKOFF_MS : d;
    }
    return total > 0x7fffffff ? 0x7fffffff : (int)total;
}

int llm_chat(llm *l, const char *user_id, const char *system, const char *user, int json_mode, int deadline_ms,
             llm_reply *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (err && errlen) err[0] = 0;
    if (!l) {
        fail(err, errlen, "llm: not configured");
        return LLM_UNAVAILABLE;
    }
    int64_t t0 = time_mono_ns();
    atomic_fetch_add(&l->calls, 1);
    if (!user) user = "";
    int budget = deadline_ms > 0 ? deadline_ms : default_budget_ms(l);
    int64_t deadline = t0 + (int64_t)budget * 1000000;
    char why[600] = "";
    int rc = slot_take(l, deadline);
    if (rc == LLM_SHUTDOWN) {
        fail(why, sizeof why, "llm: shut down");
    } else if (rc != LLM_OK) {
        fail(why, sizeof why, "llm: no free slot within the deadline of %d ms (%d requests in flight at most)", budget,
             l->concurrency);
    } else {
        rc = run_attempts(l, system, user, json_mode, deadline, budget, out, why, sizeof why);
        slot_give(l);
    }
    int attempts = out->attempts;
    if (rc != LLM_OK) {
        redact_key(l, why);
        llm_reply_free(out);
        out->attempts = attempts;
        atomic_fetch_add(&l->failures, 1);
        if (rc != LLM_SHUTDOWN) {
            note_error(l, why);
            log_warn("llm: call failed (%s): %s", llm_rc_name(rc), why);
        }
        fail(err, errlen, "%s", why);
        out->latency_us = (time_mono_ns() - t0) / 1000;
        return rc;
    }
    atomic_fetch_add(&l->ok, 1);
    atomic_fetch_add(&l->prompt_tokens, (uint64_t)out->prompt_tokens);
    atomic_fetch_add(&l->completion_tokens, (uint64_t)out->completion_tokens);
    atomic_store(&l->last_ok_us, time_now_us());
    acct_charge(l, user_id, out->prompt_tokens, out->completion_tokens);
    out->latency_us = (time_mono_ns() - t0) / 1000;
    return LLM_OK;
}

void llm_reply_free(llm_reply *r) {
    if (!r) return;
    free(r->content);
    memset(r, 0, sizeof *r);
}

/* ---- open / close ------------------------------------------------------------------------------------- */

const char *llm_describe(const llm *l) { return l ? l->describe : "(no llm)"; }

/* Copies url into out without any user:password@ in its authority. */
static void strip_credentials(const char *url, char *out, size_t cap) {
    const char *sch = strstr(url, "://"), *at = NULL;
    if (sch) {
        const char *host = sch + 3, *end = host + strcspn(host, "/?#");
        for (const char *q = host; q < end; q++)
            if (*q == '@') at = q;
    }
    if (at) snprintf(out, cap, "%.*s%s", (int)(sch + 3 - url), url, at + 1);
    else snprintf(out, cap, "%s", url);
}

static void destroy(llm *l, int curl_inited) {
    if (!l) return;
    for (size_t i = 0; i < l->tab_cap; i++) free(l->tab[i].id);
    free(l->tab);
    if (l->auth) {
        memset(l->auth, 0, strlen(l->auth));
        free(l->auth);
    }
    free(l);
    if (curl_inited) curl_global_cleanup();
}

llm *llm_open(const llm_config *cfg, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!cfg || !cfg->base_url || !cfg->base_url[0]) {
        fail(err, errlen, "llm: a base URL is needed (e.g. http://127.0.0.1:11434)");
        return NULL;
    }
    if (strncmp(cfg->base_url, "http://", 7) && strncmp(cfg->base_url, "https://", 8)) {
        fail(err, errlen, "llm: the base URL must start with http:// or https://");
        return NULL;
    }
    if (strlen(cfg->base_url) >= LLM_URL_MAX) {
        fail(err, errlen, "llm: the base URL is longer than %d bytes", LLM_URL_MAX - 1);
        return NULL;
    }
    if (!cfg->model || !cfg->model[0]) {
        fail(err, errlen, "llm: a model name is needed");
        return NULL;
    }
    if (strlen(cfg->model) >= sizeof ((llm *)0)->model) {
        fail(err, errlen, "llm: the model name is too long");
        return NULL;
    }
    if (cfg->api_key && strpbrk(cfg->api_key, "\r\n")) {
        fail(err, errlen, "llm: the API key contains a line break");
        return NULL;
    }
    /* libcurl counts its initialisations: each open pairs with the cleanup in llm_close (as embed_remote). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fail(err, errlen, "llm: libcurl initialisation failed");
        return NULL;
    }
    llm *l = calloc(1, sizeof *l);
    if (!l) {
        curl_global_cleanup();
        fail(err, errlen, "llm: out of memory");
        return NULL;
    }
    /* {base}/v1/chat/completions whether the operator wrote the base, the base with /v1, or either with '/'. */
    char base[LLM_URL_MAX];
    snprintf(base, sizeof base, "%s", cfg->base_url);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') base[--bl] = 0;
    const char *suffix = "/v1/chat/completions";
    if (bl >= 20 && !strcmp(base + bl - 20, "/v1/chat/completions")) suffix = "";
    else if (bl >= 3 && !strcmp(base + bl - 3, "/v1")) suffix = "/chat/completions";
    snprintf(l->endpoint, sizeof l->endpoint, "%s%s", base, suffix);
    strip_credentials(l->endpoint, l->shown, sizeof l->shown);
    char shown_base[LLM_URL_MAX];
    strip_credentials(base, shown_base, sizeof shown_base);
    snprintf(l->model, sizeof l->model, "%s", cfg->model);
    snprintf(l->describe, sizeof l->describe, "%s @ %s", l->model, shown_base);
    if (cfg->api_key && cfg->api_key[0]) {
        size_t n = strlen(cfg->api_key) + sizeof "Authorization: Bearer ";
        l->auth = malloc(n);
        if (!l->auth) {
            destroy(l, 1);
            fail(err, errlen, "llm: out of memory");
            return NULL;
        }
        snprintf(l->auth, n, "Authorization: Bearer %s", cfg->api_key);
    }
    l->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : DEF_TIMEOUT_MS;
    l->retries = cfg->retries >= 0 ? (cfg->retries < 100 ? cfg->retries : 100) : DEF_RETRIES;
    l->backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : DEF_BACKOFF_MS;
    l->concurrency = cfg->concurrency > 0 ? cfg->concurrency : DEF_CONCURRENCY;
    l->max_tokens = cfg->max_tokens >= 0 ? cfg->max_tokens : DEF_MAX_TOKENS;

    pthread_condattr_t ca;
    int inited = 0;
    if (pthread_condattr_init(&ca) == 0) {
        if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_mutex_init(&l->mu, NULL) == 0) {
            inited = 1;
            if (pthread_cond_init(&l->slot_cv, &ca) == 0) {
                inited = 2;
                if (pthread_cond_init(&l->stop_cv, &ca) == 0) {
                    inited = 3;
                    if (pthread_mutex_init(&l->err_mu, NULL) == 0) {
                        inited = 4;
                        if (pthread_mutex_init(&l->acct_mu, NULL) == 0) inited = 5;
                    }
                }
            }
        }
        pthread_condattr_destroy(&ca);
    }
    if (inited != 5) {
        if (inited >= 4) pthread_mutex_destroy(&l->err_mu);
        if (inited >= 3) pthread_cond_destroy(&l->stop_cv);
        if (inited >= 2) pthread_cond_destroy(&l->slot_cv);
        if (inited >= 1) pthread_mutex_destroy(&l->mu);
        destroy(l, 1);
        fail(err, errlen, "llm: cannot create its locks");
        return NULL;
    }
    atomic_init(&l->stopping, 0);
    atomic_init(&l->no_json_mode, 0);
    atomic_init(&l->calls, 0);
    atomic_init(&l->ok, 0);
    atomic_init(&l->failures, 0);
    atomic_init(&l->retries_n, 0);
    atomic_init(&l->prompt_tokens, 0);
    atomic_init(&l->completion_tokens, 0);
    atomic_init(&l->last_ok_us, 0);
    return l;
}

void llm_close(llm *l) {
    if (!l) return;
    pthread_mutex_destroy(&l->acct_mu);
    pthread_mutex_destroy(&l->err_mu);
    pthread_cond_destroy(&l->stop_cv);
    pthread_cond_destroy(&l->slot_cv);
    pthread_mutex_destroy(&l->mu);
    destroy(l, 1);
}
