/* ids (src/util/ids.h): UUIDv7 layout (version, variant, timestamp), strict monotonicity of the
 * generator shared by 4 threads (100k ids each), the counter carrying into the millisecond, the shape
 * check, and random hex. */
#include <ctype.h>

#include "testutil.h"

#include "util/ids.h"
#include "util/timeutil.h"

/* The 48-bit millisecond and 12-bit counter an id carries (the generator's state word). */
static uint64_t id_state(const char *id)
{
    char hex[17];
    int k = 0;
    for (int i = 0; i < 18 && k < 16; i++)
        if (id[i] != '-')
            hex[k++] = id[i];
    hex[16] = '\0';
    uint64_t v = strtoull(hex, NULL, 16); /* 48 bits ms, 4 bits version, 12 bits counter */
    return ((v >> 16) << 12) | (v & 0xfff);
}

static void check_shape(const char *id)
{
    assert_int_equal(strlen(id), UUID_STR_LEN);
    for (int i = 0; i < UUID_STR_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(id[i], '-');
        else if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            fail_msg("id %s: byte %d is not lower-case hex", id, i);
    }
    assert_int_equal(id[14], '7'); /* version 7 */
    assert_non_null(strchr("89ab", id[19])); /* variant 10xx */
    assert_true(ids_is_uuid(id));
}

static void test_shape_and_time(void **state)
{
    (void)state;
    ids_gen g;
    ids_gen_init(&g);
    int64_t before = time_now_us() / 1000;
    char id[UUID_STR_LEN + 1];
    ids_uuid7(&g, id);
    int64_t after = time_now_us() / 1000;
    check_shape(id);
    int64_t ms = (int64_t)(id_state(id) >> 12);
    assert_true(ms >= before && ms <= after);
    /* a thousand more, each well formed and greater than the last */
    char prev[UUID_STR_LEN + 1];
    strcpy(prev, id);
    for (int i = 0; i < 1000; i++) {
        ids_uuid7(&g, id);
        check_shape(id);
        assert_true(strcmp(id, prev) > 0);
        assert_true(id_state(id) > id_state(prev));
        strcpy(prev, id);
    }
}

static void test_counter_carries_into_ms(void **state)
{
    (void)state;
    ids_gen g;
    ids_gen_init(&g);
    /* put the generator at the last counter value of a millisecond ahead of the clock */
    uint64_t future_ms = (uint64_t)(time_now_us() / 1000) + 10000;
    atomic_store(&g.state, (future_ms << 12) | 0xffe);
    char a[UUID_STR_LEN + 1], b[UUID_STR_LEN + 1], c[UUID_STR_LEN + 1];
    ids_uuid7(&g, a);
    ids_uuid7(&g, b);
    ids_uuid7(&g, c);
    assert_int_equal(id_state(a), (future_ms << 12) | 0xfff);
    assert_int_equal(id_state(b), (future_ms + 1) << 12); /* overflow: next millisecond, counter 0 */
    assert_int_equal(id_state(c), ((future_ms + 1) << 12) | 1);
    assert_true(strcmp(a, b) < 0 && strcmp(b, c) < 0);
    check_shape(a);
    check_shape(b);
    assert_memory_equal(b + 15, "000", 3);
}

enum { NTHREADS = 4, PER_THREAD = 100000 };

typedef struct gen_arg {
    ids_gen *g;
    char (*ids)[UUID_STR_LEN + 1];
    int not_increasing; /* checked by the main thread (cmocka asserts are not thread-safe) */
} gen_arg;

