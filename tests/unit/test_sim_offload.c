/* test_sim_offload.c - the simulator's recompute modules against the engine's, and its offload model
 * (src/sim/cost_memory.c, cost_offload.c, step.c; docs/cost-model.md "Recompute modules" and "Offload"):
 *   - per module, the bytes the simulator frees are exactly the documented table (the engine's buffers, bf16,
 *     fp32 log-sum-exp) for MLA and GQA, dense and MoE layers;
 *   - on the tiny-moe preset the order of the savings per module equals the engine's measured arena order
 *     (docs/engine-memory.md, section 2), and every module lowers the simulated activation memory;
 *   - activation offload: resident memory = in-flight layer inputs + two layers, exposed transfer zero when
 *     the link is fast and positive (and growing) when slow, refusal without host_bw;
 *   - optimizer offload: no optimizer state on the device, the step charged at host speeds;
 *   - the planner: a case that fits only with offload, offload chosen over recompute when the link is fast and
 *     not when it is slow, no offloaded twin of a strategy that fits without. */
#include <string.h>
#include "test.h"
#include "sim_fixtures.h"
#include "umoe/plan.h"

static const unsigned mods[] = {SPEC_RC_NORM, SPEC_RC_ACT, SPEC_RC_ATTN_CORE, SPEC_RC_MLA_UP, SPEC_RC_EXPERT_FC1,
                                SPEC_RC_PERMUTE};
static const char *const mod_names[] = {"norm", "activation", "attn_core", "mla_up", "expert_fc1", "permute"};
#define N_MODS 6

static double saved(const spec_model *m, spec_strategy *s, unsigned rc, int moe) {
    sim_options o = {0};
    s->recompute = 0;
    double a0 = sim_layer_act_bytes(m, s, &o, moe);
    s->recompute = rc;
    double a1 = sim_layer_act_bytes(m, s, &o, moe);
    s->recompute = 0;
    return a0 - a1;
}

/* The table of docs/cost-model.md, bytes per token per layer at tp 1: 2 bytes per element, the log-sum-exp
 * 4 bytes per head. H heads, Dv value head dim, K top-k, F_e expert width, S shared experts. */
static double want_saved(const spec_model *m, unsigned mod, int moe) {
    double C = m->C, H = m->H, K = m->K, Fe = m->F_expert, S = m->E_shared;
    int mla = m->attn == SPEC_ATTN_MLA;
    double hd = m->head_dim > 0 ? m->head_dim : C / H;
    double dv = mla ? m->v_head : hd;
    double fc1 = m->ffn == SPEC_FFN_SWIGLU ? 2 : 1;
    switch (mod) {
    case SPEC_RC_NORM: return 2 * (2 * C + (mla ? m->q_lora + m->kv_lora : 0));
    case SPEC_RC_ACT: return 2 * (moe ? (S + K) * Fe : m->F);
    case SPEC_RC_ATTN_CORE: return 2 * H * dv + 4 * H;
    case SPEC_RC_MLA_UP:
        return mla ? 2 * (H * (2 * (m->qk_nope + m->qk_rope) + m->v_head) - (m->kv_lora + m->qk_rope)) : 0;
    case SPEC_RC_EXPERT_FC1: return moe ? 2 * K * (fc1 + 1) * Fe : 0;
    case SPEC_RC_PERMUTE: return moe ? 2 * K * C : 0;
    default: return -1;
    }
}

static void check_table(const spec_model *m, const char *what) {
    spec_strategy s;
    fx_strategy(&s, 1, 1, 1, 2, 2);
    double n = 2.0 * m->T;
    for (int moe = 0; moe <= (m->E > 0); moe++)
        for (int i = 0; i < N_MODS; i++)
            CHECK_CLOSE(saved(m, &s, mods[i], moe) / n, want_saved(m, mods[i], moe), 1e-12, 0, mod_names[i]);
    (void)what;
}

static void test_module_bytes_table(void) {
    spec_model m;
    CHECK(spec_model_load("tiny-moe", &m) == UMOE_OK, "%s", umoe_err);
    check_table(&m, "tiny-moe (MLA, MoE)");
    fx_moe(&m); /* MLA with q_lora, pre-norm */
    check_table(&m, "fx_moe");
    m.attn = SPEC_ATTN_GQA, m.H_kv = 4, m.head_dim = 128; /* the same MoE with GQA */
    check_table(&m, "GQA MoE");
    fx_gpt(&m, 4, 1024, 16, 1024); /* MHA, GeLU, dense */
    check_table(&m, "MHA dense");
}

