/*
 * Softmax cross-entropy with its gradient and accuracy count, one warp per row (rows
 * are batch samples; columns are classes, usually few). Each warp finds the row maximum
 * and its first index, then the log-sum-exp, the loss and optionally the gradient of the
 * mean loss, in double like the reference (host/cpu/cpu_ref.c).
 *
 * The sums are deterministic: no float atomics, whose order (and so whose rounding) changes
 * from run to run. Each block writes its rows' loss and hit count, summed over its warps in
 * a fixed order, to its own slot of a partials buffer; one block of a second kernel then
 * adds the partials in a fixed order (a strided share per thread, then elag_block_sum's
 * fixed tree) and adds the totals to stats once. Same input, same bits, every run.
 */
#include "elag_kernels.h"
#include "launch.cuh"
#include "reduce.cuh"

#include <math.h>

#define XENT_WARPS (ELAG_BLOCK / 32) /* rows per block */
#define FULL_MASK 0xffffffffu

/* (v, i) beats (bv, bi) when it is a larger value, or the same value at a lower index;
 * an index < 0 means "nothing yet". Each lane holds the first maximum of its columns, so
 * the merge gives the row's first maximum: the argmax rule of the reference. */
static __device__ __forceinline__ bool xent_better(float v, int i, float bv, int bi)
{
    if (i < 0) return false;
    if (bi < 0) return true;
    return v > bv || (v == bv && i < bi);
}

/* One block's partial sums: partials[2 b] = loss, partials[2 b + 1] = hits of block b. */
static __global__ void xent_kernel(const float *logits, const int32_t *labels, int rows,
                                   int cols, float *dlogits, double *partials)
{
    __shared__ double warp_loss[XENT_WARPS];
    __shared__ float warp_hit[XENT_WARPS];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int row = blockIdx.x * XENT_WARPS + warp;
    double loss = 0.0;
    float hit = 0.0f;

    if (row < rows) { /* uniform per warp, so the shuffles below see all 32 lanes */
        const float *x = logits + (size_t)row * cols; /* (cols) */
        float best = 0.0f;
        int arg = -1;
        for (int j = lane; j < cols; j += 32)
            if (xent_better(x[j], j, best, arg)) {
                best = x[j];
                arg = j;
            }
        for (int off = 16; off > 0; off >>= 1) {
            float ov = __shfl_xor_sync(FULL_MASK, best, off);
            int oi = __shfl_xor_sync(FULL_MASK, arg, off);
            if (xent_better(ov, oi, best, arg)) {
                best = ov;
                arg = oi;
            }
        }
        double mx = (double)best, sum = 0.0;
        for (int j = lane; j < cols; j += 32) sum += exp((double)x[j] - mx);
        for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(FULL_MASK, sum, off);

        int label = labels[row];
        if (label >= 0 && label < cols) {
            loss = mx + log(sum) - (double)x[label]; /* -log softmax(x)[label] */
            hit = arg == label ? 1.0f : 0.0f;
        } else {
            loss = NAN; /* the contract forbids it; make it visible rather than read out of row */
        }
        if (dlogits != NULL) {
            float *d = dlogits + (size_t)row * cols; /* (cols) */
            for (int j = lane; j < cols; j += 32) {
                double p = exp((double)x[j] - mx) / sum;
                d[j] = (float)((p - (j == label ? 1.0 : 0.0)) / rows);
            }
        }
    }
    if (lane == 0) {
        warp_loss[warp] = loss;
        warp_hit[warp] = hit;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double l = 0.0, h = 0.0;
        for (int w = 0; w < XENT_WARPS; w++) { /* fixed order */
            l += warp_loss[w];
            h += (double)warp_hit[w];
        }
        partials[2 * (size_t)blockIdx.x] = l;
        partials[2 * (size_t)blockIdx.x + 1] = h;
    }
}

/* stats[0] += sum of the n_blocks losses, stats[1] += their hits, in double and rounded
 * once (as the reference adds its double sums). One block of ELAG_REDUCE_BLOCK threads. */
static __global__ void xent_sum_kernel(const double *partials, unsigned n_blocks, float *stats)
{
    __shared__ double buf[ELAG_REDUCE_BLOCK];
    double l = 0.0, h = 0.0;
    for (unsigned b = threadIdx.x; b < n_blocks; b += ELAG_REDUCE_BLOCK) {
        l += partials[2 * (size_t)b];
        h += partials[2 * (size_t)b + 1];
    }
    l = elag_block_sum(l, buf);
    h = elag_block_sum(h, buf);
    if (threadIdx.x == 0) {
        stats[0] = (float)((double)stats[0] + l);
        stats[1] = (float)((double)stats[1] + h);
    }
}

static unsigned xent_blocks(int rows) { return (unsigned)((rows + XENT_WARPS - 1) / XENT_WARPS); }

extern "C" size_t elag_cuda_xent_scratch_bytes(int rows)
{
    return rows <= 0 ? 0 : 2 * sizeof(double) * (size_t)xent_blocks(rows);
}

extern "C" cudaError_t elag_cuda_xent(const float *logits, const int32_t *labels, int rows,
                                      int cols, float *dlogits, float *stats, void *scratch,
                                      cudaStream_t stream)
{
    if (rows <= 0 || cols <= 0) return cudaSuccess;
    unsigned grid = xent_blocks(rows);
    double *partials = (double *)scratch; /* (grid, 2) */
    xent_kernel<<<grid, ELAG_BLOCK, 0, stream>>>(logits, labels, rows, cols, dlogits, partials);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    xent_sum_kernel<<<1, ELAG_REDUCE_BLOCK, 0, stream>>>(partials, grid, stats);
    return cudaGetLastError();
}
