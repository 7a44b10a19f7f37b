/*
 * The sweep ledger, <out>/results.jsonl: one JSON object per line, one line per finished
 * run (docs/sweeps.md). Several writers may share it (--jobs workers are one process, but
 * shards of a Slurm array, or two sweeps, may point at one folder on a shared file
 * system), and any of them may be SIGKILLed at any moment, so:
 *  - a row is appended in a single write(2) with O_APPEND, under an exclusive flock on
 *    <out>/results.lock (O_APPEND alone is not atomic on NFS);
 *  - a writer killed inside write(2) can leave a partial last line; the next writer,
 *    holding the lock, cuts it off before appending, and readers ignore it;
 *  - readers keep one row per run_id (an ok row wins over a failed one, otherwise the
 *    last row wins), so a run retried with --retry-failed counts once.
 * results.csv is derived from the ledger and rewritten atomically.
 */
#define _DEFAULT_SOURCE /* flock */
#include "sweep/sweep.h"

#include "io/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- in-memory ledger ---- */

static unsigned long id_hash(const char *s)
{
    unsigned long h = 1469598103934665603UL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211UL;
    return h;
}

static const char *row_id(const cJSON *row)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(row, "run_id");
    return cJSON_IsString(id) ? id->valuestring : NULL;
}

const char *elag_ledger_status(const cJSON *row)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(row, "status");
    return cJSON_IsString(s) ? s->valuestring : "";
}

/* Slot of run_id in the index: where it is, or the empty slot where it would go. */
static int slot_of(const elag_ledger *l, const char *run_id)
{
    int mask = l->n_slots - 1;
    int i = (int)(id_hash(run_id) & (unsigned long)mask);
    while (l->slots[i] >= 0 && strcmp(row_id(l->rows[l->slots[i]]), run_id) != 0)
        i = (i + 1) & mask;
    return i;
}

static elag_status grow(elag_ledger *l)
{
    if (l->n < l->cap_rows && 2 * (l->n + 1) <= l->n_slots) return ELAG_OK;
    int cap = l->cap_rows ? 2 * l->cap_rows : 64;
    cJSON **rows = realloc(l->rows, (size_t)cap * sizeof *rows);
    if (!rows) return elag_fail(ELAG_ERR_NOMEM, "ledger: out of memory");
    l->rows = rows;
    l->cap_rows = cap;
    int *slots = malloc((size_t)(2 * cap) * sizeof *slots);
    if (!slots) return elag_fail(ELAG_ERR_NOMEM, "ledger: out of memory");
    free(l->slots);
    l->slots = slots;
    l->n_slots = 2 * cap;
    for (int i = 0; i < l->n_slots; i++) l->slots[i] = -1;
    for (int r = 0; r < l->n; r++) l->slots[slot_of(l, row_id(l->rows[r]))] = r;
    return ELAG_OK;
}

elag_status elag_ledger_add(elag_ledger *l, cJSON *row)
{
    const char *id = row_id(row);
    if (!cJSON_IsObject(row) || !id) {
        cJSON_Delete(row);
        return elag_fail(ELAG_ERR_INPUT, "ledger: a row without a run_id");
    }
    elag_status st = grow(l);
    if (st != ELAG_OK) {
        cJSON_Delete(row);
        return st;
    }
    int s = slot_of(l, id);
    if (l->slots[s] < 0) {
        l->slots[s] = l->n;
        l->rows[l->n++] = row;
        return ELAG_OK;
    }
    cJSON **old = &l->rows[l->slots[s]];
    if (strcmp(elag_ledger_status(*old), "ok") == 0 && strcmp(elag_ledger_status(row), "ok") != 0) {
        cJSON_Delete(row); /* a finished run stays finished */
        return ELAG_OK;
    }
    cJSON_Delete(*old);
    *old = row;
    return ELAG_OK;
}

