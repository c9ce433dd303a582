/* validate (src/http/validate.h): body parsing (not JSON, not an object, trailing garbage, raw control
 * bytes, \u0000 and unpaired surrogate escapes), the field getters and their FastAPI-style problems, and
 * the exact 422 answer of v_respond. */
#include <cjson/cJSON.h>

#include "testutil.h"

#include "http/envelope.h"
#include "http/validate.h"

static const char *no_lookup(const http_request *r, const char *key)
{
    (void)r;
    (void)key;
    return NULL;
}

/* One request with its arena and validation context. */
typedef struct fx {
    arena a;
    http_request req;
    vctx v;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    arena_init(&f->a);
    f->req.method = "POST";
    f->req.path = "/test";
    f->req.a = &f->a;
    f->req.get_query = no_lookup;
    f->req.get_header = no_lookup;
    v_init(&f->v, &f->a);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    v_free(&f->v);
    arena_free(&f->a);
    free(f);
    return 0;
}

static cJSON *parse_n(fx *f, const char *body, size_t n)
{
    v_free(&f->v);
    v_init(&f->v, &f->a);
    f->req.body = body;
    f->req.body_len = n;
    return v_parse_body(&f->v, &f->req);
}

static cJSON *parse(fx *f, const char *body) { return parse_n(f, body, strlen(body)); }

static void assert_one_issue(const vctx *v, const char *path, const char *type)
{
    if (v->n != 1)
        fail_msg("want exactly one problem (%s at '%s'), got %d", type, path, v->n);
    assert_string_equal(v->issues[0].path, path);
    assert_string_equal(v->issues[0].type, type);
}

static char *respond(fx *f)
{
    http_response res;
    memset(&res, 0, sizeof res);
    v_respond(&f->v, &res);
    assert_int_equal(res.status, 422);
    return tu_jw_take(&res.body);
}

/* --- v_parse_body -------------------------------------------------------------------------------------- */

static void test_parse_ok(void **state)
{
    fx *f = *state;
    cJSON *o = parse(f, " {\"name\": \"x\", \"n\": 1}\r\n\t ");
    assert_non_null(o);
    assert_true(v_ok(&f->v));
    assert_true(cJSON_IsObject(o));
    assert_ptr_equal(o, f->v.root);
    /* whitespace outside strings, tabs included, is fine */
    assert_non_null(parse(f, "{\t\"a\":\t1\n}"));
    assert_non_null(parse(f, "{}"));
}

static void test_parse_rejects(void **state)
{
    fx *f = *state;
    assert_null(parse(f, ""));
    assert_one_issue(&f->v, "", "missing");

    static const char *const invalid[] = {
        "not json", "{", "{\"a\":}", "{\"a\":1,}", "{} x", "{}{}", "{\"a\":1} 2", "{'a':1}", "nul",
        "{\"a\":\"x\x01y\"}",   /* raw control byte inside a string */
        "{\"a\":\"tab\there\"}", /* a raw tab inside a string is a control byte too */
        "{\"a\":\"line\nbreak\"}",
    };
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        if (parse(f, invalid[i]))
            fail_msg("accepted invalid body %zu: %s", i, invalid[i]);
        assert_one_issue(&f->v, "", "json_invalid");
        assert_null(f->v.root);
    }
    /* NUL bytes in the body, inside or outside a string */
    assert_null(parse_n(f, "{\"a\":\"x\0y\"}", 11));
    assert_one_issue(&f->v, "", "json_invalid");
    assert_null(parse_n(f, "{}\0", 3));
    assert_one_issue(&f->v, "", "json_invalid");

    static const char *const not_object[] = {"[1,2]", "[]", "\"str\"", "42", "null", "true"};
    for (size_t i = 0; i < sizeof not_object / sizeof not_object[0]; i++) {
        if (parse(f, not_object[i]))
            fail_msg("accepted non-object body %s", not_object[i]);
        assert_one_issue(&f->v, "", "model_attributes_type");
    }
}

