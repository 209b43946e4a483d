/* bench_nn.c - speed of the engine's kernels on this machine (a benchmark, not a test: prints figures,
 * asserts nothing). For 1 and 2 threads (OpenMP and OpenBLAS set together) it prints achieved GFLOP/s of
 *   - the machine's sgemm peak: a large square sgemm (M = N = K = 2048);
 *   - matmul forward / backward at an engine-like shape (N = 4096 tokens, C = 512, O = 1536);
 *   - a whole routed MoE FFN layer, forward and forward+backward (router, counting sort, permute, per expert
 *     SwiGLU gate/up/down matmuls on its contiguous rows, unpermute), hidden C = 512, expert width F = 1024,
 *     N = 4096 tokens, E = 16 experts, top-2; FLOPs counted are the expert GEMMs only (2*N*K*3*C*F forward,
 *     twice that backward), time is the whole layer, so the ratio to peak is what the engine really gets;
 *   - causal attention forward / backward, B = 1, T = 1024, H = 8, Dk = Dv = 64; FLOPs counted for the causal
 *     half (forward 2*B*H*T*(T+1)/2*(Dk+Dv), backward 2x forward for the GEMMs it recomputes plus dq/dk/dv:
 *     counted as 2.5x forward, as FlashAttention-2 does).
 * Each figure is the best of repeated runs lasting at least BENCH_MIN_S seconds.
 * Usage: build/bench/bench_nn [threads...]   (default: 1 2) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#ifdef UMOE_OPENMP
#include <omp.h>
#endif
#ifdef UMOE_BLAS
#include <cblas.h>
#endif

#define BENCH_MIN_S 0.5

static void set_threads(int t) {
#ifdef UMOE_OPENMP
    omp_set_num_threads(t);
#endif
#ifdef UMOE_BLAS
    openblas_set_num_threads(t);
#endif
    (void)t;
}

typedef void (*bench_fn)(void *ctx);
/* best seconds per call */
static double best_time(bench_fn f, void *ctx) {
    f(ctx); /* warm-up */
    double best = 1e30, start = umoe_now();
    int reps = 0;
    while (reps < 2 || umoe_now() - start < BENCH_MIN_S) {
        double t0 = umoe_now();
        f(ctx);
        double dt = umoe_now() - t0;
        best = dt < best ? dt : best;
        reps++;
    }
    return best;
}

static float *randv(umoe_rng *r, size_t n, float s) {
    float *x = umoe_malloc(n * sizeof(float), "bench tensor");
    for (size_t i = 0; i < n; i++) x[i] = (float)(s * (2 * umoe_rng_uniform(r) - 1));
    return x;
}

/* ---- square sgemm peak and matmul ---- */
typedef struct { float *a, *b, *c, *da, *db; size_t N, C, O; } mm_ctx;
static void run_mm_fwd(void *p) { mm_ctx *m = p; matmul_forward(m->c, m->a, m->b, NULL, m->N, m->C, m->O); }
static void run_mm_bwd(void *p) { mm_ctx *m = p; matmul_backward(m->da, m->db, NULL, m->c, m->a, m->b, m->N, m->C, m->O); }

/* ---- MoE layer ---- */
typedef struct {
    size_t N, C, F, E, K;
    float *x, *wr, *logits, *scores, *w, *rows, *g, *u, *a, *h, *y;         /* forward */
    float *Wg, *Wu, *Wd;                                                     /* (E,F,C), (E,F,C), (E,C,F) */
    float *dy, *dh, *da, *dg, *du, *drows, *dx, *dWg, *dWu, *dWd, *dw;        /* backward */
    int32_t *idx, *counts, *offsets, *order;
} moe_ctx;

static void moe_fwd(moe_ctx *m) {
    size_t N = m->N, C = m->C, F = m->F, E = m->E, K = m->K, NK = N * K;
    matmul_forward(m->logits, m->x, m->wr, NULL, N, C, E);
    router_forward(m->scores, m->idx, m->w, m->logits, NULL, N, E, K, NN_SCORE_SOFTMAX, 1, 1.0f);
    moe_group(m->counts, m->offsets, m->order, m->idx, N, K, E);
    moe_permute_forward(m->rows, m->x, m->order, NK, K, C);
    for (size_t e = 0; e < E; e++) {
        size_t o = (size_t)m->offsets[e], n = (size_t)m->counts[e];
        matmul_forward(m->g + o * F, m->rows + o * C, m->Wg + e * F * C, NULL, n, C, F);
        matmul_forward(m->u + o * F, m->rows + o * C, m->Wu + e * F * C, NULL, n, C, F);
    }
    swiglu_forward(m->a, m->g, m->u, NK * F);
    for (size_t e = 0; e < E; e++) {
        size_t o = (size_t)m->offsets[e], n = (size_t)m->counts[e];
        matmul_forward(m->h + o * C, m->a + o * F, m->Wd + e * C * F, NULL, n, F, C);
    }
    memset(m->y, 0, N * C * sizeof(float));
    moe_unpermute_forward(m->y, m->h, m->w, m->order, NK, K, C);
}

