/* spec_model.c - the model spec: defaults, our own JSON format (keys in docs/formats.md), validation with
 * clear messages, and which layers are MoE. A file with a "model_type" field is a HuggingFace config.json
 * and goes to spec_model_hf.c.
 * Does not: count parameters or FLOPs (spec_params.c, spec_flops.c). */
#include <math.h>
#include <string.h>
#include "spec_internal.h"

static const char *const attn_names[] = {"mha", "gqa", "mla", NULL};
static const char *const ffn_names[] = {"swiglu", "gelu", NULL};
static const char *const norm_names[] = {"pre", "sandwich", NULL};
static const char *const score_names[] = {"softmax", "sigmoid", NULL};
static const char *const aux_names[] = {"micro", "global", "ep_group", NULL};

static const char *const model_keys[] = {
    "name", "layers", "hidden", "heads", "kv_heads", "head_dim", "attention", "q_lora_rank", "kv_lora_rank",
    "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "ffn", "ffn_hidden", "first_k_dense", "experts",
    "shared_experts", "top_k", "expert_ffn_hidden", "vocab", "tied_embeddings", "mtp_depth", "seq_len",
    "qkv_bias", "norm", "norm_eps", "rope_theta", "score", "norm_topk", "routed_scale", "score_bias",
    "aux_alpha", "aux_scope", "z_loss", "mtp_weight", "init_std", "router_groups", NULL};

void spec_model_defaults(spec_model *m) {
    memset(m, 0, sizeof *m);
    m->attn = SPEC_ATTN_MHA;
    m->ffn = SPEC_FFN_SWIGLU;
    m->T = 4096;
    m->norm = SPEC_NORM_PRE;
    m->norm_eps = 1e-5;
    m->rope_theta = 10000.0;
    m->score = SPEC_SCORE_SOFTMAX;
    m->norm_topk = 1;
    m->routed_scale = 1.0;
    m->aux_alpha = 0.01;
    m->aux_scope = SPEC_AUX_MICRO;
    m->mtp_weight = 0.3;
}

int spec_layer_is_moe(const spec_model *m, int l) { return m->E > 0 && l >= m->first_k_dense && l < m->L; }

#define BIG 100000000LL /* upper bound for dimensions: 1e8 */

