/* user_index — each user's vector index, kept coherent with the store.
 *
 * Owns: the protocol around user_svc.vi. An index is loaded from the store (every vector of the user for
 * the current model) on the first query that needs it, under the user's write lock; until then writers
 * leave it alone, since the load will read what they stored. Every change goes store first, index second,
 * both under the same lock, so a load and a change never miss each other:
 *   - a vector stored by the embedding pipeline is put into the index if it is loaded;
 *   - a deleted or updated unit is removed from the index (an update is re-embedded and put again);
 *   - a deleted session's rows are removed; deleting an agent (sessions of many users) unloads every index.
 * A user's deletion frees the index with the user_svc (registry_remove).
 *
 * Memory: loaded indexes count against a budget (bytes). After a load that takes the total over it, the
 * least recently used other indexes are unloaded until it fits (they reload on their next query). At start,
 * the indexes of the most recently active users are loaded ahead of their first query (uidx_preload). */
#ifndef MEMFUSE_USER_INDEX_H
#define MEMFUSE_USER_INDEX_H

#include "core/registry.h"
#include "search/vindex.h"
#include "store/store.h"

typedef struct user_index {
    registry *reg;
    store *st;
    const char *model;
    int dim;
    size_t budget;           /* bytes of loaded indexes; 0: unlimited */
    size_t hnsw_threshold;   /* vectors from which an index searches an HNSW graph; 0: never (exact only) */
    size_t hnsw_ef;          /* candidate list of a graph search; 0: the graph's default */
    _Atomic size_t loaded;   /* bytes loaded now */
    _Atomic uint64_t loads, evictions;
} user_index;

/* The user's index, loaded if needed, with the user's read lock held: release with uidx_release().
 * NULL (nothing held) when it cannot be loaded (*rc says why: a store_rc). */
vindex *uidx_acquire(user_index *ui, const char *user_id, user_svc **svc, int *rc);
void uidx_release(user_svc *svc);

void uidx_put(user_index *ui, const store_unit *u, const float *vec);
void uidx_remove(user_index *ui, const char *user_id, const char *const *ids, size_t n);
void uidx_remove_session(user_index *ui, const char *user_id, const char *session_id);
void uidx_unload_all(user_index *ui);
/* Unloads a user's index before the user is removed from the registry (the user was deleted). */
void uidx_forget_user(user_index *ui, const char *user_id);
/* Loads the indexes of the (at most) n most recently active users; returns how many were loaded. */
int uidx_preload(user_index *ui, int n);

#endif
