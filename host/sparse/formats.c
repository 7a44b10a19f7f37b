/*
 * Host-side sparse formats (sparse.h): dense <-> CSR and dense <-> Blocked-ELL
 * conversions, invariant checks and sizes. Everything that reads a sparse matrix
 * from outside (an export file, a caller) goes through elag_sparse_validate first, so
 * the kernels (host/cpu/cpu_sparse.c, the CUDA backend) may trust the arrays.
 */
#include "sparse/sparse.h"

#include "core/check.h"

#include <stdlib.h>
#include <string.h>

const char *elag_sparse_format_name(elag_sparse_format f)
{
    switch (f) {
    case ELAG_SPARSE_FORMAT_DENSE: return "dense";
    case ELAG_SPARSE_FORMAT_CSR: return "csr";
    case ELAG_SPARSE_FORMAT_BELL: return "bell";
    }
    return "unknown";
}

void elag_sparse_host_free(elag_sparse_host *a)
{
    if (!a) return;
    free(a->dense);
    free(a->indptr);
    free(a->indices);
    free(a->values);
    free(a->col_ind);
    memset(a, 0, sizeof *a);
}

static void *alloc_zeroed(size_t count, size_t elem)
{
    return calloc(count ? count : 1, elem);
}

static elag_status from_dense_csr(const float *w, int rows, int cols, elag_sparse_host *out)
{
    int64_t nnz = 0;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) nnz += w[i] != 0.0f;
    if (nnz > INT32_MAX)
        return elag_fail(ELAG_ERR_UNSUPPORTED, "csr: %lld nonzeros do not fit 32-bit indices",
                         (long long)nnz);
    out->nnz = nnz;
    out->indptr = alloc_zeroed((size_t)rows + 1, sizeof *out->indptr); /* (rows + 1) */
    out->indices = alloc_zeroed((size_t)nnz, sizeof *out->indices);    /* (nnz) */
    out->values = alloc_zeroed((size_t)nnz, sizeof *out->values);      /* (nnz) */
    if (!out->indptr || !out->indices || !out->values)
        return elag_fail(ELAG_ERR_NOMEM, "csr: out of host memory (%lld nonzeros)",
                         (long long)nnz);
    int32_t at = 0;
    for (int r = 0; r < rows; r++) {
        const float *wr = w + (size_t)r * cols; /* (cols) */
        for (int c = 0; c < cols; c++)
            if (wr[c] != 0.0f) {
                out->indices[at] = c;
                out->values[at] = wr[c];
                at++;
            }
        out->indptr[r + 1] = at;
    }
    return ELAG_OK;
}

/* Blocked-ELL: keep the blocks holding any nonzero, in ascending block column order,
 * pad every block row to the widest one with -1 and zero blocks. ell_cols is at least 1
 * (cuSPARSE wants a non-empty ELL width), so an all-zero matrix is all padding. */
static elag_status from_dense_bell(const float *w, int rows, int cols, int B,
                                   elag_sparse_host *out)
{
    int brows = (rows + B - 1) / B, bcols = (cols + B - 1) / B;
    unsigned char *live = alloc_zeroed((size_t)brows * (size_t)bcols, 1); /* (brows, bcols) */
    if (!live) return elag_fail(ELAG_ERR_NOMEM, "bell: out of host memory");
    int64_t nnz = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            if (w[(size_t)r * cols + c] != 0.0f) {
                live[(size_t)(r / B) * bcols + c / B] = 1;
                nnz++;
            }
    int ell = 1;
    for (int br = 0; br < brows; br++) {
        int count = 0;
        for (int bc = 0; bc < bcols; bc++) count += live[(size_t)br * bcols + bc];
        if (count > ell) ell = count;
    }
    out->block = B;
    out->block_rows = brows;
    out->ell_cols = ell;
    out->nnz = nnz;
    size_t vrows = (size_t)brows * B, vcols = (size_t)ell * B;
    out->col_ind = malloc((size_t)(brows ? brows : 1) * ell * sizeof *out->col_ind);
    out->values = alloc_zeroed(vrows * vcols, sizeof *out->values); /* (brows*B, ell*B) */
    if (!out->col_ind || !out->values) {
        free(live);
        return elag_fail(ELAG_ERR_NOMEM, "bell: out of host memory (%zu x %zu values)", vrows,
                         vcols);
    }
    for (int br = 0; br < brows; br++) {
        int e = 0;
        int32_t *ci = out->col_ind + (size_t)br * ell; /* (ell) */
        for (int bc = 0; bc < bcols; bc++) {
            if (!live[(size_t)br * bcols + bc]) continue;
            ci[e] = bc;
            for (int i = 0; i < B && br * B + i < rows; i++)
                for (int j = 0; j < B && bc * B + j < cols; j++)
                    out->values[((size_t)br * B + i) * vcols + (size_t)e * B + j] =
                        w[((size_t)br * B + i) * cols + (size_t)bc * B + j];
            e++;
        }
        for (; e < ell; e++) ci[e] = -1;
    }
    free(live);
    return ELAG_OK;
}

