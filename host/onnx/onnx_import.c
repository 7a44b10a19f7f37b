/*
 * `elag import MODEL.onnx`: an ONNX chain of operators mapped onto elag layers (onnx.h
 * lists them; onnx_ops.c maps each node), written as an elag checkpoint. The graph is
 * walked once in node order, following one value from the graph input to the graph
 * output; every other node input must be a constant (an initializer or a Constant node). Each mapped layer keeps its
 * tensors in elag's layout and one YAML item; the YAML (with --set overrides) is parsed by
 * the config module, the model is built from it on the reference CPU backend, and the
 * tensors are copied in by position, so the checkpoint is what `elag train` would write.
 */
#include "onnx/onnx.h"

#include "core/check.h"
#include "model/model.h"
#include "onnx/onnx_import.h"
#include "onnx/onnx_tensor.h"
#include "train/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static elag_status graph_input(elag_onnx_imp *s)
{
    const Onnx__ValueInfoProto *in = NULL;
    for (size_t i = 0; i < s->g->n_input; i++) {
        const char *name = s->g->input[i]->name;
        if (name && !elag_onnx_find_tensor(s, name)) {
            if (in) return elag_fail(ELAG_ERR_INPUT, "%s: more than one graph input", s->path);
            in = s->g->input[i];
        }
    }
    if (!in) return elag_fail(ELAG_ERR_INPUT, "%s: the graph has no input", s->path);
    const Onnx__TypeProto *ty = in->type;
    const Onnx__TypeProto__Tensor *tt =
        ty && ty->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ? ty->tensor_type : NULL;
    if (!tt || tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || !tt->shape)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: graph input '%s' must be a FLOAT tensor with a "
                         "shape",
                         s->path, in->name);
    size_t nd = tt->shape->n_dim;
    int64_t d[4] = {1, 1, 1, 1};
    for (size_t i = 1; i < nd && i < 4; i++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[i];
        if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
            dim->dim_value < 1 || dim->dim_value > (1 << 30))
            return elag_fail(ELAG_ERR_INPUT,
                             "%s: graph input '%s': dimension %zu must be a "
                             "fixed size (only the batch may vary)",
                             s->path, in->name, i);
        d[i] = dim->dim_value;
    }
    if (nd == 2)
        s->shape = (elag_fshape){(int)d[1], 1, 1};
    else if (nd == 4 && d[1] * d[2] * d[3] <= (1 << 30))
        s->shape = (elag_fshape){(int)d[1], (int)d[2], (int)d[3]};
    else
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: graph input '%s' has %zu dimensions; elag takes "
                         "(N, features) or (N, C, H, W)",
                         s->path, in->name, nd);
    s->rank4 = nd == 4;
    s->cur = in->name;
    return ELAG_OK;
}

static void imp_free(elag_onnx_imp *s)
{
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < 4; j++) free(s->l[i].t[j]);
}

/* The YAML of the imported network: a name, the layers, everything else elag's default. */
static char *build_yaml(const elag_onnx_imp *s, const char *onnx_path)
{
    const char *base = strrchr(onnx_path, '/');
    base = base ? base + 1 : onnx_path;
    size_t bl = strlen(base);
    if (bl > 5 && strcmp(base + bl - 5, ".onnx") == 0) bl -= 5;
    char name[ELAG_NAME_LEN];
    size_t k = 0;
    for (size_t i = 0; i < bl && k + 1 < sizeof name; i++) /* a plain name for run folders */
        name[k++] =
            (char)((base[i] >= 'a' && base[i] <= 'z') || (base[i] >= 'A' && base[i] <= 'Z') ||
                           (base[i] >= '0' && base[i] <= '9') || base[i] == '-' || base[i] == '_'
                       ? base[i]
                       : '-');
    name[k] = '\0';
    size_t cap = 256 + (size_t)s->n * YAML_ITEM;
    char *y = malloc(cap);
    if (!y) return NULL;
    int at = snprintf(y, cap, "name: %s\nmodel:\n  layers:\n", k ? name : "imported");
    for (int i = 0; i < s->n; i++) at += snprintf(y + at, cap - (size_t)at, "%s", s->l[i].yaml);
    return y;
}

