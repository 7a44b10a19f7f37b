/*
 * The runs of a sweep, short of running them: the library says which runs of a shard are
 * to do, claims one, names the command line of each of its steps and turns a finished
 * step into the next step or the run's ledger row. Whoever calls it (the CLI's
 * host/cli/sweep_runner.c) starts the commands, waits for them and stops them; this file
 * never forks, waits or signals, and does not know where the elag binary is.
 *
 * A run's steps, each `elag <argv>` with its output in <out>/runs/<id>/log.txt:
 *   train <base> --set ... --out <out>/runs/<id> --force --quiet [--set train.threads=T]
 *         [--device D]
 * and, unless no_infer, once training exited 0 and wrote summary.json, two more, their
 * output appended to log.txt:
 *   export <dir>/model.safetensors --format F -o <dir>/<file> --force [--thin]
 *   infer <dir>/<file> --batch 256 --threads T --json [--device D]
 * (F and --thin from the sweep file's export:, csr and no thinning by default; <file> is
 * model[.thin].<F>.safetensors, model.csr.safetensors by default; infer's stdout, one JSON
 * object, goes to <dir>/infer.json). The row then carries infer_samples_per_second,
 * infer_latency_ms_median (median per batch), infer_latency_ms_p99, infer_test_accuracy,
 * export_file_bytes (and csr_file_bytes for the default export), or infer_error when export or infer failed (the
 * run is still ok: training succeeded). While a run goes, its folder's .lock is flock'ed,
 * so two sweep processes pointed at one folder never run the same id at once; a run is
 * claimed only after the lock is taken and the ledger, re-read, shows no ok row for it.
 * A row is appended only after the last step ended.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT, flock */
#include "sweep/sweep_internal.h"

#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int elag_sweep_cores(void)
{
    const char *s = getenv("SLURM_CPUS_PER_TASK");
    if (s && *s) {
        char *end;
        long n = strtol(s, &end, 10);
        if (*end == '\0' && n >= 1 && n <= 65536) return (int)n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* ---- the queue ---- */

elag_status elag_sweep_queue_init(elag_sweep_queue *q, const elag_sweep *sw,
                                  const elag_sweep_queue_options *o)
{
    memset(q, 0, sizeof *q);
    q->sw = sw;
    q->o = *o;
    if (o->threads < 1 || !o->out_dir)
        return elag_fail(ELAG_ERR_USAGE, "elag_sweep_queue_init: bad options");
    char path[ELAG_PATH_LEN + 64];
    snprintf(path, sizeof path, "%s/runs", o->out_dir);
    elag_status st = elag_mkdirs(path);
    if (st != ELAG_OK) return st;
    q->todo = malloc((size_t)(sw->n_runs + 1) * sizeof *q->todo);
    if (!q->todo) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    snprintf(path, sizeof path, "%s/results.jsonl", o->out_dir);
    st = elag_ledger_read(path, &q->seen);
    if (st != ELAG_OK) return st;
    for (int r = 0; r < sw->n_runs; r++) {
        if (!elag_sweep_in_shard(sw->runs[r].index, o->shard, o->n_shards)) continue;
        q->total++;
        const cJSON *row = elag_ledger_find(&q->seen, sw->runs[r].id);
        const char *status = row ? elag_ledger_status(row) : "";
        if (strcmp(status, "ok") == 0)
            q->done++;
        else if (row && !o->retry_failed)
            q->failed++;
        else
            q->todo[q->n_todo++] = r;
    }
    return ELAG_OK;
}

elag_status elag_sweep_queue_write_csv(elag_sweep_queue *q)
{
    char path[ELAG_PATH_LEN + 64];
    snprintf(path, sizeof path, "%s/results.jsonl", q->o.out_dir);
    elag_status st = elag_ledger_refresh(path, &q->seen);
    if (st != ELAG_OK) return st;
    snprintf(path, sizeof path, "%s/results.csv", q->o.out_dir);
    return elag_ledger_write_csv(&q->seen, path);
}

void elag_sweep_queue_free(elag_sweep_queue *q)
{
    if (!q) return;
    free(q->todo);
    q->todo = NULL;
    elag_ledger_free(&q->seen);
}

/* ---- commands ---- */

static void free_argv(char **argv)
{
    for (int i = 0; argv && argv[i]; i++) free(argv[i]);
    free(argv);
}

/* A NULL-terminated copy of the n strings of src (NULL entries are skipped). */
static char **copy_argv(const char *const *src, int n)
{
    char **argv = calloc((size_t)n + 1, sizeof *argv);
    int k = 0;
    for (int i = 0; argv && i < n; i++) {
        if (!src[i]) continue;
        if (!(argv[k++] = strdup(src[i]))) {
            free_argv(argv);
            return NULL;
        }
    }
    return argv;
}

/* Makes job->cmd the command of `step` (the job's folder and device are set). */
static elag_status make_cmd(elag_sweep_job *job, elag_sweep_step step)
{
    const elag_sweep *sw = job->q->sw;
    const elag_sweep_queue_options *o = &job->q->o;
    const elag_sweep_run *run = &sw->runs[job->run];
    elag_sweep_cmd *c = &job->cmd;
    char model[ELAG_PATH_LEN + 96], csr[ELAG_PATH_LEN + 160], threads[48], device[64];
    snprintf(model, sizeof model, "%s/model.safetensors", job->dir);
    snprintf(csr, sizeof csr, "%s/%s", job->dir, sw->export_file);
    snprintf(device, sizeof device, "%s", job->device);
    char **argv = NULL;
    if (step == ELAG_SWEEP_STEP_TRAIN) {
        snprintf(threads, sizeof threads, "train.threads=%d", o->threads);
        int n = 0;
        const char **src = malloc((size_t)(2 * run->n_sets + 16) * sizeof *src);
        if (src) {
            src[n++] = "train";
            src[n++] = sw->base;
            for (int i = 0; i < run->n_sets; i++) {
                src[n++] = "--set";
                src[n++] = run->sets[i];
            }
            const char *tail[] = {"--out", job->dir, "--force", "--quiet",
                                  sw->sets_threads ? NULL : "--set",
                                  sw->sets_threads ? NULL : threads,
                                  device[0] ? "--device" : NULL, device[0] ? device : NULL};
            for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++) src[n++] = tail[i];
            argv = copy_argv(src, n);
            free(src);
        }
    } else if (step == ELAG_SWEEP_STEP_EXPORT) {
        const char *src[] = {"export", model, "--format", sw->export_format, "-o", csr, "--force",
                             sw->export_thin ? "--thin" : NULL};
        argv = copy_argv(src, (int)(sizeof src / sizeof src[0]));
    } else {
        snprintf(threads, sizeof threads, "%d", o->threads);
        if (!device[0]) /* the device the run trained on, as summary.json names it */
            elag_sweep_summary_device(job->dir, device, sizeof device);
        const char *src[] = {"infer", csr, "--batch", "256", "--threads", threads, "--json",
                             device[0] ? "--device" : NULL, device[0] ? device : NULL};
        argv = copy_argv(src, (int)(sizeof src / sizeof src[0]));
    }
    if (!argv) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    free_argv(c->argv);
    c->argv = argv;
    snprintf(c->log, sizeof c->log, "%s/log.txt", job->dir);
    c->log_append = step != ELAG_SWEEP_STEP_TRAIN;
    c->stdout_path[0] = '\0';
    if (step == ELAG_SWEEP_STEP_INFER) {
        snprintf(c->stdout_path, sizeof c->stdout_path, "%s/infer.json", job->dir);
        unlink(c->stdout_path); /* an old one must not pass for this attempt's figures */
    }
    c->omp_threads = sw->sets_threads ? 0 : o->threads;
    job->step = step;
    return ELAG_OK;
}

/* ---- jobs ---- */

/* Takes the run folder's lock without waiting: 1 taken (*fd set), 0 busy, <0 error. */
static int lock_run(const char *dir, int *fd)
{
    char path[ELAG_PATH_LEN + 96];
    snprintf(path, sizeof path, "%s/.lock", dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0) return -1;
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0) return 1;
    int busy = errno == EWOULDBLOCK;
    close(*fd);
    *fd = -1;
    return busy ? 0 : -1;
}

