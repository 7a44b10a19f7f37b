/*
 * Elementwise kernels of the CUDA backend: fill, the table's elementwise ops (ReLU and its
 * gradient, masked product, axpy, scale) and magnitude scores. Each is a grid-stride loop
 * written as the reference (host/cpu/cpu_ref.c) writes it: selects rather than products
 * where the contract says so, so NaN, infinities and -0 give the same bits as on the CPU,
 * and round-to-nearest intrinsics where nvcc would otherwise fuse a product and a sum
 * into one FMA (the host C code is compiled with -ffp-contract=off).
 */
#include "elag_kernels.h"
#include "launch.cuh"

static __global__ void fill_kernel(float *x, size_t n, float v)
{
    ELAG_GRID_LOOP(i, n) x[i] = v;
}

/* One instantiation per op, so the loop body has no per-element switch. Each element is
 * read before it is written by the same thread, so y may alias a or b. */
template <elag_ew_op OP>
static __global__ void elementwise_kernel(float *y, const float *a, const float *b, float alpha,
                                          size_t n)
{
    ELAG_GRID_LOOP(i, n)
    {
        float ai = a[i];
        float r;
        if (OP == ELAG_EW_RELU) {
            r = ai > 0.0f ? ai : 0.0f; /* NaN and -0 give +0 */
        } else if (OP == ELAG_EW_RELU_BACKWARD) {
            r = b[i] > 0.0f ? ai : 0.0f;
        } else if (OP == ELAG_EW_MUL) {
            float bi = b[i]; /* a pruned or dropped entry is +0 even where a is not finite */
            r = bi == 0.0f ? 0.0f : __fmul_rn(ai, bi);
        } else if (OP == ELAG_EW_AXPY) {
            r = __fadd_rn(y[i], __fmul_rn(alpha, ai)); /* two roundings, as in C */
        } else {
            r = __fmul_rn(alpha, ai); /* ELAG_EW_SCALE */
        }
        y[i] = r;
    }
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

extern "C" cudaError_t elag_cuda_elementwise(elag_ew_op op, size_t n, float *y, const float *a,
                                             const float *b, float alpha, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    unsigned grid = elag_grid_for(n);
    switch (op) {
    case ELAG_EW_RELU:
        elementwise_kernel<ELAG_EW_RELU><<<grid, ELAG_BLOCK, 0, stream>>>(y, a, b, alpha, n);
        break;
    case ELAG_EW_RELU_BACKWARD:
        elementwise_kernel<ELAG_EW_RELU_BACKWARD>
            <<<grid, ELAG_BLOCK, 0, stream>>>(y, a, b, alpha, n);
        break;
    case ELAG_EW_MUL:
        elementwise_kernel<ELAG_EW_MUL><<<grid, ELAG_BLOCK, 0, stream>>>(y, a, b, alpha, n);
        break;
    case ELAG_EW_AXPY:
        elementwise_kernel<ELAG_EW_AXPY><<<grid, ELAG_BLOCK, 0, stream>>>(y, a, b, alpha, n);
        break;
    case ELAG_EW_SCALE:
        elementwise_kernel<ELAG_EW_SCALE><<<grid, ELAG_BLOCK, 0, stream>>>(y, a, b, alpha, n);
        break;
    default: return cudaErrorInvalidValue; /* the host wrapper refuses it first, with a message */
    }
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_score_magnitude(float *score, const float *w, const float *mask,
                                                 size_t n, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    score_magnitude_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(score, w, mask, n);
    return cudaGetLastError();
}
