/* crossentropy.c - softmax cross-entropy of logits (N,V) against integer targets (N), natural log.
 *   loss_n = logsumexp(logits_n) - logits_n[target_n], computed with max-subtraction for stability;
 *   dlogits_n += (softmax(logits_n) - onehot(target_n)) * dloss_n.
 * targets < 0 are ignored: loss 0 and no gradient. Rows in parallel with OpenMP (large calls); exp by
 * nn_expf (vectorised, relative error ~2e-7), deterministic sums (nn_internal.h).
 * Does not: average over tokens (the caller chooses the normalisation through dloss). */
#include <math.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

/* log(sum_v exp(x_v)) with the max subtracted first; exp by nn_expf (relative error ~2e-7), summed by
 * nn_sum_exp (vectorised, same bits for any buffer alignment). */
static double row_lse(const float *x, size_t V) {
    float mx = x[0];
#pragma omp simd reduction(max : mx)
    for (size_t v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    return (double)mx + log(nn_sum_exp(x, mx, NULL, V));
}

typedef struct { float *losses, *dlogits; const float *logits, *dloss; const int32_t *targets; size_t V; } ce_args;

static void fwd_rows(void *p, size_t lo, size_t hi) {
    ce_args *a = p;
    for (size_t n = lo; n < hi; n++) {
        int32_t t = a->targets[n];
        if (t < 0) { a->losses[n] = 0.0f; continue; }
        UMOE_ASSERT((size_t)t < a->V);
        const float *x = a->logits + n * a->V;
        a->losses[n] = (float)(row_lse(x, a->V) - (double)x[t]);
    }
}

static void bwd_rows(void *p, size_t lo, size_t hi) {
    ce_args *a = p;
    size_t V = a->V;
    for (size_t n = lo; n < hi; n++) {
        int32_t t = a->targets[n];
        if (t < 0) continue;
        UMOE_ASSERT((size_t)t < V);
        const float *x = a->logits + n * V;
        float *dx = a->dlogits + n * V;
        float lse = (float)row_lse(x, V), d = a->dloss[n];
#pragma omp simd
        for (size_t v = 0; v < V; v++) dx[v] += nn_expf(x[v] - lse) * d;
        dx[t] -= d;
    }
}

void crossentropy_forward(float *losses, const float *logits, const int32_t *targets, size_t N, size_t V) {
    ce_args a = {.losses = losses, .logits = logits, .targets = targets, .V = V};
    nn_parallel_range(N, V ? NN_PAR_ELEMS / V + 1 : 1, fwd_rows, &a);
}

void crossentropy_backward(float *dlogits, const float *dloss, const float *logits, const int32_t *targets, size_t N,
                           size_t V) {
    ce_args a = {.dlogits = dlogits, .dloss = dloss, .logits = logits, .targets = targets, .V = V};
    nn_parallel_range(N, V ? NN_PAR_ELEMS / V + 1 : 1, bwd_rows, &a);
}
