/*
 * Sparse training ops against cpu-ref (the harness: tests/support/ops_harness.h): a pattern
 * built from a mask (sparse_pattern_create / destroy), values in and out of CSR order
 * (sparse_gather, sparse_scatter, sparse_values_set), the products with W and W^T
 * (sparse_pattern_mm) and the weight gradient at the kept entries (sddmm); odd shapes,
 * densities 0 to 1, empty rows and columns, batches under and over a packed tile, every
 * instruction set the machine runs on the fast CPU backend, and the wrappers' refusals.
 * Each result is also checked against the formula of backend.h computed here in double
 * over the dense masked matrix, so cpu-ref itself is tested. CUDA runs the family but
 * only as an opt-in (supports() says OPT_IN until a GPU has run these tests): checked, then
 * held to the same comparisons (tests/test_cuda_sparse_train.c has more).
 */
#include "support/ops_harness.h"

#include "cpu/cpu_sparse_train.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

OPS_TEST_FILE(OPS_CASES_SPARSE_TRAIN);

#define MAX_N 160 /* over ELAG_SPMM_TILE (128): packed tiles and an unpacked rest */

typedef struct st_shape {
    int rows, cols;
    double zero_frac; /* of the mask */
    int holes;        /* rows r % 5 == 1 and columns j % 7 == 3 pruned whole */
} st_shape;

static const st_shape shapes[] = {
    {37, 45, 0.5, 1},  {37, 45, 0.9, 0}, {130, 70, 0.95, 1}, {70, 130, 0.0, 0}, {23, 19, 1.0, 0},
    {64, 33, 0.99, 0}, {1, 1, 0.0, 0},   {0, 5, 0.5, 0},     {5, 0, 0.5, 0},
};
static const int batches[] = {13, 1, 150};

static float *make_mask(const st_shape *s, uint64_t seed)
{
    const size_t n = (size_t)s->rows * s->cols;
    float *m = hmask(n ? n : 1, s->zero_frac, seed);
    if (s->zero_frac >= 1.0) memset(m, 0, (n ? n : 1) * sizeof *m);
    if (s->zero_frac <= 0.0)
        for (size_t i = 0; i < n; i++) m[i] = 1.0f;
    if (s->holes)
        for (int r = 0; r < s->rows; r++)
            for (int j = 0; j < s->cols; j++)
                if (r % 5 == 1 || j % 7 == 3) m[(size_t)r * s->cols + j] = 0.0f;
    return m;
}

/* What one backend computes for one shape and batch. */
typedef struct st_out {
    int64_t nnz;
    float *vals; /* (nnz) gather of w */
    float *y;    /* (rows, n) W x */
    float *dx;   /* (cols, n) W^T dy */
    float *g;    /* (nnz) sddmm(dy, x) */
    float *d;    /* (rows, cols) 7.0 everywhere, then scatter of vals + 1 */
} st_out;

static void run_on(elag_backend *be, int isa, const st_shape *s, const float *mask, const float *w,
                   const float *x, const float *dy, int n, st_out *o)
{
    const int rows = s->rows, cols = s->cols;
    const size_t rc = (size_t)rows * cols;
    elag_sparse_pattern *p = NULL;
    OKB(be, elag_be_sparse_pattern_create(be, fin(be, mask, rc, "mask"), rows, cols, MAX_N, &p));
    if (be->kind == ELAG_DEVICE_CPU) p->w->isa = p->wt->isa = (elag_cpu_isa)isa;
    o->nnz = elag_sparse_pattern_nnz(p);
    const size_t nnz = (size_t)o->nnz;
    float *vals = fout(be, nnz, "vals");
    OKB(be, elag_be_sparse_gather(be, p, fin(be, w, rc, "w"), vals));
    OKB(be, elag_be_sparse_values_set(be, p, vals));
    float *dyv = fout(be, (size_t)rows * n, "y"), *dxv = fout(be, (size_t)cols * n, "dx");
    float *dxin = fin(be, x, (size_t)cols * n, "x"), *ddy = fin(be, dy, (size_t)rows * n, "dy");
    OKB(be, elag_be_sparse_pattern_mm(be, p, 0, dxin, n, dyv));
    OKB(be, elag_be_sparse_pattern_mm(be, p, 1, ddy, n, dxv));
    float *g = fout(be, nnz, "g");
    OKB(be, elag_be_sddmm(be, p, ddy, dxin, n, g));
    o->vals = hbuf(nnz ? nnz : 1);
    fget(o->vals, vals, nnz);
    o->g = hbuf(nnz ? nnz : 1);
    fget(o->g, g, nnz);
    o->y = hbuf((size_t)rows * n + 1);
    fget(o->y, dyv, (size_t)rows * n);
    o->dx = hbuf((size_t)cols * n + 1);
    fget(o->dx, dxv, (size_t)cols * n);
    /* scatter vals + 1 into a dense array of 7s: kept entries change, the rest must not */
    float *plus = hbuf(nnz ? nnz : 1), *sevens = hbuf(rc ? rc : 1);
    for (size_t q = 0; q < nnz; q++) plus[q] = o->vals[q] + 1.0f;
    for (size_t i = 0; i < rc; i++) sevens[i] = 7.0f;
    float *dd = fio(be, sevens, rc, "dense");
    OKB(be, elag_be_sparse_scatter(be, p, fin(be, plus, nnz, "plus"), dd));
    o->d = hbuf(rc ? rc : 1);
    fget(o->d, dd, rc);
    elag_be_sparse_pattern_destroy(be, p);
}

