/*
 * Checkpoint save and restore (see checkpoint.h).
 */
#include "train/checkpoint.h"

#include "core/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sgd_slots[] = {"momentum"};
static const char *const adamw_slots[] = {"exp_avg", "exp_avg_sq"};

static const char *const *slot_names(const elag_model *m)
{
    return m->opt_slots == 2 ? adamw_slots : sgd_slots;
}

/* Downloads n floats at device offset `src` and adds them as tensor `name`. */
static elag_status add_tensor(elag_st_writer *w, elag_model *m, const char *name, const float *src,
                              int ndim, const int64_t *shape, float *host, size_t n)
{
    ELAG_TRY(m->be->to_host(m->be, host, src, n * sizeof(float)));
    return elag_st_writer_add(w, name, ELAG_DTYPE_F32, ndim, shape, host);
}

static elag_status save_layer(elag_st_writer *w, elag_model *m, const elag_layer *l, float *host,
                              uint8_t *bytes)
{
    char name[ELAG_NAME_LEN + 32];
    int64_t wshape[2] = {l->out, l->in}, bshape[1] = {l->out};
    size_t nw = (size_t)l->out * l->in;
    const char *const *slots = slot_names(m);

    snprintf(name, sizeof name, "%s.weight", l->name);
    ELAG_TRY(add_tensor(w, m, name, m->params + l->w_off, 2, wshape, host, nw));
    if (l->has_bias) {
        snprintf(name, sizeof name, "%s.bias", l->name);
        ELAG_TRY(add_tensor(w, m, name, m->params + l->b_off, 1, bshape, host, (size_t)l->out));
    }
    if (l->prunable) {
        ELAG_TRY(m->be->to_host(m->be, host, m->masks + l->mask_off, nw * sizeof(float)));
        for (size_t i = 0; i < nw; i++) bytes[i] = host[i] != 0.0f;
        snprintf(name, sizeof name, "%s.mask", l->name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_U8, 2, wshape, bytes));
    }
    for (int s = 0; s < m->opt_slots; s++) {
        const float *state = m->opt_state + (size_t)s * m->n_params;
        snprintf(name, sizeof name, "%s.weight.%s", l->name, slots[s]);
        ELAG_TRY(add_tensor(w, m, name, state + l->w_off, 2, wshape, host, nw));
        if (l->has_bias) {
            snprintf(name, sizeof name, "%s.bias.%s", l->name, slots[s]);
            ELAG_TRY(add_tensor(w, m, name, state + l->b_off, 1, bshape, host, (size_t)l->out));
        }
    }
    return ELAG_OK;
}

elag_status elag_checkpoint_save(elag_model *m, const elag_config *cfg, long step, int epoch,
                                 const char *path)
{
    elag_st_writer *w = NULL;
    char *yaml = NULL;
    size_t widest = 1;
    for (int i = 0; i < m->n_layers; i++) {
        size_t n = (size_t)m->layers[i].out * m->layers[i].in;
        if (m->layers[i].type == ELAG_LAYER_LINEAR && n > widest) widest = n;
    }
    float *host = malloc(widest * sizeof(float));
    uint8_t *bytes = malloc(widest);
    elag_status st = ELAG_OK;
    if (!host || !bytes) {
        st = elag_fail(ELAG_ERR_NOMEM, "checkpoint: out of host memory");
        goto done;
    }
    ELAG_TRY_GOTO(st, elag_st_writer_init(&w), done);
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].type == ELAG_LAYER_LINEAR)
            ELAG_TRY_GOTO(st, save_layer(w, m, &m->layers[i], host, bytes), done);

    char num[64];
    ELAG_TRY_GOTO(st, elag_config_to_yaml(cfg, &yaml), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "format", ELAG_CHECKPOINT_FORMAT), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "elag_version", ELAG_VERSION), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "config", yaml), done);
    snprintf(num, sizeof num, "%ld", step);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "step", num), done);
    snprintf(num, sizeof num, "%d", epoch);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "epoch", num), done);
    snprintf(num, sizeof num, "%d", m->input_dim);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "input_dim", num), done);
    snprintf(num, sizeof num, "%d", m->classes);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "classes", num), done);
    snprintf(num, sizeof num, "philox4x32-10 seed=%llu epoch=%d",
             (unsigned long long)cfg->seed, epoch);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "rng", num), done);
    ELAG_TRY_GOTO(st, elag_st_writer_save(w, path), done);
done:
    elag_st_writer_free(w);
    free(yaml);
    free(host);
    free(bytes);
    return st;
}

static elag_status meta_long(const elag_st_file *f, const char *key, long lo, long *out)
{
    const char *v = elag_st_meta(f, key);
    if (!v)
        return elag_fail(ELAG_ERR_INPUT, "%s: not an elag checkpoint (no '%s' in metadata)",
                         elag_st_path(f), key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo)
        return elag_fail(ELAG_ERR_INPUT, "%s: bad metadata %s='%s'", elag_st_path(f), key, v);
    *out = x;
    return ELAG_OK;
}

