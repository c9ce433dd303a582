/* embed_config — the embedder's settings from defaults, environment variables and command-line flags.
 *
 * Precedence is the caller's: embed_config_default(), then embed_config_from_env(), then
 * embed_config_from_args() gives flags over environment over defaults. Strings are copied into the
 * struct's fixed buffers; a value that does not fit is an error, never silently cut. */
#include "embed/embed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_backend.h"

void embed_config_default(embed_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = EMBED_USE_LITE;
    snprintf(cfg->model_dir, sizeof cfg->model_dir, "%s", EMBED_DEFAULT_MODEL_DIR);
    cfg->allow_fallback = 1;
    cfg->hash_dim = 512;
    cfg->timeout_ms = 10000;
    cfg->retries = 2;
    cfg->backoff_ms = 200;
    cfg->batch_max = 64;
}

int embed_kind_parse(const char *s, embed_kind *out) {
    if (!s) return -1;
    if (!strcmp(s, "use-lite") || !strcmp(s, "use") || !strcmp(s, "use_lite")) *out = EMBED_USE_LITE;
    else if (!strcmp(s, "hash")) *out = EMBED_HASH;
    else if (!strcmp(s, "remote") || !strcmp(s, "openai")) *out = EMBED_REMOTE;
    else return -1;
    return 0;
}

const char *embed_kind_name(embed_kind k) {
    switch (k) {
    case EMBED_USE_LITE: return "use-lite";
    case EMBED_HASH: return "hash";
    case EMBED_REMOTE: return "remote";
    }
    return "?";
}

static int set_str(char *dst, size_t cap, const char *v, const char *what, char *err, size_t errlen) {
    size_t n = strlen(v);
    if (n >= cap) return embed_fail(err, errlen, "%s is too long (%zu bytes, at most %zu)", what, n, cap - 1);
    memcpy(dst, v, n + 1);
    return 0;
}

static int set_int(int *dst, const char *v, int lo, int hi, const char *what, char *err, size_t errlen) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return embed_fail(err, errlen, "%s must be an integer in [%d, %d], not \"%s\"", what, lo, hi, v);
    *dst = (int)x;
    return 0;
}

/* One setting by its flag name (without the leading "--"); 1 if the name is not ours. */
static int apply(embed_config *cfg, const char *name, const char *v, char *err, size_t errlen) {
    if (!strcmp(name, "embedder")) {
        if (embed_kind_parse(v, &cfg->kind))
            return embed_fail(err, errlen, "unknown embedder \"%s\" (use-lite, hash or remote)", v);
        return 0;
    }
    if (!strcmp(name, "model-dir")) return set_str(cfg->model_dir, sizeof cfg->model_dir, v, name, err, errlen);
    if (!strcmp(name, "embed-url")) return set_str(cfg->url, sizeof cfg->url, v, name, err, errlen);
    if (!strcmp(name, "embed-model")) return set_str(cfg->model, sizeof cfg->model, v, name, err, errlen);
    if (!strcmp(name, "embed-api-key")) return set_str(cfg->api_key, sizeof cfg->api_key, v, name, err, errlen);
    if (!strcmp(name, "embed-dim")) return set_int(&cfg->dim, v, 0, 65536, name, err, errlen);
    if (!strcmp(name, "embed-timeout-ms")) return set_int(&cfg->timeout_ms, v, 1, 3600000, name, err, errlen);
    return 1;
}

int embed_config_from_env(embed_config *cfg, char *err, size_t errlen) {
    static const struct { const char *env, *name; } map[] = {
        {"MEMFUSE_EMBEDDER", "embedder"},       {"MEMFUSE_MODEL_DIR", "model-dir"},
        {"MEMFUSE_EMBED_URL", "embed-url"},     {"MEMFUSE_EMBED_MODEL", "embed-model"},
        {"MEMFUSE_EMBED_API_KEY", "embed-api-key"}, {"MEMFUSE_EMBED_DIM", "embed-dim"},
        {"MEMFUSE_EMBED_TIMEOUT_MS", "embed-timeout-ms"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = getenv(map[i].env);
        if (!v || !*v) continue;
        char sub[256];
        if (apply(cfg, map[i].name, v, sub, sizeof sub) != 0)
            return embed_fail(err, errlen, "%s: %s", map[i].env, sub);
    }
    return 0;
}

int embed_config_from_args(embed_config *cfg, int *argc, char **argv, char *err, size_t errlen) {
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            argv[out++] = argv[i];
            continue;
        }
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t nlen = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (nlen >= sizeof name) {
            argv[out++] = argv[i];
            continue;
        }
        memcpy(name, a + 2, nlen);
        name[nlen] = 0;
        const char *v = eq ? eq + 1 : NULL;
        /* Probe with a dummy value to learn whether the flag is ours before consuming the next argument. */
        embed_config probe = *cfg;
        char sub[256];
        int ours = apply(&probe, name, "0", sub, sizeof sub) != 1;
        if (!ours) {
            argv[out++] = argv[i];
            continue;
        }
        if (!v) {
            if (i + 1 >= *argc) return embed_fail(err, errlen, "--%s needs a value", name);
            v = argv[++i];
        }
        if (apply(cfg, name, v, sub, sizeof sub) != 0) return embed_fail(err, errlen, "--%s: %s", name, sub);
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}
