/* test_model.c - the model's own contracts (the numerics are in test_model_reference.c / test_model_grad.c):
 * parameter layout and HF names, initialisation (TinyInit, DSSN gains, seeds), bad specs, the expert-parallel
 * hooks (a two-"rank" expert split gives the same result as local dispatch), the aux-loss count scope, the
 * score-bias sign update, experts with zero tokens, and calls smaller than the allocated batch. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "model_test_spec.h"
#include "test.h"
#include "umoe/model.h"

enum { B = 2, T = 16 };

/* parameter count from the formulas, written independently of the layout code */
static size_t expected_params(const spec_model *s) {
    size_t C = (size_t)s->C, n = 0;
    size_t Dk = (size_t)(s->qk_nope + s->qk_rope);
    size_t attn = s->attn == SPEC_ATTN_MLA
                      ? (size_t)s->q_lora * C + (size_t)s->q_lora + (size_t)s->H * Dk * (size_t)s->q_lora +
                            (size_t)(s->kv_lora + s->qk_rope) * C + (size_t)s->kv_lora +
                            (size_t)s->H * (size_t)(s->qk_nope + s->v_head) * (size_t)s->kv_lora +
                            C * (size_t)s->H * (size_t)s->v_head
                      : 2 * C * (size_t)s->H * (size_t)s->head_dim + 2 * C * (size_t)s->H_kv * (size_t)s->head_dim;
    size_t norms = s->norm == SPEC_NORM_SANDWICH ? 4 * C : 2 * C;
    size_t dense = 3 * C * (size_t)s->F;
    size_t moe = (size_t)s->E * C + (size_t)s->E * 3 * C * (size_t)s->F_expert +
                 (size_t)s->E_shared * 3 * C * (size_t)s->F_expert + (s->score_bias ? (size_t)s->E : 0);
    for (int l = 0; l < s->L + s->mtp; l++) {
        n += attn + norms + (l >= s->first_k_dense ? moe : dense);
        if (l >= s->L) n += 2 * C + 2 * C * C + C; /* enorm, hnorm, eh_proj, shared_head.norm */
    }
    return n + 2 * (size_t)s->V * C + C; /* embedding, head, final norm */
}

static void test_layout(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    s.score_bias = 1;
    umoe_model *m;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_OK, "%s", umoe_err);
    int n;
    const model_tensor *t = model_tensors(m, &n);
    CHECK(model_n_params(m) == expected_params(&s), "n_params %zu, expected %zu", model_n_params(m),
          expected_params(&s));
    spec_params sp;
    spec_params_count(&s, &sp);
    CHECK(sp.total + sp.mtp == (double)model_n_params(m), "spec counts %.0f, model %zu", sp.total + sp.mtp,
          model_n_params(m));
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        CHECK(t[i].offset == off, "%s: offset %zu, want %zu (contiguous, in table order)", t[i].name, t[i].offset, off);
        off += t[i].numel;
        CHECK(t[i].decay == (t[i].ndim >= 2), "%s: decay flag", t[i].name);
        for (int j = 0; j < i; j++) CHECK(strcmp(t[i].name, t[j].name) != 0, "duplicate name %s", t[i].name);
        const char *e = strstr(t[i].name, "mlp.experts.");
        int want_e = -1;
        if (e) want_e = atoi(e + strlen("mlp.experts."));
        CHECK(t[i].expert == want_e, "%s: expert %d, want %d", t[i].name, t[i].expert, want_e);
        CHECK(model_tensor_find(m, t[i].name) == &t[i], "find %s", t[i].name);
    }
    CHECK(off == model_n_params(m), "table covers %zu of %zu", off, model_n_params(m));
    static const char *const must[] = {
        "model.embed_tokens.weight", "model.layers.0.self_attn.q_a_proj.weight",
        "model.layers.0.self_attn.q_a_layernorm.weight", "model.layers.0.self_attn.q_b_proj.weight",
        "model.layers.0.self_attn.kv_a_proj_with_mqa.weight", "model.layers.0.self_attn.kv_a_layernorm.weight",
        "model.layers.0.self_attn.kv_b_proj.weight", "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.pre_feedforward_layernorm.weight", "model.layers.0.post_feedforward_layernorm.weight",
        "model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.gate.weight",
        "model.layers.1.mlp.gate.e_score_correction_bias", "model.layers.2.mlp.experts.7.down_proj.weight",
        "model.layers.2.mlp.shared_experts.up_proj.weight", "model.layers.3.eh_proj.weight",
        "model.layers.3.enorm.weight", "model.layers.3.hnorm.weight", "model.layers.3.shared_head.norm.weight",
        "model.layers.3.mlp.experts.0.gate_proj.weight", "model.norm.weight", "lm_head.weight"};
    for (size_t i = 0; i < sizeof must / sizeof *must; i++)
        CHECK(model_tensor_find(m, must[i]) != NULL, "missing %s", must[i]);
    const model_tensor *x = model_tensor_find(m, "model.layers.1.self_attn.kv_b_proj.weight");
    CHECK(x && x->shape[0] == 4 * 16 && x->shape[1] == 16 && x->layer == 1, "kv_b_proj shape (H*(nope+v), kv_lora)");
    CHECK(model_n_moe_layers(m) == 3 && model_moe_layer_index(m, 2) == 3, "MoE slots: layers 1, 2 and MTP 3");
    model_free(m);
    /* pre-norm GQA: Llama names, no sandwich norms */
    test_spec_tiny(&s, SPEC_ATTN_GQA, SPEC_NORM_PRE);
    s.mtp = 0;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_OK, "%s", umoe_err);
    CHECK(model_n_params(m) == expected_params(&s), "GQA n_params %zu, expected %zu", model_n_params(m),
          expected_params(&s));
    spec_params p;
    s.qkv_bias = 0;
    spec_params_count(&s, &p);
    CHECK(p.total + p.mtp == (double)model_n_params(m), "GQA: spec counts %.0f, model %zu", p.total + p.mtp,
          model_n_params(m));
    CHECK(model_tensor_find(m, "model.layers.0.self_attn.k_proj.weight") != NULL, "k_proj");
    CHECK(model_tensor_find(m, "model.layers.0.post_attention_layernorm.weight") != NULL, "pre-FFN norm name");
    CHECK(model_tensor_find(m, "model.layers.0.pre_feedforward_layernorm.weight") == NULL, "no sandwich norm");
    model_free(m);
}

