/*
 * Sparse inference on the CPU, the part both CPU backends share and the naive
 * reference (cpu-ref): preparing a matrix (validated private copy, row partition for
 * the fast kernels) and y = A x (+ bias) (ReLU) written one output at a time with
 * double sums, the specification the fast kernels in cpu_sparse.c are tested against.
 */
#include "cpu/cpu_sparse.h"

#include "core/check.h"
#include "cpu/cpu_internal.h"

#include <stdlib.h>
#include <string.h>

void elag_cpu_sparse_destroy(elag_backend *b, elag_sparse_dev *a)
{
    (void)b;
    if (!a) return;
    free(a->indptr);
    free(a->indices);
    free(a->values);
    free(a->col_ind);
    free(a->part_start);
    free(a->panel_ptr);
    free(a->xpack);
    free(a->bell_t);
    free(a);
}

/* malloc'd copy of `bytes` (at least 1 byte allocated); NULL when out of memory. */
static void *copy_of(const void *src, size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (p && bytes) memcpy(p, src, bytes);
    return p;
}

/* Output rows split into `parts` shares of about equal work. CSR: the work of a row is
 * its nonzeros plus a constant for the epilogue (an empty row still writes n outputs).
 * BELL: every block row costs the same, so shares are whole block rows, evenly. */
static void partition_rows(elag_sparse_dev *a)
{
    int parts = a->parts;
    a->part_start[0] = 0;
    if (a->format == ELAG_SPARSE_FORMAT_CSR) {
        const int64_t row_cost = 2;
        int64_t total = a->nnz + row_cost * a->head.rows, acc = 0;
        int r = 0;
        for (int t = 1; t < parts; t++) {
            int64_t goal = total * t / parts;
            while (r < a->head.rows && acc + (a->indptr[r + 1] - a->indptr[r]) + row_cost <= goal) {
                acc += (a->indptr[r + 1] - a->indptr[r]) + row_cost;
                r++;
            }
            a->part_start[t] = r;
        }
    } else {
        for (int t = 1; t < parts; t++) {
            long br = (long)a->block_rows * t / parts;
            long row = br * a->block;
            a->part_start[t] = row < a->head.rows ? (int)row : a->head.rows;
        }
    }
    a->part_start[parts] = a->head.rows;
}

elag_status elag_cpu_sparse_create(elag_backend *b, const elag_sparse_host *a,
                                   const elag_sparse_opts *opts, elag_sparse_dev **out)
{
    *out = NULL;
    elag_sparse_dev *d = calloc(1, sizeof *d);
    if (!d) return elag_fail(ELAG_ERR_NOMEM, "sparse_create: out of host memory");
    d->format = a->format;
    d->head.rows = a->rows;
    d->head.cols = a->cols;
    d->head.max_n = opts->max_n;
    d->nnz = a->nnz;
    d->parts = b->kind == ELAG_DEVICE_CPU && b->threads > 1 ? b->threads : 1;
    d->isa = b->kind == ELAG_DEVICE_CPU ? elag_cpu_best_isa() : ELAG_CPU_ISA_PORTABLE;
    int ok;
    if (a->format == ELAG_SPARSE_FORMAT_CSR) {
        d->indptr = copy_of(a->indptr, ((size_t)a->rows + 1) * sizeof *a->indptr);
        d->indices = copy_of(a->indices, (size_t)a->nnz * sizeof *a->indices);
        d->values = copy_of(a->values, (size_t)a->nnz * sizeof *a->values);
        ok = d->indptr && d->indices && d->values;
    } else {
        size_t blocks = (size_t)a->block_rows * (size_t)a->ell_cols;
        d->block = a->block;
        d->block_rows = a->block_rows;
        d->ell_cols = a->ell_cols;
        d->col_ind = copy_of(a->col_ind, blocks * sizeof *a->col_ind);
        d->values = copy_of(a->values, blocks * (size_t)a->block * a->block * sizeof *a->values);
        ok = d->col_ind && d->values;
    }
    d->part_start = malloc(((size_t)d->parts + 1) * sizeof *d->part_start);
    if (!ok || !d->part_start) {
        elag_cpu_sparse_destroy(b, d);
        return elag_fail(ELAG_ERR_NOMEM, "sparse_create: out of host memory");
    }
    partition_rows(d);
    d->npanels = 1;
    d->panel_cols = d->head.cols;
    if (b->kind == ELAG_DEVICE_CPU) {
        elag_status st = elag_cpu_fast_sparse_prepare(d);
        if (st != ELAG_OK) {
            elag_cpu_sparse_destroy(b, d);
            return st;
        }
    }
    *out = d;
    return ELAG_OK;
}

