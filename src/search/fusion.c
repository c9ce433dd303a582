/* fusion — see fusion.h. */
#include "search/fusion.h"

double fusion_rrf(const int *ranks, const double *weights, size_t n_paths)
{
    double s = 0, best = 0;
    for (size_t p = 0; p < n_paths; p++) {
        if (weights[p] <= 0)
            continue;
        best += weights[p] / (FUSION_K + 1);
        if (ranks[p] > 0)
            s += weights[p] / (FUSION_K + ranks[p]);
    }
    return best > 0 ? s / best : 0;
}
