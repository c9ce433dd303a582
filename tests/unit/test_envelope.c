/* envelope (src/http/envelope.h): the exact bytes of the SPEC §0.1 success and error envelopes, in key
 * order, the {"detail"} bodies, and resetting a half-written response. */
#include <cjson/cJSON.h>

#include "testutil.h"

#include "http/envelope.h"

static char *body_of(http_response *res) { return tu_jw_take(&res->body); }

static void test_success_envelope(void **state)
{
    (void)state;
    http_response res;
    memset(&res, 0, sizeof res);
    jw *w = env_begin(&res, 201);
    assert_ptr_equal(w, &res.body);
    jw_obj(w);
    jw_kstr(w, "id", "u-1");
    jw_kint(w, "n", 2);
    jw_obj_end(w);
    env_end(&res, "User created successfully");
    assert_int_equal(res.status, 201);
    assert_false(res.no_body);
    tu_streq_free(body_of(&res), "{\"status\":\"success\",\"code\":201,\"data\":{\"id\":\"u-1\",\"n\":2},"
                                 "\"message\":\"User created successfully\",\"errors\":null}");

    memset(&res, 0, sizeof res);
    w = env_begin(&res, 200);
    jw_obj(w);
    jw_key(w, "items");
    jw_arr(w);
    jw_arr_end(w);
    jw_obj_end(w);
    env_end(&res, "say \"ok\"");
    assert_int_equal(res.status, 200);
    tu_streq_free(body_of(&res), "{\"status\":\"success\",\"code\":200,\"data\":{\"items\":[]},"
                                 "\"message\":\"say \\\"ok\\\"\",\"errors\":null}");
}

static void test_error_envelope(void **state)
{
    (void)state;
    http_response res;
    memset(&res, 0, sizeof res);
    env_error(&res, 404, "User not found", NULL, NULL);
    assert_int_equal(res.status, 404);
    tu_streq_free(body_of(&res), "{\"status\":\"error\",\"code\":404,\"data\":null,\"message\":\"User not found\","
                                 "\"errors\":[{\"field\":\"general\",\"message\":\"User not found\"}]}");

    memset(&res, 0, sizeof res);
    env_error(&res, 409, "Conflict", "name", "User with name 'x' already exists");
    assert_int_equal(res.status, 409);
    tu_streq_free(body_of(&res), "{\"status\":\"error\",\"code\":409,\"data\":null,\"message\":\"Conflict\","
                                 "\"errors\":[{\"field\":\"name\",\"message\":\"User with name 'x' already exists\"}]}");

    memset(&res, 0, sizeof res);
    env_errors_begin(&res, 400, "Bad request");
    env_errors_item(&res, "a", "first");
    env_errors_item(&res, "b", "second");
    env_errors_end(&res);
    assert_int_equal(res.status, 400);
    tu_streq_free(body_of(&res), "{\"status\":\"error\",\"code\":400,\"data\":null,\"message\":\"Bad request\","
                                 "\"errors\":[{\"field\":\"a\",\"message\":\"first\"},"
                                 "{\"field\":\"b\",\"message\":\"second\"}]}");
}

static void test_detail(void **state)
{
    (void)state;
    http_response res;
    memset(&res, 0, sizeof res);
    env_detail(&res, 405, "Method Not Allowed");
    assert_int_equal(res.status, 405);
    tu_streq_free(body_of(&res), "{\"detail\":\"Method Not Allowed\"}");
    memset(&res, 0, sizeof res);
    env_detail(&res, 404, "Not Found");
    assert_int_equal(res.status, 404);
    tu_streq_free(body_of(&res), "{\"detail\":\"Not Found\"}");
}

static void test_reset_after_partial_write(void **state)
{
    (void)state;
    http_response res;
    memset(&res, 0, sizeof res);
    /* a handler starts a success answer, then fails half-way */
    jw *w = env_begin(&res, 200);
    jw_obj(w);
    jw_kstr(w, "half", "written");
    jw_key(w, "list");
    jw_arr(w);
    jw_int(w, 1);
    res.no_body = 1;
    env_error(&res, 500, "Failed to update user", NULL, NULL);
    assert_int_equal(res.status, 500);
    assert_false(res.no_body);
    char *s = body_of(&res);
    assert_string_equal(s, "{\"status\":\"error\",\"code\":500,\"data\":null,\"message\":\"Failed to update user\","
                           "\"errors\":[{\"field\":\"general\",\"message\":\"Failed to update user\"}]}");
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    cJSON_Delete(j);
    free(s);

    /* env_reset alone empties the body and the writer state (no stray comma or depth) */
    w = env_begin(&res, 200);
    jw_obj(w);
    env_reset(&res);
    assert_int_equal(res.body.len, 0);
    assert_int_equal(res.body.depth, 0);
    w = env_begin(&res, 200);
    jw_null(w);
    env_end(&res, "ok");
    tu_streq_free(body_of(&res), "{\"status\":\"success\",\"code\":200,\"data\":null,\"message\":\"ok\",\"errors\":null}");
}

static void test_key_order(void **state)
{
    (void)state;
    /* the five keys, in the order of SPEC §0.1, for both shapes */
    static const char *const keys[] = {"status", "code", "data", "message", "errors"};
    http_response res;
    for (int shape = 0; shape < 2; shape++) {
        memset(&res, 0, sizeof res);
        if (shape == 0) {
            jw *w = env_begin(&res, 200);
            jw_obj(w);
            jw_obj_end(w);
            env_end(&res, "m");
        } else {
            env_error(&res, 503, "Service unavailable", NULL, NULL);
        }
        char *s = body_of(&res);
        cJSON *j = cJSON_Parse(s);
        assert_non_null(j);
        int i = 0;
        for (cJSON *c = j->child; c; c = c->next, i++) {
            assert_true(i < 5);
            assert_string_equal(c->string, keys[i]);
        }
        assert_int_equal(i, 5);
        assert_int_equal(cJSON_GetObjectItem(j, "code")->valueint, res.status);
        cJSON_Delete(j);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_envelope),
        cmocka_unit_test(test_error_envelope),
        cmocka_unit_test(test_detail),
        cmocka_unit_test(test_reset_after_partial_write),
        cmocka_unit_test(test_key_order),
    };
    return cmocka_run_group_tests_name("envelope", tests, NULL, NULL);
}
