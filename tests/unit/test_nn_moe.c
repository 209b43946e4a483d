/* test_nn_moe.c - dispatch bookkeeping: moe_group (counting sort, stable, experts with zero tokens, K = E),
 * permute/unpermute (exact values, finite-difference gradients, accumulate), and a whole grouped expert
 * layer (one matmul per expert on its contiguous rows) against a per-token reference, forward and backward. */
#include "umoe/nn.h"
#include "nn_check.h"
#ifdef UMOE_OPENMP
#include <omp.h>
#endif

static void test_moe_group(void) {
    /* N = 4 tokens, K = 2, E = 5: expert 1 and 3 get nothing */
    int32_t idx[8] = {4, 0, 2, 4, 0, 2, 4, 0};
    int32_t counts[5], offsets[6], order[8];
    moe_group(counts, offsets, order, idx, 4, 2, 5);
    int32_t want_c[5] = {3, 0, 2, 0, 3}, want_o[6] = {0, 3, 3, 5, 5, 8}, want_ord[8] = {1, 4, 7, 2, 5, 0, 3, 6};
    for (int e = 0; e < 5; e++) CHECK(counts[e] == want_c[e], "count[%d] = %d", e, counts[e]);
    for (int e = 0; e < 6; e++) CHECK(offsets[e] == want_o[e], "offsets[%d] = %d", e, offsets[e]);
    for (int r = 0; r < 8; r++) CHECK(order[r] == want_ord[r], "order[%d] = %d (stable)", r, order[r]);
    /* K = E: every expert once per token, rows of expert e are the tokens in order */
    int32_t idx2[9] = {2, 0, 1, 0, 1, 2, 1, 2, 0};
    int32_t c2[3], o2[4], ord2[9];
    moe_group(c2, o2, ord2, idx2, 3, 3, 3);
    for (int e = 0; e < 3; e++) {
        CHECK(c2[e] == 3, "K=E count");
        for (int r = o2[e]; r < o2[e + 1]; r++) CHECK(idx2[ord2[r]] == e && ord2[r] / 3 == r - o2[e], "K=E rows");
    }
    moe_group(c2, o2, ord2, idx2, 0, 3, 3); /* no tokens */
    CHECK(c2[0] == 0 && o2[3] == 0, "N=0");
}

typedef struct { float *x, *rows, *w, *out, *r; int32_t *order; size_t N, K, C; } pm_ctx;
static double pm_loss(void *p) { /* out = unpermute(expert(permute(x)), w) with expert = elementwise square */
    pm_ctx *c = p;
    size_t NK = c->N * c->K;
    moe_permute_forward(c->rows, c->x, c->order, NK, c->K, c->C);
    for (size_t i = 0; i < NK * c->C; i++) c->rows[i] *= c->rows[i];
    memset(c->out, 0, c->N * c->C * sizeof(float));
    moe_unpermute_forward(c->out, c->rows, c->w, c->order, NK, c->K, c->C);
    return nc_dot(c->out, c->r, c->N * c->C);
}

/* values of permute/unpermute, then gradients of x and w through permute -> square -> unpermute
 * (eps 1e-2, rtol 1e-2, atol 1e-3 x max), accumulate semantics and out += */
