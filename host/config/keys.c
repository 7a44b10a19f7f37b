/*
 * The key table: every config key, its type, accepted range and struct field, in the
 * order elag_config_to_yaml writes them. Parsing (convert.c), emitting (emit.c),
 * --set (overrides.c) and typo suggestions (suggest.c) all read this one list, so a
 * key added here is parsed, written back and suggested at once. docs/config.md
 * describes the same keys for people; keep the two together.
 */
#include "config/config_internal.h"

#include <math.h>
#include <string.h>

#define CFG_F(field) offsetof(elag_config, field)
#define CFG_SIZE(field) sizeof(((elag_config *)0)->field)

/* Ranges: [lo, hi] unless an _OPEN flag says the bound is excluded. */
#define CFG_SECTION(p) {(p), ELAG_CFG_SECTION, ELAG_CFG_NO_FIELD, 0, 0, 0, 0, 0, NULL, NULL}
#define CFG_NUM(p, kind, f, lo, hi, lo_open, hi_open)                                             \
    {(p), (kind), CFG_F(f), 0, (lo), (hi), (lo_open), (hi_open), NULL, NULL}
#define CFG_BOOL(p, f) {(p), ELAG_CFG_BOOL, CFG_F(f), 0, 0, 1, 0, 0, NULL, NULL}
#define CFG_STRING(p, f) {(p), ELAG_CFG_STRING, CFG_F(f), CFG_SIZE(f), 0, 0, 0, 0, NULL, NULL}
#define CFG_ENUM(p, f, names, later)                                                               \
    {(p), ELAG_CFG_ENUM, CFG_F(f), 0, 0, 0, 0, 0, (names), (later)}
#define CFG_WHEN(p, f) {(p), ELAG_CFG_WHEN, CFG_F(f), 0, 0, 1, 0, 0, NULL, NULL}
#define CFG_LATER(p) {(p), ELAG_CFG_UNSUPPORTED, ELAG_CFG_NO_FIELD, 0, 0, 0, 0, 0, NULL, NULL}

