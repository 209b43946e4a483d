/* bench_mpi.c - MPI collectives between the ranks of this host (all-reduce, all-gather, all-to-all over a
 * range of buffer sizes) and the alpha-beta fit that turns them into the spec's latency and bandwidth.
 * Timing (as the OSU micro-benchmarks do): a barrier, then `iters` back-to-back calls, the mean per call;
 * a sample is the maximum over ranks (the slowest rank finishes the collective); every rank makes the same
 * calls, because iters is chosen from max-reduced calibration calls. Samples are taken in rounds over all
 * (collective, size) points. The fit uses each size's fastest
 * sample: on a shared host one descheduled rank stalls a collective for a scheduler time slice (ms), which
 * would measure the OS scheduler rather than the transport; the medians and maxima are recorded beside it.
 * Fit, in the simulator's own formulas (src/sim/cost_comm.c; ring algorithms, Patarasuk & Yuan, JPDC 2009;
 * NCCL's bus-bandwidth convention), for a group of n ranks and a buffer of S bytes:
 *   all-reduce (S bytes per rank, summed)            t = 2(n-1) lat + 2(n-1)/n S / bw
 *   all-gather (S bytes gathered, S/n from each)     t =  (n-1) lat +  (n-1)/n S / bw
 *   all-to-all (S bytes sent per rank, S/n to each)  t =        lat +  (n-1)/n S / bw
 * i.e. t_i = c_i lat + x_i / bw with x_i the bytes each rank moves ("bus bytes"): one least-squares fit of
 * (lat, 1/bw) over all points, each equation divided by t_i so that small and large messages count alike
 * (relative error), lat constrained >= 0. Per collective also t = alpha + x / bw (reported only).
 * With --ranks-per-node R the ranks form emulated nodes of R consecutive ranks: the intra tier is measured in
 * the node groups (all nodes at once), the inter tier in the groups of ranks with the same local index.
 * Does not: measure point-to-point or hierarchical exchanges (src/dist has those; docs/dist.md). */
#include <math.h>
#include <string.h>
#include "bench.h"
#ifdef UMOE_MPI
#include "umoe/dist.h"
#endif

const char *const bench_coll_names[BENCH_COLL_COUNT] = {"allreduce", "allgather", "alltoall"};

umoe_status bench_fit_alpha_beta(const double *c, const double *x, const double *t, int n, bench_fit *f) {
    memset(f, 0, sizeof *f);
    f->n_points = n;
    if (n < 2) return umoe_fail("bench: an alpha-beta fit needs at least 2 points (got %d)", n);
    double saa = 0, sab = 0, sbb = 0, sa = 0, sb = 0;
    for (int i = 0; i < n; i++) {
        if (!(t[i] > 0)) return umoe_fail("bench: non-positive time %g in the alpha-beta fit", t[i]);
        double a = c[i] / t[i], b = x[i] / t[i]; /* row of the relative-error system, target 1 */
        saa += a * a;
        sab += a * b;
        sbb += b * b;
        sa += a;
        sb += b;
    }
    double det = saa * sbb - sab * sab, lat = -1, g = 0; /* g = 1 / bw */
    if (det > 1e-12 * saa * sbb) {
        lat = (sa * sbb - sb * sab) / det;
        g = (saa * sb - sab * sa) / det;
    }
    if (!(lat >= 0)) { /* latency not resolvable or negative: fit bandwidth alone */
        f->lat_clamped = 1;
        lat = 0;
        g = sbb > 0 ? sb / sbb : 0;
    }
    if (!(g > 0)) return umoe_fail("bench: the alpha-beta fit gives no positive bandwidth (times do not grow with size)");
    f->lat = lat;
    f->bw = 1.0 / g;
    double r[BENCH_COLL_COUNT * BENCH_MAX_SIZES];
    int m = n < (int)(sizeof r / sizeof *r) ? n : (int)(sizeof r / sizeof *r);
    f->resid_max = 0;
    for (int i = 0; i < m; i++) {
        r[i] = fabs(c[i] * lat + x[i] * g - t[i]) / t[i];
        if (r[i] > f->resid_max) f->resid_max = r[i];
    }
    f->resid_med = umoe_median(r, m);
    return UMOE_OK;
}

