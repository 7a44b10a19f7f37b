/*
 * Private to host/cpu/: what the naive reference (cpu_ref.c) and the fast path
 * (cpu_fast.c, cpu_select.c) share. Only plumbing lives here (host memory, argument
 * checks, the order on scores); the maths of each op is written separately in
 * each backend so that the fast path can be tested against the reference.
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

/* Argument checks: a failing status with a message naming `op`. */
elag_status elag_cpu_check_gemm(int trans_a, int trans_b, int m, int n, int k, int lda, int ldb,
                                int ldc);
elag_status elag_cpu_check_xent(const int32_t *labels, int rows, int cols);
elag_status elag_cpu_check_dims(const char *op, int rows, int cols);

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

#endif /* ELAG_CPU_CPU_INTERNAL_H */
