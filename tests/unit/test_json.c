/* json writer (src/http/json.h): commas and nesting, escaping, U+FFFD for invalid UTF-8, the UTF-8
 * validator, number formatting, and a round trip of a pseudo-random document through cJSON. */
#include <cjson/cJSON.h>
#include <math.h>

#include "testutil.h"

#include "http/json.h"

#define FFFD "\xEF\xBF\xBD"

static char *str_of(const char *s, size_t n)
{
    jw w;
    jw_init(&w);
    jw_strn(&w, s, n);
    return tu_jw_take(&w);
}

static void test_nesting_and_commas(void **state)
{
    (void)state;
    jw w;
    jw_init(&w);
    jw_obj(&w);
    jw_kint(&w, "a", 1);
    jw_key(&w, "b");
    jw_arr(&w);
    jw_int(&w, 1);
    jw_str(&w, "x");
    jw_obj(&w);
    jw_knull(&w, "c");
    jw_obj_end(&w);
    jw_arr(&w);
    jw_arr_end(&w);
    jw_null(&w);
    jw_arr_end(&w);
    jw_key(&w, "d");
    jw_obj(&w);
    jw_obj_end(&w);
    jw_kbool(&w, "t", 1);
    jw_kbool(&w, "f", 0);
    jw_kstr(&w, "n", NULL);
    jw_kdouble(&w, "g", 2.5);
    jw_key(&w, "r");
    jw_raw(&w, "{\"pre\":[1]}", 11);
    jw_key(&w, "e");
    jw_arr(&w);
    jw_raw(&w, "7", 1);
    jw_raw(&w, "8", 1);
    jw_arr_end(&w);
    jw_obj_end(&w);
    tu_streq_free(tu_jw_take(&w), "{\"a\":1,\"b\":[1,\"x\",{\"c\":null},[],null],\"d\":{},\"t\":true,\"f\":false,"
                                  "\"n\":null,\"g\":2.5,\"r\":{\"pre\":[1]},\"e\":[7,8]}");
    jw_free(&w);
}

static void test_empty_containers_and_top_level(void **state)
{
    (void)state;
    jw w;
    jw_init(&w);
    jw_arr(&w);
    jw_obj(&w);
    jw_obj_end(&w);
    jw_obj(&w);
    jw_obj_end(&w);
    jw_arr_end(&w);
    tu_streq_free(tu_jw_take(&w), "[{},{}]");

    /* the writer can be reused after jw_take */
    jw_init(&w);
    jw_str(&w, "solo");
    tu_streq_free(tu_jw_take(&w), "\"solo\"");
    jw_init(&w);
    jw_int(&w, 5);
    tu_streq_free(tu_jw_take(&w), "5");
}

static void test_depth_limit(void **state)
{
    (void)state;
    jw w;
    jw_init(&w);
    for (int i = 0; i < JW_MAX_DEPTH; i++)
        jw_arr(&w);
    for (int i = 0; i < JW_MAX_DEPTH; i++)
        jw_arr_end(&w);
    char *s = tu_jw_take(&w);
    assert_int_equal(strlen(s), 2 * JW_MAX_DEPTH);
    free(s);

    jw_init(&w);
    for (int i = 0; i < JW_MAX_DEPTH + 1; i++)
        jw_arr(&w);
    assert_true(w.err);
    for (int i = 0; i < JW_MAX_DEPTH + 1; i++)
        jw_arr_end(&w);
    assert_null(jw_take(&w, NULL)); /* too deep: an error, never a truncated document */
    jw_free(&w);
}

static void test_escaping(void **state)
{
    (void)state;
    tu_streq_free(str_of("say \"hi\" \\ /", 12), "\"say \\\"hi\\\" \\\\ /\"");
    tu_streq_free(str_of("\n\r\t\b\f", 5), "\"\\n\\r\\t\\b\\f\"");
    tu_streq_free(str_of("\x01\x1f\x7f", 3), "\"\\u0001\\u001f\x7f\"");
    tu_streq_free(str_of("a\0b", 3), "\"a\\u0000b\""); /* jw_strn writes embedded NULs escaped */
    tu_streq_free(str_of("", 0), "\"\"");
    /* keys are escaped the same way */
    jw w;
    jw_init(&w);
    jw_obj(&w);
    jw_kstr(&w, "k\"\n", "v");
    jw_obj_end(&w);
    tu_streq_free(tu_jw_take(&w), "{\"k\\\"\\n\":\"v\"}");
}

