/*
 * The docs stay true where a program can tell: every relative link of README.md and the
 * Markdown files of docs/ names a file inside the repository (no link to a design file that
 * lives outside it), and every field a run writes to summary.json and metrics.jsonl is
 * listed in docs/outputs.md.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "support/testutil.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Checks the links "](target)" of one Markdown file; returns how many are bad. */
static int bad_links(const char *md)
{
    char *text = elag_test_slurp(md);
    char dir[PATH_MAX], root[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", md);
    *strrchr(dir, '/') = '\0';
    cr_assert_not_null(realpath(ELAG_SOURCE_DIR, root));
    int bad = 0;
    for (char *p = text; (p = strstr(p, "](")) != NULL; p += 2) {
        char target[1024];
        size_t n = strcspn(p + 2, ")# \n");
        if (n == 0 || n >= sizeof target) continue;
        memcpy(target, p + 2, n);
        target[n] = '\0';
        if (strstr(target, "://") || strncmp(target, "mailto:", 7) == 0) continue;
        char path[PATH_MAX * 2], real[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, target);
        if (!realpath(path, real) || strncmp(real, root, strlen(root)) != 0) {
            fprintf(stderr, "%s: link to '%s' is not a file in the repository\n", md, target);
            bad++;
        }
    }
    free(text);
    return bad;
}

Test(docs, links_stay_inside_the_repository)
{
    glob_t g;
    cr_assert_eq(glob(ELAG_SOURCE_DIR "/docs/*.md", 0, NULL, &g), 0);
    int bad = bad_links(ELAG_SOURCE_DIR "/README.md"), files = 1;
    for (size_t i = 0; i < g.gl_pathc; i++, files++) bad += bad_links(g.gl_pathv[i]);
    globfree(&g);
    cr_assert_gt(files, 5, "too few docs found");
    cr_assert_eq(bad, 0, "%d links lead outside the repository (stderr lists them)", bad);
}

/* Every key of object o (and of its "layers" items) appears in the doc as `key`. */
static int undocumented(const cJSON *o, const char *doc, const char *what)
{
    int bad = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, o)
    {
        char quoted[128];
        snprintf(quoted, sizeof quoted, "`%s`", v->string);
        if (!strstr(doc, quoted)) {
            fprintf(stderr, "docs/outputs.md does not list %s field '%s'\n", what, v->string);
            bad++;
        }
        if (cJSON_IsArray(v) && strcmp(v->string, "layers") == 0 && cJSON_GetArrayItem(v, 0))
            bad += undocumented(cJSON_GetArrayItem(v, 0), doc, "summary.json layers[]");
    }
    return bad;
}

Test(docs, every_run_output_field_is_documented)
{
    char *dir = elag_test_tmpdir("docs");
    elag_test_put(dir, "t.yaml",
                  "name: t\ndevice: cpu\n"
                  "data: {dataset: synthetic, val_split: 0.25, synthetic: {train: 64, test: 16}}\n"
                  "train: {epochs: 1, batch_size: 16, log_every: 1, threads: 1, "
                  "eval_every_epoch: true}\n"
                  "model:\n  layers:\n    - {type: linear, out_features: 8}\n"
                  "    - {type: relu}\n    - {type: linear, out_features: 4}\n"
                  "prune: {method: oneshot, target: 0.5}\n");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' train t.yaml --out run --quiet", dir, ELAG_CLI_PATH);
    cr_assert_eq(elag_test_run(cmd, NULL), 0);
    char *doc = elag_test_slurp(ELAG_SOURCE_DIR "/docs/outputs.md");
    char path[700];
    snprintf(path, sizeof path, "%s/run/summary.json", dir);
    char *text = elag_test_slurp(path);
    cJSON *summary = cJSON_Parse(text);
    cr_assert_not_null(summary);
    int bad = undocumented(summary, doc, "summary.json");
    cJSON_Delete(summary);
    free(text);
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    text = elag_test_slurp(path);
    int lines = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        cJSON *m = cJSON_Parse(line);
        cr_assert_not_null(m, "metrics line: %s", line);
        bad += undocumented(m, doc, "metrics.jsonl");
        cJSON_Delete(m);
    }
    cr_assert_geq(lines, 2, "expected step and epoch lines");
    free(text);
    free(doc);
    elag_test_rmtree(dir);
    free(dir);
    cr_assert_eq(bad, 0, "%d fields are not in docs/outputs.md (stderr lists them)", bad);
}
