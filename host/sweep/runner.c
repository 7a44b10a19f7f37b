/*
 * Runs a sweep: every run of the shard that the ledger does not hold yet becomes a child
 * process of the elag binary,
 *   elag train <base> --set ... --out <out>/runs/<id> --force --quiet --set train.threads=T
 * with stdout and stderr in <out>/runs/<id>/log.txt, `jobs` at a time. A crash in one run
 * is that run's failed row, never the sweep's end. Children get SIGKILL when the sweep
 * process dies (PR_SET_PDEATHSIG), so a killed sweep leaves no orphans that could still
 * append rows. While a run is going, its folder's .lock is flock'ed, so two sweep
 * processes pointed at one folder never run the same id at once; a run is started only
 * after the lock is taken and the ledger re-read shows no ok row for it.
 * A row is appended only after the child exited 0 and its summary.json was read.
 * Unless `no_infer`, a run that trained ok goes on in the same slot with two more
 * children, their output appended to log.txt:
 *   elag export <dir>/model.safetensors --format csr -o <dir>/model.csr.safetensors
 *   elag infer <dir>/model.csr.safetensors --batch 256 --threads T [--device D] --json
 * (infer's stdout, one JSON object, goes to <dir>/infer.json); the row then carries
 * infer_samples_per_second, infer_latency_ms (median per batch), infer_latency_ms_p99,
 * infer_test_accuracy and csr_file_bytes, or infer_error when export or infer failed (the
 * run is still ok: training succeeded).
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "sweep/sweep.h"

#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The signal that asked the sweep to stop. A signal handler can only reach a global;
 * it is set by the handler and read by the one loop in elag_sweep_execute. */
static volatile sig_atomic_t elag_sweep_stop_signal = 0;

static void on_stop_signal(int sig) { elag_sweep_stop_signal = sig; }
static void on_child_signal(int sig) { (void)sig; /* only wakes nanosleep */ }

enum { PHASE_TRAIN, PHASE_EXPORT, PHASE_INFER };

typedef struct run_slot {
    pid_t pid;       /* 0: free */
    int phase;       /* PHASE_*: what the child pid is doing */
    double train_seconds; /* wall time of the train child */
    char device[64]; /* --device of the train child ("" when none) */
    int run;         /* index into sw->runs */
    int lock_fd;     /* flock'ed <dir>/.lock */
    double t0;
    char dir[ELAG_PATH_LEN + 64];
} run_slot;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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

/* The last non-empty line of the run's log (its "elag: ..." message), at most 400 bytes. */
static void last_log_line(const char *dir, char *out, size_t size)
{
    char path[ELAG_PATH_LEN + 80];
    snprintf(path, sizeof path, "%s/log.txt", dir);
    out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char buf[4096];
    long len = 0;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0) {
        long start = len > (long)sizeof buf - 1 ? len - (long)sizeof buf + 1 : 0;
        fseek(f, start, SEEK_SET);
        size_t n = fread(buf, 1, (size_t)(len - start), f);
        buf[n] = '\0';
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = '\0';
        char *line = strrchr(buf, '\n');
        line = line ? line + 1 : buf;
        char *cr = strrchr(line, '\r'); /* a progress bar redrawn with \r */
        if (cr) line = cr + 1;
        if (strncmp(line, "elag: ", 6) == 0) line += 6;
        snprintf(out, size, "%.400s", line);
    }
    fclose(f);
}