static double tensor_std(const float *p, size_t n) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) { s += p[i]; s2 += (double)p[i] * p[i]; }
    return sqrt(s2 / n - (s / n) * (s / n));
}

static void test_init(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    s.C = 64;
    s.L = 4;
    umoe_model *m, *m2, *m3;
    CHECK(model_init(&m, &s, 1, 4, 5) == UMOE_OK, "%s", umoe_err);
    CHECK(model_init(&m2, &s, 1, 4, 5) == UMOE_OK, "%s", umoe_err);
    CHECK(model_init(&m3, &s, 1, 4, 6) == UMOE_OK, "%s", umoe_err);
    size_t np = model_n_params(m);
    CHECK(memcmp(model_params(m), model_params(m2), np * sizeof(float)) == 0, "same seed, same weights");
    CHECK(memcmp(model_params(m), model_params(m3), np * sizeof(float)) != 0, "other seed, other weights");
    const model_tensor *t = model_tensor_find(m, "lm_head.weight");
    double want = sqrt(1.0 / (2.0 * 64 * 4)); /* TinyInit */
    double got = tensor_std(model_params(m) + t->offset, t->numel);
    CHECK(fabs(got / want - 1) < 0.05, "TinyInit std %.5f, want %.5f", got, want);
    t = model_tensor_find(m, "model.embed_tokens.weight");
    got = tensor_std(model_params(m) + t->offset, t->numel);
    CHECK(fabs(got / 0.5 - 1) < 0.05, "embedding std %.4f, want 0.5", got);
    t = model_tensor_find(m, "model.layers.2.post_attention_layernorm.weight");
    CHECK_CLOSE(model_params(m)[t->offset], 0.283 / sqrt(4.0), 1e-6, 0, "DSSN attention post gain");
    t = model_tensor_find(m, "model.layers.2.post_feedforward_layernorm.weight");
    CHECK_CLOSE(model_params(m)[t->offset + 5], 0.432 / sqrt(4.0), 1e-6, 0, "DSSN FFN post gain");
    t = model_tensor_find(m, "model.layers.2.input_layernorm.weight");
    CHECK(model_params(m)[t->offset] == 1.0f, "pre-norm gains start at 1");
    model_free(m);
    model_free(m2);
    model_free(m3);
    s.init_std = 0.02;
    CHECK(model_init(&m, &s, 1, 4, 5) == UMOE_OK, "%s", umoe_err);
    t = model_tensor_find(m, "model.layers.1.mlp.experts.0.gate_proj.weight");
    got = tensor_std(model_params(m) + t->offset, t->numel);
    CHECK(fabs(got / 0.02 - 1) < 0.15, "init_std 0.02 gives %.4f", got);
    model_free(m);
}

