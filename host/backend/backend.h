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
 *
 * Callers go through the wrappers at the end of this file, elag_be_<op>(b, ...), never
 * through b-><op> directly: the wrappers (backend_ops.c) are the one place that checks
 * the arguments against the contracts below (sizes, operands, windows, enum values), so
 * every backend refuses a misuse with the same status and message, and the table entries
 * need only do the maths. supports() says beforehand what a backend cannot do, so a
 * caller can skip that work or run it on a CPU backend, which supports every op.
 */
#ifndef ELAG_BACKEND_BACKEND_H
#define ELAG_BACKEND_BACKEND_H

#include "elag/elag.h"
#include "sparse/sparse.h" /* elag_sparse_format */

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
typedef struct elag_sparse_dev elag_sparse_dev; /* a matrix prepared by one backend */
typedef struct elag_sparse_pattern elag_sparse_pattern; /* a training layer's mask, prepared */

/* Options for preparing a sparse matrix (sparse_create). */
typedef struct elag_sparse_opts {
    int max_n;   /* largest batch the products will use */
    int alg;     /* CUDA: 0 = default (chosen by measurement), else cuSPARSE SpMM ALG1..3 */
} elag_sparse_opts;

/* Elementwise ops (elementwise): what y becomes. */
typedef enum elag_ew_op {
    ELAG_EW_RELU = 0,          /* y = max(a, 0) (a NaN gives 0) */
    ELAG_EW_RELU_BACKWARD = 1, /* y = b > 0 ? a : 0    (a = dy, b = the ReLU's output) */
    ELAG_EW_MUL = 2,           /* y = b == 0 ? +0 : a * b (a select where b == 0, so a pruned
                                * or dropped entry is exactly +0 even if a is inf or NaN) */
    ELAG_EW_AXPY = 3,          /* y = y + alpha * a */
    ELAG_EW_SCALE = 4          /* y = alpha * a */
} elag_ew_op;

/* batchnorm_forward's flags. */
enum { ELAG_BN_TRAINING = 1, ELAG_BN_RELU = 2 };

typedef enum elag_pool_mode { ELAG_POOL_MAX = 0, ELAG_POOL_AVG = 1 } elag_pool_mode;

/* The geometry of a 2-D window op (im2col, col2im, pooling). */
typedef struct elag_window {
    int H, W;        /* input plane */
    int kh, kw;      /* window */
    int sh, sw;      /* stride, >= 1 */
    int ph, pw;      /* zero padding on each side, >= 0 */
    int oh, ow;      /* output plane: (H + 2ph - kh) / sh + 1, likewise */
} elag_window;

/* Fills g->oh, g->ow from the rest; ELAG_ERR_INPUT when the window does not fit. */
elag_status elag_window_resolve(elag_window *g);

/* The first member of every backend's prepared matrix (struct elag_sparse_dev, private to
 * each backend), so the sparse_mm wrapper can check a product against the matrix without
 * knowing which backend prepared it. */
typedef struct elag_sparse_head {
    int rows, cols; /* A (rows, cols): y (rows, n), x (cols, n) */
    int max_n;      /* the widest product sparse_create prepared for */
} elag_sparse_head;

/* The first member of every backend's prepared pattern (struct elag_sparse_pattern, private
 * to each backend), so the wrappers can check a call against it. */
typedef struct elag_sparse_pattern_head {
    int rows, cols; /* W (rows, cols) = (out, in) */
    int max_n;      /* the widest product (batch) sparse_pattern_create prepared for */
    int64_t nnz;    /* kept entries: the length of every values array of the pattern */
} elag_sparse_pattern_head;

/* What supports() can be asked about: the ops of the table whose answer can depend on the
 * device or the arguments. ELAG_OP_SPARSE_MM stands for sparse_create + sparse_mm. */
