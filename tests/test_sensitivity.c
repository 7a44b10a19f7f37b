/*
 * `elag sensitivity` (include/elag/sensitivity.h, host/api/sensitivity*.c): on a tiny
 * synthetic MLP, every layer x level is measured and written to the table, the JSON and the
 * CSV; level 0 is the checkpoint's own accuracy (as `elag eval` gives it); pruning the last
 * layer to 0.99 costs accuracy; everything lands under --out; the suggested prune.layers
 * snippet parses and reaches the budget; the PNG is drawn when matplotlib imports and
 * skipped with one note when it does not; bad input exits 2 with one line. The greedy
 * budget allocation and the --levels parser are also checked on worked examples.
 */
#define _POSIX_C_SOURCE 200809L
#include "api/sensitivity_internal.h"
#include "config/config.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* fc1 (32, 16) = 512 weights, fc2 (4, 32) = 128: 640 prunable weights */
#define BASE_YAML                                                                                  \
    "name: sens\nseed: 5\ndevice: cpu\n"                                                           \
    "data:\n  dataset: synthetic\n"                                                                \
    "  synthetic: {train: 512, test: 256, features: 16, classes: 4}\n"                             \
    "model:\n  layers:\n"                                                                          \
    "    - {type: linear, name: fc1, out_features: 32}\n    - {type: relu}\n"                      \
    "    - {type: linear, name: fc2, out_features: 4}\n"                                           \
    "train: {epochs: 3, batch_size: 32, threads: 1}\n"

static const char dense_yaml[] = BASE_YAML "prune: {method: none, target: 0.6}\n";

/* |a - b| allowed between figures read back from the files (written with 6 decimals) */
#define TOL_FILE 1e-5
/* the suggested targets are written with 4 decimals: each moves the total by <= 0.5e-4 */
#define TOL_BUDGET 1e-4

static char *dir;
static char out_file[700], err_file[700];

