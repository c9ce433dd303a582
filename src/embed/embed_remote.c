/* embed_remote — client of an OpenAI-compatible embeddings endpoint (OpenAI, Ollama, TEI, vLLM, ...).
 *
 * POST {base}/v1/embeddings with {"model": M, "input": [texts], "encoding_format": "float"} and
 * "Authorization: Bearer KEY" when a key is set; the answer's data[i].embedding (placed by data[i].index)
 * become the rows, L2-normalised here (not every server normalises). Texts are sent in requests of at most
 * batch_max. A request that times out, cannot connect, is cut off, or gets HTTP 408, 429 or 5xx is retried
 * up to `retries` times after backoff_ms, 2*backoff_ms, ... (capped at 5 s); other failures (4xx,
 * malformed JSON, wrong count or dimension) fail at once with a message naming the cause.
 *
 * The dimension is cfg->dim, or learned by one probe request at open when cfg->dim is 0; every answer is
 * checked against it. State is read-only after open and each request uses its own curl easy handle, so
 * any number of threads may embed at once. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "embed/embed_backend.h"
#include "embed/embed_utf8.h"

#define REMOTE_MAX_RESPONSE (64u << 20)
#define REMOTE_MAX_BACKOFF_MS 5000

typedef struct remote {
    char endpoint[EMBED_PATH_MAX + 32];
    char shown[EMBED_PATH_MAX + 32]; /* the endpoint for messages: without any user:password@ */
    char model[256];
    char auth[600]; /* "Authorization: Bearer KEY" or "" */
    int dim, timeout_ms, retries, backoff_ms, batch_max;
} remote;

typedef struct rbuf {
    char *p;
    size_t n, cap;
    int too_big;
} rbuf;

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    rbuf *b = ud;
    size_t k = size * nmemb;
    if (b->n + k > REMOTE_MAX_RESPONSE) {
        b->too_big = 1;
        return 0;
    }
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        while (cap < b->n + k + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, k);
    b->n += k;
    b->p[b->n] = 0;
    return k;
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* A short, printable excerpt of a response body for error messages. */
static void excerpt(const char *body, size_t n, char *out, size_t cap) {
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < cap && i < 160; i++) {
        unsigned char c = (unsigned char)body[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > 160 && o + 4 < cap) out[o++] = '.', out[o++] = '.', out[o++] = '.';
    out[o] = 0;
}

/* Builds the request body for texts[0..n). Returns malloc'd NUL-terminated JSON or NULL. */
static char *request_body(const remote *r, const char *const *texts, const size_t *lens, int n) {
    size_t cap = strlen(r->model) * 6 + 96;
    for (int i = 0; i < n; i++) {
        if (lens[i] > ((size_t)-1) / 8 - cap) return NULL;
        cap += lens[i] * 6 + 4;
    }
    char *b = malloc(cap);
    if (!b) return NULL;
    size_t o = 0;
    memcpy(b, "{\"model\": ", 10);
    o = 10;
    o += embed_utf8_json_quote(r->model, strlen(r->model), b + o);
    memcpy(b + o, ", \"encoding_format\": \"float\", \"input\": [", 40);
    o += 40;
    for (int i = 0; i < n; i++) {
        if (i) b[o++] = ',';
        o += embed_utf8_json_quote(texts[i] ? texts[i] : "", lens[i], b + o);
    }
    b[o++] = ']';
    b[o++] = '}';
    b[o] = 0;
    return b;
}

