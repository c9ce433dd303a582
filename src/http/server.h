/* server — the HTTP server on libmicrohttpd.
 *
 * Owns: the MHD daemon (epoll, internal thread pool), per-request state (body buffer, arena), and the
 * count of requests in flight. Each request's body is collected (at most max_body bytes: over it the
 * answer is 413 and the rest is discarded, or the connection is closed when Content-Length already says
 * so), then dispatch() runs on the pool thread on MHD's *second* handler call (answering on the first
 * would cost keep-alive). The response is queued as one buffer with its headers, so MHD sends it in one
 * writev; TCP_NODELAY is set on every connection.
 *
 * Shutdown: http_server_quiesce() stops accepting work (new requests get 503 with Retry-After and
 * Connection: close), http_server_drain() waits for requests in flight
 * (dispatched and not yet fully answered; a client still sending its request is not waited for),
 * http_server_stop() closes what is left. */
#ifndef MEMFUSE_SERVER_H
#define MEMFUSE_SERVER_H

#include <stddef.h>

#include "http/http.h"

typedef struct http_server http_server;

typedef void (*http_dispatch_fn)(void *ctx, http_request *req, http_response *res);

typedef struct http_server_config {
    const char *host;
    int port; /* 0: any free port */
    int threads;
    size_t max_body;
    int connection_timeout_s;
} http_server_config;

http_server *http_server_start(const http_server_config *cfg, http_dispatch_fn dispatch, void *ctx, char *err,
                               size_t errlen);
int http_server_port(const http_server *s);
void http_server_quiesce(http_server *s);
/* Waits until no request is in flight, at most timeout_ms; returns the number still in flight. */
int http_server_drain(http_server *s, int timeout_ms);
void http_server_stop(http_server *s);

#endif