void elag_sweep_job_release(elag_sweep_job *job)
{
    if (job->lock_fd >= 0) close(job->lock_fd);
    job->lock_fd = -1;
    free_argv(job->cmd.argv);
    job->cmd.argv = NULL;
}

elag_status elag_sweep_job_claim(elag_sweep_job *job, elag_sweep_queue *q, int run,
                                 const char *device, elag_sweep_claim *claim)
{
    const elag_sweep_run *r = &q->sw->runs[run];
    memset(job, 0, sizeof *job);
    job->q = q;
    job->run = run;
    job->lock_fd = -1;
    *claim = ELAG_SWEEP_CLAIM_HELD;
    snprintf(job->dir, sizeof job->dir, "%s/runs/%s", q->o.out_dir, r->id);
    elag_status st = elag_mkdirs(job->dir);
    if (st != ELAG_OK) return st;
    int got = lock_run(job->dir, &job->lock_fd);
    if (got < 0)
        return elag_fail(ELAG_ERR_IO, "%s/.lock: cannot lock: %s", job->dir, strerror(errno));
    if (got == 0) return ELAG_OK;
    /* another process may have finished it since we read the ledger */
    char path[ELAG_PATH_LEN + 96];
    snprintf(path, sizeof path, "%s/results.jsonl", q->o.out_dir);
    st = elag_ledger_refresh(path, &q->seen);
    const cJSON *row = st == ELAG_OK ? elag_ledger_find(&q->seen, r->id) : NULL;
    if (st != ELAG_OK || (row && strcmp(elag_ledger_status(row), "ok") == 0)) {
        elag_sweep_job_release(job);
        *claim = ELAG_SWEEP_CLAIM_DONE;
        return st;
    }
    snprintf(path, sizeof path, "%s/summary.json", job->dir);
    unlink(path); /* a stale summary must not pass for this attempt's */
    snprintf(job->device, sizeof job->device, "%s", device ? device : "");
    st = make_cmd(job, ELAG_SWEEP_STEP_TRAIN);
    if (st != ELAG_OK) {
        elag_sweep_job_release(job);
        return st;
    }
    *claim = ELAG_SWEEP_CLAIM_TAKEN;
    return ELAG_OK;
}

