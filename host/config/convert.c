/*
 * YAML tree -> struct elag_config, driven by the key table (keys.c). Each value is
 * checked for its type and range where it stands, so a message names the key and
 * its line:column; keys not in the table are errors with a "did you mean". Checks
 * that involve two keys (initial <= target, preset vs layers, ...) are in config.c.
 */
#define _POSIX_C_SOURCE 200809L
#include "config/config_internal.h"
#include "model/layer.h"
#include "core/check.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(elag_dataset_kind) == sizeof(int) && sizeof(elag_layer_kind) == sizeof(int) &&
                   sizeof(elag_optimizer_kind) == sizeof(int) &&
                   sizeof(elag_lr_schedule_kind) == sizeof(int) &&
                   sizeof(elag_sparse_compute) == sizeof(int) &&
                   sizeof(elag_prune_method) == sizeof(int) &&
                   sizeof(elag_prune_criterion) == sizeof(int) &&
                   sizeof(elag_prune_scope) == sizeof(int) &&
                   sizeof(elag_prune_granularity) == sizeof(int) &&
                   sizeof(elag_prune_distribution) == sizeof(int) &&
                   sizeof(elag_prune_norm) == sizeof(int),
               "enum fields are written as int");

#define CFG_MAX_STEP 9007199254740992.0 /* 2^53: larger steps are not exact in elag_when */

/* "[0, 1)", ">= 1", "> 0": the accepted range of k, for messages. */
static const char *cfg_range_text(const elag_cfg_key *k, double hi, char *buf, size_t size)
{
    if (isinf(hi))
        snprintf(buf, size, "%s %.17g", k->lo_open ? ">" : ">=", k->lo);
    else
        snprintf(buf, size, "in %c%.17g, %.17g%c", k->lo_open ? '(' : '[', k->lo, hi,
                 k->hi_open ? ')' : ']');
    return buf;
}

/* Lists names as "a, b, c" into buf. */
static const char *cfg_join(const char *const *names, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; names && names[i] && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
    return buf;
}

static int cfg_find_name(const char *const *names, const char *s)
{
    for (int i = 0; names && names[i]; i++)
        if (!strcmp(names[i], s)) return i;
    return -1;
}

static elag_status cfg_integer(const elag_cfg_ctx *ctx, const elag_cfg_key *k, const char *path,
                               const elag_ynode *v, void *field)
{
    const char *t = v->text;
    char range[96];
    if (k->kind == ELAG_CFG_U64) {
        uint64_t u;
        int r = elag_cfg_parse_u64(t, &u);
        if (r == -1)
            return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' expects an integer, got '%s'", path,
                                 t);
        if (r == -2)
            return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' must be in [0, %llu], got %s", path,
                                 (unsigned long long)UINT64_MAX, t);
        memcpy(field, &u, sizeof u);
        return ELAG_OK;
    }
    long long x;
    int r = elag_cfg_parse_ll(t, &x);
    if (r == -1)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' expects an integer, got '%s'", path, t);
    double type_max = k->kind == ELAG_CFG_INT ? (double)INT_MAX : (double)LONG_MAX;
    double hi = isinf(k->hi) ? type_max : k->hi;
    if (r == -2 || (double)x > hi)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' must be in [%.17g, %.17g], got %s", path,
                             k->lo, hi, t);
    if ((double)x < k->lo)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' must be %s, got %s", path,
                             cfg_range_text(k, k->hi, range, sizeof range), t);
    if (k->kind == ELAG_CFG_INT) {
        int i = (int)x;
        memcpy(field, &i, sizeof i);
    } else {
        long l = (long)x;
        memcpy(field, &l, sizeof l);
    }
    return ELAG_OK;
}

/* Parses a number in k's range; `path` names it in messages. */
static elag_status cfg_number(const elag_cfg_ctx *ctx, const elag_cfg_key *k, const char *path,
                              const elag_ynode *v, double *out)
{
    char range[96];
    if (v->kind != ELAG_YNODE_SCALAR || elag_ynode_is_null(v)) {
        char got[96];
        return elag_cfg_fail(
            ctx, v, ELAG_ERR_INPUT, "'%s' expects a number, got %s", path,
            v->kind == ELAG_YNODE_SCALAR ? "nothing" : elag_ynode_describe(v, got, sizeof got));
    }
    int r = elag_cfg_parse_double(v->text, out);
    if (r == -1)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' expects a number, got '%s'", path,
                             v->text);
    int below = *out < k->lo || (k->lo_open && *out == k->lo);
    int above = *out > k->hi || (k->hi_open && *out == k->hi);
    if (r == -2 || below || above)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' must be %s, got %s", path,
                             cfg_range_text(k, k->hi, range, sizeof range), v->text);
    return ELAG_OK;
}

