/* spec_params.c - exact parameter counts of a model, by layer kind (docs/formats.md, "Parameter counts").
 * Weight matrices are counted as in_features x out_features; RMSNorm has one weight vector of its width.
 * Convention: "total" counts every parameter of the main model (embedding and head included). "active"
 * counts the parameters of the matrix products a token goes through: attention, dense FFNs, routers, the K
 * routed + all shared experts of every MoE layer, norms, the LM head, but not the embedding table (a row
 * lookup). This reproduces the published activated counts of DeepSeek-V2 (21B: ours 20.9B), DeepSeek-V3
 * (37B: 36.6B) and Pangu Ultra MoE (39B: 39.2B); counting the embedding too gives 21.4B, 37.6B and 40.4B
 * (DeepSeek-V2-Lite: 2.4B published, 2.45B ours, 2.66B with the embedding). Mistral counts the embedding
 * (Mixtral 8x7B: 12.9B), so active_with_embed is reported as well. MTP modules are reported separately and
 * excluded from both total and active.
 * Does not: count FLOPs (spec_flops.c) or bytes (the simulator's memory model). */
#include "umoe/spec.h"

/* Attention projections only (no norms), as a count of weights + biases. */
static double attn_proj_params(const spec_model *m, int with_bias) {
    double C = m->C, H = m->H;
    if (m->attn == SPEC_ATTN_MLA) {
        /* DeepSeek-V2 (arXiv 2405.04434) Sec. 2.1.2-2.1.3, Eqs. 9-10, 12-14, 37-38:
         * q: C -> q_lora (W^DQ) -> H*(nope+rope) (W^UQ, W^QR); kv: C -> kv_lora + rope (W^DKV, W^KR),
         * kv_lora -> H*(nope+v) (W^UK, W^UV); out: H*v -> C (W^O). */
        double dqk = m->qk_nope + m->qk_rope;
        double q = m->q_lora ? C * m->q_lora + (double)m->q_lora * H * dqk : C * H * dqk;
        double kv = C * (m->kv_lora + m->qk_rope) + (double)m->kv_lora * H * (m->qk_nope + m->v_head);
        double o = H * m->v_head * C;
        return q + kv + o;
    }
    double hd = m->head_dim, Hkv = m->H_kv;
    double w = C * H * hd + 2.0 * C * Hkv * hd + H * hd * C; /* q, k, v, o */
    if (with_bias && m->qkv_bias) w += H * hd + 2.0 * Hkv * hd;
    return w;
}

static double ffn_params(const spec_model *m, double F) {
    return (m->ffn == SPEC_FFN_SWIGLU ? 3.0 : 2.0) * m->C * F; /* SwiGLU: gate, up, down; GeLU: fc1, fc2 */
}

void spec_params_count(const spec_model *m, spec_params *p) {
    double C = m->C;
    double branch_norms = m->norm == SPEC_NORM_SANDWICH ? 2.0 * C : C; /* pre (+ post) norm of one branch */
    double mla_norms = m->attn == SPEC_ATTN_MLA ? (double)m->q_lora + m->kv_lora : 0; /* q_a_norm, kv_a_norm */
    *p = (spec_params){0};
    p->embed = (double)m->V * C;
    p->head = m->tied ? 0 : (double)m->V * C;
    p->final_norm = C;
    p->attn_per_layer = attn_proj_params(m, 1) + mla_norms + branch_norms;
    p->ffn_norms_per_layer = branch_norms;
    p->norms_per_layer = 2 * branch_norms + mla_norms;
    p->dense_ffn_per_layer = m->F > 0 ? ffn_params(m, m->F) : 0;
    if (m->E > 0) {
        p->moe_router_per_layer = C * m->E + (m->score_bias ? m->E : 0);
        p->expert = ffn_params(m, m->F_expert);
    }
    p->dense_layer = p->attn_per_layer + p->ffn_norms_per_layer + p->dense_ffn_per_layer;
    if (m->E > 0) {
        p->moe_layer = p->attn_per_layer + p->ffn_norms_per_layer + p->moe_router_per_layer +
                       (double)(m->E + m->E_shared) * p->expert;
        p->moe_layer_active = p->attn_per_layer + p->ffn_norms_per_layer + p->moe_router_per_layer +
                              (double)(m->K + m->E_shared) * p->expert;
    }
    p->n_moe = m->E > 0 ? m->L - m->first_k_dense : 0; /* = the layers where spec_layer_is_moe holds */
    p->n_dense = m->L - p->n_moe;
    double shared = p->embed + p->head + p->final_norm;
    p->total = shared + p->n_dense * p->dense_layer + p->n_moe * p->moe_layer;
    p->active_with_embed = shared + p->n_dense * p->dense_layer + p->n_moe * p->moe_layer_active;
    p->active = p->active_with_embed - (m->tied ? 0 : p->embed); /* tied: the table is the head matmul */
    /* MTP module k (DeepSeek-V3 Sec. 2.2): RMSNorm of h and of the next token's embedding (2 C), the
     * projection M_k (2C -> C), one transformer block (MoE when the model has experts), and the norm before
     * the shared output head (C). Embedding and head are shared with the main model: not counted again. */
    double block = m->E > 0 ? p->moe_layer : p->dense_layer;
    double block_active = m->E > 0 ? p->moe_layer_active : p->dense_layer;
    double glue = 2.0 * C + 2.0 * C * C + C;
    p->mtp = m->mtp * (glue + block);
    p->mtp_active = m->mtp * (glue + block_active);
}
