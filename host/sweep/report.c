/*
 * Tables of a sweep, from its ledger alone (<dir>/results.jsonl, one row per run id):
 *   report/summary.md   method x target sparsity: seeds, measured sparsity, test accuracy
 *                       mean ± sample standard deviation over seeds, nonzero weights,
 *                       model file size, throughput; per-layer sparsity; failed runs;
 *                       links to the plots scripts/plot.py draws;
 *   report/summary.csv  the first table, machine-readable;
 *   report/layers.csv   the per-layer table.
 * A group is one method, one target sparsity and one value of every other swept key but
 * `seed`, so seeds are what the mean and deviation run over. Inference figures
 * (infer_samples_per_second, infer_latency_ms_median, written by the sweep runner from `elag
 * infer --json`) are used when rows carry them, averaged over the rows that have them
 * (a row with infer_error has none); when no row has any, the throughput is training
 * samples/s, and the tables say so. The file size is that of the CSR export
 * (csr_file_bytes) when rows carry it, next to the checkpoint's (model_bytes).
 */
#define _POSIX_C_SOURCE 200809L
#include "sweep/sweep.h"

#include "core/check.h"
#include "io/atomic.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct report_group {
    char method[64];
    double target;
    char settings[512]; /* other swept keys but seed: "train.optimizer.lr=0.1, ..." */
    int method_rank;    /* order of the method's first appearance */
    const cJSON **rows;
    int n, cap;
} report_group;

typedef struct report_ctx {
    const char *dir;
    report_group *groups;
    int n_groups, cap_groups;
    char **methods; /* in order of first appearance, for sorting */
    int n_methods;
    char **layers;  /* layer names, first appearance */
    int n_layers;
    int have_infer;
    int have_csr; /* some row has export_file_bytes or csr_file_bytes */
    char export_how[48]; /* the first export other than plain csr ("thin,dense"), or "" */
    int named;    /* groups are labelled by the swept `name` */
} report_ctx;

/* One name per figure (docs/outputs.md); ledgers written before issue 13 used these old
 * names, read when the current one is absent. */
static const char *const report_old_names[][2] = {
    {"infer_latency_ms_median", "infer_latency_ms"},
    {"prune.method", "prune_method"},
    {"prune.target", "prune_target"},
};

static const cJSON *field(const cJSON *row, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    for (size_t i = 0; !v && i < sizeof report_old_names / sizeof report_old_names[0]; i++)
        if (!strcmp(key, report_old_names[i][0]))
            v = cJSON_GetObjectItemCaseSensitive(row, report_old_names[i][1]);
    return v;
}

