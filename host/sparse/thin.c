/*
 * Thinning an export (thin.h): constant units of linear and conv2d layers removed, their
 * effect folded or merged into the next weighted layer, the tensors cut to the smaller
 * widths and re-registered from the smaller config. The rule is in thin.h.
 */
#include "sparse/thin.h"

#include "core/check.h"
#include "sparse/infer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What becomes of one output unit of the layer being thinned. */
enum unit_fate {
    FATE_LIVE = 0,   /* its weight row has a nonzero: kept */
    FATE_CONST,      /* constant, not yet classified */
    FATE_ZERO,       /* constant 0 at the next layer: removed */
    FATE_FOLD,       /* nonzero constant added to the next layer's bias: removed */
    FATE_MERGE,      /* nonzero constant merged into the merge target's columns: removed */
    FATE_MERGE_KEEP, /* the merge target: kept */
    FATE_HELD        /* constant but kept */
};

static elag_export_tensor *find_tensor(elag_export *e, const char *layer, const char *suffix)
{
    char name[ELAG_PARAM_NAME_LEN + 32];
    snprintf(name, sizeof name, "%s.%s", layer, suffix);
    for (int i = 0; i < e->n_tensors; i++)
        if (strcmp(e->t[i].name, name) == 0) return &e->t[i];
    return NULL;
}

static int row_is_zero(const float *w, int cols)
{
    for (int c = 0; c < cols; c++)
        if (w[c] != 0.0f) return 0;
    return 1;
}

static int fate_kept(unsigned char f)
{
    return f == FATE_LIVE || f == FATE_MERGE_KEEP || f == FATE_HELD;
}

/* Keeps the entries (rows of `width` floats) u of a with fate_kept(fate[u]); returns how
 * many. a: (units, width) row-major, host. */
static int keep_rows(float *a, int units, size_t width, const unsigned char *fate)
{
    int k = 0;
    for (int u = 0; u < units; u++) {
        if (!fate_kept(fate[u])) continue;
        if (k != u) memmove(a + (size_t)k * width, a + (size_t)u * width, width * sizeof *a);
        k++;
    }
    return k;
}

/* Keeps the column groups of the kept units in every row of a (rows, units * gw). */
static void keep_groups(float *a, int rows, int units, int gw, const unsigned char *fate)
{
    size_t out = 0;
    for (int r = 0; r < rows; r++)
        for (int u = 0; u < units; u++) {
            if (!fate_kept(fate[u])) continue;
            memmove(a + out, a + ((size_t)r * units + u) * gw, (size_t)gw * sizeof *a);
            out += (size_t)gw;
        }
}

static void recount(elag_export_tensor *t)
{
    int64_t nz = 0;
    for (int64_t i = 0; i < (int64_t)t->w.rows * t->w.cols; i++) nz += t->w.dense[i] != 0.0f;
    t->w.nnz = nz;
}

/* A zero bias for weighted layer `q` (which had none), appended to e->t; rebuild() puts it
 * in registry order. */
