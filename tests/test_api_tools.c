/*
 * The public API behind `elag eval`, `export`, `infer`, `bench` and `sweep`, through the
 * public headers only (the CLI is built on nothing else): a version-1 elag_run_options,
 * a checkpoint evaluated, exported, its export evaluated on the test set and verified
 * against its dense model, a network and products benchmarked, and a sweep driven step by
 * step with no process at all (the test plays the scheduler, as test_sweep_job does).
 */
#include <elag/elag.h>

#include "support/fixtures.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static void count_note(const char *text, void *user)
{
    cr_expect(text[0] != '\0');
    ++*(int *)user;
}

/* Trains the tiny config into dir/run through the API. */
static void train_tiny(const char *dir, char *run, size_t size)
{
    elag_test_put(dir, "tiny.yaml", elag_test_tiny_yaml);
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/tiny.yaml", dir);
    snprintf(run, size, "%s/run", dir);
    const char *sets[] = {"train.threads=1"};
    elag_run_options ro = ELAG_RUN_OPTIONS_INIT;
    ro.overrides = sets;
    ro.n_overrides = 1;
    OK(elag_run_train(cfg, run, &ro, NULL));
}

Test(api_tools, run_options_version_1_has_no_note)
{
    /* _init of version 1 writes only the fields version 1 has */
    elag_run_options ro;
    ro.note = count_note;
    OK(elag_run_options_init(&ro, 1));
    cr_expect_eq(ro.version, 1);
    cr_expect(ro.note == count_note, "version-1 init wrote past its struct");

    /* a version-1 struct is read only as far as version 1 goes: its note is not called */
    char *dir = elag_test_tmpdir("api-v1");
    elag_test_put(dir, "tiny.yaml", elag_test_tiny_yaml);
    char cfg[512], run[512];
    snprintf(cfg, sizeof cfg, "%s/tiny.yaml", dir);
    int notes = 0;
    const char *sets[] = {"train.threads=1"};
    ro.overrides = sets;
    ro.n_overrides = 1;
    ro.device = "auto";
    ro.progress_user = &notes;
    snprintf(run, sizeof run, "%s/v1", dir);
    OK(elag_run_train(cfg, run, &ro, NULL));
    cr_expect_eq(notes, 0, "a version-1 caller got a note");

    /* version 2: the note "auto" makes is passed on once, as the device reports it */
    elag_device_options dop = ELAG_DEVICE_OPTIONS_INIT;
    elag_device_t *dev = NULL;
    OK(elag_device_open(&dev, &dop));
    int want = elag_device_note(dev)[0] != '\0';
    elag_device_free(dev);
    ro.version = 2; /* not the newest: ro holds no version-3 field (interrupt) */
    snprintf(run, sizeof run, "%s/v2", dir);
    OK(elag_run_train(cfg, run, &ro, NULL));
    cr_expect_eq(notes, want);
    elag_test_rmtree(dir);
    free(dir);
}

