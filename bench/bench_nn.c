/* bench_nn.c - speed of the engine's kernels on this machine (a benchmark, not a test: prints figures,
 * asserts nothing). For 1 and 2 threads (OpenMP and OpenBLAS set together) it prints achieved GFLOP/s of
 *   - the machine's sgemm peak: a large square sgemm (M = N = K = 2048);
 *   - matmul forward / backward at an engine-like shape (N = 4096 tokens, C = 512, O = 1536);
 *   - a whole routed MoE FFN layer, forward and forward+backward (router, counting sort, permute, per expert
 *     SwiGLU gate/up/down GEMMs on its contiguous rows through moe_matmul_*, unpermute), hidden C = 512, expert width F = 1024,
 *     N = 4096 tokens, E = 16 experts, top-2; FLOPs counted are the expert GEMMs only (2*N*K*3*C*F forward,
 *     twice that backward), time is the whole layer, so the ratio to peak is what the engine really gets;
 *   - causal attention forward / backward, B = 1, T = 1024, H = 8, Dk = Dv = 64; FLOPs counted for the causal
 *     half (forward 2*B*H*T*(T+1)/2*(Dk+Dv), backward 2x forward for the GEMMs it recomputes plus dq/dk/dv:
 *     counted as 2.5x forward, as FlashAttention-2 does).
 * Each figure is the best of repeated runs lasting at least bench_min_s seconds; the peak is measured before
 * and after the kernels and the better one is used (the machine may be shared).
 * If OpenBLAS picked kernels older than the CPU (nn_blas_better_coretype), it re-runs itself with
 * OPENBLAS_CORETYPE set; run it with OPENBLAS_CORETYPE=Prescott to see the untuned figures.
 * Usage: build/bench/bench_nn [threads...] [NAME]   (default threads: 1 2; NAME: only the cases whose name
 *        contains it, e.g. MoE) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "umoe/common.h"
#include "umoe/nn.h"
#ifdef UMOE_OPENMP
#include <omp.h>
#endif
#ifdef UMOE_BLAS
#include <cblas.h>
#endif

/* seconds of repeated runs per figure; BENCH_NN_MIN_S overrides (longer runs find quieter moments on a
 * shared machine) */
static double bench_min_s = 0.5;

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

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* best wall seconds per call, and best process CPU seconds per call (*cpu) */
static double best_time(bench_fn f, void *ctx, double *cpu) {
    f(ctx); /* warm-up */
    double best = 1e30, bestc = 1e30, start = umoe_now();
    int reps = 0;
    while (reps < 2 || umoe_now() - start < bench_min_s) {
        double t0 = umoe_now(), c0 = cpu_now();
        f(ctx);
        double dt = umoe_now() - t0, dc = cpu_now() - c0;
        best = dt < best ? dt : best;
        bestc = dc < bestc ? dc : bestc;
        reps++;
    }
    *cpu = bestc;
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
    moe_matmul_forward(m->g, m->rows, m->Wg, F * C, m->offsets, E, C, F);
    moe_matmul_forward(m->u, m->rows, m->Wu, F * C, m->offsets, E, C, F);
    swiglu_forward(m->a, m->g, m->u, NK * F);
    moe_matmul_forward(m->h, m->a, m->Wd, C * F, m->offsets, E, F, C);
    memset(m->y, 0, N * C * sizeof(float));
    moe_unpermute_forward(m->y, m->h, m->w, m->order, NK, K, C);
}

