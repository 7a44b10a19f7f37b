/*
 * Every op of the backend table (host/backend/backend.h), table-driven in the manner of
 * ggml's tests/test-backend-ops.cpp. One case per op (CASES below) builds its inputs from
 * fixed seeds, runs them on "cpu-ref" (the specification) and on the backend under test,
 * and compares: bit for bit where the op promises it or only moves data, else with the
 * named tolerances of tests/support/testutil.h, whose absolute part is normalised by the
 * size of the terms a reduction sums. Each case is one Criterion test per backend:
 *   ops_ref::<case>   a second cpu-ref against the first, and against the formulas of
 *                     backend.h computed here by hand
 *   ops_cpu::<case>   the fast CPU path, 3 threads (so OpenMP splits unevenly)
 *   ops_cuda::<case>  cuda:0; skipped visibly ("no CUDA device") without one
 * Every buffer an op sees lives in the backend's memory with sentinel words on both sides,
 * which must be intact afterwards (no overruns); read-only inputs must come back unchanged;
 * outputs the op overwrites start as NaN, so an unwritten entry shows. Shapes are odd
 * (partial tiles, uneven thread splits, windows whose stride exceeds the kernel, a kernel
 * the size of the plane, padding wider than the kernel); zero sizes must be no-ops and
 * negative sizes ELAG_ERR_INTERNAL on every backend, and calls every backend must refuse
 * must be refused with the same status everywhere. The refusals go through the wrappers
 * (elag_be_<op>, host/backend/backend_ops.c) on a copy of the backend whose table entries
 * are blanked, so a refusal is proven to come from the one place that checks arguments;
 * the maths goes through each backend's own entries. In-place calls run wherever the
 * contract allows aliasing. The backward ops are checked by finite differences (col2im by the
 * adjoint identity). ops::coverage fails when a table entry has no case.
 */
#include "backend/backend.h"
#include "backend/philox.h"
#include "cpu/cpu_internal.h"
#include "sparse/sparse.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>

#ifdef ELAG_HAVE_CUDA
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_sparse.h"
#endif

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAST_THREADS 3
#define BIG 100003     /* odd, prime, above ELAG_CPU_PAR_MIN: partial blocks everywhere */
#define HUGE_N 1000003 /* mask_select on a realistic layer size */

/* ---- the cases: one per op (and one per gradient check); ops::coverage maps the table ---- */

#define CASES(X)                                                                                   \
    X(table)                                                                                       \
    X(memory)                                                                                      \
    X(supports)                                                                                    \
    X(gemm)                                                                                        \
    X(row_sum)                                                                                     \
    X(elementwise)                                                                                 \
    X(transpose)                                                                                   \
    X(xent)                                                                                        \
    X(gather)                                                                                      \
    X(init_uniform)                                                                                \
    X(sgd_step)                                                                                    \
    X(adamw_step)                                                                                  \
    X(score_magnitude)                                                                             \
    X(mask_select)                                                                                 \
    X(count_nonzero)                                                                               \
    X(im2col)                                                                                      \
    X(col2im)                                                                                      \
    X(col2im_adjoint)                                                                              \
    X(pool_forward)                                                                                \
    X(pool_backward)                                                                               \
    X(pool_gradcheck)                                                                              \
    X(batchnorm_forward)                                                                           \
    X(batchnorm_backward)                                                                          \
    X(batchnorm_gradcheck)                                                                         \
    X(dropout_forward)                                                                             \
    X(dropout_gradcheck)                                                                           \
    X(sparse_mm)                                                                                   \
    X(bias_relu_rows)

#define DECLARE_CASE(c) static void case_##c(void);
CASES(DECLARE_CASE)

typedef void (*op_fn)(void);
#define FIRST_OP offsetof(elag_backend, alloc) /* every member from alloc on is an op */
#define N_OPS ((sizeof(elag_backend) - FIRST_OP) / sizeof(op_fn))

/* Which case tests each table entry (an op may have several: its case and its gradient
 * check). An op added to backend.h without a line here fails ops::coverage. */
#define COVER(op, c) {offsetof(elag_backend, op), #op, #c, case_##c}
static const struct cover {
    size_t off;
    const char *op, *case_name;
    void (*fn)(void);
} covered[] = {
    COVER(alloc, memory),
    COVER(release, memory),
    COVER(to_device, memory),
    COVER(to_host, memory),
    COVER(copy, memory),
    COVER(fill, memory),
    COVER(sync, memory),
    COVER(destroy, table), /* and every test's teardown */
    COVER(supports, supports),
    COVER(gemm, gemm),
    COVER(row_sum, row_sum),
    COVER(elementwise, elementwise),
    COVER(elementwise, dropout_gradcheck),
    COVER(transpose, transpose),
    COVER(xent, xent),
    COVER(gather_rows, gather),
    COVER(gather_i32, gather),
    COVER(init_uniform, init_uniform),
    COVER(sgd_step, sgd_step),
    COVER(adamw_step, adamw_step),
    COVER(score_magnitude, score_magnitude),
    COVER(mask_select, mask_select),
    COVER(count_nonzero, count_nonzero),
    COVER(im2col, im2col),
    COVER(im2col, col2im_adjoint),
    COVER(col2im, col2im),
    COVER(col2im, col2im_adjoint),
    COVER(pool_forward, pool_forward),
    COVER(pool_backward, pool_backward),
    COVER(pool_backward, pool_gradcheck),
    COVER(batchnorm_forward, batchnorm_forward),
    COVER(batchnorm_backward, batchnorm_backward),
    COVER(batchnorm_backward, batchnorm_gradcheck),
    COVER(dropout_forward, dropout_forward),
    COVER(dropout_forward, dropout_gradcheck),
    COVER(sparse_create, sparse_mm),
    COVER(sparse_destroy, sparse_mm),
    COVER(sparse_mm, sparse_mm),
    COVER(bias_relu_rows, bias_relu_rows),
};
#define N_COVERED (sizeof covered / sizeof *covered)

#define CASE_ENTRY(c) {#c, case_##c},
static const struct {
    const char *name;
    void (*fn)(void);
} all_cases[] = {CASES(CASE_ENTRY)};
#define N_CASES (sizeof all_cases / sizeof *all_cases)

static const char *op_name(size_t off)
{
    for (size_t j = 0; j < N_COVERED; j++)
        if (covered[j].off == off) return covered[j].op;
    return "(an op without a case)";
}

/* ---- state of one test: the two backends, tolerances, tracked buffers ---- */

#define GUARD_WORDS 64 /* sentinel words before and after every device buffer */
#define MAX_BUFS 4096
#define MAX_HOST 4096
#define SENTINEL 0x7fa5a5a5u /* a signalling NaN no op computes */
#define GARBAGE 0x7fc0deadu  /* a quiet NaN: what outputs hold before the op writes them */

typedef enum tb_kind { TB_IN, TB_IO, TB_OUT } tb_kind;

typedef struct tbuf {
    elag_backend *be;
    char *base;   /* the allocation: guard, data, guard */
    size_t bytes; /* of data */
    void *orig;   /* TB_IN: host copy; the input must come back unchanged */
    char label[64];
} tbuf;

