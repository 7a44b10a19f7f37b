/*
 * Private pieces of the sweep module shared by spec.c and values.c: a growable string,
 * YAML nodes (the config module's tree, which keeps line and column) written back as
 * flow text for `--set`, and resolved values as JSON for ledger rows.
 */
#ifndef ELAG_SWEEP_SWEEP_INTERNAL_H
#define ELAG_SWEEP_SWEEP_INTERNAL_H

#include "config/config_internal.h"
#include "sweep/sweep.h"

#include <stddef.h>

typedef struct elag_sweep_buf {
    char *p;   /* NUL-terminated once anything was put; caller frees */
    size_t n, cap;
    int oom;   /* an allocation failed: the text is incomplete */
} elag_sweep_buf;

void elag_sweep_buf_put(elag_sweep_buf *b, const char *s, size_t len);
void elag_sweep_buf_puts(elag_sweep_buf *b, const char *s);

/* Appends node n as YAML flow text: plain scalars as written, quoted ones double-quoted
 * (escaped), lists as [a, b], mappings as {k: v}. */
void elag_sweep_flow(elag_sweep_buf *b, const elag_ynode *n);

/* A YAML node as JSON: plain scalars become numbers, booleans or null where they read
 * as such, else strings; quoted scalars strings; lists arrays; mappings objects.
 * NULL when out of memory. */
cJSON *elag_sweep_node_json(const elag_ynode *n);

/* The node at a dotted key ("train.optimizer.lr") of a mapping tree, or NULL. */
const elag_ynode *elag_sweep_resolved_get(const elag_ynode *root, const char *key);

#endif /* ELAG_SWEEP_SWEEP_INTERNAL_H */
