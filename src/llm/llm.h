/* llm — client of an OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp, ...).
 *
 * Owns: the endpoint configuration, a concurrency limit (a counting semaphore: at most `concurrency`
 * requests in flight, further callers wait for a slot within their deadline), call/token counters and the
 * per-user token accounting.
 *
 * llm_chat() POSTs {base_url}/v1/chat/completions with {"model", "messages": [system, user], "temperature": 0,
 * "max_tokens"?, "response_format": {"type": "json_object"} when json_mode} and "Authorization: Bearer KEY"
 * when a key is set, and returns choices[0].message.content. A request that times out, cannot connect, is
 * cut off, or gets HTTP 408, 429 or 5xx is retried up to `retries` times after backoff_ms, 2*backoff_ms,
 * ... (capped at 10 s, honouring Retry-After when given, never past the call's deadline); a 400 that names
 * response_format is retried once without it (servers without JSON mode); other 4xx and malformed bodies
 * fail at once with a message naming the cause. Every request uses its own curl easy handle: any number of
 * threads may call at once. A call holds its slot for all its attempts and backoffs. llm_shutdown() makes
 * waiting and retrying calls return LLM_SHUTDOWN promptly (a transfer in progress within about a second);
 * llm_close() may only run once no call is running. */
#ifndef MEMFUSE_LLM_H
#define MEMFUSE_LLM_H

#include <stddef.h>
#include <stdint.h>

/* Zero means the default for timeout_ms, backoff_ms and concurrency (and any value <= 0); retries and
 * max_tokens take 0 literally (no retry; no max_tokens sent) and their default only when negative. */
typedef struct llm_config {
    const char *base_url; /* e.g. "http://127.0.0.1:8080" or ".../v1" (a trailing /v1 is not doubled) */
    const char *model;
    const char *api_key;  /* NULL or "": no Authorization header */
    int timeout_ms;       /* per attempt (default 60000) */
    int retries;          /* after the first attempt (default 3) */
    int backoff_ms;       /* first backoff (default 500) */
    int concurrency;      /* requests in flight at once (default 4) */
    int max_tokens;       /* completion limit sent (default 2048; 0: not sent) */
} llm_config;

typedef struct llm llm;

enum llm_rc {
    LLM_OK = 0,
    LLM_UNAVAILABLE, /* could not get an answer: transport error, timeout, 408/429/5xx after retries */
    LLM_REJECTED,    /* the server refused the request (4xx other than 408/429) */
    LLM_BAD_REPLY,   /* HTTP 200 but no usable choices[0].message.content */
    LLM_SHUTDOWN,    /* llm_shutdown() was called */
};
const char *llm_rc_name(int rc);

typedef struct llm_reply {
    char *content; /* malloc'd, NUL-terminated; free with llm_reply_free() */
    int64_t prompt_tokens, completion_tokens; /* from "usage", or estimated (bytes/4) when absent */
    int attempts;
    int64_t latency_us; /* the whole call: waiting for a slot, attempts and backoffs */
} llm_reply;

llm *llm_open(const llm_config *cfg, char *err, size_t errlen);
void llm_close(llm *l);
void llm_shutdown(llm *l);
/* "model @ base_url" without credentials, for logs and health. */
const char *llm_describe(const llm *l);

/* One chat completion. user_id (may be NULL) is charged the tokens. deadline_ms bounds the whole call
 * (0: (retries + 1) * timeout_ms plus backoffs). Returns enum llm_rc; on failure err says why and out
 * holds nothing to free. */
int llm_chat(llm *l, const char *user_id, const char *system, const char *user, int json_mode, int deadline_ms,
             llm_reply *out, char *err, size_t errlen);
void llm_reply_free(llm_reply *r);

typedef struct llm_stats {
    uint64_t calls, ok, failures, retries, prompt_tokens, completion_tokens;
    int in_flight;
    int64_t last_ok_us, last_error_us; /* wall clock (time_now_us), 0: never */
    char last_error[256];
} llm_stats;
void llm_get_stats(llm *l, llm_stats *out);

typedef struct llm_usage {
    uint64_t calls, prompt_tokens, completion_tokens;
} llm_usage;
/* The tokens charged to a user since start: 0, or -1 when none. A successful call charges its user (calls,
 * prompt and completion tokens); failed calls charge nothing. At most 100,000 users are tracked one by one:
 * later users (or any user when memory runs out) are charged together to the shared bucket "(other)",
 * which then appears here and in llm_usage_each under that name (a warning is logged once). */
int llm_usage_of(llm *l, const char *user_id, llm_usage *out);
/* Calls fn for every user charged so far (under the accounting lock: fn must not call into l). */
void llm_usage_each(llm *l, void (*fn)(void *ctx, const char *user_id, const llm_usage *u), void *ctx);

#endif
