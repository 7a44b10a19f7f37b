/*
 * Sweeps: a grid of training runs described by one YAML file (docs/sweeps.md).
 *
 *   spec.c    sweep file -> the expanded, validated list of runs, each with a stable id
 *             (the resolved config's hash) and the `--set` overrides that make it;
 *   ledger.c  <out>/results.jsonl: one JSON row per finished run, appended in one
 *             write(2) under flock so workers, shards and crashes never tear or mix
 *             rows; readers take one row per run id; results.csv; merging ledgers;
 *   run.c     what each run needs, short of running it: which runs of a shard the
 *             ledger does not hold yet, claiming one (its folder and .lock), the command
 *             line of each step (`train`, then `export --format csr` and `infer --json`
 *             for the ledger's inference figures), and a finished step turned into the
 *             next step or the run's ledger row (row.c reads summary.json and infer.json);
 *   report.c  ledger -> tables (summary.md, summary.csv, layers.csv).
 * Processes are not the library's business: it never forks, waits or signals, and does
 * not know where the elag binary is. The CLI runs the commands (host/cli/sweep_runner.c:
 * N at a time, device round-robin, stop on signals, children that die with the sweep),
 * parses arguments and prints progress (host/cli/cmd_sweep.c, cmd_report.c), through the
 * public half of this module (include/elag/sweep.h, host/api/sweep.c): the sweep, the
 * shard (a queue) and the job are its handles there.
 */
#ifndef ELAG_SWEEP_SWEEP_H
#define ELAG_SWEEP_SWEEP_H

#include "config/config.h"
#include "elag/elag.h"
#include "elag/sweep.h" /* the public half: handles, enums, what the CLI calls */

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
    char export_format[16];       /* export: format: for the inference figures (csr default) */
    int export_thin;              /* export: thin: true: `elag export --thin` first */
    char export_file[64];         /* the export's file name in a run folder, from the two */
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
/* elag_sweep_free, elag_sweep_in_shard, elag_sweep_parse_shard: include/elag/sweep.h. */

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
/* "ok", "failed", "diverged" or "" for a row. */
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

/* ---- runs (run.c) ---- */

/* The runs of one shard that the ledger <out_dir>/results.jsonl does not hold yet. */
typedef struct elag_sweep_queue_options {
    const char *out_dir;  /* ledger and runs/ live here; kept by the caller while the queue is */
    int threads;          /* train.threads (and OMP_NUM_THREADS) per run, >= 1, unless the
                           * sweep sets train.threads itself */
    int shard, n_shards;  /* the runs with index % n_shards == shard */
    int retry_failed;     /* runs whose ledger row says failed are to do again */
    int no_infer;         /* 0: after training ok, export CSR and time `elag infer` */
} elag_sweep_queue_options;

typedef struct elag_sweep_queue {
    const elag_sweep *sw;
    elag_sweep_queue_options o;
    int total;      /* runs of the shard */
    int done;       /* of them, with an ok row in the ledger */
    int failed;     /* of them, with a failed row that is not retried */
    int n_todo;     /* the others, in expansion order */
    int *todo;      /* n_todo indices into sw->runs */
    elag_ledger seen; /* the ledger as last read (re-read by each claim) */
} elag_sweep_queue;

/* Creates <out_dir>/runs/ and reads the ledger. The caller frees q with
 * elag_sweep_queue_free (also after an error). */
elag_status elag_sweep_queue_init(elag_sweep_queue *q, const elag_sweep *sw,
                                  const elag_sweep_queue_options *o);
/* Re-reads the ledger and writes <out_dir>/results.csv from all of it (every shard's
 * rows that are there by now). */
elag_status elag_sweep_queue_write_csv(elag_sweep_queue *q);
void elag_sweep_queue_free(elag_sweep_queue *q);

/* The steps of a run: train; then, unless no_infer, export and infer. */
typedef enum elag_sweep_step {
    ELAG_SWEEP_STEP_TRAIN,
    ELAG_SWEEP_STEP_EXPORT,
    ELAG_SWEEP_STEP_INFER
} elag_sweep_step;

/* One command for the caller to run as `<elag binary> argv[0] argv[1] ...`, with stdin
 * from /dev/null, stderr to `log`, stdout to `stdout_path` (or to `log` when it is ""). */
typedef struct elag_sweep_cmd {
    char **argv;     /* NULL-terminated, owned by the job; argv[0] is the subcommand */
    char log[ELAG_PATH_LEN + 96];         /* <run>/log.txt */
    int log_append;  /* 0: truncate the log first (train), 1: append (export, infer) */
    char stdout_path[ELAG_PATH_LEN + 96]; /* <run>/infer.json for infer, else "" */
    int omp_threads; /* > 0: the child's OMP_NUM_THREADS; 0: leave it alone */
} elag_sweep_cmd;

/* A claimed run on its way through its steps. */
typedef struct elag_sweep_job {
    elag_sweep_queue *q;
    int run;              /* index into q->sw->runs */
    elag_sweep_step step; /* what cmd does */
    elag_sweep_cmd cmd;   /* the step's command */
    char dir[ELAG_PATH_LEN + 64]; /* <out_dir>/runs/<id> */
    char device[64];      /* --device of the run ("" when none) */
    int lock_fd;          /* flock'ed <dir>/.lock; -1 when not held */
    double train_seconds; /* wall time of the train step */
    char error[512];      /* after ELAG_SWEEP_JOB_FAILED: why */
} elag_sweep_job;

/* Claims run `run` for a job: creates <out_dir>/runs/<id>/, takes its .lock without
 * waiting (so two sweep processes never run one id at once), re-reads the ledger (another
 * process may have finished the run), removes a stale summary.json, and makes the train
 * command: train <base> --set ... --out <dir> --force --quiet [--set train.threads=T]
 * [--device D]. `device` may be NULL (the config's). *claim (elag_sweep_claim, public)
 * says which case it was; only a taken job needs elag_sweep_job_ended or _release. */
elag_status elag_sweep_job_claim(elag_sweep_job *job, elag_sweep_queue *q, int run,
                                 const char *device, elag_sweep_claim *claim);

/* elag_sweep_job_state, elag_sweep_job_ended and elag_sweep_job_not_started (a step
 * ended, or could not start): include/elag/sweep.h. */

/* Releases the run's lock and the command; harmless on a released job. */
void elag_sweep_job_release(elag_sweep_job *job);

/* elag_sweep_cores: include/elag/sweep.h. */

/* ---- report (report.c) ---- */

/* elag_sweep_report (summary.md, summary.csv, layers.csv): include/elag/sweep.h. */

#endif /* ELAG_SWEEP_SWEEP_H */
