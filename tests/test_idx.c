/*
 * Datasets: the IDX reader on small gzip'd and plain fixtures written here with
 * zlib (good files, truncation, bad magic, count mismatch, bad labels, limit), the
 * Fashion-MNIST folder lookup, the synthetic set's determinism, normalisation and
 * the validation split. The real t10k set is checked when Debian's package is there.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include "data/dataset.h"
#include "support/testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define FIX_N 5
#define FIX_ROWS 3
#define FIX_COLS 4
#define FIX_PIX (FIX_N * FIX_ROWS * FIX_COLS)

static char *join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

static void put_be32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

/* Writes bytes to `path`, gzip'd or plain. */
static void write_bytes(const char *path, int gz, const unsigned char *b, size_t len)
{
    if (gz) {
        gzFile g = gzopen(path, "wb");
        cr_assert_not_null(g);
        cr_assert_eq(gzwrite(g, b, (unsigned)len), (int)len);
        cr_assert_eq(gzclose(g), Z_OK);
    } else {
        FILE *fp = fopen(path, "wb");
        cr_assert_not_null(fp);
        cr_assert_eq(fwrite(b, 1, len, fp), len);
        fclose(fp);
    }
}

static unsigned char fixture_pixel(size_t i) { return (unsigned char)((i * 37 + 11) % 256); }

/* An image file of n images, rows x cols, magic `magic`, cut after `keep` pixel bytes
 * (keep < 0: all of them). */
static void write_images(const char *path, int gz, uint32_t magic, uint32_t n, uint32_t rows,
                         uint32_t cols, long keep)
{
    size_t pix = (size_t)n * rows * cols;
    if (keep >= 0 && (size_t)keep < pix) pix = (size_t)keep;
    unsigned char *b = malloc(16 + pix);
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t i = 0; i < pix; i++) b[16 + i] = fixture_pixel(i);
    write_bytes(path, gz, b, 16 + pix);
    free(b);
}

/* A label file of n labels i % 10, with label `bad_at` set to 10 when >= 0. */
static void write_labels(const char *path, int gz, uint32_t n, long bad_at)
{
    unsigned char *b = malloc(8 + n);
    put_be32(b, 0x00000801u);
    put_be32(b + 4, n);
    for (uint32_t i = 0; i < n; i++) b[8 + i] = (unsigned char)((i * 3) % 10);
    if (bad_at >= 0) b[8 + bad_at] = 10;
    write_bytes(path, gz, b, 8 + n);
    free(b);
}

static void check_fixture(const elag_dataset *d, long n)
{
    cr_assert_eq(d->n, n);
    cr_assert_eq(d->features, FIX_ROWS * FIX_COLS);
    cr_assert_eq(d->channels, 1);
    cr_assert_eq(d->height, FIX_ROWS);
    cr_assert_eq(d->width, FIX_COLS);
    cr_assert_eq(d->classes, 10);
    for (long i = 0; i < n * FIX_ROWS * FIX_COLS; i++)
        cr_assert_eq(d->x[i], (float)fixture_pixel((size_t)i) / 255.f, "pixel %ld", i);
    for (long i = 0; i < n; i++) cr_assert_eq(d->y[i], (i * 3) % 10, "label %ld", i);
}

/* Loads and expects ELAG_ERR_INPUT with `want` in the message. */
static void expect_refused(const char *images, const char *labels, const char *want)
{
    elag_dataset d;
    elag_status st = elag_idx_load(images, labels, 0, &d);
    cr_assert_eq(st, ELAG_ERR_INPUT, "status %d: %s", st, elag_last_error());
    cr_assert(strstr(elag_last_error(), want), "message '%s' lacks '%s'", elag_last_error(),
              want);
    cr_assert_null(d.x);
    cr_assert_eq(d.n, 0);
}

Test(idx, reads_gzipped_files)
{
    char *dir = elag_test_tmpdir("idx");
    char *im = join(dir, "im.gz"), *lb = join(dir, "lb.gz");
    write_images(im, 1, 0x00000803u, FIX_N, FIX_ROWS, FIX_COLS, -1);
    write_labels(lb, 1, FIX_N, -1);
    elag_dataset d;
    cr_assert_eq(elag_idx_load(im, lb, 0, &d), ELAG_OK, "%s", elag_last_error());
    check_fixture(&d, FIX_N);
    elag_dataset_free(&d);
    free(im);
    free(lb);
    free(dir);
}

