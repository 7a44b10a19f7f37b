/*
 * elag/sweep.h: sweeps, thin wrappers over host/sweep/. The sweep (elag_sweep_t) and the
 * job (elag_sweep_job_t) are host/sweep's own objects, opaque to callers; the ledger and
 * the shard wrap an elag_ledger and an elag_sweep_queue, which the library otherwise
 * keeps in its callers' storage.
 * elag_sweep_free, _in_shard, _parse_shard, _cores, _report and the job's _ended and
 * _not_started are host/sweep's functions themselves (declared in include/elag/sweep.h).
 */
#include "api/api.h"

#include "core/check.h"
#include "io/atomic.h"
#include "sweep/sweep.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* elag_sweep_ledger_t */
struct elag_sweep_ledger {
    elag_ledger l;
};

/* elag_sweep_shard_t */
struct elag_sweep_shard {
    elag_sweep_queue q;
    char out_dir[ELAG_PATH_LEN]; /* q.o.out_dir points here */
};

/* ---- the sweep file ---- */

elag_status elag_sweep_open(elag_sweep_t **out, const char *path)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_sweep_open: out is NULL");
    *out = NULL;
    if (path == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_sweep_open: path is NULL");
    return elag_sweep_load(path, out);
}

const char *elag_sweep_path(const elag_sweep_t *sw)
{
    ELAG_ASSERT(sw != NULL);
    return sw->path;
}

const char *elag_sweep_base(const elag_sweep_t *sw)
{
    ELAG_ASSERT(sw != NULL);
    return sw->base;
}

const char *elag_sweep_name(const elag_sweep_t *sw)
{
    ELAG_ASSERT(sw != NULL);
    return sw->name;
}

int elag_sweep_run_count(const elag_sweep_t *sw)
{
    ELAG_ASSERT(sw != NULL);
    return sw->n_runs;
}

int elag_sweep_dropped(const elag_sweep_t *sw)
{
    ELAG_ASSERT(sw != NULL);
    return sw->n_dropped;
}

int elag_sweep_sets_device(const elag_sweep_t *sw)
{
    ELAG_ASSERT(sw != NULL);
    return sw->sets_device;
}

const char *elag_sweep_run_id(const elag_sweep_t *sw, int r)
{
    ELAG_ASSERT(sw != NULL && r >= 0 && r < sw->n_runs);
    return sw->runs[r].id;
}

const char *const *elag_sweep_run_sets(const elag_sweep_t *sw, int r, int *n_sets,
                                       int *first_axis_set)
{
    ELAG_ASSERT(sw != NULL && r >= 0 && r < sw->n_runs);
    const elag_sweep_run *run = &sw->runs[r];
    if (n_sets) *n_sets = run->n_sets;
    if (first_axis_set) *first_axis_set = run->first_axis_set;
    return (const char *const *)run->sets;
}

/* ---- output folder and ledger ---- */

elag_status elag_sweep_copy_file(const elag_sweep_t *sw, const char *out_dir)
{
    if (sw == NULL || out_dir == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_sweep_copy_file: %s is NULL",
                         sw ? "out_dir" : "sweep");
    char path[ELAG_PATH_LEN + 32], *text = NULL;
    size_t len = 0;
    elag_status st = elag_mkdirs(out_dir);
    snprintf(path, sizeof path, "%s/sweep.yaml", out_dir);
    if (st == ELAG_OK) st = elag_read_file(sw->path, &text, &len);
    if (st == ELAG_OK) st = elag_atomic_write(path, text, len);
    free(text);
    return st;
}

