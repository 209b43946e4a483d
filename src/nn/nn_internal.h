/* nn_internal.h - helpers shared by the kernels of src/nn (not a public interface).
 *   nn_gemm      C = alpha * op(A) @ op(B) + beta * C, row-major, with leading dimensions: cblas_sgemm when
 *                built with OpenBLAS (UMOE_BLAS), otherwise a plain loop implementation.
 *   nn_blas_solo_begin/end   make BLAS single-threaded around our own OpenMP regions (DESIGN.md rule 8:
 *                BLAS threads are never nested inside our parallel regions) and restore it afterwards.
 *   nn_parallel  whether an OpenMP region of our own may be opened here (not already inside one).
 * Does not: allocate, or know any model shape. */
#ifndef UMOE_NN_INTERNAL_H
#define UMOE_NN_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#ifdef UMOE_OPENMP
#include <omp.h>
#endif

/* op(A) is (M,K), op(B) is (K,N), C is (M,N); ta/tb non-zero mean the stored matrix is the transpose. */
void nn_gemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda, const float *B,
             size_t ldb, float beta, float *C, size_t ldc);

/* One GEMM of a batch for nn_gemm_jobs (same meaning as nn_gemm's arguments). */
typedef struct {
    int ta, tb;
    size_t M, N, K;
    float alpha;
    const float *A;
    size_t lda;
    const float *B;
    size_t ldb;
    float beta;
    float *C;
    size_t ldc;
} nn_gemm_job;

/* Runs independent GEMMs (disjoint outputs), each cut into chunks of C along its larger dimension: the number
 * of chunks depends on the shape only (NN_GEMM_CHUNK_FLOPS, NN_GEMM_MAX_CHUNKS), never on the thread count, so
 * the results are the same bits for any number of threads. Chunks run over the OpenMP threads (dynamic
 * schedule) with BLAS single-threaded; serially in chunk order inside a parallel region or with one thread. */
void nn_gemm_jobs(const nn_gemm_job *jobs, int n);

int nn_blas_solo_begin(void);
void nn_blas_solo_end(int saved);

/* exp(x) for float, written so that a loop of it vectorises under `#pragma omp simd` (no libm call, no
 * branches: GCC will not vectorise fmaxf or floorf here): x = n ln2 + r with n = round(x / ln2) (by the
 * 1.5 * 2^23 rounding trick, so never build with -ffast-math) and |r| <= ln2/2 (Cody-Waite split of ln2 as
 * in Cephes expf), exp(r) by its Taylor polynomial to degree 7 (truncation < 1e-7 relative), times 2^n
 * built in the exponent bits. x is clamped to [-87, 88], so the result is a normal float (exp(-87) =
 * 1.6e-38 stands in for anything smaller). Relative error about 2e-7, checked by the attention tests. */
static inline float nn_expf(float x) {
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    int32_t ni = (int32_t)n;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 +
                                                                                                      r * (1.0f / 5040)))))));
    union { int32_t i; float f; } scale = {.i = (ni + 127) << 23};
    return p * scale.f;
}

/* Deterministic vectorised sums. A `#pragma omp simd reduction` lets the compiler peel a data-dependent
 * number of leading elements to align the vector loop, so the summation order (and the last bits of the
 * result) would depend on where malloc put the buffer. Instead every sum here keeps NN_LANES partial sums
 * in a fixed lane = index mod NN_LANES, whose fixed-trip inner loop vectorises without peeling, adds the
 * lanes in a fixed tree, and adds blocks of NN_SUM_BLOCK elements in double. Same bits for any alignment,
 * thread count or build with or without OpenMP. */
#define NN_LANES 16
#define NN_SUM_BLOCK 256