static struct {
    elag_backend *ref; /* cpu-ref: the specification */
    elag_backend *b;   /* the backend under test */
    double abs, rel;   /* b against ref */
    double habs, hrel; /* results against a formula computed here in double */
    tbuf buf[MAX_BUFS];
    int nbuf;
    void *host[MAX_HOST];
    int nhost;
} T;

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define OKB(be, expr)                                                                              \
    cr_assert_eq((expr), ELAG_OK, "%s: %s: %s", (be)->name, #expr, elag_last_error())

static void teardown(void)
{
    for (int i = 0; i < T.nbuf; i++) {
        T.buf[i].be->release(T.buf[i].be, T.buf[i].base);
        free(T.buf[i].orig);
    }
    for (int i = 0; i < T.nhost; i++) free(T.host[i]);
    if (T.b != T.ref) elag_backend_free(T.b);
    elag_backend_free(T.ref);
    memset(&T, 0, sizeof T);
}

TestSuite(ops_ref, .fini = teardown);
TestSuite(ops_cpu, .fini = teardown);
TestSuite(ops_cuda, .fini = teardown);

/* Opens cpu-ref and the backend under test (a second cpu-ref, cpu or cuda:0). */
static void open_backends(const char *device)
{
    OK(elag_backend_open("cpu-ref", 1, &T.ref, NULL, 0));
    if (strcmp(device, "cuda:0") == 0) {
        if (elag_cuda_device_count() == 0) cr_skip_test("no CUDA device");
        OK(elag_backend_open(device, 1, &T.b, NULL, 0));
        T.abs = ELAG_TOL_CUDA_ABS, T.rel = ELAG_TOL_CUDA_REL;
        T.habs = ELAG_TOL_CUDA_ABS, T.hrel = ELAG_TOL_CUDA_REL;
    } else if (strcmp(device, "cpu") == 0) {
        OK(elag_backend_open(device, FAST_THREADS, &T.b, NULL, 0));
        T.abs = ELAG_TOL_FAST_ABS, T.rel = ELAG_TOL_FAST_REL;
        T.habs = ELAG_TOL_FAST_ABS, T.hrel = ELAG_TOL_FAST_REL;
    } else {
        OK(elag_backend_open(device, 1, &T.b, NULL, 0));
        T.abs = ELAG_TOL_EXACT_ABS, T.rel = ELAG_TOL_EXACT_REL;
        T.habs = ELAG_TOL_FAST_ABS, T.hrel = ELAG_TOL_FAST_REL;
    }
}

/* ---- host buffers (freed at teardown) ---- */

static void *hkeep(void *p)
{
    cr_assert_not_null(p, "out of host memory");
    cr_assert_lt(T.nhost, MAX_HOST, "too many host buffers");
    return T.host[T.nhost++] = p;
}

static float *hbuf(size_t n) { return hkeep(calloc(n ? n : 1, sizeof(float))); }
static int32_t *ibuf(size_t n) { return hkeep(calloc(n ? n : 1, sizeof(int32_t))); }
static double *dbuf(size_t n) { return hkeep(calloc(n ? n : 1, sizeof(double))); }

static float *hrnd(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = hbuf(n);
    elag_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

static float *hdup(const float *x, size_t n)
{
    float *y = hbuf(n);
    if (n) memcpy(y, x, n * sizeof *y);
    return y;
}

/* A 0/1 mask with about `zero_frac` zeros. */
static float *hmask(size_t n, double zero_frac, uint64_t seed)
{
    float *m = hrnd(n, 0.0f, 1.0f, seed);
    for (size_t i = 0; i < n; i++) m[i] = m[i] < zero_frac ? 0.0f : 1.0f;
    return m;
}

static size_t zeros(const float *x, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += x[i] == 0.0f;
    return z;
}

/* ---- device buffers with sentinels ---- */

static void *tnew(elag_backend *be, const void *h, size_t bytes, tb_kind kind, const char *label)
{
    cr_assert_lt(T.nbuf, MAX_BUFS, "too many device buffers");
    cr_assert_eq(bytes % 4, 0);
    const size_t g = GUARD_WORDS * 4, total = bytes + 2 * g;
    uint32_t *img = malloc(total);
    cr_assert_not_null(img);
    for (size_t i = 0; i < total / 4; i++) img[i] = SENTINEL;
    if (kind == TB_OUT)
        for (size_t i = 0; i < bytes / 4; i++) img[GUARD_WORDS + i] = GARBAGE;
    else if (bytes)
        memcpy(img + GUARD_WORDS, h, bytes);
    char *base = NULL;
    OKB(be, be->alloc(be, total, (void **)&base));
    OKB(be, be->to_device(be, base, img, total));
    free(img);
    tbuf *t = &T.buf[T.nbuf++];
    t->be = be, t->base = base, t->bytes = bytes, t->orig = NULL;
    snprintf(t->label, sizeof t->label, "%s", label);
    if (kind == TB_IN) {
        t->orig = malloc(bytes ? bytes : 1);
        cr_assert_not_null(t->orig);
        if (bytes) memcpy(t->orig, h, bytes);
    }
    return base + g;
}

static float *fin(elag_backend *be, const float *h, size_t n, const char *label)
{
    return tnew(be, h, n * 4, TB_IN, label);
}
static float *fio(elag_backend *be, const float *h, size_t n, const char *label)
{
    return tnew(be, h, n * 4, TB_IO, label);
}
static float *fout(elag_backend *be, size_t n, const char *label)
{
    return tnew(be, NULL, n * 4, TB_OUT, label);
}
static int32_t *iin(elag_backend *be, const int32_t *h, size_t n, const char *label)
{
    return tnew(be, h, n * 4, TB_IN, label);
}
static int32_t *iout(elag_backend *be, size_t n, const char *label)
{
    return tnew(be, NULL, n * 4, TB_OUT, label);
}

static tbuf *tfind(const void *d)
{
    for (int i = T.nbuf - 1; i >= 0; i--)
        if ((const char *)d == T.buf[i].base + GUARD_WORDS * 4) return &T.buf[i];
    cr_assert_fail("not a test buffer");
    return NULL;
}

/* Fetches a buffer's whole allocation; fails on a written guard word or a changed input. */
static uint32_t *tfetch(tbuf *t)
{
    size_t total = t->bytes + 2 * GUARD_WORDS * 4;
    uint32_t *img = malloc(total);
    cr_assert_not_null(img);
    OKB(t->be, t->be->to_host(t->be, img, t->base, total));
    OKB(t->be, t->be->sync(t->be));
    size_t words = total / 4, bad = 0, first = 0;
    for (size_t i = 0; i < words; i++) {
        int guard = i < GUARD_WORDS || i >= words - GUARD_WORDS;
        if (guard && img[i] != SENTINEL && bad++ == 0) first = i;
    }
    if (bad) {
        long at = first < GUARD_WORDS ? (long)first - GUARD_WORDS
                                      : (long)(first - GUARD_WORDS - t->bytes / 4);
        cr_expect(0,
                  "%s: %zu sentinel words around '%s' (%zu floats) overwritten, the first %ld %s "
                  "the data (0x%08x)",
                  t->be->name, bad, t->label, t->bytes / 4, at < 0 ? -at : at + 1,
                  at < 0 ? "word(s) before" : "word(s) past the end of", img[first]);
    }
    if (t->orig && memcmp(img + GUARD_WORDS, t->orig, t->bytes) != 0)
        cr_expect(0, "%s: read-only input '%s' was modified", t->be->name, t->label);
    return img;
}

static void tget(void *h, const void *d, size_t bytes)
{
    tbuf *t = tfind(d);
    cr_assert_leq(bytes, t->bytes);
    uint32_t *img = tfetch(t);
    if (bytes) memcpy(h, img + GUARD_WORDS, bytes);
    free(img);
}

static void fget(float *h, const float *d, size_t n) { tget(h, d, n * 4); }
static void iget(int32_t *h, const int32_t *d, size_t n) { tget(h, d, n * 4); }

/* Every buffer of the test: guards intact, inputs unchanged. */
static void tcheck_all(void)
{
    for (int i = 0; i < T.nbuf; i++) free(tfetch(&T.buf[i]));
}

static void run_case(const char *device, void (*fn)(void))
{
    open_backends(device);
    fn();
    tcheck_all();
}

/* ---- comparisons ---- */

/* Bit for bit; elag_test_compare prints the first mismatches, else the first differing
 * bits (a zero's sign, a NaN's payload). */
static int identical_(const char *what, const void *got, const void *want, size_t n)
{
    if (n == 0 || memcmp(got, want, n * 4) == 0) return 1;
    char label[256];
    snprintf(label, sizeof label, "%s: %s", T.b->name, what);
    if (elag_test_compare(label, got, want, n, 0.0, 0.0) == 0) {
        const uint32_t *a = got, *b = want;
        size_t i = 0;
        while (a[i] == b[i]) i++;
        fprintf(stderr, "%s: bits differ at %zu: 0x%08x, want 0x%08x\n", label, i, a[i], b[i]);
    }
    return 0;
}
#define expect_identical(what, got, want, n)                                                       \
    cr_expect(identical_(what, got, want, n), "%s: %s: not bit-identical", T.b->name, what)

static size_t i32_diffs_(const char *what, const int32_t *got, const int32_t *want, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ < 5)
            fprintf(stderr, "%s: %s: mismatch at %zu: got %d, want %d\n", T.b->name, what, i,
                    (int)got[i], (int)want[i]);
    return bad;
}
#define expect_identical_i32(what, got, want, n)                                                   \
    cr_expect_eq(i32_diffs_(what, got, want, n), 0, "%s: %s: int32 entries differ", T.b->name,     \
                 what)

/* Entries outside abs * scale + rel * |want| (scale normalises the absolute bound by the size
 * of the terms a reduction sums); elag_test_compare prints the first ones. */
static size_t outside_(const char *what, const float *got, const float *want, size_t n,
                       double abs, double rel, double scale)
{
    char label[256];
    snprintf(label, sizeof label, "%s: %s", T.b->name, what);
    return elag_test_compare(label, got, want, n, abs * scale, rel);
}
#define expect_within(what, got, want, n, abs, rel, scale)                                         \
    cr_expect_eq(outside_(what, got, want, n, abs, rel, scale), 0,                                 \
                 "%s: %s: entries outside tolerance", T.b->name, what)
/* the backend under test against cpu-ref */
#define expect_close(what, got, want, n, scale)                                                    \
    expect_within(what, got, want, n, T.abs, T.rel, scale)
/* a result against the formula of backend.h computed here */
#define expect_hand(what, got, want, n, scale)                                                     \
    expect_within(what, got, want, n, T.habs, T.hrel, scale)

static float *to_float(const double *x, size_t n)
{
    float *y = hbuf(n);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
}

/* ---- status checks on both backends ---- */

/* A copy of backend `real` with every table entry NULL. A wrapper called with it either
 * refuses the call itself or crashes the test: so a refusal seen through it is the
 * wrapper's, the one place arguments are checked, and no backend has to repeat it. */
static elag_backend blanked(const elag_backend *real)
{
    elag_backend b = *real;
    memset((char *)&b + FIRST_OP, 0, sizeof b - FIRST_OP);
    return b;
}

#define SCRATCH 1024 /* large enough that a call wrongly accepted stays inside */
/* Runs `call`, a call of a wrapper elag_be_<op>(be, ...), on cpu-ref and on the backend under
 * test, as `be` (blanked: the wrapper must refuse before any entry runs), with scratch device
 * buffers df (float) and di (int32) of SCRATCH entries each; both must return `want`. */
#define ALL_RETURN(want, call)                                                                     \
    do {                                                                                           \
        elag_backend *pair_[2] = {T.ref, T.b};                                                     \
        for (int p_ = 0; p_ < 2; p_++) {                                                           \
            float *df = fout(pair_[p_], SCRATCH, "scratch");                                       \
            int32_t *di = iout(pair_[p_], SCRATCH, "scratch i32");                                 \
            elag_backend stub_ = blanked(pair_[p_]), *be = &stub_;                                 \
            (void)df, (void)di;                                                                    \
            elag_status got_ = (call);                                                             \
            cr_expect_eq(got_, (want), "%s: %s returned %s, want %s (%s)", be->name, #call,        \
                         elag_status_name(got_), elag_status_name(want), elag_last_error());       \
        }                                                                                          \
    } while (0)

/* A call every backend must refuse: cpu-ref fails, and the backend under test with the same
 * status (both blanked, as in ALL_RETURN). */
#define ALL_REFUSE(call)                                                                           \
    do {                                                                                           \
        elag_backend *pair_[2] = {T.ref, T.b};                                                     \
        elag_status got_[2];                                                                       \
        for (int p_ = 0; p_ < 2; p_++) {                                                           \
            float *df = fout(pair_[p_], SCRATCH, "scratch");                                       \
            int32_t *di = iout(pair_[p_], SCRATCH, "scratch i32");                                 \
            elag_backend stub_ = blanked(pair_[p_]), *be = &stub_;                                 \
            (void)df, (void)di;                                                                    \
            got_[p_] = (call);                                                                     \
        }                                                                                          \
        cr_expect_neq(got_[0], ELAG_OK, "cpu-ref accepts %s", #call);                              \
        cr_expect_eq(got_[1], got_[0], "%s: %s returned %s, cpu-ref %s", T.b->name, #call,         \
                     elag_status_name(got_[1]), elag_status_name(got_[0]));                        \
    } while (0)

/* ======================================================================================= */
/* ---- the table ---- */

static void case_table(void)
{
    elag_backend *b = T.b;
    for (size_t off = FIRST_OP; off + sizeof(op_fn) <= sizeof(elag_backend); off += sizeof(op_fn)) {
        op_fn f;
        memcpy(&f, (const char *)b + off, sizeof f);
        cr_expect(f != NULL, "%s: %s (offset %zu) is NULL", b->name, op_name(off), off);
    }
    switch (b->kind) {
    case ELAG_DEVICE_CPU_REF:
        cr_expect_str_eq(b->name, "cpu-ref");
        cr_expect_eq(b->threads, 1);
        break;
    case ELAG_DEVICE_CPU:
        cr_expect_str_eq(b->name, "cpu");
        cr_expect_eq(b->threads, FAST_THREADS);
        break;
    case ELAG_DEVICE_CUDA:
        cr_expect_str_eq(b->name, "cuda:0");
        cr_expect_eq(b->device_index, 0);
#ifdef ELAG_HAVE_CUDA
        cr_log_info("device: %s", elag_cuda_device_name(b));
#endif
        break;
    default:
        cr_expect(0, "unknown kind %d", (int)b->kind);
    }
    cr_expect_str_eq(T.ref->name, "cpu-ref");
    cr_expect_eq(T.ref->kind, ELAG_DEVICE_CPU_REF);
}

/* ---- memory ---- */

static void case_memory(void)
{
    elag_backend *b = T.b;
    const size_t n = BIG;
    float *h = hrnd(n, -3.0f, 3.0f, 1), *back = hbuf(n), *want = hbuf(n);
    float *d = NULL, *e = NULL;
    OK(b->alloc(b, n * 4, (void **)&d));
    OK(b->alloc(b, n * 4, (void **)&e));
    if (b->kind != ELAG_DEVICE_CUDA) cr_expect_eq((uintptr_t)d % 64, 0, "alloc is 64-byte aligned");
    OK(b->to_host(b, back, d, n * 4));
    OK(b->sync(b));
    cr_expect_eq(zeros(back, n), n, "alloc is zeroed");
    expect_identical("alloc is +0", back, want, n);
    OK(b->to_device(b, d, h, n * 4));
    OK(b->copy(b, e, d, n * 4));
    OK(b->to_host(b, back, e, n * 4));
    OK(b->sync(b));
    expect_identical("to_device, copy, to_host", back, h, n);
    OK(b->fill(b, e, n - 2, -0.25f)); /* the last two entries stay */
    OK(b->fill(b, e, 0, 1.0f));       /* n = 0 does nothing */
    OK(b->to_host(b, back, e, n * 4));
    OK(b->sync(b));
    for (size_t i = 0; i < n; i++) want[i] = i < n - 2 ? -0.25f : h[i];
    expect_identical("fill", back, want, n);
    OK(b->copy(b, e, d, 0)); /* 0 bytes */
    void *empty = NULL;
    OK(b->alloc(b, 0, &empty));
    if (b->kind != ELAG_DEVICE_CUDA) cr_expect_not_null(empty, "alloc(0) gives a pointer");
    b->release(b, empty);
    b->release(b, NULL);
    /* out of memory: a clean error, and the backend still works */
    void *p = NULL;
    elag_status st = b->alloc(b, (size_t)1 << 52, &p); /* 4 PiB */
    cr_expect_eq(st, ELAG_ERR_NOMEM, "%s: 4 PiB gives %s (%s)", b->name, elag_status_name(st),
                 elag_last_error());
    cr_expect_null(p);
    if (b->kind == ELAG_DEVICE_CUDA)
        cr_expect(strncmp(elag_last_error(), "CUDA out of memory: requested ", 30) == 0, "%s",
                  elag_last_error());
    float one = 1.0f;
    OK(b->fill(b, d, 1, 2.0f));
    OK(b->to_host(b, &one, d, 4));
    OK(b->sync(b));
    cr_expect_eq(one, 2.0f);
    b->release(b, d);
    b->release(b, e);
}

/* ---- capabilities ---- */

static void case_supports(void)
{
    elag_backend *b = T.b;
    char why[160];
    const elag_op_query csr = {.format = ELAG_SPARSE_FORMAT_CSR, .max_n = 16};
    const elag_op_query bell = {.format = ELAG_SPARSE_FORMAT_BELL, .block = 16, .max_n = 16};
    elag_op_query dense = {.format = ELAG_SPARSE_FORMAT_DENSE}, no_block = bell, bad_alg = csr;
    no_block.block = 0;
    bad_alg.alg = 4;
    /* what the contract rules out, the wrapper answers alike for every backend (blanked:
     * their supports() is never reached) */
    elag_backend *pair[2] = {T.ref, b};
    for (int k = 0; k < 2; k++) {
        elag_backend stub = blanked(pair[k]);
        cr_expect_eq(elag_be_supports(&stub, ELAG_OP_SPARSE_MM, &dense, why, sizeof why),
                     ELAG_SUPPORT_NO);
        cr_expect(strstr(why, "not sparse") != NULL, "%s", why);
        cr_expect_eq(elag_be_supports(&stub, ELAG_OP_SPARSE_MM, &no_block, NULL, 0),
                     ELAG_SUPPORT_NO);
        cr_expect_eq(elag_be_supports(&stub, ELAG_OP_SPARSE_MM, &bad_alg, why, sizeof why),
                     ELAG_SUPPORT_NO);
        cr_expect_eq(elag_be_supports(&stub, (elag_op)99, NULL, why, sizeof why), ELAG_SUPPORT_NO);
        cr_expect(strstr(why, "unknown op 99") != NULL, "%s", why);
    }
    /* what every backend runs in FP32: CSR products, FP32 GEMMs (q NULL: all fields 0) */
    cr_expect_eq(elag_be_supports(b, ELAG_OP_GEMM, NULL, why, sizeof why), ELAG_SUPPORT_FP32,
                 "%s: %s", b->name, why);
    cr_expect_eq(elag_be_supports(b, ELAG_OP_SPARSE_MM, &csr, why, sizeof why), ELAG_SUPPORT_FP32,
                 "%s: %s", b->name, why);
    cr_expect_eq(elag_be_supports(b, ELAG_OP_MASK_SELECT, NULL, NULL, 0), ELAG_SUPPORT_FP32);
    elag_op_query tf32 = {.tf32 = 1}, alg1 = csr, huge = {.n = (size_t)UINT32_MAX + 1};
    alg1.alg = 1;
    elag_support bell_ans = elag_be_supports(b, ELAG_OP_SPARSE_MM, &bell, why, sizeof why);
    if (b->kind != ELAG_DEVICE_CUDA) {
        /* the CPU runs every format in FP32; TF32 and cuSPARSE's algorithms are a GPU's */
        cr_expect_eq(bell_ans, ELAG_SUPPORT_FP32, "%s: %s", b->name, why);
        cr_expect_eq(elag_be_supports(b, ELAG_OP_GEMM, &tf32, why, sizeof why), ELAG_SUPPORT_NO);
        cr_expect(strstr(why, "FP32 only") != NULL, "%s", why);
        cr_expect_eq(elag_be_supports(b, ELAG_OP_SPARSE_MM, &alg1, NULL, 0), ELAG_SUPPORT_NO);
        /* the fast mask_select keys 32 bits; the reference sorts anything */
        cr_expect_eq(elag_be_supports(b, ELAG_OP_MASK_SELECT, &huge, NULL, 0),
                     b->kind == ELAG_DEVICE_CPU ? ELAG_SUPPORT_NO : ELAG_SUPPORT_FP32);
        return;
    }
    /* CUDA: Blocked-ELL is TF32 on tensor cores, or refused where there are none for FP32;
     * either way sparse_create agrees with the answer */
    cr_expect(bell_ans == ELAG_SUPPORT_TF32 || bell_ans == ELAG_SUPPORT_NO, "%s: %d", b->name,
              (int)bell_ans);
    cr_expect(strstr(why, "tensor cores") != NULL, "%s", why);
    cr_log_info("%s: bell:16 %s (%s)", b->name, bell_ans == ELAG_SUPPORT_TF32 ? "TF32" : "refused",
                why);
    float w[4 * 20] = {0};
    for (int i = 0; i < 4 * 20; i += 3) w[i] = 1.0f;
    elag_sparse_host h;
    OK(elag_sparse_from_dense(w, 4, 20, ELAG_SPARSE_FORMAT_BELL, 16, &h));
    elag_sparse_opts opts = {.max_n = 16, .alg = 0};
    elag_sparse_dev *d = NULL;
    elag_status st = elag_be_sparse_create(b, &h, &opts, &d);
    cr_expect_eq(st == ELAG_OK, bell_ans != ELAG_SUPPORT_NO, "%s: sparse_create gave %s (%s)",
                 b->name, elag_status_name(st), elag_last_error());
    elag_be_sparse_destroy(b, d);
    elag_sparse_host_free(&h);
    cr_expect_eq(elag_be_supports(b, ELAG_OP_SPARSE_MM, &alg1, NULL, 0), ELAG_SUPPORT_FP32);
#ifdef ELAG_HAVE_CUDA
    elag_support t = elag_be_supports(b, ELAG_OP_GEMM, &tf32, NULL, 0);
    cr_expect_eq(t, bell_ans, "TF32 GEMMs and Blocked-ELL need the same tensor cores");
    cr_expect_eq(elag_cuda_set_tf32(b, 1), 0);
    cr_expect_eq(elag_be_supports(b, ELAG_OP_GEMM, NULL, NULL, 0),
                 t == ELAG_SUPPORT_TF32 ? ELAG_SUPPORT_TF32 : ELAG_SUPPORT_FP32);
    cr_expect_eq(elag_cuda_set_tf32(b, 0), 1);
#endif
}

/* ---- dense linear algebra ---- */

static void gemm_on(elag_backend *be, int ta, int tb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *bm, int ldb, float beta, const float *c0,
                    int ldc, float *out)
{
    size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
    float *da = fin(be, a, na, "A"), *db = fin(be, bm, nb, "B"), *dc = fio(be, c0, nc, "C");
    OKB(be, be->gemm(be, ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc));
    fget(out, dc, nc);
}

/* C (m, n) with row strides padded by `pad`; the padding of A and B holds NaN (never read),
 * the padding of C must stay as it was. */
static void check_gemm(int ta, int tb, int m, int n, int k, float alpha, float beta, int pad)
{
    int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
    int lda = (ac > 1 ? ac : 1) + pad, ldb = (bc > 1 ? bc : 1) + 2 * pad, ldc = n + 3 * pad;
    size_t na = (size_t)ar * lda, nb = (size_t)br * ldb, nc = (size_t)m * ldc;
    float *a = hrnd(na, -1, 1, 11), *bm = hrnd(nb, -1, 1, 12), *c0 = hrnd(nc, -1, 1, 13);
    for (size_t i = 0; i < na; i++)
        if ((int)(i % lda) >= ac) a[i] = NAN;
    for (size_t i = 0; i < nb; i++)
        if ((int)(i % ldb) >= bc) bm[i] = NAN;
    float *want = hbuf(nc), *got = hbuf(nc);
    gemm_on(T.ref, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c0, ldc, want);
    gemm_on(T.b, ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, c0, ldc, got);
    char what[128];
    snprintf(what, sizeof what, "gemm %dx%dx%d ta=%d tb=%d alpha=%g beta=%g pad=%d", m, n, k, ta,
             tb, (double)alpha, (double)beta, pad);
    expect_close(what, got, want, nc, sqrt(k + 1.0)); /* includes C's padding */
    /* the reference against the definition, in double */
    double *hand = dbuf(nc);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < ldc; j++) {
            size_t o = (size_t)i * ldc + j;
            if (j >= n) {
                hand[o] = c0[o];
                continue;
            }
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += (double)(ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]) *
                     (tb ? bm[(size_t)j * ldb + p] : bm[(size_t)p * ldb + j]);
            hand[o] = alpha * s + (beta == 0.0f ? 0.0 : beta * (double)c0[o]);
        }
    expect_hand(what, got, to_float(hand, nc), nc, sqrt(k + 1.0));
}

