/*
 * `elag sweep`: expand a sweep file, then run what the ledger does not hold yet, N runs
 * at a time, one shard of it for cluster job arrays; `--collect` merges the output
 * folders of shards. The sweep logic is the library's (include/elag/sweep.h), the child
 * processes are sweep_runner.c's; this file parses arguments and prints one progress
 * line (redrawn on a terminal, plain lines otherwise). docs/sweeps.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "sweep_runner.h"

#include <ctype.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEVICES 64
#define MAX_COLLECT 4096
#define SWEEP_NAME_LEN 64 /* a sweep's name, as config.h's ELAG_NAME_LEN */

static const char sweep_usage[] =
    "usage: elag sweep FILE [options]\n"
    "       elag sweep --collect DIR... --out DIR\n"
    "\n"
    "Runs every training run a sweep file describes (base config, set: overrides, axes\n"
    "grid:, zip:, runs:; docs/sweeps.md). Each run is `elag train` in a child process\n"
    "writing <out>/runs/<id>/ (id = the resolved config's hash) with its log.txt; each\n"
    "finished run appends one row to <out>/results.jsonl, and results.csv is rewritten.\n"
    "Running the same command again skips the runs the ledger holds (resume).\n"
    "After a run trains ok, `elag export --format csr` and `elag infer --batch 256\n"
    "--json` time its sparse inference for the row (infer_latency_ms, ...).\n"
    "\n"
    "options:\n"
    "  --jobs N         runs at a time (default 1, or one per --devices entry); each run\n"
    "                   gets train.threads = max(1, cores / N), so jobs x threads <= cores\n"
    "  --shard I/N      run only the runs whose index in the expansion % N == I (0-based),\n"
    "                   e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT\n"
    "  --devices LIST   devices for the job slots, round-robin: '0,1' means cuda:0, cuda:1\n"
    "                   (names such as cpu or cuda:2 are taken as they are)\n"
    "  --out DIR        output folder (default runs/sweep-<name>)\n"
    "  --retry-failed   rerun the runs whose ledger row says failed\n"
    "  --no-infer       skip the CSR export and inference timing of each run\n"
    "  --dry-run        list the runs (index, id, status, overrides) and exit\n"
    "  --collect DIR... merge the ledgers and run folders of DIRs into --out DIR\n"
    "  --quiet          no progress output\n"
    "  --help           this help\n"
    "\n"
    "exit codes: 0 every run of the shard finished ok, 1 some run failed or the sweep\n"
    "could not go on, 2 bad usage or a bad sweep file, 128+N stopped by signal N.\n";

typedef struct sweep_view {
    const elag_sweep_t *sw;
    int tty, quiet;
    int drawn;     /* a redrawn line is on screen */
    double last_plain;
} sweep_view;

