/* swiglu.c - the SwiGLU gate (Shazeer 2020, "GLU Variants Improve Transformer", eq. 5 with Swish_1 = SiLU):
 *   out = silu(g) * u,  silu(g) = g * sigmoid(g).
 * Backward: with s = sigmoid(g), silu'(g) = s * (1 + g * (1 - s)):
 *   dg += dout * u * silu'(g),  du += dout * silu(g).
 * Elementwise over n values (exp by the vectorisable nn_expf); the projections around it are matmuls.
 * Does not: fuse the gate/up projections. */
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