/* Engine: arena bytes of tiny-moe (B 8, T 128, float32) per policy, measured by
 * tests/unit/test_model_recompute.c and reported in docs/engine-memory.md section 2. Absolute bytes differ (the
 * engine stores fp32 on a CPU, the simulator bf16 with fp32 statistics); the ORDER of the savings must agree. */
static const double engine_none = 91226688;
static const double engine_mod[N_MODS] = {84935232, 84935232, 89064000, 84148800, 81789504, 88080960};

static void test_tiny_moe_order_matches_engine(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_options o = {0};
    CHECK(spec_model_load("tiny-moe", &m) == UMOE_OK, "%s", umoe_err);
    fx_hw_a100(&c.hw);
    c.devices = 1;
    fx_strategy(&s, 1, 1, 1, 8, 8);
    sim_result r;
    CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_OK, "%s", umoe_err);
    double act0 = r.memory[SIM_M_ACTIVATIONS];
    double sim_save[N_MODS], eng_save[N_MODS];
    for (int i = 0; i < N_MODS; i++) {
        s.recompute = mods[i];
        CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_OK, "%s", umoe_err);
        sim_save[i] = act0 - r.memory[SIM_M_ACTIVATIONS];
        eng_save[i] = engine_none - engine_mod[i];
        CHECK(sim_save[i] > 0, "%s lowers the simulated activations (%g bytes)", mod_names[i], sim_save[i]);
    }
    s.recompute = 0;
    /* Beyond the order: per layer the engine frees exactly the elements the simulator frees. The engine's saving
     * is (layers with the module - 1) x one layer's buffers x 4 bytes x 1024 tokens (the shared region keeps one
     * layer's worth; 4 layers + 1 MTP layer, of which 4 are MoE); the simulator stores 2 bytes per element and
     * 4 for the log-sum-exp (H per token). */
    for (int i = 0; i < N_MODS; i++) {
        int moe_only = mods[i] == SPEC_RC_EXPERT_FC1 || mods[i] == SPEC_RC_PERMUTE;
        double layers = moe_only ? 4 : 5;
        double eng_elems = eng_save[i] / (4.0 * 1024 * (layers - 1));
        double sim_bytes = saved(&m, &s, mods[i], 1) / (8.0 * m.T);
        double sim_elems = mods[i] == SPEC_RC_ATTN_CORE ? (sim_bytes - 4.0 * m.H) / 2 + m.H : sim_bytes / 2;
        CHECK_CLOSE(sim_elems, eng_elems, 1e-12, 0, mod_names[i]);
    }
    for (int i = 0; i < N_MODS; i++)
        for (int j = 0; j < N_MODS; j++) {
            int se = (eng_save[i] > eng_save[j]) - (eng_save[i] < eng_save[j]);
            int ss = (sim_save[i] > sim_save[j]) - (sim_save[i] < sim_save[j]);
            CHECK(se == ss, "%s vs %s: engine saves %g vs %g, simulator %g vs %g", mod_names[i], mod_names[j],
                  eng_save[i], eng_save[j], sim_save[i], sim_save[j]);
        }
    /* all six together save more than any one, full the most (as in the engine) */
    s.recompute = SPEC_RC_NORM | SPEC_RC_ACT | SPEC_RC_ATTN_CORE | SPEC_RC_MLA_UP | SPEC_RC_EXPERT_FC1 | SPEC_RC_PERMUTE;
    CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_OK, "%s", umoe_err);
    double all6 = r.memory[SIM_M_ACTIVATIONS];
    s.recompute = SPEC_RC_FULL;
    CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_OK, "%s", umoe_err);
    for (int i = 0; i < N_MODS; i++) CHECK(act0 - all6 > sim_save[i], "six modules beat %s", mod_names[i]);
    CHECK(r.memory[SIM_M_ACTIVATIONS] < all6, "full below the six modules");
}

/* ------------------------------------------------------------------ offload */
static void moe_case(spec_model *m, spec_cluster *c, spec_strategy *s) {
    fx_moe(m);
    fx_hw_a100(&c->hw);
    c->hw.host_bw = 25e9;
    c->hw.host_mem_bw = 50e9;
    c->devices = 8;
    fx_strategy(s, 1, 4, 2, 1, 16); /* pp 4, dp 2: stage 0 holds 4 micro-batches */
    s->ep = 2;
}

