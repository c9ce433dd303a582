/* embed_utf8 — UTF-8 decoding and NFKC normalisation for the embedders' text front ends.
 *
 * Decoding follows the WHATWG/Node rule: every maximal ill-formed subsequence becomes one U+FFFD, so
 * bytes that are not UTF-8 read as Node's Buffer#toString("utf8") would read them. Normalisation is
 * utf8proc's NFKC (optionally with case folding). Returned buffers are malloc'd; the caller frees them.
 * Pure functions, safe from any thread. */
#ifndef MEMFUSE_EMBED_UTF8_H
#define MEMFUSE_EMBED_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at s[0..len) (len >= 1) into *cp; returns bytes consumed (>= 1). */
size_t embed_utf8_next(const unsigned char *s, size_t len, int32_t *cp);
/* Encodes cp into out (4 bytes room); returns its length. */
size_t embed_utf8_put(int32_t cp, unsigned char *out);
/* NFKC (casefold != 0: NFKC_Casefold) of s[0..len), invalid bytes replaced first. Returns a NUL-terminated
 * malloc'd string and its length in *outlen, or NULL when out of memory. ASCII-only input is copied as is
 * (it is already NFKC) unless casefold asks for lower case. */
char *embed_utf8_nfkc(const char *s, size_t len, int casefold, size_t *outlen);

/* The length of s[0..len) cut to at most max bytes (max >= 8): at the last ' ' in the second half of the
 * limit, else on a UTF-8 character boundary. Returns len when len <= max. */
size_t embed_utf8_clip(const char *s, size_t len, size_t max);

/* Writes s[0..len) as a JSON string literal (with quotes) into out, which must have room for 6 * len + 3
 * bytes. Ill-formed UTF-8 becomes U+FFFD; control characters, '"' and '\\' are escaped. Returns the length
 * written (out is NUL-terminated). */
size_t embed_utf8_json_quote(const char *s, size_t len, char *out);

#endif
