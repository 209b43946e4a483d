/* test_nn_attention.c - RoPE and causal attention (MHA, GQA, Hk = 1, MLA's Dk != Dv, T = 1): optimised vs
 * naive twins (several query blocks), finite-difference gradients, accumulate semantics, lse. */
#include "umoe/nn.h"
#include "nn_check.h"

/* ---- RoPE ---- */
typedef struct { float *out, *in, *r; size_t B, T, H, S, off, D; float theta; } rp_ctx;
static double rp_loss(void *p) {
    rp_ctx *c = p;
    rope_forward(c->out, c->in, c->B, c->T, c->H, c->S, c->off, c->D, c->theta);
    return nc_dot(c->out, c->r, c->B * c->T * c->H * c->S);
}

/* direct formula on one element; out-of-place copies the non-rotary columns; in place equals out of place;
 * gradient check (eps 1e-2, rtol 1e-2, atol 1e-3 x max) including the pass-through columns; backward in
 * place equals the accumulate form applied to zeros */
static void test_rope(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 30);
    rp_ctx c = {.B = 2, .T = 5, .H = 3, .S = 10, .off = 4, .D = 6, .theta = 10000.0f};
    size_t n = c.B * c.T * c.H * c.S;
    c.in = nc_alloc(n); c.out = nc_alloc(n); c.r = nc_alloc(n);
    nc_fill(&rng, c.in, n, 1); nc_fill(&rng, c.r, n, 1);
    rp_loss(&c);
    size_t b = 1, t = 3, h = 2, i = 1, row = ((b * c.T + t) * c.H + h) * c.S + c.off;
    double a = t * pow(10000.0, -2.0 * i / c.D);
    CHECK_CLOSE(c.out[row + i], c.in[row + i] * cos(a) - c.in[row + 3 + i] * sin(a), 1e-5, 1e-6, "out1");
    CHECK_CLOSE(c.out[row + 3 + i], c.in[row + 3 + i] * cos(a) + c.in[row + i] * sin(a), 1e-5, 1e-6, "out2");
    CHECK(c.out[row - 1] == c.in[row - 1] && c.out[row - c.off] == c.in[row - c.off], "pass-through copied");
    for (size_t j = 0; j < c.D; j++) CHECK(c.out[c.off + j] == c.in[c.off + j], "t = 0 is the identity");
    float *ip = nc_alloc(n);
    memcpy(ip, c.in, n * sizeof(float));
    rope_forward(ip, ip, c.B, c.T, c.H, c.S, c.off, c.D, c.theta);
    CHECK_REL(ip, c.out, n, 0, "in place == out of place");
    float *din = nc_alloc(n);
    rope_backward(din, c.r, c.B, c.T, c.H, c.S, c.off, c.D, c.theta);
    nc_gradcheck("rope din", rp_loss, &c, c.in, din, n, 1e-2f, 1e-2, 1e-3);
    memcpy(ip, c.r, n * sizeof(float));
    rope_backward(ip, ip, c.B, c.T, c.H, c.S, c.off, c.D, c.theta);
    CHECK_REL(ip, din, n, 0, "backward in place");
    float *d0 = nc_alloc(n);
    memcpy(d0, din, n * sizeof(float));
    rope_backward(din, c.r, c.B, c.T, c.H, c.S, c.off, c.D, c.theta);
    for (size_t k = 0; k < n; k++) CHECK_CLOSE(din[k], 2 * d0[k], 1e-6, 1e-8, "doubled");
    nc_free(d0, n); nc_free(din, n); nc_free(ip, n); nc_free(c.in, n); nc_free(c.out, n); nc_free(c.r, n);
}

