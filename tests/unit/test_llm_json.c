/* llm_json (src/llm/llm_json.c): a table of what models really write around their JSON — code fences with
 * and without a language tag, prose before and after, braces and brackets inside strings, escaped quotes,
 * several values, arrays, truncation, a BOM, NUL bytes, deep nesting, invalid JSON that looks like JSON —
 * each with the value that must come out (or none); then the lenient getters: numbers as strings,
 * percentages, NaN and infinities, blank strings, case of keys, and cutting at UTF-8 boundaries. */
#include <cjson/cJSON.h>
#include <math.h>

#include "testutil.h"

#include "llm/llm_json.h"

typedef struct ecase {
    const char *name;
    const char *text;
    size_t len;       /* 0: strlen(text) */
    const char *want; /* the JSON expected (compared as trees), NULL: nothing */
} ecase;

#define BOM "\xEF\xBB\xBF"

static const ecase CASES[] = {
    {"plain object", "{\"a\": 1}", 0, "{\"a\":1}"},
    {"empty object", "{}", 0, "{}"},
    {"fence with tag", "```json\n{\"facts\": [{\"content\": \"x\"}]}\n```", 0, "{\"facts\":[{\"content\":\"x\"}]}"},
    {"fence without tag", "```\n{\"a\": true}\n```", 0, "{\"a\":true}"},
    {"fence, prose around", "Sure! Here is the JSON:\n```JSON\n{\"a\": [1, 2]}\n```\nLet me know if you need more.", 0,
     "{\"a\":[1,2]}"},
    {"prose, no fence", "The answer is {\"ok\": false} as requested.", 0, "{\"ok\":false}"},
    {"prose with braces first", "Use {braces} like {this one}: {\"ok\": 1}", 0, "{\"ok\":1}"},
    {"prose with brackets first", "See [note] and [1, 2]: {\"ok\": 1}", 0, "{\"ok\":1}"},
    {"braces in strings", "{\"a\": \"x } y { z\", \"b\": \"]\", \"c\": \"[{\"}", 0,
     "{\"a\":\"x } y { z\",\"b\":\"]\",\"c\":\"[{\"}"},
    {"escaped quotes", "{\"a\": \"he said \\\"}\\\" ok\", \"b\": 2}", 0, "{\"a\":\"he said \\\"}\\\" ok\",\"b\":2}"},
    {"escaped backslash before quote", "{\"a\": \"c:\\\\\", \"b\": 1} tail", 0, "{\"a\":\"c:\\\\\",\"b\":1}"},
    {"unicode escapes", "{\"a\": \"\\u00e9\\ud83d\\ude00\"}", 0, "{\"a\":\"\xc3\xa9\xf0\x9f\x98\x80\"}"},
    {"several objects: the first", "{\"a\": 1}\n{\"b\": 2}", 0, "{\"a\":1}"},
    {"two fences: the first", "```json\n{\"a\":1}\n```\n```json\n{\"b\":2}\n```", 0, "{\"a\":1}"},
    {"array then object: the object", "[1, 2] and then {\"x\": null}", 0, "{\"x\":null}"},
    {"only an array: the array, not its item", "Here: [{\"a\": 1}, {\"b\": 2}] done", 0, "[{\"a\":1},{\"b\":2}]"},
    {"two arrays: the first", "[1] [2]", 0, "[1]"},
    {"nested values stay inside", "{\"outer\": {\"inner\": [1, {\"deep\": \"}\"}]}}", 0,
     "{\"outer\":{\"inner\":[1,{\"deep\":\"}\"}]}}"},
    {"whitespace and CRLF", " \r\n\t{ \"a\" :\r\n [ 1 , 2 ] \t}\r\n", 0, "{\"a\":[1,2]}"},
    {"raw newline inside a string", "{\"a\": \"line1\nline2\"}", 0, "{\"a\":\"line1\\nline2\"}"},
    {"numbers", "{\"a\": -0.5e+2, \"b\": 0, \"c\": 12}", 0, "{\"a\":-50,\"b\":0,\"c\":12}"},
    {"BOM", BOM "{\"a\": 1}", 0, "{\"a\":1}"},
    {"BOM and fence", BOM "```json\n{\"a\": 1}\n```", 0, "{\"a\":1}"},
    {"NUL after the object", "{\"a\":1}\0{\"b\":2}", 15, "{\"a\":1}"},
    {"NUL before the object", "\0{\"a\":1}", 8, NULL},
    {"NUL inside the object", "{\"a\":\0 1}", 9, NULL},
    {"truncated object", "{\"facts\": [{\"content\": \"x\"}, {\"content\": \"y", 0, NULL},
    {"truncated inside a number", "{\"a\": 12", 0, NULL},
    {"truncated after a key", "```json\n{\"a\"", 0, NULL},
    {"truncated inside an escape", "{\"a\": \"\\u00", 0, NULL},
    {"truncated literal", "{\"a\": tr", 0, NULL},
    {"truncated object after an array", "[1] {\"a\": ", 0, "[1]"},
    {"trailing comma", "{\"a\": 1,}", 0, NULL},
    {"single quotes", "{'a': 1}", 0, NULL},
    {"NaN literal", "{\"a\": NaN}", 0, NULL},
    {"Infinity literal", "{\"a\": -Infinity}", 0, NULL},
    {"leading zero", "{\"a\": 01}", 0, NULL},
    {"bad escape", "{\"a\": \"\\q\"}", 0, NULL},
    {"unquoted key", "{a: 1}", 0, NULL},
    {"mismatched brackets", "{\"a\": [1}", 0, NULL},
    /* an invalid outer object is no value: the scan goes on inside it, and the array there is whole */
    {"inside an invalid outer object", "{\"facts\": [{\"c\": 1}], oops}", 0, "[{\"c\":1}]"},
    {"inside an invalid outer object, an object", "{\"x\" {\"c\": 1}}", 0, "{\"c\":1}"},
    {"empty text", "", 0, NULL},
    {"no JSON", "I'm sorry, I cannot help with that.", 0, NULL},
    {"only a stray brace", "}{", 0, NULL},
    {"a bare string is not looked for", "\"just a string\"", 0, NULL},
};