Test(api_tools, eval_export_and_test_set)
{
    char *dir = elag_test_tmpdir("api-tools");
    char run[512], ckpt[600], exp[600];
    train_tiny(dir, run, sizeof run);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    snprintf(exp, sizeof exp, "%s/tiny.csr.safetensors", dir);

    /* eval: the checkpoint on its test set */
    elag_eval_options eo = ELAG_EVAL_OPTIONS_INIT;
    eo.device = "cpu-ref";
    elag_eval_result er = ELAG_EVAL_RESULT_INIT;
    OK(elag_run_eval(ckpt, &eo, &er));
    cr_expect_str_eq(er.device, "cpu-ref");
    cr_expect(er.test_accuracy >= 0 && er.test_accuracy <= 1);
    cr_expect_float_eq(er.sparsity, 0.5, 1e-9);
    cr_expect_eq(er.params_prunable, 88);
    cr_assert_eq(er.n_weights, 2);
    cr_expect_str_eq(er.weights[0].layer, "fc1");
    cr_expect(er.weights[0].rows == 8 && er.weights[0].cols == 8 && er.weights[0].ndim == 2);
    cr_expect_eq(er.weights[0].nonzero + er.weights[1].nonzero, 44);
    cr_expect_neq(elag_run_eval("/nonexistent/m.safetensors", &eo, &er), ELAG_OK);
    er.version = 0;
    cr_expect_eq(elag_run_eval(ckpt, &eo, &er), ELAG_ERR_USAGE);

    /* export: formats checked, converted, saved, read back */
    int is_auto = 0;
    cr_expect_eq(elag_export_format_parse("bell:0", NULL), ELAG_ERR_USAGE);
    OK(elag_export_format_parse("auto", &is_auto));
    cr_expect_eq(is_auto, 1);
    elag_net_t *net = NULL;
    OK(elag_net_from_checkpoint(&net, ckpt));
    cr_assert_eq(elag_net_weight_count(net), 2);
    elag_weight_info w;
    OK(elag_net_weight(net, 1, &w));
    cr_expect(strcmp(w.layer, "fc2") == 0 && strcmp(w.format, "dense") == 0, "%s %s", w.layer,
              w.format);
    cr_expect(w.rows == 3 && w.cols == 8 && w.params == 24);
    cr_expect_eq(elag_net_weight(net, 2, &w), ELAG_ERR_USAGE);
    cr_expect_eq(elag_net_convert(net, "auto", NULL), ELAG_ERR_USAGE, "auto needs a device");
    OK(elag_net_convert(net, "csr", NULL));
    OK(elag_net_save(net, exp));
    elag_net_free(net);
    net = NULL;
    OK(elag_net_open(&net, exp));
    char formats[64];
    elag_net_formats(net, formats, sizeof formats);
    cr_expect_str_eq(formats, "csr,csr");
    OK(elag_net_weight(net, 0, &w));
    cr_expect(strcmp(w.format, "csr") == 0 && w.bytes > 0, "%s", w.format);

    /* the test set through the export, sparse then dense: the figures of eval */
    elag_testset_t *t = NULL;
    OK(elag_testset_open(&t, net));
    cr_assert_eq(elag_testset_count(t), 64);
    float sparse[64 * 3], dense[64 * 3];
    elag_infer_result ir = ELAG_INFER_RESULT_INIT, dr = ELAG_INFER_RESULT_INIT;
    for (int k = 0; k < 2; k++) {
        elag_infer_options io = ELAG_INFER_OPTIONS_INIT;
        io.device = "cpu-ref";
        io.max_batch = 16;
        io.dense = k;
        elag_infer_t *s = NULL;
        OK(elag_infer_open(&s, net, NULL, &io));
        OK(elag_infer_evaluate(s, t, 16, k ? &dr : &ir, k ? dense : sparse));
        cr_expect_eq(elag_infer_evaluate(s, t, 17, &ir, NULL), ELAG_ERR_USAGE, "batch > max");
        elag_infer_free(s);
    }
    cr_expect(ir.samples == 64 && ir.batches == 4, "%ld samples, %d batches", ir.samples,
              ir.batches);
    cr_expect_float_eq(ir.accuracy, er.test_accuracy, 1.5 / 64, "export vs checkpoint");
    cr_expect_leq(elag_logits_max_rel_err(sparse, dense, 64 * 3), ELAG_INFER_VERIFY_TOL);
    elag_testset_free(t);

    /* the network benchmarked, sparse against dense */
    elag_device_options dop = ELAG_DEVICE_OPTIONS_INIT;
    dop.device = "cpu-ref";
    elag_device_t *dev = NULL;
    OK(elag_device_open(&dev, &dop));
    elag_bench_net_options bo = ELAG_BENCH_NET_OPTIONS_INIT;
    bo.batch = 4;
    bo.repeat = 2;
    elag_bench_net_result br = ELAG_BENCH_NET_RESULT_INIT;
    OK(elag_bench_net(net, dev, &bo, &br));
    cr_expect(br.batch == 4 && br.dense_ms > 0 && br.sparse_ms > 0);
    bo.repeat = 0;
    cr_expect_eq(elag_bench_net(net, dev, &bo, &br), ELAG_ERR_USAGE);

    /* auto: every weight timed on the device */
    elag_net_free(net);
    OK(elag_net_from_checkpoint(&net, ckpt));
    OK(elag_net_convert(net, "auto", dev));
    elag_weight_timing tm;
    OK(elag_net_weight_timing(net, 0, &tm));
    cr_expect(tm.dense_ms > 0 && tm.csr_ms > 0, "%g %g", tm.dense_ms, tm.csr_ms);
    elag_device_free(dev);
    elag_net_free(net);
    elag_test_rmtree(dir);
    free(dir);
}

