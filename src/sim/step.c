/* step.c - sim_run: assemble one training step of (model, cluster, strategy) from the per-layer costs:
 * stages, pipeline schedule (closed form, or the event simulation when detailed), PP point-to-point,
 * DP gradient synchronisation, optimizer, memory per stage, MFU/HFU.
 * Does not: cost individual operators (cost_layer.c) or simulate events (pipeline*.c). With detailed == 0 it
 * allocates nothing, writes no file and logs nothing: the planner calls it millions of times per second.
 * Equations and sources: docs/cost-model.md ("Step assembly", "Pipeline", "Data parallel", "Memory"). */
#include <math.h>
#include <string.h>
#include "cost.h"

/* The event simulation lives in pipeline*.c (another module, merged separately); until it is linked in, the
 * weak references stay NULL and sim_run uses the closed form even when detailed is asked for. */
extern umoe_status sim_pipeline_run(spec_schedule, int, int, int, const double *, const double *, const double *,
                                    double, int, sim_pipeline_result *) __attribute__((weak));
extern void sim_pipeline_free(sim_pipeline_result *) __attribute__((weak));

#define SIM_OPT_BYTES_PER_PARAM 34.0 /* Adam step: read grad, m, v, master (16), write m, v, master (12) and bf16
                                      * param (2), plus the grad-norm read for clipping (4); docs/cost-model.md */

/* Model FLOPs per token, forward (multiply-add = 2). Attention's s^2 term in full unless causal_half. */
static double model_fwd_flops(const spec_model *m, int causal_half, double *params_total, double *params_active) {
    double C = m->C, T = m->T, attn_p, core;
    int swiglu = m->ffn == SPEC_FFN_SWIGLU;
    int n_norm = m->norm == SPEC_NORM_SANDWICH ? 4 : 2;
    if (m->attn == SPEC_ATTN_MLA) {
        double qk = m->qk_nope + m->qk_rope;
        attn_p = (m->q_lora > 0 ? C * m->q_lora + m->q_lora + (double)m->q_lora * m->H * qk : C * m->H * qk)
                 + C * (m->kv_lora + m->qk_rope) + m->kv_lora + (double)m->kv_lora * m->H * (m->qk_nope + m->v_head)
                 + (double)m->H * m->v_head * C;
        core = 2.0 * T * m->H * (qk + m->v_head);
    } else {
        double hd = m->head_dim > 0 ? m->head_dim : C / m->H;
        double hkv = m->H_kv > 0 ? m->H_kv : m->H;
        attn_p = C * (m->H + 2 * hkv) * hd + m->H * hd * C + (m->qkv_bias ? (m->H + 2 * hkv) * hd : 0);
        core = 4.0 * T * m->H * hd;
    }
    if (causal_half) core *= 0.5;
    double mlp = (swiglu ? 3.0 : 2.0) * C;
    double dense_p = mlp * m->F, expert_p = mlp * m->F_expert;
    double router_p = m->E > 0 ? C * m->E : 0;
    int n_dense = m->E > 0 ? (m->first_k_dense < m->L ? m->first_k_dense : m->L) : m->L;
    int n_moe = m->L - n_dense;
    double embed = (double)m->V * C, head = m->tied ? 0 : (double)m->V * C;
    double per_layer_fixed = attn_p + n_norm * C;
    double moe_total = router_p + (m->E + m->E_shared) * expert_p;
    double moe_active = router_p + (m->K + m->E_shared) * expert_p;
    if (params_total) *params_total = embed + head + C + m->L * per_layer_fixed + n_dense * dense_p + n_moe * moe_total;
    if (params_active) *params_active = embed + head + C + m->L * per_layer_fixed + n_dense * dense_p + n_moe * moe_active;
    double layer_attn = 2.0 * attn_p + core;
    double f = m->L * layer_attn + n_dense * 2.0 * dense_p + n_moe * 2.0 * moe_active + 2.0 * C * m->V;
    /* MTP (DeepSeek-V3 Sec. 2.2): per depth a projection 2C -> C, one transformer block, the shared head */
    if (m->mtp > 0)
        f += m->mtp * (2.0 * 2 * C * C + layer_attn + 2.0 * (m->E > 0 ? moe_active : dense_p) + 2.0 * C * m->V);
    return f;
}

