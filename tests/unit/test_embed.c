/* The embedder interface: flag/env configuration, the hash embedder's promises (deterministic, unit norm,
 * lexical similarity, case and NFKC folding, pinned values so stored vectors stay valid), the use-lite ->
 * hash fallback, argument checks, and `memfuse embed` output. */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "embed/embed.h"
#include "embed/embed_cli.h"
#include "util/log.h"

static void test_config_args(void **state) {
    (void)state;
    embed_config cfg;
    embed_config_default(&cfg);
    assert_int_equal(cfg.kind, EMBED_USE_LITE);
    assert_string_equal(cfg.model_dir, "./models/use-lite");
    char a0[] = "serve", a1[] = "--port", a2[] = "8080", a3[] = "--embedder", a4[] = "remote", a5[] = "--embed-url=http://h:1",
         a6[] = "--embed-model", a7[] = "m1", a8[] = "--embed-api-key", a9[] = "k", a10[] = "--model-dir", a11[] = "/x",
         a12[] = "--embed-dim=3", a13[] = "text", a14[] = "--embed-timeout-ms", a15[] = "50";
    char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, NULL};
    int argc = 16;
    char err[256] = "";
    assert_int_equal(embed_config_from_args(&cfg, &argc, argv, err, sizeof err), 0);
    assert_int_equal(argc, 4); /* serve --port 8080 text */
    assert_string_equal(argv[1], "--port");
    assert_string_equal(argv[2], "8080");
    assert_string_equal(argv[3], "text");
    assert_null(argv[4]);
    assert_int_equal(cfg.kind, EMBED_REMOTE);
    assert_string_equal(cfg.url, "http://h:1");
    assert_string_equal(cfg.model, "m1");
    assert_string_equal(cfg.api_key, "k");
    assert_string_equal(cfg.model_dir, "/x");
    assert_int_equal(cfg.dim, 3);
    assert_int_equal(cfg.timeout_ms, 50);

    char b0[] = "x", b1[] = "--embedder", b2[] = "nope";
    char *bad1[] = {b0, b1, b2, NULL};
    argc = 3;
    assert_int_equal(embed_config_from_args(&cfg, &argc, bad1, err, sizeof err), -1);
    assert_non_null(strstr(err, "nope"));
    char c1[] = "--model-dir";
    char *bad2[] = {b0, c1, NULL};
    argc = 2;
    assert_int_equal(embed_config_from_args(&cfg, &argc, bad2, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs a value"));
    char d1[] = "--embed-dim=-4";
    char *bad3[] = {b0, d1, NULL};
    argc = 2;
    assert_int_equal(embed_config_from_args(&cfg, &argc, bad3, err, sizeof err), -1);
}

static void test_config_env(void **state) {
    (void)state;
    embed_config cfg;
    embed_config_default(&cfg);
    char err[256];
    setenv("MEMFUSE_EMBEDDER", "hash", 1);
    setenv("MEMFUSE_MODEL_DIR", "/models/x", 1);
    setenv("MEMFUSE_EMBED_URL", "http://e", 1);
    setenv("MEMFUSE_EMBED_MODEL", "em", 1);
    setenv("MEMFUSE_EMBED_API_KEY", "sk", 1);
    assert_int_equal(embed_config_from_env(&cfg, err, sizeof err), 0);
    assert_int_equal(cfg.kind, EMBED_HASH);
    assert_string_equal(cfg.model_dir, "/models/x");
    assert_string_equal(cfg.url, "http://e");
    assert_string_equal(cfg.model, "em");
    assert_string_equal(cfg.api_key, "sk");
    setenv("MEMFUSE_EMBEDDER", "bogus", 1);
    assert_int_equal(embed_config_from_env(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "MEMFUSE_EMBEDDER"));
    unsetenv("MEMFUSE_EMBEDDER");
    unsetenv("MEMFUSE_MODEL_DIR");
    unsetenv("MEMFUSE_EMBED_URL");
    unsetenv("MEMFUSE_EMBED_MODEL");
    unsetenv("MEMFUSE_EMBED_API_KEY");
}

static embedder *open_hash(void) {
    embed_config cfg;
    embed_config_default(&cfg);
    cfg.kind = EMBED_HASH;
    char err[256];
    embedder *e = embed_open(&cfg, err, sizeof err);
    assert_non_null(e);
    return e;
}

static void embed1(embedder *e, const char *t, size_t len, float *v) {
    char err[256];
    assert_int_equal(embed_batch(e, &t, &len, 1, v, err, sizeof err), 0);
}

static double cosine(const float *a, const float *b, int d) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)a[i] * b[i];
    return s;
}

