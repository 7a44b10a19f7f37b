/*
 * Sparse training ops of both CPU backends (cpu_sparse_train.h): the step of a linear layer
 * y = W x whose mask is fixed between updates. A pattern is built from the mask at a mask
 * update; the weights' values are set every step; products with W reuse the inference
 * kernels (cpu_sparse.c) and products with W^T run the same kernels on W^T's CSR, built
 * here once per pattern with the map t_src from W^T's entries to W's CSR order.
 *
 * cpu-ref (the specification) keeps W's CSR only and computes W^T x by scattering each
 * nonzero of W into double accumulators, and the SDDMM as one double dot product per kept
 * entry: nothing it does depends on the transpose or the map the fast path builds.
 * The fast path splits W's rows over threads by nonzeros (the partition sparse_create
 * made) for the SDDMM, gather and scatter; the SDDMM's dot products are AVX-512 or AVX2
 * kernels chosen at run time (cpu_sparse_train_x86.c), portable C elsewhere.
 */
#include "cpu/cpu_sparse_train.h"

#include "core/check.h"
#include "cpu/cpu_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Below this many kept entries, gather, scatter and values_set run on one thread. */
#define ELAG_PATTERN_PAR_MIN 65536

void elag_cpu_sparse_pattern_destroy(elag_backend *b, elag_sparse_pattern *p)
{
    if (!p) return;
    elag_cpu_sparse_destroy(b, p->w);
    elag_cpu_sparse_destroy(b, p->wt);
    free(p->t_src);
    free(p);
}

/* W^T's CSR (cols rows) from W's by a counting sort over columns; t_src[q] = W's position of
 * W^T's entry q. Rows of W^T come out with increasing column (W's row) indices. */
static void transpose_csr(const elag_sparse_host *h, int32_t *t_ptr, int32_t *t_idx, int32_t *t_src)
{
    memset(t_ptr, 0, ((size_t)h->cols + 1) * sizeof *t_ptr);
    for (int64_t q = 0; q < h->nnz; q++) t_ptr[h->indices[q] + 1]++;
    for (int j = 0; j < h->cols; j++) t_ptr[j + 1] += t_ptr[j];
    int32_t *next = malloc(((size_t)h->cols + 1) * sizeof *next);
    ELAG_ASSERT(next != NULL || h->cols == 0); /* small; the caller checked bigger ones */
    if (h->cols) memcpy(next, t_ptr, (size_t)h->cols * sizeof *next);
    for (int r = 0; r < h->rows; r++)
        for (int32_t q = h->indptr[r]; q < h->indptr[r + 1]; q++) {
            const int32_t at = next[h->indices[q]]++;
            t_idx[at] = r;
            t_src[at] = q;
        }
    free(next);
}

elag_status elag_cpu_sparse_pattern_create(elag_backend *b, const float *mask, int rows, int cols,
                                           int max_n, elag_sparse_pattern **out)
{
    *out = NULL;
    int64_t nnz = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++) nnz += mask[i] != 0.0f;
    if (nnz > INT32_MAX)
        return elag_fail(ELAG_ERR_UNSUPPORTED,
                         "sparse_pattern_create: %lld kept entries (CSR indices take < 2^31)",
                         (long long)nnz);
    elag_sparse_pattern *p = calloc(1, sizeof *p);
    elag_sparse_host h = {.format = ELAG_SPARSE_FORMAT_CSR, .rows = rows, .cols = cols, .nnz = nnz};
    h.indptr = malloc(((size_t)rows + 1) * sizeof *h.indptr);
    h.indices = malloc((size_t)(nnz ? nnz : 1) * sizeof *h.indices);
    h.values = calloc((size_t)(nnz ? nnz : 1), sizeof *h.values);
    elag_status st = ELAG_OK;
    if (!p || !h.indptr || !h.indices || !h.values) {
        st = elag_fail(ELAG_ERR_NOMEM, "sparse_pattern_create: out of host memory");
        goto done;
    }
    p->head = (elag_sparse_pattern_head){.rows = rows, .cols = cols, .max_n = max_n, .nnz = nnz};
    int32_t q = 0;
    h.indptr[0] = 0;
    for (int r = 0; r < rows; r++) {
        const float *mr = mask + (size_t)r * cols; /* (cols) */
        for (int j = 0; j < cols; j++)
            if (mr[j] != 0.0f) h.indices[q++] = j;
        h.indptr[r + 1] = q;
    }
    const elag_sparse_opts opts = {.max_n = max_n, .alg = 0};
    st = elag_cpu_sparse_create(b, &h, &opts, &p->w);
    if (st != ELAG_OK || b->kind != ELAG_DEVICE_CPU) goto done;
    /* the fast backend: W^T for the input gradient */
    elag_sparse_host t = {.format = ELAG_SPARSE_FORMAT_CSR,
                          .rows = cols,
                          .cols = rows,
                          .nnz = nnz,
                          .values = h.values};
    t.indptr = malloc(((size_t)cols + 1) * sizeof *t.indptr);
    t.indices = malloc((size_t)(nnz ? nnz : 1) * sizeof *t.indices);
    p->t_src = malloc((size_t)(nnz ? nnz : 1) * sizeof *p->t_src);
    if (t.indptr && t.indices && p->t_src) {
        transpose_csr(&h, t.indptr, t.indices, p->t_src);
        st = elag_cpu_sparse_create(b, &t, &opts, &p->wt);
    } else {
        st = elag_fail(ELAG_ERR_NOMEM, "sparse_pattern_create: out of host memory");
    }
    free(t.indptr);
    free(t.indices);