typedef enum elag_op {
    ELAG_OP_GEMM = 0,
    ELAG_OP_MASK_SELECT = 1,
    ELAG_OP_SPARSE_MM = 2,
    ELAG_OP_CONV = 3, /* conv_forward, conv_backward_data, conv_backward_filter */
    ELAG_OP_SPARSE_TRAIN = 4, /* sparse_pattern_create and the ops on a pattern */
    ELAG_OP_COUNT = 5
} elag_op;

/* The arguments supports() weighs; fields an op does not use are ignored (0). */
typedef struct elag_op_query {
    elag_sparse_format format; /* SPARSE_MM: CSR or BELL */
    int block;                 /* SPARSE_MM: Blocked-ELL block size B */
    int alg;                   /* SPARSE_MM: as elag_sparse_opts.alg (0, or cuSPARSE ALG1..3) */
    int max_n;                 /* SPARSE_MM: widest product (0: not known) */
    size_t n;                  /* MASK_SELECT: entries */
    int tf32;                  /* GEMM: the caller asks for TF32 tensor-core products */
    const elag_window *window; /* CONV: the geometry (NULL: is there a direct path at all) */
} elag_op_query;

/* supports()'s answer. A caller treats NO as "skip it, or run it on a CPU backend". */
typedef enum elag_support {
    ELAG_SUPPORT_NO = 0,   /* the backend would refuse (ELAG_ERR_UNSUPPORTED) or cannot do it */
    ELAG_SUPPORT_FP32 = 1, /* runs with the contract's FP32 arithmetic */
    ELAG_SUPPORT_TF32 = 2, /* runs, but products round FP32 inputs to TF32 (10-bit mantissa):
                            * tolerances must be TF32's, not FP32's */
    ELAG_SUPPORT_OPT_IN = 3 /* runs in FP32, but has not been verified on this kind of device
                             * yet: a caller runs it where the user asked for it by name
                             * (train.sparse_compute: on, elag bench layer), never by
                             * default (auto). CUDA's sparse training step, for now */
} elag_support;

/* One product of a tile-major chain (sparse_chain_tiled): y (n/T, rows, T) = A times the
 * previous link's y (the first link: the chain's transposed input), plus bias[r] when bias
 * is not NULL, then ReLU when relu. */
