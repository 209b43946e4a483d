/* gemm.c - the one general matrix multiply that the kernels of src/nn build on (matmul, attention, the
 * grouped expert GEMMs through matmul). With UMOE_BLAS it is OpenBLAS cblas_sgemm; without it a loop
 * implementation, parallel over rows of C with OpenMP when not already inside a parallel region.
 * Also the guard that keeps OpenBLAS single-threaded inside our own OpenMP regions, and the report of
 * which OpenBLAS kernel family is loaded (nn_blas_corename / nn_blas_better_coretype, see nn.h).
 * Does not: check shapes (callers own their dimensions) beyond asserting they fit BLAS's int. */
#include <limits.h>
#include "nn_internal.h"
#include "umoe/common.h"
#ifdef UMOE_BLAS
#include <cblas.h>
#endif

int nn_blas_solo_begin(void) {
#if defined(UMOE_BLAS) && defined(UMOE_OPENMP)
    int n = openblas_get_num_threads();
    if (n != 1) openblas_set_num_threads(1);
    return n;
#else
    return 1;
#endif
}

void nn_blas_solo_end(int saved) {
#if defined(UMOE_BLAS) && defined(UMOE_OPENMP)
    if (saved != 1) openblas_set_num_threads(saved);
#else
    (void)saved;
#endif
}

#ifndef UMOE_BLAS
/* One row i of C: C[i,:] = alpha * op(A)[i,:] @ op(B) + beta * C[i,:]. */
static void gemm_row(int ta, int tb, size_t i, size_t N, size_t K, float alpha, const float *A, size_t lda,
                     const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    float *c = C + i * ldc;
    if (beta == 0.0f) for (size_t j = 0; j < N; j++) c[j] = 0.0f;
    else if (beta != 1.0f) for (size_t j = 0; j < N; j++) c[j] *= beta;
    if (!tb) { /* B rows are contiguous along j: axpy form */
        for (size_t k = 0; k < K; k++) {
            float a = alpha * (ta ? A[k * lda + i] : A[i * lda + k]);
            const float *b = B + k * ldb;
            for (size_t j = 0; j < N; j++) c[j] += a * b[j];
        }
    } else { /* B stored (N,K): dot form */
        for (size_t j = 0; j < N; j++) {
            const float *b = B + j * ldb;
            float s = 0.0f;
            if (!ta) {
                const float *a = A + i * lda;
                for (size_t k = 0; k < K; k++) s += a[k] * b[k];
            } else {
                for (size_t k = 0; k < K; k++) s += A[k * lda + i] * b[k];
            }
            c[j] += alpha * s;
        }
    }
}

typedef struct { int ta, tb; size_t N, K; float alpha; const float *A; size_t lda; const float *B; size_t ldb;
                 float beta; float *C; size_t ldc; } gemm_args;

static void gemm_rows(void *p, size_t lo, size_t hi) {
    gemm_args *a = p;
    for (size_t i = lo; i < hi; i++)
        gemm_row(a->ta, a->tb, i, a->N, a->K, a->alpha, a->A, a->lda, a->B, a->ldb, a->beta, a->C, a->ldc);
}
#endif