#ifndef UMOE_MPI
umoe_status bench_mpi_run(const bench_run *run, bench_comm_result *c) {
    memset(c, 0, sizeof *c);
    return UMOE_OK;
}
#else
static const double sizes_full[] = {1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20};
static const double sizes_quick[] = {1 << 10, 32 << 10, 1 << 20, 4 << 20};

typedef struct {
    MPI_Comm comm;
    int n;
    size_t floats;      /* S / 4, a multiple of n */
    float *snd, *rcv;
} coll_arg;

static int coll_call(int op, coll_arg *a) {
    int per = (int)(a->floats / (size_t)a->n);
    switch (op) {
    case BENCH_COLL_ALLREDUCE: return MPI_Allreduce(a->snd, a->rcv, (int)a->floats, MPI_FLOAT, MPI_SUM, a->comm);
    case BENCH_COLL_ALLGATHER: return MPI_Allgather(a->snd, per, MPI_FLOAT, a->rcv, per, MPI_FLOAT, a->comm);
    default: return MPI_Alltoall(a->snd, per, MPI_FLOAT, a->rcv, per, MPI_FLOAT, a->comm);
    }
}

/* Mean seconds per call over `iters` calls, max over the ranks of comm. */
static umoe_status time_calls(int op, coll_arg *a, int iters, double *out) {
    DIST_MPI(MPI_Barrier(a->comm));
    double t0 = umoe_now();
    for (int i = 0; i < iters; i++) DIST_MPI(coll_call(op, a));
    double dt = (umoe_now() - t0) / iters;
    DIST_MPI(MPI_Allreduce(&dt, out, 1, MPI_DOUBLE, MPI_MAX, a->comm));
    return UMOE_OK;
}

/* Floats in a buffer of about `bytes`: a multiple of the group size n (all-gather and all-to-all split the
 * buffer into n equal parts), at least n. */
static size_t floats_of(double bytes, int n) {
    size_t f = (size_t)bytes / sizeof(float) / (size_t)n * (size_t)n;
    return f < (size_t)n ? (size_t)n : f;
}