typedef struct rows_seen {
    int n, bad;
} rows_seen;

static int count_rows(const elag_bench_row *rows, int n, void *user)
{
    rows_seen *seen = user;
    for (int i = 0; i < n; i++) {
        seen->n++;
        seen->bad += rows[i].version != ELAG_BENCH_ROW_VERSION || rows[i].median_ms <= 0 ||
                     (strcmp(rows[i].format, "dense") != 0 && strcmp(rows[i].format, "csr") != 0);
    }
    return 0;
}

Test(api_tools, bench_spmm)
{
    elag_bench_shape_list_t *l = NULL;
    cr_expect_eq(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_LIST, "12"), ELAG_ERR_USAGE);
    cr_expect_null(l);
    cr_expect_eq(elag_bench_formats_check("dense,nope"), ELAG_ERR_USAGE);
    cr_expect(strstr(elag_last_error(), "nope") != NULL, "%s", elag_last_error());
    OK(elag_bench_formats_check("dense,csr,csr"));
    OK(elag_bench_shape_list_open(&l, ELAG_BENCH_SHAPES_FROM_LIST, "16x8,8x8"));
    cr_expect_eq(elag_bench_shape_list_count(l), 2);

    elag_device_options dop = ELAG_DEVICE_OPTIONS_INIT;
    dop.device = "cpu-ref";
    elag_device_t *dev = NULL;
    OK(elag_device_open(&dev, &dop));
    int batches[] = {4};
    double sparsities[] = {0.5, 0.9};
    rows_seen seen = {0, 0};
    elag_bench_spmm_options o = ELAG_BENCH_SPMM_OPTIONS_INIT;
    o.batches = batches, o.n_batches = 1;
    o.sparsities = sparsities, o.n_sparsities = 2;
    o.formats = "dense,csr,csr";
    o.repeat = 1, o.warmup = 0, o.min_sample_ms = 0;
    o.emit = count_rows, o.user = &seen;
    OK(elag_bench_spmm_run(dev, l, &o));
    cr_expect_eq(seen.n, 2 * (1 + 2), "per shape: dense once, csr per sparsity");
    cr_expect_eq(seen.bad, 0);
    o.version = 0;
    cr_expect_eq(elag_bench_spmm_run(dev, l, &o), ELAG_ERR_USAGE);
    elag_device_free(dev);
    elag_bench_shape_list_free(l);
}

/* The run folder of a command: its log's folder. */
static void run_dir(const elag_sweep_command *c, char *out, size_t size)
{
    snprintf(out, size, "%s", c->log);
    char *slash = strrchr(out, '/');
    if (slash) *slash = '\0';
}

