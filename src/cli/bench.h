/* bench.h - internal interface of `umoe bench` (src/cli/bench_*.c, src/cli/cmd_bench.c): the measurements
 * that turn this machine into a hardware spec (include/umoe/spec.h spec_hardware, docs/bench.md).
 *   bench_stat.c   timing loop with repetitions and spread, ranks, sort helpers
 *   bench_gemm.c   GEMM throughput over a grid of shapes -> peak and the efficiency table
 *   bench_attn.c   attention_forward/backward against the GEMM peak -> attn_eff
 *   bench_membw.c  STREAM-like copy/triad, the engine's element-wise kernels, memcpy -> hbm_bw, mem_eff
 *   bench_mpi.c    MPI collectives between ranks of this host -> fitted latency and bandwidth
 *   bench_write.c  the hardware JSON (figures + "_source" + "_measurements"), validated, written atomically
 * A "device" of the written spec is one process (MPI rank) using --threads cores. Times are seconds, sizes
 * bytes, rates FLOP/s and bytes/s. Does not: model any cost (src/sim) or parse the spec (src/spec). */
#ifndef UMOE_CLI_BENCH_H
#define UMOE_CLI_BENCH_H
#include <stddef.h>
#include "umoe/common.h"
#include "umoe/spec.h"

#define BENCH_MAX_REPS 64   /* timed repetitions kept per item */
#define BENCH_MAX_SHAPES 64 /* GEMM shapes in one grid */
#define BENCH_MAX_SIZES 16  /* message sizes per collective */
#define BENCH_MAX_RANKS 64  /* ranks whose compute speed is recorded */
#define BENCH_LAT_SUSPECT 100e-6 /* s: a fitted collective latency above this is a scheduler artefact (shared
                                  * memory here: about 1 us; a scheduler time slice: ms) */
#define BENCH_COMM_ATTEMPTS 3    /* measurements of a suspect tier, in all */

/* Repetitions and spread of one measured item (seconds per call). */
typedef struct {
    int reps;
    double min, med, max;
} bench_stat;

/* How to run: mode, threads, the rank layout, and the barrier that lines ranks up before each item (so that
 * ranks measure at the same time, as they compute during training). barrier NULL = single process. */
typedef struct {
    int quick;
    int threads;
    int rank, size;       /* MPI world (0, 1 without MPI) */
    int host_ranks;       /* ranks sharing this host's memory (1 without MPI) */
    int ranks_per_node;   /* emulated node size (0 = every rank of this host is one node) */
    void (*barrier)(void *ctx);
    void *barrier_ctx;
} bench_run;

/* ---- bench_stat.c */
typedef void (*bench_fn)(void *arg);
/* Barrier, one untimed warm-up call, then timed calls until at least min_reps and budget_s seconds (or
 * BENCH_MAX_REPS). Fills st with the count and the min/median/max seconds per call. */
void bench_measure(const bench_run *run, bench_fn fn, void *arg, double budget_s, int min_reps, bench_stat *st);
/* min / median / max of n samples (sorts them in place). */
void bench_stat_from(bench_stat *st, double *samples, int n);
/* Uniform random floats in [-1, 1) (deterministic seed; 4096 values, repeated), so no denormals and no
 * all-zero shortcuts. */
void bench_fill(float *x, size_t n, uint64_t seed);

/* ---- bench_gemm.c */
typedef struct {
    size_t N, C, O;     /* matmul_forward: out (N,O) = in (N,C) @ w(O,C)^T */
    double flops;       /* 2 N C O */
    bench_stat t;
    double eff;         /* (flops / t.med) / peak */
} bench_gemm_shape;
typedef struct {
    int n_shapes;
    bench_gemm_shape shape[BENCH_MAX_SHAPES];
    double peak;        /* FLOP/s: the best (flops / t.min) over the grid */
    int peak_shape;     /* index of the shape that gave it */
    int n_eff;          /* efficiency table, sorted by flops (one point per flops level) */
    double eff_flops[SPEC_EFF_MAX], eff[SPEC_EFF_MAX], eff_lo[SPEC_EFF_MAX], eff_hi[SPEC_EFF_MAX];
    int eff_count[SPEC_EFF_MAX]; /* shapes averaged into each point */
} bench_gemm_result;
umoe_status bench_gemm_run(const bench_run *run, bench_gemm_result *g);

