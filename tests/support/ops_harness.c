/*
 * Implementation of the op-test harness (tests/support/ops_harness.h): the backend pair of a
 * test, host buffers, device buffers with sentinel guards, comparisons, blanked backends.
 */
#include "support/ops_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GUARD_WORDS 64       /* sentinel words before and after every device buffer */
#define SENTINEL 0x7fa5a5a5u /* a signalling NaN no op computes */
#define GARBAGE 0x7fc0deadu  /* a quiet NaN: what outputs hold before the op writes them */

ops_state T;

void ops_teardown(void)
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

float *hbuf(size_t n) { return hkeep(calloc(n ? n : 1, sizeof(float))); }
int32_t *ibuf(size_t n) { return hkeep(calloc(n ? n : 1, sizeof(int32_t))); }
double *dbuf(size_t n) { return hkeep(calloc(n ? n : 1, sizeof(double))); }

float *hrnd(size_t n, float lo, float hi, uint64_t seed)
{
    float *x = hbuf(n);
    elag_test_fill_uniform(x, n, lo, hi, seed);
    return x;
}

float *hdup(const float *x, size_t n)
{
    float *y = hbuf(n);
    if (n) memcpy(y, x, n * sizeof *y);
    return y;
}

/* A 0/1 mask with about `zero_frac` zeros. */
float *hmask(size_t n, double zero_frac, uint64_t seed)
{
    float *m = hrnd(n, 0.0f, 1.0f, seed);
    for (size_t i = 0; i < n; i++) m[i] = m[i] < zero_frac ? 0.0f : 1.0f;
    return m;
}

size_t zeros(const float *x, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += x[i] == 0.0f;
    return z;
}

float *to_float(const double *x, size_t n)
{
    float *y = hbuf(n);
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i];
    return y;
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

float *fin(elag_backend *be, const float *h, size_t n, const char *label)
{
    return tnew(be, h, n * 4, TB_IN, label);
}
float *fio(elag_backend *be, const float *h, size_t n, const char *label)
{
    return tnew(be, h, n * 4, TB_IO, label);
}
float *fout(elag_backend *be, size_t n, const char *label)
{
    return tnew(be, NULL, n * 4, TB_OUT, label);
}
int32_t *iin(elag_backend *be, const int32_t *h, size_t n, const char *label)
{
    return tnew(be, h, n * 4, TB_IN, label);
}
int32_t *iout(elag_backend *be, size_t n, const char *label)
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

void fget(float *h, const float *d, size_t n) { tget(h, d, n * 4); }
void iget(int32_t *h, const int32_t *d, size_t n) { tget(h, d, n * 4); }

/* Every buffer of the test: guards intact, inputs unchanged. */
static void tcheck_all(void)
{
    for (int i = 0; i < T.nbuf; i++) free(tfetch(&T.buf[i]));
}

void ops_run_case(const char *device, void (*fn)(void))
{
    open_backends(device);
    fn();
    tcheck_all();
}

/* ---- comparisons ---- */

/* Bit for bit; elag_test_compare prints the first mismatches, else the first differing
 * bits (a zero's sign, a NaN's payload). */
int ops_identical(const char *what, const void *got, const void *want, size_t n)
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

size_t ops_i32_diffs(const char *what, const int32_t *got, const int32_t *want, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i] && bad++ < 5)
            fprintf(stderr, "%s: %s: mismatch at %zu: got %d, want %d\n", T.b->name, what, i,
                    (int)got[i], (int)want[i]);
    return bad;
}

/* Entries outside abs * scale + rel * |want|; elag_test_compare prints the first ones. */
size_t ops_outside(const char *what, const float *got, const float *want, size_t n, double abs,
                   double rel, double scale)
{
    char label[256];
    snprintf(label, sizeof label, "%s: %s", T.b->name, what);
    return elag_test_compare(label, got, want, n, abs * scale, rel);
}

/* ---- status checks ---- */

elag_backend blanked(const elag_backend *real)
{
    elag_backend b = *real;
    memset((char *)&b + OPS_FIRST, 0, sizeof b - OPS_FIRST);
    return b;
}
