/*
 * The training loop: batches from a per-epoch shuffle, forward, loss, backward,
 * masked optimizer step, LR schedule, mask updates from the prune plan, metrics,
 * checkpoints and the final evaluation. Writes metrics.jsonl, model.safetensors and
 * summary.json into the run folder (all but metrics written atomically).
 *
 * Two phases, so that bad input never changes a run folder: elag_trainer_init checks
 * everything (model against data, and on resume the checkpoint's config, shapes and
 * counters) and writes nothing; elag_trainer_run writes. Every step checks that the loss,
 * the gradients and the weights are finite (a diverged run stops with ELAG_ERR_DIVERGED
 * and summary.json says "status": "diverged"); an interrupt flag makes it checkpoint at
 * the next step boundary and stop with ELAG_ERR_INTERRUPTED.
 */
#ifndef ELAG_TRAIN_TRAIN_H
#define ELAG_TRAIN_TRAIN_H

#include "backend/backend.h"
#include "config/config.h"
#include "data/dataset.h"
#include "model/model.h"

#include <signal.h>

#define ELAG_MAX_PRUNABLE ELAG_MAX_LAYERS

/* Train, optional validation and test sets for a config, loaded and normalised. */
typedef struct elag_run_data {
    elag_dataset train, val, test;
} elag_run_data;

elag_status elag_run_data_load(const elag_config *cfg, elag_run_data *d);
/* Only the test set (train and val stay empty): for evaluation and inference. */
elag_status elag_run_data_load_test(const elag_config *cfg, elag_run_data *d);
void elag_run_data_free(elag_run_data *d);

typedef struct elag_progress {
    int epoch, epochs;        /* 1-based epoch in progress */
    long step, steps;         /* optimizer steps done, total */
    double loss, accuracy;    /* over the steps since the last report */
    double sparsity;          /* fraction of zeros among prunable weights */
    double lr;
    double samples_per_second, eta_seconds;
    int epoch_end;            /* 1 on the report that closes an epoch */
    double val_accuracy;      /* at epoch end when a validation split exists, else -1 */
    double test_accuracy;     /* at epoch end when train.eval_every_epoch, else -1 */
} elag_progress;

typedef void (*elag_progress_fn)(const elag_progress *p, void *user);

typedef struct elag_train_options {
    const char *out_dir;       /* run folder, already created */
    const char *resume_path;   /* checkpoint to continue from, or NULL */
    elag_progress_fn progress; /* called every train.log_every steps and at epoch ends */
    void *progress_user;
    int stop_after_epochs;     /* > 0: stop (and checkpoint) after this many epochs, as a
                                * preempted job would; the LR and prune schedules still
                                * follow train.epochs. 0: train all epochs. */
    const volatile sig_atomic_t *interrupt; /* may be NULL; nonzero: checkpoint at the next
                                             * step boundary, then ELAG_ERR_INTERRUPTED */
} elag_train_options;

typedef struct elag_layer_summary {
    char name[ELAG_NAME_LEN];
    int rows, cols;            /* as a matrix: out x everything else */
    int ndim;
    int64_t shape[4];          /* the tensor's own shape: (out, in) or (out, C, kh, kw) */
    size_t params, nonzero;
} elag_layer_summary;

typedef struct elag_train_summary {
    char config_hash[17];
    char device[32];
    long steps;
    double test_accuracy, test_loss, val_accuracy; /* val_accuracy -1 without a split */
    size_t params_total, params_prunable, params_nonzero;
    double sparsity;            /* zeros / prunable weights */
    int n_layers;
    elag_layer_summary layers[ELAG_MAX_PRUNABLE];
    double train_seconds, samples_per_second, mask_update_seconds;
    long mask_updates;
} elag_train_summary;

typedef struct elag_trainer elag_trainer;

/* Builds the model, uploads the data and, with opts->resume_path, opens the checkpoint:
 * a changed config key that may not change on resume, a shape or a step that does not fit
 * this run is ELAG_ERR_INPUT. Writes nothing. cfg, be, data and opts->out_dir must outlive
 * the trainer. */
elag_status elag_trainer_init(elag_trainer **out, const elag_config *cfg, elag_backend *be,
                              const elag_run_data *data, const elag_train_options *opts);
/* Steps done at the checkpoint the trainer resumes from (0 for a fresh run). */
long elag_trainer_start_step(const elag_trainer *t);
/* The run: stale temporaries removed from the folder, metrics.jsonl cut back to the
 * checkpoint's step (resume), training, the final evaluation, checkpoint and summary. */
elag_status elag_trainer_run(elag_trainer *t, elag_train_summary *out);
void elag_trainer_free(elag_trainer *t); /* NULL safe */

/* elag_trainer_init, _run and _free in one call. */
elag_status elag_train_run(const elag_config *cfg, elag_backend *be, const elag_run_data *data,
                           const elag_train_options *opts, elag_train_summary *out);

/* Test loss and accuracy of the model over a dataset (no gradients). */
elag_status elag_evaluate(elag_model *m, const elag_dataset *d, double *loss, double *accuracy);

/* Per-layer and total sparsity of the prunable weights (synchronises). */
elag_status elag_model_sparsity(elag_model *m, elag_train_summary *s);

/* Learning rate at step t of a run of total_steps (warmup, then constant/step/cosine). */
double elag_lr_at(const elag_config *cfg, long t, long total_steps);

/* One masked optimizer step over every parameter tensor (t is 1-based). */
elag_status elag_optimizer_step(elag_model *m, const elag_config *cfg, double lr, long t,
                                int masked);

#endif /* ELAG_TRAIN_TRAIN_H */
