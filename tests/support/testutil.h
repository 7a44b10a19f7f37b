/*
 * Shared test helpers: named tolerances (one place; widening one needs a comment
 * saying why), array comparison that prints the first mismatches, random fills.
 */
#ifndef ELAG_TESTS_TESTUTIL_H
#define ELAG_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* bit-for-bit: pure data movement (copies, gathers, transposes, im2col, max pooling), ops
 * that promise identical results on every backend (init_uniform, dropout, mask_select,
 * count_nonzero) and single roundings (ReLU, MUL, SCALE), and cpu-ref against itself */
#define ELAG_TOL_EXACT_ABS 0.0
#define ELAG_TOL_EXACT_REL 0.0
/* fast CPU path vs naive reference: same maths, different summation order */
#define ELAG_TOL_FAST_ABS 1e-5
#define ELAG_TOL_FAST_REL 1e-4
/* CUDA vs naive reference: FP32 GEMMs (math mode pinned), different reduction trees */
#define ELAG_TOL_CUDA_ABS 1e-5
#define ELAG_TOL_CUDA_REL 1e-4
/* finite differences in float with central differences, eps = 1e-2 (float has ~7 digits;
 * a smaller step drowns in rounding) */
#define ELAG_TOL_FD_ABS 2e-3
#define ELAG_TOL_FD_REL 2e-2
#define ELAG_FD_EPS 1e-2f
/* the adjoint identity <im2col(x), c> == <x, col2im(c)>, both sides summed in double from
 * float results: col2im's float sums of the overlapping windows' entries (a few ulp each)
 * bound the difference, relative to the sum of |products| */
#define ELAG_TOL_ADJOINT_REL 1e-6

/* Returns the number of i with |a[i]-b[i]| > abs_tol + rel_tol*|b[i]|, printing the first
 * few mismatches (with `what`) to stderr. b is the reference. */
size_t elag_test_compare(const char *what, const float *a, const float *b, size_t n,
                         double abs_tol, double rel_tol);

/* Returns the number of i where a[i] and b[i] differ in their bits (so -0 differs from +0
 * and one NaN from another), printing the first few; for results promised bit-identical. */
size_t elag_test_bit_diffs(const char *what, const float *a, const float *b, size_t n);

/* Fills x with uniform values in [lo, hi) from a fixed seed (Philox, stream). */
void elag_test_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed);

/* Creates a fresh empty temporary directory (under $TMPDIR, else /tmp) and returns its path
 * (the caller frees the string). The folder and everything in it are removed when the
 * calling process exits, also after a failed assertion; elag_test_rmtree removes it
 * sooner. */
char *elag_test_tmpdir(const char *tag);

/* Writes `text` to dir/name, creating or replacing it; fails the calling test on error. */
void elag_test_put(const char *dir, const char *name, const char *text);

/* Removes a folder made by elag_test_tmpdir and everything in it (best effort). */
void elag_test_rmtree(const char *dir);

/* The whole text of the file at path (NUL-terminated; the caller frees it); fails the
 * calling test when it cannot be read. */
char *elag_test_slurp(const char *path);

/* Every tensor's bytes of dir/model.safetensors, concatenated in file order (*out, *n; the
 * caller frees *out): two runs' weights compare bit for bit with memcmp. */
void elag_test_checkpoint_bytes(const char *dir, unsigned char **out, size_t *n);

/* Fails the calling test unless a_dir's and b_dir's checkpoints hold the same tensor bytes
 * (an interrupted and resumed run against an uninterrupted one); `what` says which. */
void elag_test_expect_same_checkpoint(const char *a_dir, const char *b_dir, const char *what);

/* A 1-D .npy of n little-endian integers as numpy.save writes it: `descr` "<i4" or "<i8",
 * elem 4 or 8 bytes each (the library writes float arrays only; labels are integers). */
void elag_test_put_npy_ints(const char *path, const char *descr, const void *data, size_t elem,
                            long n);

/* Runs a shell command, returns its exit status (0-255) or -1; output goes to
 * `out_path` when not NULL (stdout and stderr together). */
int elag_test_run(const char *cmd, const char *out_path);

/* The Python interpreter that `elag report` (scripts/plot.py) and the Python-reading tests
 * use: $ELAG_PYTHON when set and not empty, else /usr/bin/python3 (Debian's python3-*
 * packages belong to it; a python3 earlier on PATH usually lacks them). Setting
 * ELAG_PYTHON to an interpreter without matplotlib shows how the suite runs without it. */
const char *elag_test_python(void);

/* 1 when elag_test_python() runs and imports every module in `modules` (a Python import
 * list, e.g. "matplotlib, numpy"), else 0. A test that needs them calls
 * cr_skip_test("... needs python3-matplotlib ...") when this is 0. */
int elag_test_python_has(const char *modules);

#endif /* ELAG_TESTS_TESTUTIL_H */
