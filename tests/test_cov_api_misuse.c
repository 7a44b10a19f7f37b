/*
 * Misuse of the public API (include/elag/): a NULL or out-of-range argument to a function
 * that returns a status is ELAG_ERR_USAGE with a message naming the function and the
 * argument, and leaves *out NULL; the same to an accessor that returns a value (no status
 * to return) is a broken invariant, which aborts with "assertion failed" and file:line on
 * stderr (ELAG_ASSERT, docs/api.md). The aborts run in child processes.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;
static elag_net_t *net;
static elag_device_t *dev;
static elag_sweep_t *sw;
static char ckpt[600];

static const char tiny_yaml[] =
    "name: tiny\n"
    "device: cpu-ref\n"
    "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 8, classes: 3}}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: linear, out_features: 8}\n"
    "    - {type: relu}\n"
    "    - {type: linear, out_features: 3}\n"
    "train: {epochs: 1, batch_size: 32, threads: 1}\n"
    "prune: {method: gmp, target: 0.5, start: 0, end: 0.5, frequency: 1}\n";

/* The files of a tiny run (cpu-ref, one thread) and of a sweep of 2 runs of it. */
static void setup(void)
{
    dir = elag_test_tmpdir("cov-misuse");
    elag_test_put(dir, "tiny.yaml", tiny_yaml);
    elag_test_put(dir, "s.yaml", "base: tiny.yaml\ngrid: {seed: [1, 2]}\n");
    snprintf(ckpt, sizeof ckpt, "%s/run/model.safetensors", dir);
    net = NULL, dev = NULL, sw = NULL;
}