static void test_moe_permute(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 80);
    pm_ctx c = {.N = 5, .K = 2, .C = 3};
    size_t NK = c.N * c.K, E = 4;
    int32_t idx[10] = {3, 0, 0, 3, 3, 1, 1, 0, 3, 0}, counts[4], offsets[5];
    c.order = umoe_malloc(NK * sizeof(int32_t), "order");
    moe_group(counts, offsets, c.order, idx, c.N, c.K, E);
    c.x = nc_alloc(c.N * c.C); c.rows = nc_alloc(NK * c.C); c.w = nc_alloc(NK); c.out = nc_alloc(c.N * c.C);
    c.r = nc_alloc(c.N * c.C);
    nc_fill(&rng, c.x, c.N * c.C, 1); nc_fill(&rng, c.w, NK, 1); nc_fill(&rng, c.r, c.N * c.C, 1);
    moe_permute_forward(c.rows, c.x, c.order, NK, c.K, c.C);
    for (size_t r = 0; r < NK; r++)
        for (size_t k = 0; k < c.C; k++) CHECK(c.rows[r * c.C + k] == c.x[(c.order[r] / 2) * c.C + k], "permute");
    CHECK(counts[2] == 0 && offsets[2] == offsets[3], "expert 2 has no rows");
    pm_loss(&c);
    for (size_t n = 0; n < c.N; n++)
        for (size_t k = 0; k < c.C; k++) {
            double xv = c.x[n * c.C + k], want = (c.w[2 * n] + c.w[2 * n + 1]) * xv * xv;
            CHECK_CLOSE(c.out[n * c.C + k], want, 1e-5, 1e-7, "unpermute");
        }
    /* analytic: dout = r -> unpermute backward -> d(square) -> permute backward */
    float *drows = nc_alloc(NK * c.C), *dw = nc_alloc(NK), *dx = nc_alloc(c.N * c.C), *sq = nc_alloc(NK * c.C);
    moe_permute_forward(sq, c.x, c.order, NK, c.K, c.C); /* pre-square rows */
    moe_unpermute_backward(drows, dw, c.r, c.rows, c.w, c.order, NK, c.K, c.C);
    for (size_t i = 0; i < NK * c.C; i++) drows[i] *= 2 * sq[i];
    moe_permute_backward(dx, drows, c.order, NK, c.K, c.C);
    nc_gradcheck("moe dx", pm_loss, &c, c.x, dx, c.N * c.C, 1e-2f, 1e-2, 1e-3);
    nc_gradcheck("moe dw", pm_loss, &c, c.w, dw, NK, 1e-2f, 1e-2, 1e-3);
    /* accumulate: second calls double; unpermute forward adds into out */
    pm_loss(&c);
    float *dw0 = nc_alloc(NK), *dx0 = nc_alloc(c.N * c.C), *o0 = nc_alloc(c.N * c.C);
    memcpy(dw0, dw, NK * sizeof(float)); memcpy(dx0, dx, c.N * c.C * sizeof(float));
    memcpy(o0, c.out, c.N * c.C * sizeof(float));
    moe_unpermute_backward(NULL, dw, c.r, c.rows, c.w, c.order, NK, c.K, c.C);
    moe_permute_backward(dx, drows, c.order, NK, c.K, c.C);
    moe_unpermute_forward(c.out, c.rows, c.w, c.order, NK, c.K, c.C);
    for (size_t i = 0; i < NK; i++) CHECK_CLOSE(dw[i], 2 * dw0[i], 1e-6, 1e-8, "dw doubled");
    for (size_t i = 0; i < c.N * c.C; i++) CHECK_CLOSE(dx[i], 2 * dx0[i], 1e-6, 1e-8, "dx doubled");
    for (size_t i = 0; i < c.N * c.C; i++) CHECK_CLOSE(c.out[i], 2 * o0[i], 1e-6, 1e-8, "out accumulates");
    nc_free(dw0, NK); nc_free(dx0, c.N * c.C); nc_free(o0, c.N * c.C);
    nc_free(drows, NK * c.C); nc_free(dw, NK); nc_free(dx, c.N * c.C); nc_free(sq, NK * c.C);
    nc_free(c.x, c.N * c.C); nc_free(c.rows, NK * c.C); nc_free(c.w, NK); nc_free(c.out, c.N * c.C);
    nc_free(c.r, c.N * c.C); umoe_free(c.order, NK * sizeof(int32_t));
}

/* A routed linear expert layer, y_n = sum_j w_nj W_{e_nj} x_n, computed the engine's way (group, permute,
 * one matmul per expert on its row range, unpermute) against a per-token loop; 8 experts, 6 tokens, top-2,
 * so several experts get zero tokens: their weight gradients must be exactly zero. Tolerance 1e-5. */