static elag_status cfg_when(const elag_cfg_ctx *ctx, const char *path, const elag_ynode *v,
                            elag_when *out)
{
    const char *t = v->text;
    if (strpbrk(t, ".eE")) {
        double x = 0;
        int r = elag_cfg_parse_double(t, &x);
        if (r == -1)
            return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT,
                                 "'%s' expects a step number or a fraction, got '%s'", path, t);
        /* -2: beyond a double (1e400), x unset */
        if (r == -2 || !(x >= 0 && x <= 1))
            return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT,
                                 "'%s' must be in [0, 1] as a fraction of training, got %s "
                                 "(a step number has no '.' or exponent)",
                                 path, t);
        out->value = x;
        out->is_fraction = 1;
        return ELAG_OK;
    }
    long long s;
    int r = elag_cfg_parse_ll(t, &s);
    if (r == -1)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT,
                             "'%s' expects a step number or a fraction, got '%s'", path, t);
    if (r == -2 || s < 0 || (double)s > CFG_MAX_STEP)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT,
                             "'%s' must be in [0, %.17g] as a step number, got %s", path,
                             CFG_MAX_STEP, t);
    out->value = (double)s;
    out->is_fraction = 0;
    return ELAG_OK;
}

static elag_status cfg_choice(const elag_cfg_ctx *ctx, const elag_cfg_key *k, const char *path,
                              const elag_ynode *v, void *base)
{
    char names[256], got[96];
    cfg_join(k->names, names, sizeof names);
    if (v->kind != ELAG_YNODE_SCALAR)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' must be one of %s, got %s", path, names,
                             elag_ynode_describe(v, got, sizeof got));
    int idx = cfg_find_name(k->names, v->text);
    if (idx < 0 && cfg_find_name(k->later, v->text) >= 0)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT,
                             "'%s' value '%s' is not supported yet (this build has: %s)", path,
                             v->text, names);
    if (idx < 0)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' must be one of %s, got '%s'", path,
                             names, v->text);
    if (k->offset == ELAG_CFG_NO_FIELD) return ELAG_OK;
    char *field = (char *)base + k->offset;
    if (k->kind == ELAG_CFG_ENUM) {
        memcpy(field, &idx, sizeof idx);
    } else {
        memset(field, 0, k->size);
        snprintf(field, k->size, "%s", v->text);
    }
    return ELAG_OK;
}

static elag_status cfg_pair(const elag_cfg_ctx *ctx, const elag_cfg_key *k, const char *path,
                            const elag_ynode *v, void *base)
{
    char got[96], item[160];
    if (v->kind != ELAG_YNODE_SEQUENCE || v->n != 2) {
        if (v->kind == ELAG_YNODE_SEQUENCE)
            snprintf(got, sizeof got, "%zu item%s", v->n, v->n == 1 ? "" : "s");
        return elag_cfg_fail(
            ctx, v, ELAG_ERR_INPUT, "'%s' expects a list of 2 numbers, got %s", path,
            v->kind == ELAG_YNODE_SEQUENCE ? got : elag_ynode_describe(v, got, sizeof got));
    }
    double x[2];
    for (int i = 0; i < 2; i++) {
        snprintf(item, sizeof item, "%s[%d]", path, i);
        ELAG_TRY(cfg_number(ctx, k, item, v->vals[i], &x[i]));
    }
    memcpy((char *)base + k->offset, &x[0], sizeof x[0]);
    memcpy((char *)base + k->size, &x[1], sizeof x[1]);
    return ELAG_OK;
}

/* An int[2] field: "3" sets both, "[3, 5]" each (kernel, stride, padding: (h, w)). */
static elag_status cfg_int2(const elag_cfg_ctx *ctx, const elag_cfg_key *k, const char *path,
                            const elag_ynode *v, void *base)
{
    char got[96], item[160];
    int x[2];
    elag_cfg_key one = *k;
    one.kind = ELAG_CFG_INT;
    if (v->kind == ELAG_YNODE_SCALAR) {
        ELAG_TRY(cfg_integer(ctx, &one, path, v, &x[0]));
        x[1] = x[0];
    } else if (v->kind == ELAG_YNODE_SEQUENCE && v->n == 2) {
        for (int i = 0; i < 2; i++) {
            snprintf(item, sizeof item, "%s[%d]", path, i);
            if (v->vals[i]->kind != ELAG_YNODE_SCALAR)
                return elag_cfg_fail(ctx, v->vals[i], ELAG_ERR_INPUT,
                                     "'%s' expects an integer, got %s", item,
                                     elag_ynode_describe(v->vals[i], got, sizeof got));
            ELAG_TRY(cfg_integer(ctx, &one, item, v->vals[i], &x[i]));
        }
    } else {
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT,
                             "'%s' expects an integer or a list of 2 integers %s, got %s",
                             path, strcmp(path, "prune.block") ? "[h, w]" : "[rows, cols]",
                             elag_ynode_describe(v, got, sizeof got));
    }
    memcpy((char *)base + k->offset, x, sizeof x);
    return ELAG_OK;
}

