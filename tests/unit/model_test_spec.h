/* model_test_spec.h - small model specs built in code for the model unit tests (no JSON loader needed), and
 * a deterministic token batch. Tests only. */
#ifndef UMOE_MODEL_TEST_SPEC_H
#define UMOE_MODEL_TEST_SPEC_H
#include <string.h>
#include "umoe/common.h"
#include "umoe/spec.h"

/* V=64, C=32, L=3 (first dense), MLA (q_lora 16, kv_lora 16, nope 8, rope 4, v 8, H 4), E=8, K=2, 1 shared,
 * F=32, F_expert=8, MTP 1, T=16. */
static void test_spec_tiny(spec_model *s, spec_attn_kind attn, spec_norm_kind norm) {
    memset(s, 0, sizeof *s);
    umoe_strlcpy(s->name, "test-tiny", sizeof s->name);
    s->L = 3; s->C = 32; s->H = 4; s->H_kv = 2; s->head_dim = 8; s->attn = attn;
    s->q_lora = 16; s->kv_lora = 16; s->qk_nope = 8; s->qk_rope = 4; s->v_head = 8;
    s->ffn = SPEC_FFN_SWIGLU; s->F = 32; s->first_k_dense = 1;
    s->E = 8; s->E_shared = 1; s->K = 2; s->F_expert = 8; s->V = 64; s->mtp = 1; s->T = 16;
    s->norm = norm; s->norm_eps = 1e-5; s->rope_theta = 10000; s->score = SPEC_SCORE_SOFTMAX;
    s->norm_topk = 1; s->routed_scale = 1; s->aux_alpha = 0.01; s->aux_scope = SPEC_AUX_MICRO;
    s->z_loss = 1e-3; s->mtp_weight = 0.3;
}

/* tokens (B, T + 1 + mtp) uniform in [0, V) */
static void test_tokens(int32_t *tok, int B, int T, int mtp, int V, uint64_t seed) {
    umoe_rng r;
    umoe_rng_seed(&r, seed);
    for (int i = 0; i < B * (T + 1 + mtp); i++) tok[i] = (int32_t)(umoe_rng_u64(&r) % (uint64_t)V);
}
#endif
