/*
 * Launchers of elag's own CUDA kernels, in plain C so host/cuda/ (compiled by gcc)
 * can call them. kernels/<op>.cu holds <op>_kernel and its launcher elag_cuda_<op>().
 *
 * Every pointer is device memory unless it says "host"; every matrix is row-major.
 * Every launcher only enqueues work on `stream` (nothing waits), checks the launch with
 * cudaGetLastError() and returns its cudaError_t, which host/cuda/ turns into an
 * elag_status with a message. Sizes of 0 launch nothing and return cudaSuccess.
 * The maths of each op is the contract in host/backend/backend.h.
 */
#ifndef ELAG_KERNELS_ELAG_KERNELS_H
#define ELAG_KERNELS_ELAG_KERNELS_H

#include "backend/backend.h" /* elag_ew_op, elag_pool_mode, elag_window */

#include <cuda_runtime_api.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise.cu ---- */
/* x(n) = v */
cudaError_t elag_cuda_fill(float *x, size_t n, float v, cudaStream_t stream);
/* y(n) = op(a(n), b(n), alpha) as elag_ew_op says (RELU and SCALE read a; RELU_BACKWARD and
 * MUL read a and b; AXPY reads y and a); y may alias a or b. An op outside elag_ew_op
 * launches nothing and returns cudaErrorInvalidValue. */
cudaError_t elag_cuda_elementwise(elag_ew_op op, size_t n, float *y, const float *a,
                                  const float *b, float alpha, cudaStream_t stream);
/* score(n) = |w| where mask != 0 or mask is NULL, -1 where mask == 0. */
cudaError_t elag_cuda_score_magnitude(float *score, const float *w, const float *mask, size_t n,
                                      cudaStream_t stream);

/* ---- row_sum.cu ---- */
/* out(rows) = sums of the rows of x(rows, cols), in double, one block per row (a fixed
 * reduction tree: the same bits every run); cols == 0 gives zeros. */
cudaError_t elag_cuda_row_sum(float *out, const float *x, int rows, int cols,
                              cudaStream_t stream);

/* ---- transpose.cu ---- */
/* dst[((t*cols + j)*rows + i)*inner + e] = src[((t*rows + i)*cols + j)*inner + e] for
 * t < batch, i < rows, j < cols, e < inner; dst and src (batch*rows*cols*inner each) do
 * not overlap. */
cudaError_t elag_cuda_transpose(float *dst, const float *src, int batch, int rows, int cols,
                                int inner, cudaStream_t stream);

/* ---- bias_relu_rows.cu ---- */
/* Feature-major epilogue, in place: y(rows, n)[r][j] += bias[r] when bias (rows) is not
 * NULL, then y = y > 0 ? y : 0 when relu. Nothing to do (no bias, no relu) launches nothing. */
cudaError_t elag_cuda_bias_relu_rows(float *y, const float *bias, int rows, int n, int relu,
                                     cudaStream_t stream);
/* The same epilogue reading from a separate buffer: y(rows, n)[r][j] = src(r, j) (+ bias[r])
 * (ReLU), where src is row-major with row stride ld >= n (src_col_major == 0) or
 * column-major with column stride ld >= rows (src_col_major != 0, transposed through
 * shared memory). src and y must not overlap. */
cudaError_t elag_cuda_bias_relu_rows_from(float *y, const float *src, int src_col_major, int ld,
                                          const float *bias, int rows, int n, int relu,
                                          cudaStream_t stream);

/* ---- xent.cu ---- */
/* Softmax cross-entropy, one warp per row, row maths in double. logits (rows, cols),
 * labels (rows) in [0, cols), dlogits (rows, cols) or NULL, stats (2): stats[0] += sum of
 * row losses, stats[1] += rows whose first maximum is the label. A label out of range
 * gives a NaN loss (not checked on the host: labels live on the device). The sums are
 * deterministic (no atomics): scratch is device memory of at least
 * elag_cuda_xent_scratch_bytes(rows) bytes, 8-byte aligned, for the per-block partials. */
size_t elag_cuda_xent_scratch_bytes(int rows);
cudaError_t elag_cuda_xent(const float *logits, const int32_t *labels, int rows, int cols,
                           float *dlogits, float *stats, void *scratch, cudaStream_t stream);

/* ---- gather.cu ---- */
/* dst(rows, cols) = src(?, cols)[idx[r]]; idx (rows) int32. */
cudaError_t elag_cuda_gather_rows(float *dst, const float *src, const int32_t *idx, int rows,
                                  int cols, cudaStream_t stream);
