/* use_forward — the forward pass of Universal Sentence Encoder lite over a batch of tokenized texts (see
 * use_model.h for the math and why texts are packed). Every projection is one cblas_sgemm over all rows
 * of the batch (or, for a batch of a few tokens, one pass of use_gemm.c's streaming kernel); attention is two small sgemms per text and head on views of the packed q|k|v matrix.
 * Element-wise work (layer norm, residual adds, ReLU) is in use_vec.c (AVX2 when the CPU has it); softmax
 * is plain C. Together they are a few percent of the time. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed/use_gemm.h"
#include "embed/use_model.h"
#include "embed/use_vec.h"

void use_scratch_free(use_scratch *s) {
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

static int scratch_reserve(use_scratch *s, size_t floats) {
    if (floats <= s->cap) return 0;
    size_t bytes = ((floats * sizeof(float)) + 63) & ~(size_t)63;
    float *nb = aligned_alloc(64, bytes);
    if (!nb) return -1;
    free(s->buf);
    s->buf = nb;
    s->cap = bytes / sizeof(float);
    return 0;
}

/* C[rows, n] = A[rows, k] B[k, n] + bias: OpenBLAS, or the small-row kernel (use_gemm.c). */
static void linear(const float *A, int lda, const float *B, const float *bias, float *C, int rows, int k, int n) {
    use_gemm_bias(A, lda, B, bias, C, rows, k, n);
}

static void softmax_rows(float *S, int n) {
    for (int r = 0; r < n; r++) {
        float *s = S + (size_t)r * n;
        float mx = s[0];
        for (int j = 1; j < n; j++) mx = s[j] > mx ? s[j] : mx;
        float sum = 0.0f;
        for (int j = 0; j < n; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j < n; j++) s[j] *= inv;
    }
}

static void attention(const use_layer *ly, const float *QKV, float *A, float *S, const int *row0, const int *ntok,
                      int n) {
    int da = ly->d_att, hd = ly->head_dim, ld = 3 * da;
    for (int i = 0; i < n; i++) {
        int len = ntok[i];
        if (len == 0) continue;
        const float *base = QKV + (size_t)row0[i] * ld;
        for (int h = 0; h < ly->heads; h++) {
            const float *q = base + h * hd, *k = base + da + h * hd, *v = base + 2 * da + h * hd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, len, len, hd, 1.0f, q, ld, k, ld, 0.0f, S, len);
            softmax_rows(S, len);
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, len, hd, len, 1.0f, S, len, v, ld, 0.0f,
                        A + (size_t)row0[i] * da + h * hd, da);
        }
    }
}

double use_forward_flops(const use_model *m, const int *ntok, int n) {
    double T = 0, att = 0;
    for (int i = 0; i < n; i++) T += ntok[i];
    double f = 0;
    for (int l = 0; l < m->nlayers; l++) {
        const use_layer *ly = &m->layer[l];
        double per_tok = (double)ly->d_in * 3 * ly->d_att + (double)ly->d_att * ly->d_model +
                         (double)ly->d_model * ly->d_ff * 2 + (ly->w_res ? (double)ly->d_in * ly->d_model : 0);
        f += 2 * T * per_tok;
        for (int i = 0; i < n; i++) att += 2.0 * 2.0 * (double)ntok[i] * ntok[i] * ly->d_att;
    }
    return f + att + 2.0 * n * (double)m->layer[m->nlayers - 1].d_model * m->d_out;
}

