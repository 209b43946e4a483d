/* sim.h - the simulator: predict one training step of (model, cluster, strategy), and the planner that
 * searches every valid strategy. Reads only spec.h; never includes engine headers. */
#ifndef UMOE_SIM_H
#define UMOE_SIM_H
#include "umoe/spec.h"

/* Step-time components, seconds per step (exposed, i.e. not hidden by overlap). */
typedef enum {
    SIM_T_COMPUTE, SIM_T_RECOMPUTE, SIM_T_TP, SIM_T_CP, SIM_T_EP, SIM_T_PP, SIM_T_DP, SIM_T_BUBBLE, SIM_T_OPTIMIZER,
    SIM_T_COUNT
} sim_time_part;
extern const char *const sim_time_names[SIM_T_COUNT];

/* Memory components, bytes on the most loaded device. */
typedef enum {
    SIM_M_WEIGHTS, SIM_M_GRADS, SIM_M_OPTIMIZER, SIM_M_ACTIVATIONS, SIM_M_DISPATCH, SIM_M_LOGITS, SIM_M_RESERVED,
    SIM_M_COUNT
} sim_mem_part;
extern const char *const sim_mem_names[SIM_M_COUNT];

typedef struct {
    int causal_half;   /* MFU counts only the causal half of attention's s^2 term */
    int detailed;      /* 1: event simulation of the pipeline schedule; 0: closed form (planner fast path) */
} sim_options;

typedef struct {
    double params_total, params_active, flops_per_token; /* model FLOPs per token: fwd + bwd, no recompute */
    double step_time_s, tokens_per_s, mfu, hfu;
    double breakdown[SIM_T_COUNT];
    double memory[SIM_M_COUNT];
    double memory_peak_bytes;
    int fits;
    int worst_stage;   /* pipeline stage with the highest memory */
    double bubble_frac;
} sim_result;

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

/* One strategy. Returns UMOE_EINPUT (with umoe_err) when the strategy is invalid for the model/cluster. */
umoe_status sim_run(const spec_model *m, const spec_cluster *c, const spec_strategy *s, const sim_options *o,
                    sim_result *r);
#endif
