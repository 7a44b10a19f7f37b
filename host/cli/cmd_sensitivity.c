/*
 * `elag sensitivity CONFIG|MODEL`: arguments into elag_sensitivity_run
 * (include/elag/sensitivity.h), which prunes each layer alone to each level and evaluates
 * (after a short fine-tune for a config), and writes sensitivity.json, sensitivity.csv and
 * suggested_prune_layers.yaml into its own folder; this prints the table (accuracy drop per
 * layer and level), then draws sensitivity.png through Python (sensitivity_plot.c), which
 * is skipped with one note when matplotlib is missing. docs/sensitivity.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SETS        64
#define MAX_LAYER_GLOBS 32

static const char sensitivity_usage[] =
    "usage: elag sensitivity CONFIG|MODEL [options]\n"
    "\n"
    "Prunes each prunable layer alone, by weight magnitude, to each sparsity level and\n"
    "evaluates the model on its test set: the accuracy drop per layer and level says which\n"
    "layers take pruning well. MODEL is a trained checkpoint (model.safetensors), evaluated\n"
    "without training unless --finetune-steps is given; a CONFIG is first trained dense into\n"
    "OUT/dense, and each pruned model is fine-tuned (--finetune-steps, default 200) before\n"
    "it is evaluated. Writes sensitivity.json, sensitivity.csv, sensitivity.png and\n"
    "suggested_prune_layers.yaml (per-layer targets for --budget, a prune.layers list to\n"
    "paste into a config) into OUT. docs/sensitivity.md.\n"
    "\n"
    "options:\n"
    "  --levels LIST        sparsities in (0, 1), increasing, comma-separated (default\n"
    "                       " ELAG_SENSITIVITY_DEFAULT_LEVELS ")\n"
    "  --layers LIST        layer names or globs to analyse, comma-separated (default: every\n"
    "                       prunable layer)\n"
    "  --budget S           global sparsity the suggested targets reach (default: the config's\n"
    "                       prune.target)\n"
    "  --finetune-steps N   optimizer steps after each prune (default 0 for a MODEL, 200 for a\n"
    "                       CONFIG)\n"
    "  --finetune-lr LR     their constant learning rate (default train.optimizer.lr / 10)\n"
    "  --set KEY=VALUE      override a config key (a MODEL: its stored config), repeatable\n"
    "  --out DIR            output folder (default runs/<name>-sensitivity-<time>)\n"
    "  --force              write into a folder that is not empty\n"
    "  --threads T          CPU threads (default: the config's train.threads)\n"
    "  --device D           auto | cpu | cpu-ref | cuda | cuda:N (default: a CONFIG's device;\n"
    "                       auto for a MODEL)\n"
    "  --no-plot            no sensitivity.png\n"
    "  --quiet              no progress lines\n"
    "  --help               this help\n";

/* Parses an integer option in [lo, hi]; 0 on success, else a usage error was printed. */
static int parse_long(const char *name, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0 || x < lo || x > hi)
        return elag_cli_usage_error("sensitivity", "%s '%s': an integer in [%ld, %ld] is needed",
                                    name, v, lo, hi);
    *out = x;
    return 0;
}

static int parse_double(const char *name, const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !isfinite(x) || !(x > lo && x < hi))
        return elag_cli_usage_error("sensitivity", "%s '%s': a number in (%g, %g) is needed", name,
                                    v, lo, hi);
    *out = x;
    return 0;
}

typedef struct cli_state {
    elag_cli_progress train_prog;
    int quiet;
} cli_state;

static void on_progress(const elag_sensitivity_progress *p, void *user)
{
    const cli_state *c = user;
    if (c->quiet) return;
    elag_cli_notes_flush();
    if (p->layer[0])
        fprintf(stderr, "sensitivity: [%d/%d] %s at %.4g: test accuracy %.4f (%.1f s)\n", p->index,
                p->total, p->layer, p->level, p->test_accuracy, p->seconds);
    else
        fprintf(stderr, "sensitivity: [%d/%d] nothing pruned: test accuracy %.4f (%.1f s)\n",
                p->index, p->total, p->test_accuracy, p->seconds);
}

