/*
 * The CUDA backend's sparse ops (sparse_create, sparse_mm, sparse_destroy, bias_relu_rows)
 * against a double-precision dense reference computed here, and against the cpu-ref
 * backend's sparse ops when that backend has them: CSR with each cuSPARSE algorithm
 * (ALG1..3 and the measured default), Blocked-ELL with B = 16 and 32 on shapes that are
 * not whole blocks, odd shapes, empty rows, sparsity 0 / 0.5 / 0.9 / 0.99 / 1.0, bias and
 * ReLU on and off, and a batch that changes between calls. The host matrices are built
 * here by plain loops, independently of host/sparse/'s conversions.
 * CSR runs in FP32 and is held to the FP32 tolerances of testutil.h. Blocked-ELL runs on
 * tensor cores, in TF32 (supports() says so; the test checks it does), and is held per
 * output to the TF32 bound of support/tf32.h: elag_tf32_dot_rel(cols) times
 * sum_c |w[r][c]| |x[c][j]|, plus the epilogue's rounding (derived there).
 * Tests that need a GPU start with cr_skip_test("no CUDA device").
 */
#include "backend/backend.h"
#include "sparse/sparse.h"
#include "support/testutil.h"
#include "support/tf32.h"

#include <criterion/criterion.h>

#ifdef ELAG_HAVE_CUDA

#include "backend/philox.h"
#include "cuda/cuda_backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static elag_backend *ref, *cu;

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define NEED_CUDA()                                                                                \
    do {                                                                                           \
        if (elag_cuda_count_devices() == 0) cr_skip_test("no CUDA device");                        \
        OK(elag_cuda_backend_init(0, &cu));                                                        \
    } while (0)

static void setup(void) { OK(elag_cpu_ref_backend_init(&ref)); }
static void teardown(void)
{
    elag_backend_free(cu);
    elag_backend_free(ref);
    cu = ref = NULL;
}

TestSuite(cuda_sparse, .init = setup, .fini = teardown);

static const double sparsities[] = {0.0, 0.5, 0.9, 0.99, 1.0};
#define N_SPARSITIES (sizeof sparsities / sizeof *sparsities)

static void *xmalloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    cr_assert_not_null(p);
    return p;
}

/* Dense (rows, cols) weights: uniform in [-1, 1), each entry pruned with probability
 * `sparsity`, and every 5th row empty. With block > 0 whole block x block tiles are pruned
 * instead (the structure Blocked-ELL is for). */
static float *make_weights(int rows, int cols, double sparsity, int block, uint64_t seed)
{
    float *w = xmalloc(sizeof(float) * (size_t)rows * cols);
    int bc = block > 0 ? (cols + block - 1) / block : 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            uint64_t key = block > 0 ? (uint64_t)(r / block) * bc + c / block : i;
            float u = elag_philox_uniform(seed, 1, key);
            int keep = sparsity < 1.0 && (double)u >= sparsity && r % 5 != 3;
            w[i] = keep ? -1.0f + 2.0f * elag_philox_uniform(seed, 2, i) : 0.0f;
        }
    return w;
}

static void host_free(elag_sparse_host *a)
{
    free(a->indptr), free(a->indices), free(a->values), free(a->col_ind);
    memset(a, 0, sizeof *a);
}

static void to_csr(const float *w, int rows, int cols, elag_sparse_host *a)
{
    memset(a, 0, sizeof *a);
    a->format = ELAG_SPARSE_FORMAT_CSR, a->rows = rows, a->cols = cols;
    a->indptr = xmalloc(sizeof(int32_t) * ((size_t)rows + 1));
    size_t nnz = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++) nnz += w[i] != 0.0f;
    a->indices = xmalloc(sizeof(int32_t) * nnz), a->values = xmalloc(sizeof(float) * nnz);
    nnz = 0;
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++)
            if (w[(size_t)r * cols + c] != 0.0f)
                a->indices[nnz] = c, a->values[nnz++] = w[(size_t)r * cols + c];
        a->indptr[r + 1] = (int32_t)nnz;
    }
    a->nnz = (int64_t)nnz;
}

/* Blocked-ELL in cuSPARSE's layout (sparse.h): blocks that hold a nonzero are kept, every
 * block row padded to the widest with -1 columns and zero values. */
