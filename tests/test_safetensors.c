/*
 * safetensors reader and writer: round trips of every dtype with metadata, an
 * independent check of the written bytes (length prefix + JSON parsed here with
 * cJSON), and corrupt files refused with a message naming the file and the fault.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include "io/safetensors.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *tmp_path(const char *tag, const char *name)
{
    char *dir = elag_test_tmpdir(tag);
    cr_assert_not_null(dir);
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    free(dir);
    return p;
}

/* Writes an 8-byte little-endian length, `json` and `data` as a raw file. */
static void write_raw(const char *path, const char *json, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    uint64_t n = strlen(json);
    for (int i = 0; i < 8; i++) fputc((int)((n >> (8 * i)) & 0xff), fp);
    fwrite(json, 1, (size_t)n, fp);
    if (len) fwrite(data, 1, len, fp);
    fclose(fp);
}

/* Opens `path`, expects ELAG_ERR_INPUT and a message containing `want`. */
static void expect_refused(const char *path, const char *want)
{
    elag_st_file *f = (elag_st_file *)1;
    elag_status st = elag_st_open(path, &f);
    cr_assert_eq(st, ELAG_ERR_INPUT, "status %d, message: %s", st, elag_last_error());
    cr_assert_null(f);
    cr_assert(strstr(elag_last_error(), want), "message '%s' lacks '%s'", elag_last_error(),
              want);
    cr_assert(strstr(elag_last_error(), path), "message '%s' lacks the path", elag_last_error());
}

/* A writer holding F32 (3, 5), I32 (7), U8 (2, 3, 1), I64 (2, 2) and U64 scalar. */
static elag_st_writer *sample_writer(float *f32, int32_t *i32, uint8_t *u8, int64_t *i64)
{
    for (int i = 0; i < 15; i++) f32[i] = (float)i * 0.25f - 1.5f;
    for (int i = 0; i < 7; i++) i32[i] = -3 + i * 1000;
    for (int i = 0; i < 6; i++) u8[i] = (uint8_t)(i * 51);
    i64[0] = INT64_MIN;
    i64[1] = -1;
    i64[2] = 0;
    i64[3] = INT64_C(1) << 40;
    uint64_t u64 = UINT64_MAX - 5;
    elag_st_writer *w = NULL;
    cr_assert_eq(elag_st_writer_init(&w), ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "fc1.weight", ELAG_DTYPE_F32, 2, (int64_t[]){3, 5}, f32),
                 ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "idx", ELAG_DTYPE_I32, 1, (int64_t[]){7}, i32), ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "fc1.mask", ELAG_DTYPE_U8, 3, (int64_t[]){2, 3, 1}, u8),
                 ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "big", ELAG_DTYPE_I64, 2, (int64_t[]){2, 2}, i64), ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "step", ELAG_DTYPE_U64, 0, NULL, &u64), ELAG_OK);
    cr_assert_eq(elag_st_writer_meta(w, "format", "pt"), ELAG_OK);
    cr_assert_eq(elag_st_writer_meta(w, "config", "draft"), ELAG_OK);
    cr_assert_eq(elag_st_writer_meta(w, "config", "name: x\nseed: 1\n"), ELAG_OK); /* replaces */
    return w;
}

