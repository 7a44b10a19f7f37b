/*
 * Checkpoint save and restore (see checkpoint.h).
 */
#include "train/checkpoint.h"

#include "core/check.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
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
    ELAG_TRY(elag_be_to_host(m->be, host, src, n * sizeof(float)));
    return elag_st_writer_add(w, name, ELAG_DTYPE_F32, ndim, shape, host);
}

void elag_checkpoint_mask_name(const elag_model *m, const elag_param *p, char *buf, size_t len)
{
    /* a layer's weight mask is "<layer>.mask"; any other prunable tensor's "<tensor>.mask" */
    if (p->role == ELAG_PARAM_WEIGHT)
        snprintf(buf, len, "%s.mask", m->layers[p->layer].cfg.name);
    else
        snprintf(buf, len, "%s.mask", p->name);
}

static elag_status save_param(elag_st_writer *w, elag_model *m, const elag_param *p, float *host,
                              uint8_t *bytes)
{
    char name[ELAG_PARAM_NAME_LEN + 32];
    const char *const *slots = slot_names(m);
    ELAG_TRY(add_tensor(w, m, p->name, m->params + p->offset, p->ndim, p->shape, host, p->count));
    if (p->prunable) {
        ELAG_TRY(elag_be_to_host(m->be, host, m->masks + p->mask_off, p->count * sizeof(float)));
        for (size_t i = 0; i < p->count; i++) bytes[i] = host[i] != 0.0f;
        elag_checkpoint_mask_name(m, p, name, sizeof name);
        ELAG_TRY(elag_st_writer_add(w, name, ELAG_DTYPE_U8, p->ndim, p->shape, bytes));
    }
    if (!p->trainable || !m->opt_state) return ELAG_OK;
    for (int s = 0; s < m->opt_slots; s++) {
        const float *state = m->opt_state + (size_t)s * m->n_params;
        snprintf(name, sizeof name, "%s.%s", p->name, slots[s]);
        ELAG_TRY(add_tensor(w, m, name, state + p->offset, p->ndim, p->shape, host, p->count));
    }
    return ELAG_OK;
}

static size_t largest_param(const elag_model *m)
{
    size_t widest = 1;
    for (int j = 0; j < m->n_reg; j++)
        if (m->reg[j].count > widest) widest = m->reg[j].count;
    return widest;
}

static elag_status meta_num(elag_st_writer *w, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static elag_status meta_num(elag_st_writer *w, const char *key, const char *fmt, ...)
{
    char num[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(num, sizeof num, fmt, ap);
    va_end(ap);
    return elag_st_writer_meta(w, key, num);
}

elag_status elag_checkpoint_save(elag_model *m, const elag_config *cfg,
                                 const elag_checkpoint_counters *c, const char *path)
{
    return elag_checkpoint_save_extra(m, cfg, c, NULL, 0, path);
}

elag_status elag_checkpoint_save_extra(elag_model *m, const elag_config *cfg,
                                       const elag_checkpoint_counters *c,
                                       const elag_checkpoint_extra *extra, int n_extra,
                                       const char *path)
{
    elag_st_writer *w = NULL;
    char *yaml = NULL;
    size_t widest = largest_param(m);
    float *host = malloc(widest * sizeof(float));
    uint8_t *bytes = malloc(widest);
    elag_status st = ELAG_OK;
    if (!host || !bytes) {
        st = elag_fail(ELAG_ERR_NOMEM, "checkpoint: out of host memory");
        goto done;
    }
    ELAG_TRY_GOTO(st, elag_st_writer_init(&w), done);
    for (int j = 0; j < m->n_reg; j++)
        ELAG_TRY_GOTO(st, save_param(w, m, &m->reg[j], host, bytes), done);
    for (int i = 0; i < n_extra; i++) {
        const elag_param *like = extra[i].like;
        ELAG_TRY_GOTO(st,
                      add_tensor(w, m, extra[i].name, extra[i].data, like->ndim, like->shape,
                                 host, like->count),
                      done);
    }

    ELAG_TRY_GOTO(st, elag_config_to_yaml(cfg, &yaml), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "format", ELAG_CHECKPOINT_FORMAT), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "elag_version", ELAG_VERSION), done);
    ELAG_TRY_GOTO(st, elag_st_writer_meta(w, "config", yaml), done);
    ELAG_TRY_GOTO(st, meta_num(w, "step", "%ld", c->step), done);
    ELAG_TRY_GOTO(st, meta_num(w, "epoch", "%d", c->epoch), done);
    ELAG_TRY_GOTO(st, meta_num(w, "epoch_step", "%ld", c->epoch_step), done);
    ELAG_TRY_GOTO(st, meta_num(w, "input_dim", "%d", m->input_dim), done);
    ELAG_TRY_GOTO(st,
                  meta_num(w, "input_shape", "[%d, %d, %d]", m->input.c, m->input.h, m->input.w),
                  done);
    ELAG_TRY_GOTO(st, meta_num(w, "classes", "%d", m->classes), done);
    ELAG_TRY_GOTO(st,
                  meta_num(w, "rng", "philox4x32-10 seed=%llu epoch=%d epoch_step=%ld",
                           (unsigned long long)cfg->seed, c->epoch, c->epoch_step),
                  done);
    ELAG_TRY_GOTO(st, meta_num(w, "mask_updates", "%ld", c->mask_updates), done);
    ELAG_TRY_GOTO(st, meta_num(w, "mask_update_seconds", "%.17g", c->mask_update_seconds), done);
    ELAG_TRY_GOTO(st, meta_num(w, "train_seconds", "%.17g", c->train_seconds), done);
    ELAG_TRY_GOTO(st, meta_num(w, "epoch_loss_sum", "%.17g", c->epoch_loss_sum), done);
    ELAG_TRY_GOTO(st, meta_num(w, "epoch_correct", "%.17g", c->epoch_correct), done);
    ELAG_TRY_GOTO(st, meta_num(w, "epoch_samples", "%ld", c->epoch_samples), done);
    ELAG_TRY_GOTO(st, elag_st_writer_save(w, path), done);
done:
    elag_st_writer_free(w);
    free(yaml);
    free(host);
    free(bytes);
    return st;
}

