/* model_internal.h - private structures shared by the files of src/model: the per-layer weight offsets into
 * the flat parameter block, the per-layer activation views into the one activation arena, and the model
 * object itself. Not part of the public API (include/umoe/model.h is).
 * Shapes use the glossary of DESIGN.md: N = B*T tokens, C hidden, H heads, E experts, K top-k.
 * Layout conventions: activations are row-major (N, width); a Linear weight is (out, in) as in PyTorch. */
#ifndef UMOE_MODEL_INTERNAL_H
#define UMOE_MODEL_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "umoe/model.h"

#define MODEL_NONE ((size_t)-1) /* offset of a tensor that this configuration does not have */
typedef struct model_offload model_offload; /* model_offload.c */

/* Derived dimensions of one model, computed once from the spec. */
typedef struct {
    int C, H, Hk, hd;         /* GQA/MHA: heads, kv heads, head dim */
    int mla, q_lora, kv_lora, nope, rope, vd; /* MLA dims */
    int Dk, Dv;               /* per-head q/k dim and v dim actually used by attention */
    int qdim, kdim, vdim;     /* widths: H*Dk, Hk*Dk (GQA) or H*Dk (MLA), Hk*Dv or H*Dv */
    int F, Fe, E, K, S;       /* dense width, expert width, experts, top-k, shared experts */
    int sandwich;
    float eps;
} model_dims;

/* Offsets (in floats, into params and grads alike) of one transformer layer's tensors. MODEL_NONE = absent. */
typedef struct {
    int index;                /* 0..L-1 main layers, L..L+D-1 MTP modules */
    int moe;                  /* MoE FFN (else dense SwiGLU) */
    int moe_slot;             /* index among MoE layers (0..n_moe-1), -1 when dense */
    size_t norm_attn_pre, norm_attn_post, norm_ffn_pre, norm_ffn_post; /* (C); posts only with sandwich */
    /* GQA/MHA */
    size_t wq, wk, wv, bq, bk, bv; /* (H*hd, C), (Hk*hd, C) x2, biases (qkv_bias) */
    /* MLA */
    size_t q_a, q_a_norm, q_b;     /* (q_lora, C), (q_lora), (H*Dk, q_lora); wq used when q_lora == 0 */
    size_t kv_a, kv_a_norm, kv_b;  /* (kv_lora + rope, C), (kv_lora), (H*(nope + v), kv_lora) */
    size_t wo;                     /* (C, H*Dv) */
    /* dense FFN: gate (F, C) immediately followed by up (F, C) = one (2F, C) matrix; down (C, F) */
    size_t ffn_gu, ffn_down;
    /* MoE */
    size_t router, score_bias;     /* (E, C), (E) (score_bias only with spec->score_bias) */
    size_t experts;                /* expert j: gate at experts + j*expert_stride, up right after, then down */
    size_t expert_stride;          /* floats per routed expert: 3 * Fe * C */
    size_t shared_gu, shared_down; /* (2*S*Fe, C), (C, S*Fe); MODEL_NONE when S == 0 */
    /* MTP module only (DeepSeek-V3 sec. 2.2) */
    size_t enorm, hnorm, eh_proj, head_norm; /* (C), (C), (C, 2C), (C) */
} layer_w;

/* Activation views of one layer. The same struct describes the saved forward activations (one per layer)
 * and the single set of gradient scratch buffers that backward reuses layer after layer. NULL = absent. */
typedef struct {
    float *n1, *rstd1;            /* (N,C), (N): normed input of attention */
    float *qa, *qa_n, *qa_rstd;   /* MLA (N,q_lora) x2, (N) */
    float *q, *k, *v;             /* (N,qdim) after RoPE, (N,kdim) after RoPE, (N,vdim) */
    float *kva, *kv_lat, *kv_n, *kv_rstd, *kvb; /* MLA: (N,kv_lora+rope), (N,kv_lora) x2, (N), (N,H*(nope+v)) */
    float *att, *lse;             /* (N,H*Dv), (B,H,T) */
    float *ao;                    /* (N,C) attention branch output (o_proj) */
    float *ap, *ap_rstd;          /* sandwich: post-norm of ao */
    float *mid;                   /* (N,C) residual after attention */
    float *n2, *rstd2;            /* (N,C), (N) normed input of the FFN */
    float *gu, *act;              /* dense FFN (N,2F), (N,F); MoE: shared experts (N,2*S*Fe), (N,S*Fe) */
    float *fo;                    /* (N,C) FFN branch output */
    float *fp, *fp_rstd;          /* sandwich: post-norm of fo */
    float *out;                   /* (N,C) layer output (saved only; backward works in place in dres) */
    /* MoE */
    float *rlogits, *scores, *w;  /* (N,E), (N,E), (N,K) */
    int32_t *idx, *counts, *offsets, *order; /* (N,K), (E), (E+1), (N*K) */
    float *rows, *egu, *eact, *eout; /* grouped rows (NK,C), (NK,2Fe), (NK,Fe), (NK,C) */
    /* gradient scratch only */
    float *dq_pre, *dk_pre, *dkva_post; /* pre-RoPE grads: (N,qdim), (N,kdim), (N,kv_lora+rope) */
    float *dscores;               /* (N,E) aux-loss gradient w.r.t. the scores */
} layer_act;

