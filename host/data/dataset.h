/*
 * Datasets held in host memory as float features (n, features) row-major and int32
 * labels (n). Fashion-MNIST comes from Debian's dataset-fashion-mnist
 * (/usr/share/datasets/fashion-mnist/<set>-<kind>-idx?-ubyte.gz) through the IDX
 * reader, which accepts gzip'd or plain files and refuses bad magic numbers,
 * truncated data, mismatched image/label counts and out-of-range labels with
 * ELAG_ERR_INPUT naming the file. Synthetic sets are for tests and quick runs.
 */
#ifndef ELAG_DATA_DATASET_H
#define ELAG_DATA_DATASET_H

#include "elag/elag.h"

#include <stdint.h>

typedef struct elag_dataset {
    long n;          /* examples */
    int features;    /* per example: channels * height * width */
    int channels, height, width; /* 1, 28, 28 for Fashion-MNIST; 1, 1, features otherwise */
    int classes;     /* labels are in [0, classes) */
    float *x;        /* (n, features) row-major, host */
    int32_t *y;      /* (n), host */
} elag_dataset;

/* Reads an IDX image file (magic 0x00000803, u8 pixels scaled to [0,1]) and an IDX
 * label file (magic 0x00000801), each gzip'd or not. limit > 0 keeps the first
 * `limit` examples. classes = 10. */
elag_status elag_idx_load(const char *images_path, const char *labels_path, long limit,
                          elag_dataset *out);

/* Where Debian's dataset-fashion-mnist installs the files. */
#define ELAG_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* Loads "<dir>/train-images-idx3-ubyte.gz" + labels (train = 1) or the t10k pair
 * (train = 0), trying the names without .gz too. dir NULL or "" means
 * ELAG_FASHION_MNIST_DIR. */
elag_status elag_fashion_mnist_load(const char *dir, int train, long limit, elag_dataset *out);

/* The user's own data (data.dataset: npy): "<dir>/train_x.npy" and "train_y.npy" (train =
 * 1) or the test_ pair; classes = 1 + the largest label of both label files. limit > 0
 * keeps the first `limit` examples. Bad files are ELAG_ERR_INPUT naming the file
 * (host/data/npy_dataset.c, docs/config.md "Your own data"). */
elag_status elag_npy_dataset_load(const char *dir, int train, long limit, elag_dataset *out);

/* A learnable synthetic set: class c has a random centre (Philox, seed) in `features`
 * dimensions; each example is its class centre plus Gaussian noise of std `noise`.
 * Labels cycle through the classes. `offset` shifts the example index so train and
 * test sets drawn from one seed are different examples of the same distribution. */
elag_status elag_synthetic_make(long n, int features, int classes, double noise, uint64_t seed,
                                long offset, elag_dataset *out);

/* x = (x - mean) / std in place. */
void elag_dataset_normalize(elag_dataset *d, float mean, float std);

/* Moves the last `count` examples of `d` into `out` (validation split); d->n shrinks. */
elag_status elag_dataset_split_tail(elag_dataset *d, long count, elag_dataset *out);

void elag_dataset_free(elag_dataset *d); /* frees x and y, zeroes *d; NULL safe */

#endif /* ELAG_DATA_DATASET_H */