static void moe_bwd(moe_ctx *m) {
    size_t N = m->N, C = m->C, F = m->F, E = m->E, K = m->K, NK = N * K;
    memset(m->dh, 0, NK * C * sizeof(float)); memset(m->da, 0, NK * F * sizeof(float));
    memset(m->dg, 0, NK * F * sizeof(float)); memset(m->du, 0, NK * F * sizeof(float));
    memset(m->drows, 0, NK * C * sizeof(float)); memset(m->dw, 0, NK * sizeof(float));
    moe_unpermute_backward(m->dh, m->dw, m->dy, m->h, m->w, m->order, NK, K, C);
    moe_matmul_backward(m->da, m->dWd, m->dh, m->a, m->Wd, C * F, m->offsets, E, F, C);
    swiglu_backward(m->dg, m->du, m->da, m->g, m->u, NK * F);
    moe_matmul_backward(m->drows, m->dWg, m->dg, m->rows, m->Wg, F * C, m->offsets, E, C, F);
    moe_matmul_backward(m->drows, m->dWu, m->du, m->rows, m->Wu, F * C, m->offsets, E, C, F);
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
    /* OpenBLAS chooses its kernels when loaded: if it picked an older family than this CPU supports, run
     * again with OPENBLAS_CORETYPE set (once: the variable is then present) */
    const char *better = nn_blas_better_coretype();
    if (better && !getenv("OPENBLAS_CORETYPE")) {
        fprintf(stderr, "bench_nn: OpenBLAS chose %s kernels; re-running with OPENBLAS_CORETYPE=%s\n",
                nn_blas_corename(), better);
        setenv("OPENBLAS_CORETYPE", better, 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "bench_nn: re-exec failed; continuing with %s\n", nn_blas_corename());
    }
    if (getenv("BENCH_NN_MIN_S") && atof(getenv("BENCH_NN_MIN_S")) > 0) bench_min_s = atof(getenv("BENCH_NN_MIN_S"));
    int threads[8] = {1, 2}, nt = 0;
    const char *only = NULL; /* a non-numeric argument: run only the cases whose name contains it */
    for (int i = 1; i < argc; i++) {
        if (atoi(argv[i]) > 0 && nt < 8) threads[nt++] = atoi(argv[i]);
        else only = argv[i];
    }
    if (nt == 0) nt = 2;
    umoe_rng r; umoe_rng_seed(&r, 7);
#ifdef UMOE_BLAS
    const char *blas = "OpenBLAS";
#else
    const char *blas = "no BLAS (loop fallback)";
#endif
    printf("bench_nn: float32 kernels, %s, kernels %s\n", blas, nn_blas_corename());
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
    struct { const char *name; bench_fn fn; void *ctx; double flops; } cases[] = {
        {"matmul fwd        N=4096 C=512 O=1536", run_mm_fwd, &mm, f_mm},
        {"matmul bwd        N=4096 C=512 O=1536", run_mm_bwd, &mm, 2 * f_mm},
        {"MoE layer fwd     N=4096 C=512 F=1024 E=16 K=2", run_moe_fwd, &m, f_moe},
        {"MoE layer fwd+bwd N=4096 C=512 F=1024 E=16 K=2", run_moe_fwdbwd, &m, 3 * f_moe},
        {"attention fwd     B=1 T=1024 H=8 D=64 (causal)", run_at_fwd, &at, f_at},
        {"attention bwd     B=1 T=1024 H=8 D=64 (causal)", run_at_bwd, &at, 2.5 * f_at},
    };
    size_t nc = sizeof cases / sizeof cases[0];
    printf("GFLOP/s by wall time (%% of the sgemm peak), and by process CPU time (%% of that peak): the CPU-time\n"
           "figures discount time lost to other processes on a shared machine; with 2 threads they are per\n"
           "CPU-second of both threads together.\n");
    for (int i = 0; i < nt; i++) {
        set_threads(threads[i]);
        double c1, c2, g[16], gc[16];
        double peak = f_sq / best_time(run_mm_fwd, &sq, &c1) / 1e9, peakc = f_sq / c1 / 1e9;
        for (size_t k = 0; k < nc; k++) {
            if (only && !strstr(cases[k].name, only)) { g[k] = gc[k] = 0; continue; }
            double c, t = best_time(cases[k].fn, cases[k].ctx, &c);
            g[k] = cases[k].flops / t / 1e9;
            gc[k] = cases[k].flops / c / 1e9;
        }
        /* the peak again after the kernels: on a shared machine the better of the two is the peak */
        double p2 = f_sq / best_time(run_mm_fwd, &sq, &c2) / 1e9, p2c = f_sq / c2 / 1e9;
        peak = p2 > peak ? p2 : peak;
        peakc = p2c > peakc ? p2c : peakc;
        printf("threads %d\n", threads[i]);
        printf("  %-48s %7.1f GFLOP/s          %7.1f GFLOP/s/CPU-s\n", "sgemm peak        2048x2048x2048", peak, peakc);
        for (size_t k = 0; k < nc; k++)
            if (g[k] > 0) printf("  %-48s %7.1f GFLOP/s (%5.1f%%) %7.1f GFLOP/s/CPU-s (%5.1f%%)\n", cases[k].name, g[k],
                   100 * g[k] / peak, gc[k], 100 * gc[k] / peakc);
        fflush(stdout);
    }
    return 0; /* process exit releases the benchmark's buffers */
}