static void test_valid_utf8_kept(void **state)
{
    (void)state;
    const char *s = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF \xF4\x8F\xBF\xBF";
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", s);
    tu_streq_free(str_of(s, strlen(s)), want);
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    tu_streq_free(str_of("a\xFF" "b", 3), "\"a" FFFD "b\"");
    tu_streq_free(str_of("\x80", 1), "\"" FFFD "\"");                     /* lone continuation */
    tu_streq_free(str_of("a\xC3", 2), "\"a" FFFD "\"");                   /* truncated at the end */
    tu_streq_free(str_of("\xE2\x82" "a", 3), "\"" FFFD FFFD "a\"");       /* truncated in the middle */
    tu_streq_free(str_of("\xC0\xAF", 2), "\"" FFFD FFFD "\"");            /* overlong '/' */
    tu_streq_free(str_of("\xE0\x80\xAF", 3), "\"" FFFD FFFD FFFD "\"");   /* overlong 3-byte */
    tu_streq_free(str_of("\xED\xA0\x80", 3), "\"" FFFD FFFD FFFD "\"");   /* surrogate U+D800 */
    tu_streq_free(str_of("\xF4\x90\x80\x80", 4), "\"" FFFD FFFD FFFD FFFD "\""); /* > U+10FFFF */
    tu_streq_free(str_of("\xF5\x80\x80\x80", 4), "\"" FFFD FFFD FFFD FFFD "\"");
    /* the output of any byte string is valid UTF-8 */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char *out = str_of((const char *)all, sizeof all);
    assert_true(json_utf8_valid(out, strlen(out)));
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_true(cJSON_IsString(j));
    cJSON_Delete(j);
    free(out);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    struct {
        const char *s;
        size_t n;
        int ok;
    } cases[] = {
        {"", 0, 1},
        {"plain ascii", 11, 1},
        {"\xC3\xA9", 2, 1},
        {"\xE2\x82\xAC", 3, 1},
        {"\xF0\x9F\x98\x80", 4, 1},
        {"\xF4\x8F\xBF\xBF", 4, 1},  /* U+10FFFF */
        {"\xED\x9F\xBF", 3, 1},      /* U+D7FF */
        {"\xEE\x80\x80", 3, 1},      /* U+E000 */
        {"\xC2\x80", 2, 1},          /* U+0080, smallest 2-byte */
        {"\xE0\xA0\x80", 3, 1},      /* U+0800, smallest 3-byte */
        {"\xF0\x90\x80\x80", 4, 1},  /* U+10000, smallest 4-byte */
        {"a\0b", 3, 0},              /* NUL */
        {"\0", 1, 0},
        {"\xC0\x80", 2, 0},          /* overlong NUL */
        {"\xC1\xBF", 2, 0},          /* overlong */
        {"\xE0\x9F\xBF", 3, 0},      /* overlong 3-byte */
        {"\xF0\x8F\xBF\xBF", 4, 0},  /* overlong 4-byte */
        {"\xED\xA0\x80", 3, 0},      /* U+D800 */
        {"\xED\xBF\xBF", 3, 0},      /* U+DFFF */
        {"\xED\xA0\xBD\xED\xB8\x80", 6, 0}, /* CESU-8 surrogate pair */
        {"\xF4\x90\x80\x80", 4, 0},  /* U+110000 */
        {"\xF5\x80\x80\x80", 4, 0},
        {"\xF8\x88\x80\x80\x80", 5, 0},
        {"\xFF", 1, 0},
        {"\xFE", 1, 0},
        {"\x80", 1, 0},
        {"\xBF", 1, 0},
        {"\xC3", 1, 0},              /* truncated */
        {"\xE2\x82", 2, 0},
        {"\xF0\x9F\x98", 3, 0},
        {"\xC3" "a", 2, 0},          /* bad continuation */
        {"\xE2\x28\xA1", 3, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (json_utf8_valid(cases[i].s, cases[i].n) != cases[i].ok)
            fail_msg("case %zu: json_utf8_valid gave %d, want %d", i, !cases[i].ok, cases[i].ok);
    }
    /* n bounds the check: a valid sequence cut by n is invalid, bytes after n are not read */
    assert_false(json_utf8_valid("\xE2\x82\xAC", 2));
    assert_true(json_utf8_valid("ab\xFF", 2));
}

static void test_int_extremes(void **state)
{
    (void)state;
    jw w;
    jw_init(&w);
    jw_arr(&w);
    jw_int(&w, 0);
    jw_int(&w, -1);
    jw_int(&w, 7);
    jw_int(&w, INT64_MAX);
    jw_int(&w, INT64_MIN);
    jw_int(&w, INT64_MIN + 1);
    jw_int(&w, 1000000000000LL);
    jw_arr_end(&w);
    tu_streq_free(tu_jw_take(&w), "[0,-1,7,9223372036854775807,-9223372036854775808,-9223372036854775807,"
                                  "1000000000000]");
}

static void test_double_format(void **state)
{
    (void)state;
    jw w;
    jw_init(&w);
    jw_arr(&w);
    jw_double(&w, NAN);
    jw_double(&w, INFINITY);
    jw_double(&w, -INFINITY);
    jw_double(&w, 1.0);
    jw_double(&w, 0.0);
    jw_double(&w, -3.0);
    jw_double(&w, 0.5);
    jw_double(&w, 123456789.0);
    jw_double(&w, 1e20);
    jw_double(&w, 1.5e-7);
    jw_arr_end(&w);
    tu_streq_free(tu_jw_take(&w), "[null,null,null,1.0,0.0,-3.0,0.5,123456789.0,1e+20,1.5e-07]");

    /* the result always parses back as the same float (to 9 significant digits) */
    double vals[] = {0.1, 1.0 / 3, 2.718281828459045, -1e-300, 6.02214076e23, 0.87654321};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        jw_init(&w);
        jw_double(&w, vals[i]);
        char *s = tu_jw_take(&w);
        cJSON *j = cJSON_Parse(s);
        assert_non_null(j);
        assert_true(cJSON_IsNumber(j));
        assert_true(fabs(j->valuedouble - vals[i]) <= fabs(vals[i]) * 1e-8);
        cJSON_Delete(j);
        free(s);
    }
    /* non-finite as an object member keeps the object valid */
    jw_init(&w);
    jw_obj(&w);
    jw_kdouble(&w, "x", NAN);
    jw_kint(&w, "y", 1);
    jw_obj_end(&w);
    tu_streq_free(tu_jw_take(&w), "{\"x\":null,\"y\":1}");
}

