/*
 * Writing exports (export.h): a checkpoint's masked weights, biases, layer graph and
 * config, with each linear weight converted to dense, CSR or Blocked-ELL, saved as
 * one safetensors file through the atomic writer. Reading and validation live in
 * export_read.c, the `auto` timing in export_auto.c.
 */
#include "sparse/export.h"

#include "core/check.h"
#include "io/safetensors.h"
#include "train/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
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
    for (int i = 0; i < e->n_layers; i++) {
        elag_sparse_host_free(&e->layers[i].w);
        free(e->layers[i].bias);
    }
    free(e->config_yaml);
    memset(e, 0, sizeof *e);
}

const char *elag_export_layer_format(const elag_export_layer *l, char *buf, size_t len)
{
    if (l->type != ELAG_LAYER_LINEAR) snprintf(buf, len, "-");
    else if (l->w.format == ELAG_SPARSE_FORMAT_BELL) snprintf(buf, len, "bell:%d", l->w.block);
    else snprintf(buf, len, "%s", elag_sparse_format_name(l->w.format));
    return buf;
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
    for (int i = 0; i < e->n_layers; i++) {
        const elag_export_layer *l = &e->layers[i];
        if (l->type != ELAG_LAYER_LINEAR || !l->prunable) continue;
        p += (int64_t)l->out * l->in;
        nz += weight_nonzero(&l->w);
    }
    if (params) *params = p;
    if (nonzero) *nonzero = nz;
    if (sparsity) *sparsity = p ? 1.0 - (double)nz / (double)p : 0.0;
}

elag_status elag_export_convert(elag_export *e, int i, elag_sparse_format format, int block)
{
    elag_export_layer *l = &e->layers[i];
    ELAG_ASSERT(l->type == ELAG_LAYER_LINEAR);
    if (l->w.format == format && (format != ELAG_SPARSE_FORMAT_BELL || l->w.block == block))
        return ELAG_OK;
    size_t n = (size_t)l->out * l->in;
    float *dense = malloc((n ? n : 1) * sizeof *dense); /* (out, in) */
    if (!dense) return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
    elag_status st = elag_sparse_to_dense(&l->w, dense);
    elag_sparse_host h;
    if (st == ELAG_OK) st = elag_sparse_from_dense(dense, l->out, l->in, format, block, &h);
    free(dense);
    if (st != ELAG_OK) return st;
    elag_sparse_host_free(&l->w);
    l->w = h;
    return ELAG_OK;
}

/* ---- from a checkpoint ---- */

static elag_status read_linear(const elag_checkpoint *ck, elag_export_layer *l)
{
    char name[ELAG_NAME_LEN + 32];
    const char *path = elag_st_path(ck->file);
    int64_t wshape[2] = {l->out, l->in}, bshape[1] = {l->out};
    size_t n = (size_t)l->out * l->in;
    const elag_st_tensor *t, *mt = NULL;
    snprintf(name, sizeof name, "%s.weight", l->name);
    ELAG_TRY(elag_st_expect(ck->file, name, ELAG_DTYPE_F32, 2, wshape, &t));
    if (l->prunable) {
        snprintf(name, sizeof name, "%s.mask", l->name);
        ELAG_TRY(elag_st_expect(ck->file, name, ELAG_DTYPE_U8, 2, wshape, &mt));
    }
    float *w = malloc((n ? n : 1) * sizeof *w); /* (out, in) masked */
    if (!w) return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
    memcpy(w, t->data, n * sizeof *w);
    if (mt) {
        const uint8_t *mask = mt->data;
        for (size_t i = 0; i < n; i++) {
            if (mask[i] > 1) {
                free(w);
                return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' holds %u at %zu (masks are 0/1)",
                                 path, name, mask[i], i);
            }
            if (!mask[i]) w[i] = 0.0f;
        }
    }
    l->w.format = ELAG_SPARSE_FORMAT_DENSE;
    l->w.rows = l->out;
    l->w.cols = l->in;
    l->w.dense = w;
    l->w.nnz = count_nonzero(w, (int64_t)n);
    if (l->has_bias) {
        snprintf(name, sizeof name, "%s.bias", l->name);
        ELAG_TRY(elag_st_expect(ck->file, name, ELAG_DTYPE_F32, 1, bshape, &t));
        l->bias = malloc((size_t)l->out * sizeof *l->bias);
        if (!l->bias) return elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
        memcpy(l->bias, t->data, (size_t)l->out * sizeof *l->bias);
    }
    return ELAG_OK;
}

