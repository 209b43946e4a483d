/* attention.c - causal scaled-dot-product attention (Vaswani et al. 2017, eq. 1) with grouped kv heads
 * (GQA, Ainslie et al. 2023: head h reads kv head h / (H/Hk)) and Dk != Dv (MLA, DeepSeek-V2 sec. 2.1).
 *   s_ij = scale * q_i . k_j (j <= i),  lse_i = log sum_j exp(s_ij),  p_ij = exp(s_ij - lse_i),
 *   out_i = sum_j p_ij v_j.
 * Backward (the FlashAttention-2 recurrences, Dao 2023, Algorithm 2, without tiling of the kv axis):
 *   dp_ij = dout_i . v_j,  D_i = dout_i . out_i,  ds_ij = p_ij (dp_ij - D_i),
 *   dq_i += scale sum_j ds_ij k_j,  dk_j += scale sum_i ds_ij q_i,  dv_j += sum_i p_ij dout_i,
 * with p recomputed from the saved lse (no (T,T) tensor is kept between forward and backward).
 * Blocking: queries in blocks of NN_ATTN_BLOCK rows; block [i0,i1) only needs keys [0,i1), so the scores
 * of a block are one GEMM (m x i1) and the output one GEMM, through nn_gemm (sgemm). Softmax is two-pass
 * (max, then exp-sum) per row, with the vectorisable nn_expf. Parallel over (batch, head, block) forward and over (batch, kv head)
 * backward, which owns disjoint slices of dq, dk and dv; BLAS is single-threaded inside those regions.
 * Layouts: q (B,T,H,Dk), k (B,T,Hk,Dk), v (B,T,Hk,Dv), out (B,T,H,Dv), lse (B,H,T).
 * Does not: dropout, sliding windows, padding masks (all sequences are full length). */
#include <math.h>
#include <string.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#include "nn_internal.h"

#define NN_ATTN_BLOCK 128

/* Rows [i0, i0+m) of S (ld T) hold scale q.k for keys [0, i0+m); turn each row i into p_ij (j <= i), zero
 * beyond the diagonal. Forward (lse_out): one pass of exp(s - max) into the row, lse = max + log(sum),
 * then a scale by 1/sum. Backward (lse_in): p = exp(s - lse). exp is nn_expf (vectorised). */
static void softmax_rows(float *S, size_t ld, size_t i0, size_t m, float *lse_out, const float *lse_in) {
    for (size_t r = 0; r < m; r++) {
        float *s = S + r * ld;
        size_t n = i0 + r + 1; /* keys 0..i */
        if (lse_out) {
            float mx = s[0];
#pragma omp simd reduction(max : mx)
            for (size_t j = 0; j < n; j++) mx = s[j] > mx ? s[j] : mx;
            float sum = (float)nn_sum_exp(s, mx, s, n);
            lse_out[i0 + r] = mx + logf(sum);
            float inv = 1.0f / sum;
#pragma omp simd
            for (size_t j = 0; j < n; j++) s[j] *= inv;
        } else {
            float l = lse_in[i0 + r];
#pragma omp simd
            for (size_t j = 0; j < n; j++) s[j] = nn_expf(s[j] - l);
        }
        for (size_t j = n; j < i0 + m; j++) s[j] = 0.0f;
    }
}

