/* use_model — loading Universal Sentence Encoder lite from a tfjs graph model (see use_model.h).
 *
 * model.json holds modelTopology.node (the TensorFlow graph: name, op, inputs) and weightsManifest (groups
 * of shard files; the tensors, in order, are packed back to back across the group's shards). All shards are
 * read into one buffer; a Const node's value is the manifest tensor of the same name. The loader then
 * walks the graph from the node names of the Kona transformer and checks every op and edge the forward pass
 * relies on, taking weights and constants from where the graph says they are. */
#include "embed/use_model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KT "module_apply_default/Encoder_en/KonaTransformer/"
#define TS KT "Encode/TransformerStack/"
#define HL "module_apply_default/Encoder_en/hidden_layers/"

typedef struct tensor {
    const char *name; /* points into the parsed JSON */
    int ndim, shape[4];
    int is_float;
    size_t offset, count;
} tensor;

typedef struct loader {
    cJSON *root;
    const cJSON *nodes;
    tensor *t;
    int nt;
    unsigned char *blob;
    char *err;
    size_t errlen;
    char names[8][320]; /* ring of formatted node names */
    int ring;
} loader;

static int fail(loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(loader *L, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err, L->errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *nm(loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *nm(loader *L, const char *fmt, ...) {
    char *b = L->names[L->ring++ & 7];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof L->names[0], fmt, ap);
    va_end(ap);
    return b;
}

/* dst = a + b; names here are at most ~200 bytes, so a cut (which would only make a lookup fail) cannot
 * happen with the 320-byte buffers used. */
static void join(char *dst, size_t cap, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb >= cap) {
        dst[0] = 0;
        return;
    }
    memmove(dst, a, la);
    memmove(dst + la, b, lb + 1);
}

static const cJSON *node(loader *L, const char *name) {
    const cJSON *n;
    cJSON_ArrayForEach(n, L->nodes) {
        const cJSON *nn = cJSON_GetObjectItem(n, "name");
        if (cJSON_IsString(nn) && !strcmp(nn->valuestring, name)) return n;
    }
    return NULL;
}

static int has_node(loader *L, const char *name) { return node(L, name) != NULL; }

/* Checks that node `name` exists with op `op` and the given inputs (NULL-terminated; "*" matches any). */
static int expect(loader *L, const char *name, const char *op, ...) {
    const cJSON *n = node(L, name);
    if (!n) return fail(L, "model.json: graph has no node %s", name);
    const cJSON *o = cJSON_GetObjectItem(n, "op");
    if (!cJSON_IsString(o) || strcmp(o->valuestring, op))
        return fail(L, "model.json: node %s is %s, expected %s", name, cJSON_IsString(o) ? o->valuestring : "?", op);
    const cJSON *in = cJSON_GetObjectItem(n, "input");
    va_list ap;
    va_start(ap, op);
    int i = 0;
    for (const char *want; (want = va_arg(ap, const char *)) != NULL; i++) {
        const cJSON *got = cJSON_GetArrayItem(in, i);
        if (!cJSON_IsString(got) || (strcmp(want, "*") && strcmp(got->valuestring, want))) {
            va_end(ap);
            return fail(L, "model.json: input %d of %s is %s, expected %s", i, name,
                        cJSON_IsString(got) ? got->valuestring : "missing", want);
        }
    }
    va_end(ap);
    return 0;
}

/* Name of input i of node `name` (after expect() has vouched for the node). */
static const char *input(loader *L, const char *name, int i) {
    const cJSON *in = cJSON_GetObjectItem(node(L, name), "input");
    const cJSON *s = cJSON_GetArrayItem(in, i);
    return cJSON_IsString(s) ? s->valuestring : "";
}

static const tensor *find_tensor(loader *L, const char *name) {
    for (int i = 0; i < L->nt; i++)
        if (!strcmp(L->t[i].name, name)) return &L->t[i];
    return NULL;
}

/* The float tensor that is input i of node `name`, checked to be a Const of `count` elements. */
static const float *weight(loader *L, const char *name, int i, size_t count) {
    const char *cn = input(L, name, i);
    const cJSON *c = node(L, cn);
    const cJSON *op = c ? cJSON_GetObjectItem(c, "op") : NULL;
    const tensor *t = find_tensor(L, cn);
    if (!c || !cJSON_IsString(op) || strcmp(op->valuestring, "Const") || !t || !t->is_float) {
        fail(L, "model.json: input %d of %s (%s) is not a float constant in the manifest", i, name, cn);
        return NULL;
    }
    if (t->count != count) {
        fail(L, "model.json: %s has %zu values, expected %zu", cn, t->count, count);
        return NULL;
    }
    return (const float *)(L->blob + t->offset);
}

static int scalar_f(loader *L, const char *name, int i, float *out) {
    const float *p = weight(L, name, i, 1);
    if (!p) return -1;
    *out = *p;
    return 0;
}

static int ints(loader *L, const char *cname, int32_t *out, size_t count) {
    const tensor *t = find_tensor(L, cname);
    if (!t || t->is_float || t->count != count) return fail(L, "model.json: %s is not an int32[%zu] constant", cname, count);
    memcpy(out, L->blob + t->offset, count * sizeof *out);
    return 0;
}

/* ---- manifest and shards ------------------------------------------------------------------------ */

static int read_all(int fd, unsigned char *p, size_t n) {
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int load_weights(loader *L, const char *dir, use_model *m) {
    const cJSON *man = cJSON_GetObjectItem(L->root, "weightsManifest");
    if (!cJSON_IsArray(man)) return fail(L, "model.json: no weightsManifest");
    int total_t = 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, man) total_t += cJSON_GetArraySize(cJSON_GetObjectItem(g, "weights"));
    L->t = calloc((size_t)(total_t ? total_t : 1), sizeof *L->t);
    if (!L->t) return fail(L, "out of memory");
    size_t bytes = 0;
    cJSON_ArrayForEach(g, man) {
        const cJSON *w;
        cJSON_ArrayForEach(w, cJSON_GetObjectItem(g, "weights")) {
            const cJSON *name = cJSON_GetObjectItem(w, "name"), *shape = cJSON_GetObjectItem(w, "shape"),
                        *dt = cJSON_GetObjectItem(w, "dtype");
            if (!cJSON_IsString(name) || !cJSON_IsArray(shape) || !cJSON_IsString(dt))
                return fail(L, "model.json: malformed weight entry");
            if (cJSON_GetObjectItem(w, "quantization")) return fail(L, "model.json: quantized weights are not supported");
            tensor *t = &L->t[L->nt++];
            t->name = name->valuestring;
            t->is_float = !strcmp(dt->valuestring, "float32");
            if (!t->is_float && strcmp(dt->valuestring, "int32"))
                return fail(L, "model.json: %s has dtype %s (float32 or int32 expected)", t->name, dt->valuestring);
            t->ndim = cJSON_GetArraySize(shape);
            if (t->ndim > 4) return fail(L, "model.json: %s has rank %d", t->name, t->ndim);
            t->count = 1;
            for (int k = 0; k < t->ndim; k++) {
                const cJSON *d = cJSON_GetArrayItem(shape, k);
                if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e8)
                    return fail(L, "model.json: %s has a bad shape", t->name);
                t->shape[k] = (int)d->valuedouble;
                t->count *= (size_t)t->shape[k];
            }
            if (t->count > ((size_t)1 << 32)) return fail(L, "model.json: %s is too large", t->name);
            t->offset = bytes;
            bytes += t->count * 4;
        }
    }
    size_t alloc = (bytes + 63) & ~(size_t)63;
    L->blob = aligned_alloc(64, alloc ? alloc : 64);
    if (!L->blob) return fail(L, "out of memory for %zu bytes of weights", bytes);
    m->blob = L->blob;
    m->blob_bytes = bytes;
    size_t at = 0;
    cJSON_ArrayForEach(g, man) {
        /* Each group's tensors start where the previous group's ended (groups are packed in order). */
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(g, "paths")) {
            if (!cJSON_IsString(p) || strchr(p->valuestring, '/') || !strcmp(p->valuestring, ".."))
                return fail(L, "model.json: bad shard path");
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, p->valuestring);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) return fail(L, "%s: %s", path, strerror(errno));
            struct stat st;
            if (fstat(fd, &st) != 0 || (size_t)st.st_size > bytes - at) {
                close(fd);
                return fail(L, "%s: larger than the manifest says", path);
            }
            int rc = read_all(fd, L->blob + at, (size_t)st.st_size);
            close(fd);
            if (rc) return fail(L, "%s: read failed", path);
            at += (size_t)st.st_size;
        }
    }
    if (at != bytes) return fail(L, "model.json: shards hold %zu bytes, the manifest %zu", at, bytes);
    return 0;
}

