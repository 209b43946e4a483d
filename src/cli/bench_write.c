/* bench_write.c - the hardware spec that `umoe bench` writes: the spec_hardware figures (docs/formats.md),
 * "_source" saying where each figure comes from, and "_measurements" with every measured item's repetitions
 * and spread (min / median / max), so a reader can judge the noise. Keys starting with '_' are ignored by
 * the loader. The text is parsed back through spec_hardware_from_json (the simulator's own loader) before it
 * is written, and written atomically (umoe_write_atomic): a failed run never leaves a broken or half file.
 * Communication when no MPI collective could be measured (one process): intra_bw from this process's memcpy
 * rate, divided by BENCH_SHM_COPIES, and intra_lat = BENCH_DEFAULT_LAT (both documented in docs/bench.md).
 * Does not: measure anything (bench_gemm.c, bench_attn.c, bench_membw.c, bench_mpi.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"
#include "umoe/json.h"

/* Copies per byte of a large message between two processes of one host: Open MPI's shared-memory transport
 * moves large messages with one copy (Linux cross-memory attach, process_vm_readv). */
#define BENCH_SHM_COPIES 1.0
/* Per-step latency used when it cannot be measured (one process): what `mpirun -np 2 umoe bench` fitted on
 * the development machine, 0.75 to 1.1 us (docs/bench.md), rounded. */
#define BENCH_DEFAULT_LAT 1e-6

const char *const bench_phase_names[BENCH_PHASES] = {"gemm", "attention", "memory", "comm"};

int bench_work_items(const bench_all *b, double *t, int max) {
    int n = 0;
    for (int i = 0; i < b->gemm.n_shapes && n < max; i++) t[n++] = b->gemm.shape[i].t.med;
    if (n < max) t[n++] = b->attn.fwd.med;
    if (n < max) t[n++] = b->attn.bwd.med;
    for (int i = 0; i < 2 && b->mem.cache_bw > 0 && n < max; i++) t[n++] = b->mem.ck[i].t.med;
    return n;
}

static void put_stat(json_writer *w, const bench_stat *s) {
    jw_int(w, "reps", s->reps);
    jw_num(w, "t_min", s->min);
    jw_num(w, "t_med", s->med);
    jw_num(w, "t_max", s->max);
}

/* one element-wise kernel's bytes per call, timings and rates (DRAM-sized and cache-resident runs alike) */
static void put_mem_kernel(json_writer *w, const bench_mem_kernel *k) {
    jw_obj_open(w, k->name);
    jw_num(w, "bytes", k->bytes);
    put_stat(w, &k->t);
    jw_num(w, "bw_best", k->bw_best);
    jw_num(w, "bw_med", k->bw_med);
    jw_obj_close(w);
}

static void cpu_name(char *out, size_t n) {
    umoe_strlcpy(out, "unknown", n);
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        char *c = strchr(line, ':');
        if (!c) break;
        c++;
        while (*c == ' ') c++;
        c[strcspn(c, "\n")] = 0;
        umoe_strlcpy(out, c, n);
        break;
    }
    fclose(f);
}

/* The communication figures written, from the measured tiers or the single-process estimate. */
typedef struct {
    double intra_bw, intra_lat, inter_bw, inter_lat;
    int devices_per_node;
    char intra_src[512], inter_src[512];
} comm_figs;

