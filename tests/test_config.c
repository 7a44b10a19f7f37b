/*
 * Tests of the config module (host/config/): defaults, presets, every documented error
 * format with its file:line:column, --set overrides, step-vs-fraction prune points,
 * the to_yaml -> parse round trip, the config hash, and the configs shipped in configs/.
 * Fixtures are in tests/data/configs/; each names the line and column it breaks at.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include "config/config.h"
#include "support/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE(name) ELAG_SOURCE_DIR "/tests/data/configs/" name
#define SHIPPED(name) ELAG_SOURCE_DIR "/configs/" name

/* Parses yaml (with optional overrides) as "test.yaml". */
static elag_status parse(const char *yaml, const char *const *sets, int n_sets, elag_config *cfg)
{
    return elag_config_parse(yaml, strlen(yaml), "test.yaml", sets, n_sets, cfg);
}

/* Parses yaml that must fail with status want; returns the message. */
static const char *parse_fail(const char *yaml, const char *const *sets, int n_sets,
                              elag_status want)
{
    elag_config cfg;
    elag_status st = parse(yaml, sets, n_sets, &cfg);
    cr_assert_eq(st, want, "status %d, want %d; message: %s", st, want, elag_last_error());
    return elag_last_error();
}

static elag_status load_fixture(const char *path, elag_config *cfg)
{
    return elag_config_load(path, NULL, 0, cfg);
}

/* memcmp of two configs with `source` ignored (the struct keeps unused bytes zero). */
static int config_equal(const elag_config *a, const elag_config *b)
{
    elag_config x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    memset(x.source, 0, sizeof x.source);
    memset(y.source, 0, sizeof y.source);
    return memcmp(&x, &y, sizeof x) == 0;
}

static void assert_round_trip(const elag_config *cfg)
{
    char *text = NULL, *again = NULL;
    elag_config back;
    cr_assert_eq(elag_config_to_yaml(cfg, &text), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_config_parse(text, strlen(text), "resolved.yaml", NULL, 0, &back), ELAG_OK,
                 "%s\n--- text ---\n%s", elag_last_error(), text);
    cr_assert(config_equal(cfg, &back), "round trip changed the config:\n%s", text);
    cr_assert_eq(elag_config_to_yaml(&back, &again), ELAG_OK);
    cr_assert_str_eq(text, again, "to_yaml is not deterministic");
    free(text);
    free(again);
}

Test(config, defaults)
{
    elag_config cfg, def;
    cr_assert_eq(parse("{}", NULL, 0, &cfg), ELAG_OK, "%s", elag_last_error());
    elag_config_defaults(&def);
    cr_assert(config_equal(&cfg, &def), "{} must give elag_config_defaults");
    cr_assert_str_eq(cfg.name, "run");
    cr_assert_str_eq(cfg.source, "test.yaml");
    cr_assert_str_eq(cfg.device, "auto");
    cr_assert_eq(cfg.seed, 0);
    cr_assert_eq(cfg.data.dataset, ELAG_DATASET_FASHION_MNIST);
    cr_assert_str_eq(cfg.data.path, "/usr/share/datasets/fashion-mnist");
    cr_assert_eq(cfg.data.normalize, 1);
    cr_assert_float_eq(cfg.data.mean, 0.2860, 1e-12);
    cr_assert_float_eq(cfg.data.std, 0.3530, 1e-12);
    cr_assert_eq(cfg.data.synthetic.train, 2048);
    cr_assert_eq(cfg.data.synthetic.classes, 4);
    cr_assert_eq(cfg.train.epochs, 10);
    cr_assert_eq(cfg.train.batch_size, 128);
    cr_assert_eq(cfg.train.log_every, 100);
    cr_assert_eq(cfg.train.optimizer.type, ELAG_OPTIMIZER_SGD);
    cr_assert_float_eq(cfg.train.optimizer.lr, 0.05, 1e-15);
    cr_assert_float_eq(cfg.train.optimizer.momentum, 0.9, 1e-15);
    cr_assert_float_eq(cfg.train.optimizer.weight_decay, 0.0, 0);
    cr_assert_float_eq(cfg.train.optimizer.beta2, 0.999, 1e-15);
    cr_assert_float_eq(cfg.train.optimizer.eps, 1e-8, 1e-20);
    cr_assert_eq(cfg.train.lr_schedule.type, ELAG_LR_SCHEDULE_CONSTANT);
    cr_assert_float_eq(cfg.train.lr_schedule.gamma, 0.1, 1e-15);
    cr_assert_eq(cfg.prune.method, ELAG_PRUNE_METHOD_NONE);
    cr_assert_eq(cfg.prune.scope, ELAG_PRUNE_SCOPE_LAYER);
    cr_assert_float_eq(cfg.prune.target, 0.9, 1e-15);
    cr_assert_eq(cfg.prune.start.is_fraction, 0);
    cr_assert_float_eq(cfg.prune.start.value, 0.0, 0);
    cr_assert_eq(cfg.prune.end.is_fraction, 1);
    cr_assert_float_eq(cfg.prune.end.value, 1.0, 0);
    cr_assert_eq(cfg.prune.frequency, 100);
    cr_assert_float_eq(cfg.prune.exponent, 3.0, 0);
    cr_assert_str_eq(cfg.model.preset, "lenet-300-100");
    cr_assert_eq(cfg.model.n_layers, 5);
}

