/* sim.h - the simulator: predict one training step of (model, cluster, strategy), and the planner that
 * searches every valid strategy. Reads only spec.h; never includes engine headers. */
#ifndef UMOE_SIM_H
#define UMOE_SIM_H
#include "umoe/spec.h"

/* Step-time components, seconds per step (exposed, i.e. not hidden by overlap). */
typedef enum {
    SIM_T_COMPUTE, SIM_T_RECOMPUTE, SIM_T_TP, SIM_T_CP, SIM_T_EP, SIM_T_PP, SIM_T_DP, SIM_T_BUBBLE, SIM_T_OPTIMIZER,
    SIM_T_OFFLOAD, /* activation offload: host-link transfer not hidden behind layer compute */
    SIM_T_COUNT
} sim_time_part;
extern const char *const sim_time_names[SIM_T_COUNT];

/* Memory components, bytes on the most loaded device. */
typedef enum {
    SIM_M_WEIGHTS, SIM_M_GRADS, SIM_M_OPTIMIZER, SIM_M_ACTIVATIONS, SIM_M_DISPATCH, SIM_M_LOGITS, SIM_M_RESERVED,
    SIM_M_COUNT
} sim_mem_part;
extern const char *const sim_mem_names[SIM_M_COUNT];

/* Model-level counts sim_run derives from the model alone (spec_params_count, spec_flops_count). A caller
 * that simulates one model many times (the planner) fills this once with sim_model_pre_init and passes it in
 * sim_options.pre; sim_run uses it only for the very model pointer and causal_half it was filled for (the
 * model must not change in between), and computes the counts itself otherwise. */
typedef struct {
    const spec_model *m;
    int causal_half;
    spec_params pc;
    spec_flops fc;
} sim_model_pre;
void sim_model_pre_init(sim_model_pre *p, const spec_model *m, int causal_half);

typedef struct {
    int causal_half;   /* MFU counts only the causal half of attention's s^2 term */
    int detailed;      /* 1: event simulation of the pipeline schedule; 0: closed form (planner fast path) */
    int record_events; /* detailed only: keep the pipeline events in sim_result.pipeline (for --trace/--svg) */
    int attn_no_flash; /* 0 (default): flash-attention class kernel (causal blocks skipped, no s^2 activations);
                        * 1: unfused attention as in Megatron-LM 2022 (full s^2 scores, softmax and dropout
                        *    stored: the 5as/h term of Korthikanti et al. 2022) */
    double host_s_per_kernel; /* > 0: override the host launch time per kernel (calibration tools only) */
    double host_combine_p;    /* > 0: override how GPU and host time combine (calibration tools only) */
    double grouped_gemm_factor; /* > 0: override the grouped-GEMM factor (calibration tools only) */
    int loss_unfused;  /* 1: Megatron's unfused vocab-parallel cross-entropy (fp32 cast, max, subtract, exp, sum,
                        *    divide as separate passes: 38 bytes per logit forward, 14 backward); 0 (default): a
                        *    fused cross-entropy kernel (docs/cost-model.md, "LM head + loss") */
    /* added for speed (additive; zero = the default behaviour): */
    const sim_model_pre *pre;   /* optional precomputed model counts (see sim_model_pre) */
    int reference_stages;       /* 1: assemble the pipeline stages chunk by chunk (the straightforward reference
                                 * path the tests compare the closed form's grouped assembly against; results
                                 * equal within rounding, docs/planner.md "Speed") */
} sim_options;


/* Pipeline event simulation. Per virtual stage (pp * vpp chunks, chunk c lives on device c % pp) and
 * per micro-batch: f (forward), b (backward-input, or whole backward when w == NULL), w (weight-gradient
 * part, used by ZB-1P / DualPipe); p2p = seconds to send one activation between neighbouring stages. */
typedef struct { int device, chunk, mb; char kind; /* 'F','B','W' */ double t0, t1; } sim_event;
typedef struct {
    double makespan;       /* seconds from the first forward to the last backward */
    double bubble_frac;    /* idle fraction of the device with the least idle time... see sim_pipeline.c */
    int peak_inflight[1024]; /* per device: max micro-batch chunks whose activations are held at once */
    sim_event *events;     /* when recorded; owned by the result, free with sim_pipeline_free */
    int n_events;
} sim_pipeline_result;

umoe_status sim_pipeline_run(spec_schedule sched, int pp, int vpp, int n_mb, const double *f, const double *b,
                             const double *w, double p2p, int record, sim_pipeline_result *out);
void sim_pipeline_free(sim_pipeline_result *r);

/* Timeline outputs of a recorded pipeline run (src/sim/trace_*.c): Chrome-trace/Perfetto JSON and SVG. */
umoe_status sim_trace_write_chrome(const char *path, const sim_pipeline_result *p, const char *title);
umoe_status sim_trace_write_svg(const char *path, const sim_pipeline_result *p, const char *title);

typedef struct {
    double params_total, params_active, flops_per_token; /* model FLOPs per token: fwd + bwd, no recompute */
    double step_time_s, tokens_per_s, mfu, hfu;
    double breakdown[SIM_T_COUNT];
    double memory[SIM_M_COUNT];
    double memory_peak_bytes;
    int fits;
    int worst_stage;   /* pipeline stage with the highest memory */
    double bubble_frac;
    /* extra detail (not part of the stable JSON minimum) */
    double flops_per_step_model;    /* model FLOPs of one step, all devices (MFU numerator) */
    double flops_per_step_hw;       /* plus recompute (HFU numerator) */
    double stage_fwd_s[2], stage_bwd_s[2]; /* slowest stage: one micro-batch forward / backward incl. exposed comm */
    int n_microbatches;
    double inflight;                /* micro-batches whose activations the worst stage holds at once */
    sim_pipeline_result pipeline;   /* detailed runs: the event simulation (free with sim_result_free) */
} sim_result;


