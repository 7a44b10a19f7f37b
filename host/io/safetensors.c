/*
 * safetensors reader and writer (io/safetensors.h). The writer keeps tensors in the
 * order added, packs their data back to back (the safetensors package refuses holes
 * between tensors) and pads the JSON header with spaces so the data section starts
 * at a multiple of 8 bytes, as the reference implementation does. The reader loads
 * the whole file, validates every header field before handing out a pointer, then
 * moves the data section to the start of its buffer so it is malloc-aligned; a
 * tensor whose offset is not a multiple of its element size gets an aligned copy.
 */
#include "io/safetensors.h"

#include "core/check.h"
#include "io/atomic.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tensor data is copied to and from files as raw memory. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "elag reads and writes safetensors data as raw memory: little-endian hosts only"
#endif
#endif

#define ST_MAX_HEADER 100000000ull /* the reference implementation's limit */
#define ST_MAX_EXACT 9007199254740992.0 /* 2^53: larger JSON numbers are not exact */

struct elag_st_writer {
    elag_st_tensor *t; /* (n), owned names and data */
    int n, cap;
    char **keys, **vals; /* (nmeta) __metadata__ in order added */
    int nmeta, capmeta;
};

struct elag_st_file {
    char *path;
    char *buf; /* file contents; after validation the data section starts at buf[0] */
    elag_st_tensor *t;       /* (n) file order */
    unsigned char *owned;    /* (n) 1 where t[i].data is a separate aligned copy */
    int n;
    char **keys, **vals; /* (nmeta) */
    int nmeta;
};

static const char *const dtype_names[] = {"F32", "I32", "I64", "U8", "U64"};
static const size_t dtype_sizes[] = {4, 4, 8, 1, 8};

size_t elag_dtype_size(elag_dtype t)
{
    return (unsigned)t < ELAG_ARRAY_LEN(dtype_sizes) ? dtype_sizes[t] : 0;
}

const char *elag_dtype_name(elag_dtype t)
{
    return (unsigned)t < ELAG_ARRAY_LEN(dtype_names) ? dtype_names[t] : "?";
}

static int dtype_parse(const char *s, elag_dtype *out)
{
    for (size_t i = 0; i < ELAG_ARRAY_LEN(dtype_names); i++) {
        if (strcmp(s, dtype_names[i]) == 0) {
            *out = (elag_dtype)i;
            return 1;
        }
    }
    return 0;
}

/* "[300, 784]"; "[]" for a scalar. */
static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
}

/* Element count times element size, or 0 with *ok = 0 on overflow. */
static uint64_t shape_bytes(int ndim, const int64_t *shape, size_t elem, int *ok)
{
    uint64_t total = elem;
    *ok = 1;
    for (int i = 0; i < ndim; i++) {
        uint64_t d = (uint64_t)shape[i];
        if (d != 0 && total > UINT64_MAX / d) {
            *ok = 0;
            return 0;
        }
        total *= d;
    }
    return total;
}

