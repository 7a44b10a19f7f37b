/*
 * Run-to-run determinism of the CUDA backend's reductions: the softmax cross-entropy's loss
 * and hit sums (kernels/xent.cu) once added per-block partials with float atomicAdd, whose
 * order, and so rounding, changed between runs. They are now a fixed-order two-pass
 * reduction; this runs xent several times on the same inputs, with enough rows for
 * thousands of blocks, and wants the same bits every time (and the reference's loss, so a
 * deterministic wrong answer cannot pass). Skips visibly without a CUDA device.
 */
#include "backend/backend.h"
#include "support/testutil.h"

#include <criterion/criterion.h>

#ifdef ELAG_HAVE_CUDA

#include "cuda/cuda_backend.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())
#define RUNS 5

/* One xent on the device from stats = {s0, 0}: stats and dlogits (rows, cols) to the host. */
static void xent_once(elag_backend *b, const float *x, const int32_t *lab, int rows, int cols,
                      float s0, float stats[2], float *grad)
{
    void *dx = NULL, *dl = NULL, *dg = NULL, *ds = NULL;
    size_t nx = (size_t)rows * cols;
    OK(b->alloc(b, nx * sizeof(float), &dx));
    OK(b->alloc(b, (size_t)rows * sizeof(int32_t), &dl));
    OK(b->alloc(b, nx * sizeof(float), &dg));
    OK(b->alloc(b, 2 * sizeof(float), &ds));
    OK(b->to_device(b, dx, x, nx * sizeof(float)));
    OK(b->to_device(b, dl, lab, (size_t)rows * sizeof(int32_t)));
    float init[2] = {s0, 0.0f};
    OK(b->to_device(b, ds, init, sizeof init));
    OK(elag_be_xent(b, dx, dl, rows, cols, dg, ds));
    OK(b->to_host(b, stats, ds, 2 * sizeof(float)));
    OK(b->to_host(b, grad, dg, nx * sizeof(float)));
    b->release(b, dx), b->release(b, dl), b->release(b, dg), b->release(b, ds);
}

Test(cuda_determinism, xent_loss_is_bitwise_identical_run_to_run)
{
    if (elag_cuda_count_devices() == 0) cr_skip_test("no CUDA device");
    elag_backend *cu = NULL, *ref = NULL;
    OK(elag_cuda_backend_init(0, &cu));
    OK(elag_cpu_ref_backend_init(&ref));
    /* 100003 rows: 12501 blocks of 8 rows, an odd tail; logits spread so row losses differ
     * in magnitude (their sum's rounding depends on the order) */
    const int rows = 100003, cols = 10;
    size_t nx = (size_t)rows * cols;
    float *x = malloc(nx * sizeof *x), *g0 = malloc(nx * sizeof *g0), *g = malloc(nx * sizeof *g);
    int32_t *lab = malloc((size_t)rows * sizeof *lab);
    cr_assert(x && g0 && g && lab);
    elag_test_fill_uniform(x, nx, -8.0f, 8.0f, 17);
    for (int r = 0; r < rows; r++) lab[r] = (int32_t)((r * 7 + 3) % cols);

    for (int start = 0; start < 2; start++) { /* stats starting at 0, and accumulating */
        float s0 = start ? 12345.678f : 0.0f, first[2], st[2];
        xent_once(cu, x, lab, rows, cols, s0, first, g0);
        for (int run = 1; run < RUNS; run++) {
            xent_once(cu, x, lab, rows, cols, s0, st, g);
            cr_expect(memcmp(st, first, sizeof st) == 0,
                      "run %d: loss %.9g hits %.9g, first run %.9g %.9g (stats from %g)", run,
                      st[0], st[1], first[0], first[1], s0);
            cr_expect(memcmp(g, g0, nx * sizeof *g) == 0, "run %d: gradient bits differ", run);
        }
        /* and right: the reference's sums in double, rounded once like the device's */
        float want[2];
        xent_once(ref, x, lab, rows, cols, s0, want, g);
        cr_expect(fabs((double)first[0] - want[0]) <= 1e-6 * fabs((double)want[0]),
                  "loss %.9g, reference %.9g", first[0], want[0]);
        cr_expect_eq(first[1], want[1], "hits %.9g, reference %.9g", first[1], want[1]);
    }
    free(x), free(g0), free(g), free(lab);
    elag_backend_free(cu);
    elag_backend_free(ref);
}

#else /* !ELAG_HAVE_CUDA */

Test(cuda_determinism, built_without_cuda) { cr_skip_test("built without CUDA"); }

#endif
