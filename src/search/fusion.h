/* fusion — reciprocal-rank fusion of ranked result lists (DESIGN §3).
 *
 * Each path (dense, BM25, …) gives a list of ids in rank order (rank 1 first) with a weight w_p. A hit's
 * fused score is  sum_p w_p / (k + rank_p)  over the paths that found it, normalised to [0,1] by the
 * best score possible (rank 1 on every path): sum_p w_p / (k + 1). k is 60. */
#ifndef MEMFUSE_FUSION_H
#define MEMFUSE_FUSION_H

#include <stddef.h>

#define FUSION_K 60.0

/* Score of a hit at the given 1-based ranks (0 = not found by that path). */
double fusion_rrf(const int *ranks, const double *weights, size_t n_paths);

#endif
