/*
 * Run outputs as JSON: one metrics.jsonl line per log interval and per epoch, and
 * summary.json with the keys docs/outputs.md lists, or the diverged marker (cJSON; atomic
 * writes).
 */
#ifndef ELAG_TRAIN_REPORT_H
#define ELAG_TRAIN_REPORT_H

#include "train/train.h"

#include <cjson/cJSON.h>

elag_status elag_report_step(const char *metrics_path, const elag_progress *p);
elag_status elag_report_epoch(const char *metrics_path, const elag_progress *p);
/* Adds "layers": [{name, shape, params, nonzero, sparsity}] to parent. */
void elag_report_layers_json(cJSON *parent, const elag_train_summary *s);
/* summary.json of a finished run ("status": "ok"). */
elag_status elag_report_summary(const char *path, const elag_config *cfg,
                                const elag_train_summary *s);

/* Where a run diverged. */
typedef struct elag_diverged {
    long step;          /* 1-based step whose loss, gradient or update was not finite */
    int epoch;          /* 1-based */
    const char *tensor; /* the registry name of the first tensor found, or "loss" */
    const char *error;  /* the one-line message */
} elag_diverged;

/* summary.json of a diverged run: name, config_hash, seed, epochs, "status": "diverged",
 * diverged_step, diverged_epoch, diverged_tensor and error (what a sweep's row takes). */
elag_status elag_report_diverged(const char *path, const elag_config *cfg, const elag_diverged *d);

#endif /* ELAG_TRAIN_REPORT_H */
