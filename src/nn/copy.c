/* copy.c - data movement over the threads: zeroing, strided row copies, row accumulation and the residual add,
 * for the scratch buffers and the glue between kernels (MLA's head splits, the MTP concatenation, the residual
 * branches). On two cores a serial memset or copy of a few MB leaves one core idle for its whole duration;
 * these split the rows (or elements) into equal contiguous chunks (nn_parallel_range) and run the plain loop
 * on each, so every element gets the same operation in the same order for any thread count (same bits).
 * Small calls (under NN_PAR_ELEMS elements) run on the calling thread. Each has a `_naive` twin (the plain
 * serial loop) that the tests compare with.
 * Does not: convert types or reduce across elements (nn_add_rows adds one source per call: callers that sum
 * several sources call it once per source, in their fixed order). */
#include <string.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

typedef struct { float *dst; const float *a, *b; size_t ldd, lds, cols; } cp_args;

static void zero_range(void *ctx, size_t lo, size_t hi) {
    cp_args *c = ctx;
    memset(c->dst + lo, 0, (hi - lo) * sizeof(float));
}

static void copy_flat_range(void *ctx, size_t lo, size_t hi) {
    cp_args *c = ctx;
    memcpy(c->dst + lo, c->a + lo, (hi - lo) * sizeof(float));
}

static void copy_rows_range(void *ctx, size_t lo, size_t hi) {
    cp_args *c = ctx;
    for (size_t r = lo; r < hi; r++) memcpy(c->dst + r * c->ldd, c->a + r * c->lds, c->cols * sizeof(float));
}

static void add_rows_range(void *ctx, size_t lo, size_t hi) {
    cp_args *c = ctx;
    for (size_t r = lo; r < hi; r++) {
        float *restrict d = c->dst + r * c->ldd;
        const float *restrict s = c->a + r * c->lds;
#pragma omp simd
        for (size_t k = 0; k < c->cols; k++) d[k] += s[k];
    }
}

static void add_range(void *ctx, size_t lo, size_t hi) {
    cp_args *c = ctx;
    float *d = c->dst;
    const float *x = c->a, *y = c->b;
    /* out may be x or y (elementwise, each index read before it is written) */
#pragma omp simd
    for (size_t i = lo; i < hi; i++) d[i] = x[i] + y[i];
}

/* rows per chunk so that a chunk is worth a thread */
static size_t min_rows(size_t cols) { return NN_PAR_ELEMS / (cols + 1) + 1; }

void nn_zero(float *x, size_t n) {
    cp_args c = {.dst = x};
    nn_parallel_range(n, NN_PAR_ELEMS, zero_range, &c);
}

void nn_copy_rows(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols) {
    if (!cols || !rows) return;
    cp_args c = {.dst = dst, .a = src, .ldd = ld_dst, .lds = ld_src, .cols = cols};
    if (ld_dst == cols && ld_src == cols) nn_parallel_range(rows * cols, NN_PAR_ELEMS, copy_flat_range, &c);
    else nn_parallel_range(rows, min_rows(cols), copy_rows_range, &c);
}

void nn_add_rows(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols) {
    if (!cols || !rows) return;
    cp_args c = {.dst = dst, .a = src, .ldd = ld_dst, .lds = ld_src, .cols = cols};
    nn_parallel_range(rows, min_rows(cols), add_rows_range, &c);
}

void nn_add(float *out, const float *x, const float *y, size_t n) {
    cp_args c = {.dst = out, .a = x, .b = y};
    nn_parallel_range(n, NN_PAR_ELEMS, add_range, &c);
}

/* ---- naive twins: the serial loops ---- */
void nn_zero_naive(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.0f;
}

void nn_copy_rows_naive(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < cols; k++) dst[r * ld_dst + k] = src[r * ld_src + k];
}

void nn_add_rows_naive(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++)
        for (size_t k = 0; k < cols; k++) dst[r * ld_dst + k] += src[r * ld_src + k];
}

void nn_add_naive(float *out, const float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] + y[i];
}
