/*
 * elag public API: a trained, pruned network read from an export file (written by
 * `elag export RUN/model.safetensors --format csr|bell|dense|auto -o FILE`). The file
 * holds every weight in its format (dense, CSR or Blocked-ELL) and the config that built
 * it; opening it validates everything. Run it with elag/infer.h.
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

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_MODEL_H */
