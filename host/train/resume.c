/*
 * Continuing a run from its checkpoint: the config must be the checkpoint's but for the
 * keys safe to change (docs/config.md, "Resuming a run"), the tensors must fit the model
 * (names, dtypes, shapes, finite), and the step must fit this run's epochs; then weights,
 * masks, optimizer state and the counters (step inside the epoch, mask updates, times,
 * the epoch's loss sums) are restored, so the run continues mid-epoch bit for bit and
 * its summary counts the whole run. Nothing here writes.
 */
#include "train/trainer.h"

#include "core/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys that may differ between a checkpoint's config and the resumed run's: where and how
 * fast it runs, how much it logs and saves, and how long it trains (a longer run
 * stretches schedules given as fractions over the new length from here on). */
static const char *const safe_keys[] = {
    "name",
    "device",
    "train.epochs",
    "train.threads",
    "train.checkpoint_every",
    "train.checkpoint_steps",
    "train.eval_every_epoch",
    "train.log_every",
    "train.sparse_compute",
    "cuda.tf32",
};

static int is_safe(const char *key)
{
    for (size_t i = 0; i < sizeof safe_keys / sizeof safe_keys[0]; i++)
        if (strcmp(key, safe_keys[i]) == 0) return 1;
    return 0;
}

/* One "key: value" of the resolved YAML, the key dotted ("train.optimizer.lr"), a list
 * item numbered ("model.layers[1]"); sections have no entry. */
typedef struct yaml_entry {
    char key[160];
    const char *value; /* into the text, up to the end of its line */
    int value_len;
} yaml_entry;

/* Flattens elag_config_to_yaml's text (two spaces per level, one key or item a line). */
static int flatten(const char *text, yaml_entry *out, int cap)
{
    char stack[8][64] = {{0}};
    int items[8] = {0}, n = 0;
    for (const char *line = text; *line && n < cap;) {
        const char *eol = strchr(line, '\n');
        if (!eol) eol = line + strlen(line);
        int indent = 0;
        while (line[indent] == ' ') indent++;
        int depth = indent / 2 < 7 ? indent / 2 : 7;
        const char *body = line + indent;
        yaml_entry *e = &out[n];
        if (body[0] == '-' && body[1] == ' ') { /* an item of the list above */
            char parent[160] = "";
            for (int d = 0; d < depth; d++)
                snprintf(parent + strlen(parent), sizeof parent - strlen(parent), "%s%s",
                         d ? "." : "", stack[d]);
            snprintf(e->key, sizeof e->key, "%s[%d]", parent, items[depth]++);
            e->value = body + 2;
            e->value_len = (int)(eol - body - 2);
            n++;
        } else if (body < eol) {
            const char *colon = memchr(body, ':', (size_t)(eol - body));
            if (colon) {
                snprintf(stack[depth], sizeof stack[depth], "%.*s", (int)(colon - body), body);
                items[depth + 1 < 8 ? depth + 1 : 7] = 0;
                const char *v = colon + 1;
                while (v < eol && *v == ' ') v++;
                if (v < eol) { /* a key with a value, not a section */
                    e->key[0] = '\0';
                    for (int d = 0; d <= depth; d++)
                        snprintf(e->key + strlen(e->key), sizeof e->key - strlen(e->key), "%s%s",
                                 d ? "." : "", stack[d]);
                    e->value = v;
                    e->value_len = (int)(eol - v);
                    n++;
                }
            }
        }
        line = *eol ? eol + 1 : eol;
    }
    return n;
}

static const yaml_entry *find_entry(const yaml_entry *e, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].key, key) == 0) return &e[i];
    return NULL;
}

/* The first entry of a that b lacks or holds another value of, unless it is safe. */
static const yaml_entry *first_difference(const yaml_entry *a, int na, const yaml_entry *b, int nb,
                                          const yaml_entry **other)
{
    for (int i = 0; i < na; i++) {
        if (is_safe(a[i].key)) continue;
        const yaml_entry *o = find_entry(b, nb, a[i].key);
        if (!o || o->value_len != a[i].value_len ||
            memcmp(o->value, a[i].value, (size_t)o->value_len) != 0) {
            *other = o;
            return &a[i];
        }
    }
    return NULL;
}

#define MAX_ENTRIES 512

