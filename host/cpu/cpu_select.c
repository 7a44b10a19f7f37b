/*
 * Fast mask_select for the "cpu" backend: prune exactly the k entries with the
 * smallest (score, index), as cpu-ref's sort does, in O(n) and without sorting.
 *
 * Scores are ranked by order-preserving 32-bit keys (elag_cpu_score_key). What we
 * need is T, the key of rank k-1, with `less` (how many keys are below T) and
 * `equal` (how many equal it): the mask then prunes every key < T and, of the keys
 * equal to T, the (k - less) with the lowest indices.
 *
 * Finding T:
 *   1. a sample of 4096 keys (fixed low-discrepancy positions) gives a bracket
 *      [lo, hi] that holds rank k-1 with high probability (3 sigma + slack);
 *   2. one parallel pass counts keys < lo, == lo, == hi and compacts the keys
 *      strictly inside (lo, hi), typically a few per cent of n (counting the ends
 *      apart keeps a mass of ties there, such as the -1 of pruned entries, cheap);
 *   3. radix selection (11 + 11 + 10 bit digits) among those candidates.
 * When the bracket misses (rare), radix selection runs over all n keys instead.
 * The mask is then written with float compares against T, which vectorize.
 */
#include "cpu/cpu_internal.h"

#include "core/check.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define ELAG_SELECT_BINS 2048u        /* 11-bit digits */
#define ELAG_SELECT_SAMPLE 4096u      /* bracket sample size */
#define ELAG_SELECT_SAMPLED_MIN 65536 /* below this, radix over all keys is as cheap */

/* The key of some rank, how many keys lie below it and how many equal it. */
typedef struct elag_select_kth {
    uint32_t key;
    size_t less;
    size_t equal;
} elag_select_kth;

/* Radix selection of the key of 0-based `rank` (< m) among keys[0..m). */
static elag_select_kth elag_select_rank(const uint32_t *keys, size_t m, size_t rank, int threads)
{
    static const int shifts[3] = {21, 10, 0};
    static const uint32_t dmasks[3] = {0x7ffu, 0x7ffu, 0x3ffu};
    size_t hist[ELAG_SELECT_BINS]; /* (bins) */
    uint32_t prefix = 0, pmask = 0;
    elag_select_kth r = {0, 0, 0};
    for (int pass = 0; pass < 3; pass++) {
        const int shift = shifts[pass];
        const uint32_t dmask = dmasks[pass];
        memset(hist, 0, sizeof hist);
#pragma omp parallel num_threads(threads) if (m >= ELAG_CPU_PAR_MIN)
        {
            uint32_t local[ELAG_SELECT_BINS]; /* m < 2^32: checked by the callers */
            memset(local, 0, sizeof local);
#pragma omp for schedule(static) nowait
            for (size_t i = 0; i < m; i++) {
                uint32_t key = keys[i];
                if ((key & pmask) == prefix) local[(key >> shift) & dmask]++;
            }
#pragma omp critical(elag_select_merge)
            for (uint32_t d = 0; d <= dmask; d++) hist[d] += local[d];
        }
        uint32_t d = 0;
        while (rank >= hist[d]) { /* stops inside: the counts sum to more than rank */
            rank -= hist[d];
            r.less += hist[d];
            d++;
        }
        prefix |= d << shift;
        pmask |= dmask << shift;
        r.equal = hist[d];
    }
    r.key = prefix;
    return r;
}

static float elag_select_key_score(uint32_t key)
{
    uint32_t u = (key & 0x80000000u) ? key ^ 0x80000000u : ~key;
    float s;
    memcpy(&s, &u, sizeof s);
    return s;
}

/* mask = 0 where key < kth.key and for the first `take` entries (by index) whose key
 * equals kth.key; 1 elsewhere. */
