/*
 * elag public API: a trained, pruned network read from an export file (written by
 * `elag export RUN/model.safetensors --format csr|bell|dense|auto -o FILE`). The file
 * holds every weight in its format (dense, CSR or Blocked-ELL) and the config that built
 * it; opening it validates everything. Run it with elag/infer.h; make one from a
 * training checkpoint and write it with elag/export.h.
 */
#ifndef ELAG_INCLUDE_MODEL_H
#define ELAG_INCLUDE_MODEL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A network read from an export file (opaque, host memory). Free with elag_net_free. */
typedef struct elag_net elag_net_t;

/* Reads and validates the export at `path`. ELAG_ERR_IO when it cannot be read,
 * ELAG_ERR_INPUT when it is not a valid elag export (the message names the file and
 * what is wrong). The caller owns *out. */
elag_status elag_net_open(elag_net_t **out, const char *path);

void elag_net_free(elag_net_t *net); /* NULL does nothing */

/* Input features per sample (C*H*W for an image network): the row length of a batch. */
int elag_net_input_dim(const elag_net_t *net);

/* Logits per sample. */
int elag_net_classes(const elag_net_t *net);

/* Fraction of the prunable weights that are zero (0 when there are none). `params` and
 * `nonzero` (each may be NULL) receive the prunable weights and the nonzero ones. */
double elag_net_sparsity(const elag_net_t *net, int64_t *params, int64_t *nonzero);

/* One weight (of a conv2d or linear layer) of a network, as elag_net_weight (and
 * elag/train.h's evaluation of a checkpoint) describe it. */
typedef struct elag_weight_info {
    char layer[64];   /* the name of the layer that owns it */
    int ndim;         /* 2 (linear) or 4 (conv2d) */
    int64_t shape[4]; /* its own shape: (out, in) or (out, C, kh, kw) */
    int rows, cols;   /* as a matrix: out x everything else */
    int64_t params;   /* rows * cols */
    int64_t nonzero;  /* nonzero entries (an export's weight: the count its format stores) */
    char format[16];  /* "dense", "csr" or "bell:B" */
    int64_t bytes;    /* bytes of its arrays in that format */
} elag_weight_info;

/* Weights in graph order (the layers that have one). */
int elag_net_weight_count(const elag_net_t *net);

/* Describes weight i (0 <= i < elag_net_weight_count); ELAG_ERR_USAGE for another i. */
elag_status elag_net_weight(const elag_net_t *net, int i, elag_weight_info *out);

/* The weights' formats in graph order, comma-separated ("csr,csr,dense") into buf (len
 * bytes, cut to fit). */
void elag_net_formats(const elag_net_t *net, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_MODEL_H */
