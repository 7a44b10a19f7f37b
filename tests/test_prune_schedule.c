/*
 * Pruning schedules beyond GMP's formula (test_schedule.c): GMP's exponent read from the
 * config, iterative rounds with geometric targets, SNIP at step 0 whatever prune.start
 * says, lottery-ticket rewinding (the weights at rewind_step kept in the checkpoint and
 * restored bit for bit after a round, masks kept, optimizer state reset), and the settings
 * that mean nothing refused by `elag train` with exit 2 and one line before the run folder
 * exists; a short run of every method through the CLI.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/safetensors.h"
#include "prune/schedule.h"
#include "support/fixtures.h"
#include "support/testutil.h"
#include "train/trainer.h"

#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static elag_prune_plan plan_of(const char *yaml, long total)
{
    elag_config cfg;
    cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "p.yaml", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    elag_prune_plan p;
    cr_assert_eq(elag_prune_plan_init(&p, &cfg, total), ELAG_OK, "%s", elag_last_error());
    return p;
}

Test(prune_schedule, gmp_exponent_is_configurable)
{
    elag_prune_plan p = plan_of("prune: {method: gmp, target: 0.8, start: 0, end: 100, "
                                "frequency: 10, exponent: 2}\n",
                                200);
    cr_expect_eq(p.exponent, 2.0);
    for (long t = 0; t <= 100; t += 10) {
        double want = 0.8 * (1 - pow(1 - t / 100.0, 2));
        cr_expect_float_eq(elag_prune_plan_sparsity(&p, t), want, 1e-12, "step %ld", t);
    }
    elag_prune_plan q = plan_of("prune: {method: gmp, target: 0.8, start: 0, end: 100, "
                                "frequency: 10}\n",
                                200);
    cr_expect_float_eq(elag_prune_plan_sparsity(&q, 50), 0.8 * (1 - 0.125), 1e-12, "e = 3");
}

/* 4 rounds to 0.9 at 10, 30, 50, 70: 1 - 0.1^(1/4), 1 - 0.1^(1/2), 1 - 0.1^(3/4), 0.9 */
Test(prune_schedule, iterative_rounds_are_geometric)
{
    elag_prune_plan p = plan_of("prune: {method: iterative, target: 0.9, start: 10, end: 75, "
                                "frequency: 20}\n",
                                100);
    cr_expect_eq(p.n, 3);
    const long at[] = {10, 30, 50, 70};
    for (long t = 0; t < 100; t++) {
        int round = -1;
        for (int j = 0; j < 4; j++)
            if (at[j] == t) round = j;
        cr_expect_eq(elag_prune_plan_is_update(&p, t), round >= 0, "step %ld", t);
        if (round < 0) continue;
        double want = 1 - pow(0.1, (round + 1) / 4.0);
        cr_expect_float_eq(elag_prune_plan_sparsity(&p, t), want, 1e-12, "round %d", round);
        cr_expect_float_eq(1 - elag_prune_plan_sparsity(&p, t),
                           pow(1 - elag_prune_plan_sparsity(&p, at[0]), round + 1), 1e-12,
                           "each round keeps the same fraction");
    }
    cr_expect_float_eq(elag_prune_plan_sparsity(&p, 99), 0.9, 1e-15);
    cr_expect_eq(elag_iterative_sparsity(0.9, 0, 1), 0.9);
}

Test(prune_schedule, snip_prunes_at_step_zero_whatever_start_says)
{
    elag_prune_plan p = plan_of("prune: {method: oneshot, criterion: snip, start: 0.5}\n", 100);
    cr_expect(elag_prune_plan_is_update(&p, 0));
    for (long t = 1; t < 100; t++) cr_expect(!elag_prune_plan_is_update(&p, t), "step %ld", t);
    cr_expect_eq(elag_prune_plan_sparsity(&p, 0), 0.9);
}

/* ---- lottery-ticket rewinding ---- */

typedef struct stop_at {
    long step;
    volatile sig_atomic_t *flag;
} stop_at;

static void stop_when(const elag_progress *p, void *user)
{
    stop_at *s = user;
    if (p->step >= s->step) *s->flag = SIGINT;
}

static elag_config rewind_config(void)
{
    elag_config cfg;
    elag_test_small_config(&cfg, 24); /* 16 steps an epoch */
    cfg.train.epochs = 2;
    cfg.train.log_every = 1;
    cfg.prune.method = ELAG_PRUNE_METHOD_ONESHOT;
    cfg.prune.target = 0.75;
    cfg.prune.start = (elag_when){16, 0};
    cfg.prune.rewind_step = 3;
    return cfg;
}

static const elag_st_tensor *tensor(elag_st_file *f, const char *name)
{
    const elag_st_tensor *t = elag_st_find(f, name);
    cr_assert_not_null(t, "no tensor '%s' in %s", name, elag_st_path(f));
    return t;
}

