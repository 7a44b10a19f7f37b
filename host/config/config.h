/*
 * Run configuration: the typed form of a YAML config file (docs/config.md).
 * elag_config_load reads YAML through libyaml, applies `--set key.path=value`
 * overrides, fills defaults and validates; every error names file:line:column and
 * the key, with the closest valid key suggested for typos. elag_config_to_yaml
 * writes the fully resolved config (what runs/<name>/config.yaml holds), and the
 * config hash is a hash of that text.
 */
#ifndef ELAG_CONFIG_CONFIG_H
#define ELAG_CONFIG_CONFIG_H

#include "elag/elag.h"

#include <stddef.h>
#include <stdint.h>

#define ELAG_MAX_LAYERS 32
#define ELAG_NAME_LEN 64
#define ELAG_PATH_LEN 1024

typedef enum elag_dataset_kind {
    ELAG_DATASET_FASHION_MNIST = 0, /* IDX .gz files in data.path (default Debian's folder) */
    ELAG_DATASET_IDX = 1,           /* same reader, data.path required */
    ELAG_DATASET_SYNTHETIC = 2,     /* separable random set from data.synthetic.* */
    ELAG_DATASET_NPY = 3            /* the user's .npy files in data.path (npy_dataset.c) */
} elag_dataset_kind;

/* Layer kinds: the index of each kind in the layer-kind table (host/model/layers/kinds.c),
 * which holds everything about a kind; code outside a kind's own file looks it up there
 * instead of testing the value. */
typedef enum elag_layer_kind {
    ELAG_LAYER_LINEAR = 0,
    ELAG_LAYER_RELU,
    ELAG_LAYER_FLATTEN,
    ELAG_LAYER_CONV2D,
    ELAG_LAYER_MAXPOOL,
    ELAG_LAYER_AVGPOOL,
    ELAG_LAYER_GLOBAL_AVGPOOL,
    ELAG_LAYER_BATCHNORM,
    ELAG_LAYER_DROPOUT,
    ELAG_LAYER_KIND_COUNT
} elag_layer_kind;

/* One model.layers item. Fields a kind does not use stay 0 (configs compare with memcmp). */
typedef struct elag_layer_config {
    elag_layer_kind type;
    char name[ELAG_NAME_LEN]; /* "fc1", ...; generated as <type><index> when absent */
    int out_features;         /* linear */
    int out_channels;         /* conv2d */
    int kernel[2];            /* conv2d, maxpool, avgpool: (h, w); YAML: 3 or [3, 3] */
    int stride[2];            /* conv2d default 1; pools default = kernel */
    int padding[2];           /* conv2d, pools: zero padding per side, default 0 */
    int bias;                 /* linear, conv2d: default 1 */
    int prunable;             /* linear, conv2d: default 1 */
    double momentum;          /* batchnorm: running-average factor, default 0.1 */
    double eps;               /* batchnorm: default 1e-5 */
    double p;                 /* dropout: drop probability, default 0.5 */
} elag_layer_config;

typedef enum elag_optimizer_kind { ELAG_OPTIMIZER_SGD = 0, ELAG_OPTIMIZER_ADAMW = 1 } elag_optimizer_kind;
/* train.sparse_compute: when a masked linear layer trains on its sparse pattern
 * (host/train/sparse_step.h): auto below a measured density, on always, off never. */
typedef enum elag_sparse_compute {
    ELAG_SPARSE_COMPUTE_AUTO = 0,
    ELAG_SPARSE_COMPUTE_ON = 1,
    ELAG_SPARSE_COMPUTE_OFF = 2
} elag_sparse_compute;

typedef enum elag_lr_schedule_kind {
    ELAG_LR_SCHEDULE_CONSTANT = 0,
    ELAG_LR_SCHEDULE_STEP = 1,
    ELAG_LR_SCHEDULE_COSINE = 2
} elag_lr_schedule_kind;

typedef enum elag_prune_method {
    ELAG_PRUNE_METHOD_NONE = 0,
    ELAG_PRUNE_METHOD_ONESHOT = 1,
    ELAG_PRUNE_METHOD_GMP = 2,
    ELAG_PRUNE_METHOD_ITERATIVE = 3, /* k rounds with geometric targets (prune/schedule.h) */
    ELAG_PRUNE_METHOD_RIGL = 4,      /* dynamic sparse training (prune/dst.h) */
    ELAG_PRUNE_METHOD_SET = 5
} elag_prune_method;

