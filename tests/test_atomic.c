/*
 * Crash-safe writes and shared appends: an atomic write replaces the file and
 * leaves no temporary behind, a failed one leaves the old file as it was, and
 * appenders in several processes never tear each other's lines.
 */
#define _POSIX_C_SOURCE 200809L
#include <criterion/criterion.h>

#include "io/atomic.h"
#include "io/safetensors.h"
#include "support/testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Number of entries in `dir` (without . and ..); fails the test on any "*.tmp.*". */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        cr_assert_null(strstr(e->d_name, ".tmp."), "temporary file left behind: %s", e->d_name);
        n++;
    }
    closedir(d);
    return n;
}

static void expect_content(const char *path, const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(elag_read_file(path, &buf, &len), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(len, strlen(want));
    cr_assert_str_eq(buf, want);
    free(buf);
}

Test(atomic, write_creates_then_replaces_without_leftovers)
{
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "summary.json");
    cr_assert_eq(elag_atomic_write(path, "{\"a\": 1}\n", 9), ELAG_OK, "%s", elag_last_error());
    expect_content(path, "{\"a\": 1}\n");
    cr_assert_eq(count_entries(dir), 1);
    cr_assert_eq(elag_atomic_write(path, "x", 1), ELAG_OK);
    expect_content(path, "x");
    cr_assert_eq(elag_atomic_write(path, NULL, 0), ELAG_OK);
    expect_content(path, "");
    cr_assert_eq(count_entries(dir), 1);
    free(path);
    free(dir);
}

Test(atomic, open_commit_streams_through_fp)
{
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "m.jsonl");
    elag_atomic_file af;
    cr_assert_eq(elag_atomic_open(&af, path), ELAG_OK);
    cr_assert_not_null(strstr(af.tmp_path, ".tmp."));
    for (int i = 0; i < 3; i++) fprintf(af.fp, "line %d\n", i);
    cr_assert_eq(access(path, F_OK), -1, "final name appears only at commit");
    cr_assert_eq(elag_atomic_commit(&af), ELAG_OK, "%s", elag_last_error());
    expect_content(path, "line 0\nline 1\nline 2\n");
    elag_atomic_abort(&af); /* after a commit: does nothing */
    expect_content(path, "line 0\nline 1\nline 2\n");
    cr_assert_eq(count_entries(dir), 1);
    free(path);
    free(dir);
}

Test(atomic, abort_keeps_old_file)
{
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "model.safetensors");
    cr_assert_eq(elag_atomic_write(path, "old", 3), ELAG_OK);
    elag_atomic_file af;
    cr_assert_eq(elag_atomic_open(&af, path), ELAG_OK);
    fputs("new new new", af.fp);
    elag_atomic_abort(&af);
    elag_atomic_abort(&af); /* twice is safe */
    expect_content(path, "old");
    cr_assert_eq(count_entries(dir), 1);
    free(path);
    free(dir);
}

Test(atomic, failed_commit_keeps_old_file)
{
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "summary.json");
    cr_assert_eq(elag_atomic_write(path, "old", 3), ELAG_OK);
    elag_atomic_file af;
    cr_assert_eq(elag_atomic_open(&af, path), ELAG_OK);
    fputs("new", af.fp);
    /* Take the temporary file away so the rename fails, as it would on a full or
     * vanished file system. */
    cr_assert_eq(unlink(af.tmp_path), 0);
    cr_assert_eq(elag_atomic_commit(&af), ELAG_ERR_IO);
    cr_assert(strstr(elag_last_error(), path), "%s", elag_last_error());
    cr_assert(strstr(elag_last_error(), "No such file"), "%s", elag_last_error());
    expect_content(path, "old");
    cr_assert_eq(count_entries(dir), 1);
    free(path);
    free(dir);
}

Test(atomic, write_in_missing_folder_fails_cleanly)
{
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "no/such/dir/file.json");
    cr_assert_eq(elag_atomic_write(path, "x", 1), ELAG_ERR_IO);
    cr_assert(strstr(elag_last_error(), path), "%s", elag_last_error());
    cr_assert(strstr(elag_last_error(), "No such file or directory"), "%s", elag_last_error());
    cr_assert_eq(count_entries(dir), 0);
    free(path);
    free(dir);
}

