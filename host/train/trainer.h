/*
 * The trainer's state, private to host/train/: train.c (the loop), finite.c (the
 * divergence checks), resume.c (continuing from a checkpoint) and run_folder.c (the run
 * folder's housekeeping) share it.
 */
#ifndef ELAG_TRAIN_TRAINER_H
#define ELAG_TRAIN_TRAINER_H

#include "prune/mask.h"
#include "prune/schedule.h"
#include "train/checkpoint.h"
#include "train/sparse_step.h"
#include "train/train.h"

struct elag_trainer {
    const elag_config *cfg;
    elag_backend *be;
    const elag_run_data *data;
    elag_train_options opts;
    elag_model model;
    elag_prune_plan plan;
    elag_prune_setup prune; /* criterion, granularity, allocation: built once (pruning runs) */
    elag_sparse_step sparse; /* layers that train on their mask's pattern (sparse_step.h) */
    float *x_dev;       /* device (n_train, features) */
    int32_t *y_dev;     /* device (n_train) */
    int32_t *perm_dev;  /* device (n_train) */
    int32_t *perm_host; /* host (n_train) */
    float *check_dev;   /* device (2 * check_rows + 2): per-row sums of every tensor's
                         * gradient, of its values, then the loss/accuracy accumulators */
    float *check_host;  /* host, the same */
    size_t check_rows;  /* elag_finite_rows(&model) */
    long steps_per_epoch, total_steps, step;
    long start_step;    /* steps done at the checkpoint resumed from (0: a fresh run) */
    int masks_active;
    float *rewind_dev;  /* device (n_params): the weights at prune.rewind_step, or NULL */
    float *keep_dev;    /* device (kept_floats): what a gradient pass must not change (batch
                         * norm running statistics, the loss accumulators), or NULL */
    size_t kept_floats;
    double sparsity;    /* target of the last mask update */
    double mask_seconds, train_seconds;
    double run_t0;      /* when elag_trainer_run started (for the ETA) */
    long mask_updates;
    double ep_loss, ep_correct; /* the epoch in progress: loss sum, correct count */
    long ep_samples;            /* and its samples so far */
    long saved_step;    /* step of the last checkpoint this run wrote or resumed from, -1 */
    char metrics_path[ELAG_PATH_LEN + 32];
    char ckpt_path[ELAG_PATH_LEN + 32];
    char summary_path[ELAG_PATH_LEN + 32];
};

/* ---- train.c ---- */

/* The mask update of step t->step (before its forward pass; `batch` is the step's batch
 * index in its epoch, whose data the gradient passes use): the gradient passes the
 * criterion or RigL needs, the update or drop-and-grow, and lottery-ticket rewinding. */
elag_status elag_trainer_mask_update(elag_trainer *t, long batch);

/* The extra state of the checkpoint at step `step` (criterion state, rewind point) into
 * x (2 * ELAG_MAX_PARAMS entries); returns how many. */
int elag_trainer_extras(elag_trainer *t, long step, elag_checkpoint_extra *x);

/* ---- finite.c ---- */

/* The rows of all tensors as matrices (each region of the check buffer). */
size_t elag_finite_rows(const elag_model *m);

/* Queues the sums of every trainable tensor's gradient (after backward, before the
 * optimizer step). */
elag_status elag_finite_grads(elag_trainer *t);
/* Queues the sums of every tensor's values and the loss accumulators (after the optimizer
 * step), downloads all of it and checks it: ELAG_ERR_DIVERGED naming the step (1-based,
 * `step`), the epoch and the first tensor that is not finite; no checkpoint is written. */
elag_status elag_finite_check(elag_trainer *t, long step, int epoch);
/* ELAG_ERR_DIVERGED (recorded the same way) when an evaluation loss on `set` ("test",
 * "validation") is not finite: weights so large that the logits overflow. epoch 0-based. */
elag_status elag_finite_eval(elag_trainer *t, const char *set, double loss, int epoch);

/* ---- resume.c ---- */

/* Opens opts.resume_path, refuses a config that changed in a key that may not change
 * (ELAG_ERR_INPUT naming it), restores weights, masks, optimizer state and counters. */
elag_status elag_trainer_resume(elag_trainer *t);

/* First key (dotted, "model.layers[2]" for a layer) whose value differs between the
 * resolved configs `was` and `now`, ignoring the keys safe to change on resume; 1 and
 * key, old and new value set when one differs, 0 when none. */
int elag_resume_changed_key(const elag_config *was, const elag_config *now, char *key,
                            size_t key_len, char *old_value, char *new_value, size_t value_len);

/* ---- run_folder.c ---- */

/* Removes "<name>.tmp.<pid>" files (elag_atomic_open's temporaries) whose process is gone. */
elag_status elag_run_folder_remove_stale(const char *dir);
/* Keeps only the metrics.jsonl lines of steps <= step (a torn last line goes too). */
elag_status elag_metrics_truncate(const char *path, long step);

#endif /* ELAG_TRAIN_TRAINER_H */
