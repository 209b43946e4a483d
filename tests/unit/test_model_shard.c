/* test_model_shard.c - expert-sharded models (model_init_sharded): the flat block holds the dense tensors plus
 * n_local expert slots per MoE layer; held experts have the full model's numbers under their logical names; the
 * experts' math on a held expert equals the full model's; model_expert_rebind renames a slot. */
#include <math.h>
#include <string.h>
#include "test.h"
#include "umoe/model.h"
#include "model_test_spec.h"

/* floats of the routed experts of one MoE layer per expert: gate + up + down */
static size_t expert_floats(const spec_model *s) { return 3 * (size_t)s->F_expert * (size_t)s->C; }

static void test_sizes_and_values(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    umoe_model *full = NULL, *sh = NULL;
    CHECK(model_init(&full, &s, 2, 8, 7) == UMOE_OK, "%s", umoe_err);
    int n_moe = model_n_moe_layers(full), nl = 2;
    int32_t map[16];
    for (int l = 0; l < n_moe; l++) { map[l * nl] = 5; map[l * nl + 1] = 2; } /* non-contiguous, out of order */
    CHECK(model_init_sharded(&sh, &s, 2, 8, 7, nl, map) == UMOE_OK, "%s", umoe_err);
    if (!full || !sh) return;
    size_t ef = expert_floats(&s);
    size_t dense = model_n_params(full) - (size_t)n_moe * (size_t)s.E * ef;
    CHECK(model_n_params(sh) == dense + (size_t)n_moe * (size_t)nl * ef, "sharded %zu params, want dense %zu + %d x %d x %zu",
          model_n_params(sh), dense, n_moe, nl, ef);
    CHECK(model_n_local_experts(sh) == nl && model_n_local_experts(full) == s.E, "local slots");
    CHECK(model_expert_slot(sh, 0, 5) == 0 && model_expert_slot(sh, 0, 2) == 1 && model_expert_slot(sh, 0, 0) == -1,
          "slot map");
    int n;
    const model_tensor *t = model_tensors(sh, &n);
    int n_exp_tensors = 0, mism = 0;
    for (int i = 0; i < n; i++) {
        const model_tensor *f = model_tensor_find(full, t[i].name);
        if (!f || f->numel != t[i].numel || f->expert != t[i].expert) { mism++; continue; }
        n_exp_tensors += t[i].expert >= 0;
        if (memcmp(model_params(full) + f->offset, model_params(sh) + t[i].offset, f->numel * sizeof(float))) mism++;
    }
    CHECK(mism == 0, "%d tensors differ from the full model's", mism);
    CHECK(n_exp_tensors == 3 * nl * n_moe, "%d expert tensors, want %d", n_exp_tensors, 3 * nl * n_moe);
    CHECK(model_tensor_find(sh, "model.layers.1.mlp.experts.0.gate_proj.weight") == NULL, "expert 0 not held");

    /* expert 2 of the first MoE layer: same outputs and weight grads as in the full model */
    int layer = model_moe_layer_index(full, 0), rows = 3, C = s.C, Fe = s.F_expert;
    float in[3 * 32], gu[3 * 16], act[3 * 8], o1[3 * 32], o2[3 * 32], d[3 * 32], di1[3 * 32] = {0},
          di2[3 * 32] = {0}, dgu[3 * 16], dact[3 * 8];
    for (int i = 0; i < rows * C; i++) { in[i] = (float)sin(i * 0.37); d[i] = (float)cos(i * 0.11); }
    int32_t off[2] = {0, rows};
    model_zero_grad(full);
    model_zero_grad(sh);
    model_experts_forward(full, layer, 2, 1, off, in, gu, act, o1);
    model_experts_backward(full, layer, 2, 1, off, in, gu, act, d, di1, dgu, dact);
    model_experts_forward(sh, layer, 2, 1, off, in, gu, act, o2);
    model_experts_backward(sh, layer, 2, 1, off, in, gu, act, d, di2, dgu, dact);
    CHECK(memcmp(o1, o2, sizeof o1) == 0 && memcmp(di1, di2, sizeof di1) == 0, "expert 2 forward/backward differ");
    char name[96];
    snprintf(name, sizeof name, "model.layers.%d.mlp.experts.2.down_proj.weight", layer);
    const model_tensor *a = model_tensor_find(full, name), *b = model_tensor_find(sh, name);
    CHECK(a && b && memcmp(model_grads(full) + a->offset, model_grads(sh) + b->offset, a->numel * sizeof(float)) == 0,
          "expert 2 down_proj grads differ");
    (void)Fe;

    /* rebind slot 1 (expert 2) to expert 7: names and maps follow */
    model_expert_rebind(sh, 0, 1, 7);
    snprintf(name, sizeof name, "model.layers.%d.mlp.experts.7.up_proj.weight", layer);
    b = model_tensor_find(sh, name);
    CHECK(b && b->expert == 7, "rebound tensor %s", name);
    snprintf(name, sizeof name, "model.layers.%d.mlp.experts.2.up_proj.weight", layer);
    CHECK(model_tensor_find(sh, name) == NULL, "expert 2 gone after rebind");
    CHECK(model_expert_slot(sh, 0, 7) == 1 && model_expert_slot(sh, 0, 2) == -1 && model_slot_expert(sh, 0, 1) == 7,
          "maps after rebind");
    model_free(full);
    model_free(sh);
}

/* a full model through model_init_sharded (n_local = E, NULL map) is bit-identical to model_init */
static void test_unsharded_identical(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    umoe_model *a = NULL, *b = NULL;
    CHECK(model_init(&a, &s, 2, 8, 3) == UMOE_OK && model_init_sharded(&b, &s, 2, 8, 3, s.E, NULL) == UMOE_OK, "%s",
          umoe_err);
    if (!a || !b) return;
    CHECK(model_n_params(a) == model_n_params(b) &&
              memcmp(model_params(a), model_params(b), model_n_params(a) * sizeof(float)) == 0,
          "params differ");
    model_free(a);
    model_free(b);
}

static void test_bad_map(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    umoe_model *m = NULL;
    int32_t map[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK(model_init_sharded(&m, &s, 2, 8, 3, 2, map) != UMOE_OK && m == NULL, "expert held twice accepted");
    CHECK(strstr(umoe_err, "held twice") != NULL, "message: %s", umoe_err);
    CHECK(model_init_sharded(&m, &s, 2, 8, 3, 9, NULL) != UMOE_OK, "9 slots of 8 experts accepted");
}

int main(void) {
    (void)test_tokens;
    RUN(test_sizes_and_values);
    RUN(test_unsharded_identical);
    RUN(test_bad_map);
    TEST_MAIN_END();
}
