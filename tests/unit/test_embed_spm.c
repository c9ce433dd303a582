/* Tokenizer tests: the C SentencePiece port against the reference's ids for every golden text, plus the
 * reference's quirks on a small hand-made vocabulary where the expected segmentation is worked out by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "embed/spm.h"
#include "test_embed_fixture.h"

static void test_golden_ids(void **state) {
    (void)state;
    if (!golden_model_present()) {
        if (golden_skip_requested()) skip();
        fail_msg("model files missing");
    }
    char path[1200], err[256] = "";
    snprintf(path, sizeof path, "%s/vocab.json", golden_model_dir());
    spm *s = spm_load(path, SPM_RESERVED_DEFAULT, NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(spm_vocab_size(s), 8000);
    golden_row *rows = NULL;
    int n = golden_load(&rows);
    assert_true(n >= 200);
    int mismatches = 0, over128 = 0;
    int32_t ids[8192];
    for (int i = 0; i < n; i++) {
        int got = spm_encode(s, rows[i].text, rows[i].len, ids, 8192);
        assert_true(got >= 0 && got <= 8192);
        if (rows[i].nids > 128) over128++;
        int same = got == rows[i].nids;
        for (int k = 0; same && k < got; k++) same = ids[k] == rows[i].ids[k];
        if (!same) {
            mismatches++;
            fprintf(stderr, "ids differ for text %d (%zu bytes): got %d ids, want %d\n", i, rows[i].len, got,
                    rows[i].nids);
        }
        /* A short buffer gets the same prefix and the full count. */
        int32_t few[5];
        int got5 = spm_encode(s, rows[i].text, rows[i].len, few, 5);
        assert_int_equal(got5, got);
        for (int k = 0; k < got && k < 5; k++) assert_int_equal(few[k], ids[k]);
    }
    fprintf(stderr, "golden ids: %d texts, %d over 128 tokens, %d mismatches\n", n, over128, mismatches);
    assert_true(over128 > 0);
    assert_int_equal(mismatches, 0);
    golden_free(rows, n);
    spm_free(s);
}

/* Small vocabulary: ids 0..1 reserved ("<unk>" spelled as U+FFFD, "<s>"), then pieces. */
static spm *tiny(void) {
    static const char *pieces[] = {"\xef\xbf\xbd", "<s>", "\xe2\x96\x81", "\xe2\x96\x81" "ab", "a", "b",
                                   "ab", "c", "cd", "x", "ab"};
    static const double scores[] = {0, 0, -1.0, -2.5, -1.0, -1.0, -3.0, -1.0, NAN, -0.5, -4.0};
    char err[128];
    spm *s = spm_from_pieces(pieces, scores, 11, 2, err, sizeof err);
    assert_non_null(s);
    return s;
}

static int enc(spm *s, const char *t, int32_t *ids) { return spm_encode(s, t, strlen(t), ids, 64); }

static void test_quirks(void **state) {
    (void)state;
    spm *s = tiny();
    int32_t ids[64];
    /* empty text -> no ids; "a" -> "▁" + "a" */
    assert_int_equal(enc(s, "", ids), 0);
    assert_int_equal(enc(s, "a", ids), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 4);
    /* "ab": "▁ab" (-2.5) beats "▁"+"a"+"b" (-3) and "▁"+"ab" (last duplicate, id 10, -1 + -4 = -5) */
    assert_int_equal(enc(s, "ab", ids), 1);
    assert_int_equal(ids[0], 3);
    /* "cd" has a null score (0): "▁" + "cd" = -1 beats "▁" + "c" + "d"? d is unknown anyway */
    assert_int_equal(enc(s, "cd", ids), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 8);
    /* unknown code points: each is one unknown, and runs of unknowns collapse to one id 0 */
    assert_int_equal(enc(s, "zz\xe2\x98\x83z", ids), 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 0);
    /* spaces become ▁; other white space is a character like any other (unknown here) */
    assert_int_equal(enc(s, "a a", ids), 4);
    assert_int_equal(ids[2], 2);
    assert_int_equal(enc(s, "a\ta", ids), 4);
    assert_int_equal(ids[2], 0);
    /* NFKC: fullwidth "ａ" is "a" */
    assert_int_equal(enc(s, "\xef\xbd\x81", ids), 2);
    assert_int_equal(ids[1], 4);
    /* reserved "<s>" is not matchable: '<', 's', '>' are unknown and collapse */
    assert_int_equal(enc(s, "<s>", ids), 2);
    assert_int_equal(ids[1], 0);
    /* ill-formed UTF-8 reads as U+FFFD (unknown), never fails */
    assert_int_equal(spm_encode(s, "\xff\xfe" "a", 3, ids, 64), 3);
    assert_int_equal(ids[1], 0);
    assert_int_equal(ids[2], 4);
    spm_free(s);
}

static void test_load_errors(void **state) {
    (void)state;
    char err[256] = "";
    int missing = 0;
    assert_null(spm_load("tests/fixtures/no-such-vocab.json", 6, &missing, err, sizeof err));
    assert_int_equal(missing, 1);
    assert_true(strlen(err) > 0);
    FILE *f;
    const char *bad[] = {"{}", "[]", "[[1, 2]]", "[[\"a\"]]", "[[\"a\", \"x\"]]", "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *p = "/tmp/test_embed_spm_bad.json";
        f = fopen(p, "w");
        assert_non_null(f);
        fputs(bad[i], f);
        fclose(f);
        missing = 0;
        assert_null(spm_load(p, 6, &missing, err, sizeof err));
        assert_int_equal(missing, 0);
    }
    remove("/tmp/test_embed_spm_bad.json");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_ids),
        cmocka_unit_test(test_quirks),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests_name("embed_spm", tests, NULL, NULL);
}
