/* registry (src/core/registry.h): get/create/put/remove reference counting, id length limit, growth past
 * the initial buckets, foreach (with a reference held and no lock, so fn may remove), and concurrent gets
 * from threads — including a race to create the same user. ASan/LSan catch use-after-free and leaks. */
#include "testutil.h"

#include "core/registry.h"

static void test_get_create_put(void **state)
{
    (void)state;
    registry r;
    assert_int_equal(registry_init(&r), 0);
    assert_null(registry_get(&r, "u1", 0));
    assert_int_equal(registry_count(&r), 0);

    user_svc *u = registry_get(&r, "u1", 1);
    assert_non_null(u);
    assert_string_equal(u->user_id, "u1");
    assert_int_equal(atomic_load(&u->refs), 2); /* the map's and ours */
    assert_int_equal(u->n, 0);
    assert_int_equal(registry_count(&r), 1);

    user_svc *again = registry_get(&r, "u1", 0);
    assert_ptr_equal(again, u);
    assert_int_equal(atomic_load(&u->refs), 3);
    user_svc *again2 = registry_get(&r, "u1", 1); /* create on an existing one: the same */
    assert_ptr_equal(again2, u);
    assert_int_equal(registry_count(&r), 1);
    registry_put(again);
    registry_put(again2);
    registry_put(u);
    assert_int_equal(atomic_load(&u->refs), 1); /* the map keeps it */
    assert_ptr_equal(registry_get(&r, "u1", 0), u);
    registry_put(u);
    registry_put(NULL); /* harmless */

    /* ids: up to REG_ID_MAX-1 bytes */
    char id[REG_ID_MAX + 1];
    memset(id, 'x', REG_ID_MAX - 1);
    id[REG_ID_MAX - 1] = '\0';
    user_svc *longest = registry_get(&r, id, 1);
    assert_non_null(longest);
    assert_string_equal(longest->user_id, id);
    registry_put(longest);
    id[REG_ID_MAX - 1] = 'x';
    id[REG_ID_MAX] = '\0';
    assert_null(registry_get(&r, id, 1));
    registry_remove(&r, id); /* too long: nothing */
    assert_int_equal(registry_count(&r), 2);
    registry_destroy(&r);
}

static void test_remove(void **state)
{
    (void)state;
    registry r;
    assert_int_equal(registry_init(&r), 0);
    user_svc *held = registry_get(&r, "gone", 1);
    user_svc *other = registry_get(&r, "stays", 1);
    registry_put(other);
    held->tokens = 42;
    registry_remove(&r, "gone");
    assert_int_equal(registry_count(&r), 1);
    assert_null(registry_get(&r, "gone", 0));
    /* the holder's reference keeps it alive */
    assert_int_equal(atomic_load(&held->refs), 1);
    assert_int_equal(held->tokens, 42);
    assert_string_equal(held->user_id, "gone");
    /* a new one under the same id is a fresh service */
    user_svc *fresh = registry_get(&r, "gone", 1);
    assert_non_null(fresh);
    assert_int_equal(fresh->tokens, 0);
    registry_put(held); /* freed now */
    registry_put(fresh);
    registry_remove(&r, "never-there");
    registry_remove(&r, "stays");
    registry_remove(&r, "stays"); /* twice: nothing */
    assert_int_equal(registry_count(&r), 1);
    registry_destroy(&r);
    registry_destroy(&r); /* idempotent */
}

typedef struct seen {
    int n;
    int bad_refs;
    unsigned char mark[2000];
    registry *r;
    int remove_each;
} seen;

static void count_fn(user_svc *u, void *ctx)
{
    seen *s = ctx;
    int i = atoi(u->user_id + 5);
    if (i >= 0 && i < 2000)
        s->mark[i]++;
    if (atomic_load(&u->refs) < 2)
        s->bad_refs++;
    s->n++;
    if (s->remove_each)
        registry_remove(s->r, u->user_id); /* the registry lock is not held during fn */
}