static void setup(void)
{
    dir = elag_test_tmpdir("sensitivity");
    cr_assert_not_null(dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
    snprintf(err_file, sizeof err_file, "%s/.err", dir);
    elag_test_put(dir, "dense.yaml", dense_yaml);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(sensitivity, .init = setup, .fini = teardown);

/* `elag ARGS` in the test folder (env: VAR=value prefixes or ""); stdout into .out and
 * stderr into .err; the exit code. */
static int elag_env(const char *env, const char *args)
{
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "cd '%s' && ( %s '%s' %s 2> '%s' )", dir, env, ELAG_CLI_PATH, args,
             err_file);
    return elag_test_run(cmd, out_file);
}

static int elag(const char *args)
{
    return elag_env("", args);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    fclose(f);
    b[got] = '\0';
    if (len) *len = got;
    return b;
}

static char *slurp_in(const char *rel)
{
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return slurp(path, NULL);
}

static int exists(const char *rel)
{
    char path[900];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    return stat(path, &sb) == 0;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

/* Every path under the test folder but the output captures, sorted, one a line. */
static char *listing(void)
{
    char cmd[1200], path[800];
    snprintf(path, sizeof path, "%s.listing", dir); /* beside the folder, not in it */
    snprintf(cmd, sizeof cmd, "( cd '%s' && find . ! -name .out ! -name .err | sort > '%s' )", dir,
             path);
    cr_assert_eq(elag_test_run(cmd, NULL), 0);
    char *l = slurp(path, NULL);
    remove(path);
    return l;
}

static void train_dense(void)
{
    cr_assert_eq(elag("train dense.yaml --out run --quiet"), 0, "%s", slurp(err_file, NULL));
}

static cJSON *read_json(const char *rel)
{
    char *text = slurp_in(rel);
    cr_assert_not_null(text, "%s missing", rel);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(j, "%s is not JSON", rel);
    return j;
}

static double num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    cr_assert(cJSON_IsNumber(v), "no number '%s'", key);
    return v->valuedouble;
}

Test(sensitivity, checkpoint_table_json_csv)
{
    train_dense();
    cr_assert_eq(elag("eval run/model.safetensors --json"), 0);
    char *ev = slurp(out_file, NULL);
    cJSON *evj = cJSON_Parse(ev);
    cr_assert_not_null(evj, "%s", ev);
    double eval_acc = num(evj, "test_accuracy");
    cJSON_Delete(evj);
    free(ev);

    size_t model_len = 0;
    char model_path[900];
    snprintf(model_path, sizeof model_path, "%s/run/model.safetensors", dir);
    char *model_before = slurp(model_path, &model_len);
    char *before = listing();
    int rc = elag("sensitivity run/model.safetensors --out sens --levels 0.5,0.9,0.99 "
                  "--budget 0.6 --no-plot");
    char *err = slurp(err_file, NULL);
    cr_assert_eq(rc, 0, "%s", err);

    /* the table: every layer and level, drops in points */
    char *out = slurp(out_file, NULL);
    cr_assert(strstr(out, "0.5") && strstr(out, "0.9") && strstr(out, "0.99"), "%s", out);
    cr_assert(strstr(out, "\nfc1 ") && strstr(out, "\nfc2 "), "%s", out);

    /* files only under --out, the run folder untouched */
    char *after = listing();
    const char *new_paths[] = {"./sens\n", "./sens/sensitivity.csv\n", "./sens/sensitivity.json\n",
                               "./sens/suggested_prune_layers.yaml\n"};
    size_t expect_len = strlen(before);
    for (size_t k = 0; k < sizeof new_paths / sizeof new_paths[0]; k++) {
        cr_assert(strstr(after, new_paths[k]), "%s not written:\n%s", new_paths[k], after);
        expect_len += strlen(new_paths[k]);
    }
    cr_assert_eq(strlen(after), expect_len, "other files changed:\nbefore\n%s\nafter\n%s", before,
                 after);
    size_t model_len2 = 0;
    char *model_after = slurp(model_path, &model_len2);
    cr_assert(model_len == model_len2 && memcmp(model_before, model_after, model_len) == 0,
              "the checkpoint changed");

    cJSON *j = read_json("sens/sensitivity.json");
    double dense = num(j, "dense_accuracy"), base = num(j, "baseline_accuracy");
    cr_assert_float_eq(dense, eval_acc, 1e-12, "level 0 is not what `elag eval` says");
    cr_assert_eq(dense, base, "without a fine-tune the baseline is the checkpoint");
    cr_assert_eq(num(j, "finetune_steps"), 0);
    cr_assert_eq(num(j, "params_prunable"), 640);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    cr_assert_eq(cJSON_GetArraySize(layers), 2);
    const char *names[] = {"fc1", "fc2"};
    const double levels[] = {0, 0.5, 0.9, 0.99};
    const int params[] = {512, 128};
    for (int i = 0; i < 2; i++) {
        const cJSON *l = cJSON_GetArrayItem(layers, i);
        cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(l, "name")->valuestring, names[i]);
        cr_assert_eq(num(l, "params"), params[i]);
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(l, "results");
        cr_assert_eq(cJSON_GetArraySize(res), 4);
        for (int k = 0; k < 4; k++) {
            const cJSON *p = cJSON_GetArrayItem(res, k);
            double acc = num(p, "test_accuracy");
            cr_assert_float_eq(num(p, "level"), levels[k], 1e-12);
            /* element granularity: exactly llround(level * n) zeros in a dense layer */
            cr_assert_float_eq(num(p, "sparsity"),
                               (double)llround(levels[k] * params[i]) / params[i], 1e-9, "%s at %g",
                               names[i], levels[k]);
            cr_assert_float_eq(num(p, "accuracy_drop"), base - acc, 1e-12);
            if (k == 0) cr_assert_eq(acc, dense, "%s level 0", names[i]);
        }
    }
    /* fc2 maps 32 features to the 4 classes: at 0.99 one weight of 128 is left, so the
     * model is close to guessing (0.25); the trained one is far above */
    const cJSON *fc2 = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(layers, 1), "results");
    double acc99 = num(cJSON_GetArrayItem(fc2, 3), "test_accuracy");
    cr_assert(base > 0.8, "the dense model did not learn (%.4f)", base);
    cr_assert(acc99 < base - 0.2, "fc2 at 0.99: %.4f vs %.4f unpruned", acc99, base);

    /* the CSV: a header and one row per layer and level, the same figures */
    char *csv = slurp_in("sens/sensitivity.csv");
    cr_assert_not_null(csv);
    cr_assert_eq(
        strncmp(csv, "layer,params,level,sparsity,test_accuracy,test_loss,accuracy_drop\n", 66), 0,
        "%s", csv);
    cr_assert_eq(count_lines(csv), 1 + 2 * 4, "%s", csv);
    char row[128];
    snprintf(row, sizeof row, "\nfc2,128,0.99,%.6f,%.6f,", 127.0 / 128.0, acc99);
    cr_assert(strstr(csv, row), "no row '%s' in\n%s", row + 1, csv);
    cJSON_Delete(j);
    free(csv), free(out), free(err), free(before), free(after), free(model_before),
        free(model_after);
}

