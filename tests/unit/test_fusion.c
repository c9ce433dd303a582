/* fusion (src/search/fusion.h): reciprocal-rank fusion, normalised so that rank 1 on every weighted path
 * scores 1; paths with a weight <= 0 are ignored. Score fusion: the weighted mean of scaled scores, min-max
 * scaling, the context window's weights as configured, and the speaker label of a transcript turn and
 * whether a query names it. */
#include <math.h>

#include "testutil.h"

#include "search/fusion.h"

#define EPS 1e-12

static void test_best_is_one(void **state)
{
    (void)state;
    int r1[] = {1};
    double w1[] = {1.0};
    assert_float_equal(fusion_rrf(r1, w1, 1), 1.0, EPS);
    int r2[] = {1, 1};
    double w2[] = {0.7, 0.3};
    assert_float_equal(fusion_rrf(r2, w2, 2), 1.0, EPS);
}

static void test_formula(void **state)
{
    (void)state;
    int r[] = {1, 0};
    double w[] = {1.0, 1.0};
    assert_float_equal(fusion_rrf(r, w, 2), 0.5, EPS); /* found by one of two equal paths, at rank 1 */
    int r2[] = {2, 3};
    double want = (1.0 / (FUSION_K + 2) + 1.0 / (FUSION_K + 3)) / (2.0 / (FUSION_K + 1));
    assert_float_equal(fusion_rrf(r2, w, 2), want, EPS);
    int r3[] = {5, 0};
    double w3[] = {2.0, 1.0};
    want = (2.0 / (FUSION_K + 5)) / (2.0 / (FUSION_K + 1) + 1.0 / (FUSION_K + 1));
    assert_float_equal(fusion_rrf(r3, w3, 2), want, EPS);
}

static void test_not_found_and_weights(void **state)
{
    (void)state;
    int none[] = {0, 0};
    double w[] = {1.0, 1.0};
    assert_float_equal(fusion_rrf(none, w, 2), 0.0, EPS);
    /* a path with weight 0 (or below) neither adds nor counts toward the best */
    int r[] = {0, 1};
    double w0[] = {1.0, 0.0};
    assert_float_equal(fusion_rrf(r, w0, 2), 0.0, EPS);
    int r1[] = {1, 1};
    double wneg[] = {1.0, -3.0};
    assert_float_equal(fusion_rrf(r1, wneg, 2), 1.0, EPS);
    double wz[] = {0.0, 0.0};
    assert_float_equal(fusion_rrf(r1, wz, 2), 0.0, EPS);
    assert_float_equal(fusion_rrf(NULL, NULL, 0), 0.0, EPS);
}

static void test_monotonic_in_rank(void **state)
{
    (void)state;
    double w[] = {0.6, 0.4};
    double prev = 2;
    for (int rank = 1; rank <= 2000; rank++) {
        int r[] = {rank, rank};
        double s = fusion_rrf(r, w, 2);
        assert_true(s < prev);
        assert_true(s > 0 && s <= 1.0);
        prev = s;
    }
    /* found by both paths beats found by one at the same rank */
    int both[] = {3, 3}, one[] = {3, 0};
    assert_true(fusion_rrf(both, w, 2) > fusion_rrf(one, w, 2));
}

static void test_mean_and_minmax(void **state)
{
    (void)state;
    double w[] = {2.0, 1.0};
    double both[] = {1.0, 1.0}, k_only[] = {1.0, 0.0}, v_only[] = {0.0, 1.0}, half[] = {0.5, 0.25};
    assert_float_equal(fusion_mean(both, w, 2), 1.0, EPS);
    assert_float_equal(fusion_mean(k_only, w, 2), 2.0 / 3, EPS);
    assert_float_equal(fusion_mean(v_only, w, 2), 1.0 / 3, EPS);
    assert_float_equal(fusion_mean(half, w, 2), (2 * 0.5 + 0.25) / 3, EPS);
    double out_of_range[] = {7.0, -1.0}; /* clamped into [0,1] */
    assert_float_equal(fusion_mean(out_of_range, w, 2), 2.0 / 3, EPS);
    double w0[] = {0.0, -1.0};
    assert_float_equal(fusion_mean(both, w0, 2), 0.0, EPS);
    double w1[] = {0.0, 5.0}; /* a zero-weight path neither adds nor counts */
    assert_float_equal(fusion_mean(v_only, w1, 2), 1.0, EPS);

    assert_float_equal(fusion_minmax(0.8, 0.2, 0.8), 1.0, EPS);
    assert_float_equal(fusion_minmax(0.2, 0.2, 0.8), 0.0, EPS);
    assert_float_equal(fusion_minmax(0.5, 0.2, 0.8), 0.5, EPS);
    assert_float_equal(fusion_minmax(0.9, 0.2, 0.8), 1.0, EPS);
    assert_float_equal(fusion_minmax(-0.3, 0.2, 0.8), 0.0, EPS);
    assert_float_equal(fusion_minmax(0.4, 0.4, 0.4), 1.0, EPS); /* a single similarity */
}

