/*
 * elag/sensitivity.h, the second half: the --levels parser, the results' accessors, per-layer
 * targets for a global budget chosen from the measured curves (elag_sensitivity_suggest),
 * and the files of a run: sensitivity.json (every
 * figure), sensitivity.csv (one row per layer and level) and suggested_prune_layers.yaml (a
 * `prune:` mapping whose `layers:` list the config parser reads as it is). The names of the
 * figures are the same in all three and in the CLI's table: level, sparsity, test_accuracy,
 * test_loss, accuracy_drop, suggested_target.
 */
#define _POSIX_C_SOURCE 200809L
#include "api/api.h"
#include "api/sensitivity_internal.h"

#include "core/check.h"
#include "io/atomic.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Targets are written with this many decimals (the YAML, the JSON and the CSV agree). */
#define TARGET_SCALE 10000.0

static double round_target(double t)
{
    return round(t * TARGET_SCALE) / TARGET_SCALE;
}

elag_status elag_sensitivity_check_levels(const double *levels, int n)
{
    if (n < 1 || n > ELAG_SENSITIVITY_MAX_LEVELS)
        return elag_fail(ELAG_ERR_USAGE, "--levels: %d levels (1 to %d)", n,
                         ELAG_SENSITIVITY_MAX_LEVELS);
    for (int j = 0; j < n; j++) {
        if (!(levels[j] > 0 && levels[j] < 1))
            return elag_fail(ELAG_ERR_USAGE, "--levels: %g is not in (0, 1) (a layer's sparsity)",
                             levels[j]);
        if (j > 0 && levels[j] <= levels[j - 1])
            return elag_fail(ELAG_ERR_USAGE, "--levels: %g after %g: levels must increase",
                             levels[j], levels[j - 1]);
    }
    return ELAG_OK;
}

elag_status elag_sensitivity_levels_parse(const char *text, double *levels, int max, int *n)
{
    if (!text || !levels || !n || max < 1)
        return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_levels_parse: bad arguments");
    *n = 0;
    for (const char *p = text;; p++) {
        size_t len = strcspn(p, ",");
        char item[64];
        if (len == 0 || len >= sizeof item)
            return elag_fail(ELAG_ERR_USAGE, "--levels '%s': %s item", text,
                             len ? "a too long" : "an empty");
        memcpy(item, p, len);
        item[len] = '\0';
        char *end;
        errno = 0;
        double v = strtod(item, &end);
        while (*end == ' ') end++;
        if (end == item || *end != '\0' || errno != 0 || !isfinite(v))
            return elag_fail(ELAG_ERR_USAGE, "--levels '%s': '%s' is not a number", text, item);
        if (*n == max)
            return elag_fail(ELAG_ERR_USAGE, "--levels '%s': more than %d levels", text, max);
        levels[(*n)++] = v;
        p += len;
        if (*p == '\0') break;
    }
    elag_status st = elag_sensitivity_check_levels(levels, *n);
    if (st != ELAG_OK) { /* name the list as given */
        char msg[256];
        snprintf(msg, sizeof msg, "%s", elag_last_error() + strlen("--levels: "));
        return elag_fail(st, "--levels '%s': %s", text, msg);
    }
    return ELAG_OK;
}

elag_status elag_sensitivity_check_budget(const elag_sensitivity_t *s)
{
    const double total = (double)s->info.params_prunable;
    const int k = s->info.n_levels;
    double reach = 0;
    for (int i = 0; i < s->info.n_layers; i++) reach += s->levels[k] * (double)s->layers[i].params;
    if (!(s->info.budget > 0 && s->info.budget < 1))
        return elag_fail(ELAG_ERR_USAGE,
                         "budget %g: a global sparsity in (0, 1) is needed "
                         "(--budget S)",
                         s->info.budget);
    if (total <= 0 || reach + 0.5 < s->info.budget * total)
        return elag_fail(ELAG_ERR_INPUT,
                         "budget %.4g: the analysed layers reach at most %.4f of the %lld "
                         "prunable weights at level %.4g (add layers, raise the highest level "
                         "or lower --budget)",
                         s->info.budget, total > 0 ? reach / total : 0,
                         (long long)s->info.params_prunable, s->levels[k]);
    return ELAG_OK;
}

