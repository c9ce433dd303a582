/* terms (src/search/terms.h): word splitting, ASCII lower-casing, duplicates, stop words (dropped unless
 * nothing else is left), UTF-8 kept, and the TERMS_MAX / TERM_MAX_BYTES limits never cutting a UTF-8
 * sequence. */
#include "testutil.h"

#include "http/json.h"
#include "search/terms.h"

typedef struct fx {
    arena a;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    arena_init(&f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    arena_free(&f->a);
    free(f);
    return 0;
}

/* want: the expected terms, NULL-terminated */
static void terms_are(fx *f, const char *text, const char *const *want)
{
    size_t n = 99;
    const char **t = terms_extract(&f->a, text, &n);
    assert_non_null(t);
    size_t nw = 0;
    while (want[nw])
        nw++;
    int same = n == nw;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(t[i], want[i]) == 0;
    if (!same) {
        print_error("text: %s\ngot %zu terms:", text, n);
        for (size_t i = 0; i < n; i++)
            print_error(" [%s]", t[i]);
        print_error("\nwant %zu terms:", nw);
        for (size_t i = 0; i < nw; i++)
            print_error(" [%s]", want[i]);
        print_error("\n");
        fail();
    }
}

#define TERMS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_TERMS ((const char *const[]){NULL})

static void test_words_and_case(void **state)
{
    fx *f = *state;
    terms_are(f, "Hello World", TERMS("hello", "world"));
    terms_are(f, "  foo-bar_baz, qux!?  (x) ", TERMS("foo", "bar", "baz", "qux", "x"));
    terms_are(f, "GPT4 2024 v1.2", TERMS("gpt4", "2024", "v1", "2"));
    terms_are(f, "\"quoted\" OR NOT * AND near(x)", TERMS("quoted", "not", "near", "x")); /* "or","and": stop words */
    terms_are(f, "", NO_TERMS);
    terms_are(f, "  !!! ... ", NO_TERMS);
}

static void test_duplicates(void **state)
{
    fx *f = *state;
    terms_are(f, "Cat cat CAT dog cat", TERMS("cat", "dog"));
    terms_are(f, "b a b a c", TERMS("b", "c")); /* "a" is a stop word */
}

static void test_stop_words(void **state)
{
    fx *f = *state;
    terms_are(f, "What is the capital of France?", TERMS("capital", "france"));
    terms_are(f, "THE Cat", TERMS("cat"));
    /* nothing else: the stop words themselves, deduplicated, in order */
    terms_are(f, "The of and the", TERMS("the", "of", "and"));
    terms_are(f, "Who are you?", TERMS("who", "are", "you"));

    static const char *const stop[] = {
        "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "before",
        "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from", "had", "has", "have",
        "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its",
        "me", "my", "of", "on", "or", "our", "ours", "she", "so", "than", "that", "the", "their", "theirs", "them",
        "then", "there", "these", "they", "this", "those", "to", "was", "we", "were", "what", "when", "where",
        "which", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
    };
    for (size_t i = 0; i < sizeof stop / sizeof stop[0]; i++)
        if (!terms_is_stopword(stop[i]))
            fail_msg("'%s' is not recognised as a stop word", stop[i]);
    static const char *const not_stop[] = {"", "cat", "The", "aa", "yourself", "zzz", "0", "\xC3\xA9"};
    for (size_t i = 0; i < sizeof not_stop / sizeof not_stop[0]; i++)
        if (terms_is_stopword(not_stop[i]))
            fail_msg("'%s' taken for a stop word", not_stop[i]);
}

static void test_utf8_kept(void **state)
{
    fx *f = *state;
    /* non-ASCII bytes are letters; only ASCII is lower-cased */
    terms_are(f, "Caf\xC3\xA9 Z\xC3\xBCrich \xE6\x9D\xB1\xE4\xBA\xAC na\xC3\xAFve",
              TERMS("caf\xC3\xA9", "z\xC3\xBCrich", "\xE6\x9D\xB1\xE4\xBA\xAC", "na\xC3\xAFve"));
    terms_are(f, "\xC3\x89T\xC3\x89", TERMS("\xC3\x89t\xC3\x89"));
    terms_are(f, "\xF0\x9F\x98\x80!\xF0\x9F\x98\x80", TERMS("\xF0\x9F\x98\x80"));
}

static void test_terms_max(void **state)
{
    fx *f = *state;
    char text[2000];
    size_t o = 0;
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "w%d ", i);
    size_t n = 0;
    const char **t = terms_extract(&f->a, text, &n);
    assert_non_null(t);
    assert_int_equal(n, TERMS_MAX);
    assert_string_equal(t[0], "w0");
    assert_string_equal(t[TERMS_MAX - 1], "w63");

    /* duplicates do not use up the limit */
    o = 0;
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "dup ");
    snprintf(text + o, sizeof text - o, "last");
    t = terms_extract(&f->a, text, &n);
    assert_int_equal(n, 2);
    assert_string_equal(t[1], "last");
}

static void check_cut(fx *f, const char *word, size_t want_len)
{
    size_t n = 0;
    const char **t = terms_extract(&f->a, word, &n);
    assert_non_null(t);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(t[0]), want_len);
    assert_true(strlen(t[0]) <= TERM_MAX_BYTES);
    assert_true(json_utf8_valid(t[0], strlen(t[0])));
    assert_memory_equal(t[0], word, want_len); /* a prefix (the input is lower-case already) */
}

static void test_term_max_bytes(void **state)
{
    fx *f = *state;
    char w[512];
    /* ASCII: exactly the limit is kept whole, longer is cut to it */
    memset(w, 'x', TERM_MAX_BYTES);
    w[TERM_MAX_BYTES] = '\0';
    check_cut(f, w, TERM_MAX_BYTES);
    memset(w, 'y', 100);
    w[100] = '\0';
    check_cut(f, w, TERM_MAX_BYTES);
    /* 2-byte characters: 64 is a boundary */
    w[0] = '\0';
    for (int i = 0; i < 40; i++)
        strcat(w, "\xC3\xA9");
    check_cut(f, w, 64);
    /* 3-byte characters: 64 falls inside the 22nd, which is dropped whole */
    w[0] = '\0';
    for (int i = 0; i < 30; i++)
        strcat(w, "\xE2\x82\xAC");
    check_cut(f, w, 63);
    /* 4-byte characters after one ASCII byte: 64 falls inside the 16th */
    strcpy(w, "a");
    for (int i = 0; i < 20; i++)
        strcat(w, "\xF0\x9F\x98\x80");
    check_cut(f, w, 61);
    /* a long word followed by others: the rest of the long word is not a new term */
    memset(w, 'z', 100);
    strcpy(w + 100, " next");
    size_t n = 0;
    const char **t = terms_extract(&f->a, w, &n);
    assert_int_equal(n, 2);
    assert_int_equal(strlen(t[0]), TERM_MAX_BYTES);
    assert_string_equal(t[1], "next");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_words_and_case), T(test_duplicates), T(test_stop_words),
        T(test_utf8_kept),      T(test_terms_max),  T(test_term_max_bytes),
    };
    return cmocka_run_group_tests_name("terms", tests, NULL, NULL);
}
