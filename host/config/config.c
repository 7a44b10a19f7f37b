/*
 * The config module's entry points: defaults, load (file) and parse (memory). Both
 * run the same pipeline: YAML -> node tree (yaml_tree.c), --set overrides on the tree
 * (overrides.c), tree -> struct with per-value checks (convert.c), then here the
 * defaults that depend on other keys (optimizer type), the model preset, and the
 * checks that involve two keys. The caller's struct is written only on success.
 */
#define _POSIX_C_SOURCE 200809L
#include "config/config_internal.h"
#include "model/layer.h"
#include "core/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG_MAX_FILE_BYTES (16u << 20) /* a config is a few hundred bytes; this is no config */

elag_status elag_config_defaults(elag_config *cfg)
{
    memset(cfg, 0, sizeof *cfg); /* also every unused byte: configs compare with memcmp */
    snprintf(cfg->name, sizeof cfg->name, "run");
    cfg->seed = 0;
    snprintf(cfg->device, sizeof cfg->device, "auto");

    cfg->data.dataset = ELAG_DATASET_FASHION_MNIST;
    snprintf(cfg->data.path, sizeof cfg->data.path, "/usr/share/datasets/fashion-mnist");
    cfg->data.normalize = 1;
    cfg->data.mean = 0.2860;
    cfg->data.std = 0.3530;
    cfg->data.synthetic.train = 2048;
    cfg->data.synthetic.test = 512;
    cfg->data.synthetic.features = 32;
    cfg->data.synthetic.classes = 4;
    cfg->data.synthetic.noise = 0.5;

    cfg->train.epochs = 10;
    cfg->train.batch_size = 128;
    cfg->train.log_every = 100;
    cfg->train.optimizer.type = ELAG_OPTIMIZER_SGD;
    cfg->train.optimizer.lr = 0.05;
    cfg->train.optimizer.momentum = 0.9;
    cfg->train.optimizer.weight_decay = 0.0;
    cfg->train.optimizer.beta1 = 0.9;
    cfg->train.optimizer.beta2 = 0.999;
    cfg->train.optimizer.eps = 1e-8;
    cfg->train.lr_schedule.type = ELAG_LR_SCHEDULE_CONSTANT;
    cfg->train.lr_schedule.gamma = 0.1;

    cfg->prune.method = ELAG_PRUNE_METHOD_NONE;
    cfg->prune.criterion = ELAG_PRUNE_CRITERION_MAGNITUDE;
    cfg->prune.granularity = ELAG_PRUNE_GRANULARITY_ELEMENT;
    cfg->prune.n = 2;
    cfg->prune.m = 4;
    cfg->prune.block[0] = cfg->prune.block[1] = 4;
    cfg->prune.norm = ELAG_PRUNE_NORM_L2;
    cfg->prune.scope = ELAG_PRUNE_SCOPE_LAYER;
    cfg->prune.distribution = ELAG_PRUNE_DISTRIBUTION_UNIFORM;
    cfg->prune.initial = 0.0;
    cfg->prune.target = 0.9;
    /* field by field: a struct assignment need not copy zero padding */
    cfg->prune.start.value = 0;
    cfg->prune.start.is_fraction = 0;
    cfg->prune.end.value = 1.0;
    cfg->prune.end.is_fraction = 1;
    cfg->prune.frequency = 100;
    cfg->prune.exponent = 3.0;
    cfg->prune.keep_first_last = 0;
    cfg->prune.drop_fraction = 0.3;
    cfg->prune.rewind_step = -1;
    cfg->prune.taylor_beta = 0.9;
    cfg->prune.snip_batches = 1;
    cfg->prune.n_layers = 0;

    /* The default model is a preset, read by the YAML code like any other: that parse
     * allocates, so running out of memory is an error to return, not a broken invariant.
     * Any other failure means the built-in preset text itself is broken. */
    elag_status st = elag_cfg_preset_expand("lenet-300-100", cfg);
    ELAG_ASSERT(st == ELAG_OK || st == ELAG_ERR_NOMEM);
    return st;
}

