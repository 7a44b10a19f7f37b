/*
 * Batch normalisation over x(C, L), channel c being the contiguous row c (L = N*H*W for
 * convolutions, N for features). Training: one block per channel computes the mean, then
 * the biased variance about it (two passes with the fixed tree of reduce.cuh:
 * deterministic, and no cancellation of E[x^2] - E[x]^2), then writes y and the saved and
 * running statistics. Backward: one block per channel forms dbeta and dgamma first, then
 * dx. A channel's row is only ever touched by its block, and each element only by the
 * one thread that reads it, so y may alias x and dx may alias dy.
 * The maths is the reference's (host/cpu/cpu_ref_layers.c): double throughout, from the
 * unrounded statistics, rounded to float once at the end; the round-to-nearest intrinsics
 * stop nvcc from fusing products and sums into FMAs, so each element is rounded as the C
 * expression is (only the order of the long sums differs).
 */
#include "elag_kernels.h"
#include "launch.cuh"
#include "reduce.cuh"

#include <math.h>

#define BN_GRID_Y_MAX  65535u /* the hardware limit of gridDim.y */
#define BN_EVAL_GRID_X 64u    /* blocks along a channel's row in eval */

/* ((x - mean) * invstd) * gamma + beta, rounded once to float. */
static __device__ __forceinline__ float bn_apply(float x, double mean, double invstd, double gm,
                                                 double bt)
{
    return (float)__dadd_rn(__dmul_rn(__dmul_rn(__dsub_rn((double)x, mean), invstd), gm), bt);
}

/* A fused ReLU on bn_apply's result: a NaN gives 0, as ELAG_EW_RELU. */
static __device__ __forceinline__ float bn_relu(float v, int relu)
{
    return relu ? (v > 0.0f ? v : 0.0f) : v;
}

/* (1 - momentum) * run + momentum * stat, as the reference rounds it. */
static __device__ __forceinline__ float bn_running(float run, double stat, float momentum)
{
    double mo = (double)momentum;
    return (float)__dadd_rn(__dmul_rn(1.0 - mo, (double)run), __dmul_rn(mo, stat));
}

/* Block b normalises channels b, b + gridDim.x, ...; L >= 1 and may exceed 2^31. */
static __global__ void batchnorm_train_kernel(float *y, const float *x, size_t C, size_t L,
                                              const float *gamma, const float *beta,
                                              float *run_mean, float *run_var, float momentum,
                                              float eps, float *save_mean, float *save_invstd,
                                              int relu)
{
    __shared__ double buf[ELAG_REDUCE_BLOCK];
    for (size_t c = blockIdx.x; c < C; c += gridDim.x) { /* uniform over the block */
        const float *xc = x + c * L;                     /* (L) */
        float *yc = y + c * L;                           /* (L) */
        double s = 0.0;
        for (size_t k = threadIdx.x; k < L; k += ELAG_REDUCE_BLOCK) s += xc[k];
        double mean = elag_block_sum(s, buf) / (double)L;
        double q = 0.0;
        for (size_t k = threadIdx.x; k < L; k += ELAG_REDUCE_BLOCK) {
            double d = (double)xc[k] - mean;
            q += d * d;
        }
        double var = elag_block_sum(q, buf) / (double)L; /* biased: y is normalised by it */
        double invstd = 1.0 / sqrt(var + (double)eps);
        double gm = gamma[c], bt = beta[c];
        for (size_t k = threadIdx.x; k < L; k += ELAG_REDUCE_BLOCK)
            yc[k] = bn_relu(bn_apply(xc[k], mean, invstd, gm, bt), relu);
        if (threadIdx.x == 0) {
            if (save_mean != NULL) save_mean[c] = (float)mean;
            if (save_invstd != NULL) save_invstd[c] = (float)invstd;
            /* PyTorch: the running variance is the unbiased one, var * L / (L - 1). */
            double unbiased = L > 1 ? var * (double)L / (double)(L - 1) : var;
            if (run_mean != NULL) run_mean[c] = bn_running(run_mean[c], mean, momentum);
            if (run_var != NULL) run_var[c] = bn_running(run_var[c], unbiased, momentum);
        }
    }
}

/* Eval: y = (x - run_mean) / sqrt(run_var + eps) * gamma + beta. Grid rows (y) own
 * channels, so each thread forms a channel's 1 / sqrt once; grid columns (x) split the
 * row. */
