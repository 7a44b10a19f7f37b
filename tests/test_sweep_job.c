/*
 * The library side of running a sweep (host/sweep/run.c), driven with no process at all:
 * the test plays the CLI's scheduler, reads the command each step names, writes the files
 * that step would leave (summary.json, infer.json, log.txt) and reports exit statuses. It
 * checks the queue's view of the ledger, the command lines (train, export, infer; the
 * subcommand first, never a binary's path), the rows of ok, failed and killed runs, a
 * failed export that keeps its run ok, a stop mid-measurement that writes no row, and the
 * run lock that keeps a second claimant out.
 */
#define _DEFAULT_SOURCE /* flock */
#include "support/fixtures.h"
#include "support/testutil.h"
#include "sweep/sweep.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static char *dir;
static char out[700];
static elag_sweep *sw;
static elag_sweep_queue q;

static void setup(void)
{
    dir = elag_test_tmpdir("sweepjob");
    cr_assert_not_null(dir);
    elag_test_put(dir, "base.yaml", elag_test_tiny_yaml);
    elag_test_put(dir, "s.yaml", "base: base.yaml\ngrid: {seed: [1, 2, 3]}\n");
    char path[700];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    cr_assert_eq(elag_sweep_load(path, &sw), ELAG_OK, "%s", elag_last_error());
    snprintf(out, sizeof out, "%s/out", dir);
}

static void teardown(void)
{
    elag_sweep_queue_free(&q);
    elag_sweep_free(sw);
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(sweep_job, .init = setup, .fini = teardown);

static void open_queue(int no_infer, int retry_failed)
{
    elag_sweep_queue_free(&q);
    elag_sweep_queue_options o = {.out_dir = out, .threads = 3, .shard = 0, .n_shards = 1,
                                  .retry_failed = retry_failed, .no_infer = no_infer};
    cr_assert_eq(elag_sweep_queue_init(&q, sw, &o), ELAG_OK, "%s", elag_last_error());
}

/* argv as one line, words separated by single spaces. */
static void join(char *const *argv, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; argv[i] && n + 1 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " " : "", argv[i]);
}

static void claim(elag_sweep_job *job, int run, const char *device, elag_sweep_claim want)
{
    elag_sweep_claim c;
    cr_assert_eq(elag_sweep_job_claim(job, &q, run, device, &c), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(c, want, "claim of run %d: %d, expected %d", run, c, want);
}

static elag_sweep_job_state ended(elag_sweep_job *job, int exit_code, int sig, double secs,
                                  int stopping)
{
    elag_sweep_job_state s;
    cr_assert_eq(elag_sweep_job_ended(job, exit_code, sig, secs, stopping, &s), ELAG_OK, "%s",
                 elag_last_error());
    return s;
}

static const cJSON *row_of(elag_ledger *l, int run)
{
    char path[800];
    snprintf(path, sizeof path, "%s/results.jsonl", out);
    cr_assert_eq(elag_ledger_read(path, l), ELAG_OK);
    return elag_ledger_find(l, sw->runs[run].id);
}

/* Training exited 0 after writing summary.json: the job goes on with export. */
static void train_ok(elag_sweep_job *job)
{
    elag_test_put(job->dir, "summary.json", "{\"test_accuracy\": 0.75, \"device\": \"cpu-ref\"}");
    cr_assert_eq(ended(job, 0, 0, 2.0, 0), ELAG_SWEEP_JOB_NEXT);
    cr_assert_eq(job->step, ELAG_SWEEP_STEP_EXPORT);
}

Test(sweep_job, a_run_through_its_steps)
{
    open_queue(0, 0);
    cr_assert_eq(q.total, 3);
    cr_assert_eq(q.n_todo, 3);
    elag_sweep_job job;
    claim(&job, 0, "cpu", ELAG_SWEEP_CLAIM_TAKEN);
    char line[4096], want[4096];
    join(job.cmd.argv, line, sizeof line);
    snprintf(want, sizeof want, "train %s --set seed=1 --out %s/runs/%s --force --quiet "
             "--set train.threads=3 --device cpu", sw->base, out, sw->runs[0].id);
    cr_assert_str_eq(line, want);
    cr_assert_eq(job.cmd.log_append, 0);
    cr_assert_str_eq(job.cmd.stdout_path, "");
    cr_assert_eq(job.cmd.omp_threads, 3);

    train_ok(&job);
    join(job.cmd.argv, line, sizeof line);
    snprintf(want, sizeof want,
             "export %s/model.safetensors --format csr -o %s/model.csr.safetensors --force",
             job.dir, job.dir);
    cr_assert_str_eq(line, want);
    cr_assert_eq(job.cmd.log_append, 1);

    cr_assert_eq(ended(&job, 0, 0, 2.5, 0), ELAG_SWEEP_JOB_NEXT);
    cr_assert_eq(job.step, ELAG_SWEEP_STEP_INFER);
    join(job.cmd.argv, line, sizeof line);
    snprintf(want, sizeof want, "infer %s/model.csr.safetensors --batch 256 --threads 3 --json "
             "--device cpu", job.dir);
    cr_assert_str_eq(line, want);
    snprintf(want, sizeof want, "%s/infer.json", job.dir);
    cr_assert_str_eq(job.cmd.stdout_path, want);

    elag_test_put(job.dir, "infer.json",
                  "{\"samples_per_second\": 1000, \"latency_ms_median\": 0.5, \"batch\": 256}");
    cr_assert_eq(ended(&job, 0, 0, 3.0, 0), ELAG_SWEEP_JOB_OK);
    elag_ledger l;
    const cJSON *r = row_of(&l, 0);
    cr_assert_not_null(r);
    cr_assert_str_eq(elag_ledger_status(r), "ok");
    cr_assert_float_eq(cJSON_GetObjectItem(r, "test_accuracy")->valuedouble, 0.75, 1e-12);
    cr_assert_float_eq(cJSON_GetObjectItem(r, "run_seconds")->valuedouble, 2.0, 1e-12);
    cr_assert_float_eq(cJSON_GetObjectItem(r, "infer_latency_ms_median")->valuedouble, 0.5, 1e-12);
    cr_assert_float_eq(cJSON_GetObjectItem(r, "infer_seconds")->valuedouble, 1.0, 1e-12);
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(r, "seed")));
    elag_ledger_free(&l);

    /* an ok row: the run is done, for a new queue and for a claim alike */
    claim(&job, 0, NULL, ELAG_SWEEP_CLAIM_DONE);
    open_queue(0, 0);
    cr_assert_eq(q.done, 1);
    cr_assert_eq(q.n_todo, 2);
}

