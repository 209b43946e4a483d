/* test_sim_memory.c - activation memory against Korthikanti et al. 2022 (arXiv 2205.05198) Table 2, exactly,
 * for a dense GPT layer with the unfused attention the paper assumes; and the in-flight micro-batch
 * counts of the schedules (through sim_run's memory breakdown). */
#include "test.h"
#include "sim_fixtures.h"

static const double s_ = 2048, b_ = 1, h_ = 12288, a_ = 96;

static double act(int tp, int sp, unsigned rc) {
    spec_model m;
    spec_strategy s;
    sim_options o = {0};
    o.attn_no_flash = 1;
    fx_gpt(&m, 96, (int)h_, (int)a_, (int)s_);
    fx_strategy(&s, tp, 1, 1, (int)b_, 1);
    s.sp = sp;
    s.recompute = rc;
    return sim_layer_act_bytes(&m, &s, &o, 0);
}

static void test_korthikanti_no_parallelism(void) {
    double want = s_ * b_ * h_ * (34 + 5 * a_ * s_ / h_);
    CHECK_CLOSE(act(1, 0, 0), want, 1e-12, 0, "sbh(34 + 5as/h)");
}

static void test_korthikanti_tp(void) {
    double t = 8;
    double want = s_ * b_ * h_ * (10 + 24 / t + 5 * a_ * s_ / (h_ * t));
    CHECK_CLOSE(act(8, 0, 0), want, 1e-12, 0, "sbh(10 + 24/t + 5as/(ht))");
}

static void test_korthikanti_tp_sp(void) {
    double t = 8;
    double want = s_ * b_ * h_ * (34 / t + 5 * a_ * s_ / (h_ * t));
    CHECK_CLOSE(act(8, 1, 0), want, 1e-12, 0, "sbh(34/t + 5as/(ht))");
}

static void test_korthikanti_sp_selective(void) {
    double t = 8;
    CHECK_CLOSE(act(8, 1, SPEC_RC_SELECTIVE), s_ * b_ * h_ * 34 / t, 1e-12, 0, "sbh 34/t");
}

static void test_korthikanti_full(void) {
    CHECK_CLOSE(act(1, 0, SPEC_RC_FULL), 2 * s_ * b_ * h_, 1e-12, 0, "2sbh");
    CHECK_CLOSE(act(8, 0, SPEC_RC_FULL), 2 * s_ * b_ * h_, 1e-12, 0, "2sbh with TP, no SP");
}

/* Flash attention removes the s^2 term, keeping only the fp32 log-sum-exp (4a bytes per token). */
static void test_flash_has_no_s2_term(void) {
    spec_model m;
    spec_strategy s;
    sim_options o = {0};
    fx_gpt(&m, 96, (int)h_, (int)a_, (int)s_);
    fx_strategy(&s, 1, 1, 1, 1, 1);
    CHECK_CLOSE(sim_layer_act_bytes(&m, &s, &o, 0), s_ * b_ * (34 * h_ + 4 * a_), 1e-12, 0, "flash");
}

/* Flash attention with selective recompute (attn_core): the engine reruns the whole core, so the attention
 * output (2h per token) and the log-sum-exp are freed too: 32 sbh left (docs/cost-model.md "Recompute modules"). */
static void test_flash_selective_frees_core_output(void) {
    spec_model m;
    spec_strategy s;
    sim_options o = {0};
    fx_gpt(&m, 96, (int)h_, (int)a_, (int)s_);
    fx_strategy(&s, 1, 1, 1, 1, 1);
    s.recompute = SPEC_RC_SELECTIVE;
    CHECK_CLOSE(sim_layer_act_bytes(&m, &s, &o, 0), s_ * b_ * 32 * h_, 1e-12, 0, "flash + selective");
}

/* 1F1B: the first stage holds pp micro-batches (Narayanan et al. 2021); interleaved: pp(1 + (pp-1)/(pp v)). */
static void test_inflight_first_stage(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    sim_options o = {0};
    fx_gpt(&m, 32, 4096, 32, 2048);
    m.V = 256; /* keep the last stage light so the first stage is the memory peak */
    fx_hw_a100(&c.hw);
    c.devices = 8;
    fx_strategy(&s, 1, 4, 2, 1, 64);
    CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.worst_stage == 0, "worst stage %d", r.worst_stage);
    CHECK_CLOSE(r.inflight, 4, 0, 1e-12, "1F1B in flight");
    double per_layer = sim_layer_act_bytes(&m, &s, &o, 0);
    CHECK_CLOSE(r.memory[SIM_M_ACTIVATIONS], 4 * 8 * per_layer, 1e-12, 0, "activations = pp x L/pp layers");
    s.schedule = SPEC_SCHED_INTERLEAVED;
    s.vpp = 2;
    CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(r.inflight, 4 * (1 + 3.0 / 8), 1e-12, 0, "interleaved in flight");
}

/* Weights 2 + grads 4 bytes per parameter, Adam 12 bytes sharded over DP with ZeRO-1. */
static void test_optimizer_sharding(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r0, r1;
    sim_options o = {0};
    fx_gpt(&m, 8, 2048, 16, 1024);
    fx_hw_a100(&c.hw);
    c.devices = 8;
    fx_strategy(&s, 1, 1, 8, 1, 64);
    CHECK(sim_run(&m, &c, &s, &o, &r0) == UMOE_OK, "%s", umoe_err);
    s.zero1 = 1;
    CHECK(sim_run(&m, &c, &s, &o, &r1) == UMOE_OK, "%s", umoe_err);
    double params = r0.memory[SIM_M_WEIGHTS] / 2;
    CHECK_CLOSE(params, r0.params_total, 1e-9, 0, "one stage holds every parameter");
    CHECK_CLOSE(r0.memory[SIM_M_GRADS], 4 * params, 1e-12, 0, "fp32 grads");
    CHECK_CLOSE(r0.memory[SIM_M_OPTIMIZER], 12 * params, 1e-12, 0, "Adam + master");
    CHECK_CLOSE(r1.memory[SIM_M_OPTIMIZER], 12 * params / 8, 1e-12, 0, "ZeRO-1 over dp 8");
}

int main(void) {
    RUN(test_korthikanti_no_parallelism);
    RUN(test_korthikanti_tp);
    RUN(test_korthikanti_tp_sp);
    RUN(test_korthikanti_sp_selective);
    RUN(test_korthikanti_full);
    RUN(test_flash_has_no_s2_term);
    RUN(test_flash_selective_frees_core_output);
    RUN(test_inflight_first_stage);
    RUN(test_optimizer_sharding);
    TEST_MAIN_END();
}
