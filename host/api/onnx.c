/*
 * elag/onnx.h: thin wrappers over host/onnx/ (elag_onnx_write, elag_onnx_import).
 */
#include "api/api.h"

#include "core/check.h"
#include "onnx/onnx.h"

#include <stdio.h>
#include <string.h>

elag_status elag_net_save_onnx(const elag_net_t *net, const char *path)
{
    if (net == NULL || path == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_save_onnx: %s is NULL", net ? "path" : "net");
    return elag_onnx_write(&net->e, path);
}

elag_status elag_import_onnx(const char *onnx_path, const char *out_path,
                             const elag_import_options *opts, elag_import_result *result)
{
    if (onnx_path == NULL || out_path == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_import_onnx: %s is NULL",
                         onnx_path ? "out_path" : "onnx_path");
    elag_import_options o = ELAG_IMPORT_OPTIONS_INIT;
    if (opts) {
        ELAG_TRY(elag_api_check_version(opts->version, ELAG_IMPORT_OPTIONS_VERSION,
                                        "elag_import_options"));
        o = *opts;
    }
    if (o.n_overrides < 0 || (o.n_overrides > 0 && o.overrides == NULL))
        return elag_fail(ELAG_ERR_USAGE, "elag_import_onnx: %d overrides but no list",
                         o.n_overrides);
    if (result)
        ELAG_TRY(elag_api_check_version(result->version, ELAG_IMPORT_RESULT_VERSION,
                                        "elag_import_result"));
    elag_onnx_import_info info;
    ELAG_TRY(elag_onnx_import(onnx_path, out_path, o.overrides, o.n_overrides, &info));
    if (result) {
        result->n_layers = info.n_layers;
        for (int i = 0; i < info.n_layers && i < ELAG_IMPORT_MAX_LAYERS; i++)
            snprintf(result->layers[i], sizeof result->layers[i], "%s", info.layer[i]);
        result->classes = info.classes;
        result->input_shape[0] = info.input.c;
        result->input_shape[1] = info.input.h;
        result->input_shape[2] = info.input.w;
    }
    return ELAG_OK;
}
