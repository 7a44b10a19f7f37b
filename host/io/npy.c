/*
 * .npy reader and writer (io/npy.h). The header dict is parsed by a small strict parser
 * of the subset numpy writes (quoted keys, a quoted descr, True/False, a tuple of
 * non-negative integers), so nothing in a file is evaluated or trusted: every size is
 * checked against overflow and against the file's length before memory is allocated.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/npy.h"

#include "core/check.h"
#include "io/atomic.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A header larger than this is no numpy header (numpy itself refuses > 10000 bytes by
 * default; 2.0 headers exist for very many dimensions or structured dtypes). */
#define NPY_MAX_HEADER (1u << 20)

#define BAD(...) elag_fail(ELAG_ERR_INPUT, __VA_ARGS__)

static uint32_t le16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- the header dict ---- */

typedef struct npy_parser {
    const char *p, *end, *path;
} npy_parser;

static void skip_space(npy_parser *q)
{
    while (q->p < q->end && (*q->p == ' ' || *q->p == '\t' || *q->p == '\n' || *q->p == '\r'))
        q->p++;
}

static int take(npy_parser *q, char c)
{
    skip_space(q);
    if (q->p < q->end && *q->p == c) {
        q->p++;
        return 1;
    }
    return 0;
}

/* A '...' or "..." string without escapes into buf (cap bytes). */
static elag_status parse_string(npy_parser *q, char *buf, size_t cap, const char *what)
{
    skip_space(q);
    if (q->p >= q->end || (*q->p != '\'' && *q->p != '"'))
        return BAD("%s: npy header: expected a quoted %s", q->path, what);
    char quote = *q->p++;
    size_t n = 0;
    while (q->p < q->end && *q->p != quote) {
        if (*q->p == '\\' || n + 1 >= cap)
            return BAD("%s: npy header: unsupported %s", q->path, what);
        buf[n++] = *q->p++;
    }
    if (q->p >= q->end) return BAD("%s: npy header: unterminated %s", q->path, what);
    q->p++;
    buf[n] = '\0';
    return ELAG_OK;
}

static elag_status parse_shape(npy_parser *q, elag_npy_array *out)
{
    if (!take(q, '(')) return BAD("%s: npy header: 'shape' is not a tuple", q->path);
    out->ndim = 0;
    for (;;) {
        skip_space(q);
        if (take(q, ')')) break;
        if (q->p >= q->end || *q->p < '0' || *q->p > '9')
            return BAD("%s: npy header: bad 'shape' entry", q->path);
        int64_t v = 0;
        while (q->p < q->end && *q->p >= '0' && *q->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return BAD("%s: npy header: a 'shape' dimension overflows", q->path);
            v = v * 10 + (*q->p++ - '0');
        }
        while (q->p < q->end && *q->p == 'L') q->p++; /* Python 2 longs: "(3L, 4L)" */
        if (out->ndim == ELAG_NPY_MAX_DIMS)
            return BAD("%s: npy array has more than %d dimensions", q->path, ELAG_NPY_MAX_DIMS);
        out->shape[out->ndim++] = v;
        if (!take(q, ',')) {
            if (!take(q, ')')) return BAD("%s: npy header: bad 'shape' tuple", q->path);
            break;
        }
    }
    return ELAG_OK;
}

elag_status elag_npy_parse_header(const char *path, const unsigned char *buf, size_t len,
                                  elag_npy_array *out, size_t *data_offset)
{
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return BAD("%s: not a .npy file (no \\x93NUMPY magic)", path);
    unsigned major = buf[6], minor = buf[7];
    if (major < 1 || major > 3 || minor != 0)
        return BAD("%s: npy format version %u.%u is not supported (1.0, 2.0, 3.0 are)", path, major,
                   minor);
    size_t prelude = major == 1 ? 10 : 12;
    if (len < prelude) return BAD("%s: truncated npy header", path);
    size_t hlen = major == 1 ? le16(buf + 8) : le32(buf + 8);
    if (hlen > NPY_MAX_HEADER) return BAD("%s: npy header of %zu bytes is too large", path, hlen);
    if (len < prelude + hlen) return BAD("%s: truncated npy header", path);

    npy_parser q = {(const char *)buf + prelude, (const char *)buf + prelude + hlen, path};
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0;
    if (!take(&q, '{')) return BAD("%s: npy header is not a dict", path);
    for (;;) {
        if (take(&q, '}')) break;
        char key[32];
        ELAG_TRY(parse_string(&q, key, sizeof key, "key"));
        if (!take(&q, ':')) return BAD("%s: npy header: no ':' after '%s'", path, key);
        if (strcmp(key, "descr") == 0 && !have_descr) {
            ELAG_TRY(parse_string(&q, out->descr, sizeof out->descr, "'descr'"));
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            skip_space(&q);
            size_t left = (size_t)(q.end - q.p);
            if (left >= 4 && memcmp(q.p, "True", 4) == 0) {
                fortran = 1;
                q.p += 4;
            } else if (left >= 5 && memcmp(q.p, "False", 5) == 0) {
                q.p += 5;
            } else {
                return BAD("%s: npy header: 'fortran_order' is not True or False", path);
            }
            have_order = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            ELAG_TRY(parse_shape(&q, out));
            have_shape = 1;
        } else {
            return BAD("%s: npy header: unexpected or repeated key '%s'", path, key);
        }
        if (!take(&q, ',')) {
            if (!take(&q, '}')) return BAD("%s: npy header: expected ',' or '}'", path);
            break;
        }
    }
    skip_space(&q);
    if (q.p != q.end) return BAD("%s: npy header: bytes after the dict", path);
    if (!have_descr || !have_order || !have_shape)
        return BAD("%s: npy header lacks '%s'", path,
                   !have_descr   ? "descr"
                   : !have_order ? "fortran_order"
                                 : "shape");
    if (fortran)
        return BAD("%s: npy array is in Fortran order; save numpy.ascontiguousarray(x) instead",
                   path);
    if (out->ndim == 0) return BAD("%s: npy array is 0-dimensional (a scalar)", path);
    size_t count = 1;
    for (int i = 0; i < out->ndim; i++) {
        uint64_t d = (uint64_t)out->shape[i];
        if (d != 0 && count > SIZE_MAX / 8 / d)
            return BAD("%s: npy shape's element count overflows", path);
        count *= (size_t)d;
    }
    out->count = count;
    *data_offset = prelude + hlen;
    return ELAG_OK;
}