static void test_parse_does_not_touch_body(void **state)
{
    fx *f = *state;
    const char body[] = "{\"a\":\"x\\u0000y\",\"b\":\"\\ud800\"}";
    char copy[sizeof body];
    memcpy(copy, body, sizeof body);
    assert_non_null(parse(f, copy));
    assert_memory_equal(copy, body, sizeof body);
}

static void test_nul_escape_names_field(void **state)
{
    fx *f = *state;
    cJSON *o = parse(f, "{\"name\":\"a\\u0000b\",\"ok\":\"fine\"}");
    assert_non_null(o); /* the body parses; the field is the problem */
    assert_null(v_string(&f->v, o, NULL, "name", V_REQUIRED, 0));
    assert_string_equal(v_string(&f->v, o, NULL, "ok", V_REQUIRED, 0), "fine");
    assert_one_issue(&f->v, "name", "string_unicode");
    assert_string_equal(f->v.issues[0].msg, "Input should be a valid UTF-8 string without NUL characters");
}

static void test_surrogate_escapes(void **state)
{
    fx *f = *state;
    static const char *const bad[] = {
        "{\"s\":\"\\ud800\"}", "{\"s\":\"\\udc00\"}", "{\"s\":\"\\ud800x\"}", "{\"s\":\"x\\uDBFF\"}",
        "{\"s\":\"\\ud800\\ud800\"}", /* high followed by high */
        "{\"s\":\"\\ude00\\ud83d\"}", /* a pair in the wrong order */
        "{\"s\":\"\\ud83d\\u0041\"}", /* high followed by a non-surrogate escape */
        "{\"s\":\"\\ud83d\"}",        /* at the very end of a string */
        "{\"s\":\"\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *o = parse(f, bad[i]);
        if (!o)
            fail_msg("body %s refused as a whole; the field should be named", bad[i]);
        if (v_string(&f->v, o, NULL, "s", V_REQUIRED, 0))
            fail_msg("body %s: invalid string accepted", bad[i]);
        assert_one_issue(&f->v, "s", "string_unicode");
    }

    /* a valid pair is decoded to the 4-byte UTF-8 sequence */
    cJSON *o = parse(f, "{\"s\":\"a\\ud83d\\ude00b\",\"t\":\"\\uD83D\\uDE00\"}");
    assert_non_null(o);
    assert_string_equal(v_string(&f->v, o, NULL, "s", V_REQUIRED, 0), "a\xF0\x9F\x98\x80" "b");
    assert_string_equal(v_string(&f->v, o, NULL, "t", V_REQUIRED, 0), "\xF0\x9F\x98\x80");
    assert_true(v_ok(&f->v));
    /* the edges of both surrogate ranges: U+10000 and U+10FFFF */
    o = parse(f, "{\"lo\":\"\\ud800\\udc00\",\"hi\":\"\\udbff\\udfff\"}");
    assert_non_null(o);
    assert_string_equal(v_string(&f->v, o, NULL, "lo", V_REQUIRED, 0), "\xF0\x90\x80\x80");
    assert_string_equal(v_string(&f->v, o, NULL, "hi", V_REQUIRED, 0), "\xF4\x8F\xBF\xBF");
    assert_true(v_ok(&f->v));
    /* just outside them: \ud7ff is a character, \ue000 after a high surrogate is not its pair */
    o = parse(f, "{\"a\":\"\\ud7ff\",\"b\":\"\\udbff\\ue000\"}");
    assert_non_null(o);
    assert_string_equal(v_string(&f->v, o, NULL, "a", V_REQUIRED, 0), "\xED\x9F\xBF");
    assert_null(v_string(&f->v, o, NULL, "b", V_REQUIRED, 0));
    assert_one_issue(&f->v, "b", "string_unicode");
    f->v.n = 0;

    /* other escapes still decode */
    o = parse(f, "{\"s\":\"\\u00e9\\n\\\"\\\\\\/\\u20ac\"}");
    assert_non_null(o);
    assert_string_equal(v_string(&f->v, o, NULL, "s", 0, 0), "\xC3\xA9\n\"\\/\xE2\x82\xAC");

    /* an escaped backslash before "u0000" is text, not an escape */
    o = parse(f, "{\"s\":\"\\\\u0000\",\"t\":\"\\\\ud800\"}");
    assert_non_null(o);
    assert_string_equal(v_string(&f->v, o, NULL, "s", V_REQUIRED, 0), "\\u0000");
    assert_string_equal(v_string(&f->v, o, NULL, "t", V_REQUIRED, 0), "\\ud800");
    assert_true(v_ok(&f->v));

    /* only the field holding the bad escape is named, in a nested object too */
    o = parse(f, "{\"good\":\"\\ud83d\\ude00\",\"msgs\":[{\"content\":\"x\\udc00\"}]}");
    assert_non_null(o);
    assert_non_null(v_string(&f->v, o, NULL, "good", V_REQUIRED, 0));
    const cJSON *arr = v_array(&f->v, o, NULL, "msgs", V_REQUIRED, 10);
    assert_non_null(arr);
    const char *p0 = v_path_index(&f->v, "msgs", 0);
    assert_null(v_string(&f->v, cJSON_GetArrayItem(arr, 0), p0, "content", V_REQUIRED, 0));
    assert_one_issue(&f->v, "msgs.0.content", "string_unicode");

    /* raw invalid UTF-8 bytes in a string are named the same way */
    o = parse(f, "{\"s\":\"\xC0\xAF\"}");
    assert_non_null(o);
    assert_null(v_string(&f->v, o, NULL, "s", V_REQUIRED, 0));
    assert_one_issue(&f->v, "s", "string_unicode");
}

