/* model.h - the engine's transformer: parameter layout (one flat block, HF-named tensor table), forward and
 * backward of the whole model (embedding, L layers of attention + dense FFN or MoE, final norm, LM head,
 * MTP modules, losses). Owned by src/model. The training loop (src/train) and expert parallelism (src/dist)
 * use only what is declared here.
 * Counts that cross module boundaries say whether they are tokens or token-assignments (tokens x K). */
#ifndef UMOE_MODEL_H
#define UMOE_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "umoe/spec.h"

typedef struct {
    char name[96];       /* HuggingFace DeepSeek-V3 style, e.g. "model.layers.3.mlp.experts.7.gate_proj.weight" */
    size_t offset;       /* in floats, into params / grads */
    size_t numel;
    int ndim;
    size_t shape[4];     /* PyTorch order: Linear weights are (out, in) */
    int decay;           /* AdamW weight decay applies (matrices yes; norms, biases no) */
    int expert;          /* routed expert id owning this tensor, -1 for dense (for EP sharding) */
    int layer;           /* layer index, -1 for embedding/head/final norm, L.. for MTP modules */
} model_tensor;

/* MoE execution hooks: how grouped token-assignment rows reach the experts. The default (NULL ops) runs all
 * experts locally. Expert parallelism (src/dist) installs ops that exchange rows over MPI. */
typedef struct model_moe_ops model_moe_ops;

typedef struct {
    double loss;      /* total = lm + mtp_weight * mtp + aux + z */
    double lm_loss;   /* mean next-token cross-entropy, nats */
    double mtp_loss;  /* mean over MTP depths */
    double aux_loss;  /* load-balancing loss (already multiplied by alpha) */
    double z_loss;
    /* routed token-assignments per expert per MoE layer in this call: (n_moe_layers, E), owned by the model */
    const int32_t *expert_load;
    int n_moe_layers;
} model_losses;

typedef struct umoe_model umoe_model; /* opaque; see src/model */

/* Allocate parameters, grads and activations for batches up to B x T (T <= spec->T). Initialise weights
 * (TinyInit or spec->init_std) from seed. */
umoe_status model_init(umoe_model **m, const spec_model *s, int B, int T, uint64_t seed);
/* Expert-sharded variant (expert parallelism, src/dist): the flat params / grads blocks hold the dense tensors
 * plus n_local routed-expert SLOTS per MoE layer instead of all E experts. slot_expert (n_moe, n_local): the
 * logical expert each slot holds (NULL: slot j holds expert j). The tensor table lists only the held experts,
 * named and tagged (model_tensor.expert) by their logical id. Weights are the same numbers a full model of
 * the same seed has for those experts. n_local <= 0 or n_local == E with NULL: exactly model_init. */
umoe_status model_init_sharded(umoe_model **m, const spec_model *s, int B, int T, uint64_t seed, int n_local,
                               const int32_t *slot_expert);
void model_free(umoe_model *m);
const spec_model *model_spec(const umoe_model *m);
float *model_params(umoe_model *m);
float *model_grads(umoe_model *m);
size_t model_n_params(const umoe_model *m);
const model_tensor *model_tensors(const umoe_model *m, int *n);
const model_tensor *model_tensor_find(const umoe_model *m, const char *name);
void model_zero_grad(umoe_model *m);

/* tokens: (B, T + 1 + spec->mtp) int32 row-major; inputs tokens[:, 0:T], targets shifted by 1 (main) and by
 * 1 + d (MTP depth d). Forward only (no grads). */
void model_forward(umoe_model *m, const int32_t *tokens, int B, int T, model_losses *out);
/* Forward + backward; grads ACCUMULATE, scaled by grad_scale (1/accumulation steps). */
void model_forward_backward(umoe_model *m, const int32_t *tokens, int B, int T, float grad_scale, model_losses *out);
/* Logits of the last forward, (B*T, V) (for the reference tests). */
const float *model_logits(const umoe_model *m);

/* ---- additions (src/model): MoE layers, load balancing, expert-parallel hooks ---------------------- */
/* MoE layers are numbered 0..n_moe-1 in layer order; MTP modules' layers follow the main layers. */
int model_n_moe_layers(const umoe_model *m);
int model_moe_layer_index(const umoe_model *m, int moe_slot);  /* layer index (0..L+D-1) of a MoE slot */
/* Router top-k of MoE slot i from the last forward: idx (B*T, K) expert ids, w (B*T, K) combine weights
 * (after renormalisation and routed scaling). */
