/*
 * libFuzzer target: the .npy reader (host/io/npy.c), as features (float32, float64) and
 * as labels (integers), on the same bytes. A file it accepts must hold exactly its shape's
 * element count. Seeds: any numpy.save output (tests/data/bad/make_bad.py writes some).
 */
#include "fuzz_file.h"
#include "io/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(0, data, size);
    for (int want = ELAG_NPY_AS_F32; want <= ELAG_NPY_AS_I64; want++) {
        elag_npy_array a;
        if (elag_npy_read(path, (elag_npy_want)want, &a) == ELAG_OK) {
            size_t count = 1;
            for (int i = 0; i < a.ndim; i++) count *= (size_t)a.shape[i];
            if (count != a.count) abort();
            volatile double sum = 0;
            for (size_t i = 0; i < a.count; i++) sum += a.f32 ? a.f32[i] : (double)a.i64[i];
            (void)sum;
        }
        elag_npy_free(&a);
    }
    return 0;
}
