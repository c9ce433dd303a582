/* bench_http — see bench_http.h. */
#include "bench/bench_http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define MAX_HEAD (64 * 1024)

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int bh_parse_url(const char *url, bh_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (strncmp(url, "http://", 7) != 0)
        return fail(err, errlen, "only http:// URLs are supported: '%s'", url);
    const char *h = url + 7, *end = h + strcspn(h, "/?#");
    const char *port = NULL, *hend = end;
    if (*h == '[') { /* [IPv6]:port */
        const char *rb = memchr(h, ']', (size_t)(end - h));
        if (!rb)
            return fail(err, errlen, "bad IPv6 address in '%s'", url);
        if (rb + 1 < end && rb[1] == ':')
            port = rb + 2;
        else if (rb + 1 != end)
            return fail(err, errlen, "bad address in '%s'", url);
        hend = rb + 1;
        h++;
        if ((size_t)(rb - h) >= sizeof t->host)
            return fail(err, errlen, "host too long in '%s'", url);
        memcpy(t->host, h, (size_t)(rb - h));
        h--;
    } else {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        if (colon) {
            port = colon + 1;
            hend = colon;
        }
        if (hend == h || (size_t)(hend - h) >= sizeof t->host)
            return fail(err, errlen, "bad host in '%s'", url);
        memcpy(t->host, h, (size_t)(hend - h));
    }
    size_t plen = port ? (size_t)(end - port) : 0;
    if (port && (plen == 0 || plen >= sizeof t->port || strspn(port, "0123456789") < plen))
        return fail(err, errlen, "bad port in '%s'", url);
    if (port)
        memcpy(t->port, port, plen);
    else
        snprintf(t->port, sizeof t->port, "80");
    snprintf(t->hostport, sizeof t->hostport, "%.*s", (int)(end - h), h);
    return 0;
}

void bh_init(bh_conn *c, const bh_target *t, const char *auth, int timeout_ms)
{
    memset(c, 0, sizeof *c);
    c->t = t;
    c->auth = auth;
    c->fd = -1;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
}

static void drop(bh_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in_len = c->in_pos = 0;
}

void bh_close(bh_conn *c)
{
    drop(c);
    free(c->in);
    free(c->body);
    free(c->out);
    c->in = c->body = c->out = NULL;
    c->in_cap = c->body_cap = c->out_cap = 0;
}

static int open_conn(bh_conn *c, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(c->t->host, c->t->port, &hints, &res);
    if (rc != 0)
        return fail(err, errlen, "cannot resolve %s: %s", c->t->host, gai_strerror(rc));
    int fd = -1, last = 0;
    for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            last = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return fail(err, errlen, "cannot connect to %s: %s", c->t->hostport, strerror(last));
    int one = 1;
    struct timeval tv = {.tv_sec = c->timeout_ms / 1000, .tv_usec = (c->timeout_ms % 1000) * 1000};
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, "setsockopt: %s", strerror(e));
    }
    c->fd = fd;
    c->in_len = c->in_pos = 0;
    return 0;
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        return -1;
    *buf = b;
    *cap = n;
    return 0;
}

/* Reads more bytes into in: >0 read, 0 end of stream, -1 error (errno set). */
static ssize_t read_more(bh_conn *c)
{
    if (c->in_pos) { /* keep only what is not consumed, at the front */
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->in_pos = 0;
    }
    if (grow(&c->in, &c->in_cap, c->in_len + 16384) != 0) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            c->in_len += (size_t)n;
        return n;
    }
}

/* Makes at least n unconsumed bytes available. */
static int need(bh_conn *c, size_t n, char *err, size_t errlen)
{
    while (c->in_len - c->in_pos < n) {
        ssize_t r = read_more(c);
        if (r == 0)
            return fail(err, errlen, "connection closed in the middle of a response");
        if (r < 0)
            return fail(err, errlen, "read: %s", errno == EAGAIN ? "timed out" : strerror(errno));
    }
    return 0;
}

/* The offset (from in_pos) of the next CRLF, reading as needed; -1 on failure. */
static long line_end(bh_conn *c, size_t max, char *err, size_t errlen)
{
    size_t from = 0;
    for (;;) {
        const char *base = c->in + c->in_pos;
        size_t avail = c->in_len - c->in_pos;
        const char *p = avail >= 2 ? memmem(base + from, avail - from, "\r\n", 2) : NULL;
        if (p)
            return (long)(p - base);
        if (avail > max)
            return fail(err, errlen, "line longer than %zu bytes", max);
        from = avail ? avail - 1 : 0;
        if (need(c, avail + 1, err, errlen) != 0)
            return -1;
    }
}

static int body_append(bh_conn *c, const char *p, size_t n)
{
    if (grow(&c->body, &c->body_cap, c->body_len + n + 1) != 0)
        return -1;
    memcpy(c->body + c->body_len, p, n);
    c->body_len += n;
    c->body[c->body_len] = 0;
    return 0;
}

