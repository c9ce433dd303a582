/* libFuzzer target for both tokenizers. The embedders' text front end: the SentencePiece tokenizer (on the
 * real USE-lite vocabulary when models/use-lite is present, and always on a small vocabulary with the real
 * one's oddities: null and positive scores, duplicates, pieces whose first character is not a piece), NFKC
 * normalisation of arbitrary bytes, and the JSON quoting used for requests and CLI output. And the keyword
 * tokenizer (src/search/terms.c, a query's BM25 terms): at most TERMS_MAX terms, each non-empty, at most
 * TERM_MAX_BYTES, made of word bytes only, ASCII lower-cased, no duplicates, never cut inside a UTF-8
 * sequence the input had whole, and either no stop word or nothing but stop words. And the speaker label of
 * a message (src/search/fusion.c, the hybrid query's speaker match): at most FUSION_LABEL_MAX bytes, opening
 * with an uppercase or non-ASCII byte, followed by ':' and a space or the end, and named by the content
 * itself; fusion_names on any split of the input into text and label reads nothing out of bounds.
 * Input: byte 0 picks the vocabulary, the rest is the text. Checked: no crash or sanitizer report; every
 * id in range; at most one id per code point (+1 for the leading U+2581); the same result with a short
 * output buffer; the quoted text parses back as a JSON string. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed_utf8.h"
#include "embed/spm.h"
#include "search/fusion.h"
#include "search/terms.h"
#include "util/arena.h"

static spm *real_vocab, *small_vocab; /* built once per fuzzing process */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int word_byte(unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void check_terms(const char *text, size_t len) {
    char *z = malloc(len + 1);
    if (!z) return;
    memcpy(z, text, len);
    z[len] = 0;
    arena a;
    arena_init(&a);
    size_t n = 0;
    const char **t = terms_extract(&a, z, &n);
    if (!t || n > TERMS_MAX) abort();
    int stops = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(t[i]);
        if (l == 0 || l > TERM_MAX_BYTES) abort();
        for (size_t k = 0; k < l; k++) {
            unsigned char c = (unsigned char)t[i][k];
            if (!word_byte(c) || (c >= 'A' && c <= 'Z')) abort();
        }
        /* the term starts a word of the input (case-insensitively), and where it was cut at
         * TERM_MAX_BYTES the next byte there does not continue a UTF-8 sequence */
        int found = 0;
        for (const char *at = strcasestr(z, t[i]); at && !found; at = strcasestr(at + 1, t[i]))
            found = (at == z || !word_byte((unsigned char)at[-1])) &&
                    (l < TERM_MAX_BYTES || ((unsigned char)at[l] & 0xC0) != 0x80);
        if (!found) abort();
        for (size_t j = 0; j < i; j++)
            if (strcmp(t[i], t[j]) == 0) abort();
        stops += terms_is_stopword(t[i]);
    }
    if (stops != 0 && (size_t)stops != n) abort();
    arena_free(&a);
    free(z);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char err[256];
    const char *dir = getenv("MEMFUSE_MODEL_DIR");
    char path[1100];
    snprintf(path, sizeof path, "%s/vocab.json", dir && *dir ? dir : "models/use-lite");
    real_vocab = spm_load(path, SPM_RESERVED_DEFAULT, NULL, err, sizeof err);
    static const char *pieces[] = {"\xef\xbf\xbd", "<s>", "</s>", "\xe2\x96\x81", "\xe2\x96\x81the", "the", "t", "h",
                                   "e", ":", ":30", "\xe2\x80\x9d" "5", "\xe2\x80\x9d" "5", "\xe6\x9d\xb1\xe4\xba\xac",
                                   "ab", "abc", "\xe2\x96\x81\xe2\x96\x81", "x", "\xf0\x9f\x98\x80"};
    static const double scores[] = {0, 0, 0, -2.0, -3.0, -4.0, -5.0, -5.5, -5.0, NAN, 30.0, -7.0, -9.0, -6.0,
                                    -4.0, -3.5, -1.0, -8.0, -2.0};
    small_vocab = spm_from_pieces(pieces, scores, (int)(sizeof pieces / sizeof pieces[0]), 3, err, sizeof err);
    if (!small_vocab) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        abort();
    }
    return 0;
}

static void check_speaker(const char *text, size_t len) {
    char *z = malloc(len + 1);
    if (!z) return;
    memcpy(z, text, len);
    z[len] = 0;
    size_t l = fusion_speaker_label(z);
    if (l > FUSION_LABEL_MAX || l > strlen(z)) abort();
    if (l) {
        unsigned char c0 = (unsigned char)z[0];
        if (!((c0 >= 'A' && c0 <= 'Z') || c0 >= 0x80)) abort();
        if (z[l] != ':' || (z[l + 1] != ' ' && z[l + 1] != 0) || z[l - 1] == ' ') abort();
        const char *twice = strstr(z, "  ");
        if (memchr(z, ':', l) || (twice && twice - z < (ptrdiff_t)l)) abort();
        if (!fusion_names(z, z, l)) abort(); /* content names its own label */
    }
    /* any split: the first part as the text, the rest as the label (unterminated within its length) */
    size_t cut = len / 2;
    char *label = malloc(len - cut + 1);
    if (label) {
        memcpy(label, z + cut, len - cut);
        label[len - cut] = 0;
        z[cut] = 0;
        (void)fusion_names(z, label, len - cut);
        free(label);
    }
    free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    check_terms((const char *)data + 1, size - 1);
    check_speaker((const char *)data + 1, size - 1);
    spm *s = (data[0] & 1) && real_vocab ? real_vocab : small_vocab;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    size_t cap = len + 2;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return 0;
    int n = spm_encode(s, text, len, ids, (int)cap);
    if (n < 0 || (size_t)n > cap) abort();
    /* NFKC may expand (one byte can become several code points), so bound by the normalised length. */
    size_t nlen = 0;
    char *norm = embed_utf8_nfkc(text, len, 0, &nlen);
    if (!norm) abort();
    size_t ncp = 0;
    for (size_t i = 0; i < nlen;) {
        int32_t cp;
        i += embed_utf8_next((const unsigned char *)norm + i, nlen - i, &cp);
        ncp++;
    }
    free(norm);
    if ((size_t)n > ncp + 1) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= spm_vocab_size(s)) abort();
    int32_t few[3];
    int m = spm_encode(s, text, len, few, 3);
    if (m != n) abort();
    for (int i = 0; i < n && i < 3; i++)
        if (few[i] != ids[i]) abort();
    free(ids);
    /* JSON quoting of arbitrary bytes yields a JSON string cJSON accepts. */
    char *q = malloc(6 * len + 3);
    if (!q) return 0;
    size_t qn = embed_utf8_json_quote(text, len, q);
    cJSON *j = cJSON_ParseWithLength(q, qn);
    if (!cJSON_IsString(j)) abort();
    cJSON_Delete(j);
    free(q);
    return 0;
}
