/* test_sim_traffic.c - the communication volumes sim_run derives from a strategy, checked against the
 * collectives computed by hand: DP gradient sync sized per device (dense over dp, experts over
 * edp = devices / (ep etp pp)), ZeRO-1 = reduce-scatter of fp32 grads + all-gather of bf16 params, TP
 * all-reduces per layer, EP dispatch/combine volume x imbalance. */
#include "test.h"
#include "sim_fixtures.h"

/* One dense GPT layer on 8 devices, pure DP, no overlap: dp_comm = ring all-reduce of 4 bytes x params. */
static void test_dp_allreduce_sized_per_device(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    fx_gpt(&m, 2, 1024, 16, 512);
    fx_hw_simple(&c.hw);
    c.devices = 8;
    fx_strategy(&s, 1, 1, 8, 1, 8);
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    double params = r.params_total; /* every parameter lives on every device */
    CHECK_CLOSE(r.breakdown[SIM_T_DP], sim_allreduce_time(&c.hw, 8, 8, 4.0 * params), 1e-12, 0, "dp all-reduce");
    s.zero1 = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    double want = sim_reducescatter_time(&c.hw, 8, 8, 4.0 * params) + sim_allgather_time(&c.hw, 8, 8, 2.0 * params);
    CHECK_CLOSE(r.breakdown[SIM_T_DP], want, 1e-12, 0, "zero1 reduce-scatter + all-gather");
    /* with TP 2 the dense parameters per device halve (norms stay replicated) */
    fx_strategy(&s, 2, 1, 4, 1, 8);
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    double per_dev = r.memory[SIM_M_WEIGHTS] / 2;
    CHECK(per_dev < 0.55 * params && per_dev > 0.45 * params, "tp2 halves the parameters: %g of %g", per_dev, params);
    CHECK_CLOSE(r.breakdown[SIM_T_DP], sim_allreduce_time(&c.hw, 4, 4, 4.0 * per_dev), 1e-12, 0, "dp over 4");
}

/* Experts and dense parameters sync over different groups: 16 devices, ep 4 -> expert DP group of 4. */
static void test_expert_dp_group(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    fx_moe(&m);
    m.L = 2; m.first_k_dense = 0; m.E_shared = 0; m.mtp = 0;
    fx_hw_simple(&c.hw);
    c.devices = 16;
    fx_strategy(&s, 1, 1, 16, 1, 16);
    s.ep = 4;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    /* expert parameters per device: L layers x E/ep experts x 3 C F_e (SwiGLU) */
    double pe = 2.0 * (64 / 4) * 3.0 * m.C * m.F_expert;
    double pd = r.memory[SIM_M_WEIGHTS] / 2 - pe;
    /* dense group: 16 ranks over 2 nodes (8 per node); expert group edp = 16 / 4 = 4 ranks, stride 4: 2 per node */
    double want = sim_allreduce_time(&c.hw, 16, 8, 4.0 * pd) + sim_allreduce_time(&c.hw, 4, 2, 4.0 * pe);
    CHECK_CLOSE(r.breakdown[SIM_T_DP], want, 1e-9, 0, "dense over 16, experts over 4");
}

/* EP: 4 all-to-alls per MoE layer (dispatch + combine, forward + backward) of t K C 2 bytes x imbalance. */
static void test_ep_volume(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    fx_moe(&m);
    m.L = 1; m.first_k_dense = 0; m.E_shared = 0; m.mtp = 0;
    fx_hw_simple(&c.hw);
    c.devices = 8;
    fx_strategy(&s, 1, 1, 8, 1, 8);
    s.ep = 8;
    s.imbalance = 1.25;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    double bytes = (double)m.T * m.K * m.C * 2.0 * 1.25;
    CHECK_CLOSE(r.breakdown[SIM_T_EP], 4 * sim_alltoall_time(&c.hw, 8, 8, bytes), 1e-12, 0, "ep volume");
}

/* TP without SP: 2 all-reduces of t C bf16 forward + 2 backward per dense layer; with SP the same bytes
 * as all-gather + reduce-scatter pairs (and the same time on a ring). */
