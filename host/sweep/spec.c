/*
 * Sweep file -> the list of runs (docs/sweeps.md).
 *
 *   base: ../fashion_mlp_gmp.yaml          # relative to the sweep file
 *   set:  {train.epochs: 1}                # fixed overrides, every run
 *   grid: {prune.target: [0.5, 0.9], seed: [1, 2]}   # cartesian product
 *   zip:  {train.optimizer.lr: [0.1, 0.05], train.batch_size: [256, 128]}  # paired
 *   runs: [{prune.method: none}, {prune.method: gmp}]  # explicit override sets
 *
 * The runs are grid x zip x runs: run t = (g, z, r) with r fastest, then z, then g; the
 * grid point g counts like nested loops over the grid keys in file order (last key
 * fastest). A missing axis counts as one empty element. Overrides apply as set:, grid,
 * zip, runs; a key may appear on one of those only. The file is parsed with the config
 * module's YAML tree, so every message can point at a line and column; each run's config
 * is resolved with elag_config_load, so values get exactly the checks of `--set`.
 */
#define _POSIX_C_SOURCE 200809L
#include "sweep/sweep.h"

#include "core/check.h"
#include "io/atomic.h"
#include "sweep/sweep_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One override that set: or an axis contributes, and where it was written. */
typedef struct spec_item {
    char *spec;           /* "key=value" */
    const elag_ynode *at; /* the value in the sweep file */
    const char *axis;     /* "set", "grid", "zip", "runs" */
    const char *key;      /* points into spec's owner list of keys */
} spec_item;

typedef struct spec_list {
    spec_item *v;
    int n, cap;
} spec_list;

/* A key named in the file, to keep each key on one axis. */
typedef struct spec_claim {
    const char *key;
    const char *axis;
    const elag_ynode *at;
} spec_claim;

typedef struct spec_ctx {
    elag_cfg_ctx yc; /* origin = the sweep file, for positioned messages */
    elag_sweep *sw;
    spec_list set;
    spec_list *grid; /* per grid key, its values */
    int n_grid;
    spec_list *zip; /* per zip key, its values */
    int n_zip, zip_len;
    spec_list *runs; /* per runs entry, its overrides */
    int n_runs;
    spec_claim *claims;
    int n_claims, cap_claims;
} spec_ctx;

/* ---- items and claims ---- */

static elag_status list_add(spec_list *l, const char *key, const elag_ynode *val,
                            const char *axis)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        spec_item *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
        l->v = v;
        l->cap = cap;
    }
    elag_sweep_buf b = {0};
    elag_sweep_buf_puts(&b, key);
    elag_sweep_buf_puts(&b, "=");
    elag_sweep_flow(&b, val);
    if (b.oom) {
        free(b.p);
        return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    }
    l->v[l->n++] = (spec_item){.spec = b.p, .at = val, .axis = axis, .key = key};
    return ELAG_OK;
}

static void list_free(spec_list *l)
{
    for (int i = 0; l && i < l->n; i++) free(l->v[i].spec);
    if (l) free(l->v);
}

/* Checks that `key` (a mapping key node on `axis`) names a config key and is on no
 * other axis; axis keys are added to sw->keys once. */