static void test_growth_and_foreach(void **state)
{
    (void)state;
    registry r;
    assert_int_equal(registry_init(&r), 0);
    size_t initial = r.nbuckets;
    char id[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof id, "user-%d", i);
        user_svc *u = registry_get(&r, id, 1);
        assert_non_null(u);
        u->tokens = i;
        registry_put(u);
    }
    assert_int_equal(registry_count(&r), 2000);
    assert_true(r.nbuckets > initial);
    for (int i = 0; i < 2000; i++) {
        snprintf(id, sizeof id, "user-%d", i);
        user_svc *u = registry_get(&r, id, 0);
        if (!u || u->tokens != i)
            fail_msg("%s lost after growth", id);
        registry_put(u);
    }

    seen s;
    memset(&s, 0, sizeof s);
    registry_foreach(&r, count_fn, &s);
    assert_int_equal(s.n, 2000);
    assert_int_equal(s.bad_refs, 0);
    for (int i = 0; i < 2000; i++)
        assert_int_equal(s.mark[i], 1);

    /* fn may remove the very service it is given */
    memset(&s, 0, sizeof s);
    s.r = &r;
    s.remove_each = 1;
    registry_foreach(&r, count_fn, &s);
    assert_int_equal(s.n, 2000);
    assert_int_equal(registry_count(&r), 0);
    memset(&s, 0, sizeof s);
    registry_foreach(&r, count_fn, &s);
    assert_int_equal(s.n, 0);
    registry_destroy(&r);
}

/* --- threads ---------------------------------------------------------------------------------------------- */

enum { NTH = 8, NUSERS = 50, ITERS = 20000 };

typedef struct th_arg {
    registry *r;
    int t;
    int errors;
    user_svc *raced;
    pthread_barrier_t *bar;
} th_arg;

static void *getput_thread(void *p)
{
    th_arg *a = p;
    uint32_t x = 2463534242u + (uint32_t)a->t * 7919u;
    char id[32];
    pthread_barrier_wait(a->bar);
    /* everyone races to create the same new user */
    a->raced = registry_get(a->r, "raced", 1);
    for (int i = 0; i < ITERS; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        int k = (int)(x % NUSERS);
        snprintf(id, sizeof id, "cu-%d", k);
        user_svc *u = registry_get(a->r, id, 1);
        if (!u || strcmp(u->user_id, id) != 0) {
            a->errors++;
            continue;
        }
        pthread_mutex_lock(&u->mu);
        u->tokens++; /* per-user counter under the user's own mutex */
        pthread_mutex_unlock(&u->mu);
        registry_put(u);
    }
    return NULL;
}

static void test_concurrent_get(void **state)
{
    (void)state;
    registry r;
    assert_int_equal(registry_init(&r), 0);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTH);
    th_arg args[NTH];
    for (int t = 0; t < NTH; t++)
        args[t] = (th_arg){.r = &r, .t = t, .bar = &bar};
    tu_run_threads(NTH, getput_thread, args, sizeof args[0]);
    pthread_barrier_destroy(&bar);

    /* the race created exactly one service, held once by each thread and once by the map */
    for (int t = 0; t < NTH; t++) {
        assert_int_equal(args[t].errors, 0);
        assert_ptr_equal(args[t].raced, args[0].raced);
    }
    assert_int_equal(atomic_load(&args[0].raced->refs), NTH + 1);
    for (int t = 0; t < NTH; t++)
        registry_put(args[t].raced);
    assert_int_equal(atomic_load(&args[0].raced->refs), 1);

    assert_int_equal(registry_count(&r), NUSERS + 1);
    long total = 0;
    char id[32];
    for (int k = 0; k < NUSERS; k++) {
        snprintf(id, sizeof id, "cu-%d", k);
        user_svc *u = registry_get(&r, id, 0);
        assert_non_null(u);
        assert_int_equal(atomic_load(&u->refs), 2); /* every get was put back */
        total += u->tokens;
        registry_put(u);
    }
    assert_int_equal(total, (long)NTH * ITERS);
    registry_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_create_put),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_growth_and_foreach),
        cmocka_unit_test(test_concurrent_get),
    };
    return cmocka_run_group_tests_name("registry", tests, NULL, NULL);
}
