/* http — the request and response a handler sees, independent of libmicrohttpd.
 *
 * A request carries the decoded path, its path parameters (the {} segments of the matched route), the
 * body (NUL-terminated copy, body_len bytes), accessors for query arguments and headers, and a
 * per-request arena that is freed when the response has been sent. A handler fills the response: a
 * status and a JSON body (http_response.body, see json.h), or no body (status 204). */
#ifndef MEMFUSE_HTTP_H
#define MEMFUSE_HTTP_H

#include <stddef.h>

#include "http/json.h"
#include "util/arena.h"

#define HTTP_MAX_PARAMS 4

typedef struct http_request http_request;

struct http_request {
    const char *method;
    const char *path;
    const char *params[HTTP_MAX_PARAMS];
    int n_params;
    const char *body;
    size_t body_len;
    arena *a;
    void *app;
    /* set by authentication: is_admin, or the user the key belongs to */
    int auth_admin;
    const char *auth_user;
    /* backend for query/header lookups */
    const char *(*get_query)(const http_request *r, const char *key);
    const char *(*get_header)(const http_request *r, const char *name);
    void *conn;
};

typedef struct http_response {
    int status;
    int no_body;                /* 204 */
    jw body;                    /* JSON body */
    const char *allow;          /* Allow header for 405 */
    const char *retry_after;    /* Retry-After header for 429/503 */
    int close;                  /* send Connection: close */
    char *raw;                  /* a non-JSON body (malloc'ed; the server frees it) ... */
    size_t raw_len;
    const char *content_type;   /* ... and its type */
} http_response;

static inline const char *http_query(const http_request *r, const char *key) { return r->get_query(r, key); }
static inline const char *http_header(const http_request *r, const char *name) { return r->get_header(r, name); }

#endif
