/*
 * Exports: a pruned model as a self-contained safetensors file that runs without its
 * checkpoint. Per linear layer, in the format chosen for it:
 *   dense  `<layer>.weight` F32 (out, in)
 *   csr    `<layer>.weight.indptr` I32 (out+1), `.indices` I32 (nnz), `.values` F32 (nnz)
 *          (scipy.sparse.csr_matrix((values, indices, indptr), shape))
 *   bell   `<layer>.weight.bell_col_ind` I32 (block_rows, ell_cols),
 *          `<layer>.weight.bell_values` F32 (block_rows*B, ell_cols*B) (sparse.h)
 * and `<layer>.bias` F32 (out). Metadata: format "elag-export-1", per weight
 * `<layer>.weight.format` ("dense" | "csr" | "bell"), `<layer>.weight.shape`
 * ("[out, in]"), `<layer>.weight.block` (bell) and `<layer>.weight.nnz` (nonzeros);
 * "graph": a JSON list of every layer in order, {name, type, in, out, bias, prunable,
 * format} (format null for relu / flatten); "input_dim", "classes", and "config", the
 * checkpoint's resolved YAML (so infer evaluates on the same test set). Reading
 * validates every name, dtype and shape against the metadata and every sparse array
 * (elag_sparse_validate); a corrupt or inconsistent file is ELAG_ERR_INPUT naming the
 * file and the tensor or key.
 */
#ifndef ELAG_SPARSE_EXPORT_H
#define ELAG_SPARSE_EXPORT_H

#include "backend/backend.h"
#include "config/config.h"
#include "sparse/sparse.h"

#define ELAG_EXPORT_FORMAT "elag-export-1"
/* Batch at which `--format auto` times each layer. */
#define ELAG_EXPORT_AUTO_BATCH 256

/* What `--format` asks for. */
typedef struct elag_export_spec {
    int is_auto;               /* time each layer and keep the fastest format */
    elag_sparse_format format; /* when not auto */
    int block;                 /* bell block size B (default 16) */
} elag_export_spec;

/* Parses "dense", "csr", "bell", "bell:B" (B in 1..1024) or "auto"; ELAG_ERR_USAGE else. */
elag_status elag_export_parse_spec(const char *text, elag_export_spec *out);

typedef struct elag_export_layer {
    char name[ELAG_NAME_LEN];
    elag_layer_kind type;
    int in, out;               /* features in and out */
    int has_bias, prunable;
    elag_sparse_host w;        /* linear: weight (out, in) in its format, host */
    float *bias;               /* (out) host, NULL without a bias */
} elag_export_layer;

typedef struct elag_export {
    int n_layers;
    elag_export_layer layers[ELAG_MAX_LAYERS];
    int input_dim, classes;
    char *config_yaml;         /* the checkpoint's resolved config (malloc'd), or NULL */
} elag_export;

/* Reads a checkpoint's layers: every linear weight as dense (out, in) with its mask
 * applied (pruned entries exactly 0), biases, the graph and the config. */
elag_status elag_export_from_checkpoint(const char *ckpt_path, elag_export *out);

/* Converts linear layer i's weight to `format` (from whatever it is now). */
elag_status elag_export_convert(elag_export *e, int i, elag_sparse_format format, int block);

/* Timings of one linear layer's product (out, in) x (in, batch) for `auto` (ms, median;
 * negative when the candidate was skipped). */
typedef struct elag_export_timing {
    double dense_ms, csr_ms, bell16_ms, bell32_ms;
    elag_sparse_format chosen;
    int block;
} elag_export_timing;

/* `--format auto`: times every linear layer (dense gemm + bias/ReLU vs sparse_mm per
 * candidate format) on `be` at `batch` columns and converts each layer to its fastest
 * format. timings has one entry per layer (only linear entries are filled). */
elag_status elag_export_choose_auto(elag_export *e, elag_backend *be, int batch,
                                    elag_export_timing *timings);

/* Writes the export atomically (host/io); the layers keep their current formats. */
elag_status elag_export_save(const elag_export *e, const char *path);

/* Reads and validates an export. */
elag_status elag_export_load(const char *path, elag_export *out);

void elag_export_free(elag_export *e); /* NULL safe; zeroes *e */

/* Census over the prunable linear weights: entries, nonzeros, and sparsity (zeros /
 * entries, 0 when there are none). Counts values != 0 in every format. */
void elag_export_sparsity(const elag_export *e, int64_t *params, int64_t *nonzero,
                          double *sparsity);

/* "csr", "dense", "bell:16" for a layer (buf of at least 16 bytes). */
const char *elag_export_layer_format(const elag_export_layer *l, char *buf, size_t len);

#endif /* ELAG_SPARSE_EXPORT_H */
