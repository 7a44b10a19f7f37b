/*
 * `data.dataset: npy`: the user's own data as four .npy files in the folder data.path
 * (fixed names, so the config needs one key, as for IDX): train_x.npy, train_y.npy,
 * test_x.npy, test_y.npy. X is float32 or float64 (io/npy.h), of shape (N, features),
 * (N, H, W) (one channel) or (N, C, H, W), C order; y holds N integer labels in [0, 2^31).
 * The number of classes is the largest label of train_y and test_y plus one, read from
 * both files whichever set is loaded, so that training, evaluation and inference on the
 * same folder agree on it. Normalisation is the caller's (train/run_data.c).
 */
#define _POSIX_C_SOURCE 200809L
#include "data/dataset.h"

#include "core/check.h"
#include "io/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Far above any classifier's; it keeps a stray huge label from sizing the last layer. */
#define ELAG_NPY_DATASET_MAX_CLASSES (1 << 20)

static elag_status npy_path(const char *dir, const char *name, char *path, size_t cap)
{
    int len = snprintf(path, cap, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= cap)
        return elag_fail(ELAG_ERR_INPUT, "npy dataset: folder name too long: %s", dir);
    return ELAG_OK;
}

/* Reads "<dir>/<set>_y.npy" into *y (1-D labels, each in [0, 2^31)), its path into path. */
static elag_status load_labels(const char *dir, const char *set, elag_npy_array *y, char *path,
                               size_t cap)
{
    char name[32];
    snprintf(name, sizeof name, "%s_y.npy", set);
    ELAG_TRY(npy_path(dir, name, path, cap));
    ELAG_TRY(elag_npy_read(path, ELAG_NPY_AS_I64, y));
    if (y->ndim != 1)
        return elag_fail(ELAG_ERR_INPUT, "%s: labels must be 1-D (N), got %d dimensions", path,
                         y->ndim);
    for (size_t i = 0; i < y->count; i++)
        if (y->i64[i] < 0 || y->i64[i] > INT32_MAX)
            return elag_fail(ELAG_ERR_INPUT, "%s: labels[%zu] is %lld, outside [0, 2^31)", path, i,
                             (long long)y->i64[i]);
    return ELAG_OK;
}

static long max_label(const elag_npy_array *y)
{
    long m = -1;
    for (size_t i = 0; i < y->count; i++)
        if (y->i64[i] > m) m = (long)y->i64[i];
    return m;
}

elag_status elag_npy_dataset_load(const char *dir, int train, long limit, elag_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (!dir || !dir[0]) return elag_fail(ELAG_ERR_INPUT, "npy dataset: data.path is empty");
    const char *set = train ? "train" : "test";
    char xpath[4096], ypath[4096], other_path[4096];
    elag_npy_array x, y, other;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    memset(&other, 0, sizeof other);
    elag_status st;
    ELAG_TRY_GOTO(st, load_labels(dir, set, &y, ypath, sizeof ypath), done);
    ELAG_TRY_GOTO(st,
                  load_labels(dir, train ? "test" : "train", &other, other_path, sizeof other_path),
                  done);
    long top = max_label(&y) > max_label(&other) ? max_label(&y) : max_label(&other);
    if (top >= ELAG_NPY_DATASET_MAX_CLASSES) {
        st = elag_fail(ELAG_ERR_INPUT,
                       "%s: label %ld means %ld classes; at most %d are "
                       "supported",
                       top == max_label(&y) ? ypath : other_path, top, top + 1,
                       ELAG_NPY_DATASET_MAX_CLASSES);
        goto done;
    }
    if (top < 1) {
        st = elag_fail(ELAG_ERR_INPUT,
                       "%s: the labels name %ld class%s; a classifier needs 2 "
                       "or more",
                       ypath, top + 1, top == 0 ? "" : "es");
        goto done;
    }
    char name[32];
    snprintf(name, sizeof name, "%s_x.npy", set);
    ELAG_TRY_GOTO(st, npy_path(dir, name, xpath, sizeof xpath), done);
    ELAG_TRY_GOTO(st, elag_npy_read(xpath, ELAG_NPY_AS_F32, &x), done);
    if (x.ndim < 2 || x.ndim > 4) {
        st = elag_fail(ELAG_ERR_INPUT,
                       "%s: features must be (N, features), (N, H, W) or "
                       "(N, C, H, W), got %d dimensions",
                       xpath, x.ndim);
        goto done;
    }
    if (x.shape[0] != y.shape[0]) {
        st = elag_fail(ELAG_ERR_INPUT, "%s has %lld samples but %s has %lld labels", xpath,
                       (long long)x.shape[0], ypath, (long long)y.shape[0]);
        goto done;
    }
    int64_t dims[3] = {1, 1, 1}; /* (C, H, W); flat features as (1, 1, F) like synthetic sets */
    int64_t features = 1;
    for (int i = 1; i < x.ndim; i++) {
        dims[3 - x.ndim + i] = x.shape[i];
        /* each factor <= 2^30 before the product: no overflow even when N is 0 */
        features = x.shape[i] > (1 << 30) ? (1LL << 31) : features * x.shape[i];
        if (features > (1 << 30)) break;
    }
    if (features < 1 || features > (1 << 30) || x.shape[0] < 1 || x.shape[0] > INT32_MAX) {
        st = elag_fail(ELAG_ERR_INPUT,
                       "%s: shape needs 1..2^31 - 1 samples of 1..2^30 "
                       "features",
                       xpath);
        goto done;
    }
    long n = (long)x.shape[0];
    if (limit > 0 && limit < n) n = limit;
    out->y = malloc((size_t)n * sizeof *out->y);
    if (!out->y) {
        st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory for %ld labels", ypath, n);
        goto done;
    }
    for (long i = 0; i < n; i++) out->y[i] = (int32_t)y.i64[i];
    out->n = n;
    out->features = (int)features;
    out->channels = (int)dims[0];
    out->height = (int)dims[1];
    out->width = (int)dims[2];
    out->classes = (int)(top + 1);
    out->x = x.f32; /* (N, features) row-major; the rows past a limit are unused */
    x.f32 = NULL;
    st = ELAG_OK;
done:
    elag_npy_free(&x);
    elag_npy_free(&y);
    elag_npy_free(&other);
    if (st != ELAG_OK) elag_dataset_free(out);
    return st;
}
