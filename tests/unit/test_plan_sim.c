/* test_plan_sim.c - the planner with the real simulator (sim_run) on shipped presets: the pruning
 * (memory monotonicity) and the throughput bound (recompute never speeds a step up) hold for the real cost
 * model, i.e. they change the work done but not the strategies found; results are valid, sorted, identical
 * for 1 and 2 threads; the event simulation re-ranks the best; a model that fits nowhere gives feasible 0. */
#include <string.h>
#include "test.h"
#include "umoe/plan.h"

static int load(const char *model, const char *cluster, spec_model *m, spec_cluster *c) {
    int ok = spec_model_load(model, m) == UMOE_OK && spec_cluster_load(cluster, c) == UMOE_OK;
    CHECK(ok, "load %s / %s: %s", model, cluster, umoe_err);
    return ok;
}

static plan_options opts(int devices, int gbs, int top) {
    plan_options o;
    plan_options_defaults(&o);
    o.devices = devices;
    o.gbs = gbs;
    o.top = top;
    o.detailed_top = 0;
    return o;
}

static void run(const spec_model *m, const spec_cluster *c, const plan_options *o, plan_result *r) {
    CHECK(plan_search(m, c, o, sim_run, r) == UMOE_OK, "plan_search: %s", umoe_err);
}

static void same_list(const plan_result *a, const plan_result *b, const char *what) {
    CHECK(a->n == b->n, "%s: %d vs %d strategies", what, a->n, b->n);
    for (int i = 0; i < a->n && i < b->n; i++)
        CHECK(a->best[i].key == b->best[i].key && a->best[i].r.tokens_per_s == b->best[i].r.tokens_per_s &&
              a->best[i].r.memory_peak_bytes == b->best[i].r.memory_peak_bytes,
              "%s: rank %d differs (%.6g vs %.6g tokens/s)", what, i + 1, a->best[i].r.tokens_per_s,
              b->best[i].r.tokens_per_s);
}

/* Pruning and bound against the exhaustive evaluation, on three shapes of problem. */
static void check_prune(const char *model, const char *cluster, int devices, int gbs) {
    spec_model m;
    spec_cluster c;
    if (!load(model, cluster, &m, &c)) return;
    plan_options o = opts(devices, gbs, 20);
    plan_result full, mem, fast;
    o.no_prune = 1;
    run(&m, &c, &o, &full);
    o.no_prune = 0;
    o.no_bound = 1;
    run(&m, &c, &o, &mem);
    o.no_bound = 0;
    run(&m, &c, &o, &fast);
    CHECK(full.feasible > 0, "%s: something fits", model);
    /* memory pruning alone: exactly the same feasible set, fewer evaluations */
    CHECK(mem.feasible == full.feasible, "%s: feasible %lld with pruning, %lld without", model, mem.feasible,
          full.feasible);
    CHECK(mem.evaluated + mem.pruned == full.evaluated, "%s: %lld + %lld pruned != %lld", model, mem.evaluated,
          mem.pruned, full.evaluated);
    CHECK(fast.evaluated + fast.pruned + fast.bounded == full.evaluated, "%s: accounting", model);
    CHECK(fast.evaluated < full.evaluated, "%s: the pruned search does less work", model);
    same_list(&mem, &full, model);
    same_list(&fast, &full, model);
    plan_result_free(&full);
    plan_result_free(&mem);
    plan_result_free(&fast);
}

static void test_prune_and_bound_exact(void) {
    check_prune("mixtral-8x7b", "h100-sxm-8", 16, 32);
    check_prune("mixtral-8x7b", "h100-sxm-8", 32, 64);
    check_prune("llama3-70b", "h100-sxm-8", 32, 64);
}

static void test_valid_sorted_detailed(void) {
    spec_model m;
    spec_cluster c;
    if (!load("deepseek-v3-671b", "h800-2048", &m, &c)) return;
    plan_options o = opts(256, 512, 12);
    o.detailed_top = 6;
    plan_result r;
    run(&m, &c, &o, &r);
    CHECK(r.n == 12 && r.detailed == 6, "12 results, 6 detailed: %d, %d", r.n, r.detailed);
    spec_strategy base, s;
    plan_strategy_base(&base, r.gbs);
    c.devices = r.devices; /* what --devices did */
    for (int i = 0; i < r.n; i++) {
        const plan_entry *e = &r.best[i];
        plan_entry_strategy(e, &base, &s);
        CHECK(spec_strategy_check(&s, &m, 256, "result") == UMOE_OK, "rank %d invalid: %s", i + 1, umoe_err);
        CHECK(e->r.fits && e->r.memory_peak_bytes <= c.hw.hbm_bytes, "rank %d fits", i + 1);
        CHECK(e->r.tokens_per_s > 0 && e->r.mfu > 0 && e->r.mfu < 1, "rank %d: sane figures", i + 1);
        if (i > 0 && i != r.detailed)
            CHECK(plan_entry_cmp(&r.best[i - 1], &r.best[i]) < 0, "ranks %d, %d out of order", i, i + 1);
        /* the detailed figures are those of sim_run with detailed = 1 */
        sim_options so;
        memset(&so, 0, sizeof so);
        so.detailed = i < r.detailed;
        sim_result x;
        memset(&x, 0, sizeof x);
        CHECK(sim_run(&m, &c, &s, &so, &x) == UMOE_OK, "re-run");
        CHECK(x.step_time_s == e->r.step_time_s, "rank %d: step time %.9g vs %.9g (detailed %d)", i + 1,
              x.step_time_s, e->r.step_time_s, so.detailed);
        sim_result_free(&x);
    }
    plan_result_free(&r);
}

