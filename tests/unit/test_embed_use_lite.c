/* use-lite against the reference: every golden text embedded by the C port must have cosine >= 0.9999 and
 * max |difference| <= 1e-4 with the reference's vector; the same texts batched together (mixed lengths in
 * one forward pass) must give the same vectors as one at a time; concurrent callers must agree; the graph
 * check must refuse a model.json whose wiring differs. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <unistd.h>

#include "embed/embed.h"
#include "embed/use_model.h"
#include "test_embed_fixture.h"

typedef struct ctx {
    embedder *e;
    golden_row *rows;
    int n;
} ctx;

static int setup(void **state) {
    if (!golden_model_present()) return golden_skip_requested() ? 0 : -1;
    ctx *c = calloc(1, sizeof *c);
    embed_config cfg;
    embed_config_default(&cfg);
    snprintf(cfg.model_dir, sizeof cfg.model_dir, "%s", golden_model_dir());
    cfg.allow_fallback = 0;
    char err[512] = "";
    c->e = embed_open(&cfg, err, sizeof err);
    if (!c->e) {
        fprintf(stderr, "embed_open: %s\n", err);
        free(c);
        return -1;
    }
    c->n = golden_load(&c->rows);
    if (c->n < 200) {
        fprintf(stderr, "golden fixture %s missing or short\n", GOLDEN_PATH);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state) {
    ctx *c = *state;
    if (!c) return 0;
    embed_close(c->e);
    golden_free(c->rows, c->n);
    free(c);
    return 0;
}

#define SKIP_WITHOUT_MODEL() do { if (!*state) skip(); } while (0)

static void compare(const golden_row *r, const float *v, double *worst_cos, double *worst_abs, int idx) {
    double dot = 0, na = 0, nb = 0, mx = 0;
    for (int d = 0; d < GOLDEN_DIM; d++) {
        dot += (double)v[d] * r->vec[d];
        na += (double)v[d] * v[d];
        nb += (double)r->vec[d] * r->vec[d];
        double ad = fabs((double)v[d] - r->vec[d]);
        if (ad > mx) mx = ad;
    }
    double cs = dot / sqrt(na * nb);
    if (cs < *worst_cos) *worst_cos = cs;
    if (mx > *worst_abs) *worst_abs = mx;
    if (!(cs >= 0.9999 && mx <= 1e-4))
        fprintf(stderr, "text %d (%d ids): cosine %.7f, max |diff| %.3g\n", idx, r->nids, cs, mx);
}

static void test_golden_one_by_one(void **state) {
    SKIP_WITHOUT_MODEL();
    ctx *c = *state;
    assert_int_equal(embed_dim(c->e), GOLDEN_DIM);
    assert_int_equal(embed_get_kind(c->e), EMBED_USE_LITE);
    double worst_cos = 1, worst_abs = 0;
    int bad = 0;
    float v[GOLDEN_DIM];
    char err[256];
    for (int i = 0; i < c->n; i++) {
        const char *t = c->rows[i].text;
        assert_int_equal(embed_batch(c->e, &t, &c->rows[i].len, 1, v, err, sizeof err), 0);
        double wc = 1, wa = 0;
        compare(&c->rows[i], v, &wc, &wa, i);
        if (!(wc >= 0.9999 && wa <= 1e-4)) bad++;
        if (wc < worst_cos) worst_cos = wc;
        if (wa > worst_abs) worst_abs = wa;
        /* the ids the model sees: the reference's, cut at 128 */
        int32_t ids[200];
        int k = embed_tokenize(c->e, t, c->rows[i].len, ids, 200);
        assert_int_equal(k, c->rows[i].nids < 128 ? c->rows[i].nids : 128);
        for (int j = 0; j < k; j++) assert_int_equal(ids[j], c->rows[i].ids[j]);
    }
    fprintf(stderr, "golden vectors (one by one): %d texts, min cosine %.8f (1 - %.2e), max |diff| %.3e, %d failing\n",
            c->n, worst_cos, 1 - worst_cos, worst_abs, bad);
    assert_int_equal(bad, 0);
}