/* Builds cfg's model over the imported shapes and copies the tensors in by position. */
static elag_status write_checkpoint(elag_onnx_imp *s, const elag_config *cfg, elag_fshape input,
                                    int classes, const char *out_path, elag_onnx_import_info *info)
{
    elag_backend *be = NULL;
    elag_model *m = calloc(1, sizeof *m);
    if (!m) return elag_fail(ELAG_ERR_NOMEM, "import: out of host memory");
    elag_status st = elag_backend_open("cpu-ref", 1, &be, NULL, 0);
    if (st == ELAG_OK) st = elag_model_init(m, cfg, input, classes, 1, 0, be);
    if (st == ELAG_OK) st = elag_model_init_params(m, cfg->seed); /* masks of ones */
    for (int i = 0; st == ELAG_OK && i < m->n_layers; i++) {
        const elag_layer *l = &m->layers[i];
        if (i >= s->n || l->n_params != s->l[i].n_t)
            st = elag_fail(ELAG_ERR_USAGE,
                           "import: layer '%s': --set changed the imported "
                           "layers (model.* comes from the ONNX graph)",
                           l->cfg.name);
        for (int j = 0; st == ELAG_OK && j < l->n_params; j++) {
            const elag_param *p = &m->reg[l->first_param + j];
            if (p->count != s->l[i].count[j]) {
                st = elag_fail(ELAG_ERR_USAGE,
                               "import: tensor '%s': --set changed the imported "
                               "layers (model.* comes from the ONNX graph)",
                               p->name);
                break;
            }
            st = elag_be_to_device(be, m->params + p->offset, s->l[i].t[j],
                                   p->count * sizeof(float));
        }
        if (info)
            snprintf(info->layer[i], sizeof info->layer[i], "%-8s %s", l->cfg.name, s->l[i].desc);
    }
    elag_checkpoint_counters c;
    memset(&c, 0, sizeof c);
    if (st == ELAG_OK) st = elag_checkpoint_save(m, cfg, &c, out_path);
    if (st == ELAG_OK && info) {
        info->n_layers = m->n_layers;
        info->classes = m->classes;
        info->input = m->input;
    }
    elag_model_free(m);
    free(m);
    elag_backend_free(be);
    return st;
}

elag_status elag_onnx_import(const char *onnx_path, const char *out_path,
                             const char *const *overrides, int n_overrides,
                             elag_onnx_import_info *info)
{
    Onnx__ModelProto *mp;
    ELAG_TRY(elag_onnx_read(onnx_path, &mp));
    elag_onnx_imp *s = calloc(1, sizeof *s);
    if (!s) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return elag_fail(ELAG_ERR_NOMEM, "import: out of host memory");
    }
    s->path = onnx_path;
    s->g = mp->graph;
    if (info) memset(info, 0, sizeof *info);
    elag_status st = graph_input(s);
    elag_fshape input = s->shape;
    for (size_t i = 0; st == ELAG_OK && i < s->g->n_node; i++) {
        s->node = s->g->node[i];
        snprintf(s->what, sizeof s->what, "%s: node '%s' (%s)", onnx_path,
                 s->node->name ? s->node->name : "", s->node->op_type ? s->node->op_type : "");
        st = elag_onnx_map_node(s);
    }
    if (st == ELAG_OK && (s->g->n_output != 1 || !s->g->output[0]->name ||
                          strcmp(s->g->output[0]->name, s->cur) != 0))
        st = elag_fail(ELAG_ERR_INPUT,
                       "%s: the graph output is not the end of the chain of "
                       "layers ('%s'); elag imports one chain with one output",
                       onnx_path, s->cur);
    if (st == ELAG_OK && (s->rank4 || s->n == 0))
        st = elag_fail(ELAG_ERR_INPUT, "%s: the graph must end in flat logits (N, classes)",
                       onnx_path);
    char *yaml = st == ELAG_OK ? build_yaml(s, onnx_path) : NULL;
    if (st == ELAG_OK && !yaml) st = elag_fail(ELAG_ERR_NOMEM, "import: out of host memory");
    elag_config *cfg = st == ELAG_OK ? calloc(1, sizeof *cfg) : NULL;
    if (st == ELAG_OK && !cfg) st = elag_fail(ELAG_ERR_NOMEM, "import: out of host memory");
    if (st == ELAG_OK) {
        char origin[ELAG_PATH_LEN + 32];
        snprintf(origin, sizeof origin, "%s[imported config]", onnx_path);
        st = elag_config_parse(yaml, strlen(yaml), origin, overrides, n_overrides, cfg);
    }
    if (st == ELAG_OK && cfg->model.n_layers != s->n)
        st = elag_fail(ELAG_ERR_USAGE, "import: --set may not change model.layers or "
                                       "model.preset (the ONNX graph gives the layers)");
    if (st == ELAG_OK)
        st = write_checkpoint(s, cfg, input, (int)elag_fshape_count(s->shape), out_path, info);
    free(cfg);
    free(yaml);
    imp_free(s);
    free(s);
    onnx__model_proto__free_unpacked(mp, NULL);
    return st;
}
