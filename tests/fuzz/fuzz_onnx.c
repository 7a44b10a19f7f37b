/*
 * libFuzzer target: the ONNX import (host/onnx/, elag_import_onnx): protobuf parsing by
 * libprotobuf-c, the walk over the graph, tensor decoding and, for a graph it accepts, the
 * model built from the config it writes and the checkpoint written (into a folder made
 * once per process). Oracle besides the sanitizers: an accepted import gives a checkpoint
 * that elag's own export reader takes (elag_net_from_checkpoint).
 */
#include "elag/elag.h"
#include "fuzz_file.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[512];
    if (!out[0]) {
        char tmpl[] = "/tmp/elag-fuzz-onnx.XXXXXX";
        if (!mkdtemp(tmpl)) abort();
        snprintf(out, sizeof out, "%s/out.safetensors", tmpl);
    }
    const char *path = fuzz_file(0, data, size);
    if (elag_import_onnx(path, out, NULL, NULL) != ELAG_OK) return 0;
    elag_net_t *net = NULL;
    if (elag_net_from_checkpoint(&net, out) != ELAG_OK) {
        fprintf(stderr, "an accepted import wrote a checkpoint elag cannot read: %s\n",
                elag_last_error());
        abort();
    }
    elag_net_free(net);
    return 0;
}
