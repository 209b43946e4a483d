/* model.c - the whole model: create/free, accessors, and forward/backward of
 *   embedding -> L layers -> final RMSNorm -> LM head -> cross-entropy (mean over B*T tokens, nats),
 *   plus D MTP modules (DeepSeek-V3, arXiv 2412.19437, sec. 2.2, eq. 21-25): for depth k = 1..D
 *     h'_k = W_eh [RMSNorm_e(Emb(t_{i+k})) ; RMSNorm_h(h_{k-1})]   (HF/vLLM order: embedding first)
 *     h_k  = Layer_k(h'_k);  logits_k = Head(RMSNorm_k(h_k))  (shared embedding and head, own final norm)
 *     L_mtp = (1/D) sum_k mean_i CE(logits_k[i], t_{i+k+1});   h_0 = the main model's last layer output.
 *   Total loss = L_lm + mtp_weight * L_mtp + L_aux + L_z  (aux and z already weighted, summed over MoE layers).
 * Does not: the optimizer, schedules or data (src/train); moving rows between ranks (src/dist via hooks). */
#include <string.h>
#include "model_internal.h"
#include "umoe/nn.h"

#define P(off) (m->params + (off))
#define G(off) (m->grads + (off))

static umoe_status check_spec(const spec_model *s, int B, int T) {
    if (s->L < 1 || s->C < 1 || s->V < 1 || s->H < 1)
        return umoe_fail("model %s: L, C, V and H must be >= 1 (got L=%d C=%d V=%d H=%d)", s->name, s->L, s->C, s->V,
                         s->H);
    if (s->ffn != SPEC_FFN_SWIGLU)
        return umoe_fail("model %s: field \"ffn\": the engine trains SwiGLU FFNs only (got gelu)", s->name);
    if (s->attn == SPEC_ATTN_MLA) {
        if (s->kv_lora < 1 || s->qk_rope < 2 || s->qk_rope % 2 || s->qk_nope < 0 || s->v_head < 1 || s->q_lora < 0)
            return umoe_fail("model %s: MLA needs kv_lora >= 1, an even qk_rope >= 2, qk_nope >= 0, v_head >= 1 "
                             "and q_lora >= 0 (got kv_lora=%d qk_rope=%d qk_nope=%d v_head=%d q_lora=%d)",
                             s->name, s->kv_lora, s->qk_rope, s->qk_nope, s->v_head, s->q_lora);
    } else {
        int hk = s->attn == SPEC_ATTN_MHA ? s->H : s->H_kv;
        if (hk < 1 || s->H % hk || s->head_dim < 2 || s->head_dim % 2)
            return umoe_fail("model %s: attention needs H %% H_kv == 0 and an even head_dim (got H=%d H_kv=%d "
                             "head_dim=%d)", s->name, s->H, hk, s->head_dim);
    }
    if ((s->E == 0 || s->first_k_dense > 0) && s->F < 1)
        return umoe_fail("model %s: dense FFN layers need F >= 1 (got F=%d, E=%d, first_k_dense=%d)", s->name, s->F,
                         s->E, s->first_k_dense);
    if (s->E > 0 && (s->K < 1 || s->K > s->E || s->F_expert < 1 || s->E_shared < 0))
        return umoe_fail("model %s: MoE needs 1 <= K <= E and F_expert >= 1 (got E=%d K=%d F_expert=%d)", s->name,
                         s->E, s->K, s->F_expert);
    if (s->mtp < 0) return umoe_fail("model %s: mtp must be >= 0 (got %d)", s->name, s->mtp);
    if (B < 1 || T < 1 || (s->T > 0 && T > s->T))
        return umoe_fail("model %s: batch %d x %d tokens: need B >= 1 and 1 <= T <= %d", s->name, B, T, s->T);
    if (s->norm_eps <= 0) return umoe_fail("model %s: norm_eps must be > 0 (got %g)", s->name, s->norm_eps);
    return UMOE_OK;
}

