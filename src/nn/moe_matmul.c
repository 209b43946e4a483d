/* moe_matmul.c - the grouped expert GEMM: for every expert e, the rows offsets[e]..offsets[e+1]-1 of the
 * grouped buffer (moe_group's order) go through that expert's weight w_e = w + e*wstride, an (O,C) matrix:
 * one sgemm per expert on its contiguous rows (forward; backward one for din and one for dw).
 * Threads: with at least as many experts as OpenMP threads, experts run in parallel (dynamic schedule, so a
 * heavily loaded expert does not hold the others back); otherwise one after the other. BLAS is
 * single-threaded in both cases, so each expert's sgemm gives the same bits for any thread count. Each expert owns its rows of out/din and its slice of dw,
 * so there are no races and the result does not depend on the thread count.
 * moe_matmul_backward_set overwrites din (sgemm beta 0) instead of adding, so callers skip a memset.
 * Does not: route, permute or apply the activation (router.c, moe_dispatch.c, swiglu.c). */
#include "umoe/nn.h"
#include "nn_internal.h"

static int experts_in_parallel(size_t E) {
#ifdef UMOE_OPENMP
    int t = omp_get_max_threads();
    return !nn_in_parallel() && t > 1 && E >= (size_t)t;
#else
    (void)E;
    return 0;
#endif
}

void moe_matmul_forward(float *out, const float *in, const float *w, size_t wstride, const int32_t *offsets, size_t E,
                        size_t C, size_t O) {
    int par = experts_in_parallel(E);
    int saved = nn_blas_solo_begin(); /* one single-threaded sgemm per expert, whatever the thread count */
    long ne = (long)E;
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (long e = 0; e < ne; e++) {
        size_t r0 = (size_t)offsets[e], n = (size_t)(offsets[e + 1] - offsets[e]);
        /* one whole sgemm per expert (matmul_forward would cut it into chunks: here the experts are the work
         * units) */
        nn_gemm(0, 1, n, O, C, 1.0f, in + r0 * C, C, w + (size_t)e * wstride, C, 0.0f, out + r0 * O, O);
    }
    nn_blas_solo_end(saved);
}

static void backward_impl(float *din, float *dw, const float *dout, const float *in, const float *w, size_t wstride,
                          const int32_t *offsets, size_t E, size_t C, size_t O, float din_beta) {
    int par = experts_in_parallel(E);
    int saved = nn_blas_solo_begin(); /* one single-threaded sgemm per expert, whatever the thread count */
    long ne = (long)E;
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (long e = 0; e < ne; e++) {
        size_t r0 = (size_t)offsets[e], n = (size_t)(offsets[e + 1] - offsets[e]);
        if (n == 0) continue;
        const float *we = w + (size_t)e * wstride;
        if (din) nn_gemm(0, 0, n, C, O, 1.0f, dout + r0 * O, O, we, C, din_beta, din + r0 * C, C);
        if (dw) nn_gemm(1, 0, O, C, n, 1.0f, dout + r0 * O, O, in + r0 * C, C, 1.0f, dw + (size_t)e * wstride, C);
    }
    nn_blas_solo_end(saved);
}

void moe_matmul_backward(float *din, float *dw, const float *dout, const float *in, const float *w, size_t wstride,
                         const int32_t *offsets, size_t E, size_t C, size_t O) {
    backward_impl(din, dw, dout, in, w, wstride, offsets, E, C, O, 1.0f);
}

/* din_beta 0: sgemm overwrites each expert's din rows (the same values as adding into zeros) */
void moe_matmul_backward_set(float *din, float *dw, const float *dout, const float *in, const float *w,
                             size_t wstride, const int32_t *offsets, size_t E, size_t C, size_t O) {
    backward_impl(din, dw, dout, in, w, wstride, offsets, E, C, O, 0.0f);
}
