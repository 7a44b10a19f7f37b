/*
 * Bad configs and bad sweep files: each is refused with ELAG_ERR_INPUT and one line that
 * names the file, the line and column, and the key (the exact message is compared, so a
 * message that loses its place or its key fails here). Covers the checks that involve
 * two keys (preset against layers, schedules, method/criterion/granularity combinations,
 * start/end, initial/target), every value kind's refusals (integers, numbers, ranges,
 * steps or fractions, pairs, choices, booleans, strings), layer items and prune.layers
 * overrides, YAML shapes a config must not have, and the sweep file's keys and axes.
 */
#define _POSIX_C_SOURCE 200809L
#include "config/config.h"
#include "elag/elag.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct bad_case {
    const char *text; /* the file */
    const char *want; /* the whole message (configs), or all of it after the file's path */
} bad_case;

static const bad_case bad_configs[] = {
    /* beyond a double: refused, never read as whatever was on the stack */
    {"prune: {method: gmp, start: 1e400}\n",
     "c.yaml:1:29: 'prune.start' must be in [0, 1] as a fraction of training, got 1e400 (a step "
     "number has no '.' or exponent)"},
    {"train: {epochs: Null}\n", "c.yaml:1:17: 'train.epochs' has no value"},
    {"train: {epochs: \" 3\"}\n", "c.yaml:1:17: 'train.epochs' expects an integer, got ' 3'"},
    {"train: {epochs: 3.0}\n", "c.yaml:1:17: 'train.epochs' expects an integer, got '3.0'"},
    {"seed: 0x10\n", "c.yaml:1:7: 'seed' expects an integer, got '0x10'"},
    {"train: {optimizer: {lr: 1e-400}}\n",
     "c.yaml:1:25: 'train.optimizer.lr' must be > 0, got 1e-400"},
    {"prune: {method: gmp, end: 0.5.5}\n",
     "c.yaml:1:27: 'prune.end' expects a step number or a fraction, got '0.5.5'"},
    {"{[a]: 1}\n", "c.yaml:1:2: mapping keys must be plain words, got a list"},
    {"train: {? {a: 1} : 1}\n", "c.yaml:1:11: mapping keys must be plain words, got a mapping"},
    {"model: {preset: lenet-5, layers: [{type: linear, out_features: 10}]}\n",
     "c.yaml:1:34: 'model.layers' differs from what model.preset 'lenet-5' expands to; give only "
     "one of them"},
    {"model: {preset: resnet-50}\n", "c.yaml:1:17: 'model.preset' must be one of lenet-300-100, "
                                     "lenet-5, vgg-small, got 'resnet-50'"},
    {"model: {layers: [{type: relu}]}\n",
     "c.yaml:1:17: the model has no layer with weights (linear or conv2d)"},
    {"model: {layers: [{type: linear, out_features: 4, prunable: false}]}\nprune: {method: gmp}\n",
     "c.yaml:2:17: 'prune.method' is gmp but no layer of the model is prunable"},
    {"name: a/b\n", "c.yaml:1:7: 'name' names the run folder runs/<name>: it must be non-empty, "
                    "not '.' or '..', without '/' or control characters, got 'a/b'"},
    {"name: \"..\"\n", "c.yaml:1:7: 'name' names the run folder runs/<name>: it must be non-empty, "
                       "not '.' or '..', without '/' or control characters, got '..'"},
    {"name: \"\"\n", "c.yaml:1:7: 'name' names the run folder runs/<name>: it must be non-empty, "
                     "not '.' or '..', without '/' or control characters, got ''"},
    {"device: gpu\n",
     "c.yaml:1:9: 'device' must be one of auto, cpu, cpu-ref, cuda, cuda:N, got 'gpu'"},
    {"device: \"cuda:x\"\n",
     "c.yaml:1:9: 'device' must be one of auto, cpu, cpu-ref, cuda, cuda:N, got 'cuda:x'"},
    {"device: \"cuda:2000\"\n",
     "c.yaml:1:9: 'device' must be one of auto, cpu, cpu-ref, cuda, cuda:N, got 'cuda:2000'"},
    {"device: \"cuda:-1\"\n",
     "c.yaml:1:9: 'device' must be one of auto, cpu, cpu-ref, cuda, cuda:N, got 'cuda:-1'"},
    {"data: {dataset: idx}\n", "c.yaml:1:17: 'data.path' is required when data.dataset is idx"},
    {"data: {dataset: npy}\n", "c.yaml:1:17: 'data.path' is required when data.dataset is npy"},
    {"data: {dataset: idx, path: \"\"}\n", "c.yaml:1:28: 'data.path' must not be empty"},
    {"train: {optimizer: {type: sgd, momentum: 0, nesterov: true}}\n",
     "c.yaml:1:55: 'train.optimizer.nesterov' needs train.optimizer.momentum > 0"},
    {"train: {lr_schedule: {type: step}}\n",
     "c.yaml:1:29: 'train.lr_schedule.step_size' is required when train.lr_schedule.type is step"},
    {"train: {lr_schedule: {type: cosine, min_lr: 1}, optimizer: {lr: 0.1}}\n",
     "c.yaml:1:45: 'train.lr_schedule.min_lr' (1) must be <= 'train.optimizer.lr' (0.1)"},
    {"train: {lr_schedule: {type: cosine}, optimizer: {lr: 0.001, type: adamw}}\nprune: {method: "
     "rigl, granularity: block}\n",
     "c.yaml:2:36: 'prune.granularity' block does not apply to prune.method rigl: drop-and-grow "
     "works on single weights (use element)"},
    {"prune: {method: rigl, criterion: taylor}\n",
     "c.yaml:1:34: 'prune.criterion' taylor does not apply to prune.method rigl: the first mask is "
     "by magnitude or random, drops are by magnitude"},
    {"prune: {method: set, granularity: nm}\n",
     "c.yaml:1:35: 'prune.granularity' nm does not apply to prune.method set: drop-and-grow works "
     "on single weights (use element)"},
    {"prune: {method: gmp, criterion: snip}\n",
     "c.yaml:1:33: 'prune.criterion' snip prunes once, at initialisation: it needs prune.method "
     "oneshot, got gmp"},
    {"prune: {method: gmp, criterion: movement, granularity: block}\n",
     "c.yaml:1:56: 'prune.granularity' block does not apply to prune.criterion movement: its "
     "scores are signed and a group norm would lose the sign (use element or nm)"},
    {"prune: {method: gmp, criterion: soft_movement, granularity: nm}\n",
     "c.yaml:1:61: 'prune.granularity' nm does not apply to prune.criterion soft_movement: its "
     "scores are signed and a group norm would lose the sign (use element)"},
    {"prune: {method: gmp, rewind_step: 3}\n",
     "c.yaml:1:35: 'prune.rewind_step' rewinds the weights after each pruning round: it needs "
     "prune.method oneshot or iterative, got gmp"},
    {"prune: {method: gmp, initial: 0.5, target: 0.2}\n",
     "c.yaml:1:31: 'prune.initial' (0.5) must be <= 'prune.target' (0.2)"},
    {"prune: {method: gmp, start: 0.8, end: 0.2}\n",
     "c.yaml:1:29: 'prune.start' (0.8) must be <= 'prune.end' (0.2)"},
    {"prune: {method: gmp, start: 80, end: 20}\n",
     "c.yaml:1:29: 'prune.start' (80) must be <= 'prune.end' (20)"},
    {"prune: {method: gmp, block: [1, 2, 3]}\n", "c.yaml:1:29: 'prune.block' expects an integer or "
                                                 "a list of 2 integers [rows, cols], got a list"},
    {"prune: {method: gmp, block: {a: 1}}\n", "c.yaml:1:29: 'prune.block' expects an integer or a "
                                              "list of 2 integers [rows, cols], got a mapping"},
    {"prune: {method: gmp, block: [[1], 2]}\n",
     "c.yaml:1:30: 'prune.block[0]' expects an integer, got a list"},
    {"prune: {method: gmp, block: 0}\n", "c.yaml:1:29: 'prune.block' must be in [1, 65536], got 0"},
    {"prune: {method: gmp, block: x}\n", "c.yaml:1:29: 'prune.block' expects an integer, got 'x'"},
    {"prune: {method: gmp, start: -1}\n",
     "c.yaml:1:29: 'prune.start' must be in [0, 9007199254740992] as a step number, got -1"},
    {"prune: {method: gmp, start: 1.5}\n",
     "c.yaml:1:29: 'prune.start' must be in [0, 1] as a fraction of training, got 1.5 (a step "
     "number has no '.' or exponent)"},
    {"prune: {method: gmp, start: abc}\n",
     "c.yaml:1:29: 'prune.start' expects a step number or a fraction, got 'abc'"},
    {"prune: {method: gmp, end: 1e30}\n",
     "c.yaml:1:27: 'prune.end' must be in [0, 1] as a fraction of training, got 1e30 (a step "
     "number has no '.' or exponent)"},
    {"train: {epochs: 1e3}\n", "c.yaml:1:17: 'train.epochs' expects an integer, got '1e3'"},
    {"train: {epochs: 99999999999999999999999}\n",
     "c.yaml:1:17: 'train.epochs' must be in [1, 2147483647], got 99999999999999999999999"},
    {"train: {epochs: [1]}\n", "c.yaml:1:17: 'train.epochs' expects an integer, got a list"},
    {"train: {epochs: }\n", "c.yaml:1:17: 'train.epochs' has no value"},
    {"train: {optimizer: {betas: [0.9]}}\n",
     "c.yaml:1:28: 'train.optimizer.betas' expects a list of 2 numbers, got 1 item"},
    {"train: {optimizer: {betas: 0.9}}\n",
     "c.yaml:1:28: 'train.optimizer.betas' expects a list of 2 numbers, got '0.9'"},
    {"train: {optimizer: {betas: [0.9, x]}}\n",
     "c.yaml:1:34: 'train.optimizer.betas[1]' expects a number, got 'x'"},
    {"train: {optimizer: {betas: [0.9, 1.5]}}\n",
     "c.yaml:1:34: 'train.optimizer.betas[1]' must be in [0, 1), got 1.5"},
    {"train: {optimizer: {lr: 0}}\n", "c.yaml:1:25: 'train.optimizer.lr' must be > 0, got 0"},
    {"train: {optimizer: {lr: nan}}\n",
     "c.yaml:1:25: 'train.optimizer.lr' expects a number, got 'nan'"},
    {"train: {optimizer: {lr: .inf}}\n",
     "c.yaml:1:25: 'train.optimizer.lr' expects a number, got '.inf'"},
    {"train: {optimizer: {type: rmsprop}}\n",
     "c.yaml:1:27: 'train.optimizer.type' must be one of sgd, adamw, got 'rmsprop'"},
    {"train: {optimizer: {type: [sgd]}}\n",
     "c.yaml:1:27: 'train.optimizer.type' must be one of sgd, adamw, got a list"},
    {"data: {mean: abc}\n", "c.yaml:1:14: 'data.mean' expects a number, got 'abc'"},
    {"data: {std: 0}\n", "c.yaml:1:13: 'data.std' must be > 0, got 0"},
    {"data: {val_split: 0.9}\n", "c.yaml:1:19: 'data.val_split' must be in [0, 0.5], got 0.9"},
    {"data: {path: [a]}\n", "c.yaml:1:14: 'data.path' expects a string, got a list"},
    {"name: [a]\n", "c.yaml:1:7: 'name' expects a string, got a list"},
    {"seed: -1\n", "c.yaml:1:7: 'seed' must be in [0, 18446744073709551615], got -1"},
    {"seed: 18446744073709551616\n",
     "c.yaml:1:7: 'seed' must be in [0, 18446744073709551615], got 18446744073709551616"},
    {"cuda: {tf32: maybe}\n",
     "c.yaml:1:14: 'cuda.tf32' expects a boolean (true or false), got 'maybe'"},
    {"train: {eval_every_epoch: 2}\n",
     "c.yaml:1:27: 'train.eval_every_epoch' expects a boolean (true or false), got '2'"},
    {"train.epochs: 3\n", "c.yaml:1:1: unknown key 'train.epochs' (dotted keys work only with "
                          "--set; nest each part on its own line)"},
    {"train: {epochs: 3, epochs: 4}\n",
     "c.yaml:1:20: duplicate key 'train.epochs' (first at line 1)"},
    {"train: 5\n", "c.yaml:1:8: 'train' expects a mapping of keys, got '5'"},
    {"[1, 2]\n", "c.yaml:1:1: a config is a mapping of keys (name: ..., train: ...), got a list"},
    {"\"just a string\"\n",
     "c.yaml:1:1: a config is a mapping of keys (name: ..., train: ...), got 'just a string'"},
    {"model: {layers: {type: linear}}\n",
     "c.yaml:1:17: 'model.layers' expects a list of layers, got a mapping"},
    {"model: {layers: [linear]}\n", "c.yaml:1:18: 'model.layers[0]' expects a mapping such as "
                                    "{type: linear, out_features: 10}, got 'linear'"},
    {"model: {layers: [{out_features: 3}]}\n",
     "c.yaml:1:18: 'model.layers[0]' needs a type (linear, relu, flatten, conv2d, maxpool, "
     "avgpool, global_avgpool, batchnorm, dropout)"},
    {"model: {layers: [{type: linear}]}\n",
     "c.yaml:1:18: 'model.layers[0].out_features' is required for a linear layer"},
    {"model: {layers: [{type: lineer, out_features: 3}]}\n",
     "c.yaml:1:25: 'model.layers[0].type' must be one of linear, relu, flatten, conv2d, maxpool, "
     "avgpool, global_avgpool, batchnorm, dropout, got 'lineer'"},
    {"model: {layers: [{type: linear, out_features: 3, kernel: 3}]}\n",
     "c.yaml:1:50: 'model.layers[0].kernel' does not apply to a linear layer"},
    {"model: {layers: [{type: linear, out_features: 3, name: \"bad name!\"}]}\n",
     "c.yaml:1:56: 'model.layers[0].name' may hold only letters, digits, '_' and '-', got 'bad "
     "name!'"},
    {"model: {layers: [{type: linear, out_features: 3, name: fc}, {type: linear, out_features: 3, "
     "name: fc}]}\n",
     "c.yaml:1:99: layer name 'fc' of model.layers[1] is already used by model.layers[0]"},
    {"model: {layers: [{type: conv2d, out_channels: 2, kernel: [1, 2, 3]}, {type: flatten}, {type: "
     "linear, out_features: 2}]}\n",
     "c.yaml:1:58: 'model.layers[0].kernel' expects an integer or a list of 2 integers [h, w], got "
     "a list"},
    {"model: {layers: [{type: conv2d, out_channels: 2, kernel: 0}, {type: flatten}, {type: linear, "
     "out_features: 2}]}\n",
     "c.yaml:1:58: 'model.layers[0].kernel' must be in [1, 4096], got 0"},
    {"model: {layers: [{type: dropout, p: 1}, {type: linear, out_features: 2}]}\n",
     "c.yaml:1:37: 'model.layers[0].p' must be in [0, 1), got 1"},
    {"model: {layers: [{type: maxpool}, {type: linear, out_features: 2}]}\n",
     "c.yaml:1:18: 'model.layers[0].kernel' is required for a maxpool layer"},
    {"model: {layers: [{type: batchnorm, eps: 0}, {type: linear, out_features: 2}]}\n",
     "c.yaml:1:41: 'model.layers[0].eps' must be in (0, 1], got 0"},
    {"model: {layers: [{type: linear, out_features: 2, bias: maybe}]}\n",
     "c.yaml:1:56: 'model.layers[0].bias' expects a boolean (true or false), got 'maybe'"},
    {"prune: {method: gmp, layers: [{target: 0.5}]}\n",
     "c.yaml:1:31: 'prune.layers[0].name' is required (a layer name or a glob such as 'conv*')"},
    {"prune: {method: gmp, layers: [{name: fc1, target: 1.5}]}\n",
     "c.yaml:1:51: 'prune.layers[0].target' must be in [0, 1), got 1.5"},
    {"prune: {method: gmp, layers: [{name: fc1, min: 0.8, max: 0.2}]}\n",
     "c.yaml:1:48: 'prune.layers[0].min' (0.8) must be <= 'prune.layers[0].max' (0.2)"},
    {"prune: {method: gmp, layers: [{name: fc1, bogus: 1}]}\n",
     "c.yaml:1:43: unknown key 'prune.layers[0].bogus' (an override takes name, target, exclude, "
     "min, max)"},
    {"prune: {method: gmp, layers: [{name: nothing*, target: 0.5}]}\n",
     "c.yaml:1:38: 'prune.layers[0].name' 'nothing*' names no prunable layer (they are: fc1, fc2, "
     "fc3)"},
    {"prune: {method: gmp, layers: [fc1]}\n", "c.yaml:1:31: 'prune.layers[0]' expects a mapping "
                                              "such as {name: fc1, target: 0.5}, got 'fc1'"},
    {"prune: {method: gmp, layers: {name: fc1}}\n",
     "c.yaml:1:30: 'prune.layers' expects a list of overrides such as [{name: fc1, target: 0.5}], "
     "got a mapping"},
    {"prune: {method: gmp, layers: [{name: fc1, exclude: true, target: 0.5}]}\n",
     "c.yaml:1:52: 'prune.layers[0]' sets exclude: true and a sparsity; an excluded layer stays "
     "dense"},
    {"prune: {method: gmp, layers: [{name: fc1, target: 0.5}, {name: fc1, target: 0.6}]}\n",
     "c.yaml:1:64: 'prune.layers[1].name' 'fc1' matches only layers that prune.layers[0] already "
     "covers (the first match wins)"},
    {"prune: {method: gmp, layers: [{name: \"\", target: 0.5}]}\n",
     "c.yaml:1:38: 'prune.layers[0].name' must not be empty"},
    {"prune: {method: gmp, scope: global, distribution: erk}\n",
     "c.yaml:1:51: 'prune.distribution' erk gives each layer its own sparsity and cannot be "
     "combined with prune.scope global (use layer)"},
    {"prune: {method: gmp, granularity: nm, n: 4, m: 4}\n",
     "c.yaml:1:42: 'prune.n' (4) must be < 'prune.m' (4)"},
    {"prune: {method: gmp, granularity: nm, n: 0}\n",
     "c.yaml:1:42: 'prune.n' must be in [1, 65536], got 0"},
    {"prune: {method: gmp, snip_batches: 0}\n",
     "c.yaml:1:36: 'prune.snip_batches' must be in [1, 65536], got 0"},
    {"prune: {method: gmp, taylor_beta: 1}\n",
     "c.yaml:1:35: 'prune.taylor_beta' must be in [0, 1), got 1"},
    {"prune: {method: gmp, drop_fraction: 2}\n",
     "c.yaml:1:37: 'prune.drop_fraction' must be in [0, 1], got 2"},
    {"prune: {method: gmp, exponent: 0}\n", "c.yaml:1:32: 'prune.exponent' must be > 0, got 0"},
    {"prune: {method: gmp, frequency: 0}\n", "c.yaml:1:33: 'prune.frequency' must be >= 1, got 0"},
    {"prune: {method: gmp, target: 1}\n", "c.yaml:1:30: 'prune.target' must be in [0, 1), got 1"},
    {"prune: {method: gmp, rewind_step: -2}\n",
     "c.yaml:1:35: 'prune.rewind_step' must be >= -1, got -2"},
    {"train: {sparse_compute: maybe}\n",
     "c.yaml:1:25: 'train.sparse_compute' must be one of auto, on, off, got 'maybe'"},
    {"train: {threads: -1}\n", "c.yaml:1:18: 'train.threads' must be >= 0, got -1"},
    {"train: {checkpoint_steps: -1}\n",
     "c.yaml:1:27: 'train.checkpoint_steps' must be >= 0, got -1"},
    {"train: {lr_schedule: {gamma: 0}}\n",
     "c.yaml:1:30: 'train.lr_schedule.gamma' must be in (0, 1], got 0"},
    {"train: {lr_schedule: {warmup_steps: -3}}\n",
     "c.yaml:1:37: 'train.lr_schedule.warmup_steps' must be >= 0, got -3"},
    {"train: {optimizer: {momentum: 1}}\n",
     "c.yaml:1:31: 'train.optimizer.momentum' must be in [0, 1), got 1"},
    {"data: {dataset: synthetic, synthetic: {classes: 1}}\n",
     "c.yaml:1:49: 'data.synthetic.classes' must be >= 2, got 1"},
    {"data: {train_limit: -1}\n", "c.yaml:1:21: 'data.train_limit' must be >= 0, got -1"},
    {"train: {batch_size: 0}\n", "c.yaml:1:21: 'train.batch_size' must be >= 1, got 0"},
    {"name: abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij\n",
     "c.yaml:1:7: 'name' is too long (at most 63 characters)"},
    {"&a {train: *a}\n", "c.yaml:1:12: YAML aliases (*name) are not supported in configs"},
    {"? [a]\n", "c.yaml:1:3: mapping keys must be plain words, got a list"},
    {": 1\n", "c.yaml:1:1: YAML syntax error: did not find expected key (while parsing a block "
              "mapping at line 1 column 1)"},
    {"train:\n  epochs: 3\n epochs: 4\n", "c.yaml:3:2: YAML syntax error: did not find expected "
                                          "key (while parsing a block mapping at line 1 column 1)"},
};

