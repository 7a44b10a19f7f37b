/*
 * Thinning (`elag export --thin`): the inference graph of an export made physically
 * smaller by removing the output units (a linear layer's neurons, a conv2d layer's
 * filters) whose weight row is all zero, with the next weighted layer losing the matching
 * input columns, so that the smaller dense network computes the same logits.
 *
 * The rule. A unit u of a linear or conv2d layer P (after batch-norm folding) is
 * *constant* when its weight row is all zero: its output is its bias b_u (0 without a
 * bias) for every input, a constant map for a conv. The layers between P and the next
 * linear or conv2d layer Q (the chain: relu, batchnorm, maxpool, avgpool,
 * global_avgpool, flatten) carry it: relu and an unfolded batch norm map the value v
 * (v = relu(v), v = (v - mean) s + beta), max pooling keeps a constant map constant
 * (padding is dropped from a max), average pooling with padding makes it v times a
 * border profile common to every channel ("shaped"), flatten keeps it. At Q, u is
 * - removed when its value is 0;
 * - folded when its value v is nonzero, not shaped, and Q sees every position of it
 *   alike (Q linear, or conv2d without padding): Q.bias[r] += v * sum of Q's weights on
 *   u's columns (Q gains a bias if it had none), then removed;
 * - merged otherwise (Q a padded conv, or a shaped map): every such unit's weights in Q
 *   are added, scaled by v_u / v_k, to the columns of one of them, k (the largest |v|),
 *   which is kept: a constant input channel's contribution at a padded border depends on
 *   the position, but is the same multiple of its value for every channel;
 * - kept ("held") when a batch norm meets a shaped nonzero value, or max pooling a shaped
 *   negative one (neither is the common profile any more), or when P has no Q: the last weighted layer (the classes are never removed) and
 *   any layer whose chain holds another kind.
 * A layer keeps at least one unit. Q's rows are judged after its columns were cut, so a
 * unit of Q that only read removed units is constant in turn. Every step is exact but for
 * float rounding of the folded sums; `elag export --thin` checks the logits (api/export.c).
 */
#ifndef ELAG_SPARSE_THIN_H
#define ELAG_SPARSE_THIN_H

#include "backend/backend.h"
#include "sparse/export.h"

/* Thins e in place (every weight must be dense: thin before converting). e->thin then
 * holds one entry per linear or conv2d layer in graph order. ELAG_ERR_USAGE when a weight
 * is not dense or e was thinned already. */
elag_status elag_export_thin(elag_export *e);

/* logits (n, classes) of e run dense on `be` (every weight as a gemm of its dense
 * expansion) for the rows x (n, input_dim); host memory. `elag export --thin` compares
 * the masked model's logits with the thinned model's this way. */
elag_status elag_export_logits(const elag_export *e, elag_backend *be, const float *x, int n,
                               float *logits);

#endif /* ELAG_SPARSE_THIN_H */
