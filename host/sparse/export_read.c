/*
 * Reading exports (export.h). Nothing in the file is trusted: the format tag, the config
 * (parsed and checked like any config, then built as a model: shapes must chain from the
 * input shape to the classes), the graph metadata (it must be what that config gives),
 * every tensor the model's registry expects (names, dtypes, shapes; a weight's metadata:
 * format, shape, block), the sparse arrays' invariants (elag_sparse_validate), and no
 * tensor may be left over. Every failure is ELAG_ERR_INPUT naming the file and the tensor
 * or key.
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

/* A tensor `<base><suffix>` with the given dtype and shape, counted as used. */
static elag_status expect(const elag_st_file *f, const char *base, const char *suffix,
                          elag_dtype dtype, int ndim, const int64_t *shape, int *used,
                          const elag_st_tensor **out)
{
    char name[ELAG_PARAM_NAME_LEN + 32];
    snprintf(name, sizeof name, "%s%s", base, suffix);
    ELAG_TRY(elag_st_expect(f, name, dtype, ndim, shape, out));
    (*used)++;
    return ELAG_OK;
}

/* A dimension of a tensor that must exist, read before checking the tensor. */
static elag_status peek_dim(const elag_st_file *f, const char *base, const char *suffix, int ndim,
                            int dim, int64_t *out)
{
    char name[ELAG_PARAM_NAME_LEN + 32];
    snprintf(name, sizeof name, "%s%s", base, suffix);
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

/* Weight t (its name, shape, rows and cols already set) in the format its metadata says. */
static elag_status read_weight(const elag_st_file *f, elag_export_tensor *t, int *used)
{
    const char *path = elag_st_path(f);
    char key[ELAG_PARAM_NAME_LEN + 32], want[96];
    snprintf(key, sizeof key, "%s.format", t->name);
    const char *fmt = elag_st_meta(f, key);
    if (!fmt) return BAD("%s: metadata '%s' is missing", path, key);
    snprintf(key, sizeof key, "%s.shape", t->name);
    const char *shape = elag_st_meta(f, key);
    elag_export_shape_text(t->shape, t->ndim, want, sizeof want);
    if (!shape || strcmp(shape, want) != 0)
        return BAD("%s: metadata '%s' = '%s', the graph says %s", path, key,
                   shape ? shape : "(missing)", want);
    elag_sparse_host *a = &t->w;
    const elag_st_tensor *t1, *t2, *t3;
    if (strcmp(fmt, "dense") == 0) {
        a->format = ELAG_SPARSE_FORMAT_DENSE;
        ELAG_TRY(expect(f, t->name, "", ELAG_DTYPE_F32, t->ndim, t->shape, used, &t1));
        a->dense = copy_of(t1->data, t1->nbytes);
        if (!a->dense) return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    } else if (strcmp(fmt, "csr") == 0) {
        int64_t nnz, ps[1] = {(int64_t)a->rows + 1};
        a->format = ELAG_SPARSE_FORMAT_CSR;
        ELAG_TRY(peek_dim(f, t->name, ".indices", 1, 0, &nnz));
        int64_t ns[1] = {nnz};
        ELAG_TRY(expect(f, t->name, ".indptr", ELAG_DTYPE_I32, 1, ps, used, &t1));
        ELAG_TRY(expect(f, t->name, ".indices", ELAG_DTYPE_I32, 1, ns, used, &t2));
        ELAG_TRY(expect(f, t->name, ".values", ELAG_DTYPE_F32, 1, ns, used, &t3));
        a->nnz = nnz;
        a->indptr = copy_of(t1->data, t1->nbytes);
        a->indices = copy_of(t2->data, t2->nbytes);
        a->values = copy_of(t3->data, t3->nbytes);
        if (!a->indptr || !a->indices || !a->values)
            return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    } else if (strcmp(fmt, "bell") == 0) {
        long block;
        snprintf(key, sizeof key, "%s.block", t->name);
        ELAG_TRY(meta_int(f, key, 1, 1024, &block));
        int64_t ell;
        a->format = ELAG_SPARSE_FORMAT_BELL;
        a->block = (int)block;
        a->block_rows = (a->rows + a->block - 1) / a->block;
        ELAG_TRY(peek_dim(f, t->name, ".bell_col_ind", 2, 1, &ell));
        int64_t cs[2] = {a->block_rows, ell}, vs[2] = {(int64_t)a->block_rows * block, ell * block};
        ELAG_TRY(expect(f, t->name, ".bell_col_ind", ELAG_DTYPE_I32, 2, cs, used, &t1));
        ELAG_TRY(expect(f, t->name, ".bell_values", ELAG_DTYPE_F32, 2, vs, used, &t2));
        a->ell_cols = (int)ell;
        a->col_ind = copy_of(t1->data, t1->nbytes);
        a->values = copy_of(t2->data, t2->nbytes);
        if (!a->col_ind || !a->values)
            return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    } else {
        return BAD("%s: metadata '%s.format' = '%s' (expected dense, csr or bell)", path,
                   t->name, fmt);
    }
    char what[ELAG_PATH_LEN + ELAG_PARAM_NAME_LEN + 32];
    snprintf(what, sizeof what, "%s: tensor '%s'", path, t->name);
    ELAG_TRY(elag_sparse_validate(a, what));
    int64_t nz = 0;
    if (a->format == ELAG_SPARSE_FORMAT_DENSE) {
        for (int64_t i = 0; i < (int64_t)a->rows * a->cols; i++) nz += a->dense[i] != 0.0f;
        a->nnz = nz;
    } else if (a->format == ELAG_SPARSE_FORMAT_BELL) {
        int64_t n = (int64_t)a->block_rows * a->block * a->ell_cols * a->block;
        for (int64_t i = 0; i < n; i++) nz += a->values[i] != 0.0f;
        a->nnz = nz;
    }
    /* the count metadata must agree with the arrays (a wrong nnz is a corrupt file) */
    long claimed;
    snprintf(key, sizeof key, "%s.nnz", t->name);
    ELAG_TRY(meta_int(f, key, 0, 2147483647L, &claimed));
    int64_t values_nz = 0;
    if (a->format == ELAG_SPARSE_FORMAT_CSR)
        for (int64_t i = 0; i < a->nnz; i++) values_nz += a->values[i] != 0.0f;
    else
        values_nz = a->nnz;
    if ((int64_t)claimed != values_nz)
        return BAD("%s: metadata '%s' = %ld, the tensor holds %lld nonzero values", path, key,
                   claimed, (long long)values_nz);
    return ELAG_OK;
}

/* Reads every tensor of the graph's registry (im) from f into e. */
static elag_status load_tensors(const elag_st_file *f, elag_export *e, const elag_model *im,
                                int *used)
{
    /* shapes and roles from the model; data from the file */
    for (int j = 0; j < im->n_reg; j++) {
        elag_export_tensor *t = &e->t[j];
        e->n_tensors = j + 1;
        elag_export_tensor_describe(t, im, j);
        if (t->is_weight) {
            ELAG_TRY(read_weight(f, t, used));
        } else {
            const elag_st_tensor *d;
            ELAG_TRY(expect(f, t->name, "", ELAG_DTYPE_F32, t->ndim, t->shape, used, &d));
            t->data = copy_of(d->data, d->nbytes);
            if (!t->data) return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory",
                                           elag_st_path(f));
        }
    }
    return ELAG_OK;
}

