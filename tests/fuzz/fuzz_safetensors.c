/*
 * libFuzzer target: the safetensors reader (host/io/safetensors.c) and, on what it
 * accepts, the checkpoint reader behind `elag eval` / `elag export`
 * (elag_export_from_checkpoint: metadata numbers, the config, tensor shapes and masks).
 * Every accepted tensor's bytes are read, so a length the reader got wrong shows as an
 * ASan report.
 */
#include "fuzz_file.h"
#include "io/safetensors.h"
#include "sparse/export.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    elag_st_file *f = NULL;
    if (elag_st_open(path, &f) != ELAG_OK) return 0;
    volatile unsigned sum = 0;
    for (int i = 0; i < elag_st_count(f); i++) {
        const elag_st_tensor *t = elag_st_at(f, i);
        const unsigned char *b = t->data;
        for (size_t k = 0; k < t->nbytes; k++) sum += b[k];
        if (elag_st_find(f, t->name) == NULL) abort(); /* every listed name is found */
    }
    (void)sum;
    (void)elag_st_meta(f, "format");
    elag_st_close(f);

    elag_export *e = calloc(1, sizeof *e); /* large (a slot per tensor): not on the stack */
    if (!e) return 0;
    if (elag_export_from_checkpoint(path, e) == ELAG_OK) {
        int64_t params, nonzero;
        double sparsity;
        elag_export_sparsity(e, &params, &nonzero, &sparsity);
    }
    elag_export_free(e);
    free(e);
    return 0;
}
