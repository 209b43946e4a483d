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

typedef struct { float *dst; const float *src, *w, *dout, *rows; float *dw; const int32_t *order, *inv; size_t K, C; } md_args;

static void permute_rows(void *p, size_t lo, size_t hi) {
    md_args *a = p;
    for (size_t r = lo; r < hi; r++)
        memcpy(a->dst + r * a->C, a->src + (size_t)(a->order[r] / (int32_t)a->K) * a->C, a->C * sizeof(float));
}

void moe_permute_forward(float *rows, const float *x, const int32_t *order, size_t NK, size_t K, size_t C) {
    md_args a = {.dst = rows, .src = x, .order = order, .K = K, .C = C};
    nn_parallel_range(NK, NN_PAR_ELEMS / (C + 1) + 1, permute_rows, &a);
}

/* per token n: dst[n] += sum_j (w ? w[a] : 1) * src[inv[a]], a = n*K + j */
static void gather_add_tokens(void *p, size_t lo, size_t hi) {
    md_args *a = p;
    size_t K = a->K, C = a->C;
    for (size_t n = lo; n < hi; n++) {
        float *d = a->dst + n * C;
        for (size_t j = 0; j < K; j++) {
            size_t as = n * K + j;
            const float *x = a->src + (size_t)a->inv[as] * C;
            float wa = a->w ? a->w[as] : 1.0f;
#pragma omp simd
            for (size_t c = 0; c < C; c++) d[c] += wa * x[c];
        }
    }
}

void moe_permute_backward(float *dx, const float *drows, const int32_t *order, size_t NK, size_t K, size_t C) {
    int32_t *inv = inverse_order(order, NK);
    md_args a = {.dst = dx, .src = drows, .inv = inv, .K = K, .C = C};
    nn_parallel_range(NK / K, NN_PAR_ELEMS / (K * C + 1) + 1, gather_add_tokens, &a);
    umoe_free(inv, (NK ? NK : 1) * sizeof(int32_t));
}

void moe_unpermute_forward(float *out, const float *rows, const float *w, const int32_t *order, size_t NK, size_t K,
                           size_t C) {
    int32_t *inv = inverse_order(order, NK);
    md_args a = {.dst = out, .src = rows, .w = w, .inv = inv, .K = K, .C = C};
    nn_parallel_range(NK / K, NN_PAR_ELEMS / (K * C + 1) + 1, gather_add_tokens, &a);
    umoe_free(inv, (NK ? NK : 1) * sizeof(int32_t));
}

static void unpermute_bwd_rows(void *p, size_t lo, size_t hi) {
    md_args *a = p;
    size_t K = a->K, C = a->C;
    for (size_t r = lo; r < hi; r++) {
        size_t as = (size_t)a->order[r], n = as / K;
        const float *d = a->dout + n * C, *x = a->rows + r * C;
        if (a->dst) {
            float *dr = a->dst + r * C, wa = a->w[as];
#pragma omp simd
            for (size_t c = 0; c < C; c++) dr[c] += wa * d[c];
        }
        if (a->dw) {
            a->dw[as] += (float)nn_dot(d, x, C);
        }
    }
}

void moe_unpermute_backward(float *drows, float *dw, const float *dout, const float *rows, const float *w,
                            const int32_t *order, size_t NK, size_t K, size_t C) {
    md_args a = {.dst = drows, .dw = dw, .dout = dout, .rows = rows, .w = w, .order = order, .K = K, .C = C};
    nn_parallel_range(NK, NN_PAR_ELEMS / (C + 1) + 1, unpermute_bwd_rows, &a);
}