/* Reads the targets a config gives each analysed layer through its prune.layers (an
 * excluded layer: 0) and the sparsity they reach over all `total` prunable weights. */
static double snippet_total(const elag_config *cfg, const cJSON *layers, double total,
                            double *suggested_err)
{
    double zeros = 0;
    *suggested_err = 0;
    for (int i = 0; i < cJSON_GetArraySize(layers); i++) {
        const cJSON *l = cJSON_GetArrayItem(layers, i);
        const char *name = cJSON_GetObjectItemCaseSensitive(l, "name")->valuestring;
        int k = elag_config_prune_layer_match(cfg, name);
        cr_assert(k >= 0, "no prune.layers item for %s", name);
        const elag_prune_layer_config *it = &cfg->prune.layers[k];
        double t = it->exclude ? 0 : it->target;
        double e = fabs(t - num(l, "suggested_target"));
        if (e > *suggested_err) *suggested_err = e;
        zeros += t * num(l, "params");
    }
    return zeros / total;
}

/* The snippet as a file section and as its --set line: both parse, and match the JSON. */
static void check_snippet(const char *out_dir, double budget, int expect_catch_all)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/suggested_prune_layers.yaml", out_dir);
    char *yaml = slurp_in(rel);
    cr_assert_not_null(yaml);
    snprintf(rel, sizeof rel, "%s/sensitivity.json", out_dir);
    cJSON *j = read_json(rel);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    cr_assert_float_eq(num(j, "budget"), budget, 1e-12);

    /* 1. pasted into a config */
    size_t n = strlen(BASE_YAML) + strlen(yaml) + 1;
    char *text = malloc(n);
    snprintf(text, n, "%s%s", BASE_YAML, yaml);
    char target_ov[64];
    snprintf(target_ov, sizeof target_ov, "prune.target=%g", budget);
    const char *ov[] = {"prune.method=gmp", target_ov};
    elag_config *cfg = calloc(1, sizeof *cfg);
    elag_status st = elag_config_parse(text, strlen(text), "snippet", ov, 2, cfg);
    cr_assert_eq(st, ELAG_OK, "%s\n%s", elag_last_error(), text);
    double err, total = snippet_total(cfg, layers, num(j, "params_prunable"), &err);
    for (int q = 0; expect_catch_all && q < 2; q++) { /* a layer not analysed stays dense */
        const char *name = q ? "fc2" : "fc1";
        int analysed = 0;
        for (int i = 0; i < cJSON_GetArraySize(layers); i++)
            analysed |=
                strcmp(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(layers, i), "name")
                           ->valuestring,
                       name) == 0;
        int k = elag_config_prune_layer_match(cfg, name);
        if (!analysed) cr_assert(k >= 0 && cfg->prune.layers[k].exclude, "%s not excluded", name);
    }
    cr_assert(err < 1e-9, "a parsed target differs from the JSON's by %g", err);
    cr_assert(fabs(total - budget) <= TOL_BUDGET, "targets reach %.6f, budget %.4f", total, budget);
    cr_assert_float_eq(num(j, "suggested_sparsity"), total, TOL_FILE);
    cr_assert_eq(strstr(yaml, "    - {name: \"*\", exclude: true}") != NULL, expect_catch_all, "%s",
                 yaml);

    /* 2. its --set line */
    const char *a = strstr(yaml, "--set 'prune.layers=");
    cr_assert_not_null(a, "%s", yaml);
    a += strlen("--set '");
    const char *b = strchr(a, '\'');
    cr_assert_not_null(b);
    char set[512];
    snprintf(set, sizeof set, "%.*s", (int)(b - a), a);
    const char *ov2[] = {"prune.method=gmp", target_ov, set};
    elag_config *cfg2 = calloc(1, sizeof *cfg2);
    st = elag_config_parse(BASE_YAML, strlen(BASE_YAML), "base", ov2, 3, cfg2);
    cr_assert_eq(st, ELAG_OK, "%s: %s", set, elag_last_error());
    cr_assert_eq(cfg2->prune.n_layers, cfg->prune.n_layers);
    cr_assert_eq(memcmp(cfg2->prune.layers, cfg->prune.layers, sizeof cfg->prune.layers), 0,
                 "the --set line and the list differ");
    cJSON_Delete(j);
    free(cfg), free(cfg2), free(text), free(yaml);
}

