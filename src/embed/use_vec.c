/* use_vec — see use_vec.h. */
#include "embed/use_vec.h"

#include <immintrin.h>
#include <math.h>

static int have_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

__attribute__((target("avx2,fma"))) static float hsum(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) static void ln_avx2(const float *X, float *Y, int rows, int d, const float *scale,
                                                          const float *bias, float eps) {
    for (int r = 0; r < rows; r++) {
        const float *x = X + (size_t)r * d;
        float *y = Y + (size_t)r * d;
        __m256 s = _mm256_setzero_ps();
        int j = 0;
        for (; j + 8 <= d; j += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + j));
        float sum = hsum(s);
        for (; j < d; j++) sum += x[j];
        float mean = sum / (float)d;
        __m256 m = _mm256_set1_ps(mean), v = _mm256_setzero_ps();
        for (j = 0; j + 8 <= d; j += 8) {
            __m256 c = _mm256_sub_ps(_mm256_loadu_ps(x + j), m);
            v = _mm256_fmadd_ps(c, c, v);
        }
        float var = hsum(v);
        for (; j < d; j++) var += (x[j] - mean) * (x[j] - mean);
        var /= (float)d;
        float rs = 1.0f / sqrtf(var + eps);
        __m256 rsv = _mm256_set1_ps(rs);
        for (j = 0; j + 8 <= d; j += 8) {
            __m256 k = _mm256_mul_ps(_mm256_loadu_ps(scale + j), rsv);
            __m256 c = _mm256_sub_ps(_mm256_loadu_ps(x + j), m);
            _mm256_storeu_ps(y + j, _mm256_fmadd_ps(k, c, _mm256_loadu_ps(bias + j)));
        }
        for (; j < d; j++) y[j] = (scale[j] * rs) * (x[j] - mean) + bias[j];
    }
}

void use_vec_layer_norm(const float *X, float *Y, int rows, int d, const float *scale, const float *bias, float eps) {
    if (have_avx2()) {
        ln_avx2(X, Y, rows, d, scale, bias, eps);
        return;
    }
    for (int r = 0; r < rows; r++) {
        const float *x = X + (size_t)r * d;
        float *y = Y + (size_t)r * d;
        float sum = 0.0f;
        for (int j = 0; j < d; j++) sum += x[j];
        float mean = sum / (float)d, var = 0.0f;
        for (int j = 0; j < d; j++) var += (x[j] - mean) * (x[j] - mean);
        var /= (float)d;
        float rs = 1.0f / sqrtf(var + eps);
        for (int j = 0; j < d; j++) y[j] = (scale[j] * rs) * (x[j] - mean) + bias[j];
    }
}

__attribute__((target("avx2,fma"))) static void add_avx2(float *x, const float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) x[i] += y[i];
}

void use_vec_add(float *x, const float *y, size_t n) {
    if (have_avx2()) {
        add_avx2(x, y, n);
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

__attribute__((target("avx2,fma"))) static void relu_avx2(float *x, size_t n) {
    __m256 z = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_max_ps(_mm256_loadu_ps(x + i), z));
    for (; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void use_vec_relu(float *x, size_t n) {
    if (have_avx2()) {
        relu_avx2(x, n);
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__attribute__((target("avx2,fma"))) static void scale_avx2(float *x, float s, size_t n) {
    __m256 sv = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), sv));
    for (; i < n; i++) x[i] *= s;
}

void use_vec_scale(float *x, float s, size_t n) {
    if (have_avx2()) {
        scale_avx2(x, s, n);
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

__attribute__((target("avx2,fma"))) static void embed_avx2(float *x, const float *e, const float *t, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 ev = _mm256_loadu_ps(e + i);
        _mm256_storeu_ps(x + i, _mm256_add_ps(ev, _mm256_add_ps(ev, _mm256_loadu_ps(t + i))));
    }
    for (; i < n; i++) x[i] = e[i] + (e[i] + t[i]);
}

void use_vec_embed(float *x, const float *e, const float *t, size_t n) {
    if (have_avx2()) {
        embed_avx2(x, e, t, n);
        return;
    }
    for (size_t i = 0; i < n; i++) x[i] = e[i] + (e[i] + t[i]);
}
