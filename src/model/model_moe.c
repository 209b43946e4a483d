/* model_moe.c - the MoE FFN of a layer: router, dropless dispatch, experts, combine, and the router losses.
 *   Router (DeepSeek-V3, arXiv 2412.19437, sec. 2.1.2, eq. 12-16): logits = x W_gate^T; scores s = softmax or
 *     sigmoid(logits); top-k chosen on s + b (b the aux-loss-free score-correction bias, when enabled);
 *     weights from the unbiased s, optionally renormalised over the top-k, times routed_scale (nn router).
 *   Dispatch: token-assignments (tokens x K) grouped by expert with a counting sort (nn moe_group), every
 *     assignment computed (dropless, no capacity), ONE GEMM per expert over its contiguous rows.
 *   Output: y = shared(x) + sum_k w_k expert_{idx_k}(x)  (DeepSeekMoE shared experts, arXiv 2401.06066).
 *   Aux load-balancing loss (Switch Transformer, arXiv 2101.03961, eq. 4-6; GShard; as in PAPER-NOTES):
 *     L_aux = alpha * sum_i f_i P_i,  f_i = E / (K T_f) * count_i (token-assignments to expert i over the
 *     count scope of T_f tokens),  P_i = (1/T) sum_t p_{t,i} (mean probability over this micro-batch's T
 *     tokens; p = the softmax scores, or for sigmoid scores p = s / sum_j s as in DeepSeek-V3 eq. 19).
 *     f is a constant (counts are not differentiable); summed over the MoE layers.
 *   Router z-loss (ST-MoE, arXiv 2202.08906, eq. 5): L_z = w_z * (1/T) sum_t (log sum_i exp(logits_{t,i}))^2.
 *   Aux-loss-free bias update (DeepSeek-V3 sec. 2.1.2): b_i += gamma * sign(mean load - load_i) per step.
 * Does not: move rows between ranks (installed model_moe_ops do), the expert math (model_ffn.c). */
#include <math.h>
#include <string.h>
#include "model_internal.h"
#include "umoe/nn.h"

#define P(off) (m->params + (off))
#define G(off) (m->grads + (off))

static int score_kind(const umoe_model *m) {
    return m->s.score == SPEC_SCORE_SIGMOID ? NN_SCORE_SIGMOID : NN_SCORE_SOFTMAX;
}

/* Aux loss of one layer from a->scores and a->counts; stores d(L_aux)/d(p_{t,i}) per expert in coef. */
static double aux_loss(umoe_model *m, int slot, const layer_act *a, int N) {
    const spec_model *s = &m->s;
    int E = m->d.E, K = m->d.K;
    double *coef = m->aux_coef + (size_t)slot * (size_t)E;
    if (s->aux_alpha <= 0) {
        memset(coef, 0, (size_t)E * sizeof *coef);
        return 0;
    }
    double cnt[E > 0 ? E : 1], psum[E > 0 ? E : 1];
    memset(psum, 0, sizeof psum);
    for (int i = 0; i < E; i++) cnt[i] = a->counts[i];
    for (int t = 0; t < N; t++) {
        const float *st = a->scores + (size_t)t * (size_t)E;
        double norm = 1;
        if (score_kind(m) == NN_SCORE_SIGMOID) {
            norm = 0;
            for (int i = 0; i < E; i++) norm += st[i];
        }
        for (int i = 0; i < E; i++) psum[i] += st[i] / norm;
    }
    double tokens = N, tokens_f;
    if (m->ops && m->ops->aux_reduce) m->ops->aux_reduce(m->ops->ctx, slot, cnt, psum, &tokens);
    tokens_f = tokens;
    if (m->aux_ext_counts) {
        for (int i = 0; i < E; i++) cnt[i] = m->aux_ext_counts[(size_t)slot * (size_t)E + (size_t)i];
        tokens_f = m->aux_ext_tokens;
    }
    double loss = 0;
    for (int i = 0; i < E; i++) {
        double f = tokens_f > 0 ? (double)E / ((double)K * tokens_f) * cnt[i] : 0;
        loss += f * psum[i] / tokens;
        coef[i] = s->aux_alpha * f / tokens;
    }
    return s->aux_alpha * loss;
}

