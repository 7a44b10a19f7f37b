/*
 * The backend: a table of function pointers that every layer of elag above it
 * (model, train, prune, sparse) calls, so that code is device-agnostic. Three
 * implementations fill it:
 *   cpu-ref  naive loops that read like the maths: the specification;
 *   cpu      the fast CPU path (OpenBLAS sgemm, OpenMP loops), tested against cpu-ref;
 *   cuda     kernels/ + cuBLAS + cuSPARSE, tested against cpu-ref (host/cuda/).
 *
 * Pointers passed to ops live where the backend computes ("device memory"): host
 * memory for cpu-ref and cpu, GPU memory for cuda. Only to_device/to_host cross.
 * All matrices are row-major. Ops are asynchronous on CUDA (one stream); `sync`
 * waits. Every op returns ELAG_OK or a failing status with a message.
 */
#ifndef ELAG_BACKEND_BACKEND_H
#define ELAG_BACKEND_BACKEND_H

#include "elag/elag.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum elag_device_kind {
    ELAG_DEVICE_CPU_REF = 0,
    ELAG_DEVICE_CPU = 1,
    ELAG_DEVICE_CUDA = 2
} elag_device_kind;

typedef struct elag_backend elag_backend;
typedef struct elag_sparse_host elag_sparse_host; /* host/sparse/sparse.h */
typedef struct elag_sparse_dev elag_sparse_dev;   /* a matrix prepared by one backend */

/* Options for preparing a sparse matrix (sparse_create). */
typedef struct elag_sparse_opts {
    int max_n;   /* largest batch the products will use */
    int alg;     /* CUDA: 0 = default (chosen by measurement), else cuSPARSE SpMM ALG1..3 */
} elag_sparse_opts;

struct elag_backend {
    const char *name;      /* "cpu-ref", "cpu", "cuda:0" */
    elag_device_kind kind;
    int device_index;      /* CUDA ordinal, 0 for CPU */
    int threads;           /* CPU threads used by this backend (OpenMP + BLAS) */
    void *ctx;             /* implementation state (handles, stream, workspace) */

    /* ---- memory ---- */
    /* Allocates `bytes` of zeroed device memory. */
    elag_status (*alloc)(elag_backend *b, size_t bytes, void **out);
    /* Frees memory from alloc; NULL does nothing. */
    void (*release)(elag_backend *b, void *p);
    elag_status (*to_device)(elag_backend *b, void *dst, const void *src_host, size_t bytes);
    elag_status (*to_host)(elag_backend *b, void *dst_host, const void *src, size_t bytes);
    elag_status (*copy)(elag_backend *b, void *dst, const void *src, size_t bytes);
    /* x[0..n) = v */
    elag_status (*fill)(elag_backend *b, float *x, size_t n, float v);
    /* Waits for all queued work. */
    elag_status (*sync)(elag_backend *b);
    /* Frees the backend itself (ctx, handles); called through elag_backend_free. */
    void (*destroy)(elag_backend *b);

    /* ---- dense linear algebra ---- */
    /* C(m,n) = alpha * op(A) op(B) + beta * C, row-major; op(A) is (m,k), op(B) is (k,n).
     * trans_a: A stored (k,m); trans_b: B stored (n,k). lda/ldb/ldc are row strides. */
    elag_status (*gemm)(elag_backend *b, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *bm, int ldb,
                        float beta, float *c, int ldc);
    /* y(rows, cols) += bias(cols) broadcast over rows. */
    elag_status (*bias_add)(elag_backend *b, float *y, const float *bias, int rows, int cols);
    /* db(cols) = sum over rows of dy(rows, cols). */
    elag_status (*bias_grad)(elag_backend *b, float *db, const float *dy, int rows, int cols);
    /* y = max(x, 0) elementwise, n elements; y may equal x. */
    elag_status (*relu_forward)(elag_backend *b, float *y, const float *x, size_t n);
    /* dx = dy * (y > 0); dx may equal dy. */
    elag_status (*relu_backward)(elag_backend *b, float *dx, const float *dy, const float *y,
                                 size_t n);
    /* Softmax cross-entropy over logits(rows, cols) with labels(rows) in [0, cols).
     * stats[0] += sum of per-row losses, stats[1] += number of rows whose argmax (first
     * maximum) equals the label. If dlogits (rows, cols) is not NULL it receives
     * (softmax - onehot) / rows, the gradient of the mean loss. */
    elag_status (*xent)(elag_backend *b, const float *logits, const int32_t *labels, int rows,
                        int cols, float *dlogits, float *stats);
    /* dst(rows, cols) = src[idx[r]] for r < rows; idx is a device int32 array (rows). */
    elag_status (*gather_rows)(elag_backend *b, float *dst, const float *src,
                               const int32_t *idx, int rows, int cols);
    /* dst(rows) = src[idx[r]] (labels gather). */
    elag_status (*gather_i32)(elag_backend *b, int32_t *dst, const int32_t *src,
                              const int32_t *idx, int rows);

