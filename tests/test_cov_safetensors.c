/*
 * safetensors headers the reader must refuse, beyond test_safetensors.c: __metadata__ that
 * is not an object of strings, or twice, or with a key twice; a tensor that is not an
 * object, without a dtype string, with a shape that is not an array of at most 4
 * non-negative integers, or data_offsets that are not a pair [begin, end]; a shape whose
 * byte count overflows; bytes after the JSON object; a header over the 100 MB limit.
 * Each is ELAG_ERR_INPUT, one line naming the file and what is wrong.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/safetensors.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("cov-st");
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_safetensors, .init = setup, .fini = teardown);

/* path: 8-byte little-endian length `hlen` (the header's own when 0), the header, then
 * 16 bytes of data */
static void put(const char *path, const char *header, uint64_t hlen)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    uint64_t n = hlen ? hlen : strlen(header);
    for (int i = 0; i < 8; i++) fputc((int)((n >> (8 * i)) & 0xff), f);
    fputs(header, f);
    static const unsigned char data[16] = {0};
    fwrite(data, 1, sizeof data, f);
    fclose(f);
}

#define T(body) "{\"t\": " body "}"
#define OK_T    "{\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}"

static const struct {
    const char *header, *want; /* want: after "<path>: corrupt safetensors header: " */
} cases[] = {
    {"{\"__metadata__\": [1], \"t\": " OK_T "}", "__metadata__ is not an object"},
    {"{\"__metadata__\": {\"a\": 1}}", "__metadata__ entry 'a' is not a string"},
    {"{\"__metadata__\": {\"a\": \"1\", \"a\": \"2\"}}", "__metadata__ key 'a' appears twice"},
    {"{\"__metadata__\": {}, \"__metadata__\": {}}", "__metadata__ appears twice"},
    {T("5"), "tensor 't' is not an object"},
    {T("{\"shape\": [2], \"data_offsets\": [0, 8]}"), "tensor 't' has no dtype string"},
    {T("{\"dtype\": 3, \"shape\": [2], \"data_offsets\": [0, 8]}"),
     "tensor 't' has no dtype string"},
    {T("{\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}"),
     "tensor 't' has unknown dtype 'F16' (elag reads F32, I32, I64, U8, U64)"},
    {T("{\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}"),
     "tensor 't' has no shape array"},
    {T("{\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}"),
     "tensor 't' has 9 dims (elag reads at most 4)"},
    {T("{\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}"),
     "tensor 't' shape entry 0 is not a non-negative integer"},
    {T("{\"dtype\": \"F32\", \"shape\": [1, 1.5], \"data_offsets\": [0, 4]}"),
     "tensor 't' shape entry 1 is not a non-negative integer"},
    {T("{\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}"),
     "tensor 't' shape entry 0 is not a non-negative integer"},
    {T("{\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 8]}"),
     "tensor 't' shape entry 0 is not a non-negative integer"},
    {T("{\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": 8}"),
     "tensor 't' data_offsets is not a pair [begin, end] of integers with begin <= end"},
    {T("{\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8, 16]}"),
     "tensor 't' data_offsets is not a pair"},
    {T("{\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}"),
     "tensor 't' data_offsets is not a pair"},
    {T("{\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [\"0\", 8]}"),
     "tensor 't' data_offsets is not a pair"},
    {T("{\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 8]}"),
     "tensor 't' data_offsets [0, 8) do not match shape [4294967296, 4294967296] F32"},
    {T(OK_T) " x", "unexpected bytes after the JSON object (at byte "},
    {"[1, 2]", "not a JSON object"},
};

Test(cov_safetensors, bad_headers_are_one_line_naming_the_file)
{
    char path[600], want[1200];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        put(path, cases[i].header, 0);
        elag_st_file *f = NULL;
        elag_status st = elag_st_open(path, &f);
        elag_st_close(f);
        snprintf(want, sizeof want, "%s: corrupt safetensors header: %s", path, cases[i].want);
        cr_expect_eq(st, ELAG_ERR_INPUT, "%s: status %d: %s", cases[i].header, st,
                     elag_last_error());
        cr_expect(strncmp(elag_last_error(), want, strlen(want)) == 0, "%s: '%s', want '%s'",
                  cases[i].header, elag_last_error(), want);
        cr_expect_null(strchr(elag_last_error(), '\n'));
    }
    /* the good one reads: the cases above are refused for their one change */
    put(path, T(OK_T), 0);
    elag_st_file *f = NULL;
    cr_expect_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    elag_st_close(f);
}

/* A header length over 100 MB is refused before it is read (the file is that large: its
 * length field is checked against the file first). */
Test(cov_safetensors, a_header_over_the_limit)
{
    char path[600], want[900];
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    const uint64_t n = (100u << 20) + 8;
    for (int i = 0; i < 8; i++) fputc((int)((n >> (8 * i)) & 0xff), f);
    cr_assert_eq(fseek(f, (long)n, SEEK_CUR), 0); /* a sparse file */
    fputc(' ', f);
    fclose(f);
    elag_st_file *st_f = NULL;
    cr_expect_eq(elag_st_open(path, &st_f), ELAG_ERR_INPUT);
    snprintf(want, sizeof want,
             "%s: corrupt safetensors header: length %llu exceeds the 100 MB "
             "limit",
             path, (unsigned long long)n);
    cr_expect_str_eq(elag_last_error(), want);
    elag_st_close(st_f);
}