/* Value node of key `path` when it was given (file or --set), else NULL. */
static const elag_ynode *cfg_at(const elag_cfg_conv *c, const char *path)
{
    int i = elag_cfg_key_find(path);
    ELAG_ASSERT(i >= 0);
    return c->at[i];
}

/* How the user wrote a number, or the shortest exact form of v. */
static const char *cfg_num_text(const elag_ynode *at, double v, char *buf, size_t size)
{
    if (at && at->kind == ELAG_YNODE_SCALAR) {
        snprintf(buf, size, "%s", at->text);
        return buf;
    }
    elag_cfg_format_double(v, buf, size);
    return buf;
}

static elag_status cfg_resolve_model(const elag_cfg_conv *c, elag_config *cfg)
{
    const elag_ynode *preset = cfg_at(c, "model.preset"), *layers = cfg_at(c, "model.layers");
    if (layers && !preset) {
        memset(cfg->model.preset, 0, sizeof cfg->model.preset);
    } else if (preset && !layers) {
        ELAG_TRY(elag_cfg_preset_expand(cfg->model.preset, cfg));
    } else if (preset && layers) {
        /* a resolved config (to_yaml) lists both; they must agree */
        elag_config expanded;
        memset(&expanded, 0, sizeof expanded);
        ELAG_TRY(elag_cfg_preset_expand(cfg->model.preset, &expanded));
        if (expanded.model.n_layers != cfg->model.n_layers ||
            memcmp(expanded.model.layers, cfg->model.layers, sizeof cfg->model.layers) != 0)
            return elag_cfg_fail(c->ctx, layers, ELAG_ERR_INPUT,
                                 "'model.layers' differs from what model.preset '%s' expands to; "
                                 "give only one of them",
                                 cfg->model.preset);
    }
    int weighted = 0, prunable = 0;
    for (int i = 0; i < cfg->model.n_layers; i++) {
        weighted += elag_layer_kind_get(cfg->model.layers[i].type)->sparse_weight;
        prunable += cfg->model.layers[i].prunable;
    }
    if (!weighted)
        return elag_cfg_fail(c->ctx, layers, ELAG_ERR_INPUT,
                             "the model has no layer with weights (linear or conv2d)");
    if (cfg->prune.method != ELAG_PRUNE_METHOD_NONE && !prunable)
        return elag_cfg_fail(c->ctx, cfg_at(c, "prune.method"), ELAG_ERR_INPUT,
                             "'prune.method' is %s but no layer of the model is prunable",
                             elag_prune_method_name(cfg->prune.method));
    return ELAG_OK;
}

static elag_status cfg_check_names(const elag_cfg_conv *c, elag_config *cfg)
{
    const elag_ynode *at = cfg_at(c, "name");
    const char *n = cfg->name;
    int bad = !n[0] || !strcmp(n, ".") || !strcmp(n, "..");
    for (const char *p = n; *p; p++) bad |= *p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f;
    if (bad)
        return elag_cfg_fail(c->ctx, at, ELAG_ERR_INPUT,
                             "'name' names the run folder runs/<name>: it must be non-empty, not "
                             "'.' or '..', without '/' or control characters, got '%s'",
                             n);

    const char *d = cfg->device;
    int ok = !strcmp(d, "auto") || !strcmp(d, "cpu") || !strcmp(d, "cpu-ref") || !strcmp(d, "cuda");
    if (!ok && !strncmp(d, "cuda:", 5) && d[5] >= '0' && d[5] <= '9') {
        long long idx;
        ok = elag_cfg_parse_ll(d + 5, &idx) == 0 && idx >= 0 && idx < 1024;
    }
    if (!ok)
        return elag_cfg_fail(c->ctx, cfg_at(c, "device"), ELAG_ERR_INPUT,
                             "'device' must be one of auto, cpu, cpu-ref, cuda, cuda:N, got '%s'",
                             d);

    const elag_ynode *path = cfg_at(c, "data.path");
    if ((cfg->data.dataset == ELAG_DATASET_IDX || cfg->data.dataset == ELAG_DATASET_NPY) && !path)
        return elag_cfg_fail(c->ctx, cfg_at(c, "data.dataset"), ELAG_ERR_INPUT,
                             "'data.path' is required when data.dataset is %s",
                             elag_dataset_name(cfg->data.dataset));
    /* The user's arrays are taken as they are unless asked: Fashion-MNIST's mean and std
     * (the defaults) mean nothing for them. */
    if (cfg->data.dataset == ELAG_DATASET_NPY && !cfg_at(c, "data.normalize"))
        cfg->data.normalize = 0;
    if (path && !cfg->data.path[0])
        return elag_cfg_fail(c->ctx, path, ELAG_ERR_INPUT, "'data.path' must not be empty");
    return ELAG_OK;
}

