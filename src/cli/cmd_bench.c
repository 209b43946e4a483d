/* cmd_bench.c - `umoe bench`: measure this machine into a hardware spec the simulator reads
 * (the configs/hardware/NAME.json format, docs/formats.md; method and conventions in docs/bench.md).
 * Runs, in order: GEMM grid (bench_gemm.c), attention (bench_attn.c), memory bandwidth (bench_membw.c) and,
 * under mpirun with >= 2 ranks, MPI collectives (bench_mpi.c); then writes the JSON (bench_write.c).
 * Under mpirun every rank measures at the same time (lined up by barriers), as ranks compute and stream
 * memory at once in training; rank 0 writes its own figures and records the spread over ranks.
 * `umoe bench --check FILE` loads a hardware spec through spec_hardware_load and prints its figures.
 * Does not: run the simulator, or change any figure by hand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef UMOE_BLAS
#include <cblas.h>
#endif
#ifdef UMOE_OPENMP
#include <omp.h>
#endif
#ifdef UMOE_MPI
#include <mpi.h>
#endif
#include "bench.h"
#include "cli.h"
#include "umoe/nn.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: umoe bench [--out FILE] [--quick] [--threads N] [--name NAME] [--ranks-per-node R]\n"
            "       umoe bench --check FILE_OR_PRESET\n\n"
            "Measures this machine and writes a hardware spec (docs/formats.md) the simulator reads:\n"
            "  GEMM throughput over a grid of shapes (peak_fp32 = peak_bf16 = peak_fp16, gemm_eff table),\n"
            "  attention efficiency (attn_eff), memory bandwidth (hbm_bw, mem_eff), memory size (hbm_bytes),\n"
            "  and, under mpirun with >= 2 ranks, all-reduce / all-gather / all-to-all between the ranks of this\n"
            "  host, fitted to latency and bandwidth (intra_lat, intra_bw; inter_* too with --ranks-per-node).\n"
            "Every figure comes with its repetitions and spread under \"_measurements\". One device = one rank.\n\n"
            "  --out FILE          write the spec there (atomically); default: print it on stdout\n"
            "  --quick             a smaller grid and shorter timings (about 2 s instead of about 15 s)\n"
            "  --threads N         OpenBLAS and OpenMP threads per rank (default 1)\n"
            "  --name NAME         the spec's name (default \"local\")\n"
            "  --ranks-per-node R  emulate nodes of R consecutive ranks (must divide the rank count)\n"
            "  --check FILE        load a hardware spec with the simulator's loader and print it\n\n"
            "examples:\n"
            "  umoe bench --out configs/hardware/local.json\n"
            "  mpirun -np 2 umoe bench --out configs/hardware/local.json\n");
}

static int check_file(const char *path) {
    spec_hardware h;
    if (spec_hardware_load(path, &h)) return cli_input_error();
    printf("hardware \"%s\": loads\n", h.name);
    printf("  peak_bf16 %.4g FLOP/s, peak_fp32 %.4g FLOP/s\n", h.peak_bf16, h.peak_fp32);
    printf("  hbm_bytes %.4g, hbm_bw %.4g bytes/s, mem_eff %.3g\n", h.hbm_bytes, h.hbm_bw, h.mem_eff);
    printf("  devices_per_node %d, intra %.4g bytes/s + %.3g s, inter %.4g bytes/s + %.3g s\n", h.devices_per_node,
           h.intra_bw, h.intra_lat, h.inter_bw, h.inter_lat);
    printf("  attn_eff %.3g, gemm_eff points %d:", h.attn_eff, h.n_gemm_eff);
    for (int i = 0; i < h.n_gemm_eff; i++) printf(" [%.3g, %.3f]", h.gemm_eff_flops[i], h.gemm_eff[i]);
    printf("\n");
    return UMOE_EXIT_OK;
}

#ifdef UMOE_MPI
static void mpi_barrier(void *ctx) {
    (void)ctx;
    MPI_Barrier(MPI_COMM_WORLD);
}
/* Launched by mpirun (Open MPI, MPICH/Hydra, PMIx launchers) rather than as a plain process. */
static int under_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}
#endif

