/*
 * The fault-injection harness shared by tests/test_cov_faults*.c (one file per group of
 * operations, so each stays readable): every call site of a backend op (the wrappers
 * elag_be_*, host/backend/backend_ops.c), of elag_backend_open and of the C library's
 * allocation and file functions is made to fail once, and the operation that reached it
 * must fail too, with the injected status and message (an error is never swallowed or
 * replaced by another), and must not crash.
 *
 * How, without a hook in the library: each test_cov_faults* executable is linked with this
 * file and -Wl,--wrap for each wrapped function (CMakeLists.txt takes the list from the
 * WRAP...(name, ...) lines below), so the library's calls land here first. A sweep runs
 * the operation once counting calls, notes the first call of each distinct call site (its
 * return address), then reruns it once per site with that call failing. Every run is on
 * cpu-ref with one thread, so the call sequence up to the failure is the same each time.
 */
#define _POSIX_C_SOURCE 200809L
#include "cov_faults.h"

#include "backend/backend.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the injector ---- */

#define MAX_SITES 4096

enum { OFF, COUNT, FAIL };

static struct {
    int mode;
    long calls;   /* wrapped calls since the operation started */
    long fail_at; /* FAIL: the call that fails */
    int fired;
    const char *fired_op;
    int depth; /* COUNT: a site is the last `depth` callers (1: the caller only) */
    int n_sites;
    void *site[MAX_SITES];
    long first[MAX_SITES]; /* the index of the site's first call */
    const char *op[MAX_SITES];
} F;

int elag_fault_pause(void)
{
    int mode = F.mode;
    F.mode = OFF;
    return mode;
}

void elag_fault_resume(int mode)
{
    F.mode = mode;
}

/* `site` (the wrapper's caller) and, for depth > 1, its callers, in one key: a failure in
 * a helper called from several places is tried from each of them. backtrace() runs with
 * the injector off (its first call allocates). */
static void *site_key(void *site)
{
    if (F.depth < 2) return site;
    void *bt[32];
    int mode = F.mode;
    F.mode = OFF;
    int n = backtrace(bt, 32);
    F.mode = mode;
    uintptr_t key = (uintptr_t)site;
    for (int i = 0; i < n; i++)
        if (bt[i] == site) {
            for (int d = 1; d < F.depth && i + d < n; d++)
                key = key * 1000003u ^ (uintptr_t)bt[i + d];
            break;
        }
    return (void *)key;
}

static int fault_now(void *site, const char *op)
{
    if (F.mode == OFF) return 0;
    long i = F.calls++;
    if (F.mode == COUNT) {
        site = site_key(site);
        for (int s = 0; s < F.n_sites; s++)
            if (F.site[s] == site) return 0;
        if (F.n_sites == MAX_SITES) return 0; /* the parent sees a full table and fails */
        F.site[F.n_sites] = site, F.first[F.n_sites] = i, F.op[F.n_sites] = op;
        F.n_sites++;
        return 0;
    }
    if (i != F.fail_at) return 0;
    F.fired = 1, F.fired_op = op;
    return 1;
}

static elag_status injected(const char *op)
{
    return elag_fail(strcmp(op, "alloc") == 0 ? ELAG_ERR_NOMEM : ELAG_ERR_DEVICE,
                     "injected fault in %s", op);
}

#define FAULT(op)                                                                                  \
    do {                                                                                           \
        if (fault_now(__builtin_return_address(0), op)) return injected(op);                       \
    } while (0)

elag_status __real_elag_backend_open(const char *device, int threads, elag_backend **out,
                                     char *note, size_t note_len);
elag_status __wrap_elag_backend_open(const char *device, int threads, elag_backend **out,
                                     char *note, size_t note_len)
{
    if (fault_now(__builtin_return_address(0), "backend_open")) {
        if (out) *out = NULL;
        return injected("backend_open");
    }
    return __real_elag_backend_open(device, threads, out, note, note_len);
}

/* The wrappers of host/backend/backend.h, one per op that returns a status: WRAP(name,
 * (parameters), (arguments)) defines __wrap_name, which fails when the injector says so and
 * else calls the library's __real_name. */