/* Every backend runs the family; CUDA's is opt-in until verified on a GPU. Returns 0: the
 * case goes on (kept as a function so a backend that refuses again has one place to say). */
static int sparse_train_refused(void)
{
    char why[200];
    elag_support s = elag_be_supports(T.b, ELAG_OP_SPARSE_TRAIN, NULL, why, sizeof why);
    if (T.b->kind != ELAG_DEVICE_CUDA) {
        cr_expect_eq(s, ELAG_SUPPORT_FP32, "%s: %s", T.b->name, why);
        return 0;
    }
    cr_expect_eq(s, ELAG_SUPPORT_OPT_IN, "%s: sparse training is opt-in on CUDA", T.b->name);
    cr_expect(strstr(why, "GPU") != NULL, "%s", why);
    return 0;
}

OPS_CASE(sparse_pattern)
{
    if (sparse_train_refused()) return;
    const int isas = T.b->kind == ELAG_DEVICE_CPU ? ELAG_CPU_ISA_AVX512 + 1 : 1;
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const st_shape *s = &shapes[k];
        const int rows = s->rows, cols = s->cols;
        const size_t rc = (size_t)rows * cols;
        const float *mask = make_mask(s, 1400 + k);
        const float *w = hrnd(rc + 1, -1.0f, 1.0f, 1420 + k);
        for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
            const int n = batches[bi];
            const float *x = hrnd((size_t)cols * n + 1, -1.0f, 1.0f, 1440 + k);
            const float *dy = hrnd((size_t)rows * n + 1, -1.0f, 1.0f, 1460 + k);
            st_out want, got;
            run_on(T.ref, 0, s, mask, w, x, dy, n, &want);
            /* the formulas of backend.h over the dense masked matrix, in double */
            int64_t kept = 0;
            float *hv = hbuf(rc + 1), *hd = hbuf(rc + 1);
            double *hy = dbuf((size_t)rows * n + 1), *hdx = dbuf((size_t)cols * n + 1);
            double *hg = dbuf(rc + 1);
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++) {
                    const size_t i = (size_t)r * cols + j;
                    hd[i] = 7.0f;
                    if (mask[i] == 0.0f) continue;
                    hv[kept] = w[i];
                    hd[i] = w[i] + 1.0f;
                    double gs = 0.0;
                    for (int c = 0; c < n; c++) {
                        hy[(size_t)r * n + c] += (double)w[i] * x[(size_t)j * n + c];
                        hdx[(size_t)j * n + c] += (double)w[i] * dy[(size_t)r * n + c];
                        gs += (double)dy[(size_t)r * n + c] * x[(size_t)j * n + c];
                    }
                    hg[kept++] = gs;
                }
            char what[128];
            snprintf(what, sizeof what, "%dx%d zeros %.2f n=%d", rows, cols, s->zero_frac, n);
            cr_expect_eq(want.nnz, kept, "%s: cpu-ref nnz %lld, mask keeps %lld", what,
                         (long long)want.nnz, (long long)kept);
            const size_t nnz = (size_t)kept;
            expect_identical("gather (cpu-ref)", want.vals, hv, nnz);
            expect_identical("scatter (cpu-ref)", want.d, hd, rc);
            expect_hand("W x (cpu-ref)", want.y, to_float(hy, (size_t)rows * n), (size_t)rows * n,
                        sqrt((double)cols + 1));
            expect_hand("W^T dy (cpu-ref)", want.dx, to_float(hdx, (size_t)cols * n),
                        (size_t)cols * n, sqrt((double)rows + 1));
            expect_hand("sddmm (cpu-ref)", want.g, to_float(hg, nnz), nnz, sqrt((double)n));
            for (int isa = 0; isa < isas; isa++) {
                if (!elag_cpu_isa_supported((elag_cpu_isa)isa)) continue;
                run_on(T.b, isa, s, mask, w, x, dy, n, &got);
                cr_log_info("%s: %s isa %d", T.b->name, what, isa);
                cr_expect_eq(got.nnz, kept, "%s: nnz", what);
                if (got.nnz != kept) continue;
                expect_identical("gather", got.vals, want.vals, nnz);
                expect_identical("scatter", got.d, want.d, rc);
                expect_close("W x", got.y, want.y, (size_t)rows * n, sqrt((double)cols + 1));
                expect_close("W^T dy", got.dx, want.dx, (size_t)cols * n, sqrt((double)rows + 1));
                expect_close("sddmm", got.g, want.g, nnz, sqrt((double)n));
            }
        }
    }
}