static void to_bell(const float *w, int rows, int cols, int B, elag_sparse_host *a)
{
    memset(a, 0, sizeof *a);
    a->format = ELAG_SPARSE_FORMAT_BELL, a->rows = rows, a->cols = cols, a->block = B;
    int br = (rows + B - 1) / B, bc = (cols + B - 1) / B, width = 0;
    char *live = xmalloc((size_t)br * bc + 1);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            if (w[(size_t)r * cols + c] != 0.0f) live[(size_t)(r / B) * bc + c / B] = 1, a->nnz++;
    for (int i = 0; i < br; i++) {
        int k = 0;
        for (int j = 0; j < bc; j++) k += live[(size_t)i * bc + j];
        width = k > width ? k : width;
    }
    a->block_rows = br, a->ell_cols = width;
    a->col_ind = xmalloc(sizeof(int32_t) * (size_t)br * width);
    size_t vcols = (size_t)width * B;
    a->values = xmalloc(sizeof(float) * (size_t)br * B * vcols);
    for (int i = 0; i < br; i++) {
        int k = 0;
        for (int j = 0; j < bc; j++) {
            if (!live[(size_t)i * bc + j]) continue;
            a->col_ind[(size_t)i * width + k] = j;
            for (int rr = 0; rr < B; rr++)
                for (int cc = 0; cc < B; cc++) {
                    int r = i * B + rr, c = j * B + cc;
                    if (r < rows && c < cols)
                        a->values[(size_t)r * vcols + (size_t)k * B + cc] = w[(size_t)r * cols + c];
                }
            k++;
        }
        for (; k < width; k++) a->col_ind[(size_t)i * width + k] = -1;
    }
    free(live);
}

/* want(rows, n) = W x (+ bias) (ReLU), in double, rounded once; abs_sum(rows, n) (may be
 * NULL) = sum_c |w[r][c]| |x[c][j]|, what the TF32 bound scales with. */
static void reference(const float *w, const float *x, const float *bias, int relu, int rows,
                      int cols, int n, float *want, double *abs_sum)
{
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) {
            double s = 0.0, a = 0.0;
            for (int c = 0; c < cols; c++) {
                double t = (double)w[(size_t)r * cols + c] * (double)x[(size_t)c * n + j];
                s += t;
                a += fabs(t);
            }
            if (bias) s += (double)bias[r];
            if (relu && !(s > 0.0)) s = 0.0;
            want[(size_t)r * n + j] = (float)s;
            if (abs_sum) abs_sum[(size_t)r * n + j] = a;
        }
}

/* Blocked-ELL: |got - want| <= elag_tf32_out_bound per output (support/tf32.h), printing
 * the first mismatches; returns how many outputs break it. ReLU only shrinks errors. */
static int compare_tf32(const char *what, const float *got, const float *want,
                        const double *abs_sum, const float *bias, int rows, int cols, int n)
{
    int bad = 0;
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < n; j++) {
            size_t i = (size_t)r * n + j;
            double bound = elag_tf32_out_bound(cols, abs_sum[i], want[i], bias ? bias[r] : 0.0);
            double err = fabs((double)got[i] - (double)want[i]);
            if (err <= bound) continue; /* NaN fails */
            if (bad++ < 5)
                fprintf(stderr, "%s: [%d][%d] got %.9g want %.9g, |err| %.3g > TF32 bound %.3g\n",
                        what, r, j, got[i], want[i], err, bound);
        }
    return bad;
}

/* Runs a on the CUDA backend for each n in ns (one matrix, batches changing between calls)
 * and compares with the dense reference and, when cpu-ref has sparse ops, with it. */