static umoe_status measure_tier(MPI_Comm comm, int quick, bench_comm_tier *tier) {
    const double *sz = quick ? sizes_quick : sizes_full;
    int ns = quick ? (int)(sizeof sizes_quick / sizeof *sizes_quick) : (int)(sizeof sizes_full / sizeof *sizes_full);
    /* many short samples: the fastest of them is the one no rank was descheduled in (docs/bench.md) */
    double target = quick ? 0.05e-3 : 0.1e-3; /* seconds per sample */
    int reps = quick ? 15 : 21;
    coll_arg a = {.comm = comm};
    MPI_Comm_size(comm, &a.n);
    memset(tier, 0, sizeof *tier);
    tier->group = a.n;
    tier->n_sizes = ns;
    size_t cap = (size_t)sz[ns - 1] / sizeof(float) + (size_t)a.n;
    a.snd = umoe_malloc(cap * sizeof(float), "bench mpi send");
    a.rcv = umoe_malloc(cap * sizeof(float), "bench mpi recv");
    bench_fill(a.snd, cap, 31);
    memset(a.rcv, 0, cap * sizeof(float));
    umoe_status s = UMOE_OK;
    /* settle: the first calls on a new communicator set up shared-memory connections and are slow for tens of
     * ms on the development machine; every collective runs at the smallest and the largest size first */
    for (int op = 0; op < BENCH_COLL_COUNT && !s; op++) {
        double warm;
        for (int e = 0; e < 2 && !s; e++) {
            a.floats = floats_of(sz[e ? ns - 1 : 0], a.n);
            s = time_calls(op, &a, e ? 4 : 32, &warm);
        }
    }
    /* iters per point: the fastest of 3 single calls (a rank descheduled during one call must not shrink
     * every sample to one call) */
    for (int op = 0; op < BENCH_COLL_COUNT && !s; op++) {
        for (int k = 0; k < ns && !s; k++) {
            a.floats = floats_of(sz[k], a.n);
            tier->bytes[k] = (double)a.floats * sizeof(float);
            double one = 1e300, one_k;
            for (int r = 0; r < 3 && !s; r++)
                if (!(s = time_calls(op, &a, 1, &one_k)) && one_k < one) one = one_k;
            double want = ceil(target / (one > 0 ? one : 1e-9));
            tier->iters[op][k] = want < 1 ? 1 : want > 10000 ? 10000 : (int)want;
        }
    }
    /* samples in rounds over every (collective, size) point, so that a burst of load from other processes
     * (tens to hundreds of ms on the development machine) hits a few samples of many points instead of every
     * sample of one point */
    static double samples[BENCH_COLL_COUNT][BENCH_MAX_SIZES][BENCH_MAX_REPS];
    for (int r = 0; r < reps && !s; r++)
        for (int op = 0; op < BENCH_COLL_COUNT && !s; op++)
            for (int k = 0; k < ns && !s; k++) {
                a.floats = floats_of(sz[k], a.n);
                s = time_calls(op, &a, tier->iters[op][k], &samples[op][k][r]);
            }
    for (int op = 0; op < BENCH_COLL_COUNT && !s; op++)
        for (int k = 0; k < ns; k++) {
            bench_stat_from(&tier->t[op][k], samples[op][k], reps);
            LOG_DEBUG("bench: %s %.0f bytes: %d iters, min %.3g s, median %.3g s", bench_coll_names[op],
                      tier->bytes[k], tier->iters[op][k], tier->t[op][k].min, tier->t[op][k].med);
        }
    umoe_free(a.snd, cap * sizeof(float));
    umoe_free(a.rcv, cap * sizeof(float));
    if (s) return s;

    /* the fits */
    int n = a.n, m = 0;
    double c[BENCH_COLL_COUNT * BENCH_MAX_SIZES], x[BENCH_COLL_COUNT * BENCH_MAX_SIZES],
        t[BENCH_COLL_COUNT * BENCH_MAX_SIZES], ones[BENCH_MAX_SIZES];
    for (int k = 0; k < ns; k++) ones[k] = 1;
    for (int op = 0; op < BENCH_COLL_COUNT; op++) {
        double cl = op == BENCH_COLL_ALLREDUCE ? 2.0 * (n - 1) : op == BENCH_COLL_ALLGATHER ? n - 1.0 : 1.0;
        double xf = (op == BENCH_COLL_ALLREDUCE ? 2.0 : 1.0) * (n - 1) / n;
        for (int k = 0; k < ns; k++, m++) {
            c[m] = cl;
            x[m] = xf * tier->bytes[k];
            t[m] = tier->t[op][k].min;
        }
        /* per collective: reported only, so a failed fit (noise) leaves zeros and a debug line */
        if (bench_fit_alpha_beta(ones, x + m - ns, t + m - ns, ns, &tier->per_coll[op]))
            LOG_DEBUG("bench: %s alone: %s", bench_coll_names[op], umoe_err);
        tier->alpha[op] = tier->per_coll[op].lat;
    }
    if (bench_fit_alpha_beta(c, x, t, m, &tier->fit)) tier->fit_failed = 1; /* bench_mpi_run decides */
    return UMOE_OK;
}

/* Every rank leaves a tier with the same status (node groups measure different data, so a fit can fail in
 * one group only); the message stays on the ranks that saw the failure. */
