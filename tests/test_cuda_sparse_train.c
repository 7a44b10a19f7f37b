/*
 * Sparse training on CUDA (host/cuda/cuda_sparse_train.c, kernels/sparse_pattern.cu) against
 * its cpu-ref twin (host/cpu/cpu_sparse_train.c), and the trainer's gate for a step that
 * is only opt-in (ELAG_SUPPORT_OPT_IN: `auto` trains dense, `on` runs it).
 *
 * With a GPU: every op of the family on odd shapes (empty rows and columns, densities 0 to
 * 1, mask entries that are NaN or not 1, all kept as the contract says), batches 1, 13, 150
 * and 7 in turn on one pattern (the descriptors are rebuilt when n changes), new values set
 * between products (W^T's values follow), outputs filled with NaN first so an unwritten
 * entry shows. Data movement (gather, scatter, the structure's nnz) must be bit-identical;
 * the products and the SDDMM are FP32 sums in another order than cpu-ref's double ones, so
 * they are held to ELAG_TOL_CUDA_ABS (scaled by sqrt(terms + 1), as tests/test_ops_*.c do)
 * and ELAG_TOL_CUDA_REL. W^T x runs on a CSR of W^T, not a transposed cuSPARSE product, so
 * two runs give the same bits: checked. Then a training run on CUDA with
 * train.sparse_compute on against the same run on the CPU's sparse step and against CUDA's
 * dense masked step, checkpoint tensor by tensor, and `auto` on CUDA training dense.
 * Without a GPU these skip visibly ("no CUDA device").
 *
 * Without a GPU too: supports()'s answer on CUDA (a pure function) and the gate itself,
 * through a CPU backend whose supports() answers OPT_IN.
 */
#define _POSIX_C_SOURCE 200809L
#include "backend/backend.h"
#include "backend/philox.h"
#include "config/config.h"
#include "io/safetensors.h"
#include "support/testutil.h"
#include "train/trainer.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

/* ---- the trainer on a small MLP (odd sizes: 37 features, 29 and 23 hidden, 5 classes) ---- */

static void small_config(elag_config *cfg, const char *device, const char *prune, int train_n)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "name: cst\ndevice: %s\nseed: 5\n"
             "data: {dataset: synthetic, synthetic: {train: %d, test: 40, features: 37, "
             "classes: 5}}\n"
             "model:\n  layers:\n"
             "    - {type: linear, out_features: 29}\n    - {type: relu}\n"
             "    - {type: linear, out_features: 23}\n    - {type: relu}\n"
             "    - {type: linear, out_features: 5}\n"
             "train: {epochs: 1, batch_size: 13, threads: 1, log_every: 1,\n"
             "        optimizer: {type: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.01}}\n"
             "prune: %s\n",
             device, train_n, prune);
    OK(elag_config_parse(yaml, strlen(yaml), "cst.yaml", NULL, 0, cfg));
}

#define ONESHOT_70 "{method: oneshot, target: 0.7, start: 0}"
#define ONESHOT_90 "{method: oneshot, target: 0.9, start: 0}"

/* Trains cfg into dir with `mode` on `be` (when not NULL, else cfg's device); *live: the
 * layers on their pattern at the end. */
static elag_status train_on(const elag_config *base, elag_backend *be, elag_sparse_compute mode,
                            const char *dir, int *live)
{
    elag_config cfg = *base;
    cfg.train.sparse_compute = mode;
    elag_backend *own = NULL;
    if (be == NULL) {
        OK(elag_backend_open(cfg.device, 1, &own, NULL, 0));
        be = own;
    }
    elag_run_data data;
    OK(elag_run_data_load(&cfg, &data));
    elag_train_options opts = {.out_dir = dir};
    elag_trainer *t = NULL;
    elag_train_summary sum;
    elag_status st = elag_trainer_init(&t, &cfg, be, &data, &opts);
    if (st == ELAG_OK) st = elag_trainer_run(t, &sum);
    *live = t ? t->sparse.n_live : -1;
    elag_trainer_free(t);
    elag_run_data_free(&data);
    elag_backend_free(own);
    return st;
}

/* ---- without a GPU: the gate ---- */

static elag_support (*real_supports)(elag_backend *, elag_op, const elag_op_query *, char *,
                                     size_t);