#define WRAP(name, params, args)                                                                   \
    elag_status __real_##name params;                                                              \
    elag_status __wrap_##name params;                                                              \
    elag_status __wrap_##name params                                                               \
    {                                                                                              \
        FAULT(#name + 8); /* without "elag_be_" */                                                 \
        return __real_##name args;                                                                 \
    }
/* clang-format off */
WRAP(elag_be_alloc, (elag_backend *b, size_t bytes, void **out), (b, bytes, out))
WRAP(elag_be_to_device, (elag_backend *b, void *dst, const void *src_host, size_t bytes), (b, dst,
     src_host, bytes))
WRAP(elag_be_to_host, (elag_backend *b, void *dst_host, const void *src, size_t bytes), (b,
     dst_host, src, bytes))
WRAP(elag_be_copy, (elag_backend *b, void *dst, const void *src, size_t bytes), (b, dst, src,
     bytes))
WRAP(elag_be_fill, (elag_backend *b, float *x, size_t n, float v), (b, x, n, v))
WRAP(elag_be_sync, (elag_backend *b), (b))
WRAP(elag_be_gemm, (elag_backend *b, int trans_a, int trans_b, int m, int n, int k, float alpha,
     const float *a, int lda, const float *bm, int ldb, float beta, float *c, int ldc), (b,
     trans_a, trans_b, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc))
WRAP(elag_be_row_sum, (elag_backend *b, float *out, const float *x, int rows, int cols), (b, out,
     x, rows, cols))
WRAP(elag_be_elementwise, (elag_backend *b, elag_ew_op op, size_t n, float *y, const float *a,
     const float *bb, float alpha), (b, op, n, y, a, bb, alpha))
WRAP(elag_be_transpose, (elag_backend *b, float *dst, const float *src, int batch, int rows, int
     cols, int inner), (b, dst, src, batch, rows, cols, inner))
WRAP(elag_be_xent, (elag_backend *b, const float *logits, const int32_t *labels, int rows, int
     cols, float *dlogits, float *stats), (b, logits, labels, rows, cols, dlogits, stats))
WRAP(elag_be_gather_rows, (elag_backend *b, float *dst, const float *src, const int32_t *idx, int
     rows, int cols), (b, dst, src, idx, rows, cols))
WRAP(elag_be_gather_i32, (elag_backend *b, int32_t *dst, const int32_t *src, const int32_t *idx,
     int rows), (b, dst, src, idx, rows))
WRAP(elag_be_init_uniform, (elag_backend *b, float *x, size_t n, float lo, float hi, uint64_t seed,
     uint64_t stream), (b, x, n, lo, hi, seed, stream))
WRAP(elag_be_sgd_step, (elag_backend *b, float *w, const float *g, float *v, const float *mask,
     size_t n, float lr, float momentum, float weight_decay, int nesterov), (b, w, g, v, mask, n,
     lr, momentum, weight_decay, nesterov))
WRAP(elag_be_adamw_step, (elag_backend *b, float *w, const float *g, float *m, float *v, const
     float *mask, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay, int
     t), (b, w, g, m, v, mask, n, lr, beta1, beta2, eps, weight_decay, t))
WRAP(elag_be_score_magnitude, (elag_backend *b, float *score, const float *w, const float *mask,
     size_t n), (b, score, w, mask, n))
WRAP(elag_be_mask_select, (elag_backend *b, float *mask, const float *score, size_t n, size_t k),
     (b, mask, score, n, k))
WRAP(elag_be_count_nonzero, (elag_backend *b, const float *x, size_t n, size_t *out_host), (b, x,
     n, out_host))
WRAP(elag_be_im2col, (elag_backend *b, float *col, const float *x, int C, int N, int n0, int nb,
     const elag_window *g), (b, col, x, C, N, n0, nb, g))
WRAP(elag_be_col2im, (elag_backend *b, float *dx, const float *col, int C, int N, int n0, int nb,
     const elag_window *g), (b, dx, col, C, N, n0, nb, g))
WRAP(elag_be_conv_forward, (elag_backend *b, float *y, const float *x, const float *w, int C, int
     O, int N, int n0, int nb, const elag_window *g, float *work), (b, y, x, w, C, O, N, n0, nb, g,
     work))
WRAP(elag_be_conv_backward_data, (elag_backend *b, float *dx, const float *dy, const float *w, int
     C, int O, int N, int n0, int nb, const elag_window *g, float *work), (b, dx, dy, w, C, O, N,
     n0, nb, g, work))
WRAP(elag_be_conv_backward_filter, (elag_backend *b, float *dw, const float *dy, const float *x,
     int C, int O, int N, int n0, int nb, const elag_window *g, float beta, float *work), (b, dw,
     dy, x, C, O, N, n0, nb, g, beta, work))
WRAP(elag_be_pool_forward, (elag_backend *b, elag_pool_mode mode, float *y, int32_t *argmax, const
     float *x, int planes, const elag_window *g), (b, mode, y, argmax, x, planes, g))
WRAP(elag_be_pool_backward, (elag_backend *b, elag_pool_mode mode, float *dx, const float *dy,
     const int32_t *argmax, int planes, const elag_window *g), (b, mode, dx, dy, argmax, planes,
     g))
WRAP(elag_be_batchnorm_forward, (elag_backend *b, int flags, float *y, const float *x, int C, int
     L, const float *gamma, const float *beta, float *run_mean, float *run_var, float momentum,
     float eps, float *save_mean, float *save_invstd), (b, flags, y, x, C, L, gamma, beta,
     run_mean, run_var, momentum, eps, save_mean, save_invstd))
WRAP(elag_be_batchnorm_backward, (elag_backend *b, float *dx, float *dgamma, float *dbeta, const
     float *dy, const float *x, int C, int L, const float *gamma, const float *save_mean, const
     float *save_invstd), (b, dx, dgamma, dbeta, dy, x, C, L, gamma, save_mean, save_invstd))
WRAP(elag_be_dropout_forward, (elag_backend *b, float *y, float *keep, const float *x, size_t n,
     float p, uint64_t seed, uint64_t stream, uint64_t offset), (b, y, keep, x, n, p, seed, stream,
     offset))
WRAP(elag_be_sparse_create, (elag_backend *b, const elag_sparse_host *a, const elag_sparse_opts
     *opts, elag_sparse_dev **out), (b, a, opts, out))
WRAP(elag_be_sparse_mm, (elag_backend *b, elag_sparse_dev *a, const float *x, int n, const float
     *bias, int relu, float *y), (b, a, x, n, bias, relu, y))
WRAP(elag_be_bias_relu_rows, (elag_backend *b, float *y, const float *bias, int rows, int n, int
     relu), (b, y, bias, rows, n, relu))
WRAP(elag_be_sparse_pattern_create, (elag_backend *b, const float *mask, int rows, int cols, int
     max_n, elag_sparse_pattern **out), (b, mask, rows, cols, max_n, out))
WRAP(elag_be_sparse_gather, (elag_backend *b, const elag_sparse_pattern *p, const float *dense,
     float *vals), (b, p, dense, vals))
WRAP(elag_be_sparse_scatter, (elag_backend *b, const elag_sparse_pattern *p, const float *vals,
     float *dense), (b, p, vals, dense))
WRAP(elag_be_sparse_values_set, (elag_backend *b, elag_sparse_pattern *p, const float *vals), (b,
     p, vals))
WRAP(elag_be_sparse_pattern_mm, (elag_backend *b, elag_sparse_pattern *p, int trans, const float
     *x, int n, float *y), (b, p, trans, x, n, y))
WRAP(elag_be_sddmm, (elag_backend *b, const elag_sparse_pattern *p, const float *dy, const float
     *x, int n, float *out), (b, p, dy, x, n, out))
/* clang-format on */

/* The C library functions the library's allocations and file writes go through:
 * WRAP_LIBC(name, type, (parameters), (arguments), value on failure, errno on failure).
 * The library's calls only: libyaml, cJSON and zlib are shared libraries, not wrapped. */
#define WRAP_LIBC(name, type, params, args, fail, err)                                             \
    type __real_##name params;                                                                     \
    type __wrap_##name params;                                                                     \
    type __wrap_##name params                                                                      \
    {                                                                                              \
        if (fault_now(__builtin_return_address(0), "libc " #name)) {                               \
            errno = err;                                                                           \
            return fail;                                                                           \
        }                                                                                          \
        return __real_##name args;                                                                 \
    }
WRAP_LIBC(malloc, void *, (size_t n), (n), NULL, ENOMEM)
WRAP_LIBC(calloc, void *, (size_t n, size_t size), (n, size), NULL, ENOMEM)
WRAP_LIBC(realloc, void *, (void *p, size_t n), (p, n), NULL, ENOMEM)
WRAP_LIBC(fopen, FILE *, (const char *path, const char *mode), (path, mode), NULL, EACCES)
WRAP_LIBC(fdopen, FILE *, (int fd, const char *mode), (fd, mode), NULL, EMFILE)

/* A failed fread or fwrite also sets the stream's error flag, as glibc's do: code checks
 * ferror() (or fflush, fclose) to tell a failure from the end of the file, so the flag is
 * set by hand. (Without it a failed fread looked like a file that ends early.) */
#ifdef _IO_ERR_SEEN
#define SET_ERROR_FLAG(f) ((f)->_flags |= _IO_ERR_SEEN)
#else
#define SET_ERROR_FLAG(f) ((void)(f))
#endif
size_t __real_fread(void *p, size_t size, size_t n, FILE *f);
size_t __wrap_fread(void *p, size_t size, size_t n, FILE *f);
size_t __wrap_fread(void *p, size_t size, size_t n, FILE *f)
{
    if (fault_now(__builtin_return_address(0), "libc fread")) {
        errno = EIO;
        SET_ERROR_FLAG(f);
        return 0;
    }
    return __real_fread(p, size, n, f);
}

size_t __real_fwrite(const void *p, size_t size, size_t n, FILE *f);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f);
size_t __wrap_fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    if (fault_now(__builtin_return_address(0), "libc fwrite")) {
        errno = ENOSPC;
        SET_ERROR_FLAG(f);
        return 0;
    }
    return __real_fwrite(p, size, n, f);
}
WRAP_LIBC(fflush, int, (FILE *f), (f), EOF, ENOSPC)
WRAP_LIBC(fsync, int, (int fd), (fd), -1, EIO)
WRAP_LIBC(rename, int, (const char *from, const char *to), (from, to), -1, EXDEV)
WRAP_LIBC(write, ssize_t, (int fd, const void *p, size_t n), (fd, p, n), -1, ENOSPC)
WRAP_LIBC(mkdir, int, (const char *path, mode_t mode), (path, mode), -1, EACCES)
WRAP_LIBC(ftruncate, int, (int fd, off_t n), (fd, n), -1, EIO)
WRAP_LIBC(opendir, DIR *, (const char *path), (path), NULL, EACCES)
WRAP_LIBC(fdatasync, int, (int fd), (fd), -1, EIO)
WRAP_LIBC(flock, int, (int fd, int op), (fd, op), -1, ENOLCK)

