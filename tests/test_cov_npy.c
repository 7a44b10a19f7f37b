/*
 * Bad .npy files, through elag_array_load (what `elag infer --inputs` reads) and the npy
 * dataset (data.dataset: npy): each is ELAG_ERR_INPUT with one line naming the file and
 * what is wrong: the magic, the version, a header that is truncated, too large, not a
 * dict, with a key missing, repeated, unknown or badly quoted, a shape that is not a
 * tuple of sizes, too many dimensions or an overflowing count, Fortran order, a dtype
 * other than float32/float64, float64 values beyond float32, and data shorter than the
 * shape. The spellings numpy writes (versions 1.0 to 3.0, double quotes, Python 2 longs)
 * are read.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/array.h"
#include "elag/elag.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("cov-npy");
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_npy, .init = setup, .fini = teardown);

#define OK_DICT "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"

typedef struct npy_case {
    const char *what;
    int major, minor, bad_magic;
    const char *dict;
    long hlen;        /* the header length the prelude claims; 0: the real one */
    int f8, count;    /* data: count values, float64 when f8 (else float32) */
    double special;   /* value 3 of the data, when not 0 */
    const char *want; /* after "<path>: "; NULL: the file is read */
} npy_case;

static const npy_case cases[] = {
    {"magic", 1, 0, 1, OK_DICT, 0, 0, 6, 0, "not a .npy file (no \\x93NUMPY magic)"},
    {"version 4.0", 4, 0, 0, OK_DICT, 0, 0, 6, 0,
     "npy format version 4.0 is not supported (1.0, 2.0, 3.0 are)"},
    {"version 1.1", 1, 1, 0, OK_DICT, 0, 0, 6, 0, "npy format version 1.1 is not supported"},
    {"header past the end", 1, 0, 0, OK_DICT, 4000, 0, 0, 0, "truncated npy header"},
    {"header of 2 GB", 2, 0, 0, OK_DICT, 0x7fffffff, 0, 0, 0,
     "npy header of 2147483647 bytes is too large"},
    {"no descr", 1, 0, 0, "{'fortran_order': False, 'shape': (2, 3), }", 0, 0, 6, 0,
     "npy header lacks 'descr'"},
    {"no shape", 1, 0, 0, "{'descr': '<f4', 'fortran_order': False, }", 0, 0, 6, 0,
     "npy header lacks 'shape'"},
    {"no order", 1, 0, 0, "{'descr': '<f4', 'shape': (2, 3), }", 0, 0, 6, 0,
     "npy header lacks 'fortran_order'"},
    {"Fortran order", 1, 0, 0, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 0, 0,
     6, 0, "npy array is in Fortran order; save numpy.ascontiguousarray(x) instead"},
    {"order maybe", 1, 0, 0, "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2, 3), }", 0, 0, 6,
     0, "npy header: 'fortran_order' is not True or False"},
    {"unterminated key", 1, 0, 0, "{'descr", 0, 0, 0, 0, "npy header: unsupported key"},
    {"a backslash in a key", 1, 0, 0,
     "{'de\\scr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 0, 6, 0,
     "npy header: unsupported key"},
    {"a key of 200 letters", 1, 0, 0,
     "{'ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
     "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd': "
     "'<f4', 'fortran_order': False, 'shape': (2, 3), }",
     0, 0, 6, 0, "npy header: unsupported key"},
    {"an unquoted key", 1, 0, 0, "{descr: '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 0,
     6, 0, "npy header: expected a quoted key"},
    {"no colon", 1, 0, 0, "{'descr' '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 0, 6, 0,
     "npy header: no ':' after 'descr'"},
    {"a letter in the shape", 1, 0, 0,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 0, 0, 6, 0,
     "npy header: bad 'shape' entry"},
    {"a negative size", 1, 0, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", 0,
     0, 6, 0, "npy header: bad 'shape' entry"},
    {"shape not closed", 1, 0, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3 }", 0, 0,
     6, 0, "npy header: bad 'shape' tuple"},
    {"descr twice", 1, 0, 0,
     "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 0, 6, 0,
     "npy header: unexpected or repeated key 'descr'"},
    {"an unknown key", 1, 0, 0,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1, }", 0, 0, 6, 0,
     "npy header: unexpected or repeated key 'x'"},
    {"an empty dict", 1, 0, 0, "{}", 0, 0, 0, 0, "npy header lacks 'descr'"},
    {"a list", 1, 0, 0, "['descr']", 0, 0, 0, 0, "npy header is not a dict"},
    {"bytes after the dict", 1, 0, 0,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } xyz", 0, 0, 6, 0,
     "npy header: bytes after the dict"},
    {"int32", 1, 0, 0, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", 0, 0, 6, 0,
     "dtype '<i4' is not float32 ('<f4') or float64 ('<f8')"},
    {"big-endian", 1, 0, 0, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 0, 0, 6,
     0, "dtype '>f4' is not float32 ('<f4') or float64 ('<f8')"},
    {"float64 beyond float32", 1, 0, 0,
     "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 0, 1, 6, 1e39,
     "element 3 (1e+39) is outside float32's range"},
    {"short data", 1, 0, 0, OK_DICT, 0, 0, 5, 0,
     "npy data is 20 bytes but shape and dtype '<f4' need 24 (truncated)"},
    {"0-d", 1, 0, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0, 0, 1, 0,
     "npy array is 0-dimensional (a scalar)"},
    {"9 dimensions", 1, 0, 0,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", 0, 0, 1, 0,
     "npy array has more than 8 dimensions"},
    {"2^64 values", 1, 0, 0,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", 0, 0, 6, 0,
     "npy shape's element count overflows"},
    {"Python 2 longs", 1, 0, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", 0,
     0, 6, 0, NULL},
    {"version 3.0", 3, 0, 0, OK_DICT, 0, 0, 6, 0, NULL},
    {"double quotes", 2, 0, 0,
     "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2, 3), }", 0, 0, 6, 0, NULL},
    {"float64", 1, 0, 0, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 0, 1, 6, 0,
     NULL},
};

