/*
 * The shapes `elag bench spmm` measures: a shapes file (YAML `shapes: [{name, m, k}]`), a
 * list on the command line ("MxK,..."), or a checkpoint's masks. Each bad one is refused
 * with one line naming the file and line and what is wrong; a good one gives its shapes
 * with their names (the default name is "MxK").
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "io/safetensors.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("cov-shapes");
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_shapes, .init = setup, .fini = teardown);

static const struct {
    const char *yaml, *want; /* want: the message after the file's path */
} bad_files[] = {
    {"shapes: [{m: 0, k: 8}]\n", ":1: m must be a positive integer (got '0')"},
    {"shapes: [{m: x, k: 8}]\n", ":1: m must be a positive integer (got 'x')"},
    {"shapes: [{m: [1], k: 8}]\n", ":1: m must be a positive integer (got 'a list or map')"},
    {"shapes: [{m: 4}]\n", ":1: a shape needs m and k"},
    {"shapes: [{m: 4, k: 8, name: \"\"}]\n", ":1: name must be a string of 1..63 characters"},
    {"shapes: [{m: 4, k: 8, name: [a]}]\n", ":1: name must be a string of 1..63 characters"},
    {"shapes: [{m: 4, k: 8, bogus: 1}]\n",
     ":1: unknown key 'bogus' in a shape (expected name, m, k)"},
    {"shapes: [{m: 4, k: 8, ? [a] : 1}]\n", ":1: keys must be plain names"},
    {"shapes: [5]\n", ":1: each shape is a mapping {name: ..., m: ..., k: ...}"},
    {"shapes: []\n", ":1: 'shapes' must hold 1 to 4096 entries"},
    {"shapes: {m: 4}\n", ":1: 'shapes' must be a list of {name, m, k}"},
    {"bogus: [{m: 4, k: 8}]\n", ":1: unknown key 'bogus' (expected 'shapes')"},
    {"[1, 2]\n", ":1: expected a mapping with the key 'shapes'"},
    {"shapes: [{m: 99999999999, k: 8}]\n", ":1: m must be a positive integer (got '99999999999')"},
    {"shapes: [{m: 4, k: 8, name: "
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}]\n",
     ":1: name must be a string of 1..63 characters"},
    {"shapes: [{m: 4, k: 8}\n", ":2:1: YAML syntax error: did not find expected ',' or ']'"},
    {": : :\n", ":1:1: YAML syntax error: did not find expected key"},
};

Test(cov_shapes, bad_shapes_files)
{
    char path[600], want[900];
    snprintf(path, sizeof path, "%s/sh.yaml", dir);
    for (size_t i = 0; i < sizeof bad_files / sizeof *bad_files; i++) {
        elag_test_put(dir, "sh.yaml", bad_files[i].yaml);
        elag_bench_shape_list_t *l = NULL;
        elag_status st = elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_FILE, path);
        snprintf(want, sizeof want, "%s%s", path, bad_files[i].want);
        cr_expect_eq(st, ELAG_ERR_INPUT, "%s: status %d", bad_files[i].yaml, st);
        cr_expect_str_eq(elag_last_error(), want, "%s", bad_files[i].yaml);
        cr_expect_null(l);
        elag_bench_shape_list_free(l);
    }
    snprintf(path, sizeof path, "%s/none.yaml", dir);
    elag_bench_shape_list_t *l = NULL;
    cr_expect_eq(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_FILE, path), ELAG_ERR_INPUT);
    cr_expect(strstr(elag_last_error(), "none.yaml") != NULL, "%s", elag_last_error());
}

