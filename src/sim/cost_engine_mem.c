/* cost_engine_mem.c - memory of one rank of OUR engine (`umoe train`): fp32 parameters, gradients and AdamW
 * m + v (16 bytes per parameter; with --ep E a rank stores the dense part and experts / E of each MoE layer,
 * docs/dist.md "Expert sharding"; the transient full copy at a checkpoint save / resume is not modelled), the
 * activation arena laid out as docs/engine-memory.md sec. 1 describes (resident region summed over layers,
 * shared region = one layer's freed buffers, fixed "other" part: gradient scratch, MTP, logits), the EP
 * per-slot buffers outside the arena (docs/dist.md), and the host tables (data file, loader permutation).
 * The buffer list is restated from the engine's documented layout, never read from the engine.
 * Does not: offload slots (the validation set runs without --offload; they would add 2 x one layer's kept
 * buffers), the runtime's own resident memory (that is the hardware spec's mem_reserved). */
#include <string.h>
#include "umoe/sim_engine.h"

/* Nodes one token's top-K experts land on, expected, with the E experts in `nodes` equal blocks and the
 * K experts uniform without repetition: nodes (1 - C(E - E/nodes, K) / C(E, K)). */
double sim_engine_nodes_touched(const spec_model *s, double nodes) {
    double miss = 1, Eo = (double)s->E - s->E / nodes;
    for (int k = 0; k < s->K; k++) miss *= (Eo - k) / ((double)s->E - k);
    return nodes * (1 - miss);
}

typedef struct { double used; } mcarver;
static void take(mcarver *c, double bytes) {
    c->used = (double)(((size_t)c->used + 63) & ~(size_t)63) + bytes; /* 64-byte aligned views */
}
static double up64(double x) { return (double)(((size_t)x + 63) & ~(size_t)63); }

typedef struct {
    int mla, q_lora, kv_lora, nope, rope, vd, H, Hk, Dk, Dv, qdim, kdim, vdim, C, E, K, Fe, S, F, sandwich;
} edims;

static void dims_of(const spec_model *s, edims *d) {
    memset(d, 0, sizeof *d);
    d->H = s->H;
    d->C = s->C;
    if (s->attn == SPEC_ATTN_MLA) {
        d->mla = 1;
        d->q_lora = s->q_lora;
        d->kv_lora = s->kv_lora;
        d->nope = s->qk_nope;
        d->rope = s->qk_rope;
        d->vd = s->v_head;
        d->Hk = s->H;
        d->Dk = s->qk_nope + s->qk_rope;
        d->Dv = s->v_head;
    } else {
        d->Hk = s->attn == SPEC_ATTN_MHA ? s->H : s->H_kv;
        d->Dk = d->Dv = s->head_dim;
    }
    d->qdim = d->H * d->Dk;
    d->kdim = d->Hk * d->Dk;
    d->vdim = d->Hk * d->Dv;
    d->F = s->F;
    d->Fe = s->F_expert;
    d->E = s->E;
    d->K = s->E > 0 ? s->K : 0;
    d->S = s->E > 0 ? s->E_shared : 0;
    d->sandwich = s->norm == SPEC_NORM_SANDWICH;
}

/* Where one buffer of a layer goes (docs/engine-memory.md table of regions): freed by the policy (or
 * transient) -> shared; pinned -> resident; otherwise resident unless full recompute. saved = 0: the
 * gradient scratch, always resident. */
typedef struct { mcarver *res, *sh; unsigned rc; int saved; } mplacer;
static mcarver *pick(const mplacer *p, int freed, int pinned) {
    if (!p->saved || pinned) return p->res;
    if (freed || (p->rc & SPEC_RC_FULL)) return p->sh;
    return p->res;
}
static void tf(const mplacer *p, int freed, double n) { take(pick(p, freed, 0), 4 * n); }

/* One layer's activation buffers (forward), or the gradient scratch (saved = 0). Fw: width of the FFN's
 * gate/up (dense F, or the shared experts' S x Fe). */
