/* test_nn_router_grouped.c - the MoGE grouped selection (src/nn/router_grouped.c): every token takes exactly
 * K/G distinct experts in each of the G groups, so each group's load is exactly N K / G (imbalance 0 by
 * construction); the chosen set of each group equals a brute-force sort of the group's keys; G = 1 gives
 * router_forward's choice and weights bit for bit; the gradient through the grouped weights (router_backward,
 * unchanged) matches central finite differences. */
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "umoe/nn.h"

enum { N = 64, E = 8, K = 4 };

static void fill(float *x, size_t n, uint64_t seed) {
    umoe_rng r;
    umoe_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = (float)(umoe_rng_u64(&r) % 2001) / 500.0f - 2.0f;
}

static void test_grouped_balanced_and_exact(void) {
    float logits[N * E], scores[N * E], w[N * K], bias[E];
    int32_t idx[N * K];
    fill(logits, N * E, 1);
    fill(bias, E, 2);
    for (int G = 1; G <= 4; G *= 2) {
        for (int use_bias = 0; use_bias < 2; use_bias++) {
            router_forward(scores, idx, w, logits, NULL, N, E, K, NN_SCORE_SOFTMAX, 1, 2.5f);
            router_grouped_select(idx, w, scores, use_bias ? bias : NULL, N, E, K, G, 1, 2.5f);
            int load[E] = {0}, Eg = E / G, Kg = K / G;
            for (int n = 0; n < N; n++) {
                double wsum = 0;
                for (int g = 0; g < G; g++) {
                    /* brute force: the Kg largest keys of the group, ties to the lower id, descending */
                    int want[E], cnt = 0;
                    for (int e = g * Eg; e < (g + 1) * Eg; e++) want[cnt++] = e;
                    for (int i = 1; i < cnt; i++)
                        for (int j = i; j > 0; j--) {
                            float ka = scores[n * E + want[j - 1]] + (use_bias ? bias[want[j - 1]] : 0);
                            float kb = scores[n * E + want[j]] + (use_bias ? bias[want[j]] : 0);
                            if (kb > ka) { int t = want[j]; want[j] = want[j - 1]; want[j - 1] = t; }
                        }
                    for (int j = 0; j < Kg; j++)
                        CHECK(idx[n * K + g * Kg + j] == want[j], "G %d token %d group %d pick %d: %d, want %d", G, n,
                              g, j, idx[n * K + g * Kg + j], want[j]);
                }
                for (int j = 0; j < K; j++) {
                    load[idx[n * K + j]]++;
                    wsum += w[n * K + j];
                }
                CHECK_CLOSE(wsum, 2.5, 1e-5, 0, "renormalised weights sum to the scale");
            }
            for (int g = 0; g < G; g++) {
                int gl = 0;
                for (int e = g * Eg; e < (g + 1) * Eg; e++) gl += load[e];
                CHECK(gl == N * K / G, "G %d: group %d load %d, want exactly %d", G, g, gl, N * K / G);
            }
        }
    }
}

static void test_g1_equals_router(void) {
    float logits[N * E], s1[N * E], s2[N * E], w1[N * K], w2[N * K];
    int32_t i1[N * K], i2[N * K];
    fill(logits, N * E, 3);
    router_forward(s1, i1, w1, logits, NULL, N, E, K, NN_SCORE_SIGMOID, 1, 1.0f);
    router_forward(s2, i2, w2, logits, NULL, N, E, K, NN_SCORE_SIGMOID, 1, 1.0f);
    router_grouped_select(i2, w2, s2, NULL, N, E, K, 1, 1, 1.0f);
    CHECK(!memcmp(i1, i2, sizeof i1) && !memcmp(w1, w2, sizeof w1), "G = 1 differs from router_forward");
}

/* L = sum_j c_j w_j over the grouped weights: dL/dlogits by router_backward vs central differences */
static double loss_of(const float *logits, const float *c, int G, int32_t *idx_out) {
    float s[N * E], w[N * K];
    int32_t idx[N * K];
    router_forward(s, idx, w, logits, NULL, N, E, K, NN_SCORE_SOFTMAX, 1, 1.0f);
    router_grouped_select(idx, w, s, NULL, N, E, K, G, 1, 1.0f);
    if (idx_out) memcpy(idx_out, idx, sizeof idx);
    double L = 0;
    for (int i = 0; i < N * K; i++) L += (double)c[i] * w[i];
    return L;
}

static void test_grouped_gradient(void) {
    const int G = 2;
    float logits[N * E], c[N * K], s[N * E], w[N * K], dl[N * E];
    int32_t idx[N * K], idx2[N * K];
    fill(logits, N * E, 4);
    fill(c, N * K, 5);
    router_forward(s, idx, w, logits, NULL, N, E, K, NN_SCORE_SOFTMAX, 1, 1.0f);
    router_grouped_select(idx, w, s, NULL, N, E, K, G, 1, 1.0f);
    memset(dl, 0, sizeof dl);
    router_backward(dl, c, NULL, s, idx, w, N, E, K, NN_SCORE_SOFTMAX, 1, 1.0f);
    double worst = 0;
    int checked = 0;
    for (int i = 0; i < N * E; i += 7) {
        const float h = 1e-2f;
        float keep = logits[i];
        logits[i] = keep + h;
        double lp = loss_of(logits, c, G, idx2);
        int same = !memcmp(idx, idx2, sizeof idx);
        logits[i] = keep - h;
        double lm = loss_of(logits, c, G, idx2);
        same &= !memcmp(idx, idx2, sizeof idx);
        logits[i] = keep;
        if (!same) continue; /* the selection changed: not differentiable there */
        double fd = (lp - lm) / (2 * h), err = fabs(fd - dl[i]);
        worst = err > worst ? err : worst;
        checked++;
    }
    CHECK(checked > 40, "only %d points checked", checked);
    CHECK(worst < 2e-3, "gradient error %.3g", worst);
}

int main(void) {
    RUN(test_grouped_balanced_and_exact);
    RUN(test_g1_equals_router);
    RUN(test_grouped_gradient);
    TEST_MAIN_END();
}
