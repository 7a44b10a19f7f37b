/*
 * elag public API: sweeps, a grid of training runs described by one YAML file
 * (docs/sweeps.md). The library expands the file, keeps the ledger
 * (<out>/results.jsonl, one row per finished run), says which runs of a shard are still
 * to do, and names the command of each step of a run (`train`, then `export` and `infer`
 * for the inference figures). It never starts a process: the caller runs each command as
 * `<elag binary> argv...` (the `elag sweep` CLI forks them, N at a time) and hands back
 * how it ended, and the library writes the run's row.
 *
 *     elag_sweep_t *sw;                  elag_sweep_open(&sw, "sweep.yaml");
 *     elag_sweep_shard_t *sh;            elag_sweep_shard_open(&sh, sw, &shard_options);
 *     for each i < todo:  r = elag_sweep_shard_todo(sh, i);
 *         elag_sweep_shard_claim(sh, r, NULL, &claim, &job);   (TAKEN: job != NULL)
 *         do { run elag_sweep_job_command(job); elag_sweep_job_ended(job, ...); }
 *         while (state == ELAG_SWEEP_JOB_NEXT);
 *         elag_sweep_job_free(job);
 *     elag_sweep_shard_write_csv(sh);    elag_sweep_shard_free(sh);  elag_sweep_free(sw);
 */
#ifndef ELAG_INCLUDE_SWEEP_H
#define ELAG_INCLUDE_SWEEP_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the sweep file ---- */

/* A sweep file, expanded and validated (opaque). Free with elag_sweep_free. */
typedef struct elag_sweep elag_sweep_t;

/* Reads, expands and validates the sweep file at `path`: every run's config is resolved,
 * so an unknown key, a wrong type or an out-of-range value on any axis is
 * ELAG_ERR_INPUT "<sweep>:<line>:<col>: <axis>: <what>". Runs that resolve to the config
 * of an earlier one are dropped (elag_sweep_dropped). The caller owns *out. */
elag_status elag_sweep_open(elag_sweep_t **out, const char *path);

void elag_sweep_free(elag_sweep_t *sw); /* NULL does nothing */

const char *elag_sweep_path(const elag_sweep_t *sw); /* the sweep file */
const char *elag_sweep_base(const elag_sweep_t *sw); /* its base config, resolved */
const char *elag_sweep_name(const elag_sweep_t *sw); /* `name:` or the file's stem */
int elag_sweep_run_count(const elag_sweep_t *sw);
int elag_sweep_dropped(const elag_sweep_t *sw);     /* entries dropped as duplicates */
int elag_sweep_sets_device(const elag_sweep_t *sw); /* 1: `device` is set or swept */

/* Run r (0 <= r < elag_sweep_run_count, in expansion order): its id, the first 12 hex
 * digits of its resolved config's hash (its folder is <out>/runs/<id>). */
const char *elag_sweep_run_id(const elag_sweep_t *sw, int r);

/* Run r's "key=value" overrides in the order they apply (*n_sets of them): those of the
 * file's `set:` first, then from *first_axis_set on those of the axes (grid, zip, runs).
 * first_axis_set may be NULL. Valid while sw is open. */
const char *const *elag_sweep_run_sets(const elag_sweep_t *sw, int r, int *n_sets,
                                       int *first_axis_set);

/* 1 when run index r belongs to shard `shard` of n_shards (r % n_shards == shard). */
int elag_sweep_in_shard(int r, int shard, int n_shards);

/* Parses "I/N" (0 <= I < N); 0 ok, -1 malformed. */
int elag_sweep_parse_shard(const char *s, int *shard, int *n_shards);

/* Usable cores: SLURM_CPUS_PER_TASK when set, else the process's CPU affinity mask. */
int elag_sweep_cores(void);

/* ---- output folder and ledger ---- */

/* Creates out_dir and writes a copy of the sweep file into out_dir/sweep.yaml (atomically),
 * to keep it beside its results. */
elag_status elag_sweep_copy_file(const elag_sweep_t *sw, const char *out_dir);

/* A ledger as read (opaque): one row per run id; an ok row wins over a failed one,
 * otherwise the last row of a run id wins. */
