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
#endif
