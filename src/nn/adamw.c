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

typedef struct { float *p, *m, *v; const float *g; float lr, b1, b2, eps, wd, bc1, bc2; } aw_args;

static void update_range(void *ctx, size_t lo, size_t hi) {
    aw_args *a = ctx;
    float *restrict p = a->p, *restrict m = a->m, *restrict v = a->v;
    const float *restrict g = a->g;
    float lr = a->lr, b1 = a->b1, b2 = a->b2, eps = a->eps, wd = a->wd, bc1 = a->bc1, bc2 = a->bc2;
#pragma omp simd
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
    }
}

void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                  float eps, float wd, int t) {
    UMOE_ASSERT(t >= 1);
    aw_args a = {.p = p, .m = m, .v = v, .g = g, .lr = lr, .b1 = beta1, .b2 = beta2, .eps = eps, .wd = wd,
                 .bc1 = (float)(1.0 - pow((double)beta1, (double)t)), .bc2 = (float)(1.0 - pow((double)beta2, (double)t))};
    nn_parallel_range(n, NN_PAR_ELEMS, update_range, &a);
}
