/* moe_matmul.c - the grouped expert GEMM: for every expert e, the rows offsets[e]..offsets[e+1]-1 of the
 * grouped buffer (moe_group's order) go through that expert's weight w_e = w + e*wstride, an (O,C) matrix:
 * one matmul (one sgemm) per expert on its contiguous rows, forward and backward.
 * Threads: with at least as many experts as OpenMP threads, experts run in parallel (dynamic schedule, so a
 * heavily loaded expert does not hold the others back) with BLAS single-threaded inside; otherwise one
 * after the other and BLAS uses its own threads. Each expert owns its rows of out/din and its slice of dw,
 * so there are no races and the result does not depend on the thread count.
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
    int saved = par ? nn_blas_solo_begin() : 1;
    long ne = (long)E;
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (long e = 0; e < ne; e++) {
        size_t r0 = (size_t)offsets[e], n = (size_t)(offsets[e + 1] - offsets[e]);
        matmul_forward(out + r0 * O, in + r0 * C, w + (size_t)e * wstride, NULL, n, C, O);
    }
    if (par) nn_blas_solo_end(saved);
}

void moe_matmul_backward(float *din, float *dw, const float *dout, const float *in, const float *w, size_t wstride,
                         const int32_t *offsets, size_t E, size_t C, size_t O) {
    int par = experts_in_parallel(E);
    int saved = par ? nn_blas_solo_begin() : 1;
    long ne = (long)E;
#pragma omp parallel for schedule(dynamic, 1) if (par)
    for (long e = 0; e < ne; e++) {
        size_t r0 = (size_t)offsets[e], n = (size_t)(offsets[e + 1] - offsets[e]);
        matmul_backward(din ? din + r0 * C : NULL, dw ? dw + (size_t)e * wstride : NULL, NULL, dout + r0 * O,
                        in + r0 * C, w + (size_t)e * wstride, n, C, O);
    }
    if (par) nn_blas_solo_end(saved);
}
