/* cost_compute.c - compute-side roofline of the cost model: GEMM efficiency from the hardware's measured
 * table, GEMM time, memory-bound kernel time. Pure functions (a per-thread memo of a pure function, below), no allocation
 * (planner hot path).
 * Does not: know layers or strategies (cost_layer.c) or communication (cost_comm.c).
 * Equations: docs/cost-model.md section "Compute". Roofline: Williams, Waterman, Patterson, "Roofline: an
 * insightful visual performance model", CACM 2009: t = max(flops / (peak x eff), bytes / (bw x mem_eff)). */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "umoe/sim.h"

#define SIM_DEFAULT_GEMM_EFF 0.7 /* used only when a hardware spec has no table; see docs/cost-model.md */

/* Position of flops between two table points x0 < flops <= x1 in log space, ln(flops / x0) / ln(x1 / x0),
 * remembered per thread for the last (flops, x0, x1) seen in each of 256 slots (a pure function of the three,
 * so the memo needs no invalidation: an edited table simply misses). The planner evaluates the same GEMM
 * shapes many times over (every recompute policy and ZeRO-1 setting of a micro-batch size has the same
 * GEMMs), and the logarithm and two divisions here were the largest single cost of the closed form
 * (docs/planner.md "Speed"). Slots start at flops = 0, which never matches (flops > x0 > 0 here). */
#define POS_MEMO_BITS 8
static _Thread_local struct { double flops, x0, x1, f; } pos_memo[1 << POS_MEMO_BITS];

static double seg_pos(const spec_hardware *h, int i, double flops) {
    double x0 = h->gemm_eff_flops[i - 1], x1 = h->gemm_eff_flops[i];
    uint64_t b;
    memcpy(&b, &flops, sizeof b);
    unsigned k = (unsigned)((b * 0x9E3779B97F4A7C15ull) >> (64 - POS_MEMO_BITS)); /* Fibonacci hashing */
    if (pos_memo[k].flops == flops && pos_memo[k].x0 == x0 && pos_memo[k].x1 == x1) return pos_memo[k].f;
    double f = log(flops / x0) / spec_gemm_eff_lnr(h, i); /* the points' ratio: cached by spec_hardware_prepare */
    pos_memo[k].flops = flops;
    pos_memo[k].x0 = x0;
    pos_memo[k].x1 = x1;
    pos_memo[k].f = f;
    return f;
}

/* sim_gemm_eff's body, inlined into sim_gemm_time (called for every GEMM of every layer) */
static inline double gemm_eff_lookup(const spec_hardware *h, double flops) {
    int n = h->n_gemm_eff;
    if (n <= 0) return SIM_DEFAULT_GEMM_EFF;
    if (n == 1 || flops <= h->gemm_eff_flops[0]) return h->gemm_eff[0];
    if (flops >= h->gemm_eff_flops[n - 1]) return h->gemm_eff[n - 1];
    /* the segment: i = the first point >= flops among points 1 .. n-1 (binary search; points sorted) */
    const double *first = h->gemm_eff_flops + 1;
    for (int len = n - 2; len > 0;) {
        int half = len >> 1;
        if (first[half] < flops) first += half + 1, len -= half + 1;
        else len = half;
    }
    int i = (int)(first - h->gemm_eff_flops);
    /* piecewise linear in log10(flops) between points i-1 and i */
    double f = seg_pos(h, i, flops);
    return h->gemm_eff[i - 1] + f * (h->gemm_eff[i] - h->gemm_eff[i - 1]);
}

double sim_gemm_eff(const spec_hardware *h, double flops) { return gemm_eff_lookup(h, flops); }

static double peak_for(const spec_hardware *h, int bits) {
    if (bits == 8 && h->peak_fp8 > 0) return h->peak_fp8;
    return h->peak_bf16;
}

double sim_mem_time(const spec_hardware *h, double bytes) {
    double eff = h->mem_eff > 0 ? h->mem_eff : 1.0;
    return bytes / (h->hbm_bw * eff);
}

double sim_gemm_time(const spec_hardware *h, double m, double n, double k, int bits) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    double flops = 2.0 * m * n * k;
    double in_bytes = bits == 8 ? 1.0 : 2.0;
    double bytes = in_bytes * (m * k + k * n) + 2.0 * m * n; /* output in bf16 */
    double tc = flops / (peak_for(h, bits) * gemm_eff_lookup(h, flops));
    double tm = sim_mem_time(h, bytes);
    return tc > tm ? tc : tm;
}
