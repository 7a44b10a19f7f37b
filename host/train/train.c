/*
 * The training loop (see train.h). Data live on the backend for the whole run; each
 * epoch draws a permutation from Philox(seed, epoch), each step gathers its batch on
 * the device, runs forward/backward, the masked optimizer step, the finite checks
 * (finite.c) and, on the steps the prune plan names, a mask update (timed separately).
 * Checkpoints: every train.checkpoint_steps steps, every train.checkpoint_every epochs, at
 * an interrupt and at the end; each holds the counters a resumed run needs to continue
 * mid-epoch and to count the whole run in its summary.
 */
#define _POSIX_C_SOURCE 200809L
#include "train/trainer.h"

#include "backend/philox.h"
#include "core/check.h"
#include "io/atomic.h"
#include "prune/dst.h"
#include "prune/mask.h"
#include "train/init_from.h"
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

void elag_trainer_free(elag_trainer *t)
{
    if (!t) return;
    elag_sparse_step_free(&t->sparse, &t->model);
    elag_prune_setup_free(&t->prune);
    elag_model_free(&t->model);
    if (t->be) {
        elag_be_release(t->be, t->x_dev);
        elag_be_release(t->be, t->y_dev);
        elag_be_release(t->be, t->perm_dev);
        elag_be_release(t->be, t->check_dev);
        elag_be_release(t->be, t->rewind_dev);
        elag_be_release(t->be, t->keep_dev);
    }
    free(t->perm_host);
    free(t->check_host);
    free(t);
}

/* The buffers of gradient passes and of rewinding. */
static elag_status prune_buffers(elag_trainer *t)
{
    elag_model *m = &t->model;
    int grad_pass = t->prune.criterion->needs_grad || t->cfg->prune.method == ELAG_PRUNE_METHOD_RIGL;
    if (grad_pass) {
        t->kept_floats = 2; /* m->stats */
        for (int j = 0; j < m->n_reg; j++)
            if (m->reg[j].role == ELAG_PARAM_BUFFER) t->kept_floats += m->reg[j].count;
        ELAG_TRY(elag_be_alloc(t->be, t->kept_floats * sizeof(float), (void **)&t->keep_dev));
    }
    if (t->plan.rewind_step >= 0)
        ELAG_TRY(elag_be_alloc(t->be, m->n_params * sizeof(float), (void **)&t->rewind_dev));
    return ELAG_OK;
}

static elag_status trainer_setup(elag_trainer *t)
{
    const elag_config *cfg = t->cfg;
    elag_backend *be = t->be;
    const elag_dataset *tr = &t->data->train;
    if (tr->n <= 0) return elag_fail(ELAG_ERR_INPUT, "%s: the training set is empty", cfg->source);
    int batch = cfg->train.batch_size;
    if (batch > tr->n) batch = (int)tr->n;
    elag_fshape input = {tr->channels, tr->height, tr->width};
    ELAG_TRY(elag_model_init(&t->model, cfg, input, tr->classes, batch, 1, be));
    t->steps_per_epoch = (tr->n + batch - 1) / batch;
    t->total_steps = t->steps_per_epoch * cfg->train.epochs;
    ELAG_TRY(elag_prune_plan_init(&t->plan, cfg, t->total_steps));
    ELAG_TRY(elag_sparse_step_init(&t->sparse, cfg, be));
    /* checks that every pattern fits its tensor: still before the run folder is made */
    if (cfg->prune.method != ELAG_PRUNE_METHOD_NONE) {
        ELAG_TRY(elag_prune_setup_init(&t->prune, cfg, &t->model));
        ELAG_TRY(prune_buffers(t));
    }
    size_t nx = (size_t)tr->n * tr->features;
    t->check_rows = elag_finite_rows(&t->model);
    size_t n_check = 2 * t->check_rows + 2;
    ELAG_TRY(elag_be_alloc(be, nx * sizeof(float), (void **)&t->x_dev));
    ELAG_TRY(elag_be_alloc(be, (size_t)tr->n * sizeof(int32_t), (void **)&t->y_dev));
    ELAG_TRY(elag_be_alloc(be, (size_t)tr->n * sizeof(int32_t), (void **)&t->perm_dev));
    ELAG_TRY(elag_be_alloc(be, n_check * sizeof(float), (void **)&t->check_dev));
    ELAG_TRY(elag_be_fill(be, t->check_dev, n_check, 0.0f));
    t->perm_host = malloc((size_t)tr->n * sizeof(int32_t));
    t->check_host = malloc(n_check * sizeof(float));
    if (!t->perm_host || !t->check_host)
        return elag_fail(ELAG_ERR_NOMEM, "train: out of host memory");
    ELAG_TRY(elag_be_to_device(be, t->x_dev, tr->x, nx * sizeof(float)));
    ELAG_TRY(elag_be_to_device(be, t->y_dev, tr->y, (size_t)tr->n * sizeof(int32_t)));
    ELAG_TRY(elag_model_init_params(&t->model, cfg->seed));
    return elag_train_init_from(&t->model, cfg); /* train.init_from: another run's weights */
}

