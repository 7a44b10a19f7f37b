/*
 * The one place layer kinds are registered: the table, indexed by elag_layer_kind (the
 * enum in config/config.h only numbers the entries). Adding a kind = its file in this
 * folder + an enum value + one line here.
 */
#include "model/layer.h"

#include <string.h>

extern const elag_layer_kind_def elag_layer_linear, elag_layer_relu, elag_layer_flatten,
    elag_layer_conv2d, elag_layer_maxpool, elag_layer_avgpool, elag_layer_global_avgpool,
    elag_layer_batchnorm, elag_layer_dropout;

static const elag_layer_kind_def *const kinds[ELAG_LAYER_KIND_COUNT] = {
    [ELAG_LAYER_LINEAR] = &elag_layer_linear,
    [ELAG_LAYER_RELU] = &elag_layer_relu,
    [ELAG_LAYER_FLATTEN] = &elag_layer_flatten,
    [ELAG_LAYER_CONV2D] = &elag_layer_conv2d,
    [ELAG_LAYER_MAXPOOL] = &elag_layer_maxpool,
    [ELAG_LAYER_AVGPOOL] = &elag_layer_avgpool,
    [ELAG_LAYER_GLOBAL_AVGPOOL] = &elag_layer_global_avgpool,
    [ELAG_LAYER_BATCHNORM] = &elag_layer_batchnorm,
    [ELAG_LAYER_DROPOUT] = &elag_layer_dropout,
};

const elag_layer_kind_def *elag_layer_kind_get(elag_layer_kind k)
{
    if ((int)k < 0 || (int)k >= ELAG_LAYER_KIND_COUNT) return NULL;
    return kinds[k];
}

int elag_layer_kind_find(const char *name)
{
    for (int k = 0; k < ELAG_LAYER_KIND_COUNT; k++)
        if (kinds[k] && strcmp(kinds[k]->name, name) == 0) return k;
    return -1;
}
