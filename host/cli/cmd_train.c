/*
 * `elag train`: arguments into elag_run_train (include/elag/train.h), which loads and
 * validates the config, opens the device, loads the data, and only then touches the run
 * folder, so bad input never changes an existing run; progress and the summary printed.
 *
 * SIGINT and SIGTERM set a flag the training loop reads at each step boundary: it writes
 * a checkpoint and stops, the resume command is printed, and the exit code is 128 + the
 * signal (130, 143). The handler puts the default actions back, so a second Ctrl-C (or
 * SIGTERM) ends the process at once. A diverged run exits 1.
 */
#define _POSIX_C_SOURCE 200809L /* sigaction */
#include "cli.h"

#include <inttypes.h>
#include <signal.h>
#include <string.h>

#define MAX_SETS 64

static const char train_usage[] =
    "usage: elag train CONFIG [options]\n"
    "       elag train --resume DIR [options]\n"
    "\n"
    "Trains (and prunes) the model a YAML config describes (docs/config.md) and writes\n"
    "config.yaml, metrics.jsonl, summary.json and model.safetensors into runs/<name>/.\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE  override a config key (dotted path), repeatable\n"
    "  --device D       auto | cpu | cpu-ref | cuda | cuda:N (default: the config's, auto)\n"
    "  --out DIR        run folder (default runs/<name>)\n"
    "  --force          overwrite an existing run folder\n"
    "  --resume DIR     continue the run in DIR from its checkpoint (CONFIG defaults to\n"
    "                   DIR/config.yaml)\n"
    "  --quiet          no progress output\n"
    "  --help           this help\n"
    "\n"
    "Ctrl-C or SIGTERM writes a checkpoint at the next step and exits 130 or 143 (a second\n"
    "Ctrl-C exits at once); --resume DIR continues from it. A NaN or Inf loss, gradient or\n"
    "weight stops the run with exit 1, keeping the last good checkpoint.\n";

/* The signal that asked training to stop. A handler can only reach a global; it is set
 * here and read by the training loop through elag_run_options.interrupt. */
static volatile sig_atomic_t elag_cli_train_interrupt = 0;

static void on_interrupt(int sig)
{
    elag_cli_train_interrupt = sig;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &dfl, NULL); /* async-signal-safe: the next one ends the process */
    sigaction(SIGTERM, &dfl, NULL);
}

static void catch_interrupts(struct sigaction *old_int, struct sigaction *old_term)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    elag_cli_train_interrupt = 0;
    sigaction(SIGINT, NULL, old_int);
    sigaction(SIGTERM, NULL, old_term);
    /* a signal ignored at start (a background job of a script) stays ignored */
    if (old_int->sa_handler != SIG_IGN) sigaction(SIGINT, &sa, NULL);
    if (old_term->sa_handler != SIG_IGN) sigaction(SIGTERM, &sa, NULL);
}

static void print_summary(const elag_run_result *r, const char *out)
{
    printf("%s: test accuracy %.4f, loss %.4f, sparsity %.4f (%" PRId64 " of %" PRId64
           " prunable weights nonzero)\n",
           r->name, r->test_accuracy, r->test_loss, r->sparsity, r->params_nonzero,
           r->params_prunable);
    printf("%s: %.1f s training, %.0f samples/s, mask updates %.3f s (%ld), device %s\n",
           r->name, r->train_seconds, r->samples_per_second, r->mask_update_seconds,
           r->mask_updates, r->device);
    printf("results in %s/ (summary.json, metrics.jsonl, model.safetensors, config.yaml)\n", out);
}

int elag_cmd_train(int argc, char **argv)
{
    const char *config_path = NULL, *device = NULL, *out = NULL, *resume = NULL;
    const char *sets[MAX_SETS + 1];
    int n_sets = 0, force = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(train_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--force") == 0) { force = 1; continue; }
        if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) { quiet = 1; continue; }
        if ((r = elag_cli_take_value(argc, argv, &i, "--set", &v)) != 0) {
            if (r < 0) return 2;
            if (n_sets == MAX_SETS) return elag_cli_usage_error("train", "too many --set options");
            sets[n_sets++] = v;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--device", &device)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--out", &out)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--resume", &resume)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("train", argv[i], train_usage);
        if (config_path) return elag_cli_usage_error("train", "unexpected argument '%s'", argv[i]);
        config_path = argv[i];
    }
    if (resume) {
        if (out && strcmp(out, resume) != 0)
            return elag_cli_usage_error("train", "--out and --resume name different folders");
        out = resume;
    }
    if (!config_path && !resume) return elag_cli_usage_error("train", "missing CONFIG");

    /* config, device and data are checked before the run folder is touched */
    elag_cli_progress prog;
    elag_cli_progress_init(&prog, quiet);
    elag_run_options o = ELAG_RUN_OPTIONS_INIT;
    o.device = device;
    o.overrides = sets;
    o.n_overrides = n_sets;
    o.force = force;
    o.resume = resume != NULL;
    o.progress = elag_cli_progress_update;
    o.progress_user = &prog;
    o.note = quiet ? NULL : elag_cli_note;
    o.interrupt = &elag_cli_train_interrupt;
    elag_run_result r = ELAG_RUN_RESULT_INIT;
    struct sigaction old_int, old_term;
    catch_interrupts(&old_int, &old_term);
    elag_status st = elag_run_train(config_path, out, &o, &r); /* NULL CONFIG: DIR's */
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    elag_cli_progress_done(&prog);
    if (st == ELAG_ERR_INTERRUPTED) { /* "interrupted at step S (...); resume with: ..." */
        elag_cli_fail(st);
        return 128 + (int)elag_cli_train_interrupt;
    }
    if (st != ELAG_OK) return elag_cli_fail(st);
    char out_buf[ELAG_CLI_PATH_LEN + 8];
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "runs/%s", r.name);
        out = out_buf;
    }
    print_summary(&r, out);
    return 0;
}
