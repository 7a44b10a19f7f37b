/*
 * Quick CPU check of the fast sparse kernels against the dense baseline, in one run:
 * y (m, n) = W (m, k) x (k, n) on the "cpu" backend, dense through the backend's gemm
 * (OpenBLAS, single-threaded inside each OpenMP thread) and sparse through sparse_mm
 * (CSR and Blocked-ELL), for random unstructured masks at several sparsities. Dense
 * and sparse runs alternate so drift in machine load hits both alike; reports medians
 * over repeats as CSV on stdout, one row per sparsity and format, with the fastest runs
 * too (which other load on the machine disturbs least). Not part of the test suite; the
 * full benchmark is `elag bench spmm`.
 *
 * Build by hand from the repository root (no CMake needed):
 *   gcc -O3 -std=c11 -fopenmp -Iinclude -Ihost bench/spmm_cpu_quick.c host/core/status.c
 *       host/backend/backend.c host/cpu/[a-z]*.c host/sparse/formats.c
 *       $(pkg-config --cflags --libs openblas) -lm -o /tmp/spmm_cpu_quick
 *   /tmp/spmm_cpu_quick [-m 1024] [-k 1024] [-n 256] [-t 2] [-r 30] \
 *       [-s 0.5,0.7,0.8,0.9,0.95,0.99] [-f csr,bell16,bell32] [-i ISA]
 * ISA forces the kernels: 0 portable C, 1 AVX2, 2 AVX-512 (default: the best the CPU has).
 */
#define _POSIX_C_SOURCE 200809L
#include "backend/backend.h"
#include "backend/philox.h"
#include "cpu/cpu_sparse.h"
#include "sparse/sparse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPEAT 1000

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void die(const char *what)
{
    fprintf(stderr, "spmm_cpu_quick: %s: %s\n", what, elag_last_error());
    exit(1);
}

int main(int argc, char **argv)
{
    int m = 1024, k = 1024, n = 256, threads = 2, repeat = 30, isa = -1;
    char sparsities[256] = "0.5,0.7,0.8,0.9,0.95,0.99", formats[128] = "csr,bell16,bell32";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "-m")) m = (int)strtol(v, NULL, 10);
        else if (!strcmp(o, "-k")) k = (int)strtol(v, NULL, 10);
        else if (!strcmp(o, "-n")) n = (int)strtol(v, NULL, 10);
        else if (!strcmp(o, "-t")) threads = (int)strtol(v, NULL, 10);
        else if (!strcmp(o, "-r")) repeat = (int)strtol(v, NULL, 10);
        else if (!strcmp(o, "-s")) snprintf(sparsities, sizeof sparsities, "%s", v);
        else if (!strcmp(o, "-f")) snprintf(formats, sizeof formats, "%s", v);
        else if (!strcmp(o, "-i")) isa = (int)strtol(v, NULL, 10);
        else {
            fprintf(stderr, "spmm_cpu_quick: unknown option %s\n", o);
            return 2;
        }
    }
    if (m < 1 || k < 1 || n < 1 || repeat < 1 || repeat > MAX_REPEAT || threads < 1) {
        fprintf(stderr, "spmm_cpu_quick: bad sizes\n");
        return 2;
    }
    elag_backend *be;
    if (elag_backend_open("cpu", threads, &be, NULL, 0) != ELAG_OK) die("open cpu");

    float *w = malloc((size_t)m * k * sizeof *w);  /* (m, k) masked weight */
    float *x = malloc((size_t)k * n * sizeof *x);  /* (k, n) feature-major activations */
    float *y = malloc((size_t)m * n * sizeof *y);  /* (m, n) */
    for (size_t i = 0; i < (size_t)k * n; i++) x[i] = elag_philox_uniform(2, 1, i) - 0.5f;
    double dense_t[MAX_REPEAT], sparse_t[MAX_REPEAT];

    printf("m,k,n,threads,sparsity,format,median_ms,dense_median_ms,speedup_vs_dense,"
           "gflops_useful,min_ms,dense_min_ms\n");
    char slist[256];
    snprintf(slist, sizeof slist, "%s", sparsities);
    for (char *ss = strtok(slist, ","); ss; ss = strtok(NULL, ",")) {
        double s = strtod(ss, NULL);
        int64_t nnz = 0;
        for (size_t i = 0; i < (size_t)m * k; i++) {
            float u = elag_philox_uniform(1, 0, i);
            w[i] = u < s ? 0.0f : elag_philox_uniform(1, 1, i) - 0.5f;
            nnz += w[i] != 0.0f;
        }
        char flist[128], *fsave = NULL;
        snprintf(flist, sizeof flist, "%s", formats);
        for (char *fs = strtok_r(flist, ",", &fsave); fs; fs = strtok_r(NULL, ",", &fsave)) {
            elag_sparse_format f = ELAG_SPARSE_FORMAT_CSR;
            int block = 0;
            if (!strncmp(fs, "bell", 4)) {
                f = ELAG_SPARSE_FORMAT_BELL;
                block = (int)strtol(fs + 4, NULL, 10);
            }
            elag_sparse_host h;
            elag_sparse_dev *d;
            elag_sparse_opts opts = {.max_n = n, .alg = 0};
            if (elag_sparse_from_dense(w, m, k, f, block, &h) != ELAG_OK) die("from_dense");
            if (be->sparse_create(be, &h, &opts, &d) != ELAG_OK) die("sparse_create");
            if (isa >= 0 && elag_cpu_isa_supported((elag_cpu_isa)isa)) d->isa = (elag_cpu_isa)isa;
            /* warm-up both, then alternate */
            be->gemm(be, 0, 0, m, n, k, 1.0f, w, k, x, n, 0.0f, y, n);
            be->sparse_mm(be, d, x, n, NULL, 0, y);
            for (int r = 0; r < repeat; r++) {
                double t0 = now_ms();
                if (be->gemm(be, 0, 0, m, n, k, 1.0f, w, k, x, n, 0.0f, y, n) != ELAG_OK)
                    die("gemm");
                double t1 = now_ms();
                if (be->sparse_mm(be, d, x, n, NULL, 0, y) != ELAG_OK) die("sparse_mm");
                double t2 = now_ms();
                dense_t[r] = t1 - t0;
                sparse_t[r] = t2 - t1;
            }
            double dm = median(dense_t, repeat), sm = median(sparse_t, repeat);
            /* median() sorted both: [0] is the fastest run (least disturbed by other load) */
            printf("%d,%d,%d,%d,%.4f,%s,%.4f,%.4f,%.2f,%.1f,%.4f,%.4f\n", m, k, n, threads, s, fs,
                   sm, dm, dm / sm, 2.0 * (double)nnz * n / (sm * 1e6), sparse_t[0], dense_t[0]);
            fflush(stdout);
            be->sparse_destroy(be, d);
            elag_sparse_host_free(&h);
        }
    }
    free(w);
    free(x);
    free(y);
    elag_backend_free(be);
    return 0;
}
