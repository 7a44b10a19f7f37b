/*
 * Bad command lines of `elag train`, `eval`, `export`, `sensitivity`, `sweep` and `report`:
 * each is refused with exit 2 and one line that names what is wrong, before anything is
 * written (the folder the commands run in is empty afterwards, but for the inputs the test
 * put there). The bench commands' are in test_cov_bench.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("cov-usage");
    elag_test_put(dir, "c.yaml",
                  "name: c\ndevice: cpu-ref\n"
                  "data: {dataset: synthetic, synthetic: {train: 32, test: 16, features: 4, "
                  "classes: 2}}\n"
                  "model: {layers: [{type: linear, out_features: 2}]}\n"
                  "train: {epochs: 1, batch_size: 16, threads: 1}\n");
    elag_test_put(dir, "s.yaml", "base: c.yaml\ngrid: {seed: [1, 2]}\n");
    elag_test_put(dir, "m.safetensors", "not a model");
    elag_test_put(dir, "taken.safetensors", "");
    char good[600];
    snprintf(good, sizeof good, "%s/good", dir);
    cr_assert_eq(mkdir(good, 0755), 0);
    elag_test_put(dir, "good/results.jsonl", "{\"run_id\": \"r0\", \"status\": \"ok\"}\n");
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_usage, .init = setup, .fini = teardown, .timeout = 600);

static int entries(void)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* `[env] elag ARGS` in dir must exit 2 with one line containing `what`; nothing new in dir
 * (unless `writes`). */
static void refused_w(const char *env, const char *args, const char *what, int writes)
{
    char cmd[4096], out[600];
    snprintf(out, sizeof out, "%s/../cov-usage-out-%d", dir, (int)getpid());
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' %s", dir, env ? env : "", ELAG_CLI_PATH, args);
    const int before = entries();
    int rc = elag_test_run(cmd, out);
    char *o = elag_test_slurp(out);
    remove(out);
    int lines = 0;
    for (const char *p = o; *p; p++) lines += *p == '\n';
    cr_expect_eq(rc, 2, "elag %s: exit %d, want 2 (%s)", args, rc, o);
    cr_expect_eq(lines, 1, "elag %s: %d lines: %s", args, lines, o);
    cr_expect(strstr(o, what) != NULL, "elag %s: '%s' does not say '%s'", args, o, what);
    if (!writes) cr_expect_eq(entries(), before, "elag %s wrote into its folder", args);
    free(o);
}

static void refused(const char *env, const char *args, const char *what)
{
    refused_w(env, args, what, 0);
}

Test(cov_usage, train_eval_export)
{
    refused(NULL, "train", "missing CONFIG");
    refused(NULL, "train c.yaml extra", "unexpected argument 'extra'");
    refused(NULL, "train --resume a --out b", "--out and --resume name different folders");
    refused(NULL, "train c.yaml --bogus", "--bogus");
    refused(NULL, "eval", "missing MODEL");
    refused(NULL, "eval m.safetensors extra", "unexpected argument 'extra'");
    refused(NULL, "export", "missing MODEL");
    refused(NULL, "export m.safetensors", "missing --format");
    refused(NULL, "export m.safetensors extra --format csr", "unexpected argument 'extra'");
    refused(NULL, "export m.safetensors --format csr --bogus", "--bogus");
    refused(NULL, "export m.safetensors --format coo", "coo");
    refused(NULL, "export m.safetensors --format csr --out m.safetensors", "is MODEL itself");
    refused(NULL, "export m.safetensors --format csr --out taken.safetensors",
            "taken.safetensors exists; pass --force");
}

