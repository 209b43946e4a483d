/* spec_flops.c - model FLOPs per token of the forward pass, by layer kind.
 * Convention: a multiply-add is 2 FLOPs; only matrix products are counted (norms, activations, softmax,
 * RoPE and residual adds are element-wise and left out, as in Narayanan et al. 2021, "Efficient
 * Large-Scale Language Model Training on GPU Clusters", Appendix / Sec. 5.1, whose dense formula this
 * reproduces exactly: per token forward = 24 L C^2 (1 + T/(6C) + V/(12 C L)) for GPT with F = 4C).
 * Attention core per token and layer: QK^T = 2 T H d_qk, PV = 2 T H d_v over the full T x T score matrix
 * (Megatron-LM convention); causal_half halves it (only the lower triangle is needed).
 * Backward = 2 x forward (dX and dW GEMMs); recompute FLOPs are the simulator's business.
 * Does not: count parameters (spec_params.c). */
#include "umoe/spec.h"

void spec_flops_count(const spec_model *m, int causal_half, spec_flops *f) {
    spec_params p;
    spec_params_count(m, &p);
    double C = m->C, H = m->H, T = m->T;
    /* projections = attention parameters minus norm weights and biases (bias adds are not multiply-adds) */
    double mla_norms = m->attn == SPEC_ATTN_MLA ? (double)m->q_lora + m->kv_lora : 0;
    double proj = p.attn_per_layer - mla_norms - p.ffn_norms_per_layer; /* branch norms = ffn_norms width */
    if (m->attn != SPEC_ATTN_MLA && m->qkv_bias) proj -= H * m->head_dim + 2.0 * m->H_kv * m->head_dim;
    double d_qk = m->attn == SPEC_ATTN_MLA ? m->qk_nope + m->qk_rope : m->head_dim;
    double d_v = m->attn == SPEC_ATTN_MLA ? m->v_head : m->head_dim;
    *f = (spec_flops){0};
    f->attn_proj = 2.0 * proj;
    f->attn_core = (2.0 * T * H * d_qk + 2.0 * T * H * d_v) * (causal_half ? 0.5 : 1.0);
    f->dense_ffn = 2.0 * p.dense_ffn_per_layer;
    if (m->E > 0) f->moe_ffn = 2.0 * (m->K + m->E_shared) * p.expert + 2.0 * C * m->E; /* experts + router */
    f->head = 2.0 * C * m->V;
    double attn = f->attn_proj + f->attn_core;
    /* MTP module: projection 2C -> C, one block, and a pass through the shared head (DeepSeek-V3 Sec. 2.2) */
    double block = attn + (m->E > 0 ? f->moe_ffn : f->dense_ffn);
    f->mtp = m->mtp * (2.0 * 2.0 * C * C + block + f->head);
    f->fwd_total = p.n_dense * (attn + f->dense_ffn) + p.n_moe * (attn + f->moe_ffn) + f->head + f->mtp;
}

double spec_flops_recompute(const spec_model *m, unsigned rc, int causal_half) {
    spec_flops f;
    spec_params p;
    spec_flops_count(m, causal_half, &f);
    spec_params_count(m, &p);
    double layers = m->L + m->mtp; /* MTP blocks are transformer layers too */
    double moe_layers = p.n_moe + (m->E > 0 ? m->mtp : 0);
    if (rc & SPEC_RC_FULL) return f.fwd_total - f.head * (1 + m->mtp) - m->mtp * 4.0 * m->C * m->C;
    double r = 0;
    if (rc & SPEC_RC_ATTN_CORE) r += layers * f.attn_core;
    if ((rc & SPEC_RC_MLA_UP) && m->attn == SPEC_ATTN_MLA) {
        double H = m->H, dqk = m->qk_nope + m->qk_rope;
        double up = (m->q_lora ? (double)m->q_lora * H * dqk : 0) + (double)m->kv_lora * H * (m->qk_nope + m->v_head);
        r += layers * 2.0 * up;
    }
    if ((rc & SPEC_RC_EXPERT_FC1) && m->E > 0) {
        double fc1 = (m->ffn == SPEC_FFN_SWIGLU ? 2.0 : 1.0) * m->C * m->F_expert; /* gate + up, or fc1 */
        r += moe_layers * 2.0 * (m->K + m->E_shared) * fc1;
    }
    return r;
}
