/* bench_http — a minimal HTTP/1.1 client for the load generator: one keep-alive TCP connection per
 * bh_conn, blocking sockets with timeouts, TCP_NODELAY, requests written with one send.
 *
 * Responses: a status line and headers, then a body delimited by Content-Length, by chunked transfer
 * coding, or (Connection: close without a length) by the end of the stream. The body is decoded into the
 * connection's own buffer, valid until the next request on it. A connection the server closed between
 * requests (keep-alive timeout, shutdown) is reopened once, transparently, before any byte of the answer.
 *
 * Owns: its socket and buffers (bh_close frees them). Not thread-safe: one thread per connection. */
#ifndef MEMFUSE_BENCH_HTTP_H
#define MEMFUSE_BENCH_HTTP_H

#include <stddef.h>

typedef struct bh_target {
    char host[256];
    char port[16];
    char hostport[280]; /* the Host header */
} bh_target;

/* "http://HOST[:PORT][/...]" (IPv6 as [addr]); 0, or -1 with a reason in err. */
int bh_parse_url(const char *url, bh_target *t, char *err, size_t errlen);

typedef struct bh_conn {
    const bh_target *t;
    const char *auth; /* "Bearer ..." value sent as Authorization, or NULL */
    int fd;
    char *in;         /* bytes read and not yet consumed */
    size_t in_len, in_pos, in_cap;
    char *body;       /* the last response's decoded body, NUL-terminated */
    size_t body_len, body_cap;
    char *out;        /* the request being written */
    size_t out_cap;
    int timeout_ms;
    int reconnects;
} bh_conn;

void bh_init(bh_conn *c, const bh_target *t, const char *auth, int timeout_ms);
void bh_close(bh_conn *c);
/* Sends one request (body may be NULL; a body is sent as application/json) and reads the answer.
 * Returns the HTTP status, or -1 on a transport or protocol failure (the connection is then closed and
 * reopened by the next request); err says why. */
int bh_request(bh_conn *c, const char *method, const char *path, const char *body, size_t body_len, char *err,
               size_t errlen);

#endif
