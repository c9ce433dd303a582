/* json — our JSON writer (cJSON prints numbers slowly and allocates per node; responses are written
 * straight into one growable buffer instead).
 *
 * Owns: a malloc'ed buffer that jw_take() hands to the caller (who frees it; the HTTP layer gives it to
 * libmicrohttpd to free). Commas are inserted automatically: call jw_key() before each object member,
 * nothing before array elements. Strings are escaped; bytes that are not valid UTF-8 are written as
 * U+FFFD so the output is always valid JSON. An allocation failure sets err and later calls do nothing. */
#ifndef MEMFUSE_JSON_H
#define MEMFUSE_JSON_H

#include <stddef.h>
#include <stdint.h>

#define JW_MAX_DEPTH 32

typedef struct jw {
    char *buf;
    size_t len, cap;
    int err;
    int depth;
    unsigned char need_comma[JW_MAX_DEPTH];
    int after_key;
} jw;

void jw_init(jw *w);
void jw_free(jw *w);
char *jw_take(jw *w, size_t *len); /* NUL-terminated; NULL after an allocation failure */

void jw_obj(jw *w);
void jw_obj_end(jw *w);
void jw_arr(jw *w);
void jw_arr_end(jw *w);
void jw_key(jw *w, const char *k);
void jw_str(jw *w, const char *s); /* NULL writes null */
void jw_strn(jw *w, const char *s, size_t n);
void jw_null(jw *w);
void jw_bool(jw *w, int b);
void jw_int(jw *w, int64_t v);
void jw_double(jw *w, double v); /* non-finite values are written as null */
void jw_raw(jw *w, const char *json, size_t n); /* an already serialised value */

/* key + value shorthands */
void jw_kstr(jw *w, const char *k, const char *v);
void jw_kint(jw *w, const char *k, int64_t v);
void jw_kdouble(jw *w, const char *k, double v);
void jw_kbool(jw *w, const char *k, int v);
void jw_knull(jw *w, const char *k);

/* UTF-8 check used by the writer and by input validation: 1 if s[0..n) is valid UTF-8 (no overlongs,
 * no surrogates, nothing above U+10FFFF) and contains no NUL byte. */
int json_utf8_valid(const char *s, size_t n);

#endif