static void case_gemm(void)
{
    elag_backend *b = T.b;
    const int shapes[][3] = {{7, 96, 40},  {7, 40, 96}, {1, 1, 1},  {33, 17, 65},
                             {33, 65, 17}, {5, 1, 9},   {1, 33, 2}, {64, 300, 257}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                check_gemm(ta, tb, m, n, k, 1.0f, 0.0f, 0);
                check_gemm(ta, tb, m, n, k, -0.75f, 0.5f, 1);
                if (s < 3) check_gemm(ta, tb, m, n, k, 0.75f, -1.5f, 3);
            }
    /* k = 0: C = beta C */
    check_gemm(0, 0, 5, 9, 0, 1.0f, 0.5f, 2);
    check_gemm(1, 0, 5, 9, 0, 1.0f, 0.0f, 0);
    /* by hand, (2,3) x (3,2) = [[58, 64], [139, 154]]: exact; beta = 0 never reads C (NaN) */
    const float a[6] = {1, 2, 3, 4, 5, 6}, bm[6] = {7, 8, 9, 10, 11, 12};
    const float nan4[4] = {NAN, NAN, NAN, NAN}, want[4] = {58, 64, 139, 154};
    float got[4];
    gemm_on(b, 0, 0, 2, 2, 3, 1.0f, a, 3, bm, 2, 0.0f, nan4, 2, got);
    expect_identical("gemm by hand, beta 0 over NaN", got, want, 4);
    const float c2[4] = {1, 2, 3, 4}, want2[4] = {0.5f, 1, 1.5f, 2};
    gemm_on(b, 0, 0, 2, 2, 0, 1.0f, a, 1, bm, 2, 0.5f, c2, 2, got);
    expect_identical("gemm k=0", got, want2, 4);
    /* m = 0 and n = 0: no-ops */
    gemm_on(b, 0, 0, 0, 5, 3, 1.0f, a, 3, hrnd(15, -1, 1, 14), 5, 0.5f, NULL, 5, got);
    float c3[3] = {1, 2, 3}, got3[3];
    gemm_on(b, 0, 1, 3, 0, 2, 1.0f, a, 2, bm, 2, 0.5f, c3, 1, got3);
    expect_identical("gemm n=0 leaves C", got3, c3, 3);
    /* refusals: strides below the rows they hold, negative sizes */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gemm(be, 0, 0, 2, 2, 3, 1.0f, df, 2, df, 2, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gemm(be, 0, 0, 2, 2, 2, 1.0f, df, 1, df, 2, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gemm(be, 0, 0, 2, 3, 2, 1.0f, df, 2, df, 3, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_gemm(be, 0, 0, -1, 2, 2, 1.0f, df, 2, df, 2, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_gemm(be, 0, 0, 2, -1, 2, 1.0f, df, 2, df, 2, 0.0f, df, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_gemm(be, 1, 1, 2, 2, -3, 1.0f, df, 2, df, 2, 0.0f, df, 2));
    /* TF32: only a CUDA switch; FP32 parity is back once it is off again */
    OK(elag_backend_set_tf32(T.ref, 1)); /* nothing on a CPU backend */
#ifdef ELAG_HAVE_CUDA
    cr_expect_lt(elag_cuda_set_tf32(T.ref, 1), 0, "set_tf32 on a CPU backend must fail");
    if (b->kind == ELAG_DEVICE_CUDA) {
        cr_expect_eq(elag_cuda_set_tf32(b, 1), 0);
        cr_expect_eq(elag_cuda_set_tf32(b, 0), 1);
        check_gemm(0, 1, 33, 65, 17, 1.0f, 0.0f, 0);
    }
#endif
}

/* ---- row_sum ---- */

static void row_sum_on(elag_backend *be, const float *x, int rows, int cols, float *out)
{
    float *dx = fin(be, x, (size_t)rows * cols, "x"), *dout = fout(be, (size_t)rows, "out");
    OKB(be, be->row_sum(be, dout, dx, rows, cols));
    fget(out, dout, (size_t)rows);
}

static void case_row_sum(void)
{
    const int shapes[][2] = {{5, 7},  {1, 1},    {300, 129}, {3, 200}, {37, 129},
                             {257, 10}, {1000, 33}, {3, 40009}, {40009, 3}, {4, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int rows = shapes[s][0], cols = shapes[s][1];
        float *x = hrnd((size_t)rows * cols, -1.0f, 1.0f, 21 + s);
        float *want = hbuf(rows), *got = hbuf(rows);
        double *hand = dbuf(rows);
        row_sum_on(T.ref, x, rows, cols, want);
        row_sum_on(T.b, x, rows, cols, got);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) hand[r] += x[(size_t)r * cols + c];
        char what[64];
        snprintf(what, sizeof what, "row_sum %dx%d", rows, cols);
        expect_close(what, got, want, (size_t)rows, sqrt(cols + 1.0));
        expect_hand(what, got, to_float(hand, rows), (size_t)rows, sqrt(cols + 1.0));
        if (cols == 0) cr_expect_eq(zeros(got, rows), (size_t)rows, "cols 0: zeros");
    }
    float none;
    row_sum_on(T.b, &none, 0, 5, &none); /* rows 0: nothing written */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_row_sum(be, df, df, -1, 3));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_row_sum(be, df, df, 3, -1));
}

/* ---- elementwise ---- */

static const char *ew_name(elag_ew_op op)
{
    static const char *names[] = {"RELU", "RELU_BACKWARD", "MUL", "AXPY", "SCALE"};
    return (unsigned)op < 5 ? names[op] : "?";
}
static int ew_reads_b(elag_ew_op op) { return op == ELAG_EW_RELU_BACKWARD || op == ELAG_EW_MUL; }

/* alias 0: y separate (an output, or y0 for AXPY); 1: y == a; 2: y == b */
static void ew_on(elag_backend *be, elag_ew_op op, size_t n, const float *y0, const float *a,
                  const float *bb, float alpha, int alias, float *out)
{
    float *dy, *da, *db = NULL;
    if (alias == 1) {
        dy = da = fio(be, a, n, "y = a");
        if (ew_reads_b(op)) db = fin(be, bb, n, "b");
    } else if (alias == 2) {
        dy = db = fio(be, bb, n, "y = b");
        da = fin(be, a, n, "a");
    } else {
        dy = op == ELAG_EW_AXPY ? fio(be, y0, n, "y") : fout(be, n, "y");
        da = fin(be, a, n, "a");
        if (ew_reads_b(op)) db = fin(be, bb, n, "b");
    }
    OKB(be, be->elementwise(be, op, n, dy, da, db, alpha));
    fget(out, dy, n);
}

/* what y[i] must become, from the comment of elag_ew_op */
static float ew_hand(elag_ew_op op, float y, float a, float b, float alpha)
{
    switch (op) {
    case ELAG_EW_RELU: return a > 0.0f ? a : 0.0f;
    case ELAG_EW_RELU_BACKWARD: return b > 0.0f ? a : 0.0f;
    case ELAG_EW_MUL: return b == 0.0f ? 0.0f : a * b;
    case ELAG_EW_AXPY: return y + alpha * a;
    case ELAG_EW_SCALE: return alpha * a;
    }
    return NAN;
}

static void case_elementwise(void)
{
    /* special pairs first: (inf, 0) (NaN, 0) (NaN, -0) must MUL to +0; NaN b is not > 0 */
    const float sa[] = {-0.0f, 0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -1e-40f, 3.0f, -2.5f, NAN,
                        INFINITY, 1.0f};
    const float sb[] = {0.0f, -0.0f, 0.0f, 0.0f, 0.0f, 2.0f, -0.0f, NAN, NAN, -0.0f, 1.5f,
                        -INFINITY};
    const size_t ns = sizeof sa / sizeof *sa;
    const size_t sizes[] = {1, ns, 37, BIG};
    const float alpha = -0.375f;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        float *a = hrnd(n, -2.0f, 2.0f, 31), *bb = hrnd(n, -2.0f, 2.0f, 32);
        float *y0 = hrnd(n, -1.0f, 1.0f, 33), *u = hrnd(n, 0.0f, 1.0f, 34);
        for (size_t i = 0; i < n; i++)
            if (u[i] < 0.3f) bb[i] = 0.0f; /* a mask's or a dropout's zeros */
        for (size_t i = 0; i < n && i < ns; i++) a[i] = sa[i], bb[i] = sb[i];
        for (int op = ELAG_EW_RELU; op <= ELAG_EW_SCALE; op++) {
            elag_ew_op o = (elag_ew_op)op;
            /* only AXPY sums two roundings (a backend may fuse them): the others are exact */
            int exact = o != ELAG_EW_AXPY;
            float *want = hbuf(n), *got = hbuf(n), *hand = hbuf(n);
            for (int alias = 0; alias <= (ew_reads_b(o) ? 2 : 1); alias++) {
                ew_on(T.ref, o, n, y0, a, bb, alpha, alias, want);
                ew_on(T.b, o, n, y0, a, bb, alpha, alias, got);
                for (size_t i = 0; i < n; i++) {
                    float yin = alias == 1 ? a[i] : alias == 2 ? bb[i] : y0[i];
                    hand[i] = ew_hand(o, yin, a[i], bb[i], alpha);
                }
                char what[96];
                snprintf(what, sizeof what, "elementwise %s n=%zu%s", ew_name(o), n,
                         alias == 1 ? " y=a" : alias == 2 ? " y=b" : "");
                if (exact) {
                    expect_identical(what, got, want, n);
                    cr_expect_eq(elag_test_compare(what, got, hand, n, 0.0, 0.0), 0,
                                 "%s: %s against the formula", T.b->name, what);
                } else {
                    expect_close(what, got, want, n, 1.0);
                    expect_hand(what, got, hand, n, 1.0);
                }
                if (o == ELAG_EW_MUL)
                    for (size_t i = 0; i < n; i++)
                        if (bb[i] == 0.0f && (got[i] != 0.0f || signbit(got[i]))) {
                            cr_expect(0, "%s: %s[%zu] = %g where b == 0, want +0", T.b->name,
                                      what, i, (double)got[i]);
                            break;
                        }
                if (o == ELAG_EW_RELU)
                    for (size_t i = 0; i < n; i++)
                        if (isnan(got[i])) {
                            cr_expect(0, "%s: RELU of NaN must give 0 (entry %zu)", T.b->name, i);
                            break;
                        }
            }
        }
    }
    /* n = 0: nothing read or written */
    for (int op = ELAG_EW_RELU; op <= ELAG_EW_SCALE; op++) {
        float none;
        ew_on(T.b, (elag_ew_op)op, 0, &none, &none, &none, 2.0f, 0, &none);
    }
    ALL_REFUSE(elag_be_elementwise(be, (elag_ew_op)99, 4, df, df, df, 1.0f));
}

/* ---- transpose ---- */

static void transpose_on(elag_backend *be, const float *src, int batch, int rows, int cols,
                         int inner, float *out)
{
    size_t n = (size_t)batch * rows * cols * inner;
    float *ds = fin(be, src, n, "src"), *dd = fout(be, n, "dst");
    OKB(be, be->transpose(be, dd, ds, batch, rows, cols, inner));
    fget(out, dd, n);
}

static void case_transpose(void)
{
    const struct {
        const char *name;
        int batch, rows, cols, inner;
    } cases[] = {
        {"(N, C, HW) -> (C, N, HW): N 5, C 3, HW 63", 1, 5, 3, 63},
        {"flatten (C, N, HW) -> (C, HW, N): C 3, N 5, HW 63", 3, 5, 63, 1},
        {"odd tiles", 2, 37, 41, 1},
        {"large", 1, 129, 257, 1},
        {"large, 16 channels of 8 x 196", 16, 8, 196, 1},
        {"inner 7", 4, 33, 1, 7},
        {"inner 5", 3, 1, 17, 5},
        {"1x1", 1, 1, 1, 1},
        {"rows 2 cols 33 inner 3", 5, 2, 33, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int B = cases[c].batch, R = cases[c].rows, C = cases[c].cols, I = cases[c].inner;
        size_t n = (size_t)B * R * C * I;
        float *src = hrnd(n, -1.0f, 1.0f, 41 + c), *want = hbuf(n), *got = hbuf(n);
        float *hand = hbuf(n), *back = hbuf(n);
        for (int t = 0; t < B; t++)
            for (int i = 0; i < R; i++)
                for (int j = 0; j < C; j++)
                    for (int e = 0; e < I; e++)
                        hand[(((size_t)t * C + j) * R + i) * I + e] =
                            src[(((size_t)t * R + i) * C + j) * I + e];
        transpose_on(T.ref, src, B, R, C, I, want);
        transpose_on(T.b, src, B, R, C, I, got);
        expect_identical(cases[c].name, got, want, n);
        expect_identical(cases[c].name, got, hand, n);
        transpose_on(T.b, got, B, C, R, I, back); /* and back */
        expect_identical("transpose there and back", back, src, n);
    }
    /* zero sizes: nothing written (dst holds 8 NaNs that must stay) */
    const int zero[][4] = {{0, 3, 4, 5}, {2, 0, 4, 5}, {2, 3, 0, 5}, {2, 3, 4, 0}};
    for (int z = 0; z < 4; z++) {
        float src[8] = {0}, got[8];
        float *ds = fin(T.b, src, 8, "src"), *dd = fout(T.b, 8, "dst");
        OK(T.b->transpose(T.b, dd, ds, zero[z][0], zero[z][1], zero[z][2], zero[z][3]));
        fget(got, dd, 8);
        for (int i = 0; i < 8; i++) cr_expect(isnan(got[i]), "transpose with a zero size wrote");
    }
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_transpose(be, df, df, -1, 2, 2, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_transpose(be, df, df, 2, -1, 2, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_transpose(be, df, df, 2, 2, -1, 2));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_transpose(be, df, df, 2, 2, 2, -1));
}

/* ---- cross-entropy ---- */

static void xent_on(elag_backend *be, const float *x, const int32_t *lab, int rows, int cols,
                    int grad, float *stats, float *dl)
{
    size_t n = (size_t)rows * cols;
    float *dx = fin(be, x, n, "logits"), *dst = fio(be, stats, 2, "stats");
    int32_t *dlab = iin(be, lab, (size_t)rows, "labels");
    float *ddl = grad ? fout(be, n, "dlogits") : NULL;
    OKB(be, be->xent(be, dx, dlab, rows, cols, ddl, dst));
    fget(stats, dst, 2);
    if (grad) fget(dl, ddl, n);
}

static void check_xent(int rows, int cols, int ties, uint64_t seed)
{
    size_t n = (size_t)rows * cols;
    float *x = hrnd(n, -6.0f, 6.0f, seed);
    int32_t *lab = ibuf(rows);
    for (int r = 0; r < rows; r++) {
        lab[r] = (int32_t)(elag_philox_u32(5, 6, r) % cols);
        if (ties && r % 5 == 0) /* ties: the first maximum decides the hit */
            for (int c = 0; c < cols; c++) x[(size_t)r * cols + c] = (float)(c % 3);
        if (ties && r % 5 == 1) x[(size_t)r * cols + lab[r]] = 10.0f; /* sure hits */
    }
    float s_ref[2] = {1.5f, 2.0f}, s_b[2] = {1.5f, 2.0f}, s_ng[2] = {1.5f, 2.0f};
    float *want = hbuf(n), *got = hbuf(n);
    xent_on(T.ref, x, lab, rows, cols, 1, s_ref, want);
    xent_on(T.b, x, lab, rows, cols, 1, s_b, got);
    xent_on(T.b, x, lab, rows, cols, 0, s_ng, NULL); /* no gradient wanted */
    char what[64];
    snprintf(what, sizeof what, "xent %dx%d", rows, cols);
    expect_close(what, &s_b[0], &s_ref[0], 1, sqrt(rows + 1.0));
    expect_close(what, &s_ng[0], &s_ref[0], 1, sqrt(rows + 1.0));
    cr_expect_eq(s_b[1], s_ref[1], "%s: %s hits %g, want %g", T.b->name, what, (double)s_b[1],
                 (double)s_ref[1]);
    cr_expect_eq(s_ng[1], s_ref[1]);
    expect_close(what, got, want, n, 1.0);
    /* the reference by hand: loss, hits, gradient (softmax - onehot) / rows */
    double loss = 1.5, hits = 2.0;
    double *hand = dbuf(n);
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        int am = 0;
        for (int c = 1; c < cols; c++)
            if (xr[c] > xr[am]) am = c;
        double z = 0.0;
        for (int c = 0; c < cols; c++) z += exp((double)xr[c] - xr[am]);
        loss += xr[am] + log(z) - xr[lab[r]];
        hits += am == lab[r];
        for (int c = 0; c < cols; c++)
            hand[(size_t)r * cols + c] = (exp((double)xr[c] - xr[am]) / z - (c == lab[r])) / rows;
    }
    float fl = (float)loss, fh = (float)hits;
    expect_hand(what, &s_ref[0], &fl, 1, sqrt(rows + 1.0));
    cr_expect_eq(s_ref[1], fh, "cpu-ref hits %g, want %g", (double)s_ref[1], (double)fh);
    expect_hand(what, got, to_float(hand, n), n, 1.0);
    for (int r = 0; r < rows; r += 37) { /* each gradient row sums to 0, up to rounding */
        double sum = 0.0, l1 = 0.0;
        for (int c = 0; c < cols; c++) {
            sum += got[(size_t)r * cols + c];
            l1 += fabs(got[(size_t)r * cols + c]);
        }
        cr_expect(fabs(sum) <= T.hrel * l1, "%s: %s row %d of the gradient sums to %g (|row| %g)",
                  T.b->name, what, r, sum, l1);
    }
}

static void case_xent(void)
{
    /* by hand, 2x3: row 0 label 1, argmax 2 (miss); row 1 all equal, first max 0 == label 0 */
    const float logits[6] = {1, 2, 3, 0.5f, 0.5f, 0.5f};
    const int32_t labels[2] = {1, 0};
    double z0 = exp(1.0) + exp(2.0) + exp(3.0);
    float loss = (float)(10.0 + (log(z0) - 2.0) + log(3.0));
    float want_d[6] = {(float)(exp(1.0) / z0 / 2), (float)((exp(2.0) / z0 - 1) / 2),
                       (float)(exp(3.0) / z0 / 2), (float)((1.0 / 3 - 1) / 2),
                       (float)(1.0 / 3 / 2),       (float)(1.0 / 3 / 2)};
    float d[6], stats[2] = {10.0f, 5.0f}; /* stats accumulate */
    xent_on(T.b, logits, labels, 2, 3, 1, stats, d);
    expect_hand("xent 2x3 loss", &stats[0], &loss, 1, 1.0);
    cr_expect_eq(stats[1], 6.0f, "%s: correct %g", T.b->name, (double)stats[1]);
    expect_hand("xent 2x3 gradient", d, want_d, 6, 1.0);

    check_xent(257, 10, 0, 41);
    check_xent(4099, 10, 0, 42);
    check_xent(3, 1, 0, 43);
    check_xent(17, 1000, 0, 44);
    check_xent(67, 10, 1, 45);
    check_xent(1, 3, 1, 46);
    check_xent(5, 1001, 1, 47);
    check_xent(9, 33, 1, 48); /* one column past a warp */
    check_xent(300, 32, 1, 49);

    /* rows 0: stats unchanged, nothing written */
    float s0[2] = {3.0f, 4.0f}, none;
    int32_t nolab = 0;
    xent_on(T.b, &none, &nolab, 0, 5, 1, s0, &none);
    cr_expect(s0[0] == 3.0f && s0[1] == 4.0f, "xent with rows 0 changed the stats");
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_xent(be, df, di, -1, 3, df, df + 8));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_xent(be, df, di, 3, -1, df, df + 8));
    ALL_REFUSE(elag_be_xent(be, df, di, 2, 0, NULL, df + 8)); /* rows with no classes */
    /* a label outside [0, cols): the CPU backends check (the CUDA one does not read labels
     * back to the host; backend.h makes them the caller's promise) */
    if (T.b->kind != ELAG_DEVICE_CUDA) {
        const int32_t bad[2] = {1, 2};
        float st[2] = {0, 0};
        float *dl = fin(T.b, logits, 4, "logits"), *ds = fio(T.b, st, 2, "stats");
        int32_t *dlab = iin(T.b, bad, 2, "labels");
        cr_expect_eq(T.b->xent(T.b, dl, dlab, 2, 2, NULL, ds), ELAG_ERR_INPUT);
        cr_expect(strstr(elag_last_error(), "label 2") != NULL, "%s", elag_last_error());
    }
}

/* ---- gathers ---- */