static elag_status cfg_check_train(const elag_cfg_conv *c, elag_config *cfg)
{
    char a[64], b[64];
    if (cfg->train.optimizer.type == ELAG_OPTIMIZER_ADAMW) {
        if (!cfg_at(c, "train.optimizer.lr")) cfg->train.optimizer.lr = 0.001;
        if (!cfg_at(c, "train.optimizer.weight_decay")) cfg->train.optimizer.weight_decay = 0.01;
    }
    if (cfg->train.optimizer.type == ELAG_OPTIMIZER_SGD && cfg->train.optimizer.nesterov &&
        cfg->train.optimizer.momentum == 0)
        return elag_cfg_fail(c->ctx, cfg_at(c, "train.optimizer.nesterov"), ELAG_ERR_INPUT,
                             "'train.optimizer.nesterov' needs train.optimizer.momentum > 0");
    const elag_ynode *type = cfg_at(c, "train.lr_schedule.type");
    if (cfg->train.lr_schedule.type == ELAG_LR_SCHEDULE_STEP &&
        cfg->train.lr_schedule.step_size == 0)
        return elag_cfg_fail(c->ctx, type, ELAG_ERR_INPUT,
                             "'train.lr_schedule.step_size' is required when "
                             "train.lr_schedule.type is step");
    if (cfg->train.lr_schedule.type == ELAG_LR_SCHEDULE_COSINE &&
        cfg->train.lr_schedule.min_lr > cfg->train.optimizer.lr) {
        const elag_ynode *min_lr = cfg_at(c, "train.lr_schedule.min_lr");
        return elag_cfg_fail(
            c->ctx, min_lr ? min_lr : type, ELAG_ERR_INPUT,
            "'train.lr_schedule.min_lr' (%s) must be <= 'train.optimizer.lr' (%s)",
            cfg_num_text(min_lr, cfg->train.lr_schedule.min_lr, a, sizeof a),
            cfg_num_text(cfg_at(c, "train.optimizer.lr"), cfg->train.optimizer.lr, b, sizeof b));
    }
    return ELAG_OK;
}

/* Combinations of method, criterion and granularity that mean nothing (docs/config.md,
 * "Criteria" and "Schedules"). Checked on every parse, resolved configs included, so
 * only values are compared, never whether a key was given. */