typedef struct elag_tiled_link {
    elag_sparse_dev *a;
    const float *bias; /* (rows) or NULL */
    int relu;
    float *y; /* (n/T, rows, T) */
} elag_tiled_link;

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

    /* ---- capabilities ---- */
    /* Whether op runs here with the arguments q describes (q is never NULL; the wrapper has
     * refused queries the contract itself rules out). When the answer is NO or TF32, a
     * one-line reason goes to why (why_len bytes; why may be NULL). */
    elag_support (*supports)(elag_backend *b, elag_op op, const elag_op_query *q, char *why,
                             size_t why_len);

    /* ---- dense linear algebra ---- */
    /* C(m,n) = alpha * op(A) op(B) + beta * C, row-major; op(A) is (m,k), op(B) is (k,n).
     * trans_a: A stored (k,m); trans_b: B stored (n,k). lda/ldb/ldc are row strides. */
    elag_status (*gemm)(elag_backend *b, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *bm, int ldb,
                        float beta, float *c, int ldc);
    /* out(rows) = sum over c of x(rows, cols)[r][c] (row sums; a bias gradient in the
     * feature-major layout). rows 0 or cols 0: out is zeros. */
    elag_status (*row_sum)(elag_backend *b, float *out, const float *x, int rows, int cols);
    /* Elementwise op over n floats (elag_ew_op says which operands it reads); y may alias
     * a or b. */
    elag_status (*elementwise)(elag_backend *b, elag_ew_op op, size_t n, float *y,
                               const float *a, const float *bb, float alpha);
    /* Batched transpose of blocks: for t < batch, i < rows, j < cols, e < inner:
     *   dst[((t*cols + j)*rows + i)*inner + e] = src[((t*rows + i)*cols + j)*inner + e]
     * dst and src do not overlap. (N, C, HW) -> (C, N, HW) is batch 1, rows N, cols C,
     * inner HW; flatten (C, N, HW) -> (C, HW, N) is batch C, rows N, cols HW, inner 1. */
    elag_status (*transpose)(elag_backend *b, float *dst, const float *src, int batch, int rows,
                             int cols, int inner);
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

    /* ---- layers on feature-major activations (C, N, H, W), see host/model/model.h ----
     * A geometry g describes one 2-D window op: input planes H x W, window kh x kw, stride
     * sh x sw, zero padding ph x pw, output planes oh x ow with
     * oh = (H + 2ph - kh) / sh + 1 (ow likewise). */
    /* col(C*kh*kw, nb*oh*ow) from samples [n0, n0+nb) of x(C, N, H, W): row (c*kh + i)*kw + j,
     * column (n - n0)*oh*ow + y*ow + x holds x[c][n][y*sh - ph + i][x*sw - pw + j], 0 outside
     * the input. col is overwritten. */
    elag_status (*im2col)(elag_backend *b, float *col, const float *x, int C, int N, int n0,
                          int nb, const elag_window *g);
    /* The adjoint of im2col: dx(C, N, H, W) samples [n0, n0+nb) += the entries of
     * col(C*kh*kw, nb*oh*ow) scattered back to where im2col read them (padding dropped).
     * Other samples of dx are untouched. */
    elag_status (*col2im)(elag_backend *b, float *dx, const float *col, int C, int N, int n0,
                          int nb, const elag_window *g);
    /* Direct convolution with stride 1 (g->sh = g->sw = 1, g->ph < g->kh, g->pw < g->kw), over
     * samples [n0, n0+nb) of a batch of N, without im2col columns: what conv2d runs where
     * supports(ELAG_OP_CONV) says yes (elsewhere it runs im2col + gemm). w is (O, C, kh, kw),
     * x (C, N, H, W), y and dy (O, N, oh, ow). work: elag_conv_work_floats(C, O, nb, g) floats
     * of scratch the op may overwrite. Each output entry is one sum in a fixed order, so the
     * result does not depend on the number of threads.
     * forward: y[o][n][v][u] = sum over c, i, j of w[o][c][i][j] * x[c][n][v-ph+i][u-pw+j]
     *   (x is 0 outside its plane); those samples of y are overwritten. */
    elag_status (*conv_forward)(elag_backend *b, float *y, const float *x, const float *w, int C,
                                int O, int N, int n0, int nb, const elag_window *g, float *work);
    /* The gradient of forward for x: dx[c][n][h][u] = sum over o, i, j of
     * w[o][c][i][j] * dy[o][n][h+ph-i][u+pw-j] (dy is 0 outside its plane); those samples of
     * dx are overwritten. */
    elag_status (*conv_backward_data)(elag_backend *b, float *dx, const float *dy, const float *w,
                                      int C, int O, int N, int n0, int nb, const elag_window *g,
                                      float *work);
    /* The gradient of forward for w: dw[o][c][i][j] = beta * dw[o][c][i][j] + the sum over the
     * samples n, v, u of dy[o][n][v][u] * x[c][n][v-ph+i][u-pw+j]; beta is 0 (dw is not read)
     * or 1 (a later slice adds to an earlier one). */
    elag_status (*conv_backward_filter)(elag_backend *b, float *dw, const float *dy,
                                        const float *x, int C, int O, int N, int n0, int nb,
                                        const elag_window *g, float beta, float *work);
    /* Pooling over `planes` independent planes x(planes, H, W) -> y(planes, oh, ow).
     * max: y = the window's maximum over in-bounds entries (the first one in row-major
     * window order on ties), argmax(planes, oh, ow) receives its index h*W + w within the
     * plane (a window with no in-bounds entry gives y = 0, argmax = -1). avg: y = sum of the
     * in-bounds entries / (kh*kw) (padding counts as zeros, PyTorch's count_include_pad);
     * argmax unused (may be NULL). */
    elag_status (*pool_forward)(elag_backend *b, elag_pool_mode mode, float *y, int32_t *argmax,
                                const float *x, int planes, const elag_window *g);
    /* dx(planes, H, W) = the gradient of pool_forward for dy(planes, oh, ow): dx is
     * overwritten (zeros where no window reads). */
    elag_status (*pool_backward)(elag_backend *b, elag_pool_mode mode, float *dx,
                                 const float *dy, const int32_t *argmax, int planes,
                                 const elag_window *g);
    /* Batch norm over x(C, L) (channel c is the contiguous row c; L = N*H*W, or N for
     * features), y may alias x. flags: ELAG_BN_TRAINING (else eval), ELAG_BN_RELU (then
     * y = max(y, 0) after the affine map, a following ReLU fused; NaN gives 0 as ELAG_EW_RELU).
     * training: mean_c and biased var_c over the row; y = (x - mean) * invstd * gamma + beta
     *   with invstd = 1 / sqrt(var + eps); save_mean(C), save_invstd(C) receive them; the
     *   running buffers become run = (1 - momentum) run + momentum * stat, with the unbiased
     *   variance (var * L / (L - 1), or var when L == 1) for run_var (PyTorch semantics).
     * eval (training 0): y = (x - run_mean) / sqrt(run_var + eps) * gamma + beta; save_*
     *   unused (may be NULL), running buffers unchanged. */
    elag_status (*batchnorm_forward)(elag_backend *b, int flags, float *y, const float *x,
                                     int C, int L, const float *gamma, const float *beta,
                                     float *run_mean, float *run_var, float momentum, float eps,
                                     float *save_mean, float *save_invstd);
    /* Gradients of training-mode batchnorm_forward: with xhat = (x - mean) * invstd,
     *   dbeta(C) = sum dy, dgamma(C) = sum dy * xhat (both overwritten),
     *   dx = gamma * invstd / L * (L dy - dbeta - xhat dgamma)  (dx may alias dy). */
    elag_status (*batchnorm_backward)(elag_backend *b, float *dx, float *dgamma, float *dbeta,
                                      const float *dy, const float *x, int C, int L,
                                      const float *gamma, const float *save_mean,
                                      const float *save_invstd);
    /* Inverted dropout: keep[i] = u >= p ? 1 / (1 - p) : 0 with
     * u = elag_philox_uniform(seed, stream, offset + i); y = x * keep (y may alias x).
     * keep(n) is kept for the backward pass (dx = dy * keep, an elementwise MUL). p in [0, 1). */
    elag_status (*dropout_forward)(elag_backend *b, float *y, float *keep, const float *x,
                                   size_t n, float p, uint64_t seed, uint64_t stream,
                                   uint64_t offset);

    /* ---- sparse inference (feature-major activations: x (features, n) row-major) ---- */
    /* Copies a host matrix (CSR or Blocked-ELL; dense is refused) to the device and
     * prepares products with up to opts->max_n columns: descriptors, buffers, row
     * partitions, cuSPARSE preprocessing. Freed with sparse_destroy. The matrix starts with
     * an elag_sparse_head holding a's rows and cols and opts->max_n. */
    elag_status (*sparse_create)(elag_backend *b, const elag_sparse_host *a,
                                 const elag_sparse_opts *opts, elag_sparse_dev **out);
    void (*sparse_destroy)(elag_backend *b, elag_sparse_dev *a); /* NULL does nothing */
    /* y(rows, n) = A(rows, cols) x(cols, n), then y[r][:] += bias[r] when bias is not NULL,
     * then y = max(y, 0) when relu. n <= max_n. */
    elag_status (*sparse_mm)(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                             const float *bias, int relu, float *y);
    /* The tile width T > 0 with which sparse_mm_tiled runs a, or 0 when this backend
     * cannot for a (its format; CUDA never). */
    int (*sparse_tile)(elag_backend *b, const elag_sparse_dev *a);
    /* sparse_mm with the batch cut into tiles of T = sparse_tile(a) columns stored one
     * after the other: x (n/T, cols, T) and y (n/T, rows, T) row-major, n a multiple of T.
     * A chain of such products needs no repacking between layers (sparse inference of an
     * MLP, host/sparse/infer.c). */
    elag_status (*sparse_mm_tiled)(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                                   const float *bias, int relu, float *y);
    /* A chain of tiled products over a sample-major batch (host/sparse/infer.c's MLPs):
     * xt (n/T, in, T) = x (n, in) cut into tiles, then every link as sparse_mm_tiled on
     * the previous link's y (the first on xt), then out (n, rows) = the last y in sample
     * order (cpu-ref: exactly that, step by step). The fast CPU backend gives each thread
     * whole tiles through the whole chain, with no barrier between layers. */
    elag_status (*sparse_chain_tiled)(elag_backend *b, const elag_tiled_link *links, int nlinks,
                                      const float *x, float *xt, int n, int in, float *out);
    /* Dense epilogue in the same layout: y(rows, n)[r][:] += bias[r] (bias may be NULL),
     * then ReLU when relu. */
    elag_status (*bias_relu_rows)(elag_backend *b, float *y, const float *bias, int rows, int n,
                                  int relu);

    /* ---- sparse training of a linear layer y = W x (feature-major, W (rows, cols)) ----
     * A pattern is a layer's mask prepared once per mask update: the CSR structure of W
     * (row-major order of the kept entries, "CSR order") and whatever the backend needs for
     * W^T products. Every per-step array of the layer is a values array: nnz floats in CSR
     * order (device). The weights' values are set every step (sparse_values_set); the
     * structure never changes. Pruned entries have no storage, so they stay exactly 0. */
    /* mask (rows, cols), device: an entry is kept where mask != 0 (NaN counts as kept).
     * Products take up to max_n batch columns. nnz must stay below 2^31
     * (ELAG_ERR_UNSUPPORTED). The values start at 0. Freed with sparse_pattern_destroy. */
    elag_status (*sparse_pattern_create)(elag_backend *b, const float *mask, int rows, int cols,
                                         int max_n, elag_sparse_pattern **out);
    void (*sparse_pattern_destroy)(elag_backend *b, elag_sparse_pattern *p); /* NULL: nothing */
    /* vals(nnz) = dense(rows, cols) at the kept entries, in CSR order (a dense master or
     * optimizer state brought into the pattern). */
    elag_status (*sparse_gather)(elag_backend *b, const elag_sparse_pattern *p,
                                 const float *dense, float *vals);
    /* dense(rows, cols) at the kept entries = vals(nnz); other entries are not written. */
    elag_status (*sparse_scatter)(elag_backend *b, const elag_sparse_pattern *p,
                                  const float *vals, float *dense);
    /* The pattern's weights become vals(nnz) (copied: vals may change afterwards), for
     * products with W and with W^T alike. */
    elag_status (*sparse_values_set)(elag_backend *b, elag_sparse_pattern *p, const float *vals);
    /* trans 0: y(rows, n) = W x(cols, n);  trans 1: y(cols, n) = W^T x(rows, n).
     * y is overwritten; n <= max_n. */
    elag_status (*sparse_pattern_mm)(elag_backend *b, elag_sparse_pattern *p, int trans,
                                     const float *x, int n, float *y);
    /* The weight gradient at the kept entries only (SDDMM): for the entry (i, j) at CSR
     * position q, out[q] = sum over c < n of dy[i][c] * x[j][c], with dy (rows, n) and
     * x (cols, n) the layer's output gradient and input; out (nnz) is overwritten
     * (n = 0: zeros). n <= max_n. */
    elag_status (*sddmm)(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                         const float *x, int n, float *out);
};

