/*
 * The sparse-vs-dense benchmark behind `elag bench spmm` (elag_bench_spmm_run): for each
 * weight shape (m, k), batch n and sparsity, y(m, n) = W(m, k) x(k, n) in feature-major
 * layout through one backend, as a dense GEMM (FP32, and TF32 on CUDA) and through the
 * backend's sparse ops (CSR, Blocked-ELL), with medians over repeats after warm-up, the
 * dense baseline measured in the same run, and the crossover sparsity above which a
 * sparse format beats dense. Masks are random (Philox, fixed seed), random in blocks, or
 * a trained model's `<layer>.mask` tensors. The engine computes; the CLI prints.
 */
#ifndef ELAG_SPARSE_BENCH_H
#define ELAG_SPARSE_BENCH_H

#include "backend/backend.h"
#include "elag/bench.h"
#include "sparse/sparse.h"

#include <stdint.h>

#define ELAG_BENCH_NAME_LEN 64

/* One weight shape: W is (m, k) (out, in). `mask` (host, (m, k), nonzero = kept) comes
 * from a model and overrides the generated masks and the sparsity list; NULL otherwise. */
typedef struct elag_bench_shape {
    char name[ELAG_BENCH_NAME_LEN];
    int m, k;
    uint8_t *mask;
} elag_bench_shape;

/* Shapes from a YAML file (shapes.c):
 *   shapes:
 *     - {name: ffn1, m: 3072, k: 768}
 * Errors name the file and line (ELAG_ERR_INPUT). The caller frees with
 * elag_bench_shapes_free. */
elag_status elag_bench_shapes_load(const char *path, elag_bench_shape **out, int *n_out);
/* One shape per 2-D `<layer>.mask` tensor (U8 or F32) of a safetensors file (a checkpoint),
 * in file order, named after the layer, with the mask copied. */
elag_status elag_bench_shapes_from_model(const char *path, elag_bench_shape **out, int *n_out);
void elag_bench_shapes_free(elag_bench_shape *v, int n); /* NULL does nothing */

/* One measured variant. */
typedef struct elag_bench_format {
    char name[16];            /* "dense", "dense-tf32", "csr", "csr-alg2", "bell:16" */
    elag_sparse_format format; /* DENSE, CSR or BELL */
    int tf32;                 /* dense on CUDA with TF32 tensor cores */
    int alg;                  /* CSR: 0 = the backend's default, 1..3 = cuSPARSE ALG1..3 */
    int block;                /* BELL: block size */
} elag_bench_format;

/* Parses one format name (the list above; "bell" is bell:32); ELAG_ERR_USAGE otherwise. */
elag_status elag_bench_format_parse(const char *text, elag_bench_format *out);

/* elag_bench_mask and elag_bench_row (one result row) are public: include/elag/bench.h. */

typedef struct elag_bench_config {
    const elag_bench_shape *shapes;
    int n_shapes;
    const int *batches;
    int n_batches;
    const double *sparsities; /* each in [0, 1] */
    int n_sparsities;
    const elag_bench_format *formats; /* must include "dense" (the baseline) */
    int n_formats;
    int repeat, warmup;       /* timed samples (>= 1), untimed runs before them */
    double min_sample_ms;     /* each sample runs the product often enough to last this long */
    elag_bench_mask mask;
    int mask_block;           /* ELAG_BENCH_MASK_BLOCK tile size */
    uint64_t seed;
    /* Rows of one shape, every batch and format, after its last measurement (so crossovers
     * are known); `rows` is valid during the call. Return non-zero to stop. */
    int (*emit)(const elag_bench_row *rows, int n_rows, void *user);
    /* A note for the user (a format this backend cannot run, skipped); may be NULL. */
    void (*note)(const char *text, void *user);
    /* Called before each measurement; may be NULL. */
    void (*progress)(const char *shape, int n, const char *format, double sparsity, void *user);
    void *user;
} elag_bench_config;

/* Runs the benchmark on backend b. Formats the backend cannot run (dense-tf32 and csr-algN
 * on the CPU, sparse formats on a backend without sparse ops) are skipped with a note. */
elag_status elag_bench_spmm(elag_backend *b, const elag_bench_config *c);

/* Crossover of one (shape, batch, format) series: sparsities s (ascending) and speedups
 * sp over dense. Returns 1 and *out = the lowest sparsity above which every measured point
 * beats dense (speedup > 1), linearly interpolated between the last losing and the first
 * winning point (s[0] when all win); 0 ("none") when the highest sparsity does not win. */
int elag_bench_crossover(const double *s, const double *sp, int n, double *out);

#endif /* ELAG_SPARSE_BENCH_H */
