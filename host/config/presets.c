/*
 * Model presets: each is the model.layers list it stands for, written in the config's own
 * YAML and read by the same code as a user's list, so a preset can hold nothing a config
 * could not, and a run's resolved config.yaml lists its expanded layers.
 */
#include "config/config_internal.h"

#include "core/check.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    const char *layers;
} presets[] = {
    {"lenet-300-100", /* LeCun et al. 1998; the MLP of the pruning literature */
     "- {type: linear, name: fc1, out_features: 300}\n"
     "- {type: relu, name: relu1}\n"
     "- {type: linear, name: fc2, out_features: 100}\n"
     "- {type: relu, name: relu2}\n"
     "- {type: linear, name: fc3, out_features: 10}\n"},
    {"lenet-5", /* LeCun et al. 1998, with ReLU and max pooling (28x28 input, padded conv1) */
     "- {type: conv2d, name: conv1, out_channels: 6, kernel: 5, padding: 2}\n"
     "- {type: relu, name: relu1}\n"
     "- {type: maxpool, name: pool1, kernel: 2}\n"
     "- {type: conv2d, name: conv2, out_channels: 16, kernel: 5}\n"
     "- {type: relu, name: relu2}\n"
     "- {type: maxpool, name: pool2, kernel: 2}\n"
     "- {type: flatten, name: flatten}\n"
     "- {type: linear, name: fc1, out_features: 120}\n"
     "- {type: relu, name: relu3}\n"
     "- {type: linear, name: fc2, out_features: 84}\n"
     "- {type: relu, name: relu4}\n"
     "- {type: linear, name: fc3, out_features: 10}\n"},
    {"vgg-small", /* two VGG blocks (32 then 64 channels) and a small head; convolutions
                   * before batch norm have no bias (the norm's shift replaces it) */
     "- {type: conv2d, name: conv1, out_channels: 32, kernel: 3, padding: 1, bias: false}\n"
     "- {type: batchnorm, name: bn1}\n"
     "- {type: relu, name: relu1}\n"
     "- {type: conv2d, name: conv2, out_channels: 32, kernel: 3, padding: 1, bias: false}\n"
     "- {type: batchnorm, name: bn2}\n"
     "- {type: relu, name: relu2}\n"
     "- {type: maxpool, name: pool1, kernel: 2}\n"
     "- {type: conv2d, name: conv3, out_channels: 64, kernel: 3, padding: 1, bias: false}\n"
     "- {type: batchnorm, name: bn3}\n"
     "- {type: relu, name: relu3}\n"
     "- {type: conv2d, name: conv4, out_channels: 64, kernel: 3, padding: 1, bias: false}\n"
     "- {type: batchnorm, name: bn4}\n"
     "- {type: relu, name: relu4}\n"
     "- {type: maxpool, name: pool2, kernel: 2}\n"
     "- {type: flatten, name: flatten}\n"
     "- {type: linear, name: fc1, out_features: 128}\n"
     "- {type: relu, name: relu5}\n"
     "- {type: dropout, name: drop1, p: 0.3}\n"
     "- {type: linear, name: fc2, out_features: 10}\n"},
};

elag_status elag_cfg_preset_expand(const char *preset, elag_config *cfg)
{
    size_t i = 0;
    while (i < ELAG_ARRAY_LEN(presets) && strcmp(presets[i].name, preset)) i++;
    if (i == ELAG_ARRAY_LEN(presets))
        return elag_fail(ELAG_ERR_INPUT, "model.preset: unknown preset '%s'", preset);
    char origin[96];
    snprintf(origin, sizeof origin, "preset %s", presets[i].name);
    elag_cfg_ctx ctx = {.origin = origin, .overrides = NULL, .n_overrides = 0};
    elag_ynode *seq = NULL;
    const char *text = presets[i].layers;
    ELAG_TRY(elag_ynode_parse(&ctx, text, strlen(text), -1, &seq));
    elag_cfg_conv conv;
    memset(&conv, 0, sizeof conv);
    conv.ctx = &ctx;
    conv.cfg = cfg;
    elag_status st = elag_cfg_layers(&conv, seq);
    elag_ynode_free(seq);
    if (st != ELAG_OK) return st;
    /* preset may be cfg->model.preset itself: write the known spelling, not a copy */
    memset(cfg->model.preset, 0, sizeof cfg->model.preset);
    snprintf(cfg->model.preset, sizeof cfg->model.preset, "%s", presets[i].name);
    return ELAG_OK;
}
