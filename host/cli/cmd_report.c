/*
 * `elag report DIR`: tables and plots of a sweep into DIR/report/. The tables
 * (summary.md, summary.csv, layers.csv) come from elag_sweep_report and need nothing
 * but the ledger; the PNG plots come from scripts/plot.py run with /usr/bin/python3
 * (matplotlib, numpy: Debian's python3-matplotlib), or $ELAG_PYTHON / --python. When the
 * plots cannot be drawn (no interpreter, no matplotlib, no plot script, the script failed)
 * the tables are still written, one line on stderr says what is missing and how to install
 * it, and the exit status is 1; --no-plots asks for tables only (exit 0). An interpreter or
 * plot script named by --python/ELAG_PYTHON or --plot-script/ELAG_PLOT_SCRIPT that is not
 * there is bad usage (exit 2, nothing written). docs/sweeps.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PLOTS 32
/* Debian's python3-matplotlib and python3-numpy belong to the system interpreter; a
 * python3 earlier on PATH (pyenv, a venv) usually lacks them. */
#define ELAG_REPORT_PYTHON "/usr/bin/python3"

static const char report_usage[] =
    "usage: elag report DIR [options]\n"
    "\n"
    "Writes DIR/report/ from a sweep's ledger DIR/results.jsonl: summary.md and summary.csv\n"
    "(method, target sparsity, accuracy mean +/- std over seeds, nonzero weights, model\n"
    "file size, throughput), layers.csv (per-layer sparsity), and PNG plots drawn by\n"
    "scripts/plot.py: accuracy vs sparsity, throughput vs sparsity, the accuracy/latency\n"
    "Pareto front and mask heatmaps.\n"
    "\n"
    "options:\n"
    "  --no-plots       tables only; without it, plots that cannot be drawn (e.g. no\n"
    "                   python3-matplotlib) are reported in one line and exit status 1\n"
    "  --python PATH    interpreter for plot.py (default $ELAG_PYTHON, else /usr/bin/python3;\n"
    "                   a name without '/' is looked up in PATH)\n"
    "  --plot-script F  plot script (default $ELAG_PLOT_SCRIPT, else scripts/plot.py found\n"
    "                   next to the binary, in the source tree it was built from, or in .)\n"
    "  --help           this help\n";

/* scripts/plot.py: beside the binary (bin/../scripts), in the source tree the binary was
 * built from (this file's path at compile time), or under the working directory. */
static int find_plot_script(char *out, size_t size)
{
    char exe[ELAG_CLI_PATH_LEN];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *dir = dirname(exe);
        const char *rel[] = {"../scripts/plot.py", "scripts/plot.py", "../share/elag/plot.py"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(out, size, "%s/%s", dir, rel[i]);
            if (access(out, R_OK) == 0) return 1;
        }
    }
    const char *self = __FILE__, *tail = strstr(self, "host/cli/cmd_report.c");
    if (self[0] == '/' && tail) {
        snprintf(out, size, "%.*sscripts/plot.py", (int)(tail - self), self);
        if (access(out, R_OK) == 0) return 1;
    }
    snprintf(out, size, "scripts/plot.py");
    return access(out, R_OK) == 0;
}

/* Runs `python script dir`. Its stdout (the PNG names, one a line) goes into out and its
 * stderr into err (both cut at their size, NUL-terminated). Returns the exit status, or -1
 * when it could not be started or did not exit. */
static int run_plot(const char *python, const char *script, const char *dir, char *out,
                    size_t out_size, char *err, size_t err_size)
{
    int po[2], pe[2];
    if (pipe(po) != 0) return -1;
    if (pipe(pe) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        execl(python, python, script, dir, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    char *bufs[2] = {out, err};
    size_t sizes[2] = {out_size, err_size}, lens[2] = {0, 0};
    int open_fds = 2;
    while (open_fds > 0) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd < 0 || fds[k].revents == 0) continue;
            char sink[512];
            size_t room = sizes[k] - 1 - lens[k];
            ssize_t got = room > 0 ? read(fds[k].fd, bufs[k] + lens[k], room)
                                   : read(fds[k].fd, sink, sizeof sink);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                close(fds[k].fd);
                fds[k].fd = -1;
                open_fds--;
                continue;
            }
            if (room > 0) lens[k] += (size_t)got;
        }
    }
    for (int k = 0; k < 2; k++)
        if (fds[k].fd >= 0) close(fds[k].fd);
    out[lens[0]] = '\0';
    err[lens[1]] = '\0';
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A program name without '/' (ELAG_PYTHON=python3) is looked up in PATH, as a shell does:
 * out gets the first executable match, or the name unchanged when there is none. */
static void resolve_program(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s", name);
    const char *path = getenv("PATH");
    if (strchr(name, '/') || !path) return;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        char cand[ELAG_CLI_PATH_LEN];
        snprintf(cand, sizeof cand, "%.*s%s%s", (int)n, n ? p : ".", "/", name);
        if (access(cand, X_OK) == 0) {
            snprintf(out, size, "%s", cand);
            return;
        }
        p += n;
        if (*p == ':') p++;
    }
}