    /* ---- initialisation ---- */
    /* x[i] = lo + (hi - lo) * elag_philox_uniform(seed, stream, i): bit-identical on
     * every backend for the same arguments. */
    elag_status (*init_uniform)(elag_backend *b, float *x, size_t n, float lo, float hi,
                                uint64_t seed, uint64_t stream);

    /* ---- optimizers (fused, masked) ---- */
    /* SGD with momentum and decoupled-from-nothing (L2) weight decay, PyTorch semantics:
     *   g' = g + wd * w;  v = momentum * v + g';  w -= lr * (nesterov ? g' + momentum*v : v)
     * then, when mask is not NULL, w *= mask and v *= mask, so pruned entries stay 0. */
    elag_status (*sgd_step)(elag_backend *b, float *w, const float *g, float *v,
                            const float *mask, size_t n, float lr, float momentum,
                            float weight_decay, int nesterov);
    /* AdamW (Loshchilov & Hutter), PyTorch semantics, step t >= 1:
     *   w *= 1 - lr*wd;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
     *   w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
     * then w, m, v *= mask when mask is not NULL. */
    elag_status (*adamw_step)(elag_backend *b, float *w, const float *g, float *m, float *v,
                              const float *mask, size_t n, float lr, float beta1, float beta2,
                              float eps, float weight_decay, int t);

    /* ---- pruning ---- */
    /* x *= mask elementwise (mask entries are 0 or 1). */
    elag_status (*mask_apply)(elag_backend *b, float *x, const float *mask, size_t n);
    /* score = |w| where mask is 1 (or mask NULL), -1 where mask is 0, so entries that are
     * already pruned rank below every live weight. */
    elag_status (*score_magnitude)(elag_backend *b, float *score, const float *w,
                                   const float *mask, size_t n);
    /* mask[i] = 0 for exactly the k entries with the smallest (score[i], i) in
     * lexicographic order (ties broken by lower index first), 1 for the others.
     * k <= n. Scores compare as floats (-0 == +0); a NaN score ranks above every number.
     * Device-side selection: no full sort, no copy of score to the host. */
    elag_status (*mask_select)(elag_backend *b, float *mask, const float *score, size_t n,
                               size_t k);
    /* *out_host = number of nonzero entries of x. */
    elag_status (*count_nonzero)(elag_backend *b, const float *x, size_t n, size_t *out_host);

    /* ---- sparse inference (feature-major activations: x (features, n) row-major) ---- */
    /* Copies a host matrix (CSR or Blocked-ELL; dense is refused) to the device and
     * prepares products with up to opts->max_n columns: descriptors, buffers, row
     * partitions, cuSPARSE preprocessing. Freed with sparse_destroy. */
    elag_status (*sparse_create)(elag_backend *b, const elag_sparse_host *a,
                                 const elag_sparse_opts *opts, elag_sparse_dev **out);
    void (*sparse_destroy)(elag_backend *b, elag_sparse_dev *a); /* NULL does nothing */
    /* y(rows, n) = A(rows, cols) x(cols, n), then y[r][:] += bias[r] when bias is not NULL,
     * then y = max(y, 0) when relu. n <= max_n. */
    elag_status (*sparse_mm)(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                             const float *bias, int relu, float *y);
    /* Dense epilogue in the same layout: y(rows, n)[r][:] += bias[r] (bias may be NULL),
     * then ReLU when relu. */
    elag_status (*bias_relu_rows)(elag_backend *b, float *y, const float *bias, int rows, int n,
                                  int relu);
};

/* Opens a backend by name: "cpu-ref", "cpu", "cuda", "cuda:N" or "auto" (cuda:0 when a CUDA
 * device exists, else cpu; `note_host` receives a one-line note when auto chose, may be NULL).
 * `threads` <= 0 means all cores. A missing CUDA device gives ELAG_ERR_NO_DEVICE. */
elag_status elag_backend_open(const char *device, int threads, elag_backend **out,
                              char *note, size_t note_len);
void elag_backend_free(elag_backend *b);

/* TF32 tensor-core GEMMs on CUDA (config key cuda.tf32); FP32 otherwise and by default.
 * Does nothing on CPU backends. */
elag_status elag_backend_set_tf32(elag_backend *b, int on);

/* Number of CUDA devices (0 when built without CUDA or none is present). */
int elag_cuda_device_count(void);

/* Constructors of each implementation (host/cpu/, host/cuda/). */
elag_status elag_cpu_ref_backend_init(elag_backend **out);
elag_status elag_cpu_backend_init(int threads, elag_backend **out);
#ifdef ELAG_HAVE_CUDA
elag_status elag_cuda_backend_init(int device_index, elag_backend **out);
/* Number of usable CUDA devices; 0 (not an error) when the driver finds none. */
int elag_cuda_count_devices(void);
#endif

#ifdef __cplusplus
}
#endif

#endif /* ELAG_BACKEND_BACKEND_H */
