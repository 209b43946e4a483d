/* rope.c - rotary position embedding (Su et al. 2021, "RoFormer", eq. 34), in the rotate-half layout of
 * HF Llama / DeepSeek-V3: for a head vector x of D (even) rotary dims, halves x1 = x[0:D/2], x2 = x[D/2:D],
 * angle a_i = pos * theta^(-2i/D) (i < D/2, pos = t):
 *   out1 = x1 cos a - x2 sin a ;  out2 = x2 cos a + x1 sin a.
 * Backward is the transposed rotation: din1 += d1 cos a + d2 sin a ; din2 += d2 cos a - d1 sin a.
 * The op acts on whole head rows of `stride` floats and is the identity outside the rotary slice
 * [off, off + D): forward with out != in copies those columns, backward adds dout to din there.
 * In place: forward with out == in rotates the slice only; backward with din == dout OVERWRITES the slice
 * with its transposed rotation (the one exception to accumulate: the buffer becomes the input gradient).
 * Angles in double precision (HF computes them in float32; the difference is < 1e-5 rad at pos 1e3).
 * Does not: scale positions (no YaRN / NTK extension). */
#include <math.h>
#include <string.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

typedef struct {
    float *dst; const float *src; const float *cs, *sn; size_t T, H, stride, off, half; int acc;
} rp_args;

/* head rows [lo, hi) of (B, T, H): row r is at position t = (r / H) % T; the angle table row of t rotates its
 * slice with a unit-stride loop over i (vectorised) */
static void rotate_rows(void *p, size_t lo, size_t hi) {
    rp_args *a = p;
    size_t half = a->half;
    for (size_t r = lo; r < hi; r++) {
        size_t t = (r / a->H) % a->T;
        const float *restrict c = a->cs + t * half, *restrict s = a->sn + t * half;
        const float *x1 = a->src + r * a->stride + a->off, *x2 = x1 + half;
        float *y1 = a->dst + r * a->stride + a->off, *y2 = y1 + half;
        if (a->acc) {
#pragma omp simd
            for (size_t i = 0; i < half; i++) {
                float u = x1[i], w = x2[i];
                y1[i] += u * c[i] - w * s[i];
                y2[i] += w * c[i] + u * s[i];
            }
        } else {
#pragma omp simd
            for (size_t i = 0; i < half; i++) {
                float u = x1[i], w = x2[i]; /* read both before writing (in place: y = x) */
                y1[i] = u * c[i] - w * s[i];
                y2[i] = w * c[i] + u * s[i];
            }
        }
    }
}

/* dir = +1 forward rotation, -1 transposed; acc: add into dst (else overwrite the slice). The angle table
 * (cos a, dir sin a for every t < T, i < D/2; a = t theta^(-2i/D) in double, rounded to float) is built per
 * call: T D/2 sincos, about 1% of the rotation's own cost at the engine's shapes (perf: sincos 0.08% of a
 * training step), so it is not cached between calls. */
static void rope_apply(float *dst, const float *src, size_t B, size_t T, size_t H, size_t stride, size_t off,
                       size_t D, float theta, int dir, int acc) {
    UMOE_ASSERT(D % 2 == 0 && off + D <= stride);
    size_t half = D / 2;
    if (half == 0 || B * T * H == 0) return;
    size_t bytes = 2 * T * half * sizeof(float);
    float *tab = umoe_malloc(bytes, "rope angle table"), *cs = tab, *sn = tab + T * half;
    for (size_t i = 0; i < half; i++) {
        double inv_freq = pow((double)theta, -2.0 * (double)i / (double)D);
        for (size_t t = 0; t < T; t++) {
            double sv, cv;
            sincos((double)t * inv_freq, &sv, &cv);
            cs[t * half + i] = (float)cv;
            sn[t * half + i] = (float)sv * (float)dir;
        }
    }
    rp_args a = {.dst = dst, .src = src, .cs = cs, .sn = sn, .T = T, .H = H, .stride = stride, .off = off,
                 .half = half, .acc = acc};
    nn_parallel_range(B * T * H, NN_PAR_ELEMS / (D + 1) + 1, rotate_rows, &a);
    umoe_free(tab, bytes);
}

/* the identity part outside [off, off+D) of every head row: columns [0, off) and [off + D, stride), copied or
 * added row by row over the threads (src/nn/copy.c) */
static void rope_passthrough(float *dst, const float *src, size_t rows, size_t stride, size_t off, size_t D, int acc) {
    if (stride == D) return;
    size_t tail = stride - off - D;
    if (acc) {
        nn_add_rows(dst, stride, src, stride, rows, off);
        nn_add_rows(dst + off + D, stride, src + off + D, stride, rows, tail);
    } else {
        nn_copy_rows(dst, stride, src, stride, rows, off);
        nn_copy_rows(dst + off + D, stride, src + off + D, stride, rows, tail);
    }
}

void rope_forward(float *out, const float *in, size_t B, size_t T, size_t H, size_t stride, size_t off, size_t D,
                  float theta) {
    if (out != in) rope_passthrough(out, in, B * T * H, stride, off, D, 0);
    rope_apply(out, in, B, T, H, stride, off, D, theta, +1, 0);
}

void rope_backward(float *din, const float *dout, size_t B, size_t T, size_t H, size_t stride, size_t off, size_t D,
                   float theta) {
    if (din == dout) { rope_apply(din, dout, B, T, H, stride, off, D, theta, -1, 0); return; }
    rope_passthrough(din, dout, B * T * H, stride, off, D, 1);
    rope_apply(din, dout, B, T, H, stride, off, D, theta, -1, 1);
}
