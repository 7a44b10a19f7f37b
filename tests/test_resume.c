/*
 * Resuming and stopping training, through the library (host/train/): a run interrupted
 * mid-epoch (the interrupt flag set from the progress callback, as a signal handler would)
 * checkpoints at that step and, resumed, ends bit for bit where an uninterrupted run ends,
 * with no metrics row twice and the whole run's mask updates in its summary; a resumed
 * config that changed in a key that may not change is refused naming the key; metrics.jsonl
 * is cut back to the checkpoint's step; stale temporaries are removed; a diverging run
 * stops naming the step and the tensor, keeps its last good checkpoint, and a checkpoint
 * holding NaN is refused. The same through the CLI and real signals: test_interrupt.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/atomic.h"
#include "io/safetensors.h"
#include "support/fixtures.h"
#include "support/testutil.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct stop_at {
    long step; /* set the flag at the first report at or after it */
    volatile sig_atomic_t *flag;
} stop_at;

static void stop_when(const elag_progress *p, void *user)
{
    stop_at *s = user;
    if (p->step >= s->step) *s->flag = SIGINT;
}

/* Trains cfg into dir (from `resume` when not NULL); interrupt_at > 0 raises the interrupt
 * flag at the first progress report at or after that step. */
static elag_status train(const elag_config *cfg, const char *dir, const char *resume,
                         long interrupt_at, elag_train_summary *out)
{
    elag_backend *be;
    cr_assert_eq(elag_backend_open(cfg->device, 1, &be, NULL, 0), ELAG_OK, "%s", elag_last_error());
    elag_run_data data;
    cr_assert_eq(elag_run_data_load(cfg, &data), ELAG_OK, "%s", elag_last_error());
    volatile sig_atomic_t flag = 0;
    stop_at s = {interrupt_at, &flag};
    elag_train_options opts = {.out_dir = dir, .resume_path = resume};
    if (interrupt_at > 0) {
        opts.progress = stop_when;
        opts.progress_user = &s;
        opts.interrupt = &flag;
    }
    elag_train_summary sum;
    elag_status st = elag_train_run(cfg, be, &data, &opts, out ? out : &sum);
    elag_run_data_free(&data);
    elag_backend_free(be);
    return st;
}

static long meta_long(const char *dir, const char *key)
{
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    elag_st_file *f;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    const char *v = elag_st_meta(f, key);
    cr_assert_not_null(v, "no metadata '%s'", key);
    long x = strtol(v, NULL, 10);
    elag_st_close(f);
    return x;
}