/* The ledger row of a finished run: id, status, swept values, then the summary figures. */
static cJSON *make_row(const elag_sweep_run *run, const char *dir, int ok, const char *error,
                       int status, double seconds)
{
    cJSON *row = cJSON_CreateObject();
    if (!row) return NULL;
    cJSON_AddStringToObject(row, "run_id", run->id);
    cJSON_AddStringToObject(row, "status", ok ? "ok" : "failed");
    if (!ok) {
        cJSON_AddStringToObject(row, "error", error);
        if (WIFEXITED(status)) cJSON_AddNumberToObject(row, "exit_code", WEXITSTATUS(status));
        if (WIFSIGNALED(status)) cJSON_AddNumberToObject(row, "signal", WTERMSIG(status));
    }
    const cJSON *v;
    cJSON *swept = cJSON_CreateArray();
    cJSON_ArrayForEach(v, run->values)
    {
        cJSON_AddItemToObject(row, v->string, cJSON_Duplicate(v, 1));
        cJSON_AddItemToArray(swept, cJSON_CreateString(v->string));
    }
    cJSON_AddItemToObject(row, "swept", swept);
    cJSON_AddNumberToObject(row, "run_seconds", seconds);
    if (ok) {
        char path[ELAG_PATH_LEN + 96], *text = NULL;
        snprintf(path, sizeof path, "%s/summary.json", dir);
        cJSON *summary = NULL;
        if (elag_read_file(path, &text, NULL) == ELAG_OK) summary = cJSON_Parse(text);
        free(text);
        cJSON_ArrayForEach(v, summary)
            if (!cJSON_GetObjectItemCaseSensitive(row, v->string))
                cJSON_AddItemToObject(row, v->string, cJSON_Duplicate(v, 1));
        cJSON_Delete(summary);
        struct stat sb;
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (stat(path, &sb) == 0) cJSON_AddNumberToObject(row, "model_bytes", (double)sb.st_size);
    }
    return row;
}

/* Adds the figures of <dir>/infer.json and csr_file_bytes to an ok row, or infer_error. */
static void add_infer(cJSON *row, const char *dir, const char *error, double seconds)
{
    char path[ELAG_PATH_LEN + 96], *text = NULL;
    cJSON *j = NULL;
    if (!error || !error[0]) {
        snprintf(path, sizeof path, "%s/infer.json", dir);
        if (elag_read_file(path, &text, NULL) == ELAG_OK) j = cJSON_Parse(text);
        free(text);
        const cJSON *sps = cJSON_GetObjectItemCaseSensitive(j, "samples_per_second");
        const cJSON *med = cJSON_GetObjectItemCaseSensitive(j, "latency_ms_median");
        if (!cJSON_IsNumber(sps) || !cJSON_IsNumber(med)) error = "infer printed no figures (infer.json)";
    }
    if (error && error[0]) {
        cJSON_AddStringToObject(row, "infer_error", error);
        cJSON_Delete(j);
        return;
    }
    static const char *const map[][2] = {{"samples_per_second", "infer_samples_per_second"},
                                         {"latency_ms_median", "infer_latency_ms"},
                                         {"latency_ms_p99", "infer_latency_ms_p99"},
                                         {"test_accuracy", "infer_test_accuracy"},
                                         {"batch", "infer_batch"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, map[i][0]);
        if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(row, map[i][1], v->valuedouble);
    }
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device");
    if (cJSON_IsString(dev)) cJSON_AddStringToObject(row, "infer_device", dev->valuestring);
    cJSON_Delete(j);
    struct stat sb;
    snprintf(path, sizeof path, "%s/model.csr.safetensors", dir);
    if (stat(path, &sb) == 0) cJSON_AddNumberToObject(row, "csr_file_bytes", (double)sb.st_size);
    cJSON_AddNumberToObject(row, "infer_seconds", seconds);
}

/* Frees the argv made by child_argv. */
static void free_argv(char **argv)
{
    for (int i = 0; argv && argv[i]; i++) free(argv[i]);
    free(argv);
}

