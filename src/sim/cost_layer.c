/* cost_layer.c - per-operator roofline of one transformer layer (attention + dense FFN or MoE), the
 * embedding and the LM head + loss, for one micro-batch on one device: forward, backward, recompute, and the
 * TP/CP/EP collectives the layer issues (exposed share after the overlap switches).
 * Does not: assemble stages, pipeline, DP or memory (step.c, cost_memory.c). No allocation: hot path.
 * Equations and their sources: docs/cost-model.md ("Compute", "Layer operators", "Communication").
 * Conventions: GEMM (m x k)(k x n) = 2mnk FLOPs; backward of a GEMM = dX + dW = 2x its forward
 * (Narayanan et al. 2021, "Efficient large-scale language model training on GPU clusters", Sec. 5.1);
 * flash-attention backward = 2.5x its forward's FLOPs (Dao 2023, FlashAttention-2, Sec. 3: 5 matmuls vs 2) at
 * SIM_ATTN_BWD_EFF_RATIO x the forward's efficiency (FlashAttention-3 paper, Figs. 5-6); TP comm overlap taxes
 * the GEMMs it overlaps (SIM_TP_OVERLAP_GEMM_TAX, Transformer Engine userbuffers). Constants: cost.h. */
#include <math.h>
#include "cost.h"

static int imin(int a, int b) { return a < b ? a : b; }
static int imax(int a, int b) { return a > b ? a : b; }

void sim_geom_init(const spec_model *m, const spec_cluster *c, const spec_strategy *s, sim_geom *g) {
    g->tp = imax(s->tp, 1); g->cp = imax(s->cp, 1); g->pp = imax(s->pp, 1); g->vpp = imax(s->vpp, 1);
    g->ep = imax(s->ep, 1); g->etp = imax(s->etp, 1);
    g->dp = s->dp > 0 ? s->dp : imax(c->devices / (g->tp * g->cp * g->pp), 1);
    g->edp = imax(c->devices / (g->ep * g->etp * g->pp), 1);
    g->sp = s->sp && g->tp > 1;
    g->dpn = imax(c->hw.devices_per_node, 1);
    g->t = (double)s->mbs * m->T / g->cp;
    g->t_sp = g->sp ? g->t / g->tp : g->t;
    /* Megatron-LM rank order tp-cp-dp-pp (tp fastest); expert side etp-ep-edp-pp. A group with stride S and
     * size n has min(n, dpn / S) members per node (at least 1). */
    g->k_tp = imin(g->tp, g->dpn);
    g->k_cp = imax(1, imin(g->cp, g->dpn / g->tp));
    g->k_dp = imax(1, imin(g->dp * g->cp, g->dpn / g->tp));
    g->k_ep = imax(1, imin(g->ep, g->dpn / g->etp));
    g->k_edp = imax(1, imin(g->edp, g->dpn / (g->etp * g->ep)));
    g->bits = s->precision_bits == 8 ? 8 : 16;
    /* Imbalance: the histogram's max EP-rank load (experts placed in contiguous blocks of E/ep) over the
     * mean, or the strategy's factor. */
    g->imb = s->imbalance > 1.0 ? s->imbalance : 1.0;
    if (s->n_hist > 0 && m->E > 0 && s->n_hist == m->E && g->ep > 0 && m->E % g->ep == 0) {
        int per = m->E / g->ep;
        double tot = 0, mx = 0;
        for (int r = 0; r < g->ep; r++) {
            double l = 0;
            for (int e = 0; e < per; e++) l += s->hist[r * per + e];
            tot += l;
            if (l > mx) mx = l;
        }
        if (tot > 0) g->imb = mx / (tot / g->ep);
    }
}

/* accumulate one GEMM: forward time, its flops, and the GEMM window */
typedef struct { double t, gemm; int nk; } acc; /* time, GEMM time, kernels launched */
static double gemm(const spec_hardware *h, const sim_geom *g, acc *a, double M, double N, double K) {
    double t = sim_gemm_time(h, M, N, K, g->bits);
    a->t += t; a->gemm += t; a->nk++;
    return t;
}
static double mem(const spec_hardware *h, acc *a, double bytes) {
    double t = sim_mem_time(h, bytes);
    a->t += t; a->nk++;
    return t;
}