const cJSON *elag_ledger_find(const elag_ledger *l, const char *run_id)
{
    if (!l->n_slots) return NULL;
    int s = slot_of(l, run_id);
    return l->slots[s] >= 0 ? l->rows[l->slots[s]] : NULL;
}

void elag_ledger_free(elag_ledger *l)
{
    if (!l) return;
    for (int i = 0; i < l->n; i++) cJSON_Delete(l->rows[i]);
    free(l->rows);
    free(l->slots);
    memset(l, 0, sizeof *l);
}

/* Parses the complete lines of text[0, len) into l; returns the bytes consumed (up to and
 * including the last '\n'). */
static elag_status parse_lines(elag_ledger *l, char *text, size_t len, size_t *consumed)
{
    elag_status st = ELAG_OK;
    char *line = text;
    *consumed = 0;
    l->torn_tail = 0;
    while (st == ELAG_OK && line < text + len) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        if (!nl) { /* a writer died inside write(2) (or is writing now): not a row */
            for (char *p = line; p < text + len; p++)
                if (*p != ' ' && *p != '\t' && *p != '\r') l->torn_tail = 1;
            break;
        }
        *nl = '\0';
        *consumed = (size_t)(nl + 1 - text);
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r') p++;
        if (*p) {
            l->n_lines++;
            cJSON *row = cJSON_Parse(p);
            if (cJSON_IsObject(row) && row_id(row))
                st = elag_ledger_add(l, row);
            else {
                cJSON_Delete(row);
                l->n_bad++;
            }
        }
        line = nl + 1;
    }
    return st;
}

elag_status elag_ledger_read(const char *path, elag_ledger *out)
{
    memset(out, 0, sizeof *out);
    return elag_ledger_refresh(path, out);
}