/* ---- the wrappers: what every caller uses (backend_ops.c) ----
 * elag_be_<op>(b, ...) checks the arguments against <op>'s contract above and calls
 * b-><op>. A misuse (negative size, NULL operand a nonzero size needs, window not resolved,
 * unknown enum value, overlapping transpose, sparse_mm past max_n, ...) is a caller's bug:
 * ELAG_ERR_INTERNAL naming the op, on every backend alike. sparse_create's host matrix is
 * data, so a bad one is ELAG_ERR_INPUT (elag_sparse_validate) and a dense one, max_n < 1 or
 * an alg outside 0..3 ELAG_ERR_USAGE. Data-dependent checks that need to read device memory
 * (xent's labels) stay in the backends that can read it for free. */
elag_status elag_be_alloc(elag_backend *b, size_t bytes, void **out);
void elag_be_release(elag_backend *b, void *p);
elag_status elag_be_to_device(elag_backend *b, void *dst, const void *src_host, size_t bytes);
elag_status elag_be_to_host(elag_backend *b, void *dst_host, const void *src, size_t bytes);
elag_status elag_be_copy(elag_backend *b, void *dst, const void *src, size_t bytes);
elag_status elag_be_fill(elag_backend *b, float *x, size_t n, float v);
elag_status elag_be_sync(elag_backend *b);
/* q may be NULL (all fields 0); why may be NULL. An unknown op is NO. */
elag_support elag_be_supports(elag_backend *b, elag_op op, const elag_op_query *q, char *why,
                              size_t why_len);