/* TP collectives of one "f/g" region pair (Megatron-LM, Shoeybi et al. 2019, Fig. 3; with SP, Korthikanti
 * et al. 2022 Sec. 4.2.2): no SP = one all-reduce of t x C; SP = all-gather + reduce-scatter of the same
 * buffer (equal bandwidth). Returns seconds for one direction (forward or backward). */
static double tp_pair(const spec_model *m, const spec_hardware *h, const sim_geom *g) {
    if (g->tp <= 1) return 0;
    double bytes = g->t * m->C * 2.0;
    if (g->sp) return sim_allgather_time(h, g->tp, g->k_tp, bytes) + sim_reducescatter_time(h, g->tp, g->k_tp, bytes);
    return sim_allreduce_time(h, g->tp, g->k_tp, bytes);
}

/* The SP all-gather redone in the backward pass, once per pair: the column-parallel linear that opens the pair
 * (QKV, FFN up) keeps only its sequence-parallel input shard and gathers it again for its weight gradient
 * (Korthikanti et al. 2022 Sec. 4.2.2; Megatron-LM LinearWithGradAccumulationAndAsyncCommunication.backward,
 * megatron/core/tensor_parallel/layers.py; Calculon's seq_par_ag_redo). 0 without SP. */
static double tp_sp_regather(const spec_model *m, const spec_hardware *h, const sim_geom *g) {
    if (g->tp <= 1 || !g->sp) return 0;
    return sim_allgather_time(h, g->tp, g->k_tp, g->t * m->C * 2.0);
}

static double host_s_per_kernel(const sim_options *o) {
    return o && o->host_s_per_kernel > 0 ? o->host_s_per_kernel : SIM_HOST_S_PER_KERNEL;
}

/* GPU time g and host launch time c of one pass: (g^p + c^p)^(1/p); p = 1 adds them, p -> infinity is the
 * maximum (perfectly asynchronous launches). */
static double host_combine(double g, double c, double p) {
    if (p >= 64) return g > c ? g : c;
    if (p == 1) return g + c;
    if (p == 2) return sqrt(g * g + c * c);
    return pow(pow(g, p) + pow(c, p), 1.0 / p);
}

static double exposed(double comm, double window) { double e = comm - window; return e > 0 ? e : 0; }