/* Parses an answer for n texts into out (n * dim); *dim is learned when 0. Returns 0 or -1 with err. */
static int parse_answer(const remote *r, const char *body, size_t len, int n, int *dim, float *out, char *err,
                        size_t errlen) {
    char ex[200];
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *data = cJSON_GetObjectItem(root, "data");
    if (!cJSON_IsArray(data)) {
        excerpt(body, len, ex, sizeof ex);
        cJSON_Delete(root);
        return embed_fail(err, errlen, "remote embedder: malformed JSON from %s (no \"data\" array): %s", r->shown, ex);
    }
    int count = cJSON_GetArraySize(data);
    if (count != n) {
        cJSON_Delete(root);
        return embed_fail(err, errlen, "remote embedder: %s returned %d embeddings for %d texts", r->shown, count, n);
    }
    unsigned char *seen = calloc((size_t)n, 1);
    if (!seen) {
        cJSON_Delete(root);
        return embed_fail(err, errlen, "out of memory");
    }
    int pos = 0, rc = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, data) {
        const cJSON *idx = cJSON_GetObjectItem(item, "index"), *emb = cJSON_GetObjectItem(item, "embedding");
        int at = pos++;
        if (idx) {
            if (!cJSON_IsNumber(idx) || idx->valuedouble < 0 || idx->valuedouble >= n || idx->valuedouble != (int)idx->valuedouble) {
                rc = embed_fail(err, errlen, "remote embedder: %s returned a bad index", r->shown);
                break;
            }
            at = (int)idx->valuedouble;
        }
        if (seen[at]) {
            rc = embed_fail(err, errlen, "remote embedder: %s returned index %d twice", r->shown, at);
            break;
        }
        seen[at] = 1;
        if (!cJSON_IsArray(emb)) {
            rc = embed_fail(err, errlen, "remote embedder: malformed JSON from %s (item %d has no \"embedding\" array)",
                            r->shown, at);
            break;
        }
        int d = cJSON_GetArraySize(emb);
        if (*dim == 0) {
            if (d < 1 || d > 65536) {
                rc = embed_fail(err, errlen, "remote embedder: %s returned a %d-dimensional embedding", r->shown, d);
                break;
            }
            *dim = d;
        }
        if (d != *dim) {
            rc = embed_fail(err, errlen, "remote embedder: wrong dimension from %s: got %d, expected %d", r->shown, d, *dim);
            break;
        }
        if (!out) continue;
        float *row = out + (size_t)at * (size_t)d;
        int k = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, emb) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
                rc = embed_fail(err, errlen, "remote embedder: %s returned a non-numeric value", r->shown);
                break;
            }
            row[k++] = (float)v->valuedouble;
        }
        if (rc) break;
        embed_l2_normalize(row, d);
    }
    free(seen);
    cJSON_Delete(root);
    return rc;
}

/* One request with retries. out may be NULL (dimension probe). */
static int post(const remote *r, const char *const *texts, const size_t *lens, int n, int *dim, float *out, char *err,
                size_t errlen) {
    char *body = request_body(r, texts, lens, n);
    if (!body) return embed_fail(err, errlen, "remote embedder: out of memory building the request");
    int rc = -1;
    for (int attempt = 0;; attempt++) {
        CURL *c = curl_easy_init();
        struct curl_slist *h = NULL, *h2;
        rbuf rb = {0};
        if (!c) {
            rc = embed_fail(err, errlen, "remote embedder: cannot create a curl handle");
            break;
        }
        int retryable = 0;
        h2 = curl_slist_append(h, "Content-Type: application/json");
        if (h2) h = h2;
        if (r->auth[0] && (h2 = curl_slist_append(h, r->auth))) h = h2;
        curl_easy_setopt(c, CURLOPT_URL, r->endpoint);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(r->timeout_ms < 10000 ? r->timeout_ms : 10000));
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "memfuse-embed/1");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &rb);
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK) {
            retryable = cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_COULDNT_CONNECT || cc == CURLE_RECV_ERROR ||
                        cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING || cc == CURLE_PARTIAL_FILE;
            if (rb.too_big) embed_fail(err, errlen, "remote embedder: answer from %s is larger than %u bytes", r->shown, REMOTE_MAX_RESPONSE);
            else if (cc == CURLE_OPERATION_TIMEDOUT)
                embed_fail(err, errlen, "remote embedder: %s timed out after %d ms (attempt %d)", r->shown, r->timeout_ms, attempt + 1);
            else
                embed_fail(err, errlen, "remote embedder: %s: %s (attempt %d)", r->shown, curl_easy_strerror(cc), attempt + 1);
        } else if (status != 200) {
            char ex[200] = "";
            cJSON *e = cJSON_ParseWithLength(rb.p ? rb.p : "", rb.n);
            const cJSON *msg = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "error"), "message");
            if (cJSON_IsString(msg)) snprintf(ex, sizeof ex, "%.190s", msg->valuestring);
            else excerpt(rb.p ? rb.p : "", rb.n, ex, sizeof ex);
            cJSON_Delete(e);
            retryable = status == 408 || status == 429 || status >= 500;
            embed_fail(err, errlen, "remote embedder: HTTP %ld from %s: %s (attempt %d)", status, r->shown, ex, attempt + 1);
        } else {
            rc = parse_answer(r, rb.p ? rb.p : "", rb.n, n, dim, out, err, errlen);
        }
        free(rb.p);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        if (rc == 0 || !retryable || attempt >= r->retries) break;
        long delay = (long)r->backoff_ms << (attempt < 12 ? attempt : 12);
        sleep_ms((int)(delay < REMOTE_MAX_BACKOFF_MS ? delay : REMOTE_MAX_BACKOFF_MS));
    }
    free(body);
    return rc;
}

