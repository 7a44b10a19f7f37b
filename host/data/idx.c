/*
 * IDX reader (the MNIST / Fashion-MNIST container): a big-endian header (magic,
 * then one u32 per dimension) followed by u8 data. zlib's gzread reads gzip'd and
 * plain files alike. Both headers are checked against each other before any pixel
 * is read; pixels are scaled to [0, 1] while streaming, so no second full-size
 * buffer is needed. A header is untrusted: a plain file must be as long as its header
 * says, and the buffers grow with the data that actually arrives, so a header claiming
 * more than the file holds is a truncated file (bad input), never "out of memory".
 */
#define _POSIX_C_SOURCE 200809L
#include "data/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_CLASSES 10
#define IDX_MAX_FEATURES (1 << 24) /* rows * cols sanity bound: 16M pixels per image */

typedef struct idx_stream {
    gzFile gz;
    const char *path;
} idx_stream;

static elag_status idx_open(idx_stream *s, const char *path)
{
    s->path = path;
    errno = 0;
    s->gz = gzopen(path, "rb");
    if (!s->gz) {
        int err = errno;
        if (err == ENOENT)
            return elag_fail(ELAG_ERR_INPUT, "%s: cannot open: %s", path, strerror(err));
        if (err == 0) return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory opening", path);
        return elag_fail(ELAG_ERR_IO, "%s: cannot open: %s", path, strerror(err));
    }
    return ELAG_OK;
}

static void idx_close(idx_stream *s)
{
    if (s->gz) gzclose(s->gz);
    s->gz = NULL;
}

/* Reads up to `len` bytes; *got is what arrived before end of file. A read error or
 * corrupt gzip data fails; a short count is left to the caller to report. */
static elag_status idx_read(idx_stream *s, void *buf, size_t len, size_t *got)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < len) {
        size_t want = len - *got;
        if (want > (size_t)INT_MAX / 2) want = (size_t)INT_MAX / 2;
        int n = gzread(s->gz, p + *got, (unsigned)want);
        if (n < 0) {
            int zerr;
            const char *msg = gzerror(s->gz, &zerr);
            if (zerr == Z_ERRNO)
                return elag_fail(ELAG_ERR_IO, "%s: read failed: %s", s->path, strerror(errno));
            return elag_fail(ELAG_ERR_INPUT, "%s: corrupt gzip data: %s", s->path, msg);
        }
        if (n == 0) break;
        *got += (size_t)n;
    }
    /* A gzip stream cut short reads as end of file with Z_BUF_ERROR set; the short
     * count tells the caller it is truncated. */
    return ELAG_OK;
}

static uint32_t be32(const unsigned char *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

/* Reads and checks a header of 4 + 4 * ndim bytes; dims[] gets the dimensions. */
static elag_status idx_header(idx_stream *s, uint32_t magic, const char *kind, int ndim,
                              uint32_t *dims)
{
    unsigned char h[16];
    size_t want = 4 + 4 * (size_t)ndim, got;
    elag_status st = idx_read(s, h, want, &got);
    if (st != ELAG_OK) return st;
    if (got >= 4 && be32(h) != magic)
        return elag_fail(ELAG_ERR_INPUT, "%s: not an IDX %s file (magic 0x%08x)", s->path, kind,
                         (unsigned)be32(h));
    if (got < want)
        return elag_fail(ELAG_ERR_INPUT, "%s: truncated: expected %zu bytes of header, got %zu",
                         s->path, want, got);
    for (int i = 0; i < ndim; i++) dims[i] = be32(h + 4 + 4 * i);
    return ELAG_OK;
}

/* Makes *buf (elements of `elem` bytes, *cap of them) hold at least `need`, growing
 * geometrically up to `total`: memory follows the data read so far. */
static elag_status grow(void *buf, size_t *cap, size_t need, size_t total, size_t elem,
                        const char *path)
{
    if (need <= *cap) return ELAG_OK;
    size_t ncap = *cap < (1u << 16) ? (1u << 16) : *cap * 2;
    if (ncap > total) ncap = total;
    if (ncap < need) ncap = need;
    void *nb = realloc(*(void **)buf, ncap * elem);
    if (!nb)
        return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory after %zu of %zu values", path, *cap,
                         total);
    *(void **)buf = nb;
    *cap = ncap;
    return ELAG_OK;
}

/* Reads n images of `features` u8 pixels into *x (n, features), allocated here, as floats
 * in [0, 1]. */
