/* registry — per-user in-memory services, found by user id.
 *
 * Owns: one user_svc per user that has been touched since start (or restored at start), in a hash map
 * behind a pthread_rwlock. Lookup is the fast path: a read lock and a probe. Creation takes the write
 * lock once per user. A user_svc is reference-counted: registry_get() returns it with a reference that
 * the caller gives back with registry_put(); registry_remove() unlinks it (user deleted) and it is freed
 * when the last reference goes.
 *
 * A user_svc holds the user's round buffer (round_buffer.h), guarded by its own mutex, and the user's
 * vector index (user_index.h), guarded by its read-write lock. */
#ifndef MEMFUSE_REGISTRY_H
#define MEMFUSE_REGISTRY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "search/vindex.h"
#include "util/ids.h"

#define REG_ID_MAX 40 /* ids are UUID strings (36 bytes) */
#define QCACHE_N 32   /* cached query answers per user (core/qcache.h) */

typedef struct qcache_entry {
    uint64_t key, gen;
    char *body;
    size_t len;
} qcache_entry;

typedef struct rb_round {
    char round_id[REG_ID_MAX];
    int tokens;
} rb_round;

typedef struct user_svc {
    char user_id[REG_ID_MAX];
    _Atomic int refs;
    struct user_svc *next; /* hash chain */

    /* round buffer, guarded by mu */
    pthread_mutex_t mu;
    char session_id[REG_ID_MAX]; /* session of the buffered rounds (all share one) */
    rb_round *rounds;
    size_t n, cap;
    int tokens;
    int pending, pending_tokens; /* adds planned but not yet committed */
    int64_t last_write_ms;

    /* vector index (core/user_index.h), guarded by vi_lock; NULL until first loaded from the store */
    pthread_rwlock_t vi_lock;
    vindex *vi;
    size_t vi_bytes;               /* what vi counts against the index budget */
    _Atomic int64_t vi_used_ms;    /* last acquire, for least-recently-used eviction */

    /* query answers (core/qcache.h), guarded by cache_mu; gen is the user's write generation */
    _Atomic uint64_t gen;
    pthread_mutex_t cache_mu;
    qcache_entry cache[QCACHE_N];
    int cache_next;
} user_svc;

typedef struct registry {
    pthread_rwlock_t lock;
    user_svc **buckets;
    size_t nbuckets, count;
} registry;

int registry_init(registry *r);
void registry_destroy(registry *r);
/* The user's service with a reference, created when missing and create is set; NULL if absent (or on
 * allocation failure, or an id longer than REG_ID_MAX-1). */
user_svc *registry_get(registry *r, const char *user_id, int create);
void registry_put(user_svc *u);
void registry_remove(registry *r, const char *user_id);
size_t registry_count(registry *r);
/* Calls fn on each service with a reference held (the lock is not held during fn). */
void registry_foreach(registry *r, void (*fn)(user_svc *u, void *ctx), void *ctx);

#endif
