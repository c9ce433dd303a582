/* taskpool: every submitted task runs exactly once and taskpool_wait returns only after it ran; tasks
 * run beside the caller; a pool without threads (or a full queue) runs tasks on the caller. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <unistd.h>

#include "core/taskpool.h"

typedef struct job {
    _Atomic int *counter;
    int ran;
    pthread_t thread;
} job;

static void bump(void *arg)
{
    job *j = arg;
    j->ran++;
    j->thread = pthread_self();
    atomic_fetch_add(j->counter, 1);
}

static void test_tasks_run_once_on_pool_threads(void **state)
{
    (void)state;
    taskpool p;
    assert_int_equal(taskpool_start(&p, 3), 0);
    _Atomic int counter = 0;
    enum { N = 200 };
    static job jobs[N];
    static pool_task tasks[N];
    int on_pool = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) {
            jobs[i] = (job){.counter = &counter};
            tasks[i] = (pool_task){.fn = bump, .arg = &jobs[i]};
            taskpool_submit(&p, &tasks[i]);
        }
        for (int i = 0; i < N; i++) {
            taskpool_wait(&p, &tasks[i]);
            assert_int_equal(jobs[i].ran, 1);
            on_pool += !pthread_equal(jobs[i].thread, pthread_self());
        }
    }
    assert_int_equal(atomic_load(&counter), 5 * N);
    assert_true(on_pool > 0);
    taskpool_stop(&p);
}

static void test_no_threads_runs_on_caller(void **state)
{
    (void)state;
    taskpool p;
    assert_int_equal(taskpool_start(&p, 0), 0);
    _Atomic int counter = 0;
    job j = {.counter = &counter};
    pool_task t = {.fn = bump, .arg = &j};
    taskpool_submit(&p, &t);
    taskpool_wait(&p, &t);
    assert_int_equal(j.ran, 1);
    assert_true(pthread_equal(j.thread, pthread_self()));
    taskpool_stop(&p);
}

static void slow(void *arg)
{
    usleep(20000);
    bump(arg);
}

static void test_full_queue_runs_on_caller(void **state)
{
    (void)state;
    taskpool p;
    assert_int_equal(taskpool_start(&p, 1), 0);
    _Atomic int counter = 0;
    enum { N = TASKPOOL_QUEUE + 8 };
    static job jobs[N];
    static pool_task tasks[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){.counter = &counter};
        tasks[i] = (pool_task){.fn = i == 0 ? slow : bump, .arg = &jobs[i]};
        taskpool_submit(&p, &tasks[i]);
    }
    int on_caller = 0;
    for (int i = 0; i < N; i++) {
        taskpool_wait(&p, &tasks[i]);
        on_caller += pthread_equal(jobs[i].thread, pthread_self()) != 0;
    }
    assert_int_equal(atomic_load(&counter), N);
    assert_true(on_caller > 0); /* the queue held TASKPOOL_QUEUE while the first task slept */
    taskpool_stop(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tasks_run_once_on_pool_threads),
        cmocka_unit_test(test_no_threads_runs_on_caller),
        cmocka_unit_test(test_full_queue_runs_on_caller),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