Test(sensitivity, snippet_parses_and_meets_the_budget)
{
    train_dense();
    /* the budget from the config's prune.target (0.6) */
    cr_assert_eq(elag("sensitivity run/model.safetensors --out all --no-plot -q"), 0, "%s",
                 slurp(err_file, NULL));
    check_snippet("all", 0.6, 0);
    /* one layer: the others are kept dense by the catch-all item */
    cr_assert_eq(elag("sensitivity run/model.safetensors --out one --layers 'fc[2]' --budget 0.15 "
                      "--no-plot -q"),
                 0, "%s", slurp(err_file, NULL));
    check_snippet("one", 0.15, 1);
}

Test(sensitivity, config_trains_dense_then_fine_tunes)
{
    char *before = listing();
    int rc = elag("sensitivity dense.yaml --set train.epochs=2 --out cs --levels 0.5,0.9 "
                  "--finetune-steps 5 --no-plot -q");
    cr_assert_eq(rc, 0, "%s", slurp(err_file, NULL));
    cr_assert(exists("cs/dense/model.safetensors") && exists("cs/dense/summary.json"));
    cJSON *j = read_json("cs/sensitivity.json");
    cr_assert_eq(num(j, "finetune_steps"), 5);
    cr_assert_float_eq(num(j, "finetune_lr"), 0.05 / 10, 1e-12, "train.optimizer.lr / 10");
    cJSON *sum = read_json("cs/dense/summary.json");
    cr_assert_float_eq(num(j, "dense_accuracy"), num(sum, "test_accuracy"), 1e-12);
    cr_assert_eq(num(sum, "epochs"), 2, "--set reached the dense run");
    char *model = cJSON_GetObjectItemCaseSensitive(j, "model")->valuestring;
    cr_assert(strstr(model, "cs/dense/model.safetensors"), "%s", model);
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
    cr_assert_eq(cJSON_GetArraySize(layers), 2);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetArrayItem(layers, i), "results")),
                     3);
    char *after = listing();
    /* everything new is under cs/ */
    for (char *p = after, *e; (e = strchr(p, '\n')); p = e + 1) {
        char line[600];
        snprintf(line, sizeof line, "%.*s\n", (int)(e - p), p);
        if (!strstr(before, line))
            cr_assert(strncmp(line, "./cs", 4) == 0, "written outside --out: %s", line);
    }
    cJSON_Delete(j);
    cJSON_Delete(sum);
    free(before), free(after);
}

static int is_png(const char *rel)
{
    char *b = slurp_in(rel);
    int ok = b && memcmp(b, "\x89PNG", 4) == 0;
    free(b);
    return ok;
}

Test(sensitivity, png_when_matplotlib_imports)
{
    if (!elag_test_python_has("matplotlib"))
        cr_skip_test("%s cannot import matplotlib (needs python3-matplotlib)", elag_test_python());
    train_dense();
    char env[700];
    snprintf(env, sizeof env, "ELAG_PYTHON='%s'", elag_test_python());
    cr_assert_eq(elag_env(env, "sensitivity run/model.safetensors --out p --levels 0.5,0.9 -q"), 0,
                 "%s", slurp(err_file, NULL));
    cr_assert(is_png("p/sensitivity.png"), "no PNG");
    char *out = slurp(out_file, NULL);
    cr_assert(strstr(out, "sensitivity.png"), "%s", out);
    free(out);
}

