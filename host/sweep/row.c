/*
 * The ledger row of a finished run, from the files its steps left in <out>/runs/<id>/:
 * summary.json and model.safetensors (train), infer.json and model.csr.safetensors
 * (export and infer), and the last line of log.txt for a step that failed. A training that
 * failed and left a summary.json saying "status": "diverged" (a NaN or Inf loss, gradient
 * or weight; host/train/finite.c) gets status "diverged" and the diverged_* fields, never
 * "ok". run.c decides when a row is due; this file only reads files and builds JSON.
 */
#include "sweep/sweep_internal.h"

#include "io/atomic.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The last non-empty line of the run's log (its "elag: ..." message), at most 400 bytes. */
static void last_log_line(const char *dir, char *out, size_t size)
{
    char path[ELAG_PATH_LEN + 80];
    snprintf(path, sizeof path, "%s/log.txt", dir);
    out[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f) return;
    char buf[4096];
    long len = 0;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) > 0) {
        long start = len > (long)sizeof buf - 1 ? len - (long)sizeof buf + 1 : 0;
        fseek(f, start, SEEK_SET);
        size_t n = fread(buf, 1, (size_t)(len - start), f);
        buf[n] = '\0';
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
            buf[--n] = '\0';
        char *line = strrchr(buf, '\n');
        line = line ? line + 1 : buf;
        char *cr = strrchr(line, '\r'); /* a progress bar redrawn with \r */
        if (cr) line = cr + 1;
        if (strncmp(line, "elag: ", 6) == 0) line += 6;
        snprintf(out, size, "%.400s", line);
    }
    fclose(f);
}

void elag_sweep_step_error(const char *dir, const char *what, int exit_code, int term_signal,
                           char *out, size_t size)
{
    char line[420];
    last_log_line(dir, line, sizeof line);
    if (term_signal > 0)
        snprintf(out, size, "%skilled by signal %d%s%s", what, term_signal,
                 line[0] ? "; log: " : "", line);
    else
        snprintf(out, size, "%s%s (exit %d)", what, line[0] ? line : "no message", exit_code);
}

static cJSON *read_json(const char *dir, const char *name)
{
    char path[ELAG_PATH_LEN + 96], *text = NULL;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cJSON *j = NULL;
    if (elag_read_file(path, &text, NULL) == ELAG_OK) j = cJSON_Parse(text);
    free(text);
    return j;
}

static void add_file_bytes(cJSON *row, const char *key, const char *dir, const char *name)
{
    char path[ELAG_PATH_LEN + 96];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &sb) == 0) cJSON_AddNumberToObject(row, key, (double)sb.st_size);
}

void elag_sweep_summary_device(const char *dir, char *out, size_t size)
{
    cJSON *summary = read_json(dir, "summary.json");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(summary, "device");
    out[0] = '\0';
    if (cJSON_IsString(d)) snprintf(out, size, "%s", d->valuestring);
    cJSON_Delete(summary);
}

/* The summary.json a diverged training left ("status": "diverged"), or NULL. The sweep
 * removes summary.json before each attempt, so one found here is this attempt's. */
static cJSON *diverged_summary(const char *dir, int exit_code, int term_signal)
{
    if (exit_code <= 0 || term_signal > 0) return NULL;
    cJSON *summary = read_json(dir, "summary.json");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(summary, "status");
    if (cJSON_IsString(st) && strcmp(st->valuestring, "diverged") == 0) return summary;
    cJSON_Delete(summary);
    return NULL;
}

cJSON *elag_sweep_row_make(const elag_sweep_run *run, const char *dir, int ok, const char *error,
                           int exit_code, int term_signal, double seconds)
{
    cJSON *row = cJSON_CreateObject();
    if (!row) return NULL;
    cJSON *diverged = ok ? NULL : diverged_summary(dir, exit_code, term_signal);
    cJSON_AddStringToObject(row, "run_id", run->id);
    cJSON_AddStringToObject(row, "status", ok ? "ok" : diverged ? "diverged" : "failed");
    if (!ok) {
        cJSON_AddStringToObject(row, "error", error);
        if (exit_code >= 0) cJSON_AddNumberToObject(row, "exit_code", exit_code);
        if (term_signal > 0) cJSON_AddNumberToObject(row, "signal", term_signal);
    }
    static const char *const diverged_keys[] = {"diverged_step", "diverged_epoch",
                                                "diverged_tensor"};
    for (size_t i = 0; diverged && i < sizeof diverged_keys / sizeof diverged_keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(diverged, diverged_keys[i]);
        if (v) cJSON_AddItemToObject(row, diverged_keys[i], cJSON_Duplicate(v, 1));
    }
    cJSON_Delete(diverged);
    const cJSON *v;
    cJSON *swept = cJSON_CreateArray();
    cJSON_ArrayForEach(v, run->values)
    {
        cJSON_AddItemToObject(row, v->string, cJSON_Duplicate(v, 1));
        cJSON_AddItemToArray(swept, cJSON_CreateString(v->string));
    }
    cJSON_AddItemToObject(row, "swept", swept);
    cJSON_AddNumberToObject(row, "run_seconds", seconds);
    if (ok) {
        cJSON *summary = read_json(dir, "summary.json");
        cJSON_ArrayForEach(v, summary)
            if (!cJSON_GetObjectItemCaseSensitive(row, v->string))
                cJSON_AddItemToObject(row, v->string, cJSON_Duplicate(v, 1));
        cJSON_Delete(summary);
        add_file_bytes(row, "model_bytes", dir, "model.safetensors");
    }
    return row;
}

void elag_sweep_row_add_infer(cJSON *row, const elag_sweep *sw, const char *dir,
                              const char *error, double seconds)
{
    cJSON *j = NULL;
    if (!error || !error[0]) {
        j = read_json(dir, "infer.json");
        const cJSON *sps = cJSON_GetObjectItemCaseSensitive(j, "samples_per_second");
        const cJSON *med = cJSON_GetObjectItemCaseSensitive(j, "latency_ms_median");
        if (!cJSON_IsNumber(sps) || !cJSON_IsNumber(med))
            error = "infer printed no figures (infer.json)";
    }
    if (error && error[0]) {
        cJSON_AddStringToObject(row, "infer_error", error);
        cJSON_Delete(j);
        return;
    }
    static const char *const map[][2] = {{"samples_per_second", "infer_samples_per_second"},
                                         {"latency_ms_median", "infer_latency_ms_median"},
                                         {"latency_ms_p99", "infer_latency_ms_p99"},
                                         {"test_accuracy", "infer_test_accuracy"},
                                         {"batch", "infer_batch"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, map[i][0]);
        if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(row, map[i][1], v->valuedouble);
    }
    const cJSON *dev = cJSON_GetObjectItemCaseSensitive(j, "device");
    if (cJSON_IsString(dev)) cJSON_AddStringToObject(row, "infer_device", dev->valuestring);
    cJSON_Delete(j);
    char how[48];
    snprintf(how, sizeof how, "%s%s", sw->export_thin ? "thin," : "", sw->export_format);
    cJSON_AddStringToObject(row, "export", how);
    add_file_bytes(row, "export_file_bytes", dir, sw->export_file);
    if (!strcmp(how, "csr")) add_file_bytes(row, "csr_file_bytes", dir, sw->export_file);
    cJSON_AddNumberToObject(row, "infer_seconds", seconds);
}
