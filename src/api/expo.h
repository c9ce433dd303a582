/* expo — one writer of metric families, two renderings: the Prometheus text format (GET /metrics) and
 * JSON (GET /api/v1/admin/stats), so that both always carry the same content.
 *
 * A caller opens a family (name, type, help), then writes its samples; the next family (or expo_finish)
 * closes it. Labels are a NULL-terminated array of key, value strings (NULL: none). Histograms are given
 * as upper bounds in seconds (the last +Inf) and per-bucket (not cumulative) counts.
 *
 * Text: "# HELP"/"# TYPE" lines, then one line per sample (histograms: cumulative _bucket lines with le,
 * then _sum and _count); label values escaped as the format requires.
 * JSON: {"<family>": {"type", "help", "samples": [{"labels": {...}, "value": v}]}, ...}; a histogram
 * sample has "count", "sum", "buckets" ([[le, cumulative count], ...], le as in the text format) and the
 * interpolated quantiles "p50", "p90", "p99", "p999" in seconds.
 *
 * Owns: the text buffer (taken with expo_take_text) in text mode; in JSON mode it writes into the
 * caller's jw (positioned where an object value may start). Not thread-safe: one request's writer. */
#ifndef MEMFUSE_EXPO_H
#define MEMFUSE_EXPO_H

#include <stddef.h>
#include <stdint.h>

#include "http/json.h"
#include "util/metrics.h"

typedef struct expo {
    jw *j;     /* JSON mode when set */
    strbuf sb; /* text mode */
    int open;  /* a JSON family is open */
    const char *name; /* the family being written */
} expo;

void expo_init_text(expo *e);
void expo_init_json(expo *e, jw *j);
void expo_family(expo *e, const char *name, const char *type, const char *help);
void expo_value(expo *e, const char *const *labels, double v);
void expo_count(expo *e, const char *const *labels, uint64_t v);
void expo_hist(expo *e, const char *const *labels, const double *le, const uint64_t *buckets, int nb, double sum_s);
/* Closes the last family (and, in JSON mode, the enclosing object expo_init_json opened). */
void expo_finish(expo *e);
/* Text mode: the rendered text (malloc'ed; the caller frees it), NULL after an allocation failure. */
char *expo_take_text(expo *e, size_t *len);

#endif