static void test_hash_embedder(void **state) {
    (void)state;
    embedder *e = open_hash();
    assert_int_equal(embed_dim(e), 512);
    assert_string_equal(embed_model_id(e), "hash-v1-512");
    float a[512], b[512], c[512], d[512];
    const char *s1 = "the cat sat on the mat", *s2 = "The cat sat on a mat!", *s3 = "quantum chromodynamics lecture";
    embed1(e, s1, strlen(s1), a);
    embed1(e, s2, strlen(s2), b);
    embed1(e, s3, strlen(s3), c);
    embed1(e, s1, strlen(s1), d);
    assert_memory_equal(a, d, sizeof a); /* deterministic */
    assert_true(fabs(cosine(a, a, 512) - 1) < 1e-5);
    assert_true(cosine(a, b, 512) > 0.5);
    assert_true(cosine(a, c, 512) < 0.2);
    assert_true(cosine(a, b, 512) > cosine(a, c, 512) + 0.3);
    /* case and NFKC folding: "Ｆｉｌｅ" (fullwidth) and "FILE" read as "file"; "ﬁle" too */
    embed1(e, "file", 4, a);
    embed1(e, "FILE", 4, b);
    embed1(e, "\xef\xbc\xa6\xef\xbd\x89\xef\xbd\x8c\xef\xbd\x85", 12, c);
    embed1(e, "\xef\xac\x81le", 5, d);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_equal(a, c, sizeof a);
    assert_memory_equal(a, d, sizeof a);
    /* empty, white space only, and ill-formed bytes: unit vectors, no failure */
    const char *odd[] = {"", "   \t\n", "\xff\xfe\xfd", "!!!"};
    for (int i = 0; i < 4; i++) {
        embed1(e, odd[i], strlen(odd[i]), a);
        assert_true(fabs(cosine(a, a, 512) - 1) < 1e-5);
    }
    /* a 1 MB text is read up to its last space before 256 KB: the vector of that prefix, no failure */
    size_t big = 1u << 20;
    char *t = malloc(big);
    for (size_t i = 0; i < big; i++) t[i] = (i % 7 == 6) ? ' ' : (char)('a' + (i * 31 % 26));
    size_t cut = 256u << 10;
    while (t[cut] != ' ') cut--;
    embed1(e, t, big, a);
    embed1(e, t, cut, b);
    assert_memory_equal(a, b, sizeof a);
    embed1(e, t, cut - 2, b); /* while a prefix that cuts a word differs */
    assert_memory_not_equal(a, b, sizeof a);
    free(t);
    /* Pinned values: stored vectors depend on them; change the model id if this must change. */
    embed1(e, "hello world", 11, a);
    int nz = 0, arg = 0;
    for (int i = 0; i < 512; i++) {
        if (a[i] != 0) nz++;
        if (fabsf(a[i]) > fabsf(a[arg])) arg = i;
    }
    fprintf(stderr, "hash(\"hello world\"): %d non-zero, largest a[%d] = %.7f\n", nz, arg, a[arg]);
    assert_int_equal(nz, 26);
    assert_int_equal(arg, 178);
    assert_float_equal(a[arg], 0.3535534f, 1e-6);
    embed_close(e);
}

static void test_fallback_and_args(void **state) {
    (void)state;
    embed_config cfg;
    embed_config_default(&cfg);
    snprintf(cfg.model_dir, sizeof cfg.model_dir, "/tmp/memfuse-no-model-here");
    char err[512] = "";
    embedder *e = embed_open(&cfg, err, sizeof err); /* falls back, with a warning in the log */
    assert_non_null(e);
    assert_int_equal(embed_get_kind(e), EMBED_HASH);
    assert_int_equal(embed_tokenize(e, "abc", 3, NULL, 0), 0);
    float v[512];
    assert_int_equal(embed_batch(e, NULL, NULL, 0, v, err, sizeof err), 0);
    const char *nul = NULL;
    size_t one = 1;
    assert_int_equal(embed_batch(e, &nul, &one, 1, v, err, sizeof err), -1);
    assert_int_equal(embed_batch(e, &nul, &one, -1, v, err, sizeof err), -1);
    embed_close(e);
    cfg.allow_fallback = 0;
    assert_null(embed_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "/tmp/memfuse-no-model-here"));
}