Test(safetensors, round_trip_all_dtypes_and_metadata)
{
    float f32[15];
    int32_t i32[7];
    uint8_t u8[6];
    int64_t i64[4];
    elag_st_writer *w = sample_writer(f32, i32, u8, i64);
    char *path = tmp_path("st", "model.safetensors");
    cr_assert_eq(elag_st_writer_save(w, path), ELAG_OK, "%s", elag_last_error());
    elag_st_writer_free(w);

    elag_st_file *f = NULL;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    cr_assert_str_eq(elag_st_path(f), path);
    cr_assert_eq(elag_st_count(f), 5);
    const char *order[] = {"fc1.weight", "idx", "fc1.mask", "big", "step"};
    for (int i = 0; i < 5; i++) cr_assert_str_eq(elag_st_at(f, i)->name, order[i]);
    cr_assert_null(elag_st_at(f, 5));

    const elag_st_tensor *t = elag_st_find(f, "fc1.weight");
    cr_assert_eq(t->dtype, ELAG_DTYPE_F32);
    cr_assert_eq(t->ndim, 2);
    cr_assert_eq(t->shape[0], 3);
    cr_assert_eq(t->shape[1], 5);
    cr_assert_eq(t->nbytes, sizeof f32);
    cr_assert_arr_eq(t->data, f32, sizeof f32);
    t = elag_st_find(f, "idx");
    cr_assert_eq(t->dtype, ELAG_DTYPE_I32);
    cr_assert_arr_eq(t->data, i32, sizeof i32);
    t = elag_st_find(f, "fc1.mask");
    cr_assert_eq(t->dtype, ELAG_DTYPE_U8);
    cr_assert_eq(t->ndim, 3);
    cr_assert_eq(t->shape[2], 1);
    cr_assert_arr_eq(t->data, u8, sizeof u8);
    t = elag_st_find(f, "big");
    cr_assert_eq(t->dtype, ELAG_DTYPE_I64);
    cr_assert_arr_eq(t->data, i64, sizeof i64);
    cr_assert_eq((uintptr_t)t->data % 8, 0, "I64 data must be aligned for direct use");
    t = elag_st_find(f, "step");
    cr_assert_eq(t->dtype, ELAG_DTYPE_U64);
    cr_assert_eq(t->ndim, 0);
    cr_assert_eq(*(const uint64_t *)t->data, UINT64_MAX - 5);
    cr_assert_null(elag_st_find(f, "nope"));

    cr_assert_str_eq(elag_st_meta(f, "format"), "pt");
    cr_assert_str_eq(elag_st_meta(f, "config"), "name: x\nseed: 1\n");
    cr_assert_null(elag_st_meta(f, "missing"));
    elag_st_close(f);
    free(path);
}

Test(safetensors, written_bytes_follow_the_format)
{
    float f32[15];
    int32_t i32[7];
    uint8_t u8[6];
    int64_t i64[4];
    elag_st_writer *w = sample_writer(f32, i32, u8, i64);
    char *path = tmp_path("st", "fmt.safetensors");
    cr_assert_eq(elag_st_writer_save(w, path), ELAG_OK, "%s", elag_last_error());
    elag_st_writer_free(w);

    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)size);
    cr_assert_eq(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);

    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    cr_assert_eq((8 + n) % 8, 0, "data section must start at a multiple of 8 (N = %llu)",
                 (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) /* spaces pad the JSON, nothing else is hidden there */
        cr_assert(buf[8 + i] != 0);
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)n);
    cr_assert(cJSON_IsObject(root));
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(meta, "format")->valuestring, "pt");

    const char *order[] = {"fc1.weight", "idx", "fc1.mask", "big", "step"};
    const char *dtypes[] = {"F32", "I32", "U8", "I64", "U64"};
    const void *datas[] = {f32, i32, u8, i64, NULL};
    size_t sizes[] = {sizeof f32, sizeof i32, sizeof u8, sizeof i64, 8};
    int k = 0;
    uint64_t expect_begin = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, root)
    {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        cr_assert_lt(k, 5);
        cr_assert_str_eq(e->string, order[k], "tensor %d is '%s'", k, e->string);
        cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, dtypes[k]);
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
        uint64_t b = (uint64_t)cJSON_GetArrayItem(offs, 0)->valuedouble;
        uint64_t en = (uint64_t)cJSON_GetArrayItem(offs, 1)->valuedouble;
        cr_assert_eq(b, expect_begin, "tensors are packed without gaps");
        cr_assert_eq(en - b, sizes[k]);
        if (datas[k]) cr_assert_arr_eq(buf + 8 + n + b, datas[k], sizes[k]);
        expect_begin = en;
        k++;
    }
    cr_assert_eq(k, 5);
    cr_assert_eq((uint64_t)size, 8 + n + expect_begin, "no bytes after the last tensor");
    cJSON *shape = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "fc1.mask"), "shape");
    cr_assert_eq(cJSON_GetArraySize(shape), 3);
    cr_assert_eq(cJSON_GetArrayItem(shape, 0)->valueint, 2);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                     cJSON_GetObjectItemCaseSensitive(root, "step"), "shape")),
                 0);
    cJSON_Delete(root);
    free(buf);
    free(path);
}