done:
    free(h.indptr);
    free(h.indices);
    free(h.values);
    if (st != ELAG_OK) {
        elag_cpu_sparse_pattern_destroy(b, p);
        return st;
    }
    *out = p;
    return ELAG_OK;
}

/* ---------------------------------------------------------------- cpu-ref ---- */

elag_status elag_cpu_ref_sparse_gather(elag_backend *b, const elag_sparse_pattern *p,
                                       const float *dense, float *vals)
{
    (void)b;
    const elag_sparse_dev *w = p->w;
    for (int r = 0; r < w->head.rows; r++)
        for (int32_t q = w->indptr[r]; q < w->indptr[r + 1]; q++)
            vals[q] = dense[(size_t)r * w->head.cols + w->indices[q]];
    return ELAG_OK;
}

elag_status elag_cpu_ref_sparse_scatter(elag_backend *b, const elag_sparse_pattern *p,
                                        const float *vals, float *dense)
{
    (void)b;
    const elag_sparse_dev *w = p->w;
    for (int r = 0; r < w->head.rows; r++)
        for (int32_t q = w->indptr[r]; q < w->indptr[r + 1]; q++)
            dense[(size_t)r * w->head.cols + w->indices[q]] = vals[q];
    return ELAG_OK;
}

elag_status elag_cpu_ref_sparse_values_set(elag_backend *b, elag_sparse_pattern *p,
                                           const float *vals)
{
    (void)b;
    if (p->head.nnz) memcpy(p->w->values, vals, (size_t)p->head.nnz * sizeof *vals);
    return ELAG_OK;
}

elag_status elag_cpu_ref_sparse_pattern_mm(elag_backend *b, elag_sparse_pattern *p, int trans,
                                           const float *x, int n, float *y)
{
    if (!trans) return elag_cpu_ref_sparse_mm(b, p->w, x, n, NULL, 0, y);
    const elag_sparse_dev *w = p->w;
    const int cols = w->head.cols;
    if (n == 0 || cols == 0) return ELAG_OK;
    double *acc = calloc((size_t)cols * n, sizeof *acc); /* (cols, n) */
    if (!acc) return elag_fail(ELAG_ERR_NOMEM, "sparse_pattern_mm: out of host memory");
    for (int r = 0; r < w->head.rows; r++)
        for (int32_t q = w->indptr[r]; q < w->indptr[r + 1]; q++)
            for (int c = 0; c < n; c++)
                acc[(size_t)w->indices[q] * n + c] +=
                    (double)w->values[q] * (double)x[(size_t)r * n + c];
    for (size_t i = 0; i < (size_t)cols * n; i++) y[i] = (float)acc[i];
    free(acc);
    return ELAG_OK;
}

elag_status elag_cpu_ref_sddmm(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                               const float *x, int n, float *out)
{
    (void)b;
    const elag_sparse_dev *w = p->w;
    for (int r = 0; r < w->head.rows; r++)
        for (int32_t q = w->indptr[r]; q < w->indptr[r + 1]; q++) {
            double s = 0.0;
            for (int c = 0; c < n; c++)
                s += (double)dy[(size_t)r * n + c] * (double)x[(size_t)w->indices[q] * n + c];
            out[q] = (float)s;
        }
    return ELAG_OK;
}

/* ---------------------------------------------------------------- fast ---- */

/* Threads for an O(nnz) pass over the pattern. */
static int pass_threads(const elag_sparse_pattern *p)
{
    return p->head.nnz >= ELAG_PATTERN_PAR_MIN ? p->w->parts : 1;
}

