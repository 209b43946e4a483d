/* pipeline_dualpipe.c - program of one device under DualPipe (DeepSeek-V3 Technical Report, arXiv
 * 2412.19437, Sec. 3.2.1 and Fig. 5; the op order follows the eight phases of DeepSeek's published
 * reference schedule, re-derived here from its description, not copied).
 *
 * Bidirectional: half of the n micro-batches enter at device 0 (direction 0, stage s on device s), the
 * other half at device pp-1 (direction 1, stage s on device pp-1-s), so every device holds two mirrored
 * stages (two copies of those parameters: the memory model must count them). On device r let
 * h = min(r, pp-1-r); "phase 0" is the direction in which r is stage h (the one that reaches r first),
 * "phase 1" the other one. With H = pp/2 and half = n/2 the phases are:
 *   1  2(H-h-1) x F0                      5  (H-h-1) x [B1, F1+B0]
 *   2  (h+1) x [F0, F1]                   6  (h+1) x [B1, B0]   (second half of them defer W)
 *   3  (H-h-1) x [B1 (W deferred), W, F1] 7  (H-h-1) x [W, B0 (W deferred)]
 *   4  (half-pp+h+1) x [F0+B1, F1+B0]     8  (h+1) x W
 * "Fx+By" is DeepSeek's overlapped forward-backward chunk; here it is an F that starts only when the B's
 * input has arrived too (op.join), followed by that B and its W. A B that does not defer its W is followed
 * at once by it. Deferred W's are run first-in first-out by the "W" entries.
 *
 * Simplifications (honest list): (1) the F/B overlap hides communication (EP all-to-all, PP sends) inside
 * the pair, but both computations still take their full time: the caller passes f and b without the
 * communication that the overlap hides; (2) on the middle ranks the first step-4 pair is not fused, as in
 * DeepSeek's schedule; (3) no DualPipeV ("cut-in-half") variant. Requires pp even, n even, n >= 2*pp.
 * Does not: validate (pipeline_engine.c does). */
#include "umoe/common.h"
#include "pipeline_ops.h"

typedef struct {
    pipe_op *out;
    int k;
    int pp, half, split_w;
    int dir[2];          /* phase -> direction */
    int v[2];            /* phase -> virtual stage on this device */
    int nf[2], nb[2];    /* next micro-batch (within the direction) per phase, forward and backward */
    int *q, qhead, qtail; /* deferred W queue of (v, mb), packed as v * n + mb */
    int n;
} dp_builder;

static void dp_f(dp_builder *s, int ph, int join) {
    pipe_op o = pipe_op_make(PIPE_F, s->v[ph], s->dir[ph] * s->half + s->nf[ph]++);
    o.join = (unsigned char)join;
    s->out[s->k++] = o;
}

static void dp_b(dp_builder *s, int ph, int defer_w) {
    int mb = s->dir[ph] * s->half + s->nb[ph]++;
    s->out[s->k++] = pipe_op_make(PIPE_B, s->v[ph], mb);
    if (!s->split_w) return;
    if (defer_w) s->q[s->qtail++] = s->v[ph] * s->n + mb;
    else s->out[s->k++] = pipe_op_make(PIPE_W, s->v[ph], mb);
}

static void dp_w(dp_builder *s) {
    if (!s->split_w) return;
    UMOE_ASSERT(s->qhead < s->qtail);
    int e = s->q[s->qhead++];
    s->out[s->k++] = pipe_op_make(PIPE_W, e / s->n, e % s->n);
}

/* Fused forward of phase a with backward of phase b (W not deferred). */
static void dp_fb(dp_builder *s, int a, int b) {
    dp_f(s, a, 1);
    dp_b(s, b, 0);
}

int pipe_build_dualpipe(int pp, int n_mb, int dev, int split_w, int *scratch, pipe_op *out) {
    dp_builder s = {0};
    s.out = out;
    s.pp = pp;
    s.n = n_mb;
    s.half = n_mb / 2;
    s.split_w = split_w;
    s.q = scratch;
    int H = pp / 2, h = dev < pp - 1 - dev ? dev : pp - 1 - dev;
    int first_half = dev < H, middle = (dev == H - 1 || dev == H);
    s.dir[0] = first_half ? 0 : 1;
    s.dir[1] = 1 - s.dir[0];
    for (int ph = 0; ph < 2; ph++) /* direction 0: v = device; direction 1: v = pp + stage, stage = pp-1-dev */
        s.v[ph] = s.dir[ph] == 0 ? dev : pp + (pp - 1 - dev);

    for (int i = 0; i < 2 * (H - h - 1); i++) dp_f(&s, 0, 0);            /* 1 */
    for (int i = 0; i < h + 1; i++) { dp_f(&s, 0, 0); dp_f(&s, 1, 0); } /* 2 */
    for (int i = 0; i < H - h - 1; i++) { dp_b(&s, 1, 1); dp_w(&s); dp_f(&s, 1, 0); } /* 3 */
    for (int i = 0; i < s.half - pp + h + 1; i++) {                     /* 4 */
        if (i == 0 && middle) { dp_f(&s, 0, 0); dp_b(&s, 1, 0); }
        else dp_fb(&s, 0, 1);
        dp_fb(&s, 1, 0);
    }
    for (int i = 0; i < H - h - 1; i++) { dp_b(&s, 1, 0); dp_fb(&s, 1, 0); } /* 5 */
    int n6 = h + 1, zb = 0;                                               /* 6 */
    for (int i = 0; i < n6; i++) {
        if (i == n6 / 2 && h % 2 == 1) zb = 1;
        dp_b(&s, 1, zb);
        if (i == n6 / 2 && h % 2 == 0) zb = 1;
        dp_b(&s, 0, zb);
    }
    for (int i = 0; i < H - h - 1; i++) { dp_w(&s); dp_b(&s, 0, 1); }   /* 7 */
    for (int i = 0; i < h + 1; i++) dp_w(&s);                             /* 8 */

    UMOE_ASSERT(s.nf[0] == s.half && s.nf[1] == s.half && s.nb[0] == s.half && s.nb[1] == s.half);
    UMOE_ASSERT(s.qhead == s.qtail);
    return s.k;
}