/* The run is over: appends its row (unless it is dropped) and releases the job. */
static elag_status record(elag_sweep_job *job, int ok, const char *infer_error, int exit_code,
                          int term_signal, double train_seconds, double infer_seconds,
                          int stopping, elag_sweep_job_state *state)
{
    elag_status st = ELAG_OK;
    if (!ok && stopping) {
        /* stopped by us or by the same signal: not a failure, the run is redone later */
        *state = ELAG_SWEEP_JOB_DROPPED;
    } else {
        const elag_sweep_queue *q = job->q;
        if (!ok && !job->error[0])
            elag_sweep_step_error(job->dir, "", exit_code, term_signal, job->error,
                                  sizeof job->error);
        cJSON *row = elag_sweep_row_make(&q->sw->runs[job->run], job->dir, ok, job->error,
                                         exit_code, term_signal, train_seconds);
        if (row && ok && !q->o.no_infer)
            elag_sweep_row_add_infer(row, q->sw, job->dir, infer_error, infer_seconds);
        st = row ? elag_ledger_append(q->o.out_dir, row)
                 : elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
        cJSON_Delete(row);
        *state = ok ? ELAG_SWEEP_JOB_OK : ELAG_SWEEP_JOB_FAILED;
    }
    elag_sweep_job_release(job);
    return st;
}

elag_status elag_sweep_job_ended(elag_sweep_job *job, int exit_code, int term_signal,
                                 double seconds, int stopping, elag_sweep_job_state *state)
{
    int step_ok = exit_code == 0 && term_signal <= 0;
    int ok = step_ok;
    char infer_error[512] = "";
    double train_seconds = seconds, infer_seconds = 0;
    job->error[0] = '\0';
    if (job->step == ELAG_SWEEP_STEP_TRAIN) {
        char summary[ELAG_PATH_LEN + 96];
        snprintf(summary, sizeof summary, "%s/summary.json", job->dir);
        if (ok && access(summary, R_OK) != 0) {
            ok = 0;
            snprintf(job->error, sizeof job->error, "exited 0 but wrote no summary.json");
        }
        if (ok && !job->q->o.no_infer) {
            if (stopping) {
                snprintf(infer_error, sizeof infer_error, "not measured: the sweep was stopped");
            } else {
                job->train_seconds = seconds;
                if (make_cmd(job, ELAG_SWEEP_STEP_EXPORT) == ELAG_OK) {
                    *state = ELAG_SWEEP_JOB_NEXT; /* the run goes on */
                    return ELAG_OK;
                }
                snprintf(infer_error, sizeof infer_error, "export: %s", elag_last_error());
            }
        }
    } else {
        if (!step_ok && stopping) { /* stopped mid-measurement: no row, redone later */
            elag_sweep_job_release(job);
            *state = ELAG_SWEEP_JOB_DROPPED;
            return ELAG_OK;
        }
        ok = 1; /* training succeeded; a failed export or infer is the row's infer_error */
        train_seconds = job->train_seconds;
        infer_seconds = seconds - train_seconds;
        const char *what = job->step == ELAG_SWEEP_STEP_EXPORT ? "export: " : "infer: ";
        if (!step_ok) {
            elag_sweep_step_error(job->dir, what, exit_code, term_signal, infer_error,
                                  sizeof infer_error);
        } else if (job->step == ELAG_SWEEP_STEP_EXPORT) {
            if (stopping) {
                snprintf(infer_error, sizeof infer_error, "not measured: the sweep was stopped");
            } else if (make_cmd(job, ELAG_SWEEP_STEP_INFER) == ELAG_OK) {
                *state = ELAG_SWEEP_JOB_NEXT;
                return ELAG_OK;
            } else {
                snprintf(infer_error, sizeof infer_error, "infer: %s", elag_last_error());
            }
        }
        exit_code = 0; /* training exited 0 */
        term_signal = 0;
    }
    return record(job, ok, infer_error, exit_code, term_signal, train_seconds, infer_seconds,
                  stopping, state);
}

elag_status elag_sweep_job_not_started(elag_sweep_job *job, const char *why,
                                       elag_sweep_job_state *state)
{
    job->error[0] = '\0';
    if (job->step == ELAG_SWEEP_STEP_TRAIN) {
        char msg[600];
        snprintf(msg, sizeof msg, "%s", why);
        elag_sweep_job_release(job);
        *state = ELAG_SWEEP_JOB_DROPPED;
        return elag_fail(ELAG_ERR_IO, "%s", msg);
    }
    char infer_error[512];
    snprintf(infer_error, sizeof infer_error, "%s: %s",
             job->step == ELAG_SWEEP_STEP_EXPORT ? "export" : "infer", why);
    return record(job, 1, infer_error, 0, 0, job->train_seconds, 0, 0, state);
}