static char *nest(int depth, char open, char close) {
    char *s = malloc((size_t)depth * 2 + 1);
    assert_non_null(s);
    for (int i = 0; i < depth; i++) s[i] = open, s[depth * 2 - 1 - i] = close;
    s[depth * 2] = 0;
    return s;
}

static void check(const ecase *c) {
    size_t len = c->len ? c->len : strlen(c->text);
    cJSON *got = llm_json_extract(c->text, len);
    if (!c->want) {
        if (got) {
            char *p = cJSON_PrintUnformatted(got);
            print_error("case \"%s\": expected nothing, got %s\n", c->name, p);
            free(p);
            cJSON_Delete(got);
            fail();
        }
        return;
    }
    cJSON *want = cJSON_Parse(c->want);
    if (!want) fail_msg("case \"%s\": bad expectation", c->name);
    if (!got || !cJSON_Compare(got, want, 1)) {
        char *p = got ? cJSON_PrintUnformatted(got) : NULL;
        print_error("case \"%s\": expected %s, got %s\n", c->name, c->want, p ? p : "nothing");
        free(p);
        cJSON_Delete(got);
        cJSON_Delete(want);
        fail();
    }
    cJSON_Delete(got);
    cJSON_Delete(want);
}

static void test_extract_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) check(&CASES[i]);
    assert_null(llm_json_extract(NULL, 10));
}

static void test_extract_depth(void **state) {
    (void)state;
    /* 64 levels are read, 65 refused (objects and arrays alike), without picking an inner value */
    char *ok = nest(64, '[', ']');
    cJSON *v = llm_json_extract(ok, strlen(ok));
    assert_non_null(v);
    cJSON_Delete(v);
    free(ok);
    char *deep = nest(65, '[', ']');
    assert_null(llm_json_extract(deep, strlen(deep)));
    free(deep);
    deep = nest(5000, '[', ']');
    assert_null(llm_json_extract(deep, strlen(deep)));
    free(deep);

    size_t n = 70;
    char *obj = malloc(n * 6 + 8);
    assert_non_null(obj);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) o += (size_t)sprintf(obj + o, "{\"a\":");
    o += (size_t)sprintf(obj + o, "1");
    for (size_t i = 0; i < n; i++) obj[o++] = '}';
    obj[o] = 0;
    assert_null(llm_json_extract(obj, o));
    /* the same at 64 levels is fine */
    size_t skip = (n - 64) * 5;
    v = llm_json_extract(obj + skip, o - skip - (n - 64));
    assert_non_null(v);
    cJSON_Delete(v);
    free(obj);
}

static void test_extract_long_prose(void **state) {
    (void)state;
    /* many stray openers before the answer: found, and quickly (no quadratic blow-up to fear here) */
    size_t n = 200000;
    char *t = malloc(n + 32);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) t[i] = "{x [y "[i % 6];
    strcpy(t + n, "{\"found\": 1}");
    cJSON *v = llm_json_extract(t, strlen(t));
    assert_non_null(v);
    assert_non_null(cJSON_GetObjectItem(v, "found"));
    cJSON_Delete(v);
    free(t);
}

