/*
 * The .npy reader and writer (host/io/npy.h): round trips through the writer, headers of
 * versions 1.0, 2.0 and 3.0 built by hand, dtype conversions, and every refusal of an
 * untrusted file: ELAG_ERR_INPUT with a message naming the file and what is wrong.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/npy.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static char *dir;
static char path[600];

static void setup(void)
{
    dir = elag_test_tmpdir("npy");
    cr_assert_not_null(dir);
    snprintf(path, sizeof path, "%s/a.npy", dir);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(npy, .init = setup, .fini = teardown);

/* Writes a .npy of `version` with header dict `dict` (padded as numpy pads) and `len`
 * data bytes to `path`. */
static void put_npy(int version, const char *dict, const void *data, size_t len)
{
    size_t prelude = version == 1 ? 10 : 12, n = strlen(dict);
    size_t pad = (64 - (prelude + n + 1) % 64) % 64, hlen = n + pad + 1;
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    unsigned char pre[12] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             (unsigned char)version,
                             0,
                             (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8 & 0xff),
                             (unsigned char)(hlen >> 16 & 0xff),
                             (unsigned char)(hlen >> 24)};
    fwrite(pre, 1, prelude, f);
    fputs(dict, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

static void put_bytes(const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

/* Reading `path` as `want` fails with ELAG_ERR_INPUT and a message naming the file and
 * containing `what`. */
static void refused(elag_npy_want want, const char *what)
{
    elag_npy_array a;
    elag_status st = elag_npy_read(path, want, &a);
    const char *msg = elag_last_error();
    cr_assert_eq(st, ELAG_ERR_INPUT, "read should fail (status %d, '%s')", st, msg);
    cr_assert(strstr(msg, path) != NULL, "message does not name the file: %s", msg);
    cr_assert(strstr(msg, what) != NULL, "message lacks '%s': %s", what, msg);
    cr_assert_null(a.f32);
    cr_assert_null(a.i64);
    elag_npy_free(&a);
}

Test(npy, round_trip_of_the_writer)
{
    int64_t shapes[3][4] = {{7, 0, 0, 0}, {5, 3, 0, 0}, {2, 3, 1, 4}};
    int ndims[3] = {1, 2, 4};
    for (int k = 0; k < 3; k++) {
        size_t count = 1;
        for (int i = 0; i < ndims[k]; i++) count *= (size_t)shapes[k][i];
        float *x = malloc(count * sizeof *x);
        elag_test_fill_uniform(x, count, -3, 3, 11 + (uint64_t)k);
        x[0] = -0.0f;
        OK(elag_npy_write_f32(path, x, ndims[k], shapes[k]));
        elag_npy_array a;
        OK(elag_npy_read(path, ELAG_NPY_AS_F32, &a));
        cr_assert_eq(a.ndim, ndims[k]);
        for (int i = 0; i < ndims[k]; i++) cr_assert_eq(a.shape[i], shapes[k][i]);
        cr_assert_eq(a.count, count);
        cr_assert_str_eq(a.descr, "<f4");
        cr_assert_eq(memcmp(a.f32, x, count * sizeof *x), 0, "data differs (ndim %d)", ndims[k]);
        elag_npy_free(&a);
        free(x);
        /* numpy's layout: the data starts on a 64-byte boundary after a '\n' */
        char *bytes = elag_test_slurp(path);
        size_t hlen = (unsigned char)bytes[8] | (size_t)(unsigned char)bytes[9] << 8;
        cr_assert_eq((10 + hlen) % 64, 0, "header of %zu bytes is not padded to 64", hlen);
        cr_assert_eq(bytes[10 + hlen - 1], '\n');
        free(bytes);
    }
}

Test(npy, empty_array_round_trips)
{
    int64_t shape[2] = {0, 5};
    OK(elag_npy_write_f32(path, NULL, 2, shape));
    elag_npy_array a;
    OK(elag_npy_read(path, ELAG_NPY_AS_F32, &a));
    cr_assert_eq(a.count, 0);
    cr_assert_eq(a.shape[1], 5);
    elag_npy_free(&a);
}

Test(npy, versions_2_and_3_and_python2_longs)
{
    float x[6] = {1, 2, 3, 4, 5, 6};
    const char *dicts[3] = {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                            "{\"descr\": \"<f4\", \"shape\": (2,3), \"fortran_order\": False}",
                            "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }"};
    int versions[3] = {2, 3, 1};
    for (int k = 0; k < 3; k++) {
        put_npy(versions[k], dicts[k], x, sizeof x);
        elag_npy_array a;
        OK(elag_npy_read(path, ELAG_NPY_AS_F32, &a));
        cr_assert_eq(a.ndim, 2);
        cr_assert_eq(a.shape[0], 2);
        cr_assert_eq(a.shape[1], 3);
        cr_assert_eq(memcmp(a.f32, x, sizeof x), 0);
        elag_npy_free(&a);
    }
}

Test(npy, float64_is_rounded_to_float32)
{
    double x[4] = {0.1, -1e30, 3.0, 1.0 / 3.0};
    put_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", x, sizeof x);
    elag_npy_array a;
    OK(elag_npy_read(path, ELAG_NPY_AS_F32, &a));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(a.f32[i], (float)x[i], "element %d: %g vs %g", i, a.f32[i], x[i]);
    elag_npy_free(&a);
    double big[2] = {1.0, 1e300};
    put_npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", big, sizeof big);
    refused(ELAG_NPY_AS_F32, "outside float32's range");
}

Test(npy, integer_labels_of_every_width)
{
    struct {
        const char *descr;
        unsigned char bytes[16];
        size_t size;
        int64_t want[2];
    } c[] = {
        {"|i1", {0xff, 0x07}, 1, {-1, 7}},
        {"|u1", {0xff, 0x07}, 1, {255, 7}},
        {"<i2", {0xfe, 0xff, 0x00, 0x01}, 2, {-2, 256}},
        {"<u2", {0xfe, 0xff, 0x00, 0x01}, 2, {65534, 256}},
        {"<i4", {0xff, 0xff, 0xff, 0xff, 9, 0, 0, 0}, 4, {-1, 9}},
        {"<u4", {0xff, 0xff, 0xff, 0xff, 9, 0, 0, 0}, 4, {4294967295LL, 9}},
        {"<i8",
         {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4, 0, 0, 0, 0, 0, 0, 1},
         8,
         {-3, (1LL << 56) + 4}},
        {"<u8", {5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f}, 8, {5, 0x7f00000000000000LL}},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        char dict[128];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }",
                 c[k].descr);
        put_npy(1, dict, c[k].bytes, 2 * c[k].size);
        elag_npy_array a;
        OK(elag_npy_read(path, ELAG_NPY_AS_I64, &a));
        for (int i = 0; i < 2; i++)
            cr_assert_eq(a.i64[i], c[k].want[i], "%s element %d: %lld, want %lld", c[k].descr, i,
                         (long long)a.i64[i], (long long)c[k].want[i]);
        elag_npy_free(&a);
        refused(ELAG_NPY_AS_F32, "is not float32");
    }
    unsigned char top[8] = {0, 0, 0, 0, 0, 0, 0, 0x80};
    put_npy(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", top, 8);
    refused(ELAG_NPY_AS_I64, "larger than 2^63 - 1");
    float f[1] = {1};
    put_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", f, 4);
    refused(ELAG_NPY_AS_I64, "not a little-endian integer");
}

Test(npy, refuses_bad_headers)
{
    float x[6] = {0};
    struct {
        int version;
        const char *dict, *what;
    } c[] = {
        {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", "Fortran order"},
        {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", "'>f4'"},
        {1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }", "'<f2'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "0-dimensional"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
         "more than 8 dimensions"},
        {1, "{'descr': '<f4', 'fortran_order': False, }", "lacks 'shape'"},
        {1, "{'descr': '<f4', 'shape': (2, 3), }", "lacks 'fortran_order'"},
        {1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}",
         "repeated key 'descr'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", "key 'x'"},
        {1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (6,)}", "not True or False"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", "'shape' entry"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", "not a tuple"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) }x", "after the dict"},
        {1, "['descr', '<f4']", "not a dict"},
        {1, "{'descr': '<f4' 'fortran_order': False, 'shape': (6,)}", "expected ',' or '}'"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
         "overflows"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
         "overflows"},
        {2, "{'descr': '<f4, 'fortran_order': False, 'shape': (6,)}", "expected ',' or '}'"},
        {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,", "bad 'shape'"},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        put_npy(c[k].version, c[k].dict, x, sizeof x);
        refused(ELAG_NPY_AS_F32, c[k].what);
    }
}

Test(npy, refuses_bad_files)
{
    float x[6] = {0};
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    put_npy(1, dict, x, sizeof x - 1);
    refused(ELAG_NPY_AS_F32, "truncated");
    put_npy(1, dict, x, sizeof x - 4); /* one whole element short */
    refused(ELAG_NPY_AS_F32, "need 24");
    float more[7] = {0};
    put_npy(1, dict, more, sizeof more);
    refused(ELAG_NPY_AS_F32, "trailing bytes");
    put_npy(1, dict, x, sizeof x);
    char *bytes = elag_test_slurp(path); /* a header cut short */
    put_bytes(bytes, 40);
    refused(ELAG_NPY_AS_F32, "truncated npy header");
    put_bytes(bytes, 8);
    refused(ELAG_NPY_AS_F32, "truncated npy file");
    bytes[6] = 4;
    put_bytes(bytes, 128);
    refused(ELAG_NPY_AS_F32, "version 4.0");
    bytes[6] = 1;
    bytes[7] = 1;
    put_bytes(bytes, 128);
    refused(ELAG_NPY_AS_F32, "version 1.1");
    bytes[7] = 0;
    bytes[0] = 'X';
    put_bytes(bytes, 128);
    refused(ELAG_NPY_AS_F32, "not a .npy file");
    put_bytes("hi", 2);
    refused(ELAG_NPY_AS_F32, "not a .npy file");
    put_bytes("", 0);
    refused(ELAG_NPY_AS_F32, "not a .npy file");
    /* a 1.0 header of 1 byte: shorter than the 12 bytes read first (fuzz_npy found the
     * copy of those 12 into an 11-byte buffer; ASan builds catch a regression) */
    unsigned char tiny[16] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 1, 0, '\n', 'x', 'y', 'z'};
    put_bytes(tiny, sizeof tiny);
    refused(ELAG_NPY_AS_F32, "not a dict");
    unsigned char huge[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0, 0, 0, 0, 0x40};
    put_bytes(huge, sizeof huge);
    refused(ELAG_NPY_AS_F32, "too large");
    free(bytes);
    /* a folder and a missing file */
    snprintf(path, sizeof path, "%s", dir);
    refused(ELAG_NPY_AS_F32, "not a regular file");
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    refused(ELAG_NPY_AS_F32, "cannot open");
}

