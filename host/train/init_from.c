/*
 * train.init_from (init_from.h): the checkpoint's model is built on the reference CPU
 * backend (host memory, batch 1, no training buffers), restored, and its tensors copied
 * into the run's model layer by layer.
 */
#include "train/init_from.h"

#include "core/check.h"
#include "train/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void shape_text(const elag_param *p, char *buf, size_t len)
{
    int at = snprintf(buf, len, "(");
    for (int d = 0; d < p->ndim && at < (int)len; d++)
        at += snprintf(buf + at, len - (size_t)at, "%s%lld", d ? ", " : "", (long long)p->shape[d]);
    if (at < (int)len) snprintf(buf + at, len - (size_t)at, ")");
}

/* The index of the next layer with tensors at or after i, or n_layers. */
static int next_with_params(const elag_model *m, int i)
{
    while (i < m->n_layers && m->layers[i].n_params == 0) i++;
    return i;
}

static int count_with_params(const elag_model *m)
{
    int n = 0;
    for (int i = 0; i < m->n_layers; i++) n += m->layers[i].n_params > 0;
    return n;
}

/* ELAG_OK when layer d of the run and s of the checkpoint hold the same tensors. */
static elag_status match(const char *path, const elag_model *dm, const elag_layer *d,
                         const elag_model *sm, const elag_layer *s)
{
    int same = d->kind == s->kind && d->n_params == s->n_params;
    int bad = -1;
    for (int j = 0; same && j < d->n_params; j++) {
        const elag_param *a = &dm->reg[d->first_param + j], *b = &sm->reg[s->first_param + j];
        if (a->ndim != b->ndim || memcmp(a->shape, b->shape, sizeof a->shape) != 0) {
            same = 0;
            bad = j;
        }
    }
    if (same) return ELAG_OK;
    char ds[64] = "", ss[64] = "";
    const elag_param *a = &dm->reg[d->first_param + (bad > 0 ? bad : 0)];
    const elag_param *b = &sm->reg[s->first_param + (bad > 0 ? bad : 0)];
    shape_text(a, ds, sizeof ds);
    shape_text(b, ss, sizeof ss);
    return elag_fail(ELAG_ERR_INPUT,
                     "train.init_from %s: layer '%s' (%s, %s %s) does not match "
                     "layer '%s' of the checkpoint (%s, %s %s); layers are matched by position "
                     "and shape",
                     path, d->cfg.name, d->kind->name, a->name, ds, s->cfg.name, s->kind->name,
                     b->name, ss);
}

static elag_status copy_layers(const char *path, elag_model *dm, const elag_model *sm)
{
    int nd = count_with_params(dm), ns = count_with_params(sm);
    for (int i = next_with_params(dm, 0), j = next_with_params(sm, 0); i < dm->n_layers;
         i = next_with_params(dm, i + 1), j = next_with_params(sm, j + 1)) {
        if (j >= sm->n_layers)
            return elag_fail(ELAG_ERR_INPUT,
                             "train.init_from %s: layer '%s' has no counterpart: "
                             "the run has %d layers with weights, the checkpoint %d",
                             path, dm->layers[i].cfg.name, nd, ns);
        ELAG_TRY(match(path, dm, &dm->layers[i], sm, &sm->layers[j]));
        for (int k = 0; k < dm->layers[i].n_params; k++) {
            const elag_param *a = &dm->reg[dm->layers[i].first_param + k];
            const elag_param *b = &sm->reg[sm->layers[j].first_param + k];
            /* sm lives on cpu-ref: its buffers are host memory */
            ELAG_TRY(elag_be_to_device(dm->be, dm->params + a->offset, sm->params + b->offset,
                                       a->count * sizeof(float)));
        }
    }
    if (nd != ns)
        return elag_fail(ELAG_ERR_INPUT,
                         "train.init_from %s: the checkpoint has %d layers with "
                         "weights, the run %d",
                         path, ns, nd);
    return ELAG_OK;
}

elag_status elag_train_init_from(elag_model *m, const elag_config *cfg)
{
    const char *path = cfg->train.init_from;
    if (!path[0]) return ELAG_OK;
    elag_checkpoint *ck = calloc(1, sizeof *ck);
    elag_model *src = calloc(1, sizeof *src);
    elag_backend *be = NULL;
    elag_status st = ck && src ? ELAG_OK
                               : elag_fail(ELAG_ERR_NOMEM, "train.init_from: out of "
                                                           "host memory");
    if (st == ELAG_OK) {
        st = elag_checkpoint_open(path, ck);
        if (st != ELAG_OK) {
            char why[1024];
            snprintf(why, sizeof why, "%s", elag_last_error());
            free(ck);
            free(src);
            return elag_fail(st, "train.init_from: %s", why);
        }
    }
    if (st == ELAG_OK) st = elag_backend_open("cpu-ref", 1, &be, NULL, 0);
    if (st == ELAG_OK) st = elag_model_init(src, &ck->cfg, ck->input, ck->classes, 1, 0, be);
    if (st == ELAG_OK) st = elag_checkpoint_restore(ck, src, 0);
    if (st == ELAG_OK) st = copy_layers(path, m, src);
    if (st == ELAG_OK) st = elag_be_sync(m->be);
    elag_model_free(src);
    elag_backend_free(be);
    if (ck) elag_checkpoint_close(ck);
    free(ck);
    free(src);
    return st;
}
