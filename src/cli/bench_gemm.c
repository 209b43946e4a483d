/* bench_gemm.c - GEMM throughput of this machine over a grid of shapes, through the engine's own linear
 * layer (matmul_forward = OpenBLAS sgemm, fp32: the dtype the engine trains in).
 * Grid: levels s from small to large; at each level shapes (N, C, O) with the same product s^3, so the same
 * FLOPs 2 N C O (multiply-add = 2 FLOPs): the square (s, s, s), an up-projection (s, s/2, 2s) and, in the
 * full run, a down-projection (s, 2s, s/2) - the aspect ratios of a transformer's FFN and attention GEMMs.
 * Peak = the best rate measured over the grid (flops / fastest call). Each shape's efficiency = its median
 * rate / peak (<= 1 by construction); the table has one point per level: (flops, mean efficiency of its
 * shapes), sorted by flops - the spec_hardware gemm_eff curve (spec.h: piecewise linear in log10(flops)).
 * Does not: measure 16-bit or fp8 GEMMs (the engine has none), or batched/grouped GEMMs separately (a grouped
 * expert GEMM is one matmul_forward per expert in the engine, so it is on this curve). */
#include <string.h>
#include "bench.h"
#include "umoe/nn.h"

static const size_t levels_full[] = {16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024};
static const size_t levels_quick[] = {32, 64, 128, 256, 512};
#define BENCH_GEMM_BUDGET_FULL 0.05   /* seconds of timed calls per shape (at least 3 calls) */
#define BENCH_GEMM_BUDGET_QUICK 0.008

typedef struct {
    float *out, *in, *w;
    size_t N, C, O;
} gemm_arg;

static void gemm_call(void *p) {
    gemm_arg *a = p;
    matmul_forward(a->out, a->in, a->w, NULL, a->N, a->C, a->O);
}

/* Shapes of one level s (product s^3 each). */
static int level_shapes(size_t s, int quick, size_t shp[3][3]) {
    size_t h = s / 2;
    size_t list[3][3] = {{s, s, s}, {s, h, 2 * s}, {s, 2 * s, h}};
    int n = quick ? 2 : 3;
    memcpy(shp, list, sizeof list);
    return n;
}

umoe_status bench_gemm_run(const bench_run *run, bench_gemm_result *g) {
    const size_t *lv = run->quick ? levels_quick : levels_full;
    int n_lv = run->quick ? (int)(sizeof levels_quick / sizeof *levels_quick)
                          : (int)(sizeof levels_full / sizeof *levels_full);
    double budget = run->quick ? BENCH_GEMM_BUDGET_QUICK : BENCH_GEMM_BUDGET_FULL;
    UMOE_ASSERT(n_lv <= SPEC_EFF_MAX && 3 * n_lv <= BENCH_MAX_SHAPES);
    memset(g, 0, sizeof *g);

    /* one set of buffers, sized for the largest operand of the grid */
    size_t max_in = 0, max_w = 0, max_out = 0;
    for (int l = 0; l < n_lv; l++) {
        size_t shp[3][3];
        int ns = level_shapes(lv[l], run->quick, shp);
        for (int k = 0; k < ns; k++) {
            size_t N = shp[k][0], C = shp[k][1], O = shp[k][2];
            if (N * C > max_in) max_in = N * C;
            if (O * C > max_w) max_w = O * C;
            if (N * O > max_out) max_out = N * O;
        }
    }
    gemm_arg a;
    a.in = umoe_malloc(max_in * sizeof(float), "bench gemm in");
    a.w = umoe_malloc(max_w * sizeof(float), "bench gemm w");
    a.out = umoe_malloc(max_out * sizeof(float), "bench gemm out");
    bench_fill(a.in, max_in, 1);
    bench_fill(a.w, max_w, 2);
    memset(a.out, 0, max_out * sizeof(float));

    LOG_INFO("bench: GEMM (matmul_forward, fp32) over %d levels of shapes, %.3g s per shape", n_lv, budget);
    for (int l = 0; l < n_lv; l++) {
        size_t shp[3][3];
        int ns = level_shapes(lv[l], run->quick, shp);
        double best = 0;
        for (int k = 0; k < ns; k++) {
            bench_gemm_shape *s = &g->shape[g->n_shapes++];
            s->N = a.N = shp[k][0];
            s->C = a.C = shp[k][1];
            s->O = a.O = shp[k][2];
            s->flops = 2.0 * (double)s->N * (double)s->C * (double)s->O;
            bench_measure(run, gemm_call, &a, budget, 3, &s->t);
            double r = s->flops / s->t.min;
            if (r > best) best = r;
        }
        LOG_INFO("bench: GEMM level %4zu (%.3g FLOP per call): best %.2f GFLOP/s", lv[l], 2.0 * lv[l] * lv[l] * lv[l],
                 best / 1e9);
    }
    umoe_free(a.in, max_in * sizeof(float));
    umoe_free(a.w, max_w * sizeof(float));
    umoe_free(a.out, max_out * sizeof(float));

    for (int i = 0; i < g->n_shapes; i++) {
        double r = g->shape[i].flops / g->shape[i].t.min;
        if (r > g->peak) {
            g->peak = r;
            g->peak_shape = i;
        }
    }
    if (!(g->peak > 0)) return umoe_fail("bench: GEMM timing gave no positive rate (clock failure?)");

    /* the table: one point per level (shapes of a level have equal flops; levels increase strictly) */
    int i = 0;
    for (int l = 0; l < n_lv; l++) {
        size_t shp[3][3];
        int ns = level_shapes(lv[l], run->quick, shp);
        double sum = 0, lo = 1e300, hi = 0;
        for (int k = 0; k < ns; k++, i++) {
            bench_gemm_shape *s = &g->shape[i];
            s->eff = s->flops / s->t.med / g->peak;
            sum += s->eff;
            double e_lo = s->flops / s->t.max / g->peak, e_hi = s->flops / s->t.min / g->peak;
            if (e_lo < lo) lo = e_lo;
            if (e_hi > hi) hi = e_hi;
        }
        g->eff_flops[l] = g->shape[i - 1].flops;
        g->eff[l] = sum / ns;
        g->eff_lo[l] = lo;
        g->eff_hi[l] = hi;
        g->eff_count[l] = ns;
    }
    g->n_eff = n_lv;
    bench_gemm_shape *p = &g->shape[g->peak_shape];
    LOG_INFO("bench: GEMM peak %.2f GFLOP/s (shape N=%zu C=%zu O=%zu)", g->peak / 1e9, p->N, p->C, p->O);
    return UMOE_OK;
}
