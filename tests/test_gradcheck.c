/*
 * Finite-difference gradient checks of every layer kind and of the loss, on the naive
 * reference backend and the fast CPU backend: central differences of the mean softmax
 * cross-entropy (training-mode forward: batch statistics, the step's dropout mask) against
 * the analytic gradients of the backward pass, for every trainable tensor. A layer's
 * input gradient is checked through the tensors below it, so each network puts every kind
 * it tests above a weighted layer.
 */
#include "config/config.h"
#include "model/model.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 5
/* Smaller than ELAG_FD_EPS: with ReLU and max pooling over a few hundred activations a step of
 * 1e-2 often crosses a kink; the loss is O(1), so float rounding stays near 1e-4 here. */
#define GC_EPS 1e-3f

typedef struct net {
    elag_config cfg;
    elag_backend *be;
    elag_model m;
    elag_pass pass;
} net;

/* `layers` is a model.layers YAML list; the input is (c, h, w) per sample, 3 classes. */
static void net_init(net *n, const char *device, const char *layers, elag_fshape in)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "device: cpu\ndata: {dataset: synthetic}\nmodel:\n  layers:\n%s", layers);
    cr_assert_eq(elag_config_parse(yaml, strlen(yaml), "gradcheck.yaml", NULL, 0, &n->cfg),
                 ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_backend_open(device, 1, &n->be, NULL, 0), ELAG_OK);
    cr_assert_eq(elag_model_init(&n->m, &n->cfg, in, 3, BATCH, 1, n->be), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_model_init_params(&n->m, 11), ELAG_OK);
    /* every tensor random (nonzero biases and norm shifts matter); running variances stay
     * positive because training-mode batch norm does not read them */
    elag_test_fill_uniform(n->m.params, n->m.n_params, -0.8f, 0.8f, 5);
    elag_test_fill_uniform(n->m.rows, (size_t)BATCH * n->m.input_dim, -1.0f, 1.0f, 6);
    for (int r = 0; r < BATCH; r++) n->m.labels[r] = r % 3;
    n->pass = (elag_pass){.n = BATCH, .training = 1, .step = 3, .seed = 9};
}

static void net_free(net *n)
{
    elag_model_free(&n->m);
    elag_backend_free(n->be);
}

/* The input rows are kept aside: a step overwrites m->rows with the logits. */
static double mean_loss(net *n, const float *rows)
{
    elag_model *m = &n->m;
    const float *logits;
    memcpy(m->rows, rows, (size_t)BATCH * m->input_dim * sizeof(float));
    m->stats[0] = m->stats[1] = 0;
    cr_assert_eq(elag_model_load_rows(m, BATCH), ELAG_OK);
    cr_assert_eq(elag_model_forward(m, &n->pass, &logits), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_model_logits_rows(m, BATCH, logits), ELAG_OK);
    cr_assert_eq(n->be->xent(n->be, m->rows, m->labels, BATCH, m->classes, NULL, m->stats),
                 ELAG_OK);
    return (double)m->stats[0] / BATCH;
}

static void check_all_params(const char *device, const char *layers, elag_fshape in)
{
    net n;
    net_init(&n, device, layers, in);
    elag_model *m = &n.m;
    size_t nrows = (size_t)BATCH * m->input_dim;
    float *rows = malloc(nrows * sizeof(float));
    memcpy(rows, m->rows, nrows * sizeof(float));
    cr_assert_eq(elag_model_step(m, &n.pass), ELAG_OK, "%s", elag_last_error());
    float *analytic = malloc(m->n_params * sizeof(float));
    float *numeric = malloc(m->n_params * sizeof(float));
    size_t count = 0;
    for (int j = 0; j < m->n_reg; j++) {
        const elag_param *p = &m->reg[j];
        if (!p->trainable) continue;
        for (size_t i = 0; i < p->count; i++) {
            float *w = &m->params[p->offset + i];
            float keep = *w;
            analytic[count] = m->grads[p->offset + i];
            *w = keep + GC_EPS;
            double up = mean_loss(&n, rows);
            *w = keep - GC_EPS;
            double down = mean_loss(&n, rows);
            *w = keep;
            numeric[count++] = (float)((up - down) / (2.0 * GC_EPS));
        }
    }
    cr_assert_gt(count, 0);
    size_t bad = elag_test_compare(device, analytic, numeric, count, ELAG_TOL_FD_ABS,
                                   ELAG_TOL_FD_REL);
    cr_assert_eq(bad, 0, "%zu of %zu parameter gradients disagree with finite differences", bad,
                 count);
    free(rows);
    free(analytic);
    free(numeric);
    net_free(&n);
}

static const char mlp[] = "    - {type: linear, out_features: 7}\n"
                          "    - {type: relu}\n"
                          "    - {type: linear, out_features: 5}\n"
                          "    - {type: relu}\n"
                          "    - {type: linear, out_features: 3}\n";

/* conv (strided, padded, rectangular kernel) with bias, batch norm, relu, max and average
 * pooling (padded), dropout, flatten of a 2-D map, linear */
