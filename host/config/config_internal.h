/*
 * Private pieces of the config module, shared by its .c files:
 *  - the YAML node tree (yaml_tree.c): libyaml events turned into mappings, sequences
 *    and scalars that remember their 1-based line and column, or which --set made them;
 *  - the key table (keys.c): every dotted key, its type, range and field, in the order
 *    to_yaml writes them, so parsing, emitting and suggestions share one list;
 *  - scalar parsing (scalars.c), typo suggestions (suggest.c), --set (overrides.c),
 *    tree -> struct conversion (convert.c).
 */
#ifndef ELAG_CONFIG_CONFIG_INTERNAL_H
#define ELAG_CONFIG_CONFIG_INTERNAL_H

#include "config/config.h"

#include <stddef.h>

/* ---- YAML node tree ---- */

typedef enum elag_ynode_kind {
    ELAG_YNODE_SCALAR = 0,
    ELAG_YNODE_MAPPING = 1,
    ELAG_YNODE_SEQUENCE = 2
} elag_ynode_kind;

typedef struct elag_ynode {
    elag_ynode_kind kind;
    int line, col;            /* 1-based position in the file; 0 for nodes made by --set */
    int set_index;            /* index of the --set override that made it, -1 for the file */
    char *text;               /* scalar: its text, NUL-terminated */
    int plain;                /* scalar: written without quotes ("" and "~" then mean null) */
    size_t n, cap;            /* mapping: pairs; sequence: items */
    struct elag_ynode **keys; /* mapping: key scalars, n of them */
    struct elag_ynode **vals; /* mapping: values; sequence: items; n of them */
} elag_ynode;

/* Where messages come from: the file (origin) or one of the --set overrides. */
typedef struct elag_cfg_ctx {
    const char *origin;
    const char *const *overrides;
    int n_overrides;
} elag_cfg_ctx;

/* Records "<origin>:<line>:<col>: <msg>" (or "--set K=V: <msg>" for nodes made by an
 * override, or "<origin>: <msg>" when `at` is NULL) and returns s. */
