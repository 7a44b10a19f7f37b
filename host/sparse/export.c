/*
 * Writing exports (export.h): a checkpoint turned into the inference graph (masks applied,
 * batch norms folded, dropout left out), weights converted to dense, CSR or Blocked-ELL,
 * saved as one safetensors file through the atomic writer. Reading and validation live in
 * export_read.c, the `auto` timing in export_auto.c.
 */
#include "sparse/export.h"

#include "core/check.h"
#include "io/safetensors.h"
#include "prune/mask.h"
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

elag_status elag_export_parse_spec(const char *text, elag_export_spec *out)
{
    memset(out, 0, sizeof *out);
    out->block = 16;
    if (!text) return elag_fail(ELAG_ERR_USAGE, "--format: missing value");
    if (strcmp(text, "auto") == 0) {
        out->is_auto = 1;
        return ELAG_OK;
    }
    if (strcmp(text, "dense") == 0) {
        out->format = ELAG_SPARSE_FORMAT_DENSE;
        return ELAG_OK;
    }
    if (strcmp(text, "csr") == 0) {
        out->format = ELAG_SPARSE_FORMAT_CSR;
        return ELAG_OK;
    }
    if (strncmp(text, "bell", 4) == 0 && (text[4] == '\0' || text[4] == ':')) {
        out->format = ELAG_SPARSE_FORMAT_BELL;
        if (text[4] == '\0') return ELAG_OK;
        char *end;
        errno = 0;
        long b = strtol(text + 5, &end, 10);
        if (errno || end == text + 5 || *end || b < 1 || b > 1024)
            return elag_fail(ELAG_ERR_USAGE, "--format %s: block size must be an integer in "
                                             "1..1024", text);
        out->block = (int)b;
        return ELAG_OK;
    }
    return elag_fail(ELAG_ERR_USAGE, "--format '%s': expected dense, csr, bell, bell:B or auto",
                     text);
}

void elag_export_free(elag_export *e)
{
    if (!e) return;
    for (int i = 0; i < e->n_tensors; i++) {
        elag_sparse_host_free(&e->t[i].w);
        free(e->t[i].data);
    }
    free(e->config_yaml);
    memset(e, 0, sizeof *e);
}

const char *elag_export_tensor_format(const elag_export_tensor *t, char *buf, size_t len)
{
    if (!t->is_weight) snprintf(buf, len, "-");
    else if (t->w.format == ELAG_SPARSE_FORMAT_BELL) snprintf(buf, len, "bell:%d", t->w.block);
    else snprintf(buf, len, "%s", elag_sparse_format_name(t->w.format));
    return buf;
}

void elag_export_formats(const elag_export *e, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < e->n_tensors && at < len; i++) {
        if (!e->t[i].is_weight) continue;
        char fmt[16];
        at += (size_t)snprintf(buf + at, len - at, "%s%s", at ? "," : "",
                               elag_export_tensor_format(&e->t[i], fmt, sizeof fmt));
    }
}

static int64_t count_nonzero(const float *v, int64_t n)
{
    int64_t z = 0;
    for (int64_t i = 0; i < n; i++) z += v[i] != 0.0f;
    return z;
}

/* Nonzero values of a weight in any format (BELL padding holds zeros). */
static int64_t weight_nonzero(const elag_sparse_host *w)
{
    switch (w->format) {
    case ELAG_SPARSE_FORMAT_DENSE: return count_nonzero(w->dense, (int64_t)w->rows * w->cols);
    case ELAG_SPARSE_FORMAT_CSR: return count_nonzero(w->values, w->nnz);
    case ELAG_SPARSE_FORMAT_BELL:
        return count_nonzero(w->values, (int64_t)w->block_rows * w->block * w->ell_cols * w->block);
    }
    return 0;
}

void elag_export_sparsity(const elag_export *e, int64_t *params, int64_t *nonzero,
                          double *sparsity)
{
    int64_t p = 0, nz = 0;
    for (int i = 0; i < e->n_tensors; i++) {
        const elag_export_tensor *t = &e->t[i];
        if (!t->is_weight || !t->prunable) continue;
        p += (int64_t)t->w.rows * t->w.cols;
        nz += weight_nonzero(&t->w);
    }
    if (params) *params = p;
    if (nonzero) *nonzero = nz;
    if (sparsity) *sparsity = p ? 1.0 - (double)nz / (double)p : 0.0;
}