static void layer_bytes(const mplacer *p, const edims *d, double N, int moe, double Fw) {
    double C = d->C, NK = N * d->K;
    unsigned rc = p->rc;
    int saved = p->saved, norm = (rc & SPEC_RC_NORM) != 0, up = (rc & SPEC_RC_MLA_UP) != 0;
    int core = (rc & SPEC_RC_ATTN_CORE) != 0, act = (rc & SPEC_RC_ACT) != 0;
    int fc1 = (rc & SPEC_RC_EXPERT_FC1) != 0, perm = (rc & SPEC_RC_PERMUTE) != 0;
    double phase0 = p->res->used, attn_end = 0;
    tf(p, norm, N * C);                                   /* attention input norm */
    if (saved) tf(p, 0, N);
    if (d->mla) {
        if (d->q_lora > 0) {
            tf(p, 0, N * d->q_lora);                      /* q latent, its norm and rstd */
            tf(p, norm, N * d->q_lora);
            if (saved) tf(p, 0, N);
        }
        tf(p, !up, N * (d->kv_lora + d->rope));          /* kv_a output after RoPE */
        tf(p, 0, N * d->kv_lora);                          /* kv latent, its norm and rstd */
        tf(p, norm, N * d->kv_lora);
        if (saved) tf(p, 0, N);
        tf(p, 1, N * d->H * (double)(d->nope + d->vd));   /* kv_b output: transient */
        if (!saved) tf(p, 0, N * (d->kv_lora + d->rope));
    }
    tf(p, d->mla && up, N * d->qdim);                      /* q, k, v */
    tf(p, d->mla && up, N * d->kdim);
    tf(p, d->mla && up, N * d->vdim);
    if (!saved) {
        tf(p, 0, N * d->qdim);
        tf(p, 0, N * d->kdim);
    }
    tf(p, core, N * d->H * (double)d->Dv);                 /* attention output and log-sum-exp */
    if (saved) tf(p, core, N * d->H);
    tf(p, !d->sandwich, N * C);                            /* o projection output */
    if (d->sandwich) {
        tf(p, 1, N * C);
        if (saved) tf(p, 0, N);
    }
    if (saved) {
        tf(p, 0, N * C);                                   /* residual after attention */
    } else {                                               /* FFN-branch grads reuse the attention's bytes */
        attn_end = p->res->used;
        p->res->used = phase0;
    }
    tf(p, norm, N * C);                                    /* FFN input norm */
    if (saved) tf(p, 0, N);
    if (Fw > 0) {
        tf(p, 0, N * 2 * Fw);                              /* gate|up and the activation */
        tf(p, act, N * Fw);
    }
    tf(p, !d->sandwich, N * C);                            /* FFN output */
    if (d->sandwich) {
        tf(p, 1, N * C);
        if (saved) tf(p, 0, N);
    }
    if (saved) take(pick(p, 0, 1), 4 * N * C);             /* layer output: pinned */
    if (moe) {
        double E = d->E, Fe = d->Fe;
        tf(p, 0, N * E);                                   /* router logits, scores */
        tf(p, 0, N * E);
        take(pick(p, 0, 1), 4 * N * d->K);                 /* top-k weights: pinned */
        if (saved) {
            take(pick(p, 0, 1), 4 * N * d->K);             /* top-k ids, counts, offsets, order */
            tf(p, 0, E);
            tf(p, 0, E + 1);
            tf(p, 0, NK);
        } else {
            tf(p, 0, N * E);
        }
        tf(p, perm, NK * C);                               /* permuted rows, expert gate|up, act, out */
        tf(p, fc1, NK * 2 * Fe);
        tf(p, fc1 || act, NK * Fe);
        tf(p, 0, NK * C);
    }
    if (!saved && p->res->used < attn_end) p->res->used = attn_end;
}

static int layer_is_moe(const spec_model *s, int l) { return s->E > 0 && l >= s->first_k_dense; }

/* The whole arena (docs/engine-memory.md sec. 1): resident + shared + 64 bytes of alignment slack. */
static void arena_bytes(const spec_model *s, double N, unsigned rc, sim_engine_result *r) {
    edims d;
    dims_of(s, &d);
    if (rc & SPEC_RC_FULL) rc = SPEC_RC_FULL;
    mcarver res = {0}, sh = {0};
    double sh_max = 0;
    int any_moe = 0, any_dense = 0, n_layers = s->L + s->mtp;
    mplacer p = {&res, &sh, rc, 1};
    for (int l = 0; l < n_layers; l++) {
        int moe = layer_is_moe(s, l);
        sh.used = 0;
        layer_bytes(&p, &d, N, moe, moe ? (double)d.S * d.Fe : d.F);
        any_moe |= moe;
        any_dense |= !moe;
        if (sh.used > sh_max) sh_max = sh.used;
    }
    double res_layers = res.used;
    p.saved = 0; /* one gradient scratch of the richer shape */
    double Fs = any_moe ? (double)d.S * d.Fe : 0, Fd = any_dense ? d.F : 0;
    layer_bytes(&p, &d, N, any_moe, Fs > Fd ? Fs : Fd);
    double C = s->C, V = s->V;
    for (int k = 0; k < s->mtp; k++) { /* MTP: emb, norms, concat, projection, final norm, logits, losses */
        take(&res, 4 * N * C); take(&res, 4 * N * C); take(&res, 4 * N); take(&res, 4 * N * C);
        take(&res, 4 * N); take(&res, 4 * N * 2 * C); take(&res, 4 * N * C); take(&res, 4 * N * C);
        take(&res, 4 * N); take(&res, 4 * N * V); take(&res, 4 * N); take(&res, 4 * N); take(&res, 4 * N);
    }
    /* embeddings, final norm, logits, losses, ids, residual grads, concat grad, dlogits */
    take(&res, 4 * N * C); take(&res, 4 * N * C); take(&res, 4 * N); take(&res, 4 * N * V); take(&res, 4 * N);
    take(&res, 4 * N); take(&res, 4 * N); take(&res, 4 * N * C); take(&res, 4 * N * C); take(&res, 4 * N * C);
    take(&res, 4 * N * 2 * C); take(&res, 4 * N * V); take(&res, 4 * N); take(&res, 4 * N);
    r->arena_resident = res_layers;
    r->arena_other = res.used - res_layers;
    r->arena_shared = up64(sh_max);
    r->arena = up64(res.used) + r->arena_shared + 64;
}

