/*
 * `elag eval MODEL`: elag_run_eval (include/elag/train.h) rebuilds the model from the
 * config stored in a checkpoint and evaluates it on that config's test set; this prints
 * test accuracy and a per-layer sparsity table (or one JSON object with --json).
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char eval_usage[] =
    "usage: elag eval MODEL [options]\n"
    "\n"
    "Test accuracy and per-layer sparsity of a checkpoint (model.safetensors). The test\n"
    "set is the one the checkpoint's config names.\n"
    "\n"
    "options:\n"
    "  --device D   auto | cpu | cpu-ref | cuda | cuda:N (default auto)\n"
    "  --json       print one JSON object on stdout\n"
    "  --help       this help\n";

/* "layers": [{name, shape, params, nonzero, sparsity}], as summary.json has them */
static void add_layers_json(cJSON *parent, const elag_eval_result *r)
{
    cJSON *layers = cJSON_AddArrayToObject(parent, "layers");
    for (int i = 0; i < r->n_weights; i++) {
        const elag_weight_info *l = &r->weights[i];
        cJSON *lo = cJSON_CreateObject();
        cJSON_AddStringToObject(lo, "name", l->layer);
        cJSON *shape = cJSON_AddArrayToObject(lo, "shape");
        for (int d = 0; d < l->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)l->shape[d]));
        cJSON_AddNumberToObject(lo, "params", (double)l->params);
        cJSON_AddNumberToObject(lo, "nonzero", (double)l->nonzero);
        cJSON_AddNumberToObject(lo, "sparsity",
                                l->params ? 1.0 - (double)l->nonzero / (double)l->params : 0);
        cJSON_AddItemToArray(layers, lo);
    }
}

static void print_json(const char *path, const elag_eval_result *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", path);
    cJSON_AddStringToObject(o, "device", r->device);
    cJSON_AddNumberToObject(o, "test_accuracy", r->test_accuracy);
    cJSON_AddNumberToObject(o, "test_loss", r->test_loss);
    cJSON_AddNumberToObject(o, "samples_per_second", r->samples_per_second);
    cJSON_AddNumberToObject(o, "sparsity", r->sparsity);
    cJSON_AddNumberToObject(o, "params_total", (double)r->params_total);
    cJSON_AddNumberToObject(o, "params_prunable", (double)r->params_prunable);
    cJSON_AddNumberToObject(o, "params_nonzero", (double)r->params_nonzero);
    add_layers_json(o, r);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text) printf("%s\n", text);
    free(text);
}

static void print_table(const char *path, const elag_eval_result *r)
{
    printf("model          %s\n", path);
    printf("device         %s\n", r->device);
    printf("test accuracy  %.4f\n", r->test_accuracy);
    printf("test loss      %.4f\n", r->test_loss);
    printf("throughput     %.0f samples/s\n\n", r->samples_per_second);
    printf("%-12s %-12s %10s %10s %9s\n", "layer", "shape", "params", "nonzero", "sparsity");
    for (int i = 0; i < r->n_weights; i++) {
        const elag_weight_info *l = &r->weights[i];
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%d", l->rows, l->cols);
        printf("%-12s %-12s %10" PRId64 " %10" PRId64 " %9.4f\n", l->layer, shape, l->params,
               l->nonzero, 1.0 - (double)l->nonzero / (double)l->params);
    }
    printf("%-12s %-12s %10" PRId64 " %10" PRId64 " %9.4f\n", "total", "", r->params_prunable,
           r->params_nonzero, r->sparsity);
}

int elag_cmd_eval(int argc, char **argv)
{
    const char *model_path = NULL, *device = "auto";
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(eval_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) { json = 1; continue; }
        if ((r = elag_cli_take_value(argc, argv, &i, "--device", &device)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("eval", argv[i], eval_usage);
        if (model_path) return elag_cli_usage_error("eval", "unexpected argument '%s'", argv[i]);
        model_path = argv[i];
    }
    if (!model_path) return elag_cli_usage_error("eval", "missing MODEL");

    elag_eval_options o = ELAG_EVAL_OPTIONS_INIT;
    o.device = device;
    o.note = json ? NULL : elag_cli_note;
    elag_eval_result r = ELAG_EVAL_RESULT_INIT;
    elag_status st = elag_run_eval(model_path, &o, &r);
    if (st != ELAG_OK) return elag_cli_fail(st);
    if (json)
        print_json(model_path, &r);
    else
        print_table(model_path, &r);
    return 0;
}
