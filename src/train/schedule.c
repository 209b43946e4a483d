/* schedule.c - the learning-rate schedule: linear warmup (Goyal et al. 2017, "Accurate, Large Minibatch
 * SGD", sec. 2.2) followed by cosine decay to a floor (Loshchilov & Hutter, "SGDR", ICLR 2017, eq. 5 with a
 * single cycle and no restarts):
 *   s < W:        lr(s) = lr_max * (s + 1) / W
 *   W <= s < N:   lr(s) = lr_min + 0.5 (lr_max - lr_min) (1 + cos(pi (s - W) / (N - W)))
 *   s >= N:       lr_min
 * s is the 0-based optimizer step, W the warmup steps, N the total steps.
 * Does not: apply the rate (optimizer.c). */
#include <math.h>
#include "umoe/train.h"

double train_lr_at(const train_schedule *s, long step) {
    if (step < 0) step = 0;
    if (step < s->warmup) return s->lr * (double)(step + 1) / (double)s->warmup;
    if (step >= s->steps) return s->min_lr;
    long span = s->steps - s->warmup;
    double progress = span > 0 ? (double)(step - s->warmup) / (double)span : 1.0;
    return s->min_lr + 0.5 * (s->lr - s->min_lr) * (1.0 + cos(M_PI * progress));
}
