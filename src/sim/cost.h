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
} sim_cost;

/* Host (CPU) time to launch one kernel in an eager PyTorch training framework (Megatron-LM / DeepSpeed): the
 * floor of a layer pass when its kernels are small. Calibrated on the vTrain single-node A100 sweep only
 * (tools/calibrate_host.sh; docs/validation.md), never on the published points. */
#define SIM_HOST_S_PER_KERNEL 60e-6
#define SIM_HOST_COMBINE_P 64 /* >= 64: max(GPU, host) */
/* Throughput of the routed-expert GEMMs relative to a dense GEMM of the same per-GEMM FLOPs. Calibrated on the
 * 10 MoE rows of the SimuMax B200 calibration set (tools/calibrate_sim.py step 4; docs/validation.md); it
 * absorbs what the model does not itemise on the expert path (grouped-kernel inefficiency, the dispatcher's
 * index kernels and host synchronisation). */
#define SIM_GROUPED_GEMM_FACTOR 0.5

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
void sim_head_cost(const spec_model *m, const spec_hardware *h, const spec_strategy *s, const sim_geom *g,
                   sim_cost *out);
#endif
