/* test_nn_optim.c - AdamW against a direct double evaluation of Loshchilov & Hutter's update over several
 * steps (bias correction, decoupled decay), nn_sumsq (double accumulation, independent of blocks), and the
 * one-pass optimizer adamw_update_many against its naive twin. */
#include "umoe/nn.h"
#include "nn_check.h"
#ifdef UMOE_OPENMP
#include <omp.h>
#endif

/* 5 steps with changing gradients; reference in double; tolerance 1e-5 relative */
static void test_adamw_reference(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 90);
    size_t n = 7;
    float p[7], m[7] = {0}, v[7] = {0}, g[7];
    double pr[7], mr[7] = {0}, vr[7] = {0};
    nc_fill(&rng, p, n, 1);
    for (size_t i = 0; i < n; i++) pr[i] = p[i];
    double lr = 1e-2, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
    for (int t = 1; t <= 5; t++) {
        nc_fill(&rng, g, n, 2);
        adamw_update(p, g, m, v, n, (float)lr, (float)b1, (float)b2, (float)eps, (float)wd, t);
        for (size_t i = 0; i < n; i++) {
            mr[i] = b1 * mr[i] + (1 - b1) * g[i];
            vr[i] = b2 * vr[i] + (1 - b2) * (double)g[i] * g[i];
            double mh = mr[i] / (1 - pow(b1, t)), vh = vr[i] / (1 - pow(b2, t));
            pr[i] -= lr * (mh / (sqrt(vh) + eps) + wd * pr[i]);
        }
    }
    for (size_t i = 0; i < n; i++) {
        CHECK_CLOSE(p[i], pr[i], 1e-5, 1e-7, "param");
        CHECK_CLOSE(m[i], mr[i], 1e-5, 1e-8, "m");
        CHECK_CLOSE(v[i], vr[i], 1e-5, 1e-9, "v");
    }
}

/* step 1 with bias correction moves every parameter by lr * sign(g) (|mhat / sqrt(vhat)| = 1); zero
 * gradient with wd only shrinks p by the factor (1 - lr wd) */
static void test_adamw_properties(void) {
    float p[3] = {1, -2, 0.5f}, g[3] = {0.3f, -5, 1e-3f}, m[3] = {0}, v[3] = {0};
    adamw_update(p, g, m, v, 3, 0.1f, 0.9f, 0.999f, 1e-12f, 0.0f, 1);
    CHECK_CLOSE(p[0], 0.9, 1e-5, 0, "step 1");
    CHECK_CLOSE(p[1], -1.9, 1e-5, 0, "step 1 negative");
    CHECK_CLOSE(p[2], 0.4, 1e-4, 0, "step 1 small gradient");
    float q[2] = {2, -4}, z[2] = {0, 0}, m2[2] = {0}, v2[2] = {0};
    adamw_update(q, z, m2, v2, 2, 0.1f, 0.9f, 0.999f, 1e-8f, 0.5f, 3);
    CHECK_CLOSE(q[0], 2 * 0.95, 1e-6, 0, "pure decay");
    CHECK_CLOSE(q[1], -4 * 0.95, 1e-6, 0, "pure decay");
}

/* nn_sumsq against a double loop on a length that spans several blocks, and the same with 1 and 2 threads
 * (bit-identical) */
static void test_sumsq(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 91);
    size_t n = 100003;
    float *x = nc_alloc(n);
    nc_fill(&rng, x, n, 3);
    double ref = 0; for (size_t i = 0; i < n; i++) ref += (double)x[i] * x[i];
    double s1 = nn_sumsq(x, n);
    CHECK_CLOSE(s1, ref, 1e-12, 0, "sumsq");
    CHECK(nn_sumsq(x, 0) == 0.0, "empty");
    CHECK_CLOSE(nn_sumsq(x, 5), (double)x[0] * x[0] + (double)x[1] * x[1] + (double)x[2] * x[2] +
                                    (double)x[3] * x[3] + (double)x[4] * x[4], 1e-15, 0, "short");
#ifdef UMOE_OPENMP
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
    double s2 = nn_sumsq(x, n);
    omp_set_num_threads(saved);
    CHECK(s1 == s2, "thread count changed the sum: %.17g vs %.17g", s1, s2);
#endif
    nc_free(x, n);
}

/* nn_scale_inplace (the clip's rescaling) equals the plain loop element for element, on a length past the
 * parallel threshold, with 2 threads where OpenMP is built in */
static void test_scale_inplace(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 92);
    size_t n = 100003;
    float *x = nc_alloc(n), *ref = nc_alloc(n);
    nc_fill(&rng, x, n, 3);
    float s = 0.3721f;
    for (size_t i = 0; i < n; i++) ref[i] = x[i] * s;
#ifdef UMOE_OPENMP
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
#endif
    nn_scale_inplace(x, n, s);
#ifdef UMOE_OPENMP
    omp_set_num_threads(saved);