/* The "thinned" metadata, when present: [kept, original] for every weighted layer of the
 * graph (im) in order, kept being the layer's width. */
static elag_status read_thinned(const elag_st_file *f, elag_export *e, const elag_model *im)
{
    const char *text = elag_st_meta(f, "thinned"), *path = elag_st_path(f);
    if (!text) return ELAG_OK;
    cJSON *o = cJSON_Parse(text);
    const cJSON *item = o && cJSON_IsObject(o) ? o->child : NULL;
    elag_status st = o && cJSON_IsObject(o) ? ELAG_OK : BAD("%s: metadata 'thinned' is not a "
                                                            "JSON object", path);
    for (int i = 0; st == ELAG_OK && i < im->n_layers; i++) {
        const elag_layer *l = &im->layers[i];
        if (!l->kind->sparse_weight) continue;
        const cJSON *k = item ? cJSON_GetArrayItem(item, 0) : NULL;
        const cJSON *n = item ? cJSON_GetArrayItem(item, 1) : NULL;
        if (!item || strcmp(item->string, l->cfg.name) != 0 || cJSON_GetArraySize(item) != 2 ||
            !cJSON_IsNumber(k) || !cJSON_IsNumber(n) || k->valuedouble != l->out.c ||
            n->valuedouble < k->valuedouble || n->valuedouble > (double)(1 << 24) ||
            n->valuedouble != (double)(int)n->valuedouble) {
            st = BAD("%s: metadata 'thinned' must list [kept, original] for layer '%s' "
                     "(width %d) here", path, l->cfg.name, l->out.c);
            break;
        }
        elag_thin_layer *t = &e->thin[e->n_thin++];
        snprintf(t->name, sizeof t->name, "%s", l->cfg.name);
        t->kept = l->out.c;
        t->original = (int)n->valuedouble;
        t->zero = t->folded = t->merged = t->held = -1;
        item = item->next;
    }
    if (st == ELAG_OK && item)
        st = BAD("%s: metadata 'thinned' names '%s', not a weighted layer in order", path,
                 item->string ? item->string : "?");
    cJSON_Delete(o);
    return st;
}

