/*
 * elag public API: training. elag_run_train does what `elag train CONFIG --out DIR` does:
 * reads and validates the YAML config (docs/config.md), opens its device, loads its data,
 * then (only then, so bad input never changes an existing run) trains and prunes the model
 * into the run folder: config.yaml, metrics.jsonl, summary.json and model.safetensors.
 * elag_run_eval (`elag eval`) evaluates such a checkpoint on its test set; elag/export.h
 * (`elag export`) turns it into a file elag/model.h reads.
 */
#ifndef ELAG_INCLUDE_TRAIN_H
#define ELAG_INCLUDE_TRAIN_H

#include "common.h"
#include "model.h"

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ELAG_RUN_PROGRESS_VERSION 1

/* Where a run stands, passed to elag_run_options.progress every train.log_every steps and
 * at the end of each epoch. */
typedef struct elag_run_progress {
    unsigned int version;  /* ELAG_RUN_PROGRESS_VERSION of the library that filled it */
    int epoch, epochs;     /* 1-based epoch in progress, of epochs */
    long step, steps;      /* optimizer steps done, of steps */
    double loss, accuracy; /* training loss and accuracy since the last report */
    double sparsity;       /* fraction of zeros among the prunable weights */
    double lr;             /* learning rate */
    double samples_per_second, eta_seconds;
    int epoch_end;        /* 1 on the report that closes an epoch */
    double val_accuracy;  /* at epoch ends with a validation split, else -1 */
    double test_accuracy; /* at epoch ends when train.eval_every_epoch, else -1 */
} elag_run_progress;

typedef void (*elag_run_progress_fn)(const elag_run_progress *p, void *user);

/* Version 2 added `note`, version 3 `interrupt`; older (shorter) structs are still
 * accepted. */
#define ELAG_RUN_OPTIONS_VERSION 3

typedef struct elag_run_options {
    unsigned int version;         /* ELAG_RUN_OPTIONS_VERSION */
    const char *device;           /* overrides the config's `device` (NULL: keep it) */
    const char *const *overrides; /* n_overrides "key.path=value" strings, like --set */
    int n_overrides;
    int force;                     /* 1: overwrite a run folder that is not empty */
    int resume;                    /* 1: continue the run in out_dir from its checkpoint
                                    * (config_path NULL: out_dir/config.yaml) */
    elag_run_progress_fn progress; /* may be NULL */
    void *progress_user;           /* passed to progress and note */
    elag_note_fn note;             /* version 2: what "auto" chose, once the device is open
                                    * and before any data is read; may be NULL */
    const volatile sig_atomic_t *interrupt; /* version 3: a flag a signal handler sets (may
                                    * be NULL). Once nonzero, training writes a checkpoint
                                    * at the next step boundary and the call returns
                                    * ELAG_ERR_INTERRUPTED; `resume` continues from there. */
} elag_run_options;

#define ELAG_RUN_OPTIONS_INIT                                                                      \
    {                                                                                              \
        ELAG_RUN_OPTIONS_VERSION, NULL, NULL, 0, 0, 0, NULL, NULL, NULL, NULL                      \
    }

/* Fills *opts with the defaults of `version`; ELAG_ERR_USAGE for an unknown version. */
elag_status elag_run_options_init(elag_run_options *opts, unsigned int version);

#define ELAG_RUN_RESULT_VERSION 1

/* What a finished run reports (summary.json has the same figures and the per-layer ones). */
typedef struct elag_run_result {
    unsigned int version; /* set by the caller: ELAG_RUN_RESULT_VERSION */
    char name[64];        /* the config's name */
    char device[32];      /* the device it ran on ("cpu", "cuda:0") */
    char config_hash[17]; /* 16 hex digits of the resolved config */
    long steps;           /* optimizer steps */
    double test_accuracy, test_loss;
    double val_accuracy; /* -1 without a validation split */
    int64_t params_total, params_prunable, params_nonzero;
    double sparsity; /* zeros / prunable weights */
    double train_seconds, samples_per_second, mask_update_seconds;
    long mask_updates;
} elag_run_result;