Test(atomic, write_in_read_only_folder_keeps_old_file)
{
    if (geteuid() == 0) cr_skip_test("running as root: folder permissions do not stop writes");
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "summary.json");
    cr_assert_eq(elag_atomic_write(path, "old", 3), ELAG_OK);
    cr_assert_eq(chmod(dir, 0555), 0);
    elag_status st = elag_atomic_write(path, "new", 3);
    chmod(dir, 0755);
    cr_assert_eq(st, ELAG_ERR_IO);
    cr_assert(strstr(elag_last_error(), "Permission denied"), "%s", elag_last_error());
    expect_content(path, "old");
    cr_assert_eq(count_entries(dir), 1);
    free(path);
    free(dir);
}

Test(atomic, append_line_from_many_processes)
{
    enum { PROCS = 8, LINES = 150, PAYLOAD = 900 };
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "results.jsonl");
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        cr_assert_neq(pids[p], -1);
        if (pids[p] == 0) {
            static char line[PAYLOAD + 64];
            int bad = 0;
            for (int i = 0; i < LINES; i++) {
                int at = snprintf(line, sizeof line, "p%d i%d ", p, i);
                memset(line + at, 'a' + p, PAYLOAD);
                strcpy(line + at + PAYLOAD, " end");
                bad |= elag_append_line(path, line) != ELAG_OK;
            }
            _exit(bad);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        cr_assert_eq(waitpid(pids[p], &status, 0), pids[p]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "appender %d failed", p);
    }

    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(elag_read_file(path, &buf, &len), ELAG_OK);
    int seen[PROCS][LINES] = {{0}};
    int nlines = 0;
    char *save = NULL;
    cr_assert_eq(buf[len - 1], '\n');
    for (char *ln = strtok_r(buf, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        int p = -1, i = -1, off = 0;
        cr_assert_eq(sscanf(ln, "p%d i%d %n", &p, &i, &off), 2, "torn line %d", nlines);
        cr_assert(p >= 0 && p < PROCS && i >= 0 && i < LINES, "torn line %d", nlines);
        cr_assert_eq(strlen(ln), (size_t)off + PAYLOAD + 4, "line %d has the wrong length",
                     nlines);
        for (int k = 0; k < PAYLOAD; k++) cr_assert_eq(ln[off + k], 'a' + p, "torn line");
        cr_assert_str_eq(ln + off + PAYLOAD, " end");
        seen[p][i]++;
        nlines++;
    }
    cr_assert_eq(nlines, PROCS * LINES);
    for (int p = 0; p < PROCS; p++)
        for (int i = 0; i < LINES; i++) cr_assert_eq(seen[p][i], 1, "line p%d i%d", p, i);
    free(buf);
    free(path);
    free(dir);
}

Test(atomic, append_line_fails_in_missing_folder)
{
    cr_assert_eq(elag_append_line("/nonexistent-elag-dir/r.jsonl", "{}"), ELAG_ERR_IO);
    cr_assert_str_eq(elag_last_error(),
                     "/nonexistent-elag-dir/r.jsonl: cannot open for appending: No such file or "
                     "directory");
}

Test(atomic, read_file_reports_missing_file)
{
    char *buf = (char *)1;
    size_t len = 7;
    cr_assert_eq(elag_read_file("/nonexistent-elag-dir/f", &buf, &len), ELAG_ERR_INPUT);
    cr_assert_null(buf);
    cr_assert_str_eq(elag_last_error(),
                     "/nonexistent-elag-dir/f: cannot open: No such file or directory");
}

Test(atomic, read_file_handles_binary_and_large_files)
{
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "bin");
    size_t n = 300000;
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (unsigned char)(i * 7 + (i >> 9));
    cr_assert_eq(elag_atomic_write(path, data, n), ELAG_OK);
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(elag_read_file(path, &buf, &len), ELAG_OK);
    cr_assert_eq(len, n);
    cr_assert_arr_eq(buf, data, n);
    cr_assert_eq(buf[n], '\0');
    free(buf);
    free(data);
    free(path);
    free(dir);
}