int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    if (fault_now(__builtin_return_address(0), "libc open")) {
        errno = EACCES;
        return -1;
    }
    return __real_open(path, flags, mode);
}

/* ---- the sweep ---- */

char *elag_fault_dir;

void elag_fault_setup(void)
{
    elag_fault_dir = elag_test_tmpdir("cov-faults");
}

void elag_fault_teardown(void)
{
    F.mode = OFF;
    elag_test_rmtree(elag_fault_dir);
    free(elag_fault_dir);
    elag_fault_dir = NULL;
}

/* What one run did, from the child process it ran in. */
typedef struct outcome {
    int crashed; /* the child died: a signal, or no report */
    int fired;   /* the fault was injected */
    elag_status st;
    char msg[400];
} outcome;

/* Reads exactly n bytes (0) or fewer (-1: the writer died). */
static int read_all(int fd, void *p, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)p + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

/* The coverage runtime's "write the counters now" (gcc --coverage builds only): a child
 * leaves with _exit, so that the parent's atexit handlers (the test folder's removal) do
 * not run, and its counters would be lost without this. */
extern void __gcov_dump(void) __attribute__((weak));

/* Runs op(arg, iter) in a child process with call `at` failing; at = -1: no fault, the
 * call sites are counted into F; at = -2: no fault. Every run is a child's: the library's
 * OpenMP thread pool must not exist in a process that forks (libgomp is not fork-safe). */