elag_status elag_sparse_from_dense(const float *w, int rows, int cols, elag_sparse_format format,
                                   int block, elag_sparse_host *out)
{
    memset(out, 0, sizeof *out);
    if (rows < 0 || cols < 0)
        return elag_fail(ELAG_ERR_USAGE, "sparse: bad shape %d x %d", rows, cols);
    out->format = format;
    out->rows = rows;
    out->cols = cols;
    elag_status st = ELAG_OK;
    switch (format) {
    case ELAG_SPARSE_FORMAT_DENSE: {
        size_t n = (size_t)rows * (size_t)cols;
        out->dense = alloc_zeroed(n, sizeof *out->dense); /* (rows, cols) */
        if (!out->dense) return elag_fail(ELAG_ERR_NOMEM, "dense: out of host memory");
        if (n) memcpy(out->dense, w, n * sizeof *w);
        for (size_t i = 0; i < n; i++) out->nnz += w[i] != 0.0f;
        return ELAG_OK;
    }
    case ELAG_SPARSE_FORMAT_CSR:
        st = from_dense_csr(w, rows, cols, out);
        break;
    case ELAG_SPARSE_FORMAT_BELL:
        if (block < 1 || block > 4096)
            return elag_fail(ELAG_ERR_USAGE, "bell: block size %d (must be 1..4096)", block);
        st = from_dense_bell(w, rows, cols, block, out);
        break;
    default:
        return elag_fail(ELAG_ERR_USAGE, "sparse: unknown format %d", (int)format);
    }
    if (st != ELAG_OK) elag_sparse_host_free(out);
    return st;
}

elag_status elag_sparse_to_dense(const elag_sparse_host *a, float *w)
{
    size_t n = (size_t)a->rows * (size_t)a->cols;
    switch (a->format) {
    case ELAG_SPARSE_FORMAT_DENSE:
        if (n) memcpy(w, a->dense, n * sizeof *w);
        return ELAG_OK;
    case ELAG_SPARSE_FORMAT_CSR:
        if (n) memset(w, 0, n * sizeof *w);
        for (int r = 0; r < a->rows; r++)
            for (int32_t p = a->indptr[r]; p < a->indptr[r + 1]; p++)
                w[(size_t)r * a->cols + a->indices[p]] = a->values[p];
        return ELAG_OK;
    case ELAG_SPARSE_FORMAT_BELL: {
        if (n) memset(w, 0, n * sizeof *w);
        int B = a->block;
        size_t vcols = (size_t)a->ell_cols * B;
        for (int br = 0; br < a->block_rows; br++)
            for (int e = 0; e < a->ell_cols; e++) {
                int32_t bc = a->col_ind[(size_t)br * a->ell_cols + e];
                if (bc < 0) continue;
                for (int i = 0; i < B && br * B + i < a->rows; i++)
                    for (int j = 0; j < B && bc * B + j < a->cols; j++)
                        w[((size_t)br * B + i) * a->cols + (size_t)bc * B + j] =
                            a->values[((size_t)br * B + i) * vcols + (size_t)e * B + j];
            }
        return ELAG_OK;
    }
    }
    return elag_fail(ELAG_ERR_USAGE, "sparse: unknown format %d", (int)a->format);
}

#define BAD(...) elag_fail(ELAG_ERR_INPUT, __VA_ARGS__)

