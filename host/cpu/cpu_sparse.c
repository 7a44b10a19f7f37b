/*
 * Fast sparse inference kernels of the "cpu" backend (cpu_sparse.h). Activations are
 * feature-major, x (cols, n) and y (rows, n) row-major, so one nonzero (r, j, v) of a
 * CSR matrix does y[r][:] += v * x[j][:] over contiguous memory: the batch is the
 * vector dimension.
 *
 * CSR: the batch is cut into tiles of ELAG_SPMM_TILE columns. Each tile of x is packed
 * into a contiguous (cols, TILE) buffer (x's own rows are n floats apart, which maps
 * them onto a few L1 sets), and A's columns are cut into panels whose packed x fits
 * L1 (widened for sparse rows, see prepare), so the random rows a row of A picks come
 * from L1, not L2. A tile of y's row
 * stays in registers while the row's nonzeros in a panel stream past, unrolled into
 * several accumulators to keep enough FMAs in flight; bias + ReLU are applied before
 * the last store. Columns past the last full tile (every column of a batch under TILE)
 * are read unpacked with masked loads (x's rows are then at most TILE floats apart, so
 * compact already), a row's columns in registers, panel group by panel group: as many
 * consecutive panels per pass as fit the same L1 budget at that width
 * (elag_cpu_narrow_group). A batch of one column is a gathered dot product per row.
 * Blocked-ELL: each stored block is a small dense product; up to 16 rows of a block
 * row share each load of x (a rows x 16-column register tile).
 * Threads take whole tiles when there are at least as many as threads, and split the output
 * rows by the partition sparse_create computed (CSR: equal nonzeros) for the rest. AVX-512 and AVX2 kernels are compiled with target attributes
 * (cpu_sparse_x86.c) and chosen at run time; the portable C kernels here run anywhere.
 */
#include "cpu/cpu_sparse.h"

#include "core/check.h"
#include "cpu/cpu_internal.h"

#include <stdlib.h>
#include <string.h>

#define TILE ELAG_SPMM_TILE
/* Products with fewer multiply-adds than this run on one thread. */
#define ELAG_SPARSE_PAR_MIN 65536.0
/* Matrices with at most this many nonzeros (1 MB of values and indices: one core's L2 on
 * the machine measured) give each thread whole tiles when there are enough; larger ones
 * split their rows, so each thread streams half of W per tile. Measured in session 5
 * (docs/sparse.md): whole tiles 15-40% faster on 300x784, 20% slower on the 2048x2048
 * training step at 90% (420k nonzeros). */
#define ELAG_SPARSE_TILE_SPLIT_NNZ 131072
/* Nonzeros per row and panel that panels are widened to (see prepare). */
#ifndef ELAG_PANEL_NNZ
#define ELAG_PANEL_NNZ 16.0
#endif

/* ---------------------------------------------------------------- dispatch ---- */

elag_cpu_isa elag_cpu_best_isa(void)
{
#if ELAG_CPU_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ELAG_CPU_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ELAG_CPU_ISA_AVX2;
#endif
    return ELAG_CPU_ISA_PORTABLE;
}

int elag_cpu_isa_supported(elag_cpu_isa isa)
{
    return isa >= ELAG_CPU_ISA_PORTABLE && isa <= elag_cpu_best_isa();
}

const char *elag_cpu_isa_name(elag_cpu_isa isa)
{
    switch (isa) {
    case ELAG_CPU_ISA_PORTABLE: return "portable";
    case ELAG_CPU_ISA_AVX2: return "avx2";
    case ELAG_CPU_ISA_AVX512: return "avx512";
    }
    return "unknown";
}