static outcome run_child(elag_fault_op op, const char *arg, int iter, long at, int depth)
{
    outcome o;
    memset(&o, 0, sizeof o);
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fd[0]);
        alarm(120); /* a hang shows as a crash (SIGALRM), not a stuck suite */
        memset(&F, 0, sizeof F);
        F.depth = depth;
        if (depth > 1) {
            void *prime[4];
            (void)backtrace(prime, 4); /* loads what it needs before anything counts */
        }
        F.mode = at == -1 ? COUNT : at >= 0 ? FAIL : OFF, F.fail_at = at;
        o.st = op(arg, iter);
        const int mode = F.mode;
        F.mode = OFF;
        o.fired = F.fired;
        snprintf(o.msg, sizeof o.msg, "%s", elag_last_error());
        (void)!write(fd[1], &o, sizeof o);
        if (mode == COUNT) (void)!write(fd[1], &F, sizeof F);
        if (__gcov_dump) __gcov_dump();
        _exit(0);
    }
    close(fd[1]);
    int bad = read_all(fd[0], &o, sizeof o);
    if (!bad && at == -1) bad = read_all(fd[0], &F, sizeof F);
    close(fd[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    if (bad) {
        memset(&o, 0, sizeof o);
        o.crashed = 1;
        snprintf(o.msg, sizeof o.msg, "%s %d", WIFSIGNALED(ws) ? "signal" : "exit",
                 WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
    }
    return o;
}

void elag_fault_child_ok(elag_fault_op op, const char *arg)
{
    outcome o = run_child(op, arg, -1000, -2, 1);
    cr_assert(!o.crashed && o.st == ELAG_OK, "preparing %s: %s %s", arg, elag_status_name(o.st),
              o.msg);
}

int elag_fault_sweep_depth(const char *what, elag_fault_op op, const char *arg, int depth)
{
    outcome c = run_child(op, arg, -1, -1, depth);
    cr_assert(!c.crashed && c.st == ELAG_OK, "%s without faults: %s %s", what,
              elag_status_name(c.st), c.msg);
    cr_assert_gt(F.n_sites, 0, "%s: no backend call was seen (is the link wrapped?)", what);
    cr_assert_lt(F.n_sites, MAX_SITES, "%s: more call sites than MAX_SITES", what);
    const int n = F.n_sites;
    long *first = malloc((size_t)n * sizeof *first);
    const char **ops = malloc((size_t)n * sizeof *ops);
    cr_assert(first && ops);
    memcpy(first, F.first, (size_t)n * sizeof *first);
    memcpy(ops, F.op, (size_t)n * sizeof *ops);
    int ignored = 0;
    for (int s = 0; s < n; s++) {
        outcome o = run_child(op, arg, s, first[s], 1);
        const int libc = strncmp(ops[s], "libc ", 5) == 0;
        cr_expect(!o.crashed, "%s: a fault in %s at call %ld crashed it (%s)", what, ops[s],
                  first[s], o.msg);
        if (o.crashed) continue;
        cr_expect(o.fired, "%s: call %ld (%s) was not reached again", what, first[s], ops[s]);
        if (libc) {
            ignored += o.st == ELAG_OK;
            if (o.st == ELAG_OK) cr_log_info("%s: %s at call %ld: ignored", what, ops[s], first[s]);
            cr_expect(o.st == ELAG_OK || o.st == ELAG_ERR_NOMEM || o.st == ELAG_ERR_IO ||
                          o.st == ELAG_ERR_INPUT,
                      "%s: fault in %s at call %ld gave %s '%s'", what, ops[s], first[s],
                      elag_status_name(o.st), o.msg);
            cr_expect(o.st == ELAG_OK || o.msg[0], "%s: fault in %s: no message", what, ops[s]);
            continue;
        }
        char want[64];
        snprintf(want, sizeof want, "injected fault in %s", ops[s]);
        cr_expect_neq(o.st, ELAG_OK, "%s: the fault in %s at call %ld was swallowed", what, ops[s],
                      first[s]);
        cr_expect(o.st == ELAG_OK || strstr(o.msg, want) != NULL,
                  "%s: fault in %s at call %ld gave %s '%s'", what, ops[s], first[s],
                  elag_status_name(o.st), o.msg);
    }
    cr_log_info("%s: %d call sites, %d C library faults ignored on purpose", what, n, ignored);
    free(first);
    free(ops);
    return n;
}

int elag_fault_sweep(const char *what, elag_fault_op op, const char *arg)
{
    return elag_fault_sweep_depth(what, op, arg, 1);
}

void elag_fault_path_of(char *out, size_t size, const char *name, int iter)
{
    snprintf(out, size, "%s/%s%d", elag_fault_dir, name, iter + 1);
}

/* ---- fixtures: three small configs, a trained run, an export ---- */

const char elag_fault_mlp_yaml[] =
    "name: fa\n"
    "device: cpu-ref\n"
    "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 6, classes: 3}}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: linear, out_features: 8}\n"
    "    - {type: batchnorm}\n"
    "    - {type: relu}\n"
    "    - {type: dropout, p: 0.25}\n"
    "    - {type: linear, out_features: 3}\n"
    "train: {epochs: 2, batch_size: 16, threads: 1, eval_every_epoch: true, log_every: 1,\n"
    "        checkpoint_every: 1, optimizer: {type: adamw},\n"
    "        lr_schedule: {type: cosine, warmup_steps: 2}}\n"
    "prune: {method: gmp, target: 0.5, start: 0, end: 0.5, frequency: 1}\n";

const char elag_fault_rigl_yaml[] =
    "name: fb\n"
    "device: cpu-ref\n"
    "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 6, classes: 3}}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: linear, out_features: 8}\n"
    "    - {type: relu}\n"
    "    - {type: linear, out_features: 3}\n"
    "train: {epochs: 2, batch_size: 16, threads: 1, log_every: 2, checkpoint_steps: 3,\n"
    "        optimizer: {type: sgd, nesterov: true}, lr_schedule: {type: step, step_size: 2}}\n"
    "prune: {method: rigl, target: 0.5, start: 0, end: 0.75, frequency: 2}\n";

const char elag_fault_conv_yaml[] =
    "name: fc\n"
    "device: cpu-ref\n"
    "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 6, classes: 3}}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: conv2d, out_channels: 2, kernel: [1, 3], padding: [0, 1], bias: false}\n"
    "    - {type: batchnorm}\n"
    "    - {type: relu}\n"
    "    - {type: conv2d, out_channels: 2, kernel: [1, 2], stride: [1, 2]}\n"
    "    - {type: maxpool, kernel: [1, 2], stride: 1}\n"
    "    - {type: avgpool, kernel: [1, 2], stride: 1}\n"
    "    - {type: flatten}\n"
    "    - {type: linear, out_features: 3}\n"
    "train: {epochs: 1, batch_size: 16, threads: 1}\n"
    "prune: {method: oneshot, target: 0.5, granularity: channel}\n";

elag_status elag_fault_train_named(const char *name, int iter)
{
    (void)iter;
    char file[600], out[600];
    snprintf(file, sizeof file, "%s/%s.yaml", elag_fault_dir, name);
    snprintf(out, sizeof out, "%s/%s", elag_fault_dir, name);
    return elag_run_train(file, out, NULL, NULL);
}

void elag_fault_trained(const char *name, const char *yaml, char *ckpt, size_t size)
{
    char file[128];
    snprintf(file, sizeof file, "%s.yaml", name);
    elag_test_put(elag_fault_dir, file, yaml);
    elag_fault_child_ok(elag_fault_train_named, name);
    snprintf(ckpt, size, "%s/%s/model.safetensors", elag_fault_dir, name);
}

elag_status elag_fault_export_named(const char *spec, int iter)
{
    (void)iter;
    char name[64], format[32], ckpt[600], out[600];
    if (sscanf(spec, "%63s %31s", name, format) != 2)
        return elag_fail(ELAG_ERR_INTERNAL, "bad spec '%s'", spec);
    snprintf(ckpt, sizeof ckpt, "%s/%s/model.safetensors", elag_fault_dir, name);
    snprintf(out, sizeof out, "%s/%s.export", elag_fault_dir, name);
    elag_net_t *net = NULL;
    elag_status st = elag_net_from_checkpoint(&net, ckpt);
    if (st == ELAG_OK) st = elag_net_convert(net, format, NULL);
    if (st == ELAG_OK) st = elag_net_save(net, out);
    elag_net_free(net);
    return st;
}
