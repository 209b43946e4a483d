/* bench_gemm.c - GEMM throughput of this machine over a grid of shapes, through the engine's own linear
 * layer (matmul_forward = OpenBLAS sgemm, fp32: the dtype the engine trains in).
 * Grid: levels s from small to large; at each level shapes (N, C, O) with the same product s^3, so the same
 * FLOPs 2 N C O (multiply-add = 2 FLOPs): the square (s, s, s), an up-projection (s, s/2, 2s) and, in the
 * full run, a down-projection (s, 2s, s/2) - the aspect ratios of a transformer's FFN and attention GEMMs.
 * Peak = the best rate measured over the grid (flops / fastest call). Each shape's efficiency = its median
 * rate / peak (<= 1 by construction); the table has one point per level: (flops, mean efficiency of its
 * shapes), sorted by flops - the spec_hardware gemm_eff curve (spec.h: piecewise linear in log10(flops)).
 * Operands are cold, as in a training step: every timed call takes its (in, w, out) from the next slot of a
 * BENCH_GEMM_POOL_FLOATS pool (far larger than the per-core L2), so a call finds its operands where the
 * engine finds a layer's weights and the tensors of other kernels: not in L2. Measured on the development
 * machine (docs/bench.md): the engine's GEMMs ran 1.1 to 1.45x slower than the same calls repeated on hot
 * operands, and a `perf` profile of a tiny-moe step put its sgemm time 20 to 35% above a hot-cache grid.
 * Does not: measure 16-bit or fp8 GEMMs (the engine has none), or batched/grouped GEMMs separately (a grouped
 * expert GEMM is one matmul_forward per expert in the engine, so it is on this curve). */
#include <math.h>
#include <string.h>
#include "bench.h"
#include "umoe/nn.h"

static const size_t levels_full[] = {16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024};
static const size_t levels_quick[] = {32, 64, 128, 256, 512};
#define BENCH_GEMM_BUDGET_FULL 0.05   /* seconds of timed calls per shape (at least 3, at most 64 calls) */
#define BENCH_GEMM_BUDGET_QUICK 0.008
#define BENCH_GEMM_ROUNDS 4           /* passes over the grid (see the timing loop) */
#define BENCH_GEMM_POOL_FLOATS (8u << 20) /* 32 MiB of operand slots (16x the 2 MiB per-core L2 here) */

typedef struct {
    float *pool;        /* BENCH_GEMM_POOL_FLOATS floats of operand slots */
    size_t N, C, O;
    size_t next;        /* calls made: call k uses slot k mod (slots of this shape) */
} gemm_arg;

/* One call on the next slot's operands: in (N,C), w (O,C), out (N,O), consecutive in the slot. */
static void gemm_call(void *p) {
    gemm_arg *a = p;
    size_t set = (a->N * a->C + a->O * a->C + a->N * a->O + 15) & ~(size_t)15; /* 64-byte aligned slots */
    size_t slots = BENCH_GEMM_POOL_FLOATS / set;
    if (slots < 1) slots = 1;
    float *in = a->pool + (a->next++ % slots) * set, *w = in + a->N * a->C, *out = w + a->O * a->C;
    matmul_forward(out, in, w, NULL, a->N, a->C, a->O);
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

    /* one pool of operand slots; the largest shape's set (full grid: 14 MiB) fits at least twice */
    gemm_arg a = {.next = 0};
    a.pool = umoe_malloc(BENCH_GEMM_POOL_FLOATS * sizeof(float), "bench gemm operand pool");
    bench_fill(a.pool, BENCH_GEMM_POOL_FLOATS, 1);

    LOG_INFO("bench: GEMM (matmul_forward, fp32) over %d levels of shapes, about %.3g s per shape", n_lv, budget);
    /* calibration: a warm-up call and one timed call per shape set its repetitions (>= 3, ~budget seconds) */
    int reps[BENCH_MAX_SHAPES];
    for (int l = 0; l < n_lv; l++) {
        size_t shp[3][3];
        int ns = level_shapes(lv[l], run->quick, shp);
        for (int k = 0; k < ns; k++) {
            bench_gemm_shape *s = &g->shape[g->n_shapes];
            s->N = shp[k][0];
            s->C = shp[k][1];
            s->O = shp[k][2];
            s->flops = 2.0 * (double)s->N * (double)s->C * (double)s->O;
            a.N = s->N, a.C = s->C, a.O = s->O;
            gemm_call(&a);
            double t0 = umoe_now();
            gemm_call(&a);
            double want = ceil(budget / fmax(umoe_now() - t0, 1e-9));
            reps[g->n_shapes++] = want < 3 ? 3 : want > BENCH_MAX_REPS ? BENCH_MAX_REPS : (int)want;
        }
    }
    /* timed calls in BENCH_GEMM_ROUNDS rounds over all shapes, so that a burst of load from other processes
     * lowers a few samples of many shapes rather than every sample of one (the medians stay clean). In each
     * round a shape gets an untimed warm-up call (code and BLAS buffers; its operands are the next slot's,
     * cold, skipped for shapes of <= 4 calls) and then its share of timed calls, each on the next slot.
     * Ranks are lined up at the start of each round. */
    static double samples[BENCH_MAX_SHAPES][BENCH_MAX_REPS];
    int done[BENCH_MAX_SHAPES] = {0};
    for (int r = 0; r < BENCH_GEMM_ROUNDS; r++) {
        if (run->barrier) run->barrier(run->barrier_ctx);
        for (int i = 0; i < g->n_shapes; i++) {
            int until = (reps[i] * (r + 1) + BENCH_GEMM_ROUNDS - 1) / BENCH_GEMM_ROUNDS;
            if (done[i] >= until) continue;
            a.N = g->shape[i].N, a.C = g->shape[i].C, a.O = g->shape[i].O;
            if (reps[i] > 4) gemm_call(&a);
            for (; done[i] < until; done[i]++) {
                double t0 = umoe_now();
                gemm_call(&a);
                samples[i][done[i]] = umoe_now() - t0;
            }
        }
    }
    for (int i = 0, l = 0; l < n_lv; l++) {
        size_t shp[3][3];
        int ns = level_shapes(lv[l], run->quick, shp);
        double best = 0;
        for (int k = 0; k < ns; k++, i++) {
            bench_stat_from(&g->shape[i].t, samples[i], reps[i]);
            best = fmax(best, g->shape[i].flops / g->shape[i].t.min);
        }
        LOG_INFO("bench: GEMM level %4zu (%.3g FLOP per call): best %.2f GFLOP/s", lv[l], 2.0 * lv[l] * lv[l] * lv[l],
                 best / 1e9);
    }
    umoe_free(a.pool, BENCH_GEMM_POOL_FLOATS * sizeof(float));

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
