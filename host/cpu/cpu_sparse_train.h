/*
 * Private to host/cpu/: the sparse training ops of both CPU backends (backend.h, "sparse
 * training"). A pattern holds W's CSR as a prepared inference matrix (cpu_sparse.h), so the
 * forward product is sparse_mm's fast kernel unchanged; the fast backend adds W^T's CSR and,
 * for each of its entries, where the value lives in W's CSR order, so that setting the
 * values every step is one copy plus one gather (O(nnz), no re-preparation).
 * cpu_sparse_train.c: building patterns, gather/scatter/values, the reference products and
 * the fast dispatch; cpu_sparse_train_x86.c: the AVX-512 / AVX2 SDDMM kernels.
 */
#ifndef ELAG_CPU_CPU_SPARSE_TRAIN_H
#define ELAG_CPU_CPU_SPARSE_TRAIN_H

#include "cpu/cpu_sparse.h"

struct elag_sparse_pattern {
    elag_sparse_pattern_head head; /* first (backend.h) */
    elag_sparse_dev *w;            /* W (rows, cols) CSR; its values are the weights */
    elag_sparse_dev *wt;           /* fast backend: W^T (cols, rows) CSR; NULL on cpu-ref */
    int32_t *t_src;                /* fast backend: (nnz) W's CSR position of W^T's entry q */
};

/* Both backends (the fast one adds W^T when b->kind == ELAG_DEVICE_CPU). */
elag_status elag_cpu_sparse_pattern_create(elag_backend *b, const float *mask, int rows, int cols,
                                           int max_n, elag_sparse_pattern **out);
void elag_cpu_sparse_pattern_destroy(elag_backend *b, elag_sparse_pattern *p);

/* cpu-ref: the specification (loops over W's CSR, double sums). */
elag_status elag_cpu_ref_sparse_gather(elag_backend *b, const elag_sparse_pattern *p,
                                       const float *dense, float *vals);
elag_status elag_cpu_ref_sparse_scatter(elag_backend *b, const elag_sparse_pattern *p,
                                        const float *vals, float *dense);
elag_status elag_cpu_ref_sparse_values_set(elag_backend *b, elag_sparse_pattern *p,
                                           const float *vals);
elag_status elag_cpu_ref_sparse_pattern_mm(elag_backend *b, elag_sparse_pattern *p, int trans,
                                           const float *x, int n, float *y);
elag_status elag_cpu_ref_sddmm(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                               const float *x, int n, float *out);

/* cpu: threads over W's row partition (balanced by nonzeros), kernels per instruction set. */
elag_status elag_cpu_fast_sparse_gather(elag_backend *b, const elag_sparse_pattern *p,
                                        const float *dense, float *vals);
elag_status elag_cpu_fast_sparse_scatter(elag_backend *b, const elag_sparse_pattern *p,
                                         const float *vals, float *dense);
elag_status elag_cpu_fast_sparse_values_set(elag_backend *b, elag_sparse_pattern *p,
                                            const float *vals);
elag_status elag_cpu_fast_sparse_pattern_mm(elag_backend *b, elag_sparse_pattern *p, int trans,
                                            const float *x, int n, float *y);
elag_status elag_cpu_fast_sddmm(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                                const float *x, int n, float *out);

#if ELAG_CPU_X86
/* SDDMM over cnt kept entries of one row (cpu_sparse_train_x86.c): column indices idx (cnt),
 * dr the row of dy (n): out[q] = dot(dr[0..n), x[idx[q]][0..n)) for q < cnt. */
void elag_cpu_sddmm_slice_avx512(const int32_t *idx, int cnt, const float *dr, const float *x,
                                 int n, float *out);
void elag_cpu_sddmm_slice_avx2(const int32_t *idx, int cnt, const float *dr, const float *x, int n,
                               float *out);
#endif

#endif /* ELAG_CPU_CPU_SPARSE_TRAIN_H */