Test(safetensors, empty_writer_and_misaligned_tensor)
{
    char *path = tmp_path("st", "empty.safetensors");
    elag_st_writer *w = NULL;
    cr_assert_eq(elag_st_writer_init(&w), ELAG_OK);
    cr_assert_eq(elag_st_writer_save(w, path), ELAG_OK);
    elag_st_file *f = NULL;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_st_count(f), 0);
    elag_st_close(f);

    /* 3 bytes of U8 put the F32 tensor at offset 3: the reader must still hand out an
     * aligned pointer with the right values. */
    uint8_t u8[3] = {1, 2, 3};
    float v[2] = {1.5f, -2.25f};
    cr_assert_eq(elag_st_writer_add(w, "m", ELAG_DTYPE_U8, 1, (int64_t[]){3}, u8), ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "v", ELAG_DTYPE_F32, 1, (int64_t[]){2}, v), ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "z", ELAG_DTYPE_F32, 2, (int64_t[]){0, 4}, NULL), ELAG_OK);
    cr_assert_eq(elag_st_writer_save(w, path), ELAG_OK);
    elag_st_writer_free(w);
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    const elag_st_tensor *t = elag_st_find(f, "v");
    cr_assert_eq((uintptr_t)t->data % 4, 0);
    cr_assert_arr_eq(t->data, v, sizeof v);
    cr_assert_arr_eq(elag_st_find(f, "m")->data, u8, 3);
    cr_assert_eq(elag_st_find(f, "z")->nbytes, 0);
    elag_st_close(f);
    elag_st_close(NULL);
    elag_st_writer_free(NULL);
    free(path);
}

Test(safetensors, writer_refuses_bad_tensors)
{
    elag_st_writer *w = NULL;
    float x[2] = {0};
    cr_assert_eq(elag_st_writer_init(&w), ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "a", ELAG_DTYPE_F32, 1, (int64_t[]){2}, x), ELAG_OK);
    cr_assert_eq(elag_st_writer_add(w, "a", ELAG_DTYPE_F32, 1, (int64_t[]){2}, x),
                 ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "'a' added twice"), "%s", elag_last_error());
    cr_assert_eq(elag_st_writer_add(w, "__metadata__", ELAG_DTYPE_F32, 1, (int64_t[]){2}, x),
                 ELAG_ERR_INPUT);
    cr_assert_eq(elag_st_writer_add(w, "b", ELAG_DTYPE_F32, 1, (int64_t[]){-2}, x),
                 ELAG_ERR_INPUT);
    cr_assert_eq(elag_st_writer_add(w, "c", ELAG_DTYPE_F32, 5, (int64_t[]){1, 1, 1, 1, 2}, x),
                 ELAG_ERR_INPUT);
    elag_st_writer_free(w);
}

Test(safetensors, save_into_missing_folder_is_io_error)
{
    elag_st_writer *w = NULL;
    cr_assert_eq(elag_st_writer_init(&w), ELAG_OK);
    cr_assert_eq(elag_st_writer_save(w, "/nonexistent-elag-dir/x.safetensors"), ELAG_ERR_IO);
    cr_assert(strstr(elag_last_error(), "/nonexistent-elag-dir/x.safetensors"));
    elag_st_writer_free(w);
    elag_st_file *f = NULL;
    cr_assert_eq(elag_st_open("/nonexistent-elag-dir/x.safetensors", &f), ELAG_ERR_INPUT);
}

Test(safetensors, refuses_truncated_data)
{
    float f32[15];
    int32_t i32[7];
    uint8_t u8[6];
    int64_t i64[4];
    elag_st_writer *w = sample_writer(f32, i32, u8, i64);
    char *path = tmp_path("st", "cut.safetensors");
    cr_assert_eq(elag_st_writer_save(w, path), ELAG_OK);
    elag_st_writer_free(w);
    FILE *fp = fopen(path, "rb");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    cr_assert_eq(truncate(path, size - 3), 0);
    char want[128];
    snprintf(want, sizeof want, "truncated file (header says %ld bytes, file has %ld)", size,
             size - 3);
    expect_refused(path, want);
    free(path);
}