elag_status elag_sensitivity_suggest(elag_sensitivity_t *s)
{
    ELAG_TRY(elag_sensitivity_check_budget(s));
    const int nl = s->info.n_layers, k = s->info.n_levels;
    const double total = (double)s->info.params_prunable;
    const double need = s->info.budget * total;
    int cur[ELAG_MAX_PRUNABLE] = {0};
    for (int i = 0; i < nl; i++) s->layers[i].suggested_target = 0;
    double pruned = 0;
    while (pruned < need) {
        int bi = -1, bj = -1;
        double best = INFINITY, best_dw = 0;
        for (int i = 0; i < nl; i++) {
            const elag_sensitivity_point *p = s->points[i];
            for (int j = cur[i] + 1; j <= k; j++) {
                double dw = (s->levels[j] - s->levels[cur[i]]) * (double)s->layers[i].params;
                if (dw <= 0) continue;
                double cost = (p[cur[i]].test_accuracy - p[j].test_accuracy) / dw;
                if (cost < best) best = cost, bi = i, bj = j, best_dw = dw;
            }
        }
        ELAG_ASSERT(bi >= 0); /* the reach check above guarantees a move */
        double lo = s->levels[cur[bi]], hi = s->levels[bj];
        if (pruned + best_dw >= need) { /* the last move, part way */
            double frac = (need - pruned) / best_dw;
            s->layers[bi].suggested_target = lo + frac * (hi - lo);
            pruned = need;
            break;
        }
        cur[bi] = bj;
        s->layers[bi].suggested_target = hi;
        pruned += best_dw;
    }
    double zeros = 0;
    for (int i = 0; i < nl; i++) {
        double t = round_target(s->layers[i].suggested_target);
        if (t >= 1.0) t = 1.0 - 1.0 / TARGET_SCALE; /* prune.layers targets are below 1 */
        s->layers[i].suggested_target = t;
        zeros += t * (double)s->layers[i].params;
    }
    s->info.suggested_sparsity = zeros / total;
    return ELAG_OK;
}

static int analysed(const elag_sensitivity_t *s, const char *name)
{
    for (int i = 0; i < s->info.n_layers; i++)
        if (strcmp(s->layers[i].name, name) == 0) return i;
    return -1;
}

static elag_status write_text(const char *dir, const char *name, const char *text)
{
    char path[ELAG_PATH_LEN + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return elag_atomic_write(path, text, strlen(text));
}

static cJSON *point_json(const elag_sensitivity_point *p)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "level", p->level);
    cJSON_AddNumberToObject(o, "sparsity", p->sparsity);
    cJSON_AddNumberToObject(o, "test_accuracy", p->test_accuracy);
    cJSON_AddNumberToObject(o, "test_loss", p->test_loss);
    cJSON_AddNumberToObject(o, "accuracy_drop", p->accuracy_drop);
    return o;
}