/* static: a config is some 20 kB */
static elag_config cfg;

Test(cov_config, every_bad_config_is_one_line_naming_its_place)
{
    for (size_t i = 0; i < sizeof bad_configs / sizeof *bad_configs; i++) {
        const bad_case *c = &bad_configs[i];
        elag_status st = elag_config_parse(c->text, strlen(c->text), "c.yaml", NULL, 0, &cfg);
        cr_expect_eq(st, ELAG_ERR_INPUT, "config %zu (%s): status %d: %s", i, c->text, st,
                     elag_last_error());
        cr_expect_str_eq(elag_last_error(), c->want, "config %zu (%s)", i, c->text);
    }
}

/* What the parse gives on success is what the defaults and the file say. */
Test(cov_config, accepted_spellings)
{
    const char *ok[] = {"train: {epochs: \"3\"}\n", "train: {epochs: !!str 3}\n",
                        "train: {init_from: \"\"}\n"};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(elag_config_parse(ok[i], strlen(ok[i]), "c.yaml", NULL, 0, &cfg), ELAG_OK,
                     "%s: %s", ok[i], elag_last_error());
        cr_assert_eq(cfg.train.epochs, i < 2 ? 3 : 10, "%s", ok[i]);
    }
}

static const bad_case bad_sweeps[] = {
    {"base: c.yaml\ngrid: {seed: 3}\n",
     ":2:14: grid: 'seed' expects a list of values ([a, b, ...]), got '3'"},
    {"base: c.yaml\ngrid: [1]\n",
     ":2:7: grid expects a mapping of dotted keys (prune.target: [0.5, 0.9]), got a list"},
    {"base: c.yaml\nset: [1]\n",
     ":2:6: set: expects a mapping of dotted keys (train.epochs: 1), got a list"},
    {"base: c.yaml\nset: {train.epochs: [1, 2]}\n",
     ":2:21: set: 'train.epochs' expects an integer, got a list"},
    {"base: c.yaml\nzip: {seed: [1, 2], train.epochs: [1]}\n",
     ":2:35: zip: 'train.epochs' has 1 values but 'seed' (line 2) has 2; zip pairs lists of equal "
     "length"},
    {"base: c.yaml\nruns: {seed: 1}\n",
     ":2:7: runs: expects a list of override mappings (- {prune.method: gmp}), got a mapping"},
    {"base: c.yaml\nruns: [1]\n",
     ":2:8: runs: item expects a mapping of dotted keys (prune.method: gmp), got '1'"},
    {"base: c.yaml\nruns: [{seed: 1, seed: 2}]\n",
     ":2:18: runs: duplicate key 'seed' (first at line 2)"},
    {"base: [c.yaml]\n", ":1:7: base: expects the path of a config file, got a list"},
    {"base: /nonexistent.yaml\n", ":1:7: base config '/nonexistent.yaml' not found"},
    {"base: sub\n", ":1:7: base config 'sub' is a folder"},
    {"base: nothere.yaml\n", ":1:7: base config 'nothere.yaml' not found"},
    {"grid: {seed: [1]}\n",
     ":1:1: missing base: (the config file every run starts from, relative to the sweep file)"},
    {"base: c.yaml\nexport: {format: coo}\n",
     ":2:18: export: format expects dense, csr, bell, bell:B (1..256) or auto, got 'coo'"},
    {"base: c.yaml\nexport: {format: \"bell:0\"}\n",
     ":2:18: export: format expects dense, csr, bell, bell:B (1..256) or auto, got 'bell:0'"},
    {"base: c.yaml\nexport: {format: \"bell:x\"}\n",
     ":2:18: export: format expects dense, csr, bell, bell:B (1..256) or auto, got 'bell:x'"},
    {"base: c.yaml\nexport: {thin: maybe}\n",
     ":2:16: export: thin expects true or false, got 'maybe'"},
    {"base: c.yaml\nexport: {formt: csr}\n",
     ":2:10: unknown export key 'formt' (did you mean 'format'?); export has format, thin"},
    {"base: c.yaml\nexport: [csr]\n",
     ":2:9: export: expects a mapping {format: dense|csr|bell[:B]|auto, thin: true|false}"},
    {"base: c.yaml\ngird: {seed: [1]}\n", ":2:1: unknown sweep key 'gird' (did you mean 'grid'?); "
                                          "a sweep has base, name, set, grid, zip, runs, export"},
    {"base: c.yaml\nname: a/b\n", ":2:7: name: expects a short name without '/'"},
    {"base: c.yaml\nname: [a]\n", ":2:7: name: expects a short name without '/'"},
    {"base: c.yaml\nname: \"\"\n", ":2:7: name: expects a short name without '/'"},
    {"base: c.yaml\ngrid: {train.epochs: [0, 1]}\n",
     ":2:23: grid: 'train.epochs' must be >= 1, got 0"},
    {"base: c.yaml\ngrid: {seed: []}\n",
     ":2:14: grid: 'seed' has an empty list of values (empty axis)"},
    {"base: c.yaml\ngrid: {bogus.key: [1, 2]}\n", ":2:8: grid: unknown key 'bogus.key'"},
    {"base: c.yaml\nset: {seed: 1}\ngrid: {seed: [1, 2]}\n",
     ":3:8: grid: 'seed' is already on set: (line 2); a key can be on one axis only"},
    {"base: c.yaml\ngrid: {seed: [1, 2]}\nzip: {seed: [3, 4]}\n",
     ":3:7: zip: 'seed' is already on grid: (line 2); a key can be on one axis only"},
    {"base: c.yaml\ngrid: {model.layers: [[{type: relu}]]}\n",
     ":2:23: grid: the model has no layer with weights (linear or conv2d)"},
    {"base: c.yaml\ngrid: {seed: [{a: 1}]}\n",
     ":2:15: grid: 'seed' expects an integer, got a mapping"},
    {"base: c.yaml\nset: ~\ngrid: ~\n",
     ":3:7: grid: empty axis (give at least one key with a list of values, or leave grid: out)"},
    {"base: c.yaml\ngrid: {seed: [1, 2]}\nruns: [{seed: 3}]\n",
     ":3:9: runs: 'seed' is already on grid: (line 2); a key can be on one axis only"},
    {"[1]\n", ":1:1: a sweep file is a mapping with base: and axes (grid:, zip:, runs:)"},
    {"base: c.yaml\nbase: c.yaml\n", ":2:1: duplicate key 'base' (first at line 1)"},
    {"base: c.yaml\ngrid: {seed: [1,2,3,4,5,6,7,8,9,10], train.epochs: [1,2,3,4,5,6,7,8,9,10], "
     "train.batch_size: [1,2,3,4,5,6,7,8,9,10], prune.target: "
     "[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.85,0.9], data.synthetic.train: "
     "[10,11,12,13,14,15,16,17,18,19], data.synthetic.test: [5, 6]}\n",
     ": the axes expand to more than 100000 runs"},
};

