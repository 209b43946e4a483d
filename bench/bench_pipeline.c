/* bench_pipeline.c - time of one pipeline event simulation (sim_pipeline_run, no event recording) for the
 * planner's typical large case (pp = 16, vpp = 2, 64 micro-batches) and each schedule. Prints microseconds
 * per call; never a pass/fail test. */
#include <stdio.h>
#include "umoe/sim.h"

/* Per-stage costs: forward 1 ms (the last stage 2 ms, LM head), backward-input 1 ms, weight-gradient 1 ms,
 * divided by vpp per virtual stage; p2p 10 us. Every schedule gets the W cost (1F1B/interleaved fold it into B). */
static void bench(const char *name, spec_schedule s, int pp, int vpp, int n) {
    double F[64], B[64], W[64];
    for (int i = 0; i < pp * vpp; i++) {
        F[i] = 1e-3 * (1 + (i == pp * vpp - 1)) / vpp;
        B[i] = 1e-3 / vpp;
        W[i] = 1e-3 / vpp;
    }
    sim_pipeline_result r;
    int reps = 0;
    double t0 = umoe_now(), t;
    do {
        for (int k = 0; k < 50; k++)
            if (sim_pipeline_run(s, pp, vpp, n, F, B, W, 1e-5, 0, &r) != UMOE_OK) {
                fprintf(stderr, "%s\n", umoe_err);
                return;
            }
        reps += 50;
        t = umoe_now() - t0;
    } while (t < 0.3);
    printf("%-12s pp=%-3d vpp=%d n_mb=%-3d  %8.1f us/call  (makespan %.4f s, bubble %.2f%%)\n", name, pp, vpp, n,
           1e6 * t / reps, r.makespan, 100 * r.bubble_frac);
}

int main(void) {
    bench("1f1b", SPEC_SCHED_1F1B, 16, 1, 64);
    bench("interleaved", SPEC_SCHED_INTERLEAVED, 16, 2, 64);
    bench("zb1p", SPEC_SCHED_ZB1P, 16, 1, 64);
    bench("dualpipe", SPEC_SCHED_DUALPIPE, 16, 1, 64);
    return 0;
}