elag_status elag_be_gemm(elag_backend *b, int trans_a, int trans_b, int m, int n, int k,
                         float alpha, const float *a, int lda, const float *bm, int ldb, float beta,
                         float *c, int ldc);
elag_status elag_be_row_sum(elag_backend *b, float *out, const float *x, int rows, int cols);
elag_status elag_be_elementwise(elag_backend *b, elag_ew_op op, size_t n, float *y, const float *a,
                                const float *bb, float alpha);
elag_status elag_be_transpose(elag_backend *b, float *dst, const float *src, int batch, int rows,
                              int cols, int inner);
elag_status elag_be_xent(elag_backend *b, const float *logits, const int32_t *labels, int rows,
                         int cols, float *dlogits, float *stats);
elag_status elag_be_gather_rows(elag_backend *b, float *dst, const float *src, const int32_t *idx,
                                int rows, int cols);
elag_status elag_be_gather_i32(elag_backend *b, int32_t *dst, const int32_t *src,
                               const int32_t *idx, int rows);
elag_status elag_be_init_uniform(elag_backend *b, float *x, size_t n, float lo, float hi,
                                 uint64_t seed, uint64_t stream);
elag_status elag_be_sgd_step(elag_backend *b, float *w, const float *g, float *v, const float *mask,
                             size_t n, float lr, float momentum, float weight_decay, int nesterov);