/* export: {format: dense, thin: true}: the export step thins, the row says how and how big. */
Test(sweep_job, export_as_the_sweep_file_says)
{
    elag_sweep_free(sw);
    elag_test_put(dir, "t.yaml", "base: base.yaml\nexport: {thin: true, format: 'bell:8'}\n"
                                 "grid: {seed: [1]}\n");
    char path[700], line[4096], want[4096];
    snprintf(path, sizeof path, "%s/t.yaml", dir);
    cr_assert_eq(elag_sweep_load(path, &sw), ELAG_OK, "%s", elag_last_error());
    cr_assert_str_eq(sw->export_file, "model.thin.bell8.safetensors");
    open_queue(0, 0);
    elag_sweep_job job;
    claim(&job, 0, NULL, ELAG_SWEEP_CLAIM_TAKEN);
    train_ok(&job);
    join(job.cmd.argv, line, sizeof line);
    snprintf(want, sizeof want, "export %s/model.safetensors --format bell:8 -o "
             "%s/model.thin.bell8.safetensors --force --thin", job.dir, job.dir);
    cr_assert_str_eq(line, want);
    cr_assert_eq(ended(&job, 0, 0, 2.5, 0), ELAG_SWEEP_JOB_NEXT);
    join(job.cmd.argv, line, sizeof line);
    cr_assert(strstr(line, "infer ") == line && strstr(line, "/model.thin.bell8.safetensors "),
              "%s", line);
    elag_test_put(job.dir, "model.thin.bell8.safetensors", "12345");
    elag_test_put(job.dir, "infer.json",
                  "{\"samples_per_second\": 1000, \"latency_ms_median\": 0.5, \"batch\": 256}");
    cr_assert_eq(ended(&job, 0, 0, 3.0, 0), ELAG_SWEEP_JOB_OK);
    elag_ledger l;
    const cJSON *r = row_of(&l, 0);
    cr_assert_not_null(r);
    cr_assert_str_eq(cJSON_GetObjectItem(r, "export")->valuestring, "thin,bell:8");
    cr_assert_float_eq(cJSON_GetObjectItem(r, "export_file_bytes")->valuedouble, 5, 1e-12);
    cr_assert_null(cJSON_GetObjectItem(r, "csr_file_bytes"), "not a plain CSR export");
    elag_ledger_free(&l);
}