int elag_resume_changed_key(const elag_config *was, const elag_config *now, char *key,
                            size_t key_len, char *old_value, char *new_value, size_t value_len)
{
    char *ya = NULL, *yb = NULL;
    yaml_entry *ea = malloc(2 * MAX_ENTRIES * sizeof *ea), *eb = ea ? ea + MAX_ENTRIES : NULL;
    int changed = 0;
    if (!ea || elag_config_to_yaml(was, &ya) != ELAG_OK ||
        elag_config_to_yaml(now, &yb) != ELAG_OK) {
        snprintf(key, key_len, "(the config could not be compared)");
        snprintf(old_value, value_len, "?");
        snprintf(new_value, value_len, "?");
        changed = 1;
        goto done;
    }
    int na = flatten(ya, ea, MAX_ENTRIES), nb = flatten(yb, eb, MAX_ENTRIES);
    const yaml_entry *other = NULL, *d = first_difference(ea, na, eb, nb, &other);
    const yaml_entry *old_e = d, *new_e = other;
    if (!d) { /* a key only the new config has (a layer more) */
        d = first_difference(eb, nb, ea, na, &other);
        old_e = other;
        new_e = d;
    }
    if (d) {
        changed = 1;
        snprintf(key, key_len, "%s", d->key);
        if (old_e)
            snprintf(old_value, value_len, "%.*s", old_e->value_len, old_e->value);
        else
            snprintf(old_value, value_len, "(none)");
        if (new_e)
            snprintf(new_value, value_len, "%.*s", new_e->value_len, new_e->value);
        else
            snprintf(new_value, value_len, "(none)");
    }
done:
    free(ea);
    free(ya);
    free(yb);
    return changed;
}

/* Counters of a checkpoint written before they were stored: an epoch boundary. */
static void counters_of_old(elag_trainer *t, elag_checkpoint_counters *c)
{
    c->epoch_step = c->step - (long)c->epoch * t->steps_per_epoch;
    c->mask_updates = 0;
    for (long s = 0; s < c->step; s++) c->mask_updates += elag_prune_plan_is_update(&t->plan, s);
}

static elag_status check_step(elag_trainer *t, const char *path, const elag_checkpoint_counters *c)
{
    if ((long)c->epoch * t->steps_per_epoch + c->epoch_step != c->step || c->epoch_step < 0 ||
        c->epoch_step >= t->steps_per_epoch)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: checkpoint at step %ld (epoch %d, step %ld of it) does not fit "
                         "this run's %ld steps per epoch",
                         path, c->step, c->epoch, c->epoch_step, t->steps_per_epoch);
    if (c->step > t->total_steps)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: checkpoint at step %ld is past the end of this run (%ld steps in "
                         "%d epochs); raise train.epochs",
                         path, c->step, t->total_steps, t->cfg->train.epochs);
    if (c->epoch_samples > t->data->train.n)
        return elag_fail(ELAG_ERR_INPUT, "%s: bad metadata epoch_samples=%ld (%ld examples)", path,
                         c->epoch_samples, t->data->train.n);
    return ELAG_OK;
}

elag_status elag_trainer_resume(elag_trainer *t)
{
    const char *path = t->opts.resume_path;
    elag_checkpoint ck;
    ELAG_TRY(elag_checkpoint_open(path, &ck));
    char key[160], was[200], now[200];
    elag_status st = ELAG_OK;
    if (elag_resume_changed_key(&ck.cfg, t->cfg, key, sizeof key, was, now, sizeof was)) {
        st = elag_fail(ELAG_ERR_INPUT,
                       "%s: %s is %s in the checkpoint but %s now; a resumed run keeps its "
                       "config (docs/config.md lists the keys that may change)",
                       path, key, was, now);
        goto done;
    }
    ELAG_TRY_GOTO(st, elag_checkpoint_restore(&ck, &t->model, 1), done);
    elag_checkpoint_counters c = ck.counters;
    if (!ck.has_counters) counters_of_old(t, &c);
    ELAG_TRY_GOTO(st, check_step(t, path, &c), done);
    {   /* criterion state and the rewind point, as the checkpoint's step has them */
        static _Thread_local elag_checkpoint_extra extra[2 * ELAG_MAX_PARAMS];
        int n_extra = elag_trainer_extras(t, c.step, extra);
        ELAG_TRY_GOTO(st, elag_checkpoint_restore_extra(&ck, &t->model, extra, n_extra), done);
    }
    t->step = t->start_step = t->saved_step = c.step;
    t->mask_updates = c.mask_updates;
    t->mask_seconds = c.mask_update_seconds;
    t->train_seconds = c.train_seconds;
    t->ep_loss = c.epoch_loss_sum;
    t->ep_correct = c.epoch_correct;
    t->ep_samples = c.epoch_samples;
    /* masks in force at the checkpoint */
    for (long s = 0; s < t->step; s++)
        if (elag_prune_plan_is_update(&t->plan, s)) {
            t->masks_active = 1;
            t->sparsity = elag_prune_plan_sparsity(&t->plan, s);
        }
done:
    elag_checkpoint_close(&ck);
    return st;
}
