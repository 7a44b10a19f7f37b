/*
 * The ONNX operators the import maps (onnx.h lists them), one function each: the node's
 * attributes and constant inputs checked and turned into one elag layer (its YAML item
 * and its tensors in elag's layout), or folded into the layer before it (Add after
 * MatMul), or skipped (Identity, Dropout, Constant). The walk that calls them is in
 * onnx_import.c.
 */
#include "onnx/onnx_import.h"

#include "core/check.h"
#include "onnx/onnx_tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const Onnx__TensorProto *elag_onnx_find_tensor(const elag_onnx_imp *s, const char *name)
{
    for (size_t i = 0; i < s->g->n_initializer; i++)
        if (s->g->initializer[i]->name && strcmp(s->g->initializer[i]->name, name) == 0)
            return s->g->initializer[i];
    for (int i = 0; i < s->n_const; i++)
        if (strcmp(s->const_names[i], name) == 0) return s->consts[i];
    return NULL;
}

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && strcmp(n->attribute[i]->name, name) == 0)
            return n->attribute[i];
    return NULL;
}

static int64_t attr_i(const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

static float attr_f(const Onnx__NodeProto *n, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = attr(n, name);
    return a && a->has_f ? a->f : dflt;
}

/* An INTS attribute of exactly `want` values into out (dflt when absent); 0 when present
 * with another count. */
static int attr_ints(const Onnx__NodeProto *n, const char *name, int want, int64_t dflt,
                     int64_t *out)
{
    const Onnx__AttributeProto *a = attr(n, name);
    if (!a) {
        for (int i = 0; i < want; i++) out[i] = dflt;
        return 1;
    }
    if (a->n_ints != (size_t)want) return 0;
    for (int i = 0; i < want; i++) out[i] = a->ints[i];
    return 1;
}

static elag_status bad(const elag_onnx_imp *s, const char *why)
{
    return elag_fail(ELAG_ERR_INPUT, "%s: %s", s->what, why);
}

/* Input k of the node as a constant tensor in F32 with `count` values. */
static elag_status const_input(elag_onnx_imp *s, size_t k, size_t count, float **out)
{
    const Onnx__NodeProto *n = s->node;
    *out = NULL;
    if (k >= n->n_input || !n->input[k][0])
        return elag_fail(ELAG_ERR_INPUT, "%s: input %zu is missing", s->what, k);
    const Onnx__TensorProto *t = elag_onnx_find_tensor(s, n->input[k]);
    if (!t)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: input '%s' is not a constant (elag imports a "
                         "chain whose weights are initializers)",
                         s->what, n->input[k]);
    size_t got;
    ELAG_TRY(elag_onnx_tensor_f32(t, s->what, out, &got));
    if (got != count) {
        free(*out);
        *out = NULL;
        return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' has %zu values, expected %zu", s->what,
                         n->input[k], got, count);
    }
    return ELAG_OK;
}

static elag_onnx_layer *new_layer(elag_onnx_imp *s)
{
    if (s->n >= ELAG_MAX_LAYERS) return NULL;
    elag_onnx_layer *l = &s->l[s->n++];
    memset(l, 0, sizeof *l);
    snprintf(l->desc, sizeof l->desc, "<- %s '%s'", s->node->op_type,
             s->node->name ? s->node->name : "");
    return l;
}

#define NEW_LAYER(s, l)                                                                            \
    elag_onnx_layer *l = new_layer(s);                                                             \
    if (!l) return bad(s, "more layers than elag's limit")

/* The weight's dims as given: linear (out, in) from Gemm/MatMul, conv (out, C, kh, kw). */
static const Onnx__TensorProto *weight_of(elag_onnx_imp *s, size_t k)
{
    return k < s->node->n_input ? elag_onnx_find_tensor(s, s->node->input[k]) : NULL;
}