Test(atomic, mkdirs_creates_nested_folders)
{
    char *dir = elag_test_tmpdir("atomic");
    char *deep = join(dir, "runs//sweep/a/b/");
    cr_assert_eq(elag_mkdirs(deep), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_mkdirs(deep), ELAG_OK, "existing folders are fine");
    struct stat sb;
    char *leaf = join(dir, "runs/sweep/a/b");
    cr_assert_eq(stat(leaf, &sb), 0);
    cr_assert(S_ISDIR(sb.st_mode));

    char *file = join(dir, "runs/file");
    cr_assert_eq(elag_atomic_write(file, "x", 1), ELAG_OK);
    char *under = join(file, "sub");
    cr_assert_eq(elag_mkdirs(under), ELAG_ERR_IO);
    cr_assert(strstr(elag_last_error(), file), "%s", elag_last_error());
    free(under);
    free(file);
    free(leaf);
    free(deep);
    free(dir);
}

/* ---- a full disk: every writer names the reason ---- */

enum { BIG = 1 << 16 };

static elag_status write_whole(const char *path)
{
    static char data[BIG];
    memset(data, 'x', sizeof data);
    return elag_atomic_write(path, data, sizeof data);
}

/* fprintf through the atomic file: the failure surfaces only at commit (ferror, flush) */
static elag_status write_streamed(const char *path)
{
    elag_atomic_file af;
    elag_status st = elag_atomic_open(&af, path);
    if (st != ELAG_OK) return st;
    for (int i = 0; i < BIG / 16; i++) fprintf(af.fp, "line %09d\n", i);
    return elag_atomic_commit(&af);
}

/* a small write that sits in stdio's buffer until commit flushes it */
static elag_status write_small(const char *path)
{
    return elag_atomic_write(path, "0123456789abcdefghijklmnopqrstuvwxyz0123456789", 46);
}

static elag_status write_safetensors(const char *path)
{
    static float data[BIG / 4];
    int64_t shape[1] = {BIG / 4};
    elag_st_writer *w;
    elag_status st = elag_st_writer_init(&w);
    if (st == ELAG_OK) st = elag_st_writer_add(w, "t", ELAG_DTYPE_F32, 1, shape, data);
    if (st == ELAG_OK) st = elag_st_writer_meta(w, "format", "x");
    if (st == ELAG_OK) st = elag_st_writer_save(w, path);
    elag_st_writer_free(w);
    return st;
}

/* Runs fn(path) in a child whose files cannot grow past 32 bytes (RLIMIT_FSIZE with
 * SIGXFSZ ignored: write(2) fails with EFBIG, as it fails with ENOSPC on a full disk) and
 * returns its status and message. */
static elag_status write_limited(elag_status (*fn)(const char *), const char *path, char *msg,
                                 size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        close(fds[0]);
        struct rlimit rl = {32, 32};
        signal(SIGXFSZ, SIG_IGN);
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(100);
        elag_status st = fn(path);
        const char *m = elag_last_error();
        ssize_t n = write(fds[1], m, strlen(m));
        (void)n;
        _exit(st == ELAG_OK ? 0 : -st);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], msg + len, cap - 1 - len)) > 0) len += (size_t)n;
    msg[len] = '\0';
    close(fds[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 100, "setrlimit failed");
    return WEXITSTATUS(status) == 0 ? ELAG_OK : (elag_status)-WEXITSTATUS(status);
}

Test(atomic, full_disk_names_the_reason_and_keeps_the_old_file)
{
    static const struct {
        const char *what;
        elag_status (*fn)(const char *);
    } writers[] = {{"atomic_write", write_whole},
                   {"streamed", write_streamed},
                   {"buffered", write_small},
                   {"safetensors", write_safetensors}};
    char *dir = elag_test_tmpdir("atomic");
    char *path = join(dir, "model.safetensors");
    for (size_t i = 0; i < sizeof writers / sizeof writers[0]; i++) {
        cr_assert_eq(elag_atomic_write(path, "old", 3), ELAG_OK);
        char msg[1024], want[1200];
        elag_status st = write_limited(writers[i].fn, path, msg, sizeof msg);
        cr_assert_eq(st, ELAG_ERR_IO, "%s: status %d: %s", writers[i].what, st, msg);
        snprintf(want, sizeof want, "%s: write failed: %s", path, strerror(EFBIG));
        cr_assert_str_eq(msg, want, "%s", writers[i].what);
        expect_content(path, "old");
        cr_assert_eq(count_entries(dir), 1, "%s", writers[i].what);
    }
    elag_test_rmtree(dir);
    free(path);
    free(dir);
}
