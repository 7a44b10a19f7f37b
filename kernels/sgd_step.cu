/*
 * Fused, masked SGD-momentum step (PyTorch semantics, L2 weight decay folded into the
 * gradient), one pass over w, g, v and the mask. Round-to-nearest intrinsics keep nvcc
 * from fusing products and sums into FMAs, so each operation rounds as the C reference
 * (float, same order) does: the step is bit-identical to the CPU for the same inputs.
 */
#include "elag_kernels.h"
#include "launch.cuh"

static __global__ void sgd_step_kernel(float *w, const float *g, float *v, const float *mask,
                                       size_t n, float lr, float momentum, float weight_decay,
                                       int nesterov)
{
    ELAG_GRID_LOOP(i, n)
    {
        float wi = w[i];
        float gi = __fadd_rn(g[i], __fmul_rn(weight_decay, wi));   /* g' = g + wd w */
        float vi = __fadd_rn(__fmul_rn(momentum, v[i]), gi);       /* v = mu v + g' */
        float upd = nesterov ? __fadd_rn(gi, __fmul_rn(momentum, vi)) : vi;
        wi = __fsub_rn(wi, __fmul_rn(lr, upd));                    /* w -= lr upd */
        if (mask != NULL && mask[i] == 0.0f) wi = vi = 0.0f; /* w *= mask, v *= mask */
        w[i] = wi;
        v[i] = vi;
    }
}

extern "C" cudaError_t elag_cuda_sgd_step(float *w, const float *g, float *v, const float *mask,
                                          size_t n, float lr, float momentum, float weight_decay,
                                          int nesterov, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    sgd_step_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(w, g, v, mask, n, lr, momentum,
                                                                 weight_decay, nesterov);
    return cudaGetLastError();
}
