/*
 * elag/train.h: one training run from a config file, a thin wrapper over
 * elag_config_load, elag_backend_open, elag_run_data_load and elag_train_run, in the
 * order `elag train` uses: everything that can be wrong with the input is checked before
 * the run folder is touched.
 */
#define _POSIX_C_SOURCE 200809L
#include "api/api.h"

#include "config/config.h"
#include "core/check.h"
#include "io/atomic.h"
#include "model/model.h"
#include "train/train.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes of an elag_run_options of `version`: version 1 ends before `note`, version 2
 * before `interrupt`. */
static size_t run_options_size(unsigned int version)
{
    if (version == 1) return offsetof(elag_run_options, note);
    if (version == 2) return offsetof(elag_run_options, interrupt);
    return sizeof(elag_run_options);
}

elag_status elag_run_options_init(elag_run_options *opts, unsigned int version)
{
    if (opts == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_run_options_init: opts is NULL");
    ELAG_TRY(elag_api_check_version(version, ELAG_RUN_OPTIONS_VERSION, "elag_run_options"));
    elag_run_options d = ELAG_RUN_OPTIONS_INIT;
    d.version = version;
    memcpy(opts, &d, run_options_size(version)); /* a version-1 struct is shorter */
    return ELAG_OK;
}

/* api.h */
int elag_api_path_in_use(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) return 1;
    DIR *d = opendir(path);
    if (!d) return 1;
    struct dirent *e;
    int used = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) used = 1;
    closedir(d);
    return used;
}

typedef struct progress_relay {
    elag_run_progress_fn fn;
    void *user;
} progress_relay;

static void relay_progress(const elag_progress *p, void *user)
{
    const progress_relay *r = user;
    elag_run_progress q = {.version = ELAG_RUN_PROGRESS_VERSION,
                           .epoch = p->epoch,
                           .epochs = p->epochs,
                           .step = p->step,
                           .steps = p->steps,
                           .loss = p->loss,
                           .accuracy = p->accuracy,
                           .sparsity = p->sparsity,
                           .lr = p->lr,
                           .samples_per_second = p->samples_per_second,
                           .eta_seconds = p->eta_seconds,
                           .epoch_end = p->epoch_end,
                           .val_accuracy = p->val_accuracy,
                           .test_accuracy = p->test_accuracy};
    r->fn(&q, r->user);
}

static void fill_result(const elag_config *cfg, const elag_train_summary *s, elag_run_result *r)
{
    snprintf(r->name, sizeof r->name, "%s", cfg->name);
    snprintf(r->device, sizeof r->device, "%s", s->device);
    snprintf(r->config_hash, sizeof r->config_hash, "%s", s->config_hash);
    r->steps = s->steps;
    r->test_accuracy = s->test_accuracy;
    r->test_loss = s->test_loss;
    r->val_accuracy = s->val_accuracy;
    r->params_total = (int64_t)s->params_total;
    r->params_prunable = (int64_t)s->params_prunable;
    r->params_nonzero = (int64_t)s->params_nonzero;
    r->sparsity = s->sparsity;
    r->train_seconds = s->train_seconds;
    r->samples_per_second = s->samples_per_second;
    r->mask_update_seconds = s->mask_update_seconds;
    r->mask_updates = s->mask_updates;
}

/* The run folder, once every input is known good: checked, created, emptied of an old
 * run's metrics.jsonl and summary.json (a fresh run), config.yaml written. */
