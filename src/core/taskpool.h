/* taskpool — a few threads that run short tasks for request threads (e.g. the dense half of a hybrid
 * query while the request thread runs the keyword half).
 *
 * Owns: its threads and a bounded FIFO of tasks. A task is a function and its argument in a struct the
 * caller owns (on its stack), which must stay alive until taskpool_wait() returns. When the queue is full
 * (or the pool is stopping) taskpool_submit() runs the task on the caller's thread instead, so a submit
 * never blocks on the pool and never fails. The task function must not touch the caller's arena or any
 * other state the caller uses meanwhile. */
#ifndef MEMFUSE_TASKPOOL_H
#define MEMFUSE_TASKPOOL_H

#include <pthread.h>

#define TASKPOOL_MAX_THREADS 16
#define TASKPOOL_QUEUE 256

typedef struct pool_task {
    void (*fn)(void *arg);
    void *arg;
    int done; /* guarded by the pool's mutex */
} pool_task;

typedef struct taskpool {
    pthread_mutex_t mu;
    pthread_cond_t work, finished;
    pool_task *queue[TASKPOOL_QUEUE];
    int head, count, stopping, n_threads;
    pthread_t threads[TASKPOOL_MAX_THREADS];
} taskpool;

int taskpool_start(taskpool *p, int threads);
void taskpool_stop(taskpool *p);
void taskpool_submit(taskpool *p, pool_task *t);
void taskpool_wait(taskpool *p, pool_task *t);

#endif
