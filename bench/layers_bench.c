/* layers_bench — the memory layers' benchmark of BENCHMARKS.md "## Memory layers (M0/M1/M2)".
 *
 * Drives the real components in one process: an SQLite store in a temporary directory (flushes on), the
 * use-lite embedder, the per-user vector indexes and the LLM client against an OpenAI-compatible server
 * (bench/layers_bench.sh starts the test suite's fake, tests/fakes/fake_openai.py, with a fixed latency).
 * Per flush, on one thread so every time is the operation's own:
 *   M0  the round stored durably with its flush recorded (store.messages_add, consolidating), then the
 *       round's messages embedded, their vectors stored and indexed (what the embedding pipeline does
 *       after the 201) — reported separately and together;
 *   M1  m1_run: the episodes call and the episodes stored;
 *   M2  m2_run: the facts call, confidence filter, exact/near duplicate checks, candidates, the decide
 *       call when needed, facts stored, their vectors stored and indexed.
 * For M1 and M2 the LLM wait is measured (mem_stats.llm) and reported beside the operation's own work
 * (total - LLM wait), which is what compares with the seed's ~60 / ~50 ms.
 *
 * The conversation: users state personal facts; some statements repeat earlier ones word for word,
 * some are close paraphrases, some change an earlier fact (a decide call with a candidate), the rest are
 * new. Deterministic (fixed seed). Reports LLM calls and tokens per 100 messages and the decide calls
 * saved by duplicate detection.
 *
 * Usage: layers_bench --llm-url URL [--flushes N] [--users U] [--latency-ms L (as configured, for the
 *        report)] [--model-dir DIR]   (run from the repository root). Prints medians and percentiles;
 *        nothing here asserts a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/registry.h"
#include "core/user_index.h"
#include "embed/embed.h"
#include "llm/llm.h"
#include "memory/memory.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/log.h"
#include "util/timeutil.h"

#define MAX_FLUSHES 2000

/* Statements: base[i] new; para[i] a close paraphrase of base[i] (near duplicate); change[i] a changed
 * version of base[i] (a related fact that goes to the decider). */
static const char *const base[] = {
    "I have a dog named Rex.",
    "My sister lives in Berlin.",
    "I work as a nurse at the city hospital.",
    "I drink espresso every morning.",
    "I am allergic to peanuts.",
    "My favourite band is Radiohead.",
    "I am training for the Boston marathon.",
    "My daughter Emma started school in September.",
    "I drive a blue Volvo estate.",
    "I am learning Japanese on weekends.",
    "My birthday is on the fourth of March.",
    "I prefer window seats on long flights.",
    "I grow tomatoes on my balcony.",
    "My partner Sam is a software engineer.",
    "I read mostly science fiction novels.",
    "I play the cello in an amateur orchestra.",
};
static const char *const para[] = {
    "I have a dog called Rex.",
    "My sister is living in Berlin.",
    "I work as a nurse at the city's hospital.",
    "I drink an espresso every morning.",
    "I am allergic to peanuts!",
    "My favorite band is Radiohead.",
    "I am training for the Boston Marathon race.",
    "My daughter Emma started at school in September.",
    "I drive a blue Volvo estate car.",
    "I am learning Japanese at weekends.",
    "My birthday is on the 4th of March.",
    "I prefer a window seat on long flights.",
    "I grow tomatoes on the balcony.",
    "My partner Sam works as a software engineer.",
    "I read mostly science-fiction novels.",
    "I play cello in an amateur orchestra.",
};
static const char *const change[] = {
    "I gave my dog Rex to my parents, I have no dog now.",
    "My sister moved from Berlin to Munich.",
    "I quit nursing and now work as a paramedic.",
    "I switched from espresso to green tea in the morning.",
    "My peanut allergy test came back negative.",
    "My favourite band is now Portishead.",
    "I dropped out of the Boston marathon training.",
    "My daughter Emma changed schools in January.",
    "I sold the Volvo and drive a red bicycle now.",
    "I stopped learning Japanese and started Korean.",
    "I celebrate my birthday in April now.",
    "I now prefer aisle seats on long flights.",
    "I stopped growing tomatoes and grow basil instead.",
    "My partner Sam became a teacher.",
    "I read mostly history books these days.",
    "I quit the orchestra and play cello alone.",
};
#define N_STMT (sizeof base / sizeof base[0])

