/*
 * `elag train` under real signals and bad numbers, through the binary: SIGINT mid-epoch
 * exits 130 with one line naming the resume command, and `--resume` then ends bit for bit
 * where an uninterrupted run ends (metrics rows once each, the whole run's mask updates);
 * SIGTERM exits 143; SIGKILL after a train.checkpoint_steps checkpoint, then `--resume`, is
 * bit for bit too and removes the temporary file a killed save leaves; a resume with a
 * changed seed exits 2 naming it and changes nothing in the folder; a diverging run exits
 * 1 naming the step and the tensor, and a sweep records it as "diverged"; `eval` and
 * `export` refuse a checkpoint holding NaN with exit 2 and one line.
 */
#define _POSIX_C_SOURCE 200809L
#include "io/atomic.h"
#include "io/safetensors.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* About half a second of training on one core (1024 steps, 256 an epoch): long enough to
 * be signalled early, in its first epoch. */
static const char long_yaml[] =
    "name: long\n"
    "device: cpu\n"
    "seed: 5\n"
    "data:\n"
    "  dataset: synthetic\n"
    "  synthetic: {train: 8192, test: 256, features: 128, classes: 4}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: linear, out_features: 1024}\n"
    "    - {type: relu}\n"
    "    - {type: linear, out_features: 4}\n"
    "train: {epochs: 4, batch_size: 32, threads: 1, log_every: 10}\n"
    "prune: {method: gmp, target: 0.8, start: 0, end: 0.8, frequency: 7}\n";

static const char tiny_yaml[] =
    "name: tiny\n"
    "device: cpu\n"
    "data:\n"
    "  dataset: synthetic\n"
    "  synthetic: {train: 128, test: 64, features: 8, classes: 3}\n"
    "model:\n"
    "  layers:\n"
    "    - {type: linear, out_features: 8}\n"
    "    - {type: relu}\n"
    "    - {type: linear, out_features: 3}\n"
    "train: {epochs: 3, batch_size: 32, threads: 1}\n"
    "prune: {method: gmp, target: 0.5, start: 0, end: 0.5, frequency: 1}\n";

static char *dir;

static void setup(void)
{
    dir = elag_test_tmpdir("interrupt");
    elag_test_put(dir, "long.yaml", long_yaml);
    elag_test_put(dir, "tiny.yaml", tiny_yaml);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(interrupt, .init = setup, .fini = teardown);

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *slurp(const char *name)
{
    char path[700], *text = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (elag_read_file(path, &text, NULL) != ELAG_OK) return strdup("");
    return text;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

/* Starts `elag train long.yaml --out RUN -q [extra]` in the test folder, stderr into
 * RUN.err; returns its pid. */
static pid_t start_train(const char *run, const char *extra)
{
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char err[128];
        snprintf(err, sizeof err, "%s.err", run);
        if (chdir(dir) != 0 || !freopen("/dev/null", "w", stdout) || !freopen(err, "w", stderr))
            _exit(127);
        signal(SIGINT, SIG_DFL); /* as from a terminal, whatever our runner ignores */
        signal(SIGTERM, SIG_DFL);
        execl(ELAG_CLI_PATH, ELAG_CLI_PATH, "train", "long.yaml", "--out", run, "-q",
              extra ? "--set" : (char *)NULL, extra, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until RUN/metrics.jsonl has `lines` rows (and, when want_ckpt, RUN has a
 * checkpoint), failing after 60 s or when the child ends first. */
static void wait_progress(pid_t pid, const char *run, int lines, int want_ckpt)
{
    char metrics[64], ckpt[64];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    for (int waited = 0; waited < 60000; waited += 2) {
        char *m = slurp(metrics);
        int n = count_lines(m);
        free(m);
        char path[700];
        snprintf(path, sizeof path, "%s/%s", dir, ckpt);
        if (n >= lines && (!want_ckpt || access(path, F_OK) == 0)) return;
        int st;
        cr_assert_eq(waitpid(pid, &st, WNOHANG), 0, "training ended before it was signalled");
        sleep_ms(2);
    }
    cr_assert_fail("no progress in 60 s");
}

static int wait_exit(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st), "killed by signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return WEXITSTATUS(st);
}

/* Runs `elag ARGS` in the test folder; exit code, output (stdout and stderr) in .out. */
static int elag(const char *args)
{
    char cmd[2048], out[700];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s", dir, ELAG_CLI_PATH, args);
    snprintf(out, sizeof out, "%s/.out", dir);
    return elag_test_run(cmd, out);
}

static void tensors(const char *run, unsigned char **out, size_t *n)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, run);
    elag_st_file *f;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    size_t total = 0;
    for (int i = 0; i < elag_st_count(f); i++) total += elag_st_at(f, i)->nbytes;
    unsigned char *buf = malloc(total), *p = buf;
    for (int i = 0; i < elag_st_count(f); i++) {
        memcpy(p, elag_st_at(f, i)->data, elag_st_at(f, i)->nbytes);
        p += elag_st_at(f, i)->nbytes;
    }
    elag_st_close(f);
    *out = buf;
    *n = total;
}

static long ckpt_meta(const char *run, const char *key)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, run);
    elag_st_file *f;
    cr_assert_eq(elag_st_open(path, &f), ELAG_OK, "%s", elag_last_error());
    long v = strtol(elag_st_meta(f, key), NULL, 10);
    elag_st_close(f);
    return v;
}

