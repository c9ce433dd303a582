/* embed — the embedder handle: picks a backend, applies the use-lite -> hash fallback, checks arguments,
 * and hands calls to the backend's ops table. See embed.h for the contract. */
#include "embed/embed.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_backend.h"
#include "util/log.h"

struct embedder {
    embed_backend be;
    embed_kind kind;
};

int embed_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void embed_l2_normalize(float *v, int dim) {
    double ss = 0.0;
    for (int i = 0; i < dim; i++) ss += (double)v[i] * v[i];
    if (ss <= 0.0) return;
    float inv = (float)(1.0 / sqrt(ss));
    for (int i = 0; i < dim; i++) v[i] *= inv;
}

embedder *embed_open(const embed_config *cfg, char *err, size_t errlen) {
    embedder *e = calloc(1, sizeof *e);
    if (!e) {
        embed_fail(err, errlen, "out of memory");
        return NULL;
    }
    int rc;
    e->kind = cfg->kind;
    switch (cfg->kind) {
    case EMBED_USE_LITE:
        rc = embed_use_lite_open(cfg, &e->be, err, errlen);
        if (rc == -2 && cfg->allow_fallback) {
            log_warn("embedder use-lite unavailable (%s); FALLING BACK to the hash embedder: vectors will be "
                     "lexical, not semantic. Run scripts/fetch-model.sh to install the model",
                     err ? err : "model files missing");
            e->kind = EMBED_HASH;
            rc = embed_hash_open(cfg, &e->be, err, errlen);
        }
        break;
    case EMBED_HASH: rc = embed_hash_open(cfg, &e->be, err, errlen); break;
    case EMBED_REMOTE: rc = embed_remote_open(cfg, &e->be, err, errlen); break;
    default: rc = embed_fail(err, errlen, "unknown embedder kind %d", (int)cfg->kind); break;
    }
    if (rc != 0) {
        free(e);
        return NULL;
    }
    log_info("embedder %s ready: model %s, dimension %d", embed_kind_name(e->kind), e->be.model_id, e->be.dim);
    return e;
}

int embed_batch(embedder *e, const char *const *texts, const size_t *lens, int n, float *out, char *err,
                size_t errlen) {
    if (!e || n < 0 || (n > 0 && (!texts || !lens || !out))) return embed_fail(err, errlen, "bad arguments");
    if (n == 0) return 0;
    for (int i = 0; i < n; i++)
        if (!texts[i] && lens[i]) return embed_fail(err, errlen, "text %d is NULL", i);
    return e->be.ops->batch(e->be.state, texts, lens, n, out, err, errlen);
}

int embed_tokenize(embedder *e, const char *text, size_t len, int32_t *ids, int max_ids) {
    if (!e || (!text && len) || max_ids < 0 || (!ids && max_ids)) return -1;
    if (!e->be.ops->tokenize) return 0;
    return e->be.ops->tokenize(e->be.state, text ? text : "", len, ids, max_ids);
}

int embed_dim(const embedder *e) { return e->be.dim; }
const char *embed_model_id(const embedder *e) { return e->be.model_id; }
embed_kind embed_get_kind(const embedder *e) { return e->kind; }

void embed_close(embedder *e) {
    if (!e) return;
    e->be.ops->close(e->be.state);
    free(e);
}