Test(config, preset_expansion)
{
    static const struct {
        elag_layer_kind type;
        const char *name;
        int out, bias, prunable;
    } want[] = {{ELAG_LAYER_LINEAR, "fc1", 300, 1, 1},
                {ELAG_LAYER_RELU, "relu1", 0, 0, 0},
                {ELAG_LAYER_LINEAR, "fc2", 100, 1, 1},
                {ELAG_LAYER_RELU, "relu2", 0, 0, 0},
                {ELAG_LAYER_LINEAR, "fc3", 10, 1, 1}};
    elag_config cfg;
    cr_assert_eq(parse("model:\n  preset: lenet-300-100\n", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_str_eq(cfg.model.preset, "lenet-300-100");
    cr_assert_eq(cfg.model.n_layers, 5);
    for (int i = 0; i < 5; i++) {
        const elag_layer_config *L = &cfg.model.layers[i];
        cr_expect_eq(L->type, want[i].type, "layer %d type", i);
        cr_expect_str_eq(L->name, want[i].name, "layer %d name", i);
        cr_expect_eq(L->out_features, want[i].out, "layer %d out_features", i);
        cr_expect_eq(L->bias, want[i].bias, "layer %d bias", i);
        cr_expect_eq(L->prunable, want[i].prunable, "layer %d prunable", i);
    }
    const char *msg = parse_fail("model:\n  preset: resnet-9000\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "test.yaml:2:11: 'model.preset' must be one of lenet-300-100, lenet-5, "
                          "vgg-small, got 'resnet-9000'"),
              "%s", msg);
}

/* The CNN presets expand into layers whose resolved YAML parses back to the same config. */
static void preset_round_trip(const char *preset, int n_layers, const char *first_type)
{
    char yaml[128];
    snprintf(yaml, sizeof yaml, "model:\n  preset: %s\n", preset);
    elag_config cfg, again;
    cr_assert_eq(parse(yaml, NULL, 0, &cfg), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(cfg.model.n_layers, n_layers, "%s", preset);
    cr_assert_str_eq(elag_layer_kind_name(cfg.model.layers[0].type), first_type);
    char *text = NULL;
    cr_assert_eq(elag_config_to_yaml(&cfg, &text), ELAG_OK);
    cr_assert(strstr(text, "kernel: [3, 3]") || strstr(text, "kernel: [5, 5]"), "%s", text);
    cr_assert_eq(parse(text, NULL, 0, &again), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(memcmp(cfg.model.layers, again.model.layers, sizeof cfg.model.layers), 0,
                 "%s layers differ after a round trip", preset);
    free(text);
}

Test(config, cnn_presets_round_trip)
{
    preset_round_trip("lenet-5", 12, "conv2d");
    preset_round_trip("vgg-small", 19, "conv2d");
}

/* Layer keys: what each kind takes, int-or-pair values, required keys, dependent defaults. */
Test(config, cnn_layer_keys)
{
    elag_config cfg;
    cr_assert_eq(parse("model:\n  layers:\n"
                       "    - {type: conv2d, out_channels: 8, kernel: [3, 5], padding: 1}\n"
                       "    - {type: maxpool, kernel: 2}\n"
                       "    - {type: batchnorm, momentum: 0.2}\n"
                       "    - {type: dropout, p: 0.1}\n"
                       "    - {type: flatten}\n    - {type: linear, out_features: 10}\n",
                       NULL, 0, &cfg),
                 ELAG_OK, "%s", elag_last_error());
    const elag_layer_config *c = &cfg.model.layers[0], *pool = &cfg.model.layers[1];
    cr_assert_str_eq(c->name, "conv1");
    cr_assert(c->kernel[0] == 3 && c->kernel[1] == 5 && c->padding[0] == 1 && c->padding[1] == 1);
    cr_assert(c->stride[0] == 1 && c->stride[1] == 1 && c->bias == 1 && c->prunable == 1);
    cr_assert(pool->stride[0] == 2 && pool->stride[1] == 2, "pool stride defaults to kernel");
    cr_assert_str_eq(pool->name, "pool1");
    cr_assert(cfg.model.layers[2].momentum == 0.2 && cfg.model.layers[2].eps == 1e-5);
    cr_assert_str_eq(cfg.model.layers[2].name, "bn1");
    cr_assert(cfg.model.layers[3].p == 0.1);

    const char *msg = parse_fail("model:\n  layers:\n    - {type: conv2d, out_channels: 4}\n",
                                 NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'model.layers[0].kernel' is required for a conv2d layer"), "%s", msg);
    msg = parse_fail("model:\n  layers:\n    - {type: relu, kernel: 3}\n", NULL, 0,
                     ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "test.yaml:3:20: 'model.layers[0].kernel' does not apply to a relu "
                          "layer"),
              "%s", msg);
    msg = parse_fail("model:\n  layers:\n    - {type: maxpool, kernel: [2, 2, 2]}\n", NULL, 0,
                     ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'model.layers[0].kernel' expects an integer or a list of 2 integers"),
              "%s", msg);
    msg = parse_fail("model:\n  layers:\n    - {type: dropout, p: 1.0}\n", NULL, 0,
                     ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'model.layers[0].p' must be in [0, 1)"), "%s", msg);
    msg = parse_fail("model:\n  layers:\n    - {type: conv3d}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'model.layers[0].type' must be one of linear, relu, flatten, conv2d"),
              "%s", msg);
    msg = parse_fail("model:\n  layers:\n    - {type: conv2d, out_channels: 4, kernal: 3}\n",
                     NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "did you mean 'model.layers[0].kernel'?"), "%s", msg);
}

Test(config, explicit_layers_and_generated_names)
{
    elag_config cfg;
    cr_assert_eq(load_fixture(FIXTURE("layers.yaml"), &cfg), ELAG_OK, "%s", elag_last_error());
    cr_assert_str_eq(cfg.model.preset, "");
    cr_assert_eq(cfg.model.n_layers, 4);
    cr_assert_str_eq(cfg.model.layers[0].name, "flatten1");
    cr_assert_str_eq(cfg.model.layers[1].name, "fc1");
    cr_assert_eq(cfg.model.layers[1].out_features, 16);
    cr_assert_eq(cfg.model.layers[1].bias, 1);
    cr_assert_str_eq(cfg.model.layers[2].name, "relu1");
    cr_assert_str_eq(cfg.model.layers[3].name, "head");
    cr_assert_eq(cfg.model.layers[3].bias, 0);
    cr_assert_eq(cfg.model.layers[3].prunable, 0);
    cr_assert_eq(cfg.data.dataset, ELAG_DATASET_SYNTHETIC);
    cr_assert_eq(cfg.data.synthetic.features, 8);
    cr_assert_float_eq(cfg.data.synthetic.noise, 0.25, 0);

    const char *msg = parse_fail("model:\n  layers:\n    - {type: linear, out_features: 4}\n"
                                 "    - {type: linear, name: fc1, out_features: 2}\n",
                                 NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "test.yaml:4:28: layer name 'fc1' of model.layers[1] is already used by "
                          "model.layers[0]"),
              "%s", msg);
    msg = parse_fail("model:\n  layers:\n    - {type: linear}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'model.layers[0].out_features' is required for a linear layer"), "%s",
              msg);
    msg = parse_fail("model:\n  layers:\n    - {type: relu, out_features: 3}\n", NULL, 0,
                     ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'model.layers[0].out_features' does not apply to a relu layer"), "%s",
              msg);
    msg = parse_fail("model:\n  layers:\n    - {type: linear, out_featres: 3}\n", NULL, 0,
                     ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "test.yaml:3:22: unknown key 'model.layers[0].out_featres' (did you "
                          "mean 'model.layers[0].out_features'?)"),
              "%s", msg);
    /* a resolved config lists preset and layers; they must agree */
    msg = parse_fail("model:\n  preset: lenet-300-100\n  layers:\n    - {type: linear, "
                     "out_features: 10}\n",
                     NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'model.layers' differs from what model.preset 'lenet-300-100'"), "%s",
              msg);
}

