/* test_sim_step.c - whole-step properties of sim_run: the closed-form pipeline bubble, MFU bounds, the effect
 * of imbalance, recompute, EP all-to-all style and ZeRO-1, invalid strategies, and the planner fast path's
 * speed (printed, bounded loosely). */
#include <time.h>
#include "test.h"
#include "sim_fixtures.h"

static void setup_dense(spec_model *m, spec_cluster *c, spec_strategy *s) {
    fx_gpt(m, 48, 6144, 48, 2048);
    fx_hw_a100(&c->hw);
    c->devices = 64;
    fx_strategy(s, 8, 4, 2, 1, 64);
}

/* For 1F1B the bubble is sum of stage times - the slowest (= (pp-1)(f+b) for equal stages). With a tiny
 * vocabulary the stages are nearly equal, so bubble / (n_mb x stage) ~ (pp-1)/n_mb. */
static void test_bubble_1f1b(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    setup_dense(&m, &c, &s);
    m.V = 128;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    double per_mb = r.stage_fwd_s[0] + r.stage_bwd_s[0];
    CHECK_CLOSE(r.breakdown[SIM_T_BUBBLE] / (r.n_microbatches * per_mb), 3.0 / 32, 0.02, 0, "bubble fraction");
    /* interleaving divides it by vpp */
    s.schedule = SPEC_SCHED_INTERLEAVED; s.vpp = 2;
    sim_result r2;
    CHECK(sim_run(&m, &c, &s, NULL, &r2) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(r2.breakdown[SIM_T_BUBBLE], r.breakdown[SIM_T_BUBBLE] / 2, 1e-9, 0, "interleaved / vpp");
    /* zero-bubble: (pp-1)(F + B - 2W) is well below 1F1B's (pp-1)(F+B) */
    s.schedule = SPEC_SCHED_ZB1P; s.vpp = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r2) == UMOE_OK, "%s", umoe_err);
    CHECK(r2.breakdown[SIM_T_BUBBLE] < 0.7 * r.breakdown[SIM_T_BUBBLE], "ZB-1P bubble %g vs %g",
          r2.breakdown[SIM_T_BUBBLE], r.breakdown[SIM_T_BUBBLE]);
}

static void test_breakdown_sums_and_mfu(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    setup_dense(&m, &c, &s);
    s.sp = 1; s.recompute = SPEC_RC_SELECTIVE; s.zero1 = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    double sum = 0;
    for (int i = 0; i < SIM_T_COUNT; i++) sum += r.breakdown[i];
    CHECK_CLOSE(sum, r.step_time_s, 1e-9, 0, "breakdown sums to the step time");
    CHECK(r.mfu > 0.2 && r.mfu < 0.87, "mfu %g", r.mfu);
    CHECK(r.hfu > r.mfu, "hfu %g > mfu %g with recompute", r.hfu, r.mfu);
    /* MFU numerator: 3 x forward FLOPs x tokens; forward = 2 x params(matmul) + attention 4 T C per layer */
    double tok = 64.0 * 2048;
    CHECK_CLOSE(r.mfu * r.step_time_s * 64 * 312e12, r.flops_per_token * tok, 1e-9, 0, "MFU definition");
    CHECK_CLOSE(r.tokens_per_s, tok / r.step_time_s, 1e-12, 0, "tokens/s");
}

/* The detailed path (event simulation) keeps the breakdown exact for every schedule, DualPipe included, and
 * stays close to the closed form. */
static void test_detailed_breakdown(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_options o = {0};
    o.detailed = 1;
    setup_dense(&m, &c, &s);
    spec_schedule sc[] = {SPEC_SCHED_1F1B, SPEC_SCHED_INTERLEAVED, SPEC_SCHED_ZB1P, SPEC_SCHED_DUALPIPE};
    for (int i = 0; i < 4; i++) {
        sim_result r, rc;
        s.schedule = sc[i];
        s.vpp = sc[i] == SPEC_SCHED_INTERLEAVED ? 2 : 1;
        CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_OK, "%s", umoe_err);
        CHECK(sim_run(&m, &c, &s, NULL, &rc) == UMOE_OK, "%s", umoe_err);
        double sum = 0;
        for (int k = 0; k < SIM_T_COUNT; k++) sum += r.breakdown[k];
        CHECK_CLOSE(sum, r.step_time_s, 1e-9, 0, "detailed breakdown sums to the step");
        CHECK_CLOSE(r.step_time_s, rc.step_time_s, 0.1, 0, "detailed vs closed form within 10%");
        CHECK(r.pipeline.events == NULL, "no events unless recorded");
    }
}

