/* test_plan.c - the planner's enumeration and ranking (src/sim/search*.c), with a small local cost function
 * standing in for the simulator so the ranking logic is tested on its own (test_plan_sim.c uses sim_run):
 * layouts counted by hand, the candidate set equal to a brute force over spec_strategy_check, pruning that
 * changes nothing but the work done, sorted and valid results, identical results for any thread count, the
 * detailed re-ranking, and the nothing-fits case. */
#include <string.h>
#include "test.h"
#include "umoe/plan.h"

/* ------------------------------------------------------------------ fixtures */
static spec_model dense_model(void) {
    spec_model m;
    spec_model_defaults(&m);
    umoe_strlcpy(m.name, "test-dense", sizeof m.name);
    m.L = 2, m.C = 256, m.H = 8, m.H_kv = 8, m.head_dim = 32, m.attn = SPEC_ATTN_MHA;
    m.ffn = SPEC_FFN_SWIGLU, m.F = 512, m.E = 0, m.E_shared = 0, m.K = 0, m.F_expert = 0, m.first_k_dense = 0;
    m.V = 1024, m.T = 1024, m.mtp = 0, m.tied = 0;
    return m;
}

static spec_model moe_model(void) {
    spec_model m;
    spec_model_defaults(&m);
    umoe_strlcpy(m.name, "test-moe", sizeof m.name);
    m.L = 4, m.C = 256, m.H = 8, m.H_kv = 8, m.head_dim = 32, m.attn = SPEC_ATTN_MLA;
    m.q_lora = 64, m.kv_lora = 32, m.qk_nope = 32, m.qk_rope = 16, m.v_head = 32;
    m.ffn = SPEC_FFN_SWIGLU, m.F = 512, m.first_k_dense = 1, m.E = 8, m.E_shared = 1, m.K = 2, m.F_expert = 128;
    m.V = 1024, m.T = 1024, m.mtp = 0, m.tied = 0;
    return m;
}

static spec_cluster test_cluster(int devices, int per_node, double hbm_gib) {
    spec_cluster c;
    memset(&c, 0, sizeof c);
    umoe_strlcpy(c.name, "test-cluster", sizeof c.name);
    umoe_strlcpy(c.hw.name, "test-hw", sizeof c.hw.name);
    c.devices = devices;
    c.hw.devices_per_node = per_node;
    c.hw.hbm_bytes = hbm_gib * 1024 * 1024 * 1024;
    c.hw.peak_bf16 = 1e14;
    return c;
}

/* A cheap stand-in for sim_run: throughput falls with tp, pp bubble and recompute; memory grows with the
 * micro-batch, shrinks with sharding, recompute and ZeRO-1 (full recompute + ZeRO-1 lightest). ZeRO-1 does
 * not change the time, so ties are resolved by memory. detailed = 1 perturbs the time deterministically. */
static umoe_status toy_eval(const spec_model *m, const spec_cluster *c, const spec_strategy *s, const sim_options *o,
                            sim_result *r) {
    memset(r, 0, sizeof *r);
    double n_mb = (double)s->gbs / (s->dp * s->mbs);
    double tokens = (double)s->gbs * m->T;
    double bubble = (s->pp - 1) / (s->vpp * n_mb + s->pp - 1);
    int nrc = s->recompute & SPEC_RC_FULL ? 6 : __builtin_popcount(s->recompute);
    double compute = tokens / c->devices * 1e-6 * (1 + 0.02 * s->tp + 0.01 * s->cp + 0.03 * nrc + 0.05 / s->mbs);
    if (s->a2a == SPEC_A2A_HIER) compute *= 0.99;
    if (s->schedule == SPEC_SCHED_ZB1P) bubble *= 0.5;
    r->step_time_s = compute / (1 - bubble);
    if (o->detailed) r->step_time_s *= 1 + 0.01 * ((s->tp * 7 + s->pp * 3 + s->mbs) % 5);
    r->tokens_per_s = tokens / r->step_time_s;
    double inflight = n_mb < s->pp ? n_mb : s->pp;
    double weights = 4e9 / (s->tp * s->pp) + (m->E ? 2e9 / s->ep : 0);
    double opt = 12e9 / (s->tp * s->pp) / (s->zero1 ? s->dp : 1);
    double act = 0.3e9 * s->mbs * inflight / (s->tp * s->cp) / (1 + nrc);
    r->memory[SIM_M_WEIGHTS] = weights;
    r->memory[SIM_M_OPTIMIZER] = opt;
    r->memory[SIM_M_ACTIVATIONS] = act;
    r->memory_peak_bytes = weights + opt + act;
    r->fits = r->memory_peak_bytes <= c->hw.hbm_bytes;
    r->bubble_frac = bubble;
    return UMOE_OK;
}