static const char cnn[] =
    "    - {type: conv2d, out_channels: 3, kernel: [3, 2], stride: [1, 2], padding: 1}\n"
    "    - {type: batchnorm}\n"
    "    - {type: relu}\n"
    "    - {type: maxpool, kernel: 2, stride: 1}\n"
    "    - {type: conv2d, out_channels: 4, kernel: 2, bias: false}\n"
    "    - {type: avgpool, kernel: 3, stride: 2, padding: 1}\n"
    "    - {type: dropout, p: 0.25}\n"
    "    - {type: flatten}\n"
    "    - {type: linear, out_features: 3}\n";

/* 1x1 convolution (no columns), global average pooling, batch norm on flat features */
static const char cnn_global[] = "    - {type: conv2d, out_channels: 4, kernel: 1}\n"
                                 "    - {type: relu}\n"
                                 "    - {type: conv2d, out_channels: 5, kernel: 3, padding: 1}\n"
                                 "    - {type: global_avgpool}\n"
                                 "    - {type: flatten}\n"
                                 "    - {type: batchnorm}\n"
                                 "    - {type: linear, out_features: 3}\n";

static const elag_fshape flat6 = {6, 1, 1}, img = {2, 6, 7};

Test(gradcheck, linear_relu_reference) { check_all_params("cpu-ref", mlp, flat6); }
Test(gradcheck, linear_relu_fast) { check_all_params("cpu", mlp, flat6); }
Test(gradcheck, cnn_layers_reference) { check_all_params("cpu-ref", cnn, img); }
Test(gradcheck, cnn_layers_fast) { check_all_params("cpu", cnn, img); }
Test(gradcheck, cnn_global_pool_reference) { check_all_params("cpu-ref", cnn_global, img); }
Test(gradcheck, cnn_global_pool_fast) { check_all_params("cpu", cnn_global, img); }

Test(gradcheck, softmax_cross_entropy_logits)
{
    elag_backend *be;
    cr_assert_eq(elag_backend_open("cpu-ref", 1, &be, NULL, 0), ELAG_OK);
    enum { R = 4, C = 6 };
    float logits[R * C], grad[R * C], numeric[R * C], stats[2] = {0, 0};
    int32_t labels[R] = {0, 5, 2, 3};
    elag_test_fill_uniform(logits, R * C, -3.0f, 3.0f, 9);
    cr_assert_eq(be->xent(be, logits, labels, R, C, grad, stats), ELAG_OK);
    for (int i = 0; i < R * C; i++) {
        float keep = logits[i];
        float s_up[2] = {0, 0}, s_dn[2] = {0, 0};
        logits[i] = keep + GC_EPS;
        be->xent(be, logits, labels, R, C, NULL, s_up);
        logits[i] = keep - GC_EPS;
        be->xent(be, logits, labels, R, C, NULL, s_dn);
        logits[i] = keep;
        numeric[i] = (float)(((double)s_up[0] - (double)s_dn[0]) / (2.0 * GC_EPS) / R);
    }
    cr_assert_eq(elag_test_compare("xent", grad, numeric, R * C, ELAG_TOL_FD_ABS, ELAG_TOL_FD_REL),
                 0);
    elag_backend_free(be);
}

/* The fast backend's gradients equal the reference's on every network. */
static void fast_matches_reference(const char *layers, elag_fshape in)
{
    net a, b;
    net_init(&a, "cpu-ref", layers, in);
    net_init(&b, "cpu", layers, in);
    cr_assert_eq(elag_model_step(&a.m, &a.pass), ELAG_OK);
    cr_assert_eq(elag_model_step(&b.m, &b.pass), ELAG_OK);
    cr_assert_eq(elag_test_compare("grads", b.m.grads, a.m.grads, a.m.n_params,
                                   ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL),
                 0);
    net_free(&a);
    net_free(&b);
}

Test(gradcheck, fast_backward_matches_reference_mlp) { fast_matches_reference(mlp, flat6); }
Test(gradcheck, fast_backward_matches_reference_cnn) { fast_matches_reference(cnn, img); }
Test(gradcheck, fast_backward_matches_reference_global)
{
    fast_matches_reference(cnn_global, img);
}

/* Evaluation mode: batch norm reads its running averages and dropout is the identity, so
 * the same input gives the same logits whatever the step. */
Test(gradcheck, eval_mode_is_deterministic)
{
    net n;
    net_init(&n, "cpu", cnn, img);
    elag_model *m = &n.m;
    size_t nrows = (size_t)BATCH * m->input_dim;
    float *rows = malloc(nrows * sizeof(float));
    float first[BATCH * 3];
    memcpy(rows, m->rows, nrows * sizeof(float));
    for (int j = 0; j < m->n_reg; j++) /* running variances positive */
        if (m->reg[j].role == ELAG_PARAM_BUFFER)
            for (size_t i = 0; i < m->reg[j].count; i++)
                m->params[m->reg[j].offset + i] = 1.0f + 0.1f * (float)i;
    for (int step = 0; step < 2; step++) {
        n.pass = (elag_pass){.n = BATCH, .training = 0, .step = step, .seed = 9};
        mean_loss(&n, rows);
        if (step == 0) memcpy(first, m->rows, sizeof first);
        else cr_assert_eq(memcmp(first, m->rows, sizeof first), 0, "eval logits changed");
    }
    free(rows);
    net_free(&n);
}
