/* search_space.c - what the planner enumerates: the structural layouts (tp, cp, pp, vpp, ep, etp, dp) of a
 * device count, the recompute policies worth trying (and their activation-offload variants), and the default
 * global batch.
 * Layouts come from divisor loops (a superset) filtered by spec_strategy_check, so the planner never
 * disagrees with the strategy rules of src/spec. Extra planner-only restrictions, stated here once:
 *   - tp and etp divide the devices per node (TP and expert-TP groups stay inside one node: their traffic
 *     is per layer and would be far slower over the inter-node network);
 *   - a dense model searches ep = 1 only (there are no experts to spread);
 *   - vpp >= 2 only with pp >= 2 and at least one layer per virtual chunk (pp * vpp <= L).
 * Two more unless `exhaustive` (--exhaustive), to keep the default search near a second without losing
 * strategies anyone runs:
 *   - context parallelism only while each CP rank keeps at least PLAN_CP_MIN_TOKENS (1024) tokens of the
 *     sequence: CP exists for long sequences (Megatron-LM uses it from 8K tokens up); at T = 4096 this
 *     leaves cp <= 4 and drops cp up to 2048 (2 tokens per rank);
 *   - expert tensor parallelism off (etp = 1) or equal to tp, Megatron-Core's two settings (the expert
 *     weights either follow the dense TP split or are not split).
 * Does not: evaluate anything (search.c), print anything. */
#include <string.h>
#include "umoe/plan.h"

int plan_default_gbs(int devices, int seq) {
    (void)seq; /* one sequence per device per step, whatever the length: see plan.h */
    return devices > 0 ? devices : 1;
}

static int model_has(const spec_model *m, unsigned bit) {
    switch (bit) {
    case SPEC_RC_MLA_UP: return m->attn == SPEC_ATTN_MLA;
    case SPEC_RC_EXPERT_FC1:
    case SPEC_RC_PERMUTE: return m->E > 0;
    default: return 1;
    }
}

static int add_unique(unsigned *out, int n, unsigned rc) {
    for (int i = 0; i < n; i++)
        if (out[i] == rc) return n;
    if (n < PLAN_RC_MAX) out[n++] = rc;
    return n;
}

int plan_recompute_default(const spec_model *m, unsigned *out) {
    /* The ladder adds modules in order of activation bytes saved per recompute FLOP: the activation
     * function and the norms cost almost nothing to recompute, then the MoE permutation (a copy), the MLA
     * up-projections (Pangu Ultra MoE sec. 4 recomputes exactly these: MLA, permutation, activation), then the
     * attention core (Korthikanti et al. 2022 "selective"), then expert FC1 (a large GEMM). */
    static const unsigned ladder[] = {SPEC_RC_ACT, SPEC_RC_NORM, SPEC_RC_PERMUTE, SPEC_RC_MLA_UP, SPEC_RC_ATTN_CORE,
                                      SPEC_RC_EXPERT_FC1};
    int n = 0;
    n = add_unique(out, n, 0);
    n = add_unique(out, n, SPEC_RC_SELECTIVE);
    n = add_unique(out, n, SPEC_RC_FULL);
    unsigned acc = 0;
    for (size_t i = 0; i < sizeof ladder / sizeof *ladder; i++) {
        if (!model_has(m, ladder[i])) continue;
        acc |= ladder[i];
        n = add_unique(out, n, acc);
    }
    return n;
}

int plan_recompute_all(const spec_model *m, unsigned *out) {
    static const unsigned mods[] = {SPEC_RC_NORM, SPEC_RC_ACT, SPEC_RC_ATTN_CORE, SPEC_RC_MLA_UP, SPEC_RC_EXPERT_FC1,
                                    SPEC_RC_PERMUTE};
    unsigned have[6];
    int nh = 0, n = 0;
    for (int i = 0; i < 6; i++)
        if (model_has(m, mods[i])) have[nh++] = mods[i];
    for (unsigned sub = 0; sub < (1u << nh); sub++) {
        unsigned rc = 0;
        for (int i = 0; i < nh; i++)
            if (sub & (1u << i)) rc |= have[i];
        n = add_unique(out, n, rc);
    }
    return add_unique(out, n, SPEC_RC_FULL);
}

static int add_variant(unsigned *rc, int n, int cap, unsigned p) {
    for (int j = 0; j < n; j++)
        if (rc[j] == p) return n;
    if (n < cap) rc[n++] = p;
    return n;
}

