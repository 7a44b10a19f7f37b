/*
 * The CLI's contract: exit codes (0 ok, 2 bad usage or input, 1 other), one clear
 * line naming file/line/key or the argument, and bad input never changing an
 * existing run folder.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char tiny_yaml[] =
    "name: tiny\n"
    "seed: 3\n"
    "device: cpu\n"
    "data:\n"
    "  dataset: synthetic\n"
    "  synthetic: {train: 256, test: 128, features: 8, classes: 3}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: linear, out_features: 16}\n"
    "    - {type: relu}\n"
    "    - {type: linear, out_features: 3}\n"
    "train:\n"
    "  epochs: 2\n"
    "  batch_size: 32\n"
    "  threads: 1\n"
    "prune:\n"
    "  method: gmp\n"
    "  target: 0.5\n"
    "  start: 0\n"
    "  end: 0.5\n"
    "  frequency: 2\n";

static char *dir;
static char out_file[600];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

/* Runs `elag ARGS` in the test folder; returns the exit code, output in out_file. */
static int elag(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    return elag_test_run(cmd, out_file);
}

static void setup(void)
{
    dir = elag_test_tmpdir("cli");
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
    char path[600];
    snprintf(path, sizeof path, "%s/tiny.yaml", dir);
    write_file(path, tiny_yaml);
}

static void expect_output(const char *needle)
{
    char *o = slurp(out_file);
    cr_assert(strstr(o, needle) != NULL, "expected '%s' in output:\n%s", needle, o);
    free(o);
}

static int count_lines(void)
{
    char *o = slurp(out_file);
    int n = 0;
    for (char *p = o; *p; p++) n += *p == '\n';
    free(o);
    return n;
}

TestSuite(cli, .init = setup);

Test(cli, version_and_help)
{
    cr_assert_eq(elag("--version"), 0);
    expect_output("elag 0.");
    cr_assert_eq(elag("--help"), 0);
    cr_assert_eq(elag("train --help"), 0);
    expect_output("--set KEY=VALUE");
    cr_assert_eq(elag("eval --help"), 0);
}

Test(cli, unknown_command_and_flag_exit_2)
{
    cr_assert_eq(elag("frobnicate"), 2);
    expect_output("unknown command 'frobnicate'");
    cr_assert_eq(elag("train tiny.yaml --frob"), 2);
    expect_output("unknown option '--frob'");
    cr_assert_eq(count_lines(), 1, "one line");
    cr_assert_eq(elag("train"), 2);
    cr_assert_eq(elag("train tiny.yaml --out"), 2);
}

Test(cli, missing_config_exit_2)
{
    cr_assert_eq(elag("train nothere.yaml"), 2);
    expect_output("nothere.yaml");
}

Test(cli, config_typo_names_file_line_and_key)
{
    char path[600];
    snprintf(path, sizeof path, "%s/typo.yaml", dir);
    write_file(path, "name: t\ntrain:\n  epoch: 3\n");
    cr_assert_eq(elag("train typo.yaml"), 2);
    expect_output("typo.yaml:3:");
    expect_output("train.epoch");
    expect_output("train.epochs");
    cr_assert_eq(count_lines(), 1);
}

Test(cli, wrong_type_and_range_exit_2)
{
    cr_assert_eq(elag("train tiny.yaml --set train.epochs=ten"), 2);
    expect_output("train.epochs");
    cr_assert_eq(elag("train tiny.yaml --set prune.target=1.5"), 2);
    expect_output("prune.target");
}

Test(cli, missing_dataset_exit_2)
{
    cr_assert_eq(elag("train tiny.yaml --set data.dataset=fashion-mnist "
                      "--set data.path=/nonexistent/fm"),
                 2);
    expect_output("/nonexistent/fm");
}

/* A model that does not fit its data is refused before the run folder exists, naming the
 * layer, so a corrected config can be run again without --force. */