/* One dimension of "[C, H, W]" (blanks before it allowed), digits only, in [1, 2^30], then
 * `sep`; read with strtol (sscanf's %d has undefined behaviour on overflow and wraps
 * 2^32+1 to 1 in practice). */
static int parse_dim(const char **s, char sep, long *out)
{
    const char *p = *s;
    while (*p == ' ') p++;
    if (*p < '0' || *p > '9') return 0;
    char *end;
    errno = 0;
    long x = strtol(p, &end, 10);
    if (errno || x < 1 || x > (1L << 30) || *end != sep) return 0;
    *out = x;
    *s = end + 1;
    return 1;
}

elag_status elag_checkpoint_parse_shape(const char *text, elag_fshape *out)
{
    long c, h, w;
    const char *p = text;
    if (!p || *p++ != '[' || !parse_dim(&p, ',', &c) || !parse_dim(&p, ',', &h) ||
        !parse_dim(&p, ']', &w) || *p != '\0' || (long long)c * h > (1LL << 30) ||
        (long long)c * h * w > (1LL << 30))
        return ELAG_ERR_INPUT;
    *out = (elag_fshape){(int)c, (int)h, (int)w};
    return ELAG_OK;
}

/* An integer in [lo, hi] (checked before any narrowing cast). */
static elag_status meta_long(const elag_st_file *f, const char *key, long lo, long hi, long *out)
{
    const char *v = elag_st_meta(f, key);
    if (!v)
        return elag_fail(ELAG_ERR_INPUT, "%s: not an elag checkpoint (no '%s' in metadata)",
                         elag_st_path(f), key);
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return elag_fail(ELAG_ERR_INPUT, "%s: bad metadata %s='%s'", elag_st_path(f), key, v);
    *out = x;
    return ELAG_OK;
}

static elag_status meta_double(const elag_st_file *f, const char *key, double *out)
{
    const char *v = elag_st_meta(f, key);
    char *end;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end || !isfinite(x) || x < 0)
        return elag_fail(ELAG_ERR_INPUT, "%s: bad metadata %s='%s'", elag_st_path(f), key,
                         v ? v : "");
    *out = x;
    return ELAG_OK;
}

/* The counters of a checkpoint that has them (all of them, or none: elag 0.1). */
static elag_status read_counters(elag_checkpoint *ck)
{
    const elag_st_file *f = ck->file;
    elag_checkpoint_counters *c = &ck->counters;
    c->step = ck->step;
    c->epoch = ck->epoch;
    if (!elag_st_meta(f, "epoch_step")) return ELAG_OK;
    ELAG_TRY(meta_long(f, "epoch_step", 0, LONG_MAX / 2, &c->epoch_step));
    ELAG_TRY(meta_long(f, "mask_updates", 0, LONG_MAX / 2, &c->mask_updates));
    ELAG_TRY(meta_long(f, "epoch_samples", 0, LONG_MAX / 2, &c->epoch_samples));
    ELAG_TRY(meta_double(f, "mask_update_seconds", &c->mask_update_seconds));
    ELAG_TRY(meta_double(f, "train_seconds", &c->train_seconds));
    ELAG_TRY(meta_double(f, "epoch_loss_sum", &c->epoch_loss_sum));
    ELAG_TRY(meta_double(f, "epoch_correct", &c->epoch_correct));
    if (c->mask_updates > ck->step + 1 || c->epoch_step > ck->step)
        return elag_fail(ELAG_ERR_INPUT, "%s: metadata mask_updates %ld / epoch_step %ld do not fit "
                         "step %ld", elag_st_path(f), c->mask_updates, c->epoch_step, ck->step);
    ck->has_counters = 1;
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
    ELAG_TRY_GOTO(st, meta_long(ck->file, "step", 0, LONG_MAX / 2, &ck->step), fail);
    ELAG_TRY_GOTO(st, meta_long(ck->file, "epoch", 0, INT32_MAX, &v), fail);
    ck->epoch = (int)v;
    ELAG_TRY_GOTO(st, meta_long(ck->file, "input_dim", 1, 1L << 30, &v), fail);
    ck->input_dim = (int)v;
    ck->input = (elag_fshape){ck->input_dim, 1, 1};
    const char *shape = elag_st_meta(ck->file, "input_shape");
    if (shape && (elag_checkpoint_parse_shape(shape, &ck->input) != ELAG_OK ||
                  (long)elag_fshape_count(ck->input) != v)) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: bad metadata input_shape='%s' (input_dim %ld)", path,
                       shape, v);
        goto fail;
    }
    ELAG_TRY_GOTO(st, meta_long(ck->file, "classes", 1, 1L << 30, &v), fail);
    ck->classes = (int)v;
    ELAG_TRY_GOTO(st, read_counters(ck), fail);
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

