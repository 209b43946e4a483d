/* test_train_optim.c - global-norm clipping and the AdamW step over a tensor table: the returned norm is the
 * norm before clipping, clipped gradients have norm `clip` (Pascanu et al. 2013), small ones are untouched;
 * weight decay applies only to tensors marked decay; the aux-loss-free bias tensor is never touched by AdamW;
 * the first AdamW step moves every coordinate by lr (Adam's bias correction makes |mhat/sqrt(vhat)| = 1);
 * the fused step (clip scale inside the AdamW pass, gradients zeroed) equals clipping then stepping. */
#include <string.h>
#include "test.h"
#include "umoe/train.h"

static void test_clip(void) {
    float g[4] = {3, 4, 0, 0}; /* norm 5 */
    double n = train_clip_global_norm(g, 4, 10.0);
    CHECK_CLOSE(n, 5.0, 1e-12, 0, "norm");
    CHECK(g[0] == 3 && g[1] == 4, "below the threshold: untouched");
    n = train_clip_global_norm(g, 4, 1.0);
    CHECK_CLOSE(n, 5.0, 1e-12, 0, "the norm before clipping is returned");
    CHECK_CLOSE(sqrt((double)g[0] * g[0] + (double)g[1] * g[1]), 1.0, 1e-6, 0, "clipped to norm 1");
    CHECK_CLOSE(g[0] / g[1], 0.75, 1e-6, 0, "direction kept");
    float h[2] = {30, 40};
    n = train_clip_global_norm(h, 2, 0.0);
    CHECK(n == 50.0 && h[0] == 30 && h[1] == 40, "clip 0 = off");
}

static void test_adamw_table(void) {
    model_tensor t[3];
    memset(t, 0, sizeof t);
    snprintf(t[0].name, sizeof t[0].name, "model.layers.1.mlp.gate.weight");
    t[0].numel = 4; t[0].offset = 0; t[0].decay = 1; t[0].ndim = 2; t[0].shape[0] = 2; t[0].shape[1] = 2;
    snprintf(t[1].name, sizeof t[1].name, "model.norm.weight");
    t[1].numel = 2; t[1].offset = 4; t[1].decay = 0; t[1].ndim = 1; t[1].shape[0] = 2;
    snprintf(t[2].name, sizeof t[2].name, "model.layers.1.mlp.gate.e_score_correction_bias");
    t[2].numel = 2; t[2].offset = 6; t[2].decay = 0; t[2].ndim = 1; t[2].shape[0] = 2;
    float p[8] = {1, 1, 1, 1, 1, 1, 0.5f, -0.5f}, g[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    train_adamw o;
    train_adamw_init(&o, 8, 0.9, 0.95, 1e-8, 0.1);
    train_adamw_step(&o, p, g, t, 3, 0.01, 1);
    CHECK_CLOSE(p[0], 1 - 0.01 * 0.1, 1e-6, 0, "zero grad: the decay tensor shrinks by lr * wd * p");
    CHECK(p[4] == 1 && p[5] == 1, "a norm gain is not decayed (%g)", p[4]);
    CHECK(p[6] == 0.5f && p[7] == -0.5f, "the expert bias is left to the balancing rule");
    float q[8] = {1, 1, 1, 1, 1, 1, 0, 0}, gq[8] = {2, -3, 0.5f, 1e-3f, 7, -7, 5, 5};
    train_adamw o2;
    train_adamw_init(&o2, 8, 0.9, 0.95, 1e-8, 0.0);
    train_adamw_step(&o2, q, gq, t, 3, 0.01, 1);
    for (int i = 0; i < 6; i++)
        CHECK_CLOSE(q[i], 1 - 0.01 * (gq[i] > 0 ? 1 : -1), 1e-5, 0, "first step moves each coordinate by lr");
    CHECK(q[6] == 0 && q[7] == 0 && o2.m[6] == 0, "bias: no update even with a gradient");
    train_adamw_free(&o);
    train_adamw_free(&o2);
}

/* the fused step = clipping in place then train_adamw_step, bit for bit, and with zero_grads every gradient of
 * the table (the bias's included) is 0 afterwards */
static void test_adamw_fused(void) {
    model_tensor t[3];
    memset(t, 0, sizeof t);
    snprintf(t[0].name, sizeof t[0].name, "model.layers.1.mlp.gate.weight");
    t[0].numel = 4; t[0].offset = 0; t[0].decay = 1;
    snprintf(t[1].name, sizeof t[1].name, "model.layers.1.mlp.gate.e_score_correction_bias");
    t[1].numel = 2; t[1].offset = 4; t[1].decay = 0;
    snprintf(t[2].name, sizeof t[2].name, "model.norm.weight");
    t[2].numel = 3; t[2].offset = 6; t[2].decay = 0;
    float p0[9] = {1, -1, 0.5f, 2, 0.3f, -0.3f, 1, 1, 1}, p1[9], g0[9] = {3, -4, 0.5f, 1e-3f, 5, 5, 7, -2, 0.25f}, g1[9];
    memcpy(p1, p0, sizeof p0);
    memcpy(g1, g0, sizeof g0);
    train_adamw a, b;
    train_adamw_init(&a, 9, 0.9, 0.95, 1e-8, 0.1);
    train_adamw_init(&b, 9, 0.9, 0.95, 1e-8, 0.1);
    for (int step = 1; step <= 2; step++) {
        double na = train_clip_global_norm(g0, 9, 1.0);
        train_adamw_step(&a, p0, g0, t, 3, 0.01, step);
        double nb = train_grad_norm(g1, 9);
        float s = train_clip_scale(nb, 1.0);
        CHECK(na == nb, "the same norm");
        CHECK(s == (float)(1.0 / (nb + 1e-6)), "the clip's scale");
        train_adamw_step_fused(&b, p1, g1, t, 3, 0.01, step, s, 1);
        CHECK(!memcmp(p0, p1, sizeof p0) && !memcmp(a.m, b.m, 9 * sizeof(float)) &&
                  !memcmp(a.v, b.v, 9 * sizeof(float)), "step %d: fused = clip then step, bit for bit", step);
        for (int i = 0; i < 9; i++) CHECK(g1[i] == 0.0f, "gradient %d zeroed (%g)", i, g1[i]);
        for (int i = 0; i < 9; i++) g1[i] = g0[i] = (float)(i + step) * 0.5f - 2.0f; /* next step's gradients */
    }
    CHECK(train_clip_scale(0.5, 1.0) == 1.0f && train_clip_scale(5.0, 0.0) == 1.0f, "no clipping: scale 1");
    train_adamw_free(&a);
    train_adamw_free(&b);
}

int main(void) {
    RUN(test_clip);
    RUN(test_adamw_table);
    RUN(test_adamw_fused);
    TEST_MAIN_END();
}
