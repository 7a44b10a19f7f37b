/*
 * Layer list, buffer layout, initialisation, forward and backward passes of an
 * elag_model (see model.h). Everything here goes through the backend table, so the
 * same code drives the CPU and the GPU.
 */
#include "model/model.h"

#include "backend/philox.h"
#include "core/check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static elag_status model_alloc(elag_model *m, void *out, size_t count, size_t elem)
{
    void **p = (void **)out;
    if (count == 0) count = 1;
    return m->be->alloc(m->be, count * elem, p);
}

elag_status elag_model_init(elag_model *m, const elag_config *cfg, int input_dim, int classes,
                            int max_batch, elag_backend *be)
{
    memset(m, 0, sizeof *m);
    m->be = be;
    m->input_dim = input_dim;
    m->classes = classes;
    m->max_batch = max_batch;
    m->opt_slots = cfg->train.optimizer.type == ELAG_OPTIMIZER_ADAMW ? 2 : 1;
    if (cfg->model.n_layers <= 0 || cfg->model.n_layers > ELAG_MAX_LAYERS)
        return elag_fail(ELAG_ERR_INPUT, "model: needs between 1 and %d layers", ELAG_MAX_LAYERS);

    int width = input_dim, widest = input_dim;
    size_t p_off = 0, mask_off = 0, act_off = 0;
    for (int i = 0; i < cfg->model.n_layers; i++) {
        const elag_layer_config *lc = &cfg->model.layers[i];
        elag_layer *l = &m->layers[i];
        l->type = lc->type;
        snprintf(l->name, sizeof l->name, "%s", lc->name);
        l->in = width;
        l->prunable_index = -1;
        switch (lc->type) {
        case ELAG_LAYER_LINEAR:
            if (lc->out_features <= 0)
                return elag_fail(ELAG_ERR_INPUT, "model: layer '%s' needs out_features > 0",
                                 lc->name);
            l->out = lc->out_features;
            l->has_bias = lc->bias;
            l->w_off = p_off;
            p_off += (size_t)l->out * (size_t)l->in;
            l->b_off = p_off;
            if (l->has_bias) p_off += (size_t)l->out;
            l->prunable = lc->prunable;
            if (l->prunable) {
                l->prunable_index = m->n_prunable;
                m->prunable_layers[m->n_prunable++] = i;
                l->mask_off = mask_off;
                mask_off += (size_t)l->out * (size_t)l->in;
            }
            break;
        case ELAG_LAYER_RELU:
        case ELAG_LAYER_FLATTEN:
            l->out = width;
            break;
        }
        l->act_off = act_off;
        if (l->type != ELAG_LAYER_FLATTEN) act_off += (size_t)max_batch * (size_t)l->out;
        width = l->out;
        if (width > widest) widest = width;
    }
    m->n_layers = cfg->model.n_layers;
    if (width != classes)
        return elag_fail(ELAG_ERR_INPUT,
                         "model: the last layer has %d outputs but the dataset has %d classes",
                         width, classes);
    m->n_params = p_off;
    m->n_masked = mask_off;
    m->n_acts = act_off;

    elag_status st;
    ELAG_TRY_GOTO(st, model_alloc(m, &m->params, m->n_params, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->grads, m->n_params, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->opt_state, m->n_params * (size_t)m->opt_slots,
                                  sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->masks, m->n_masked, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->scores, m->n_masked, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->acts, m->n_acts, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->grad_a, (size_t)max_batch * widest, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->grad_b, (size_t)max_batch * widest, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->input, (size_t)max_batch * input_dim, sizeof(float)),
                  fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->labels, (size_t)max_batch, sizeof(int32_t)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->stats, 2, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, be->fill(be, m->masks, m->n_masked, 1.0f), fail);
    return ELAG_OK;
fail:
    elag_model_free(m);
    return st;
}

void elag_model_free(elag_model *m)
{
    if (!m || !m->be) return;
    elag_backend *be = m->be;
    void *bufs[] = {m->params, m->grads, m->opt_state, m->masks, m->scores, m->acts,
                    m->grad_a, m->grad_b, m->input, m->labels, m->stats};
    for (size_t i = 0; i < ELAG_ARRAY_LEN(bufs); i++) be->release(be, bufs[i]);
    memset(m, 0, sizeof *m);
}

elag_status elag_model_init_params(elag_model *m, uint64_t seed)
{
    elag_backend *be = m->be;
    uint64_t tensor = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const elag_layer *l = &m->layers[i];
        if (l->type != ELAG_LAYER_LINEAR) continue;
        float bound = sqrtf(6.0f / (float)l->in);
        ELAG_TRY(be->init_uniform(be, m->params + l->w_off, (size_t)l->out * l->in, -bound, bound,
                                  seed, ELAG_STREAM_INIT_BASE + tensor));
        tensor++;
        if (l->has_bias) {
            ELAG_TRY(be->fill(be, m->params + l->b_off, (size_t)l->out, 0.0f));
            tensor++;
        }
    }
    ELAG_TRY(be->fill(be, m->opt_state, m->n_params * (size_t)m->opt_slots, 0.0f));
    return be->fill(be, m->masks, m->n_masked, 1.0f);
}