static const char *const replies[] = {"Thanks for telling me.", "Good to know!", "I will remember that.",
                                      "Noted.", "That sounds great."};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static double now_ms(void) { return (double)time_mono_ns() / 1e6; }

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int n, double p)
{
    if (n <= 0)
        return 0;
    double *s = malloc(sizeof *s * (size_t)n);
    memcpy(s, v, sizeof *s * (size_t)n);
    qsort(s, (size_t)n, sizeof *s, cmp_d);
    double r = s[(int)(p * (n - 1) + 0.5)];
    free(s);
    return r;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "layers_bench: %s: %s\n", what, why);
    exit(1);
}

/* Per user: which statement index it stated and in which form (0 none, 1 base, 2 changed). */
typedef struct user_state {
    char id[40], session[40];
    int stated[N_STMT];
} user_state;

/* The next user statement and its kind (for the report). */
enum kind { K_NEW, K_REPEAT, K_PARA, K_CHANGE, K_COUNT };
static const char *const kind_name[K_COUNT] = {"new", "exact repeat", "paraphrase", "change of mind"};

static const char *next_statement(user_state *u, int *kind)
{
    int known[N_STMT], nk = 0, fresh[N_STMT], nf = 0;
    for (size_t i = 0; i < N_STMT; i++)
        (u->stated[i] ? known : fresh)[u->stated[i] ? nk++ : nf++] = (int)i;
    uint32_t r = rnd() % 100;
    if (nk && (r < 30 || !nf)) { /* repeat something already said, word for word */
        int i = known[rnd() % (uint32_t)nk];
        *kind = K_REPEAT;
        return u->stated[i] == 2 ? change[i] : base[i];
    }
    if (nk && r < 40) {
        for (int t = 0; t < nk; t++) {
            int i = known[(rnd() + (uint32_t)t) % (uint32_t)nk];
            if (u->stated[i] == 1) {
                *kind = K_PARA;
                return para[i];
            }
        }
    }
    if (nk && r < 60) {
        for (int t = 0; t < nk; t++) {
            int i = known[(rnd() + (uint32_t)t) % (uint32_t)nk];
            if (u->stated[i] == 1) {
                u->stated[i] = 2;
                *kind = K_CHANGE;
                return change[i];
            }
        }
    }
    int i = fresh[rnd() % (uint32_t)nf];
    u->stated[i] = 1;
    *kind = K_NEW;
    return base[i];
}

