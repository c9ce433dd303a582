/* opstats — latency of the seed's operations (DESIGN §2 phase 4), always on.
 *
 * Owns: one fixed-bucket histogram per operation kind (process-wide: the operations happen in modules
 * that share no other state, the store's pool included), each with an alert threshold (the seed's
 * 10/100/150/150/50/10 ms levels by default, configurable); an observation over its threshold is counted
 * and logged (rate-limited). A regression check compares recent percentiles with a baseline window.
 * opstats_observe() is lock-free and safe from any thread. */
#ifndef MEMFUSE_OPSTATS_H
#define MEMFUSE_OPSTATS_H

#include <stdint.h>

enum op_kind {
    OP_POOL_ACQUIRE = 0, /* a store connection checked out */
    OP_SERVICE_LOOKUP,   /* a user's service found or created in the registry */
    OP_FLUSH_HANDOFF,    /* consolidated rounds handed to the flush manager */
    OP_M0,               /* a message add made durable (M0 write) */
    OP_M1,               /* one M1 (episode) operation for a flush, LLM call included */
    OP_M2,               /* one M2 (fact) operation for a flush, LLM calls included */
    OP_EMBED_BATCH,      /* one embedding batch */
    OP_VECTOR_SEARCH,    /* one dense search of a user's index */
    OP_BM25_SEARCH,      /* one keyword search */
    OP_FUSION,           /* fusing and ranking the candidates of one query */
    OP_KINDS
};

void opstats_observe(enum op_kind k, int64_t us);

#endif
