/*
 * The argument checks of the backend wrappers (host/backend/backend_ops.c), one disjunct at
 * a time: each call breaks exactly one part of an op's contract and must be refused with
 * the status the wrapper promises (ELAG_ERR_INTERNAL for a caller's bug, ELAG_ERR_USAGE or
 * ELAG_ERR_INPUT for sparse_create's options and matrix) and a message naming the op. The
 * calls go to a backend whose table is all NULL, so a call the wrapper wrongly lets through
 * crashes the test instead of passing by luck; the few calls that must get through go to
 * cpu-ref. tests/test_ops_*.c cover the same wrappers on real backends, a case per op; this
 * file is the exhaustive list of refusals.
 */
#include "backend/backend.h"
#include "sparse/sparse.h"

#include <criterion/criterion.h>

#include <limits.h>
#include <stdint.h>
#include <string.h>

static elag_backend blank; /* every entry NULL: reaching one is a crash */
static float F[64];        /* a stand-in operand: never read, the wrapper refuses first */
static int32_t I[64];

#define B (&blank)

/* `call` must return `want` with a message that contains `what` (the op's name). */
#define REFUSE_AS(want, what, call)                                                                \
    do {                                                                                           \
        elag_status got_ = (call);                                                                 \
        cr_expect_eq(got_, (want), "%s returned %s, want %s (%s)", #call, elag_status_name(got_), \
                     elag_status_name(want), elag_last_error());                                   \
        cr_expect(strstr(elag_last_error(), (what)) != NULL, "%s: message '%s' does not name %s", \
                  #call, elag_last_error(), (what));                                               \
    } while (0)
#define REFUSE(what, call) REFUSE_AS(ELAG_ERR_INTERNAL, what, call)

/* a resolved 4x4 window, kernel 3, stride 1, padding 1: output 4x4 */
static elag_window win(void)
{
    elag_window g = {.H = 4, .W = 4, .kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1};
    cr_assert_eq(elag_window_resolve(&g), ELAG_OK);
    return g;
}

Test(cov_backend_ops, memory)
{
    REFUSE("alloc", elag_be_alloc(B, 16, NULL));
    REFUSE("to_device", elag_be_to_device(B, NULL, F, 4));
    REFUSE("to_device", elag_be_to_device(B, F, NULL, 4));
    REFUSE("to_host", elag_be_to_host(B, NULL, F, 4));
    REFUSE("copy", elag_be_copy(B, F, NULL, 4));
    REFUSE("fill", elag_be_fill(B, NULL, 3, 1.0f));
    elag_be_release(B, NULL); /* NULL does nothing (a blank entry would crash) */
}

Test(cov_backend_ops, supports)
{
    char why[128];
    elag_op_query q = {.format = ELAG_SPARSE_FORMAT_CSR};
    cr_expect_eq(elag_be_supports(B, (elag_op)-1, &q, why, sizeof why), ELAG_SUPPORT_NO);
    cr_expect(strstr(why, "unknown op -1") != NULL, "why: %s", why);
    cr_expect_eq(elag_be_supports(B, ELAG_OP_COUNT, NULL, why, sizeof why), ELAG_SUPPORT_NO);
    /* NULL query = all zeros = the dense format, which is not sparse */
    cr_expect_eq(elag_be_supports(B, ELAG_OP_SPARSE_MM, NULL, why, sizeof why), ELAG_SUPPORT_NO);
    cr_expect(strstr(why, "not sparse") != NULL, "why: %s", why);
    q = (elag_op_query){.format = ELAG_SPARSE_FORMAT_BELL, .block = 0};
    cr_expect_eq(elag_be_supports(B, ELAG_OP_SPARSE_MM, &q, why, sizeof why), ELAG_SUPPORT_NO);
    cr_expect(strstr(why, "block size 0") != NULL, "why: %s", why);
    q = (elag_op_query){.format = ELAG_SPARSE_FORMAT_CSR, .alg = 4};
    cr_expect_eq(elag_be_supports(B, ELAG_OP_SPARSE_MM, &q, why, sizeof why), ELAG_SUPPORT_NO);
    cr_expect(strstr(why, "alg 4") != NULL, "why: %s", why);
    q.alg = -1;
    cr_expect_eq(elag_be_supports(B, ELAG_OP_SPARSE_MM, &q, NULL, 0), ELAG_SUPPORT_NO);
    /* no room for a reason: answered all the same */
    cr_expect_eq(elag_be_supports(B, ELAG_OP_SPARSE_MM, &q, why, 0), ELAG_SUPPORT_NO);
    /* a good query reaches the backend: cpu-ref does CSR, and BELL with a block */
    elag_backend *ref = NULL;
    cr_assert_eq(elag_backend_open("cpu-ref", 1, &ref, NULL, 0), ELAG_OK);
    q = (elag_op_query){.format = ELAG_SPARSE_FORMAT_BELL, .block = 2, .alg = 0};
    cr_expect_neq(elag_be_supports(ref, ELAG_OP_SPARSE_MM, &q, why, sizeof why), ELAG_SUPPORT_NO,
                  "cpu-ref refuses Blocked-ELL: %s", why);
    elag_backend_free(ref);
}

Test(cov_backend_ops, dense)
{
    REFUSE("gemm", elag_be_gemm(B, 0, 0, 2, -1, 2, 1, F, 2, F, 2, 0, F, 2));
    REFUSE("gemm", elag_be_gemm(B, 0, 0, 2, 2, -1, 1, F, 2, F, 2, 0, F, 2));
    REFUSE("gemm", elag_be_gemm(B, 1, 1, 3, 2, 2, 1, F, 2, F, 2, 0, F, 2)); /* lda < m */
    REFUSE("gemm", elag_be_gemm(B, 0, 1, 2, 3, 2, 1, F, 2, F, 1, 0, F, 3)); /* ldb < k */
    REFUSE("gemm", elag_be_gemm(B, 0, 0, 2, 3, 2, 1, F, 2, F, 3, 0, F, 2)); /* ldc < n */
    REFUSE("gemm", elag_be_gemm(B, 0, 0, 2, 2, 2, 1, F, 2, F, 2, 0, NULL, 2));
    REFUSE("gemm", elag_be_gemm(B, 0, 0, 2, 2, 2, 1, NULL, 2, F, 2, 0, F, 2));
    REFUSE("gemm", elag_be_gemm(B, 0, 0, 2, 2, 2, 1, F, 2, NULL, 2, 0, F, 2));
    REFUSE("row_sum", elag_be_row_sum(B, NULL, F, 2, 2));
    REFUSE("row_sum", elag_be_row_sum(B, F, NULL, 2, 2));
    REFUSE("elementwise", elag_be_elementwise(B, (elag_ew_op)9, 2, F, F, F, 1));
    REFUSE("elementwise", elag_be_elementwise(B, ELAG_EW_RELU, 2, NULL, F, NULL, 1));
    REFUSE("elementwise", elag_be_elementwise(B, ELAG_EW_AXPY, 2, F, NULL, NULL, 1));
    REFUSE("elementwise", elag_be_elementwise(B, ELAG_EW_MUL, 2, F, F, NULL, 1));
    REFUSE("elementwise", elag_be_elementwise(B, ELAG_EW_RELU_BACKWARD, 2, F, F, NULL, 1));
    REFUSE("transpose", elag_be_transpose(B, NULL, F, 1, 2, 2, 1));
    REFUSE("transpose", elag_be_transpose(B, F, NULL, 1, 2, 2, 1));
    REFUSE("overlap", elag_be_transpose(B, F + 1, F, 1, 2, 2, 1));
    REFUSE("overlap", elag_be_transpose(B, F, F + 3, 1, 2, 2, 1));
    REFUSE("0 classes", elag_be_xent(B, F, I, 2, 0, F, F));
    REFUSE("stats", elag_be_xent(B, F, I, 2, 2, F, NULL));
    REFUSE("xent", elag_be_xent(B, NULL, I, 2, 2, F, F));
    REFUSE("xent", elag_be_xent(B, F, NULL, 2, 2, F, F));
    REFUSE("gather_rows", elag_be_gather_rows(B, NULL, F, I, 2, 2));
    REFUSE("gather_rows", elag_be_gather_rows(B, F, NULL, I, 2, 2));
    REFUSE("gather_rows", elag_be_gather_rows(B, F, F, NULL, 2, 2));
    REFUSE("gather_i32", elag_be_gather_i32(B, NULL, I, I, 2));
    REFUSE("gather_i32", elag_be_gather_i32(B, I, NULL, I, 2));
    REFUSE("gather_i32", elag_be_gather_i32(B, I, I, NULL, 2));
}

Test(cov_backend_ops, train)
{
    REFUSE("init_uniform", elag_be_init_uniform(B, NULL, 2, 0, 1, 1, 0));
    REFUSE("sgd_step", elag_be_sgd_step(B, NULL, F, F, NULL, 2, 0.1f, 0, 0, 0));
    REFUSE("sgd_step", elag_be_sgd_step(B, F, NULL, F, NULL, 2, 0.1f, 0, 0, 0));
    REFUSE("sgd_step", elag_be_sgd_step(B, F, F, NULL, NULL, 2, 0.1f, 0, 0, 0));
    REFUSE("t=0", elag_be_adamw_step(B, F, F, F, F, NULL, 2, 0.1f, 0.9f, 0.99f, 1e-8f, 0, 0));
    REFUSE("adamw_step", elag_be_adamw_step(B, NULL, F, F, F, NULL, 2, 0.1f, 0.9f, 0.99f, 1e-8f, 0, 1));
    REFUSE("adamw_step", elag_be_adamw_step(B, F, NULL, F, F, NULL, 2, 0.1f, 0.9f, 0.99f, 1e-8f, 0, 1));
    REFUSE("adamw_step", elag_be_adamw_step(B, F, F, NULL, F, NULL, 2, 0.1f, 0.9f, 0.99f, 1e-8f, 0, 1));
    REFUSE("adamw_step", elag_be_adamw_step(B, F, F, F, NULL, NULL, 2, 0.1f, 0.9f, 0.99f, 1e-8f, 0, 1));
    REFUSE("score_magnitude", elag_be_score_magnitude(B, NULL, F, NULL, 2));
    REFUSE("score_magnitude", elag_be_score_magnitude(B, F, NULL, NULL, 2));
    REFUSE("mask_select", elag_be_mask_select(B, NULL, F, 2, 1));
    REFUSE("mask_select", elag_be_mask_select(B, F, NULL, 2, 1));
    size_t nz = 0;
    REFUSE("out_host", elag_be_count_nonzero(B, F, 2, NULL));
    REFUSE("count_nonzero", elag_be_count_nonzero(B, NULL, 2, &nz));
    REFUSE("p=1", elag_be_dropout_forward(B, F, F, F, 2, 1.0f, 1, 0, 0));
    REFUSE("p=-0.5", elag_be_dropout_forward(B, F, F, F, 2, -0.5f, 1, 0, 0));
    REFUSE("dropout_forward", elag_be_dropout_forward(B, NULL, F, F, 2, 0.5f, 1, 0, 0));
    REFUSE("dropout_forward", elag_be_dropout_forward(B, F, NULL, F, 2, 0.5f, 1, 0, 0));
    REFUSE("dropout_forward", elag_be_dropout_forward(B, F, F, NULL, 2, 0.5f, 1, 0, 0));
}

Test(cov_backend_ops, windows)
{
    elag_window g = win(), bad;
    REFUSE("no window geometry", elag_be_im2col(B, F, F, 1, 1, 0, 1, NULL));
    /* each field of the geometry out of range, one at a time */
    int *field[] = {&bad.H, &bad.W, &bad.kh, &bad.kw, &bad.sh, &bad.sw};
    for (size_t i = 0; i < sizeof field / sizeof *field; i++) {
        bad = g;
        *field[i] = 0;
        REFUSE("not a valid window", elag_be_im2col(B, F, F, 1, 1, 0, 1, &bad));
    }
    bad = g, bad.ph = -1;
    REFUSE("not a valid window", elag_be_im2col(B, F, F, 1, 1, 0, 1, &bad));
    bad = g, bad.pw = -1;
    REFUSE("not a valid window", elag_be_im2col(B, F, F, 1, 1, 0, 1, &bad));
    /* kernel larger than the padded input, and outputs that were not resolved */
    bad = g, bad.kh = 7;
    REFUSE("window not resolved", elag_be_im2col(B, F, F, 1, 1, 0, 1, &bad));
    bad = g, bad.kw = 7;
    REFUSE("window not resolved", elag_be_im2col(B, F, F, 1, 1, 0, 1, &bad));
    bad = g, bad.oh = 3;
    REFUSE("window not resolved", elag_be_col2im(B, F, F, 1, 1, 0, 1, &bad));
    bad = g, bad.ow = 5;
    REFUSE("window not resolved", elag_be_col2im(B, F, F, 1, 1, 0, 1, &bad));
    /* the sample slice */
    REFUSE("im2col: bad sizes", elag_be_im2col(B, F, F, -1, 1, 0, 1, &g));
    REFUSE("im2col: bad sizes", elag_be_im2col(B, F, F, 1, -1, 0, 0, &g));
    REFUSE("im2col: bad sizes", elag_be_im2col(B, F, F, 1, 2, -1, 1, &g));
    REFUSE("im2col: bad sizes", elag_be_im2col(B, F, F, 1, 2, 0, -1, &g));
    REFUSE("col2im: bad sizes", elag_be_col2im(B, F, F, 1, 2, 1, 2, &g));
    REFUSE("im2col", elag_be_im2col(B, NULL, F, 1, 2, 0, 2, &g));
    REFUSE("im2col", elag_be_im2col(B, F, NULL, 1, 2, 0, 2, &g));
    REFUSE("col2im", elag_be_col2im(B, NULL, F, 1, 2, 0, 2, &g));
    REFUSE("col2im", elag_be_col2im(B, F, NULL, 1, 2, 0, 2, &g));
}

Test(cov_backend_ops, conv)
{
    elag_window g = win(), s2 = g;
    s2.sw = 2;
    s2.ow = (s2.W + 2 * s2.pw - s2.kw) / 2 + 1;
    elag_window wide = g; /* padding not below the kernel */
    wide.pw = 3, wide.ow = wide.W + 2 * 3 - wide.kw + 1;
    elag_window tall = g;
    tall.ph = 3, tall.oh = tall.H + 2 * 3 - tall.kh + 1;
    elag_window s2h = g;
    s2h.sh = 2, s2h.oh = (s2h.H + 2 * s2h.ph - s2h.kh) / 2 + 1;
    REFUSE("conv_forward: bad sizes", elag_be_conv_forward(B, F, F, F, -1, 1, 1, 0, 1, &g, F));
    REFUSE("negative size O=-1", elag_be_conv_forward(B, F, F, F, 1, -1, 1, 0, 1, &g, F));
    REFUSE("direct convolution", elag_be_conv_forward(B, F, F, F, 1, 1, 1, 0, 1, &s2, F));
    REFUSE("direct convolution", elag_be_conv_forward(B, F, F, F, 1, 1, 1, 0, 1, &s2h, F));
    REFUSE("direct convolution", elag_be_conv_forward(B, F, F, F, 1, 1, 1, 0, 1, &wide, F));
    REFUSE("direct convolution", elag_be_conv_forward(B, F, F, F, 1, 1, 1, 0, 1, &tall, F));
    /* nothing to compute: accepted without reaching the (blank) backend */
    cr_expect_eq(elag_be_conv_forward(B, NULL, NULL, NULL, 1, 0, 1, 0, 1, &g, NULL), ELAG_OK);
    cr_expect_eq(elag_be_conv_forward(B, NULL, NULL, NULL, 1, 1, 1, 0, 0, &g, NULL), ELAG_OK);
    REFUSE("conv_forward", elag_be_conv_forward(B, NULL, F, F, 1, 1, 1, 0, 1, &g, F));
    REFUSE("conv_forward", elag_be_conv_forward(B, F, F, F, 1, 1, 1, 0, 1, &g, NULL));
    REFUSE("conv_forward", elag_be_conv_forward(B, F, NULL, F, 1, 1, 1, 0, 1, &g, F));
    REFUSE("conv_forward", elag_be_conv_forward(B, F, F, NULL, 1, 1, 1, 0, 1, &g, F));

    REFUSE("conv_backward_data", elag_be_conv_backward_data(B, F, F, F, 1, 1, 1, 0, 1, &s2, F));
    cr_expect_eq(elag_be_conv_backward_data(B, NULL, NULL, NULL, 0, 1, 1, 0, 1, &g, NULL), ELAG_OK);
    cr_expect_eq(elag_be_conv_backward_data(B, NULL, NULL, NULL, 1, 1, 1, 0, 0, &g, NULL), ELAG_OK);
    REFUSE("conv_backward_data", elag_be_conv_backward_data(B, NULL, F, F, 1, 1, 1, 0, 1, &g, F));
    REFUSE("conv_backward_data", elag_be_conv_backward_data(B, F, F, F, 1, 1, 1, 0, 1, &g, NULL));
    REFUSE("conv_backward_data", elag_be_conv_backward_data(B, F, NULL, F, 1, 1, 1, 0, 1, &g, F));
    REFUSE("conv_backward_data", elag_be_conv_backward_data(B, F, F, NULL, 1, 1, 1, 0, 1, &g, F));

    REFUSE("conv_backward_filter",
           elag_be_conv_backward_filter(B, F, F, F, 1, 1, 1, 0, 1, &s2, 0, F));
    REFUSE("beta 0.5", elag_be_conv_backward_filter(B, F, F, F, 1, 1, 1, 0, 1, &g, 0.5f, F));
    cr_expect_eq(elag_be_conv_backward_filter(B, NULL, NULL, NULL, 0, 1, 1, 0, 1, &g, 1, NULL),
                 ELAG_OK);
    cr_expect_eq(elag_be_conv_backward_filter(B, NULL, NULL, NULL, 1, 0, 1, 0, 1, &g, 1, NULL),
                 ELAG_OK);
    REFUSE("conv_backward_filter",
           elag_be_conv_backward_filter(B, NULL, F, F, 1, 1, 1, 0, 1, &g, 0, F));
    REFUSE("conv_backward_filter",
           elag_be_conv_backward_filter(B, F, NULL, F, 1, 1, 1, 0, 1, &g, 0, F));
    REFUSE("conv_backward_filter",
           elag_be_conv_backward_filter(B, F, F, NULL, 1, 1, 1, 0, 1, &g, 0, F));
    REFUSE("conv_backward_filter",
           elag_be_conv_backward_filter(B, F, F, F, 1, 1, 1, 0, 1, &g, 0, NULL));

    /* the work size: bad arguments ask for nothing; else the larger of the padded input
     * and the padded output gradient, per sample, plus slack */
    cr_expect_eq(elag_conv_work_floats(-1, 1, 1, &g), 0);
    cr_expect_eq(elag_conv_work_floats(1, -1, 1, &g), 0);
    cr_expect_eq(elag_conv_work_floats(1, 1, -1, &g), 0);
    cr_expect_eq(elag_conv_work_floats(1, 1, 1, NULL), 0);
    cr_expect_eq(elag_conv_work_floats(2, 1, 3, &g), (size_t)2 * 6 * 6 * 3 + 16);
    cr_expect_eq(elag_conv_work_floats(1, 3, 2, &g), (size_t)3 * 6 * 6 * 2 + 16);
}

Test(cov_backend_ops, pool)
{
    elag_window g = win();
    REFUSE("unknown pooling mode 7", elag_be_pool_forward(B, (elag_pool_mode)7, F, I, F, 1, &g));
    REFUSE("negative size planes=-1", elag_be_pool_forward(B, ELAG_POOL_AVG, F, NULL, F, -1, &g));
    REFUSE("argmax", elag_be_pool_forward(B, ELAG_POOL_MAX, F, NULL, F, 1, &g));
    REFUSE("no window geometry", elag_be_pool_forward(B, ELAG_POOL_AVG, F, NULL, F, 1, NULL));
    elag_window huge = {.H = 65536, .W = 65536, .kh = 1, .kw = 1, .sh = 1, .sw = 1};
    cr_assert_eq(elag_window_resolve(&huge), ELAG_OK);
    REFUSE("int32 argmax", elag_be_pool_forward(B, ELAG_POOL_MAX, F, I, F, 1, &huge));
    REFUSE("pool_forward", elag_be_pool_forward(B, ELAG_POOL_AVG, NULL, NULL, F, 1, &g));
    REFUSE("pool_forward", elag_be_pool_forward(B, ELAG_POOL_AVG, F, NULL, NULL, 1, &g));
    REFUSE("pool_backward", elag_be_pool_backward(B, ELAG_POOL_MAX, F, F, NULL, 1, &g));
    REFUSE("pool_backward", elag_be_pool_backward(B, ELAG_POOL_AVG, NULL, F, NULL, 1, &g));
    REFUSE("pool_backward", elag_be_pool_backward(B, ELAG_POOL_AVG, F, NULL, NULL, 1, &g));
}

Test(cov_backend_ops, batchnorm)
{
    const int T = ELAG_BN_TRAINING;
    REFUSE("unknown flags", elag_be_batchnorm_forward(B, 8, F, F, 2, 4, F, F, F, F, 0.1f, 1e-5f, F, F));
    /* every operand of a training step, NULL one at a time */
    for (int which = 0; which < 8; which++) {
        float *o[8];
        for (int j = 0; j < 8; j++) o[j] = which == j ? NULL : F;
        REFUSE("batchnorm_forward", elag_be_batchnorm_forward(B, T, o[0], o[1], 2, 4, o[2], o[3],
                                                              o[4], o[5], 0.1f, 1e-5f, o[6], o[7]));
    }
    /* evaluation needs no saved statistics, but still the rest */
    REFUSE("batchnorm_forward", elag_be_batchnorm_forward(B, ELAG_BN_RELU, F, F, 2, 4, F, F, F,
                                                          NULL, 0.1f, 1e-5f, NULL, NULL));
    REFUSE("batchnorm_backward", elag_be_batchnorm_backward(B, F, F, F, F, F, -1, 4, F, F, F));
    for (int which = 0; which < 8; which++) {
        float *o[8];
        for (int j = 0; j < 8; j++) o[j] = which == j ? NULL : F;
        REFUSE("batchnorm_backward", elag_be_batchnorm_backward(B, o[0], o[1], o[2], o[3], o[4], 2,
                                                                4, o[5], o[6], o[7]));
    }
}

Test(cov_backend_ops, sparse_inference)
{
    elag_sparse_dev *out = (elag_sparse_dev *)F;
    int32_t indptr[3] = {0, 1, 2}, indices[2] = {0, 1};
    float values[2] = {1, 2};
    elag_sparse_host csr = {.format = ELAG_SPARSE_FORMAT_CSR, .rows = 2, .cols = 2, .nnz = 2,
                            .indptr = indptr, .indices = indices, .values = values};
    elag_sparse_host dense = {.format = ELAG_SPARSE_FORMAT_DENSE, .rows = 2, .cols = 2};
    elag_sparse_opts opts = {.max_n = 4, .alg = 0};
    REFUSE("sparse_create", elag_be_sparse_create(B, &csr, &opts, NULL));
    REFUSE("sparse_create", elag_be_sparse_create(B, NULL, &opts, &out));
    cr_expect_null(out, "the output is cleared before any refusal");
    REFUSE("sparse_create", elag_be_sparse_create(B, &csr, NULL, &out));
    REFUSE_AS(ELAG_ERR_USAGE, "not sparse", elag_be_sparse_create(B, &dense, &opts, &out));
    opts.max_n = 0;
    REFUSE_AS(ELAG_ERR_USAGE, "max_n 0", elag_be_sparse_create(B, &csr, &opts, &out));
    opts = (elag_sparse_opts){.max_n = 4, .alg = 4};
    REFUSE_AS(ELAG_ERR_USAGE, "alg 4", elag_be_sparse_create(B, &csr, &opts, &out));
    opts.alg = -1;
    REFUSE_AS(ELAG_ERR_USAGE, "alg -1", elag_be_sparse_create(B, &csr, &opts, &out));
    /* a column index out of range is bad data, refused before any backend sees it */
    opts.alg = 0;
    indices[1] = 2;
    elag_status st = elag_be_sparse_create(B, &csr, &opts, &out);
    cr_expect_eq(st, ELAG_ERR_INPUT, "bad index gave %s (%s)", elag_status_name(st),
                 elag_last_error());
    elag_be_sparse_destroy(B, NULL);

    /* the product checks read only the common head of a prepared matrix */
    elag_sparse_head h = {.rows = 2, .cols = 3, .max_n = 4};
    elag_sparse_dev *a = (elag_sparse_dev *)&h;
    REFUSE("no matrix", elag_be_sparse_mm(B, NULL, F, 1, NULL, 0, F));
    REFUSE("n = -1", elag_be_sparse_mm(B, a, F, -1, NULL, 0, F));
    REFUSE("n = 5", elag_be_sparse_mm(B, a, F, 5, NULL, 0, F));
    REFUSE("sparse_mm", elag_be_sparse_mm(B, a, F, 2, NULL, 0, NULL));
    REFUSE("sparse_mm", elag_be_sparse_mm(B, a, NULL, 2, NULL, 0, F));
    REFUSE("bias_relu_rows", elag_be_bias_relu_rows(B, NULL, F, 2, 2, 1));
}

Test(cov_backend_ops, sparse_training)
{
    elag_sparse_pattern *out = (elag_sparse_pattern *)F;
    REFUSE("sparse_pattern_create", elag_be_sparse_pattern_create(B, F, 2, 2, 4, NULL));
    REFUSE("sparse_pattern_create", elag_be_sparse_pattern_create(B, F, -1, 2, 4, &out));
    cr_expect_null(out, "the output is cleared before any refusal");
    REFUSE("max_n 0", elag_be_sparse_pattern_create(B, F, 2, 2, 0, &out));
    REFUSE("mask", elag_be_sparse_pattern_create(B, NULL, 2, 2, 4, &out));
    elag_be_sparse_pattern_destroy(B, NULL);

    elag_sparse_pattern_head h = {.rows = 2, .cols = 3, .max_n = 4, .nnz = 3};
    elag_sparse_pattern *p = (elag_sparse_pattern *)&h;
    cr_expect_eq(elag_sparse_pattern_nnz(p), 3);
    REFUSE("sparse_gather: no pattern", elag_be_sparse_gather(B, NULL, F, F));
    REFUSE("sparse_gather", elag_be_sparse_gather(B, p, NULL, F));
    REFUSE("sparse_gather", elag_be_sparse_gather(B, p, F, NULL));
    REFUSE("sparse_scatter", elag_be_sparse_scatter(B, p, NULL, F));
    REFUSE("sparse_values_set", elag_be_sparse_values_set(B, p, NULL));
    REFUSE("trans 2", elag_be_sparse_pattern_mm(B, p, 2, F, 1, F));
    REFUSE("sparse_pattern_mm: no pattern", elag_be_sparse_pattern_mm(B, NULL, 0, F, 1, F));
    REFUSE("n = -1", elag_be_sparse_pattern_mm(B, p, 0, F, -1, F));
    REFUSE("n = 5", elag_be_sparse_pattern_mm(B, p, 1, F, 5, F));
    REFUSE("sparse_pattern_mm", elag_be_sparse_pattern_mm(B, p, 0, NULL, 1, F));
    REFUSE("sparse_pattern_mm", elag_be_sparse_pattern_mm(B, p, 1, F, 1, NULL));
    REFUSE("sddmm: no pattern", elag_be_sddmm(B, NULL, F, F, 1, F));
    REFUSE("sddmm", elag_be_sddmm(B, p, F, F, 9, F));
    REFUSE("sddmm", elag_be_sddmm(B, p, F, F, 1, NULL));
    REFUSE("sddmm", elag_be_sddmm(B, p, NULL, F, 1, F));
    REFUSE("sddmm", elag_be_sddmm(B, p, F, NULL, 1, F));
}