/* A linear layer of w (out, in) row-major (taken), bias b (out) or NULL (taken). */
static elag_status add_linear(elag_onnx_imp *s, int out, float *w, float *b)
{
    NEW_LAYER(s, l);
    int in = (int)elag_fshape_count(s->shape);
    l->linear = 1;
    l->t[0] = w;
    l->count[0] = (size_t)out * (size_t)in;
    l->n_t = 1;
    if (b) {
        l->t[1] = b;
        l->count[1] = (size_t)out;
        l->n_t = 2;
        l->has_bias = 1;
    }
    char d[160];
    snprintf(d, sizeof d, "linear %d %s", out, l->desc);
    snprintf(l->desc, sizeof l->desc, "%s", d);
    snprintf(l->yaml, sizeof l->yaml, "    - type: linear\n      out_features: %d\n%s", out,
             b ? "" : "      bias: false\n");
    s->shape = (elag_fshape){out, 1, 1};
    return ELAG_OK;
}

static elag_status map_gemm(elag_onnx_imp *s)
{
    const Onnx__NodeProto *n = s->node;
    if (s->rank4) return bad(s, "Gemm on a 4-D value; flatten it first");
    if (attr_f(n, "alpha", 1.0f) != 1.0f || attr_f(n, "beta", 1.0f) != 1.0f ||
        attr_i(n, "transA", 0) != 0)
        return bad(s, "only Gemm with alpha = beta = 1 and transA = 0 maps onto a linear layer");
    const Onnx__TensorProto *wt = weight_of(s, 1);
    if (!wt || wt->n_dims != 2) return bad(s, "the weight B must be a 2-D initializer");
    int trans = attr_i(n, "transB", 0) != 0;
    int64_t in = (int64_t)elag_fshape_count(s->shape);
    int64_t out = trans ? wt->dims[0] : wt->dims[1], k = trans ? wt->dims[1] : wt->dims[0];
    if (k != in || out < 1 || out > (1 << 30)) {
        char why[200];
        snprintf(why, sizeof why,
                 "weight of shape (%lld, %lld) (transB=%d) does not take %lld "
                 "input features",
                 (long long)wt->dims[0], (long long)wt->dims[1], trans, (long long)in);
        return bad(s, why);
    }
    float *w = NULL, *b = NULL;
    ELAG_TRY(const_input(s, 1, (size_t)(out * in), &w));
    if (!trans) { /* (in, out) -> elag's (out, in) */
        float *tw = malloc((size_t)(out * in) * sizeof *tw);
        if (!tw) {
            free(w);
            return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", s->what);
        }
        for (int64_t i = 0; i < in; i++)
            for (int64_t o = 0; o < out; o++) tw[o * in + i] = w[i * out + o];
        free(w);
        w = tw;
    }
    if (n->n_input > 2 && n->input[2][0]) {
        elag_status st = const_input(s, 2, (size_t)out, &b);
        if (st != ELAG_OK) {
            free(w);
            return st;
        }
    }
    return add_linear(s, (int)out, w, b);
}

static elag_status map_matmul(elag_onnx_imp *s)
{
    if (s->rank4) return bad(s, "MatMul on a 4-D value; flatten it first");
    const Onnx__TensorProto *wt = weight_of(s, 1);
    if (strcmp(s->node->input[0], s->cur) != 0 || !wt || wt->n_dims != 2)
        return bad(s, "only MatMul(x, W) with W a 2-D initializer maps onto a linear layer");
    int64_t in = (int64_t)elag_fshape_count(s->shape), out = wt->dims[1];
    if (wt->dims[0] != in || out < 1 || out > (1 << 30))
        return bad(s, "the weight's first dimension is not the input's feature count");
    float *w, *tw;
    ELAG_TRY(const_input(s, 1, (size_t)(in * out), &w));
    tw = malloc((size_t)(in * out) * sizeof *tw);
    if (!tw) {
        free(w);
        return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", s->what);
    }
    for (int64_t i = 0; i < in; i++)
        for (int64_t o = 0; o < out; o++) tw[o * in + i] = w[i * out + o];
    free(w);
    return add_linear(s, (int)out, tw, NULL);
}

