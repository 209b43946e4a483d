/* test_sim_engine.c - the simulator's model of our engine (src/sim/cost_engine*.c) against the engine itself:
 * the predicted parameter bytes and activation arena (resident, shared, whole) equal what model_init +
 * model_memory_report allocate, for MLA and GQA, sandwich and pre-norm, several batches and every recompute
 * policy (the test links both; the simulator itself never includes the engine). And the time model behaves:
 * positive parts that add up, recompute adds time and never removes any, ranks beyond the cores slow each rank
 * by cores / ranks, EP adds exchange time, invalid configurations are refused. */
#include <string.h>
#include "model_test_spec.h"
#include "test.h"
#include "umoe/model.h"
#include "umoe/sim.h"
#include "umoe/sim_engine.h"

static const char *const policies[] = {"none", "norm", "activation", "attn_core", "mla_up", "expert_fc1", "permute",
                                       "selective", "norm,activation,attn_core,mla_up,expert_fc1,permute", "full",
                                       NULL};

static void check_arena(const spec_model *s, int B, const char *what) {
    for (int p = 0; policies[p]; p++) {
        unsigned rc = 0;
        UMOE_ASSERT(spec_recompute_parse(policies[p], "test", "rc", &rc) == UMOE_OK);
        umoe_model *m = NULL;
        UMOE_ASSERT(model_init(&m, s, B, s->T, 1) == UMOE_OK);
        UMOE_ASSERT(model_set_recompute(m, rc) == UMOE_OK);
        model_memory mm;
        model_memory_report(m, &mm);
        sim_engine_config c;
        memset(&c, 0, sizeof c);
        c.ranks = 1; c.ep = 1; c.batch = B; c.T = s->T; c.recompute = rc;
        sim_engine_result r;
        memset(&r, 0, sizeof r);
        sim_engine_memory(s, &c, &r);
        CHECK(r.params == (double)mm.params, "%s B=%d %s: params %.0f vs engine %zu", what, B, policies[p], r.params, mm.params);
        CHECK(r.arena == (double)mm.arena, "%s B=%d %s: arena %.0f vs engine %zu", what, B, policies[p], r.arena, mm.arena);
        CHECK(r.arena_resident == (double)mm.arena_resident, "%s B=%d %s: resident %.0f vs %zu", what, B, policies[p],
              r.arena_resident, mm.arena_resident);
        CHECK(r.arena_shared == (double)mm.arena_shared, "%s B=%d %s: shared %.0f vs %zu", what, B, policies[p],
              r.arena_shared, mm.arena_shared);
        model_free(m);
    }
}

static void test_arena_matches_engine(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    check_arena(&s, 1, "mla sandwich");
    check_arena(&s, 3, "mla sandwich");
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    check_arena(&s, 2, "mla pre");
    test_spec_tiny(&s, SPEC_ATTN_GQA, SPEC_NORM_PRE);
    s.mtp = 2;
    check_arena(&s, 2, "gqa pre mtp2");
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    s.q_lora = 0;
    s.score_bias = 1;
    check_arena(&s, 2, "mla q_lora 0 score_bias");
}

/* one process, one thread on a 2-core host, batch 4 of the model's T */
static void one_process(sim_engine_config *c, const spec_model *s) {
    memset(c, 0, sizeof *c);
    c->ranks = 1; c->ep = 1; c->batch = 4; c->T = s->T; c->cores = 2; c->threads = 1;
}

static spec_hardware hw(void) {
    spec_hardware h;
    memset(&h, 0, sizeof h);
    strcpy(h.name, "test");
    h.peak_fp32 = h.peak_bf16 = 1e11;
    h.hbm_bw = 1e10;
    h.mem_eff = 0.5;
    h.attn_eff = 0.3;
    h.intra_bw = h.inter_bw = 5e9;
    h.intra_lat = h.inter_lat = 1e-6;
    h.n_gemm_eff = 2;
    h.gemm_eff_flops[0] = 1e4; h.gemm_eff[0] = 0.3;
    h.gemm_eff_flops[1] = 1e9; h.gemm_eff[1] = 0.9;
    return h;
}

