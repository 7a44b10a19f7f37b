/*
 * The harness of the backend op tests, tests/test_ops_*.c: every op of the backend table
 * (host/backend/backend.h), table-driven in the manner of ggml's tests/test-backend-ops.cpp.
 * One case per op (OPS_CASES below) builds its inputs from fixed seeds, runs them on "cpu-ref"
 * (the specification) and on the backend under test, and compares: bit for bit where the op
 * promises it or only moves data, else with the named tolerances of tests/support/testutil.h,
 * whose absolute part is normalised by the size of the terms a reduction sums. Each case is
 * one Criterion test per backend:
 *   ops_ref::<case>   a second cpu-ref against the first, and against the formulas of
 *                     backend.h computed by hand
 *   ops_cpu::<case>   the fast CPU path, 3 threads (so OpenMP splits unevenly)
 *   ops_cuda::<case>  cuda:0; skipped visibly ("no CUDA device") without one
 * Every buffer an op sees lives in the backend's memory with sentinel words on both sides,
 * which must be intact afterwards (no overruns); read-only inputs must come back unchanged;
 * outputs the op overwrites start as NaN, so an unwritten entry shows. Calls every backend
 * must refuse go through the wrappers (elag_be_<op>, host/backend/backend_ops.c) on a copy
 * of the backend whose table entries are blanked (ALL_RETURN, ALL_REFUSE), so a refusal is
 * proven to come from the one place that checks arguments; the maths goes through each
 * backend's own entries.
 *
 * The cases live in one file per concern; OPS_CASES_<FILE> lists each file's, OPS_COVERS
 * which case tests which table entry. A file opens with OPS_TEST_FILE(its list) and defines
 * each case with OPS_CASE(name): a listed case it lacks fails the link, a case it defines
 * but does not list fails the compile, and ops::coverage (tests/test_ops_coverage.c) fails
 * when a table entry has no case or a case covers no entry.
 */
#ifndef ELAG_TESTS_OPS_HARNESS_H
#define ELAG_TESTS_OPS_HARNESS_H

#include "backend/backend.h"
#include "support/testutil.h"

#include <criterion/criterion.h>

#include <stddef.h>
#include <stdint.h>

#define FAST_THREADS 3 /* the fast CPU backend's threads */
#define BIG 100003     /* odd, prime, above ELAG_CPU_PAR_MIN: partial blocks everywhere */

/* ---- the cases, one list per file: X(file, case) is case_<case> in test_ops_<file>.c ---- */

#define OPS_CASES_COVERAGE(X) X(coverage, table)

#define OPS_CASES_DENSE(X)                                                                         \
    X(dense, memory)                                                                               \
    X(dense, gemm)                                                                                 \
    X(dense, row_sum)                                                                              \
    X(dense, elementwise)                                                                          \
    X(dense, transpose)                                                                            \
    X(dense, xent)                                                                                 \
    X(dense, gather)

#define OPS_CASES_TRAIN(X)                                                                         \
    X(train, init_uniform)                                                                         \
    X(train, sgd_step)                                                                             \
    X(train, adamw_step)                                                                           \
    X(train, score_magnitude)                                                                      \
    X(train, mask_select)                                                                          \
    X(train, count_nonzero)

#define OPS_CASES_WINDOW(X)                                                                        \
    X(window, im2col)                                                                              \
    X(window, col2im)                                                                              \
    X(window, col2im_adjoint)                                                                      \
    X(window, pool_forward)                                                                        \
    X(window, pool_backward)                                                                       \
    X(window, pool_gradcheck)

#define OPS_CASES_LAYERS(X)                                                                        \
    X(layers, batchnorm_forward)                                                                   \
    X(layers, batchnorm_backward)                                                                  \
    X(layers, batchnorm_gradcheck)                                                                 \
    X(layers, dropout_forward)                                                                     \
    X(layers, dropout_gradcheck)

#define OPS_CASES_SPARSE(X)                                                                        \
    X(sparse, supports)                                                                            \
    X(sparse, sparse_mm)                                                                           \
    X(sparse, sparse_mm_tiled)                                                                     \
    X(sparse, sparse_chain_tiled)                                                                  \
    X(sparse, bias_relu_rows)

#define OPS_CASES_SPARSE_TRAIN(X)                                                                  \
    X(sparse_train, sparse_pattern)                                                                \
    X(sparse_train, sparse_train_args)

/* every case of every file (a new file's list goes here too) */
#define OPS_CASES_CONV(X)                                                                          \
    X(conv, conv_forward)                                                                          \
    X(conv, conv_backward_data)                                                                    \
    X(conv, conv_backward_filter)                                                                  \
    X(conv, conv_adjoint)

#define OPS_CASES(X)                                                                               \
    OPS_CASES_COVERAGE(X)                                                                          \
    OPS_CASES_DENSE(X)                                                                             \
    OPS_CASES_TRAIN(X)                                                                             \
    OPS_CASES_WINDOW(X)                                                                            \
    OPS_CASES_LAYERS(X)                                                                            \
    OPS_CASES_SPARSE(X)                                                                            \
    OPS_CASES_SPARSE_TRAIN(X)                                                                      \
    OPS_CASES_CONV(X)

