/* router — maps a method and a path to a handler.
 *
 * Routes are patterns of literal segments and "{}" placeholders ("/api/v1/users/{}/knowledge"); the
 * placeholders' values become request params in order. A path matches with or without one trailing
 * slash. router_match() reports whether the path matched some route with another method, so the caller
 * can answer 405 rather than 404. The table is read-only after start-up. */
#ifndef MEMFUSE_ROUTER_H
#define MEMFUSE_ROUTER_H

#include "http/http.h"

typedef void (*http_handler)(http_request *req, http_response *res);

typedef struct route {
    const char *method;
    const char *pattern;
    http_handler handler;
    int flags; /* opaque to the router (the API uses it for auth rules) */
} route;

typedef enum { ROUTE_FOUND, ROUTE_NOT_FOUND, ROUTE_BAD_METHOD } route_result;

/* On ROUTE_FOUND sets *out and fills req->params (pointers into scratch, which must hold the path). On
 * ROUTE_BAD_METHOD, allow receives a comma-separated list of the methods the path accepts. */
route_result router_match(const route *table, int n, const char *method, const char *path, char *scratch,
                          size_t scratch_len, http_request *req, const route **out, char *allow, size_t allow_len);

#endif
