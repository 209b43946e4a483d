/* rmsnorm.c - RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization", eq. 4):
 *   rstd_n = 1 / sqrt(mean_c x_nc^2 + eps),  out_nc = x_nc * rstd_n * w_c.
 * Backward (derived from the above; xhat = x * rstd):
 *   dw_c += sum_n dout_nc * xhat_nc
 *   dx_nc += rstd_n * (dout_nc w_c - xhat_nc * mean_c'(dout_nc' w_c' xhat_nc'))
 * Rows in parallel with OpenMP; dw is summed serially over rows so it does not depend on the thread count.
 * Does not: support a bias or mean-centering (that is LayerNorm). */
#include <math.h>
#include "umoe/nn.h"
#include "nn_internal.h"

void rmsnorm_forward(float *out, float *rstd, const float *in, const float *w, size_t N, size_t C, float eps) {
    long n_rows = (long)N;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && N * C > 16384)
    for (long n = 0; n < n_rows; n++) {
        const float *x = in + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double ss = 0.0;
        for (size_t c = 0; c < C; c++) ss += (double)x[c] * x[c];
        float r = (float)(1.0 / sqrt(ss / (double)C + (double)eps));
        if (rstd) rstd[n] = r;
        for (size_t c = 0; c < C; c++) o[c] = x[c] * r * w[c];
    }
}

void rmsnorm_backward(float *din, float *dw, const float *dout, const float *in, const float *w, const float *rstd,
                      size_t N, size_t C) {
    if (din) {
        long n_rows = (long)N;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && N * C > 16384)
        for (long n = 0; n < n_rows; n++) {
            const float *x = in + (size_t)n * C, *d = dout + (size_t)n * C;
            float *dx = din + (size_t)n * C;
            float r = rstd[n];
            double dot = 0.0; /* sum_c dout w xhat */
            for (size_t c = 0; c < C; c++) dot += (double)d[c] * w[c] * x[c] * r;
            float m = (float)(dot / (double)C);
            for (size_t c = 0; c < C; c++) dx[c] += r * (d[c] * w[c] - x[c] * r * m);
        }
    }
    if (dw)
        for (size_t n = 0; n < N; n++) {
            const float *x = in + n * C, *d = dout + n * C;
            float r = rstd[n];
            for (size_t c = 0; c < C; c++) dw[c] += d[c] * x[c] * r;
        }
}