/* Add(x, b) right after a MatMul: the linear layer's bias. */
static elag_status map_add(elag_onnx_imp *s)
{
    const Onnx__NodeProto *n = s->node;
    elag_onnx_layer *l = s->n ? &s->l[s->n - 1] : NULL;
    if (!l || !l->linear || l->has_bias || n->n_input != 2)
        return bad(s, "Add is imported only as the bias of the MatMul before it");
    size_t k = strcmp(n->input[0], s->cur) == 0 ? 1 : 0; /* the constant operand */
    if (strcmp(n->input[1 - k], s->cur) != 0) return bad(s, "Add does not read the chain");
    float *b;
    ELAG_TRY(const_input(s, k, (size_t)s->shape.c, &b));
    l->t[1] = b;
    l->count[1] = (size_t)s->shape.c;
    l->n_t = 2;
    l->has_bias = 1;
    /* the item was written without a bias: drop that line */
    char *nb = strstr(l->yaml, "      bias: false\n");
    if (nb) *nb = '\0';
    return ELAG_OK;
}

/* kernel_shape / strides / pads of a window node into (kh, kw), (sh, sw), (ph, pw). */
static elag_status window(elag_onnx_imp *s, const int64_t *kdefault, int64_t *k, int64_t *st,
                          int64_t *p)
{
    const Onnx__NodeProto *n = s->node;
    int64_t pads[4], dil[2];
    if (!attr_ints(n, "kernel_shape", 2, 0, k) || !attr_ints(n, "strides", 2, 1, st) ||
        !attr_ints(n, "pads", 4, 0, pads) || !attr_ints(n, "dilations", 2, 1, dil))
        return bad(s, "kernel_shape, strides, pads or dilations is not 2-D");
    if (!attr(n, "kernel_shape") && kdefault) memcpy(k, kdefault, 2 * sizeof *k);
    const Onnx__AttributeProto *ap = attr(n, "auto_pad");
    if (ap && ap->has_s && ap->s.len && !(ap->s.len == 6 && memcmp(ap->s.data, "NOTSET", 6) == 0) &&
        !(ap->s.len == 5 && memcmp(ap->s.data, "VALID", 5) == 0))
        return bad(s, "auto_pad SAME_* has no elag equivalent; export with explicit pads");
    if (dil[0] != 1 || dil[1] != 1) return bad(s, "dilations other than 1 have no elag layer");
    if (pads[0] != pads[2] || pads[1] != pads[3])
        return bad(s, "asymmetric pads have no elag equivalent (elag pads both sides alike)");
    if (attr_i(n, "ceil_mode", 0) != 0) return bad(s, "ceil_mode = 1 has no elag equivalent");
    for (int i = 0; i < 2; i++)
        if (k[i] < 1 || k[i] > 4096 || st[i] < 1 || st[i] > 4096 || pads[i] < 0 || pads[i] > 4096)
            return bad(s, "kernel, stride or padding out of range");
    p[0] = pads[0];
    p[1] = pads[1];
    int64_t oh = (s->shape.h + 2 * p[0] - k[0]), ow = (s->shape.w + 2 * p[1] - k[1]);
    if (!s->rank4 || oh < 0 || ow < 0) return bad(s, "the window does not fit its input");
    s->shape.h = (int)(oh / st[0] + 1);
    s->shape.w = (int)(ow / st[1] + 1);
    return ELAG_OK;
}

static void window_yaml(char *buf, size_t len, const int64_t *k, const int64_t *st,
                        const int64_t *p)
{
    snprintf(buf, len,
             "      kernel: [%lld, %lld]\n      stride: [%lld, %lld]\n"
             "      padding: [%lld, %lld]\n",
             (long long)k[0], (long long)k[1], (long long)st[0], (long long)st[1], (long long)p[0],
             (long long)p[1]);
}