/* ---- dtypes ---- */

typedef struct npy_dtype {
    const char *descr;
    size_t size;
    int is_float, is_signed;
} npy_dtype;

static const npy_dtype npy_dtypes[] = {
    {"<f4", 4, 1, 1}, {"<f8", 8, 1, 1}, {"|i1", 1, 0, 1}, {"|u1", 1, 0, 0}, {"<i2", 2, 0, 1},
    {"<u2", 2, 0, 0}, {"<i4", 4, 0, 1}, {"<u4", 4, 0, 0}, {"<i8", 8, 0, 1}, {"<u8", 8, 0, 0},
};

static const npy_dtype *find_dtype(const char *descr)
{
    for (size_t i = 0; i < ELAG_ARRAY_LEN(npy_dtypes); i++)
        if (strcmp(npy_dtypes[i].descr, descr) == 0) return &npy_dtypes[i];
    return NULL;
}

static uint64_t load_le(const unsigned char *p, size_t size)
{
    uint64_t v = 0;
    for (size_t b = 0; b < size; b++) v |= (uint64_t)p[b] << (8 * b);
    return v;
}

/* Converts `count` elements of `t` at raw into out (in place is not allowed). */
static elag_status convert(const char *path, const npy_dtype *t, const unsigned char *raw,
                           elag_npy_array *out)
{
    for (size_t i = 0; i < out->count; i++) {
        uint64_t bits = load_le(raw + i * t->size, t->size);
        if (out->f32) {
            if (t->size == 4) {
                uint32_t b32 = (uint32_t)bits;
                memcpy(&out->f32[i], &b32, 4);
            } else {
                double d;
                memcpy(&d, &bits, 8);
                if (isfinite(d) && fabs(d) > FLT_MAX)
                    return BAD("%s: element %zu (%g) is outside float32's range", path, i, d);
                out->f32[i] = (float)d;
            }
        } else if (t->is_signed) {
            int shift = (int)(64 - 8 * t->size); /* sign-extend */
            out->i64[i] = shift ? (int64_t)(bits << shift) >> shift : (int64_t)bits;
        } else {
            if (bits > (uint64_t)INT64_MAX)
                return BAD("%s: element %zu is larger than 2^63 - 1", path, i);
            out->i64[i] = (int64_t)bits;
        }
    }
    return ELAG_OK;
}

