/* opstats — see opstats.h.
 *
 * Layout: g_stripes[stripe][op] holds relaxed atomic counters; a thread picks its stripe once (round
 * robin) and keeps it. Everything the regression check keeps (baselines, the ring of checkpoints of the
 * cumulative histograms, the regressed flags) lives in g_chk under g_chk.mu. */
#include "util/opstats.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/timeutil.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STRIPES 8
#define RING 16          /* checkpoints kept: 16 x (window / 8) = two windows */
#define CHECK_EVERY 255  /* observers try the check when a stripe's count passes a multiple of 256 */
#define LOG_EVERY_MS 1000 /* at most one crossing line per operation per second */

const double opstats_bucket_le[OPSTATS_NBUCKETS] = {
    250e-9, 500e-9, 1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3,
    5e-3,   10e-3,  25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0, 2.5, 5.0, 10.0, INFINITY};

static const int64_t BUCKET_NS[OPSTATS_NBUCKETS - 1] = {
    250,       500,       1000,       2500,       5000,       10000,      25000,      50000,
    100000,    250000,    500000,     1000000,    2500000,    5000000,    10000000,   25000000,
    50000000,  100000000, 250000000,  500000000,  1000000000, 2500000000, 5000000000, 10000000000};

static const char *const NAMES[OP_KINDS] = {"pool_acquire", "service_lookup", "flush_handoff", "m0", "m1",
                                            "m2", "embed_batch", "vector_search", "bm25_search", "fusion"};

static const double DEFAULT_MS[OP_KINDS] = {10, 10, 10, 100, 150, 150, 50, 10, 10, 10};

typedef struct stripe {
    _Alignas(64) _Atomic uint64_t b[OPSTATS_NBUCKETS];
    _Atomic uint64_t count, sum_ns;
} stripe;

static stripe g_stripes[STRIPES][OP_KINDS];
static _Atomic unsigned g_next_stripe;
static _Thread_local int t_stripe = -1;

/* threshold in ns, -1 when off */
static _Atomic int64_t g_threshold_ns[OP_KINDS] = {10000000, 10000000, 10000000, 100000000, 150000000,
                                                   150000000, 50000000, 10000000, 10000000, 10000000};
static _Atomic uint64_t g_crossings[OP_KINDS];
static _Atomic uint64_t g_unlogged[OP_KINDS];
static _Atomic int64_t g_last_log_ms[OP_KINDS] = {INT64_MIN / 2, INT64_MIN / 2, INT64_MIN / 2, INT64_MIN / 2,
                                                  INT64_MIN / 2, INT64_MIN / 2, INT64_MIN / 2, INT64_MIN / 2,
                                                  INT64_MIN / 2, INT64_MIN / 2};
static _Atomic int64_t g_next_check_ms;
static _Atomic int g_auto_check = 1;

typedef struct checkpoint {
    int64_t t_ms;
    opstats_hist h[OP_KINDS];
} checkpoint;

static struct {
    pthread_mutex_t mu;
    int baseline_count, window_s, min_recent;
    double factor;
    int have_baseline[OP_KINDS];
    opstats_hist baseline[OP_KINDS];
    checkpoint ring[RING];
    int ring_n, ring_head; /* ring_head: the next slot to write */
    int regressed[OP_KINDS];
    uint64_t regressions[OP_KINDS];
    opstats_hist recent[OP_KINDS];
    double recent_span_s;
} g_chk = {.mu = PTHREAD_MUTEX_INITIALIZER, .baseline_count = 1000, .window_s = 60, .min_recent = 100,
           .factor = 2.0};

const char *opstats_name(enum op_kind k) { return (unsigned)k < OP_KINDS ? NAMES[k] : "?"; }

int opstats_kind(const char *name)
{
    for (int k = 0; name && k < OP_KINDS; k++)
        if (strcmp(name, NAMES[k]) == 0)
            return k;
    return -1;
}

