/* model_attn.c - the attention branch of a layer, forward and backward, over the normed input a->n1.
 *   MHA/GQA (Ainslie et al. 2023): q = x Wq^T (+bq), k = x Wk^T (+bk), v = x Wv^T (+bv); RoPE (Su et al. 2021,
 *     rotate-half form) on the full head dim of q and k; causal softmax(q k^T / sqrt(hd)) v; o_proj.
 *   MLA (DeepSeek-V2, arXiv 2405.04434, sec. 2.1.2-2.1.3, eq. 12-19; DeepSeek-V3 eq. 1-11):
 *     c_q = RMSNorm(x W_qa^T); q = c_q W_qb^T, per head [q_nope (nope) | q_rope (rope)]  (q = x Wq^T if no q_lora)
 *     [c_kv | k_rope] = x W_kva^T; c_kv = RMSNorm(c_kv); [k_nope | v] per head = c_kv W_kvb^T
 *     RoPE on q_rope (per head) and on k_rope (one vector shared by all heads);
 *     k = [k_nope | k_rope], softmax scale 1/sqrt(nope + rope); out = o_proj(attention).
 *   RoPE here rotates halves of the rope slice as nn.h specifies; HF DeepSeek checkpoints interleave the
 *   rope dims instead (a fixed permutation of the q_b/kv_a rows; see docs/engine-model.md).
 * Does not: the norms around the branch or the residual (model_layer.c). */
#include <math.h>
#include <string.h>
#include "model_internal.h"
#include "umoe/nn.h"

#define P(off) (m->params + (off))
#define G(off) (m->grads + (off))
#define OPT(off) ((off) == MODEL_NONE ? NULL : m->params + (off))
#define OPTG(off) ((off) == MODEL_NONE ? NULL : m->grads + (off))

static void attn_core(umoe_model *m, layer_act *a, int B, int T);

static void gqa_forward(umoe_model *m, const layer_w *w, layer_act *a, int B, int T) {
    const model_dims *d = &m->d;
    size_t N = (size_t)B * (size_t)T, C = (size_t)d->C;
    matmul_forward(a->q, a->n1, P(w->wq), OPT(w->bq), N, C, (size_t)d->qdim);
    matmul_forward(a->k, a->n1, P(w->wk), OPT(w->bk), N, C, (size_t)d->kdim);
    matmul_forward(a->v, a->n1, P(w->wv), OPT(w->bv), N, C, (size_t)d->vdim);
    float theta = (float)m->s.rope_theta;
    rope_forward(a->q, a->q, (size_t)B, (size_t)T, (size_t)d->H, (size_t)d->hd, 0, (size_t)d->hd, theta);
    rope_forward(a->k, a->k, (size_t)B, (size_t)T, (size_t)d->Hk, (size_t)d->hd, 0, (size_t)d->hd, theta);
    attn_core(m, a, B, T);
}

static void gqa_backward(umoe_model *m, const layer_w *w, const layer_act *a, layer_act *g, int B, int T) {
    const model_dims *d = &m->d;
    size_t N = (size_t)B * (size_t)T, C = (size_t)d->C;
    float theta = (float)m->s.rope_theta;
    nn_zero(g->q, N * (size_t)d->qdim);
    nn_zero(g->k, N * (size_t)d->kdim);
    nn_zero(g->v, N * (size_t)d->vdim);
    attention_backward(g->q, g->k, g->v, g->att, a->q, a->k, a->v, a->att, a->lse, (size_t)B, (size_t)T,
                       (size_t)d->H, (size_t)d->Hk, (size_t)d->Dk, (size_t)d->Dv, 1.0f / sqrtf((float)d->Dk));
    nn_zero(g->dq_pre, N * (size_t)d->qdim);
    nn_zero(g->dk_pre, N * (size_t)d->kdim);
    rope_backward(g->dq_pre, g->q, (size_t)B, (size_t)T, (size_t)d->H, (size_t)d->hd, 0, (size_t)d->hd, theta);
    rope_backward(g->dk_pre, g->k, (size_t)B, (size_t)T, (size_t)d->Hk, (size_t)d->hd, 0, (size_t)d->hd, theta);
    matmul_backward(g->n1, G(w->wq), OPTG(w->bq), g->dq_pre, a->n1, P(w->wq), N, C, (size_t)d->qdim);
    matmul_backward(g->n1, G(w->wk), OPTG(w->bk), g->dk_pre, a->n1, P(w->wk), N, C, (size_t)d->kdim);
    matmul_backward(g->n1, G(w->wv), OPTG(w->bv), g->v, a->n1, P(w->wv), N, C, (size_t)d->vdim);
}