/* Which case tests each table entry (an op may have several: its case and its gradient
 * check). An op added to backend.h without a line here fails ops::coverage; a case named
 * here that is in no list above fails to compile. */
#define OPS_COVERS(X)                                                                              \
    X(alloc, memory)                                                                               \
    X(release, memory)                                                                             \
    X(to_device, memory)                                                                           \
    X(to_host, memory)                                                                             \
    X(copy, memory)                                                                                \
    X(fill, memory)                                                                                \
    X(sync, memory)                                                                                \
    X(destroy, table) /* and every test's teardown */                                              \
    X(supports, supports)                                                                          \
    X(gemm, gemm)                                                                                  \
    X(row_sum, row_sum)                                                                            \
    X(elementwise, elementwise)                                                                    \
    X(elementwise, dropout_gradcheck)                                                              \
    X(transpose, transpose)                                                                        \
    X(xent, xent)                                                                                  \
    X(gather_rows, gather)                                                                         \
    X(gather_i32, gather)                                                                          \
    X(init_uniform, init_uniform)                                                                  \
    X(sgd_step, sgd_step)                                                                          \
    X(adamw_step, adamw_step)                                                                      \
    X(score_magnitude, score_magnitude)                                                            \
    X(mask_select, mask_select)                                                                    \
    X(count_nonzero, count_nonzero)                                                                \
    X(im2col, im2col)                                                                              \
    X(im2col, col2im_adjoint)                                                                      \
    X(col2im, col2im)                                                                              \
    X(col2im, col2im_adjoint)                                                                      \
    X(conv_forward, conv_forward)                                                                  \
    X(conv_forward, conv_adjoint)                                                                  \
    X(conv_backward_data, conv_backward_data)                                                      \
    X(conv_backward_data, conv_adjoint)                                                            \
    X(conv_backward_filter, conv_backward_filter)                                                  \
    X(conv_backward_filter, conv_adjoint)                                                          \
    X(pool_forward, pool_forward)                                                                  \
    X(pool_backward, pool_backward)                                                                \
    X(pool_backward, pool_gradcheck)                                                               \
    X(batchnorm_forward, batchnorm_forward)                                                        \
    X(batchnorm_backward, batchnorm_backward)                                                      \
    X(batchnorm_backward, batchnorm_gradcheck)                                                     \
    X(dropout_forward, dropout_forward)                                                            \
    X(dropout_forward, dropout_gradcheck)                                                          \
    X(sparse_create, sparse_mm)                                                                    \
    X(sparse_destroy, sparse_mm)                                                                   \
    X(sparse_mm, sparse_mm)                                                                        \
    X(sparse_tile, sparse_mm_tiled)                                                                \
    X(sparse_mm_tiled, sparse_mm_tiled)                                                            \
    X(sparse_chain_tiled, sparse_chain_tiled)                                                      \
    X(bias_relu_rows, bias_relu_rows)                                                              \
    X(sparse_pattern_create, sparse_pattern)                                                       \
    X(sparse_pattern_destroy, sparse_pattern)                                                      \
    X(sparse_gather, sparse_pattern)                                                               \
    X(sparse_scatter, sparse_pattern)                                                              \
    X(sparse_values_set, sparse_pattern)                                                           \
    X(sparse_pattern_mm, sparse_pattern)                                                           \
    X(sddmm, sparse_pattern)                                                                       \
    X(sparse_pattern_mm, sparse_train_args)                                                        \
    X(sddmm, sparse_train_args)

typedef void (*ops_fn)(void);
#define OPS_FIRST offsetof(elag_backend, alloc) /* every member from alloc on is an op */

/* ---- one test per backend and case ---- */

