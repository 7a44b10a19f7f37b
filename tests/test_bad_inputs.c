/*
 * The bad-input corpus (tests/data/bad/): every case of cases.txt, run through the CLI in
 * a copy of that folder, must exit 2 with exactly one line on stderr that names the bad
 * file, print nothing on stdout, and leave every file and folder of the copy as it was
 * (names and bytes: no run folder, no temporary file, no output). The binary cases
 * (checkpoints, exports, IDX files) are made at test time by make_bad.py from a checkpoint
 * of good.yaml and its exports, trained and written here with the CLI.
 */
#define _XOPEN_SOURCE 700
#include <criterion/criterion.h>

#include "io/atomic.h"
#include "support/testutil.h"

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define BAD_DIR ELAG_SOURCE_DIR "/tests/data/bad"
#define MIN_FILES 50 /* distinct bad files the corpus must keep (issue 10) */

/* ---- a fingerprint of a folder tree: every entry's name, kind and bytes ---- */

typedef struct entry {
    char *path;
    uint64_t hash;
} entry;

static entry *entries;
static size_t n_entries, cap_entries, root_len;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb, (void)ftw;
    uint64_t h = fnv(14695981039346656037ull, &type, sizeof type);
    if (type == FTW_F) {
        char *data;
        size_t len;
        if (elag_read_file(path, &data, &len) != ELAG_OK) return 1;
        h = fnv(h, data, len);
        free(data);
    }
    if (n_entries == cap_entries) {
        cap_entries = cap_entries ? 2 * cap_entries : 256;
        entries = realloc(entries, cap_entries * sizeof *entries);
    }
    entries[n_entries].path = strdup(path + root_len);
    entries[n_entries++].hash = h;
    return 0;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const entry *)a)->path, ((const entry *)b)->path);
}

static uint64_t tree_hash(const char *root)
{
    n_entries = 0;
    root_len = strlen(root);
    cr_assert_eq(nftw(root, visit, 16, FTW_PHYS), 0, "cannot read %s", root);
    qsort(entries, n_entries, sizeof *entries, cmp_entry);
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n_entries; i++) {
        h = fnv(h, entries[i].path, strlen(entries[i].path) + 1);
        h = fnv(h, &entries[i].hash, sizeof entries[i].hash);
        free(entries[i].path);
    }
    return h;
}

/* ---- running the CLI ---- */

static char *dir, *outdir;

static int run(const char *args, char **out, char **err)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s > '%s/out' 2> '%s/err' < /dev/null", dir,
             ELAG_CLI_PATH, args, outdir, outdir);
    int st = system(cmd);
    cr_assert(st != -1 && WIFEXITED(st), "cannot run: %s", cmd);
    char path[1100];
    size_t len;
    snprintf(path, sizeof path, "%s/out", outdir);
    cr_assert_eq(elag_read_file(path, out, &len), ELAG_OK);
    snprintf(path, sizeof path, "%s/err", outdir);
    cr_assert_eq(elag_read_file(path, err, &len), ELAG_OK);
    return WEXITSTATUS(st);
}

static void run_ok(const char *args)
{
    char *out, *err;
    int rc = run(args, &out, &err);
    cr_assert_eq(rc, 0, "elag %s: exit %d\n%s%s", args, rc, out, err);
    free(out);
    free(err);
}

/* `text` with every "{}" replaced by `file`. */
static void expand(const char *text, const char *file, char *buf, size_t cap)
{
    size_t at = 0;
    for (const char *p = text; *p && at + 1 < cap; p++) {
        if (p[0] == '{' && p[1] == '}') {
            at += (size_t)snprintf(buf + at, cap - at, "%s", file);
            if (at >= cap) at = cap - 1;
            p++;
        } else {
            buf[at++] = *p;
        }
    }
    buf[at] = '\0';
}

static void setup(void)
{
    dir = elag_test_tmpdir("bad");
    outdir = elag_test_tmpdir("bad-out");
    cr_assert(dir && outdir);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    elag_test_rmtree(outdir);
    free(dir);
    free(outdir);
}

Test(bad_inputs, corpus_exit_2_one_line_nothing_changed, .init = setup, .fini = teardown,
     .timeout = 600)
{
    if (!elag_test_python_has("gzip, json, struct"))
        cr_skip_test("bad-input corpus: %s cannot run tests/data/bad/make_bad.py (install "
                     "python3)", elag_test_python());
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "cp -R '%s/.' '%s/'", BAD_DIR, dir);
    cr_assert_eq(elag_test_run(cmd, NULL), 0, "%s", cmd);
    run_ok("train good.yaml --out good --quiet --device cpu");
    run_ok("export good/model.safetensors --format csr -o good/model.csr.safetensors");
    run_ok("export good/model.safetensors --format bell:8 -o good/model.bell.safetensors");
    snprintf(cmd, sizeof cmd, "'%s' '%s/make_bad.py' '%s'", elag_test_python(), dir, dir);
    cr_assert_eq(elag_test_run(cmd, NULL), 0, "%s", cmd);

    char path[1100], *cases;
    size_t len;
    snprintf(path, sizeof path, "%s/cases.txt", BAD_DIR);
    cr_assert_eq(elag_read_file(path, &cases, &len), ELAG_OK, "%s", elag_last_error());
    int n_cases = 0, failed = 0, n_files = 0;
    char seen[200][128];
    char *save = NULL;
    for (char *line = strtok_r(cases, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || line[0] == '\0') continue;
        char file[128], args[1024], *rest = line + strcspn(line, " ");
        snprintf(file, sizeof file, "%.*s", (int)(rest - line), line);
        rest += strspn(rest, " ");
        cr_assert(*rest, "cases.txt: no command in '%s'", line);
        expand(rest, file, args, sizeof args);
        int known = 0;
        for (int i = 0; i < n_files && !known; i++) known = strcmp(seen[i], file) == 0;
        if (!known && n_files < 200) snprintf(seen[n_files++], sizeof seen[0], "%s", file);

        uint64_t before = tree_hash(dir);
        char *out, *err;
        int rc = run(args, &out, &err);
        uint64_t after = tree_hash(dir);
        char *nl = strchr(err, '\n');
        const char *why = rc != 2                    ? "exit status is not 2"
                          : !nl || nl[1] != '\0'     ? "stderr is not exactly one line"
                          : !strstr(err, file)       ? "stderr does not name the file"
                          : out[0] != '\0'           ? "something on stdout"
                          : before != after          ? "files on disk changed"
                                                     : NULL;
        if (why) {
            fprintf(stderr, "bad input %s: elag %s: %s (exit %d)\n  stderr: %s  stdout: %s\n",
                    file, args, why, rc, err, out);
            failed++;
        }
        n_cases++;
        free(out);
        free(err);
    }
    free(cases);
    free(entries);
    entries = NULL;
    cap_entries = 0;
    cr_assert_eq(failed, 0, "%d of %d bad-input cases failed (see above)", failed, n_cases);
    cr_assert_geq(n_files, MIN_FILES, "the corpus has %d distinct bad files, at least %d wanted",
                  n_files, MIN_FILES);
}