void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, size_t B, size_t T,
                       size_t H, size_t Hk, size_t Dk, size_t Dv, float scale) {
    UMOE_ASSERT(Hk > 0 && H % Hk == 0);
    size_t G = H / Hk, nblk = (T + NN_ATTN_BLOCK - 1) / NN_ATTN_BLOCK;
    long tasks = (long)(B * H * nblk);
    int par = !nn_in_parallel() && tasks > 1;
    int saved = par ? nn_blas_solo_begin() : 1;
#pragma omp parallel if (par)
    {
        size_t bytes = (size_t)NN_ATTN_BLOCK * T * sizeof(float);
        float *S = umoe_malloc(bytes, "attention scores block");
#pragma omp for schedule(dynamic)
        for (long task = 0; task < tasks; task++) {
            size_t blk = (size_t)task % nblk, bh = (size_t)task / nblk, h = bh % H, b = bh / H, g = h / G;
            size_t i0 = blk * NN_ATTN_BLOCK, m = T - i0 < NN_ATTN_BLOCK ? T - i0 : NN_ATTN_BLOCK, n = i0 + m;
            const float *qp = q + ((b * T + i0) * H + h) * Dk;
            const float *kp = k + (b * T * Hk + g) * Dk;
            const float *vp = v + (b * T * Hk + g) * Dv;
            float *op = out + ((b * T + i0) * H + h) * Dv;
            nn_gemm(0, 1, m, n, Dk, scale, qp, H * Dk, kp, Hk * Dk, 0.0f, S, T);
            softmax_rows(S, T, i0, m, lse + (b * H + h) * T, NULL);
            nn_gemm(0, 0, m, Dv, n, 1.0f, S, T, vp, Hk * Dv, 0.0f, op, H * Dv);
        }
        umoe_free(S, bytes);
    }
    if (par) nn_blas_solo_end(saved);
}

/* All heads of kv head g in batch b: their dq rows and the (b,g) slices of dk, dv. */
static void backward_group(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, const float *out, const float *lse, size_t b, size_t g, size_t T, size_t H,
                           size_t Hk, size_t Dk, size_t Dv, float scale, float *P, float *dS) {
    size_t G = H / Hk;
    const float *kp = k + (b * T * Hk + g) * Dk, *vp = v + (b * T * Hk + g) * Dv;
    float *dkp = dk ? dk + (b * T * Hk + g) * Dk : NULL, *dvp = dv ? dv + (b * T * Hk + g) * Dv : NULL;
    for (size_t h = g * G; h < (g + 1) * G; h++)
        for (size_t i0 = 0; i0 < T; i0 += NN_ATTN_BLOCK) {
            size_t m = T - i0 < NN_ATTN_BLOCK ? T - i0 : NN_ATTN_BLOCK, n = i0 + m;
            const float *qp = q + ((b * T + i0) * H + h) * Dk, *dop = dout + ((b * T + i0) * H + h) * Dv;
            const float *op = out + ((b * T + i0) * H + h) * Dv;
            nn_gemm(0, 1, m, n, Dk, scale, qp, H * Dk, kp, Hk * Dk, 0.0f, P, T);
            softmax_rows(P, T, i0, m, NULL, lse + (b * H + h) * T);
            if (dvp) nn_gemm(1, 0, n, Dv, m, 1.0f, P, T, dop, H * Dv, 1.0f, dvp, Hk * Dv);
            if (!dq && !dkp) continue;
            nn_gemm(0, 1, m, n, Dv, 1.0f, dop, H * Dv, vp, Hk * Dv, 0.0f, dS, T); /* dp */
            for (size_t r = 0; r < m; r++) {
                double Di = 0.0;
                for (size_t d = 0; d < Dv; d++) Di += (double)dop[r * H * Dv + d] * op[r * H * Dv + d];
                float *ds = dS + r * T;
                const float *p = P + r * T;
                float di = (float)Di;
#pragma omp simd
                for (size_t j = 0; j < n; j++) ds[j] = p[j] * (ds[j] - di);
            }
            if (dq) nn_gemm(0, 0, m, Dk, n, scale, dS, T, kp, Hk * Dk, 1.0f, dq + ((b * T + i0) * H + h) * Dk, H * Dk);
            if (dkp) nn_gemm(1, 0, n, Dk, m, scale, dS, T, qp, H * Dk, 1.0f, dkp, Hk * Dk);
        }
}

