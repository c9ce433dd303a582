/* qcache — each user's cache of recent query answers.
 *
 * Owns: up to QCACHE_N answers per user (the response bytes), in the user's user_svc, guarded by its
 * cache mutex, replaced round-robin. An answer is keyed by a hash of the whole request (query text and
 * every option) and stamped with the user's write generation read *before* it was computed; it is served
 * only while the generation is unchanged. Every write that can change a query's answer bumps the
 * generation after it is durable (messages, knowledge, sessions, and vectors stored by the embedding
 * pipeline), so a cached answer is never older than the last write the client could have seen. */
#ifndef MEMFUSE_QCACHE_H
#define MEMFUSE_QCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/registry.h"

/* The answer cached under key at generation gen: a malloc'ed copy in *body, or 0 if none. */
int qcache_get(user_svc *u, uint64_t key, uint64_t gen, char **body, size_t *len);
void qcache_put(user_svc *u, uint64_t key, uint64_t gen, const char *body, size_t len);
void qcache_clear(user_svc *u); /* frees every entry (used when the user_svc is freed) */

static inline uint64_t qcache_gen(user_svc *u) { return atomic_load(&u->gen); }
/* A write of user_id is durable: its cached answers are stale. */
void qcache_bump(registry *r, const char *user_id);
void qcache_bump_all(registry *r);

#endif