int use_forward(const use_model *m, use_scratch *s, const int32_t *ids, const int *off, const int *ntok, int n,
                float *out) {
    if (n <= 0) return 0;
    int T = 0, dmax = m->d_emb, qmax = 0, amax = 0, fmax = 0;
    for (int i = 0; i < n; i++) {
        if (ntok[i] < 0 || ntok[i] > m->max_len) return -1;
        for (int k = 0; k < ntok[i]; k++)
            if (ids[off[i] + k] < 0 || ids[off[i] + k] >= m->vocab) return -1;
        T += ntok[i];
    }
    for (int l = 0; l < m->nlayers; l++) {
        const use_layer *ly = &m->layer[l];
        if (ly->d_model > dmax) dmax = ly->d_model;
        if (3 * ly->d_att > qmax) qmax = 3 * ly->d_att;
        if (ly->d_att > amax) amax = ly->d_att;
        int f = ly->d_ff > ly->d_model ? ly->d_ff : ly->d_model;
        if (f > fmax) fmax = f;
    }
    int dfin = m->layer[m->nlayers - 1].d_model;
    size_t rows = (size_t)(T ? T : 1);
    size_t need = rows * (size_t)(3 * dmax + qmax + amax + fmax) + (size_t)m->max_len * m->max_len +
                  (size_t)n * (size_t)(dfin + 1) + (size_t)n * 2 + 64;
    if (scratch_reserve(s, need)) return -1;
    float *X = s->buf, *Y = X + rows * dmax, *H = Y + rows * dmax, *QKV = H + rows * dmax, *A = QKV + rows * qmax,
          *F = A + rows * amax, *S = F + rows * fmax, *P = S + (size_t)m->max_len * m->max_len;
    int *row0 = (int *)(P + (size_t)n * dfin);
    /* x = E[id] + (E[id] + timing[pos]) */
    int r = 0;
    for (int i = 0; i < n; i++) {
        row0[i] = r;
        for (int p = 0; p < ntok[i]; p++, r++) {
            const float *e = m->emb + (size_t)ids[off[i] + p] * m->d_emb, *t = m->timing + (size_t)p * m->d_emb;
            use_vec_embed(X + (size_t)r * m->d_emb, e, t, (size_t)m->d_emb);
        }
    }
    int d = m->d_emb;
    for (int l = 0; l < m->nlayers && T > 0; l++) {
        const use_layer *ly = &m->layer[l];
        int dm = ly->d_model;
        use_vec_layer_norm(X, Y, T, d, ly->ln_s, ly->ln_b, ly->ln_eps);
        linear(Y, d, ly->w_qkv, ly->b_qkv, QKV, T, d, 3 * ly->d_att);
        for (int t = 0; t < T; t++) use_vec_scale(QKV + (size_t)t * 3 * ly->d_att, ly->q_scale, (size_t)ly->d_att);
        attention(ly, QKV, A, S, row0, ntok, n);
        linear(A, ly->d_att, ly->w_o, ly->b_o, H, T, ly->d_att, dm);
        if (ly->w_res) {
            linear(X, d, ly->w_res, ly->b_res, F, T, d, dm);
            use_vec_add(H, F, (size_t)T * dm);
        } else {
            use_vec_add(H, X, (size_t)T * dm);
        }
        use_vec_layer_norm(H, Y, T, dm, ly->ffn_ln_s, ly->ffn_ln_b, ly->ffn_ln_eps);
        linear(Y, dm, ly->w1, ly->b1, F, T, dm, ly->d_ff);
        use_vec_relu(F, (size_t)T * ly->d_ff);
        linear(F, ly->d_ff, ly->w2, ly->b2, X, T, ly->d_ff, dm);
        use_vec_add(X, H, (size_t)T * dm);
        d = dm;
    }
    /* Mean over each text's rows (count max(n, 1): an empty text pools to zeros). */
    for (int i = 0; i < n; i++) {
        float *p = P + (size_t)i * dfin;
        memset(p, 0, (size_t)dfin * sizeof *p);
        for (int k = 0; k < ntok[i]; k++) {
            use_vec_add(p, X + (size_t)(row0[i] + k) * dfin, (size_t)dfin);
        }
        float cnt = (float)(ntok[i] > 1 ? ntok[i] : 1);
        for (int j = 0; j < dfin; j++) p[j] /= cnt;
    }
    linear(P, dfin, m->w_out, m->b_out, out, n, dfin, m->d_out);
    for (int i = 0; i < n; i++) {
        float *o = out + (size_t)i * m->d_out;
        float ss = 0.0f;
        for (int j = 0; j < m->d_out; j++) {
            o[j] = tanhf(o[j]);
            ss += o[j] * o[j];
        }
        float inv = 1.0f / sqrtf(ss > m->l2_eps ? ss : m->l2_eps);
        for (int j = 0; j < m->d_out; j++) o[j] *= inv;
    }
    return 0;
}
