/*
 * "Did you mean" for unknown keys: Levenshtein distance on the last path component
 * among siblings, or on the whole dotted path, or an exact last component found
 * under another section ("train.lr" -> "train.optimizer.lr"). A typo then names
 * the key that was meant instead of silently falling back to a default. Names that other
 * tools use for a key (SparseML's final_sparsity, torch.nn.utils.prune's amount, Keras'
 * epochs-style names) are no typos of ours, so a table maps them first.
 */
#include "config/config_internal.h"

#include <stdio.h>
#include <string.h>

#define CFG_SUGGEST_MAX_LEN 128 /* longer names are not typos of any key */

size_t elag_cfg_edit_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > CFG_SUGGEST_MAX_LEN || nb > CFG_SUGGEST_MAX_LEN) return (size_t)-1;
    size_t prev[CFG_SUGGEST_MAX_LEN + 1], cur[CFG_SUGGEST_MAX_LEN + 1];
    for (size_t j = 0; j <= nb; j++) prev[j] = j;
    for (size_t i = 1; i <= na; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (nb + 1) * sizeof prev[0]);
    }
    return prev[nb];
}

/* Splits "a.b.c" into its parent length (3, for "a.b") and last component ("c"). */
static const char *cfg_last(const char *path, size_t *parent_len)
{
    const char *dot = strrchr(path, '.');
    *parent_len = dot ? (size_t)(dot - path) : 0;
    return dot ? dot + 1 : path;
}

const char *elag_cfg_suggest(const char *path, const char *const *cands, size_t n)
{
    size_t up;
    const char *ulast = cfg_last(path, &up);
    /* short names are one edit away from too much ("n" vs "m") */
    size_t max_d = strlen(ulast) <= 3 ? 1 : 2;
    size_t best_score = (size_t)-1;
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t cp;
        const char *clast = cfg_last(cands[i], &cp);
        int same_parent = up == cp && strncmp(path, cands[i], up) == 0;
        size_t score = (size_t)-1, d;
        /* scores: sibling edits rank before whole-path edits of the same size */
        if (same_parent && (d = elag_cfg_edit_distance(ulast, clast)) <= max_d) score = 2 * d;
        if ((d = elag_cfg_edit_distance(path, cands[i])) <= max_d && 2 * d + 1 < score)
            score = 2 * d + 1;
        if (!same_parent && strcmp(ulast, clast) == 0 && score > 3) score = 3;
        if (score == 0) continue; /* the key itself: not a suggestion */
        if (score < best_score) {
            best_score = score;
            best = cands[i];
        }
    }
    return best;
}

/* Other tools' names: `name` is a last component in any section (a "." in it: the whole
 * path); `key` is ours. */
static const struct {
    const char *name, *key;
} cfg_other_names[] = {
    {"sparsity", "prune.target"},           /* torch-pruning, Keras' target_sparsity */
    {"target_sparsity", "prune.target"},    /* TensorFlow Model Optimization */
    {"final_sparsity", "prune.target"},     /* SparseML GMPruningModifier, TF-MOT */
    {"amount", "prune.target"},             /* torch.nn.utils.prune */
    {"init_sparsity", "prune.initial"},     /* SparseML */
    {"initial_sparsity", "prune.initial"},  /* TF-MOT PolynomialDecay */
    {"start_epoch", "prune.start"},         /* SparseML */
    {"begin_step", "prune.start"},          /* TF-MOT */
    {"end_epoch", "prune.end"},             /* SparseML */
    {"end_step", "prune.end"},              /* TF-MOT */
    {"update_frequency", "prune.frequency"}, /* SparseML */
    {"prune.schedule", "prune.method"},
    {"prune.type", "prune.method"},
    {"learning_rate", "train.optimizer.lr"},
    {"max_epochs", "train.epochs"},         /* PyTorch Lightning */
    {"num_epochs", "train.epochs"},
    {"train.batch", "train.batch_size"},
    {"train.optimizer.name", "train.optimizer.type"},
    {"model.arch", "model.preset"},
    {"model.architecture", "model.preset"},
    {"model.name", "model.preset"},
};

/* Our key for another tool's name at `path`, or NULL. */
static const char *cfg_other_name(const char *path)
{
    size_t up;
    const char *last = cfg_last(path, &up);
    for (size_t i = 0; i < sizeof cfg_other_names / sizeof cfg_other_names[0]; i++) {
        const char *n = cfg_other_names[i].name;
        if (strcmp(strchr(n, '.') ? path : last, n) == 0) return cfg_other_names[i].key;
    }
    return NULL;
}

const char *elag_cfg_suggest_key(const char *path, char *buf, size_t size)
{
    const char *other = cfg_other_name(path);
    if (other) {
        snprintf(buf, size, " (did you mean '%s'?)", other);
        return buf;
    }
    const char *cands[ELAG_CFG_MAX_KEYS];
    size_t n = 0;
    for (size_t i = 0; i < elag_cfg_n_keys && n < ELAG_CFG_MAX_KEYS; i++)
        cands[n++] = elag_cfg_keys[i].path;
    const char *best = elag_cfg_suggest(path, cands, n);
    if (best)
        snprintf(buf, size, " (did you mean '%s'?)", best);
    else if (size)
        buf[0] = '\0';
    return buf;
}