elag_status elag_cpu_fast_sparse_prepare(elag_sparse_dev *a)
{
    a->npanels = 1;
    a->panel_cols = a->head.cols;
    if (a->format == ELAG_SPARSE_FORMAT_BELL) {
        const int B = a->block;
        const size_t blocks = (size_t)a->block_rows * a->ell_cols, vcols = (size_t)a->ell_cols * B;
        a->bell_t = calloc(blocks * B * B + ELAG_BELL_SLACK, sizeof *a->bell_t);
        if (!a->bell_t) return elag_fail(ELAG_ERR_NOMEM, "sparse_create: out of host memory");
        for (size_t blk = 0; blk < blocks; blk++) {
            const size_t br = blk / a->ell_cols, e = blk % a->ell_cols;
            float *bt = a->bell_t + blk * B * B; /* (B, B): [j][i] */
            for (int i = 0; i < B; i++)
                for (int j = 0; j < B; j++)
                    bt[(size_t)j * B + i] = a->values[(br * B + i) * vcols + e * B + j];
        }
        return ELAG_OK;
    }
    /* panels serve the packed tiles and narrow batches; one column is a gathered dot product */
    if (a->head.max_n < 2 || a->head.cols == 0) return ELAG_OK;
    if (a->head.max_n >= TILE) {
        /* the packed batch: every full tile of the widest product, (max_n / TILE, cols, TILE) */
        size_t bytes = (size_t)(a->head.max_n / TILE) * a->head.cols * TILE * sizeof(float);
        a->xpack = aligned_alloc(64, bytes); /* a multiple of 64: TILE is a multiple of 32 */
        if (!a->xpack) return elag_fail(ELAG_ERR_NOMEM, "sparse_create: out of host memory");
    }
    /* Panels as wide as L1 holds, widened (doubling) until a row has ELAG_PANEL_NNZ
     * nonzeros in a panel on average: each row pays one load and store of its y tile per
     * panel, which sparse rows do not earn back (their x rows then come from L2). */
    const double per_col = a->head.rows ? (double)a->nnz / a->head.rows / a->head.cols : 0.0;
    int pcols = ELAG_SPMM_PANEL_BYTES / (TILE * (int)sizeof(float));
    while (pcols < a->head.cols && per_col * pcols < ELAG_PANEL_NNZ) pcols *= 2;
    if (pcols >= a->head.cols) return ELAG_OK;
    a->panel_cols = pcols;
    a->npanels = (a->head.cols + pcols - 1) / pcols;
    const int np = a->npanels;
    a->panel_ptr = malloc((size_t)a->head.rows * (np + 1) * sizeof *a->panel_ptr);
    if (!a->panel_ptr) return elag_fail(ELAG_ERR_NOMEM, "sparse_create: out of host memory");
    for (int r = 0; r < a->head.rows; r++) {
        int32_t *pp = a->panel_ptr + (size_t)r * (np + 1); /* (np + 1) */
        int32_t p = a->indptr[r];
        for (int q = 0; q < np; q++) {
            pp[q] = p;
            while (p < a->indptr[r + 1] && a->indices[p] < (q + 1) * pcols) p++;
        }
        pp[np] = a->indptr[r + 1];
    }
    return ELAG_OK;
}

/* ---------------------------------------------------------------- portable ---- */

/* yr[0..w) = acc + bv, then ReLU when relu: the fused epilogue of every portable kernel. */
static void store_row(float *yr, const float *acc, int w, float bv, int relu)
{
    for (int c = 0; c < w; c++) {
        float t = acc[c] + bv;
        yr[c] = relu && !(t > 0.0f) ? 0.0f : t;
    }
}

/* Packed CSR, rows [r0, r1) of one tile: y (rows, n) at column c0. */
static void csr_packed_portable(const elag_sparse_dev *a, const float *xp, int r0, int r1, int n,
                                int c0, const float *bias, int relu, float *y)
{
    float acc[TILE]; /* (TILE) the row's tile; xp is (cols, TILE) */
    for (int q = 0; q < a->npanels; q++)
        for (int r = r0; r < r1; r++) {
            float *yr = y + (size_t)r * n + c0; /* (TILE) */
            if (q == 0) memset(acc, 0, sizeof acc);
            else memcpy(acc, yr, sizeof acc);
            const int32_t lo = elag_cpu_panel_start(a, r, q);
            const int32_t hi = elag_cpu_panel_start(a, r, q + 1);
            for (int32_t p = lo; p < hi; p++) {
                const float v = a->values[p];
                const float *xr = xp + (size_t)a->indices[p] * TILE;
#pragma omp simd
                for (int c = 0; c < TILE; c++) acc[c] += v * xr[c];
            }
            const int last = q == a->npanels - 1;
            store_row(yr, acc, TILE, bias && last ? bias[r] : 0.0f, relu && last);
        }
}

