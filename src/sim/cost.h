/* cost.h - private to src/sim: the per-layer cost record that cost_layer.c fills and step.c assembles.
 * All times are seconds for ONE micro-batch on ONE device; bytes are per device. */
#ifndef UMOE_SIM_COST_H
#define UMOE_SIM_COST_H
#include "umoe/sim.h"

typedef struct {
    double fwd, bwd;        /* compute: forward; backward (dX + dW) */
    double bwd_w;           /* the weight-gradient (dW) share of bwd, for ZB-1P / DualPipe */
    double gemm_fwd;        /* GEMM share of fwd (windows for TP overlap) */
    double rc;              /* recompute time (forward parts redone in backward) */
    double tp_fwd, tp_bwd;  /* TP (+SP) collectives, exposed after overlap */
    double cp_fwd, cp_bwd;  /* CP ring-attention KV passes, exposed */
    double ep_fwd, ep_bwd;  /* EP dispatch + combine, exposed */
    double params_dense;    /* parameters stored on this device, non-expert */
    double params_expert;   /* expert parameters stored on this device */
    double off_fwd, off_bwd; /* activation offload: host-link transfer beyond the layer's compute window, exposed */
} sim_cost;

/* Host (CPU) time to launch one kernel in an eager PyTorch training framework (Megatron-LM / DeepSpeed): the
 * floor of a layer pass when its kernels are small. Calibrated on the vTrain single-node A100 sweep only
 * (tools/calibrate_sim.py step 1; docs/validation.md), never on the published points. */
#define SIM_HOST_S_PER_KERNEL 55e-6
#define SIM_HOST_COMBINE_P 64 /* >= 64: max(GPU, host) */
/* Throughput of the routed-expert GEMMs relative to a dense GEMM of the same per-GEMM FLOPs. Calibrated on the
 * 10 MoE rows of the SimuMax B200 calibration set (tools/calibrate_sim.py step 4; docs/validation.md); it
 * absorbs what the model does not itemise on the expert path (grouped-kernel inefficiency, the dispatcher's
 * index kernels and host synchronisation). */
#define SIM_GROUPED_GEMM_FACTOR 0.55

/* Flash-class attention: efficiency of the backward kernel relative to the forward one (the hardware's attn_eff
 * is the forward's). FlashAttention-3 paper (Shah et al. 2024, arXiv 2407.08608, Figs. 5-6: H100 SXM5, BF16,
 * head dim 128, sequence 4k, non-causal): cuDNN 499 / 609 TFLOP/s = 0.82, FlashAttention-3 542 / 638 = 0.85,
 * FlashAttention-2 310 / 368 = 0.84; the lowest (cuDNN, Transformer Engine's default on Hopper) is taken. */
#define SIM_ATTN_BWD_EFF_RATIO 0.82
/* TP communication overlap (Transformer Engine userbuffers, Megatron --tp-comm-overlap): the reduce-scatter
 * overlaps ("pipeline" for the forward output/down projections, "bulk" for the backward dgrad/wgrad of the input
 * projections) run on num_sm = 16 SMs with set_sm_margin, so those GEMMs get 132 - 16 of H100's 132 SMs
 * (TransformerEngine transformer_engine/pytorch/module/base.py, initialize_ub default config; the ring-exchange
 * all-gathers use 1 SM and copy engines and are not taxed). Extra GEMM time = 16 / (132 - 16). */
#define SIM_TP_OVERLAP_GEMM_TAX (16.0 / (132.0 - 16.0))
/* Embedding weight gradient, bytes per embedding parameter per micro-batch: PyTorch's dense embedding backward
 * (aten embedding_dense_backward) writes a zero-filled bf16 V x C gradient (w2), which Megatron's DDP backward
 * hook adds into the fp32 main gradient (main_grad.add_(grad): r2 r4 w4); the embedding has no fused
 * gradient accumulation, unlike the linear layers. */
#define SIM_EMBED_GRAD_BYTES 12.0
/* LM-head loss, bytes moved per logit (docs/cost-model.md "LM head + loss"). Fused: fp32 softmax cross-entropy
 * in 3 passes forward, 2 backward. Unfused (Megatron-LM tensor_parallel/cross_entropy.py with logits.float()):
 * forward = cast bf16->fp32 (r2 w4) + max (r4) + subtract max (r4 w4) + exp (r4 w4) + sum (r4) + divide by the
 * sum (r4 w4) = 38; backward = scale the saved softmax by the loss gradient (r4 w4) + cast back to bf16
 * (r4 w2) = 14. */
#define SIM_LOSS_FUSED_FWD_BYTES 12.0
#define SIM_LOSS_FUSED_BWD_BYTES 8.0
#define SIM_LOSS_UNFUSED_FWD_BYTES 38.0
#define SIM_LOSS_UNFUSED_BWD_BYTES 14.0

/* Adam step bytes per parameter: read grad, m, v, master (16), write m, v, master (12) and bf16 param (2), plus
 * the grad-norm read for clipping (4); docs/cost-model.md "Step assembly". On the device (HBM) or, with
 * offload_optimizer, in host memory (cost_offload.c). */
