/*
 * Reading exports (export.h). Nothing in the file is trusted: the format tag, the
 * graph (names, types, a chain of widths from input_dim to classes), every weight's
 * metadata (format, shape, block) against its tensors' names, dtypes and shapes, the
 * sparse arrays' invariants (elag_sparse_validate), and no tensor may be left over.
 * Every failure is ELAG_ERR_INPUT naming the file and the tensor or key.
 */
#include "sparse/export.h"

#include "core/check.h"
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD(...) elag_fail(ELAG_ERR_INPUT, __VA_ARGS__)

static elag_status meta_int(const elag_st_file *f, const char *key, long lo, long hi, long *out)
{
    const char *v = elag_st_meta(f, key);
    if (!v) return BAD("%s: not a valid elag export (no '%s' in metadata)", elag_st_path(f), key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return BAD("%s: bad metadata %s='%s' (expected an integer in %ld..%ld)", elag_st_path(f),
                   key, v, lo, hi);
    *out = x;
    return ELAG_OK;
}

static int json_int(const cJSON *item, int lo, int *out)
{
    if (!cJSON_IsNumber(item)) return 0;
    double d = item->valuedouble;
    if (d != (double)(int)d || d < lo || d > 1e9) return 0;
    *out = (int)d;
    return 1;
}

/* One graph entry into l; `width` is the previous layer's output. */
static elag_status parse_layer(const char *path, const cJSON *o, int index, int width,
                               elag_export_layer *l)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (!cJSON_IsObject(o) || !cJSON_IsString(name) || !cJSON_IsString(type))
        return BAD("%s: metadata 'graph' entry %d lacks a name or type", path, index);
    size_t len = strlen(name->valuestring);
    if (len == 0 || len >= sizeof l->name || strchr(name->valuestring, '"'))
        return BAD("%s: metadata 'graph' entry %d has a bad name", path, index);
    memcpy(l->name, name->valuestring, len + 1);
    if (strcmp(type->valuestring, "linear") == 0) l->type = ELAG_LAYER_LINEAR;
    else if (strcmp(type->valuestring, "relu") == 0) l->type = ELAG_LAYER_RELU;
    else if (strcmp(type->valuestring, "flatten") == 0) l->type = ELAG_LAYER_FLATTEN;
    else return BAD("%s: graph layer '%s' has unknown type '%s'", path, l->name, type->valuestring);
    if (!json_int(cJSON_GetObjectItemCaseSensitive(o, "in"), 1, &l->in) ||
        !json_int(cJSON_GetObjectItemCaseSensitive(o, "out"), 1, &l->out))
        return BAD("%s: graph layer '%s' needs integer in and out >= 1", path, l->name);
    if (l->in != width)
        return BAD("%s: graph layer '%s' takes %d features, the layer before gives %d", path,
                   l->name, l->in, width);
    if (l->type != ELAG_LAYER_LINEAR && l->out != l->in)
        return BAD("%s: graph layer '%s' (%s) changes the width %d -> %d", path, l->name,
                   type->valuestring, l->in, l->out);
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(o, "bias");
    const cJSON *prunable = cJSON_GetObjectItemCaseSensitive(o, "prunable");
    if (!cJSON_IsBool(bias))
        return BAD("%s: graph layer '%s' needs a boolean 'bias'", path, l->name);
    l->has_bias = cJSON_IsTrue(bias) && l->type == ELAG_LAYER_LINEAR;
    l->prunable = cJSON_IsTrue(prunable) && l->type == ELAG_LAYER_LINEAR;
    return ELAG_OK;
}

/* A tensor `<layer>.<suffix>` with the given dtype and shape, counted as used. */
static elag_status expect(const elag_st_file *f, const elag_export_layer *l, const char *suffix,
                          elag_dtype dtype, int ndim, const int64_t *shape, int *used,
                          const elag_st_tensor **out)
{
    char name[ELAG_NAME_LEN + 48];
    snprintf(name, sizeof name, "%s.%s", l->name, suffix);
    ELAG_TRY(elag_st_expect(f, name, dtype, ndim, shape, out));
    (*used)++;
    return ELAG_OK;
}

