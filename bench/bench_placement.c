/* bench_placement.c - dynamic expert placement on a skewed-routing run, and flat vs hierarchical dispatch,
 * with the real EP exchange (src/dist) under mpirun. Every step each rank routes T tokens top-K over X experts
 * with Zipf-skewed expert popularity (p ~ 1 / (r + 1)^s over a fixed random ranking r of the experts, optionally
 * drifting by one place every D steps), groups and dispatches them twice: with the default block placement and
 * with dynamic placement (load window + EMA 0.9 + LPT + CV-drop 0.08 + gain-vs-cost test, every N steps), and
 * measures the imbalance (max over ranks of received token-assignments / mean) of each; the placed run is also
 * dispatched with the hierarchical plan to compare inter-node bytes and time with the flat one.
 *   mpirun -np 8 --oversubscribe build/bench/bench_placement --ranks-per-node 4
 * Options (defaults): --tokens 1024 --hidden 256 --ffn 512 --experts 32 --top 4 --ranks-per-node R/2
 *   --steps 40 --interval 5 --window 10 --skew 1.0 --drift 0 --gflops 100 --bw 1e9 --seed 1
 * The cost side: one expert = 3 C F weights, moved with AdamW m and v (x3, 4 bytes each) at --bw bytes/s; the gain
 * side: 6 x 3 C F FLOPs per token-assignment (forward + backward) at --gflops.
 * Does not: run experts (rows are only moved) or move weights (their bytes are counted; moves are tested in
 * tests/mpi/test_dist_placement). Without MPI it prints a note and exits 0. Prints one table on rank 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "umoe/common.h"
#ifdef UMOE_MPI
#include "umoe/dist.h"

typedef struct {
    int tokens, hidden, ffn, experts, top, rpn, steps, interval, window, drift;
    double skew, gflops, bw;
    uint64_t seed;
} opts;

static int parse(int argc, char **argv, opts *o, int size) {
    *o = (opts){1024, 256, 512, 32, 4, size >= 2 ? size / 2 : 1, 40, 5, 10, 0, 1.0, 100, 1e9, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help")) return 1;
        if (!v) { fprintf(stderr, "bench_placement: %s needs a value\n", a); return 2; }
        if (!strcmp(a, "--tokens")) o->tokens = atoi(v);
        else if (!strcmp(a, "--hidden")) o->hidden = atoi(v);
        else if (!strcmp(a, "--ffn")) o->ffn = atoi(v);
        else if (!strcmp(a, "--experts")) o->experts = atoi(v);
        else if (!strcmp(a, "--top")) o->top = atoi(v);
        else if (!strcmp(a, "--ranks-per-node")) o->rpn = atoi(v);
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "--interval")) o->interval = atoi(v);
        else if (!strcmp(a, "--window")) o->window = atoi(v);
        else if (!strcmp(a, "--drift")) o->drift = atoi(v);
        else if (!strcmp(a, "--skew")) o->skew = atof(v);
        else if (!strcmp(a, "--gflops")) o->gflops = atof(v);
        else if (!strcmp(a, "--bw")) o->bw = atof(v);
        else if (!strcmp(a, "--seed")) o->seed = (uint64_t)atoll(v);
        else { fprintf(stderr, "bench_placement: unknown option %s (see --help)\n", a); return 2; }
        i++;
    }
    if (o->tokens < 1 || o->hidden < 1 || o->ffn < 1 || o->top < 1 || o->top > o->experts || o->steps < 1 ||
        o->interval < 1 || o->window < 1 || o->drift < 0 || o->skew < 0 || o->gflops <= 0 || o->bw <= 0) {
        fprintf(stderr, "bench_placement: need tokens, hidden, ffn, steps, interval, window >= 1, 1 <= top <= "
                        "experts, drift >= 0, skew >= 0, gflops and bw > 0\n");
        return 2;
    }
    return 0;
}

typedef struct {
    double imb_sum, imb_max, disp_s, inter, intra;
    int n;
} acc;

/* plan + dispatch with one owner table; adds the imbalance, time and bytes (summed over ranks) to a */
static int exchange(ep_plan *p, const dist_ctx *d, const int32_t *counts, const int32_t *row_token,
                    const int32_t *owner, const float *send, float **recv, size_t *recv_cap, size_t C, acc *a) {
    if (ep_plan_build(p, counts, row_token, owner)) { LOG_ERROR("%s", umoe_err); return 1; }
    size_t need = ep_plan_n_recv(p) * C * sizeof(float) + 4;
    if (need > *recv_cap) {
        *recv = umoe_realloc(*recv, *recv_cap, need, "bench recv");
        *recv_cap = need;
    }
    MPI_Barrier(d->world);
    double t0 = umoe_now();
    if (ep_dispatch_forward(p, *recv, send, C)) { LOG_ERROR("%s", umoe_err); return 1; }
    double dt = umoe_now() - t0, imb = 0;
    if (ep_plan_imbalance(p, &imb)) { LOG_ERROR("%s", umoe_err); return 1; }
    double v[2] = {(double)ep_plan_traffic_last(p)->row_bytes_inter, (double)ep_plan_traffic_last(p)->row_bytes_intra};
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_DOUBLE, MPI_SUM, d->world);
    MPI_Allreduce(MPI_IN_PLACE, &dt, 1, MPI_DOUBLE, MPI_MAX, d->world);
    MPI_Allreduce(MPI_IN_PLACE, &imb, 1, MPI_DOUBLE, MPI_MAX, d->world);
    a->imb_sum += imb;
    a->imb_max = imb > a->imb_max ? imb : a->imb_max;
    a->disp_s += dt;
    a->inter += v[0];
    a->intra += v[1];
    a->n++;
    return 0;
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
                    "usage: mpirun -np R bench_placement [--tokens 1024] [--hidden 256] [--ffn 512] [--experts 32]\n"
                    "       [--top 4] [--ranks-per-node R/2] [--steps 40] [--interval 5] [--window 10] [--skew 1.0]\n"
                    "       [--drift 0] [--gflops 100] [--bw 1e9] [--seed 1]\n");
        MPI_Finalize();
        return pr == 1 ? 0 : 2;
    }
    umoe_log_set_level(UMOE_LOG_WARN);
    dist_ctx d;
    dist_config dc = {size, o.experts, o.rpn};
    if (dist_init(&d, &dc)) {
        if (rank == 0) fprintf(stderr, "bench_placement: %s\n", umoe_err);
        MPI_Finalize();
        return 2;
    }
    const int T = o.tokens, K = o.top, X = o.experts, E = size;
    const size_t C = (size_t)o.hidden, NK = (size_t)T * K;
    /* expert popularity: a fixed random ranking (same on every rank), Zipf weights by rank */
    int *rk = umoe_malloc((size_t)X * sizeof(int), "ranking");
    double *cdf = umoe_malloc((size_t)X * sizeof(double), "cdf");
    umoe_rng g;
    umoe_rng_seed(&g, o.seed);
    for (int e = 0; e < X; e++) rk[e] = e;
    for (int e = X - 1; e > 0; e--) {
        int j = (int)(umoe_rng_u64(&g) % (uint64_t)(e + 1)), t = rk[e];
        rk[e] = rk[j];
        rk[j] = t;
    }
    umoe_rng rng;
    umoe_rng_seed(&rng, o.seed * 1000003u + (uint64_t)rank + 7);
    int32_t *idx = umoe_malloc(NK * sizeof(int32_t), "idx"), *counts = umoe_malloc((size_t)X * sizeof(int32_t), "counts");
    int32_t *off = umoe_malloc(((size_t)X + 1) * sizeof(int32_t), "off"), *row_token = umoe_malloc(NK * sizeof(int32_t), "rt");
    float *tokens = umoe_malloc((size_t)T * C * sizeof(float), "tokens"), *send = umoe_malloc(NK * C * sizeof(float), "send");
    for (size_t i = 0; i < (size_t)T * C; i++) tokens[i] = (float)umoe_rng_uniform(&rng);
    float *recv = NULL;
    size_t recv_cap = 0;
    int32_t *own_off = umoe_malloc((size_t)X * sizeof(int32_t), "own off"), *own_on = umoe_malloc((size_t)X * sizeof(int32_t), "own on");
    int32_t *nw = umoe_malloc((size_t)X * sizeof(int32_t), "own new");
    dist_placement_default(own_off, X, E);
    dist_placement_default(own_on, X, E);
    ep_plan *pf, *ph;
    ep_plan_init(&pf, &d, EP_A2A_FLAT);
    ep_plan_init(&ph, &d, EP_A2A_HIER);
    dist_load_window win;
    dist_load_window_init(&win, 1, X, o.window, 0.9);
    double *load = umoe_malloc((size_t)X * sizeof(double), "load"), *pred = umoe_malloc((size_t)X * sizeof(double), "pred");
    const double expert_floats = 3.0 * (double)C * o.ffn;
    dist_placement_policy pol = {0.08, 6 * expert_floats / (o.gflops * 1e9), o.bw, (uint64_t)(expert_floats * 4 * 3),
                                 o.interval};
    acc a_off = {0}, a_on = {0}, a_hier = {0};
    int replacements = 0, moves = 0, kept = 0;
    uint64_t moved_bytes = 0;
    int bad = 0;
    dist_placement_decision last = {0};
    for (int step = 0; step < o.steps && !bad; step++) {
        int shift = o.drift > 0 ? step / o.drift : 0;
        double z = 0;
        for (int e = 0; e < X; e++) z += 1.0 / pow((double)((rk[e] + shift) % X) + 1, o.skew);
        double c = 0;
        for (int e = 0; e < X; e++) cdf[e] = (c += 1.0 / pow((double)((rk[e] + shift) % X) + 1, o.skew) / z);
        for (int t = 0; t < T; t++)
            for (int k = 0; k < K; k++) {
                int e, dup;
                do {
                    double u = umoe_rng_uniform(&rng);
                    for (e = 0; e < X - 1 && cdf[e] < u; e++) {}
                    dup = 0;
                    for (int k2 = 0; k2 < k; k2++) dup |= idx[(size_t)t * K + k2] == e;
                } while (dup);
                idx[(size_t)t * K + k] = e;
            }
        memset(counts, 0, (size_t)X * sizeof(int32_t));
        for (size_t i = 0; i < NK; i++) counts[idx[i]]++;
        off[0] = 0;
        for (int e = 0; e < X; e++) off[e + 1] = off[e] + counts[e];
        for (size_t i = 0; i < NK; i++) {
            int32_t r = off[idx[i]]++;
            row_token[r] = (int32_t)(i / (size_t)K);
            memcpy(send + (size_t)r * C, tokens + (size_t)(i / (size_t)K) * C, C * sizeof(float));
        }
        int count_it = step >= o.interval; /* measure after the first decision point */
        acc dummy = {0};
        bad |= exchange(pf, &d, counts, row_token, own_off, send, &recv, &recv_cap, C, count_it ? &a_off : &dummy);
        bad |= exchange(pf, &d, counts, row_token, own_on, send, &recv, &recv_cap, C, count_it ? &a_on : &dummy);
        bad |= exchange(ph, &d, counts, row_token, own_on, send, &recv, &recv_cap, C, count_it ? &a_hier : &dummy);
        /* loads of all ranks -> window; every interval steps: decide */
        for (int e = 0; e < X; e++) load[e] = counts[e];
        MPI_Allreduce(MPI_IN_PLACE, load, X, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        dist_load_window_push(&win, load);
        if ((step + 1) % o.interval == 0) {
            dist_load_window_predict(&win, 0, pred);
            dist_placement_decision dec;
            dist_placement_decide(nw, own_on, pred, X, E, &pol, &dec);
            last = dec;
            if (dec.apply) {
                memcpy(own_on, nw, (size_t)X * sizeof(int32_t));
                replacements++;
                moves += dec.moves;
                moved_bytes += dec.bytes;
            } else {
                kept++;
            }
        }
    }
    if (rank == 0 && !bad) {
        int n = a_off.n > 0 ? a_off.n : 1;
        printf("bench_placement: %d ranks (EP %d) in %d nodes of %d, %d tokens/rank, top-%d of %d experts, Zipf skew "
               "%.2f, drift %d, %d steps, placement every %d (window %d)\n",
               size, E, d.n_nodes, d.ranks_per_node, T, K, X, o.skew, o.drift, o.steps, o.interval, o.window);
        printf("imbalance = max over ranks of received token-assignments / mean, over steps %d..%d\n", o.interval + 1,
               o.steps);
        printf("%-26s %10s %10s %14s %14s %12s\n", "run", "mean imb", "max imb", "inter MB/step", "intra MB/step",
               "dispatch ms");
        const acc *rows[3] = {&a_off, &a_on, &a_hier};
        const char *names[3] = {"flat, blocks (no placement)", "flat, dynamic placement", "hier, dynamic placement"};
        for (int i = 0; i < 3; i++)
            printf("%-26s %10.3f %10.3f %14.2f %14.2f %12.2f\n", names[i], rows[i]->imb_sum / n, rows[i]->imb_max,
                   rows[i]->inter / n / 1e6, rows[i]->intra / n / 1e6, rows[i]->disp_s / n * 1e3);
        printf("re-placements %d (kept %d), expert moves %d, bytes moved per EP group %.2f MB (weights + AdamW m, v "
               "of 3 x %d x %d floats each)\n", replacements, kept, moves, moved_bytes / 1e6, (int)C, o.ffn);
        printf("last decision: predicted imbalance %.3f -> %.3f, CV %.3f -> %.3f, %d moves, gain %.3g s over %d steps "
               "vs move cost %.3g s: %s\n", last.imb_before, last.imb_after, last.cv_before, last.cv_after, last.moves,
               last.gain_s, o.interval, last.cost_s, last.apply ? "applied" : "kept");
    }
    dist_load_window_free(&win);
    ep_plan_free(pf);
    ep_plan_free(ph);
    umoe_free(rk, (size_t)X * sizeof(int));
    umoe_free(cdf, (size_t)X * sizeof(double));
    umoe_free(idx, NK * sizeof(int32_t));
    umoe_free(counts, (size_t)X * sizeof(int32_t));
    umoe_free(off, ((size_t)X + 1) * sizeof(int32_t));
    umoe_free(row_token, NK * sizeof(int32_t));
    umoe_free(tokens, (size_t)T * C * sizeof(float));
    umoe_free(send, NK * C * sizeof(float));
    if (recv) umoe_free(recv, recv_cap);
    umoe_free(own_off, (size_t)X * sizeof(int32_t));
    umoe_free(own_on, (size_t)X * sizeof(int32_t));
    umoe_free(nw, (size_t)X * sizeof(int32_t));
    umoe_free(load, (size_t)X * sizeof(double));
    umoe_free(pred, (size_t)X * sizeof(double));
    dist_free(&d);
    MPI_Finalize();
    return bad;
}
#else
int main(void) {
    printf("bench_placement: built without MPI (make USE_MPI=1)\n");
    return 0;
}
#endif
