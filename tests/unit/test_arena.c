/* arena (src/util/arena.h): alignment, no overlap, big and zero-sized requests, overflow checks, the
 * string helpers, reset keeping one block, and free. LeakSanitizer checks that free releases every block. */
#include "testutil.h"

#include "util/arena.h"

static void test_alignment_and_no_overlap(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    assert_null(a.head);
    assert_int_equal(a.total, 0);
    enum { N = 2000 };
    unsigned char *p[N];
    size_t sz[N];
    for (int i = 0; i < N; i++) {
        sz[i] = (size_t)(i * 37 % 301);
        p[i] = arena_alloc(&a, sz[i]);
        assert_non_null(p[i]);
        assert_int_equal((uintptr_t)p[i] % 16, 0);
        memset(p[i], i & 0xff, sz[i]);
    }
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < sz[i]; k++)
            if (p[i][k] != (unsigned char)(i & 0xff))
                fail_msg("allocation %d was overwritten at byte %zu", i, k);
    assert_true(a.total >= 4096);
    arena_free(&a);
    assert_null(a.head);
    assert_int_equal(a.total, 0);
}

static void test_zero_and_big(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    void *z1 = arena_alloc(&a, 0), *z2 = arena_alloc(&a, 0);
    assert_non_null(z1);
    assert_non_null(z2);
    assert_ptr_not_equal(z1, z2);
    /* bigger than any block: a block of its own, usable to the last byte */
    size_t big = 5u << 20;
    unsigned char *b = arena_alloc(&a, big);
    assert_non_null(b);
    memset(b, 0xab, big);
    assert_int_equal(b[big - 1], 0xab);
    assert_true(a.total >= big);
    /* and small ones still work afterwards */
    char *s = arena_strdup(&a, "after");
    assert_string_equal(s, "after");
    assert_int_equal(b[0], 0xab);
    arena_free(&a);
}

static void test_overflow_returns_null(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    assert_null(arena_calloc(&a, SIZE_MAX / 2, 3));
    assert_null(arena_calloc(&a, 3, SIZE_MAX / 2));
    assert_null(arena_alloc(&a, SIZE_MAX));      /* must not round up to a tiny block */
    assert_null(arena_alloc(&a, SIZE_MAX - 7));
    assert_null(arena_calloc(&a, 1, SIZE_MAX));
    assert_null(arena_alloc(&a, SIZE_MAX - 64)); /* too large for any block header */
    assert_null(arena_alloc(&a, ARENA_MAX_ALLOC + 1)); /* over the cap: refused before malloc */
    assert_null(arena_strndup(&a, "x", ARENA_MAX_ALLOC)); /* n + 1 bytes: over the cap */
    assert_null(a.head);                                  /* nothing was allocated by the refusals */
    arena_free(&a);
}

static void test_calloc_zeroed(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    /* dirty a block, reset, and make sure calloc zeroes the reused memory */
    unsigned char *d = arena_alloc(&a, 1000);
    memset(d, 0xff, 1000);
    arena_reset(&a);
    int *v = arena_calloc(&a, 250, sizeof *v);
    assert_non_null(v);
    for (int i = 0; i < 250; i++)
        assert_int_equal(v[i], 0);
    assert_non_null(arena_calloc(&a, 0, 8));
    arena_free(&a);
}

static void test_strings(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    assert_null(arena_strdup(&a, NULL));
    assert_string_equal(arena_strdup(&a, ""), "");
    assert_string_equal(arena_strdup(&a, "hello"), "hello");
    assert_string_equal(arena_strndup(&a, "hello", 3), "hel");
    char *z = arena_strndup(&a, "ab\0cd", 5); /* n bytes copied, NUL added */
    assert_memory_equal(z, "ab\0cd", 6);
    assert_string_equal(arena_sprintf(&a, "%s-%d-%zu", "x", -4, (size_t)7), "x--4-7");
    assert_string_equal(arena_sprintf(&a, "%s", ""), "");
    char big[6001];
    memset(big, 'q', 6000);
    big[6000] = '\0';
    char *s = arena_sprintf(&a, "<%s>", big);
    assert_int_equal(strlen(s), 6002);
    assert_int_equal(s[0], '<');
    assert_int_equal(s[6001], '>');
    /* the source of strdup is not aliased */
    char src[] = "mutable";
    char *d = arena_strdup(&a, src);
    src[0] = 'M';
    assert_string_equal(d, "mutable");
    arena_free(&a);
}

static void test_reset_keeps_one_block(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    arena_reset(&a); /* on an empty arena: nothing */
    assert_null(a.head);
    for (int i = 0; i < 100; i++)
        assert_non_null(arena_alloc(&a, 1000));
    size_t before = a.total;
    assert_true(before > 4096);
    arena_reset(&a);
    assert_non_null(a.head);
    assert_int_equal(a.total, 4096); /* the first (smallest) block stays */
    /* the kept block is reused from its start */
    void *p = arena_alloc(&a, 16);
    assert_non_null(p);
    assert_int_equal(a.total, 4096);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 50; i++)
            memset(arena_alloc(&a, 3000), round, 3000);
        arena_reset(&a);
        assert_int_equal(a.total, 4096);
    }
    arena_free(&a);
    /* usable again after free */
    assert_string_equal(arena_strdup(&a, "again"), "again");
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_and_no_overlap),
        cmocka_unit_test(test_zero_and_big),
        cmocka_unit_test(test_overflow_returns_null),
        cmocka_unit_test(test_calloc_zeroed),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_reset_keeps_one_block),
    };
    return cmocka_run_group_tests_name("arena", tests, NULL, NULL);
}
