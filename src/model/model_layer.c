/* model_layer.c - one transformer layer: two residual branches (attention, then dense FFN or MoE) with the
 * selected norm placement.
 *   pre-norm (Xiong et al. 2020):       h = x + Attn(Norm(x));            out = h + FFN(Norm(h))
 *   depth-scaled sandwich norm (DSSN, Pangu Ultra arXiv 2504.07866):
 *                                       h = x + Norm_post(Attn(Norm_pre(x))); out = h + Norm_post(FFN(Norm_pre(h)))
 *   Norm = RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * g.
 * Backward works in place on the residual gradient: dres = d(out) on entry, d(x) on exit.
 * Does not: the branches' insides (model_attn.c, model_ffn.c, model_moe.c). */
#include <string.h>
#include "model_internal.h"
#include "umoe/nn.h"

#define P(off) (m->params + (off))
#define G(off) (m->grads + (off))

void model_layer_forward(umoe_model *m, const layer_w *w, layer_act *a, const float *x, int B, int T, double *aux,
                         double *z) {
    size_t N = (size_t)B * (size_t)T, C = (size_t)m->d.C;
    float eps = m->d.eps;
    rmsnorm_forward(a->n1, a->rstd1, x, P(w->norm_attn_pre), N, C, eps);
    model_attn_forward(m, w, a, B, T);
    const float *br = a->ao;
    if (m->d.sandwich) {
        rmsnorm_forward(a->ap, a->ap_rstd, a->ao, P(w->norm_attn_post), N, C, eps);
        br = a->ap;
    }
    nn_add(a->mid, x, br, N * C);
    rmsnorm_forward(a->n2, a->rstd2, a->mid, P(w->norm_ffn_pre), N, C, eps);
    if (w->moe) {
        double t0 = umoe_now();
        model_moe_forward(m, w, a, (int)N, aux, z);
        m->moe_seconds += umoe_now() - t0;
    } else model_swiglu_mlp_forward(a->fo, a->gu, a->act, a->n2, P(w->ffn_gu), P(w->ffn_down), N, C, (size_t)m->d.F);
    br = a->fo;
    if (m->d.sandwich) {
        rmsnorm_forward(a->fp, a->fp_rstd, a->fo, P(w->norm_ffn_post), N, C, eps);
        br = a->fp;
    }
    nn_add(a->out, a->mid, br, N * C);
}

void model_layer_backward(umoe_model *m, const layer_w *w, const layer_act *a, const float *x, float *dres, int B,
                          int T, float loss_scale) {
    size_t N = (size_t)B * (size_t)T, C = (size_t)m->d.C;
    layer_act *g = &m->ga;
    /* FFN branch: dres = d(out) = d(mid) from the skip path; the branch adds its part at the end */
    if (m->d.sandwich) {
        nn_zero(g->fo, N * C);
        rmsnorm_backward(g->fo, G(w->norm_ffn_post), dres, a->fo, P(w->norm_ffn_post), a->fp_rstd, N, C);
    } else {
        nn_copy_rows(g->fo, C, dres, C, N, C);
    }
    nn_zero(g->n2, N * C);
    if (w->moe) {
        double t0 = umoe_now();
        model_moe_backward(m, w, a, g, (int)N, loss_scale);
        m->moe_seconds += umoe_now() - t0;
    } else model_swiglu_mlp_backward(g->n2, G(w->ffn_gu), G(w->ffn_down), g->gu, g->act, g->fo, a->n2, a->gu, a->act,
                                   P(w->ffn_gu), P(w->ffn_down), N, C, (size_t)m->d.F);
    rmsnorm_backward(dres, G(w->norm_ffn_pre), g->n2, a->mid, P(w->norm_ffn_pre), a->rstd2, N, C);
    /* attention branch: dres = d(mid) */
    if (m->d.sandwich) {
        nn_zero(g->ao, N * C);
        rmsnorm_backward(g->ao, G(w->norm_attn_post), dres, a->ao, P(w->norm_attn_post), a->ap_rstd, N, C);
    } else {
        nn_copy_rows(g->ao, C, dres, C, N, C);
    }
    nn_zero(g->n1, N * C);
    model_attn_backward(m, w, a, g, B, T);
    rmsnorm_backward(dres, G(w->norm_attn_pre), g->n1, x, P(w->norm_attn_pre), a->rstd1, N, C);
}
