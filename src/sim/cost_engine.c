/* cost_engine.c - step time of OUR engine (`umoe train`: fp32, OpenBLAS sgemm, one process = one device,
 * expert parallelism over MPI ranks of one host) from a hardware spec measured by `umoe bench` on the same
 * machine. The operator list is the engine's (src/model via docs/engine-model.md, docs/engine-memory.md,
 * src/dist via docs/dist.md), restated here; every constant comes from the hardware spec:
 *   GEMM      2 n k o FLOPs at peak_fp32 x gemm_eff(flops of that call) (bench: OpenBLAS sgemm, same
 *             kernel); backward = two GEMMs of the same FLOPs (dX and dW);
 *   attention forward 0.5 x 2 B T^2 H (Dk + Dv) / (peak x eff) (bench's convention for attn_eff: the
 *             causal half of the full s^2 count), backward = ratio x forward, eff and ratio the bench's at the
 *             run's sequence length (attn_eff_seq); a spec without that table: attn_eff and 2.5
 *             (FlashAttention-2, Dao 2023, sec. 3: 5 matmuls vs 2; the constant of src/sim/cost_layer.c);
 *   element-wise bytes / (hbm_bw x mem_eff) (bench: the rate of the engine's own element-wise kernels on
 *             DRAM-sized arrays), or bytes / cache_bw when the call's bytes fit in cache_bytes (bench: the
 *             same kernels on arrays inside the per-core L2; absent from the spec = the DRAM rate for all),
 *             backward moving twice the forward bytes (read the saved input and the output grad, write the
 *             input grad);
 *   optimizer zero grads 4 B/param, global norm 4 B/param at hbm_bw x mem_eff (the clip's scaling is
 *             folded into the AdamW pass: no bytes of its own), AdamW 28 B per owned parameter at adamw_bw (bench:
 *             adamw_update's median rate; absent = hbm_bw x mem_eff); with several ranks also the 1 / ranks
 *             scaling of the summed gradients, 8 B/param (src/train/train_ep.c scale_grads);
 *   EP copies the engine's own row copies around the exchanges (packing, receive staging, the hierarchical
 *             stages; src/dist/ep_exchange.c) as element-wise copies (ep_copy_time);
 *   collectives the simulator's alpha-beta formulas (src/sim/cost_comm.c) with bench's fitted figures;
 *             with more ranks than cores, + oversub_wait per collective (bench: two runnable ranks per core).
 * Several ranks on one host share its cores: a rank that needs `threads` cores gets
 * share = min(1, cores / (ranks x threads)) of them, so every compute and element-wise time is divided by
 * share (ranks time-slice the cores; the bench measured one rank per core).
 * Does not: model an L3 level or whether a tensor is still in cache from the kernel before (one call's
 * bytes against the L2 size decide), more than two runnable ranks per core, load from other users of the machine,
 * offload, or the first step's one-off costs (buffer growth, page faults): the validation skips warm-up. */
#include <math.h>
#include <string.h>
#include "umoe/sim.h"
#include "umoe/sim_engine.h"

/* Backward/forward time ratio of the attention core (FlashAttention-2 sec. 3; as src/sim/cost_layer.c). */
#define ENGINE_ATTN_BWD_RATIO 2.5
/* Bytes per element the engine's element-wise kernels move (reads + writes, fp32), as `umoe bench` counts
 * them (docs/bench.md, mem_eff): rmsnorm 8, swiglu 12 (2 in, 1 out), adamw 28; a residual add 12, a row
 * copy (permutation, RoPE output, embedding lookup) 8, softmax / cross-entropy 12. */
#define EW_NORM 8.0
#define EW_SWIGLU 12.0
#define EW_ADD 12.0
#define EW_COPY 8.0
#define EW_SOFTMAX 12.0
#define EW_ADAMW 28.0
#define EW_ZERO 4.0      /* zeroing the gradients: write */
#define EW_NORM_READ 4.0 /* the global gradient norm: read */
#define EW_MEAN 8.0      /* ranks > 1: scaling the summed gradients by 1 / ranks (train_ep.c scale_grads) */

