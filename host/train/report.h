/*
 * Run outputs as JSON: one metrics.jsonl line per log interval and per epoch, and
 * summary.json with the keys DESIGN.md lists (cJSON; atomic writes).
 */
#ifndef ELAG_TRAIN_REPORT_H
#define ELAG_TRAIN_REPORT_H

#include "train/train.h"

#include <cjson/cJSON.h>

elag_status elag_report_step(const char *metrics_path, const elag_progress *p);
elag_status elag_report_epoch(const char *metrics_path, const elag_progress *p);
/* Adds "layers": [{name, shape, params, nonzero, sparsity}] to parent. */
void elag_report_layers_json(cJSON *parent, const elag_train_summary *s);
elag_status elag_report_summary(const char *path, const elag_config *cfg,
                                const elag_train_summary *s);

#endif /* ELAG_TRAIN_REPORT_H */
