/*
 * The wrappers of the backend table (backend.h): the one place where the arguments of
 * every op are checked against its contract before the backend's entry runs. Keeping the
 * checks here, and not in each implementation, is what makes cpu-ref, cpu and cuda refuse
 * a misuse with the same status and message (tests/test_ops_*.c call these for its refusal
 * cases), and lets the implementations trust their arguments.
 *
 * A misuse is a caller's bug, so it is ELAG_ERR_INTERNAL naming the op. The exceptions
 * are sparse_create's host matrix, which is data read from a file (ELAG_ERR_INPUT, or
 * ELAG_ERR_USAGE for options a user can pass), and supports(), which answers rather
 * than fails. NULL operands are refused only where a nonzero size means the op would
 * dereference them: a NULL the op would never read (n == 0) is allowed, as before.
 */
#include "backend/backend.h"

#include "core/check.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

/* ---- shared checks ---- */

static elag_status null_operand(const char *op, const char *which)
{
    return elag_fail(ELAG_ERR_INTERNAL, "%s: %s is NULL", op, which);
}

static elag_status check_dims(const char *op, int rows, int cols)
{
    if (rows < 0 || cols < 0)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: negative size rows=%d cols=%d", op, rows, cols);
    return ELAG_OK;
}

/* A geometry as elag_window_resolve leaves it: the implementations index with oh and ow,
 * so an unresolved or inconsistent one would read or write out of bounds. */
static elag_status check_window(const char *op, const elag_window *g)
{
    if (g == NULL) return elag_fail(ELAG_ERR_INTERNAL, "%s: no window geometry", op);
    if (g->H < 1 || g->W < 1 || g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 || g->ph < 0 ||
        g->pw < 0)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "%s: input %dx%d, kernel %dx%d, stride %dx%d, padding %dx%d is not a "
                         "valid window",
                         op, g->H, g->W, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
    long long eh = (long long)g->H + 2LL * g->ph - g->kh;
    long long ew = (long long)g->W + 2LL * g->pw - g->kw;
    if (eh < 0 || ew < 0 || g->oh != eh / g->sh + 1 || g->ow != ew / g->sw + 1)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "%s: output %dx%d does not match input %dx%d, kernel %dx%d, stride "
                         "%dx%d, padding %dx%d (window not resolved)",
                         op, g->oh, g->ow, g->H, g->W, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
    return ELAG_OK;
}

/* im2col / col2im: samples [n0, n0 + nb) of a (C, N, H, W) tensor, and the geometry. */
static elag_status check_slice(const char *op, int C, int N, int n0, int nb, const elag_window *g)
{
    if (C < 0 || N < 0 || n0 < 0 || nb < 0 || n0 > N - nb)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "%s: bad sizes C=%d N=%d samples [%d, %d + %d) (need C, N >= 0 and "
                         "0 <= n0 <= n0 + nb <= N)",
                         op, C, N, n0, n0, nb);
    return check_window(op, g);
}

static elag_status check_pool(const char *op, elag_pool_mode mode, const int32_t *argmax,
                              int planes, const elag_window *g)
{
    if (mode != ELAG_POOL_MAX && mode != ELAG_POOL_AVG)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: unknown pooling mode %d", op, (int)mode);
    if (planes < 0) return elag_fail(ELAG_ERR_INTERNAL, "%s: negative size planes=%d", op, planes);
    if (mode == ELAG_POOL_MAX && argmax == NULL)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: max pooling needs the argmax buffer", op);
    ELAG_TRY(check_window(op, g));
    /* argmax holds h*W + w in an int32 */
    if (mode == ELAG_POOL_MAX && (long long)g->H * g->W > INT32_MAX)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: a %dx%d plane does not fit an int32 argmax", op,
                         g->H, g->W);
    return ELAG_OK;
}

/* ---- memory ---- */

elag_status elag_be_alloc(elag_backend *b, size_t bytes, void **out)
{
    if (out == NULL) return null_operand("alloc", "out");
    *out = NULL;
    return b->alloc(b, bytes, out);
}

