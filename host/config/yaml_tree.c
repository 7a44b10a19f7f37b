/*
 * YAML text -> node tree, through libyaml's event parser. Every node keeps the
 * 1-based line and column where it starts, so later checks can name the spot.
 * Only what a config needs is kept: mappings, sequences, scalars (with whether
 * they were quoted). Aliases are refused; anchors and tags are ignored.
 */
#define _POSIX_C_SOURCE 200809L
#include "config/config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define ELAG_YAML_MAX_DEPTH 64 /* deeper nesting is no config; also bounds the recursion */

elag_status elag_cfg_fail(const elag_cfg_ctx *ctx, const elag_ynode *at, elag_status s,
                          const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *origin = ctx->origin ? ctx->origin : "<config>";
    if (at && at->set_index >= 0 && at->set_index < ctx->n_overrides)
        return elag_fail(s, "--set %s: %s", ctx->overrides[at->set_index], msg);
    if (at && at->line > 0) return elag_fail(s, "%s:%d:%d: %s", origin, at->line, at->col, msg);
    return elag_fail(s, "%s: %s", origin, msg);
}

elag_ynode *elag_ynode_new(elag_ynode_kind kind, const char *text, int set_index)
{
    elag_ynode *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->set_index = set_index;
    if (kind == ELAG_YNODE_SCALAR) {
        n->text = strdup(text ? text : "");
        n->plain = 1;
        if (!n->text) {
            free(n);
            return NULL;
        }
    }
    return n;
}

void elag_ynode_free(elag_ynode *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->keys) elag_ynode_free(n->keys[i]);
        elag_ynode_free(n->vals[i]);
    }
    free(n->keys);
    free(n->vals);
    free(n->text);
    free(n);
}

/* Appends (key, val) to a mapping, or val to a sequence (key NULL). Takes ownership
 * of both, freeing them on failure. */
static elag_status ynode_append(elag_ynode *m, elag_ynode *key, elag_ynode *val)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 8;
        elag_ynode **vals = realloc(m->vals, cap * sizeof *vals);
        if (vals) m->vals = vals;
        int keys_ok = 1;
        if (vals && m->kind == ELAG_YNODE_MAPPING) {
            elag_ynode **keys = realloc(m->keys, cap * sizeof *keys);
            if (keys) m->keys = keys;
            keys_ok = keys != NULL;
        }
        if (!vals || !keys_ok) {
            elag_ynode_free(key);
            elag_ynode_free(val);
            return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
        }
        m->cap = cap;
    }
    if (m->kind == ELAG_YNODE_MAPPING) m->keys[m->n] = key;
    m->vals[m->n++] = val;
    return ELAG_OK;
}

elag_ynode *elag_ynode_get(const elag_ynode *m, const char *key)
{
    if (!m || m->kind != ELAG_YNODE_MAPPING) return NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->keys[i]->text, key) == 0) return m->vals[i];
    return NULL;
}

elag_status elag_ynode_set(elag_ynode *m, const char *key, elag_ynode *val, int set_index)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i]->text, key) == 0) {
            elag_ynode_free(m->vals[i]);
            m->vals[i] = val;
            return ELAG_OK;
        }
    }
    elag_ynode *k = elag_ynode_new(ELAG_YNODE_SCALAR, key, set_index);
    if (!k) {
        elag_ynode_free(val);
        return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
    }
    return ynode_append(m, k, val);
}

void elag_ynode_remove(elag_ynode *m, const char *key)
{
    size_t j = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->keys[i]->text, key) == 0) {
            elag_ynode_free(m->keys[i]);
            elag_ynode_free(m->vals[i]);
            continue;
        }
        m->keys[j] = m->keys[i];
        m->vals[j++] = m->vals[i];
    }
    m->n = j;
}

int elag_ynode_is_null(const elag_ynode *n)
{
    if (!n || n->kind != ELAG_YNODE_SCALAR || !n->plain) return 0;
    const char *t = n->text;
    return !t[0] || !strcmp(t, "~") || !strcmp(t, "null") || !strcmp(t, "Null") ||
           !strcmp(t, "NULL");
}

const char *elag_ynode_describe(const elag_ynode *n, char *buf, size_t size)
{
    if (n->kind == ELAG_YNODE_MAPPING)
        snprintf(buf, size, "a mapping");
    else if (n->kind == ELAG_YNODE_SEQUENCE)
        snprintf(buf, size, "a list");
    else if (strlen(n->text) > 60)
        snprintf(buf, size, "'%.57s...'", n->text);
    else
        snprintf(buf, size, "'%s'", n->text);
    return buf;
}

/* ---- libyaml events -> tree ---- */

typedef struct ytree_reader {
    const elag_cfg_ctx *ctx;
    yaml_parser_t parser;
    int set_index;
} ytree_reader;

static elag_status ytree_syntax_error(ytree_reader *r)
{
    const yaml_parser_t *p = &r->parser;
    elag_ynode at = {.line = (int)p->problem_mark.line + 1,
                     .col = (int)p->problem_mark.column + 1,
                     .set_index = r->set_index};
    const char *problem = p->problem ? p->problem : "malformed input";
    if (p->error == YAML_MEMORY_ERROR) return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
    if (p->context)
        return elag_cfg_fail(r->ctx, &at, ELAG_ERR_INPUT,
                             "YAML syntax error: %s (%s at line %d column %d)", problem, p->context,
                             (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    return elag_cfg_fail(r->ctx, &at, ELAG_ERR_INPUT, "YAML syntax error: %s", problem);
}

static elag_status ytree_next(ytree_reader *r, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&r->parser, ev)) return ytree_syntax_error(r);
    return ELAG_OK;
}