elag_status elag_trainer_init(elag_trainer **out, const elag_config *cfg, elag_backend *be,
                              const elag_run_data *data, const elag_train_options *opts)
{
    *out = NULL;
    elag_trainer *t = calloc(1, sizeof *t);
    if (!t) return elag_fail(ELAG_ERR_NOMEM, "train: out of host memory");
    t->cfg = cfg;
    t->be = be;
    t->data = data;
    t->opts = *opts;
    t->saved_step = -1;
    snprintf(t->metrics_path, sizeof t->metrics_path, "%s/metrics.jsonl", opts->out_dir);
    snprintf(t->ckpt_path, sizeof t->ckpt_path, "%s/model.safetensors", opts->out_dir);
    snprintf(t->summary_path, sizeof t->summary_path, "%s/summary.json", opts->out_dir);
    elag_status st = trainer_setup(t);
    if (st == ELAG_OK && opts->resume_path) st = elag_trainer_resume(t);
    if (st != ELAG_OK) {
        elag_trainer_free(t);
        return st;
    }
    *out = t;
    return ELAG_OK;
}

long elag_trainer_start_step(const elag_trainer *t) { return t->start_step; }

/* Copies m->stats and the batch-norm running buffers to (to_keep = 1) or back from
 * t->keep_dev, so that a gradient pass leaves no trace but the gradients. */
static elag_status keep_side_effects(elag_trainer *t, int to_keep)
{
    elag_model *m = &t->model;
    size_t at = 0;
    for (int j = -1; j < m->n_reg; j++) {
        float *x = j < 0 ? m->stats : m->params + m->reg[j].offset;
        size_t n = j < 0 ? 2 : m->reg[j].count;
        if (j >= 0 && m->reg[j].role != ELAG_PARAM_BUFFER) continue;
        float *k = t->keep_dev + at;
        ELAG_TRY(elag_be_copy(t->be, to_keep ? k : x, to_keep ? x : k, n * sizeof(float)));
        at += n;
    }
    return ELAG_OK;
}

/* Forward and backward on batch `batch` of the epoch in progress (its permutation is on
 * the device) at the current weights and masks: m->grads, nothing else changes. */
static elag_status grad_pass(elag_trainer *t, long batch)
{
    elag_model *m = &t->model;
    const long n = t->data->train.n;
    long start = batch * m->max_batch;
    int b = (int)(n - start < m->max_batch ? n - start : m->max_batch);
    ELAG_TRY(elag_be_gather_rows(t->be, m->rows, t->x_dev, t->perm_dev + start, b, m->input_dim));
    ELAG_TRY(elag_be_gather_i32(t->be, m->labels, t->y_dev, t->perm_dev + start, b));
    ELAG_TRY(keep_side_effects(t, 1));
    elag_pass pass = {.n = b, .training = 1, .step = t->step, .seed = t->cfg->seed};
    ELAG_TRY(elag_model_step(m, &pass));
    return keep_side_effects(t, 0);
}

/* Lottery-ticket rewinding after a round: the weights at prune.rewind_step under the new
 * masks, optimizer state reset (it belongs to the trajectory that was rewound). */
static elag_status rewind_weights(elag_trainer *t)
{
    elag_model *m = &t->model;
    ELAG_TRY(elag_be_copy(t->be, m->params, t->rewind_dev, m->n_params * sizeof(float)));
    if (m->opt_state)
        ELAG_TRY(elag_be_fill(t->be, m->opt_state, (size_t)m->opt_slots * m->n_params, 0.0f));
    return elag_mask_apply_all(m);
}