static elag_status write_json(const elag_sensitivity_t *s)
{
    const elag_sensitivity_info *in = &s->info;
    cJSON *o = cJSON_CreateObject();
    if (!o) return elag_fail(ELAG_ERR_NOMEM, "sensitivity: out of host memory");
    cJSON_AddStringToObject(o, "input", s->input);
    cJSON_AddStringToObject(o, "model", in->model);
    cJSON_AddStringToObject(o, "name", in->name);
    cJSON_AddStringToObject(o, "device", in->device);
    cJSON_AddStringToObject(o, "criterion", s->criterion);
    cJSON_AddStringToObject(o, "granularity", in->granularity);
    cJSON_AddNumberToObject(o, "finetune_steps", (double)in->finetune_steps);
    cJSON_AddNumberToObject(o, "finetune_lr", in->finetune_lr);
    cJSON *lv = cJSON_AddArrayToObject(o, "levels");
    for (int j = 1; j <= in->n_levels; j++)
        cJSON_AddItemToArray(lv, cJSON_CreateNumber(s->levels[j]));
    cJSON_AddNumberToObject(o, "dense_accuracy", in->dense_accuracy);
    cJSON_AddNumberToObject(o, "dense_loss", in->dense_loss);
    cJSON_AddNumberToObject(o, "baseline_accuracy", in->baseline_accuracy);
    cJSON_AddNumberToObject(o, "baseline_loss", in->baseline_loss);
    cJSON_AddNumberToObject(o, "params_prunable", (double)in->params_prunable);
    cJSON_AddNumberToObject(o, "budget", in->budget);
    cJSON_AddNumberToObject(o, "suggested_sparsity", in->suggested_sparsity);
    cJSON *layers = cJSON_AddArrayToObject(o, "layers");
    for (int i = 0; i < in->n_layers; i++) {
        const elag_sensitivity_layer_info *l = &s->layers[i];
        cJSON *lo = cJSON_CreateObject();
        cJSON_AddStringToObject(lo, "name", l->name);
        cJSON *shape = cJSON_AddArrayToObject(lo, "shape");
        for (int d = 0; d < s->ndim[i]; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)s->shape[i][d]));
        cJSON_AddNumberToObject(lo, "params", (double)l->params);
        cJSON_AddNumberToObject(lo, "sparsity", l->sparsity);
        cJSON_AddNumberToObject(lo, "suggested_target", l->suggested_target);
        cJSON *res = cJSON_AddArrayToObject(lo, "results");
        for (int j = 0; j <= in->n_levels; j++)
            cJSON_AddItemToArray(res, point_json(&s->points[i][j]));
        cJSON_AddItemToArray(layers, lo);
    }
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return elag_fail(ELAG_ERR_NOMEM, "sensitivity: out of host memory");
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (!line) {
        free(text);
        return elag_fail(ELAG_ERR_NOMEM, "sensitivity: out of host memory");
    }
    line[n] = '\n', line[n + 1] = '\0';
    elag_status st = write_text(in->out_dir, "sensitivity.json", line);
    free(line);
    return st;
}

/* A growing text buffer for the CSV and the YAML. */
typedef struct text_buf {
    char *p;
    size_t len, cap;
    int oom;
} text_buf;

static void put(text_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void put(text_buf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q, b->cap = cap;
    }
}

static elag_status write_buf(const char *dir, const char *name, text_buf *b)
{
    elag_status st = b->oom ? elag_fail(ELAG_ERR_NOMEM, "sensitivity: out of host memory")
                            : write_text(dir, name, b->p ? b->p : "");
    free(b->p);
    return st;
}

static elag_status write_csv(const elag_sensitivity_t *s)
{
    text_buf b = {0};
    put(&b, "layer,params,level,sparsity,test_accuracy,test_loss,accuracy_drop\n");
    for (int i = 0; i < s->info.n_layers; i++)
        for (int j = 0; j <= s->info.n_levels; j++) {
            const elag_sensitivity_point *p = &s->points[i][j];
            put(&b, "%s,%lld,%.6g,%.6f,%.6f,%.6f,%.6f\n", s->layers[i].name,
                (long long)s->layers[i].params, p->level, p->sparsity, p->test_accuracy,
                p->test_loss, p->accuracy_drop);
        }
    return write_buf(s->info.out_dir, "sensitivity.csv", &b);
}

/* The prune.layers items: the layers with a target, in model order, named exactly (a layer
 * name is a glob that matches only itself unless it holds *?[), then one catch-all item
 * that keeps every other prunable layer dense, when there is one. Returns the item count. */