static void case_gather(void)
{
    enum { SRC = 50, COLS = 13, ROWS = 37, NF = ROWS * COLS };
    float *src = hrnd(SRC * COLS, -1.0f, 1.0f, 51), *want = hbuf(NF), *got = hbuf(NF);
    int32_t *isrc = ibuf(SRC), *idx = ibuf(ROWS), *lwant = ibuf(ROWS), *lgot = ibuf(ROWS);
    for (int i = 0; i < SRC; i++) isrc[i] = 1000 + i * 3 - 7;
    for (int r = 0; r < ROWS; r++) idx[r] = (r * 7 + 5) % 29; /* with repeats */
    idx[ROWS - 1] = SRC - 1;
    elag_backend *bs[2] = {T.ref, T.b};
    float *outs[2] = {want, got};
    int32_t *louts[2] = {lwant, lgot};
    for (int k = 0; k < 2; k++) {
        elag_backend *be = bs[k];
        float *ds = fin(be, src, SRC * COLS, "src"), *dd = fout(be, NF, "dst");
        int32_t *di = iin(be, idx, ROWS, "idx"), *dls = iin(be, isrc, SRC, "labels");
        int32_t *dld = iout(be, ROWS, "dst labels");
        OKB(be, be->gather_rows(be, dd, ds, di, ROWS, COLS));
        OKB(be, be->gather_i32(be, dld, dls, di, ROWS));
        fget(outs[k], dd, NF);
        iget(louts[k], dld, ROWS);
        /* zero rows, zero cols: nothing written */
        OKB(be, be->gather_rows(be, fout(be, 0, "empty"), ds, di, 0, COLS));
        OKB(be, be->gather_rows(be, fout(be, 0, "empty"), ds, di, ROWS, 0));
        OKB(be, be->gather_i32(be, iout(be, 0, "empty"), dls, di, 0));
    }
    expect_identical("gather_rows", got, want, NF);
    expect_identical_i32("gather_i32", lgot, lwant, ROWS);
    for (int r = 0; r < ROWS; r++) {
        cr_expect_eq(memcmp(got + r * COLS, src + idx[r] * COLS, COLS * 4), 0, "gather_rows row %d",
                     r);
        cr_expect_eq(lgot[r], isrc[idx[r]], "gather_i32 row %d", r);
    }
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gather_rows(be, df, df, di, -1, 3));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gather_rows(be, df, df, di, 3, -1));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_gather_i32(be, di, di, di, -1));
}

/* ---- initialisation ---- */

static void init_on(elag_backend *be, size_t n, float lo, float hi, uint64_t seed, uint64_t stream,
                    float *out)
{
    float *d = fout(be, n, "x");
    OKB(be, be->init_uniform(be, d, n, lo, hi, seed, stream));
    fget(out, d, n);
}

static void case_init_uniform(void)
{
    const size_t sizes[] = {1, 3, 4, 5, 7, 784 * 300 + 1, BIG};
    const uint64_t seeds[] = {0, 42, 0xDEADBEEFCAFEull, 1234};
    const uint64_t streams[] = {0x1000, 0x1003, (1ull << 40) + 7, ELAG_STREAM_INIT_BASE + 3};
    const float bounds[][2] = {{-0.0874f, 0.0874f}, {0.0f, 1.0f}, {-3.0f, 0.5f},
                               {-0.0625f, 0.1875f}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int q = 0; q < 4; q++) {
            size_t n = sizes[s];
            float lo = bounds[q][0], hi = bounds[q][1];
            uint64_t seed = seeds[q], stream = streams[(s + q) % 4];
            float *want = hbuf(n), *got = hbuf(n), *hand = hbuf(n);
            init_on(T.ref, n, lo, hi, seed, stream, want);
            init_on(T.b, n, lo, hi, seed, stream, got);
            for (size_t i = 0; i < n; i++)
                hand[i] = lo + (hi - lo) * elag_philox_uniform(seed, stream, i);
            char what[64];
            snprintf(what, sizeof what, "init_uniform n=%zu bounds %d", n, q);
            expect_identical(what, got, want, n);
            expect_identical(what, got, hand, n);
            double mean = 0.0;
            for (size_t i = 0; i < n; i++) {
                cr_assert(got[i] >= lo && got[i] <= hi, "%s: x[%zu] = %g", what, i, (double)got[i]);
                mean += got[i];
            }
            if (n == BIG)
                cr_expect(fabs(mean / n - 0.5 * (lo + hi)) < 4e-3 * (hi - lo), "%s: mean %g", what,
                          mean / n);
            if (n == BIG) { /* another stream gives other numbers */
                float *other = hbuf(n);
                init_on(T.b, n, lo, hi, seed, stream + 1, other);
                cr_expect_neq(memcmp(other, got, n * 4), 0, "streams differ");
            }
        }
    float none;
    init_on(T.b, 0, 0.0f, 1.0f, 1, 1, &none); /* n = 0 */
}

/* ---- optimizers ---- */

static void sgd_on(elag_backend *be, float *w, float *v, const float *mask, size_t n,
                   float *const *gs, int steps, float lr, float mom, float wd, int nesterov)
{
    float *dw = fio(be, w, n, "w"), *dv = fio(be, v, n, "v");
    float *dm = mask ? fin(be, mask, n, "mask") : NULL;
    for (int s = 0; s < steps; s++) {
        float *dg = fin(be, gs[s], n, "g");
        OKB(be, be->sgd_step(be, dw, dg, dv, dm, n, lr, mom, wd, nesterov));
    }
    fget(w, dw, n);
    fget(v, dv, n);
}

static size_t count_bit_diffs(const float *a, const float *b, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof *a) != 0;
    return d;
}

/* pruned entries (mask 0) exactly +0 in every array given */
static void expect_pruned_zero(const char *what, const float *mask, size_t n, const float *a,
                               const float *b, const float *c)
{
    for (size_t i = 0; i < n; i++) {
        if (mask[i] != 0.0f) continue;
        const float *arr[3] = {a, b, c};
        for (int k = 0; k < 3; k++)
            if (arr[k] && (arr[k][i] != 0.0f || signbit(arr[k][i]))) {
                cr_expect(0, "%s: %s: pruned entry %zu is %g, want +0", T.b->name, what, i,
                          (double)arr[k][i]);
                return;
            }
    }
}

static void case_sgd_step(void)
{
    /* the formula of backend.h by hand, 3 steps of one gradient */
    const struct {
        float mom, wd;
        int nesterov;
    } cases[] = {{0, 0, 0}, {0.9f, 0, 0}, {0.9f, 0, 1}, {0.9f, 5e-4f, 0}, {0.5f, 1e-2f, 1}};
    const size_t n = 1001;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float *w0 = hrnd(n, -1, 1, 61), *g = hrnd(n, -1, 1, 62);
        float *wh = hdup(w0, n), *vh = hbuf(n);
        for (int t = 0; t < 3; t++)
            for (size_t i = 0; i < n; i++) {
                float gp = g[i] + cases[c].wd * wh[i];
                vh[i] = cases[c].mom * vh[i] + gp;
                wh[i] -= 0.1f * (cases[c].nesterov ? gp + cases[c].mom * vh[i] : vh[i]);
            }
        float *w = hdup(w0, n), *v = hbuf(n), *gs[3] = {g, g, g};
        sgd_on(T.b, w, v, NULL, n, gs, 3, 0.1f, cases[c].mom, cases[c].wd, cases[c].nesterov);
        expect_hand("sgd w by hand", w, wh, n, 1.0);
        expect_hand("sgd v by hand", v, vh, n, 1.0);
        if (c == 0) /* plain SGD is w - lr g, step by step */
            cr_expect_eq(wh[5], (w0[5] - 0.1f * g[5]) - 0.1f * g[5] - 0.1f * g[5]);
    }
    /* against cpu-ref: 5 steps of fresh gradients, masked (90% pruned), nesterov, unmasked */
    const size_t nb = BIG;
    float *gs[5];
    for (int s = 0; s < 5; s++) gs[s] = hrnd(nb, -0.5f, 0.5f, 120 + s);
    for (int variant = 0; variant < 3; variant++) {
        int nesterov = variant == 1;
        float *mask = variant == 2 ? NULL : hmask(nb, 0.9, 112 + variant);
        float *w0 = hrnd(nb, -1.0f, 1.0f, 111), *v0 = hrnd(nb, -0.1f, 0.1f, 113);
        float *wr = hdup(w0, nb), *vr = hdup(v0, nb), *wb = hdup(w0, nb), *vb = hdup(v0, nb);
        sgd_on(T.ref, wr, vr, mask, nb, gs, 5, 0.05f, 0.9f, 1e-4f, nesterov);
        sgd_on(T.b, wb, vb, mask, nb, gs, 5, 0.05f, 0.9f, 1e-4f, nesterov);
        expect_close("sgd w", wb, wr, nb, 1.0);
        expect_close("sgd v", vb, vr, nb, 1.0);
        cr_log_info("%s: sgd variant %d: %zu of %zu weights not bit-identical", T.b->name, variant,
                    count_bit_diffs(wb, wr, nb), nb);
        if (mask) {
            expect_pruned_zero("sgd", mask, nb, wb, vb, NULL);
            size_t live_nonzero = 0;
            for (size_t i = 0; i < nb; i++) live_nonzero += mask[i] != 0.0f && wb[i] != 0.0f;
            cr_expect_eq(live_nonzero, nb - zeros(mask, nb), "live weights stay nonzero");
        }
    }
    float none;
    sgd_on(T.b, &none, &none, NULL, 0, gs, 1, 0.1f, 0.9f, 0.0f, 0); /* n = 0 */
}

static void adamw_on(elag_backend *be, float *w, float *m, float *v, const float *mask, size_t n,
                     float *const *gs, int steps, float lr, float b1, float b2, float eps, float wd)
{
    float *dw = fio(be, w, n, "w"), *dm = fio(be, m, n, "m"), *dv = fio(be, v, n, "v");
    float *dmask = mask ? fin(be, mask, n, "mask") : NULL;
    for (int t = 1; t <= steps; t++) {
        float *dg = fin(be, gs[t - 1], n, "g");
        OKB(be, be->adamw_step(be, dw, dg, dm, dv, dmask, n, lr, b1, b2, eps, wd, t));
    }
    fget(w, dw, n);
    fget(m, dm, n);
    fget(v, dv, n);
}

static void case_adamw_step(void)
{
    /* the formula by hand in double, 3 steps */
    const size_t n = 999;
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, wd = 0.05f;
    float *w0 = hrnd(n, -1, 1, 71);
    double *wh = dbuf(n), *mh = dbuf(n), *vh = dbuf(n);
    for (size_t i = 0; i < n; i++) wh[i] = w0[i];
    float *g3[3] = {hrnd(n, -1, 1, 72), hrnd(n, -1e-3f, 1e-3f, 73), hrnd(n, -5, 5, 74)};
    for (int t = 1; t <= 3; t++)
        for (size_t i = 0; i < n; i++) {
            double g = g3[t - 1][i];
            wh[i] *= 1.0 - (double)lr * wd;
            mh[i] = b1 * mh[i] + (1 - (double)b1) * g;
            vh[i] = b2 * vh[i] + (1 - (double)b2) * g * g;
            wh[i] -= lr * (mh[i] / (1 - pow(b1, t))) / (sqrt(vh[i] / (1 - pow(b2, t))) + eps);
        }
    float *w = hdup(w0, n), *m = hbuf(n), *v = hbuf(n);
    adamw_on(T.b, w, m, v, NULL, n, g3, 3, lr, b1, b2, eps, wd);
    expect_hand("adamw w by hand", w, to_float(wh, n), n, 1.0);
    expect_hand("adamw m by hand", m, to_float(mh, n), n, 1.0);
    expect_hand("adamw v by hand", v, to_float(vh, n), n, 1.0);
    /* against cpu-ref: 6 steps, masked (half pruned, stale state under the mask) or not */
    const size_t nb = BIG;
    float *gs[6];
    for (int t = 0; t < 6; t++) gs[t] = hrnd(nb, -0.5f, 0.5f, 141 + t);
    for (int masked = 0; masked < 2; masked++) {
        float *mask = masked ? hmask(nb, 0.5, 132) : NULL;
        float *ws = hrnd(nb, -1.0f, 1.0f, 131), *ms = hrnd(nb, -0.1f, 0.1f, 133);
        float *vs = hrnd(nb, 0.0f, 0.01f, 134);
        float *wr = hdup(ws, nb), *mr = hdup(ms, nb), *vr = hdup(vs, nb);
        float *wb = hdup(ws, nb), *mb = hdup(ms, nb), *vb = hdup(vs, nb);
        adamw_on(T.ref, wr, mr, vr, mask, nb, gs, 6, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
        adamw_on(T.b, wb, mb, vb, mask, nb, gs, 6, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
        expect_close("adamw w", wb, wr, nb, 1.0);
        expect_close("adamw m", mb, mr, nb, 1.0);
        expect_close("adamw v", vb, vr, nb, 1.0);
        cr_log_info("%s: adamw masked=%d: %zu of %zu weights not bit-identical", T.b->name,
                    masked, count_bit_diffs(wb, wr, nb), nb);
        if (mask) expect_pruned_zero("adamw", mask, nb, wb, mb, vb);
    }
    float none;
    adamw_on(T.b, &none, &none, &none, NULL, 0, gs, 1, 0.1f, 0.9f, 0.9f, 0.1f, 0.0f); /* n = 0 */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_adamw_step(be, df, df + 8, df + 16, df + 24, NULL, 4,
                                                     0.1f, 0.9f, 0.9f, 0.1f, 0.0f, 0));
}

/* ---- pruning ---- */

static void score_on(elag_backend *be, const float *w, const float *mask, size_t n, float *out)
{
    float *dw = fin(be, w, n, "w"), *dm = mask ? fin(be, mask, n, "mask") : NULL;
    float *ds = fout(be, n, "score");
    OKB(be, be->score_magnitude(be, ds, dw, dm, n));
    fget(out, ds, n);
}

static void case_score_magnitude(void)
{
    const size_t n = BIG;
    float *w = hrnd(n, -1.0f, 1.0f, 91), *mask = hmask(n, 0.4, 92);
    for (size_t i = 0; i < n; i += 3) mask[i] = 0.0f;
    w[0] = -0.0f, w[1] = -INFINITY, w[2] = NAN, w[4] = 0.0f, w[5] = NAN, w[7] = -0.0f;
    mask[1] = mask[2] = 0.0f, mask[4] = mask[5] = mask[7] = 1.0f; /* live zeros score 0 > -1 */
    for (int masked = 0; masked < 2; masked++) {
        const float *mk = masked ? mask : NULL;
        float *want = hbuf(n), *got = hbuf(n), *hand = hbuf(n);
        score_on(T.ref, w, mk, n, want);
        score_on(T.b, w, mk, n, got);
        for (size_t i = 0; i < n; i++) hand[i] = (!mk || mk[i] != 0.0f) ? fabsf(w[i]) : -1.0f;
        const char *what = masked ? "score_magnitude masked" : "score_magnitude unmasked";
        expect_identical(what, got, want, n);
        expect_identical(what, got, hand, n);
    }
    float none;
    score_on(T.b, &none, &none, 0, &none);
}

/* (score[i], i) < (score[j], j), with NaN above every number (backend.h's order) */
static int ranks_below(const float *score, size_t i, size_t j)
{
    float a = score[i], b = score[j];
    if (isnan(a) || isnan(b)) return isnan(a) == isnan(b) ? i < j : isnan(b);
    return a < b || (a == b && i < j);
}

static void select_on(elag_backend *be, const float *ds, size_t n, size_t k, int radix, float *out)
{
    float *dm = fout(be, n, "mask");
    if (radix)
        OKB(be, elag_cpu_mask_select_radix(be, dm, ds, n, k));
    else
        OKB(be, be->mask_select(be, dm, ds, n, k));
    fget(out, dm, n);
}

/* mask_select for each k: exactly k zeros, the mask of cpu-ref bit for bit (on the fast
 * CPU backend its radix fallback too), and the pruned set is the k smallest (score, index):
 * every pruned pair ranks below every kept pair. */
static void check_select(const float *score, size_t n, const size_t *ks, int nk, const char *tag)
{
    float *sr = fin(T.ref, score, n, "score"), *sb = fin(T.b, score, n, "score");
    float *want = hbuf(n), *got = hbuf(n);
    for (int j = 0; j < nk; j++) {
        size_t k = ks[j];
        char what[96];
        snprintf(what, sizeof what, "mask_select %s n=%zu k=%zu", tag, n, k);
        select_on(T.ref, sr, n, k, 0, want);
        select_on(T.b, sb, n, k, 0, got);
        cr_expect_eq(zeros(got, n), k, "%s: %s: %zu zeros", T.b->name, what, zeros(got, n));
        expect_identical(what, got, want, n);
        if (T.b->kind == ELAG_DEVICE_CPU) {
            select_on(T.b, sb, n, k, 1, got);
            expect_identical("radix fallback", got, want, n);
        }
        size_t hi_pruned = n, lo_kept = n; /* the largest pruned, the smallest kept */
        for (size_t i = 0; i < n; i++) {
            cr_assert(want[i] == 0.0f || want[i] == 1.0f);
            if (want[i] == 0.0f && (hi_pruned == n || !ranks_below(score, i, hi_pruned)))
                hi_pruned = i;
            if (want[i] == 1.0f && (lo_kept == n || ranks_below(score, i, lo_kept))) lo_kept = i;
        }
        cr_expect_eq(zeros(want, n), k, "cpu-ref: %s: %zu zeros", what, zeros(want, n));
        if (hi_pruned < n && lo_kept < n)
            cr_expect(ranks_below(score, hi_pruned, lo_kept),
                      "%s: pruned (%g, %zu) ranks above kept (%g, %zu)", what,
                      (double)score[hi_pruned], hi_pruned, (double)score[lo_kept], lo_kept);
    }
}

static void case_mask_select(void)
{
    /* random, with already-pruned entries (-1) */
    size_t n = 266200 + 7;
    float *s = hrnd(n, 0.0f, 1.0f, 101);
    for (size_t i = 0; i < n; i += 5) s[i] = -1.0f;
    const size_t k1[] = {0, n / 2, (size_t)(0.9 * n), (size_t)(0.99 * n), n, 1, n - 1};
    check_select(s, n, k1, 7, "random");
    const size_t k_one[] = {1}, k_small[] = {6};
    check_select(s, 1, k_one, 1, "n=1");
    check_select(s, 13, k_small, 1, "small");
    n = BIG;
    s = hrnd(n, -1.0f, 1.0f, 151);
    const size_t k2[] = {0, 1, 2, n / 2, (size_t)(0.9 * n), n - 1, n};
    check_select(s, n, k2, 7, "random signed");
    const size_t k_tiny[] = {0, 1, 3, 5};
    check_select(s, 5, k_tiny, 4, "tiny");

    /* ties: all equal, the lowest indices go first */
    n = 70001;
    s = hbuf(n);
    for (size_t i = 0; i < n; i++) s[i] = 0.25f;
    const size_t k3[] = {0, n / 2, (size_t)(0.9 * n), (size_t)(0.99 * n), n, 1234, 777, n / 3};
    check_select(s, n, k3, 8, "all equal");
    float *m = hbuf(n);
    select_on(T.b, fin(T.b, s, n, "score"), n, 1234, 0, m);
    for (size_t i = 0; i < n; i++)
        if (m[i] != (i < 1234 ? 0.0f : 1.0f)) {
            cr_expect(0, "%s: ties must go by index: entry %zu", T.b->name, i);
            break;
        }
    /* four values, the smallest being the pruned marker */
    const float q[4] = {-1.0f, 0.0f, 0.5f, 3.0f};
    for (size_t i = 0; i < n; i++) s[i] = q[elag_philox_u32(3, 3, i) & 3];
    const size_t k4[] = {0, n / 2, (size_t)(0.9 * n), (size_t)(0.99 * n), n, n / 4};
    check_select(s, n, k4, 6, "4 values");
    /* -0 and +0 are one value: ties broken by index, like the float compare of cpu-ref */
    for (size_t i = 0; i < n; i++) s[i] = (i % 2) ? -0.0f : (i % 3 ? 0.0f : 1.0f);
    const size_t k5[] = {n / 4, n / 3, n * 6 / 10};
    check_select(s, n, k5, 3, "signed zeros");
    /* NaN ranks above +inf (pruned last), -inf below everything */
    for (size_t i = 0; i < n; i++) s[i] = elag_philox_uniform(4, 4, i);
    for (size_t i = 0; i < n; i += 7) s[i] = NAN;
    for (size_t i = 3; i < n; i += 11) s[i] = INFINITY;
    for (size_t i = 5; i < n; i += 13) s[i] = -INFINITY;
    const size_t k6[] = {n / 2, n - n / 14, n / 20};
    check_select(s, n, k6, 3, "non-finite");
    /* eight values incl. both zeros, infinities and NaN */
    n = BIG;
    s = hrnd(n, 0.0f, 1.0f, 161);
    const float vals[] = {-1.0f, 0.0f, -0.0f, 0.25f, 0.5f, INFINITY, NAN, -INFINITY};
    for (size_t i = 0; i < n; i++) s[i] = vals[(size_t)(s[i] * 7.999f)];
    const size_t k7[] = {0, 1, 12345, n / 2, (size_t)(0.9 * n), n - 3, n};
    check_select(s, n, k7, 7, "8 values");
    /* magnitude scores of a half-pruned layer of a million weights, some exact ties */
    n = HUGE_N;
    float *w = hrnd(n, -0.1f, 0.1f, 171), *mask = hmask(n, 0.5, 172);
    for (size_t i = 0; i < n; i += 97) w[i] = 0.0625f;
    s = hbuf(n);
    for (size_t i = 0; i < n; i++) s[i] = mask[i] != 0.0f ? fabsf(w[i]) : -1.0f;
    const size_t k8[] = {0, n / 2, (size_t)(0.9 * n), n};
    check_select(s, n, k8, 4, "1e6");

    float none;
    select_on(T.b, fin(T.b, &none, 0, "score"), 0, 0, 0, &none); /* n = 0 */
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_mask_select(be, df, df + 8, 1, 2)); /* k > n */
}