/* Score functions (host/prune/criterion.c holds one table entry per value). */
typedef enum elag_prune_criterion {
    ELAG_PRUNE_CRITERION_MAGNITUDE = 0,
    ELAG_PRUNE_CRITERION_RANDOM = 1,
    ELAG_PRUNE_CRITERION_TAYLOR = 2,
    ELAG_PRUNE_CRITERION_SNIP = 3,
    ELAG_PRUNE_CRITERION_MOVEMENT = 4,
    ELAG_PRUNE_CRITERION_SOFT_MOVEMENT = 5
} elag_prune_criterion;

typedef enum elag_prune_scope { ELAG_PRUNE_SCOPE_LAYER = 0, ELAG_PRUNE_SCOPE_GLOBAL = 1 } elag_prune_scope;

/* The selection pattern (host/prune/granularity.c holds one table entry per value). */
typedef enum elag_prune_granularity {
    ELAG_PRUNE_GRANULARITY_ELEMENT = 0, /* any weight */
    ELAG_PRUNE_GRANULARITY_NM = 1,      /* N of every M consecutive inputs kept */
    ELAG_PRUNE_GRANULARITY_BLOCK = 2,   /* (rows, cols) blocks of the (out, in) view */
    ELAG_PRUNE_GRANULARITY_NEURON = 3,  /* rows (outputs) */
    ELAG_PRUNE_GRANULARITY_CHANNEL = 4  /* conv filters (outputs): the same rows */
} elag_prune_granularity;

/* Per-tensor sparsity from the global target (host/prune/allocation.c). */
typedef enum elag_prune_distribution {
    ELAG_PRUNE_DISTRIBUTION_UNIFORM = 0,
    ELAG_PRUNE_DISTRIBUTION_ERK = 1 /* Erdos-Renyi-Kernel (Evci et al. 2020) */
} elag_prune_distribution;

/* Norm of a group's scores (block, neuron, channel). */
typedef enum elag_prune_norm { ELAG_PRUNE_NORM_L1 = 0, ELAG_PRUNE_NORM_L2 = 1 } elag_prune_norm;

#define ELAG_MAX_PRUNE_LAYERS 16

/* One prune.layers item: an override for the prunable layers whose name matches the glob
 * (fnmatch); the first item that matches a layer applies to it. Numbers not given are -1.
 * Unused items and bytes stay 0 (configs compare with memcmp). */
typedef struct elag_prune_layer_config {
    char name[ELAG_NAME_LEN]; /* glob over layer names: "fc1", "conv*", "fc[12]" */
    int exclude;              /* 1: the layer stays dense */
    double target;            /* its final sparsity (at prune.target), or -1 */
    double min, max;          /* bounds on the sparsity the allocation gives it, or -1 */
} elag_prune_layer_config;

/* A point in training given either as a step number or as a fraction of all steps. */
typedef struct elag_when {
    double value;    /* step (integer valued) or fraction in [0, 1] */
    int is_fraction; /* 1 when the YAML scalar had a '.' or exponent, e.g. 0.1 */
} elag_when;

