/* step.c - sim_run: assemble one training step of (model, cluster, strategy) from the per-layer costs:
 * stages, pipeline schedule (closed form, or the event simulation when detailed), PP point-to-point,
 * DP gradient synchronisation, optimizer, memory per stage, MFU/HFU.
 * Does not: cost individual operators (cost_layer.c) or simulate events (pipeline*.c). With detailed == 0 it
 * allocates nothing, writes no file and logs nothing: the planner calls it millions of times per second.
 * Equations and sources: docs/cost-model.md ("Step assembly", "Pipeline", "Data parallel", "Memory"). */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "cost.h"

#define SIM_MAX_STAGES 1024 /* = the pipeline result's per-device arrays */

/* add() and lin2() name every field of sim_cost: a new field must be added to both */
_Static_assert(sizeof(sim_cost) == 15 * sizeof(double), "add() and lin2() must list every field of sim_cost");

static void add(sim_cost *a, const sim_cost *b, double k) {
    a->fwd += k * b->fwd; a->bwd += k * b->bwd; a->bwd_w += k * b->bwd_w; a->gemm_fwd += k * b->gemm_fwd;
    a->rc += k * b->rc; a->tp_fwd += k * b->tp_fwd; a->tp_bwd += k * b->tp_bwd; a->cp_fwd += k * b->cp_fwd;
    a->cp_bwd += k * b->cp_bwd; a->ep_fwd += k * b->ep_fwd; a->ep_bwd += k * b->ep_bwd;
    a->params_dense += k * b->params_dense; a->params_expert += k * b->params_expert;
    a->off_fwd += k * b->off_fwd; a->off_bwd += k * b->off_bwd;
}

/* a = ka x b + kb x c, field by field */
static void lin2(sim_cost *a, const sim_cost *b, double kb, const sim_cost *c, double kc) {
    a->fwd = kb * b->fwd + kc * c->fwd; a->bwd = kb * b->bwd + kc * c->bwd; a->bwd_w = kb * b->bwd_w + kc * c->bwd_w;
    a->gemm_fwd = kb * b->gemm_fwd + kc * c->gemm_fwd; a->rc = kb * b->rc + kc * c->rc;
    a->tp_fwd = kb * b->tp_fwd + kc * c->tp_fwd; a->tp_bwd = kb * b->tp_bwd + kc * c->tp_bwd;
    a->cp_fwd = kb * b->cp_fwd + kc * c->cp_fwd; a->cp_bwd = kb * b->cp_bwd + kc * c->cp_bwd;
    a->ep_fwd = kb * b->ep_fwd + kc * c->ep_fwd; a->ep_bwd = kb * b->ep_bwd + kc * c->ep_bwd;
    a->params_dense = kb * b->params_dense + kc * c->params_dense;
    a->params_expert = kb * b->params_expert + kc * c->params_expert;
    a->off_fwd = kb * b->off_fwd + kc * c->off_fwd; a->off_bwd = kb * b->off_bwd + kc * c->off_bwd;
}

/* Micro-batches (in units of one micro-batch through the whole stage) whose activations stage `st` holds
 * at its peak. 1F1B (Narayanan et al. 2021 Sec. 2.2): pp - st. Interleaved (Megatron-LM schedules.py warm-up
 * count (pp - st - 1) x 2 + (vpp - 1) x pp chunks, + 1): for stage 0 this is pp (1 + (pp-1)/(pp vpp)),
 * Korthikanti et al. 2022 Sec. 4.2.3. ZB-1P: as 1F1B (Qi et al. 2024). DualPipe: pp + 1 (DeepSeek-V3 Table 2). */
static double inflight(spec_schedule sc, int pp, int vpp, int st, int n_mb) {
    double f;
    switch (sc) {
    case SPEC_SCHED_INTERLEAVED: f = ((pp - st - 1) * 2.0 + (vpp - 1.0) * pp + 1.0) / vpp; break;
    case SPEC_SCHED_DUALPIPE: f = pp + 1.0; break;
    default: f = pp - st; break;
    }
    return f < n_mb ? f : n_mb;
}

