/*
 * elag/model.h: a network read from an export file, a thin wrapper over
 * elag_export_load (host/sparse/export.h).
 */
#include "api/api.h"

#include "core/check.h"

#include <stdlib.h>

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
