/* llm_json — reading JSON out of what a language model wrote (contract in llm_json.h).
 *
 * Finding the value: the text (up to its first NUL) is scanned for '{' and '['. At each one a strict JSON
 * recogniser (no allocation, no recursion) measures the value starting there, with one of three outcomes:
 *   complete  — a whole value ends at some position: cJSON parses exactly that span. An object is the
 *               answer; the first array is kept as the fallback; either way the scan resumes after the
 *               value (what is inside a value is never taken for a value of its own);
 *   invalid   — not JSON ("{like this}" in prose, a stray bracket): the scan resumes one byte further;
 *   truncated — the text ends inside the value (or it nests deeper than LLM_JSON_MAX_DEPTH): the rest of
 *               the text belongs to it, so the scan stops; only an array found before can be the answer.
 * Code fences, a BOM and prose are thereby skipped without being recognised specially.
 *
 * Getters look a key up case-sensitively, then case-insensitively (models capitalise keys), and never trust
 * a type: strings are trimmed and cut at a UTF-8 character boundary, numbers may be strings ("0.9", "90%"
 * when percentages are allowed) but never NaN, infinities, hex or words. */
#include "llm/llm_json.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LLM_JSON_MAX_DEPTH 64

enum scan_rc { SCAN_COMPLETE, SCAN_INVALID, SCAN_TRUNCATED };

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

static size_t skip_ws(const unsigned char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i])) i++;
    return i;
}

/* A string starting at s[*i] == '"'; on SCAN_COMPLETE *i is past the closing quote. Raw control bytes are
 * let through (cJSON accepts them, and models put raw newlines in strings). */
static enum scan_rc scan_string(const unsigned char *s, size_t n, size_t *i) {
    size_t k = *i + 1;
    while (k < n) {
        unsigned char c = s[k];
        if (c == '"') {
            *i = k + 1;
            return SCAN_COMPLETE;
        }
        if (c == '\\') {
            if (k + 1 >= n) return SCAN_TRUNCATED;
            unsigned char e = s[k + 1];
            if (e == 'u') {
                for (size_t h = 0; h < 4; h++) {
                    if (k + 2 + h >= n) return SCAN_TRUNCATED;
                    if (!is_hex(s[k + 2 + h])) return SCAN_INVALID;
                }
                k += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) return SCAN_INVALID;
            k += 2;
            continue;
        }
        k++;
    }
    return SCAN_TRUNCATED;
}

/* A JSON number at s[*i]. */
static enum scan_rc scan_number(const unsigned char *s, size_t n, size_t *i) {
    size_t k = *i;
    if (k < n && s[k] == '-') k++;
    if (k >= n) return SCAN_TRUNCATED;
    if (s[k] == '0') k++;
    else if (is_digit(s[k])) while (k < n && is_digit(s[k])) k++;
    else return SCAN_INVALID;
    if (k < n && s[k] == '.') {
        k++;
        if (k >= n) return SCAN_TRUNCATED;
        if (!is_digit(s[k])) return SCAN_INVALID;
        while (k < n && is_digit(s[k])) k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-')) k++;
        if (k >= n) return SCAN_TRUNCATED;
        if (!is_digit(s[k])) return SCAN_INVALID;
        while (k < n && is_digit(s[k])) k++;
    }
    /* a number at the very end of the text may still be going on */
    if (k >= n) return SCAN_TRUNCATED;
    *i = k;
    return SCAN_COMPLETE;
}

static enum scan_rc scan_literal(const unsigned char *s, size_t n, size_t *i, const char *word) {
    size_t len = strlen(word);
    for (size_t j = 0; j < len; j++) {
        if (*i + j >= n) return SCAN_TRUNCATED;
        if (s[*i + j] != (unsigned char)word[j]) return SCAN_INVALID;
    }
    *i += len;
    return SCAN_COMPLETE;
}

/* Measures the object or array starting at s[start]. On SCAN_COMPLETE *end is one past its last byte. The
 * nesting is tracked in a fixed stack ('{' or '[' per level); deeper than the limit counts as truncated
 * (the caller stops either way and must not pick a value out of its inside). */
static enum scan_rc scan_value(const unsigned char *s, size_t n, size_t start, size_t *end) {
    unsigned char stack[LLM_JSON_MAX_DEPTH];
    int depth = 0;
    size_t i = start;
    /* state: expecting a value (after '[' , ',' in array or ':'), a key (after '{' or ',' in object), or
     * what follows a value (',' or the closing bracket). */
    enum { WANT_VALUE, WANT_VALUE_OR_CLOSE, WANT_KEY, WANT_KEY_OR_CLOSE, WANT_COLON, WANT_NEXT } st = WANT_VALUE;
    for (;;) {
        i = skip_ws(s, n, i);
        if (i >= n) return SCAN_TRUNCATED;
        unsigned char c = s[i];
        enum scan_rc r;
        switch (st) {
        case WANT_VALUE_OR_CLOSE:
            if (c == ']') goto close;
            /* fall through */
        case WANT_VALUE:
            if (c == '{' || c == '[') {
                if (depth == LLM_JSON_MAX_DEPTH) return SCAN_TRUNCATED;
                stack[depth++] = c;
                i++;
                st = c == '{' ? WANT_KEY_OR_CLOSE : WANT_VALUE_OR_CLOSE;
                continue;
            }
            if (depth == 0) return SCAN_INVALID; /* only objects and arrays are looked for */
            if (c == '"') r = scan_string(s, n, &i);
            else if (c == '-' || is_digit(c)) r = scan_number(s, n, &i);
            else if (c == 't') r = scan_literal(s, n, &i, "true");
            else if (c == 'f') r = scan_literal(s, n, &i, "false");
            else if (c == 'n') r = scan_literal(s, n, &i, "null");
            else return SCAN_INVALID;
            if (r != SCAN_COMPLETE) return r;
            st = WANT_NEXT;
            continue;
        case WANT_KEY_OR_CLOSE:
            if (c == '}') goto close;
            /* fall through */
        case WANT_KEY:
            if (c != '"') return SCAN_INVALID;
            r = scan_string(s, n, &i);
            if (r != SCAN_COMPLETE) return r;
            st = WANT_COLON;
            continue;
        case WANT_COLON:
            if (c != ':') return SCAN_INVALID;
            i++;
            st = WANT_VALUE;
            continue;
        case WANT_NEXT:
            if (c == ',') {
                i++;
                st = stack[depth - 1] == '{' ? WANT_KEY : WANT_VALUE;
                continue;
            }
            if (c == '}' || c == ']') goto close;
            return SCAN_INVALID;
        }
    close:
        if ((c == '}') != (stack[depth - 1] == '{')) return SCAN_INVALID;
        i++;
        if (--depth == 0) {
            *end = i;
            return SCAN_COMPLETE;
        }
        st = WANT_NEXT;
    }
}