static elag_status claim_key(spec_ctx *c, const elag_ynode *k, const char *axis)
{
    const char *key = k->text;
    if (elag_cfg_key_find(key) < 0) {
        char hint[320];
        return elag_cfg_fail(&c->yc, k, ELAG_ERR_INPUT, "%s: unknown key '%s'%s", axis, key,
                             elag_cfg_suggest_key(key, hint, sizeof hint));
    }
    for (int i = 0; i < c->n_claims; i++) {
        if (strcmp(c->claims[i].key, key) != 0) continue;
        if (strcmp(c->claims[i].axis, axis) != 0)
            return elag_cfg_fail(&c->yc, k, ELAG_ERR_INPUT,
                                 "%s: '%s' is already on %s: (line %d); a key can be on one "
                                 "axis only",
                                 axis, key, c->claims[i].axis, c->claims[i].at->line);
        if (strcmp(axis, "runs") != 0)
            return elag_cfg_fail(&c->yc, k, ELAG_ERR_INPUT, "%s: duplicate key '%s' (first at "
                                 "line %d)", axis, key, c->claims[i].at->line);
        return ELAG_OK; /* the same key in another runs: entry */
    }
    if (c->n_claims == c->cap_claims) {
        int cap = c->cap_claims ? 2 * c->cap_claims : 16;
        spec_claim *v = realloc(c->claims, (size_t)cap * sizeof *v);
        if (!v) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
        c->claims = v;
        c->cap_claims = cap;
    }
    c->claims[c->n_claims++] = (spec_claim){key, axis, k};
    if (strcmp(axis, "set") != 0) {
        elag_sweep *sw = c->sw;
        char **keys = realloc(sw->keys, (size_t)(sw->n_keys + 1) * sizeof *keys);
        if (!keys) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
        sw->keys = keys;
        if (!(keys[sw->n_keys] = strdup(key))) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
        sw->n_keys++;
    }
    if (strcmp(key, "train.threads") == 0) c->sw->sets_threads = 1;
    if (strcmp(key, "device") == 0) c->sw->sets_device = 1;
    return ELAG_OK;
}

static elag_status expect_mapping(spec_ctx *c, const elag_ynode *n, const char *what,
                                  const char *example)
{
    if (n->kind == ELAG_YNODE_MAPPING) return ELAG_OK;
    char got[96];
    return elag_cfg_fail(&c->yc, n, ELAG_ERR_INPUT, "%s expects a mapping of dotted keys (%s), "
                         "got %s", what, example, elag_ynode_describe(n, got, sizeof got));
}

/* ---- the sections ---- */

static elag_status parse_set(spec_ctx *c, const elag_ynode *m)
{
    ELAG_TRY(expect_mapping(c, m, "set:", "train.epochs: 1"));
    for (size_t i = 0; i < m->n; i++) {
        ELAG_TRY(claim_key(c, m->keys[i], "set"));
        ELAG_TRY(list_add(&c->set, m->keys[i]->text, m->vals[i], "set"));
    }
    return ELAG_OK;
}

/* grid: and zip: share a shape: key -> non-empty list. */
static elag_status parse_lists(spec_ctx *c, const elag_ynode *m, const char *axis,
                               spec_list **out, int *n_out)
{
    if (!elag_ynode_is_null(m)) ELAG_TRY(expect_mapping(c, m, axis, "prune.target: [0.5, 0.9]"));
    if (m->n == 0)
        return elag_cfg_fail(&c->yc, m, ELAG_ERR_INPUT, "%s: empty axis (give at least one key "
                             "with a list of values, or leave %s: out)", axis, axis);
    *out = calloc(m->n, sizeof **out);
    if (!*out) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    *n_out = (int)m->n;
    for (size_t i = 0; i < m->n; i++) {
        const elag_ynode *k = m->keys[i], *v = m->vals[i];
        ELAG_TRY(claim_key(c, k, axis));
        if (v->kind != ELAG_YNODE_SEQUENCE) {
            char got[96];
            return elag_cfg_fail(&c->yc, v, ELAG_ERR_INPUT, "%s: '%s' expects a list of values "
                                 "([a, b, ...]), got %s", axis, k->text,
                                 elag_ynode_describe(v, got, sizeof got));
        }
        if (v->n == 0)
            return elag_cfg_fail(&c->yc, v, ELAG_ERR_INPUT, "%s: '%s' has an empty list of "
                                 "values (empty axis)", axis, k->text);
        for (size_t j = 0; j < v->n; j++) ELAG_TRY(list_add(&(*out)[i], k->text, v->vals[j], axis));
    }
    return ELAG_OK;
}

