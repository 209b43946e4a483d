/* bench_attn.c - the attention core's efficiency against the GEMM peak, through the engine's own kernels
 * (attention_forward / attention_backward, causal, Dk = Dv = D, MHA).
 * attn_eff follows the simulator's convention (src/sim/cost_layer.c: forward core time =
 * 0.5 x core_flops / (peak x attn_eff), core_flops = 4 B T^2 H D, the full s^2 count of Megatron-LM's
 * formula): attn_eff = causal FLOPs / measured forward time / GEMM peak, causal FLOPs = 2 B H T^2 D (QK^T and
 * PV over the lower triangle, multiply-add = 2 FLOPs). The backward/forward time ratio is recorded too
 * (the simulator assumes 2.5). Does not: time MLA or GQA variants (same kernel, other head counts). */
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

umoe_status bench_attn_run(const bench_run *run, double gemm_peak, bench_attn_result *r) {
    memset(r, 0, sizeof *r);
    attn_arg a = {.B = 1, .T = run->quick ? 256 : 1024, .H = 4, .D = 64};
    size_t n = a.B * a.T * a.H * a.D, nl = a.B * a.H * a.T;
    float **bufs[] = {&a.q, &a.k, &a.v, &a.out, &a.dq, &a.dk, &a.dv, &a.dout};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        *bufs[i] = umoe_calloc(n, sizeof(float), "bench attention");
        if (i < 3 || i == 7) bench_fill(*bufs[i], n, 10 + i);
    }
    a.lse = umoe_calloc(nl, sizeof(float), "bench attention lse");
    double budget = run->quick ? 0.02 : 0.25;
    r->B = a.B;
    r->T = a.T;
    r->H = a.H;
    r->D = a.D;
    r->causal_flops = 2.0 * a.B * a.H * (double)a.T * a.T * a.D;
    LOG_INFO("bench: attention B=%zu T=%zu H=%zu D=%zu (causal, %.3g FLOP)", a.B, a.T, a.H, a.D, r->causal_flops);
    bench_measure(run, attn_fwd, &a, budget, 3, &r->fwd);
    bench_measure(run, attn_bwd, &a, budget, 3, &r->bwd);
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) umoe_free(*bufs[i], n * sizeof(float));
    umoe_free(a.lse, nl * sizeof(float));

    r->eff = r->causal_flops / r->fwd.med / gemm_peak;
    if (r->eff > 1) { /* the loader's range is [1e-3, 1] */
        r->eff = 1;
        r->clamped = 1;
    } else if (r->eff < 1e-3) {
        r->eff = 1e-3;
        r->clamped = 1;
    }
    r->bwd_over_fwd = r->bwd.med / r->fwd.med;
    LOG_INFO("bench: attention forward %.2f GFLOP/s, attn_eff %.3f, backward/forward %.2f",
             r->causal_flops / r->fwd.med / 1e9, r->eff, r->bwd_over_fwd);
    return UMOE_OK;
}
