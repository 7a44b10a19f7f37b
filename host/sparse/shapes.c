/*
 * Weight shapes for the benchmark (bench.h): from a small YAML file in configs/shapes/,
 *   shapes:
 *     - {name: ffn1, m: 3072, k: 768}   # W is (m, k) = (out, in)
 * read with libyaml's document loader so every error names file:line (unknown keys are
 * errors, like the config module's), or from a trained model's `<layer>.mask` tensors.
 */
#include "sparse/bench.h"

#include "io/safetensors.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define SHAPES_MAX 4096
#define SHAPES_FILE_MAX (1 << 20) /* a shapes file is a few lines; refuse anything huge */

void elag_bench_shapes_free(elag_bench_shape *v, int n)
{
    if (v == NULL) return;
    for (int i = 0; i < n; i++) free(v[i].mask);
    free(v);
}

/* Records "<path>:<line>: <what>" (or "<path>: <what>" without a node) as ELAG_ERR_INPUT. */
static elag_status at(const char *path, const yaml_node_t *node, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static elag_status at(const char *path, const yaml_node_t *node, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (node)
        return elag_fail(ELAG_ERR_INPUT, "%s:%lu: %s", path,
                         (unsigned long)node->start_mark.line + 1, msg);
    return elag_fail(ELAG_ERR_INPUT, "%s: %s", path, msg);
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A positive int scalar (dimension), with a message naming the key otherwise. */
static elag_status dim_value(const char *path, const yaml_node_t *v, const char *key, int *out)
{
    const char *t = scalar(v);
    char *end = NULL;
    errno = 0;
    long x = t ? strtol(t, &end, 10) : 0;
    if (!t || !*t || *end || errno || x < 1 || x > INT_MAX / 2)
        return at(path, v, "%s must be a positive integer (got '%s')", key,
                  t ? t : "a list or map");
    *out = (int)x;
    return ELAG_OK;
}

static elag_status parse_entry(const char *path, yaml_document_t *doc, yaml_node_t *e,
                               elag_bench_shape *sh)
{
    if (e->type != YAML_MAPPING_NODE)
        return at(path, e, "each shape is a mapping {name: ..., m: ..., k: ...}");
    int have_m = 0, have_k = 0;
    for (yaml_node_pair_t *p = e->data.mapping.pairs.start; p < e->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        const char *key = scalar(kn);
        if (key == NULL) return at(path, kn, "keys must be plain names");
        if (strcmp(key, "name") == 0) {
            const char *v = scalar(vn);
            if (!v || !*v || strlen(v) >= sizeof sh->name)
                return at(path, vn, "name must be a string of 1..%d characters",
                          (int)sizeof sh->name - 1);
            snprintf(sh->name, sizeof sh->name, "%s", v);
        } else if (strcmp(key, "m") == 0) {
            elag_status st = dim_value(path, vn, "m", &sh->m);
            if (st != ELAG_OK) return st;
            have_m = 1;
        } else if (strcmp(key, "k") == 0) {
            elag_status st = dim_value(path, vn, "k", &sh->k);
            if (st != ELAG_OK) return st;
            have_k = 1;
        } else {
            return at(path, kn, "unknown key '%s' in a shape (expected name, m, k)", key);
        }
    }
    if (!have_m || !have_k) return at(path, e, "a shape needs m and k");
    if (!sh->name[0]) snprintf(sh->name, sizeof sh->name, "%dx%d", sh->m, sh->k);
    return ELAG_OK;
}

static elag_status parse_doc(const char *path, yaml_document_t *doc, elag_bench_shape **out,
                             int *n_out)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE)
        return at(path, root, "expected a mapping with the key 'shapes'");
    yaml_node_t *list = NULL;
    yaml_node_pair_t *pairs = root->data.mapping.pairs.start;
    for (yaml_node_pair_t *p = pairs; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        const char *key = scalar(kn);
        if (key && strcmp(key, "shapes") == 0)
            list = yaml_document_get_node(doc, p->value);
        else
            return at(path, kn, "unknown key '%s' (expected 'shapes')", key ? key : "?");
    }
    if (list == NULL) return at(path, root, "missing key 'shapes'");
    if (list->type != YAML_SEQUENCE_NODE)
        return at(path, list, "'shapes' must be a list of {name, m, k}");
    int n = (int)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n < 1 || n > SHAPES_MAX) return at(path, list, "'shapes' must hold 1 to 4096 entries");
    elag_bench_shape *v = calloc((size_t)n, sizeof *v);
    if (!v) return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", path);
    for (int i = 0; i < n; i++) {
        yaml_node_t *e = yaml_document_get_node(doc, list->data.sequence.items.start[i]);
        elag_status st = parse_entry(path, doc, e, &v[i]);
        if (st != ELAG_OK) {
            free(v);
            return st;
        }
    }
    *out = v;
    *n_out = n;
    return ELAG_OK;
}

