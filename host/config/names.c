/*
 * YAML spellings of the config enums. One array per enum, indexed by its value, is
 * shared by the parser (accepted words), the emitter and the public *_name functions,
 * so a spelling is written in one place only. The *_later arrays hold values that are
 * planned but this build does not implement: they get a "not supported yet" error
 * instead of "must be one of".
 */
#include "config/config_internal.h"
#include "model/layer.h"

const char *const elag_cfg_dataset_names[] = {"fashion-mnist", "idx", "synthetic", "npy",
                                                NULL};
const char *const elag_cfg_optimizer_names[] = {"sgd", "adamw", NULL};
const char *const elag_cfg_lr_schedule_names[] = {"constant", "step", "cosine", NULL};
const char *const elag_cfg_sparse_compute_names[] = {"auto", "on", "off", NULL};
const char *const elag_cfg_prune_method_names[] = {"none", "oneshot", "gmp", "iterative",
                                                   "rigl", "set", NULL};
const char *const elag_cfg_prune_method_later[] = {NULL};
const char *const elag_cfg_criterion_names[] = {"magnitude", "random", "taylor", "snip",
                                                "movement", "soft_movement", NULL};
const char *const elag_cfg_criterion_later[] = {NULL};
const char *const elag_cfg_scope_names[] = {"layer", "global", NULL};
const char *const elag_cfg_granularity_names[] = {"element", "nm", "block", "neuron", "channel",
                                                  NULL};
const char *const elag_cfg_distribution_names[] = {"uniform", "erk", NULL};
const char *const elag_cfg_norm_names[] = {"l1", "l2", NULL};
const char *const elag_cfg_preset_names[] = {"lenet-300-100", "lenet-5", "vgg-small", NULL};
const char *const elag_cfg_preset_later[] = {NULL};

/* names[v] when v is in range, "unknown" otherwise (a corrupted struct, not a crash). */
static const char *cfg_name_of(const char *const *names, int v)
{
    for (int i = 0; names[i]; i++)
        if (i == v) return names[i];
    return "unknown";
}

const char *elag_prune_method_name(elag_prune_method m)
{
    return cfg_name_of(elag_cfg_prune_method_names, (int)m);
}

const char *elag_prune_scope_name(elag_prune_scope s)
{
    return cfg_name_of(elag_cfg_scope_names, (int)s);
}

const char *elag_prune_criterion_name(elag_prune_criterion c)
{
    return cfg_name_of(elag_cfg_criterion_names, (int)c);
}

const char *elag_prune_granularity_name(elag_prune_granularity g)
{
    return cfg_name_of(elag_cfg_granularity_names, (int)g);
}

const char *elag_prune_distribution_name(elag_prune_distribution d)
{
    return cfg_name_of(elag_cfg_distribution_names, (int)d);
}

const char *elag_prune_norm_name(elag_prune_norm n)
{
    return cfg_name_of(elag_cfg_norm_names, (int)n);
}

const char *elag_optimizer_name(elag_optimizer_kind k)
{
    return cfg_name_of(elag_cfg_optimizer_names, (int)k);
}

const char *elag_lr_schedule_name(elag_lr_schedule_kind k)
{
    return cfg_name_of(elag_cfg_lr_schedule_names, (int)k);
}

const char *elag_dataset_name(elag_dataset_kind k)
{
    return cfg_name_of(elag_cfg_dataset_names, (int)k);
}

const char *elag_layer_kind_name(elag_layer_kind k)
{
    const elag_layer_kind_def *d = elag_layer_kind_get(k);
    return d ? d->name : "unknown";
}
