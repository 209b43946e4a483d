/* model_arena.c - the activation arena: ONE allocation holding every saved forward activation (per layer,
 * per MTP depth), the logits and losses, and the gradient scratch that backward reuses for every layer.
 * Built in two passes of the same carving code: the first only measures, the second hands out views.
 * Does not: compute anything (model_layer.c and friends do). */
#include <string.h>
#include "model_internal.h"

typedef struct { char *base; size_t used; } carver;

/* 64-byte aligned views; with base == NULL only measures. */
static void *take(carver *c, size_t bytes) {
    size_t off = (c->used + 63) & ~(size_t)63;
    c->used = off + bytes;
    return c->base ? (void *)(c->base + off) : NULL;
}
static float *tf(carver *c, size_t n) { return take(c, n * sizeof(float)); }
static int32_t *ti(carver *c, size_t n) { return take(c, n * sizeof(int32_t)); }

/* saved = 1: forward activations of one layer; saved = 0: gradient scratch (no int buffers, no `out`,
 * plus the pre-RoPE and score gradients). */
static void carve_layer(carver *c, const umoe_model *m, int moe, int saved, layer_act *a) {
    const model_dims *d = &m->d;
    size_t N = (size_t)m->N, C = (size_t)d->C, NK = N * (size_t)d->K;
    memset(a, 0, sizeof *a);
    a->n1 = tf(c, N * C);
    if (saved) a->rstd1 = tf(c, N);
    if (d->mla) {
        if (d->q_lora > 0) {
            a->qa = tf(c, N * (size_t)d->q_lora);
            a->qa_n = tf(c, N * (size_t)d->q_lora);
            if (saved) a->qa_rstd = tf(c, N);
        }
        a->kva = tf(c, N * (size_t)(d->kv_lora + d->rope));
        a->kv_lat = tf(c, N * (size_t)d->kv_lora);
        a->kv_n = tf(c, N * (size_t)d->kv_lora);
        if (saved) a->kv_rstd = tf(c, N);
        a->kvb = tf(c, N * (size_t)d->H * (size_t)(d->nope + d->vd));
        if (!saved) a->dkva_post = tf(c, N * (size_t)(d->kv_lora + d->rope));
    }
    a->q = tf(c, N * (size_t)d->qdim);
    a->k = tf(c, N * (size_t)d->kdim);
    a->v = tf(c, N * (size_t)d->vdim);
    if (!saved) {
        a->dq_pre = tf(c, N * (size_t)d->qdim);
        a->dk_pre = tf(c, N * (size_t)d->kdim);
    }
    a->att = tf(c, N * (size_t)d->H * (size_t)d->Dv);
    if (saved) a->lse = tf(c, N * (size_t)d->H);
    a->ao = tf(c, N * C);
    if (d->sandwich) {
        a->ap = tf(c, N * C);
        if (saved) a->ap_rstd = tf(c, N);
    }
    a->mid = tf(c, N * C);
    a->n2 = tf(c, N * C);
    if (saved) a->rstd2 = tf(c, N);
    size_t Fw = moe ? (size_t)d->S * (size_t)d->Fe : (size_t)d->F; /* dense width, or shared-expert width */
    if (Fw > 0) {
        a->gu = tf(c, N * 2 * Fw);
        a->act = tf(c, N * Fw);
    }
    a->fo = tf(c, N * C);
    if (d->sandwich) {
        a->fp = tf(c, N * C);
        if (saved) a->fp_rstd = tf(c, N);
    }
    if (saved) a->out = tf(c, N * C);
    if (moe) {
        size_t E = (size_t)d->E, K = (size_t)d->K, Fe = (size_t)d->Fe;
        a->rlogits = tf(c, N * E);
        a->scores = tf(c, N * E);
        a->w = tf(c, N * K);
        if (saved) {
            a->idx = ti(c, N * K);
            a->counts = ti(c, E);
            a->offsets = ti(c, E + 1);
            a->order = ti(c, NK);
        } else {
            a->dscores = tf(c, N * E);
        }
        a->rows = tf(c, NK * C);
        a->egu = tf(c, NK * 2 * Fe);
        a->eact = tf(c, NK * Fe);
        a->eout = tf(c, NK * C);
    }
}

static void carve_all(carver *c, umoe_model *m) {
    const spec_model *s = &m->s;
    size_t N = (size_t)m->N, C = (size_t)s->C, V = (size_t)s->V;
    int any_moe = 0;
    for (int l = 0; l < m->n_layers; l++) {
        carve_layer(c, m, m->lw[l].moe, 1, &m->la[l]);
        any_moe |= m->lw[l].moe;
    }
    /* one gradient scratch serves every layer: carve it with the richer (MoE) shape when any layer has it,
     * plus the dense widths, by carving the dense FFN buffers of the larger of the two */
    carve_layer(c, m, any_moe, 0, &m->ga);
    if (any_moe && m->d.F > 0 && (size_t)m->d.F > (size_t)m->d.S * (size_t)m->d.Fe) {
        m->ga.gu = tf(c, N * 2 * (size_t)m->d.F);
        m->ga.act = tf(c, N * (size_t)m->d.F);
    }
    for (int d = 0; d < s->mtp; d++) {
        mtp_act *a = &m->ma[d];
        a->emb = tf(c, N * C);
        a->en = tf(c, N * C);
        a->en_rstd = tf(c, N);
        a->hn = tf(c, N * C);
        a->hn_rstd = tf(c, N);
        a->cat = tf(c, N * 2 * C);
        a->x = tf(c, N * C);
        a->fn = tf(c, N * C);
        a->fn_rstd = tf(c, N);
        a->logits = tf(c, N * V);
        a->losses = tf(c, N);
        a->targets = ti(c, N);
        a->inputs = ti(c, N);
    }
    m->emb0 = tf(c, N * C);
    m->fn = tf(c, N * C);
    m->fn_rstd = tf(c, N);
    m->logits = tf(c, N * V);
    m->losses = tf(c, N);
    m->inputs = ti(c, N);
    m->targets = ti(c, N);
    m->dres = tf(c, N * C);
    m->dres2 = tf(c, N * C);
    m->dtmp = tf(c, N * C);
    m->dcat = tf(c, N * 2 * C);
    m->dlogits = tf(c, N * V);
    m->dloss = tf(c, N);
}

void model_arena_build(umoe_model *m) {
    m->la = umoe_calloc((size_t)m->n_layers, sizeof *m->la, "model layer activations table");
    m->ma = umoe_calloc((size_t)(m->s.mtp > 0 ? m->s.mtp : 1), sizeof *m->ma, "model MTP activations table");
    carver c = {NULL, 0};
    carve_all(&c, m);
    m->arena_bytes = c.used + 64;
    m->arena = umoe_calloc(1, m->arena_bytes, "model activation arena");
    c.base = (char *)(((uintptr_t)m->arena + 63) & ~(uintptr_t)63);
    c.used = 0;
    carve_all(&c, m);
}

void model_arena_free(umoe_model *m) {
    umoe_free(m->arena, m->arena_bytes);
    umoe_free(m->la, (size_t)m->n_layers * sizeof *m->la);
    umoe_free(m->ma, (size_t)(m->s.mtp > 0 ? m->s.mtp : 1) * sizeof *m->ma);
    m->arena = NULL;
}