static void ytree_mark(ytree_reader *r, elag_ynode *n, const yaml_event_t *ev)
{
    n->line = (int)ev->start_mark.line + 1;
    n->col = (int)ev->start_mark.column + 1;
    n->set_index = r->set_index;
}

/* Builds the node that starts with event *ev (consumed here) and its children. */
static elag_status ytree_node(ytree_reader *r, yaml_event_t *ev, int depth, elag_ynode **out)
{
    elag_ynode tmp = {.set_index = r->set_index};
    elag_status st = ELAG_OK;
    *out = NULL;
    ytree_mark(r, &tmp, ev);
    if (depth > ELAG_YAML_MAX_DEPTH) {
        yaml_event_delete(ev);
        return elag_cfg_fail(r->ctx, &tmp, ELAG_ERR_INPUT, "nesting is deeper than %d levels",
                             ELAG_YAML_MAX_DEPTH);
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        yaml_event_delete(ev);
        return elag_cfg_fail(r->ctx, &tmp, ELAG_ERR_INPUT,
                             "YAML aliases (*name) are not supported in configs");
    case YAML_SCALAR_EVENT: {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        if (memchr(v, '\0', len)) {
            yaml_event_delete(ev);
            return elag_cfg_fail(r->ctx, &tmp, ELAG_ERR_INPUT, "scalar holds a NUL character");
        }
        elag_ynode *n = elag_ynode_new(ELAG_YNODE_SCALAR, v, r->set_index);
        if (n) {
            n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            ytree_mark(r, n, ev);
        }
        yaml_event_delete(ev);
        if (!n) return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
        *out = n;
        return ELAG_OK;
    }
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        yaml_event_type_t end_type = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
        elag_ynode *n =
            elag_ynode_new(is_map ? ELAG_YNODE_MAPPING : ELAG_YNODE_SEQUENCE, NULL, r->set_index);
        if (!n) {
            yaml_event_delete(ev);
            return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
        }
        ytree_mark(r, n, ev);
        yaml_event_delete(ev);
        for (;;) {
            yaml_event_t child;
            elag_ynode *key = NULL, *val = NULL;
            st = ytree_next(r, &child);
            if (st) goto fail;
            if (child.type == end_type) {
                yaml_event_delete(&child);
                break;
            }
            if (is_map) {
                st = ytree_node(r, &child, depth + 1, &key);
                if (st) goto fail;
                if (key->kind != ELAG_YNODE_SCALAR) {
                    st = elag_cfg_fail(r->ctx, key, ELAG_ERR_INPUT,
                                       "mapping keys must be plain words, got %s",
                                       key->kind == ELAG_YNODE_MAPPING ? "a mapping" : "a list");
                    elag_ynode_free(key);
                    goto fail;
                }
                st = ytree_next(r, &child);
                if (st) {
                    elag_ynode_free(key);
                    goto fail;
                }
            }
            st = ytree_node(r, &child, depth + 1, &val);
            if (st) {
                elag_ynode_free(key);
                goto fail;
            }
            st = ynode_append(n, key, val);
            if (st) goto fail;
            continue;
        fail:
            elag_ynode_free(n);
            return st;
        }
        *out = n;
        return ELAG_OK;
    }
    default:
        yaml_event_delete(ev);
        return elag_cfg_fail(r->ctx, &tmp, ELAG_ERR_INPUT, "YAML syntax error: unexpected event");
    }
}

/* Skips events until one of `type` (consumed) is read. */
static elag_status ytree_expect(ytree_reader *r, yaml_event_type_t type, yaml_event_t *ev)
{
    for (;;) {
        elag_status st = ytree_next(r, ev);
        if (st) return st;
        if (ev->type == type) return ELAG_OK;
        yaml_event_delete(ev);
    }
}

elag_status elag_ynode_parse(const elag_cfg_ctx *ctx, const char *text, size_t len, int set_index,
                             elag_ynode **out)
{
    ytree_reader r = {.ctx = ctx, .set_index = set_index};
    yaml_event_t ev;
    elag_status st;
    elag_ynode *root = NULL;
    *out = NULL;
    if (!yaml_parser_initialize(&r.parser))
        return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);

    st = ytree_expect(&r, YAML_STREAM_START_EVENT, &ev);
    if (st) goto done;
    yaml_event_delete(&ev);
    st = ytree_next(&r, &ev);
    if (st) goto done;
    if (ev.type == YAML_STREAM_END_EVENT) { /* empty text, or only comments */
        yaml_event_delete(&ev);
        root = elag_ynode_new(ELAG_YNODE_SCALAR, "", set_index);
        if (!root) st = elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
        if (root) root->line = root->col = set_index < 0 ? 1 : 0;
        goto done;
    }
    yaml_event_delete(&ev); /* document start */
    st = ytree_next(&r, &ev);
    if (st) goto done;
    st = ytree_node(&r, &ev, 0, &root);
    if (st) goto done;
    st = ytree_expect(&r, YAML_DOCUMENT_END_EVENT, &ev);
    if (st) goto done;
    yaml_event_delete(&ev);
    st = ytree_next(&r, &ev);
    if (st) goto done;
    if (ev.type != YAML_STREAM_END_EVENT) {
        elag_ynode at;
        memset(&at, 0, sizeof at);
        ytree_mark(&r, &at, &ev);
        yaml_event_delete(&ev);
        st = elag_cfg_fail(ctx, &at, ELAG_ERR_INPUT, "only one YAML document is allowed");
        goto done;
    }
    yaml_event_delete(&ev);
done:
    yaml_parser_delete(&r.parser);
    if (st) {
        elag_ynode_free(root);
        return st;
    }
    *out = root;
    return ELAG_OK;
}