/* The module named in plot.py's "No module named 'X'" message, else "matplotlib/numpy". */
static void missing_module(const char *err, char *name, size_t size)
{
    const char *at = strstr(err, "No module named '");
    if (at) {
        at += strlen("No module named '");
        size_t n = strcspn(at, "'\n");
        snprintf(name, size, "%.*s", (int)n, at);
    } else {
        snprintf(name, size, "matplotlib/numpy");
    }
}

int elag_cmd_report(int argc, char **argv)
{
    const char *dir = NULL, *python = NULL, *script_opt = NULL;
    int no_plots = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(report_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--no-plots") == 0) { no_plots = 1; continue; }
        if ((r = elag_cli_take_value(argc, argv, &i, "--python", &python)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--plot-script", &script_opt)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("report", argv[i], report_usage);
        if (dir) return elag_cli_usage_error("report", "unexpected argument '%s'", argv[i]);
        dir = argv[i];
    }
    if (!dir) return elag_cli_usage_error("report", "missing DIR (a sweep output folder)");

    /* An interpreter or plot script the user named must be there: bad usage (exit 2),
     * found before anything is written. The default interpreter is the system one. */
    const char *python_from = "--python";
    if (!python || !*python) {
        python = getenv("ELAG_PYTHON");
        python_from = "ELAG_PYTHON";
    }
    if (!python || !*python) {
        python = ELAG_REPORT_PYTHON;
        python_from = NULL;
    }
    char python_path[ELAG_CLI_PATH_LEN];
    resolve_program(python, python_path, sizeof python_path);
    python = python_path;
    const char *script_from = "--plot-script", *env_script = getenv("ELAG_PLOT_SCRIPT");
    if ((!script_opt || !*script_opt) && env_script && *env_script) {
        script_opt = env_script;
        script_from = "ELAG_PLOT_SCRIPT";
    }
    if (!no_plots && python_from && access(python, X_OK) != 0)
        return elag_cli_usage_error("report", "%s %s: not an executable file", python_from,
                                    python);
    if (!no_plots && script_opt && *script_opt && access(script_opt, R_OK) != 0)
        return elag_cli_usage_error("report", "%s %s: not a readable file", script_from,
                                    script_opt);

    int ok = 0, failed = 0;
    elag_status st = elag_sweep_report(dir, NULL, 0, NULL, &ok, &failed);
    if (st != ELAG_OK) return elag_cli_fail(st);
    fprintf(stderr, "report: %s/report/summary.md, summary.csv, layers.csv (%d runs ok, %d "
                    "failed)\n", dir, ok, failed);
    if (no_plots || ok == 0) {
        if (ok == 0 && !no_plots) fprintf(stderr, "report: no finished runs, so no plots\n");
        return 0;
    }

    /* Plots were asked for: when they cannot be drawn, the tables stay, summary.md and one
     * line on stderr say why and what to install, and the exit status is 1. */
    char script[ELAG_CLI_PATH_LEN + 64], why[ELAG_CLI_PATH_LEN + 256] = "";
    char names[4096] = "", err[4096] = "";
    int rc = 0;
    if (script_opt && *script_opt)
        snprintf(script, sizeof script, "%s", script_opt);
    else if (!find_plot_script(script, sizeof script))
        snprintf(why, sizeof why, "scripts/plot.py not found (set ELAG_PLOT_SCRIPT or pass "
                 "--plot-script)");
    if (!why[0] && access(python, X_OK) != 0)
        snprintf(why, sizeof why, "no Python interpreter at %s (Debian: apt-get install "
                 "python3-matplotlib)", python);
    if (!why[0]) {
        rc = run_plot(python, script, dir, names, sizeof names, err, sizeof err);
        if (rc == 3) { /* plot.py: an import failed */
            char module[64];
            missing_module(err, module, sizeof module);
            snprintf(why, sizeof why, "%s cannot import %s (Debian: apt-get install "
                     "python3-matplotlib)", python, module);
        } else {
            fputs(err, stderr); /* plot.py's notes, or why it failed */
            if (rc < 0)
                snprintf(why, sizeof why, "%s %s did not finish (could not start, or killed "
                         "by a signal)", python, script);
            else if (rc != 0)
                snprintf(why, sizeof why, "%s %s exited with status %d", python, script, rc);
        }
    }

    const char *plots[MAX_PLOTS];
    int n_plots = 0;
    for (char *save = NULL, *t = strtok_r(names, "\n", &save); t && n_plots < MAX_PLOTS;
         t = strtok_r(NULL, "\n", &save))
        if (strstr(t, ".png")) plots[n_plots++] = t;
    char note[sizeof why + 64] = "";
    if (why[0]) snprintf(note, sizeof note, "Plots not drawn: %s.", why);
    st = elag_sweep_report(dir, plots, n_plots, note[0] ? note : NULL, NULL, NULL);
    if (st != ELAG_OK) return elag_cli_fail(st);
    if (why[0]) {
        fprintf(stderr, "elag report: plots not drawn: %s; the tables are in %s/report/ "
                        "(--no-plots: tables only)\n", why, dir);
        return 1;
    }
    fprintf(stderr, "report: %d plots in %s/report/:", n_plots, dir);
    for (int i = 0; i < n_plots; i++) fprintf(stderr, " %s", plots[i]);
    fputc('\n', stderr);
    return 0;
}
