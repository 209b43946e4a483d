/* bench_oversub.c - what a collective costs when more ranks than cores share this host (the engine's EP 4
 * runs on a 2-core machine), measured with the ranks of `mpirun -np 2 umoe bench`, one per core, each
 * given one co-runner thread that plays a second rank on its core:
 *   the rank: K times [compute chunk; MPI_Alltoall of 1 KiB per rank]
 *   its co-runner: K times [compute chunk; wait (sched_yield, as Open MPI's yield-when-idle polling does)
 *                  until the rank's iteration is through, i.e. it "takes part" in the same collective]
 *   (the rank also waits, yielding, for its co-runner's chunk before the collective: every participant
 *   arrives before it completes, as four ranks in one all-to-all)
 * The chunk is the engine's own GEMM (matmul_forward, 128^3, operands in cache) called for about
 * BENCH_OVERSUB_CHUNK_S seconds: a rank of the EP 4 runs computes about that long between two exchanges.
 * Four timings, each the median over 5 interleaved rounds of the mean per iteration, max over ranks:
 *   t_chunk  the chunk alone (no co-runner, no collective)       t_a  chunk + collective (one rank per core)
 *   t_c      chunk with the co-runner, no collective             t_b  chunk + collective with the co-runner
 * oversub_wait = max(0, (t_b - t_c) - (t_a - t_chunk)): what the collective costs beyond its
 * one-rank-per-core time when every core has two runnable ranks (a peer that is descheduled behind a
 * co-located rank's compute delays everyone until the scheduler switches). The engine model charges it per
 * collective when ranks x threads > cores (src/sim/cost_engine.c).
 * Does not: model anything, or measure more than 2 runnable ranks per core. */
#ifdef UMOE_MPI
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#endif
#include <math.h>
#include <string.h>
#include "bench.h"
#include "umoe/nn.h"

#define BENCH_OVERSUB_CHUNK_S 1e-3 /* compute between two collectives, seconds */
#define BENCH_OVERSUB_ITERS 150    /* iterations per timing (quick 60) */
#define BENCH_OVERSUB_ROUNDS 5     /* interleaved rounds over the four timings (the median round is kept) */
#define BENCH_OVERSUB_N 128        /* GEMM size of the chunk's calls */

#ifndef UMOE_MPI
umoe_status bench_oversub_run(const bench_run *run, bench_oversub_result *o) {
    (void)run;
    memset(o, 0, sizeof *o);
    return UMOE_OK;
}
#else
typedef struct {
    float *in, *w, *out;
    int calls;                  /* GEMM calls per chunk */
    volatile long phase;        /* iterations the rank has completed */
    volatile long co_phase;     /* chunks the co-runner has completed (its arrival at the collective) */
    volatile int stop;
} chunk_ctx;

static void chunk(chunk_ctx *c) {
    for (int i = 0; i < c->calls; i++)
        matmul_forward(c->out, c->in, c->w, NULL, BENCH_OVERSUB_N, BENCH_OVERSUB_N, BENCH_OVERSUB_N);
}

static void *corunner(void *p) {
    chunk_ctx *c = p;
    float *out = umoe_malloc(BENCH_OVERSUB_N * BENCH_OVERSUB_N * sizeof(float), "bench co-runner out");
    chunk_ctx mine = *c;
    mine.out = out; /* its own output, shared inputs (read only) */
    for (long seen = 1; !c->stop; seen++) {
        chunk(&mine);
        c->co_phase = seen;
        while (c->phase < seen && !c->stop) sched_yield();
    }
    umoe_free(out, BENCH_OVERSUB_N * BENCH_OVERSUB_N * sizeof(float));
    return NULL;
}

