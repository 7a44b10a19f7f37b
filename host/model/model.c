/*
 * Building an elag_model (model.h): layers from the kind table, shape inference, the
 * parameter registry, buffer layout and allocation, initialisation, and the forward and
 * backward walks over the layers. Everything goes through the backend table, so the same
 * code drives the CPU and the GPU; what a layer computes is in host/model/layers/.
 */
#include "model/model.h"

#include "backend/philox.h"
#include "core/check.h"

#include <math.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

elag_status elag_layer_fail(const elag_layer *l, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return elag_fail(ELAG_ERR_INPUT, "model: layer '%s' (%s): %s", l->cfg.name, l->kind->name, msg);
}

elag_status elag_model_add_param(elag_model *m, elag_layer *l, const char *suffix, int ndim,
                                 const int64_t *shape, elag_param_role role, int prunable,
                                 elag_param_init init, int fan_in, int *index)
{
    if (m->n_reg >= ELAG_MAX_PARAMS)
        return elag_fail(ELAG_ERR_INPUT, "model: more than %d tensors", ELAG_MAX_PARAMS);
    ELAG_ASSERT(ndim >= 1 && ndim <= 4);
    elag_param *p = &m->reg[m->n_reg];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s.%s", l->cfg.name, suffix);
    p->layer = l->index;
    p->ndim = ndim;
    p->count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 1 || shape[d] > (1 << 30))
            return elag_layer_fail(l, "tensor %s has a dimension of %lld", p->name,
                                   (long long)shape[d]);
        p->shape[d] = shape[d];
        p->count *= (size_t)shape[d];
    }
    if (p->count > ((size_t)1 << 31))
        return elag_layer_fail(l, "tensor %s has %zu entries (more than 2^31)", p->name, p->count);
    p->rows = (int)shape[0];
    p->cols = (int)(p->count / (size_t)shape[0]);
    p->offset = m->n_params;
    m->n_params += p->count;
    p->role = role;
    p->trainable = role != ELAG_PARAM_BUFFER;
    p->prunable = prunable;
    if (prunable) {
        p->mask_off = m->n_masked;
        m->n_masked += p->count;
        m->prunable[m->n_prunable++] = m->n_reg;
    }
    p->structure_axis = 0;
    p->init = init;
    p->fan_in = fan_in;
    if (l->n_params == 0) l->first_param = m->n_reg;
    l->n_params++;
    if (index) *index = m->n_reg;
    m->n_reg++;
    return ELAG_OK;
}

float *elag_layer_param(elag_model *m, const elag_layer *l, int j)
{
    ELAG_ASSERT(j >= 0 && j < l->n_params);
    return m->params + m->reg[l->first_param + j].offset;
}

float *elag_layer_grad(elag_model *m, const elag_layer *l, int j)
{
    ELAG_ASSERT(j >= 0 && j < l->n_params && m->grads);
    return m->grads + m->reg[l->first_param + j].offset;
}

elag_status elag_layer_epilogue(elag_backend *be, float *y, const float *bias, int rows, int cols,
                                int relu)
{
    if (!bias && !relu) return ELAG_OK;
    return elag_be_bias_relu_rows(be, y, bias, rows, cols, relu);
}

static elag_status model_alloc(elag_model *m, void *out, size_t count, size_t elem)
{
    void **p = (void **)out;
    if (count == 0) count = 1;
    return elag_be_alloc(m->be, count * elem, p);
}

/* Lays out the layers: kinds, shapes, fused ReLUs, aliases, the registry and the sizes of
 * every buffer. No allocation. */
