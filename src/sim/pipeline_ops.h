/* pipeline_ops.h - private to src/sim/pipeline_*.c: the op list ("program") each device executes in
 * order, and the builders that write one device's program for each schedule. The event simulation that
 * runs the programs is pipeline_engine.c.
 *
 * Vocabulary. A *virtual stage* v is one contiguous slice of the model on one device:
 *   1F1B / ZB-1P / interleaved: v in [0, pp*vpp), device v % pp, model chunk v / pp (Megatron layout);
 *   DualPipe: v in [0, 2*pp): v < pp is direction 0 (micro-batches enter at device 0), stage v on device v;
 *             v >= pp is direction 1 (micro-batches enter at device pp-1), stage v-pp on device pp-1-(v-pp).
 * An op is (kind, v, mb). Does not: decide timing (the engine does), validate user input (the engine does). */
#ifndef UMOE_SIM_PIPELINE_OPS_H
#define UMOE_SIM_PIPELINE_OPS_H

enum { PIPE_F = 0, PIPE_B = 1, PIPE_W = 2 };

typedef struct {
    unsigned char kind; /* PIPE_F, PIPE_B, PIPE_W */
    unsigned char join; /* F only: may start only when the next op (a B) is ready too (DualPipe's fused
                           forward-backward chunk waits for both inputs before it starts) */
    short pad;
    int v;              /* virtual stage */
    int mb;             /* micro-batch, 0..n_mb-1 */
} pipe_op;

/* Each builder writes device `dev`'s program into out (capacity: 3 * vpp * n_mb ops for 1F1B/ZB/
 * interleaved, 3 * n_mb for DualPipe) and returns the number of ops written. `split_w`: emit separate
 * W ops (ZB-1P, DualPipe with a weight-gradient cost); otherwise each B carries the whole backward. */
int pipe_build_1f1b(int pp, int n_mb, int dev, pipe_op *out);
int pipe_build_zb1p(int pp, int n_mb, int dev, int split_w, pipe_op *out);
int pipe_build_interleaved(int pp, int vpp, int n_mb, int dev, pipe_op *out);
/* scratch: at least n_mb ints (the deferred-W queue of one device). */
int pipe_build_dualpipe(int pp, int n_mb, int dev, int split_w, int *scratch, pipe_op *out);

static inline pipe_op pipe_op_make(int kind, int v, int mb) {
    pipe_op o = {(unsigned char)kind, 0, 0, v, mb};
    return o;
}
#endif