static elag_status idx_pixels(idx_stream *s, float **x, size_t n, size_t features)
{
    unsigned char chunk[1 << 16];
    size_t total = n * features, done = 0, cap = 0;
    while (done < total) {
        size_t want = total - done < sizeof chunk ? total - done : sizeof chunk, got;
        elag_status st = idx_read(s, chunk, want, &got);
        if (st == ELAG_OK) st = grow(x, &cap, done + got, total, sizeof **x, s->path);
        if (st != ELAG_OK) return st;
        for (size_t i = 0; i < got; i++) (*x)[done + i] = (float)chunk[i] / 255.f;
        done += got;
        if (got < want)
            return elag_fail(ELAG_ERR_INPUT,
                             "%s: truncated: expected %zu bytes of pixels, got %zu", s->path,
                             total, done);
    }
    return ELAG_OK;
}

/* Reads n u8 labels into *y (n), allocated here. */
static elag_status idx_labels(idx_stream *s, int32_t **y, size_t n)
{
    unsigned char chunk[1 << 16];
    size_t done = 0, cap = 0;
    while (done < n) {
        size_t want = n - done < sizeof chunk ? n - done : sizeof chunk, got;
        elag_status st = idx_read(s, chunk, want, &got);
        if (st == ELAG_OK) st = grow(y, &cap, done + got, n, sizeof **y, s->path);
        if (st != ELAG_OK) return st;
        for (size_t i = 0; i < got; i++) {
            if (chunk[i] >= IDX_CLASSES)
                return elag_fail(ELAG_ERR_INPUT,
                                 "%s: label %d of example %zu is out of range [0, %d)", s->path,
                                 chunk[i], done + i, IDX_CLASSES);
            (*y)[done + i] = chunk[i];
        }
        done += got;
        if (got < want)
            return elag_fail(ELAG_ERR_INPUT, "%s: truncated: expected %zu bytes of labels, got %zu",
                             s->path, n, done);
    }
    return ELAG_OK;
}

/* A plain (not gzip'd) file must hold the `data` bytes its header claims after the
 * `header` bytes; a gzip'd one is checked as it is read. */
static elag_status idx_check_size(const idx_stream *s, size_t header, uint64_t data)
{
    struct stat sb;
    if (!gzdirect(s->gz) || stat(s->path, &sb) != 0 || !S_ISREG(sb.st_mode)) return ELAG_OK;
    uint64_t have = (uint64_t)sb.st_size;
    if (have < header + data)
        return elag_fail(ELAG_ERR_INPUT,
                         "%s: truncated: the header claims %llu bytes of data, the file holds "
                         "%llu",
                         s->path, (unsigned long long)data,
                         (unsigned long long)(have > header ? have - header : 0));
    return ELAG_OK;
}

elag_status elag_idx_load(const char *images_path, const char *labels_path, long limit,
                          elag_dataset *out)
{
    memset(out, 0, sizeof *out);
    idx_stream im = {0}, lb = {0};
    uint32_t idims[3] = {0, 0, 0}, ldims[1] = {0};
    float *x = NULL;
    int32_t *y = NULL;
    elag_status st = idx_open(&im, images_path);
    if (st == ELAG_OK) st = idx_header(&im, IDX_MAGIC_IMAGES, "image", 3, idims);
    if (st == ELAG_OK) st = idx_open(&lb, labels_path);
    if (st == ELAG_OK) st = idx_header(&lb, IDX_MAGIC_LABELS, "label", 1, ldims);
    if (st != ELAG_OK) goto done;

    if (idims[0] != ldims[0]) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: %u images, but %s has %u labels", images_path,
                       (unsigned)idims[0], labels_path, (unsigned)ldims[0]);
        goto done;
    }
    if (idims[1] == 0 || idims[2] == 0 ||
        (uint64_t)idims[1] * idims[2] > (uint64_t)IDX_MAX_FEATURES) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: unsupported image size %u x %u", images_path,
                       (unsigned)idims[1], (unsigned)idims[2]);
        goto done;
    }
    size_t n = idims[0];
    size_t features = (size_t)idims[1] * idims[2];
    st = idx_check_size(&im, 16, (uint64_t)n * features);
    if (st == ELAG_OK) st = idx_check_size(&lb, 8, n);
    if (st != ELAG_OK) goto done;
    if (limit > 0 && (unsigned long)limit < n) n = (size_t)limit;
    if (n == 0) {
        st = elag_fail(ELAG_ERR_INPUT, "%s: holds no images", images_path);
        goto done;
    }
    st = idx_pixels(&im, &x, n, features);
    if (st == ELAG_OK) st = idx_labels(&lb, &y, n);
    if (st != ELAG_OK) goto done;

    out->n = (long)n;
    out->features = (int)features;
    out->channels = 1;
    out->height = (int)idims[1];
    out->width = (int)idims[2];
    out->classes = IDX_CLASSES;
    out->x = x;
    out->y = y;
    x = NULL;
    y = NULL;
done:
    free(x);
    free(y);
    idx_close(&im);
    idx_close(&lb);
    return st;
}