/* --- getters ------------------------------------------------------------------------------------------- */

static void test_v_string(void **state)
{
    fx *f = *state;
    cJSON *o = parse(f, "{\"empty\":\"\",\"five\":\"abcde\",\"e\":\"\xC3\xA9\xC3\xA9\xC3\xA9\",\"num\":3,"
                        "\"nul\":null,\"arr\":[],\"obj\":{}}");
    assert_non_null(o);
    /* absent and null are the same: NULL, a problem only when required */
    assert_null(v_string(&f->v, o, NULL, "missing", 0, 0));
    assert_null(v_string(&f->v, o, NULL, "nul", 0, 0));
    assert_true(v_ok(&f->v));
    assert_null(v_string(&f->v, o, NULL, "nul", V_REQUIRED, 0));
    assert_one_issue(&f->v, "nul", "missing");
    assert_string_equal(f->v.issues[0].msg, "Field required");

    f->v.n = 0; /* clear the problems, keep the tree */
    assert_string_equal(v_string(&f->v, o, NULL, "empty", 0, 0), "");
    assert_true(v_ok(&f->v));
    assert_null(v_string(&f->v, o, NULL, "empty", V_NONEMPTY, 0));
    assert_one_issue(&f->v, "empty", "string_too_short");
    assert_string_equal(f->v.issues[0].msg, "String should have at least 1 character");

    f->v.n = 0;
    assert_string_equal(v_string(&f->v, o, NULL, "five", V_REQUIRED | V_NONEMPTY, 5), "abcde");
    assert_true(v_ok(&f->v));
    assert_null(v_string(&f->v, o, NULL, "five", 0, 4));
    assert_one_issue(&f->v, "five", "string_too_long");
    assert_string_equal(f->v.issues[0].msg, "String should have at most 4 bytes");

    /* the limit is in bytes, not characters */
    f->v.n = 0;
    assert_non_null(v_string(&f->v, o, NULL, "e", 0, 6));
    assert_null(v_string(&f->v, o, NULL, "e", 0, 5));
    assert_one_issue(&f->v, "e", "string_too_long");

    static const char *const wrong[] = {"num", "arr", "obj"};
    for (size_t i = 0; i < 3; i++) {
        f->v.n = 0;
        assert_null(v_string(&f->v, o, NULL, wrong[i], V_REQUIRED, 0));
        assert_one_issue(&f->v, wrong[i], "string_type");
        assert_string_equal(f->v.issues[0].msg, "Input should be a valid string");
    }

    /* parent paths */
    f->v.n = 0;
    assert_null(v_string(&f->v, o, "outer.2", "missing", V_REQUIRED, 0));
    assert_one_issue(&f->v, "outer.2.missing", "missing");
}