static elag_status parse_zip(spec_ctx *c, const elag_ynode *m)
{
    ELAG_TRY(parse_lists(c, m, "zip", &c->zip, &c->n_zip));
    c->zip_len = c->zip[0].n;
    for (int i = 1; i < c->n_zip; i++)
        if (c->zip[i].n != c->zip_len)
            return elag_cfg_fail(&c->yc, m->vals[i], ELAG_ERR_INPUT, "zip: '%s' has %d values "
                                 "but '%s' (line %d) has %d; zip pairs lists of equal length",
                                 m->keys[i]->text, c->zip[i].n, m->keys[0]->text,
                                 m->keys[0]->line, c->zip_len);
    return ELAG_OK;
}

static elag_status parse_runs(spec_ctx *c, const elag_ynode *s)
{
    if (s->kind != ELAG_YNODE_SEQUENCE && !elag_ynode_is_null(s)) {
        char got[96];
        return elag_cfg_fail(&c->yc, s, ELAG_ERR_INPUT, "runs: expects a list of override "
                             "mappings (- {prune.method: gmp}), got %s",
                             elag_ynode_describe(s, got, sizeof got));
    }
    if (s->n == 0)
        return elag_cfg_fail(&c->yc, s, ELAG_ERR_INPUT, "runs: empty axis (list at least one "
                             "override mapping, or leave runs: out)");
    c->runs = calloc(s->n, sizeof *c->runs);
    if (!c->runs) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    c->n_runs = (int)s->n;
    for (size_t i = 0; i < s->n; i++) {
        const elag_ynode *m = s->vals[i];
        if (elag_ynode_is_null(m)) continue; /* "- {}" or "-": the base as it is */
        ELAG_TRY(expect_mapping(c, m, "runs: item", "prune.method: gmp"));
        for (size_t j = 0; j < m->n; j++) {
            for (size_t k = 0; k < j; k++)
                if (strcmp(m->keys[k]->text, m->keys[j]->text) == 0)
                    return elag_cfg_fail(&c->yc, m->keys[j], ELAG_ERR_INPUT, "runs: duplicate "
                                         "key '%s' (first at line %d)", m->keys[j]->text,
                                         m->keys[k]->line);
            ELAG_TRY(claim_key(c, m->keys[j], "runs"));
            ELAG_TRY(list_add(&c->runs[i], m->keys[j]->text, m->vals[j], "runs"));
        }
    }
    return ELAG_OK;
}