static void comm_figures(const bench_run *run, const bench_all *b, comm_figs *f) {
    const bench_comm_result *c = &b->comm;
    int rpn = run->ranks_per_node > 0 ? run->ranks_per_node : run->size;
    f->devices_per_node = rpn;
    if (!c->mpi) {
        double copied = b->mem.k[BENCH_MEM_MEMCPY].bw_med / 2.0; /* bytes copied per second */
        f->intra_bw = f->inter_bw = copied / BENCH_SHM_COPIES;
        f->intra_lat = f->inter_lat = BENCH_DEFAULT_LAT;
        snprintf(f->intra_src, sizeof f->intra_src,
                 "ESTIMATE (%s): intra_bw = this process's median memcpy rate "
                 "(%.3g bytes copied/s) / %g (copies per message byte); intra_lat = %g s, the "
                 "documented default (docs/bench.md). Run under mpirun -np 2 (or more) to measure them.",
                 c->fit_error[0] ? c->fit_error : "one process, no MPI collective measured", copied, BENCH_SHM_COPIES,
                 BENCH_DEFAULT_LAT);
        snprintf(f->inter_src, sizeof f->inter_src, "= intra (one host, nothing measured across nodes)");
        return;
    }
    const bench_comm_tier *in = c->have_intra ? &c->intra : &c->inter;
    const bench_comm_tier *out = c->have_inter ? &c->inter : &c->intra;
    f->intra_bw = in->fit.bw;
    f->intra_lat = in->fit.lat;
    f->inter_bw = out->fit.bw;
    f->inter_lat = out->fit.lat;
    snprintf(f->intra_src, sizeof f->intra_src,
             "MEASURED: least-squares fit (relative error) of the fastest all-reduce, all-gather and all-to-all times over %d "
             "sizes in groups of %d ranks of this host, in the simulator's ring formulas (docs/bench.md); median "
             "residual %.0f%%, max %.0f%%%s%s; %d attempt(s)%s",
             in->n_sizes, in->group, 100 * in->fit.resid_med, 100 * in->fit.resid_max,
             in->fit.lat_clamped ? "; latency not resolvable (fit gave < 0), set to 0" : "",
             c->have_intra ? "" : "; no group of >= 2 ranks inside a node: the inter-node fit is used", in->attempts,
             in->lat_suspect ? "; SUSPECT: latency above 100 us, quantised by the scheduler (a busy host)" : "");
    if (c->have_inter)
        snprintf(f->inter_src, sizeof f->inter_src,
                 "MEASURED: the same fit across %d emulated nodes of %d ranks (--ranks-per-node; one host, so this "
                 "is shared memory too); median residual %.0f%%", out->group, rpn, 100 * out->fit.resid_med);
    else
        snprintf(f->inter_src, sizeof f->inter_src,
                 "= intra: all %d ranks are on this host (one node); use --ranks-per-node to emulate nodes",
                 run->size);
}

static void put_tier(json_writer *w, const char *key, const bench_comm_tier *t) {
    jw_obj_open(w, key);
    jw_int(w, "group_ranks", t->group);
    jw_obj_open(w, "fit");
    jw_num(w, "lat", t->fit.lat);
    jw_num(w, "bw", t->fit.bw);
    jw_int(w, "points", t->fit.n_points);
    jw_num(w, "resid_median", t->fit.resid_med);
    jw_num(w, "resid_max", t->fit.resid_max);
    jw_bool(w, "lat_clamped", t->fit.lat_clamped);
    jw_bool(w, "failed", t->fit_failed);
    jw_int(w, "attempts", t->attempts);
    jw_bool(w, "lat_suspect", t->lat_suspect);
    jw_obj_close(w);
    for (int op = 0; op < BENCH_COLL_COUNT; op++) {
        jw_obj_open(w, bench_coll_names[op]);
        jw_num(w, "alpha", t->alpha[op]);
        jw_num(w, "bw", t->per_coll[op].bw);
        jw_num(w, "resid_median", t->per_coll[op].resid_med);
        jw_arr_open(w, "sizes");
        for (int k = 0; k < t->n_sizes; k++) {
            jw_obj_open(w, NULL);
            jw_num(w, "bytes", t->bytes[k]);
            jw_int(w, "iters", t->iters[op][k]);
            put_stat(w, &t->t[op][k]);
            jw_obj_close(w);
        }
        jw_arr_close(w);
        jw_obj_close(w);
    }
    jw_obj_close(w);
}

/* "forward" and "backward" objects with the two timings' statistics */
static void put_fwd_bwd(json_writer *w, const bench_stat *fwd, const bench_stat *bwd) {
    jw_obj_open(w, "forward");
    put_stat(w, fwd);
    jw_obj_close(w);
    jw_obj_open(w, "backward");
    put_stat(w, bwd);
    jw_obj_close(w);
}