/* The wrappers refuse a misuse before any table entry runs, alike on every backend. */
OPS_CASE(sparse_train_args)
{
    if (sparse_train_refused()) return;
    elag_sparse_pattern *p = NULL;
    ALL_REFUSE(elag_be_sparse_pattern_create(be, NULL, 3, 4, 8, &p));
    ALL_REFUSE(elag_be_sparse_pattern_create(be, df, -1, 4, 8, &p));
    ALL_REFUSE(elag_be_sparse_pattern_create(be, df, 3, 4, 0, &p));
    ALL_REFUSE(elag_be_sparse_pattern_create(be, df, 3, 4, 8, NULL));
    ALL_REFUSE(elag_be_sparse_gather(be, NULL, df, df));
    ALL_REFUSE(elag_be_sparse_scatter(be, NULL, df, df));
    ALL_REFUSE(elag_be_sparse_values_set(be, NULL, df));
    ALL_REFUSE(elag_be_sparse_pattern_mm(be, NULL, 0, df, 1, df));
    ALL_REFUSE(elag_be_sddmm(be, NULL, df, df, 1, df));
    /* on a real pattern of each backend: bad n, bad trans, missing operands */
    float m[12] = {1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0};
    elag_backend *pair[2] = {T.ref, T.b};
    for (int k = 0; k < 2; k++) {
        elag_backend *real = pair[k], stub = blanked(real);
        elag_sparse_pattern *q = NULL;
        OKB(real, elag_be_sparse_pattern_create(real, fin(real, m, 12, "mask"), 3, 4, 8, &q));
        cr_expect_eq(elag_sparse_pattern_nnz(q), 6);
        float *d = fout(real, 64, "scratch");
        const elag_status st[] = {
            elag_be_sparse_pattern_mm(&stub, q, 0, d, 9, d),
            elag_be_sparse_pattern_mm(&stub, q, 0, d, -1, d),
            elag_be_sparse_pattern_mm(&stub, q, 2, d, 1, d),
            elag_be_sparse_pattern_mm(&stub, q, 1, NULL, 1, d),
            elag_be_sddmm(&stub, q, d, d, 9, d),
            elag_be_sddmm(&stub, q, d, NULL, 1, d),
            elag_be_sddmm(&stub, q, d, d, 1, NULL),
            elag_be_sparse_gather(&stub, q, NULL, d),
            elag_be_sparse_scatter(&stub, q, d, NULL),
            elag_be_sparse_values_set(&stub, q, NULL),
        };
        for (size_t i = 0; i < sizeof st / sizeof *st; i++)
            cr_expect_eq(st[i], ELAG_ERR_INTERNAL, "%s: misuse %zu gave %s", real->name, i,
                         elag_status_name(st[i]));
        /* n = 0 is a product of nothing: sddmm writes zeros */
        float *g = fio(real, hrnd(6, 1.0f, 2.0f, 1490), 6, "g"), got[6];
        OKB(real, elag_be_sddmm(real, q, d, d, 0, g));
        fget(got, g, 6);
        for (int i = 0; i < 6; i++) cr_expect_eq(got[i], 0.0f, "%s: sddmm n=0", real->name);
        elag_be_sparse_pattern_destroy(real, q);
    }
    elag_be_sparse_pattern_destroy(T.b, NULL);
}