static void *gen_thread(void *p)
{
    gen_arg *a = p;
    for (int i = 0; i < PER_THREAD; i++) {
        ids_uuid7(a->g, a->ids[i]);
        if (i > 0 && strcmp(a->ids[i], a->ids[i - 1]) <= 0)
            a->not_increasing++;
    }
    return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static void test_monotonic_across_threads(void **state)
{
    (void)state;
    ids_gen g;
    ids_gen_init(&g);
    gen_arg args[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        args[t].g = &g;
        args[t].ids = malloc(sizeof *args[t].ids * PER_THREAD);
        assert_non_null(args[t].ids);
        args[t].not_increasing = 0;
    }
    tu_run_threads(NTHREADS, gen_thread, args, sizeof args[0]);
    /* every id's (ms, counter) is distinct over all threads: the shared word never hands out one twice */
    uint64_t *all = malloc(sizeof *all * NTHREADS * PER_THREAD);
    assert_non_null(all);
    size_t k = 0;
    for (int t = 0; t < NTHREADS; t++) {
        assert_int_equal(args[t].not_increasing, 0);
        for (int i = 0; i < PER_THREAD; i++) {
            if (i % 997 == 0)
                check_shape(args[t].ids[i]);
            all[k++] = id_state(args[t].ids[i]);
        }
    }
    qsort(all, k, sizeof *all, cmp_u64);
    size_t dups = 0;
    for (size_t i = 1; i < k; i++)
        dups += all[i] == all[i - 1];
    assert_int_equal(dups, 0);
    free(all);
    for (int t = 0; t < NTHREADS; t++)
        free(args[t].ids);
}

static void test_is_uuid(void **state)
{
    (void)state;
    assert_true(ids_is_uuid("0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b"));
    assert_true(ids_is_uuid("0190A6B2-3C4D-7E8F-9A0B-1C2D3E4F5A6B")); /* the shape, any hex case */
    assert_true(ids_is_uuid("00000000-0000-0000-0000-000000000000"));
    assert_false(ids_is_uuid(""));
    assert_false(ids_is_uuid("0190a6b2"));
    assert_false(ids_is_uuid("0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6"));   /* short */
    assert_false(ids_is_uuid("0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b0")); /* long */
    assert_false(ids_is_uuid("0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6g"));  /* not hex */
    assert_false(ids_is_uuid("0190a6b23-c4d-7e8f-9a0b-1c2d3e4f5a6b"));  /* dash misplaced */
    assert_false(ids_is_uuid("0190a6b2-3c4d-7e8f-9a0b_1c2d3e4f5a6b"));
    assert_false(ids_is_uuid("{190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6b"));
    assert_false(ids_is_uuid("0190a6b2-3c4d-7e8f-9a0b-1c2d3e4f5a6 "));
}

static void test_random_hex(void **state)
{
    (void)state;
    char a[129], b[129];
    assert_int_equal(ids_random_hex(a, 16), 0);
    assert_int_equal(strlen(a), 32);
    for (int i = 0; i < 32; i++)
        assert_true(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
    assert_int_equal(ids_random_hex(b, 16), 0);
    assert_string_not_equal(a, b);
    assert_int_equal(ids_random_hex(a, 0), 0);
    assert_string_equal(a, "");
    assert_int_equal(ids_random_hex(a, 64), 0);
    assert_int_equal(strlen(a), 128);
    memset(b, 'z', sizeof b);
    assert_int_equal(ids_random_hex(b, 65), -1); /* more than it supports: refused, out untouched */
    assert_int_equal(b[0], 'z');

    /* random bytes: not all the same, and two draws differ */
    unsigned char r1[64], r2[64];
    assert_int_equal(ids_random(r1, sizeof r1), 0);
    assert_int_equal(ids_random(r2, sizeof r2), 0);
    assert_memory_not_equal(r1, r2, sizeof r1);
    assert_int_equal(ids_random(r1, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_and_time),
        cmocka_unit_test(test_counter_carries_into_ms),
        cmocka_unit_test(test_monotonic_across_threads),
        cmocka_unit_test(test_is_uuid),
        cmocka_unit_test(test_random_hex),
    };
    return cmocka_run_group_tests_name("ids", tests, NULL, NULL);
}
