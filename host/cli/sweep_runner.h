/*
 * The process side of `elag sweep` (sweep_runner.c): runs the commands that the library's
 * sweep jobs name (include/elag/sweep.h) as child processes of the elag binary, N at a
 * time, and reports progress. cmd_sweep.c parses the arguments and prints.
 */
#ifndef ELAG_CLI_SWEEP_RUNNER_H
#define ELAG_CLI_SWEEP_RUNNER_H

#include "elag/sweep.h"

typedef struct elag_cli_sweep_progress {
    int total;          /* runs of this shard */
    int done;           /* finished ok, including those already in the ledger */
    int failed;         /* finished with an error (in this session or in the ledger) */
    int running;
    int elsewhere;      /* held by another sweep process (run lock busy) */
    double eta_seconds; /* -1 when unknown */
    /* the event: NULL for a periodic tick, else "start", "ok" or "failed" */
    const char *event;
    int run;                   /* the event's run (an index into the sweep), or -1 */
    const char *error;         /* "failed": the reason */
    double run_seconds;        /* "ok" / "failed": wall time of the run */
} elag_cli_sweep_progress;

typedef void (*elag_cli_sweep_progress_fn)(const elag_cli_sweep_progress *p, void *user);

typedef struct elag_cli_sweep_options {
    const char *out_dir;        /* ledger and runs/ live here */
    const char *exe;            /* the elag binary to run (e.g. "/proc/self/exe") */
    int jobs;                   /* concurrent runs, >= 1 */
    int threads;                /* train.threads per run, >= 1 (unless the sweep sets it) */
    const char *const *devices; /* device per job slot, round-robin; NULL: the config's */
    int n_devices;
    int shard, n_shards;        /* this process runs index % n_shards == shard */
    int retry_failed;           /* rerun runs whose ledger row says failed */
    int no_infer;               /* 0: after training ok, export CSR and time `elag infer` */
    elag_cli_sweep_progress_fn progress; /* may be NULL */
    void *progress_user;
    double tick_seconds;        /* periodic progress ticks (0: none) */
} elag_cli_sweep_options;

typedef struct elag_cli_sweep_outcome {
    int total, ran, ok, failed, skipped, elsewhere;
    int interrupted; /* the signal (SIGINT, SIGTERM, SIGHUP) that stopped the sweep, or 0 */
} elag_cli_sweep_outcome;

/* Runs the runs of the shard that the ledger does not hold yet; writes results.csv at
 * the end. Returns ELAG_OK also when runs failed (see out->failed); an error status
 * only when the sweep itself could not go on. */
elag_status elag_cli_sweep_execute(const elag_sweep_t *sw, const elag_cli_sweep_options *o,
                                   elag_cli_sweep_outcome *out);

#endif /* ELAG_CLI_SWEEP_RUNNER_H */