elag_status elag_checkpoint_open(const char *path, elag_checkpoint *ck)
{
    memset(ck, 0, sizeof *ck);
    elag_status st;
    ELAG_TRY(elag_st_open(path, &ck->file));
    const char *fmt = elag_st_meta(ck->file, "format");
    if (!fmt || strcmp(fmt, ELAG_CHECKPOINT_FORMAT) != 0) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: not an elag checkpoint (format '%s', expected '%s')",
                       path, fmt ? fmt : "", ELAG_CHECKPOINT_FORMAT);
        goto fail;
    }
    const char *yaml = elag_st_meta(ck->file, "config");
    if (!yaml) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: checkpoint has no config in its metadata", path);
        goto fail;
    }
    char origin[ELAG_PATH_LEN + 16];
    snprintf(origin, sizeof origin, "%s[config]", path);
    ELAG_TRY_GOTO(st, elag_config_parse(yaml, strlen(yaml), origin, NULL, 0, &ck->cfg), fail);
    long v;
    ELAG_TRY_GOTO(st, meta_long(ck->file, "step", 0, &ck->step), fail);
    ELAG_TRY_GOTO(st, meta_long(ck->file, "epoch", 0, &v), fail);
    ck->epoch = (int)v;
    ELAG_TRY_GOTO(st, meta_long(ck->file, "input_dim", 1, &v), fail);
    ck->input_dim = (int)v;
    ELAG_TRY_GOTO(st, meta_long(ck->file, "classes", 1, &v), fail);
    ck->classes = (int)v;
    return ELAG_OK;
fail:
    elag_checkpoint_close(ck);
    return st;
}

void elag_checkpoint_close(elag_checkpoint *ck)
{
    if (!ck) return;
    elag_st_close(ck->file);
    ck->file = NULL;
}

static elag_status load_f32(const elag_checkpoint *ck, elag_model *m, const char *name,
                            float *dst, int ndim, const int64_t *shape)
{
    const elag_st_tensor *t;
    ELAG_TRY(elag_st_expect(ck->file, name, ELAG_DTYPE_F32, ndim, shape, &t));
    return m->be->to_device(m->be, dst, t->data, t->nbytes);
}

static elag_status restore_layer(const elag_checkpoint *ck, elag_model *m, const elag_layer *l,
                                 int with_optimizer, float *host)
{
    char name[ELAG_NAME_LEN + 32];
    int64_t wshape[2] = {l->out, l->in}, bshape[1] = {l->out};
    size_t nw = (size_t)l->out * l->in;
    snprintf(name, sizeof name, "%s.weight", l->name);
    ELAG_TRY(load_f32(ck, m, name, m->params + l->w_off, 2, wshape));
    if (l->has_bias) {
        snprintf(name, sizeof name, "%s.bias", l->name);
        ELAG_TRY(load_f32(ck, m, name, m->params + l->b_off, 1, bshape));
    }
    if (l->prunable) {
        const elag_st_tensor *t;
        snprintf(name, sizeof name, "%s.mask", l->name);
        ELAG_TRY(elag_st_expect(ck->file, name, ELAG_DTYPE_U8, 2, wshape, &t));
        const uint8_t *bytes = t->data;
        for (size_t i = 0; i < nw; i++) {
            if (bytes[i] > 1)
                return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' holds %u at %zu (masks are 0/1)",
                                 elag_st_path(ck->file), name, bytes[i], i);
            host[i] = (float)bytes[i];
        }
        ELAG_TRY(m->be->to_device(m->be, m->masks + l->mask_off, host, nw * sizeof(float)));
    }
    if (!with_optimizer) return ELAG_OK;
    const char *const *slots = slot_names(m);
    for (int s = 0; s < m->opt_slots; s++) {
        float *state = m->opt_state + (size_t)s * m->n_params;
        snprintf(name, sizeof name, "%s.weight.%s", l->name, slots[s]);
        ELAG_TRY(load_f32(ck, m, name, state + l->w_off, 2, wshape));
        if (l->has_bias) {
            snprintf(name, sizeof name, "%s.bias.%s", l->name, slots[s]);
            ELAG_TRY(load_f32(ck, m, name, state + l->b_off, 1, bshape));
        }
    }
    return ELAG_OK;
}

elag_status elag_checkpoint_restore(const elag_checkpoint *ck, elag_model *m, int with_optimizer)
{
    size_t widest = 1;
    for (int i = 0; i < m->n_layers; i++) {
        size_t n = (size_t)m->layers[i].out * m->layers[i].in;
        if (n > widest) widest = n;
    }
    float *host = malloc(widest * sizeof(float));
    if (!host) return elag_fail(ELAG_ERR_NOMEM, "checkpoint: out of host memory");
    elag_status st = ELAG_OK;
    for (int i = 0; i < m->n_layers && st == ELAG_OK; i++)
        if (m->layers[i].type == ELAG_LAYER_LINEAR)
            st = restore_layer(ck, m, &m->layers[i], with_optimizer, host);
    free(host);
    return st;
}