static void test_golden_batched(void **state) {
    SKIP_WITHOUT_MODEL();
    ctx *c = *state;
    const char **texts = malloc(sizeof *texts * (size_t)c->n);
    size_t *lens = malloc(sizeof *lens * (size_t)c->n);
    float *out = malloc(sizeof *out * GOLDEN_DIM * (size_t)c->n);
    for (int i = 0; i < c->n; i++) {
        texts[i] = c->rows[i].text;
        lens[i] = c->rows[i].len;
    }
    char err[256];
    /* all texts at once (several chunks, lengths 0..128 mixed), and in batches of 7 */
    double worst_cos = 1, worst_abs = 0;
    assert_int_equal(embed_batch(c->e, texts, lens, c->n, out, err, sizeof err), 0);
    for (int i = 0; i < c->n; i++) compare(&c->rows[i], out + (size_t)i * GOLDEN_DIM, &worst_cos, &worst_abs, i);
    for (int i = 0; i < c->n; i += 7) {
        int m = c->n - i < 7 ? c->n - i : 7;
        assert_int_equal(embed_batch(c->e, texts + i, lens + i, m, out + (size_t)i * GOLDEN_DIM, err, sizeof err), 0);
    }
    for (int i = 0; i < c->n; i++) compare(&c->rows[i], out + (size_t)i * GOLDEN_DIM, &worst_cos, &worst_abs, i);
    fprintf(stderr, "golden vectors (batched): min cosine %.8f, max |diff| %.3e\n", worst_cos, worst_abs);
    assert_true(worst_cos >= 0.9999);
    assert_true(worst_abs <= 1e-4);
    /* every row unit-norm */
    for (int i = 0; i < c->n; i++) {
        double ss = 0;
        for (int d = 0; d < GOLDEN_DIM; d++) ss += (double)out[(size_t)i * GOLDEN_DIM + d] * out[(size_t)i * GOLDEN_DIM + d];
        assert_true(fabs(ss - 1.0) < 1e-5);
    }
    free(texts);
    free(lens);
    free(out);
}

/* A 4 MB text: cut before tokenizing (bounded memory), same ids and vector as a 20 KB prefix of it. */
static void test_huge_text(void **state) {
    SKIP_WITHOUT_MODEL();
    ctx *c = *state;
    size_t big = 4u << 20, k = 0;
    char *t = malloc(big);
    while (k < big) {
        const golden_row *r = &c->rows[k % 50];
        size_t n = r->len < big - k ? r->len : big - k;
        memcpy(t + k, r->text, n);
        k += n;
        if (k < big) t[k++] = ' ';
    }
    for (size_t i = 0; i < big; i++)
        if (!t[i]) t[i] = ' '; /* the fixture has texts with U+0000 */
    int32_t a[128], b[128];
    int na = embed_tokenize(c->e, t, big, a, 128), nb = embed_tokenize(c->e, t, 20000, b, 128);
    assert_int_equal(na, 128);
    assert_int_equal(nb, 128);
    assert_memory_equal(a, b, sizeof a);
    float va[GOLDEN_DIM], vb[GOLDEN_DIM];
    char err[256];
    const char *tp = t;
    size_t l1 = big, l2 = 20000;
    assert_int_equal(embed_batch(c->e, &tp, &l1, 1, va, err, sizeof err), 0);
    assert_int_equal(embed_batch(c->e, &tp, &l2, 1, vb, err, sizeof err), 0);
    assert_memory_equal(va, vb, sizeof va);
    free(t);
}

typedef struct worker {
    ctx *c;
    int first, step, bad;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    float v[3 * GOLDEN_DIM];
    char err[256];
    for (int i = w->first; i + 2 < w->c->n; i += w->step) {
        const char *t[3] = {w->c->rows[i].text, w->c->rows[i + 1].text, w->c->rows[i + 2].text};
        size_t l[3] = {w->c->rows[i].len, w->c->rows[i + 1].len, w->c->rows[i + 2].len};
        if (embed_batch(w->c->e, t, l, 3, v, err, sizeof err)) {
            w->bad++;
            continue;
        }
        for (int k = 0; k < 3; k++) {
            double wc = 1, wa = 0;
            compare(&w->c->rows[i + k], v + k * GOLDEN_DIM, &wc, &wa, i + k);
            if (!(wc >= 0.9999 && wa <= 1e-4)) w->bad++;
        }
    }
    return NULL;
}