elag_status elag_trainer_mask_update(elag_trainer *t, long batch)
{
    double t0 = now_seconds();
    elag_model *m = &t->model;
    elag_prune_setup *s = &t->prune;
    s->step = t->step;
    t->sparsity = elag_prune_plan_sparsity(&t->plan, t->step);
    ELAG_TRY(elag_sparse_step_release(&t->sparse, m)); /* the update reads and writes dense */
    if (elag_prune_plan_is_regrow(&t->plan, t->step)) {
        int rigl = t->plan.method == ELAG_PRUNE_METHOD_RIGL;
        if (rigl) ELAG_TRY(grad_pass(t, batch)); /* the dense gradient of the step's batch */
        ELAG_TRY(elag_dst_update(m, s, rigl ? ELAG_DST_GROW_GRADIENT : ELAG_DST_GROW_RANDOM,
                                 elag_prune_plan_drop_fraction(&t->plan, t->step)));
    } else {
        if (s->criterion->needs_grad) { /* SNIP: its batches from the step's on */
            int k = s->criterion->gather ? t->cfg->prune.snip_batches : 1;
            ELAG_TRY(elag_prune_gather_reset(s, m));
            for (int j = 0; j < k; j++) {
                ELAG_TRY(grad_pass(t, (batch + j) % t->steps_per_epoch));
                ELAG_TRY(elag_prune_gather(m, s));
            }
        }
        ELAG_TRY(elag_mask_update(m, s, t->sparsity));
        if (t->rewind_dev) ELAG_TRY(rewind_weights(t));
    }
    ELAG_TRY(elag_sparse_step_build(&t->sparse, m)); /* the new masks' patterns */
    ELAG_TRY(elag_be_sync(t->be));
    t->mask_seconds += now_seconds() - t0;
    t->mask_updates++;
    t->masks_active = 1;
    return ELAG_OK;
}

int elag_trainer_extras(elag_trainer *t, long step, elag_checkpoint_extra *x)
{
    const elag_model *m = &t->model;
    int n = 0;
    if (t->cfg->prune.method == ELAG_PRUNE_METHOD_NONE) return 0;
    if (elag_prune_criterion_has_state(t->prune.criterion))
        for (int q = 0; q < m->n_prunable; q++) {
            const elag_param *p = &m->reg[m->prunable[q]];
            snprintf(x[n].name, sizeof x[n].name, "%s.%s", p->name, t->prune.criterion->name);
            x[n].data = t->prune.state + p->mask_off;
            x[n++].like = p;
        }
    if (t->rewind_dev && step > t->plan.rewind_step) /* taken before step rewind_step ran */
        for (int j = 0; j < m->n_reg; j++) {
            snprintf(x[n].name, sizeof x[n].name, "%s.rewind", m->reg[j].name);
            x[n].data = t->rewind_dev + m->reg[j].offset;
            x[n++].like = &m->reg[j];
        }
    return n;
}

/* Reads and resets the device loss/accuracy accumulators into the epoch's sums and *log. */
static elag_status take_stats(elag_trainer *t, double *log_loss, double *log_correct)
{
    float st[2];
    ELAG_TRY(elag_be_to_host(t->be, st, t->model.stats, sizeof st));
    ELAG_TRY(elag_be_fill(t->be, t->model.stats, 2, 0.0f));
    t->ep_loss += st[0];
    t->ep_correct += st[1];
    *log_loss += st[0];
    *log_correct += st[1];
    return ELAG_OK;
}

/* Saves a checkpoint at the current step; `elapsed` is this epoch's training time so far
 * (not yet in train_seconds). */
static elag_status save_checkpoint(elag_trainer *t, double elapsed)
{
    elag_checkpoint_counters c = {.step = t->step,
                                  .epoch = (int)(t->step / t->steps_per_epoch),
                                  .epoch_step = t->step % t->steps_per_epoch,
                                  .mask_updates = t->mask_updates,
                                  .mask_update_seconds = t->mask_seconds,
                                  .train_seconds = t->train_seconds + elapsed,
                                  .epoch_loss_sum = t->ep_loss,
                                  .epoch_correct = t->ep_correct,
                                  .epoch_samples = t->ep_samples};
    if (c.epoch_step == 0) c.epoch_loss_sum = c.epoch_correct = 0, c.epoch_samples = 0;
    ELAG_TRY(elag_sparse_step_sync(&t->sparse, &t->model));
    static _Thread_local elag_checkpoint_extra extra[2 * ELAG_MAX_PARAMS];
    int n_extra = elag_trainer_extras(t, t->step, extra);
    ELAG_TRY(elag_checkpoint_save_extra(&t->model, t->cfg, &c, extra, n_extra, t->ckpt_path));
    t->saved_step = t->step;
    return ELAG_OK;
}