/* q = c_q W_qb^T (or x W_q^T without q_lora), then RoPE on each head's rope slice (in place) */
static void mla_q(umoe_model *m, const layer_w *w, layer_act *a, int B, int T) {
    const model_dims *d = &m->d;
    size_t N = (size_t)B * (size_t)T, C = (size_t)d->C, H = (size_t)d->H;
    size_t nope = (size_t)d->nope, rope = (size_t)d->rope, Dk = nope + rope;
    if (d->q_lora > 0) matmul_forward(a->q, a->qa_n, P(w->q_b), NULL, N, (size_t)d->q_lora, H * Dk);
    else matmul_forward(a->q, a->n1, P(w->wq), NULL, N, C, H * Dk);
    rope_forward(a->q, a->q, (size_t)B, (size_t)T, H, Dk, nope, rope, (float)m->s.rope_theta);
}

/* [k_nope | v] per head = c_kv W_kvb^T; k = [k_nope | k_rope] with the shared k_rope of a->kva (after RoPE) */
static void mla_kv_up(umoe_model *m, const layer_w *w, layer_act *a, int B, int T) {
    const model_dims *d = &m->d;
    size_t N = (size_t)B * (size_t)T, H = (size_t)d->H;
    size_t nope = (size_t)d->nope, rope = (size_t)d->rope, vd = (size_t)d->vd, kvl = (size_t)d->kv_lora;
    size_t Dk = nope + rope, kvw = kvl + rope, bw = nope + vd;
    matmul_forward(a->kvb, a->kv_n, P(w->kv_b), NULL, N, kvl, H * bw);
    /* rows of (N*H) heads: k_nope and v from kvb; k_rope, one per token, into every head of that token */
    nn_copy_rows(a->k, Dk, a->kvb, bw, N * H, nope);
    nn_copy_rows(a->v, vd, a->kvb + nope, bw, N * H, vd);
    for (size_t h = 0; h < H; h++) nn_copy_rows(a->k + h * Dk + nope, H * Dk, a->kva + kvl, kvw, N, rope);
}

static void attn_core(umoe_model *m, layer_act *a, int B, int T) {
    const model_dims *d = &m->d;
    attention_forward(a->att, a->lse, a->q, a->k, a->v, (size_t)B, (size_t)T, (size_t)d->H, (size_t)d->Hk,
                      (size_t)d->Dk, (size_t)d->Dv, 1.0f / sqrtf((float)d->Dk));
}

static void mla_forward(umoe_model *m, const layer_w *w, layer_act *a, int B, int T) {
    const model_dims *d = &m->d;
    size_t N = (size_t)B * (size_t)T, C = (size_t)d->C;
    size_t rope = (size_t)d->rope, kvl = (size_t)d->kv_lora, kvw = kvl + rope;
    if (d->q_lora > 0) {
        size_t ql = (size_t)d->q_lora;
        matmul_forward(a->qa, a->n1, P(w->q_a), NULL, N, C, ql);
        rmsnorm_forward(a->qa_n, a->qa_rstd, a->qa, P(w->q_a_norm), N, ql, d->eps);
    }
    mla_q(m, w, a, B, T);
    matmul_forward(a->kva, a->n1, P(w->kv_a), NULL, N, C, kvw);
    nn_copy_rows(a->kv_lat, kvl, a->kva, kvw, N, kvl);
    rmsnorm_forward(a->kv_n, a->kv_rstd, a->kv_lat, P(w->kv_a_norm), N, kvl, d->eps);
    rope_forward(a->kva, a->kva, (size_t)B, (size_t)T, 1, kvw, kvl, rope, (float)m->s.rope_theta); /* shared k_rope */
    mla_kv_up(m, w, a, B, T);
    attn_core(m, a, B, T);
}

void model_attn_recompute(umoe_model *m, const layer_w *w, layer_act *a, int B, int T) {
    const model_dims *d = &m->d;
    unsigned rc = m->rc;
    size_t N = (size_t)B * (size_t)T;
    if (d->mla) {
        if (rc & SPEC_RC_NORM) { /* norm outputs from the saved latents; rstd goes to scratch */
            if (d->q_lora > 0)
                rmsnorm_forward(a->qa_n, m->rc_rstd, a->qa, P(w->q_a_norm), N, (size_t)d->q_lora, d->eps);
            rmsnorm_forward(a->kv_n, m->rc_rstd, a->kv_lat, P(w->kv_a_norm), N, (size_t)d->kv_lora, d->eps);
        }
        if (rc & SPEC_RC_MLA_UP) {
            mla_q(m, w, a, B, T);
            mla_kv_up(m, w, a, B, T);
        }
    }
    if (rc & SPEC_RC_ATTN_CORE) attn_core(m, a, B, T);
}