/* Unpacked CSR, rows [r0, r1), columns [c_begin, n) read straight from x. */
static void csr_rows_portable(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                              int c_begin, const float *bias, int relu, float *y)
{
    float acc[TILE]; /* (w) */
    for (int c0 = c_begin; c0 < n; c0 += TILE) {
        const int w = n - c0 < TILE ? n - c0 : TILE;
        for (int r = r0; r < r1; r++) {
            memset(acc, 0, sizeof acc);
            for (int32_t p = a->indptr[r]; p < a->indptr[r + 1]; p++) {
                const float v = a->values[p];
                const float *xr = x + (size_t)a->indices[p] * n + c0; /* (w) */
#pragma omp simd
                for (int c = 0; c < w; c++) acc[c] += v * xr[c];
            }
            store_row(y + (size_t)r * n + c0, acc, w, bias ? bias[r] : 0.0f, relu);
        }
    }
}

static void bell_rows_portable(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                               const float *bias, int relu, float *y)
{
    const int B = a->block;
    const size_t vcols = (size_t)a->ell_cols * B;
    float acc[TILE]; /* (w) */
    for (int c0 = 0; c0 < n; c0 += TILE) {
        const int w = n - c0 < TILE ? n - c0 : TILE;
        for (int r = r0; r < r1; r++) {
            const int br = r / B;
            const float *vr = a->values + (size_t)r * vcols; /* (ell_cols * B) */
            memset(acc, 0, sizeof acc);
            for (int e = 0; e < a->ell_cols; e++) {
                const int32_t bc = a->col_ind[(size_t)br * a->ell_cols + e];
                if (bc < 0) break; /* padding only at the end (validated) */
                const int len = a->head.cols - bc * B < B ? a->head.cols - bc * B : B;
                for (int j = 0; j < len; j++) {
                    const float v = vr[(size_t)e * B + j];
                    const float *xr = x + ((size_t)bc * B + j) * n + c0; /* (w) */
#pragma omp simd
                    for (int c = 0; c < w; c++) acc[c] += v * xr[c];
                }
            }
            store_row(y + (size_t)r * n + c0, acc, w, bias ? bias[r] : 0.0f, relu);
        }
    }
}


/* ---------------------------------------------------------------- the ops ---- */

/* Packed CSR tile at column c0, output rows [r0, r1). */
static void packed_product(const elag_sparse_dev *a, const float *xp, int r0, int r1, int n, int c0,
                           const float *bias, int relu, float *y)
{
    switch (a->isa) {
#if ELAG_CPU_X86
    case ELAG_CPU_ISA_AVX512:
        elag_cpu_csr_packed_avx512(a, xp, r0, r1, n, c0, bias, relu, y);
        return;
    case ELAG_CPU_ISA_AVX2:
        elag_cpu_csr_packed_avx2(a, xp, r0, r1, n, c0, bias, relu, y);
        return;
#endif
    default: csr_packed_portable(a, xp, r0, r1, n, c0, bias, relu, y); return;
    }
}

/* Unpacked product, output rows [r0, r1), batch columns [c_begin, n) (CSR) or all (BELL). */
static void rows_product(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                         int c_begin, const float *bias, int relu, float *y)
{
    const int csr = a->format == ELAG_SPARSE_FORMAT_CSR;
    switch (a->isa) {
#if ELAG_CPU_X86
    case ELAG_CPU_ISA_AVX512:
        if (csr && n > 1) elag_cpu_csr_narrow_avx512(a, r0, r1, x, n, c_begin, bias, relu, y);
        else if (csr) elag_cpu_csr_rows_avx512(a, r0, r1, x, n, c_begin, bias, relu, y);
        else elag_cpu_bell_rows_avx512(a, r0, r1, x, n, bias, relu, y);
        return;
    case ELAG_CPU_ISA_AVX2:
        if (csr && n > 1) elag_cpu_csr_narrow_avx2(a, r0, r1, x, n, c_begin, bias, relu, y);
        else if (csr) elag_cpu_csr_rows_avx2(a, r0, r1, x, n, c_begin, bias, relu, y);
        else elag_cpu_bell_rows_avx2(a, r0, r1, x, n, bias, relu, y);
        return;
#endif
    default:
        if (csr) csr_rows_portable(a, r0, r1, x, n, c_begin, bias, relu, y);
        else bell_rows_portable(a, r0, r1, x, n, bias, relu, y);
        return;
    }
}

