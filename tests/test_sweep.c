/*
 * Sweep files (host/sweep/spec.c): grid / zip / runs expansion and its order, stable run
 * ids (the resolved config's hash), shards that partition the runs exactly, and bad
 * sweep files that exit 2 with one line naming file:line and the key.
 */
#define _POSIX_C_SOURCE 200809L
#include "support/fixtures.h"
#include "support/testutil.h"
#include "sweep/sweep.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static char *dir;
static char out_file[600];

static elag_sweep *load(const char *name, const char *text)
{
    elag_test_put(dir, name, text);
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    elag_sweep *sw = NULL;
    elag_status st = elag_sweep_load(path, &sw);
    cr_assert_eq(st, ELAG_OK, "%s: %s", name, elag_last_error());
    return sw;
}

/* "k=v k=v" of run r's axis overrides */
static const char *axes(const elag_sweep *sw, int r)
{
    static char buf[1024];
    size_t n = 0;
    buf[0] = '\0';
    const elag_sweep_run *run = &sw->runs[r];
    for (int i = run->first_axis_set; i < run->n_sets; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? " " : "", run->sets[i]);
    return buf;
}

static void setup(void)
{
    dir = elag_test_tmpdir("sweep");
    cr_assert_not_null(dir);
    snprintf(out_file, sizeof out_file, "%s/.out", dir);
    elag_test_put(dir, "base.yaml", elag_test_tiny_yaml);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(sweep, .init = setup, .fini = teardown);

Test(sweep, grid_is_cartesian_last_key_fastest)
{
    elag_sweep *sw = load("g.yaml", "base: base.yaml\n"
                                    "grid:\n"
                                    "  prune.target: [0.5, 0.8]\n"
                                    "  seed: [1, 2, 3]\n");
    cr_assert_eq(sw->n_runs, 6);
    cr_assert_eq(sw->n_keys, 2);
    cr_assert_str_eq(axes(sw, 0), "prune.target=0.5 seed=1");
    cr_assert_str_eq(axes(sw, 1), "prune.target=0.5 seed=2");
    cr_assert_str_eq(axes(sw, 2), "prune.target=0.5 seed=3");
    cr_assert_str_eq(axes(sw, 3), "prune.target=0.8 seed=1");
    cr_assert_str_eq(axes(sw, 5), "prune.target=0.8 seed=3");
    for (int i = 0; i < 6; i++) cr_assert_eq(sw->runs[i].index, i);
    elag_sweep_free(sw);
}

Test(sweep, zip_pairs_lists)
{
    elag_sweep *sw = load("z.yaml", "base: base.yaml\n"
                                    "zip:\n"
                                    "  train.optimizer.lr: [0.1, 0.05, 0.01]\n"
                                    "  train.batch_size: [64, 32, 16]\n");
    cr_assert_eq(sw->n_runs, 3);
    cr_assert_str_eq(axes(sw, 0), "train.optimizer.lr=0.1 train.batch_size=64");
    cr_assert_str_eq(axes(sw, 1), "train.optimizer.lr=0.05 train.batch_size=32");
    cr_assert_str_eq(axes(sw, 2), "train.optimizer.lr=0.01 train.batch_size=16");
    elag_sweep_free(sw);
}

Test(sweep, grid_times_zip_times_runs_with_set_first)
{
    elag_sweep *sw = load("c.yaml", "base: base.yaml\n"
                                    "set: {train.epochs: 2}\n"
                                    "grid: {seed: [1, 2]}\n"
                                    "zip: {train.optimizer.lr: [0.1, 0.2], train.batch_size: [8, 16]}\n"
                                    "runs:\n"
                                    "  - {prune.method: gmp}\n"
                                    "  - {prune.method: oneshot, prune.target: 0.75}\n"
                                    "  - {data.synthetic.noise: 0.25}\n");
    cr_assert_eq(sw->n_runs, 2 * 2 * 3);
    for (int r = 0; r < sw->n_runs; r++) {
        cr_assert_eq(sw->runs[r].first_axis_set, 1);
        cr_assert_str_eq(sw->runs[r].sets[0], "train.epochs=2");
    }
    /* runs: fastest, then zip, then grid */
    cr_assert_str_eq(axes(sw, 0), "seed=1 train.optimizer.lr=0.1 train.batch_size=8 prune.method=gmp");
    cr_assert_str_eq(axes(sw, 1), "seed=1 train.optimizer.lr=0.1 train.batch_size=8 "
                                  "prune.method=oneshot prune.target=0.75");
    cr_assert_str_eq(axes(sw, 2), "seed=1 train.optimizer.lr=0.1 train.batch_size=8 "
                                  "data.synthetic.noise=0.25");
    cr_assert_str_eq(axes(sw, 3), "seed=1 train.optimizer.lr=0.2 train.batch_size=16 prune.method=gmp");
    cr_assert_str_eq(axes(sw, 6), "seed=2 train.optimizer.lr=0.1 train.batch_size=8 prune.method=gmp");
    /* every row knows every swept key, also where a runs: entry leaves it at the base */
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(sw->runs[2].values, "prune.target");
    cr_assert(cJSON_IsNumber(t) && t->valuedouble == 0.5);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(sw->runs[1].values, "prune.method");
    cr_assert(cJSON_IsString(m) && strcmp(m->valuestring, "oneshot") == 0);
    cr_assert_eq(sw->n_keys, 6);
    elag_sweep_free(sw);
}

Test(sweep, ids_are_the_resolved_config_hash)
{
    elag_sweep *a = load("a.yaml", "base: base.yaml\n"
                                   "set: {train.epochs: 2, train.batch_size: 16}\n"
                                   "grid: {prune.target: [0.5, 0.9]}\n");
    elag_sweep *b = load("b.yaml", "base: base.yaml\n" /* set: keys in another order */
                                   "set: {train.batch_size: 16, train.epochs: 2}\n"
                                   "grid: {prune.target: [0.50, 9e-1]}\n");
    elag_sweep *c = load("c.yaml", "base: base.yaml\n" /* one value changed */
                                   "set: {train.epochs: 3, train.batch_size: 16}\n"
                                   "grid: {prune.target: [0.5, 0.9]}\n");
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(strlen(a->runs[r].id), ELAG_SWEEP_ID_LEN);
        cr_assert_str_eq(a->runs[r].id, b->runs[r].id, "same config, same id");
        cr_assert_str_neq(a->runs[r].id, c->runs[r].id, "changed config, new id");
    }
    cr_assert_str_neq(a->runs[0].id, a->runs[1].id);
    elag_sweep *again = load("a.yaml", "base: base.yaml\n"
                                       "set: {train.epochs: 2, train.batch_size: 16}\n"
                                       "grid: {prune.target: [0.5, 0.9]}\n");
    cr_assert_str_eq(again->runs[1].id, a->runs[1].id, "stable across loads");

    /* the id is the prefix of the hash `elag train` computes for the same overrides */
    char base[700], hash[17];
    snprintf(base, sizeof base, "%s/base.yaml", dir);
    const char *sets[] = {"train.epochs=2", "train.batch_size=16", "prune.target=0.9"};
    elag_config cfg;
    cr_assert_eq(elag_config_load(base, sets, 3, &cfg), ELAG_OK);
    cr_assert_eq(elag_config_hash(&cfg, hash), ELAG_OK);
    cr_assert_eq(strncmp(hash, a->runs[1].id, ELAG_SWEEP_ID_LEN), 0);
    elag_sweep_free(a);
    elag_sweep_free(b);
    elag_sweep_free(c);
    elag_sweep_free(again);
}