/* ---- attention ---- */
typedef struct { float *q, *k, *v, *out, *lse, *r; size_t B, T, H, Hk, Dk, Dv; float scale; } at_ctx;
static size_t nq(at_ctx *c) { return c->B * c->T * c->H * c->Dk; }
static size_t nk(at_ctx *c) { return c->B * c->T * c->Hk * c->Dk; }
static size_t nv(at_ctx *c) { return c->B * c->T * c->Hk * c->Dv; }
static size_t no(at_ctx *c) { return c->B * c->T * c->H * c->Dv; }
static double at_loss(void *p) {
    at_ctx *c = p;
    attention_forward(c->out, c->lse, c->q, c->k, c->v, c->B, c->T, c->H, c->Hk, c->Dk, c->Dv, c->scale);
    return nc_dot(c->out, c->r, no(c));
}
static void at_init(at_ctx *c, uint64_t seed, float qscale) {
    umoe_rng rng; umoe_rng_seed(&rng, seed);
    c->scale = 1.0f / sqrtf((float)c->Dk);
    c->q = nc_alloc(nq(c)); c->k = nc_alloc(nk(c)); c->v = nc_alloc(nv(c)); c->out = nc_alloc(no(c));
    c->r = nc_alloc(no(c)); c->lse = nc_alloc(c->B * c->H * c->T);
    nc_fill(&rng, c->q, nq(c), qscale); nc_fill(&rng, c->k, nk(c), 1); nc_fill(&rng, c->v, nv(c), 1);
    nc_fill(&rng, c->r, no(c), 1);
}
static void at_free(at_ctx *c) {
    nc_free(c->q, nq(c)); nc_free(c->k, nk(c)); nc_free(c->v, nv(c)); nc_free(c->out, no(c)); nc_free(c->r, no(c));
    nc_free(c->lse, c->B * c->H * c->T);
}

/* forward and backward vs the naive twins, T = 300 and 150 (three and two query blocks of 128, the last partial), GQA 4:2 and
 * Hk = 1, Dk != Dv; tolerance 1e-5 (forward) and 1e-4 (backward) max-norm relative */
static void test_attention_vs_naive(void) {
    size_t shapes[3][6] = {{1, 300, 4, 2, 16, 8}, {1, 150, 3, 1, 8, 12}, {1, 70, 2, 2, 24, 16}};
    for (int s = 0; s < 3; s++) {
        at_ctx c = {.B = shapes[s][0], .T = shapes[s][1], .H = shapes[s][2], .Hk = shapes[s][3], .Dk = shapes[s][4],
                    .Dv = shapes[s][5]};
        at_init(&c, 40 + s, 3);
        float *o2 = nc_alloc(no(&c)), *l2 = nc_alloc(c.B * c.H * c.T);
        at_loss(&c);
        attention_forward_naive(o2, l2, c.q, c.k, c.v, c.B, c.T, c.H, c.Hk, c.Dk, c.Dv, c.scale);
        CHECK_REL(c.out, o2, no(&c), 1e-5, "out");
        CHECK_REL(c.lse, l2, c.B * c.H * c.T, 1e-5, "lse");
        float *dq = nc_alloc(nq(&c)), *dk = nc_alloc(nk(&c)), *dv = nc_alloc(nv(&c));
        float *dq2 = nc_alloc(nq(&c)), *dk2 = nc_alloc(nk(&c)), *dv2 = nc_alloc(nv(&c));
        attention_backward(dq, dk, dv, c.r, c.q, c.k, c.v, c.out, c.lse, c.B, c.T, c.H, c.Hk, c.Dk, c.Dv, c.scale);
        attention_backward_naive(dq2, dk2, dv2, c.r, c.q, c.k, c.v, c.out, c.lse, c.B, c.T, c.H, c.Hk, c.Dk, c.Dv,
                                 c.scale);
        CHECK_REL(dq, dq2, nq(&c), 1e-4, "dq");
        CHECK_REL(dk, dk2, nk(&c), 1e-4, "dk");
        CHECK_REL(dv, dv2, nv(&c), 1e-4, "dv");
        /* NULL d* buffers: the others are unchanged by their absence */
        float *dk3 = nc_alloc(nk(&c));
        attention_backward(NULL, dk3, NULL, c.r, c.q, c.k, c.v, c.out, c.lse, c.B, c.T, c.H, c.Hk, c.Dk, c.Dv, c.scale);
        CHECK_REL(dk3, dk, nk(&c), 1e-6, "dk alone");
        nc_free(dk3, nk(&c));
        nc_free(dq, nq(&c)); nc_free(dk, nk(&c)); nc_free(dv, nv(&c));
        nc_free(dq2, nq(&c)); nc_free(dk2, nk(&c)); nc_free(dv2, nv(&c));
        nc_free(o2, no(&c)); nc_free(l2, c.B * c.H * c.T);
        at_free(&c);
    }
}