/* ---- bench_attn.c */
typedef struct {
    size_t B, T, H, D;  /* q, k, v (B,T,H,D), causal, Dk = Dv = D */
    double causal_flops; /* 2 B H T^2 D (QK^T and PV over the causal half, multiply-add = 2) */
    bench_stat fwd, bwd;
    double eff;         /* causal_flops / fwd.med / gemm peak, the simulator's attn_eff convention */
    double bwd_over_fwd; /* bwd.med / fwd.med */
    int clamped;        /* eff was outside the loader's [1e-3, 1] and is written clamped */
    /* by sequence length (attn_eff_seq): B T = BENCH_ATTN_SEQ_TOKENS tokens per call, H and D as above; the last
     * point is the main measurement (B, T) above */
    int n_seq;
    size_t seq_T[8], seq_B[8];
    bench_stat seq_fwd[8], seq_bwd[8];
    double seq_eff[8], seq_bwd_over_fwd[8];
} bench_attn_result;
umoe_status bench_attn_run(const bench_run *run, double gemm_peak, bench_attn_result *a);

/* ---- bench_membw.c */
typedef struct {
    const char *name;
    double bytes;       /* bytes moved per call (reads + writes, write-allocate not counted: STREAM's rule) */
    bench_stat t;
    double bw_best, bw_med; /* bytes / t.min, bytes / t.med */
} bench_mem_kernel;
enum { BENCH_MEM_COPY, BENCH_MEM_TRIAD, BENCH_MEM_MEMCPY, BENCH_MEM_SWIGLU, BENCH_MEM_RMSNORM, BENCH_MEM_ADAMW,
       BENCH_MEM_COUNT };
typedef struct {
    size_t n;           /* floats per array */
    double llc_bytes;   /* last-level cache size reported by sysconf (0 unknown) */
    bench_mem_kernel k[BENCH_MEM_COUNT];
    double hbm_bw;      /* triad bw_best */
    double mem_eff;     /* median over swiglu, rmsnorm, adamw of bw_med / hbm_bw, clamped to (0, 1] */
    double phys_bytes;  /* sysconf physical memory of the host */
    double hbm_bytes;   /* phys_bytes / host_ranks */
    /* cache-resident element-wise rate (additive): swiglu_forward and rmsnorm_forward on arrays that fit the
     * per-core L2 (cache_n floats each), as the engine's small activations do */
    size_t cache_n;          /* floats per array of the cache-resident runs */
    double cache_bytes;      /* per-core L2 size reported by sysconf (0 unknown: no cache rate) */
    bench_mem_kernel ck[2];  /* swiglu_forward, rmsnorm_forward on cache_n floats */
    double cache_bw;         /* median of the two kernels' median rates, bytes/s (0 when not measured) */
} bench_mem_result;
umoe_status bench_membw_run(const bench_run *run, bench_mem_result *m);

