/* model_ffn.c - the SwiGLU MLP (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6 with Swish_1 = SiLU):
 *   y = W_down (silu(W_gate x) * (W_up x)),
 * used for the dense FFN, the shared experts and each routed expert. gate and up are stored back to back so
 * they form one (2F, C) matrix and one GEMM. Also the routed experts' math over rows grouped by expert
 * (model_experts_*): ONE GEMM per expert and projection over its contiguous rows.
 * Does not: decide which rows go to which expert (dispatch is model_moe.c / src/dist). */
#include <string.h>
#include "model_internal.h"
#include "umoe/nn.h"

void model_swiglu_mlp_forward(float *out, float *gu, float *act, const float *x, const float *w_gu,
                              const float *w_down, size_t n, size_t C, size_t F) {
    if (n == 0) return;
    matmul_forward(gu, x, w_gu, NULL, n, C, 2 * F); /* row r: [gate (F) | up (F)] */
    for (size_t r = 0; r < n; r++) swiglu_forward(act + r * F, gu + r * 2 * F, gu + r * 2 * F + F, F);
    matmul_forward(out, act, w_down, NULL, n, F, C);
}

void model_swiglu_mlp_backward(float *dx, float *dw_gu, float *dw_down, float *dgu, float *dact, const float *dout,
                               const float *x, const float *gu, const float *act, const float *w_gu,
                               const float *w_down, size_t n, size_t C, size_t F) {
    if (n == 0) return;
    memset(dact, 0, n * F * sizeof *dact);
    matmul_backward(dact, dw_down, NULL, dout, act, w_down, n, F, C);
    memset(dgu, 0, n * 2 * F * sizeof *dgu);
    for (size_t r = 0; r < n; r++)
        swiglu_backward(dgu + r * 2 * F, dgu + r * 2 * F + F, dact + r * F, gu + r * 2 * F, gu + r * 2 * F + F, F);
    matmul_backward(dx, dw_gu, NULL, dgu, x, w_gu, n, C, 2 * F);
}

void model_experts_forward(umoe_model *m, int layer, int e0, int n_exp, const int32_t *offsets, const float *in,
                           float *gu, float *act, float *out) {
    const layer_w *w = &m->lw[layer];
    size_t C = (size_t)m->d.C, Fe = (size_t)m->d.Fe;
    UMOE_ASSERT(w->moe && e0 >= 0 && e0 + n_exp <= m->d.E);
    for (int j = 0; j < n_exp; j++) {
        size_t r0 = (size_t)offsets[j], n = (size_t)(offsets[j + 1] - offsets[j]);
        if (n == 0) continue; /* an expert without tokens: nothing computed, nothing stale read later */
        const float *we = m->params + w->experts + (size_t)(e0 + j) * w->expert_stride;
        model_swiglu_mlp_forward(out + r0 * C, gu + r0 * 2 * Fe, act + r0 * Fe, in + r0 * C, we, we + 2 * Fe * C,
                                 n, C, Fe);
    }
}

void model_experts_backward(umoe_model *m, int layer, int e0, int n_exp, const int32_t *offsets, const float *in,
                            const float *gu, const float *act, const float *dout, float *din, float *dgu,
                            float *dact) {
    const layer_w *w = &m->lw[layer];
    size_t C = (size_t)m->d.C, Fe = (size_t)m->d.Fe;
    UMOE_ASSERT(w->moe && e0 >= 0 && e0 + n_exp <= m->d.E);
    for (int j = 0; j < n_exp; j++) {
        size_t r0 = (size_t)offsets[j], n = (size_t)(offsets[j + 1] - offsets[j]);
        if (n == 0) continue; /* zero tokens: this expert's grads receive nothing (stay as they were) */
        size_t off = w->experts + (size_t)(e0 + j) * w->expert_stride;
        const float *we = m->params + off;
        float *ge = m->grads + off;
        model_swiglu_mlp_backward(din + r0 * C, ge, ge + 2 * Fe * C, dgu + r0 * 2 * Fe, dact + r0 * Fe,
                                  dout + r0 * C, in + r0 * C, gu + r0 * 2 * Fe, act + r0 * Fe, we,
                                  we + 2 * Fe * C, n, C, Fe);
    }
}