static void test_parse_window(void **state)
{
    (void)state;
    double w[FUSION_WINDOW_MAX] = {9, 9, 9};
    int n = -1;
    assert_int_equal(fusion_parse_window("0.6,0.5,0.2", w, &n), 0);
    assert_int_equal(n, 3);
    assert_float_equal(w[0], 0.6, EPS);
    assert_float_equal(w[1], 0.5, EPS);
    assert_float_equal(w[2], 0.2, EPS);
    assert_int_equal(fusion_parse_window(" 1 , 0 ,0.25 ", w, &n), 0);
    assert_int_equal(n, 3);
    assert_float_equal(w[1], 0.0, EPS);
    assert_int_equal(fusion_parse_window("0", w, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fusion_parse_window("", w, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(fusion_parse_window("0.5,0", w, &n), 0);
    assert_int_equal(n, 1);
    /* anything else is refused and changes nothing */
    const char *bad[] = {"x", "0.5,", ",0.5", "0.5;0.2", "1.5", "-0.1", "nan", "inf", "0.5 0.2", "1e999",
                         "0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 42;
        w[0] = 7;
        if (fusion_parse_window(bad[i], w, &n) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(n, 42);
        assert_float_equal(w[0], 7, EPS);
    }
    assert_int_equal(fusion_parse_window("0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1", w, &n), 0);
    assert_int_equal(n, FUSION_WINDOW_MAX);
}

static void test_speaker_label(void **state)
{
    (void)state;
    static const struct {
        const char *content;
        size_t len;
    } cases[] = {
        {"Caroline: I went to the support group.", 8},
        {"Caroline:", 8},                      /* the label alone */
        {"Dr. Smith: take two a day", 9},      /* dots and two words */
        {"Mary Ann Lee: hello", 12},           /* three words */
        {"O'Neil-Hart: hi", 11},               /* apostrophe, hyphen */
        {"Zo\xc3\xab: hi", 4},                  /* UTF-8 letters count as letters */
        {"\xc3\x89lodie: salut", 7},            /* and may open the label */
        {"Agent 7: copy", 7},                  /* digits */
        {"One Two Three Four: x", 0},          /* four words */
        {"caroline: hi", 0},                   /* not capitalised */
        {"Note:buy milk", 0},                  /* no space after the colon */
        {"http://example.org", 0},
        {"Caroline : hi", 0},                  /* space before the colon */
        {"Ann  Lee: x", 0},                    /* two spaces */
        {"Tom, hi: x", 0},                     /* punctuation */
        {"Tom said hi", 0},                    /* no colon */
        {"", 0},
        {": hi", 0},
        {"Abcdefghijklmnopqrstuvwxyzabcdefghijklmnop: x", 0}, /* longer than FUSION_LABEL_MAX */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        if (fusion_speaker_label(cases[i].content) != cases[i].len)
            fail_msg("'%s': %zu, expected %zu", cases[i].content, fusion_speaker_label(cases[i].content),
                     cases[i].len);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(fusion_names("What did Caroline paint?", "Caroline: x", 8));
    assert_true(fusion_names("what did caroline paint", "Caroline", 8)); /* ASCII case ignored */
    assert_true(fusion_names("Caroline's cat", "Caroline", 8));
    assert_true(fusion_names("a gift from Tom", "Tom", 3));            /* at the end */
    assert_true(fusion_names("Tom", "Tom", 3));
    assert_true(fusion_names("Did Dr. Smith call?", "Dr. Smith", 9));
    assert_false(fusion_names("Carolineville is far", "Caroline", 8)); /* part of a word */
    assert_false(fusion_names("Tomorrow, and Atom", "Tom", 3));
    assert_false(fusion_names("Tom\xc3\xa1s went", "Tom", 3));            /* followed by a non-ASCII letter */
    assert_false(fusion_names("Did Smith call?", "Dr. Smith", 9));
    assert_false(fusion_names("", "Tom", 3));
    assert_false(fusion_names("Tom", "Tom", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_best_is_one),
        cmocka_unit_test(test_formula),
        cmocka_unit_test(test_not_found_and_weights),
        cmocka_unit_test(test_monotonic_in_rank),
        cmocka_unit_test(test_mean_and_minmax),
        cmocka_unit_test(test_parse_window),
        cmocka_unit_test(test_speaker_label),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("fusion", tests, NULL, NULL);
}