Test(idx, reads_plain_files)
{
    char *dir = elag_test_tmpdir("idx");
    char *im = join(dir, "im"), *lb = join(dir, "lb");
    write_images(im, 0, 0x00000803u, FIX_N, FIX_ROWS, FIX_COLS, -1);
    write_labels(lb, 0, FIX_N, -1);
    elag_dataset d;
    cr_assert_eq(elag_idx_load(im, lb, 0, &d), ELAG_OK, "%s", elag_last_error());
    check_fixture(&d, FIX_N);
    elag_dataset_free(&d);
    free(im);
    free(lb);
    free(dir);
}

Test(idx, limit_keeps_first_examples)
{
    char *dir = elag_test_tmpdir("idx");
    char *im = join(dir, "im.gz"), *lb = join(dir, "lb");
    write_images(im, 1, 0x00000803u, FIX_N, FIX_ROWS, FIX_COLS, -1);
    write_labels(lb, 0, FIX_N, -1);
    elag_dataset d;
    cr_assert_eq(elag_idx_load(im, lb, 2, &d), ELAG_OK, "%s", elag_last_error());
    check_fixture(&d, 2);
    elag_dataset_free(&d);
    cr_assert_eq(elag_idx_load(im, lb, 1000, &d), ELAG_OK);
    check_fixture(&d, FIX_N);
    elag_dataset_free(&d);
    free(im);
    free(lb);
    free(dir);
}

Test(idx, refuses_truncated_pixels)
{
    char *dir = elag_test_tmpdir("idx");
    char *im = join(dir, "im.gz"), *lb = join(dir, "lb.gz");
    write_images(im, 1, 0x00000803u, FIX_N, FIX_ROWS, FIX_COLS, FIX_PIX - 10);
    write_labels(lb, 1, FIX_N, -1);
    char want[512];
    snprintf(want, sizeof want, "%s: truncated: expected %d bytes of pixels, got %d", im,
             FIX_PIX, FIX_PIX - 10);
    expect_refused(im, lb, want);
    cr_assert_str_eq(elag_last_error(), want);

    /* a gzip stream cut in the middle */
    char *cut = join(dir, "cut.gz");
    write_images(im, 1, 0x00000803u, 200, 28, 28, -1);
    FILE *fp = fopen(im, "rb");
    unsigned char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    write_bytes(cut, 0, buf, len / 2);
    write_labels(lb, 1, 200, -1);
    expect_refused(cut, lb, "truncated");
    free(cut);
    free(im);
    free(lb);
    free(dir);
}

/* Headers that claim far more data than the file holds (up to 2^32 images of 4096 x 4096
 * pixels: 2^58 bytes as floats) are truncated files, bad input, not "out of memory", for a
 * plain file (its size is known up front) and a gzip'd one (read until it runs out). */
