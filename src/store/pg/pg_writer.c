/* pg_writer — the group-commit writer thread of the PostgreSQL backend. See pg.h for the protocol.
 *
 * The writer holds one pool connection across batches (refreshed before each batch with the pool's
 * checkout checks: broken, too old, idle too long). A connection failure anywhere in a batch fails every
 * job of it with STORE_UNAVAILABLE — including jobs that had run, since their commit never happened or its
 * outcome is unknown — and the connection is given back (the pool closes it); the next batch reconnects. */
#include "store/pg/pg.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>

struct pg_job {
    pg_job_fn fn;
    void *arg;
    int rc;
    int done;
    pg_job *next;
};

static void fail_all(pg_job *batch, int rc)
{
    for (pg_job *j = batch; j; j = j->next)
        j->rc = rc;
}

static void run_batch(pg_store *s, pg_job *batch)
{
    if (pg_pool_refresh(s->pool, &s->wconn) != 0) {
        fail_all(batch, STORE_UNAVAILABLE);
        return;
    }
    pg_conn *c = s->wconn;
    int rc = pg_exec(c, "BEGIN");
    if (rc != STORE_OK) {
        fail_all(batch, rc);
        goto out;
    }
    int any_ok = 0;
    for (pg_job *j = batch; j && !c->broken; j = j->next) {
        if ((rc = pg_exec(c, "SAVEPOINT job")) != STORE_OK) {
            j->rc = rc;
            continue;
        }
        j->rc = j->fn(c, j->arg);
        if (j->rc != STORE_OK && !c->broken)
            pg_exec(c, "ROLLBACK TO SAVEPOINT job");
        else if (j->rc == STORE_OK)
            any_ok = 1;
        if (!c->broken)
            pg_exec(c, "RELEASE SAVEPOINT job");
    }
    if (c->broken) {
        fail_all(batch, STORE_UNAVAILABLE);
        goto out;
    }
    rc = pg_exec(c, any_ok ? "COMMIT" : "ROLLBACK");
    if (rc != STORE_OK) {
        log_error("postgres writer: %s failed (%s)", any_ok ? "COMMIT" : "ROLLBACK", store_rc_name(rc));
        if (c->broken) {
            fail_all(batch, STORE_UNAVAILABLE);
        } else {
            pg_exec(c, "ROLLBACK");
            for (pg_job *j = batch; j; j = j->next)
                if (j->rc == STORE_OK)
                    j->rc = rc;
        }
    }
out:
    if (c->broken) {
        pg_pool_release(s->pool, c); /* closes it; the next batch reconnects */
        s->wconn = NULL;
    }
}

static void *writer_main(void *p)
{
    pg_store *s = p;
    pthread_mutex_lock(&s->wq_mu);
    for (;;) {
        while (!s->wq_head && !s->stopping)
            pthread_cond_wait(&s->wq_cv, &s->wq_mu);
        if (!s->wq_head)
            break; /* stopping and drained */
        pg_job *batch = s->wq_head;
        s->wq_head = s->wq_tail = NULL;
        s->w_batches++;
        s->w_jobs += (uint64_t)s->wq_n;
        s->wq_n = 0;
        pthread_mutex_unlock(&s->wq_mu);

        run_batch(s, batch);

        pthread_mutex_lock(&s->wq_mu);
        for (pg_job *j = batch, *next; j; j = next) {
            next = j->next; /* the waiter may free j once done is set */
            j->done = 1;
        }
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->wq_mu);
    if (s->wconn) {
        pg_pool_release(s->pool, s->wconn);
        s->wconn = NULL;
    }
    return NULL;
}

int pg_writer_start(pg_store *s, char *err, size_t errlen)
{
    pthread_mutex_init(&s->wq_mu, NULL);
    pthread_cond_init(&s->wq_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    s->wq_head = s->wq_tail = NULL;
    s->stopping = 0;
    s->wconn = NULL;
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        pthread_cond_destroy(&s->wq_cv);
        pthread_cond_destroy(&s->done_cv);
        pthread_mutex_destroy(&s->wq_mu);
        return -1;
    }
    s->writer_started = 1;
    return 0;
}

void pg_writer_stop(pg_store *s)
{
    if (!s->writer_started)
        return;
    pthread_mutex_lock(&s->wq_mu);
    s->stopping = 1;
    pthread_cond_signal(&s->wq_cv);
    pthread_mutex_unlock(&s->wq_mu);
    pthread_join(s->writer_thread, NULL);
    s->writer_started = 0;
    pthread_cond_destroy(&s->wq_cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->wq_mu);
}

int pg_write(pg_store *s, pg_job_fn fn, void *arg)
{
    pg_job j = {.fn = fn, .arg = arg, .rc = STORE_ERROR, .done = 0, .next = NULL};
    pthread_mutex_lock(&s->wq_mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->wq_mu);
        return STORE_UNAVAILABLE;
    }
    if (s->wq_tail)
        s->wq_tail->next = &j;
    else
        s->wq_head = &j;
    s->wq_tail = &j;
    s->wq_n++;
    pthread_cond_signal(&s->wq_cv);
    while (!j.done)
        pthread_cond_wait(&s->done_cv, &s->wq_mu);
    pthread_mutex_unlock(&s->wq_mu);
    return j.rc;
}
