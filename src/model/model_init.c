/* model_init.c - weight initialisation.
 *   Matrices: N(0, sigma^2), sigma = spec->init_std when set, else TinyInit sigma = sqrt(1 / (2 C L))
 *     (Pangu Ultra, arXiv 2504.07866, "TinyInit"; C hidden size, L main layers).
 *   Embedding: N(0, 0.5^2) under TinyInit (same source); N(0, init_std^2) when init_std is set.
 *   RMSNorm gains: 1, except the post-branch gains of the depth-scaled sandwich norm (DSSN, same paper):
 *     gamma_attn = c_attn / sqrt(L), gamma_ffn = c_mlp / sqrt(L), with c_attn = 0.283, c_mlp = 0.432
 *     (the paper's values; see docs/engine-model.md).
 *   Biases (q/k/v) and the expert score-correction bias: 0.
 * One RNG stream, tensors in table order (routed experts in logical order, also in a sharded model):
 * deterministic for a seed. Does not: load checkpoints (src/train). */
#include <math.h>
#include <string.h>
#include "model_internal.h"

#define MODEL_DSSN_C_ATTN 0.283 /* Pangu Ultra, DSSN post-norm gain constant of the attention branch */
#define MODEL_DSSN_C_MLP 0.432  /* ... and of the FFN branch */
#define MODEL_TINYINIT_EMBED_STD 0.5

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

/* The routed experts of one layer in logical order 0..E-1 (the order of a full model's table), each gate, up,
 * down; an expert this (sharded) model does not hold still consumes its draws, so every held expert gets the
 * numbers it has in the full model. Returns the number of table rows of the block (3 per held expert). */
static int init_expert_block(umoe_model *m, const layer_w *w, umoe_rng *rng, double sd) {
    size_t FC = (size_t)m->d.Fe * (size_t)m->d.C, E = (size_t)m->d.E;
    for (size_t e = 0; e < E; e++) {
        int sl = m->expert_slot[(size_t)w->moe_slot * E + e];
        float *p = sl >= 0 ? m->params + w->experts + (size_t)sl * w->expert_stride : NULL;
        for (size_t j = 0; j < 3 * FC; j++) {
            double v = sd * umoe_rng_normal(rng);
            if (p) p[j] = (float)v;
        }
    }
    return 3 * m->n_local;
}

void model_init_weights(umoe_model *m, uint64_t seed) {
    const spec_model *s = &m->s;
    umoe_rng rng;
    umoe_rng_seed(&rng, seed);
    double sigma = s->init_std > 0 ? s->init_std : sqrt(1.0 / (2.0 * (double)s->C * (double)s->L));
    double sigma_embed = s->init_std > 0 ? s->init_std : MODEL_TINYINIT_EMBED_STD;
    double gain_attn = m->d.sandwich ? MODEL_DSSN_C_ATTN / sqrt((double)s->L) : 1.0;
    double gain_ffn = m->d.sandwich ? MODEL_DSSN_C_MLP / sqrt((double)s->L) : 1.0;
    for (int i = 0; i < m->n_tensors; i++) {
        const model_tensor *t = &m->tensors[i];
        float *p = m->params + t->offset;
        if (t->expert >= 0) { /* a layer's expert block: drawn for ALL logical experts, in expert order */
            i += init_expert_block(m, &m->lw[t->layer], &rng, sigma) - 1;
        } else if (t->ndim >= 2) {
            double sd = t->offset == m->embed ? sigma_embed : sigma;
            for (size_t j = 0; j < t->numel; j++) p[j] = (float)(sd * umoe_rng_normal(&rng));
        } else if (ends_with(t->name, "layernorm.weight") || ends_with(t->name, "norm.weight")) {
            float g = 1.0f;
            if (m->d.sandwich && ends_with(t->name, "post_attention_layernorm.weight")) g = (float)gain_attn;
            if (m->d.sandwich && ends_with(t->name, "post_feedforward_layernorm.weight")) g = (float)gain_ffn;
            for (size_t j = 0; j < t->numel; j++) p[j] = g;
        } else {
            memset(p, 0, t->numel * sizeof *p);
        }
    }
}