static double summary_number(const char *run, const char *key)
{
    char name[128];
    snprintf(name, sizeof name, "%s/summary.json", run);
    char *text = slurp(name);
    cJSON *o = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(o, "no %s", name);
    const cJSON *v = cJSON_GetObjectItem(o, key);
    cr_assert(cJSON_IsNumber(v), "%s has no %s", name, key);
    double x = v->valuedouble;
    cJSON_Delete(o);
    return x;
}

/* run's metrics rows are those of "full", each once. */
static void expect_same_metrics(const char *run)
{
    char name[128];
    snprintf(name, sizeof name, "%s/metrics.jsonl", run);
    char *a = slurp("full/metrics.jsonl"), *b = slurp(name);
    int n = count_lines(a);
    cr_assert_eq(count_lines(b), n, "%d metrics rows, uninterrupted %d", count_lines(b), n);
    char *sa, *sb, *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);
    for (; la && lb; la = strtok_r(NULL, "\n", &sa), lb = strtok_r(NULL, "\n", &sb)) {
        cJSON *x = cJSON_Parse(la), *y = cJSON_Parse(lb);
        cr_assert(x && y);
        cr_assert_str_eq(cJSON_GetObjectItem(x, "type")->valuestring,
                         cJSON_GetObjectItem(y, "type")->valuestring);
        cr_assert_eq(cJSON_GetObjectItem(x, "step")->valuedouble,
                     cJSON_GetObjectItem(y, "step")->valuedouble, "metrics rows differ: %s", lb);
        cJSON_Delete(x);
        cJSON_Delete(y);
    }
    free(a);
    free(b);
}

static void expect_same_as_full(const char *run)
{
    unsigned char *a, *b;
    size_t na, nb;
    tensors("full", &a, &na);
    tensors(run, &b, &nb);
    cr_assert_eq(na, nb);
    cr_assert_eq(memcmp(a, b, na), 0, "%s differs from the uninterrupted run", run);
    free(a);
    free(b);
    cr_assert_eq(summary_number(run, "mask_updates"), summary_number("full", "mask_updates"));
    cr_assert_eq(summary_number(run, "steps"), 1024);
    expect_same_metrics(run);
}

Test(interrupt, sigint_mid_epoch_then_resume_is_bit_for_bit)
{
    cr_assert_eq(elag("train long.yaml --out full -q"), 0);
    pid_t pid = start_train("part", NULL);
    wait_progress(pid, "part", 2, 0);
    cr_assert_eq(kill(pid, SIGINT), 0);
    cr_assert_eq(wait_exit(pid), 130);
    char *err = slurp("part.err");
    cr_assert_eq(count_lines(err), 1, "one line:\n%s", err);
    cr_assert(strstr(err, "elag: interrupted at step "), "%s", err);
    cr_assert(strstr(err, "; resume with: elag train --resume part\n"), "%s", err);
    free(err);
    long step = ckpt_meta("part", "step");
    cr_assert(step >= 20 && step < 256, "checkpoint at step %ld, not in the first epoch", step);
    cr_assert_eq(ckpt_meta("part", "epoch_step"), step, "mid-epoch");
    cr_assert_eq(elag("train --resume part -q"), 0);
    expect_same_as_full("part");

    /* SIGTERM: the same, exit 143 */
    pid = start_train("term", NULL);
    wait_progress(pid, "term", 1, 0);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    cr_assert_eq(wait_exit(pid), 143);
    cr_assert_gt(ckpt_meta("term", "step"), 0);
}

