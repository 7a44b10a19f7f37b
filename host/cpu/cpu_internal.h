/*
 * Private to host/cpu/: what the naive reference (cpu_ref.c, cpu_ref_layers.c) and the
 * fast path (cpu_fast.c, cpu_select.c, cpu_layers.c) share. Only plumbing lives here
 * (host memory, the label check, supports(), the order on scores, the layer ops' entry
 * points); the maths of each op is written separately in each backend so that the fast
 * path can be tested against the reference.
 */
#ifndef ELAG_CPU_CPU_INTERNAL_H
#define ELAG_CPU_CPU_INTERNAL_H

#include "backend/backend.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Below this many elements a loop runs on one thread: starting the team costs more. */
#define ELAG_CPU_PAR_MIN 32768
/* Products with m*n*k below this run on one thread: splitting costs more than it saves. */
#define ELAG_CPU_GEMM_PAR_MIN 262144.0

/* Host memory ops shared by both CPU backends ("device" memory is host memory).
 * alloc returns 64-byte aligned, zeroed memory, released with free(). */
elag_status elag_cpu_alloc(elag_backend *b, size_t bytes, void **out);
void elag_cpu_release(elag_backend *b, void *p);
elag_status elag_cpu_to_device(elag_backend *b, void *dst, const void *src_host, size_t bytes);
elag_status elag_cpu_to_host(elag_backend *b, void *dst_host, const void *src, size_t bytes);
elag_status elag_cpu_copy(elag_backend *b, void *dst, const void *src, size_t bytes);
elag_status elag_cpu_sync(elag_backend *b);
/* Frees b and, when not NULL, its elag_cpu_ctx (cpu-ref has none: its ctx is NULL). */
void elag_cpu_destroy(elag_backend *b);

/* State of the fast backend (b->ctx): mask_select's workspace, grown on demand. Like
 * a CUDA stream, one backend is used by one host thread at a time. */
typedef struct elag_cpu_ctx {
    uint32_t *keys;      /* (keys_cap) score keys or selection candidates */
    size_t keys_cap;
    size_t *seg;         /* (4 * threads) per-thread counts of one selection pass */
} elag_cpu_ctx;

/* The arguments of every entry were checked by the wrappers (backend_ops.c). What stays
 * here reads data: xent's labels(rows) in [0, cols), else ELAG_ERR_INPUT (cpu_ref.c). */
elag_status elag_cpu_check_labels(const int32_t *labels, int rows, int cols);

/* supports() of both CPU backends (cpu_ref.c): every op, but for the limits named there. */
elag_support elag_cpu_supports(elag_backend *b, elag_op op, const elag_op_query *q, char *why,
                               size_t why_len);

/* The layer ops of cpu-ref (cpu_ref_layers.c): the specification. */
elag_status elag_cpu_ref_transpose(elag_backend *b, float *dst, const float *src, int batch,
                                   int rows, int cols, int inner);
elag_status elag_cpu_ref_im2col(elag_backend *b, float *col, const float *x, int C, int N, int n0,
                                int nb, const elag_window *g);
elag_status elag_cpu_ref_col2im(elag_backend *b, float *dx, const float *col, int C, int N,
                                int n0, int nb, const elag_window *g);
elag_status elag_cpu_ref_pool_forward(elag_backend *b, elag_pool_mode mode, float *y,
                                      int32_t *argmax, const float *x, int planes,
                                      const elag_window *g);
elag_status elag_cpu_ref_pool_backward(elag_backend *b, elag_pool_mode mode, float *dx,
                                       const float *dy, const int32_t *argmax, int planes,
                                       const elag_window *g);
elag_status elag_cpu_ref_batchnorm_forward(elag_backend *b, int flags, float *y,
                                           const float *x, int C, int L, const float *gamma,
                                           const float *beta, float *run_mean, float *run_var,
                                           float momentum, float eps, float *save_mean,
                                           float *save_invstd);
elag_status elag_cpu_ref_batchnorm_backward(elag_backend *b, float *dx, float *dgamma,
                                            float *dbeta, const float *dy, const float *x, int C,
                                            int L, const float *gamma, const float *save_mean,
                                            const float *save_invstd);
elag_status elag_cpu_ref_dropout_forward(elag_backend *b, float *y, float *keep, const float *x,
                                         size_t n, float p, uint64_t seed, uint64_t stream,
                                         uint64_t offset);

elag_status elag_cpu_ref_conv_forward(elag_backend *b, float *y, const float *x, const float *w,
                                      int C, int O, int N, int n0, int nb, const elag_window *g,
                                      float *work);