static int read_response(bh_conn *c, int head_only, int *close_after, char *err, size_t errlen)
{
    c->body_len = 0;
    if (grow(&c->body, &c->body_cap, 1) != 0)
        return fail(err, errlen, "out of memory");
    c->body[0] = 0;
    /* head */
    const char *end;
    for (;;) {
        end = c->in_len - c->in_pos >= 4 ? memmem(c->in + c->in_pos, c->in_len - c->in_pos, "\r\n\r\n", 4) : NULL;
        if (end)
            break;
        if (c->in_len - c->in_pos > MAX_HEAD)
            return fail(err, errlen, "response head over %d bytes", MAX_HEAD);
        if (need(c, c->in_len - c->in_pos + 1, err, errlen) != 0)
            return -1;
    }
    const char *h = c->in + c->in_pos, *head_end = end + 2;
    int status = 0;
    if (sscanf(h, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 999)
        return fail(err, errlen, "bad status line");
    long long clen = -1;
    int chunked = 0;
    *close_after = strncmp(h, "HTTP/1.0", 8) == 0;
    for (const char *l = (const char *)memchr(h, '\n', (size_t)(head_end - h)) + 1; l < head_end;) {
        const char *nl = memchr(l, '\n', (size_t)(head_end - l));
        size_t len = (size_t)(nl - l);
        if (len >= 15 && strncasecmp(l, "content-length:", 15) == 0)
            clen = strtoll(l + 15, NULL, 10);
        else if (len >= 18 && strncasecmp(l, "transfer-encoding:", 18) == 0)
            chunked = memmem(l, len, "chunked", 7) != NULL;
        else if (len >= 11 && strncasecmp(l, "connection:", 11) == 0)
            *close_after = memmem(l, len, "close", 5) != NULL || memmem(l, len, "Close", 5) != NULL;
        l = nl + 1;
    }
    c->in_pos = (size_t)(end + 4 - c->in);
    if (head_only || status == 204 || status == 304 || (status >= 100 && status < 200))
        return status;
    if (chunked) {
        for (;;) {
            long le = line_end(c, 1024, err, errlen);
            if (le < 0)
                return -1;
            unsigned long long size = strtoull(c->in + c->in_pos, NULL, 16);
            c->in_pos += (size_t)le + 2;
            if (size == 0) { /* trailers up to an empty line */
                for (;;) {
                    long t = line_end(c, MAX_HEAD, err, errlen);
                    if (t < 0)
                        return -1;
                    c->in_pos += (size_t)t + 2;
                    if (t == 0)
                        return status;
                }
            }
            if (size > (1ull << 30))
                return fail(err, errlen, "chunk too large");
            if (need(c, (size_t)size + 2, err, errlen) != 0)
                return -1;
            if (body_append(c, c->in + c->in_pos, (size_t)size) != 0)
                return fail(err, errlen, "out of memory");
            c->in_pos += (size_t)size + 2;
        }
    }
    if (clen >= 0) {
        if (clen > (1ll << 30))
            return fail(err, errlen, "body too large");
        if (need(c, (size_t)clen, err, errlen) != 0)
            return -1;
        if (body_append(c, c->in + c->in_pos, (size_t)clen) != 0)
            return fail(err, errlen, "out of memory");
        c->in_pos += (size_t)clen;
        return status;
    }
    /* no length: the body runs to the end of the stream */
    for (;;) {
        if (body_append(c, c->in + c->in_pos, c->in_len - c->in_pos) != 0)
            return fail(err, errlen, "out of memory");
        c->in_pos = c->in_len;
        ssize_t r = read_more(c);
        if (r == 0)
            break;
        if (r < 0)
            return fail(err, errlen, "read: %s", strerror(errno));
    }
    *close_after = 1;
    return status;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int bh_request(bh_conn *c, const char *method, const char *path, const char *body, size_t body_len, char *err,
               size_t errlen)
{
    size_t cap = strlen(method) + strlen(path) + strlen(c->t->hostport) + (c->auth ? strlen(c->auth) : 0) + 256;
    if (grow(&c->out, &c->out_cap, cap + body_len) != 0)
        return fail(err, errlen, "out of memory");
    int n = snprintf(c->out, cap, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: memfuse-bench\r\n%s%s%s", method, path,
                     c->t->hostport, c->auth ? "Authorization: " : "", c->auth ? c->auth : "", c->auth ? "\r\n" : "");
    if (body)
        n += snprintf(c->out + n, cap - (size_t)n, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      body_len);
    else
        n += snprintf(c->out + n, cap - (size_t)n, "\r\n");
    if (body)
        memcpy(c->out + n, body, body_len);
    size_t total = (size_t)n + (body ? body_len : 0);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = c->fd < 0;
        if (fresh && open_conn(c, err, errlen) != 0)
            return -1;
        if (send_all(c->fd, c->out, total) != 0) {
            drop(c);
            if (!fresh && attempt == 0) {
                c->reconnects++;
                continue;
            }
            return fail(err, errlen, "send: %s", strerror(errno));
        }
        /* a reused connection the server closed meanwhile: nothing of the answer arrives */
        if (!fresh && c->in_len == c->in_pos) {
            ssize_t r = read_more(c);
            if (r <= 0) {
                int e = errno;
                drop(c);
                if (attempt == 0 && (r == 0 || e == ECONNRESET || e == EPIPE)) {
                    c->reconnects++;
                    continue;
                }
                return fail(err, errlen, "read: %s", r == 0 ? "connection closed" : strerror(e));
            }
        }
        int close_after = 0;
        int status = read_response(c, strcmp(method, "HEAD") == 0, &close_after, err, errlen);
        if (status < 0 || close_after)
            drop(c);
        return status;
    }
    return fail(err, errlen, "connection lost twice");
}