static char **child_argv(const elag_sweep *sw, const elag_sweep_run *run,
                         const elag_sweep_exec_options *o, const char *dir, const char *device)
{
    int cap = 2 * run->n_sets + 16, n = 0;
    char **argv = calloc((size_t)cap, sizeof *argv);
    char threads[48];
    snprintf(threads, sizeof threads, "train.threads=%d", o->threads);
    const char *fixed[] = {o->exe, "train", sw->base};
    int ok = argv != NULL;
    for (size_t i = 0; ok && i < 3; i++) ok = (argv[n++] = strdup(fixed[i])) != NULL;
    for (int i = 0; ok && i < run->n_sets; i++) {
        ok = (argv[n++] = strdup("--set")) != NULL;
        ok = ok && (argv[n++] = strdup(run->sets[i])) != NULL;
    }
    const char *tail[] = {"--out", dir, "--force", "--quiet"};
    for (size_t i = 0; ok && i < 4; i++) ok = (argv[n++] = strdup(tail[i])) != NULL;
    if (ok && !sw->sets_threads) {
        ok = (argv[n++] = strdup("--set")) != NULL;
        ok = ok && (argv[n++] = strdup(threads)) != NULL;
    }
    if (ok && device) {
        ok = (argv[n++] = strdup("--device")) != NULL;
        ok = ok && (argv[n++] = strdup(device)) != NULL;
    }
    if (!ok) {
        free_argv(argv);
        return NULL;
    }
    return argv;
}

/* Starts the child of a run; its output goes to <dir>/log.txt. */
static elag_status spawn(char **argv, const char *dir, int threads, int set_omp, int append,
                         const char *stdout_path, pid_t *pid_out)
{
    char log[ELAG_PATH_LEN + 96];
    snprintf(log, sizeof log, "%s/log.txt", dir);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return elag_fail(ELAG_ERR_IO, "sweep: fork failed: %s", strerror(errno));
    if (pid == 0) {
        /* the child: dies with the sweep, logs to its folder, then becomes `elag train` */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        int fd = open(log, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC) | O_CLOEXEC, 0644);
        int ofd = stdout_path ? open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : fd;
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ofd < 0 || nul < 0 || dup2(ofd, 1) < 0 || dup2(fd, 2) < 0 || dup2(nul, 0) < 0)
            _exit(127);
        if (set_omp) {
            char t[16];
            snprintf(t, sizeof t, "%d", threads);
            setenv("OMP_NUM_THREADS", t, 1);
        }
        execv(argv[0], argv);
        dprintf(2, "elag sweep: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    *pid_out = pid;
    return ELAG_OK;
}

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

typedef struct run_state {
    const elag_sweep *sw;
    const elag_sweep_exec_options *o;
    elag_sweep_outcome *out;
    elag_sweep_progress p;
    elag_ledger seen;    /* the ledger as last read (refreshed before each start) */
    double run_time_sum; /* wall time of the runs finished in this session */
    int runs_timed, pending;
} run_state;

static void report(run_state *s, const char *event, const elag_sweep_run *run, const char *error,
                   double seconds)
{
    if (!s->o->progress) return;
    s->p.eta_seconds = -1;
    if (s->runs_timed > 0) {
        double avg = s->run_time_sum / s->runs_timed;
        s->p.eta_seconds = avg * (s->pending + 0.5 * s->p.running) / s->o->jobs;
    }
    s->p.event = event;
    s->p.run = run;
    s->p.error = error;
    s->p.run_seconds = seconds;
    s->o->progress(&s->p, s->o->progress_user);
}

/* Starts the export (PHASE_EXPORT) or infer (PHASE_INFER) child of a run that trained ok;
 * its output is appended to log.txt (infer's stdout goes to infer.json). */