const elag_cfg_key elag_cfg_keys[] = {
    CFG_STRING("name", name),
    CFG_NUM("seed", ELAG_CFG_U64, seed, 0, INFINITY, 0, 0),
    CFG_STRING("device", device),

    CFG_SECTION("data"),
    CFG_ENUM("data.dataset", data.dataset, elag_cfg_dataset_names, NULL),
    CFG_STRING("data.path", data.path),
    CFG_NUM("data.train_limit", ELAG_CFG_LONG, data.train_limit, 0, INFINITY, 0, 0),
    CFG_NUM("data.test_limit", ELAG_CFG_LONG, data.test_limit, 0, INFINITY, 0, 0),
    CFG_NUM("data.val_split", ELAG_CFG_FLOAT, data.val_split, 0, 0.5, 0, 0),
    CFG_BOOL("data.normalize", data.normalize),
    CFG_NUM("data.mean", ELAG_CFG_FLOAT, data.mean, -INFINITY, INFINITY, 0, 0),
    CFG_NUM("data.std", ELAG_CFG_FLOAT, data.std, 0, INFINITY, 1, 0),
    CFG_SECTION("data.synthetic"),
    CFG_NUM("data.synthetic.train", ELAG_CFG_LONG, data.synthetic.train, 1, INFINITY, 0, 0),
    CFG_NUM("data.synthetic.test", ELAG_CFG_LONG, data.synthetic.test, 1, INFINITY, 0, 0),
    CFG_NUM("data.synthetic.features", ELAG_CFG_INT, data.synthetic.features, 1, INFINITY, 0, 0),
    CFG_NUM("data.synthetic.classes", ELAG_CFG_INT, data.synthetic.classes, 2, INFINITY, 0, 0),
    CFG_NUM("data.synthetic.noise", ELAG_CFG_FLOAT, data.synthetic.noise, 0, INFINITY, 0, 0),

    CFG_SECTION("model"),
    {"model.preset", ELAG_CFG_NAME, CFG_F(model.preset), CFG_SIZE(model.preset), 0, 0, 0, 0,
     elag_cfg_preset_names, elag_cfg_preset_later},
    {"model.layers", ELAG_CFG_LAYERS, CFG_F(model.layers), 0, 0, 0, 0, 0, NULL, NULL},

    CFG_SECTION("train"),
    CFG_NUM("train.epochs", ELAG_CFG_INT, train.epochs, 1, INFINITY, 0, 0),
    CFG_NUM("train.batch_size", ELAG_CFG_INT, train.batch_size, 1, INFINITY, 0, 0),
    CFG_NUM("train.threads", ELAG_CFG_INT, train.threads, 0, INFINITY, 0, 0),
    CFG_NUM("train.checkpoint_every", ELAG_CFG_INT, train.checkpoint_every, 0, INFINITY, 0, 0),
    CFG_NUM("train.checkpoint_steps", ELAG_CFG_LONG, train.checkpoint_steps, 0, INFINITY, 0, 0),
    CFG_BOOL("train.eval_every_epoch", train.eval_every_epoch),
    CFG_NUM("train.log_every", ELAG_CFG_INT, train.log_every, 1, INFINITY, 0, 0),
    CFG_ENUM("train.sparse_compute", train.sparse_compute, elag_cfg_sparse_compute_names, NULL),
    CFG_STRING("train.init_from", train.init_from), /* "" = off; train/init_from.c */
    CFG_SECTION("train.optimizer"),
    CFG_ENUM("train.optimizer.type", train.optimizer.type, elag_cfg_optimizer_names, NULL),
    CFG_NUM("train.optimizer.lr", ELAG_CFG_FLOAT, train.optimizer.lr, 0, INFINITY, 1, 0),
    CFG_NUM("train.optimizer.momentum", ELAG_CFG_FLOAT, train.optimizer.momentum, 0, 1, 0, 1),
    CFG_NUM("train.optimizer.weight_decay", ELAG_CFG_FLOAT, train.optimizer.weight_decay, 0,
            INFINITY, 0, 0),
    CFG_BOOL("train.optimizer.nesterov", train.optimizer.nesterov),
    {"train.optimizer.betas", ELAG_CFG_PAIR, CFG_F(train.optimizer.beta1),
     CFG_F(train.optimizer.beta2), 0, 1, 0, 1, NULL, NULL},
    CFG_NUM("train.optimizer.eps", ELAG_CFG_FLOAT, train.optimizer.eps, 0, INFINITY, 1, 0),
    CFG_SECTION("train.lr_schedule"),
    CFG_ENUM("train.lr_schedule.type", train.lr_schedule.type, elag_cfg_lr_schedule_names, NULL),
    CFG_NUM("train.lr_schedule.warmup_steps", ELAG_CFG_LONG, train.lr_schedule.warmup_steps, 0,
            INFINITY, 0, 0),
    /* 0 = not set; config.c requires >= 1 when the schedule type is step */
    CFG_NUM("train.lr_schedule.step_size", ELAG_CFG_LONG, train.lr_schedule.step_size, 0,
            INFINITY, 0, 0),
    CFG_NUM("train.lr_schedule.gamma", ELAG_CFG_FLOAT, train.lr_schedule.gamma, 0, 1, 1, 0),
    CFG_NUM("train.lr_schedule.min_lr", ELAG_CFG_FLOAT, train.lr_schedule.min_lr, 0, INFINITY,
            0, 0),

    CFG_SECTION("cuda"),
    CFG_BOOL("cuda.tf32", cuda.tf32),

    CFG_SECTION("prune"),
    CFG_ENUM("prune.method", prune.method, elag_cfg_prune_method_names,
             elag_cfg_prune_method_later),
    CFG_ENUM("prune.criterion", prune.criterion, elag_cfg_criterion_names,
             elag_cfg_criterion_later),
    CFG_ENUM("prune.granularity", prune.granularity, elag_cfg_granularity_names, NULL),
    /* n < m is checked in prune_layers.c (elag_cfg_prune_check) */
    CFG_NUM("prune.n", ELAG_CFG_INT, prune.n, 1, 65536, 0, 0),
    CFG_NUM("prune.m", ELAG_CFG_INT, prune.m, 2, 65536, 0, 0),
    {"prune.block", ELAG_CFG_INT2, CFG_F(prune.block), 0, 1, 65536, 0, 0, NULL, NULL},
    CFG_ENUM("prune.norm", prune.norm, elag_cfg_norm_names, NULL),
    CFG_ENUM("prune.scope", prune.scope, elag_cfg_scope_names, NULL),
    CFG_ENUM("prune.distribution", prune.distribution, elag_cfg_distribution_names, NULL),
    CFG_NUM("prune.initial", ELAG_CFG_FLOAT, prune.initial, 0, 1, 0, 1),
    CFG_NUM("prune.target", ELAG_CFG_FLOAT, prune.target, 0, 1, 0, 1),
    CFG_WHEN("prune.start", prune.start),
    CFG_WHEN("prune.end", prune.end),
    CFG_NUM("prune.frequency", ELAG_CFG_LONG, prune.frequency, 1, INFINITY, 0, 0),
    CFG_NUM("prune.exponent", ELAG_CFG_FLOAT, prune.exponent, 0, INFINITY, 1, 0),
    CFG_BOOL("prune.keep_first_last", prune.keep_first_last),
    {"prune.layers", ELAG_CFG_PRUNE_LAYERS, CFG_F(prune.layers), 0, 0, 0, 0, 0, NULL, NULL},
    CFG_NUM("prune.drop_fraction", ELAG_CFG_FLOAT, prune.drop_fraction, 0, 1, 0, 0),
    /* -1 = off; beyond the run or after prune.start: prune/schedule.c */
    CFG_NUM("prune.rewind_step", ELAG_CFG_LONG, prune.rewind_step, -1, INFINITY, 0, 0),
    CFG_NUM("prune.taylor_beta", ELAG_CFG_FLOAT, prune.taylor_beta, 0, 1, 0, 1),
    CFG_NUM("prune.snip_batches", ELAG_CFG_INT, prune.snip_batches, 1, 65536, 0, 0),
};

