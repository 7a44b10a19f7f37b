/*
 * `elag eval MODEL`: rebuilds the model from the config stored in a checkpoint,
 * evaluates it on that config's test set, and prints test accuracy and a per-layer
 * sparsity table (or one JSON object with --json).
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "train/checkpoint.h"
#include "train/report.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAL_BATCH 1000

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

static void print_json(const char *path, const elag_train_summary *s, double sps)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", path);
    cJSON_AddStringToObject(o, "device", s->device);
    cJSON_AddNumberToObject(o, "test_accuracy", s->test_accuracy);
    cJSON_AddNumberToObject(o, "test_loss", s->test_loss);
    cJSON_AddNumberToObject(o, "samples_per_second", sps);
    cJSON_AddNumberToObject(o, "sparsity", s->sparsity);
    cJSON_AddNumberToObject(o, "params_total", (double)s->params_total);
    cJSON_AddNumberToObject(o, "params_prunable", (double)s->params_prunable);
    cJSON_AddNumberToObject(o, "params_nonzero", (double)s->params_nonzero);
    elag_report_layers_json(o, s);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text) printf("%s\n", text);
    free(text);
}

static void print_table(const char *path, const elag_train_summary *s, double sps)
{
    printf("model          %s\n", path);
    printf("device         %s\n", s->device);
    printf("test accuracy  %.4f\n", s->test_accuracy);
    printf("test loss      %.4f\n", s->test_loss);
    printf("throughput     %.0f samples/s\n\n", sps);
    printf("%-12s %-12s %10s %10s %9s\n", "layer", "shape", "params", "nonzero", "sparsity");
    for (int i = 0; i < s->n_layers; i++) {
        const elag_layer_summary *l = &s->layers[i];
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%d", l->rows, l->cols);
        printf("%-12s %-12s %10zu %10zu %9.4f\n", l->name, shape, l->params, l->nonzero,
               1.0 - (double)l->nonzero / (double)l->params);
    }
    printf("%-12s %-12s %10zu %10zu %9.4f\n", "total", "", s->params_prunable, s->params_nonzero,
           s->sparsity);
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
            return elag_cli_usage_error("eval", "unknown option '%s'", argv[i]);
        if (model_path) return elag_cli_usage_error("eval", "unexpected argument '%s'", argv[i]);
        model_path = argv[i];
    }
    if (!model_path) return elag_cli_usage_error("eval", "missing MODEL");

    elag_checkpoint ck;
    elag_status st = elag_checkpoint_open(model_path, &ck);
    if (st != ELAG_OK) return elag_cli_fail(st);
    elag_backend *be = NULL;
    elag_run_data data = {0};
    elag_model m = {0};
    elag_train_summary s;
    memset(&s, 0, sizeof s);
    double sps = 0;
    char note[256] = "";
    st = elag_backend_open(device, ck.cfg.train.threads, &be, note, sizeof note);
    if (st == ELAG_OK && note[0] && !json) fprintf(stderr, "elag: %s\n", note);
    if (st == ELAG_OK) st = elag_run_data_load_test(&ck.cfg, &data);
    if (st == ELAG_OK && (data.test.features != ck.input_dim || data.test.classes != ck.classes))
        st = elag_fail(ELAG_ERR_INPUT, "%s: model takes %d features and %d classes, its test set "
                                       "has %d and %d", model_path, ck.input_dim, ck.classes,
                       data.test.features, data.test.classes);
    if (st == ELAG_OK)
        st = elag_model_init(&m, &ck.cfg, ck.input, ck.classes, EVAL_BATCH, 0, be);
    if (st == ELAG_OK) st = elag_checkpoint_restore(&ck, &m, 0);
    if (st == ELAG_OK) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        st = elag_evaluate(&m, &data.test, &s.test_loss, &s.test_accuracy);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        sps = secs > 0 ? (double)data.test.n / secs : 0;
    }
    if (st == ELAG_OK) st = elag_model_sparsity(&m, &s);
    if (st == ELAG_OK) {
        snprintf(s.device, sizeof s.device, "%s", be->name);
        if (json)
            print_json(model_path, &s, sps);
        else
            print_table(model_path, &s, sps);
    }
    elag_model_free(&m);
    elag_run_data_free(&data);
    elag_backend_free(be);
    elag_checkpoint_close(&ck);
    return st == ELAG_OK ? 0 : elag_cli_fail(st);
}
