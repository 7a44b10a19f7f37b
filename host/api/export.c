/*
 * elag/export.h: a checkpoint as a network in inference form, thinned, converted and
 * saved; thin wrappers over elag_export_from_checkpoint, _parse_spec, _convert_all,
 * _choose_auto and _save (host/sparse/export.h), and elag_export_thin (thin.h) with its
 * check on the test set.
 */
#include "api/api.h"

#include "core/check.h"
#include "sparse/thin.h"
#include "train/train.h"

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
    net->auto_note[0] = '\0';
    ELAG_TRY(elag_export_choose_auto(&net->e, device->be, ELAG_EXPORT_AUTO_BATCH, net->timings));
    return elag_export_prefer_csr_chain(&net->e, device->be, ELAG_EXPORT_AUTO_BATCH, net->timings,
                                        net->auto_note, sizeof net->auto_note);
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

const char *elag_net_auto_note(const elag_net_t *net)
{
    return net ? net->auto_note : "";
}

elag_status elag_thin_options_init(elag_thin_options *opts, unsigned int version)
{
    if (opts == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_thin_options_init: opts is NULL");
    ELAG_TRY(elag_api_check_version(version, ELAG_THIN_OPTIONS_VERSION, "elag_thin_options"));
    elag_thin_options d = ELAG_THIN_OPTIONS_INIT;
    *opts = d;
    return ELAG_OK;
}

elag_status elag_net_thin(elag_net_t *net, const elag_thin_options *opts,
                          elag_thin_result *result)
{
    if (net == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_net_thin: net is NULL");
    elag_thin_options o = ELAG_THIN_OPTIONS_INIT;
    if (opts) {
        ELAG_TRY(elag_api_check_version(opts->version, ELAG_THIN_OPTIONS_VERSION,
                                        "elag_thin_options"));
        o = *opts;
    }
    if (!(o.tolerance >= 0.0) || o.samples < 0)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_thin: tolerance %g and samples %d must be >= 0",
                         o.tolerance, o.samples);
    if (result) ELAG_TRY(elag_api_check_version(result->version, ELAG_THIN_RESULT_VERSION,
                                                "elag_thin_result"));
    double tol = o.tolerance > 0.0 ? o.tolerance : ELAG_THIN_VERIFY_TOL;
    int want = o.samples > 0 ? o.samples : ELAG_THIN_VERIFY_SAMPLES;
    elag_run_data d;
    elag_status st = elag_run_data_load_test(&net->e.cfg, &d);
    if (st != ELAG_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", elag_last_error());
        return elag_fail(st, "thin: the check needs the test set of the checkpoint's config: %s",
                         why);
    }
    int n = d.test.n < want ? (int)d.test.n : want;
    size_t count = (size_t)(n > 0 ? n : 1) * (size_t)net->e.classes;
    float *ref = malloc(count * sizeof *ref), *got = malloc(count * sizeof *got);
    elag_backend *be = NULL;
    double err = 0.0;
    if (!ref || !got) st = elag_fail(ELAG_ERR_NOMEM, "thin: out of host memory");
    else if (n < 1) st = elag_fail(ELAG_ERR_INPUT, "thin: the test set is empty");
    if (st == ELAG_OK) st = elag_backend_open("cpu", 0, &be, NULL, 0);
    if (st == ELAG_OK) st = elag_export_logits(&net->e, be, d.test.x, n, ref);
    if (st == ELAG_OK) {
        free(net->timings); /* an earlier "auto" timed weights that are about to change */
        net->timings = NULL;
        st = elag_export_thin(&net->e);
    }
    if (st == ELAG_OK) st = elag_export_logits(&net->e, be, d.test.x, n, got);
    if (st == ELAG_OK) {
        err = elag_logits_max_rel_err(got, ref, count);
        if (!(err <= tol))
            st = elag_fail(ELAG_ERR_INTERNAL,
                           "thin: the thinned model's logits differ from the masked model's by "
                           "%.3g (relative; tolerance %.3g) on %d test samples; nothing written",
                           err, tol, n);
    }
    if (result && st == ELAG_OK) {
        result->samples = n;
        result->max_rel_error = err;
        result->tolerance = tol;
    }
    elag_backend_free(be);
    free(ref);
    free(got);
    elag_run_data_free(&d);
    return st;
}

int elag_net_thin_count(const elag_net_t *net)
{
    return net ? net->e.n_thin : 0;
}

elag_status elag_net_thin_layer(const elag_net_t *net, int i, elag_thin_info *out)
{
    if (net == NULL || out == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_thin_layer: %s is NULL", net ? "out" : "net");
    if (i < 0 || i >= net->e.n_thin)
        return elag_fail(ELAG_ERR_USAGE, "elag_net_thin_layer: no layer %d", i);
    const elag_thin_layer *t = &net->e.thin[i];
    memset(out, 0, sizeof *out);
    snprintf(out->layer, sizeof out->layer, "%s", t->name);
    out->original = t->original;
    out->kept = t->kept;
    out->zero = t->zero;
    out->folded = t->folded;
    out->merged = t->merged;
    out->held = t->held;
    return ELAG_OK;
}