static void test_offload_memory(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_options o = {0};
    sim_result r0, r1;
    moe_case(&m, &c, &s);
    m.V = 256; /* keep the last stage (head, logits) light */
    CHECK(sim_run(&m, &c, &s, &o, &r0) == UMOE_OK, "%s", umoe_err);
    s.offload_activations = 1;
    CHECK(sim_run(&m, &c, &s, &o, &r1) == UMOE_OK, "%s", umoe_err);
    /* stage st holds layers 2 st and 2 st + 1 (layer 0 dense, the rest MoE), pp - st micro-batches in flight */
    int st = r1.worst_stage;
    CHECK(st < 3 && r1.inflight == 4 - st, "peak on stage %d with %g in flight", st, r1.inflight);
    double in = 2.0 * m.T * m.C;
    double off_d = sim_layer_offload_bytes(&m, &s, &o, 0), off_m = sim_layer_offload_bytes(&m, &s, &o, 1);
    CHECK_CLOSE(off_d, sim_layer_act_bytes(&m, &s, &o, 0) - in, 1e-12, 0, "dense layer: all but its input");
    CHECK_CLOSE(off_m, sim_layer_act_bytes(&m, &s, &o, 1) - in, 1e-12, 0, "MoE layer: all but its input");
    double off_max = st == 0 && off_d > off_m ? off_d : off_m;
    double want = r1.inflight * 2 * in + 2 * off_max;
    CHECK_CLOSE(r1.memory[SIM_M_ACTIVATIONS], want, 1e-12, 0, "in flight x 2 layer inputs + two layers");
    CHECK(r1.memory[SIM_M_ACTIVATIONS] < 0.5 * r0.memory[SIM_M_ACTIVATIONS], "offload frees most activations");
    CHECK(r1.memory_peak_bytes < r0.memory_peak_bytes, "offload lowers the peak");
    /* nothing to move under full recompute */
    s.recompute = SPEC_RC_FULL;
    CHECK(sim_layer_offload_bytes(&m, &s, &o, 1) == 0, "full: nothing offloaded");
    CHECK(sim_run(&m, &c, &s, &o, &r1) == UMOE_OK, "%s", umoe_err);
    CHECK(r1.breakdown[SIM_T_OFFLOAD] == 0, "full: no transfer");
}

static void test_offload_exposed_time(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_options o = {0};
    sim_result r0, r1, r2, r3;
    moe_case(&m, &c, &s);
    CHECK(sim_run(&m, &c, &s, &o, &r0) == UMOE_OK, "%s", umoe_err);
    s.offload_activations = 1;
    c.hw.host_bw = 1e15; /* a link far faster than compute: everything hidden */
    CHECK(sim_run(&m, &c, &s, &o, &r1) == UMOE_OK, "%s", umoe_err);
    CHECK(r1.breakdown[SIM_T_OFFLOAD] == 0, "fast link: exposed %g s", r1.breakdown[SIM_T_OFFLOAD]);
    CHECK(r1.step_time_s == r0.step_time_s, "fast link: step %.9g vs %.9g without offload", r1.step_time_s,
          r0.step_time_s);
    c.hw.host_bw = 1e9; /* 1 GB/s */
    CHECK(sim_run(&m, &c, &s, &o, &r2) == UMOE_OK, "%s", umoe_err);
    c.hw.host_bw = 0.5e9;
    CHECK(sim_run(&m, &c, &s, &o, &r3) == UMOE_OK, "%s", umoe_err);
    CHECK(r2.breakdown[SIM_T_OFFLOAD] > 0, "slow link: exposed %g s", r2.breakdown[SIM_T_OFFLOAD]);
    CHECK(r3.breakdown[SIM_T_OFFLOAD] > r2.breakdown[SIM_T_OFFLOAD], "slower link, more exposed");
    CHECK(r2.step_time_s > r0.step_time_s, "slow link: longer step");
    /* the exposed share never exceeds the raw transfer: per micro-batch the worst stage moves at most its
     * layers' bytes each way */
    double moved = 2.0 * (2 * sim_layer_offload_bytes(&m, &s, &o, 1)) / c.hw.host_bw; /* 2 layers, 2 ways */
    CHECK(r3.breakdown[SIM_T_OFFLOAD] <= r3.n_microbatches * moved * (1 + 1e-12) + 1e-12,
          "exposed %g <= transfer %g", r3.breakdown[SIM_T_OFFLOAD], r3.n_microbatches * moved);
    double sum = 0;
    for (int k = 0; k < SIM_T_COUNT; k++) sum += r3.breakdown[k];
    CHECK_CLOSE(sum, r3.step_time_s, 1e-9, 0, "breakdown adds up with offload");
    /* detailed (event simulation) charges it too */
    o.detailed = 1;
    CHECK(sim_run(&m, &c, &s, &o, &r3) == UMOE_OK, "%s", umoe_err);
    CHECK(r3.breakdown[SIM_T_OFFLOAD] > 0 && r3.step_time_s > r0.step_time_s, "detailed: offload charged");
    sim_result_free(&r3);
}

