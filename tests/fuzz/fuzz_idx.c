/*
 * libFuzzer target: the IDX reader (host/data/idx.c), gzip'd or plain. An input is an
 * image file and a label file: a 4-byte little-endian length L, then L bytes of images
 * (L is cut to what is there), then the labels. Seeds: tests/fuzz/make_seeds.py.
 */
#include "data/dataset.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    size_t len = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 |
                 (size_t)data[3] << 24;
    if (len > size - 4) len = size - 4;
    const char *images = fuzz_file(0, data + 4, len);
    const char *labels = fuzz_file(1, data + 4 + len, size - 4 - len);
    elag_dataset d;
    if (elag_idx_load(images, labels, 0, &d) == ELAG_OK) {
        volatile float sum = 0;
        for (long i = 0; i < d.n; i++) {
            if (d.y[i] < 0 || d.y[i] >= d.classes) abort(); /* labels are range-checked */
            sum += d.x[(size_t)i * (size_t)d.features + (size_t)d.features - 1];
        }
        (void)sum;
        elag_dataset_free(&d);
    }
    return 0;
}
