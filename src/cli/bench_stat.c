/* bench_stat.c - the timing loop of `umoe bench`: a barrier (ranks measure together), one warm-up call,
 * then timed calls until both a minimum count and a time budget are reached; the repetitions and the spread
 * (min / median / max seconds per call) are what every figure of the hardware spec is reported with.
 * Does not: decide what is timed (bench_gemm.c, bench_membw.c, ...) or synchronise MPI collectives across
 * ranks (bench_mpi.c times those itself, since every rank must make the same number of calls). */
#include <stdlib.h>
#include <string.h>
#include "bench.h"

void bench_stat_from(bench_stat *st, double *samples, int n) {
    st->reps = n;
    st->med = umoe_median(samples, n);
    st->min = n ? samples[0] : 0;
    st->max = n ? samples[n - 1] : 0;
}

void bench_measure(const bench_run *run, bench_fn fn, void *arg, double budget_s, int min_reps, bench_stat *st) {
    double samples[BENCH_MAX_REPS];
    int n = 0;
    if (min_reps < 1) min_reps = 1;
    if (min_reps > BENCH_MAX_REPS) min_reps = BENCH_MAX_REPS;
    if (run->barrier) run->barrier(run->barrier_ctx);
    fn(arg); /* warm-up: page faults, BLAS buffers, caches */
    double t_start = umoe_now();
    while (n < BENCH_MAX_REPS && (n < min_reps || umoe_now() - t_start < budget_s)) {
        double t0 = umoe_now();
        fn(arg);
        samples[n++] = umoe_now() - t0;
    }
    bench_stat_from(st, samples, n);
}

/* 4096 random values, then repeated: filling large arrays costs one memcpy pass, not one RNG call each. */
void bench_fill(float *x, size_t n, uint64_t seed) {
    umoe_rng r;
    umoe_rng_seed(&r, seed);
    size_t head = n < 4096 ? n : 4096;
    for (size_t i = 0; i < head; i++) x[i] = (float)(2.0 * umoe_rng_uniform(&r) - 1.0);
    for (size_t i = head; i < n; i += head) memcpy(x + i, x, (n - i < head ? n - i : head) * sizeof *x);
}
