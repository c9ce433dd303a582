/* embed — the embedder interface: texts in, L2-normalised float vectors out.
 *
 * Owns: an embedder handle wrapping one backend —
 *   use-lite  Universal Sentence Encoder lite in C (src/embed/use_lite.c), 512-d, weights read once at open;
 *   hash      deterministic feature hashing of words and character n-grams (src/embed/embed_hash.c), no files;
 *   remote    an OpenAI-compatible POST {base}/v1/embeddings endpoint over libcurl (src/embed/embed_remote.c).
 * and the configuration that selects one (embed_config), parsed from flags and environment variables so
 * that `memfuse embed` and `memfuse serve` share it.
 *
 * Contract:
 *   - embed_open() returns a handle the caller frees with embed_close(); on failure it returns NULL and
 *     writes a one-line reason into err. use-lite whose model files are missing falls back to hash when
 *     cfg->allow_fallback is set, with a warning in the log (the model id then says "hash").
 *   - embed_batch() writes n rows of embed_dim() floats into out (caller-allocated, n * dim floats); every
 *     row has unit L2 norm. Returns 0, or -1 with err filled (out is then unspecified). texts[i] need not be
 *     NUL-terminated: lens[i] bytes are read. Invalid UTF-8 is read as U+FFFD, never rejected.
 *   - Thread-safety: one handle may be used by any number of threads at once (embed_batch, embed_tokenize,
 *     embed_dim, embed_model_id). Nothing is global: read-only model weights are shared, per-call scratch
 *     comes from a small mutex-guarded pool inside the handle. embed_close() must not race with calls.
 *   - BLAS: use-lite calls cblas_sgemm from the calling thread with OpenBLAS set to one thread
 *     (openblas_set_num_threads(1) at open), so parallelism comes from concurrent callers (one BLAS thread
 *     per worker), never from BLAS spawning threads under a worker. */
#ifndef MEMFUSE_EMBED_H
#define MEMFUSE_EMBED_H

#include <stddef.h>
#include <stdint.h>

typedef enum embed_kind { EMBED_USE_LITE = 0, EMBED_HASH = 1, EMBED_REMOTE = 2 } embed_kind;

#define EMBED_DEFAULT_MODEL_DIR "./models/use-lite"
#define EMBED_PATH_MAX 1024

typedef struct embed_config {
    embed_kind kind;
    char model_dir[EMBED_PATH_MAX]; /* use-lite: directory with model.json, shards, vocab.json */
    int allow_fallback;             /* use-lite without its files: 1 = fall back to hash (logged), 0 = fail */
    int hash_dim;                   /* hash: vector dimension (default 512) */
    char url[EMBED_PATH_MAX];       /* remote: base URL; POST {url}/v1/embeddings ("/v1" not doubled) */
    char model[256];                /* remote: model name sent in the request */
    char api_key[512];              /* remote: bearer token, may be empty */
    int dim;                        /* remote: expected dimension; 0 = learn it with one probe at open */
    int timeout_ms;                 /* remote: per-request timeout */
    int retries;                    /* remote: extra attempts after a timeout, connection error, 429 or 5xx */
    int backoff_ms;                 /* remote: first retry delay, doubled each retry */
    int batch_max;                  /* remote: at most this many texts per request */
} embed_config;

typedef struct embedder embedder;

/* Defaults: use-lite from EMBED_DEFAULT_MODEL_DIR with fallback, hash_dim 512, remote timeout 10 s,
 * 2 retries from 200 ms, 64 texts per request. */
void embed_config_default(embed_config *cfg);
/* Overlays MEMFUSE_EMBEDDER, MEMFUSE_MODEL_DIR, MEMFUSE_EMBED_URL, MEMFUSE_EMBED_MODEL,
 * MEMFUSE_EMBED_API_KEY, MEMFUSE_EMBED_DIM, MEMFUSE_EMBED_TIMEOUT_MS. Returns 0 or -1 (err says which). */
int embed_config_from_env(embed_config *cfg, char *err, size_t errlen);
/* Consumes --embedder, --model-dir, --embed-url, --embed-model, --embed-api-key, --embed-dim,
 * --embed-timeout-ms (each as "--flag value" or "--flag=value") from argv[1..*argc-1], removing them and
 * shifting the rest down; *argc is updated and argv[*argc] set to NULL. argv[0] is left alone.
 * Returns 0, or -1 on a bad value or a flag missing its value (err says which). */
int embed_config_from_args(embed_config *cfg, int *argc, char **argv, char *err, size_t errlen);
/* "use-lite" | "hash" | "remote" -> kind; returns 0 or -1. */
int embed_kind_parse(const char *s, embed_kind *out);
const char *embed_kind_name(embed_kind k);

embedder *embed_open(const embed_config *cfg, char *err, size_t errlen);
int embed_batch(embedder *e, const char *const *texts, const size_t *lens, int n, float *out, char *err,
                size_t errlen);
/* The token ids the model sees for one text (use-lite: SentencePiece ids, truncated to the model's 128
 * positions). Writes at most max_ids ids; returns how many the model sees, 0 for backends that have no
 * vocabulary (hash, remote), or -1 on error. */
int embed_tokenize(embedder *e, const char *text, size_t len, int32_t *ids, int max_ids);
int embed_dim(const embedder *e);
const char *embed_model_id(const embedder *e);
embed_kind embed_get_kind(const embedder *e); /* the backend actually running (after any fallback) */
void embed_close(embedder *e);

/* Scales v to unit L2 norm in place (a zero vector is left as is). */
void embed_l2_normalize(float *v, int dim);

#endif