elag_status elag_cpu_fast_sparse_mm(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                                    const float *bias, int relu, float *y)
{
    (void)b;
    if (n == 0 || a->head.rows == 0) return ELAG_OK;
    double macs = a->format == ELAG_SPARSE_FORMAT_CSR
                      ? (double)a->nnz
                      : (double)a->block_rows * a->ell_cols * a->block * a->block;
    macs = (macs + a->head.rows) * n;
    const int parts = a->parts, cols = a->head.cols;
    /* full tiles go through the packed kernels; the rest of the batch is read unpacked */
    const int tiles = a->xpack ? n / TILE : 0;
    float *xp = a->xpack; /* (tiles, cols, TILE) */
    if (parts == 1 || macs < ELAG_SPARSE_PAR_MIN) { /* no OpenMP region: it costs microseconds */
        for (long tj = 0; tj < (long)tiles * cols; tj++)
            memcpy(xp + (size_t)tj * TILE, x + (size_t)(tj % cols) * n + (size_t)(tj / cols) * TILE,
                   TILE * sizeof *xp);
        for (int t = 0; t < tiles; t++)
            packed_product(a, xp + (size_t)t * cols * TILE, 0, a->head.rows, n, t * TILE, bias,
                           relu, y);
        if (tiles * TILE < n) rows_product(a, 0, a->head.rows, x, n, tiles * TILE, bias, relu, y);
        return ELAG_OK;
    }
    /* With at least one tile per thread, each thread packs whole tiles and runs them over
     * every row: a tile is packed by the thread that reads it, so nothing waits between
     * packing and products, and a product's short regions (conv2d's pattern products, chunk
     * by chunk) meet no barrier but the last. The tiles left over (fewer than the threads)
     * and the columns past the last tile split the rows, with one barrier after their
     * packing: with more threads than free cores, each barrier can wait for a descheduled
     * thread's whole time slice. Every output is the same kernel's either way. */
    const int whole =
        tiles >= parts && a->nnz <= ELAG_SPARSE_TILE_SPLIT_NNZ ? tiles / parts * parts : 0;
#pragma omp parallel num_threads(parts)
    {
        if (whole > 0) {
#pragma omp for schedule(static) nowait
            for (int t = 0; t < whole; t++) {
                float *xt = xp + (size_t)t * cols * TILE; /* (cols, TILE) */
                for (int j = 0; j < cols; j++)
                    memcpy(xt + (size_t)j * TILE, x + (size_t)j * n + (size_t)t * TILE,
                           TILE * sizeof *xp);
                packed_product(a, xt, 0, a->head.rows, n, t * TILE, bias, relu, y);
            }
        }
        if (tiles > whole) {
#pragma omp for schedule(static)
            for (long tj = (long)whole * cols; tj < (long)tiles * cols; tj++) {
                const long t = tj / cols, j = tj % cols;
                memcpy(xp + (size_t)tj * TILE, x + (size_t)j * n + (size_t)t * TILE,
                       TILE * sizeof *xp);
            }
        }
        if (tiles > whole || tiles * TILE < n) {
#pragma omp for schedule(static, 1)
            for (int p = 0; p < parts; p++) {
                const int r0 = a->part_start[p], r1 = a->part_start[p + 1];
                for (int t = whole; t < tiles; t++)
                    packed_product(a, xp + (size_t)t * cols * TILE, r0, r1, n, t * TILE, bias,
                                   relu, y);
                if (tiles * TILE < n) rows_product(a, r0, r1, x, n, tiles * TILE, bias, relu, y);
            }
        }
    }
    return ELAG_OK;
}

int elag_cpu_fast_sparse_tile(elag_backend *b, const elag_sparse_dev *a)
{
    (void)b;
    return a->format == ELAG_SPARSE_FORMAT_CSR ? TILE : 0;
}

/* The packed kernels straight on x's tiles, which are laid out as the pack would make them,
 * each writing its tile of y (rows, TILE); threads split the rows as in sparse_mm. */
elag_status elag_cpu_fast_sparse_mm_tiled(elag_backend *b, elag_sparse_dev *a, const float *x,
                                          int n, const float *bias, int relu, float *y)
{
    (void)b;
    if (n == 0 || a->head.rows == 0) return ELAG_OK;
    const int tiles = n / TILE, rows = a->head.rows, cols = a->head.cols, parts = a->parts;
    const double macs = ((double)a->nnz + rows) * n;
    if (parts == 1 || macs < ELAG_SPARSE_PAR_MIN) {
        for (int t = 0; t < tiles; t++)
            packed_product(a, x + (size_t)t * cols * TILE, 0, rows, TILE, 0, bias, relu,
                           y + (size_t)t * rows * TILE);
        return ELAG_OK;
    }
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int p = 0; p < parts; p++)
        for (int t = 0; t < tiles; t++)
            packed_product(a, x + (size_t)t * cols * TILE, a->part_start[p], a->part_start[p + 1],
                           TILE, 0, bias, relu, y + (size_t)t * rows * TILE);
    return ELAG_OK;
}

