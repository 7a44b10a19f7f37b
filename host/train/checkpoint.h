/*
 * Checkpoints: a safetensors file with every tensor of the model's parameter registry
 * under its name (`<layer>.weight` F32 in its own shape, (out, in) or (out, C, kh, kw),
 * pruned entries 0; `<layer>.bias`; batch norm's `.weight`, `.bias`, `.running_mean`,
 * `.running_var`), `<layer>.mask` (U8, same shape) for prunable weights and optimizer
 * state `<tensor>.momentum` (SGD) or `<tensor>.exp_avg` and `<tensor>.exp_avg_sq` (AdamW)
 * for trainable tensors; metadata: format, resolved config (YAML), step, epoch,
 * input_dim, input_shape ("[C, H, W]"), classes, RNG state, and the run's counters (see
 * elag_checkpoint_counters). The data order and all randomness derive from (seed, epoch,
 * step) through Philox, so a run resumed at any step, mid-epoch included, continues bit
 * for bit on the CPU. elag_checkpoint_restore refuses a tensor holding NaN or Inf.
 */
#ifndef ELAG_TRAIN_CHECKPOINT_H
#define ELAG_TRAIN_CHECKPOINT_H

#include "io/safetensors.h"
#include "model/model.h"

#define ELAG_CHECKPOINT_FORMAT "elag-checkpoint-1"

/* Where a run stands and what it has counted so far, so that a resumed run continues
 * mid-epoch and its summary counts the whole run. The data-order RNG state is
 * (seed, epoch): Philox draws epoch `epoch`'s permutation, and `epoch_step` says how
 * many of its batches are done. */
typedef struct elag_checkpoint_counters {
    long step;                  /* optimizer steps done */
    int epoch;                  /* epochs done */
    long epoch_step;            /* steps done in epoch `epoch` (0 at an epoch boundary) */
    long mask_updates;          /* mask updates done */
    double mask_update_seconds; /* their time */
    double train_seconds;       /* training time so far */
    double epoch_loss_sum;      /* training loss summed over the epoch's samples so far */
    double epoch_correct;       /* correctly classified samples of the epoch so far */
    long epoch_samples;         /* samples of the epoch so far */
} elag_checkpoint_counters;

typedef struct elag_checkpoint {
    elag_st_file *file;
    elag_config cfg;     /* from the metadata */
    long step;           /* optimizer steps done */
    int epoch;           /* epochs done */
    int has_counters;    /* 1: `counters` came from the file (elag 0.1 checkpoints had
                          * only step and epoch; then counters holds those two) */
    elag_checkpoint_counters counters;
    int input_dim, classes;
    elag_fshape input;   /* per-sample input shape (input_shape, or (input_dim, 1, 1)) */
} elag_checkpoint;

/* The name of p's mask tensor into buf. */
void elag_checkpoint_mask_name(const elag_model *m, const elag_param *p, char *buf, size_t len);
/* Parses "[C, H, W]"; ELAG_ERR_INPUT (no message) when it is not one. */
elag_status elag_checkpoint_parse_shape(const char *text, elag_fshape *out);

elag_status elag_checkpoint_save(elag_model *m, const elag_config *cfg,
                                 const elag_checkpoint_counters *c, const char *path);

/* Training state beside the registry that a resumed run needs to continue bit for bit:
 * a pruning criterion's per-weight state (`<tensor>.taylor`, `<tensor>.movement`) and
 * the lottery-ticket rewind point (`<tensor>.rewind`). One F32 tensor each, shaped like a
 * registry tensor. */
typedef struct elag_checkpoint_extra {
    char name[ELAG_PARAM_NAME_LEN + 32];
    float *data;            /* device (like->count) */
    const elag_param *like; /* the registry tensor whose shape it has */
} elag_checkpoint_extra;

/* elag_checkpoint_save, plus n_extra extra tensors. */
elag_status elag_checkpoint_save_extra(elag_model *m, const elag_config *cfg,
                                       const elag_checkpoint_counters *c,
                                       const elag_checkpoint_extra *extra, int n_extra,
                                       const char *path);

/* Opens and validates a checkpoint; ck->cfg is the config it was trained with. */
elag_status elag_checkpoint_open(const char *path, elag_checkpoint *ck);

/* Copies weights, masks and (with_optimizer) optimizer state into a model built
 * from ck->cfg, checking every name, dtype and shape, and that every F32 tensor is
 * finite (ELAG_ERR_INPUT naming the tensor otherwise: a diverged model is refused). */
elag_status elag_checkpoint_restore(const elag_checkpoint *ck, elag_model *m, int with_optimizer);

/* Copies the n extra tensors from the file into their device buffers (each must be there
 * with its shape, F32 and finite: ELAG_ERR_INPUT naming it otherwise). */
elag_status elag_checkpoint_restore_extra(const elag_checkpoint *ck, elag_model *m,
                                          const elag_checkpoint_extra *extra, int n);

void elag_checkpoint_close(elag_checkpoint *ck); /* NULL safe */

#endif /* ELAG_TRAIN_CHECKPOINT_H */