static void check_product(const char *tag, const float *w, const elag_sparse_host *a, int alg,
                          int max_n, const int *ns, int n_ns, uint64_t seed)
{
    int rows = a->rows, cols = a->cols;
    float *x = xmalloc(sizeof(float) * (size_t)cols * max_n + 4);
    float *bias = xmalloc(sizeof(float) * (size_t)rows + 4);
    float *want = xmalloc(sizeof(float) * (size_t)rows * max_n + 4);
    float *got = xmalloc(sizeof(float) * (size_t)rows * max_n + 4);
    double *abs_sum = xmalloc(sizeof(double) * (size_t)rows * max_n + 4);
    elag_test_fill_uniform(x, (size_t)cols * max_n, -1.0f, 1.0f, seed);
    elag_test_fill_uniform(bias, (size_t)rows, -0.5f, 0.5f, seed + 1);
    void *dx = NULL, *dy = NULL, *db = NULL;
    OK(cu->alloc(cu, sizeof(float) * (size_t)cols * max_n, &dx));
    OK(cu->alloc(cu, sizeof(float) * (size_t)rows * max_n, &dy));
    OK(cu->alloc(cu, sizeof(float) * (size_t)rows, &db));
    OK(cu->to_device(cu, db, bias, sizeof(float) * (size_t)rows));
    elag_sparse_opts opts = {.max_n = max_n, .alg = alg};
    elag_sparse_dev *d = NULL, *rd = NULL;
    OK(cu->sparse_create(cu, a, &opts, &d));
    /* Blocked-ELL is TF32 on this device (tensor cores), CSR FP32: supports() must say so,
     * since infer --verify and bench pick their tolerance and labels from that answer */
    int tf32 = a->format == ELAG_SPARSE_FORMAT_BELL;
    elag_op_query q = {.format = a->format, .block = a->block, .alg = alg, .max_n = max_n};
    cr_expect_eq(elag_be_supports(cu, ELAG_OP_SPARSE_MM, &q, NULL, 0),
                 tf32 ? ELAG_SUPPORT_TF32 : ELAG_SUPPORT_FP32, "%s: supports()", tag);
    int with_ref = ref->sparse_create != NULL && ref->sparse_mm != NULL;
    if (with_ref) OK(ref->sparse_create(ref, a, &opts, &rd));
    for (int t = 0; t < n_ns; t++) {
        int n = ns[t], relu = t % 2, use_bias = t % 3 != 2;
        /* x for this batch: (cols, n), the first cols * n floats of x */
        OK(cu->to_device(cu, dx, x, sizeof(float) * (size_t)cols * n));
        OK(cu->fill(cu, dy, (size_t)rows * n, NAN)); /* y is written, never read */
        OK(cu->sparse_mm(cu, d, dx, n, use_bias ? db : NULL, relu, dy));
        OK(cu->to_host(cu, got, dy, sizeof(float) * (size_t)rows * n));
        const float *hb = use_bias ? bias : NULL;
        reference(w, x, hb, relu, rows, cols, n, want, abs_sum);
        char what[160];
        snprintf(what, sizeof what, "%s %dx%d n=%d alg=%d bias=%d relu=%d", tag, rows, cols, n,
                 alg, use_bias, relu);
        if (tf32)
            cr_expect_eq(compare_tf32(what, got, want, abs_sum, hb, rows, cols, n), 0, "%s", what);
        else
            cr_expect_eq(elag_test_compare(what, got, want, (size_t)rows * n, ELAG_TOL_CUDA_ABS,
                                           ELAG_TOL_CUDA_REL),
                         0, "%s", what);
        if (with_ref) {
            OK(ref->sparse_mm(ref, rd, x, n, hb, relu, want));
            if (tf32) /* cpu-ref is FP32 with double sums: within the same bound of exact */
                cr_expect_eq(compare_tf32(what, got, want, abs_sum, hb, rows, cols, n), 0,
                             "%s vs cpu-ref", what);
            else
                cr_expect_eq(elag_test_compare(what, got, want, (size_t)rows * n,
                                               ELAG_TOL_CUDA_ABS, ELAG_TOL_CUDA_REL),
                             0, "%s vs cpu-ref", what);
        }
    }
    cu->sparse_destroy(cu, d);
    if (with_ref) ref->sparse_destroy(ref, rd);
    cu->release(cu, dx), cu->release(cu, dy), cu->release(cu, db);
    free(x), free(bias), free(want), free(got), free(abs_sum);
}

static void csr_case(int rows, int cols, int n, uint64_t seed)
{
    const int ns[] = {n, n > 1 ? n - 1 : 1, n, 1};
    for (size_t s = 0; s < N_SPARSITIES; s++) {
        float *w = make_weights(rows, cols, sparsities[s], 0, seed + s);
        elag_sparse_host a;
        to_csr(w, rows, cols, &a);
        char tag[48];
        snprintf(tag, sizeof tag, "csr s=%.2f", sparsities[s]);
        for (int alg = 0; alg <= 3; alg++) check_product(tag, w, &a, alg, n, ns, 4, seed + 10 + s);
        host_free(&a);
        free(w);
    }
}

Test(cuda_sparse, csr_each_alg_odd_shapes)
{
    NEED_CUDA();
    csr_case(7, 96, 40, 100);
    csr_case(33, 17, 65, 200);
    csr_case(100, 300, 37, 300);
    csr_case(1, 1, 1, 400);
}

static void bell_case(int rows, int cols, int n, int B, int block_mask, uint64_t seed)
{
    const int ns[] = {n, 3, n};
    for (size_t s = 0; s < N_SPARSITIES; s++) {
        float *w = make_weights(rows, cols, sparsities[s], block_mask ? B : 0, seed + s);
        elag_sparse_host a;
        to_bell(w, rows, cols, B, &a);
        char tag[64];
        snprintf(tag, sizeof tag, "bell:%d%s s=%.2f", B, block_mask ? " block-mask" : "",
                 sparsities[s]);
        check_product(tag, w, &a, 0, n, ns, 3, seed + 20 + s);
        host_free(&a);
        free(w);
    }
}

Test(cuda_sparse, bell_16_and_32_padded_shapes)
{
    NEED_CUDA();
    for (int B = 16; B <= 32; B *= 2) {
        bell_case(130, 200, 37, B, 0, 500); /* neither dimension whole blocks */
        bell_case(130, 200, 37, B, 1, 600);
        bell_case(64, 96, 16, B, 1, 700); /* whole blocks: no padding path */
        bell_case(7, 40, 5, B, 0, 800);   /* smaller than one block */
    }
}