static elag_status cfg_check_prune_method(const elag_cfg_conv *c, const elag_config *cfg)
{
    elag_prune_method meth = cfg->prune.method;
    elag_prune_criterion crit = cfg->prune.criterion;
    elag_prune_granularity gran = cfg->prune.granularity;
    const elag_ynode *at_m = cfg_at(c, "prune.method"), *at_c = cfg_at(c, "prune.criterion");
    const elag_ynode *at_g = cfg_at(c, "prune.granularity");
    if (meth == ELAG_PRUNE_METHOD_NONE) return ELAG_OK;
    int dst = meth == ELAG_PRUNE_METHOD_RIGL || meth == ELAG_PRUNE_METHOD_SET;
    if (dst && gran != ELAG_PRUNE_GRANULARITY_ELEMENT)
        return elag_cfg_fail(c->ctx, at_g ? at_g : at_m, ELAG_ERR_INPUT,
                             "'prune.granularity' %s does not apply to prune.method %s: "
                             "drop-and-grow works on single weights (use element)",
                             elag_prune_granularity_name(gran), elag_prune_method_name(meth));
    if (dst && crit != ELAG_PRUNE_CRITERION_MAGNITUDE && crit != ELAG_PRUNE_CRITERION_RANDOM)
        return elag_cfg_fail(c->ctx, at_c ? at_c : at_m, ELAG_ERR_INPUT,
                             "'prune.criterion' %s does not apply to prune.method %s: the first "
                             "mask is by magnitude or random, drops are by magnitude",
                             elag_prune_criterion_name(crit), elag_prune_method_name(meth));
    if (crit == ELAG_PRUNE_CRITERION_SNIP && meth != ELAG_PRUNE_METHOD_ONESHOT)
        return elag_cfg_fail(c->ctx, at_c ? at_c : at_m, ELAG_ERR_INPUT,
                             "'prune.criterion' snip prunes once, at initialisation: it needs "
                             "prune.method oneshot, got %s",
                             elag_prune_method_name(meth));
    int is_signed = crit == ELAG_PRUNE_CRITERION_MOVEMENT ||
                    crit == ELAG_PRUNE_CRITERION_SOFT_MOVEMENT;
    if (is_signed && gran != ELAG_PRUNE_GRANULARITY_ELEMENT &&
        (gran != ELAG_PRUNE_GRANULARITY_NM || crit == ELAG_PRUNE_CRITERION_SOFT_MOVEMENT))
        return elag_cfg_fail(c->ctx, at_g ? at_g : at_c, ELAG_ERR_INPUT,
                             "'prune.granularity' %s does not apply to prune.criterion %s: "
                             "its scores are signed and a group norm would lose the sign (use "
                             "element%s)",
                             elag_prune_granularity_name(gran), elag_prune_criterion_name(crit),
                             crit == ELAG_PRUNE_CRITERION_MOVEMENT ? " or nm" : "");
    if (cfg->prune.rewind_step >= 0 && meth != ELAG_PRUNE_METHOD_ONESHOT &&
        meth != ELAG_PRUNE_METHOD_ITERATIVE)
        return elag_cfg_fail(c->ctx, cfg_at(c, "prune.rewind_step"), ELAG_ERR_INPUT,
                             "'prune.rewind_step' rewinds the weights after each pruning round: "
                             "it needs prune.method oneshot or iterative, got %s",
                             elag_prune_method_name(meth));
    return ELAG_OK;
}

static elag_status cfg_check_prune(const elag_cfg_conv *c, elag_config *cfg)
{
    char a[64], b[64];
    const elag_ynode *init = cfg_at(c, "prune.initial"), *target = cfg_at(c, "prune.target");
    /* with nm both become 1 - N/M (elag_cfg_prune_check): what the user wrote is unused */
    if (cfg->prune.granularity != ELAG_PRUNE_GRANULARITY_NM &&
        cfg->prune.initial > cfg->prune.target)
        return elag_cfg_fail(c->ctx, init ? init : target, ELAG_ERR_INPUT,
                             "'prune.initial' (%s) must be <= 'prune.target' (%s)",
                             cfg_num_text(init, cfg->prune.initial, a, sizeof a),
                             cfg_num_text(target, cfg->prune.target, b, sizeof b));
    const elag_ynode *start = cfg_at(c, "prune.start"), *end = cfg_at(c, "prune.end");
    /* a step and a fraction compare only once the run length is known (prune/schedule.c) */
    if (cfg->prune.start.is_fraction == cfg->prune.end.is_fraction &&
        cfg->prune.start.value > cfg->prune.end.value)
        return elag_cfg_fail(c->ctx, start ? start : end, ELAG_ERR_INPUT,
                             "'prune.start' (%s) must be <= 'prune.end' (%s)",
                             cfg_num_text(start, cfg->prune.start.value, a, sizeof a),
                             cfg_num_text(end, cfg->prune.end.value, b, sizeof b));
    return cfg_check_prune_method(c, cfg);
}

