/*
 * Test fixtures (see fixtures.h).
 */
#include "support/fixtures.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

void elag_test_small_config(elag_config *cfg, int hidden)
{
    elag_config_defaults(cfg);
    snprintf(cfg->name, sizeof cfg->name, "test");
    snprintf(cfg->source, sizeof cfg->source, "test.yaml");
    snprintf(cfg->device, sizeof cfg->device, "cpu");
    cfg->seed = 7;
    cfg->data.dataset = ELAG_DATASET_SYNTHETIC;
    cfg->data.synthetic.train = 512;
    cfg->data.synthetic.test = 256;
    cfg->data.synthetic.features = 16;
    cfg->data.synthetic.classes = 4;
    cfg->data.synthetic.noise = 0.5;
    cfg->model.preset[0] = '\0';
    cfg->model.n_layers = 3;
    memset(cfg->model.layers, 0, sizeof cfg->model.layers);
    cfg->model.layers[0] = (elag_layer_config){
        .type = ELAG_LAYER_LINEAR, .name = "fc1", .out_features = hidden, .bias = 1, .prunable = 1};
    cfg->model.layers[1] = (elag_layer_config){.type = ELAG_LAYER_RELU, .name = "relu1"};
    cfg->model.layers[2] = (elag_layer_config){
        .type = ELAG_LAYER_LINEAR, .name = "fc2", .out_features = 4, .bias = 1, .prunable = 1};
    cfg->train.epochs = 3;
    cfg->train.batch_size = 32;
    cfg->train.threads = 1;
    cfg->train.log_every = 1000;
    cfg->train.optimizer.type = ELAG_OPTIMIZER_SGD;
    cfg->train.optimizer.lr = 0.05;
    cfg->train.optimizer.momentum = 0.9;
}

const char elag_test_tiny_yaml[] =
    "name: tiny\n"
    "device: cpu\n"
    "data:\n"
    "  dataset: synthetic\n"
    "  synthetic: {train: 128, test: 64, features: 8, classes: 3}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: linear, out_features: 8}\n"
    "    - {type: relu}\n"
    "    - {type: linear, out_features: 3}\n"
    "train: {epochs: 1, batch_size: 32}\n"
    "prune: {method: gmp, target: 0.5, start: 0, end: 0.5, frequency: 1}\n";

void elag_test_train(const elag_config *cfg, const char *dir, const char *resume, int stop_after,
                     elag_train_summary *out)
{
    elag_backend *be;
    cr_assert_eq(elag_backend_open(cfg->device, 1, &be, NULL, 0), ELAG_OK, "%s",
                 elag_last_error());
    elag_run_data data;
    cr_assert_eq(elag_run_data_load(cfg, &data), ELAG_OK, "%s", elag_last_error());
    elag_train_options opts = {.out_dir = dir, .resume_path = resume,
                               .stop_after_epochs = stop_after};
    cr_assert_eq(elag_train_run(cfg, be, &data, &opts, out), ELAG_OK, "%s", elag_last_error());
    elag_run_data_free(&data);
    elag_backend_free(be);
}
