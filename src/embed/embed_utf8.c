/* embed_utf8 — see embed_utf8.h. */
#include "embed/embed_utf8.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

size_t embed_utf8_next(const unsigned char *s, size_t len, int32_t *cp) {
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int need;
    int32_t v;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) { need = 1; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2; v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3; v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    size_t i = 1;
    for (int k = 0; k < need; k++, i++) {
        if (i >= len || s[i] < lo || s[i] > hi) {
            *cp = 0xFFFD; /* the maximal subpart read so far is one replacement */
            return i;
        }
        v = (v << 6) | (s[i] & 0x3F);
        lo = 0x80;
        hi = 0xBF;
    }
    *cp = v;
    return i;
}

size_t embed_utf8_put(int32_t cp, unsigned char *out) {
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { out[0] = (unsigned char)(0xC0 | (cp >> 6)); out[1] = (unsigned char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

char *embed_utf8_nfkc(const char *s, size_t len, int casefold, size_t *outlen) {
    const unsigned char *u = (const unsigned char *)s;
    int ascii = 1, valid = 1;
    for (size_t i = 0; i < len; i++)
        if (u[i] >= 0x80) { ascii = 0; break; }
    if (ascii) {
        char *o = malloc(len + 1);
        if (!o) return NULL;
        for (size_t i = 0; i < len; i++) {
            char c = s[i];
            o[i] = (casefold && c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        o[len] = 0;
        *outlen = len;
        return o;
    }
    /* Replace ill-formed sequences first: utf8proc refuses them. Output is at most 3x input (1 byte -> FFFD). */
    unsigned char *clean = NULL;
    size_t clen = len;
    for (size_t i = 0; i < len;) {
        int32_t cp;
        size_t k = embed_utf8_next(u + i, len - i, &cp);
        if (cp == 0xFFFD && !(k == 3 && u[i] == 0xEF && u[i + 1] == 0xBF && u[i + 2] == 0xBD)) { valid = 0; break; }
        i += k;
    }
    if (!valid) {
        if (len > ((size_t)-1) / 3 - 1) return NULL;
        clean = malloc(len * 3 + 1);
        if (!clean) return NULL;
        clen = 0;
        for (size_t i = 0; i < len;) {
            int32_t cp;
            i += embed_utf8_next(u + i, len - i, &cp);
            clen += embed_utf8_put(cp, clean + clen);
        }
        u = clean;
    }
    utf8proc_uint8_t *dst = NULL;
    int opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
    if (casefold) opts |= UTF8PROC_CASEFOLD;
    utf8proc_ssize_t r = utf8proc_map(u, (utf8proc_ssize_t)clen, &dst, (utf8proc_option_t)opts);
    free(clean);
    if (r < 0) {
        free(dst);
        return NULL;
    }
    *outlen = (size_t)r;
    return (char *)dst;
}

size_t embed_utf8_json_quote(const char *s, size_t len, char *out) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len;) {
        int32_t cp;
        i += embed_utf8_next(u + i, len - i, &cp);
        switch (cp) {
        case '"': out[o++] = '\\'; out[o++] = '"'; continue;
        case '\\': out[o++] = '\\'; out[o++] = '\\'; continue;
        case '\n': out[o++] = '\\'; out[o++] = 'n'; continue;
        case '\r': out[o++] = '\\'; out[o++] = 'r'; continue;
        case '\t': out[o++] = '\\'; out[o++] = 't'; continue;
        default: break;
        }
        if (cp < 0x20 || cp == 0x2028 || cp == 0x2029) {
            out[o++] = '\\';
            out[o++] = 'u';
            out[o++] = hex[(cp >> 12) & 15];
            out[o++] = hex[(cp >> 8) & 15];
            out[o++] = hex[(cp >> 4) & 15];
            out[o++] = hex[cp & 15];
        } else {
            o += embed_utf8_put(cp, (unsigned char *)out + o);
        }
    }
    out[o++] = '"';
    out[o] = 0;
    return o;
}

size_t embed_utf8_clip(const char *s, size_t len, size_t max) {
    if (len <= max) return len;
    size_t cut = max;
    while (cut > max / 2 && s[cut] != ' ') cut--;
    if (s[cut] == ' ') return cut;
    cut = max;
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--;
    return cut;
}
