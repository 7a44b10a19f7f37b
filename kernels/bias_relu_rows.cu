/*
 * The epilogue of sparse inference in feature-major layout: y(rows, n)[r][:] += bias[r],
 * then ReLU. One row of y is one output feature over the batch, so the bias is a per-row
 * scalar. Two entry points: in place on y (the table's bias_relu_rows and the end of
 * sparse_mm when cuSPARSE wrote y itself), and from a separate source that cuSPARSE
 * wrote, either row-major with a padded row count (Blocked-ELL pads rows to whole blocks)
 * or column-major (the layout fallback of host/cuda/cuda_sparse.c), which this kernel
 * transposes through shared memory so both the reads and the writes are coalesced.
 * ReLU is a select (v > 0 ? v : 0) like the reference, so NaN and -0 map to +0.
 */
#include "elag_kernels.h"
#include "launch.cuh"

#define BRR_TILE 32 /* transpose tile: 32 x 32 floats, one warp per tile row */
#define BRR_ROWS 8  /* tile rows handled per pass by a (32, 8) block */
#define BRR_GRID_MAX 65535u

static __device__ __forceinline__ float brr_apply(float v, const float *bias, int r, int relu)
{
    if (bias != NULL) v += bias[r];
    return (relu && !(v > 0.0f)) ? 0.0f : v;
}

/* In place, or from a row-major source with row stride ld (ld >= n). Flat grid-stride loop
 * over rows * n; the row of element i is i / n. */
static __global__ void bias_relu_rows_kernel(float *y, const float *src, size_t ld,
                                             const float *bias, int n, size_t total, int relu)
{
    ELAG_GRID_LOOP(i, total)
    {
        size_t r = i / (size_t)n, j = i - r * (size_t)n;
        float v = src ? src[r * ld + j] : y[i];
        y[i] = brr_apply(v, bias, (int)r, relu);
    }
}

/* From a column-major source: element (r, j) at src[r + j * ld], ld >= rows. Block
 * (32, 8) moves one 32 x 32 tile: reads go down a column of src (consecutive r), writes
 * along a row of y (consecutive j). Grid-stride over tiles in both directions. */
static __global__ void bias_relu_rows_transpose_kernel(float *y, const float *src, size_t ld,
                                                       const float *bias, int rows, int n,
                                                       int relu)
{
    __shared__ float tile[BRR_TILE][BRR_TILE + 1]; /* +1: no bank conflicts on the transpose */
    for (int r0 = blockIdx.x * BRR_TILE; r0 < rows; r0 += gridDim.x * BRR_TILE) {
        for (int j0 = blockIdx.y * BRR_TILE; j0 < n; j0 += gridDim.y * BRR_TILE) {
            int r = r0 + threadIdx.x;
            for (int jj = threadIdx.y; jj < BRR_TILE; jj += BRR_ROWS) {
                int j = j0 + jj;
                if (r < rows && j < n) tile[jj][threadIdx.x] = src[(size_t)r + (size_t)j * ld];
            }
            __syncthreads();
            int j = j0 + threadIdx.x;
            for (int rr = threadIdx.y; rr < BRR_TILE; rr += BRR_ROWS) {
                int row = r0 + rr;
                if (row < rows && j < n)
                    y[(size_t)row * n + j] = brr_apply(tile[threadIdx.x][rr], bias, row, relu);
            }
            __syncthreads(); /* the tile is reused by the next (r0, j0) */
        }
    }
}

extern "C" cudaError_t elag_cuda_bias_relu_rows(float *y, const float *bias, int rows, int n,
                                                int relu, cudaStream_t stream)
{
    if (rows <= 0 || n <= 0 || (bias == NULL && !relu)) return cudaSuccess;
    size_t total = (size_t)rows * (size_t)n;
    bias_relu_rows_kernel<<<elag_grid_for(total), ELAG_BLOCK, 0, stream>>>(y, NULL, (size_t)n,
                                                                           bias, n, total, relu);
    return cudaGetLastError();
}

extern "C" cudaError_t elag_cuda_bias_relu_rows_from(float *y, const float *src, int src_col_major,
                                                     int ld, const float *bias, int rows, int n,
                                                     int relu, cudaStream_t stream)
{
    if (rows <= 0 || n <= 0) return cudaSuccess;
    if (!src_col_major) {
        size_t total = (size_t)rows * (size_t)n;
        bias_relu_rows_kernel<<<elag_grid_for(total), ELAG_BLOCK, 0, stream>>>(
            y, src, (size_t)ld, bias, n, total, relu);
        return cudaGetLastError();
    }
    unsigned gx = (unsigned)((rows + BRR_TILE - 1) / BRR_TILE);
    unsigned gy = (unsigned)((n + BRR_TILE - 1) / BRR_TILE);
    dim3 grid(gx > BRR_GRID_MAX ? BRR_GRID_MAX : gx, gy > BRR_GRID_MAX ? BRR_GRID_MAX : gy);
    dim3 block(BRR_TILE, BRR_ROWS);
    bias_relu_rows_transpose_kernel<<<grid, block, 0, stream>>>(y, src, (size_t)ld, bias, rows, n,
                                                                relu);
    return cudaGetLastError();
}