elag_status elag_sweep_ledger_open(elag_sweep_ledger_t **out, const char *out_dir)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_sweep_ledger_open: out is NULL");
    *out = NULL;
    if (out_dir == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_sweep_ledger_open: out_dir is NULL");
    elag_sweep_ledger_t *l = calloc(1, sizeof *l);
    if (l == NULL) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    char path[ELAG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/results.jsonl", out_dir);
    elag_status st = elag_ledger_read(path, &l->l);
    if (st != ELAG_OK) {
        elag_sweep_ledger_free(l); /* what was read before the failure */
        return st;
    }
    *out = l;
    return ELAG_OK;
}

void elag_sweep_ledger_free(elag_sweep_ledger_t *l)
{
    if (l == NULL) return;
    elag_ledger_free(&l->l);
    free(l);
}

const char *elag_sweep_ledger_status(const elag_sweep_ledger_t *l, const char *run_id)
{
    ELAG_ASSERT(l != NULL && run_id != NULL);
    const cJSON *row = elag_ledger_find(&l->l, run_id);
    return row ? elag_ledger_status(row) : NULL;
}

elag_status elag_sweep_collect(const char *const *dirs, int n_dirs, const char *out_dir,
                               int *n_rows)
{
    int rows = 0;
    ELAG_TRY(elag_ledger_collect(dirs, n_dirs, out_dir, &rows));
    if (n_rows) *n_rows = rows;
    return ELAG_OK;
}

/* ---- the shard ---- */

elag_status elag_sweep_shard_options_init(elag_sweep_shard_options *opts, unsigned int version)
{
    if (opts == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_sweep_shard_options_init: opts is NULL");
    ELAG_TRY(elag_api_check_version(version, ELAG_SWEEP_SHARD_OPTIONS_VERSION,
                                    "elag_sweep_shard_options"));
    elag_sweep_shard_options d = ELAG_SWEEP_SHARD_OPTIONS_INIT;
    *opts = d;
    return ELAG_OK;
}

elag_status elag_sweep_shard_open(elag_sweep_shard_t **out, const elag_sweep_t *sw,
                                  const elag_sweep_shard_options *opts)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_sweep_shard_open: out is NULL");
    *out = NULL;
    if (sw == NULL || opts == NULL || opts->out_dir == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_sweep_shard_open: %s is NULL",
                         sw == NULL     ? "sweep"
                         : opts == NULL ? "opts"
                                        : "opts->out_dir");
    ELAG_TRY(elag_api_check_version(opts->version, ELAG_SWEEP_SHARD_OPTIONS_VERSION,
                                    "elag_sweep_shard_options"));
    if (strlen(opts->out_dir) >= ELAG_PATH_LEN)
        return elag_fail(ELAG_ERR_USAGE, "%s: path too long", opts->out_dir);
    elag_sweep_shard_t *sh = calloc(1, sizeof *sh);
    if (sh == NULL) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    snprintf(sh->out_dir, sizeof sh->out_dir, "%s", opts->out_dir);
    elag_sweep_queue_options qo = {.out_dir = sh->out_dir,
                                   .threads = opts->threads,
                                   .shard = opts->shard,
                                   .n_shards = opts->n_shards,
                                   .retry_failed = opts->retry_failed,
                                   .no_infer = opts->no_infer};
    elag_status st = elag_sweep_queue_init(&sh->q, sw, &qo);
    if (st != ELAG_OK) {
        elag_sweep_shard_free(sh);
        return st;
    }
    *out = sh;
    return ELAG_OK;
}

void elag_sweep_shard_free(elag_sweep_shard_t *sh)
{
    if (sh == NULL) return;
    elag_sweep_queue_free(&sh->q);
    free(sh);
}

void elag_sweep_shard_counts(const elag_sweep_shard_t *sh, int *total, int *done, int *failed,
                             int *todo)
{
    ELAG_ASSERT(sh != NULL);
    if (total) *total = sh->q.total;
    if (done) *done = sh->q.done;
    if (failed) *failed = sh->q.failed;
    if (todo) *todo = sh->q.n_todo;
}

int elag_sweep_shard_todo(const elag_sweep_shard_t *sh, int i)
{
    ELAG_ASSERT(sh != NULL && i >= 0 && i < sh->q.n_todo);
    return sh->q.todo[i];
}

elag_status elag_sweep_shard_write_csv(elag_sweep_shard_t *sh)
{
    if (sh == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_sweep_shard_write_csv: shard is NULL");
    return elag_sweep_queue_write_csv(&sh->q);
}

elag_status elag_sweep_shard_claim(elag_sweep_shard_t *sh, int r, const char *device,
                                   elag_sweep_claim *claim, elag_sweep_job_t **job)
{
    if (job == NULL || claim == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_sweep_shard_claim: %s is NULL",
                         job ? "claim" : "job");
    *job = NULL;
    if (sh == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_sweep_shard_claim: shard is NULL");
    if (r < 0 || r >= sh->q.sw->n_runs)
        return elag_fail(ELAG_ERR_USAGE, "elag_sweep_shard_claim: no run %d", r);
    elag_sweep_job *j = calloc(1, sizeof *j);
    if (j == NULL) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    elag_status st = elag_sweep_job_claim(j, &sh->q, r, device, claim);
    if (st != ELAG_OK || *claim != ELAG_SWEEP_CLAIM_TAKEN) {
        elag_sweep_job_free(j); /* a claim not taken holds nothing: harmless */
        return st;
    }
    *job = j;
    return ELAG_OK;
}

/* ---- the job ---- */

void elag_sweep_job_free(elag_sweep_job_t *job)
{
    if (job == NULL) return;
    elag_sweep_job_release(job);
    free(job);
}

int elag_sweep_job_run(const elag_sweep_job_t *job)
{
    ELAG_ASSERT(job != NULL);
    return job->run;
}

void elag_sweep_job_command(const elag_sweep_job_t *job, elag_sweep_command *out)
{
    ELAG_ASSERT(job != NULL && out != NULL);
    out->version = ELAG_SWEEP_COMMAND_VERSION;
    out->argv = (const char *const *)job->cmd.argv;
    out->log = job->cmd.log;
    out->log_append = job->cmd.log_append;
    out->stdout_path = job->cmd.stdout_path;
    out->omp_threads = job->cmd.omp_threads;
}

const char *elag_sweep_job_error(const elag_sweep_job_t *job)
{
    ELAG_ASSERT(job != NULL);
    return job->error;
}
