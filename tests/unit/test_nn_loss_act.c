/* test_nn_loss_act.c - cross-entropy (stability, ignored targets, gradients) and SwiGLU (gradients,
 * accumulate). */
#include "umoe/nn.h"
#include "nn_check.h"

typedef struct { float *loss, *logits; const int32_t *tgt; float *r; size_t N, V; } ce_ctx;
static double ce_loss(void *p) {
    ce_ctx *c = p;
    crossentropy_forward(c->loss, c->logits, c->tgt, c->N, c->V);
    return nc_dot(c->loss, c->r, c->N);
}

/* against a direct double evaluation; logits of 1e4 do not overflow; target -1 gives loss 0 */
static void test_crossentropy_forward(void) {
    float logits[3 * 4] = {1, 2, 3, 4, 10000, 10001, 9999, 10000, 0.5f, -1, 2, 0};
    int32_t tgt[3] = {2, 1, -1};
    float loss[3] = {9, 9, 9};
    crossentropy_forward(loss, logits, tgt, 3, 4);
    double s = exp(1) + exp(2) + exp(3) + exp(4);
    CHECK_CLOSE(loss[0], log(s) - 3, 1e-6, 0, "row 0");
    double s2 = exp(-1) + 1 + exp(-2) + exp(-1);
    CHECK_CLOSE(loss[1], log(s2), 1e-5, 1e-6, "row 1 (large logits)");
    CHECK(isfinite(loss[1]), "large logits overflow");
    CHECK(loss[2] == 0.0f, "ignored target has loss %g", loss[2]);
}

/* eps 1e-2, rtol 1e-2, atol 1e-3 x max; ignored rows get no gradient; accumulate doubles */
static void test_crossentropy_gradcheck(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 20);
    int32_t tgt[4] = {3, -1, 0, 6};
    ce_ctx c = {.N = 4, .V = 7, .tgt = tgt};
    size_t n = c.N * c.V;
    c.logits = nc_alloc(n); c.loss = nc_alloc(c.N); c.r = nc_alloc(c.N);
    nc_fill(&rng, c.logits, n, 3); nc_fill(&rng, c.r, c.N, 1);
    float *d = nc_alloc(n), *d0 = nc_alloc(n);
    crossentropy_backward(d, c.r, c.logits, tgt, c.N, c.V);
    nc_gradcheck("dlogits", ce_loss, &c, c.logits, d, n, 1e-2f, 1e-2, 1e-3);
    for (size_t v = 0; v < c.V; v++) CHECK(d[c.V + v] == 0.0f, "ignored row has gradient");
    for (size_t r = 0; r < c.N; r++) {
        double s = 0; for (size_t v = 0; v < c.V; v++) s += d[r * c.V + v];
        CHECK_CLOSE(s, 0.0, 0, 1e-6, "row gradient sums to 0");
    }
    memcpy(d0, d, n * sizeof(float));
    crossentropy_backward(d, c.r, c.logits, tgt, c.N, c.V);
    for (size_t i = 0; i < n; i++) CHECK_CLOSE(d[i], 2 * d0[i], 1e-6, 1e-8, "doubled");
    nc_free(d, n); nc_free(d0, n); nc_free(c.logits, n); nc_free(c.loss, c.N); nc_free(c.r, c.N);
}

typedef struct { float *out, *g, *u, *r; size_t n; } sw_ctx;
static double sw_loss(void *p) {
    sw_ctx *c = p;
    swiglu_forward(c->out, c->g, c->u, c->n);
    return nc_dot(c->out, c->r, c->n);
}

static void test_swiglu(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 21);
    sw_ctx c = {.n = 40};
    c.out = nc_alloc(c.n); c.g = nc_alloc(c.n); c.u = nc_alloc(c.n); c.r = nc_alloc(c.n);
    nc_fill(&rng, c.g, c.n, 4); nc_fill(&rng, c.u, c.n, 2); nc_fill(&rng, c.r, c.n, 1);
    sw_loss(&c);
    for (size_t i = 0; i < c.n; i++)
        CHECK_CLOSE(c.out[i], c.g[i] / (1 + exp(-(double)c.g[i])) * c.u[i], 1e-5, 1e-7, "forward");
    float *dg = nc_alloc(c.n), *du = nc_alloc(c.n), *dg0 = nc_alloc(c.n);
    swiglu_backward(dg, du, c.r, c.g, c.u, c.n);
    nc_gradcheck("dg", sw_loss, &c, c.g, dg, c.n, 1e-2f, 1e-2, 1e-3);
    nc_gradcheck("du", sw_loss, &c, c.u, du, c.n, 1e-2f, 1e-2, 1e-3);
    memcpy(dg0, dg, c.n * sizeof(float));
    swiglu_backward(dg, NULL, c.r, c.g, c.u, c.n);
    for (size_t i = 0; i < c.n; i++) CHECK_CLOSE(dg[i], 2 * dg0[i], 1e-6, 1e-8, "dg doubled");
    nc_free(dg, c.n); nc_free(du, c.n); nc_free(dg0, c.n);
    nc_free(c.out, c.n); nc_free(c.g, c.n); nc_free(c.u, c.n); nc_free(c.r, c.n);
}

/* the fused layout equals the split kernels row by row (bit-identical), forward and accumulating backward */
static void test_swiglu_fused(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 22);
    size_t N = 5, F = 9;
    float *gu = nc_alloc(N * 2 * F), *o1 = nc_alloc(N * F), *o2 = nc_alloc(N * F), *d = nc_alloc(N * F);
    float *dgu1 = nc_alloc(N * 2 * F), *dgu2 = nc_alloc(N * 2 * F);
    nc_fill(&rng, gu, N * 2 * F, 4); nc_fill(&rng, d, N * F, 1); nc_fill(&rng, dgu1, N * 2 * F, 1);
    memcpy(dgu2, dgu1, N * 2 * F * sizeof(float));
    swiglu_fused_forward(o1, gu, N, F);
    swiglu_fused_backward(dgu1, d, gu, N, F);
    for (size_t r = 0; r < N; r++) {
        swiglu_forward(o2 + r * F, gu + r * 2 * F, gu + r * 2 * F + F, F);
        swiglu_backward(dgu2 + r * 2 * F, dgu2 + r * 2 * F + F, d + r * F, gu + r * 2 * F, gu + r * 2 * F + F, F);
    }
    CHECK_REL(o1, o2, N * F, 1e-7, "fused forward");
    CHECK_REL(dgu1, dgu2, N * 2 * F, 1e-7, "fused backward");
    nc_free(gu, N * 2 * F); nc_free(o1, N * F); nc_free(o2, N * F); nc_free(d, N * F);
    nc_free(dgu1, N * 2 * F); nc_free(dgu2, N * 2 * F);
}

int main(void) {
    RUN(test_crossentropy_forward);
    RUN(test_crossentropy_gradcheck);
    RUN(test_swiglu);
    RUN(test_swiglu_fused);
    TEST_MAIN_END();
}
