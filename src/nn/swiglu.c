/* swiglu.c - the SwiGLU gate (Shazeer 2020, "GLU Variants Improve Transformer", sec. 2, SwiGLU with Swish_1 = SiLU):
 *   out = silu(g) * u,  silu(g) = g * sigmoid(g).
 * Backward: with s = sigmoid(g), silu'(g) = s * (1 + g * (1 - s)):
 *   dg += dout * u * silu'(g),  du += dout * silu(g).
 * Elementwise over n values (exp by the vectorisable nn_expf); the projections around it are matmuls.
 * swiglu_fused_* take the gate and up halves from one (n, 2F) buffer (one GEMM against stacked weights).
 * Does not: run the projections (matmul.c). */
#include <math.h>
#include "umoe/nn.h"
#include "nn_internal.h"

void swiglu_forward(float *out, const float *g, const float *u, size_t n) {
    long m = (long)n;
#pragma omp parallel for simd schedule(static) if (!nn_in_parallel() && n > 65536)
    for (long i = 0; i < m; i++) {
        float s = 1.0f / (1.0f + nn_expf(-g[i]));
        out[i] = g[i] * s * u[i];
    }
}

void swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    long m = (long)n;
    if (dg && du) {
#pragma omp parallel for simd schedule(static) if (!nn_in_parallel() && n > 65536)
        for (long i = 0; i < m; i++) {
            float s = 1.0f / (1.0f + nn_expf(-g[i]));
            dg[i] += dout[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] += dout[i] * g[i] * s;
        }
        return;
    }
    for (long i = 0; i < m; i++) { /* only one of the two wanted (rare) */
        float s = 1.0f / (1.0f + nn_expf(-g[i]));
        if (dg) dg[i] += dout[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
        if (du) du[i] += dout[i] * g[i] * s;
    }
}

/* Fused layout: gu (n, 2F) rows [gate (F) | up (F)] from one GEMM against stacked weights; out (n, F).
 * Rows in parallel (one row is the unit, so the thread count does not change any value). */
void swiglu_fused_forward(float *out, const float *gu, size_t n, size_t F) {
    long rows = (long)n;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && n * F > 65536)
    for (long r = 0; r < rows; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F;
        float *o = out + (size_t)r * F;
#pragma omp simd
        for (size_t i = 0; i < F; i++) {
            float s = 1.0f / (1.0f + nn_expf(-g[i]));
            o[i] = g[i] * s * u[i];
        }
    }
}

void swiglu_fused_backward(float *dgu, const float *dout, const float *gu, size_t n, size_t F) {
    long rows = (long)n;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && n * F > 65536)
    for (long r = 0; r < rows; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F, *d = dout + (size_t)r * F;
        float *dg = dgu + (size_t)r * 2 * F, *du = dg + F;
#pragma omp simd
        for (size_t i = 0; i < F; i++) {
            float s = 1.0f / (1.0f + nn_expf(-g[i]));
            dg[i] += d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] += d[i] * g[i] * s;
        }
    }
}
