/* model_ffn.c - the SwiGLU MLP (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6 with Swish_1 = SiLU):
 *   y = W_down (silu(W_gate x) * (W_up x)),
 * used for the dense FFN, the shared experts and each routed expert. gate and up are stored back to back so
 * they form one (2F, C) matrix and one GEMM. Also the routed experts' math over rows grouped by expert
 * (model_experts_*): ONE GEMM per expert and projection over its contiguous rows (nn's grouped moe_matmul,
 * which runs experts in parallel threads when there are enough of them).
 * Does not: decide which rows go to which expert (dispatch is model_moe.c / src/dist). */
#include <string.h>
#include "model_internal.h"
#include "umoe/nn.h"

void model_swiglu_rows(float *act, const float *gu, size_t r0, size_t r1, size_t F) {
    if (r1 > r0) swiglu_fused_forward(act + r0 * F, gu + r0 * 2 * F, r1 - r0, F); /* rows over the threads */
}

void model_swiglu_mlp_forward(float *out, float *gu, float *act, const float *x, const float *w_gu,
                              const float *w_down, size_t n, size_t C, size_t F) {
    if (n == 0) return;
    matmul_forward(gu, x, w_gu, NULL, n, C, 2 * F); /* row r: [gate (F) | up (F)] */
    model_swiglu_rows(act, gu, 0, n, F);
    matmul_forward(out, act, w_down, NULL, n, F, C);
}

void model_swiglu_mlp_backward(float *dx, float *dw_gu, float *dw_down, float *dgu, float *dact, const float *dout,
                               const float *x, const float *gu, const float *act, const float *w_gu,
                               const float *w_down, size_t n, size_t C, size_t F) {
    if (n == 0) return;
    matmul_backward_set(dact, dw_down, NULL, dout, act, w_down, n, F, C); /* dact, dgu overwritten: no memset */
    swiglu_fused_backward_set(dgu, dact, gu, n, F);
    matmul_backward(dx, dw_gu, NULL, dgu, x, w_gu, n, C, 2 * F);
}

/* float offset of expert e0's slot in layer w (logical id -> slot); e0..e0+n_exp-1 in consecutive slots */
static size_t expert_off(const umoe_model *m, const layer_w *w, int e0, int n_exp) {
    size_t E = (size_t)m->d.E;
    int sl = m->expert_slot[(size_t)w->moe_slot * E + (size_t)e0];
    UMOE_ASSERT(sl >= 0);
    for (int j = 1; j < n_exp; j++) UMOE_ASSERT(m->expert_slot[(size_t)w->moe_slot * E + (size_t)(e0 + j)] == sl + j);
    return w->experts + (size_t)sl * w->expert_stride;
}

void model_experts_fc1(umoe_model *m, int layer, int e0, int n_exp, const int32_t *offsets, const float *in,
                       float *gu, float *act) {
    const layer_w *w = &m->lw[layer];
    size_t C = (size_t)m->d.C, Fe = (size_t)m->d.Fe;
    const float *we = m->params + expert_off(m, w, e0, n_exp); /* expert e0's gate; up, down follow */
    /* one sgemm per expert over its rows (nn moe_matmul); experts without rows are skipped there */
    moe_matmul_forward(gu, in, we, w->expert_stride, offsets, (size_t)n_exp, C, 2 * Fe);
    model_swiglu_rows(act, gu, (size_t)offsets[0], (size_t)offsets[n_exp], Fe);
}

void model_experts_forward(umoe_model *m, int layer, int e0, int n_exp, const int32_t *offsets, const float *in,
                           float *gu, float *act, float *out) {
    const layer_w *w = &m->lw[layer];
    size_t C = (size_t)m->d.C, Fe = (size_t)m->d.Fe;
    UMOE_ASSERT(w->moe && e0 >= 0 && n_exp >= 0 && e0 + n_exp <= m->d.E);
    if (n_exp == 0 || offsets[n_exp] == offsets[0]) return;
    const float *we = m->params + expert_off(m, w, e0, n_exp);
    model_experts_fc1(m, layer, e0, n_exp, offsets, in, gu, act);
    moe_matmul_forward(out, act, we + 2 * Fe * C, w->expert_stride, offsets, (size_t)n_exp, Fe, C);
}

void model_experts_backward(umoe_model *m, int layer, int e0, int n_exp, const int32_t *offsets, const float *in,
                            const float *gu, const float *act, const float *dout, float *din, float *dgu,
                            float *dact) {
    const layer_w *w = &m->lw[layer];
    size_t C = (size_t)m->d.C, Fe = (size_t)m->d.Fe;
    UMOE_ASSERT(w->moe && e0 >= 0 && n_exp >= 0 && e0 + n_exp <= m->d.E);
    if (n_exp == 0 || offsets[n_exp] == offsets[0]) return;
    size_t off = expert_off(m, w, e0, n_exp), r0 = (size_t)offsets[0], r1 = (size_t)offsets[n_exp];
    const float *we = m->params + off;
    float *ge = m->grads + off; /* zero-token experts: moe_matmul skips them, their grads receive nothing */
    /* dact and dgu rows r0..r1-1 are overwritten (no memset) */
    moe_matmul_backward_set(dact, ge + 2 * Fe * C, dout, act, we + 2 * Fe * C, w->expert_stride, offsets,
                            (size_t)n_exp, Fe, C);
    swiglu_fused_backward_set(dgu + r0 * 2 * Fe, dact + r0 * Fe, gu + r0 * 2 * Fe, r1 - r0, Fe);
    moe_matmul_backward(din, ge, dgu, in, we, w->expert_stride, offsets, (size_t)n_exp, C, 2 * Fe);
}
