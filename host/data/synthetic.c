/*
 * A learnable synthetic classification set for tests and quick runs. Every number
 * is a pure function of (seed, index) through Philox, so example i of a set is the
 * same whatever n or offset the caller asked for, and train and test sets drawn
 * from one seed with different offsets are disjoint examples of one distribution.
 *
 * Streams: ELAG_STREAM_SYNTHETIC holds class centres (index c * features + j);
 * ELAG_STREAM_SYNTHETIC + 1 holds noise, two uniforms per value (Box-Muller) at
 * index 2 * (g * features + j), where g = offset + i is the global example index.
 */
#include "data/dataset.h"

#include "backend/philox.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SYNTH_STREAM_CENTRES ((uint64_t)ELAG_STREAM_SYNTHETIC)
#define SYNTH_STREAM_NOISE ((uint64_t)ELAG_STREAM_SYNTHETIC + 1)

/* Standard normal from two uniforms of the noise stream (Box-Muller, cosine half). */
static double synth_gauss(uint64_t seed, uint64_t k)
{
    const double two_pi = 6.283185307179586476925286766559;
    double u1 = 1.0 - (double)elag_philox_uniform(seed, SYNTH_STREAM_NOISE, 2 * k); /* (0, 1] */
    double u2 = (double)elag_philox_uniform(seed, SYNTH_STREAM_NOISE, 2 * k + 1);
    return sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
}

elag_status elag_synthetic_make(long n, int features, int classes, double noise, uint64_t seed,
                                long offset, elag_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (n < 0 || features < 1 || classes < 1 || !(noise >= 0.0) || offset < 0)
        return elag_fail(ELAG_ERR_INPUT,
                         "synthetic: invalid request (n %ld, features %d, classes %d, noise %g, "
                         "offset %ld)",
                         n, features, classes, noise, offset);
    size_t nx = (size_t)n * (size_t)features;
    if ((size_t)n > SIZE_MAX / sizeof(float) / (size_t)features)
        return elag_fail(ELAG_ERR_NOMEM, "synthetic: %ld x %d does not fit in memory", n,
                         features);
    float *centres = malloc((size_t)classes * (size_t)features * sizeof *centres);
    float *x = malloc(nx * sizeof *x + 1);        /* (n, features) */
    int32_t *y = malloc((size_t)n * sizeof *y + 1); /* (n) */
    if (!centres || !x || !y) {
        free(centres);
        free(x);
        free(y);
        return elag_fail(ELAG_ERR_NOMEM, "synthetic: out of memory for %ld examples", n);
    }
    for (size_t k = 0; k < (size_t)classes * (size_t)features; k++)
        centres[k] = 2.0f * elag_philox_uniform(seed, SYNTH_STREAM_CENTRES, k) - 1.0f; /* [-1,1) */
    for (long i = 0; i < n; i++) {
        uint64_t g = (uint64_t)offset + (uint64_t)i;
        int c = (int)(g % (uint64_t)classes);
        y[i] = c;
        const float *ctr = centres + (size_t)c * (size_t)features;
        float *xi = x + (size_t)i * (size_t)features;
        uint64_t k0 = g * (uint64_t)features;
        for (int j = 0; j < features; j++)
            xi[j] = (float)(ctr[j] + noise * synth_gauss(seed, k0 + (uint64_t)j));
    }
    free(centres);
    out->n = n;
    out->features = features;
    out->channels = 1;
    out->height = 1;
    out->width = features;
    out->classes = classes;
    out->x = x;
    out->y = y;
    return ELAG_OK;
}