static double num(const cJSON *row, const char *key, double dflt)
{
    const cJSON *v = field(row, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str(const cJSON *row, const char *key, const char *dflt)
{
    const cJSON *v = field(row, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

/* Index of s in a list of names, added when missing; -1 when out of memory. */
static int name_index(char ***list, int *n, const char *s)
{
    for (int i = 0; i < *n; i++)
        if (strcmp((*list)[i], s) == 0) return i;
    char **v = realloc(*list, (size_t)(*n + 1) * sizeof *v);
    if (!v) return -1;
    *list = v;
    if (!(v[*n] = strdup(s))) return -1;
    return (*n)++;
}

/* mean and sample standard deviation (n - 1) of key over a group; std < 0 when n < 2 */
static void stats(const report_group *g, const char *key, double *mean, double *std)
{
    double s = 0, ss = 0;
    int n = 0;
    for (int i = 0; i < g->n; i++) {
        double v = num(g->rows[i], key, NAN);
        if (isnan(v)) continue;
        s += v;
        n++;
    }
    *mean = n ? s / n : NAN;
    for (int i = 0; i < g->n; i++) {
        double v = num(g->rows[i], key, NAN);
        if (!isnan(v)) ss += (v - *mean) * (v - *mean);
    }
    *std = n > 1 ? sqrt(ss / (n - 1)) : -1;
}

static double model_bytes(const report_ctx *c, const cJSON *row)
{
    double b = num(row, "model_bytes", -1);
    if (b >= 0) return b;
    char path[ELAG_PATH_LEN + 96];
    snprintf(path, sizeof path, "%s/runs/%s/model.safetensors", c->dir, str(row, "run_id", ""));
    struct stat sb;
    return stat(path, &sb) == 0 ? (double)sb.st_size : NAN;
}

/* The size of the run's export (export_file_bytes; ledgers written before the sweep file's
 * export: had csr_file_bytes only), or -1. */
static double export_bytes(const cJSON *row)
{
    double b = num(row, "export_file_bytes", -1);
    return b >= 0 ? b : num(row, "csr_file_bytes", -1);
}

static elag_status add_row(report_ctx *c, const cJSON *row)
{
    const char *method = str(row, "prune.method", "?");
    /* a dense run is the baseline at 0, whatever prune.target a `runs:` entry left it */
    double target = strcmp(method, "none") ? num(row, "prune.target", num(row, "sparsity", 0)) : 0;
    char settings[512] = "";
    size_t n = 0;
    const cJSON *k;
    /* A sweep that names its runs (`name` on an axis) is labelled by those names alone. */
    int named = 0;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(row, "swept"))
        named |= cJSON_IsString(k) && !strcmp(k->valuestring, "name");
    if (named) c->named = 1;
    cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(row, "swept"))
    {
        if (!cJSON_IsString(k) || !strcmp(k->valuestring, "seed") ||
            (named && strcmp(k->valuestring, "name")) ||
            !strcmp(k->valuestring, "prune.method") || !strcmp(k->valuestring, "prune.target"))
            continue;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, k->valuestring);
        char *text = v && !cJSON_IsString(v) ? cJSON_PrintUnformatted(v) : NULL;
        if (n + 1 < sizeof settings)
            n += (size_t)snprintf(settings + n, sizeof settings - n, "%s%s%s%s", n ? ", " : "",
                                  named ? "" : k->valuestring, named ? "" : "=", text ? text : v ? v->valuestring : "");
        free(text);
    }
    int rank = name_index(&c->methods, &c->n_methods, method);
    if (rank < 0) return elag_fail(ELAG_ERR_NOMEM, "report: out of memory");
    const cJSON *layer;
    cJSON_ArrayForEach(layer, cJSON_GetObjectItemCaseSensitive(row, "layers"))
        if (str(layer, "name", NULL) && name_index(&c->layers, &c->n_layers, str(layer, "name", "")) < 0)
            return elag_fail(ELAG_ERR_NOMEM, "report: out of memory");
    if (num(row, "infer_samples_per_second", -1) >= 0 ||
        num(row, "infer_latency_ms_median", -1) >= 0)
        c->have_infer = 1;
    if (export_bytes(row) >= 0) c->have_csr = 1;
    const char *how = str(row, "export", "csr");
    if (strcmp(how, "csr") && !c->export_how[0])
        snprintf(c->export_how, sizeof c->export_how, "%s", how);

    report_group *g = NULL;
    for (int i = 0; i < c->n_groups && !g; i++)
        if (!strcmp(c->groups[i].method, method) && c->groups[i].target == target &&
            !strcmp(c->groups[i].settings, settings))
            g = &c->groups[i];
    if (!g) {
        if (c->n_groups == c->cap_groups) {
            int cap = c->cap_groups ? 2 * c->cap_groups : 16;
            report_group *v = realloc(c->groups, (size_t)cap * sizeof *v);
            if (!v) return elag_fail(ELAG_ERR_NOMEM, "report: out of memory");
            c->groups = v;
            c->cap_groups = cap;
        }
        g = &c->groups[c->n_groups++];
        memset(g, 0, sizeof *g);
        snprintf(g->method, sizeof g->method, "%s", method);
        g->target = target;
        g->method_rank = rank;
        snprintf(g->settings, sizeof g->settings, "%s", settings);
    }
    if (g->n == g->cap) {
        int cap = g->cap ? 2 * g->cap : 4;
        const cJSON **v = realloc(g->rows, (size_t)cap * sizeof *v);
        if (!v) return elag_fail(ELAG_ERR_NOMEM, "report: out of memory");
        g->rows = v;
        g->cap = cap;
    }
    g->rows[g->n++] = row;
    return ELAG_OK;
}

static int cmp_group(const void *a, const void *b)
{
    const report_group *x = a, *y = b;
    if (x->method_rank != y->method_rank) return x->method_rank - y->method_rank;
    int s = strcmp(x->settings, y->settings);
    if (s) return s;
    return (x->target > y->target) - (x->target < y->target);
}

/* 266200 -> "266,200" */
static void thousands(double v, char *buf, size_t size)
{
    if (isnan(v)) {
        snprintf(buf, size, "-");
        return;
    }
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v);
    size_t len = strlen(digits), o = 0;
    for (size_t i = 0; i < len && o + 2 < size; i++) {
        if (i > 0 && digits[i - 1] != '-' && (len - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

static void human_bytes(double b, char *buf, size_t size)
{
    if (isnan(b)) snprintf(buf, size, "-");
    else if (b >= 1e6) snprintf(buf, size, "%.2f MB", b / 1e6);
    else if (b >= 1e3) snprintf(buf, size, "%.1f kB", b / 1e3);
    else snprintf(buf, size, "%.0f B", b);
}

static void write_md_tables(const report_ctx *c, FILE *f, int any_settings)
{
    const char *thr = c->have_infer ? "inference samples/s" : "train samples/s";
    fprintf(f, "| method | target sparsity | sparsity | seeds | test accuracy | nonzero weights "
               "|%s%s %s |%s\n",
            c->have_csr ? (c->export_how[0] ? " export file | checkpoint |" : " CSR file | checkpoint |")
                        : " model file |",
            c->have_infer ? " latency ms (median, p99) |" : "", thr,
            any_settings ? (c->named ? " run |" : " settings |") : "");
    fprintf(f, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |%s%s%s\n",
            c->have_csr ? " ---: |" : "", c->have_infer ? " ---: |" : "",
            any_settings ? " --- |" : "");
    for (int i = 0; i < c->n_groups; i++) {
        const report_group *g = &c->groups[i];
        double acc, acc_sd, sp, sp_sd, nz, nz_sd, tp, tp_sd, bytes = 0;
        int nb = 0;
        stats(g, "test_accuracy", &acc, &acc_sd);
        stats(g, "sparsity", &sp, &sp_sd);
        stats(g, "params_nonzero", &nz, &nz_sd);
        stats(g, c->have_infer ? "infer_samples_per_second" : "samples_per_second", &tp, &tp_sd);
        for (int r = 0; r < g->n; r++) {
            double b = model_bytes(c, g->rows[r]);
            if (!isnan(b)) {
                bytes += b;
                nb++;
            }
        }
        char a[64], nzs[48], tot[48], fs[32], tps[48];
        if (acc_sd >= 0) snprintf(a, sizeof a, "%.4f ± %.4f", acc, acc_sd);
        else snprintf(a, sizeof a, "%.4f", acc);
        thousands(nz, nzs, sizeof nzs);
        thousands(num(g->rows[0], "params_prunable", NAN), tot, sizeof tot);
        human_bytes(nb ? bytes / nb : NAN, fs, sizeof fs);
        thousands(tp, tps, sizeof tps);
        fprintf(f, "| %s | %.2f | %.3f | %d | %s | %s / %s |", g->method, g->target, sp, g->n, a,
                nzs, tot);
        if (c->have_csr) {
            double csr = 0;
            int ncsr = 0;
            char cs[32];
            for (int r = 0; r < g->n; r++)
                if (export_bytes(g->rows[r]) >= 0) {
                    csr += export_bytes(g->rows[r]);
                    ncsr++;
                }
            human_bytes(ncsr ? csr / ncsr : NAN, cs, sizeof cs);
            fprintf(f, " %s |", cs);
        }
        fprintf(f, " %s |", fs);
        if (c->have_infer) {
            double lat, lat_sd, p99, p99_sd;
            stats(g, "infer_latency_ms_median", &lat, &lat_sd);
            stats(g, "infer_latency_ms_p99", &p99, &p99_sd);
            if (isnan(lat)) fprintf(f, " - |");
            else if (isnan(p99)) fprintf(f, " %.3f |", lat);
            else fprintf(f, " %.3f, %.3f |", lat, p99);
        }
        fprintf(f, " %s |", tps);
        if (any_settings) fprintf(f, " %s |", g->settings);
        fputc('\n', f);
    }
    if (!c->n_layers) return;
    fprintf(f, "\n## Per-layer sparsity\n\nMeasured fraction of zero weights in each prunable "
               "layer, mean over seeds.\n\n| method | target sparsity |");
    for (int l = 0; l < c->n_layers; l++) fprintf(f, " %s |", c->layers[l]);
    fprintf(f, "%s\n| --- | ---: |", any_settings ? (c->named ? " run |" : " settings |") : "");
    for (int l = 0; l < c->n_layers; l++) fprintf(f, " ---: |");
    fprintf(f, "%s\n", any_settings ? " --- |" : "");
    for (int i = 0; i < c->n_groups; i++) {
        const report_group *g = &c->groups[i];
        fprintf(f, "| %s | %.2f |", g->method, g->target);
        for (int l = 0; l < c->n_layers; l++) {
            double s = 0;
            int n = 0;
            for (int r = 0; r < g->n; r++) {
                const cJSON *layer;
                cJSON_ArrayForEach(layer, cJSON_GetObjectItemCaseSensitive(g->rows[r], "layers"))
                    if (!strcmp(str(layer, "name", ""), c->layers[l])) {
                        s += num(layer, "sparsity", 0);
                        n++;
                    }
            }
            if (n) fprintf(f, " %.3f |", s / n);
            else fprintf(f, " - |");
        }
        if (any_settings) fprintf(f, " %s |", g->settings);
        fputc('\n', f);
    }
}

/* Shortest of %.15g / %.17g that reads back exactly (0.8, not 0.80000000000000004);
 * nothing for NaN (an empty CSV cell). */
static void put_num(FILE *f, double v)
{
    if (isnan(v)) return;
    char b[40];
    snprintf(b, sizeof b, "%.15g", v);
    if (strtod(b, NULL) != v) snprintf(b, sizeof b, "%.17g", v);
    fputs(b, f);
}

static elag_status write_csvs(const report_ctx *c, const char *rdir)
{
    char path[ELAG_PATH_LEN + 64];
    elag_atomic_file af;
    snprintf(path, sizeof path, "%s/summary.csv", rdir);
    elag_status st = elag_atomic_open(&af, path);
    if (st != ELAG_OK) return st;
    fprintf(af.fp, "method,target_sparsity,settings,seeds,sparsity_mean,test_accuracy_mean,"
                   "test_accuracy_std,test_loss_mean,params_nonzero_mean,params_prunable,"
                   "model_bytes_mean,samples_per_second_mean,infer_samples_per_second_mean,"
                   "infer_latency_ms_median_mean,infer_latency_ms_p99_mean,"
                   "export_file_bytes_mean\n");
    for (int i = 0; i < c->n_groups; i++) {
        const report_group *g = &c->groups[i];
        double m[9], sd;
        const char *keys[] = {"sparsity", "test_accuracy", "test_loss", "params_nonzero",
                              "samples_per_second", "infer_samples_per_second",
                              "infer_latency_ms_median", "infer_latency_ms_p99", NULL};
        double acc_sd = -1;
        for (int k = 0; k < 8; k++) {
            stats(g, keys[k], &m[k], &sd);
            if (k == 1) acc_sd = sd;
        }
        int ne = 0;
        m[8] = 0;
        for (int r = 0; r < g->n; r++)
            if (export_bytes(g->rows[r]) >= 0) {
                m[8] += export_bytes(g->rows[r]);
                ne++;
            }
        m[8] = ne ? m[8] / ne : NAN;
        double bytes = 0;
        int nb = 0;
        for (int r = 0; r < g->n; r++) {
            double b = model_bytes(c, g->rows[r]);
            if (!isnan(b)) {
                bytes += b;
                nb++;
            }
        }
        double vals[] = {m[0], m[1], acc_sd >= 0 ? acc_sd : NAN, m[2], m[3],
                         num(g->rows[0], "params_prunable", NAN), nb ? bytes / nb : NAN, m[4],
                         m[5], m[6], m[7], m[8]};
        fprintf(af.fp, "%s,", g->method);
        put_num(af.fp, g->target);
        fprintf(af.fp, ",\"%s\",%d", g->settings, g->n);
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
            fputc(',', af.fp);
            put_num(af.fp, vals[k]);
        }
        fputc('\n', af.fp);
    }
    ELAG_TRY(elag_atomic_commit(&af));

    snprintf(path, sizeof path, "%s/layers.csv", rdir);
    ELAG_TRY(elag_atomic_open(&af, path));
    fprintf(af.fp, "method,target_sparsity,settings,layer,params,nonzero_mean,sparsity_mean,seeds\n");
    for (int i = 0; i < c->n_groups; i++)
        for (int l = 0; l < c->n_layers; l++) {
            const report_group *g = &c->groups[i];
            double nz = 0, sp = 0, params = 0;
            int n = 0;
            for (int r = 0; r < g->n; r++) {
                const cJSON *layer;
                cJSON_ArrayForEach(layer, cJSON_GetObjectItemCaseSensitive(g->rows[r], "layers"))
                    if (!strcmp(str(layer, "name", ""), c->layers[l])) {
                        nz += num(layer, "nonzero", 0);
                        sp += num(layer, "sparsity", 0);
                        params = num(layer, "params", 0);
                        n++;
                    }
            }
            if (!n) continue;
            fprintf(af.fp, "%s,", g->method);
            put_num(af.fp, g->target);
            fprintf(af.fp, ",\"%s\",%s,%.0f,", g->settings, c->layers[l], params);
            put_num(af.fp, nz / n);
            fputc(',', af.fp);
            put_num(af.fp, sp / n);
            fprintf(af.fp, ",%d\n", n);
        }
    return elag_atomic_commit(&af);
}

elag_status elag_sweep_report(const char *dir, const char *const *plots, int n_plots,
                              const char *plots_note, int *n_ok, int *n_failed)
{
    char path[ELAG_PATH_LEN + 64], rdir[ELAG_PATH_LEN + 16];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return elag_fail(ELAG_ERR_INPUT, "%s: no ledger results.jsonl there (not a sweep output "
                         "folder?)", dir);
    elag_ledger l;
    ELAG_TRY(elag_ledger_read(path, &l));
    report_ctx c = {.dir = dir};
    elag_status st = ELAG_OK;
    int ok = 0, failed = 0, diverged = 0, any_settings = 0;
    for (int i = 0; st == ELAG_OK && i < l.n; i++) {
        if (strcmp(elag_ledger_status(l.rows[i]), "ok") != 0) {
            failed++; /* a diverged run is a failed one, counted apart too */
            diverged += strcmp(elag_ledger_status(l.rows[i]), "diverged") == 0;
            continue;
        }
        ok++;
        st = add_row(&c, l.rows[i]);
    }
    /* no ok run (or no memory for the first group): groups is NULL, which qsort may not get */
    if (c.n_groups > 1) qsort(c.groups, (size_t)c.n_groups, sizeof *c.groups, cmp_group);
    for (int i = 0; i < c.n_groups; i++) any_settings |= c.groups[i].settings[0] != 0;

    snprintf(rdir, sizeof rdir, "%s/report", dir);
    if (st == ELAG_OK) st = elag_mkdirs(rdir);
    if (st == ELAG_OK) st = write_csvs(&c, rdir);
    elag_atomic_file af;
    snprintf(path, sizeof path, "%s/summary.md", rdir);
    if (st == ELAG_OK) st = elag_atomic_open(&af, path);
    if (st == ELAG_OK) {
        FILE *f = af.fp;
        fprintf(f, "# Sweep report: %s\n\n", dir);
        char div[48] = "";
        if (diverged) snprintf(div, sizeof div, " (%d of them diverged)", diverged);
        char files[320];
        if (!c.have_csr)
            snprintf(files, sizeof files, "Model file is the size of `model.safetensors` (a "
                     "dense checkpoint with masks and optimizer state).");
        else if (c.export_how[0])
            snprintf(files, sizeof files, "Export file is the size of the run's export, made "
                     "as the sweep file's export: says (`%s`); checkpoint is `model.safetensors` "
                     "(dense, with masks and optimizer state).", c.export_how);
        else
            snprintf(files, sizeof files, "CSR file is the size of `model.csr.safetensors` "
                     "(`elag export --format csr`); checkpoint is `model.safetensors` (dense, "
                     "with masks and optimizer state).");
        fprintf(f, "%d runs in `results.jsonl`: %d ok, %d failed%s. One row per method and target "
                   "sparsity%s; test accuracy is the mean ± sample standard deviation over the "
                   "seeds (a single seed shows no deviation). %s %s\n\n",
                l.n, ok, failed, div,
                !any_settings ? "" : c.named ? " (and run name)"
                                             : " (and settings of the other swept keys)",
                c.have_infer ? "Latency (per batch, median and p99) and throughput are "
                               "inference of the run's export (`elag infer`), mean over the "
                               "runs that have them."
                             : "Throughput is training samples/s (the ledger has no inference "
                               "figures).",
                files);
        write_md_tables(&c, f, any_settings);
        if (failed) {
            /* a diverged run's error says so ("train: diverged at step ...") */
            fprintf(f, "\n## Failed runs\n\n| run | error |\n| --- | --- |\n");
            for (int i = 0; i < l.n; i++)
                if (strcmp(elag_ledger_status(l.rows[i]), "ok") != 0)
                    fprintf(f, "| %s | %s |\n", str(l.rows[i], "run_id", "?"),
                            str(l.rows[i], "error", "?"));
        }
        if (n_plots > 0 || plots_note) fprintf(f, "\n## Plots\n\n");
        if (plots_note) fprintf(f, "%s\n\n", plots_note);
        for (int i = 0; i < n_plots; i++) fprintf(f, "![%s](%s)\n\n", plots[i], plots[i]);
        st = elag_atomic_commit(&af);
    }
    for (int i = 0; i < c.n_groups; i++) free(c.groups[i].rows);
    free(c.groups);
    for (int i = 0; i < c.n_methods; i++) free(c.methods[i]);
    free(c.methods);
    for (int i = 0; i < c.n_layers; i++) free(c.layers[i]);
    free(c.layers);
    elag_ledger_free(&l);
    if (n_ok) *n_ok = ok;
    if (n_failed) *n_failed = failed;
    return st;
}