static elag_status parse_base(spec_ctx *c, const elag_ynode *v)
{
    if (v->kind != ELAG_YNODE_SCALAR || elag_ynode_is_null(v)) {
        char got[96];
        return elag_cfg_fail(&c->yc, v, ELAG_ERR_INPUT, "base: expects the path of a config "
                             "file, got %s", elag_ynode_describe(v, got, sizeof got));
    }
    elag_sweep *sw = c->sw;
    const char *slash = strrchr(sw->path, '/');
    if (v->text[0] == '/' || !slash)
        snprintf(sw->base, sizeof sw->base, "%s", v->text);
    else
        snprintf(sw->base, sizeof sw->base, "%.*s/%s", (int)(slash - sw->path), sw->path, v->text);
    struct stat sb;
    if (stat(sw->base, &sb) != 0)
        return elag_cfg_fail(&c->yc, v, ELAG_ERR_INPUT, "base config '%s' not found (%s): %s",
                             v->text, sw->base, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return elag_cfg_fail(&c->yc, v, ELAG_ERR_INPUT, "base config '%s' is a folder (%s)",
                             v->text, sw->base);
    return ELAG_OK;
}

/* export: {format: dense|csr|bell|bell:B|auto, thin: BOOL}: how each run is exported for
 * its inference figures (`elag export` takes the same words). */
static elag_status parse_export(spec_ctx *c, const elag_ynode *v)
{
    static const char *const keys[] = {"format", "thin"};
    if (v->kind != ELAG_YNODE_MAPPING)
        return elag_cfg_fail(&c->yc, v, ELAG_ERR_INPUT, "export: expects a mapping "
                             "{format: dense|csr|bell[:B]|auto, thin: true|false}");
    for (size_t i = 0; i < v->n; i++) {
        const char *k = v->keys[i]->text;
        const elag_ynode *x = v->vals[i];
        if (strcmp(k, "format") && strcmp(k, "thin")) {
            const char *near = elag_cfg_suggest(k, keys, ELAG_ARRAY_LEN(keys));
            char hint[64] = "";
            if (near) snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
            return elag_cfg_fail(&c->yc, v->keys[i], ELAG_ERR_INPUT, "unknown export key "
                                 "'%s'%s; export has format, thin", k, hint);
        }
        const char *t = x->kind == ELAG_YNODE_SCALAR ? x->text : "";
        if (!strcmp(k, "thin")) {
            if (!strcmp(t, "true")) c->sw->export_thin = 1;
            else if (!strcmp(t, "false")) c->sw->export_thin = 0;
            else
                return elag_cfg_fail(&c->yc, x, ELAG_ERR_INPUT, "export: thin expects true or "
                                     "false, got '%s'", t);
            continue;
        }
        char *end = NULL;
        long b = !strncmp(t, "bell:", 5) ? strtol(t + 5, &end, 10) : 0;
        int ok = !strcmp(t, "dense") || !strcmp(t, "csr") || !strcmp(t, "bell") ||
                 !strcmp(t, "auto") || (end && end != t + 5 && !*end && b >= 1 && b <= 256);
        if (!ok)
            return elag_cfg_fail(&c->yc, x, ELAG_ERR_INPUT, "export: format expects dense, "
                                 "csr, bell, bell:B (1..256) or auto, got '%s'", t);
        snprintf(c->sw->export_format, sizeof c->sw->export_format, "%s", t);
    }
    return ELAG_OK;
}

static elag_status parse_root(spec_ctx *c, const elag_ynode *root)
{
    if (elag_ynode_is_null(root) || root->kind != ELAG_YNODE_MAPPING)
        return elag_cfg_fail(&c->yc, root->line ? root : NULL, ELAG_ERR_INPUT,
                             "a sweep file is a mapping with base: and axes (grid:, zip:, "
                             "runs:)");
    static const char *const known[] = {"base", "name", "set", "grid", "zip", "runs", "export"};
    const elag_ynode *base = NULL;
    for (size_t i = 0; i < root->n; i++) {
        const char *k = root->keys[i]->text;
        size_t w = 0;
        while (w < ELAG_ARRAY_LEN(known) && strcmp(known[w], k) != 0) w++;
        if (w == ELAG_ARRAY_LEN(known)) {
            const char *near = elag_cfg_suggest(k, known, ELAG_ARRAY_LEN(known));
            char hint[64] = "";
            if (near) snprintf(hint, sizeof hint, " (did you mean '%s'?)", near);
            return elag_cfg_fail(&c->yc, root->keys[i], ELAG_ERR_INPUT, "unknown sweep key "
                                 "'%s'%s; a sweep has base, name, set, grid, zip, runs, export", k,
                                 hint);
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(root->keys[j]->text, k) == 0)
                return elag_cfg_fail(&c->yc, root->keys[i], ELAG_ERR_INPUT, "duplicate key "
                                     "'%s' (first at line %d)", k, root->keys[j]->line);
        if (strcmp(k, "base") == 0) base = root->vals[i];
    }
    if (!base) return elag_cfg_fail(&c->yc, root, ELAG_ERR_INPUT, "missing base: (the config "
                                    "file every run starts from, relative to the sweep file)");
    ELAG_TRY(parse_base(c, base));
    const elag_ynode *v;
    if ((v = elag_ynode_get(root, "name")) != NULL) {
        if (v->kind != ELAG_YNODE_SCALAR || !v->text[0] || strchr(v->text, '/') ||
            strlen(v->text) >= ELAG_NAME_LEN)
            return elag_cfg_fail(&c->yc, v, ELAG_ERR_INPUT, "name: expects a short name "
                                 "without '/'");
        snprintf(c->sw->name, sizeof c->sw->name, "%s", v->text);
    }
    if ((v = elag_ynode_get(root, "export")) != NULL) ELAG_TRY(parse_export(c, v));
    /* "set:" with every line commented out means no overrides; an axis written with
     * nothing in it ("grid:", "grid: {}", "runs: []") is an empty axis: an error. */
    if ((v = elag_ynode_get(root, "set")) != NULL && !elag_ynode_is_null(v)) ELAG_TRY(parse_set(c, v));
    if ((v = elag_ynode_get(root, "grid")) != NULL)
        ELAG_TRY(parse_lists(c, v, "grid", &c->grid, &c->n_grid));
    if ((v = elag_ynode_get(root, "zip")) != NULL) ELAG_TRY(parse_zip(c, v));
    if ((v = elag_ynode_get(root, "runs")) != NULL) ELAG_TRY(parse_runs(c, v));
    return ELAG_OK;
}

/* ---- expansion ---- */

/* Rewrites a config error about one of the run's overrides to point into the sweep file:
 * "--set prune.target=1.5: <what>" -> "<sweep>:<line>:<col>: grid: <what>". */
static elag_status map_error(spec_ctx *c, elag_status st, spec_item *const *items, int n, int t)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", elag_last_error());
    if (strncmp(msg, "--set ", 6) == 0) {
        for (int i = n - 1; i >= 0; i--) {
            size_t len = strlen(items[i]->spec);
            if (strncmp(msg + 6, items[i]->spec, len) == 0 && strncmp(msg + 6 + len, ": ", 2) == 0)
                return elag_fail(st, "%s:%d:%d: %s: %s", c->sw->path, items[i]->at->line,
                                 items[i]->at->col, items[i]->axis, msg + 6 + len + 2);
        }
    }
    elag_sweep_buf b = {0};
    for (int i = 0; i < n; i++)
        if (strcmp(items[i]->axis, "set") != 0) {
            elag_sweep_buf_puts(&b, " ");
            elag_sweep_buf_puts(&b, items[i]->spec);
        }
    elag_status r = elag_fail(st, "%s (in run %d of %s:%s)", msg, t + 1, c->sw->path,
                              b.p ? b.p : " the base as it is");
    free(b.p);
    return r;
}

