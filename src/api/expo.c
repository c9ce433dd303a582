/* expo — see expo.h. */
#include "api/expo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void expo_init_text(expo *e) { memset(e, 0, sizeof *e); }

void expo_init_json(expo *e, jw *j)
{
    memset(e, 0, sizeof *e);
    e->j = j;
    jw_obj(j);
}

static void json_close_family(expo *e)
{
    if (e->open) {
        jw_arr_end(e->j);
        jw_obj_end(e->j);
        e->open = 0;
    }
}

void expo_family(expo *e, const char *name, const char *type, const char *help)
{
    e->name = name;
    if (!e->j) {
        met_header(&e->sb, name, type, help);
        return;
    }
    json_close_family(e);
    jw_key(e->j, name);
    jw_obj(e->j);
    jw_kstr(e->j, "type", type);
    jw_kstr(e->j, "help", help);
    jw_key(e->j, "samples");
    jw_arr(e->j);
    e->open = 1;
}

/* Text: name{labels[,extra]} — extra is one more label (le) or NULL. */
static void text_series(expo *e, const char *suffix, const char *const *labels, const char *extra_k,
                        const char *extra_v)
{
    sb_printf(&e->sb, "%s%s", e->name, suffix);
    int n = 0;
    for (int i = 0; labels && labels[i]; i += 2) {
        sb_printf(&e->sb, "%s%s=\"", n++ ? "," : "{", labels[i]);
        for (const char *p = labels[i + 1] ? labels[i + 1] : ""; *p; p++) {
            if (*p == '\\' || *p == '"')
                sb_printf(&e->sb, "\\%c", *p);
            else if (*p == '\n')
                sb_printf(&e->sb, "\\n");
            else
                sb_printf(&e->sb, "%c", *p);
        }
        sb_printf(&e->sb, "\"");
    }
    if (extra_k)
        sb_printf(&e->sb, "%s%s=\"%s\"", n++ ? "," : "{", extra_k, extra_v);
    if (n)
        sb_printf(&e->sb, "}");
}

static void json_labels(expo *e, const char *const *labels)
{
    jw_obj(e->j);
    if (labels && labels[0]) {
        jw_key(e->j, "labels");
        jw_obj(e->j);
        for (int i = 0; labels[i]; i += 2)
            jw_kstr(e->j, labels[i], labels[i + 1] ? labels[i + 1] : "");
        jw_obj_end(e->j);
    }
}

static void text_double(strbuf *b, double v)
{
    if (isnan(v))
        sb_printf(b, " NaN\n");
    else if (isinf(v))
        sb_printf(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else
        sb_printf(b, " %.15g\n", v);
}

void expo_value(expo *e, const char *const *labels, double v)
{
    if (e->j) {
        json_labels(e, labels);
        jw_kdouble(e->j, "value", v);
        jw_obj_end(e->j);
        return;
    }
    text_series(e, "", labels, NULL, NULL);
    text_double(&e->sb, v);
}

void expo_count(expo *e, const char *const *labels, uint64_t v)
{
    if (e->j) {
        json_labels(e, labels);
        jw_kint(e->j, "value", v > INT64_MAX ? INT64_MAX : (int64_t)v);
        jw_obj_end(e->j);
        return;
    }
    text_series(e, "", labels, NULL, NULL);
    sb_printf(&e->sb, " %llu\n", (unsigned long long)v);
}

static void le_text(char *out, size_t cap, double le)
{
    if (le > 1e299) /* +Inf (metrics.h writes its last bound as 1e300) */
        snprintf(out, cap, "+Inf");
    else
        snprintf(out, cap, "%g", le);
}

void expo_hist(expo *e, const char *const *labels, const double *le, const uint64_t *buckets, int nb, double sum_s)
{
    uint64_t total = 0;
    for (int i = 0; i < nb; i++)
        total += buckets[i];
    char les[32];
    if (e->j) {
        json_labels(e, labels);
        jw_kint(e->j, "count", (int64_t)total);
        jw_kdouble(e->j, "sum", sum_s);
        static const struct {
            const char *k;
            double q;
        } qs[] = {{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}};
        for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++)
            jw_kdouble(e->j, qs[i].k, met_quantile(le, buckets, nb, qs[i].q));
        jw_key(e->j, "buckets");
        jw_arr(e->j);
        uint64_t cum = 0;
        for (int i = 0; i < nb; i++) {
            cum += buckets[i];
            le_text(les, sizeof les, le[i]);
            jw_arr(e->j);
            jw_str(e->j, les);
            jw_int(e->j, (int64_t)cum);
            jw_arr_end(e->j);
        }
        jw_arr_end(e->j);
        jw_obj_end(e->j);
        return;
    }
    uint64_t cum = 0;
    for (int i = 0; i < nb; i++) {
        cum += buckets[i];
        le_text(les, sizeof les, le[i]);
        text_series(e, "_bucket", labels, "le", les);
        sb_printf(&e->sb, " %llu\n", (unsigned long long)cum);
    }
    text_series(e, "_sum", labels, NULL, NULL);
    text_double(&e->sb, sum_s);
    text_series(e, "_count", labels, NULL, NULL);
    sb_printf(&e->sb, " %llu\n", (unsigned long long)total);
}

void expo_finish(expo *e)
{
    if (e->j) {
        json_close_family(e);
        jw_obj_end(e->j);
    }
}

char *expo_take_text(expo *e, size_t *len) { return strbuf_take(&e->sb, len); }
