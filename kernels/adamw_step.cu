/*
 * Fused, masked AdamW step (Loshchilov & Hutter, PyTorch semantics): decoupled decay,
 * moment updates, bias-corrected step, then the mask on w, m and v, in one pass.
 * Like the reference (host/cpu/cpu_ref.c) each element is computed in double and rounded
 * to float once at the end; the step is memory-bound, so double costs nothing here. The
 * scalars (decay factor, bias corrections) are computed once by the C host code with the
 * reference's expressions (C11 there: no contraction), and round-to-nearest intrinsics
 * stop nvcc contracting into FMAs, so the result is bit-identical to the reference for
 * the same inputs.
 */
#include "elag_kernels.h"
#include "launch.cuh"

static __global__ void adamw_step_kernel(float *w, const float *g, float *m, float *v,
                                         const float *mask, size_t n,
                                         struct elag_cuda_adamw_scalars s)
{
    const double lr = s.lr, beta1 = s.beta1, beta2 = s.beta2, eps = s.eps, decay = s.decay;
    const double one_m_b1 = s.one_minus_beta1, one_m_b2 = s.one_minus_beta2;
    const double bias1 = s.bias1, bias2 = s.bias2;
    ELAG_GRID_LOOP(i, n)
    {
        double gi = (double)g[i];
        double wi = __dmul_rn((double)w[i], decay); /* w *= 1 - lr wd */
        double mi = __dadd_rn(__dmul_rn(beta1, (double)m[i]), __dmul_rn(one_m_b1, gi));
        double vi = __dadd_rn(__dmul_rn(beta2, (double)v[i]),
                              __dmul_rn(__dmul_rn(one_m_b2, gi), gi)); /* (1-b2) g g */
        double step = __ddiv_rn(__dmul_rn(lr, __ddiv_rn(mi, bias1)),
                                __dadd_rn(__dsqrt_rn(__ddiv_rn(vi, bias2)), eps));
        wi = __dadd_rn(wi, -step); /* w -= lr (m/b1) / (sqrt(v/b2) + eps) */
        float wf = (float)wi, mf = (float)mi, vf = (float)vi;
        if (mask != NULL && mask[i] == 0.0f) wf = mf = vf = 0.0f; /* w, m, v *= mask */
        w[i] = wf;
        m[i] = mf;
        v[i] = vf;
    }
}

extern "C" cudaError_t elag_cuda_adamw_step(float *w, const float *g, float *m, float *v,
                                            const float *mask, size_t n,
                                            const struct elag_cuda_adamw_scalars *s,
                                            cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    adamw_step_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(w, g, m, v, mask, n, *s);
    return cudaGetLastError();
}