/* Resolves run t: its overrides, its config (validated), its id and swept values. */
static elag_status expand_one(spec_ctx *c, long t, spec_item **items, const char **specs,
                              elag_config *cfg, elag_sweep_run *run)
{
    int n = 0;
    for (int i = 0; i < c->set.n; i++) items[n++] = &c->set.v[i];
    int n_r = c->n_runs ? c->n_runs : 1, n_z = c->n_zip ? c->zip_len : 1;
    long r = t % n_r, z = (t / n_r) % n_z, g = t / n_r / n_z;
    int first_axis = n;
    for (int i = c->n_grid - 1; i >= 0; i--) { /* last grid key counts fastest */
        items[n + i] = &c->grid[i].v[g % c->grid[i].n];
        g /= c->grid[i].n;
    }
    n += c->n_grid;
    for (int i = 0; i < c->n_zip; i++) items[n++] = &c->zip[i].v[z];
    if (c->n_runs)
        for (int i = 0; i < c->runs[r].n; i++) items[n++] = &c->runs[r].v[i];

    for (int i = 0; i < n; i++) specs[i] = items[i]->spec;
    elag_status st = elag_config_load(c->sw->base, specs, n, cfg);
    if (st != ELAG_OK) return map_error(c, st, items, n, (int)t);
    char hash[17];
    ELAG_TRY(elag_config_hash(cfg, hash));
    memcpy(run->id, hash, ELAG_SWEEP_ID_LEN);
    run->id[ELAG_SWEEP_ID_LEN] = '\0';
    run->index = (int)t;
    run->first_axis_set = first_axis;
    run->sets = calloc((size_t)(n > 0 ? n : 1), sizeof *run->sets);
    run->values = cJSON_CreateObject();
    if (!run->sets || !run->values) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    for (int i = 0; i < n; i++, run->n_sets++)
        if (!(run->sets[i] = strdup(specs[i]))) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");

    /* the swept values as the run resolved them (0.50 -> 0.5, defaults filled) */
    char *yaml = NULL;
    elag_ynode *tree = NULL;
    const elag_cfg_ctx rc = {"resolved config", NULL, 0};
    ELAG_TRY(elag_config_to_yaml(cfg, &yaml));
    st = elag_ynode_parse(&rc, yaml, strlen(yaml), -1, &tree);
    free(yaml);
    if (st != ELAG_OK) return st;
    /* every swept key, also those this run leaves at the base's value (runs: entries) */
    for (int k = 0; k < c->sw->n_keys; k++) {
        const elag_ynode *v = elag_sweep_resolved_get(tree, c->sw->keys[k]);
        for (int i = first_axis; !v && i < n; i++)
            if (strcmp(items[i]->key, c->sw->keys[k]) == 0) v = items[i]->at;
        if (!v) continue;
        cJSON *j = elag_sweep_node_json(v);
        if (!j) {
            st = elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
            break;
        }
        cJSON_AddItemToObject(run->values, c->sw->keys[k], j);
    }
    elag_ynode_free(tree);
    return st;
}

