/*
 * elag/sensitivity.h: each prunable layer pruned alone, by weight magnitude, to each level,
 * then (optionally) fine-tuned and evaluated on the test set. Built on the internal pieces
 * `elag train` and `elag eval` use: the config (host/config/), the checkpoint reader
 * (host/train/checkpoint.h), the model (host/model/), evaluation and the masked optimizer
 * step (host/train/train.h), and the prune setup and mask update (host/prune/mask.h).
 *
 * Pruning one layer is the prune module's own path: a copy of the config whose prune.layers
 * says {name: <layer>, target: level} then {name: '*', exclude: true}, with the magnitude
 * criterion, layer scope and the checkpoint's granularity, and one elag_mask_update. The
 * masks the checkpoint already had are kept (the update would reset an excluded layer's to
 * ones), so a pruned checkpoint's zeros stay zero through the fine-tune.
 *
 * Every measurement starts from the same state: the checkpoint's weights and masks (kept on
 * the device), optimizer state zero, the same batches. The baseline (level 0) is the same
 * procedure with nothing pruned, so a drop is due to pruning alone. Everything that can be
 * wrong with the input is checked before the output folder is touched.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "api/api.h"
#include "api/sensitivity_internal.h"

#include "backend/philox.h"
#include "core/check.h"
#include "io/atomic.h"
#include "prune/mask.h"
#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const double default_levels[] = {0.5, 0.7, 0.8, 0.9, 0.95, 0.98};

elag_status elag_sensitivity_options_init(elag_sensitivity_options *opts, unsigned int version)
{
    if (opts == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_options_init: opts is NULL");
    ELAG_TRY(elag_api_check_version(version, ELAG_SENSITIVITY_OPTIONS_VERSION,
                                    "elag_sensitivity_options"));
    elag_sensitivity_options d = ELAG_SENSITIVITY_OPTIONS_INIT;
    *opts = d;
    return ELAG_OK;
}

/* Everything one run holds besides its results. */
typedef struct sens_run {
    elag_sensitivity_t *s;
    elag_sensitivity_options o;
    const char *ov[ELAG_MAX_LAYERS * 4 + 2]; /* the overrides: the caller's + ours */
    int n_ov;
    char threads_ov[32];
    int is_config;
    long steps;
    double lr;
    elag_prune_granularity gran;
    elag_config *cfg;    /* the config the model is built from (heap: large) */
    elag_config *prune;  /* cfg with one layer's prune.layers (heap) */
    elag_checkpoint *ck; /* heap; ck_open once opened */
    int ck_open;
    elag_backend *be;
    elag_run_data data;
    int have_data;
    elag_model *m; /* heap; have_model once built */
    int have_model;
    int sel_q[ELAG_MAX_PRUNABLE]; /* index into m->prunable of each analysed layer */
    float *params0, *masks0;      /* device: the checkpoint's parameters and masks */
    float *x_dev;                 /* device (n, features): the training set, fine-tune only */
    int32_t *y_dev, *perm_dev;    /* device (n) */
    int32_t *perm_host;           /* host (n) */
    long perm_epoch;              /* the epoch perm_dev holds, -1 none */
} sens_run;

/* A checkpoint: named *.safetensors, or a safetensors file by its first bytes (an 8-byte
 * header length, then the JSON header's '{'). Anything else is read as a YAML config. */
static int looks_like_checkpoint(const char *path)
{
    size_t n = strlen(path);
    if (n >= 12 && strcmp(path + n - 12, ".safetensors") == 0) return 1;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char b[9];
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    return got == sizeof b && b[8] == '{';
}