/* 1-D length or 2-D second dimension of a tensor that must exist, read before checking. */
static elag_status peek_dim(const elag_st_file *f, const elag_export_layer *l, const char *suffix,
                            int ndim, int dim, int64_t *out)
{
    char name[ELAG_NAME_LEN + 48];
    snprintf(name, sizeof name, "%s.%s", l->name, suffix);
    const elag_st_tensor *t = elag_st_find(f, name);
    if (!t) return BAD("%s: tensor '%s' is missing", elag_st_path(f), name);
    if (t->ndim != ndim)
        return BAD("%s: tensor '%s' has %d dims, expected %d", elag_st_path(f), name, t->ndim,
                   ndim);
    if (t->shape[dim] > INT32_MAX)
        return BAD("%s: tensor '%s' is too large", elag_st_path(f), name);
    *out = t->shape[dim];
    return ELAG_OK;
}

static void *copy_of(const void *src, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (p && bytes) memcpy(p, src, bytes);
    return p;
}

static elag_status read_weight(const elag_st_file *f, elag_export_layer *l, const char *gformat,
                               int *used)
{
    const char *path = elag_st_path(f);
    char key[ELAG_NAME_LEN + 48], want[64];
    snprintf(key, sizeof key, "%s.weight.format", l->name);
    const char *fmt = elag_st_meta(f, key);
    if (!fmt) return BAD("%s: metadata '%s' is missing", path, key);
    if (!gformat || strcmp(fmt, gformat) != 0)
        return BAD("%s: metadata '%s' = '%s' disagrees with the graph's format '%s'", path, key,
                   fmt, gformat ? gformat : "null");
    snprintf(key, sizeof key, "%s.weight.shape", l->name);
    const char *shape = elag_st_meta(f, key);
    snprintf(want, sizeof want, "[%d, %d]", l->out, l->in);
    if (!shape || strcmp(shape, want) != 0)
        return BAD("%s: metadata '%s' = '%s', the graph says %s", path, key,
                   shape ? shape : "(missing)", want);
    elag_sparse_host *a = &l->w;
    a->rows = l->out;
    a->cols = l->in;
    const elag_st_tensor *t1, *t2, *t3;
    if (strcmp(fmt, "dense") == 0) {
        int64_t s[2] = {l->out, l->in};
        a->format = ELAG_SPARSE_FORMAT_DENSE;
        ELAG_TRY(expect(f, l, "weight", ELAG_DTYPE_F32, 2, s, used, &t1));
        a->dense = copy_of(t1->data, t1->nbytes);
        if (!a->dense) return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    } else if (strcmp(fmt, "csr") == 0) {
        int64_t nnz, ps[1] = {(int64_t)l->out + 1};
        a->format = ELAG_SPARSE_FORMAT_CSR;
        ELAG_TRY(peek_dim(f, l, "weight.indices", 1, 0, &nnz));
        int64_t ns[1] = {nnz};
        ELAG_TRY(expect(f, l, "weight.indptr", ELAG_DTYPE_I32, 1, ps, used, &t1));
        ELAG_TRY(expect(f, l, "weight.indices", ELAG_DTYPE_I32, 1, ns, used, &t2));
        ELAG_TRY(expect(f, l, "weight.values", ELAG_DTYPE_F32, 1, ns, used, &t3));
        a->nnz = nnz;
        a->indptr = copy_of(t1->data, t1->nbytes);
        a->indices = copy_of(t2->data, t2->nbytes);
        a->values = copy_of(t3->data, t3->nbytes);
        if (!a->indptr || !a->indices || !a->values)
            return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    } else if (strcmp(fmt, "bell") == 0) {
        long block;
        snprintf(key, sizeof key, "%s.weight.block", l->name);
        ELAG_TRY(meta_int(f, key, 1, 1024, &block));
        int64_t ell;
        a->format = ELAG_SPARSE_FORMAT_BELL;
        a->block = (int)block;
        a->block_rows = (l->out + a->block - 1) / a->block;
        ELAG_TRY(peek_dim(f, l, "weight.bell_col_ind", 2, 1, &ell));
        int64_t cs[2] = {a->block_rows, ell}, vs[2] = {(int64_t)a->block_rows * block, ell * block};
        ELAG_TRY(expect(f, l, "weight.bell_col_ind", ELAG_DTYPE_I32, 2, cs, used, &t1));
        ELAG_TRY(expect(f, l, "weight.bell_values", ELAG_DTYPE_F32, 2, vs, used, &t2));
        a->ell_cols = (int)ell;
        a->col_ind = copy_of(t1->data, t1->nbytes);
        a->values = copy_of(t2->data, t2->nbytes);
        if (!a->col_ind || !a->values)
            return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    } else {
        return BAD("%s: metadata '%s.weight.format' = '%s' (expected dense, csr or bell)", path,
                   l->name, fmt);
    }
    char what[ELAG_PATH_LEN + ELAG_NAME_LEN + 32];
    snprintf(what, sizeof what, "%s: tensor '%s.weight'", path, l->name);
    ELAG_TRY(elag_sparse_validate(a, what));
    if (a->format == ELAG_SPARSE_FORMAT_BELL) {
        int64_t nz = 0, n = (int64_t)a->block_rows * a->block * a->ell_cols * a->block;
        for (int64_t i = 0; i < n; i++) nz += a->values[i] != 0.0f;
        a->nnz = nz;
    }
    if (l->has_bias) {
        int64_t bs[1] = {l->out};
        ELAG_TRY(expect(f, l, "bias", ELAG_DTYPE_F32, 1, bs, used, &t1));
        l->bias = copy_of(t1->data, t1->nbytes);
        if (!l->bias) return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    }
    return ELAG_OK;
}