static void on_train_progress(const elag_run_progress *p, void *user)
{
    cli_state *c = user;
    elag_cli_progress_update(p, &c->train_prog);
}

/* layer x level: accuracy drop in points against the baseline, and the suggested target */
static void print_table(const elag_sensitivity_t *s, const elag_sensitivity_info *in)
{
    printf("sensitivity of %s (%s), device %s, %s granularity, magnitude, ", in->name, in->model,
           in->device, in->granularity);
    if (in->finetune_steps > 0)
        printf("%ld fine-tune steps at lr %g\n", in->finetune_steps, in->finetune_lr);
    else
        printf("no fine-tune\n");
    printf("nothing pruned: test accuracy %.4f, loss %.4f", in->baseline_accuracy,
           in->baseline_loss);
    if (in->finetune_steps > 0) printf(" (before the fine-tune %.4f)", in->dense_accuracy);
    printf("\n\naccuracy drop (points) with one layer pruned to each sparsity:\n");
    printf("%-12s %10s", "layer", "params");
    elag_sensitivity_point pt;
    for (int j = 1; j <= in->n_levels; j++) {
        elag_sensitivity_result(s, 0, j, &pt);
        printf(" %7.4g", pt.level);
    }
    printf(" %9s\n", in->budget > 0 ? "suggested" : "");
    for (int i = 0; i < in->n_layers; i++) {
        elag_sensitivity_layer_info l;
        elag_sensitivity_layer(s, i, &l);
        printf("%-12s %10" PRId64, l.name, l.params);
        for (int j = 1; j <= in->n_levels; j++) {
            elag_sensitivity_result(s, i, j, &pt);
            printf(" %+7.2f", 100.0 * pt.accuracy_drop);
        }
        if (in->budget > 0) printf(" %9.4f", l.suggested_target);
        printf("\n");
    }
    if (in->budget > 0)
        printf("\nsuggested targets for a global budget of %.4g: %.4f of %" PRId64
               " prunable weights (%s/suggested_prune_layers.yaml)\n",
               in->budget, in->suggested_sparsity, in->params_prunable, in->out_dir);
    else
        printf("\nno suggested targets: the config's prune.target is beyond what the levels "
               "reach (pass --budget S)\n");
}

/* Splits a comma-separated list in place into globs[]; the count, or -1 (printed). */
static int split_layers(char *text, const char **globs)
{
    int n = 0;
    for (char *save = NULL, *t = strtok_r(text, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == MAX_LAYER_GLOBS) {
            elag_cli_usage_error("sensitivity", "--layers: more than %d items", MAX_LAYER_GLOBS);
            return -1;
        }
        globs[n++] = t;
    }
    if (n == 0) elag_cli_usage_error("sensitivity", "--layers: an empty list");
    return n ? n : -1;
}

