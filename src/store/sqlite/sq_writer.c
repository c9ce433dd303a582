/* sq_writer — the group-commit writer thread of the SQLite backend. See sq.h for the protocol. */
#include "store/sqlite/sq.h"
#include "util/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

struct sq_job {
    sq_job_fn fn;
    void *arg;
    int rc;
    int done;
    sq_job *next;
};

/* BEGIN IMMEDIATE, retrying while another process holds the write lock (busy_timeout covers most). */
static int begin(sq_conn *c)
{
    for (int attempt = 0;; attempt++) {
        int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            return SQLITE_OK;
        if ((rc & 0xff) != SQLITE_BUSY || attempt >= 3) {
            log_error("sqlite writer: BEGIN failed: %s", sqlite3_errmsg(c->db));
            return rc;
        }
    }
}

static void run_batch(sq_store *s, sq_job *batch)
{
    sq_conn *c = &s->writer;
    int rc = begin(c);
    if (rc != SQLITE_OK) {
        for (sq_job *j = batch; j; j = j->next)
            j->rc = sq_rc(rc) == STORE_OK ? STORE_ERROR : sq_rc(rc);
        return;
    }
    int any_ok = 0;
    for (sq_job *j = batch; j; j = j->next) {
        if (sqlite3_exec(c->db, "SAVEPOINT job", NULL, NULL, NULL) != SQLITE_OK) {
            j->rc = STORE_ERROR;
            continue;
        }
        j->rc = j->fn(c, j->arg);
        if (j->rc != STORE_OK)
            sqlite3_exec(c->db, "ROLLBACK TO job", NULL, NULL, NULL);
        else
            any_ok = 1;
        sqlite3_exec(c->db, "RELEASE job", NULL, NULL, NULL);
    }
    rc = any_ok ? sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) : sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        log_error("sqlite writer: COMMIT failed: %s", sqlite3_errmsg(c->db));
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        int mapped = sq_rc(rc) == STORE_OK ? STORE_ERROR : sq_rc(rc);
        for (sq_job *j = batch; j; j = j->next)
            if (j->rc == STORE_OK)
                j->rc = mapped;
    }
}

static void *writer_main(void *p)
{
    sq_store *s = p;
    pthread_mutex_lock(&s->wq_mu);
    for (;;) {
        while (!s->wq_head && !s->stopping)
            pthread_cond_wait(&s->wq_cv, &s->wq_mu);
        if (!s->wq_head)
            break; /* stopping and drained */
        sq_job *batch = s->wq_head;
        s->wq_head = s->wq_tail = NULL;
        s->w_batches++;
        s->w_jobs += (uint64_t)s->wq_n;
        s->wq_n = 0;
        pthread_mutex_unlock(&s->wq_mu);

        run_batch(s, batch);

        pthread_mutex_lock(&s->wq_mu);
        for (sq_job *j = batch, *next; j; j = next) {
            next = j->next; /* the waiter may free j once done is set */
            j->done = 1;
        }
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->wq_mu);
    return NULL;
}

int sq_writer_start(sq_store *s, char *err, size_t errlen)
{
    pthread_mutex_init(&s->wq_mu, NULL);
    pthread_cond_init(&s->wq_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    s->wq_head = s->wq_tail = NULL;
    s->stopping = 0;
    if (pthread_create(&s->writer_thread, NULL, writer_main, s) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        return -1;
    }
    s->writer_started = 1;
    return 0;
}

void sq_writer_stop(sq_store *s)
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

int sq_write(sq_store *s, sq_job_fn fn, void *arg)
{
    sq_job j = {.fn = fn, .arg = arg, .rc = STORE_ERROR, .done = 0, .next = NULL};
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