Test(sensitivity, png_skipped_with_one_note_without_matplotlib)
{
    train_dense();
    /* an interpreter whose matplotlib import fails the way Python's does (exit 3) */
    elag_test_put(dir, "nompl", "#!/bin/sh\necho \"No module named 'matplotlib'\" >&2\nexit 3\n");
    char path[800];
    snprintf(path, sizeof path, "%s/nompl", dir);
    chmod(path, 0755);
    char env[900];
    snprintf(env, sizeof env, "ELAG_PYTHON='%s'", path);
    cr_assert_eq(elag_env(env, "sensitivity run/model.safetensors --out p --levels 0.5 -q"), 0);
    char *err = slurp(err_file, NULL);
    cr_assert_eq(count_lines(err), 1, "one note:\n%s", err);
    cr_assert(strstr(err, "sensitivity.png skipped") && strstr(err, "matplotlib"), "%s", err);
    cr_assert(!exists("p/sensitivity.png"));
    cr_assert(exists("p/sensitivity.json"), "the results are still written");
    /* the config's prune.target (0.6) is beyond level 0.5: no suggestion, and no error */
    cr_assert(!exists("p/suggested_prune_layers.yaml"));
    char *out = slurp(out_file, NULL);
    cr_assert(strstr(out, "no suggested targets"), "%s", out);
    free(out);
    /* no interpreter at all: the same */
    cr_assert_eq(elag_env("ELAG_PYTHON=/nonexistent/python3",
                          "sensitivity run/model.safetensors --out q --levels 0.5 -q"),
                 0);
    free(err);
    err = slurp(err_file, NULL);
    cr_assert(count_lines(err) == 1 && strstr(err, "no Python interpreter"), "%s", err);
    free(err);
}

