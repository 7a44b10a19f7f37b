/*
 * Evaluation over a dataset in fixed order (no gradients) and the sparsity census of
 * the prunable weights.
 */
#include "train/train.h"

#include "core/check.h"

#include <stdio.h>
#include <string.h>

elag_status elag_evaluate(elag_model *m, const elag_dataset *d, double *loss, double *accuracy)
{
    elag_backend *be = m->be;
    float stats[2] = {0, 0};
    double loss_sum = 0, correct = 0;
    for (long start = 0; start < d->n; start += m->max_batch) {
        int b = (int)(d->n - start < m->max_batch ? d->n - start : m->max_batch);
        ELAG_TRY(elag_be_to_device(be, m->rows, d->x + (size_t)start * d->features,
                                   (size_t)b * d->features * sizeof(float)));
        ELAG_TRY(elag_be_to_device(be, m->labels, d->y + start, (size_t)b * sizeof(int32_t)));
        ELAG_TRY(elag_be_fill(be, m->stats, 2, 0.0f));
        elag_pass pass = {.n = b, .training = 0};
        ELAG_TRY(elag_model_step(m, &pass));
        ELAG_TRY(elag_be_to_host(be, stats, m->stats, sizeof stats));
        loss_sum += stats[0];
        correct += stats[1];
    }
    *loss = d->n ? loss_sum / (double)d->n : 0.0;
    *accuracy = d->n ? correct / (double)d->n : 0.0;
    return ELAG_OK;
}

elag_status elag_model_sparsity(elag_model *m, elag_train_summary *s)
{
    s->params_total = m->n_params;
    s->params_prunable = 0;
    s->params_nonzero = 0;
    s->n_layers = 0;
    for (int q = 0; q < m->n_prunable && s->n_layers < ELAG_MAX_PRUNABLE; q++) {
        const elag_param *p = &m->reg[m->prunable[q]];
        elag_layer_summary *ls = &s->layers[s->n_layers++];
        snprintf(ls->name, sizeof ls->name, "%s", m->layers[p->layer].cfg.name);
        ls->rows = p->rows;
        ls->cols = p->cols;
        ls->ndim = p->ndim;
        memcpy(ls->shape, p->shape, sizeof ls->shape);
        ls->params = p->count;
        ELAG_TRY(elag_be_count_nonzero(m->be, m->params + p->offset, ls->params, &ls->nonzero));
        s->params_prunable += ls->params;
        s->params_nonzero += ls->nonzero;
    }
    s->sparsity = s->params_prunable
                      ? 1.0 - (double)s->params_nonzero / (double)s->params_prunable
                      : 0.0;
    return ELAG_OK;
}
