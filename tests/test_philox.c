/*
 * Tests of the Philox4x32-10 generator (host/backend/philox.h): Random123's
 * known-answer vectors, the element -> (counter, word) layout both backends rely
 * on, and sanity of the uniform floats built on it.
 */
#include "backend/philox.h"

#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>

static void expect_kat(elag_philox_ctr c, uint32_t k0, uint32_t k1, const uint32_t want[4])
{
    uint64_t key = (uint64_t)k0 | ((uint64_t)k1 << 32);
    elag_philox_ctr got = elag_philox4x32_10(c, key);
    for (int j = 0; j < 4; j++)
        cr_expect_eq(got.v[j], want[j], "word %d: got 0x%08x, want 0x%08x", j, got.v[j],
                     want[j]);
}

Test(philox, kat_zero)
{
    elag_philox_ctr c = {{0, 0, 0, 0}};
    const uint32_t want[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    expect_kat(c, 0, 0, want);
}

Test(philox, kat_all_ones)
{
    elag_philox_ctr c = {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}};
    const uint32_t want[4] = {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu};
    expect_kat(c, 0xffffffffu, 0xffffffffu, want);
}

Test(philox, kat_pi_digits)
{
    elag_philox_ctr c = {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
    const uint32_t want[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    expect_kat(c, 0xa4093822u, 0x299f31d0u, want);
}

/* element i of stream s uses counter (i/4 low, i/4 high, s low, s high) and word i%4 */
Test(philox, element_layout)
{
    const uint64_t seed = 0x0123456789abcdefull, stream = 0x100000007ull;
    const uint64_t idx[] = {0, 1, 2, 3, 4, 5, 1023, (1ull << 34) + 6, (1ull << 40) + 3};
    for (size_t t = 0; t < sizeof idx / sizeof idx[0]; t++) {
        uint64_t i = idx[t];
        elag_philox_ctr c = {{(uint32_t)(i >> 2), (uint32_t)(i >> 34), (uint32_t)stream,
                              (uint32_t)(stream >> 32)}};
        uint32_t want = elag_philox4x32_10(c, seed).v[i & 3];
        cr_expect_eq(elag_philox_u32(seed, stream, i), want, "index %llu", (unsigned long long)i);
    }
}

Test(philox, streams_and_seeds_differ)
{
    int same_stream = 0, same_seed = 0;
    for (uint64_t i = 0; i < 1000; i++) {
        same_stream += elag_philox_u32(7, 1, i) == elag_philox_u32(7, 2, i);
        same_seed += elag_philox_u32(7, 1, i) == elag_philox_u32(8, 1, i);
    }
    /* a 32-bit collision among 1000 draws is ~2e-7 likely per pair; allow one */
    cr_expect_leq(same_stream, 1);
    cr_expect_leq(same_seed, 1);
}

Test(philox, uniform_range_and_moments)
{
    const size_t n = 1u << 20;
    double sum = 0.0, sum_sq = 0.0;
    float lo = 1.0f, hi = 0.0f;
    size_t below_half = 0;
    for (size_t i = 0; i < n; i++) {
        float u = elag_philox_uniform(42, ELAG_STREAM_INIT_BASE, i);
        cr_assert(u >= 0.0f && u < 1.0f, "uniform %zu = %.9g outside [0, 1)", i, (double)u);
        /* the top 24 bits of the word, exactly (so every device gives the same float, and
         * the largest word, 24 ones, gives 1 - 2^-24 < 1; a float product of the whole
         * 32-bit word would round up to 1.0 for words near 2^32) */
        uint32_t w = elag_philox_u32(42, ELAG_STREAM_INIT_BASE, i);
        cr_assert_eq((double)u, (double)(w >> 8) / 16777216.0,
                     "uniform %zu = %.9g is not the top 24 bits of word 0x%08x", i, (double)u, w);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        sum += u;
        sum_sq += (double)u * u;
        below_half += u < 0.5f;
    }
    double mean = sum / n, var = sum_sq / n - mean * mean;
    /* standard error of the mean is 0.289 / 1024 = 2.8e-4: 5e-3 is > 15 sigma */
    cr_expect(fabs(mean - 0.5) < 5e-3, "mean %.6f", mean);
    cr_expect(fabs(var - 1.0 / 12.0) < 5e-3, "variance %.6f", var);
    cr_expect(fabs((double)below_half / n - 0.5) < 5e-3, "fraction below 0.5: %zu", below_half);
    cr_expect(lo < 1e-4f && hi > 1.0f - 1e-4f, "range [%.6g, %.6g]", (double)lo, (double)hi);
}