Test(cov_usage, sensitivity)
{
    refused(NULL, "sensitivity", "missing CONFIG or MODEL");
    refused(NULL, "sensitivity c.yaml extra", "unexpected argument 'extra'");
    refused(NULL, "sensitivity c.yaml --layers ,", "--layers: an empty list");
    char args[2048] = "sensitivity c.yaml --layers a";
    for (int i = 0; i < 80; i++) strcat(args, ",a");
    refused(NULL, args, "--layers: more than");
    refused(NULL, "sensitivity c.yaml --finetune-steps x", "--finetune-steps 'x'");
    refused(NULL, "sensitivity c.yaml --finetune-lr 0", "--finetune-lr '0'");
    refused(NULL, "sensitivity c.yaml --budget 1.5", "--budget '1.5'");
    refused(NULL, "sensitivity c.yaml --threads -3", "--threads '-3'");
    refused(NULL, "sensitivity c.yaml --levels 0.5,0.2", "levels must increase");
    refused(NULL, "sensitivity c.yaml --bogus", "--bogus");
}

Test(cov_usage, sweep_and_report)
{
    refused(NULL, "sweep", "missing FILE");
    refused(NULL, "sweep s.yaml extra", "unexpected argument 'extra'");
    refused(NULL, "sweep s.yaml --jobs 0", "--jobs expects a number in [1, 1024], got '0'");
    refused(NULL, "sweep s.yaml --jobs x", "--jobs expects");
    refused(NULL, "sweep s.yaml --shard 2/2", "--shard expects I/N with 0 <= I < N, got '2/2'");
    refused(NULL, "sweep s.yaml --shard x", "--shard expects");
    refused(NULL, "sweep s.yaml --devices ,", "--devices expects a list");
    refused(NULL, "sweep --collect", "--collect needs at least one folder");
    refused(NULL, "sweep --collect a", "--collect needs --out DIR");
    refused(NULL, "sweep s.yaml --collect a --out merged", "--collect takes folders");
    refused(NULL, "sweep s.yaml --bogus", "--bogus");
    /* a folder that is no sweep output, also after a good one: refused before --out is
     * made (every input ledger is read first) */
    refused(NULL, "sweep --collect c.yaml --out merged", "c.yaml: no results.jsonl there");
    refused(NULL, "sweep --collect good nowhere --out merged", "nowhere: no results.jsonl there");
    refused(NULL, "report", "missing DIR");
    refused(NULL, "report a b", "unexpected argument 'b'");
    refused(NULL, "report a --bogus", "--bogus");
    refused(NULL, "report a --python /nonexistent/python3",
            "--python /nonexistent/python3: not an executable file");
    refused("ELAG_PYTHON=/nonexistent/py", "report a", "ELAG_PYTHON /nonexistent/py");
    refused(NULL, "report a --plot-script /nonexistent/plot.py",
            "--plot-script /nonexistent/plot.py: not a readable file");
    refused("ELAG_PLOT_SCRIPT=/nonexistent/p.py", "report a", "ELAG_PLOT_SCRIPT /nonexistent/p.py");
}