static void test_v_int(void **state)
{
    fx *f = *state;
    cJSON *o = parse(f, "{\"i\":5,\"neg\":-12,\"f\":7.0,\"s\":\"42\",\"sp\":\" 8 \",\"sneg\":\"-3\",\"abc\":\"abc\","
                        "\"half\":\"1.5\",\"es\":\"\",\"t\":true,\"frac\":1.5,\"big\":1e16,\"sbig\":\"99999999999999999999\","
                        "\"nul\":null,\"arr\":[1]}");
    assert_non_null(o);
    int64_t out = -99;
    assert_int_equal(v_int(&f->v, o, NULL, "i", 0, &out), 1);
    assert_int_equal(out, 5);
    assert_int_equal(v_int(&f->v, o, NULL, "neg", 0, &out), 1);
    assert_int_equal(out, -12);
    assert_int_equal(v_int(&f->v, o, NULL, "f", 0, &out), 1); /* an integral float */
    assert_int_equal(out, 7);
    assert_int_equal(v_int(&f->v, o, NULL, "s", 0, &out), 1); /* a numeric string */
    assert_int_equal(out, 42);
    assert_int_equal(v_int(&f->v, o, NULL, "sp", 0, &out), 1);
    assert_int_equal(out, 8);
    assert_int_equal(v_int(&f->v, o, NULL, "sneg", 0, &out), 1);
    assert_int_equal(out, -3);
    assert_true(v_ok(&f->v));

    out = 1234;
    assert_int_equal(v_int(&f->v, o, NULL, "absent", 0, &out), 0);
    assert_int_equal(v_int(&f->v, o, NULL, "nul", 0, &out), 0);
    assert_int_equal(out, 1234); /* untouched */
    assert_true(v_ok(&f->v));
    assert_int_equal(v_int(&f->v, o, NULL, "absent", V_REQUIRED, &out), -1);
    assert_one_issue(&f->v, "absent", "missing");

    struct {
        const char *key, *type, *msg;
    } bad[] = {
        {"abc", "int_parsing", "Input should be a valid integer, unable to parse string as an integer"},
        {"half", "int_parsing", "Input should be a valid integer, unable to parse string as an integer"},
        {"es", "int_parsing", "Input should be a valid integer, unable to parse string as an integer"},
        {"t", "int_type", "Input should be a valid integer"},
        {"arr", "int_type", "Input should be a valid integer"},
        {"frac", "int_from_float", "Input should be a valid integer, got a number with a fractional part"},
        {"big", "int_parsing_size", "Unable to parse input string as an integer, exceeded maximum size"},
        {"sbig", "int_parsing_size", "Unable to parse input string as an integer, exceeded maximum size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f->v.n = 0;
        out = 1234;
        if (v_int(&f->v, o, NULL, bad[i].key, 0, &out) != -1)
            fail_msg("v_int accepted '%s'", bad[i].key);
        assert_int_equal(out, 1234);
        assert_one_issue(&f->v, bad[i].key, bad[i].type);
        assert_string_equal(f->v.issues[0].msg, bad[i].msg);
    }
}

static void test_v_bool(void **state)
{
    fx *f = *state;
    cJSON *o = parse(f, "{\"t\":true,\"f\":false,\"one\":1,\"zero\":0,\"yes\":\"YES\",\"off\":\"off\",\"two\":2,"
                        "\"maybe\":\"maybe\",\"arr\":[],\"nul\":null}");
    assert_non_null(o);
    int b = -5;
    assert_int_equal(v_bool(&f->v, o, NULL, "t", &b), 1);
    assert_int_equal(b, 1);
    assert_int_equal(v_bool(&f->v, o, NULL, "f", &b), 1);
    assert_int_equal(b, 0);
    assert_int_equal(v_bool(&f->v, o, NULL, "one", &b), 1);
    assert_int_equal(b, 1);
    assert_int_equal(v_bool(&f->v, o, NULL, "zero", &b), 1);
    assert_int_equal(b, 0);
    assert_int_equal(v_bool(&f->v, o, NULL, "yes", &b), 1);
    assert_int_equal(b, 1);
    assert_int_equal(v_bool(&f->v, o, NULL, "off", &b), 1);
    assert_int_equal(b, 0);
    b = -5;
    assert_int_equal(v_bool(&f->v, o, NULL, "absent", &b), 0);
    assert_int_equal(v_bool(&f->v, o, NULL, "nul", &b), 0);
    assert_int_equal(b, -5);
    assert_true(v_ok(&f->v));
    static const char *const bad[] = {"two", "maybe", "arr"};
    for (size_t i = 0; i < 3; i++) {
        f->v.n = 0;
        assert_int_equal(v_bool(&f->v, o, "p", bad[i], &b), -1);
        assert_int_equal(b, -5);
        char path[32];
        snprintf(path, sizeof path, "p.%s", bad[i]);
        assert_one_issue(&f->v, path, "bool_type");
        assert_string_equal(f->v.issues[0].msg, "Input should be a valid boolean");
    }
}

static void test_v_enum(void **state)
{
    fx *f = *state;
    static const char *const roles[] = {"user", "assistant", "system", NULL};
    static const char *const two[] = {"asc", "desc", NULL};
    static const char *const one[] = {"only", NULL};
    cJSON *o = parse(f, "{\"r\":\"assistant\",\"bad\":\"bot\",\"num\":1,\"case\":\"User\"}");
    assert_non_null(o);
    const char *r = v_enum(&f->v, o, NULL, "r", V_REQUIRED, roles);
    assert_ptr_equal(r, roles[1]); /* the table's own string */
    assert_null(v_enum(&f->v, o, NULL, "absent", 0, roles));
    assert_true(v_ok(&f->v));

    assert_null(v_enum(&f->v, o, NULL, "bad", V_REQUIRED, roles));
    assert_one_issue(&f->v, "bad", "literal_error");
    assert_string_equal(f->v.issues[0].msg, "Input should be 'user', 'assistant' or 'system'");

    f->v.n = 0;
    assert_null(v_enum(&f->v, o, NULL, "num", 0, two));
    assert_one_issue(&f->v, "num", "literal_error");
    assert_string_equal(f->v.issues[0].msg, "Input should be 'asc' or 'desc'");

    f->v.n = 0;
    assert_null(v_enum(&f->v, o, NULL, "case", 0, one)); /* case-sensitive */
    assert_string_equal(f->v.issues[0].msg, "Input should be 'only'");

    f->v.n = 0;
    assert_null(v_enum(&f->v, o, NULL, "absent", V_REQUIRED, roles));
    assert_one_issue(&f->v, "absent", "missing");
}

static void test_v_array(void **state)
{
    fx *f = *state;
    cJSON *o = parse(f, "{\"a\":[1,2,3],\"e\":[],\"s\":\"x\",\"o\":{}}");
    assert_non_null(o);
    const cJSON *a = v_array(&f->v, o, NULL, "a", V_REQUIRED, 3);
    assert_non_null(a);
    assert_int_equal(cJSON_GetArraySize(a), 3);
    assert_non_null(v_array(&f->v, o, NULL, "a", 0, 0)); /* 0: no bound */
    assert_non_null(v_array(&f->v, o, NULL, "e", V_REQUIRED, 3));
    assert_null(v_array(&f->v, o, NULL, "absent", 0, 3));
    assert_true(v_ok(&f->v));

    assert_null(v_array(&f->v, o, NULL, "a", 0, 2));
    assert_one_issue(&f->v, "a", "too_long");
    assert_string_equal(f->v.issues[0].msg, "List should have at most 2 items after validation, not 3");

    f->v.n = 0;
    assert_null(v_array(&f->v, o, NULL, "s", 0, 2));
    assert_one_issue(&f->v, "s", "list_type");
    assert_string_equal(f->v.issues[0].msg, "Input should be a valid list");
    f->v.n = 0;
    assert_null(v_array(&f->v, o, NULL, "o", 0, 2));
    assert_one_issue(&f->v, "o", "list_type");
    f->v.n = 0;
    assert_null(v_array(&f->v, o, NULL, "absent", V_REQUIRED, 2));
    assert_one_issue(&f->v, "absent", "missing");
}

static void test_v_string_array(void **state)
{
    fx *f = *state;
    cJSON *o = parse(f, "{\"ids\":[\"a\",\"b\",\"\xC3\xA9\"],\"empty\":[],\"mixed\":[\"a\",1,null],"
                        "\"blank\":[\"\",\"x\"],\"long\":[\"abc\",\"abcd\"],\"many\":[\"1\",\"2\",\"3\"],\"nul\":[\"\\u0000\"]}");
    assert_non_null(o);
    size_t n = 99;
    const char **ids = v_string_array(&f->v, o, NULL, "ids", V_REQUIRED, 10, 0, &n);
    assert_non_null(ids);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], "a");
    assert_string_equal(ids[1], "b");
    assert_string_equal(ids[2], "\xC3\xA9");

    n = 99;
    assert_non_null(v_string_array(&f->v, o, NULL, "empty", V_REQUIRED, 10, 0, &n));
    assert_int_equal(n, 0);
    n = 99;
    assert_null(v_string_array(&f->v, o, NULL, "absent", 0, 10, 0, &n));
    assert_int_equal(n, 0);
    assert_true(v_ok(&f->v));

    /* every bad element is named by its index */
    assert_null(v_string_array(&f->v, o, NULL, "mixed", 0, 10, 0, &n));
    assert_int_equal(n, 0);
    assert_int_equal(f->v.n, 2);
    assert_string_equal(f->v.issues[0].path, "mixed.1");
    assert_string_equal(f->v.issues[0].type, "string_type");
    assert_string_equal(f->v.issues[1].path, "mixed.2");
    assert_string_equal(f->v.issues[1].type, "missing");

    f->v.n = 0;
    assert_null(v_string_array(&f->v, o, NULL, "blank", V_NONEMPTY, 10, 0, &n));
    assert_one_issue(&f->v, "blank.0", "string_too_short");
    f->v.n = 0;
    assert_non_null(v_string_array(&f->v, o, NULL, "blank", 0, 10, 0, &n)); /* without V_NONEMPTY "" is fine */
    assert_int_equal(n, 2);

    f->v.n = 0;
    assert_null(v_string_array(&f->v, o, "body2", "long", 0, 10, 3, &n));
    assert_one_issue(&f->v, "body2.long.1", "string_too_long");

    f->v.n = 0;
    assert_null(v_string_array(&f->v, o, NULL, "many", 0, 2, 0, &n));
    assert_one_issue(&f->v, "many", "too_long");

    f->v.n = 0;
    assert_null(v_string_array(&f->v, o, NULL, "nul", 0, 2, 0, &n));
    assert_one_issue(&f->v, "nul.0", "string_unicode");
}

