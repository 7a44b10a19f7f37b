/*
 * Progress display for long runs: a one-line bar redrawn on a terminal (epoch, step,
 * loss, accuracy, sparsity, samples/s, ETA); plain periodic lines otherwise (logs,
 * pipes, CI); nothing with --quiet.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <unistd.h>

void elag_cli_progress_init(elag_cli_progress *p, int quiet)
{
    p->quiet = quiet;
    p->tty = isatty(STDERR_FILENO);
    p->drawn = 0;
}

static void format_eta(double s, char *buf, size_t len)
{
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

void elag_cli_progress_update(const elag_run_progress *pr, void *user)
{
    elag_cli_progress *p = user;
    if (p->quiet) return;
    elag_cli_notes_flush(); /* training started: the input was good */
    char eta[32];
    format_eta(pr->eta_seconds, eta, sizeof eta);
    if (p->tty) {
        const int width = 20;
        int filled = pr->steps > 0 ? (int)(width * pr->step / pr->steps) : 0;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr,
                "\r[%s] epoch %d/%d step %ld/%ld loss %.4f acc %.3f sparsity %.3f %.0f "
                "samples/s ETA %s\033[K",
                bar, pr->epoch, pr->epochs, pr->step, pr->steps, pr->loss, pr->accuracy,
                pr->sparsity, pr->samples_per_second, eta);
        p->drawn = 1;
        if (!pr->epoch_end) {
            fflush(stderr);
            return;
        }
        fputc('\n', stderr);
        p->drawn = 0;
    }
    if (!p->tty && !pr->epoch_end) {
        fprintf(stderr, "step %ld/%ld epoch %d/%d loss %.4f acc %.3f sparsity %.3f %.0f samples/s "
                        "ETA %s\n",
                pr->step, pr->steps, pr->epoch, pr->epochs, pr->loss, pr->accuracy, pr->sparsity,
                pr->samples_per_second, eta);
        return;
    }
    fprintf(stderr, "epoch %d/%d done: train loss %.4f acc %.4f sparsity %.3f %.0f samples/s",
            pr->epoch, pr->epochs, pr->loss, pr->accuracy, pr->sparsity, pr->samples_per_second);
    if (pr->val_accuracy >= 0) fprintf(stderr, " val acc %.4f", pr->val_accuracy);
    if (pr->test_accuracy >= 0) fprintf(stderr, " test acc %.4f", pr->test_accuracy);
    fputc('\n', stderr);
}

void elag_cli_progress_done(elag_cli_progress *p)
{
    if (p->drawn) fputc('\n', stderr);
    p->drawn = 0;
}