static elag_status add_bias(elag_export *e, int q, const char *layer, int rows,
                            elag_export_tensor **out)
{
    if (e->n_tensors >= ELAG_MAX_PARAMS)
        return elag_fail(ELAG_ERR_INTERNAL, "thin: no room for %s.bias", layer);
    elag_export_tensor *t = &e->t[e->n_tensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.bias", layer);
    t->layer = q;
    t->ndim = 1;
    t->shape[0] = rows;
    t->data = calloc((size_t)(rows > 0 ? rows : 1), sizeof(float));
    if (!t->data) return elag_fail(ELAG_ERR_NOMEM, "thin: out of host memory");
    e->n_tensors++;
    e->cfg.model.layers[q].bias = 1;
    *out = t;
    return ELAG_OK;
}

/* The value (v) each constant unit has where layer q reads it, through the chain of
 * layers p+1 .. q-1; shaped[u]: v times the border profile of a padded average pool. */
static void carry_constants(elag_export *e, const elag_model *im, int p, int q, int units,
                            unsigned char *fate, float *v, unsigned char *shaped)
{
    for (int i = p + 1; i < q; i++) {
        const elag_layer *l = &im->layers[i];
        const elag_export_tensor *g = NULL, *b = NULL, *mean = NULL, *var = NULL;
        if (l->cfg.type == ELAG_LAYER_BATCHNORM) {
            g = find_tensor(e, l->cfg.name, "weight");
            b = find_tensor(e, l->cfg.name, "bias");
            mean = find_tensor(e, l->cfg.name, "running_mean");
            var = find_tensor(e, l->cfg.name, "running_var");
            ELAG_ASSERT(g && b && mean && var && g->shape[0] == units);
        }
        for (int u = 0; u < units; u++) {
            if (fate[u] != FATE_CONST) continue;
            switch (l->cfg.type) {
            case ELAG_LAYER_RELU: /* relu(v * profile) = relu(v) * profile: profile > 0 */
                v[u] = v[u] > 0.0f ? v[u] : 0.0f;
                break;
            case ELAG_LAYER_BATCHNORM: /* affine: no longer a multiple of the profile */
                if (shaped[u] && v[u] != 0.0f) {
                    fate[u] = FATE_HELD;
                    break;
                }
                v[u] = (float)(((double)v[u] - mean->data[u]) * g->data[u] /
                                   sqrt((double)var->data[u] + l->cfg.eps) +
                               b->data[u]);
                break;
            case ELAG_LAYER_AVGPOOL: /* padding counts as zeros: borders differ */
                if (l->cfg.padding[0] || l->cfg.padding[1]) shaped[u] = 1;
                break;
            case ELAG_LAYER_MAXPOOL: /* max(v * profile) is v * (max of the profile) for
                                      * v > 0 but v * (its min) for v < 0: another profile */
                if (shaped[u] && v[u] < 0.0f) fate[u] = FATE_HELD;
                break;
            default: /* max pooling drops padding; global pooling and flatten keep v */
                break;
            }
            if (v[u] == 0.0f) shaped[u] = 0;
        }
    }
}

/* Next weighted layer fed by p through a chain of layers the rule knows, or -1. */
static int consumer_of(const elag_model *im, int p)
{
    for (int q = p + 1; q < im->n_layers; q++) {
        const elag_layer *l = &im->layers[q];
        if (l->input != q - 1) return -1; /* not a chain */
        if (l->kind->sparse_weight) return q;
        switch (l->cfg.type) {
        case ELAG_LAYER_RELU:
        case ELAG_LAYER_BATCHNORM:
        case ELAG_LAYER_MAXPOOL:
        case ELAG_LAYER_AVGPOOL:
        case ELAG_LAYER_GLOBAL_AVGPOOL:
        case ELAG_LAYER_FLATTEN: continue;
        default: return -1;
        }
    }
    return -1; /* p feeds the logits */
}

/* Classifies the constant units of p for consumer q; the merge target and the one unit a
 * layer keeps when all would go. */
static void classify(int units, int foldable, unsigned char *fate, const float *v,
                     const unsigned char *shaped)
{
    int target = -1, removed = 0;
    for (int u = 0; u < units; u++) {
        if (fate[u] != FATE_CONST) continue;
        if (v[u] == 0.0f) fate[u] = FATE_ZERO;
        else if (!shaped[u] && foldable) fate[u] = FATE_FOLD;
        else {
            fate[u] = FATE_MERGE;
            if (target < 0 || fabsf(v[u]) > fabsf(v[target])) target = u;
        }
    }
    if (target >= 0) fate[target] = FATE_MERGE_KEEP;
    for (int u = 0; u < units; u++) removed += !fate_kept(fate[u]);
    if (removed == units) fate[0] = FATE_HELD; /* no merge target then: only zero / fold */
}

static elag_status thin_layer(elag_export *e, const elag_model *im, int p, elag_thin_layer *rep)
{
    const elag_layer *P = &im->layers[p];
    elag_export_tensor *w = find_tensor(e, P->cfg.name, "weight");
    elag_export_tensor *bias = find_tensor(e, P->cfg.name, "bias");
    ELAG_ASSERT(w && w->is_weight && w->w.format == ELAG_SPARSE_FORMAT_DENSE);
    const int units = w->w.rows, cols = w->w.cols;
    snprintf(rep->name, sizeof rep->name, "%s", P->cfg.name);
    rep->original = rep->kept = units;
    int q = consumer_of(im, p);
    unsigned char *fate = calloc((size_t)units, 2);
    float *v = calloc((size_t)units, sizeof *v);
    if (!fate || !v) {
        free(fate);
        free(v);
        return elag_fail(ELAG_ERR_NOMEM, "thin: out of host memory");
    }
    unsigned char *shaped = fate + units;
    int constants = 0;
    for (int u = 0; u < units; u++)
        if (row_is_zero(w->w.dense + (size_t)u * cols, cols)) {
            fate[u] = FATE_CONST;
            v[u] = bias ? bias->data[u] : 0.0f;
            constants++;
        }
    elag_status st = ELAG_OK;
    if (q < 0 || constants == 0) { /* nothing to remove: constants (if any) are held */
        rep->held = constants;
        goto out;
    }
    const elag_layer *Q = &im->layers[q];
    elag_export_tensor *qw = find_tensor(e, Q->cfg.name, "weight");
    elag_export_tensor *qb = find_tensor(e, Q->cfg.name, "bias");
    ELAG_ASSERT(qw && qw->w.format == ELAG_SPARSE_FORMAT_DENSE && qw->w.cols % units == 0);
    const int gw = qw->w.cols / units, qrows = qw->w.rows; /* Q's columns per unit of P */
    carry_constants(e, im, p, q, units, fate, v, shaped);
    int foldable = Q->cfg.type == ELAG_LAYER_LINEAR ||
                   (Q->cfg.padding[0] == 0 && Q->cfg.padding[1] == 0);
    classify(units, foldable, fate, v, shaped);

    int target = -1, folds = 0;
    for (int u = 0; u < units; u++) {
        target = fate[u] == FATE_MERGE_KEEP ? u : target;
        folds += fate[u] == FATE_FOLD;
    }
    if (folds && !qb) ELAG_TRY_GOTO(st, add_bias(e, q, Q->cfg.name, qrows, &qb), out);
    for (int r = 0; r < qrows; r++) {
        float *row = qw->w.dense + (size_t)r * qw->w.cols; /* (units, gw) */
        double acc = 0.0;
        for (int u = 0; folds && u < units; u++) {
            if (fate[u] != FATE_FOLD) continue;
            double s = 0.0;
            for (int c = 0; c < gw; c++) s += row[(size_t)u * gw + c];
            acc += (double)v[u] * s;
        }
        if (folds) qb->data[r] = (float)((double)qb->data[r] + acc);
        for (int c = 0; target >= 0 && c < gw; c++) {
            double m = row[(size_t)target * gw + c];
            for (int u = 0; u < units; u++)
                if (fate[u] == FATE_MERGE)
                    m += (double)v[u] / (double)v[target] * row[(size_t)u * gw + c];
            row[(size_t)target * gw + c] = (float)m;
        }
    }

    /* cut: P's rows and bias, the chain's batch norms, Q's column groups */
    int kept = keep_rows(w->w.dense, units, (size_t)cols, fate);
    if (bias) keep_rows(bias->data, units, 1, fate);
    for (int i = p + 1; i < q; i++) {
        if (im->layers[i].cfg.type != ELAG_LAYER_BATCHNORM) continue;
        static const char *const bn[] = {"weight", "bias", "running_mean", "running_var"};
        for (int k = 0; k < 4; k++) {
            elag_export_tensor *t = find_tensor(e, im->layers[i].cfg.name, bn[k]);
            keep_rows(t->data, units, 1, fate);
            t->shape[0] = kept;
        }
    }
    keep_groups(qw->w.dense, qrows, units, gw, fate);
    qw->w.cols = kept * gw;
    qw->shape[1] = qw->shape[1] / units * kept;
    recount(qw);
    w->w.rows = kept;
    w->shape[0] = kept;
    recount(w);
    if (bias) bias->shape[0] = kept;
    elag_layer_config *lc = &e->cfg.model.layers[p];
    if (lc->type == ELAG_LAYER_LINEAR) lc->out_features = kept;
    else lc->out_channels = kept;
    rep->kept = kept;
    for (int u = 0; u < units; u++) {
        rep->zero += fate[u] == FATE_ZERO;
        rep->folded += fate[u] == FATE_FOLD;
        rep->merged += fate[u] == FATE_MERGE;
        rep->held += fate[u] == FATE_HELD || fate[u] == FATE_MERGE_KEEP;
    }
out:
    free(fate);
    free(v);
    return st;
}

/* Puts e's tensors in the registry order of the model its (thinned) config builds,
 * checking each one's shape against it. */
static elag_status rebuild(elag_export *e, elag_backend *be)
{
    elag_model im;
    memset(&im, 0, sizeof im);
    elag_status st = elag_model_init(&im, &e->cfg, e->input, e->classes, 1, 0, be);
    if (st != ELAG_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", elag_last_error());
        st = elag_fail(ELAG_ERR_INTERNAL, "thin: the thinned graph does not build: %s", why);
        elag_model_free(&im);
        return st;
    }
    int from[ELAG_MAX_PARAMS];
    if (im.n_reg != e->n_tensors)
        st = elag_fail(ELAG_ERR_INTERNAL, "thin: %d tensors, the thinned graph has %d",
                       e->n_tensors, im.n_reg);
    for (int j = 0; st == ELAG_OK && j < im.n_reg; j++) {
        const elag_param *p = &im.reg[j];
        from[j] = -1;
        for (int i = 0; i < e->n_tensors && from[j] < 0; i++)
            if (strcmp(e->t[i].name, p->name) == 0) from[j] = i;
        int same = from[j] >= 0 && e->t[from[j]].ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = e->t[from[j]].shape[d] == p->shape[d];
        if (!same) st = elag_fail(ELAG_ERR_INTERNAL, "thin: tensor '%s' does not fit", p->name);
    }
    if (st == ELAG_OK) {
        elag_export_tensor *old = malloc((size_t)e->n_tensors * sizeof *old);
        if (!old) st = elag_fail(ELAG_ERR_NOMEM, "thin: out of host memory");
        else {
            memcpy(old, e->t, (size_t)e->n_tensors * sizeof *old);
            for (int j = 0; j < im.n_reg; j++) {
                elag_export_tensor *t = &e->t[j];
                elag_export_tensor_describe(t, &im, j); /* layer index, rows, cols, relu */
                if (t->is_weight) {
                    int rows = t->w.rows, cols = t->w.cols;
                    t->w = old[from[j]].w;
                    ELAG_ASSERT(t->w.rows == rows && t->w.cols == cols);
                } else {
                    t->data = old[from[j]].data;
                }
            }
            free(old);
        }
    }
    elag_model_free(&im);
    if (st != ELAG_OK) return st;
    free(e->config_yaml);
    e->config_yaml = NULL;
    return elag_config_to_yaml(&e->cfg, &e->config_yaml);
}

elag_status elag_export_thin(elag_export *e)
{
    if (e->n_thin > 0) return elag_fail(ELAG_ERR_USAGE, "thin: the export is thinned already");
    for (int i = 0; i < e->n_tensors; i++)
        if (e->t[i].is_weight && e->t[i].w.format != ELAG_SPARSE_FORMAT_DENSE)
            return elag_fail(ELAG_ERR_USAGE, "thin: weight '%s' is %s; thin before converting",
                             e->t[i].name, elag_sparse_format_name(e->t[i].w.format));
    elag_backend *be = NULL;
    elag_model im;
    memset(&im, 0, sizeof im);
    elag_status st;
    ELAG_TRY_GOTO(st, elag_backend_open("cpu", 1, &be, NULL, 0), done);
    /* the graph's structure (kinds, chain, padding); widths are read from the tensors */
    ELAG_TRY_GOTO(st, elag_model_init(&im, &e->cfg, e->input, e->classes, 1, 0, be), done);
    for (int p = 0; p < im.n_layers; p++) {
        if (!im.layers[p].kind->sparse_weight) continue;
        elag_thin_layer *rep = &e->thin[e->n_thin++];
        memset(rep, 0, sizeof *rep);
        ELAG_TRY_GOTO(st, thin_layer(e, &im, p, rep), done);
    }
    st = rebuild(e, be);
done:
    elag_model_free(&im);
    elag_backend_free(be);
    return st;
}

elag_status elag_export_logits(const elag_export *e, elag_backend *be, const float *x, int n,
                               float *logits)
{
    elag_sparse_net net;
    ELAG_TRY(elag_sparse_net_init(&net, e, be, n, 1));
    elag_status st = elag_sparse_net_forward(&net, x, n, logits);
    elag_sparse_net_free(&net);
    return st;
}
