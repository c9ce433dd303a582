/* flushmgr (src/core/flushmgr.h) over a real SQLite store with flushes on: the layers of a flush run in
 * parallel, failures are recorded and retried with backoff, unusable output is given up on, the first scan
 * after start takes what a previous run left (due or not), M2 of one user never runs twice at once, and a
 * flush whose session is gone is dropped.
 *
 * The layer function is the test's own (the manager is generic over it); like the real layers, it marks a
 * layer done through the store (episodes_add / facts_apply with nothing to store), so the store's state is
 * what the assertions read. */
#include <stdatomic.h>

#include "core/flushmgr.h"
#include "memory/memory.h"
#include "store/store.h"
#include "testutil.h"
#include "util/timeutil.h"

typedef struct fx fx;

/* How the layer function behaves: per layer, a delay and a number of failures before success. */
typedef struct layer_script {
    int delay_ms[3];
    int fail_first[3]; /* this many calls per (flush, layer) fail... */
    int fail_rc[3];    /* ...with this enum mem_rc */
} layer_script;

#define MAX_CALLS 256

struct fx {
    char *dir;
    ids_gen ids;
    store *st;
    arena a;
    flushmgr fm;
    layer_script script;
    pthread_mutex_t mu;
    int calls[3];
    struct {
        char flush_id[64], user_id[64];
        int layer;
        int64_t start_ms, end_ms;
    } log[MAX_CALLS];
    int n_log;
    int m2_running_by_user_max; /* the most M2 calls of one user seen running at once */
    char m2_running[8][64];     /* users with an M2 running (one slot per call in flight) */
};

static int64_t ms_now(void) { return time_mono_ns() / 1000000; }

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* How many earlier calls of this (flush, layer) the log holds (fx->mu held). */
static int calls_of(fx *f, const char *flush_id, int layer)
{
    int n = 0;
    for (int i = 0; i < f->n_log; i++)
        if (f->log[i].layer == layer && !strcmp(f->log[i].flush_id, flush_id))
            n++;
    return n;
}

