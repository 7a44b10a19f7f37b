/*
 * The sweep ledger (host/sweep/ledger.c) on what test_sweep_ledger.c leaves out: lines
 * that are not rows (blank, not JSON, not an object, no run_id) counted and skipped; a
 * torn last line, long or blank; hundreds of runs (the index grows); which row of a run
 * wins; a refresh after the file shrank; appending after a torn line longer than the
 * read buffer; CSV quoting; and --collect's copies of run folders (links, temporary
 * files and sub-folders left behind, a finished run never overwritten, out_dir among
 * its own inputs).
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"
#include "sweep/sweep.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OK(expr) cr_assert_eq((expr), ELAG_OK, "%s: %s", #expr, elag_last_error())

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("cov-ledger");
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_ledger, .init = setup, .fini = teardown);

static void path_in(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void mkdir_in(const char *name)
{
    char p[700];
    path_in(p, sizeof p, name);
    cr_assert_eq(mkdir(p, 0755), 0, "mkdir %s", p);
}

Test(cov_ledger, lines_that_are_not_rows_and_the_winning_row)
{
    elag_test_put(dir, "results.jsonl",
                  "{\"run_id\": \"a\", \"status\": \"failed\"}\n"
                  "\n"
                  " \t\r\n"
                  "not json\n"
                  "[1, 2]\n"
                  "{\"status\": \"ok\"}\n"
                  "{\"run_id\": 7, \"status\": \"ok\"}\n"
                  "  {\"run_id\": \"a\", \"status\": \"ok\"}\r\n"
                  "{\"run_id\": \"a\", \"status\": \"failed\"}\n"
                  "{\"run_id\": \"b\", \"status\": 3}\n"
                  "{\"run_id\": \"b\", \"status\": \"diverged\"}\n"
                  "{\"run_id\": \"c\", \"sta");
    char p[700];
    path_in(p, sizeof p, "results.jsonl");
    elag_ledger l;
    OK(elag_ledger_read(p, &l));
    cr_expect_eq(l.n, 2, "runs a and b");
    cr_expect_eq(l.n_lines, 9, "complete non-blank lines");
    cr_expect_eq(l.n_bad, 4, "not json, a list, no run_id, a number for run_id");
    cr_expect_eq(l.torn_tail, 1);
    cr_expect_str_eq(elag_ledger_status(elag_ledger_find(&l, "a")), "ok", "ok wins");
    cr_expect_str_eq(elag_ledger_status(elag_ledger_find(&l, "b")), "diverged", "the last wins");
    cr_expect_null(elag_ledger_find(&l, "c"), "a torn line is no row");
    elag_ledger_free(&l);
    elag_ledger_free(NULL);
    /* a tail of blanks is not torn */
    elag_test_put(dir, "results.jsonl", "{\"run_id\": \"a\", \"status\": \"ok\"}\n \t");
    OK(elag_ledger_read(p, &l));
    cr_expect(l.n == 1 && l.torn_tail == 0);
    elag_ledger_free(&l);
    /* an empty ledger has no rows to find */
    elag_ledger empty = {0};
    cr_expect_null(elag_ledger_find(&empty, "a"));
    cJSON *row = cJSON_CreateArray();
    cr_expect_eq(elag_ledger_add(&empty, row), ELAG_ERR_INPUT, "an array is no row");
    elag_ledger_free(&empty);
}

Test(cov_ledger, hundreds_of_runs_and_a_refresh_after_a_rewrite)
{
    char p[700];
    path_in(p, sizeof p, "results.jsonl");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 500; i++) fprintf(f, "{\"run_id\": \"r%d\", \"status\": \"ok\"}\n", i);
    fclose(f);
    elag_ledger l;
    OK(elag_ledger_read(p, &l));
    cr_expect_eq(l.n, 500);
    for (int i = 0; i < 500; i += 37) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        cr_expect_not_null(elag_ledger_find(&l, id), "%s", id);
    }
    cr_expect_null(elag_ledger_find(&l, "r500"));
    /* the file rewritten shorter (a collect into this folder): read again from the start */
    elag_test_put(dir, "results.jsonl", "{\"run_id\": \"x\", \"status\": \"ok\"}\n");
    OK(elag_ledger_refresh(p, &l));
    cr_expect_eq(l.n, 1);
    cr_expect_not_null(elag_ledger_find(&l, "x"));
    elag_ledger_free(&l);
}