static void derive_dims(umoe_model *m) {
    const spec_model *s = &m->s;
    model_dims *d = &m->d;
    memset(d, 0, sizeof *d);
    d->C = s->C;
    d->H = s->H;
    d->eps = (float)s->norm_eps;
    d->sandwich = s->norm == SPEC_NORM_SANDWICH;
    if (s->attn == SPEC_ATTN_MLA) {
        d->mla = 1;
        d->q_lora = s->q_lora;
        d->kv_lora = s->kv_lora;
        d->nope = s->qk_nope;
        d->rope = s->qk_rope;
        d->vd = s->v_head;
        d->Hk = s->H;
        d->Dk = s->qk_nope + s->qk_rope;
        d->Dv = s->v_head;
    } else {
        d->Hk = s->attn == SPEC_ATTN_MHA ? s->H : s->H_kv;
        d->hd = d->Dk = d->Dv = s->head_dim;
    }
    d->qdim = d->H * d->Dk;
    d->kdim = d->Hk * d->Dk;
    d->vdim = d->Hk * d->Dv;
    d->F = s->F;
    d->Fe = s->F_expert;
    d->E = s->E;
    d->K = s->E > 0 ? s->K : 0;
    d->S = s->E > 0 ? s->E_shared : 0;
}

umoe_status model_init(umoe_model **out, const spec_model *s, int B, int T, uint64_t seed) {
    return model_init_sharded(out, s, B, T, seed, 0, NULL);
}

static int count_moe_layers(const spec_model *s) {
    int n = 0;
    for (int l = 0; l < s->L + s->mtp; l++) n += model_layer_is_moe(s, l);
    return n;
}

umoe_status model_init_sharded(umoe_model **out, const spec_model *s, int B, int T, uint64_t seed, int n_local,
                               const int32_t *slot_expert) {
    *out = NULL;
    umoe_status st = check_spec(s, B, T);
    if (st != UMOE_OK) return st;
    int E = s->E > 0 ? s->E : 0, n_moe = count_moe_layers(s);
    if (n_local <= 0 || E == 0) n_local = E;
    if (n_local > E) return umoe_fail("model %s: %d local expert slots, above its %d experts", s->name, n_local, E);
    size_t nm = (size_t)(n_moe > 0 ? n_moe : 1);
    int32_t *se = umoe_malloc(nm * (size_t)(n_local > 0 ? n_local : 1) * sizeof(int32_t), "model slot experts");
    int32_t *es = umoe_malloc(nm * (size_t)(E > 0 ? E : 1) * sizeof(int32_t), "model expert slots");
    for (size_t l = 0; l < nm * (size_t)(E > 0 ? E : 1); l++) es[l] = -1;
    for (int l = 0; l < n_moe; l++)
        for (int j = 0; j < n_local; j++) {
            int e = slot_expert ? slot_expert[(size_t)l * n_local + j] : j;
            if (e < 0 || e >= E || es[(size_t)l * E + e] >= 0) {
                umoe_free(se, nm * (size_t)(n_local > 0 ? n_local : 1) * sizeof(int32_t));
                umoe_free(es, nm * (size_t)(E > 0 ? E : 1) * sizeof(int32_t));
                return umoe_fail("model %s: MoE layer %d slot %d holds expert %d: not in 0..%d or held twice",
                                 s->name, l, j, e, E - 1);
            }
            se[(size_t)l * n_local + j] = e;
            es[(size_t)l * E + e] = j;
        }
    umoe_model *m = umoe_calloc(1, sizeof *m, "model");
    m->s = *s;
    m->B = B;
    m->T = T;
    m->N = B * T;
    m->n_local = n_local;
    m->slot_expert = se;
    m->expert_slot = es;
    derive_dims(m);
    model_layout_build(m);
    m->params = umoe_calloc(m->n_params, sizeof(float), "model parameters");
    m->grads = umoe_calloc(m->n_params, sizeof(float), "model gradients");
    model_arena_build(m);
    size_t nE = (size_t)(m->n_moe > 0 ? m->n_moe : 1) * (size_t)(m->d.E > 0 ? m->d.E : 1);
    m->expert_load = umoe_calloc(nE, sizeof(int32_t), "model expert load");
    m->aux_coef = umoe_calloc(nE, sizeof(double), "model aux-loss coefficients");
    model_init_weights(m, seed);
    LOG_DEBUG("model %s: %zu parameters in %d tensors, activation arena %.1f MiB", s->name, m->n_params,
              m->n_tensors, (double)m->arena_bytes / (1 << 20));
    *out = m;
    return UMOE_OK;
}

