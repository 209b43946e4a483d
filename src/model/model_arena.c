/* model_arena.c - the activation arena: ONE allocation holding every saved forward activation (per layer,
 * per MTP depth), the logits and losses, and the gradient scratch that backward reuses for every layer.
 * Built in two passes of the same carving code: the first only measures, the second hands out views.
 * Four regions (docs/engine-memory.md; model_memory reports each):
 *   resident  per-layer activations that backward reads and the policy keeps;
 *   other     everything not per layer: the gradient scratch of one layer, MTP tensors, embeddings, logits;
 *   shared    ONE layer's worth of the buffers the recompute policy frees (and of the transient buffers that
 *             backward never reads): every layer's views of them alias the same bytes, forward overwrites
 *             them layer after layer and backward rebuilds them (model_recompute.c) just before use;
 *   slots     with offload, two working slots: layer l's kept activations live in slot l % 2 while it runs
 *             and are moved to the offload pool in between (model_offload.c).
 * Which buffer goes where follows the SPEC_RC_* module list of spec.h, the same one the simulator uses.
 * Does not: compute anything (model_layer.c and friends do), move bytes (model_offload.c). */
#include <string.h>
#include "model_internal.h"

typedef struct { char *base; size_t used, disp; } carver;

/* 64-byte aligned views; with base == NULL only measures. dispatch: count the bytes as MoE dispatch buffers */
static void *take(carver *c, size_t bytes, int dispatch) {
    size_t off = (c->used + 63) & ~(size_t)63;
    c->used = off + bytes;
    if (dispatch) c->disp += bytes;
    return c->base ? (void *)(c->base + off) : NULL;
}

/* Where the buffers of one layer go. saved = 0: the gradient scratch (always resident). */
typedef struct {
    carver *res, *sh, *slot; /* slot NULL: no offload */
    unsigned rc;
    int saved;
} placer;

/* freed: the policy (or its transience) drops it after forward; pinned: stays resident even under full
 * recompute and offload (the next layer's input, the router's top-k that model_router_topk returns) */
static carver *pick(const placer *p, int freed, int pinned) {
    if (!p->saved) return p->res;
    if (pinned) return p->res;
    if (freed || (p->rc & SPEC_RC_FULL)) return p->sh;
    return p->slot ? p->slot : p->res;
}
static float *tf(const placer *p, int freed, size_t n) { return take(pick(p, freed, 0), n * sizeof(float), 0); }
static float *tfd(const placer *p, int freed, size_t n) { return take(pick(p, freed, 0), n * sizeof(float), 1); }
static int32_t *tid(const placer *p, int freed, size_t n) { return take(pick(p, freed, 0), n * sizeof(int32_t), 1); }

/* Fw: the width of the FFN's gu/act (dense F, or the shared experts' S F_e; the gradient scratch takes the
 * larger). The gradient scratch's attention-branch and FFN-branch buffers overlap: layer backward finishes
 * the FFN branch (down to d(n2) -> d(mid)) before the attention branch starts. */