static void test_time_model(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    spec_hardware h = hw();
    sim_engine_config c;
    one_process(&c, &s);
    sim_engine_result a, b, f;
    CHECK(sim_engine_run(&s, &h, &c, &a) == UMOE_OK, "run: %s", umoe_err);
    CHECK(a.step_s > 0 && a.gemm_s > 0 && a.attn_s > 0 && a.elementwise_s > 0 && a.optimizer_s > 0, "parts > 0");
    CHECK(a.recompute_s == 0 && a.ep_s == 0 && a.sync_s == 0, "no recompute or communication on one rank");
    CHECK_CLOSE(a.step_s, a.gemm_s + a.attn_s + a.elementwise_s + a.optimizer_s, 1e-12, 0, "parts add up");
    c.recompute = SPEC_RC_SELECTIVE;
    CHECK(sim_engine_run(&s, &h, &c, &b) == UMOE_OK, "selective");
    c.recompute = SPEC_RC_FULL;
    CHECK(sim_engine_run(&s, &h, &c, &f) == UMOE_OK, "full");
    CHECK(b.recompute_s > 0 && f.recompute_s > b.recompute_s, "full recomputes more than selective");
    CHECK_CLOSE(b.step_s, a.step_s + b.recompute_s, 1e-12, 0, "recompute adds its time");
    CHECK(f.arena < b.arena && b.arena < a.arena, "memory: full < selective < none");
    /* 4 ranks on 2 cores, EP 4, the same global batch: each rank has a quarter of the tokens at half a core */
    c.recompute = 0;
    c.ranks = 4; c.ep = 4;
    sim_engine_result e;
    CHECK(sim_engine_run(&s, &h, &c, &e) == UMOE_OK, "ep 4: %s", umoe_err);
    CHECK_CLOSE(e.share, 0.5, 1e-12, 0, "share = cores / ranks");
    CHECK(e.ep_s > 0 && e.sync_s > 0, "EP exchange and gradient sync cost time");
    CHECK(e.ep_buffers > 0, "EP buffers outside the arena");
    c.hierarchical = 1; c.ranks_per_node = 2;
    sim_engine_result hr;
    CHECK(sim_engine_run(&s, &h, &c, &hr) == UMOE_OK, "hier");
    CHECK(hr.ep_buffers > e.ep_buffers, "hierarchical stages add buffers");
    /* expert sharding: the dense gradients (all but the routed experts) are all-reduced over the ranks, and a
     * rank updates exactly the parameters it stores (dense + experts / ep) */
    c.hierarchical = 0; c.ranks_per_node = 0;
    sim_engine_result one;
    sim_engine_config c1 = c;
    c1.ranks = 1; c1.ep = 1; c1.batch = 1;
    CHECK(sim_engine_run(&s, &h, &c1, &one) == UMOE_OK, "one rank");
    spec_params p;
    spec_params_count(&s, &p);
    int n_moe = 0;
    for (int l = 0; l < s.L + s.mtp; l++) n_moe += s.E > 0 && l >= s.first_k_dense;
    double P_exp = (double)n_moe * s.E * p.expert, dense = one.params / 4 - P_exp;
    CHECK_CLOSE(e.params / 4, dense + P_exp / 4, 1e-9, 0, "ep 4 stores the dense part and a quarter of the experts");
    double want = sim_allreduce_time(&h, 4, 4, 4 * dense) + 7 * sim_allreduce_time(&h, 4, 4, 64);
    CHECK_CLOSE(e.sync_s, want, 1e-9, 0, "sync = dense all-reduce + 7 scalars");
    /* rank_time_*: a single process at the cores' mean time, several ranks at the slowest core's */
    h.rank_time_mean = 1.1; h.rank_time_max = 1.3;
    sim_engine_result one_s, e_s;
    CHECK(sim_engine_run(&s, &h, &c1, &one_s) == UMOE_OK && sim_engine_run(&s, &h, &c, &e_s) == UMOE_OK, "slow");
    CHECK_CLOSE(one_s.gemm_s + one_s.attn_s + one_s.elementwise_s + one_s.optimizer_s,
                1.1 * (one.gemm_s + one.attn_s + one.elementwise_s + one.optimizer_s), 1e-9, 0, "one process: mean");
    CHECK_CLOSE(e_s.gemm_s, 1.3 * e.gemm_s, 1e-9, 0, "ranks: the slowest core");
    CHECK_CLOSE(e_s.sync_s + e_s.ep_s, e.sync_s + e.ep_s, 1e-12, 0, "communication unchanged");
    CHECK(one_s.slow == 1.1 && e_s.slow == 1.3, "slow reported");
    h.rank_time_mean = h.rank_time_max = 0;
    c.ranks = 3;
    CHECK(sim_engine_run(&s, &h, &c, &hr) == UMOE_EINPUT, "ranks 3 with ep 4 refused");
    c.ranks = 4; c.batch = 6;
    CHECK(sim_engine_run(&s, &h, &c, &hr) == UMOE_EINPUT, "batch 6 over 4 ranks refused");
}

