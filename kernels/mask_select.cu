/*
 * Top-k selection for pruning, entirely on the device: mask[i] = 0 for exactly the k
 * entries with the smallest (score[i], i), ties broken by lower index.
 *
 * Scores map to order-preserving 32-bit keys (-0 == +0, every NaN above +inf: the order
 * of the CPU backends). Radix select finds T, the key of rank k-1, in 4 passes of 8 bits:
 * each pass builds a 256-bin histogram of the next digit among keys whose upper digits
 * match the prefix found so far, then one thread picks the digit holding the wanted rank.
 * The state (prefix, remaining rank) stays in device memory, so nothing waits on the host.
 * Afterwards `need` = rank + 1 keys equal to T must go, the lowest indices first: blocks
 * own contiguous chunks, count their equal keys, an exclusive scan (CUB) turns counts into
 * chunk offsets, and each block ranks its equal keys in index order with a block scan.
 * Memory traffic: 6 reads of the scores and one write of the mask; no sort.
 */
#include "elag_kernels.h"
#include "launch.cuh"

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_scan.cuh>

#include <limits.h>

#define SEL_BITS 8
#define SEL_BINS (1 << SEL_BITS)
#define SEL_PASSES (32 / SEL_BITS)
#define SEL_ITEMS 16                          /* tiles of ELAG_BLOCK per chunk */
#define SEL_CHUNK (ELAG_BLOCK * SEL_ITEMS)    /* elements per block in the last passes */
#define SEL_ALIGN 256

struct select_state {
    unsigned long long hist[SEL_BINS]; /* counts of the current digit among candidates */
    unsigned long long rank;           /* rank of the wanted key among the candidates */
    unsigned int prefix;               /* digits of T found so far */
    unsigned int fixed;                /* which key bits prefix holds */
};

