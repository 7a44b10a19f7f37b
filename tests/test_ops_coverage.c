/*
 * The backend table itself (the harness: tests/support/ops_harness.h). ops::coverage fails
 * when an entry of elag_backend (host/backend/backend.h) has no line in OPS_COVERS, or a
 * case covers no entry: the cases live in tests/test_ops_<file>.c, one executable each, and
 * OPS_CASES lists them all, so this one test sees every file's. ops_*::table: every entry
 * is set on each backend, with its name and kind. Needing no backend: opening by name, and
 * the CUDA error plumbing (the message of the generic check, no device a clean error).
 */
#define _POSIX_C_SOURCE 200809L /* opendir */
#include "support/ops_harness.h"

#include <criterion/logging.h>

#ifdef ELAG_HAVE_CUDA
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#endif

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

OPS_TEST_FILE(OPS_CASES_COVERAGE);

/* Every case of every file: naming a case in OPS_COVERS that is in no file's list, or one
 * case in two lists, fails to compile here. */
#define CASE_ID(f, c) case_id_##c,
enum case_id { OPS_CASES(CASE_ID) N_CASES };

#define CASE_ENTRY(f, c) {#c, #f},
static const struct {
    const char *name, *file; /* case_<name> in tests/test_ops_<file>.c */
} all_cases[] = {OPS_CASES(CASE_ENTRY)};

#define COVER(op, c) {offsetof(elag_backend, op), #op, case_id_##c},
static const struct cover {
    size_t off;
    const char *op;
    enum case_id c;
} covered[] = {OPS_COVERS(COVER)};
#define N_COVERED (sizeof covered / sizeof *covered)

static const char *op_name(size_t off)
{
    for (size_t j = 0; j < N_COVERED; j++)
        if (covered[j].off == off) return covered[j].op;
    return "(an op without a case)";
}

/* The text of tests/test_ops_<file>.c, or NULL (the caller frees). */
static char *case_file(const char *file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/test_ops_%s.c", ELAG_SOURCE_DIR, file);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (text = calloc((size_t)n + 1, 1)) != NULL &&
        fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* ---- the table ---- */

OPS_CASE(table)
{
    elag_backend *b = T.b;
    for (size_t off = OPS_FIRST; off + sizeof(ops_fn) <= sizeof(elag_backend);
         off += sizeof(ops_fn)) {
        ops_fn f;
        memcpy(&f, (const char *)b + off, sizeof f);
        cr_expect(f != NULL, "%s: %s (offset %zu) is NULL", b->name, op_name(off), off);
    }
    switch (b->kind) {
    case ELAG_DEVICE_CPU_REF:
        cr_expect_str_eq(b->name, "cpu-ref");
        cr_expect_eq(b->threads, 1);
        break;
    case ELAG_DEVICE_CPU:
        cr_expect_str_eq(b->name, "cpu");
        cr_expect_eq(b->threads, FAST_THREADS);
        break;
    case ELAG_DEVICE_CUDA:
        cr_expect_str_eq(b->name, "cuda:0");
        cr_expect_eq(b->device_index, 0);
#ifdef ELAG_HAVE_CUDA
        cr_log_info("device: %s", elag_cuda_device_name(b));
#endif
        break;
    default:
        cr_expect(0, "unknown kind %d", (int)b->kind);
    }
    cr_expect_str_eq(T.ref->name, "cpu-ref");
    cr_expect_eq(T.ref->kind, ELAG_DEVICE_CPU_REF);
}

/* ---- needing no backend: the coverage of the table, opening ---- */

Test(ops, coverage)
{
    cr_expect_eq((sizeof(elag_backend) - OPS_FIRST) % sizeof(ops_fn), 0,
                 "elag_backend has a non-pointer member after alloc");
    for (size_t off = OPS_FIRST; off + sizeof(ops_fn) <= sizeof(elag_backend);
         off += sizeof(ops_fn)) {
        size_t j = 0;
        while (j < N_COVERED && covered[j].off != off) j++;
        cr_expect_lt(j, N_COVERED,
                     "backend.h: the op at offset %zu (after %s) has no test case: add a case to "
                     "a tests/test_ops_<file>.c and its OPS_CASES_<FILE> list, and a line to "
                     "OPS_COVERS (tests/support/ops_harness.h)",
                     off, off > OPS_FIRST ? op_name(off - sizeof(ops_fn)) : "nothing");
    }
    for (size_t j = 0; j < N_COVERED; j++) {
        cr_expect_geq(covered[j].off, OPS_FIRST, "%s is not an op", covered[j].op);
        cr_expect_eq((covered[j].off - OPS_FIRST) % sizeof(ops_fn), 0);
        for (size_t i = 0; i < j; i++)
            cr_expect(covered[i].off != covered[j].off || covered[i].c != covered[j].c,
                      "%s -> %s listed twice", covered[j].op, all_cases[covered[j].c].name);
    }
    /* each case covers an op, and is defined in the file whose list names it (that file's
     * OPS_TEST_FILE then registers it: see OPS_CASE) */
    for (size_t k = 0; k < N_CASES; k++) {
        size_t j = 0;
        while (j < N_COVERED && (size_t)covered[j].c != k) j++;
        cr_expect_lt(j, N_COVERED, "case %s covers no op", all_cases[k].name);
        char *text = case_file(all_cases[k].file), want[96];
        snprintf(want, sizeof want, "OPS_CASE(%s)", all_cases[k].name);
        cr_expect(text && strstr(text, want), "tests/test_ops_%s.c (under %s) does not define %s",
                  all_cases[k].file, ELAG_SOURCE_DIR, want);
        free(text);
    }
    /* each test_ops_<file>.c has its list in OPS_CASES, so its cases count above */
    DIR *dir = opendir(ELAG_SOURCE_DIR "/tests");
    cr_assert_not_null(dir, "%s/tests: %s", ELAG_SOURCE_DIR, strerror(errno));
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        size_t len = strlen(e->d_name), k = 0;
        if (strncmp(e->d_name, "test_ops_", 9) != 0 || len < 11 ||
            strcmp(e->d_name + len - 2, ".c") != 0)
            continue;
        while (k < N_CASES && (strlen(all_cases[k].file) != len - 11 ||
                               strncmp(all_cases[k].file, e->d_name + 9, len - 11) != 0))
            k++;
        cr_expect_lt(k, N_CASES, "tests/%s has no cases in OPS_CASES (tests/support/ops_harness.h)",
                     e->d_name);
    }
    closedir(dir);
}

