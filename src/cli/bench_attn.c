/* bench_attn.c - the attention core's efficiency against the GEMM peak, through the engine's own kernels
 * (attention_forward / attention_backward, causal, Dk = Dv = D, MHA).
 * attn_eff follows the simulator's convention (src/sim/cost_layer.c: forward core time =
 * 0.5 x core_flops / (peak x attn_eff), core_flops = 4 B T^2 H D, the full s^2 count of Megatron-LM's
 * formula): attn_eff = causal FLOPs / measured forward time / GEMM peak, causal FLOPs = 2 B H T^2 D (QK^T and
 * PV over the lower triangle, multiply-add = 2 FLOPs). The backward/forward time ratio is recorded too
 * (the simulator assumes 2.5). The same two timings at shorter sequences, T = 128, 256, 512 (quick: 128) with
 * B = 1024 / T sequences per call (the tokens of one call as in a training micro-batch), give attn_eff_seq:
 * [T, eff, backward/forward] per length, the main measurement its last point; the engine model looks up its
 * run's T there (src/sim/cost_engine.c): at T = 128 the kernel is one block of rows, with small GEMMs, and
 * ran here at 40% of its T = 1024 rate with a backward/forward ratio of 1.6 instead of 2.2.
 * Does not: time MLA or GQA variants (same kernel, other head counts; D changes the rate by 15 to 20%). */
#include <math.h>
#include <string.h>
#include "bench.h"
#include "umoe/nn.h"

typedef struct {
    float *q, *k, *v, *out, *lse, *dq, *dk, *dv, *dout;
    size_t B, T, H, D;
} attn_arg;

static void attn_fwd(void *p) {
    attn_arg *a = p;
    attention_forward(a->out, a->lse, a->q, a->k, a->v, a->B, a->T, a->H, a->H, a->D, a->D,
                      1.0f / sqrtf((float)a->D));
}

static void attn_bwd(void *p) {
    attn_arg *a = p;
    attention_backward(a->dq, a->dk, a->dv, a->dout, a->q, a->k, a->v, a->out, a->lse, a->B, a->T, a->H, a->H, a->D,
                       a->D, 1.0f / sqrtf((float)a->D));
}

#define BENCH_ATTN_SEQ_TOKENS 1024 /* B x T of every attn_eff_seq point */

/* forward and backward timings of one (B, T) shape, buffers sized for it; eff and ratio as bench_attn_run */
static void time_shape(const bench_run *run, attn_arg a, double budget, bench_stat *fwd, bench_stat *bwd) {
    size_t n = a.B * a.T * a.H * a.D, nl = a.B * a.H * a.T;
    float **bufs[] = {&a.q, &a.k, &a.v, &a.out, &a.dq, &a.dk, &a.dv, &a.dout};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        *bufs[i] = umoe_calloc(n, sizeof(float), "bench attention");
        if (i < 3 || i == 7) bench_fill(*bufs[i], n, 10 + i);
    }
    a.lse = umoe_calloc(nl, sizeof(float), "bench attention lse");
    bench_measure(run, attn_fwd, &a, budget, 3, fwd);
    bench_measure(run, attn_bwd, &a, budget, 3, bwd);
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) umoe_free(*bufs[i], n * sizeof(float));
    umoe_free(a.lse, nl * sizeof(float));
}

static double clamp_eff(double e, int *clamped) {
    if (e > 1) { *clamped = 1; return 1; } /* the loader's range is [1e-3, 1] */
    if (e < 1e-3) { *clamped = 1; return 1e-3; }
    return e;
}

umoe_status bench_attn_run(const bench_run *run, double gemm_peak, bench_attn_result *r) {
    memset(r, 0, sizeof *r);
    attn_arg a = {.B = 1, .T = run->quick ? 256 : 1024, .H = 4, .D = 64};
    double budget = run->quick ? 0.02 : 0.25;
    r->B = a.B;
    r->T = a.T;
    r->H = a.H;
    r->D = a.D;
    r->causal_flops = 2.0 * a.B * a.H * (double)a.T * a.T * a.D;
    LOG_INFO("bench: attention B=%zu T=%zu H=%zu D=%zu (causal, %.3g FLOP)", a.B, a.T, a.H, a.D, r->causal_flops);
    time_shape(run, a, budget, &r->fwd, &r->bwd);
    r->eff = clamp_eff(r->causal_flops / r->fwd.med / gemm_peak, &r->clamped);
    r->bwd_over_fwd = r->bwd.med / r->fwd.med;
    LOG_INFO("bench: attention forward %.2f GFLOP/s, attn_eff %.3f, backward/forward %.2f",
             r->causal_flops / r->fwd.med / 1e9, r->eff, r->bwd_over_fwd);
    /* shorter sequences, the same tokens per call; the main measurement closes the table */
    for (size_t T = 128; T < a.T && r->n_seq < 7; T *= 2) {
        attn_arg s = a;
        s.T = T;
        s.B = BENCH_ATTN_SEQ_TOKENS / T;
        int k = r->n_seq++;
        r->seq_T[k] = s.T;
        r->seq_B[k] = s.B;
        time_shape(run, s, budget / 2, &r->seq_fwd[k], &r->seq_bwd[k]);
        double fl = 2.0 * s.B * s.H * (double)s.T * s.T * s.D;
        r->seq_eff[k] = clamp_eff(fl / r->seq_fwd[k].med / gemm_peak, &r->clamped);
        r->seq_bwd_over_fwd[k] = r->seq_bwd[k].med / r->seq_fwd[k].med;
        LOG_INFO("bench: attention B=%zu T=%zu: %.2f GFLOP/s, eff %.3f, backward/forward %.2f", s.B, s.T,
                 fl / r->seq_fwd[k].med / 1e9, r->seq_eff[k], r->seq_bwd_over_fwd[k]);
    }
    int k = r->n_seq++;
    r->seq_T[k] = a.T;
    r->seq_B[k] = a.B;
    r->seq_fwd[k] = r->fwd;
    r->seq_bwd[k] = r->bwd;
    r->seq_eff[k] = r->eff;
    r->seq_bwd_over_fwd[k] = r->bwd_over_fwd;
    return UMOE_OK;
}