elag_status elag_export_convert(elag_export *e, int i, elag_sparse_format format, int block)
{
    elag_export_tensor *t = &e->t[i];
    if (!t->is_weight) return ELAG_OK;
    if (t->w.format == format && (format != ELAG_SPARSE_FORMAT_BELL || t->w.block == block))
        return ELAG_OK;
    size_t n = (size_t)t->w.rows * t->w.cols;
    float *dense = malloc((n ? n : 1) * sizeof *dense); /* (rows, cols) */
    if (!dense) return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
    elag_status st = elag_sparse_to_dense(&t->w, dense);
    elag_sparse_host h;
    if (st == ELAG_OK) st = elag_sparse_from_dense(dense, t->w.rows, t->w.cols, format, block, &h);
    free(dense);
    if (st != ELAG_OK) return st;
    elag_sparse_host_free(&t->w);
    t->w = h;
    return ELAG_OK;
}

elag_status elag_export_convert_all(elag_export *e, elag_sparse_format format, int block)
{
    for (int i = 0; i < e->n_tensors; i++) ELAG_TRY(elag_export_convert(e, i, format, block));
    return ELAG_OK;
}

/* ---- from a checkpoint ---- */

void elag_export_tensor_describe(elag_export_tensor *t, const elag_model *im, int j)
{
    const elag_param *p = &im->reg[j];
    const elag_layer *l = &im->layers[p->layer];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", p->name);
    t->layer = p->layer;
    t->ndim = p->ndim;
    memcpy(t->shape, p->shape, sizeof t->shape);
    t->prunable = p->prunable;
    if (p->role == ELAG_PARAM_WEIGHT && l->kind->sparse_weight && j == l->first_param) {
        t->is_weight = 1;
        t->columns_per_sample = l->out.h * l->out.w;
        t->relu = l->relu;
        t->w.rows = p->rows;
        t->w.cols = p->cols;
    }
}

/* Fills the export's tensors from an inference model `im` in host memory. */
elag_status elag_export_take_tensors(elag_export *e, const elag_model *im)
{
    for (int j = 0; j < im->n_reg; j++) {
        const elag_param *p = &im->reg[j];
        elag_export_tensor *t = &e->t[j];
        e->n_tensors = j + 1;
        elag_export_tensor_describe(t, im, j);
        const float *src = im->params + p->offset;
        if (t->is_weight) {
            t->w.format = ELAG_SPARSE_FORMAT_DENSE;
            t->w.dense = malloc(p->count * sizeof(float));
            if (!t->w.dense) return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
            memcpy(t->w.dense, src, p->count * sizeof(float));
            t->w.nnz = count_nonzero(t->w.dense, (int64_t)p->count);
        } else {
            t->data = malloc(p->count * sizeof(float));
            if (!t->data) return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
            memcpy(t->data, src, p->count * sizeof(float));
        }
    }
    return ELAG_OK;
}

/* Folds batch norm `bn` (a layer of the training model m) into the weight and bias of
 * layer `into` of the inference model im. */
static elag_status fold_batchnorm(const elag_model *m, const elag_layer *bn, elag_model *im,
                                  const elag_layer *into)
{
    const float *gamma = m->params + m->reg[bn->first_param].offset;
    const float *beta = m->params + m->reg[bn->first_param + 1].offset;
    const float *mean = m->params + m->reg[bn->first_param + 2].offset;
    const float *var = m->params + m->reg[bn->first_param + 3].offset;
    const elag_param *w = &im->reg[into->first_param], *b = &im->reg[into->first_param + 1];
    ELAG_ASSERT(into->n_params == 2 && b->count == (size_t)w->rows && w->rows == bn->in.c);
    float *wp = im->params + w->offset, *bp = im->params + b->offset;
    for (int o = 0; o < w->rows; o++) {
        double s = (double)gamma[o] / sqrt((double)var[o] + bn->cfg.eps);
        for (int k = 0; k < w->cols; k++) {
            float *x = &wp[(size_t)o * w->cols + k];
            *x = (float)((double)*x * s);
        }
        bp[o] = (float)(((double)bp[o] - (double)mean[o]) * s + (double)beta[o]);
    }
    return ELAG_OK;
}

/* The inference graph of cfg's model: dropout left out, a batch norm right after a conv2d
 * or linear layer folded into it (that layer gets a bias). fold[i] is the graph index a
 * training layer i's batch norm folds into, -1 otherwise; graph_of[i] the graph index of
 * training layer i (-1 when left out or folded). */
static void inference_graph(const elag_model *m, elag_config *g, int *fold, int *graph_of)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const elag_layer *l = &m->layers[i];
        fold[i] = graph_of[i] = -1;
        if (l->cfg.type == ELAG_LAYER_DROPOUT) continue;
        if (l->cfg.type == ELAG_LAYER_BATCHNORM && n > 0 && graph_of[i - 1] == n - 1 &&
            m->layers[i - 1].kind->sparse_weight) {
            fold[i] = n - 1;
            g->model.layers[n - 1].bias = 1;
            continue;
        }
        graph_of[i] = n;
        g->model.layers[n++] = l->cfg;
    }
    g->model.n_layers = n;
    memset(g->model.preset, 0, sizeof g->model.preset);
}

