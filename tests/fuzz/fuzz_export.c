/*
 * libFuzzer target: the export reader (host/sparse/export_read.c) through the public API
 * (elag_net_open), and, for a small network it accepts, one inference on the reference
 * CPU backend: a sparse weight the reader let through with an index out of range, or a
 * graph that does not fit its tensors, shows as an ASan report there.
 */
#include "elag/elag.h"
#include "fuzz_file.h"

#include <stdlib.h>

#define FUZZ_MAX_INPUT 4096 /* features of the one sample run (bounds the time per input) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    elag_net_t *net = NULL;
    if (elag_net_open(&net, path) != ELAG_OK) return 0;
    char formats[256];
    elag_net_formats(net, formats, sizeof formats);
    for (int i = 0; i < elag_net_weight_count(net); i++) {
        elag_weight_info w;
        if (elag_net_weight(net, i, &w) != ELAG_OK) abort();
    }
    int in = elag_net_input_dim(net), classes = elag_net_classes(net);
    elag_infer_options o;
    elag_infer_options_init(&o, ELAG_INFER_OPTIONS_VERSION);
    o.device = "cpu-ref";
    o.threads = 1;
    o.max_batch = 1;
    elag_infer_t *s = NULL;
    float *x = NULL, *logits = NULL;
    if (in > 0 && in <= FUZZ_MAX_INPUT && classes > 0 && classes <= FUZZ_MAX_INPUT &&
        elag_infer_open(&s, net, NULL, &o) == ELAG_OK) {
        x = calloc((size_t)in, sizeof *x);
        logits = malloc((size_t)classes * sizeof *logits);
        if (x && logits) (void)elag_infer_run(s, x, 1, logits);
    }
    free(x);
    free(logits);
    elag_infer_free(s);
    elag_net_free(net);
    return 0;
}