elag_status elag_ledger_refresh(const char *path, elag_ledger *l)
{
    FILE *f = fopen(path, "rb");
    if (!f && errno == ENOENT) return ELAG_OK; /* no ledger yet: no rows */
    if (!f) return elag_fail(ELAG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    elag_status st = ELAG_OK;
    if (fstat(fileno(f), &sb) != 0) st = elag_fail(ELAG_ERR_IO, "%s: stat: %s", path, strerror(errno));
    if (st == ELAG_OK && (long long)sb.st_size < l->consumed) { /* rewritten: start over */
        elag_ledger_free(l);
    }
    size_t len = st == ELAG_OK ? (size_t)(sb.st_size - l->consumed) : 0;
    char *text = malloc(len + 1);
    if (!text) st = elag_fail(ELAG_ERR_NOMEM, "%s: out of memory", path);
    if (st == ELAG_OK && fseek(f, (long)l->consumed, SEEK_SET) != 0)
        st = elag_fail(ELAG_ERR_IO, "%s: seek: %s", path, strerror(errno));
    if (st == ELAG_OK) {
        /* Fewer bytes than fstat said, at the end of the file, is a writer cutting a torn
         * last line meanwhile (the one way the ledger shrinks in place): the full lines
         * read are the ledger. Any other short read is an error, never a shorter ledger. */
        errno = 0;
        size_t got = fread(text, 1, len, f);
        if (got < len && (ferror(f) || !feof(f)))
            st = elag_fail(ELAG_ERR_IO, "%s: read failed: %s", path,
                           strerror(errno ? errno : EIO));
        len = got;
    }
    fclose(f);
    size_t used = 0;
    if (st == ELAG_OK) st = parse_lines(l, text, len, &used);
    l->consumed += (long long)used;
    free(text);
    if (st != ELAG_OK) elag_ledger_free(l);
    return st;
}

/* ---- writing ---- */

/* Opens and exclusively locks <dir>/results.lock; returns the fd (closing it unlocks). */
static elag_status lock_dir(const char *dir, int *fd_out)
{
    char path[ELAG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/results.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return elag_fail(ELAG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    int r;
    while ((r = flock(fd, LOCK_EX)) != 0 && errno == EINTR) {
    }
    if (r != 0) {
        int err = errno;
        close(fd);
        return elag_fail(ELAG_ERR_IO, "%s: cannot lock: %s", path, strerror(err));
    }
    *fd_out = fd;
    return ELAG_OK;
}

/* With the lock held: cuts a partial last line (no '\n') off the ledger. */
static elag_status cut_torn_tail(int fd, const char *path)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0) return elag_fail(ELAG_ERR_IO, "%s: stat: %s", path, strerror(errno));
    off_t end = sb.st_size, keep = 0;
    char buf[4096];
    while (end > 0) {
        off_t start = end > (off_t)sizeof buf ? end - (off_t)sizeof buf : 0;
        ssize_t n = pread(fd, buf, (size_t)(end - start), start);
        if (n != end - start) return elag_fail(ELAG_ERR_IO, "%s: read failed", path);
        if (end == sb.st_size && buf[n - 1] == '\n') return ELAG_OK; /* not torn */
        char *nl = NULL;
        for (ssize_t i = n - 1; i >= 0 && !nl; i--)
            if (buf[i] == '\n') nl = buf + i;
        if (nl) {
            keep = start + (nl - buf) + 1;
            break;
        }
        end = start;
    }
    if (sb.st_size > 0 && ftruncate(fd, keep) != 0)
        return elag_fail(ELAG_ERR_IO, "%s: cannot cut a torn last line: %s", path, strerror(errno));
    return ELAG_OK;
}

elag_status elag_ledger_append(const char *dir, const cJSON *row)
{
    char *text = cJSON_PrintUnformatted(row);
    if (!text) return elag_fail(ELAG_ERR_NOMEM, "ledger: out of memory");
    size_t len = strlen(text);
    char *line = realloc(text, len + 2);
    if (!line) {
        free(text);
        return elag_fail(ELAG_ERR_NOMEM, "ledger: out of memory");
    }
    line[len] = '\n';
    line[len + 1] = '\0';
    char path[ELAG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    int lk = -1;
    elag_status st = lock_dir(dir, &lk);
    int fd = -1;
    if (st == ELAG_OK) {
        fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) st = elag_fail(ELAG_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (st == ELAG_OK) st = cut_torn_tail(fd, path);
    if (st == ELAG_OK) {
        struct stat sb;
        off_t before = fstat(fd, &sb) == 0 ? sb.st_size : -1;
        ssize_t n;
        while ((n = write(fd, line, len + 1)) < 0 && errno == EINTR) {
        }
        if (n != (ssize_t)(len + 1)) {
            int err = n < 0 ? errno : EIO;
            if (n > 0 && before >= 0 && ftruncate(fd, before) != 0) err = errno;
            st = elag_fail(ELAG_ERR_IO, "%s: append failed: %s", path, strerror(err));
        } else if (fdatasync(fd) != 0 && errno != EINVAL) {
            st = elag_fail(ELAG_ERR_IO, "%s: fdatasync failed: %s", path, strerror(errno));
        }
    }
    if (fd >= 0) close(fd);
    if (lk >= 0) close(lk);
    free(line);
    return st;
}

elag_status elag_ledger_rewrite(const char *dir, const elag_ledger *l)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    elag_status st = buf ? ELAG_OK : elag_fail(ELAG_ERR_NOMEM, "ledger: out of memory");
    for (int i = 0; st == ELAG_OK && i < l->n; i++) {
        char *t = cJSON_PrintUnformatted(l->rows[i]);
        size_t n = t ? strlen(t) : 0;
        if (t && len + n + 2 > cap) {
            while (len + n + 2 > cap) cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb) buf = nb;
            else {
                free(t);
                t = NULL;
            }
        }
        if (!t) {
            st = elag_fail(ELAG_ERR_NOMEM, "ledger: out of memory");
            break;
        }
        memcpy(buf + len, t, n);
        len += n;
        buf[len++] = '\n';
        free(t);
    }
    int lk = -1;
    if (st == ELAG_OK) st = lock_dir(dir, &lk);
    char path[ELAG_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    if (st == ELAG_OK) st = elag_atomic_write(path, buf, len);
    if (lk >= 0) close(lk);
    free(buf);
    return st;
}

/* ---- CSV ---- */

typedef struct csv_cols {
    char **names;
    int n, cap;
} csv_cols;

static int cols_has(const csv_cols *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->names[i], name) == 0) return 1;
    return 0;
}