static __global__ void batchnorm_eval_kernel(float *y, const float *x, size_t C, size_t L,
                                             const float *gamma, const float *beta,
                                             const float *run_mean, const float *run_var, float eps,
                                             int relu)
{
    for (size_t c = blockIdx.y; c < C; c += gridDim.y) {
        double mean = run_mean[c], invstd = 1.0 / sqrt((double)run_var[c] + (double)eps);
        double gm = gamma[c], bt = beta[c];
        const float *xc = x + c * L; /* (L) */
        float *yc = y + c * L;       /* (L), may be xc */
        ELAG_GRID_LOOP(k, L) yc[k] = bn_relu(bn_apply(xc[k], mean, invstd, gm, bt), relu);
    }
}

/* dbeta = sum dy, dgamma = sum dy * xhat over the row (fixed tree), then
 * dx = gamma * invstd / L * (L dy - dbeta - xhat dgamma) per element from the unrounded
 * sums (L dy - dbeta cancels; float would lose what is left). */
static __global__ void batchnorm_backward_kernel(float *dx, float *dgamma, float *dbeta,
                                                 const float *dy, const float *x, size_t C,
                                                 size_t L, const float *gamma,
                                                 const float *save_mean, const float *save_invstd)
{
    __shared__ double buf[ELAG_REDUCE_BLOCK];
    for (size_t c = blockIdx.x; c < C; c += gridDim.x) { /* uniform over the block */
        const float *xc = x + c * L;                     /* (L) */
        const float *dyc = dy + c * L;                   /* (L) */
        float *dxc = dx + c * L;                         /* (L), may be dyc */
        double mean = save_mean[c], invstd = save_invstd[c];
        double s1 = 0.0, s2 = 0.0;
        for (size_t k = threadIdx.x; k < L; k += ELAG_REDUCE_BLOCK) {
            double g = dyc[k];
            s1 += g;
            s2 += g * __dmul_rn(__dsub_rn((double)xc[k], mean), invstd);
        }
        double db = elag_block_sum(s1, buf);
        double dg = elag_block_sum(s2, buf);
        if (threadIdx.x == 0) {
            dbeta[c] = (float)db;
            dgamma[c] = (float)dg;
        }
        /* Every dy of the row was read before the sums were complete: dx may overwrite dy. */
        double scale = L > 0 ? (double)gamma[c] * invstd / (double)L : 0.0, dl = (double)L;
        for (size_t k = threadIdx.x; k < L; k += ELAG_REDUCE_BLOCK) {
            double xhat = __dmul_rn(__dsub_rn((double)xc[k], mean), invstd);
            double t = __dsub_rn(__dsub_rn(__dmul_rn(dl, (double)dyc[k]), db), __dmul_rn(xhat, dg));
            dxc[k] = (float)__dmul_rn(scale, t);
        }
    }
}

extern "C" cudaError_t elag_cuda_batchnorm_forward(int flags, float *y, const float *x, int C,
                                                   int L, const float *gamma, const float *beta,
                                                   float *run_mean, float *run_var, float momentum,
                                                   float eps, float *save_mean, float *save_invstd,
                                                   cudaStream_t stream)
{
    /* L == 0: no samples, so no statistics and nothing to normalise (as the reference). */
    if (C <= 0 || L <= 0) return cudaSuccess;
    const int relu = (flags & 2) != 0; /* ELAG_BN_RELU (host/backend/backend.h) */
    if (flags & 1) {                   /* ELAG_BN_TRAINING */
        batchnorm_train_kernel<<<elag_grid_rows((size_t)C), ELAG_REDUCE_BLOCK, 0, stream>>>(
            y, x, (size_t)C, (size_t)L, gamma, beta, run_mean, run_var, momentum, eps, save_mean,
            save_invstd, relu);
    } else {
        unsigned gx = elag_grid_for((size_t)L);
        dim3 grid(gx > BN_EVAL_GRID_X ? BN_EVAL_GRID_X : gx,
                  (unsigned)C > BN_GRID_Y_MAX ? BN_GRID_Y_MAX : (unsigned)C);
        batchnorm_eval_kernel<<<grid, ELAG_BLOCK, 0, stream>>>(y, x, (size_t)C, (size_t)L, gamma,
                                                               beta, run_mean, run_var, eps, relu);
    }
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_batchnorm_backward(float *dx, float *dgamma, float *dbeta,
                                                    const float *dy, const float *x, int C, int L,
                                                    const float *gamma, const float *save_mean,
                                                    const float *save_invstd, cudaStream_t stream)
{
    if (C <= 0) return cudaSuccess;
    size_t l = L > 0 ? (size_t)L : 0; /* L == 0: dbeta = dgamma = 0, no dx */
    batchnorm_backward_kernel<<<elag_grid_rows((size_t)C), ELAG_REDUCE_BLOCK, 0, stream>>>(
        dx, dgamma, dbeta, dy, x, (size_t)C, l, gamma, save_mean, save_invstd);
    return cudaGetLastError();
}