elag_status elag_be_adamw_step(elag_backend *b, float *w, const float *g, float *m, float *v,
                               const float *mask, size_t n, float lr, float beta1, float beta2,
                               float eps, float weight_decay, int t);
elag_status elag_be_score_magnitude(elag_backend *b, float *score, const float *w,
                                    const float *mask, size_t n);
elag_status elag_be_mask_select(elag_backend *b, float *mask, const float *score, size_t n,
                                size_t k);
elag_status elag_be_count_nonzero(elag_backend *b, const float *x, size_t n, size_t *out_host);
elag_status elag_be_im2col(elag_backend *b, float *col, const float *x, int C, int N, int n0,
                           int nb, const elag_window *g);
elag_status elag_be_col2im(elag_backend *b, float *dx, const float *col, int C, int N, int n0,
                           int nb, const elag_window *g);
/* The scratch the conv ops take for a slice of nb samples: the larger of the input padded by
 * (ph, pw) and the output gradient padded by (kh-1-ph, kw-1-pw), plus one vector of slack. */
size_t elag_conv_work_floats(int C, int O, int nb, const elag_window *g);
elag_status elag_be_conv_forward(elag_backend *b, float *y, const float *x, const float *w, int C,
                                 int O, int N, int n0, int nb, const elag_window *g, float *work);