/* z-loss of one layer: w_z * mean_t lse_t^2 */
static double z_loss(const umoe_model *m, const layer_act *a, int N) {
    int E = m->d.E;
    double acc = 0;
    for (int t = 0; t < N; t++) {
        const float *l = a->rlogits + (size_t)t * (size_t)E;
        double mx = l[0], sum = 0;
        for (int i = 1; i < E; i++) mx = l[i] > mx ? l[i] : mx;
        for (int i = 0; i < E; i++) sum += exp(l[i] - mx);
        double lse = mx + log(sum);
        acc += lse * lse;
    }
    return m->s.z_loss * acc / N;
}

void model_moe_forward(umoe_model *m, const layer_w *w, layer_act *a, int N, double *aux, double *z) {
    const spec_model *s = &m->s;
    size_t E = (size_t)m->d.E, K = (size_t)m->d.K, C = (size_t)m->d.C, NK = (size_t)N * K;
    int slot = w->moe_slot;
    matmul_forward(a->rlogits, a->n2, P(w->router), NULL, (size_t)N, C, E);
    router_forward(a->scores, a->idx, a->w, a->rlogits, s->score_bias ? P(w->score_bias) : NULL, (size_t)N, E, K,
                   score_kind(m), s->norm_topk, (float)s->routed_scale);
    if (s->router_groups > 1) /* MoGE (Pangu Pro MoE): K / G experts from each of G groups */
        router_grouped_select(a->idx, a->w, a->scores, s->score_bias ? P(w->score_bias) : NULL, (size_t)N, E, K,
                              (size_t)s->router_groups, s->norm_topk, (float)s->routed_scale);
    moe_group(a->counts, a->offsets, a->order, a->idx, (size_t)N, K, E);
    if (!m->recomputing) memcpy(m->expert_load + (size_t)slot * E, a->counts, E * sizeof(int32_t));
    moe_permute_forward(a->rows, a->n2, a->order, NK, K, C);
    /* split hooks (src/dist --overlap): the exchange is in flight while the shared experts compute */
    int split = m->ops && m->ops->experts_forward_start && m->ops->experts_forward_finish;
    if (split)
        m->ops->experts_forward_start(m->ops->ctx, m, w->index, slot, a->rows, a->counts, a->offsets, NK);
    else if (m->ops && m->ops->experts_forward)
        m->ops->experts_forward(m->ops->ctx, m, w->index, slot, a->rows, a->counts, a->offsets, NK, a->eout);
    else
        model_experts_forward(m, w->index, 0, (int)E, a->offsets, a->rows, a->egu, a->eact, a->eout);
    if (m->d.S > 0)
        model_swiglu_mlp_forward(a->fo, a->gu, a->act, a->n2, P(w->shared_gu), P(w->shared_down), (size_t)N, C,
                                 (size_t)m->d.S * (size_t)m->d.Fe);
    else
        nn_zero(a->fo, (size_t)N * C);
    if (split) m->ops->experts_forward_finish(m->ops->ctx, m, w->index, slot, a->eout);
    moe_unpermute_forward(a->fo, a->eout, a->w, a->order, NK, K, C);
    if (m->recomputing) return; /* full recompute: the losses, their coefficients and the loads are kept */
    *aux += aux_loss(m, slot, a, N);
    if (s->z_loss > 0) *z += z_loss(m, a, N);
}