Test(ops, open_names_and_errors)
{
    elag_backend *b = NULL;
    char note[128] = "stale";
    cr_expect_eq(elag_backend_open("xyz", 1, &b, note, sizeof note), ELAG_ERR_USAGE);
    cr_expect_null(b);
    cr_expect_str_eq(elag_last_error(),
                     "unknown device 'xyz' (expected auto, cpu, cpu-ref, cuda or cuda:N)");
    cr_expect_eq(elag_backend_open("cuda:x", 1, &b, NULL, 0), ELAG_ERR_USAGE);
    cr_expect_eq(elag_backend_open("cuda:-1", 1, &b, NULL, 0), ELAG_ERR_USAGE);
    cr_expect_eq(elag_backend_open("cuda:99", 1, &b, NULL, 0), ELAG_ERR_NO_DEVICE);

    cr_assert_eq(elag_backend_open("cpu", 0, &b, NULL, 0), ELAG_OK);
    cr_expect_geq(b->threads, 1, "threads <= 0 means all cores");
    elag_backend_free(b);

    if (elag_cuda_device_count() == 0) {
        cr_expect_eq(elag_backend_open("cuda", 1, &b, NULL, 0), ELAG_ERR_NO_DEVICE);
        cr_expect(strstr(elag_last_error(), "--device cuda: no CUDA device found") != NULL, "%s",
                  elag_last_error());
        cr_assert_eq(elag_backend_open("auto", 2, &b, note, sizeof note), ELAG_OK);
        cr_expect_str_eq(b->name, "cpu");
        cr_expect_str_eq(note, "no CUDA device found, using the CPU (2 threads)");
    } else {
        cr_assert_eq(elag_backend_open("auto", 2, &b, note, sizeof note), ELAG_OK);
        cr_expect_eq(b->kind, ELAG_DEVICE_CUDA);
    }
    elag_backend_free(b);
    elag_backend_free(NULL);
}

#ifdef ELAG_HAVE_CUDA
/* Needs no device: the message format of the generic check, for each library. (Enum
 * constants are ints in C, so they go through variables of their status type, as a call's
 * result would.) */
Test(ops, cuda_check_messages_name_call_and_place)
{
    cudaError_t e = cudaErrorInvalidValue;
    cr_expect_eq(ELAG_CUDA_STATUS(e, "cudaFoo(x)"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "cuda: cudaFoo(x) failed: cudaErrorInvalidValue") != NULL,
              "%s", elag_last_error());
    cr_expect(strstr(elag_last_error(), "test_ops_coverage.c:") != NULL, "%s", elag_last_error());
    cublasStatus_t s = CUBLAS_STATUS_INVALID_VALUE;
    cr_expect_eq(ELAG_CUDA_STATUS(s, "cublasBar()"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "CUBLAS_STATUS_INVALID_VALUE") != NULL, "%s",
              elag_last_error());
    cusparseStatus_t z = CUSPARSE_STATUS_NOT_SUPPORTED;
    cr_expect_eq(ELAG_CUDA_STATUS(z, "cusparseBaz()"), ELAG_ERR_DEVICE);
    cr_expect(strstr(elag_last_error(), "CUSPARSE_STATUS_NOT_SUPPORTED") != NULL, "%s",
              elag_last_error());
    e = cudaSuccess;
    cr_expect_eq(ELAG_CUDA_STATUS(e, "ok()"), ELAG_OK);
}

/* Needs no device: no GPU means 0 devices and a clear ELAG_ERR_NO_DEVICE, no crash. */
Test(ops, cuda_no_device_is_a_clean_error)
{
    int n = elag_cuda_count_devices();
    cr_expect_eq(n, elag_cuda_device_count());
    /* the count agrees with the machine: without the driver's device node there is no GPU,
     * so the count must be 0 (not an error code, not a stale or made-up number) */
    if (access("/dev/nvidia0", F_OK) != 0)
        cr_expect_eq(n, 0, "no /dev/nvidia0, yet %d CUDA devices", n);
    elag_backend *b = NULL;
    elag_status st = elag_cuda_backend_init(n, &b); /* one past the last device */
    cr_expect_eq(st, ELAG_ERR_NO_DEVICE, "%s", elag_last_error());
    cr_expect_null(b);
    cr_expect(strstr(elag_last_error(), "CUDA device") != NULL, "%s", elag_last_error());
}
#else
Test(ops, cuda_check_messages_name_call_and_place) { cr_skip_test("built without CUDA"); }
#endif
