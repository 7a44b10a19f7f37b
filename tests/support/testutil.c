/*
 * Implementation of the shared test helpers (tests/support/testutil.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include "backend/philox.h"
#include "io/safetensors.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

size_t elag_test_compare(const char *what, const float *a, const float *b, size_t n,
                         double abs_tol, double rel_tol)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        int nan_mismatch = isnan(a[i]) != isnan(b[i]);
        if (nan_mismatch || d > abs_tol + rel_tol * fabs((double)b[i])) {
            if (bad < 5)
                fprintf(stderr, "%s: mismatch at %zu: got %.9g, want %.9g (diff %.3g)\n", what, i,
                        (double)a[i], (double)b[i], d);
            bad++;
        }
    }
    if (bad) fprintf(stderr, "%s: %zu of %zu entries differ\n", what, bad, n);
    return bad;
}

size_t elag_test_bit_diffs(const char *what, const float *a, const float *b, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t x, y;
        memcpy(&x, &a[i], sizeof x);
        memcpy(&y, &b[i], sizeof y);
        if (x == y) continue;
        if (bad < 5)
            fprintf(stderr, "%s: bits differ at %zu: got %.9g (0x%08x), want %.9g (0x%08x)\n",
                    what, i, (double)a[i], (unsigned)x, (double)b[i], (unsigned)y);
        bad++;
    }
    if (bad) fprintf(stderr, "%s: %zu of %zu entries differ in their bits\n", what, bad, n);
    return bad;
}

void elag_test_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * elag_philox_uniform(seed, 77, i);
}

/* Folders made by elag_test_tmpdir, removed when the process that made them exits: a test
 * whose assertion fails (Criterion ends its process then) leaves nothing behind either. A
 * forked child that exits does not remove its parent's folders. */
#define TMPDIR_MAX 64
static char *made[TMPDIR_MAX];
static pid_t made_by[TMPDIR_MAX];
static int n_made;

static void remove_made(void)
{
    for (int i = 0; i < n_made; i++)
        if (made[i] && made_by[i] == getpid()) elag_test_rmtree(made[i]);
}

char *elag_test_tmpdir(const char *tag)
{
    /* $TMPDIR when set (a private folder shows what a test leaves behind), else /tmp */
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/elag-test-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(tmpl);
    if (!d) return NULL;
    if (n_made == 0) atexit(remove_made);
    if (n_made < TMPDIR_MAX) {
        made_by[n_made] = getpid();
        made[n_made++] = strdup(d);
    }
    return strdup(d);
}

int elag_test_run(const char *cmd, const char *out_path)
{
    char full[4096];
    if (out_path)
        snprintf(full, sizeof full, "%s > '%s' 2>&1 < /dev/null", cmd, out_path);
    else
        snprintf(full, sizeof full, "%s > /dev/null 2>&1 < /dev/null", cmd);
    int st = system(full);
    if (st == -1 || !WIFEXITED(st)) return -1;
    return WEXITSTATUS(st);
}

void elag_test_put(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

void elag_test_rmtree(const char *dir)
{
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    elag_test_run(cmd, NULL);
}

const char *elag_test_python(void)
{
    const char *py = getenv("ELAG_PYTHON");
    return py && *py ? py : "/usr/bin/python3";
}

int elag_test_python_has(const char *modules)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import %s'", elag_test_python(), modules);
    return elag_test_run(cmd, NULL) == 0;
}

char *elag_test_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    char *text = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (cap - len < 4096) {
            cap = cap ? 2 * cap : 8192;
            text = realloc(text, cap + 1);
            cr_assert_not_null(text, "out of memory reading %s", path);
        }
        got = fread(text + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    text[len] = '\0';
    return text;
}

void elag_test_checkpoint_bytes(const char *dir, unsigned char **out, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    elag_st_file *f;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    size_t total = 0;
    for (int i = 0; i < elag_st_count(f); i++) total += elag_st_at(f, i)->nbytes;
    unsigned char *buf = malloc(total ? total : 1), *p = buf;
    cr_assert_not_null(buf);
    for (int i = 0; i < elag_st_count(f); i++) {
        const elag_st_tensor *t = elag_st_at(f, i);
        memcpy(p, t->data, t->nbytes);
        p += t->nbytes;
    }
    elag_st_close(f);
    *out = buf;
    *n = total;
}

void elag_test_expect_same_checkpoint(const char *a_dir, const char *b_dir, const char *what)
{
    unsigned char *wa, *wb;
    size_t na, nb;
    elag_test_checkpoint_bytes(a_dir, &wa, &na);
    elag_test_checkpoint_bytes(b_dir, &wb, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(wa, wb, na), 0, "%s", what);
    free(wa);
    free(wb);
}

void elag_test_put_npy_ints(const char *path, const char *descr, const void *data, size_t elem,
                            long n)
{
    char dict[128];
    int len = snprintf(dict, sizeof dict,
                       "{'descr': '%s', 'fortran_order': False, 'shape': (%ld,), }", descr, n);
    size_t pad = (64 - (10 + (size_t)len + 1) % 64) % 64, hlen = (size_t)len + pad + 1;
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    unsigned char pre[10] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)hlen, (unsigned char)(hlen >> 8)};
    fwrite(pre, 1, 10, f);
    fputs(dict, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(data, elem, (size_t)n, f); /* little-endian host (x86, arm64) */
    fclose(f);
}
