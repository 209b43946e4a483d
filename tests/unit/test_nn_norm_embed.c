/* test_nn_norm_embed.c - rmsnorm and embedding: forward against a direct evaluation, finite-difference
 * gradients, accumulate semantics, repeated tokens, T = 1. */
#include "umoe/nn.h"
#include "nn_check.h"

typedef struct { float *out, *rstd, *in, *w, *r; size_t N, C; float eps; } rn_ctx;

static double rn_loss(void *p) {
    rn_ctx *c = p;
    rmsnorm_forward(c->out, c->rstd, c->in, c->w, c->N, c->C, c->eps);
    return nc_dot(c->out, c->r, c->N * c->C);
}

static void test_rmsnorm_forward(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 10);
    size_t N = 5, C = 12;
    float *in = nc_alloc(N * C), *w = nc_alloc(C), *o = nc_alloc(N * C), *rs = nc_alloc(N);
    nc_fill(&rng, in, N * C, 2); nc_fill(&rng, w, C, 1);
    rmsnorm_forward(o, rs, in, w, N, C, 1e-6f);
    for (size_t n = 0; n < N; n++) {
        double ss = 0; for (size_t c = 0; c < C; c++) ss += (double)in[n * C + c] * in[n * C + c];
        double r = 1.0 / sqrt(ss / C + 1e-6);
        CHECK_CLOSE(rs[n], r, 1e-6, 0, "rstd");
        for (size_t c = 0; c < C; c++) CHECK_CLOSE(o[n * C + c], in[n * C + c] * r * w[c], 1e-5, 1e-7, "out");
    }
    nc_free(in, N * C); nc_free(w, C); nc_free(o, N * C); nc_free(rs, N);
}

/* eps 1e-2 (central differences), rtol 1e-2, atol 1e-3 x max gradient; also T = 1 (N = 1) */
static void test_rmsnorm_gradcheck(void) {
    for (size_t N = 1; N <= 4; N += 3) {
        umoe_rng rng; umoe_rng_seed(&rng, 11 + N);
        rn_ctx c = {.N = N, .C = 7, .eps = 1e-5f};
        size_t n = c.N * c.C;
        c.in = nc_alloc(n); c.w = nc_alloc(c.C); c.out = nc_alloc(n); c.rstd = nc_alloc(c.N); c.r = nc_alloc(n);
        nc_fill(&rng, c.in, n, 1); nc_fill(&rng, c.w, c.C, 1); nc_fill(&rng, c.r, n, 1);
        float *di = nc_alloc(n), *dw = nc_alloc(c.C);
        rn_loss(&c);
        rmsnorm_backward(di, dw, c.r, c.in, c.w, c.rstd, c.N, c.C);
        nc_gradcheck("rmsnorm din", rn_loss, &c, c.in, di, n, 1e-2f, 1e-2, 1e-3);
        nc_gradcheck("rmsnorm dw", rn_loss, &c, c.w, dw, c.C, 1e-2f, 1e-2, 1e-3);
        float *di0 = nc_alloc(n), *dw0 = nc_alloc(c.C);
        memcpy(di0, di, n * sizeof(float)); memcpy(dw0, dw, c.C * sizeof(float));
        rn_loss(&c);
        rmsnorm_backward(di, dw, c.r, c.in, c.w, c.rstd, c.N, c.C);
        for (size_t i = 0; i < n; i++) CHECK_CLOSE(di[i], 2 * di0[i], 1e-6, 1e-7, "din doubled");
        for (size_t i = 0; i < c.C; i++) CHECK_CLOSE(dw[i], 2 * dw0[i], 1e-6, 1e-7, "dw doubled");
        rmsnorm_backward(NULL, NULL, c.r, c.in, c.w, c.rstd, c.N, c.C); /* nothing needed: no crash */
        nc_free(di0, n); nc_free(dw0, c.C); nc_free(di, n); nc_free(dw, c.C);
        nc_free(c.in, n); nc_free(c.w, c.C); nc_free(c.out, n); nc_free(c.rstd, c.N); nc_free(c.r, n);
    }
}

/* lookup copies rows; backward adds each row's gradient to its token, repeated tokens add up */
static void test_embedding(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 12);
    size_t V = 6, C = 5, N = 7;
    int32_t tok[7] = {3, 0, 3, 5, 3, 1, 0};
    float *wte = nc_alloc(V * C), *o = nc_alloc(N * C), *d = nc_alloc(N * C), *dw = nc_alloc(V * C);
    nc_fill(&rng, wte, V * C, 1); nc_fill(&rng, d, N * C, 1);
    embedding_forward(o, tok, wte, N, C);
    for (size_t n = 0; n < N; n++)
        for (size_t c = 0; c < C; c++) CHECK(o[n * C + c] == wte[tok[n] * C + c], "row %zu", n);
    for (int rep = 1; rep <= 2; rep++) {
        embedding_backward(dw, d, tok, N, C);
        for (size_t v = 0; v < V; v++)
            for (size_t c = 0; c < C; c++) {
                double s = 0; for (size_t n = 0; n < N; n++) if ((size_t)tok[n] == v) s += d[n * C + c];
                CHECK_CLOSE(dw[v * C + c], rep * s, 1e-6, 1e-7, "dwte");
            }
    }
    CHECK(dw[2 * C] == 0.0f && dw[4 * C] == 0.0f, "unused tokens got gradient");
    nc_free(wte, V * C); nc_free(o, N * C); nc_free(d, N * C); nc_free(dw, V * C);
}

int main(void) {
    RUN(test_rmsnorm_forward);
    RUN(test_rmsnorm_gradcheck);
    RUN(test_embedding);
    TEST_MAIN_END();
}
