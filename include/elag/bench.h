/*
 * elag public API: benchmarks (`elag bench spmm`, `elag bench model`, `elag bench layer`).
 * The library measures and hands back numbers; printing them is the caller's.
 *
 * spmm: y (m, n) = W (m, k) x (k, n), feature-major, on one device, for every weight shape,
 * batch n and sparsity: the dense GEMM (the baseline, FP32 and on CUDA also TF32) against
 * the device's sparse formats (CSR, Blocked-ELL), medians over repeats after warm-up, and
 * per (shape, batch, format) the crossover sparsity above which the format beats dense.
 * Masks are random (Philox, fixed seed), random in B x B blocks, or a checkpoint's own.
 *
 * net: an export run end to end in its own formats against the same weights run dense,
 * on random inputs, dense and sparse forwards alternating so that drift in the machine's
 * load hits both alike.
 *
 * layer: one linear layer's full training step (forward, both gradients, SGD), the dense
 * path against the sparse one (CSR products, SDDMM, SGD on the kept values), per sparsity.
 */
#ifndef ELAG_INCLUDE_BENCH_H
#define ELAG_INCLUDE_BENCH_H

#include "backend.h"
#include "common.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- spmm ---- */

/* Weight shapes to measure (opaque). Free with elag_bench_shape_list_free. */
typedef struct elag_bench_shape_list elag_bench_shape_list_t;

typedef enum elag_bench_shapes_from {
    ELAG_BENCH_SHAPES_FROM_LIST = 0, /* text: "MxK[,MxK...]", named "MxK" */
    ELAG_BENCH_SHAPES_FROM_FILE = 1, /* text: a YAML file, `shapes: [{name, m, k}, ...]`
                                      * (configs/shapes/) */
    ELAG_BENCH_SHAPES_FROM_MODEL = 2 /* text: a checkpoint; one shape per 2-D
                                      * `<layer>.mask`, with that mask (for
                                      * ELAG_BENCH_MASK_MODEL) */
} elag_bench_shapes_from;

/* Reads the shapes `text` names. ELAG_ERR_USAGE for a malformed list (at most 64
 * shapes); ELAG_ERR_INPUT or ELAG_ERR_IO for a bad file (the message names the file and
 * line). The caller owns *out. */
elag_status elag_bench_shape_list_open(elag_bench_shape_list_t **out, elag_bench_shapes_from from,
                                       const char *text);

void elag_bench_shape_list_free(elag_bench_shape_list_t *l); /* NULL does nothing */

int elag_bench_shape_list_count(const elag_bench_shape_list_t *l);

/* Checks a comma list of formats (at most 64) without running anything: dense,
 * dense-tf32 (CUDA), csr (the device's default algorithm), csr-alg1|2|3 (CUDA:
 * cuSPARSE's algorithm), bell:16, bell:32 (bell: bell:32). ELAG_ERR_USAGE with the
 * reason for anything else. */
elag_status elag_bench_formats_check(const char *formats);

typedef enum elag_bench_mask {
    ELAG_BENCH_MASK_RANDOM = 0, /* each weight kept with probability 1 - s */
    ELAG_BENCH_MASK_BLOCK = 1,  /* each mask_block x mask_block tile kept with probability 1 - s */
    ELAG_BENCH_MASK_MODEL = 2   /* the shapes' own masks (ELAG_BENCH_SHAPES_FROM_MODEL) */
} elag_bench_mask;

#define ELAG_BENCH_ROW_VERSION 2 /* 2: math, has_crossover_tf32, crossover_tf32 */