static void test_large_string_grows_buffer(void **state)
{
    (void)state;
    size_t n = 300000;
    char *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    big[1000] = '"';
    char *out = str_of(big, n);
    assert_int_equal(strlen(out), n + 3); /* quotes + one escape */
    assert_int_equal(out[1001], '\\');
    assert_int_equal(out[1002], '"');
    free(out);
    free(big);
}

/* --- round trip --------------------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

/* A string built from tokens whose raw bytes and decoded (expected) bytes are known. */
static void random_string(char *raw, size_t *rn, char *dec, size_t *dn)
{
    static const struct {
        const char *raw, *dec;
    } tok[] = {
        {"a", "a"}, {"Z", "Z"}, {" ", " "}, {"0", "0"}, {"\"", "\""}, {"\\", "\\"}, {"/", "/"},
        {"\n", "\n"}, {"\t", "\t"}, {"\x01", "\x01"}, {"\x1f", "\x1f"}, {"\x7f", "\x7f"},
        {"\xC3\xA9", "\xC3\xA9"}, {"\xE2\x82\xAC", "\xE2\x82\xAC"}, {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
        {"\xFF", FFFD}, /* no lone continuation token: it would complete a preceding truncated sequence */
        {"\xC0\xAF", FFFD FFFD}, {"\xED\xA0\x80", FFFD FFFD FFFD},
        {"\xF4\x90\x80\x80", FFFD FFFD FFFD FFFD}, {"\xE2\x82", FFFD FFFD}, {"\xC3", FFFD},
    };
    size_t nt = sizeof tok / sizeof tok[0];
    size_t len = rnd() % 12;
    *rn = *dn = 0;
    for (size_t i = 0; i < len; i++) {
        size_t k = rnd() % nt;
        size_t rl = strlen(tok[k].raw), dl = strlen(tok[k].dec);
        memcpy(raw + *rn, tok[k].raw, rl);
        memcpy(dec + *dn, tok[k].dec, dl);
        *rn += rl;
        *dn += dl;
    }
    raw[*rn] = dec[*dn] = '\0';
}

/* Writes a random value with w and builds the expected cJSON tree alongside. */
static cJSON *random_value(jw *w, int depth)
{
    char raw[64], dec[160];
    size_t rn, dn;
    int kind = depth >= 5 ? (int)(rnd() % 6) : (int)(rnd() % 8);
    switch (kind) {
    case 0:
        jw_null(w);
        return cJSON_CreateNull();
    case 1: {
        int b = rnd() & 1;
        jw_bool(w, b);
        return cJSON_CreateBool(b);
    }
    case 2: {
        int64_t v = (int64_t)(((uint64_t)rnd() << 32) | rnd());
        if (rnd() % 2)
            v %= 100000;
        jw_int(w, v);
        return cJSON_CreateNumber((double)v);
    }
    case 3: {
        double d = ((int)(rnd() % 20001) - 10000) / 8.0; /* exact in 9 significant digits */
        jw_double(w, d);
        return cJSON_CreateNumber(d);
    }
    case 4:
    case 5:
        random_string(raw, &rn, dec, &dn);
        jw_strn(w, raw, rn);
        return cJSON_CreateString(dec);
    case 6: {
        cJSON *a = cJSON_CreateArray();
        jw_arr(w);
        int n = (int)(rnd() % 5);
        for (int i = 0; i < n; i++)
            cJSON_AddItemToArray(a, random_value(w, depth + 1));
        jw_arr_end(w);
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        jw_obj(w);
        int n = (int)(rnd() % 5);
        for (int i = 0; i < n; i++) {
            random_string(raw, &rn, dec, &dn);
            char key[96], dkey[192];
            snprintf(key, sizeof key, "k%d_%s", i, raw);
            snprintf(dkey, sizeof dkey, "k%d_%s", i, dec);
            jw_key(w, key);
            cJSON_AddItemToObject(o, dkey, random_value(w, depth + 1));
        }
        jw_obj_end(w);
        return o;
    }
    }
}

static void test_round_trip_random_documents(void **state)
{
    (void)state;
    rng_state = 0x5eed;
    for (int iter = 0; iter < 300; iter++) {
        jw w;
        jw_init(&w);
        jw_obj(&w);
        jw_key(&w, "root");
        cJSON *want_root = random_value(&w, 0);
        jw_obj_end(&w);
        cJSON *want = cJSON_CreateObject();
        cJSON_AddItemToObject(want, "root", want_root);
        char *text = tu_jw_take(&w);
        assert_true(json_utf8_valid(text, strlen(text)));
        cJSON *got = cJSON_Parse(text);
        if (!got)
            fail_msg("iteration %d: cJSON could not parse %s", iter, text);
        if (!cJSON_Compare(got, want, 1)) {
            char *ws = cJSON_PrintUnformatted(want);
            print_error("iteration %d\ngot:  %s\nwant: %s\n", iter, text, ws ? ws : "?");
            free(ws);
            fail();
        }
        cJSON_Delete(got);
        cJSON_Delete(want);
        free(text);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting_and_commas),
        cmocka_unit_test(test_empty_containers_and_top_level),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_valid_utf8_kept),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_int_extremes),
        cmocka_unit_test(test_double_format),
        cmocka_unit_test(test_large_string_grows_buffer),
        cmocka_unit_test(test_round_trip_random_documents),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
