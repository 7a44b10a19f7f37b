/*
 * Checkpoints and exports whose metadata is wrong: a trained run's model.safetensors (or
 * its CSR export, or its thinned Blocked-ELL export) with one metadata key changed or
 * removed (the header's JSON rewritten, the tensors untouched). `elag eval` and
 * elag_net_open must refuse each with ELAG_ERR_INPUT and one line naming the file and the
 * key: the format, the config, every counter (step, epoch, input_dim, input_shape,
 * classes, the resume counters), each range-checked before any cast; an export's graph,
 * per-weight format, shape, nnz and block, cross-checked with its tensors, and its
 * 'thinned' record.
 */
#define _POSIX_C_SOURCE 200809L
#include "elag/elag.h"
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dir;
static char ckpt[700], bad[600];

static void setup(void)
{
    dir = elag_test_tmpdir("cov-ckpt");
    elag_test_put(dir, "m.yaml",
                  "name: m\ndevice: cpu-ref\n"
                  "data: {dataset: synthetic, synthetic: {train: 64, test: 32, features: 6, "
                  "classes: 3}}\n"
                  "model: {layers: [{type: linear, out_features: 5}, {type: relu},\n"
                  "                 {type: linear, out_features: 3}]}\n"
                  "train: {epochs: 2, batch_size: 16, threads: 1}\n"
                  "prune: {method: gmp, target: 0.5, start: 0, end: 0.5, frequency: 1,\n"
                  "        granularity: neuron}\n");
    char cfg[600], run[600];
    snprintf(cfg, sizeof cfg, "%s/m.yaml", dir);
    snprintf(run, sizeof run, "%s/m", dir);
    cr_assert_eq(elag_run_train(cfg, run, NULL, NULL), ELAG_OK, "%s", elag_last_error());
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
}

static void teardown(void)
{
    elag_test_rmtree(dir);
    free(dir);
}

TestSuite(cov_checkpoint, .init = setup, .fini = teardown, .timeout = 120);