void sim_layer_cost(const spec_model *m, const spec_hardware *h, const spec_strategy *s, const sim_options *o,
                    const sim_geom *g, int moe, sim_cost *out) {
    const double C = m->C, t = g->t, tn = g->t_sp, tp = g->tp;
    const int swiglu = m->ffn == SPEC_FFN_SWIGLU;
    const int no_flash = o && o->attn_no_flash;
    const unsigned rc = s->recompute;
    acc a = {0, 0, 0};
    double rc_t = 0;
    double params_dense = 0, params_expert = 0;

    /* ---- norms and residual adds (sequence-parallel region: tn tokens) */
    int n_norm = m->norm == SPEC_NORM_SANDWICH ? 4 : 2;
    double t_norm = mem(h, &a, n_norm * 4.0 * tn * C);          /* read + write bf16 */
    mem(h, &a, 2 * 3.0 * 2.0 * tn * C);                         /* 2 residual adds: read 2, write 1 */
    params_dense += n_norm * C;
    if (rc & SPEC_RC_NORM) rc_t += t_norm;

    /* ---- attention projections */
    double t_up = 0, core_flops, kv_cp_bytes;
    /* GEMMs that overlap a TP reduce-scatter with TP comm overlap on (Transformer Engine userbuffers): forward
     * the output projection and the FFN down projection; backward the attention input and FFN up projections */
    double t_rs_f = 0, t_rs_b = 0;
    double heads = m->H / tp;
    if (m->attn == SPEC_ATTN_MLA) {
        double qk = m->qk_nope + m->qk_rope;
        if (m->q_lora > 0) {
            gemm(h, g, &a, t, m->q_lora, C);                    /* q down: replicated over TP (Megatron MLA) */
            t_up += gemm(h, g, &a, t, heads * qk, m->q_lora);
            mem(h, &a, 4.0 * t * m->q_lora);                    /* q latent norm */
            params_dense += C * m->q_lora + m->q_lora + m->q_lora * heads * qk;
        } else {
            gemm(h, g, &a, t, heads * qk, C);
            params_dense += C * heads * qk;
        }
        gemm(h, g, &a, t, m->kv_lora + m->qk_rope, C);           /* kv down: replicated */
        t_up += gemm(h, g, &a, t, heads * (m->qk_nope + m->v_head), m->kv_lora);
        mem(h, &a, 4.0 * t * m->kv_lora);
        t_rs_f += gemm(h, g, &a, t, C, heads * m->v_head);       /* output projection */
        t_rs_b += t_up;
        params_dense += C * (m->kv_lora + m->qk_rope) + m->kv_lora + m->kv_lora * heads * (m->qk_nope + m->v_head)
                        + heads * m->v_head * C;
        core_flops = 2.0 * t * m->T * heads * (qk + m->v_head);
        kv_cp_bytes = 2.0 * t * heads * (qk + m->v_head);
    } else {
        double hd = m->head_dim > 0 ? m->head_dim : C / m->H;
        double hkv = m->H_kv > 0 ? m->H_kv : m->H;
        double q = heads * hd, kv = hkv / tp * hd;
        if (kv <= 0) kv = hd; /* GQA with fewer kv heads than tp: each rank keeps one replica */
        t_rs_b += gemm(h, g, &a, t, q + 2 * kv, C);
        t_rs_f += gemm(h, g, &a, t, C, q);
        params_dense += C * (q + 2 * kv) + q * C + (m->qkv_bias ? q + 2 * kv : 0);
        core_flops = 4.0 * t * m->T * q;
        kv_cp_bytes = 2.0 * t * 2 * kv;
    }
    if (rc & SPEC_RC_MLA_UP) rc_t += t_up;

    /* ---- attention core. Flash class: causal blocks skipped (half the s^2 work), at the hardware's attn_eff.
     * Unfused (Megatron 2022): full s^2 batched GEMMs + scale-mask-softmax and dropout kernels reading/writing
     * the score matrix (9 bytes per score element: softmax r2 w2, dropout r2 w2 + 1-byte mask). */
    double t_core, t_core_b;
    double attn_eff = h->attn_eff > 0 ? h->attn_eff : 0.5;
    if (no_flash) {
        /* batched GEMMs run at the efficiency of one head's GEMM: (t x T) by the head dim */
        double elems = t * m->T * heads, per_head = heads > 0 ? core_flops / (2.0 * heads * s->mbs) : core_flops;
        t_core = core_flops / (h->peak_bf16 * sim_gemm_eff(h, per_head)) + sim_mem_time(h, 9.0 * elems);
        t_core_b = 2.0 * t_core;
    } else {
        t_core = 0.5 * core_flops / (h->peak_bf16 * attn_eff);
        t_core_b = 2.5 * t_core / SIM_ATTN_BWD_EFF_RATIO; /* 2.5x the FLOPs at a lower efficiency */
    }
    a.t += t_core;
    a.nk += no_flash ? 4 + 4 : 1; /* QK^T, softmax, dropout, PV + 4 layout copies (q, k, v, context) */
    if (rc & SPEC_RC_ATTN_CORE) rc_t += t_core;

    /* ---- FFN */
    double t_act = 0, t_fc1_exp = 0, t_perm = 0, ep_comm = 0;
    if (!moe) {
        double F = m->F / tp;
        t_rs_b += gemm(h, g, &a, t, (swiglu ? 2 : 1) * F, C);
        t_act = mem(h, &a, 2.0 * t * F * (swiglu ? 3 : 2));
        t_rs_f += gemm(h, g, &a, t, C, F);
        params_dense += (swiglu ? 3 : 2) * C * F;
    } else {
        double E = m->E, K = m->K, Fe = (double)m->F_expert / g->etp;
        double A = t / tp * K * g->etp;    /* mean token-assignments per device (TP ranks split the tokens) */
        double As = A * g->imb;                                   /* slowest EP rank */
        double e_loc = E / g->ep, Me = As / e_loc;
        gemm(h, g, &a, t / tp, E, C);                /* router (replicated weights) */
        mem(h, &a, 16.0 * t / tp * E);              /* scores, top-k (fp32) */
        t_perm = mem(h, &a, 8.0 * As * C);                         /* permute + unpermute: r/w bf16 each */
        /* grouped GEMM: E/ep expert GEMMs at the per-expert efficiency, divided by the grouped-kernel factor */
        double gf = o && o->grouped_gemm_factor > 0 ? o->grouped_gemm_factor : SIM_GROUPED_GEMM_FACTOR;
        t_fc1_exp = e_loc * sim_gemm_time(h, Me, (swiglu ? 2 : 1) * Fe, C, g->bits) / gf;
        double t2 = e_loc * sim_gemm_time(h, Me, C, Fe, g->bits) / gf;
        a.t += t_fc1_exp + t2; a.gemm += t_fc1_exp + t2; a.nk += 2;
        t_act = mem(h, &a, 2.0 * As * Fe * (swiglu ? 3 : 2));
        params_dense += C * E;
        params_expert += e_loc * (swiglu ? 3 : 2) * C * Fe;
        if (m->E_shared > 0) {
            double Fs = (double)m->F_expert * m->E_shared / tp;
            t_rs_b += gemm(h, g, &a, t, (swiglu ? 2 : 1) * Fs, C);
            t_act += mem(h, &a, 2.0 * t * Fs * (swiglu ? 3 : 2));
            t_rs_f += gemm(h, g, &a, t, C, Fs);
            params_dense += (swiglu ? 3 : 2) * C * Fs;
        }
        /* EP: dispatch + combine per direction; volume = this rank's token-assignments x C x 2 bytes, scaled by
         * the imbalance (the slowest rank receives imb x the mean). */
        double asg_bytes = As * C * 2.0;
        double tok_bytes = t / tp * C * 2.0;
        double one = s->a2a == SPEC_A2A_HIER ? sim_alltoall_hier_time(h, g->ep, g->k_ep, tok_bytes, asg_bytes)
                                             : sim_alltoall_time(h, g->ep, g->k_ep, asg_bytes);
        ep_comm = 2.0 * one;
    }
    if (rc & SPEC_RC_ACT) rc_t += t_act;
    if (rc & SPEC_RC_EXPERT_FC1) rc_t += t_fc1_exp;
    if (rc & SPEC_RC_PERMUTE) rc_t += t_perm;

    /* ---- communication of the layer */
    int tp_pairs = (!moe || m->E_shared > 0) ? 2 : 1;  /* attention + (dense FFN | shared expert) */
    double tp_one = tp_pair(m, h, g) * tp_pairs;
    double tp_one_b = tp_one + tp_sp_regather(m, h, g) * tp_pairs; /* backward: + the SP input re-gather */
    double tp_f = tp_one, tp_b = tp_one_b;
    if (s->overlap_tp) { tp_f = exposed(tp_one, a.gemm); tp_b = exposed(tp_one_b, 2 * a.gemm); }
    double cp_f = 0, cp_b = 0;
    if (g->cp > 1) {
        /* ring attention (Liu et al. 2023; Megatron-Core CP): cp-1 KV block passes per direction, each hidden
         * behind one block of attention compute; backward passes KV and dKV (2x bytes). */
        int inter = g->k_cp < g->cp;
        double pass = sim_p2p_time(h, inter, kv_cp_bytes);
        cp_f = (g->cp - 1) * exposed(pass, t_core / g->cp);
        cp_b = (g->cp - 1) * exposed(2 * pass, t_core_b / g->cp);
    }
    double ep_f = ep_comm, ep_b = ep_comm;
    if (s->overlap_ep && moe) {
        /* cross-micro-batch overlap: the forward of one micro-batch runs while another's backward
         * communicates, and the other way round (Pangu's adaptive pipe overlap: attention F hides combine B,
         * MLP B hides dispatch F, ...; DeepSeek-V3 Sec. 3.2.1 DualPipe). Window of the forward's all-to-alls =
         * the other micro-batch's backward compute of the layer, and vice versa. */
        double bwd_win = 2.0 * (a.t - t_core) + t_core_b;
        ep_f = exposed(ep_comm, bwd_win);
        ep_b = exposed(ep_comm, a.t);
    }
    /* Host-bound floor: kernels are launched asynchronously, so a layer pass takes at least its launch time
     * (kernels x host seconds per kernel; the backward launches about twice as many kernels). */
    double host = host_s_per_kernel(o);
    double bwd_gpu = 2.0 * (a.t - t_core) + t_core_b;
    double fwd_gpu = a.t;
    if (s->overlap_tp && g->tp > 1) {
        /* SM contention of TP comm overlap: the reduce-scatter kernels occupy SMs that the overlapped GEMMs
         * lose (backward: dgrad + wgrad of the input projections, i.e. 2x their forward time) */
        fwd_gpu += t_rs_f * SIM_TP_OVERLAP_GEMM_TAX;
        bwd_gpu += 2.0 * t_rs_b * SIM_TP_OVERLAP_GEMM_TAX;
    }
    double pw = o && o->host_combine_p > 0 ? o->host_combine_p : SIM_HOST_COMBINE_P;
    out->fwd = host_combine(fwd_gpu, a.nk * host, pw);
    out->bwd = host_combine(bwd_gpu, 2 * a.nk * host, pw);
    out->bwd_w = a.gemm;
    out->gemm_fwd = a.gemm;
    if (rc & SPEC_RC_FULL) rc_t = out->fwd + tp_f + ep_f + cp_f;
    out->rc = rc_t;
    out->tp_fwd = tp_f; out->tp_bwd = tp_b;
    out->cp_fwd = cp_f; out->cp_bwd = cp_b;
    out->ep_fwd = ep_f; out->ep_bwd = ep_b;
    out->params_dense = params_dense;
    out->params_expert = params_expert;
}