static void test_recompute_costs_time_saves_memory(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r0, r1;
    setup_dense(&m, &c, &s);
    CHECK(sim_run(&m, &c, &s, NULL, &r0) == UMOE_OK, "%s", umoe_err);
    s.recompute = SPEC_RC_FULL;
    CHECK(sim_run(&m, &c, &s, NULL, &r1) == UMOE_OK, "%s", umoe_err);
    CHECK(r1.step_time_s > r0.step_time_s * 1.2, "full recompute %g vs %g", r1.step_time_s, r0.step_time_s);
    CHECK(r1.memory[SIM_M_ACTIVATIONS] < r0.memory[SIM_M_ACTIVATIONS] / 5, "activations");
    CHECK(r0.breakdown[SIM_T_RECOMPUTE] == 0, "no recompute time without recompute");
}

static void setup_moe(spec_model *m, spec_cluster *c, spec_strategy *s) {
    fx_moe(m);
    fx_hw_a100(&c->hw);
    c->devices = 32;
    fx_strategy(s, 1, 1, 32, 1, 64);
    s->ep = 32;
}

static void test_imbalance_slows_moe(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r0, r1, r2;
    setup_moe(&m, &c, &s);
    CHECK(sim_run(&m, &c, &s, NULL, &r0) == UMOE_OK, "%s", umoe_err);
    s.imbalance = 1.5;
    CHECK(sim_run(&m, &c, &s, NULL, &r1) == UMOE_OK, "%s", umoe_err);
    CHECK(r1.step_time_s > r0.step_time_s, "imbalance slows");
    CHECK_CLOSE(r1.breakdown[SIM_T_EP], 1.5 * r0.breakdown[SIM_T_EP], 0.01, 0, "EP volume scales with imbalance");
    CHECK(r1.memory[SIM_M_DISPATCH] > r0.memory[SIM_M_DISPATCH], "dispatch buffers grow");
    /* a histogram with the same max-rank load gives the same answer: 2 experts per rank; rank 0 loaded 1.5x */
    s.imbalance = 1.0;
    s.n_hist = 64;
    for (int e = 0; e < 64; e++) s.hist[e] = 1.0;
    s.hist[0] = s.hist[1] = 1.5; /* rank 0 load 3 vs the others' 2 */
    /* mean = (3 + 31 x 2) / 32 = 65/32; max/mean = 3 x 32 / 65 */
    CHECK(sim_run(&m, &c, &s, NULL, &r2) == UMOE_OK, "%s", umoe_err);
    sim_result r3;
    s.n_hist = 0; s.imbalance = 3.0 * 32 / 65;
    CHECK(sim_run(&m, &c, &s, NULL, &r3) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(r2.step_time_s, r3.step_time_s, 1e-12, 0, "histogram == its max/mean factor");
}

static void test_hierarchical_a2a_helps_across_nodes(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r0, r1;
    setup_moe(&m, &c, &s);
    m.K = 8;
    CHECK(sim_run(&m, &c, &s, NULL, &r0) == UMOE_OK, "%s", umoe_err);
    s.a2a = SPEC_A2A_HIER;
    CHECK(sim_run(&m, &c, &s, NULL, &r1) == UMOE_OK, "%s", umoe_err);
    CHECK(r1.breakdown[SIM_T_EP] < r0.breakdown[SIM_T_EP], "hier %g < flat %g", r1.breakdown[SIM_T_EP],
          r0.breakdown[SIM_T_EP]);
}

static void test_invalid_strategy(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    setup_dense(&m, &c, &s);
    s.dp = 3;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_EINPUT, "product != devices must be rejected");
}

/* The planner's hot path: closed form, no allocation. Prints the rate; the bound is loose (shared CI). */
/* The unfused Megatron cross-entropy moves 38 - 12 more bytes per logit forward and 14 - 8 backward than the
 * fused one; with pp = 1, no DP and one device the step grows by exactly that memory time per micro-batch. */
static void test_unfused_loss_costs_logit_passes(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r0, r1;
    fx_gpt(&m, 4, 1024, 16, 1024);
    m.V = 131072;
    fx_hw_simple(&c.hw);
    c.devices = 1;
    fx_strategy(&s, 1, 1, 1, 1, 4);
    sim_options o = {0};
    CHECK(sim_run(&m, &c, &s, &o, &r0) == UMOE_OK, "%s", umoe_err);
    o.loss_unfused = 1;
    CHECK(sim_run(&m, &c, &s, &o, &r1) == UMOE_OK, "%s", umoe_err);
    double logits = 1024.0 * 131072, extra = ((38 - 12) + (14 - 8)) * logits / c.hw.hbm_bw;
    CHECK_CLOSE(r1.step_time_s - r0.step_time_s, 4 * extra, 1e-9, 0, "unfused loss: 4 micro-batches x extra bytes");
}