/* Writes case c to dir/NAME as numpy lays a file out: magic, version, header length (2
 * bytes for 1.0, 4 after), the dict padded with spaces and a newline to a multiple of 64,
 * the data. */
static void put_case(const npy_case *c, const char *path)
{
    size_t dl = strlen(c->dict), pre = c->major == 1 ? 10 : 12;
    size_t pad = (64 - (pre + dl + 1) % 64) % 64, hlen = dl + pad + 1;
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite(c->bad_magic ? "\x93NUMPX" : "\x93NUMPY", 1, 6, f);
    fputc(c->major, f);
    fputc(c->minor, f);
    uint32_t claimed = c->hlen ? (uint32_t)c->hlen : (uint32_t)hlen;
    for (size_t b = 0; b < pre - 8; b++) fputc((int)((claimed >> (8 * b)) & 0xff), f);
    fwrite(c->dict, 1, dl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    for (int i = 0; i < c->count; i++) {
        double v = i == 3 && c->special != 0 ? c->special : i * 0.5;
        if (c->f8) {
            fwrite(&v, 8, 1, f);
        } else {
            float x = (float)v;
            fwrite(&x, 4, 1, f);
        }
    }
    fclose(f);
}

Test(cov_npy, bad_files_are_one_line_naming_the_file)
{
    char path[600], want[900];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const npy_case *c = &cases[i];
        snprintf(path, sizeof path, "%s/c%02zu.npy", dir, i);
        put_case(c, path);
        elag_array a = ELAG_ARRAY_INIT;
        elag_status st = elag_array_load(&a, path);
        if (!c->want) {
            cr_expect_eq(st, ELAG_OK, "%s: %s", c->what, elag_last_error());
            cr_expect(st != ELAG_OK ||
                          (a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.data[5] == 2.5f),
                      "%s: read otherwise", c->what);
            elag_array_free(&a);
            continue;
        }
        snprintf(want, sizeof want, "%s: %s", path, c->want);
        cr_expect_eq(st, ELAG_ERR_INPUT, "%s: status %d: %s", c->what, st, elag_last_error());
        cr_expect(strncmp(elag_last_error(), want, strlen(want)) == 0, "%s: '%s', want '%s'",
                  c->what, elag_last_error(), want);
        cr_expect_null(strchr(elag_last_error(), '\n'), "%s: more than one line", c->what);
        cr_expect_null(a.data, "%s: data left behind", c->what);
    }
}