static elag_status prepare_folder(const elag_config *cfg, const char *out, int resume, int force)
{
    if (!resume && !force && elag_api_path_in_use(out))
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: run folder exists (use --force to overwrite it, or --out DIR)", out);
    ELAG_TRY(elag_mkdirs(out));
    char path[ELAG_PATH_LEN + 32];
    static const char *const stale[] = {"metrics.jsonl", "summary.json"};
    for (size_t i = 0; !resume && i < sizeof stale / sizeof stale[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", out, stale[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            return elag_fail(ELAG_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    }
    char *yaml = NULL;
    ELAG_TRY(elag_config_to_yaml(cfg, &yaml));
    snprintf(path, sizeof path, "%s/config.yaml", out);
    elag_status st = elag_atomic_write(path, yaml, strlen(yaml));
    free(yaml);
    return st;
}

elag_status elag_run_train(const char *config_path, const char *out_dir,
                           const elag_run_options *opts, elag_run_result *result)
{
    elag_run_options o = ELAG_RUN_OPTIONS_INIT;
    if (opts) {
        ELAG_TRY(
            elag_api_check_version(opts->version, ELAG_RUN_OPTIONS_VERSION, "elag_run_options"));
        memcpy(&o, opts, run_options_size(opts->version));
    }
    if (result)
        ELAG_TRY(
            elag_api_check_version(result->version, ELAG_RUN_RESULT_VERSION, "elag_run_result"));
    if (o.n_overrides < 0 || (o.n_overrides > 0 && o.overrides == NULL))
        return elag_fail(ELAG_ERR_USAGE, "elag_run_train: %d overrides but no array",
                         o.n_overrides);
    if (o.resume && out_dir == NULL)
        return elag_fail(ELAG_ERR_USAGE, "elag_run_train: resume needs the run folder (out_dir)");
    char resume_cfg[ELAG_PATH_LEN + 16], checkpoint[ELAG_PATH_LEN + 32] = "";
    if (o.resume) {
        snprintf(checkpoint, sizeof checkpoint, "%s/model.safetensors", out_dir);
        if (config_path == NULL) {
            snprintf(resume_cfg, sizeof resume_cfg, "%s/config.yaml", out_dir);
            config_path = resume_cfg;
        }
    }
    if (config_path == NULL) return elag_fail(ELAG_ERR_USAGE, "elag_run_train: no config");
    if (o.resume && access(checkpoint, R_OK) != 0) /* the CLI's words: `elag train --resume` */
        return elag_fail(ELAG_ERR_INPUT, "--resume %s: no checkpoint %s", out_dir, checkpoint);

    /* 1. everything that can be wrong with the input, before any write */
    /* calloc: a config that fails to load leaves *cfg as it was, and source[] is read below */
    elag_config *cfg = calloc(1, sizeof *cfg); /* large: not on the caller's stack */
    if (cfg == NULL) return elag_fail(ELAG_ERR_NOMEM, "elag_run_train: out of host memory");
    elag_backend *be = NULL;
    elag_run_data data;
    int have_data = 0;
    elag_status st = elag_config_load(config_path, o.overrides, o.n_overrides, cfg);
    if (st == ELAG_OK && o.device) snprintf(cfg->device, sizeof cfg->device, "%s", o.device);
    char note[256] = "";
    if (st == ELAG_OK)
        st = elag_backend_open(cfg->device, cfg->train.threads, &be, note, sizeof note);
    if (st == ELAG_OK) st = elag_backend_set_tf32(be, cfg->cuda.tf32);
    if (st == ELAG_OK && note[0] && o.note) o.note(note, o.progress_user);
    if (st == ELAG_OK && (st = elag_run_data_load(cfg, &data)) == ELAG_OK) have_data = 1;
    /* the model must fit the data (shapes chain from the images to the classes) */
    if (st == ELAG_OK) {
        st = elag_model_check(cfg,
                              (elag_fshape){data.train.channels, data.train.height,
                                            data.train.width},
                              data.train.classes, be);
        if (st == ELAG_ERR_INPUT && cfg->source[0]) { /* name the config the model came from */
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", elag_last_error());
            st = elag_fail(st, "%s: %s", cfg->source, msg);
        }
    }
    char out_buf[ELAG_PATH_LEN + 8];
    if (st == ELAG_OK && out_dir == NULL) {
        snprintf(out_buf, sizeof out_buf, "runs/%s", cfg->name);
        out_dir = out_buf;
    }

    /* the model built, the data uploaded, the prune setup checked against the model's
     * tensors (a block or N:M group that does not fit a weight) and (resume) the checkpoint
     * checked against all of it: still nothing written */
    elag_trainer *trainer = NULL;
    progress_relay relay = {o.progress, o.progress_user};
    elag_train_options topts = {.out_dir = out_dir,
                                .resume_path = o.resume ? checkpoint : NULL,
                                .progress = o.progress ? relay_progress : NULL,
                                .progress_user = &relay,
                                .interrupt = o.interrupt};
    if (st == ELAG_OK) st = elag_trainer_init(&trainer, cfg, be, &data, &topts);

    /* 2. the run folder, 3. training */
    if (st == ELAG_OK) st = prepare_folder(cfg, out_dir, o.resume, o.force);
    if (st == ELAG_OK) {
        elag_train_summary summary;
        st = elag_trainer_run(trainer, &summary);
        if (st == ELAG_OK && result) fill_result(cfg, &summary, result);
        if (st == ELAG_ERR_INTERRUPTED) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", elag_last_error());
            elag_fail(st, "%s; resume with: elag train --resume %s", msg, out_dir);
        }
    }
    elag_trainer_free(trainer);
    if (have_data) elag_run_data_free(&data);
    elag_backend_free(be);
    free(cfg);
    return st;
}