static int bucket_of(int64_t ns)
{
    int lo = 0, hi = OPSTATS_NBUCKETS - 1; /* first i with ns <= BUCKET_NS[i], else the +Inf bucket */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (ns <= BUCKET_NS[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int64_t now_ms(void) { return time_mono_ns() / 1000000; }

static void check_locked(int64_t now);

static void maybe_check(void)
{
    int64_t now = now_ms();
    if (now < atomic_load_explicit(&g_next_check_ms, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&g_chk.mu) != 0)
        return; /* someone else is checking */
    check_locked(now);
    pthread_mutex_unlock(&g_chk.mu);
}

static void crossed(enum op_kind k, int64_t ns, int64_t th)
{
    uint64_t total = atomic_fetch_add_explicit(&g_crossings[k], 1, memory_order_relaxed) + 1;
    int64_t now = now_ms();
    int64_t last = atomic_load_explicit(&g_last_log_ms[k], memory_order_relaxed);
    if (now - last < LOG_EVERY_MS ||
        !atomic_compare_exchange_strong_explicit(&g_last_log_ms[k], &last, now, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        atomic_fetch_add_explicit(&g_unlogged[k], 1, memory_order_relaxed);
        return;
    }
    uint64_t quiet = atomic_exchange_explicit(&g_unlogged[k], 0, memory_order_relaxed);
    log_warn("operation %s took %.3f ms, over its %.3f ms threshold (%llu crossings so far, %llu not logged "
             "since the last line)",
             NAMES[k], (double)ns / 1e6, (double)th / 1e6, (unsigned long long)total, (unsigned long long)quiet);
}

void opstats_observe_ns(enum op_kind k, int64_t ns)
{
    if ((unsigned)k >= OP_KINDS)
        return;
    if (ns < 0)
        ns = 0;
    int s = t_stripe;
    if (s < 0)
        s = t_stripe = (int)(atomic_fetch_add_explicit(&g_next_stripe, 1, memory_order_relaxed) % STRIPES);
    stripe *st = &g_stripes[s][k];
    atomic_fetch_add_explicit(&st->b[bucket_of(ns)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->sum_ns, (uint64_t)ns, memory_order_relaxed);
    uint64_t c = atomic_fetch_add_explicit(&st->count, 1, memory_order_relaxed);
    int64_t th = atomic_load_explicit(&g_threshold_ns[k], memory_order_relaxed);
    if (th >= 0 && ns > th)
        crossed(k, ns, th);
    if ((c & CHECK_EVERY) == CHECK_EVERY && atomic_load_explicit(&g_auto_check, memory_order_relaxed))
        maybe_check();
}

void opstats_observe(enum op_kind k, int64_t us)
{
    opstats_observe_ns(k, us > INT64_MAX / 1000 ? INT64_MAX : us * 1000);
}

/* --- configuration ------------------------------------------------------------------------------ */

void opstats_config_default(opstats_config *c)
{
    memset(c, 0, sizeof *c);
    for (int k = 0; k < OP_KINDS; k++)
        c->threshold_ms[k] = DEFAULT_MS[k];
    c->baseline_count = 1000;
    c->window_s = 60;
    c->regression_factor = 2.0;
    c->min_recent = 100;
    c->auto_check = 1;
}

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    snprintf(err, errlen, fmt, a, b);
    return -1;
}

static int parse_one(opstats_config *c, const char *item, size_t len, char *err, size_t errlen)
{
    char buf[128];
    if (len == 0)
        return 0; /* "a=1,,b=2" and a trailing comma are harmless */
    if (len >= sizeof buf)
        return fail(err, errlen, "op threshold '%.40s%s' is too long", item, "...");
    memcpy(buf, item, len);
    buf[len] = 0;
    char *eq = strchr(buf, '=');
    if (!eq)
        return fail(err, errlen, "op threshold '%s' is not NAME=MS%s", buf, "");
    *eq = 0;
    int k = opstats_kind(buf);
    if (k < 0)
        return fail(err, errlen, "unknown operation '%s' (%s)", buf,
                    "pool_acquire, service_lookup, flush_handoff, m0, m1, m2, embed_batch, vector_search, "
                    "bm25_search, fusion");
    const char *v = eq + 1;
    if (strcasecmp(v, "off") == 0) {
        c->threshold_ms[k] = -1;
        return 0;
    }
    char *end;
    errno = 0;
    double ms = strtod(v, &end);
    if (errno || end == v || *end || !(ms >= 0 && ms <= 3600e3))
        return fail(err, errlen, "op threshold '%s': '%s' is not a number of milliseconds (0 to 3600000) or off",
                    buf, v);
    c->threshold_ms[k] = ms;
    return 0;
}

int opstats_parse_thresholds(opstats_config *c, const char *list, char *err, size_t errlen)
{
    const char *p = list;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (parse_one(c, p, len, err, errlen) != 0)
            return -1;
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi)
        return -1;
    *out = (int)n;
    return 0;
}

/* One setting by flag name (without "--"): 1 when the name is not ours, 0 when applied, -1 on a bad value. */
static int apply(opstats_config *c, const char *name, const char *v, char *err, size_t errlen)
{
    if (strcmp(name, "op-threshold") == 0 || strcmp(name, "op-thresholds") == 0)
        return opstats_parse_thresholds(c, v, err, errlen);
    if (strcmp(name, "op-baseline") == 0) {
        if (parse_int(v, 1, 100000000, &c->baseline_count) != 0)
            return fail(err, errlen, "--op-baseline: '%s' is not a count of observations (1 to 10^8)%s", v, "");
        return 0;
    }
    if (strcmp(name, "op-window") == 0) {
        if (parse_int(v, 1, 86400, &c->window_s) != 0)
            return fail(err, errlen, "--op-window: '%s' is not a number of seconds (1 to 86400)%s", v, "");
        return 0;
    }
    if (strcmp(name, "op-regression-factor") == 0) {
        char *end;
        errno = 0;
        double f = strtod(v, &end);
        if (errno || end == v || *end || !(f >= 1 && f <= 1000))
            return fail(err, errlen, "--op-regression-factor: '%s' is not a factor (1 to 1000)%s", v, "");
        c->regression_factor = f;
        return 0;
    }
    return 1;
}

int opstats_config_from_env(opstats_config *c, char *err, size_t errlen)
{
    static const struct {
        const char *env, *name;
    } map[] = {{"MEMFUSE_OP_THRESHOLDS", "op-thresholds"},
               {"MEMFUSE_OP_BASELINE", "op-baseline"},
               {"MEMFUSE_OP_WINDOW", "op-window"},
               {"MEMFUSE_OP_REGRESSION_FACTOR", "op-regression-factor"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = getenv(map[i].env);
        if (!v || !*v)
            continue;
        char sub[256];
        if (apply(c, map[i].name, v, sub, sizeof sub) != 0) {
            snprintf(err, errlen, "%s: %s", map[i].env, sub);
            return -1;
        }
    }
    return 0;
}

int opstats_config_from_args(opstats_config *c, int *argc, char **argv, char *err, size_t errlen)
{
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        char name[32];
        int ours = strncmp(a, "--op-", 5) == 0; /* before looking past a + 2: "1" is two bytes long */
        const char *eq = ours ? strchr(a + 2, '=') : NULL;
        size_t nlen = !ours ? 0 : eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (!ours || nlen >= sizeof name) {
            argv[out++] = argv[i];
            continue;
        }
        memcpy(name, a + 2, nlen);
        name[nlen] = 0;
        opstats_config probe = *c;
        char sub[256];
        if (apply(&probe, name, "1", sub, sizeof sub) == 1) { /* not ours: main's parser reports it */
            argv[out++] = argv[i];
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= *argc) {
                snprintf(err, errlen, "--%s needs a value", name);
                return -1;
            }
            v = argv[++i];
        }
        if (apply(c, name, v, sub, sizeof sub) != 0) {
            snprintf(err, errlen, "%s", sub);
            return -1;
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

static void read_all(opstats_hist out[OP_KINDS])
{
    memset(out, 0, sizeof(opstats_hist) * OP_KINDS);
    for (int s = 0; s < STRIPES; s++)
        for (int k = 0; k < OP_KINDS; k++) {
            stripe *st = &g_stripes[s][k];
            for (int i = 0; i < OPSTATS_NBUCKETS; i++) {
                uint64_t v = atomic_load_explicit(&st->b[i], memory_order_relaxed);
                out[k].buckets[i] += v;
                out[k].count += v;
            }
            out[k].sum_ns += atomic_load_explicit(&st->sum_ns, memory_order_relaxed);
        }
}

static void restart_windows_locked(int64_t now)
{
    memset(g_chk.have_baseline, 0, sizeof g_chk.have_baseline);
    memset(g_chk.baseline, 0, sizeof g_chk.baseline);
    memset(g_chk.regressed, 0, sizeof g_chk.regressed);
    memset(g_chk.recent, 0, sizeof g_chk.recent);
    g_chk.ring_n = g_chk.ring_head = 0;
    g_chk.recent_span_s = 0;
    /* the first checkpoint: the windows start here */
    checkpoint *cp = &g_chk.ring[0];
    cp->t_ms = now;
    read_all(cp->h);
    g_chk.ring_n = 1;
    g_chk.ring_head = 1 % RING;
    atomic_store(&g_next_check_ms, now);
}

void opstats_configure(const opstats_config *c)
{
    for (int k = 0; k < OP_KINDS; k++)
        atomic_store(&g_threshold_ns[k], c->threshold_ms[k] < 0 ? -1 : (int64_t)llround(c->threshold_ms[k] * 1e6));
    atomic_store(&g_auto_check, c->auto_check);
    pthread_mutex_lock(&g_chk.mu);
    g_chk.baseline_count = c->baseline_count > 0 ? c->baseline_count : 1;
    g_chk.window_s = c->window_s > 0 ? c->window_s : 1;
    g_chk.factor = c->regression_factor >= 1 ? c->regression_factor : 1;
    g_chk.min_recent = c->min_recent > 0 ? c->min_recent : 1;
    restart_windows_locked(now_ms());
    pthread_mutex_unlock(&g_chk.mu);
}

void opstats_reset(void)
{
    for (int s = 0; s < STRIPES; s++)
        for (int k = 0; k < OP_KINDS; k++) {
            stripe *st = &g_stripes[s][k];
            for (int i = 0; i < OPSTATS_NBUCKETS; i++)
                atomic_store(&st->b[i], 0);
            atomic_store(&st->count, 0);
            atomic_store(&st->sum_ns, 0);
        }
    for (int k = 0; k < OP_KINDS; k++) {
        atomic_store(&g_crossings[k], 0);
        atomic_store(&g_unlogged[k], 0);
        atomic_store(&g_last_log_ms[k], INT64_MIN / 2);
    }
    pthread_mutex_lock(&g_chk.mu);
    memset(g_chk.regressions, 0, sizeof g_chk.regressions);
    pthread_mutex_unlock(&g_chk.mu);
    opstats_config c;
    opstats_config_default(&c);
    opstats_configure(&c);
}

void opstats_config_get(opstats_config *out)
{
    opstats_config_default(out);
    for (int k = 0; k < OP_KINDS; k++) {
        int64_t ns = atomic_load(&g_threshold_ns[k]);
        out->threshold_ms[k] = ns < 0 ? -1 : (double)ns / 1e6;
    }
    out->auto_check = atomic_load(&g_auto_check);
    pthread_mutex_lock(&g_chk.mu);
    out->baseline_count = g_chk.baseline_count;
    out->window_s = g_chk.window_s;
    out->regression_factor = g_chk.factor;
    out->min_recent = g_chk.min_recent;
    pthread_mutex_unlock(&g_chk.mu);
}

/* --- reading ------------------------------------------------------------------------------------ */

double opstats_hist_quantile(const opstats_hist *h, double q)
{
    return met_quantile(opstats_bucket_le, h->buckets, OPSTATS_NBUCKETS, q);
}

static void hist_sub(opstats_hist *out, const opstats_hist *a, const opstats_hist *b)
{
    out->count = 0;
    for (int i = 0; i < OPSTATS_NBUCKETS; i++) {
        out->buckets[i] = a->buckets[i] >= b->buckets[i] ? a->buckets[i] - b->buckets[i] : 0;
        out->count += out->buckets[i];
    }
    out->sum_ns = a->sum_ns >= b->sum_ns ? a->sum_ns - b->sum_ns : 0;
}

static void check_locked(int64_t now)
{
    opstats_hist cur[OP_KINDS];
    read_all(cur);
    if (g_chk.ring_n == 0) { /* never configured: the windows start at the first check */
        g_chk.ring[0].t_ms = now;
        memset(g_chk.ring[0].h, 0, sizeof g_chk.ring[0].h);
        g_chk.ring_n = 1;
        g_chk.ring_head = 1;
    }
    int64_t window_ms = (int64_t)g_chk.window_s * 1000;
    int64_t every_ms = window_ms / 8 > 1000 ? window_ms / 8 : 1000;
    int newest = (g_chk.ring_head + RING - 1) % RING;
    if (now - g_chk.ring[newest].t_ms >= every_ms) {
        checkpoint *cp = &g_chk.ring[g_chk.ring_head];
        cp->t_ms = now;
        memcpy(cp->h, cur, sizeof cur);
        g_chk.ring_head = (g_chk.ring_head + 1) % RING;
        if (g_chk.ring_n < RING)
            g_chk.ring_n++;
    }
    atomic_store_explicit(&g_next_check_ms, now + every_ms, memory_order_relaxed);
    /* the reference: the newest checkpoint at least a window old, else the oldest there is */
    const checkpoint *ref = NULL;
    for (int j = 0; j < g_chk.ring_n; j++) {
        const checkpoint *cp = &g_chk.ring[(g_chk.ring_head + RING - 1 - j) % RING];
        ref = cp;
        if (now - cp->t_ms >= window_ms)
            break;
    }
    g_chk.recent_span_s = (double)(now - ref->t_ms) / 1e3;
    for (int k = 0; k < OP_KINDS; k++) {
        hist_sub(&g_chk.recent[k], &cur[k], &ref->h[k]);
        if (!g_chk.have_baseline[k] && cur[k].count >= (uint64_t)g_chk.baseline_count) {
            g_chk.baseline[k] = cur[k];
            g_chk.have_baseline[k] = 1;
            log_info("operation %s: baseline of %llu observations, p50 %.3f ms, p99 %.3f ms", NAMES[k],
                     (unsigned long long)cur[k].count, opstats_hist_quantile(&cur[k], 0.5) * 1e3,
                     opstats_hist_quantile(&cur[k], 0.99) * 1e3);
        }
        int was = g_chk.regressed[k];
        int now_reg = 0;
        double rp99 = opstats_hist_quantile(&g_chk.recent[k], 0.99);
        double bp99 = opstats_hist_quantile(&g_chk.baseline[k], 0.99);
        if (g_chk.have_baseline[k] && g_chk.recent[k].count >= (uint64_t)g_chk.min_recent)
            now_reg = rp99 > g_chk.factor * bp99;
        else
            now_reg = was && g_chk.recent[k].count > 0; /* too little recent data to change the verdict */
        if (now_reg && !was) {
            g_chk.regressions[k]++;
            log_warn("operation %s regressed: recent p99 %.3f ms over %.0f s is more than %.2f x the baseline p99 "
                     "%.3f ms",
                     NAMES[k], rp99 * 1e3, g_chk.recent_span_s, g_chk.factor, bp99 * 1e3);
        } else if (!now_reg && was) {
            log_info("operation %s recovered: recent p99 %.3f ms, baseline p99 %.3f ms", NAMES[k], rp99 * 1e3,
                     bp99 * 1e3);
        }
        g_chk.regressed[k] = now_reg;
    }
}

void opstats_check_at(int64_t now)
{
    pthread_mutex_lock(&g_chk.mu);
    check_locked(now);
    pthread_mutex_unlock(&g_chk.mu);
}

void opstats_snapshot_at(opstats_op out[OP_KINDS], int64_t now)
{
    pthread_mutex_lock(&g_chk.mu);
    check_locked(now);
    opstats_hist cur[OP_KINDS];
    read_all(cur);
    for (int k = 0; k < OP_KINDS; k++) {
        opstats_op *o = &out[k];
        memset(o, 0, sizeof *o);
        o->all = cur[k];
        int64_t th = atomic_load(&g_threshold_ns[k]);
        o->threshold_ms = th < 0 ? -1 : (double)th / 1e6;
        o->crossings = atomic_load(&g_crossings[k]);
        o->baseline_ready = g_chk.have_baseline[k];
        o->baseline = g_chk.baseline[k];
        o->recent = g_chk.recent[k];
        o->recent_span_s = g_chk.recent_span_s;
        o->baseline_p50 = opstats_hist_quantile(&o->baseline, 0.5);
        o->baseline_p99 = opstats_hist_quantile(&o->baseline, 0.99);
        o->recent_p50 = opstats_hist_quantile(&o->recent, 0.5);
        o->recent_p99 = opstats_hist_quantile(&o->recent, 0.99);
        o->regressed = g_chk.regressed[k];
        o->regressions = g_chk.regressions[k];
    }
    pthread_mutex_unlock(&g_chk.mu);
}

void opstats_snapshot(opstats_op out[OP_KINDS]) { opstats_snapshot_at(out, now_ms()); }