void elag_be_release(elag_backend *b, void *p)
{
    if (p != NULL) b->release(b, p);
}

static elag_status check_copy(const char *op, const void *dst, const void *src, size_t bytes)
{
    if (bytes > 0 && (dst == NULL || src == NULL))
        return elag_fail(ELAG_ERR_INTERNAL, "%s: NULL buffer for %zu bytes", op, bytes);
    return ELAG_OK;
}

elag_status elag_be_to_device(elag_backend *b, void *dst, const void *src_host, size_t bytes)
{
    ELAG_TRY(check_copy("to_device", dst, src_host, bytes));
    return b->to_device(b, dst, src_host, bytes);
}

elag_status elag_be_to_host(elag_backend *b, void *dst_host, const void *src, size_t bytes)
{
    ELAG_TRY(check_copy("to_host", dst_host, src, bytes));
    return b->to_host(b, dst_host, src, bytes);
}

elag_status elag_be_copy(elag_backend *b, void *dst, const void *src, size_t bytes)
{
    ELAG_TRY(check_copy("copy", dst, src, bytes));
    return b->copy(b, dst, src, bytes);
}

elag_status elag_be_fill(elag_backend *b, float *x, size_t n, float v)
{
    if (n > 0 && x == NULL) return null_operand("fill", "x");
    return b->fill(b, x, n, v);
}

elag_status elag_be_sync(elag_backend *b)
{
    return b->sync(b);
}

/* ---- capabilities ---- */