static void put_measurements(json_writer *w, const bench_run *run, const bench_all *b) {
    char buf[256];
    jw_obj_open(w, "_measurements");
    jw_str(w, "tool", "umoe bench");
    time_t now = time(NULL);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    jw_str(w, "date", buf);
    if (gethostname(buf, sizeof buf) != 0) umoe_strlcpy(buf, "unknown", sizeof buf);
    buf[sizeof buf - 1] = 0;
    jw_str(w, "host", buf);
    cpu_name(buf, sizeof buf);
    jw_str(w, "cpu", buf);
    jw_bool(w, "quick", run->quick);
    jw_int(w, "threads", b->threads);
    jw_int(w, "openblas_threads", b->blas_threads);
    jw_int(w, "omp_threads", b->omp_threads);
    jw_int(w, "ranks", run->size);
    jw_int(w, "host_ranks", run->host_ranks);
    jw_int(w, "ranks_per_node", run->ranks_per_node > 0 ? run->ranks_per_node : run->size);
    jw_num(w, "wall_s", b->wall_s);
    jw_obj_open(w, "phase_s");
    for (int i = 0; i < BENCH_PHASES; i++) jw_num(w, bench_phase_names[i], b->phase_s[i]);
    jw_obj_close(w);
    jw_str(w, "stats", "per item: reps timed calls after one warm-up; t_min/t_med/t_max seconds per call");
    jw_obj_open(w, "resident");
    jw_num(w, "rss_bytes", b->rss_bytes);
    jw_num(w, "counted_bytes", b->counted_bytes);
    jw_num(w, "mem_reserved", b->mem_reserved);
    jw_obj_close(w);
    jw_obj_open(w, "rank_work");
    jw_str(w, "what", "per rank: the median over the compute-bound items (every GEMM shape, attention forward and "
                      "backward, the cache-resident element-wise kernels; all ranks timing at the same moments) "
                      "of the item's median time / rank 0's; rank_time_mean / rank_time_max = mean / max over "
                      "ranks (a median of ratios: a burst of outside load on a few items does not move it)");
    jw_int(w, "items", b->n_work_items);
    jw_arr_open(w, "time_vs_rank0");
    for (int i = 0; i < b->n_rank_work; i++) jw_num(w, NULL, b->rank_work[i]);
    jw_arr_close(w);
    jw_num(w, "rank_time_mean", b->rank_time_mean);
    jw_num(w, "rank_time_max", b->rank_time_max);
    jw_obj_close(w);

    const bench_gemm_result *g = &b->gemm;
    jw_obj_open(w, "gemm");
    jw_str(w, "kernel", "matmul_forward (OpenBLAS sgemm, fp32): out (N,O) = in (N,C) @ w(O,C)^T, flops = 2 N C O");
    jw_num(w, "peak", g->peak);
    jw_num(w, "peak_rank_min", b->peak_lo);
    jw_num(w, "peak_rank_max", b->peak_hi);
    jw_arr_open(w, "peak_shape");
    jw_int(w, NULL, (long long)g->shape[g->peak_shape].N);
    jw_int(w, NULL, (long long)g->shape[g->peak_shape].C);
    jw_int(w, NULL, (long long)g->shape[g->peak_shape].O);
    jw_arr_close(w);
    jw_arr_open(w, "points");
    for (int i = 0; i < g->n_eff; i++) {
        jw_obj_open(w, NULL);
        jw_num(w, "flops", g->eff_flops[i]);
        jw_num(w, "eff", g->eff[i]);
        jw_num(w, "eff_min", g->eff_lo[i]);
        jw_num(w, "eff_max", g->eff_hi[i]);
        jw_int(w, "shapes", g->eff_count[i]);
        jw_obj_close(w);
    }
    jw_arr_close(w);
    jw_arr_open(w, "shapes");
    for (int i = 0; i < g->n_shapes; i++) {
        const bench_gemm_shape *s = &g->shape[i];
        jw_obj_open(w, NULL);
        jw_int(w, "N", (long long)s->N);
        jw_int(w, "C", (long long)s->C);
        jw_int(w, "O", (long long)s->O);
        jw_num(w, "flops", s->flops);
        put_stat(w, &s->t);
        jw_num(w, "flops_per_s_med", s->flops / s->t.med);
        jw_num(w, "eff", s->eff);
        jw_obj_close(w);
    }
    jw_arr_close(w);
    jw_obj_close(w);

    const bench_attn_result *a = &b->attn;
    jw_obj_open(w, "attention");
    jw_str(w, "kernel", "attention_forward / attention_backward, causal MHA, q k v (B,T,H,D)");
    jw_int(w, "B", (long long)a->B);
    jw_int(w, "T", (long long)a->T);
    jw_int(w, "H", (long long)a->H);
    jw_int(w, "D", (long long)a->D);
    jw_num(w, "causal_flops", a->causal_flops);
    put_fwd_bwd(w, &a->fwd, &a->bwd);
    jw_num(w, "eff", a->eff);
    jw_bool(w, "eff_clamped", a->clamped);
    jw_num(w, "backward_over_forward", a->bwd_over_fwd);
    jw_arr_open(w, "by_seq");
    for (int i = 0; i < a->n_seq; i++) {
        jw_obj_open(w, NULL);
        jw_int(w, "B", (long long)a->seq_B[i]);
        jw_int(w, "T", (long long)a->seq_T[i]);
        put_fwd_bwd(w, &a->seq_fwd[i], &a->seq_bwd[i]);
        jw_num(w, "eff", a->seq_eff[i]);
        jw_num(w, "backward_over_forward", a->seq_bwd_over_fwd[i]);
        jw_obj_close(w);
    }
    jw_arr_close(w);
    jw_obj_close(w);

    const bench_mem_result *m = &b->mem;
    jw_obj_open(w, "memory");
    jw_num(w, "array_bytes", (double)m->n * sizeof(float));
    jw_num(w, "llc_bytes", m->llc_bytes);
    jw_num(w, "phys_bytes", m->phys_bytes);
    jw_num(w, "hbm_bw_rank_min", b->hbm_bw_lo);
    jw_num(w, "hbm_bw_rank_max", b->hbm_bw_hi);
    for (int i = 0; i < BENCH_MEM_COUNT; i++) put_mem_kernel(w, &m->k[i]);
    if (m->cache_bw > 0) {
        jw_obj_open(w, "cache");
        jw_num(w, "array_bytes", (double)m->cache_n * sizeof(float));
        jw_num(w, "l2_bytes", m->cache_bytes);
        for (int i = 0; i < 2; i++) put_mem_kernel(w, &m->ck[i]);
        jw_obj_close(w);
    }
    jw_obj_close(w);

    const bench_comm_result *c = &b->comm;
    jw_obj_open(w, "comm");
    jw_str(w, "mode", c->mpi ? "mpi" : "memcpy-estimate");
    if (c->fit_error[0]) jw_str(w, "fit_error", c->fit_error);
    if (c->measured_intra) put_tier(w, "intra", &c->intra);
    if (c->measured_inter) put_tier(w, "inter", &c->inter);
    jw_obj_close(w); /* comm */
    if (b->oversub.measured) {
        const bench_oversub_result *o = &b->oversub;
        jw_obj_open(w, "oversub");
        jw_str(w, "what", "seconds per iteration, max over ranks: t_chunk = a compute chunk (matmul_forward 128^3 x "
                          "chunk_calls), t_a = chunk + 1 KiB all-to-all, t_c = chunk with a co-runner thread per "
                          "rank (two runnable per core), t_b = both; wait = max(0, (t_b - t_c) - (t_a - t_chunk))");
        jw_int(w, "iters", o->iters);
        jw_int(w, "chunk_calls", o->chunk_calls);
        jw_num(w, "t_chunk", o->t_chunk);
        jw_num(w, "t_a", o->t_a);
        jw_num(w, "t_c", o->t_c);
        jw_num(w, "t_b", o->t_b);
        jw_num(w, "wait", o->wait);
        jw_obj_close(w);
    }
    jw_obj_close(w);
}