void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                        const float *v, const float *out, const float *lse, size_t B, size_t T, size_t H, size_t Hk,
                        size_t Dk, size_t Dv, float scale) {
    UMOE_ASSERT(Hk > 0 && H % Hk == 0);
    if (!dq && !dk && !dv) return;
    long tasks = (long)(B * Hk);
    int threads = 1;
#ifdef UMOE_OPENMP
    threads = omp_get_max_threads();
#endif
    /* few (b, kv head) tasks: run them one by one and let BLAS use its threads inside each GEMM */
    int par = !nn_in_parallel() && tasks >= threads && threads > 1;
    int saved = par ? nn_blas_solo_begin() : 1;
#pragma omp parallel if (par)
    {
        size_t bytes = (size_t)NN_ATTN_BLOCK * T * sizeof(float);
        float *P = umoe_malloc(bytes, "attention probs block"), *dS = umoe_malloc(bytes, "attention dS block");
#pragma omp for schedule(dynamic)
        for (long task = 0; task < tasks; task++)
            backward_group(dq, dk, dv, dout, q, k, v, out, lse, (size_t)task / Hk, (size_t)task % Hk, T, H, Hk, Dk,
                           Dv, scale, P, dS);
        umoe_free(P, bytes);
        umoe_free(dS, bytes);
    }
    if (par) nn_blas_solo_end(saved);
}

/* ---- naive twins: one (b, h, i) at a time, double accumulation ---- */

void attention_forward_naive(float *out, float *lse, const float *q, const float *k, const float *v, size_t B,
                             size_t T, size_t H, size_t Hk, size_t Dk, size_t Dv, float scale) {
    size_t G = H / Hk;
    double *s = umoe_malloc(T * sizeof(double), "naive scores");
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < T; i++) {
                const float *qi = q + ((b * T + i) * H + h) * Dk;
                double mx = -INFINITY, sum = 0.0;
                for (size_t j = 0; j <= i; j++) {
                    const float *kj = k + ((b * T + j) * Hk + h / G) * Dk;
                    double d = 0.0;
                    for (size_t c = 0; c < Dk; c++) d += (double)qi[c] * kj[c];
                    s[j] = d * scale;
                    mx = s[j] > mx ? s[j] : mx;
                }
                for (size_t j = 0; j <= i; j++) sum += exp(s[j] - mx);
                double l = mx + log(sum);
                lse[(b * H + h) * T + i] = (float)l;
                for (size_t j = 0; j <= i; j++) s[j] = exp(s[j] - l); /* probabilities */
                float *oi = out + ((b * T + i) * H + h) * Dv;
                for (size_t c = 0; c < Dv; c++) {
                    double acc = 0.0;
                    for (size_t j = 0; j <= i; j++) acc += s[j] * v[((b * T + j) * Hk + h / G) * Dv + c];
                    oi[c] = (float)acc;
                }
            }
    umoe_free(s, T * sizeof(double));
}

void attention_backward_naive(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                              const float *v, const float *out, const float *lse, size_t B, size_t T, size_t H,
                              size_t Hk, size_t Dk, size_t Dv, float scale) {
    size_t G = H / Hk;
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < T; i++) {
                const float *qi = q + ((b * T + i) * H + h) * Dk, *doi = dout + ((b * T + i) * H + h) * Dv;
                const float *oi = out + ((b * T + i) * H + h) * Dv;
                double Di = 0.0, l = lse[(b * H + h) * T + i];
                for (size_t c = 0; c < Dv; c++) Di += (double)doi[c] * oi[c];
                for (size_t j = 0; j <= i; j++) {
                    size_t kv = (b * T + j) * Hk + h / G;
                    const float *kj = k + kv * Dk, *vj = v + kv * Dv;
                    double sc = 0.0, dp = 0.0;
                    for (size_t c = 0; c < Dk; c++) sc += (double)qi[c] * kj[c];
                    double p = exp(sc * scale - l);
                    for (size_t c = 0; c < Dv; c++) dp += (double)doi[c] * vj[c];
                    double ds = p * (dp - Di);
                    if (dq) for (size_t c = 0; c < Dk; c++) dq[((b * T + i) * H + h) * Dk + c] += (float)(scale * ds * kj[c]);
                    if (dk) for (size_t c = 0; c < Dk; c++) dk[kv * Dk + c] += (float)(scale * ds * qi[c]);
                    if (dv) for (size_t c = 0; c < Dv; c++) dv[kv * Dv + c] += (float)(p * doi[c]);
                }
            }
}