elag_status elag_export_from_checkpoint(const char *ckpt_path, elag_export *out)
{
    memset(out, 0, sizeof *out);
    elag_checkpoint ck;
    ELAG_TRY(elag_checkpoint_open(ckpt_path, &ck));
    elag_status st = ELAG_OK;
    const elag_config *cfg = &ck.cfg;
    out->input_dim = ck.input_dim;
    out->classes = ck.classes;
    const char *yaml = elag_st_meta(ck.file, "config");
    out->config_yaml = malloc(strlen(yaml) + 1);
    if (!out->config_yaml) {
        st = elag_fail(ELAG_ERR_NOMEM, "export: out of host memory");
        goto done;
    }
    strcpy(out->config_yaml, yaml);
    int width = ck.input_dim;
    for (int i = 0; i < cfg->model.n_layers; i++) {
        const elag_layer_config *lc = &cfg->model.layers[i];
        elag_export_layer *l = &out->layers[i];
        out->n_layers = i + 1;
        snprintf(l->name, sizeof l->name, "%s", lc->name);
        l->type = lc->type;
        l->in = width;
        l->out = lc->type == ELAG_LAYER_LINEAR ? lc->out_features : width;
        if (lc->type == ELAG_LAYER_LINEAR) {
            l->has_bias = lc->bias;
            l->prunable = lc->prunable;
            ELAG_TRY_GOTO(st, read_linear(&ck, l), done);
        }
        width = l->out;
    }
    if (width != ck.classes)
        st = elag_fail(ELAG_ERR_INPUT, "%s: the last layer has %d outputs, the checkpoint says %d "
                                       "classes", ckpt_path, width, ck.classes);
done:
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

static elag_status save_weight(elag_st_writer *w, const elag_export_layer *l)
{
    const elag_sparse_host *a = &l->w;
    char name[ELAG_NAME_LEN + 48], key[ELAG_NAME_LEN + 48], text[64];
    switch (a->format) {
    case ELAG_SPARSE_FORMAT_DENSE: {
        int64_t shape[2] = {a->rows, a->cols};
        snprintf(name, sizeof name, "%s.weight", l->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_F32, 2, shape, a->dense));
        break;
    }
    case ELAG_SPARSE_FORMAT_CSR: {
        int64_t ptr_shape[1] = {(int64_t)a->rows + 1}, nnz_shape[1] = {a->nnz};
        snprintf(name, sizeof name, "%s.weight.indptr", l->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_I32, 1, ptr_shape, a->indptr));
        snprintf(name, sizeof name, "%s.weight.indices", l->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_I32, 1, nnz_shape, a->indices));
        snprintf(name, sizeof name, "%s.weight.values", l->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_F32, 1, nnz_shape, a->values));
        break;
    }
    case ELAG_SPARSE_FORMAT_BELL: {
        int64_t ci_shape[2] = {a->block_rows, a->ell_cols};
        int64_t v_shape[2] = {(int64_t)a->block_rows * a->block, (int64_t)a->ell_cols * a->block};
        snprintf(name, sizeof name, "%s.weight.bell_col_ind", l->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_I32, 2, ci_shape, a->col_ind));
        snprintf(name, sizeof name, "%s.weight.bell_values", l->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_F32, 2, v_shape, a->values));
        snprintf(key, sizeof key, "%s.weight.block", l->name);
        ELAG_TRY(add_meta_int(w, key, a->block));
        break;
    }
    }
    snprintf(key, sizeof key, "%s.weight.format", l->name);
    ELAG_TRY(elag_st_writer_meta(w, key, elag_sparse_format_name(a->format)));
    snprintf(key, sizeof key, "%s.weight.shape", l->name);
    snprintf(text, sizeof text, "[%d, %d]", a->rows, a->cols);
    ELAG_TRY(elag_st_writer_meta(w, key, text));
    snprintf(key, sizeof key, "%s.weight.nnz", l->name);
    ELAG_TRY(add_meta_int(w, key, weight_nonzero(a)));
    if (l->has_bias) {
        int64_t bshape[1] = {l->out};
        snprintf(name, sizeof name, "%s.bias", l->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_F32, 1, bshape, l->bias));
    }
    return ELAG_OK;
}

/* The "graph" metadata: every layer in order (malloc'd JSON text, or NULL). */
static char *graph_json(const elag_export *e)
{
    cJSON *arr = cJSON_CreateArray();
    int ok = arr != NULL;
    for (int i = 0; ok && i < e->n_layers; i++) {
        const elag_export_layer *l = &e->layers[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        ok = cJSON_AddStringToObject(o, "name", l->name) &&
             cJSON_AddStringToObject(o, "type", elag_layer_kind_name(l->type)) &&
             cJSON_AddNumberToObject(o, "in", l->in) && cJSON_AddNumberToObject(o, "out", l->out) &&
             cJSON_AddBoolToObject(o, "bias", l->has_bias) &&
             cJSON_AddBoolToObject(o, "prunable", l->prunable);
        if (ok && l->type == ELAG_LAYER_LINEAR)
            ok = cJSON_AddStringToObject(o, "format", elag_sparse_format_name(l->w.format)) != NULL;
        else if (ok)
            ok = cJSON_AddNullToObject(o, "format") != NULL;
    }
    char *text = ok ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return text;
}

elag_status elag_export_save(const elag_export *e, const char *path)
{
    elag_st_writer *w = NULL;
    char *graph = NULL;
    elag_status st;
    ELAG_TRY(elag_st_writer_init(&w));
    for (int i = 0; i < e->n_layers; i++)
        if (e->layers[i].type == ELAG_LAYER_LINEAR)
            ELAG_TRY_GOTO(st, save_weight(w, &e->layers[i]), done);
    graph = graph_json(e);
    if (!graph) {
        st = elag_fail(ELAG_ERR_NOMEM, "export: out of memory building the graph");
        goto done;
    }
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "format", ELAG_EXPORT_FORMAT), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "elag_version", ELAG_VERSION), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "graph", graph), done);
    ELAG_TRY_GOTO(st, add_meta_int(w, "input_dim", e->input_dim), done);
    ELAG_TRY_GOTO(st, add_meta_int(w, "classes", e->classes), done);
    if (e->config_yaml) ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "config", e->config_yaml), done);
    st = elag_st_writer_save(w, path);
done:
    free(graph);
    elag_st_writer_free(w);
    return st;
}
