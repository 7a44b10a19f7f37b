/*
 * Loads the datasets a config names: Fashion-MNIST / IDX or the user's .npy files from
 * data.path, or a synthetic set, limits, validation split (the tail of the training set) and
 * normalisation.
 */
#include "train/train.h"

#include "core/check.h"

#include <stdio.h>
#include <string.h>

void elag_run_data_free(elag_run_data *d)
{
    if (!d) return;
    elag_dataset_free(&d->train);
    elag_dataset_free(&d->val);
    elag_dataset_free(&d->test);
}

static elag_status load_sets(const elag_config *cfg, elag_run_data *d, int want_train)
{
    switch (cfg->data.dataset) {
    case ELAG_DATASET_FASHION_MNIST:
    case ELAG_DATASET_IDX:
        if (want_train)
            ELAG_TRY(elag_fashion_mnist_load(cfg->data.path, 1, cfg->data.train_limit, &d->train));
        return elag_fashion_mnist_load(cfg->data.path, 0, cfg->data.test_limit, &d->test);
    case ELAG_DATASET_NPY:
        if (want_train)
            ELAG_TRY(elag_npy_dataset_load(cfg->data.path, 1, cfg->data.train_limit, &d->train));
        return elag_npy_dataset_load(cfg->data.path, 0, cfg->data.test_limit, &d->test);
    case ELAG_DATASET_SYNTHETIC: {
        long n_train = cfg->data.synthetic.train, n_test = cfg->data.synthetic.test;
        if (cfg->data.train_limit > 0 && cfg->data.train_limit < n_train)
            n_train = cfg->data.train_limit;
        if (cfg->data.test_limit > 0 && cfg->data.test_limit < n_test)
            n_test = cfg->data.test_limit;
        if (want_train)
            ELAG_TRY(elag_synthetic_make(n_train, cfg->data.synthetic.features,
                                         cfg->data.synthetic.classes, cfg->data.synthetic.noise,
                                         cfg->seed, 0, &d->train));
        return elag_synthetic_make(n_test, cfg->data.synthetic.features,
                                   cfg->data.synthetic.classes, cfg->data.synthetic.noise,
                                   cfg->seed, n_train, &d->test);
    }
    }
    return elag_fail(ELAG_ERR_INTERNAL, "unknown dataset kind");
}

elag_status elag_run_data_load(const elag_config *cfg, elag_run_data *d)
{
    memset(d, 0, sizeof *d);
    elag_status st;
    ELAG_TRY_GOTO(st, load_sets(cfg, d, 1), fail);
    if (cfg->data.val_split > 0) {
        long count = (long)((double)d->train.n * cfg->data.val_split + 0.5);
        if (count < 1 || count >= d->train.n) {
            st = elag_fail(ELAG_ERR_INPUT, "%s: data.val_split %g leaves no %s examples",
                           cfg->source, cfg->data.val_split, count < 1 ? "validation" : "training");
            goto fail;
        }
        ELAG_TRY_GOTO(st, elag_dataset_split_tail(&d->train, count, &d->val), fail);
    }
    if (cfg->data.dataset != ELAG_DATASET_SYNTHETIC && cfg->data.normalize) {
        elag_dataset_normalize(&d->train, (float)cfg->data.mean, (float)cfg->data.std);
        if (d->val.n > 0)
            elag_dataset_normalize(&d->val, (float)cfg->data.mean, (float)cfg->data.std);
        elag_dataset_normalize(&d->test, (float)cfg->data.mean, (float)cfg->data.std);
    }
    return ELAG_OK;
fail:
    elag_run_data_free(d);
    return st;
}

elag_status elag_run_data_load_test(const elag_config *cfg, elag_run_data *d)
{
    memset(d, 0, sizeof *d);
    elag_status st = load_sets(cfg, d, 0);
    if (st != ELAG_OK) {
        elag_run_data_free(d);
        return st;
    }
    if (cfg->data.dataset != ELAG_DATASET_SYNTHETIC && cfg->data.normalize)
        elag_dataset_normalize(&d->test, (float)cfg->data.mean, (float)cfg->data.std);
    return ELAG_OK;
}