/* Flash attention: the backward (2.5x the forward's FLOPs) runs at 0.82 of the forward's efficiency, so a
 * layer's compute grows with attn_eff lowered exactly as the attention core's share predicts. */
static void test_attention_backward_efficiency(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r0, r1;
    fx_gpt(&m, 4, 1024, 16, 4096);
    m.V = 128;
    fx_hw_simple(&c.hw);
    c.devices = 1;
    fx_strategy(&s, 1, 1, 1, 1, 1);
    CHECK(sim_run(&m, &c, &s, NULL, &r0) == UMOE_OK, "%s", umoe_err);
    c.hw.attn_eff = 0.25; /* half of 0.5: the core's forward and backward times double */
    CHECK(sim_run(&m, &c, &s, NULL, &r1) == UMOE_OK, "%s", umoe_err);
    /* core forward at attn_eff 0.5: half the causal 4 t T C FLOPs per layer */
    double fwd = 0.5 * 4.0 * 4096 * 4096 * 1024 / (100e12 * 0.5);
    double per_layer = fwd + 2.5 * fwd / 0.82;
    CHECK_CLOSE(r1.step_time_s - r0.step_time_s, 4 * per_layer, 1e-6, 0, "attention core fwd + bwd / 0.82");
}

/* TP comm overlap: the GEMMs that overlap a reduce-scatter (forward: output and FFN down projections; backward:
 * dgrad + wgrad of the QKV and FFN up projections) lose 16 of 132 SMs (Transformer Engine userbuffers); the
 * step's compute grows by exactly that share, per layer and micro-batch. */
static void test_tp_overlap_sm_tax(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r0, r1;
    fx_gpt(&m, 4, 4096, 32, 4096);
    m.V = 128;
    fx_hw_simple(&c.hw);
    c.devices = 2;
    fx_strategy(&s, 2, 1, 1, 1, 2);
    s.sp = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r0) == UMOE_OK, "%s", umoe_err);
    s.overlap_tp = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r1) == UMOE_OK, "%s", umoe_err);
    double t = 4096, C = 4096, q = 2048, F = 8192;
    double qkv = sim_gemm_time(&c.hw, t, 3 * q, C, 16), proj = sim_gemm_time(&c.hw, t, C, q, 16);
    double fc1 = sim_gemm_time(&c.hw, t, F, C, 16), fc2 = sim_gemm_time(&c.hw, t, C, F, 16);
    double tax = 16.0 / 116.0, per_layer = tax * (proj + fc2 + 2 * (qkv + fc1));
    CHECK_CLOSE(r1.breakdown[SIM_T_COMPUTE] - r0.breakdown[SIM_T_COMPUTE], 2 * 4 * per_layer, 1e-6, 0,
                "2 micro-batches x 4 layers x taxed GEMM time");
}

static void test_fast_path_speed(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    setup_moe(&m, &c, &s);
    size_t before = umoe_alloc_current();
    int n = 200000;
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a); /* CPU time: the test machine is shared */
    for (int i = 0; i < n; i++) {
        s.mbs = 1 + (i & 1);
        sim_run(&m, &c, &s, NULL, &r);
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    double us = ((b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec)) / n * 1e6;
    printf("sim_run closed form: %.3f us CPU per call (%.2f M evaluations/s/core)\n", us, 1.0 / us);
    CHECK(us < 20, "%.3f us per call", us);
    CHECK(umoe_alloc_current() == before, "no allocation");
}

int main(void) {
    RUN(test_bubble_1f1b);
    RUN(test_breakdown_sums_and_mfu);
    RUN(test_detailed_breakdown);
    RUN(test_recompute_costs_time_saves_memory);
    RUN(test_imbalance_slows_moe);
    RUN(test_hierarchical_a2a_helps_across_nodes);
    RUN(test_invalid_strategy);
    RUN(test_unfused_loss_costs_logit_passes);
    RUN(test_attention_backward_efficiency);
    RUN(test_tp_overlap_sm_tax);
    RUN(test_fast_path_speed);
    TEST_MAIN_END();
}