/* Output of layer i (device, (batch, out)); flatten aliases its input. */
static const float *layer_output(const elag_model *m, int i)
{
    while (i >= 0 && m->layers[i].type == ELAG_LAYER_FLATTEN) i--;
    return i < 0 ? m->input : m->acts + m->layers[i].act_off;
}

elag_status elag_model_forward(elag_model *m, int batch, const float **logits)
{
    elag_backend *be = m->be;
    ELAG_ASSERT(batch > 0 && batch <= m->max_batch);
    for (int i = 0; i < m->n_layers; i++) {
        const elag_layer *l = &m->layers[i];
        const float *x = layer_output(m, i - 1); /* (batch, in) */
        float *y = m->acts + l->act_off;         /* (batch, out) */
        switch (l->type) {
        case ELAG_LAYER_LINEAR:
            /* y = x W^T (+ b) */
            ELAG_TRY(be->gemm(be, 0, 1, batch, l->out, l->in, 1.0f, x, l->in,
                              m->params + l->w_off, l->in, 0.0f, y, l->out));
            if (l->has_bias) ELAG_TRY(be->bias_add(be, y, m->params + l->b_off, batch, l->out));
            break;
        case ELAG_LAYER_RELU:
            ELAG_TRY(be->relu_forward(be, y, x, (size_t)batch * l->out));
            break;
        case ELAG_LAYER_FLATTEN:
            break;
        }
    }
    *logits = layer_output(m, m->n_layers - 1);
    return ELAG_OK;
}

/* True when no layer before i has parameters, so its input gradient is not needed. */
static int nothing_trainable_below(const elag_model *m, int i)
{
    for (int j = 0; j < i; j++)
        if (m->layers[j].type == ELAG_LAYER_LINEAR) return 0;
    return 1;
}

elag_status elag_model_backward(elag_model *m, int batch, const float *dlogits)
{
    elag_backend *be = m->be;
    const float *dy = dlogits; /* (batch, out of layer i) */
    float *bufs[2] = {m->grad_a, m->grad_b};
    int which = dlogits == m->grad_a ? 1 : 0; /* never write dx over dy */
    for (int i = m->n_layers - 1; i >= 0; i--) {
        const elag_layer *l = &m->layers[i];
        if (nothing_trainable_below(m, i + 1)) break; /* no parameters at or below i */
        int need_dx = !nothing_trainable_below(m, i);
        float *dx = bufs[which]; /* (batch, in) */
        switch (l->type) {
        case ELAG_LAYER_LINEAR: {
            const float *x = layer_output(m, i - 1);
            /* dW (out, in) = dy^T x ; db = sum_rows dy ; dx = dy W */
            ELAG_TRY(be->gemm(be, 1, 0, l->out, l->in, batch, 1.0f, dy, l->out, x, l->in, 0.0f,
                              m->grads + l->w_off, l->in));
            if (l->has_bias) ELAG_TRY(be->bias_grad(be, m->grads + l->b_off, dy, batch, l->out));
            if (need_dx)
                ELAG_TRY(be->gemm(be, 0, 0, batch, l->in, l->out, 1.0f, dy, l->out,
                                  m->params + l->w_off, l->in, 0.0f, dx, l->in));
            break;
        }
        case ELAG_LAYER_RELU:
            if (need_dx)
                ELAG_TRY(be->relu_backward(be, dx, dy, m->acts + l->act_off,
                                           (size_t)batch * l->out));
            break;
        case ELAG_LAYER_FLATTEN:
            continue; /* gradient passes through unchanged */
        }
        if (!need_dx) break;
        dy = dx;
        which ^= 1;
    }
    return ELAG_OK;
}

elag_status elag_model_step(elag_model *m, int batch, int train)
{
    const float *logits;
    ELAG_TRY(elag_model_forward(m, batch, &logits));
    float *dlogits = train ? m->grad_a : NULL; /* (batch, classes) */
    ELAG_TRY(m->be->xent(m->be, logits, m->labels, batch, m->classes, dlogits, m->stats));
    if (!train) return ELAG_OK;
    return elag_model_backward(m, batch, dlogits);
}

elag_status elag_model_count_nonzero(elag_model *m, size_t *nonzero_masked)
{
    size_t total = 0;
    for (int p = 0; p < m->n_prunable; p++) {
        const elag_layer *l = &m->layers[m->prunable_layers[p]];
        size_t nz = 0;
        ELAG_TRY(m->be->count_nonzero(m->be, m->params + l->w_off, (size_t)l->out * l->in, &nz));
        total += nz;
    }
    *nonzero_masked = total;
    return ELAG_OK;
}

const elag_layer *elag_model_find_layer(const elag_model *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].name, name) == 0) return &m->layers[i];
    return NULL;
}