void model_moe_backward(umoe_model *m, const layer_w *w, const layer_act *a, layer_act *g, int N, float loss_scale) {
    const spec_model *s = &m->s;
    size_t E = (size_t)m->d.E, K = (size_t)m->d.K, C = (size_t)m->d.C, NK = (size_t)N * K;
    int slot = w->moe_slot;
    int split = m->ops && m->ops->experts_backward_start && m->ops->experts_backward_finish;
    if (split) { /* the experts' exchange is in flight during the shared experts' backward (same bits) */
        nn_zero(g->eout, NK * C);
        memset(g->w, 0, (size_t)N * K * sizeof(float));
        moe_unpermute_backward(g->eout, g->w, g->fo, a->eout, a->w, a->order, NK, K, C);
        nn_zero(g->rows, NK * C);
        m->ops->experts_backward_start(m->ops->ctx, m, w->index, slot, g->eout, NK);
    }
    if (m->d.S > 0)
        model_swiglu_mlp_backward(g->n2, G(w->shared_gu), G(w->shared_down), g->gu, g->act, g->fo, a->n2, a->gu,
                                  a->act, P(w->shared_gu), P(w->shared_down), (size_t)N, C,
                                  (size_t)m->d.S * (size_t)m->d.Fe);
    if (split) {
        m->ops->experts_backward_finish(m->ops->ctx, m, w->index, slot, g->rows);
    } else {
        nn_zero(g->eout, NK * C);
        memset(g->w, 0, (size_t)N * K * sizeof(float));
        moe_unpermute_backward(g->eout, g->w, g->fo, a->eout, a->w, a->order, NK, K, C);
        nn_zero(g->rows, NK * C);
        if (m->ops && m->ops->experts_backward)
            m->ops->experts_backward(m->ops->ctx, m, w->index, slot, g->eout, a->counts, a->offsets, NK, g->rows);
        else
            model_experts_backward(m, w->index, 0, (int)E, a->offsets, a->rows, a->egu, a->eact, g->eout, g->rows,
                                   g->egu, g->eact);
    }
    moe_permute_backward(g->n2, g->rows, a->order, NK, K, C);
    /* aux loss -> d(scores) */
    const float *dscores = NULL;
    if (s->aux_alpha > 0) {
        const double *coef = m->aux_coef + (size_t)slot * E;
        for (size_t t = 0; t < (size_t)N; t++) {
            const float *st = a->scores + t * E;
            float *ds = g->dscores + t * E;
            if (score_kind(m) == NN_SCORE_SIGMOID) { /* p = s / S: dL/ds_j = (c_j - sum_i c_i p_i) / S */
                double S = 0, cp = 0;
                for (size_t i = 0; i < E; i++) S += st[i];
                for (size_t i = 0; i < E; i++) cp += coef[i] * st[i] / S;
                for (size_t i = 0; i < E; i++) ds[i] = (float)(loss_scale * (coef[i] - cp) / S);
            } else {
                for (size_t i = 0; i < E; i++) ds[i] = (float)(loss_scale * coef[i]);
            }
        }
        dscores = g->dscores;
    }
    memset(g->rlogits, 0, (size_t)N * E * sizeof(float));
    router_backward(g->rlogits, g->w, dscores, a->scores, a->idx, a->w, (size_t)N, E, K, score_kind(m),
                    s->norm_topk, (float)s->routed_scale);
    if (s->z_loss > 0) { /* d/dlogit_i of w_z/T * lse^2 = w_z/T * 2 lse softmax_i */
        for (size_t t = 0; t < (size_t)N; t++) {
            const float *l = a->rlogits + t * E;
            double mx = l[0], sum = 0;
            for (size_t i = 1; i < E; i++) mx = l[i] > mx ? l[i] : mx;
            for (size_t i = 0; i < E; i++) sum += exp(l[i] - mx);
            double lse = mx + log(sum), c = loss_scale * s->z_loss * 2.0 * lse / N;
            for (size_t i = 0; i < E; i++) g->rlogits[t * E + i] += (float)(c * exp(l[i] - mx) / sum);
        }
    }
    matmul_backward(g->n2, G(w->router), NULL, g->rlogits, a->n2, P(w->router), (size_t)N, C, E);
}

void model_score_bias_update(umoe_model *m, const double *load, float gamma) {
    if (!m->s.score_bias) return;
    int E = m->d.E;
    for (int l = 0; l < m->n_layers; l++) {
        const layer_w *w = &m->lw[l];
        if (!w->moe) continue;
        float *b = m->params + w->score_bias;
        double mean = 0, ld[E > 0 ? E : 1];
        for (int i = 0; i < E; i++) {
            size_t at = (size_t)w->moe_slot * (size_t)E + (size_t)i;
            ld[i] = load ? load[at] : (double)m->expert_load[at];
            mean += ld[i] / E;
        }
        for (int i = 0; i < E; i++) { /* overloaded experts lose gamma, underloaded gain gamma */
            double diff = mean - ld[i];
            b[i] += diff > 0 ? gamma : diff < 0 ? -gamma : 0.0f;
        }
    }
}