static void test_str(void **state) {
    (void)state;
    cJSON *o = cJSON_Parse("{\"s\": \"  hi there \\n\", \"blank\": \" \\t\\n \", \"empty\": \"\", \"num\": 5,"
                           "\"nul\": null, \"Content\": \"cased\", \"arr\": [\"x\"], \"e\": \"h\xc3\xa9llo\","
                           "\"emoji\": \"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\", \"sp\": \"ab cd\"}");
    assert_non_null(o);
    char buf[64];
    assert_string_equal(llm_json_str(o, "s", buf, sizeof buf), "hi there");
    assert_null(llm_json_str(o, "blank", buf, sizeof buf));
    assert_null(llm_json_str(o, "empty", buf, sizeof buf));
    assert_null(llm_json_str(o, "num", buf, sizeof buf)); /* numbers are not strings */
    assert_null(llm_json_str(o, "nul", buf, sizeof buf));
    assert_null(llm_json_str(o, "arr", buf, sizeof buf));
    assert_null(llm_json_str(o, "absent", buf, sizeof buf));
    assert_string_equal(llm_json_str(o, "content", buf, sizeof buf), "cased"); /* any case */
    assert_null(llm_json_str(NULL, "s", buf, sizeof buf));
    assert_null(llm_json_str(cJSON_GetObjectItem(o, "arr"), "s", buf, sizeof buf)); /* not an object */
    /* cut to fit, never inside a UTF-8 character */
    char small[8];
    assert_string_equal(llm_json_str(o, "e", small, 3), "h");       /* "h\xc3" would split é */
    assert_string_equal(llm_json_str(o, "e", small, 4), "h\xc3\xa9");
    assert_string_equal(llm_json_str(o, "emoji", small, 8), "\xf0\x9f\x98\x80");
    assert_null(llm_json_str(o, "emoji", small, 4)); /* not even one character fits */
    assert_string_equal(llm_json_str(o, "sp", small, 4), "ab"); /* cut, then trimmed again */
    assert_null(llm_json_str(o, "s", small, 1));
    assert_null(llm_json_str(o, "s", small, 0));
    cJSON_Delete(o);
}

typedef struct ncase {
    const char *json; /* the value of "v" */
    int pct_ok;
    int rc;
    double want;
} ncase;

static const ncase NUMS[] = {
    {"0.9", 0, 0, 0.9},        {"\"0.9\"", 0, 0, 0.9},     {"\" 0.9 \"", 0, 0, 0.9},    {"\"90%\"", 1, 0, 0.9},
    {"\" 90 % \"", 1, 0, 0.9}, {"\"90%\"", 0, -1, 0},      {"\"5%\"", 1, 0, 0.05},      {"90", 1, 0, 90},
    {"\"+5\"", 0, 0, 5},       {"\"-2.5e1\"", 0, 0, -25},  {"\".5\"", 0, 0, 0.5},       {"\"3.\"", 0, 0, 3},
    {"\"NaN\"", 0, -1, 0},     {"\"nan\"", 1, -1, 0},      {"\"inf\"", 0, -1, 0},       {"\"-Infinity\"", 0, -1, 0},
    {"\"1e999\"", 0, -1, 0},   {"1e999", 0, -1, 0},        {"-1e999", 0, -1, 0},        {"\"0x10\"", 0, -1, 0},
    {"\"12abc\"", 0, -1, 0},   {"\"\"", 0, -1, 0},         {"\"   \"", 0, -1, 0},        {"\"%\"", 1, -1, 0},
    {"\"e5\"", 0, -1, 0},      {"\"1e\"", 0, -1, 0},       {"\"1.2.3\"", 0, -1, 0},     {"\"high\"", 0, -1, 0},
    {"true", 0, -1, 0},        {"null", 0, -1, 0},         {"[1]", 0, -1, 0},           {"{\"x\": 1}", 0, -1, 0},
    {"\"90%%\"", 1, -1, 0},    {"\"1 000\"", 0, -1, 0},
};

