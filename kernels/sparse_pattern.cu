/*
 * The small kernels of sparse training on CUDA (host/cuda/cuda_sparse_train.c): a mask's
 * CSR structure built on the device (kept entries counted per row, then compacted in
 * column order), values moved between a dense (rows, cols) tensor and CSR order, the
 * permutation that turns W's values into W^T's, and a plain SpMM and SDDMM used only
 * where cuSPARSE refuses the products (and by the tests, which check them on a GPU too).
 *
 * Rows are compacted one warp per row with a ballot, so the structure comes out in
 * increasing column order without sorting and the result does not depend on the grid.
 * Every reduction is one warp's shuffle tree in a fixed order: the same bits every run.
 */
#include "elag_kernels.h"
#include "launch.cuh"

#define WARP            32
#define WARPS_PER_BLOCK (ELAG_BLOCK / WARP)
#define FULL_MASK       0xffffffffu

/* Blocks for one warp per item over `items`, capped (the kernels loop over the rest). */
static inline unsigned warp_grid(size_t items)
{
    size_t blocks = (items + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
    return blocks > ELAG_GRID_MAX ? ELAG_GRID_MAX : (unsigned)(blocks ? blocks : 1);
}

/* This thread's warp index in the grid, and the number of warps in the grid. */
#define WARP_LOOP(w, n)                                                                            \
    for (size_t w = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / WARP; w < (n);               \
         w += (size_t)gridDim.x * blockDim.x / WARP)

static __global__ void pattern_count_kernel(const float *mask, int rows, int cols, int32_t *counts)
{
    const int lane = threadIdx.x % WARP;
    WARP_LOOP(r, (size_t)rows)
    {
        const float *mr = mask + r * (size_t)cols; /* (cols) */
        int c = 0;
        for (int j = lane; j < cols; j += WARP) c += mr[j] != 0.0f; /* NaN is kept */
        for (int off = WARP / 2; off > 0; off >>= 1) c += __shfl_down_sync(FULL_MASK, c, off);
        if (lane == 0) counts[r] = c;
    }
}

static __global__ void pattern_fill_kernel(const float *mask, int rows, int cols,
                                           const int32_t *indptr, int32_t *indices, int32_t *rowid)
{
    const int lane = threadIdx.x % WARP;
    const unsigned below = (1u << lane) - 1u; /* lanes before this one */
    WARP_LOOP(r, (size_t)rows)
    {
        const float *mr = mask + r * (size_t)cols; /* (cols) */
        int32_t at = indptr[r];
        /* the loop bound is the same for every lane, so the ballot sees the whole warp */
        for (int j0 = 0; j0 < cols; j0 += WARP) {
            const int j = j0 + lane;
            const int keep = j < cols && mr[j] != 0.0f;
            const unsigned ballot = __ballot_sync(FULL_MASK, keep);
            if (keep) {
                const int32_t q = at + __popc(ballot & below);
                indices[q] = j;
                rowid[q] = (int32_t)r;
            }
            at += __popc(ballot);
        }
    }
}

static __global__ void pattern_gather_kernel(float *vals, const float *dense, const int32_t *rowid,
                                             const int32_t *indices, int cols, size_t nnz)
{
    ELAG_GRID_LOOP(q, nnz) vals[q] = dense[(size_t)rowid[q] * (size_t)cols + indices[q]];
}

static __global__ void pattern_scatter_kernel(float *dense, const float *vals, const int32_t *rowid,
                                              const int32_t *indices, int cols, size_t nnz)
{
    ELAG_GRID_LOOP(q, nnz) dense[(size_t)rowid[q] * (size_t)cols + indices[q]] = vals[q];
}

static __global__ void pattern_permute_kernel(float *dst, const float *src, const int32_t *perm,
                                              size_t nnz)
{
    ELAG_GRID_LOOP(q, nnz) dst[q] = src[perm[q]];
}

static __global__ void pattern_sddmm_kernel(float *out, const float *dy, const float *x,
                                            const int32_t *rowid, const int32_t *indices, int n,
                                            size_t nnz)
{
    const int lane = threadIdx.x % WARP;
    WARP_LOOP(q, nnz)
    {
        const float *dr = dy + (size_t)rowid[q] * (size_t)n;  /* (n) */
        const float *xr = x + (size_t)indices[q] * (size_t)n; /* (n) */
        float s = 0.0f;
        for (int c = lane; c < n; c += WARP) s = fmaf(dr[c], xr[c], s);
        for (int off = WARP / 2; off > 0; off >>= 1) s += __shfl_down_sync(FULL_MASK, s, off);
        if (lane == 0) out[q] = s;
    }
}

static __global__ void pattern_spmm_kernel(float *y, const float *vals, const int32_t *indptr,
                                           const int32_t *indices, const float *x, int rows, int n)
{
    const int lane = threadIdx.x % WARP;
    WARP_LOOP(r, (size_t)rows)
    {
        float *yr = y + r * (size_t)n; /* (n) */
        const int32_t lo = indptr[r], hi = indptr[r + 1];
        for (int c = lane; c < n; c += WARP) {
            float s = 0.0f;
            for (int32_t q = lo; q < hi; q++) s = fmaf(vals[q], x[(size_t)indices[q] * n + c], s);
            yr[c] = s;
        }
    }
}

extern "C" cudaError_t elag_cuda_pattern_count(const float *mask, int rows, int cols,
                                               int32_t *counts, cudaStream_t stream)
{
    if (rows <= 0) return cudaSuccess;
    pattern_count_kernel<<<warp_grid((size_t)rows), ELAG_BLOCK, 0, stream>>>(mask, rows, cols,
                                                                             counts);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_pattern_fill(const float *mask, int rows, int cols,
                                              const int32_t *indptr, int32_t *indices,
                                              int32_t *rowid, cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    pattern_fill_kernel<<<warp_grid((size_t)rows), ELAG_BLOCK, 0, stream>>>(mask, rows, cols,
                                                                            indptr, indices, rowid);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_pattern_gather(float *vals, const float *dense,
                                                const int32_t *rowid, const int32_t *indices,
                                                int cols, size_t nnz, cudaStream_t stream)
{
    if (nnz == 0) return cudaSuccess;
    pattern_gather_kernel<<<elag_grid_for(nnz), ELAG_BLOCK, 0, stream>>>(vals, dense, rowid,
                                                                         indices, cols, nnz);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_pattern_scatter(float *dense, const float *vals,
                                                 const int32_t *rowid, const int32_t *indices,
                                                 int cols, size_t nnz, cudaStream_t stream)
{
    if (nnz == 0) return cudaSuccess;
    pattern_scatter_kernel<<<elag_grid_for(nnz), ELAG_BLOCK, 0, stream>>>(dense, vals, rowid,
                                                                          indices, cols, nnz);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_pattern_permute(float *dst, const float *src, const int32_t *perm,
                                                 size_t nnz, cudaStream_t stream)
{
    if (nnz == 0) return cudaSuccess;
    pattern_permute_kernel<<<elag_grid_for(nnz), ELAG_BLOCK, 0, stream>>>(dst, src, perm, nnz);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_pattern_sddmm(float *out, const float *dy, const float *x,
                                               const int32_t *rowid, const int32_t *indices, int n,
                                               size_t nnz, cudaStream_t stream)
{
    if (nnz == 0) return cudaSuccess;
    if (n <= 0) return cudaMemsetAsync(out, 0, nnz * sizeof *out, stream);
    pattern_sddmm_kernel<<<warp_grid(nnz), ELAG_BLOCK, 0, stream>>>(out, dy, x, rowid, indices, n,
                                                                    nnz);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_pattern_spmm(float *y, const float *vals, const int32_t *indptr,
                                              const int32_t *indices, const float *x, int rows,
                                              int n, cudaStream_t stream)
{
    if (rows <= 0 || n <= 0) return cudaSuccess;
    pattern_spmm_kernel<<<warp_grid((size_t)rows), ELAG_BLOCK, 0, stream>>>(y, vals, indptr,
                                                                            indices, x, rows, n);
    return cudaGetLastError();
}