Test(api_tools, sweep_step_by_step)
{
    char *dir = elag_test_tmpdir("api-sweep");
    elag_test_put(dir, "base.yaml", elag_test_tiny_yaml);
    elag_test_put(dir, "s.yaml",
                  "base: base.yaml\nset: {train.epochs: 1}\n"
                  "grid: {seed: [1, 2, 3]}\n");
    char path[600], out[600], out2[600], folder[900];
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(out2, sizeof out2, "%s/merged", dir);
    elag_sweep_t *sw = NULL;
    OK(elag_sweep_open(&sw, path));
    cr_assert_eq(elag_sweep_run_count(sw), 3);
    cr_expect_str_eq(elag_sweep_name(sw), "s");
    int n_sets = 0, first = -1;
    const char *const *sets = elag_sweep_run_sets(sw, 1, &n_sets, &first);
    cr_assert(n_sets == 2 && first == 1, "%d sets, axes from %d", n_sets, first);
    cr_expect_str_eq(sets[1], "seed=2");
    cr_expect(elag_sweep_in_shard(3, 1, 2) && !elag_sweep_in_shard(3, 0, 2));

    OK(elag_sweep_copy_file(sw, out));
    snprintf(folder, sizeof folder, "%s/sweep.yaml", out);
    cr_expect_eq(access(folder, R_OK), 0);

    elag_sweep_shard_options so = ELAG_SWEEP_SHARD_OPTIONS_INIT;
    so.out_dir = out;
    so.no_infer = 1;
    elag_sweep_shard_t *sh = NULL;
    OK(elag_sweep_shard_open(&sh, sw, &so));
    int total = 0, todo = 0;
    elag_sweep_shard_counts(sh, &total, NULL, NULL, &todo);
    cr_expect(total == 3 && todo == 3 && elag_sweep_shard_todo(sh, 2) == 2);

    /* run 0 trains ok (the test writes what training would), run 1 fails */
    for (int r = 0; r < 2; r++) {
        elag_sweep_claim claim;
        elag_sweep_job_t *job = NULL;
        OK(elag_sweep_shard_claim(sh, r, "cpu", &claim, &job));
        cr_assert(claim == ELAG_SWEEP_CLAIM_TAKEN && job != NULL);
        cr_expect_eq(elag_sweep_job_run(job), r);
        elag_sweep_command c;
        elag_sweep_job_command(job, &c);
        cr_expect(c.version == ELAG_SWEEP_COMMAND_VERSION && strcmp(c.argv[0], "train") == 0);
        cr_expect(c.log_append == 0 && c.stdout_path[0] == '\0' && c.omp_threads == 1);
        run_dir(&c, folder, sizeof folder);
        if (r == 0) elag_test_put(folder, "summary.json", "{\"test_accuracy\": 0.5}");
        elag_sweep_job_state state;
        OK(elag_sweep_job_ended(job, r == 0 ? 0 : 2, 0, 1.0, 0, &state));
        cr_expect_eq(state, r == 0 ? ELAG_SWEEP_JOB_OK : ELAG_SWEEP_JOB_FAILED);
        if (r == 1) cr_expect(elag_sweep_job_error(job)[0] != '\0');
        elag_sweep_job_free(job);
    }
    elag_sweep_claim claim;
    elag_sweep_job_t *job = (elag_sweep_job_t *)&claim; /* must come back NULL */
    OK(elag_sweep_shard_claim(sh, 0, NULL, &claim, &job));
    cr_expect(claim == ELAG_SWEEP_CLAIM_DONE && job == NULL);
    OK(elag_sweep_shard_write_csv(sh));
    elag_sweep_shard_free(sh);

    elag_sweep_ledger_t *l = NULL;
    OK(elag_sweep_ledger_open(&l, out));
    cr_expect_str_eq(elag_sweep_ledger_status(l, elag_sweep_run_id(sw, 0)), "ok");
    cr_expect_str_eq(elag_sweep_ledger_status(l, elag_sweep_run_id(sw, 1)), "failed");
    cr_expect_null(elag_sweep_ledger_status(l, elag_sweep_run_id(sw, 2)));
    elag_sweep_ledger_free(l);
    int ok = 0, failed = 0, rows = 0;
    OK(elag_sweep_report(out, NULL, 0, NULL, &ok, &failed));
    cr_expect(ok == 1 && failed == 1, "%d ok, %d failed", ok, failed);
    const char *dirs[] = {out};
    OK(elag_sweep_collect(dirs, 1, out2, &rows));
    cr_expect_eq(rows, 2);
    elag_sweep_free(sw);
    elag_test_rmtree(dir);
    free(dir);
}