static elag_status validate_csr(const elag_sparse_host *a, const char *what)
{
    if (a->nnz < 0 || a->nnz > INT32_MAX)
        return BAD("%s: csr nnz %lld out of range", what, (long long)a->nnz);
    if (!a->indptr || (a->nnz > 0 && (!a->indices || !a->values)))
        return BAD("%s: csr arrays missing", what);
    if (a->indptr[0] != 0) return BAD("%s: csr indptr[0] is %d, not 0", what, a->indptr[0]);
    for (int r = 0; r < a->rows; r++) {
        int32_t lo = a->indptr[r], hi = a->indptr[r + 1];
        if (hi < lo)
            return BAD("%s: csr indptr not monotone at row %d (%d then %d)", what, r, lo, hi);
        if (hi > a->nnz)
            return BAD("%s: csr indptr[%d] = %d exceeds nnz %lld", what, r + 1, hi,
                       (long long)a->nnz);
    }
    for (int r = 0; r < a->rows; r++)
        for (int32_t p = a->indptr[r]; p < a->indptr[r + 1]; p++) {
            int32_t c = a->indices[p];
            if (c < 0 || c >= a->cols)
                return BAD("%s: csr index %d at position %d (row %d) out of range [0, %d)", what,
                           c, p, r, a->cols);
            if (p > a->indptr[r] && c <= a->indices[p - 1])
                return BAD("%s: csr indices of row %d not strictly increasing at position %d",
                           what, r, p);
        }
    if (a->indptr[a->rows] != a->nnz)
        return BAD("%s: csr indptr[%d] = %d, expected nnz %lld", what, a->rows,
                   a->indptr[a->rows], (long long)a->nnz);
    return ELAG_OK;
}

static elag_status validate_bell(const elag_sparse_host *a, const char *what)
{
    int B = a->block;
    if (B < 1 || B > 4096) return BAD("%s: bell block size %d out of range", what, B);
    int brows = (a->rows + B - 1) / B, bcols = (a->cols + B - 1) / B;
    if (a->block_rows != brows)
        return BAD("%s: bell has %d block rows, %d rows at block %d need %d", what, a->block_rows,
                   a->rows, B, brows);
    if (a->ell_cols < 1 || (bcols > 0 && a->ell_cols > bcols))
        return BAD("%s: bell ell_cols %d out of range [1, %d]", what, a->ell_cols,
                   bcols > 0 ? bcols : 1);
    if (!a->col_ind || !a->values) return BAD("%s: bell arrays missing", what);
    size_t vcols = (size_t)a->ell_cols * B;
    for (int br = 0; br < brows; br++) {
        const int32_t *ci = a->col_ind + (size_t)br * a->ell_cols; /* (ell_cols) */
        int padding = 0;
        for (int e = 0; e < a->ell_cols; e++) {
            int32_t bc = ci[e];
            if (bc == -1) {
                padding = 1;
            } else if (bc < 0 || bc >= bcols) {
                return BAD("%s: bell block column %d at (%d, %d) out of range [0, %d) or -1",
                           what, bc, br, e, bcols);
            } else if (padding) {
                return BAD("%s: bell block row %d has a block after padding (-1)", what, br);
            } else if (e > 0 && bc <= ci[e - 1]) {
                return BAD("%s: bell block columns of block row %d not strictly increasing", what,
                           br);
            }
            /* padding blocks and the parts of blocks beyond the logical shape hold zeros,
             * so every kernel (own, cuSPARSE on padded operands) gives the same product */
            for (int i = 0; i < B; i++)
                for (int j = 0; j < B; j++) {
                    int outside = bc < 0 || br * B + i >= a->rows || bc * B + j >= a->cols;
                    float v = a->values[((size_t)br * B + i) * vcols + (size_t)e * B + j];
                    if (outside && v != 0.0f)
                        return BAD("%s: bell value %g in padding (block row %d, slot %d)", what,
                                   (double)v, br, e);
                }
        }
    }
    return ELAG_OK;
}

elag_status elag_sparse_validate(const elag_sparse_host *a, const char *what)
{
    if (!what) what = "sparse matrix";
    if (a->rows < 0 || a->cols < 0)
        return BAD("%s: bad shape %d x %d", what, a->rows, a->cols);
    switch (a->format) {
    case ELAG_SPARSE_FORMAT_DENSE:
        if (!a->dense && (size_t)a->rows * (size_t)a->cols > 0)
            return BAD("%s: dense values missing", what);
        return ELAG_OK;
    case ELAG_SPARSE_FORMAT_CSR:
        return validate_csr(a, what);
    case ELAG_SPARSE_FORMAT_BELL:
        return validate_bell(a, what);
    }
    return BAD("%s: unknown sparse format %d", what, (int)a->format);
}

int64_t elag_sparse_bytes(const elag_sparse_host *a)
{
    switch (a->format) {
    case ELAG_SPARSE_FORMAT_DENSE:
        return 4 * (int64_t)a->rows * a->cols;
    case ELAG_SPARSE_FORMAT_CSR:
        return 8 * a->nnz + 4 * ((int64_t)a->rows + 1);
    case ELAG_SPARSE_FORMAT_BELL: {
        int64_t blocks = (int64_t)a->block_rows * a->ell_cols;
        return 4 * blocks + 4 * blocks * a->block * a->block;
    }
    }
    return 0;
}