/* Every shipped hardware preset carries the host link and host memory figures (so the planner searches
 * offload on them), within physical bounds: below the device's own memory bandwidth. */
static void test_presets_have_host_link(void) {
    static const char *const hw[] = {"a100-sxm-80gb", "ascend-910b", "b200", "h100-sxm", "h800"};
    for (size_t i = 0; i < sizeof hw / sizeof *hw; i++) {
        spec_hardware h;
        CHECK(spec_hardware_load(hw[i], &h) == UMOE_OK, "%s: %s", hw[i], umoe_err);
        CHECK(h.host_bw > 1e9 && h.host_bw < h.hbm_bw, "%s: host_bw %g", hw[i], h.host_bw);
        CHECK(h.host_mem_bw > 1e9 && h.host_mem_bw < h.hbm_bw, "%s: host_mem_bw %g", hw[i], h.host_mem_bw);
    }
}

static void test_offload_needs_host_link(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_options o = {0};
    sim_result r;
    moe_case(&m, &c, &s);
    c.hw.host_bw = 0;
    s.offload_activations = 1;
    CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_EINPUT, "refused without host_bw");
    CHECK(strstr(umoe_err, "host_bw") != NULL, "message names the field: %s", umoe_err);
    s.offload_activations = 0;
    s.offload_optimizer = 1;
    c.hw.host_bw = 25e9;
    c.hw.host_mem_bw = 0;
    CHECK(sim_run(&m, &c, &s, &o, &r) == UMOE_EINPUT, "optimizer offload refused without host_mem_bw");
    CHECK(strstr(umoe_err, "host_mem_bw") != NULL, "message names the field: %s", umoe_err);
}

static void test_offload_optimizer(void) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_options o = {0};
    sim_result r0, r1;
    fx_gpt(&m, 8, 2048, 16, 1024);
    fx_hw_a100(&c.hw);
    c.hw.host_bw = 25e9;
    c.hw.host_mem_bw = 50e9;
    c.devices = 1;
    fx_strategy(&s, 1, 1, 1, 1, 4);
    CHECK(sim_run(&m, &c, &s, &o, &r0) == UMOE_OK, "%s", umoe_err);
    s.offload_optimizer = 1;
    CHECK(sim_run(&m, &c, &s, &o, &r1) == UMOE_OK, "%s", umoe_err);
    double p = r0.memory[SIM_M_WEIGHTS] / 2;
    CHECK(r1.memory[SIM_M_OPTIMIZER] == 0, "no optimizer state on the device");
    CHECK_CLOSE(r0.memory_peak_bytes - r1.memory_peak_bytes, 12 * p, 1e-12, 0, "12 bytes per parameter leave");
    /* ZeRO-Offload data flow: 4 B gradient down + 2 B parameter up over the link, Adam's 34 B in host memory */
    CHECK_CLOSE(r1.breakdown[SIM_T_OPTIMIZER], p * (6 / 25e9 + 34 / 50e9), 1e-12, 0, "host optimizer step");
    CHECK(r1.breakdown[SIM_T_OPTIMIZER] > r0.breakdown[SIM_T_OPTIMIZER], "slower than on the device");
    CHECK(r1.breakdown[SIM_T_OFFLOAD] == 0, "no activation offload");
}

/* ------------------------------------------------------------------ the planner */
static void one_device(spec_model *m, spec_cluster *c) {
    fx_gpt(m, 4, 2048, 16, 2048);
    m->V = 32000;
    m->ffn = SPEC_FFN_SWIGLU; /* plan candidates must pass spec_strategy_check */
    fx_hw_a100(&c->hw);
    c->hw.host_bw = 25e9;
    c->devices = 1;
}

static double peak_of(const spec_model *m, const spec_cluster *c, unsigned rc, int off_act) {
    spec_strategy s;
    plan_strategy_base(&s, 1);
    s.tp = s.cp = s.pp = s.vpp = s.ep = s.etp = s.dp = 1;
    s.sp = 0;
    s.recompute = rc;
    s.offload_activations = off_act;
    sim_options o = {0};
    sim_result r;
    CHECK(sim_run(m, c, &s, &o, &r) == UMOE_OK, "%s", umoe_err);
    return r.memory_peak_bytes;
}

