/*
 * Private pieces of the sweep module: a growable string, YAML nodes (the config module's
 * tree, which keeps line and column) written back as flow text for `--set`, and resolved
 * values as JSON for ledger rows (spec.c, values.c); a finished run's files read into its
 * ledger row (row.c, for run.c).
 */
#ifndef ELAG_SWEEP_SWEEP_INTERNAL_H
#define ELAG_SWEEP_SWEEP_INTERNAL_H

#include "config/config_internal.h"
#include "sweep/sweep.h"

#include <stddef.h>

typedef struct elag_sweep_buf {
    char *p;   /* NUL-terminated once anything was put; caller frees */
    size_t n, cap;
    int oom;   /* an allocation failed: the text is incomplete */
} elag_sweep_buf;

void elag_sweep_buf_put(elag_sweep_buf *b, const char *s, size_t len);
void elag_sweep_buf_puts(elag_sweep_buf *b, const char *s);

/* Appends node n as YAML flow text: plain scalars as written, quoted ones double-quoted
 * (escaped), lists as [a, b], mappings as {k: v}. */
void elag_sweep_flow(elag_sweep_buf *b, const elag_ynode *n);

/* A YAML node as JSON: plain scalars become numbers, booleans or null where they read
 * as such, else strings; quoted scalars strings; lists arrays; mappings objects.
 * NULL when out of memory. */
cJSON *elag_sweep_node_json(const elag_ynode *n);

/* The node at a dotted key ("train.optimizer.lr") of a mapping tree, or NULL. */
const elag_ynode *elag_sweep_resolved_get(const elag_ynode *root, const char *key);

/* ---- ledger rows of finished runs (row.c) ---- */

/* The row of a run: run_id, status ("ok", "failed", or "diverged" when the training
 * exited non-zero with a summary.json that says so), (not ok:) error and exit_code (>= 0)
 * or signal (term_signal > 0), (diverged:) diverged_step, diverged_epoch and
 * diverged_tensor, the swept values, `swept`, run_seconds, then (ok:) every field of
 * <dir>/summary.json and model_bytes. NULL when out of memory. */
cJSON *elag_sweep_row_make(const elag_sweep_run *run, const char *dir, int ok, const char *error,
                           int exit_code, int term_signal, double seconds);

/* Adds the figures of <dir>/infer.json, export (the sweep's export: "csr", "thin,dense",
 * ...), export_file_bytes (csr_file_bytes too for the default, unthinned CSR export) and
 * infer_seconds to an ok row, or infer_error when `error` is not empty or infer.json has
 * no figures. */
void elag_sweep_row_add_infer(cJSON *row, const elag_sweep *sw, const char *dir,
                              const char *error, double seconds);

/* "<what><last log line> (exit N)" or "<what>killed by signal N[; log: <line>]" for a
 * step that failed, from the last line of <dir>/log.txt. */
void elag_sweep_step_error(const char *dir, const char *what, int exit_code, int term_signal,
                           char *out, size_t size);

/* The device <dir>/summary.json names, or "" (out has `size` bytes). */
void elag_sweep_summary_device(const char *dir, char *out, size_t size);

#endif /* ELAG_SWEEP_SWEEP_INTERNAL_H */
