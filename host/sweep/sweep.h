/*
 * Sweeps: a grid of training runs described by one YAML file (docs/sweeps.md).
 *
 *   spec.c    sweep file -> the expanded, validated list of runs, each with a stable id
 *             (the resolved config's hash) and the `--set` overrides that make it;
 *   ledger.c  <out>/results.jsonl: one JSON row per finished run, appended in one
 *             write(2) under flock so workers, shards and crashes never tear or mix
 *             rows; readers take one row per run id; results.csv; merging ledgers;
 *   runner.c  runs as child processes of the elag binary (`elag train ... --out
 *             <out>/runs/<id>`, then `elag export --format csr` and `elag infer --json`
 *             for the ledger's inference figures), N at a time, so a crash in one never
 *             stops the sweep;
 *   report.c  ledger -> tables (summary.md, summary.csv, layers.csv).
 * The CLI (host/cli/cmd_sweep.c, cmd_report.c) parses arguments and prints progress.
 */
#ifndef ELAG_SWEEP_SWEEP_H
#define ELAG_SWEEP_SWEEP_H

#include "config/config.h"
#include "elag/elag.h"

#include <cjson/cJSON.h>

#define ELAG_SWEEP_ID_LEN 12       /* hex digits of the config hash that name a run */
#define ELAG_SWEEP_MAX_RUNS 100000 /* larger expansions are refused (a typo, most likely) */

typedef struct elag_sweep_run {
    char id[ELAG_SWEEP_ID_LEN + 1]; /* first 12 hex digits of elag_config_hash */
    int index;                      /* position in the expansion order, 0-based */
    int n_sets;                     /* overrides in the order they apply */
    char **sets;                    /* "key=value": set: first, then grid, zip, runs */
    int first_axis_set;             /* sets[first_axis_set..n_sets) come from the axes */
    cJSON *values;                  /* object: every swept key -> its value in this run */
} elag_sweep_run;

typedef struct elag_sweep {
    char path[ELAG_PATH_LEN];     /* the sweep file */
    char base[2 * ELAG_PATH_LEN]; /* base config, resolved against the sweep file's folder */
    char name[ELAG_NAME_LEN];     /* `name:` or the file's stem; default out runs/sweep-<name> */
    int sets_threads;             /* train.threads is named in set: or on an axis */
    int sets_device;              /* device is named in set: or on an axis */
    int n_keys;                   /* swept keys (on an axis), in file order */
    char **keys;
    int n_dropped;                /* expansion entries dropped as duplicates of earlier ones */
    int n_runs;
    elag_sweep_run *runs;         /* n_runs, in expansion order, ids unique */
} elag_sweep;

/* Reads, expands and validates a sweep file: every run's config is resolved through
 * elag_config_load(base, overrides), so an unknown key, a wrong type or an out-of-range
 * value on any axis is reported as "<sweep>:<line>:<col>: <axis>: <what>" (ELAG_ERR_INPUT).
 * Runs that resolve to the same config as an earlier one are dropped (n_dropped).
 * The caller frees *out with elag_sweep_free. */
elag_status elag_sweep_load(const char *path, elag_sweep **out);
void elag_sweep_free(elag_sweep *sw);

/* 1 when the run at expansion index `index` belongs to shard i of n (index % n == i). */
int elag_sweep_in_shard(int index, int shard, int n_shards);

/* Parses "I/N" (0 <= I < N); 0 ok, -1 malformed. */
int elag_sweep_parse_shard(const char *s, int *shard, int *n_shards);

/* ---- ledger (ledger.c) ---- */

/* One row per run id, in order of first appearance. An ok row wins over a failed one;
 * otherwise the last row of a run id wins. */
typedef struct elag_ledger {
    int n;
    cJSON **rows;   /* owned */
    int n_lines;    /* complete lines read */
    int n_bad;      /* complete lines that were not a JSON object with a run_id (skipped) */
    int torn_tail;  /* the file ended in a partial line (a writer died mid-write; ignored) */
    long long consumed; /* bytes of the file read, through the last complete line */
    int *slots;     /* private: open-addressing index of rows by run_id */
    int cap_rows, n_slots;
} elag_ledger;