/* The config: the file's (a config) or the one stored in the checkpoint, with overrides. */
static elag_status load_config(sens_run *r, const char *input)
{
    elag_sensitivity_options *o = &r->o;
    for (int i = 0; i < o->n_overrides; i++) r->ov[r->n_ov++] = o->overrides[i];
    if (o->threads > 0) {
        snprintf(r->threads_ov, sizeof r->threads_ov, "train.threads=%d", o->threads);
        r->ov[r->n_ov++] = r->threads_ov;
    }
    if (r->is_config) {
        r->ov[r->n_ov++] = "prune.method=none"; /* the dense model is what is analysed */
        ELAG_TRY(elag_config_load(input, r->ov, r->n_ov, r->cfg));
        if (o->device) snprintf(r->cfg->device, sizeof r->cfg->device, "%s", o->device);
        return ELAG_OK;
    }
    ELAG_TRY(elag_checkpoint_open(input, r->ck));
    r->ck_open = 1;
    const char *yaml = elag_st_meta(r->ck->file, "config"); /* checked by _open */
    char origin[ELAG_PATH_LEN + 16];
    snprintf(origin, sizeof origin, "%s[config]", input);
    ELAG_TRY(elag_config_parse(yaml, strlen(yaml), origin, r->ov, r->n_ov, r->cfg));
    /* as `elag eval`: the device is the caller's, not the one it was trained on */
    snprintf(r->cfg->device, sizeof r->cfg->device, "%s", o->device ? o->device : "auto");
    return ELAG_OK;
}

/* The analysed layers: every prunable layer, or those the options' globs match. */
static elag_status select_layers(sens_run *r)
{
    elag_sensitivity_t *s = r->s;
    elag_model *m = r->m;
    char names[ELAG_MAX_PRUNABLE * 66] = "";
    int sel[ELAG_MAX_PRUNABLE] = {0};
    s->n_all = m->n_prunable < ELAG_MAX_PRUNABLE ? m->n_prunable : ELAG_MAX_PRUNABLE;
    for (int q = 0; q < s->n_all; q++) {
        const elag_param *p = &m->reg[m->prunable[q]];
        snprintf(s->all_names[q], sizeof s->all_names[q], "%s", m->layers[p->layer].cfg.name);
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", q ? ", " : "", s->all_names[q]);
        sel[q] = r->o.layers == NULL;
    }
    if (s->n_all == 0)
        return elag_fail(ELAG_ERR_INPUT, "%s: the model has no prunable layer", r->s->input);
    for (int g = 0; r->o.layers && g < r->o.n_layers; g++) {
        int hit = 0;
        for (int q = 0; q < s->n_all; q++)
            if (fnmatch(r->o.layers[g], s->all_names[q], 0) == 0) sel[q] = hit = 1;
        if (!hit)
            return elag_fail(ELAG_ERR_INPUT,
                             "--layers: '%s' names no prunable layer (they are: %s)",
                             r->o.layers[g], names);
    }
    for (int q = 0; q < s->n_all; q++) {
        if (!sel[q]) continue;
        const elag_param *p = &m->reg[m->prunable[q]];
        int i = s->info.n_layers++;
        elag_sensitivity_layer_info *l = &s->layers[i];
        snprintf(l->name, sizeof l->name, "%s", s->all_names[q]);
        l->rows = p->rows;
        l->cols = p->cols;
        l->params = (int64_t)p->count;
        s->ndim[i] = p->ndim;
        memcpy(s->shape[i], p->shape, sizeof s->shape[i]);
        r->sel_q[i] = q;
    }
    return ELAG_OK;
}

/* r->prune: the config that prunes analysed layer i alone to `level`. */
static void prune_config(sens_run *r, int i, double level)
{
    elag_config *pc = r->prune;
    *pc = *r->cfg;
    pc->prune.method = ELAG_PRUNE_METHOD_ONESHOT;
    pc->prune.criterion = ELAG_PRUNE_CRITERION_MAGNITUDE;
    pc->prune.granularity = r->gran;
    pc->prune.scope = ELAG_PRUNE_SCOPE_LAYER;
    pc->prune.distribution = ELAG_PRUNE_DISTRIBUTION_UNIFORM;
    pc->prune.keep_first_last = 0;
    pc->prune.target = level;
    memset(pc->prune.layers, 0, sizeof pc->prune.layers);
    pc->prune.n_layers = 2;
    elag_prune_layer_config *one = &pc->prune.layers[0], *rest = &pc->prune.layers[1];
    snprintf(one->name, sizeof one->name, "%s", r->s->layers[i].name);
    one->target = level;
    one->min = one->max = -1;
    snprintf(rest->name, sizeof rest->name, "*");
    rest->exclude = 1;
    rest->target = rest->min = rest->max = -1;
}

