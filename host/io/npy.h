/*
 * NumPy .npy files (the format numpy.save writes): the user's own inputs, datasets and
 * logits. Layout: magic "\x93NUMPY", major and minor version (1.0: 2-byte header length;
 * 2.0 and 3.0: 4-byte), then a Python dict literal {'descr': '<f4', 'fortran_order':
 * False, 'shape': (N, F), } padded to a multiple of 64 bytes, then the raw C-order data.
 *
 * Everything in the file is untrusted: the header is parsed strictly, dimensions and their
 * product are checked for overflow and must match the bytes in the file exactly, and a
 * bad file is ELAG_ERR_INPUT with one message naming the file and what is wrong.
 *
 * What is read, and why:
 * - as floats (features, inputs): '<f4' as it is; '<f8' rounded to the nearest float32
 *   (numpy's default dtype is float64, so this is the common case; a finite value beyond
 *   float32's range is refused rather than turned into infinity). Any other dtype (ints,
 *   bytes, half precision, big-endian) is refused with the conversion to use: integer
 *   pixels could mean 0..255 or 0..1 and elag will not guess.
 * - as integers (labels): '|i1' '|u1' '<i2' '<u2' '<i4' '<u4' '<i8' '<u8' (torch and
 *   numpy write int64 by default), range-checked by the caller. Floats are refused.
 * - fortran_order: True is refused (save numpy.ascontiguousarray(x)); so are 0-d arrays
 *   and more than ELAG_NPY_MAX_DIMS dimensions.
 * Writing: float32 only ('<f4', version 1.0, C order), atomically (io/atomic.h).
 */
#ifndef ELAG_IO_NPY_H
#define ELAG_IO_NPY_H

#include "elag/elag.h"

#include <stddef.h>
#include <stdint.h>

#define ELAG_NPY_MAX_DIMS 8

typedef enum elag_npy_want {
    ELAG_NPY_AS_F32 = 0, /* features: '<f4', or '<f8' converted */
    ELAG_NPY_AS_I64 = 1  /* labels: any little-endian integer dtype */
} elag_npy_want;

typedef struct elag_npy_array {
    int ndim;                         /* >= 1 */
    int64_t shape[ELAG_NPY_MAX_DIMS]; /* C order */
    size_t count;                     /* product of shape (may be 0) */
    char descr[16];                   /* the file's dtype, e.g. "<f8" */
    float *f32;                       /* ELAG_NPY_AS_F32: (count), host; else NULL */
    int64_t *i64;                     /* ELAG_NPY_AS_I64: (count), host; else NULL */
} elag_npy_array;

/* Reads `path` as `want` into *out (zeroed first; the caller frees it with elag_npy_free,
 * also after a failure). A missing file is ELAG_ERR_INPUT; a read error ELAG_ERR_IO. */
elag_status elag_npy_read(const char *path, elag_npy_want want, elag_npy_array *out);

/* Parses a header (the bytes from the magic through the dict's '\n'; len of them) into
 * out's ndim, shape, count and descr, and sets *data_offset to where the data starts.
 * `path` only names the file in messages. Exposed for the tests and the fuzzer. */
elag_status elag_npy_parse_header(const char *path, const unsigned char *buf, size_t len,
                                  elag_npy_array *out, size_t *data_offset);

void elag_npy_free(elag_npy_array *a); /* frees the data, zeroes *a; NULL does nothing */

/* Writes data (host, product of shape floats, C order) as '<f4' with ndim (1..8)
 * dimensions, atomically. */
elag_status elag_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

#endif /* ELAG_IO_NPY_H */