elag_status elag_cfg_leaf(const elag_cfg_ctx *ctx, const elag_cfg_key *k, const char *path,
                          const elag_ynode *v, void *base)
{
    char got[96];
    if (k->kind == ELAG_CFG_UNSUPPORTED)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "key '%s' is not supported yet", path);
    if (elag_ynode_is_null(v))
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' has no value", path);
    if (k->kind == ELAG_CFG_PAIR) return cfg_pair(ctx, k, path, v, base);
    if (k->kind == ELAG_CFG_INT2) return cfg_int2(ctx, k, path, v, base);
    if (k->kind == ELAG_CFG_ENUM || k->kind == ELAG_CFG_NAME)
        return cfg_choice(ctx, k, path, v, base);
    if (v->kind != ELAG_YNODE_SCALAR) {
        static const char *const what[] = {[ELAG_CFG_INT] = "an integer",
                                           [ELAG_CFG_LONG] = "an integer",
                                           [ELAG_CFG_U64] = "an integer",
                                           [ELAG_CFG_FLOAT] = "a number",
                                           [ELAG_CFG_BOOL] = "a boolean (true or false)",
                                           [ELAG_CFG_STRING] = "a string",
                                           [ELAG_CFG_WHEN] = "a step number or a fraction"};
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s' expects %s, got %s", path, what[k->kind],
                             elag_ynode_describe(v, got, sizeof got));
    }
    void *field = (char *)base + k->offset;
    switch (k->kind) {
    case ELAG_CFG_INT:
    case ELAG_CFG_LONG:
    case ELAG_CFG_U64: return cfg_integer(ctx, k, path, v, field);
    case ELAG_CFG_FLOAT: {
        double x;
        ELAG_TRY(cfg_number(ctx, k, path, v, &x));
        memcpy(field, &x, sizeof x);
        return ELAG_OK;
    }
    case ELAG_CFG_BOOL: {
        int b;
        if (elag_cfg_parse_bool(v->text, &b))
            return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT,
                                 "'%s' expects a boolean (true or false), got '%s'", path, v->text);
        memcpy(field, &b, sizeof b);
        return ELAG_OK;
    }
    case ELAG_CFG_STRING:
        if (strlen(v->text) >= k->size)
            return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT,
                                 "'%s' is too long (at most %zu characters)", path, k->size - 1);
        memset(field, 0, k->size); /* unused bytes stay zero: configs compare with memcmp */
        memcpy(field, v->text, strlen(v->text));
        return ELAG_OK;
    case ELAG_CFG_WHEN: {
        return cfg_when(ctx, path, v, (elag_when *)field); /* fields only: padding stays 0 */
    }
    default: return elag_cfg_fail(ctx, v, ELAG_ERR_INTERNAL, "'%s': bad key table entry", path);
    }
}

elag_status elag_cfg_no_duplicate(const elag_cfg_ctx *ctx, const elag_ynode *m, size_t i,
                                  const char *path)
{
    for (size_t j = 0; j < i; j++)
        if (!strcmp(m->keys[j]->text, m->keys[i]->text))
            return elag_cfg_fail(ctx, m->keys[i], ELAG_ERR_INPUT,
                                 "duplicate key '%s' (first at line %d)", path, m->keys[j]->line);
    return ELAG_OK;
}

static int cfg_layer_name_ok(const char *s)
{
    if (!s[0]) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-') return 0;
    return 1;
}

static int cfg_in_list(const char *const *list, const char *s)
{
    for (int i = 0; list && list[i]; i++)
        if (!strcmp(list[i], s)) return 1;
    return 0;
}

