/*
 * The sweep ledger (host/sweep/ledger.c): rows appended by many processes at once stay
 * whole and unmixed; a partial last line (a writer SIGKILLed inside write(2)) is ignored
 * by readers and cut off by the next writer; one row per run id (ok wins over failed,
 * otherwise the last row); results.csv has one row per run; collect merges ledgers.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/testutil.h"
#include "io/atomic.h"
#include "sweep/sweep.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("ledger");
    cr_assert_not_null(dir);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(ledger, .init = setup, .fini = teardown);

static cJSON *row(const char *id, const char *status, double acc)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "run_id", id);
    cJSON_AddStringToObject(r, "status", status);
    cJSON *swept = cJSON_AddArrayToObject(r, "swept");
    cJSON_AddItemToArray(swept, cJSON_CreateString("prune.target"));
    cJSON_AddNumberToObject(r, "prune.target", 0.5);
    cJSON_AddNumberToObject(r, "test_accuracy", acc);
    cJSON_AddStringToObject(r, "note", "has, a comma and \"quotes\"");
    return r;
}

static void append(const char *id, const char *status, double acc)
{
    cJSON *r = row(id, status, acc);
    cr_assert_eq(elag_ledger_append(dir, r), ELAG_OK, "%s", elag_last_error());
    cJSON_Delete(r);
}

static void append_raw(const char *text)
{
    char path[700];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    FILE *f = fopen(path, "a");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static elag_ledger read_ledger(void)
{
    char path[700];
    snprintf(path, sizeof path, "%s/results.jsonl", dir);
    elag_ledger l;
    cr_assert_eq(elag_ledger_read(path, &l), ELAG_OK, "%s", elag_last_error());
    return l;
}

static double acc_of(const elag_ledger *l, const char *id)
{
    const cJSON *r = elag_ledger_find(l, id);
    cr_assert_not_null(r, "no row for %s", id);
    return cJSON_GetObjectItemCaseSensitive(r, "test_accuracy")->valuedouble;
}

Test(ledger, missing_file_is_empty)
{
    elag_ledger l = read_ledger();
    cr_assert_eq(l.n, 0);
    elag_ledger_free(&l);
}

Test(ledger, concurrent_appends_stay_whole)
{
    enum { PROCS = 6, ROWS = 60 };
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            for (int i = 0; i < ROWS; i++) {
                char id[32];
                snprintf(id, sizeof id, "p%d-r%d", p, i);
                cJSON *r = row(id, "ok", p + i / 1000.0);
                /* long rows: many pages would tear without the single write */
                char pad[6000];
                memset(pad, 'x', sizeof pad - 1);
                pad[sizeof pad - 1] = '\0';
                cJSON_AddStringToObject(r, "pad", pad);
                if (elag_ledger_append(dir, r) != ELAG_OK) _exit(1);
                cJSON_Delete(r);
            }
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int st;
        wait(&st);
        cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    elag_ledger l = read_ledger();
    cr_assert_eq(l.n, PROCS * ROWS);
    cr_assert_eq(l.n_lines, PROCS * ROWS);
    cr_assert_eq(l.n_bad, 0);
    cr_assert_eq(l.torn_tail, 0);
    cr_assert_eq(acc_of(&l, "p3-r7"), 3.007);
    elag_ledger_free(&l);
}

Test(ledger, torn_tail_is_ignored_then_cut)
{
    append("a", "ok", 0.5);
    append_raw("{\"run_id\":\"b\",\"status\":\"ok\",\"test_acc"); /* writer died here */
    elag_ledger l = read_ledger();
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.torn_tail, 1);
    elag_ledger_free(&l);

    append("c", "ok", 0.7); /* must not glue onto the torn line */
    l = read_ledger();
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.torn_tail, 0);
    cr_assert_eq(l.n_bad, 0);
    cr_assert_null(elag_ledger_find(&l, "b"));
    cr_assert_eq(acc_of(&l, "c"), 0.7);
    elag_ledger_free(&l);
}

Test(ledger, whole_file_torn)
{
    append_raw("{\"run_id\":\"x\"");
    append("y", "ok", 0.1);
    elag_ledger l = read_ledger();
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.n_lines, 1);
    elag_ledger_free(&l);
}