static void test_num(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof NUMS / sizeof NUMS[0]; i++) {
        char doc[128];
        snprintf(doc, sizeof doc, "{\"v\": %s}", NUMS[i].json);
        cJSON *o = cJSON_Parse(doc);
        if (!o) fail_msg("bad case %s", doc);
        double d = -12345;
        int rc = llm_json_num(o, "v", NUMS[i].pct_ok, &d);
        if (rc != NUMS[i].rc || (rc == 0 && fabs(d - NUMS[i].want) > 1e-12))
            fail_msg("%s (pct_ok %d): rc %d value %g, expected rc %d value %g", NUMS[i].json, NUMS[i].pct_ok, rc, d,
                     NUMS[i].rc, NUMS[i].want);
        if (rc) assert_true(d == -12345); /* untouched on failure */
        cJSON_Delete(o);
    }
    double d;
    assert_int_equal(llm_json_num(NULL, "v", 1, &d), -1);
    cJSON *o = cJSON_Parse("{\"Confidence\": \"80%\"}");
    assert_int_equal(llm_json_num(o, "confidence", 1, &d), 0);
    assert_true(fabs(d - 0.8) < 1e-12);
    assert_int_equal(llm_json_num(o, "absent", 1, &d), -1);
    cJSON_Delete(o);
}

static void test_arr_and_any(void **state) {
    (void)state;
    cJSON *o = cJSON_Parse("{\"facts\": null, \"memories\": [1, 2], \"one\": \"x\", \"n\": 3, \"obj\": {}}");
    assert_non_null(o);
    const cJSON *a = llm_json_arr(o, "memories");
    assert_non_null(a);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    assert_null(llm_json_arr(o, "one")); /* a lone string is not wrapped */
    assert_null(llm_json_arr(o, "n"));
    assert_null(llm_json_arr(o, "obj"));
    assert_null(llm_json_arr(o, "facts"));
    assert_null(llm_json_arr(o, "absent"));
    assert_null(llm_json_arr(NULL, "memories"));

    static const char *const K1[] = {"facts", "memories", NULL};
    assert_ptr_equal(llm_json_any(o, K1), a); /* "facts" is null: the next name */
    static const char *const K2[] = {"items", "one", "memories", NULL};
    assert_string_equal(llm_json_any(o, K2)->valuestring, "x");
    static const char *const K3[] = {"items", "results", NULL};
    assert_null(llm_json_any(o, K3));
    static const char *const K4[] = {NULL};
    assert_null(llm_json_any(o, K4));
    assert_null(llm_json_any(o, NULL));
    assert_null(llm_json_any(NULL, K1));
    cJSON_Delete(o);
}

/* The whole path a memory layer takes: extract from a realistic answer, then read fields leniently. */
static void test_realistic_answer(void **state) {
    (void)state;
    const char *answer = "Here are the facts I found:\n\n```json\n{\n  \"Facts\": [\n    {\"content\": \"  Lives in "
                         "Berlin (since {2021}) \", \"confidence\": \"85%\", \"type\": \"personal\"},\n    "
                         "{\"content\": \"\", \"confidence\": 0.4},\n    {\"content\": \"Likes \\\"flat white\\\"\","
                         " \"confidence\": \"NaN\"}\n  ]\n}\n```\n\nI hope this helps!";
    cJSON *root = llm_json_extract(answer, strlen(answer));
    assert_non_null(root);
    static const char *const KEYS[] = {"facts", "memories", NULL};
    const cJSON *facts = llm_json_any(root, KEYS);
    assert_true(cJSON_IsArray(facts));
    assert_int_equal(cJSON_GetArraySize(facts), 3);
    char buf[128];
    double conf;
    const cJSON *f0 = cJSON_GetArrayItem(facts, 0), *f1 = cJSON_GetArrayItem(facts, 1), *f2 = cJSON_GetArrayItem(facts, 2);
    assert_string_equal(llm_json_str(f0, "content", buf, sizeof buf), "Lives in Berlin (since {2021})");
    assert_int_equal(llm_json_num(f0, "confidence", 1, &conf), 0);
    assert_true(fabs(conf - 0.85) < 1e-12);
    assert_null(llm_json_str(f1, "content", buf, sizeof buf));
    assert_string_equal(llm_json_str(f2, "content", buf, sizeof buf), "Likes \"flat white\"");
    assert_int_equal(llm_json_num(f2, "confidence", 1, &conf), -1);
    cJSON_Delete(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_table), cmocka_unit_test(test_extract_depth),
        cmocka_unit_test(test_extract_long_prose), cmocka_unit_test(test_str),
        cmocka_unit_test(test_num), cmocka_unit_test(test_arr_and_any),
        cmocka_unit_test(test_realistic_answer),
    };
    return cmocka_run_group_tests_name("llm_json", tests, NULL, NULL);
}