/* cache_bw: element-wise calls whose bytes fit in cache_bytes run at cache_bw, the others at hbm_bw x mem_eff;
 * GEMM and optimizer (parameters far larger than any cache in a real spec) are untouched. */
static void test_cache_rate(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    spec_hardware h = hw();
    sim_engine_config c;
    one_process(&c, &s);
    sim_engine_result dram, all, none, some;
    CHECK(sim_engine_run(&s, &h, &c, &dram) == UMOE_OK, "no cache rate: %s", umoe_err);
    h.cache_bw = 4 * h.hbm_bw * h.mem_eff;
    h.cache_bytes = 1e12; /* every call fits */
    CHECK(sim_engine_run(&s, &h, &c, &all) == UMOE_OK, "cache rate");
    CHECK_CLOSE(all.elementwise_s, dram.elementwise_s / 4, 1e-9, 0, "all in cache: 4x the rate, 1/4 the time");
    CHECK_CLOSE(all.gemm_s, dram.gemm_s, 1e-12, 0, "GEMM time unchanged");
    CHECK_CLOSE(all.optimizer_s, dram.optimizer_s, 1e-12, 0, "optimizer stays at the DRAM rate");
    h.cache_bytes = 1; /* nothing fits */
    CHECK(sim_engine_run(&s, &h, &c, &none) == UMOE_OK, "tiny cache");
    CHECK_CLOSE(none.elementwise_s, dram.elementwise_s, 1e-12, 0, "nothing fits: the DRAM rate");
    h.cache_bytes = 8.0 * c.batch * c.T * s.C; /* one rmsnorm over the tokens fits, the logits do not */
    CHECK(sim_engine_run(&s, &h, &c, &some) == UMOE_OK, "L2-sized cache");
    CHECK(some.elementwise_s < dram.elementwise_s && some.elementwise_s > all.elementwise_s,
          "part in cache: between (%g < %g < %g)", all.elementwise_s, some.elementwise_s, dram.elementwise_s);
    h.cache_bw = 0; /* a spec without the field (older benches, presets): the DRAM rate everywhere */
    CHECK(sim_engine_run(&s, &h, &c, &some) == UMOE_OK, "cache_bw 0");
    CHECK_CLOSE(some.elementwise_s, dram.elementwise_s, 1e-12, 0, "cache_bw 0 = no cache rate");
    /* adamw_bw: AdamW's 28 B/param at its own rate, zero + norm (8 B/param) stay at hbm_bw x mem_eff */
    h.adamw_bw = h.hbm_bw * h.mem_eff / 2;
    sim_engine_result o;
    CHECK(sim_engine_run(&s, &h, &c, &o) == UMOE_OK, "adamw_bw");
    CHECK_CLOSE(o.optimizer_s, dram.optimizer_s * (8 + 2 * 28) / 36.0, 1e-9, 0, "AdamW at half the rate");
    CHECK_CLOSE(o.elementwise_s, dram.elementwise_s, 1e-12, 0, "adamw_bw leaves element-wise kernels alone");
}

/* EP row copies (src/dist/ep_exchange.c) and the 1/ranks gradient scaling: a flat exchange with one expert per
 * rank and experts in blocks copies nothing of its own; several local experts add the receive-layout copy of
 * the rows the rank's experts get, four exchanges per MoE slot; a placement adds the send-side packing; the
 * hierarchical dispatch adds its stages. Each copy moves 8 bytes per element at the element-wise rate. */
