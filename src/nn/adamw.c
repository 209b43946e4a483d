/* adamw.c - AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2) with
 * Adam's bias correction (Kingma & Ba 2015, Algorithm 1):
 *   m = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2
 *   mhat = m / (1 - b1^t) ;  vhat = v / (1 - b2^t)
 *   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)          (decay decoupled from the gradient)
 * t is the 1-based step. Elementwise, parallel with OpenMP (no reduction, so thread-count independent).
 * Does not: schedule the learning rate or clip gradients (src/train does). Tensors that must not be decayed
 * are updated with wd = 0 by the caller. */
#include <math.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                  float eps, float wd, int t) {
    UMOE_ASSERT(t >= 1);
    float bc1 = (float)(1.0 - pow((double)beta1, (double)t));
    float bc2 = (float)(1.0 - pow((double)beta2, (double)t));
    long len = (long)n;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && n > 65536)
    for (long i = 0; i < len; i++) {
        float gi = g[i];
        float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
    }
}