elag_status elag_export_from_checkpoint(const char *ckpt_path, elag_export *out)
{
    memset(out, 0, sizeof *out);
    elag_checkpoint ck;
    ELAG_TRY(elag_checkpoint_open(ckpt_path, &ck));
    elag_backend *be = NULL;
    elag_model m, im;
    memset(&m, 0, sizeof m);
    memset(&im, 0, sizeof im);
    int fold[ELAG_MAX_LAYERS], graph_of[ELAG_MAX_LAYERS];
    elag_status st;
    ELAG_TRY_GOTO(st, elag_backend_open("cpu", 1, &be, NULL, 0), done);
    ELAG_TRY_GOTO(st, elag_model_init(&m, &ck.cfg, ck.input, ck.classes, 1, 0, be), done);
    ELAG_TRY_GOTO(st, elag_checkpoint_restore(&ck, &m, 0), done);
    ELAG_TRY_GOTO(st, elag_mask_apply_all(&m), done);
    out->cfg = ck.cfg;
    memset(out->cfg.model.layers, 0, sizeof out->cfg.model.layers);
    inference_graph(&m, &out->cfg, fold, graph_of);
    ELAG_TRY_GOTO(st, elag_model_init(&im, &out->cfg, ck.input, ck.classes, 1, 0, be), done);
    /* every tensor of the graph from the training model (a folded layer's new bias is 0) */
    for (int j = 0; j < im.n_reg; j++) {
        const elag_param *p = &im.reg[j], *src = elag_model_find_param(&m, p->name);
        float *dst = im.params + p->offset;
        if (src) memcpy(dst, m.params + src->offset, p->count * sizeof(float));
        else memset(dst, 0, p->count * sizeof(float));
    }
    for (int i = 0; i < m.n_layers; i++)
        if (fold[i] >= 0)
            ELAG_TRY_GOTO(st, fold_batchnorm(&m, &m.layers[i], &im, &im.layers[fold[i]]), done);
    out->input = ck.input;
    out->input_dim = ck.input_dim;
    out->classes = ck.classes;
    ELAG_TRY_GOTO(st, elag_export_take_tensors(out, &im), done);
    ELAG_TRY_GOTO(st, elag_config_to_yaml(&out->cfg, &out->config_yaml), done);
done:
    elag_model_free(&im);
    elag_model_free(&m);
    elag_backend_free(be);
    elag_checkpoint_close(&ck);
    if (st != ELAG_OK) elag_export_free(out);
    return st;
}

/* ---- saving ---- */

static elag_status add_meta_int(elag_st_writer *w, const char *key, long long v)
{
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
    return elag_st_writer_meta(w, key, num);
}

void elag_export_shape_text(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "[");
    for (int d = 0; d < ndim && at < len; d++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (at < len) snprintf(buf + at, len - at, "]");
}

static elag_status save_weight(elag_st_writer *w, const elag_export_tensor *t)
{
    const elag_sparse_host *a = &t->w;
    char name[ELAG_PARAM_NAME_LEN + 32], key[ELAG_PARAM_NAME_LEN + 32], text[96];
    switch (a->format) {
    case ELAG_SPARSE_FORMAT_DENSE:
        ELAG_TRY(elag_st_writer_add(w, t->name, ELAG_DTYPE_F32, t->ndim, t->shape, a->dense));
        break;
    case ELAG_SPARSE_FORMAT_CSR: {
        int64_t ptr_shape[1] = {(int64_t)a->rows + 1}, nnz_shape[1] = {a->nnz};
        snprintf(name, sizeof name, "%s.indptr", t->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_I32, 1, ptr_shape, a->indptr));
        snprintf(name, sizeof name, "%s.indices", t->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_I32, 1, nnz_shape, a->indices));
        snprintf(name, sizeof name, "%s.values", t->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_F32, 1, nnz_shape, a->values));
        break;
    }
    case ELAG_SPARSE_FORMAT_BELL: {
        int64_t ci_shape[2] = {a->block_rows, a->ell_cols};
        int64_t v_shape[2] = {(int64_t)a->block_rows * a->block, (int64_t)a->ell_cols * a->block};
        snprintf(name, sizeof name, "%s.bell_col_ind", t->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_I32, 2, ci_shape, a->col_ind));
        snprintf(name, sizeof name, "%s.bell_values", t->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_F32, 2, v_shape, a->values));
        snprintf(key, sizeof key, "%s.block", t->name);
        ELAG_TRY(add_meta_int(w, key, a->block));
        break;
    }
    }
    snprintf(key, sizeof key, "%s.format", t->name);
    ELAG_TRY(elag_st_writer_meta(w, key, elag_sparse_format_name(a->format)));
    snprintf(key, sizeof key, "%s.shape", t->name);
    elag_export_shape_text(t->shape, t->ndim, text, sizeof text);
    ELAG_TRY(elag_st_writer_meta(w, key, text));
    snprintf(key, sizeof key, "%s.nnz", t->name);
    return add_meta_int(w, key, weight_nonzero(a));
}