cJSON *llm_json_extract(const char *text, size_t len) {
    if (!text) return NULL;
    const char *nul = memchr(text, 0, len);
    if (nul) len = (size_t)(nul - text);
    const unsigned char *s = (const unsigned char *)text;
    cJSON *first_array = NULL;
    size_t i = 0;
    while (i < len) {
        if (s[i] != '{' && s[i] != '[') {
            i++;
            continue;
        }
        size_t end = 0;
        enum scan_rc r = scan_value(s, len, i, &end);
        if (r == SCAN_TRUNCATED) break;
        if (r == SCAN_INVALID) {
            i++;
            continue;
        }
        cJSON *v = cJSON_ParseWithLength(text + i, end - i);
        if (!v) { /* recognised but refused by cJSON (e.g. a number out of its range): not a value */
            i++;
            continue;
        }
        if (cJSON_IsObject(v)) {
            cJSON_Delete(first_array);
            return v;
        }
        if (!first_array) first_array = v;
        else cJSON_Delete(v);
        i = end;
    }
    return first_array;
}

/* obj[key]: exact name first, then any case. */
static const cJSON *item(const cJSON *obj, const char *key) {
    if (!cJSON_IsObject(obj) || !key) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v ? v : cJSON_GetObjectItem(obj, key);
}

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* The length of s[0..n) cut to at most max bytes without splitting a UTF-8 character. */
static size_t utf8_cut(const char *s, size_t n, size_t max) {
    if (n <= max) return n;
    size_t cut = max, back = 0;
    while (cut > 0 && back < 3 && ((unsigned char)s[cut] & 0xC0) == 0x80) cut--, back++;
    if (((unsigned char)s[cut] & 0xC0) == 0x80) return max; /* not UTF-8 here anyway */
    return cut;
}

const char *llm_json_str(const cJSON *obj, const char *key, char *buf, size_t buflen) {
    const cJSON *v = item(obj, key);
    if (!buf || buflen < 2 || !cJSON_IsString(v) || !v->valuestring) return NULL;
    const char *s = v->valuestring;
    size_t n = strlen(s);
    while (n && is_space((unsigned char)*s)) s++, n--;
    while (n && is_space((unsigned char)s[n - 1])) n--;
    n = utf8_cut(s, n, buflen - 1);
    while (n && is_space((unsigned char)s[n - 1])) n--;
    if (!n) return NULL;
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

/* s[0..n) as a plain decimal number (sign, digits, optional fraction, optional exponent); -1 otherwise. */
static int parse_decimal(const char *s, size_t n, double *out) {
    size_t i = 0, digits = 0;
    char tmp[64];
    if (n == 0 || n >= sizeof tmp) return -1;
    if (s[i] == '+' || s[i] == '-') i++;
    while (i < n && is_digit((unsigned char)s[i])) i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && is_digit((unsigned char)s[i])) i++, digits++;
    }
    if (!digits) return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t ed = 0;
        while (i < n && is_digit((unsigned char)s[i])) i++, ed++;
        if (!ed) return -1;
    }
    if (i != n) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    double d = strtod(tmp, NULL);
    if (!isfinite(d)) return -1;
    *out = d;
    return 0;
}

int llm_json_num(const cJSON *obj, const char *key, int pct_ok, double *out) {
    const cJSON *v = item(obj, key);
    double d;
    if (cJSON_IsNumber(v)) {
        d = v->valuedouble;
    } else if (cJSON_IsString(v) && v->valuestring) {
        const char *s = v->valuestring;
        size_t n = strlen(s);
        while (n && is_space((unsigned char)*s)) s++, n--;
        while (n && is_space((unsigned char)s[n - 1])) n--;
        int pct = 0;
        if (n && s[n - 1] == '%') {
            if (!pct_ok) return -1;
            pct = 1;
            n--;
            while (n && is_space((unsigned char)s[n - 1])) n--;
        }
        if (parse_decimal(s, n, &d)) return -1;
        if (pct) d /= 100.0;
    } else {
        return -1;
    }
    if (!isfinite(d)) return -1;
    *out = d;
    return 0;
}

const cJSON *llm_json_arr(const cJSON *obj, const char *key) {
    const cJSON *v = item(obj, key);
    return cJSON_IsArray(v) ? v : NULL;
}

const cJSON *llm_json_any(const cJSON *obj, const char *const *keys) {
    if (!keys) return NULL;
    for (; *keys; keys++) {
        const cJSON *v = item(obj, *keys);
        if (v && !cJSON_IsNull(v)) return v; /* {"facts": null, "memories": [...]} reads the memories */
    }
    return NULL;
}