#define OPS_HERE_(f, c) ops_here_##c,
#define OPS_DECLARE_(f, c) static void case_##c(void);
#define OPS_TESTS_(f, c)                                                                           \
    Test(ops_ref, c) { ops_run_case("cpu-ref", case_##c); }                                        \
    Test(ops_cpu, c) { ops_run_case("cpu", case_##c); }                                            \
    Test(ops_cuda, c) { ops_run_case("cuda:0", case_##c); }

/* At the top of tests/test_ops_<file>.c, once: OPS_TEST_FILE(OPS_CASES_<FILE>); registers
 * ops_ref::<case>, ops_cpu::<case> and ops_cuda::<case> for each case of the list. */
#define OPS_TEST_FILE(list)                                                                        \
    list(OPS_DECLARE_) TestSuite(ops_ref, .fini = ops_teardown);                                   \
    TestSuite(ops_cpu, .fini = ops_teardown);                                                      \
    TestSuite(ops_cuda, .fini = ops_teardown);                                                     \
    list(OPS_TESTS_) enum { list(OPS_HERE_) ops_here_end_ }

/* Defines case_<c>; "'ops_here_<c>' undeclared" means <c> is missing from this file's list
 * (it would never run). */
#define OPS_CASE(c)                                                                                \
    enum { ops_listed_##c = ops_here_##c };                                                        \
    static void case_##c(void)

/* ---- state of one test: the two backends, tolerances, tracked buffers ---- */

typedef enum tb_kind { TB_IN, TB_IO, TB_OUT } tb_kind;

typedef struct tbuf {
    elag_backend *be;
    char *base;   /* the allocation: guard, data, guard */
    size_t bytes; /* of data */
    void *orig;   /* TB_IN: host copy; the input must come back unchanged */
    char label[64];
} tbuf;

#define MAX_BUFS 4096
#define MAX_HOST 4096

typedef struct ops_state {
    elag_backend *ref; /* cpu-ref: the specification */
    elag_backend *b;   /* the backend under test */
    double abs, rel;   /* b against ref */
    double habs, hrel; /* results against a formula computed here in double */
    tbuf buf[MAX_BUFS];
    int nbuf;
    void *host[MAX_HOST];
    int nhost;
} ops_state;

extern ops_state T; /* the running test's; cleared by ops_teardown */

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define OKB(be, expr)                                                                              \
    cr_assert_eq((expr), ELAG_OK, "%s: %s: %s", (be)->name, #expr, elag_last_error())

/* Frees every buffer and both backends (each suite's .fini). */
void ops_teardown(void);
/* Opens cpu-ref and `device` (a second cpu-ref, cpu or cuda:0, skipping visibly when there is
 * no CUDA device), runs `fn`, then checks every buffer (guards intact, inputs unchanged). */
void ops_run_case(const char *device, void (*fn)(void));

/* ---- host buffers (freed at teardown) ---- */

float *hbuf(size_t n);   /* n zeros */
int32_t *ibuf(size_t n); /* n zeros */
double *dbuf(size_t n);  /* n zeros */
float *hrnd(size_t n, float lo, float hi, uint64_t seed);
float *hdup(const float *x, size_t n);
float *hmask(size_t n, double zero_frac, uint64_t seed); /* 0/1, about zero_frac zeros */
size_t zeros(const float *x, size_t n);
float *to_float(const double *x, size_t n);

/* ---- device buffers with sentinels (released at teardown) ---- */

/* n entries in be's memory holding h (fin: read-only, checked unchanged; fio: read and
 * written) or NaN (fout, iout: outputs) */
float *fin(elag_backend *be, const float *h, size_t n, const char *label);
float *fio(elag_backend *be, const float *h, size_t n, const char *label);
float *fout(elag_backend *be, size_t n, const char *label);
int32_t *iin(elag_backend *be, const int32_t *h, size_t n, const char *label);
int32_t *iout(elag_backend *be, size_t n, const char *label);
/* Copies the first n entries of a test buffer to h; fails on a written guard word or a
 * changed input. */
void fget(float *h, const float *d, size_t n);
void iget(int32_t *h, const int32_t *d, size_t n);

/* ---- comparisons (printing the first mismatches) ---- */

int ops_identical(const char *what, const void *got, const void *want, size_t n);
size_t ops_i32_diffs(const char *what, const int32_t *got, const int32_t *want, size_t n);
size_t ops_outside(const char *what, const float *got, const float *want, size_t n, double abs,
                   double rel, double scale);

/* bit for bit */
#define expect_identical(what, got, want, n)                                                       \
    cr_expect(ops_identical(what, got, want, n), "%s: %s: not bit-identical", T.b->name, what)
#define expect_identical_i32(what, got, want, n)                                                   \
    cr_expect_eq(ops_i32_diffs(what, got, want, n), 0, "%s: %s: int32 entries differ",            \
                 T.b->name, what)
/* entries outside abs * scale + rel * |want| (scale normalises the absolute bound by the
 * size of the terms a reduction sums) */
#define expect_within(what, got, want, n, abs, rel, scale)                                         \
    cr_expect_eq(ops_outside(what, got, want, n, abs, rel, scale), 0,                              \
                 "%s: %s: entries outside tolerance", T.b->name, what)
/* the backend under test against cpu-ref */
#define expect_close(what, got, want, n, scale)                                                    \
    expect_within(what, got, want, n, T.abs, T.rel, scale)
/* a result against the formula of backend.h computed here */
#define expect_hand(what, got, want, n, scale)                                                     \
    expect_within(what, got, want, n, T.habs, T.hrel, scale)

/* ---- status checks on both backends ---- */

/* A copy of backend `real` with every table entry NULL. A wrapper called with it either
 * refuses the call itself or crashes the test: so a refusal seen through it is the
 * wrapper's, the one place arguments are checked, and no backend has to repeat it. */
elag_backend blanked(const elag_backend *real);

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

#endif /* ELAG_TESTS_OPS_HARNESS_H */
