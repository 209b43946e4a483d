/* nn.h - the engine's kernels (float32, row-major, contiguous). Convention (DESIGN.md):
 *   <op>_forward(out, in, weights..., dims)      overwrites out
 *   <op>_backward(dinp, dweight, dout, saved..., dims)   ACCUMULATES (+=) into every d* buffer; a NULL
 *                                                         d* pointer means "not needed"
 * Each optimised kernel has a _naive twin with the same signature that the tests compare against.
 * Dimension letters: N rows (= B*T tokens), C in-features, O out-features, T seq, H heads, D head dim,
 * E experts, K top-k, F FFN width, V vocab. Threads: OpenMP inside a kernel, BLAS single-threaded inside
 * our own parallel regions (never nested). */
#ifndef UMOE_NN_H
#define UMOE_NN_H
#include <stddef.h>
#include <stdint.h>

/* out (N,O) = in (N,C) @ w(O,C)^T + bias (O) [bias may be NULL]. OpenBLAS sgemm (with BLAS's own threads: do not
 * call from inside your own OpenMP region unless BLAS is single-threaded there). N = 0 does nothing. */
void matmul_forward(float *out, const float *in, const float *w, const float *bias, size_t N, size_t C, size_t O);
void matmul_forward_naive(float *out, const float *in, const float *w, const float *bias, size_t N, size_t C, size_t O);
/* din (N,C) += dout @ w; dw (O,C) += dout^T @ in; dbias (O) += sum_rows dout. */
void matmul_backward(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                     size_t N, size_t C, size_t O);
/* The same with din overwritten (din = dout @ w) instead of accumulated; dw and dbias still accumulate. */
void matmul_backward_set(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                         size_t N, size_t C, size_t O);
void matmul_backward_naive(float *din, float *dw, float *dbias, const float *dout, const float *in, const float *w,
                           size_t N, size_t C, size_t O);

/* RMSNorm: out = in / sqrt(mean(in^2) + eps) * w. rstd (N) saved for backward. */
void rmsnorm_forward(float *out, float *rstd, const float *in, const float *w, size_t N, size_t C, float eps);
void rmsnorm_backward(float *din, float *dw, const float *dout, const float *in, const float *w, const float *rstd,
                      size_t N, size_t C);

/* RoPE, rotate-half convention (HF Llama/DeepSeek): for each head vector x of dim D (even), split into halves
 * x1 = x[0:D/2], x2 = x[D/2:D]; with angle a_i = pos * theta^(-2i/D):
 *   out1 = x1 cos a - x2 sin a ;  out2 = x2 cos a + x1 sin a.
 * x is (B, T, H, stride) and the rotary part is the D elements starting at column `off` of each head row
 * (so MLA's rope slice can be rotated in place). pos = t. In-place allowed (out == in). The op is the identity
 * outside the slice: forward with out != in copies the other columns; backward adds dout into din there (so a
 * nope part passes through). Backward with din == dout transforms the buffer in place (overwrites the slice). */
void rope_forward(float *out, const float *in, size_t B, size_t T, size_t H, size_t stride, size_t off, size_t D,
                  float theta);
void rope_backward(float *din, const float *dout, size_t B, size_t T, size_t H, size_t stride, size_t off, size_t D,
                   float theta);

/* Causal attention. q (B,T,H,Dk), k (B,T,Hk,Dk), v (B,T,Hk,Dv), H % Hk == 0 (GQA: head h uses kv head
 * h / (H/Hk)); out (B,T,H,Dv); lse (B,H,T) log-sum-exp of the scaled scores, saved for backward.
 * scale usually 1/sqrt(Dk). MLA uses Dk != Dv and Hk == H. */
void attention_forward(float *out, float *lse, const float *q, const float *k, const float *v, size_t B, size_t T,
                       size_t H, size_t Hk, size_t Dk, size_t Dv, float scale);
void attention_forward_naive(float *out, float *lse, const float *q, const float *k, const float *v, size_t B,
                             size_t T, size_t H, size_t Hk, size_t Dk, size_t Dv, float scale);
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                        const float *v, const float *out, const float *lse, size_t B, size_t T, size_t H, size_t Hk,
                        size_t Dk, size_t Dv, float scale);
void attention_backward_naive(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                              const float *v, const float *out, const float *lse, size_t B, size_t T, size_t H,
                              size_t Hk, size_t Dk, size_t Dv, float scale);