/* Epoch `epoch` (0-based) from its step `first` on (> 0 when resumed mid-epoch). */
static elag_status run_epoch(elag_trainer *t, int epoch, long first)
{
    const elag_config *cfg = t->cfg;
    elag_backend *be = t->be;
    elag_model *m = &t->model;
    const elag_train_options *opts = &t->opts;
    const long n = t->data->train.n;
    shuffle_indices(t->perm_host, n, cfg->seed, epoch);
    ELAG_TRY(elag_be_to_device(be, t->perm_dev, t->perm_host, (size_t)n * sizeof(int32_t)));
    ELAG_TRY(elag_be_fill(be, m->stats, 2, 0.0f));
    if (first == 0) {
        t->ep_loss = t->ep_correct = 0;
        t->ep_samples = 0;
    }

    double t_start = now_seconds(), t_log = t_start;
    double log_loss = 0, log_correct = 0;
    long log_samples = 0, run_samples = 0;
    const long log_every = cfg->train.log_every > 0 ? cfg->train.log_every : 100;
    const long ck_steps = cfg->train.checkpoint_steps;
    for (long i = first; i < t->steps_per_epoch; i++) {
        long start = i * m->max_batch;
        int b = (int)(n - start < m->max_batch ? n - start : m->max_batch);
        if (t->rewind_dev && t->step == t->plan.rewind_step) { /* the weights after N steps */
            ELAG_TRY(elag_sparse_step_sync(&t->sparse, m));
            ELAG_TRY(elag_be_copy(be, t->rewind_dev, m->params, m->n_params * sizeof(float)));
        }
        if (elag_prune_plan_is_update(&t->plan, t->step)) ELAG_TRY(elag_trainer_mask_update(t, i));
        ELAG_TRY(elag_be_gather_rows(be, m->rows, t->x_dev, t->perm_dev + start, b, m->input_dim));
        ELAG_TRY(elag_be_gather_i32(be, m->labels, t->y_dev, t->perm_dev + start, b));
        elag_pass pass = {.n = b, .training = 1, .step = t->step, .seed = cfg->seed};
        ELAG_TRY(elag_model_step(m, &pass));
        if (cfg->prune.method != ELAG_PRUNE_METHOD_NONE && t->prune.criterion->observe) {
            ELAG_TRY(elag_sparse_step_sync_grads(&t->sparse, m)); /* observe reads dense */
            ELAG_TRY(elag_prune_observe(m, &t->prune)); /* criterion state: this step's w, g */
        }
        double lr = elag_lr_at(cfg, t->step, t->total_steps);
        ELAG_TRY(elag_finite_grads(t));
        t->step++;
        ELAG_TRY(elag_optimizer_step(m, cfg, lr, t->step, t->masks_active));
        ELAG_TRY(elag_finite_check(t, t->step, epoch));
        log_samples += b;
        run_samples += b;
        t->ep_samples += b;
        int last = i == t->steps_per_epoch - 1;
        if (t->step % log_every == 0 || last) {
            ELAG_TRY(take_stats(t, &log_loss, &log_correct));
            double now = now_seconds();
            elag_progress p = {.epoch = epoch + 1, .epochs = cfg->train.epochs, .step = t->step,
                               .steps = t->total_steps,
                               .loss = log_loss / (double)log_samples,
                               .accuracy = log_correct / (double)log_samples,
                               .sparsity = t->sparsity, .lr = lr,
                               .samples_per_second = (double)log_samples / (now - t_log),
                               .val_accuracy = -1, .test_accuracy = -1};
            double done_frac = (double)(t->step - t->start_step) /
                               (double)(t->total_steps - t->start_step);
            double elapsed = now - t_start, so_far = now - t->run_t0;
            p.eta_seconds = done_frac > 0 ? so_far * (1.0 - done_frac) / done_frac : 0;
            if (!last) {
                ELAG_TRY(elag_report_step(t->metrics_path, &p));
            } else { /* epoch end: the epoch's figures, validation and optional test */
                t->train_seconds += now - t_start;
                t_start = now; /* what follows in this epoch is no training time */
                p.loss = t->ep_loss / (double)t->ep_samples;
                p.accuracy = t->ep_correct / (double)t->ep_samples;
                p.samples_per_second = (double)run_samples / (elapsed > 0 ? elapsed : 1e-9);
                p.epoch_end = 1;
                double loss;
                if (t->data->val.n > 0) {
                    ELAG_TRY(elag_evaluate(m, &t->data->val, &loss, &p.val_accuracy));
                    ELAG_TRY(elag_finite_eval(t, "validation", loss, epoch));
                }
                if (cfg->train.eval_every_epoch) {
                    ELAG_TRY(elag_evaluate(m, &t->data->test, &loss, &p.test_accuracy));
                    ELAG_TRY(elag_finite_eval(t, "test", loss, epoch));
                }
                ELAG_TRY(elag_report_epoch(t->metrics_path, &p));
            }
            if (opts->progress) opts->progress(&p, opts->progress_user);
            t_log = now;
            log_loss = log_correct = 0;
            log_samples = 0;
        }
        int interrupted = opts->interrupt && *opts->interrupt;
        int periodic = ck_steps > 0 && t->step % ck_steps == 0 && t->step < t->total_steps;
        if (interrupted || periodic) {
            if (!last) ELAG_TRY(take_stats(t, &log_loss, &log_correct));
            ELAG_TRY(save_checkpoint(t, last ? 0 : now_seconds() - t_start));
        }
        if (interrupted)
            return elag_fail(ELAG_ERR_INTERRUPTED, "interrupted at step %ld (epoch %d of %d)",
                             t->step, epoch + 1, cfg->train.epochs);
    }
    return ELAG_OK;
}