static umoe_status never_fits(const spec_model *m, const spec_cluster *c, const spec_strategy *s, const sim_options *o,
                              sim_result *r) {
    toy_eval(m, c, s, o, r);
    r->memory_peak_bytes += 1e15;
    r->fits = 0;
    return UMOE_OK;
}

/* Records every candidate evaluated (single thread only). */
typedef struct { int tp, cp, pp, vpp, ep, etp, dp, mbs, sched, a2a; unsigned rc; int zero1; } cand;
#define REC_CAP 200000
static cand rec[REC_CAP];
static int n_rec, rec_invalid;
static umoe_status recording_eval(const spec_model *m, const spec_cluster *c, const spec_strategy *s,
                                  const sim_options *o, sim_result *r) {
    if (!o->detailed && n_rec < REC_CAP)
        rec[n_rec++] = (cand){s->tp, s->cp, s->pp, s->vpp, s->ep, s->etp, s->dp, s->mbs, (int)s->schedule,
                              (int)s->a2a, s->recompute, s->zero1};
    if (spec_strategy_check(s, m, c->devices, "test") != UMOE_OK) rec_invalid++;
    return toy_eval(m, c, s, o, r);
}

static int cand_same_group(const cand *a, const cand *b) {
    return a->tp == b->tp && a->cp == b->cp && a->pp == b->pp && a->vpp == b->vpp && a->ep == b->ep &&
           a->etp == b->etp && a->dp == b->dp && a->mbs == b->mbs && a->sched == b->sched && a->a2a == b->a2a;
}

static void search(const spec_model *m, const spec_cluster *c, plan_options *o, plan_eval_fn f, plan_result *r) {
    umoe_status st = plan_search(m, c, o, f, r);
    CHECK(st == UMOE_OK, "plan_search failed: %s", umoe_err);
}

/* ------------------------------------------------------------------ tests */
static void test_recompute_lists(void) {
    spec_model moe = moe_model(), dense = dense_model();
    unsigned rc[PLAN_RC_MAX];
    int n = plan_recompute_default(&moe, rc);
    unsigned paper = SPEC_RC_NORM | SPEC_RC_ACT | SPEC_RC_MLA_UP | SPEC_RC_PERMUTE;
    int has_none = 0, has_sel = 0, has_full = 0, has_paper = 0;
    for (int i = 0; i < n; i++) {
        has_none += rc[i] == 0, has_sel += rc[i] == SPEC_RC_SELECTIVE, has_full += rc[i] == SPEC_RC_FULL;
        has_paper += rc[i] == paper;
        for (int j = 0; j < i; j++) CHECK(rc[i] != rc[j], "policy %u listed twice", rc[i]);
    }
    CHECK(has_none == 1 && has_sel == 1 && has_full == 1, "none/selective/full present once each");
    CHECK(has_paper == 1, "the paper's norm,activation,mla_up,permute policy is searched");
    CHECK(n == 9, "MoE+MLA default ladder: none, selective, full + 6 cumulative steps, got %d", n);
    n = plan_recompute_default(&dense, rc);
    for (int i = 0; i < n; i++)
        CHECK(!(rc[i] & (SPEC_RC_MLA_UP | SPEC_RC_PERMUTE | SPEC_RC_EXPERT_FC1)), "dense MHA model gets no "
              "MLA/MoE module (policy %u)", rc[i]);
    CHECK(n == 6, "dense default: none, selective, full, act, act+norm, act+norm+attn_core, got %d", n);
    CHECK(plan_recompute_all(&moe, rc) == 65, "all subsets of 6 modules + full");
    CHECK(plan_recompute_all(&dense, rc) == 9, "all subsets of 3 modules + full");
}