Test(cov_usage, infer_import_bench_model)
{
    elag_test_put(dir, "m.onnx", "not a model");
    refused(NULL, "infer", "missing FILE");
    refused(NULL, "infer m.safetensors extra", "unexpected argument 'extra'");
    refused(NULL, "infer m.safetensors --threads x",
            "--threads 'x': expected an integer in 0..1024");
    refused(NULL, "infer m.safetensors --threads 5000", "--threads '5000'");
    refused(NULL, "infer m.safetensors --bogus", "unknown option '--bogus'");
    refused(NULL, "infer --thread 3 m.safetensors", "(did you mean '--threads'?)");
    refused(NULL, "import", "missing MODEL.onnx");
    refused(NULL, "import m.onnx extra", "unexpected argument 'extra'");
    refused(NULL, "import m.onnx --bogus", "unknown option '--bogus'");
    refused(NULL, "import m.onnx --out m.onnx", "m.onnx is MODEL itself");
    refused(NULL, "import m.onnx --out taken.safetensors",
            "taken.safetensors exists; pass --force");
    refused(NULL, "import m.onnx --set", "option --set needs a value");
    refused(NULL, "import --out", "option --out needs a value");
    refused(NULL, "bench model", "missing FILE");
    refused(NULL, "bench model m.safetensors extra", "unexpected argument 'extra'");
    refused(NULL, "bench model m.safetensors --batch ,", "--batch: empty list");
    refused(NULL, "bench model m.safetensors --batch x", "--batch 'x': expected an integer in 1..");
    char args[400] = "bench model m.safetensors --batch 1";
    for (int i = 2; i <= 33; i++)
        snprintf(args + strlen(args), sizeof args - strlen(args), ",%d", i);
    refused(NULL, args, "--batch: at most 32 sizes");
    refused(NULL, "bench model m.safetensors --threads -1", "--threads '-1'");
    refused(NULL, "bench model m.safetensors --repeat 0",
            "--repeat '0': expected an integer in 1..");
    refused(NULL, "bench model m.safetensors --bogus", "unknown option '--bogus'");
    refused(NULL, "export m.safetensors --format csr --threads x", "--threads 'x'");
    refused(NULL, "export m.safetensors --format csr --device", "option --device needs a value");
    refused(NULL, "export m.safetensors --format onnx --out taken.safetensors",
            "taken.safetensors exists; pass --force");
}

Test(cov_usage, sensitivity_levels_and_bench_masks)
{
    refused(NULL, "sensitivity c.yaml --levels 0.5,,0.7", "--levels '0.5,,0.7': an empty item");
    refused(NULL, "sensitivity c.yaml --levels abc", "--levels 'abc': 'abc' is not a number");
    refused(NULL, "sensitivity c.yaml --levels nan", "'nan' is not a number");
    refused(NULL, "sensitivity c.yaml --levels 1.5", "1.5 is not in (0, 1) (a layer's sparsity)");
    char args[600] = "sensitivity c.yaml --levels 0.", many[600] = "sensitivity c.yaml --levels ";
    for (int i = 0; i < 70; i++) strcat(args, "1");
    refused(NULL, args, "a too long item");
    for (int i = 1; i <= 17; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%s0.%02d", i > 1 ? "," : "", i);
    refused(NULL, many, "more than 16 levels");
    refused(NULL, "sensitivity c.yaml --budget 0", "--budget '0': a number in (0, 1) is needed");
    refused(NULL, "bench spmm --shapes 8x6 --min-sample-ms 1e9",
            "--min-sample-ms: '1e9' is not in 0..10000");
    refused(NULL, "bench spmm --shapes 8x6 --mask block:0",
            "block size in 'block:0' is not 1..4096");
    refused(NULL, "bench spmm --shapes 8x6 --mask block:x",
            "block size in 'block:x' is not 1..4096");
    refused(NULL, "bench spmm --shapes 8x6 --mask m.safetensors",
            "--mask MODEL takes its shapes from the model; drop --shape/--shapes");
}

Test(cov_usage, sweep_options_without_values_and_device_lists)
{
    refused(NULL, "sweep s.yaml --jobs", "option --jobs needs a value");
    refused(NULL, "sweep s.yaml --shard", "option --shard needs a value");
    refused(NULL, "sweep s.yaml --devices", "option --devices needs a value");
    refused(NULL, "sweep s.yaml --out", "option --out needs a value");
    refused(NULL, "sweep s.yaml -x", "unknown option '-x'");
    refused(NULL, "sweep s.yaml --devices 0,,1",
            "--devices expects a list like 0,1 or "
            "cuda:0,cuda:1, got '0,,1'");
    refused(NULL, "sweep s.yaml --devices 0,", "got '0,'");
    refused(NULL, "sweep s.yaml --devices aaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "--devices expects");
    char args[600] = "sweep s.yaml --devices 0";
    for (int i = 1; i <= 64; i++)
        snprintf(args + strlen(args), sizeof args - strlen(args), ",%d", i);
    refused(NULL, args, "--devices expects");
}