elag_status elag_bench_shapes_load(const char *path, elag_bench_shape **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return elag_fail(ELAG_ERR_INPUT, "%s: %s", path, strerror(errno));
    char *text = malloc(SHAPES_FILE_MAX + 1);
    size_t len = text ? fread(text, 1, SHAPES_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (text == NULL) return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", path);
    if (len > SHAPES_FILE_MAX) {
        free(text);
        return elag_fail(ELAG_ERR_INPUT, "%s: larger than 1 MiB: not a shapes file", path);
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    elag_status st = ELAG_OK;
    if (!yaml_parser_initialize(&parser)) {
        free(text);
        return elag_fail(ELAG_ERR_NOMEM, "%s: cannot start the YAML parser", path);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        st = elag_fail(ELAG_ERR_INPUT, "%s:%lu:%lu: YAML syntax error: %s", path,
                       (unsigned long)parser.problem_mark.line + 1,
                       (unsigned long)parser.problem_mark.column + 1,
                       parser.problem ? parser.problem : "unknown");
    } else {
        st = parse_doc(path, &doc, out, n_out);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    free(text);
    return st;
}

elag_status elag_bench_shapes_from_model(const char *path, elag_bench_shape **out, int *n_out)
{
    *out = NULL;
    *n_out = 0;
    elag_st_file *f = NULL;
    elag_status st = elag_st_open(path, &f);
    if (st != ELAG_OK) return st;
    int count = elag_st_count(f), n = 0;
    elag_bench_shape *v = calloc((size_t)(count ? count : 1), sizeof *v);
    if (!v) {
        elag_st_close(f);
        return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < count && st == ELAG_OK; i++) {
        const elag_st_tensor *t = elag_st_at(f, i);
        size_t len = strlen(t->name);
        if (len < 6 || strcmp(t->name + len - 5, ".mask") != 0) continue;
        if (t->ndim != 2 || (t->dtype != ELAG_DTYPE_U8 && t->dtype != ELAG_DTYPE_F32) ||
            t->shape[0] < 1 || t->shape[1] < 1 || t->shape[0] > INT_MAX / 2 ||
            t->shape[1] > INT_MAX / 2) {
            st = elag_fail(ELAG_ERR_INPUT, "%s: tensor %s is not a 2-D U8 or F32 mask", path,
                           t->name);
            break;
        }
        elag_bench_shape *sh = &v[n];
        snprintf(sh->name, sizeof sh->name, "%.*s", (int)(len - 5), t->name);
        sh->m = (int)t->shape[0];
        sh->k = (int)t->shape[1];
        size_t mk = (size_t)sh->m * sh->k;
        sh->mask = malloc(mk);
        if (!sh->mask) {
            st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory for %s", path, t->name);
            break;
        }
        for (size_t j = 0; j < mk; j++)
            sh->mask[j] = t->dtype == ELAG_DTYPE_U8 ? ((const uint8_t *)t->data)[j] != 0
                                                    : ((const float *)t->data)[j] != 0.0f;
        n++;
    }
    elag_st_close(f);
    if (st == ELAG_OK && n == 0)
        st = elag_fail(ELAG_ERR_INPUT, "%s: no <layer>.mask tensors (is it a checkpoint?)", path);
    if (st != ELAG_OK) {
        elag_bench_shapes_free(v, n + 1);
        return st;
    }
    *out = v;
    *n_out = n;
    return ELAG_OK;
}
