/*
 * Divergence checks, every step. After backward, the gradient of each trainable tensor
 * is summed row by row (the tensor as its (rows, cols) matrix: a row_sum, parallel over
 * rows) into a small device buffer; after the optimizer step, the values of every tensor
 * (weights, biases, batch-norm statistics) likewise, and the loss accumulator is copied
 * beside them; one download of a few thousand floats then checks them all. A sum is
 * finite exactly when no element is NaN or Inf (barring a sum past FLT_MAX, which is
 * divergence too), so this is one pass over the parameters and one over the gradients per
 * step: about 2 / (6 * batch) of a dense step's arithmetic (lenet-300-100 shapes at batch
 * 128 on one core: user time 1.47-2.04 s with the checks, 1.47-1.92 s without, over 8 runs
 * each, i.e. within the noise). On CUDA the download is one synchronisation per step.
 * A failure names the step, the epoch and the first tensor in registry order; the run
 * stops without writing a checkpoint (the last good one stays), and summary.json records
 * "status": "diverged" for the sweep. An evaluation loss that is not finite (weights
 * finite but so large that the logits overflow) is divergence too. A weight that trains on
 * its sparse pattern (sparse_step.h) is checked through its values arrays, which are the
 * truth then: their sum lands in the tensor's first slot, its other slots are 0.
 */
#include "train/trainer.h"

#include "core/check.h"
#include "train/report.h"
#include "train/sparse_step.h"

#include <math.h>
#include <stdio.h>

/* Rows of the check buffer each region takes: the tensors' rows (as matrices) in
 * registry order, so that the sums run in parallel over rows like any row_sum. */
size_t elag_finite_rows(const elag_model *m)
{
    size_t rows = 0;
    for (int j = 0; j < m->n_reg; j++) rows += (size_t)m->reg[j].rows;
    return rows;
}

/* Row sums of tensor p (x: its rows x cols) into slot (p->rows floats). */
static elag_status sum_into(elag_trainer *t, float *slot, const float *x, const elag_param *p)
{
    return elag_be_row_sum(t->be, slot, x, p->rows, p->cols);
}

/* A live pattern's values array (nnz floats) summed into the tensor's slot. */
static elag_status sum_values(elag_trainer *t, float *slot, const float *vals, int64_t nnz,
                              const elag_param *p)
{
    ELAG_TRY(elag_be_fill(t->be, slot, (size_t)p->rows, 0.0f));
    return nnz > 0 ? elag_be_row_sum(t->be, slot, vals, 1, (int)nnz) : ELAG_OK;
}

elag_status elag_finite_grads(elag_trainer *t)
{
    const elag_model *m = &t->model;
    float *slot = t->check_dev;
    for (int j = 0; j < m->n_reg; j++) {
        const elag_param *p = &m->reg[j];
        const elag_sparse_step_layer *L = elag_sparse_step_of(m, j);
        if (L)
            ELAG_TRY(sum_values(t, slot, L->g, L->nnz, p));
        else if (p->trainable)
            ELAG_TRY(sum_into(t, slot, m->grads + p->offset, p));
        slot += p->rows;
    }
    return ELAG_OK;
}

/* The first non-finite of the n floats at x, or 0 (finite) when there is none. */
static float first_bad(const float *x, int n)
{
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return x[i];
    return 0.0f;
}

static const char *kind_of(float v)
{
    return isnan(v) ? "NaN" : "Inf";
}

/* Records the divergence (summary.json) and returns ELAG_ERR_DIVERGED with the message. */
static elag_status diverged(elag_trainer *t, long step, int epoch, const char *tensor,
                            const char *what)
{
    char kept[ELAG_PATH_LEN + 96];
    if (t->saved_step >= 0)
        snprintf(kept, sizeof kept, "the last good checkpoint (step %ld) is kept in %s",
                 t->saved_step, t->ckpt_path);
    else
        snprintf(kept, sizeof kept, "no checkpoint was written before it");
    char msg[sizeof kept + 400];
    snprintf(msg, sizeof msg, "train: diverged at step %ld (epoch %d): %s; %s", step, epoch + 1,
             what, kept);
    elag_diverged d = {.step = step, .epoch = epoch + 1, .tensor = tensor, .error = msg};
    elag_status st = elag_report_diverged(t->summary_path, t->cfg, &d);
    if (st != ELAG_OK) return st;
    return elag_fail(ELAG_ERR_DIVERGED, "%s", msg);
}

elag_status elag_finite_check(elag_trainer *t, long step, int epoch)
{
    const elag_model *m = &t->model;
    const size_t rows = t->check_rows;
    float *slot = t->check_dev + rows;
    for (int j = 0; j < m->n_reg; j++) {
        const elag_sparse_step_layer *L = elag_sparse_step_of(m, j);
        if (L)
            ELAG_TRY(sum_values(t, slot, L->w, L->nnz, &m->reg[j]));
        else
            ELAG_TRY(sum_into(t, slot, m->params + m->reg[j].offset, &m->reg[j]));
        slot += m->reg[j].rows;
    }
    ELAG_TRY(elag_be_copy(t->be, t->check_dev + 2 * rows, m->stats, 2 * sizeof(float)));
    ELAG_TRY(elag_be_to_host(t->be, t->check_host, t->check_dev, (2 * rows + 2) * sizeof(float)));
    const float *h = t->check_host;
    int bad_loss = !isfinite(h[2 * rows]);
    int grad = -1, value = -1;
    float grad_v = 0, value_v = 0;
    size_t at = 0;
    for (int j = 0; j < m->n_reg; j++) {
        const elag_param *p = &m->reg[j];
        if (grad < 0 && p->trainable && !isfinite(grad_v = first_bad(h + at, p->rows))) grad = j;
        if (value < 0 && !isfinite(value_v = first_bad(h + rows + at, p->rows))) value = j;
        at += (size_t)p->rows;
    }
    if (!bad_loss && grad < 0 && value < 0) return ELAG_OK;

    char what[300];
    const char *tensor = "loss";
    if (grad >= 0) {
        tensor = m->reg[grad].name;
        snprintf(what, sizeof what, "the gradient of %s is not finite (%s)%s", tensor,
                 kind_of(grad_v), bad_loss ? ", and the loss is not finite" : "");
    } else if (value >= 0) {
        tensor = m->reg[value].name;
        snprintf(what, sizeof what, "%s is not finite (%s) after the optimizer step%s", tensor,
                 kind_of(value_v), bad_loss ? ", and the loss is not finite" : "");
    } else {
        snprintf(what, sizeof what, "the loss is not finite (%s)", kind_of(h[2 * rows]));
    }
    return diverged(t, step, epoch, tensor, what);
}

elag_status elag_finite_eval(elag_trainer *t, const char *set, double loss, int epoch)
{
    if (isfinite(loss)) return ELAG_OK;
    char what[200];
    snprintf(what, sizeof what,
             "the %s loss is not finite (%s) (the weights are finite but too "
             "large)",
             set, isnan(loss) ? "NaN" : "Inf");
    return diverged(t, t->step, epoch, "loss", what);
}