static void test_paths(void **state)
{
    fx *f = *state;
    assert_string_equal(v_path(&f->v, NULL, "a"), "a");
    assert_string_equal(v_path(&f->v, "", "a"), "a");
    assert_string_equal(v_path(&f->v, "messages.0", "content"), "messages.0.content");
    assert_string_equal(v_path_index(&f->v, "messages", 3), "messages.3");
    assert_string_equal(v_path_index(&f->v, NULL, 12), "12");
    assert_string_equal(v_path_index(&f->v, "", 0), "0");
}

/* --- v_respond ----------------------------------------------------------------------------------------- */

static void test_respond_exact_422(void **state)
{
    fx *f = *state;
    static const char *const roles[] = {"user", "assistant", "system", NULL};
    cJSON *o = parse(f, "{\"messages\":[{\"role\":\"user\"},{\"content\":\"x\",\"role\":\"bot\"}]}");
    assert_non_null(o);
    const cJSON *arr = v_array(&f->v, o, NULL, "messages", V_REQUIRED, 1000);
    assert_non_null(arr);
    size_t i = 0;
    for (const cJSON *it = arr->child; it; it = it->next, i++) {
        const char *p = v_path_index(&f->v, "messages", i);
        v_string(&f->v, it, p, "content", V_REQUIRED | V_NONEMPTY, 0);
        v_enum(&f->v, it, p, "role", V_REQUIRED, roles);
    }
    assert_int_equal(f->v.n, 2);
    tu_streq_free(respond(f),
                  "{\"status\":\"error\",\"code\":422,\"data\":null,\"message\":\"Request validation failed\","
                  "\"errors\":[{\"field\":\"messages.0.content\",\"message\":\"Field required\"},"
                  "{\"field\":\"messages.1.role\",\"message\":\"Input should be 'user', 'assistant' or 'system'\"}],"
                  "\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"messages\",0,\"content\"],\"msg\":\"Field required\"},"
                  "{\"type\":\"literal_error\",\"loc\":[\"body\",\"messages\",1,\"role\"],"
                  "\"msg\":\"Input should be 'user', 'assistant' or 'system'\"}]}");
}