/* Prunes analysed layer i to `level` in the model; the other masks stay the checkpoint's. */
static elag_status prune_layer(sens_run *r, int i, double level)
{
    elag_model *m = r->m;
    prune_config(r, i, level);
    elag_prune_setup setup;
    elag_status st = elag_prune_setup_init(&setup, r->prune, m);
    if (st == ELAG_OK) st = elag_mask_update(m, &setup, level);
    elag_prune_setup_free(&setup);
    ELAG_TRY(st);
    for (int q = 0; q < m->n_prunable; q++) {
        const elag_param *p = &m->reg[m->prunable[q]];
        float *mask = m->masks + p->mask_off;
        const float *mask0 = r->masks0 + p->mask_off;
        if (q == r->sel_q[i]) /* what was pruned before stays pruned */
            ELAG_TRY(elag_be_elementwise(m->be, ELAG_EW_MUL, p->count, mask, mask, mask0, 0.0f));
        else
            ELAG_TRY(elag_be_copy(m->be, mask, mask0, p->count * sizeof(float)));
    }
    return elag_mask_apply_all(m);
}

/* Fisher-Yates shuffle of 0..n-1 by Philox(seed, SHUFFLE + epoch), as the training loop
 * draws an epoch's order: the fine-tune sees the epochs that would follow the run's. */
