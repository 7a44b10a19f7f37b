/*
 * elag/array.h: the user's arrays, read through io/npy.h or io/safetensors.h (both
 * validate everything), and the checks that tie an array to a network's input.
 */
#include "api/api.h"

#include "core/check.h"
#include "io/npy.h"
#include "io/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static elag_status load_safetensors(elag_array *out, const char *path)
{
    elag_st_file *f = NULL;
    ELAG_TRY(elag_st_open(path, &f));
    elag_status st = ELAG_OK;
    const elag_st_tensor *t = elag_st_count(f) == 1 ? elag_st_at(f, 0) : NULL;
    if (!t) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: holds %d tensors; inputs need exactly one", path,
                       elag_st_count(f));
    } else if (t->dtype != ELAG_DTYPE_F32) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' is %s; inputs must be F32", path, t->name,
                       elag_dtype_name(t->dtype));
    } else if (t->ndim < 1) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' is a scalar", path, t->name);
    } else if (!(out->data = malloc(t->nbytes ? t->nbytes : 1))) {
        st = elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    } else {
        out->ndim = t->ndim;
        for (int i = 0; i < t->ndim; i++) out->shape[i] = t->shape[i];
        if (t->nbytes) memcpy(out->data, t->data, t->nbytes);
    }
    elag_st_close(f);
    return st;
}

elag_status elag_array_load(elag_array *out, const char *path)
{
    if (out == NULL || path == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_array_load: %s is NULL", out ? "path" : "out");
    memset(out, 0, sizeof *out);
    if (ends_with(path, ".safetensors")) return load_safetensors(out, path);
    elag_npy_array a;
    elag_status st = elag_npy_read(path, ELAG_NPY_AS_F32, &a);
    if (st != ELAG_OK) {
        elag_npy_free(&a);
        return st;
    }
    out->ndim = a.ndim;
    memcpy(out->shape, a.shape, sizeof a.shape);
    out->data = a.f32; /* the array takes the buffer */
    return ELAG_OK;
}

elag_status elag_array_save(const char *path, const elag_array *a)
{
    if (a == NULL || path == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_array_save: %s is NULL", a ? "path" : "array");
    return elag_npy_write_f32(path, a->data, a->ndim, a->shape);
}

void elag_array_free(elag_array *a)
{
    if (a == NULL) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* "(5, 1, 28, 28)" */
static void shape_text(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t n = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < len) snprintf(buf + n, len - n, ndim == 1 ? ",)" : ")"); /* numpy's (64,) */
}

elag_status elag_net_check_inputs(const elag_net_t *net, const elag_array *x, const char *what,
                                  long *n)
{
    if (net == NULL || x == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_check_inputs: %s is NULL",
                         net ? "inputs" : "net");
    if (what == NULL) what = "inputs";
    const elag_fshape in = net->e.input;
    const int flat = in.h == 1 && in.w == 1; /* a network without spatial layers */
    int ok = x->ndim >= 2 && x->ndim <= ELAG_ARRAY_MAX_DIMS && x->shape[0] >= 0 &&
             x->shape[0] <= 0x7fffffff;
    if (ok && flat) {
        /* it flattens each sample in C order (PyTorch's order), so (N, 1, 28, 28) and
         * (N, 784) are the same inputs to it */
        int64_t per = 1;
        for (int i = 1; i < x->ndim && per <= net->e.input_dim; i++)
            per =
                x->shape[i] > net->e.input_dim ? (int64_t)net->e.input_dim + 1 : per * x->shape[i];
        ok = per == net->e.input_dim;
    } else if (ok) {
        ok = (x->ndim == 2 && x->shape[1] == net->e.input_dim) ||
             (x->ndim == 3 && in.c == 1 && x->shape[1] == in.h && x->shape[2] == in.w) ||
             (x->ndim == 4 && x->shape[1] == in.c && x->shape[2] == in.h && x->shape[3] == in.w);
    }
    if (!ok) {
        char got[160];
        shape_text(x->shape, x->ndim < 0 || x->ndim > ELAG_ARRAY_MAX_DIMS ? 0 : x->ndim, got,
                   sizeof got);
        if (flat)
            return elag_fail(ELAG_ERR_INPUT,
                             "%s: inputs of shape %s do not fit the network: it takes (N, %d) "
                             "(or any (N, ...) of %d values per sample)",
                             what, got, net->e.input_dim, net->e.input_dim);
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: inputs of shape %s do not fit the network: it takes (N, %d, %d, "
                         "%d) or (N, %d)",
                         what, got, in.c, in.h, in.w, net->e.input_dim);
    }
    if (n) *n = (long)x->shape[0];
    return ELAG_OK;
}

void elag_net_input_shape(const elag_net_t *net, int shape[3])
{
    ELAG_ASSERT(net != NULL && shape != NULL);
    shape[0] = net->e.input.c;
    shape[1] = net->e.input.h;
    shape[2] = net->e.input.w;
}

int elag_net_normalization(const elag_net_t *net, double *mean, double *std)
{
    ELAG_ASSERT(net != NULL);
    const elag_config *c = &net->e.cfg;
    int on = c->data.dataset != ELAG_DATASET_SYNTHETIC && c->data.normalize;
    if (mean) *mean = on ? c->data.mean : 0.0;
    if (std) *std = on ? c->data.std : 1.0;
    return on;
}
