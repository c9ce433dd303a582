/* router (src/http/router.h): literal and {} routes, params, the trailing slash, empty segments,
 * 404 versus 405 with the Allow list, HEAD as GET, and the segment limit. */
#include "testutil.h"

#include "http/router.h"

static void h_health(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_users_list(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_users_create(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_user_get(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_user_put(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_user_del(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_knowledge(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_message(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_query(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_root(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_deep(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_four(http_request *q, http_response *r) { (void)q; (void)r; }
static void h_five(http_request *q, http_response *r) { (void)q; (void)r; }

static const route TABLE[] = {
    {"GET", "/", h_root, 0},
    {"GET", "/api/v1/health", h_health, 1},
    {"GET", "/api/v1/users", h_users_list, 0},
    {"POST", "/api/v1/users", h_users_create, 0},
    {"GET", "/api/v1/users/{}", h_user_get, 0},
    {"PUT", "/api/v1/users/{}", h_user_put, 0},
    {"DELETE", "/api/v1/users/{}", h_user_del, 0},
    {"GET", "/api/v1/users/{}/knowledge", h_knowledge, 0},
    {"GET", "/api/v1/sessions/{}/messages/{}", h_message, 0},
    {"POST", "/api/v1/users/{}/query", h_query, 0},
    /* 16 segments: the most a path may have */
    {"GET", "/s1/s2/s3/s4/s5/s6/s7/s8/s9/s10/s11/s12/s13/s14/s15/{}", h_deep, 0},
    {"GET", "/p/{}/{}/{}/{}", h_four, 0},
    {"GET", "/q/{}/{}/{}/{}/{}", h_five, 0}, /* more params than HTTP_MAX_PARAMS: never matches */
};
#define NROUTES ((int)(sizeof TABLE / sizeof TABLE[0]))

typedef struct match_out {
    route_result rr;
    const route *r;
    http_request req;
    char scratch[512];
    char allow[128];
} match_out;

static route_result do_match(match_out *m, const char *method, const char *path)
{
    memset(m, 0, sizeof *m);
    m->r = NULL;
    m->rr = router_match(TABLE, NROUTES, method, path, m->scratch, sizeof m->scratch, &m->req, &m->r, m->allow,
                         sizeof m->allow);
    return m->rr;
}

static void test_literal_routes(void **state)
{
    (void)state;
    match_out m;
    assert_int_equal(do_match(&m, "GET", "/api/v1/health"), ROUTE_FOUND);
    assert_ptr_equal(m.r, &TABLE[1]);
    assert_ptr_equal(m.r->handler, h_health);
    assert_int_equal(m.r->flags, 1);
    assert_int_equal(m.req.n_params, 0);

    assert_int_equal(do_match(&m, "GET", "/api/v1/users"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_users_list);
    assert_int_equal(do_match(&m, "POST", "/api/v1/users"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_users_create);

    assert_int_equal(do_match(&m, "GET", "/"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_root);

    /* segments compare exactly: no prefix, no case folding */
    assert_int_equal(do_match(&m, "GET", "/api/v1/healthz"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/api/v1/healt"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/API/v1/health"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/api/v1/health/x"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/api/v1"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "api/v1/health"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", ""), ROUTE_NOT_FOUND);
}

static void test_params(void **state)
{
    (void)state;
    match_out m;
    assert_int_equal(do_match(&m, "GET", "/api/v1/users/abc-123"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_user_get);
    assert_int_equal(m.req.n_params, 1);
    assert_string_equal(m.req.params[0], "abc-123");
    /* params point into the scratch buffer */
    assert_true(m.req.params[0] >= m.scratch && m.req.params[0] < m.scratch + sizeof m.scratch);

    assert_int_equal(do_match(&m, "GET", "/api/v1/users/u1/knowledge"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_knowledge);
    assert_int_equal(m.req.n_params, 1);
    assert_string_equal(m.req.params[0], "u1");

    assert_int_equal(do_match(&m, "GET", "/api/v1/sessions/s-9/messages/m-7"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_message);
    assert_int_equal(m.req.n_params, 2);
    assert_string_equal(m.req.params[0], "s-9");
    assert_string_equal(m.req.params[1], "m-7");

    assert_int_equal(do_match(&m, "GET", "/p/a/b/c/d"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_four);
    assert_int_equal(m.req.n_params, 4);
    assert_string_equal(m.req.params[3], "d");

    /* a fifth placeholder cannot be filled: the route is unreachable rather than overflowing params */
    assert_int_equal(do_match(&m, "GET", "/q/a/b/c/d/e"), ROUTE_NOT_FOUND);

    /* a placeholder holds exactly one segment */
    assert_int_equal(do_match(&m, "GET", "/api/v1/sessions/s/messages"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "DELETE", "/api/v1/users/a/b"), ROUTE_NOT_FOUND);

    /* the caller's path is not modified */
    char path[] = "/api/v1/users/xyz/";
    memset(&m, 0, sizeof m);
    assert_int_equal(router_match(TABLE, NROUTES, "GET", path, m.scratch, sizeof m.scratch, &m.req, &m.r, m.allow,
                                  sizeof m.allow),
                     ROUTE_FOUND);
    assert_string_equal(path, "/api/v1/users/xyz/");
    assert_string_equal(m.req.params[0], "xyz");
}

static void test_trailing_slash(void **state)
{
    (void)state;
    match_out m;
    assert_int_equal(do_match(&m, "GET", "/api/v1/health/"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_health);
    assert_int_equal(do_match(&m, "POST", "/api/v1/users/"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_users_create);
    assert_int_equal(do_match(&m, "GET", "/api/v1/users/abc/"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_user_get);
    assert_string_equal(m.req.params[0], "abc"); /* the slash is not part of the param */
    assert_int_equal(do_match(&m, "GET", "/api/v1/users/u/knowledge/"), ROUTE_FOUND);
    assert_string_equal(m.req.params[0], "u");
    /* only one */
    assert_int_equal(do_match(&m, "GET", "/api/v1/health//"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/api/v1/users/abc//"), ROUTE_NOT_FOUND);
}

static void test_empty_segments_rejected(void **state)
{
    (void)state;
    match_out m;
    assert_int_equal(do_match(&m, "GET", "//api/v1/health"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/api//v1/health"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/api/v1//health"), ROUTE_NOT_FOUND);
    /* an empty id is not an id */
    assert_int_equal(do_match(&m, "GET", "/api/v1/users//knowledge"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/api/v1/sessions//messages/m"), ROUTE_NOT_FOUND);
    /* "//" is "/" plus the one trailing slash allowed, so it is the root route; a third slash is not */
    assert_int_equal(do_match(&m, "GET", "//"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_root);
    assert_int_equal(do_match(&m, "GET", "///"), ROUTE_NOT_FOUND);
}

static void test_405_and_allow(void **state)
{
    (void)state;
    match_out m;
    assert_int_equal(do_match(&m, "PATCH", "/api/v1/users/abc"), ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET, PUT, DELETE");
    assert_null(m.r);

    assert_int_equal(do_match(&m, "DELETE", "/api/v1/users"), ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET, POST");

    assert_int_equal(do_match(&m, "POST", "/api/v1/health/"), ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET");

    assert_int_equal(do_match(&m, "GET", "/api/v1/users/u/query"), ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "POST");

    /* unknown path: 404 whatever the method */
    assert_int_equal(do_match(&m, "PATCH", "/api/v1/nothing"), ROUTE_NOT_FOUND);
    assert_int_equal(do_match(&m, "GET", "/api/v1/users/u/nothing"), ROUTE_NOT_FOUND);

    /* a short allow buffer is never overrun; what fits is a prefix of the list */
    http_request req;
    const route *r = NULL;
    char scratch[256], allow[8];
    memset(&req, 0, sizeof req);
    memset(allow, 'x', sizeof allow);
    assert_int_equal(router_match(TABLE, NROUTES, "PATCH", "/api/v1/users/abc", scratch, sizeof scratch, &req, &r,
                                  allow, sizeof allow),
                     ROUTE_BAD_METHOD);
    assert_true(memchr(allow, '\0', sizeof allow) != NULL);
    assert_true(strncmp("GET, PUT, DELETE", allow, strlen(allow)) == 0);
    /* and no allow buffer at all is fine */
    assert_int_equal(router_match(TABLE, NROUTES, "PATCH", "/api/v1/users/abc", scratch, sizeof scratch, &req, &r,
                                  NULL, 0),
                     ROUTE_BAD_METHOD);
}

static void test_head_matches_get(void **state)
{
    (void)state;
    match_out m;
    assert_int_equal(do_match(&m, "HEAD", "/api/v1/health"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_health);
    assert_int_equal(do_match(&m, "HEAD", "/api/v1/users/abc/"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_user_get);
    assert_string_equal(m.req.params[0], "abc");
    /* HEAD on a path without GET is a 405 */
    assert_int_equal(do_match(&m, "HEAD", "/api/v1/users/u/query"), ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "POST");
}

static void test_segment_limit(void **state)
{
    (void)state;
    match_out m;
    assert_int_equal(do_match(&m, "GET", "/s1/s2/s3/s4/s5/s6/s7/s8/s9/s10/s11/s12/s13/s14/s15/last"), ROUTE_FOUND);
    assert_ptr_equal(m.r->handler, h_deep);
    assert_string_equal(m.req.params[0], "last");
    assert_int_equal(do_match(&m, "GET", "/s1/s2/s3/s4/s5/s6/s7/s8/s9/s10/s11/s12/s13/s14/s15/last/"), ROUTE_FOUND);
    /* 17 and many more segments: not found, no overflow */
    assert_int_equal(do_match(&m, "GET", "/s1/s2/s3/s4/s5/s6/s7/s8/s9/s10/s11/s12/s13/s14/s15/last/x"),
                     ROUTE_NOT_FOUND);
    char path[400];
    size_t o = 0;
    for (int i = 0; i < 100; i++)
        o += (size_t)snprintf(path + o, sizeof path - o, "/a");
    assert_int_equal(do_match(&m, "GET", path), ROUTE_NOT_FOUND);
}

static void test_scratch_too_small(void **state)
{
    (void)state;
    http_request req;
    const route *r = NULL;
    char scratch[8], allow[32];
    memset(&req, 0, sizeof req);
    assert_int_equal(router_match(TABLE, NROUTES, "GET", "/api/v1/health", scratch, sizeof scratch, &req, &r, allow,
                                  sizeof allow),
                     ROUTE_NOT_FOUND);
    /* exactly enough room (path + NUL) */
    char exact[15];
    assert_int_equal(router_match(TABLE, NROUTES, "GET", "/api/v1/health", exact, sizeof exact, &req, &r, allow,
                                  sizeof allow),
                     ROUTE_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal_routes),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_trailing_slash),
        cmocka_unit_test(test_empty_segments_rejected),
        cmocka_unit_test(test_405_and_allow),
        cmocka_unit_test(test_head_matches_get),
        cmocka_unit_test(test_segment_limit),
        cmocka_unit_test(test_scratch_too_small),
    };
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