static elag_status start_phase(run_state *s, run_slot *slot, int phase)
{
    const elag_sweep_exec_options *o = s->o;
    char model[ELAG_PATH_LEN + 96], csr[ELAG_PATH_LEN + 96], json[ELAG_PATH_LEN + 96];
    char threads[16], device[64];
    snprintf(model, sizeof model, "%s/model.safetensors", slot->dir);
    snprintf(csr, sizeof csr, "%s/model.csr.safetensors", slot->dir);
    snprintf(json, sizeof json, "%s/infer.json", slot->dir);
    snprintf(threads, sizeof threads, "%d", o->threads);
    snprintf(device, sizeof device, "%s", slot->device);
    if (!device[0]) { /* the device the run trained on, as summary.json names it */
        char path[ELAG_PATH_LEN + 96], *text = NULL;
        snprintf(path, sizeof path, "%s/summary.json", slot->dir);
        cJSON *summary = NULL;
        if (elag_read_file(path, &text, NULL) == ELAG_OK) summary = cJSON_Parse(text);
        free(text);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(summary, "device");
        if (cJSON_IsString(d)) snprintf(device, sizeof device, "%s", d->valuestring);
        cJSON_Delete(summary);
    }
    const char *export_argv[] = {o->exe, "export", model, "--format", "csr", "-o", csr, NULL};
    const char *infer_argv[] = {o->exe, "infer", csr, "--batch", "256", "--threads", threads,
                                "--json", device[0] ? "--device" : NULL, device, NULL};
    const char *const *src = phase == PHASE_EXPORT ? export_argv : infer_argv;
    char *argv[16] = {0};
    int n = 0, ok = 1;
    for (; src[n] && ok; n++) ok = (argv[n] = strdup(src[n])) != NULL;
    elag_status st = ok ? ELAG_OK : elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    if (phase == PHASE_INFER) unlink(json);
    if (st == ELAG_OK)
        st = spawn(argv, slot->dir, o->threads, !s->sw->sets_threads, 1,
                   phase == PHASE_INFER ? json : NULL, &slot->pid);
    for (int i = 0; i < n; i++) free(argv[i]);
    if (st == ELAG_OK) slot->phase = phase;
    return st;
}

/* "what: <last log line> (exit N)" or "what: killed by signal N" for a failed child. */
static void child_error(const char *dir, const char *what, int status, char *error, size_t size)
{
    char line[420];
    last_log_line(dir, line, sizeof line);
    if (WIFSIGNALED(status))
        snprintf(error, size, "%skilled by signal %d%s%s", what, WTERMSIG(status),
                 line[0] ? "; log: " : "", line);
    else
        snprintf(error, size, "%s%s (exit %d)", what, line[0] ? line : "no message",
                 WEXITSTATUS(status));
}

/* A child exited. After training ok, the slot goes on with export and infer (unless
 * no_infer); after the last child, the run's row is recorded (unless the sweep is being
 * stopped and the child did not finish) and the slot is freed. */
static elag_status finish(run_state *s, run_slot *slot, int status)
{
    const elag_sweep_run *run = &s->sw->runs[slot->run];
    double secs = now_seconds() - slot->t0;
    int child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    int ok = child_ok;
    char summary[ELAG_PATH_LEN + 96], error[512] = "", infer_error[512] = "";
    double train_secs = secs, infer_secs = 0;
    elag_status st = ELAG_OK;
    if (slot->phase == PHASE_TRAIN) {
        snprintf(summary, sizeof summary, "%s/summary.json", slot->dir);
        if (ok && access(summary, R_OK) != 0) {
            ok = 0;
            snprintf(error, sizeof error, "exited 0 but wrote no summary.json");
        }
        if (ok && !s->o->no_infer) {
            if (elag_sweep_stop_signal) {
                snprintf(infer_error, sizeof infer_error, "not measured: the sweep was stopped");
            } else {
                slot->train_seconds = secs;
                elag_status pst = start_phase(s, slot, PHASE_EXPORT);
                if (pst == ELAG_OK) return ELAG_OK; /* the run goes on in its slot */
                snprintf(infer_error, sizeof infer_error, "export: %s", elag_last_error());
            }
        }
    } else {
        if (!child_ok && elag_sweep_stop_signal) {
            /* stopped mid-measurement: no row, the run is redone later */
            s->p.running--;
            close(slot->lock_fd);
            slot->pid = 0;
            slot->lock_fd = -1;
            return ELAG_OK;
        }
        ok = 1; /* training succeeded; a failed export or infer is the row's infer_error */
        train_secs = slot->train_seconds;
        infer_secs = secs - train_secs;
        const char *what = slot->phase == PHASE_EXPORT ? "export: " : "infer: ";
        if (!child_ok) {
            child_error(slot->dir, what, status, infer_error, sizeof infer_error);
        } else if (slot->phase == PHASE_EXPORT) {
            elag_status pst = elag_sweep_stop_signal ? ELAG_ERR_IO : start_phase(s, slot, PHASE_INFER);
            if (pst == ELAG_OK) return ELAG_OK;
            if (elag_sweep_stop_signal)
                snprintf(infer_error, sizeof infer_error, "not measured: the sweep was stopped");
            else
                snprintf(infer_error, sizeof infer_error, "infer: %s", elag_last_error());
        }
        status = 0; /* training exited 0 */
    }
    s->p.running--;
    if (!ok && elag_sweep_stop_signal) {
        /* stopped by us or by the same signal: not a failure, the run is redone later */
    } else {
        if (!ok && !error[0]) child_error(slot->dir, "", status, error, sizeof error);
        cJSON *row = make_row(run, slot->dir, ok, error, status, train_secs);
        if (row && ok && !s->o->no_infer) add_infer(row, slot->dir, infer_error, infer_secs);
        st = row ? elag_ledger_append(s->o->out_dir, row)
                 : elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
        cJSON_Delete(row);
        s->run_time_sum += secs;
        s->runs_timed++;
        if (ok) {
            s->out->ok++;
            s->p.done++;
        } else {
            s->out->failed++;
            s->p.failed++;
        }
        s->out->ran++;
        if (st == ELAG_OK) report(s, ok ? "ok" : "failed", run, error, secs);
    }
    close(slot->lock_fd);
    slot->pid = 0;
    slot->lock_fd = -1;
    return st;
}