static inline float nn_lanes_total(const float *acc) {
    float t8[8], t4[4];
    for (int l = 0; l < 8; l++) t8[l] = acc[l] + acc[l + 8];
    for (int l = 0; l < 4; l++) t4[l] = t8[l] + t8[l + 4];
    return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

/* sum of a[i] * b[i] over i < n, in double */
static inline double nn_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t lo = 0; lo < n; lo += NN_SUM_BLOCK) {
        size_t hi = lo + NN_SUM_BLOCK < n ? lo + NN_SUM_BLOCK : n, i = lo;
        float acc[NN_LANES] = {0};
        for (; i + NN_LANES <= hi; i += NN_LANES)
#pragma omp simd
            for (size_t l = 0; l < NN_LANES; l++) acc[l] += a[i + l] * b[i + l];
        for (size_t l = 0; i < hi; i++, l++) acc[l] += a[i] * b[i];
        s += nn_lanes_total(acc);
    }
    return s;
}

/* sum of a[i] * b[i] * c[i] over i < n, in double */
static inline double nn_dot3(const float *a, const float *b, const float *c, size_t n) {
    double s = 0.0;
    for (size_t lo = 0; lo < n; lo += NN_SUM_BLOCK) {
        size_t hi = lo + NN_SUM_BLOCK < n ? lo + NN_SUM_BLOCK : n, i = lo;
        float acc[NN_LANES] = {0};
        for (; i + NN_LANES <= hi; i += NN_LANES)
#pragma omp simd
            for (size_t l = 0; l < NN_LANES; l++) acc[l] += a[i + l] * b[i + l] * c[i + l];
        for (size_t l = 0; i < hi; i++, l++) acc[l] += a[i] * b[i] * c[i];
        s += nn_lanes_total(acc);
    }
    return s;
}

/* sum of e_i = nn_expf(x[i] - sub) over i < n, in double; writes e_i to out[i] when out is not NULL
 * (out may be x) */
static inline double nn_sum_exp(const float *x, float sub, float *out, size_t n) {
    double s = 0.0;
    for (size_t lo = 0; lo < n; lo += NN_SUM_BLOCK) {
        size_t hi = lo + NN_SUM_BLOCK < n ? lo + NN_SUM_BLOCK : n, i = lo;
        float acc[NN_LANES] = {0};
        for (; i + NN_LANES <= hi; i += NN_LANES)
#pragma omp simd
            for (size_t l = 0; l < NN_LANES; l++) {
                float e = nn_expf(x[i + l] - sub);
                if (out) out[i + l] = e;
                acc[l] += e;
            }
        for (size_t l = 0; i < hi; i++, l++) {
            float e = nn_expf(x[i] - sub);
            if (out) out[i] = e;
            acc[l] += e;
        }
        s += nn_lanes_total(acc);
    }
    return s;
}

static inline int nn_in_parallel(void) {
#ifdef UMOE_OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}

/* fn(ctx, lo, hi) over [0, n): split in equal contiguous chunks over the OpenMP threads when n >= min_par,
 * there is more than one thread and we are not inside a parallel region already; otherwise one serial call,
 * so that small calls (a row of 128 values) never pay for opening a parallel region (about a microsecond,
 * even with an if clause that is false). Chunks own disjoint index ranges: callers give each index its own
 * output, so results never depend on the thread count. */
typedef void (*nn_range_fn)(void *ctx, size_t lo, size_t hi);
static inline void nn_parallel_range(size_t n, size_t min_par, nn_range_fn fn, void *ctx) {
#ifdef UMOE_OPENMP
    if (n >= min_par && n > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel
        {
            size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
            size_t lo = n * t / nt, hi = n * (t + 1) / nt;
            if (hi > lo) fn(ctx, lo, hi);
        }
        return;
    }
#else
    (void)min_par;
#endif
    if (n) fn(ctx, 0, n);
}

/* below these sizes a kernel runs on the calling thread (elements for elementwise ops, rows x row length
 * for row ops): roughly 20 us of work, well above the cost of a parallel region */
#define NN_PAR_ELEMS 32768
#endif