static void test_moe_grouped_layer(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 81);
    size_t N = 6, K = 2, E = 8, C = 5, O = 4, NK = N * K;
    float *x = nc_alloc(N * C), *W = nc_alloc(E * O * C), *logits = nc_alloc(N * E), *scores = nc_alloc(N * E);
    float *w = nc_alloc(NK), *rows = nc_alloc(NK * C), *h = nc_alloc(NK * O), *y = nc_alloc(N * O),
          *yref = nc_alloc(N * O);
    int32_t *idx = umoe_malloc(NK * sizeof(int32_t), "idx"), counts[8], offsets[9];
    int32_t *order = umoe_malloc(NK * sizeof(int32_t), "order");
    nc_fill(&rng, x, N * C, 1); nc_fill(&rng, W, E * O * C, 1); nc_fill(&rng, logits, N * E, 2);
    for (size_t n = 0; n < N; n++) logits[n * E + 5] = logits[n * E + 6] = logits[n * E + 7] = -20.0f;
    router_forward(scores, idx, w, logits, NULL, N, E, K, NN_SCORE_SOFTMAX, 1, 1.0f);
    moe_group(counts, offsets, order, idx, N, K, E);
    CHECK(counts[5] == 0 && counts[6] == 0 && counts[7] == 0, "experts 5-7 should be empty");
    moe_permute_forward(rows, x, order, NK, K, C);
    for (size_t e = 0; e < E; e++)
        matmul_forward(h + (size_t)offsets[e] * O, rows + (size_t)offsets[e] * C, W + e * O * C, NULL,
                       (size_t)counts[e], C, O);
    moe_unpermute_forward(y, h, w, order, NK, K, O);
    for (size_t n = 0; n < N; n++)
        for (size_t j = 0; j < K; j++) {
            size_t e = (size_t)idx[n * K + j];
            for (size_t o = 0; o < O; o++) {
                float s = 0;
                for (size_t c = 0; c < C; c++) s += W[(e * O + o) * C + c] * x[n * C + c];
                yref[n * O + o] += w[n * K + j] * s;
            }
        }
    CHECK_REL(y, yref, N * O, 1e-5, "grouped forward");
    /* backward: dW of each expert from its rows; reference per token */
    float *dy = nc_alloc(N * O), *dh = nc_alloc(NK * O), *dW = nc_alloc(E * O * C), *dWref = nc_alloc(E * O * C);
    float *drows = nc_alloc(NK * C), *dx = nc_alloc(N * C), *dxref = nc_alloc(N * C);
    nc_fill(&rng, dy, N * O, 1);
    moe_unpermute_backward(dh, NULL, dy, h, w, order, NK, K, O);
    for (size_t e = 0; e < E; e++)
        matmul_backward(drows + (size_t)offsets[e] * C, dW + e * O * C, NULL, dh + (size_t)offsets[e] * O,
                        rows + (size_t)offsets[e] * C, W + e * O * C, (size_t)counts[e], C, O);
    moe_permute_backward(dx, drows, order, NK, K, C);
    for (size_t n = 0; n < N; n++)
        for (size_t j = 0; j < K; j++) {
            size_t e = (size_t)idx[n * K + j];
            for (size_t o = 0; o < O; o++)
                for (size_t c = 0; c < C; c++) {
                    float g = w[n * K + j] * dy[n * O + o];
                    dWref[(e * O + o) * C + c] += g * x[n * C + c];
                    dxref[n * C + c] += g * W[(e * O + o) * C + c];
                }
        }
    CHECK_REL(dW, dWref, E * O * C, 1e-5, "grouped dW");
    CHECK_REL(dx, dxref, N * C, 1e-5, "grouped dx");
    for (size_t i = 5 * O * C; i < E * O * C; i++) CHECK(dW[i] == 0.0f, "empty expert got gradient");
    nc_free(dy, N * O); nc_free(dh, NK * O); nc_free(dW, E * O * C); nc_free(dWref, E * O * C);
    nc_free(drows, NK * C); nc_free(dx, N * C); nc_free(dxref, N * C);
    nc_free(x, N * C); nc_free(W, E * O * C); nc_free(logits, N * E); nc_free(scores, N * E); nc_free(w, NK);
    nc_free(rows, NK * C); nc_free(h, NK * O); nc_free(y, N * O); nc_free(yref, N * O);
    umoe_free(idx, NK * sizeof(int32_t)); umoe_free(order, NK * sizeof(int32_t));
}