void model_free(umoe_model *m) {
    if (!m) return;
    model_offload_free(m);
    size_t nE = (size_t)(m->n_moe > 0 ? m->n_moe : 1) * (size_t)(m->d.E > 0 ? m->d.E : 1);
    umoe_free(m->expert_load, nE * sizeof(int32_t));
    umoe_free(m->aux_coef, nE * sizeof(double));
    umoe_free(m->aux_ext_counts, nE * sizeof(double));
    size_t nm = (size_t)(m->n_moe > 0 ? m->n_moe : 1);
    umoe_free(m->slot_expert, nm * (size_t)(m->n_local > 0 ? m->n_local : 1) * sizeof(int32_t));
    umoe_free(m->expert_slot, nm * (size_t)(m->d.E > 0 ? m->d.E : 1) * sizeof(int32_t));
    model_arena_free(m);
    umoe_free(m->params, m->n_params * sizeof(float));
    umoe_free(m->grads, m->n_params * sizeof(float));
    model_layout_free(m);
    umoe_free(m, sizeof *m);
}

const spec_model *model_spec(const umoe_model *m) { return &m->s; }
float *model_params(umoe_model *m) { return m->params; }
float *model_grads(umoe_model *m) { return m->grads; }
size_t model_n_params(const umoe_model *m) { return m->n_params; }
const model_tensor *model_tensors(const umoe_model *m, int *n) {
    *n = m->n_tensors;
    return m->tensors;
}
const model_tensor *model_tensor_find(const umoe_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}
void model_zero_grad(umoe_model *m) { nn_zero(m->grads, m->n_params); } /* over the threads */
const float *model_logits(const umoe_model *m) { return m->logits; }
int model_n_moe_layers(const umoe_model *m) { return m->n_moe; }
int model_moe_layer_index(const umoe_model *m, int slot) {
    for (int l = 0; l < m->n_layers; l++)
        if (m->lw[l].moe_slot == slot) return l;
    return -1;
}
void model_router_topk(const umoe_model *m, int slot, const int32_t **idx, const float **w) {
    int l = model_moe_layer_index(m, slot);
    UMOE_ASSERT(l >= 0);
    *idx = m->la[l].idx;
    *w = m->la[l].w;
}
void model_set_moe_ops(umoe_model *m, const model_moe_ops *ops) { m->ops = ops; }

void model_set_aux_counts(umoe_model *m, const double *counts, double tokens) {
    size_t nE = (size_t)(m->n_moe > 0 ? m->n_moe : 1) * (size_t)(m->d.E > 0 ? m->d.E : 1);
    if (!counts) {
        umoe_free(m->aux_ext_counts, nE * sizeof(double));
        m->aux_ext_counts = NULL;
        return;
    }
    if (!m->aux_ext_counts) m->aux_ext_counts = umoe_calloc(nE, sizeof(double), "model aux-loss counts");
    memcpy(m->aux_ext_counts, counts, (size_t)m->n_moe * (size_t)m->d.E * sizeof(double));
    m->aux_ext_tokens = tokens;
}