#define SIM_OPT_BYTES_PER_PARAM 34.0
/* The device-side optimizer step of Megatron-LM's mixed-precision optimizer (megatron/core/optimizer/optimizer.py,
 * MixedPrecisionOptimizer.step and Float16OptimizerWithFloat16Params; distrib_optimizer.py for ZeRO-1), bytes
 * per parameter moved through HBM:
 *   per UPDATED parameter (the ZeRO-1 shard, or all local parameters without ZeRO-1):
 *     _copy_model_grads_to_main_grads: main_grad.float() is a no-op for fp32 main grads (bf16 runs); fp16 runs
 *       keep fp16 grads (accumulate_allreduce_grads_in_fp32 is forced only for bf16, megatron/training/
 *       arguments.py), so the cast writes a fp32 copy: r2 w4 = 6;
 *     _unscale_main_grads_and_check_for_nan (fp16 dynamic loss scaling only): r4 w4 = 8;
 *     clip_grad_norm (L2 norm of the fp32 grads): r4 = 4;
 *     Adam (apex FusedAdam / multi_tensor_adam): read grad, param, m, v 16, write param, m, v 12 = 28;
 *     _copy_main_params_to_model_params: read fp32 master 4, write the 16-bit parameter 2 = 6;
 *   per LOCAL parameter (whether sharded or not): zero_grad_buffer clears the whole main-grad buffer every
 *     step (megatron/core/distributed: grad_data.zero_()): w4 (fp32 grads), w2 (fp16 grads). */
#define SIM_OPT_STEP_BYTES_BF16 38.0
#define SIM_OPT_STEP_BYTES_FP16 52.0
#define SIM_OPT_ZERO_BYTES_BF16 4.0
#define SIM_OPT_ZERO_BYTES_FP16 2.0
/* Megatron-Core's default gradient bucket: max(40M, 1M x DP size) parameters (megatron/core/distributed/
 * distributed_data_parallel_config.py, bucket_size: "larger DP sizes need larger buckets to ensure collectives
 * do not become latency-bound"). With overlap_dp the last gradient bucket and the first parameter bucket are
 * exposed (step.c). */
#define SIM_DP_BUCKET_MIN_PARAMS 40e6
#define SIM_DP_BUCKET_PER_RANK 1e6
/* offload_optimizer: bytes per updated parameter over the host link: fp32 main gradient down (4), bf16
 * parameter back up (2) (ZeRO-Offload, Ren et al. 2021, USENIX ATC, Sec. 4.1 data flow; fp32 gradients here
 * because this model keeps fp32 main gradients). */
#define SIM_OPT_OFFLOAD_LINK_BYTES 6.0

/* Derived strategy quantities shared by the cost functions. */
typedef struct {
    int tp, cp, pp, vpp, ep, etp, dp, edp, sp, dpn; /* dpn: devices per node */
    double t;        /* tokens per device-group per micro-batch: mbs x T / cp */
    double t_sp;     /* tokens in the sequence-parallel regions: t / tp with SP, else t */
    int k_tp, k_cp, k_ep, k_dp, k_edp; /* ranks per node of each group (== group size when inside one node) */
    int bits;
    double imb;      /* slowest EP rank: max / mean routed token-assignments */
} sim_geom;

void sim_geom_init(const spec_model *m, const spec_cluster *c, const spec_strategy *s, sim_geom *g);
/* Cost of one layer (moe = 1: attention + MoE FFN; 0: attention + dense FFN). */
void sim_layer_cost(const spec_model *m, const spec_hardware *h, const spec_strategy *s, const sim_options *o,
                    const sim_geom *g, int moe, sim_cost *out);
/* Embedding (first stage) and LM head + loss (last stage), one micro-batch. */
void sim_embed_cost(const spec_model *m, const spec_hardware *h, const spec_strategy *s, const sim_geom *g,
                    sim_cost *out);
void sim_head_cost(const spec_model *m, const spec_hardware *h, const spec_strategy *s, const sim_options *o,
                   const sim_geom *g, sim_cost *out);

/* cost_memory.c: bytes of the layer input per micro-batch on one device (what full recompute keeps). */
double sim_layer_input_bytes(const spec_model *m, const spec_strategy *s);
/* cost_offload.c. UMOE_EINPUT when the strategy offloads and the hardware lacks the link (or host memory)
 * bandwidth it needs. */
umoe_status sim_offload_check(const spec_hardware *h, const spec_strategy *s);
/* What a layer with `act` kept bytes offloads (0 without offload_activations); = sim_layer_offload_bytes. */
double sim_offload_bytes_of(const spec_model *m, const spec_strategy *s, double act);
/* Sets c->off_fwd / off_bwd for a layer whose offload moves `bytes` each way per micro-batch. */
void sim_offload_layer_cost(const spec_hardware *h, double bytes, sim_cost *c);
/* Optimizer step over `params` parameters: on the device (t_device, HBM-bound) or on the host. */
double sim_offload_optimizer_time(const spec_hardware *h, double params, double t_device);
/* Activation bytes resident on a stage with offload: `act` all kept bytes of the stage's layers for one
 * micro-batch, `off` their offloaded share, `off_max` the largest one layer offloads, `inflight` micro-batches. */
double sim_offload_resident_bytes(double act, double off, double off_max, double inflight);
#endif