static void shuffle(int32_t *perm, long n, uint64_t seed, long epoch)
{
    for (long i = 0; i < n; i++) perm[i] = (int32_t)i;
    uint64_t stream = ELAG_STREAM_SHUFFLE + ((uint64_t)epoch << 16);
    for (long i = n - 1; i > 0; i--) {
        uint64_t u = elag_philox_u32(seed, stream, (uint64_t)i);
        long j = (long)((u * (uint64_t)(i + 1)) >> 32);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* r->steps masked optimizer steps at the constant rate r->lr, from zero optimizer state. */
static elag_status finetune(sens_run *r)
{
    elag_model *m = r->m;
    elag_backend *be = r->be;
    const elag_config *cfg = r->cfg;
    const long n = r->data.train.n, b = m->max_batch, per_epoch = (n + b - 1) / b;
    if (m->opt_slots > 0)
        ELAG_TRY(elag_be_fill(be, m->opt_state, (size_t)m->opt_slots * m->n_params, 0.0f));
    for (long t = 0; t < r->steps; t++) {
        long epoch = cfg->train.epochs + t / per_epoch, start = (t % per_epoch) * b;
        if (epoch != r->perm_epoch) {
            shuffle(r->perm_host, n, cfg->seed, epoch);
            ELAG_TRY(elag_be_to_device(be, r->perm_dev, r->perm_host, (size_t)n * sizeof(int32_t)));
            r->perm_epoch = epoch;
        }
        int nb = (int)(n - start < b ? n - start : b);
        ELAG_TRY(elag_be_gather_rows(be, m->rows, r->x_dev, r->perm_dev + start, nb, m->input_dim));
        ELAG_TRY(elag_be_gather_i32(be, m->labels, r->y_dev, r->perm_dev + start, nb));
        elag_pass pass = {.n = nb, .training = 1, .step = t, .seed = cfg->seed};
        ELAG_TRY(elag_model_step(m, &pass));
        ELAG_TRY(elag_optimizer_step(m, cfg, r->lr, t + 1, 1));
    }
    return ELAG_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One measurement: from the checkpoint, layer i (-1: none) pruned to level j, fine-tuned,
 * evaluated; `index` counts measurements for the progress callback. */
static elag_status measure(sens_run *r, int i, int j, int index)
{
    elag_sensitivity_t *s = r->s;
    elag_model *m = r->m;
    double t0 = now_seconds(), level = i >= 0 ? s->levels[j] : 0;
    ELAG_TRY(elag_be_copy(r->be, m->params, r->params0, m->n_params * sizeof(float)));
    ELAG_TRY(elag_be_copy(r->be, m->masks, r->masks0, m->n_masked * sizeof(float)));
    elag_sensitivity_point pt = {.level = level};
    if (i >= 0) {
        ELAG_TRY(prune_layer(r, i, level));
        const elag_param *p = &m->reg[m->prunable[r->sel_q[i]]];
        size_t nz;
        ELAG_TRY(elag_be_count_nonzero(r->be, m->params + p->offset, p->count, &nz));
        pt.sparsity = 1.0 - (double)nz / (double)p->count;
    }
    if (r->steps > 0) ELAG_TRY(finetune(r));
    ELAG_TRY(elag_evaluate(m, &r->data.test, &pt.test_loss, &pt.test_accuracy));
    if (!isfinite(pt.test_loss))
        return elag_fail(ELAG_ERR_DIVERGED,
                         "sensitivity: %s%s at %.4g: the test loss is not finite after the "
                         "fine-tune (try a lower --finetune-lr)",
                         i >= 0 ? "layer " : "", i >= 0 ? s->layers[i].name : "the baseline",
                         level);
    if (i < 0) {
        s->info.baseline_accuracy = pt.test_accuracy;
        s->info.baseline_loss = pt.test_loss;
        for (int l = 0; l < s->info.n_layers; l++) {
            s->points[l][0] = pt;
            s->points[l][0].sparsity = s->layers[l].sparsity;
        }
    } else {
        pt.accuracy_drop = s->info.baseline_accuracy - pt.test_accuracy;
        s->points[i][j] = pt;
    }
    if (r->o.progress) {
        elag_sensitivity_progress p = {.version = ELAG_SENSITIVITY_PROGRESS_VERSION,
                                       .index = index,
                                       .total = 1 + s->info.n_layers * s->info.n_levels,
                                       .layer = i >= 0 ? s->layers[i].name : "",
                                       .level = level,
                                       .test_accuracy = pt.test_accuracy,
                                       .test_loss = pt.test_loss,
                                       .seconds = now_seconds() - t0};
        r->o.progress(&p, r->o.user);
    }
    return ELAG_OK;
}

/* The output folder: given, or runs/<name>-sensitivity-<time>; checked, not yet made. */
static elag_status choose_out_dir(sens_run *r, const char *input, const char *out_dir)
{
    elag_sensitivity_info *in = &r->s->info;
    if (out_dir == NULL) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(in->out_dir, sizeof in->out_dir, "runs/%s-sensitivity-%s", r->cfg->name, stamp);
    } else {
        if (!*out_dir) return elag_fail(ELAG_ERR_USAGE, "--out: an empty path");
        snprintf(in->out_dir, sizeof in->out_dir, "%s", out_dir);
    }
    if (!r->o.force && elag_api_path_in_use(in->out_dir))
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: the folder exists and is not empty (use --force to "
                         "write into it, or --out DIR)",
                         in->out_dir);
    /* never into the checkpoint's own run folder, even with --force */
    char a[PATH_MAX], b[PATH_MAX], dir[ELAG_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", input);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if (!r->is_config && realpath(dir, a) && realpath(in->out_dir, b) && strcmp(a, b) == 0)
        return elag_fail(ELAG_ERR_INPUT,
                         "--out %s: that is the checkpoint's own folder; the "
                         "analysis goes into a folder of its own",
                         in->out_dir);
    int len = r->is_config
                  ? snprintf(in->model, sizeof in->model, "%s/dense/model.safetensors", in->out_dir)
                  : snprintf(in->model, sizeof in->model, "%s", input);
    if (len < 0 || (size_t)len >= sizeof in->model)
        return elag_fail(ELAG_ERR_USAGE, "--out %s: the path is too long", in->out_dir);
    return ELAG_OK;
}

/* Everything checked and built, nothing written. */
static elag_status prepare(sens_run *r, const char *input, const char *out_dir)
{
    elag_sensitivity_t *s = r->s;
    elag_sensitivity_options *o = &r->o;
    struct stat sb;
    if (stat(input, &sb) != 0) return elag_fail(ELAG_ERR_INPUT, "%s: %s", input, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: a folder (give a config file, or a checkpoint such "
                         "as %s/model.safetensors)",
                         input, input);
    r->is_config = !looks_like_checkpoint(input);
    ELAG_TRY(load_config(r, input));
    elag_config *cfg = r->cfg;
    r->steps = o->finetune_steps >= 0 ? o->finetune_steps
               : r->is_config         ? ELAG_SENSITIVITY_FINETUNE_STEPS
                                      : 0;
    r->lr = o->finetune_lr > 0 ? o->finetune_lr : cfg->train.optimizer.lr / 10.0;

    char note[256] = "";
    ELAG_TRY(elag_backend_open(cfg->device, cfg->train.threads, &r->be, note, sizeof note));
    ELAG_TRY(elag_backend_set_tf32(r->be, cfg->cuda.tf32));
    if (note[0] && o->note) o->note(note, o->user);
    ELAG_TRY(r->steps > 0 ? elag_run_data_load(cfg, &r->data)
                          : elag_run_data_load_test(cfg, &r->data));
    r->have_data = 1;
    const elag_dataset *test = &r->data.test;
    if (test->n <= 0) return elag_fail(ELAG_ERR_INPUT, "%s: the test set is empty", input);
    if (r->steps > 0 && r->data.train.n <= 0)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: the training set is empty (the fine-tune needs "
                         "it; --finetune-steps 0 skips it)",
                         input);
    if (r->ck_open && (test->features != r->ck->input_dim || test->classes != r->ck->classes))
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: model takes %d features and %d classes, its test "
                         "set has %d and %d",
                         input, r->ck->input_dim, r->ck->classes, test->features, test->classes);
    elag_fshape shape = {test->channels, test->height, test->width};
    elag_status st = elag_model_check(cfg, shape, test->classes, r->be);
    if (st == ELAG_ERR_INPUT && cfg->source[0]) { /* name the config the model came from */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", elag_last_error());
        return elag_fail(st, "%s: %s", cfg->source, msg);
    }
    ELAG_TRY(st);
    int batch = cfg->train.batch_size;
    if (r->steps > 0 && batch > r->data.train.n) batch = (int)r->data.train.n;
    ELAG_TRY(elag_model_init(r->m, cfg, shape, test->classes, batch, ELAG_MODEL_TRAIN, r->be));
    r->have_model = 1;
    ELAG_TRY(select_layers(r));

    /* the granularity of the config; N:M has one sparsity of its own, so single weights */
    r->gran = cfg->prune.granularity;
    if (r->gran == ELAG_PRUNE_GRANULARITY_NM) {
        r->gran = ELAG_PRUNE_GRANULARITY_ELEMENT;
        if (o->note)
            o->note("sensitivity: prune.granularity nm has one sparsity of its own (1 - N/M); "
                    "the layers are pruned weight by weight (element) instead",
                    o->user);
    }
    snprintf(s->info.granularity, sizeof s->info.granularity, "%s",
             elag_prune_granularity_name(r->gran));
    snprintf(s->criterion, sizeof s->criterion, "%s",
             elag_prune_criterion_name(ELAG_PRUNE_CRITERION_MAGNITUDE));
    for (int i = 0; i < s->info.n_layers; i++) { /* every pattern fits its layer */
        prune_config(r, i, s->levels[s->info.n_levels]);
        elag_prune_setup setup;
        st = elag_prune_setup_init(&setup, r->prune, r->m);
        elag_prune_setup_free(&setup);
        ELAG_TRY(st);
    }
    s->info.params_prunable = (int64_t)r->m->n_masked;
    s->info.budget = o->budget > 0 ? o->budget : cfg->prune.target;
    st = elag_sensitivity_check_budget(s);
    if (st != ELAG_OK && o->budget > 0) return st; /* asked for: refused before any work */
    if (st != ELAG_OK) { /* the config's: the analysis still runs, without a suggestion */
        char msg[600];
        snprintf(msg, sizeof msg,
                 "sensitivity: no suggested targets: the config's prune.target "
                 "is no budget here (%s); pass --budget S",
                 elag_last_error());
        if (o->note) o->note(msg, o->user);
        elag_clear_error();
        s->info.budget = 0;
    }

    ELAG_TRY(choose_out_dir(r, input, out_dir));
    snprintf(s->info.name, sizeof s->info.name, "%s", cfg->name);
    snprintf(s->info.device, sizeof s->info.device, "%s", r->be->name);
    s->info.finetune_steps = r->steps;
    s->info.finetune_lr = r->steps > 0 ? r->lr : 0;
    return ELAG_OK;
}

/* The dense model of a config, trained into out_dir/dense (config mode). */
static elag_status train_dense(sens_run *r, const char *input)
{
    char dense[ELAG_PATH_LEN + 16];
    snprintf(dense, sizeof dense, "%s/dense", r->s->info.out_dir);
    elag_run_options ro = ELAG_RUN_OPTIONS_INIT;
    ro.device = r->cfg->device;
    ro.overrides = r->ov;
    ro.n_overrides = r->n_ov;
    ro.force = r->o.force;
    ro.progress = r->o.train_progress;
    ro.progress_user = r->o.user;
    ELAG_TRY(elag_run_train(input, dense, &ro, NULL));
    ELAG_TRY(elag_checkpoint_open(r->s->info.model, r->ck));
    r->ck_open = 1;
    return ELAG_OK;
}

/* The checkpoint into the model, kept on the device; the training set uploaded. */
static elag_status load_state(sens_run *r)
{
    elag_model *m = r->m;
    elag_backend *be = r->be;
    elag_sensitivity_t *s = r->s;
    ELAG_TRY(elag_checkpoint_restore(r->ck, m, 0));
    ELAG_TRY(elag_be_alloc(be, m->n_params * sizeof(float), (void **)&r->params0));
    ELAG_TRY(
        elag_be_alloc(be, (m->n_masked ? m->n_masked : 1) * sizeof(float), (void **)&r->masks0));
    ELAG_TRY(elag_be_copy(be, r->params0, m->params, m->n_params * sizeof(float)));
    ELAG_TRY(elag_be_copy(be, r->masks0, m->masks, m->n_masked * sizeof(float)));
    for (int i = 0; i < s->info.n_layers; i++) {
        const elag_param *p = &m->reg[m->prunable[r->sel_q[i]]];
        size_t nz;
        ELAG_TRY(elag_be_count_nonzero(be, m->params + p->offset, p->count, &nz));
        s->layers[i].sparsity = 1.0 - (double)nz / (double)p->count;
    }
    if (r->steps <= 0) return ELAG_OK;
    const elag_dataset *tr = &r->data.train;
    size_t nx = (size_t)tr->n * (size_t)tr->features;
    ELAG_TRY(elag_be_alloc(be, nx * sizeof(float), (void **)&r->x_dev));
    ELAG_TRY(elag_be_alloc(be, (size_t)tr->n * sizeof(int32_t), (void **)&r->y_dev));
    ELAG_TRY(elag_be_alloc(be, (size_t)tr->n * sizeof(int32_t), (void **)&r->perm_dev));
    r->perm_host = malloc((size_t)tr->n * sizeof(int32_t));
    if (!r->perm_host) return elag_fail(ELAG_ERR_NOMEM, "sensitivity: out of host memory");
    ELAG_TRY(elag_be_to_device(be, r->x_dev, tr->x, nx * sizeof(float)));
    return elag_be_to_device(be, r->y_dev, tr->y, (size_t)tr->n * sizeof(int32_t));
}

static elag_status run_all(sens_run *r, const char *input)
{
    elag_sensitivity_t *s = r->s;
    ELAG_TRY(elag_mkdirs(s->info.out_dir));
    if (r->is_config) ELAG_TRY(train_dense(r, input));
    ELAG_TRY(load_state(r));
    ELAG_TRY(elag_evaluate(r->m, &r->data.test, &s->info.dense_loss, &s->info.dense_accuracy));
    int index = 1;
    ELAG_TRY(measure(r, -1, 0, index++));
    for (int i = 0; i < s->info.n_layers; i++)
        for (int j = 1; j <= s->info.n_levels; j++) ELAG_TRY(measure(r, i, j, index++));
    if (s->info.budget > 0) ELAG_TRY(elag_sensitivity_suggest(s));
    return elag_sensitivity_write_files(s);
}

static void run_free(sens_run *r)
{
    if (r->be) {
        elag_be_release(r->be, r->params0);
        elag_be_release(r->be, r->masks0);
        elag_be_release(r->be, r->x_dev);
        elag_be_release(r->be, r->y_dev);
        elag_be_release(r->be, r->perm_dev);
    }
    free(r->perm_host);
    if (r->have_model) elag_model_free(r->m);
    if (r->have_data) elag_run_data_free(&r->data);
    elag_backend_free(r->be);
    if (r->ck_open) elag_checkpoint_close(r->ck);
    free(r->m), free(r->ck), free(r->cfg), free(r->prune);
}

elag_status elag_sensitivity_run(elag_sensitivity_t **out, const char *input, const char *out_dir,
                                 const elag_sensitivity_options *opts)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_run: out is NULL");
    *out = NULL;
    sens_run r;
    memset(&r, 0, sizeof r);
    elag_sensitivity_options d = ELAG_SENSITIVITY_OPTIONS_INIT;
    r.o = d;
    if (opts) {
        ELAG_TRY(elag_api_check_version(opts->version, ELAG_SENSITIVITY_OPTIONS_VERSION,
                                        "elag_sensitivity_options"));
        r.o = *opts;
    }
    elag_sensitivity_options *o = &r.o;
    if (input == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_run: no input");
    if (o->n_overrides < 0 || o->n_overrides > ELAG_MAX_LAYERS * 4 ||
        (o->n_overrides > 0 && !o->overrides))
        return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_run: %d overrides", o->n_overrides);
    if (o->n_layers < 0 || (o->layers && o->n_layers == 0) || (o->n_layers > 0 && !o->layers))
        return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_run: %d layers", o->n_layers);
    if (o->finetune_steps < -1)
        return elag_fail(ELAG_ERR_USAGE, "--finetune-steps %ld: a step count >= 0 is needed",
                         o->finetune_steps);
    if (!(o->finetune_lr >= 0 && isfinite(o->finetune_lr)))
        return elag_fail(ELAG_ERR_USAGE, "--finetune-lr %g: a rate > 0 is needed", o->finetune_lr);
    if (!(o->budget == 0 || (o->budget > 0 && o->budget < 1)))
        return elag_fail(ELAG_ERR_USAGE, "--budget %g: a global sparsity in (0, 1) is needed",
                         o->budget);
    if (o->threads < 0) return elag_fail(ELAG_ERR_USAGE, "--threads %d: 0 or more", o->threads);
    const double *levels = o->levels ? o->levels : default_levels;
    int n_levels = o->levels ? o->n_levels : (int)ELAG_ARRAY_LEN(default_levels);
    ELAG_TRY(elag_sensitivity_check_levels(levels, n_levels));

    r.s = calloc(1, sizeof *r.s);
    r.cfg = calloc(1, sizeof *r.cfg);
    r.prune = calloc(1, sizeof *r.prune);
    r.ck = calloc(1, sizeof *r.ck);
    r.m = calloc(1, sizeof *r.m);
    r.perm_epoch = -1;
    elag_status st = ELAG_OK;
    if (!r.s || !r.cfg || !r.prune || !r.ck || !r.m)
        st = elag_fail(ELAG_ERR_NOMEM, "sensitivity: out of host memory");
    if (st == ELAG_OK) {
        elag_sensitivity_info info = ELAG_SENSITIVITY_INFO_INIT;
        r.s->info = info;
        snprintf(r.s->input, sizeof r.s->input, "%s", input);
        r.s->info.n_levels = n_levels;
        for (int j = 0; j < n_levels; j++) r.s->levels[j + 1] = levels[j];
        st = prepare(&r, input, out_dir);
    }
    if (st == ELAG_OK) st = run_all(&r, input);
    run_free(&r);
    if (st != ELAG_OK) {
        free(r.s);
        return st;
    }
    *out = r.s;
    return ELAG_OK;
}