typedef struct {
    const spec_hardware *h;
    double share, peak, bw;
    double slow;                /* compute time of the cores the run's ranks use / the spec's (rank_time_*) */
    double cache_bw, cache_bytes; /* element-wise rate on cache-resident arrays and the L2 size (0: none) */
    double fwd, bwd;            /* accumulated per step, seconds */
    double gemm, attn, ew;      /* fwd + bwd, by kind */
    double rc;                  /* recompute: forward time of the modules the policy frees */
} acc;

static double gemm_t(const acc *a, double n, double k, double o) {
    if (n <= 0 || k <= 0 || o <= 0) return 0;
    double flops = 2 * n * k * o;
    return flops * a->slow / (a->peak * sim_gemm_eff(a->h, flops) * a->share);
}
/* one forward GEMM (n, k) @ (k, o), count calls; rc: its forward is redone in backward */
static void gemm(acc *a, double n, double k, double o, double calls, int rc) {
    double t = calls * gemm_t(a, n, k, o);
    a->fwd += t;
    a->bwd += 2 * t;
    a->gemm += 3 * t;
    if (rc) a->rc += t;
}
static void ew(acc *a, double bytes, int rc) {
    double rate = a->cache_bw > 0 && bytes <= a->cache_bytes ? a->cache_bw : a->bw;
    double t = bytes * a->slow / (rate * a->share);
    a->fwd += t;
    a->bwd += 2 * t;
    a->ew += 3 * t;
    if (rc) a->rc += t;
}

/* seconds of one element-wise pass over `bytes` (no forward/backward split: a copy made once) */
static double ew_once(const acc *a, double bytes) {
    double rate = a->cache_bw > 0 && bytes <= a->cache_bytes ? a->cache_bw : a->bw;
    return bytes * a->slow / (rate * a->share);
}

/* The engine's own row copies around one MoE slot's four exchanges (src/dist/ep_exchange.c; the MPI library's
 * copies are in the measured all-to-all figures): per exchange, the receive side reorders the rows between
 * the source-major staging and the receive layout when the rank holds more than one expert (dispatch:
 * stage_to_recv, combine: recv_to_stage), and the send side packs rows by destination (gather_rows /
 * scatter_rows) unless the packed order is the expert order already (pack_identity: experts in blocks, i.e.
 * no placement). The hierarchical forward dispatch instead gathers one row per token and destination node
 * (stage A), expands them into token-assignment rows on the proxy (stage B) and moves them into the receive
 * layout (hb_to_recv). n_send: this rank's token-assignments, n_recv: its experts' rows, tok_rows: the rows
 * stage A sends (tokens x nodes touched). Each copy reads and writes a row of C floats: EW_COPY per element. */
static double ep_copy_time(const acc *a, double C, double n_send, double n_recv, double tok_rows, int multi_local,
                           int identity, int hier) {
    double t = 0;
    for (int x = 0; x < 4; x++) {
        if (x == 0 && hier) { /* forward dispatch, hierarchical: stage A gather, stage B expansion, receive layout */
            t += ew_once(a, EW_COPY * tok_rows * C) + 2 * ew_once(a, EW_COPY * n_recv * C);
            continue;
        }
        if (multi_local) t += ew_once(a, EW_COPY * n_recv * C); /* receive staging <-> receive layout */
        if (!identity) t += ew_once(a, EW_COPY * n_send * C);   /* packing by destination */
    }
    return t;
}

/* One transformer layer's operators on N local tokens (B sequences of T). rows: routed token-assignments the
 * slowest rank's local experts process; e_local: its experts. */
