/*
 * `elag train`: load and validate the config, open the device, load the data, and
 * only then touch the run folder, so bad input never changes an existing run.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include "io/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SETS 64

static const char train_usage[] =
    "usage: elag train CONFIG [options]\n"
    "       elag train --resume DIR [options]\n"
    "\n"
    "Trains (and prunes) the model a YAML config describes (docs/config.md) and writes\n"
    "config.yaml, metrics.jsonl, summary.json and model.safetensors into runs/<name>/.\n"
    "\n"
    "options:\n"
    "  --set KEY=VALUE  override a config key (dotted path), repeatable\n"
    "  --device D       auto | cpu | cpu-ref | cuda | cuda:N (default: the config's, auto)\n"
    "  --out DIR        run folder (default runs/<name>)\n"
    "  --force          overwrite an existing run folder\n"
    "  --resume DIR     continue the run in DIR from its checkpoint (CONFIG defaults to\n"
    "                   DIR/config.yaml)\n"
    "  --quiet          no progress output\n"
    "  --help           this help\n";

/* 1 if path exists and is a non-empty directory or a non-directory. */
static int path_in_use(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) return 1;
    DIR *d = opendir(path);
    if (!d) return 1;
    struct dirent *e;
    int used = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) used = 1;
    closedir(d);
    return used;
}

static void print_summary(const elag_config *cfg, const elag_train_summary *s, const char *out)
{
    printf("%s: test accuracy %.4f, loss %.4f, sparsity %.4f (%zu of %zu prunable weights "
           "nonzero)\n",
           cfg->name, s->test_accuracy, s->test_loss, s->sparsity, s->params_nonzero,
           s->params_prunable);
    printf("%s: %.1f s training, %.0f samples/s, mask updates %.3f s (%ld), device %s\n",
           cfg->name, s->train_seconds, s->samples_per_second, s->mask_update_seconds,
           s->mask_updates, s->device);
    printf("results in %s/ (summary.json, metrics.jsonl, model.safetensors, config.yaml)\n", out);
}

int elag_cmd_train(int argc, char **argv)
{
    const char *config_path = NULL, *device = NULL, *out = NULL, *resume = NULL;
    const char *sets[MAX_SETS + 1];
    int n_sets = 0, force = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        int r;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(train_usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--force") == 0) { force = 1; continue; }
        if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0) { quiet = 1; continue; }
        if ((r = elag_cli_take_value(argc, argv, &i, "--set", &v)) != 0) {
            if (r < 0) return 2;
            if (n_sets == MAX_SETS) return elag_cli_usage_error("train", "too many --set options");
            sets[n_sets++] = v;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--device", &device)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--out", &out)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if ((r = elag_cli_take_value(argc, argv, &i, "--resume", &resume)) != 0) {
            if (r < 0) return 2;
            continue;
        }
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return elag_cli_usage_error("train", "unknown option '%s'", argv[i]);
        if (config_path) return elag_cli_usage_error("train", "unexpected argument '%s'", argv[i]);
        config_path = argv[i];
    }
    char resume_cfg[ELAG_PATH_LEN + 16], resume_ck[ELAG_PATH_LEN + 32];
    if (resume) {
        snprintf(resume_ck, sizeof resume_ck, "%s/model.safetensors", resume);
        if (!config_path) {
            snprintf(resume_cfg, sizeof resume_cfg, "%s/config.yaml", resume);
            config_path = resume_cfg;
        }
        if (out && strcmp(out, resume) != 0)
            return elag_cli_usage_error("train", "--out and --resume name different folders");
        out = resume;
    }
    if (!config_path) return elag_cli_usage_error("train", "missing CONFIG");

    /* 1. everything that can be wrong with the input, before any write */
    static elag_config cfg;
    elag_status st = elag_config_load(config_path, sets, n_sets, &cfg);
    if (st != ELAG_OK) return elag_cli_fail(st);
    if (device) snprintf(cfg.device, sizeof cfg.device, "%s", device);
    elag_backend *be = NULL;
    char note[256] = "";
    st = elag_backend_open(cfg.device, cfg.train.threads, &be, note, sizeof note);
    if (st == ELAG_OK) st = elag_backend_set_tf32(be, cfg.cuda.tf32);
    if (st != ELAG_OK) {
        elag_backend_free(be);
        return elag_cli_fail(st);
    }
    if (note[0] && !quiet) fprintf(stderr, "elag: %s\n", note);
    elag_run_data data;
    st = elag_run_data_load(&cfg, &data);
    if (st != ELAG_OK) {
        elag_backend_free(be);
        return elag_cli_fail(st);
    }
    char out_buf[ELAG_PATH_LEN + 8];
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "runs/%s", cfg.name);
        out = out_buf;
    }
    if (resume && access(resume_ck, R_OK) != 0) {
        elag_fail(ELAG_ERR_INPUT, "--resume %s: no checkpoint %s", resume, resume_ck);
        st = ELAG_ERR_INPUT;
    } else if (!resume && !force && path_in_use(out)) {
        st = elag_fail(ELAG_ERR_INPUT,
                       "%s: run folder exists (use --force to overwrite it, or --out DIR)", out);
    }

    /* 2. the run folder */
    char path[ELAG_PATH_LEN + 32];
    char *yaml = NULL;
    if (st == ELAG_OK) st = elag_mkdirs(out);
    if (st == ELAG_OK && !resume) {
        snprintf(path, sizeof path, "%s/metrics.jsonl", out);
        if (unlink(path) != 0 && errno != ENOENT)
            st = elag_fail(ELAG_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    }
    if (st == ELAG_OK) st = elag_config_to_yaml(&cfg, &yaml);
    if (st == ELAG_OK) {
        snprintf(path, sizeof path, "%s/config.yaml", out);
        st = elag_atomic_write(path, yaml, strlen(yaml));
    }
    free(yaml);

    /* 3. train */
    elag_train_summary summary;
    if (st == ELAG_OK) {
        elag_cli_progress prog;
        elag_cli_progress_init(&prog, quiet);
        elag_train_options opts = {.out_dir = out,
                                   .resume_path = resume ? resume_ck : NULL,
                                   .progress = elag_cli_progress_update,
                                   .progress_user = &prog};
        st = elag_train_run(&cfg, be, &data, &opts, &summary);
        elag_cli_progress_done(&prog);
    }
    elag_run_data_free(&data);
    elag_backend_free(be);
    if (st != ELAG_OK) return elag_cli_fail(st);
    print_summary(&cfg, &summary, out);
    return 0;
}