/* ---- bench_mpi.c */
enum { BENCH_COLL_ALLREDUCE, BENCH_COLL_ALLGATHER, BENCH_COLL_ALLTOALL, BENCH_COLL_COUNT };
extern const char *const bench_coll_names[BENCH_COLL_COUNT];
typedef struct {
    double lat, bw;     /* per-step latency (s) and bandwidth (bytes/s) of the simulator's alpha-beta formulas */
    double resid_med, resid_max; /* |predicted - measured| / measured over the fitted points */
    int n_points;
    int lat_clamped;    /* the unconstrained fit gave lat < 0; refitted with lat = 0 */
} bench_fit;
typedef struct {
    int group;          /* ranks in each measured group */
    int n_sizes;
    double bytes[BENCH_MAX_SIZES];                  /* buffer bytes (see docs/bench.md per collective) */
    int iters[BENCH_COLL_COUNT][BENCH_MAX_SIZES];   /* calls averaged in one sample */
    bench_stat t[BENCH_COLL_COUNT][BENCH_MAX_SIZES]; /* seconds per call, max over ranks per sample */
    bench_fit per_coll[BENCH_COLL_COUNT];           /* time = alpha + bus_bytes / bw for each collective */
    double alpha[BENCH_COLL_COUNT];
    bench_fit fit;      /* joint fit of all three in the simulator's formulas -> *_lat, *_bw */
    int fit_failed;     /* the joint fit gave no usable (lat, bw): times did not grow with size (noise) */
    int attempts;       /* measurements of the tier (more than 1: the first latency looked scheduler-quantised) */
    int lat_suspect;    /* the kept latency is still above BENCH_LAT_SUSPECT */
} bench_comm_tier;
typedef struct {
    int mpi;            /* 1: measured under MPI with >= 2 ranks in some tier, and fitted */
    int have_intra, have_inter;         /* tier measured and fitted: its figures are written */
    int measured_intra, measured_inter; /* tier measured (recorded in _measurements even if the fit failed) */
    char fit_error[256]; /* why a measured tier could not be used (then the single-process estimate is kept) */
    bench_comm_tier intra, inter;
} bench_comm_result;
/* Collective over the world communicator (MPI builds under mpirun); a no-op result otherwise. */
umoe_status bench_mpi_run(const bench_run *run, bench_comm_result *c);
/* Least squares of t_i = c_i lat + x_i / bw, each equation divided by t_i (relative error); lat >= 0. */
umoe_status bench_fit_alpha_beta(const double *c, const double *x, const double *t, int n, bench_fit *f);

/* ---- bench_oversub.c */
typedef struct {
    int measured, iters, chunk_calls;
    double t_chunk, t_a, t_c, t_b; /* seconds per iteration: chunk; + collective; with co-runner; both */
    double wait;        /* oversub_wait: extra seconds per collective with two runnable ranks per core */
} bench_oversub_result;
/* Under mpirun with >= 2 ranks: the collective's extra cost when a co-runner shares each rank's core. */
umoe_status bench_oversub_run(const bench_run *run, bench_oversub_result *o);

/* ---- bench_write.c */
enum { BENCH_PHASE_GEMM, BENCH_PHASE_ATTN, BENCH_PHASE_MEM, BENCH_PHASE_COMM, BENCH_PHASES };
extern const char *const bench_phase_names[BENCH_PHASES];
typedef struct {
    char name[64];
    int threads, blas_threads, omp_threads;
    double wall_s;
    double phase_s[BENCH_PHASES]; /* wall seconds of each phase */
    double peak_lo, peak_hi, hbm_bw_lo, hbm_bw_hi; /* spread over ranks (= own figure without MPI) */
    /* per rank: the median over the compute-bound items (bench_work_items) of the item's time / rank 0's;
     * rank_time_* = mean and max of those over ranks (1 without MPI) */
    int n_rank_work, n_work_items;
    double rank_work[BENCH_MAX_RANKS];
    double rank_time_mean, rank_time_max;
    bench_gemm_result gemm;
    bench_attn_result attn;
    bench_mem_result mem;
    bench_comm_result comm;
    bench_oversub_result oversub;
    double rss_bytes, counted_bytes; /* at the end of the run: resident set, counted allocator's live bytes */
    double mem_reserved;             /* rss_bytes - counted_bytes (>= 0): the runtime's resident share */
} bench_all;
/* The compute-bound items' median times on this rank (every GEMM shape, attention forward and backward, the
 * cache-resident element-wise kernels), at most max of them; returns the count. Compared item by item over
 * ranks that measured at the same moments, they give how much slower each core was (rank_time_*). */
int bench_work_items(const bench_all *b, double *t, int max);
/* The hardware JSON as text (caller frees with umoe_free(p, *len + 1)); *len its length. */
char *bench_json(const bench_run *run, const bench_all *b, size_t *len);
/* Parse the text back through spec_hardware_from_json (the simulator's loader), then write it atomically
 * to path. A failure leaves any previous file untouched. */
umoe_status bench_write(const char *path, const char *text, size_t len, spec_hardware *loaded);
#endif