elag_status elag_be_conv_backward_data(elag_backend *b, float *dx, const float *dy,
                                       const float *w, int C, int O, int N, int n0, int nb,
                                       const elag_window *g, float *work);
elag_status elag_be_conv_backward_filter(elag_backend *b, float *dw, const float *dy,
                                         const float *x, int C, int O, int N, int n0, int nb,
                                         const elag_window *g, float beta, float *work);
elag_status elag_be_pool_forward(elag_backend *b, elag_pool_mode mode, float *y, int32_t *argmax,
                                 const float *x, int planes, const elag_window *g);
elag_status elag_be_pool_backward(elag_backend *b, elag_pool_mode mode, float *dx, const float *dy,
                                  const int32_t *argmax, int planes, const elag_window *g);
elag_status elag_be_batchnorm_forward(elag_backend *b, int flags, float *y, const float *x,
                                      int C, int L, const float *gamma, const float *beta,
                                      float *run_mean, float *run_var, float momentum, float eps,
                                      float *save_mean, float *save_invstd);
elag_status elag_be_batchnorm_backward(elag_backend *b, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, int C, int L,
                                       const float *gamma, const float *save_mean,
                                       const float *save_invstd);
elag_status elag_be_dropout_forward(elag_backend *b, float *y, float *keep, const float *x,
                                    size_t n, float p, uint64_t seed, uint64_t stream,
                                    uint64_t offset);
elag_status elag_be_sparse_create(elag_backend *b, const elag_sparse_host *a,
                                  const elag_sparse_opts *opts, elag_sparse_dev **out);
void elag_be_sparse_destroy(elag_backend *b, elag_sparse_dev *a);
elag_status elag_be_sparse_mm(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                              const float *bias, int relu, float *y);
/* The tile of sparse_mm_tiled for a (0: the backend or the matrix has none). */
int elag_be_sparse_tile(elag_backend *b, const elag_sparse_dev *a);
elag_status elag_be_sparse_mm_tiled(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                                    const float *bias, int relu, float *y);
/* The chain of tiled products (sparse_chain_tiled); every link with the same tile, each
 * link's cols the previous link's rows (the first's: in), n a multiple of the tile. */
elag_status elag_be_sparse_chain_tiled(elag_backend *b, const elag_tiled_link *links, int nlinks,
                                       const float *x, float *xt, int n, int in, float *out);
elag_status elag_be_bias_relu_rows(elag_backend *b, float *y, const float *bias, int rows, int n,
                                   int relu);
/* Sparse training: a NULL mask with rows * cols > 0, a negative size, max_n < 1 or a NULL
 * operand is ELAG_ERR_INTERNAL, as is trans outside 0..1 or n outside [0, max_n]. */
elag_status elag_be_sparse_pattern_create(elag_backend *b, const float *mask, int rows, int cols,
                                          int max_n, elag_sparse_pattern **out);
void elag_be_sparse_pattern_destroy(elag_backend *b, elag_sparse_pattern *p);
/* The pattern's kept entries (its values arrays' length); p must not be NULL. */
int64_t elag_sparse_pattern_nnz(const elag_sparse_pattern *p);
elag_status elag_be_sparse_gather(elag_backend *b, const elag_sparse_pattern *p,
                                  const float *dense, float *vals);
elag_status elag_be_sparse_scatter(elag_backend *b, const elag_sparse_pattern *p,
                                   const float *vals, float *dense);
elag_status elag_be_sparse_values_set(elag_backend *b, elag_sparse_pattern *p, const float *vals);
elag_status elag_be_sparse_pattern_mm(elag_backend *b, elag_sparse_pattern *p, int trans,
                                      const float *x, int n, float *y);
elag_status elag_be_sddmm(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                          const float *x, int n, float *out);

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