Test(ledger, one_row_per_run)
{
    append("a", "failed", 0);
    append("b", "ok", 0.6);
    append("a", "ok", 0.8);     /* --retry-failed succeeded: the last row wins */
    append("b", "failed", 0);   /* a failure never replaces a finished run */
    append("c", "failed", 0.1);
    append("c", "failed", 0.2); /* retried and failed again: the last one */
    append_raw("not json\n\n");
    elag_ledger l = read_ledger();
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.n_bad, 1);
    cr_assert_str_eq(elag_ledger_status(elag_ledger_find(&l, "a")), "ok");
    cr_assert_eq(acc_of(&l, "a"), 0.8);
    cr_assert_str_eq(elag_ledger_status(elag_ledger_find(&l, "b")), "ok");
    cr_assert_eq(acc_of(&l, "c"), 0.2);
    /* order of first appearance */
    cr_assert_str_eq(cJSON_GetObjectItem(l.rows[0], "run_id")->valuestring, "a");
    cr_assert_str_eq(cJSON_GetObjectItem(l.rows[2], "run_id")->valuestring, "c");

    char path[700];
    snprintf(path, sizeof path, "%s/results.csv", dir);
    cr_assert_eq(elag_ledger_write_csv(&l, path), ELAG_OK);
    FILE *f = fopen(path, "r");
    char line[4][512];
    int n = 0;
    while (n < 4 && fgets(line[n], sizeof line[n], f)) n++;
    cr_assert_null(fgets(line[0], sizeof line[0], f), "more than 3 rows");
    fclose(f);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(line[0], "run_id,status,prune.target,test_accuracy,note,error\n");
    cr_assert_str_eq(line[1], "a,ok,0.5,0.8,\"has, a comma and \"\"quotes\"\"\",\n");
    elag_ledger_free(&l);
}

Test(ledger, collect_merges_and_dedupes)
{
    char a[700], b[700], out[700];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(out, sizeof out, "%s/merged", dir);
    mkdir(a, 0755);
    mkdir(b, 0755);
    const char *ids_a[] = {"r1", "r2", "r3"}, *ids_b[] = {"r3", "r4"};
    for (int i = 0; i < 3; i++) {
        cJSON *r = row(ids_a[i], i == 2 ? "failed" : "ok", 0.1 * i);
        cr_assert_eq(elag_ledger_append(a, r), ELAG_OK);
        cJSON_Delete(r);
    }
    for (int i = 0; i < 2; i++) {
        cJSON *r = row(ids_b[i], "ok", 0.5 + i);
        cr_assert_eq(elag_ledger_append(b, r), ELAG_OK);
        cJSON_Delete(r);
    }
    char runs[760], file[800];
    snprintf(runs, sizeof runs, "%s/runs/r4", b);
    cr_assert_eq(elag_mkdirs(runs), ELAG_OK);
    snprintf(file, sizeof file, "%s/summary.json", runs);
    cr_assert_eq(elag_atomic_write(file, "{}", 2), ELAG_OK);

    const char *dirs[] = {a, b};
    int n = 0;
    cr_assert_eq(elag_ledger_collect(dirs, 2, out, &n), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(n, 4);
    snprintf(file, sizeof file, "%s/runs/r4/summary.json", out);
    cr_assert_eq(access(file, R_OK), 0, "run folder not copied");
    /* collecting again (and into itself) changes nothing */
    const char *again[] = {a, b, out};
    cr_assert_eq(elag_ledger_collect(again, 3, out, &n), ELAG_OK);
    cr_assert_eq(n, 4);
    snprintf(file, sizeof file, "%s/results.jsonl", out);
    elag_ledger l;
    cr_assert_eq(elag_ledger_read(file, &l), ELAG_OK);
    cr_assert_eq(l.n_lines, 4, "merged ledger has one line per run");
    cr_assert_str_eq(elag_ledger_status(elag_ledger_find(&l, "r3")), "ok");
    elag_ledger_free(&l);

    const char *missing[] = {"/nonexistent-elag-dir"};
    cr_assert_eq(elag_ledger_collect(missing, 1, out, &n), ELAG_ERR_INPUT);
}
