/* test_nn_copy.c - the data-movement kernels of src/nn/copy.c (nn_zero, nn_copy_rows, nn_add_rows, nn_add)
 * against their serial `_naive` twins, bit for bit, with 1 and 2 threads, on sizes above the parallel threshold
 * (row strides wider than the copied block, the contiguous flat case, the output aliasing an input) and on
 * small and empty calls; bytes outside the block must stay untouched. */
#include <string.h>
#include "umoe/nn.h"
#include "nn_check.h"


#define SAME(a, b, n, what) CHECK(memcmp(a, b, (n) * sizeof(float)) == 0, "%s differs from the naive twin", what)

/* rows x cols blocks between strides ld_src, ld_dst; t threads */
static void check_shape(umoe_rng *rng, size_t rows, size_t cols, size_t lds, size_t ldd, int t) {
    size_t ns = rows * lds + 1, nd = rows * ldd + 1;
    float *src = nc_alloc(ns), *y = nc_alloc(ns), *d0 = nc_alloc(nd), *d1 = nc_alloc(nd);
    nc_fill(rng, src, ns, 2);
    nc_fill(rng, y, ns, 2);
    nc_fill(rng, d0, nd, 1);
    memcpy(d1, d0, nd * sizeof(float));
    nc_set_threads(t);
    nn_copy_rows(d1, ldd, src, lds, rows, cols);
    nc_set_threads(1);
    nn_copy_rows_naive(d0, ldd, src, lds, rows, cols);
    SAME(d1, d0, nd, "nn_copy_rows");
    nc_set_threads(t);
    nn_add_rows(d1, ldd, y, lds, rows, cols);
    nc_set_threads(1);
    nn_add_rows_naive(d0, ldd, y, lds, rows, cols);
    SAME(d1, d0, nd, "nn_add_rows");
    nc_set_threads(t);
    nn_add(d1, d1, src, nd < ns ? nd : ns); /* out aliases x */
    nc_set_threads(1);
    nn_add_naive(d0, d0, src, nd < ns ? nd : ns);
    SAME(d1, d0, nd, "nn_add");
    nc_set_threads(t);
    nn_zero(d1 + 1, nd - 2);
    nc_set_threads(1);
    nn_zero_naive(d0 + 1, nd - 2);
    SAME(d1, d0, nd, "nn_zero");
    CHECK(d1[0] == d0[0] && d1[0] != 0.0f, "nn_zero wrote before its range");
    nc_free(src, ns); nc_free(y, ns); nc_free(d0, nd); nc_free(d1, nd);
}

static void test_copy_kernels(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 120);
    int saved = 1;
#ifdef UMOE_OPENMP
    saved = omp_get_max_threads();
#endif
    for (int t = 1; t <= 2; t++) {
        check_shape(&rng, 20480, 32, 40, 48, t);   /* k_rope into one head: strided both sides */
        check_shape(&rng, 16384, 64, 72, 96, t);   /* head splits */
        check_shape(&rng, 1100, 512, 512, 512, t); /* contiguous: the flat copy */
        check_shape(&rng, 3, 5, 7, 5, t);          /* small: the calling thread */
        check_shape(&rng, 1, 1, 1, 1, t);
    }
    nc_set_threads(saved);
    /* empty calls touch nothing */
    float x[4] = {1, 2, 3, 4}, z[4] = {5, 6, 7, 8};
    nn_copy_rows(x, 2, z, 2, 0, 2);
    nn_copy_rows(x, 2, z, 2, 2, 0);
    nn_add_rows(x, 2, z, 2, 0, 2);
    nn_add(x, x, z, 0);
    nn_zero(x, 0);
    CHECK(x[0] == 1 && x[1] == 2 && x[2] == 3 && x[3] == 4, "an empty call changed the buffer");
    /* values, not only twins: a strided copy and add by hand */
    float s[6] = {1, 2, 3, 4, 5, 6}, d[4] = {0};
    nn_copy_rows(d, 2, s, 3, 2, 2); /* rows {1,2} {4,5} */
    CHECK(d[0] == 1 && d[1] == 2 && d[2] == 4 && d[3] == 5, "strided copy");
    nn_add_rows(d, 2, s + 1, 3, 2, 2); /* += {2,3} {5,6} */
    CHECK(d[0] == 3 && d[1] == 5 && d[2] == 9 && d[3] == 11, "strided add");
}

int main(void) {
    RUN(test_copy_kernels);
    TEST_MAIN_END();
}