static elag_status model_plan(elag_model *m, const elag_config *cfg)
{
    if (cfg->model.n_layers <= 0 || cfg->model.n_layers > ELAG_MAX_LAYERS)
        return elag_fail(ELAG_ERR_INPUT, "model: needs between 1 and %d layers", ELAG_MAX_LAYERS);
    elag_fshape cur = m->input;
    size_t widest = elag_fshape_count(cur), act = 0, aux = 0, work = 0;
    for (int i = 0; i < cfg->model.n_layers; i++) {
        elag_layer *l = &m->layers[i];
        const elag_layer_kind_def *kind = elag_layer_kind_get(cfg->model.layers[i].type);
        if (!kind) return elag_fail(ELAG_ERR_INPUT, "model: layer %d has an unknown type", i);
        l->kind = kind;
        l->cfg = cfg->model.layers[i];
        l->index = i;
        l->input = i - 1;
        l->in = cur;
        m->n_layers = i + 1;
        ELAG_TRY(kind->infer(m, l));
        if (kind->params) ELAG_TRY(kind->params(m, l));
        /* a relu right after a layer that can apply it in its epilogue runs there */
        if (i > 0 && kind->fusable && m->layers[i - 1].kind->fuses_relu &&
            !m->layers[i - 1].alias) {
            m->layers[i - 1].relu = 1;
            l->alias = 1;
        }
        if (!l->alias) {
            l->act_off = act;
            act += elag_fshape_count(l->out) * (size_t)m->max_batch;
        }
        l->aux_off = aux;
        aux += l->aux_floats * (size_t)m->max_batch + l->aux_fixed;
        if (l->work_floats > work) work = l->work_floats;
        size_t o = elag_fshape_count(l->out);
        if (o > widest) widest = o;
        cur = l->out;
    }
    if (elag_fshape_count(cur) != (size_t)m->classes || cur.h != 1 || cur.w != 1)
        return elag_fail(ELAG_ERR_INPUT,
                         "model: the last layer ('%s') gives (%d, %d, %d) per sample but the "
                         "dataset has %d classes (end the model with a linear layer of %d "
                         "outputs, after a flatten)",
                         m->layers[m->n_layers - 1].cfg.name, cur.c, cur.h, cur.w, m->classes,
                         m->classes);
    m->n_acts = act;
    m->n_aux = aux;
    m->n_work = work;
    m->n_grad_buf = widest * (size_t)m->max_batch;
    size_t in_rows = (size_t)m->input_dim, out_rows = (size_t)m->classes;
    m->n_rows = (in_rows > out_rows ? in_rows : out_rows) * (size_t)m->max_batch;
    return ELAG_OK;
}

/* The input shape the layers see, then model_plan. m holds be, input, classes, max_batch. */
static elag_status model_shapes(elag_model *m, const elag_config *cfg)
{
    elag_fshape in = m->input;
    if (in.c < 1 || in.h < 1 || in.w < 1 || m->max_batch < 1 || m->classes < 1)
        return elag_fail(ELAG_ERR_INPUT, "model: bad input (%d, %d, %d), batch %d, classes %d",
                         in.c, in.h, in.w, m->max_batch, m->classes);
    /* a network without spatial layers (an MLP) sees the input as flat features, as if a
     * flatten came first, so MLP configs need no flatten layer */
    int spatial = 0;
    for (int i = 0; i < cfg->model.n_layers; i++) {
        const elag_layer_kind_def *k = elag_layer_kind_get(cfg->model.layers[i].type);
        spatial |= k && k->spatial;
    }
    if (!spatial) m->input = (elag_fshape){m->input_dim, 1, 1};
    return model_plan(m, cfg);
}

elag_status elag_model_check(const elag_config *cfg, elag_fshape input, int classes,
                             elag_backend *be)
{
    elag_model *m = calloc(1, sizeof *m); /* large: not on the stack */
    if (!m) return elag_fail(ELAG_ERR_NOMEM, "model: out of host memory");
    m->be = be;
    m->input = input;
    m->input_dim = (int)elag_fshape_count(input);
    m->classes = classes;
    m->max_batch = 1;
    elag_status st = model_shapes(m, cfg);
    free(m);
    return st;
}