static elag_support opt_in_only(elag_backend *b, elag_op op, const elag_op_query *q, char *why,
                                size_t why_len)
{
    if (op != ELAG_OP_SPARSE_TRAIN) return real_supports(b, op, q, why, why_len);
    if (why && why_len) snprintf(why, why_len, "not verified here");
    return ELAG_SUPPORT_OPT_IN;
}

/* A CPU backend whose sparse training step is only opt-in (as CUDA's is): `auto` must train
 * dense although every layer is 90% sparse, `on` must train on the patterns. */
Test(cuda_sparse_train, opt_in_step_runs_on_on_and_not_on_auto)
{
    elag_config cfg;
    small_config(&cfg, "cpu", ONESHOT_90, 26);
    char *dir = elag_test_tmpdir("optin");
    for (int k = 0; k < 3; k++) {
        elag_backend *be;
        OK(elag_backend_open("cpu", 1, &be, NULL, 0));
        real_supports = be->supports;
        if (k > 0) be->supports = opt_in_only; /* k == 0: the plain CPU, for contrast */
        const elag_sparse_compute mode = k == 2 ? ELAG_SPARSE_COMPUTE_ON : ELAG_SPARSE_COMPUTE_AUTO;
        int live = -1;
        OK(train_on(&cfg, be, mode, dir, &live));
        const int want = k == 1 ? 0 : 3;
        cr_expect_eq(live, want, "case %d: %d layers on their pattern, want %d", k, live, want);
        be->supports = real_supports;
        elag_backend_free(be);
    }
    elag_test_rmtree(dir);
    free(dir);
}

#ifdef ELAG_HAVE_CUDA

#include "cuda/cuda_backend.h"
#include "cuda/cuda_sparse_train.h"

/* supports() on CUDA is a pure answer: checked here without a device. */
Test(cuda_sparse_train, supports_is_opt_in_with_a_reason)
{
    char why[200] = "";
    cr_expect_eq(elag_cuda_sparse_train_supports(why, sizeof why), ELAG_SUPPORT_OPT_IN);
    cr_expect(strstr(why, "not been verified on a GPU") && strstr(why, "'auto' trains dense"), "%s",
              why);
    cr_expect_eq(elag_cuda_sparse_train_supports(NULL, 0), ELAG_SUPPORT_OPT_IN);
    cr_expect_str_eq(elag_cuda_pattern_paths(NULL), "");
}

/* W^T's structure (built on the host at each mask update) against a brute-force transpose
 * of the dense mask: odd shapes, empty rows and columns, nothing kept, 0-sized. */
Test(cuda_sparse_train, transpose_of_the_structure)
{
    static const int dims[][2] = {{37, 45}, {1, 1}, {130, 7}, {7, 130}, {0, 5}, {5, 0}, {9, 9}};
    static const double keep_p[] = {0.0, 0.05, 0.5, 1.0};
    for (size_t d = 0; d < sizeof dims / sizeof *dims; d++)
        for (size_t k = 0; k < sizeof keep_p / sizeof *keep_p; k++) {
            const int rows = dims[d][0], cols = dims[d][1];
            const size_t rc = (size_t)rows * cols;
            unsigned char *kept = calloc(rc + 1, 1);
            int32_t *indptr = calloc((size_t)rows + 1, sizeof *indptr);
            int32_t *indices = calloc(rc + 1, sizeof *indices);
            int32_t *t_ptr = calloc((size_t)cols + 2, sizeof *t_ptr);
            int32_t *t_idx = calloc(rc + 1, sizeof *t_idx), *t_src = calloc(rc + 1, sizeof *t_src);
            cr_assert(kept && indptr && indices && t_ptr && t_idx && t_src);
            int32_t q = 0;
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < cols; j++) {
                    const size_t i = (size_t)r * cols + j;
                    kept[i] = (double)elag_philox_uniform(90 + d, k, i) < keep_p[k] && r % 4 != 2;
                    if (kept[i]) indices[q++] = j;
                }
                indptr[r + 1] = q;
            }
            elag_cuda_pattern_transpose(rows, cols, indptr, indices, t_ptr, t_idx, t_src);
            /* W^T row j: the rows r with (r, j) kept, increasing; t_src names W's entry */
            int32_t at = 0;
            for (int j = 0; j < cols; j++) {
                cr_assert_eq(t_ptr[j], at, "%dx%d p %.2f: t_indptr[%d] %d, want %d", rows, cols,
                             keep_p[k], j, t_ptr[j], at);
                for (int r = 0; r < rows; r++) {
                    if (!kept[(size_t)r * cols + j]) continue;
                    cr_assert_eq(t_idx[at], r, "%dx%d: W^T (%d, .) entry %d", rows, cols, j, at);
                    const int32_t src = t_src[at];
                    cr_assert(src >= indptr[r] && src < indptr[r + 1] && indices[src] == j,
                              "%dx%d: t_src[%d] = %d is not W's (%d, %d)", rows, cols, at, src, r,
                              j);
                    at++;
                }
            }
            cr_assert_eq(t_ptr[cols], at, "%dx%d: nnz %d, want %d", rows, cols, t_ptr[cols], at);
            free(kept), free(indptr), free(indices), free(t_ptr), free(t_idx), free(t_src);
        }
}

