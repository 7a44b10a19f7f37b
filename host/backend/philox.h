/*
 * Philox4x32-10 counter-based generator (Salmon et al., SC'11), written once and
 * compiled by both the C host code and nvcc, so the same seed gives bit-identical
 * numbers on the CPU and the GPU. A draw is a pure function of (key, counter):
 * element i of a tensor uses counter (i / 4, stream, 0, 0) and word i % 4, so any
 * thread can produce any element without shared state.
 */
#ifndef ELAG_BACKEND_PHILOX_H
#define ELAG_BACKEND_PHILOX_H

#include <stdint.h>

#if defined(__CUDACC__)
#define ELAG_HD __host__ __device__ static inline
#else
#define ELAG_HD static inline
#endif

typedef struct elag_philox_ctr {
    uint32_t v[4];
} elag_philox_ctr;

ELAG_HD uint32_t elag_philox_mulhi(uint32_t a, uint32_t b)
{
    return (uint32_t)(((uint64_t)a * (uint64_t)b) >> 32);
}

ELAG_HD elag_philox_ctr elag_philox4x32_10(elag_philox_ctr c, uint64_t key64)
{
    const uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
    const uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
    uint32_t k0 = (uint32_t)key64, k1 = (uint32_t)(key64 >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0 = elag_philox_mulhi(m0, c.v[0]), lo0 = m0 * c.v[0];
        uint32_t hi1 = elag_philox_mulhi(m1, c.v[2]), lo1 = m1 * c.v[2];
        elag_philox_ctr n;
        n.v[0] = hi1 ^ c.v[1] ^ k0;
        n.v[1] = lo1;
        n.v[2] = hi0 ^ c.v[3] ^ k1;
        n.v[3] = lo0;
        c = n;
        k0 += w0;
        k1 += w1;
    }
    return c;
}

/* Uniform 32-bit word for element `index` of stream `stream` under `seed`. */
ELAG_HD uint32_t elag_philox_u32(uint64_t seed, uint64_t stream, uint64_t index)
{
    elag_philox_ctr c;
    c.v[0] = (uint32_t)(index >> 2);
    c.v[1] = (uint32_t)(index >> 34);
    c.v[2] = (uint32_t)stream;
    c.v[3] = (uint32_t)(stream >> 32);
    elag_philox_ctr r = elag_philox4x32_10(c, seed);
    return r.v[index & 3u];
}

/* Uniform float in [0, 1) with 24 random bits: exact in float on every device. */
ELAG_HD float elag_philox_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    return (float)(elag_philox_u32(seed, stream, index) >> 8) * (1.0f / 16777216.0f);
}

/* Streams: fixed purposes so two uses of one seed never share numbers. */
#define ELAG_STREAM_INIT_BASE 0x1000u /* + parameter tensor index */
#define ELAG_STREAM_SHUFFLE 0x2000u   /* + epoch (high bits) */
#define ELAG_STREAM_SPLIT 0x3000u
#define ELAG_STREAM_PRUNE_RANDOM 0x4000u
#define ELAG_STREAM_SYNTHETIC 0x5000u
#define ELAG_STREAM_DROPOUT 0x6000u

#endif /* ELAG_BACKEND_PHILOX_H */