/* mean seconds per iteration of [chunk; collective?], max over ranks; with a co-runner thread when co */
static double timed(chunk_ctx *c, int iters, int coll, int co) {
    float snd[256], rcv[256];
    int size;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int per = 256 / size; /* 1 KiB per rank in all */
    memset(snd, 0, sizeof snd);
    pthread_t th;
    c->phase = c->co_phase = 0;
    c->stop = 0;
    int started = co && pthread_create(&th, NULL, corunner, c) == 0;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = umoe_now();
    for (int i = 0; i < iters; i++) {
        chunk(c);
        while (started && c->co_phase < i + 1) sched_yield(); /* the collective needs both "ranks" of the core */
        if (coll) MPI_Alltoall(snd, per, MPI_FLOAT, rcv, per, MPI_FLOAT, MPI_COMM_WORLD);
        c->phase = i + 1;
    }
    double dt = (umoe_now() - t0) / iters, mx = dt;
    c->stop = 1;
    if (started) pthread_join(th, NULL);
    MPI_Allreduce(&dt, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return mx;
}

umoe_status bench_oversub_run(const bench_run *run, bench_oversub_result *o) {
    memset(o, 0, sizeof *o);
    if (run->size < 2) return UMOE_OK;
    size_t nn = (size_t)BENCH_OVERSUB_N * BENCH_OVERSUB_N;
    chunk_ctx c = {.calls = 1};
    c.in = umoe_malloc(nn * sizeof(float), "bench oversub in");
    c.w = umoe_malloc(nn * sizeof(float), "bench oversub w");
    c.out = umoe_malloc(nn * sizeof(float), "bench oversub out");
    bench_fill(c.in, nn, 31);
    bench_fill(c.w, nn, 32);
    chunk(&c); /* warm-up */
    double t0 = umoe_now();
    for (int i = 0; i < 5; i++) chunk(&c);
    double one = (umoe_now() - t0) / 5, mx = one;
    MPI_Allreduce(&one, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD); /* every rank the same chunk */
    c.calls = (int)ceil(BENCH_OVERSUB_CHUNK_S / fmax(mx, 1e-7));
    if (c.calls < 1) c.calls = 1;
    int iters = run->quick ? 60 : BENCH_OVERSUB_ITERS;
    LOG_INFO("bench: collectives with two runnable ranks per core (%d GEMM calls per chunk, %d iterations)",
             c.calls, iters);
    o->iters = iters;
    o->chunk_calls = c.calls;
    /* the four timings in BENCH_OVERSUB_ROUNDS interleaved rounds (a burst of outside load hits all four
     * alike); a round's figure is the mean over its iterations (the occasional wait for a descheduled peer is
     * the cost being measured, so no median inside a round), a timing's the median over the rounds (a round
     * that a burst of other users' load fell into does not count) */
    double rt[4][BENCH_OVERSUB_ROUNDS], t[4];
    int per = iters / BENCH_OVERSUB_ROUNDS;
    for (int r = 0; r < BENCH_OVERSUB_ROUNDS; r++)
        for (int m = 0; m < 4; m++) rt[m][r] = timed(&c, per, m & 1, m >> 1);
    for (int m = 0; m < 4; m++) t[m] = umoe_median(rt[m], BENCH_OVERSUB_ROUNDS);
    o->iters = per * BENCH_OVERSUB_ROUNDS;
    o->t_chunk = t[0];
    o->t_a = t[1];
    o->t_c = t[2];
    o->t_b = t[3];
    o->wait = fmax(0.0, (o->t_b - o->t_c) - (o->t_a - o->t_chunk));
    o->measured = 1;
    umoe_free(c.in, nn * sizeof(float));
    umoe_free(c.w, nn * sizeof(float));
    umoe_free(c.out, nn * sizeof(float));
    LOG_INFO("bench: chunk %.3f ms, + collective %.3f ms; with a co-runner %.3f ms, + collective %.3f ms: "
             "oversub_wait %.3f ms per collective", o->t_chunk * 1e3, o->t_a * 1e3, o->t_c * 1e3, o->t_b * 1e3,
             o->wait * 1e3);
    return UMOE_OK;
}
#endif