umoe_status spec_model_from_json(const void *obj, const char *file, spec_model *m) {
    const cJSON *o = obj;
    if (cJSON_GetObjectItemCaseSensitive(o, "model_type")) return spec_model_from_hf(o, file, m);
    spec_model_defaults(m);
    umoe_status s = json_check_known(o, file, model_keys);
    if (s) return s;
    if ((s = spec_json_check_dups(o, file))) return s;
    long long v;
    spec_name_from_path(file, m->name, sizeof m->name);
    if ((s = json_get_str_opt(o, file, "name", m->name, sizeof m->name))) return s;
    if ((s = json_get_int(o, file, "layers", 1, 100000, &v))) return s;
    m->L = (int)v;
    if ((s = json_get_int(o, file, "hidden", 1, BIG, &v))) return s;
    m->C = (int)v;
    if ((s = json_get_int(o, file, "heads", 1, 1000000, &v))) return s;
    m->H = (int)v;
    if ((s = json_get_int(o, file, "vocab", 1, BIG, &v))) return s;
    m->V = (int)v;
    int attn = -1, ffn = SPEC_FFN_SWIGLU, norm = SPEC_NORM_PRE, score = SPEC_SCORE_SOFTMAX, aux = SPEC_AUX_MICRO;
    if ((s = json_get_enum_opt(o, file, "attention", attn_names, &attn))) return s;
    if ((s = spec_json_int(o, file, "kv_heads", 1, 1000000, &m->H_kv))) return s;
    if ((s = spec_json_int(o, file, "head_dim", 1, 100000, &m->head_dim))) return s;
    if ((s = spec_json_int(o, file, "q_lora_rank", 0, BIG, &m->q_lora))) return s;
    if ((s = spec_json_int(o, file, "kv_lora_rank", 1, BIG, &m->kv_lora))) return s;
    if ((s = spec_json_int(o, file, "qk_nope_head_dim", 0, 100000, &m->qk_nope))) return s;
    if ((s = spec_json_int(o, file, "qk_rope_head_dim", 0, 100000, &m->qk_rope))) return s;
    if ((s = spec_json_int(o, file, "v_head_dim", 1, 100000, &m->v_head))) return s;
    if ((s = json_get_enum_opt(o, file, "ffn", ffn_names, &ffn))) return s;
    if ((s = spec_json_int(o, file, "ffn_hidden", 1, BIG, &m->F))) return s;
    if ((s = spec_json_int(o, file, "first_k_dense", 0, 100000, &m->first_k_dense))) return s;
    if ((s = spec_json_int(o, file, "experts", 0, 1000000, &m->E))) return s;
    if ((s = spec_json_int(o, file, "shared_experts", 0, 1000, &m->E_shared))) return s;
    if ((s = spec_json_int(o, file, "top_k", 1, 1000000, &m->K))) return s;
    if ((s = spec_json_int(o, file, "expert_ffn_hidden", 1, BIG, &m->F_expert))) return s;
    if ((s = spec_json_flag(o, file, "tied_embeddings", &m->tied))) return s;
    if ((s = spec_json_int(o, file, "mtp_depth", 0, 64, &m->mtp))) return s;
    if ((s = spec_json_int(o, file, "seq_len", 1, BIG, &m->T))) return s;
    if ((s = spec_json_flag(o, file, "qkv_bias", &m->qkv_bias))) return s;
    if ((s = json_get_enum_opt(o, file, "norm", norm_names, &norm))) return s;
    if ((s = json_get_num_opt(o, file, "norm_eps", 1e-12, 1.0, &m->norm_eps))) return s;
    if ((s = json_get_num_opt(o, file, "rope_theta", 1.0, 1e12, &m->rope_theta))) return s;
    if ((s = json_get_enum_opt(o, file, "score", score_names, &score))) return s;
    if ((s = spec_json_flag(o, file, "norm_topk", &m->norm_topk))) return s;
    if ((s = json_get_num_opt(o, file, "routed_scale", 1e-6, 1e6, &m->routed_scale))) return s;
    if ((s = spec_json_flag(o, file, "score_bias", &m->score_bias))) return s;
    if ((s = json_get_num_opt(o, file, "aux_alpha", 0.0, 100.0, &m->aux_alpha))) return s;
    if ((s = json_get_enum_opt(o, file, "aux_scope", aux_names, &aux))) return s;
    if ((s = json_get_num_opt(o, file, "z_loss", 0.0, 100.0, &m->z_loss))) return s;
    if ((s = json_get_num_opt(o, file, "mtp_weight", 0.0, 100.0, &m->mtp_weight))) return s;
    if ((s = json_get_num_opt(o, file, "init_std", 0.0, 10.0, &m->init_std))) return s;
    if ((s = spec_json_int(o, file, "router_groups", 0, 1000000, &m->router_groups))) return s;
    /* attention kind when not given: MLA if a KV LoRA rank is given, GQA if kv_heads < heads, else MHA */
    if (attn < 0) attn = m->kv_lora ? SPEC_ATTN_MLA : (m->H_kv && m->H_kv != m->H) ? SPEC_ATTN_GQA : SPEC_ATTN_MHA;
    m->attn = (spec_attn_kind)attn;
    m->ffn = (spec_ffn_kind)ffn;
    m->norm = (spec_norm_kind)norm;
    m->score = (spec_score_kind)score;
    m->aux_scope = (spec_aux_scope)aux;
    if (m->E > 0 && !m->K)
        return umoe_fail("%s: field \"top_k\" is missing (required when experts = %d > 0)", file, m->E);
    return spec_model_finish(m, file);
}

umoe_status spec_model_finish(spec_model *m, const char *file) {
    if (!m->H_kv) m->H_kv = m->H;
    if (m->attn != SPEC_ATTN_MLA && !m->head_dim) {
        if (m->H < 1 || m->C % m->H)
            return umoe_fail("%s: field \"head_dim\" is missing and hidden %d is not a multiple of heads %d "
                             "(give head_dim)", file, m->C, m->H);
        m->head_dim = m->C / m->H;
    }
    return spec_model_validate(m, file);
}

