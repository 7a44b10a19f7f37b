/*
 * elag: entry point and subcommand dispatch.
 */
#include "cli.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

static const char usage[] =
    "usage: elag <command> [options]\n"
    "\n"
    "Train neural networks while pruning them.\n"
    "\n"
    "commands:\n"
    "  train CONFIG   train (and prune) a model, writes runs/<name>/\n"
    "  eval MODEL     test accuracy and per-layer sparsity of a checkpoint\n"
    "  export MODEL   write a pruned model as dense, CSR or Blocked-ELL weights, or ONNX\n"
    "  import FILE    read an ONNX model as a checkpoint (to evaluate, prune, fine-tune)\n"
    "  infer FILE     sparse inference: accuracy, throughput, latency\n"
    "  bench spmm     sparse vs dense products on real layer shapes\n"
    "  bench model F  end-to-end dense vs sparse inference of an export\n"
    "  sweep FILE     a grid of runs: parallel, resumable, shardable\n"
    "  report DIR     tables and plots of a sweep\n"
    "  sensitivity X  accuracy with each layer pruned alone; per-layer targets for a budget\n"
    "\n"
    "options:\n"
    "  --version      print the version\n"
    "  --help         this help; 'elag <command> --help' for a command's options\n"
    "\n"
    "exit codes: 0 success, 2 bad usage or bad input, 1 other failure\n";

/* Library notes ("no CUDA device found, using the CPU") wait here until the command has
 * got past its input checks: they are printed by the first progress line or when the
 * command succeeds, and dropped when it fails, so a bad input stays one line. */
enum { CLI_NOTES = 4, CLI_NOTE_LEN = 320 };
static char notes[CLI_NOTES][CLI_NOTE_LEN];
static int n_notes;

void elag_cli_note(const char *text, void *user)
{
    (void)user;
    if (n_notes == CLI_NOTES) elag_cli_notes_flush();
    snprintf(notes[n_notes++], CLI_NOTE_LEN, "%s", text);
}

void elag_cli_notes_flush(void)
{
    for (int i = 0; i < n_notes; i++) fprintf(stderr, "elag: %s\n", notes[i]);
    n_notes = 0;
}

int elag_cli_fail(elag_status st)
{
    fprintf(stderr, "elag: %s\n", elag_last_error());
    return elag_status_exit_code(st);
}

int elag_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "elag %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'elag %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

int elag_cli_unknown_option(const char *cmd, const char *arg, const char *help)
{
    /* the candidates: every distinct "--name" the command's help mentions */
    enum { MAX_OPTS = 64, OPT_LEN = 40 };
    char names[MAX_OPTS][OPT_LEN];
    const char *cands[MAX_OPTS];
    size_t n = 0;
    for (const char *p = help; (p = strstr(p, "--")) != NULL && n < MAX_OPTS;) {
        size_t len = 2;
        while (isalnum((unsigned char)p[len]) || p[len] == '-' || p[len] == '_') len++;
        int seen = len < 3 || len >= OPT_LEN;
        for (size_t j = 0; j < n && !seen; j++)
            seen = strlen(names[j]) == len && strncmp(names[j], p, len) == 0;
        if (!seen) {
            memcpy(names[n], p, len);
            names[n][len] = '\0';
            cands[n] = names[n];
            n++;
        }
        p += len;
    }
    char word[OPT_LEN * 2];
    snprintf(word, sizeof word, "%.*s", (int)strcspn(arg, "="), arg); /* "--batch=5" */
    const char *best = elag_suggest(word, cands, n);
    if (best)
        return elag_cli_usage_error(cmd, "unknown option '%s' (did you mean '%s'?)", arg, best);
    return elag_cli_usage_error(cmd, "unknown option '%s'", arg);
}

int elag_cli_take_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "elag: option %s needs a value\n", name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("elag %s\n", elag_version());
        return 0;
    }
    int (*run)(int, char **) = NULL;
    if (strcmp(cmd, "train") == 0) run = elag_cmd_train;
    if (strcmp(cmd, "eval") == 0) run = elag_cmd_eval;
    if (strcmp(cmd, "export") == 0) run = elag_cmd_export;
    if (strcmp(cmd, "import") == 0) run = elag_cmd_import;
    if (strcmp(cmd, "infer") == 0) run = elag_cmd_infer;
    if (strcmp(cmd, "bench") == 0) run = elag_cmd_bench;
    if (strcmp(cmd, "sweep") == 0) run = elag_cmd_sweep;
    if (strcmp(cmd, "report") == 0) run = elag_cmd_report;
    if (strcmp(cmd, "sensitivity") == 0) run = elag_cmd_sensitivity;
    if (run) {
        int rc = run(argc - 1, argv + 1);
        if (rc == 0) elag_cli_notes_flush(); /* a failure's message stays one line */
        return rc;
    }
    static const char *const names[] = {"train", "eval", "export", "import", "infer", "bench",
                                        "sweep", "report", "sensitivity", "--version",
                                        "--help"};
    const char *best = elag_suggest(cmd, names, sizeof names / sizeof names[0]);
    if (best)
        fprintf(stderr, "elag: unknown command '%s' (did you mean '%s'? see 'elag --help')\n",
                cmd, best);
    else
        fprintf(stderr, "elag: unknown command '%s' (see 'elag --help')\n", cmd);
    return 2;
}