/* SwiGLU: out = silu(g) * u, elementwise over n values. */
void swiglu_forward(float *out, const float *g, const float *u, size_t n);
void swiglu_backward(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);
/* The same over a fused buffer gu (N, 2F) whose rows are [gate (F) | up (F)]: out (N, F); dgu (N, 2F) +=. */
void swiglu_fused_forward(float *out, const float *gu, size_t N, size_t F);
void swiglu_fused_backward(float *dgu, const float *dout, const float *gu, size_t N, size_t F);
/* The same, overwriting dgu (=) instead of adding to it: no memset before it. */
void swiglu_fused_backward_set(float *dgu, const float *dout, const float *gu, size_t N, size_t F);

/* Router. logits (N,E) -> scores (N,E) (softmax over E, or sigmoid). Selection uses scores + bias (bias (E) may be
 * NULL; aux-loss-free balancing); weights use the unbiased scores: w_j = score[idx_j], renormalised over the
 * top-k when norm_topk (w_j / sum w), then multiplied by scale. Ties broken by the lower expert id.
 * idx (N,K) int32, w (N,K). */
enum { NN_SCORE_SOFTMAX = 0, NN_SCORE_SIGMOID = 1 };
void router_forward(float *scores, int32_t *idx, float *w, const float *logits, const float *bias, size_t N, size_t E,
                    size_t K, int score_kind, int norm_topk, float scale);
/* dlogits (N,E) += d(loss)/d(logits) through w (given dw (N,K)) and through dscores (N,E) (may be NULL; used by
 * the aux loss which reads the scores directly). */
void router_backward(float *dlogits, const float *dw, const float *dscores, const float *scores, const int32_t *idx,
                     const float *w, size_t N, size_t E, size_t K, int score_kind, int norm_topk, float scale);

/* Grouped selection (MoGE, Pangu Pro MoE arXiv 2505.21411; src/nn/router_grouped.c): overwrite idx (N,K) and
 * w (N,K) of router_forward with K/G experts from each of G equal groups of consecutive expert ids, chosen on
 * scores + bias (scores (N,E) from router_forward: softmax over all E). Same weight rule as router_forward, so
 * router_backward applies. Requires E % G == 0 and K % G == 0. */
void router_grouped_select(int32_t *idx, float *w, const float *scores, const float *bias, size_t N, size_t E,
                           size_t K, size_t G, int norm_topk, float scale);

/* MoE dispatch bookkeeping (counting sort of token-assignments by expert, stable in assignment order).
 * idx (N,K): assignment a = n*K + j goes to expert idx[a]. counts (E), offsets (E+1), order (N*K): order[r] =
 * the assignment placed at row r of the grouped buffer (rows of expert e are offsets[e]..offsets[e+1]-1). */
void moe_group(int32_t *counts, int32_t *offsets, int32_t *order, const int32_t *idx, size_t N, size_t K, size_t E);
/* rows (N*K, C): rows[r] = x[order[r] / K]. Backward: dx[order[r]/K] += drows[r]. */
void moe_permute_forward(float *rows, const float *x, const int32_t *order, size_t NK, size_t K, size_t C);
void moe_permute_backward(float *dx, const float *drows, const int32_t *order, size_t NK, size_t K, size_t C);
/* out (N,C) += sum_j w[a] * rows[row_of(a)], row_of = inverse of order. Backward: drows[r] += w[a] * dout[n];
 * dw[a] += dot(dout[n], rows[r]). out accumulates so shared experts/residuals can share the buffer. */
void moe_unpermute_forward(float *out, const float *rows, const float *w, const int32_t *order, size_t NK, size_t K,
                           size_t C);
void moe_unpermute_backward(float *drows, float *dw, const float *dout, const float *rows, const float *w,
                            const int32_t *order, size_t NK, size_t K, size_t C);

/* Grouped expert GEMM: for each expert e, rows offsets[e]..offsets[e+1]-1 of in (N*K, C) times w_e^T where
 * w_e = w + e*wstride is (O,C): out rows = in rows @ w_e^T (overwrites out's rows; experts with no rows are
 * skipped). Backward: din rows += dout rows @ w_e; dw_e (= dw + e*wstride) += dout rows^T @ in rows. Experts run
 * in parallel (BLAS single-threaded each) when E >= OpenMP threads, else in turn with BLAS threads. */
void moe_matmul_forward(float *out, const float *in, const float *w, size_t wstride, const int32_t *offsets, size_t E,
                        size_t C, size_t O);
void moe_matmul_backward(float *din, float *dw, const float *dout, const float *in, const float *w, size_t wstride,
                         const int32_t *offsets, size_t E, size_t C, size_t O);