/* The signals pid catches (SigCgt of /proc/PID/status); 0 with *alive = 0 once it has
 * exited (a zombie has no handlers). */
static unsigned long long caught_signals(pid_t pid, int *alive)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    unsigned long long mask = 0;
    *alive = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "State:", 6) == 0) *alive = strchr(line, 'Z') == NULL;
        if (strncmp(line, "SigCgt:", 7) == 0) mask = strtoull(line + 7, NULL, 16);
    }
    if (f) fclose(f);
    return *alive ? mask : 0;
}

/* A second Ctrl-C ends the run at once, even while it is saving the checkpoint the first
 * one asked for: a FIFO in place of the save's temporary file holds that save in open(2)
 * (no reader), where the first SIGINT's handler has already put the default action back.
 * Without that, the second SIGINT would be caught and the run would stay blocked. */
Test(interrupt, second_sigint_ends_the_run_at_once)
{
    const unsigned long long int_bit = 1ull << (SIGINT - 1);
    pid_t pid = start_train("twice", NULL);
    wait_progress(pid, "twice", 1, 0); /* past start-up and its clean-up of temporaries */
    char fifo[800];
    snprintf(fifo, sizeof fifo, "%s/twice/model.safetensors.tmp.%ld", dir, (long)pid);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    int alive;
    cr_assert(caught_signals(pid, &alive) & int_bit, "SIGINT not caught while training");
    cr_assert_eq(kill(pid, SIGINT), 0);
    int reset = 0;
    for (int waited = 0; waited < 5000 && !reset; waited += 1) { /* the save blocks */
        reset = alive && !(caught_signals(pid, &alive) & int_bit);
        if (!alive) break;
        sleep_ms(1);
    }
    int st = 0;
    if (reset) {
        cr_assert_eq(kill(pid, SIGINT), 0);
        for (int waited = 0; waited < 5000 && waitpid(pid, &st, WNOHANG) == 0; waited += 5)
            sleep_ms(5);
    }
    if (waitpid(pid, &st, WNOHANG) == 0) { /* still blocked: a test failure, not a hang */
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        cr_assert_fail("the second SIGINT did not end the run (handler reset: %d)", reset);
    }
    cr_assert(reset, "SIGINT still caught after the first one");
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT, "not ended by the second SIGINT");
}

Test(interrupt, sigkill_then_resume_is_bit_for_bit_and_tidy)
{
    cr_assert_eq(elag("train long.yaml --out full -q"), 0);
    pid_t pid = start_train("kill", "train.checkpoint_steps=30");
    wait_progress(pid, "kill", 6, 1); /* step 60: a checkpoint (30) and rows past it */
    cr_assert_eq(kill(pid, SIGKILL), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "ended before the kill");
    long step = ckpt_meta("kill", "step");
    cr_assert(step > 0 && step % 30 == 0, "checkpoint at %ld", step);
    /* what a save killed half-way leaves (its pid is gone) */
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    cr_assert_eq(waitpid(dead, NULL, 0), dead);
    char tmp[128], path[800];
    snprintf(tmp, sizeof tmp, "kill/model.safetensors.tmp.%ld", (long)dead);
    snprintf(path, sizeof path, "%s/%s", dir, tmp);
    elag_test_put(dir, tmp, "torn");
    char *m = slurp("kill/metrics.jsonl");
    cr_assert(strstr(m, "\"step\":60"), "no row past the checkpoint to cut:\n%s", m);
    free(m);

    cr_assert_eq(elag("train --resume kill -q"), 0);
    cr_assert_neq(access(path, F_OK), 0, "%s left behind", tmp);
    expect_same_as_full("kill");
}