/* One strategy. Returns UMOE_EINPUT (with umoe_err) when the strategy is invalid for the model/cluster. */
umoe_status sim_run(const spec_model *m, const spec_cluster *c, const spec_strategy *s, const sim_options *o,
                    sim_result *r);
/* Frees what a detailed run with record_events kept (safe on any result, zeroed or not recorded). */
void sim_result_free(sim_result *r);

/* ------------------------------------------------------------------ cost-model building blocks
 * (src/sim/cost_*.c; equations and sources in docs/cost-model.md). Exposed for tests and the planner. */
/* GEMM efficiency for a GEMM of `flops` FLOPs: piecewise linear in log10(flops) through the hardware's
 * gemm_eff table, clamped at both ends; 0.7 when the table is empty (documented default). */
double sim_gemm_eff(const spec_hardware *h, double flops);
/* Roofline time of one GEMM (m x k) @ (k x n), 2-byte operands unless bits == 8 (1-byte inputs). */
double sim_gemm_time(const spec_hardware *h, double m, double n, double k, int bits);
/* Memory-bound kernel moving `bytes` to/from HBM. */
double sim_mem_time(const spec_hardware *h, double bytes);
/* Collectives over n ranks of which k share a node (k == n: one node). `bytes` is the full buffer per rank:
 * all-reduce: the buffer; all-gather: the gathered output; reduce-scatter: the input; all-to-all: what one
 * rank sends in total (including the share it keeps). Alpha-beta: latency per step + bytes / bandwidth. */
double sim_allreduce_time(const spec_hardware *h, int n, int k, double bytes);
double sim_allgather_time(const spec_hardware *h, int n, int k, double bytes);
double sim_reducescatter_time(const spec_hardware *h, int n, int k, double bytes);
double sim_alltoall_time(const spec_hardware *h, int n, int k, double bytes);
/* Hierarchical all-to-all (MindSpeed / Pangu): inter-node all-gather of the *tokens* among ranks with the same
 * local index, then an intra-node all-to-all of the token-assignments. tok_bytes: this rank's tokens (each
 * once); asg_bytes: its token-assignments (tokens x top-k). */
double sim_alltoall_hier_time(const spec_hardware *h, int n, int k, double tok_bytes, double asg_bytes);
double sim_p2p_time(const spec_hardware *h, int inter_node, double bytes);

/* Activation bytes stored for one transformer layer and one micro-batch on one device (Korthikanti et al.
 * 2022, Table 2, generalised to GQA/MLA/SwiGLU/MoE; see docs/cost-model.md). */
double sim_layer_act_bytes(const spec_model *m, const spec_strategy *s, const sim_options *o, int moe_layer);
/* Bytes one layer's activation offload moves to the host (and back) per micro-batch on one device: its kept
 * activations except the layer input; 0 unless s->offload_activations (src/sim/cost_offload.c). */
double sim_layer_offload_bytes(const spec_model *m, const spec_strategy *s, const sim_options *o, int moe_layer);

/* ------------------------------------------------------------------ validation (src/sim/validate*.c)
 * Predicted vs published measurements. A CSV with the columns of data/validation/published_points.csv
 * (extra columns ignored); see docs/validation.md for the columns we added and the row conventions. */
typedef struct {
    char id[128];
    int ok;                  /* 1 modelled; 0 skipped (reason says why) */
    char reason[1200];
    char flops_kind[16];     /* "model" or "hardware" (the row's TFLOP/s convention) */
    char compared[16];       /* what the measured step time comes from: step_s, tokens_per_s, tflops, mfu */
    double pred_step_s, meas_step_s;           /* NAN when unknown */
    double pred_tflops, meas_tflops;           /* per device, in the row's flops_kind convention */
    double pred_mfu, meas_mfu;
    double error;            /* pred_step / meas_step - 1 */
    double pred_mem_gib, meas_mem_gib; /* peak allocated memory per device without the reserved share, GiB;
                                        * NAN when the row has no mem_gib */
    double mem_error;        /* pred_mem / meas_mem - 1 */
} sim_validation_row;

/* Reads and predicts every row. *rows is allocated (free with sim_validation_free). UMOE_EINPUT on a file
 * that cannot be read or lacks required columns (message in umoe_err). */
umoe_status sim_validate_csv(const char *path, sim_validation_row **rows, int *n_rows);
void sim_validation_free(sim_validation_row *rows, int n_rows);

/* vTrain sweeps (Megatron-DeepSpeed on A100, VIA-Research/vTrain): per model of the multi-node file the
 * Spearman rank correlation of predicted vs measured iteration time; on the single-node file the median
 * absolute error and the rank correlation. */
#define SIM_VTRAIN_MAX_MODELS 16
typedef struct {
    int n_models;
    double model_params_b[SIM_VTRAIN_MAX_MODELS];
    int model_rows[SIM_VTRAIN_MAX_MODELS];
    double model_spearman[SIM_VTRAIN_MAX_MODELS];
    double model_median_err[SIM_VTRAIN_MAX_MODELS];
    int multi_skipped;
    int single_rows, single_skipped;
    double single_median_err, single_spearman;
} sim_vtrain_result;
umoe_status sim_validate_vtrain(const char *multi_csv, const char *single_csv, const char *hardware,
                                double host_s_per_kernel /* 0 = the built-in constant */, sim_vtrain_result *out);
/* Spearman rank correlation (average ranks for ties). */
double sim_spearman(const double *x, const double *y, int n);
#endif