Test(sensitivity, bad_input_exits_2_with_one_line)
{
    train_dense();
    /* a checkpoint cut in half, and bytes that are no checkpoint */
    char src[800], dst[800];
    snprintf(src, sizeof src, "%s/run/model.safetensors", dir);
    size_t len = 0;
    char *data = slurp(src, &len);
    snprintf(dst, sizeof dst, "%s/half.safetensors", dir);
    FILE *f = fopen(dst, "wb");
    fwrite(data, 1, len / 2, f);
    fclose(f);
    free(data);
    elag_test_put(dir, "junk.safetensors", "this is not a checkpoint at all, not even close");
    snprintf(dst, sizeof dst, "%s/full", dir);
    cr_assert_eq(mkdir(dst, 0755), 0);
    elag_test_put(dir, "full/x", "something");
    const struct {
        const char *args, *needle;
    } cases[] = {
        {"sensitivity nothere.safetensors --out o", "nothere.safetensors"},
        {"sensitivity nothere.yaml --out o", "nothere.yaml"},
        {"sensitivity half.safetensors --out o", "half.safetensors"},
        {"sensitivity junk.safetensors --out o", "junk.safetensors"},
        {"sensitivity run/model.safetensors --out o --layers fc9", "'fc9' names no prunable layer"},
        {"sensitivity run/model.safetensors --out o --levels 0.9,0.5", "levels must increase"},
        {"sensitivity run/model.safetensors --out o --levels 0.5,0.5", "levels must increase"},
        {"sensitivity run/model.safetensors --out o --levels 0,0.5", "not in (0, 1)"},
        {"sensitivity run/model.safetensors --out o --levels 0.5,1", "not in (0, 1)"},
        {"sensitivity run/model.safetensors --out o --levels 0.5,x", "'x' is not a number"},
        {"sensitivity run/model.safetensors --out o --levels 0.5,", "empty item"},
        {"sensitivity run/model.safetensors --out o --budget 2", "--budget"},
        {"sensitivity run/model.safetensors --out o --budget 0.99", "reach at most"},
        {"sensitivity run/model.safetensors --out o --finetune-steps x", "--finetune-steps"},
        {"sensitivity run/model.safetensors --out o --set prune.targt=1", "prune.target"},
        {"sensitivity run/model.safetensors --out full", "not empty"},
        {"sensitivity run/model.safetensors --out run --force", "own folder"},
        {"sensitivity dense.yaml --out o --set model.layers=[]", "model"},
        {"sensitivity run/model.safetensors --out o --frob", "unknown option '--frob'"},
        {"sensitivity --out o", "missing CONFIG or MODEL"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int rc = elag(cases[k].args);
        char *err = slurp(err_file, NULL), *out = slurp(out_file, NULL);
        cr_expect_eq(rc, 2, "%s: exit %d\n%s", cases[k].args, rc, err);
        cr_expect_eq(count_lines(err), 1, "%s: not one line:\n%s", cases[k].args, err);
        cr_expect_eq(out[0], '\0', "%s: stdout:\n%s", cases[k].args, out);
        cr_expect(strstr(err, cases[k].needle), "%s: no '%s' in: %s", cases[k].args,
                  cases[k].needle, err);
        cr_expect(!exists("o"), "%s: made the output folder", cases[k].args);
        free(err), free(out);
    }
}

Test(sensitivity, levels_parse)
{
    double lv[ELAG_SENSITIVITY_MAX_LEVELS];
    int n;
    cr_assert_eq(elag_sensitivity_levels_parse("0.5, 0.9,0.99", lv, 16, &n), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(n, 3);
    cr_assert(lv[0] == 0.5 && lv[1] == 0.9 && lv[2] == 0.99);
    cr_assert_eq(elag_sensitivity_levels_parse(ELAG_SENSITIVITY_DEFAULT_LEVELS, lv, 16, &n),
                 ELAG_OK);
    cr_assert_eq(n, 6);
    const char *bad[] = {"", "0.5,,0.9", "1e-400x", "nan", "0.9,0.5", "-0.1", "1.0", "0.5;0.6"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        cr_expect_eq(elag_sensitivity_levels_parse(bad[k], lv, 16, &n), ELAG_ERR_USAGE, "'%s'",
                     bad[k]);
    cr_assert_eq(elag_sensitivity_levels_parse("0.1,0.2,0.3", lv, 2, &n), ELAG_ERR_USAGE);
}

/* Two layers of 1000 weights, levels 0.5 and 0.9. A keeps its accuracy to 0.5 then loses
 * 0.4; B loses 0.1 at 0.5 and 0.3 at 0.9. */
static void worked_example(elag_sensitivity_t *s, double budget)
{
    memset(s, 0, sizeof *s);
    s->info.n_layers = 2;
    s->info.n_levels = 2;
    s->info.params_prunable = 2000;
    s->info.budget = budget;
    s->levels[1] = 0.5, s->levels[2] = 0.9;
    const double acc[2][3] = {{0.9, 0.9, 0.5}, {0.9, 0.8, 0.6}};
    for (int i = 0; i < 2; i++) {
        s->layers[i].params = 1000;
        for (int j = 0; j < 3; j++) s->points[i][j].test_accuracy = acc[i][j];
    }
}

Test(sensitivity, greedy_budget_worked_example)
{
    elag_sensitivity_t *s = calloc(1, sizeof *s);
    /* 0.25 of 2000 = 500 weights: A to 0.5 costs nothing, and is exactly enough */
    worked_example(s, 0.25);
    cr_assert_eq(elag_sensitivity_suggest(s), ELAG_OK, "%s", elag_last_error());
    cr_assert_float_eq(s->layers[0].suggested_target, 0.5, 1e-12);
    cr_assert_float_eq(s->layers[1].suggested_target, 0.0, 1e-12);
    /* 700: then B (0.1 per 500 weights) beats A to 0.9 (0.4 per 400); 200 more: B at 0.2 */
    worked_example(s, 0.35);
    cr_assert_eq(elag_sensitivity_suggest(s), ELAG_OK);
    cr_assert_float_eq(s->layers[0].suggested_target, 0.5, 1e-12);
    cr_assert_float_eq(s->layers[1].suggested_target, 0.2, 1e-12);
    cr_assert_float_eq(s->info.suggested_sparsity, 0.35, 1e-12);
    /* beyond 0.9 everywhere: refused */
    worked_example(s, 0.95);
    cr_assert_eq(elag_sensitivity_suggest(s), ELAG_ERR_INPUT);
    free(s);
}