elag_status elag_cfg_fail(const elag_cfg_ctx *ctx, const elag_ynode *at, elag_status s,
                          const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Parses one YAML document into a tree (*out; an empty document gives a null scalar).
 * Syntax errors are reported with their position, or as "--set ..." when set_index >= 0. */
elag_status elag_ynode_parse(const elag_cfg_ctx *ctx, const char *text, size_t len, int set_index,
                             elag_ynode **out);
void elag_ynode_free(elag_ynode *n);
elag_ynode *elag_ynode_new(elag_ynode_kind kind, const char *text, int set_index);
/* Value of `key` in mapping m, or NULL. */
elag_ynode *elag_ynode_get(const elag_ynode *m, const char *key);
/* Sets m[key] = val (taking ownership of val), replacing an existing value in place. */
elag_status elag_ynode_set(elag_ynode *m, const char *key, elag_ynode *val, int set_index);
/* Removes every m[key]. */
void elag_ynode_remove(elag_ynode *m, const char *key);
/* 1 for a plain "", "~", "null", "Null" or "NULL" scalar. */
int elag_ynode_is_null(const elag_ynode *n);
/* "'text'" for scalars (shortened), "a mapping" or "a list", into buf. */
const char *elag_ynode_describe(const elag_ynode *n, char *buf, size_t size);

/* ---- key table ---- */

typedef enum elag_cfg_kind {
    ELAG_CFG_SECTION = 0, /* a mapping of further keys */
    ELAG_CFG_INT,         /* int field */
    ELAG_CFG_LONG,        /* long field */
    ELAG_CFG_U64,         /* uint64_t field */
    ELAG_CFG_FLOAT,       /* double field */
    ELAG_CFG_BOOL,        /* int field, 0 or 1 */
    ELAG_CFG_STRING,      /* char[size] field */
    ELAG_CFG_ENUM,        /* int-sized enum field; value = index in names */
    ELAG_CFG_NAME,        /* char[size] field holding one of names */
    ELAG_CFG_WHEN,        /* elag_when field */
    ELAG_CFG_PAIR,        /* list of two doubles: fields at offset and offset2 */
    ELAG_CFG_LAYERS,      /* model.layers */
    ELAG_CFG_INT2,        /* int[2] field: a scalar sets both, or a list of 2 integers */
    ELAG_CFG_LAYER_TYPE,  /* model.layers[i].type: a kind of the layer-kind table */
    ELAG_CFG_PRUNE_LAYERS, /* prune.layers: a list of per-layer overrides (prune_layers.c) */
    ELAG_CFG_UNSUPPORTED  /* planned, not built yet: any value is an error */
} elag_cfg_kind;

#define ELAG_CFG_NO_FIELD ((size_t)-1)

typedef struct elag_cfg_key {
    const char *path; /* dotted ("train.optimizer.lr"); for layer keys the last part */
    elag_cfg_kind kind;
    size_t offset;            /* into elag_config (elag_layer_config for layer keys) */
    size_t size;              /* STRING/NAME: capacity with NUL; PAIR: 2nd field offset */
    double lo, hi;            /* accepted range (numbers, also each PAIR item) */
    int lo_open, hi_open;     /* 1 when the bound itself is excluded */
    const char *const *names; /* ENUM/NAME: spellings, NULL-terminated; index = enum value */
    const char *const *later; /* ENUM/NAME: spellings planned, not built yet */
} elag_cfg_key;

extern const elag_cfg_key elag_cfg_keys[];
extern const size_t elag_cfg_n_keys;
extern const elag_cfg_key elag_cfg_layer_keys[];
extern const size_t elag_cfg_n_layer_keys;
/* Keys of one prune.layers item; offsets into elag_prune_layer_config. */
extern const elag_cfg_key elag_cfg_prune_layer_keys[];
extern const size_t elag_cfg_n_prune_layer_keys;

/* Spellings, NULL-terminated, index = enum value (names.c); *_later: planned, not built. */
extern const char *const elag_cfg_dataset_names[];
extern const char *const elag_cfg_optimizer_names[];
extern const char *const elag_cfg_lr_schedule_names[];
extern const char *const elag_cfg_sparse_compute_names[];
extern const char *const elag_cfg_prune_method_names[];
extern const char *const elag_cfg_prune_method_later[];
extern const char *const elag_cfg_criterion_names[];
extern const char *const elag_cfg_criterion_later[];
extern const char *const elag_cfg_scope_names[];
extern const char *const elag_cfg_granularity_names[];
extern const char *const elag_cfg_distribution_names[];
extern const char *const elag_cfg_norm_names[];
extern const char *const elag_cfg_preset_names[];
extern const char *const elag_cfg_preset_later[];

#define ELAG_CFG_MAX_KEYS 96 /* bound on elag_cfg_n_keys, checked at run time */

/* Index of `path` in elag_cfg_keys, or -1. */
int elag_cfg_key_find(const char *path);

/* ---- scalars: full-string parses; 0 ok, -1 not that type, -2 out of the type's range ---- */

int elag_cfg_parse_ll(const char *s, long long *out);
int elag_cfg_parse_u64(const char *s, uint64_t *out);
int elag_cfg_parse_double(const char *s, double *out); /* finite values only */
int elag_cfg_parse_bool(const char *s, int *out);
/* Shortest "%.Ng" that reads back to exactly v, with ".0" added when it would
 * otherwise look like an integer. */
void elag_cfg_format_double(double v, char *buf, size_t size);

/* ---- suggestions ---- */

size_t elag_cfg_edit_distance(const char *a, const char *b);
/* Closest of cands[0..n) to the unknown dotted path, or NULL when none is close. */
const char *elag_cfg_suggest(const char *path, const char *const *cands, size_t n);
/* " (did you mean 'x'?)" or "" for an unknown dotted key, from the key table. */
const char *elag_cfg_suggest_key(const char *path, char *buf, size_t size);

/* ---- --set ---- */

/* Applies ctx->overrides[i] to the tree (root must be a mapping). */
elag_status elag_cfg_override_apply(const elag_cfg_ctx *ctx, elag_ynode *root, int i);

/* ---- conversion ---- */

typedef struct elag_cfg_conv {
    const elag_cfg_ctx *ctx;
    elag_config *cfg;
    const elag_ynode *at[ELAG_CFG_MAX_KEYS]; /* value node per key given, NULL if defaulted */
} elag_cfg_conv;

/* Walks the root mapping into c->cfg (which holds defaults), type- and range-checking
 * every value and rejecting unknown keys. Cross-key checks are left to config.c. */
elag_status elag_cfg_convert(elag_cfg_conv *c, const elag_ynode *root);

/* Converts a model.layers list into cfg->model.layers (also used for presets). */
elag_status elag_cfg_layers(elag_cfg_conv *c, const elag_ynode *seq);

/* Converts one value (not a section, not a list of items) into its field in base (the
 * config, or an item's struct for item keys); `path` names it in messages. */
elag_status elag_cfg_leaf(const elag_cfg_ctx *ctx, const elag_cfg_key *k, const char *path,
                          const elag_ynode *v, void *base);

/* Error for key i of mapping m when an earlier key has the same text, else OK. */
elag_status elag_cfg_no_duplicate(const elag_cfg_ctx *ctx, const elag_ynode *m, size_t i,
                                  const char *path);

/* Converts a prune.layers list into cfg->prune.layers (prune_layers.c). */
elag_status elag_cfg_prune_layers(elag_cfg_conv *c, const elag_ynode *seq);

/* The prune checks that involve several keys or the model's layers (prune_layers.c): N < M,
 * what nm, erk and global scope may be combined with, each override's glob naming a
 * prunable layer; with nm, prune.initial and prune.target become 1 - N/M. After the model
 * is resolved. */
elag_status elag_cfg_prune_check(const elag_cfg_conv *c, elag_config *cfg);

/* Expands a preset into model.layers (presets.c); ELAG_ERR_INPUT when the name is unknown. */
elag_status elag_cfg_preset_expand(const char *preset, elag_config *cfg);

#endif /* ELAG_CONFIG_CONFIG_INTERNAL_H */
