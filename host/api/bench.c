/*
 * elag/bench.h: the spmm benchmark, a thin wrapper over elag_bench_spmm and its shape
 * loaders (host/sparse/bench.h); and a network timed end to end, its own formats against
 * the same weights dense, on two elag_sparse_nets (host/sparse/infer.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "api/api.h"

#include "backend/philox.h"
#include "core/check.h"
#include "sparse/bench.h"
#include "sparse/infer.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_LIST 64 /* shapes in a list, formats in a list */

struct elag_bench_shape_list {
    elag_bench_shape *v; /* (n), elag_bench_shapes_free */
    int n;
};

/* ---- lists ---- */

/* Splits a comma list into at most BENCH_MAX_LIST items (copies into buf); -1 when there
 * are more. */
static int split(const char *text, char *buf, size_t size, char **items)
{
    snprintf(buf, size, "%s", text);
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (n == BENCH_MAX_LIST) return -1;
        items[n++] = t;
    }
    return n;
}

static int parse_long(const char *t, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (!*t || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* "MxK[,MxK...]" into out (BENCH_MAX_LIST entries); the count, or -1 when malformed. */
static int parse_shapes(const char *text, elag_bench_shape *out)
{
    char buf[1024], *items[BENCH_MAX_LIST];
    int n = split(text, buf, sizeof buf, items);
    for (int i = 0; i < n; i++) {
        char *x = strchr(items[i], 'x');
        long m, k;
        if (!x) return -1;
        *x = '\0';
        if (parse_long(items[i], 1, INT_MAX / 2, &m) || parse_long(x + 1, 1, INT_MAX / 2, &k))
            return -1;
        memset(&out[i], 0, sizeof out[i]);
        out[i].m = (int)m, out[i].k = (int)k;
        snprintf(out[i].name, sizeof out[i].name, "%ldx%ld", m, k);
    }
    return n;
}

/* A comma list of formats (a repeated one counts once) into out (BENCH_MAX_LIST
 * entries); the count, or -1 with the error recorded. */
static int parse_formats(const char *list, elag_bench_format *out)
{
    char buf[1024], *items[BENCH_MAX_LIST];
    int n = split(list, buf, sizeof buf, items), kept = 0;
    if (n < 1) {
        elag_fail(ELAG_ERR_USAGE, "'%s' names no format", list);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (elag_bench_format_parse(items[i], &out[kept]) != ELAG_OK) return -1;
        int dup = 0;
        for (int j = 0; j < kept && !dup; j++) dup = strcmp(out[j].name, out[kept].name) == 0;
        kept += !dup;
    }
    return kept;
}

/* ---- spmm ---- */

elag_status elag_bench_shape_list_open(elag_bench_shape_list_t **out, elag_bench_shapes_from from,
                                       const char *text)
{
    if (out == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_bench_shape_list_open: out is NULL");
    *out = NULL;
    if (text == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_bench_shape_list_open: text is NULL");
    elag_bench_shape_list_t *l = calloc(1, sizeof *l);
    if (l == NULL) return elag_fail(ELAG_ERR_NOMEM, "bench: out of host memory");
    elag_status st = ELAG_OK;
    if (from == ELAG_BENCH_SHAPES_FROM_FILE) {
        st = elag_bench_shapes_load(text, &l->v, &l->n);
    } else if (from == ELAG_BENCH_SHAPES_FROM_MODEL) {
        st = elag_bench_shapes_from_model(text, &l->v, &l->n);
    } else if (from == ELAG_BENCH_SHAPES_FROM_LIST) {
        l->v = calloc(BENCH_MAX_LIST, sizeof *l->v);
        if (l->v == NULL) st = elag_fail(ELAG_ERR_NOMEM, "bench: out of host memory");
        if (st == ELAG_OK && (l->n = parse_shapes(text, l->v)) < 1) {
            l->n = 0;
            st = elag_fail(ELAG_ERR_USAGE, "'%s' is not a list of 1 to %d shapes MxK", text,
                           BENCH_MAX_LIST);
        }
    } else {
        st = elag_fail(ELAG_ERR_USAGE, "elag_bench_shape_list_open: unknown source %d", (int)from);
    }
    if (st != ELAG_OK) {
        elag_bench_shape_list_free(l);
        return st;
    }
    *out = l;
    return ELAG_OK;
}

void elag_bench_shape_list_free(elag_bench_shape_list_t *l)
{
    if (l == NULL) return;
    elag_bench_shapes_free(l->v, l->n);
    free(l);
}

int elag_bench_shape_list_count(const elag_bench_shape_list_t *l)
{
    ELAG_ASSERT(l != NULL);
    return l->n;
}

elag_status elag_bench_formats_check(const char *formats)
{
    if (formats == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_bench_formats_check: NULL list");
    elag_bench_format f[BENCH_MAX_LIST];
    return parse_formats(formats, f) < 1 ? ELAG_ERR_USAGE : ELAG_OK;
}

elag_status elag_bench_spmm_options_init(elag_bench_spmm_options *opts, unsigned int version)
{
    if (opts == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_bench_spmm_options_init: opts is NULL");
    ELAG_TRY(elag_api_check_version(version, ELAG_BENCH_SPMM_OPTIONS_VERSION,
                                    "elag_bench_spmm_options"));
    elag_bench_spmm_options d = ELAG_BENCH_SPMM_OPTIONS_INIT;
    *opts = d;
    return ELAG_OK;
}

elag_status elag_bench_spmm_run(elag_device_t *device, const elag_bench_shape_list_t *shapes,
                                const elag_bench_spmm_options *opts)
{
    if (device == NULL || shapes == NULL || opts == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_bench_spmm_run: %s is NULL",
                         device == NULL   ? "device"
                         : shapes == NULL ? "shapes"
                                          : "opts");
    ELAG_TRY(elag_api_check_version(opts->version, ELAG_BENCH_SPMM_OPTIONS_VERSION,
                                    "elag_bench_spmm_options"));
    const char *list = opts->formats                 ? opts->formats
                       : elag_device_is_cuda(device) ? "dense,dense-tf32,csr"
                                                     : "dense,csr";
    elag_bench_format formats[BENCH_MAX_LIST];
    int n_formats = parse_formats(list, formats);
    if (n_formats < 1) return ELAG_ERR_USAGE; /* the message is recorded */
    elag_bench_config c = {.shapes = shapes->v,
                           .n_shapes = shapes->n,
                           .batches = opts->batches,
                           .n_batches = opts->n_batches,
                           .sparsities = opts->sparsities,
                           .n_sparsities = opts->n_sparsities,
                           .formats = formats,
                           .n_formats = n_formats,
                           .repeat = opts->repeat,
                           .warmup = opts->warmup,
                           .min_sample_ms = opts->min_sample_ms,
                           .mask = opts->mask,
                           .mask_block = opts->mask_block,
                           .seed = opts->seed,
                           .emit = opts->emit,
                           .note = opts->note,
                           .progress = opts->progress,
                           .user = opts->user};
    return elag_bench_spmm(device->be, &c);
}

/* ---- net ---- */

elag_status elag_bench_net_options_init(elag_bench_net_options *opts, unsigned int version)
{
    if (opts == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_bench_net_options_init: opts is NULL");
    ELAG_TRY(
        elag_api_check_version(version, ELAG_BENCH_NET_OPTIONS_VERSION, "elag_bench_net_options"));
    elag_bench_net_options d = ELAG_BENCH_NET_OPTIONS_INIT;
    *opts = d;
    return ELAG_OK;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

/* Warm-up, then `repeat` timed forwards of each net, dense first, on the same input. */
static elag_status time_nets(elag_sparse_net *sp, elag_sparse_net *dn, const float *x, int n,
                             int warmup, int repeat, float *logits, double *ts, double *td)
{
    elag_status st = ELAG_OK;
    for (int w = 0; st == ELAG_OK && w < warmup; w++) {
        st = elag_sparse_net_forward(sp, x, n, logits);
        if (st == ELAG_OK) st = elag_sparse_net_forward(dn, x, n, logits);
    }
    for (int r = 0; st == ELAG_OK && r < repeat; r++) {
        double t0 = now_ms();
        st = elag_sparse_net_forward(dn, x, n, logits);
        double t1 = now_ms();
        if (st == ELAG_OK) st = elag_sparse_net_forward(sp, x, n, logits);
        double t2 = now_ms();
        td[r] = t1 - t0;
        ts[r] = t2 - t1;
    }
    return st;
}

/* q-quantile of sorted[0..n), linearly interpolated between ranks (as bench spmm's). */
static double sorted_quantile(const double *sorted, int n, double q)
{
    double pos = q * (n - 1);
    int lo = (int)pos;
    if (lo >= n - 1) return sorted[n - 1];
    return sorted[lo] + (pos - lo) * (sorted[lo + 1] - sorted[lo]);
}

elag_status elag_bench_net(const elag_net_t *net, elag_device_t *device,
                           const elag_bench_net_options *opts, elag_bench_net_result *result)
{
    if (net == NULL || device == NULL || result == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_bench_net: %s is NULL",
                         net == NULL      ? "net"
                         : device == NULL ? "device"
                                          : "result");
    elag_bench_net_options o = ELAG_BENCH_NET_OPTIONS_INIT;
    if (opts) {
        ELAG_TRY(elag_api_check_version(opts->version, ELAG_BENCH_NET_OPTIONS_VERSION,
                                        "elag_bench_net_options"));
        o = *opts;
    }
    ELAG_TRY(elag_api_check_version(result->version, ELAG_BENCH_NET_RESULT_VERSION,
                                    "elag_bench_net_result"));
    if (o.batch < 1 || o.repeat < 1 || o.warmup < 0)
        return elag_fail(ELAG_ERR_USAGE, "elag_bench_net: batch %d, repeat %d, warmup %d", o.batch,
                         o.repeat, o.warmup);
    const elag_export *e = &net->e;
    const int n = o.batch, repeat = o.repeat;
    elag_sparse_net sp, dn;
    size_t in_count = (size_t)n * e->input_dim, out_count = (size_t)n * e->classes;
    float *x = malloc(in_count * sizeof *x);       /* (n, input_dim) */
    float *logits = malloc(out_count * sizeof *x); /* (n, classes) */
    double *ts = malloc((size_t)repeat * sizeof *ts), *td = malloc((size_t)repeat * sizeof *td);
    if (!x || !logits || !ts || !td) {
        free(x), free(logits), free(ts), free(td);
        return elag_fail(ELAG_ERR_NOMEM, "bench model: out of host memory");
    }
    for (size_t i = 0; i < in_count; i++) x[i] = elag_philox_uniform(1, 0, i) * 2.0f - 1.0f;
    elag_status st = elag_sparse_net_init(&sp, e, device->be, n, 0);
    if (st == ELAG_OK) {
        st = elag_sparse_net_init(&dn, e, device->be, n, 1);
        if (st != ELAG_OK) elag_sparse_net_free(&sp);
    }
    if (st != ELAG_OK) {
        free(x), free(logits), free(ts), free(td);
        return st;
    }
    st = time_nets(&sp, &dn, x, n, o.warmup, repeat, logits, ts, td);
    if (st == ELAG_OK) {
        double p99;
        result->batch = n;
        elag_latency_percentiles(ts, repeat, &result->sparse_ms, &p99); /* sorts ts */
        elag_latency_percentiles(td, repeat, &result->dense_ms, &p99);
        if (result->version >= 2) { /* a version-1 caller's struct ends before these */
            result->sparse_ms_p10 = sorted_quantile(ts, repeat, 0.1);
            result->sparse_ms_p90 = sorted_quantile(ts, repeat, 0.9);
            result->dense_ms_p10 = sorted_quantile(td, repeat, 0.1);
            result->dense_ms_p90 = sorted_quantile(td, repeat, 0.9);
        }
    }
    elag_sparse_net_free(&sp);
    elag_sparse_net_free(&dn);
    free(x), free(logits), free(ts), free(td);
    return st;
}
