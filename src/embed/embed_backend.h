/* embed_backend — what a backend gives the embedder interface (private to src/embed).
 *
 * Each backend's open function returns 0 and fills an embed_backend (ops table, its own state, dimension,
 * model id), or -1 with err filled and nothing left allocated (use-lite returns -2 instead when its model
 * files are missing, so that embed_open may fall back to hash). ops->close frees the state. All ops must be
 * safe to call from several threads at once on the same state. */
#ifndef MEMFUSE_EMBED_BACKEND_H
#define MEMFUSE_EMBED_BACKEND_H

#include "embed/embed.h"

typedef struct embed_ops {
    int (*batch)(void *state, const char *const *texts, const size_t *lens, int n, float *out, char *err,
                 size_t errlen);
    int (*tokenize)(void *state, const char *text, size_t len, int32_t *ids, int max_ids); /* may be NULL */
    void (*close)(void *state);
} embed_ops;

typedef struct embed_backend {
    const embed_ops *ops;
    void *state;
    int dim;
    char model_id[320];
} embed_backend;

int embed_hash_open(const embed_config *cfg, embed_backend *out, char *err, size_t errlen);
int embed_use_lite_open(const embed_config *cfg, embed_backend *out, char *err, size_t errlen);
int embed_remote_open(const embed_config *cfg, embed_backend *out, char *err, size_t errlen);

/* snprintf into err when err is not NULL; always returns -1 so callers can `return embed_fail(...)`. */
int embed_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
