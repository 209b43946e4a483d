/* pipeline_zb.c - program of one device under ZB-1P, the handcrafted ZB-H1 schedule of Qi et al. 2023
 * "Zero Bubble Pipeline Parallelism" (arXiv 2311.15241, Sec. 3.1, Fig. 3 top): the backward is split
 * into B (gradient w.r.t. the input, on the critical path to the previous stage) and W (gradient w.r.t.
 * the weights, needed only by the optimizer), and W passes are delayed to fill the cool-down bubbles.
 * The number of micro-batches whose forward is done and backward-input is not stays the 1F1B one
 * (p - i on stage i), so activation memory is 1F1B's.
 *
 * Order on stage i of p: step x runs F_x, B_{x-(p-1-i)}, W_{x-(p-1)} (each when its index is in
 * [0, n)). That gives the paper's phases: p-1-i lone forwards, i (F, B) pairs, (F, B, W) triples in the
 * steady state, p-1-i (B, W) pairs, then i lone W. The paper's bubble for it is (p-1)(T_F + T_B - T_W)
 * with T_B the backward-input time only (Sec. 3.1; DeepSeek-V3 report Table 2 writes the same quantity as
 * (PP-1)(F + B - 2W) with B the whole backward); tests/unit/test_pipeline.c checks it.
 * When split_w is 0 (no weight-gradient cost given), B carries the whole backward and the order is 1F1B's.
 * Does not: ZB-H2 / ZB-V or the automatic ILP schedules of the paper. */
#include "pipeline_ops.h"

int pipe_build_zb1p(int pp, int n_mb, int dev, int split_w, pipe_op *out) {
    int k = 0, lag_b = pp - 1 - dev, lag_w = pp - 1;
    for (int x = 0; x < n_mb + lag_w; x++) {
        if (x < n_mb) out[k++] = pipe_op_make(PIPE_F, dev, x);
        int bm = x - lag_b, wm = x - lag_w;
        if (bm >= 0 && bm < n_mb) out[k++] = pipe_op_make(PIPE_B, dev, bm);
        if (split_w && wm >= 0 && wm < n_mb) out[k++] = pipe_op_make(PIPE_W, dev, wm);
    }
    return k;
}