/* ---- graph walk -------------------------------------------------------------------------------- */

/* Layer norm at prefix p (".../layer_norm/") over input x, width d. */
static int layer_norm(loader *L, const char *p, const char *x, int d, const float **s, const float **b, float *eps) {
    char mean[320], sub[320], sq[320], m1[320], add[320], rs[320], mul[320], mul1[320], add1[320];
    join(mean, sizeof mean, p, "Mean");
    join(sub, sizeof sub, p, "sub_1");
    join(sq, sizeof sq, p, "Square");
    join(m1, sizeof m1, p, "Mean_1");
    join(add, sizeof add, p, "add");
    join(rs, sizeof rs, p, "Rsqrt");
    join(mul, sizeof mul, p, "mul");
    join(mul1, sizeof mul1, p, "mul_1");
    join(add1, sizeof add1, p, "add_1");
    int32_t axis;
    if (expect(L, mean, "Mean", x, "*", NULL) || ints(L, input(L, mean, 1), &axis, 1)) return -1;
    if (axis != -1 && axis != 2) return fail(L, "model.json: %s reduces axis %d", mean, axis);
    if (expect(L, sub, "Sub", x, mean, NULL) || expect(L, sq, "Square", sub, NULL) ||
        expect(L, m1, "Mean", sq, input(L, mean, 1), NULL) || expect(L, add, "Add", m1, "*", NULL) ||
        expect(L, rs, "Rsqrt", add, NULL) || expect(L, mul, "Mul", "*", rs, NULL) ||
        expect(L, mul1, "Mul", mul, sub, NULL) || expect(L, add1, "Add", mul1, "*", NULL))
        return -1;
    if (scalar_f(L, add, 1, eps)) return -1;
    *s = weight(L, mul, 0, (size_t)d);
    *b = weight(L, add1, 1, (size_t)d);
    return (*s && *b) ? 0 : -1;
}