Test(idx, refuses_header_claiming_more_than_the_file)
{
    char *dir = elag_test_tmpdir("idx");
    static const struct {
        const char *name;
        int gz;
        uint32_t n, rows, cols;
    } cases[] = {
        {"plain-huge", 0, 0xffffffffu, 4096, 4096},
        {"gz-huge.gz", 1, 0xffffffffu, 4096, 4096},
        {"plain-one-more", 0, FIX_N + 1, FIX_ROWS, FIX_COLS},
        {"gz-one-more.gz", 1, FIX_N + 1, FIX_ROWS, FIX_COLS},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char *im = join(dir, cases[c].name), *lb = join(dir, "lb");
        unsigned char h[16 + FIX_PIX], l[8 + FIX_N + 1];
        put_be32(h, 0x00000803u);
        put_be32(h + 4, cases[c].n);
        put_be32(h + 8, cases[c].rows);
        put_be32(h + 12, cases[c].cols);
        for (size_t i = 0; i < FIX_PIX; i++) h[16 + i] = fixture_pixel(i);
        write_bytes(im, cases[c].gz, h, sizeof h);
        put_be32(l, 0x00000801u); /* a label file claiming as many, holding FIX_N + 1 */
        put_be32(l + 4, cases[c].n);
        memset(l + 8, 1, FIX_N + 1);
        write_bytes(lb, cases[c].gz, l, cases[c].n == FIX_N + 1 ? sizeof l : sizeof l - 1);
        char want[512];
        snprintf(want, sizeof want, "%s: truncated", im);
        expect_refused(im, lb, want);
        free(im);
        free(lb);
    }
    /* the label file alone short (images complete) */
    char *im = join(dir, "im"), *lb = join(dir, "lb");
    write_images(im, 0, 0x00000803u, FIX_N, FIX_ROWS, FIX_COLS, -1);
    unsigned char l[8 + FIX_N];
    put_be32(l, 0x00000801u);
    put_be32(l + 4, FIX_N);
    memset(l + 8, 2, FIX_N);
    write_bytes(lb, 0, l, sizeof l - 1);
    char want[512];
    snprintf(want, sizeof want, "%s: truncated: the header claims %d bytes of data, the file "
             "holds %d", lb, FIX_N, FIX_N - 1);
    expect_refused(im, lb, want);
    cr_assert_str_eq(elag_last_error(), want);
    free(im);
    free(lb);
    elag_test_rmtree(dir);
    free(dir);
}

Test(idx, refuses_wrong_magic)
{
    char *dir = elag_test_tmpdir("idx");
    char *im = join(dir, "im"), *lb = join(dir, "lb");
    write_images(im, 0, 0x00000803u, FIX_N, FIX_ROWS, FIX_COLS, -1);
    write_labels(lb, 0, FIX_N, -1);
    char want[512];
    snprintf(want, sizeof want, "%s: not an IDX image file (magic 0x00000801)", lb);
    expect_refused(lb, lb, want); /* labels passed as images */
    cr_assert_str_eq(elag_last_error(), want);
    snprintf(want, sizeof want, "%s: not an IDX label file (magic 0x00000803)", im);
    expect_refused(im, im, want);
    static const char zip[] = "PK\003\004 not idx at all";
    write_bytes(im, 0, (const unsigned char *)zip, sizeof zip - 1);
    expect_refused(im, lb, "not an IDX image file (magic 0x504b0304)");
    write_bytes(im, 0, (const unsigned char *)"\0\0\010\003\0\0", 6);
    expect_refused(im, lb, "truncated: expected 16 bytes of header, got 6");
    free(im);
    free(lb);
    free(dir);
}

Test(idx, refuses_count_mismatch_and_bad_labels)
{
    char *dir = elag_test_tmpdir("idx");
    char *im = join(dir, "im.gz"), *lb = join(dir, "lb.gz");
    write_images(im, 1, 0x00000803u, FIX_N, FIX_ROWS, FIX_COLS, -1);
    write_labels(lb, 1, FIX_N + 1, -1);
    char want[512];
    snprintf(want, sizeof want, "%s: 5 images, but %s has 6 labels", im, lb);
    expect_refused(im, lb, want);
    write_labels(lb, 1, FIX_N, 3);
    snprintf(want, sizeof want, "%s: label 10 of example 3 is out of range [0, 10)", lb);
    expect_refused(im, lb, want);
    free(im);
    free(lb);
    free(dir);
}

Test(idx, missing_file_is_input_error)
{
    elag_dataset d;
    cr_assert_eq(elag_idx_load("/nonexistent-elag/im.gz", "/nonexistent-elag/lb.gz", 0, &d),
                 ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "/nonexistent-elag/im.gz"), "%s", elag_last_error());
}

Test(fashion_mnist, missing_folder_says_how_to_fix)
{
    elag_dataset d;
    cr_assert_eq(elag_fashion_mnist_load("/nonexistent-elag/fm", 1, 0, &d), ELAG_ERR_INPUT);
    cr_assert_str_eq(elag_last_error(),
                     "fashion-mnist: /nonexistent-elag/fm/train-images-idx3-ubyte.gz not found "
                     "(install Debian's dataset-fashion-mnist, or set data.path)");
    cr_assert_eq(elag_fashion_mnist_load("/nonexistent-elag/fm", 0, 0, &d), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "t10k-images-idx3-ubyte.gz not found"));
}

