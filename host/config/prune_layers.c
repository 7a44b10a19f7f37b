/*
 * prune.layers (per-layer overrides of the pruning allocation) and the prune checks that
 * involve several keys or the model's layers. An item is {name: GLOB, target, exclude,
 * min, max}; its glob is matched with fnmatch(3) against layer names and the first item
 * that matches a layer applies to it (host/prune/allocation.c reads them). Everything that
 * can be known from the config alone is refused here, with file:line:column: a glob that
 * names no prunable layer, N >= M, nm or erk combined with what they cannot mean. What
 * needs tensor shapes (a block that does not divide a weight) is checked when the prune
 * setup is built for the model (host/prune/mask.c), still before a run folder is made.
 */
#define _POSIX_C_SOURCE 200809L
#include "config/config_internal.h"
#include "core/check.h"
#include "model/layer.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

/* Value node of top-level key `path` when it was given, else NULL. */
static const elag_ynode *cfg_given(const elag_cfg_conv *c, const char *path)
{
    int i = elag_cfg_key_find(path);
    ELAG_ASSERT(i >= 0);
    return c->at[i];
}

static int cfg_has_numbers(const elag_prune_layer_config *o)
{
    return o->target >= 0 || o->min >= 0 || o->max >= 0;
}

/* One prune.layers item into *o. */
static elag_status cfg_prune_item(const elag_cfg_ctx *ctx, const elag_ynode *m, size_t li,
                                  elag_prune_layer_config *o)
{
    const size_t nk = elag_cfg_n_prune_layer_keys;
    char item[48], path[160], got[96], a[40], b[40];
    snprintf(item, sizeof item, "prune.layers[%zu]", li);
    if (m->kind != ELAG_YNODE_MAPPING)
        return elag_cfg_fail(ctx, m, ELAG_ERR_INPUT,
                             "'%s' expects a mapping such as {name: fc1, target: 0.5}, got %s",
                             item, elag_ynode_describe(m, got, sizeof got));
    o->target = o->min = o->max = -1;
    for (size_t i = 0; i < m->n; i++) {
        const char *key = m->keys[i]->text;
        snprintf(path, sizeof path, "%s.%s", item, key);
        ELAG_TRY(elag_cfg_no_duplicate(ctx, m, i, path));
        size_t j = 0;
        while (j < nk && strcmp(elag_cfg_prune_layer_keys[j].path, key)) j++;
        if (j == nk) {
            char cand_buf[8][96], hint[200] = "";
            const char *cands[8];
            for (size_t q = 0; q < nk && q < 8; q++) {
                snprintf(cand_buf[q], sizeof cand_buf[q], "%s.%s", item,
                         elag_cfg_prune_layer_keys[q].path);
                cands[q] = cand_buf[q];
            }
            const char *best = elag_cfg_suggest(path, cands, nk < 8 ? nk : 8);
            if (best) snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
            return elag_cfg_fail(ctx, m->keys[i], ELAG_ERR_INPUT,
                                 "unknown key '%s'%s (an override takes name, target, exclude, "
                                 "min, max)",
                                 path, hint);
        }
        ELAG_TRY(elag_cfg_leaf(ctx, &elag_cfg_prune_layer_keys[j], path, m->vals[i], o));
    }
    if (!elag_ynode_get(m, "name"))
        return elag_cfg_fail(ctx, m, ELAG_ERR_INPUT,
                             "'%s.name' is required (a layer name or a glob such as 'conv*')",
                             item);
    if (!o->name[0])
        return elag_cfg_fail(ctx, elag_ynode_get(m, "name"), ELAG_ERR_INPUT,
                             "'%s.name' must not be empty", item);
    if (!o->exclude && !cfg_has_numbers(o))
        return elag_cfg_fail(ctx, m, ELAG_ERR_INPUT,
                             "'%s' sets nothing: give target, exclude, min or max", item);
    if (o->exclude && cfg_has_numbers(o))
        return elag_cfg_fail(ctx, elag_ynode_get(m, "exclude"), ELAG_ERR_INPUT,
                             "'%s' sets exclude: true and a sparsity; an excluded layer stays "
                             "dense",
                             item);
    if (o->target >= 0 && (o->min >= 0 || o->max >= 0))
        return elag_cfg_fail(ctx, elag_ynode_get(m, "target"), ELAG_ERR_INPUT,
                             "'%s' sets target and min/max; a layer with its own target has no "
                             "bounds",
                             item);
    if (o->min >= 0 && o->max >= 0 && o->min > o->max) {
        elag_cfg_format_double(o->min, a, sizeof a);
        elag_cfg_format_double(o->max, b, sizeof b);
        return elag_cfg_fail(ctx, elag_ynode_get(m, "min"), ELAG_ERR_INPUT,
                             "'%s.min' (%s) must be <= '%s.max' (%s)", item, a, item, b);
    }
    return ELAG_OK;
}

