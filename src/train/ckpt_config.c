/* ckpt_config.c - the checkpoint's config.json: the fields of Hugging Face's DeepSeek-V3 config
 * (transformers DeepseekV3Config names: hidden_size, q_lora_rank, n_routed_experts, ...) so that other tools
 * recognise the model, plus our extras: "umoe_spec" holds every spec_model field under its C name (numbers
 * printed to round-trip exactly) so the exact model is rebuilt from the checkpoint, and "umoe_step".
 * Does not: load arbitrary HF configs (src/spec does) or check the spec's rules (spec_model_validate). */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <string.h>
#include "umoe/json.h"
#include "umoe/train.h"

typedef struct { const char *name; size_t off; int is_int; double lo, hi; } field;
#define I(f, lo, hi) {#f, offsetof(spec_model, f), 1, lo, hi}
#define D(f, lo, hi) {#f, offsetof(spec_model, f), 0, lo, hi}
static const field fields[] = {
    I(L, 1, 100000), I(C, 1, 1 << 20), I(H, 1, 1 << 16), I(H_kv, 0, 1 << 16), I(head_dim, 0, 1 << 16),
    I(attn, 0, 2), I(q_lora, 0, 1 << 20), I(kv_lora, 0, 1 << 20), I(qk_nope, 0, 1 << 16), I(qk_rope, 0, 1 << 16),
    I(v_head, 0, 1 << 16), I(ffn, 0, 1), I(F, 0, 1 << 24), I(first_k_dense, 0, 100000), I(E, 0, 1 << 20),
    I(E_shared, 0, 1 << 16), I(K, 0, 1 << 16), I(F_expert, 0, 1 << 24), I(V, 1, 1 << 30), I(tied, 0, 1),
    I(mtp, 0, 64), I(T, 1, 1 << 26), I(qkv_bias, 0, 1), I(norm, 0, 1), D(norm_eps, 0, 1), D(rope_theta, 0, 1e12),
    I(score, 0, 1), I(norm_topk, 0, 1), D(routed_scale, 0, 1e6), I(score_bias, 0, 1), D(aux_alpha, 0, 1e6),
    I(aux_scope, 0, 2), D(z_loss, 0, 1e6), D(mtp_weight, 0, 1e6), D(init_std, 0, 1e6),
};
#define N_FIELDS (int)(sizeof fields / sizeof *fields)

static void add_int_or_null(cJSON *o, const char *k, int v) {
    if (v) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

umoe_status train_config_write(train_afile *a, const spec_model *s, long step) {
    cJSON *o = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("DeepseekV3ForCausalLM"));
    cJSON_AddStringToObject(o, "model_type", "deepseek_v3");
    cJSON_AddStringToObject(o, "torch_dtype", "float32");
    cJSON_AddNumberToObject(o, "vocab_size", s->V);
    cJSON_AddNumberToObject(o, "hidden_size", s->C);
    cJSON_AddNumberToObject(o, "intermediate_size", s->F);
    cJSON_AddNumberToObject(o, "moe_intermediate_size", s->F_expert);
    cJSON_AddNumberToObject(o, "num_hidden_layers", s->L);
    cJSON_AddNumberToObject(o, "num_nextn_predict_layers", s->mtp);
    cJSON_AddNumberToObject(o, "num_attention_heads", s->H);
    cJSON_AddNumberToObject(o, "num_key_value_heads", s->attn == SPEC_ATTN_MLA ? s->H : s->H_kv);
    if (s->attn != SPEC_ATTN_MLA) cJSON_AddNumberToObject(o, "head_dim", s->head_dim);
    add_int_or_null(o, "n_routed_experts", s->E);
    cJSON_AddNumberToObject(o, "n_shared_experts", s->E_shared);
    cJSON_AddNumberToObject(o, "num_experts_per_tok", s->K);
    cJSON_AddNumberToObject(o, "first_k_dense_replace", s->first_k_dense);
    cJSON_AddNumberToObject(o, "moe_layer_freq", 1);
    cJSON_AddNumberToObject(o, "n_group", 1);
    cJSON_AddNumberToObject(o, "topk_group", 1);
    cJSON_AddStringToObject(o, "topk_method", s->score_bias ? "noaux_tc" : "greedy");
    cJSON_AddStringToObject(o, "scoring_func", s->score == SPEC_SCORE_SIGMOID ? "sigmoid" : "softmax");
    cJSON_AddBoolToObject(o, "norm_topk_prob", s->norm_topk);
    cJSON_AddNumberToObject(o, "routed_scaling_factor", s->routed_scale);
    cJSON_AddNumberToObject(o, "aux_loss_alpha", s->aux_alpha);
    cJSON_AddBoolToObject(o, "seq_aux", s->aux_scope == SPEC_AUX_MICRO);
    if (s->attn == SPEC_ATTN_MLA) {
        add_int_or_null(o, "q_lora_rank", s->q_lora);
        cJSON_AddNumberToObject(o, "kv_lora_rank", s->kv_lora);
        cJSON_AddNumberToObject(o, "qk_nope_head_dim", s->qk_nope);
        cJSON_AddNumberToObject(o, "qk_rope_head_dim", s->qk_rope);
        cJSON_AddNumberToObject(o, "v_head_dim", s->v_head);
    }
    cJSON_AddStringToObject(o, "hidden_act", s->ffn == SPEC_FFN_SWIGLU ? "silu" : "gelu");
    cJSON_AddNumberToObject(o, "max_position_embeddings", s->T);
    cJSON_AddNumberToObject(o, "rms_norm_eps", s->norm_eps);
    cJSON_AddNumberToObject(o, "rope_theta", s->rope_theta);
    cJSON_AddBoolToObject(o, "attention_bias", s->qkv_bias);
    cJSON_AddBoolToObject(o, "tie_word_embeddings", s->tied);
    if (s->init_std > 0) cJSON_AddNumberToObject(o, "initializer_range", s->init_std);
    cJSON_AddStringToObject(o, "umoe_norm", s->norm == SPEC_NORM_SANDWICH ? "sandwich" : "pre");
    cJSON_AddNumberToObject(o, "umoe_step", (double)step);
    cJSON *u = cJSON_AddObjectToObject(o, "umoe_spec");
    cJSON_AddStringToObject(u, "name", s->name);
    for (int i = 0; i < N_FIELDS; i++) {
        const char *p = (const char *)s + fields[i].off;
        double v;
        if (fields[i].is_int) {
            int x;
            memcpy(&x, p, sizeof x); /* enums are int-sized in C11 on every ABI we build for */
            v = x;
        } else {
            memcpy(&v, p, sizeof v);
        }
        cJSON_AddNumberToObject(u, fields[i].name, v); /* cJSON prints doubles so they parse back exactly */
    }
    if (s->router_groups > 1) cJSON_AddNumberToObject(u, "router_groups", s->router_groups); /* optional key */
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    if (!text) return umoe_fail("%s: cannot format config.json", a->path), UMOE_EFAIL;
    umoe_status st = train_afile_write(a, text, strlen(text));
    if (!st) st = train_afile_write(a, "\n", 1);
    cJSON_free(text);
    return st;
}