static void set_threads(int n, bench_all *b) {
    char v[32];
    snprintf(v, sizeof v, "%d", n);
    setenv("OPENBLAS_NUM_THREADS", v, 1); /* for anything started after us */
    setenv("OMP_NUM_THREADS", v, 1);
    b->threads = n;
    b->blas_threads = b->omp_threads = 1;
#ifdef UMOE_BLAS
    openblas_set_num_threads(n); /* OpenBLAS read its variable at load time: set it directly */
    b->blas_threads = openblas_get_num_threads();
#endif
#ifdef UMOE_OPENMP
    omp_set_num_threads(n);
    b->omp_threads = omp_get_max_threads();
#endif
}

static void print_summary(const char *out, const bench_run *run, const bench_all *b, const spec_hardware *h) {
    printf("wrote %s: hardware \"%s\", measured on %d rank(s) x %d thread(s) in %.1f s%s\n", out, h->name, run->size,
           b->threads, b->wall_s, run->quick ? " (--quick)" : "");
    printf("  peak_fp32 = peak_bf16   %8.2f GFLOP/s  (best of %d GEMM shapes; ranks %.2f..%.2f)\n", h->peak_fp32 / 1e9,
           b->gemm.n_shapes, b->peak_lo / 1e9, b->peak_hi / 1e9);
    printf("  gemm_eff                %d points, %.3f at %.3g FLOP .. %.3f at %.3g FLOP\n", h->n_gemm_eff, h->gemm_eff[0],
           h->gemm_eff_flops[0], h->gemm_eff[h->n_gemm_eff - 1], h->gemm_eff_flops[h->n_gemm_eff - 1]);
    printf("  attn_eff                %8.3f   (backward/forward time %.2f)\n", h->attn_eff, b->attn.bwd_over_fwd);
    for (int i = 0; i + 1 < b->attn.n_seq; i++)
        printf("  attn_eff at T = %-6zu  %8.3f   (backward/forward time %.2f)\n", b->attn.seq_T[i], b->attn.seq_eff[i],
               b->attn.seq_bwd_over_fwd[i]);
    printf("  hbm_bw                  %8.2f GB/s (triad; ranks %.2f..%.2f), mem_eff %.3f\n", h->hbm_bw / 1e9,
           b->hbm_bw_lo / 1e9, b->hbm_bw_hi / 1e9, h->mem_eff);
    printf("  hbm_bytes               %8.2f GiB per device\n", h->hbm_bytes / (1u << 30));
    if (b->n_rank_work > 1)
        printf("  rank_time_mean, _max    %8.3f, %.3f (compute time of the %d ranks / rank 0's)\n", b->rank_time_mean,
               b->rank_time_max, b->n_rank_work);
    printf("  intra_bw, intra_lat     %8.2f GB/s, %.3g us%s\n", h->intra_bw / 1e9, h->intra_lat * 1e6,
           b->comm.mpi ? " (MPI fit)" : " (one process: memcpy estimate and default latency)");
    printf("  inter_bw, inter_lat     %8.2f GB/s, %.3g us; devices_per_node %d\n", h->inter_bw / 1e9,
           h->inter_lat * 1e6, h->devices_per_node);
    if (b->oversub.measured)
        printf("  oversub_wait            %8.3f ms per collective with two runnable ranks per core\n",
               b->oversub.wait * 1e3);
}

