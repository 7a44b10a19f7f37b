/*
 * Implementation of the shared test helpers (tests/support/testutil.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"

#include "backend/philox.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

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

void elag_test_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * elag_philox_uniform(seed, 77, i);
}

char *elag_test_tmpdir(const char *tag)
{
    char tmpl[256];
    snprintf(tmpl, sizeof tmpl, "/tmp/elag-test-%s-XXXXXX", tag);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
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