/* central differences on q, k, v (eps 1e-2, rtol 1e-2, atol 1e-3 x max) for MHA, GQA, Hk = 1, MLA-like
 * Dk != Dv, and T = 1; then accumulate: a second backward doubles every gradient */
static void test_attention_gradcheck(void) {
    size_t shapes[5][6] = {{2, 5, 2, 2, 4, 4}, {1, 6, 4, 2, 4, 3}, {2, 4, 3, 1, 5, 2}, {1, 5, 2, 2, 6, 3},
                           {2, 1, 2, 1, 3, 3}};
    for (int s = 0; s < 5; s++) {
        at_ctx c = {.B = shapes[s][0], .T = shapes[s][1], .H = shapes[s][2], .Hk = shapes[s][3], .Dk = shapes[s][4],
                    .Dv = shapes[s][5]};
        at_init(&c, 50 + s, 2);
        at_loss(&c);
        float *dq = nc_alloc(nq(&c)), *dk = nc_alloc(nk(&c)), *dv = nc_alloc(nv(&c));
        attention_backward(dq, dk, dv, c.r, c.q, c.k, c.v, c.out, c.lse, c.B, c.T, c.H, c.Hk, c.Dk, c.Dv, c.scale);
        nc_gradcheck("dq", at_loss, &c, c.q, dq, nq(&c), 1e-2f, 1e-2, 1e-3);
        nc_gradcheck("dk", at_loss, &c, c.k, dk, nk(&c), 1e-2f, 1e-2, 1e-3);
        nc_gradcheck("dv", at_loss, &c, c.v, dv, nv(&c), 1e-2f, 1e-2, 1e-3);
        if (c.T == 1) { /* one key: out = v of the kv head, no gradient to q or k */
            for (size_t i = 0; i < nq(&c); i++) CHECK(fabs(dq[i]) < 1e-7, "T=1 dq not zero");
            for (size_t i = 0; i < nk(&c); i++) CHECK(fabs(dk[i]) < 1e-7, "T=1 dk not zero");
            CHECK_CLOSE(c.lse[0], c.scale * nc_dot(c.q, c.k, c.Dk), 1e-5, 1e-6, "T=1 lse = scaled score");
        }
        float *d0 = nc_alloc(nq(&c)), *k0 = nc_alloc(nk(&c));
        memcpy(d0, dq, nq(&c) * sizeof(float)); memcpy(k0, dk, nk(&c) * sizeof(float));
        at_loss(&c); /* out and lse of the unperturbed inputs again */
        attention_backward(dq, dk, NULL, c.r, c.q, c.k, c.v, c.out, c.lse, c.B, c.T, c.H, c.Hk, c.Dk, c.Dv, c.scale);
        for (size_t i = 0; i < nq(&c); i++) CHECK_CLOSE(dq[i], 2 * d0[i], 1e-5, 1e-7, "dq doubled");
        for (size_t i = 0; i < nk(&c); i++) CHECK_CLOSE(dk[i], 2 * k0[i], 1e-5, 1e-7, "dk doubled");
        nc_free(d0, nq(&c)); nc_free(k0, nk(&c));
        nc_free(dq, nq(&c)); nc_free(dk, nk(&c)); nc_free(dv, nv(&c));
        at_free(&c);
    }
}

/* huge scores do not overflow (two-pass softmax); output rows are convex combinations of v */
static void test_attention_stable(void) {
    at_ctx c = {.B = 1, .T = 9, .H = 2, .Hk = 1, .Dk = 4, .Dv = 3};
    at_init(&c, 60, 300);
    at_loss(&c);
    for (size_t i = 0; i < no(&c); i++) CHECK(isfinite(c.out[i]) && fabs(c.out[i]) <= 1.0f + 1e-5f, "out %zu", i);
    at_free(&c);
}

int main(void) {
    RUN(test_rope);
    RUN(test_attention_vs_naive);
    RUN(test_attention_gradcheck);
    RUN(test_attention_stable);
    TEST_MAIN_END();
}
