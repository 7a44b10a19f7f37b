/*
 * sensitivity.png for `elag sensitivity`: test accuracy against a layer's sparsity, one line
 * per layer, drawn from sensitivity.json by the Python script below, run with the system
 * interpreter (/usr/bin/python3, where Debian's python3-matplotlib lives) or $ELAG_PYTHON,
 * as `elag report` does. The script is embedded so that an installed binary needs no file
 * beside it. Without an interpreter or matplotlib the plot is skipped with a reason.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SENSITIVITY_PYTHON "/usr/bin/python3"

/* argv: JSON PNG. Exit 3 when matplotlib cannot be imported. */
static const char plot_script[] =
    "import json, os, sys\n"
    "try:\n"
    "    import matplotlib\n"
    "    matplotlib.use('Agg')\n"
    "    import matplotlib.pyplot as plt\n"
    "except ImportError as e:\n"
    "    print(e, file=sys.stderr)\n"
    "    sys.exit(3)\n"
    "src, dst = sys.argv[1], sys.argv[2]\n"
    "with open(src) as f:\n"
    "    r = json.load(f)\n"
    "fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)\n"
    "for l in r['layers']:\n"
    "    pts = sorted(l['results'], key=lambda p: p['level'])\n"
    "    ax.plot([p['level'] for p in pts], [p['test_accuracy'] for p in pts], marker='o',\n"
    "            ms=3, label='%s (%d weights)' % (l['name'], l['params']))\n"
    "ax.axhline(r['baseline_accuracy'], color='gray', ls='--', lw=1, label='nothing pruned')\n"
    "ft = r['finetune_steps']\n"
    "how = '%d fine-tune steps' % ft if ft else 'no fine-tune'\n"
    "ax.set_title('%s: one layer pruned at a time (%s, %s)' % (r['name'], r['granularity'], how),\n"
    "             fontsize=9)\n"
    "ax.set_xlabel('sparsity of the pruned layer (level)')\n"
    "ax.set_ylabel('test accuracy')\n"
    "ax.grid(alpha=0.3)\n"
    "ax.legend(fontsize=7)\n"
    "fig.tight_layout()\n"
    "tmp = dst + '.tmp.%d.png' % os.getpid()\n"
    "fig.savefig(tmp)\n"
    "os.replace(tmp, dst)\n";

/* A name without '/' (ELAG_PYTHON=python3) is looked up in PATH, as a shell does. */
static void resolve_program(const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s", name);
    const char *path = getenv("PATH");
    if (strchr(name, '/') || !path) return;
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        char cand[ELAG_CLI_PATH_LEN];
        snprintf(cand, sizeof cand, "%.*s/%s", (int)n, n ? p : ".", name);
        if (access(cand, X_OK) == 0) {
            snprintf(out, size, "%s", cand);
            return;
        }
        p += n;
        if (*p == ':') p++;
    }
}

/* Runs `python -c script json png`, its stdout and stderr into err (cut to fit); returns
 * its exit status, or -1 when it could not be started or did not exit. */
static int run_script(const char *python, const char *json, const char *png, char *err,
                      size_t err_size)
{
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        execl(python, python, "-c", plot_script, json, png, (char *)NULL);
        fprintf(stderr, "cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0;
    for (;;) {
        char sink[512];
        size_t room = err_size - 1 - len;
        ssize_t got = room ? read(fd[0], err + len, room) : read(fd[0], sink, sizeof sink);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        if (room) len += (size_t)got;
    }
    close(fd[0]);
    err[len] = '\0';
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The last non-empty line of text, into out. */
static void last_line(const char *text, char *out, size_t size)
{
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' ')) n--;
    size_t start = n;
    while (start > 0 && text[start - 1] != '\n') start--;
    snprintf(out, size, "%.*s", (int)(n - start), text + start);
}

int elag_cli_sensitivity_plot(const char *json, const char *png, char *why, size_t why_size)
{
    const char *python = getenv("ELAG_PYTHON");
    if (!python || !*python) python = SENSITIVITY_PYTHON;
    char path[ELAG_CLI_PATH_LEN];
    resolve_program(python, path, sizeof path);
    if (access(path, X_OK) != 0) {
        snprintf(why, why_size,
                 "no Python interpreter at %s (Debian: apt-get install "
                 "python3-matplotlib; or set ELAG_PYTHON)",
                 path);
        return 1;
    }
    char err[4096], line[512];
    int rc = run_script(path, json, png, err, sizeof err);
    last_line(err, line, sizeof line);
    if (rc == 3) {
        snprintf(why, why_size,
                 "%s cannot import matplotlib (%s; Debian: apt-get install "
                 "python3-matplotlib)",
                 path, line);
        return 1;
    }
    if (rc < 0) {
        snprintf(why, why_size, "%s did not finish (could not start, or killed by a signal)", path);
        return -1;
    }
    if (rc != 0) {
        snprintf(why, why_size, "%s exited with status %d: %s", path, rc, line);
        return -1;
    }
    return 0;
}