/* The metrics rows as "type:step" strings; fails on a repeated row. */
static int metrics_rows(const char *dir, char rows[][32], int cap)
{
    char path[512], *text;
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    cr_assert_eq(elag_read_file(path, &text, NULL), ELAG_OK, "%s", elag_last_error());
    int n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cr_assert_not_null(o, "bad metrics line '%s'", line);
        cr_assert_lt(n, cap);
        snprintf(rows[n], 32, "%s:%.0f", cJSON_GetObjectItem(o, "type")->valuestring,
                 cJSON_GetObjectItem(o, "step")->valuedouble);
        for (int i = 0; i < n; i++)
            cr_assert_str_neq(rows[i], rows[n], "metrics row %s appears twice", rows[n]);
        n++;
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

/* Uninterrupted vs interrupted at `at` (mid-epoch) and resumed: the same bits, the same
 * metrics rows once each, the same mask updates. */
static void expect_interrupt_resume_equal(const elag_config *cfg, long at)
{
    char *full = elag_test_tmpdir("full"), *part = elag_test_tmpdir("part");
    elag_train_summary a, b;
    cr_assert_eq(train(cfg, full, NULL, 0, &a), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(train(cfg, part, NULL, at, NULL), ELAG_ERR_INTERRUPTED);
    cr_assert(strstr(elag_last_error(), "interrupted at step"), "%s", elag_last_error());
    cr_assert_eq(meta_long(part, "step"), at);
    cr_assert_gt(meta_long(part, "epoch_step"), 0, "the interrupt was meant to land mid-epoch");
    char ck[512];
    snprintf(ck, sizeof ck, "%s/model.safetensors", part);
    cr_assert_eq(train(cfg, part, ck, 0, &b), ELAG_OK, "%s", elag_last_error());

    unsigned char *wa, *wb;
    size_t na, nb;
    elag_test_checkpoint_bytes(full, &wa, &na);
    elag_test_checkpoint_bytes(part, &wb, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(wa, wb, na), 0, "resumed run differs from the uninterrupted one");
    cr_assert_eq(b.mask_updates, a.mask_updates, "summary counts %ld mask updates, not %ld",
                 b.mask_updates, a.mask_updates);
    cr_assert_eq(b.steps, a.steps);
    static char ra[256][32], rb[256][32];
    int n_a = metrics_rows(full, ra, 256), n_b = metrics_rows(part, rb, 256);
    cr_assert_eq(n_a, n_b, "%d metrics rows, uninterrupted %d", n_b, n_a);
    for (int i = 0; i < n_a; i++) cr_assert_str_eq(ra[i], rb[i]);
    free(wa);
    free(wb);
    elag_test_rmtree(full);
    elag_test_rmtree(part);
    free(full);
    free(part);
}

static void gmp_config(elag_config *cfg, elag_optimizer_kind opt)
{
    elag_test_small_config(cfg, 24);
    cfg->train.epochs = 4;
    cfg->train.log_every = 5;
    cfg->train.optimizer.type = opt;
    cfg->train.optimizer.lr = opt == ELAG_OPTIMIZER_ADAMW ? 0.01 : 0.05;
    cfg->train.lr_schedule.type = ELAG_LR_SCHEDULE_COSINE;
    cfg->prune.method = ELAG_PRUNE_METHOD_GMP;
    cfg->prune.target = 0.8;
    cfg->prune.start = (elag_when){0.25, 1};
    cfg->prune.end = (elag_when){0.75, 1};
    cfg->prune.frequency = 3;
}

/* 16 steps an epoch: step 25 is step 9 of epoch 2, inside the pruning window */
Test(resume, interrupt_mid_epoch_sgd_bit_for_bit)
{
    elag_config cfg;
    gmp_config(&cfg, ELAG_OPTIMIZER_SGD);
    expect_interrupt_resume_equal(&cfg, 25);
}

Test(resume, interrupt_mid_epoch_adamw_bit_for_bit)
{
    elag_config cfg;
    gmp_config(&cfg, ELAG_OPTIMIZER_ADAMW);
    expect_interrupt_resume_equal(&cfg, 40);
}

/* batch norm's running statistics and dropout (a function of seed, layer and step) */
Test(resume, interrupt_mid_epoch_cnn_bit_for_bit)
{
    static const char yaml[] =
        "name: cnn\ndevice: cpu\nseed: 4\n"
        "data: {dataset: synthetic, synthetic: {train: 200, test: 40, features: 64, classes: 3}}\n"
        "model:\n  layers:\n"
        "    - {type: linear, out_features: 64}\n"
        "    - {type: batchnorm}\n    - {type: relu}\n"
        "    - {type: dropout, p: 0.3}\n"
        "    - {type: linear, out_features: 3}\n"
        "train: {epochs: 3, batch_size: 16, threads: 1, log_every: 4}\n"
        "prune: {method: gmp, target: 0.5, start: 0.2, end: 0.8, frequency: 3}\n";
    elag_config cfg;
    cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "cnn.yaml", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    expect_interrupt_resume_equal(&cfg, 16); /* 13 steps an epoch: step 3 of epoch 2 */
}

typedef struct ck_seen {
    const char *dir;
    long report[64], ck_step[64]; /* at each progress report: the checkpoint's step, or -1 */
    int n;
} ck_seen;

static void record_checkpoint(const elag_progress *p, void *user)
{
    ck_seen *s = user;
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", s->dir);
    elag_st_file *f;
    long step = -1;
    if (access(path, F_OK) == 0 && elag_st_open(path, &f) == ELAG_OK) {
        step = strtol(elag_st_meta(f, "step"), NULL, 10);
        elag_st_close(f);
    }
    if (s->n < 64) {
        s->report[s->n] = p->step;
        s->ck_step[s->n++] = step;
    }
}

/* train.checkpoint_steps: while the run goes, the checkpoint on disk is the last multiple
 * of N (mid-epoch ones included); 0 writes none before the end. */
Test(resume, checkpoint_steps_saves_every_n_steps)
{
    elag_config cfg;
    gmp_config(&cfg, ELAG_OPTIMIZER_SGD);
    for (long every = 0; every <= 7; every += 7) {
        cfg.train.checkpoint_steps = every;
        char *dir = elag_test_tmpdir("cksteps");
        ck_seen seen = {.dir = dir};
        elag_backend *be;
        elag_run_data data;
        cr_assert_eq(elag_backend_open("cpu", 1, &be, NULL, 0), ELAG_OK);
        cr_assert_eq(elag_run_data_load(&cfg, &data), ELAG_OK);
        elag_train_options opts = {
            .out_dir = dir, .progress = record_checkpoint, .progress_user = &seen};
        elag_train_summary sum;
        cr_assert_eq(elag_train_run(&cfg, be, &data, &opts, &sum), ELAG_OK, "%s",
                     elag_last_error());
        cr_assert_gt(seen.n, 10);
        for (int i = 0; i < seen.n; i++) {
            /* the report comes before that step's own checkpoint */
            long want = every ? (seen.report[i] - 1) / every * every : -1;
            if (want == 0) want = -1;
            cr_expect_eq(seen.ck_step[i], want, "every %ld, at step %ld: checkpoint of step %ld",
                         every, seen.report[i], seen.ck_step[i]);
        }
        cr_assert_eq(meta_long(dir, "step"), 64, "the final checkpoint");
        elag_run_data_free(&data);
        elag_backend_free(be);
        elag_test_rmtree(dir);
        free(dir);
    }
}

/* Opens a trainer resuming `dir`'s checkpoint with cfg; returns its status. */
static elag_status resume_init(const elag_config *cfg, const char *dir)
{
    char ck[512];
    snprintf(ck, sizeof ck, "%s/model.safetensors", dir);
    elag_backend *be;
    elag_run_data data;
    cr_assert_eq(elag_backend_open("cpu", 1, &be, NULL, 0), ELAG_OK);
    cr_assert_eq(elag_run_data_load(cfg, &data), ELAG_OK, "%s", elag_last_error());
    elag_train_options opts = {.out_dir = dir, .resume_path = ck};
    elag_trainer *t = NULL;
    elag_status st = elag_trainer_init(&t, cfg, be, &data, &opts);
    elag_trainer_free(t);
    elag_run_data_free(&data);
    elag_backend_free(be);
    return st;
}

Test(resume, changed_config_is_refused_naming_the_key)
{
    elag_config cfg, c;
    gmp_config(&cfg, ELAG_OPTIMIZER_SGD);
    char *dir = elag_test_tmpdir("changed");
    cr_assert_eq(train(&cfg, dir, NULL, 20, NULL), ELAG_ERR_INTERRUPTED);
    static const char *const keys[] = {"seed",
                                       "train.optimizer.lr",
                                       "prune.target",
                                       "data.synthetic.noise",
                                       "model.layers[0]",
                                       "train.batch_size"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        c = cfg;
        switch (i) {
        case 0:
            c.seed = 8;
            break;
        case 1:
            c.train.optimizer.lr = 0.1;
            break;
        case 2:
            c.prune.target = 0.7;
            break;
        case 3:
            c.data.synthetic.noise = 0.4;
            break;
        case 4:
            c.model.layers[0].out_features = 25;
            break;
        case 5:
            c.train.batch_size = 16;
            break;
        }
        elag_status st = resume_init(&c, dir);
        cr_expect_eq(st, ELAG_ERR_INPUT, "%s changed: status %d", keys[i], st);
        char want[96];
        snprintf(want, sizeof want, ": %s is ", keys[i]);
        cr_expect(strstr(elag_last_error(), want), "no '%s' in: %s", want, elag_last_error());
    }
    /* keys documented as safe: a longer run, other threads, logging and checkpoints */
    c = cfg;
    c.train.epochs = 6;
    c.train.threads = 2;
    c.train.log_every = 3;
    c.train.checkpoint_every = 1;
    c.train.checkpoint_steps = 5;
    c.train.eval_every_epoch = 1;
    snprintf(c.name, sizeof c.name, "renamed");
    cr_expect_eq(resume_init(&c, dir), ELAG_OK, "%s", elag_last_error());
    /* a checkpoint past the end of a shortened run */
    c = cfg;
    c.train.epochs = 1;
    cr_expect_eq(resume_init(&c, dir), ELAG_ERR_INPUT);
    cr_expect(strstr(elag_last_error(), "past the end"), "%s", elag_last_error());
    elag_test_rmtree(dir);
    free(dir);
}

Test(resume, changed_key_compares_resolved_configs)
{
    elag_config a, b;
    elag_test_small_config(&a, 8);
    b = a;
    char key[160], was[200], now[200];
    cr_assert_eq(elag_resume_changed_key(&a, &b, key, sizeof key, was, now, sizeof was), 0);
    b.train.epochs = 9;
    snprintf(b.device, sizeof b.device, "cpu-ref");
    cr_assert_eq(elag_resume_changed_key(&a, &b, key, sizeof key, was, now, sizeof was), 0);
    b.train.optimizer.momentum = 0.5;
    cr_assert_eq(elag_resume_changed_key(&a, &b, key, sizeof key, was, now, sizeof was), 1);
    cr_assert_str_eq(key, "train.optimizer.momentum");
    cr_assert_str_eq(was, "0.9");
    cr_assert_str_eq(now, "0.5");
    b = a; /* one layer more */
    b.model.layers[3] = (elag_layer_config){.type = ELAG_LAYER_RELU, .name = "relu2"};
    b.model.n_layers = 4;
    cr_assert_eq(elag_resume_changed_key(&a, &b, key, sizeof key, was, now, sizeof was), 1);
    cr_assert_str_eq(key, "model.layers[3]");
    cr_assert_str_eq(was, "(none)");
}

Test(resume, metrics_cut_back_to_the_checkpoint)
{
    char *dir = elag_test_tmpdir("metrics");
    elag_test_put(dir, "metrics.jsonl",
                  "{\"type\":\"step\",\"step\":10}\n{\"type\":\"step\",\"step\":20}\n"
                  "{\"type\":\"epoch\",\"step\":32}\n{\"type\":\"step\",\"step\":40}\n"
                  "{\"type\":\"step\",\"st");
    char path[600], *text;
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    cr_assert_eq(elag_metrics_truncate(path, 32), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_read_file(path, &text, NULL), ELAG_OK);
    cr_assert_str_eq(text, "{\"type\":\"step\",\"step\":10}\n{\"type\":\"step\",\"step\":20}\n"
                           "{\"type\":\"epoch\",\"step\":32}\n");
    free(text);
    cr_assert_eq(elag_metrics_truncate(path, 0), ELAG_OK);
    cr_assert_eq(elag_read_file(path, &text, NULL), ELAG_OK);
    cr_assert_str_eq(text, "");
    free(text);
    elag_test_rmtree(dir);
    free(dir);
}

Test(resume, stale_temporaries_removed_live_ones_kept)
{
    char *dir = elag_test_tmpdir("stale");
    pid_t dead = fork(); /* a pid that surely has no process any more */
    if (dead == 0) _exit(0);
    cr_assert_eq(waitpid(dead, NULL, 0), dead);
    char dead_name[64], live_name[64], path[700];
    snprintf(dead_name, sizeof dead_name, "model.safetensors.tmp.%ld", (long)dead);
    snprintf(live_name, sizeof live_name, "summary.json.tmp.%ld", (long)getppid());
    elag_test_put(dir, dead_name, "torn");
    elag_test_put(dir, live_name, "being written");
    elag_test_put(dir, "notes.tmp.txt", "not ours");
    cr_assert_eq(elag_run_folder_remove_stale(dir), ELAG_OK, "%s", elag_last_error());
    snprintf(path, sizeof path, "%s/%s", dir, dead_name);
    cr_expect_neq(access(path, F_OK), 0, "%s left behind", dead_name);
    snprintf(path, sizeof path, "%s/%s", dir, live_name);
    cr_expect_eq(access(path, F_OK), 0, "a live process's temporary was removed");
    snprintf(path, sizeof path, "%s/notes.tmp.txt", dir);
    cr_expect_eq(access(path, F_OK), 0);
    elag_test_rmtree(dir);
    free(dir);
}

static cJSON *read_summary(const char *dir)
{
    char path[512], *text;
    snprintf(path, sizeof path, "%s/summary.json", dir);
    cr_assert_eq(elag_read_file(path, &text, NULL), ELAG_OK, "%s", elag_last_error());
    cJSON *o = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(o);
    return o;
}

/* lr 1e6 on the small MLP: NaN within two epochs. A checkpoint every step shows that the
 * last good one stays (the step before) and is finite. */
Test(resume, divergence_stops_naming_step_and_tensor)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 16);
    cfg.train.optimizer.lr = 1e6;
    cfg.train.checkpoint_steps = 1;
    char *dir = elag_test_tmpdir("nan");
    cr_assert_eq(train(&cfg, dir, NULL, 0, NULL), ELAG_ERR_DIVERGED);
    const char *msg = elag_last_error();
    cr_assert(strstr(msg, "diverged at step "), "%s", msg);
    cr_assert(strstr(msg, "fc1.") || strstr(msg, "fc2.") || strstr(msg, "loss"), "%s", msg);
    cJSON *o = read_summary(dir);
    cr_assert_str_eq(cJSON_GetObjectItem(o, "status")->valuestring, "diverged");
    long step = (long)cJSON_GetObjectItem(o, "diverged_step")->valuedouble;
    const char *tensor = cJSON_GetObjectItem(o, "diverged_tensor")->valuestring;
    char want[160];
    snprintf(want, sizeof want, "diverged at step %ld ", step);
    cr_assert(strstr(msg, want), "'%s' not in: %s", want, msg);
    cr_assert(strstr(msg, tensor), "'%s' not in: %s", tensor, msg);
    cr_assert_gt(step, 1);
    cr_assert_lt(step, 3 * 16, "lr 1e6 should diverge well before the end");
    cr_assert_eq(meta_long(dir, "step"), step - 1, "the last good checkpoint is the step before");
    cJSON_Delete(o);
    /* and it is finite: it opens and restores */
    char ck[600];
    snprintf(ck, sizeof ck, "%s/model.safetensors", dir);
    elag_checkpoint c;
    cr_assert_eq(elag_checkpoint_open(ck, &c), ELAG_OK, "%s", elag_last_error());
    elag_backend *be;
    cr_assert_eq(elag_backend_open("cpu", 1, &be, NULL, 0), ELAG_OK);
    elag_model m;
    cr_assert_eq(elag_model_init(&m, &c.cfg, c.input, c.classes, 8, 0, be), ELAG_OK);
    cr_assert_eq(elag_checkpoint_restore(&c, &m, 0), ELAG_OK, "%s", elag_last_error());
    elag_model_free(&m);
    elag_checkpoint_close(&c);
    elag_backend_free(be);
    elag_test_rmtree(dir);
    free(dir);
}

