/*
 * elag public API: per-layer pruning sensitivity (`elag sensitivity`). Each prunable layer
 * is pruned alone, by weight magnitude, to each of a list of sparsity levels, and the
 * model is evaluated on its test set (after a short fine-tune when asked); the accuracy
 * drop against the unpruned model says which layers take pruning well. From those curves
 * it suggests per-layer targets for a global sparsity budget, as a `prune.layers` list
 * (docs/config.md) ready to paste into a config. docs/sensitivity.md.
 *
 * elag_sensitivity_run takes a trained checkpoint (a run's model.safetensors) or a config
 * file; given a config it first trains the dense model into OUT/dense. Everything it
 * writes goes under its own output folder: sensitivity.json, sensitivity.csv and
 * suggested_prune_layers.yaml (the plot is the caller's: the library starts no process).
 */
#ifndef ELAG_INCLUDE_SENSITIVITY_H
#define ELAG_INCLUDE_SENSITIVITY_H

#include "common.h"
#include "train.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ELAG_SENSITIVITY_MAX_LEVELS     16
#define ELAG_SENSITIVITY_DEFAULT_LEVELS "0.5,0.7,0.8,0.9,0.95,0.98"
#define ELAG_SENSITIVITY_FINETUNE_STEPS 200 /* default with a config */

/* One measurement done, passed to elag_sensitivity_options.progress. */
typedef struct elag_sensitivity_progress {
    unsigned int version; /* ELAG_SENSITIVITY_PROGRESS_VERSION of the library that filled it */
    int index, total;     /* 1-based: the baseline is 1, then layer by layer, level by level */
    const char *layer;    /* the layer pruned ("" for the baseline); valid during the call */
    double level;         /* its sparsity level (0 for the baseline) */
    double test_accuracy, test_loss;
    double seconds; /* this measurement's wall time (fine-tune + evaluation) */
} elag_sensitivity_progress;

#define ELAG_SENSITIVITY_PROGRESS_VERSION 1

typedef void (*elag_sensitivity_progress_fn)(const elag_sensitivity_progress *p, void *user);

#define ELAG_SENSITIVITY_OPTIONS_VERSION 1

typedef struct elag_sensitivity_options {
    unsigned int version;         /* ELAG_SENSITIVITY_OPTIONS_VERSION */
    const char *device;           /* overrides the config's `device` (NULL: keep it) */
    int threads;                  /* CPU threads; 0: the config's train.threads */
    const char *const *overrides; /* n_overrides "key.path=value" strings, like --set: applied
                                   * to the config (or to the one stored in the checkpoint) */
    int n_overrides;
    const double *levels;      /* n_levels sparsities in (0, 1), increasing; NULL: the defaults
                                * ELAG_SENSITIVITY_DEFAULT_LEVELS */
    int n_levels;              /* at most ELAG_SENSITIVITY_MAX_LEVELS */
    const char *const *layers; /* n_layers prunable layer names or fnmatch globs to analyse;
                                * NULL: every prunable layer */
    int n_layers;
    long finetune_steps; /* optimizer steps after each prune, before evaluating; -1: the
                          * default (0 for a checkpoint, ELAG_SENSITIVITY_FINETUNE_STEPS
                          * for a config) */
    double finetune_lr;  /* constant learning rate of the fine-tune (the config's
                          * optimizer); 0: train.optimizer.lr / 10 */
    double budget;       /* global sparsity the suggestion reaches, in (0, 1): refused
                          * when the levels cannot reach it. 0: the config's
                          * prune.target, or no suggestion (a note) when that cannot
                          * be reached */
    int force;           /* 1: write into an output folder that is not empty */
    elag_note_fn note;   /* what "auto" chose, a granularity replaced; may be NULL */
    elag_run_progress_fn train_progress;   /* the dense training of a config; may be NULL */
    elag_sensitivity_progress_fn progress; /* after each measurement; may be NULL */
    void *user;                            /* passed to note, train_progress and progress */
} elag_sensitivity_options;

#define ELAG_SENSITIVITY_OPTIONS_INIT                                                              \
    {                                                                                              \
        ELAG_SENSITIVITY_OPTIONS_VERSION, NULL, 0, NULL, 0, NULL, 0, NULL, 0, -1, 0, 0, 0, NULL,   \
            NULL, NULL, NULL                                                                       \
    }

/* Fills *opts with the defaults of `version`; ELAG_ERR_USAGE for an unknown version. */
elag_status elag_sensitivity_options_init(elag_sensitivity_options *opts, unsigned int version);