elag_status elag_cpu_fast_sparse_gather(elag_backend *b, const elag_sparse_pattern *p,
                                        const float *dense, float *vals)
{
    (void)b;
    const elag_sparse_dev *w = p->w;
    const size_t cols = (size_t)w->head.cols;
#pragma omp parallel for num_threads(pass_threads(p)) schedule(static, 1)
    for (int t = 0; t < w->parts; t++)
        for (int r = w->part_start[t]; r < w->part_start[t + 1]; r++) {
            const float *dr = dense + (size_t)r * cols; /* (cols) */
            for (int32_t q = w->indptr[r]; q < w->indptr[r + 1]; q++) vals[q] = dr[w->indices[q]];
        }
    return ELAG_OK;
}

elag_status elag_cpu_fast_sparse_scatter(elag_backend *b, const elag_sparse_pattern *p,
                                         const float *vals, float *dense)
{
    (void)b;
    const elag_sparse_dev *w = p->w;
    const size_t cols = (size_t)w->head.cols;
#pragma omp parallel for num_threads(pass_threads(p)) schedule(static, 1)
    for (int t = 0; t < w->parts; t++)
        for (int r = w->part_start[t]; r < w->part_start[t + 1]; r++) {
            float *dr = dense + (size_t)r * cols; /* (cols) */
            for (int32_t q = w->indptr[r]; q < w->indptr[r + 1]; q++) dr[w->indices[q]] = vals[q];
        }
    return ELAG_OK;
}

elag_status elag_cpu_fast_sparse_values_set(elag_backend *b, elag_sparse_pattern *p,
                                            const float *vals)
{
    (void)b;
    const int64_t nnz = p->head.nnz;
    float *wv = p->w->values, *tv = p->wt->values;
    const int32_t *src = p->t_src;
#pragma omp parallel for num_threads(pass_threads(p)) schedule(static)
    for (int64_t q = 0; q < nnz; q++) {
        wv[q] = vals[q];
        tv[q] = vals[src[q]];
    }
    return ELAG_OK;
}

elag_status elag_cpu_fast_sparse_pattern_mm(elag_backend *b, elag_sparse_pattern *p, int trans,
                                            const float *x, int n, float *y)
{
    /* the inference kernels write every output (empty rows give 0): y is overwritten */
    return elag_cpu_fast_sparse_mm(b, trans ? p->wt : p->w, x, n, NULL, 0, y);
}

/* Portable SDDMM over cnt kept entries of one row: one dot product each. */
static void sddmm_slice_portable(const int32_t *idx, int cnt, const float *dr, const float *x,
                                 int n, float *out)
{
    for (int q = 0; q < cnt; q++) {
        const float *xr = x + (size_t)idx[q] * n; /* (n) */
        float s = 0.0f;
#pragma omp simd reduction(+ : s)
        for (int c = 0; c < n; c++) s += dr[c] * xr[c];
        out[q] = s;
    }
}

/* Rows [r0, r1), column panel by column panel (the panels sparse_create cut for the
 * product: the rows of x one panel reads stay in L2 while every row's entries in that
 * panel stream past; x itself, (cols, n), is usually far larger). */
static void sddmm_rows(const elag_sparse_dev *w, int r0, int r1, const float *dy, const float *x,
                       int n, float *out)
{
    for (int pq = 0; pq < w->npanels; pq++)
        for (int r = r0; r < r1; r++) {
            const int32_t lo = elag_cpu_panel_start(w, r, pq),
                          hi = elag_cpu_panel_start(w, r, pq + 1);
            if (lo == hi) continue;
            const float *dr = dy + (size_t)r * n; /* (n) */
            switch (w->isa) {
#if ELAG_CPU_X86
            case ELAG_CPU_ISA_AVX512:
                elag_cpu_sddmm_slice_avx512(w->indices + lo, hi - lo, dr, x, n, out + lo);
                break;
            case ELAG_CPU_ISA_AVX2:
                elag_cpu_sddmm_slice_avx2(w->indices + lo, hi - lo, dr, x, n, out + lo);
                break;
#endif
            default:
                sddmm_slice_portable(w->indices + lo, hi - lo, dr, x, n, out + lo);
                break;
            }
        }
}

elag_status elag_cpu_fast_sddmm(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                                const float *x, int n, float *out)
{
    (void)b;
    const elag_sparse_dev *w = p->w;
    if (p->head.nnz == 0) return ELAG_OK;
    if (n == 0) {
        memset(out, 0, (size_t)p->head.nnz * sizeof *out);
        return ELAG_OK;
    }
    const double macs = (double)p->head.nnz * n;
    const int threads = macs >= (double)ELAG_CPU_GEMM_PAR_MIN ? w->parts : 1;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int t = 0; t < w->parts; t++)
        sddmm_rows(w, w->part_start[t], w->part_start[t + 1], dy, x, n, out);
    return ELAG_OK;
}
