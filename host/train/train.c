/*
 * The training loop (see train.h). Data live on the backend for the whole run; each
 * epoch draws a permutation from Philox(seed, epoch), each step gathers its batch on
 * the device, runs forward/backward, the masked optimizer step, and, on the steps the
 * prune plan names, a mask update (timed separately).
 */
#define _POSIX_C_SOURCE 200809L
#include "train/train.h"

#include "backend/philox.h"
#include "core/check.h"
#include "io/atomic.h"
#include "prune/mask.h"
#include "prune/schedule.h"
#include "train/checkpoint.h"
#include "train/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Fisher-Yates shuffle of 0..n-1 driven by Philox(seed, SHUFFLE + epoch). */
static void shuffle_indices(int32_t *perm, long n, uint64_t seed, int epoch)
{
    for (long i = 0; i < n; i++) perm[i] = (int32_t)i;
    uint64_t stream = ELAG_STREAM_SHUFFLE + ((uint64_t)epoch << 16);
    for (long i = n - 1; i > 0; i--) {
        uint64_t r = elag_philox_u32(seed, stream, (uint64_t)i);
        long j = (long)((r * (uint64_t)(i + 1)) >> 32); /* unbiased enough: n << 2^32 */
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

typedef struct train_state {
    const elag_config *cfg;
    elag_backend *be;
    elag_model model;
    elag_prune_plan plan;
    float *x_dev;       /* device (n_train, features) */
    int32_t *y_dev;     /* device (n_train) */
    int32_t *perm_dev;  /* device (n_train) */
    int32_t *perm_host; /* host (n_train) */
    long steps_per_epoch, total_steps, step;
    int masks_active;
    double sparsity;    /* target of the last mask update */
    double mask_seconds, train_seconds;
    long mask_updates;
    char metrics_path[ELAG_PATH_LEN + 32];
} train_state;

static void state_free(train_state *s)
{
    elag_model_free(&s->model);
    if (s->be) {
        elag_be_release(s->be, s->x_dev);
        elag_be_release(s->be, s->y_dev);
        elag_be_release(s->be, s->perm_dev);
    }
    free(s->perm_host);
}

static elag_status state_init(train_state *s, const elag_config *cfg, elag_backend *be,
                              const elag_run_data *data, const elag_train_options *opts)
{
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->be = be;
    const elag_dataset *tr = &data->train;
    if (tr->n <= 0) return elag_fail(ELAG_ERR_INPUT, "%s: the training set is empty", cfg->source);
    int batch = cfg->train.batch_size;
    if (batch > tr->n) batch = (int)tr->n;
    elag_fshape input = {tr->channels, tr->height, tr->width};
    ELAG_TRY(elag_model_init(&s->model, cfg, input, tr->classes, batch, 1, be));
    s->steps_per_epoch = (tr->n + batch - 1) / batch;
    s->total_steps = s->steps_per_epoch * cfg->train.epochs;
    ELAG_TRY(elag_prune_plan_init(&s->plan, cfg, s->total_steps));
    size_t nx = (size_t)tr->n * tr->features;
    ELAG_TRY(elag_be_alloc(be, nx * sizeof(float), (void **)&s->x_dev));
    ELAG_TRY(elag_be_alloc(be, (size_t)tr->n * sizeof(int32_t), (void **)&s->y_dev));
    ELAG_TRY(elag_be_alloc(be, (size_t)tr->n * sizeof(int32_t), (void **)&s->perm_dev));
    s->perm_host = malloc((size_t)tr->n * sizeof(int32_t));
    if (!s->perm_host) return elag_fail(ELAG_ERR_NOMEM, "train: out of host memory");
    ELAG_TRY(elag_be_to_device(be, s->x_dev, tr->x, nx * sizeof(float)));
    ELAG_TRY(elag_be_to_device(be, s->y_dev, tr->y, (size_t)tr->n * sizeof(int32_t)));
    snprintf(s->metrics_path, sizeof s->metrics_path, "%s/metrics.jsonl", opts->out_dir);
    return ELAG_OK;
}

static elag_status do_mask_update(train_state *s)
{
    double t0 = now_seconds();
    s->sparsity = elag_prune_plan_sparsity(&s->plan, s->step);
    ELAG_TRY(elag_mask_update(&s->model, s->cfg->prune.criterion, s->cfg->prune.scope, s->sparsity));
    ELAG_TRY(elag_be_sync(s->be));
    s->mask_seconds += now_seconds() - t0;
    s->mask_updates++;
    s->masks_active = 1;
    return ELAG_OK;
}

/* Reads and resets the device loss/accuracy accumulators. */
static elag_status take_stats(train_state *s, double *loss_sum, double *correct)
{
    float st[2];
    ELAG_TRY(elag_be_to_host(s->be, st, s->model.stats, sizeof st));
    ELAG_TRY(elag_be_fill(s->be, s->model.stats, 2, 0.0f));
    *loss_sum += st[0];
    *correct += st[1];
    return ELAG_OK;
}

static elag_status run_epoch(train_state *s, const elag_run_data *data, int epoch,
                             const elag_train_options *opts)
{
    const elag_config *cfg = s->cfg;
    elag_backend *be = s->be;
    elag_model *m = &s->model;
    const long n = data->train.n;
    shuffle_indices(s->perm_host, n, cfg->seed, epoch);
    ELAG_TRY(elag_be_to_device(be, s->perm_dev, s->perm_host, (size_t)n * sizeof(int32_t)));
    ELAG_TRY(elag_be_fill(be, m->stats, 2, 0.0f));

    double t_start = now_seconds(), t_log = t_start;
    double ep_loss = 0, ep_correct = 0, log_loss = 0, log_correct = 0;
    long log_samples = 0, ep_samples = 0;
    const long log_every = cfg->train.log_every > 0 ? cfg->train.log_every : 100;
    for (long i = 0; i < s->steps_per_epoch; i++) {
        long start = i * m->max_batch;
        int b = (int)(n - start < m->max_batch ? n - start : m->max_batch);
        ELAG_TRY(elag_be_gather_rows(be, m->rows, s->x_dev, s->perm_dev + start, b, m->input_dim));
        ELAG_TRY(elag_be_gather_i32(be, m->labels, s->y_dev, s->perm_dev + start, b));
        if (elag_prune_plan_is_update(&s->plan, s->step)) ELAG_TRY(do_mask_update(s));
        elag_pass pass = {.n = b, .training = 1, .step = s->step, .seed = cfg->seed};
        ELAG_TRY(elag_model_step(m, &pass));
        double lr = elag_lr_at(cfg, s->step, s->total_steps);
        s->step++;
        ELAG_TRY(elag_optimizer_step(m, cfg, lr, s->step, s->masks_active));
        log_samples += b;
        ep_samples += b;
        int last = i == s->steps_per_epoch - 1;
        if (s->step % log_every != 0 && !last) continue;

        double l_sum = 0, c_sum = 0;
        ELAG_TRY(take_stats(s, &l_sum, &c_sum));
        ep_loss += l_sum;
        ep_correct += c_sum;
        log_loss += l_sum;
        log_correct += c_sum;
        double now = now_seconds();
        elag_progress p = {.epoch = epoch + 1, .epochs = cfg->train.epochs, .step = s->step,
                           .steps = s->total_steps, .loss = log_loss / (double)log_samples,
                           .accuracy = log_correct / (double)log_samples,
                           .sparsity = s->sparsity, .lr = lr,
                           .samples_per_second = (double)log_samples / (now - t_log),
                           .val_accuracy = -1, .test_accuracy = -1};
        double done_frac = (double)s->step / (double)s->total_steps;
        double elapsed = s->train_seconds + (now - t_start);
        p.eta_seconds = done_frac > 0 ? elapsed * (1.0 - done_frac) / done_frac : 0;
        if (!last) {
            ELAG_TRY(elag_report_step(s->metrics_path, &p));
            if (opts->progress) opts->progress(&p, opts->progress_user);
            t_log = now;
            log_loss = log_correct = 0;
            log_samples = 0;
            continue;
        }
        /* epoch end: the epoch's figures, validation and optional test */
        s->train_seconds += now - t_start;
        p.loss = ep_loss / (double)ep_samples;
        p.accuracy = ep_correct / (double)ep_samples;
        p.samples_per_second = (double)ep_samples / (now - t_start);
        p.epoch_end = 1;
        double loss;
        if (data->val.n > 0) ELAG_TRY(elag_evaluate(m, &data->val, &loss, &p.val_accuracy));
        if (cfg->train.eval_every_epoch)
            ELAG_TRY(elag_evaluate(m, &data->test, &loss, &p.test_accuracy));
        ELAG_TRY(elag_report_epoch(s->metrics_path, &p));
        if (opts->progress) opts->progress(&p, opts->progress_user);
    }
    return ELAG_OK;
}

elag_status elag_train_run(const elag_config *cfg, elag_backend *be, const elag_run_data *data,
                           const elag_train_options *opts, elag_train_summary *out)
{
    train_state s;
    elag_status st;
    int first_epoch = 0;
    memset(out, 0, sizeof *out);
    ELAG_TRY_GOTO(st, state_init(&s, cfg, be, data, opts), done);
    ELAG_TRY_GOTO(st, elag_model_init_params(&s.model, cfg->seed), done);
    if (opts->resume_path) {
        elag_checkpoint ck;
        ELAG_TRY_GOTO(st, elag_checkpoint_open(opts->resume_path, &ck), done);
        st = elag_checkpoint_restore(&ck, &s.model, 1);
        first_epoch = ck.epoch;
        s.step = ck.step;
        elag_checkpoint_close(&ck);
        if (st != ELAG_OK) goto done;
        if (s.step != (long)first_epoch * s.steps_per_epoch) {
            st = elag_fail(ELAG_ERR_INPUT,
                           "%s: checkpoint at step %ld is not at an epoch boundary of this run",
                           opts->resume_path, s.step);
            goto done;
        }
        /* masks in force at the checkpoint */
        for (long t = 0; t < s.step; t++)
            if (elag_prune_plan_is_update(&s.plan, t)) {
                s.masks_active = 1;
                s.sparsity = elag_prune_plan_sparsity(&s.plan, t);
            }
    }
    int last_epoch = cfg->train.epochs;
    if (opts->stop_after_epochs > 0 && opts->stop_after_epochs < last_epoch)
        last_epoch = opts->stop_after_epochs;
    for (int epoch = first_epoch; epoch < last_epoch; epoch++) {
        ELAG_TRY_GOTO(st, run_epoch(&s, data, epoch, opts), done);
        int every = cfg->train.checkpoint_every;
        if (every > 0 && (epoch + 1) % every == 0 && epoch + 1 < last_epoch) {
            char path[ELAG_PATH_LEN + 32];
            snprintf(path, sizeof path, "%s/model.safetensors", opts->out_dir);
            ELAG_TRY_GOTO(st, elag_checkpoint_save(&s.model, cfg, s.step, epoch + 1, path), done);
        }
    }

    /* final figures */
    ELAG_TRY_GOTO(st, elag_config_hash(cfg, out->config_hash), done);
    snprintf(out->device, sizeof out->device, "%s", be->name);
    out->steps = s.step;
    out->train_seconds = s.train_seconds;
    long trained_steps = s.step - (long)first_epoch * s.steps_per_epoch;
    long samples = (long)(last_epoch - first_epoch) * data->train.n;
    out->samples_per_second = s.train_seconds > 0 && trained_steps > 0
                                  ? (double)samples / s.train_seconds
                                  : 0;
    out->mask_update_seconds = s.mask_seconds;
    out->mask_updates = s.mask_updates;
    out->val_accuracy = -1;
    if (data->val.n > 0) {
        double loss;
        ELAG_TRY_GOTO(st, elag_evaluate(&s.model, &data->val, &loss, &out->val_accuracy), done);
    }
    ELAG_TRY_GOTO(st, elag_evaluate(&s.model, &data->test, &out->test_loss, &out->test_accuracy),
                  done);
    ELAG_TRY_GOTO(st, elag_model_sparsity(&s.model, out), done);
    {
        char path[ELAG_PATH_LEN + 32];
        snprintf(path, sizeof path, "%s/model.safetensors", opts->out_dir);
        ELAG_TRY_GOTO(st, elag_checkpoint_save(&s.model, cfg, s.step, last_epoch, path), done);
        snprintf(path, sizeof path, "%s/summary.json", opts->out_dir);
        ELAG_TRY_GOTO(st, elag_report_summary(path, cfg, out), done);
    }
done:
    state_free(&s);
    return st;
}