elag_status elag_npy_read(const char *path, elag_npy_want want, elag_npy_array *out)
{
    ELAG_ASSERT(out != NULL && path != NULL);
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return elag_fail(errno == ENOENT || errno == ENOTDIR ? ELAG_ERR_INPUT : ELAG_ERR_IO,
                         "%s: cannot open: %s", path, strerror(errno));
    elag_status st = ELAG_OK;
    unsigned char *head = NULL, *raw = NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = BAD("%s: not a regular file", path);
        goto done;
    }
    size_t fsize = (size_t)sb.st_size;
    unsigned char pre[12];
    size_t got = fread(pre, 1, fsize < sizeof pre ? fsize : sizeof pre, f);
    if (got < 10) {
        st = got >= 6 && memcmp(pre, "\x93NUMPY", 6) == 0
                 ? BAD("%s: truncated npy file (%zu bytes)", path, fsize)
                 : BAD("%s: not a .npy file (no \\x93NUMPY magic)", path);
        goto done;
    }
    size_t off;
    if (memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] < 1 || pre[6] > 3 || pre[7] != 0) {
        st = elag_npy_parse_header(path, pre, got, out, &off); /* its message for these */
        goto done;
    }
    size_t prelude = pre[6] == 1 ? 10 : 12;
    if (got < prelude) {
        st = BAD("%s: truncated npy header", path);
        goto done;
    }
    size_t dict_len = pre[6] == 1 ? le16(pre + 8) : le32(pre + 8);
    if (dict_len > NPY_MAX_HEADER) {
        st = BAD("%s: npy header of %zu bytes is too large", path, dict_len);
        goto done;
    }
    size_t hlen = prelude + dict_len;
    if (hlen > fsize) {
        st = BAD("%s: truncated npy header", path);
        goto done;
    }
    if (!(head = malloc(hlen))) {
        st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory for the npy header", path);
        goto done;
    }
    /* from the start again: the 12 bytes read so far may reach past a short 1.0 header */
    if (fseek(f, 0, SEEK_SET) != 0 || fread(head, 1, hlen, f) != hlen) {
        st = elag_fail(ELAG_ERR_IO, "%s: read failed", path);
        goto done;
    }
    ELAG_TRY_GOTO(st, elag_npy_parse_header(path, head, hlen, out, &off), done);
    const npy_dtype *t = find_dtype(out->descr);
    if (want == ELAG_NPY_AS_F32 && (!t || !t->is_float)) {
        st = BAD("%s: dtype '%s' is not float32 ('<f4') or float64 ('<f8'); save "
                 "x.astype(numpy.float32) (scaled as the model was trained)",
                 path, out->descr);
        goto done;
    }
    if (want == ELAG_NPY_AS_I64 && (!t || t->is_float)) {
        st = BAD("%s: dtype '%s' is not a little-endian integer type; save "
                 "y.astype(numpy.int64)",
                 path, out->descr);
        goto done;
    }
    size_t need = out->count * t->size; /* count <= SIZE_MAX / 8: no overflow */
    if (fsize - off != need) {
        st =
            BAD("%s: npy data is %zu bytes but shape and dtype '%s' need %zu (%s)", path,
                fsize - off, out->descr, need, fsize - off < need ? "truncated" : "trailing bytes");
        goto done;
    }
    size_t elems = out->count ? out->count : 1;
    if (want == ELAG_NPY_AS_F32)
        out->f32 = malloc(elems * sizeof *out->f32);
    else
        out->i64 = malloc(elems * sizeof *out->i64);
    /* '<f4' and '<i8' could be read in place; one conversion path is simpler to trust. */
    raw = malloc(need ? need : 1);
    if ((!out->f32 && !out->i64) || !raw) {
        st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory for %zu elements", path, out->count);
        goto done;
    }
    if (need && fread(raw, 1, need, f) != need) {
        st = elag_fail(ELAG_ERR_IO, "%s: read failed", path);
        goto done;
    }
    st = convert(path, t, raw, out);
done:
    free(head);
    free(raw);
    fclose(f);
    if (st != ELAG_OK) {
        free(out->f32);
        free(out->i64);
        out->f32 = NULL;
        out->i64 = NULL;
    }
    return st;
}

void elag_npy_free(elag_npy_array *a)
{
    if (!a) return;
    free(a->f32);
    free(a->i64);
    memset(a, 0, sizeof *a);
}

elag_status elag_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > ELAG_NPY_MAX_DIMS)
        return elag_fail(ELAG_ERR_USAGE, "%s: npy: %d dimensions (1..%d)", path, ndim,
                         ELAG_NPY_MAX_DIMS);
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && count > SIZE_MAX / 4 / (uint64_t)shape[i]))
            return elag_fail(ELAG_ERR_USAGE, "%s: npy: bad dimension %lld", path,
                             (long long)shape[i]);
        count *= (size_t)shape[i];
        n += snprintf(dict + n, sizeof dict - (size_t)n,
                      ndim == 1 ? "%lld,"
                      : i       ? " %lld"
                                : "%lld",
                      (long long)shape[i]);
        if (i + 1 < ndim) n += snprintf(dict + n, sizeof dict - (size_t)n, ",");
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    /* numpy pads with spaces and ends with '\n' so the data starts on a 64-byte boundary */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)n + pad + 1;
    unsigned char pre[10] = {0x93,
                             'N',
                             'U',
                             'M',
                             'P',
                             'Y',
                             1,
                             0,
                             (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    elag_atomic_file af;
    ELAG_TRY(elag_atomic_open(&af, path));
    int ok = fwrite(pre, 1, sizeof pre, af.fp) == sizeof pre &&
             fwrite(dict, 1, (size_t)n, af.fp) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', af.fp) != EOF;
    ok = ok && fputc('\n', af.fp) != EOF;
    /* host floats are little-endian IEEE on every platform elag builds for */
    ok = ok && (count == 0 || fwrite(data, sizeof *data, count, af.fp) == count);
    if (!ok) {
        elag_atomic_abort(&af);
        return elag_fail(ELAG_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    }
    return elag_atomic_commit(&af);
}
