/* bench_dist.c - flat vs hierarchical EP dispatch/combine: bytes sent inside and across (emulated) nodes and
 * wall time, for top-k routing of T tokens of width C over X experts. Run under mpirun, e.g.
 *   mpirun -np 4 --oversubscribe build/bench/bench_dist --ranks-per-node 2
 *   mpirun -np 8 --oversubscribe build/bench/bench_dist --ranks-per-node 4 --tokens 2048
 * Defaults: 4096 tokens per rank, hidden 1024, 32 experts, top-8, EP = all ranks, uniform random routing
 * (--skew S puts a fraction S of the assignments on expert 0). Prints one table on rank 0 (stdout).
 * Also checks that both kinds deliver bit-identical rows (exit 1 if not).
 * Does not: run experts or model math (rows are only moved). Without MPI it prints a note and exits 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umoe/common.h"
#ifdef UMOE_MPI
#include "umoe/dist.h"

typedef struct {
    int tokens, hidden, experts, top, ep, rpn, iters;
    double skew;
    uint64_t seed;
} opts;

static int parse(int argc, char **argv, opts *o, int size) {
    *o = (opts){4096, 1024, 32, 8, size, size >= 2 ? size / 2 : 1, 5, 0.0, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) return 1;
        if (!v) { fprintf(stderr, "bench_dist: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--tokens")) o->tokens = atoi(v);
        else if (!strcmp(a, "--hidden")) o->hidden = atoi(v);
        else if (!strcmp(a, "--experts")) o->experts = atoi(v);
        else if (!strcmp(a, "--top")) o->top = atoi(v);
        else if (!strcmp(a, "--ep")) o->ep = atoi(v);
        else if (!strcmp(a, "--ranks-per-node")) o->rpn = atoi(v);
        else if (!strcmp(a, "--iters")) o->iters = atoi(v);
        else if (!strcmp(a, "--skew")) o->skew = atof(v);
        else if (!strcmp(a, "--seed")) o->seed = (uint64_t)atoll(v);
        else { fprintf(stderr, "bench_dist: unknown option %s (see --help)\n", a); return 2; }
        i++;
    }
    if (o->tokens < 0 || o->hidden < 1 || o->top < 1 || o->top > o->experts || o->iters < 1 || o->skew < 0 ||
        o->skew > 1) {
        fprintf(stderr, "bench_dist: need tokens >= 0, hidden >= 1, 1 <= top <= experts, iters >= 1, 0 <= skew <= 1\n");
        return 2;
    }
    return 0;
}

typedef struct {
    double plan_s, disp_s, comb_s;      /* max over ranks, mean over iterations */
    uint64_t intra, inter, meta_inter; /* bytes of one dispatch summed over ranks (meta: one plan build) */
    uint64_t comb_inter;               /* bytes of one combine across nodes, summed over ranks */
} result;