Test(config, unknown_key_suggests)
{
    elag_config cfg;
    cr_assert_eq(load_fixture(FIXTURE("typo.yaml"), &cfg), ELAG_ERR_INPUT);
    const char *msg = elag_last_error();
    cr_assert(strstr(msg, "typo.yaml:5:3: unknown key 'prune.targt' (did you mean "
                          "'prune.target'?)"),
              "%s", msg);
    cr_assert(strncmp(msg, FIXTURE("typo.yaml"), strlen(FIXTURE("typo.yaml"))) == 0, "%s", msg);

    msg = parse_fail("train:\n  lr: 0.1\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:2:3: unknown key 'train.lr' (did you mean "
                          "'train.optimizer.lr'?)");
    msg = parse_fail("seed: 1\nzebra_crossing: 3\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:2:1: unknown key 'zebra_crossing'");
    msg = parse_fail("train:\n  epochs: 2\n  epochs: 3\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:3:3: duplicate key 'train.epochs' (first at line 2)");
}

Test(config, wrong_type)
{
    elag_config cfg;
    cr_assert_eq(load_fixture(FIXTURE("bad_type.yaml"), &cfg), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "bad_type.yaml:3:11: 'train.epochs' expects an integer, "
                                        "got 'ten'"),
              "%s", elag_last_error());
    const char *msg = parse_fail("train:\n  epochs: 1e3\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:2:11: 'train.epochs' expects an integer, got '1e3'");
    msg = parse_fail("train:\n  epochs: 10abc\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "expects an integer, got '10abc'"), "%s", msg);
    msg = parse_fail("train:\n  optimizer:\n    lr: fast\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:3:9: 'train.optimizer.lr' expects a number, got 'fast'");
    msg = parse_fail("train:\n  optimizer:\n    lr: .nan\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "expects a number"), "%s", msg);
    msg = parse_fail("data:\n  normalize: maybe\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:2:14: 'data.normalize' expects a boolean (true or false), "
                          "got 'maybe'");
    msg = parse_fail("train: 5\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:1:8: 'train' expects a mapping of keys, got '5'");
    msg = parse_fail("name: [a, b]\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:1:7: 'name' expects a string, got a list");

    /* YAML 1.1 booleans */
    cr_assert_eq(parse("data: {normalize: no}\ntrain: {eval_every_epoch: yes}\n", NULL, 0, &cfg),
                 ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(cfg.data.normalize, 0);
    cr_assert_eq(cfg.train.eval_every_epoch, 1);
}

Test(config, out_of_range)
{
    elag_config cfg;
    cr_assert_eq(load_fixture(FIXTURE("out_of_range.yaml"), &cfg), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "out_of_range.yaml:4:11: 'prune.target' must be in [0, "
                                        "1), got 1.5"),
              "%s", elag_last_error());
    const char *msg = parse_fail("train:\n  epochs: 0\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:2:11: 'train.epochs' must be >= 1, got 0");
    msg = parse_fail("train:\n  epochs: 99999999999\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:2:11: 'train.epochs' must be in [1, 2147483647], got "
                          "99999999999");
    msg = parse_fail("seed: -1\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'seed' must be in [0, 18446744073709551615], got -1"), "%s", msg);
    msg = parse_fail("train:\n  optimizer: {lr: 0}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'train.optimizer.lr' must be > 0, got 0"), "%s", msg);
    msg = parse_fail("prune: {initial: 0.5, target: 0.4}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:1:18: 'prune.initial' (0.5) must be <= 'prune.target' (0.4)");
    msg = parse_fail("prune: {frequency: 0}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'prune.frequency' must be >= 1, got 0"), "%s", msg);
    msg = parse_fail("device: gpu\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:1:9: 'device' must be one of auto, cpu, cpu-ref, cuda, "
                          "cuda:N, got 'gpu'");
    cr_assert_eq(parse("device: cuda:1\nseed: 18446744073709551615\n", NULL, 0, &cfg), ELAG_OK,
                 "%s", elag_last_error());
    cr_assert_eq(cfg.seed, UINT64_MAX);
}

