/* names.c - display/JSON names of the step-time and memory components of sim_result.
 * Does not: compute anything. The JSON keys of `umoe sim --json` are these names (a stable interface). */
#include "umoe/sim.h"

const char *const sim_time_names[SIM_T_COUNT] = {
    "compute", "recompute", "tp_comm", "cp_comm", "ep_comm", "pp_comm", "dp_comm", "bubble", "optimizer",
    "offload",
};

const char *const sim_mem_names[SIM_M_COUNT] = {
    "weights", "grads", "optimizer", "activations", "dispatch_buffers", "logits", "reserved",
};