int cmd_bench(int argc, char **argv) {
    const char *out = NULL, *check = NULL;
    long long threads = 1, rpn = 0;
    static bench_all b; /* large (the per-shape and per-size tables): not on the stack */
    memset(&b, 0, sizeof b);
    umoe_strlcpy(b.name, "local", sizeof b.name);
    bench_run run = {.rank = 0, .size = 1, .host_ranks = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) {
            usage(stdout);
            return UMOE_EXIT_OK;
        } else if (!strcmp(a, "--quick")) {
            run.quick = 1;
        } else if (!strcmp(a, "--out") || !strcmp(a, "--check") || !strcmp(a, "--name") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--ranks-per-node")) {
            if (!(v = cli_value("bench", argc, argv, i++))) return UMOE_EXIT_INPUT;
            if (!strcmp(a, "--out")) out = v;
            else if (!strcmp(a, "--check")) check = v;
            else if (!strcmp(a, "--threads")) {
                if (cli_parse_int("bench", a, v, 1, 1024, &threads)) return UMOE_EXIT_INPUT;
            } else if (!strcmp(a, "--ranks-per-node")) {
                if (cli_parse_int("bench", a, v, 1, 1 << 20, &rpn)) return UMOE_EXIT_INPUT;
            } else {
                if (!*v || strlen(v) >= sizeof b.name) {
                    fprintf(stderr, "umoe bench: --name = \"%s\" is not allowed (1 to %zu characters)\n", v,
                            sizeof b.name - 1);
                    return UMOE_EXIT_INPUT;
                }
                umoe_strlcpy(b.name, v, sizeof b.name);
            }
        } else {
            return cli_unknown("bench", a);
        }
    }
    if (check) return check_file(check);
    if (out && !*out) {
        fprintf(stderr, "umoe bench: --out needs a file name\n");
        return UMOE_EXIT_INPUT;
    }
    set_threads((int)threads, &b);

#ifdef UMOE_MPI
    int mpi = under_mpirun();
    if (mpi) {
        MPI_Init(&argc, &argv);
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &run.rank);
        MPI_Comm_size(MPI_COMM_WORLD, &run.size);
        MPI_Comm host;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, run.rank, MPI_INFO_NULL, &host);
        MPI_Comm_size(host, &run.host_ranks);
        MPI_Comm_free(&host);
        run.barrier = mpi_barrier;
        if (run.rank > 0) umoe_log_set_level(UMOE_LOG_WARN); /* progress from rank 0 only */
    }
#endif
    if (rpn > 0 && run.size % rpn) {
        if (run.rank == 0)
            fprintf(stderr, "umoe bench: --ranks-per-node = %lld is not allowed (must divide the %d rank(s))\n", rpn,
                    run.size);
#ifdef UMOE_MPI
        if (mpi) MPI_Finalize();
#endif
        return UMOE_EXIT_INPUT;
    }
    run.ranks_per_node = (int)rpn;
    run.threads = (int)threads;

    /* the runtime's resident share (code, libraries, MPI's buffers after a first collective, OpenBLAS's after a
     * first GEMM of the engine's size class): what this process holds beyond its counted allocations before the
     * measurement arrays exist (the simulator's mem_reserved) */
    {
        size_t n = 256 * 256;
        float *x = umoe_calloc(3 * n, sizeof(float), "bench runtime probe");
        matmul_forward(x + 2 * n, x, x + n, NULL, 256, 256, 256);
        umoe_free(x, 3 * n * sizeof(float));
        if (run.barrier) run.barrier(run.barrier_ctx);
        FILE *sf = fopen("/proc/self/statm", "r");
        long pages_total = 0, pages_res = 0;
        if (sf && fscanf(sf, "%ld %ld", &pages_total, &pages_res) == 2) {
            b.rss_bytes = (double)pages_res * (double)sysconf(_SC_PAGESIZE);
            b.counted_bytes = (double)umoe_alloc_current();
            b.mem_reserved = b.rss_bytes > b.counted_bytes ? b.rss_bytes - b.counted_bytes : 0;
        }
        if (sf) fclose(sf);
    }
    double t0 = umoe_now();
    LOG_INFO("bench: %d rank(s) x %d thread(s)%s", run.size, run.threads, run.quick ? ", quick" : "");
    double tp = umoe_now();
    umoe_status s = bench_gemm_run(&run, &b.gemm);
    b.phase_s[BENCH_PHASE_GEMM] = umoe_now() - tp;
    if (!s) s = bench_attn_run(&run, b.gemm.peak, &b.attn);
    b.phase_s[BENCH_PHASE_ATTN] = umoe_now() - tp - b.phase_s[BENCH_PHASE_GEMM];
    tp = umoe_now();
    if (!s) s = bench_membw_run(&run, &b.mem);
    b.phase_s[BENCH_PHASE_MEM] = umoe_now() - tp;
    b.peak_lo = b.peak_hi = b.gemm.peak;
    b.hbm_bw_lo = b.hbm_bw_hi = b.mem.hbm_bw;
    b.n_rank_work = 1;
    b.rank_work[0] = 1;
    b.rank_time_mean = b.rank_time_max = 1;
    double items[BENCH_MAX_SHAPES + 4];
    b.n_work_items = s ? 0 : bench_work_items(&b, items, BENCH_MAX_SHAPES + 4);
