/* test_nn_router.c - the MoE gate: selection (ties to the lower id, bias steers selection only, K = E),
 * weights (renormalisation, scale), and finite-difference gradients through weights and scores for softmax
 * and sigmoid, with and without renormalisation and bias. */
#include "umoe/nn.h"
#include "nn_check.h"

typedef struct {
    float *logits, *bias, *scores, *w, *rw, *rs; int32_t *idx, *idx0;
    size_t N, E, K; int kind, norm; float scale; int flipped;
} rt_ctx;

static double rt_loss(void *p) {
    rt_ctx *c = p;
    router_forward(c->scores, c->idx, c->w, c->logits, c->bias, c->N, c->E, c->K, c->kind, c->norm, c->scale);
    for (size_t i = 0; i < c->N * c->K; i++) c->flipped |= c->idx[i] != c->idx0[i];
    return nc_dot(c->w, c->rw, c->N * c->K) + nc_dot(c->scores, c->rs, c->N * c->E);
}

/* equal logits: ids 0..K-1 in order; bias picks experts but weights stay the unbiased scores; K = E
 * selects everything; renormalised weights sum to scale */
static void test_router_select(void) {
    size_t E = 5, K = 2;
    float logits[5] = {0, 0, 0, 0, 0}, scores[5], w[5];
    int32_t idx[5];
    router_forward(scores, idx, w, logits, NULL, 1, E, K, NN_SCORE_SOFTMAX, 0, 1.0f);
    CHECK(idx[0] == 0 && idx[1] == 1, "ties: got %d %d", idx[0], idx[1]);
    CHECK_CLOSE(w[0], 0.2, 1e-6, 0, "softmax score");
    float bias[5] = {0, -1, 0.5f, 0, 0.5f};
    router_forward(scores, idx, w, logits, bias, 1, E, K, NN_SCORE_SIGMOID, 0, 2.5f);
    CHECK(idx[0] == 2 && idx[1] == 4, "bias selection: got %d %d", idx[0], idx[1]);
    CHECK_CLOSE(w[0], 0.5 * 2.5, 1e-6, 0, "weight from unbiased score x scale");
    float lg[5] = {0.3f, -2, 1, 0.7f, -0.1f};
    router_forward(scores, idx, w, lg, NULL, 1, E, E, NN_SCORE_SIGMOID, 1, 1.5f);
    int seen = 0; double ws = 0;
    for (size_t j = 0; j < E; j++) { seen |= 1 << idx[j]; ws += w[j]; }
    CHECK(seen == 31, "K = E must select every expert");
    CHECK(idx[0] == 2 && idx[1] == 3 && idx[4] == 1, "descending order");
    CHECK_CLOSE(ws, 1.5, 1e-6, 0, "renormalised weights sum to scale");
    router_forward(scores, idx, w, lg, NULL, 1, E, E, NN_SCORE_SOFTMAX, 0, 1.0f);
    ws = 0; for (size_t j = 0; j < E; j++) ws += w[j];
    CHECK_CLOSE(ws, 1.0, 1e-6, 0, "softmax over all experts sums to 1");
}

/* eps 1e-3, rtol 1e-2, atol 1e-3 x max; loss = rw . w + rs . scores; every (kind, norm, bias) combination,
 * and K = E; the selection must not change under the perturbation (checked) */
static void test_router_gradcheck(void) {
    for (int cfg = 0; cfg < 10; cfg++) {
        rt_ctx c = {.N = 4, .E = 6, .K = cfg >= 8 ? 6 : 2, .kind = cfg & 1, .norm = (cfg >> 1) & 1, .scale = 2.5f};
        int use_bias = (cfg >> 2) & 1;
        umoe_rng rng; umoe_rng_seed(&rng, 70 + cfg);
        size_t ne = c.N * c.E, nk = c.N * c.K;
        c.logits = nc_alloc(ne); c.scores = nc_alloc(ne); c.rs = nc_alloc(ne); c.bias = nc_alloc(c.E);
        c.w = nc_alloc(nk); c.rw = nc_alloc(nk);
        c.idx = umoe_calloc(nk, sizeof(int32_t), "idx"); c.idx0 = umoe_calloc(nk, sizeof(int32_t), "idx0");
        /* well separated logits: a random permutation of 0, 0.7, 1.4, ... per token */
        for (size_t n = 0; n < c.N; n++) {
            for (size_t e = 0; e < c.E; e++) c.logits[n * c.E + e] = 0.7f * (float)e - 1.5f;
            for (size_t e = c.E - 1; e > 0; e--) {
                size_t j = umoe_rng_u64(&rng) % (e + 1);
                float t = c.logits[n * c.E + e]; c.logits[n * c.E + e] = c.logits[n * c.E + j]; c.logits[n * c.E + j] = t;
            }
        }
        if (use_bias) for (size_t e = 0; e < c.E; e++) c.bias[e] = (e % 2) ? 0.05f : -0.03f;
        float *bias = use_bias ? c.bias : NULL;
        if (!use_bias) nc_free(c.bias, c.E);
        c.bias = bias;
        nc_fill(&rng, c.rw, nk, 1); nc_fill(&rng, c.rs, ne, 1);
        router_forward(c.scores, c.idx0, c.w, c.logits, c.bias, c.N, c.E, c.K, c.kind, c.norm, c.scale);
        float *dl = nc_alloc(ne);
        router_backward(dl, c.rw, c.rs, c.scores, c.idx0, c.w, c.N, c.E, c.K, c.kind, c.norm, c.scale);
        char what[64];
        snprintf(what, sizeof what, "router cfg %d (kind %d norm %d bias %d K %zu)", cfg, c.kind, c.norm, use_bias, c.K);
        nc_gradcheck(what, rt_loss, &c, c.logits, dl, ne, 1e-3f, 1e-2, 1e-3);
        CHECK(!c.flipped, "%s: selection changed under perturbation", what);
        /* accumulate: a second call (at the unperturbed point) doubles the gradient */
        float *d0 = nc_alloc(ne);
        memcpy(d0, dl, ne * sizeof(float));
        router_forward(c.scores, c.idx0, c.w, c.logits, c.bias, c.N, c.E, c.K, c.kind, c.norm, c.scale);
        router_backward(dl, c.rw, c.rs, c.scores, c.idx0, c.w, c.N, c.E, c.K, c.kind, c.norm, c.scale);
        for (size_t i = 0; i < ne; i++) CHECK_CLOSE(dl[i], 2 * d0[i], 1e-5, 1e-8, "doubled");
        /* the two paths separately (dw only, then dscores only) add up to the joint gradient */
        float *d1 = nc_alloc(ne);
        router_backward(d1, c.rw, NULL, c.scores, c.idx0, c.w, c.N, c.E, c.K, c.kind, c.norm, c.scale);
        router_backward(d1, NULL, c.rs, c.scores, c.idx0, c.w, c.N, c.E, c.K, c.kind, c.norm, c.scale);
        CHECK_REL(d1, d0, ne, 1e-5, "dw path + dscores path");
        nc_free(d1, ne);
        nc_free(d0, ne); nc_free(dl, ne);
        nc_free(c.logits, ne); nc_free(c.scores, ne); nc_free(c.rs, ne); nc_free(c.w, nk); nc_free(c.rw, nk);
        umoe_free(c.idx, nk * sizeof(int32_t)); umoe_free(c.idx0, nk * sizeof(int32_t));
        if (bias) nc_free(bias, c.E);
    }
}

int main(void) {
    RUN(test_router_select);
    RUN(test_router_gradcheck);
    TEST_MAIN_END();
}
