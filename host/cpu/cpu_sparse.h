/*
 * Private to host/cpu/: the sparse inference ops of both CPU backends (backend.h,
 * "sparse inference"). cpu_sparse_ref.c holds what they share (the prepared matrix,
 * sparse_create / sparse_destroy) and the naive reference; cpu_sparse.c the fast
 * kernels: CSR SpMM vectorised across the batch (feature-major activations, so a
 * nonzero (r, j, v) does y[r][:] += v * x[j][:] on contiguous rows), a register-
 * blocked Blocked-ELL kernel, fused bias + ReLU, OpenMP over output rows balanced by
 * nonzeros. The instruction set (AVX-512, AVX2+FMA or portable C) is chosen at run
 * time per matrix; tests force each one the machine has against the reference.
 */
#ifndef ELAG_CPU_CPU_SPARSE_H
#define ELAG_CPU_CPU_SPARSE_H

#include "backend/backend.h"
#include "sparse/sparse.h"

#include <stdint.h>

typedef enum elag_cpu_isa {
    ELAG_CPU_ISA_PORTABLE = 0, /* plain C (`omp simd` loops) */
    ELAG_CPU_ISA_AVX2 = 1,     /* AVX2 + FMA intrinsics */
    ELAG_CPU_ISA_AVX512 = 2    /* AVX-512F intrinsics */
} elag_cpu_isa;

/* A matrix prepared by a CPU backend: a private copy of the host arrays plus the row
 * partition of the fast kernels. "Device" memory is host memory on the CPU. */
struct elag_sparse_dev {
    elag_sparse_head head;     /* logical shape, widest product: first (backend.h) */
    elag_sparse_format format; /* CSR or BELL */
    int64_t nnz;               /* stored entries (CSR) */
    int32_t *indptr;           /* CSR (rows + 1) */
    int32_t *indices;          /* CSR (nnz) */
    float *values;             /* CSR (nnz); BELL (block_rows*block, ell_cols*block) */
    int block, block_rows, ell_cols;
    int32_t *col_ind;          /* BELL (block_rows, ell_cols), -1 = padding at the end */
    int parts;                 /* fast path: thread shares (the backend's threads) */
    int *part_start;           /* (parts + 1) first output row of each share, rows at the end */
    elag_cpu_isa isa;          /* kernels used by sparse_mm (fast path) */
    /* fast CSR path: x is packed one tile of ELAG_SPMM_TILE batch columns at a time, and
     * the columns of A are cut into panels whose packed x fits L1 */
    int npanels;               /* 1, or ceil(cols / panel_cols) */
    int panel_cols;            /* columns of A (rows of x) per panel */
    int32_t *panel_ptr;        /* (rows, npanels + 1) CSR position where each panel starts */
    float *xpack;              /* (max_n / TILE, cols, TILE) 64-byte aligned, or NULL */
    /* fast BELL path: every block transposed, so the values of one block column for
     * consecutive rows are contiguous; ELAG_BELL_SLACK floats of zeros at the end */
    float *bell_t;             /* (block_rows, ell_cols, B (column j), B (row i)) */
};

#define ELAG_BELL_SLACK 16

/* Batch columns per packed tile of the fast CSR kernels (a multiple of 32): 128 floats
 * are 8 AVX-512 registers, one FMA chain each (tried 32, 64, 128: 128 was fastest). */
#ifndef ELAG_SPMM_TILE
#define ELAG_SPMM_TILE 128
#endif
/* Bytes of packed x one panel may take: most of a 48 KiB L1 data cache. */
#ifndef ELAG_SPMM_PANEL_BYTES
#define ELAG_SPMM_PANEL_BYTES 32768
#endif

/* Fast path (cpu_sparse.c): panels and packing workspace of a created matrix. */
elag_status elag_cpu_fast_sparse_prepare(elag_sparse_dev *a);

/* Shared by both CPU backends (cpu_sparse_ref.c): copies `a` (CSR or BELL, validated by
 * the wrapper elag_be_sparse_create) and, for the fast backend (b->kind == ELAG_DEVICE_CPU),
 * partitions the output rows over b->threads by nonzeros and picks the best instruction set. */
elag_status elag_cpu_sparse_create(elag_backend *b, const elag_sparse_host *a,
                                   const elag_sparse_opts *opts, elag_sparse_dev **out);
void elag_cpu_sparse_destroy(elag_backend *b, elag_sparse_dev *a);

/* Naive reference (cpu_sparse_ref.c): one output at a time, sums in double. */
elag_status elag_cpu_ref_sparse_mm(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                                   const float *bias, int relu, float *y);
int elag_cpu_ref_sparse_tile(elag_backend *b, const elag_sparse_dev *a);
elag_status elag_cpu_ref_sparse_mm_tiled(elag_backend *b, elag_sparse_dev *a, const float *x,
                                         int n, const float *bias, int relu, float *y);