static void say(char *why, size_t why_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t why_len, const char *fmt, ...)
{
    if (why == NULL || why_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

elag_support elag_be_supports(elag_backend *b, elag_op op, const elag_op_query *q, char *why,
                              size_t why_len)
{
    static const elag_op_query none; /* all fields 0 */
    if (why && why_len) why[0] = '\0';
    if (q == NULL) q = &none;
    if ((int)op < 0 || op >= ELAG_OP_COUNT) {
        say(why, why_len, "unknown op %d", (int)op);
        return ELAG_SUPPORT_NO;
    }
    /* what sparse_create would refuse on every backend is answered here, once */
    if (op == ELAG_OP_SPARSE_MM) {
        if (q->format != ELAG_SPARSE_FORMAT_CSR && q->format != ELAG_SPARSE_FORMAT_BELL) {
            say(why, why_len, "format '%s' is not sparse (CSR or Blocked-ELL only)",
                elag_sparse_format_name(q->format));
            return ELAG_SUPPORT_NO;
        }
        if (q->format == ELAG_SPARSE_FORMAT_BELL && q->block < 1) {
            say(why, why_len, "Blocked-ELL block size %d", q->block);
            return ELAG_SUPPORT_NO;
        }
        if (q->alg < 0 || q->alg > 3) {
            say(why, why_len, "alg %d (expected 0 = measure, or 1..3)", q->alg);
            return ELAG_SUPPORT_NO;
        }
    }
    return b->supports(b, op, q, why, why_len);
}

/* ---- dense linear algebra ---- */

elag_status elag_be_gemm(elag_backend *b, int trans_a, int trans_b, int m, int n, int k,
                         float alpha, const float *a, int lda, const float *bm, int ldb, float beta,
                         float *c, int ldc)
{
    /* the row stride each stored matrix needs: A is (m, k), or (k, m) stored transposed */
    int min_lda = trans_a ? m : k, min_ldb = trans_b ? k : n;
    if (m < 0 || n < 0 || k < 0)
        return elag_fail(ELAG_ERR_INTERNAL, "gemm: negative size m=%d n=%d k=%d", m, n, k);
    if (lda < (min_lda > 1 ? min_lda : 1) || ldb < (min_ldb > 1 ? min_ldb : 1) ||
        ldc < (n > 1 ? n : 1))
        return elag_fail(ELAG_ERR_INTERNAL,
                         "gemm: row stride too small (lda=%d ldb=%d ldc=%d for m=%d n=%d k=%d "
                         "trans_a=%d trans_b=%d)",
                         lda, ldb, ldc, m, n, k, trans_a, trans_b);
    if (m > 0 && n > 0 && (c == NULL || (k > 0 && (a == NULL || bm == NULL))))
        return null_operand("gemm", "an operand");
    return b->gemm(b, trans_a, trans_b, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc);
}

elag_status elag_be_row_sum(elag_backend *b, float *out, const float *x, int rows, int cols)
{
    ELAG_TRY(check_dims("row_sum", rows, cols));
    if (rows > 0 && (out == NULL || (cols > 0 && x == NULL)))
        return null_operand("row_sum", "an operand");
    return b->row_sum(b, out, x, rows, cols);
}

elag_status elag_be_elementwise(elag_backend *b, elag_ew_op op, size_t n, float *y, const float *a,
                                const float *bb, float alpha)
{
    int reads_b = 0;
    switch (op) {
    case ELAG_EW_RELU:
    case ELAG_EW_AXPY:
    case ELAG_EW_SCALE:
        break;
    case ELAG_EW_RELU_BACKWARD:
    case ELAG_EW_MUL:
        reads_b = 1;
        break;
    default:
        return elag_fail(ELAG_ERR_INTERNAL, "elementwise: unknown op %d", (int)op);
    }
    if (n > 0 && (y == NULL || a == NULL || (reads_b && bb == NULL)))
        return elag_fail(ELAG_ERR_INTERNAL, "elementwise: op %d is missing an operand", (int)op);
    return b->elementwise(b, op, n, y, a, bb, alpha);
}

elag_status elag_be_transpose(elag_backend *b, float *dst, const float *src, int batch, int rows,
                              int cols, int inner)
{
    if (batch < 0 || rows < 0 || cols < 0 || inner < 0)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "transpose: negative size batch=%d rows=%d cols=%d inner=%d", batch, rows,
                         cols, inner);
    size_t bytes = (size_t)batch * (size_t)rows * (size_t)cols * (size_t)inner * sizeof(float);
    if (bytes == 0) return b->transpose(b, dst, src, batch, rows, cols, inner);
    if (dst == NULL || src == NULL) return null_operand("transpose", "dst or src");
    /* the contract: dst and src do not overlap (a block would be read after it was written) */
    uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
    if (d < s + bytes && s < d + bytes)
        return elag_fail(ELAG_ERR_INTERNAL, "transpose: dst and src overlap");
    return b->transpose(b, dst, src, batch, rows, cols, inner);
}

elag_status elag_be_xent(elag_backend *b, const float *logits, const int32_t *labels, int rows,
                         int cols, float *dlogits, float *stats)
{
    ELAG_TRY(check_dims("xent", rows, cols));
    if (rows > 0 && cols == 0) /* a caller's bug, not a bad label */
        return elag_fail(ELAG_ERR_INTERNAL, "xent: %d rows of 0 classes", rows);
    if (stats == NULL) return null_operand("xent", "stats");
    if (rows > 0 && (logits == NULL || labels == NULL))
        return null_operand("xent", "logits or labels");
    return b->xent(b, logits, labels, rows, cols, dlogits, stats);
}

elag_status elag_be_gather_rows(elag_backend *b, float *dst, const float *src, const int32_t *idx,
                                int rows, int cols)
{
    ELAG_TRY(check_dims("gather_rows", rows, cols));
    if (rows > 0 && cols > 0 && (dst == NULL || src == NULL || idx == NULL))
        return null_operand("gather_rows", "an operand");
    return b->gather_rows(b, dst, src, idx, rows, cols);
}

elag_status elag_be_gather_i32(elag_backend *b, int32_t *dst, const int32_t *src,
                               const int32_t *idx, int rows)
{
    ELAG_TRY(check_dims("gather_i32", rows, 1));
    if (rows > 0 && (dst == NULL || src == NULL || idx == NULL))
        return null_operand("gather_i32", "an operand");
    return b->gather_i32(b, dst, src, idx, rows);
}

/* ---- initialisation, optimizers, pruning ---- */

elag_status elag_be_init_uniform(elag_backend *b, float *x, size_t n, float lo, float hi,
                                 uint64_t seed, uint64_t stream)
{
    if (n > 0 && x == NULL) return null_operand("init_uniform", "x");
    return b->init_uniform(b, x, n, lo, hi, seed, stream);
}

elag_status elag_be_sgd_step(elag_backend *b, float *w, const float *g, float *v, const float *mask,
                             size_t n, float lr, float momentum, float weight_decay, int nesterov)
{
    if (n > 0 && (w == NULL || g == NULL || v == NULL))
        return null_operand("sgd_step", "w, g or v");
    return b->sgd_step(b, w, g, v, mask, n, lr, momentum, weight_decay, nesterov);
}

elag_status elag_be_adamw_step(elag_backend *b, float *w, const float *g, float *m, float *v,
                               const float *mask, size_t n, float lr, float beta1, float beta2,
                               float eps, float weight_decay, int t)
{
    if (t < 1) return elag_fail(ELAG_ERR_INTERNAL, "adamw_step: step t=%d, must be >= 1", t);
    if (n > 0 && (w == NULL || g == NULL || m == NULL || v == NULL))
        return null_operand("adamw_step", "w, g, m or v");
    return b->adamw_step(b, w, g, m, v, mask, n, lr, beta1, beta2, eps, weight_decay, t);
}

elag_status elag_be_score_magnitude(elag_backend *b, float *score, const float *w,
                                    const float *mask, size_t n)
{
    if (n > 0 && (score == NULL || w == NULL)) return null_operand("score_magnitude", "score or w");
    return b->score_magnitude(b, score, w, mask, n);
}

elag_status elag_be_mask_select(elag_backend *b, float *mask, const float *score, size_t n,
                                size_t k)
{
    if (k > n) return elag_fail(ELAG_ERR_INTERNAL, "mask_select: k=%zu > n=%zu", k, n);
    if (n > 0 && (mask == NULL || score == NULL))
        return null_operand("mask_select", "mask or score");
    return b->mask_select(b, mask, score, n, k);
}

elag_status elag_be_count_nonzero(elag_backend *b, const float *x, size_t n, size_t *out_host)
{
    if (out_host == NULL) return null_operand("count_nonzero", "out_host");
    if (n > 0 && x == NULL) return null_operand("count_nonzero", "x");
    return b->count_nonzero(b, x, n, out_host);
}

/* ---- layers ---- */

elag_status elag_be_im2col(elag_backend *b, float *col, const float *x, int C, int N, int n0,
                           int nb, const elag_window *g)
{
    ELAG_TRY(check_slice("im2col", C, N, n0, nb, g));
    if (C > 0 && nb > 0 && (col == NULL || x == NULL)) return null_operand("im2col", "col or x");
    return b->im2col(b, col, x, C, N, n0, nb, g);
}

elag_status elag_be_col2im(elag_backend *b, float *dx, const float *col, int C, int N, int n0,
                           int nb, const elag_window *g)
{
    ELAG_TRY(check_slice("col2im", C, N, n0, nb, g));
    if (C > 0 && nb > 0 && (dx == NULL || col == NULL)) return null_operand("col2im", "dx or col");
    return b->col2im(b, dx, col, C, N, n0, nb, g);
}

/* The conv ops: a slice of samples, O output channels, and a stride-1 window whose padding
 * is narrower than its kernel (so the gradient for x is a convolution of dy padded by
 * kh-1-ph, kw-1-pw). */
static elag_status check_conv(const char *op, int C, int O, int N, int n0, int nb,
                              const elag_window *g)
{
    ELAG_TRY(check_slice(op, C, N, n0, nb, g));
    if (O < 0) return elag_fail(ELAG_ERR_INTERNAL, "%s: negative size O=%d", op, O);
    if (g->sh != 1 || g->sw != 1 || g->ph >= g->kh || g->pw >= g->kw)
        return elag_fail(ELAG_ERR_INTERNAL,
                         "%s: stride %dx%d, padding %dx%d with kernel %dx%d (a direct "
                         "convolution needs stride 1 and padding below the kernel)",
                         op, g->sh, g->sw, g->ph, g->pw, g->kh, g->kw);
    return ELAG_OK;
}

size_t elag_conv_work_floats(int C, int O, int nb, const elag_window *g)
{
    if (C < 0 || O < 0 || nb < 0 || g == NULL) return 0;
    size_t in = (size_t)C * ((size_t)g->H + 2 * (size_t)g->ph) * ((size_t)g->W + 2 * (size_t)g->pw);
    size_t out = (size_t)O * ((size_t)g->H + (size_t)g->kh - 1) * ((size_t)g->W + (size_t)g->kw - 1);
    return (in > out ? in : out) * (size_t)nb + 16;
}

elag_status elag_be_conv_forward(elag_backend *b, float *y, const float *x, const float *w, int C,
                                 int O, int N, int n0, int nb, const elag_window *g, float *work)
{
    ELAG_TRY(check_conv("conv_forward", C, O, N, n0, nb, g));
    if (O == 0 || nb == 0) return ELAG_OK;
    if (y == NULL || work == NULL || (C > 0 && (x == NULL || w == NULL)))
        return null_operand("conv_forward", "y, x, w or work");
    return b->conv_forward(b, y, x, w, C, O, N, n0, nb, g, work);
}

elag_status elag_be_conv_backward_data(elag_backend *b, float *dx, const float *dy,
                                       const float *w, int C, int O, int N, int n0, int nb,
                                       const elag_window *g, float *work)
{
    ELAG_TRY(check_conv("conv_backward_data", C, O, N, n0, nb, g));
    if (C == 0 || nb == 0) return ELAG_OK;
    if (dx == NULL || work == NULL || (O > 0 && (dy == NULL || w == NULL)))
        return null_operand("conv_backward_data", "dx, dy, w or work");
    return b->conv_backward_data(b, dx, dy, w, C, O, N, n0, nb, g, work);
}

elag_status elag_be_conv_backward_filter(elag_backend *b, float *dw, const float *dy,
                                         const float *x, int C, int O, int N, int n0, int nb,
                                         const elag_window *g, float beta, float *work)
{
    ELAG_TRY(check_conv("conv_backward_filter", C, O, N, n0, nb, g));
    if (beta != 0.0f && beta != 1.0f)
        return elag_fail(ELAG_ERR_INTERNAL, "conv_backward_filter: beta %g (0 or 1 only)",
                         (double)beta);
    if (C == 0 || O == 0) return ELAG_OK;
    if (dw == NULL || (nb > 0 && (dy == NULL || x == NULL || work == NULL)))
        return null_operand("conv_backward_filter", "dw, dy, x or work");
    return b->conv_backward_filter(b, dw, dy, x, C, O, N, n0, nb, g, beta, work);
}

elag_status elag_be_pool_forward(elag_backend *b, elag_pool_mode mode, float *y, int32_t *argmax,
                                 const float *x, int planes, const elag_window *g)
{
    ELAG_TRY(check_pool("pool_forward", mode, argmax, planes, g));
    if (planes > 0 && (y == NULL || x == NULL)) return null_operand("pool_forward", "y or x");
    return b->pool_forward(b, mode, y, argmax, x, planes, g);
}

elag_status elag_be_pool_backward(elag_backend *b, elag_pool_mode mode, float *dx, const float *dy,
                                  const int32_t *argmax, int planes, const elag_window *g)
{
    ELAG_TRY(check_pool("pool_backward", mode, argmax, planes, g));
    if (planes > 0 && (dx == NULL || dy == NULL)) return null_operand("pool_backward", "dx or dy");
    return b->pool_backward(b, mode, dx, dy, argmax, planes, g);
}

elag_status elag_be_batchnorm_forward(elag_backend *b, int flags, float *y, const float *x,
                                      int C, int L, const float *gamma, const float *beta,
                                      float *run_mean, float *run_var, float momentum, float eps,
                                      float *save_mean, float *save_invstd)
{
    ELAG_TRY(check_dims("batchnorm_forward", C, L));
    if (flags & ~(ELAG_BN_TRAINING | ELAG_BN_RELU))
        return elag_fail(ELAG_ERR_INTERNAL, "batchnorm_forward: unknown flags %#x", flags);
    const int training = (flags & ELAG_BN_TRAINING) != 0;
    /* L == 0: no samples, nothing read or written (the contract's statistics need one) */
    if (C > 0 && L > 0 &&
        (y == NULL || x == NULL || gamma == NULL || beta == NULL || run_mean == NULL ||
         run_var == NULL || (training && (save_mean == NULL || save_invstd == NULL))))
        return null_operand("batchnorm_forward", "an operand");
    return b->batchnorm_forward(b, flags, y, x, C, L, gamma, beta, run_mean, run_var, momentum,
                                eps, save_mean, save_invstd);
}

elag_status elag_be_batchnorm_backward(elag_backend *b, float *dx, float *dgamma, float *dbeta,
                                       const float *dy, const float *x, int C, int L,
                                       const float *gamma, const float *save_mean,
                                       const float *save_invstd)
{
    ELAG_TRY(check_dims("batchnorm_backward", C, L));
    /* dgamma and dbeta are written, and the saved statistics read, even when L == 0 */
    if (C > 0 && (dgamma == NULL || dbeta == NULL || gamma == NULL || save_mean == NULL ||
                  save_invstd == NULL || (L > 0 && (dx == NULL || dy == NULL || x == NULL))))
        return null_operand("batchnorm_backward", "an operand");
    return b->batchnorm_backward(b, dx, dgamma, dbeta, dy, x, C, L, gamma, save_mean, save_invstd);
}

elag_status elag_be_dropout_forward(elag_backend *b, float *y, float *keep, const float *x,
                                    size_t n, float p, uint64_t seed, uint64_t stream,
                                    uint64_t offset)
{
    if (!(p >= 0.0f && p < 1.0f)) /* written so that NaN fails too */
        return elag_fail(ELAG_ERR_INTERNAL, "dropout_forward: p=%g is outside [0, 1)", (double)p);
    if (n > 0 && (y == NULL || keep == NULL || x == NULL))
        return null_operand("dropout_forward", "y, keep or x");
    return b->dropout_forward(b, y, keep, x, n, p, seed, stream, offset);
}

/* ---- sparse inference ---- */

elag_status elag_be_sparse_create(elag_backend *b, const elag_sparse_host *a,
                                  const elag_sparse_opts *opts, elag_sparse_dev **out)
{
    if (out == NULL) return null_operand("sparse_create", "out");
    *out = NULL;
    if (a == NULL || opts == NULL) return null_operand("sparse_create", "the matrix or opts");
    if (a->format != ELAG_SPARSE_FORMAT_CSR && a->format != ELAG_SPARSE_FORMAT_BELL)
        return elag_fail(ELAG_ERR_USAGE,
                         "sparse_create: format '%s' is not sparse (CSR or Blocked-ELL only)",
                         elag_sparse_format_name(a->format));
    if (opts->max_n < 1)
        return elag_fail(ELAG_ERR_USAGE, "sparse_create: max_n %d (must be >= 1)", opts->max_n);
    if (opts->alg < 0 || opts->alg > 3)
        return elag_fail(ELAG_ERR_USAGE, "sparse_create: alg %d (expected 0 = measure, or 1..3)",
                         opts->alg);
    /* every index is read by some kernel: a bad one would read out of bounds (on the GPU,
     * a fault that poisons the context) */
    ELAG_TRY(elag_sparse_validate(a, "sparse_create"));
    return b->sparse_create(b, a, opts, out);
}

void elag_be_sparse_destroy(elag_backend *b, elag_sparse_dev *a)
{
    if (a != NULL) b->sparse_destroy(b, a);
}

/* What sparse_mm and sparse_mm_tiled ask of a product: a matrix, 0 <= n <= max_n, and the
 * operands that n columns of it need. */
static elag_status check_sparse_product(const char *op, const elag_sparse_dev *a, const float *x,
                                        int n, const float *y)
{
    if (a == NULL) return elag_fail(ELAG_ERR_INTERNAL, "%s: no matrix", op);
    const elag_sparse_head *h = (const elag_sparse_head *)a; /* its first member */
    if (n < 0 || n > h->max_n)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: n = %d outside [0, max_n = %d]", op, n, h->max_n);
    if (n > 0 && ((h->rows > 0 && y == NULL) || (h->cols > 0 && x == NULL)))
        return null_operand(op, "x or y");
    return ELAG_OK;
}

elag_status elag_be_sparse_mm(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                              const float *bias, int relu, float *y)
{
    ELAG_TRY(check_sparse_product("sparse_mm", a, x, n, y));
    return b->sparse_mm(b, a, x, n, bias, relu, y);
}

int elag_be_sparse_tile(elag_backend *b, const elag_sparse_dev *a)
{
    return a ? b->sparse_tile(b, a) : 0;
}

elag_status elag_be_sparse_mm_tiled(elag_backend *b, elag_sparse_dev *a, const float *x, int n,
                                    const float *bias, int relu, float *y)
{
    ELAG_TRY(check_sparse_product("sparse_mm_tiled", a, x, n, y));
    const int t = elag_be_sparse_tile(b, a);
    if (t <= 0) return elag_fail(ELAG_ERR_INTERNAL, "sparse_mm_tiled: no tiled product here");
    if (n % t != 0)
        return elag_fail(ELAG_ERR_INTERNAL, "sparse_mm_tiled: n = %d not a multiple of %d", n, t);
    return b->sparse_mm_tiled(b, a, x, n, bias, relu, y);
}

elag_status elag_be_sparse_chain_tiled(elag_backend *b, const elag_tiled_link *links, int nlinks,
                                       const float *x, float *xt, int n, int in, float *out)
{
    if (nlinks < 1 || links == NULL)
        return elag_fail(ELAG_ERR_INTERNAL, "sparse_chain_tiled: no links");
    const int t = elag_be_sparse_tile(b, links[0].a);
    if (t <= 0) return elag_fail(ELAG_ERR_INTERNAL, "sparse_chain_tiled: no tiled product here");
    if (n % t != 0)
        return elag_fail(ELAG_ERR_INTERNAL, "sparse_chain_tiled: n = %d not a multiple of %d", n,
                         t);
    int cols = in;
    for (int i = 0; i < nlinks; i++) {
        const elag_tiled_link *k = &links[i];
        ELAG_TRY(check_sparse_product("sparse_chain_tiled", k->a, i ? links[i - 1].y : xt, n,
                                      k->y));
        const elag_sparse_head *h = (const elag_sparse_head *)k->a;
        if (elag_be_sparse_tile(b, k->a) != t || h->cols != cols)
            return elag_fail(ELAG_ERR_INTERNAL,
                             "sparse_chain_tiled: link %d takes %d inputs (tile %d), not %d "
                             "(tile %d)",
                             i, h->cols, elag_be_sparse_tile(b, k->a), cols, t);
        cols = h->rows;
    }
    if (n > 0 && (x == NULL || out == NULL)) return null_operand("sparse_chain_tiled", "x or out");
    if (n == 0) return ELAG_OK;
    return b->sparse_chain_tiled(b, links, nlinks, x, xt, n, in, out);
}

elag_status elag_be_bias_relu_rows(elag_backend *b, float *y, const float *bias, int rows, int n,
                                   int relu)
{
    if (rows < 0 || n < 0)
        return elag_fail(ELAG_ERR_INTERNAL, "bias_relu_rows: bad shape %d x %d", rows, n);
    if (rows > 0 && n > 0 && y == NULL) return null_operand("bias_relu_rows", "y");
    return b->bias_relu_rows(b, y, bias, rows, n, relu);
}

/* ---- sparse training ---- */

static const elag_sparse_pattern_head *pattern_head(const elag_sparse_pattern *p)
{
    return (const elag_sparse_pattern_head *)p; /* its first member */
}

int64_t elag_sparse_pattern_nnz(const elag_sparse_pattern *p)
{
    ELAG_ASSERT(p != NULL);
    return pattern_head(p)->nnz;
}

elag_status elag_be_sparse_pattern_create(elag_backend *b, const float *mask, int rows, int cols,
                                          int max_n, elag_sparse_pattern **out)
{
    if (out == NULL) return null_operand("sparse_pattern_create", "out");
    *out = NULL;
    ELAG_TRY(check_dims("sparse_pattern_create", rows, cols));
    if (max_n < 1)
        return elag_fail(ELAG_ERR_INTERNAL, "sparse_pattern_create: max_n %d (must be >= 1)",
                         max_n);
    if (mask == NULL && rows > 0 && cols > 0) return null_operand("sparse_pattern_create", "mask");
    return b->sparse_pattern_create(b, mask, rows, cols, max_n, out);
}

void elag_be_sparse_pattern_destroy(elag_backend *b, elag_sparse_pattern *p)
{
    if (p != NULL) b->sparse_pattern_destroy(b, p);
}

/* A values array is needed when the pattern keeps anything; a dense one when W has entries. */
static elag_status check_pattern(const char *op, const elag_sparse_pattern *p, const void *vals,
                                 const void *dense)
{
    if (p == NULL) return elag_fail(ELAG_ERR_INTERNAL, "%s: no pattern", op);
    const elag_sparse_pattern_head *h = pattern_head(p);
    if (h->nnz > 0 && (vals == NULL || dense == NULL)) return null_operand(op, "an operand");
    return ELAG_OK;
}

elag_status elag_be_sparse_gather(elag_backend *b, const elag_sparse_pattern *p,
                                  const float *dense, float *vals)
{
    ELAG_TRY(check_pattern("sparse_gather", p, vals, dense));
    return b->sparse_gather(b, p, dense, vals);
}

elag_status elag_be_sparse_scatter(elag_backend *b, const elag_sparse_pattern *p,
                                   const float *vals, float *dense)
{
    ELAG_TRY(check_pattern("sparse_scatter", p, vals, dense));
    return b->sparse_scatter(b, p, vals, dense);
}

elag_status elag_be_sparse_values_set(elag_backend *b, elag_sparse_pattern *p, const float *vals)
{
    ELAG_TRY(check_pattern("sparse_values_set", p, vals, vals));
    return b->sparse_values_set(b, p, vals);
}

/* n in [0, max_n], and the operands a product of that width reads and writes. */
static elag_status check_product(const char *op, const elag_sparse_pattern *p, int n, int in_rows,
                                 const void *in, int out_rows, const void *out)
{
    if (p == NULL) return elag_fail(ELAG_ERR_INTERNAL, "%s: no pattern", op);
    const elag_sparse_pattern_head *h = pattern_head(p);
    if (n < 0 || n > h->max_n)
        return elag_fail(ELAG_ERR_INTERNAL, "%s: n = %d outside [0, max_n = %d]", op, n,
                         h->max_n);
    if (n > 0 && ((in_rows > 0 && in == NULL) || (out_rows > 0 && out == NULL)))
        return null_operand(op, "an operand");
    return ELAG_OK;
}

elag_status elag_be_sparse_pattern_mm(elag_backend *b, elag_sparse_pattern *p, int trans,
                                      const float *x, int n, float *y)
{
    if (trans != 0 && trans != 1)
        return elag_fail(ELAG_ERR_INTERNAL, "sparse_pattern_mm: trans %d (expected 0 or 1)",
                         trans);
    const int rows = p ? pattern_head(p)->rows : 0, cols = p ? pattern_head(p)->cols : 0;
    ELAG_TRY(check_product("sparse_pattern_mm", p, n, trans ? rows : cols, x, trans ? cols : rows,
                           y));
    return b->sparse_pattern_mm(b, p, trans, x, n, y);
}

elag_status elag_be_sddmm(elag_backend *b, const elag_sparse_pattern *p, const float *dy,
                          const float *x, int n, float *out)
{
    ELAG_TRY(check_product("sddmm", p, n, 0, NULL, 0, NULL));
    const elag_sparse_pattern_head *h = pattern_head(p);
    if (h->nnz > 0 && (out == NULL || (n > 0 && (dy == NULL || x == NULL))))
        return null_operand("sddmm", "dy, x or out");
    return b->sddmm(b, p, dy, x, n, out);
}