static void case_count_nonzero(void)
{
    const double sp[] = {0.0, 0.5, 0.9, 0.99, 1.0};
    for (int j = 0; j < 5; j++) {
        float *x = hrnd(BIG, -1.0f, 1.0f, 181), *mask = hmask(BIG, sp[j], 182 + j);
        size_t hand = 0;
        for (size_t i = 0; i < BIG; i++) {
            if (mask[i] == 0.0f) x[i] = 0.0f;
            if (i == 0) x[i] = NAN;   /* NaN counts as nonzero */
            if (i == 1) x[i] = -0.0f; /* -0 as zero */
            if (i == 2) x[i] = -INFINITY;
            hand += x[i] != 0.0f;
        }
        size_t want = 1, got = 2;
        OK(T.ref->count_nonzero(T.ref, fin(T.ref, x, BIG, "x"), BIG, &want));
        OK(T.b->count_nonzero(T.b, fin(T.b, x, BIG, "x"), BIG, &got));
        cr_expect_eq(want, hand, "cpu-ref: count_nonzero %zu, want %zu", want, hand);
        cr_expect_eq(got, hand, "%s: count_nonzero at sparsity %g: %zu, want %zu", T.b->name,
                     sp[j], got, hand);
        OK(T.b->count_nonzero(T.b, fin(T.b, x + 3, 5, "x"), 5, &got));
        size_t five = 0;
        for (int i = 3; i < 8; i++) five += x[i] != 0.0f;
        cr_expect_eq(got, five);
    }
    size_t got = 7;
    float none;
    OK(T.b->count_nonzero(T.b, fin(T.b, &none, 0, "x"), 0, &got));
    cr_expect_eq(got, 0, "n = 0 counts 0");
}

/* ---- window ops: im2col, col2im ---- */

typedef struct wcase {
    const char *name;
    int C, N, n0, nb;
    elag_window g;
} wcase;

/* elag_window is {H, W, kh, kw, sh, sw, ph, pw, oh, ow}; oh, ow resolved by win() */
static const wcase wcases[] = {
    {"C3 N5 7x9 k3x2 s2x1 p1x0", 3, 5, 0, 5, {7, 9, 3, 2, 2, 1, 1, 0, 0, 0}},
    {"C3 N5 7x9 k3x2 s2x1 p1x0, samples 1..3", 3, 5, 1, 3, {7, 9, 3, 2, 2, 1, 1, 0, 0, 0}},
    {"kernel = plane 7x9", 2, 3, 0, 3, {7, 9, 7, 9, 1, 1, 0, 0, 0, 0}},
    {"kernel = plane, padded, strided", 2, 3, 2, 1, {7, 9, 7, 9, 2, 3, 1, 1, 0, 0}},
    {"stride > kernel: k2x3 s3x4 p0x1", 3, 4, 1, 2, {9, 11, 2, 3, 3, 4, 0, 1, 0, 0}},
    {"1x1 kernel", 5, 2, 0, 2, {5, 3, 1, 1, 1, 1, 0, 0, 0, 0}},
    {"padding >= kernel: k1x2 s1x2 p1x2", 2, 3, 0, 3, {3, 4, 1, 2, 1, 2, 1, 2, 0, 0}},
    {"1x1 planes", 1, 7, 3, 4, {1, 1, 1, 1, 1, 1, 0, 0, 0, 0}},
    {"C16 N8 14x14 k3x3 s1 p1 (parallel)", 16, 8, 0, 8, {14, 14, 3, 3, 1, 1, 1, 1, 0, 0}},
    {"C4 N6 12x10 k5x5 s2 p2, samples 2..5", 4, 6, 2, 4, {12, 10, 5, 5, 2, 2, 2, 2, 0, 0}},
};
#define N_WCASES (sizeof wcases / sizeof *wcases)

static elag_window win(const elag_window *g0)
{
    elag_window g = *g0;
    cr_assert_eq(elag_window_resolve(&g), ELAG_OK, "%s", elag_last_error());
    return g;
}

static size_t col_rows(int C, const elag_window *g) { return (size_t)C * g->kh * g->kw; }
static size_t col_cols(int nb, const elag_window *g) { return (size_t)nb * g->oh * g->ow; }

/* the index of x that col entry (row, column) reads, or -1 for padding (backend.h) */
static long im2col_src(int N, int n0, const elag_window *g, size_t row, size_t col)
{
    int c = (int)(row / ((size_t)g->kh * g->kw)), i = (int)(row / g->kw % g->kh),
        j = (int)(row % g->kw);
    int n = (int)(col / ((size_t)g->oh * g->ow)), y = (int)(col / g->ow % g->oh),
        x = (int)(col % g->ow);
    int h = y * g->sh - g->ph + i, w = x * g->sw - g->pw + j;
    if (h < 0 || h >= g->H || w < 0 || w >= g->W) return -1;
    return (long)((((size_t)c * N + n0 + n) * g->H + h) * g->W + w);
}

static void im2col_on(elag_backend *be, const float *x, int C, int N, int n0, int nb,
                      const elag_window *g, float *out)
{
    size_t nx = (size_t)C * N * g->H * g->W, ncol = col_rows(C, g) * col_cols(nb, g);
    float *dx = fin(be, x, nx, "x"), *dc = fout(be, ncol, "col");
    OKB(be, be->im2col(be, dc, dx, C, N, n0, nb, g));
    fget(out, dc, ncol);
}

static void col2im_on(elag_backend *be, const float *dx0, const float *col, int C, int N, int n0,
                      int nb, const elag_window *g, float *out)
{
    size_t nx = (size_t)C * N * g->H * g->W, ncol = col_rows(C, g) * col_cols(nb, g);
    float *dc = fin(be, col, ncol, "col"), *dx = fio(be, dx0, nx, "dx");
    OKB(be, be->col2im(be, dx, dc, C, N, n0, nb, g));
    fget(out, dx, nx);
}

/* zero sizes are no-ops, negative sizes ELAG_ERR_INTERNAL, samples out of range and a wrong
 * geometry refused alike everywhere */
static void window_refusals(int is_col2im)
{
    elag_window g = win(&wcases[0].g), bad = g;
    bad.oh += 1; /* not what elag_window_resolve gives */
    for (int k = 0; k < 2; k++) {
        elag_backend *be = k ? T.b : T.ref;
        float x[8] = {0};
        float *dx = is_col2im ? fio(be, x, 0, "dx") : fin(be, x, 0, "x");
        float *dc = is_col2im ? fin(be, x, 0, "col") : fout(be, 0, "col");
        if (is_col2im) {
            OKB(be, be->col2im(be, dx, dc, 0, 5, 0, 5, &g));
            OKB(be, be->col2im(be, dx, dc, 3, 0, 0, 0, &g));
        } else {
            OKB(be, be->im2col(be, dc, dx, 0, 5, 0, 5, &g));
            OKB(be, be->im2col(be, dc, dx, 3, 0, 0, 0, &g));
        }
        /* nb = 0 of N = 5: nothing read or written */
        float *dx5 = fin(be, hrnd(3 * 5 * 63, -1, 1, 5), 3 * 5 * 63, "x");
        if (is_col2im)
            OKB(be, be->col2im(be, fio(be, hrnd(3 * 5 * 63, -1, 1, 5), 3 * 5 * 63, "dx"), dc, 3,
                               5, 2, 0, &g));
        else
            OKB(be, be->im2col(be, dc, dx5, 3, 5, 2, 0, &g));
    }
    if (is_col2im) {
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_col2im(be, df, df, -1, 5, 0, 5, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_col2im(be, df, df, 3, -1, 0, 0, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_col2im(be, df, df, 3, 5, -1, 2, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_col2im(be, df, df, 3, 5, 0, -2, &g));
        ALL_REFUSE(elag_be_col2im(be, df, df, 1, 2, 1, 2, &g)); /* samples 1..2 of 2 */
        ALL_REFUSE(elag_be_col2im(be, df, df, 1, 1, 0, 1, &bad));
    } else {
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_im2col(be, df, df, -1, 5, 0, 5, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_im2col(be, df, df, 3, -1, 0, 0, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_im2col(be, df, df, 3, 5, -1, 2, &g));
        ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_im2col(be, df, df, 3, 5, 0, -2, &g));
        ALL_REFUSE(elag_be_im2col(be, df, df, 1, 2, 1, 2, &g));
        ALL_REFUSE(elag_be_im2col(be, df, df, 1, 1, 0, 1, &bad));
    }
}

static void case_im2col(void)
{
    for (size_t c = 0; c < N_WCASES; c++) {
        const wcase *wc = &wcases[c];
        elag_window g = win(&wc->g);
        size_t nx = (size_t)wc->C * wc->N * g.H * g.W;
        size_t rows = col_rows(wc->C, &g), cols = col_cols(wc->nb, &g), ncol = rows * cols;
        float *x = hrnd(nx, -1.0f, 1.0f, 200 + c), *want = hbuf(ncol), *got = hbuf(ncol);
        float *hand = hbuf(ncol);
        for (size_t r = 0; r < rows; r++)
            for (size_t q = 0; q < cols; q++) {
                long s = im2col_src(wc->N, wc->n0, &g, r, q);
                hand[r * cols + q] = s < 0 ? 0.0f : x[s];
            }
        im2col_on(T.ref, x, wc->C, wc->N, wc->n0, wc->nb, &g, want);
        im2col_on(T.b, x, wc->C, wc->N, wc->n0, wc->nb, &g, got);
        char what[128];
        snprintf(what, sizeof what, "im2col %s", wc->name);
        expect_identical(what, got, want, ncol);
        expect_identical(what, got, hand, ncol);
    }
    window_refusals(0);
}

static void case_col2im(void)
{
    for (size_t c = 0; c < N_WCASES; c++) {
        const wcase *wc = &wcases[c];
        elag_window g = win(&wc->g);
        size_t nx = (size_t)wc->C * wc->N * g.H * g.W, plane = (size_t)g.H * g.W;
        size_t rows = col_rows(wc->C, &g), cols = col_cols(wc->nb, &g), ncol = rows * cols;
        float *col = hrnd(ncol, -1.0f, 1.0f, 300 + c), *dx0 = hrnd(nx, -1.0f, 1.0f, 350 + c);
        float *want = hbuf(nx), *got = hbuf(nx);
        double *hand = dbuf(nx);
        for (size_t i = 0; i < nx; i++) hand[i] = dx0[i];
        for (size_t r = 0; r < rows; r++)
            for (size_t q = 0; q < cols; q++) {
                long s = im2col_src(wc->N, wc->n0, &g, r, q);
                if (s >= 0) hand[s] += col[r * cols + q];
            }
        col2im_on(T.ref, dx0, col, wc->C, wc->N, wc->n0, wc->nb, &g, want);
        col2im_on(T.b, dx0, col, wc->C, wc->N, wc->n0, wc->nb, &g, got);
        /* each entry sums at most ceil(kh/sh) * ceil(kw/sw) window entries onto dx */
        double terms = (double)((g.kh + g.sh - 1) / g.sh) * ((g.kw + g.sw - 1) / g.sw) + 1.0;
        char what[128];
        snprintf(what, sizeof what, "col2im %s", wc->name);
        expect_close(what, got, want, nx, sqrt(terms));
        expect_hand(what, got, to_float(hand, nx), nx, sqrt(terms));
        for (size_t i = 0; i < nx; i++) { /* samples outside [n0, n0 + nb) untouched */
            int n = (int)(i / plane % wc->N);
            if ((n < wc->n0 || n >= wc->n0 + wc->nb) && memcmp(&got[i], &dx0[i], 4) != 0) {
                cr_expect(0, "%s: %s changed sample %d (entry %zu)", T.b->name, what, n, i);
                break;
            }
        }
    }
    window_refusals(1);
}

/* <im2col(x), c> == <x, col2im(c)> (from dx = 0), in double, on the backend under test */
static void case_col2im_adjoint(void)
{
    elag_backend *b = T.b;
    for (size_t c = 0; c < N_WCASES; c++) {
        const wcase *wc = &wcases[c];
        elag_window g = win(&wc->g);
        size_t nx = (size_t)wc->C * wc->N * g.H * g.W;
        size_t ncol = col_rows(wc->C, &g) * col_cols(wc->nb, &g);
        float *x = hrnd(nx, -1.0f, 1.0f, 400 + c), *cv = hrnd(ncol, -1.0f, 1.0f, 450 + c);
        float *ax = hbuf(ncol), *atc = hbuf(nx), *z = hbuf(nx);
        im2col_on(b, x, wc->C, wc->N, wc->n0, wc->nb, &g, ax);
        col2im_on(b, z, cv, wc->C, wc->N, wc->n0, wc->nb, &g, atc);
        double lhs = 0.0, rhs = 0.0, mag = 0.0;
        for (size_t i = 0; i < ncol; i++) {
            lhs += (double)ax[i] * cv[i];
            mag += fabs((double)ax[i] * cv[i]);
        }
        for (size_t i = 0; i < nx; i++) rhs += (double)x[i] * atc[i];
        cr_expect(fabs(lhs - rhs) <= ELAG_TOL_ADJOINT_REL * mag + 1e-12,
                  "%s: %s: <im2col(x), c> = %.12g but <x, col2im(c)> = %.12g (|terms| %g)",
                  b->name, wc->name, lhs, rhs, mag);
    }
}

/* ---- pooling ---- */

typedef struct pcase {
    const char *name;
    int planes;
    elag_window g;
} pcase;

static const pcase pcases[] = {
    {"15 planes 7x9 k3x2 s2x1 p1x0", 15, {7, 9, 3, 2, 2, 1, 1, 0, 0, 0}},
    {"global: kernel = plane 7x9", 6, {7, 9, 7, 9, 1, 1, 0, 0, 0, 0}},
    {"stride > kernel: 9x11 k2x3 s3x4 p0x1", 4, {9, 11, 2, 3, 3, 4, 0, 1, 0, 0}},
    {"padding >= kernel (empty windows): 3x4 k1x2 s1x2 p1x2", 3, {3, 4, 1, 2, 1, 2, 1, 2, 0, 0}},
    {"overlapping 5x5 k3x3 s1 p1", 5, {5, 5, 3, 3, 1, 1, 1, 1, 0, 0}},
    {"64 planes 28x28 k2x2 s2 (parallel)", 64, {28, 28, 2, 2, 2, 2, 0, 0, 0, 0}},
    {"13 planes 10x10 k3x3 s2 p1", 13, {10, 10, 3, 3, 2, 2, 1, 1, 0, 0}},
};
#define N_PCASES (sizeof pcases / sizeof *pcases)

/* pool_forward by the words of backend.h; y in double for avg */
static void pool_hand(elag_pool_mode mode, const float *x, int planes, const elag_window *g,
                      float *y, int32_t *am)
{
    for (int p = 0; p < planes; p++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                double s = 0.0;
                float best = 0.0f;
                int32_t arg = -1;
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int h = oy * g->sh - g->ph + i, w = ox * g->sw - g->pw + j;
                        if (h < 0 || h >= g->H || w < 0 || w >= g->W) continue;
                        float v = x[((size_t)p * g->H + h) * g->W + w];
                        if (arg < 0 || v > best) best = v, arg = h * g->W + w;
                        s += v;
                    }
                size_t o = ((size_t)p * g->oh + oy) * g->ow + ox;
                if (mode == ELAG_POOL_MAX) {
                    y[o] = arg < 0 ? 0.0f : best;
                    am[o] = arg;
                } else {
                    y[o] = (float)(s / (g->kh * g->kw));
                }
            }
}

static void pool_back_hand(elag_pool_mode mode, const float *dy, const int32_t *am, int planes,
                           const elag_window *g, double *dx)
{
    size_t plane = (size_t)g->H * g->W;
    memset(dx, 0, planes * plane * sizeof *dx);
    for (int p = 0; p < planes; p++)
        for (int oy = 0; oy < g->oh; oy++)
            for (int ox = 0; ox < g->ow; ox++) {
                size_t o = ((size_t)p * g->oh + oy) * g->ow + ox;
                if (mode == ELAG_POOL_MAX) {
                    if (am[o] >= 0) dx[p * plane + am[o]] += dy[o];
                    continue;
                }
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int h = oy * g->sh - g->ph + i, w = ox * g->sw - g->pw + j;
                        if (h < 0 || h >= g->H || w < 0 || w >= g->W) continue;
                        dx[p * plane + (size_t)h * g->W + w] += (double)dy[o] / (g->kh * g->kw);
                    }
            }
}