/* Kernel [.., d_in, d_out] that is input 1 of `name`, with its width read off the tensor. */
static const float *kernel(loader *L, const char *name, int d_in, int *d_out) {
    const tensor *t = find_tensor(L, input(L, name, 1));
    if (!t || t->ndim < 2 || t->shape[t->ndim - 2] != d_in) {
        fail(L, "model.json: kernel of %s is not [.., %d, n]", name, d_in);
        return NULL;
    }
    for (int k = 0; k < t->ndim - 2; k++)
        if (t->shape[k] != 1) {
            fail(L, "model.json: kernel of %s is not 1x1", name);
            return NULL;
        }
    *d_out = t->shape[t->ndim - 1];
    return weight(L, name, 1, (size_t)d_in * (size_t)*d_out);
}

static int attention(loader *L, int li, const char *x, use_layer *ly) {
    const char *pre = nm(L, TS "Layer_%d/TransformerLayer/", li);
    char P[320], mha[320];
    join(P, sizeof P, pre, "");
    join(mha, sizeof mha, P, "MultiheadAttention/");
    if (layer_norm(L, nm(L, "%slayer_prepostprocess/layer_norm/", P), x, ly->d_in, &ly->ln_s, &ly->ln_b, &ly->ln_eps))
        return -1;
    const char *ln_out = nm(L, "%slayer_prepostprocess/layer_norm/add_1", P);
    char ed[320], conv[320], bias[320], sq[320], split[320];
    join(ed, sizeof ed, mha, "ExpandDims");
    join(conv, sizeof conv, mha, "qkv_transform_single/Conv2D");
    join(bias, sizeof bias, mha, "qkv_transform_single/BiasAdd");
    join(sq, sizeof sq, mha, "Squeeze");
    join(split, sizeof split, mha, "split");
    int d3;
    if (expect(L, ed, "ExpandDims", ln_out, "*", NULL) || expect(L, conv, "Conv2D", ed, "*", NULL)) return -1;
    if (!(ly->w_qkv = kernel(L, conv, ly->d_in, &d3))) return -1;
    if (d3 % 3) return fail(L, "model.json: %s width %d is not q|k|v", conv, d3);
    ly->d_att = d3 / 3;
    if (expect(L, bias, "BiasAdd", conv, "*", NULL) || !(ly->b_qkv = weight(L, bias, 1, (size_t)d3)) ||
        expect(L, sq, "Squeeze", bias, NULL) || expect(L, split, "SplitV", sq, "*", "*", NULL))
        return -1;
    int32_t sizes[3];
    if (ints(L, input(L, split, 1), sizes, 3)) return -1;
    if (sizes[0] != ly->d_att || sizes[1] != ly->d_att || sizes[2] != ly->d_att)
        return fail(L, "model.json: %s does not split into three equal parts", split);
    /* split_heads{,_1,_2}: reshape to [.., heads, head_dim] and transpose [0,2,1,3]. */
    static const char *sfx[3] = {"", "_1", "_2"}, *src[3] = {"", ":1", ":2"};
    for (int k = 0; k < 3; k++) {
        char rs[320], shp[320], tr[320], from[330];
        char hd_[64];
        join(hd_, sizeof hd_, "split_heads", sfx[k]);
        join(rs, sizeof rs, mha, hd_);
        join(rs, sizeof rs, rs, "/split_last_dimension/Reshape");
        join(shp, sizeof shp, rs, "/shape");
        join(tr, sizeof tr, mha, hd_);
        join(tr, sizeof tr, tr, "/transpose");
        join(from, sizeof from, split, src[k]);
        if (expect(L, rs, "Reshape", from, shp, NULL) || expect(L, shp, "Pack", "*", "*", "*", "*", NULL) ||
            expect(L, tr, "Transpose", rs, "*", NULL))
            return -1;
        int32_t h, hd, perm[4];
        if (ints(L, input(L, shp, 2), &h, 1) || ints(L, input(L, shp, 3), &hd, 1) || ints(L, input(L, tr, 1), perm, 4))
            return -1;
        if (perm[0] != 0 || perm[1] != 2 || perm[2] != 1 || perm[3] != 3)
            return fail(L, "model.json: %s is not the [0,2,1,3] head transpose", tr);
        if (h <= 0 || hd <= 0 || h * hd != ly->d_att) return fail(L, "model.json: %s splits %d into %d x %d", rs, ly->d_att, h, hd);
        ly->heads = h;
        ly->head_dim = hd;
    }
    char mul[320], mm[320], add[320], resh[320], sm[320], aw[320], mm1[320], ct[320], cr[320], ed1[320], oc[320], ob[320], sq1[320];
    join(mul, sizeof mul, mha, "mul");
    join(mm, sizeof mm, mha, "DotProductAttention/BaseDotProductAttention/MatMul");
    join(add, sizeof add, mha, "DotProductAttention/BaseDotProductAttention/add");
    join(resh, sizeof resh, mha, "DotProductAttention/BaseDotProductAttention/Reshape");
    join(sm, sizeof sm, mha, "DotProductAttention/BaseDotProductAttention/Softmax");
    join(aw, sizeof aw, mha, "DotProductAttention/BaseDotProductAttention/attention_weights");
    join(mm1, sizeof mm1, mha, "DotProductAttention/BaseDotProductAttention/MatMul_1");
    join(ct, sizeof ct, mha, "combine_heads/transpose");
    join(cr, sizeof cr, mha, "combine_heads/combine_last_two_dimensions/Reshape");
    join(ed1, sizeof ed1, mha, "ExpandDims_1");
    join(oc, sizeof oc, mha, "output_transform_single/Conv2D");
    join(ob, sizeof ob, mha, "output_transform_single/BiasAdd");
    join(sq1, sizeof sq1, mha, "Squeeze_1");
    const char *tq = nm(L, "%ssplit_heads/transpose", mha), *tk = nm(L, "%ssplit_heads_1/transpose", mha),
               *tv = nm(L, "%ssplit_heads_2/transpose", mha);
    char tqs[320], tks[320], tvs[320];
    join(tqs, sizeof tqs, tq, "");
    join(tks, sizeof tks, tk, "");
    join(tvs, sizeof tvs, tv, "");
    if (expect(L, mul, "Mul", tqs, "*", NULL) || scalar_f(L, mul, 1, &ly->q_scale) ||
        expect(L, mm, "BatchMatMul", mul, tks, NULL) || expect(L, add, "Add", mm, "*", NULL) ||
        expect(L, resh, "Reshape", add, "*", NULL) || expect(L, sm, "Softmax", resh, NULL) ||
        expect(L, aw, "Reshape", sm, "*", NULL) || expect(L, mm1, "BatchMatMul", aw, tvs, NULL) ||
        expect(L, ct, "Transpose", mm1, "*", NULL) || expect(L, cr, "Reshape", ct, "*", NULL) ||
        expect(L, ed1, "ExpandDims", cr, "*", NULL) || expect(L, oc, "Conv2D", ed1, "*", NULL))
        return -1;
    const cJSON *adj = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(node(L, mm), "attr"), "adj_y"), "b");
    if (!cJSON_IsTrue(adj)) return fail(L, "model.json: %s does not multiply by k transposed", mm);
    /* The attention bias: ExpandDims(ExpandDims(ToFloat(!mask) * -large)) on the key axis, i.e. padding keys
     * get -1e9 before the softmax, so exp() makes them exactly 0: attending only to the text's own tokens
     * is the same computation. */
    char b1[320], b2[320], b3[320], b4[320];
    join(b1, sizeof b1, input(L, add, 1), "");
    if (expect(L, b1, "ExpandDims", "*", "*", NULL)) return -1;
    join(b2, sizeof b2, input(L, b1, 0), "");
    if (expect(L, b2, "ExpandDims", "*", "*", NULL)) return -1;
    join(b3, sizeof b3, input(L, b2, 0), "");
    if (expect(L, b3, "Mul", "*", "*", NULL)) return -1;
    join(b4, sizeof b4, input(L, b3, 0), "");
    float neg;
    if (expect(L, b4, "Cast", "*", NULL) || expect(L, input(L, b4, 0), "LogicalNot", KT "Encode/Greater", NULL) ||
        scalar_f(L, b3, 1, &neg))
        return -1;
    if (!(neg < -1e4f)) return fail(L, "model.json: attention bias of %s is not a padding mask", add);
    if (!(ly->w_o = kernel(L, oc, ly->d_att, &ly->d_model))) return -1;
    if (expect(L, ob, "BiasAdd", oc, "*", NULL) || !(ly->b_o = weight(L, ob, 1, (size_t)ly->d_model)) ||
        expect(L, sq1, "Squeeze", ob, NULL))
        return -1;
    return 0;
}

