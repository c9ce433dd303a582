/* qcache — see qcache.h. */
#include "core/qcache.h"

#include <stdlib.h>
#include <string.h>

int qcache_get(user_svc *u, uint64_t key, uint64_t gen, char **body, size_t *len)
{
    int found = 0;
    pthread_mutex_lock(&u->cache_mu);
    for (int i = 0; i < QCACHE_N && !found; i++) {
        qcache_entry *e = &u->cache[i];
        if (e->body && e->key == key && e->gen == gen) {
            *body = malloc(e->len + 1);
            if (*body) {
                memcpy(*body, e->body, e->len + 1);
                *len = e->len;
                found = 1;
            }
        }
    }
    pthread_mutex_unlock(&u->cache_mu);
    return found;
}

void qcache_put(user_svc *u, uint64_t key, uint64_t gen, const char *body, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return;
    memcpy(copy, body, len);
    copy[len] = '\0';
    pthread_mutex_lock(&u->cache_mu);
    qcache_entry *e = NULL;
    for (int i = 0; i < QCACHE_N && !e; i++) /* the same key again replaces its entry */
        if (u->cache[i].body && u->cache[i].key == key)
            e = &u->cache[i];
    if (!e) {
        e = &u->cache[u->cache_next];
        u->cache_next = (u->cache_next + 1) % QCACHE_N;
    }
    free(e->body);
    *e = (qcache_entry){.key = key, .gen = gen, .body = copy, .len = len};
    pthread_mutex_unlock(&u->cache_mu);
}

void qcache_clear(user_svc *u)
{
    pthread_mutex_lock(&u->cache_mu);
    for (int i = 0; i < QCACHE_N; i++) {
        free(u->cache[i].body);
        u->cache[i].body = NULL;
    }
    pthread_mutex_unlock(&u->cache_mu);
}

void qcache_bump(registry *r, const char *user_id)
{
    user_svc *u = registry_get(r, user_id, 0);
    if (!u)
        return; /* no service, no cached answers */
    atomic_fetch_add(&u->gen, 1);
    registry_put(u);
}

static void bump(user_svc *u, void *ctx) { atomic_fetch_add(&u->gen, 1); }

void qcache_bump_all(registry *r) { registry_foreach(r, bump, NULL); }