static elag_backend *ref, *cu;

#define NEED_CUDA()                                                                                \
    do {                                                                                           \
        if (elag_cuda_count_devices() == 0) cr_skip_test("no CUDA device");                        \
        OK(elag_cuda_backend_init(0, &cu));                                                        \
    } while (0)

static void setup(void)
{
    OK(elag_cpu_ref_backend_init(&ref));
}
static void teardown(void)
{
    elag_backend_free(cu);
    elag_backend_free(ref);
    cu = ref = NULL;
}

TestSuite(cuda_sparse_ops, .init = setup, .fini = teardown);

#define MAX_N 160

typedef struct st_shape {
    int rows, cols;
    double zero_frac; /* of the mask */
    int holes;        /* rows r % 5 == 1 and columns j % 7 == 3 pruned whole */
} st_shape;

static const st_shape shapes[] = {
    {37, 45, 0.5, 1}, {37, 45, 0.9, 0},  {130, 70, 0.95, 1}, {70, 130, 0.0, 0},
    {23, 19, 1.0, 0}, {64, 33, 0.99, 0}, {1, 1, 0.0, 0},     {300, 257, 0.9, 1},
    {97, 1, 0.5, 0},  {1, 97, 0.5, 0},   {0, 5, 0.5, 0},     {5, 0, 0.5, 0},
};
/* in this order on one pattern: n changes between calls */
static const int batches[] = {1, 13, 150, 7};

static float *xmalloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    cr_assert_not_null(p);
    return p;
}

static float *rnd(size_t n, uint64_t seed)
{
    float *p = xmalloc(n);
    elag_test_fill_uniform(p, n, -1.0f, 1.0f, seed);
    return p;
}

/* The mask: kept with probability 1 - zero_frac; kept entries are 1, except every 11th,
 * which is 0.5, -2 or NaN in turn (all kept: mask != 0, NaN included). */
static float *make_mask(const st_shape *s, uint64_t seed)
{
    const size_t n = (size_t)s->rows * s->cols;
    float *m = xmalloc(n);
    size_t kept = 0;
    for (int r = 0; r < s->rows; r++)
        for (int j = 0; j < s->cols; j++) {
            const size_t i = (size_t)r * s->cols + j;
            int keep = (double)elag_philox_uniform(seed, 1, i) >= s->zero_frac;
            if (s->holes && (r % 5 == 1 || j % 7 == 3)) keep = 0;
            if (!keep) continue;
            static const float odd[] = {0.5f, -2.0f, NAN};
            m[i] = kept % 11 == 10 ? odd[(kept / 11) % 3] : 1.0f;
            kept++;
        }
    return m;
}

static float *dev_from(elag_backend *be, const float *h, size_t n)
{
    void *d = NULL;
    OK(elag_be_alloc(be, sizeof(float) * (n ? n : 1), &d));
    if (n) OK(elag_be_to_device(be, d, h, sizeof(float) * n));
    return d;
}

static float *dev_nan(elag_backend *be, size_t n)
{
    float *h = xmalloc(n);
    for (size_t i = 0; i < n; i++) h[i] = NAN;
    float *d = dev_from(be, h, n);
    free(h);
    return d;
}

static float *host_of(elag_backend *be, const float *d, size_t n)
{
    float *h = xmalloc(n);
    if (n) OK(elag_be_to_host(be, h, d, sizeof(float) * n));
    return h;
}

/* The product (or SDDMM) got against cpu-ref's, each sum of `terms` products of values in
 * [-1, 1]; returns the mismatches (printed). */
static size_t compare_sum(const char *what, const float *got, const float *want, size_t n,
                          int terms)
{
    return elag_test_compare(what, got, want, n, ELAG_TOL_CUDA_ABS * sqrt((double)terms + 1.0),
                             ELAG_TOL_CUDA_REL);
}