static __device__ __forceinline__ unsigned int select_key(float s)
{
    unsigned int u = __float_as_uint(s);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0xffffffffu; /* NaN: above +inf */
    if ((u & 0x7fffffffu) == 0u) u = 0u;                      /* -0 -> +0 */
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static __global__ void mask_select_init_kernel(struct select_state *st, unsigned long long rank)
{
    for (int b = threadIdx.x; b < SEL_BINS; b += blockDim.x) st->hist[b] = 0;
    if (threadIdx.x == 0) {
        st->rank = rank;
        st->prefix = 0;
        st->fixed = 0;
    }
}

/* Histogram of digit (key >> shift) & 0xff over keys matching the prefix. Every lane of a
 * warp runs the same iterations, so equal digits of a warp are added once by a leader
 * (__match_any_sync): scores of pruned weights (-1) or zeros would otherwise all hit one
 * shared-memory bin. */
static __global__ void mask_select_hist_kernel(const float *score, size_t n,
                                               struct select_state *st, int shift)
{
    __shared__ unsigned int bins[SEL_BINS];
    for (int b = threadIdx.x; b < SEL_BINS; b += blockDim.x) bins[b] = 0;
    __syncthreads();
    const unsigned int prefix = st->prefix, fixed = st->fixed;
    const unsigned int lane = threadIdx.x % 32;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    for (size_t base = (size_t)blockIdx.x * blockDim.x; base < n; base += stride) {
        size_t i = base + threadIdx.x;
        unsigned int bin = SEL_BINS; /* "no bin" */
        if (i < n) {
            unsigned int key = select_key(score[i]);
            if ((key & fixed) == prefix) bin = (key >> shift) & (SEL_BINS - 1);
        }
        unsigned int peers = __match_any_sync(0xffffffffu, bin);
        if (bin < SEL_BINS && lane == (unsigned)(__ffs(peers) - 1))
            atomicAdd(&bins[bin], (unsigned int)__popc(peers));
    }
    __syncthreads();
    for (int b = threadIdx.x; b < SEL_BINS; b += blockDim.x)
        if (bins[b]) atomicAdd(&st->hist[b], (unsigned long long)bins[b]);
}

/* One block: finds the digit whose cumulative count passes the rank, narrows the prefix
 * and the rank to that digit, and clears the histogram for the next pass. */
static __global__ void mask_select_pick_kernel(struct select_state *st, int shift)
{
    if (threadIdx.x == 0) {
        unsigned long long rank = st->rank, below = 0;
        unsigned int digit = SEL_BINS - 1;
        for (unsigned int b = 0; b < SEL_BINS; b++) {
            unsigned long long h = st->hist[b];
            if (rank < below + h) {
                digit = b;
                break;
            }
            below += h;
        }
        st->rank = rank - below;
        st->prefix |= digit << shift;
        st->fixed |= (unsigned int)(SEL_BINS - 1) << shift;
    }
    __syncthreads();
    for (int b = threadIdx.x; b < SEL_BINS; b += blockDim.x) st->hist[b] = 0;
}

/* counts[b] = number of keys equal to T in chunk b. */
static __global__ void mask_select_count_kernel(const float *score, size_t n,
                                           const struct select_state *st,
                                           unsigned long long *counts)
{
    typedef cub::BlockReduce<unsigned int, ELAG_BLOCK> reduce_t;
    __shared__ typename reduce_t::TempStorage tmp;
    const unsigned int kth = st->prefix;
    const size_t start = (size_t)blockIdx.x * SEL_CHUNK;
    unsigned int c = 0;
    for (int t = 0; t < SEL_ITEMS; t++) {
        size_t i = start + (size_t)t * ELAG_BLOCK + threadIdx.x;
        if (i < n && select_key(score[i]) == kth) c++;
    }
    unsigned int total = reduce_t(tmp).Sum(c);
    if (threadIdx.x == 0) counts[blockIdx.x] = total;
}

/* Writes the mask of chunk b: keys below T pruned, above kept, equal ones pruned while
 * their index-order rank among all equal keys (chunk offset + rank in chunk) < need. */
static __global__ void mask_select_write_kernel(float *mask, const float *score, size_t n,
                                           const struct select_state *st,
                                           const unsigned long long *offsets)
{
    typedef cub::BlockScan<unsigned int, ELAG_BLOCK> scan_t;
    __shared__ typename scan_t::TempStorage tmp;
    const unsigned int kth = st->prefix;
    const unsigned long long need = st->rank + 1;
    const size_t start = (size_t)blockIdx.x * SEL_CHUNK;
    unsigned long long seen = offsets[blockIdx.x]; /* equal keys before this tile */
    for (int t = 0; t < SEL_ITEMS; t++) {
        size_t i = start + (size_t)t * ELAG_BLOCK + threadIdx.x;
        unsigned int key = i < n ? select_key(score[i]) : 0u;
        unsigned int eq = (i < n && key == kth) ? 1u : 0u, pos, tile_eq;
        scan_t(tmp).ExclusiveSum(eq, pos, tile_eq);
        if (i < n) {
            float keep;
            if (key != kth) keep = key > kth ? 1.0f : 0.0f;
            else keep = seen + pos < need ? 0.0f : 1.0f;
            mask[i] = keep;
        }
        seen += tile_eq;
        __syncthreads(); /* tmp is reused by the next tile's scan */
    }
}

/* Scratch layout: state | counts (chunks) | offsets (chunks) | CUB scan storage. */
static size_t select_round(size_t b) { return (b + SEL_ALIGN - 1) / SEL_ALIGN * SEL_ALIGN; }

static cudaError_t select_layout(size_t n, size_t *chunks, size_t *off_counts,
                                 size_t *off_offsets, size_t *off_cub, size_t *cub_bytes,
                                 size_t *total)
{
    *chunks = (n + SEL_CHUNK - 1) / SEL_CHUNK;
    if (*chunks == 0) *chunks = 1;
    if (*chunks > (size_t)INT_MAX) return cudaErrorInvalidValue;
    *cub_bytes = 0;
    cudaError_t e = cub::DeviceScan::ExclusiveSum(NULL, *cub_bytes, (unsigned long long *)NULL,
                                                  (unsigned long long *)NULL, (int)*chunks);
    if (e != cudaSuccess) return e;
    *off_counts = select_round(sizeof(struct select_state));
    *off_offsets = *off_counts + select_round(*chunks * sizeof(unsigned long long));
    *off_cub = *off_offsets + select_round(*chunks * sizeof(unsigned long long));
    *total = *off_cub + select_round(*cub_bytes ? *cub_bytes : 1);
    return cudaSuccess;
}

extern "C" cudaError_t elag_cuda_mask_select_scratch(size_t n, size_t *bytes_host)
{
    size_t chunks, oc, oo, ocub, cb;
    return select_layout(n, &chunks, &oc, &oo, &ocub, &cb, bytes_host);
}

extern "C" cudaError_t elag_cuda_mask_select(float *mask, const float *score, size_t n, size_t k,
                                             void *scratch, size_t scratch_bytes,
                                             cudaStream_t stream)
{
    if (n == 0) return cudaSuccess;
    if (k > n) return cudaErrorInvalidValue;
    if (k == 0) return elag_cuda_fill(mask, n, 1.0f, stream);
    if (k == n) return elag_cuda_fill(mask, n, 0.0f, stream);

    size_t chunks, off_counts, off_offsets, off_cub, cub_bytes, total;
    cudaError_t e = select_layout(n, &chunks, &off_counts, &off_offsets, &off_cub, &cub_bytes,
                                  &total);
    if (e != cudaSuccess) return e;
    if (scratch == NULL || scratch_bytes < total) return cudaErrorInvalidValue;
    char *base = (char *)scratch;
    struct select_state *st = (struct select_state *)base;
    unsigned long long *counts = (unsigned long long *)(base + off_counts);
    unsigned long long *offsets = (unsigned long long *)(base + off_offsets);

    mask_select_init_kernel<<<1, ELAG_BLOCK, 0, stream>>>(st, (unsigned long long)(k - 1));
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    for (int p = 0; p < SEL_PASSES; p++) {
        int shift = 32 - SEL_BITS * (p + 1); /* most significant digit first */
        mask_select_hist_kernel<<<elag_grid_for(n), ELAG_BLOCK, 0, stream>>>(score, n, st, shift);
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
        mask_select_pick_kernel<<<1, ELAG_BLOCK, 0, stream>>>(st, shift);
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
    }
    mask_select_count_kernel<<<(unsigned)chunks, ELAG_BLOCK, 0, stream>>>(score, n, st, counts);
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    e = cub::DeviceScan::ExclusiveSum(base + off_cub, cub_bytes, counts, offsets, (int)chunks,
                                      stream);
    if (e != cudaSuccess) return e;
    if ((e = cudaGetLastError()) != cudaSuccess) return e;
    mask_select_write_kernel<<<(unsigned)chunks, ELAG_BLOCK, 0, stream>>>(mask, score, n, st,
                                                                          offsets);
    return cudaGetLastError();
}
