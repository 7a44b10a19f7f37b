/*
 * YAML nodes of a sweep file as the text of `--set key=value` overrides (flow style), and
 * nodes of a resolved config as the JSON values a ledger row records for swept keys.
 */
#define _POSIX_C_SOURCE 200809L
#include "sweep/sweep_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends len bytes; on allocation failure sets b->oom and appends nothing more. */
void elag_sweep_buf_put(elag_sweep_buf *b, const char *s, size_t len)
{
    if (b->oom) return;
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + len + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = '\0';
}

void elag_sweep_buf_puts(elag_sweep_buf *b, const char *s)
{
    elag_sweep_buf_put(b, s, strlen(s));
}

/* A node back as YAML flow text: plain scalars as written, quoted ones double-quoted,
 * lists as [a, b], mappings as {k: v}. */
void elag_sweep_flow(elag_sweep_buf *b, const elag_ynode *n)
{
    if (n->kind == ELAG_YNODE_SCALAR) {
        if (n->plain) {
            elag_sweep_buf_puts(b, n->text);
            return;
        }
        elag_sweep_buf_puts(b, "\"");
        for (const unsigned char *s = (const unsigned char *)n->text; *s; s++) {
            char esc[8];
            if (*s == '"' || *s == '\\') {
                esc[0] = '\\';
                esc[1] = (char)*s;
                elag_sweep_buf_put(b, esc, 2);
            } else if (*s < 0x20 || *s == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02x", *s);
                elag_sweep_buf_puts(b, esc);
            } else {
                elag_sweep_buf_put(b, (const char *)s, 1);
            }
        }
        elag_sweep_buf_puts(b, "\"");
        return;
    }
    int map = n->kind == ELAG_YNODE_MAPPING;
    elag_sweep_buf_puts(b, map ? "{" : "[");
    for (size_t i = 0; i < n->n; i++) {
        if (i) elag_sweep_buf_puts(b, ", ");
        if (map) {
            elag_sweep_flow(b, n->keys[i]);
            elag_sweep_buf_puts(b, ": ");
        }
        elag_sweep_flow(b, n->vals[i]);
    }
    elag_sweep_buf_puts(b, map ? "}" : "]");
}

/* A resolved YAML node as JSON: numbers, booleans, null, strings, lists, mappings. */
cJSON *elag_sweep_node_json(const elag_ynode *n)
{
    if (n->kind == ELAG_YNODE_SCALAR) {
        double d;
        int b;
        if (!n->plain) return cJSON_CreateString(n->text);
        if (elag_ynode_is_null(n)) return cJSON_CreateNull();
        if (elag_cfg_parse_double(n->text, &d) == 0) return cJSON_CreateNumber(d);
        if (elag_cfg_parse_bool(n->text, &b) == 0) return cJSON_CreateBool(b);
        return cJSON_CreateString(n->text);
    }
    cJSON *j = n->kind == ELAG_YNODE_MAPPING ? cJSON_CreateObject() : cJSON_CreateArray();
    for (size_t i = 0; j && i < n->n; i++) {
        cJSON *item = elag_sweep_node_json(n->vals[i]);
        if (!item) {
            cJSON_Delete(j);
            return NULL;
        }
        if (n->kind == ELAG_YNODE_MAPPING)
            cJSON_AddItemToObject(j, n->keys[i]->text, item);
        else
            cJSON_AddItemToArray(j, item);
    }
    return j;
}

/* The node at dotted `key` in a resolved config tree, or NULL. */
const elag_ynode *elag_sweep_resolved_get(const elag_ynode *root, const char *key)
{
    char part[256];
    const elag_ynode *cur = root;
    while (cur && *key) {
        const char *dot = strchr(key, '.');
        size_t len = dot ? (size_t)(dot - key) : strlen(key);
        if (len >= sizeof part || cur->kind != ELAG_YNODE_MAPPING) return NULL;
        memcpy(part, key, len);
        part[len] = '\0';
        cur = elag_ynode_get(cur, part);
        key += len + (dot ? 1 : 0);
    }
    return cur;
}

