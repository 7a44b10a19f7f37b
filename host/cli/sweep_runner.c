/*
 * Runs a sweep's commands as child processes of the elag binary: the library
 * (include/elag/sweep.h: a shard and its jobs) says which runs are to do, claims each one
 * and names the command of each of its steps (train, then export and infer); this file
 * forks and execs them, `jobs` at a time, and hands each exit status back to the library,
 * which records the run's row.
 * A crash in one run is that run's failed row, never the sweep's end.
 *
 * Each child has stdin /dev/null and its output in <out>/runs/<id>/log.txt (as the
 * command says), and gets SIGKILL when the sweep process dies (PR_SET_PDEATHSIG), so a
 * killed sweep leaves no orphans that could still append rows. Job slot k gets device
 * devices[k % n_devices] unless the sweep sets `device`. SIGINT, SIGTERM or SIGHUP stop
 * the sweep: no run starts any more, the children get SIGTERM (SIGKILL 10 s later), and
 * the library writes no row for a run they cut short.
 */
#define _GNU_SOURCE /* prctl, dprintf */
#include "sweep_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The signal that asked the sweep to stop. A signal handler can only reach a global;
 * it is set by the handler and read by the one loop in elag_cli_sweep_execute. */
static volatile sig_atomic_t elag_cli_sweep_stop_signal = 0;

static void on_stop_signal(int sig) { elag_cli_sweep_stop_signal = sig; }
static void on_child_signal(int sig) { (void)sig; /* only wakes nanosleep */ }

typedef struct run_slot {
    pid_t pid;             /* 0: free */
    elag_sweep_job_t *job; /* the run the slot works on, while pid != 0 */
    double t0;             /* when the run's first step started */
} run_slot;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Starts `exe argv...` of the job's current command, with the output where it says. */
static elag_status spawn(const char *exe, const elag_sweep_job_t *job, pid_t *pid_out)
{
    elag_sweep_command c;
    elag_sweep_job_command(job, &c);
    const elag_sweep_command *cmd = &c;
    int n = 0;
    while (cmd->argv[n]) n++;
    char **argv = calloc((size_t)n + 2, sizeof *argv);
    if (!argv) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    argv[0] = (char *)exe;
    for (int i = 0; i < n; i++) argv[i + 1] = (char *)cmd->argv[i]; /* execv's type */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        return elag_fail(ELAG_ERR_IO, "sweep: fork failed: %s", strerror(errno));
    }
    if (pid == 0) {
        /* the child: dies with the sweep, logs to its folder, then becomes `elag <cmd>` */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        int mode = cmd->log_append ? O_APPEND : O_TRUNC;
        int fd = open(cmd->log, O_WRONLY | O_CREAT | mode | O_CLOEXEC, 0644);
        int ofd = cmd->stdout_path[0]
                      ? open(cmd->stdout_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)
                      : fd;
        int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ofd < 0 || nul < 0 || dup2(ofd, 1) < 0 || dup2(fd, 2) < 0 || dup2(nul, 0) < 0)
            _exit(127);
        if (cmd->omp_threads > 0) {
            char t[16];
            snprintf(t, sizeof t, "%d", cmd->omp_threads);
            setenv("OMP_NUM_THREADS", t, 1);
        }
        execv(argv[0], argv);
        dprintf(2, "elag sweep: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    free(argv);
    *pid_out = pid;
    return ELAG_OK;
}

typedef struct run_state {
    const elag_sweep_t *sw;
    const elag_cli_sweep_options *o;
    elag_cli_sweep_outcome *out;
    elag_cli_sweep_progress p;
    elag_sweep_shard_t *sh; /* the runs to do */
    int n_todo;
    double run_time_sum; /* wall time of the runs finished in this session */
    int runs_timed, pending;
} run_state;

static void report(run_state *s, const char *event, int run, const char *error, double seconds)
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

/* A child of the slot exited: the library records it or names the run's next step, which
 * starts in the same slot. */
static elag_status finish(run_state *s, run_slot *slot, int status)
{
    elag_sweep_job_t *job = slot->job;
    int run = elag_sweep_job_run(job);
    double secs = now_seconds() - slot->t0;
    int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    elag_sweep_job_state state;
    elag_status st = elag_sweep_job_ended(job, exit_code, sig, secs,
                                          elag_cli_sweep_stop_signal != 0, &state);
    if (state == ELAG_SWEEP_JOB_NEXT) {
        if (spawn(s->o->exe, job, &slot->pid) == ELAG_OK) return ELAG_OK;
        st = elag_sweep_job_not_started(job, elag_last_error(), &state);
    }
    s->p.running--;
    slot->pid = 0;
    slot->job = NULL;
    if (state == ELAG_SWEEP_JOB_DROPPED) {
        elag_sweep_job_free(job);
        return st;
    }
    int ok = state == ELAG_SWEEP_JOB_OK;
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
    if (st == ELAG_OK) report(s, ok ? "ok" : "failed", run, elag_sweep_job_error(job), secs);
    elag_sweep_job_free(job);
    return st;
}

