/* cost_compute.c - compute-side roofline of the cost model: GEMM efficiency from the hardware's measured
 * table, GEMM time, memory-bound kernel time. Pure functions, no allocation (planner hot path).
 * Does not: know layers or strategies (cost_layer.c) or communication (cost_comm.c).
 * Equations: docs/cost-model.md section "Compute". Roofline: Williams, Waterman, Patterson, "Roofline: an
 * insightful visual performance model", CACM 2009: t = max(flops / (peak x eff), bytes / (bw x mem_eff)). */
#include <math.h>
#include "umoe/sim.h"

#define SIM_DEFAULT_GEMM_EFF 0.7 /* used only when a hardware spec has no table; see docs/cost-model.md */

double sim_gemm_eff(const spec_hardware *h, double flops) {
    int n = h->n_gemm_eff;
    if (n <= 0) return SIM_DEFAULT_GEMM_EFF;
    if (n == 1 || flops <= h->gemm_eff_flops[0]) return h->gemm_eff[0];
    if (flops >= h->gemm_eff_flops[n - 1]) return h->gemm_eff[n - 1];
    int i = 1;
    while (i < n - 1 && flops > h->gemm_eff_flops[i]) i++;
    /* piecewise linear in log10(flops) between points i-1 and i */
    double f = log(flops / h->gemm_eff_flops[i - 1]) / log(h->gemm_eff_flops[i] / h->gemm_eff_flops[i - 1]);
    return h->gemm_eff[i - 1] + f * (h->gemm_eff[i] - h->gemm_eff[i - 1]);
}

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
    double tc = flops / (peak_for(h, bits) * sim_gemm_eff(h, flops));
    double tm = sim_mem_time(h, bytes);
    return tc > tm ? tc : tm;
}