/* Reads a ledger; a missing file gives an empty ledger. */
elag_status elag_ledger_read(const char *path, elag_ledger *out);
/* Reads the lines appended since l was read (all of it again if the file shrank). */
elag_status elag_ledger_refresh(const char *path, elag_ledger *l);
void elag_ledger_free(elag_ledger *l);
/* The row of run_id, or NULL. */
const cJSON *elag_ledger_find(const elag_ledger *l, const char *run_id);
/* Adds a row in memory with the dedupe rule above (takes ownership of row). */
elag_status elag_ledger_add(elag_ledger *l, cJSON *row);
/* "ok", "failed" or "" for a row. */
const char *elag_ledger_status(const cJSON *row);

/* Appends row to <dir>/results.jsonl as one line in one write(2), holding an exclusive
 * flock on <dir>/results.lock; a partial last line left by a killed writer is cut off
 * first, so it can never glue onto the new row. */
elag_status elag_ledger_append(const char *dir, const cJSON *row);
/* Rewrites <dir>/results.jsonl atomically with the rows of l (under the same lock). */
elag_status elag_ledger_rewrite(const char *dir, const elag_ledger *l);
/* Writes l as CSV (one row per run; columns run_id, status, the swept keys, then every
 * other scalar field in order of first appearance) atomically to path. */
elag_status elag_ledger_write_csv(const elag_ledger *l, const char *path);

/* Merges the ledgers of `dirs` (and out_dir's own, if any) into out_dir: results.jsonl,
 * results.csv, and the run folders copied to out_dir/runs/<id>/ where missing.
 * *n_rows gets the number of runs in the merged ledger. */
elag_status elag_ledger_collect(const char *const *dirs, int n_dirs, const char *out_dir,
                                int *n_rows);

/* ---- runner (runner.c) ---- */

typedef struct elag_sweep_progress {
    int total;          /* runs of this shard */
    int done;           /* finished ok, including those already in the ledger */
    int failed;         /* finished with an error (in this session or in the ledger) */
    int running;
    int elsewhere;      /* held by another sweep process (run lock busy) */
    double eta_seconds; /* -1 when unknown */
    /* the event: NULL for a periodic tick, else "start", "ok" or "failed" */
    const char *event;
    const elag_sweep_run *run; /* the event's run */
    const char *error;         /* "failed": the reason */
    double run_seconds;        /* "ok" / "failed": wall time of the run */
} elag_sweep_progress;

typedef void (*elag_sweep_progress_fn)(const elag_sweep_progress *p, void *user);

typedef struct elag_sweep_exec_options {
    const char *out_dir;        /* ledger and runs/ live here */
    const char *exe;            /* the elag binary to run (e.g. "/proc/self/exe") */
    int jobs;                   /* concurrent runs, >= 1 */
    int threads;                /* train.threads per run, >= 1 (unless the sweep sets it) */
    const char *const *devices; /* device per worker slot, round-robin; NULL: the config's */
    int n_devices;
    int shard, n_shards;        /* this process runs index % n_shards == shard */
    int retry_failed;           /* rerun runs whose ledger row says failed */
    int no_infer;               /* 0: after training ok, export CSR and time `elag infer` */
    elag_sweep_progress_fn progress; /* may be NULL */
    void *progress_user;
    double tick_seconds;        /* periodic progress ticks (0: none) */
} elag_sweep_exec_options;

typedef struct elag_sweep_outcome {
    int total, ran, ok, failed, skipped, elsewhere;
    int interrupted; /* the signal (SIGINT, SIGTERM, SIGHUP) that stopped the sweep, or 0 */
} elag_sweep_outcome;

/* Runs the runs of the shard that the ledger does not hold yet; writes results.csv at
 * the end. Returns ELAG_OK also when runs failed (see out->failed); an error status
 * only when the sweep itself could not go on. */
elag_status elag_sweep_execute(const elag_sweep *sw, const elag_sweep_exec_options *opt,
                               elag_sweep_outcome *out);

/* Usable cores: SLURM_CPUS_PER_TASK when set, else the CPU affinity mask. */
int elag_sweep_cores(void);

/* ---- report (report.c) ---- */

/* Writes <dir>/report/summary.md, summary.csv and layers.csv from <dir>/results.jsonl.
 * `plots` (may be NULL) lists PNG file names in <dir>/report/ to link from summary.md;
 * `plots_note` (may be NULL) is a sentence about plots (e.g. why they were skipped).
 * *n_ok / *n_failed (may be NULL) get the run counts. */
elag_status elag_sweep_report(const char *dir, const char *const *plots, int n_plots,
                              const char *plots_note, int *n_ok, int *n_failed);

#endif /* ELAG_SWEEP_SWEEP_H */
