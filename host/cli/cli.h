/*
 * The elag command line: subcommands, shared argument helpers, progress display.
 * Exit codes: 0 success, 2 bad usage or bad input, 1 any other failure.
 * The CLI is a client of the public API: it includes include/elag/ and host/cli/ only
 * (CMake gives it no other include folder), which proves the API is enough.
 */
#ifndef ELAG_CLI_CLI_H
#define ELAG_CLI_CLI_H

#include "elag/elag.h"

#include <stdio.h>

/* Room for a path the CLI builds (the library's own limit, config.h's ELAG_PATH_LEN). */
#define ELAG_CLI_PATH_LEN 1024

int elag_cmd_train(int argc, char **argv);
int elag_cmd_eval(int argc, char **argv);
int elag_cmd_export(int argc, char **argv); /* cmd_export.c */
int elag_cmd_import(int argc, char **argv); /* cmd_import.c */
int elag_cmd_infer(int argc, char **argv);  /* cmd_infer.c */
/* `elag infer FILE --inputs X` (cmd_infer_inputs.c): the parsed options, and the run on
 * an open network and device; returns the exit code. */
typedef struct elag_infer_inputs_args {
    const char *file, *inputs, *output; /* output NULL: print the predicted classes */
    int batch, json, verify, normalize;
} elag_infer_inputs_args;
int elag_cli_infer_inputs(const elag_infer_inputs_args *a, const elag_net_t *net,
                          elag_device_t *dev);
int elag_cmd_bench(int argc, char **argv);  /* cmd_bench.c: bench spmm, dispatches bench model */
int elag_cmd_bench_model(int argc, char **argv); /* cmd_bench_model.c: argv[0] = "model" */
int elag_cmd_sweep(int argc, char **argv);  /* cmd_sweep.c */
int elag_cmd_report(int argc, char **argv); /* cmd_report.c */
int elag_cmd_sensitivity(int argc, char **argv); /* cmd_sensitivity.c */

/* sensitivity.png from sensitivity.json with Python + matplotlib (sensitivity_plot.c): 0
 * drawn; 1 skipped (no interpreter, no matplotlib) and -1 failed, both with the reason in
 * why. The interpreter: $ELAG_PYTHON when set, else /usr/bin/python3. */
int elag_cli_sensitivity_plot(const char *json, const char *png, char *why, size_t why_size);

/* Prints "elag: <last error>" once and returns the exit code for st. */
int elag_cli_fail(elag_status st);

/* Usage error for a subcommand: prints "elag <cmd>: <msg> (see 'elag <cmd> --help')". */
int elag_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Unknown option `arg` of subcommand `cmd`: the usage error, with "did you mean" the
 * closest option that the command's help text `help` lists. Returns 2. */
int elag_cli_unknown_option(const char *cmd, const char *arg, const char *help);

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; advances *i past the value.
 * Returns 1 on a match with *value set, 0 when argv[*i] is another argument, -1 when
 * the value is missing (message printed). */
int elag_cli_take_value(int argc, char **argv, int *i, const char *name, const char **value);

typedef struct elag_cli_progress {
    int tty;      /* draw a bar on stderr instead of plain lines */
    int quiet;
    int drawn;    /* a bar line is on screen */
} elag_cli_progress;

void elag_cli_progress_init(elag_cli_progress *p, int quiet);
void elag_cli_progress_update(const elag_run_progress *pr, void *user); /* elag_run_progress_fn */
void elag_cli_progress_done(elag_cli_progress *p);

/* Keeps a library note (an elag_note_fn; user unused) to print on stderr as
 * "elag: <text>" once the command is past its input checks (main.c): at the first
 * progress line, or when the command exits 0. A failing command prints only its error. */
void elag_cli_note(const char *text, void *user);
/* Prints the notes kept so far (progress lines call it). */
void elag_cli_notes_flush(void);

#endif /* ELAG_CLI_CLI_H */
