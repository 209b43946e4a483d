/* adamw.c - AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2) with
 * Adam's bias correction (Kingma & Ba 2015, Algorithm 1):
 *   m = b1 m + (1 - b1) g ;  v = b2 v + (1 - b2) g^2
 *   mhat = m / (1 - b1^t) ;  vhat = v / (1 - b2^t)
 *   p -= lr * (mhat / (sqrt(vhat) + eps) + wd * p)          (decay decoupled from the gradient)
 * t is the 1-based step. Elementwise, parallel with OpenMP (no reduction, so thread-count independent).
 * adamw_update_many is the optimizer pass of a whole model in one parallel region: several tensors
 * (segments) of one flat block, each with its weight decay, the global-norm clip's scale folded in (g is
 * used as the float product g * gscale, the same bits as scaling g in place first) and, on request, each
 * gradient set to 0 once read (the next step's zeroing pass is then not needed). It moves 28 B per
 * parameter (32 with the zeroing) instead of 28 + 8 (clip scaling) + 4 (zeroing) in separate passes, and
 * opens one parallel region instead of one per tensor. adamw_update_many_naive is its twin (a scaled copy
 * of each gradient, adamw_update, memset, tensor by tensor). Without zeroing, g is only read.
 * Does not: schedule the learning rate or compute the gradient norm (src/train does). Tensors that must not
 * be decayed are updated with wd = 0 by the caller. */
#include <math.h>
#include <string.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

typedef struct { float lr, b1, b2, eps, bc1, bc2, gs; } aw_coef;

static aw_coef coef(float lr, float beta1, float beta2, float eps, int t, float gscale) {
    UMOE_ASSERT(t >= 1);
    aw_coef c = {.lr = lr, .b1 = beta1, .b2 = beta2, .eps = eps, .gs = gscale,
                 .bc1 = (float)(1.0 - pow((double)beta1, (double)t)), .bc2 = (float)(1.0 - pow((double)beta2, (double)t))};
    return c;
}

/* elements [0, n) of one tensor; g is written (set to 0) only when zero is set */
static inline void aw_loop(float *restrict p, float *restrict g, float *restrict m, float *restrict v, size_t n,
                           const aw_coef *c, float wd, int zero) {
    float lr = c->lr, b1 = c->b1, b2 = c->b2, eps = c->eps, bc1 = c->bc1, bc2 = c->bc2, gs = c->gs;
    if (zero) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * gs;
            g[i] = 0.0f;
            float mi = b1 * m[i] + (1.0f - b1) * gi;
            float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            float mhat = mi / bc1, vhat = vi / bc2;
            p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
        }
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * gs;
            float mi = b1 * m[i] + (1.0f - b1) * gi;
            float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            float mhat = mi / bc1, vhat = vi / bc2;
            p[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * p[i]);
        }
    }
}

typedef struct { float *p, *m, *v; float *g; float wd; aw_coef c; } aw_args;

static void update_range(void *ctx, size_t lo, size_t hi) {
    aw_args *a = ctx;
    /* gs = 1 and no zeroing: g is only read (the cast keeps one loop for both entry points) */
    aw_loop(a->p + lo, a->g + lo, a->m + lo, a->v + lo, hi - lo, &a->c, a->wd, 0);
}

void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                  float eps, float wd, int t) {
    aw_args a = {.p = p, .m = m, .v = v, .g = (float *)g, .wd = wd, .c = coef(lr, beta1, beta2, eps, t, 1.0f)};
    nn_parallel_range(n, NN_PAR_ELEMS, update_range, &a);
}

/* ------------------------------------------------------------------ many tensors, one pass */
typedef struct {
    float *p, *g, *m, *v;
    const adamw_segment *seg;
    const size_t *start; /* start[i] = elements of segments 0..i-1 (the segments laid end to end) */
    int n_seg, zero;
    aw_coef c;
} awm_args;

/* elements [lo, hi) of the segments laid end to end */
static void many_range(void *ctx, size_t lo, size_t hi) {
    awm_args *a = ctx;
    int s = 0, e = a->n_seg; /* last segment with start <= lo */
    while (e - s > 1) {
        int mid = (s + e) / 2;
        if (a->start[mid] <= lo) s = mid; else e = mid;
    }
    for (; s < a->n_seg && a->start[s] < hi; s++) {
        size_t b = lo > a->start[s] ? lo - a->start[s] : 0;
        size_t end = a->start[s + 1] < hi ? a->start[s + 1] : hi;
        size_t len = end - a->start[s] - b, off = a->seg[s].off + b;
        if (len) aw_loop(a->p + off, a->g + off, a->m + off, a->v + off, len, &a->c, a->seg[s].wd, a->zero);
    }
}

void adamw_update_many(float *p, float *g, float *m, float *v, const adamw_segment *seg, int n_seg, float lr,
                       float beta1, float beta2, float eps, int t, float gscale, int zero_grad) {
    if (n_seg <= 0) return;
    size_t bytes = ((size_t)n_seg + 1) * sizeof(size_t);
    size_t *start = umoe_malloc(bytes, "adamw segment starts");
    start[0] = 0;
    for (int i = 0; i < n_seg; i++) start[i + 1] = start[i] + seg[i].n;
    awm_args a = {.p = p, .g = g, .m = m, .v = v, .seg = seg, .start = start, .n_seg = n_seg, .zero = zero_grad,
                  .c = coef(lr, beta1, beta2, eps, t, gscale)};
    nn_parallel_range(start[n_seg], NN_PAR_ELEMS, many_range, &a);
    umoe_free(start, bytes);
}

void adamw_update_many_naive(float *p, float *g, float *m, float *v, const adamw_segment *seg, int n_seg, float lr,
                             float beta1, float beta2, float eps, int t, float gscale, int zero_grad) {
    for (int i = 0; i < n_seg; i++) {
        size_t o = seg[i].off, bytes = (seg[i].n ? seg[i].n : 1) * sizeof(float);
        float *gs = umoe_malloc(bytes, "scaled gradient"); /* g itself is left as it was unless zeroed */
        for (size_t k = 0; k < seg[i].n; k++) gs[k] = g[o + k] * gscale;
        adamw_update(p + o, gs, m + o, v + o, seg[i].n, lr, beta1, beta2, eps, seg[i].wd, t);
        umoe_free(gs, bytes);
        if (zero_grad) memset(g + o, 0, seg[i].n * sizeof(float));
    }
}
