/* embedq — see embedq.h. */
#include "core/embedq.h"
#include "util/log.h"
#include "util/opstats.h"
#include "util/timeutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void) { return time_mono_ns() / 1000000; }

static void deadline(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000L;
    ts->tv_nsec %= 1000000000L;
}

/* Embeds units, stores their vectors and puts them in the loaded indexes (ui may be NULL). Returns the
 * number of vectors stored, or -1. */
static int embed_units_with(store *st, embedder *emb, user_index *ui, store_unit *u, size_t n, arena *a)
{
    if (n == 0)
        return 0;
    int dim = embed_dim(emb);
    const char **texts = arena_alloc(a, n * sizeof *texts);
    size_t *lens = arena_alloc(a, n * sizeof *lens);
    float *vecs = arena_alloc(a, n * (size_t)dim * sizeof *vecs);
    if (!texts || !lens || !vecs)
        return -1;
    for (size_t i = 0; i < n; i++) {
        texts[i] = u[i].text;
        lens[i] = strlen(u[i].text);
    }
    char err[256];
    int64_t t0 = time_mono_ns();
    int erc = embed_batch(emb, texts, lens, (int)n, vecs, err, sizeof err);
    opstats_observe_ns(OP_EMBED_BATCH, time_mono_ns() - t0);
    if (erc != 0) {
        log_warn("embedding pipeline: a batch of %zu failed: %s (will retry)", n, err);
        return -1;
    }
    size_t stored = 0;
    int rc = st->ops->vectors_put(st, u, n, vecs, dim, embed_model_id(emb), &stored);
    if (rc != STORE_OK) {
        log_warn("embedding pipeline: storing %zu vectors failed: %s (will retry)", n, store_rc_name(rc));
        return -1;
    }
    for (size_t i = 0; ui && i < n; i++)
        uidx_put(ui, &u[i], vecs + i * (size_t)dim);
    /* other processes on the same database drop these users' indexes and answers (once per user) */
    for (size_t i = 0; st->ops->notify_user && stored && i < n; i++) {
        size_t k = 0;
        while (k < i && strcmp(u[k].user_id, u[i].user_id) != 0)
            k++;
        if (k == i)
            st->ops->notify_user(st, u[i].user_id);
    }
    return (int)stored;
}

static int embed_units(embedq *q, store_unit *u, size_t n, arena *a)
{
    int stored = embed_units_with(q->st, q->emb, q->ui, u, n, a);
    if (stored < 0)
        return -1;
    atomic_fetch_add(&q->embedded, (uint64_t)stored);
    atomic_fetch_add(&q->batches, 1);
    return 0;
}

/* Items taken off the queue: read their units (every type) and embed them. */
static int process_items(embedq *q, const embedq_item *items, size_t n, arena *a)
{
    store_unit *all = arena_alloc(a, (n ? n : 1) * sizeof *all);
    const char **ids = arena_alloc(a, (n ? n : 1) * sizeof *ids);
    if (!all || !ids)
        return -1;
    size_t total = 0;
    for (int type = 0; type < STORE_UNIT_TYPES; type++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (items[i].type == type)
                ids[k++] = items[i].id;
        if (!k)
            continue;
        store_unit *u;
        size_t nu;
        if (q->st->ops->units_get(q->st, (enum store_hit_type)type, ids, k, a, &u, &nu) != STORE_OK)
            return -1;
        memcpy(all + total, u, nu * sizeof *u);
        total += nu;
    }
    return embed_units(q, all, total, a);
}

int embed_scan_page(store *st, embedder *emb, user_index *ui, int64_t cursor[STORE_UNIT_TYPES], int batch,
                    arena *a)
{
    for (int type = 0; type < STORE_UNIT_TYPES; type++) {
        store_unit *u;
        size_t n;
        int rc = st->ops->units_unembedded(st, (enum store_hit_type)type, embed_model_id(emb), cursor[type], batch,
                                           a, &u, &n);
        if (rc != STORE_OK)
            return -1;
        if (n == 0)
            continue;
        if (embed_units_with(st, emb, ui, u, n, a) < 0)
            return -1;
        cursor[type] = u[n - 1].seq;
        return (int)n;
    }
    return 0;
}

