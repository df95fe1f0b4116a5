/* schedule.c - learning-rate schedules (see schedule.h). */
#include "optim/schedule.h"

#include <math.h>

double ox_optim_lr_cosine(int64_t step, int64_t warmup, int64_t total, double lr_max, double lr_min)
{
    if (step < 0)
        step = 0;
    if (step < warmup)
        return lr_max * (double)step / (double)warmup;
    if (step >= total)
        return lr_min;
    double progress = (double)(step - warmup) / (double)(total - warmup);
    return lr_min + (lr_max - lr_min) * 0.5 * (1.0 + cos(M_PI * progress));
}
