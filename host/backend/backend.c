/*
 * Opening a backend by name: "cpu-ref", "cpu", "cuda", "cuda:N" or "auto". This is
 * the one place that knows which implementations exist; the CUDA one is reached
 * through the single registration block below (a weak reference to libelag_cuda's
 * table), so a program linked without libelag_cuda, a build without nvcc or a machine
 * without a GPU reports zero devices and keeps running on the CPU.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "backend/backend.h"

#include "backend/cuda_provider.h"
#include "core/check.h"

#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The one place the CUDA backend is registered: the table of libelag_cuda (host/cuda/,
 * kernels/), reached through a weak reference that is NULL when the program was linked
 * without that library, so a CPU-only program needs no CUDA library at all
 * (host/backend/cuda_provider.h says how the table gets into a static link). */
extern const elag_cuda_provider elag_cuda_backend_provider __attribute__((weak));

static const elag_cuda_provider *elag_cuda_table(void)
{
    const elag_cuda_provider *p = &elag_cuda_backend_provider;
    return p;
}

static const char *elag_cuda_none(void)
{
    return elag_cuda_table() ? "no CUDA device found"
                             : "no CUDA device found (this program was linked without "
                               "libelag_cuda)";
}

static int elag_cuda_devices(void)
{
    const elag_cuda_provider *p = elag_cuda_table();
    return p ? p->count_devices() : 0;
}

static elag_status elag_cuda_open(int index, elag_backend **out)
{
    const elag_cuda_provider *p = elag_cuda_table();
    if (p == NULL) return elag_fail(ELAG_ERR_NO_DEVICE, "--device cuda: %s", elag_cuda_none());
    return p->open(index, out);
}

static elag_status elag_cuda_tf32(elag_backend *b, int on)
{
    const elag_cuda_provider *p = elag_cuda_table();
    if (p == NULL) return ELAG_OK; /* no CUDA backend can exist to switch */
    int r = p->set_tf32(b, on);
    return r < 0 ? (elag_status)r : ELAG_OK;
}

int elag_cuda_linked(void)
{
    return elag_cuda_table() != NULL;
}

int elag_cuda_device_count(void)
{
    int n = elag_cuda_devices();
    return n > 0 ? n : 0;
}

/* "cuda" -> 0, "cuda:N" -> N; -1 when `device` is not a CUDA name at all or N is not a
 * plain non-negative integer. */
static int elag_parse_cuda_index(const char *device)
{
    if (strcmp(device, "cuda") == 0) return 0;
    if (strncmp(device, "cuda:", 5) != 0) return -1;
    const char *digits = device + 5;
    if (*digits < '0' || *digits > '9') return -1; /* no sign, no space, not empty */
    char *end = NULL;
    errno = 0;
    long v = strtol(digits, &end, 10);
    if (errno != 0 || *end != '\0' || v > 1024) return -1;
    return (int)v;
}

/* Other runnable tasks right now: Linux's procs_running less this thread, the least of a
 * few samples 2 ms apart (an instantaneous view: the load average would still count a
 * build that just finished). 0 when /proc/stat cannot be read. */
static int elag_busy_cores(void)
{
    int least = -1;
    for (int i = 0; i < 5; i++) {
        FILE *f = fopen("/proc/stat", "r");
        if (!f) return 0;
        char line[256];
        int running = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "procs_running %d", &running) == 1) break;
        fclose(f);
        if (running < 1) return 0;
        if (least < 0 || running - 1 < least) least = running - 1;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    return least > 0 ? least : 0;
}

/* threads <= 0 means "the cores that are free": all cores less those other processes keep
 * busy, at least 1. OpenMP threads that spin-wait on cores another process wants run many
 * times slower than fewer threads would (docs/perf-train.md), so an unasked-for thread
 * count avoids busy cores. An explicit count is taken as given. */
static int elag_resolve_threads(int threads)
{
    if (threads > 0) return threads;
    int n = omp_get_num_procs();
    if (n <= 0) n = 1;
    n -= elag_busy_cores();
    return n > 0 ? n : 1;
}

static elag_status elag_open_cuda(const char *device, int index, elag_backend **out)
{
    int count = elag_cuda_device_count();
    if (count == 0)
        return elag_fail(ELAG_ERR_NO_DEVICE, "--device %s: %s", device, elag_cuda_none());
    if (index >= count)
        return elag_fail(ELAG_ERR_NO_DEVICE, "--device %s: no such CUDA device (%d found)", device,
                         count);
    return elag_cuda_open(index, out);
}

elag_status elag_backend_open(const char *device, int threads, elag_backend **out, char *note,
                              size_t note_len)
{
    ELAG_ASSERT(out != NULL);
    *out = NULL;
    if (note && note_len) note[0] = '\0';
    if (device == NULL) device = "auto";

    if (strcmp(device, "cpu-ref") == 0) return elag_cpu_ref_backend_init(out);
    if (strcmp(device, "cpu") == 0)
        return elag_cpu_backend_init(elag_resolve_threads(threads), out);
    if (strcmp(device, "auto") == 0) {
        if (elag_cuda_device_count() > 0) {
            ELAG_TRY(elag_cuda_open(0, out));
            if (note && note_len)
                snprintf(note, note_len, "CUDA device found, using %s", (*out)->name);
            return ELAG_OK;
        }
        int t = elag_resolve_threads(threads);
        ELAG_TRY(elag_cpu_backend_init(t, out));
        if (note && note_len)
            snprintf(note, note_len, "no CUDA device found, using the CPU (%d thread%s)", t,
                     t == 1 ? "" : "s");
        return ELAG_OK;
    }
    int index = elag_parse_cuda_index(device);
    if (index >= 0) return elag_open_cuda(device, index, out);
    return elag_fail(ELAG_ERR_USAGE,
                     "unknown device '%s' (expected auto, cpu, cpu-ref, cuda or cuda:N)", device);
}

void elag_backend_free(elag_backend *b)
{
    if (b == NULL) return;
    ELAG_ASSERT(b->destroy != NULL);
    b->destroy(b);
}

elag_status elag_backend_set_tf32(elag_backend *b, int on)
{
    if (b->kind != ELAG_DEVICE_CUDA) return ELAG_OK; /* CPU GEMMs are always full FP32 */
    return elag_cuda_tf32(b, on);
}

elag_status elag_window_resolve(elag_window *g)
{
    if (g->H < 1 || g->W < 1 || g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 || g->ph < 0 ||
        g->pw < 0)
        return elag_fail(ELAG_ERR_INPUT,
                         "window: input %dx%d, kernel %dx%d, stride %dx%d, padding %dx%d is not "
                         "a valid window",
                         g->H, g->W, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw);
    long eh = (long)g->H + 2L * g->ph - g->kh, ew = (long)g->W + 2L * g->pw - g->kw;
    if (eh < 0 || ew < 0)
        return elag_fail(ELAG_ERR_INPUT,
                         "window: kernel %dx%d does not fit an input of %dx%d with padding %dx%d",
                         g->kh, g->kw, g->H, g->W, g->ph, g->pw);
    g->oh = (int)(eh / g->sh + 1);
    g->ow = (int)(ew / g->sw + 1);
    return ELAG_OK;
}