/* One measured variant (times in ms, rates per second). */
typedef struct elag_bench_row {
    unsigned int version; /* ELAG_BENCH_ROW_VERSION of the library that filled it */
    const char *shape, *format, *device, *mask; /* valid during the emit call */
    int m, k, n;
    double sparsity;        /* requested (model masks: the mask's own) */
    double actual_sparsity; /* 1 - nnz / (m k) */
    int64_t nnz;            /* live weights (dense: m k) */
    int64_t bytes;          /* A's arrays + x + y, moved once */
    double median_ms, p10_ms, p90_ms;
    double gflops;           /* 2 nnz n / t (dense: 2 m k n / t) */
    double effective_gflops; /* 2 m k n / t: the dense-equivalent rate */
    double gbps;             /* bytes / t */
    double speedup_vs_dense; /* dense FP32 median / this median, same shape and batch */
    double speedup_vs_tf32;  /* dense TF32 median / this median; NaN when not measured */
    int is_sparse;
    int has_crossover;                  /* sparse rows: 1 a crossover exists, 2 the format wins
                                         * at every measured sparsity (the crossover is
                                         * `crossover` or lower: shown "<=0.50"), 0 "none" */
    double crossover;                   /* lowest sparsity above which this format beats dense */
    int threads, repeat, warmup, inner; /* inner: products per timed sample */
    /* version 2 */
    const char *math; /* "fp32", or "tf32" when the device rounds this product's FP32 inputs
                       * to TF32 (dense-tf32; Blocked-ELL on CUDA, which cuSPARSE runs on
                       * tensor cores only): compare a tf32 row with dense-tf32 */
    int has_crossover_tf32; /* sparse rows: 1 crossover_tf32 holds the sparsity above which
                             * the format beats dense-tf32 (2: at or below, as has_crossover),
                             * 0 it never does, -1 dense-tf32 was not measured */
    double crossover_tf32;
} elag_bench_row;

#define ELAG_BENCH_SPMM_OPTIONS_VERSION 1

typedef struct elag_bench_spmm_options {
    unsigned int version; /* ELAG_BENCH_SPMM_OPTIONS_VERSION */
    const int *batches;   /* n_batches batch sizes n (host) */
    int n_batches;
    const double *sparsities; /* n_sparsities fractions of zero weights in [0, 1] (host) */
    int n_sparsities;
    const char *formats;  /* comma list (elag_bench_formats_check); NULL: dense,csr,
                           * and dense-tf32 on CUDA */
    int repeat, warmup;   /* timed samples (>= 1), untimed runs before them */
    double min_sample_ms; /* a sample repeats the product to last at least this long */
    elag_bench_mask mask;
    int mask_block; /* ELAG_BENCH_MASK_BLOCK: tile size (0: 32) */
    uint64_t seed;  /* Philox seed of masks, weights and activations */
    /* The rows of one shape (every batch and format) after its last measurement, so that
     * the crossovers are known; non-zero stops the benchmark. May be NULL. */
    int (*emit)(const elag_bench_row *rows, int n_rows, void *user);
    elag_note_fn note; /* a format this device cannot run, skipped; may be NULL */
    /* before each measurement; may be NULL */
    void (*progress)(const char *shape, int n, const char *format, double sparsity, void *user);
    void *user; /* passed to emit, note and progress */
} elag_bench_spmm_options;

#define ELAG_BENCH_SPMM_OPTIONS_INIT                                                               \
    {                                                                                              \
        ELAG_BENCH_SPMM_OPTIONS_VERSION, NULL, 0, NULL, 0, NULL, 10, 3, 1.0,                       \
            ELAG_BENCH_MASK_RANDOM, 32, 1, NULL, NULL, NULL, NULL                                  \
    }

/* Fills *opts with the defaults of `version`; ELAG_ERR_USAGE for an unknown version. */
elag_status elag_bench_spmm_options_init(elag_bench_spmm_options *opts, unsigned int version);

/* Runs the spmm benchmark over `shapes` on `device`. Formats the device cannot run
 * (dense-tf32 and csr-algN on the CPU) are skipped with a note. When a sparse format runs
 * in TF32 there (Blocked-ELL on CUDA) and the list lacks dense-tf32, dense-tf32 is measured
 * and emitted too (with a note): a TF32 row is compared with a TF32 baseline. */
elag_status elag_bench_spmm_run(elag_device_t *device, const elag_bench_shape_list_t *shapes,
                                const elag_bench_spmm_options *opts);

/* ---- net ---- */

#define ELAG_BENCH_NET_OPTIONS_VERSION 1

typedef struct elag_bench_net_options {
    unsigned int version; /* ELAG_BENCH_NET_OPTIONS_VERSION */
    int batch;            /* samples per forward (>= 1) */
    int repeat;           /* timed forwards of each side (>= 1) */
    int warmup;           /* untimed forwards of each side first */
} elag_bench_net_options;

#define ELAG_BENCH_NET_OPTIONS_INIT                                                                \
    {                                                                                              \
        ELAG_BENCH_NET_OPTIONS_VERSION, 256, 20, 3                                                 \
    }