static void layer_ops(acc *a, const spec_model *s, unsigned rc, double B, double T, int moe, double rows,
                      double e_local) {
    double N = B * T, C = s->C, H = s->H;
    int full = (rc & SPEC_RC_FULL) != 0;
    int r_norm = full || (rc & SPEC_RC_NORM), r_up = full || (rc & SPEC_RC_MLA_UP);
    int r_core = full || (rc & SPEC_RC_ATTN_CORE), r_act = full || (rc & SPEC_RC_ACT);
    int r_fc1 = full || (rc & SPEC_RC_EXPERT_FC1), r_perm = full || (rc & SPEC_RC_PERMUTE);
    int sandwich = s->norm == SPEC_NORM_SANDWICH;
    double Dk, Dv, Hk;
    ew(a, EW_NORM * N * C, r_norm);
    if (s->attn == SPEC_ATTN_MLA) {
        Dk = s->qk_nope + s->qk_rope;
        Dv = s->v_head;
        Hk = H;
        if (s->q_lora > 0) {
            gemm(a, N, C, s->q_lora, 1, full);
            ew(a, EW_NORM * N * s->q_lora, r_norm);
            gemm(a, N, s->q_lora, H * Dk, 1, r_up);
        } else {
            gemm(a, N, C, H * Dk, 1, r_up);
        }
        gemm(a, N, C, s->kv_lora + s->qk_rope, 1, full);
        ew(a, EW_NORM * N * s->kv_lora, r_norm);
        gemm(a, N, s->kv_lora, H * (s->qk_nope + s->v_head), 1, r_up);
        ew(a, EW_COPY * N * (H * Dk + H * Dk + H * Dv), r_up); /* RoPE and the k/v split into q, k, v */
    } else {
        Dk = Dv = s->head_dim;
        Hk = s->attn == SPEC_ATTN_MHA ? H : s->H_kv;
        gemm(a, N, C, H * Dk, 1, full);
        gemm(a, N, C, Hk * Dk, 1, full);
        gemm(a, N, C, Hk * Dv, 1, full);
        ew(a, EW_COPY * N * (H * Dk + Hk * Dk), full); /* RoPE */
    }
    /* attention core: causal half of 2 B T^2 H (Dk + Dv) at the efficiency the bench measured at this sequence
     * length, backward at its measured ratio (attn_eff_seq; without the table attn_eff and 2.5) */
    double eff, ratio;
    spec_attn_at(a->h, T, ENGINE_ATTN_BWD_RATIO, &eff, &ratio);
    double core = 0.5 * 2 * B * T * T * H * (Dk + Dv) * a->slow / (a->peak * (eff > 0 ? eff : 0.5) * a->share);
    a->fwd += core;
    a->bwd += ratio * core;
    a->attn += (1 + ratio) * core;
    if (r_core) a->rc += core;
    gemm(a, N, H * Dv, C, 1, full);
    if (sandwich) ew(a, EW_NORM * N * C, full);
    ew(a, EW_ADD * N * C, 0);
    /* FFN */
    ew(a, EW_NORM * N * C, r_norm);
    if (!moe) {
        gemm(a, N, C, 2.0 * s->F, 1, full);
        ew(a, EW_SWIGLU * N * s->F, r_act);
        gemm(a, N, s->F, C, 1, full);
    } else {
        double E = s->E, K = s->K, Fe = s->F_expert;
        gemm(a, N, C, E, 1, full);                        /* router */
        ew(a, EW_SOFTMAX * N * E, full);                  /* scores, top-k */
        ew(a, EW_COPY * N * K * C, r_perm);               /* permute into expert order */
        double per = e_local > 0 ? rows / e_local : 0;    /* rows per local expert: one sgemm each */
        gemm(a, per, C, 2 * Fe, e_local, r_fc1);
        ew(a, EW_SWIGLU * rows * Fe, r_act || r_fc1);
        gemm(a, per, Fe, C, e_local, full);
        ew(a, EW_ADD * N * K * C, full);                  /* weighted un-permute (combine) */
        if (s->E_shared > 0) {
            double Fs = (double)s->E_shared * Fe;
            gemm(a, N, C, 2 * Fs, 1, full);
            ew(a, EW_SWIGLU * N * Fs, r_act);
            gemm(a, N, Fs, C, 1, full);
            ew(a, EW_ADD * N * C, 0);
        }
    }
    if (sandwich) ew(a, EW_NORM * N * C, full);
    ew(a, EW_ADD * N * C, 0);
}

static int engine_layer_is_moe(const spec_model *s, int l) { return s->E > 0 && l >= s->first_k_dense; }