#define ELAG_RUN_RESULT_INIT                                                                       \
    {                                                                                              \
        ELAG_RUN_RESULT_VERSION, "", "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0                    \
    }

/* Trains the config at config_path into out_dir (NULL: runs/<name>). out_dir must be
 * missing or empty unless opts->force or opts->resume. opts NULL: the defaults. result
 * (may be NULL) receives the summary. ELAG_ERR_INPUT for a bad config, dataset, run
 * folder or (resume) checkpoint, or a resumed config changed in a key that may not change
 * (docs/config.md), ELAG_ERR_NO_DEVICE for a missing device; nothing is written then.
 * ELAG_ERR_DIVERGED when the loss, a gradient or a weight stops being finite (the last
 * checkpoint is kept, summary.json says "status": "diverged"); ELAG_ERR_INTERRUPTED after
 * the checkpoint an interrupt asked for (the message ends with the resume command). */
elag_status elag_run_train(const char *config_path, const char *out_dir,
                           const elag_run_options *opts, elag_run_result *result);

/* ---- evaluating a checkpoint ---- */

#define ELAG_EVAL_OPTIONS_VERSION 1

typedef struct elag_eval_options {
    unsigned int version; /* ELAG_EVAL_OPTIONS_VERSION */
    const char *device;   /* "auto" (also when NULL), "cpu", "cpu-ref", "cuda", "cuda:N";
                           * CPU threads: the checkpoint config's train.threads */
    elag_note_fn note;    /* what "auto" chose, before the test set is read; may be NULL */
    void *note_user;      /* passed to note */
} elag_eval_options;

#define ELAG_EVAL_OPTIONS_INIT                                                                     \
    {                                                                                              \
        ELAG_EVAL_OPTIONS_VERSION, NULL, NULL, NULL                                                \
    }

/* Fills *opts with the defaults of `version`; ELAG_ERR_USAGE for an unknown version. */
elag_status elag_eval_options_init(elag_eval_options *opts, unsigned int version);

#define ELAG_EVAL_RESULT_VERSION 1
#define ELAG_EVAL_MAX_WEIGHTS 32 /* prunable weights a result lists (a model has fewer) */

typedef struct elag_eval_result {
    unsigned int version; /* set by the caller: ELAG_EVAL_RESULT_VERSION */
    char device[32];      /* the device it ran on ("cpu", "cuda:0") */
    double test_accuracy, test_loss;
    double samples_per_second; /* test samples / evaluation wall time */
    double sparsity;           /* zeros / prunable weights */
    int64_t params_total, params_prunable, params_nonzero;
    int n_weights; /* the prunable weights, in graph order (format "dense") */
    elag_weight_info weights[ELAG_EVAL_MAX_WEIGHTS];
} elag_eval_result;

#define ELAG_EVAL_RESULT_INIT                                                                      \
    {                                                                                              \
        ELAG_EVAL_RESULT_VERSION, "", 0, 0, 0, 0, 0, 0, 0, 0,                                      \
        {                                                                                          \
            { "", 0, {0, 0, 0, 0}, 0, 0, 0, 0, "", 0 }                                             \
        }                                                                                          \
    }

/* `elag eval`: rebuilds the model of the checkpoint at `path` (a run's model.safetensors)
 * from the config stored in it, and evaluates it on that config's test set: accuracy,
 * loss, throughput, and the sparsity of every prunable weight. opts NULL: the defaults.
 * ELAG_ERR_INPUT for a bad checkpoint or test set, ELAG_ERR_NO_DEVICE for a missing
 * device. */
elag_status elag_run_eval(const char *path, const elag_eval_options *opts,
                          elag_eval_result *result);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_TRAIN_H */
