/*
 * examples/infer.c: running a pruned network from a C program through elag's public API
 * (include/elag/, docs/api.md).
 *
 *   elag export runs/NAME/model.safetensors --format csr -o model.csr.safetensors
 *   cc -std=c11 infer.c $(pkg-config --cflags --libs elag) -o infer
 *   ./infer model.csr.safetensors
 *
 * Opens the export, prepares it on the device "auto" picks (a CUDA GPU when the program is
 * linked with elag-cuda and one is present, else the CPU), runs one batch of SAMPLES inputs
 * of a fixed pattern through it and prints the logits, one sample per line, after a
 * "#" line that says what ran. Exit 0 on success; 2 with one line on stderr for a bad
 * argument or a file that is not a readable elag export; 1 for any other failure.
 */
#include <elag/elag.h>

#include <stdio.h>
#include <stdlib.h>

#define SAMPLES 4

/* The same inputs on every run and machine: x (SAMPLES, dim), values in [-0.5, 0.5]. */
static void fill_pattern(float *x, int samples, int dim)
{
    for (int i = 0; i < samples; i++)
        for (int j = 0; j < dim; j++)
            x[(size_t)i * dim + j] = (float)((i * 7 + j * 13) % 17) / 16.0f - 0.5f;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s EXPORT (a file written by 'elag export')\n", argv[0]);
        return 2;
    }
    elag_net_t *net = NULL;
    if (elag_net_open(&net, argv[1]) != ELAG_OK) {
        fprintf(stderr, "infer: %s\n", elag_last_error());
        return 2;
    }
    int dim = elag_net_input_dim(net), classes = elag_net_classes(net);

    elag_infer_options opts = ELAG_INFER_OPTIONS_INIT;
    opts.device = "auto";
    opts.max_batch = SAMPLES;
    elag_infer_t *session = NULL;
    float *x = malloc((size_t)SAMPLES * dim * sizeof *x);               /* (SAMPLES, dim) */
    float *logits = malloc((size_t)SAMPLES * classes * sizeof *logits); /* (SAMPLES, classes) */
    elag_status st = x && logits ? ELAG_OK : elag_fail(ELAG_ERR_NOMEM, "out of host memory");
    if (st == ELAG_OK) st = elag_infer_open(&session, net, NULL, &opts);
    if (st == ELAG_OK) {
        fill_pattern(x, SAMPLES, dim);
        st = elag_infer_run(session, x, SAMPLES, logits);
    }
    if (st == ELAG_OK) {
        printf("# %d samples x %d classes, input_dim %d, sparsity %.4f, device %s\n", SAMPLES,
               classes, dim, elag_net_sparsity(net, NULL, NULL), elag_infer_device_name(session));
        for (int i = 0; i < SAMPLES; i++)
            for (int c = 0; c < classes; c++)
                printf("%.6g%c", logits[(size_t)i * classes + c], c + 1 < classes ? ' ' : '\n');
    } else {
        fprintf(stderr, "infer: %s\n", elag_last_error());
    }
    elag_infer_free(session);
    elag_net_free(net);
    free(x);
    free(logits);
    return st == ELAG_OK ? 0 : 1;
}
