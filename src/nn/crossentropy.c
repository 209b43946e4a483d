/* crossentropy.c - softmax cross-entropy of logits (N,V) against integer targets (N), natural log.
 *   loss_n = logsumexp(logits_n) - logits_n[target_n], computed with max-subtraction for stability;
 *   dlogits_n += (softmax(logits_n) - onehot(target_n)) * dloss_n.
 * targets < 0 are ignored: loss 0 and no gradient. Rows in parallel with OpenMP.
 * Does not: average over tokens (the caller chooses the normalisation through dloss). */
#include <math.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

/* log(sum_v exp(x_v)) with the max subtracted first; sum in double. */
static double row_lse(const float *x, size_t V) {
    float mx = x[0];
    for (size_t v = 1; v < V; v++) mx = x[v] > mx ? x[v] : mx;
    double s = 0.0;
    for (size_t v = 0; v < V; v++) s += exp((double)(x[v] - mx));
    return (double)mx + log(s);
}

void crossentropy_forward(float *losses, const float *logits, const int32_t *targets, size_t N, size_t V) {
    long n_rows = (long)N;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && N * V > 16384)
    for (long n = 0; n < n_rows; n++) {
        int32_t t = targets[n];
        if (t < 0) { losses[n] = 0.0f; continue; }
        UMOE_ASSERT((size_t)t < V);
        const float *x = logits + (size_t)n * V;
        losses[n] = (float)(row_lse(x, V) - (double)x[t]);
    }
}

void crossentropy_backward(float *dlogits, const float *dloss, const float *logits, const int32_t *targets, size_t N,
                           size_t V) {
    long n_rows = (long)N;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && N * V > 16384)
    for (long n = 0; n < n_rows; n++) {
        int32_t t = targets[n];
        if (t < 0) continue;
        UMOE_ASSERT((size_t)t < V);
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits + (size_t)n * V;
        double lse = row_lse(x, V);
        float d = dloss[n];
        for (size_t v = 0; v < V; v++) dx[v] += (float)exp((double)x[v] - lse) * d;
        dx[t] -= d;
    }
}
