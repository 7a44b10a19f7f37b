/*
 * `elag report DIR`: tables and plots of a sweep into DIR/report/. The tables
 * (summary.md, summary.csv, layers.csv) come from host/sweep/report.c and need nothing
 * but the ledger; the PNG plots come from scripts/plot.py run with /usr/bin/python3
 * (matplotlib, numpy). Without matplotlib the tables are still written, the command
 * says the plots were skipped and exits 0. docs/sweeps.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "sweep/sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PLOTS 32

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
    "  --no-plots       tables only\n"
    "  --python PATH    interpreter for plot.py (default $ELAG_PYTHON, else /usr/bin/python3)\n"
    "  --plot-script F  plot script (default $ELAG_PLOT_SCRIPT, else scripts/plot.py found\n"
    "                   next to the binary, in the source tree it was built from, or in .)\n"
    "  --help           this help\n";

/* scripts/plot.py: beside the binary (bin/../scripts), in the source tree the binary was
 * built from (this file's path at compile time), or under the working directory. */
static int find_plot_script(char *out, size_t size)
{
    const char *env = getenv("ELAG_PLOT_SCRIPT");
    if (env && *env) {
        snprintf(out, size, "%s", env);
        return access(out, R_OK) == 0;
    }
    char exe[ELAG_PATH_LEN];
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

/* Runs `python script dir`; its stdout (the PNG names, one a line) goes into names,
 * its stderr through. Returns the exit status, or -1 when it could not be started. */
static int run_plot(const char *python, const char *script, const char *dir, char *names,
                    size_t size)
{
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execl(python, python, script, dir, (char *)NULL);
        fprintf(stderr, "elag report: cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    char sink[256];
    while ((got = read(fds[0], len + 1 < size ? names + len : sink,
                       len + 1 < size ? size - 1 - len : sizeof sink)) != 0) {
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) break;
        if (len + 1 < size) len += (size_t)got;
    }
    names[len] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
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
            return elag_cli_usage_error("report", "unknown option '%s'", argv[i]);
        if (dir) return elag_cli_usage_error("report", "unexpected argument '%s'", argv[i]);
        dir = argv[i];
    }
    if (!dir) return elag_cli_usage_error("report", "missing DIR (a sweep output folder)");

    int ok = 0, failed = 0;
    elag_status st = elag_sweep_report(dir, NULL, 0, NULL, &ok, &failed);
    if (st != ELAG_OK) return elag_cli_fail(st);
    fprintf(stderr, "report: %s/report/summary.md, summary.csv, layers.csv (%d runs ok, %d "
                    "failed)\n", dir, ok, failed);
    if (no_plots || ok == 0) {
        if (ok == 0 && !no_plots) fprintf(stderr, "report: no finished runs, so no plots\n");
        return 0;
    }

    char script[ELAG_PATH_LEN + 64], note[ELAG_PATH_LEN + 256] = "";
    if (!python) python = getenv("ELAG_PYTHON");
    if (!python || !*python) python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    int have_script = script_opt ? (snprintf(script, sizeof script, "%s", script_opt),
                                    access(script, R_OK) == 0)
                                 : find_plot_script(script, sizeof script);
    char names[4096] = "";
    int have_python = strchr(python, '/') == NULL || access(python, X_OK) == 0;
    int rc = !have_script ? -2 : !have_python ? 3 : run_plot(python, script, dir, names, sizeof names);
    if (rc == 3 && !have_python)
        snprintf(note, sizeof note, "Plots skipped: no Python interpreter at %s.", python);
    else if (rc == -2)
        snprintf(note, sizeof note, "Plots skipped: scripts/plot.py not found (set "
                 "ELAG_PLOT_SCRIPT or pass --plot-script).");
    else if (rc == 3)
        snprintf(note, sizeof note, "Plots skipped: %s has no matplotlib/numpy (Debian: apt-get "
                 "install python3-matplotlib).", python);
    else if (rc != 0)
        snprintf(note, sizeof note, "Plots failed: %s %s exited with status %d.", python, script,
                 rc);

    const char *plots[MAX_PLOTS];
    int n_plots = 0;
    for (char *save = NULL, *t = strtok_r(names, "\n", &save); t && n_plots < MAX_PLOTS;
         t = strtok_r(NULL, "\n", &save))
        if (strstr(t, ".png")) plots[n_plots++] = t;
    st = elag_sweep_report(dir, plots, n_plots, note[0] ? note : NULL, NULL, NULL);
    if (st != ELAG_OK) return elag_cli_fail(st);
    if (note[0]) {
        fprintf(stderr, "report: %s\n", note);
        return rc == 3 || rc == -2 ? 0 : 1;
    }
    fprintf(stderr, "report: %d plots in %s/report/:", n_plots, dir);
    for (int i = 0; i < n_plots; i++) fprintf(stderr, " %s", plots[i]);
    fputc('\n', stderr);
    return 0;
}