elag_status elag_export_load(const char *path, elag_export *out)
{
    memset(out, 0, sizeof *out);
    elag_st_file *f;
    ELAG_TRY(elag_st_open(path, &f));
    elag_backend *be = NULL;
    elag_model im;
    memset(&im, 0, sizeof im);
    char *graph = NULL;
    elag_status st = ELAG_OK;
    const char *fmt = elag_st_meta(f, "format");
    if (!fmt || strcmp(fmt, ELAG_EXPORT_FORMAT) != 0) {
        st = BAD("%s: not an elag export (format '%s', expected '%s')", path, fmt ? fmt : "",
                 ELAG_EXPORT_FORMAT);
        goto done;
    }
    long v;
    ELAG_TRY_GOTO(st, meta_int(f, "input_dim", 1, 1L << 30, &v), done);
    out->input_dim = (int)v;
    ELAG_TRY_GOTO(st, meta_int(f, "classes", 1, 1L << 24, &v), done);
    out->classes = (int)v;
    const char *shape = elag_st_meta(f, "input_shape");
    if (elag_checkpoint_parse_shape(shape, &out->input) != ELAG_OK ||
        (long)elag_fshape_count(out->input) != out->input_dim) {
        st = BAD("%s: bad metadata input_shape='%s' (input_dim %d)", path, shape ? shape : "",
                 out->input_dim);
        goto done;
    }
    const char *yaml = elag_st_meta(f, "config");
    if (!yaml) {
        st = BAD("%s: not a valid elag export (no 'config' in metadata)", path);
        goto done;
    }
    char origin[ELAG_PATH_LEN + 16];
    snprintf(origin, sizeof origin, "%s[config]", path);
    ELAG_TRY_GOTO(st, elag_config_parse(yaml, strlen(yaml), origin, NULL, 0, &out->cfg), done);
    out->config_yaml = copy_of(yaml, strlen(yaml) + 1);
    if (!out->config_yaml) {
        st = elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
        goto done;
    }
    /* the model the config describes, for its registry and shapes (tensors stay zero) */
    ELAG_TRY_GOTO(st, elag_backend_open("cpu", 1, &be, NULL, 0), done);
    st = elag_model_init(&im, &out->cfg, out->input, out->classes, 1, 0, be);
    if (st != ELAG_OK) {
        char why[768]; /* a copy: elag_fail writes the buffer elag_last_error() returns */
        snprintf(why, sizeof why, "%s", elag_last_error());
        st = BAD("%s: its config does not build: %s", path, why);
        goto done;
    }
    int used = 0;
    ELAG_TRY_GOTO(st, load_tensors(f, out, &im, &used), done);
    if (used != elag_st_count(f)) {
        for (int i = 0; i < elag_st_count(f); i++) { /* name the first tensor no layer claims */
            const char *name = elag_st_at(f, i)->name;
            int claimed = 0;
            for (int j = 0; j < out->n_tensors && !claimed; j++) {
                size_t len = strlen(out->t[j].name);
                claimed = strncmp(name, out->t[j].name, len) == 0 &&
                          (name[len] == '\0' || (out->t[j].is_weight && name[len] == '.'));
            }
            if (!claimed) {
                st = BAD("%s: tensor '%s' belongs to no layer of the graph", path, name);
                goto done;
            }
        }
        st = BAD("%s: %d tensors, the graph accounts for %d", path, elag_st_count(f), used);
        goto done;
    }
    const char *g = elag_st_meta(f, "graph");
    graph = elag_export_graph_json(out, &im);
    if (!graph) {
        st = elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
        goto done;
    }
    if (!g || strcmp(g, graph) != 0)
        st = BAD("%s: metadata 'graph' disagrees with the config's layers", path);
    if (st == ELAG_OK) st = read_thinned(f, out, &im);
done:
    free(graph);
    elag_model_free(&im);
    elag_backend_free(be);
    elag_st_close(f);
    if (st != ELAG_OK) elag_export_free(out);
    return st;
}
