/* The forward pass's kernels: the small-row GEMM kernel against OpenBLAS on every row count it takes
 * (2..USE_GEMM_SMALL_M) and past it, with column widths that are and are not multiples of its tiles and a
 * leading dimension wider than K; the element-wise kernels against plain double-precision arithmetic, on
 * widths with and without a tail. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "embed/use_gemm.h"
#include "embed/use_vec.h"

static void check(int M, int K, int N, int lda) {
    float *A = malloc(sizeof(float) * (size_t)M * lda), *B = malloc(sizeof(float) * (size_t)K * N),
          *bias = malloc(sizeof(float) * (size_t)N), *C1 = malloc(sizeof(float) * (size_t)M * N),
          *C2 = malloc(sizeof(float) * (size_t)M * N);
    for (int i = 0; i < M * lda; i++) A[i] = sinf((float)i * 0.37f);
    for (int i = 0; i < K * N; i++) B[i] = cosf((float)i * 0.11f) * 0.1f;
    for (int i = 0; i < N; i++) bias[i] = (float)i * 0.01f;
    for (int i = 0; i < M * N; i++) C1[i] = C2[i] = NAN; /* every output must be written */
    use_gemm_bias(A, lda, B, bias, C1, M, K, N);
    use_gemm_bias_blas(A, lda, B, bias, C2, M, K, N);
    double worst = 0;
    for (int i = 0; i < M * N; i++) {
        assert_false(isnan(C1[i]));
        double d = fabs((double)C1[i] - C2[i]) / (1.0 + fabs((double)C2[i]));
        if (d > worst) worst = d;
    }
    if (worst > 1e-5) fail_msg("M=%d K=%d N=%d lda=%d: relative difference %g", M, K, N, lda, worst);
    free(A);
    free(B);
    free(bias);
    free(C1);
    free(C2);
}

static void test_small_kernel_matches_blas(void **state) {
    (void)state;
    for (int M = 1; M <= USE_GEMM_SMALL_M + 3; M++) {
        check(M, 256, 768, 256);
        check(M, 64, 40, 70); /* column tail (40 = 2*16 + 8), lda > K */
        check(M, 33, 7, 33);  /* narrower than one tile */
    }
}

static void test_vec_kernels(void **state) {
    (void)state;
    int widths[] = {1, 7, 8, 13, 256, 512, 515};
    for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++) {
        int d = widths[w], rows = 3;
        float *x = malloc(sizeof(float) * (size_t)(rows * d)), *y = malloc(sizeof(float) * (size_t)(rows * d)),
              *sc = malloc(sizeof(float) * (size_t)d), *bi = malloc(sizeof(float) * (size_t)d), *z = malloc(sizeof(float) * (size_t)d);
        for (int i = 0; i < rows * d; i++) x[i] = sinf((float)i) * 3.0f + 0.5f;
        for (int j = 0; j < d; j++) sc[j] = 1.0f + 0.01f * (float)j, bi[j] = -0.2f * (float)(j % 5);
        use_vec_layer_norm(x, y, rows, d, sc, bi, 1e-6f);
        for (int r = 0; r < rows; r++) {
            double mean = 0, var = 0;
            for (int j = 0; j < d; j++) mean += x[r * d + j];
            mean /= d;
            for (int j = 0; j < d; j++) var += (x[r * d + j] - mean) * (x[r * d + j] - mean);
            var /= d;
            for (int j = 0; j < d; j++) {
                double want = sc[j] * (x[r * d + j] - mean) / sqrt(var + 1e-6) + bi[j];
                if (fabs(want - y[r * d + j]) > 1e-4 * (1 + fabs(want))) fail_msg("layer norm d=%d j=%d: %g vs %g", d, j, y[r * d + j], want);
            }
        }
        for (int j = 0; j < d; j++) z[j] = x[j];
        use_vec_add(z, x + d, (size_t)d);
        for (int j = 0; j < d; j++) assert_float_equal(z[j], x[j] + x[d + j], 0);
        use_vec_relu(z, (size_t)d);
        for (int j = 0; j < d; j++) assert_true(z[j] >= 0 && (z[j] == 0 || z[j] == x[j] + x[d + j]));
        for (int j = 0; j < d; j++) z[j] = x[j];
        use_vec_scale(z, 0.125f, (size_t)d);
        for (int j = 0; j < d; j++) assert_float_equal(z[j], x[j] * 0.125f, 0);
        use_vec_embed(z, x, x + d, (size_t)d);
        for (int j = 0; j < d; j++) assert_float_equal(z[j], x[j] + (x[j] + x[d + j]), 0);
        free(x);
        free(y);
        free(sc);
        free(bi);
        free(z);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_small_kernel_matches_blas), cmocka_unit_test(test_vec_kernels)};
    return cmocka_run_group_tests_name("embed_gemm", tests, NULL, NULL);
}