typedef struct elag_sweep_ledger elag_sweep_ledger_t;

/* Reads <out_dir>/results.jsonl; a missing file is an empty ledger. The caller owns *out. */
elag_status elag_sweep_ledger_open(elag_sweep_ledger_t **out, const char *out_dir);

void elag_sweep_ledger_free(elag_sweep_ledger_t *l); /* NULL does nothing */

/* The status the row of run_id (elag_sweep_run_id) gives: "ok", "failed", "diverged" (a
 * failed run whose training met a NaN or Inf), or "" when it
 * names none; NULL when the ledger has no row for run_id. Valid while l is open. */
const char *elag_sweep_ledger_status(const elag_sweep_ledger_t *l, const char *run_id);

/* Merges the ledgers of `dirs` (and out_dir's own, if any) into out_dir: results.jsonl,
 * results.csv, and the run folders copied to out_dir/runs/<id>/ where missing. *n_rows
 * (may be NULL) gets the number of runs in the merged ledger. */
elag_status elag_sweep_collect(const char *const *dirs, int n_dirs, const char *out_dir,
                               int *n_rows);

/* Writes <dir>/report/summary.md, summary.csv and layers.csv from <dir>/results.jsonl.
 * `plots` (may be NULL) lists n_plots PNG file names in <dir>/report/ to link from
 * summary.md; `plots_note` (may be NULL) is a sentence about the plots (why they were not
 * drawn). *n_ok and *n_failed (may be NULL) get the run counts. */
elag_status elag_sweep_report(const char *dir, const char *const *plots, int n_plots,
                              const char *plots_note, int *n_ok, int *n_failed);

/* ---- running one shard ---- */

/* The runs of one shard that the ledger does not hold yet (opaque). */
typedef struct elag_sweep_shard elag_sweep_shard_t;

#define ELAG_SWEEP_SHARD_OPTIONS_VERSION 1

typedef struct elag_sweep_shard_options {
    unsigned int version; /* ELAG_SWEEP_SHARD_OPTIONS_VERSION */
    const char *out_dir;  /* the ledger and runs/ live here (required) */
    int threads;          /* train.threads (and OMP_NUM_THREADS) of each run, >= 1, unless
                           * the sweep sets train.threads itself */
    int shard, n_shards;  /* the runs with index % n_shards == shard */
    int retry_failed;     /* 1: runs whose row says failed are to do again */
    int no_infer;         /* 1: no export and inference timing after training */
} elag_sweep_shard_options;

#define ELAG_SWEEP_SHARD_OPTIONS_INIT                                                              \
    {                                                                                              \
        ELAG_SWEEP_SHARD_OPTIONS_VERSION, NULL, 1, 0, 1, 0, 0                                      \
    }

/* Fills *opts with the defaults of `version`; ELAG_ERR_USAGE for an unknown version. */
elag_status elag_sweep_shard_options_init(elag_sweep_shard_options *opts, unsigned int version);

/* Creates <out_dir>/runs/ and reads the ledger. sw must outlive the shard. The caller
 * owns *out. */
elag_status elag_sweep_shard_open(elag_sweep_shard_t **out, const elag_sweep_t *sw,
                                  const elag_sweep_shard_options *opts);

void elag_sweep_shard_free(elag_sweep_shard_t *sh); /* NULL does nothing */

/* Runs of the shard: *total in all, *done with an ok row, *failed with a failed row that
 * is not retried, *todo the others (each may be NULL). */
void elag_sweep_shard_counts(const elag_sweep_shard_t *sh, int *total, int *done, int *failed,
                             int *todo);

/* The run index (into sw) of the i-th run to do, 0 <= i < *todo, in expansion order. */
int elag_sweep_shard_todo(const elag_sweep_shard_t *sh, int i);

/* Re-reads the ledger and writes <out_dir>/results.csv from all of it (every shard's rows
 * that are there by now), atomically. */
elag_status elag_sweep_shard_write_csv(elag_sweep_shard_t *sh);

/* A run claimed by this process, on its way through its steps (opaque). */
typedef struct elag_sweep_job elag_sweep_job_t;