/* `from` with metadata `key` set to `value` (removed when NULL) written to bad. */
static void rewrite_file(const char *from, const char *key, const char *value)
{
    FILE *f = fopen(from, "rb");
    cr_assert_not_null(f);
    uint64_t hlen = 0;
    cr_assert_eq(fread(&hlen, 8, 1, f), 1); /* little-endian, as this machine */
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    char *all = malloc((size_t)size);
    rewind(f);
    cr_assert_eq(fread(all, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    char *json = malloc(hlen + 1);
    memcpy(json, all + 8, hlen);
    json[hlen] = '\0';
    cJSON *root = cJSON_Parse(json);
    cr_assert_not_null(root);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    cr_assert_not_null(meta);
    cJSON_DeleteItemFromObjectCaseSensitive(meta, key);
    if (value) cJSON_AddStringToObject(meta, key, value);
    char *text = cJSON_PrintUnformatted(root);
    size_t tl = strlen(text), padded = (tl + 7) / 8 * 8;
    f = fopen(bad, "wb");
    cr_assert_not_null(f);
    uint64_t nl = padded;
    fwrite(&nl, 8, 1, f);
    fwrite(text, 1, tl, f);
    for (size_t i = tl; i < padded; i++) fputc(' ', f);
    fwrite(all + 8 + hlen, 1, (size_t)size - 8 - hlen, f);
    fclose(f);
    free(text);
    cJSON_Delete(root);
    free(json);
    free(all);
}

static void rewrite(const char *key, const char *value)
{
    rewrite_file(ckpt, key, value);
}

static const struct {
    const char *key, *value, *want; /* want: after "<bad>: " */
} cases[] = {
    {"format", "pytorch", "not an elag checkpoint (format 'pytorch', expected '"},
    {"format", NULL, "not an elag checkpoint (format '', expected '"},
    {"config", NULL, "checkpoint has no config in its metadata"},
    {"step", NULL, "not an elag checkpoint (no 'step' in metadata)"},
    {"step", "x", "bad metadata step='x'"},
    {"step", "-1", "bad metadata step='-1'"},
    {"epoch", "2147483648", "bad metadata epoch='2147483648'"},
    {"input_dim", "0", "bad metadata input_dim='0'"},
    {"input_dim", "4294967302", "bad metadata input_dim='4294967302'"},
    {"input_shape", "[1, 6]", "bad metadata input_shape='[1, 6]' (input_dim 6)"},
    {"input_shape", "[1, 1, 7]", "bad metadata input_shape='[1, 1, 7]' (input_dim 6)"},
    {"input_shape", "[0, 1, 6]", "bad metadata input_shape='[0, 1, 6]'"},
    {"input_shape", "[6, 1, 1]x", "bad metadata input_shape='[6, 1, 1]x'"},
    {"input_shape", "[x, 1, 1]", "bad metadata input_shape='[x, 1, 1]'"},
    {"input_shape", "[99999999999, 1, 1]", "bad metadata input_shape='[99999999999, 1, 1]'"},
    {"input_shape", "[65536, 65536, 1]", "bad metadata input_shape='[65536, 65536, 1]'"},
    {"classes", "2147483648", "bad metadata classes='2147483648'"},
    {"classes", NULL, "not an elag checkpoint (no 'classes' in metadata)"},
    {"epoch_step", "x", "bad metadata epoch_step='x'"},
    {"mask_updates", "-1", "bad metadata mask_updates='-1'"},
    {"mask_updates", NULL, "not an elag checkpoint (no 'mask_updates' in metadata)"},
    {"epoch_samples", "99999999999999999999", "bad metadata epoch_samples='99999999999999999999'"},
    {"mask_update_seconds", "nan", "bad metadata mask_update_seconds='nan'"},
    {"train_seconds", "-1", "bad metadata train_seconds='-1'"},
    {"epoch_loss_sum", "inf", "bad metadata epoch_loss_sum='inf'"},
    {"epoch_correct", "", "bad metadata epoch_correct=''"},
    {"epoch_correct", NULL, "bad metadata epoch_correct=''"},
    {"mask_updates", "1000000", "metadata mask_updates 1000000 / epoch_step"},
};

Test(cov_checkpoint, bad_metadata_is_one_line_naming_the_key)
{
    elag_eval_options o = ELAG_EVAL_OPTIONS_INIT;
    o.device = "cpu-ref";
    elag_eval_result r = ELAG_EVAL_RESULT_INIT;
    rewrite("unused_key", "1"); /* the rewrite itself keeps a good file good */
    cr_assert_eq(elag_run_eval(bad, &o, &r), ELAG_OK, "the rewritten file: %s", elag_last_error());
    char want[900];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rewrite(cases[i].key, cases[i].value);
        elag_status st = elag_run_eval(bad, &o, &r);
        snprintf(want, sizeof want, "%s: %s", bad, cases[i].want);
        cr_expect_eq(st, ELAG_ERR_INPUT, "%s=%s: status %d: %s", cases[i].key,
                     cases[i].value ? cases[i].value : "(none)", st, elag_last_error());
        cr_expect(strncmp(elag_last_error(), want, strlen(want)) == 0, "%s=%s: '%s', want '%s'",
                  cases[i].key, cases[i].value ? cases[i].value : "(none)", elag_last_error(),
                  want);
        cr_expect_null(strchr(elag_last_error(), '\n'), "more than one line");
    }
    /* a broken config names the file's config and the key */
    rewrite("config", "train: {epochs: x}\n");
    cr_expect_eq(elag_run_eval(bad, &o, &r), ELAG_ERR_INPUT);
    snprintf(want, sizeof want, "%s[config]:1:17: 'train.epochs' expects an integer", bad);
    cr_expect(strncmp(elag_last_error(), want, strlen(want)) == 0, "'%s'", elag_last_error());
}

/* ---- exports ---- */

typedef struct export_case {
    int thinned; /* 0: the CSR export, 1: the thinned Blocked-ELL one */
    const char *key, *value, *want;
} export_case;

static const export_case export_cases[] = {
    {0, "format", "elag-export-1",
     "not an elag export (format 'elag-export-1', expected 'elag-export-2')"},
    {0, "input_dim", "x", "bad metadata input_dim='x' (expected an integer in 1..1073741824)"},
    {0, "input_dim", NULL, "not a valid elag export (no 'input_dim' in metadata)"},
    {0, "input_shape", "[6, 1, 2]", "bad metadata input_shape='[6, 1, 2]' (input_dim 6)"},
    {0, "config", NULL, "not a valid elag export (no 'config' in metadata)"},
    {0, "graph", NULL, "metadata 'graph' disagrees with the config's layers"},
    {0, "graph", "[]", "metadata 'graph' disagrees with the config's layers"},
    {0, "fc1.weight.shape", "[5, 7]",
     "metadata 'fc1.weight.shape' = '[5, 7]', the graph says [5, 6]"},
    {0, "fc1.weight.nnz", "13",
     "metadata 'fc1.weight.nnz' = 13, the tensor holds 12 nonzero values"},
    {0, "fc1.weight.nnz", "x",
     "bad metadata fc1.weight.nnz='x' (expected an integer in 0..2147483647)"},
    {0, "fc1.weight.format", "coo",
     "metadata 'fc1.weight.format' = 'coo' (expected dense, csr or bell)"},
    {0, "classes", "0", "bad metadata classes='0' (expected an integer in 1..16777216)"},
    {1, "thinned", "[]", "metadata 'thinned' is not a JSON object"},
    {1, "thinned", "{\"fc1\":[2,5]}",
     "metadata 'thinned' must list [kept, original] for layer 'fc2' (width 3) here"},
    {1, "thinned", "{\"fc1\":[3,5],\"fc2\":[3,3]}",
     "metadata 'thinned' must list [kept, original] for layer 'fc1' (width 2) here"},
    {1, "thinned", "{\"fc1\":[2,1],\"fc2\":[3,3]}",
     "metadata 'thinned' must list [kept, original] for layer 'fc1' (width 2) here"},
    {1, "thinned", "{\"fc1\":[2,5],\"fc2\":[3,3],\"fc3\":[1,1]}",
     "metadata 'thinned' names 'fc3', not a weighted layer in order"},
    {1, "thinned", "{\"fc2\":[3,3],\"fc1\":[2,5]}",
     "metadata 'thinned' must list [kept, original] for layer 'fc1' (width 2) here"},
    {1, "thinned", "{\"fc1\":[2,5.5],\"fc2\":[3,3]}",
     "metadata 'thinned' must list [kept, original] for layer 'fc1' (width 2) here"},
    {1, "fc1.weight.block", "0",
     "bad metadata fc1.weight.block='0' (expected an integer in 1..1024)"},
    {1, "fc1.weight.block", "3",
     "tensor 'fc1.weight.bell_values' is F32 [2, 6], expected F32 [3, 9]"},
};

/* Exports the checkpoint (thinned first when asked) in `format` to dir/NAME. */
static void export_to(const char *name, const char *format, int thin, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    elag_net_t *net = NULL;
    cr_assert_eq(elag_net_from_checkpoint(&net, ckpt), ELAG_OK, "%s", elag_last_error());
    if (thin) cr_assert_eq(elag_net_thin(net, NULL, NULL), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_net_convert(net, format, NULL), ELAG_OK, "%s", elag_last_error());
    cr_assert_eq(elag_net_save(net, path), ELAG_OK, "%s", elag_last_error());
    elag_net_free(net);
}

Test(cov_checkpoint, bad_export_metadata_is_one_line_naming_the_key)
{
    char csr[700], thin[700], want[900];
    export_to("csr.safetensors", "csr", 0, csr, sizeof csr);
    export_to("thin.safetensors", "bell:2", 1, thin, sizeof thin);
    elag_net_t *net = NULL;
    for (int k = 0; k < 2; k++) { /* the rewrite itself keeps a good file good */
        rewrite_file(k ? thin : csr, "unused_key", "1");
        cr_assert_eq(elag_net_open(&net, bad), ELAG_OK, "%s", elag_last_error());
        elag_net_free(net);
        net = NULL;
    }
    for (size_t i = 0; i < sizeof export_cases / sizeof *export_cases; i++) {
        const export_case *c = &export_cases[i];
        rewrite_file(c->thinned ? thin : csr, c->key, c->value);
        elag_status st = elag_net_open(&net, bad);
        elag_net_free(net);
        net = NULL;
        snprintf(want, sizeof want, "%s: %s", bad, c->want);
        cr_expect_eq(st, ELAG_ERR_INPUT, "%s=%s: status %d: %s", c->key,
                     c->value ? c->value : "(none)", st, elag_last_error());
        cr_expect(strncmp(elag_last_error(), want, strlen(want)) == 0, "%s=%s: '%s', want '%s'",
                  c->key, c->value ? c->value : "(none)", elag_last_error(), want);
        cr_expect_null(strchr(elag_last_error(), '\n'), "more than one line");
    }
}
