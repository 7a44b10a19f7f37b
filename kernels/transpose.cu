/*
 * Batched block transpose (layout changes between the sample-major data and the
 * feature-major activations, and the flatten of a conv stack):
 *   dst[((t*cols + j)*rows + i)*inner + e] = src[((t*rows + i)*cols + j)*inner + e].
 * inner == 1 is a plain batched matrix transpose, done through a shared-memory tile so
 * that both the reads and the writes are coalesced. inner > 1 moves whole runs of `inner`
 * contiguous floats, so a flat loop over dst already reads runs of src in order.
 */
#include "elag_kernels.h"
#include "launch.cuh"

#define TR_TILE     32 /* tile: 32 x 32 floats, one warp per tile row */
#define TR_ROWS     8  /* tile rows handled per pass by a (32, 8) block */
#define TR_GRID_MAX 65535u

/* The src index of dst element o (o < batch*rows*cols*inner). Host-callable so the index
 * maths can be checked without a GPU. */
static __host__ __device__ inline size_t transpose_src_index(size_t o, size_t rows, size_t cols,
                                                             size_t inner)
{
    size_t e = o % inner, q = o / inner; /* o = ((t*cols + j)*rows + i)*inner + e */
    size_t i = q % rows;
    q /= rows;
    size_t j = q % cols, t = q / cols;
    return ((t * rows + i) * cols + j) * inner + e;
}

static __global__ void transpose_flat_kernel(float *dst, const float *src, size_t total,
                                             size_t rows, size_t cols, size_t inner)
{
    ELAG_GRID_LOOP(o, total) dst[o] = src[transpose_src_index(o, rows, cols, inner)];
}

/* inner == 1. Block (32, 8) moves the 32 x 32 tile at (i0, j0) of matrix t: reads along a
 * row of src (consecutive j), writes along a row of dst (consecutive i). Grid-stride in
 * all three directions; every loop bound is uniform over the block, so the barriers are
 * reached by all its threads. */
static __global__ void transpose_tile_kernel(float *dst, const float *src, size_t batch,
                                             size_t rows, size_t cols)
{
    __shared__ float tile[TR_TILE][TR_TILE + 1]; /* +1: no bank conflicts on the transpose */
    for (size_t t = blockIdx.z; t < batch; t += gridDim.z) {
        const float *s = src + t * rows * cols; /* (rows, cols) */
        float *d = dst + t * rows * cols;       /* (cols, rows) */
        for (size_t i0 = (size_t)blockIdx.y * TR_TILE; i0 < rows; i0 += (size_t)gridDim.y * TR_TILE)
            for (size_t j0 = (size_t)blockIdx.x * TR_TILE; j0 < cols;
                 j0 += (size_t)gridDim.x * TR_TILE) {
                size_t j = j0 + threadIdx.x;
                for (unsigned ii = threadIdx.y; ii < TR_TILE; ii += TR_ROWS) {
                    size_t i = i0 + ii;
                    if (i < rows && j < cols) tile[ii][threadIdx.x] = s[i * cols + j];
                }
                __syncthreads();
                size_t i = i0 + threadIdx.x;
                for (unsigned jj = threadIdx.y; jj < TR_TILE; jj += TR_ROWS) {
                    size_t jw = j0 + jj; /* d[jw][i] = s[i][jw] = tile[i - i0][jj] */
                    if (i < rows && jw < cols) d[jw * rows + i] = tile[threadIdx.x][jj];
                }
                __syncthreads(); /* the tile is reused by the next (i0, j0) */
            }
    }
}

static unsigned tr_tiles(size_t n)
{
    size_t t = (n + TR_TILE - 1) / TR_TILE;
    return t > TR_GRID_MAX ? TR_GRID_MAX : (unsigned)t;
}

extern "C" cudaError_t elag_cuda_transpose(float *dst, const float *src, int batch, int rows,
                                           int cols, int inner, cudaStream_t stream)
{
    if (batch <= 0 || rows <= 0 || cols <= 0 || inner <= 0) return cudaSuccess;
    if (inner == 1) {
        unsigned gz = (unsigned)batch > TR_GRID_MAX ? TR_GRID_MAX : (unsigned)batch;
        dim3 grid(tr_tiles((size_t)cols), tr_tiles((size_t)rows), gz);
        dim3 block(TR_TILE, TR_ROWS);
        transpose_tile_kernel<<<grid, block, 0, stream>>>(dst, src, (size_t)batch, (size_t)rows,
                                                          (size_t)cols);
    } else {
        size_t total = (size_t)batch * (size_t)rows * (size_t)cols * (size_t)inner;
        transpose_flat_kernel<<<elag_grid_for(total), ELAG_BLOCK, 0, stream>>>(
            dst, src, total, (size_t)rows, (size_t)cols, (size_t)inner);
    }
    return cudaGetLastError();
}