static void test_threads_identical(void) {
    spec_model m;
    spec_cluster c;
    if (!load("mixtral-8x7b", "h100-sxm-8", &m, &c)) return;
    plan_options o = opts(64, 128, 15);
    plan_result a, b;
    run(&m, &c, &o, &a);
    o.threads = 2;
    run(&m, &c, &o, &b);
    CHECK(a.evaluated == b.evaluated && a.feasible == b.feasible && a.pruned == b.pruned && a.bounded == b.bounded,
          "counts: %lld/%lld %lld/%lld", a.evaluated, b.evaluated, a.feasible, b.feasible);
    same_list(&a, &b, "threads");
    plan_result_free(&a);
    plan_result_free(&b);
}

static void test_fits_nowhere(void) {
    spec_model m;
    spec_cluster c;
    if (!load("pangu-ultra-moe-718b", "ascend-910b-6144", &m, &c)) return;
    plan_options o = opts(8, 8, 10);
    plan_result r;
    run(&m, &c, &o, &r);
    CHECK(r.feasible == 0 && r.n == 0 && r.evaluated > 0, "718B on 8 devices: feasible %lld", r.feasible);
    CHECK(r.min_peak_bytes > c.hw.hbm_bytes, "the lightest needs more than the device has");
    plan_result_free(&r);
}

/* Nothing in the search space beats the plan's best: the paper's own strategy (moved into the space:
 * offload off, its recompute list plus norm) and 3000 random valid strategies of the space, all simulated
 * in closed form like the search. */
static void test_nothing_beats_best(void) {
    spec_model m;
    spec_cluster c;
    if (!load("pangu-ultra-moe-718b", "ascend-910b-6144", &m, &c)) return;
    plan_options o = opts(0, 0, 1);
    plan_result r;
    run(&m, &c, &o, &r);
    if (r.n != 1) return;
    double best = r.best[0].r.tokens_per_s;
    sim_options so;
    memset(&so, 0, sizeof so);
    sim_result *x = umoe_calloc(1, sizeof *x, "test result");
    spec_strategy s;
    CHECK(spec_strategy_load("pangu-ultra-moe-6k", &s) == UMOE_OK, "paper strategy: %s", umoe_err);
    spec_strategy base;
    plan_strategy_base(&base, r.gbs);
    s.gbs = r.gbs, s.dp = c.devices / (s.tp * s.cp * s.pp), s.offload_activations = 0;
    s.recompute |= SPEC_RC_NORM;
    CHECK(sim_run(&m, &c, &s, &so, x) == UMOE_OK, "paper strategy runs: %s", umoe_err);
    CHECK(!x->fits || x->tokens_per_s <= best, "the paper's strategy (%.4g tokens/s) beats the plan's best (%.4g)",
          x->tokens_per_s, best);
    /* random strategies of the space */
    unsigned rcl[PLAN_RC_MAX];
    int n_rc = plan_recompute_default(&m, rcl);
    static const int tps[] = {1, 2, 4, 8}, cps[] = {1, 2, 4}, pps[] = {1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48};
    static const int eps[] = {1, 2, 4, 8, 16, 32, 64, 128, 256}, mbss[] = {1, 2, 4};
    umoe_rng g;
    umoe_rng_seed(&g, 7);
    int tried = 0, fit = 0;
    char saved[UMOE_ERRLEN];
    memcpy(saved, umoe_err, sizeof saved);
    for (int i = 0; i < 3000; i++) {
        s = base;
        s.tp = tps[umoe_rng_u64(&g) % 4], s.sp = s.tp > 1, s.cp = cps[umoe_rng_u64(&g) % 3];
        s.pp = pps[umoe_rng_u64(&g) % 11];
        s.dp = c.devices / (s.tp * s.cp * s.pp);
        s.vpp = s.pp > 1 && umoe_rng_u64(&g) % 2 ? 2 + (int)(umoe_rng_u64(&g) % 4) : 1;
        s.ep = eps[umoe_rng_u64(&g) % 9], s.etp = umoe_rng_u64(&g) % 2 ? s.tp : 1;
        s.mbs = mbss[umoe_rng_u64(&g) % 3];
        s.schedule = s.vpp > 1 ? SPEC_SCHED_INTERLEAVED : (spec_schedule)(umoe_rng_u64(&g) % 2 ? SPEC_SCHED_1F1B
                                                                                                : SPEC_SCHED_ZB1P);
        s.a2a = (spec_a2a)(umoe_rng_u64(&g) % 2);
        s.recompute = rcl[umoe_rng_u64(&g) % (uint64_t)n_rc];
        s.zero1 = (int)(umoe_rng_u64(&g) % 2);
        if (spec_strategy_check(&s, &m, c.devices, "random") != UMOE_OK) continue;
        tried++;
        if (sim_run(&m, &c, &s, &so, x) != UMOE_OK || !x->fits) continue;
        fit++;
        CHECK(x->tokens_per_s <= best, "random strategy tp%d cp%d pp%d vpp%d ep%d mbs%d: %.6g tokens/s beats the "
              "plan's best %.6g", s.tp, s.cp, s.pp, s.vpp, s.ep, s.mbs, x->tokens_per_s, best);
    }
    memcpy(umoe_err, saved, sizeof saved);
    CHECK(tried > 300 && fit > 30, "enough random strategies: %d valid, %d fit", tried, fit);
    umoe_free(x, sizeof *x);
    plan_result_free(&r);
}

int main(void) {
    RUN(test_prune_and_bound_exact);
    RUN(test_nothing_beats_best);
    RUN(test_valid_sorted_detailed);
    RUN(test_threads_identical);
    RUN(test_fits_nowhere);
    TEST_MAIN_END();
}