umoe_status train_config_read(const char *path, spec_model *s, long *step) {
    _Static_assert(sizeof(spec_attn_kind) == sizeof(int), "enum fields are stored as int");
    cJSON *o = json_load_file(path);
    if (!o) return UMOE_EINPUT;
    umoe_status st = UMOE_OK;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(o, "umoe_spec");
    memset(s, 0, sizeof *s);
    if (!cJSON_IsObject(u)) {
        st = umoe_fail("%s: field \"umoe_spec\" is missing: not a checkpoint written by umoe train", path);
        goto done;
    }
    st = json_get_str_opt(u, path, "name", s->name, sizeof s->name);
    for (int i = 0; i < N_FIELDS && !st; i++) {
        char *p = (char *)s + fields[i].off;
        char fname[80];
        snprintf(fname, sizeof fname, "%s", fields[i].name);
        if (fields[i].is_int) {
            long long v = 0;
            st = json_get_int(u, path, fname, (long long)fields[i].lo, (long long)fields[i].hi, &v);
            int x = (int)v;
            memcpy(p, &x, sizeof x);
        } else {
            double v = 0;
            st = json_get_num(u, path, fname, fields[i].lo, fields[i].hi, &v);
            memcpy(p, &v, sizeof v);
        }
    }
    if (!st) {
        long long g = 0;
        st = json_get_int_opt(u, path, "router_groups", 0, 1 << 20, &g);
        s->router_groups = (int)g;
    }
    if (!st && step) {
        long long v = 0;
        st = json_get_int(o, path, "umoe_step", 0, (long long)1 << 62, &v);
        *step = (long)v;
    }
done:
    cJSON_Delete(o);
    return st;
}

/* Hash of every spec field by name and value (not the raw struct: padding bytes are undefined). */
uint64_t train_spec_hash(const spec_model *s) {
    uint64_t h = TRAIN_FNV_INIT;
    for (int i = 0; i < N_FIELDS; i++) {
        h = train_fnv1a(h, fields[i].name, strlen(fields[i].name));
        h = train_fnv1a(h, (const char *)s + fields[i].off, fields[i].is_int ? sizeof(int) : sizeof(double));
    }
    return h;
}

/* Names "a = x there, y here" for the first few fields that differ; empty when none. */
void train_spec_diff(const spec_model *a, const spec_model *b, char *out, size_t n) {
    size_t k = 0;
    out[0] = 0;
    int shown = 0;
    for (int i = 0; i < N_FIELDS && shown < 4 && k < n; i++) {
        const char *pa = (const char *)a + fields[i].off, *pb = (const char *)b + fields[i].off;
        double va, vb;
        if (fields[i].is_int) {
            int x, y;
            memcpy(&x, pa, sizeof x);
            memcpy(&y, pb, sizeof y);
            va = x;
            vb = y;
        } else {
            memcpy(&va, pa, sizeof va);
            memcpy(&vb, pb, sizeof vb);
        }
        if (va != vb) {
            k += (size_t)snprintf(out + k, n - k, "%s%s = %g in the checkpoint, %g in this model", shown ? "; " : "",
                                  fields[i].name, va, vb);
            shown++;
        }
    }
}