static elag_status map_conv(elag_onnx_imp *s)
{
    const Onnx__NodeProto *n = s->node;
    const Onnx__TensorProto *wt = weight_of(s, 1);
    if (!wt || wt->n_dims != 4) return bad(s, "the weight W must be a 4-D initializer");
    if (attr_i(n, "group", 1) != 1) return bad(s, "grouped convolutions have no elag layer");
    if (!s->rank4 || wt->dims[1] != s->shape.c)
        return bad(s, "the weight's input channels do not match its input");
    int64_t out = wt->dims[0], k[2], st[2], p[2], kd[2] = {wt->dims[2], wt->dims[3]};
    ELAG_TRY(window(s, kd, k, st, p));
    if (k[0] != kd[0] || k[1] != kd[1]) return bad(s, "kernel_shape differs from the weight's");
    NEW_LAYER(s, l);
    size_t count = (size_t)(out * wt->dims[1] * k[0] * k[1]);
    ELAG_TRY(const_input(s, 1, count, &l->t[0]));
    l->count[0] = count;
    l->n_t = 1;
    int bias = n->n_input > 2 && n->input[2][0];
    if (bias) {
        ELAG_TRY(const_input(s, 2, (size_t)out, &l->t[1]));
        l->count[1] = (size_t)out;
        l->n_t = 2;
    }
    char w[160], d[160];
    window_yaml(w, sizeof w, k, st, p);
    snprintf(l->yaml, sizeof l->yaml, "    - type: conv2d\n      out_channels: %lld\n%s%s",
             (long long)out, w, bias ? "" : "      bias: false\n");
    snprintf(d, sizeof d, "conv2d %lld %lldx%lld %s", (long long)out, (long long)k[0],
             (long long)k[1], l->desc);
    snprintf(l->desc, sizeof l->desc, "%s", d);
    s->shape.c = (int)out;
    return ELAG_OK;
}

static elag_status map_batchnorm(elag_onnx_imp *s)
{
    const Onnx__NodeProto *n = s->node;
    if (attr_i(n, "training_mode", 0) != 0 || n->n_input != 5)
        return bad(s, "only BatchNormalization in inference mode (5 inputs) maps onto elag");
    NEW_LAYER(s, l);
    for (int i = 0; i < 4; i++) {
        ELAG_TRY(const_input(s, (size_t)(1 + i), (size_t)s->shape.c, &l->t[i]));
        l->count[i] = (size_t)s->shape.c;
    }
    l->n_t = 4;
    double eps = attr_f(n, "epsilon", 1e-5f), mom = 1.0 - attr_f(n, "momentum", 0.9f);
    if (!(eps > 0 && eps < 1)) return bad(s, "epsilon must be in (0, 1)");
    if (!(mom >= 0 && mom <= 1)) mom = 0.1; /* a training-only setting: elag's default */
    snprintf(l->yaml, sizeof l->yaml,
             "    - type: batchnorm\n      eps: %.9g\n      momentum: "
             "%.9g\n",
             eps, mom);
    char d[160];
    snprintf(d, sizeof d, "batchnorm %s", l->desc);
    snprintf(l->desc, sizeof l->desc, "%s", d);
    return ELAG_OK;
}

static elag_status map_simple(elag_onnx_imp *s, const char *type)
{
    NEW_LAYER(s, l);
    snprintf(l->yaml, sizeof l->yaml, "    - type: %s\n", type);
    char d[160];
    snprintf(d, sizeof d, "%s %s", type, l->desc);
    snprintf(l->desc, sizeof l->desc, "%s", d);
    return ELAG_OK;
}

static elag_status map_pool(elag_onnx_imp *s, const char *type)
{
    const Onnx__NodeProto *n = s->node;
    int64_t k[2], st[2], p[2];
    ELAG_TRY(window(s, NULL, k, st, p));
    if (strcmp(type, "avgpool") == 0 && (p[0] || p[1]) && attr_i(n, "count_include_pad", 0) == 0)
        return bad(s, "AveragePool with pads and count_include_pad = 0 has no elag equivalent "
                      "(elag counts the padding as zeros)");
    if (attr_i(n, "storage_order", 0) != 0 || n->n_output > 1)
        return bad(s, "MaxPool's indices output has no elag equivalent");
    ELAG_TRY(map_simple(s, type));
    char w[160];
    window_yaml(w, sizeof w, k, st, p);
    elag_onnx_layer *l = &s->l[s->n - 1];
    strncat(l->yaml, w, sizeof l->yaml - strlen(l->yaml) - 1);
    return ELAG_OK;
}

