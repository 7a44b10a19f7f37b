/*
 * Elementwise kernels of the CUDA backend: fill, ReLU forward and backward, mask
 * application and magnitude scores. Each is a grid-stride loop written as the reference
 * (host/cpu/cpu_ref.c) writes it, selects rather than products, so NaN, infinities and
 * -0 give the same bits as on the CPU.
 */
#include "elag_kernels.h"
#include "launch.cuh"

static __global__ void fill_kernel(float *x, size_t n, float v)
{
    ELAG_GRID_LOOP(i, n) x[i] = v;
}

static __global__ void relu_forward_kernel(float *y, const float *x, size_t n)
{
    ELAG_GRID_LOOP(i, n)
    {
        float xi = x[i];
        y[i] = xi > 0.0f ? xi : 0.0f;
    }
}

static __global__ void relu_backward_kernel(float *dx, const float *dy, const float *y, size_t n)
{
    ELAG_GRID_LOOP(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

static __global__ void mask_apply_kernel(float *x, const float *mask, size_t n)
{
    /* mask is 0 or 1: a pruned entry becomes +0 even when x was negative or not finite */
    ELAG_GRID_LOOP(i, n) if (mask[i] == 0.0f) x[i] = 0.0f;
}

static __global__ void score_magnitude_kernel(float *score, const float *w, const float *mask,
                                              size_t n)
{
    ELAG_GRID_LOOP(i, n) score[i] = (mask == NULL || mask[i] != 0.0f) ? fabsf(w[i]) : -1.0f;
}

extern "C" cudaError_t elag_cuda_fill(float *x, size_t n, float v, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    fill_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(x, n, v);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_relu_forward(float *y, const float *x, size_t n,
                                              cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    relu_forward_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(y, x, n);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_relu_backward(float *dx, const float *dy, const float *y,
                                               size_t n, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    relu_backward_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(dx, dy, y, n);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_mask_apply(float *x, const float *mask, size_t n,
                                            cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    mask_apply_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(x, mask, n);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_score_magnitude(float *score, const float *w, const float *mask,
                                                 size_t n, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    score_magnitude_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(score, w, mask, n);
    return cudaGetLastError();
}