/* 8 devices, dense model with 2 layers, 8 heads: every (tp, cp, pp, dp) with tp*cp*pp*dp = 8, tp | 8,
 * pp <= 2 layers; vpp = 1 (2 layers leave no room for virtual stages). Listed by hand. */
static void test_layouts_dense_8(void) {
    spec_model m = dense_model();
    spec_strategy base;
    plan_strategy_base(&base, 8);
    static const int want[][4] = {/* tp, cp, pp, dp */
                                  {1, 1, 1, 8}, {1, 2, 1, 4}, {1, 4, 1, 2}, {1, 8, 1, 1}, {2, 1, 1, 4}, {2, 2, 1, 2},
                                  {2, 4, 1, 1}, {4, 1, 1, 2}, {4, 2, 1, 1}, {8, 1, 1, 1}, {1, 1, 2, 4}, {1, 2, 2, 2},
                                  {1, 4, 2, 1}, {2, 1, 2, 2}, {2, 2, 2, 1}, {4, 1, 2, 1}};
    int nwant = (int)(sizeof want / sizeof *want);
    plan_layout *l = NULL;
    int n = 0;
    CHECK(plan_layouts(&m, &base, 8, 8, 1, &l, &n) == UMOE_OK, "plan_layouts: %s", umoe_err);
    CHECK(n == nwant, "layouts: got %d, want %d", n, nwant);
    for (int i = 0; i < nwant; i++) {
        int found = 0;
        for (int j = 0; j < n; j++)
            found += l[j].tp == want[i][0] && l[j].cp == want[i][1] && l[j].pp == want[i][2] &&
                     l[j].dp == want[i][3] && l[j].vpp == 1 && l[j].ep == 1 && l[j].etp == 1;
        CHECK(found == 1, "tp%d cp%d pp%d dp%d listed %d times, want once", want[i][0], want[i][1], want[i][2],
              want[i][3], found);
    }
    umoe_free(l, (size_t)(n ? n : 1) * sizeof *l);
    /* the default search keeps >= 1024 tokens per CP rank: at seq 1024 no CP, so only the 7 cp = 1 rows */
    CHECK(plan_layouts(&m, &base, 8, 8, 0, &l, &n) == UMOE_OK, "plan_layouts: %s", umoe_err);
    CHECK(n == 7, "default layouts at seq 1024: got %d, want 7", n);
    for (int j = 0; j < n; j++) CHECK(l[j].cp == 1, "cp = 1");
    umoe_free(l, (size_t)(n ? n : 1) * sizeof *l);
    m.T = 4096; /* now cp 2 and 4 keep >= 1024 tokens per rank, cp 8 does not */
    CHECK(plan_layouts(&m, &base, 8, 8, 0, &l, &n) == UMOE_OK, "plan_layouts: %s", umoe_err);
    CHECK(n == nwant - 1, "default layouts at seq 4096: got %d, want %d (all but cp 8)", n, nwant - 1);
    umoe_free(l, (size_t)(n ? n : 1) * sizeof *l);
}

/* The planner's candidates equal a brute force over every integer setting that spec_strategy_check accepts,
 * restricted by the planner's documented rules (search_space.c, search.c). */