static void test_tp_per_layer(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r0, r1;
    fx_gpt(&m, 4, 1024, 16, 512);
    fx_hw_simple(&c.hw);
    c.devices = 8;
    fx_strategy(&s, 8, 1, 1, 1, 1);
    CHECK(sim_run(&m, &c, &s, NULL, &r0) == UMOE_OK, "%s", umoe_err);
    double ar = sim_allreduce_time(&c.hw, 8, 8, 512.0 * 1024 * 2);
    /* + embedding all-reduce forward and the head's input all-reduce backward */
    CHECK_CLOSE(r0.breakdown[SIM_T_TP], 4 * 4 * ar + 2 * ar, 1e-12, 0, "tp all-reduces");
    s.sp = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r1) == UMOE_OK, "%s", umoe_err);
    /* SP: all-gather + reduce-scatter move what the all-reduce moved, plus the backward re-gather of each
     * pair's sequence-parallel input (2 pairs x 4 layers) and of the LM head's input (Korthikanti et al. 2022
     * Sec. 4.2.2) */
    double ag = sim_allgather_time(&c.hw, 8, 8, 512.0 * 1024 * 2);
    CHECK_CLOSE(r1.breakdown[SIM_T_TP], r0.breakdown[SIM_T_TP] + (2 * 4 + 1) * ag, 1e-9, 0,
                "SP: same bytes + the backward re-gathers");
    s.overlap_tp = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r1) == UMOE_OK, "%s", umoe_err);
    CHECK(r1.breakdown[SIM_T_TP] < r0.breakdown[SIM_T_TP], "overlap hides some TP time");
}

/* The optimizer step is Megatron-LM's mixed-precision optimizer over HBM: bf16 runs 38 bytes per updated
 * parameter (grad-norm 4, Adam 28, master -> 16-bit copy 6) plus 4 per local parameter (zeroing the fp32
 * main-grad buffer); fp16 runs 52 (+ fp16 -> fp32 grad cast 6, unscale and inf check 8) plus 2, and reduce
 * fp16 gradients over DP (only bf16 forces fp32 reduction). ZeRO-1 shards the per-updated-parameter part. */
static void test_optimizer_step_and_fp16_grads(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    fx_gpt(&m, 2, 1024, 16, 512);
    fx_hw_simple(&c.hw); /* hbm 1 TB/s, mem_eff 1 */
    c.devices = 8;
    fx_strategy(&s, 1, 1, 8, 1, 8);
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    double p = r.params_total;
    CHECK_CLOSE(r.breakdown[SIM_T_OPTIMIZER], (38.0 + 4.0) * p / 1e12, 1e-12, 0, "bf16: 42 B per parameter");
    s.zero1 = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(r.breakdown[SIM_T_OPTIMIZER], (38.0 * p / 8 + 4.0 * p) / 1e12, 1e-12, 0, "bf16 zero1: shard + zeroing");
    s.zero1 = 0;
    s.precision = SPEC_PREC_FP16;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(r.breakdown[SIM_T_OPTIMIZER], (52.0 + 2.0) * p / 1e12, 1e-12, 0, "fp16: 54 B per parameter");
    CHECK_CLOSE(r.breakdown[SIM_T_DP], sim_allreduce_time(&c.hw, 8, 8, 2.0 * p), 1e-12, 0, "fp16 grads reduced");
}

/* DP overlap (Megatron-Core buckets): when the reduce-scatter and all-gather fit behind the last backward and
 * the first forward, what stays exposed is the last gradient bucket's reduce-scatter and the first parameter
 * bucket's all-gather; with PP 1 that bucket holds the input embedding (51200 x 1024 parameters here, more than
 * the 40M-parameter default bucket). */
static void test_dp_overlap_last_bucket(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_result r;
    fx_gpt(&m, 2, 1024, 16, 4096);
    fx_hw_simple(&c.hw);
    c.devices = 8;
    fx_strategy(&s, 1, 1, 8, 1, 64);
    s.zero1 = 1;
    s.overlap_dp = 1;
    CHECK(sim_run(&m, &c, &s, NULL, &r) == UMOE_OK, "%s", umoe_err);
    double full = sim_reducescatter_time(&c.hw, 8, 8, 4.0 * r.params_total);
    CHECK(full < r.stage_bwd_s[0], "the whole reduce-scatter fits behind one backward (%g < %g)", full,
          r.stage_bwd_s[0]);
    double emb = 51200.0 * 1024;
    double want = sim_reducescatter_time(&c.hw, 8, 8, 4.0 * emb) + sim_allgather_time(&c.hw, 8, 8, 2.0 * emb);
    CHECK_CLOSE(r.breakdown[SIM_T_DP], want, 1e-12, 0, "exposed: the embedding bucket");
}

int main(void) {
    RUN(test_dp_allreduce_sized_per_device);
    RUN(test_expert_dp_group);
    RUN(test_ep_volume);
    RUN(test_tp_per_layer);
    RUN(test_optimizer_step_and_fp16_grads);
    RUN(test_dp_overlap_last_bucket);
    TEST_MAIN_END();
}