static void add(sim_cost *a, const sim_cost *b, double k) {
    a->fwd += k * b->fwd; a->bwd += k * b->bwd; a->bwd_w += k * b->bwd_w; a->gemm_fwd += k * b->gemm_fwd;
    a->rc += k * b->rc; a->tp_fwd += k * b->tp_fwd; a->tp_bwd += k * b->tp_bwd; a->cp_fwd += k * b->cp_fwd;
    a->cp_bwd += k * b->cp_bwd; a->ep_fwd += k * b->ep_fwd; a->ep_bwd += k * b->ep_bwd;
    a->params_dense += k * b->params_dense; a->params_expert += k * b->params_expert;
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

void sim_result_free(sim_result *r) {
    if (r && r->pipeline.events && sim_pipeline_free) sim_pipeline_free(&r->pipeline);
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

    memset(r->breakdown, 0, sizeof r->breakdown);
    memset(r->memory, 0, sizeof r->memory);
    r->pipeline.events = NULL; r->pipeline.n_events = 0;

    /* ---- model-level counts */
    double fwd_tok = model_fwd_flops(m, o->causal_half, &r->params_total, &r->params_active);
    r->flops_per_token = 3.0 * fwd_tok;
    int n_mb = s->gbs / (s->mbs * g.dp);
    if (n_mb < 1) n_mb = 1;
    r->n_microbatches = n_mb;
    double tokens_step = (double)n_mb * s->mbs * g.dp * m->T;

    /* ---- layer kinds */
    int is_moe = m->E > 0;
    int n_dense_total = is_moe ? (m->first_k_dense < m->L ? m->first_k_dense : m->L) : m->L;
    sim_cost cd, cm, ce, ch;
    if (n_dense_total > 0) sim_layer_cost(m, h, s, o, &g, 0, &cd); else memset(&cd, 0, sizeof cd);
    if (is_moe && n_dense_total < m->L) sim_layer_cost(m, h, s, o, &g, 1, &cm); else memset(&cm, 0, sizeof cm);
    sim_embed_cost(m, h, s, &g, &ce);
    sim_head_cost(m, h, s, &g, &ch);
    double act_d = n_dense_total > 0 ? sim_layer_act_bytes(m, s, o, 0) : 0;
    double act_m = is_moe ? sim_layer_act_bytes(m, s, o, 1) : 0;

    /* ---- stages: layers split evenly, the first L % pp stages take one more; dense layers come first */
    int pp = g.pp, base = m->L / pp, rem = m->L % pp;
    double t_max = 0, t_sum = 0, f_sum = 0, b_sum = 0, w_sum = 0;
    sim_cost worst = {0};
    double mem_peak = -1;
    int l0 = 0, smax = 0;
    double zero1_d = s->zero1 ? g.dp * g.cp : 1, zero1_e = s->zero1 ? g.edp : 1;
    double p_stage_dense_max = 0, p_stage_exp_max = 0, stage_b_worst = 0, stage_f_worst = 0;
    for (int st = 0; st < pp; st++) {
        int nl = base + (st < rem);
        int nd = n_dense_total - l0;
        if (nd < 0) nd = 0;
        if (nd > nl) nd = nl;
        int nm = nl - nd;
        l0 += nl;
        sim_cost sc = {0};
        add(&sc, &cd, nd);
        add(&sc, &cm, nm);
        double act = nd * act_d + nm * act_m;
        double extra = 0; /* transient bytes */
        if (st == 0) add(&sc, &ce, 1);
        if (st == pp - 1) {
            add(&sc, &ch, 1);
            if (m->tied && pp > 1) sc.params_dense += (double)m->V * m->C / g.tp; /* head copy of the embedding */
            if (m->mtp > 0) {
                add(&sc, is_moe ? &cm : &cd, m->mtp);
                sim_cost hd = ch; hd.params_dense = 0;  /* MTP shares the head */
                add(&sc, &hd, m->mtp);
                sc.params_dense += m->mtp * (2.0 * m->C * m->C + 2 * m->C);
                act += m->mtp * (is_moe ? act_m : act_d);
            }
            extra += 4.0 * g.t * m->V / g.tp + 2.0 * g.t_sp * m->C; /* fp32 logits + head input */
        }
        double t_f = sc.fwd + sc.tp_fwd + sc.cp_fwd + sc.ep_fwd;
        double t_b = sc.bwd + sc.rc + sc.tp_bwd + sc.cp_bwd + sc.ep_bwd;
        double ts = t_f + t_b;
        t_sum += ts; f_sum += t_f; b_sum += t_b; w_sum += sc.bwd_w;
        if (ts > t_max) { t_max = ts; worst = sc; smax = st; stage_f_worst = t_f; stage_b_worst = t_b; }
        if (sc.params_dense > p_stage_dense_max) p_stage_dense_max = sc.params_dense;
        if (sc.params_expert > p_stage_exp_max) p_stage_exp_max = sc.params_expert;

        /* memory of this stage */
        double pd = sc.params_dense, pe = sc.params_expert;
        double copies = s->schedule == SPEC_SCHED_DUALPIPE ? 2.0 : 1.0; /* DualPipe keeps two model chunks */
        double mw = 2.0 * (pd + pe) * copies;
        double mg = 4.0 * (pd + pe) * copies;
        double mo = s->offload_optimizer ? 0 : 12.0 * (pd / zero1_d + pe / zero1_e) * copies;
        double inf = inflight(s->schedule, pp, g.vpp, st, n_mb);
        double ma = s->offload_activations ? act : act * inf;  /* offload: one micro-batch resident */
        double mdisp = nm > 0 || (st == pp - 1 && m->mtp > 0 && is_moe)
                           ? 2.0 * (g.t / g.tp) * m->K * g.etp * g.imb * m->C * 2.0 : 0; /* send + recv */
        double total = mw + mg + mo + ma + mdisp + extra + h->mem_reserved;
        if (total > mem_peak) {
            mem_peak = total;
            r->worst_stage = st;
            r->inflight = inf;
            r->memory[SIM_M_WEIGHTS] = mw; r->memory[SIM_M_GRADS] = mg; r->memory[SIM_M_OPTIMIZER] = mo;
            r->memory[SIM_M_ACTIVATIONS] = ma; r->memory[SIM_M_DISPATCH] = mdisp; r->memory[SIM_M_LOGITS] = extra;
            r->memory[SIM_M_RESERVED] = h->mem_reserved;
        }
    }
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
    double t_pipe = n_mb * t_max + bubble;

    /* ---- PP point-to-point: one activation (t_sp x C, bf16) per micro-batch chunk and direction */
    double t_pp = 0;
    if (pp > 1) {
        int inter = (long)g.tp * g.cp * g.dp >= g.dpn;
        double p2p = sim_p2p_time(h, inter, g.t_sp * m->C * 2.0);
        double steps = s->overlap_pp ? (pp - 1) : ((double)n_mb * g.vpp + pp - 1);
        t_pp = 2.0 * steps * p2p;
    }

    /* ---- DP gradient sync, sized per device (dense over dp x cp, experts over edp = devices/(ep etp pp)).
     * fp32 gradients (4 bytes); ZeRO-1 = reduce-scatter of grads + all-gather of bf16 params. Overlap hides
     * it behind the last micro-batch's backward (and the first forward for the gather): Megatron-LM DDP. */
    double pd = worst.params_dense, pe = worst.params_expert;
    int ndp = g.dp * g.cp;
    double t_rs, t_ag = 0;
    if (s->zero1) {
        t_rs = sim_reducescatter_time(h, ndp, g.k_dp, 4.0 * pd) + sim_reducescatter_time(h, g.edp, g.k_edp, 4.0 * pe);
        t_ag = sim_allgather_time(h, ndp, g.k_dp, 2.0 * pd) + sim_allgather_time(h, g.edp, g.k_edp, 2.0 * pe);
    } else {
        t_rs = sim_allreduce_time(h, ndp, g.k_dp, 4.0 * pd) + sim_allreduce_time(h, g.edp, g.k_edp, 4.0 * pe);
    }
    double t_dp = t_rs + t_ag;
    if (s->overlap_dp) {
        double e1 = t_rs - stage_b_worst, e2 = t_ag - stage_f_worst;
        t_dp = (e1 > 0 ? e1 : 0) + (e2 > 0 ? e2 : 0);
    }

    /* ---- optimizer (memory bound over the parameters this device updates) */
    double p_opt = s->zero1 ? pd / ndp + pe / g.edp : pd + pe;
    double t_opt = s->offload_optimizer ? 0 : sim_mem_time(h, SIM_OPT_BYTES_PER_PARAM * p_opt);

    double step = t_pipe + t_pp + t_dp + t_opt;
    r->step_time_s = step;
    r->breakdown[SIM_T_COMPUTE] = n_mb * (worst.fwd + worst.bwd);
    r->breakdown[SIM_T_RECOMPUTE] = n_mb * worst.rc;
    r->breakdown[SIM_T_TP] = n_mb * (worst.tp_fwd + worst.tp_bwd);
    r->breakdown[SIM_T_CP] = n_mb * (worst.cp_fwd + worst.cp_bwd);
    r->breakdown[SIM_T_EP] = n_mb * (worst.ep_fwd + worst.ep_bwd);
    r->breakdown[SIM_T_PP] = t_pp;
    r->breakdown[SIM_T_DP] = t_dp;
    r->breakdown[SIM_T_BUBBLE] = bubble;
    r->breakdown[SIM_T_OPTIMIZER] = t_opt;
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
    (void)smax; (void)p_stage_dense_max; (void)p_stage_exp_max;
    return UMOE_OK;
}
