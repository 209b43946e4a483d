/* rmsnorm.c - RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization", eq. 4):
 *   rstd_n = 1 / sqrt(mean_c x_nc^2 + eps),  out_nc = x_nc * rstd_n * w_c.
 * Backward (derived from the above; xhat = x * rstd):
 *   dw_c += sum_n dout_nc * xhat_nc
 *   dx_nc += rstd_n * (dout_nc w_c - xhat_nc * mean_c'(dout_nc' w_c' xhat_nc'))
 * Sums of C terms by nn_dot/nn_dot3 (vectorised, deterministic). Rows in parallel with OpenMP; dw is summed serially over rows so it does not depend on the thread count.
 * Does not: support a bias or mean-centering (that is LayerNorm). */
#include <math.h>
#include "umoe/nn.h"
#include "nn_internal.h"

typedef struct { float *out, *rstd, *din; const float *in, *w, *dout, *rs; size_t C; float eps; } rn_args;

static void fwd_rows(void *p, size_t lo, size_t hi) {
    rn_args *a = p;
    size_t C = a->C;
    for (size_t n = lo; n < hi; n++) {
        const float *x = a->in + n * C, *w = a->w;
        float *o = a->out + n * C;
        double ss = nn_dot(x, x, C);
        float r = (float)(1.0 / sqrt(ss / (double)C + (double)a->eps));
        if (a->rstd) a->rstd[n] = r;
#pragma omp simd
        for (size_t c = 0; c < C; c++) o[c] = x[c] * r * w[c];
    }
}

static void bwd_rows(void *p, size_t lo, size_t hi) {
    rn_args *a = p;
    size_t C = a->C;
    for (size_t n = lo; n < hi; n++) {
        const float *x = a->in + n * C, *d = a->dout + n * C, *w = a->w;
        float *dx = a->din + n * C;
        float r = a->rs[n];
        double dot = nn_dot3(d, w, x, C); /* sum_c dout w x (times rstd below) */
        float m = (float)(dot * r / (double)C);
#pragma omp simd
        for (size_t c = 0; c < C; c++) dx[c] += r * (d[c] * w[c] - x[c] * r * m);
    }
}

void rmsnorm_forward(float *out, float *rstd, const float *in, const float *w, size_t N, size_t C, float eps) {
    rn_args a = {.out = out, .rstd = rstd, .in = in, .w = w, .C = C, .eps = eps};
    nn_parallel_range(N, C ? NN_PAR_ELEMS / C + 1 : 1, fwd_rows, &a);
}

void rmsnorm_backward(float *din, float *dw, const float *dout, const float *in, const float *w, const float *rstd,
                      size_t N, size_t C) {
    if (din) {
        rn_args a = {.din = din, .in = in, .w = w, .dout = dout, .rs = rstd, .C = C};
        nn_parallel_range(N, C ? NN_PAR_ELEMS / C + 1 : 1, bwd_rows, &a);
    }
    if (dw)
        for (size_t n = 0; n < N; n++) {
            const float *x = in + n * C, *d = dout + n * C;
            float r = rstd[n];
#pragma omp simd
            for (size_t c = 0; c < C; c++) dw[c] += d[c] * x[c] * r;
        }
}