static int yaml_items(const elag_sensitivity_t *s, text_buf *b, int flow)
{
    int items = 0, dense = 0;
    const char *end = flow ? "" : "\n";
    for (int a = 0; a < s->n_all; a++) {
        int i = analysed(s, s->all_names[a]);
        double t = i >= 0 ? s->layers[i].suggested_target : 0;
        if (t <= 0) {
            dense++;
            continue;
        }
        put(b, "%s{name: \"%s\", target: %.4f}%s", flow ? (items ? ", " : "") : "    - ",
            s->all_names[a], t, end);
        items++;
    }
    if (dense) {
        put(b, "%s{name: \"*\", exclude: true}%s", flow ? (items ? ", " : "") : "    - ", end);
        items++;
    }
    return items;
}

static elag_status write_yaml(const elag_sensitivity_t *s)
{
    const elag_sensitivity_info *in = &s->info;
    text_buf b = {0};
    put(&b,
        "# elag sensitivity of %s (%s):\n"
        "# per-layer sparsity targets for a global budget of %.4g of its %lld prunable\n"
        "# weights, chosen from the measured curves in sensitivity.json; together they\n"
        "# reach %.4f. An item {name: \"*\", exclude: true}, when there is one, keeps the\n"
        "# other prunable layers dense. Paste `layers:` under the `prune:` section of a\n"
        "# config (with e.g. method: gmp, granularity: %s), or pass the list with\n"
        "#   --set 'prune.layers=[",
        in->name, in->model, in->budget, (long long)in->params_prunable, in->suggested_sparsity,
        in->granularity);
    int items = yaml_items(s, &b, 1);
    put(&b, "]'\n");
    if (items > ELAG_MAX_PRUNE_LAYERS) /* more layers with a target than a config takes */
        put(&b, "# NOTE: %d items, but prune.layers takes at most %d: merge some (globs)\n", items,
            ELAG_MAX_PRUNE_LAYERS);
    put(&b, "prune:\n  layers:\n");
    yaml_items(s, &b, 0);
    return write_buf(in->out_dir, "suggested_prune_layers.yaml", &b);
}

elag_status elag_sensitivity_write_files(const elag_sensitivity_t *s)
{
    ELAG_TRY(write_json(s));
    ELAG_TRY(write_csv(s));
    if (s->info.budget > 0) return write_yaml(s);
    char path[ELAG_PATH_LEN + 64]; /* no suggestion: none from an earlier run either */
    snprintf(path, sizeof path, "%s/suggested_prune_layers.yaml", s->info.out_dir);
    if (unlink(path) != 0 && errno != ENOENT)
        return elag_fail(ELAG_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return ELAG_OK;
}

void elag_sensitivity_free(elag_sensitivity_t *s)
{
    free(s);
}

elag_status elag_sensitivity_describe(const elag_sensitivity_t *s, elag_sensitivity_info *info)
{
    if (!s || !info) return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_describe: NULL argument");
    ELAG_TRY(elag_api_check_version(info->version, ELAG_SENSITIVITY_INFO_VERSION,
                                    "elag_sensitivity_info"));
    *info = s->info;
    return ELAG_OK;
}

elag_status elag_sensitivity_layer(const elag_sensitivity_t *s, int i,
                                   elag_sensitivity_layer_info *out)
{
    if (!s || !out || i < 0 || i >= s->info.n_layers)
        return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_layer: no layer %d", i);
    *out = s->layers[i];
    return ELAG_OK;
}

elag_status elag_sensitivity_result(const elag_sensitivity_t *s, int i, int j,
                                    elag_sensitivity_point *out)
{
    if (!s || !out || i < 0 || i >= s->info.n_layers || j < 0 || j > s->info.n_levels)
        return elag_fail(ELAG_ERR_USAGE, "elag_sensitivity_result: no layer %d level %d", i, j);
    *out = s->points[i][j];
    return ELAG_OK;
}