/* The same, overwriting din rows offsets[0]..offsets[E]-1 (=) instead of adding (empty experts have no rows). */
void moe_matmul_backward_set(float *din, float *dw, const float *dout, const float *in, const float *w,
                             size_t wstride, const int32_t *offsets, size_t E, size_t C, size_t O);

/* Embedding: out (N,C) = wte[tokens[n]]; backward dwte[tokens[n]] += dout[n]. */
void embedding_forward(float *out, const int32_t *tokens, const float *wte, size_t N, size_t C);
void embedding_backward(float *dwte, const float *dout, const int32_t *tokens, size_t N, size_t C);

/* Cross-entropy of logits (N,V) against targets (N); losses (N) natural-log. Backward: dlogits += (softmax -
 * onehot) * dloss[n]. targets < 0 are ignored (loss 0, no grad). */
void crossentropy_forward(float *losses, const float *logits, const int32_t *targets, size_t N, size_t V);
void crossentropy_backward(float *dlogits, const float *dloss, const float *logits, const int32_t *targets, size_t N,
                           size_t V);

/* AdamW with decoupled weight decay (Loshchilov & Hutter 2019), bias-corrected; t = step starting at 1.
 * Every element is decayed by wd (call it per tensor with wd = 0 for tensors that must not decay);
 * p -= lr * (mhat/(sqrt(vhat)+eps) + wd*p). */
void adamw_update(float *p, const float *g, float *m, float *v, size_t n, float lr, float beta1, float beta2,
                  float eps, float wd, int t);
/* The optimizer pass of a whole model: AdamW (as above) over n_seg tensors of one flat block, segment i being
 * elements seg[i].off .. seg[i].off + seg[i].n - 1 of p, g, m and v, decayed by seg[i].wd, all in one pass over
 * the threads. The gradient used is the float product g * gscale (the global-norm clip's scale, 1 = none: the
 * same bits as scaling g in place first); zero_grad != 0 sets each segment's g to 0 after reading it, else g is
 * only read. Same bits as adamw_update_many_naive (a scaled copy of g, adamw_update, memset, tensor by tensor)
 * for any thread count. */
typedef struct { size_t off, n; float wd; } adamw_segment;
void adamw_update_many(float *p, float *g, float *m, float *v, const adamw_segment *seg, int n_seg, float lr,
                       float beta1, float beta2, float eps, int t, float gscale, int zero_grad);
void adamw_update_many_naive(float *p, float *g, float *m, float *v, const adamw_segment *seg, int n_seg, float lr,
                             float beta1, float beta2, float eps, int t, float gscale, int zero_grad);

/* Sum of squares (double accumulation), for the global gradient norm. */
double nn_sumsq(const float *x, size_t n);
/* x *= s in place, elementwise over the threads (the same bits for any thread count) */
void nn_scale_inplace(float *x, size_t n, float s);

/* Data movement over the threads (src/nn/copy.c; the same bits for any thread count), each with a serial
 * `_naive` twin: x[0..n) = 0; a (rows, cols) block copied between row strides ld_src and ld_dst (buffers do
 * not overlap); dst rows += src rows; out = x + y elementwise (out may be x or y). */
void nn_zero(float *x, size_t n);
void nn_copy_rows(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols);
void nn_add_rows(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols);
void nn_add(float *out, const float *x, const float *y, size_t n);
void nn_zero_naive(float *x, size_t n);
void nn_copy_rows_naive(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols);
void nn_add_rows_naive(float *dst, size_t ld_dst, const float *src, size_t ld_src, size_t rows, size_t cols);
void nn_add_naive(float *out, const float *x, const float *y, size_t n);

/* BLAS in use: the OpenBLAS kernel family ("SkylakeX", "Haswell", ...; "none" without BLAS). OpenBLAS 0.3.21
 * does not recognise recent Xeons (e.g. family 6 model 207) and falls back to its SSE3 "Prescott" kernels,
 * about 7x slower than its AVX-512 ones on this machine. nn_blas_better_coretype returns the value for the
 * environment variable OPENBLAS_CORETYPE that selects the right kernels ("SkylakeX" with AVX-512, "Haswell"
 * with AVX2) when the kernel in use is an older family than the CPU supports, else NULL. OpenBLAS reads the
 * variable only when it is loaded, so a program sets it and re-executes itself (bench/bench_nn.c does). */
const char *nn_blas_corename(void);
const char *nn_blas_better_coretype(void);
#endif
