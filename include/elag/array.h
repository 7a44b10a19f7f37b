/*
 * elag public API: the user's arrays in files, for inference on their own inputs
 * (`elag infer FILE --inputs X.npy --output LOGITS.npy`):
 *
 *     elag_array x = ELAG_ARRAY_INIT, y = ELAG_ARRAY_INIT;
 *     long n;
 *     elag_array_load(&x, "x.npy");                  (N, features) or (N, C, H, W)
 *     elag_net_check_inputs(net, &x, &n);            the shape the network takes?
 *     ... elag_infer_run(s, x.data, (int)n, logits) ...
 *     elag_array_save("logits.npy", &y);             (N, classes)
 *     elag_array_free(&x);
 *
 * Inputs are what the network's first layer sees: already normalised. A network trained
 * with data.normalize: true (the default for Fashion-MNIST) saw (x - data.mean) / data.std
 * of pixels scaled to [0, 1]; elag_net_normalization says which, so a caller can apply it.
 */
#ifndef ELAG_INCLUDE_ARRAY_H
#define ELAG_INCLUDE_ARRAY_H

#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ELAG_ARRAY_MAX_DIMS 8

/* A float32 array in host memory, C order (row-major). */
typedef struct elag_array {
    int ndim; /* 1..ELAG_ARRAY_MAX_DIMS */
    int64_t shape[ELAG_ARRAY_MAX_DIMS];
    float *data; /* product of shape floats; owned by the array
                  * when filled by elag_array_load */
} elag_array;

#define ELAG_ARRAY_INIT                                                                            \
    {                                                                                              \
        0, {0}, NULL                                                                               \
    }

/* Reads path into *out (its previous contents are not freed). A name ending in
 * ".safetensors" must hold exactly one tensor, of dtype F32; anything else is read as
 * .npy (versions 1.0-3.0, C order, dtype '<f4', or '<f8' rounded to float32; other
 * dtypes and Fortran order are refused: docs/config.md, "Your own data"). A bad file is
 * ELAG_ERR_INPUT naming the file and what is wrong. Free with elag_array_free. */
elag_status elag_array_load(elag_array *out, const char *path);

/* Writes a as a .npy file ('<f4', version 1.0), atomically. */
elag_status elag_array_save(const char *path, const elag_array *a);

void elag_array_free(elag_array *a); /* frees data and zeroes *a; NULL does nothing */

/* Checks that x is a batch the network takes and *n (may be NULL) receives its N: for a
 * network with spatial layers, (N, C, H, W) equal to its input shape, (N, H, W) when C is
 * 1, or (N, C*H*W); for one without (an MLP), any (N, ...) of input_dim values per sample,
 * since it flattens each sample in C order. ELAG_ERR_INPUT otherwise, naming both shapes
 * (`what` names x in the message, e.g. its file). */
elag_status elag_net_check_inputs(const elag_net_t *net, const elag_array *x, const char *what,
                                  long *n);

/* The network's per-sample input shape (C, H, W), as its training data had it: (1, 28, 28)
 * for Fashion-MNIST, (features, 1, 1) for flat data. */
void elag_net_input_shape(const elag_net_t *net, int shape[3]);

/* 1 when the network was trained on normalised inputs ((x - *mean) / *std: the data
 * config's data.normalize, data.mean and data.std), else 0 (mean 0, std 1). mean and std
 * may be NULL. */
int elag_net_normalization(const elag_net_t *net, double *mean, double *std);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_ARRAY_H */