/* Claims run r for slot i and starts its training; *started is 0 when the run turned out
 * to be done or held by another sweep process. */
static elag_status start(run_state *s, run_slot *slot, int slot_index, int r, int *started)
{
    const elag_cli_sweep_options *o = s->o;
    *started = 0;
    const char *device = NULL;
    if (o->n_devices > 0 && !elag_sweep_sets_device(s->sw))
        device = o->devices[slot_index % o->n_devices];
    elag_sweep_claim claim;
    elag_sweep_job_t *job = NULL;
    elag_status st = elag_sweep_shard_claim(s->sh, r, device, &claim, &job);
    if (st != ELAG_OK) return st;
    if (claim == ELAG_SWEEP_CLAIM_HELD) {
        s->out->elsewhere++;
        s->p.elsewhere++;
        return ELAG_OK;
    }
    if (claim == ELAG_SWEEP_CLAIM_DONE) {
        s->out->skipped++;
        s->p.done++;
        return ELAG_OK;
    }
    st = spawn(o->exe, job, &slot->pid);
    if (st != ELAG_OK) {
        elag_sweep_job_free(job);
        return st;
    }
    slot->job = job;
    slot->t0 = now_seconds();
    s->p.running++;
    *started = 1;
    report(s, "start", r, NULL, 0);
    return ELAG_OK;
}

/* The loop: fill free slots, reap children, stop on a signal or an error. */
static elag_status run_all(run_state *s, run_slot *slots)
{
    const elag_cli_sweep_options *o = s->o;
    elag_status st = ELAG_OK;
    int next = 0, killed = 0;
    double last_tick = now_seconds(), stop_at = 0;
    report(s, NULL, -1, NULL, 0);
    for (;;) {
        int stopping = elag_cli_sweep_stop_signal || st != ELAG_OK;
        for (int i = 0; !stopping && i < o->jobs && next < s->n_todo; i++) {
            if (slots[i].pid) continue;
            int started = 0;
            s->pending--;
            st = start(s, &slots[i], i, elag_sweep_shard_todo(s->sh, next++), &started);
            if (st != ELAG_OK) stopping = 1;
            if (!started) i--; /* try the next run in the same slot */
        }
        if (s->p.running == 0 && (stopping || next >= s->n_todo)) break;
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
            elag_status fst = finish(s, &slots[i], status);
            if (st == ELAG_OK) st = fst;
            reaped = 1;
        }
        if (reaped) continue;
        if (o->tick_seconds > 0 && now_seconds() - last_tick >= o->tick_seconds) {
            last_tick = now_seconds();
            report(s, NULL, -1, NULL, 0);
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL); /* SIGCHLD cuts it short */
    }
    return st;
}

elag_status elag_cli_sweep_execute(const elag_sweep_t *sw, const elag_cli_sweep_options *o,
                                   elag_cli_sweep_outcome *out)
{
    memset(out, 0, sizeof *out);
    if (o->jobs < 1 || o->threads < 1 || !o->exe || !o->out_dir)
        return elag_fail(ELAG_ERR_USAGE, "elag_cli_sweep_execute: bad options");
    run_state s = {.sw = sw, .o = o, .out = out};
    elag_sweep_shard_options so = ELAG_SWEEP_SHARD_OPTIONS_INIT;
    so.out_dir = o->out_dir;
    so.threads = o->threads;
    so.shard = o->shard;
    so.n_shards = o->n_shards;
    so.retry_failed = o->retry_failed;
    so.no_infer = o->no_infer;
    run_slot *slots = NULL;
    elag_status st = elag_sweep_shard_open(&s.sh, sw, &so);
    if (st == ELAG_OK && !(slots = calloc((size_t)o->jobs, sizeof *slots)))
        st = elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    if (st != ELAG_OK) {
        elag_sweep_shard_free(s.sh);
        return st;
    }
    int total, done, failed;
    elag_sweep_shard_counts(s.sh, &total, &done, &failed, &s.n_todo);
    out->total = total;
    out->skipped = done + failed;
    s.p.total = total;
    s.p.done = done;
    s.p.failed = failed;
    s.pending = s.n_todo;

    struct sigaction sa = {0}, old_int, old_term, old_hup, old_chld;
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    elag_cli_sweep_stop_signal = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    sa.sa_handler = on_child_signal;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, &old_chld);

    st = run_all(&s, slots);

    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    out->interrupted = elag_cli_sweep_stop_signal;
    free(slots);

    /* results.csv from the whole ledger (every shard's rows that are there by now) */
    if (st == ELAG_OK) st = elag_sweep_shard_write_csv(s.sh);
    elag_sweep_shard_free(s.sh);
    return st;
}
