/*
 * What the two files of elag/sensitivity.h share: the body of elag_sensitivity_t, the
 * checks of levels and budget, the budget suggestion and the writers of its files.
 * sensitivity.c measures (prune one layer, fine-tune, evaluate); sensitivity_files.c parses
 * --levels, turns the measurements into the suggestion, sensitivity.json, sensitivity.csv
 * and suggested_prune_layers.yaml, and answers the accessors.
 */
#ifndef ELAG_API_SENSITIVITY_INTERNAL_H
#define ELAG_API_SENSITIVITY_INTERNAL_H

#include "elag/sensitivity.h"

#include "train/train.h"

struct elag_sensitivity {
    elag_sensitivity_info info;
    char input[ELAG_PATH_LEN];                      /* the checkpoint or config given */
    char criterion[16];                             /* always "magnitude" for now */
    double levels[ELAG_SENSITIVITY_MAX_LEVELS + 1]; /* levels[0] = 0: the baseline */
    elag_sensitivity_layer_info layers[ELAG_MAX_PRUNABLE];
    int ndim[ELAG_MAX_PRUNABLE];
    int64_t shape[ELAG_MAX_PRUNABLE][4];
    /* points[i][j]: layer i at levels[j] (j = 0: the baseline, the same for every layer) */
    elag_sensitivity_point points[ELAG_MAX_PRUNABLE][ELAG_SENSITIVITY_MAX_LEVELS + 1];
    int n_all;                             /* prunable layers of the model */
    char all_names[ELAG_MAX_PRUNABLE][64]; /* their names, in model order */
};

/* ELAG_OK when levels[0..n) are each in (0, 1), strictly increasing, and 1 to
 * ELAG_SENSITIVITY_MAX_LEVELS of them; else ELAG_ERR_USAGE ("--levels: ..."). */
elag_status elag_sensitivity_check_levels(const double *levels, int n);

/* ELAG_ERR_USAGE when info.budget is not in (0, 1), ELAG_ERR_INPUT when the analysed layers
 * at the highest level do not reach it (checked before any measurement). */
elag_status elag_sensitivity_check_budget(const elag_sensitivity_t *s);

/* Chooses layers[i].suggested_target from the measured curves so that the prunable weights
 * of the whole model (info.params_prunable; layers not analysed stay dense) reach
 * info.budget, and sets info.suggested_sparsity. Greedy: from every layer at level 0, take
 * the move (one layer from its level to a higher measured one) that costs the least
 * accuracy per weight pruned, until the budget is reached; the last move stops part way
 * (linear between its two levels) so the total is the budget. ELAG_ERR_INPUT when even the
 * highest level everywhere does not reach it. */
elag_status elag_sensitivity_suggest(elag_sensitivity_t *s);

/* Writes sensitivity.json, sensitivity.csv and (when info.budget > 0)
 * suggested_prune_layers.yaml into s->info.out_dir (atomically, each). */
elag_status elag_sensitivity_write_files(const elag_sensitivity_t *s);

#endif /* ELAG_API_SENSITIVITY_INTERNAL_H */
