/* user_index — see user_index.h. */
#include "core/user_index.h"
#include "core/qcache.h"
#include "util/log.h"
#include "util/timeutil.h"

static int64_t now_ms(void) { return time_mono_ns() / 1000000; }

/* Frees svc's index (its write lock held) and gives its bytes back. */
static void drop(user_index *ui, user_svc *svc)
{
    if (!svc->vi)
        return;
    vindex_free(svc->vi);
    svc->vi = NULL;
    atomic_fetch_sub(&ui->loaded, svc->vi_bytes);
    svc->vi_bytes = 0;
}

typedef struct lru_ctx {
    user_svc *keep, *oldest;
    int64_t oldest_ms;
} lru_ctx;

static void find_lru(user_svc *svc, void *arg)
{
    lru_ctx *c = arg;
    int64_t used = atomic_load(&svc->vi_used_ms);
    if (svc == c->keep || !svc->vi_bytes || (c->oldest && used >= c->oldest_ms))
        return;
    if (c->oldest)
        registry_put(c->oldest);
    atomic_fetch_add(&svc->refs, 1);
    c->oldest = svc;
    c->oldest_ms = used;
}

/* Unloads least recently used indexes other than keep's until the loaded total fits the budget. */
static void evict(user_index *ui, user_svc *keep)
{
    while (ui->budget && atomic_load(&ui->loaded) > ui->budget) {
        lru_ctx c = {.keep = keep};
        registry_foreach(ui->reg, find_lru, &c);
        if (!c.oldest)
            return;
        pthread_rwlock_wrlock(&c.oldest->vi_lock);
        drop(ui, c.oldest);
        pthread_rwlock_unlock(&c.oldest->vi_lock);
        atomic_fetch_add(&ui->evictions, 1);
        log_debug("vector index of user %s evicted (budget %zu bytes)", c.oldest->user_id, ui->budget);
        registry_put(c.oldest);
    }
}

static int load(user_index *ui, user_svc *svc)
{
    arena a;
    arena_init(&a);
    store_vector *v;
    size_t n;
    int rc = ui->st->ops->vectors_of_user(ui->st, svc->user_id, ui->model, ui->dim, &a, &v, &n);
    vindex *vi = rc == STORE_OK ? vindex_new(ui->dim) : NULL;
    if (vi)
        vindex_set_hnsw_ef(vi, ui->hnsw_ef);
    if (rc == STORE_OK && (!vi || vindex_set_hnsw_threshold(vi, ui->hnsw_threshold) != 0))
        rc = STORE_ERROR;
    for (size_t i = 0; rc == STORE_OK && i < n; i++)
        if (vindex_put(vi, v[i].u.id, v[i].u.type, v[i].u.session_id, v[i].u.agent_id, v[i].vec) != 0)
            rc = STORE_ERROR;
    arena_free(&a);
    if (rc != STORE_OK) {
        vindex_free(vi);
        return rc;
    }
    svc->vi = vi;
    svc->vi_bytes = vindex_bytes(vi);
    atomic_fetch_add(&ui->loaded, svc->vi_bytes);
    atomic_fetch_add(&ui->loads, 1);
    log_debug("vector index of user %s loaded: %zu vectors", svc->user_id, n);
    return STORE_OK;
}

vindex *uidx_acquire(user_index *ui, const char *user_id, user_svc **svc_out, int *rc)
{
    *rc = STORE_OK;
    user_svc *svc = registry_get(ui->reg, user_id, 1);
    if (!svc) {
        *rc = STORE_ERROR;
        return NULL;
    }
    atomic_store(&svc->vi_used_ms, now_ms());
    pthread_rwlock_rdlock(&svc->vi_lock);
    while (!svc->vi) {
        pthread_rwlock_unlock(&svc->vi_lock);
        pthread_rwlock_wrlock(&svc->vi_lock);
        int loaded = 0;
        if (!svc->vi) {
            if ((*rc = load(ui, svc)) != STORE_OK) {
                pthread_rwlock_unlock(&svc->vi_lock);
                registry_put(svc);
                return NULL;
            }
            loaded = 1;
        }
        pthread_rwlock_unlock(&svc->vi_lock);
        if (loaded)
            evict(ui, svc);
        pthread_rwlock_rdlock(&svc->vi_lock);
    }
    *svc_out = svc;
    return svc->vi;
}