/* moe_matmul (experts in parallel when E >= threads) equals one matmul per expert row range, forward and
 * backward (accumulating), for 1 and 2 threads (1e-6); an expert stride larger than O*C (weights
 * interleaved with other tensors) is honoured; empty experts get no gradient. */
static void test_moe_matmul(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 82);
    size_t E = 5, C = 6, O = 7, ws = O * C + 3;
    int32_t offsets[6] = {0, 4, 4, 9, 10, 10}; /* experts 1 and 4 empty */
    size_t NK = 10;
    float *in = nc_alloc(NK * C), *w = nc_alloc(E * ws), *d = nc_alloc(NK * O);
    float *o1 = nc_alloc(NK * O), *o2 = nc_alloc(NK * O), *di1 = nc_alloc(NK * C), *di2 = nc_alloc(NK * C);
    float *dw1 = nc_alloc(E * ws), *dw2 = nc_alloc(E * ws);
    nc_fill(&rng, in, NK * C, 1); nc_fill(&rng, w, E * ws, 1); nc_fill(&rng, d, NK * O, 1);
    for (size_t e = 0; e < E; e++) {
        size_t r0 = (size_t)offsets[e], n = (size_t)(offsets[e + 1] - offsets[e]);
        matmul_forward(o2 + r0 * O, in + r0 * C, w + e * ws, NULL, n, C, O);
        matmul_backward(di2 + r0 * C, dw2 + e * ws, NULL, d + r0 * O, in + r0 * C, w + e * ws, n, C, O);
    }
    for (int threads = 1; threads <= 2; threads++) {
#ifdef UMOE_OPENMP
        int saved = omp_get_max_threads();
        omp_set_num_threads(threads);
#endif
        memset(di1, 0, NK * C * sizeof(float)); memset(dw1, 0, E * ws * sizeof(float));
        moe_matmul_forward(o1, in, w, ws, offsets, E, C, O);
        moe_matmul_backward(di1, dw1, d, in, w, ws, offsets, E, C, O);
#ifdef UMOE_OPENMP
        omp_set_num_threads(saved);
#endif
        CHECK_REL(o1, o2, NK * O, 1e-6, "forward");
        CHECK_REL(di1, di2, NK * C, 1e-6, "din");
        CHECK_REL(dw1, dw2, E * ws, 1e-6, "dw");
    }
    for (size_t i = 0; i < ws; i++) CHECK(dw1[1 * ws + i] == 0.0f && dw1[4 * ws + i] == 0.0f, "empty expert dw");
    moe_matmul_backward(di1, NULL, d, in, w, ws, offsets, E, C, O); /* accumulate, dw not needed */
    for (size_t i = 0; i < NK * C; i++) CHECK_CLOSE(di1[i], 2 * di2[i], 1e-6, 1e-7, "din doubled");
    nc_free(in, NK * C); nc_free(w, E * ws); nc_free(d, NK * O); nc_free(o1, NK * O); nc_free(o2, NK * O);
    nc_free(di1, NK * C); nc_free(di2, NK * C); nc_free(dw1, E * ws); nc_free(dw2, E * ws);
}

int main(void) {
    RUN(test_moe_group);
    RUN(test_moe_permute);
    RUN(test_moe_grouped_layer);
    RUN(test_moe_matmul);
    TEST_MAIN_END();
}