/* One MTP depth's extra activations (DeepSeek-V3 eq. 21-22). */
typedef struct {
    float *emb, *en, *en_rstd;    /* (N,C) embedding of token t+d, its norm, (N) */
    float *hn, *hn_rstd;          /* (N,C) norm of the previous depth's hidden, (N) */
    float *cat;                   /* (N,2C) [en | hn] */
    float *x;                     /* (N,C) eh_proj output = the module layer's input */
    float *fn, *fn_rstd;          /* (N,C), (N) shared_head.norm output */
    float *logits, *losses;       /* (N,V), (N) */
    int32_t *targets;             /* (N) token t+d+1 */
    int32_t *inputs;              /* (N) token t+d */
} mtp_act;

struct umoe_model {
    spec_model s;
    model_dims d;
    int B, T, N;                  /* capacity: B x T, N = B*T */
    int n_layers;                 /* L + D (main layers then MTP modules) */
    int n_moe;                    /* MoE layers among them */
    layer_w *lw;                  /* (n_layers) */
    size_t embed, final_norm, lm_head; /* lm_head == embed when tied */
    /* parameters and grads: one flat block each */
    float *params, *grads;
    size_t n_params;
    model_tensor *tensors;
    int n_tensors, cap_tensors;
    /* activations: one arena */
    char *arena;
    size_t arena_bytes;
    layer_act *la;                /* (n_layers) saved activations */
    layer_act ga;                 /* gradient scratch of one layer (reused) */
    mtp_act *ma;                  /* (D) */
    float *emb0;                  /* (N,C) token embedding = residual input of layer 0 */
    float *fn, *fn_rstd;          /* (N,C), (N): final norm */
    float *logits, *losses;       /* (N,V), (N) */
    int32_t *inputs, *targets;    /* (N), (N) */
    float *dres, *dres2, *dtmp;   /* (N,C) residual gradients (main, MTP chain) and a scratch (N,C) */
    float *dcat;                  /* (N,2C) */
    float *dlogits, *dloss;       /* (N,V), (N) */
    int32_t *expert_load;         /* (n_moe, E) token-assignments of the last call */
    /* expert sharding (model_init_sharded): n_local expert slots per MoE layer (= E unsharded);
     * slot_expert (n_moe, n_local) logical expert in each slot; expert_slot (n_moe, E) its slot or -1 */
    int n_local;
    int32_t *slot_expert, *expert_slot;
    /* aux-loss scope: when aux_ext_counts is set, f_i uses these counts (n_moe, E) over aux_ext_tokens */
    double *aux_ext_counts;
    double aux_ext_tokens;
    double *aux_coef;             /* (n_moe, E) d(aux loss)/d(prob_{t,i}) = alpha f_i / T of the last forward */
    const model_moe_ops *ops;
    int cur_B, cur_T;             /* shape of the last forward */
    double last_aux, last_z;
    /* memory optimisations (docs/engine-memory.md) */
    unsigned rc;                  /* SPEC_RC_* recompute flags the arena was carved for */
    int recomputing;              /* 1 while backward reruns forward code: no losses, loads or aux statistics */
    int forward_only;             /* 1 inside model_forward: no backward will read the saved activations */
    float *rc_rstd;               /* (N) where recomputed norms write their rstd (the saved one stays untouched) */
    double rc_seconds;            /* wall time spent recomputing since model_init */
    double moe_seconds;           /* wall time inside model_moe_forward/backward (model_moe_seconds) */
    size_t arena_resident, arena_shared, arena_slots, arena_other, arena_dispatch; /* bytes, see model_memory */
    size_t *slot_bytes;           /* (n_layers) bytes of each layer's offloaded block (0 without offload) */
    struct model_offload *off;    /* NULL: every saved activation stays in the arena */
};