static void format_eta(double s, char *buf, size_t len)
{
    if (s < 0) {
        snprintf(buf, len, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

/* "prune.method=gmp seed=1": run r's overrides from the axes. */
static void describe_run(const elag_sweep_t *sw, int r, char *buf, size_t size)
{
    int n_sets, first;
    const char *const *sets = elag_sweep_run_sets(sw, r, &n_sets, &first);
    size_t n = 0;
    buf[0] = '\0';
    for (int i = first; i < n_sets && n + 1 < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? " " : "", sets[i]);
    if (!buf[0]) snprintf(buf, size, "(the base as it is)");
}

static void on_progress(const elag_cli_sweep_progress *p, void *user)
{
    sweep_view *v = user;
    if (v->quiet) return;
    char eta[32], what[1024] = "";
    format_eta(p->eta_seconds, eta, sizeof eta);
    if (p->event && p->run >= 0 && strcmp(p->event, "start") != 0) {
        char desc[900];
        const char *id = elag_sweep_run_id(v->sw, p->run);
        describe_run(v->sw, p->run, desc, sizeof desc);
        if (strcmp(p->event, "ok") == 0)
            snprintf(what, sizeof what, "; ok %s %s (%.1f s)", id, desc, p->run_seconds);
        else
            snprintf(what, sizeof what, "; FAILED %s %s: %s", id, desc, p->error);
    }
    char line[256];
    snprintf(line, sizeof line, "sweep: %d/%d done, %d running, %d failed%s, ETA %s", p->done,
             p->total, p->running, p->failed, p->elsewhere ? ", some held by another process" : "",
             eta);
    if (v->tty) {
        if (what[0] && strstr(what, "FAILED")) fprintf(stderr, "\r\033[K%s\n", what + 2);
        fprintf(stderr, "\r%s\033[K", line);
        v->drawn = 1;
        return;
    }
    if (!p->event && !what[0]) { /* ticks: at most one plain line a minute */
        double now = (double)time(NULL);
        if (now - v->last_plain < 60) return;
        v->last_plain = now;
    }
    if (p->event && strcmp(p->event, "start") == 0) return;
    fprintf(stderr, "%s%s\n", line, what);
}

static int collect(int argc, char **argv, const char *out, int quiet)
{
    const char *dirs[MAX_COLLECT];
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (n == MAX_COLLECT) return elag_cli_usage_error("sweep", "too many folders to collect");
        dirs[n++] = argv[i];
    }
    if (n == 0) return elag_cli_usage_error("sweep", "--collect needs at least one folder");
    if (!out) return elag_cli_usage_error("sweep", "--collect needs --out DIR");
    int rows = 0;
    elag_status st = elag_sweep_collect(dirs, n, out, &rows);
    if (st != ELAG_OK) return elag_cli_fail(st);
    if (!quiet)
        fprintf(stderr, "sweep: collected %d folder%s into %s: %d runs in results.jsonl, "
                        "results.csv\n", n, n == 1 ? "" : "s", out, rows);
    return 0;
}

static int dry_run(const elag_sweep_t *sw, const char *out, int shard, int n_shards)
{
    elag_sweep_ledger_t *l = NULL;
    elag_status st = elag_sweep_ledger_open(&l, out);
    if (st != ELAG_OK) return elag_cli_fail(st);
    int n_runs = elag_sweep_run_count(sw), in_shard = 0;
    for (int r = 0; r < n_runs; r++) in_shard += elag_sweep_in_shard(r, shard, n_shards);
    printf("sweep %s: %d runs", elag_sweep_path(sw), n_runs);
    if (n_shards > 1) printf(", %d in shard %d/%d", in_shard, shard, n_shards);
    printf(" (base %s, out %s)\n", elag_sweep_base(sw), out);
    if (elag_sweep_dropped(sw))
        printf("note: %d more entries resolve to the config of an earlier run and are run once\n",
               elag_sweep_dropped(sw));
    int first = 0;
    const char *const *sets = n_runs > 0 ? elag_sweep_run_sets(sw, 0, NULL, &first) : NULL;
    if (first > 0) {
        printf("set:");
        for (int i = 0; i < first; i++) printf(" %s", sets[i]);
        printf("\n");
    }
    printf("%-6s %-12s %-7s %s\n", "index", "id", "status", "overrides");
    for (int r = 0; r < n_runs; r++) {
        if (!elag_sweep_in_shard(r, shard, n_shards)) continue;
        const char *status = elag_sweep_ledger_status(l, elag_sweep_run_id(sw, r));
        if (!status) status = "todo";
        char desc[2048];
        describe_run(sw, r, desc, sizeof desc);
        printf("%-6d %-12s %-7s %s\n", r, elag_sweep_run_id(sw, r),
               strcmp(status, "ok") ? status : "done", desc);
    }
    elag_sweep_ledger_free(l);
    return 0;
}

/* "0,1" -> cuda:0, cuda:1; other names as they are. */
static int parse_devices(const char *list, char names[][32], int *n)
{
    *n = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= 24 || *n == MAX_DEVICES) return -1;
        int digits = 1;
        for (size_t i = 0; i < len; i++) digits = digits && isdigit((unsigned char)p[i]);
        snprintf(names[*n], 32, "%s%.*s", digits ? "cuda:" : "", (int)len, p);
        (*n)++;
        p += len + (e ? 1 : 0);
        if (e && !*p) return -1;
    }
    return *n > 0 ? 0 : -1;
}

