/* cost_offload.c - host offload in the simulator: activation offload (the paper's tensor swapping) and
 * optimizer offload. What moves, how long the host link takes, how much of it the layers' compute hides,
 * and what stays in device memory.
 * Does not: assemble stages or the step (step.c), count the activations themselves (cost_memory.c). No
 * allocation: on the planner's hot path.
 *
 * Activation offload (strategy `offload_activations`; the engine's `--offload`, src/model/model_offload.c;
 * Pangu Ultra MoE, arXiv 2505.04519, memory section: swap to host in forward, prefetch before backward):
 *   - moved per layer and micro-batch: the layer's kept activations except its input (the previous layer's
 *     output, which stays resident as under full recompute) = sim_layer_act_bytes - sim_layer_input_bytes;
 *     under full recompute nothing is left to move;
 *   - time: bytes / host_bw each way (host_bw: achieved bytes/s per device per direction of the PCIe / HCCS
 *     link to the host; full duplex, so stores and loads do not share it). The store of layer l overlaps the
 *     forward of layer l+1 and the load (prefetch) of layer l-1 overlaps the backward of layer l, as in the
 *     engine, so per layer only what exceeds one layer's compute is exposed:
 *       exposed_fwd = max(0, bytes / host_bw - fwd),  exposed_bwd = max(0, bytes / host_bw - (bwd + rc));
 *     the windows are compute only (the host link of a GPU server sits behind the same PCIe switches as the
 *     NICs, so no overlap with EP/TP traffic is assumed);
 *   - memory: every in-flight micro-batch keeps its layer inputs; two layers' offloaded activations are
 *     resident at any time (the engine's double buffer: slot l % 2 is filled by layer l while layer l-1's
 *     block is still being stored or loaded): resident = inflight x (act - off) + 2 x the largest layer's off.
 * Optimizer offload (strategy `offload_optimizer`; ZeRO-Offload, Ren et al. 2021, USENIX ATC, Sec. 4): fp32
 * master weights and Adam m, v live in host memory (12 bytes per parameter leave the device: step.c); the
 * step moves the fp32 gradients down and the bf16 parameters up (SIM_OPT_OFFLOAD_LINK_BYTES per parameter at
 * host_bw) and runs Adam on the host over the same SIM_OPT_BYTES_PER_PARAM at host_mem_bw (the host DRAM
 * bandwidth one device's share of the CPUs gets). ASSUMPTION: the three run one after the other, not
 * overlapped with each other or with the backward (no delayed parameter update), and host compute keeps up with
 * host memory; this is an upper bound on the step. It is never charged below the device-side step (on every
 * shipped preset the host path is 25-120x slower, so this only guarantees that offload never shortens a step,
 * which the planner's throughput bound relies on). */
#include "cost.h"

umoe_status sim_offload_check(const spec_hardware *h, const spec_strategy *s) {
    if (s->offload_activations && !(h->host_bw > 0))
        return umoe_fail("sim: the strategy offloads activations but hardware \"%s\" has no \"host_bw\" (bytes/s per "
                         "device per direction of its host link; add it to the hardware spec)", h->name);
    if (s->offload_optimizer && !(h->host_bw > 0 && h->host_mem_bw > 0))
        return umoe_fail("sim: the strategy offloads the optimizer but hardware \"%s\" lacks \"host_bw\" or "
                         "\"host_mem_bw\" (bytes/s per device; add them to the hardware spec)", h->name);
    return UMOE_OK;
}

double sim_offload_bytes_of(const spec_model *m, const spec_strategy *s, double act) {
    if (!s->offload_activations || (s->recompute & SPEC_RC_FULL) || !(act > 0)) return 0;
    double b = act - sim_layer_input_bytes(m, s);
    return b > 0 ? b : 0;
}

double sim_layer_offload_bytes(const spec_model *m, const spec_strategy *s, const sim_options *o, int moe_layer) {
    if (!s->offload_activations) return 0;
    return sim_offload_bytes_of(m, s, sim_layer_act_bytes(m, s, o, moe_layer));
}

static double exposed(double t, double window) { return t > window ? t - window : 0; }

void sim_offload_layer_cost(const spec_hardware *h, double bytes, sim_cost *c) {
    c->off_fwd = c->off_bwd = 0;
    if (!(bytes > 0) || !(h->host_bw > 0)) return;
    double t = bytes / h->host_bw;
    c->off_fwd = exposed(t, c->fwd);
    c->off_bwd = exposed(t, c->bwd + c->rc);
}

double sim_offload_optimizer_time(const spec_hardware *h, double params, double t_device) {
    if (!(h->host_bw > 0 && h->host_mem_bw > 0)) return t_device;
    double t = params * (SIM_OPT_OFFLOAD_LINK_BYTES / h->host_bw + SIM_OPT_BYTES_PER_PARAM / h->host_mem_bw);
    return t > t_device ? t : t_device;
}

double sim_offload_resident_bytes(double act, double off, double off_max, double inflight) {
    return inflight * (act - off) + 2.0 * off_max;
}