/* Time of one micro-batch through one stage: forward + backward incl. recompute and exposed TP/CP/EP. */
static double stage_time(const sim_cost *a) {
    return a->fwd + a->tp_fwd + a->cp_fwd + a->ep_fwd + a->bwd + a->rc + a->tp_bwd + a->cp_bwd + a->ep_bwd
           + a->off_fwd + a->off_bwd;
}

/* What the stages are assembled from: per-layer costs (dense, MoE), embedding, head, activation bytes. */
typedef struct {
    sim_cost cd, cm, ce, ch;
    double act_d, act_m;
    double off_d, off_m; /* activation offload: bytes each layer moves (cost_offload.c) */
    int n_dense; /* dense layers, the first ones in model order */
    int is_moe;
} stage_parts;

/* Stages st0 .. st0 + n - 1, all with the same cost: per micro-batch costs, activation bytes of one
 * micro-batch, logits + head-input bytes, MoE layers (dispatch buffers when > 0). */
typedef struct {
    int st0, n;
    sim_cost c;
    double act, extra;
    double off, offmax; /* offloaded bytes of one micro-batch: sum, largest layer */
    int nm;
} stage_group;

/* Adds what the last chunk carries besides its layers: the LM head and loss, the tied head's copy of the
 * embedding, the MTP modules, the fp32 logits and the head input. */
static void add_last_chunk(const spec_model *m, const sim_geom *g, const stage_parts *k, stage_group *gr) {
    sim_cost *sc = &gr->c;
    add(sc, &k->ch, 1);
    if (m->tied && g->pp > 1) sc->params_dense += (double)m->V * m->C / g->tp; /* head copy of the embedding */
    if (m->mtp > 0) {
        sim_cost hd = k->ch;
        hd.params_dense = 0; /* MTP passes share the head */
        add(sc, k->is_moe ? &k->cm : &k->cd, m->mtp);
        add(sc, &hd, m->mtp);
        sc->params_dense += m->mtp * (2.0 * m->C * m->C + 2 * m->C);
        gr->act += m->mtp * (k->is_moe ? k->act_m : k->act_d);
        double off1 = k->is_moe ? k->off_m : k->off_d;
        gr->off += m->mtp * off1;
        if (off1 > gr->offmax) gr->offmax = off1;
        if (k->is_moe) gr->nm += m->mtp;
    }
    gr->extra += 4.0 * g->t * m->V / g->tp + 2.0 * g->t_sp * m->C; /* fp32 logits + head input */
}

/* Reference assembly: every chunk in turn, one group per stage (pp groups). Fills chunks[] (each chunk's own
 * cost) when not NULL: the detailed path's event simulation needs them. Also covers strategies with pp or vpp
 * below 1 (unchecked input: plain even split with the remainder up front). */
static int stages_by_chunk(const spec_model *m, const spec_strategy *s, const sim_geom *g, const stage_parts *k,
                           stage_group *grp, sim_cost *chunks) {
    int pp = g->pp, n_chunks = pp * g->vpp;
    int chunk_ok = 1, tot = 0;
    for (int ch = 0; ch < n_chunks && chunk_ok; ch++) tot += spec_chunk_layers(s, m, ch);
    if (tot != m->L) chunk_ok = 0; /* unchecked strategy: plain even split with the remainder up front */
    for (int st = 0; st < pp; st++) {
        memset(&grp[st], 0, sizeof grp[st]);
        grp[st].st0 = st;
        grp[st].n = 1;
    }
    int l0 = 0;
    for (int chn = 0; chn < n_chunks; chn++) {
        int nl = chunk_ok ? spec_chunk_layers(s, m, chn) : m->L / n_chunks + (chn < m->L % n_chunks);
        int nd = k->n_dense - l0;
        if (nd < 0) nd = 0;
        if (nd > nl) nd = nl;
        int nm = nl - nd, st = chn % pp;
        l0 += nl;
        stage_group *gr = &grp[st];
        sim_cost before = gr->c;
        add(&gr->c, &k->cd, nd);
        add(&gr->c, &k->cm, nm);
        gr->act += nd * k->act_d + nm * k->act_m;
        gr->nm += nm;
        gr->off += nd * k->off_d + nm * k->off_m;
        if (nd && k->off_d > gr->offmax) gr->offmax = k->off_d;
        if (nm && k->off_m > gr->offmax) gr->offmax = k->off_m;
        if (chn == 0) add(&gr->c, &k->ce, 1);
        if (chn == n_chunks - 1) add_last_chunk(m, g, k, gr);
        if (chunks) { /* detailed: this chunk's own cost = the stage sum's growth */
            sim_cost *c1 = &chunks[chn];
            memset(c1, 0, sizeof *c1);
            add(c1, &gr->c, 1);
            add(c1, &before, -1);
        }
    }
    return pp;
}