Test(cli, model_that_does_not_fit_exit_2_and_writes_nothing)
{
    char path[700];
    snprintf(path, sizeof path, "%s/cnn.yaml", dir);
    write_file(path, "name: cnn\ndevice: cpu\ndata: {train_limit: 64, test_limit: 16}\n"
                     "model:\n  layers:\n"
                     "    - {type: conv2d, out_channels: 4, kernel: 3}\n"
                     "    - {type: linear, out_features: 10}\n");
    cr_assert_eq(elag("train cnn.yaml --device cpu --out runs/cnn"), 2);
    expect_output("layer 'fc1' (linear): takes flat features but gets (4, 26, 26)");
    snprintf(path, sizeof path, "%s/runs/cnn", dir);
    struct stat sb;
    cr_assert_neq(stat(path, &sb), 0, "the run folder must not exist");
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    write_file(path, "name: big\ndevice: cpu\ndata: {train_limit: 64, test_limit: 16}\n"
                     "model:\n  layers:\n"
                     "    - {type: conv2d, out_channels: 4, kernel: 29}\n"
                     "    - {type: flatten}\n    - {type: linear, out_features: 10}\n");
    cr_assert_eq(elag("train big.yaml --device cpu --out runs/big"), 2);
    expect_output("layer 'conv1' (conv2d): kernel 29x29");
    expect_output("does not fit its input of 28x28");
}

Test(cli, cuda_without_device_exit_2)
{
    if (elag_test_run("nvidia-smi -L 2>/dev/null | grep -q GPU", NULL) == 0)
        cr_skip_test("a GPU is present");
    cr_assert_eq(elag("train tiny.yaml --device cuda"), 2);
    expect_output("CUDA");
}

Test(cli, train_then_eval)
{
    cr_assert_eq(elag("train tiny.yaml --quiet"), 0);
    expect_output("results in runs/tiny");
    cr_assert_eq(elag("eval runs/tiny/model.safetensors --json"), 0);
    char *o = slurp(out_file);
    cJSON *j = cJSON_Parse(o);
    cr_assert_not_null(j, "eval --json printed: %s", o);
    cr_assert_not_null(cJSON_GetObjectItem(j, "test_accuracy"));
    cr_assert_not_null(cJSON_GetObjectItem(j, "samples_per_second"));
    double sp = cJSON_GetObjectItem(j, "sparsity")->valuedouble;
    cr_assert_float_eq(sp, 0.5, 0.01);
    cJSON_Delete(j);
    free(o);
    cr_assert_eq(elag("eval runs/tiny/model.safetensors"), 0);
    expect_output("fc1");
    /* the device note, kept back while the input is checked, is printed on success (a
     * failure prints only its error: tests/test_bad_inputs.c) */
    cr_assert_eq(elag("eval runs/tiny/model.safetensors --device auto"), 0);
    expect_output("device found, using ");
}

Test(cli, existing_run_folder_is_not_touched)
{
    cr_assert_eq(elag("train tiny.yaml --quiet"), 0);
    char summary[700];
    snprintf(summary, sizeof summary, "%s/runs/tiny/summary.json", dir);
    char *before = slurp(summary);
    struct stat sb0, sb1;
    cr_assert_eq(stat(summary, &sb0), 0);
    cr_assert_eq(elag("train tiny.yaml --quiet"), 2, "no --force");
    expect_output("--force");
    cr_assert_eq(elag("train tiny.yaml --set train.epochs=-1"), 2);
    cr_assert_eq(elag("train tiny.yaml --force --set prune.methd=gmp"), 2);
    char *after = slurp(summary);
    cr_assert_str_eq(before, after);
    cr_assert_eq(stat(summary, &sb1), 0);
    cr_assert_eq(sb0.st_mtime, sb1.st_mtime);
    cr_assert_eq(elag("train tiny.yaml --quiet --force"), 0);
    free(before);
    free(after);
}

Test(cli, corrupt_model_exit_2)
{
    char path[600];
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    write_file(path, "this is not a safetensors file at all");
    cr_assert_eq(elag("eval bad.safetensors"), 2);
    expect_output("bad.safetensors");
    cr_assert_eq(elag("eval missing.safetensors"), 2);
}