static void mla_backward(umoe_model *m, const layer_w *w, const layer_act *a, layer_act *g, int B, int T) {
    const model_dims *d = &m->d;
    size_t N = (size_t)B * (size_t)T, C = (size_t)d->C, H = (size_t)d->H;
    size_t nope = (size_t)d->nope, rope = (size_t)d->rope, vd = (size_t)d->vd, kvl = (size_t)d->kv_lora;
    size_t Dk = nope + rope, kvw = kvl + rope, bw = nope + vd;
    float theta = (float)m->s.rope_theta;
    nn_zero(g->q, N * H * Dk);
    nn_zero(g->k, N * H * Dk);
    nn_zero(g->v, N * H * vd);
    attention_backward(g->q, g->k, g->v, g->att, a->q, a->k, a->v, a->att, a->lse, (size_t)B, (size_t)T, H, H, Dk,
                       vd, 1.0f / sqrtf((float)Dk));
    /* split dk into d(k_nope) -> dkvb, sum over heads of d(k_rope) -> dkva_post; dv -> dkvb */
    nn_zero(g->dkva_post, N * kvw);
    nn_copy_rows(g->kvb, bw, g->k, Dk, N * H, nope);
    nn_copy_rows(g->kvb + nope, bw, g->v, vd, N * H, vd);
    for (size_t h = 0; h < H; h++) /* heads in order 0..H-1, each token's sum as the serial loop adds it */
        nn_add_rows(g->dkva_post + kvl, kvw, g->k + h * Dk + nope, H * Dk, N, rope);
    /* kv path */
    matmul_backward_set(g->kv_n, G(w->kv_b), NULL, g->kvb, a->kv_n, P(w->kv_b), N, kvl, H * bw);
    nn_zero(g->kv_lat, N * kvl);
    rmsnorm_backward(g->kv_lat, G(w->kv_a_norm), g->kv_n, a->kv_lat, P(w->kv_a_norm), a->kv_rstd, N, kvl);
    nn_zero(g->kva, N * kvw);
    rope_backward(g->kva, g->dkva_post, (size_t)B, (size_t)T, 1, kvw, kvl, rope, theta);
    nn_copy_rows(g->kva, kvw, g->kv_lat, kvl, N, kvl);
    matmul_backward(g->n1, G(w->kv_a), NULL, g->kva, a->n1, P(w->kv_a), N, C, kvw);
    /* q path: RoPE backward passes the nope part through (accumulating) and rotates the rope part */
    nn_zero(g->dq_pre, N * H * Dk);
    rope_backward(g->dq_pre, g->q, (size_t)B, (size_t)T, H, Dk, nope, rope, theta);
    if (d->q_lora > 0) {
        size_t ql = (size_t)d->q_lora;
        matmul_backward_set(g->qa_n, G(w->q_b), NULL, g->dq_pre, a->qa_n, P(w->q_b), N, ql, H * Dk);
        nn_zero(g->qa, N * ql);
        rmsnorm_backward(g->qa, G(w->q_a_norm), g->qa_n, a->qa, P(w->q_a_norm), a->qa_rstd, N, ql);
        matmul_backward(g->n1, G(w->q_a), NULL, g->qa, a->n1, P(w->q_a), N, C, ql);
    } else {
        matmul_backward(g->n1, G(w->wq), NULL, g->dq_pre, a->n1, P(w->wq), N, C, H * Dk);
    }
}

void model_attn_forward(umoe_model *m, const layer_w *w, layer_act *a, int B, int T) {
    if (m->d.mla) mla_forward(m, w, a, B, T);
    else gqa_forward(m, w, a, B, T);
    size_t N = (size_t)B * (size_t)T;
    matmul_forward(a->ao, a->att, P(w->wo), NULL, N, (size_t)m->d.H * (size_t)m->d.Dv, (size_t)m->d.C);
}

void model_attn_backward(umoe_model *m, const layer_w *w, const layer_act *a, layer_act *g, int B, int T) {
    size_t N = (size_t)B * (size_t)T, HD = (size_t)m->d.H * (size_t)m->d.Dv;
    matmul_backward_set(g->att, G(w->wo), NULL, g->ao, a->att, P(w->wo), N, HD, (size_t)m->d.C);
    if (m->d.mla) mla_backward(m, w, a, g, B, T);
    else gqa_backward(m, w, a, g, B, T);
}