static char *dup_str(const char *s)
{
    size_t len = strlen(s);
    char *d = malloc(len + 1);
    if (d) memcpy(d, s, len + 1);
    return d;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns a name that appears twice in names[0..n), NULL if all differ (sorts a copy),
 * or sets *nomem. */
static const char *first_duplicate(char **names, int n, int *nomem)
{
    *nomem = 0;
    if (n < 2) return NULL;
    char **sorted = malloc((size_t)n * sizeof *sorted);
    if (!sorted) {
        *nomem = 1;
        return NULL;
    }
    memcpy(sorted, names, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0) dup = sorted[i];
    free(sorted);
    return dup;
}

/* ---------------------------------------------------------------- writing ---- */

elag_status elag_st_writer_init(elag_st_writer **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return elag_fail(ELAG_ERR_NOMEM, "safetensors writer: out of memory");
    return ELAG_OK;
}

void elag_st_writer_free(elag_st_writer *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    for (int i = 0; i < w->nmeta; i++) {
        free(w->keys[i]);
        free(w->vals[i]);
    }
    free(w->t);
    free(w->keys);
    free(w->vals);
    free(w);
}

elag_status elag_st_writer_add(elag_st_writer *w, const char *name, elag_dtype dtype, int ndim,
                               const int64_t *shape, const void *data)
{
    if (!name || !name[0] || strcmp(name, "__metadata__") == 0)
        return elag_fail(ELAG_ERR_INPUT, "safetensors writer: invalid tensor name '%s'",
                         name ? name : "(null)");
    if (elag_dtype_size(dtype) == 0)
        return elag_fail(ELAG_ERR_INPUT, "safetensors writer: tensor '%s' has invalid dtype %d",
                         name, (int)dtype);
    if (ndim < 0 || ndim > ELAG_ST_MAX_DIMS)
        return elag_fail(ELAG_ERR_INPUT, "safetensors writer: tensor '%s' has %d dims (0 to %d)",
                         name, ndim, ELAG_ST_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return elag_fail(ELAG_ERR_INPUT,
                             "safetensors writer: tensor '%s' has negative dim %" PRId64, name,
                             shape[i]);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return elag_fail(ELAG_ERR_INPUT, "safetensors writer: tensor '%s' added twice", name);
    int ok;
    uint64_t nbytes = shape_bytes(ndim, shape, elag_dtype_size(dtype), &ok);
    if (!ok || nbytes > SIZE_MAX / 2)
        return elag_fail(ELAG_ERR_INPUT, "safetensors writer: tensor '%s' is too large", name);
    if (nbytes > 0 && !data)
        return elag_fail(ELAG_ERR_INPUT, "safetensors writer: tensor '%s' has no data", name);
    if (w->n == w->cap) {
        int ncap = w->cap ? 2 * w->cap : 16;
        elag_st_tensor *nt = realloc(w->t, (size_t)ncap * sizeof *nt);
        if (!nt) return elag_fail(ELAG_ERR_NOMEM, "safetensors writer: out of memory");
        w->t = nt;
        w->cap = ncap;
    }
    elag_st_tensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = dup_str(name);
    t->data = malloc(nbytes ? (size_t)nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return elag_fail(ELAG_ERR_NOMEM, "safetensors writer: out of memory for tensor '%s'",
                         name);
    }
    if (nbytes) memcpy(t->data, data, (size_t)nbytes);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->nbytes = (size_t)nbytes;
    w->n++;
    return ELAG_OK;
}

elag_status elag_st_writer_meta(elag_st_writer *w, const char *key, const char *value)
{
    char *v = dup_str(value);
    if (!v) return elag_fail(ELAG_ERR_NOMEM, "safetensors writer: out of memory");
    for (int i = 0; i < w->nmeta; i++) {
        if (strcmp(w->keys[i], key) == 0) {
            free(w->vals[i]);
            w->vals[i] = v;
            return ELAG_OK;
        }
    }
    if (w->nmeta == w->capmeta) {
        int ncap = w->capmeta ? 2 * w->capmeta : 8;
        char **nk = realloc(w->keys, (size_t)ncap * sizeof *nk);
        if (nk) w->keys = nk;
        char **nv = nk ? realloc(w->vals, (size_t)ncap * sizeof *nv) : NULL;
        if (!nv) {
            free(v);
            return elag_fail(ELAG_ERR_NOMEM, "safetensors writer: out of memory");
        }
        w->vals = nv;
        w->capmeta = ncap;
    }
    char *k = dup_str(key);
    if (!k) {
        free(v);
        return elag_fail(ELAG_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->keys[w->nmeta] = k;
    w->vals[w->nmeta] = v;
    w->nmeta++;
    return ELAG_OK;
}

/* An integer JSON value printed exactly (cJSON numbers are doubles). */
static cJSON *json_int(uint64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, v);
    return cJSON_CreateRaw(num);
}

/* The header JSON: __metadata__ first, then tensors in order, data packed back to back. */
static char *build_header(const elag_st_writer *w)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    int ok = 1;
    if (w->nmeta > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        ok = meta != NULL;
        for (int i = 0; ok && i < w->nmeta; i++)
            ok = cJSON_AddStringToObject(meta, w->keys[i], w->vals[i]) != NULL;
    }
    uint64_t at = 0;
    for (int i = 0; ok && i < w->n; i++) {
        const elag_st_tensor *t = &w->t[i];
        cJSON *obj = cJSON_CreateObject();
        cJSON *shape = cJSON_CreateArray();
        cJSON *offs = cJSON_CreateArray();
        cJSON *dims[ELAG_ST_MAX_DIMS + 2];
        ok = obj && shape && offs;
        for (int d = 0; ok && d < t->ndim; d++) {
            dims[d] = json_int((uint64_t)t->shape[d]);
            ok = dims[d] && cJSON_AddItemToArray(shape, dims[d]);
        }
        cJSON *b = ok ? json_int(at) : NULL, *e = ok ? json_int(at + t->nbytes) : NULL;
        ok = ok && b && cJSON_AddItemToArray(offs, b);
        ok = ok && e && cJSON_AddItemToArray(offs, e);
        ok = ok && cJSON_AddStringToObject(obj, "dtype", elag_dtype_name(t->dtype));
        ok = ok && cJSON_AddItemToObject(obj, "shape", shape);
        if (ok) shape = NULL;
        ok = ok && cJSON_AddItemToObject(obj, "data_offsets", offs);
        if (ok) offs = NULL;
        ok = ok && cJSON_AddItemToObject(root, t->name, obj);
        if (!ok) {
            cJSON_Delete(obj);
            cJSON_Delete(shape);
            cJSON_Delete(offs);
        }
        at += t->nbytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return json;
}

elag_status elag_st_writer_save(elag_st_writer *w, const char *path)
{
    char *json = build_header(w);
    if (!json) return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory building the header", path);
    size_t jlen = strlen(json);
    size_t pad = (8 - jlen % 8) % 8;
    uint64_t hlen = (uint64_t)(jlen + pad);
    unsigned char lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (unsigned char)(hlen >> (8 * i));

    elag_atomic_file af;
    elag_status st = elag_atomic_open(&af, path);
    if (st != ELAG_OK) {
        free(json);
        return st;
    }
    errno = 0;
    int ok = fwrite(lenbytes, 1, 8, af.fp) == 8 && fwrite(json, 1, jlen, af.fp) == jlen;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', af.fp) != EOF;
    for (int i = 0; ok && i < w->n; i++)
        ok = w->t[i].nbytes == 0 ||
             fwrite(w->t[i].data, 1, w->t[i].nbytes, af.fp) == w->t[i].nbytes;
    int err = errno ? errno : EIO; /* the failed write's reason, before anything else runs */
    free(json);
    if (!ok) {
        elag_atomic_abort(&af);
        return elag_fail(ELAG_ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    return elag_atomic_commit(&af);
}

/* ---------------------------------------------------------------- reading ---- */

void elag_st_close(elag_st_file *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        free(f->t[i].name);
        if (f->owned && f->owned[i]) free(f->t[i].data);
    }
    for (int i = 0; i < f->nmeta; i++) {
        free(f->keys[i]);
        free(f->vals[i]);
    }
    free(f->t);
    free(f->owned);
    free(f->keys);
    free(f->vals);
    free(f->buf);
    free(f->path);
    free(f);
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > ST_MAX_EXACT || floor(d) != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

#define CORRUPT(...) elag_fail(ELAG_ERR_INPUT, __VA_ARGS__)

static elag_status parse_metadata(elag_st_file *f, const cJSON *meta)
{
    const char *p = f->path;
    if (!cJSON_IsObject(meta))
        return CORRUPT("%s: corrupt safetensors header: __metadata__ is not an object", p);
    int m = cJSON_GetArraySize(meta);
    f->keys = calloc((size_t)m + 1, sizeof *f->keys);
    f->vals = calloc((size_t)m + 1, sizeof *f->vals);
    if (!f->keys || !f->vals) return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", p);
    const cJSON *e;
    cJSON_ArrayForEach(e, meta)
    {
        if (!cJSON_IsString(e))
            return CORRUPT("%s: corrupt safetensors header: __metadata__ entry '%s' is not a "
                           "string",
                           p, e->string);
        f->keys[f->nmeta] = dup_str(e->string);
        f->vals[f->nmeta] = dup_str(e->valuestring);
        f->nmeta++;
        if (!f->keys[f->nmeta - 1] || !f->vals[f->nmeta - 1])
            return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", p);
    }
    int nomem;
    const char *dup = first_duplicate(f->keys, f->nmeta, &nomem);
    if (nomem) return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", p);
    if (dup)
        return CORRUPT("%s: corrupt safetensors header: __metadata__ key '%s' appears twice", p,
                       dup);
    return ELAG_OK;
}

/* Fills t from one header entry; begin/end are offsets into the data section. */
static elag_status parse_tensor(const char *p, const cJSON *e, elag_st_tensor *t,
                                uint64_t *begin, uint64_t *end)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return CORRUPT("%s: corrupt safetensors header: tensor '%s' is not an object", p, name);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return CORRUPT("%s: corrupt safetensors header: tensor '%s' has no dtype string", p,
                       name);
    if (!dtype_parse(dt->valuestring, &t->dtype))
        return CORRUPT("%s: corrupt safetensors header: tensor '%s' has unknown dtype '%s' "
                       "(elag reads F32, I32, I64, U8, U64)",
                       p, name, dt->valuestring);
    if (!cJSON_IsArray(shape))
        return CORRUPT("%s: corrupt safetensors header: tensor '%s' has no shape array", p, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ELAG_ST_MAX_DIMS)
        return CORRUPT("%s: corrupt safetensors header: tensor '%s' has %d dims (elag reads at "
                       "most %d)",
                       p, name, ndim, ELAG_ST_MAX_DIMS);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        uint64_t d;
        if (!json_uint(cJSON_GetArrayItem(shape, i), &d))
            return CORRUPT("%s: corrupt safetensors header: tensor '%s' shape entry %d is not a "
                           "non-negative integer",
                           p, name, i);
        t->shape[i] = (int64_t)d;
    }
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(cJSON_GetArrayItem(offs, 0), begin) ||
        !json_uint(cJSON_GetArrayItem(offs, 1), end) || *end < *begin)
        return CORRUPT("%s: corrupt safetensors header: tensor '%s' data_offsets is not a pair "
                       "[begin, end] of integers with begin <= end",
                       p, name);
    int ok;
    uint64_t want = shape_bytes(ndim, t->shape, elag_dtype_size(t->dtype), &ok);
    if (!ok || want != *end - *begin) {
        char sh[160];
        format_shape(sh, sizeof sh, ndim, t->shape);
        return CORRUPT("%s: corrupt safetensors header: tensor '%s' data_offsets [%" PRIu64
                       ", %" PRIu64 ") do not match shape %s %s",
                       p, name, *begin, *end, sh, elag_dtype_name(t->dtype));
    }
    t->nbytes = (size_t)want;
    return ELAG_OK;
}

typedef struct st_span {
    uint64_t begin, end;
    int index;
} st_span;

static int cmp_span(const void *a, const void *b)
{
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Validates the header of f->buf (size bytes) and fills f; data not yet placed. */
static elag_status parse_file(elag_st_file *f, size_t size, st_span **spans_out,
                              uint64_t *data_start)
{
    const char *p = f->path;
    if (size == 0) return CORRUPT("%s: empty file (not a safetensors file)", p);
    if (size < 8)
        return CORRUPT("%s: truncated file (%zu bytes; the header length alone takes 8)", p,
                       size);
    const unsigned char *b = (const unsigned char *)f->buf;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | b[i];
    if (hlen > size - 8)
        return CORRUPT("%s: truncated file (header says %" PRIu64 " bytes, file has %zu)", p,
                       hlen <= UINT64_MAX - 8 ? hlen + 8 : hlen, size);
    if (hlen > ST_MAX_HEADER)
        return CORRUPT("%s: corrupt safetensors header: length %" PRIu64
                       " exceeds the 100 MB limit",
                       p, hlen);
    const char *json = f->buf + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)hlen, &end, 0);
    if (!root)
        return CORRUPT("%s: corrupt safetensors header: not valid JSON (at byte %td of %" PRIu64
                       ")",
                       p, end ? end - json : (ptrdiff_t)0, hlen);
    for (const char *c = end; c < json + hlen; c++) {
        if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r') {
            cJSON_Delete(root);
            return CORRUPT("%s: corrupt safetensors header: unexpected bytes after the JSON "
                           "object (at byte %td)",
                           p, c - json);
        }
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return CORRUPT("%s: corrupt safetensors header: not a JSON object", p);
    }
    int nall = cJSON_GetArraySize(root);
    f->t = calloc((size_t)nall + 1, sizeof *f->t);
    f->owned = calloc((size_t)nall + 1, 1);
    st_span *spans = calloc((size_t)nall + 1, sizeof *spans);
    char **names = calloc((size_t)nall + 1, sizeof *names);
    elag_status st = ELAG_OK;
    if (!f->t || !f->owned || !spans || !names)
        st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", p);
    const cJSON *e;
    int nmeta_seen = 0;
    uint64_t data_len = size - 8 - hlen;
    cJSON_ArrayForEach(e, root)
    {
        if (st != ELAG_OK) break;
        if (strcmp(e->string, "__metadata__") == 0) {
            if (nmeta_seen++)
                st = CORRUPT("%s: corrupt safetensors header: __metadata__ appears twice", p);
            else
                st = parse_metadata(f, e);
            continue;
        }
        elag_st_tensor *t = &f->t[f->n];
        st_span *sp = &spans[f->n];
        st = parse_tensor(p, e, t, &sp->begin, &sp->end);
        if (st != ELAG_OK) break;
        sp->index = f->n;
        if (sp->end > data_len) {
            st = CORRUPT("%s: truncated file (header says %" PRIu64 " bytes, file has %zu)", p,
                         8 + hlen + sp->end, size);
            break;
        }
        t->name = dup_str(e->string);
        if (!t->name) st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", p);
        names[f->n++] = t->name;
    }
    cJSON_Delete(root);
    if (st == ELAG_OK) {
        int nomem;
        const char *dup = first_duplicate(names, f->n, &nomem);
        if (nomem) st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", p);
        else if (dup)
            st = CORRUPT("%s: corrupt safetensors header: tensor '%s' appears twice", p, dup);
    }
    free(names);
    if (st == ELAG_OK) {
        /* Overlap: sorted by begin, each non-empty span must start at or after the end of
         * the previous non-empty one. Empty tensors occupy no bytes. */
        st_span *sorted = malloc(((size_t)f->n + 1) * sizeof *sorted);
        if (!sorted) {
            free(spans);
            return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", p);
        }
        memcpy(sorted, spans, (size_t)f->n * sizeof *sorted);
        qsort(sorted, (size_t)f->n, sizeof *sorted, cmp_span);
        int prev = -1;
        for (int i = 0; i < f->n && st == ELAG_OK; i++) {
            if (sorted[i].begin == sorted[i].end) continue;
            if (prev >= 0 && sorted[i].begin < sorted[prev].end)
                st = CORRUPT("%s: corrupt safetensors header: tensor '%s' data_offsets [%" PRIu64
                             ", %" PRIu64 ") overlap tensor '%s' [%" PRIu64 ", %" PRIu64 ")",
                             p, f->t[sorted[i].index].name, sorted[i].begin, sorted[i].end,
                             f->t[sorted[prev].index].name, sorted[prev].begin,
                             sorted[prev].end);
            prev = i;
        }
        free(sorted);
    }
    if (st != ELAG_OK) {
        free(spans);
        return st;
    }
    *spans_out = spans;
    *data_start = 8 + hlen;
    return ELAG_OK;
}

