/*
 * Checkpoints: a safetensors file with every tensor of the model's parameter registry
 * under its name (`<layer>.weight` F32 in its own shape, (out, in) or (out, C, kh, kw),
 * pruned entries 0; `<layer>.bias`; batch norm's `.weight`, `.bias`, `.running_mean`,
 * `.running_var`), `<layer>.mask` (U8, same shape) for prunable weights and optimizer
 * state `<tensor>.momentum` (SGD) or `<tensor>.exp_avg` and `<tensor>.exp_avg_sq` (AdamW)
 * for trainable tensors; metadata: format, resolved config (YAML), step, epoch,
 * input_dim, input_shape ("[C, H, W]"), classes, RNG state. The data order and all randomness derive
 * from (seed, epoch, step) through Philox, so a run resumed at an epoch boundary
 * continues bit for bit on the CPU.
 */
#ifndef ELAG_TRAIN_CHECKPOINT_H
#define ELAG_TRAIN_CHECKPOINT_H

#include "io/safetensors.h"
#include "model/model.h"

#define ELAG_CHECKPOINT_FORMAT "elag-checkpoint-1"

typedef struct elag_checkpoint {
    elag_st_file *file;
    elag_config cfg;     /* from the metadata */
    long step;           /* optimizer steps done */
    int epoch;           /* epochs done */
    int input_dim, classes;
    elag_fshape input;   /* per-sample input shape (input_shape, or (input_dim, 1, 1)) */
} elag_checkpoint;

/* The name of p's mask tensor into buf. */
void elag_checkpoint_mask_name(const elag_model *m, const elag_param *p, char *buf, size_t len);
/* Parses "[C, H, W]"; ELAG_ERR_INPUT (no message) when it is not one. */
elag_status elag_checkpoint_parse_shape(const char *text, elag_fshape *out);

elag_status elag_checkpoint_save(elag_model *m, const elag_config *cfg, long step, int epoch,
                                 const char *path);

/* Opens and validates a checkpoint; ck->cfg is the config it was trained with. */
elag_status elag_checkpoint_open(const char *path, elag_checkpoint *ck);

/* Copies weights, masks and (with_optimizer) optimizer state into a model built
 * from ck->cfg, checking every name, dtype and shape. */
elag_status elag_checkpoint_restore(const elag_checkpoint *ck, elag_model *m, int with_optimizer);

void elag_checkpoint_close(elag_checkpoint *ck); /* NULL safe */

#endif /* ELAG_TRAIN_CHECKPOINT_H */
