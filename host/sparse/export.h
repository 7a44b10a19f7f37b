/*
 * Exports: a trained model as a self-contained safetensors file for inference, with every
 * layer's weight in the format chosen for it. The graph is the inference graph: batch norm
 * right after a conv2d or linear layer is folded into it (W' = W * s, b' = (b - mean) * s +
 * beta with s = gamma / sqrt(var + eps), so pruned weights stay zero), dropout (the
 * identity in evaluation) is left out, and every other layer is kept with its tensors.
 * Tensors, in the parameter-registry order of that graph:
 *   a layer's weight `<layer>.weight` in one of
 *     dense  `<layer>.weight` F32 in its own shape ((out, in) or (out, C, kh, kw))
 *     csr    `.indptr` I32 (out+1), `.indices` I32 (nnz), `.values` F32 (nnz) of the weight
 *            as a matrix (out, in) or (out, C*kh*kw)
 *            (scipy.sparse.csr_matrix((values, indices, indptr), shape=(out, rest)))
 *     bell   `.bell_col_ind` I32 (block_rows, ell_cols), `.bell_values` F32
 *            (block_rows*B, ell_cols*B) (sparse.h)
 *   every other tensor (biases, unfolded batch norms) dense F32 under its registry name.
 * Metadata: format "elag-export-2"; per weight `<layer>.weight.format` ("dense" | "csr" |
 * "bell"), `.shape` (the tensor's own shape, "[out, C, kh, kw]"), `.block` (bell), `.nnz`;
 * "config" (the resolved config, whose model.layers is the inference graph: it is what the
 * reader builds); "graph" (a JSON list of the layers with their in/out shapes and weight
 * formats, for readers without a YAML parser; it must be what the config implies);
 * "input_dim", "input_shape" ("[C, H, W]") and "classes"; a thinned export (thin.h) also
 * "thinned", a JSON object {"<layer>": [kept, original], ...} over every linear and conv2d
 * layer in graph order (kept must be the layer's width). Reading validates everything
 * and refuses a tensor no layer claims; a corrupt or inconsistent file is ELAG_ERR_INPUT
 * naming the file and the tensor or key.
 */
#ifndef ELAG_SPARSE_EXPORT_H
#define ELAG_SPARSE_EXPORT_H

#include "backend/backend.h"
#include "config/config.h"
#include "model/layer.h"
#include "model/model.h"
#include "sparse/sparse.h"

#define ELAG_EXPORT_FORMAT "elag-export-2"
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

/* One tensor of the export. A layer's weight is held as a matrix in any format; every
 * other tensor dense. */
typedef struct elag_export_tensor {
    char name[ELAG_PARAM_NAME_LEN];
    int layer;                 /* index in the graph */
    int ndim;
    int64_t shape[4];          /* its own shape */
    int is_weight;             /* the weight of a conv2d or linear layer */
    int prunable;
    int columns_per_sample;    /* weight: product columns per sample (oh*ow; 1 for linear) */
    int relu;                  /* weight: a ReLU follows in the layer's epilogue */
    elag_sparse_host w;        /* is_weight: (shape[0], count / shape[0]) in its format */
    float *data;               /* otherwise: (count) dense, host */
} elag_export_tensor;

/* What thinning (thin.h) did to one linear or conv2d layer: its output units before and
 * after, and how the removed and constant ones were treated. A file records `original`
 * and `kept` only (metadata "thinned"); the other counts read back as -1. */
typedef struct elag_thin_layer {
    char name[ELAG_NAME_LEN];
    int original, kept;
    int zero;   /* removed: constant 0 where the next layer reads it */
    int folded; /* removed: a nonzero constant added to the next layer's bias */
    int merged; /* removed: a nonzero constant merged into one kept constant unit */
    int held;   /* constant units kept (no exact way to remove them; the merge target too) */
} elag_thin_layer;

typedef struct elag_export {
    elag_config cfg;           /* the inference graph (model.layers) and its data section */
    char *config_yaml;         /* its YAML (malloc'd) */
    elag_fshape input;         /* per-sample input shape */
    int input_dim, classes;
    int n_tensors;
    elag_export_tensor t[ELAG_MAX_PARAMS];
    int n_thin;                /* 0: not thinned; else one entry per linear/conv2d layer */
    elag_thin_layer thin[ELAG_MAX_LAYERS];
} elag_export;