/* Reshape(x, shape) to (N, features): the one reshape an elag chain has, a flatten. */
static elag_status map_reshape(elag_onnx_imp *s)
{
    const Onnx__NodeProto *n = s->node;
    const Onnx__TensorProto *t = n->n_input == 2 ? elag_onnx_find_tensor(s, n->input[1]) : NULL;
    int64_t v[4];
    size_t nv = 0;
    if (!t) return bad(s, "Reshape's shape must be a constant");
    ELAG_TRY(elag_onnx_tensor_i64(t, s->what, v, 4, &nv));
    int64_t f = (int64_t)elag_fshape_count(s->shape);
    if (nv != 2 || !(v[0] == 0 || v[0] == -1) || !(v[1] == -1 || v[1] == f) ||
        (v[0] == -1 && v[1] == -1) || attr_i(n, "allowzero", 0) != 0)
        return bad(s, "only Reshape to (N, -1) or (N, features) maps onto elag (a flatten)");
    ELAG_TRY(map_simple(s, "flatten"));
    s->rank4 = 0;
    s->shape = (elag_fshape){(int)f, 1, 1};
    return ELAG_OK;
}

elag_status elag_onnx_map_node(elag_onnx_imp *s)
{
    const Onnx__NodeProto *n = s->node;
    const char *op = n->op_type ? n->op_type : "";
    if (strcmp(op, "Constant") == 0) {
        const Onnx__AttributeProto *a = attr(n, "value");
        if (!a || !a->t || n->n_output != 1 || s->n_const >= 256)
            return bad(s, "only a Constant with a tensor value is read");
        s->consts[s->n_const] = a->t;
        s->const_names[s->n_const++] = n->output[0];
        return ELAG_OK;
    }
    if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)
        return elag_fail(ELAG_ERR_INPUT, "%s: unsupported operator domain '%s'", s->what,
                         n->domain);
    if (n->n_input < 1 || n->n_output < 1) return bad(s, "a node without input or output");
    /* the chain: a node reads the value the previous one made (Add may take it second) */
    int reads = strcmp(n->input[0], s->cur) == 0 ||
                (strcmp(op, "Add") == 0 && n->n_input == 2 && strcmp(n->input[1], s->cur) == 0);
    if (!reads) {
        char why[400];
        snprintf(why, sizeof why,
                 "does not read '%s', the output of the node before it (elag "
                 "imports a chain of layers, no branches)",
                 s->cur);
        return bad(s, why);
    }
    elag_status st;
    if (strcmp(op, "Gemm") == 0)
        st = map_gemm(s);
    else if (strcmp(op, "MatMul") == 0)
        st = map_matmul(s);
    else if (strcmp(op, "Add") == 0)
        st = map_add(s);
    else if (strcmp(op, "Conv") == 0)
        st = map_conv(s);
    else if (strcmp(op, "BatchNormalization") == 0)
        st = map_batchnorm(s);
    else if (strcmp(op, "Relu") == 0)
        st = map_simple(s, "relu");
    else if (strcmp(op, "MaxPool") == 0)
        st = map_pool(s, "maxpool");
    else if (strcmp(op, "AveragePool") == 0)
        st = map_pool(s, "avgpool");
    else if (strcmp(op, "GlobalAveragePool") == 0) {
        if (!s->rank4) return bad(s, "GlobalAveragePool on flat features");
        st = map_simple(s, "global_avgpool");
        s->shape.h = s->shape.w = 1;
    } else if (strcmp(op, "Flatten") == 0) {
        if (attr_i(n, "axis", 1) != 1) return bad(s, "only Flatten with axis = 1 maps onto elag");
        st = map_simple(s, "flatten");
        s->rank4 = 0;
        s->shape = (elag_fshape){(int)elag_fshape_count(s->shape), 1, 1};
    } else if (strcmp(op, "Reshape") == 0)
        st = map_reshape(s);
    else if (strcmp(op, "Identity") == 0 || strcmp(op, "Dropout") == 0)
        st = ELAG_OK;
    else
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: unsupported operator %s (elag imports Gemm, "
                         "MatMul+Add, Conv, BatchNormalization, Relu, MaxPool, AveragePool, "
                         "GlobalAveragePool, Flatten, Reshape)",
                         s->what, op);
    if (st == ELAG_OK) s->cur = n->output[0];
    return st;
}

/* The graph input (the one that is not an initializer) and its per-sample shape. */