/* The `type` of a layer item: a kind of the layer-kind table. */
static elag_status cfg_layer_type(const elag_cfg_ctx *ctx, const char *item, const elag_ynode *m,
                                  const elag_ynode *v, elag_layer_config *L)
{
    char kinds[256] = "", got[96];
    size_t used = 0;
    for (int k = 0; k < ELAG_LAYER_KIND_COUNT && used < sizeof kinds; k++)
        used += (size_t)snprintf(kinds + used, sizeof kinds - used, "%s%s", k ? ", " : "",
                                 elag_layer_kind_get((elag_layer_kind)k)->name);
    if (!v)
        return elag_cfg_fail(ctx, m, ELAG_ERR_INPUT, "'%s' needs a type (%s)", item, kinds);
    int k = v->kind == ELAG_YNODE_SCALAR ? elag_layer_kind_find(v->text) : -1;
    if (k < 0)
        return elag_cfg_fail(ctx, v, ELAG_ERR_INPUT, "'%s.type' must be one of %s, got %s", item,
                             kinds, elag_ynode_describe(v, got, sizeof got));
    L->type = (elag_layer_kind)k;
    return ELAG_OK;
}

/* One model.layers item into *L: its type first (which says what else applies), the
 * kind's defaults, then every other key, then the kind's dependent defaults. */
static elag_status cfg_layer(elag_cfg_conv *c, const elag_ynode *m, size_t li, elag_layer_config *L,
                             const elag_ynode **name_at)
{
    const elag_cfg_ctx *ctx = c->ctx;
    const size_t nk = elag_cfg_n_layer_keys;
    const elag_ynode *given[16] = {0};
    char item[48], path[160], got[96];
    ELAG_ASSERT(nk <= 16);
    snprintf(item, sizeof item, "model.layers[%zu]", li);
    if (m->kind != ELAG_YNODE_MAPPING)
        return elag_cfg_fail(ctx, m, ELAG_ERR_INPUT,
                             "'%s' expects a mapping such as {type: linear, out_features: 10}, "
                             "got %s",
                             item, elag_ynode_describe(m, got, sizeof got));
    for (size_t i = 0; i < m->n; i++) {
        snprintf(path, sizeof path, "%s.%s", item, m->keys[i]->text);
        ELAG_TRY(elag_cfg_no_duplicate(ctx, m, i, path));
    }
    ELAG_TRY(cfg_layer_type(ctx, item, m, elag_ynode_get(m, "type"), L));
    const elag_layer_kind_def *kind = elag_layer_kind_get(L->type);
    if (kind->defaults) kind->defaults(L);
    for (size_t i = 0; i < m->n; i++) {
        const char *key = m->keys[i]->text;
        snprintf(path, sizeof path, "%s.%s", item, key);
        size_t j = 0;
        while (j < nk && strcmp(elag_cfg_layer_keys[j].path, key)) j++;
        if (j == nk) {
            char cand_buf[16][96], hint[200] = "";
            const char *cands[16];
            size_t nc = 0;
            for (size_t q = 0; q < nk; q++) {
                const char *kp = elag_cfg_layer_keys[q].path;
                if (q > 1 && !cfg_in_list(kind->keys, kp)) continue;
                snprintf(cand_buf[nc], sizeof cand_buf[nc], "%s.%s", item, kp);
                cands[nc] = cand_buf[nc];
                nc++;
            }
            const char *best = elag_cfg_suggest(path, cands, nc);
            if (best) snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
            return elag_cfg_fail(ctx, m->keys[i], ELAG_ERR_INPUT, "unknown key '%s'%s", path, hint);
        }
        given[j] = m->vals[i];
        if (j == 0) continue; /* type: read above */
        if (j > 1 && !cfg_in_list(kind->keys, key))
            return elag_cfg_fail(ctx, m->keys[i], ELAG_ERR_INPUT,
                                 "'%s' does not apply to a %s layer", path, kind->name);
        ELAG_TRY(elag_cfg_leaf(ctx, &elag_cfg_layer_keys[j], path, m->vals[i], L));
    }
    for (int r = 0; kind->required && kind->required[r]; r++)
        if (!elag_ynode_get(m, kind->required[r]))
            return elag_cfg_fail(ctx, m, ELAG_ERR_INPUT, "'%s.%s' is required for a %s layer",
                                 item, kind->required[r], kind->name);
    if (kind->resolve) kind->resolve(L);
    if (given[1] && !cfg_layer_name_ok(L->name))
        return elag_cfg_fail(ctx, given[1], ELAG_ERR_INPUT,
                             "'%s.name' may hold only letters, digits, '_' and '-', got '%s'", item,
                             L->name);
    *name_at = given[1] ? given[1] : m;
    return ELAG_OK;
}