Test(safetensors, refuses_header_longer_than_file)
{
    char *path = tmp_path("st", "x.safetensors");
    FILE *fp = fopen(path, "wb");
    unsigned char len[8] = {0xca, 0x04, 0, 0, 0, 0, 0, 0}; /* 1226 */
    fwrite(len, 1, 8, fp);
    fwrite("{\"a\":12}    ", 1, 12, fp);
    fclose(fp);
    expect_refused(path, "x.safetensors: truncated file (header says 1234 bytes, file has 20)");
    /* a length near 2^64 must not wrap around */
    fp = fopen(path, "wb");
    unsigned char huge[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    fwrite(huge, 1, 8, fp);
    fwrite("{}", 1, 2, fp);
    fclose(fp);
    expect_refused(path, "truncated file");
    free(path);
}

Test(safetensors, refuses_empty_and_tiny_files)
{
    char *path = tmp_path("st", "e.safetensors");
    FILE *fp = fopen(path, "wb");
    fclose(fp);
    expect_refused(path, "empty file");
    fp = fopen(path, "wb");
    fwrite("abc", 1, 3, fp);
    fclose(fp);
    expect_refused(path, "truncated file");
    free(path);
}

Test(safetensors, refuses_garbage_json)
{
    char *path = tmp_path("st", "g.safetensors");
    write_raw(path, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]", "\0\0\0\0", 4);
    expect_refused(path, "corrupt safetensors header: not valid JSON");
    write_raw(path, "[1, 2, 3]", NULL, 0);
    expect_refused(path, "corrupt safetensors header: not a JSON object");
    write_raw(path, "{} xx", NULL, 0);
    expect_refused(path, "unexpected bytes after the JSON object");
    write_raw(path, "{\"a\": 5}", NULL, 0);
    expect_refused(path, "tensor 'a' is not an object");
    write_raw(path, "{\"__metadata__\": {\"k\": 1}}", NULL, 0);
    expect_refused(path, "__metadata__ entry 'k' is not a string");
    free(path);
}

Test(safetensors, refuses_unknown_dtype)
{
    char *path = tmp_path("st", "d.safetensors");
    write_raw(path, "{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", "abcd", 4);
    expect_refused(path, "tensor 'w' has unknown dtype 'F16'");
    write_raw(path, "{\"w\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,4]}}", "abcd", 4);
    expect_refused(path, "tensor 'w' has no dtype string");
    free(path);
}

Test(safetensors, refuses_shape_offset_mismatch)
{
    char *path = tmp_path("st", "model.safetensors");
    static unsigned char data[100];
    write_raw(path,
              "{\"fc1.weight\":{\"dtype\":\"F32\",\"shape\":[300,784],\"data_offsets\":[0,100]}}",
              data, sizeof data);
    char want[512];
    snprintf(want, sizeof want,
             "%s: corrupt safetensors header: tensor 'fc1.weight' data_offsets [0, 100) do not "
             "match shape [300, 784] F32",
             path);
    expect_refused(path, want);
    cr_assert_str_eq(elag_last_error(), want);
    free(path);
}

Test(safetensors, refuses_bad_shape_and_offset_entries)
{
    char *path = tmp_path("st", "s.safetensors");
    write_raw(path, "{\"w\":{\"dtype\":\"U8\",\"shape\":[-2],\"data_offsets\":[0,2]}}", "ab", 2);
    expect_refused(path, "tensor 'w' shape entry 0 is not a non-negative integer");
    write_raw(path, "{\"w\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,2]}}", "ab", 2);
    expect_refused(path, "shape entry 0 is not a non-negative integer");
    write_raw(path, "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,0]}}", "ab", 2);
    expect_refused(path, "data_offsets is not a pair");
    write_raw(path, "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,2],\"data_offsets\":[0,2]}}",
              "ab", 2);
    expect_refused(path, "has 5 dims");
    write_raw(path, "{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}", "abcd", 4);
    expect_refused(path, "truncated file");
    free(path);
}

Test(safetensors, refuses_overlapping_offsets)
{
    char *path = tmp_path("st", "o.safetensors");
    write_raw(path,
              "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
              "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[2,6]}}",
              "abcdef", 6);
    expect_refused(path, "tensor 'b' data_offsets [2, 6) overlap tensor 'a' [0, 4)");
    free(path);
}

Test(safetensors, refuses_duplicate_names)
{
    char *path = tmp_path("st", "dup.safetensors");
    write_raw(path,
              "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
              "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
              "abcd", 4);
    expect_refused(path, "tensor 'a' appears twice");
    write_raw(path, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", NULL, 0);
    expect_refused(path, "__metadata__ key 'k' appears twice");
    free(path);
}

Test(safetensors, reads_a_foreign_file_with_unpadded_header)
{
    /* Another writer may leave the data section unaligned (header length 57 here) and
     * put tensors in any order; the reader copes. */
    char *path = tmp_path("st", "foreign.safetensors");
    float v[2] = {3.0f, -4.0f};
    unsigned char data[12];
    memcpy(data, "wxyz", 4);
    memcpy(data + 4, v, 8);
    write_raw(path,
              "{\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
              "\"m\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}",
              data, sizeof data);
    elag_st_file *f = NULL;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    cr_assert_str_eq(elag_st_at(f, 0)->name, "v");
    const elag_st_tensor *t = elag_st_find(f, "v");
    cr_assert_eq((uintptr_t)t->data % 4, 0);
    cr_assert_arr_eq(t->data, v, sizeof v);
    cr_assert_arr_eq(elag_st_find(f, "m")->data, "wxyz", 4);
    elag_st_close(f);
    free(path);
}

Test(safetensors, expect_reports_mismatches)
{
    float f32[15];
    int32_t i32[7];
    uint8_t u8[6];
    int64_t i64[4];
    elag_st_writer *w = sample_writer(f32, i32, u8, i64);
    char *path = tmp_path("st", "model.safetensors");
    cr_assert_eq(elag_st_writer_save(w, path), ELAG_OK);
    elag_st_writer_free(w);
    elag_st_file *f = NULL;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK);

    const elag_st_tensor *t = NULL;
    cr_assert_eq(elag_st_expect(f, "fc1.weight", ELAG_DTYPE_F32, 2, (int64_t[]){3, 5}, &t),
                 ELAG_OK);
    cr_assert_eq(t, elag_st_find(f, "fc1.weight"));

    char want[512];
    cr_assert_eq(elag_st_expect(f, "fc2.weight", ELAG_DTYPE_F32, 2, (int64_t[]){3, 5}, &t),
                 ELAG_ERR_INPUT);
    cr_assert_null(t);
    snprintf(want, sizeof want, "%s: missing tensor 'fc2.weight'", path);
    cr_assert_str_eq(elag_last_error(), want);

    cr_assert_eq(elag_st_expect(f, "fc1.weight", ELAG_DTYPE_F32, 2, (int64_t[]){5, 3}, NULL),
                 ELAG_ERR_INPUT);
    snprintf(want, sizeof want, "%s: tensor 'fc1.weight' is F32 [3, 5], expected F32 [5, 3]",
             path);
    cr_assert_str_eq(elag_last_error(), want);

    cr_assert_eq(elag_st_expect(f, "idx", ELAG_DTYPE_I64, 1, (int64_t[]){7}, NULL),
                 ELAG_ERR_INPUT);
    snprintf(want, sizeof want, "%s: tensor 'idx' is I32 [7], expected I64 [7]", path);
    cr_assert_str_eq(elag_last_error(), want);

    cr_assert_eq(elag_st_expect(f, "step", ELAG_DTYPE_U64, 1, (int64_t[]){1}, NULL),
                 ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "is U64 [], expected U64 [1]"), "%s", elag_last_error());
    elag_st_close(f);
    free(path);
}

Test(safetensors, dtype_names_and_sizes)
{
    cr_assert_str_eq(elag_dtype_name(ELAG_DTYPE_F32), "F32");
    cr_assert_str_eq(elag_dtype_name(ELAG_DTYPE_U64), "U64");
    cr_assert_eq(elag_dtype_size(ELAG_DTYPE_U8), 1);
    cr_assert_eq(elag_dtype_size(ELAG_DTYPE_I32), 4);
    cr_assert_eq(elag_dtype_size(ELAG_DTYPE_I64), 8);
    cr_assert_eq(elag_dtype_size((elag_dtype)99), 0);
}