static double max_over_ranks(double x) {
    double m;
    MPI_Allreduce(&x, &m, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return m;
}
static uint64_t sum_over_ranks(uint64_t x) {
    uint64_t s;
    MPI_Allreduce(&x, &s, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    return s;
}

static int run_kind(const dist_ctx *d, ep_a2a_kind kind, const opts *o, const int32_t *counts,
                    const int32_t *row_token, const float *send, size_t n_send, float **recv_out, size_t *n_recv,
                    result *r) {
    ep_plan *p;
    if (ep_plan_init(&p, d, kind)) return 1;
    const size_t C = (size_t)o->hidden;
    float *recv = NULL, *back = umoe_malloc(n_send * C * sizeof(float), "bench combine out");
    *r = (result){0};
    for (int it = 0; it < o->iters + 1; it++) { /* iteration 0 warms up and is not timed */
        MPI_Barrier(d->world);
        double t0 = umoe_now();
        if (ep_plan_build(p, counts, row_token, NULL)) { LOG_ERROR("%s", umoe_err); return 1; }
        double t1 = umoe_now();
        if (!recv) recv = umoe_malloc(ep_plan_n_recv(p) * C * sizeof(float) + 1, "bench recv");
        MPI_Barrier(d->world);
        double t2 = umoe_now();
        if (ep_dispatch_forward(p, recv, send, C)) { LOG_ERROR("%s", umoe_err); return 1; }
        double t3 = umoe_now();
        const ep_traffic *tr = ep_plan_traffic_last(p);
        uint64_t intra = tr->row_bytes_intra, inter = tr->row_bytes_inter, meta = tr->meta_bytes_inter;
        MPI_Barrier(d->world);
        double t4 = umoe_now();
        if (ep_combine_forward(p, back, recv, C)) { LOG_ERROR("%s", umoe_err); return 1; }
        double t5 = umoe_now();
        if (it == 0) {
            r->intra = sum_over_ranks(intra);
            r->inter = sum_over_ranks(inter);
            r->meta_inter = sum_over_ranks(meta);
            r->comb_inter = sum_over_ranks(tr->row_bytes_inter);
            continue;
        }
        r->plan_s += max_over_ranks(t1 - t0) / o->iters;
        r->disp_s += max_over_ranks(t3 - t2) / o->iters;
        r->comb_s += max_over_ranks(t5 - t4) / o->iters;
    }
    int bad = memcmp(back, send, n_send * C * sizeof(float)) != 0;
    *recv_out = recv;
    *n_recv = ep_plan_n_recv(p);
    umoe_free(back, n_send * C * sizeof(float));
    ep_plan_free(p);
    return bad;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    opts o;
    int pr = parse(argc, argv, &o, size);
    if (pr) {
        if (rank == 0)
            fprintf(pr == 1 ? stdout : stderr,
                    "usage: mpirun -np R bench_dist [--tokens 4096] [--hidden 1024] [--experts 32] [--top 8]\n"
                    "       [--ep R] [--ranks-per-node R/2] [--iters 5] [--skew 0] [--seed 1]\n");
        MPI_Finalize();
        return pr == 1 ? 0 : 2;
    }
    umoe_log_set_level(UMOE_LOG_WARN);
    dist_ctx d;
    dist_config dc = {o.ep, o.experts, o.rpn};
    if (dist_init(&d, &dc)) {
        if (rank == 0) fprintf(stderr, "bench_dist: %s\n", umoe_err);
        MPI_Finalize();
        return 2;
    }
    /* routing: top-k distinct experts per token, uniform (or a fraction skew of picks forced to expert 0) */
    const int T = o.tokens, K = o.top, X = o.experts;
    const size_t C = (size_t)o.hidden, NK = (size_t)T * K;
    int32_t *idx = umoe_malloc(NK * sizeof(int32_t) + 4, "bench idx");
    umoe_rng rng;
    umoe_rng_seed(&rng, o.seed * 1000003u + (uint64_t)rank);
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) {
            int e, dup;
            do {
                e = (k == 0 && umoe_rng_uniform(&rng) < o.skew) ? 0 : (int)(umoe_rng_u64(&rng) % (uint64_t)X);
                dup = 0;
                for (int k2 = 0; k2 < k; k2++) dup |= idx[(size_t)t * K + k2] == e;
            } while (dup);
            idx[(size_t)t * K + k] = e;
        }
    /* group by expert (counting sort, stable in assignment order) and build token-copy rows */
    int32_t *counts = umoe_calloc((size_t)X + 1, sizeof(int32_t), "bench counts");
    int32_t *off = umoe_calloc((size_t)X + 1, sizeof(int32_t), "bench offsets");
    int32_t *row_token = umoe_malloc(NK * sizeof(int32_t) + 4, "bench row_token");
    for (size_t a = 0; a < NK; a++) counts[idx[a]]++;
    for (int e = 0; e < X; e++) off[e + 1] = off[e] + counts[e];
    float *x = umoe_malloc((size_t)T * C * sizeof(float) + 4, "bench tokens");
    for (size_t i = 0; i < (size_t)T * C; i++) x[i] = (float)umoe_rng_normal(&rng);
    float *send = umoe_malloc(NK * C * sizeof(float) + 4, "bench send rows");
    for (size_t a = 0; a < NK; a++) {
        int32_t r = off[idx[a]]++;
        row_token[r] = (int32_t)(a / (size_t)K);
        memcpy(send + (size_t)r * C, x + (a / (size_t)K) * C, C * sizeof(float));
    }
    result rf, rh;
    float *recv_f, *recv_h;
    size_t nrf, nrh;
    int bad = run_kind(&d, EP_A2A_FLAT, &o, counts, row_token, send, NK, &recv_f, &nrf, &rf);
    bad |= run_kind(&d, EP_A2A_HIER, &o, counts, row_token, send, NK, &recv_h, &nrh, &rh) << 1;
    bad |= (nrf != nrh || memcmp(recv_f, recv_h, nrf * C * sizeof(float))) << 2;
    int any_bad = 0;
    MPI_Allreduce(&bad, &any_bad, 1, MPI_INT, MPI_BOR, MPI_COMM_WORLD);
    uint64_t recv_max = 0, recv_sum = 0, nr = nrf;
    MPI_Allreduce(&nr, &recv_max, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    recv_sum = sum_over_ranks(nr);
    if (rank == 0) {
        double tot_tokens = (double)T * size;
        printf("bench_dist: R=%d ranks, EP=%d, %d node(s) of %d ranks (%s), %d tokens/rank x hidden %d, %d experts, "
               "top-%d, skew %.2f, %d timed iterations\n", size, d.ep_size, d.n_nodes, d.ranks_per_node,
               d.nodes_detected ? "detected" : "emulated", T, o.hidden, X, K, o.skew, o.iters);
        printf("imbalance of received token-assignments (max/mean over ranks): %.3f\n",
               recv_sum ? (double)recv_max / ((double)recv_sum / size) : 0.0);
        printf("%-13s %14s %14s %12s %14s %10s %10s %10s\n", "dispatch", "inter-node MB", "intra-node MB",
               "inter/token", "meta inter KB", "plan ms", "disp ms", "comb ms");
        const result *rs[2] = {&rf, &rh};
        for (int k = 0; k < 2; k++)
            printf("%-13s %14.1f %14.1f %12.3f %14.1f %10.2f %10.2f %10.2f\n", ep_a2a_name((ep_a2a_kind)k),
                   rs[k]->inter / 1e6, rs[k]->intra / 1e6, rs[k]->inter / (double)(C * sizeof(float)) / tot_tokens,
                   rs[k]->meta_inter / 1e3, rs[k]->plan_s * 1e3, rs[k]->disp_s * 1e3, rs[k]->comb_s * 1e3);
        printf("inter/token: rows crossing nodes per token (all ranks). Combine moves per-assignment results back "
               "flat in both kinds: %.1f MB across nodes.\n", rf.comb_inter / 1e6);
        printf("hierarchical vs flat: inter-node bytes x%.3f, dispatch time x%.3f; received rows bit-identical: %s\n",
               rf.inter ? (double)rh.inter / rf.inter : 0.0, rf.disp_s > 0 ? rh.disp_s / rf.disp_s : 0.0,
               any_bad & 4 ? "NO" : "yes");
        if (any_bad & 3) printf("combine(dispatch(x)) != x\n");
        fflush(stdout);
    }
    umoe_free(recv_f, nrf * C * sizeof(float) + 1);
    umoe_free(recv_h, nrh * C * sizeof(float) + 1);
    umoe_free(idx, NK * sizeof(int32_t) + 4);
    umoe_free(counts, ((size_t)X + 1) * sizeof(int32_t));
    umoe_free(off, ((size_t)X + 1) * sizeof(int32_t));
    umoe_free(row_token, NK * sizeof(int32_t) + 4);
    umoe_free(x, (size_t)T * C * sizeof(float) + 4);
    umoe_free(send, NK * C * sizeof(float) + 4);
    dist_free(&d);
    MPI_Finalize();
    return any_bad ? 1 : 0;
}
#else
int main(void) {
    printf("bench_dist: built without MPI (USE_MPI=0); nothing to measure\n");
    return 0;
}
#endif
