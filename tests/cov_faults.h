/*
 * The fault-injection harness of tests/test_cov_faults*.c (tests/cov_faults.c says how it
 * works): a sweep over every call site an operation reaches, each failing once in a child
 * process, plus the small configs and trained runs the operations start from.
 */
#ifndef ELAG_TESTS_COV_FAULTS_H
#define ELAG_TESTS_COV_FAULTS_H

#include "elag/elag.h"

#include <stddef.h>

/* One run of the operation under test; `iter` names its output paths apart (-1: the
 * counting run). Returns its status; frees everything it made. Runs in a child process,
 * so it reports failures by status (elag_fail), never by a Criterion assertion. */
typedef elag_status (*elag_fault_op)(const char *arg, int iter);

/* The suite's temporary folder (made by elag_fault_setup, removed by _teardown): each
 * file's TestSuite(..., .init = elag_fault_setup, .fini = elag_fault_teardown). */
extern char *elag_fault_dir;
void elag_fault_setup(void);
void elag_fault_teardown(void);

/* Turns the injector off and returns its mode, for elag_fault_resume. */
int elag_fault_pause(void);
void elag_fault_resume(int mode);

/* Runs `stmt` with the injector off (the test's own cleanup is not under test). */
#define QUIET(stmt)                                                                                \
    do {                                                                                           \
        int mode_ = elag_fault_pause();                                                            \
        stmt;                                                                                      \
        elag_fault_resume(mode_);                                                                  \
    } while (0)

/* op(arg) must succeed (a preparation step, run in a child like the rest). */
void elag_fault_child_ok(elag_fault_op op, const char *arg);

/* Runs op once counting, then once per call site with that site's first call failing:
 * a backend op's failure must come back as the op's status with the injected message
 * (never swallowed, never replaced); a C library failure (allocation, file) must come
 * back as ELAG_ERR_NOMEM, ELAG_ERR_IO or ELAG_ERR_INPUT, or be one the code ignores on
 * purpose (best-effort cleanup, a fallback), counted in the log. Nothing may crash. A
 * site is the last `depth` callers of the failing call (1: its caller only, which is
 * elag_fault_sweep). Returns the number of sites. */
int elag_fault_sweep_depth(const char *what, elag_fault_op op, const char *arg, int depth);
int elag_fault_sweep(const char *what, elag_fault_op op, const char *arg);

/* out = <dir>/<name><iter + 1> */
void elag_fault_path_of(char *out, size_t size, const char *name, int iter);

/* Small configs on cpu-ref with one thread: an MLP with batch norm, dropout, AdamW and
 * GMP; RigL with SGD; a conv net pruned by channel (synthetic features as a (1, 1, 6)
 * image). */
extern const char elag_fault_mlp_yaml[], elag_fault_rigl_yaml[], elag_fault_conv_yaml[];

/* Trains <dir>/NAME.yaml into <dir>/NAME (an elag_fault_op). */
elag_status elag_fault_train_named(const char *name, int iter);

/* Writes `yaml` as <dir>/NAME.yaml and trains it without faults into <dir>/NAME; the
 * checkpoint's path into ckpt. */
void elag_fault_trained(const char *name, const char *yaml, char *ckpt, size_t size);

/* spec "NAME FORMAT": <dir>/NAME/model.safetensors exported as FORMAT to <dir>/NAME.export
 * (an elag_fault_op). */
elag_status elag_fault_export_named(const char *spec, int iter);

#endif
