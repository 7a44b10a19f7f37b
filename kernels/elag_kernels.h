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

#include <cuda_runtime_api.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- elementwise.cu ---- */
/* x(n) = v */
cudaError_t elag_cuda_fill(float *x, size_t n, float v, cudaStream_t stream);
/* y(n) = x > 0 ? x : 0; y may equal x. */
cudaError_t elag_cuda_relu_forward(float *y, const float *x, size_t n, cudaStream_t stream);
/* dx(n) = y > 0 ? dy : 0 (= dy * (y > 0) for finite dy); dx may equal dy. */
cudaError_t elag_cuda_relu_backward(float *dx, const float *dy, const float *y, size_t n,
                                    cudaStream_t stream);
/* x(n) *= mask(n), as a select: x[i] = +0 where mask[i] == 0. */
cudaError_t elag_cuda_mask_apply(float *x, const float *mask, size_t n, cudaStream_t stream);
/* score(n) = |w| where mask != 0 or mask is NULL, -1 where mask == 0. */
cudaError_t elag_cuda_score_magnitude(float *score, const float *w, const float *mask, size_t n,
                                      cudaStream_t stream);

/* ---- bias.cu ---- */
/* y(rows, cols) += bias(cols) broadcast over rows. */
cudaError_t elag_cuda_bias_add(float *y, const float *bias, int rows, int cols,
                               cudaStream_t stream);
/* db(cols) = sum over rows of dy(rows, cols) (overwrites db; rows == 0 gives zeros). */
cudaError_t elag_cuda_bias_grad(float *db, const float *dy, int rows, int cols,
                                cudaStream_t stream);

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
 * gives a NaN loss (not checked on the host: labels live on the device). */
cudaError_t elag_cuda_xent(const float *logits, const int32_t *labels, int rows, int cols,
                           float *dlogits, float *stats, cudaStream_t stream);

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

#ifdef __cplusplus
}
#endif

#endif /* ELAG_KERNELS_ELAG_KERNELS_H */