Test(cov_config, every_bad_sweep_file_is_one_line_naming_its_place)
{
    char *dir = elag_test_tmpdir("cov-sweep-spec");
    char path[600];
    elag_test_put(dir, "c.yaml",
                  "name: c\ndevice: cpu-ref\ndata: {dataset: synthetic}\n"
                  "model: {layers: [{type: linear, out_features: 4}]}\ntrain: {epochs: 1}\n");
    snprintf(path, sizeof path, "%s/sub", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/s.yaml", dir);
    for (size_t i = 0; i < sizeof bad_sweeps / sizeof *bad_sweeps; i++) {
        const bad_case *c = &bad_sweeps[i];
        elag_test_put(dir, "s.yaml", c->text);
        elag_sweep_t *sw = NULL;
        elag_status st = elag_sweep_open(&sw, path);
        elag_sweep_free(sw);
        const char *msg = elag_last_error();
        cr_expect_eq(st, ELAG_ERR_INPUT, "sweep %zu (%s): status %d: %s", i, c->text, st, msg);
        cr_expect(strncmp(msg, path, strlen(path)) == 0 &&
                      strncmp(msg + strlen(path), c->want, strlen(c->want)) == 0,
                  "sweep %zu (%s): '%s', want '%s%s'", i, c->text, msg, path, c->want);
        cr_expect_null(strchr(msg, '\n'), "sweep %zu: more than one line: %s", i, msg);
    }
    /* the same key twice in runs: is one run; an empty item is the base */
    elag_test_put(dir, "s.yaml", "base: c.yaml\nruns: [{seed: 1}, {seed: 1}, {}]\n");
    elag_sweep_t *sw = NULL;
    cr_assert_eq(elag_sweep_open(&sw, path), ELAG_OK, "%s", elag_last_error());
    cr_expect_eq(elag_sweep_run_count(sw), 2);
    elag_sweep_free(sw);
    elag_test_rmtree(dir);
    free(dir);
}

/* --set: each refusal starts with "--set SPEC:" instead of a file's place */
Test(cov_config, bad_overrides)
{
    static const struct {
        const char *set, *want;
    } bad[] = {
        {"train.epochs", "--set train.epochs: expected KEY=VALUE"},
        {"=3", "--set =3: expected KEY=VALUE"},
        {" = 3", "--set  = 3: expected KEY=VALUE"},
        {"train.epochs=[", "--set train.epochs=[: YAML syntax error: did not find expected node "
                           "content"},
        {"bogus.key=1", "--set bogus.key=1: unknown key 'bogus.key'"},
        {"train.epocs=3", "--set train.epocs=3: unknown key 'train.epocs' (did you mean "
                          "'train.epochs'?)"},
        {"train.epochs=x", "--set train.epochs=x: 'train.epochs' expects an integer, got 'x'"},
        {"prune.target=*a", "--set prune.target=*a: YAML aliases (*name) are not supported"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *sets[] = {bad[i].set};
        cr_expect_eq(elag_config_parse("{}\n", 3, "c.yaml", sets, 1, &cfg), ELAG_ERR_INPUT, "%s",
                     bad[i].set);
        cr_expect(strncmp(elag_last_error(), bad[i].want, strlen(bad[i].want)) == 0,
                  "'%s', want '%s'", elag_last_error(), bad[i].want);
    }
    char long_key[400];
    memset(long_key, 'a', 300);
    strcpy(long_key + 300, "=1");
    const char *sets[] = {long_key};
    cr_expect_eq(elag_config_parse("{}\n", 3, "c.yaml", sets, 1, &cfg), ELAG_ERR_INPUT);
    cr_expect(strstr(elag_last_error(), "unknown key 'aaaa") != NULL, "%s", elag_last_error());
    /* a section that is not a mapping in the file: the override's section wins */
    const char *epochs[] = {"train.epochs=3"};
    cr_expect_eq(elag_config_parse("train: 5\n", 9, "c.yaml", epochs, 1, &cfg), ELAG_OK, "%s",
                 elag_last_error());
    cr_expect_eq(cfg.train.epochs, 3);
    /* model.preset and model.layers replace each other */
    const char *preset[] = {"model.preset=lenet-5"};
    const char *layers_yaml = "model: {layers: [{type: linear, out_features: 10}]}\n";
    cr_expect_eq(elag_config_parse(layers_yaml, strlen(layers_yaml), "c.yaml", preset, 1, &cfg),
                 ELAG_OK, "%s", elag_last_error());
    cr_expect_eq(cfg.model.n_layers, 12, "lenet-5 has 12 layers");
    const char *layers[] = {"model.layers=[{type: linear, out_features: 7}]"};
    const char *preset_yaml = "model: {preset: vgg-small}\n";
    cr_expect_eq(elag_config_parse(preset_yaml, strlen(preset_yaml), "c.yaml", layers, 1, &cfg),
                 ELAG_OK, "%s", elag_last_error());
    cr_expect(cfg.model.n_layers == 1 && cfg.model.preset[0] == '\0');
}

/* --shard I/N: 0 <= I < N <= 1000000, digits and one '/' only */
Test(cov_config, shard_specs)
{
    static const struct {
        const char *spec;
        int ok, i, n;
    } specs[] = {
        {"0/1", 1, 0, 1},
        {"3/4", 1, 3, 4},
        {"999999/1000000", 1, 999999, 1000000},
        {"4/4", 0, 0, 0},
        {"-1/2", 0, 0, 0},
        {"1/0", 0, 0, 0},
        {"1/x", 0, 0, 0},
        {"x/2", 0, 0, 0},
        {"1/2/3", 0, 0, 0},
        {"1", 0, 0, 0},
        {"/2", 0, 0, 0},
        {"1/", 0, 0, 0},
        {"0/1000001", 0, 0, 0},
        {"99999999999999999999/2", 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
        int shard = -5, n = -5;
        int r = elag_sweep_parse_shard(specs[i].spec, &shard, &n);
        cr_expect_eq(r, specs[i].ok ? 0 : -1, "'%s': %d", specs[i].spec, r);
        if (specs[i].ok)
            cr_expect(shard == specs[i].i && n == specs[i].n, "'%s': %d/%d", specs[i].spec, shard,
                      n);
        else
            cr_expect(shard == -5 && n == -5, "'%s' wrote its result", specs[i].spec);
    }
}