static elag_status load_graph(const elag_st_file *f, elag_export *e, int *used)
{
    const char *path = elag_st_path(f);
    const char *text = elag_st_meta(f, "graph");
    if (!text) return BAD("%s: not a valid elag export (no 'graph' in metadata)", path);
    cJSON *g = cJSON_Parse(text);
    if (!cJSON_IsArray(g)) {
        cJSON_Delete(g);
        return BAD("%s: metadata 'graph' is not a JSON list", path);
    }
    int n = cJSON_GetArraySize(g);
    elag_status st = ELAG_OK;
    if (n < 1 || n > ELAG_MAX_LAYERS)
        st = BAD("%s: metadata 'graph' has %d layers (1..%d)", path, n, ELAG_MAX_LAYERS);
    int width = e->input_dim;
    for (int i = 0; st == ELAG_OK && i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(g, i);
        elag_export_layer *l = &e->layers[i];
        e->n_layers = i + 1;
        st = parse_layer(path, o, i, width, l);
        for (int j = 0; st == ELAG_OK && j < i; j++)
            if (strcmp(e->layers[j].name, l->name) == 0)
                st = BAD("%s: graph has two layers named '%s'", path, l->name);
        if (st == ELAG_OK && l->type == ELAG_LAYER_LINEAR) {
            const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(o, "format");
            st = read_weight(f, l, cJSON_IsString(fmt) ? fmt->valuestring : NULL, used);
        }
        width = l->out;
    }
    if (st == ELAG_OK && width != e->classes)
        st = BAD("%s: the graph ends with %d outputs, metadata says %d classes", path, width,
                 e->classes);
    cJSON_Delete(g);
    return st;
}

elag_status elag_export_load(const char *path, elag_export *out)
{
    memset(out, 0, sizeof *out);
    elag_st_file *f;
    ELAG_TRY(elag_st_open(path, &f));
    elag_status st = ELAG_OK;
    const char *fmt = elag_st_meta(f, "format");
    if (!fmt || strcmp(fmt, ELAG_EXPORT_FORMAT) != 0) {
        st = BAD("%s: not an elag export (format '%s', expected '%s')", path, fmt ? fmt : "",
                 ELAG_EXPORT_FORMAT);
        goto done;
    }
    long v;
    ELAG_TRY_GOTO(st, meta_int(f, "input_dim", 1, 1000000000L, &v), done);
    out->input_dim = (int)v;
    ELAG_TRY_GOTO(st, meta_int(f, "classes", 1, 1000000000L, &v), done);
    out->classes = (int)v;
    int used = 0;
    ELAG_TRY_GOTO(st, load_graph(f, out, &used), done);
    if (used != elag_st_count(f)) {
        /* name the first tensor no layer claimed */
        for (int i = 0; i < elag_st_count(f); i++) {
            const char *name = elag_st_at(f, i)->name;
            int claimed = 0;
            for (int j = 0; j < out->n_layers && !claimed; j++) {
                size_t len = strlen(out->layers[j].name);
                claimed = out->layers[j].type == ELAG_LAYER_LINEAR &&
                          strncmp(name, out->layers[j].name, len) == 0 && name[len] == '.';
            }
            if (!claimed) {
                st = BAD("%s: tensor '%s' belongs to no layer of the graph", path, name);
                goto done;
            }
        }
        st = BAD("%s: %d tensors, the graph accounts for %d", path, elag_st_count(f), used);
        goto done;
    }
    const char *yaml = elag_st_meta(f, "config");
    if (yaml) {
        out->config_yaml = copy_of(yaml, strlen(yaml) + 1);
        if (!out->config_yaml) st = elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    }
done:
    elag_st_close(f);
    if (st != ELAG_OK) elag_export_free(out);
    return st;
}