/* Reads a checkpoint into the inference graph: weights dense with their masks applied
 * (pruned entries exactly 0), batch norms folded, dropout left out. */
elag_status elag_export_from_checkpoint(const char *ckpt_path, elag_export *out);

/* Converts weight tensor i to `format` (from whatever it is now); other tensors: no-op. */
elag_status elag_export_convert(elag_export *e, int i, elag_sparse_format format, int block);

/* Converts every weight to `format`. */
elag_status elag_export_convert_all(elag_export *e, elag_sparse_format format, int block);

/* Timings of one weight's layer forward for `auto`, the weight in each candidate format
 * (ms, median; negative when the candidate was skipped: a Blocked-ELL larger than dense,
 * or a format the device refuses, which `refused` then names with the reason). */
typedef struct elag_export_timing {
    double dense_ms, csr_ms, bell16_ms, bell32_ms;
    elag_sparse_format chosen;
    int block;
    char refused[256];   /* "bell:16: <why>; bell:32: <why>", or "" */
    char dense_route[8]; /* how the dense candidate ran: "direct" (convolution), "im2col"
                          * (columns + gemm) or "gemm" (linear, 1x1 convolution) */
} elag_export_timing;

/* `--format auto`: builds e as inference does (infer.h, every weight dense) on `be` for
 * `batch` samples, times each weight's layer forward with the weight dense (the layer's own
 * route: a convolution's direct path where the backend has one) and prepared in each sparse
 * format (sparse_mm over the whole batch's columns, im2col included), and converts each
 * weight to its fastest format. timings has one entry per tensor (only weights are filled). */
elag_status elag_export_choose_auto(elag_export *e, elag_backend *be, int batch,
                                    elag_export_timing *timings);

/* After elag_export_choose_auto, the whole net at `batch` as chosen against one format
 * everywhere, the faster kept: an MLP left in mixed formats against every weight CSR (which
 * runs tile-major where the backend can, no repacking between layers, so the chain can beat
 * the sum of its layers' timings); a CNN with any weight not dense against every weight
 * dense (layers timed alone miss what they do to each other). note (size bytes) says what
 * was compared; for an MLP it is "" when the check did not apply, for a CNN it always names
 * the batch and the dense convolutions' routes. */
elag_status elag_export_prefer_csr_chain(elag_export *e, elag_backend *be, int batch,
                                         elag_export_timing *timings, char *note, size_t size);

/* Writes the export atomically (host/io); the layers keep their current formats. */
elag_status elag_export_save(const elag_export *e, const char *path);

/* Reads and validates an export. */
elag_status elag_export_load(const char *path, elag_export *out);

void elag_export_free(elag_export *e); /* NULL safe; zeroes *e */

/* Census over the prunable weights: entries, nonzeros, and sparsity (zeros / entries, 0
 * when there are none). Counts values != 0 in every format. */
void elag_export_sparsity(const elag_export *e, int64_t *params, int64_t *nonzero,
                          double *sparsity);

/* "csr", "dense", "bell:16" for a weight tensor (buf of at least 16 bytes). */
const char *elag_export_tensor_format(const elag_export_tensor *t, char *buf, size_t len);

/* The weights' formats in graph order, comma-separated ("csr,csr,dense"). */
void elag_export_formats(const elag_export *e, char *buf, size_t len);

/* Shared by export.c and export_read.c. */
/* Tensor t as registry entry j of im describes it (name, shape, weight or not), no data. */
void elag_export_tensor_describe(elag_export_tensor *t, const elag_model *im, int j);
/* Fills e->t from an inference model whose tensors are in host memory. */
elag_status elag_export_take_tensors(elag_export *e, const elag_model *im);
/* The "graph" metadata for e built as `im` (malloc'd JSON text, NULL when out of memory). */
char *elag_export_graph_json(const elag_export *e, const elag_model *im);
/* The "thinned" metadata of e->thin (malloc'd JSON text, NULL when out of memory). */
char *elag_export_thin_json(const elag_export *e);
/* "[a, b, c]" */
void elag_export_shape_text(const int64_t *shape, int ndim, char *buf, size_t len);

#endif /* ELAG_SPARSE_EXPORT_H */