elag_status elag_cpu_ref_sparse_chain_tiled(elag_backend *b, const elag_tiled_link *links,
                                            int nlinks, const float *x, float *xt, int n, int in,
                                            float *out);
elag_status elag_cpu_ref_bias_relu_rows(elag_backend *b, float *y, const float *bias, int rows,
                                        int n, int relu);

/* Fast path (cpu_sparse.c). */
elag_status elag_cpu_fast_sparse_mm(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                                    const float *bias, int relu, float *y);
/* sparse_tile / sparse_mm_tiled (backend.h): CSR in tiles of ELAG_SPMM_TILE columns. */
int elag_cpu_fast_sparse_tile(elag_backend *b, const elag_sparse_dev *a);
elag_status elag_cpu_fast_sparse_mm_tiled(elag_backend *b, elag_sparse_dev *a, const float *x,
                                          int n, const float *bias, int relu, float *y);
/* sparse_chain_tiled (backend.h): whole tiles per thread through the whole chain. */
elag_status elag_cpu_fast_sparse_chain_tiled(elag_backend *b, const elag_tiled_link *links,
                                             int nlinks, const float *x, float *xt, int n, int in,
                                             float *out);
elag_status elag_cpu_fast_bias_relu_rows(elag_backend *b, float *y, const float *bias, int rows,
                                         int n, int relu);

/* The best instruction set this CPU runs, and whether it runs `isa`. */
elag_cpu_isa elag_cpu_best_isa(void);
int elag_cpu_isa_supported(elag_cpu_isa isa);
const char *elag_cpu_isa_name(elag_cpu_isa isa);

/* Where panel q of row r starts in the CSR arrays (q = npanels: the row's end). */
static inline int32_t elag_cpu_panel_start(const elag_sparse_dev *a, int r, int q)
{
    if (a->npanels == 1) return q == 0 ? a->indptr[r] : a->indptr[r + 1];
    return a->panel_ptr[(size_t)r * (a->npanels + 1) + q];
}

/* Narrow batches (w < TILE columns, read unpacked: x is then already compact): how many
 * consecutive panels one pass takes, so that w columns of a pass's rows of x still fit
 * ELAG_SPMM_PANEL_BYTES (panels are sized for TILE columns). */
static inline int elag_cpu_narrow_group(const elag_sparse_dev *a, int w)
{
    if (a->npanels == 1 || w <= 0) return 1;
    int fit = ELAG_SPMM_PANEL_BYTES / (w * (int)sizeof(float)) / a->panel_cols;
    if (fit < 1) fit = 1;
    const double per_pass = (double)a->nnz / a->head.rows * fit * a->panel_cols / a->head.cols;
    /* x nearly fits L1 anyway and rows are sparse: passes cost more than they save */
    if ((double)a->head.cols * w * sizeof(float) <= 2.0 * ELAG_SPMM_PANEL_BYTES && per_pass < 64.0)
        return a->npanels;
    return fit;
}

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define ELAG_CPU_X86 1
/* x86 kernels (cpu_sparse_x86.c), run only when elag_cpu_isa_supported says so.
 * packed: CSR, one packed tile xp (cols, TILE) at batch column c0, output rows [r0, r1);
 * rows: unpacked, batch columns [c_begin, n) (CSR) or all of them (BELL). */
void elag_cpu_csr_packed_avx512(const elag_sparse_dev *a, const float *xp, int r0, int r1, int n,
                                int c0, const float *bias, int relu, float *y);
void elag_cpu_csr_rows_avx512(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                              int c_begin, const float *bias, int relu, float *y);
/* narrow: CSR, batch columns [c_begin, n) (fewer than TILE) unpacked, panel by panel */
void elag_cpu_csr_narrow_avx512(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                                int c_begin, const float *bias, int relu, float *y);
void elag_cpu_csr_narrow_avx2(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                              int c_begin, const float *bias, int relu, float *y);
void elag_cpu_bell_rows_avx512(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                               const float *bias, int relu, float *y);
void elag_cpu_csr_packed_avx2(const elag_sparse_dev *a, const float *xp, int r0, int r1, int n,
                              int c0, const float *bias, int relu, float *y);
void elag_cpu_csr_rows_avx2(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                            int c_begin, const float *bias, int relu, float *y);
void elag_cpu_bell_rows_avx2(const elag_sparse_dev *a, int r0, int r1, const float *x, int n,
                             const float *bias, int relu, float *y);
#else
#define ELAG_CPU_X86 0
#endif

#endif /* ELAG_CPU_CPU_SPARSE_H */
