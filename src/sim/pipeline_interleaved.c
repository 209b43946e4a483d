/* pipeline_interleaved.c - program of one device under interleaved 1F1B (Narayanan et al. 2021,
 * "Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM", Sec. 2.2.2;
 * Megatron-LM's forward_backward_pipelining_with_interleaving, the original version that needs
 * n_mb % pp == 0).
 *
 * Device d holds vpp model chunks; chunk j is virtual stage v = j*pp + d. Forwards go through the chunks
 * in groups of pp micro-batches: the k-th forward of a device (k = 0 .. n*vpp-1) is chunk (k mod pp*vpp)/pp
 * on micro-batch (k / (pp*vpp))*pp + k mod pp; the k-th backward is the same with the chunk order reversed.
 * Warm-up forwards on device d: (pp-1-d)*2 + (vpp-1)*pp (all of them when n == pp), capped at n*vpp;
 * then one forward and one backward alternate; then the remaining backwards.
 * Narayanan's bubble for it is (p-1)(t_f + t_b)/v with t_f, t_b a whole stage's times (Sec. 2.2.2);
 * tests/unit/test_pipeline.c checks the simulation against it.
 * Does not: Megatron's later microbatch_group_size generalisation (n_mb % pp != 0). */
#include "pipeline_ops.h"

static pipe_op interleaved_op(int kind, int pp, int vpp, int dev, int k) {
    int group = pp * vpp, in_group = k % group;
    int chunk = in_group / pp;
    if (kind == PIPE_B) chunk = vpp - 1 - chunk;
    int mb = (k / group) * pp + in_group % pp;
    return pipe_op_make(kind, chunk * pp + dev, mb);
}

int pipe_build_interleaved(int pp, int vpp, int n_mb, int dev, pipe_op *out) {
    int total = n_mb * vpp;
    int warm = (n_mb == pp) ? total : (pp - 1 - dev) * 2 + (vpp - 1) * pp;
    if (warm > total) warm = total;
    int k = 0;
    for (int i = 0; i < warm; i++) out[k++] = interleaved_op(PIPE_F, pp, vpp, dev, i);
    for (int i = 0; i < total - warm; i++) {
        out[k++] = interleaved_op(PIPE_F, pp, vpp, dev, warm + i);
        out[k++] = interleaved_op(PIPE_B, pp, vpp, dev, i);
    }
    for (int i = total - warm; i < total; i++) out[k++] = interleaved_op(PIPE_B, pp, vpp, dev, i);
    return k;
}