int elag_cmd_sweep(int argc, char **argv)
{
    const char *file = NULL, *out = NULL, *shard_s = NULL, *devices_s = NULL, *jobs_s = NULL;
    int dry = 0, retry = 0, quiet = 0, no_infer = 0, collect_at = 0;
    for (int i = 1; i < argc; i++) {
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(sweep_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--dry-run") == 0) { dry = 1; continue; }
        if (strcmp(argv[i], "--retry-failed") == 0) { retry = 1; continue; }
        if (strcmp(argv[i], "--no-infer") == 0) { no_infer = 1; continue; }
        if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) { quiet = 1; continue; }
        if (strcmp(argv[i], "--collect") == 0) {
            collect_at = i + 1;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) i++;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--out", &out)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--jobs", &jobs_s)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--shard", &shard_s)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--devices", &devices_s)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_unknown_option("sweep", argv[i], sweep_usage);
        if (file) return elag_cli_usage_error("sweep", "unexpected argument '%s'", argv[i]);
        file = argv[i];
    }
    if (collect_at) {
        if (file) return elag_cli_usage_error("sweep", "--collect takes folders, not a sweep file "
                                              "(put them right after --collect)");
        int n = 0;
        while (collect_at + n < argc && strncmp(argv[collect_at + n], "--", 2) != 0) n++;
        return collect(n, argv + collect_at, out, quiet);
    }
    if (!file) return elag_cli_usage_error("sweep", "missing FILE");

    int jobs = 0, shard = 0, n_shards = 1, n_devices = 0;
    char devices[MAX_DEVICES][32];
    const char *device_ptrs[MAX_DEVICES];
    if (jobs_s) {
        char *end;
        long j = strtol(jobs_s, &end, 10);
        if (end == jobs_s || *end || j < 1 || j > 1024)
            return elag_cli_usage_error("sweep", "--jobs expects a number in [1, 1024], got '%s'",
                                        jobs_s);
        jobs = (int)j;
    }
    if (shard_s && elag_sweep_parse_shard(shard_s, &shard, &n_shards) != 0)
        return elag_cli_usage_error("sweep", "--shard expects I/N with 0 <= I < N, got '%s'",
                                    shard_s);
    if (devices_s && parse_devices(devices_s, devices, &n_devices) != 0)
        return elag_cli_usage_error("sweep", "--devices expects a list like 0,1 or cuda:0,cuda:1, "
                                    "got '%s'", devices_s);
    for (int i = 0; i < n_devices; i++) device_ptrs[i] = devices[i];
    if (!jobs) jobs = n_devices > 0 ? n_devices : 1;

    elag_sweep_t *sw = NULL;
    elag_status st = elag_sweep_open(&sw, file);
    if (st != ELAG_OK) return elag_cli_fail(st);
    char out_buf[SWEEP_NAME_LEN + 16];
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "runs/sweep-%s", elag_sweep_name(sw));
        out = out_buf;
    }
    if (dry) {
        int rc = dry_run(sw, out, shard, n_shards);
        elag_sweep_free(sw);
        return rc;
    }

    int cores = elag_sweep_cores();
    int threads = cores / jobs > 1 ? cores / jobs : 1;
    if (!quiet && jobs > cores)
        fprintf(stderr, "elag: note: --jobs %d is more than the %d cores; each run gets 1 thread\n",
                jobs, cores);
    if (!quiet && n_devices > 0 && elag_sweep_sets_device(sw))
        fprintf(stderr, "elag: note: the sweep file sets 'device', so --devices is not used\n");
    if (!quiet && elag_sweep_dropped(sw))
        fprintf(stderr, "elag: note: %d entries resolve to the config of an earlier run and are "
                        "run once\n", elag_sweep_dropped(sw));

    /* keep the sweep file next to its results, for the record */
    st = elag_sweep_copy_file(sw, out);
    if (st != ELAG_OK) {
        elag_sweep_free(sw);
        return elag_cli_fail(st);
    }

    sweep_view view = {.sw = sw, .tty = isatty(2), .quiet = quiet};
    elag_cli_sweep_options opt = {.out_dir = out,
                                  .exe = "/proc/self/exe",
                                  .jobs = jobs,
                                  .threads = threads,
                                  .devices = n_devices ? device_ptrs : NULL,
                                  .n_devices = n_devices,
                                  .shard = shard,
                                  .n_shards = n_shards,
                                  .retry_failed = retry,
                                  .no_infer = no_infer,
                                  .progress = on_progress,
                                  .progress_user = &view,
                                  .tick_seconds = 1.0};
    if (!quiet)
        fprintf(stderr, "sweep: %s: %d runs%s, %d at a time with %d thread%s each, into %s/\n",
                elag_sweep_path(sw), elag_sweep_run_count(sw),
                n_shards > 1 ? " (this shard: index % N == I)" : "", jobs, threads,
                threads == 1 ? "" : "s", out);
    elag_cli_sweep_outcome res;
    st = elag_cli_sweep_execute(sw, &opt, &res);
    if (view.drawn) fputc('\n', stderr);
    if (st != ELAG_OK || res.interrupted) {
        elag_sweep_free(sw);
        if (st != ELAG_OK) return elag_cli_fail(st);
        fprintf(stderr, "sweep: stopped by signal %d; rerun the same command to resume\n",
                res.interrupted);
        return 128 + res.interrupted;
    }
    /* failed rows of this shard's runs, including older ones that were not retried */
    char path[ELAG_CLI_PATH_LEN + 32];
    snprintf(path, sizeof path, "%s/results.jsonl", out);
    elag_sweep_ledger_t *l = NULL;
    int failed = 0;
    if (elag_sweep_ledger_open(&l, out) == ELAG_OK) {
        for (int r = 0; r < elag_sweep_run_count(sw); r++) {
            const char *status = elag_sweep_ledger_status(l, elag_sweep_run_id(sw, r));
            failed += elag_sweep_in_shard(r, shard, n_shards) && status &&
                      strcmp(status, "ok") != 0;
        }
        elag_sweep_ledger_free(l);
    }
    elag_sweep_free(sw);
    if (!quiet) {
        fprintf(stderr, "sweep: %d runs%s: %d ran now (%d ok, %d failed), %d already in the "
                        "ledger", res.total, n_shards > 1 ? " in this shard" : "", res.ran, res.ok,
                res.failed, res.skipped);
        if (res.elsewhere) fprintf(stderr, ", %d held by another sweep process", res.elsewhere);
        fprintf(stderr, "; ledger %s, table %s/results.csv\n", path, out);
        if (failed)
            fprintf(stderr, "sweep: %d failed run%s in the ledger (see runs/<id>/log.txt; "
                            "--retry-failed reruns them)\n", failed, failed == 1 ? "" : "s");
    }
    return res.failed > 0 || failed > 0 ? 1 : 0;
}
