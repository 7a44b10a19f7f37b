/*
 * Learning-rate schedules: linear warmup from 0 over warmup_steps, then constant,
 * step (times gamma every step_size steps) or cosine (from lr down to min_lr at the
 * last step).
 */
#include "train/train.h"

#include <math.h>

double elag_lr_at(const elag_config *cfg, long t, long total_steps)
{
    const double base = cfg->train.optimizer.lr;
    const long warm = cfg->train.lr_schedule.warmup_steps;
    if (warm > 0 && t < warm) return base * (double)(t + 1) / (double)warm;
    long u = t - (warm > 0 ? warm : 0);
    switch (cfg->train.lr_schedule.type) {
    case ELAG_LR_SCHEDULE_CONSTANT: return base;
    case ELAG_LR_SCHEDULE_STEP: {
        long size = cfg->train.lr_schedule.step_size > 0 ? cfg->train.lr_schedule.step_size : 1;
        return base * pow(cfg->train.lr_schedule.gamma, (double)(u / size));
    }
    case ELAG_LR_SCHEDULE_COSINE: {
        long span = total_steps - (warm > 0 ? warm : 0) - 1;
        double frac = span > 0 ? (double)u / (double)span : 1.0;
        if (frac > 1.0) frac = 1.0;
        double lo = cfg->train.lr_schedule.min_lr;
        return lo + (base - lo) * 0.5 * (1.0 + cos(3.14159265358979323846 * frac));
    }
    }
    return base;
}