/* Chunks c with c = st (mod pp) and c < x, among the n = pp x vpp chunks. As a function of st it steps down
 * by one at st = x mod pp. */
static int chunks_below(int x, int st, int pp, int vpp) {
    if (x <= st) return 0;
    int q = (x - st + pp - 1) / pp;
    return q < vpp ? q : vpp;
}


/* Fast assembly in time independent of pp and vpp (the planner's path; docs/planner.md "Speed").
 * spec_chunk_layers gives chunk c (of n = pp vpp) cl = ceil(L / n) layers, one fewer for the first a and
 * the last b chunks (r = n cl - L chunks hold one fewer, taken alternately from the end and the start:
 * b = ceil(r / 2) at the end, a = floor(r / 2) at the start). The first n_dense layers are dense: chunks
 * 0 .. kd-1 entirely, chunk kd (when kd < n) with pd of its layers. Stage st holds the chunks st, st + pp,
 * ...; its dense and MoE layer counts are sums of chunks_below() terms, which change only at a handful of
 * stages (x mod pp for the x above, and stage 0 and pp-1 for the embedding and the head). Between those
 * breakpoints the stages are identical: one group each, its cost computed once. tests/unit/test_sim_fast.c
 * checks the result against stages_by_chunk on random strategies. */
static int stages_grouped(const spec_model *m, const sim_geom *g, const stage_parts *k, stage_group *grp) {
    int pp = g->pp, vpp = g->vpp, n = pp * vpp, L = m->L;
    int cl = (L + n - 1) / n, r = n * cl - L, a = r / 2, b = r - a, nb = n - b;
    int nd_all = k->n_dense;
    int kd, pd = 0;
    if (nd_all >= L) {
        kd = n;
    } else {
        /* layers in chunks 0 .. x-1: S(x) = x cl - min(x, a) - max(0, x - nb); kd = the largest x with
         * S(x) <= nd_all (S grows by cl - 1 per chunk below a and from nb on, by cl in between) */
        if (a > 0 && nd_all < a * (cl - 1)) kd = nd_all / (cl - 1);
        else if (nd_all < nb * cl - a) kd = a + (nd_all - a * (cl - 1)) / cl;
        else kd = nb + (nd_all - (nb * cl - a)) / (cl - 1); /* here b > 0, so cl >= 2 */
        pd = nd_all - (kd * cl - (kd < a ? kd : a) - (kd > nb ? kd - nb : 0));
    }
    int ka = kd < a ? kd : a, kb = kd < nb ? kd : nb;
    /* breakpoints: the first stage of each group (stage pp ends the last one) */
    const int bp[] = {1, pp - 1, a % pp, nb % pp, kd % pp, ka % pp, kb % pp, kd % pp + 1};
    const int nbp = (int)(sizeof bp / sizeof *bp);
    uint64_t mask = 0; /* pp <= 64: the breakpoints as bits, so the next one is a count of trailing zeros */
    if (pp <= 64)
        for (int i = 0; i < nbp; i++) mask |= bp[i] < pp ? (uint64_t)1 << bp[i] : 0;
    int n_grp = 0;
    for (int st = 0, end; st < pp; st = end) {
        if (pp <= 64) {
            uint64_t above = st < 63 ? mask >> (st + 1) : 0;
            end = above ? st + 1 + __builtin_ctzll(above) : pp;
        } else {
            end = pp;
            for (int i = 0; i < nbp; i++)
                if (bp[i] > st && bp[i] < end) end = bp[i];
        }
        int c_kd = chunks_below(kd, st, pp, vpp);
        int tot = vpp * cl - chunks_below(a, st, pp, vpp) - (vpp - chunks_below(nb, st, pp, vpp));
        int nd = cl * c_kd - chunks_below(ka, st, pp, vpp) - (c_kd - chunks_below(kb, st, pp, vpp));
        if (kd < n && kd % pp == st) nd += pd;
        int nm = tot - nd;
        stage_group *gr = &grp[n_grp++];
        gr->st0 = st;
        gr->n = end - st;
        lin2(&gr->c, &k->cd, nd, &k->cm, nm);
        gr->act = nd * k->act_d + nm * k->act_m;
        gr->extra = 0;
        gr->nm = nm;
        gr->off = nd * k->off_d + nm * k->off_m;
        gr->offmax = 0;
        if (nd && k->off_d > gr->offmax) gr->offmax = k->off_d;
        if (nm && k->off_m > gr->offmax) gr->offmax = k->off_m;
        if (st == 0) add(&gr->c, &k->ce, 1);
        if (st == pp - 1) add_last_chunk(m, g, k, gr);
    }
    return n_grp;
}

