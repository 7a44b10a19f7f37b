/*
 * safetensors files (checkpoints and exports): 8-byte little-endian header length N,
 * N bytes of JSON {"name": {"dtype","shape","data_offsets"}, "__metadata__": {str: str}},
 * then raw little-endian tensor data. Python users open them with the `safetensors`
 * package or numpy. The reader validates everything before any use: header length
 * within the file, JSON well formed, known dtypes, shape products matching byte
 * lengths, offsets inside the data section and not overlapping. A bad file gives
 * ELAG_ERR_INPUT with the path and what is wrong.
 */
#ifndef ELAG_IO_SAFETENSORS_H
#define ELAG_IO_SAFETENSORS_H

#include "elag/elag.h"

#include <stddef.h>
#include <stdint.h>

#define ELAG_ST_MAX_DIMS 4

typedef enum elag_dtype {
    ELAG_DTYPE_F32 = 0,
    ELAG_DTYPE_I32 = 1,
    ELAG_DTYPE_I64 = 2,
    ELAG_DTYPE_U8 = 3,
    ELAG_DTYPE_U64 = 4
} elag_dtype;

size_t elag_dtype_size(elag_dtype t);
const char *elag_dtype_name(elag_dtype t); /* "F32", "I32", "I64", "U8", "U64" */

typedef struct elag_st_tensor {
    char *name;
    elag_dtype dtype;
    int ndim;
    int64_t shape[ELAG_ST_MAX_DIMS];
    size_t nbytes;
    void *data; /* reader: points into the loaded file buffer (an aligned copy when the
                 * file's offset is not a multiple of the element size); writer: owned copy */
} elag_st_tensor;

/* ---- writing ---- */
typedef struct elag_st_writer elag_st_writer;

elag_status elag_st_writer_init(elag_st_writer **out);
void elag_st_writer_free(elag_st_writer *w); /* NULL does nothing */
/* Copies `data` (host, nbytes = dtype size * product of shape). Names are unique. */
elag_status elag_st_writer_add(elag_st_writer *w, const char *name, elag_dtype dtype, int ndim,
                               const int64_t *shape, const void *data);
/* Adds a string entry to __metadata__ (keys unique; a second add replaces). */
elag_status elag_st_writer_meta(elag_st_writer *w, const char *key, const char *value);
/* Writes the file atomically (temporary file, fsync, rename). Tensors are written in the
 * order added, packed back to back (the safetensors package refuses gaps between them);
 * the JSON header is padded with spaces so the data section starts at a multiple of 8
 * bytes, and a tensor is 8-aligned when the sizes of the tensors before it are. */
elag_status elag_st_writer_save(elag_st_writer *w, const char *path);

/* ---- reading ---- */
typedef struct elag_st_file elag_st_file;

elag_status elag_st_open(const char *path, elag_st_file **out);
void elag_st_close(elag_st_file *f); /* NULL does nothing */
int elag_st_count(const elag_st_file *f);
const elag_st_tensor *elag_st_at(const elag_st_file *f, int i);         /* file order */
const elag_st_tensor *elag_st_find(const elag_st_file *f, const char *name); /* NULL if none */
const char *elag_st_meta(const elag_st_file *f, const char *key);           /* NULL if none */
/* Finds `name` and checks dtype and shape (ndim dims); ELAG_ERR_INPUT naming the file,
 * the tensor and the mismatch otherwise. */
elag_status elag_st_expect(const elag_st_file *f, const char *name, elag_dtype dtype, int ndim,
                           const int64_t *shape, const elag_st_tensor **out);
const char *elag_st_path(const elag_st_file *f);

#endif /* ELAG_IO_SAFETENSORS_H */