static void carve_layer(const placer *p, const umoe_model *m, int moe, size_t Fw, layer_act *a) {
    const model_dims *d = &m->d;
    size_t N = (size_t)m->N, C = (size_t)d->C, NK = N * (size_t)d->K;
    unsigned rc = p->rc;
    int saved = p->saved, norm = (rc & SPEC_RC_NORM) != 0, up = (rc & SPEC_RC_MLA_UP) != 0;
    int core = (rc & SPEC_RC_ATTN_CORE) != 0, act = (rc & SPEC_RC_ACT) != 0;
    int fc1 = (rc & SPEC_RC_EXPERT_FC1) != 0, perm = (rc & SPEC_RC_PERMUTE) != 0;
    memset(a, 0, sizeof *a);
    size_t phase0 = p->res->used, attn_end = 0;
    a->n1 = tf(p, norm, N * C);
    if (saved) a->rstd1 = tf(p, 0, N);
    if (d->mla) {
        if (d->q_lora > 0) {
            a->qa = tf(p, 0, N * (size_t)d->q_lora);
            a->qa_n = tf(p, norm, N * (size_t)d->q_lora);
            if (saved) a->qa_rstd = tf(p, 0, N);
        }
        /* after RoPE; backward reads only its k_rope part, and only to rebuild k under mla_up */
        a->kva = tf(p, !up, N * (size_t)(d->kv_lora + d->rope));
        a->kv_lat = tf(p, 0, N * (size_t)d->kv_lora);
        a->kv_n = tf(p, norm, N * (size_t)d->kv_lora);
        if (saved) a->kv_rstd = tf(p, 0, N);
        a->kvb = tf(p, 1, N * (size_t)d->H * (size_t)(d->nope + d->vd)); /* k and v hold copies: transient */
        if (!saved) a->dkva_post = tf(p, 0, N * (size_t)(d->kv_lora + d->rope));
    }
    a->q = tf(p, d->mla && up, N * (size_t)d->qdim);
    a->k = tf(p, d->mla && up, N * (size_t)d->kdim);
    a->v = tf(p, d->mla && up, N * (size_t)d->vdim);
    if (!saved) {
        a->dq_pre = tf(p, 0, N * (size_t)d->qdim);
        a->dk_pre = tf(p, 0, N * (size_t)d->kdim);
    }
    a->att = tf(p, core, N * (size_t)d->H * (size_t)d->Dv);
    if (saved) a->lse = tf(p, core, N * (size_t)d->H);
    a->ao = tf(p, !d->sandwich, N * C); /* read by backward only as the sandwich post-norm's input */
    if (d->sandwich) {
        a->ap = tf(p, 1, N * C);         /* post-norm output: only added to the residual */
        if (saved) a->ap_rstd = tf(p, 0, N);
    }
    if (saved) {
        a->mid = tf(p, 0, N * C);
    } else { /* FFN-branch gradients reuse the attention branch's bytes */
        attn_end = p->res->used;
        p->res->used = phase0;
    }
    a->n2 = tf(p, norm, N * C);
    if (saved) a->rstd2 = tf(p, 0, N);
    if (Fw > 0) {
        a->gu = tf(p, 0, N * 2 * Fw);
        a->act = tf(p, act, N * Fw);
    }
    a->fo = tf(p, !d->sandwich, N * C);
    if (d->sandwich) {
        a->fp = tf(p, 1, N * C);
        if (saved) a->fp_rstd = tf(p, 0, N);
    }
    if (saved) a->out = take(pick(p, 0, 1), N * C * sizeof(float), 0);
    if (moe) {
        size_t E = (size_t)d->E, K = (size_t)d->K, Fe = (size_t)d->Fe;
        a->rlogits = tf(p, 0, N * E);
        a->scores = tf(p, 0, N * E);
        a->w = take(pick(p, 0, 1), N * K * sizeof(float), 1);
        if (saved) {
            a->idx = take(pick(p, 0, 1), N * K * sizeof(int32_t), 1);
            a->counts = tid(p, 0, E);
            a->offsets = tid(p, 0, E + 1);
            a->order = tid(p, 0, NK);
        } else {
            a->dscores = tf(p, 0, N * E);
        }
        a->rows = tfd(p, perm, NK * C);
        a->egu = tf(p, fc1, NK * 2 * Fe);
        a->eact = tf(p, fc1 || act, NK * Fe);
        a->eout = tfd(p, 0, NK * C);
    }
    if (!saved && p->res->used < attn_end) p->res->used = attn_end;
}

typedef struct {
    carver res, sh, slot[2];
    size_t sh_max, slot_max, sh_disp, slot_disp, res_layers;
} carving;

