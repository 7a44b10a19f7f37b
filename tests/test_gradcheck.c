/*
 * Finite-difference gradient checks of every layer and of the loss, on the naive
 * reference backend and the fast CPU backend: central differences of the mean
 * softmax cross-entropy against the analytic gradients of the backward pass.
 */
#include "model/model.h"
#include "support/fixtures.h"
#include "support/testutil.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#define BATCH 5

typedef struct net {
    elag_config cfg;
    elag_backend *be;
    elag_model m;
} net;

/* input 6 -> fc1 7 -> relu -> fc2 5 -> relu -> fc3 3, on host-memory backends */
static void net_init(net *n, const char *device)
{
    elag_test_small_config(&n->cfg, 7);
    n->cfg.model.n_layers = 5;
    n->cfg.model.layers[2] = (elag_layer_config){ELAG_LAYER_LINEAR, "fc2", 5, 1, 1};
    n->cfg.model.layers[3] = (elag_layer_config){ELAG_LAYER_RELU, "relu2", 0, 0, 0};
    n->cfg.model.layers[4] = (elag_layer_config){ELAG_LAYER_LINEAR, "fc3", 3, 1, 1};
    cr_assert_eq(elag_backend_open(device, 1, &n->be, NULL, 0), ELAG_OK);
    cr_assert_eq(elag_model_init(&n->m, &n->cfg, 6, 3, BATCH, n->be), ELAG_OK, "%s",
                 elag_last_error());
    cr_assert_eq(elag_model_init_params(&n->m, 11), ELAG_OK);
    /* nonzero biases so their gradients matter */
    elag_test_fill_uniform(n->m.params, n->m.n_params, -0.8f, 0.8f, 5);
    elag_test_fill_uniform(n->m.input, BATCH * 6, -1.0f, 1.0f, 6);
    for (int r = 0; r < BATCH; r++) n->m.labels[r] = r % 3;
}

static double mean_loss(elag_model *m)
{
    m->stats[0] = m->stats[1] = 0;
    cr_assert_eq(elag_model_step(m, BATCH, 0), ELAG_OK);
    return (double)m->stats[0] / BATCH;
}

static void check_all_params(const char *device)
{
    net n;
    net_init(&n, device);
    elag_model *m = &n.m;
    n.m.stats[0] = 0;
    cr_assert_eq(elag_model_step(m, BATCH, 1), ELAG_OK);
    float *analytic = malloc(m->n_params * sizeof(float));
    float *numeric = malloc(m->n_params * sizeof(float));
    for (size_t i = 0; i < m->n_params; i++) analytic[i] = m->grads[i];
    for (size_t i = 0; i < m->n_params; i++) {
        float keep = m->params[i];
        m->params[i] = keep + ELAG_FD_EPS;
        double up = mean_loss(m);
        m->params[i] = keep - ELAG_FD_EPS;
        double down = mean_loss(m);
        m->params[i] = keep;
        numeric[i] = (float)((up - down) / (2.0 * ELAG_FD_EPS));
    }
    size_t bad = elag_test_compare(device, analytic, numeric, m->n_params, ELAG_TOL_FD_ABS,
                                   ELAG_TOL_FD_REL);
    cr_assert_eq(bad, 0, "%zu of %zu parameter gradients disagree with finite differences", bad,
                 m->n_params);
    free(analytic);
    free(numeric);
    elag_model_free(m);
    elag_backend_free(n.be);
}

Test(gradcheck, linear_relu_layers_reference) { check_all_params("cpu-ref"); }
Test(gradcheck, linear_relu_layers_fast) { check_all_params("cpu"); }

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
        logits[i] = keep + ELAG_FD_EPS;
        be->xent(be, logits, labels, R, C, NULL, s_up);
        logits[i] = keep - ELAG_FD_EPS;
        be->xent(be, logits, labels, R, C, NULL, s_dn);
        logits[i] = keep;
        numeric[i] = (float)(((double)s_up[0] - (double)s_dn[0]) / (2.0 * ELAG_FD_EPS) / R);
    }
    cr_assert_eq(elag_test_compare("xent", grad, numeric, R * C, ELAG_TOL_FD_ABS, ELAG_TOL_FD_REL),
                 0);
    elag_backend_free(be);
}

Test(gradcheck, fast_backward_matches_reference)
{
    net a, b;
    net_init(&a, "cpu-ref");
    net_init(&b, "cpu");
    cr_assert_eq(elag_model_step(&a.m, BATCH, 1), ELAG_OK);
    cr_assert_eq(elag_model_step(&b.m, BATCH, 1), ELAG_OK);
    cr_assert_eq(elag_test_compare("grads", b.m.grads, a.m.grads, a.m.n_params,
                                   ELAG_TOL_FAST_ABS, ELAG_TOL_FAST_REL),
                 0);
    elag_model_free(&a.m);
    elag_model_free(&b.m);
    elag_backend_free(a.be);
    elag_backend_free(b.be);
}
