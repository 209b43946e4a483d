/* test_sim_fast.c - the closed form's speed-ups change no result: sim_run's grouped stage assembly against
 * the chunk-by-chunk reference (sim_options.reference_stages) on random valid strategies over shipped
 * presets and models with random depths and dense-layer counts; precomputed model counts (sim_options.pre);
 * the GEMM-efficiency table's cached log ratios (spec_hardware_prepare) and the memo of ln against the plain
 * formula, including tables built or edited in code. Does not: check the cost equations themselves
 * (test_sim_*.c do). */
#include <string.h>
#include "test.h"
#include "umoe/sim.h"

#define REL 1e-12 /* what the grouping may change: the order of a few floating-point additions */

static int close_rel(double a, double b) {
    double d = fabs(a - b), s = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return d <= REL * s || d <= 1e-300;
}

/* Every number of the two results agrees within REL. The worst-memory stage may differ only when two
 * stages tie (the same peak within REL): the reference sums a stage's chunks one by one, so identical
 * stages can differ in the last bit there. Returns 1 when equal. */
static int same_result(const sim_result *a, const sim_result *b, const char *what) {
    int ok = 1;
#define SAME(f)                                                                                       \
    if (!close_rel(a->f, b->f)) {                                                                     \
        CHECK(0, "%s: %s = %.17g, reference %.17g", what, #f, (double)a->f, (double)b->f);            \
        ok = 0;                                                                                       \
    }
    SAME(params_total) SAME(params_active) SAME(flops_per_token) SAME(step_time_s) SAME(tokens_per_s)
    SAME(mfu) SAME(hfu) SAME(memory_peak_bytes) SAME(bubble_frac) SAME(flops_per_step_model)
    SAME(flops_per_step_hw) SAME(inflight)
    for (int i = 0; i < SIM_T_COUNT; i++) SAME(breakdown[i])
    for (int i = 0; i < SIM_M_COUNT; i++) SAME(memory[i])
    for (int i = 0; i < 2; i++) { SAME(stage_fwd_s[i]) SAME(stage_bwd_s[i]) }
#undef SAME
    if (a->fits != b->fits || a->n_microbatches != b->n_microbatches) {
        CHECK(0, "%s: fits %d/%d, micro-batches %d/%d", what, a->fits, b->fits, a->n_microbatches, b->n_microbatches);
        ok = 0;
    }
    if (a->worst_stage != b->worst_stage) {
        /* allowed only for a tie; the memory components above already agree */
        CHECK(a->inflight == b->inflight || close_rel(a->inflight, b->inflight), "%s: worst stage %d vs %d", what,
              a->worst_stage, b->worst_stage);
    }
    return ok;
}

static int pick(umoe_rng *r, int n) { return (int)(umoe_rng_u64(r) % (uint64_t)n); }

/* A random divisor of n (n >= 1). */
static int rand_divisor(umoe_rng *r, int n) {
    int d[256], k = 0;
    for (int i = 1; i <= n && k < 256; i++)
        if (n % i == 0) d[k++] = i;
    return d[pick(r, k)];
}

/* A random strategy for model m on c->devices; returns 1 when spec_strategy_check accepts it. */
static int rand_strategy(umoe_rng *r, const spec_model *m, const spec_cluster *c, spec_strategy *s) {
    spec_strategy_defaults(s);
    int dev = c->devices, dpn = c->hw.devices_per_node;
    s->tp = rand_divisor(r, dpn < dev ? dpn : dev);
    s->sp = s->tp > 1 && pick(r, 4) != 0;
    s->cp = pick(r, 3) ? 1 : rand_divisor(r, dev / s->tp);
    int rest = dev / (s->tp * s->cp);
    s->pp = rand_divisor(r, rest);
    if (s->pp > m->L) s->pp = 1;
    s->dp = rest / s->pp;
    int max_vpp = m->L / s->pp;
    s->vpp = s->pp > 1 && max_vpp > 1 && pick(r, 2) ? 2 + pick(r, max_vpp - 1) : 1;
    s->ep = m->E > 0 ? rand_divisor(r, m->E) : 1;
    s->etp = m->E > 0 && pick(r, 3) == 0 ? s->tp : 1;
    s->mbs = 1 + pick(r, 2);
    s->gbs = s->mbs * s->dp * s->pp * (1 + pick(r, 4)) * (pick(r, 2) ? 2 : 1);
    static const unsigned rcs[] = {0, SPEC_RC_SELECTIVE, SPEC_RC_FULL, SPEC_RC_ACT | SPEC_RC_NORM,
                                   SPEC_RC_MLA_UP | SPEC_RC_PERMUTE | SPEC_RC_ACT};
    s->recompute = rcs[pick(r, 5)];
    if (m->attn != SPEC_ATTN_MLA) s->recompute &= ~(unsigned)SPEC_RC_MLA_UP;
    if (m->E == 0) s->recompute &= ~(unsigned)SPEC_RC_PERMUTE;
    s->zero1 = pick(r, 2);
    s->pad_layers = 1;
    s->overlap_tp = s->overlap_ep = s->overlap_dp = s->overlap_pp = pick(r, 4) != 0;
    s->offload_activations = pick(r, 8) == 0;
    s->offload_optimizer = pick(r, 8) == 0;
    s->a2a = pick(r, 2) ? SPEC_A2A_HIER : SPEC_A2A_FLAT;
    s->imbalance = pick(r, 2) ? 1.0 : 1.0 + umoe_rng_uniform(r);
    if (s->vpp > 1) s->schedule = SPEC_SCHED_INTERLEAVED;
    else s->schedule = (spec_schedule)(s->pp > 1 ? pick(r, 4) : 0);
    if (s->schedule == SPEC_SCHED_INTERLEAVED && s->vpp == 1) s->schedule = SPEC_SCHED_1F1B;
    if (s->schedule == SPEC_SCHED_DUALPIPE) s->gbs = s->mbs * s->dp * s->pp * 2 * (1 + pick(r, 3));
    char saved[UMOE_ERRLEN];
    memcpy(saved, umoe_err, sizeof saved);
    int ok = spec_strategy_check(s, m, dev, "test") == UMOE_OK;
    memcpy(umoe_err, saved, sizeof saved);
    return ok;
}

/* n valid random strategies of model m on cluster c: the fast path equals the reference. */
static int compare_random(const spec_model *m, const spec_cluster *c, umoe_rng *r, int n, const char *what) {
    int done = 0, tries = 0, bad = 0;
    sim_options fast = {0}, ref = {0};
    ref.reference_stages = 1;
    while (done < n && tries < 200 * n) {
        tries++;
        spec_strategy s;
        if (!rand_strategy(r, m, c, &s)) continue;
        sim_result a, b;
        umoe_status sa = sim_run(m, c, &s, &fast, &a), sb = sim_run(m, c, &s, &ref, &b);
        CHECK(sa == sb, "%s: status %d vs %d (%s)", what, sa, sb, umoe_err);
        if (sa != UMOE_OK || sb != UMOE_OK) continue;
        char w[256];
        snprintf(w, sizeof w, "%s L%d dense%d tp%d cp%d pp%d vpp%d ep%d dp%d mbs%d gbs%d sched%d", what, m->L,
                 m->first_k_dense, s.tp, s.cp, s.pp, s.vpp, s.ep, s.dp, s.mbs, s.gbs, s.schedule);
        if (!same_result(&a, &b, w) && ++bad > 5) break;
        done++;
    }
    CHECK(done >= n, "%s: only %d of %d valid strategies in %d tries", what, done, n, tries);
    return done;
}

static void test_grouped_equals_reference_presets(void) {
    static const char *const models[] = {"pangu-ultra-moe-718b", "deepseek-v3-671b", "mixtral-8x7b",
                                         "llama3-70b", "qwen3-235b-a22b", "gpt3-175b"};
    static const char *const clusters[] = {"ascend-910b-6144", "h800-2048", "h100-sxm-8", "a100-sxm-80gb-8",
                                           "b200-8", "ascend-910b-6144"};
    static const int devices[] = {6144, 2048, 512, 256, 1024, 96};
    umoe_rng r;
    umoe_rng_seed(&r, 12345);
    int total = 0;
    for (int i = 0; i < 6; i++) {
        spec_model m;
        spec_cluster c;
        if (spec_model_load(models[i], &m) != UMOE_OK || spec_cluster_load(clusters[i], &c) != UMOE_OK) {
            CHECK(0, "load %s / %s: %s", models[i], clusters[i], umoe_err);
            continue;
        }
        c.devices = devices[i];
        total += compare_random(&m, &c, &r, 40, models[i]);
    }
    CHECK(total >= 240, "%d strategies compared", total);
}

/* Depths and dense-layer counts the presets do not have: every split of L over pp x vpp chunks (uneven ones
 * padded), dense layers spanning several chunks and stages, all-dense and no-dense MoE models. */
static void test_grouped_equals_reference_shapes(void) {
    spec_model m;
    spec_cluster c;
    if (spec_model_load("deepseek-v3-671b", &m) != UMOE_OK || spec_cluster_load("h800-2048", &c) != UMOE_OK) {
        CHECK(0, "load: %s", umoe_err);
        return;
    }
    umoe_rng r;
    umoe_rng_seed(&r, 777);
    static const int devs[] = {64, 128, 192, 256, 384, 512};
    int total = 0;
    for (int k = 0; k < 60; k++) {
        m.L = 2 + pick(&r, 95);
        int mode = pick(&r, 4);
        m.first_k_dense = mode == 0 ? 0 : mode == 1 ? m.L : pick(&r, m.L + 1);
        m.mtp = pick(&r, 3) == 0;
        c.devices = devs[pick(&r, 6)];
        total += compare_random(&m, &c, &r, 5, "deepseek-v3 reshaped");
    }
    spec_model d;
    if (spec_model_load("llama3-70b", &d) == UMOE_OK) {
        for (int k = 0; k < 20; k++) {
            d.L = 2 + pick(&r, 95);
            d.tied = pick(&r, 2);
            c.devices = devs[pick(&r, 6)];
            total += compare_random(&d, &c, &r, 5, "llama3-70b reshaped");
        }
    }
    CHECK(total >= 400, "%d strategies compared", total);
}

/* The detailed path (always chunk by chunk) is unaffected; an unchecked strategy with pp = 0 takes the
 * reference path and keeps working. */
static void test_other_paths(void) {
    spec_model m;
    spec_cluster c;
    if (spec_model_load("pangu-ultra-moe-718b", &m) != UMOE_OK || spec_cluster_load("ascend-910b-6144", &c)) {
        CHECK(0, "load: %s", umoe_err);
        return;
    }
    spec_strategy s;
    spec_strategy_defaults(&s);
    s.tp = 8, s.sp = 1, s.pp = 16, s.vpp = 2, s.ep = 4, s.dp = c.devices / 128, s.mbs = 1, s.gbs = c.devices;
    s.schedule = SPEC_SCHED_INTERLEAVED;
    s.pad_layers = 1;
    sim_options o = {0};
    sim_result a, b;
    CHECK(sim_run(&m, &c, &s, &o, &a) == UMOE_OK, "%s", umoe_err);
    o.reference_stages = 1;
    CHECK(sim_run(&m, &c, &s, &o, &b) == UMOE_OK, "%s", umoe_err);
    same_result(&a, &b, "paper strategy");
    s.pp = 0, s.vpp = 0, s.dp = c.devices / 8, s.schedule = SPEC_SCHED_1F1B;
    o.reference_stages = 0;
    CHECK(sim_run(&m, &c, &s, &o, &a) == UMOE_OK, "pp 0: %s", umoe_err);
    o.reference_stages = 1;
    CHECK(sim_run(&m, &c, &s, &o, &b) == UMOE_OK, "pp 0: %s", umoe_err);
    same_result(&a, &b, "pp 0");
    /* long pipelines (more than 64 stages: the grouped path's other way of finding the next group) */
    spec_model d;
    if (spec_model_load("deepseek-v3-671b", &d) != UMOE_OK) {
        CHECK(0, "load: %s", umoe_err);
        return;
    }
    static const int Ls[] = {300, 257, 193};
    static const int pps[] = {128, 96, 65};
    for (int i = 0; i < 3; i++) {
        for (int vpp = 1; vpp <= 2; vpp++) {
            d.L = Ls[i];
            d.first_k_dense = 3 + 70 * (vpp - 1);
            c.devices = pps[i] * 2;
            spec_strategy_defaults(&s);
            s.tp = 1, s.cp = 1, s.pp = pps[i], s.vpp = vpp, s.ep = 2, s.dp = 2, s.mbs = 1, s.gbs = 2 * pps[i];
            s.schedule = vpp > 1 ? SPEC_SCHED_INTERLEAVED : SPEC_SCHED_1F1B;
            s.pad_layers = 1;
            CHECK(spec_strategy_check(&s, &d, c.devices, "test") == UMOE_OK, "%s", umoe_err);
            o.reference_stages = 0;
            CHECK(sim_run(&d, &c, &s, &o, &a) == UMOE_OK, "%s", umoe_err);
            o.reference_stages = 1;
            CHECK(sim_run(&d, &c, &s, &o, &b) == UMOE_OK, "%s", umoe_err);
            char w[64];
            snprintf(w, sizeof w, "L%d pp%d vpp%d", d.L, s.pp, vpp);
            same_result(&a, &b, w);
        }
    }
}

/* Precomputed model counts give the same result, are ignored for another model or causal_half, and the
 * closed form with them allocates nothing. */
static void test_model_pre(void) {
    spec_model m, m2;
    spec_cluster c;
    if (spec_model_load("pangu-ultra-moe-718b", &m) != UMOE_OK || spec_model_load("mixtral-8x7b", &m2) != UMOE_OK ||
        spec_cluster_load("ascend-910b-6144", &c) != UMOE_OK) {
        CHECK(0, "load: %s", umoe_err);
        return;
    }
    sim_model_pre pre;
    sim_model_pre_init(&pre, &m, 0);
    spec_params pc;
    spec_params_count(&m, &pc);
    CHECK(pre.pc.total == pc.total && pre.pc.active == pc.active, "pre counts");
    spec_strategy s;
    spec_strategy_defaults(&s);
    s.tp = 8, s.sp = 1, s.pp = 16, s.vpp = 1, s.ep = 4, s.dp = c.devices / 128, s.mbs = 1, s.gbs = c.devices;
    s.pad_layers = 1;
    sim_options o = {0};
    sim_result a, b;
    CHECK(sim_run(&m, &c, &s, &o, &a) == UMOE_OK, "%s", umoe_err);
    o.pre = &pre;
    size_t before = umoe_alloc_current();
    CHECK(sim_run(&m, &c, &s, &o, &b) == UMOE_OK, "%s", umoe_err);
    CHECK(umoe_alloc_current() == before, "the fast path allocates nothing");
    CHECK(a.params_total == b.params_total && a.flops_per_token == b.flops_per_token &&
          a.step_time_s == b.step_time_s && a.mfu == b.mfu, "with pre: identical");
    /* another model with m's pre: its own counts */
    spec_strategy s2;
    spec_strategy_defaults(&s2);
    s2.tp = 8, s2.sp = 1, s2.pp = 4, s2.ep = 8, s2.dp = c.devices / 32, s2.mbs = 1, s2.gbs = c.devices;
    o.pre = NULL;
    CHECK(sim_run(&m2, &c, &s2, &o, &a) == UMOE_OK, "%s", umoe_err);
    o.pre = &pre;
    CHECK(sim_run(&m2, &c, &s2, &o, &b) == UMOE_OK, "%s", umoe_err);
    CHECK(a.params_total == b.params_total && a.mfu == b.mfu, "pre of another model ignored");
    /* causal_half differs from the pre's: ignored */
    o.causal_half = 1;
    o.pre = NULL;
    CHECK(sim_run(&m, &c, &s, &o, &a) == UMOE_OK, "%s", umoe_err);
    o.pre = &pre;
    CHECK(sim_run(&m, &c, &s, &o, &b) == UMOE_OK, "%s", umoe_err);
    CHECK(a.flops_per_token == b.flops_per_token && a.mfu == b.mfu, "pre of another causal_half ignored");
}

/* The plain formula of sim_gemm_eff (docs/cost-model.md "Compute"), computed here independently. */
static double eff_plain(const spec_hardware *h, double f) {
    int n = h->n_gemm_eff;
    if (n <= 0) return 0.7;
    if (n == 1 || f <= h->gemm_eff_flops[0]) return h->gemm_eff[0];
    if (f >= h->gemm_eff_flops[n - 1]) return h->gemm_eff[n - 1];
    int i = 1;
    while (f > h->gemm_eff_flops[i]) i++;
    double x0 = h->gemm_eff_flops[i - 1], x1 = h->gemm_eff_flops[i];
    return h->gemm_eff[i - 1] + log(f / x0) / log(x1 / x0) * (h->gemm_eff[i] - h->gemm_eff[i - 1]);
}

static void test_gemm_eff_cache(void) {
    spec_hardware h;
    if (spec_hardware_load("ascend-910b", &h) != UMOE_OK) {
        CHECK(0, "load: %s", umoe_err);
        return;
    }
    CHECK(h.n_gemm_eff > 2, "table loaded");
    CHECK(h.gemm_eff_lnr_src[1] == h.gemm_eff_flops[1], "the loader fills the cache");
    spec_hardware raw = h; /* the same table without the cache, as a struct built in code */
    memset(raw.gemm_eff_lnr, 0, sizeof raw.gemm_eff_lnr);
    memset(raw.gemm_eff_lnr_src, 0, sizeof raw.gemm_eff_lnr_src);
    umoe_rng r;
    umoe_rng_seed(&r, 99);
    int bad = 0;
    for (int k = 0; k < 2000; k++) {
        double f = pow(10.0, 6 + 7 * umoe_rng_uniform(&r));
        double want = eff_plain(&h, f);
        /* twice: the second call hits the memo of ln */
        for (int rep = 0; rep < 2; rep++) {
            if (sim_gemm_eff(&h, f) != want || sim_gemm_eff(&raw, f) != want) bad++;
        }
        if (!close_rel(spec_gemm_eff(&h, f), want) || !close_rel(spec_gemm_eff(&raw, f), want)) bad++;
    }
    CHECK(bad == 0, "%d lookups differ from the plain formula", bad);
    /* tables of every size, built in code (prepared or not) */
    bad = 0;
    for (int n = 1; n <= SPEC_EFF_MAX; n++) {
        spec_hardware t;
        memset(&t, 0, sizeof t);
        t.n_gemm_eff = n;
        double x = 1e6;
        for (int i = 0; i < n; i++) {
            x *= 1.5 + 4 * umoe_rng_uniform(&r);
            t.gemm_eff_flops[i] = x;
            t.gemm_eff[i] = 0.05 + 0.9 * umoe_rng_uniform(&r);
        }
        spec_hardware tp = t;
        spec_hardware_prepare(&tp);
        for (int k = 0; k < 300; k++) {
            double f = pow(10.0, 5 + 0.9 * n * umoe_rng_uniform(&r));
            if (k < n) f = t.gemm_eff_flops[k]; /* exactly at the points */
            double want = eff_plain(&t, f);
            if (sim_gemm_eff(&t, f) != want || sim_gemm_eff(&tp, f) != want) bad++;
        }
    }
    CHECK(bad == 0, "%d lookups on tables of 1..%d points differ from the plain formula", bad, SPEC_EFF_MAX);
    /* sim_gemm_time (one division: the larger side found by cross-multiplying) = the plain roofline
     * max(flops / (peak eff), bytes / (bw mem_eff)) */
    bad = 0;
    for (int k = 0; k < 20000; k++) {
        double M = floor(pow(2.0, 16 * umoe_rng_uniform(&r))), N = floor(pow(2.0, 16 * umoe_rng_uniform(&r)));
        double K = floor(pow(2.0, 16 * umoe_rng_uniform(&r)));
        int bits = k % 3 == 0 ? 8 : 16;
        double fl = 2.0 * M * N * K, ib = bits == 8 ? 1.0 : 2.0;
        double peak = bits == 8 && h.peak_fp8 > 0 ? h.peak_fp8 : h.peak_bf16;
        double tc = fl / (peak * eff_plain(&h, fl));
        double tm = (ib * (M * K + K * N) + 2.0 * M * N) / (h.hbm_bw * h.mem_eff);
        double want = tc > tm ? tc : tm, got = sim_gemm_time(&h, M, N, K, bits);
        if (!(fabs(got - want) <= 1e-15 * want)) bad++;
    }
    CHECK(bad == 0, "%d GEMM times differ from the plain roofline", bad);
    /* a table edited after loading: the stale cache entries are not used */
    spec_hardware ed = h;
    ed.gemm_eff_flops[2] *= 1.5;
    double f = 0.5 * (ed.gemm_eff_flops[1] + ed.gemm_eff_flops[2]);
    CHECK(sim_gemm_eff(&ed, f) == eff_plain(&ed, f), "edited table: %.17g vs %.17g", sim_gemm_eff(&ed, f),
          eff_plain(&ed, f));
    f = 0.5 * (ed.gemm_eff_flops[2] + ed.gemm_eff_flops[3]);
    CHECK(sim_gemm_eff(&ed, f) == eff_plain(&ed, f), "edited table, next segment");
    spec_hardware_prepare(&ed);
    CHECK(sim_gemm_eff(&ed, f) == eff_plain(&ed, f), "edited table, prepared again");
}

int main(void) {
    RUN(test_grouped_equals_reference_presets);
    RUN(test_grouped_equals_reference_shapes);
    RUN(test_other_paths);
    RUN(test_model_pre);
    RUN(test_gemm_eff_cache);
    TEST_MAIN_END();
}
