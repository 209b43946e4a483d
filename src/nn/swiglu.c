/* swiglu.c - the SwiGLU gate (Shazeer 2020, "GLU Variants Improve Transformer", sec. 2, SwiGLU with Swish_1 = SiLU):
 *   out = silu(g) * u,  silu(g) = g * sigmoid(g).
 * Backward: with s = sigmoid(g), silu'(g) = s * (1 + g * (1 - s)):
 *   dg += dout * u * silu'(g),  du += dout * silu(g).
 * Elementwise over n values (exp by the vectorisable nn_expf); the projections around it are matmuls.
 * swiglu_fused_* take the gate and up halves from one (n, 2F) buffer (one GEMM against stacked weights);
 * swiglu_fused_backward_set overwrites dgu (the same values as adding into zeros) so callers skip a memset.
 * Large calls are split over threads (nn_parallel_range); small ones run on the calling thread.
 * Does not: run the projections (matmul.c). */
#include <stddef.h>
#include "umoe/nn.h"
#include "nn_internal.h"

typedef struct { float *out, *dg, *du; const float *g, *u, *dout; size_t F; int set; } sw_args;

static inline float sigm(float x) { return 1.0f / (1.0f + nn_expf(-x)); }

static void fwd_range(void *p, size_t lo, size_t hi) {
    sw_args *a = p;
    float *out = a->out;
    const float *g = a->g, *u = a->u;
#pragma omp simd
    for (size_t i = lo; i < hi; i++) out[i] = g[i] * sigm(g[i]) * u[i];
}

static void bwd_range(void *p, size_t lo, size_t hi) {
    sw_args *a = p;
    const float *g = a->g, *u = a->u, *d = a->dout;
    float *dg = a->dg, *du = a->du;
    if (dg && du && a->set) { /* overwrite: the fused layout's backward without a memset before it */
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float s = sigm(g[i]);
            dg[i] = d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] = d[i] * g[i] * s;
        }
    } else if (dg && du) {
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float s = sigm(g[i]);
            dg[i] += d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] += d[i] * g[i] * s;
        }
    } else if (dg) {
#pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float s = sigm(g[i]);
            dg[i] += d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        }
    } else if (du) {
#pragma omp simd
        for (size_t i = lo; i < hi; i++) du[i] += d[i] * g[i] * sigm(g[i]);
    }
}

void swiglu_forward(float *out, const float *g, const float *u, size_t n) {
    sw_args a = {.out = out, .g = g, .u = u};
    nn_parallel_range(n, NN_PAR_ELEMS, fwd_range, &a);
}

void swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    sw_args a = {.dg = dg, .du = du, .dout = dout, .g = g, .u = u};
    nn_parallel_range(n, NN_PAR_ELEMS, bwd_range, &a);
}

/* Fused layout: gu (n, 2F) rows [gate (F) | up (F)]; out (n, F). Ranges are of rows. */
static void fused_fwd_rows(void *p, size_t lo, size_t hi) {
    sw_args *a = p;
    size_t F = a->F;
    for (size_t r = lo; r < hi; r++) {
        sw_args row = {.out = a->out + r * F, .g = a->g + r * 2 * F, .u = a->g + r * 2 * F + F};
        fwd_range(&row, 0, F);
    }
}

static void fused_bwd_rows(void *p, size_t lo, size_t hi) {
    sw_args *a = p;
    size_t F = a->F;
    for (size_t r = lo; r < hi; r++) {
        sw_args row = {.dg = a->dg + r * 2 * F, .du = a->dg + r * 2 * F + F, .dout = a->dout + r * F,
                       .g = a->g + r * 2 * F, .u = a->g + r * 2 * F + F, .set = a->set};
        bwd_range(&row, 0, F);
    }
}

void swiglu_fused_forward(float *out, const float *gu, size_t n, size_t F) {
    sw_args a = {.out = out, .g = gu, .F = F};
    nn_parallel_range(n, F ? NN_PAR_ELEMS / F + 1 : 1, fused_fwd_rows, &a);
}

void swiglu_fused_backward(float *dgu, const float *dout, const float *gu, size_t n, size_t F) {
    sw_args a = {.dg = dgu, .dout = dout, .g = gu, .F = F};
    nn_parallel_range(n, F ? NN_PAR_ELEMS / F + 1 : 1, fused_bwd_rows, &a);
}

void swiglu_fused_backward_set(float *dgu, const float *dout, const float *gu, size_t n, size_t F) {
    sw_args a = {.dg = dgu, .dout = dout, .g = gu, .F = F, .set = 1};
    nn_parallel_range(n, F ? NN_PAR_ELEMS / F + 1 : 1, fused_bwd_rows, &a);
}