static int cols_add(csv_cols *c, const char *name)
{
    if (cols_has(c, name)) return 0;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 32;
        char **v = realloc(c->names, (size_t)cap * sizeof *v);
        if (!v) return -1;
        c->names = v;
        c->cap = cap;
    }
    if (!(c->names[c->n] = strdup(name))) return -1;
    c->n++;
    return 0;
}

static void csv_cell(FILE *f, const cJSON *v)
{
    if (!v || cJSON_IsNull(v)) return;
    char *owned = NULL;
    const char *s = cJSON_IsString(v) ? v->valuestring : (owned = cJSON_PrintUnformatted(v));
    if (!s) return;
    if (strpbrk(s, ",\"\r\n")) {
        fputc('"', f);
        for (const char *p = s; *p; p++) {
            if (*p == '"') fputc('"', f);
            fputc(*p, f);
        }
        fputc('"', f);
    } else {
        fputs(s, f);
    }
    free(owned);
}

elag_status elag_ledger_write_csv(const elag_ledger *l, const char *path)
{
    csv_cols c = {0};
    int oom = cols_add(&c, "run_id") || cols_add(&c, "status");
    for (int r = 0; r < l->n && !oom; r++) { /* swept keys first */
        const cJSON *k;
        cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(l->rows[r], "swept"))
            if (cJSON_IsString(k) && cols_add(&c, k->valuestring)) oom = 1;
    }
    for (int r = 0; r < l->n && !oom; r++) {
        const cJSON *f;
        cJSON_ArrayForEach(f, l->rows[r])
            if (!cJSON_IsObject(f) && !cJSON_IsArray(f) && strcmp(f->string, "error") != 0 &&
                cols_add(&c, f->string))
                oom = 1;
    }
    if (!oom) oom = cols_add(&c, "error");
    elag_status st = oom ? elag_fail(ELAG_ERR_NOMEM, "ledger: out of memory") : ELAG_OK;
    elag_atomic_file af;
    if (st == ELAG_OK) st = elag_atomic_open(&af, path);
    if (st == ELAG_OK) {
        for (int i = 0; i < c.n; i++) fprintf(af.fp, "%s%s", i ? "," : "", c.names[i]);
        fputc('\n', af.fp);
        for (int r = 0; r < l->n; r++) {
            for (int i = 0; i < c.n; i++) {
                if (i) fputc(',', af.fp);
                csv_cell(af.fp, cJSON_GetObjectItemCaseSensitive(l->rows[r], c.names[i]));
            }
            fputc('\n', af.fp);
        }
        st = elag_atomic_commit(&af);
    }
    for (int i = 0; i < c.n; i++) free(c.names[i]);
    free(c.names);
    return st;
}

/* ---- collect ---- */

/* Copies (hard-links where possible) the files of run folder src into dst, which must
 * not hold a finished run yet. Locks and temporary files are left behind. */