Test(config, bad_enum_and_not_supported_yet)
{
    elag_config cfg;
    cr_assert_eq(load_fixture(FIXTURE("bad_enum.yaml"), &cfg), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "bad_enum.yaml:3:11: 'prune.method' must be one of none, "
                                        "oneshot, gmp, iterative, rigl, set, got 'gmpp'"),
              "%s", elag_last_error());
    /* methods and criteria that exist, in combinations that mean nothing */
    const char *msg = parse_fail("prune:\n  method: rigl\n  granularity: nm\n", NULL, 0,
                                 ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:3:16: 'prune.granularity' nm does not apply to prune.method "
                          "rigl: drop-and-grow works on single weights (use element)");
    msg = parse_fail("prune:\n  drop_fraction: 1.5\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "test.yaml:2:18: 'prune.drop_fraction' must be in"), "%s", msg);
    msg = parse_fail("prune:\n  granularity: filter\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:2:16: 'prune.granularity' must be one of element, nm, "
                          "block, neuron, channel, got 'filter'");
    msg = parse_fail("prune:\n  method: gmp\n  criterion: snip\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "snip prunes once, at initialisation"), "%s", msg);
    cr_assert_eq(parse("prune:\n  granularity: element\n", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
}

Test(config, file_errors)
{
    elag_config cfg;
    const char *missing = "/nonexistent-elag-dir/none.yaml";
    cr_assert_eq(elag_config_load(missing, NULL, 0, &cfg), ELAG_ERR_INPUT);
    cr_assert_str_eq(elag_last_error(),
                     "/nonexistent-elag-dir/none.yaml: cannot open: No such file or directory");

    cr_assert_eq(load_fixture(FIXTURE("syntax.yaml"), &cfg), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "syntax.yaml:4:2: YAML syntax error: "), "%s",
              elag_last_error());
    const char *msg = parse_fail("a: [1, 2\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "test.yaml:2:1: YAML syntax error: "), "%s", msg);
    msg = parse_fail("- 1\n- 2\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "test.yaml:1:1: a config is a mapping of keys"), "%s", msg);
}

Test(config, set_overrides)
{
    elag_config cfg;
    const char *yaml = "train:\n  epochs: 10\nprune:\n  method: gmp\n";
    const char *sets[] = {"train.epochs=3",
                          "train.optimizer.momentum=0.5",
                          "seed=42",
                          "train.optimizer.betas=[0.8, 0.99]",
                          "data.synthetic.noise=0.125",
                          "prune={method: oneshot, target: 0.5}"};
    cr_assert_eq(parse(yaml, sets, 6, &cfg), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(cfg.train.epochs, 3);
    cr_assert_float_eq(cfg.train.optimizer.momentum, 0.5, 0);
    cr_assert_eq(cfg.seed, 42);
    cr_assert_float_eq(cfg.train.optimizer.beta1, 0.8, 0);
    cr_assert_float_eq(cfg.train.optimizer.beta2, 0.99, 0);
    cr_assert_float_eq(cfg.data.synthetic.noise, 0.125, 0);
    cr_assert_eq(cfg.prune.method, ELAG_PRUNE_METHOD_ONESHOT);
    cr_assert_float_eq(cfg.prune.target, 0.5, 0);

    /* later overrides win; preset and layers replace each other */
    const char *twice[] = {"train.epochs=3", "train.epochs=4",
                           "model.layers=[{type: linear, out_features: 7}]"};
    cr_assert_eq(parse("model: {preset: lenet-300-100}\n", twice, 3, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(cfg.train.epochs, 4);
    cr_assert_eq(cfg.model.n_layers, 1);
    cr_assert_str_eq(cfg.model.preset, "");
    const char *back[] = {"model.preset=lenet-300-100"};
    cr_assert_eq(parse("model:\n  layers: [{type: linear, out_features: 7}]\n", back, 1, &cfg),
                 ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(cfg.model.n_layers, 5);
}

Test(config, set_errors)
{
    const char *bad_key[] = {"prune.targt=0.5"};
    cr_assert_str_eq(parse_fail("{}", bad_key, 1, ELAG_ERR_INPUT),
                     "--set prune.targt=0.5: unknown key 'prune.targt' (did you mean "
                     "'prune.target'?)");
    const char *bad_value[] = {"train.epochs=abc"};
    cr_assert_str_eq(parse_fail("train:\n  epochs: 3\n", bad_value, 1, ELAG_ERR_INPUT),
                     "--set train.epochs=abc: 'train.epochs' expects an integer, got 'abc'");
    const char *no_eq[] = {"foo"};
    cr_assert_str_eq(parse_fail("{}", no_eq, 1, ELAG_ERR_INPUT), "--set foo: expected KEY=VALUE");
    const char *range[] = {"train.batch_size=4", "prune.target=1.5"};
    cr_assert_str_eq(parse_fail("{}", range, 2, ELAG_ERR_INPUT),
                     "--set prune.target=1.5: 'prune.target' must be in [0, 1), got 1.5");
    const char *pair[] = {"train.optimizer.betas=[0.9]"};
    cr_assert_str_eq(parse_fail("{}", pair, 1, ELAG_ERR_INPUT),
                     "--set train.optimizer.betas=[0.9]: 'train.optimizer.betas' expects a list "
                     "of 2 numbers, got 1 item");
    const char *syntax[] = {"train.optimizer.betas=[0.9"};
    const char *msg = parse_fail("{}", syntax, 1, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "--set train.optimizer.betas=[0.9: YAML syntax error: "), "%s", msg);
    const char *layer_key[] = {"model.layers.0.name=x"};
    msg = parse_fail("{}", layer_key, 1, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "--set model.layers.0.name=x: unknown key 'model.layers.0.name'"), "%s",
              msg);
}

Test(config, start_end_step_or_fraction)
{
    elag_config cfg;
    cr_assert_eq(parse("prune: {method: gmp, start: 100, end: 2000}\n", NULL, 0, &cfg), ELAG_OK,
                 "%s", elag_last_error());
    cr_assert_eq(cfg.prune.start.is_fraction, 0);
    cr_assert_float_eq(cfg.prune.start.value, 100, 0);
    cr_assert_eq(cfg.prune.end.is_fraction, 0);
    cr_assert_float_eq(cfg.prune.end.value, 2000, 0);

    cr_assert_eq(parse("prune: {start: 0.1, end: 1e-0}\n", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(cfg.prune.start.is_fraction, 1);
    cr_assert_float_eq(cfg.prune.start.value, 0.1, 0);
    cr_assert_eq(cfg.prune.end.is_fraction, 1);
    cr_assert_float_eq(cfg.prune.end.value, 1.0, 0);

    /* "1" is step 1, "1.0" is the end of training */
    cr_assert_eq(parse("prune: {start: 1, end: 1.0}\n", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(cfg.prune.start.is_fraction, 0);
    cr_assert_eq(cfg.prune.end.is_fraction, 1);
    /* mixed kinds compare only once the run length is known */
    cr_assert_eq(parse("prune: {start: 5000, end: 0.5}\n", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());

    const char *msg = parse_fail("prune: {start: 0.8, end: 0.5}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert_str_eq(msg, "test.yaml:1:16: 'prune.start' (0.8) must be <= 'prune.end' (0.5)");
    msg = parse_fail("prune: {start: 300, end: 200}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'prune.start' (300) must be <= 'prune.end' (200)"), "%s", msg);
    msg = parse_fail("prune: {end: 1.5}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'prune.end' must be in [0, 1] as a fraction of training, got 1.5"), "%s",
              msg);
    msg = parse_fail("prune: {start: -3}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'prune.start' must be in [0, "), "%s", msg);
    msg = parse_fail("prune: {start: soon}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'prune.start' expects a step number or a fraction, got 'soon'"), "%s",
              msg);
}

Test(config, optimizer_defaults_follow_type)
{
    elag_config cfg;
    cr_assert_eq(parse("train:\n  optimizer: {type: adamw}\n", NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_float_eq(cfg.train.optimizer.lr, 0.001, 0);
    cr_assert_float_eq(cfg.train.optimizer.weight_decay, 0.01, 0);
    cr_assert_eq(
        parse("train:\n  optimizer: {type: adamw, lr: 0.0003, weight_decay: 0}\n", NULL, 0, &cfg),
        ELAG_OK, "%s", elag_last_error());
    cr_assert_float_eq(cfg.train.optimizer.lr, 0.0003, 0);
    cr_assert_float_eq(cfg.train.optimizer.weight_decay, 0.0, 0);
    const char *sets[] = {"train.optimizer.type=adamw"};
    cr_assert_eq(parse("{}", sets, 1, &cfg), ELAG_OK, "%s", elag_last_error());
    cr_assert_float_eq(cfg.train.optimizer.lr, 0.001, 0);
    const char *msg = parse_fail("train:\n  lr_schedule: {type: step}\n", NULL, 0, ELAG_ERR_INPUT);
    cr_assert(strstr(msg, "'train.lr_schedule.step_size' is required"), "%s", msg);
}

/* An empty text is more likely truncated or the wrong file than a wish for every default:
 * refused with the hint, also with --set (the file case: tests/data/bad/config/empty.yaml). */
Test(config, empty_is_refused_with_a_hint)
{
    static const char *const empties[] = {"", "\n\n", "# a comment\n", "~\n", "null", "---\n"};
    const char *sets[] = {"seed=3"};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++)
        for (int n_sets = 0; n_sets <= 1; n_sets++)
            cr_assert_str_eq(parse_fail(empties[i], sets, n_sets, ELAG_ERR_INPUT),
                             "test.yaml: the config is empty; write {} to mean all defaults",
                             "text '%s'", empties[i]);
}

Test(config, round_trip)
{
    elag_config cfg;
    elag_config_defaults(&cfg);
    assert_round_trip(&cfg);

    cr_assert_eq(elag_config_load(SHIPPED("fashion_mlp_gmp.yaml"), NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    assert_round_trip(&cfg);
    cr_assert_eq(load_fixture(FIXTURE("layers.yaml"), &cfg), ELAG_OK, "%s", elag_last_error());
    assert_round_trip(&cfg);

    const char *odd = "name: 'q\"uote \\\\ back'\nseed: 18446744073709551615\n"
                      "device: cuda:0\n"
                      "data: {dataset: idx, path: \"/tmp/a b/c\\td\", val_split: 0.1, mean: -0.3,"
                      " std: 1e-3, train_limit: 123}\n"
                      "train:\n  optimizer: {type: adamw, betas: [0.85, 0.995], eps: 1e-7,"
                      " nesterov: false}\n"
                      "  lr_schedule: {type: cosine, warmup_steps: 50, min_lr: 0.00001}\n"
                      "prune: {method: gmp, scope: global, initial: 0.1, target: 0.95, "
                      "start: 0.0, end: 1.0, frequency: 7, exponent: 2.5}\n";
    cr_assert_eq(parse(odd, NULL, 0, &cfg), ELAG_OK, "%s", elag_last_error());
    cr_assert_str_eq(cfg.name, "q\"uote \\\\ back");
    cr_assert_str_eq(cfg.data.path, "/tmp/a b/c\td");
    cr_assert_eq(cfg.prune.start.is_fraction, 1);
    assert_round_trip(&cfg);

    /* prune.layers overrides, blocks and the other prune keys are written and read back */
    const char *overrides =
        "prune:\n  method: gmp\n  granularity: block\n  block: [2, 8]\n  norm: l1\n"
        "  distribution: erk\n  keep_first_last: true\n"
        "  layers:\n    - {name: fc1, target: 0.5}\n    - {name: 'fc[2]', exclude: true}\n"
        "    - {name: '*', min: 0.25, max: 0.75}\n";
    cr_assert_eq(parse(overrides, NULL, 0, &cfg), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(cfg.prune.n_layers, 3);
    cr_assert_str_eq(cfg.prune.layers[1].name, "fc[2]");
    cr_assert_float_eq(cfg.prune.layers[0].target, 0.5, 0);
    cr_assert_float_eq(cfg.prune.layers[0].min, -1, 0);
    cr_assert_eq(cfg.prune.layers[1].exclude, 1);
    cr_assert_float_eq(cfg.prune.layers[2].max, 0.75, 0);
    cr_assert_eq(cfg.prune.block[0], 2);
    cr_assert_eq(cfg.prune.block[1], 8);
    assert_round_trip(&cfg);
    char *text = NULL;
    cr_assert_eq(elag_config_to_yaml(&cfg, &text), ELAG_OK);
    cr_assert(strstr(text, "  layers:\n    - {name: \"fc1\", target: 0.5}\n"
                           "    - {name: \"fc[2]\", exclude: true}\n"
                           "    - {name: \"*\", min: 0.25, max: 0.75}\n"),
              "%s", text);
    free(text);

    /* values that need all 17 digits survive */
    elag_config_defaults(&cfg);
    cfg.train.optimizer.lr = 0.1 + 0.2;
    cfg.prune.start.value = 1.0 / 3.0; /* field by field: padding must stay zero for memcmp */
    cfg.prune.start.is_fraction = 1;
    assert_round_trip(&cfg);
}

Test(config, hash)
{
    elag_config a, b;
    char ha[17], hb[17], hc[17];
    cr_assert_eq(elag_config_load(SHIPPED("fashion_mlp_gmp.yaml"), NULL, 0, &a), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_config_hash(&a, ha), ELAG_OK);
    cr_assert_eq(strlen(ha), 16);
    cr_assert_eq(strspn(ha, "0123456789abcdef"), 16, "not lowercase hex: %s", ha);
    cr_assert_eq(elag_config_hash(&a, hb), ELAG_OK);
    cr_assert_str_eq(ha, hb);

    /* the same config written differently hashes the same; `source` is not hashed */
    const char *same[] = {"prune.target=0.90"};
    cr_assert_eq(elag_config_load(SHIPPED("fashion_mlp_gmp.yaml"), same, 1, &b), ELAG_OK);
    cr_assert_eq(elag_config_hash(&b, hb), ELAG_OK);
    cr_assert_str_eq(ha, hb);

    const char *other[] = {"prune.target=0.8"};
    cr_assert_eq(elag_config_load(SHIPPED("fashion_mlp_gmp.yaml"), other, 1, &b), ELAG_OK);
    cr_assert_eq(elag_config_hash(&b, hc), ELAG_OK);
    cr_assert_str_neq(ha, hc);
    b = a;
    b.seed = 2;
    cr_assert_eq(elag_config_hash(&b, hc), ELAG_OK);
    cr_assert_str_neq(ha, hc);

    /* FNV-1a 64 of the to_yaml text, computed here independently */
    char *text;
    cr_assert_eq(elag_config_to_yaml(&a, &text), ELAG_OK);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = text; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    char want[17];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)h);
    cr_assert_str_eq(ha, want);
    free(text);
}

Test(config, shipped_configs_load)
{
    elag_config cfg;
    cr_assert_eq(elag_config_load(SHIPPED("fashion_mlp_gmp.yaml"), NULL, 0, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_str_eq(cfg.name, "fashion-mlp-gmp90");
    cr_assert_eq(cfg.seed, 1);
    cr_assert_eq(cfg.data.dataset, ELAG_DATASET_FASHION_MNIST);
    cr_assert_eq(cfg.data.normalize, 1);
    cr_assert_str_eq(cfg.model.preset, "lenet-300-100");
    cr_assert_eq(cfg.train.epochs, 10);
    cr_assert_eq(cfg.train.batch_size, 128);
    cr_assert_eq(cfg.train.optimizer.type, ELAG_OPTIMIZER_SGD);
    cr_assert_float_eq(cfg.train.optimizer.lr, 0.05, 0);
    cr_assert_float_eq(cfg.train.optimizer.momentum, 0.9, 0);
    cr_assert_eq(cfg.prune.method, ELAG_PRUNE_METHOD_GMP);
    cr_assert_eq(cfg.prune.scope, ELAG_PRUNE_SCOPE_LAYER);
    cr_assert_float_eq(cfg.prune.initial, 0.0, 0);
    cr_assert_float_eq(cfg.prune.target, 0.9, 0);
    cr_assert(cfg.prune.start.is_fraction && cfg.prune.start.value == 0.1);
    cr_assert(cfg.prune.end.is_fraction && cfg.prune.end.value == 0.7);
    cr_assert_eq(cfg.prune.frequency, 100);
    cr_assert_str_eq(cfg.source, SHIPPED("fashion_mlp_gmp.yaml"));

    elag_config dense;
    cr_assert_eq(elag_config_load(SHIPPED("fashion_mlp_dense.yaml"), NULL, 0, &dense), ELAG_OK,
                 "%s", elag_last_error());
    cr_assert_str_eq(dense.name, "fashion-mlp-dense");
    cr_assert_eq(dense.prune.method, ELAG_PRUNE_METHOD_NONE);
    /* the two differ only in name and pruning */
    memcpy(dense.name, cfg.name, sizeof dense.name);
    memcpy(&dense.prune, &cfg.prune, sizeof dense.prune);
    cr_assert(config_equal(&dense, &cfg), "dense and gmp configs differ beyond name and prune");

    elag_config nm;
    cr_assert_eq(elag_config_load(SHIPPED("fashion_mlp_nm24.yaml"), NULL, 0, &nm), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(nm.prune.granularity, ELAG_PRUNE_GRANULARITY_NM);
    cr_assert_eq(nm.prune.n, 2);
    cr_assert_eq(nm.prune.m, 4);
    cr_assert_float_eq(nm.prune.target, 0.5, 0, "1 - N/M");
    assert_round_trip(&nm);
}

Test(config, default_name_from_file)
{
    char *dir = elag_test_tmpdir("config");
    cr_assert_not_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/my_run.v2.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("# only a comment\n{}\n", f);
    fclose(f);
    elag_config cfg;
    cr_assert_eq(elag_config_load(path, NULL, 0, &cfg), ELAG_OK, "%s", elag_last_error());
    cr_assert_str_eq(cfg.name, "my_run.v2");
    cr_assert_str_eq(cfg.source, path);
    const char *sets[] = {"name=other"};
    cr_assert_eq(elag_config_load(path, sets, 1, &cfg), ELAG_OK, "%s", elag_last_error());
    cr_assert_str_eq(cfg.name, "other");
    const char *slash[] = {"name=a/b"};
    cr_assert_eq(elag_config_load(path, slash, 1, &cfg), ELAG_ERR_INPUT);
    cr_assert(strstr(elag_last_error(), "--set name=a/b: 'name' names the run folder"), "%s",
              elag_last_error());
    remove(path);
    remove(dir);
    free(dir);
}

Test(config, names)
{
    cr_assert_str_eq(elag_prune_method_name(ELAG_PRUNE_METHOD_GMP), "gmp");
    cr_assert_str_eq(elag_prune_method_name(ELAG_PRUNE_METHOD_ONESHOT), "oneshot");
    cr_assert_str_eq(elag_prune_scope_name(ELAG_PRUNE_SCOPE_GLOBAL), "global");
    cr_assert_str_eq(elag_prune_criterion_name(ELAG_PRUNE_CRITERION_MAGNITUDE), "magnitude");
    cr_assert_str_eq(elag_optimizer_name(ELAG_OPTIMIZER_ADAMW), "adamw");
    cr_assert_str_eq(elag_lr_schedule_name(ELAG_LR_SCHEDULE_COSINE), "cosine");
    cr_assert_str_eq(elag_dataset_name(ELAG_DATASET_FASHION_MNIST), "fashion-mnist");
    cr_assert_str_eq(elag_layer_kind_name(ELAG_LAYER_FLATTEN), "flatten");
    cr_assert_str_eq(elag_prune_method_name((elag_prune_method)99), "unknown");
}
