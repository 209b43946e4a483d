/* router.c - the MoE gate: scores, top-k selection, combine weights, and the exact backward of all of it.
 *   scores = softmax(logits) over E (Shazeer et al. 2017; Mixtral) or sigmoid(logits) (DeepSeek-V3 sec. 2.1.2,
 *            eq. 15);
 *   selection: the K largest of scores + bias (bias only steers selection: DeepSeek-V3's auxiliary-loss-free
 *            balancing, eq. 16), ties broken by the lower expert id, idx in descending order of the key;
 *   weights: w_j = scores[idx_j], renormalised over the top-k when norm_topk (w_j / sum_j' w_j'; DeepSeek-V3
 *            eq. 13), then times scale (the routed scaling factor).
 * Backward, per token, with s_j = scores[idx_j], S = sum_j s_j and dw the gradient of the weights:
 *   norm_topk:  dscore[idx_j] += scale * (dw_j / S - sum_j' dw_j' s_j' / S^2);   else dscore[idx_j] += scale*dw_j
 *   plus the caller's dscores (the aux loss reads scores directly), then through the score function:
 *   softmax: dlogit_e += s_e (ds_e - sum_e' ds_e' s_e');  sigmoid: dlogit_e += ds_e s_e (1 - s_e).
 * The selection itself is piecewise constant: no gradient flows through idx or the bias.
 * Tokens in parallel with OpenMP (large calls).
 * Does not: compute the aux loss or update the bias (src/model does), or limit experts per device group. */
#include <math.h>
#include <string.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

static void score_row(float *s, const float *x, size_t E, int kind) {
    if (kind == NN_SCORE_SIGMOID) {
        for (size_t e = 0; e < E; e++) s[e] = 1.0f / (1.0f + expf(-x[e]));
        return;
    }
    float mx = x[0];
    for (size_t e = 1; e < E; e++) mx = x[e] > mx ? x[e] : mx;
    double sum = 0.0;
    for (size_t e = 0; e < E; e++) sum += exp((double)(x[e] - mx));
    for (size_t e = 0; e < E; e++) s[e] = (float)(exp((double)(x[e] - mx)) / sum);
}

/* K passes of arg-max over the experts not yet taken; strict > keeps the lower id on ties. */
static void topk_row(int32_t *idx, const float *s, const float *bias, size_t E, size_t K) {
    for (size_t j = 0; j < K; j++) {
        int32_t best = -1;
        float bk = 0.0f;
        for (size_t e = 0; e < E; e++) {
            int taken = 0;
            for (size_t i = 0; i < j; i++) taken |= idx[i] == (int32_t)e;
            if (taken) continue;
            float key = s[e] + (bias ? bias[e] : 0.0f);
            if (best < 0 || key > bk) { best = (int32_t)e; bk = key; }
        }
        idx[j] = best;
    }
}

typedef struct {
    float *scores, *w, *dlogits; int32_t *idx; const int32_t *cidx; const float *logits, *bias, *dw, *dscores, *cscores;
    size_t E, K; int kind, norm; float scale;
} rt_args;

static void fwd_rows(void *p, size_t lo, size_t hi) {
    rt_args *a = p;
    size_t E = a->E, K = a->K;
    for (size_t n = lo; n < hi; n++) {
        float *s = a->scores + n * E, *wn = a->w + n * K;
        int32_t *in = a->idx + n * K;
        score_row(s, a->logits + n * E, E, a->kind);
        topk_row(in, s, a->bias, E, K);
        double sum = 0.0;
        for (size_t j = 0; j < K; j++) sum += s[in[j]];
        for (size_t j = 0; j < K; j++) wn[j] = (float)((a->norm ? s[in[j]] / sum : s[in[j]]) * a->scale);
    }
}

void router_forward(float *scores, int32_t *idx, float *w, const float *logits, const float *bias, size_t N, size_t E,
                    size_t K, int score_kind, int norm_topk, float scale) {
    UMOE_ASSERT(K >= 1 && K <= E);
    UMOE_ASSERT(score_kind == NN_SCORE_SOFTMAX || score_kind == NN_SCORE_SIGMOID);
    rt_args a = {.scores = scores, .w = w, .idx = idx, .logits = logits, .bias = bias, .E = E, .K = K,
                 .kind = score_kind, .norm = norm_topk, .scale = scale};
    nn_parallel_range(N, NN_PAR_ELEMS / (E * K) + 1, fwd_rows, &a);
}

static void bwd_rows(void *p, size_t lo, size_t hi) {
    rt_args *a = p;
    size_t E = a->E, K = a->K;
    float *ds = umoe_malloc(E * sizeof(float), "router dscore row");
    for (size_t n = lo; n < hi; n++) {
        const float *s = a->cscores + n * E;
        const int32_t *in = a->cidx + n * K;
        if (a->dscores) memcpy(ds, a->dscores + n * E, E * sizeof(float));
        else memset(ds, 0, E * sizeof(float));
        if (a->dw) {
            const float *dwn = a->dw + n * K;
            if (a->norm) {
                double S = 0.0, g = 0.0;
                for (size_t j = 0; j < K; j++) { S += s[in[j]]; g += (double)dwn[j] * s[in[j]]; }
                for (size_t j = 0; j < K; j++) ds[in[j]] += (float)(a->scale * (dwn[j] / S - g / (S * S)));
            } else {
                for (size_t j = 0; j < K; j++) ds[in[j]] += a->scale * dwn[j];
            }
        }
        float *dl = a->dlogits + n * E;
        if (a->kind == NN_SCORE_SIGMOID) {
            for (size_t e = 0; e < E; e++) dl[e] += ds[e] * s[e] * (1.0f - s[e]);
        } else {
            double dot = 0.0;
            for (size_t e = 0; e < E; e++) dot += (double)ds[e] * s[e];
            for (size_t e = 0; e < E; e++) dl[e] += s[e] * (ds[e] - (float)dot);
        }
    }
    umoe_free(ds, E * sizeof(float));
}

void router_backward(float *dlogits, const float *dw, const float *dscores, const float *scores, const int32_t *idx,
                     const float *w, size_t N, size_t E, size_t K, int score_kind, int norm_topk, float scale) {
    rt_args a = {.dlogits = dlogits, .dw = dw, .dscores = dscores, .cscores = scores, .cidx = idx, .E = E, .K = K,
                 .kind = score_kind, .norm = norm_topk, .scale = scale};
    nn_parallel_range(N, NN_PAR_ELEMS / E + 1, bwd_rows, &a);
}