/* Tile t of a chain on the calling thread: its samples transposed into xt's tile, every
 * link's product over all rows of that tile, its logits transposed back into out. */
static void chain_tile(const elag_tiled_link *links, int nlinks, const float *x, float *xt, int in,
                       float *out, long t)
{
    float *xtt = xt + (size_t)t * in * TILE; /* (in, TILE) */
    elag_cpu_transpose_serial(xtt, x + (size_t)t * TILE * in, TILE, in);
    const float *xin = xtt;
    int rows = in;
    for (int i = 0; i < nlinks; i++) {
        const elag_tiled_link *k = &links[i];
        rows = k->a->head.rows;
        float *yt = k->y + (size_t)t * rows * TILE; /* (rows, TILE) */
        packed_product(k->a, xin, 0, rows, TILE, 0, k->bias, k->relu, yt);
        xin = yt;
    }
    elag_cpu_transpose_serial(out + (size_t)t * TILE * rows, xin, rows, TILE);
}

/* With at least as many tiles as threads (and no weight above ELAG_SPARSE_TILE_SPLIT_NNZ),
 * each thread runs whole tiles through the whole chain: no barrier between layers, and a tile's activations stay in its core's cache. The
 * tiles left over (fewer than the threads) run layer by layer with the rows split, as
 * sparse_mm_tiled. Either way every output is computed by the same kernel in the same
 * order, so the result does not depend on the number of threads. */
elag_status elag_cpu_fast_sparse_chain_tiled(elag_backend *b, const elag_tiled_link *links,
                                             int nlinks, const float *x, float *xt, int n, int in,
                                             float *out)
{
    const int tiles = n / TILE, th = b->threads;
    int64_t nnz = 0; /* the largest link's: a large weight splits its rows (sparse_mm) */
    for (int i = 0; i < nlinks; i++) nnz = links[i].a->nnz > nnz ? links[i].a->nnz : nnz;
    const int whole = th <= 1 ? tiles
                      : tiles >= th && nnz <= ELAG_SPARSE_TILE_SPLIT_NNZ ? tiles / th * th
                                                                          : 0;
    if (whole > 0) {
#pragma omp parallel for num_threads(th) if (th > 1) schedule(static)
        for (long t = 0; t < whole; t++) chain_tile(links, nlinks, x, xt, in, out, t);
    }
    if (whole == tiles) return ELAG_OK;
    const int left = tiles - whole;
    const size_t s0 = (size_t)whole * TILE; /* the first sample left */
    ELAG_TRY(elag_cpu_fast_transpose(b, xt + s0 * in, x + s0 * in, left, TILE, in, 1));
    const float *xin = xt + s0 * in;
    int rows = in;
    for (int i = 0; i < nlinks; i++) {
        rows = links[i].a->head.rows;
        float *y = links[i].y + s0 * rows;
        ELAG_TRY(elag_cpu_fast_sparse_mm_tiled(b, links[i].a, xin, left * TILE, links[i].bias,
                                               links[i].relu, y));
        xin = y;
    }
    return elag_cpu_fast_transpose(b, out + s0 * rows, xin, left, rows, TILE, 1);
}

elag_status elag_cpu_fast_bias_relu_rows(elag_backend *b, float *y, const float *bias, int rows,
                                         int n, int relu)
{
    if (!bias && !relu) return ELAG_OK;
    const double total = (double)rows * n;
#pragma omp parallel for num_threads(b->threads) if (total >= ELAG_CPU_PAR_MIN) schedule(static)
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t)r * n; /* (n) */
        const float bv = bias ? bias[r] : 0.0f;
        if (relu) {
#pragma omp simd
            for (int c = 0; c < n; c++) {
                float t = yr[c] + bv;
                yr[c] = t > 0.0f ? t : 0.0f;
            }
        } else {
#pragma omp simd
            for (int c = 0; c < n; c++) yr[c] += bv;
        }
    }
    return ELAG_OK;
}
