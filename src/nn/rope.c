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

/* dir = +1 forward rotation, -1 transposed; acc: add into dst (else overwrite the slice). */
static void rope_apply(float *dst, const float *src, size_t B, size_t T, size_t H, size_t stride, size_t off,
                       size_t D, float theta, int dir, int acc) {
    UMOE_ASSERT(D % 2 == 0 && off + D <= stride);
    size_t half = D / 2;
    long tt = (long)T;
#pragma omp parallel for schedule(static) if (!nn_in_parallel() && B * T * H * D > 65536)
    for (long t = 0; t < tt; t++) {
        for (size_t i = 0; i < half; i++) {
            double a = (double)t * pow((double)theta, -2.0 * (double)i / (double)D);
            float c = (float)cos(a), s = (float)sin(a) * (float)dir;
            for (size_t b = 0; b < B; b++)
                for (size_t h = 0; h < H; h++) {
                    size_t row = ((b * T + (size_t)t) * H + h) * stride + off;
                    float x1 = src[row + i], x2 = src[row + half + i];
                    float y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
                    if (acc) { dst[row + i] += y1; dst[row + half + i] += y2; }
                    else { dst[row + i] = y1; dst[row + half + i] = y2; }
                }
        }
    }
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
