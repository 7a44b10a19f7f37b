/*
 * `elag export MODEL --format F [--thin] [-o FILE]`: writes a checkpoint's pruned model as a
 * self-contained safetensors export (include/elag/export.h) with every linear weight
 * dense, CSR or Blocked-ELL, or, with `auto`, in the format that ran fastest for that
 * layer on the target device. Prints one line per layer. An existing output file is
 * replaced only with --force, and never when it is MODEL itself (under any name). --thin
 * first removes the constant neurons and filters (elag_net_thin: the logits of the
 * smaller model are checked against the masked model's on test samples; nothing is
 * written when they differ) and prints what each layer kept. `--format onnx` writes the
 * same inference graph as a standard ONNX model instead (elag/onnx.h, docs/onnx.md).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char export_usage[] =
    "usage: elag export MODEL --format dense|csr|bell[:B]|auto [options]\n"
    "       elag export MODEL --thin [--format F] [options]\n"
    "       elag export MODEL --format onnx [--thin] [options]\n"
    "\n"
    "Writes the checkpoint MODEL (model.safetensors) as a self-contained export: per\n"
    "linear layer its masked weight as dense, CSR (indptr/indices/values) or Blocked-ELL\n"
    "(block size B, default 16), its bias, the layer graph and the config. `elag infer`\n"
    "runs the file without the checkpoint. `auto` times each layer's forward at batch\n"
    "256 on the device (dense, csr, bell:16, bell:32) and keeps the fastest.\n"
    "--thin first removes the neurons and conv filters whose weights are all zero (their\n"
    "constant output folded into the next layer; never the classes) and checks that the\n"
    "smaller model's logits equal the masked model's on test samples (exit 1, nothing\n"
    "written, when they do not); the format then applies to the smaller weights.\n"
    "`onnx` writes the model as standard ONNX (opset 13: Gemm/Conv with batch norm folded,\n"
    "Relu, pools, Flatten; dense weights, pruned ones zero) that takes the normalised input\n"
    "(N, features) or (N, C, H, W), for ONNX Runtime and other runtimes (docs/onnx.md).\n"
    "\n"
    "options:\n"
    "  --format F     dense | csr | bell | bell:B | auto | onnx (required; --thin: dense)\n"
    "  --thin         remove constant neurons and filters first (a smaller dense model)\n"
    "  -o, --out FILE output file (default: next to MODEL, <name>[.thin].<format>.safetensors)\n"
    "  --force        replace FILE if it exists (never MODEL itself)\n"
    "  --device D     auto only: auto | cpu | cpu-ref | cuda | cuda:N (default auto)\n"
    "  --threads N    auto only: CPU threads, 0 = all cores (default 0)\n"
    "  --help         this help\n";

static int parse_threads(const char *cmd, const char *v, int *out)
{
    char *end;
    errno = 0;
    long t = strtol(v, &end, 10);
    if (errno || end == v || *end || t < 0 || t > 1024)
        return elag_cli_usage_error(cmd, "--threads '%s': expected an integer in 0..1024", v);
    *out = (int)t;
    return 0;
}

/* Default output: MODEL without ".safetensors", then "[.thin].<format>.safetensors". */
static void default_out(const char *model, const char *fmt, int thin, char *buf, size_t len)
{
    const char *ext = ".safetensors";
    size_t n = strlen(model), e = strlen(ext);
    int stem = (int)(n > e && strcmp(model + n - e, ext) == 0 ? n - e : n);
    char tag[32];
    snprintf(tag, sizeof tag, "%s", fmt);
    char *colon = strchr(tag, ':');
    if (colon) memmove(colon, colon + 1, strlen(colon)); /* bell:32 -> bell32 */
    if (strcmp(fmt, "onnx") == 0)
        snprintf(buf, len, "%.*s%s.onnx", stem, model, thin ? ".thin" : "");
    else snprintf(buf, len, "%.*s%s.%s.safetensors", stem, model, thin ? ".thin" : "", tag);
}

static void print_ms(double ms)
{
    if (ms < 0) printf(" %9s", "-");
    else printf(" %9.3f", ms);
}

static void print_layers(const elag_net_t *net, int is_auto)
{
    printf("%-12s %-11s %-8s %10s %12s", "layer", "shape", "format", "nonzero", "bytes");
    if (is_auto) printf(" %9s %9s %9s %9s", "dense_ms", "csr_ms", "bell16_ms", "bell32_ms");
    printf("\n");
    int n = elag_net_weight_count(net);
    for (int i = 0; i < n; i++) {
        elag_weight_info w;
        elag_weight_timing tm;
        if (elag_net_weight(net, i, &w) != ELAG_OK ||
            elag_net_weight_timing(net, i, &tm) != ELAG_OK)
            continue; /* i < n: cannot happen */
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%d", w.rows, w.cols);
        printf("%-12s %-11s %-8s %10" PRId64 " %12" PRId64, w.layer, shape, w.format, w.nonzero,
               w.bytes);
        if (is_auto) {
            print_ms(tm.dense_ms);
            print_ms(tm.csr_ms);
            print_ms(tm.bell16_ms);
            print_ms(tm.bell32_ms);
        }
        printf("\n");
    }
    /* formats the device refused were skipped, not failed: say which and why */
    for (int i = 0; is_auto && i < n; i++) {
        elag_weight_info w;
        elag_weight_timing tm;
        if (elag_net_weight(net, i, &w) == ELAG_OK &&
            elag_net_weight_timing(net, i, &tm) == ELAG_OK && tm.refused[0])
            printf("%s: skipped %s\n", w.layer, tm.refused);
    }
    if (is_auto && elag_net_auto_note(net)[0]) printf("auto: %s\n", elag_net_auto_note(net));
}