Test(interrupt, resume_with_changed_seed_exits_2_and_changes_nothing)
{
    cr_assert_eq(elag("train tiny.yaml --out run -q"), 0);
    char *before = slurp("run/config.yaml"), *metrics = slurp("run/metrics.jsonl");
    unsigned char *w0, *w1;
    size_t n0, n1;
    tensors("run", &w0, &n0);
    cr_assert_eq(elag("train --resume run -q --set seed=11"), 2);
    char *out = slurp(".out");
    cr_assert_eq(count_lines(out), 1, "one line:\n%s", out);
    cr_assert(strstr(out, "seed is 0 in the checkpoint but 11 now"), "%s", out);
    free(out);
    cr_assert_eq(elag("train --resume run -q --set prune.target=0.7"), 2);
    char *after = slurp("run/config.yaml"), *metrics_after = slurp("run/metrics.jsonl");
    cr_assert_str_eq(after, before, "config.yaml changed by a refused resume");
    cr_assert_str_eq(metrics_after, metrics);
    tensors("run", &w1, &n1);
    cr_assert(n0 == n1 && memcmp(w0, w1, n0) == 0, "checkpoint changed by a refused resume");
    /* a longer run is fine */
    cr_assert_eq(elag("train --resume run -q --set train.epochs=4"), 0);
    cr_assert_eq(summary_number("run", "steps"), 16);
    free(before);
    free(after);
    free(metrics);
    free(metrics_after);
    free(w0);
    free(w1);
}

Test(interrupt, diverged_run_exits_1_and_a_sweep_says_diverged)
{
    cr_assert_eq(elag("train tiny.yaml --out nan -q --set train.optimizer.lr=1e6"), 1);
    char *out = slurp(".out");
    cr_assert_eq(count_lines(out), 1, "one line:\n%s", out);
    cr_assert(strstr(out, "elag: train: diverged at step "), "%s", out);
    cr_assert(strstr(out, "fc1.") || strstr(out, "fc2.") || strstr(out, "loss"), "%s", out);
    free(out);

    elag_test_put(dir, "s.yaml", "base: tiny.yaml\ngrid:\n  train.optimizer.lr: [0.05, 1e6]\n");
    cr_assert_eq(elag("sweep s.yaml --out sw --no-infer --quiet"), 1);
    char *rows = slurp("sw/results.jsonl");
    int ok = 0, diverged = 0;
    for (char *line = strtok(rows, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const char *status = cJSON_GetObjectItem(o, "status")->valuestring;
        double lr = cJSON_GetObjectItem(o, "train.optimizer.lr")->valuedouble;
        if (lr > 1) {
            cr_expect_str_eq(status, "diverged");
            diverged += strcmp(status, "diverged") == 0;
            cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(o, "diverged_step")));
            cr_expect(cJSON_IsString(cJSON_GetObjectItem(o, "diverged_tensor")));
        } else {
            cr_expect_str_eq(status, "ok");
            ok += strcmp(status, "ok") == 0;
        }
        cJSON_Delete(o);
    }
    free(rows);
    cr_assert(ok == 1 && diverged == 1, "%d ok, %d diverged", ok, diverged);
}

/* fc1.bias[1] := NaN in RUN/model.safetensors */
static void poison(const char *run)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, run);
    FILE *f = fopen(path, "r+b");
    cr_assert_not_null(f);
    uint64_t hlen;
    cr_assert_eq(fread(&hlen, 8, 1, f), 1);
    char *h = calloc(1, hlen + 1);
    cr_assert_eq(fread(h, 1, hlen, f), hlen);
    cJSON *o = cJSON_Parse(h);
    cJSON *off = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "fc1.bias"), "data_offsets");
    cr_assert_not_null(off);
    uint32_t nan_bits = 0x7fc00000u;
    cr_assert_eq(
        fseek(f, (long)(8 + hlen) + (long)cJSON_GetArrayItem(off, 0)->valuedouble + 4, SEEK_SET),
        0);
    cr_assert_eq(fwrite(&nan_bits, 4, 1, f), 1);
    fclose(f);
    cJSON_Delete(o);
    free(h);
}

Test(interrupt, eval_and_export_refuse_nan_weights)
{
    cr_assert_eq(elag("train tiny.yaml --out run -q"), 0);
    cr_assert_eq(elag("eval run/model.safetensors --device cpu"), 0);
    poison("run");
    const char *cmds[] = {"eval run/model.safetensors --device cpu",
                          "export run/model.safetensors --format csr -o run/x.safetensors"};
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(elag(cmds[i]), 2, "%s", cmds[i]);
        char *out = slurp(".out");
        cr_expect_eq(count_lines(out), 1, "one line:\n%s", out);
        cr_expect(strstr(out, "tensor 'fc1.bias' holds NaN at index 1"), "%s", out);
        free(out);
    }
    char path[700];
    snprintf(path, sizeof path, "%s/run/x.safetensors", dir);
    cr_assert_neq(access(path, F_OK), 0, "export wrote a file from NaN weights");
}