/* The round's messages embedded, stored and indexed, as the embedding pipeline does. */
static void embed_round(store *st, embedder *emb, user_index *ui, const store_added *added)
{
    arena a;
    arena_init(&a);
    store_unit *u;
    size_t nu;
    char err[256];
    if (st->ops->units_get(st, STORE_HIT_MESSAGE, added->message_ids, added->n, &a, &u, &nu) != STORE_OK)
        die("units_get", "failed");
    const char *texts[8];
    size_t lens[8];
    for (size_t i = 0; i < nu; i++) {
        texts[i] = u[i].text;
        lens[i] = strlen(u[i].text);
    }
    int dim = embed_dim(emb);
    float *v = malloc(sizeof *v * (size_t)dim * nu);
    if (embed_batch(emb, texts, lens, (int)nu, v, err, sizeof err) != 0)
        die("embed_batch", err);
    size_t stored = 0;
    if (st->ops->vectors_put(st, u, nu, v, dim, embed_model_id(emb), &stored) != STORE_OK)
        die("vectors_put", "failed");
    for (size_t i = 0; i < nu; i++)
        uidx_put(ui, &u[i], v + (size_t)dim * i);
    free(v);
    arena_free(&a);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *model_dir = "models/use-lite";
    int flushes = 200, users = 25, latency = -1; /* 8 flushes per user: the statement mix stays as drawn */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--llm-url") && i + 1 < argc)
            url = argv[++i];
        else if (!strcmp(argv[i], "--flushes") && i + 1 < argc)
            flushes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--users") && i + 1 < argc)
            users = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latency-ms") && i + 1 < argc)
            latency = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model-dir") && i + 1 < argc)
            model_dir = argv[++i];
        else
            die("usage", "layers_bench --llm-url URL [--flushes N] [--users U] [--latency-ms L] [--model-dir D]");
    }
    if (!url || flushes < 1 || flushes > MAX_FLUSHES || users < 1 || users > 64)
        die("usage", "--llm-url is required; 1 <= flushes <= 2000, 1 <= users <= 64");
    log_init(LOG_ERROR); /* the operation thresholds count the LLM wait: their warnings are expected here */

    char dir[] = "/tmp/memfuse-layers-bench-XXXXXX";
    if (!mkdtemp(dir))
        die("mkdtemp", "failed");
    char err[512] = "";
    ids_gen ids;
    ids_gen_init(&ids);
    store_config sc = {.kind = "sqlite", .data_dir = dir, .read_conns = 2, .ids = &ids, .flushes = 1};
    store *st = store_open(&sc, err, sizeof err);
    if (!st)
        die("store_open", err);
    embed_config ec;
    embed_config_default(&ec);
    snprintf(ec.model_dir, sizeof ec.model_dir, "%s", model_dir);
    ec.allow_fallback = 0; /* the figures are for the real model */
    embedder *emb = embed_open(&ec, err, sizeof err);
    if (!emb)
        die("embed_open", err);
    registry reg;
    if (registry_init(&reg) != 0)
        die("registry_init", "out of memory");
    user_index ui = {.reg = &reg, .st = st, .model = embed_model_id(emb), .dim = embed_dim(emb)};
    llm_config lc = {.base_url = url, .model = "bench", .retries = 0, .max_tokens = -1};
    llm *l = llm_open(&lc, err, sizeof err);
    if (!l)
        die("llm_open", err);
    mem_config mc = {0};
    mem_ctx m;
    mem_init(&m, &mc, st, l, emb, &ui, NULL);

    arena a;
    arena_init(&a);
    user_state *us = calloc((size_t)users, sizeof *us);
    store_entity ag;
    if (st->ops->entity_create(st, STORE_AGENTS, "assistant", NULL, &a, &ag) != STORE_OK)
        die("agent", "create failed");
    for (int i = 0; i < users; i++) {
        char name[32];
        snprintf(name, sizeof name, "bench-user-%d", i);
        store_entity u;
        store_session s;
        if (st->ops->entity_create(st, STORE_USERS, name, NULL, &a, &u) != STORE_OK ||
            st->ops->session_create(st, u.id, ag.id, NULL, &a, &s) != STORE_OK)
            die("user", "create failed");
        snprintf(us[i].id, sizeof us[i].id, "%s", u.id);
        snprintf(us[i].session, sizeof us[i].session, "%s", s.id);
    }

    static double m0_store[MAX_FLUSHES], m0_embed[MAX_FLUSHES], m0_all[MAX_FLUSHES];
    static double m1_own[MAX_FLUSHES], m1_llm[MAX_FLUSHES], m2_own[MAX_FLUSHES], m2_llm[MAX_FLUSHES];
    int kinds[K_COUNT] = {0};
    int n_messages = 0;
    double t_start = now_ms();
    for (int f = 0; f < flushes; f++) {
        user_state *u = &us[f % users];
        store_msg_in msgs[4];
        for (int k = 0; k < 2; k++) {
            int kind;
            msgs[2 * k] = (store_msg_in){"user", next_statement(u, &kind)};
            msgs[2 * k + 1] = (store_msg_in){"assistant", replies[rnd() % 5]};
            kinds[kind]++;
        }
        n_messages += 4;
        store_added added = {0};
        double t0 = now_ms();
        if (st->ops->messages_add(st, u->session, msgs, 4, 40, 1, NULL, 0, &a, &added) != STORE_OK ||
            !added.flush_id)
            die("messages_add", "failed or no flush recorded");
        double t1 = now_ms();
        embed_round(st, emb, &ui, &added);
        double t2 = now_ms();
        m0_store[f] = t1 - t0;
        m0_embed[f] = t2 - t1;
        m0_all[f] = t2 - t0;

        store_flush fl;
        if (st->ops->flush_get(st, added.flush_id, &a, &fl) != STORE_OK)
            die("flush_get", "failed");
        for (int layer = 1; layer <= 2; layer++) {
            uint64_t llm0 = atomic_load(&m.stats.llm[layer].sum_ns);
            double s0 = now_ms();
            int rc = mem_run_layer(&m, &fl, layer, err, sizeof err);
            double s1 = now_ms();
            if (rc != MEM_OK)
                die(layer == 1 ? "M1" : "M2", err);
            double waited = (double)(atomic_load(&m.stats.llm[layer].sum_ns) - llm0) / 1e6;
            (layer == 1 ? m1_own : m2_own)[f] = (s1 - s0) - waited;
            (layer == 1 ? m1_llm : m2_llm)[f] = waited;
        }
        arena_reset(&a);
    }
    double took_s = (now_ms() - t_start) / 1000;

    printf("memory layers: %d flushes of 4 messages (2 user statements each) over %d users, %.1f s\n", flushes,
           users, took_s);
    printf("statements:");
    for (int k = 0; k < K_COUNT; k++)
        printf(" %s %d%s", kind_name[k], kinds[k], k + 1 < K_COUNT ? "," : "\n");
    if (latency >= 0)
        printf("fake LLM latency configured: %d ms per chat call (subtracted below as measured)\n", latency);
    printf("\n%-44s %9s %9s %9s %9s %8s\n", "operation per flush (ms)", "p50", "p90", "p99", "anchor", "ratio");
    struct {
        const char *name;
        const double *v;
        double anchor;
    } rows[] = {
        {"M0 store round + record flush", m0_store, 0},
        {"M0 embed + store + index 4 vectors", m0_embed, 0},
        {"M0 total", m0_all, 50},
        {"M1 own work (total - LLM wait)", m1_own, 60},
        {"M1 LLM wait (fake)", m1_llm, 0},
        {"M2 own work (total - LLM wait)", m2_own, 50},
        {"M2 LLM wait (fake, 1-2 calls)", m2_llm, 0},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        double p50 = pct(rows[r].v, flushes, 0.5);
        printf("%-44s %9.3f %9.3f %9.3f", rows[r].name, p50, pct(rows[r].v, flushes, 0.9),
               pct(rows[r].v, flushes, 0.99));
        if (rows[r].anchor > 0)
            printf(" %9.0f %7.0fx\n", rows[r].anchor, p50 > 0 ? rows[r].anchor / p50 : 0);
        else
            printf(" %9s %8s\n", "-", "-");
    }

    llm_stats ls;
    llm_get_stats(l, &ls);
    double per100 = 100.0 / n_messages;
    uint64_t decide = atomic_load(&m.stats.decide_calls), saved = atomic_load(&m.stats.decide_saved);
    printf("\nLLM per 100 messages: %.1f calls (%.1f episodes, %.1f facts, %.1f decide), %.0f prompt + %.0f "
           "completion tokens\n",
           (double)ls.calls * per100, flushes * per100, flushes * per100, (double)decide * per100,
           (double)ls.prompt_tokens * per100, (double)ls.completion_tokens * per100);
    printf("facts: %llu extracted, %llu exact duplicates and %llu near duplicates dropped before any call, "
           "%llu stored, %llu retired\n",
           (unsigned long long)atomic_load(&m.stats.facts_extracted),
           (unsigned long long)atomic_load(&m.stats.dup_exact), (unsigned long long)atomic_load(&m.stats.dup_near),
           (unsigned long long)atomic_load(&m.stats.facts_stored),
           (unsigned long long)atomic_load(&m.stats.facts_retired));
    printf("decide calls: %llu made, %llu saved by duplicate detection (%.0f%% of the decide calls a flush with "
           "candidates would need; %.0f%% of all LLM calls)\n",
           (unsigned long long)decide, (unsigned long long)saved,
           decide + saved ? 100.0 * (double)saved / (double)(decide + saved) : 0,
           ls.calls + saved ? 100.0 * (double)saved / (double)(ls.calls + saved) : 0);
    printf("decisions: add %llu, update %llu, invalidate %llu, ignore %llu\n",
           (unsigned long long)atomic_load(&m.stats.decided[0]), (unsigned long long)atomic_load(&m.stats.decided[1]),
           (unsigned long long)atomic_load(&m.stats.decided[2]), (unsigned long long)atomic_load(&m.stats.decided[3]));

    arena_free(&a);
    free(us);
    llm_close(l);
    uidx_unload_all(&ui);
    registry_destroy(&reg);
    embed_close(emb);
    store_close(st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "layers_bench: could not remove %s\n", dir);
    return 0;
}