static void check_equivalence(const spec_model *m, int devices, int per_node, int gbs, int exhaustive) {
    spec_cluster c = test_cluster(devices, per_node, 1e6);
    plan_options o;
    plan_options_defaults(&o);
    o.gbs = gbs;
    o.no_prune = 1;
    o.exhaustive = exhaustive;
    o.detailed_top = 0;
    n_rec = 0, rec_invalid = 0;
    plan_result r;
    search(m, &c, &o, recording_eval, &r);
    CHECK(rec_invalid == 0, "%d evaluated candidates fail spec_strategy_check", rec_invalid);
    CHECK(r.evaluated == n_rec, "evaluated %lld, recorded %d", r.evaluated, n_rec);
    CHECK(r.feasible == r.evaluated, "everything fits in 1e6 GiB");
    unsigned rcl[PLAN_RC_MAX];
    int n_rc = plan_recompute_default(m, rcl);
    spec_strategy s;
    plan_strategy_base(&s, gbs);
    /* the evaluations of one group (everything but recompute and ZeRO-1) are consecutive: compress them */
    static cand grp[REC_CAP];
    static int grp_n[REC_CAP];
    int ng = 0;
    for (int i = 0; i < n_rec; i++) {
        if (ng && cand_same_group(&grp[ng - 1], &rec[i])) grp_n[ng - 1]++;
        else grp[ng] = rec[i], grp_n[ng++] = 1;
    }
    int dup = 0;
    for (int i = 0; i < ng; i++)
        for (int j = 0; j < i; j++) dup += cand_same_group(&grp[i], &grp[j]);
    CHECK(dup == 0, "%d groups evaluated in two places", dup);
    int want_groups = 0, bad = 0;
    char saved[UMOE_ERRLEN];
    memcpy(saved, umoe_err, sizeof saved);
    for (int tp = 1; tp <= devices; tp++)
        for (int cp = 1; cp <= devices; cp++)
            for (int pp = 1; pp <= devices; pp++) {
                if (devices % (tp * cp * pp)) continue;
                int dp = devices / (tp * cp * pp);
                for (int vpp = 1; vpp <= 4; vpp++)
                    for (int ep = 1; ep <= devices; ep++)
                        for (int etp = 1; etp <= devices; etp++)
                            for (int mbs = 1; mbs <= gbs; mbs++)
                                for (int sc = 0; sc < SPEC_SCHED_COUNT; sc++)
                                    for (int a2a = 0; a2a < 2; a2a++) {
                                        /* the planner's own restrictions */
                                        if (per_node % tp || per_node % etp) continue;
                                        if (!exhaustive && cp > 1 && m->T / cp < PLAN_CP_MIN_TOKENS) continue;
                                        if (!exhaustive && etp != 1 && etp != tp) continue;
                                        if (m->E == 0 && (ep != 1 || etp != 1)) continue;
                                        if (pp * vpp > m->L) continue;
                                        if (pp == 1 && sc != SPEC_SCHED_1F1B) continue;
                                        if (vpp == 1 && sc == SPEC_SCHED_INTERLEAVED) continue; /* = 1F1B */
                                        if (a2a && !(m->E > 0 && ep > 1 && tp * cp * dp > per_node)) continue;
                                        s.tp = tp, s.sp = tp > 1, s.cp = cp, s.pp = pp, s.vpp = vpp, s.ep = ep;
                                        s.etp = etp, s.dp = dp, s.mbs = mbs, s.schedule = (spec_schedule)sc;
                                        s.a2a = (spec_a2a)a2a, s.recompute = 0, s.zero1 = 0;
                                        if (spec_strategy_check(&s, m, devices, "brute") != UMOE_OK) continue;
                                        int edp = tp * cp * dp / (ep * etp);
                                        int nz = (dp > 1 || edp > 1) ? 2 : 1;
                                        cand want = {tp, cp, pp, vpp, ep, etp, dp, mbs, sc, a2a, 0, 0};
                                        int got = 0;
                                        for (int i = 0; i < ng; i++)
                                            if (cand_same_group(&grp[i], &want)) got = grp_n[i];
                                        want_groups++;
                                        if (got != n_rc * nz) {
                                            if (!bad)
                                                fprintf(stderr, "  first mismatch: tp%d cp%d pp%d vpp%d ep%d etp%d "
                                                        "dp%d mbs%d sched%d a2a%d: %d evaluations, want %d\n", tp, cp,
                                                        pp, vpp, ep, etp, dp, mbs, sc, a2a, got, n_rc * nz);
                                            bad++;
                                        }
                                    }
            }
    memcpy(umoe_err, saved, sizeof saved);
    CHECK(bad == 0, "%s on %d devices: %d brute-force groups evaluated a wrong number of times", m->name, devices,
          bad);
    CHECK(want_groups == ng && ng > 0, "%s on %d devices: planner evaluated %d groups, brute force wants %d",
          m->name, devices, ng, want_groups);
    plan_result_free(&r);
}

