/*
 * `elag train`: arguments into elag_run_train (include/elag/train.h), which loads and
 * validates the config, opens the device, loads the data, and only then touches the run
 * folder, so bad input never changes an existing run; progress and the summary printed.
 */
#include "cli.h"

#include <inttypes.h>
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
    "  --help           this help\n";

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
            return elag_cli_usage_error("train", "unknown option '%s'", argv[i]);
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
    elag_run_result r = ELAG_RUN_RESULT_INIT;
    elag_status st = elag_run_train(config_path, out, &o, &r); /* NULL CONFIG: DIR's */
    elag_cli_progress_done(&prog);
    if (st != ELAG_OK) return elag_cli_fail(st);
    char out_buf[ELAG_CLI_PATH_LEN + 8];
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "runs/%s", r.name);
        out = out_buf;
    }
    print_summary(&r, out);
    return 0;
}
