/*
 * The run folder's housekeeping before training writes into it: temporary files that a
 * killed save left behind ("<name>.tmp.<pid>", host/io/atomic.c) are removed once their
 * process is gone, and on resume metrics.jsonl loses the lines of the steps after the
 * checkpoint (they are trained again), so no step is reported twice.
 */
#define _POSIX_C_SOURCE 200809L
#include "train/trainer.h"

#include "core/check.h"
#include "io/atomic.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The pid of a "<name>.tmp.<pid>" file name, or 0 when it is not one. */
static long tmp_pid(const char *name)
{
    const char *dot = strstr(name, ".tmp.");
    if (!dot || dot == name) return 0;
    const char *digits = dot + 5;
    while (strstr(digits, ".tmp.")) { /* the last ".tmp." */
        dot = strstr(digits, ".tmp.");
        digits = dot + 5;
    }
    char *end;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    if (digits[0] < '0' || digits[0] > '9' || errno || *end || pid <= 0) return 0;
    return pid;
}

elag_status elag_run_folder_remove_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return ELAG_OK; /* nothing there yet */
    elag_status st = ELAG_OK;
    struct dirent *e;
    while (st == ELAG_OK && (e = readdir(d)) != NULL) {
        long pid = tmp_pid(e->d_name);
        if (pid == 0) continue;
        /* still being written by a live process (not this one): leave it */
        if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) continue;
        char path[ELAG_PATH_LEN + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            st = elag_fail(ELAG_ERR_IO, "%s: cannot remove a stale temporary file: %s", path,
                           strerror(errno));
    }
    closedir(d);
    return st;
}

/* The step of one metrics line, or -1 when it is not a complete metrics row. */
static double line_step(const char *line, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(line, len);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
    double step = cJSON_IsNumber(s) ? s->valuedouble : -1;
    cJSON_Delete(o);
    return step;
}

elag_status elag_metrics_truncate(const char *path, long step)
{
    char *text;
    size_t len;
    if (access(path, F_OK) != 0) return ELAG_OK;
    ELAG_TRY(elag_read_file(path, &text, &len));
    size_t keep = 0; /* bytes of the lines kept so far, moved to the front */
    int dropped = 0;
    for (size_t at = 0; at < len;) {
        char *eol = memchr(text + at, '\n', len - at);
        if (!eol) { /* a torn last line */
            dropped = 1;
            break;
        }
        size_t n = (size_t)(eol - (text + at)) + 1;
        double s = line_step(text + at, n - 1);
        if (s >= 0 && s <= (double)step) {
            memmove(text + keep, text + at, n);
            keep += n;
        } else {
            dropped = 1;
        }
        at += n;
    }
    elag_status st = dropped ? elag_atomic_write(path, text, keep) : ELAG_OK;
    free(text);
    return st;
}