int elag_cmd_sensitivity(int argc, char **argv)
{
    const char *input = NULL, *out = NULL, *device = NULL, *levels_text = NULL, *v;
    const char *sets[MAX_SETS], *globs[MAX_LAYER_GLOBS];
    char layers_buf[4096];
    int n_sets = 0, n_globs = 0, force = 0, quiet = 0, no_plot = 0;
    long steps = -1, threads = 0;
    double lr = 0, budget = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(sensitivity_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--force") == 0) {
            force = 1;
            continue;
        }
        if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) {
            quiet = 1;
            continue;
        }
        if (strcmp(argv[i], "--no-plot") == 0) {
            no_plot = 1;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--set", &v)) != 0) {
            if (r < 0) return 2;
            if (n_sets == MAX_SETS) return elag_cli_usage_error("sensitivity", "too many --set");
            sets[n_sets++] = v;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--levels", &levels_text)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--layers", &v)) != 0) {
            if (r < 0) return 2;
            snprintf(layers_buf, sizeof layers_buf, "%s", v);
            if ((n_globs = split_layers(layers_buf, globs)) < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--budget", &v)) != 0) {
            if (r < 0 || parse_double("--budget", v, 0, 1, &budget)) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--finetune-steps", &v)) != 0) {
            if (r < 0 || parse_long("--finetune-steps", v, 0, 100000000L, &steps)) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--finetune-lr", &v)) != 0) {
            if (r < 0 || parse_double("--finetune-lr", v, 0, 1e6, &lr)) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--threads", &v)) != 0) {
            if (r < 0 || parse_long("--threads", v, 1, 4096, &threads)) return 2;
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
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("sensitivity", argv[i], sensitivity_usage);
        if (input) return elag_cli_usage_error("sensitivity", "unexpected argument '%s'", argv[i]);
        input = argv[i];
    }
    if (!input) return elag_cli_usage_error("sensitivity", "missing CONFIG or MODEL");
    double levels[ELAG_SENSITIVITY_MAX_LEVELS];
    int n_levels = 0;
    if (levels_text) {
        elag_status st = elag_sensitivity_levels_parse(levels_text, levels,
                                                       ELAG_SENSITIVITY_MAX_LEVELS, &n_levels);
        if (st != ELAG_OK) return elag_cli_fail(st);
    }

    cli_state c = {.quiet = quiet};
    elag_cli_progress_init(&c.train_prog, quiet);
    elag_sensitivity_options o = ELAG_SENSITIVITY_OPTIONS_INIT;
    o.device = device;
    o.threads = (int)threads;
    o.overrides = sets;
    o.n_overrides = n_sets;
    o.levels = levels_text ? levels : NULL;
    o.n_levels = n_levels;
    o.layers = n_globs ? globs : NULL;
    o.n_layers = n_globs;
    o.finetune_steps = steps;
    o.finetune_lr = lr;
    o.budget = budget;
    o.force = force;
    o.note = quiet ? NULL : elag_cli_note;
    o.train_progress = on_train_progress;
    o.progress = on_progress;
    o.user = &c;
    elag_sensitivity_t *s = NULL;
    elag_status st = elag_sensitivity_run(&s, input, out, &o);
    elag_cli_progress_done(&c.train_prog);
    if (st != ELAG_OK) return elag_cli_fail(st);
    elag_sensitivity_info in = ELAG_SENSITIVITY_INFO_INIT;
    elag_sensitivity_describe(s, &in);
    print_table(s, &in);
    elag_sensitivity_free(s);

    int rc = 0;
    const char *png_note = "";
    char json[ELAG_CLI_PATH_LEN + 32], png[ELAG_CLI_PATH_LEN + 32], why[ELAG_CLI_PATH_LEN + 512];
    snprintf(json, sizeof json, "%s/sensitivity.json", in.out_dir);
    snprintf(png, sizeof png, "%s/sensitivity.png", in.out_dir);
    if (!no_plot) {
        int drawn = elag_cli_sensitivity_plot(json, png, why, sizeof why);
        if (drawn == 0) {
            png_note = ", sensitivity.png";
        } else {
            fflush(stdout);
            fprintf(stderr, "elag sensitivity: sensitivity.png %s: %s\n",
                    drawn > 0 ? "skipped" : "not drawn", why);
            if (drawn < 0) rc = 1; /* the script failed: a bug, not a missing package */
        }
    }
    char dense[ELAG_CLI_PATH_LEN + 32];
    snprintf(dense, sizeof dense, "%s/dense/model.safetensors", in.out_dir);
    printf("results in %s/ (sensitivity.json, sensitivity.csv%s%s%s)\n", in.out_dir,
           in.budget > 0 ? ", suggested_prune_layers.yaml" : "", png_note,
           strcmp(in.model, dense) == 0 ? ", dense/" : "");
    return rc;
}