elag_status elag_cpu_ref_conv_backward_data(elag_backend *b, float *dx, const float *dy,
                                            const float *w, int C, int O, int N, int n0, int nb,
                                            const elag_window *g, float *work);
elag_status elag_cpu_ref_conv_backward_filter(elag_backend *b, float *dw, const float *dy,
                                              const float *x, int C, int O, int N, int n0, int nb,
                                              const elag_window *g, float beta, float *work);
/* The same ops on the fast backend (cpu_layers.c). */
/* dst (cols, rows) = src (rows, cols)^T on the calling thread (no OpenMP region): 16 x 16
 * tiles in AVX-512 registers where the CPU has it, the rest element by element. */
void elag_cpu_transpose_serial(float *dst, const float *src, int rows, int cols);
elag_status elag_cpu_fast_transpose(elag_backend *b, float *dst, const float *src, int batch,
                                    int rows, int cols, int inner);
elag_status elag_cpu_fast_im2col(elag_backend *b, float *col, const float *x, int C, int N,
                                 int n0, int nb, const elag_window *g);
elag_status elag_cpu_fast_col2im(elag_backend *b, float *dx, const float *col, int C, int N,
                                 int n0, int nb, const elag_window *g);
elag_status elag_cpu_fast_pool_forward(elag_backend *b, elag_pool_mode mode, float *y,
                                       int32_t *argmax, const float *x, int planes,
                                       const elag_window *g);
elag_status elag_cpu_fast_pool_backward(elag_backend *b, elag_pool_mode mode, float *dx,
                                        const float *dy, const int32_t *argmax, int planes,
                                        const elag_window *g);
elag_status elag_cpu_fast_batchnorm_forward(elag_backend *b, int flags, float *y,
                                            const float *x, int C, int L, const float *gamma,
                                            const float *beta, float *run_mean, float *run_var,
                                            float momentum, float eps, float *save_mean,
                                            float *save_invstd);
elag_status elag_cpu_fast_batchnorm_backward(elag_backend *b, float *dx, float *dgamma,
                                             float *dbeta, const float *dy, const float *x, int C,
                                             int L, const float *gamma, const float *save_mean,
                                             const float *save_invstd);
elag_status elag_cpu_fast_dropout_forward(elag_backend *b, float *y, float *keep, const float *x,
                                          size_t n, float p, uint64_t seed, uint64_t stream,
                                          uint64_t offset);

/* The order mask_select ranks scores by, as an unsigned key: key(a) < key(b) exactly when
 * a < b as floats, -0 and +0 are one value, and every NaN ranks above +inf (so a NaN
 * score is pruned last). The reference sorts by the same rule, written on floats. */
static inline uint32_t elag_cpu_score_key(float s)
{
    uint32_t u;
    memcpy(&u, &s, sizeof u);
    /* negative: flip all bits; positive: flip the sign bit (branch-free, so it vectorizes) */
    uint32_t key = u ^ ((0u - (u >> 31)) | 0x80000000u);
    key = u == 0x80000000u ? 0x80000000u : key;               /* -0 ranks as +0 */
    key = (u & 0x7fffffffu) > 0x7f800000u ? UINT32_MAX : key; /* NaN above +inf */
    return key;
}

/* Fast mask_select (cpu_select.c), O(n): a sampled bracket around the k-th key, radix
 * selection among the entries inside it, radix selection over all keys when the
 * bracket misses. */
elag_status elag_cpu_mask_select_fast(elag_backend *b, float *mask, const float *score, size_t n,
                                      size_t k);
/* The same without the sampled bracket (radix selection over all keys): the fallback,
 * exposed so the tests can check it on its own. */
elag_status elag_cpu_mask_select_radix(elag_backend *b, float *mask, const float *score, size_t n,
                                       size_t k);

/* The direct convolution of the fast backend (cpu_conv.c): AVX-512 kernels, so only where
 * the CPU has AVX-512F; conv_direct_ok says whether it runs g (why gets the reason if not). */
int elag_cpu_conv_direct_ok(const elag_window *g, char *why, size_t why_len);
elag_status elag_cpu_fast_conv_forward(elag_backend *b, float *y, const float *x, const float *w,
                                       int C, int O, int N, int n0, int nb, const elag_window *g,
                                       float *work);
elag_status elag_cpu_fast_conv_backward_data(elag_backend *b, float *dx, const float *dy,
                                             const float *w, int C, int O, int N, int n0, int nb,
                                             const elag_window *g, float *work);
elag_status elag_cpu_fast_conv_backward_filter(elag_backend *b, float *dw, const float *dy,
                                               const float *x, int C, int O, int N, int n0,
                                               int nb, const elag_window *g, float beta,
                                               float *work);

#endif /* ELAG_CPU_CPU_INTERNAL_H */
