/*
 * Resolved config -> YAML text, and the config hash. The text lists every key of the
 * key table in table order (so it is deterministic and complete: runs/<name>/config.yaml
 * says exactly what ran), model.layers always explicitly, strings double-quoted and
 * floats in their shortest exact form, so parsing the text gives the same struct.
 * The hash is FNV-1a 64 of that text: equal configs give equal hashes.
 */
#include "config/config_internal.h"
#include "model/layer.h"
#include "core/check.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cfg_text {
    char *p;
    size_t len, cap;
    int oom;
} cfg_text;

static void cfg_put(cfg_text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void cfg_put(cfg_text *t, const char *fmt, ...)
{
    if (t->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = 2 * t->cap + (size_t)n;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* A YAML double-quoted string: safe for any text, and never read as a number/bool. */
static void cfg_put_string(cfg_text *t, const char *s)
{
    cfg_put(t, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            cfg_put(t, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            cfg_put(t, "\\x%02x", ch);
        else
            cfg_put(t, "%c", ch);
    }
    cfg_put(t, "\"");
}

static void cfg_put_double(cfg_text *t, double v)
{
    char buf[40];
    elag_cfg_format_double(v, buf, sizeof buf);
    cfg_put(t, "%s", buf);
}

/* names[v], or NULL when v is not one of them. */
static const char *cfg_enum_name(const char *const *names, int v)
{
    for (int i = 0; names[i]; i++)
        if (i == v) return names[i];
    return NULL;
}

/* One layer key's value as YAML ("3", "[3, 5]", "true", "0.1"). */
static void cfg_put_layer_value(cfg_text *t, const elag_cfg_key *k, const elag_layer_config *L)
{
    const char *field = (const char *)L + k->offset;
    char num[64];
    switch (k->kind) {
    case ELAG_CFG_INT: {
        int v;
        memcpy(&v, field, sizeof v);
        cfg_put(t, "%d", v);
        break;
    }
    case ELAG_CFG_BOOL: {
        int v;
        memcpy(&v, field, sizeof v);
        cfg_put(t, "%s", v ? "true" : "false");
        break;
    }
    case ELAG_CFG_INT2: {
        int v[2];
        memcpy(v, field, sizeof v);
        cfg_put(t, "[%d, %d]", v[0], v[1]);
        break;
    }
    case ELAG_CFG_FLOAT: {
        double v;
        memcpy(&v, field, sizeof v);
        elag_cfg_format_double(v, num, sizeof num);
        cfg_put(t, "%s", num);
        break;
    }
    default: cfg_put(t, "null"); break;
    }
}

/* Every layer with its type, name and each key its kind takes, so that parsing the text
 * again gives the same layers whatever the defaults. */
static elag_status cfg_put_layers(cfg_text *t, const elag_config *cfg, int indent)
{
    if (cfg->model.n_layers < 1 || cfg->model.n_layers > ELAG_MAX_LAYERS)
        return elag_fail(ELAG_ERR_INPUT, "config: model.n_layers is %d, not in [1, %d]",
                         cfg->model.n_layers, ELAG_MAX_LAYERS);
    cfg_put(t, "%*slayers:\n", indent, "");
    for (int i = 0; i < cfg->model.n_layers; i++) {
        const elag_layer_config *L = &cfg->model.layers[i];
        const elag_layer_kind_def *kind = elag_layer_kind_get(L->type);
        if (!kind)
            return elag_fail(ELAG_ERR_INPUT, "config: model.layers[%d].type holds %d", i,
                             (int)L->type);
        cfg_put(t, "%*s- {type: %s, name: ", indent + 2, "", kind->name);
        cfg_put_string(t, L->name);
        for (int q = 0; kind->keys[q]; q++) {
            for (size_t j = 2; j < elag_cfg_n_layer_keys; j++) {
                const elag_cfg_key *k = &elag_cfg_layer_keys[j];
                if (strcmp(k->path, kind->keys[q])) continue;
                cfg_put(t, ", %s: ", k->path);
                cfg_put_layer_value(t, k, L);
            }
        }
        cfg_put(t, "}\n");
    }
    return ELAG_OK;
}

/* prune.layers: one flow mapping per item with the keys it gave (numbers not given are
 * -1 and left out), or [] when there is none. */
static elag_status cfg_put_prune_layers(cfg_text *t, const elag_config *cfg, int indent)
{
    int n = cfg->prune.n_layers;
    if (n < 0 || n > ELAG_MAX_PRUNE_LAYERS)
        return elag_fail(ELAG_ERR_INPUT, "config: prune.n_layers is %d, not in [0, %d]", n,
                         ELAG_MAX_PRUNE_LAYERS);
    if (n == 0) {
        cfg_put(t, "%*slayers: []\n", indent, "");
        return ELAG_OK;
    }
    cfg_put(t, "%*slayers:\n", indent, "");
    for (int i = 0; i < n; i++) {
        const elag_prune_layer_config *o = &cfg->prune.layers[i];
        cfg_put(t, "%*s- {name: ", indent + 2, "");
        cfg_put_string(t, o->name);
        if (o->exclude) cfg_put(t, ", exclude: true");
        const struct {
            const char *key;
            double v;
        } nums[] = {{"target", o->target}, {"min", o->min}, {"max", o->max}};
        for (size_t j = 0; j < sizeof nums / sizeof nums[0]; j++) {
            if (nums[j].v < 0) continue;
            cfg_put(t, ", %s: ", nums[j].key);
            cfg_put_double(t, nums[j].v);
        }
        cfg_put(t, "}\n");
    }
    return ELAG_OK;
}

static elag_status cfg_put_key(cfg_text *t, const elag_cfg_key *k, const elag_config *cfg)
{
    int depth = 0;
    for (const char *p = k->path; *p; p++) depth += *p == '.';
    const char *last = strrchr(k->path, '.');
    last = last ? last + 1 : k->path;
    int indent = 2 * depth;
    if (k->kind == ELAG_CFG_SECTION) {
        cfg_put(t, "%*s%s:\n", indent, "", last);
        return ELAG_OK;
    }
    if (k->kind == ELAG_CFG_UNSUPPORTED || k->offset == ELAG_CFG_NO_FIELD) return ELAG_OK;
    if (k->kind == ELAG_CFG_LAYERS) return cfg_put_layers(t, cfg, indent);
    if (k->kind == ELAG_CFG_PRUNE_LAYERS) return cfg_put_prune_layers(t, cfg, indent);
    const char *field = (const char *)cfg + k->offset;
    if (k->kind == ELAG_CFG_NAME && !field[0]) return ELAG_OK; /* no preset: layers say it all */

    cfg_put(t, "%*s%s: ", indent, "", last);
    switch (k->kind) {
    case ELAG_CFG_INT:
    case ELAG_CFG_BOOL: {
        int v;
        memcpy(&v, field, sizeof v);
        if (k->kind == ELAG_CFG_BOOL)
            cfg_put(t, "%s", v ? "true" : "false");
        else
            cfg_put(t, "%d", v);
        break;
    }
    case ELAG_CFG_LONG: {
        long v;
        memcpy(&v, field, sizeof v);
        cfg_put(t, "%ld", v);
        break;
    }
    case ELAG_CFG_U64: {
        uint64_t v;
        memcpy(&v, field, sizeof v);
        cfg_put(t, "%" PRIu64, v);
        break;
    }
    case ELAG_CFG_FLOAT: {
        double v;
        memcpy(&v, field, sizeof v);
        cfg_put_double(t, v);
        break;
    }
    case ELAG_CFG_STRING: cfg_put_string(t, field); break;
    case ELAG_CFG_NAME: cfg_put(t, "%s", field); break;
    case ELAG_CFG_ENUM: {
        int v;
        memcpy(&v, field, sizeof v);
        const char *name = cfg_enum_name(k->names, v);
        if (!name) return elag_fail(ELAG_ERR_INPUT, "config: %s holds %d", k->path, v);
        cfg_put(t, "%s", name);
        break;
    }
    case ELAG_CFG_WHEN: {
        elag_when w;
        memcpy(&w, field, sizeof w);
        if (w.is_fraction)
            cfg_put_double(t, w.value); /* always with '.' or 'e': read back as a fraction */
        else
            cfg_put(t, "%.0f", w.value);
        break;
    }
    case ELAG_CFG_INT2: {
        int v[2];
        memcpy(v, field, sizeof v);
        cfg_put(t, "[%d, %d]", v[0], v[1]);
        break;
    }
    case ELAG_CFG_PAIR: {
        double a, b;
        memcpy(&a, field, sizeof a);
        memcpy(&b, (const char *)cfg + k->size, sizeof b);
        cfg_put(t, "[");
        cfg_put_double(t, a);
        cfg_put(t, ", ");
        cfg_put_double(t, b);
        cfg_put(t, "]");
        break;
    }
    default: return elag_fail(ELAG_ERR_INTERNAL, "config: bad key table entry %s", k->path);
    }
    cfg_put(t, "\n");
    return ELAG_OK;
}

elag_status elag_config_to_yaml(const elag_config *cfg, char **out)
{
    if (!cfg || !out) return elag_fail(ELAG_ERR_USAGE, "elag_config_to_yaml: bad arguments");
    *out = NULL;
    cfg_text t = {malloc(2048), 0, 2048, 0};
    if (!t.p) return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
    t.p[0] = '\0';
    for (size_t i = 0; i < elag_cfg_n_keys; i++) {
        elag_status st = cfg_put_key(&t, &elag_cfg_keys[i], cfg);
        if (st) {
            free(t.p);
            return st;
        }
    }
    if (t.oom) {
        free(t.p);
        return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
    }
    *out = t.p;
    return ELAG_OK;
}

elag_status elag_config_hash(const elag_config *cfg, char out[17])
{
    char *text;
    ELAG_TRY(elag_config_to_yaml(cfg, &text));
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64 offset basis */
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ull; /* FNV 64 prime */
    }
    free(text);
    snprintf(out, 17, "%016" PRIx64, h);
    return ELAG_OK;
}