static elag_status copy_run_folder(const char *src, const char *dst)
{
    char path[2 * ELAG_PATH_LEN + 300], to[2 * ELAG_PATH_LEN + 300];
    snprintf(path, sizeof path, "%s/summary.json", dst);
    if (access(path, F_OK) == 0) return ELAG_OK;
    DIR *d = opendir(src);
    if (!d) return ELAG_OK; /* the row is enough; the folder may live elsewhere */
    elag_status st = elag_mkdirs(dst);
    struct dirent *e;
    while (st == ELAG_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strstr(e->d_name, ".tmp.")) continue;
        snprintf(path, sizeof path, "%s/%s", src, e->d_name);
        snprintf(to, sizeof to, "%s/%s", dst, e->d_name);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        unlink(to);
        if (link(path, to) == 0) continue;
        char *data = NULL;
        size_t len = 0;
        st = elag_read_file(path, &data, &len);
        if (st == ELAG_OK) st = elag_atomic_write(to, data, len);
        free(data);
    }
    closedir(d);
    return st;
}

static int same_dir(const char *a, const char *b)
{
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* Moves the rows of `from` into `into` (out_dir's ledger first, then each input's, so a
 * later folder's row wins as elag_ledger_add decides); `from` is left empty. With `src`
 * set, each row's run folder src/runs/<id> is copied to out_dir/runs/<id> first. */
static elag_status merge_rows(elag_ledger *into, elag_ledger *from, const char *src,
                              const char *out_dir)
{
    elag_status st = ELAG_OK;
    for (int r = 0; st == ELAG_OK && r < from->n; r++) {
        if (src) {
            char a[ELAG_PATH_LEN + 64], b[ELAG_PATH_LEN + 64];
            snprintf(a, sizeof a, "%s/runs/%s", src, row_id(from->rows[r]));
            snprintf(b, sizeof b, "%s/runs/%s", out_dir, row_id(from->rows[r]));
            st = copy_run_folder(a, b);
        }
        if (st == ELAG_OK) {
            st = elag_ledger_add(into, from->rows[r]);
            from->rows[r] = NULL;
        }
    }
    for (int r = 0; r < from->n; r++) cJSON_Delete(from->rows[r]);
    from->n = 0;
    elag_ledger_free(from);
    return st;
}

elag_status elag_ledger_collect(const char *const *dirs, int n_dirs, const char *out_dir,
                                int *n_rows)
{
    /* Every input ledger is read before out_dir is made: a wrong or unreadable folder
     * leaves nothing on disk. */
    elag_ledger merged = {0}, *in = calloc((size_t)(n_dirs > 0 ? n_dirs : 1), sizeof *in);
    elag_status st = in ? ELAG_OK : elag_fail(ELAG_ERR_NOMEM, "collect: out of memory");
    char path[ELAG_PATH_LEN + 32];
    for (int d = 0; st == ELAG_OK && d < n_dirs; d++) {
        if (same_dir(dirs[d], out_dir)) continue; /* read below as out_dir's own */
        snprintf(path, sizeof path, "%s/results.jsonl", dirs[d]);
        if (access(path, F_OK) != 0)
            st = elag_fail(ELAG_ERR_INPUT, "%s: no results.jsonl there (not a sweep output "
                           "folder?)", dirs[d]);
        else
            st = elag_ledger_read(path, &in[d]);
    }
    if (st == ELAG_OK) st = elag_mkdirs(out_dir);
    snprintf(path, sizeof path, "%s/results.jsonl", out_dir);
    elag_ledger own;
    if (st == ELAG_OK) st = elag_ledger_read(path, &own);
    if (st == ELAG_OK) st = merge_rows(&merged, &own, NULL, out_dir);
    for (int d = 0; st == ELAG_OK && d < n_dirs; d++)
        st = merge_rows(&merged, &in[d], dirs[d], out_dir);
    for (int d = 0; in && d < n_dirs; d++) elag_ledger_free(&in[d]);
    free(in);
    if (st == ELAG_OK) st = elag_ledger_rewrite(out_dir, &merged);
    snprintf(path, sizeof path, "%s/results.csv", out_dir);
    if (st == ELAG_OK) st = elag_ledger_write_csv(&merged, path);
    if (n_rows) *n_rows = merged.n;
    elag_ledger_free(&merged);
    return st;
}