static void pool_fwd_on(elag_backend *be, elag_pool_mode mode, const float *x, int planes,
                        const elag_window *g, float *y, int32_t *am)
{
    size_t nx = (size_t)planes * g->H * g->W, ny = (size_t)planes * g->oh * g->ow;
    float *dx = fin(be, x, nx, "x"), *dy = fout(be, ny, "y");
    int32_t *dam = mode == ELAG_POOL_MAX ? iout(be, ny, "argmax") : NULL;
    OKB(be, be->pool_forward(be, mode, dy, dam, dx, planes, g));
    fget(y, dy, ny);
    if (dam) iget(am, dam, ny);
}

static void pool_bwd_on(elag_backend *be, elag_pool_mode mode, const float *dy, const int32_t *am,
                        int planes, const elag_window *g, float *dx)
{
    size_t nx = (size_t)planes * g->H * g->W, ny = (size_t)planes * g->oh * g->ow;
    float *ddy = fin(be, dy, ny, "dy"), *ddx = fout(be, nx, "dx");
    int32_t *dam = mode == ELAG_POOL_MAX ? iin(be, am, ny, "argmax") : NULL;
    OKB(be, be->pool_backward(be, mode, ddx, ddy, dam, planes, g));
    fget(dx, ddx, nx);
}

/* x for pooling: random, or with many ties (values in {-1, 0, 1}) */
static float *pool_input(size_t n, int ties, uint64_t seed)
{
    float *x = hrnd(n, -1.0f, 1.0f, seed);
    if (ties)
        for (size_t i = 0; i < n; i++) x[i] = (float)((int)(elag_philox_u32(seed, 9, i) % 3) - 1);
    return x;
}

static void pool_refusals(int backward)
{
    elag_window g = win(&pcases[0].g), bad = g;
    bad.ow += 2;
    for (int k = 0; k < 2; k++) { /* planes 0: nothing read or written */
        elag_backend *be = k ? T.b : T.ref;
        float *dx = fout(be, 0, "x"), *dy = fout(be, 0, "y");
        int32_t *dam = iout(be, 0, "argmax");
        for (int mode = 0; mode < 2; mode++) {
            if (backward)
                OKB(be, be->pool_backward(be, (elag_pool_mode)mode, dx, dy, dam, 0, &g));
            else
                OKB(be, be->pool_forward(be, (elag_pool_mode)mode, dy, dam, dx, 0, &g));
        }
    }
    for (int mode = 0; mode < 2; mode++) {
        elag_pool_mode md = (elag_pool_mode)mode;
        if (backward) {
            ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_pool_backward(be, md, df, df, di, -1, &g));
            ALL_REFUSE(elag_be_pool_backward(be, md, df, df, di, 1, &bad));
        } else {
            ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_pool_forward(be, md, df, di, df, -1, &g));
            ALL_REFUSE(elag_be_pool_forward(be, md, df, di, df, 1, &bad));
        }
    }
    if (backward) {
        ALL_REFUSE(elag_be_pool_backward(be, (elag_pool_mode)7, df, df, di, 1, &g));
        ALL_REFUSE(elag_be_pool_backward(be, ELAG_POOL_MAX, df, df, NULL, 1, &g));
    } else {
        ALL_REFUSE(elag_be_pool_forward(be, (elag_pool_mode)7, df, di, df, 1, &g));
        ALL_REFUSE(elag_be_pool_forward(be, ELAG_POOL_MAX, df, NULL, df, 1, &g));
    }
}

static void case_pool_forward(void)
{
    for (size_t c = 0; c < N_PCASES; c++)
        for (int ties = 0; ties < 2; ties++) {
            const pcase *pc = &pcases[c];
            elag_window g = win(&pc->g);
            size_t nx = (size_t)pc->planes * g.H * g.W, ny = (size_t)pc->planes * g.oh * g.ow;
            float *x = pool_input(nx, ties, 500 + c);
            float *want = hbuf(ny), *got = hbuf(ny), *hand = hbuf(ny);
            int32_t *am_want = ibuf(ny), *am_got = ibuf(ny), *am_hand = ibuf(ny);
            char what[128];
            /* max: which entry is the maximum is data movement, so bit for bit */
            pool_hand(ELAG_POOL_MAX, x, pc->planes, &g, hand, am_hand);
            pool_fwd_on(T.ref, ELAG_POOL_MAX, x, pc->planes, &g, want, am_want);
            pool_fwd_on(T.b, ELAG_POOL_MAX, x, pc->planes, &g, got, am_got);
            snprintf(what, sizeof what, "max pool %s%s", pc->name, ties ? ", ties" : "");
            expect_identical(what, got, want, ny);
            expect_identical(what, got, hand, ny);
            expect_identical_i32(what, am_got, am_want, ny);
            expect_identical_i32(what, am_got, am_hand, ny);
            /* avg: a sum of the window over kh*kw */
            pool_hand(ELAG_POOL_AVG, x, pc->planes, &g, hand, am_hand);
            pool_fwd_on(T.ref, ELAG_POOL_AVG, x, pc->planes, &g, want, NULL);
            pool_fwd_on(T.b, ELAG_POOL_AVG, x, pc->planes, &g, got, NULL);
            snprintf(what, sizeof what, "avg pool %s%s", pc->name, ties ? ", ties" : "");
            expect_close(what, got, want, ny, 1.0);
            expect_hand(what, got, hand, ny, 1.0);
        }
    pool_refusals(0);
}

static void case_pool_backward(void)
{
    for (size_t c = 0; c < N_PCASES; c++)
        for (int mode = 0; mode < 2; mode++) {
            const pcase *pc = &pcases[c];
            elag_pool_mode md = (elag_pool_mode)mode;
            elag_window g = win(&pc->g);
            size_t nx = (size_t)pc->planes * g.H * g.W, ny = (size_t)pc->planes * g.oh * g.ow;
            float *x = pool_input(nx, 1, 600 + c), *y = hbuf(ny), *dy = hrnd(ny, -1, 1, 650 + c);
            int32_t *am = ibuf(ny);
            pool_hand(ELAG_POOL_MAX, x, pc->planes, &g, y, am); /* argmax with ties, -1s */
            float *want = hbuf(nx), *got = hbuf(nx);
            double *hand = dbuf(nx);
            pool_back_hand(md, dy, am, pc->planes, &g, hand);
            pool_bwd_on(T.ref, md, dy, am, pc->planes, &g, want);
            pool_bwd_on(T.b, md, dy, am, pc->planes, &g, got);
            /* each dx entry sums at most ceil(kh/sh) * ceil(kw/sw) windows' dy */
            double terms = (double)((g.kh + g.sh - 1) / g.sh) * ((g.kw + g.sw - 1) / g.sw);
            char what[128];
            snprintf(what, sizeof what, "%s pool backward %s", mode ? "avg" : "max", pc->name);
            expect_close(what, got, want, nx, sqrt(terms));
            expect_hand(what, got, to_float(hand, nx), nx, sqrt(terms));
        }
    pool_refusals(1);
}

/* d/dx of <w, pool(x)> by central differences against pool_backward(dy = w), on the backend
 * under test. Max pooling gets distinct values 0.05 apart (a permutation), so a step of
 * ELAG_FD_EPS never changes which entry is the maximum. */
static void pool_fd(elag_pool_mode mode, int planes, const elag_window *g0, const char *name)
{
    elag_backend *b = T.b;
    elag_window g = win(g0);
    size_t nx = (size_t)planes * g.H * g.W, ny = (size_t)planes * g.oh * g.ow;
    float *x = hrnd(nx, -1.0f, 1.0f, 700);
    if (mode == ELAG_POOL_MAX)
        for (size_t i = 0; i < nx; i++)
            x[i] = 0.05f * ((float)((i * 7919u) % nx) - (float)nx / 2);
    float *w = hrnd(ny, -1.0f, 1.0f, 701), *y = hbuf(ny);
    float *dx = fio(b, x, nx, "x"), *dy = fout(b, ny, "y"), *dw = fin(b, w, ny, "dy");
    float *dgx = fout(b, nx, "dx");
    int32_t *dam = mode == ELAG_POOL_MAX ? iout(b, ny, "argmax") : NULL;
    OK(b->pool_forward(b, mode, dy, dam, dx, planes, &g));
    OK(b->pool_backward(b, mode, dgx, dw, dam, planes, &g));
    float *analytic = hbuf(nx), *numeric = hbuf(nx);
    fget(analytic, dgx, nx);
    for (size_t i = 0; i < nx; i++) {
        double loss[2];
        for (int s = 0; s < 2; s++) {
            float v = x[i] + (s ? -ELAG_FD_EPS : ELAG_FD_EPS);
            OK(b->to_device(b, dx + i, &v, 4));
            OK(b->pool_forward(b, mode, dy, dam, dx, planes, &g));
            fget(y, dy, ny);
            loss[s] = 0.0;
            for (size_t o = 0; o < ny; o++) loss[s] += (double)w[o] * y[o];
        }
        OK(b->to_device(b, dx + i, &x[i], 4));
        numeric[i] = (float)((loss[0] - loss[1]) / (2.0 * ELAG_FD_EPS));
    }
    char what[128];
    snprintf(what, sizeof what, "%s pool gradient %s", mode ? "avg" : "max", name);
    expect_within(what, analytic, numeric, nx, ELAG_TOL_FD_ABS, ELAG_TOL_FD_REL, 1.0);
}

static void case_pool_gradcheck(void)
{
    const int planes[] = {3, 2, 2, 2, 2};
    const size_t which[] = {0, 1, 2, 3, 4};
    for (size_t k = 0; k < sizeof which / sizeof *which; k++)
        for (int mode = 0; mode < 2; mode++)
            pool_fd((elag_pool_mode)mode, planes[k], &pcases[which[k]].g, pcases[which[k]].name);
}

/* ---- batch norm ---- */

typedef struct bncase {
    const char *name;
    int C, L;
    float lo, hi, momentum;
} bncase;

static const bncase bncases[] = {
    {"C3 L315", 3, 315, -1.0f, 1.0f, 0.1f},
    {"C5 L1", 5, 1, -1.0f, 1.0f, 0.1f},
    {"C1 L2", 1, 2, -1.0f, 1.0f, 0.1f},
    {"C7 L37, mean 3", 7, 37, 2.0f, 4.0f, 0.1f},
    {"C16 L4099", 16, 4099, -1.0f, 1.0f, 0.1f},
    {"C4 L4, momentum 1", 4, 4, -1.0f, 1.0f, 1.0f},
    {"C33 L10", 33, 10, -0.5f, 1.5f, 0.3f},
};
#define N_BNCASES (sizeof bncases / sizeof *bncases)
#define BN_EPS 1e-5f

typedef struct bn_io {
    float *y, *rm, *rv, *sm, *si; /* outputs (host) */
} bn_io;

static bn_io bn_alloc(int C, int L)
{
    bn_io o = {hbuf((size_t)C * L), hbuf(C), hbuf(C), hbuf(C), hbuf(C)};
    return o;
}

static void bn_fwd_on(elag_backend *be, int training, int alias, const float *x, int C, int L,
                      const float *gamma, const float *beta, const float *rm0, const float *rv0,
                      float mom, bn_io *o)
{
    size_t n = (size_t)C * L;
    float *dx = alias ? fio(be, x, n, "x = y") : fin(be, x, n, "x");
    float *dy = alias ? dx : fout(be, n, "y");
    float *dg = fin(be, gamma, C, "gamma"), *db = fin(be, beta, C, "beta");
    float *drm = fio(be, rm0, C, "run_mean"), *drv = fio(be, rv0, C, "run_var");
    float *dsm = training ? fout(be, C, "save_mean") : NULL;
    float *dsi = training ? fout(be, C, "save_invstd") : NULL;
    OKB(be, be->batchnorm_forward(be, training, dy, dx, C, L, dg, db, drm, drv, mom, BN_EPS, dsm,
                                  dsi));
    fget(o->y, dy, n);
    fget(o->rm, drm, C);
    fget(o->rv, drv, C);
    if (training) fget(o->sm, dsm, C), fget(o->si, dsi, C);
}

/* training-mode statistics of row c in double */
static void bn_stats(const float *x, int L, double *mean, double *var)
{
    double s = 0.0, q = 0.0;
    for (int l = 0; l < L; l++) s += x[l];
    *mean = s / L;
    for (int l = 0; l < L; l++) q += (x[l] - *mean) * (x[l] - *mean);
    *var = q / L;
}

static void case_batchnorm_forward(void)
{
    for (size_t c = 0; c < N_BNCASES; c++) {
        const bncase *bc = &bncases[c];
        int C = bc->C, L = bc->L;
        size_t n = (size_t)C * L;
        float *x = hrnd(n, bc->lo, bc->hi, 800 + c), *gamma = hrnd(C, 0.5f, 1.5f, 810 + c);
        float *beta = hrnd(C, -0.5f, 0.5f, 820 + c), *rm0 = hrnd(C, -1.0f, 1.0f, 830 + c);
        float *rv0 = hrnd(C, 0.5f, 1.5f, 840 + c);
        /* by hand, in double */
        double *y = dbuf(n), *sm = dbuf(C), *si = dbuf(C), *rm = dbuf(C), *rv = dbuf(C);
        double *ye = dbuf(n), *hvar = dbuf(C);
        double m = bc->momentum;
        for (int ch = 0; ch < C; ch++) {
            double mean, var;
            bn_stats(x + (size_t)ch * L, L, &mean, &var);
            hvar[ch] = var;
            sm[ch] = mean, si[ch] = 1.0 / sqrt(var + BN_EPS);
            rm[ch] = (1 - m) * rm0[ch] + m * mean;
            rv[ch] = (1 - m) * rv0[ch] + m * (L > 1 ? var * L / (L - 1) : var);
            double eis = 1.0 / sqrt((double)rv0[ch] + BN_EPS);
            for (int l = 0; l < L; l++) {
                size_t i = (size_t)ch * L + l;
                y[i] = (x[i] - mean) * si[ch] * gamma[ch] + beta[ch];
                ye[i] = (x[i] - rm0[ch]) * eis * gamma[ch] + beta[ch];
            }
        }
        for (int alias = 0; alias < 2; alias++) {
            bn_io r = bn_alloc(C, L), o = bn_alloc(C, L);
            bn_fwd_on(T.ref, 1, 0, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &r);
            bn_fwd_on(T.b, 1, alias, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &o);
            char what[128];
            snprintf(what, sizeof what, "batchnorm training %s%s", bc->name, alias ? " y=x" : "");
            expect_close(what, o.y, r.y, n, 1.0);
            expect_close("save_mean", o.sm, r.sm, C, 1.0);
            expect_close("save_invstd", o.si, r.si, C, 1.0);
            expect_close("run_mean", o.rm, r.rm, C, 1.0);
            expect_close("run_var", o.rv, r.rv, C, 1.0);
            expect_hand(what, o.y, to_float(y, n), n, 1.0);
            expect_hand("save_mean by hand", o.sm, to_float(sm, C), C, 1.0);
            expect_hand("save_invstd by hand", o.si, to_float(si, C), C, 1.0);
            expect_hand("run_mean by hand", o.rm, to_float(rm, C), C, 1.0);
            expect_hand("run_var by hand (unbiased)", o.rv, to_float(rv, C), C, 1.0);
            if (L > 1 && L < 1000) /* the unbiased variance, told apart from the biased one */
                for (int ch = 0; ch < C; ch++) {
                    double biased = (1 - m) * rv0[ch] + m * hvar[ch];
                    if (!(fabs(o.rv[ch] - rv[ch]) < 0.25 * fabs(rv[ch] - biased))) {
                        cr_expect(0,
                                  "%s: %s channel %d: run_var %.9g, unbiased %.9g, biased %.9g",
                                  T.b->name, what, ch, (double)o.rv[ch], rv[ch], biased);
                        break;
                    }
                }
            /* eval: the running statistics, which stay as they were */
            bn_io e = bn_alloc(C, L);
            bn_fwd_on(T.b, 0, alias, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &e);
            snprintf(what, sizeof what, "batchnorm eval %s%s", bc->name, alias ? " y=x" : "");
            expect_hand(what, e.y, to_float(ye, n), n, 1.0);
            expect_identical("eval leaves run_mean", e.rm, rm0, C);
            expect_identical("eval leaves run_var", e.rv, rv0, C);
        }
    }
    /* C = 0: nothing read or written */
    float none;
    bn_io z = {&none, &none, &none, &none, &none};
    for (int training = 0; training < 2; training++)
        bn_fwd_on(T.b, training, 0, &none, 0, 5, &none, &none, &none, &none, 0.1f, &z);
    /* L = 0: no samples, no statistics: the running buffers stay */
    const float g3[3] = {1, 2, 3}, b3[3] = {0.5f, 0, -0.5f}, rm3[3] = {0.25f, -1, 2},
                rv3[3] = {1, 0.5f, 2};
    for (int training = 0; training < 2; training++) {
        float y, rm[3], rv[3], sm[3], si[3];
        bn_io o = {&y, rm, rv, sm, si};
        bn_fwd_on(T.b, training, 0, &none, 3, 0, g3, b3, rm3, rv3, 0.1f, &o);
        expect_identical("L = 0 leaves run_mean", rm, rm3, 3);
        expect_identical("L = 0 leaves run_var", rv, rv3, 3);
    }
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_batchnorm_forward(be, 1, df, df, -1, 4, df, df, df, df,
                                                            0.1f, BN_EPS, df, df));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_batchnorm_forward(be, 1, df, df, 2, -4, df, df, df, df,
                                                            0.1f, BN_EPS, df, df));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_batchnorm_forward(be, 0, df, df, -1, 4, df, df, df, df,
                                                            0.1f, BN_EPS, NULL, NULL));
}