Test(sweep, same_config_twice_runs_once)
{
    elag_sweep *sw = load("d.yaml", "base: base.yaml\n"
                                    "grid: {prune.target: [0.5, 0.50, 0.8]}\n"
                                    "runs: [{}, {train.epochs: 1}]\n"); /* epochs 1 = base */
    cr_assert_eq(sw->n_runs, 2);
    cr_assert_eq(sw->n_dropped, 4);
    cr_assert_str_eq(axes(sw, 0), "prune.target=0.5");
    cr_assert_str_eq(axes(sw, 1), "prune.target=0.8");
    cr_assert_eq(sw->runs[1].index, 1);
    elag_sweep_free(sw);
}

Test(sweep, shards_partition_the_runs)
{
    elag_sweep *sw = load("s.yaml", "base: base.yaml\n"
                                    "grid: {prune.target: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], "
                                    "seed: [1, 2, 3]}\n");
    cr_assert_eq(sw->n_runs, 21);
    for (int n = 1; n <= 5; n++) {
        int sizes[5] = {0};
        for (int r = 0; r < sw->n_runs; r++) {
            int owners = 0;
            for (int i = 0; i < n; i++)
                if (elag_sweep_in_shard(sw->runs[r].index, i, n)) {
                    owners++;
                    sizes[i]++;
                }
            cr_assert_eq(owners, 1, "run %d is in %d of %d shards", r, owners, n);
        }
        for (int i = 0; i < n; i++) /* balanced: sizes differ by at most one */
            cr_assert(sizes[i] == 21 / n || sizes[i] == 21 / n + 1);
    }
    int i, n;
    cr_assert_eq(elag_sweep_parse_shard("2/5", &i, &n), 0);
    cr_assert(i == 2 && n == 5);
    const char *bad[] = {"5/5", "-1/2", "1/0", "a/b", "1/2x", "1", "/2", "1/"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        cr_assert_eq(elag_sweep_parse_shard(bad[k], &i, &n), -1, "%s", bad[k]);
    elag_sweep_free(sw);
}

Test(sweep, flow_values_and_quoted_strings)
{
    elag_sweep *sw = load("f.yaml", "base: base.yaml\n"
                                    "set: {train.optimizer: {type: adamw}}\n"
                                    "grid:\n"
                                    "  train.optimizer.betas: [[0.9, 0.99], [0.8, 0.9]]\n"
                                    "  name: ['a b', \"c\"]\n");
    cr_assert_eq(sw->n_runs, 4);
    cr_assert_str_eq(axes(sw, 0), "train.optimizer.betas=[0.9, 0.99] name=\"a b\"");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(sw->runs[0].values, "train.optimizer.betas");
    cr_assert(cJSON_IsArray(b) && cJSON_GetArraySize(b) == 2);
    elag_sweep_free(sw);
}

/* ---- bad files, through the CLI: exit 2 and one line naming file:line ---- */

static void expect_bad(const char *name, const char *text, const char *needle1,
                       const char *needle2)
{
    elag_test_put(dir, name, text);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' sweep %s --dry-run", dir, ELAG_CLI_PATH, name);
    int rc = elag_test_run(cmd, out_file);
    FILE *f = fopen(out_file, "r");
    char msg[2048] = "";
    size_t n = f ? fread(msg, 1, sizeof msg - 1, f) : 0;
    msg[n] = '\0';
    if (f) fclose(f);
    cr_assert_eq(rc, 2, "%s: exit %d, output: %s", name, rc, msg);
    cr_assert(strstr(msg, needle1), "%s: no '%s' in: %s", name, needle1, msg);
    cr_assert(strstr(msg, needle2), "%s: no '%s' in: %s", name, needle2, msg);
    char *nl = strchr(msg, '\n');
    cr_assert(nl && nl[1] == '\0', "%s: not one line: %s", name, msg);
}

Test(sweep, unknown_key_on_an_axis)
{
    expect_bad("bad1.yaml", "base: base.yaml\ngrid:\n  seed: [1]\n  prune.targt: [0.5]\n",
               "bad1.yaml:4:3: grid: unknown key 'prune.targt'", "did you mean 'prune.target'");
    expect_bad("bad2.yaml", "base: base.yaml\nruns:\n  - {zebra: 1}\n", "bad2.yaml:3:6:",
               "unknown key 'zebra'");
}

Test(sweep, empty_axis)
{
    expect_bad("bad3.yaml", "base: base.yaml\ngrid:\n  seed: []\n", "bad3.yaml:3:9:",
               "empty axis");
    expect_bad("bad4.yaml", "base: base.yaml\nruns: []\n", "bad4.yaml:2:7:", "empty axis");
    expect_bad("bad5.yaml", "base: base.yaml\nzip: {}\n", "bad5.yaml:2:6:", "empty axis");
}

Test(sweep, base_missing)
{
    expect_bad("bad6.yaml", "base: nowhere.yaml\ngrid: {seed: [1]}\n", "bad6.yaml:1:7:",
               "base config 'nowhere.yaml' not found");
    expect_bad("bad7.yaml", "grid: {seed: [1]}\n", "bad7.yaml:1:1:", "missing base:");
}

Test(sweep, zip_lengths_differ)
{
    expect_bad("bad8.yaml", "base: base.yaml\nzip:\n  seed: [1, 2]\n  prune.target: [0.5]\n",
               "bad8.yaml:4:17: zip: 'prune.target' has 1 values but 'seed' (line 3) has 2",
               "equal length");
}

Test(sweep, bad_values_point_at_the_value)
{
    expect_bad("bad9.yaml", "base: base.yaml\ngrid:\n  prune.target: [0.5, 1.5]\n",
               "bad9.yaml:3:23: grid: 'prune.target' must be in [0, 1), got 1.5", "1.5");
    expect_bad("bad10.yaml", "base: base.yaml\nruns:\n  - {train.epochs: ten}\n",
               "bad10.yaml:3:20: runs: 'train.epochs' expects an integer", "ten");
    expect_bad("bad11.yaml", "base: base.yaml\nset: {seed: 1}\ngrid: {seed: [2]}\n",
               "bad11.yaml:3:8:", "already on set:");
    expect_bad("bad12.yaml", "base: base.yaml\ngird: {seed: [2]}\n", "bad12.yaml:2:1:",
               "did you mean 'grid'");
}

Test(sweep, export_settings)
{
    expect_bad("bad13.yaml", "base: base.yaml\nexport: {format: coo}\n", "bad13.yaml:2:18:",
               "format expects dense, csr, bell, bell:B (1..256) or auto, got 'coo'");
    expect_bad("bad14.yaml", "base: base.yaml\nexport: {format: 'bell:0'}\n", "bad14.yaml:2:",
               "got 'bell:0'");
    expect_bad("bad15.yaml", "base: base.yaml\nexport: {thin: yes please}\n", "bad15.yaml:2:",
               "thin expects true or false");
    expect_bad("bad16.yaml", "base: base.yaml\nexport: {formt: csr}\n", "bad16.yaml:2:10:",
               "did you mean 'format'");
    expect_bad("bad17.yaml", "base: base.yaml\nexport: csr\n", "bad17.yaml:2:9:",
               "expects a mapping");
}