/* Whole-run figures, the final checkpoint and summary.json. */
static elag_status finish(elag_trainer *t, int last_epoch, elag_train_summary *out)
{
    const elag_config *cfg = t->cfg;
    const elag_run_data *data = t->data;
    ELAG_TRY(elag_sparse_step_sync(&t->sparse, &t->model)); /* the sparsity summary reads it */
    ELAG_TRY(elag_config_hash(cfg, out->config_hash));
    snprintf(out->device, sizeof out->device, "%s", t->be->name);
    out->steps = t->step;
    out->train_seconds = t->train_seconds;
    double samples = (double)last_epoch * (double)data->train.n;
    out->samples_per_second = t->train_seconds > 0 ? samples / t->train_seconds : 0;
    out->mask_update_seconds = t->mask_seconds;
    out->mask_updates = t->mask_updates;
    out->val_accuracy = -1;
    int epoch = last_epoch - 1;
    if (data->val.n > 0) {
        double loss;
        ELAG_TRY(elag_evaluate(&t->model, &data->val, &loss, &out->val_accuracy));
        ELAG_TRY(elag_finite_eval(t, "validation", loss, epoch));
    }
    ELAG_TRY(elag_evaluate(&t->model, &data->test, &out->test_loss, &out->test_accuracy));
    ELAG_TRY(elag_finite_eval(t, "test", out->test_loss, epoch));
    ELAG_TRY(elag_model_sparsity(&t->model, out));
    ELAG_TRY(save_checkpoint(t, 0));
    return elag_report_summary(t->summary_path, cfg, out);
}

elag_status elag_trainer_run(elag_trainer *t, elag_train_summary *out)
{
    const elag_config *cfg = t->cfg;
    memset(out, 0, sizeof *out);
    t->run_t0 = now_seconds();
    ELAG_TRY(elag_run_folder_remove_stale(t->opts.out_dir));
    if (t->opts.resume_path) ELAG_TRY(elag_metrics_truncate(t->metrics_path, t->start_step));
    int last_epoch = cfg->train.epochs;
    if (t->opts.stop_after_epochs > 0 && t->opts.stop_after_epochs < last_epoch)
        last_epoch = t->opts.stop_after_epochs;
    int first_epoch = (int)(t->step / t->steps_per_epoch);
    long first = t->step % t->steps_per_epoch;
    if (t->masks_active) /* resumed with masks in force: their patterns */
        ELAG_TRY(elag_sparse_step_build(&t->sparse, &t->model));
    for (int epoch = first_epoch; epoch < last_epoch; epoch++) {
        ELAG_TRY(run_epoch(t, epoch, epoch == first_epoch ? first : 0));
        int every = cfg->train.checkpoint_every;
        if (every > 0 && (epoch + 1) % every == 0 && epoch + 1 < last_epoch &&
            t->saved_step != t->step)
            ELAG_TRY(save_checkpoint(t, 0));
    }
    return finish(t, last_epoch, out);
}

elag_status elag_train_run(const elag_config *cfg, elag_backend *be, const elag_run_data *data,
                           const elag_train_options *opts, elag_train_summary *out)
{
    elag_trainer *t;
    memset(out, 0, sizeof *out);
    ELAG_TRY(elag_trainer_init(&t, cfg, be, data, opts));
    elag_status st = elag_trainer_run(t, out);
    elag_trainer_free(t);
    return st;
}
