/*
 * elag/train.h's elag_run_eval: a checkpoint evaluated on its config's test set, a thin
 * wrapper over elag_checkpoint_open/_restore (host/train/checkpoint.h), elag_evaluate and
 * elag_model_sparsity (host/train/train.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "api/api.h"

#include "core/check.h"
#include "train/checkpoint.h"
#include "train/train.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAL_BATCH 1000

_Static_assert(ELAG_EVAL_MAX_WEIGHTS >= ELAG_MAX_PRUNABLE,
               "elag_eval_result must hold every prunable weight");

elag_status elag_eval_options_init(elag_eval_options *opts, unsigned int version)
{
    if (opts == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_eval_options_init: opts is NULL");
    ELAG_TRY(elag_api_check_version(version, ELAG_EVAL_OPTIONS_VERSION, "elag_eval_options"));
    elag_eval_options d = ELAG_EVAL_OPTIONS_INIT;
    *opts = d;
    return ELAG_OK;
}

static void fill_result(const elag_train_summary *s, const char *device, double sps,
                        elag_eval_result *r)
{
    snprintf(r->device, sizeof r->device, "%s", device);
    r->test_accuracy = s->test_accuracy;
    r->test_loss = s->test_loss;
    r->samples_per_second = sps;
    r->sparsity = s->sparsity;
    r->params_total = (int64_t)s->params_total;
    r->params_prunable = (int64_t)s->params_prunable;
    r->params_nonzero = (int64_t)s->params_nonzero;
    r->n_weights = s->n_layers;
    for (int i = 0; i < s->n_layers; i++) {
        const elag_layer_summary *l = &s->layers[i];
        elag_weight_info *w = &r->weights[i];
        memset(w, 0, sizeof *w);
        snprintf(w->layer, sizeof w->layer, "%s", l->name);
        w->ndim = l->ndim;
        for (int d = 0; d < l->ndim && d < 4; d++) w->shape[d] = l->shape[d];
        w->rows = l->rows;
        w->cols = l->cols;
        w->params = (int64_t)l->params;
        w->nonzero = (int64_t)l->nonzero;
        snprintf(w->format, sizeof w->format, "dense");
        w->bytes = (int64_t)l->params * (int64_t)sizeof(float);
    }
}

/* Evaluates m on the test set, timed: samples per second of the whole pass. */
static elag_status timed_evaluate(elag_model *m, const elag_dataset *test, elag_train_summary *s,
                                  double *sps)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    elag_status st = elag_evaluate(m, test, &s->test_loss, &s->test_accuracy);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    *sps = secs > 0 ? (double)test->n / secs : 0;
    return st;
}

elag_status elag_run_eval(const char *path, const elag_eval_options *opts, elag_eval_result *result)
{
    elag_eval_options o = ELAG_EVAL_OPTIONS_INIT;
    if (opts) {
        ELAG_TRY(
            elag_api_check_version(opts->version, ELAG_EVAL_OPTIONS_VERSION, "elag_eval_options"));
        o = *opts;
    }
    if (result == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_run_eval: result is NULL");
    ELAG_TRY(elag_api_check_version(result->version, ELAG_EVAL_RESULT_VERSION, "elag_eval_result"));
    if (path == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_run_eval: path is NULL");

    /* large (a config, a summary, a model): on the heap, not the caller's stack */
    elag_checkpoint *ck = malloc(sizeof *ck);
    elag_train_summary *s = calloc(1, sizeof *s);
    elag_model *m = calloc(1, sizeof *m);
    if (ck == NULL || s == NULL || m == NULL) {
        free(ck), free(s), free(m);
        return elag_fail(ELAG_ERR_NOMEM, "elag_run_eval: out of host memory");
    }
    elag_status st = elag_checkpoint_open(path, ck);
    if (st != ELAG_OK) {
        free(ck), free(s), free(m);
        return st;
    }
    elag_backend *be = NULL;
    elag_run_data data = {0};
    double sps = 0;
    char note[256] = "";
    st = elag_backend_open(o.device ? o.device : "auto", ck->cfg.train.threads, &be, note,
                           sizeof note);
    if (st == ELAG_OK && note[0] && o.note) o.note(note, o.note_user);
    if (st == ELAG_OK) st = elag_run_data_load_test(&ck->cfg, &data);
    if (st == ELAG_OK && (data.test.features != ck->input_dim || data.test.classes != ck->classes))
        st = elag_fail(ELAG_ERR_INPUT,
                       "%s: model takes %d features and %d classes, its test set "
                       "has %d and %d",
                       path, ck->input_dim, ck->classes, data.test.features, data.test.classes);
    if (st == ELAG_OK) st = elag_model_init(m, &ck->cfg, ck->input, ck->classes, EVAL_BATCH, 0, be);
    if (st == ELAG_OK) st = elag_checkpoint_restore(ck, m, 0);
    if (st == ELAG_OK) st = timed_evaluate(m, &data.test, s, &sps);
    if (st == ELAG_OK) st = elag_model_sparsity(m, s);
    if (st == ELAG_OK) fill_result(s, be->name, sps, result);
    elag_model_free(m);
    elag_run_data_free(&data);
    elag_backend_free(be);
    elag_checkpoint_close(ck);
    free(ck), free(s), free(m);
    return st;
}