Test(cov_ledger, append_after_a_long_torn_line)
{
    char p[700];
    path_in(p, sizeof p, "results.jsonl");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("{\"run_id\": \"a\", \"status\": \"ok\"}\n{\"run_id\": \"b\", \"note\": \"", f);
    for (int i = 0; i < 10000; i++) fputc('x', f); /* a writer killed after 10 kB */
    fclose(f);
    cJSON *row = cJSON_Parse("{\"run_id\": \"c\", \"status\": \"ok\"}");
    OK(elag_ledger_append(dir, row));
    cJSON_Delete(row);
    char *text = elag_test_slurp(p);
    cr_expect_str_eq(text, "{\"run_id\": \"a\", \"status\": \"ok\"}\n"
                           "{\"run_id\":\"c\",\"status\":\"ok\"}\n");
    free(text);
    /* a ledger that is all torn line */
    elag_test_put(dir, "results.jsonl", "{\"run_id\": \"b\"");
    row = cJSON_Parse("{\"run_id\": \"d\", \"status\": \"ok\"}");
    OK(elag_ledger_append(dir, row));
    cJSON_Delete(row);
    text = elag_test_slurp(p);
    cr_expect_str_eq(text, "{\"run_id\":\"d\",\"status\":\"ok\"}\n");
    free(text);
}

Test(cov_ledger, csv_quotes_what_needs_it)
{
    elag_test_put(dir, "results.jsonl",
                  "{\"run_id\": \"a\", \"status\": \"ok\", \"swept\": [\"note\", 5], "
                  "\"note\": \"x, \\\"y\\\"\\nz\", \"acc\": 0.5, \"none\": null, "
                  "\"nested\": {\"k\": 1}, \"list\": [1], \"flag\": true}\n"
                  "{\"run_id\": \"b\", \"status\": \"failed\", \"error\": \"bad, very\"}\n");
    char p[700], csv[700];
    path_in(p, sizeof p, "results.jsonl");
    path_in(csv, sizeof csv, "results.csv");
    elag_ledger l;
    OK(elag_ledger_read(p, &l));
    OK(elag_ledger_write_csv(&l, csv));
    elag_ledger_free(&l);
    char *text = elag_test_slurp(csv);
    cr_expect_str_eq(text, "run_id,status,note,acc,none,flag,error\n"
                           "a,ok,\"x, \"\"y\"\"\nz\",0.5,,true,\n"
                           "b,failed,,,,,\"bad, very\"\n");
    free(text);
}

Test(cov_ledger, collect_copies_run_folders_once)
{
    mkdir_in("s1");
    mkdir_in("s1/runs");
    mkdir_in("s1/runs/a");
    mkdir_in("s1/runs/a/sub");
    mkdir_in("s1/runs/b");
    elag_test_put(dir, "s1/results.jsonl",
                  "{\"run_id\": \"a\", \"status\": \"ok\"}\n"
                  "{\"run_id\": \"b\", \"status\": \"ok\"}\n"
                  "{\"run_id\": \"gone\", \"status\": \"failed\"}\n");
    elag_test_put(dir, "s1/runs/a/summary.json", "{\"test_accuracy\": 0.5}");
    elag_test_put(dir, "s1/runs/a/log.txt", "trained\n");
    elag_test_put(dir, "s1/runs/a/model.safetensors.tmp.123", "partial");
    elag_test_put(dir, "s1/runs/a/.hidden", "x");
    elag_test_put(dir, "s1/runs/b/summary.json", "{\"test_accuracy\": 0.9}");
    /* out already holds run b, finished: it is kept as it is */
    mkdir_in("out");
    mkdir_in("out/runs");
    mkdir_in("out/runs/b");
    elag_test_put(dir, "out/runs/b/summary.json", "{\"test_accuracy\": 0.1}");
    elag_test_put(dir, "out/results.jsonl", "{\"run_id\": \"b\", \"status\": \"ok\"}\n");
    char s1[700], out[700], p[800];
    path_in(s1, sizeof s1, "s1");
    path_in(out, sizeof out, "out");
    const char *dirs[] = {s1, out, s1}; /* out among its inputs, s1 twice */
    int rows = 0;
    OK(elag_ledger_collect(dirs, 3, out, &rows));
    cr_expect_eq(rows, 3, "a, b and gone");
    snprintf(p, sizeof p, "%s/runs/a/log.txt", out);
    cr_expect_eq(access(p, F_OK), 0, "run a's files are copied");
    snprintf(p, sizeof p, "%s/runs/a/model.safetensors.tmp.123", out);
    cr_expect_neq(access(p, F_OK), 0, "temporary files are left behind");
    snprintf(p, sizeof p, "%s/runs/a/sub", out);
    cr_expect_neq(access(p, F_OK), 0, "sub-folders are left behind");
    snprintf(p, sizeof p, "%s/runs/b/summary.json", out);
    char *text = elag_test_slurp(p);
    cr_expect_str_eq(text, "{\"test_accuracy\": 0.1}", "a finished run is not overwritten");
    free(text);
    /* collecting again is harmless */
    OK(elag_ledger_collect(dirs, 1, out, &rows));
    cr_expect_eq(rows, 3);
}