elag_status elag_st_open(const char *path, elag_st_file **out)
{
    *out = NULL;
    elag_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = dup_str(path))) {
        free(f);
        return elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t size = 0;
    elag_status st = elag_read_file(path, &f->buf, &size);
    st_span *spans = NULL;
    uint64_t data_start = 0;
    if (st == ELAG_OK) st = parse_file(f, size, &spans, &data_start);
    if (st != ELAG_OK) {
        elag_st_close(f);
        return st;
    }
    /* Move the data section to the (malloc-aligned) start of the buffer; the header
     * has been copied out already. */
    memmove(f->buf, f->buf + data_start, size - (size_t)data_start);
    for (int i = 0; i < f->n && st == ELAG_OK; i++) {
        elag_st_tensor *t = &f->t[i];
        char *src = f->buf + spans[i].begin;
        if (spans[i].begin % elag_dtype_size(t->dtype) == 0) {
            t->data = src;
            continue;
        }
        t->data = malloc(t->nbytes ? t->nbytes : 1);
        if (!t->data) {
            st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", path);
            break;
        }
        f->owned[i] = 1;
        memcpy(t->data, src, t->nbytes);
    }
    free(spans);
    if (st != ELAG_OK) {
        elag_st_close(f);
        return st;
    }
    *out = f;
    return ELAG_OK;
}

int elag_st_count(const elag_st_file *f) { return f->n; }

const elag_st_tensor *elag_st_at(const elag_st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->t[i] : NULL;
}

const elag_st_tensor *elag_st_find(const elag_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *elag_st_meta(const elag_st_file *f, const char *key)
{
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->keys[i], key) == 0) return f->vals[i];
    return NULL;
}

elag_status elag_st_expect(const elag_st_file *f, const char *name, elag_dtype dtype, int ndim,
                           const int64_t *shape, const elag_st_tensor **out)
{
    if (out) *out = NULL;
    const elag_st_tensor *t = elag_st_find(f, name);
    if (!t) return elag_fail(ELAG_ERR_INPUT, "%s: missing tensor '%s'", f->path, name);
    int same = t->dtype == dtype && t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[160], want[160];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        return elag_fail(ELAG_ERR_INPUT, "%s: tensor '%s' is %s %s, expected %s %s", f->path,
                         name, elag_dtype_name(t->dtype), got, elag_dtype_name(dtype), want);
    }
    if (out) *out = t;
    return ELAG_OK;
}

const char *elag_st_path(const elag_st_file *f) { return f->path; }
