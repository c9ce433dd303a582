/* json — see json.h. */
#include "http/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_init(jw *w) { memset(w, 0, sizeof *w); }

void jw_free(jw *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

char *jw_take(jw *w, size_t *len)
{
    if (w->err || !w->buf) {
        jw_free(w);
        return NULL;
    }
    char *b = w->buf;
    if (len)
        *len = w->len;
    w->buf = NULL;
    w->len = w->cap = 0;
    return b;
}

static int reserve(jw *w, size_t extra)
{
    if (w->err)
        return -1;
    if (w->len + extra + 1 <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            w->err = 1;
            return -1;
        }
        cap *= 2;
    }
    char *nb = realloc(w->buf, cap);
    if (!nb) {
        w->err = 1;
        return -1;
    }
    w->buf = nb;
    w->cap = cap;
    return 0;
}

static void put(jw *w, const char *s, size_t n)
{
    if (reserve(w, n) != 0)
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

/* comma and state bookkeeping before any value */
static void before_value(jw *w)
{
    if (w->after_key) {
        w->after_key = 0;
        return;
    }
    if (w->depth > 0 && w->need_comma[w->depth - 1])
        put(w, ",", 1);
    if (w->depth > 0)
        w->need_comma[w->depth - 1] = 1;
}

static void open_(jw *w, char c)
{
    before_value(w);
    put(w, &c, 1);
    if (w->depth >= JW_MAX_DEPTH) {
        w->err = 1;
        return;
    }
    w->need_comma[w->depth++] = 0;
}

static void close_(jw *w, char c)
{
    if (w->depth > 0)
        w->depth--;
    put(w, &c, 1);
}

void jw_obj(jw *w) { open_(w, '{'); }
void jw_obj_end(jw *w) { close_(w, '}'); }
void jw_arr(jw *w) { open_(w, '['); }
void jw_arr_end(jw *w) { close_(w, ']'); }

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

int json_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] == 0)
            return 0;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq(s + i, n - i);
        if (!l)
            return 0;
        i += l;
    }
    return 1;
}

void jw_strn(jw *w, const char *str, size_t n)
{
    before_value(w);
    if (reserve(w, n + 2) != 0)
        return;
    const unsigned char *s = (const unsigned char *)str;
    put(w, "\"", 1);
    size_t run = 0; /* start of the current run of bytes copied verbatim */
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t l = c >= 0x80 ? utf8_seq(s + i, n - i) : 0;
        if (l) {
            i += l;
            continue;
        }
        put(w, str + run, i - run);
        char esc[8];
        const char *e = esc;
        size_t el = 2;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                el = 6;
            } else {
                e = "\xEF\xBF\xBD"; /* invalid UTF-8 byte -> U+FFFD */
                el = 3;
            }
        }
        put(w, e, el);
        i++;
        run = i;
    }
    put(w, str + run, n - run);
    put(w, "\"", 1);
}

void jw_str(jw *w, const char *s)
{
    if (!s)
        jw_null(w);
    else
        jw_strn(w, s, strlen(s));
}

void jw_key(jw *w, const char *k)
{
    jw_str(w, k);
    put(w, ":", 1);
    w->after_key = 1;
}

void jw_null(jw *w)
{
    before_value(w);
    put(w, "null", 4);
}

void jw_bool(jw *w, int b)
{
    before_value(w);
    if (b)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void jw_int(jw *w, int64_t v)
{
    before_value(w);
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(w, p, (size_t)(tmp + sizeof tmp - p));
}

void jw_double(jw *w, double v)
{
    if (!isfinite(v)) {
        jw_null(w);
        return;
    }
    before_value(w);
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.9g", v);
    /* keep it a JSON number that reads back as a float: "1" -> "1.0" */
    if (!strpbrk(tmp, ".eEn") && n + 2 < (int)sizeof tmp) {
        tmp[n++] = '.';
        tmp[n++] = '0';
    }
    put(w, tmp, (size_t)n);
}

void jw_raw(jw *w, const char *json, size_t n)
{
    before_value(w);
    put(w, json, n);
}

void jw_kstr(jw *w, const char *k, const char *v)
{
    jw_key(w, k);
    jw_str(w, v);
}

void jw_kint(jw *w, const char *k, int64_t v)
{
    jw_key(w, k);
    jw_int(w, v);
}

void jw_kdouble(jw *w, const char *k, double v)
{
    jw_key(w, k);
    jw_double(w, v);
}

void jw_kbool(jw *w, const char *k, int v)
{
    jw_key(w, k);
    jw_bool(w, v);
}

void jw_knull(jw *w, const char *k)
{
    jw_key(w, k);
    jw_null(w);
}