/* model_layout.c */
umoe_status model_layout_build(umoe_model *m);         /* fills lw, tensors, n_params */
void model_layout_free(umoe_model *m);
int model_layer_is_moe(const spec_model *s, int l);    /* l in 0..L+D-1 */
/* model_arena.c: the views depend on m->rc and on whether m->off is set (offloaded blocks share two slots) */
void model_arena_build(umoe_model *m);                 /* allocates the activation arena and its views */
void model_arena_free(umoe_model *m);
char *model_arena_slot(const umoe_model *m, int s);    /* base of offload working slot s (0, 1) */
/* model_recompute.c: before layer l's backward, rebuild what the policy freed (x = the layer's input) */
void model_layer_recompute(umoe_model *m, const layer_w *w, layer_act *a, const float *x, int B, int T);
/* model_offload.c: the background mover; no-ops when m->off is NULL */
void model_offload_before_forward(umoe_model *m, int l);
void model_offload_after_forward(umoe_model *m, int l);
void model_offload_before_backward(umoe_model *m, int l);
void model_offload_drain(umoe_model *m);               /* wait for every queued move */
void model_offload_free(umoe_model *m);
model_offload_kind model_offload_kind_of(const umoe_model *m, const char **dir); /* dir: file mode only */
double model_offload_moved(const umoe_model *m);       /* bytes moved out and back so far */
double model_offload_wait_s(const umoe_model *m);      /* seconds the compute thread waited for moves */
double model_offload_busy_s(const umoe_model *m);      /* seconds the mover spent moving */
size_t model_offload_pool_bytes(const umoe_model *m);
/* model_init.c */
void model_init_weights(umoe_model *m, uint64_t seed);
/* model_attn.c: x = normed input (N,C) -> a->ao (N,C) */
void model_attn_forward(umoe_model *m, const layer_w *w, layer_act *a, int B, int T);
/* g->ao holds d(ao); accumulates d(n1) into g->n1 and weight grads. */
void model_attn_backward(umoe_model *m, const layer_w *w, const layer_act *a, layer_act *g, int B, int T);
/* Rebuild the attention buffers freed by the policy (NORM: qa_n, kv_n; MLA_UP: q, kvb, k, v; ATTN_CORE: att,
 * lse) with the same kernel calls as the forward (n1 must already be valid). */
void model_attn_recompute(umoe_model *m, const layer_w *w, layer_act *a, int B, int T);
/* model_ffn.c: SwiGLU MLP over n rows: out (n,C) = down(silu(gate x) * up x); gu (n,2F), act (n,F) saved */
void model_swiglu_mlp_forward(float *out, float *gu, float *act, const float *x, const float *w_gu,
                              const float *w_down, size_t n, size_t C, size_t F);
/* act rows r0..r1-1 = silu(gate) * up of gu's rows (the one loop every forward and recompute uses) */
void model_swiglu_rows(float *act, const float *gu, size_t r0, size_t r1, size_t F);
/* routed experts' FC1 (gate+up GEMM per expert) and activation over grouped rows, as in model_experts_forward */
void model_experts_fc1(umoe_model *m, int layer, int e0, int n_exp, const int32_t *offsets, const float *in,
                       float *gu, float *act);
void model_swiglu_mlp_backward(float *dx, float *dw_gu, float *dw_down, float *dgu, float *dact, const float *dout,
                               const float *x, const float *gu, const float *act, const float *w_gu,
                               const float *w_down, size_t n, size_t C, size_t F);
/* model_moe.c: a->n2 -> a->fo; adds aux and z losses of this layer (already weighted) to *aux, *z */
void model_moe_forward(umoe_model *m, const layer_w *w, layer_act *a, int N, double *aux, double *z);
/* g->fo holds d(fo); accumulates d(n2) into g->n2. loss_scale multiplies the aux/z-loss seeds. */
void model_moe_backward(umoe_model *m, const layer_w *w, const layer_act *a, layer_act *g, int N, float loss_scale);
/* model_layer.c: residual x (N,C) -> a->out */
void model_layer_forward(umoe_model *m, const layer_w *w, layer_act *a, const float *x, int B, int T, double *aux,
                         double *z);
/* dres (N,C): on entry d(out), on exit d(x). */
void model_layer_backward(umoe_model *m, const layer_w *w, const layer_act *a, const float *x, float *dres, int B,
                          int T, float loss_scale);
#endif