typedef enum elag_sweep_claim {
    ELAG_SWEEP_CLAIM_TAKEN, /* the job holds the run; its command is the train step */
    ELAG_SWEEP_CLAIM_DONE,  /* an ok row landed since the shard read the ledger */
    ELAG_SWEEP_CLAIM_HELD   /* another sweep process holds the run */
} elag_sweep_claim;

/* Claims run r (an index into sw) of the shard: creates <out_dir>/runs/<id>/, takes its
 * .lock without waiting (two sweep processes never run one id at once), re-reads the
 * ledger, and makes the train command (with `--device device` unless device is NULL).
 * *job is the claimed job when *claim is ELAG_SWEEP_CLAIM_TAKEN, else NULL. The caller
 * owns *job (elag_sweep_job_free). */
elag_status elag_sweep_shard_claim(elag_sweep_shard_t *sh, int r, const char *device,
                                   elag_sweep_claim *claim, elag_sweep_job_t **job);

/* Releases the run's lock (if still held) and frees the job. NULL does nothing. */
void elag_sweep_job_free(elag_sweep_job_t *job);

/* The run (an index into sw) the job works on. */
int elag_sweep_job_run(const elag_sweep_job_t *job);

#define ELAG_SWEEP_COMMAND_VERSION 1

/* One command to run as `<elag binary> argv[0] argv[1] ...`, with stdin from /dev/null,
 * stderr into `log`, stdout into `stdout_path` (or into `log` when it is ""). */
typedef struct elag_sweep_command {
    unsigned int version;    /* ELAG_SWEEP_COMMAND_VERSION of the library that filled it */
    const char *const *argv; /* NULL-terminated; argv[0] is the subcommand ("train") */
    const char *log;         /* <out>/runs/<id>/log.txt */
    int log_append;          /* 0: truncate the log first (train); 1: append */
    const char *stdout_path; /* <out>/runs/<id>/infer.json for infer, else "" */
    int omp_threads;         /* > 0: set OMP_NUM_THREADS to it; 0: leave it alone */
} elag_sweep_command;

/* The command of the job's current step; its strings are valid until the job's next call
 * to elag_sweep_job_ended or elag_sweep_job_not_started, or until it is freed. */
void elag_sweep_job_command(const elag_sweep_job_t *job, elag_sweep_command *out);

typedef enum elag_sweep_job_state {
    ELAG_SWEEP_JOB_NEXT,   /* the job's command is the run's next step: run it */
    ELAG_SWEEP_JOB_OK,     /* the run's ok row was appended to the ledger */
    ELAG_SWEEP_JOB_FAILED, /* its failed row was appended; elag_sweep_job_error says why */
    ELAG_SWEEP_JOB_DROPPED /* no row: the sweep is stopping and the run did not finish;
                            * a later sweep redoes it */
} elag_sweep_job_state;

/* The job's command ended: it exited with exit_code (>= 0), or was killed by term_signal
 * (exit_code -1). `seconds`: wall time since the run's first step started. `stopping`:
 * the sweep was asked to stop, so no further step starts. After training ok the job goes
 * on with export, then infer (unless no_infer); a failed export or infer keeps the run ok
 * with `infer_error` in its row. In every state but NEXT the run is over and its lock
 * released (the job still needs elag_sweep_job_free). An error status means the row could
 * not be appended (*state is set all the same). */
elag_status elag_sweep_job_ended(elag_sweep_job_t *job, int exit_code, int term_signal,
                                 double seconds, int stopping, elag_sweep_job_state *state);

/* The job's command could not be started; `why` says why. For export or infer the run is
 * recorded ok with infer_error "<step>: <why>"; for train the run is released and the
 * error returned (*state ELAG_SWEEP_JOB_DROPPED). */
elag_status elag_sweep_job_not_started(elag_sweep_job_t *job, const char *why,
                                       elag_sweep_job_state *state);

/* Why the run failed (after ELAG_SWEEP_JOB_FAILED), or "". */
const char *elag_sweep_job_error(const elag_sweep_job_t *job);

#ifdef __cplusplus
}
#endif

#endif /* ELAG_INCLUDE_SWEEP_H */