Test(cov_shapes, good_files_and_lists)
{
    char path[600];
    snprintf(path, sizeof path, "%s/sh.yaml", dir);
    elag_test_put(dir, "sh.yaml", "shapes:\n  - {m: 4, k: 8}\n  - {name: fc1, m: 300, k: 784}\n");
    elag_bench_shape_list_t *l = NULL;
    cr_assert_eq(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_FILE, path), ELAG_OK, "%s",
                 elag_last_error());
    cr_expect_eq(elag_bench_shape_list_count(l), 2);
    elag_bench_shape_list_free(l);
    static const struct {
        const char *list;
        int n; /* 0: refused */
    } lists[] = {{"8x6", 1}, {"8x6,4x4", 2}, {"8x6,", 1},  {"8x", 0},           {"x6", 0},
                 {"0x6", 0}, {"", 0},        {"8x6x2", 0}, {"99999999999x6", 0}};
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) {
        l = NULL;
        elag_status st = elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_LIST, lists[i].list);
        if (lists[i].n) {
            cr_expect_eq(st, ELAG_OK, "'%s': %s", lists[i].list, elag_last_error());
            cr_expect_eq(elag_bench_shape_list_count(l), lists[i].n, "'%s'", lists[i].list);
        } else {
            char want[200];
            snprintf(want, sizeof want, "'%s' is not a list of 1 to 64 shapes MxK", lists[i].list);
            cr_expect_eq(st, ELAG_ERR_USAGE, "'%s': status %d", lists[i].list, st);
            cr_expect_str_eq(elag_last_error(), want);
        }
        elag_bench_shape_list_free(l);
    }
}

/* A file of the given tensors (F32 unless u8): names[i] with ndims[i] dims from dims. */
static void put_masks(const char *file, int n, const char *const *names, const int *ndims, int i32)
{
    static float f[64];
    for (int i = 0; i < 64; i++) f[i] = (float)(i % 3);
    elag_st_writer *w = NULL;
    cr_assert_eq(elag_st_writer_init(&w), ELAG_OK);
    for (int i = 0; i < n; i++)
        cr_assert_eq(elag_st_writer_add(w, names[i], i32 ? ELAG_DTYPE_I32 : ELAG_DTYPE_F32,
                                        ndims[i], (int64_t[]){4, 6, 2}, f),
                     ELAG_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cr_assert_eq(elag_st_writer_save(w, path), ELAG_OK, "%s", elag_last_error());
    elag_st_writer_free(w);
}

Test(cov_shapes, a_checkpoints_masks)
{
    const char *ok[] = {"fc1.weight", "fc1.mask", "fc2.mask", "x"};
    const int nd[] = {2, 2, 2, 1};
    put_masks("ok.safetensors", 4, ok, nd, 0);
    const char *three[] = {"fc1.mask"};
    const int nd3[] = {3};
    put_masks("3d.safetensors", 1, three, nd3, 0);
    put_masks("int.safetensors", 1, three, nd, 1);
    const char *none[] = {"fc1.weight", ".mask"};
    put_masks("none.safetensors", 2, none, nd, 0);
    char path[600];
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    elag_bench_shape_list_t *l = NULL;
    cr_assert_eq(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_MODEL, path), ELAG_OK, "%s",
                 elag_last_error());
    cr_expect_eq(elag_bench_shape_list_count(l), 2, "one shape per mask");
    elag_bench_shape_list_free(l);
    static const struct {
        const char *file, *want;
    } bad[] = {
        {"3d.safetensors", "tensor fc1.mask is not a 2-D U8 or F32 mask"},
        {"int.safetensors", "tensor fc1.mask is not a 2-D U8 or F32 mask"},
        {"none.safetensors", "no <layer>.mask tensors (is it a checkpoint?)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char want[900];
        snprintf(path, sizeof path, "%s/%s", dir, bad[i].file);
        snprintf(want, sizeof want, "%s: %s", path, bad[i].want);
        l = NULL;
        cr_expect_eq(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_MODEL, path),
                     ELAG_ERR_INPUT, "%s", bad[i].file);
        cr_expect_str_eq(elag_last_error(), want);
        elag_bench_shape_list_free(l);
    }
}