/* Parses a comma-separated list of levels ("0.5,0.9,0.99") into levels[0..*n): each a
 * number in (0, 1), strictly increasing, at most `max` of them; ELAG_ERR_USAGE naming the
 * bad item otherwise. */
elag_status elag_sensitivity_levels_parse(const char *text, double *levels, int max, int *n);

/* The results of a run (opaque, host memory). Free with elag_sensitivity_free. */
typedef struct elag_sensitivity elag_sensitivity_t;

/* Runs the analysis of `input`: a checkpoint (*.safetensors, or any file that is one) or a
 * YAML config (trained dense first, into out_dir/dense, with the config's prune.method
 * set to none). out_dir NULL: runs/<name>-sensitivity-<YYYYmmdd-HHMMSS>; it must be missing
 * or empty unless opts->force. Every input (file, config, checkpoint, levels, layers,
 * budget, device) is checked before anything is written: ELAG_ERR_INPUT (or
 * ELAG_ERR_USAGE for bad options, ELAG_ERR_NO_DEVICE) with one message. A fine-tune whose
 * loss stops being finite is ELAG_ERR_DIVERGED. On success *out holds the results and
 * out_dir holds sensitivity.json, sensitivity.csv and (with a budget)
 * suggested_prune_layers.yaml. */
elag_status elag_sensitivity_run(elag_sensitivity_t **out, const char *input, const char *out_dir,
                                 const elag_sensitivity_options *opts);

void elag_sensitivity_free(elag_sensitivity_t *s); /* NULL does nothing */

#define ELAG_SENSITIVITY_INFO_VERSION 1

typedef struct elag_sensitivity_info {
    unsigned int version; /* set by the caller: ELAG_SENSITIVITY_INFO_VERSION */
    char out_dir[1024];   /* where the files are */
    char model[1024];     /* the checkpoint analysed (out_dir/dense/model.safetensors for a
                           * config) */
    char name[64];        /* the config's name */
    char device[32];      /* the device it ran on */
    char granularity[16]; /* how a layer was pruned: "element", "block", "neuron", "channel" */
    int n_layers;         /* layers analysed */
    int n_levels;         /* levels per layer (level 0, the baseline, not counted) */
    long finetune_steps;
    double finetune_lr;                      /* 0 when finetune_steps is 0 */
    double dense_accuracy, dense_loss;       /* the checkpoint as it is */
    double baseline_accuracy, baseline_loss; /* no layer pruned, after the same fine-tune
                                              * (= dense without fine-tune) */
    int64_t params_prunable;                 /* every prunable weight of the model */
    double budget;             /* the global sparsity asked for; 0: no suggestion (the config's
                                * prune.target, the default, was 0 or beyond what the levels reach) */
    double suggested_sparsity; /* reached by the suggested targets, over params_prunable */
} elag_sensitivity_info;

#define ELAG_SENSITIVITY_INFO_INIT                                                                 \
    {                                                                                              \
        ELAG_SENSITIVITY_INFO_VERSION, "", "", "", "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0         \
    }

elag_status elag_sensitivity_describe(const elag_sensitivity_t *s, elag_sensitivity_info *info);

/* One analysed layer. */
typedef struct elag_sensitivity_layer_info {
    char name[64];
    int rows, cols;          /* its weight as a matrix: out x everything else */
    int64_t params;          /* rows * cols */
    double sparsity;         /* of the checkpoint as it is */
    double suggested_target; /* for the budget (0: keep it dense) */
} elag_sensitivity_layer_info;

/* Layer i, 0 <= i < info.n_layers; ELAG_ERR_USAGE for another i. */
elag_status elag_sensitivity_layer(const elag_sensitivity_t *s, int i,
                                   elag_sensitivity_layer_info *out);

/* One layer pruned to one level. */
typedef struct elag_sensitivity_point {
    double level;         /* the sparsity asked for */
    double sparsity;      /* the layer's sparsity reached (whole groups round it up) */
    double test_accuracy; /* of the whole model */
    double test_loss;
    double accuracy_drop; /* baseline_accuracy - test_accuracy */
} elag_sensitivity_point;

/* Layer i at level j (1 <= j <= info.n_levels; j = 0 is the baseline). */
elag_status elag_sensitivity_result(const elag_sensitivity_t *s, int i, int j,
                                    elag_sensitivity_point *out);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_SENSITIVITY_H */