static int cmp_run_id(const void *a, const void *b)
{
    const elag_sweep_run *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int cmp_run_index(const void *a, const void *b)
{
    const elag_sweep_run *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

static void run_clear(elag_sweep_run *r)
{
    for (int i = 0; i < r->n_sets; i++) free(r->sets[i]);
    free(r->sets);
    cJSON_Delete(r->values);
    memset(r, 0, sizeof *r);
}

static elag_status expand(spec_ctx *c)
{
    elag_sweep *sw = c->sw;
    long total = 1;
    for (int i = 0; i < c->n_grid; i++) {
        total *= c->grid[i].n;
        if (total > ELAG_SWEEP_MAX_RUNS) break;
    }
    if (c->n_zip) total *= c->zip_len;
    if (c->n_runs) total *= c->n_runs;
    if (total > ELAG_SWEEP_MAX_RUNS)
        return elag_fail(ELAG_ERR_INPUT, "%s: the axes expand to more than %d runs", sw->path,
                         ELAG_SWEEP_MAX_RUNS);
    int max_items = c->set.n + c->n_grid + c->n_zip;
    for (int i = 0; i < c->n_runs; i++) max_items += c->runs[i].n;
    spec_item **items = calloc((size_t)max_items + 1, sizeof *items);
    const char **specs = calloc((size_t)max_items + 1, sizeof *specs);
    elag_config *cfg = malloc(sizeof *cfg);
    sw->runs = calloc((size_t)total, sizeof *sw->runs);
    elag_status st = ELAG_OK;
    if (!items || !specs || !cfg || !sw->runs) st = elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    for (long t = 0; st == ELAG_OK && t < total; t++) {
        st = expand_one(c, t, items, specs, cfg, &sw->runs[t]);
        sw->n_runs++;
    }
    free(items);
    free(specs);
    free(cfg);
    if (st != ELAG_OK) return st;

    /* runs that resolve to the same config are one run: keep the first */
    qsort(sw->runs, (size_t)sw->n_runs, sizeof *sw->runs, cmp_run_id);
    int kept = 0;
    for (int i = 0; i < sw->n_runs; i++) {
        if (kept > 0 && strcmp(sw->runs[kept - 1].id, sw->runs[i].id) == 0) {
            run_clear(&sw->runs[i]);
            sw->n_dropped++;
            continue;
        }
        if (kept != i) {
            sw->runs[kept] = sw->runs[i];
            memset(&sw->runs[i], 0, sizeof sw->runs[i]);
        }
        kept++;
    }
    sw->n_runs = kept;
    qsort(sw->runs, (size_t)sw->n_runs, sizeof *sw->runs, cmp_run_index);
    for (int i = 0; i < sw->n_runs; i++) sw->runs[i].index = i;
    return ELAG_OK;
}

elag_status elag_sweep_load(const char *path, elag_sweep **out)
{
    *out = NULL;
    elag_sweep *sw = calloc(1, sizeof *sw);
    if (!sw) return elag_fail(ELAG_ERR_NOMEM, "sweep: out of memory");
    snprintf(sw->path, sizeof sw->path, "%s", path);
    const char *stem = strrchr(path, '/');
    stem = stem ? stem + 1 : path;
    const char *dot = strrchr(stem, '.');
    int len = dot && dot != stem ? (int)(dot - stem) : (int)strlen(stem);
    snprintf(sw->name, sizeof sw->name, "%.*s", len < ELAG_NAME_LEN ? len : ELAG_NAME_LEN - 1,
             stem);
    snprintf(sw->export_format, sizeof sw->export_format, "csr");

    spec_ctx c = {.yc = {sw->path, NULL, 0}, .sw = sw};
    char *text = NULL;
    size_t n = 0;
    elag_ynode *root = NULL;
    elag_status st = elag_read_file(path, &text, &n);
    if (st == ELAG_OK) st = elag_ynode_parse(&c.yc, text, n, -1, &root);
    if (st == ELAG_OK) st = parse_root(&c, root);
    if (st == ELAG_OK) st = expand(&c);
    if (st == ELAG_OK) { /* model[.thin].<format without ':'>.safetensors */
        char fmt[sizeof sw->export_format];
        size_t o = 0;
        for (const char *p = sw->export_format; *p; p++)
            if (*p != ':') fmt[o++] = *p;
        fmt[o] = '\0';
        snprintf(sw->export_file, sizeof sw->export_file, "model%s.%s.safetensors",
                 sw->export_thin ? ".thin" : "", fmt);
    }

    list_free(&c.set);
    for (int i = 0; i < c.n_grid; i++) list_free(&c.grid[i]);
    for (int i = 0; i < c.n_zip; i++) list_free(&c.zip[i]);
    for (int i = 0; i < c.n_runs; i++) list_free(&c.runs[i]);
    free(c.grid);
    free(c.zip);
    free(c.runs);
    free(c.claims);
    elag_ynode_free(root);
    free(text);
    if (st != ELAG_OK) {
        elag_sweep_free(sw);
        return st;
    }
    *out = sw;
    return ELAG_OK;
}

void elag_sweep_free(elag_sweep *sw)
{
    if (!sw) return;
    for (int i = 0; i < sw->n_runs; i++) run_clear(&sw->runs[i]);
    free(sw->runs);
    for (int i = 0; i < sw->n_keys; i++) free(sw->keys[i]);
    free(sw->keys);
    free(sw);
}

int elag_sweep_in_shard(int index, int shard, int n_shards)
{
    return n_shards <= 1 || index % n_shards == shard;
}

int elag_sweep_parse_shard(const char *s, int *shard, int *n_shards)
{
    char *end;
    errno = 0;
    long i = strtol(s, &end, 10);
    if (end == s || *end != '/' || errno) return -1;
    const char *s2 = end + 1;
    long n = strtol(s2, &end, 10);
    if (end == s2 || *end != '\0' || errno || n < 1 || n > 1000000 || i < 0 || i >= n) return -1;
    *shard = (int)i;
    *n_shards = (int)n;
    return 0;
}