void model_router_topk(const umoe_model *m, int moe_slot, const int32_t **idx, const float **w);

/* Aux-loss count scope. counts (n_moe, E): token-assignments per expert over `tokens` tokens of a larger
 * scope (e.g. the whole global batch, accumulated by the trainer); f_i then uses these instead of the
 * micro-batch's own counts (P_i, the differentiable part, stays the micro-batch mean). NULL restores the
 * micro-batch scope. The model copies the counts. */
void model_set_aux_counts(umoe_model *m, const double *counts, double tokens);

/* Aux-loss-free balancing (DeepSeek-V3 sec. 2.1.2): after each optimizer step, for every MoE layer and
 * expert i: b_i += gamma * sign(mean_j load_j - load_i). load (n_moe, E) token-assignments counted over the
 * step (NULL = the last call's expert_load). No-op unless spec->score_bias. */
void model_score_bias_update(umoe_model *m, const double *load, float gamma);

/* Expert math, separate from dispatch: experts [e0, e0 + n_exp) of layer `layer` over rows grouped by
 * expert, rows of expert e0+j being offsets[j]..offsets[j+1]-1 of in (rows, C) (offsets relative to in).
 * gu (rows, 2*F_expert) and act (rows, F_expert) are saved for backward; out (rows, C) is overwritten.
 * Experts with no rows are skipped (their grads stay untouched). */
void model_experts_forward(umoe_model *m, int layer, int e0, int n_exp, const int32_t *offsets, const float *in,
                           float *gu, float *act, float *out);
/* dout (rows, C) -> din (rows, C) += ..., weight grads += ...; dgu (rows, 2Fe) and dact (rows, Fe) are
 * scratch (overwritten). */
void model_experts_backward(umoe_model *m, int layer, int e0, int n_exp, const int32_t *offsets, const float *in,
                            const float *gu, const float *act, const float *dout, float *din, float *dgu,
                            float *dact);

/* Expert slots (model_init_sharded). model_experts_* take LOGICAL expert ids; experts e0..e0+n_exp-1 must be
 * held in consecutive slots. */
int model_n_local_experts(const umoe_model *m);                    /* slots per MoE layer (E unsharded) */
int model_expert_slot(const umoe_model *m, int moe_slot, int expert); /* slot holding expert, -1 if not held */
int model_slot_expert(const umoe_model *m, int moe_slot, int slot);   /* logical expert in slot */
/* Slot `slot` of MoE layer moe_slot now holds `expert` (the caller moved its numbers there): updates the maps
 * and renames / retags the slot's tensors. The expert it held before is no longer held (unless re-bound). */
void model_expert_rebind(umoe_model *m, int moe_slot, int slot, int expert);

/* Dispatch hooks. NULL (the default) computes all experts locally with model_experts_*. src/dist installs
 * ops that send rows to the ranks owning the experts, call model_experts_* there, and return the results. */
struct model_moe_ops {
    void *ctx;
    /* rows (NK, C) grouped by global expert id (counts (E), offsets (E+1)); write each row's expert output
     * to out (NK, C), same order. Whatever backward needs is kept in ctx. */
    void (*experts_forward)(void *ctx, umoe_model *m, int layer, int moe_slot, const float *rows,
                            const int32_t *counts, const int32_t *offsets, size_t NK, float *out);
    /* dout (NK, C) -> drows (NK, C) += ..., and the local experts' weight grads. */
    void (*experts_backward)(void *ctx, umoe_model *m, int layer, int moe_slot, const float *dout,
                             const int32_t *counts, const int32_t *offsets, size_t NK, float *drows);
    /* Optional (may be NULL): reduce the aux-loss statistics over a wider token set (e.g. all-reduce over
     * the EP group), in place: counts (E) token-assignments, psum (E) sums of probabilities, *tokens. */
    void (*aux_reduce)(void *ctx, int moe_slot, double *counts, double *psum, double *tokens);
    /* Optional split form, for overlapping the exchange with the shared experts (src/dist, --overlap on).
     * When both of a pair are set they replace the call above: forward = start(rows ...), the shared experts,
     * finish(out); backward = start(dout ...), the shared experts' backward, finish(drows += ...). rows / dout
     * stay untouched between start and finish. The results are the same bits as the unsplit form. */
    void (*experts_forward_start)(void *ctx, umoe_model *m, int layer, int moe_slot, const float *rows,
                                  const int32_t *counts, const int32_t *offsets, size_t NK);
    void (*experts_forward_finish)(void *ctx, umoe_model *m, int layer, int moe_slot, float *out);
    void (*experts_backward_start)(void *ctx, umoe_model *m, int layer, int moe_slot, const float *dout, size_t NK);
    void (*experts_backward_finish)(void *ctx, umoe_model *m, int layer, int moe_slot, float *drows);
};
void model_set_moe_ops(umoe_model *m, const model_moe_ops *ops);