static void bn_bwd_on(elag_backend *be, int alias, const float *dy, const float *x, int C, int L,
                      const float *gamma, const float *sm, const float *si, float *dx,
                      float *dgamma, float *dbeta)
{
    size_t n = (size_t)C * L;
    float *ddy = alias ? fio(be, dy, n, "dy = dx") : fin(be, dy, n, "dy");
    float *ddx = alias ? ddy : fout(be, n, "dx");
    float *dxx = fin(be, x, n, "x"), *dg = fin(be, gamma, C, "gamma");
    float *dsm = fin(be, sm, C, "save_mean"), *dsi = fin(be, si, C, "save_invstd");
    float *ddg = fout(be, C, "dgamma"), *ddb = fout(be, C, "dbeta");
    OKB(be, be->batchnorm_backward(be, ddx, ddg, ddb, ddy, dxx, C, L, dg, dsm, dsi));
    fget(dx, ddx, n);
    fget(dgamma, ddg, C);
    fget(dbeta, ddb, C);
}

static void case_batchnorm_backward(void)
{
    for (size_t c = 0; c < N_BNCASES; c++) {
        const bncase *bc = &bncases[c];
        int C = bc->C, L = bc->L;
        size_t n = (size_t)C * L;
        float *x = hrnd(n, bc->lo, bc->hi, 900 + c), *gamma = hrnd(C, 0.5f, 1.5f, 910 + c);
        float *beta = hrnd(C, -0.5f, 0.5f, 920 + c), *rm0 = hrnd(C, -1.0f, 1.0f, 930 + c);
        float *rv0 = hrnd(C, 0.5f, 1.5f, 940 + c), *dy = hrnd(n, -1.0f, 1.0f, 950 + c);
        bn_io f = bn_alloc(C, L);
        bn_fwd_on(T.ref, 1, 0, x, C, L, gamma, beta, rm0, rv0, bc->momentum, &f);
        /* by hand, in double, from the saved statistics */
        double *dx = dbuf(n), *dg = dbuf(C), *db = dbuf(C), scale = 0.0;
        for (int ch = 0; ch < C; ch++) {
            const float *xr = x + (size_t)ch * L, *dyr = dy + (size_t)ch * L;
            for (int l = 0; l < L; l++) {
                db[ch] += dyr[l];
                dg[ch] += dyr[l] * ((xr[l] - (double)f.sm[ch]) * f.si[ch]);
            }
            double k = gamma[ch] * (double)f.si[ch];
            for (int l = 0; l < L; l++) {
                double xhat = (xr[l] - (double)f.sm[ch]) * f.si[ch];
                dx[(size_t)ch * L + l] = k / L * (L * (double)dyr[l] - db[ch] - xhat * dg[ch]);
                if (fabs(k * dyr[l]) > scale) scale = fabs(k * dyr[l]);
            }
        }
        for (int alias = 0; alias < 2; alias++) {
            float *rdx = hbuf(n), *rdg = hbuf(C), *rdb = hbuf(C);
            float *gdx = hbuf(n), *gdg = hbuf(C), *gdb = hbuf(C);
            bn_bwd_on(T.ref, 0, dy, x, C, L, gamma, f.sm, f.si, rdx, rdg, rdb);
            bn_bwd_on(T.b, alias, dy, x, C, L, gamma, f.sm, f.si, gdx, gdg, gdb);
            char what[128];
            snprintf(what, sizeof what, "batchnorm backward %s%s", bc->name,
                     alias ? " dx=dy" : "");
            /* normalised: dx = gamma invstd / L (L dy - dbeta - xhat dgamma) is a difference
             * of terms of size L |dy| that cancel to size |dy|, so its bound scales with
             * max |gamma invstd dy|; the sums over a row with sqrt(L) */
            expect_close(what, gdx, rdx, n, scale);
            expect_close("dgamma", gdg, rdg, C, sqrt((double)L));
            expect_close("dbeta", gdb, rdb, C, sqrt((double)L));
            expect_hand(what, gdx, to_float(dx, n), n, scale);
            expect_hand("dgamma by hand", gdg, to_float(dg, C), C, sqrt((double)L));
            expect_hand("dbeta by hand", gdb, to_float(db, C), C, sqrt((double)L));
        }
    }
    float none;
    bn_bwd_on(T.b, 0, &none, &none, 0, 5, &none, &none, &none, &none, &none, &none); /* C = 0 */
    /* L = 0: sums over no samples, dgamma = dbeta = 0 */
    const float g3[3] = {1, 2, 3}, s3[3] = {0.5f, 0, -0.5f}, zero3[3] = {0, 0, 0};
    float dg3[3], db3[3];
    bn_bwd_on(T.b, 0, &none, &none, 3, 0, g3, s3, g3, &none, dg3, db3);
    expect_identical("L = 0: dgamma", dg3, zero3, 3);
    expect_identical("L = 0: dbeta", db3, zero3, 3);
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_batchnorm_backward(be, df, df, df, df, df, -1, 4, df, df, df));
    ALL_RETURN(ELAG_ERR_INTERNAL,
               elag_be_batchnorm_backward(be, df, df, df, df, df, 2, -4, df, df, df));
}

/* d/d(x, gamma, beta) of <w, batchnorm_training(x)> by central differences against
 * batchnorm_backward(dy = w), on the backend under test */
static void bn_fd(int C, int L, uint64_t seed)
{
    elag_backend *b = T.b;
    size_t n = (size_t)C * L;
    float *x = hrnd(n, -1.0f, 1.0f, seed), *gamma = hrnd(C, 0.5f, 1.5f, seed + 1);
    float *beta = hrnd(C, -0.5f, 0.5f, seed + 2), *w = hrnd(n, -1.0f, 1.0f, seed + 3);
    float *y = hbuf(n);
    float *dx = fio(b, x, n, "x"), *dg = fio(b, gamma, C, "gamma"), *db = fio(b, beta, C, "beta");
    float *dy = fout(b, n, "y"), *dw = fin(b, w, n, "dy");
    float *drm = fout(b, C, "run_mean"), *drv = fout(b, C, "run_var");
    float *dsm = fout(b, C, "save_mean"), *dsi = fout(b, C, "save_invstd");
    float *gx = fout(b, n, "dx"), *gg = fout(b, C, "dgamma"), *gb = fout(b, C, "dbeta");
    OK(b->batchnorm_forward(b, 1, dy, dx, C, L, dg, db, drm, drv, 0.1f, BN_EPS, dsm, dsi));
    OK(b->batchnorm_backward(b, gx, gg, gb, dw, dx, C, L, dg, dsm, dsi));
    size_t np = n + 2 * (size_t)C;
    float *analytic = hbuf(np), *numeric = hbuf(np);
    fget(analytic, gx, n);
    fget(analytic + n, gg, C);
    fget(analytic + n + C, gb, C);
    for (size_t i = 0; i < np; i++) {
        float *host = i < n ? x + i : i < n + C ? gamma + (i - n) : beta + (i - n - C);
        float *dev = i < n ? dx + i : i < n + C ? dg + (i - n) : db + (i - n - C);
        double loss[2];
        for (int s = 0; s < 2; s++) {
            float v = *host + (s ? -ELAG_FD_EPS : ELAG_FD_EPS);
            OK(b->to_device(b, dev, &v, 4));
            OK(b->batchnorm_forward(b, 1, dy, dx, C, L, dg, db, drm, drv, 0.1f, BN_EPS, dsm, dsi));
            fget(y, dy, n);
            loss[s] = 0.0;
            for (size_t o = 0; o < n; o++) loss[s] += (double)w[o] * y[o];
        }
        OK(b->to_device(b, dev, host, 4));
        numeric[i] = (float)((loss[0] - loss[1]) / (2.0 * ELAG_FD_EPS));
    }
    char what[64];
    snprintf(what, sizeof what, "batchnorm gradient C%d L%d (dx, dgamma, dbeta)", C, L);
    expect_within(what, analytic, numeric, np, ELAG_TOL_FD_ABS, ELAG_TOL_FD_REL, 1.0);
}

static void case_batchnorm_gradcheck(void)
{
    bn_fd(2, 15, 1000);
    bn_fd(3, 4, 1010);
    bn_fd(1, 35, 1020);
}

/* ---- dropout ---- */

static void dropout_on(elag_backend *be, int alias, const float *x, size_t n, float p,
                       uint64_t seed, uint64_t stream, uint64_t offset, float *y, float *keep)
{
    float *dx = alias ? fio(be, x, n, "x = y") : fin(be, x, n, "x");
    float *dy = alias ? dx : fout(be, n, "y"), *dk = fout(be, n, "keep");
    OKB(be, be->dropout_forward(be, dy, dk, dx, n, p, seed, stream, offset));
    fget(y, dy, n);
    fget(keep, dk, n);
}

static void case_dropout_forward(void)
{
    const float ps[] = {0.0f, 0.1f, 0.5f, 0.9f};
    const size_t sizes[] = {1, 37, BIG};
    const uint64_t offsets[] = {0, 5, (1ull << 33) + 3};
    const uint64_t seed = 4321, stream = ELAG_STREAM_DROPOUT + 3;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int q = 0; q < 4; q++) {
            size_t n = sizes[s];
            float p = ps[q];
            uint64_t off = offsets[(s + q) % 3];
            float *x = hrnd(n, -2.0f, 2.0f, 1100 + s);
            float *yr = hbuf(n), *kr = hbuf(n), *yb = hbuf(n), *kb = hbuf(n);
            float *y2 = hbuf(n), *k2 = hbuf(n), *prod = hbuf(n);
            char what[96];
            snprintf(what, sizeof what, "dropout n=%zu p=%g offset %llu", n, (double)p,
                     (unsigned long long)off);
            dropout_on(T.ref, 0, x, n, p, seed, stream, off, yr, kr);
            dropout_on(T.b, 0, x, n, p, seed, stream, off, yb, kb);
            expect_identical(what, kb, kr, n); /* bit-identical on every backend */
            expect_identical(what, yb, yr, n);
            /* keep by hand: u >= p ? 1 / (1 - p) : 0, one value for every kept entry */
            float kept_value = 0.0f;
            size_t kept = 0, bad = 0;
            for (size_t i = 0; i < n; i++) {
                float u = elag_philox_uniform(seed, stream, off + i);
                int keep_it = u >= p;
                kept += keep_it;
                if (keep_it && kept == 1) kept_value = kb[i];
                if (keep_it ? kb[i] != kept_value : (kb[i] != 0.0f || signbit(kb[i]))) bad++;
                prod[i] = x[i] * kb[i];
            }
            cr_expect_eq(bad, 0, "%s: %s: %zu keep entries off the formula", T.b->name, what,
                         bad);
            if (kept)
                cr_expect(fabs(kept_value - 1.0 / (1.0 - p)) <= 1e-6 / (1.0 - p),
                          "%s: keep %.9g, want 1/(1-p) = %.9g", what, (double)kept_value,
                          1.0 / (1.0 - p));
            if (p == 0.0f) cr_expect(kept == n && kept_value == 1.0f, "p = 0 keeps everything");
            cr_expect_eq(elag_test_compare("dropout y = x * keep", yb, prod, n, 0.0, 0.0), 0,
                         "%s: %s: y is not x * keep", T.b->name, what);
            if (n == BIG)
                cr_expect(fabs((double)kept / n - (1.0 - p)) < 0.01, "%s: kept %zu", what, kept);
            /* deterministic: the same call again, and in place */
            dropout_on(T.b, 1, x, n, p, seed, stream, off, y2, k2);
            expect_identical("dropout again, y = x", k2, kb, n);
            expect_identical("dropout again, y = x", y2, yb, n);
            /* per (seed, stream, offset): an offset of 7 more is the same numbers 7 later */
            if (n > 7) {
                dropout_on(T.b, 0, x + 7, n - 7, p, seed, stream, off + 7, y2, k2);
                expect_identical("dropout offset + 7", k2, kb + 7, n - 7);
            }
            if (n == BIG && p > 0.0f) {
                dropout_on(T.b, 0, x, n, p, seed, stream + 1, off, y2, k2);
                cr_expect_neq(memcmp(k2, kb, n * 4), 0, "another stream drops others");
                dropout_on(T.b, 0, x, n, p, seed + 1, stream, off, y2, k2);
                cr_expect_neq(memcmp(k2, kb, n * 4), 0, "another seed drops others");
            }
        }
    float none;
    dropout_on(T.b, 0, &none, 0, 0.5f, seed, stream, 0, &none, &none); /* n = 0 */
    ALL_REFUSE(elag_be_dropout_forward(be, df, df + 8, df + 16, 4, 1.0f, 1, 1, 0));
    ALL_REFUSE(elag_be_dropout_forward(be, df, df + 8, df + 16, 4, -0.5f, 1, 1, 0));
}

/* d/dx of <w, dropout(x)> by central differences against dx = dy * keep, the elementwise MUL
 * of backend.h, on the backend under test */
static void case_dropout_gradcheck(void)
{
    elag_backend *b = T.b;
    const size_t n = 37;
    const float p = 0.3f;
    float *x = hrnd(n, -1.0f, 1.0f, 1200), *w = hrnd(n, -1.0f, 1.0f, 1201), *y = hbuf(n);
    float *dx = fio(b, x, n, "x"), *dy = fout(b, n, "y"), *dk = fout(b, n, "keep");
    float *dw = fin(b, w, n, "dy"), *dgx = fout(b, n, "dx");
    OK(b->dropout_forward(b, dy, dk, dx, n, p, 99, ELAG_STREAM_DROPOUT, 11));
    OK(b->elementwise(b, ELAG_EW_MUL, n, dgx, dw, dk, 0.0f));
    float *analytic = hbuf(n), *numeric = hbuf(n), *keep = hbuf(n), *hand = hbuf(n);
    fget(analytic, dgx, n);
    fget(keep, dk, n);
    for (size_t i = 0; i < n; i++) {
        hand[i] = keep[i] == 0.0f ? 0.0f : w[i] * keep[i];
        double loss[2];
        for (int s = 0; s < 2; s++) {
            float v = x[i] + (s ? -ELAG_FD_EPS : ELAG_FD_EPS);
            OK(b->to_device(b, dx + i, &v, 4));
            OK(b->dropout_forward(b, dy, dk, dx, n, p, 99, ELAG_STREAM_DROPOUT, 11));
            fget(y, dy, n);
            loss[s] = 0.0;
            for (size_t o = 0; o < n; o++) loss[s] += (double)w[o] * y[o];
        }
        OK(b->to_device(b, dx + i, &x[i], 4));
        numeric[i] = (float)((loss[0] - loss[1]) / (2.0 * ELAG_FD_EPS));
    }
    cr_expect(zeros(keep, n) > 0 && zeros(keep, n) < n, "p = 0.3 drops some, not all");
    expect_identical("dropout backward (MUL)", analytic, hand, n);
    expect_within("dropout gradient", analytic, numeric, n, ELAG_TOL_FD_ABS, ELAG_TOL_FD_REL, 1.0);
}

/* ---- sparse inference ---- */

static void sparse_on(elag_backend *be, const elag_sparse_host *h, int max_n, const float *x, int n,
                      const float *bias, int relu, float *y)
{
    elag_sparse_opts opts = {.max_n = max_n, .alg = 0};
    elag_sparse_dev *d = NULL;
    OKB(be, be->sparse_create(be, h, &opts, &d));
    float *dx = fin(be, x, (size_t)h->cols * n, "x");
    float *db = bias ? fin(be, bias, h->rows, "bias") : NULL;
    float *dy = fout(be, (size_t)h->rows * n, "y");
    OKB(be, be->sparse_mm(be, d, dx, n, db, relu, dy));
    fget(y, dy, (size_t)h->rows * n);
    be->sparse_destroy(be, d);
}