static void elag_select_fill(float *mask, const float *score, size_t n, elag_select_kth kth,
                             size_t take, int threads)
{
    ELAG_ASSERT(take >= 1 && take <= kth.equal);
    if (kth.key == UINT32_MAX) { /* T is NaN: float compares cannot see it, use keys */
        size_t end = n, seen = 0;
        for (size_t i = 0; i < n && take < kth.equal; i++)
            if (isnan(score[i]) && ++seen == take) {
                end = i + 1;
                break;
            }
#pragma omp parallel for num_threads(threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) mask[i] = !isnan(score[i]) || i < end ? 0.0f : 1.0f;
        return;
    }
    /* a float compare with t gives the key order: -0 == +0, NaN above every t */
    const float t = elag_select_key_score(kth.key);
    size_t end = n; /* ties before `end` are pruned, ties from `end` on are kept */
    if (take < kth.equal) {
        size_t seen = 0;
        for (size_t i = 0; i < n; i++)
            if (score[i] == t && ++seen == take) {
                end = i + 1;
                break;
            }
    }
#pragma omp parallel num_threads(threads) if (n >= ELAG_CPU_PAR_MIN)
    {
#pragma omp for schedule(static) nowait
        for (size_t i = 0; i < end; i++) mask[i] = score[i] <= t ? 0.0f : 1.0f;
#pragma omp for schedule(static) nowait
        for (size_t i = end; i < n; i++) mask[i] = score[i] < t ? 0.0f : 1.0f;
    }
}

static elag_status elag_select_workspace(elag_backend *b, size_t n, uint32_t **out)
{
    elag_cpu_ctx *ctx = b->ctx;
    ELAG_ASSERT(ctx != NULL);
    if (ctx->keys_cap < n) {
        free(ctx->keys);
        ctx->keys = malloc(n * sizeof *ctx->keys);
        ctx->keys_cap = ctx->keys ? n : 0;
        if (ctx->keys == NULL)
            return elag_fail(ELAG_ERR_NOMEM, "mask_select: out of host memory (%zu keys)", n);
    }
    *out = ctx->keys;
    return ELAG_OK;
}

/* Does k = 0 and k = n; *done says whether the mask is written. k <= n was checked by the
 * wrapper; the 2^32 limit is this implementation's (32-bit keys and counts), which
 * elag_cpu_supports reports too. */
static elag_status elag_select_begin(elag_backend *b, float *mask, size_t n, size_t k, int *done)
{
    *done = 1;
    if (n > UINT32_MAX)
        return elag_fail(ELAG_ERR_UNSUPPORTED, "mask_select: %zu entries is over 2^32", n);
    if (k == 0 || k == n) {
        const float v = k == 0 ? 1.0f : 0.0f;
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
        for (size_t i = 0; i < n; i++) mask[i] = v;
        return ELAG_OK;
    }
    *done = 0;
    return ELAG_OK;
}

elag_status elag_cpu_mask_select_radix(elag_backend *b, float *mask, const float *score, size_t n,
                                       size_t k)
{
    int done;
    uint32_t *keys = NULL; /* (n) */
    ELAG_TRY(elag_select_begin(b, mask, n, k, &done));
    if (done) return ELAG_OK;
    ELAG_TRY(elag_select_workspace(b, n, &keys));
#pragma omp parallel for num_threads(b->threads) if (n >= ELAG_CPU_PAR_MIN) schedule(static)
    for (size_t i = 0; i < n; i++) keys[i] = elag_cpu_score_key(score[i]);
    elag_select_kth kth = elag_select_rank(keys, n, k - 1, b->threads);
    elag_select_fill(mask, score, n, kth, k - kth.less, b->threads);
    return ELAG_OK;
}

