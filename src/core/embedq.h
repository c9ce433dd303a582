/* embedq — the embedding pipeline (seed phase 2): adds never wait for embeddings.
 *
 * Owns: a bounded queue of units to embed and the worker threads that drain it. After an add (or a
 * knowledge add or update) is durable, its ids are pushed; a worker takes up to batch_max of them, waiting
 * at most wait_ms for a batch to fill, reads their current text from the store, embeds them with one
 * embed_batch() call, stores the vectors in one group-committed write (skipping units whose text changed
 * meanwhile), and puts them into the users' loaded indexes (user_index.h).
 *
 * Nothing is lost when the queue is full or the process dies: a push that does not fit only marks the
 * queue behind, and a worker with nothing queued then scans the store for units without a vector for the
 * current model (resumable, in store order) and embeds those. The scan also runs once at start, so a
 * crash or a model change heals itself; it is retried after an embedding failure (e.g. a remote embedder
 * that is down). */
#ifndef MEMFUSE_EMBEDQ_H
#define MEMFUSE_EMBEDQ_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/user_index.h"
#include "embed/embed.h"
#include "store/store.h"

#define EMBEDQ_MAX_WORKERS 16

typedef struct embedq_config {
    int capacity;  /* queued units (default 65536) */
    int batch_max; /* units per embedding batch (default 32) */
    int wait_ms;   /* longest wait for a batch to fill (default 2) */
    int workers;   /* threads (default 1) */
} embedq_config;

typedef struct embedq_item {
    int type; /* enum store_hit_type */
    char id[40];
    int64_t queued_ms; /* monotonic, when pushed (for the lag) */
} embedq_item;

typedef struct embedq {
    embedq_config cfg;
    store *st;
    embedder *emb;
    user_index *ui;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    embedq_item *ring;
    size_t head, count;
    int behind;          /* units were dropped or failed: scan the store */
    int scanning;        /* a worker is running a scan page (one at a time) */
    int64_t retry_at_ms; /* no scan before this (after a failure) */
    int64_t cursor[STORE_UNIT_TYPES]; /* scan position per unit type */
    int stopping;
    int n_threads;
    pthread_t threads[EMBEDQ_MAX_WORKERS];
    _Atomic uint64_t embedded, dropped, batches, failures;
} embedq;

int embedq_start(embedq *q, const embedq_config *cfg, store *st, embedder *emb, user_index *ui);
void embedq_stop(embedq *q);
/* Queues units (never blocks; a full queue marks it behind). */
void embedq_push(embedq *q, int type, const char *const *ids, size_t n);
/* Units queued and not yet taken by a worker. */
size_t embedq_depth(embedq *q);
/* How far the pipeline is behind the adds: units queued, the age of the oldest of them (0 when none), and
 * whether a store scan is pending (units were dropped or a batch failed). Embedding batches are timed for
 * the operation statistics (OP_EMBED_BATCH). */
typedef struct embedq_lag {
    size_t depth;
    int64_t oldest_ms;
    int behind;
} embedq_lag;
void embedq_lag_get(embedq *q, embedq_lag *out);

/* One page of the scan for units without a vector for emb's model, from cursor[type] on (updated):
 * embeds and stores at most batch of them, and puts them into ui's loaded indexes when ui is not NULL.
 * Returns how many were embedded, 0 when nothing is left, -1 on failure. Used by the workers and by
 * `memfuse reindex`. */
int embed_scan_page(store *st, embedder *emb, user_index *ui, int64_t cursor[STORE_UNIT_TYPES], int batch,
                    arena *a);

#endif