static void test_bad_spec(void) {
    spec_model s;
    umoe_model *m = NULL;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    s.ffn = SPEC_FFN_GELU;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_EINPUT && m == NULL, "GELU refused");
    CHECK(strstr(umoe_err, "ffn") != NULL, "message names the field: %s", umoe_err);
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    s.K = 9;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_EINPUT, "K > E refused");
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    CHECK(model_init(&m, &s, B, 17, 1) == UMOE_EINPUT, "T beyond spec T refused");
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    s.qk_rope = 3;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_EINPUT, "odd rope dim refused");
}

/* ---- expert-parallel hooks: two pretend ranks, each owning half the experts with its own buffers ---- */
typedef struct {
    float *in[8][2], *gu[8][2], *act[8][2]; /* per MoE slot, per rank */
    size_t rows[8][2];
    int32_t off[8][2][9];
    int calls;
} split_ctx;

static void split_forward(void *ctx, umoe_model *m, int layer, int slot, const float *rows, const int32_t *counts,
                          const int32_t *offsets, size_t NK, float *out) {
    split_ctx *c = ctx;
    const spec_model *s = model_spec(m);
    int half = s->E / 2;
    size_t C = (size_t)s->C, F = (size_t)s->F_expert;
    for (int r = 0; r < 2; r++) {
        int e0 = r * half;
        size_t n = (size_t)(offsets[e0 + half] - offsets[e0]);
        c->rows[slot][r] = n;
        c->in[slot][r] = umoe_malloc(n * C * sizeof(float) + 4, "split in");
        c->gu[slot][r] = umoe_malloc(n * 2 * F * sizeof(float) + 4, "split gu");
        c->act[slot][r] = umoe_malloc(n * F * sizeof(float) + 4, "split act");
        float *o = umoe_malloc(n * C * sizeof(float) + 4, "split out");
        memcpy(c->in[slot][r], rows + (size_t)offsets[e0] * C, n * C * sizeof(float)); /* "send" */
        for (int j = 0; j <= half; j++) c->off[slot][r][j] = offsets[e0 + j] - offsets[e0];
        model_experts_forward(m, layer, e0, half, c->off[slot][r], c->in[slot][r], c->gu[slot][r], c->act[slot][r], o);
        memcpy(out + (size_t)offsets[e0] * C, o, n * C * sizeof(float)); /* "receive" */
        umoe_free(o, n * C * sizeof(float) + 4);
    }
    (void)counts;
    (void)NK;
    c->calls++;
}

static void split_backward(void *ctx, umoe_model *m, int layer, int slot, const float *dout, const int32_t *counts,
                           const int32_t *offsets, size_t NK, float *drows) {
    split_ctx *c = ctx;
    const spec_model *s = model_spec(m);
    int half = s->E / 2;
    size_t C = (size_t)s->C, F = (size_t)s->F_expert;
    for (int r = 0; r < 2; r++) {
        int e0 = r * half;
        size_t n = c->rows[slot][r];
        float *din = umoe_calloc(n * C + 1, sizeof(float), "split din");
        float *dgu = umoe_malloc(n * 2 * F * sizeof(float) + 4, "split dgu");
        float *dact = umoe_malloc(n * F * sizeof(float) + 4, "split dact");
        model_experts_backward(m, layer, e0, half, c->off[slot][r], c->in[slot][r], c->gu[slot][r], c->act[slot][r],
                               dout + (size_t)offsets[e0] * C, din, dgu, dact);
        for (size_t i = 0; i < n * C; i++) drows[(size_t)offsets[e0] * C + i] += din[i];
        umoe_free(din, (n * C + 1) * sizeof(float));
        umoe_free(dgu, n * 2 * F * sizeof(float) + 4);
        umoe_free(dact, n * F * sizeof(float) + 4);
        umoe_free(c->in[slot][r], n * C * sizeof(float) + 4);
        umoe_free(c->gu[slot][r], n * 2 * F * sizeof(float) + 4);
        umoe_free(c->act[slot][r], n * F * sizeof(float) + 4);
    }
    (void)counts;
    (void)NK;
}