static void test_equivalence_bruteforce(void) {
    spec_model d = dense_model(), e = moe_model();
    check_equivalence(&d, 8, 8, 8, 1);
    check_equivalence(&d, 8, 4, 16, 1);
    check_equivalence(&e, 8, 4, 8, 1);
    check_equivalence(&e, 16, 8, 16, 1);
    e.T = 4096;
    check_equivalence(&e, 16, 8, 16, 0);
    check_equivalence(&e, 8, 4, 8, 0);
}

static void check_sorted_valid(const spec_model *m, const spec_cluster *c, const plan_result *r) {
    spec_strategy base, s;
    plan_strategy_base(&base, r->gbs);
    for (int i = 0; i < r->n; i++) {
        plan_entry_strategy(&r->best[i], &base, &s);
        CHECK(spec_strategy_check(&s, m, r->devices, "result") == UMOE_OK, "entry %d invalid: %s", i, umoe_err);
        CHECK(r->best[i].r.fits, "entry %d does not fit", i);
        if (i > 0 && i < r->detailed)
            CHECK(plan_entry_cmp(&r->best[i - 1], &r->best[i]) < 0, "detailed entries %d, %d out of order", i - 1, i);
        if (i > r->detailed)
            CHECK(plan_entry_cmp(&r->best[i - 1], &r->best[i]) < 0, "entries %d, %d out of order", i - 1, i);
    }
}

static void test_ranking_sorted_valid(void) {
    spec_model m = moe_model();
    spec_cluster c = test_cluster(16, 8, 8);
    plan_options o;
    plan_options_defaults(&o);
    o.top = 25;
    o.detailed_top = 0;
    plan_result r;
    search(&m, &c, &o, toy_eval, &r);
    CHECK(r.n == 25, "25 results, got %d", r.n);
    CHECK(r.feasible > 25 && r.feasible < r.evaluated, "some but not all fit: %lld of %lld", r.feasible, r.evaluated);
    check_sorted_valid(&m, &c, &r);
    /* the best is the best of everything: compare with a top-1000 run */
    plan_result big;
    o.top = 1000;
    search(&m, &c, &o, toy_eval, &big);
    for (int i = 0; i < r.n && i < big.n; i++)
        CHECK(big.best[i].key == r.best[i].key, "top-25 and top-1000 agree on rank %d", i + 1);
    /* a tie on tokens/s (ZeRO-1 does not change the toy time) is broken by memory */
    int ties = 0;
    for (int i = 1; i < big.n; i++)
        if (big.best[i].r.tokens_per_s == big.best[i - 1].r.tokens_per_s) {
            ties++;
            CHECK(big.best[i].r.memory_peak_bytes >= big.best[i - 1].r.memory_peak_bytes, "tie broken by memory");
        }
    CHECK(ties > 0, "the toy model produces ties");
    plan_result_free(&big);
    plan_result_free(&r);
}

static void test_prune_changes_only_work(void) {
    spec_model m = moe_model();
    spec_cluster c = test_cluster(16, 8, 6);
    plan_options o;
    plan_options_defaults(&o);
    o.top = 40;
    o.gbs = 64;
    plan_result a, b;
    search(&m, &c, &o, toy_eval, &a);
    o.no_prune = 1;
    search(&m, &c, &o, toy_eval, &b);
    CHECK(a.pruned > 0 && a.bounded > 0, "something was pruned (%lld) and bounded (%lld)", a.pruned, a.bounded);
    CHECK(b.pruned == 0 && b.bounded == 0, "nothing skipped with no_prune");
    CHECK(a.feasible <= b.feasible, "feasible %lld vs %lld", a.feasible, b.feasible);
    CHECK(a.evaluated + a.pruned + a.bounded == b.evaluated, "evaluated %lld + pruned %lld + bounded %lld == %lld",
          a.evaluated, a.pruned, a.bounded, b.evaluated);
    CHECK(a.n == b.n, "same count");
    for (int i = 0; i < a.n && i < b.n; i++)
        CHECK(a.best[i].key == b.best[i].key && a.best[i].r.tokens_per_s == b.best[i].r.tokens_per_s,
              "rank %d differs", i + 1);
    plan_result_free(&a);
    plan_result_free(&b);
}