/* dst(rows) = src[idx[r]] */
cudaError_t elag_cuda_gather_i32(int32_t *dst, const int32_t *src, const int32_t *idx, int rows,
                                 cudaStream_t stream);

/* ---- init_uniform.cu ---- */
/* x[i] = lo + (hi - lo) * elag_philox_uniform(seed, stream_id, i), rounded exactly as the
 * C host code does (no FMA contraction): bit-identical to the CPU backends. */
cudaError_t elag_cuda_init_uniform(float *x, size_t n, float lo, float hi, uint64_t seed,
                                   uint64_t stream_id, cudaStream_t stream);

/* ---- sgd_step.cu ---- */
/* Fused SGD-momentum step (PyTorch semantics) on w, v (n), then w, v = 0 where mask == 0
 * when mask is not NULL; rounded like the reference (bit-identical). g (n) is read only. */
cudaError_t elag_cuda_sgd_step(float *w, const float *g, float *v, const float *mask, size_t n,
                               float lr, float momentum, float weight_decay, int nesterov,
                               cudaStream_t stream);

/* ---- adamw_step.cu ---- */
/* The scalars of one AdamW step, each computed by the caller (C host code) exactly as
 * the reference does, in double: decay = 1 - lr*wd, one_minus_beta = 1 - beta,
 * bias = 1 - beta^t. */
struct elag_cuda_adamw_scalars {
    double lr, beta1, beta2, eps, decay, one_minus_beta1, one_minus_beta2, bias1, bias2;
};
/* Fused AdamW step on w, m, v (n), then w, m, v = 0 where mask == 0 when mask is not NULL;
 * computed in double per element like the reference. s: host. */
cudaError_t elag_cuda_adamw_step(float *w, const float *g, float *m, float *v, const float *mask,
                                 size_t n, const struct elag_cuda_adamw_scalars *s,
                                 cudaStream_t stream);

/* ---- count_nonzero.cu ---- */
/* *count (device, one unsigned long long) = number of x[i] != 0 (NaN counts as nonzero). */
cudaError_t elag_cuda_count_nonzero(const float *x, size_t n, unsigned long long *count,
                                    cudaStream_t stream);

/* ---- mask_select.cu ---- */
/* Bytes of device scratch elag_cuda_mask_select needs for n scores (a pure function of n;
 * returns the CUB error if CUB cannot size its scan). */
cudaError_t elag_cuda_mask_select_scratch(size_t n, size_t *bytes_host);
/* mask[i] = 0 for exactly the k entries with the smallest (score[i], i), 1 for the others,
 * by radix selection on order-preserving keys (-0 == +0, NaN above +inf): no sort, nothing
 * copied to the host. scratch: device, `scratch_bytes` >= elag_cuda_mask_select_scratch(n),
 * 256-byte aligned. k <= n. */
cudaError_t elag_cuda_mask_select(float *mask, const float *score, size_t n, size_t k,
                                  void *scratch, size_t scratch_bytes, cudaStream_t stream);

/* ---- im2col.cu ---- (g: host, a resolved window; x and dx are (C, N, H, W)) */
/* col(C*kh*kw, nb*oh*ow) = the windows of samples [n0, n0 + nb) of x, 0 in the padding
 * (backend.h's im2col); col is overwritten. */
cudaError_t elag_cuda_im2col(float *col, const float *x, int C, int N, int n0, int nb,
                             const elag_window *g, cudaStream_t stream);
/* dx samples [n0, n0 + nb) += col(C*kh*kw, nb*oh*ow) put back where im2col read it, without
 * atomics (each dx entry gathers its col entries: deterministic). */
cudaError_t elag_cuda_col2im(float *dx, const float *col, int C, int N, int n0, int nb,
                             const elag_window *g, cudaStream_t stream);

/* ---- pool.cu ---- (g: host, a resolved window) */
/* y(planes, oh, ow) = max or average pooling of x(planes, H, W); for max, argmax (planes, oh,
 * ow) = h*W + w of the first maximum, -1 for a window entirely in the padding (y = 0
 * there); H*W must fit int32. For avg argmax is not written (may be NULL). */
cudaError_t elag_cuda_pool_forward(elag_pool_mode mode, float *y, int32_t *argmax,
                                   const float *x, int planes, const elag_window *g,
                                   cudaStream_t stream);
/* dx(planes, H, W) = the gradient of pool_forward for dy(planes, oh, ow), overwritten,
 * without atomics; argmax (planes, oh, ow) from the max forward pass, NULL for avg. */