static double mean(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

/* final RMSNorm + head + cross-entropy; returns the mean loss */
static double head_forward(umoe_model *m, float *fn, float *rstd, const float *h, size_t norm, float *logits,
                           float *losses, const int32_t *targets, size_t N) {
    size_t C = (size_t)m->d.C, V = (size_t)m->s.V;
    rmsnorm_forward(fn, rstd, h, P(norm), N, C, m->d.eps);
    matmul_forward(logits, fn, P(m->lm_head), NULL, N, C, V);
    crossentropy_forward(losses, logits, targets, N, V);
    return mean(losses, N);
}

/* dh += d(mean CE * weight) through head and norm */
static void head_backward(umoe_model *m, float *dh, const float *fn, const float *rstd, const float *h, size_t norm,
                          const float *logits, const int32_t *targets, size_t N, float weight) {
    size_t C = (size_t)m->d.C, V = (size_t)m->s.V;
    for (size_t n = 0; n < N; n++) m->dloss[n] = weight / (float)N;
    nn_zero(m->dlogits, N * V);
    crossentropy_backward(m->dlogits, m->dloss, logits, targets, N, V);
    matmul_backward_set(m->dtmp, G(m->lm_head), NULL, m->dlogits, fn, P(m->lm_head), N, C, V);
    rmsnorm_backward(dh, G(norm), m->dtmp, h, P(norm), rstd, N, C);
}

static void forward(umoe_model *m, const int32_t *tokens, int B, int T, model_losses *out) {
    const spec_model *s = &m->s;
    UMOE_ASSERT(B >= 1 && T >= 1 && B * T <= m->N);
    size_t N = (size_t)B * (size_t)T, C = (size_t)s->C, W = (size_t)T + 1 + (size_t)s->mtp;
    for (size_t b = 0; b < (size_t)B; b++)
        for (size_t t = 0; t < (size_t)T; t++) {
            const int32_t *row = tokens + b * W;
            UMOE_ASSERT(row[t] >= 0 && row[t] < s->V && row[t + 1] >= 0 && row[t + 1] < s->V);
            m->inputs[b * T + t] = row[t];
            m->targets[b * T + t] = row[t + 1];
            for (int d = 0; d < s->mtp; d++) {
                UMOE_ASSERT(row[t + d + 2] >= 0 && row[t + d + 2] < s->V);
                m->ma[d].inputs[b * T + t] = row[t + d + 1];
                m->ma[d].targets[b * T + t] = row[t + d + 2];
            }
        }
    m->cur_B = B;
    m->cur_T = T;
    double aux = 0, z = 0;
    memset(m->expert_load, 0, (size_t)m->n_moe * (size_t)m->d.E * sizeof(int32_t));
    embedding_forward(m->emb0, m->inputs, P(m->embed), N, C);
    const float *x = m->emb0;
    for (int l = 0; l < s->L; l++) {
        model_offload_before_forward(m, l);
        model_layer_forward(m, &m->lw[l], &m->la[l], x, B, T, &aux, &z);
        model_offload_after_forward(m, l);
        x = m->la[l].out;
    }
    double lm = head_forward(m, m->fn, m->fn_rstd, x, m->final_norm, m->logits, m->losses, m->targets, N);
    double mtp = 0;
    for (int d = 0; d < s->mtp; d++) {
        mtp_act *a = &m->ma[d];
        const layer_w *w = &m->lw[s->L + d];
        embedding_forward(a->emb, a->inputs, P(m->embed), N, C);
        rmsnorm_forward(a->en, a->en_rstd, a->emb, P(w->enorm), N, C, m->d.eps);
        rmsnorm_forward(a->hn, a->hn_rstd, x, P(w->hnorm), N, C, m->d.eps);
        nn_copy_rows(a->cat, 2 * C, a->en, C, N, C);
        nn_copy_rows(a->cat + C, 2 * C, a->hn, C, N, C);
        matmul_forward(a->x, a->cat, P(w->eh_proj), NULL, N, 2 * C, C);
        model_offload_before_forward(m, s->L + d);
        model_layer_forward(m, w, &m->la[s->L + d], a->x, B, T, &aux, &z);
        model_offload_after_forward(m, s->L + d);
        x = m->la[s->L + d].out;
        mtp += head_forward(m, a->fn, a->fn_rstd, x, w->head_norm, a->logits, a->losses, a->targets, N);
    }
    if (s->mtp > 0) mtp /= s->mtp;
    m->last_aux = aux;
    m->last_z = z;
    memset(out, 0, sizeof *out);
    out->lm_loss = lm;
    out->mtp_loss = mtp;
    out->aux_loss = aux;
    out->z_loss = z;
    out->loss = lm + (s->mtp > 0 ? s->mtp_weight * mtp : 0) + aux + z;
    out->expert_load = m->expert_load;
    out->n_moe_layers = m->n_moe;
}

void model_forward(umoe_model *m, const int32_t *tokens, int B, int T, model_losses *out) {
    m->forward_only = 1; /* no backward follows: nothing to offload */
    forward(m, tokens, B, T, out);
    m->forward_only = 0;
}

static void backward(umoe_model *m, float grad_scale) {
    const spec_model *s = &m->s;
    int B = m->cur_B, T = m->cur_T, L = s->L, D = s->mtp;
    size_t N = (size_t)B * (size_t)T, C = (size_t)s->C;
    const float *xL = L > 0 ? m->la[L - 1].out : m->emb0;
    nn_zero(m->dres, N * C);
    /* MTP chain, deepest first; dcur = d(h_k) */
    float *dcur = m->dres2;
    if (D > 0) nn_zero(dcur, N * C);
    for (int d = D - 1; d >= 0; d--) {
        mtp_act *a = &m->ma[d];
        const layer_w *w = &m->lw[L + d];
        const layer_act *la = &m->la[L + d];
        head_backward(m, dcur, a->fn, a->fn_rstd, la->out, w->head_norm, a->logits, a->targets, N,
                      grad_scale * (float)(s->mtp_weight / D));
        model_offload_before_backward(m, L + d);
        model_layer_recompute(m, w, &m->la[L + d], a->x, B, T);
        model_layer_backward(m, w, la, a->x, dcur, B, T, grad_scale);
        matmul_backward_set(m->dcat, G(w->eh_proj), NULL, dcur, a->cat, P(w->eh_proj), N, 2 * C, C);
        /* embedding half */
        nn_copy_rows(m->dtmp, C, m->dcat, 2 * C, N, C);
        nn_zero(dcur, N * C);
        rmsnorm_backward(dcur, G(w->enorm), m->dtmp, a->emb, P(w->enorm), a->en_rstd, N, C);
        embedding_backward(G(m->embed), dcur, a->inputs, N, C);
        /* hidden half -> d(h_{k-1}) */
        nn_copy_rows(m->dtmp, C, m->dcat + C, 2 * C, N, C);
        float *dprev = d > 0 ? dcur : m->dres;
        const float *hprev = d > 0 ? m->la[L + d - 1].out : xL;
        nn_zero(dcur, N * C);
        rmsnorm_backward(dprev, G(w->hnorm), m->dtmp, hprev, P(w->hnorm), a->hn_rstd, N, C);
    }
    head_backward(m, m->dres, m->fn, m->fn_rstd, xL, m->final_norm, m->logits, m->targets, N, grad_scale);
    for (int l = L - 1; l >= 0; l--) {
        const float *x = l > 0 ? m->la[l - 1].out : m->emb0;
        model_offload_before_backward(m, l);
        model_layer_recompute(m, &m->lw[l], &m->la[l], x, B, T);
        model_layer_backward(m, &m->lw[l], &m->la[l], x, m->dres, B, T, grad_scale);
    }
    embedding_backward(G(m->embed), m->dres, m->inputs, N, C);
}

void model_forward_backward(umoe_model *m, const int32_t *tokens, int B, int T, float grad_scale, model_losses *out) {
    forward(m, tokens, B, T, out);
    backward(m, grad_scale);
}

/* ---- expert sharding ---------------------------------------------------------------------------------- */
int model_n_local_experts(const umoe_model *m) { return m->n_local; }

int model_expert_slot(const umoe_model *m, int moe_slot, int expert) {
    if (moe_slot < 0 || moe_slot >= m->n_moe || expert < 0 || expert >= m->d.E) return -1;
    return m->expert_slot[(size_t)moe_slot * (size_t)m->d.E + (size_t)expert];
}

int model_slot_expert(const umoe_model *m, int moe_slot, int slot) {
    if (moe_slot < 0 || moe_slot >= m->n_moe || slot < 0 || slot >= m->n_local) return -1;
    return m->slot_expert[(size_t)moe_slot * (size_t)m->n_local + (size_t)slot];
}

void model_expert_rebind(umoe_model *m, int moe_slot, int slot, int expert) {
    UMOE_ASSERT(moe_slot >= 0 && moe_slot < m->n_moe && slot >= 0 && slot < m->n_local && expert >= 0 &&
                expert < m->d.E);
    size_t E = (size_t)m->d.E, nl = (size_t)m->n_local;
    int old = m->slot_expert[(size_t)moe_slot * nl + (size_t)slot];
    if (old >= 0 && m->expert_slot[(size_t)moe_slot * E + (size_t)old] == slot)
        m->expert_slot[(size_t)moe_slot * E + (size_t)old] = -1;
    m->slot_expert[(size_t)moe_slot * nl + (size_t)slot] = expert;
    m->expert_slot[(size_t)moe_slot * E + (size_t)expert] = slot;
    int layer = model_moe_layer_index(m, moe_slot);
    const layer_w *w = &m->lw[layer];
    size_t lo = w->experts + (size_t)slot * w->expert_stride, hi = lo + w->expert_stride;
    static const char *const proj[3] = {"gate_proj", "up_proj", "down_proj"};
    for (int i = 0, k = 0; i < m->n_tensors; i++) {
        model_tensor *t = &m->tensors[i];
        if (t->layer != layer || t->expert < 0 || t->offset < lo || t->offset >= hi) continue;
        t->expert = expert;
        snprintf(t->name, sizeof t->name, "model.layers.%d.mlp.experts.%d.%s.weight", layer, expert, proj[k++ % 3]);
    }
}