static void test_moe_ops_split(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    umoe_model *m;
    CHECK(model_init(&m, &s, B, T, 3) == UMOE_OK, "%s", umoe_err);
    int32_t tok[B * (T + 2)];
    test_tokens(tok, B, T, s.mtp, s.V, 9);
    size_t np = model_n_params(m);
    model_losses L1, L2;
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &L1);
    float *g1 = umoe_malloc(np * sizeof(float), "grads copy");
    memcpy(g1, model_grads(m), np * sizeof(float));
    split_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    model_moe_ops ops = {&ctx, split_forward, split_backward, NULL};
    model_set_moe_ops(m, &ops);
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &L2);
    CHECK(ctx.calls == model_n_moe_layers(m), "hook called %d times for %d MoE layers", ctx.calls,
          model_n_moe_layers(m));
    CHECK(L1.loss == L2.loss, "loss with split experts %.9g vs local %.9g", L2.loss, L1.loss);
    size_t differ = 0;
    for (size_t i = 0; i < np; i++) differ += g1[i] != model_grads(m)[i];
    CHECK(differ == 0, "%zu grads differ between split and local expert execution", differ);
    model_set_moe_ops(m, NULL);
    umoe_free(g1, np * sizeof(float));
    model_free(m);
}

/* aux_reduce hook standing in for an all-reduce over two ranks that saw identical micro-batches */
static int g_reduce_calls;
static void reduce_twice(void *ctx, int slot, double *counts, double *psum, double *tokens) {
    const spec_model *s = ctx;
    for (int i = 0; i < s->E; i++) { counts[i] *= 2; psum[i] *= 2; }
    *tokens *= 2;
    g_reduce_calls++;
    (void)slot;
}

static void test_aux_scope(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    s.z_loss = 0;
    umoe_model *m;
    CHECK(model_init(&m, &s, B, T, 3) == UMOE_OK, "%s", umoe_err);
    int32_t tok[B * (T + 2)];
    test_tokens(tok, B, T, s.mtp, s.V, 9);
    model_losses L0, L1, L2;
    model_forward(m, tok, B, T, &L0);
    /* a perfectly balanced larger scope: f_i = 1 for all i, so L_aux = alpha * sum_i P_i = alpha per layer */
    int nm = model_n_moe_layers(m);
    double counts[3 * 8], tokens = 1000;
    for (int i = 0; i < nm * s.E; i++) counts[i] = tokens * s.K / s.E;
    model_set_aux_counts(m, counts, tokens);
    model_forward(m, tok, B, T, &L1);
    CHECK_CLOSE(L1.aux_loss, s.aux_alpha * nm, 1e-5, 0, "balanced scope gives alpha per MoE layer");
    model_set_aux_counts(m, NULL, 0);
    model_forward(m, tok, B, T, &L2);
    CHECK(L2.aux_loss == L0.aux_loss, "NULL restores the micro-batch scope");
    /* a group of two identical ranks has the same f_i and P_i, so the same loss */
    model_moe_ops ops = {&s, NULL, NULL, reduce_twice};
    model_set_moe_ops(m, &ops);
    g_reduce_calls = 0;
    model_forward(m, tok, B, T, &L2);
    CHECK(g_reduce_calls == nm, "aux_reduce called %d times for %d MoE layers", g_reduce_calls, nm);
    CHECK_CLOSE(L2.aux_loss, L0.aux_loss, 1e-12, 0, "aux loss over two identical ranks");
    model_set_moe_ops(m, NULL);
    model_free(m);
}

