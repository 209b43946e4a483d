/* nn_check.h - helpers for the kernel tests (tests/unit/test_nn_*.c): random fills, comparison of two
 * tensors by max-norm relative error, and the central-difference gradient check.
 *
 * Gradient check: the loss is a random linear functional of the op's output, L = sum_i r_i out_i, evaluated
 * in double from the float outputs; the analytic gradient is the op's backward with dout = r into zeroed
 * buffers. Each checked element x_j is moved to the float values nearest x_j +- eps and
 *   num_j = (L(x_j+) - L(x_j-)) / (x_j+ - x_j-)
 * (the actual float step, not eps, so rounding of x_j + eps does not bias it). It passes when
 *   |ana_j - num_j| <= rtol * |num_j| + atol_frac * max_j |ana_j|   for every checked j. */
#ifndef UMOE_NN_CHECK_H
#define UMOE_NN_CHECK_H
#include <math.h>
#include <string.h>
#include "test.h"
#ifdef UMOE_OPENMP
#include <omp.h>
#endif

static inline void nc_fill(umoe_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * (2.0 * umoe_rng_uniform(r) - 1.0));
}

static inline double nc_dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* max |a - b| / max |b| (0 when both are all-zero). */
static inline double nc_relerr(const float *a, const float *b, size_t n) {
    double md = 0.0, mb = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || isnan(d)) md = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mb > 0.0 ? md / mb : md;
}

#define CHECK_REL(a, b, n, tol, what)                                                           \
    do {                                                                                        \
        double _e = nc_relerr(a, b, n);                                                         \
        CHECK(_e <= (tol), "%s: max-norm relative error %.3g > %.3g", what, _e, (double)(tol)); \
    } while (0)

typedef double (*nc_loss_fn)(void *ctx);

/* Checks every element of x when n <= 64, else 64 elements spread evenly. Returns the number of failures. */
static inline int nc_gradcheck(const char *what, nc_loss_fn loss, void *ctx, float *x, const float *ana, size_t n, float eps,
                        double rtol, double atol_frac) {
    double gmax = 0.0;
    for (size_t i = 0; i < n; i++) gmax = fabs(ana[i]) > gmax ? fabs(ana[i]) : gmax;
    size_t step = n <= 64 ? 1 : n / 64;
    int fails = 0;
    double worst = 0.0;
    for (size_t i = 0; i < n; i += step) {
        float x0 = x[i], xp = x0 + eps, xm = x0 - eps;
        x[i] = xp;
        double lp = loss(ctx);
        x[i] = xm;
        double lm = loss(ctx);
        x[i] = x0;
        double num = (lp - lm) / ((double)xp - (double)xm);
        double err = fabs(ana[i] - num), tol = rtol * fabs(num) + atol_frac * gmax;
        if (err - tol > worst) worst = err - tol;
        if (!(err <= tol)) {
            if (fails < 3)
                fprintf(stderr, "  gradcheck %s[%zu]: analytic %.7g numeric %.7g (tol %.3g)\n", what, i, ana[i], num,
                        tol);
            fails++;
        }
    }
    CHECK(fails == 0, "gradcheck %s: %d of the checked elements differ", what, fails);
    return fails;
}

/* OpenMP threads for the kernels that follow (a no-op without OpenMP) */
static inline void nc_set_threads(int t) {
#ifdef UMOE_OPENMP
    omp_set_num_threads(t);
#endif
    (void)t;
}
static inline float *nc_alloc(size_t n) { return umoe_calloc(n ? n : 1, sizeof(float), "test tensor"); }
static inline void nc_free(float *p, size_t n) { umoe_free(p, (n ? n : 1) * sizeof(float)); }
#endif