static void test_concurrent_callers(void **state) {
    SKIP_WITHOUT_MODEL();
    ctx *c = *state;
    pthread_t th[4];
    worker w[4];
    for (int k = 0; k < 4; k++) {
        w[k] = (worker){.c = c, .first = k, .step = 4, .bad = 0};
        assert_int_equal(pthread_create(&th[k], NULL, run_worker, &w[k]), 0);
    }
    for (int k = 0; k < 4; k++) {
        pthread_join(th[k], NULL);
        assert_int_equal(w[k].bad, 0);
    }
}

/* A copy of the model directory whose model.json has one edge rewired must be refused by name. */
static void test_graph_check_refuses_rewired_model(void **state) {
    SKIP_WITHOUT_MODEL();
    char dir[] = "/tmp/memfuse-use-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char src[1200], dst[1200];
    snprintf(src, sizeof src, "%s/model.json", golden_model_dir());
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    buf[sz] = 0;
    fclose(f);
    /* Make layer 1's FFN ReLU read the pre-bias tensor: the node list then disagrees with the forward pass. */
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    assert_non_null(root);
    const char *relu = "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_1/"
                       "TransformerLayer/FFN/conv1/Relu";
    int rewired = 0;
    const cJSON *nd;
    cJSON_ArrayForEach(nd, cJSON_GetObjectItem(cJSON_GetObjectItem(root, "modelTopology"), "node")) {
        const cJSON *name = cJSON_GetObjectItem(nd, "name");
        if (cJSON_IsString(name) && !strcmp(name->valuestring, relu)) {
            cJSON *in = cJSON_GetObjectItem(nd, "input");
            cJSON_ReplaceItemInArray(in, 0, cJSON_CreateString("module_apply_default/Encoder_en/KonaTransformer/"
                                                               "Encode/TransformerStack/Layer_1/TransformerLayer/"
                                                               "FFN/conv1/Tensordot"));
            rewired = 1;
        }
    }
    assert_true(rewired);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    snprintf(dst, sizeof dst, "%s/model.json", dir);
    f = fopen(dst, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
    char err[512] = "";
    int missing = -1;
    /* the shards are not copied: the walk needs them, so point the loader at links to the originals */
    for (int k = 1; k <= 7; k++) {
        char s1[1200], s2[1200], real[4096];
        snprintf(s1, sizeof s1, "%s/group1-shard%dof7", golden_model_dir(), k);
        snprintf(s2, sizeof s2, "%s/group1-shard%dof7", dir, k);
        assert_non_null(realpath(s1, real));
        assert_int_equal(symlink(real, s2), 0);
    }
    use_model *m = use_model_load(dir, &missing, err, sizeof err);
    assert_null(m);
    assert_int_equal(missing, 0);
    fprintf(stderr, "rewired graph refused: %s\n", err);
    assert_non_null(strstr(err, "Relu"));
    for (int k = 1; k <= 7; k++) {
        char s2[1200];
        snprintf(s2, sizeof s2, "%s/group1-shard%dof7", dir, k);
        remove(s2);
    }
    remove(dst);
    rmdir(dir);
    /* and a missing directory is reported as missing */
    m = use_model_load("/tmp/memfuse-no-such-model-dir", &missing, err, sizeof err);
    assert_null(m);
    assert_int_equal(missing, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_one_by_one),
        cmocka_unit_test(test_golden_batched),
        cmocka_unit_test(test_concurrent_callers),
        cmocka_unit_test(test_huge_text),
        cmocka_unit_test(test_graph_check_refuses_rewired_model),
    };
    return cmocka_run_group_tests_name("embed_use_lite", tests, setup, teardown);
}