void sim_embed_cost(const spec_model *m, const spec_hardware *h, const spec_strategy *s, const sim_geom *g,
                    sim_cost *out) {
    double t = sim_mem_time(h, 2.0 * g->t * m->C * 2.0); /* gather rows + write */
    *out = (sim_cost){0};
    out->fwd = t;
    /* backward: scatter-add of the rows into a dense, zero-filled V/tp x C gradient, then added into the fp32
     * main gradient (SIM_EMBED_GRAD_BYTES per embedding parameter, every micro-batch) */
    out->bwd = 2 * t + sim_mem_time(h, SIM_EMBED_GRAD_BYTES * (double)m->V / g->tp * m->C);
    /* vocab-parallel embedding: all-reduce (or reduce-scatter with SP) of the output */
    if (g->tp > 1) {
        double bytes = g->t * m->C * 2.0;
        out->tp_fwd = g->sp ? sim_reducescatter_time(h, g->tp, g->k_tp, bytes) : sim_allreduce_time(h, g->tp, g->k_tp, bytes);
        out->tp_bwd = g->sp ? sim_allgather_time(h, g->tp, g->k_tp, bytes) : 0;
    }
    out->params_dense = (double)m->V * m->C / g->tp;
    (void)s;
}

void sim_head_cost(const spec_model *m, const spec_hardware *h, const spec_strategy *s, const sim_options *o,
                   const sim_geom *g, sim_cost *out) {
    *out = (sim_cost){0};
    double t = g->t, V = (double)m->V / g->tp;
    double tg = sim_gemm_time(h, t, V, m->C, g->bits);
    double tn = sim_mem_time(h, 4.0 * g->t_sp * m->C);         /* final norm */
    int unfused = o && o->loss_unfused;
    double lf = unfused ? SIM_LOSS_UNFUSED_FWD_BYTES : SIM_LOSS_FUSED_FWD_BYTES;
    double lb = unfused ? SIM_LOSS_UNFUSED_BWD_BYTES : SIM_LOSS_FUSED_BWD_BYTES;
    double tl = sim_mem_time(h, lf * t * V);                    /* softmax cross-entropy over t x V/tp logits */
    out->fwd = tg + tn + tl;
    out->bwd = 2 * tg + 2 * tn + sim_mem_time(h, lb * t * V);
    out->bwd_w = tg;
    out->gemm_fwd = tg;
    if (g->tp > 1) {
        double bytes = t * m->C * 2.0;
        out->tp_fwd = g->sp ? sim_allgather_time(h, g->tp, g->k_tp, bytes) : 0;
        /* with SP the LM head, a column-parallel linear on the sequence-parallel final-norm output, also re-gathers
         * its input for the weight gradient (tp_sp_regather) */
        out->tp_bwd = g->sp ? sim_reducescatter_time(h, g->tp, g->k_tp, bytes) + tp_sp_regather(m, h, g)
                            : sim_allreduce_time(h, g->tp, g->k_tp, bytes);
        if (s->overlap_tp) { out->tp_fwd = exposed(out->tp_fwd, tg); out->tp_bwd = exposed(out->tp_bwd, 2 * tg); }
    }
    out->params_dense = V * m->C + m->C;
}