elag_status elag_cfg_prune_layers(elag_cfg_conv *c, const elag_ynode *seq)
{
    elag_config *cfg = c->cfg;
    char got[96];
    if (seq->kind != ELAG_YNODE_SEQUENCE)
        return elag_cfg_fail(c->ctx, seq, ELAG_ERR_INPUT,
                             "'prune.layers' expects a list of overrides such as "
                             "[{name: fc1, target: 0.5}], got %s",
                             elag_ynode_describe(seq, got, sizeof got));
    if (seq->n > ELAG_MAX_PRUNE_LAYERS)
        return elag_cfg_fail(c->ctx, seq, ELAG_ERR_INPUT,
                             "'prune.layers' has %zu overrides, at most %d are supported", seq->n,
                             ELAG_MAX_PRUNE_LAYERS);
    memset(cfg->prune.layers, 0, sizeof cfg->prune.layers);
    cfg->prune.n_layers = 0;
    for (size_t i = 0; i < seq->n; i++) {
        ELAG_TRY(cfg_prune_item(c->ctx, seq->vals[i], i, &cfg->prune.layers[i]));
        cfg->prune.n_layers = (int)i + 1;
    }
    return ELAG_OK;
}

int elag_config_prune_layer_match(const elag_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->prune.n_layers; i++)
        if (fnmatch(cfg->prune.layers[i].name, name, 0) == 0) return i;
    return -1;
}

static int cfg_prunable(const elag_config *cfg, int i)
{
    const elag_layer_config *L = &cfg->model.layers[i];
    const elag_layer_kind_def *kind = elag_layer_kind_get(L->type);
    return L->prunable && kind && kind->sparse_weight;
}

/* Each override must be the first match of at least one prunable layer. */
static elag_status cfg_check_globs(const elag_cfg_conv *c, const elag_config *cfg)
{
    const elag_ynode *seq = cfg_given(c, "prune.layers");
    char names[256] = "";
    size_t used = 0;
    for (int i = 0; i < cfg->model.n_layers && used < sizeof names; i++)
        if (cfg_prunable(cfg, i))
            used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                                     cfg->model.layers[i].name);
    for (int r = 0; r < cfg->prune.n_layers; r++) {
        const elag_prune_layer_config *o = &cfg->prune.layers[r];
        int matches = 0, first = 0, shadow = -1;
        for (int i = 0; i < cfg->model.n_layers; i++) {
            if (!cfg_prunable(cfg, i) || fnmatch(o->name, cfg->model.layers[i].name, 0)) continue;
            matches++;
            int w = elag_config_prune_layer_match(cfg, cfg->model.layers[i].name);
            if (w == r)
                first++;
            else
                shadow = w;
        }
        const elag_ynode *at = NULL;
        if (seq && seq->kind == ELAG_YNODE_SEQUENCE && (size_t)r < seq->n)
            at = elag_ynode_get(seq->vals[r], "name");
        if (!matches)
            return elag_cfg_fail(c->ctx, at, ELAG_ERR_INPUT,
                                 "'prune.layers[%d].name' '%s' names no prunable layer (they "
                                 "are: %s)",
                                 r, o->name, names[0] ? names : "none");
        if (!first)
            return elag_cfg_fail(c->ctx, at, ELAG_ERR_INPUT,
                                 "'prune.layers[%d].name' '%s' matches only layers that "
                                 "prune.layers[%d] already covers (the first match wins)",
                                 r, o->name, shadow);
    }
    return ELAG_OK;
}

elag_status elag_cfg_prune_check(const elag_cfg_conv *c, elag_config *cfg)
{
    const elag_ynode *gran = cfg_given(c, "prune.granularity");
    if (cfg->prune.n >= cfg->prune.m) {
        const elag_ynode *n = cfg_given(c, "prune.n");
        return elag_cfg_fail(c->ctx, n ? n : cfg_given(c, "prune.m"), ELAG_ERR_INPUT,
                             "'prune.n' (%d) must be < 'prune.m' (%d)", cfg->prune.n, cfg->prune.m);
    }
    if (cfg->prune.granularity == ELAG_PRUNE_GRANULARITY_NM) {
        if (cfg->prune.scope == ELAG_PRUNE_SCOPE_GLOBAL)
            return elag_cfg_fail(c->ctx, cfg_given(c, "prune.scope"), ELAG_ERR_INPUT,
                                 "'prune.scope' global does not apply to prune.granularity nm: "
                                 "every group of M inputs keeps its N best (use layer)");
        if (cfg->prune.distribution == ELAG_PRUNE_DISTRIBUTION_ERK)
            return elag_cfg_fail(c->ctx, cfg_given(c, "prune.distribution"), ELAG_ERR_INPUT,
                                 "'prune.distribution' erk does not apply to prune.granularity "
                                 "nm: every layer is at 1 - N/M (use uniform)");
        const elag_ynode *seq = cfg_given(c, "prune.layers");
        for (int r = 0; r < cfg->prune.n_layers; r++)
            if (cfg_has_numbers(&cfg->prune.layers[r]))
                return elag_cfg_fail(c->ctx, seq && (size_t)r < seq->n ? seq->vals[r] : gran,
                                     ELAG_ERR_INPUT,
                                     "'prune.layers[%d]' sets a sparsity, but with "
                                     "prune.granularity nm every layer is at 1 - N/M (only "
                                     "exclude applies)",
                                     r);
        /* the pattern is the sparsity: applied in full at the first mask update */
        cfg->prune.initial = cfg->prune.target = 1.0 - (double)cfg->prune.n / (double)cfg->prune.m;
    }
    if (cfg->prune.distribution == ELAG_PRUNE_DISTRIBUTION_ERK &&
        cfg->prune.scope == ELAG_PRUNE_SCOPE_GLOBAL)
        return elag_cfg_fail(c->ctx, cfg_given(c, "prune.distribution"), ELAG_ERR_INPUT,
                             "'prune.distribution' erk gives each layer its own sparsity and "
                             "cannot be combined with prune.scope global (use layer)");
    return cfg_check_globs(c, cfg);
}