/* Writes a NaN (or +Inf) into element 3 of tensor `name` of dir/model.safetensors. */
static void poison(const char *dir, const char *name, uint32_t bits)
{
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    uint64_t hlen;
    cr_assert_eq(fread(&hlen, 8, 1, f), 1);
    char *h = calloc(1, hlen + 1);
    cr_assert_eq(fread(h, 1, hlen, f), hlen);
    cJSON *o = cJSON_Parse(h);
    cJSON *off = cJSON_GetObjectItem(cJSON_GetObjectItem(o, name), "data_offsets");
    cr_assert_not_null(off, "no tensor %s", name);
    long at = (long)(8 + hlen) + (long)cJSON_GetArrayItem(off, 0)->valuedouble + 3 * 4;
    cr_assert_eq(fseek(f, at, SEEK_SET), 0);
    cr_assert_eq(fwrite(&bits, 4, 1, f), 1);
    fclose(f);
    cJSON_Delete(o);
    free(h);
}

Test(resume, checkpoint_with_nan_or_inf_is_refused)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 8);
    cfg.train.epochs = 1;
    char *dir = elag_test_tmpdir("poison");
    cr_assert_eq(train(&cfg, dir, NULL, 0, NULL), ELAG_OK, "%s", elag_last_error());
    const char *names[] = {"fc2.weight", "fc1.bias"};
    const uint32_t bits[] = {0x7fc00000u, 0x7f800000u}; /* NaN, +Inf */
    for (int i = 0; i < 2; i++) {
        poison(dir, names[i], bits[i]);
        char ck[600];
        snprintf(ck, sizeof ck, "%s/model.safetensors", dir);
        elag_checkpoint c;
        cr_assert_eq(elag_checkpoint_open(ck, &c), ELAG_OK, "%s", elag_last_error());
        elag_backend *be;
        cr_assert_eq(elag_backend_open("cpu", 1, &be, NULL, 0), ELAG_OK);
        elag_model m;
        cr_assert_eq(elag_model_init(&m, &c.cfg, c.input, c.classes, 8, 0, be), ELAG_OK);
        cr_expect_eq(elag_checkpoint_restore(&c, &m, 0), ELAG_ERR_INPUT);
        char want[64];
        snprintf(want, sizeof want, "'%s' holds %s at index 3", names[i], i ? "Inf" : "NaN");
        cr_expect(strstr(elag_last_error(), want), "no \"%s\" in: %s", want, elag_last_error());
        elag_model_free(&m);
        elag_checkpoint_close(&c);
        elag_backend_free(be);
    }
    elag_test_rmtree(dir);
    free(dir);
}