static void test_respond_body_level(void **state)
{
    fx *f = *state;
    assert_null(parse(f, "{oops"));
    tu_streq_free(respond(f),
                  "{\"status\":\"error\",\"code\":422,\"data\":null,\"message\":\"Request validation failed\","
                  "\"errors\":[{\"field\":\"body\",\"message\":\"JSON decode error\"}],"
                  "\"detail\":[{\"type\":\"json_invalid\",\"loc\":[\"body\"],\"msg\":\"JSON decode error\"}]}");

    /* a missing top-level field; a key with digits is still a string unless it is all digits */
    cJSON *o = parse(f, "{}");
    assert_non_null(o);
    v_string(&f->v, o, NULL, "name", V_REQUIRED, 0);
    v_string(&f->v, o, "a1", "2b", V_REQUIRED, 0);
    tu_streq_free(respond(f),
                  "{\"status\":\"error\",\"code\":422,\"data\":null,\"message\":\"Request validation failed\","
                  "\"errors\":[{\"field\":\"name\",\"message\":\"Field required\"},"
                  "{\"field\":\"a1.2b\",\"message\":\"Field required\"}],"
                  "\"detail\":[{\"type\":\"missing\",\"loc\":[\"body\",\"name\"],\"msg\":\"Field required\"},"
                  "{\"type\":\"missing\",\"loc\":[\"body\",\"a1\",\"2b\"],\"msg\":\"Field required\"}]}");
}