/* One op run on both backends: the result downloaded from each. */
typedef struct pair {
    elag_backend *be[2]; /* ref, cu */
    elag_sparse_pattern *p[2];
} pair;

static void products(pair *P, const st_shape *s, int n, uint64_t seed, const char *tag)
{
    const int rows = s->rows, cols = s->cols;
    const size_t ny = (size_t)rows * n, nx = (size_t)cols * n;
    const size_t nnz = (size_t)elag_sparse_pattern_nnz(P->p[0]);
    float *x = rnd(nx, seed), *dy = rnd(ny, seed + 1);
    float *res[2][4]; /* W x, W^T dy, sddmm, W^T dy again */
    for (int k = 0; k < 2; k++) {
        elag_backend *be = P->be[k];
        float *dx_in = dev_from(be, x, nx), *ddy = dev_from(be, dy, ny);
        float *y = dev_nan(be, ny), *dxo = dev_nan(be, nx), *g = dev_nan(be, nnz);
        float *dxo2 = dev_nan(be, nx);
        OK(elag_be_sparse_pattern_mm(be, P->p[k], 0, dx_in, n, y));
        OK(elag_be_sparse_pattern_mm(be, P->p[k], 1, ddy, n, dxo));
        OK(elag_be_sddmm(be, P->p[k], ddy, dx_in, n, g));
        OK(elag_be_sparse_pattern_mm(be, P->p[k], 1, ddy, n, dxo2));
        OK(elag_be_sync(be));
        res[k][0] = host_of(be, y, ny);
        res[k][1] = host_of(be, dxo, nx);
        res[k][2] = host_of(be, g, nnz);
        res[k][3] = host_of(be, dxo2, nx);
        float *bufs[] = {dx_in, ddy, y, dxo, g, dxo2};
        for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) elag_be_release(be, bufs[i]);
    }
    char what[160];
    snprintf(what, sizeof what, "%s n=%d W x", tag, n);
    cr_expect_eq(compare_sum(what, res[1][0], res[0][0], ny, cols), 0, "%s", what);
    snprintf(what, sizeof what, "%s n=%d W^T dy", tag, n);
    cr_expect_eq(compare_sum(what, res[1][1], res[0][1], nx, rows), 0, "%s", what);
    snprintf(what, sizeof what, "%s n=%d sddmm", tag, n);
    cr_expect_eq(compare_sum(what, res[1][2], res[0][2], nnz, n), 0, "%s", what);
    snprintf(what, sizeof what, "%s n=%d W^T dy twice", tag, n);
    cr_expect_eq(elag_test_bit_diffs(what, res[1][3], res[1][1], nx), 0, "%s: not deterministic",
                 what);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 4; i++) free(res[k][i]);
    free(x);
    free(dy);
}

/* Every op on shape s, CUDA against cpu-ref; own: CUDA's products on its own kernels (the
 * fallbacks where cuSPARSE refuses) instead of what cuSPARSE took. */
