/*
 * `--set key.path=value` overrides. They edit the YAML tree before it is converted,
 * so an overridden value goes through exactly the checks a value in the file does,
 * and its errors start with "--set key.path=value:" instead of file:line:col. The
 * value is parsed as YAML, so flow values work: --set train.optimizer.betas=[0.9,0.99].
 * Setting model.preset drops model.layers from the file and the other way round, so
 * an override can switch between the two forms.
 */
#define _POSIX_C_SOURCE 200809L
#include "config/config_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

elag_status elag_cfg_override_apply(const elag_cfg_ctx *ctx, elag_ynode *root, int i)
{
    const char *spec = ctx->overrides[i] ? ctx->overrides[i] : "";
    const elag_ynode at = {.set_index = i};
    const char *eq = strchr(spec, '=');
    char key[256];

    /* the key, without blanks around it */
    const char *k0 = spec, *k1 = eq ? eq : spec;
    while (k0 < k1 && isspace((unsigned char)*k0)) k0++;
    while (k1 > k0 && isspace((unsigned char)k1[-1])) k1--;
    if (!eq || k1 == k0) return elag_cfg_fail(ctx, &at, ELAG_ERR_INPUT, "expected KEY=VALUE");
    if ((size_t)(k1 - k0) >= sizeof key)
        return elag_cfg_fail(ctx, &at, ELAG_ERR_INPUT, "unknown key '%.40s...'", k0);
    memcpy(key, k0, (size_t)(k1 - k0));
    key[k1 - k0] = '\0';

    if (elag_cfg_key_find(key) < 0) {
        char hint[320];
        return elag_cfg_fail(ctx, &at, ELAG_ERR_INPUT, "unknown key '%s'%s", key,
                             elag_cfg_suggest_key(key, hint, sizeof hint));
    }

    elag_ynode *val = NULL;
    elag_status st = elag_ynode_parse(ctx, eq + 1, strlen(eq + 1), i, &val);
    if (st) return st;

    /* walk (and make) the sections down to the last component */
    elag_ynode *cur = root;
    char *part = key;
    for (char *dot; (dot = strchr(part, '.')) != NULL; part = dot + 1) {
        *dot = '\0';
        elag_ynode *child = elag_ynode_get(cur, part);
        if (!child || child->kind != ELAG_YNODE_MAPPING) {
            /* absent, null ("prune:") or not a mapping: the override's section wins */
            child = elag_ynode_new(ELAG_YNODE_MAPPING, NULL, i);
            if (!child) {
                elag_ynode_free(val);
                return elag_fail(ELAG_ERR_NOMEM, "config: out of memory");
            }
            st = elag_ynode_set(cur, part, child, i);
            if (st) {
                elag_ynode_free(val);
                return st;
            }
        }
        cur = child;
    }
    st = elag_ynode_set(cur, part, val, i);
    if (st) return st;

    /* key now holds "model\0preset" when the path was model.preset */
    if (cur != root && strcmp(key, "model") == 0) {
        if (strcmp(part, "preset") == 0) elag_ynode_remove(cur, "layers");
        if (strcmp(part, "layers") == 0) elag_ynode_remove(cur, "preset");
    }
    return ELAG_OK;
}