static void test_ep_copies(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    spec_hardware h = hw();
    double bw = h.hbm_bw * h.mem_eff;
    sim_engine_config c;
    one_process(&c, &s);
    c.ranks = 2; c.ep = 0;
    int n_moe = 0;
    for (int l = 0; l < s.L + s.mtp; l++) n_moe += s.E > 0 && l >= s.first_k_dense;
    CHECK(n_moe > 0 && s.E >= 4, "the tiny spec has MoE layers and at least 4 experts");
    sim_engine_result one_local, multi, placed, hier;
    c.ep = s.E; c.ranks = s.E; c.batch = 2 * s.E; /* one expert per rank */
    CHECK(sim_engine_run(&s, &h, &c, &one_local) == UMOE_OK, "ep = E: %s", umoe_err);
    CHECK(one_local.ep_copy_s == 0, "one local expert, blocks: no copies of the engine's own (%g)",
          one_local.ep_copy_s);
    c.ep = 2; c.ranks = 2; c.batch = 4; /* E / 2 local experts */
    double N = (double)c.batch / c.ranks * c.T, NKC = N * s.K * s.C;
    CHECK(sim_engine_run(&s, &h, &c, &multi) == UMOE_OK, "ep 2");
    double share = multi.share, slow = multi.slow;
    CHECK_CLOSE(multi.ep_copy_s, n_moe * 4 * 8 * NKC * slow / (bw * share), 1e-9, 0,
                "several local experts: 4 receive-layout copies per slot");
    c.placement = 5;
    CHECK(sim_engine_run(&s, &h, &c, &placed) == UMOE_OK, "placement");
    CHECK_CLOSE(placed.ep_copy_s, 2 * multi.ep_copy_s, 1e-9, 0, "placement: + the send-side packing");
    c.placement = 0; c.hierarchical = 1; c.ranks_per_node = 1;
    CHECK(sim_engine_run(&s, &h, &c, &hier) == UMOE_OK, "hierarchical");
    double touched = sim_engine_nodes_touched(&s, 2);
    CHECK(touched > 1 && touched < 2, "2 nodes: a token touches between 1 and 2 (%g)", touched);
    CHECK_CLOSE(hier.ep_copy_s, multi.ep_copy_s + (touched / s.K + 1) * 8 * NKC * slow / (bw * share) * n_moe, 1e-9,
                0, "hierarchical dispatch: stage A rows + the expansion replace nothing, add both");
    /* the mean over ranks: one more 8-byte pass over the rank's parameters than one process does */
    sim_engine_config c1 = c;
    c1.hierarchical = 0; c1.ranks_per_node = 0;
    sim_engine_result ep2;
    h.adamw_bw = 0; /* AdamW at the DRAM rate too */
    CHECK(sim_engine_run(&s, &h, &c1, &ep2) == UMOE_OK, "ep 2 again");
    double P = ep2.params / 4;
    CHECK_CLOSE(ep2.optimizer_s, (8 + 8 + 28) * P * slow / (bw * share), 1e-9, 0,
                "optimizer: zero + norm 8 (the clip's scale is inside AdamW), the 1/ranks scaling 8, AdamW 28 B/param");
}

/* attn_eff_seq: the attention core at the run's sequence length, forward at that efficiency, backward at that
 * ratio; nothing else changes */
static void test_attn_seq(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    spec_hardware h = hw();
    sim_engine_config c;
    one_process(&c, &s);
    sim_engine_result plain, tab;
    CHECK(sim_engine_run(&s, &h, &c, &plain) == UMOE_OK, "no table: %s", umoe_err);
    h.n_attn_seq = 2;
    h.attn_seq_T[0] = c.T / 2; h.attn_seq_eff[0] = 0.05; h.attn_seq_bwd[0] = 1.0;
    h.attn_seq_T[1] = c.T;     h.attn_seq_eff[1] = h.attn_eff / 2; h.attn_seq_bwd[1] = 1.5;
    CHECK(sim_engine_run(&s, &h, &c, &tab) == UMOE_OK, "table");
    /* without the table: (1 + 2.5) x fwd at attn_eff; with it: (1 + 1.5) x fwd at attn_eff / 2 */
    CHECK_CLOSE(tab.attn_s, plain.attn_s / 3.5 * 2 * 2.5, 1e-9, 0, "attention at the table's point for the run's T");
    CHECK_CLOSE(tab.gemm_s + tab.elementwise_s + tab.optimizer_s, plain.gemm_s + plain.elementwise_s + plain.optimizer_s,
                1e-12, 0, "the rest unchanged");
}

int main(void) {
    (void)test_tokens;
    RUN(test_attn_seq);
    RUN(test_ep_copies);
    RUN(test_cache_rate);
    RUN(test_arena_matches_engine);
    RUN(test_time_model);
    TEST_MAIN_END();
}