static void test_threads_identical(void) {
    spec_model m = moe_model();
    spec_cluster c = test_cluster(32, 8, 6);
    plan_options o;
    plan_options_defaults(&o);
    o.top = 30;
    plan_result a, b;
    search(&m, &c, &o, toy_eval, &a);
    o.threads = 2;
    search(&m, &c, &o, toy_eval, &b);
    CHECK(a.evaluated == b.evaluated && a.feasible == b.feasible && a.pruned == b.pruned && a.bounded == b.bounded,
          "counts differ");
    CHECK(a.n == b.n && a.detailed == b.detailed, "sizes differ");
    for (int i = 0; i < a.n && i < b.n; i++)
        CHECK(!memcmp(&a.best[i], &b.best[i], sizeof a.best[i]), "entry %d differs between 1 and 2 threads", i);
    plan_result_free(&a);
    plan_result_free(&b);
}

static void test_detailed_rerank(void) {
    spec_model m = moe_model();
    spec_cluster c = test_cluster(16, 8, 8);
    plan_options o;
    plan_options_defaults(&o);
    o.top = 12;
    o.detailed_top = 5;
    plan_result r, closed;
    search(&m, &c, &o, toy_eval, &r);
    CHECK(r.detailed == 5 && r.n == 12, "5 detailed of 12, got %d of %d", r.detailed, r.n);
    check_sorted_valid(&m, &c, &r);
    o.detailed_top = 0;
    search(&m, &c, &o, toy_eval, &closed);
    /* the first 5 are the closed-form top 5, re-ranked; the rest keep their closed-form order */
    for (int i = 0; i < 5; i++) {
        int found = 0;
        for (int j = 0; j < 5; j++) found += r.best[i].key == closed.best[j].key;
        CHECK(found == 1, "detailed entry %d comes from the closed-form top 5", i);
    }
    for (int i = 5; i < 12; i++) CHECK(r.best[i].key == closed.best[i].key, "entry %d keeps its place", i);
    /* default N = K: everything shown was re-simulated */
    o.detailed_top = -1;
    plan_result d;
    search(&m, &c, &o, toy_eval, &d);
    CHECK(d.detailed == d.n, "default re-simulates all K shown");
    check_sorted_valid(&m, &c, &d);
    plan_result_free(&d);
    plan_result_free(&r);
    plan_result_free(&closed);
}

static void test_nothing_fits(void) {
    spec_model m = moe_model();
    spec_cluster c = test_cluster(8, 8, 80);
    plan_options o;
    plan_options_defaults(&o);
    plan_result r;
    search(&m, &c, &o, never_fits, &r);
    CHECK(r.feasible == 0 && r.n == 0, "nothing fits: feasible %lld, n %d", r.feasible, r.n);
    CHECK(r.evaluated > 0 && r.min_peak_bytes > 1e15, "evaluated %lld, lightest %g", r.evaluated, r.min_peak_bytes);
    plan_result_free(&r);
}

static void test_default_gbs(void) {
    CHECK(plan_default_gbs(6144, 4096) == 6144, "one sequence per device");
    spec_model m = dense_model();
    spec_cluster c = test_cluster(8, 8, 80);
    plan_options o;
    plan_options_defaults(&o);
    plan_result r;
    search(&m, &c, &o, toy_eval, &r);
    CHECK(r.gbs == 8 && r.gbs_defaulted, "default gbs 8, got %d", r.gbs);
    plan_result_free(&r);
    o.gbs = 32, o.devices = 4;
    search(&m, &c, &o, toy_eval, &r);
    CHECK(r.gbs == 32 && !r.gbs_defaulted && r.devices == 4, "gbs and devices overrides");
    for (int i = 0; i < r.n; i++)
        CHECK(r.best[i].tp * r.best[i].cp * r.best[i].pp * r.best[i].dp == 4, "entry %d uses 4 devices", i);
    plan_result_free(&r);
}

int main(void) {
    RUN(test_recompute_lists);
    RUN(test_layouts_dense_8);
    RUN(test_equivalence_bruteforce);
    RUN(test_ranking_sorted_valid);
    RUN(test_prune_changes_only_work);
    RUN(test_threads_identical);
    RUN(test_detailed_rerank);
    RUN(test_nothing_fits);
    RUN(test_default_gbs);
    TEST_MAIN_END();
}
