/* spec_model_hf.c - a HuggingFace transformers config.json taken as is, for the model types
 * deepseek_v3, deepseek_v2, mixtral, qwen2_moe, qwen3_moe, llama, qwen2 and qwen3.
 * Field meanings follow the transformers configuration classes of those model types (DeepseekV3Config,
 * MixtralConfig, Qwen2MoeConfig, ...). Fields we do not use are ignored (HF configs carry many).
 * Sequence length: 4096 (HF configs give only the maximum context, not the training length), or
 * max_position_embeddings when that is smaller.
 * Not representable, so rejected with a message: MoE layer patterns other than "first k layers dense"
 * (moe_layer_freq / decoder_sparse_step > 1, mlp_only_layers that are not a prefix), and a Qwen2-MoE shared
 * expert whose width is not a multiple of the routed expert width.
 * Ignored (a few thousand parameters per layer): Qwen2-MoE's shared-expert gate (C x 1), Qwen3's per-head
 * q/k RMSNorm (2 x head_dim), Llama's output-projection bias. */
#include <string.h>
#include "spec_internal.h"

static const char *const hf_types[] = {"deepseek_v3", "deepseek_v2", "mixtral", "qwen2_moe", "qwen3_moe",
                                       "llama", "qwen2", "qwen3", NULL};
enum { HF_DSV3, HF_DSV2, HF_MIXTRAL, HF_QWEN2_MOE, HF_QWEN3_MOE, HF_LLAMA, HF_QWEN2, HF_QWEN3 };

#define BIG 100000000LL

static umoe_status req_int(const cJSON *o, const char *file, const char *field, long long lo, int *out) {
    long long v;
    umoe_status s = json_get_int(o, file, field, lo, BIG, &v);
    if (!s) *out = (int)v;
    return s;
}

/* mlp_only_layers (Qwen-MoE): must be empty or exactly [0, 1, ..., k-1]; returns k. */
static umoe_status mlp_only_prefix(const cJSON *o, const char *file, int *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "mlp_only_layers");
    *k = 0;
    if (!it || cJSON_IsNull(it)) return UMOE_OK;
    if (!cJSON_IsArray(it)) return umoe_fail("%s: field \"mlp_only_layers\" must be an array of layer indices", file);
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, it) {
        if (!cJSON_IsNumber(e) || e->valuedouble != i)
            return umoe_fail("%s: field \"mlp_only_layers\": only a prefix [0, 1, ..., k-1] of dense layers is "
                             "supported (entry %d is not %d)", file, i, i);
        i++;
    }
    *k = i;
    return UMOE_OK;
}

