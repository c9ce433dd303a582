/* use_vec — the forward pass's element-wise kernels (layer norm, residual add, ReLU, scaling, the
 * embedding + timing sum), each with an AVX2/FMA body chosen at run time (__builtin_cpu_supports) and a
 * portable C body otherwise. Vector bodies sum in 8 lanes, so results differ from the scalar ones only
 * by float rounding. Pure functions: safe from any thread. */
#ifndef MEMFUSE_USE_VEC_H
#define MEMFUSE_USE_VEC_H

#include <stddef.h>

/* y[r] = scale * (x[r] - mean) / sqrt(var + eps) + bias for each of `rows` rows of width d. */
void use_vec_layer_norm(const float *x, float *y, int rows, int d, const float *scale, const float *bias, float eps);
void use_vec_add(float *x, const float *y, size_t n);  /* x += y */
void use_vec_relu(float *x, size_t n);                 /* x = max(x, 0) */
void use_vec_scale(float *x, float s, size_t n);       /* x *= s */
void use_vec_embed(float *x, const float *e, const float *t, size_t n); /* x = e + (e + t) */

#endif
