/* fusion — how the query combines its ranked paths (DESIGN §3, chosen with bench/recall: BENCHMARKS.md).
 *
 * Two ways to fuse a hit's paths, each giving a score in [0,1]:
 *  - score fusion (the default): each path's raw score is first scaled to [0,1] — BM25 divided by the best
 *    BM25 of the query, a cosine min-max scaled between the dense path's last (depth-th) and best
 *    similarity — and the hit's score is the weighted mean  sum_p w_p s_p / sum_p w_p  (0 where a path
 *    did not find it);
 *  - reciprocal rank:  sum_p w_p / (k + rank_p), normalised by the best possible (rank 1 on every path),
 *    sum_p w_p / (k + 1); k is 60.
 *
 * Then the context window: in a conversation the answer is often a turn or two after the turn that shares
 * the question's words ("Did you get your exam results?" / "And??" / "I passed, with a distinction!"). A
 * message therefore also scores by the messages just before it in its session:
 *     final(i) = fused(i) + sum_d beta_d * fused(i - d),   d = 1 .. n
 * so a message found by nothing itself still ranks when its predecessors do. The query ranks by final and
 * rescales it so that the best hit keeps the best fused score (a hit first on every path still scores 1).
 *
 * Then the speaker: transcripts keep a turn as "<Name>: <text>", and a question that names one participant
 * ("What did Caroline paint?") is about what that participant said. When the query names exactly one of
 * the speakers found among the candidate messages that the factor could lift into the top k (the label
 * before the colon, as whole words, ASCII case ignored), that speaker's messages score (1 + g) times their
 * final score (--speaker-boost g). A query naming none or several, and messages without a label, are
 * unchanged. */
#ifndef MEMFUSE_FUSION_H
#define MEMFUSE_FUSION_H

#include <stddef.h>

#define FUSION_K 60.0
#define FUSION_WINDOW_MAX 8 /* most predecessors a message scores by */
#define FUSION_LABEL_MAX 40 /* longest speaker label, in bytes */

/* Score of a hit at the given 1-based ranks (0 = not found by that path). */
double fusion_rrf(const int *ranks, const double *weights, size_t n_paths);

/* Weighted mean of per-path scores already scaled to [0,1] (a path that did not find the hit gives 0). */
double fusion_mean(const double *scaled, const double *weights, size_t n_paths);

/* x min-max scaled into [0,1] between lo and hi (clamped); 1 when hi <= lo (a single value). */
double fusion_minmax(double x, double lo, double hi);

/* Parses a window's weights, "b1,b2,..." (each a number in [0,1], at most FUSION_WINDOW_MAX), into w[] and
 * *n; "" or "0" is no window (*n = 0). Returns 0, or -1 for anything else (w and *n unchanged). */
int fusion_parse_window(const char *s, double *w, int *n);

/* Length of the speaker label that opens content, "<label>: ...": one to three words of letters, digits and
 * ' . - (any non-ASCII byte counts as a letter), single spaces between them, the first word beginning with an
 * uppercase letter (or a non-ASCII one), at most FUSION_LABEL_MAX bytes, followed by ':' and a space or the
 * end. 0 when content opens with none. */
size_t fusion_speaker_label(const char *content);

/* Whether text holds the len bytes of label as whole words (neighbours neither letters nor digits), ASCII
 * case ignored. */
int fusion_names(const char *text, const char *label, size_t len);

#endif