/* Prepares and starts run r in slot; *started is 0 when the run turned out to be done
 * or held by another sweep process. */
static elag_status start(run_state *s, run_slot *slot, int slot_index, int r, int *started)
{
    const elag_sweep *sw = s->sw;
    const elag_sweep_exec_options *o = s->o;
    const elag_sweep_run *run = &sw->runs[r];
    *started = 0;
    snprintf(slot->dir, sizeof slot->dir, "%s/runs/%s", o->out_dir, run->id);
    elag_status st = elag_mkdirs(slot->dir);
    if (st != ELAG_OK) return st;
    int got = lock_run(slot->dir, &slot->lock_fd);
    if (got < 0) return elag_fail(ELAG_ERR_IO, "%s/.lock: cannot lock: %s", slot->dir, strerror(errno));
    if (got == 0) {
        s->out->elsewhere++;
        s->p.elsewhere++;
        return ELAG_OK;
    }
    /* another process may have finished it since we read the ledger */
    char path[ELAG_PATH_LEN + 96];
    snprintf(path, sizeof path, "%s/results.jsonl", o->out_dir);
    st = elag_ledger_refresh(path, &s->seen);
    const cJSON *row = st == ELAG_OK ? elag_ledger_find(&s->seen, run->id) : NULL;
    int done = row && strcmp(elag_ledger_status(row), "ok") == 0;
    if (st != ELAG_OK || done) {
        close(slot->lock_fd);
        slot->lock_fd = -1;
        if (done) {
            s->out->skipped++;
            s->p.done++;
        }
        return st;
    }
    snprintf(path, sizeof path, "%s/summary.json", slot->dir);
    unlink(path); /* a stale summary must not pass for this attempt's */
    const char *device = NULL;
    if (o->n_devices > 0 && !sw->sets_device) device = o->devices[slot_index % o->n_devices];
    char **argv = child_argv(sw, run, o, slot->dir, device);
    if (!argv) st = elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    if (st == ELAG_OK) st = spawn(argv, slot->dir, o->threads, !sw->sets_threads, 0, NULL, &slot->pid);
    free_argv(argv);
    if (st != ELAG_OK) {
        close(slot->lock_fd);
        slot->lock_fd = -1;
        return st;
    }
    slot->run = r;
    slot->phase = PHASE_TRAIN;
    snprintf(slot->device, sizeof slot->device, "%s", device ? device : "");
    slot->t0 = now_seconds();
    s->p.running++;
    *started = 1;
    report(s, "start", run, NULL, 0);
    return ELAG_OK;
}