cudaError_t elag_cuda_pool_backward(elag_pool_mode mode, float *dx, const float *dy,
                                    const int32_t *argmax, int planes, const elag_window *g,
                                    cudaStream_t stream);

/* ---- batchnorm.cu ---- */
/* Batch norm of x(C, L) by channel row (backend.h's batchnorm_forward), in double like the
 * reference; y (C, L) may alias x; gamma, beta, run_mean, run_var, save_mean, save_invstd
 * are (C). Training writes save_mean and save_invstd and updates the running buffers (each
 * skipped when NULL); eval reads run_mean and run_var. L == 0 does nothing. One block per
 * channel in training: the statistics are deterministic. */
cudaError_t elag_cuda_batchnorm_forward(int flags, float *y, const float *x, int C, int L,
                                        const float *gamma, const float *beta, float *run_mean,
                                        float *run_var, float momentum, float eps,
                                        float *save_mean, float *save_invstd,
                                        cudaStream_t stream);
/* dbeta(C), dgamma(C) (overwritten) and dx(C, L) (may alias dy) of training-mode batch norm,
 * from the save_mean and save_invstd (C) of the forward pass; one block per channel. */
cudaError_t elag_cuda_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy,
                                         const float *x, int C, int L, const float *gamma,
                                         const float *save_mean, const float *save_invstd,
                                         cudaStream_t stream);

/* ---- dropout.cu ---- */
/* keep(n) = u >= p ? 1 / (1 - p) : 0 with u = elag_philox_uniform(seed, stream_id,
 * offset + i), bit-identical to the CPU backends; y(n) = keep == 0 ? +0 : x * keep (y may
 * alias x). p in [0, 1). */
cudaError_t elag_cuda_dropout_forward(float *y, float *keep, const float *x, size_t n, float p,
                                      uint64_t seed, uint64_t stream_id, uint64_t offset,
                                      cudaStream_t stream);

/* ---- sparse_pattern.cu ---- (sparse training: host/cuda/cuda_sparse_train.c)
 * A pattern is the CSR structure of a mask (rows, cols): indptr (rows + 1), indices and
 * rowid (nnz: the column and the row of each kept entry, in CSR order). */
/* counts(rows) = kept entries (mask != 0; NaN is kept) of each row of mask(rows, cols). */
cudaError_t elag_cuda_pattern_count(const float *mask, int rows, int cols, int32_t *counts,
                                    cudaStream_t stream);
/* indices and rowid (nnz) of mask(rows, cols), given indptr (rows + 1) from the counts:
 * each row's kept entries in increasing column order. */
cudaError_t elag_cuda_pattern_fill(const float *mask, int rows, int cols, const int32_t *indptr,
                                   int32_t *indices, int32_t *rowid, cudaStream_t stream);
/* vals[q] = dense(?, cols)[rowid[q]][indices[q]] for q < nnz. */
cudaError_t elag_cuda_pattern_gather(float *vals, const float *dense, const int32_t *rowid,
                                     const int32_t *indices, int cols, size_t nnz,
                                     cudaStream_t stream);
/* dense(?, cols)[rowid[q]][indices[q]] = vals[q] for q < nnz; other entries untouched. */
cudaError_t elag_cuda_pattern_scatter(float *dense, const float *vals, const int32_t *rowid,
                                      const int32_t *indices, int cols, size_t nnz,
                                      cudaStream_t stream);
/* dst[q] = src[perm[q]] for q < nnz (W's values in W^T's CSR order); no overlap. */
cudaError_t elag_cuda_pattern_permute(float *dst, const float *src, const int32_t *perm,
                                      size_t nnz, cudaStream_t stream);
/* out[q] = sum over c < n of dy(?, n)[rowid[q]][c] * x(?, n)[indices[q]][c], one warp per
 * entry in a fixed order (n <= 0: zeros). The fallback where cuSPARSE's SDDMM refuses. */
cudaError_t elag_cuda_pattern_sddmm(float *out, const float *dy, const float *x,
                                    const int32_t *rowid, const int32_t *indices, int n,
                                    size_t nnz, cudaStream_t stream);
/* y(rows, n) = A x, A the CSR (indptr, indices, vals) with rows rows, x (?, n): one warp per
 * row, each output one sum in CSR order (empty rows give 0). The fallback where cuSPARSE's
 * SpMM refuses row-major operands. */
cudaError_t elag_cuda_pattern_spmm(float *y, const float *vals, const int32_t *indptr,
                                   const int32_t *indices, const float *x, int rows, int n,
                                   cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_KERNELS_ELAG_KERNELS_H */
