/* spm — the SentencePiece unigram tokenizer of Universal Sentence Encoder lite, as its reference
 * JavaScript implementation (@energetic-ai/embeddings 0.2.0, lib/tokenizer.ts) runs it.
 *
 * Reproduced exactly, quirks included, because token ids must equal the reference's:
 *   - preprocessing: NFKC (utf8proc), no lower-casing; a non-empty result gets a leading U+2581 and every
 *     U+0020 becomes U+2581 (other white space is kept as is);
 *   - the first `reserved` pieces (6 in the shipped vocabulary) are not matchable; later duplicates of a
 *     piece replace earlier ones; a null score counts as 0;
 *   - lattice: at each position every vocabulary piece that starts there; only where none does, the single
 *     code point as unknown (id 0, score 0);
 *   - Viterbi in end order, starts ascending, with the reference's update rule
 *     `best[end] == 0 || score >= best[end]` (ties go to the later, shorter piece; unreached positions
 *     score 0); the backtrack steps by each piece's UTF-16 length; runs of unknowns collapse to one id 0.
 * Truncation to the model's 128 positions is the model's business: spm_encode returns all ids.
 *
 * Owns: the vocabulary and a code-point trie over it, immutable after load, so one spm may be shared by
 * any number of threads. spm_free() frees it. */
#ifndef MEMFUSE_SPM_H
#define MEMFUSE_SPM_H

#include <stddef.h>
#include <stdint.h>

typedef struct spm spm;

#define SPM_RESERVED_DEFAULT 6

/* Loads a vocabulary file: a JSON array of [piece, score-or-null]. Returns NULL with err filled on
 * failure; *missing (if not NULL) is set to 1 when the file does not exist. */
spm *spm_load(const char *path, int reserved, int *missing, char *err, size_t errlen);
/* Builds from n pieces (UTF-8, NUL-terminated) and their scores (NaN stands for null, i.e. 0). */
spm *spm_from_pieces(const char *const *pieces, const double *scores, int n, int reserved, char *err,
                     size_t errlen);
/* Tokenizes text[0..len) (any bytes; ill-formed UTF-8 reads as U+FFFD). Writes the first max_ids ids into
 * ids and returns the total number of ids (which may exceed max_ids), or -1 when out of memory. */
int spm_encode(const spm *s, const char *text, size_t len, int32_t *ids, int max_ids);
int spm_vocab_size(const spm *s);
/* The piece of an id (UTF-8), or NULL when out of range. */
const char *spm_piece(const spm *s, int id);
void spm_free(spm *s);

#endif