elag_status elag_cfg_layers(elag_cfg_conv *c, const elag_ynode *seq)
{
    elag_config *cfg = c->cfg;
    const elag_ynode *name_at[ELAG_MAX_LAYERS];
    char got[96];
    if (seq->kind != ELAG_YNODE_SEQUENCE)
        return elag_cfg_fail(c->ctx, seq, ELAG_ERR_INPUT,
                             "'model.layers' expects a list of layers, got %s",
                             elag_ynode_describe(seq, got, sizeof got));
    if (seq->n == 0)
        return elag_cfg_fail(c->ctx, seq, ELAG_ERR_INPUT,
                             "'model.layers' must list at least one layer");
    if (seq->n > ELAG_MAX_LAYERS)
        return elag_cfg_fail(c->ctx, seq, ELAG_ERR_INPUT,
                             "'model.layers' has %zu layers, at most %d are supported", seq->n,
                             ELAG_MAX_LAYERS);
    memset(cfg->model.layers, 0, sizeof cfg->model.layers);
    cfg->model.n_layers = (int)seq->n;
    int count[ELAG_LAYER_KIND_COUNT] = {0};
    for (size_t i = 0; i < seq->n; i++) {
        elag_layer_config *L = &cfg->model.layers[i];
        ELAG_TRY(cfg_layer(c, seq->vals[i], i, L, &name_at[i]));
        int t = (int)L->type;
        count[t]++;
        if (!L->name[0])
            snprintf(L->name, sizeof L->name, "%s%d", elag_layer_kind_get(L->type)->prefix,
                     count[t]);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(cfg->model.layers[j].name, L->name))
                return elag_cfg_fail(c->ctx, name_at[i], ELAG_ERR_INPUT,
                                     "layer name '%s' of model.layers[%zu] is already used by "
                                     "model.layers[%zu]",
                                     L->name, i, j);
    }
    return ELAG_OK;
}

static elag_status cfg_mapping(elag_cfg_conv *c, const elag_ynode *m, const char *prefix)
{
    const elag_cfg_ctx *ctx = c->ctx;
    char path[320], hint[320], got[96];
    for (size_t i = 0; i < m->n; i++) {
        const elag_ynode *key = m->keys[i], *val = m->vals[i];
        snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", key->text);
        ELAG_TRY(elag_cfg_no_duplicate(ctx, m, i, path));
        int idx = strchr(key->text, '.') || !key->text[0] ? -1 : elag_cfg_key_find(path);
        if (idx < 0) {
            if (strchr(key->text, '.') && elag_cfg_key_find(path) >= 0)
                return elag_cfg_fail(ctx, key, ELAG_ERR_INPUT,
                                     "unknown key '%s' (dotted keys work only with --set; nest "
                                     "each part on its own line)",
                                     path);
            return elag_cfg_fail(ctx, key, ELAG_ERR_INPUT, "unknown key '%s'%s", path,
                                 elag_cfg_suggest_key(path, hint, sizeof hint));
        }
        const elag_cfg_key *k = &elag_cfg_keys[idx];
        c->at[idx] = val;
        if (k->kind == ELAG_CFG_SECTION) {
            if (elag_ynode_is_null(val)) continue; /* "prune:" with every key commented out */
            if (val->kind != ELAG_YNODE_MAPPING)
                return elag_cfg_fail(ctx, val, ELAG_ERR_INPUT,
                                     "'%s' expects a mapping of keys, got %s", path,
                                     elag_ynode_describe(val, got, sizeof got));
            ELAG_TRY(cfg_mapping(c, val, path));
        } else if (k->kind == ELAG_CFG_LAYERS) {
            ELAG_TRY(elag_cfg_layers(c, val));
        } else if (k->kind == ELAG_CFG_PRUNE_LAYERS) {
            ELAG_TRY(elag_cfg_prune_layers(c, val));
        } else {
            ELAG_TRY(elag_cfg_leaf(ctx, k, path, val, c->cfg));
        }
    }
    return ELAG_OK;
}

elag_status elag_cfg_convert(elag_cfg_conv *c, const elag_ynode *root)
{
    char got[96];
    if (elag_cfg_n_keys > ELAG_CFG_MAX_KEYS)
        return elag_fail(ELAG_ERR_INTERNAL, "config: key table larger than ELAG_CFG_MAX_KEYS");
    if (elag_ynode_is_null(root)) return ELAG_OK; /* empty file: all defaults */
    if (root->kind != ELAG_YNODE_MAPPING)
        return elag_cfg_fail(c->ctx, root, ELAG_ERR_INPUT,
                             "a config is a mapping of keys (name: ..., train: ...), got %s",
                             elag_ynode_describe(root, got, sizeof got));
    return cfg_mapping(c, root, "");
}