umoe_status spec_model_validate(const spec_model *m, const char *file) {
    if (m->L < 1) return umoe_fail("%s: field \"layers\" = %d must be >= 1", file, m->L);
    if (m->C < 1) return umoe_fail("%s: field \"hidden\" = %d must be >= 1", file, m->C);
    if (m->H < 1) return umoe_fail("%s: field \"heads\" = %d must be >= 1", file, m->H);
    if (m->V < 1) return umoe_fail("%s: field \"vocab\" = %d must be >= 1", file, m->V);
    if (m->T < 1) return umoe_fail("%s: field \"seq_len\" = %d must be >= 1", file, m->T);
    switch (m->attn) {
    case SPEC_ATTN_MHA:
        if (m->H_kv != m->H)
            return umoe_fail("%s: field \"kv_heads\" = %d must equal heads = %d for attention \"mha\" "
                             "(use \"gqa\" for fewer KV heads)", file, m->H_kv, m->H);
        /* fall through */
    case SPEC_ATTN_GQA:
        if (m->H_kv < 1 || m->H % m->H_kv)
            return umoe_fail("%s: field \"kv_heads\" = %d must divide heads = %d", file, m->H_kv, m->H);
        if (m->head_dim < 1) return umoe_fail("%s: field \"head_dim\" = %d must be >= 1", file, m->head_dim);
        if (m->kv_lora || m->q_lora)
            return umoe_fail("%s: fields \"q_lora_rank\"/\"kv_lora_rank\" are only allowed with attention \"mla\"",
                             file);
        break;
    case SPEC_ATTN_MLA:
        if (m->kv_lora < 1)
            return umoe_fail("%s: field \"kv_lora_rank\" = %d must be >= 1 for attention \"mla\"", file, m->kv_lora);
        if (m->q_lora < 0) return umoe_fail("%s: field \"q_lora_rank\" = %d must be >= 0", file, m->q_lora);
        if (m->qk_nope + m->qk_rope < 1 || m->qk_nope < 0 || m->qk_rope < 0)
            return umoe_fail("%s: fields \"qk_nope_head_dim\" = %d and \"qk_rope_head_dim\" = %d: both >= 0 and "
                             "their sum >= 1 for attention \"mla\"", file, m->qk_nope, m->qk_rope);
        if (m->qk_rope % 2)
            return umoe_fail("%s: field \"qk_rope_head_dim\" = %d must be even (RoPE rotates pairs)", file,
                             m->qk_rope);
        if (m->v_head < 1)
            return umoe_fail("%s: field \"v_head_dim\" = %d must be >= 1 for attention \"mla\"", file, m->v_head);
        break;
    default: return umoe_fail("%s: field \"attention\" has an unknown value (mha, gqa or mla)", file);
    }
    if (m->attn != SPEC_ATTN_MLA && m->head_dim % 2)
        return umoe_fail("%s: field \"head_dim\" = %d must be even (RoPE rotates pairs)", file, m->head_dim);
    if (m->E < 0) return umoe_fail("%s: field \"experts\" = %d must be >= 0", file, m->E);
    if (m->E == 0) {
        if (m->E_shared || m->F_expert || m->first_k_dense)
            return umoe_fail("%s: fields \"shared_experts\", \"expert_ffn_hidden\" and \"first_k_dense\" need "
                             "experts > 0 (this is a dense model: experts = 0)", file);
    } else {
        if (m->K < 1 || m->K > m->E)
            return umoe_fail("%s: field \"top_k\" = %d out of range (allowed 1..experts = %d)", file, m->K, m->E);
        if (m->F_expert < 1)
            return umoe_fail("%s: field \"expert_ffn_hidden\" is missing or < 1 (required when experts > 0)", file);
        if (m->first_k_dense < 0 || m->first_k_dense >= m->L)
            return umoe_fail("%s: field \"first_k_dense\" = %d out of range (allowed 0..layers-1 = %d)", file,
                             m->first_k_dense, m->L - 1);
        if (m->E_shared < 0) return umoe_fail("%s: field \"shared_experts\" = %d must be >= 0", file, m->E_shared);
        if (m->router_groups > 1 && (m->E % m->router_groups || m->K % m->router_groups))
            return umoe_fail("%s: field \"router_groups\" = %d must divide experts = %d and top_k = %d (each token "
                             "takes top_k / router_groups experts from every group)", file, m->router_groups, m->E,
                             m->K);
    }
    int any_dense = m->E == 0 || m->first_k_dense > 0;
    if (any_dense && m->F < 1)
        return umoe_fail("%s: field \"ffn_hidden\" is missing or < 1 (required: the model has %d dense-FFN "
                         "layer(s))", file, m->E == 0 ? m->L : m->first_k_dense);
    if (m->mtp < 0 || m->mtp > 64) return umoe_fail("%s: field \"mtp_depth\" = %d out of range (0..64)", file, m->mtp);
    if (!(m->norm_eps > 0)) return umoe_fail("%s: field \"norm_eps\" = %g must be > 0", file, m->norm_eps);
    if (!(m->rope_theta > 0)) return umoe_fail("%s: field \"rope_theta\" = %g must be > 0", file, m->rope_theta);
    if (!(m->routed_scale > 0))
        return umoe_fail("%s: field \"routed_scale\" = %g must be > 0", file, m->routed_scale);
    if (m->aux_alpha < 0 || m->z_loss < 0 || m->mtp_weight < 0 || m->init_std < 0)
        return umoe_fail("%s: fields \"aux_alpha\", \"z_loss\", \"mtp_weight\", \"init_std\" must be >= 0", file);
    return UMOE_OK;
}

umoe_status spec_model_load(const char *path_or_name, spec_model *m) {
    char path[4096];
    if (!spec_resolve(path_or_name, "models", path, sizeof path)) return UMOE_EINPUT;
    cJSON *o = json_load_file(path);
    if (!o) return UMOE_EINPUT;
    umoe_status s = spec_model_from_json(o, path, m);
    cJSON_Delete(o);
    return s;
}