elag_status elag_model_init(elag_model *m, const elag_config *cfg, elag_fshape input, int classes,
                            int max_batch, unsigned flags, elag_backend *be)
{
    const int train = (flags & ELAG_MODEL_TRAIN) != 0;
    memset(m, 0, sizeof *m);
    m->be = be;
    m->input = input;
    m->input_dim = (int)elag_fshape_count(input);
    m->classes = classes;
    m->max_batch = max_batch;
    m->training = train;
    m->whole_batch = (flags & ELAG_MODEL_WHOLE_BATCH) != 0;
    m->opt_slots = cfg->train.optimizer.type == ELAG_OPTIMIZER_ADAMW ? 2 : 1;
    elag_status st;
    ELAG_TRY_GOTO(st, model_shapes(m, cfg), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->params, m->n_params, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->masks, m->n_masked, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->acts, m->n_acts, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->aux, m->n_aux, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->work, m->n_work, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->x_in, (size_t)max_batch * m->input_dim, sizeof(float)),
                  fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->rows, m->n_rows, sizeof(float)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->labels, (size_t)max_batch, sizeof(int32_t)), fail);
    ELAG_TRY_GOTO(st, model_alloc(m, &m->stats, 2, sizeof(float)), fail);
    if (train) {
        ELAG_TRY_GOTO(st, model_alloc(m, &m->grads, m->n_params, sizeof(float)), fail);
        ELAG_TRY_GOTO(
            st, model_alloc(m, &m->opt_state, m->n_params * (size_t)m->opt_slots, sizeof(float)),
            fail);
        ELAG_TRY_GOTO(st, model_alloc(m, &m->scores, m->n_masked, sizeof(float)), fail);
        ELAG_TRY_GOTO(st, model_alloc(m, &m->grad_a, m->n_grad_buf, sizeof(float)), fail);
        ELAG_TRY_GOTO(st, model_alloc(m, &m->grad_b, m->n_grad_buf, sizeof(float)), fail);
        ELAG_TRY_GOTO(st, model_alloc(m, &m->drows, (size_t)max_batch * classes, sizeof(float)),
                      fail);
    }
    ELAG_TRY_GOTO(st, elag_be_fill(be, m->masks, m->n_masked, 1.0f), fail);
    return ELAG_OK;
fail:
    elag_model_free(m);
    return st;
}

void elag_model_free(elag_model *m)
{
    if (!m || !m->be) return;
    elag_backend *be = m->be;
    for (int i = 0; i < m->n_layers; i++) elag_be_sparse_destroy(be, m->layers[i].sp);
    void *bufs[] = {m->params, m->grads, m->opt_state, m->masks,  m->scores,
                    m->acts,   m->aux,   m->work,      m->grad_a, m->grad_b,
                    m->x_in,   m->rows,  m->drows,     m->labels, m->stats};
    for (size_t i = 0; i < ELAG_ARRAY_LEN(bufs); i++) elag_be_release(be, bufs[i]);
    memset(m, 0, sizeof *m);
}

elag_status elag_model_init_params(elag_model *m, uint64_t seed)
{
    elag_backend *be = m->be;
    for (int j = 0; j < m->n_reg; j++) {
        const elag_param *p = &m->reg[j];
        float *x = m->params + p->offset;
        if (p->init == ELAG_INIT_KAIMING) {
            float bound = sqrtf(6.0f / (float)p->fan_in);
            ELAG_TRY(elag_be_init_uniform(be, x, p->count, -bound, bound, seed,
                                          ELAG_STREAM_INIT_BASE + (uint64_t)j));
        } else {
            ELAG_TRY(elag_be_fill(be, x, p->count, p->init == ELAG_INIT_ONE ? 1.0f : 0.0f));
        }
    }
    if (m->opt_state)
        ELAG_TRY(elag_be_fill(be, m->opt_state, m->n_params * (size_t)m->opt_slots, 0.0f));
    return elag_be_fill(be, m->masks, m->n_masked, 1.0f);
}

float *elag_model_layer_output(const elag_model *m, int i)
{
    while (i >= 0 && m->layers[i].alias) i = m->layers[i].input;
    return i < 0 ? m->x_in : m->acts + m->layers[i].act_off;
}

elag_status elag_model_load_rows(elag_model *m, int n)
{
    ELAG_ASSERT(n > 0 && n <= m->max_batch);
    /* (n, C, HW) -> (C, n, HW) */
    return elag_be_transpose(m->be, m->x_in, m->rows, 1, n, m->input.c, m->input.h * m->input.w);
}

