/*
 * Uniform initialisation from the shared Philox generator (host/backend/philox.h),
 * bit-identical to the CPU backends: element i is lo + (hi - lo) * u(seed, stream, i).
 * One Philox call yields the 4 words of counter i / 4, so each thread fills 4 elements.
 * The arithmetic uses round-to-nearest intrinsics: nvcc would otherwise contract
 * lo + span * u into one FMA, whose single rounding differs from C's two.
 */
#include "elag_kernels.h"
#include "launch.cuh"

#include "backend/philox.h"

/* Fills x[4g .. 4g+3] (those below n). Host-callable too, so the grouping can be
 * checked against elag_philox_uniform without a GPU. */
static __host__ __device__ inline void init_uniform_group(float *x, size_t n, size_t g, float lo,
                                                          float span, uint64_t seed,
                                                          uint64_t stream_id)
{
    /* Same counter as elag_philox_u32(seed, stream_id, 4g + w): (g low, g high, stream). */
    elag_philox_ctr c;
    c.v[0] = (uint32_t)g;
    c.v[1] = (uint32_t)((uint64_t)g >> 32);
    c.v[2] = (uint32_t)stream_id;
    c.v[3] = (uint32_t)(stream_id >> 32);
    elag_philox_ctr r = elag_philox4x32_10(c, seed);
    for (int w = 0; w < 4; w++) {
        size_t i = 4 * g + (size_t)w;
        if (i >= n) break;
        float u = (float)(r.v[w] >> 8) * (1.0f / 16777216.0f); /* exact: 24 bits, power of 2 */
#ifdef __CUDA_ARCH__
        x[i] = __fadd_rn(lo, __fmul_rn(span, u));
#else
        x[i] = lo + span * u;
#endif
    }
}

static __global__ void init_uniform_kernel(float *x, size_t n, float lo, float span,
                                           uint64_t seed, uint64_t stream_id)
{
    size_t groups = (n + 3) / 4;
    ELAG_GRID_LOOP(g, groups) init_uniform_group(x, n, g, lo, span, seed, stream_id);
}

extern "C" cudaError_t elag_cuda_init_uniform(float *x, size_t n, float lo, float hi,
                                              uint64_t seed, uint64_t stream_id,
                                              cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    float span = hi - lo; /* rounded once, as in the C expression lo + (hi - lo) * u */
    size_t groups = (n + 3) / 4;
    init_uniform_kernel<<<elag_grid_for(groups), ELAG_BLOCK, 0, stream>>>(x, n, lo, span, seed,
                                                                         stream_id);
    return cudaGetLastError();
}

#ifdef ELAG_INIT_UNIFORM_SELFTEST
/* nvcc -DELAG_INIT_UNIFORM_SELFTEST -I host -I kernels kernels/init_uniform.cu: checks on
 * the host that the 4-per-thread grouping reproduces elag_philox_uniform element by element. */
#include <stdio.h>
#include <string.h>
int main(void)
{
    enum { N = 100003 };
    static float a[N], b[N];
    const uint64_t seeds[] = {0, 1, 42, 0xDEADBEEFCAFEull}, streams[] = {0, 0x1003, 1ull << 40};
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < 3; t++) {
            for (size_t g = 0; g < (N + 3) / 4; g++)
                init_uniform_group(a, N, g, -0.05f, 0.05f - -0.05f, seeds[s], streams[t]);
            for (size_t i = 0; i < N; i++)
                b[i] = -0.05f + (0.05f - -0.05f) * elag_philox_uniform(seeds[s], streams[t], i);
            if (memcmp(a, b, sizeof a) != 0) {
                printf("mismatch seed %d stream %d\n", s, t);
                return 1;
            }
        }
    printf("init_uniform grouping ok\n");
    return 0;
}
#endif