/* Total parameters the engine allocates: the model's plus its MTP modules' (the expert-score bias of
 * score_bias models lives outside the parameter block: it is moved by the balancing rule, not by AdamW). */
static double engine_params(const spec_model *s) {
    spec_params p;
    spec_params_count(s, &p);
    return p.total + p.mtp;
}

void sim_engine_memory(const spec_model *s, const sim_engine_config *c, sim_engine_result *r) {
    int R = c->ranks > 0 ? c->ranks : 1, ep = c->ep > 0 ? c->ep : 1;
    double Bl = (double)c->batch / R, N = Bl * c->T;
    double P = engine_params(s);
    if (ep > 1 && s->E > 0) { /* expert sharding (docs/dist.md): a rank holds experts / ep of each MoE layer */
        int n_moe_l = 0;
        for (int l = 0; l < s->L + s->mtp; l++) n_moe_l += layer_is_moe(s, l);
        double routed = (double)n_moe_l * s->E * 3.0 * s->F_expert * s->C;
        P -= routed - routed / ep;
    }
    r->params = 4 * P;
    r->grads = 4 * P;
    r->optimizer = 8 * P; /* AdamW m and v, fp32, for every parameter the rank stores */
    arena_bytes(s, N, c->recompute, r);
    /* EP (docs/dist.md, src/dist/ep_moe.c): per MoE slot, the received rows of the local experts (rows for a
     * balanced rank: N K token-assignments), their gate|up, activation and output, and in backward the grads
     * of each plus the rows sent back (N K C); the exchange's staging (packed send rows, the receive stage;
     * hierarchical: the token stage and the intra-node stage). Balanced routing is assumed for memory: the
     * engine grows these buffers to the high-water mark of the rows this rank received. */
    r->ep_buffers = 0;
    if (R > 1 && s->E > 0) {
        int n_moe = 0;
        for (int l = 0; l < s->L + s->mtp; l++) n_moe += layer_is_moe(s, l);
        int rpn = c->ranks_per_node > 0 && c->ranks_per_node < ep ? c->ranks_per_node : ep;
        double nodes = (double)ep / rpn, nl = (double)s->E / ep;
        double C = s->C, Fe = s->F_expert, NK = N * s->K;
        double n = NK * (c->recv_scale > 0 ? c->recv_scale : 1.0);
        /* per slot (src/dist/ep_moe.c): recv, gate|up, act, out; backward d_out, d_recv, d_gate|up, d_act; the
         * rows sent back (NK C); with hierarchical dispatch the token id of every sent row */
        double slot = n * (C + 2 * Fe + Fe + C) + n * (C + C + 2 * Fe + Fe) + NK * C;
        double ints = NK + NK;                               /* row pack map, plan scratch (int32) */
        if (nl > 1) slot += n * C;                           /* receive staging (several local experts) */
        if (c->placement > 0) slot += NK * C;                /* packed send rows when owners are not blocks */
        if (c->hierarchical && ep > 1) {
            /* stage A: each token once per destination node holding one of its experts; uniform top-K over
             * nodes of E / nodes experts: E[nodes touched] = nodes (1 - C(E - E/nodes, K) / C(E, K)) */
            double touched = sim_engine_nodes_touched(s, nodes);
            slot += 2 * N * touched * C;                     /* stage A send and receive */
            slot += n * C;                                   /* stage B send (rows for this node's ranks) */
            if (!(rpn == 1 && nl == 1)) slot += n * C;       /* stage B receive */
            ints += NK + 2 * n;                              /* token ids, expansion map */
        }
        r->ep_buffers = 4 * n_moe * (slot + ints);
    }
    /* host side: the data file read whole, the loader's permutation (8 bytes per training window), batch tokens */
    double windows = c->data_bytes / (c->T > 0 ? c->T : 1);
    r->host_other = c->data_bytes + 1 + 8 * windows + 4 * 2 * (double)c->batch * (c->T + 1 + s->mtp);
    r->alloc_peak = r->params + r->grads + r->optimizer + r->arena + r->ep_buffers + r->host_other;
    /* the engine builds the model with the default arena (no recompute) and rebuilds it with the policy
     * before the optimizer state exists (src/train: model_init, then model_set_recompute, then AdamW): with a
     * policy that shrinks the arena a lot, that first moment can be the peak */
    if (c->recompute) {
        sim_engine_result d;
        memset(&d, 0, sizeof d);
        arena_bytes(s, N, 0, &d);
        double first = r->params + r->grads + d.arena + r->host_other;
        r->init_peak = first;
        if (first > r->alloc_peak) r->alloc_peak = first;
    }
    r->rss = r->alloc_peak;
}