/* ELAG_ERR_INPUT naming the tensor and the first NaN or Inf in it. The bytes are read as
 * bit patterns (a file's tensor data need not be aligned for float). */
static elag_status check_finite(const elag_checkpoint *ck, const char *name,
                                const elag_st_tensor *t)
{
    const unsigned char *bytes = t->data;
    size_t n = t->nbytes / sizeof(uint32_t);
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, bytes + i * sizeof bits, sizeof bits);
        if ((bits & 0x7f800000u) != 0x7f800000u) continue; /* exponent not all ones */
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: tensor '%s' holds %s at index %zu (the run diverged; use an "
                         "earlier checkpoint)",
                         elag_st_path(ck->file), name, (bits & 0x007fffffu) ? "NaN" : "Inf", i);
    }
    return ELAG_OK;
}

static elag_status load_f32(const elag_checkpoint *ck, elag_model *m, const char *name,
                            float *dst, int ndim, const int64_t *shape)
{
    const elag_st_tensor *t;
    ELAG_TRY(elag_st_expect(ck->file, name, ELAG_DTYPE_F32, ndim, shape, &t));
    ELAG_TRY(check_finite(ck, name, t));
    return elag_be_to_device(m->be, dst, t->data, t->nbytes);
}

static elag_status restore_param(const elag_checkpoint *ck, elag_model *m, const elag_param *p,
                                 int with_optimizer, float *host)
{
    char name[ELAG_PARAM_NAME_LEN + 32];
    ELAG_TRY(load_f32(ck, m, p->name, m->params + p->offset, p->ndim, p->shape));
    if (p->prunable) {
        const elag_st_tensor *t;
        elag_checkpoint_mask_name(m, p, name, sizeof name);
        ELAG_TRY(elag_st_expect(ck->file, name, ELAG_DTYPE_U8, p->ndim, p->shape, &t));
        const uint8_t *bytes = t->data;
        for (size_t i = 0; i < p->count; i++) {
            if (bytes[i] > 1)
                return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' holds %u at %zu (masks are 0/1)",
                                 elag_st_path(ck->file), name, bytes[i], i);
            host[i] = (float)bytes[i];
        }
        ELAG_TRY(elag_be_to_device(m->be, m->masks + p->mask_off, host, p->count * sizeof(float)));
    }
    if (!with_optimizer || !p->trainable || !m->opt_state) return ELAG_OK;
    const char *const *slots = slot_names(m);
    for (int s = 0; s < m->opt_slots; s++) {
        float *state = m->opt_state + (size_t)s * m->n_params;
        snprintf(name, sizeof name, "%s.%s", p->name, slots[s]);
        ELAG_TRY(load_f32(ck, m, name, state + p->offset, p->ndim, p->shape));
    }
    return ELAG_OK;
}

elag_status elag_checkpoint_restore(const elag_checkpoint *ck, elag_model *m, int with_optimizer)
{
    float *host = malloc(largest_param(m) * sizeof(float));
    if (!host) return elag_fail(ELAG_ERR_NOMEM, "checkpoint: out of host memory");
    elag_status st = ELAG_OK;
    for (int j = 0; j < m->n_reg && st == ELAG_OK; j++)
        st = restore_param(ck, m, &m->reg[j], with_optimizer, host);
    free(host);
    return st;
}

elag_status elag_checkpoint_restore_extra(const elag_checkpoint *ck, elag_model *m,
                                          const elag_checkpoint_extra *extra, int n)
{
    for (int i = 0; i < n; i++)
        ELAG_TRY(load_f32(ck, m, extra[i].name, extra[i].data, extra[i].like->ndim,
                          extra[i].like->shape));
    return ELAG_OK;
}
