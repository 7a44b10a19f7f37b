/*
 * `elag import MODEL.onnx -o FILE.safetensors [--set KEY=VALUE]...`: an ONNX model (from
 * PyTorch's torch.onnx.export, say) read as an elag checkpoint (elag/onnx.h): `elag eval`
 * evaluates it, `elag export` exports it, and `train.init_from: FILE` starts a training
 * run (pruning, fine-tuning) from its weights. An existing output file is replaced only
 * with --force. Prints one line per layer: elag's name, kind, width and the ONNX node.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <string.h>
#include <sys/stat.h>

#define MAX_SETS 64

static const char import_usage[] =
    "usage: elag import MODEL.onnx [-o FILE.safetensors] [--set KEY=VALUE]... [--force]\n"
    "\n"
    "Reads an ONNX model (one chain of Gemm, MatMul+Add, Conv, BatchNormalization, Relu,\n"
    "MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape to (N, -1)) and writes an\n"
    "elag checkpoint: its weights (FLOAT16/BFLOAT16/DOUBLE converted to F32), no optimizer\n"
    "state, and a config whose model.layers describe the network with elag's default\n"
    "layer names. The model must take the normalised input elag's data config gives.\n"
    "`elag eval FILE` evaluates it; `train.init_from: FILE` in a config starts training\n"
    "(pruning, fine-tuning) from it (docs/onnx.md).\n"
    "\n"
    "options:\n"
    "  -o, --out FILE   output checkpoint (default: MODEL without .onnx + .safetensors)\n"
    "  --set KEY=VALUE  a config key of the embedded config (data.*, train.*), repeatable\n"
    "  --force          replace FILE if it exists\n"
    "  --help           this help\n";

int elag_cmd_import(int argc, char **argv)
{
    const char *model = NULL, *out = NULL;
    const char *sets[MAX_SETS];
    int n_sets = 0, force = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(import_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--force") == 0) {
            force = 1;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--set", &v)) != 0) {
            if (r < 0) return 2;
            if (n_sets == MAX_SETS) return elag_cli_usage_error("import", "too many --set options");
            sets[n_sets++] = v;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--out", &out)) != 0 ||
            (r = elag_cli_take_value(argc, argv, &i, "-o", &out)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("import", argv[i], import_usage);
        if (model) return elag_cli_usage_error("import", "unexpected argument '%s'", argv[i]);
        model = argv[i];
    }
    if (!model) return elag_cli_usage_error("import", "missing MODEL.onnx");
    char out_buf[1200];
    if (!out) {
        size_t n = strlen(model);
        int stem = (int)(n > 5 && strcmp(model + n - 5, ".onnx") == 0 ? n - 5 : n);
        snprintf(out_buf, sizeof out_buf, "%.*s.safetensors", stem, model);
        out = out_buf;
    }
    struct stat in_st, out_st;
    if (stat(model, &in_st) == 0 && stat(out, &out_st) == 0 && in_st.st_dev == out_st.st_dev &&
        in_st.st_ino == out_st.st_ino)
        return elag_cli_usage_error("import", "-o %s is MODEL itself; choose another output file",
                                    out);
    if (!force && lstat(out, &out_st) == 0)
        return elag_cli_usage_error("import", "%s exists; pass --force to replace it", out);

    elag_import_options o = ELAG_IMPORT_OPTIONS_INIT;
    o.overrides = sets;
    o.n_overrides = n_sets;
    elag_import_result r = ELAG_IMPORT_RESULT_INIT;
    elag_status st = elag_import_onnx(model, out, &o, &r);
    if (st != ELAG_OK) return elag_cli_fail(st);
    printf("wrote %s: %d layers, input (%d, %d, %d) per sample, %d classes\n\n", out, r.n_layers,
           r.input_shape[0], r.input_shape[1], r.input_shape[2], r.classes);
    for (int i = 0; i < r.n_layers && i < ELAG_IMPORT_MAX_LAYERS; i++) printf("%s\n", r.layers[i]);
    return 0;
}