/* Trains the tiny run, opens its network and a cpu-ref device. */
static void train_tiny(void)
{
    char path[600], out[600];
    snprintf(path, sizeof path, "%s/tiny.yaml", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    cr_assert_eq(elag_run_train(path, out, NULL, NULL), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_net_from_checkpoint(&net, ckpt), ELAG_OK, "%s", elag_last_error());
    elag_device_options o = ELAG_DEVICE_OPTIONS_INIT;
    o.device = "cpu-ref", o.threads = 1;
    cr_assert_eq(elag_device_open(&dev, &o), ELAG_OK, "%s", elag_last_error());
}

static void teardown(void)
{
    elag_sweep_free(sw);
    elag_device_free(dev);
    elag_net_free(net);
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_misuse, .init = setup, .fini = teardown, .timeout = 600);

#define USAGE(call, what)                                                                          \
    do {                                                                                           \
        elag_status st_ = (call);                                                                  \
        cr_expect_eq(st_, ELAG_ERR_USAGE, "%s gave %s (%s)", #call, elag_status_name(st_),         \
                     elag_last_error());                                                           \
        cr_expect(strstr(elag_last_error(), (what)) != NULL, "%s: '%s' does not say '%s'", #call, \
                  elag_last_error(), (what));                                                      \
    } while (0)

Test(cov_misuse, statuses)
{
    train_tiny();
    void *sentinel = (void *)dir;
    elag_net_t *n = sentinel;
    USAGE(elag_net_open(NULL, ckpt), "elag_net_open: out is NULL");
    USAGE(elag_net_open(&n, NULL), "elag_net_open: path is NULL");
    cr_expect_null(n, "*out is NULL after a refusal");
    n = sentinel;
    USAGE(elag_net_from_checkpoint(NULL, ckpt), "out is NULL");
    USAGE(elag_net_from_checkpoint(&n, NULL), "path is NULL");
    cr_expect_null(n);
    USAGE(elag_net_convert(NULL, "csr", NULL), "elag_net_convert: net is NULL");
    USAGE(elag_net_convert(net, "auto", NULL), "needs a device");
    USAGE(elag_net_save(NULL, "x"), "elag_net_save: net is NULL");
    USAGE(elag_net_save(net, NULL), "elag_net_save: path is NULL");
    elag_weight_timing wt;
    USAGE(elag_net_weight_timing(NULL, 0, &wt), "net is NULL");
    USAGE(elag_net_weight_timing(net, 0, NULL), "out is NULL");
    USAGE(elag_net_weight_timing(net, 99, &wt), "no weight 99");
    elag_weight_info wi;
    USAGE(elag_net_weight(NULL, 0, &wi), "elag_net_weight: net is NULL");
    USAGE(elag_net_weight(net, 0, NULL), "elag_net_weight: out is NULL");
    USAGE(elag_net_weight(net, -1, &wi), "no weight -1");
    elag_thin_options to;
    USAGE(elag_thin_options_init(NULL, ELAG_THIN_OPTIONS_VERSION), "opts is NULL");
    USAGE(elag_thin_options_init(&to, 0), "version 0");
    USAGE(elag_net_thin(NULL, NULL, NULL), "elag_net_thin: net is NULL");
    to = (elag_thin_options)ELAG_THIN_OPTIONS_INIT;
    to.tolerance = -1;
    USAGE(elag_net_thin(net, &to, NULL), "must be >= 0");
    elag_thin_info ti;
    USAGE(elag_net_thin_layer(NULL, 0, &ti), "net is NULL");
    USAGE(elag_net_thin_layer(net, 0, NULL), "out is NULL");
    USAGE(elag_net_thin_layer(net, 7, &ti), "no layer 7");

    elag_device_options dopts;
    USAGE(elag_device_options_init(NULL, ELAG_DEVICE_OPTIONS_VERSION), "opts is NULL");
    USAGE(elag_device_options_init(&dopts, 9), "version 9");
    USAGE(elag_device_open(NULL, &dopts), "elag_device_open: out is NULL");

    elag_infer_options io;
    elag_infer_t *s = sentinel;
    USAGE(elag_infer_options_init(NULL, ELAG_INFER_OPTIONS_VERSION), "opts is NULL");
    USAGE(elag_infer_open(NULL, net, dev, NULL), "elag_infer_open: out is NULL");
    USAGE(elag_infer_open(&s, NULL, dev, NULL), "elag_infer_open: net is NULL");
    cr_expect_null(s);
    io = (elag_infer_options)ELAG_INFER_OPTIONS_INIT;
    io.max_batch = -1;
    USAGE(elag_infer_open(&s, net, dev, &io), "max_batch -1");
    cr_assert_eq(elag_infer_open(&s, net, dev, NULL), ELAG_OK, "%s", elag_last_error());
    float x[8] = {0}, logits[3];
    USAGE(elag_infer_run(NULL, x, 1, logits), "session is NULL");
    USAGE(elag_infer_run(s, x, -1, logits), "batch of -1 samples");
    USAGE(elag_infer_run(s, NULL, 1, logits), "x is NULL");
    USAGE(elag_infer_run(s, x, 1, NULL), "logits is NULL");
    elag_testset_t *t = sentinel;
    USAGE(elag_testset_open(NULL, net), "out is NULL");
    USAGE(elag_testset_open(&t, NULL), "net is NULL");
    cr_expect_null(t);
    elag_infer_result ir = ELAG_INFER_RESULT_INIT;
    USAGE(elag_infer_evaluate(NULL, t, 8, &ir, NULL), "elag_infer_evaluate");
    elag_infer_free(s);

    elag_eval_options eo;
    elag_eval_result er = ELAG_EVAL_RESULT_INIT;
    USAGE(elag_eval_options_init(NULL, ELAG_EVAL_OPTIONS_VERSION), "opts is NULL");
    USAGE(elag_run_eval(ckpt, NULL, NULL), "result is NULL");
    USAGE(elag_run_eval(NULL, NULL, &er), "path is NULL");
    (void)eo;

    elag_sensitivity_options so;
    elag_sensitivity_t *sens = sentinel;
    USAGE(elag_sensitivity_options_init(NULL, ELAG_SENSITIVITY_OPTIONS_VERSION), "opts is NULL");
    USAGE(elag_sensitivity_options_init(&so, 5), "version 5");
    USAGE(elag_sensitivity_run(NULL, ckpt, NULL, NULL), "out is NULL");
    USAGE(elag_sensitivity_run(&sens, NULL, NULL, NULL), "no input");
    cr_expect_null(sens);
    so = (elag_sensitivity_options)ELAG_SENSITIVITY_OPTIONS_INIT;
    so.n_overrides = 2;
    USAGE(elag_sensitivity_run(&sens, ckpt, NULL, &so), "2 overrides");
    so = (elag_sensitivity_options)ELAG_SENSITIVITY_OPTIONS_INIT;
    const char *layers[] = {"fc1"};
    so.layers = layers, so.n_layers = 0;
    USAGE(elag_sensitivity_run(&sens, ckpt, NULL, &so), "0 layers");
    so.layers = NULL, so.n_layers = 1;
    USAGE(elag_sensitivity_run(&sens, ckpt, NULL, &so), "1 layers");
    so = (elag_sensitivity_options)ELAG_SENSITIVITY_OPTIONS_INIT;
    so.finetune_steps = -2;
    USAGE(elag_sensitivity_run(&sens, ckpt, NULL, &so), "--finetune-steps -2");
    so = (elag_sensitivity_options)ELAG_SENSITIVITY_OPTIONS_INIT;
    so.finetune_lr = -1;
    USAGE(elag_sensitivity_run(&sens, ckpt, NULL, &so), "--finetune-lr -1");
    so = (elag_sensitivity_options)ELAG_SENSITIVITY_OPTIONS_INIT;
    so.budget = 1.0;
    USAGE(elag_sensitivity_run(&sens, ckpt, NULL, &so), "--budget 1");
    so = (elag_sensitivity_options)ELAG_SENSITIVITY_OPTIONS_INIT;
    so.threads = -1;
    USAGE(elag_sensitivity_run(&sens, ckpt, NULL, &so), "--threads -1");
    so = (elag_sensitivity_options)ELAG_SENSITIVITY_OPTIONS_INIT;
    USAGE(elag_sensitivity_run(&sens, ckpt, "", &so), "--out: an empty path");
    double lv[4];
    int nl = 0;
    USAGE(elag_sensitivity_levels_parse(NULL, lv, 4, &nl), "bad arguments");
    USAGE(elag_sensitivity_levels_parse("0.5,,0.7", lv, 4, &nl), "empty item");
    USAGE(elag_sensitivity_levels_parse("0.5,x", lv, 4, &nl), "'x' is not a number");
    USAGE(elag_sensitivity_levels_parse("0.1,0.2,0.3,0.4,0.5", lv, 4, &nl), "more than 4 levels");
    USAGE(elag_sensitivity_levels_parse("0.5,0.4", lv, 4, &nl), "levels must increase");
    USAGE(elag_sensitivity_levels_parse("1.5", lv, 4, &nl), "1.5 is not in (0, 1)");
    USAGE(elag_sensitivity_describe(NULL, NULL), "NULL argument");

    elag_sweep_t *w = sentinel;
    USAGE(elag_sweep_open(NULL, "s.yaml"), "elag_sweep_open: out is NULL");
    USAGE(elag_sweep_open(&w, NULL), "elag_sweep_open: path is NULL");
    cr_expect_null(w);
    USAGE(elag_sweep_copy_file(NULL, dir), "sweep is NULL");
    elag_sweep_ledger_t *l = sentinel;
    USAGE(elag_sweep_ledger_open(NULL, dir), "out is NULL");
    USAGE(elag_sweep_ledger_open(&l, NULL), "out_dir is NULL");
    cr_expect_null(l);
    elag_sweep_shard_options sho;
    elag_sweep_shard_t *sh = sentinel;
    USAGE(elag_sweep_shard_options_init(NULL, ELAG_SWEEP_SHARD_OPTIONS_VERSION), "opts is NULL");
    USAGE(elag_sweep_shard_options_init(&sho, 0), "version 0");
    USAGE(elag_sweep_shard_open(NULL, NULL, NULL), "out is NULL");
    USAGE(elag_sweep_shard_open(&sh, NULL, NULL), "is NULL");
    cr_expect_null(sh);
    USAGE(elag_sweep_shard_write_csv(NULL), "shard is NULL");
}

/* ---- aborts ---- */

/* The coverage runtime's "write the counters now" (gcc --coverage builds; linked in by
 * CMakeLists.txt): the aborting child's counters are written from its SIGABRT handler. */
extern void __gcov_dump(void) __attribute__((weak));

static void on_abort(int sig)
{
    (void)sig;
    if (__gcov_dump) __gcov_dump();
    _exit(99);
}

/* Runs call(k) in a child; it must abort with "assertion failed" naming `file`. */
static void expect_abort(void (*call)(int), int k, const char *what, const char *file)
{
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], STDERR_FILENO);
        signal(SIGABRT, on_abort);
        call(k);
        _exit(0); /* no abort: the parent sees exit 0 */
    }
    close(fd[1]);
    char msg[1024] = "";
    size_t got = 0;
    ssize_t r;
    while (got < sizeof msg - 1 && (r = read(fd[0], msg + got, sizeof msg - 1 - got)) > 0)
        got += (size_t)r;
    msg[got] = '\0';
    close(fd[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    cr_expect(WIFEXITED(ws) && WEXITSTATUS(ws) == 99, "%s did not abort (status %#x)", what, ws);
    cr_expect(strstr(msg, "assertion failed") && strstr(msg, file), "%s: stderr '%s'", what, msg);
}

static void accessors(int k)
{
    int64_t a, b;
    char buf[8];
    switch (k) {
    case 0: (void)elag_net_input_dim(NULL); break;
    case 1: (void)elag_net_classes(NULL); break;
    case 2: (void)elag_net_sparsity(NULL, &a, &b); break;
    case 3: (void)elag_net_weight_count(NULL); break;
    case 4: elag_net_formats(NULL, buf, sizeof buf); break;
    case 5: elag_net_formats(net, NULL, sizeof buf); break;
    case 6: elag_net_formats(net, buf, 0); break;
    case 7: (void)elag_device_name(NULL); break;
    case 8: (void)elag_device_is_cuda(NULL); break;
    case 9: (void)elag_device_threads(NULL); break;
    case 10: (void)elag_device_note(NULL); break;
    case 11: (void)elag_infer_device_name(NULL); break;
    case 12: (void)elag_infer_max_batch(NULL); break;
    case 13: (void)elag_net_math(NULL, dev, 0); break;
    case 14: (void)elag_net_math(net, NULL, 0); break;
    case 15: (void)elag_net_verify_tol(NULL, dev); break;
    case 16: (void)elag_net_verify_tol(net, NULL); break;
    case 17: (void)elag_testset_count(NULL); break;
    case 18: (void)elag_bench_shape_list_count(NULL); break;
    }
}

static const char *const accessor_files[] = {
    "net.c",    "net.c",    "net.c",    "net.c",    "net.c",    "net.c",   "net.c",   "device.c",
    "device.c", "device.c", "device.c", "infer.c",  "infer.c",  "infer.c", "infer.c", "infer.c",
    "infer.c",  "infer.c",  "bench.c"};

Test(cov_misuse, accessors_abort)
{
    train_tiny();
    for (int k = 0; k < (int)(sizeof accessor_files / sizeof *accessor_files); k++) {
        char what[32];
        snprintf(what, sizeof what, "accessor %d", k);
        expect_abort(accessors, k, what, accessor_files[k]);
    }
}

static void sweep_accessors(int k)
{
    int n = 0, f = 0;
    elag_sweep_command c;
    switch (k) {
    case 0: (void)elag_sweep_path(NULL); break;
    case 1: (void)elag_sweep_base(NULL); break;
    case 2: (void)elag_sweep_name(NULL); break;
    case 3: (void)elag_sweep_run_count(NULL); break;
    case 4: (void)elag_sweep_dropped(NULL); break;
    case 5: (void)elag_sweep_sets_device(NULL); break;
    case 6: (void)elag_sweep_run_id(NULL, 0); break;
    case 7: (void)elag_sweep_run_id(sw, -1); break;
    case 8: (void)elag_sweep_run_id(sw, 2); break;
    case 9: (void)elag_sweep_run_sets(NULL, 0, &n, &f); break;
    case 10: (void)elag_sweep_run_sets(sw, -1, &n, &f); break;
    case 11: (void)elag_sweep_run_sets(sw, 2, &n, &f); break;
    case 12: (void)elag_sweep_ledger_status(NULL, "x"); break;
    case 13: elag_sweep_shard_counts(NULL, &n, NULL, NULL, NULL); break;
    case 14: (void)elag_sweep_shard_todo(NULL, 0); break;
    case 15: (void)elag_sweep_job_run(NULL); break;
    case 16: elag_sweep_job_command(NULL, &c); break;
    case 17: (void)elag_sweep_job_error(NULL); break;
    }
}

Test(cov_misuse, sweep_accessors_abort)
{
    char path[600];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    cr_assert_eq(elag_sweep_open(&sw, path), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_sweep_run_count(sw), 2);
    for (int k = 0; k < 18; k++) {
        char what[32];
        snprintf(what, sizeof what, "sweep accessor %d", k);
        expect_abort(sweep_accessors, k, what, "sweep.c");
    }
}
