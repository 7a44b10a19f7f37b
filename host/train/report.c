/*
 * metrics.jsonl lines and summary.json (see report.h).
 */
#include "train/report.h"

#include "core/check.h"
#include "io/atomic.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static elag_status append_json(const char *path, cJSON *obj)
{
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    if (!text) return elag_fail(ELAG_ERR_NOMEM, "metrics: out of memory");
    elag_status st = elag_append_line(path, text);
    free(text);
    return st;
}

static cJSON *progress_json(const char *type, const elag_progress *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddNumberToObject(o, "epoch", p->epoch);
    cJSON_AddNumberToObject(o, "step", (double)p->step);
    cJSON_AddNumberToObject(o, "loss", p->loss);
    cJSON_AddNumberToObject(o, "accuracy", p->accuracy);
    cJSON_AddNumberToObject(o, "sparsity", p->sparsity);
    cJSON_AddNumberToObject(o, "lr", p->lr);
    cJSON_AddNumberToObject(o, "samples_per_second", p->samples_per_second);
    return o;
}

elag_status elag_report_step(const char *metrics_path, const elag_progress *p)
{
    return append_json(metrics_path, progress_json("step", p));
}

elag_status elag_report_epoch(const char *metrics_path, const elag_progress *p)
{
    cJSON *o = progress_json("epoch", p);
    if (p->val_accuracy >= 0) cJSON_AddNumberToObject(o, "val_accuracy", p->val_accuracy);
    if (p->test_accuracy >= 0) cJSON_AddNumberToObject(o, "test_accuracy", p->test_accuracy);
    return append_json(metrics_path, o);
}

void elag_report_layers_json(cJSON *parent, const elag_train_summary *s)
{
    cJSON *layers = cJSON_AddArrayToObject(parent, "layers");
    for (int i = 0; i < s->n_layers; i++) {
        const elag_layer_summary *l = &s->layers[i];
        cJSON *lo = cJSON_CreateObject();
        cJSON_AddStringToObject(lo, "name", l->name);
        cJSON *shape = cJSON_AddArrayToObject(lo, "shape");
        for (int d = 0; d < l->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)l->shape[d]));
        cJSON_AddNumberToObject(lo, "params", (double)l->params);
        cJSON_AddNumberToObject(lo, "nonzero", (double)l->nonzero);
        cJSON_AddNumberToObject(lo, "sparsity",
                                l->params ? 1.0 - (double)l->nonzero / (double)l->params : 0);
        cJSON_AddItemToArray(layers, lo);
    }
}

/* Writes o (and frees it) as an indented JSON file, atomically. */
static elag_status write_json(const char *path, cJSON *o)
{
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) return elag_fail(ELAG_ERR_NOMEM, "summary: out of memory");
    elag_status st = elag_atomic_write(path, text, strlen(text));
    free(text);
    return st;
}

elag_status elag_report_summary(const char *path, const elag_config *cfg,
                                const elag_train_summary *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", cfg->name);
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON_AddStringToObject(o, "config_hash", s->config_hash);
    cJSON_AddStringToObject(o, "device", s->device);
    cJSON_AddNumberToObject(o, "seed", (double)cfg->seed);
    cJSON_AddNumberToObject(o, "epochs", cfg->train.epochs);
    cJSON_AddNumberToObject(o, "steps", (double)s->steps);
    /* the config's own names (one name per figure: a sweep's ledger row, which holds the
     * swept config keys and these, then has each once); files from before said
     * prune_method, prune_scope and prune_target, and the readers take both */
    cJSON_AddStringToObject(o, "prune.method", elag_prune_method_name(cfg->prune.method));
    cJSON_AddStringToObject(o, "prune.scope", elag_prune_scope_name(cfg->prune.scope));
    cJSON_AddNumberToObject(o, "prune.target",
                            cfg->prune.method == ELAG_PRUNE_METHOD_NONE ? 0 : cfg->prune.target);
    cJSON_AddNumberToObject(o, "test_accuracy", s->test_accuracy);
    cJSON_AddNumberToObject(o, "test_loss", s->test_loss);
    if (s->val_accuracy >= 0) cJSON_AddNumberToObject(o, "val_accuracy", s->val_accuracy);
    cJSON_AddNumberToObject(o, "params_total", (double)s->params_total);
    cJSON_AddNumberToObject(o, "params_prunable", (double)s->params_prunable);
    cJSON_AddNumberToObject(o, "params_nonzero", (double)s->params_nonzero);
    cJSON_AddNumberToObject(o, "sparsity", s->sparsity);
    elag_report_layers_json(o, s);
    cJSON_AddNumberToObject(o, "train_seconds", s->train_seconds);
    cJSON_AddNumberToObject(o, "samples_per_second", s->samples_per_second);
    cJSON_AddNumberToObject(o, "mask_update_seconds", s->mask_update_seconds);
    cJSON_AddNumberToObject(o, "mask_updates", (double)s->mask_updates);
    cJSON_AddNumberToObject(o, "mask_update_fraction",
                            s->train_seconds > 0 ? s->mask_update_seconds / s->train_seconds : 0);
    return write_json(path, o);
}

elag_status elag_report_diverged(const char *path, const elag_config *cfg, const elag_diverged *d)
{
    char hash[17];
    ELAG_TRY(elag_config_hash(cfg, hash));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", cfg->name);
    cJSON_AddStringToObject(o, "status", "diverged");
    cJSON_AddStringToObject(o, "config_hash", hash);
    cJSON_AddNumberToObject(o, "seed", (double)cfg->seed);
    cJSON_AddNumberToObject(o, "epochs", cfg->train.epochs);
    cJSON_AddNumberToObject(o, "diverged_step", (double)d->step);
    cJSON_AddNumberToObject(o, "diverged_epoch", d->epoch);
    cJSON_AddStringToObject(o, "diverged_tensor", d->tensor);
    cJSON_AddStringToObject(o, "error", d->error);
    return write_json(path, o);
}