static void test_plan_fits_only_with_offload(void) {
    spec_model m;
    spec_cluster c;
    one_device(&m, &c);
    /* a device between the two peaks of the only policy tried (no recompute): it fits only offloaded */
    double p_none = peak_of(&m, &c, 0, 0), p_off = peak_of(&m, &c, 0, 1);
    CHECK(p_off < p_none, "offload lowers the peak: %g vs %g", p_off, p_none);
    c.hw.hbm_bytes = 0.5 * (p_none + p_off);
    plan_options o;
    plan_options_defaults(&o);
    o.gbs = 1;
    o.detailed_top = 0;
    o.n_recompute = 1;
    o.recompute[0] = 0;
    plan_result r;
    o.no_offload = 1;
    CHECK(plan_search(&m, &c, &o, sim_run, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.feasible == 0 && r.n == 0, "without offload nothing fits (%lld)", r.feasible);
    plan_result_free(&r);
    o.no_offload = 0;
    CHECK(plan_search(&m, &c, &o, sim_run, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.n >= 1 && r.best[0].offload_act && r.best[0].recompute == 0, "with offload it fits: n %d", r.n);
    plan_result_free(&r);
}

static void test_plan_offload_vs_recompute(void) {
    spec_model m;
    spec_cluster c;
    one_device(&m, &c);
    double p_none = peak_of(&m, &c, 0, 0), p_off = peak_of(&m, &c, 0, 1);
    c.hw.hbm_bytes = 0.5 * (p_none + p_off);
    plan_options o;
    plan_options_defaults(&o);
    o.gbs = 1;
    o.detailed_top = 0;
    plan_result r;
    /* fast link: offloading everything costs no time, recomputing does: offload wins */
    c.hw.host_bw = 1e15;
    CHECK(plan_search(&m, &c, &o, sim_run, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.n >= 1 && r.best[0].offload_act && r.best[0].recompute == 0, "fast link: best is no recompute + offload");
    plan_result_free(&r);
    /* a slow link: the exposed transfer costs more than recomputing; a recompute policy wins */
    c.hw.host_bw = 1e8;
    CHECK(plan_search(&m, &c, &o, sim_run, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.n >= 1 && !r.best[0].offload_act && r.best[0].recompute != 0, "slow link: best recomputes");
    plan_result_free(&r);
    /* a roomy device: everything fits without offload, so no offloaded twin is kept */
    c.hw.hbm_bytes = 1e15;
    c.hw.host_bw = 1e15;
    o.top = 100;
    CHECK(plan_search(&m, &c, &o, sim_run, &r) == UMOE_OK, "%s", umoe_err);
    int n_off = 0;
    for (int i = 0; i < r.n; i++) n_off += r.best[i].offload_act;
    CHECK(r.n > 1 && n_off == 0, "%d offloaded strategies among %d", n_off, r.n);
    plan_result_free(&r);
}

static void test_plan_optimizer_offload(void) {
    spec_model m;
    spec_cluster c;
    one_device(&m, &c);
    c.hw.host_mem_bw = 50e9;
    /* below the lightest strategy without optimizer offload (full recompute), above it with */
    spec_strategy s;
    plan_strategy_base(&s, 1);
    s.tp = s.cp = s.pp = s.vpp = s.ep = s.etp = s.dp = 1;
    s.sp = 0;
    s.recompute = SPEC_RC_FULL;
    sim_options so = {0};
    sim_result r0, r1;
    CHECK(sim_run(&m, &c, &s, &so, &r0) == UMOE_OK, "%s", umoe_err);
    s.offload_optimizer = 1;
    CHECK(sim_run(&m, &c, &s, &so, &r1) == UMOE_OK, "%s", umoe_err);
    c.hw.hbm_bytes = 0.5 * (r0.memory_peak_bytes + r1.memory_peak_bytes);
    plan_options o;
    plan_options_defaults(&o);
    o.gbs = 1;
    o.detailed_top = 0;
    plan_result r;
    CHECK(plan_search(&m, &c, &o, sim_run, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.n >= 1 && r.best[0].offload_opt, "only optimizer offload fits (n %d)", r.n);
    plan_result_free(&r);
    o.no_offload = 1;
    CHECK(plan_search(&m, &c, &o, sim_run, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.n == 0, "without offload nothing fits");
    plan_result_free(&r);
}

int main(void) {
    RUN(test_module_bytes_table);
    RUN(test_tiny_moe_order_matches_engine);
    RUN(test_offload_memory);
    RUN(test_offload_exposed_time);
    RUN(test_presets_have_host_link);
    RUN(test_offload_needs_host_link);
    RUN(test_offload_optimizer);
    RUN(test_plan_fits_only_with_offload);
    RUN(test_plan_offload_vs_recompute);
    RUN(test_plan_optimizer_offload);
    TEST_MAIN_END();
}