const size_t elag_cfg_n_keys = sizeof elag_cfg_keys / sizeof elag_cfg_keys[0];

#define CFG_LF(field) offsetof(elag_layer_config, field)

/* Keys of one model.layers item; offsets into elag_layer_config. `type` names a kind of the
 * layer-kind table (host/model/layers/kinds.c), which also says which of the others each
 * kind takes. */
const elag_cfg_key elag_cfg_layer_keys[] = {
    {"type", ELAG_CFG_LAYER_TYPE, CFG_LF(type), 0, 0, 0, 0, 0, NULL, NULL},
    {"name", ELAG_CFG_STRING, CFG_LF(name), sizeof(((elag_layer_config *)0)->name), 0, 0, 0, 0,
     NULL, NULL},
    {"out_features", ELAG_CFG_INT, CFG_LF(out_features), 0, 1, INFINITY, 0, 0, NULL, NULL},
    {"out_channels", ELAG_CFG_INT, CFG_LF(out_channels), 0, 1, INFINITY, 0, 0, NULL, NULL},
    {"kernel", ELAG_CFG_INT2, CFG_LF(kernel), 0, 1, 4096, 0, 0, NULL, NULL},
    {"stride", ELAG_CFG_INT2, CFG_LF(stride), 0, 1, 4096, 0, 0, NULL, NULL},
    {"padding", ELAG_CFG_INT2, CFG_LF(padding), 0, 0, 4096, 0, 0, NULL, NULL},
    {"bias", ELAG_CFG_BOOL, CFG_LF(bias), 0, 0, 1, 0, 0, NULL, NULL},
    {"prunable", ELAG_CFG_BOOL, CFG_LF(prunable), 0, 0, 1, 0, 0, NULL, NULL},
    {"momentum", ELAG_CFG_FLOAT, CFG_LF(momentum), 0, 0, 1, 0, 0, NULL, NULL},
    {"eps", ELAG_CFG_FLOAT, CFG_LF(eps), 0, 0, 1, 1, 0, NULL, NULL},
    {"p", ELAG_CFG_FLOAT, CFG_LF(p), 0, 0, 1, 0, 1, NULL, NULL},
};

const size_t elag_cfg_n_layer_keys = sizeof elag_cfg_layer_keys / sizeof elag_cfg_layer_keys[0];

#define CFG_PF(field) offsetof(elag_prune_layer_config, field)

/* Keys of one prune.layers item (prune_layers.c); offsets into elag_prune_layer_config. */
const elag_cfg_key elag_cfg_prune_layer_keys[] = {
    {"name", ELAG_CFG_STRING, CFG_PF(name), sizeof(((elag_prune_layer_config *)0)->name), 0, 0,
     0, 0, NULL, NULL},
    {"target", ELAG_CFG_FLOAT, CFG_PF(target), 0, 0, 1, 0, 1, NULL, NULL},
    {"exclude", ELAG_CFG_BOOL, CFG_PF(exclude), 0, 0, 1, 0, 0, NULL, NULL},
    {"min", ELAG_CFG_FLOAT, CFG_PF(min), 0, 0, 1, 0, 1, NULL, NULL},
    {"max", ELAG_CFG_FLOAT, CFG_PF(max), 0, 0, 1, 0, 1, NULL, NULL},
};

const size_t elag_cfg_n_prune_layer_keys =
    sizeof elag_cfg_prune_layer_keys / sizeof elag_cfg_prune_layer_keys[0];

int elag_cfg_key_find(const char *path)
{
    for (size_t i = 0; i < elag_cfg_n_keys; i++)
        if (strcmp(elag_cfg_keys[i].path, path) == 0) return (int)i;
    return -1;
}
