/* router_grouped.c - the selection of the Mixture of Grouped Experts (MoGE; Pangu Pro MoE, arXiv 2505.21411,
 * sec. 2): the E experts are split into G equal groups of E / G consecutive ids (one group per device), the
 * scores are those of the ordinary router (softmax over ALL E experts, or sigmoid), and every token takes the
 * K' = K / G best experts inside EVERY group, so each group (device) receives exactly N K / G token-assignments:
 * the imbalance score IS = (max - min device load) / |X| is 0 by construction (the paper's eq. for IS).
 * idx is written group by group (group 0's K' experts first), inside a group in descending order of
 * score + bias, ties to the lower id; the weights are w_j = score[idx_j], renormalised over all K selected
 * when norm_topk, times scale - exactly router_forward's rule, so router_backward applies unchanged (it only
 * reads idx, w and the scores).
 * Does not: compute the scores (router_forward does) or the aux loss. */
#include "umoe/common.h"
#include "umoe/nn.h"

void router_grouped_select(int32_t *idx, float *w, const float *scores, const float *bias, size_t N, size_t E,
                           size_t K, size_t G, int norm_topk, float scale) {
    UMOE_ASSERT(G >= 1 && E % G == 0 && K % G == 0 && K / G <= E / G);
    size_t Eg = E / G, Kg = K / G;
    for (size_t n = 0; n < N; n++) {
        const float *s = scores + n * E;
        int32_t *in = idx + n * K;
        float *wn = w + n * K;
        for (size_t g = 0; g < G; g++) {
            int32_t *ig = in + g * Kg;
            /* Kg passes of arg-max over the group's experts not yet taken; strict > keeps the lower id */
            for (size_t j = 0; j < Kg; j++) {
                int32_t best = -1;
                float bk = 0;
                for (size_t e = g * Eg; e < (g + 1) * Eg; e++) {
                    int taken = 0;
                    for (size_t i = 0; i < j; i++) taken |= ig[i] == (int32_t)e;
                    if (taken) continue;
                    float key = s[e] + (bias ? bias[e] : 0.0f);
                    if (best < 0 || key > bk) { best = (int32_t)e; bk = key; }
                }
                ig[j] = best;
            }
        }
        double sum = 0.0;
        for (size_t j = 0; j < K; j++) sum += s[in[j]];
        for (size_t j = 0; j < K; j++) wn[j] = (float)((norm_topk ? s[in[j]] / sum : s[in[j]]) * scale);
    }
}