/* The whole pipeline; default_name is used when the config has no `name`. */
static elag_status cfg_build(const char *yaml, size_t len, const char *origin,
                             const char *default_name, const char *const *overrides,
                             int n_overrides, elag_config *out)
{
    if (!out || (!yaml && len) || n_overrides < 0 || (n_overrides > 0 && !overrides))
        return elag_fail(ELAG_ERR_USAGE, "elag_config_parse: bad arguments");
    elag_cfg_ctx ctx = {origin ? origin : "<config>", overrides, n_overrides};
    elag_config *cfg = malloc(sizeof *cfg);
    elag_cfg_conv *conv = calloc(1, sizeof *conv);
    elag_ynode *root = NULL;
    elag_status st = ELAG_OK;
    if (!cfg || !conv) {
        st = elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
        goto done;
    }
    ELAG_TRY_GOTO(st, elag_config_defaults(cfg), done);
    conv->ctx = &ctx;
    conv->cfg = cfg;

    ELAG_TRY_GOTO(st, elag_ynode_parse(&ctx, yaml ? yaml : "", len, -1, &root), done);
    if (elag_ynode_is_null(root)) { /* empty, only comments, or `~`: a truncated file? */
        st = elag_cfg_fail(&ctx, NULL, ELAG_ERR_INPUT,
                           "the config is empty; write {} to mean all defaults");
        goto done;
    }
    if (root->kind != ELAG_YNODE_MAPPING) {
        char got[96];
        st = elag_cfg_fail(&ctx, root, ELAG_ERR_INPUT,
                           "a config is a mapping of keys (name: ..., train: ...), got %s",
                           elag_ynode_describe(root, got, sizeof got));
        goto done;
    }
    for (int i = 0; i < n_overrides; i++)
        ELAG_TRY_GOTO(st, elag_cfg_override_apply(&ctx, root, i), done);
    ELAG_TRY_GOTO(st, elag_cfg_convert(conv, root), done);

    if (!cfg_at(conv, "name")) {
        memset(cfg->name, 0, sizeof cfg->name);
        snprintf(cfg->name, sizeof cfg->name, "%s", default_name);
    }
    ELAG_TRY_GOTO(st, cfg_check_names(conv, cfg), done);
    ELAG_TRY_GOTO(st, cfg_check_train(conv, cfg), done);
    ELAG_TRY_GOTO(st, cfg_check_prune(conv, cfg), done);
    ELAG_TRY_GOTO(st, cfg_resolve_model(conv, cfg), done);
    ELAG_TRY_GOTO(st, elag_cfg_prune_check(conv, cfg), done); /* needs the layers */

    memset(cfg->source, 0, sizeof cfg->source);
    snprintf(cfg->source, sizeof cfg->source, "%s", origin ? origin : "");
    memcpy(out, cfg, sizeof *cfg); /* memcpy, not assignment: padding bytes stay zero too */
done:
    elag_ynode_free(root);
    free(conv);
    free(cfg);
    return st;
}

elag_status elag_config_parse(const char *yaml, size_t len, const char *origin,
                              const char *const *overrides, int n_overrides, elag_config *out)
{
    return cfg_build(yaml, len, origin, "run", overrides, n_overrides, out);
}

/* Base name of path without its extension ("configs/x.yaml" -> "x"), or "run". */
static void cfg_default_name(const char *path, char *buf, size_t size)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (n >= size) n = size - 1;
    memcpy(buf, base, n);
    buf[n] = '\0';
    if (!buf[0]) snprintf(buf, size, "run");
}

elag_status elag_config_load(const char *path, const char *const *overrides, int n_overrides,
                             elag_config *out)
{
    if (!path || !out) return elag_fail(ELAG_ERR_USAGE, "elag_config_load: bad arguments");
    FILE *f = fopen(path, "rb");
    if (!f) return elag_fail(ELAG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    size_t len = 0, cap = 4096;
    char *text = malloc(cap);
    elag_status st = ELAG_OK;
    while (text) {
        len += fread(text + len, 1, cap - len, f);
        if (len < cap) break;
        if (cap >= CFG_MAX_FILE_BYTES) {
            st = elag_fail(ELAG_ERR_INPUT, "%s: too large for a config (over %u bytes)", path,
                           CFG_MAX_FILE_BYTES);
            break;
        }
        char *bigger = realloc(text, cap * 2);
        if (!bigger) free(text);
        text = bigger;
        cap *= 2;
    }
    if (!text)
        st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", path);
    else if (!st && ferror(f))
        st = elag_fail(ELAG_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    fclose(f);
    if (!st) {
        char name[ELAG_NAME_LEN];
        cfg_default_name(path, name, sizeof name);
        st = cfg_build(text, len, path, name, overrides, n_overrides, out);
    }
    free(text);
    return st;
}
