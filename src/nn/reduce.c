/* reduce.c - reductions used by the optimizer: nn_sumsq (sum of squares in double, for the global gradient
 * norm of gradient clipping) and nn_scale_inplace (the clip's rescaling). The sum is taken over fixed blocks of NN_SUMSQ_BLOCK elements whose partial
 * sums are added in block order, so the result is the same for any number of threads (a resumed or
 * re-threaded run clips identically).
 * Does not: take the square root (the caller combines tensors first). */
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

#define NN_SUMSQ_BLOCK 16384

/* 8 double partial sums in lane = index mod 8 (a fixed-trip inner loop that vectorises without peeling), added
 * in a fixed tree: the same bits for any alignment, thread count or build */
static double block_sumsq(const float *x, size_t n) {
    double acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
#pragma omp simd
        for (size_t l = 0; l < 8; l++) acc[l] += (double)x[i + l] * (double)x[i + l];
    for (size_t l = 0; i < n; i++, l++) acc[l] += (double)x[i] * (double)x[i];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

double nn_sumsq(const float *x, size_t n) {
    size_t nb = (n + NN_SUMSQ_BLOCK - 1) / NN_SUMSQ_BLOCK;
    if (nb <= 1) return block_sumsq(x, n);
    double *part = umoe_malloc(nb * sizeof(double), "nn_sumsq partials");
    long m = (long)nb;
#pragma omp parallel for schedule(static) if (!nn_in_parallel())
    for (long b = 0; b < m; b++) {
        size_t lo = (size_t)b * NN_SUMSQ_BLOCK, hi = lo + NN_SUMSQ_BLOCK < n ? lo + NN_SUMSQ_BLOCK : n;
        part[b] = block_sumsq(x + lo, hi - lo);
    }
    double s = 0.0;
    for (size_t b = 0; b < nb; b++) s += part[b];
    umoe_free(part, nb * sizeof(double));
    return s;
}

typedef struct { float *x; float s; } scale_args;

static void scale_range(void *ctx, size_t lo, size_t hi) {
    scale_args *a = ctx;
    float *restrict x = a->x;
    float s = a->s;
#pragma omp simd
    for (size_t i = lo; i < hi; i++) x[i] *= s;
}

void nn_scale_inplace(float *x, size_t n, float s) {
    scale_args a = {.x = x, .s = s};
    nn_parallel_range(n, NN_PAR_ELEMS, scale_range, &a);
}
