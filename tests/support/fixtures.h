/*
 * Small configs and models for tests: a synthetic dataset and a two-layer MLP that
 * train in well under a second.
 */
#ifndef ELAG_TESTS_FIXTURES_H
#define ELAG_TESTS_FIXTURES_H

#include "config/config.h"
#include "train/train.h"

/* Synthetic data (features 16, classes 4), layers fc1(hidden) relu1 fc2(4), batch 32. */
void elag_test_small_config(elag_config *cfg, int hidden);

/* Trains cfg (on cfg->device, one thread) into dir, from `resume` when not NULL, stopping
 * after `stop_after` epochs when > 0; fails the calling test on any error. */
void elag_test_train(const elag_config *cfg, const char *dir, const char *resume, int stop_after,
                     elag_train_summary *out);

/* A YAML config of a tiny synthetic run (milliseconds): 8 features, 3 classes, one hidden
 * layer of 8, one epoch, GMP to 0.5. For CLI and sweep tests. */
extern const char elag_test_tiny_yaml[];

#endif /* ELAG_TESTS_FIXTURES_H */