int plan_offload_variants(const spec_hardware *h, unsigned *rc, int n, int cap) {
    if (!(h->host_bw > 0)) return n; /* the simulator cannot charge a host link it does not know */
    int n0 = n;
    for (int i = 0; i < n0; i++)
        if (!(rc[i] & SPEC_RC_FULL)) n = add_variant(rc, n, cap, rc[i] | PLAN_RC_OFFLOAD);
    /* optimizer offload last: the final full-recompute entry (full + optimizer offload) is then the lightest
     * policy, which the search's memory pruning takes as the last policy containing full */
    if (!(h->host_mem_bw > 0)) return n;
    int n1 = n;
    for (int i = 0; i < n1; i++) n = add_variant(rc, n, cap, rc[i] | PLAN_RC_OFFLOAD_OPT);
    return n;
}

/* Divisors of n in ascending order; returns the count (n <= 2^31 has at most 1600 divisors). */
static int divisors(int n, int *out, int cap) {
    int k = 0;
    for (int d = 1; d <= n && k < cap; d++)
        if (n % d == 0) out[k++] = d;
    return k;
}

umoe_status plan_layouts(const spec_model *m, const spec_strategy *base, int devices, int tp_max, int exhaustive,
                         plan_layout **out, int *n_out) {
    enum { DCAP = 2048 };
    int dv_tp[DCAP], dv_cp[DCAP], dv_pp[DCAP], dv_e[DCAP];
    int cap = 256, n = 0;
    plan_layout *v = umoe_malloc((size_t)cap * sizeof *v, "plan layouts");
    spec_strategy s = *base;
    int ntp = divisors(devices, dv_tp, DCAP);
    int ne = m->E > 0 ? divisors(m->E, dv_e, DCAP) : (dv_e[0] = 1, 1);
    char saved_err[UMOE_ERRLEN];
    memcpy(saved_err, umoe_err, sizeof saved_err);
    for (int a = 0; a < ntp; a++) {
        int tp = dv_tp[a];
        if (tp_max > 0 && tp_max % tp) continue;
        int ncp = divisors(devices / tp, dv_cp, DCAP);
        for (int b = 0; b < ncp; b++) {
            int cp = dv_cp[b];
            if (!exhaustive && cp > 1 && m->T / cp < PLAN_CP_MIN_TOKENS) break;
            int npp = divisors(devices / (tp * cp), dv_pp, DCAP);
            for (int c = 0; c < npp; c++) {
                int pp = dv_pp[c];
                if (pp > m->L) break;
                int dp = devices / (tp * cp * pp);
                int vmax = pp > 1 ? m->L / pp : 1;
                for (int vpp = 1; vpp <= vmax; vpp++) {
                    int group = tp * cp * dp; /* devices of one pipeline stage: where experts spread */
                    for (int ie = 0; ie < ne; ie++) {
                        int ep = dv_e[ie];
                        if (group % ep) continue;
                        int etp_max = m->E > 0 ? (tp_max > 0 ? tp_max : 1) : 1; /* expert TP inside a node */
                        for (int etp = 1; etp <= etp_max; etp++) {
                            if ((group / ep) % etp || etp_max % etp) continue;
                            if (!exhaustive && etp != 1 && etp != tp) continue;
                            s.tp = tp;
                            s.sp = tp > 1;
                            s.cp = cp;
                            s.pp = pp;
                            s.vpp = vpp;
                            s.dp = dp;
                            s.ep = ep;
                            s.etp = etp;
                            s.schedule = vpp > 1 ? SPEC_SCHED_INTERLEAVED : SPEC_SCHED_1F1B;
                            if (spec_strategy_check(&s, m, devices, "plan") != UMOE_OK) continue;
                            if (n == cap) {
                                v = umoe_realloc(v, (size_t)cap * sizeof *v, (size_t)cap * 2 * sizeof *v,
                                                 "plan layouts");
                                cap *= 2;
                            }
                            v[n++] = (plan_layout){tp, cp, pp, vpp, ep, etp, dp};
                        }
                    }
                }
            }
        }
    }
    memcpy(umoe_err, saved_err, sizeof saved_err); /* rejected candidates are not errors */
    v = umoe_realloc(v, (size_t)cap * sizeof *v, (size_t)(n ? n : 1) * sizeof *v, "plan layouts");
    *out = v;
    *n_out = n;
    return UMOE_OK;
}