static void carve_all(carving *k, umoe_model *m) {
    const spec_model *s = &m->s;
    size_t N = (size_t)m->N, C = (size_t)s->C, V = (size_t)s->V;
    int any_moe = 0, any_dense = 0;
    placer p = {&k->res, &k->sh, NULL, m->rc, 1};
    for (int l = 0; l < m->n_layers; l++) {
        k->sh.used = k->sh.disp = 0;
        carver *slot = m->off ? &k->slot[l % 2] : NULL;
        if (slot) slot->used = slot->disp = 0;
        p.slot = slot;
        size_t Fw = m->lw[l].moe ? (size_t)m->d.S * (size_t)m->d.Fe : (size_t)m->d.F;
        carve_layer(&p, m, m->lw[l].moe, Fw, &m->la[l]);
        any_dense |= !m->lw[l].moe;
        any_moe |= m->lw[l].moe;
        if (k->sh.used > k->sh_max) k->sh_max = k->sh.used;
        if (k->sh.disp > k->sh_disp) k->sh_disp = k->sh.disp;
        if (slot) {
            m->slot_bytes[l] = slot->used;
            if (slot->used > k->slot_max) k->slot_max = slot->used;
            if (slot->disp > k->slot_disp) k->slot_disp = slot->disp;
        }
    }
    k->res_layers = k->res.used;
    /* one gradient scratch serves every layer: the richer (MoE) shape when any layer has it, with the wider
     * of the dense and shared-expert FFN widths */
    p.saved = 0;
    size_t Fs = any_moe ? (size_t)m->d.S * (size_t)m->d.Fe : 0, Fd = any_dense ? (size_t)m->d.F : 0;
    carve_layer(&p, m, any_moe, Fs > Fd ? Fs : Fd, &m->ga);
    carver *c = &k->res;
    for (int d = 0; d < s->mtp; d++) {
        mtp_act *a = &m->ma[d];
        a->emb = take(c, N * C * sizeof(float), 0);
        a->en = take(c, N * C * sizeof(float), 0);
        a->en_rstd = take(c, N * sizeof(float), 0);
        a->hn = take(c, N * C * sizeof(float), 0);
        a->hn_rstd = take(c, N * sizeof(float), 0);
        a->cat = take(c, N * 2 * C * sizeof(float), 0);
        a->x = take(c, N * C * sizeof(float), 0);
        a->fn = take(c, N * C * sizeof(float), 0);
        a->fn_rstd = take(c, N * sizeof(float), 0);
        a->logits = take(c, N * V * sizeof(float), 0);
        a->losses = take(c, N * sizeof(float), 0);
        a->targets = take(c, N * sizeof(int32_t), 0);
        a->inputs = take(c, N * sizeof(int32_t), 0);
    }
#define F32(n) take(c, (n) * sizeof(float), 0)
    m->emb0 = F32(N * C);
    m->fn = F32(N * C);
    m->fn_rstd = F32(N);
    m->logits = F32(N * V);
    m->losses = F32(N);
    m->inputs = take(c, N * sizeof(int32_t), 0);
    m->targets = take(c, N * sizeof(int32_t), 0);
    m->dres = F32(N * C);
    m->dres2 = F32(N * C);
    m->dtmp = F32(N * C);
    m->dcat = F32(N * 2 * C);
    m->dlogits = F32(N * V);
    m->dloss = F32(N);
    m->rc_rstd = F32(N);
#undef F32
}

static size_t up64(size_t x) { return (x + 63) & ~(size_t)63; }

void model_arena_build(umoe_model *m) {
    m->la = umoe_calloc((size_t)m->n_layers, sizeof *m->la, "model layer activations table");
    m->ma = umoe_calloc((size_t)(m->s.mtp > 0 ? m->s.mtp : 1), sizeof *m->ma, "model MTP activations table");
    m->slot_bytes = umoe_calloc((size_t)m->n_layers, sizeof *m->slot_bytes, "model offload block sizes");
    carving k;
    memset(&k, 0, sizeof k);
    carve_all(&k, m);
    size_t res = up64(k.res.used), sh = up64(k.sh_max), slot = m->off ? up64(k.slot_max) : 0;
    m->arena_bytes = res + sh + 2 * slot + 64;
    m->arena_resident = k.res_layers;
    m->arena_other = k.res.used - k.res_layers;
    m->arena_shared = sh;
    m->arena_slots = 2 * slot;
    m->arena_dispatch = k.res.disp + k.sh_disp + 2 * k.slot_disp;
    m->arena = umoe_calloc(1, m->arena_bytes, "model activation arena");
    char *base = (char *)(((uintptr_t)m->arena + 63) & ~(uintptr_t)63);
    memset(&k, 0, sizeof k);
    k.res.base = base;
    k.sh.base = base + res;
    k.slot[0].base = base + res + sh;
    k.slot[1].base = base + res + sh + slot;
    carve_all(&k, m);
}

char *model_arena_slot(const umoe_model *m, int s) {
    /* layout: [resident + other][shared][slot 0][slot 1], each part 64-byte aligned (model_arena_build) */
    char *base = (char *)(((uintptr_t)m->arena + 63) & ~(uintptr_t)63);
    return base + up64(m->arena_resident + m->arena_other) + m->arena_shared + (size_t)s * (m->arena_slots / 2);
}

void model_arena_free(umoe_model *m) {
    umoe_free(m->arena, m->arena_bytes);
    umoe_free(m->la, (size_t)m->n_layers * sizeof *m->la);
    umoe_free(m->ma, (size_t)(m->s.mtp > 0 ? m->s.mtp : 1) * sizeof *m->ma);
    umoe_free(m->slot_bytes, (size_t)m->n_layers * sizeof *m->slot_bytes);
    m->arena = NULL;
    m->la = NULL;
    m->ma = NULL;
    m->slot_bytes = NULL;
}
