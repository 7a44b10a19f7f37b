/*
 * elag/export.h: a checkpoint as a network in inference form, converted and saved; thin
 * wrappers over elag_export_from_checkpoint, _parse_spec, _convert_all, _choose_auto and
 * _save (host/sparse/export.h).
 */
#include "api/api.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

elag_status elag_net_from_checkpoint(elag_net_t **out, const char *path)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_net_from_checkpoint: out is NULL");
    *out = NULL;
    if (path == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_net_from_checkpoint: path is NULL");
    elag_net_t *n = calloc(1, sizeof *n);
    if (n == NULL) return elag_fail(ELAG_ERR_NOMEM, "%s: out of host memory", path);
    elag_status st = elag_export_from_checkpoint(path, &n->e);
    if (st != ELAG_OK) {
        elag_net_free(n);
        return st;
    }
    *out = n;
    return ELAG_OK;
}

elag_status elag_export_format_parse(const char *format, int *is_auto)
{
    elag_export_spec spec;
    ELAG_TRY(elag_export_parse_spec(format, &spec));
    if (is_auto) *is_auto = spec.is_auto;
    return ELAG_OK;
}

elag_status elag_net_convert(elag_net_t *net, const char *format, elag_device_t *device)
{
    if (net == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_net_convert: net is NULL");
    elag_export_spec spec;
    ELAG_TRY(elag_export_parse_spec(format, &spec));
    if (!spec.is_auto) return elag_export_convert_all(&net->e, spec.format, spec.block);
    if (device == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_convert: \"auto\" needs a device to time on");
    if (net->timings == NULL) {
        size_t n = net->e.n_tensors > 0 ? (size_t)net->e.n_tensors : 1;
        net->timings = calloc(n, sizeof *net->timings);
        if (net->timings == NULL)
            return elag_fail(ELAG_ERR_NOMEM, "elag_net_convert: out of host memory");
    }
    memset(net->timings, 0, (size_t)net->e.n_tensors * sizeof *net->timings);
    return elag_export_choose_auto(&net->e, device->be, ELAG_EXPORT_AUTO_BATCH, net->timings);
}

elag_status elag_net_save(const elag_net_t *net, const char *path)
{
    if (net == NULL || path == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_save: %s is NULL", net ? "path" : "net");
    return elag_export_save(&net->e, path);
}

elag_status elag_net_weight_timing(const elag_net_t *net, int i, elag_weight_timing *out)
{
    if (net == NULL || out == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_weight_timing: %s is NULL", net ? "out" : "net");
    int t = elag_api_weight_tensor(net, i);
    if (t < 0) return elag_fail(ELAG_ERR_USAGE, "elag_net_weight_timing: no weight %d", i);
    memset(out, 0, sizeof *out);
    if (net->timings == NULL) return ELAG_OK;
    const elag_export_timing *tm = &net->timings[t];
    out->dense_ms = tm->dense_ms;
    out->csr_ms = tm->csr_ms;
    out->bell16_ms = tm->bell16_ms;
    out->bell32_ms = tm->bell32_ms;
    snprintf(out->refused, sizeof out->refused, "%s", tm->refused);
    return ELAG_OK;
}