typedef struct elag_config {
    char source[ELAG_PATH_LEN]; /* file it was read from */
    char name[ELAG_NAME_LEN];   /* default: the config file's base name without .yaml */
    uint64_t seed;              /* default 0 */
    char device[32];            /* auto | cpu | cpu-ref | cuda | cuda:N; default auto */

    struct {
        elag_dataset_kind dataset;   /* default fashion-mnist */
        char path[ELAG_PATH_LEN];    /* default /usr/share/datasets/fashion-mnist */
        long train_limit;            /* 0 = all */
        long test_limit;             /* 0 = all */
        double val_split;            /* fraction of train held out, [0, 0.5]; default 0 */
        int normalize;               /* default 1: (x/255 - mean) / std */
        double mean, std;            /* defaults 0.2860, 0.3530 (Fashion-MNIST train) */
        struct {
            long train, test;        /* defaults 2048, 512 */
            int features, classes;   /* defaults 32, 4 */
            double noise;            /* default 0.5 */
        } synthetic;
    } data;

    struct {
        char preset[ELAG_NAME_LEN]; /* "lenet-300-100", "lenet-5", "vgg-small" or "" */
        int n_layers;
        elag_layer_config layers[ELAG_MAX_LAYERS]; /* preset expanded here too */
    } model;

    struct {
        int epochs;            /* default 10 */
        int batch_size;        /* default 128 */
        int threads;           /* default 0 = all cores */
        int checkpoint_every;  /* epochs between checkpoints, 0 = only at the end */
        long checkpoint_steps; /* steps between checkpoints, 0 = off */
        int eval_every_epoch;  /* default 0: test set only at the end */
        int log_every;         /* steps between metrics lines, default 100 */
        elag_sparse_compute sparse_compute; /* default auto */
        char init_from[ELAG_PATH_LEN]; /* checkpoint whose weights start the run, or "" */
        struct {
            elag_optimizer_kind type; /* default sgd */
            double lr;                /* default 0.05 (sgd), 0.001 (adamw) */
            double momentum;          /* default 0.9 */
            double weight_decay;      /* default 0 (sgd), 0.01 (adamw) */
            int nesterov;             /* default 0 */
            double beta1, beta2, eps; /* defaults 0.9, 0.999, 1e-8 */
        } optimizer;
        struct {
            elag_lr_schedule_kind type; /* default constant */
            long warmup_steps;          /* default 0: linear warmup from 0 */
            long step_size;             /* step: decay every step_size steps */
            double gamma;               /* step: factor, default 0.1 */
            double min_lr;              /* cosine: floor, default 0 */
        } lr_schedule;
    } train;

    struct {
        int tf32; /* default 0: GEMMs in full FP32; 1 allows TF32 tensor cores */
    } cuda;

    struct {
        elag_prune_method method;       /* default none */
        elag_prune_criterion criterion; /* default magnitude */
        elag_prune_granularity granularity; /* default element */
        int n, m;                       /* N:M, defaults 2 and 4; 1 <= n < m */
        int block[2];                   /* (rows, cols) of a block, default (4, 4) */
        elag_prune_norm norm;           /* group score (block, neuron, channel), default l2 */
        elag_prune_scope scope;         /* default layer */
        elag_prune_distribution distribution; /* default uniform */
        double initial;                 /* s_i, default 0 */
        double target;                  /* s_f, default 0.9 */
        elag_when start;                /* t0, default 0 */
        elag_when end;                  /* last mask update, default 1.0 (fraction) */
        long frequency;                 /* dt in steps, default 100 */
        double exponent;                /* default 3 (Zhu & Gupta) */
        int keep_first_last;            /* default 0; 1: first and last prunable layers dense */
        double drop_fraction;           /* rigl, set: drop fraction at prune.start, default 0.3 */
        long rewind_step;               /* oneshot, iterative: rewind to step N, -1 = off */
        double taylor_beta;             /* taylor: EMA coefficient, default 0.9 */
        int snip_batches;               /* snip: batches scored at initialisation, default 1 */
        int n_layers;                   /* prune.layers items */
        elag_prune_layer_config layers[ELAG_MAX_PRUNE_LAYERS];
    } prune;
} elag_config;

/* Fills every default (a config with no keys set). ELAG_ERR_NOMEM when the default
 * model's preset cannot be expanded for lack of memory (the rest is filled, the model
 * is then empty). */
elag_status elag_config_defaults(elag_config *cfg);

/* Reads `path`, applies overrides ("key.path=value", n of them, may be NULL), resolves
 * defaults and presets, validates. Errors are ELAG_ERR_INPUT with a message like
 *   "configs/x.yaml:12:3: unknown key 'prune.targt' (did you mean 'prune.target'?)"
 *   "--set train.epochs=abc: 'train.epochs' expects an integer, got 'abc'"
 * (all formats: docs/config.md). "Not supported yet" values give ELAG_ERR_UNSUPPORTED. */
elag_status elag_config_load(const char *path, const char *const *overrides, int n_overrides,
                             elag_config *out);

/* Same from YAML text in memory; `origin` names it in messages. */
elag_status elag_config_parse(const char *yaml, size_t len, const char *origin,
                              const char *const *overrides, int n_overrides, elag_config *out);

/* Writes the resolved config as YAML into a malloc'd string (*out, caller frees). Parsing
 * that text again gives an equal config. */
elag_status elag_config_to_yaml(const elag_config *cfg, char **out);

/* 64-bit FNV-1a of elag_config_to_yaml's text, as 16 lowercase hex digits + NUL. */
elag_status elag_config_hash(const elag_config *cfg, char out[17]);

const char *elag_prune_method_name(elag_prune_method m);
const char *elag_prune_scope_name(elag_prune_scope s);
const char *elag_prune_criterion_name(elag_prune_criterion c);
const char *elag_prune_granularity_name(elag_prune_granularity g);
const char *elag_prune_distribution_name(elag_prune_distribution d);
const char *elag_prune_norm_name(elag_prune_norm n);

/* Index of the first prune.layers item whose glob matches layer `name`, or -1. */
int elag_config_prune_layer_match(const elag_config *cfg, const char *name);
const char *elag_optimizer_name(elag_optimizer_kind k);
const char *elag_lr_schedule_name(elag_lr_schedule_kind k);
const char *elag_dataset_name(elag_dataset_kind k);
const char *elag_layer_kind_name(elag_layer_kind k);

#endif /* ELAG_CONFIG_CONFIG_H */