static void one_shape(const st_shape *s, uint64_t seed, int own)
{
    const int rows = s->rows, cols = s->cols;
    const size_t rc = (size_t)rows * cols;
    float *mask = make_mask(s, seed), *w = rnd(rc, seed + 10);
    pair P = {{ref, cu}, {NULL, NULL}};
    float *vals[2] = {NULL, NULL};
    char tag[96];
    snprintf(tag, sizeof tag, "%dx%d zeros %.2f%s%s", rows, cols, s->zero_frac,
             s->holes ? " holes" : "", own ? " own kernels" : "");
    for (int k = 0; k < 2; k++) {
        elag_backend *be = P.be[k];
        float *dm = dev_from(be, mask, rc);
        OK(elag_be_sparse_pattern_create(be, dm, rows, cols, MAX_N, &P.p[k]));
        elag_be_release(be, dm);
    }
    if (own) elag_cuda_pattern_use_own_kernels(P.p[1]);
    const int64_t nnz = elag_sparse_pattern_nnz(P.p[0]);
    cr_assert_eq(elag_sparse_pattern_nnz(P.p[1]), nnz, "%s: nnz cuda %lld, cpu-ref %lld", tag,
                 (long long)elag_sparse_pattern_nnz(P.p[1]), (long long)nnz);
    cr_log_info("%s: nnz %lld, %s", tag, (long long)nnz, elag_cuda_pattern_paths(P.p[1]));
    const size_t nv = (size_t)nnz;
    /* gather: the same values in the same (CSR) order, bit for bit */
    float *got[2];
    for (int k = 0; k < 2; k++) {
        elag_backend *be = P.be[k];
        float *dw = dev_from(be, w, rc);
        vals[k] = dev_nan(be, nv);
        OK(elag_be_sparse_gather(be, P.p[k], dw, vals[k]));
        OK(elag_be_sparse_values_set(be, P.p[k], vals[k]));
        got[k] = host_of(be, vals[k], nv);
        elag_be_release(be, dw);
    }
    cr_expect_eq(elag_test_bit_diffs("gather", got[1], got[0], nv), 0, "%s: gather", tag);
    for (size_t b = 0; b < sizeof batches / sizeof *batches; b++)
        products(&P, s, batches[b], seed + 20 + b, tag);
    /* new weights, as after an optimizer step: W and W^T products both see them */
    float *v2 = xmalloc(nv);
    for (size_t q = 0; q < nv; q++) v2[q] = 0.25f - 0.5f * got[0][q];
    for (int k = 0; k < 2; k++) {
        float *d = dev_from(P.be[k], v2, nv);
        OK(elag_be_sparse_values_set(P.be[k], P.p[k], d));
        elag_be_release(P.be[k], d); /* copied: the pattern keeps no reference */
    }
    char tag2[128];
    snprintf(tag2, sizeof tag2, "%s new values", tag);
    products(&P, s, 13, seed + 40, tag2);
    /* scatter vals + 1 into 7s: kept entries change, the rest must not */
    float *plus = xmalloc(nv), *sevens = xmalloc(rc), *dense[2];
    for (size_t q = 0; q < nv; q++) plus[q] = got[0][q] + 1.0f;
    for (size_t i = 0; i < rc; i++) sevens[i] = 7.0f;
    for (int k = 0; k < 2; k++) {
        elag_backend *be = P.be[k];
        float *dp = dev_from(be, plus, nv), *dd = dev_from(be, sevens, rc);
        OK(elag_be_sparse_scatter(be, P.p[k], dp, dd));
        dense[k] = host_of(be, dd, rc);
        elag_be_release(be, dp);
        elag_be_release(be, dd);
    }
    cr_expect_eq(elag_test_bit_diffs("scatter", dense[1], dense[0], rc), 0, "%s: scatter", tag);
    for (int k = 0; k < 2; k++) {
        elag_be_release(P.be[k], vals[k]);
        elag_be_sparse_pattern_destroy(P.be[k], P.p[k]);
        free(got[k]);
        free(dense[k]);
    }
    free(v2);
    free(plus);
    free(sevens);
    free(mask);
    free(w);
}

Test(cuda_sparse_ops, every_op_matches_cpu_ref)
{
    NEED_CUDA();
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        one_shape(&shapes[k], 1700 + 50 * k, 0);
}

Test(cuda_sparse_ops, own_kernels_match_cpu_ref)
{
    NEED_CUDA();
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++)
        one_shape(&shapes[k], 2700 + 50 * k, 1);
}

/* A pattern of another backend is refused by the CUDA entries (a magic number), not read. */
Test(cuda_sparse_ops, foreign_pattern_is_refused)
{
    NEED_CUDA();
    float m[6] = {1, 0, 1, 0, 1, 1};
    elag_sparse_pattern *p = NULL;
    OK(elag_be_sparse_pattern_create(ref, m, 2, 3, 4, &p));
    void *d = NULL;
    OK(elag_be_alloc(cu, sizeof(float) * 64, &d));
    cr_expect_eq(cu->sparse_pattern_mm(cu, p, 0, d, 1, d), ELAG_ERR_INTERNAL);
    cr_expect_eq(cu->sddmm(cu, p, d, d, 1, d), ELAG_ERR_INTERNAL);
    cr_expect_eq(cu->sparse_gather(cu, p, d, d), ELAG_ERR_INTERNAL);
    cr_expect_eq(cu->sparse_scatter(cu, p, d, d), ELAG_ERR_INTERNAL);
    cr_expect_eq(cu->sparse_values_set(cu, p, d), ELAG_ERR_INTERNAL);
    cr_expect(strstr(elag_last_error(), "not a pattern of the CUDA backend"), "%s",
              elag_last_error());
    elag_be_release(cu, d);
    elag_be_sparse_pattern_destroy(ref, p);
}

/* ---- training: CUDA's sparse step against the CPU's and against CUDA's dense step ---- */

