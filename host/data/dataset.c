/*
 * Operations on in-memory datasets (data/dataset.h): normalisation, the tail split
 * used for validation sets, and freeing.
 */
#include "data/dataset.h"

#include "core/check.h"

#include <stdlib.h>
#include <string.h>

void elag_dataset_normalize(elag_dataset *d, float mean, float std)
{
    ELAG_ASSERT(std != 0.0f);
    size_t total = (size_t)d->n * (size_t)d->features;
    for (size_t i = 0; i < total; i++) d->x[i] = (d->x[i] - mean) / std;
}

elag_status elag_dataset_split_tail(elag_dataset *d, long count, elag_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (count < 0 || count > d->n)
        return elag_fail(ELAG_ERR_INPUT,
                         "validation split of %ld examples does not fit a set of %ld", count,
                         d->n);
    size_t feat = (size_t)d->features;
    size_t keep = (size_t)(d->n - count);
    float *x = malloc((size_t)count * feat * sizeof *x + 1); /* (count, features) */
    int32_t *y = malloc((size_t)count * sizeof *y + 1);       /* (count) */
    if (!x || !y) {
        free(x);
        free(y);
        return elag_fail(ELAG_ERR_NOMEM, "validation split: out of memory for %ld examples",
                         count);
    }
    if (count > 0) {
        memcpy(x, d->x + keep * feat, (size_t)count * feat * sizeof *x);
        memcpy(y, d->y + keep, (size_t)count * sizeof *y);
    }
    *out = *d;
    out->n = count;
    out->x = x;
    out->y = y;
    d->n = (long)keep;
    /* Give the tail back; a failed shrink keeps the larger (still valid) block. */
    float *sx = realloc(d->x, keep * feat * sizeof *sx + 1);
    if (sx) d->x = sx;
    int32_t *sy = realloc(d->y, keep * sizeof *sy + 1);
    if (sy) d->y = sy;
    return ELAG_OK;
}

void elag_dataset_free(elag_dataset *d)
{
    if (!d) return;
    free(d->x);
    free(d->y);
    memset(d, 0, sizeof *d);
}