/* One transformer layer over input node x; sets *out_name to its output node. */
static int layer(loader *L, int li, const char *x, use_layer *ly, char *out_name, size_t out_cap) {
    if (attention(L, li, x, ly)) return -1;
    char P[320], post[320], sq1[320];
    snprintf(P, sizeof P, TS "Layer_%d/TransformerLayer/", li);
    join(post, sizeof post, P, "layer_postprocess/add");
    join(sq1, sizeof sq1, P, "MultiheadAttention/Squeeze_1");
    if (expect(L, post, "Add", sq1, "*", NULL)) return -1;
    const char *res = input(L, post, 1);
    if (!strcmp(res, x)) {
        if (ly->d_in != ly->d_model) return fail(L, "model.json: identity residual across %d -> %d", ly->d_in, ly->d_model);
        ly->w_res = ly->b_res = NULL;
    } else {
        char sc[320], ba[320], mm[320], ga[320];
        join(sc, sizeof sc, P, "AdjustResidualInput/Scatter/ScatterNd");
        join(ba, sizeof ba, P, "AdjustResidualInput/dense/BiasAdd");
        join(mm, sizeof mm, P, "AdjustResidualInput/dense/MatMul");
        join(ga, sizeof ga, P, "AdjustResidualInput/Gather/GatherNd");
        if (strcmp(res, sc)) return fail(L, "model.json: residual of %s is %s", post, res);
        int dm;
        if (expect(L, sc, "ScatterNd", "*", ba, "*", NULL) || expect(L, ba, "BiasAdd", mm, "*", NULL) ||
            expect(L, mm, "MatMul", ga, "*", NULL) || expect(L, ga, "GatherNd", x, "*", NULL))
            return -1;
        if (!(ly->w_res = kernel(L, mm, ly->d_in, &dm))) return -1;
        if (dm != ly->d_model) return fail(L, "model.json: residual projection is %d wide, not %d", dm, ly->d_model);
        if (!(ly->b_res = weight(L, ba, 1, (size_t)dm))) return -1;
    }
    /* FFN */
    char F[320];
    join(F, sizeof F, P, "FFN/");
    if (layer_norm(L, nm(L, "%slayer_prepostprocess/layer_norm/", F), post, ly->d_model, &ly->ffn_ln_s, &ly->ffn_ln_b,
                   &ly->ffn_ln_eps))
        return -1;
    char lno[320], ga[320], ed[320], r1[320], m1[320], t1[320], b1[320], relu[320], r2[320], m2[320], t2[320],
        b2[320], sq[320], sc[320], fpost[320];
    join(lno, sizeof lno, F, "layer_prepostprocess/layer_norm/add_1");
    join(ga, sizeof ga, F, "Gather/GatherNd");
    join(ed, sizeof ed, F, "ExpandDims");
    join(r1, sizeof r1, F, "conv1/Tensordot/Reshape");
    join(m1, sizeof m1, F, "conv1/Tensordot/MatMul");
    join(t1, sizeof t1, F, "conv1/Tensordot");
    join(b1, sizeof b1, F, "conv1/BiasAdd");
    join(relu, sizeof relu, F, "conv1/Relu");
    join(r2, sizeof r2, F, "conv2/Tensordot/Reshape");
    join(m2, sizeof m2, F, "conv2/Tensordot/MatMul");
    join(t2, sizeof t2, F, "conv2/Tensordot");
    join(b2, sizeof b2, F, "conv2/BiasAdd");
    join(sq, sizeof sq, F, "Squeeze");
    join(sc, sizeof sc, F, "Scatter/ScatterNd");
    join(fpost, sizeof fpost, F, "layer_postprocess/add");
    if (expect(L, ga, "GatherNd", lno, "*", NULL) || expect(L, ed, "ExpandDims", ga, "*", NULL) ||
        expect(L, r1, "Reshape", ed, "*", NULL) || expect(L, m1, "MatMul", r1, "*", NULL))
        return -1;
    if (!(ly->w1 = kernel(L, m1, ly->d_model, &ly->d_ff))) return -1;
    int dback;
    if (expect(L, t1, "Reshape", m1, "*", NULL) || expect(L, b1, "BiasAdd", t1, "*", NULL) ||
        !(ly->b1 = weight(L, b1, 1, (size_t)ly->d_ff)) || expect(L, relu, "Relu", b1, NULL) ||
        expect(L, r2, "Reshape", relu, "*", NULL) || expect(L, m2, "MatMul", r2, "*", NULL))
        return -1;
    if (!(ly->w2 = kernel(L, m2, ly->d_ff, &dback))) return -1;
    if (dback != ly->d_model) return fail(L, "model.json: %s maps back to %d, not %d", m2, dback, ly->d_model);
    if (expect(L, t2, "Reshape", m2, "*", NULL) || expect(L, b2, "BiasAdd", t2, "*", NULL) ||
        !(ly->b2 = weight(L, b2, 1, (size_t)ly->d_model)) || expect(L, sq, "Squeeze", b2, NULL) ||
        expect(L, sc, "ScatterNd", "*", sq, "*", NULL) || expect(L, fpost, "Add", sc, post, NULL))
        return -1;
    join(out_name, out_cap, fpost, "");
    return 0;
}