static void case_sparse_mm(void)
{
    enum { ROWS = 37, COLS = 45, MAX_N = 16 };
    float *w = hrnd(ROWS * COLS, -1.0f, 1.0f, 1300), *u = hrnd(ROWS * COLS, 0, 1, 1301);
    for (int i = 0; i < ROWS * COLS; i++)
        if (u[i] < 0.7f || (i / COLS) % 5 == 1) w[i] = 0.0f; /* 70% zeros, empty rows */
    float *x = hrnd(COLS * MAX_N, -1.0f, 1.0f, 1302), *bias = hrnd(ROWS, -0.5f, 0.5f, 1303);
    const struct {
        elag_sparse_format f;
        int block;
    } formats[] = {{ELAG_SPARSE_FORMAT_CSR, 0}, {ELAG_SPARSE_FORMAT_BELL, 16},
                   {ELAG_SPARSE_FORMAT_BELL, 5}};
    const int ns[] = {13, 1, MAX_N};
    for (size_t f = 0; f < 3; f++) {
        elag_sparse_host h;
        OK(elag_sparse_from_dense(w, ROWS, COLS, formats[f].f, formats[f].block, &h));
        for (size_t k = 0; k < 3; k++)
            for (int variant = 0; variant < 4; variant++) {
                int n = ns[k], relu = variant & 1;
                const float *bs = variant & 2 ? bias : NULL;
                size_t ny = (size_t)ROWS * n;
                float *want = hbuf(ny), *got = hbuf(ny);
                double *hand = dbuf(ny);
                sparse_on(T.ref, &h, MAX_N, x, n, bs, relu, want);
                sparse_on(T.b, &h, MAX_N, x, n, bs, relu, got);
                for (int r = 0; r < ROWS; r++)
                    for (int c = 0; c < n; c++) {
                        double s = bs ? bs[r] : 0.0;
                        for (int j = 0; j < COLS; j++)
                            s += (double)w[r * COLS + j] * x[(size_t)j * n + c];
                        hand[(size_t)r * n + c] = relu && s < 0.0 ? 0.0 : s;
                    }
                char what[96];
                snprintf(what, sizeof what, "sparse_mm %s:%d n=%d relu=%d bias=%d",
                         elag_sparse_format_name(formats[f].f), formats[f].block, n, relu,
                         bs != NULL);
                expect_close(what, got, want, ny, sqrt((double)COLS));
                expect_hand(what, got, to_float(hand, ny), ny, sqrt((double)COLS));
            }
        /* n = 0: nothing; n < 0 and n > max_n: ELAG_ERR_INTERNAL from the wrapper, on a
         * matrix of either backend (issue 11: cuda and cpu once disagreed) */
        float none;
        sparse_on(T.b, &h, MAX_N, &none, 0, NULL, 1, &none);
        elag_sparse_opts opts = {.max_n = 4, .alg = 0};
        for (int k = 0; k < 2; k++) {
            elag_backend *be = k ? T.b : T.ref, stub = blanked(be);
            elag_sparse_dev *d = NULL;
            OKB(be, be->sparse_create(be, &h, &opts, &d));
            float *dx = fin(be, x, COLS * 5, "x"), *dy = fout(be, ROWS * 5, "y");
            const int bad_n[2] = {5, -1};
            for (int i = 0; i < 2; i++) {
                elag_status st = elag_be_sparse_mm(&stub, d, dx, bad_n[i], NULL, 0, dy);
                cr_expect_eq(st, ELAG_ERR_INTERNAL, "%s: sparse_mm with n = %d (max_n 4) gave %s",
                             be->name, bad_n[i], elag_status_name(st));
            }
            be->sparse_destroy(be, d);
        }
        elag_sparse_host_free(&h);
    }
    elag_sparse_host dense;
    OK(elag_sparse_from_dense(w, ROWS, COLS, ELAG_SPARSE_FORMAT_DENSE, 0, &dense));
    elag_sparse_opts opts = {.max_n = 4, .alg = 0};
    elag_sparse_dev *d = NULL;
    ALL_RETURN(ELAG_ERR_USAGE, elag_be_sparse_create(be, &dense, &opts, &d));
    elag_sparse_host_free(&dense);
    T.b->sparse_destroy(T.b, NULL);
}

static void bias_relu_on(elag_backend *be, const float *y0, const float *bias, int rows, int n,
                         int relu, float *out)
{
    size_t ny = (size_t)rows * n;
    float *dy = fio(be, y0, ny, "y"), *db = bias ? fin(be, bias, rows, "bias") : NULL;
    OKB(be, be->bias_relu_rows(be, dy, db, rows, n, relu));
    fget(out, dy, ny);
}

static void case_bias_relu_rows(void)
{
    const int shapes[][2] = {{37, 13}, {1, 1}, {300, 129}, {3, 40009}, {0, 5}, {5, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int variant = 0; variant < 4; variant++) {
            int rows = shapes[s][0], n = shapes[s][1], relu = variant & 1;
            size_t ny = (size_t)rows * n;
            float *y0 = hrnd(ny, -1.0f, 1.0f, 1400 + s), *bias = hrnd(rows, -0.5f, 0.5f, 1410);
            const float *bs = variant & 2 ? bias : NULL;
            float *want = hbuf(ny), *got = hbuf(ny), *hand = hbuf(ny);
            bias_relu_on(T.ref, y0, bs, rows, n, relu, want);
            bias_relu_on(T.b, y0, bs, rows, n, relu, got);
            for (size_t i = 0; i < ny; i++) {
                float v = y0[i] + (bs ? bs[i / n] : 0.0f);
                hand[i] = relu && !(v > 0.0f) ? 0.0f : v;
            }
            char what[96];
            snprintf(what, sizeof what, "bias_relu_rows %dx%d relu=%d bias=%d", rows, n, relu,
                     bs != NULL);
            expect_identical(what, got, want, ny);
            cr_expect_eq(elag_test_compare(what, got, hand, ny, 0.0, 0.0), 0,
                         "%s: %s against the formula", T.b->name, what);
        }
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_bias_relu_rows(be, df, df, -1, 3, 1));
    ALL_RETURN(ELAG_ERR_INTERNAL, elag_be_bias_relu_rows(be, df, df, 3, -1, 0));
}

/* ======================================================================================= */
/* ---- one test per backend and case ---- */

#define TESTS_FOR(c)                                                                               \
    Test(ops_ref, c) { run_case("cpu-ref", case_##c); }                                            \
    Test(ops_cpu, c) { run_case("cpu", case_##c); }                                                \
    Test(ops_cuda, c) { run_case("cuda:0", case_##c); }
CASES(TESTS_FOR)

/* ---- needing no backend: the coverage of the table, opening, geometry ---- */

Test(ops, coverage)
{
    cr_expect_eq((sizeof(elag_backend) - FIRST_OP) % sizeof(op_fn), 0,
                 "elag_backend has a non-pointer member after alloc");
    for (size_t off = FIRST_OP; off + sizeof(op_fn) <= sizeof(elag_backend); off += sizeof(op_fn)) {
        size_t j = 0;
        while (j < N_COVERED && covered[j].off != off) j++;
        cr_expect_lt(j, N_COVERED,
                     "backend.h: the op at offset %zu (after %s) has no test case: add a case to "
                     "CASES and a COVER line in tests/test_ops.c",
                     off, off > FIRST_OP ? op_name(off - sizeof(op_fn)) : "nothing");
    }
    for (size_t j = 0; j < N_COVERED; j++) {
        cr_expect_geq(covered[j].off, FIRST_OP, "%s is not an op", covered[j].op);
        cr_expect_eq((covered[j].off - FIRST_OP) % sizeof(op_fn), 0);
        for (size_t i = 0; i < j; i++)
            cr_expect(covered[i].off != covered[j].off || covered[i].fn != covered[j].fn,
                      "%s -> %s listed twice", covered[j].op, covered[j].case_name);
        size_t k = 0;
        while (k < N_CASES && all_cases[k].fn != covered[j].fn) k++;
        cr_expect_lt(k, N_CASES, "case %s (for %s) is not in CASES, so it never runs",
                     covered[j].case_name, covered[j].op);
    }
    for (size_t k = 0; k < N_CASES; k++) { /* no case that tests nothing of the table */
        size_t j = 0;
        while (j < N_COVERED && covered[j].fn != all_cases[k].fn) j++;
        cr_expect_lt(j, N_COVERED, "case %s covers no op", all_cases[k].name);
    }
}

Test(ops, open_names_and_errors)
{
    elag_backend *b = NULL;
    char note[128] = "stale";
    cr_expect_eq(elag_backend_open("xyz", 1, &b, note, sizeof note), ELAG_ERR_USAGE);
    cr_expect_null(b);
    cr_expect_str_eq(elag_last_error(),
                     "unknown device 'xyz' (expected auto, cpu, cpu-ref, cuda or cuda:N)");
    cr_expect_eq(elag_backend_open("cuda:x", 1, &b, NULL, 0), ELAG_ERR_USAGE);
    cr_expect_eq(elag_backend_open("cuda:-1", 1, &b, NULL, 0), ELAG_ERR_USAGE);
    cr_expect_eq(elag_backend_open("cuda:99", 1, &b, NULL, 0), ELAG_ERR_NO_DEVICE);

    cr_assert_eq(elag_backend_open("cpu", 0, &b, NULL, 0), ELAG_OK);
    cr_expect_geq(b->threads, 1, "threads <= 0 means all cores");
    elag_backend_free(b);

    if (elag_cuda_device_count() == 0) {
        cr_expect_eq(elag_backend_open("cuda", 1, &b, NULL, 0), ELAG_ERR_NO_DEVICE);
        cr_expect(strstr(elag_last_error(), "--device cuda: no CUDA device found") != NULL, "%s",
                  elag_last_error());
        cr_assert_eq(elag_backend_open("auto", 2, &b, note, sizeof note), ELAG_OK);
        cr_expect_str_eq(b->name, "cpu");
        cr_expect_str_eq(note, "no CUDA device found, using the CPU (2 threads)");
    } else {
        cr_assert_eq(elag_backend_open("auto", 2, &b, note, sizeof note), ELAG_OK);
        cr_expect_eq(b->kind, ELAG_DEVICE_CUDA);
    }
    elag_backend_free(b);
    elag_backend_free(NULL);
}

Test(ops, window_resolve)
{
    for (size_t c = 0; c < N_WCASES; c++) {
        elag_window g = win(&wcases[c].g);
        cr_expect_eq(g.oh, (g.H + 2 * g.ph - g.kh) / g.sh + 1, "%s", wcases[c].name);
        cr_expect_eq(g.ow, (g.W + 2 * g.pw - g.kw) / g.sw + 1, "%s", wcases[c].name);
    }
    elag_window g = {7, 9, 3, 2, 2, 1, 1, 0, 0, 0};
    cr_expect_eq(elag_window_resolve(&g), ELAG_OK);
    cr_expect(g.oh == 4 && g.ow == 8, "7x9 k3x2 s2x1 p1x0 gives %dx%d, want 4x8", g.oh, g.ow);
    const elag_window bad[] = {
        {7, 9, 10, 2, 1, 1, 1, 0, 0, 0}, /* kernel taller than the padded input */
        {7, 9, 3, 2, 0, 1, 0, 0, 0, 0},  /* stride 0 */
        {7, 9, 3, 2, 1, 1, -1, 0, 0, 0}, /* negative padding */
        {0, 9, 1, 1, 1, 1, 0, 0, 0, 0},  /* empty input */
        {7, 9, 0, 2, 1, 1, 0, 0, 0, 0},  /* empty kernel */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        elag_window b = bad[i];
        cr_expect_eq(elag_window_resolve(&b), ELAG_ERR_INPUT, "bad window %zu accepted", i);
    }
}

#ifdef ELAG_HAVE_CUDA
/* Needs no device: the message format of the generic check, for each library. (Enum
 * constants are ints in C, so they go through variables of their status type, as a call's
 * result would.) */
Test(ops, cuda_check_messages_name_call_and_place)
{
    cudaError_t e = cudaErrorInvalidValue;
    cr_expect_eq(ELAG_CUDA_STATUS(e, "cudaFoo(x)"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "cuda: cudaFoo(x) failed: cudaErrorInvalidValue") != NULL,
              "%s", elag_last_error());
    cr_expect(strstr(elag_last_error(), "test_ops.c:") != NULL, "%s", elag_last_error());
    cublasStatus_t s = CUBLAS_STATUS_INVALID_VALUE;
    cr_expect_eq(ELAG_CUDA_STATUS(s, "cublasBar()"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "CUBLAS_STATUS_INVALID_VALUE") != NULL, "%s",
              elag_last_error());
    cusparseStatus_t z = CUSPARSE_STATUS_NOT_SUPPORTED;
    cr_expect_eq(ELAG_CUDA_STATUS(z, "cusparseBaz()"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "CUSPARSE_STATUS_NOT_SUPPORTED") != NULL, "%s",
              elag_last_error());
    e = cudaSuccess;
    cr_expect_eq(ELAG_CUDA_STATUS(e, "ok()"), ELAG_OK);
}

/* Needs no device: how cuda_sparse.c reads a cuSPARSE status. Only NOT_SUPPORTED (a valid
 * request this algorithm refuses) may switch sparse_create to the column-major layout;
 * INVALID_VALUE is an argument elag got wrong and must surface as ELAG_ERR_INTERNAL (issue
 * 11: it once fell back silently, hiding the bug). */
Test(ops, cusparse_status_mapping)
{
    const struct {
        cusparseStatus_t s;
        elag_status want;
        int fall_back;
    } map[] = {
        {CUSPARSE_STATUS_SUCCESS, ELAG_OK, 0},
        {CUSPARSE_STATUS_NOT_SUPPORTED, ELAG_ERR_UNSUPPORTED, 1},
        {CUSPARSE_STATUS_INVALID_VALUE, ELAG_ERR_INTERNAL, 0},
        {CUSPARSE_STATUS_NOT_INITIALIZED, ELAG_ERR_DEVICE, 0},
        {CUSPARSE_STATUS_ALLOC_FAILED, ELAG_ERR_DEVICE, 0},
        {CUSPARSE_STATUS_ARCH_MISMATCH, ELAG_ERR_DEVICE, 0},
        {CUSPARSE_STATUS_MAPPING_ERROR, ELAG_ERR_DEVICE, 0},
        {CUSPARSE_STATUS_EXECUTION_FAILED, ELAG_ERR_DEVICE, 0},
        {CUSPARSE_STATUS_INTERNAL_ERROR, ELAG_ERR_DEVICE, 0},
        {CUSPARSE_STATUS_MATRIX_TYPE_NOT_SUPPORTED, ELAG_ERR_DEVICE, 0},
        {CUSPARSE_STATUS_INSUFFICIENT_RESOURCES, ELAG_ERR_DEVICE, 0},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
        int fb = -1;
        elag_status got = elag_cuda_sparse_status(map[i].s, &fb);
        cr_expect_eq(got, map[i].want, "cusparse status %d -> %s, want %s", (int)map[i].s,
                     elag_status_name(got), elag_status_name(map[i].want));
        cr_expect_eq(fb, map[i].fall_back, "cusparse status %d: fall back %d", (int)map[i].s, fb);
    }
    cusparseStatus_t s = CUSPARSE_STATUS_INVALID_VALUE;
    cr_expect_eq(elag_cuda_sparse_fail(s, "cusparseSpMM(x)", __FILE__, __LINE__),
                 ELAG_ERR_INTERNAL);
    cr_expect(strstr(elag_last_error(), "cusparseSpMM(x) failed: CUSPARSE_STATUS_INVALID_VALUE") !=
                      NULL &&
                  strstr(elag_last_error(), "a bug in elag") != NULL,
              "%s", elag_last_error());
    s = CUSPARSE_STATUS_NOT_SUPPORTED;
    cr_expect_eq(elag_cuda_sparse_fail(s, "cusparseSpMM(y)", __FILE__, __LINE__),
                 ELAG_ERR_UNSUPPORTED);
    cr_expect(strstr(elag_last_error(), "CUSPARSE_STATUS_NOT_SUPPORTED") != NULL, "%s",
              elag_last_error());
}

/* Needs no device: what the CUDA backend's supports() says of each sparse format, by
 * compute capability. */
Test(ops, cuda_sparse_supports_by_compute_capability)
{
    const elag_op_query csr = {.format = ELAG_SPARSE_FORMAT_CSR, .max_n = 8};
    const elag_op_query bell = {.format = ELAG_SPARSE_FORMAT_BELL, .block = 32, .max_n = 8};
    char why[160];
    cr_expect_eq(elag_cuda_sparse_supports(7, 5, "cuda:0", &csr, why, sizeof why),
                 ELAG_SUPPORT_FP32);
    cr_expect_eq(elag_cuda_sparse_supports(7, 5, "cuda:0", &bell, why, sizeof why),
                 ELAG_SUPPORT_NO);
    cr_expect(strstr(why, "8.0") != NULL && strstr(why, "cuda:0 is 7.5") != NULL, "%s", why);
    cr_expect_eq(elag_cuda_sparse_supports(8, 0, "cuda:0", &bell, why, sizeof why),
                 ELAG_SUPPORT_TF32);
    cr_expect(strstr(why, "TF32") != NULL, "%s", why);
    cr_expect_eq(elag_cuda_sparse_supports(9, 0, "cuda:1", &bell, NULL, 0), ELAG_SUPPORT_TF32);
}

/* Needs no device: no GPU means 0 devices and a clear ELAG_ERR_NO_DEVICE, no crash. */
Test(ops, cuda_no_device_is_a_clean_error)
{
    int n = elag_cuda_count_devices();
    cr_expect_geq(n, 0);
    cr_expect_eq(n, elag_cuda_device_count());
    elag_backend *b = NULL;
    elag_status st = elag_cuda_backend_init(n, &b); /* one past the last device */
    cr_expect_eq(st, ELAG_ERR_NO_DEVICE, "%s", elag_last_error());
    cr_expect_null(b);
    cr_expect(strstr(elag_last_error(), "CUDA device") != NULL, "%s", elag_last_error());
}
#else
Test(ops, cuda_check_messages_name_call_and_place) { cr_skip_test("built without CUDA"); }
Test(ops, cusparse_status_mapping) { cr_skip_test("built without CUDA"); }
Test(ops, cuda_sparse_supports_by_compute_capability) { cr_skip_test("built without CUDA"); }
#endif
