/* fusion — see fusion.h. */
#include "search/fusion.h"
#include "search/terms.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

double fusion_mean(const double *scaled, const double *weights, size_t n_paths)
{
    double s = 0, total = 0;
    for (size_t p = 0; p < n_paths; p++) {
        if (weights[p] <= 0)
            continue;
        total += weights[p];
        double x = scaled[p] < 0 ? 0 : scaled[p] > 1 ? 1 : scaled[p];
        s += weights[p] * x;
    }
    return total > 0 ? s / total : 0;
}

double fusion_minmax(double x, double lo, double hi)
{
    if (!(hi > lo))
        return 1.0;
    double v = (x - lo) / (hi - lo);
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

int fusion_parse_window(const char *s, double *w, int *n)
{
    double tmp[FUSION_WINDOW_MAX];
    int k = 0;
    const char *p = s;
    while (*p == ' ')
        p++;
    if (*p == '\0') {
        *n = 0;
        return 0;
    }
    for (;;) {
        if (k == FUSION_WINDOW_MAX)
            return -1;
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno != 0 || !isfinite(v) || v < 0 || v > 1)
            return -1;
        tmp[k++] = v;
        p = end;
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        if (*p != ',')
            return -1;
        p++;
    }
    while (k > 0 && tmp[k - 1] == 0) /* trailing zeros weigh nothing: "0" is no window */
        k--;
    memcpy(w, tmp, (size_t)k * sizeof *w);
    *n = k;
    return 0;
}

size_t fusion_speaker_label(const char *content)
{
    const unsigned char *p = (const unsigned char *)content;
    if (!(isupper(p[0]) || p[0] >= 0x80))
        return 0;
    size_t i = 0;
    int words = 1;
    for (; i < FUSION_LABEL_MAX && p[i]; i++) {
        unsigned char c = p[i];
        if (c == ':')
            return i > 0 && p[i - 1] != ' ' && (p[i + 1] == ' ' || p[i + 1] == '\0') ? i : 0;
        if (c == ' ') {
            if (p[i + 1] == ' ' || p[i + 1] == ':' || ++words > 3)
                return 0;
        } else if (!terms_is_word_byte(c) && c != '\'' && c != '.' && c != '-') {
            return 0;
        }
    }
    return 0;
}

int fusion_names(const char *text, const char *label, size_t len)
{
    if (len == 0)
        return 0;
    const unsigned char *t = (const unsigned char *)text;
    for (size_t i = 0; t[i]; i++) {
        if (i > 0 && terms_is_word_byte(t[i - 1]))
            continue;
        if (strncasecmp((const char *)t + i, label, len) == 0 && !terms_is_word_byte(t[i + len]))
            return 1;
    }
    return 0;
}
