/* terms — see terms.h. */
#include "search/terms.h"

#include <stdlib.h>
#include <string.h>

static const char *const STOP[] = {
    "a", "about", "after", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "being", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from", "had", "has", "have",
    "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its",
    "me", "my", "of", "on", "or", "our", "ours", "she", "so", "than", "that", "the", "their", "theirs", "them",
    "then", "there", "these", "they", "this", "those", "to", "was", "we", "were", "what", "when", "where",
    "which", "who", "whom", "why", "will", "with", "would", "you", "your", "yours",
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

int terms_is_stopword(const char *word)
{
    return bsearch(&word, STOP, sizeof STOP / sizeof STOP[0], sizeof STOP[0], cmp_str) != NULL;
}

int terms_is_word_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const char **terms_extract(arena *a, const char *text, size_t *n)
{
    *n = 0;
    /* content words and stop words are collected apart, so stop words never crowd out content words */
    const char **words = arena_alloc(a, TERMS_MAX * sizeof *words);
    const char **stops = arena_alloc(a, TERMS_MAX * sizeof *stops);
    if (!words || !stops)
        return NULL;
    size_t nw = 0, ns = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p && nw < TERMS_MAX) {
        while (*p && !terms_is_word_byte(*p))
            p++;
        const unsigned char *s = p;
        while (*p && terms_is_word_byte(*p))
            p++;
        size_t len = (size_t)(p - s);
        if (len == 0)
            break;
        if (len > TERM_MAX_BYTES) {
            /* never cut inside a UTF-8 sequence */
            len = TERM_MAX_BYTES;
            while (len > 0 && (s[len] & 0xC0) == 0x80)
                len--;
            if (len == 0)
                continue;
        }
        char *w = arena_strndup(a, (const char *)s, len);
        if (!w)
            return NULL;
        for (char *q = w; *q; q++)
            if (*q >= 'A' && *q <= 'Z')
                *q = (char)(*q - 'A' + 'a');
        int stop = terms_is_stopword(w);
        const char **list = stop ? stops : words;
        size_t *cnt = stop ? &ns : &nw;
        int dup = 0;
        for (size_t i = 0; i < *cnt && !dup; i++)
            dup = strcmp(list[i], w) == 0;
        if (!dup && *cnt < TERMS_MAX)
            list[(*cnt)++] = w;
    }
    if (nw == 0) { /* only stop words: search for them rather than nothing */
        *n = ns;
        return stops;
    }
    *n = nw;
    return words;
}