static int run_layer(void *ctx, const store_flush *fl, int layer, char *err, size_t errlen)
{
    fx *f = ctx;
    pthread_mutex_lock(&f->mu);
    int prior = calls_of(f, fl->id, layer);
    int idx = f->n_log < MAX_CALLS ? f->n_log++ : MAX_CALLS - 1;
    snprintf(f->log[idx].flush_id, sizeof f->log[idx].flush_id, "%s", fl->id);
    snprintf(f->log[idx].user_id, sizeof f->log[idx].user_id, "%s", fl->user_id);
    f->log[idx].layer = layer;
    f->log[idx].start_ms = ms_now();
    f->calls[layer]++;
    int slot = -1;
    if (layer == 2) {
        int same = 1;
        for (int i = 0; i < 8; i++) {
            if (f->m2_running[i][0] && !strcmp(f->m2_running[i], fl->user_id))
                same++;
            if (!f->m2_running[i][0] && slot < 0)
                slot = i;
        }
        if (slot >= 0)
            snprintf(f->m2_running[slot], sizeof f->m2_running[slot], "%s", fl->user_id);
        if (same > f->m2_running_by_user_max)
            f->m2_running_by_user_max = same;
    }
    layer_script sc = f->script;
    pthread_mutex_unlock(&f->mu);

    if (sc.delay_ms[layer])
        sleep_ms(sc.delay_ms[layer]);
    int rc = MEM_OK;
    if (prior < sc.fail_first[layer]) {
        rc = sc.fail_rc[layer];
        snprintf(err, errlen, "scripted failure %d of M%d", prior + 1, layer);
    } else {
        arena a;
        arena_init(&a);
        const char **ids = NULL, **retired = NULL;
        int src = layer == 1 ? f->st->ops->episodes_add(f->st, fl->id, NULL, 0, &a, &ids)
                             : f->st->ops->facts_apply(f->st, fl->user_id, fl->id, NULL, 0, &a, &ids, &retired);
        arena_free(&a);
        if (src == STORE_NOT_FOUND)
            rc = MEM_GONE;
        else if (src != STORE_OK) {
            rc = MEM_RETRY;
            snprintf(err, errlen, "store: %s", store_rc_name(src));
        }
    }

    pthread_mutex_lock(&f->mu);
    f->log[idx].end_ms = ms_now();
    if (slot >= 0)
        f->m2_running[slot][0] = 0;
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    f->dir = tu_mkdtemp();
    ids_gen_init(&f->ids);
    arena_init(&f->a);
    pthread_mutex_init(&f->mu, NULL);
    store_config cfg = {.kind = "sqlite", .data_dir = f->dir, .read_conns = 4, .ids = &f->ids, .flushes = 1};
    char err[512] = "";
    f->st = store_open(&cfg, err, sizeof err);
    if (!f->st) {
        print_error("store_open: %s\n", err);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    store_close(f->st);
    arena_free(&f->a);
    pthread_mutex_destroy(&f->mu);
    tu_rmtree(f->dir);
    free(f);
    return 0;
}

static void start(fx *f, int workers, int retry_base_ms)
{
    flushmgr_config cfg = {.workers = workers, .retry_base_ms = retry_base_ms, .retry_max_ms = 1000,
                           .max_attempts = 5, .bad_output_attempts = 2};
    assert_int_equal(flushmgr_start(&f->fm, &cfg, f->st, run_layer, f), 0);
}

/* A user (named), an agent and a session of theirs; the session id into sid. */
static void make_session(fx *f, const char *user, char *sid, size_t len)
{
    store_entity u, ag;
    store_session s;
    assert_int_equal(f->st->ops->entity_create(f->st, STORE_USERS, user, NULL, &f->a, &u), STORE_OK);
    int rc = f->st->ops->entity_get_by_name(f->st, STORE_AGENTS, "agent", &f->a, &ag);
    if (rc == STORE_NOT_FOUND)
        rc = f->st->ops->entity_create(f->st, STORE_AGENTS, "agent", NULL, &f->a, &ag);
    assert_int_equal(rc, STORE_OK);
    assert_int_equal(f->st->ops->session_create(f->st, u.id, ag.id, NULL, &f->a, &s), STORE_OK);
    snprintf(sid, len, "%s", s.id);
}

/* One consolidated round in the session: the flush it recorded (id and user into the buffers). */
static void add_flush(fx *f, const char *sid, char *flush_id, char *user_id)
{
    store_msg_in m[2] = {{"user", "I adopted a dog named Rex yesterday."}, {"assistant", "Congratulations!"}};
    store_added added = {0};
    assert_int_equal(f->st->ops->messages_add(f->st, sid, m, 2, 12, 1, NULL, 0, &f->a, &added), STORE_OK);
    assert_non_null(added.flush_id);
    snprintf(flush_id, 64, "%s", added.flush_id);
    store_session s;
    assert_int_equal(f->st->ops->session_get(f->st, sid, &f->a, &s), STORE_OK);
    snprintf(user_id, 64, "%s", s.user_id);
}

/* Waits (bounded) until both layers of the flush have left the pending state; fails the test on timeout. */
static store_flush wait_settled(fx *f, const char *flush_id, int timeout_ms)
{
    int64_t until = ms_now() + timeout_ms;
    for (;;) {
        store_flush fl;
        assert_int_equal(f->st->ops->flush_get(f->st, flush_id, &f->a, &fl), STORE_OK);
        if (fl.state[1] != STORE_LAYER_PENDING && fl.state[2] != STORE_LAYER_PENDING)
            return fl;
        if (ms_now() > until)
            fail_msg("flush %s still pending after %d ms (M1 %d, M2 %d)", flush_id, timeout_ms, fl.state[1],
                     fl.state[2]);
        sleep_ms(10);
    }
}

static void test_layers_run_in_parallel(void **state)
{
    fx *f = *state;
    f->script.delay_ms[1] = f->script.delay_ms[2] = 300;
    char sid[64], fid[64], uid[64];
    make_session(f, "alice", sid, sizeof sid);
    start(f, 2, 50);
    add_flush(f, sid, fid, uid);
    int64_t t0 = ms_now();
    flushmgr_push(&f->fm, fid, uid);
    store_flush fl = wait_settled(f, fid, 5000);
    int64_t took = ms_now() - t0;
    flushmgr_stop(&f->fm);
    assert_int_equal(fl.state[1], STORE_LAYER_DONE);
    assert_int_equal(fl.state[2], STORE_LAYER_DONE);
    assert_int_equal(f->calls[1], 1);
    assert_int_equal(f->calls[2], 1);
    /* the two 300 ms layers overlapped: together well under their 600 ms sum */
    int64_t overlap = (f->log[0].end_ms < f->log[1].end_ms ? f->log[0].end_ms : f->log[1].end_ms) -
                      (f->log[0].start_ms > f->log[1].start_ms ? f->log[0].start_ms : f->log[1].start_ms);
    if (overlap < 200 || took >= 600)
        fail_msg("layers not parallel: overlap %lld ms, both done after %lld ms", (long long)overlap,
                 (long long)took);
}

static void test_duplicate_pushes_run_once(void **state)
{
    fx *f = *state;
    f->script.delay_ms[1] = f->script.delay_ms[2] = 100;
    char sid[64], fid[64], uid[64];
    make_session(f, "bob", sid, sizeof sid);
    add_flush(f, sid, fid, uid);
    start(f, 2, 50);
    for (int i = 0; i < 5; i++)
        flushmgr_push(&f->fm, fid, uid);
    wait_settled(f, fid, 5000);
    flushmgr_push(&f->fm, fid, uid); /* done: the worker re-reads the store and skips it */
    sleep_ms(200);
    flushmgr_stop(&f->fm);
    assert_int_equal(f->calls[1], 1);
    assert_int_equal(f->calls[2], 1);
}

static void test_failures_retried_with_backoff(void **state)
{
    fx *f = *state;
    f->script.fail_first[1] = 2;
    f->script.fail_rc[1] = MEM_RETRY;
    char sid[64], fid[64], uid[64];
    make_session(f, "carol", sid, sizeof sid);
    start(f, 2, 100);
    add_flush(f, sid, fid, uid);
    int64_t t0 = ms_now();
    flushmgr_push(&f->fm, fid, uid);
    store_flush fl = wait_settled(f, fid, 10000);
    flushmgr_stop(&f->fm);
    assert_int_equal(fl.state[1], STORE_LAYER_DONE);
    assert_int_equal(fl.state[2], STORE_LAYER_DONE);
    assert_int_equal(fl.attempts[1], 2); /* the two failures were recorded */
    assert_int_equal(fl.attempts[2], 0);
    assert_non_null(fl.last_error);
    assert_non_null(strstr(fl.last_error, "scripted failure 2 of M1"));
    assert_int_equal(f->calls[1], 3);
    assert_int_equal(f->calls[2], 1); /* M2 never waited for M1's retries */
    /* backoff: 100 ms then 200 ms (plus jitter) before the third attempt */
    pthread_mutex_lock(&f->mu);
    int64_t third = 0;
    for (int i = 0; i < f->n_log; i++)
        if (f->log[i].layer == 1)
            third = f->log[i].start_ms;
    pthread_mutex_unlock(&f->mu);
    assert_true(third - t0 >= 300);
    assert_int_equal(atomic_load(&f->fm.failed[1]), 2);
    assert_int_equal(atomic_load(&f->fm.done[1]), 1);
}

static void test_bad_output_given_up(void **state)
{
    fx *f = *state;
    f->script.fail_first[2] = 100;
    f->script.fail_rc[2] = MEM_BAD_OUTPUT;
    char sid[64], fid[64], uid[64];
    make_session(f, "dave", sid, sizeof sid);
    start(f, 2, 20);
    add_flush(f, sid, fid, uid);
    flushmgr_push(&f->fm, fid, uid);
    store_flush fl = wait_settled(f, fid, 5000);
    sleep_ms(100);
    flushmgr_stop(&f->fm);
    assert_int_equal(fl.state[1], STORE_LAYER_DONE);
    assert_int_equal(fl.state[2], STORE_LAYER_FAILED);
    assert_int_equal(fl.attempts[2], 2); /* bad_output_attempts */
    assert_int_equal(f->calls[2], 2);    /* and not called again */
    assert_int_equal(atomic_load(&f->fm.gave_up[2]), 1);
    store_counts c;
    assert_int_equal(f->st->ops->counts(f->st, &c), STORE_OK);
    assert_int_equal(c.flushes_pending, 0);
}

static void test_transient_failures_give_up_after_max_attempts(void **state)
{
    fx *f = *state;
    f->script.fail_first[1] = 100;
    f->script.fail_rc[1] = MEM_RETRY;
    char sid[64], fid[64], uid[64];
    make_session(f, "erin", sid, sizeof sid);
    start(f, 2, 10);
    add_flush(f, sid, fid, uid);
    flushmgr_push(&f->fm, fid, uid);
    store_flush fl = wait_settled(f, fid, 20000);
    flushmgr_stop(&f->fm);
    assert_int_equal(fl.state[1], STORE_LAYER_FAILED);
    assert_int_equal(fl.attempts[1], 5); /* max_attempts */
    assert_int_equal(fl.state[2], STORE_LAYER_DONE);
}

static void test_start_takes_what_was_left(void **state)
{
    fx *f = *state;
    char sid[64], fid[3][64], uid[64];
    make_session(f, "frank", sid, sizeof sid);
    for (int i = 0; i < 3; i++)
        add_flush(f, sid, fid[i], uid);
    /* a previous run failed one of them and set its retry far in the future */
    assert_int_equal(f->st->ops->flush_failed(f->st, fid[1], 1, "2999-01-01T00:00:00.000000Z", "LLM down", 0),
                     STORE_OK);
    start(f, 2, 50); /* nothing pushed: the first scan finds them */
    for (int i = 0; i < 3; i++) {
        store_flush fl = wait_settled(f, fid[i], 5000);
        assert_int_equal(fl.state[1], STORE_LAYER_DONE);
        assert_int_equal(fl.state[2], STORE_LAYER_DONE);
    }
    flushmgr_stop(&f->fm);
    assert_int_equal(f->calls[1], 3);
    assert_int_equal(f->calls[2], 3);
}

static void test_poke_finds_unpushed_flushes(void **state)
{
    fx *f = *state;
    char sid[64], fid[64], uid[64];
    make_session(f, "grace", sid, sizeof sid);
    start(f, 2, 50);
    sleep_ms(100); /* the start scan has run and found nothing */
    add_flush(f, sid, fid, uid);
    flushmgr_poke(&f->fm); /* e.g. the idle timer consolidated: nobody pushed the flush */
    store_flush fl = wait_settled(f, fid, 5000);
    flushmgr_stop(&f->fm);
    assert_int_equal(fl.state[1], STORE_LAYER_DONE);
    assert_int_equal(fl.state[2], STORE_LAYER_DONE);
}

static void test_m2_of_one_user_serialised(void **state)
{
    fx *f = *state;
    f->script.delay_ms[2] = 150;
    char s1[64], s2[64], fids[6][64], uids[6][64];
    make_session(f, "heidi", s1, sizeof s1);
    make_session(f, "ivan", s2, sizeof s2);
    start(f, 4, 50);
    for (int i = 0; i < 6; i++)
        add_flush(f, i % 2 ? s2 : s1, fids[i], uids[i]);
    int64_t t0 = ms_now();
    for (int i = 0; i < 6; i++)
        flushmgr_push(&f->fm, fids[i], uids[i]);
    for (int i = 0; i < 6; i++)
        wait_settled(f, fids[i], 10000);
    int64_t took = ms_now() - t0;
    flushmgr_stop(&f->fm);
    assert_int_equal(f->m2_running_by_user_max, 1);
    assert_int_equal(f->calls[2], 6);
    /* two users' M2 chains ran side by side: 3 x 150 ms each, not 6 x 150 ms in a row */
    if (took >= 850)
        fail_msg("M2 of different users did not run in parallel: %lld ms", (long long)took);
}

static void test_deleted_session_is_gone(void **state)
{
    fx *f = *state;
    f->script.delay_ms[1] = 0;
    char sid[64], fid[64], uid[64];
    make_session(f, "judy", sid, sizeof sid);
    add_flush(f, sid, fid, uid);
    assert_int_equal(f->st->ops->session_delete(f->st, sid), STORE_OK);
    start(f, 2, 50);
    flushmgr_push(&f->fm, fid, uid);
    flushmgr_push(&f->fm, "0190f3e4-0000-7000-8000-000000000000", uid); /* never existed */
    int64_t until = ms_now() + 5000;
    while (atomic_load(&f->fm.gone) < 2 && ms_now() < until)
        sleep_ms(10);
    flushmgr_stop(&f->fm);
    assert_true(atomic_load(&f->fm.gone) >= 2);
    assert_int_equal(f->calls[1] + f->calls[2], 0);
    store_flush fl;
    assert_int_equal(f->st->ops->flush_get(f->st, fid, &f->a, &fl), STORE_NOT_FOUND);
}

static void test_stop_leaves_pending_for_next_start(void **state)
{
    fx *f = *state;
    f->script.fail_first[1] = f->script.fail_first[2] = 100;
    f->script.fail_rc[1] = f->script.fail_rc[2] = MEM_RETRY;
    f->script.delay_ms[1] = f->script.delay_ms[2] = 300;
    char sid[64], fid[64], uid[64];
    make_session(f, "ken", sid, sizeof sid);
    add_flush(f, sid, fid, uid);
    start(f, 2, 50);
    flushmgr_push(&f->fm, fid, uid);
    sleep_ms(100);
    flushmgr_stop(&f->fm); /* interrupts the running layers: a shutdown is not an attempt */
    store_flush fl;
    assert_int_equal(f->st->ops->flush_get(f->st, fid, &f->a, &fl), STORE_OK);
    assert_int_equal(fl.state[1], STORE_LAYER_PENDING);
    assert_int_equal(fl.state[2], STORE_LAYER_PENDING);
    assert_int_equal(fl.attempts[1], 0);
    assert_int_equal(fl.attempts[2], 0);
    /* the next run succeeds */
    memset(&f->script, 0, sizeof f->script);
    memset(&f->fm, 0, sizeof f->fm);
    start(f, 2, 50);
    fl = wait_settled(f, fid, 5000);
    flushmgr_stop(&f->fm);
    assert_int_equal(fl.state[1], STORE_LAYER_DONE);
    assert_int_equal(fl.state[2], STORE_LAYER_DONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_layers_run_in_parallel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_pushes_run_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_retried_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_output_given_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_failures_give_up_after_max_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_takes_what_was_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poke_finds_unpushed_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_m2_of_one_user_serialised, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_session_is_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_leaves_pending_for_next_start, setup, teardown),
    };
    return cmocka_run_group_tests_name("flushmgr", tests, NULL, NULL);
}