elag_status elag_model_forward(elag_model *m, const elag_pass *p, const float **logits)
{
    ELAG_ASSERT(p->n > 0 && p->n <= m->max_batch);
    for (int i = 0; i < m->n_layers; i++) {
        elag_layer *l = &m->layers[i];
        if (l->alias) continue; /* a view, or a relu run in the previous layer's epilogue */
        const float *x = elag_model_layer_output(m, l->input);
        float *y = elag_model_layer_output(m, i);
        ELAG_TRY(l->kind->forward(m, l, p, x, y));
    }
    *logits = elag_model_layer_output(m, m->n_layers - 1);
    return ELAG_OK;
}

int elag_model_trainable_below(const elag_model *m, int i)
{
    for (int j = 0; j <= i && j < m->n_layers; j++) {
        const elag_layer *l = &m->layers[j];
        for (int k = 0; k < l->n_params; k++)
            if (m->reg[l->first_param + k].trainable) return 1;
    }
    return 0;
}

elag_status elag_model_backward(elag_model *m, const elag_pass *p, const float *dlogits)
{
    ELAG_ASSERT(m->training);
    const float *dy = dlogits; /* gradient of layer i's output */
    float *bufs[2] = {m->grad_a, m->grad_b};
    int which = dlogits == m->grad_a ? 1 : 0; /* never write dx over dy */
    for (int i = m->n_layers - 1; i >= 0; i--) {
        const elag_layer *l = &m->layers[i];
        if (!elag_model_trainable_below(m, i)) break;
        if (l->alias && l->kind->view) continue; /* the gradient passes unchanged */
        int need_dx = elag_model_trainable_below(m, i - 1);
        float *dx = need_dx ? bufs[which] : NULL;
        const float *x = elag_model_layer_output(m, l->input);
        const float *y = elag_model_layer_output(m, i);
        ELAG_TRY(l->kind->backward(m, (elag_layer *)l, p, x, y, dy, dx));
        if (!need_dx) break;
        dy = dx;
        which ^= 1;
    }
    return ELAG_OK;
}

elag_status elag_model_logits_rows(elag_model *m, int n, const float *logits_fm)
{
    /* (classes, n) -> (n, classes) */
    return elag_be_transpose(m->be, m->rows, logits_fm, 1, m->classes, n, 1);
}

elag_status elag_model_step(elag_model *m, const elag_pass *p)
{
    elag_backend *be = m->be;
    const float *logits;
    ELAG_TRY(elag_model_load_rows(m, p->n));
    ELAG_TRY(elag_model_forward(m, p, &logits));
    ELAG_TRY(elag_model_logits_rows(m, p->n, logits));
    float *drows = p->training ? m->drows : NULL; /* (n, classes) */
    ELAG_TRY(elag_be_xent(be, m->rows, m->labels, p->n, m->classes, drows, m->stats));
    if (!p->training) return ELAG_OK;
    /* (n, classes) -> (classes, n) */
    ELAG_TRY(elag_be_transpose(be, m->grad_a, m->drows, 1, p->n, m->classes, 1));
    return elag_model_backward(m, p, m->grad_a);
}

elag_status elag_model_count_nonzero(elag_model *m, size_t *nonzero_masked)
{
    size_t total = 0;
    for (int q = 0; q < m->n_prunable; q++) {
        const elag_param *p = &m->reg[m->prunable[q]];
        size_t nz = 0;
        ELAG_TRY(elag_be_count_nonzero(m->be, m->params + p->offset, p->count, &nz));
        total += nz;
    }
    *nonzero_masked = total;
    return ELAG_OK;
}

const elag_layer *elag_model_find_layer(const elag_model *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].cfg.name, name) == 0) return &m->layers[i];
    return NULL;
}

const elag_param *elag_model_find_param(const elag_model *m, const char *name)
{
    for (int j = 0; j < m->n_reg; j++)
        if (strcmp(m->reg[j].name, name) == 0) return &m->reg[j];
    return NULL;
}