static void test_score_bias_and_zero_tokens(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    s.score = SPEC_SCORE_SIGMOID;
    s.score_bias = 1;
    umoe_model *m;
    CHECK(model_init(&m, &s, B, T, 4) == UMOE_OK, "%s", umoe_err);
    int n;
    const model_tensor *t = model_tensors(m, &n);
    /* expert 0 never selected: sigmoid scores lie in (0,1), a bias of -2 puts it below every other expert */
    for (int i = 0; i < n; i++)
        if (strstr(t[i].name, "e_score_correction_bias")) model_params(m)[t[i].offset] = -2.0f;
    int32_t tok[B * (T + 2)];
    test_tokens(tok, B, T, s.mtp, s.V, 11);
    model_losses L;
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &L);
    for (int l = 0; l < L.n_moe_layers; l++) CHECK(L.expert_load[l * s.E] == 0, "layer %d: expert 0 got tokens", l);
    size_t bad = 0;
    for (size_t i = 0; i < model_n_params(m); i++) bad += !isfinite(model_grads(m)[i]);
    CHECK(bad == 0 && isfinite(L.loss), "%zu non-finite grads", bad);
    for (int i = 0; i < n; i++) {
        if (t[i].expert != 0) continue;
        size_t nz = 0;
        for (size_t j = 0; j < t[i].numel; j++) nz += model_grads(m)[t[i].offset + j] != 0.0f;
        CHECK(nz == 0, "%s: %zu non-zero grads for an expert without tokens", t[i].name, nz);
    }
    /* sign update: b_i += gamma * sign(mean - load_i) */
    const model_tensor *b = model_tensor_find(m, "model.layers.1.mlp.gate.e_score_correction_bias");
    float before[8];
    memcpy(before, model_params(m) + b->offset, sizeof before);
    double load[3 * 8] = {0};
    for (int i = 0; i < 3 * 8; i++) load[i] = 4;
    load[0] = 0; /* under-loaded: +gamma */
    load[1] = 8; /* over-loaded: -gamma; the row [0, 8, 4, 4, 4, 4, 4, 4] keeps its mean at 4 */
    model_score_bias_update(m, load, 0.5f);
    const float *after = model_params(m) + b->offset;
    CHECK_CLOSE(after[0] - before[0], 0.5, 1e-6, 0, "under-loaded expert gains gamma");
    CHECK_CLOSE(after[1] - before[1], -0.5, 1e-6, 0, "over-loaded expert loses gamma");
    CHECK(after[2] == before[2], "expert at the mean is unchanged (%g -> %g)", before[2], after[2]);
    CHECK(after[3] == before[3], "expert at the mean is unchanged");
    model_free(m);
}

static void test_smaller_call(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_GQA, SPEC_NORM_PRE);
    umoe_model *big, *small;
    CHECK(model_init(&big, &s, B, T, 8) == UMOE_OK, "%s", umoe_err);
    CHECK(model_init(&small, &s, 1, 8, 8) == UMOE_OK, "%s", umoe_err);
    int32_t tok[B * (T + 2)];
    test_tokens(tok, B, T, s.mtp, s.V, 13);
    model_losses Lb, Ls;
    model_zero_grad(big);
    model_forward_backward(big, tok, B, T, 1.0f, &Lb); /* fill the big buffers first */
    test_tokens(tok, 1, 8, s.mtp, s.V, 12);
    model_zero_grad(big);
    model_zero_grad(small);
    model_forward_backward(big, tok, 1, 8, 1.0f, &Lb);
    model_forward_backward(small, tok, 1, 8, 1.0f, &Ls);
    CHECK(Lb.loss == Ls.loss, "B=1,T=8 in a B=2,T=16 model: %.9g vs %.9g", Lb.loss, Ls.loss);
    CHECK(memcmp(model_grads(big), model_grads(small), model_n_params(big) * sizeof(float)) == 0,
          "grads of a smaller call equal those of an exactly sized model");
    model_free(big);
    model_free(small);
}

/* the shipped preset loads, builds, and starts near the uniform loss ln(V) (TinyInit keeps logits small) */
static void test_tiny_preset(void) {
    spec_model s;
    CHECK(spec_model_load("tiny-moe", &s) == UMOE_OK, "%s", umoe_err);
    CHECK(s.V == 256 && s.attn == SPEC_ATTN_MLA && s.E >= 8 && s.E <= 16 && s.K == 2 && s.E_shared == 1 &&
              s.mtp == 1, "tiny-moe: byte vocab, MLA, 8-16 experts, top-2, 1 shared, MTP 1");
    umoe_model *m;
    CHECK(model_init(&m, &s, 1, 32, 1) == UMOE_OK, "%s", umoe_err);
    if (!m) return;
    spec_params p;
    spec_params_count(&s, &p); /* src/spec counts from the formulas; the model from its layout */
    CHECK(p.total + p.mtp == (double)model_n_params(m), "spec counts %.0f + %.0f MTP, model has %zu", p.total, p.mtp,
          model_n_params(m));
    int32_t tok[32 + 1 + 1];
    test_tokens(tok, 1, 32, s.mtp, s.V, 5);
    model_losses L;
    model_forward(m, tok, 1, 32, &L);
    CHECK(fabs(L.lm_loss - log(256.0)) < 0.5, "initial lm loss %.3f, ln V = %.3f", L.lm_loss, log(256.0));
    model_free(m);
}

int main(void) {
    RUN(test_layout);
    RUN(test_init);
    RUN(test_bad_spec);
    RUN(test_moe_ops_split);
    RUN(test_aux_scope);
    RUN(test_score_bias_and_zero_tokens);
    RUN(test_smaller_call);
    RUN(test_tiny_preset);
    TEST_MAIN_END();
}
