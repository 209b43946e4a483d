/* test_model_grad.c - whole-model finite-difference check, independent of the PyTorch twin: for a handful of
 * tensors of every kind in three models (embedding, MLA/GQA/MHA projections, norms incl. DSSN post-norms, dense FFN, router,
 * a routed expert, shared expert, MTP eh_proj/enorm, final norm, head, tied head) the element with the largest
 * |analytic grad| is perturbed by +-h and the central difference of the total loss (lm + mtp + aux + z) is
 * compared with the analytic gradient: |fd - g| <= 3e-2 |g| + 3e-4 (float32 forward, h = 2e-3).
 * Router weights are scaled x8 first so that routing margins are decisive.
 * If the perturbation changes any top-k routing decision the loss is not differentiable there; that
 * element is skipped, and at least 80% of the checks must be usable. */
#include <math.h>
#include <string.h>
#include "model_test_spec.h"
#include "test.h"
#include "umoe/model.h"

enum { B = 2, T = 16 };

static int same_routing(umoe_model *m, const int32_t *ref, size_t per) {
    for (int i = 0; i < model_n_moe_layers(m); i++) {
        const int32_t *idx;
        const float *w;
        model_router_topk(m, i, &idx, &w);
        if (memcmp(idx, ref + (size_t)i * per, per * sizeof(int32_t)) != 0) return 0;
    }
    return 1;
}

static void check_model(const spec_model *s, const char *const *names, int n_names) {
    umoe_model *m;
    CHECK(model_init(&m, s, B, T, 42) == UMOE_OK, "model_init: %s", umoe_err);
    /* decisive routing: scale the router weights so that top-k margins exceed what +-h can move */
    int nt;
    const model_tensor *all = model_tensors(m, &nt);
    for (int i = 0; i < nt; i++)
        if (strstr(all[i].name, "mlp.gate.weight"))
            for (size_t j = 0; j < all[i].numel; j++) model_params(m)[all[i].offset + j] *= 8.0f;
    int32_t tok[B * (T + 1 + 4)];
    test_tokens(tok, B, T, s->mtp, s->V, 7);
    model_losses L;
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &L);
    size_t per = (size_t)B * T * (size_t)s->K, nm = (size_t)model_n_moe_layers(m);
    int32_t ref[8 * B * T * 4];
    UMOE_ASSERT(nm * per <= sizeof ref / sizeof *ref);
    for (size_t i = 0; i < nm; i++) {
        const int32_t *idx;
        const float *w;
        model_router_topk(m, (int)i, &idx, &w);
        memcpy(ref + i * per, idx, per * sizeof(int32_t));
    }
    int used = 0, skipped = 0;
    const float h = 2e-3f;
    for (int k = 0; k < n_names; k++) {
        const model_tensor *t = model_tensor_find(m, names[k]);
        CHECK(t != NULL, "no tensor %s", names[k]);
        if (!t) continue;
        const float *g = model_grads(m) + t->offset;
        size_t best = 0;
        for (size_t j = 1; j < t->numel; j++)
            if (fabsf(g[j]) > fabsf(g[best])) best = j;
        double ga = g[best];
        float *p = model_params(m) + t->offset + best, p0 = *p;
        model_losses Lp, Lm;
        *p = p0 + h;
        model_forward(m, tok, B, T, &Lp);
        int ok = same_routing(m, ref, per);
        *p = p0 - h;
        model_forward(m, tok, B, T, &Lm);
        ok = ok && same_routing(m, ref, per);
        *p = p0;
        if (!ok) {
            skipped++;
            fprintf(stderr, "  %s[%zu]: routing changed under +-h, skipped\n", names[k], best);
            continue;
        }
        used++;
        double fd = (Lp.loss - Lm.loss) / (2.0 * h);
        fprintf(stderr, "  %-55s g %+.6e fd %+.6e\n", names[k], ga, fd);
        CHECK(fabs(fd - ga) <= 3e-2 * fabs(ga) + 3e-4, "%s[%zu]: analytic %.6g, finite difference %.6g", names[k],
              best, ga, fd);
    }
    CHECK(used * 5 >= (used + skipped) * 4, "only %d of %d checks usable", used, used + skipped);
    model_free(m);
}

static void test_grad_mla_sandwich(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    s.score = SPEC_SCORE_SIGMOID;
    s.score_bias = 1;
    s.routed_scale = 2.5;
    s.aux_alpha = 0.1; /* large enough that its gradient path matters in the checks */
    s.z_loss = 1e-2;
    static const char *const names[] = {
        "model.embed_tokens.weight", "model.layers.0.self_attn.q_a_proj.weight",
        "model.layers.0.self_attn.q_a_layernorm.weight", "model.layers.0.self_attn.q_b_proj.weight",
        "model.layers.0.self_attn.kv_a_proj_with_mqa.weight", "model.layers.0.self_attn.kv_a_layernorm.weight",
        "model.layers.1.self_attn.kv_b_proj.weight", "model.layers.1.self_attn.o_proj.weight",
        "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.pre_feedforward_layernorm.weight", "model.layers.0.post_feedforward_layernorm.weight",
        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.down_proj.weight",
        "model.layers.1.mlp.gate.weight", "model.layers.2.mlp.experts.5.up_proj.weight",
        "model.layers.2.mlp.experts.1.down_proj.weight", "model.layers.1.mlp.shared_experts.gate_proj.weight",
        "model.layers.3.eh_proj.weight", "model.layers.3.enorm.weight", "model.layers.3.hnorm.weight",
        "model.layers.3.mlp.gate.weight", "model.layers.3.shared_head.norm.weight", "model.norm.weight",
        "lm_head.weight"};
    check_model(&s, names, (int)(sizeof names / sizeof *names));
}

static void test_grad_gqa_pre(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_GQA, SPEC_NORM_PRE);
    s.qkv_bias = 1;
    s.mtp = 2;
    s.norm_topk = 0;
    s.aux_alpha = 0.1;
    static const char *const names[] = {
        "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
        "model.layers.1.self_attn.v_proj.weight", "model.layers.1.self_attn.q_proj.bias",
        "model.layers.1.self_attn.k_proj.bias", "model.layers.2.self_attn.o_proj.weight",
        "model.layers.1.post_attention_layernorm.weight", "model.layers.2.mlp.gate.weight",
        "model.layers.2.mlp.experts.3.gate_proj.weight", "model.layers.4.eh_proj.weight",
        "model.layers.3.hnorm.weight", "lm_head.weight"};
    check_model(&s, names, (int)(sizeof names / sizeof *names));
}

/* a dense model (no experts), MHA, tied embedding/head, no MTP */
static void test_grad_dense_tied(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MHA, SPEC_NORM_PRE);
    s.H_kv = s.H;
    s.E = 0;
    s.K = 0;
    s.E_shared = 0;
    s.tied = 1;
    s.mtp = 0;
    static const char *const names[] = {
        "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
        "model.layers.2.self_attn.v_proj.weight", "model.layers.2.self_attn.o_proj.weight",
        "model.layers.1.mlp.up_proj.weight", "model.layers.2.mlp.down_proj.weight", "model.norm.weight"};
    check_model(&s, names, (int)(sizeof names / sizeof *names));
}

int main(void) {
    RUN(test_grad_mla_sandwich);
    RUN(test_grad_gqa_pre);
    RUN(test_grad_dense_tied);
    TEST_MAIN_END();
}
