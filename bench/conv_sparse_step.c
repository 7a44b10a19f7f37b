/*
 * One conv2d layer's training step, dense against on its sparse pattern (issue 12, item 2;
 * train.sparse_compute for convolutions), on the "cpu" backend: forward, both gradients
 * (dx too: the layer is not the first) and the SGD step, exactly as the trainer runs them
 * (the layer kind's forward and backward, the dense masked sgd_step or the step on the
 * pattern's values + sparse_values_set). The dense path is what conv2d runs there: the
 * direct convolution where the backend has one for the window (AVX-512, stride 1), else
 * im2col + GEMM. Per sparsity: a random element mask, the pattern built once (prepare_ms),
 * then warm-up and repeats with dense and sparse steps alternating so machine load hits
 * both alike; medians. One JSON row per path and sparsity on stdout (the names of
 * `elag bench layer --json`: shape, batch, sparsity, path, median_ms, speedup_vs_dense).
 *
 * Build by hand from the repository root against a build folder's libelag.a:
 *   gcc -O2 -std=c11 -fopenmp -Iinclude -Ihost bench/conv_sparse_step.c build/libelag.a \
 *       $(pkg-config --libs yaml-0.1 libcjson openblas libprotobuf-c zlib) -lm \
 *       -o /tmp/conv_sparse_step
 *   /tmp/conv_sparse_step [-c 32] [-s 28] [-o 32] [-k 3] [-p 1] [-S 1] [-n 128] [-t 1] \
 *       [-r 9] [-w 2] [-x 0.5,0.8,0.9,0.95]
 * (-c/-s/-o: input channels, input side, output channels; -k/-p/-S: kernel, padding,
 * stride; -n batch; -t threads; -r repeats; -w warm-up steps; -x sparsities.)
 * vgg-small's convolutions at batch 128: conv2 -c 32 -s 28 -o 32, conv3 -c 32 -s 14 -o 64,
 * conv4 -c 64 -s 14 -o 64 (conv1 has one input channel: 288 weights).
 */
#define _POSIX_C_SOURCE 200809L
#include "backend/backend.h"
#include "config/config.h"
#include "core/check.h"
#include "model/model.h"
#include "train/sparse_step.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_REPEAT 200

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static unsigned long long rng = 88172645463325252ull;
static float frand(void) /* xorshift64: [0, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 16777216.0f;
}

#define OK(expr)                                                                                   \
    do {                                                                                           \
        if ((expr) != ELAG_OK) {                                                                   \
            fprintf(stderr, "conv_sparse_step: %s: %s\n", #expr, elag_last_error());               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* One step of layer l: forward, backward (dx), optimizer; *ms its time. */
static void step(elag_model *m, elag_layer *l, const elag_pass *pass, const float *dy, float *dx,
                 double *ms)
{
    elag_backend *be = m->be;
    const elag_param *p = &m->reg[l->first_param];
    const float *x = m->x_in;
    float *y = m->acts + l->act_off;
    double t0 = now_ms();
    OK(l->kind->forward(m, l, pass, x, y));
    OK(l->kind->backward(m, l, pass, x, y, dy, dx));
    const elag_sparse_step_layer *L = l->train_sp;
    if (L) {
        OK(elag_be_sgd_step(be, L->w, L->g, L->s0, NULL, (size_t)L->nnz, 1e-3f, 0.9f, 0.0f, 0));
        OK(elag_be_sparse_values_set(be, L->p, L->w));
    } else {
        OK(elag_be_sgd_step(be, m->params + p->offset, m->grads + p->offset,
                            m->opt_state + p->offset, m->masks + p->mask_off, p->count, 1e-3f, 0.9f,
                            0.0f, 0));
    }
    OK(elag_be_sync(be));
    *ms = now_ms() - t0;
}

