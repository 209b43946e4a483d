/* model_recompute.c - fine-grained activation recomputation (Korthikanti et al. 2022, "Reducing Activation
 * Recomputation in Large Transformer Models", arXiv 2205.05198, sec. 5; Pangu Ultra MoE arXiv 2505.04519:
 * recompute MLA, token permutation and the activation function). The arena (model_arena.c) gives the buffers
 * a policy frees one shared region; just before layer l's backward this file rebuilds layer l's freed buffers
 * from what was kept, calling the SAME kernels with the SAME arguments as the forward, so the rebuilt values
 * are bit-identical and so are all gradients. Module list = spec.h's SPEC_RC_* (the simulator's):
 *   norm        RMSNorm outputs feeding GEMMs (n1, n2, MLA's q_a / kv_a norms) from their saved inputs
 *   activation  SwiGLU outputs (dense FFN, shared experts, routed experts) from the saved FC1 outputs
 *   attn_core   attention output and log-sum-exp from q, k, v (the whole core reruns)
 *   mla_up      MLA q (q_b or q_proj) and k, v (kv_b) from the latents
 *   expert_fc1  routed experts' FC1 (gate+up) outputs and activations from the permuted rows
 *   permute     the permuted rows (dispatch input) from the FFN input and the saved order
 *   full        only the layer input is kept: the whole layer forward reruns (no losses, loads or aux
 *               statistics are recorded again; with expert-parallel hooks the dispatch reruns too)
 * Does not: decide placement (model_arena.c) or the backward math (model_layer.c, model_attn.c, model_moe.c).
 * With expert-parallel hooks installed (model_set_moe_ops), the routed experts' buffers belong to src/dist:
 * expert_fc1/activation/permute then have nothing to rebuild here (backward does not read them). */
#include "model_internal.h"
#include "umoe/nn.h"

#define P(off) (m->params + (off))

static void recompute(umoe_model *m, const layer_w *w, layer_act *a, const float *x, int B, int T);

void model_layer_recompute(umoe_model *m, const layer_w *w, layer_act *a, const float *x, int B, int T) {
    if (!m->rc) return;
    double t0 = umoe_now();
    recompute(m, w, a, x, B, T);
    m->rc_seconds += umoe_now() - t0;
}

static void recompute(umoe_model *m, const layer_w *w, layer_act *a, const float *x, int B, int T) {
    unsigned rc = m->rc;
    size_t N = (size_t)B * (size_t)T, C = (size_t)m->d.C;
    if (rc & SPEC_RC_FULL) {
        double aux = 0, z = 0;
        m->recomputing = 1;
        model_layer_forward(m, w, a, x, B, T, &aux, &z);
        m->recomputing = 0;
        return;
    }
    float eps = m->d.eps;
    if (rc & SPEC_RC_NORM) rmsnorm_forward(a->n1, m->rc_rstd, x, P(w->norm_attn_pre), N, C, eps);
    model_attn_recompute(m, w, a, B, T);
    if (rc & SPEC_RC_NORM) rmsnorm_forward(a->n2, m->rc_rstd, a->mid, P(w->norm_ffn_pre), N, C, eps);
    size_t Fw = w->moe ? (size_t)m->d.S * (size_t)m->d.Fe : (size_t)m->d.F;
    if ((rc & SPEC_RC_ACT) && Fw > 0) model_swiglu_rows(a->act, a->gu, 0, N, Fw);
    if (!w->moe || (m->ops && m->ops->experts_forward)) return;
    size_t K = (size_t)m->d.K, E = (size_t)m->d.E, NK = N * K;
    if (rc & SPEC_RC_PERMUTE) moe_permute_forward(a->rows, a->n2, a->order, NK, K, C);
    if (a->offsets[E] == a->offsets[0]) return;
    if (rc & SPEC_RC_EXPERT_FC1) model_experts_fc1(m, w->index, 0, (int)E, a->offsets, a->rows, a->egu, a->eact);
    else if (rc & SPEC_RC_ACT)
        model_swiglu_rows(a->eact, a->egu, (size_t)a->offsets[0], (size_t)a->offsets[E], (size_t)m->d.Fe);
}
