/* registry — see registry.h. */
#include "core/registry.h"
#include "util/opstats.h"
#include "util/timeutil.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int registry_init(registry *r)
{
    memset(r, 0, sizeof *r);
    r->nbuckets = 256;
    r->buckets = calloc(r->nbuckets, sizeof *r->buckets);
    if (!r->buckets)
        return -1;
    pthread_rwlock_init(&r->lock, NULL);
    return 0;
}

static void svc_free(user_svc *u)
{
    for (int i = 0; i < QCACHE_N; i++) /* the cache's entries (core/qcache.h) */
        free(u->cache[i].body);
    pthread_mutex_destroy(&u->cache_mu);
    vindex_free(u->vi); /* its bytes left the budget in uidx_forget_user() */
    pthread_rwlock_destroy(&u->vi_lock);
    pthread_mutex_destroy(&u->mu);
    free(u->rounds);
    free(u);
}

void registry_destroy(registry *r)
{
    if (!r->buckets)
        return;
    for (size_t i = 0; i < r->nbuckets; i++) {
        for (user_svc *u = r->buckets[i], *next; u; u = next) {
            next = u->next;
            svc_free(u);
        }
    }
    free(r->buckets);
    r->buckets = NULL;
    pthread_rwlock_destroy(&r->lock);
}

static size_t bucket(const registry *r, const char *id, size_t len)
{
    return (size_t)XXH3_64bits(id, len) & (r->nbuckets - 1);
}

static user_svc *find(const registry *r, const char *id, size_t len)
{
    for (user_svc *u = r->buckets[bucket(r, id, len)]; u; u = u->next)
        if (strcmp(u->user_id, id) == 0)
            return u;
    return NULL;
}

static void grow(registry *r)
{
    size_t n = r->nbuckets * 2;
    user_svc **nb = calloc(n, sizeof *nb);
    if (!nb)
        return; /* keep the longer chains; still correct */
    for (size_t i = 0; i < r->nbuckets; i++) {
        for (user_svc *u = r->buckets[i], *next; u; u = next) {
            next = u->next;
            size_t b = (size_t)XXH3_64bits(u->user_id, strlen(u->user_id)) & (n - 1);
            u->next = nb[b];
            nb[b] = u;
        }
    }
    free(r->buckets);
    r->buckets = nb;
    r->nbuckets = n;
}

static user_svc *lookup(registry *r, const char *user_id, int create)
{
    size_t len = strlen(user_id);
    if (len >= REG_ID_MAX)
        return NULL;
    pthread_rwlock_rdlock(&r->lock);
    user_svc *u = find(r, user_id, len);
    if (u)
        atomic_fetch_add(&u->refs, 1);
    pthread_rwlock_unlock(&r->lock);
    if (u || !create)
        return u;

    user_svc *fresh = calloc(1, sizeof *fresh);
    if (!fresh)
        return NULL;
    memcpy(fresh->user_id, user_id, len + 1);
    pthread_mutex_init(&fresh->mu, NULL);
    pthread_rwlock_init(&fresh->vi_lock, NULL);
    pthread_mutex_init(&fresh->cache_mu, NULL);
    atomic_init(&fresh->refs, 2); /* the map's and the caller's */

    pthread_rwlock_wrlock(&r->lock);
    u = find(r, user_id, len); /* another thread may have created it meanwhile */
    if (u) {
        atomic_fetch_add(&u->refs, 1);
    } else {
        if (r->count + 1 > r->nbuckets)
            grow(r);
        size_t b = bucket(r, user_id, len);
        fresh->next = r->buckets[b];
        r->buckets[b] = fresh;
        r->count++;
        u = fresh;
        fresh = NULL;
    }
    pthread_rwlock_unlock(&r->lock);
    if (fresh)
        svc_free(fresh);
    return u;
}

/* Timed for the operation statistics (OP_SERVICE_LOOKUP), creation included. */
user_svc *registry_get(registry *r, const char *user_id, int create)
{
    int64_t t0 = time_mono_ns();
    user_svc *u = lookup(r, user_id, create);
    opstats_observe_ns(OP_SERVICE_LOOKUP, time_mono_ns() - t0);
    return u;
}

void registry_put(user_svc *u)
{
    if (u && atomic_fetch_sub(&u->refs, 1) == 1)
        svc_free(u);
}

void registry_remove(registry *r, const char *user_id)
{
    size_t len = strlen(user_id);
    if (len >= REG_ID_MAX)
        return;
    user_svc *gone = NULL;
    pthread_rwlock_wrlock(&r->lock);
    for (user_svc **pp = &r->buckets[bucket(r, user_id, len)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->user_id, user_id) == 0) {
            gone = *pp;
            *pp = gone->next;
            r->count--;
            break;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    registry_put(gone); /* the map's reference */
}

size_t registry_count(registry *r)
{
    pthread_rwlock_rdlock(&r->lock);
    size_t n = r->count;
    pthread_rwlock_unlock(&r->lock);
    return n;
}

void registry_foreach(registry *r, void (*fn)(user_svc *u, void *ctx), void *ctx)
{
    pthread_rwlock_rdlock(&r->lock);
    size_t n = r->count, k = 0;
    user_svc **all = malloc((n ? n : 1) * sizeof *all);
    if (all) {
        for (size_t i = 0; i < r->nbuckets; i++)
            for (user_svc *u = r->buckets[i]; u && k < n; u = u->next) {
                atomic_fetch_add(&u->refs, 1);
                all[k++] = u;
            }
    }
    pthread_rwlock_unlock(&r->lock);
    if (!all)
        return;
    for (size_t i = 0; i < k; i++) {
        fn(all[i], ctx);
        registry_put(all[i]);
    }
    free(all);
}