void uidx_release(user_svc *svc)
{
    pthread_rwlock_unlock(&svc->vi_lock);
    registry_put(svc);
}

/* The user's service with its index write-locked, if the index is loaded; NULL (nothing held) otherwise. */
static user_svc *lock_loaded(user_index *ui, const char *user_id)
{
    user_svc *svc = registry_get(ui->reg, user_id, 0);
    if (!svc)
        return NULL;
    pthread_rwlock_wrlock(&svc->vi_lock);
    if (!svc->vi) {
        pthread_rwlock_unlock(&svc->vi_lock);
        registry_put(svc);
        return NULL;
    }
    return svc;
}

/* Brings the budget's total in line with the index's size after it changed (write lock held): growth,
 * and a graph built or rebuilt by a put or a remove, count against the budget. */
static void recount(user_index *ui, user_svc *svc)
{
    size_t b = vindex_bytes(svc->vi);
    if (b > svc->vi_bytes)
        atomic_fetch_add(&ui->loaded, b - svc->vi_bytes);
    else
        atomic_fetch_sub(&ui->loaded, svc->vi_bytes - b);
    svc->vi_bytes = b;
}

void uidx_put(user_index *ui, const store_unit *u, const float *vec)
{
    qcache_bump(ui->reg, u->user_id); /* the vector is stored: answers may change */
    user_svc *svc = lock_loaded(ui, u->user_id);
    if (!svc)
        return;
    if (vindex_put(svc->vi, u->id, u->type, u->session_id, u->agent_id, vec) != 0)
        drop(ui, svc); /* out of memory: the next query reloads it from the store */
    else
        recount(ui, svc);
    uidx_release(svc);
}

void uidx_remove(user_index *ui, const char *user_id, const char *const *ids, size_t n)
{
    user_svc *svc = lock_loaded(ui, user_id);
    if (!svc)
        return;
    for (size_t i = 0; i < n; i++)
        vindex_remove(svc->vi, ids[i]);
    recount(ui, svc);
    uidx_release(svc);
}

void uidx_remove_session(user_index *ui, const char *user_id, const char *session_id)
{
    user_svc *svc = lock_loaded(ui, user_id);
    if (!svc)
        return;
    vindex_remove_session(svc->vi, session_id);
    recount(ui, svc);
    uidx_release(svc);
}

static void unload(user_svc *svc, void *ctx)
{
    pthread_rwlock_wrlock(&svc->vi_lock);
    drop(ctx, svc);
    pthread_rwlock_unlock(&svc->vi_lock);
}

void uidx_unload_all(user_index *ui) { registry_foreach(ui->reg, unload, ui); }

void uidx_forget_user(user_index *ui, const char *user_id)
{
    user_svc *svc = registry_get(ui->reg, user_id, 0);
    if (!svc)
        return;
    unload(svc, ui);
    registry_put(svc);
}

int uidx_preload(user_index *ui, int n)
{
    if (n <= 0 || !ui->st->ops->users_recent)
        return 0;
    arena a;
    arena_init(&a);
    const char **ids;
    size_t nu;
    int loaded = 0;
    if (ui->st->ops->users_recent(ui->st, n, &a, &ids, &nu) == STORE_OK) {
        for (size_t i = 0; i < nu; i++) {
            user_svc *svc;
            int rc;
            if (uidx_acquire(ui, ids[i], &svc, &rc)) {
                uidx_release(svc);
                loaded++;
            }
            if (ui->budget && atomic_load(&ui->loaded) >= ui->budget)
                break; /* the budget is full: the rest load on demand */
        }
    }
    arena_free(&a);
    return loaded;
}
