/* test_nn_matmul.c - matmul (the linear layer): optimised (BLAS) vs naive twin, finite-difference gradients,
 * accumulate semantics, and the edge cases the grouped expert GEMMs hit (zero rows, one row). */
#include "umoe/nn.h"
#include "nn_check.h"

typedef struct { float *out, *in, *w, *b, *r; size_t N, C, O; } mm_ctx;

static double mm_loss(void *p) {
    mm_ctx *c = p;
    matmul_forward(c->out, c->in, c->w, c->b, c->N, c->C, c->O);
    return nc_dot(c->out, c->r, c->N * c->O);
}

/* optimised vs naive, forward and backward, with and without bias; tolerance 1e-5 max-norm relative */
static void test_matmul_vs_naive(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 1);
    size_t N = 37, C = 29, O = 23;
    float *in = nc_alloc(N * C), *w = nc_alloc(O * C), *b = nc_alloc(O), *o1 = nc_alloc(N * O), *o2 = nc_alloc(N * O);
    float *d = nc_alloc(N * O), *di1 = nc_alloc(N * C), *di2 = nc_alloc(N * C), *dw1 = nc_alloc(O * C),
          *dw2 = nc_alloc(O * C), *db1 = nc_alloc(O), *db2 = nc_alloc(O);
    nc_fill(&rng, in, N * C, 1); nc_fill(&rng, w, O * C, 1); nc_fill(&rng, b, O, 1); nc_fill(&rng, d, N * O, 1);
    for (int withb = 0; withb < 2; withb++) {
        matmul_forward(o1, in, w, withb ? b : NULL, N, C, O);
        matmul_forward_naive(o2, in, w, withb ? b : NULL, N, C, O);
        CHECK_REL(o1, o2, N * O, 1e-5, "forward");
    }
    /* grads start non-zero (accumulate into existing values) */
    nc_fill(&rng, di1, N * C, 1); memcpy(di2, di1, N * C * sizeof(float));
    nc_fill(&rng, dw1, O * C, 1); memcpy(dw2, dw1, O * C * sizeof(float));
    nc_fill(&rng, db1, O, 1); memcpy(db2, db1, O * sizeof(float));
    matmul_backward(di1, dw1, db1, d, in, w, N, C, O);
    matmul_backward_naive(di2, dw2, db2, d, in, w, N, C, O);
    CHECK_REL(di1, di2, N * C, 1e-5, "din");
    CHECK_REL(dw1, dw2, O * C, 1e-5, "dw");
    CHECK_REL(db1, db2, O, 1e-5, "dbias");
    nc_free(in, N * C); nc_free(w, O * C); nc_free(b, O); nc_free(o1, N * O); nc_free(o2, N * O); nc_free(d, N * O);
    nc_free(di1, N * C); nc_free(di2, N * C); nc_free(dw1, O * C); nc_free(dw2, O * C); nc_free(db1, O); nc_free(db2, O);
}

/* central differences, eps 1e-2, rtol 1e-2, atol 1e-3 of the largest gradient */
static void test_matmul_gradcheck(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 2);
    mm_ctx c = {.N = 4, .C = 6, .O = 5};
    c.in = nc_alloc(c.N * c.C); c.w = nc_alloc(c.O * c.C); c.b = nc_alloc(c.O); c.out = nc_alloc(c.N * c.O);
    c.r = nc_alloc(c.N * c.O);
    nc_fill(&rng, c.in, c.N * c.C, 1); nc_fill(&rng, c.w, c.O * c.C, 1); nc_fill(&rng, c.b, c.O, 1);
    nc_fill(&rng, c.r, c.N * c.O, 1);
    float *di = nc_alloc(c.N * c.C), *dw = nc_alloc(c.O * c.C), *db = nc_alloc(c.O);
    matmul_backward(di, dw, db, c.r, c.in, c.w, c.N, c.C, c.O);
    nc_gradcheck("din", mm_loss, &c, c.in, di, c.N * c.C, 1e-2f, 1e-2, 1e-3);
    nc_gradcheck("dw", mm_loss, &c, c.w, dw, c.O * c.C, 1e-2f, 1e-2, 1e-3);
    nc_gradcheck("dbias", mm_loss, &c, c.b, db, c.O, 1e-2f, 1e-2, 1e-3);
    /* accumulate: a second call doubles every gradient; NULL buffers are skipped */
    float *di2 = nc_alloc(c.N * c.C);
    memcpy(di2, di, c.N * c.C * sizeof(float));
    matmul_backward(di, NULL, NULL, c.r, c.in, c.w, c.N, c.C, c.O);
    for (size_t i = 0; i < c.N * c.C; i++) CHECK_CLOSE(di[i], 2.0f * di2[i], 1e-6, 1e-7, "din doubled");
    nc_free(di2, c.N * c.C);
    nc_free(di, c.N * c.C); nc_free(dw, c.O * c.C); nc_free(db, c.O);
    nc_free(c.in, c.N * c.C); nc_free(c.w, c.O * c.C); nc_free(c.b, c.O); nc_free(c.out, c.N * c.O);
    nc_free(c.r, c.N * c.O);
}

/* N = 0 (an expert with no tokens) touches nothing; N = 1 matches naive; a row slice of a grouped buffer
 * through matmul equals the same rows of the full product */
static void test_matmul_edges(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 3);
    size_t C = 8, O = 6, N = 10;
    float *in = nc_alloc(N * C), *w = nc_alloc(O * C), *o = nc_alloc(N * O), *o2 = nc_alloc(N * O);
    float *dw = nc_alloc(O * C), *db = nc_alloc(O);
    nc_fill(&rng, in, N * C, 1); nc_fill(&rng, w, O * C, 1);
    for (size_t i = 0; i < N * O; i++) o[i] = 7.0f;
    matmul_forward(o, in, w, NULL, 0, C, O);
    matmul_backward(NULL, dw, db, o, in, w, 0, C, O);
    CHECK(o[0] == 7.0f, "N=0 wrote out");
    double s = 0; for (size_t i = 0; i < O * C; i++) s += fabs(dw[i]);
    for (size_t i = 0; i < O; i++) s += fabs(db[i]);
    CHECK(s == 0.0, "N=0 changed dw/dbias");
    matmul_forward(o, in, w, NULL, 1, C, O);
    matmul_forward_naive(o2, in, w, NULL, 1, C, O);
    CHECK_REL(o, o2, O, 1e-5, "N=1");
    matmul_forward(o, in, w, NULL, N, C, O);
    matmul_forward(o2, in + 3 * C, w, NULL, 4, C, O);
    CHECK_REL(o2, o + 3 * O, 4 * O, 1e-6, "row slice");
    nc_free(in, N * C); nc_free(w, O * C); nc_free(o, N * O); nc_free(o2, N * O); nc_free(dw, O * C); nc_free(db, O);
}

/* the BLAS report: a kernel name, and a suggestion only of a family the CPU runs */
static void test_blas_info(void) {
    const char *c = nn_blas_corename(), *b = nn_blas_better_coretype();
    CHECK(c && c[0], "empty core name");
    CHECK(!b || !strcmp(b, "SkylakeX") || !strcmp(b, "Haswell"), "unexpected suggestion %s", b);
    if (b) CHECK(strcmp(b, c) != 0, "suggests the kernel already in use");
}

int main(void) {
    RUN(test_matmul_vs_naive);
    RUN(test_matmul_gradcheck);
    RUN(test_matmul_edges);
    RUN(test_blas_info);
    TEST_MAIN_END();
}
