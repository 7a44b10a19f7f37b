/*
 * `elag bench layer` and the layer step it times (host/sparse/bench_layer.h): the sparse
 * step gives the dense masked step's weights within the fast-vs-reference reassociation
 * tolerance, pruned weights stay exactly zero on both paths, the rows of
 * elag_bench_layer_run are consistent, and the CLI writes the documented JSON keys and
 * refuses bad arguments.
 */
#include "api/api.h"
#include "elag/bench.h"
#include "sparse/bench_layer.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;
static void setup(void)
{
    dir = elag_test_tmpdir("bench_layer");
}
static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}
TestSuite(bench_layer, .init = setup, .fini = teardown);

#define STEPS    3
#define LR       0.01f
#define MOMENTUM 0.9f

/* Host copy of a device array of n floats. */
static float *host_of(elag_backend *be, const float *d, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    cr_assert_not_null(h);
    cr_assert_eq(elag_be_to_host(be, h, d, n * sizeof *h), ELAG_OK);
    return h;
}

/* STEPS dense steps against STEPS sparse steps from the same start, on one backend.
 * Tolerance: the gradients differ only by the order of their sums (GEMM blocks against one
 * dot product per kept entry): each of n = 19 terms of |dy x| <= 1 gives at worst
 * n * n * 2^-24 = 2.2e-5 per gradient entry; momentum 0.9 over 3 steps moves a weight by
 * lr * (1 + 1.9 + 2.71) = 0.056 gradients, so weights differ by at most 1.2e-6: inside
 * ELAG_TOL_FAST_ABS (1e-5), the fast-vs-reference reassociation bound. A wrong gradient or
 * a lost momentum moves weights by about lr = 1e-2. */
static void same_step(const char *device, int out, int in, int n, double sparsity)
{
    elag_backend *be = NULL;
    cr_assert_eq(elag_backend_open(device, 2, &be, NULL, 0), ELAG_OK, "%s", elag_last_error());
    elag_layer_step a, b;
    cr_assert_eq(elag_layer_step_init(&a, be, out, in, n, sparsity, 7), ELAG_OK);
    cr_assert_eq(elag_layer_step_init(&b, be, out, in, n, sparsity, 7), ELAG_OK);
    cr_assert_eq(elag_layer_step_sparse_begin(&b), ELAG_OK, "%s", elag_last_error());
    for (int s = 0; s < STEPS; s++) {
        cr_assert_eq(elag_layer_step_dense(&a, LR, MOMENTUM, NULL), ELAG_OK);
        cr_assert_eq(elag_layer_step_sparse(&b, LR, MOMENTUM, NULL), ELAG_OK, "%s",
                     elag_last_error());
    }
    const size_t oi = (size_t)out * in;
    /* the last step's products ran on the same weights */
    float *ya = host_of(be, a.y, (size_t)out * n), *yb = host_of(be, b.y, (size_t)out * n);
    float *xa = host_of(be, a.dx, (size_t)in * n), *xb = host_of(be, b.dx, (size_t)in * n);
    cr_expect_eq(
        elag_test_compare("y", yb, ya, (size_t)out * n, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL), 0,
        "%s: y", device);
    cr_expect_eq(
        elag_test_compare("dx", xb, xa, (size_t)in * n, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL), 0,
        "%s: dx", device);
    cr_assert_eq(elag_layer_step_sparse_end(&b), ELAG_OK);
    float *wa = host_of(be, a.w, oi), *wb = host_of(be, b.w, oi), *m = host_of(be, a.mask, oi);
    float *va = host_of(be, a.v, oi), *vb = host_of(be, b.v, oi), *w0 = NULL;
    cr_expect_eq(elag_test_compare("w", wb, wa, oi, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL), 0,
                 "%s: %dx%d n=%d sparsity %.2f: weights", device, out, in, n, sparsity);
    cr_expect_eq(elag_test_compare("momentum", vb, va, oi, ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL), 0,
                 "%s: momentum", device);
    size_t pruned = 0, moved = 0, bad = 0;
    elag_layer_step c; /* the start, to see that training moved the kept weights */
    cr_assert_eq(elag_layer_step_init(&c, be, out, in, n, sparsity, 7), ELAG_OK);
    w0 = host_of(be, c.w, oi);
    for (size_t i = 0; i < oi; i++) {
        if (m[i] == 0.0f) {
            pruned++;
            if (wa[i] != 0.0f || wb[i] != 0.0f || va[i] != 0.0f || vb[i] != 0.0f) bad++;
        } else if (wb[i] != w0[i]) {
            moved++;
        }
    }
    cr_expect_eq(bad, 0, "%s: %zu of %zu pruned weights are not exactly 0", device, bad, pruned);
    cr_expect_eq(moved, oi - pruned, "%s: %zu of %zu kept weights moved", device, moved,
                 oi - pruned);
    free(ya), free(yb), free(xa), free(xb), free(wa), free(wb), free(m), free(va), free(vb);
    free(w0);
    elag_layer_step_free(&a);
    elag_layer_step_free(&b);
    elag_layer_step_free(&c);
    elag_backend_free(be);
}

