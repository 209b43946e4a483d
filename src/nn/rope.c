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
    float *dst; const float *src; const double *inv_freq; size_t B, T, H, stride, off, half; int dir, acc;
} rp_args;

/* positions [lo, hi): rotate every (b, h) row at those t */
static void rotate_positions(void *p, size_t lo, size_t hi) {
    rp_args *a = p;
    size_t half = a->half;
    for (size_t t = lo; t < hi; t++)
        for (size_t i = 0; i < half; i++) {
            double sn, cs;
            sincos((double)t * a->inv_freq[i], &sn, &cs);
            float c = (float)cs, s = (float)sn * (float)a->dir;
            for (size_t b = 0; b < a->B; b++)
                for (size_t h = 0; h < a->H; h++) {
                    size_t row = ((b * a->T + t) * a->H + h) * a->stride + a->off;
                    float x1 = a->src[row + i], x2 = a->src[row + half + i];
                    float y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
                    if (a->acc) { a->dst[row + i] += y1; a->dst[row + half + i] += y2; }
                    else { a->dst[row + i] = y1; a->dst[row + half + i] = y2; }
                }
        }
}

/* dir = +1 forward rotation, -1 transposed; acc: add into dst (else overwrite the slice). */
static void rope_apply(float *dst, const float *src, size_t B, size_t T, size_t H, size_t stride, size_t off,
                       size_t D, float theta, int dir, int acc) {
    UMOE_ASSERT(D % 2 == 0 && off + D <= stride);
    size_t half = D / 2;
    double *inv_freq = umoe_malloc((half ? half : 1) * sizeof(double), "rope frequencies");
    for (size_t i = 0; i < half; i++) inv_freq[i] = pow((double)theta, -2.0 * (double)i / (double)D);
    rp_args a = {.dst = dst, .src = src, .inv_freq = inv_freq, .B = B, .T = T, .H = H, .stride = stride, .off = off,
                 .half = half, .dir = dir, .acc = acc};
    nn_parallel_range(T, NN_PAR_ELEMS / (B * H * D + 1) + 1, rotate_positions, &a);
    umoe_free(inv_freq, (half ? half : 1) * sizeof(double));
}

/* the identity part outside [off, off+D) of every head row */
static void rope_passthrough(float *dst, const float *src, size_t rows, size_t stride, size_t off, size_t D, int acc) {
    if (stride == D) return;
    for (size_t r = 0; r < rows; r++) {
        float *d = dst + r * stride;
        const float *s = src + r * stride;
        for (size_t c = 0; c < stride; c++) {
            if (c == off) { c += D - 1; continue; }
            d[c] = acc ? d[c] + s[c] : s[c];
        }
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
