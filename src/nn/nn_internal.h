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
#ifdef UMOE_OPENMP
#include <omp.h>
#endif

/* op(A) is (M,K), op(B) is (K,N), C is (M,N); ta/tb non-zero mean the stored matrix is the transpose. */
void nn_gemm(int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda, const float *B,
             size_t ldb, float beta, float *C, size_t ldc);

int nn_blas_solo_begin(void);
void nn_blas_solo_end(int saved);

static inline int nn_in_parallel(void) {
#ifdef UMOE_OPENMP
    return omp_in_parallel();
#else
    return 0;
#endif
}
#endif