static void moe_bwd(moe_ctx *m) {
    size_t N = m->N, C = m->C, F = m->F, E = m->E, K = m->K, NK = N * K;
    memset(m->dh, 0, NK * C * sizeof(float)); memset(m->da, 0, NK * F * sizeof(float));
    memset(m->dg, 0, NK * F * sizeof(float)); memset(m->du, 0, NK * F * sizeof(float));
    memset(m->drows, 0, NK * C * sizeof(float)); memset(m->dw, 0, NK * sizeof(float));
    moe_unpermute_backward(m->dh, m->dw, m->dy, m->h, m->w, m->order, NK, K, C);
    for (size_t e = 0; e < E; e++) {
        size_t o = (size_t)m->offsets[e], n = (size_t)m->counts[e];
        matmul_backward(m->da + o * F, m->dWd + e * C * F, NULL, m->dh + o * C, m->a + o * F, m->Wd + e * C * F, n, F, C);
    }
    swiglu_backward(m->dg, m->du, m->da, m->g, m->u, NK * F);
    for (size_t e = 0; e < E; e++) {
        size_t o = (size_t)m->offsets[e], n = (size_t)m->counts[e];
        matmul_backward(m->drows + o * C, m->dWg + e * F * C, NULL, m->dg + o * F, m->rows + o * C, m->Wg + e * F * C, n, C, F);
        matmul_backward(m->drows + o * C, m->dWu + e * F * C, NULL, m->du + o * F, m->rows + o * C, m->Wu + e * F * C, n, C, F);
    }
    moe_permute_backward(m->dx, m->drows, m->order, NK, K, C);
}
static void run_moe_fwd(void *p) { moe_fwd(p); }
static void run_moe_fwdbwd(void *p) { moe_fwd(p); moe_bwd(p); }

/* ---- attention ---- */
typedef struct { float *q, *k, *v, *o, *lse, *dq, *dk, *dv, *dout; size_t B, T, H, D; } at_ctx;
static void run_at_fwd(void *p) {
    at_ctx *a = p;
    attention_forward(a->o, a->lse, a->q, a->k, a->v, a->B, a->T, a->H, a->H, a->D, a->D, 1.0f / sqrtf((float)a->D));
}
static void run_at_bwd(void *p) {
    at_ctx *a = p;
    attention_backward(a->dq, a->dk, a->dv, a->dout, a->q, a->k, a->v, a->o, a->lse, a->B, a->T, a->H, a->H, a->D,
                       a->D, 1.0f / sqrtf((float)a->D));
}