/* Runs embed_cli_main with stdout (and optionally stdin) redirected; returns the exit code and output. */
static int run_cli(char **argv, int argc, const char *input, char *out, size_t cap) {
    char path[] = "/tmp/memfuse-cli-XXXXXX", inpath[] = "/tmp/memfuse-cli-in-XXXXXX";
    int fd = mkstemp(path), saved = dup(1), saved_in = -1, in = -1;
    fflush(stdout);
    dup2(fd, 1);
    if (input) {
        in = mkstemp(inpath);
        assert_int_equal(write(in, input, strlen(input)), (ssize_t)strlen(input));
        lseek(in, 0, SEEK_SET);
        saved_in = dup(0);
        dup2(in, 0);
        clearerr(stdin);
    }
    int rc = embed_cli_main(argc, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    if (input) {
        dup2(saved_in, 0);
        close(saved_in);
        close(in);
        unlink(inpath);
        clearerr(stdin);
    }
    lseek(fd, 0, SEEK_SET);
    ssize_t k = read(fd, out, cap - 1);
    out[k > 0 ? k : 0] = 0;
    close(fd);
    unlink(path);
    return rc;
}

static void test_cli(void **state) {
    (void)state;
    static char out[1 << 20];
    char a0[] = "embed", a1[] = "--embedder", a2[] = "hash", a3[] = "first text", a4[] = "quote \" and \xff byte";
    char *argv[] = {a0, a1, a2, a3, a4, NULL};
    assert_int_equal(run_cli(argv, 5, NULL, out, sizeof out), 0);
    /* two lines, each a JSON object with text, tokens and a 512-float unit vector */
    char *line = out, *nl;
    int lines = 0;
    while ((nl = strchr(line, '\n'))) {
        *nl = 0;
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_true(cJSON_IsString(cJSON_GetObjectItem(o, "text")));
        assert_true(cJSON_IsArray(cJSON_GetObjectItem(o, "tokens")));
        const cJSON *vec = cJSON_GetObjectItem(o, "vector");
        assert_int_equal(cJSON_GetArraySize(vec), 512);
        double ss = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, vec) ss += x->valuedouble * x->valuedouble;
        assert_true(fabs(ss - 1) < 1e-5);
        if (lines == 0) assert_string_equal(cJSON_GetObjectItem(o, "text")->valuestring, "first text");
        if (lines == 1) assert_string_equal(cJSON_GetObjectItem(o, "text")->valuestring, "quote \" and \xef\xbf\xbd byte");
        cJSON_Delete(o);
        lines++;
        line = nl + 1;
    }
    assert_int_equal(lines, 2);
    /* standard input: one text per line, \r\n tolerated, empty lines are (empty) texts */
    char *argv2[] = {a0, a1, a2, NULL};
    assert_int_equal(run_cli(argv2, 3, "one\r\ntwo\n\nfour", out, sizeof out), 0);
    lines = 0;
    for (char *p = out; (p = strchr(p, '\n')); p++) lines++;
    assert_int_equal(lines, 4);
    assert_non_null(strstr(out, "{\"text\": \"one\", \"tokens\": []"));
    assert_non_null(strstr(out, "{\"text\": \"\", "));
    /* usage errors */
    char b1[] = "--bogus";
    char *argv3[] = {a0, b1, NULL};
    assert_int_equal(run_cli(argv3, 2, NULL, out, sizeof out), 2);
    char c2[] = "--batch", c3[] = "0";
    char *argv4[] = {a0, a1, a2, c2, c3, NULL};
    assert_int_equal(run_cli(argv4, 5, NULL, out, sizeof out), 2);
}

int main(void) {
    log_init(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_args),  cmocka_unit_test(test_config_env), cmocka_unit_test(test_hash_embedder),
        cmocka_unit_test(test_fallback_and_args), cmocka_unit_test(test_cli),
    };
    return cmocka_run_group_tests_name("embed", tests, NULL, NULL);
}
