/* use_model — Universal Sentence Encoder lite: its weights, read off the tfjs graph (model.json), and
 * its forward pass.
 *
 * Owns: one 64-byte-aligned buffer holding every weight tensor of the manifest, read once at load (one
 * read per shard file) and never written after; the tensors the forward pass uses point into it. A
 * use_model is immutable after use_model_load(), so any number of threads may run use_forward() on it
 * at once, each with its own use_scratch. use_model_free() frees it.
 *
 * The loader does not assume the wiring: it finds each weight by following the graph from named nodes
 * (e.g. the kernel is input 1 of ".../qkv_transform_single/Conv2D"), reads every constant it needs (layer
 * norm epsilon, attention scale, head count and size, the 128-position limit, the L2 epsilon) from the
 * graph, and checks the ops and edges that the forward pass implements; a graph that differs is refused
 * with the name of the first node that does not match.
 *
 * Forward pass, as the graph computes it for each text of n <= 128 tokens (rows are tokens):
 *   x   = E[id] + (E[id] + timing[pos])             (AddTimingSignal adds onto the gathered embedding and
 *                                                    Layer_0/add adds the embedding again)
 *   layer 0 (256 -> 512), layer 1 (512 -> 512), each:
 *     a = MHA(LN(x)) ; h = a + R(x) ; y = FFN(LN(h)) + h   with R = dense 256->512 in layer 0, identity in 1
 *     MHA: qkv = LN(x) W + b, split q|k|v, H heads, q *= scale, softmax(q k^T over the text's own tokens)
 *          v, heads concatenated, then W_o + b_o;  FFN: relu(z W1 + b1) W2 + b2
 *   pooled = sum of the text's rows / max(n, 1) ; out = tanh(pooled W + b) ; out /= sqrt(max(|out|^2, eps))
 * Texts are packed: the rows of all texts of a call are one matrix, so every projection is one
 * cblas_sgemm over all tokens of the batch (no padding rows are computed); attention runs per text and
 * head on the packed rows, which is the graph's padding mask (-1e9 on other positions) made exact. */
#ifndef MEMFUSE_USE_MODEL_H
#define MEMFUSE_USE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define USE_MAX_LAYERS 4

typedef struct use_layer {
    int d_in, d_model, d_att, heads, head_dim, d_ff;
    float q_scale, ln_eps, ffn_ln_eps;
    const float *ln_s, *ln_b;        /* [d_in] */
    const float *w_qkv, *b_qkv;      /* [d_in, 3 d_att], [3 d_att] */
    const float *w_o, *b_o;          /* [d_att, d_model] */
    const float *w_res, *b_res;      /* [d_in, d_model] or NULL for the identity */
    const float *ffn_ln_s, *ffn_ln_b; /* [d_model] */
    const float *w1, *b1;            /* [d_model, d_ff] */
    const float *w2, *b2;            /* [d_ff, d_model] */
} use_layer;

typedef struct use_model {
    void *blob;
    size_t blob_bytes;
    int vocab, d_emb, max_len, d_out, nlayers;
    const float *emb;   /* [vocab, d_emb] */
    float *timing;      /* [max_len, d_emb]: sin | cos of position * inverse timescale */
    use_layer layer[USE_MAX_LAYERS];
    const float *w_out, *b_out; /* [d_model, d_out] */
    float l2_eps;
} use_model;

/* Per-caller working memory for use_forward; grows on demand, reused across calls. */
typedef struct use_scratch {
    float *buf;
    size_t cap; /* floats */
} use_scratch;

/* Loads dir/model.json and its shards. Returns NULL with err filled; *missing = 1 if model.json is absent. */
use_model *use_model_load(const char *dir, int *missing, char *err, size_t errlen);
void use_model_free(use_model *m);

/* Embeds n texts given as token ids: text i has ntok[i] ids (each < vocab, ntok[i] <= max_len; 0 allowed)
 * at ids[off[i] .. off[i] + ntok[i]). Writes n rows of d_out floats, L2-normalised. Returns 0 or -1 (out of
 * memory or bad ids). */
int use_forward(const use_model *m, use_scratch *s, const int32_t *ids, const int *off, const int *ntok, int n,
                float *out);
/* Floating-point operations of use_forward for texts of these lengths (matrix products, 2 per multiply-add). */
double use_forward_flops(const use_model *m, const int *ntok, int n);
void use_scratch_free(use_scratch *s);

#endif