int main(int argc, char **argv) {
    int threads[8] = {1, 2}, nt = 2;
    if (argc > 1) { nt = 0; for (int i = 1; i < argc && nt < 8; i++) threads[nt++] = atoi(argv[i]); }
    umoe_rng r; umoe_rng_seed(&r, 7);
#ifdef UMOE_BLAS
    const char *blas = "OpenBLAS";
#else
    const char *blas = "no BLAS (loop fallback)";
#endif
    printf("bench_nn: float32 kernels, %s\n", blas);
    /* square peak */
    size_t S = 2048;
    mm_ctx sq = {.a = randv(&r, S * S, 1), .b = randv(&r, S * S, 1), .c = randv(&r, S * S, 1), .N = S, .C = S, .O = S};
    /* engine-like matmul */
    mm_ctx mm = {.N = 4096, .C = 512, .O = 1536};
    mm.a = randv(&r, mm.N * mm.C, 1); mm.b = randv(&r, mm.O * mm.C, 1); mm.c = randv(&r, mm.N * mm.O, 1);
    mm.da = randv(&r, mm.N * mm.C, 0); mm.db = randv(&r, mm.O * mm.C, 0);
    /* MoE layer */
    moe_ctx m = {.N = 4096, .C = 512, .F = 1024, .E = 16, .K = 2};
    size_t NK = m.N * m.K, C = m.C, F = m.F, E = m.E;
    m.x = randv(&r, m.N * C, 1); m.wr = randv(&r, E * C, 0.05f); m.logits = randv(&r, m.N * E, 0);
    m.scores = randv(&r, m.N * E, 0); m.w = randv(&r, NK, 0); m.rows = randv(&r, NK * C, 0);
    m.g = randv(&r, NK * F, 0); m.u = randv(&r, NK * F, 0); m.a = randv(&r, NK * F, 0); m.h = randv(&r, NK * C, 0);
    m.y = randv(&r, m.N * C, 0);
    m.Wg = randv(&r, E * F * C, 0.04f); m.Wu = randv(&r, E * F * C, 0.04f); m.Wd = randv(&r, E * C * F, 0.03f);
    m.dy = randv(&r, m.N * C, 1); m.dh = randv(&r, NK * C, 0); m.da = randv(&r, NK * F, 0); m.dg = randv(&r, NK * F, 0);
    m.du = randv(&r, NK * F, 0); m.drows = randv(&r, NK * C, 0); m.dx = randv(&r, m.N * C, 0);
    m.dWg = randv(&r, E * F * C, 0); m.dWu = randv(&r, E * F * C, 0); m.dWd = randv(&r, E * C * F, 0);
    m.dw = randv(&r, NK, 0);
    m.idx = umoe_malloc(NK * sizeof(int32_t), "idx"); m.order = umoe_malloc(NK * sizeof(int32_t), "order");
    m.counts = umoe_malloc(E * sizeof(int32_t), "counts"); m.offsets = umoe_malloc((E + 1) * sizeof(int32_t), "offs");
    /* attention */
    at_ctx at = {.B = 1, .T = 1024, .H = 8, .D = 64};
    size_t na = at.B * at.T * at.H * at.D;
    at.q = randv(&r, na, 1); at.k = randv(&r, na, 1); at.v = randv(&r, na, 1); at.o = randv(&r, na, 0);
    at.dout = randv(&r, na, 1); at.dq = randv(&r, na, 0); at.dk = randv(&r, na, 0); at.dv = randv(&r, na, 0);
    at.lse = randv(&r, at.B * at.H * at.T, 0);

    double f_sq = 2.0 * S * S * S, f_mm = 2.0 * mm.N * mm.C * mm.O;
    double f_moe = 2.0 * NK * 3.0 * C * F;
    double f_at = 2.0 * at.B * at.H * (at.T * (at.T + 1) / 2.0) * (2.0 * at.D);
    for (int i = 0; i < nt; i++) {
        set_threads(threads[i]);
        double peak = f_sq / best_time(run_mm_fwd, &sq) / 1e9;
        printf("threads %d\n", threads[i]);
        printf("  sgemm peak   %5zux%zux%zu              %8.1f GFLOP/s\n", S, S, S, peak);
        double g;
        g = f_mm / best_time(run_mm_fwd, &mm) / 1e9;
        printf("  matmul fwd   N=%zu C=%zu O=%zu       %8.1f GFLOP/s  %5.1f%% of peak\n", mm.N, mm.C, mm.O, g, 100 * g / peak);
        g = 2 * f_mm / best_time(run_mm_bwd, &mm) / 1e9;
        printf("  matmul bwd   N=%zu C=%zu O=%zu       %8.1f GFLOP/s  %5.1f%% of peak\n", mm.N, mm.C, mm.O, g, 100 * g / peak);
        g = f_moe / best_time(run_moe_fwd, &m) / 1e9;
        printf("  MoE layer fwd     N=%zu C=%zu F=%zu E=%zu K=%zu  %8.1f GFLOP/s  %5.1f%% of peak\n", m.N, C, F, E, m.K, g,
               100 * g / peak);
        g = 3 * f_moe / best_time(run_moe_fwdbwd, &m) / 1e9;
        printf("  MoE layer fwd+bwd N=%zu C=%zu F=%zu E=%zu K=%zu  %8.1f GFLOP/s  %5.1f%% of peak\n", m.N, C, F, E, m.K, g,
               100 * g / peak);
        g = f_at / best_time(run_at_fwd, &at) / 1e9;
        printf("  attention fwd B=%zu T=%zu H=%zu D=%zu    %8.1f GFLOP/s  %5.1f%% of peak (causal FLOPs)\n", at.B, at.T,
               at.H, at.D, g, 100 * g / peak);
        g = 2.5 * f_at / best_time(run_at_bwd, &at) / 1e9;
        printf("  attention bwd B=%zu T=%zu H=%zu D=%zu    %8.1f GFLOP/s  %5.1f%% of peak (causal FLOPs)\n", at.B, at.T,
               at.H, at.D, g, 100 * g / peak);
        fflush(stdout);
    }
    return 0; /* process exit releases the benchmark's buffers */
}
