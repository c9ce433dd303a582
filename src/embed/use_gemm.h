/* use_gemm — the forward pass's matrix product with bias, C[M,N] = A[M,K] B[K,N] + bias[N] (row-major,
 * B and C with leading dimension N). Few rows go to an AVX2/FMA streaming kernel (no packing of B), more
 * rows to OpenBLAS cblas_sgemm; see use_gemm.c. Pure functions: safe from any thread. */
#ifndef MEMFUSE_USE_GEMM_H
#define MEMFUSE_USE_GEMM_H

#ifndef USE_GEMM_SMALL_M
#define USE_GEMM_SMALL_M 18
#endif

void use_gemm_bias(const float *A, int lda, const float *B, const float *bias, float *C, int M, int K, int N);
/* Always cblas_sgemm (for tests and benchmarks of the two paths). */
void use_gemm_bias_blas(const float *A, int lda, const float *B, const float *bias, float *C, int M, int K, int N);
/* 1 if this CPU runs the small-M kernel. */
int use_gemm_small_available(void);

#endif
