/*
 * Sparse weight formats on the host, and the conversions between them and dense
 * (out, in) row-major weights:
 *   CSR          indptr (rows+1), indices (nnz), values (nnz); column indices sorted
 *                within each row. 8*nnz + 4*(rows+1) bytes.
 *   Blocked-ELL  cuSPARSE's layout: the matrix is cut into B x B blocks; every block
 *                row keeps the same number `ell_cols` of blocks (the widest block row's
 *                count), `col_ind` (block_rows, ell_cols) holds block column indices
 *                (-1 for padding) and `values` (block_rows*B, ell_cols*B) the blocks'
 *                entries, row-major. rows and cols are padded up to multiples of B.
 * Inference multiplies such a matrix by feature-major activations, x (cols, n) ->
 * y (rows, n), through the backend's sparse ops (backend.h), so each nonzero touches
 * one contiguous row of n batch entries.
 */
#ifndef ELAG_SPARSE_SPARSE_H
#define ELAG_SPARSE_SPARSE_H

#include "elag/elag.h"

#include <stdint.h>

typedef enum elag_sparse_format {
    ELAG_SPARSE_FORMAT_DENSE = 0,
    ELAG_SPARSE_FORMAT_CSR = 1,
    ELAG_SPARSE_FORMAT_BELL = 2
} elag_sparse_format;

/* A weight matrix in one format, in host memory (owns its arrays). */
typedef struct elag_sparse_host {
    elag_sparse_format format;
    int rows, cols;          /* logical (unpadded) shape */
    int64_t nnz;             /* stored nonzeros (CSR), or live entries (dense, BELL) */
    /* dense */
    float *dense;            /* (rows, cols) */
    /* CSR */
    int32_t *indptr;         /* (rows + 1) */
    int32_t *indices;        /* (nnz) */
    float *values;           /* (nnz) CSR values, or BELL values (block_rows*B, ell_cols*B) */
    /* Blocked-ELL */
    int block;               /* B */
    int block_rows;          /* ceil(rows / B) */
    int ell_cols;            /* blocks kept per block row */
    int32_t *col_ind;        /* (block_rows, ell_cols), -1 = padding */
} elag_sparse_host;

/* Conversions. `w` is (rows, cols) row-major; zeros are dropped (CSR) or blocks that are
 * all zero are dropped (BELL). */
elag_status elag_sparse_from_dense(const float *w, int rows, int cols, elag_sparse_format format,
                                   int block, elag_sparse_host *out);
/* Expands any format back to dense (rows, cols) row-major into `w`. */
elag_status elag_sparse_to_dense(const elag_sparse_host *a, float *w);
/* Checks every invariant of the arrays (indptr monotone from 0 to nnz, indices in range
 * and sorted, block indices in range or -1); ELAG_ERR_INPUT naming `what` otherwise. */
elag_status elag_sparse_validate(const elag_sparse_host *a, const char *what);
/* Bytes the arrays take (what a file stores for this matrix). */
int64_t elag_sparse_bytes(const elag_sparse_host *a);
void elag_sparse_host_free(elag_sparse_host *a); /* NULL safe; zeroes *a */

const char *elag_sparse_format_name(elag_sparse_format f); /* "dense", "csr", "bell" */

#endif /* ELAG_SPARSE_SPARSE_H */
