/*
 * `train.init_from: FILE`: a training run that starts from the weights of a checkpoint (an
 * earlier run's, or one `elag import` made from ONNX) instead of its random
 * initialisation. Layers with tensors are matched by position and shape, not by name, so
 * a checkpoint imported from PyTorch can start a config that uses a preset.
 */
#ifndef ELAG_TRAIN_INIT_FROM_H
#define ELAG_TRAIN_INIT_FROM_H

#include "config/config.h"
#include "model/model.h"

/* When cfg->train.init_from is set: reads that checkpoint and copies its weights, biases
 * and batch-norm tensors into m (after elag_model_init_params), the k-th layer with
 * tensors of the checkpoint into the k-th of m. Masks and optimizer state are not taken
 * (the run's prune plan makes its own masks). A layer of another kind or shape, or another
 * number of such layers, is ELAG_ERR_INPUT naming the layer. No-op when it is "". */
elag_status elag_train_init_from(elag_model *m, const elag_config *cfg);

#endif /* ELAG_TRAIN_INIT_FROM_H */
