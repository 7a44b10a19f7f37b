/*
 * For the tests that train one run two ways (the sparse step against the dense masked
 * path): the run itself, and checks on the checkpoints (model.safetensors in a run folder)
 * the two wrote.
 */
#ifndef ELAG_TESTS_CHECKPOINTS_H
#define ELAG_TESTS_CHECKPOINTS_H

#include "config/config.h"
#include "io/safetensors.h"

#include <stddef.h>

/* Trains `base` with train.sparse_compute = mode into dir on its device opened with
 * `threads` CPU threads, from `resume` when not NULL, interrupted (as Ctrl-C) at the first
 * progress report at or after step `interrupt_at` when > 0; *live (when not NULL): the
 * layers on their pattern at the end, -1 when the trainer did not start. Returns the
 * run's status. */
elag_status elag_test_train_mode(const elag_config *base, elag_sparse_compute mode, int threads,
                                 const char *dir, const char *resume, long interrupt_at,
                                 int *live);

/* dir/model.safetensors, opened; fails the calling test when it cannot be. */
elag_st_file *elag_test_open_checkpoint(const char *dir);

/* Every F32 tensor of a_dir's checkpoint (weights, biases, optimizer state) within
 * abs_tol + rel_tol * |b| of b_dir's, every other tensor byte for byte; the same names and
 * sizes in both. Returns how many F32 tensors were compared. */
int elag_test_compare_checkpoints(const char *a_dir, const char *b_dir, double abs_tol,
                                  double rel_tol);

/* Where a mask L.mask whose name starts with `prefix` ("" for all) is 0, L.weight and its
 * optimizer state (L.weight.momentum, .exp_avg, .exp_avg_sq) hold exactly +0.0 bits (a
 * criterion's state, L.weight.movement, may be nonzero there). Returns the pruned entries
 * seen. */
size_t elag_test_pruned_are_zero(const char *dir, const char *prefix);

#endif /* ELAG_TESTS_CHECKPOINTS_H */