static void test_respond_many_issues(void **state)
{
    fx *f = *state;
    for (int i = 0; i < V_MAX_ISSUES + 10; i++)
        v_add(&f->v, v_path_index(&f->v, "items", (size_t)i), "missing", "Field required");
    assert_int_equal(f->v.n, V_MAX_ISSUES);
    char *s = respond(f);
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "errors")), V_MAX_ISSUES);
    cJSON *detail = cJSON_GetObjectItem(j, "detail");
    assert_int_equal(cJSON_GetArraySize(detail), V_MAX_ISSUES);
    cJSON *loc = cJSON_GetObjectItem(cJSON_GetArrayItem(detail, 31), "loc");
    assert_true(cJSON_IsNumber(cJSON_GetArrayItem(loc, 2)));
    assert_int_equal(cJSON_GetArrayItem(loc, 2)->valueint, 31);
    cJSON_Delete(j);
    free(s);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_parse_ok),
        T(test_parse_rejects),
        T(test_parse_does_not_touch_body),
        T(test_nul_escape_names_field),
        T(test_surrogate_escapes),
        T(test_v_string),
        T(test_v_int),
        T(test_v_bool),
        T(test_v_enum),
        T(test_v_array),
        T(test_v_string_array),
        T(test_paths),
        T(test_respond_exact_422),
        T(test_respond_body_level),
        T(test_respond_many_issues),
    };
    return cmocka_run_group_tests_name("validate", tests, NULL, NULL);
}