static void *worker(void *arg)
{
    embedq *q = arg;
    embedq_item *batch = malloc((size_t)q->cfg.batch_max * sizeof *batch);
    arena a;
    arena_init(&a);
    pthread_mutex_lock(&q->mu);
    while (batch && !q->stopping) {
        if (q->count == 0 && !(q->behind && !q->scanning && now_ms() >= q->retry_at_ms)) {
            if (q->behind && !q->scanning) {
                struct timespec ts;
                deadline(&ts, (int)(q->retry_at_ms - now_ms()) + 1);
                pthread_cond_timedwait(&q->cv, &q->mu, &ts);
            } else {
                pthread_cond_wait(&q->cv, &q->mu);
            }
            continue;
        }
        if (q->count > 0) {
            if (q->count < (size_t)q->cfg.batch_max) { /* give the batch a moment to fill */
                struct timespec ts;
                deadline(&ts, q->cfg.wait_ms);
                pthread_cond_timedwait(&q->cv, &q->mu, &ts);
            }
            size_t n = q->count < (size_t)q->cfg.batch_max ? q->count : (size_t)q->cfg.batch_max;
            for (size_t i = 0; i < n; i++)
                batch[i] = q->ring[(q->head + i) % (size_t)q->cfg.capacity];
            q->head = (q->head + n) % (size_t)q->cfg.capacity;
            q->count -= n;
            pthread_mutex_unlock(&q->mu);
            int rc = process_items(q, batch, n, &a);
            arena_reset(&a);
            pthread_mutex_lock(&q->mu);
            if (rc != 0) {
                atomic_fetch_add(&q->failures, 1);
                q->behind = 1; /* the scan picks them up */
                q->retry_at_ms = now_ms() + 1000;
            }
            continue;
        }
        /* nothing queued and behind: one page of the catch-up scan (one worker at a time) */
        q->behind = 0;
        q->scanning = 1;
        pthread_mutex_unlock(&q->mu);
        int got = embed_scan_page(q->st, q->emb, q->ui, q->cursor, q->cfg.batch_max, &a);
        if (got > 0)
            atomic_fetch_add(&q->embedded, (uint64_t)got);
        arena_reset(&a);
        pthread_mutex_lock(&q->mu);
        q->scanning = 0;
        if (got > 0) {
            q->behind = 1; /* more pages may follow */
        } else if (got < 0) {
            atomic_fetch_add(&q->failures, 1);
            q->behind = 1;
            q->retry_at_ms = now_ms() + 1000;
        } else {
            memset(q->cursor, 0, sizeof q->cursor); /* complete: the next scan starts over */
        }
    }
    pthread_mutex_unlock(&q->mu);
    arena_free(&a);
    free(batch);
    return NULL;
}

int embedq_start(embedq *q, const embedq_config *cfg, store *st, embedder *emb, user_index *ui)
{
    memset(q, 0, sizeof *q);
    q->cfg = *cfg;
    if (q->cfg.capacity < 1)
        q->cfg.capacity = 65536;
    if (q->cfg.batch_max < 1)
        q->cfg.batch_max = 32;
    if (q->cfg.wait_ms < 0)
        q->cfg.wait_ms = 2;
    if (q->cfg.workers < 1)
        q->cfg.workers = 1;
    if (q->cfg.workers > EMBEDQ_MAX_WORKERS)
        q->cfg.workers = EMBEDQ_MAX_WORKERS;
    q->st = st;
    q->emb = emb;
    q->ui = ui;
    q->ring = malloc((size_t)q->cfg.capacity * sizeof *q->ring);
    if (!q->ring)
        return -1;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    q->behind = 1; /* heal at start: anything stored without a vector for this model */
    for (int i = 0; i < q->cfg.workers; i++) {
        if (pthread_create(&q->threads[i], NULL, worker, q) != 0) {
            embedq_stop(q);
            return -1;
        }
        q->n_threads++;
    }
    return 0;
}

void embedq_stop(embedq *q)
{
    if (!q->ring)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    for (int i = 0; i < q->n_threads; i++)
        pthread_join(q->threads[i], NULL);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q->ring);
    q->ring = NULL;
}

void embedq_push(embedq *q, int type, const char *const *ids, size_t n)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < n; i++) {
        if (q->count == (size_t)q->cfg.capacity || strlen(ids[i]) >= sizeof q->ring[0].id) {
            q->behind = 1; /* the store scan will find it */
            atomic_fetch_add(&q->dropped, 1);
            continue;
        }
        embedq_item *it = &q->ring[(q->head + q->count) % (size_t)q->cfg.capacity];
        it->type = type;
        memcpy(it->id, ids[i], strlen(ids[i]) + 1);
        it->queued_ms = now;
        q->count++;
    }
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

size_t embedq_depth(embedq *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void embedq_lag_get(embedq *q, embedq_lag *out)
{
    int64_t now = now_ms();
    pthread_mutex_lock(&q->mu);
    out->depth = q->count;
    out->oldest_ms = q->count ? now - q->ring[q->head].queued_ms : 0;
    out->behind = q->behind;
    pthread_mutex_unlock(&q->mu);
}