/* y[r][c] = A[r][:] . x[:][c] in double, for the CSR row r. */
static double ref_csr_dot(const elag_sparse_dev *a, int r, const float *x, int n, int c)
{
    double s = 0.0;
    for (int32_t p = a->indptr[r]; p < a->indptr[r + 1]; p++)
        s += (double)a->values[p] * (double)x[(size_t)a->indices[p] * n + c];
    return s;
}

/* The same for a Blocked-ELL row: every stored block's entries inside the logical shape. */
static double ref_bell_dot(const elag_sparse_dev *a, int r, const float *x, int n, int c)
{
    int B = a->block, br = r / B;
    size_t vcols = (size_t)a->ell_cols * B;
    double s = 0.0;
    for (int e = 0; e < a->ell_cols; e++) {
        int32_t bc = a->col_ind[(size_t)br * a->ell_cols + e];
        if (bc < 0) continue;
        for (int j = 0; j < B && bc * B + j < a->head.cols; j++)
            s += (double)a->values[(size_t)r * vcols + (size_t)e * B + j] *
                 (double)x[((size_t)bc * B + j) * n + c];
    }
    return s;
}

elag_status elag_cpu_ref_sparse_mm(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                                   const float *bias, int relu, float *y)
{
    (void)b;
    for (int r = 0; r < a->head.rows; r++)
        for (int c = 0; c < n; c++) {
            double s = a->format == ELAG_SPARSE_FORMAT_CSR ? ref_csr_dot(a, r, x, n, c)
                                                           : ref_bell_dot(a, r, x, n, c);
            if (bias) s += (double)bias[r];
            if (relu && !(s > 0.0)) s = 0.0;
            y[(size_t)r * n + c] = (float)s;
        }
    return ELAG_OK;
}

/* The reference's tiles are narrow, so tests see a tile width other than the fast one. */
#define ELAG_REF_TILE 8

int elag_cpu_ref_sparse_tile(elag_backend *b, const elag_sparse_dev *a)
{
    (void)b;
    (void)a;
    return ELAG_REF_TILE;
}

/* Each tile is a (cols, T) x and a (rows, T) y: sparse_mm's layout at n = T. */
elag_status elag_cpu_ref_sparse_mm_tiled(elag_backend *b, elag_sparse_dev *a, const float *x,
                                         int n, const float *bias, int relu, float *y)
{
    const size_t xs = (size_t)a->head.cols * ELAG_REF_TILE, ys = (size_t)a->head.rows * ELAG_REF_TILE;
    for (int t = 0; t < n / ELAG_REF_TILE; t++)
        ELAG_TRY(elag_cpu_ref_sparse_mm(b, a, x + t * xs, ELAG_REF_TILE, bias, relu, y + t * ys));
    return ELAG_OK;
}

/* The chain as its definition reads: the input transposed into tiles, each link's tiled
 * product, the last output transposed back. */
elag_status elag_cpu_ref_sparse_chain_tiled(elag_backend *b, const elag_tiled_link *links,
                                            int nlinks, const float *x, float *xt, int n, int in,
                                            float *out)
{
    ELAG_TRY(elag_cpu_ref_transpose(b, xt, x, n / ELAG_REF_TILE, ELAG_REF_TILE, in, 1));
    for (int i = 0; i < nlinks; i++)
        ELAG_TRY(elag_cpu_ref_sparse_mm_tiled(b, links[i].a, i ? links[i - 1].y : xt, n,
                                              links[i].bias, links[i].relu, links[i].y));
    const elag_tiled_link *last = &links[nlinks - 1];
    return elag_cpu_ref_transpose(b, out, last->y, n / ELAG_REF_TILE, last->a->head.rows,
                                  ELAG_REF_TILE, 1);
}

elag_status elag_cpu_ref_bias_relu_rows(elag_backend *b, float *y, const float *bias, int rows,
                                        int n, int relu)
{
    (void)b;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < n; c++) {
            float v = y[(size_t)r * n + c];
            if (bias) v += bias[r];
            if (relu && !(v > 0.0f)) v = 0.0f;
            y[(size_t)r * n + c] = v;
        }
    return ELAG_OK;
}