/* A version 1.0 file: `descr`, `shape` (a tuple's text), then len bytes of data. */
static void put_npy(const char *path, const char *descr, const char *shape, const void *data,
                    size_t len)
{
    char dict[256];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                      descr, shape);
    int pad = (64 - (10 + dl + 1) % 64) % 64, hlen = dl + pad + 1;
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hlen & 0xff, f);
    fputc(hlen >> 8, f);
    fwrite(dict, 1, (size_t)dl, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

typedef struct set_case {
    const char *what;
    const char *file; /* the file of the good set replaced */
    const char *descr, *shape;
    int64_t value;    /* every label (integer dtypes), or 0 */
    int count;        /* values written */
    const char *want; /* in the message */
} set_case;

static const set_case sets[] = {
    {"labels as floats", "train_y.npy", "<f4", "(6,)", 0, 6,
     "train_y.npy: dtype '<f4' is not a little-endian integer type; save y.astype(numpy.int64)"},
    {"a label of 2^40", "test_y.npy", "<i8", "(4,)", 1LL << 40, 4,
     "test_y.npy: labels[0] is 1099511627776, outside [0, 2^31)"},
    {"features of 1 dimension", "train_x.npy", "<f4", "(6,)", 0, 6,
     "train_x.npy: features must be (N, features), (N, H, W) or (N, C, H, W), got 1 "
     "dimensions"},
    {"5 samples for 6 labels", "train_x.npy", "<f4", "(5, 2)", 0, 10, "train_y.npy has 6 labels"},
    {"a version 4.0 file", "train_x.npy", NULL, NULL, 0, 0, "train_x.npy: npy format version 4.0"},
};

/* The good set: train (6, 2) with labels 0 1 2 0 1 2, test (4, 2). */
static void put_good_set(const char *data)
{
    static const float x[12] = {0, 1, 1, 0, 2, 2, 0, 1, 1, 0, 2, 2};
    static const int64_t y[6] = {0, 1, 2, 0, 1, 2};
    char p[700];
    snprintf(p, sizeof p, "%s/train_x.npy", data);
    put_npy(p, "<f4", "(6, 2)", x, sizeof x);
    snprintf(p, sizeof p, "%s/train_y.npy", data);
    put_npy(p, "<i8", "(6,)", y, sizeof y);
    snprintf(p, sizeof p, "%s/test_x.npy", data);
    put_npy(p, "<f4", "(4, 2)", x, 8 * sizeof *x);
    snprintf(p, sizeof p, "%s/test_y.npy", data);
    put_npy(p, "<i8", "(4,)", y, 4 * sizeof *y);
}

/* Each bad file in an otherwise good data.path: the run is refused naming that file,
 * before its folder is made. */
Test(cov_npy, a_bad_training_set_names_the_file)
{
    char data[600], path[700], yaml[1200], run[600];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(yaml, sizeof yaml, "mkdir -p '%s'", data);
    cr_assert_eq(elag_test_run(yaml, NULL), 0);
    snprintf(yaml, sizeof yaml,
             "name: n\ndevice: cpu-ref\ndata: {dataset: npy, path: %s}\n"
             "model: {layers: [{type: linear, out_features: 3}]}\n"
             "train: {epochs: 1, threads: 1}\n",
             data);
    elag_test_put(dir, "n.yaml", yaml);
    snprintf(path, sizeof path, "%s/n.yaml", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    put_good_set(data);
    cr_assert_eq(elag_run_train(path, run, NULL, NULL), ELAG_OK, "the good set: %s",
                 elag_last_error());
    elag_test_rmtree(run);
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        const set_case *c = &sets[i];
        put_good_set(data);
        char file[700];
        snprintf(file, sizeof file, "%s/%s", data, c->file);
        if (!c->descr) {
            put_case(&cases[1], file);
        } else {
            int64_t v[16];
            float fv[16];
            for (int k = 0; k < c->count; k++) v[k] = c->value, fv[k] = (float)k;
            int is_float = c->descr[1] == 'f';
            put_npy(file, c->descr, c->shape, is_float ? (const void *)fv : (const void *)v,
                    (size_t)c->count * (is_float ? sizeof *fv : sizeof *v));
        }
        elag_status st = elag_run_train(path, run, NULL, NULL);
        const char *msg = elag_last_error();
        cr_expect_eq(st, ELAG_ERR_INPUT, "%s: status %d: %s", c->what, st, msg);
        cr_expect(strstr(msg, c->want) != NULL, "%s: '%s' not in '%s'", c->what, c->want, msg);
        cr_expect_null(strchr(msg, '\n'), "%s: more than one line", c->what);
        cr_expect_neq(access(run, F_OK), 0, "%s: the run folder was made", c->what);
        elag_test_rmtree(run);
    }
}