char *bench_json(const bench_run *run, const bench_all *b, size_t *len) {
    char *mem = NULL;
    size_t mlen = 0;
    FILE *f = open_memstream(&mem, &mlen);
    if (!f) {
        umoe_fail("bench: cannot open a memory stream for the JSON text");
        return NULL;
    }
    comm_figs cf;
    comm_figures(run, b, &cf);
    const bench_gemm_result *g = &b->gemm;
    char s[1024];
    json_writer w;
    jw_begin(&w, f);
    jw_obj_open(&w, NULL);
    jw_obj_open(&w, "_source");
    snprintf(s, sizeof s, "MEASURED by umoe bench%s on %d rank(s) x %d thread(s); one device = one rank; details and "
             "spreads in _measurements; method in docs/bench.md", run->quick ? " --quick" : "", run->size, b->threads);
    jw_str(&w, "all", s);
    snprintf(s, sizeof s, "MEASURED: the best fp32 GEMM rate (matmul_forward = OpenBLAS sgemm) over %d shapes, "
             "%d levels from %.3g to %.3g FLOP per call", g->n_shapes, g->n_eff, g->eff_flops[0],
             g->eff_flops[g->n_eff - 1]);
    jw_str(&w, "peak_fp32", s);
    jw_str(&w, "peak_bf16, peak_fp16", "= peak_fp32: the engine trains in fp32, so the simulator's 16-bit peak is "
                                       "this machine's fp32 GEMM rate");
    jw_str(&w, "peak_fp8", "0: no fp8 GEMM in the engine");
    jw_str(&w, "gemm_eff", "MEASURED: per level, the mean over its shapes (square, up- and down-projection aspect) "
                           "of median rate / peak_fp32");
    jw_str(&w, "attn_eff", "MEASURED: causal FLOPs 2 B H T^2 D / median attention_forward time / peak_fp32 (the "
                           "simulator's convention: half of the full s^2 count)");
    if (b->attn.n_seq > 1)
        jw_str(&w, "attn_eff_seq", "MEASURED: [T, eff, backward/forward time] of the same kernels at B T = 1024 tokens "
                                   "per call (the last point is attn_eff's measurement); the engine model looks up "
                                   "its run's sequence length there; _measurements.attention.by_seq");
    jw_str(&w, "hbm_bw", "MEASURED: best STREAM triad rate (a = b + s c, 12 bytes per float element) with every "
                         "rank of the host streaming at once");
    jw_str(&w, "mem_eff", "MEASURED: median over swiglu_forward, rmsnorm_forward, adamw_update of their median rate "
                          "/ hbm_bw (the engine's element-wise kernels)");
    if (b->mem.cache_bw > 0)
        jw_str(&w, "cache_bw, cache_bytes", "MEASURED: median over swiglu_forward, rmsnorm_forward of their median "
                                            "rate on 256 KiB arrays (cache-resident); cache_bytes = sysconf per-core "
                                            "L2 size, the working set below which the engine model uses cache_bw");
    jw_str(&w, "adamw_bw", "MEASURED: adamw_update's median rate (28 bytes per parameter) on DRAM-sized arrays, "
                           "every rank at once: the engine model's optimizer rate");
    if (b->n_rank_work > 1)
        jw_str(&w, "rank_time_mean, rank_time_max", "MEASURED: per rank the median over the compute-bound items "
                                                    "(all ranks at once) of its time / rank 0's; mean and max over "
                                                    "ranks: a single process lands on any core, ranks that exchange "
                                                    "every layer wait for the slowest");
    if (b->mem_reserved > 0)
        jw_str(&w, "mem_reserved", "MEASURED: this process's resident set (/proc/self/statm) minus its counted "
                                   "allocations at the end of the run: code, libraries, OpenBLAS and MPI buffers");
    jw_str(&w, "host_bw", "MEASURED: memcpy's median rate in bytes copied per second (a CPU device's 'host' is its "
                          "own memory: offload copies activations with memcpy)");
    if (b->oversub.measured)
        jw_str(&w, "oversub_wait", "MEASURED: extra seconds a 1 KiB all-to-all costs when each core has two "
                                   "runnable ranks (a co-runner thread per rank), beyond its one-rank-per-core "
                                   "time; _measurements.oversub");
    snprintf(s, sizeof s, "sysconf physical memory (%.4g bytes) / %d rank(s) on this host", b->mem.phys_bytes,
             run->host_ranks);
    jw_str(&w, "hbm_bytes", s);
    snprintf(s, sizeof s, "MPI ranks per (emulated) node: %d", cf.devices_per_node);
    jw_str(&w, "devices_per_node", s);
    jw_str(&w, "intra_bw, intra_lat", cf.intra_src);
    jw_str(&w, "inter_bw, inter_lat", cf.inter_src);
    jw_str(&w, "comm_eff_intra, comm_eff_inter", "1.0: the bandwidths are achieved (fitted) rates already");
    jw_obj_close(&w);
    jw_str(&w, "name", b->name);
    jw_num(&w, "peak_bf16", g->peak);
    jw_num(&w, "peak_fp16", g->peak);
    jw_num(&w, "peak_fp32", g->peak);
    jw_num(&w, "peak_fp8", 0);
    jw_int(&w, "hbm_bytes", (long long)b->mem.hbm_bytes); /* whole bytes */
    jw_num(&w, "hbm_bw", b->mem.hbm_bw);
    jw_int(&w, "devices_per_node", cf.devices_per_node);
    jw_num(&w, "intra_bw", cf.intra_bw);
    jw_num(&w, "intra_lat", cf.intra_lat);
    jw_num(&w, "inter_bw", cf.inter_bw);
    jw_num(&w, "inter_lat", cf.inter_lat);
    jw_arr_open(&w, "gemm_eff");
    for (int i = 0; i < g->n_eff; i++) {
        jw_arr_open(&w, NULL);
        jw_num(&w, NULL, g->eff_flops[i]);
        jw_num(&w, NULL, g->eff[i]);
        jw_arr_close(&w);
    }
    jw_arr_close(&w);
    jw_num(&w, "attn_eff", b->attn.eff);
    if (b->attn.n_seq > 1) {
        jw_arr_open(&w, "attn_eff_seq");
        for (int i = 0; i < b->attn.n_seq; i++) {
            jw_arr_open(&w, NULL);
            jw_num(&w, NULL, (double)b->attn.seq_T[i]);
            jw_num(&w, NULL, b->attn.seq_eff[i]);
            jw_num(&w, NULL, b->attn.seq_bwd_over_fwd[i]);
            jw_arr_close(&w);
        }
        jw_arr_close(&w);
    }
    jw_num(&w, "mem_eff", b->mem.mem_eff);
    jw_num(&w, "adamw_bw", b->mem.k[BENCH_MEM_ADAMW].bw_med);
    if (b->oversub.measured) jw_num(&w, "oversub_wait", b->oversub.wait);
    if (b->mem_reserved > 0) jw_num(&w, "mem_reserved", b->mem_reserved);
    jw_num(&w, "host_bw", b->mem.k[BENCH_MEM_MEMCPY].bw_med / 2.0);
    if (b->n_rank_work > 1) {
        jw_num(&w, "rank_time_mean", b->rank_time_mean);
        jw_num(&w, "rank_time_max", b->rank_time_max);
    }
    if (b->mem.cache_bw > 0) {
        jw_num(&w, "cache_bw", b->mem.cache_bw);
        jw_num(&w, "cache_bytes", b->mem.cache_bytes);
    }
    jw_num(&w, "comm_eff_intra", 1.0);
    jw_num(&w, "comm_eff_inter", 1.0);
    put_measurements(&w, run, b);
    jw_obj_close(&w);
    jw_end(&w);
    if (fclose(f) != 0 || !mem) {
        free(mem);
        umoe_fail("bench: cannot finish the JSON text");
        return NULL;
    }
    /* pretty-printed through cJSON, into the counted allocator */
    cJSON *o = cJSON_Parse(mem);
    free(mem);
    char *pretty = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!pretty) {
        umoe_fail("bench: internal error: the JSON text does not parse");
        return NULL;
    }
    *len = strlen(pretty) + 1; /* with a final newline */
    char *out = umoe_malloc(*len + 1, "bench json");
    memcpy(out, pretty, *len - 1);
    out[*len - 1] = '\n';
    out[*len] = 0;
    free(pretty);
    return out;
}

umoe_status bench_write(const char *path, const char *text, size_t len, spec_hardware *loaded) {
    cJSON *o = cJSON_Parse(text);
    if (!o) return umoe_fail("bench: internal error: the JSON text does not parse");
    umoe_status s = spec_hardware_from_json(o, path ? path : "(stdout)", loaded);
    cJSON_Delete(o);
    if (s) {
        char inner[UMOE_ERRLEN];
        umoe_strlcpy(inner, umoe_err, sizeof inner);
        return umoe_fail("bench: the measured spec does not pass the hardware loader, nothing written: %s", inner);
    }
    if (!path) return fwrite(text, 1, len, stdout) == len ? UMOE_OK : umoe_fail("bench: writing to stdout failed");
    if (umoe_write_atomic(path, text, len)) {
        char inner[UMOE_ERRLEN];
        umoe_strlcpy(inner, umoe_err, sizeof inner);
        return umoe_fail("bench: %s (any previous file kept)", inner);
    }
    return UMOE_OK;
}
