/* memory — the LLM memory layers over one flush: M1 episodes and M2 facts (DESIGN §1, seed phase 3).
 *
 * Owns: the prompts, the reading of model output into episodes, facts and decisions, and one operation
 * per layer and flush. The flush manager (core/flushmgr.h) runs M1 and M2 of a flush in parallel, on
 * different workers; neither waits for the other, and their writes are independent transactions.
 *
 *   M1  flush messages -> one chat call ("memfuse-task: episodes") -> episodes (self-contained text,
 *       occurred_at resolved against the messages' own timestamps, participants, the messages covered)
 *       -> store.episodes_add (the episodes and "M1 done" in one transaction) -> embedding queue.
 *   M2  flush messages -> one chat call ("memfuse-task: facts") -> facts; those under min_confidence
 *       dropped -> exact duplicates (normalised-content hash, against the user's current facts and within
 *       the flush) and near duplicates (cosine >= dup_similarity with a current fact, through the user's
 *       vector index) dropped with no further call -> the remaining facts' most similar current facts
 *       (at most `candidates` each, cosine >= candidate_similarity) -> one chat call ("memfuse-task:
 *       decide") only if some fact has a candidate: add / update / invalidate / ignore -> store.facts_apply
 *       (new versions, retired ones and "M2 done" in one transaction) -> the new facts' vectors stored and
 *       indexed at once (the next flush's duplicate check sees them), retired facts out of the index.
 *   M2 of one user never runs twice at once (the flush manager serialises it), so decisions always see
 *   the facts the previous flush left.
 *
 * Model output is never trusted: it is read leniently (llm/llm_json.h), every field is checked and cut to
 * its limit, and unusable output is a MEM_BAD_OUTPUT that the flush manager retries a few times, then
 * gives up on. The parsers are pure functions (fuzzed: tests/fuzz/fuzz_llm_output.c). */
#ifndef MEMFUSE_MEMORY_H
#define MEMFUSE_MEMORY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/embedq.h"
#include "core/user_index.h"
#include "embed/embed.h"
#include "llm/llm.h"
#include "store/store.h"
#include "util/arena.h"
#include "util/metrics.h"

enum mem_rc {
    MEM_OK = 0,
    MEM_RETRY,      /* transient (LLM or store unavailable, shutting down): try again later */
    MEM_BAD_OUTPUT, /* the model's answer could not be used */
    MEM_GONE,       /* the flush no longer exists (its session or user was deleted) */
};
const char *mem_rc_name(int rc);

#define MEM_MAX_EPISODES 16   /* per flush */
#define MEM_MAX_FACTS 32      /* per flush */
#define MEM_MAX_LIST 16       /* participants, entities per item */
#define MEM_TEXT_MAX 2000     /* bytes of an episode's or fact's text */
#define MEM_NAME_MAX 100      /* bytes of a participant or entity */
#define MEM_PROMPT_MSG_MAX 2000 /* bytes of one message shown to the model */

typedef struct mem_config {
    double min_confidence;       /* facts below are dropped (default 0.6) */
    double dup_similarity;       /* cosine from which a new fact duplicates a current one (default 0.95) */
    double candidate_similarity; /* cosine from which a current fact is shown to the decider (default 0.6) */
    int candidates;              /* current facts shown per new fact (default 4) */
    int timeout_ms;              /* deadline of one layer's chat calls, retries included (default 120000) */
} mem_config;

typedef struct mem_stats {
    _Atomic uint64_t episodes, facts_extracted, facts_low_confidence, dup_exact, dup_near, decide_calls,
        decide_saved /* flushes whose only candidates were duplicates: a decision call avoided */,
        decided[4] /* add update invalidate ignore */, facts_stored, facts_retired, bad_output;
    /* per layer (index 1 = M1, 2 = M2), successful operations only: the whole operation, and the part
     * spent waiting for the LLM (total - llm = this server's own work) */
    met_hist total[3], llm[3];
} mem_stats;

typedef struct mem_ctx {
    mem_config cfg;
    store *st;
    llm *llm;
    embedder *emb;    /* may be NULL: only exact duplicates are then caught and every new fact is added */
    user_index *ui;   /* may be NULL with emb */
    embedq *eq;       /* may be NULL: vectors are then left to the start-up scan */
    void (*changed)(void *ctx, const char *user_id); /* a user's memory changed (answer caches) */
    void *changed_ctx;
    mem_stats stats;
} mem_ctx;

void mem_init(mem_ctx *m, const mem_config *cfg, store *st, llm *l, embedder *emb, user_index *ui, embedq *eq);

/* One layer (1 = M1, 2 = M2) of one flush. err gets a reason when the result is not MEM_OK. */
int mem_run_layer(mem_ctx *m, const store_flush *f, int layer, char *err, size_t errlen);
int m1_run(mem_ctx *m, const store_flush *f, char *err, size_t errlen);
int m2_run(mem_ctx *m, const store_flush *f, char *err, size_t errlen);

/* --- model output (pure; exposed for tests and the fuzzer) --- */

typedef struct m1_episode {
    const char *content, *occurred_at; /* occurred_at NULL when the model gave no usable date */
    const char **participants;
    size_t n_participants;
    int *refs; /* 1-based message numbers, ascending, distinct; all messages when the model named none */
    size_t n_refs;
} m1_episode;

enum m2_action { M2_ADD = 0, M2_UPDATE = 1, M2_INVALIDATE = 2, M2_IGNORE = 3 };

typedef struct m2_fact {
    const char *content, *type; /* type: preference personal plan decision other */
    double confidence;          /* in [0,1]; 0.8 when the model gave none */
    const char **entities;
    size_t n_entities;
    int *refs;
    size_t n_refs;
} m2_fact;

typedef struct m2_decision {
    int action; /* enum m2_action */
    int target; /* 1-based candidate number for update / invalidate / ignore, 0: none */
} m2_decision;

/* Each returns 0 with the items read (possibly none), or -1 when the text holds no usable answer. */
int m1_parse(const char *text, size_t len, int n_msgs, arena *a, m1_episode **out, size_t *n);
int m2_parse_facts(const char *text, size_t len, int n_msgs, arena *a, m2_fact **out, size_t *n);
/* out has n_facts slots, each set (M2_ADD with no target when the model said nothing usable of it). An
 * update / invalidate / ignore without a valid target becomes an add (ignore: dropped only when it names
 * a candidate). */
int m2_parse_decisions(const char *text, size_t len, int n_facts, int n_cands, m2_decision *out);

/* Normalised content (lowercase ASCII, collapsed whitespace, no trailing . ! ?) hashed: 64 hex + NUL. */
void mem_fact_hash(const char *content, char out[65]);

/* The conversation as the prompts show it: one line "[N] <created_at> <role>: <text>" per message, text
 * on one line and cut to MEM_PROMPT_MSG_MAX bytes. Arena string. */
char *mem_format_messages(arena *a, const store_message *msgs, size_t n);

#endif
