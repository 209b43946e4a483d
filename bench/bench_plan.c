/* bench_plan.c - the planner's speed figures (a benchmark, never a test):
 *   1. sim_run closed-form calls per second on one core for one fixed strategy (the paper's TP8 PP16 VPP2 EP4);
 *   2. the default plan (`umoe plan pangu-ultra-moe-718b ascend-910b-6144 --top 10`): total seconds, strategies
 *      evaluated, and evaluations per second on the closed-form path;
 *   3. the same search without pruning (every candidate simulated).
 * Targets (issue 2): >= 1,000,000 evaluations/s per core; the default plan under one second.
 * Usage: build/bench/bench_plan [MODEL CLUSTER] [--calls N] [--sim-only] [--no-noprune]
 *   --calls N      sim_run calls in part 1 (default 1,000,000; 0 skips part 1)
 *   --sim-only     part 1 only (e.g. under `valgrind --tool=callgrind` for load-independent instruction counts)
 *   --no-noprune   skip part 3 (the slow unpruned plan). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "umoe/plan.h"

/* CPU seconds of this process: on a shared machine wall time overstates the per-core cost. */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void plan_once(const spec_model *m, const spec_cluster *c, int no_prune) {
    plan_options o;
    plan_options_defaults(&o);
    o.no_prune = no_prune;
    plan_result r;
    double c0 = cpu_now();
    if (plan_search(m, c, &o, sim_run, &r) != UMOE_OK) {
        fprintf(stderr, "bench_plan: plan failed: %s\n", umoe_err);
        return;
    }
    double cpu = cpu_now() - c0;
    printf("plan%s: %.3f s wall, %.3f s CPU; %lld evaluated (%lld fit), %lld pruned, %lld bounded, %lld layouts: "
           "%.2fM evaluations per CPU-second; %.2fM candidate strategies decided per CPU-second\n",
           no_prune ? " --no-prune" : "", r.seconds, cpu, r.evaluated, r.feasible, r.pruned, r.bounded, r.layouts,
           r.evaluated / cpu / 1e6, (r.evaluated + r.pruned + r.bounded) / cpu / 1e6);
    if (r.n > 0)
        printf("  best: tp%d cp%d pp%d vpp%d ep%d etp%d dp%d mbs%d: %.4g tokens/s, MFU %.1f%%\n", r.best[0].tp,
               r.best[0].cp, r.best[0].pp, r.best[0].vpp, r.best[0].ep, r.best[0].etp, r.best[0].dp, r.best[0].mbs,
               r.best[0].r.tokens_per_s, 100 * r.best[0].r.mfu);
    plan_result_free(&r);
}

int main(int argc, char **argv) {
    const char *model = "pangu-ultra-moe-718b", *cluster = "ascend-910b-6144";
    int n = 1000000, sim_only = 0, no_noprune = 0, npos = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--calls") && i + 1 < argc) n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--sim-only")) sim_only = 1;
        else if (!strcmp(argv[i], "--no-noprune")) no_noprune = 1;
        else if (argv[i][0] != '-' && npos < 2) *(npos++ ? &cluster : &model) = argv[i];
        else {
            fprintf(stderr, "usage: bench_plan [MODEL CLUSTER] [--calls N] [--sim-only] [--no-noprune]\n");
            return 2;
        }
    }
    if (n < 0) n = 0;
    spec_model m;
    spec_cluster c;
    if (spec_model_load(model, &m) != UMOE_OK || spec_cluster_load(cluster, &c) != UMOE_OK) {
        fprintf(stderr, "bench_plan: %s\n", umoe_err);
        return 1;
    }
    /* 1. one strategy, many calls */
    spec_strategy s;
    plan_strategy_base(&s, c.devices);
    s.tp = 8, s.sp = 1, s.pp = 16, s.vpp = 2, s.ep = 4, s.etp = 1, s.cp = 1;
    s.dp = c.devices / (s.tp * s.pp);
    s.mbs = 2, s.schedule = SPEC_SCHED_INTERLEAVED;
    sim_options o;
    memset(&o, 0, sizeof o);
    sim_model_pre pre; /* as the planner calls it: model counts precomputed once */
    sim_model_pre_init(&pre, &m, 0);
    o.pre = &pre;
    sim_result r;
    if (n == 0) {
        /* part 1 skipped */
    } else if (sim_run(&m, &c, &s, &o, &r) != UMOE_OK) {
        fprintf(stderr, "bench_plan: reference strategy rejected: %s\n", umoe_err);
    } else {
        double sink = 0, t0 = umoe_now(), c0 = cpu_now();
        for (int i = 0; i < n; i++) {
            s.mbs = 1 + (i & 1); /* defeat any caching of identical calls */
            sim_run(&m, &c, &s, &o, &r);
            sink += r.step_time_s;
        }
        double dt = umoe_now() - t0, dc = cpu_now() - c0;
        printf("sim_run closed form (TP8 PP16 VPP2 EP4): %.1f ns/call CPU (%.1f wall), %.2fM calls per CPU-second "
               "(checksum %.6g)\n", 1e9 * dc / n, 1e9 * dt / n, n / dc / 1e6, sink);
    }
    if (sim_only) return 0;
    /* 2, 3. the planner */
    printf("%s on %s (%d devices):\n", m.name, c.name, c.devices);
    plan_once(&m, &c, 0);
    if (!no_noprune) plan_once(&m, &c, 1);
    return 0;
}
