/* terms — turns a free-text query into keyword terms for BM25.
 *
 * Words are maximal runs of letters and digits (any non-ASCII byte counts as a letter, so accented and
 * CJK text stays in the word), ASCII lower-cased, at most TERMS_MAX of them, duplicates dropped. Common
 * English stop words are dropped, unless the query has nothing else. The store quotes each term for its
 * own query syntax, so no query text is ever read as syntax. */
#ifndef MEMFUSE_TERMS_H
#define MEMFUSE_TERMS_H

#include <stddef.h>

#include "util/arena.h"

#define TERMS_MAX 64
#define TERM_MAX_BYTES 64

/* Returns the terms (arena array of arena strings) and their number in *n. */
const char **terms_extract(arena *a, const char *text, size_t *n);
int terms_is_stopword(const char *word);
/* Whether c belongs to a word: an ASCII letter or digit, or any byte of a non-ASCII UTF-8 sequence. */
int terms_is_word_byte(unsigned char c);

#endif