/* ---- memory optimisations (src/model; docs/engine-memory.md) --------------------------------------- */
/* Fine-grained recomputation: rc = SPEC_RC_* flags (spec_recompute_parse: none, selective, full, or a list of
 * norm, activation, attn_core, mla_up, expert_fc1, permute). The buffers of those modules are freed after
 * their forward use (every layer's view of them shares one layer's worth of arena) and rebuilt just before
 * the layer's backward with the same kernels, so losses and gradients are bit-identical to rc = 0.
 * Rebuilds the activation arena (and the offload pool): call between steps, not between a forward and its
 * backward. Fails only when an offload file cannot be made again (UMOE_EINPUT). */
umoe_status model_set_recompute(umoe_model *m, unsigned rc);
unsigned model_recompute(const umoe_model *m);

/* Activation offload (swapping): every layer's kept activations (all but its output and router top-k) live
 * in one of two working slots of the arena while the layer runs; a background thread moves them to a pool
 * after the layer's forward and brings them back (prefetching the next layer) before its backward. */
typedef enum { MODEL_OFFLOAD_NONE = 0, MODEL_OFFLOAD_HOST, MODEL_OFFLOAD_FILE } model_offload_kind;
/* host: a separate host-memory pool; file: one unlinked file created in dir (models larger than memory).
 * UMOE_EINPUT (message names the directory) when dir cannot hold the file. Rebuilds the arena. */
umoe_status model_set_offload(umoe_model *m, model_offload_kind kind, const char *dir);
/* Parse "none", "host" or "file:DIR" (flag names the option in the message); *dir points into text. */
umoe_status model_offload_parse(const char *text, const char *flag, model_offload_kind *kind, const char **dir);

/* What the model holds, in bytes. The arena is allocated once, so its size is its peak. */
typedef struct {
    size_t params, grads;          /* the flat parameter and gradient blocks */
    size_t optimizer;              /* 0 here: the optimizer state belongs to the trainer, which adds it */
    size_t arena;                  /* the activation arena = resident + shared + slots + other (+ alignment) */
    size_t arena_resident;         /* per-layer activations kept in place for backward */
    size_t arena_shared;           /* one layer's worth of recomputed / transient buffers, shared by all layers */
    size_t arena_slots;            /* the two offload working slots (0 without offload) */
    size_t arena_other;            /* gradient scratch, MTP tensors, embeddings, logits */
    size_t dispatch;               /* of the arena: MoE dispatch buffers (grouping indices, permuted rows,
                                    * expert outputs, top-k), counting each shared/slot region once */
    size_t offload_pool;           /* host pool or file bytes (0 without offload) */
    double offload_moved;          /* bytes moved out and back by the background thread so far */
    double offload_busy_s;         /* seconds the background thread spent moving them */
    double offload_wait_s;         /* seconds the compute thread waited for it (0 = fully overlapped) */
    double recompute_s;            /* seconds spent rebuilding freed activations in backward so far */
    size_t alloc_current, alloc_peak; /* the counted allocator, whole process */
    size_t peak_rss;               /* getrusage ru_maxrss, whole process */
} model_memory;
void model_memory_report(const umoe_model *m, model_memory *r);

/* ---- profiling (src/model; bench/bench_train.c) -------------------------------------------------------- */
/* Wall seconds spent inside the MoE FFN blocks (router, dispatch, routed and shared experts, combine, router
 * losses; forward, recomputation and backward) since model_init or the last reset. */
double model_moe_seconds(const umoe_model *m);
void model_moe_seconds_reset(umoe_model *m);
#endif
