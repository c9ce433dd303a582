/* The small-row GEMM kernel against OpenBLAS on every row count it takes (2..USE_GEMM_SMALL_M) and past
 * it, with column widths that are and are not multiples of its tiles, and a leading dimension wider than K. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "embed/use_gemm.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_small_kernel_matches_blas)};
    return cmocka_run_group_tests_name("embed_gemm", tests, NULL, NULL);
}
