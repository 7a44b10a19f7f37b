/*
 * Inverted dropout from the shared Philox generator (host/backend/philox.h), so a seed
 * drops the same entries on every backend: element i draws
 * u = elag_philox_uniform(seed, stream, offset + i) and is kept, scaled by 1 / (1 - p),
 * when u >= p. One Philox call yields the 4 words of one counter (global index / 4), so a
 * thread handles the (up to) 4 elements of one counter; with an offset that is not a
 * multiple of 4 the first and last counters are partly outside [offset, offset + n).
 */
#include "elag_kernels.h"
#include "launch.cuh"

#include "backend/philox.h"

/* The elements of counter group `grp` (global indices 4*grp .. 4*grp + 3) that lie in
 * [offset, offset + n): keep = u >= p ? scale : 0, y = keep == 0 ? +0 : x * keep (a select,
 * like the table's MUL, so a dropped entry is +0 even when x is not finite). Each element
 * is read before it is written by the same thread, so y may alias x. Host-callable so the
 * grouping can be checked against elag_philox_uniform without a GPU. */
static __host__ __device__ inline void dropout_group(float *y, float *keep, const float *x,
                                                     size_t n, float p, float scale, uint64_t seed,
                                                     uint64_t stream_id, uint64_t offset,
                                                     uint64_t grp)
{
    /* Same counter as elag_philox_u32(seed, stream_id, 4*grp + w). */
    elag_philox_ctr c;
    c.v[0] = (uint32_t)grp;
    c.v[1] = (uint32_t)(grp >> 32);
    c.v[2] = (uint32_t)stream_id;
    c.v[3] = (uint32_t)(stream_id >> 32);
    elag_philox_ctr r = elag_philox4x32_10(c, seed);
    for (unsigned w = 0; w < 4; w++) {
        uint64_t global = 4 * grp + w;
        if (global < offset) continue; /* before the first element: only in the first group */
        uint64_t i = global - offset;
        if (i >= n) break;
        float u = (float)(r.v[w] >> 8) * (1.0f / 16777216.0f); /* exact: 24 bits, power of 2 */
        float k = u >= p ? scale : 0.0f;
        keep[i] = k;
        y[i] = k == 0.0f ? 0.0f : x[i] * k; /* a lone product: nothing for nvcc to fuse */
    }
}

static __global__ void dropout_kernel(float *y, float *keep, const float *x, size_t n, float p,
                                      float scale, uint64_t seed, uint64_t stream_id,
                                      uint64_t offset, size_t groups)
{
    uint64_t first = offset >> 2; /* the counter group of element 0 */
    ELAG_GRID_LOOP(k, groups)
    {
        dropout_group(y, keep, x, n, p, scale, seed, stream_id, offset, first + k);
    }
}

extern "C" cudaError_t elag_cuda_dropout_forward(float *y, float *keep, const float *x, size_t n,
                                                 float p, uint64_t seed, uint64_t stream_id,
                                                 uint64_t offset, cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    float scale = 1.0f / (1.0f - p); /* rounded as the C expression is */
    /* Groups from the one holding `offset` to the one holding offset + n - 1. */
    size_t groups = (size_t)(((offset + n - 1) >> 2) - (offset >> 2) + 1);
    dropout_kernel<<<elag_grid_for(groups), ELAG_BLOCK, 0, stream>>>(y, keep, x, n, p, scale, seed,
                                                                     stream_id, offset, groups);
    return cudaGetLastError();
}
