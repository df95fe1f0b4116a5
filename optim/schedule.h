/* schedule.h - learning-rate schedules: pure functions of the step number.
 *
 * ox_optim_lr_cosine: linear warmup from 0 to lr_max, then a half-cosine down to lr_min, then constant
 * (the schedule of Loshchilov & Hutter's SGDR without restarts, with the usual linear warmup):
 *     step <  warmup:           lr_max * step / warmup                     (0 at step 0)
 *     warmup <= step < total:   lr_min + (lr_max - lr_min) * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2
 *     step >= total:            lr_min
 * so lr(warmup) = lr_max and the cosine reaches lr_min exactly at `total`. A negative step counts as 0;
 * warmup <= 0 means no warmup; total <= warmup means lr_min right after the warmup.
 *
 *   float lr = (float)ox_optim_lr_cosine(step, 100, 5000, 3e-3, 3e-4);
 */
#ifndef OX_OPTIM_SCHEDULE_H
#define OX_OPTIM_SCHEDULE_H

#include <stdint.h>

double ox_optim_lr_cosine(int64_t step, int64_t warmup, int64_t total, double lr_max, double lr_min);

#endif