Test(sweep_job, failed_and_killed_runs)
{
    open_queue(1, 0);
    elag_sweep_job job;
    claim(&job, 0, NULL, ELAG_SWEEP_CLAIM_TAKEN);
    char line[4096];
    join(job.cmd.argv, line, sizeof line);
    cr_assert(!strstr(line, "--device"), "no device asked, yet: %s", line);
    elag_test_put(job.dir, "log.txt", "epoch 1\nelag: data: cannot open /nowhere\n");
    cr_assert_eq(ended(&job, 1, 0, 0.5, 0), ELAG_SWEEP_JOB_FAILED);
    cr_assert_str_eq(job.error, "data: cannot open /nowhere (exit 1)");

    claim(&job, 1, NULL, ELAG_SWEEP_CLAIM_TAKEN);
    cr_assert_eq(ended(&job, -1, SIGKILL, 0.5, 0), ELAG_SWEEP_JOB_FAILED);
    cr_assert_str_eq(job.error, "killed by signal 9");

    claim(&job, 2, NULL, ELAG_SWEEP_CLAIM_TAKEN);
    cr_assert_eq(ended(&job, 0, 0, 0.5, 0), ELAG_SWEEP_JOB_FAILED, "no summary.json: failed");

    elag_ledger l;
    const cJSON *r = row_of(&l, 1);
    cr_assert_str_eq(elag_ledger_status(r), "failed");
    cr_assert_eq(cJSON_GetObjectItem(r, "signal")->valueint, SIGKILL);
    cr_assert_null(cJSON_GetObjectItem(r, "exit_code"));
    r = elag_ledger_find(&l, sw->runs[0].id);
    cr_assert_eq(cJSON_GetObjectItem(r, "exit_code")->valueint, 1);
    r = elag_ledger_find(&l, sw->runs[2].id);
    cr_assert_str_eq(cJSON_GetObjectItem(r, "error")->valuestring,
                     "exited 0 but wrote no summary.json");
    elag_ledger_free(&l);

    open_queue(1, 0);
    cr_assert_eq(q.failed, 3);
    cr_assert_eq(q.n_todo, 0, "failed runs are not redone by default");
    open_queue(1, 1);
    cr_assert_eq(q.n_todo, 3, "--retry-failed redoes them");
}

Test(sweep_job, failed_export_stop_and_lock)
{
    open_queue(0, 0);
    elag_sweep_job job;
    /* a failed export: the run stays ok, the row says why */
    claim(&job, 0, NULL, ELAG_SWEEP_CLAIM_TAKEN);
    train_ok(&job);
    elag_test_put(job.dir, "log.txt", "elag: model.csr.safetensors: Is a directory\n");
    cr_assert_eq(ended(&job, 1, 0, 2.5, 0), ELAG_SWEEP_JOB_OK);
    elag_ledger l;
    const cJSON *r = row_of(&l, 0);
    cr_assert_str_eq(elag_ledger_status(r), "ok");
    cr_assert_str_eq(cJSON_GetObjectItem(r, "infer_error")->valuestring,
                     "export: model.csr.safetensors: Is a directory (exit 1)");
    elag_ledger_free(&l);

    /* the infer step could not start: ok, with infer_error "infer: <why>" */
    claim(&job, 1, NULL, ELAG_SWEEP_CLAIM_TAKEN);
    train_ok(&job);
    cr_assert_eq(ended(&job, 0, 0, 2.5, 0), ELAG_SWEEP_JOB_NEXT);
    cr_assert_eq(job.step, ELAG_SWEEP_STEP_INFER);
    char infer_device[4096];
    join(job.cmd.argv, infer_device, sizeof infer_device);
    cr_assert(strstr(infer_device, "--device cpu-ref"), "the device summary.json names: %s",
              infer_device);
    elag_sweep_job_state s;
    cr_assert_eq(elag_sweep_job_not_started(&job, "no fork today", &s), ELAG_OK);
    cr_assert_eq(s, ELAG_SWEEP_JOB_OK);
    r = row_of(&l, 1);
    cr_assert_str_eq(cJSON_GetObjectItem(r, "infer_error")->valuestring, "infer: no fork today");
    elag_ledger_free(&l);

    /* stopped mid-measurement: no row, and the lock is free again */
    claim(&job, 2, NULL, ELAG_SWEEP_CLAIM_TAKEN);
    train_ok(&job);
    cr_assert_eq(ended(&job, -1, SIGTERM, 2.5, 1), ELAG_SWEEP_JOB_DROPPED);
    cr_assert_null(row_of(&l, 2));
    elag_ledger_free(&l);

    /* another process holding the run's lock keeps the run to itself */
    char path[900];
    snprintf(path, sizeof path, "%s/runs/%s/.lock", out, sw->runs[2].id);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    cr_assert_eq(flock(fd, LOCK_EX | LOCK_NB), 0, "the dropped job kept its lock");
    claim(&job, 2, NULL, ELAG_SWEEP_CLAIM_HELD);
    close(fd);
    claim(&job, 2, NULL, ELAG_SWEEP_CLAIM_TAKEN);
    elag_sweep_job_release(&job);
}
