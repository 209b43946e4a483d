/* matmul.c - the linear layer: out (N,O) = in (N,C) @ w(O,C)^T + bias, and its backward.
 * Forward/backward go through nn_gemm (OpenBLAS sgemm when built with it), so a grouped expert GEMM is one
 * call of matmul_* on that expert's contiguous rows. The _naive twins are plain loops used by the tests.
 * FLOPs: forward 2NCO; backward 4NCO (din and dw).
 * Does not: own threads when called from inside a caller's OpenMP region (BLAS then runs as configured). */
#include "umoe/nn.h"
#include "nn_internal.h"

void matmul_forward(float *out, const float *in, const float *w, const float *bias, size_t N, size_t C, size_t O) {
    if (N == 0 || O == 0) return;
    float beta = 0.0f;
    if (bias) {
        for (size_t n = 0; n < N; n++)
            for (size_t o = 0; o < O; o++) out[n * O + o] = bias[o];
        beta = 1.0f;
    }
    nn_gemm_job j = {0, 1, N, O, C, 1.0f, in, C, w, C, beta, out, O};
    nn_gemm_jobs(&j, 1);
}

/* din_beta 1 accumulates into din, 0 overwrites it (same bits as accumulating into a zeroed din: sgemm with
 * beta 0 clears C and then adds the product, so callers may drop their memset). */
static void backward_impl(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                          size_t N, size_t C, size_t O, float din_beta) {
    if (N == 0 || O == 0) {
        if (din && din_beta == 0.0f) for (size_t i = 0; i < N * C; i++) din[i] = 0.0f;
        return;
    }
    nn_gemm_job j[2];
    int n = 0;
    if (din) j[n++] = (nn_gemm_job){0, 0, N, C, O, 1.0f, dout, O, w, C, din_beta, din, C}; /* (N,O) @ (O,C) */
    if (dw) j[n++] = (nn_gemm_job){1, 0, O, C, N, 1.0f, dout, O, in, C, 1.0f, dw, C};      /* (O,N) @ (N,C) */
    nn_gemm_jobs(j, n); /* din and dw are independent: their chunks share the threads */
    if (dbias)
        for (size_t n = 0; n < N; n++) {
            const float *d = dout + n * O;
            for (size_t o = 0; o < O; o++) dbias[o] += d[o];
        }
}

void matmul_backward(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                     size_t N, size_t C, size_t O) {
    backward_impl(din, dw, dbias, dout, in, w, N, C, O, 1.0f);
}

void matmul_backward_set(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                         size_t N, size_t C, size_t O) {
    backward_impl(din, dw, dbias, dout, in, w, N, C, O, 0.0f);
}

void matmul_forward_naive(float *out, const float *in, const float *w, const float *bias, size_t N, size_t C,
                          size_t O) {
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < O; o++) {
            float s = bias ? bias[o] : 0.0f;
            for (size_t c = 0; c < C; c++) s += in[n * C + c] * w[o * C + c];
            out[n * O + o] = s;
        }
}

void matmul_backward_naive(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                           size_t N, size_t C, size_t O) {
    for (size_t n = 0; n < N; n++)
        for (size_t o = 0; o < O; o++) {
            float d = dout[n * O + o];
            for (size_t c = 0; c < C; c++) {
                if (din) din[n * C + c] += d * w[o * C + c];
                if (dw) dw[o * C + c] += d * in[n * C + c];
            }
            if (dbias) dbias[o] += d;
        }
}