umoe_status spec_model_from_hf(const cJSON *o, const char *file, spec_model *m) {
    spec_model_defaults(m);
    spec_name_from_path(file, m->name, sizeof m->name);
    int type = -1;
    umoe_status s = json_get_enum_opt(o, file, "model_type", hf_types, &type);
    if (s) return s;
    if (type < 0) return umoe_fail("%s: field \"model_type\" must be a string", file);
    if ((s = req_int(o, file, "num_hidden_layers", 1, &m->L))) return s;
    if ((s = req_int(o, file, "hidden_size", 1, &m->C))) return s;
    if ((s = req_int(o, file, "num_attention_heads", 1, &m->H))) return s;
    if ((s = req_int(o, file, "vocab_size", 1, &m->V))) return s;
    m->H_kv = m->H;
    if ((s = spec_json_int(o, file, "num_key_value_heads", 1, BIG, &m->H_kv))) return s;
    if ((s = spec_json_int(o, file, "head_dim", 1, BIG, &m->head_dim))) return s;
    if ((s = spec_json_int(o, file, "intermediate_size", 1, BIG, &m->F))) return s;
    if ((s = spec_json_flag(o, file, "tie_word_embeddings", &m->tied))) return s;
    int maxpos = 0;
    if ((s = spec_json_int(o, file, "max_position_embeddings", 1, BIG, &maxpos))) return s;
    m->T = maxpos && maxpos < 4096 ? maxpos : 4096;
    if ((s = json_get_num_opt(o, file, "rms_norm_eps", 1e-12, 1.0, &m->norm_eps))) return s;
    if ((s = json_get_num_opt(o, file, "rope_theta", 1.0, 1e12, &m->rope_theta))) return s;
    if ((s = spec_json_int(o, file, "num_experts_per_tok", 1, BIG, &m->K))) return s;
    int is_moe = 0;
    switch (type) {
    case HF_DSV3:
    case HF_DSV2: {
        m->attn = SPEC_ATTN_MLA;
        if ((s = spec_json_int(o, file, "q_lora_rank", 0, BIG, &m->q_lora))) return s;
        if ((s = req_int(o, file, "kv_lora_rank", 1, &m->kv_lora))) return s;
        if ((s = req_int(o, file, "qk_nope_head_dim", 0, &m->qk_nope))) return s;
        if ((s = req_int(o, file, "qk_rope_head_dim", 0, &m->qk_rope))) return s;
        if ((s = req_int(o, file, "v_head_dim", 1, &m->v_head))) return s;
        m->head_dim = 0;
        if ((s = spec_json_int(o, file, "n_routed_experts", 0, BIG, &m->E))) return s;
        if ((s = spec_json_int(o, file, "n_shared_experts", 0, BIG, &m->E_shared))) return s;
        if ((s = spec_json_int(o, file, "moe_intermediate_size", 1, BIG, &m->F_expert))) return s;
        if ((s = spec_json_int(o, file, "first_k_dense_replace", 0, BIG, &m->first_k_dense))) return s;
        int freq = 1;
        if ((s = spec_json_int(o, file, "moe_layer_freq", 1, BIG, &freq))) return s;
        if (freq != 1 && m->E > 0)
            return umoe_fail("%s: field \"moe_layer_freq\" = %d: only 1 (every layer after the first k dense is MoE) "
                             "is supported", file, freq);
        if ((s = spec_json_int(o, file, "num_nextn_predict_layers", 0, 64, &m->mtp))) return s;
        char func[32] = "softmax", method[32] = "";
        if ((s = json_get_str_opt(o, file, "scoring_func", func, sizeof func))) return s;
        if (!strcmp(func, "sigmoid")) m->score = SPEC_SCORE_SIGMOID;
        else if (!strcmp(func, "softmax")) m->score = SPEC_SCORE_SOFTMAX;
        else return umoe_fail("%s: field \"scoring_func\" = \"%s\" is not allowed (softmax or sigmoid)", file, func);
        if ((s = json_get_str_opt(o, file, "topk_method", method, sizeof method))) return s;
        m->score_bias = !strcmp(method, "noaux_tc"); /* DeepSeek-V3: aux-loss-free bias in the top-k choice */
        m->norm_topk = type == HF_DSV3; /* DeepseekV2Config defaults norm_topk_prob to false, V3 to true */
        if ((s = spec_json_flag(o, file, "norm_topk_prob", &m->norm_topk))) return s;
        if ((s = json_get_num_opt(o, file, "routed_scaling_factor", 1e-6, 1e6, &m->routed_scale))) return s;
        if ((s = json_get_num_opt(o, file, "aux_loss_alpha", 0, 100, &m->aux_alpha))) return s;
        is_moe = m->E > 0;
        break;
    }
    case HF_MIXTRAL:
        if ((s = req_int(o, file, "num_local_experts", 1, &m->E))) return s;
        m->F_expert = m->F; /* every layer is MoE; intermediate_size is the expert width */
        m->F = 0;
        if (m->F_expert < 1) return umoe_fail("%s: field \"intermediate_size\" is missing (the expert width)", file);
        if ((s = json_get_num_opt(o, file, "router_aux_loss_coef", 0, 100, &m->aux_alpha))) return s;
        m->norm_topk = 1; /* softmax over the top-k logits = renormalised top-k */
        is_moe = 1;
        break;
    case HF_QWEN2_MOE:
    case HF_QWEN3_MOE: {
        if ((s = req_int(o, file, "num_experts", 1, &m->E))) return s;
        if ((s = req_int(o, file, "moe_intermediate_size", 1, &m->F_expert))) return s;
        int step = 1, shared = 0;
        if ((s = spec_json_int(o, file, "decoder_sparse_step", 1, BIG, &step))) return s;
        if (step != 1)
            return umoe_fail("%s: field \"decoder_sparse_step\" = %d: only 1 (every layer MoE, except a prefix in "
                             "mlp_only_layers) is supported", file, step);
        if ((s = mlp_only_prefix(o, file, &m->first_k_dense))) return s;
        if ((s = spec_json_int(o, file, "shared_expert_intermediate_size", 0, BIG, &shared))) return s;
        if (shared % m->F_expert)
            return umoe_fail("%s: field \"shared_expert_intermediate_size\" = %d must be a multiple of "
                             "moe_intermediate_size = %d (shared experts have the routed width here)", file, shared,
                             m->F_expert);
        m->E_shared = shared / m->F_expert;
        m->norm_topk = 0; /* transformers default for Qwen-MoE */
        if ((s = spec_json_flag(o, file, "norm_topk_prob", &m->norm_topk))) return s;
        if ((s = json_get_num_opt(o, file, "router_aux_loss_coef", 0, 100, &m->aux_alpha))) return s;
        m->qkv_bias = type == HF_QWEN2_MOE;
        if (type == HF_QWEN3_MOE && (s = spec_json_flag(o, file, "attention_bias", &m->qkv_bias))) return s;
        if (!m->first_k_dense) m->F = 0;
        is_moe = 1;
        break;
    }
    case HF_LLAMA:
    case HF_QWEN3:
        if ((s = spec_json_flag(o, file, "attention_bias", &m->qkv_bias))) return s;
        break;
    case HF_QWEN2: m->qkv_bias = 1; break;
    }
    if (!is_moe) {
        m->E = m->K = m->E_shared = m->F_expert = m->first_k_dense = 0;
        if (m->F < 1) return umoe_fail("%s: field \"intermediate_size\" is missing (required for a dense model)", file);
    }
    if (m->attn != SPEC_ATTN_MLA) {
        m->attn = m->H_kv == m->H ? SPEC_ATTN_MHA : SPEC_ATTN_GQA;
        if (!m->head_dim) {
            if (m->C % m->H)
                return umoe_fail("%s: hidden_size %d is not a multiple of num_attention_heads %d and head_dim is not "
                                 "given", file, m->C, m->H);
            m->head_dim = m->C / m->H;
        }
    }
    if (is_moe && m->K < 1)
        return umoe_fail("%s: field \"num_experts_per_tok\" is missing (required for a MoE model)", file);
    return spec_model_validate(m, file);
}