Test(prune_schedule, rewinding_restores_the_exact_weights)
{
    elag_config cfg = rewind_config();
    char *early = elag_test_tmpdir("rw3"), *dir = elag_test_tmpdir("rw");
    char ck3[600], ck[600];
    snprintf(ck3, sizeof ck3, "%s/model.safetensors", early);
    snprintf(ck, sizeof ck, "%s/model.safetensors", dir);
    elag_backend *be;
    cr_assert_eq(elag_backend_open("cpu", 1, &be, NULL, 0), ELAG_OK);
    elag_run_data data;
    cr_assert_eq(elag_run_data_load(&cfg, &data), ELAG_OK, "%s", elag_last_error());

    /* the weights after 3 steps: a run interrupted there */
    volatile sig_atomic_t flag = 0;
    stop_at s = {3, &flag};
    elag_train_options o3 = {.out_dir = early, .progress = stop_when, .progress_user = &s,
                             .interrupt = &flag};
    elag_train_summary sum;
    cr_assert_eq(elag_train_run(&cfg, be, &data, &o3, &sum), ELAG_ERR_INTERRUPTED);

    /* a run stopped after epoch 1 (step 16): the rewind point is in its checkpoint */
    elag_test_train(&cfg, dir, NULL, 1, &sum);

    elag_st_file *f3, *f;
    cr_assert_eq(elag_st_open(ck3, &f3), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_st_open(ck, &f), ELAG_OK, "%s", elag_last_error());
    cr_expect_null(elag_st_find(f3, "fc1.weight.rewind"), "no rewind point before step 3 ran");

    /* resumed at step 16: the round, then the rewind */
    elag_trainer *t;
    elag_train_options o = {.out_dir = dir, .resume_path = ck};
    cr_assert_eq(elag_trainer_init(&t, &cfg, be, &data, &o), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(t->step, 16);
    elag_model *m = &t->model;
    for (size_t i = 0; i < m->n_params; i++) m->opt_state[i] = 1.0f; /* must be reset */
    cr_assert_eq(elag_trainer_mask_update(t, 0), ELAG_OK, "%s", elag_last_error());
    for (int j = 0; j < m->n_reg; j++) {
        const elag_param *p = &m->reg[j];
        char name[160];
        snprintf(name, sizeof name, "%s.rewind", p->name);
        const elag_st_tensor *r = tensor(f, name), *at3 = tensor(f3, p->name);
        cr_assert_eq(r->nbytes, p->count * sizeof(float));
        cr_expect_eq(memcmp(r->data, at3->data, r->nbytes), 0, "%s: the rewind point is not "
                     "the weights after 3 steps", p->name);
        size_t zeros = 0;
        for (size_t i = 0; i < p->count; i++) {
            float want;
            memcpy(&want, (const unsigned char *)r->data + i * sizeof want, sizeof want);
            if (p->prunable && m->masks[p->mask_off + i] == 0) {
                want = 0.0f;
                zeros++;
            }
            float got = m->params[p->offset + i];
            cr_assert_eq(memcmp(&got, &want, sizeof got), 0, "%s[%zu] = %.9g, want %.9g",
                         p->name, i, got, want);
            cr_assert_eq(m->opt_state[p->offset + i], 0.0f, "optimizer state reset");
        }
        if (p->prunable)
            cr_expect_eq(zeros, (size_t)llround(0.75 * (double)p->count), "%s: the new mask",
                         p->name);
    }
    elag_st_close(f);
    elag_st_close(f3);
    elag_trainer_free(t);

    /* and the whole run resumed from there ends like an uninterrupted one */
    char *full = elag_test_tmpdir("rwfull");
    elag_train_summary a, b;
    elag_test_train(&cfg, full, NULL, 0, &a);
    elag_test_train(&cfg, dir, ck, 0, &b);
    elag_st_file *fa, *fb;
    char cka[600];
    snprintf(cka, sizeof cka, "%s/model.safetensors", full);
    cr_assert_eq(elag_st_open(cka, &fa), ELAG_OK);
    cr_assert_eq(elag_st_open(ck, &fb), ELAG_OK);
    cr_assert_eq(elag_st_count(fa), elag_st_count(fb));
    for (int i = 0; i < elag_st_count(fa); i++) {
        const elag_st_tensor *x = elag_st_at(fa, i), *y = tensor(fb, x->name);
        cr_expect(x->nbytes == y->nbytes && memcmp(x->data, y->data, x->nbytes) == 0,
                  "%s differs after resuming", x->name);
    }
    elag_st_close(fa);
    elag_st_close(fb);

    elag_run_data_free(&data);
    elag_backend_free(be);
    elag_test_rmtree(early);
    elag_test_rmtree(dir);
    elag_test_rmtree(full);
    free(early);
    free(dir);
    free(full);
}

/* ---- the CLI ---- */

/* fc1 (32, 16), fc2 (4, 32); 8 steps an epoch */
static const char mlp_yaml[] = "name: p\nseed: 2\ndevice: cpu\n"
                               "data:\n  dataset: synthetic\n"
                               "  synthetic: {train: 512, test: 128, features: 16, classes: 4}\n"
                               "model:\n  layers:\n"
                               "    - {type: linear, out_features: 32}\n    - {type: relu}\n"
                               "    - {type: linear, out_features: 4}\n"
                               "train: {epochs: 2, batch_size: 64, threads: 1}\n"
                               "prune: {method: gmp, start: 0, end: 0.5, frequency: 2}\n";

static char *dir;
static char out_file[700];

static void setup(void)
{
    dir = elag_test_tmpdir("prune-sched");
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
    elag_test_put(dir, "mlp.yaml", mlp_yaml);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

static int elag(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    return elag_test_run(cmd, out_file);
}

/* Exit 2, one line holding `needle`, no run folder. */
static void expect_refused(const char *sets, const char *needle)
{
    char args[1024], path[800];
    snprintf(args, sizeof args, "train mlp.yaml --out fresh %s", sets);
    int rc = elag(args);
    char *out = elag_test_slurp(out_file);
    cr_expect_eq(rc, 2, "%s: exit %d\n%s", sets, rc, out);
    cr_expect(strstr(out, needle), "%s: expected '%s' in:\n%s", sets, needle, out);
    size_t lines = 0;
    for (const char *p = out; *p; p++) lines += *p == '\n';
    cr_expect_eq(lines, 1, "one line:\n%s", out);
    free(out);
    struct stat sb;
    snprintf(path, sizeof path, "%s/fresh", dir);
    cr_expect_neq(stat(path, &sb), 0, "%s: the run folder was created", sets);
}

Test(prune_schedule, nonsense_settings_exit_2_before_the_run_folder, .init = setup,
     .fini = teardown)
{
    expect_refused("--set prune.method=rigl --set prune.granularity=nm",
                   "'prune.granularity' nm does not apply to prune.method rigl");
    expect_refused("--set prune.method=set --set prune.criterion=taylor",
                   "'prune.criterion' taylor does not apply to prune.method set");
    expect_refused("--set prune.criterion=snip",
                   "'prune.criterion' snip prunes once, at initialisation: it needs "
                   "prune.method oneshot, got gmp");
    expect_refused("--set prune.criterion=movement --set prune.granularity=block",
                   "'prune.granularity' block does not apply to prune.criterion movement");
    expect_refused("--set prune.rewind_step=1",
                   "'prune.rewind_step' rewinds the weights after each pruning round: it needs "
                   "prune.method oneshot or iterative, got gmp");
    expect_refused("--set prune.method=oneshot --set prune.rewind_step=16",
                   "mlp.yaml: prune.rewind_step (16) is beyond the run (16 steps: 0 to 15)");
    expect_refused("--set prune.method=iterative --set prune.start=2 --set prune.rewind_step=3",
                   "prune.rewind_step (3) comes after the first pruning round (prune.start, "
                   "step 2)");
    expect_refused("--set prune.drop_fraction=1.5", "'prune.drop_fraction' must be in");
    expect_refused("--set prune.criterion=fisher", "'prune.criterion' must be one of magnitude, "
                   "random, taylor, snip, movement, soft_movement, got 'fisher'");
}

/* Every method and criterion runs and ends at its sparsity (per layer, llround). */
Test(prune_schedule, every_method_runs_to_its_target, .init = setup, .fini = teardown)
{
    static const char *const sets[] = {
        "--set prune.method=iterative --set prune.frequency=3",
        "--set prune.method=iterative --set prune.frequency=3 --set prune.rewind_step=0",
        "--set prune.method=oneshot --set prune.start=4 --set prune.rewind_step=2",
        "--set prune.method=rigl --set prune.frequency=3",
        "--set prune.method=set --set prune.frequency=3 --set prune.criterion=random",
        "--set prune.method=oneshot --set prune.criterion=snip --set prune.snip_batches=2",
        "--set prune.criterion=taylor",
        "--set prune.criterion=movement",
        "--set prune.criterion=random",
        "--set prune.criterion=movement --set prune.granularity=nm",
    };
    for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        char args[1024], path[800];
        snprintf(args, sizeof args, "train mlp.yaml --out run --force --quiet %s", sets[i]);
        int rc = elag(args);
        char *out = elag_test_slurp(out_file);
        cr_assert_eq(rc, 0, "%s: exit %d\n%s", sets[i], rc, out);
        free(out);
        /* the masks (a grown weight may stay at 0: the summary counts weights) */
        snprintf(path, sizeof path, "%s/run/model.safetensors", dir);
        elag_st_file *f;
        cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
        double want = strstr(sets[i], "nm") ? 0.5 : 0.9;
        static const char *const masks[] = {"fc1.mask", "fc2.mask"};
        for (int l = 0; l < 2; l++) {
            const elag_st_tensor *t = tensor(f, masks[l]);
            size_t zeros = 0;
            for (size_t k = 0; k < t->nbytes; k++) zeros += ((const unsigned char *)t->data)[k] == 0;
            cr_expect_eq(zeros, (size_t)llround(want * (double)t->nbytes), "%s: %s has %zu zeros",
                         sets[i], masks[l], zeros);
        }
        elag_st_close(f);
    }
}
