/* user_index — see user_index.h. */
#include "core/user_index.h"
#include "util/log.h"

static int load(user_index *ui, user_svc *svc)
{
    arena a;
    arena_init(&a);
    store_vector *v;
    size_t n;
    int rc = ui->st->ops->vectors_of_user(ui->st, svc->user_id, ui->model, ui->dim, &a, &v, &n);
    vindex *vi = rc == STORE_OK ? vindex_new(ui->dim) : NULL;
    if (rc == STORE_OK && !vi)
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
    pthread_rwlock_rdlock(&svc->vi_lock);
    while (!svc->vi) {
        pthread_rwlock_unlock(&svc->vi_lock);
        pthread_rwlock_wrlock(&svc->vi_lock);
        if (!svc->vi && (*rc = load(ui, svc)) != STORE_OK) {
            pthread_rwlock_unlock(&svc->vi_lock);
            registry_put(svc);
            return NULL;
        }
        pthread_rwlock_unlock(&svc->vi_lock);
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

void uidx_put(user_index *ui, const store_unit *u, const float *vec)
{
    user_svc *svc = lock_loaded(ui, u->user_id);
    if (!svc)
        return;
    if (vindex_put(svc->vi, u->id, u->type, u->session_id, u->agent_id, vec) != 0) {
        /* out of memory: drop the index; the next query reloads it from the store */
        vindex_free(svc->vi);
        svc->vi = NULL;
    }
    uidx_release(svc);
}

void uidx_remove(user_index *ui, const char *user_id, const char *const *ids, size_t n)
{
    user_svc *svc = lock_loaded(ui, user_id);
    if (!svc)
        return;
    for (size_t i = 0; i < n; i++)
        vindex_remove(svc->vi, ids[i]);
    uidx_release(svc);
}

void uidx_remove_session(user_index *ui, const char *user_id, const char *session_id)
{
    user_svc *svc = lock_loaded(ui, user_id);
    if (!svc)
        return;
    vindex_remove_session(svc->vi, session_id);
    uidx_release(svc);
}

static void unload(user_svc *svc, void *ctx)
{
    pthread_rwlock_wrlock(&svc->vi_lock);
    vindex_free(svc->vi);
    svc->vi = NULL;
    pthread_rwlock_unlock(&svc->vi_lock);
}

void uidx_unload_all(user_index *ui) { registry_foreach(ui->reg, unload, NULL); }