elag_status elag_sweep_execute(const elag_sweep *sw, const elag_sweep_exec_options *o,
                               elag_sweep_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (o->jobs < 1 || o->threads < 1 || !o->exe || !o->out_dir)
        return elag_fail(ELAG_ERR_USAGE, "elag_sweep_execute: bad options");
    char path[ELAG_PATH_LEN + 64];
    snprintf(path, sizeof path, "%s/runs", o->out_dir);
    elag_status st = elag_mkdirs(path);
    if (st != ELAG_OK) return st;

    run_state s = {.sw = sw, .o = o, .out = out};
    int *todo = malloc((size_t)(sw->n_runs + 1) * sizeof *todo);
    run_slot *slots = calloc((size_t)o->jobs, sizeof *slots);
    elag_ledger *l = &s.seen;
    snprintf(path, sizeof path, "%s/results.jsonl", o->out_dir);
    if (!todo || !slots) st = elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    if (st == ELAG_OK) st = elag_ledger_read(path, l);
    if (st != ELAG_OK) {
        free(todo);
        free(slots);
        return st;
    }
    int n_todo = 0;
    for (int r = 0; r < sw->n_runs; r++) {
        if (!elag_sweep_in_shard(sw->runs[r].index, o->shard, o->n_shards)) continue;
        out->total++;
        const cJSON *row = elag_ledger_find(l, sw->runs[r].id);
        const char *status = row ? elag_ledger_status(row) : "";
        if (strcmp(status, "ok") == 0) {
            out->skipped++;
            s.p.done++;
        } else if (row && !o->retry_failed) {
            out->skipped++;
            s.p.failed++;
        } else {
            todo[n_todo++] = r;
        }
    }
    s.p.total = out->total;
    s.pending = n_todo;
    for (int i = 0; i < o->jobs; i++) slots[i].lock_fd = -1;

    struct sigaction sa = {0}, old_int, old_term, old_hup, old_chld;
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    elag_sweep_stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    sa.sa_handler = on_child_signal;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, &old_chld);

    int next = 0, killed = 0;
    double last_tick = now_seconds(), stop_at = 0;
    report(&s, NULL, NULL, NULL, 0);
    for (;;) {
        int stopping = elag_sweep_stop_signal || st != ELAG_OK;
        for (int i = 0; !stopping && i < o->jobs && next < n_todo; i++) {
            if (slots[i].pid) continue;
            int started = 0;
            s.pending--;
            st = start(&s, &slots[i], i, todo[next++], &started);
            if (st != ELAG_OK) stopping = 1;
            if (!started) i--; /* try the next run in the same slot */
        }
        if (s.p.running == 0 && (stopping || next >= n_todo)) break;
        if (stopping && !killed) { /* stop the children; their runs get no row */
            for (int i = 0; i < o->jobs; i++)
                if (slots[i].pid) kill(slots[i].pid, SIGTERM);
            killed = 1;
            stop_at = now_seconds();
        }
        if (killed == 1 && now_seconds() - stop_at > 10) {
            for (int i = 0; i < o->jobs; i++)
                if (slots[i].pid) kill(slots[i].pid, SIGKILL);
            killed = 2;
        }
        int reaped = 0;
        for (int i = 0; i < o->jobs; i++) {
            int status;
            if (!slots[i].pid || waitpid(slots[i].pid, &status, WNOHANG) != slots[i].pid) continue;
            elag_status fst = finish(&s, &slots[i], status);
            if (st == ELAG_OK) st = fst;
            reaped = 1;
        }
        if (reaped) continue;
        if (o->tick_seconds > 0 && now_seconds() - last_tick >= o->tick_seconds) {
            last_tick = now_seconds();
            report(&s, NULL, NULL, NULL, 0);
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL); /* SIGCHLD cuts it short */
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    out->interrupted = elag_sweep_stop_signal;
    free(todo);
    free(slots);

    /* results.csv from the whole ledger (every shard's rows that are there by now) */
    if (st == ELAG_OK) st = elag_ledger_refresh(path, l);
    if (st == ELAG_OK) {
        snprintf(path, sizeof path, "%s/results.csv", o->out_dir);
        st = elag_ledger_write_csv(l, path);
    }
    elag_ledger_free(l);
    return st;
}