Test(fashion_mnist, finds_unpacked_files)
{
    char *dir = elag_test_tmpdir("fm");
    char *im = join(dir, "t10k-images-idx3-ubyte"), *lb = join(dir, "t10k-labels-idx1-ubyte.gz");
    write_images(im, 0, 0x00000803u, FIX_N, FIX_ROWS, FIX_COLS, -1);
    elag_dataset d;
    cr_assert_eq(elag_fashion_mnist_load(dir, 0, 0, &d), ELAG_ERR_INPUT, "labels are missing");
    cr_assert(strstr(elag_last_error(), "t10k-labels-idx1-ubyte.gz not found"), "%s",
              elag_last_error());
    write_labels(lb, 1, FIX_N, -1);
    cr_assert_eq(elag_fashion_mnist_load(dir, 0, 0, &d), ELAG_OK, "%s", elag_last_error());
    check_fixture(&d, FIX_N);
    elag_dataset_free(&d);
    free(im);
    free(lb);
    free(dir);
}

Test(fashion_mnist, loads_debian_t10k_set)
{
    struct stat sb;
    if (stat(ELAG_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz", &sb) != 0)
        cr_skip_test("Fashion-MNIST not installed (" ELAG_FASHION_MNIST_DIR
                     "); install dataset-fashion-mnist");
    elag_dataset d;
    cr_assert_eq(elag_fashion_mnist_load(NULL, 0, 0, &d), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(d.n, 10000);
    cr_assert_eq(d.height, 28);
    cr_assert_eq(d.width, 28);
    cr_assert_eq(d.features, 784);
    cr_assert_eq(d.classes, 10);
    long counts[10] = {0};
    for (long i = 0; i < d.n; i++) {
        cr_assert(d.y[i] >= 0 && d.y[i] < 10);
        counts[d.y[i]]++;
    }
    for (int c = 0; c < 10; c++) cr_assert_eq(counts[c], 1000, "class %d", c);
    double sum = 0;
    float lo = 1, hi = 0;
    for (long i = 0; i < d.n * d.features; i++) {
        sum += d.x[i];
        lo = fminf(lo, d.x[i]);
        hi = fmaxf(hi, d.x[i]);
    }
    cr_assert_eq(lo, 0.0f);
    cr_assert_eq(hi, 1.0f);
    double mean = sum / (double)(d.n * d.features);
    cr_assert(mean > 0.2 && mean < 0.4, "mean pixel %g (Fashion-MNIST is about 0.286)", mean);
    elag_dataset_free(&d);
}

Test(synthetic, deterministic_and_offset_shifts_examples)
{
    elag_dataset a, b, c, e;
    cr_assert_eq(elag_synthetic_make(40, 7, 3, 0.5, 42, 0, &a), ELAG_OK);
    cr_assert_eq(elag_synthetic_make(40, 7, 3, 0.5, 42, 0, &b), ELAG_OK);
    cr_assert_arr_eq(a.x, b.x, 40 * 7 * sizeof(float));
    cr_assert_arr_eq(a.y, b.y, 40 * sizeof(int32_t));
    cr_assert_eq(a.features, 7);
    cr_assert_eq(a.width, 7);
    cr_assert_eq(a.height, 1);
    cr_assert_eq(a.classes, 3);

    /* offset 10: different examples, and example i equals example i + 10 of the first */
    cr_assert_eq(elag_synthetic_make(30, 7, 3, 0.5, 42, 10, &c), ELAG_OK);
    cr_assert_arr_neq(a.x, c.x, 30 * 7 * sizeof(float));
    cr_assert_arr_eq(c.x, a.x + 10 * 7, 30 * 7 * sizeof(float));
    for (long i = 0; i < 30; i++) cr_assert_eq(c.y[i], (10 + i) % 3);

    cr_assert_eq(elag_synthetic_make(40, 7, 3, 0.5, 43, 0, &e), ELAG_OK);
    cr_assert_arr_neq(a.x, e.x, 40 * 7 * sizeof(float));
    elag_dataset_free(&a);
    elag_dataset_free(&b);
    elag_dataset_free(&c);
    elag_dataset_free(&e);
}

Test(synthetic, classes_sit_around_centres)
{
    /* noise 0: every example is its class centre, in [-1, 1) */
    elag_dataset d;
    cr_assert_eq(elag_synthetic_make(9, 5, 3, 0.0, 7, 0, &d), ELAG_OK);
    for (long i = 0; i < 9; i++) {
        cr_assert_eq(d.y[i], i % 3);
        cr_assert_arr_eq(d.x + i * 5, d.x + (i % 3) * 5, 5 * sizeof(float));
    }
    for (int k = 0; k < 45; k++) cr_assert(d.x[k] >= -1.0f && d.x[k] < 1.0f);
    cr_assert_arr_neq(d.x, d.x + 5, 5 * sizeof(float), "classes have different centres");
    elag_dataset_free(&d);

    /* noise 1: the residuals from the centres are roughly standard normal */
    elag_dataset z, n;
    cr_assert_eq(elag_synthetic_make(3000, 4, 2, 0.0, 9, 0, &z), ELAG_OK);
    cr_assert_eq(elag_synthetic_make(3000, 4, 2, 1.0, 9, 0, &n), ELAG_OK);
    double s = 0, s2 = 0;
    for (long i = 0; i < 3000 * 4; i++) {
        double r = (double)n.x[i] - (double)z.x[i];
        s += r;
        s2 += r * r;
    }
    double mean = s / 12000, var = s2 / 12000 - mean * mean;
    cr_assert(fabs(mean) < 0.05, "noise mean %g", mean);
    cr_assert(fabs(var - 1.0) < 0.06, "noise variance %g", var);
    elag_dataset_free(&z);
    elag_dataset_free(&n);

    cr_assert_eq(elag_synthetic_make(10, 0, 3, 0.1, 1, 0, &d), ELAG_ERR_INPUT);
    cr_assert_eq(elag_synthetic_make(10, 4, 3, -0.1, 1, 0, &d), ELAG_ERR_INPUT);
}

Test(dataset, normalize_in_place)
{
    elag_dataset d;
    cr_assert_eq(elag_synthetic_make(6, 3, 2, 0.3, 5, 0, &d), ELAG_OK);
    float before[18];
    memcpy(before, d.x, sizeof before);
    elag_dataset_normalize(&d, 0.25f, 0.5f);
    float want[18];
    for (int i = 0; i < 18; i++) want[i] = (before[i] - 0.25f) / 0.5f;
    cr_assert_eq(elag_test_compare("normalize", d.x, want, 18, 0.0, 1e-7), 0);
    elag_dataset_free(&d);
}

Test(dataset, split_tail_moves_last_examples)
{
    elag_dataset d, v;
    cr_assert_eq(elag_synthetic_make(10, 3, 4, 0.3, 5, 0, &d), ELAG_OK);
    float x[30];
    int32_t y[10];
    memcpy(x, d.x, sizeof x);
    memcpy(y, d.y, sizeof y);
    cr_assert_eq(elag_dataset_split_tail(&d, 3, &v), ELAG_OK);
    cr_assert_eq(d.n, 7);
    cr_assert_eq(v.n, 3);
    cr_assert_eq(v.features, 3);
    cr_assert_eq(v.classes, 4);
    cr_assert_arr_eq(d.x, x, 21 * sizeof(float));
    cr_assert_arr_eq(d.y, y, 7 * sizeof(int32_t));
    cr_assert_arr_eq(v.x, x + 21, 9 * sizeof(float));
    cr_assert_arr_eq(v.y, y + 7, 3 * sizeof(int32_t));
    elag_dataset_free(&v);

    elag_dataset w;
    cr_assert_eq(elag_dataset_split_tail(&d, 8, &w), ELAG_ERR_INPUT);
    cr_assert_eq(d.n, 7, "a refused split leaves the set alone");
    cr_assert_eq(elag_dataset_split_tail(&d, 0, &w), ELAG_OK);
    cr_assert_eq(w.n, 0);
    cr_assert_eq(d.n, 7);
    elag_dataset_free(&w);
    elag_dataset_free(&d);
    cr_assert_null(d.x);
    cr_assert_eq(d.n, 0);
    elag_dataset_free(NULL);
}