Test(cuda_sparse, bias_relu_rows_odd_shapes)
{
    NEED_CUDA();
    const int shapes[][2] = {{37, 129}, {1, 1}, {257, 10}, {0, 7}, {1000, 33}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], n = shapes[s][1];
        size_t total = (size_t)rows * n;
        float *y = xmalloc(sizeof(float) * total), *bias = xmalloc(sizeof(float) * rows + 4);
        float *want = xmalloc(sizeof(float) * total), *got = xmalloc(sizeof(float) * total);
        elag_test_fill_uniform(y, total, -1.0f, 1.0f, 900 + s);
        elag_test_fill_uniform(bias, (size_t)rows, -0.5f, 0.5f, 950 + s);
        if (total > 2) y[0] = -0.0f, y[1] = NAN;
        void *dy = NULL, *db = NULL;
        OK(cu->alloc(cu, sizeof(float) * total, &dy));
        OK(cu->alloc(cu, sizeof(float) * (size_t)rows, &db));
        OK(cu->to_device(cu, db, bias, sizeof(float) * (size_t)rows));
        for (int mode = 0; mode < 4; mode++) {
            int relu = mode & 1;
            const float *hb = (mode & 2) ? bias : NULL;
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < n; j++) {
                    float v = y[(size_t)r * n + j] + (hb ? hb[r] : 0.0f);
                    want[(size_t)r * n + j] = relu ? (v > 0.0f ? v : 0.0f) : v;
                }
            if (!hb && !relu) memcpy(want, y, sizeof(float) * total); /* keeps -0 and NaN */
            OK(cu->to_device(cu, dy, y, sizeof(float) * total));
            OK(cu->bias_relu_rows(cu, dy, hb ? db : NULL, rows, n, relu));
            OK(cu->to_host(cu, got, dy, sizeof(float) * total));
            char what[96];
            snprintf(what, sizeof what, "bias_relu_rows %dx%d bias=%d relu=%d", rows, n, hb != NULL,
                     relu);
            /* one float add and a select: bit-identical */
            cr_expect_eq(elag_test_bit_diffs(what, got, want, total), 0, "%s", what);
            if (ref->bias_relu_rows) {
                float *r2 = xmalloc(sizeof(float) * total);
                memcpy(r2, y, sizeof(float) * total);
                OK(ref->bias_relu_rows(ref, r2, hb, rows, n, relu));
                cr_expect_eq(elag_test_bit_diffs(what, got, r2, total), 0,
                             "%s vs cpu-ref", what);
                free(r2);
            }
        }
        cu->release(cu, dy), cu->release(cu, db);
        free(y), free(bias), free(want), free(got);
    }
}

Test(cuda_sparse, bad_arguments_are_errors)
{
    NEED_CUDA();
    float w[6] = {1, 0, 2, 0, 0, 3};
    elag_sparse_host a;
    to_csr(w, 2, 3, &a);
    elag_sparse_dev *d = NULL;
    elag_sparse_opts bad_n = {.max_n = 0, .alg = 0}, bad_alg = {.max_n = 4, .alg = 4};
    cr_expect_eq(elag_be_sparse_create(cu, &a, &bad_n, &d), ELAG_ERR_USAGE);
    cr_expect_null(d);
    cr_expect_eq(elag_be_sparse_create(cu, &a, &bad_alg, &d), ELAG_ERR_USAGE);
    elag_sparse_host dense = {.format = ELAG_SPARSE_FORMAT_DENSE, .rows = 2, .cols = 3, .dense = w};
    elag_sparse_opts opts = {.max_n = 4, .alg = 1};
    cr_expect_eq(elag_be_sparse_create(cu, &dense, &opts, &d), ELAG_ERR_USAGE);
    OK(elag_be_sparse_create(cu, &a, &opts, &d));
    void *dx = NULL, *dy = NULL;
    OK(cu->alloc(cu, sizeof(float) * 3 * 8, &dx));
    OK(cu->alloc(cu, sizeof(float) * 2 * 8, &dy));
    cr_expect_eq(elag_be_sparse_mm(cu, d, dx, 5, NULL, 0, dy), ELAG_ERR_INTERNAL, "n > max_n");
    OK(cu->sparse_mm(cu, d, dx, 0, NULL, 0, dy)); /* n = 0: nothing */
    cu->sparse_destroy(cu, d);
    cu->sparse_destroy(cu, NULL);
    cu->release(cu, dx), cu->release(cu, dy);
    host_free(&a);
}

#else /* !ELAG_HAVE_CUDA */

Test(cuda_sparse, built_without_cuda) { cr_skip_test("built without CUDA"); }

#endif