Test(npy, python_reads_what_elag_writes_and_back)
{
    if (!elag_test_python_has("numpy"))
        cr_skip_test("no numpy for %s (install python3-numpy)", elag_test_python());
    float x[6] = {1.5f, -2, 3, 4, 5, 6e-8f};
    int64_t shape[2] = {2, 3};
    OK(elag_npy_write_f32(path, x, 2, shape));
    char cmd[2048], out[700], back[700];
    snprintf(out, sizeof out, "%s/py.out", dir);
    snprintf(back, sizeof back, "%s/b.npy", dir);
    snprintf(cmd, sizeof cmd,
             "%s -c \"import numpy as np; a = np.load('%s'); "
             "assert a.dtype == np.float32 and a.shape == (2, 3), (a.dtype, a.shape); "
             "assert (a.ravel() == np.array([1.5, -2, 3, 4, 5, 6e-8], np.float32)).all(), a; "
             "np.save('%s', (a * 2).astype(np.float64).reshape(2, 1, 3))\"",
             elag_test_python(), path, back);
    int rc = elag_test_run(cmd, out);
    char *text = elag_test_slurp(out);
    cr_assert_eq(rc, 0, "python: %s", text);
    free(text);
    elag_npy_array a;
    OK(elag_npy_read(back, ELAG_NPY_AS_F32, &a));
    cr_assert_eq(a.ndim, 3);
    cr_assert_eq(a.shape[1], 1);
    for (int i = 0; i < 6; i++) cr_assert_eq(a.f32[i], 2 * x[i]);
    elag_npy_free(&a);
}