/* Fills *opts with the defaults of `version`; ELAG_ERR_USAGE for an unknown version. */
elag_status elag_bench_net_options_init(elag_bench_net_options *opts, unsigned int version);

/* 2: the p10 / p90 spread (a caller built against version 1 gets the medians only). */
#define ELAG_BENCH_NET_RESULT_VERSION 2

typedef struct elag_bench_net_result {
    unsigned int version; /* set by the caller: ELAG_BENCH_NET_RESULT_VERSION */
    int batch;
    double dense_ms;  /* median ms of a forward with every weight dense */
    double sparse_ms; /* median ms of a forward with each weight in its export format */
    /* version 2: the 10th and 90th percentiles of the same forwards (linear interpolation
     * between ranks): a wide spread means the timings are not to be trusted */
    double dense_ms_p10, dense_ms_p90, sparse_ms_p10, sparse_ms_p90;
} elag_bench_net_result;

#define ELAG_BENCH_NET_RESULT_INIT                                                                 \
    {                                                                                              \
        ELAG_BENCH_NET_RESULT_VERSION, 0, 0, 0, 0, 0, 0, 0                                         \
    }

/* Times net on `device` at opts->batch samples of uniform random inputs in [-1, 1): its
 * own formats and the same weights dense, forwards alternating (host transposes and
 * copies included). opts NULL: the defaults. */
elag_status elag_bench_net(const elag_net_t *net, elag_device_t *device,
                           const elag_bench_net_options *opts, elag_bench_net_result *result);

/* ---- layer: one linear layer's training step, dense against sparse ---- */

#define ELAG_BENCH_LAYER_ROW_VERSION 1
/* One measured path (times in ms, medians over the repeats). */
typedef struct elag_bench_layer_row {
    unsigned int version;  /* ELAG_BENCH_LAYER_ROW_VERSION of the library that filled it */
    const char *path;      /* "dense" or "sparse"; valid during the emit call */
    int out, in, batch;    /* W (out, in), batch n */
    double sparsity;       /* requested fraction of pruned weights */
    int64_t nnz;           /* kept weights */
    double median_ms, p10_ms, p90_ms; /* a whole step: forward, both gradients, optimizer */
    double forward_ms, input_grad_ms, weight_grad_ms, optimizer_ms; /* medians of the parts */
    double speedup_vs_dense; /* the dense step's median (same sparsity's run) / this one */
    double prepare_ms;       /* sparse: building the pattern at a mask update (once); else 0 */
    double scatter_ms;       /* sparse: what scattering W back every step would add; else 0 */
    int threads, repeat, warmup;
} elag_bench_layer_row;

#define ELAG_BENCH_LAYER_OPTIONS_VERSION 1
typedef struct elag_bench_layer_options {
    unsigned int version;     /* ELAG_BENCH_LAYER_OPTIONS_VERSION */
    int out, in;              /* W (out, in) (>= 1) */
    int batch;                /* n (>= 1) */
    const double *sparsities; /* n_sparsities fractions of pruned weights in [0, 1] (host) */
    int n_sparsities;
    int repeat, warmup;       /* timed steps of each path (>= 1), untimed ones first */
    uint64_t seed;            /* Philox seed of mask, weights, input and output gradient */
    /* Per sparsity, the dense row then the sparse row; non-zero stops. May be NULL. */
    int (*emit)(const elag_bench_layer_row *row, void *user);
    void *user;
} elag_bench_layer_options;

#define ELAG_BENCH_LAYER_OPTIONS_INIT                                                              \
    {                                                                                              \
        ELAG_BENCH_LAYER_OPTIONS_VERSION, 2048, 2048, 256, NULL, 0, 10, 2, 1, NULL, NULL           \
    }

/* Times one training step of a linear layer y = W x (feature-major: x (in, n)) on `device`:
 * the dense path (three GEMMs and the masked SGD over every weight) and the sparse path
 * (CSR products with W and W^T, the weight gradient at the kept entries only, SGD on the
 * kept values), alternating step by step so load drifts hit both alike. ELAG_ERR_USAGE for
 * bad options, ELAG_ERR_UNSUPPORTED when the device has no sparse training ops
 * (supports(ELAG_OP_SPARSE_TRAIN), e.g. CUDA for now). */
elag_status elag_bench_layer_run(elag_device_t *device, const elag_bench_layer_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_BENCH_H */
