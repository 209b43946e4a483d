/* model_layout.c - the parameter layout: every tensor of the model gets an offset into ONE flat parameter
 * block (the grads block uses the same offsets) and a row in the tensor table under its HuggingFace name.
 * Names follow HF DeepSeek-V3 (MLA, MoE, MTP as model.layers.{L+d}.*), Llama/Qwen2 for q/k/v_proj, and
 * Gemma-2 for the sandwich norms. The full mapping is in docs/engine-model.md and docs/formats.md.
 * Order in the block: embedding, layers 0..L-1, MTP modules, final norm, LM head. Within a MoE layer the
 * routed experts are contiguous and ordered by expert slot: slot j holds logical expert j in a full model, or the
 * expert that model_init_sharded / model_expert_rebind put there (tensors are named by that logical expert).
 * Does not: allocate the block or initialise values (model.c, model_init.c). */
#include <stdio.h>
#include <string.h>
#include "model_internal.h"

int model_layer_is_moe(const spec_model *s, int l) { return s->E > 0 && l >= s->first_k_dense; }

static size_t add(umoe_model *m, const char *name, int ndim, size_t d0, size_t d1, int expert, int layer) {
    if (m->n_tensors == m->cap_tensors) {
        int cap = m->cap_tensors ? 2 * m->cap_tensors : 64;
        m->tensors = umoe_realloc(m->tensors, (size_t)m->cap_tensors * sizeof *m->tensors,
                                  (size_t)cap * sizeof *m->tensors, "model tensor table");
        m->cap_tensors = cap;
    }
    model_tensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    UMOE_ASSERT(strlen(name) < sizeof t->name);
    umoe_strlcpy(t->name, name, sizeof t->name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = ndim > 1 ? d1 : 0;
    t->numel = ndim > 1 ? d0 * d1 : d0;
    t->offset = m->n_params;
    t->decay = ndim >= 2; /* matrices decay; norm gains and biases do not */
    t->expert = expert;
    t->layer = layer;
    m->n_params += t->numel;
    return t->offset;
}

/* Add tensor "<prefix><suffix>". */
static size_t addp(umoe_model *m, const char *prefix, const char *suffix, int ndim, size_t d0, size_t d1, int expert,
                   int layer) {
    char name[192];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    return add(m, name, ndim, d0, d1, expert, layer);
}

static void layout_attention(umoe_model *m, layer_w *w, const char *p, int l) {
    const model_dims *d = &m->d;
    size_t C = (size_t)d->C;
    if (d->mla) {
        if (d->q_lora > 0) {
            w->q_a = addp(m, p, "self_attn.q_a_proj.weight", 2, (size_t)d->q_lora, C, -1, l);
            w->q_a_norm = addp(m, p, "self_attn.q_a_layernorm.weight", 1, (size_t)d->q_lora, 0, -1, l);
            w->q_b = addp(m, p, "self_attn.q_b_proj.weight", 2, (size_t)d->qdim, (size_t)d->q_lora, -1, l);
        } else {
            w->wq = addp(m, p, "self_attn.q_proj.weight", 2, (size_t)d->qdim, C, -1, l);
        }
        w->kv_a = addp(m, p, "self_attn.kv_a_proj_with_mqa.weight", 2, (size_t)(d->kv_lora + d->rope), C, -1, l);
        w->kv_a_norm = addp(m, p, "self_attn.kv_a_layernorm.weight", 1, (size_t)d->kv_lora, 0, -1, l);
        w->kv_b = addp(m, p, "self_attn.kv_b_proj.weight", 2, (size_t)d->H * (size_t)(d->nope + d->vd),
                       (size_t)d->kv_lora, -1, l);
    } else {
        w->wq = addp(m, p, "self_attn.q_proj.weight", 2, (size_t)d->qdim, C, -1, l);
        w->wk = addp(m, p, "self_attn.k_proj.weight", 2, (size_t)d->kdim, C, -1, l);
        w->wv = addp(m, p, "self_attn.v_proj.weight", 2, (size_t)d->vdim, C, -1, l);
        if (m->s.qkv_bias) {
            w->bq = addp(m, p, "self_attn.q_proj.bias", 1, (size_t)d->qdim, 0, -1, l);
            w->bk = addp(m, p, "self_attn.k_proj.bias", 1, (size_t)d->kdim, 0, -1, l);
            w->bv = addp(m, p, "self_attn.v_proj.bias", 1, (size_t)d->vdim, 0, -1, l);
        }
    }
    w->wo = addp(m, p, "self_attn.o_proj.weight", 2, C, (size_t)d->H * (size_t)d->Dv, -1, l);
}

static void layout_ffn(umoe_model *m, layer_w *w, const char *p, int l) {
    const model_dims *d = &m->d;
    size_t C = (size_t)d->C;
    char name[192];
    if (!w->moe) {
        w->ffn_gu = addp(m, p, "mlp.gate_proj.weight", 2, (size_t)d->F, C, -1, l);
        addp(m, p, "mlp.up_proj.weight", 2, (size_t)d->F, C, -1, l); /* contiguous after gate: (2F, C) */
        w->ffn_down = addp(m, p, "mlp.down_proj.weight", 2, C, (size_t)d->F, -1, l);
        return;
    }
    w->router = addp(m, p, "mlp.gate.weight", 2, (size_t)d->E, C, -1, l);
    if (m->s.score_bias) {
        w->score_bias = addp(m, p, "mlp.gate.e_score_correction_bias", 1, (size_t)d->E, 0, -1, l);
    }
    w->expert_stride = 3 * (size_t)d->Fe * C;
    for (int j = 0; j < m->n_local; j++) { /* slot j holds logical expert slot_expert[j] (= j unsharded) */
        int e = m->slot_expert[(size_t)w->moe_slot * (size_t)m->n_local + (size_t)j];
        snprintf(name, sizeof name, "%smlp.experts.%d.gate_proj.weight", p, e);
        size_t off = add(m, name, 2, (size_t)d->Fe, C, e, l);
        if (j == 0) w->experts = off;
        snprintf(name, sizeof name, "%smlp.experts.%d.up_proj.weight", p, e);
        add(m, name, 2, (size_t)d->Fe, C, e, l);
        snprintf(name, sizeof name, "%smlp.experts.%d.down_proj.weight", p, e);
        add(m, name, 2, C, (size_t)d->Fe, e, l);
    }
    if (d->S > 0) {
        size_t Fs = (size_t)d->S * (size_t)d->Fe; /* HF fuses the S shared experts into one MLP of width S*Fe */
        w->shared_gu = addp(m, p, "mlp.shared_experts.gate_proj.weight", 2, Fs, C, -1, l);
        addp(m, p, "mlp.shared_experts.up_proj.weight", 2, Fs, C, -1, l);
        w->shared_down = addp(m, p, "mlp.shared_experts.down_proj.weight", 2, C, Fs, -1, l);
    }
}

static void layout_layer(umoe_model *m, layer_w *w, int l, int *moe_slot) {
    const spec_model *s = &m->s;
    size_t C = (size_t)m->d.C;
    char p[32];
    snprintf(p, sizeof p, "model.layers.%d.", l);
    size_t none = MODEL_NONE;
    w->norm_attn_post = w->norm_ffn_post = none;
    w->wq = w->wk = w->wv = w->bq = w->bk = w->bv = none;
    w->q_a = w->q_a_norm = w->q_b = w->kv_a = w->kv_a_norm = w->kv_b = none;
    w->ffn_gu = w->ffn_down = w->router = w->score_bias = w->experts = w->shared_gu = w->shared_down = none;
    w->enorm = w->hnorm = w->eh_proj = w->head_norm = none;
    w->index = l;
    w->moe = model_layer_is_moe(s, l);
    w->moe_slot = w->moe ? (*moe_slot)++ : -1;
    if (l >= s->L) { /* MTP module d = l - L + 1 (DeepSeek-V3 sec. 2.2, HF names) */
        w->enorm = addp(m, p, "enorm.weight", 1, C, 0, -1, l);
        w->hnorm = addp(m, p, "hnorm.weight", 1, C, 0, -1, l);
        w->eh_proj = addp(m, p, "eh_proj.weight", 2, C, 2 * C, -1, l);
    }
    w->norm_attn_pre = addp(m, p, "input_layernorm.weight", 1, C, 0, -1, l);
    layout_attention(m, w, p, l);
    if (m->d.sandwich) { /* Gemma-2 names */
        w->norm_attn_post = addp(m, p, "post_attention_layernorm.weight", 1, C, 0, -1, l);
        w->norm_ffn_pre = addp(m, p, "pre_feedforward_layernorm.weight", 1, C, 0, -1, l);
    } else { /* Llama/DeepSeek: "post_attention_layernorm" is the norm before the FFN */
        w->norm_ffn_pre = addp(m, p, "post_attention_layernorm.weight", 1, C, 0, -1, l);
    }
    layout_ffn(m, w, p, l);
    if (m->d.sandwich) w->norm_ffn_post = addp(m, p, "post_feedforward_layernorm.weight", 1, C, 0, -1, l);
    if (l >= s->L) w->head_norm = addp(m, p, "shared_head.norm.weight", 1, C, 0, -1, l);
}

umoe_status model_layout_build(umoe_model *m) {
    const spec_model *s = &m->s;
    m->n_params = 0;
    m->n_layers = s->L + s->mtp;
    m->lw = umoe_calloc((size_t)m->n_layers, sizeof *m->lw, "model layer table");
    m->embed = add(m, "model.embed_tokens.weight", 2, (size_t)s->V, (size_t)s->C, -1, -1);
    int slot = 0;
    for (int l = 0; l < m->n_layers; l++) layout_layer(m, &m->lw[l], l, &slot);
    m->n_moe = slot;
    m->final_norm = add(m, "model.norm.weight", 1, (size_t)s->C, 0, -1, -1);
    m->lm_head = s->tied ? m->embed : add(m, "lm_head.weight", 2, (size_t)s->V, (size_t)s->C, -1, -1);
    return UMOE_OK;
}

void model_layout_free(umoe_model *m) {
    umoe_free(m->lw, (size_t)m->n_layers * sizeof *m->lw);
    umoe_free(m->tensors, (size_t)m->cap_tensors * sizeof *m->tensors);
    m->lw = NULL;
    m->tensors = NULL;
}
