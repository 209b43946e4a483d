/* pipeline_1f1b.c - program of one device under 1F1B (PipeDream-flush, Narayanan et al. 2021 "Efficient
 * Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", Sec. 2.2.1; Megatron-LM's
 * forward_backward_pipelining_without_interleaving).
 *
 * Device (= stage) i of p does min(p-1-i, n) warm-up forwards, then alternates one forward and one
 * backward, then drains the remaining backwards. Written as one loop over a step index x: step x runs
 * F_x (if x < n) then B_{x-(p-1-i)} (if in range), which produces exactly that warm-up / steady / cool-down
 * order for every n, including n < p. Each B carries the whole backward (input and weight gradients).
 * Does not: split the weight gradient (pipeline_zb.c), interleave chunks (pipeline_interleaved.c). */
#include "pipeline_ops.h"

int pipe_build_1f1b(int pp, int n_mb, int dev, pipe_op *out) {
    int k = 0, lag = pp - 1 - dev;
    for (int x = 0; x < n_mb + lag; x++) {
        if (x < n_mb) out[k++] = pipe_op_make(PIPE_F, dev, x);
        int bm = x - lag;
        if (bm >= 0 && bm < n_mb) out[k++] = pipe_op_make(PIPE_B, dev, bm);
    }
    return k;
}