/* What --thin removed per layer, and what its check measured. */
static void print_thin(const elag_net_t *net, const elag_thin_result *r)
{
    printf("\nthinned: %-12s %8s %8s %6s %6s %6s %6s\n", "layer", "units", "kept", "zero",
           "folded", "merged", "held");
    for (int i = 0; i < elag_net_thin_count(net); i++) {
        elag_thin_info t;
        if (elag_net_thin_layer(net, i, &t) != ELAG_OK) continue; /* i < count: cannot happen */
        printf("thinned: %-12s %8d %8d %6d %6d %6d %6d\n", t.layer, t.original, t.kept, t.zero,
               t.folded, t.merged, t.held);
    }
    printf("checked: logits of the thinned and the masked model on %ld test samples differ by "
           "%.3g at most (relative; tolerance %.3g)\n",
           r->samples, r->max_rel_error, r->tolerance);
}

int elag_cmd_export(int argc, char **argv)
{
    const char *model = NULL, *format = NULL, *out = NULL, *device = "auto", *threads_s = NULL;
    int force = 0, thin = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(export_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--force") == 0) {
            force = 1;
            continue;
        }
        if (strcmp(argv[i], "--thin") == 0) {
            thin = 1;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--format", &format)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--out", &out)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "-o", &out)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--device", &device)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "--threads", &threads_s)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("export", argv[i], export_usage);
        if (model) return elag_cli_usage_error("export", "unexpected argument '%s'", argv[i]);
        model = argv[i];
    }
    if (!model) return elag_cli_usage_error("export", "missing MODEL");
    if (!format && thin) format = "dense";
    if (!format) return elag_cli_usage_error("export", "missing --format");
    int is_auto = 0, is_onnx = strcmp(format, "onnx") == 0;
    if (!is_onnx && elag_export_format_parse(format, &is_auto) != ELAG_OK)
        return elag_cli_usage_error("export", "%s", elag_last_error());
    int threads = 0;
    if (threads_s && parse_threads("export", threads_s, &threads)) return 2;
    char out_buf[1200];
    if (!out) {
        default_out(model, format, thin, out_buf, sizeof out_buf);
        out = out_buf;
    }
    /* never write over the checkpoint being read (same file under any name) */
    struct stat in_st, out_st;
    if (stat(model, &in_st) == 0 && stat(out, &out_st) == 0 && in_st.st_dev == out_st.st_dev &&
        in_st.st_ino == out_st.st_ino)
        return elag_cli_usage_error("export", "-o %s is MODEL itself; choose another output file",
                                    out);
    /* nor over any other file unless asked to (lstat: a dangling link is a file there too) */
    if (!force && lstat(out, &out_st) == 0)
        return elag_cli_usage_error("export", "%s exists; pass --force to replace it", out);

    elag_net_t *net = NULL;
    elag_status st = elag_net_from_checkpoint(&net, model);
    if (st != ELAG_OK) return elag_cli_fail(st);
    elag_thin_result thin_res = ELAG_THIN_RESULT_INIT;
    if (thin) {
        st = elag_net_thin(net, NULL, &thin_res);
        if (st != ELAG_OK) {
            elag_net_free(net);
            return elag_cli_fail(st);
        }
    }
    elag_device_t *dev = NULL;
    if (is_auto) {
        elag_device_options d = ELAG_DEVICE_OPTIONS_INIT;
        d.device = device;
        d.threads = threads;
        st = elag_device_open(&dev, &d);
        if (st == ELAG_OK && elag_device_note(dev)[0]) elag_cli_note(elag_device_note(dev), NULL);
    }
    if (st == ELAG_OK && !is_onnx) st = elag_net_convert(net, format, dev);
    if (st == ELAG_OK) st = is_onnx ? elag_net_save_onnx(net, out) : elag_net_save(net, out);
    if (st == ELAG_OK) {
        struct stat sb;
        long long size = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
        int64_t params, nonzero;
        double sparsity = elag_net_sparsity(net, &params, &nonzero);
        printf("wrote %s (%lld bytes)%s%s\n", out, size, is_auto ? ", timed on " : "",
               is_auto ? elag_device_name(dev) : "");
        printf("sparsity %.4f (%lld of %lld prunable weights nonzero)\n\n", sparsity,
               (long long)nonzero, (long long)params);
        print_layers(net, is_auto);
        if (thin) print_thin(net, &thin_res);
    }
    elag_device_free(dev);
    elag_net_free(net);
    return st == ELAG_OK ? 0 : elag_cli_fail(st);
}