void sim_model_pre_init(sim_model_pre *p, const spec_model *m, int causal_half) {
    memset(p, 0, sizeof *p);
    p->m = m;
    p->causal_half = causal_half;
    spec_params_count(m, &p->pc);
    spec_flops_count(m, causal_half, &p->fc);
}

void sim_result_free(sim_result *r) {
    if (r && r->pipeline.events) sim_pipeline_free(&r->pipeline);
}

umoe_status sim_run(const spec_model *m, const spec_cluster *c, const spec_strategy *s, const sim_options *o,
                    sim_result *r) {
    static const sim_options dflt = {0};
    if (!o) o = &dflt;
    const spec_hardware *h = &c->hw;
    if (!m || !c || !s || !r || m->L <= 0 || m->C <= 0 || m->T <= 0 || s->mbs <= 0 || h->peak_bf16 <= 0)
        return umoe_fail("sim: incomplete model, cluster or strategy");
    sim_geom g;
    sim_geom_init(m, c, s, &g);
    if ((long)g.tp * g.cp * g.pp * g.dp != c->devices)
        return umoe_fail("sim: tp x cp x pp x dp = %d x %d x %d x %d does not equal the %d devices", g.tp, g.cp, g.pp,
                         g.dp, c->devices);
    if (m->L < g.pp * g.vpp) return umoe_fail("sim: %d layers cannot fill pp x vpp = %d stages", m->L, g.pp * g.vpp);
    if ((s->offload_activations || s->offload_optimizer) && sim_offload_check(h, s)) return UMOE_EINPUT;

    memset(r->breakdown, 0, sizeof r->breakdown);
    memset(r->memory, 0, sizeof r->memory);
    r->pipeline.events = NULL; r->pipeline.n_events = 0;

    /* ---- model-level counts: the project's one definition (spec_params_count / spec_flops_count: model FLOPs,
     * backward = 2 x forward, attention s^2 in full unless causal_half; MTP included). A caller that simulates
     * one model many times passes them precomputed (sim_options.pre, sim_model_pre_init). */
    spec_params pc_own;
    spec_flops fc_own;
    const spec_params *pc = &pc_own;
    const spec_flops *fc = &fc_own;
    if (o->pre && o->pre->m == m && o->pre->causal_half == o->causal_half) {
        pc = &o->pre->pc;
        fc = &o->pre->fc;
    } else {
        spec_params_count(m, &pc_own);
        spec_flops_count(m, o->causal_half, &fc_own);
    }
    r->params_total = pc->total;
    r->params_active = pc->active;
    double fwd_tok = fc->fwd_total;
    r->flops_per_token = 3.0 * fwd_tok;
    int n_mb = s->gbs / (s->mbs * g.dp);
    if (n_mb < 1) n_mb = 1;
    r->n_microbatches = n_mb;
    double tokens_step = (double)n_mb * s->mbs * g.dp * m->T;

    /* ---- layer kinds */
    int is_moe = m->E > 0;
    int n_dense_total = is_moe ? (m->first_k_dense < m->L ? m->first_k_dense : m->L) : m->L;
    stage_parts k;
    if (n_dense_total > 0) sim_layer_cost(m, h, s, o, &g, 0, &k.cd); else memset(&k.cd, 0, sizeof k.cd);
    if (is_moe && n_dense_total < m->L) sim_layer_cost(m, h, s, o, &g, 1, &k.cm); else memset(&k.cm, 0, sizeof k.cm);
    sim_embed_cost(m, h, s, &g, &k.ce);
    sim_head_cost(m, h, s, o, &g, &k.ch);
    k.act_d = n_dense_total > 0 ? sim_layer_act_bytes(m, s, o, 0) : 0;
    k.act_m = is_moe ? sim_layer_act_bytes(m, s, o, 1) : 0;
    /* activation offload (cost_offload.c): bytes each layer moves, and their exposed host-link time */
    k.off_d = sim_offload_bytes_of(m, s, k.act_d);
    k.off_m = sim_offload_bytes_of(m, s, k.act_m);
    sim_offload_layer_cost(h, k.off_d, &k.cd);
    sim_offload_layer_cost(h, k.off_m, &k.cm);
    k.n_dense = n_dense_total;
    k.is_moe = is_moe;

    /* ---- model chunks (pp x vpp, chunk c on stage c % pp, layers in model order, dense layers first; the
     * split is spec_chunk_layers: even, or MindSpeed-style padding) -> groups of identical stages */
    int pp = g.pp, n_chunks = pp * g.vpp;
    if (pp > SIM_MAX_STAGES) return umoe_fail("sim: pp = %d exceeds %d stages", pp, SIM_MAX_STAGES);
    stage_group grp[SIM_MAX_STAGES];
    sim_cost *chunks = NULL; /* per-chunk costs, detailed runs only (the fast path allocates nothing) */
    size_t chunks_bytes = sizeof(sim_cost) * (size_t)n_chunks;
    if (o->detailed) chunks = umoe_malloc(chunks_bytes, "sim chunk costs");
    int n_grp = !o->detailed && !o->reference_stages && s->pp >= 1 && s->vpp >= 1
                    ? stages_grouped(m, &g, &k, grp)
                    : stages_by_chunk(m, s, &g, &k, grp, chunks);

    double t_max = 0, t_sum = 0, f_sum = 0, b_sum = 0, w_sum = 0;
    int worst_gi = 0;
    double mem_peak = -1, stage_b_worst = 0, stage_f_worst = 0;
    double zero1_d = s->zero1 ? g.dp * g.cp : 1, zero1_e = s->zero1 ? g.edp : 1;
    double mdisp_moe = 2.0 * (g.t / g.tp) * m->K * g.etp * g.imb * m->C * 2.0; /* MoE dispatch buffers: send+recv */
    for (int gi = 0; gi < n_grp; gi++) {
        /* every stage of a group has the same cost; the first of the group holds the most micro-batches in
         * flight (inflight() never grows with the stage index), so it is the group's memory peak, and on ties
         * the lowest stage wins, as a stage-by-stage scan with strict comparisons would pick */
        const stage_group *gr = &grp[gi];
        const sim_cost *sc = &gr->c;
        int st = gr->st0;
        double nst = gr->n;
        double t_f = sc->fwd + sc->tp_fwd + sc->cp_fwd + sc->ep_fwd + sc->off_fwd;
        double t_b = sc->bwd + sc->rc + sc->tp_bwd + sc->cp_bwd + sc->ep_bwd + sc->off_bwd;
        double ts = t_f + t_b;
        t_sum += nst * ts; f_sum += nst * t_f; b_sum += nst * t_b; w_sum += nst * sc->bwd_w;
        if (ts > t_max) { t_max = ts; worst_gi = gi; stage_f_worst = t_f; stage_b_worst = t_b; }

        /* memory of this stage */
        double pd = sc->params_dense, pe = sc->params_expert;
        double copies = s->schedule == SPEC_SCHED_DUALPIPE ? 2.0 : 1.0; /* DualPipe keeps two model copies */
        double mw = 2.0 * (pd + pe) * copies;
        double mg = 4.0 * (pd + pe) * copies;
        double mo = s->offload_optimizer ? 0 : 12.0 * (pd / zero1_d + pe / zero1_e) * copies;
        double inf = inflight(s->schedule, pp, g.vpp, st, n_mb);
        double act = gr->act;
        double ma = s->offload_activations ? sim_offload_resident_bytes(act, gr->off, gr->offmax, inf) : act * inf;
        double mdisp = gr->nm > 0 ? mdisp_moe : 0;
        double total = mw + mg + mo + ma + mdisp + gr->extra + h->mem_reserved;
        if (total > mem_peak) {
            mem_peak = total;
            r->worst_stage = st;
            r->inflight = inf;
            r->memory[SIM_M_WEIGHTS] = mw; r->memory[SIM_M_GRADS] = mg; r->memory[SIM_M_OPTIMIZER] = mo;
            r->memory[SIM_M_ACTIVATIONS] = ma; r->memory[SIM_M_DISPATCH] = mdisp;
            r->memory[SIM_M_LOGITS] = gr->extra; r->memory[SIM_M_RESERVED] = h->mem_reserved;
        }
    }
    const sim_cost worst = grp[worst_gi].c;
    r->memory_peak_bytes = mem_peak;
    r->fits = mem_peak <= h->hbm_bytes;
    r->stage_fwd_s[0] = stage_f_worst; r->stage_bwd_s[0] = stage_b_worst;
    r->stage_fwd_s[1] = f_sum / pp; r->stage_bwd_s[1] = b_sum / pp;

    /* ---- pipeline (closed form; docs/cost-model.md "Pipeline"). Stage time t_s per micro-batch.
     * 1F1B: (n_mb - 1) max t_s + sum t_s  (= (n_mb + pp - 1) t for equal stages; Narayanan et al. 2021).
     * Interleaved: the fill/drain term divided by vpp. ZB-1P: (pp-1)(F + B - 2W); DualPipe:
     * (pp/2 - 1)(F&B + B - 3W) with F&B = F + B (DeepSeek-V3 report, Table 2); per-stage means. */
    double fill = t_sum - t_max, bubble;
    double F = f_sum / pp, B = b_sum / pp, W = w_sum / pp;
    switch (s->schedule) {
    case SPEC_SCHED_INTERLEAVED: bubble = fill / g.vpp; break;
    case SPEC_SCHED_ZB1P: bubble = (pp - 1) * (F + B - 2 * W); break;
    case SPEC_SCHED_DUALPIPE: bubble = (pp / 2.0 - 1) * (F + 2 * B - 3 * W); break;
    default: bubble = fill; break;
    }
    if (bubble < 0 || pp == 1) bubble = 0;
    double busy_scale = 1.0;
    if (s->schedule == SPEC_SCHED_DUALPIPE && pp > 1) {
        /* DualPipe: device d runs stage d of one direction and stage pp-1-d of the other, half the micro-batches
         * each, so its work per micro-batch is the mean of the two stages */
        double dmax = 0;
        if (n_grp == pp) { /* one group per stage (the reference assembly): stage by stage */
            for (int st = 0; st < pp; st++) {
                double ta = stage_time(&grp[st].c), tb = stage_time(&grp[pp - 1 - st].c);
                if (0.5 * (ta + tb) > dmax) dmax = 0.5 * (ta + tb);
            }
        } else { /* by runs of stages over which neither st's group nor its mirror pp-1-st's group changes */
            for (int st = 0, i = 0, j = n_grp - 1; st < pp;) {
                double ta = stage_time(&grp[i].c), tb = stage_time(&grp[j].c);
                if (0.5 * (ta + tb) > dmax) dmax = 0.5 * (ta + tb);
                int end_i = grp[i].st0 + grp[i].n, end_j = pp - grp[j].st0; /* first st leaving group i / j */
                st = end_i < end_j ? end_i : end_j;
                if (st >= end_i) i++;
                if (st >= end_j) j--;
            }
        }
        if (t_max > 0) busy_scale = dmax / t_max;
    }
    double t_pipe = n_mb * t_max * busy_scale + bubble;

    /* ---- PP point-to-point: one activation (t x C, bf16) per micro-batch chunk and direction, split over the
     * TP ranks (each sends 1/tp over its own link: SP shards, or Megatron's scatter/gather optimisation,
     * Narayanan et al. 2021 Sec. 4.1) */
    double t_pp = 0;
    if (pp > 1) {
        int inter = (long)g.tp * g.cp * g.dp >= g.dpn;
        double p2p = sim_p2p_time(h, inter, g.t / g.tp * m->C * 2.0);
        double steps = s->overlap_pp ? (pp - 1) : ((double)n_mb * g.vpp + pp - 1);
        t_pp = 2.0 * steps * p2p;
    }

    umoe_status pst = UMOE_OK;
    if (chunks) {
        /* detailed: the event simulation of the schedule with each virtual stage's own forward, backward-input
         * and weight-gradient times (first chunk has the embedding, last the head, loss and MTP) */
        int V = n_chunks;
        double *fa = umoe_malloc(sizeof(double) * 3 * V, "sim chunk times"), *ba = fa + V, *wa = fa + 2 * V;
        for (int v = 0; v < V; v++) {
            const sim_cost *c1 = &chunks[v];
            fa[v] = c1->fwd + c1->tp_fwd + c1->cp_fwd + c1->ep_fwd + c1->off_fwd;
            wa[v] = c1->bwd_w;
            ba[v] = c1->bwd + c1->rc + c1->tp_bwd + c1->cp_bwd + c1->ep_bwd + c1->off_bwd - wa[v];
        }
        int split = s->schedule == SPEC_SCHED_ZB1P || s->schedule == SPEC_SCHED_DUALPIPE;
        if (!split) for (int v = 0; v < V; v++) ba[v] += wa[v];
        int inter = (long)g.tp * g.cp * g.dp >= g.dpn;
        double p2p = pp > 1 ? sim_p2p_time(h, inter, g.t / g.tp * m->C * 2.0) : 0;
        pst = sim_pipeline_run(s->schedule, pp, g.vpp, n_mb, fa, ba, split ? wa : NULL, p2p, o->record_events,
                               &r->pipeline);
        if (!pst) {
            t_pipe = r->pipeline.makespan;
            /* the busiest device's own work; DualPipe spreads stage s and pp-1-s over one device, so it can be
             * below n_mb x the slowest stage: the component times below are scaled to it */
            double busy = t_pipe * (1.0 - r->pipeline.bubble_frac);
            busy_scale = n_mb * t_max > 0 ? busy / (n_mb * t_max) : 1.0;
            bubble = t_pipe - busy;
            t_pp = 0; /* the event simulation charges p2p on its edges: exposed p2p is inside the makespan */
            if (bubble < 0) bubble = 0;
        }
        umoe_free(fa, sizeof(double) * 3 * V);
        umoe_free(chunks, chunks_bytes);
        if (pst) return pst;
    }

    /* ---- DP gradient sync, sized per device (dense over dp x cp, experts over edp = devices/(ep etp pp)).
     * fp32 gradients (4 bytes); ZeRO-1 = reduce-scatter of grads + all-gather of bf16 params. Overlap hides
     * it behind the last micro-batch's backward (and the first forward for the gather): Megatron-LM DDP. */
    double pd = worst.params_dense, pe = worst.params_expert;
    int ndp = g.dp * g.cp;
    /* gradient bytes reduced: fp32 for bf16 (and fp8) runs, fp16 for fp16 runs (Megatron-LM arguments.py forces
     * accumulate_allreduce_grads_in_fp32 only for bf16) */
    const int fp16 = s->precision == SPEC_PREC_FP16;
    double gb = fp16 ? 2.0 : 4.0;
    double t_rs, t_ag = 0;
    if (s->zero1) {
        t_rs = sim_reducescatter_time(h, ndp, g.k_dp, gb * pd) + sim_reducescatter_time(h, g.edp, g.k_edp, gb * pe);
        t_ag = sim_allgather_time(h, ndp, g.k_dp, 2.0 * pd) + sim_allgather_time(h, g.edp, g.k_edp, 2.0 * pe);
    } else {
        t_rs = sim_allreduce_time(h, ndp, g.k_dp, gb * pd) + sim_allreduce_time(h, g.edp, g.k_edp, gb * pe);
    }
    double t_dp = t_rs + t_ag;
    if (s->overlap_dp) {
        double e1 = t_rs - stage_b_worst, e2 = t_ag - stage_f_worst;
        /* Megatron-Core reduces the gradients bucket by bucket as the last micro-batch's backward completes them
         * and gathers the parameters bucket by bucket ahead of the first forward: the bucket holding the first
         * parameters (the input embedding with PP 1: its gradient is complete only when the backward ends, its
         * parameters are needed before the forward starts) has nothing left to hide behind. Bucket size:
         * max(40M, 1M x DP size) parameters, a parameter larger than that in a bucket of its own
         * (megatron/core/distributed DistributedDataParallelConfig.bucket_size default). Dense buffer only. */
        if (ndp > 1) {
            double bucket = SIM_DP_BUCKET_MIN_PARAMS > SIM_DP_BUCKET_PER_RANK * ndp ? SIM_DP_BUCKET_MIN_PARAMS
                                                                                    : SIM_DP_BUCKET_PER_RANK * ndp;
            if (pp == 1 && k.ce.params_dense > bucket) bucket = k.ce.params_dense;
            if (bucket > pd) bucket = pd;
            double rs_last = s->zero1 ? sim_reducescatter_time(h, ndp, g.k_dp, gb * bucket)
                                      : sim_allreduce_time(h, ndp, g.k_dp, gb * bucket);
            double ag_first = s->zero1 ? sim_allgather_time(h, ndp, g.k_dp, 2.0 * bucket) : 0;
            if (e1 < rs_last) e1 = rs_last;
            if (e2 < ag_first) e2 = ag_first;
        }
        t_dp = (e1 > 0 ? e1 : 0) + (e2 > 0 ? e2 : 0);
    }

    /* ---- optimizer (memory bound over the parameters this device updates) */
    /* Megatron-LM's mixed-precision optimizer step over the updated (ZeRO-1: this rank's shard) parameters, plus
     * zeroing this device's whole main-grad buffer (cost.h, SIM_OPT_STEP_BYTES_* / SIM_OPT_ZERO_BYTES_*) */
    double p_opt = s->zero1 ? pd / ndp + pe / g.edp : pd + pe;
    double t_opt = sim_mem_time(h, (fp16 ? SIM_OPT_STEP_BYTES_FP16 : SIM_OPT_STEP_BYTES_BF16) * p_opt
                                       + (fp16 ? SIM_OPT_ZERO_BYTES_FP16 : SIM_OPT_ZERO_BYTES_BF16) * (pd + pe));
    if (s->offload_optimizer) t_opt = sim_offload_optimizer_time(h, p_opt, t_opt); /* Adam on the host */

    double step = t_pipe + t_pp + t_dp + t_opt;
    r->step_time_s = step;
    double k_mb = n_mb * busy_scale;
    r->breakdown[SIM_T_COMPUTE] = k_mb * (worst.fwd + worst.bwd);
    r->breakdown[SIM_T_RECOMPUTE] = k_mb * worst.rc;
    r->breakdown[SIM_T_TP] = k_mb * (worst.tp_fwd + worst.tp_bwd);
    r->breakdown[SIM_T_CP] = k_mb * (worst.cp_fwd + worst.cp_bwd);
    r->breakdown[SIM_T_EP] = k_mb * (worst.ep_fwd + worst.ep_bwd);
    r->breakdown[SIM_T_PP] = t_pp;
    r->breakdown[SIM_T_DP] = t_dp;
    r->breakdown[SIM_T_BUBBLE] = bubble;
    r->breakdown[SIM_T_OPTIMIZER] = t_opt;
    r->breakdown[SIM_T_OFFLOAD] = k_mb * (worst.off_fwd + worst.off_bwd);
    r->bubble_frac = bubble / step;
    r->tokens_per_s = tokens_step / step;
    r->flops_per_step_model = r->flops_per_token * tokens_step;
    /* recompute FLOPs for HFU: full = one more forward; otherwise the recomputed share of the forward time */
    double rc_frac = worst.fwd > 0 ? worst.rc / (worst.fwd + worst.tp_fwd + worst.ep_fwd + worst.cp_fwd) : 0;
    if (rc_frac > 1) rc_frac = 1;
    r->flops_per_step_hw = r->flops_per_step_model + fwd_tok * tokens_step * rc_frac;
    double denom = step * c->devices * h->peak_bf16;
    r->mfu = r->flops_per_step_model / denom;
    r->hfu = r->flops_per_step_hw / denom;
    return UMOE_OK;
}