static cJSON *shape_json(elag_fshape s)
{
    cJSON *a = cJSON_CreateArray();
    if (!a) return NULL;
    cJSON_AddItemToArray(a, cJSON_CreateNumber(s.c));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(s.h));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(s.w));
    return a;
}

char *elag_export_graph_json(const elag_export *e, const elag_model *im)
{
    cJSON *arr = cJSON_CreateArray();
    int ok = arr != NULL;
    for (int i = 0; ok && i < im->n_layers; i++) {
        const elag_layer *l = &im->layers[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        const elag_export_tensor *w = NULL;
        for (int j = 0; j < e->n_tensors; j++)
            if (e->t[j].layer == i && e->t[j].is_weight) w = &e->t[j];
        ok = cJSON_AddStringToObject(o, "name", l->cfg.name) &&
             cJSON_AddStringToObject(o, "type", l->kind->name) &&
             cJSON_AddNumberToObject(o, "in", (double)elag_fshape_count(l->in)) &&
             cJSON_AddNumberToObject(o, "out", (double)elag_fshape_count(l->out)) &&
             cJSON_AddItemToObject(o, "in_shape", shape_json(l->in)) &&
             cJSON_AddItemToObject(o, "out_shape", shape_json(l->out)) &&
             cJSON_AddBoolToObject(o, "bias", l->kind->sparse_weight && l->cfg.bias) &&
             cJSON_AddBoolToObject(o, "prunable", l->kind->sparse_weight && l->cfg.prunable);
        if (ok && w)
            ok = cJSON_AddStringToObject(o, "format", elag_sparse_format_name(w->w.format)) != NULL;
        else if (ok)
            ok = cJSON_AddNullToObject(o, "format") != NULL;
    }
    char *text = ok ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return text;
}

char *elag_export_thin_json(const elag_export *e)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    for (int i = 0; ok && i < e->n_thin; i++) {
        cJSON *pair = cJSON_CreateArray();
        ok = pair && cJSON_AddItemToObject(o, e->thin[i].name, pair);
        if (!ok) {
            cJSON_Delete(pair);
            break;
        }
        ok = cJSON_AddItemToArray(pair, cJSON_CreateNumber(e->thin[i].kept)) &&
             cJSON_AddItemToArray(pair, cJSON_CreateNumber(e->thin[i].original));
    }
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

elag_status elag_export_save(const elag_export *e, const char *path)
{
    elag_st_writer *w = NULL;
    elag_backend *be = NULL;
    elag_model im;
    memset(&im, 0, sizeof im);
    char *graph = NULL, text[96];
    elag_status st;
    ELAG_TRY(elag_st_writer_init(&w));
    for (int i = 0; i < e->n_tensors; i++) {
        const elag_export_tensor *t = &e->t[i];
        if (t->is_weight) ELAG_TRY_GOTO(st, save_weight(w, t), done);
        else ELAG_TRY_GOTO(st, elag_st_writer_add(w, t->name, ELAG_DTYPE_F32, t->ndim, t->shape,
                                                  t->data), done);
    }
    /* the graph's shapes come from the model the config builds (no tensors are read) */
    ELAG_TRY_GOTO(st, elag_backend_open("cpu", 1, &be, NULL, 0), done);
    ELAG_TRY_GOTO(st, elag_model_init(&im, &e->cfg, e->input, e->classes, 1, 0, be), done);
    graph = elag_export_graph_json(e, &im);
    if (!graph) {
        st = elag_fail(ELAG_ERR_NOMEM, "export: out of memory building the graph");
        goto done;
    }
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "format", ELAG_EXPORT_FORMAT), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "elag_version", ELAG_VERSION), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "graph", graph), done);
    ELAG_TRY_GOTO(st, add_meta_int(w, "input_dim", e->input_dim), done);
    snprintf(text, sizeof text, "[%d, %d, %d]", e->input.c, e->input.h, e->input.w);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "input_shape", text), done);
    ELAG_TRY_GOTO(st, add_meta_int(w, "classes", e->classes), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "config", e->config_yaml), done);
    if (e->n_thin > 0) {
        char *thin = elag_export_thin_json(e);
        if (!thin) {
            st = elag_fail(ELAG_ERR_NOMEM, "export: out of memory");
            goto done;
        }
        st = elag_st_writer_meta(w, "thinned", thin);
        free(thin);
        if (st != ELAG_OK) goto done;
    }
    st = elag_st_writer_save(w, path);
done:
    free(graph);
    elag_model_free(&im);
    elag_backend_free(be);
    elag_st_writer_free(w);
    return st;
}
