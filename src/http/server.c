/* server — see server.h. */
#include "http/server.h"
#include "http/envelope.h"
#include "util/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct http_server {
    struct MHD_Daemon *d;
    http_dispatch_fn dispatch;
    void *ctx;
    size_t max_body;
    int port;
    _Atomic int in_flight;
    _Atomic int stopping; /* after http_server_quiesce(): new requests are refused with 503 */
};

typedef struct conn_req {
    char *body;
    size_t len, cap;
    int too_large;
    int answering; /* counted in in_flight: dispatched or answered, until MHD reports completion */
    arena a;
    http_request req;
} conn_req;

typedef struct query_find {
    const char *key;
    const char *value;
    int found;
} query_find;

static enum MHD_Result query_match(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    query_find *f = cls;
    (void)kind;
    if (key && strcmp(key, f->key) == 0) {
        f->value = value; /* NULL for "?key" without "=", as MHD's lookup gives */
        f->found = 1;
        return MHD_NO; /* the first one wins */
    }
    return MHD_YES;
}

/* Query parameter names are case-sensitive (as in the original server): MHD's own lookup compares them
 * caselessly, so "?LIMIT=0" would have been read as "limit". */
static const char *get_query(const http_request *r, const char *key)
{
    query_find f = {.key = key};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, query_match, &f);
    return f.found ? f.value : NULL;
}

static const char *get_header(const http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static enum MHD_Result queue(struct MHD_Connection *c, http_response *res)
{
    struct MHD_Response *r;
    if (res->no_body) {
        jw_free(&res->body);
        r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else if (res->raw) {
        jw_free(&res->body);
        r = MHD_create_response_from_buffer(res->raw_len, res->raw, MHD_RESPMEM_MUST_FREE);
        if (!r)
            free(res->raw);
        else
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->content_type);
    } else {
        size_t len = 0;
        char *buf = jw_take(&res->body, &len);
        if (!buf) {
            static const char oom[] = "{\"status\":\"error\",\"code\":500,\"data\":null,"
                                      "\"message\":\"Internal server error\",\"errors\":"
                                      "[{\"field\":\"general\",\"message\":\"Internal server error\"}]}";
            res->status = 500;
            r = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        } else {
            r = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
            if (!r)
                free(buf);
        }
        if (r)
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    }
    if (!r)
        return MHD_NO;
    if (res->allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, res->allow);
    if (res->retry_after)
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, res->retry_after);
    if (res->close)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)res->status, r);
    MHD_destroy_response(r);
    return ret;
}

static void too_large(http_response *res)
{
    env_error(res, 413, "Request body too large", "body", "Request body too large");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    http_server *s = cls;
    conn_req *cr = *con_cls;
    if (!cr) {
        cr = calloc(1, sizeof *cr);
        if (!cr)
            return MHD_NO;
        arena_init(&cr->a);
        *con_cls = cr;
        if (atomic_load(&s->stopping)) {
            /* shutting down: refuse new work; the client may retry elsewhere or later */
            http_response res = {0};
            jw_init(&res.body);
            env_error(&res, 503, "Server is shutting down", "general", "Server is shutting down; retry");
            res.retry_after = "1";
            res.close = 1;
            cr->answering = 1;
            atomic_fetch_add(&s->in_flight, 1);
            return queue(c, &res);
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || *end || n > s->max_body) {
                /* refuse before reading the body; MHD closes the connection after this answer */
                http_response res = {0};
                jw_init(&res.body);
                too_large(&res);
                cr->answering = 1;
                atomic_fetch_add(&s->in_flight, 1);
                return queue(c, &res);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (cr->too_large)
            return MHD_YES;
        if (cr->len + n > s->max_body) {
            cr->too_large = 1;
            free(cr->body);
            cr->body = NULL;
            cr->len = cr->cap = 0;
            return MHD_YES;
        }
        if (cr->len + n + 1 > cr->cap) {
            size_t cap = cr->cap ? cr->cap : 1024;
            while (cap < cr->len + n + 1)
                cap *= 2;
            char *nb = realloc(cr->body, cap);
            if (!nb)
                return MHD_NO;
            cr->body = nb;
            cr->cap = cap;
        }
        memcpy(cr->body + cr->len, upload_data, n);
        cr->len += n;
        cr->body[cr->len] = '\0';
        return MHD_YES;
    }

    http_response res = {.status = 200};
    jw_init(&res.body);
    cr->answering = 1;
    atomic_fetch_add(&s->in_flight, 1);
    if (cr->too_large) {
        too_large(&res);
        return queue(c, &res);
    }
    http_request *req = &cr->req;
    req->method = method;
    req->path = url;
    req->body = cr->body;
    req->body_len = cr->len;
    req->a = &cr->a;
    req->conn = c;
    req->get_query = get_query;
    req->get_header = get_header;
    s->dispatch(s->ctx, req, &res);
    return queue(c, &res);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    http_server *s = cls;
    conn_req *cr = *con_cls;
    if (!cr)
        return;
    if (cr->answering)
        atomic_fetch_sub(&s->in_flight, 1);
    free(cr->body);
    arena_free(&cr->a);
    free(cr);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context, enum MHD_ConnectionNotificationCode code)
{
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) {
        int one = 1;
        setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decoding of paths and query arguments, in place. A decoded NUL would silently cut the string
 * (an id "abc%00junk" would read as "abc"), so %00 becomes C0 80, which is not valid UTF-8 and so can
 * match no stored id and parse as no number. */
static size_t on_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;
    for (const char *r = s; *r;) {
        int hi, lo;
        if (*r == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
            unsigned char b = (unsigned char)(hi * 16 + lo);
            if (b == 0) {
                *w++ = (char)0xC0;
                *w++ = (char)0x80;
            } else {
                *w++ = (char)b;
            }
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_debug("libmicrohttpd: %s", msg);
}

http_server *http_server_start(const http_server_config *cfg, http_dispatch_fn dispatch, void *ctx, char *err,
                               size_t errlen)
{
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->dispatch = dispatch;
    s->ctx = ctx;
    s->max_body = cfg->max_body;
    atomic_init(&s->in_flight, 0);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host && *cfg->host ? cfg->host : NULL, port, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", cfg->host ? cfg->host : "", gai_strerror(gai));
        free(s);
        return NULL;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    int threads = cfg->threads > 0 ? cfg->threads : 1;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s},
        {MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s > 0 ? cfg->connection_timeout_s : 60, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 128 * 1024, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)on_unescape, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };
    s->d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s:%d (%s)", cfg->host ? cfg->host : "*", cfg->port,
                 errno ? strerror(errno) : "libmicrohttpd failed to start");
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : cfg->port;
    return s;
}

int http_server_port(const http_server *s) { return s->port; }

/* MHD_quiesce_daemon() is not used: in libmicrohttpd 0.9.75 with an epoll thread pool it races its own
 * workers (both remove the listen socket from a worker's epoll set; the loser aborts the process). New
 * requests are refused with 503 and Connection: close instead, while those already dispatched finish. */
void http_server_quiesce(http_server *s) { atomic_store(&s->stopping, 1); }

int http_server_drain(http_server *s, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (atomic_load(&s->in_flight) == 0)
            return 0;
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return atomic_load(&s->in_flight);
}

void http_server_stop(http_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}