int main(int argc, char **argv)
{
    int C = 32, S = 28, O = 32, k = 3, pad = 1, stride = 1, n = 128, threads = 1, reps = 9,
        warm = 2;
    char sparsities[256] = "0.5,0.8,0.9,0.95";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        int *dst = !strcmp(a, "-c")   ? &C
                   : !strcmp(a, "-s") ? &S
                   : !strcmp(a, "-o") ? &O
                   : !strcmp(a, "-k") ? &k
                   : !strcmp(a, "-p") ? &pad
                   : !strcmp(a, "-S") ? &stride
                   : !strcmp(a, "-n") ? &n
                   : !strcmp(a, "-t") ? &threads
                   : !strcmp(a, "-r") ? &reps
                   : !strcmp(a, "-w") ? &warm
                                      : NULL;
        if (!strcmp(a, "-x")) {
            snprintf(sparsities, sizeof sparsities, "%s", v);
            continue;
        }
        char *end;
        long val = dst ? strtol(v, &end, 10) : 0;
        if (!dst || *end || val < (dst == &pad || dst == &warm ? 0 : 1) || val > 100000) {
            fprintf(stderr, "conv_sparse_step: bad option %s %s (see the head of the source)\n", a,
                    v);
            return 2;
        }
        *dst = (int)val;
    }
    if (reps > MAX_REPEAT) reps = MAX_REPEAT;
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "device: cpu\ndata: {dataset: synthetic}\nmodel:\n  layers:\n"
             "    - {type: conv2d, out_channels: %d, kernel: %d, padding: %d, stride: %d, "
             "bias: false}\n"
             "    - {type: global_avgpool}\n    - {type: flatten}\n"
             "    - {type: linear, out_features: 10}\n"
             "train: {sparse_compute: on}\n",
             O, k, pad, stride);
    elag_config cfg;
    OK(elag_config_parse(yaml, strlen(yaml), "bench.yaml", NULL, 0, &cfg));
    elag_backend *be;
    OK(elag_backend_open("cpu", threads, &be, NULL, 0));
    elag_model m;
    OK(elag_model_init(&m, &cfg, (elag_fshape){C, S, S}, 10, n, ELAG_MODEL_TRAIN, be));
    OK(elag_model_init_params(&m, 3));
    elag_layer *l = &m.layers[0];
    const elag_param *wp = &m.reg[l->first_param];
    const size_t P = (size_t)l->out.h * l->out.w, nx = (size_t)C * n * S * S;
    for (size_t i = 0; i < nx; i++) m.x_in[i] = 2.0f * frand() - 1.0f;
    float *dy = malloc((size_t)O * n * P * sizeof(float)); /* (O, n, oh, ow) */
    float *dx = malloc(nx * sizeof(float));                /* (C, n, S, S) */
    if (!dy || !dx) return 1;
    for (size_t i = 0; i < (size_t)O * n * P; i++) dy[i] = 2.0f * frand() - 1.0f;
    float *w0 = malloc(wp->count * sizeof(float));
    memcpy(w0, m.params + wp->offset, wp->count * sizeof(float));
    const elag_pass pass = {.n = n, .training = 1, .step = 1, .seed = 1};
    char shape[96];
    snprintf(shape, sizeof shape, "%dx%dx%d->%d k%d s%d p%d", C, S, S, O, k, stride, pad);
    fprintf(stderr, "# %s batch %d, %d threads, dense path %s, %d columns a sparse chunk\n", shape,
            n, threads, l->direct ? "direct" : "im2col+gemm", l->pattern_cols);
    double td[MAX_REPEAT], ts[MAX_REPEAT];
    for (char *tok = strtok(sparsities, ","); tok; tok = strtok(NULL, ",")) {
        const double s = strtod(tok, NULL);
        for (size_t e = 0; e < wp->count; e++) {
            m.masks[wp->mask_off + e] = frand() < s ? 0.0f : 1.0f;
            m.params[wp->offset + e] = w0[e] * m.masks[wp->mask_off + e];
        }
        elag_sparse_step sp;
        OK(elag_sparse_step_init(&sp, &cfg, be));
        double t0 = now_ms();
        OK(elag_sparse_step_build(&sp, &m));
        const double prepare_ms = now_ms() - t0;
        elag_sparse_step_layer *L = l->train_sp;
        for (int r = 0; r < warm + reps; r++) {
            double a, b;
            l->train_sp = NULL;
            step(&m, l, &pass, dy, dx, &a);
            l->train_sp = L;
            step(&m, l, &pass, dy, dx, &b);
            if (r >= warm) td[r - warm] = a, ts[r - warm] = b;
        }
        elag_sparse_step_free(&sp, &m);
        const double md = median(td, reps), ms = median(ts, reps);
        printf("{\"shape\": \"%s\", \"batch\": %d, \"threads\": %d, \"sparsity\": %.4g, \"path\": "
               "\"dense\", \"median_ms\": %.4f, \"speedup_vs_dense\": 1.0}\n",
               shape, n, threads, s, md);
        printf("{\"shape\": \"%s\", \"batch\": %d, \"threads\": %d, \"sparsity\": %.4g, \"path\": "
               "\"sparse\", \"median_ms\": %.4f, \"speedup_vs_dense\": %.4f, \"prepare_ms\": "
               "%.3f}\n",
               shape, n, threads, s, ms, md / ms, prepare_ms);
        fflush(stdout);
    }
    free(w0);
    free(dy);
    free(dx);
    elag_model_free(&m);
    elag_backend_free(be);
    return 0;
}