static elag_st_file *open_checkpoint(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    elag_st_file *f;
    OK(elag_st_open(path, &f));
    return f;
}

/* Every F32 tensor of a's checkpoint against b's within the CUDA tolerance, every other
 * tensor (masks) bit for bit; returns how many F32 tensors compared. */
static int compare_checkpoints(const char *a_dir, const char *b_dir, const char *what)
{
    elag_st_file *a = open_checkpoint(a_dir), *b = open_checkpoint(b_dir);
    cr_assert_eq(elag_st_count(a), elag_st_count(b));
    int n = 0;
    for (int i = 0; i < elag_st_count(a); i++) {
        const elag_st_tensor *x = elag_st_at(a, i), *y = elag_st_find(b, x->name);
        cr_assert_not_null(y, "%s: %s missing", what, x->name);
        cr_assert_eq(x->nbytes, y->nbytes);
        if (x->dtype != ELAG_DTYPE_F32) {
            cr_expect_eq(memcmp(x->data, y->data, x->nbytes), 0, "%s: %s differs", what, x->name);
            continue;
        }
        size_t bad = elag_test_compare(x->name, x->data, y->data, x->nbytes / sizeof(float),
                                       ELAG_TOL_CUDA_ABS, ELAG_TOL_CUDA_REL);
        cr_expect_eq(bad, 0, "%s: %s: %zu entries differ", what, x->name, bad);
        n++;
    }
    elag_st_close(a);
    elag_st_close(b);
    return n;
}

/* One step (13 samples, batch 13) and one epoch (8 steps), 70% one-shot magnitude masks:
 * CUDA with `on` trains every linear layer on its pattern and ends where the CPU's sparse
 * step and CUDA's dense masked step end, within the tolerance. */
static void cuda_vs_cpu(int train_n)
{
    elag_config gpu, cpu;
    small_config(&gpu, "cuda", ONESHOT_70, train_n);
    small_config(&cpu, "cpu", ONESHOT_70, train_n);
    char *g_sp = elag_test_tmpdir("g_sp"), *g_de = elag_test_tmpdir("g_de");
    char *c_sp = elag_test_tmpdir("c_sp");
    int live;
    OK(train_on(&gpu, NULL, ELAG_SPARSE_COMPUTE_ON, g_sp, &live));
    cr_expect_eq(live, 3, "CUDA: %d layers on their pattern", live);
    OK(train_on(&gpu, NULL, ELAG_SPARSE_COMPUTE_OFF, g_de, &live));
    cr_expect_eq(live, 0);
    OK(train_on(&cpu, NULL, ELAG_SPARSE_COMPUTE_ON, c_sp, &live));
    cr_expect_eq(live, 3);
    cr_expect_gt(compare_checkpoints(g_sp, c_sp, "cuda sparse vs cpu sparse"), 6);
    cr_expect_gt(compare_checkpoints(g_sp, g_de, "cuda sparse vs cuda dense"), 6);
    elag_test_rmtree(g_sp);
    elag_test_rmtree(g_de);
    elag_test_rmtree(c_sp);
    free(g_sp);
    free(g_de);
    free(c_sp);
}

TestSuite(cuda_sparse_training);

Test(cuda_sparse_training, one_step_matches_cpu_and_dense)
{
    if (elag_cuda_count_devices() == 0) cr_skip_test("no CUDA device");
    cuda_vs_cpu(13);
}

Test(cuda_sparse_training, one_epoch_matches_cpu_and_dense)
{
    if (elag_cuda_count_devices() == 0) cr_skip_test("no CUDA device");
    cuda_vs_cpu(104);
}

/* `auto` on CUDA trains dense even where the CPU would use the patterns (90% sparse). */
Test(cuda_sparse_training, auto_trains_dense_on_cuda)
{
    if (elag_cuda_count_devices() == 0) cr_skip_test("no CUDA device");
    elag_config cfg;
    small_config(&cfg, "cuda", ONESHOT_90, 26);
    char *dir = elag_test_tmpdir("g_auto");
    int live;
    OK(train_on(&cfg, NULL, ELAG_SPARSE_COMPUTE_AUTO, dir, &live));
    cr_expect_eq(live, 0, "CUDA auto: %d layers on their pattern", live);
    elag_test_rmtree(dir);
    free(dir);
}

#else /* !ELAG_HAVE_CUDA */

Test(cuda_sparse_train, built_without_cuda)
{
    cr_skip_test("built without CUDA");
}

#endif