void nn_gemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda, const float *B,
             size_t ldb, float beta, float *C, size_t ldc) {
    if (M == 0 || N == 0) return;
#ifdef UMOE_BLAS
    if (K == 0) { /* OpenBLAS rejects lda < 1; the product is empty: C = beta * C */
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    UMOE_ASSERT(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
                alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
#else
    gemm_args a = {ta, tb, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
    nn_parallel_range(M, NN_PAR_ELEMS / (N * (K + 1)) + 1, gemm_rows, &a);
#endif
}

/* A chunk of at least this many FLOPs (2MNK) is worth a thread: about 30 us of sgemm at 130 GFLOP/s, well
 * above the cost of waking a sleeping OpenMP worker; at most NN_GEMM_MAX_CHUNKS chunks per GEMM, so that the
 * operand that every chunk packs again (B when M is cut, A when N is cut) is packed at most that often. */
#define NN_GEMM_CHUNK_FLOPS 4e6
#define NN_GEMM_MAX_CHUNKS 4
#define NN_GEMM_ALIGN 16 /* chunk edges on multiples of 16 rows/columns (the AVX-512 sgemm tile) */
/* A chunk spans at least this many rows (or columns) of C: every chunk packs the whole other operand again
 * (K x the other dimension), which costs about as much as ~25 FLOPs per element, so a chunk of m rows pays
 * ~25/(2m) extra: ~5% at 256 rows, but ~25% at 48 (measured: the dW GEMMs of tiny-moe, K = 1024 tokens and
 * 48-row chunks, made one-thread training slower) */
#define NN_GEMM_MIN_CHUNK_DIM 256

static size_t gemm_n_chunks(const nn_gemm_job *j) {
    if (j->M == 0 || j->N == 0) return 0;
    double fl = 2.0 * (double)j->M * (double)j->N * (double)j->K;
    size_t dim = j->M >= j->N ? j->M : j->N, n = (size_t)(fl / NN_GEMM_CHUNK_FLOPS);
    if (n > NN_GEMM_MAX_CHUNKS) n = NN_GEMM_MAX_CHUNKS;
    if (n > dim / NN_GEMM_MIN_CHUNK_DIM) n = dim / NN_GEMM_MIN_CHUNK_DIM;
    return n ? n : 1;
}

/* chunk c of nc: rows (M >= N) or columns [lo, hi) of C, edges rounded to NN_GEMM_ALIGN */
static void gemm_chunk(const nn_gemm_job *j, size_t c, size_t nc) {
    int rows = j->M >= j->N;
    size_t dim = rows ? j->M : j->N;
    size_t lo = c == 0 ? 0 : (dim * c / nc) / NN_GEMM_ALIGN * NN_GEMM_ALIGN;
    size_t hi = c + 1 == nc ? dim : (dim * (c + 1) / nc) / NN_GEMM_ALIGN * NN_GEMM_ALIGN;
    if (hi <= lo) return;
    if (rows) /* rows lo..hi of op(A) and C */
        nn_gemm(j->ta, j->tb, hi - lo, j->N, j->K, j->alpha, j->ta ? j->A + lo : j->A + lo * j->lda, j->lda, j->B,
                j->ldb, j->beta, j->C + lo * j->ldc, j->ldc);
    else /* columns lo..hi of op(B) and C */
        nn_gemm(j->ta, j->tb, j->M, hi - lo, j->K, j->alpha, j->A, j->lda, j->tb ? j->B + lo * j->ldb : j->B + lo,
                j->ldb, j->beta, j->C + lo, j->ldc);
}

void nn_gemm_jobs(const nn_gemm_job *jobs, int n) {
    size_t nc[8], total = 0;
    UMOE_ASSERT(n >= 0 && n <= 8);
    for (int i = 0; i < n; i++) total += nc[i] = gemm_n_chunks(&jobs[i]);
    /* BLAS is single-threaded for every chunk, also on the serial path: a multi-threaded sgemm may give other
     * bits (OpenBLAS picks its kernels by thread count), and its thread pool would spin (sched_yield) next to
     * our OpenMP workers on the same cores */
    int saved = nn_blas_solo_begin();
#ifdef UMOE_OPENMP
    if (total > 1 && omp_get_max_threads() > 1 && !omp_in_parallel()) {
        long nt = (long)total;
#pragma omp parallel for schedule(dynamic, 1)
        for (long t = 0; t < nt; t++) {
            size_t k = (size_t)t;
            int i = 0;
            while (k >= nc[i]) k -= nc[i++];
            gemm_chunk(&jobs[i], k, nc[i]);
        }
        nn_blas_solo_end(saved);
        return;
    }
#endif
    for (int i = 0; i < n; i++)
        for (size_t c = 0; c < nc[i]; c++) gemm_chunk(&jobs[i], c, nc[i]);
    nn_blas_solo_end(saved);
}

#ifdef UMOE_BLAS
char *openblas_get_corename(void); /* OpenBLAS extension, not declared by every cblas.h */
#endif

const char *nn_blas_corename(void) {
#ifdef UMOE_BLAS
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
#else
    return "none";
#endif
}

const char *nn_blas_better_coretype(void) {
#if defined(UMOE_BLAS) && (defined(__x86_64__) || defined(__i386__))
    /* OpenBLAS x86 kernel families older than AVX2 (names as openblas_get_corename reports them) */
    static const char *old[] = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Katmai",
                                "Coppermine", "Northwood", "Banias", "Sandybridge", "Barcelona", "Bulldozer"};
    const char *c = nn_blas_corename();
    int is_old = 0, is_haswell = 0;
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) is_old |= umoe_streq_nocase(c, old[i]);
    is_haswell = umoe_streq_nocase(c, "Haswell") || umoe_streq_nocase(c, "Zen");
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    if ((is_old || is_haswell) && avx512) return "SkylakeX";
    if (is_old && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
    return NULL;
}