static int walk(loader *L, use_model *m) {
    /* Token embedding and the 128-position clip. */
    const char *look = KT "Encode/embedding_lookup", *less = KT "ClipToMaxLength/Less";
    if (expect(L, look, "GatherV2", "*", KT "ClipToMaxLength/GatherV2_1", "*", NULL) ||
        expect(L, less, "Less", KT "ClipToMaxLength/strided_slice", "*", NULL))
        return -1;
    const tensor *et = find_tensor(L, input(L, look, 0));
    if (!et || et->ndim != 2 || !et->is_float) return fail(L, "model.json: embedding table missing");
    m->vocab = et->shape[0];
    m->d_emb = et->shape[1];
    if (!(m->emb = weight(L, look, 0, (size_t)m->vocab * (size_t)m->d_emb))) return -1;
    int32_t maxlen;
    if (ints(L, input(L, less, 1), &maxlen, 1)) return -1;
    if (maxlen < 1 || maxlen > 4096) return fail(L, "model.json: max length %d", maxlen);
    m->max_len = maxlen;
    /* Timing signal: [sin(pos * inv) | cos(pos * inv)], added onto the gathered embedding, and that sum
     * added to the scattered embedding again in Layer_0/add. */
    const char *mul2 = TS "Layer_0/AddTimingSignal/TimingSignal/mul_2";
    if (expect(L, mul2, "Mul", TS "Layer_0/AddTimingSignal/TimingSignal/ExpandDims", "*", NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/TimingSignal/ExpandDims", "ExpandDims",
               TS "Layer_0/AddTimingSignal/TimingSignal/ToFloat_2", "*", NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/TimingSignal/ToFloat_2", "Cast", TS "Layer_0/AddTimingSignal/strided_slice_2", NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/strided_slice_2", "StridedSlice",
               TS "Layer_1/TransformerLayer/FFN/StoreMask/Where", "*", "*", "*", NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/TimingSignal/Sin", "Sin", mul2, NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/TimingSignal/Cos", "Cos", mul2, NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/TimingSignal/concat", "ConcatV2", TS "Layer_0/AddTimingSignal/TimingSignal/Sin",
               TS "Layer_0/AddTimingSignal/TimingSignal/Cos", "*", NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/add", "Add", TS "Layer_0/AddTimingSignal/Gather/GatherNd",
               TS "Layer_0/AddTimingSignal/TimingSignal/concat", NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/Gather/GatherNd", "GatherNd", KT "Encode/Scatter/ScatterNd", "*", NULL) ||
        expect(L, KT "Encode/Scatter/ScatterNd", "ScatterNd", "*", look, "*", NULL) ||
        expect(L, TS "Layer_0/AddTimingSignal/Scatter/ScatterNd", "ScatterNd", "*", TS "Layer_0/AddTimingSignal/add", "*", NULL) ||
        expect(L, TS "Layer_0/add", "Add", KT "Encode/Scatter/ScatterNd", TS "Layer_0/AddTimingSignal/Scatter/ScatterNd", NULL))
        return -1;
    if (m->d_emb % 2) return fail(L, "model.json: odd embedding width %d", m->d_emb);
    const float *inv = weight(L, mul2, 1, (size_t)m->d_emb / 2);
    if (!inv) return -1;
    m->timing = malloc((size_t)m->max_len * (size_t)m->d_emb * sizeof *m->timing);
    if (!m->timing) return fail(L, "out of memory");
    int half = m->d_emb / 2;
    for (int p = 0; p < m->max_len; p++)
        for (int j = 0; j < half; j++) {
            float a = (float)p * inv[j];
            m->timing[(size_t)p * m->d_emb + j] = (float)sin((double)a);
            m->timing[(size_t)p * m->d_emb + half + j] = (float)cos((double)a);
        }
    /* Layers, in order, while the graph has them. */
    char x[320];
    snprintf(x, sizeof x, TS "Layer_0/add");
    int d = m->d_emb;
    m->nlayers = 0;
    while (m->nlayers < USE_MAX_LAYERS &&
           has_node(L, nm(L, TS "Layer_%d/TransformerLayer/layer_postprocess/add", m->nlayers))) {
        use_layer *ly = &m->layer[m->nlayers];
        ly->d_in = d;
        char out[320];
        if (layer(L, m->nlayers, x, ly, out, sizeof out)) return -1;
        join(x, sizeof x, out, "");
        d = ly->d_model;
        m->nlayers++;
    }
    if (m->nlayers == 0) return fail(L, "model.json: no transformer layers");
    /* Masked mean over the sequence, then tanh dense and L2 normalisation. */
    int32_t axis;
    if (expect(L, KT "mul", "Mul", x, KT "ExpandDims", NULL) || expect(L, KT "ExpandDims", "ExpandDims", KT "ToFloat", "*", NULL) ||
        expect(L, KT "ToFloat", "Cast", KT "SequenceMask/Less", NULL) || expect(L, KT "Sum", "Sum", KT "mul", "*", NULL) ||
        ints(L, input(L, KT "Sum", 1), &axis, 1) ||
        expect(L, KT "div", "RealDiv", KT "Sum", KT "ExpandDims_1", NULL) ||
        expect(L, KT "ExpandDims_1", "ExpandDims", KT "ToFloat_1", "*", NULL) ||
        expect(L, KT "ToFloat_1", "Cast", KT "Maximum", NULL) ||
        expect(L, KT "Maximum", "Maximum", TS "MaskLength/Sum", "*", NULL))
        return -1;
    int32_t minlen;
    if (axis != 1 || ints(L, input(L, KT "Maximum", 1), &minlen, 1) || minlen != 1)
        return fail(L, "model.json: pooling is not a mean over positions with count max(n, 1)");
    const char *mm = HL "tanh_layer_0/MatMul", *ba = HL "tanh_layer_0/BiasAdd", *th = HL "tanh_layer_0/Tanh";
    if (expect(L, mm, "MatMul", KT "div", "*", NULL)) return -1;
    if (!(m->w_out = kernel(L, mm, d, &m->d_out))) return -1;
    if (expect(L, ba, "BiasAdd", mm, "*", NULL) || !(m->b_out = weight(L, ba, 1, (size_t)m->d_out)) ||
        expect(L, th, "Tanh", ba, NULL) || expect(L, HL "l2_normalize/Square", "Square", th, NULL) ||
        expect(L, HL "l2_normalize/Sum", "Sum", HL "l2_normalize/Square", "*", NULL) ||
        expect(L, HL "l2_normalize/Maximum", "Maximum", HL "l2_normalize/Sum", "*", NULL) ||
        scalar_f(L, HL "l2_normalize/Maximum", 1, &m->l2_eps) ||
        expect(L, HL "l2_normalize/Rsqrt", "Rsqrt", HL "l2_normalize/Maximum", NULL) ||
        expect(L, HL "l2_normalize", "Mul", th, HL "l2_normalize/Rsqrt", NULL))
        return -1;
    return 0;
}

use_model *use_model_load(const char *dir, int *missing, char *err, size_t errlen) {
    if (missing) *missing = 0;
    loader L = {.err = err, .errlen = errlen};
    use_model *m = calloc(1, sizeof *m);
    char path[2048];
    join(path, sizeof path, dir, "/model.json");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *text = NULL;
    if (!m) {
        fail(&L, "out of memory");
        goto bad;
    }
    if (fd < 0) {
        if (missing) *missing = errno == ENOENT;
        fail(&L, "%s: %s", path, strerror(errno));
        goto bad;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > (64 << 20)) {
        fail(&L, "%s: unreadable or implausible size", path);
        goto bad;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text || read_all(fd, (unsigned char *)text, (size_t)st.st_size)) {
        fail(&L, "%s: read failed", path);
        goto bad;
    }
    text[st.st_size] = 0;
    L.root = cJSON_ParseWithLength(text, (size_t)st.st_size);
    L.nodes = cJSON_GetObjectItem(cJSON_GetObjectItem(L.root, "modelTopology"), "node");
    if (!cJSON_IsArray(L.nodes)) {
        fail(&L, "%s: not a tfjs graph model", path);
        goto bad;
    }
    if (load_weights(&L, dir, m) || walk(&L, m)) goto bad;
    close(fd);
    free(text);
    free(L.t);
    cJSON_Delete(L.root);
    return m;
bad:
    if (fd >= 0) close(fd);
    free(text);
    free(L.t);
    cJSON_Delete(L.root);
    if (m && !m->blob) free(L.blob);
    use_model_free(m);
    return NULL;
}

void use_model_free(use_model *m) {
    if (!m) return;
    free(m->blob);
    free(m->timing);
    free(m);
}