/* Steps 1-3 of the file comment; *found = 0 when rank k-1 is outside the bracket. */
static void elag_select_sampled(elag_backend *b, const float *score, size_t n, size_t k,
                                uint32_t *keys, elag_select_kth *kth, int *found)
{
    const size_t S = ELAG_SELECT_SAMPLE;
    const int threads = b->threads;
    size_t *seg = ((elag_cpu_ctx *)b->ctx)->seg; /* (threads, 4) */

    /* 1. sample at frac(j * golden ratio) * n: spread evenly, no period to alias with
     * the rows of a weight matrix */
    for (size_t j = 0; j < S; j++) {
        uint64_t x = (uint64_t)j * 0x9E3779B97F4A7C15ull;
        keys[j] = elag_cpu_score_key(score[((x >> 32) * (uint64_t)n) >> 32]);
    }
    double p = (double)k / (double)n;
    size_t at = (size_t)((double)(k - 1) * (double)S / (double)n);
    size_t delta = (size_t)ceil(3.0 * sqrt((double)S * p * (1.0 - p))) + 16;
    uint32_t lo = 0, hi = UINT32_MAX; /* no key is 0; UINT32_MAX is NaN, above all */
    if (at >= delta) lo = elag_select_rank(keys, S, at - delta, 1).key;
    if (at + delta < S) hi = elag_select_rank(keys, S, at + delta, 1).key;

    /* 2. count below and at the ends, compact the inside into each thread's own range
     * [first, last) of keys, then close the gaps */
    int team = 1;
#pragma omp parallel num_threads(threads) if (n >= ELAG_CPU_PAR_MIN)
    {
        size_t nt = (size_t)omp_get_num_threads(), t = (size_t)omp_get_thread_num();
        size_t first = n * t / nt, last = n * (t + 1) / nt;
        size_t below = 0, at_lo = 0, at_hi = 0, inside = 0;
        uint32_t *out = keys + first;
        for (size_t i = first; i < last; i++) {
            uint32_t key = elag_cpu_score_key(score[i]);
            below += key < lo;
            at_lo += key == lo;
            at_hi += key == hi;
            out[inside] = key; /* inside <= i - first: stays in this thread's range */
            inside += key > lo && key < hi;
        }
        seg[4 * t + 0] = below;
        seg[4 * t + 1] = at_lo;
        seg[4 * t + 2] = at_hi;
        seg[4 * t + 3] = inside;
        if (t == 0) team = (int)nt;
    }
    size_t below = 0, at_lo = 0, at_hi = 0, inside = 0;
    for (int t = 0; t < team; t++) {
        size_t first = n * (size_t)t / (size_t)team;
        below += seg[4 * t + 0];
        at_lo += seg[4 * t + 1];
        at_hi += seg[4 * t + 2];
        memmove(keys + inside, keys + first, seg[4 * t + 3] * sizeof *keys);
        inside += seg[4 * t + 3];
    }
    if (lo == hi) at_hi = 0; /* counted twice */

    /* 3. where does rank k-1 fall? */
    size_t rank = k - 1;
    *found = 1;
    if (rank < below) {
        *found = 0;
    } else if ((rank -= below) < at_lo) {
        *kth = (elag_select_kth){lo, below, at_lo};
    } else if ((rank -= at_lo) < inside) {
        elag_select_kth r = elag_select_rank(keys, inside, rank, threads);
        *kth = (elag_select_kth){r.key, below + at_lo + r.less, r.equal};
    } else if ((rank -= inside) < at_hi) {
        *kth = (elag_select_kth){hi, below + at_lo + inside, at_hi};
    } else {
        *found = 0;
    }
}

elag_status elag_cpu_mask_select_fast(elag_backend *b, float *mask, const float *score, size_t n,
                                      size_t k)
{
    int done, found = 0;
    uint32_t *keys = NULL; /* (n) */
    elag_select_kth kth = {0, 0, 0};
    if (n < ELAG_SELECT_SAMPLED_MIN) return elag_cpu_mask_select_radix(b, mask, score, n, k);
    ELAG_TRY(elag_select_begin(b, mask, n, k, &done));
    if (done) return ELAG_OK;
    ELAG_TRY(elag_select_workspace(b, n, &keys));
    elag_select_sampled(b, score, n, k, keys, &kth, &found);
    if (!found) return elag_cpu_mask_select_radix(b, mask, score, n, k);
    elag_select_fill(mask, score, n, kth, k - kth.less, b->threads);
    return ELAG_OK;
}
