/* taskpool — see taskpool.h. */
#include "core/taskpool.h"

#include <string.h>

static void *worker(void *arg)
{
    taskpool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->count && !p->stopping)
            pthread_cond_wait(&p->work, &p->mu);
        if (!p->count)
            break; /* stopping and drained */
        pool_task *t = p->queue[p->head];
        p->head = (p->head + 1) % TASKPOOL_QUEUE;
        p->count--;
        pthread_mutex_unlock(&p->mu);
        t->fn(t->arg);
        pthread_mutex_lock(&p->mu);
        t->done = 1;
        pthread_cond_broadcast(&p->finished);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int taskpool_start(taskpool *p, int threads)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->finished, NULL);
    if (threads > TASKPOOL_MAX_THREADS)
        threads = TASKPOOL_MAX_THREADS;
    for (int i = 0; i < threads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            taskpool_stop(p);
            return -1;
        }
        p->n_threads++;
    }
    return 0;
}

void taskpool_stop(taskpool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    p->n_threads = 0;
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->finished);
    pthread_mutex_destroy(&p->mu);
}

void taskpool_submit(taskpool *p, pool_task *t)
{
    t->done = 0;
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->n_threads == 0 || p->count == TASKPOOL_QUEUE) {
        pthread_mutex_unlock(&p->mu);
        t->fn(t->arg); /* caller runs */
        t->done = 1;
        return;
    }
    p->queue[(p->head + p->count) % TASKPOOL_QUEUE] = t;
    p->count++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void taskpool_wait(taskpool *p, pool_task *t)
{
    pthread_mutex_lock(&p->mu);
    while (!t->done)
        pthread_cond_wait(&p->finished, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