static int remote_batch(void *state, const char *const *texts, const size_t *lens, int n, float *out, char *err,
                        size_t errlen) {
    const remote *r = state;
    for (int i = 0; i < n; i += r->batch_max) {
        int m = n - i < r->batch_max ? n - i : r->batch_max;
        int dim = r->dim;
        if (post(r, texts + i, lens + i, m, &dim, out + (size_t)i * (size_t)r->dim, err, errlen)) return -1;
    }
    return 0;
}

static void remote_close(void *state) {
    free(state);
    curl_global_cleanup();
}

static const embed_ops remote_ops = {.batch = remote_batch, .tokenize = NULL, .close = remote_close};

int embed_remote_open(const embed_config *cfg, embed_backend *out, char *err, size_t errlen) {
    if (!cfg->url[0]) return embed_fail(err, errlen, "remote embedder needs --embed-url (or MEMFUSE_EMBED_URL)");
    if (!cfg->model[0]) return embed_fail(err, errlen, "remote embedder needs --embed-model (or MEMFUSE_EMBED_MODEL)");
    if (strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8))
        return embed_fail(err, errlen, "remote embedder: --embed-url must start with http:// or https://");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return embed_fail(err, errlen, "remote embedder: libcurl init failed");
    remote *r = calloc(1, sizeof *r);
    if (!r) {
        curl_global_cleanup();
        return embed_fail(err, errlen, "out of memory");
    }
    /* {base}/v1/embeddings, without doubling "/v1" or the whole path when the operator gave it. */
    char base[EMBED_PATH_MAX];
    snprintf(base, sizeof base, "%s", cfg->url);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/') base[--bl] = 0;
    const char *suffix = "/v1/embeddings";
    if (bl >= 14 && !strcmp(base + bl - 14, "/v1/embeddings")) suffix = "";
    else if (bl >= 3 && !strcmp(base + bl - 3, "/v1")) suffix = "/embeddings";
    snprintf(r->endpoint, sizeof r->endpoint, "%s%s", base, suffix);
    /* Credentials in the URL stay out of error messages and logs. */
    const char *sch = strstr(r->endpoint, "://"), *at = NULL;
    if (sch) {
        const char *host = sch + 3, *slash = strchr(host, '/');
        for (const char *q = host; *q && (!slash || q < slash); q++)
            if (*q == '@') at = q;
    }
    if (at) snprintf(r->shown, sizeof r->shown, "%.*s%s", (int)(sch + 3 - r->endpoint), r->endpoint, at + 1);
    else snprintf(r->shown, sizeof r->shown, "%s", r->endpoint);
    snprintf(r->model, sizeof r->model, "%s", cfg->model);
    if (cfg->api_key[0]) snprintf(r->auth, sizeof r->auth, "Authorization: Bearer %s", cfg->api_key);
    r->dim = cfg->dim;
    r->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 10000;
    r->retries = cfg->retries >= 0 ? cfg->retries : 0;
    r->backoff_ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : 200;
    r->batch_max = cfg->batch_max > 0 ? cfg->batch_max : 64;
    if (r->dim == 0) {
        const char *probe = "dimension probe";
        size_t plen = strlen(probe);
        int dim = 0;
        if (post(r, &probe, &plen, 1, &dim, NULL, err, errlen)) {
            remote_close(r);
            return -1;
        }
        r->dim = dim;
    }
    out->ops = &remote_ops;
    out->state = r;
    out->dim = r->dim;
    snprintf(out->model_id, sizeof out->model_id, "remote:%s", r->model);
    return 0;
}