Test(bench_layer, sparse_step_equals_dense_step)
{
    same_step("cpu", 37, 45, 19, 0.7);
    same_step("cpu", 130, 70, 150, 0.95); /* a packed tile of the fast kernels and a rest */
    same_step("cpu-ref", 37, 45, 19, 0.7);
    same_step("cpu", 16, 9, 4, 0.0);
    same_step("cpu", 16, 9, 4, 1.0);
}

typedef struct rows_seen {
    elag_bench_layer_row r[8];
    char path[8][8];
    int n;
} rows_seen;

static int keep(const elag_bench_layer_row *r, void *user)
{
    rows_seen *s = user;
    cr_assert_lt(s->n, 8);
    s->r[s->n] = *r;
    snprintf(s->path[s->n], sizeof s->path[0], "%s", r->path);
    s->n++;
    return 0;
}

Test(bench_layer, rows)
{
    elag_device_t *dev = NULL;
    elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
    d.device = "cpu";
    d.threads = 2;
    cr_assert_eq(elag_device_open(&dev, &d), ELAG_OK);
    const double sp[] = {0.5, 1.0};
    rows_seen seen = {.n = 0};
    elag_bench_layer_options o = ELAG_BENCH_LAYER_OPTIONS_INIT;
    o.out = 64, o.in = 48, o.batch = 16, o.sparsities = sp, o.n_sparsities = 2;
    o.repeat = 3, o.warmup = 1, o.emit = keep, o.user = &seen;
    cr_assert_eq(elag_bench_layer_run(dev, &o), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(seen.n, 4);
    for (int i = 0; i < 4; i++) {
        const elag_bench_layer_row *r = &seen.r[i];
        cr_expect_str_eq(seen.path[i], i % 2 ? "sparse" : "dense");
        cr_expect_eq(r->out, 64);
        cr_expect_eq(r->in, 48);
        cr_expect_eq(r->batch, 16);
        cr_expect_float_eq(r->sparsity, sp[i / 2], 1e-12);
        cr_expect(r->p10_ms <= r->median_ms && r->median_ms <= r->p90_ms);
        cr_expect_geq(r->median_ms, 0.0);
        cr_expect_eq(r->repeat, 3);
        if (i % 2)
            cr_expect_float_eq(r->speedup_vs_dense,
                               r->median_ms > 0 ? seen.r[i - 1].median_ms / r->median_ms : 0.0,
                               1e-9);
    }
    cr_expect_eq(seen.r[2].nnz, 0, "sparsity 1: nothing kept");
    cr_expect(seen.r[1].nnz > 64 * 48 / 4 && seen.r[1].nnz < 3 * 64 * 48 / 4);
    /* bad options */
    o.batch = 0;
    cr_expect_eq(elag_bench_layer_run(dev, &o), ELAG_ERR_USAGE);
    o.batch = 16;
    const double bad[] = {1.5};
    o.sparsities = bad, o.n_sparsities = 1;
    cr_expect_eq(elag_bench_layer_run(dev, &o), ELAG_ERR_USAGE);
    elag_device_free(dev);
}

static int cli(const char *args, const char *out)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    return elag_test_run(cmd, out);
}

Test(bench_layer, cli_json_rows_and_bad_arguments)
{
    char out[600];
    snprintf(out, sizeof out, "%s/out.jsonl", dir);
    cr_assert_eq(cli("bench layer --shape 33x17 --batch 5 --sparsity 0.5,0.95 --threads 1 "
                     "--repeats 2 --warmup 0 --json",
                     out),
                 0);
    FILE *f = fopen(out, "r");
    cr_assert_not_null(f);
    char line[4096];
    int rows = 0;
    const char *keys[] = {"shape",        "batch",         "sparsity",
                          "path",         "median_ms",     "speedup_vs_dense",
                          "forward_ms",   "input_grad_ms", "weight_grad_ms",
                          "optimizer_ms", "nnz",           "threads",
                          "repeat"};
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o, "not JSON: %s", line);
        for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
            cr_expect_not_null(cJSON_GetObjectItem(o, keys[i]), "no %s in %s", keys[i], line);
        cr_expect_str_eq(cJSON_GetObjectItem(o, "shape")->valuestring, "33x17");
        cr_expect_str_eq(cJSON_GetObjectItem(o, "path")->valuestring,
                         rows % 2 ? "sparse" : "dense");
        cJSON_Delete(o);
        rows++;
    }
    fclose(f);
    cr_expect_eq(rows, 4);
    cr_expect_eq(cli("bench layer --shape 16x16 --batch 4 --sparsity 0.9 --repeats 1", out), 0);
    cr_expect_eq(cli("bench layer --shape 12", NULL), 2);
    cr_expect_eq(cli("bench layer --shape 12x0", NULL), 2);
    cr_expect_eq(cli("bench layer --batch 0", NULL), 2);
    cr_expect_eq(cli("bench layer --sparsity 0.9,1.5", NULL), 2);
    cr_expect_eq(cli("bench layer --repeats 0", NULL), 2);
    cr_expect_eq(cli("bench layer --frobnicate", NULL), 2);
    cr_expect_eq(cli("bench layer --help", out), 0);
}