umoe_status sim_engine_run(const spec_model *s, const spec_hardware *h, const sim_engine_config *c,
                           sim_engine_result *r) {
    memset(r, 0, sizeof *r);
    int R = c->ranks > 0 ? c->ranks : 1, ep = c->ep > 0 ? c->ep : 1;
    if (R % ep) return umoe_fail("engine config: ranks %d is not a multiple of ep %d", R, ep);
    if (c->batch % R) return umoe_fail("engine config: batch %d is not a multiple of ranks %d", c->batch, R);
    if (s->E > 0 && s->E % ep) return umoe_fail("engine config: experts %d do not divide over ep %d", s->E, ep);
    sim_engine_memory(s, c, r);
    r->rss = r->alloc_peak + h->mem_reserved;
    double threads = c->threads > 0 ? c->threads : 1, cores = c->cores > 0 ? c->cores : 1;
    acc a;
    memset(&a, 0, sizeof a);
    a.h = h;
    a.share = fmin(1.0, cores / (R * threads));
    a.peak = h->peak_fp32 > 0 ? h->peak_fp32 : h->peak_bf16;
    a.bw = h->hbm_bw * (h->mem_eff > 0 ? h->mem_eff : 1.0);
    if (h->cache_bw > 0 && h->cache_bytes > 0) {
        a.cache_bw = h->cache_bw;
        a.cache_bytes = h->cache_bytes;
    }
    if (!(a.peak > 0) || !(a.bw > 0)) return umoe_fail("hardware %s: peak_fp32 and hbm_bw must be > 0", h->name);
    r->share = a.share;
    /* a single process runs on any one of the host's cores (the mean over the bench's ranks); ranks that
     * exchange every layer wait for the slowest core (the max) */
    double tm = R > 1 ? h->rank_time_max : h->rank_time_mean;
    a.slow = tm > 0 ? tm : 1.0;
    r->slow = a.slow;
    double B = (double)c->batch / R, T = c->T, N = B * T, C = s->C, V = s->V;
    double imb = c->imbalance >= 1 ? c->imbalance : 1;
    double e_local = s->E > 0 ? (double)s->E / ep : 0;
    double rows = N * (s->E > 0 ? s->K : 0) * imb; /* slowest rank: its experts' token-assignments */
    int n_moe = 0;
    ew(&a, EW_COPY * N * C, 0); /* embedding lookup */
    for (int l = 0; l < s->L + s->mtp; l++) {
        int moe = engine_layer_is_moe(s, l);
        n_moe += moe;
        if (l >= s->L) { /* MTP module d: embedding, two norms, concat, projection (DeepSeek-V3 sec. 2.2) */
            ew(&a, EW_COPY * N * C + 2 * EW_NORM * N * C + EW_COPY * 2 * N * C, 0);
            gemm(&a, N, 2 * C, C, 1, 0);
        }
        layer_ops(&a, s, c->recompute, B, T, moe, rows, e_local);
        if (l >= s->L) { /* its norm, the shared head and loss */
            ew(&a, EW_NORM * N * C, 0);
            gemm(&a, N, C, V, 1, 0);
            ew(&a, EW_SOFTMAX * N * V, 0);
        }
    }
    ew(&a, EW_NORM * N * C, 0); /* final norm, LM head, cross-entropy */
    gemm(&a, N, C, V, 1, 0);
    ew(&a, EW_SOFTMAX * N * V, 0);
    /* optimizer step: zero grads (write 4 B: a memset under EP, the fused AdamW pass's write of 0 in one
     * process), global norm (read 4 B), AdamW over the parameters this rank updates (dense + owned experts;
     * docs/dist.md: experts owned elsewhere get no grads and no update) with the clip's scale applied as it
     * reads each gradient (src/train/optimizer.c, adamw_update_many: no separate scaling pass) */
    spec_params p;
    spec_params_count(s, &p);
    double P = r->params / 4;                      /* this rank's: dense + experts / ep (expert sharding) */
    double P_exp = (double)n_moe * s->E * p.expert; /* routed experts of the whole model */
    double P_owned = P;                            /* a rank updates exactly what it stores (docs/dist.md) */
    double dense = P - P_exp / ep;                 /* replicated on every rank: all-reduced over all ranks */
    double opt_bw = h->adamw_bw > 0 ? h->adamw_bw : a.bw; /* bench: adamw_update's own rate (it is the slowest of
                                                           * the element-wise kernels: 7 streams, sqrt, divide) */
    double t_opt = ((EW_ZERO + EW_NORM_READ + (R > 1 ? EW_MEAN : 0)) * P / a.bw + EW_ADAMW * P_owned / opt_bw) *
                   a.slow / a.share;
    /* communication (ranks > 1): EP exchanges per MoE layer, gradient all-reduce, per-step scalars */
    double t_ep = 0, t_sync = 0, t_wait = 0, t_copy = 0;
    if (R > 1) {
        int rpn = c->ranks_per_node > 0 ? c->ranks_per_node : R;
        int k_ep = rpn < ep ? rpn : ep, k_w = rpn < R ? rpn : R;
        if (ep > 1 && s->E > 0) {
            double asg = 4 * N * s->K * C, tok = 4 * N * C;   /* bytes one rank sends: rows, and its tokens */
            double disp = c->hierarchical && k_ep < ep ? sim_alltoall_hier_time(h, ep, k_ep, tok, asg)
                                                      : sim_alltoall_time(h, ep, k_ep, asg * imb);
            double flat = sim_alltoall_time(h, ep, k_ep, asg * imb);
            double meta = 2 * sim_alltoall_time(h, ep, k_ep, 4.0 * s->E);  /* plan: counts, row tokens */
            t_ep = n_moe * (disp + 3 * flat + meta);
            /* stage A sends each token once per node that holds one of its experts: E[nodes touched] as
             * src/sim/cost_engine_mem.c (uniform top-K over experts in node blocks) */
            int hier = c->hierarchical && k_ep < ep;
            double tok_rows = 0;
            if (hier) {
                double nodes = (double)ep / k_ep;
                tok_rows = N * sim_engine_nodes_touched(s, nodes);
            }
            t_copy = n_moe * ep_copy_time(&a, C, N * s->K, rows, tok_rows, e_local > 1, c->placement <= 0, hier);
        }
        t_sync = sim_allreduce_time(h, R, k_w, 4 * dense);
        if (R / ep > 1) t_sync += sim_allreduce_time(h, R / ep, 1, 4 * P_exp / ep);
        t_sync += 7 * sim_allreduce_time(h, R, k_w, 64); /* losses, grad norm, loads, stats, stop flag */
        /* more runnable ranks than cores: each collective waits until the scheduler runs every participant
         * (bench: oversub_wait, measured with two runnable ranks per core). The engine's collectives per step
         * (src/dist/ep_plan.c, ep_exchange.c, src/train/train_ep.c): per MoE slot the plan's count exchange (1
         * flat; 3 hierarchical), dispatch, combine and their two backward exchanges (one all-to-all each, two
         * stages each when hierarchical) and the 2 load statistics; per step the gradient all-reduce and 7
         * scalars. */
        if (R * threads > cores && h->oversub_wait > 0 && ep > 1 && s->E > 0) {
            int hier = c->hierarchical && k_ep < ep;
            double per_slot = (hier ? 3 : 1) + (hier ? 8 : 4) + 2;
            t_wait = (n_moe * per_slot + 8) * h->oversub_wait;
        } else if (R * threads > cores && h->oversub_wait > 0) {
            t_wait = 8 * h->oversub_wait;
        }
    }
    r->gemm_s = a.gemm;
    r->attn_s = a.attn;
    r->elementwise_s = a.ew;
    r->recompute_s = a.rc;
    r->optimizer_s = t_opt;
    r->ep_s = t_ep;
    r->sync_s = t_sync;
    r->oversub_s = t_wait;
    r->ep_copy_s = t_copy;
    r->step_s = a.fwd + a.bwd + a.rc + t_opt + t_ep + t_copy + t_sync + t_wait;
    return UMOE_OK;
}