#ifdef UMOE_MPI
    if (mpi) {
        int bad = s != UMOE_OK, any = 0;
        MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (any && !bad) s = umoe_fail("bench: a measurement failed on another rank");
        if (!any) {
            double v[2] = {b.gemm.peak, b.mem.hbm_bw}, lo[2], hi[2];
            MPI_Allreduce(v, lo, 2, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
            MPI_Allreduce(v, hi, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
            b.peak_lo = lo[0], b.peak_hi = hi[0], b.hbm_bw_lo = lo[1], b.hbm_bw_hi = hi[1];
            int ni = b.n_work_items;
            if (run.size <= BENCH_MAX_RANKS && ni > 0) { /* every rank's compute time at the same moments */
                double *all = umoe_malloc((size_t)run.size * ni * sizeof(double), "bench rank items");
                MPI_Allgather(items, ni, MPI_DOUBLE, all, ni, MPI_DOUBLE, MPI_COMM_WORLD);
                double ratio[BENCH_MAX_SHAPES + 4], sum = 0, mx = 0;
                for (int r = 0; r < run.size; r++) {
                    int m = 0;
                    for (int i = 0; i < ni; i++)
                        if (all[i] > 0) ratio[m++] = all[(size_t)r * ni + i] / all[i];
                    b.rank_work[r] = m ? umoe_median(ratio, m) : 1;
                    sum += b.rank_work[r];
                    if (b.rank_work[r] > mx) mx = b.rank_work[r];
                }
                umoe_free(all, (size_t)run.size * ni * sizeof(double));
                b.n_rank_work = run.size;
                b.rank_time_mean = sum / run.size;
                b.rank_time_max = mx;
            }
            tp = umoe_now();
            s = bench_mpi_run(&run, &b.comm);
            if (!s) s = bench_oversub_run(&run, &b.oversub);
            b.phase_s[BENCH_PHASE_COMM] = umoe_now() - tp;
        }
    }
#endif
    b.wall_s = umoe_now() - t0;

    int rc = UMOE_EXIT_OK;
    if (s) {
        fprintf(stderr, "umoe bench: %s\n", umoe_err);
        rc = UMOE_EXIT_FAIL;
    } else if (run.rank == 0) {
        size_t len = 0;
        char *text = bench_json(&run, &b, &len);
        spec_hardware h;
        if (!text || bench_write(out, text, len, &h)) {
            fprintf(stderr, "umoe bench: %s\n", umoe_err);
            rc = UMOE_EXIT_FAIL;
        } else if (out) {
            print_summary(out, &run, &b, &h);
        }
        if (text) umoe_free(text, len + 1);
    }
#ifdef UMOE_MPI
    if (mpi) {
        MPI_Bcast(&rc, 1, MPI_INT, 0, MPI_COMM_WORLD);
        MPI_Finalize();
    }
#endif
    return rc;
}