static umoe_status agree(umoe_status s) {
    int mine = (int)s, worst = 0;
    if (MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return UMOE_EFAIL;
    if (worst && !mine) umoe_fail("bench: MPI collectives failed on another rank (see its message)");
    return (umoe_status)worst;
}

/* A tier whose fitted latency is above BENCH_LAT_SUSPECT was quantised by the scheduler (a descheduled peer
 * holds every sample of a collective for a time slice, ms; shared memory here takes about 1 us): it is
 * measured again, up to BENCH_COMM_ATTEMPTS times in all, keeping the attempt with the lowest latency; one
 * still above is kept and flagged (lat_suspect, a warning). Every rank takes the same decision. */
static umoe_status measure_checked(MPI_Comm comm, int quick, bench_comm_tier *t) {
    umoe_status s = agree(measure_tier(comm, quick, t));
    t->attempts = 1;
    static bench_comm_tier again; /* large (per-size tables): not on the stack */
    for (int a = 1; !s && a < BENCH_COMM_ATTEMPTS; a++) {
        int mine = !t->fit_failed && t->fit.lat > BENCH_LAT_SUSPECT, any = mine;
        if (MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return UMOE_EFAIL;
        if (!any) break;
        LOG_WARN("bench: collective latency %.3g us looks quantised by the scheduler (> %.0f us): measuring again "
                 "(attempt %d of %d)", t->fit.lat * 1e6, BENCH_LAT_SUSPECT * 1e6, a + 1, BENCH_COMM_ATTEMPTS);
        s = agree(measure_tier(comm, quick, &again));
        int better = !s && !again.fit_failed && again.fit.lat < t->fit.lat, all = better;
        if (!s && MPI_Allreduce(&better, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) return UMOE_EFAIL;
        if (all) *t = again;
        t->attempts = a + 1;
    }
    int mine = !t->fit_failed && t->fit.lat > BENCH_LAT_SUSPECT, any = mine;
    if (!s && MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return UMOE_EFAIL;
    t->lat_suspect = any;
    if (!s && any)
        LOG_WARN("bench: collective latency still above %.0f us after %d attempts: kept, flagged lat_suspect "
                 "(docs/bench.md)", BENCH_LAT_SUSPECT * 1e6, t->attempts);
    return s;
}

umoe_status bench_mpi_run(const bench_run *run, bench_comm_result *c) {
    memset(c, 0, sizeof *c);
    if (run->size < 2) return UMOE_OK;
    int rpn = run->ranks_per_node > 0 ? run->ranks_per_node : run->size;
    MPI_Comm intra, inter;
    DIST_MPI(MPI_Comm_split(MPI_COMM_WORLD, run->rank / rpn, run->rank, &intra));
    DIST_MPI(MPI_Comm_split(MPI_COMM_WORLD, run->rank % rpn, run->rank, &inter));
    MPI_Comm_set_errhandler(intra, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(inter, MPI_ERRORS_RETURN);
    umoe_status s = UMOE_OK;
    if (rpn >= 2) {
        LOG_INFO("bench: MPI collectives inside nodes of %d ranks", rpn);
        s = measure_checked(intra, run->quick, &c->intra);
        c->have_intra = c->measured_intra = !s;
    }
    if (!s && run->size / rpn >= 2) {
        LOG_INFO("bench: MPI collectives across %d (emulated) nodes", run->size / rpn);
        s = measure_checked(inter, run->quick, &c->inter);
        c->have_inter = c->measured_inter = !s;
    }
    MPI_Comm_free(&intra);
    MPI_Comm_free(&inter);
    /* a fit that failed in any group (times that do not grow with size: a busy host) drops the measured
     * figures on every rank; the single-process estimate is written instead, and says why */
    int failed = (c->have_intra && c->intra.fit_failed) || (c->have_inter && c->inter.fit_failed), any = failed;
    if (!s && MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) s = UMOE_EFAIL;
    if (!s && any) {
        snprintf(c->fit_error, sizeof c->fit_error,
                 "the collective times did not follow latency + bytes / bandwidth (no positive bandwidth fits; is "
                 "the host busy?)");
        LOG_WARN("bench: %s: keeping the single-process estimate for intra/inter (docs/bench.md)", c->fit_error);
        c->have_intra = c->have_inter = 0;
    }
    c->mpi = c->have_intra || c->have_inter;
    for (int tr = 0; tr < 2 && !s; tr++) {
        const bench_comm_tier *t = tr ? &c->inter : &c->intra;
        if (!(tr ? c->have_inter : c->have_intra)) continue;
        LOG_INFO("bench: %s fit over %d ranks: latency %.3g us per step, bandwidth %.3g GB/s (median residual "
                 "%.0f%%)", tr ? "inter-node" : "intra-node", t->group, t->fit.lat * 1e6, t->fit.bw / 1e9,
                 100 * t->fit.resid_med);
    }
    return s;
}
#endif
