/*
 * elag/model.h: a network read from an export file, a thin wrapper over
 * elag_export_load (host/sparse/export.h), and its weights described.
 */
#include "api/api.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

elag_status elag_net_open(elag_net_t **out, const char *path)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_net_open: out is NULL");
    *out = NULL;
    if (path == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_net_open: path is NULL");
    elag_net_t *n = calloc(1, sizeof *n); /* an export holds every tensor's header: heap */
    if (n == NULL) return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    elag_status st = elag_export_load(path, &n->e);
    if (st != ELAG_OK) {
        elag_net_free(n);
        return st;
    }
    *out = n;
    return ELAG_OK;
}

void elag_net_free(elag_net_t *net)
{
    if (net == NULL) return;
    elag_export_free(&net->e);
    free(net->timings);
    free(net);
}

int elag_net_input_dim(const elag_net_t *net)
{
    ELAG_ASSERT(net != NULL);
    return net->e.input_dim;
}

int elag_net_classes(const elag_net_t *net)
{
    ELAG_ASSERT(net != NULL);
    return net->e.classes;
}

double elag_net_sparsity(const elag_net_t *net, int64_t *params, int64_t *nonzero)
{
    ELAG_ASSERT(net != NULL);
    int64_t p = 0, nz = 0;
    double s = 0;
    elag_export_sparsity(&net->e, &p, &nz, &s);
    if (params) *params = p;
    if (nonzero) *nonzero = nz;
    return s;
}

int elag_api_weight_tensor(const elag_net_t *net, int i)
{
    for (int t = 0, k = 0; t < net->e.n_tensors; t++) {
        if (!net->e.t[t].is_weight) continue;
        if (k++ == i) return t;
    }
    return -1;
}

int elag_net_weight_count(const elag_net_t *net)
{
    ELAG_ASSERT(net != NULL);
    int n = 0;
    for (int t = 0; t < net->e.n_tensors; t++) n += net->e.t[t].is_weight != 0;
    return n;
}

elag_status elag_net_weight(const elag_net_t *net, int i, elag_weight_info *out)
{
    if (net == NULL || out == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_weight: %s is NULL", net ? "out" : "net");
    int ti = elag_api_weight_tensor(net, i);
    if (ti < 0) return elag_fail(ELAG_ERR_USAGE, "elag_net_weight: no weight %d", i);
    const elag_export_tensor *t = &net->e.t[ti];
    memset(out, 0, sizeof *out);
    snprintf(out->layer, sizeof out->layer, "%s", net->e.cfg.model.layers[t->layer].name);
    out->ndim = t->ndim;
    for (int d = 0; d < t->ndim && d < 4; d++) out->shape[d] = t->shape[d];
    out->rows = t->w.rows;
    out->cols = t->w.cols;
    out->params = (int64_t)t->w.rows * t->w.cols;
    out->nonzero = t->w.nnz;
    elag_export_tensor_format(t, out->format, sizeof out->format);
    out->bytes = elag_sparse_bytes(&t->w);
    return ELAG_OK;
}

void elag_net_formats(const elag_net_t *net, char *buf, size_t len)
{
    ELAG_ASSERT(net != NULL && buf != NULL && len > 0);
    elag_export_formats(&net->e, buf, len);
}