#endif
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += x[i] != ref[i];
    CHECK(bad == 0, "%zu of %zu elements differ from x * s", bad, n);
    nn_scale_inplace(x, 0, 2.0f); /* n 0: nothing touched */
    CHECK(x[0] == ref[0], "n 0 changed the array");
    nc_free(x, n);
    nc_free(ref, n);
}

/* adamw_update_many (one pass: clip scale folded in, optional zeroing) against its naive twin (scale in
 * place, adamw_update, memset, tensor by tensor): bit-identical over 3 steps, with 1 and 2 threads, on segments
 * below and above the parallel threshold, out of order, with a gap that must stay untouched, and decay per
 * segment; the zeroed gradients are exactly 0; gscale 1 equals plain adamw_update. */
static void test_adamw_many(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 93);
    size_t n = 150011;
    adamw_segment seg[5] = {{.off = 70000, .n = 80011, .wd = 0.1f}, {.off = 0, .n = 7, .wd = 0.0f},
                            {.off = 7, .n = 40000, .wd = 0.1f}, {.off = 40007, .n = 0, .wd = 0.1f},
                            {.off = 40007, .n = 29000, .wd = 0.0f}}; /* 69007..69999: a gap */
    float *g0 = nc_alloc(n), *p[3], *g[3], *m[3], *v[3];
    nc_fill(&rng, g0, n, 2);
#ifdef UMOE_OPENMP
    int saved = omp_get_max_threads();
#endif
    for (int k = 0; k < 3; k++) {
        p[k] = nc_alloc(n); g[k] = nc_alloc(n); m[k] = nc_alloc(n); v[k] = nc_alloc(n);
        umoe_rng r2; umoe_rng_seed(&r2, 94);
        nc_fill(&r2, p[k], n, 1);
        memset(m[k], 0, n * sizeof(float)); memset(v[k], 0, n * sizeof(float));
    }
    for (int t = 1; t <= 3; t++) {
        float gs = t == 2 ? 1.0f : 0.37f;
        int zero = t != 3;
        for (int k = 0; k < 3; k++) {
            for (size_t i = 0; i < n; i++) g[k][i] = g0[i] * (float)t;
#ifdef UMOE_OPENMP
            omp_set_num_threads(k == 2 ? 2 : 1);
#endif
            if (k == 0) adamw_update_many_naive(p[k], g[k], m[k], v[k], seg, 5, 1e-3f, 0.9f, 0.95f, 1e-8f, t, gs, zero);
            else adamw_update_many(p[k], g[k], m[k], v[k], seg, 5, 1e-3f, 0.9f, 0.95f, 1e-8f, t, gs, zero);
        }
#ifdef UMOE_OPENMP
        omp_set_num_threads(saved);
#endif
        for (int k = 1; k < 3; k++) {
            size_t bad = 0;
            for (size_t i = 0; i < n; i++)
                bad += p[k][i] != p[0][i] || m[k][i] != m[0][i] || v[k][i] != v[0][i] || g[k][i] != g[0][i];
            CHECK(bad == 0, "step %d, %d thread(s): %zu elements differ from the naive twin", t, k, bad);
        }
        size_t nz = 0, gap = 0;
        for (size_t i = 0; i < n; i++) {
            int in_gap = i >= 69007 && i < 70000;
            if (in_gap) gap += g[1][i] != g0[i] * (float)t || m[1][i] != 0 || p[1][i] != p[0][i];
            else if (zero) nz += g[1][i] != 0.0f;
        }
        CHECK(nz == 0, "step %d: %zu gradients not zeroed", t, nz);
        CHECK(gap == 0, "step %d: %zu elements of the gap touched", t, gap);
    }
    /* gscale 1, no zeroing, one segment = adamw_update */
    float q[3][9], gq[9], mq[2][9] = {{0}}, vq[2][9] = {{0}};
    for (int i = 0; i < 9; i++) { q[0][i] = q[1][i] = 0.1f * (float)i; gq[i] = 0.3f - 0.07f * (float)i; }
    adamw_segment one = {.off = 0, .n = 9, .wd = 0.1f};
    adamw_update(q[0], gq, mq[0], vq[0], 9, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 1);
    adamw_update_many(q[1], gq, mq[1], vq[1], &one, 1, 1e-2f, 0.9f, 0.95f, 1e-8f, 1, 1.0f, 0);
    CHECK(!memcmp(q[0], q[1], sizeof q[0]) && !memcmp(mq[0], mq[1], sizeof mq[0]), "gscale 1 = adamw_update");
    CHECK(gq[8] == 0.3f - 0.07f * 8.0f, "no zeroing: the gradient is left as it was");
    for (int k = 0; k < 3; k++) { nc_free(p[k], n); nc_free(g[k], n); nc_free(m[k], n); nc_free(v[k], n); }
    nc_free(g0, n);
}

int main(void) {
    RUN(test_adamw_reference);
    RUN(test_adamw_properties);
    RUN(test_sumsq);
    RUN(test_scale_inplace);
    RUN(test_adamw_many);
    TEST_MAIN_END();
}
