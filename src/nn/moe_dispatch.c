/* moe_dispatch.c - the bookkeeping that turns routed token-assignments into per-expert contiguous rows and
 * back (dropless: every assignment is kept; no capacity, no padding).
 *   moe_group:      counting sort of the N*K assignments by expert, stable in assignment order a = n*K + j:
 *                   counts (E), offsets (E+1, offsets[E] = N*K), order (N*K) with order[r] = the assignment at
 *                   grouped row r. Experts with no assignment get counts 0 and an empty row range.
 *   moe_permute:    rows[r] = x[order[r] / K]; backward dx[n] += sum of its K rows' gradients.
 *   moe_unpermute:  out[n] += sum_j w[a] rows[row_of(a)] (a = n*K + j, in j order); backward
 *                   drows[r] += w[a] dout[n], dw[a] += dout[n] . rows[r].
 * The expert math between permute and unpermute is one matmul per expert on rows offsets[e]..offsets[e+1]-1.
 * Scatter-adds are done per token through the inverse permutation, so they are race-free in parallel and
 * their summation order (j = 0..K-1) does not depend on the thread count.
 * Does not: move rows between ranks (src/dist does, on top of the same order/counts). */
#include <string.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

void moe_group(int32_t *counts, int32_t *offsets, int32_t *order, const int32_t *idx, size_t N, size_t K, size_t E) {
    size_t NK = N * K;
    memset(counts, 0, E * sizeof(int32_t));
    for (size_t a = 0; a < NK; a++) {
        UMOE_ASSERT(idx[a] >= 0 && (size_t)idx[a] < E);
        counts[idx[a]]++;
    }
    offsets[0] = 0;
    for (size_t e = 0; e < E; e++) offsets[e + 1] = offsets[e] + counts[e];
    int32_t *next = umoe_malloc((E ? E : 1) * sizeof(int32_t), "moe_group cursor");
    memcpy(next, offsets, E * sizeof(int32_t));
    for (size_t a = 0; a < NK; a++) order[next[idx[a]]++] = (int32_t)a;
    umoe_free(next, (E ? E : 1) * sizeof(int32_t));
}

/* inv[a] = r such that order[r] = a */
static int32_t *inverse_order(const int32_t *order, size_t NK) {
    int32_t *inv = umoe_malloc((NK ? NK : 1) * sizeof(int32_t), "moe inverse order");
    for (size_t r = 0; r < NK; r++) inv[order[r]] = (int32_t)r;
    return inv;
}

void moe_permute_forward(float *rows, const float *x, const int32_t *order, size_t NK, size_t K, size_t C) {
    long n_rows = (long)NK;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && NK * C > 65536)
    for (long r = 0; r < n_rows; r++) memcpy(rows + (size_t)r * C, x + (size_t)(order[r] / (int32_t)K) * C, C * sizeof(float));
}

void moe_permute_backward(float *dx, const float *drows, const int32_t *order, size_t NK, size_t K, size_t C) {
    int32_t *inv = inverse_order(order, NK);
    long N = (long)(NK / K);
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && NK * C > 65536)
    for (long n = 0; n < N; n++) {
        float *d = dx + (size_t)n * C;
        for (size_t j = 0; j < K; j++) {
            const float *g = drows + (size_t)inv[(size_t)n * K + j] * C;
            for (size_t c = 0; c < C; c++) d[c] += g[c];
        }
    }
    umoe_free(inv, (NK ? NK : 1) * sizeof(int32_t));
}

void moe_unpermute_forward(float *out, const float *rows, const float *w, const int32_t *order, size_t NK, size_t K,
                           size_t C) {
    int32_t *inv = inverse_order(order, NK);
    long N = (long)(NK / K);
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && NK * C > 65536)
    for (long n = 0; n < N; n++) {
        float *o = out + (size_t)n * C;
        for (size_t j = 0; j < K; j++) {
            size_t a = (size_t)n * K + j;
            const float *x = rows + (size_t)inv[a] * C;
            float wa = w[a];
            for (size_t c = 0; c < C; c++) o[c] += wa * x[c];
        }
    }
    umoe_free(inv, (NK ? NK : 1) * sizeof(int32_t));
}

void moe_unpermute_backward(float *drows, float *dw, const float *dout, const float *rows, const float *w,
                            const int32_t *order, size_t NK, size_t K, size_t C) {
    long n_rows = (long)NK;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && NK * C > 65536)
    for (long r = 0; r < n_rows; r++) {
        size_t a = (size_t)order[r], n = a / K;
        const float *d = dout + n * C, *x = rows + (size_t)r * C;
        if (drows) {
            float *dr = drows + (size_t)r * C;
            for (size_t c = 0; c < C; c++) dr[c] += w[a] * d[c];
        }
        if (dw) {
            double s = 0.0;
            for (size_t c = 0; c < C; c++) s += (double)d[c] * x[c];
            dw[a] += (float)s;
        }
    }
}
