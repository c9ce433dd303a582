/* use_gemm — C = A B + bias for the forward pass: OpenBLAS cblas_sgemm, except for a few rows.
 *
 * Why: OpenBLAS packs the weight matrix on every call, which for a short text (8 rows against a 512x1536
 * weight) costs more than the arithmetic — a single short query spent ~60% of its time in the packing copy.
 * With 2..USE_GEMM_SMALL_M rows, AVX2/FMA kernels read the weights without packing them: 7 or 8 rows as one
 * block of 8 rows x 8 columns (8 accumulators), other counts as 16-column strips of B, each read once and
 * reused by row blocks of 6 (4, 2) rows x 16 columns (12 accumulators, the usual AVX2 micro-tile). Each
 * B[k][n..] is loaded once per block and multiplied by A[r][k] broadcast for every row; rows past M in a
 * block alias the block's last row (computed, never stored). One row goes to OpenBLAS (its gemv path needs
 * no packing); without AVX2/FMA at run time, or with more rows, cblas_sgemm runs as before. Measured on
 * this model's shapes, the kernels beat OpenBLAS by 10-50% up to ~18 rows and tie or lose beyond. Results
 * agree with sgemm to float rounding. */
#include <cblas.h>
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "embed/use_gemm.h"

/* Rows m0.. m0+mr (mr <= 8) of C; a[] has 8 row pointers (extra ones alias the last row). */
__attribute__((target("avx2,fma"))) static void block8(const float *const *a, int mr, const float *B, const float *bias,
                                                         float *C, int K, int N) {
    int n = 0;
    for (; n + 8 <= N; n += 8) {
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
        const float *b = B + n;
        for (int k = 0; k < K; k++, b += N) {
            __m256 bv = _mm256_loadu_ps(b);
            c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[0] + k), bv, c0);
            c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[1] + k), bv, c1);
            c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[2] + k), bv, c2);
            c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[3] + k), bv, c3);
            c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[4] + k), bv, c4);
            c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[5] + k), bv, c5);
            c6 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[6] + k), bv, c6);
            c7 = _mm256_fmadd_ps(_mm256_broadcast_ss(a[7] + k), bv, c7);
        }
        __m256 bb = _mm256_loadu_ps(bias + n);
        __m256 acc[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
        for (int r = 0; r < mr; r++) _mm256_storeu_ps(C + (size_t)r * N + n, _mm256_add_ps(acc[r], bb));
    }
    for (; n < N; n++) /* column tail (not hit by this model's widths) */
        for (int r = 0; r < mr; r++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += a[r][k] * B[(size_t)k * N + n];
            C[(size_t)r * N + n] = s + bias[n];
        }
}

/* MR rows x 16 columns over all of K (2 MR accumulators), for the column tile at n; rows >= mr alias. */
#define USE_GEMM_KERNEL(MR)                                                                                     \
    __attribute__((target("avx2,fma"))) static void tile##MR(const float *const *a, int mr, const float *B,    \
                                                             const float *bias, float *C, int K, int N, int n) { \
        __m256 lo[MR], hi[MR];                                                                                  \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) lo[r] = hi[r] = _mm256_setzero_ps();               \
        const float *b = B + n;                                                                                 \
        for (int k = 0; k < K; k++, b += N) {                                                                   \
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);                                        \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                              \
                __m256 x = _mm256_broadcast_ss(a[r] + k);                                                       \
                lo[r] = _mm256_fmadd_ps(x, b0, lo[r]);                                                          \
                hi[r] = _mm256_fmadd_ps(x, b1, hi[r]);                                                          \
            }                                                                                                   \
        }                                                                                                       \
        __m256 bb0 = _mm256_loadu_ps(bias + n), bb1 = _mm256_loadu_ps(bias + n + 8);                            \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) if (r < mr) {                                      \
            _mm256_storeu_ps(C + (size_t)r * N + n, _mm256_add_ps(lo[r], bb0));                                 \
            _mm256_storeu_ps(C + (size_t)r * N + n + 8, _mm256_add_ps(hi[r], bb1));                             \
        }                                                                                                       \
    }
USE_GEMM_KERNEL(6)
USE_GEMM_KERNEL(4)
USE_GEMM_KERNEL(2)

static void col_tail(const float *const *a, int mr, const float *B, const float *bias, float *C, int K, int N, int n0) {
    for (int n = n0; n < N; n++)
        for (int r = 0; r < mr; r++) {
            float s = 0.0f;
            for (int k = 0; k < K; k++) s += a[r][k] * B[(size_t)k * N + n];
            C[(size_t)r * N + n] = s + bias[n];
        }
}

/* Column tiles outside, row blocks of 6 (then 4 or 2) inside: a 16-column strip of B (K x 64 bytes) is
 * read from memory once and reused from L1/L2 by every row block. */
static void tiles16(const float *A, int lda, const float *B, const float *bias, float *C, int M, int K, int N) {
    int n = 0;
    for (; n + 16 <= N; n += 16)
        for (int m0 = 0; m0 < M;) {
            int left = M - m0, mr = left >= 6 ? 6 : left;
            const float *a[6];
            for (int r = 0; r < 6; r++) a[r] = A + (size_t)(m0 + (r < mr ? r : mr - 1)) * lda;
            float *c = C + (size_t)m0 * N;
            if (mr > 4) tile6(a, mr, B, bias, c, K, N, n);
            else if (mr > 2) tile4(a, mr, B, bias, c, K, N, n);
            else tile2(a, mr, B, bias, c, K, N, n);
            m0 += mr;
        }
    if (n < N)
        for (int m0 = 0; m0 < M; m0++) {
            const float *a = A + (size_t)m0 * lda;
            col_tail(&a, 1, B, bias, C + (size_t)m0 * N, K, N, n);
        }
}

/* 7 or 8 rows: one block of 8 accumulators x 8 columns (block8) beats 6 + 2 rows of tiles16. */
static void small_avx2(const float *A, int lda, const float *B, const float *bias, float *C, int M, int K, int N) {
    if (M < 7 || M > 8) {
        tiles16(A, lda, B, bias, C, M, K, N);
        return;
    }
    const float *a[8];
    for (int r = 0; r < 8; r++) a[r] = A + (size_t)(r < M ? r : M - 1) * lda;
    block8(a, M, B, bias, C, K, N);
}

static int have_avx2_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

void use_gemm_bias(const float *A, int lda, const float *B, const float *bias, float *C, int M, int K, int N) {
    if (M >= 2 && M <= USE_GEMM_SMALL_M && have_avx2_fma()) {
        small_avx2(A, lda, B, bias, C, M, K, N);
        return;
    }
    use_gemm_bias_blas(A, lda, B, bias, C, M, K, N);
}

/* C starts as the bias rows and sgemm adds A B to it (beta = 1): one pass over C instead of sgemm zeroing
 * it (beta = 0) and a second pass adding the bias; the sum is rounded the same way. */
void use_gemm_bias_blas(const float *A, int lda, const float *B, const float *bias, float *C, int M, int K, int N) {
    for (int r = 0; r < M; r++) memcpy(C + (size_t)r * N, bias, (size_t)N * sizeof *C);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, N, 1.0f, C, N);
}

int use_gemm_small_available(void) { return have_avx2_fma(); }
