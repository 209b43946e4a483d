/* bench_membw.c - memory bandwidth of this machine (per device = per rank, measured with every rank of the
 * host streaming at once) and the bandwidth the engine's element-wise kernels reach.
 *   copy   a = b           8 bytes per element   } STREAM (McCalpin, "Memory bandwidth and machine balance",
 *   triad  a = b + s c    12 bytes per element   } IEEE TCCA newsletter 1995): reads + writes, write-allocate
 *   memcpy memcpy(a, b)    8 bytes per element     not counted; arrays far larger than the caches
 *   swiglu_forward, rmsnorm_forward, adamw_update: the engine's own kernels (12, 8 and 28 bytes per element)
 * hbm_bw = triad's best rate (STREAM's headline figure). mem_eff = the median over the three engine kernels
 * of (median rate / hbm_bw), clamped to (0, 1]: the simulator's memory-bound time is bytes / (hbm_bw x
 * mem_eff) (src/sim/cost_compute.c), so their product is the rate the engine's element-wise kernels reach.
 * hbm_bytes = physical memory (sysconf) / ranks on this host.
 * cache_bw: swiglu_forward and rmsnorm_forward again on BENCH_CACHE_FLOATS-float arrays (3 x 256 KiB, inside the
 * per-core L2 that sysconf reports, 2 MiB on the development machine), as the engine's activations of small
 * models are (tiny-moe: 512 tokens x 128 x 4 B = 256 KiB per tensor); the median of their median rates, and
 * cache_bytes = that L2 size: the simulator charges an element-wise kernel whose bytes fit in cache_bytes at
 * cache_bw instead of hbm_bw x mem_eff (src/sim/cost_engine.c). Each rank measures its own core's L2, so the
 * other ranks streaming at the same time do not share it.
 * Does not: measure latency or NUMA effects, or an L3 level (the VM's reported 300 MiB L3 is the host's). */
#include <math.h>
#include <string.h>
#include <unistd.h>
#include "bench.h"
#include "umoe/nn.h"

/* Array sizes: on the development machine (a VM reporting a 300 MiB L3 shared with its host) triad and copy
 * reach their DRAM plateau from 32 MiB per array on (docs/bench.md); full = 2x that, quick = at it. */
#define BENCH_MEM_FLOATS_FULL (16u << 20) /* 64 MiB per array */
#define BENCH_MEM_FLOATS_QUICK (8u << 20) /* 32 MiB per array */
#define BENCH_RMS_C 1024                   /* rmsnorm row width */
#define BENCH_CACHE_FLOATS (64u << 10)     /* 256 KiB per array: swiglu's 3 arrays stay in a 2 MiB L2 */

typedef struct {
    float *a, *b, *c, *d, *rstd, *w;
    size_t n;
    int t; /* adamw step */
} mem_arg;

static void k_copy(void *p) {
    mem_arg *m = p;
    float *restrict a = m->a;
    const float *restrict b = m->b;
    long n = (long)m->n;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) a[i] = b[i];
}

static void k_triad(void *p) {
    mem_arg *m = p;
    float *restrict a = m->a;
    const float *restrict b = m->b, *restrict c = m->c;
    const float s = 3.0f;
    long n = (long)m->n;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}

static void k_memcpy(void *p) {
    mem_arg *m = p;
    memcpy(m->a, m->b, m->n * sizeof(float));
}

static void k_swiglu(void *p) {
    mem_arg *m = p;
    swiglu_forward(m->a, m->b, m->c, m->n);
}

static void k_rmsnorm(void *p) {
    mem_arg *m = p;
    rmsnorm_forward(m->a, m->rstd, m->b, m->w, m->n / BENCH_RMS_C, BENCH_RMS_C, 1e-6f);
}

static void k_adamw(void *p) {
    mem_arg *m = p;
    adamw_update(m->a, m->b, m->c, m->d, m->n, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, ++m->t);
}

umoe_status bench_membw_run(const bench_run *run, bench_mem_result *r) {
    memset(r, 0, sizeof *r);
    mem_arg m = {.n = run->quick ? BENCH_MEM_FLOATS_QUICK : BENCH_MEM_FLOATS_FULL};
    size_t bytes = m.n * sizeof(float), rows = m.n / BENCH_RMS_C;
    r->n = m.n;
    long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (llc <= 0) llc = sysconf(_SC_LEVEL2_CACHE_SIZE);
    r->llc_bytes = llc > 0 ? (double)llc : 0;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return umoe_fail("bench: sysconf cannot tell the physical memory size");
    r->phys_bytes = (double)pages * (double)psz;
    r->hbm_bytes = r->phys_bytes / (run->host_ranks > 0 ? run->host_ranks : 1);

    m.a = umoe_malloc(bytes, "bench mem a");
    m.b = umoe_malloc(bytes, "bench mem b");
    m.c = umoe_malloc(bytes, "bench mem c");
    m.d = umoe_malloc(bytes, "bench mem d");
    m.rstd = umoe_malloc(rows * sizeof(float), "bench mem rstd");
    m.w = umoe_malloc(BENCH_RMS_C * sizeof(float), "bench mem w");
    bench_fill(m.a, m.n, 21);
    bench_fill(m.b, m.n, 22);
    bench_fill(m.c, m.n, 23);
    bench_fill(m.d, m.n, 24);
    for (size_t i = 0; i < m.n && i < 4096; i++) m.d[i] = fabsf(m.d[i]); /* adamw's v >= 0 (fill repeats 4096) */
    for (size_t i = 4096; i < m.n; i += 4096) memcpy(m.d + i, m.d, (m.n - i < 4096 ? m.n - i : 4096) * sizeof(float));
    bench_fill(m.w, BENCH_RMS_C, 25);

    static const struct { const char *name; bench_fn fn; double bytes_per_elem; } ks[BENCH_MEM_COUNT] = {
        [BENCH_MEM_COPY] = {"copy", k_copy, 8},
        [BENCH_MEM_TRIAD] = {"triad", k_triad, 12},
        [BENCH_MEM_MEMCPY] = {"memcpy", k_memcpy, 8},
        [BENCH_MEM_SWIGLU] = {"swiglu_forward", k_swiglu, 12},
        [BENCH_MEM_RMSNORM] = {"rmsnorm_forward", k_rmsnorm, 8},
        [BENCH_MEM_ADAMW] = {"adamw_update", k_adamw, 28},
    };
    double budget = run->quick ? 0.03 : 0.25;
    int min_reps = 3;
    LOG_INFO("bench: memory bandwidth, %zu MiB per array (last-level cache %.0f MiB)", bytes >> 20,
             r->llc_bytes / (1 << 20));
    for (int i = 0; i < BENCH_MEM_COUNT; i++) {
        bench_mem_kernel *k = &r->k[i];
        k->name = ks[i].name;
        k->bytes = ks[i].bytes_per_elem * (double)m.n;
        bench_measure(run, ks[i].fn, &m, budget, min_reps, &k->t);
        k->bw_best = k->bytes / k->t.min;
        k->bw_med = k->bytes / k->t.med;
        LOG_INFO("bench: %-16s best %6.2f GB/s, median %6.2f GB/s (%d reps)", k->name, k->bw_best / 1e9,
                 k->bw_med / 1e9, k->t.reps);
    }
    /* the same kernels on cache-resident arrays: the first BENCH_CACHE_FLOATS of the arrays, re-used */
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    r->cache_bytes = l2 > 0 ? (double)l2 : 0;
    r->cache_n = BENCH_CACHE_FLOATS;
    if (r->cache_bytes >= 3.0 * BENCH_CACHE_FLOATS * sizeof(float) && m.n >= BENCH_CACHE_FLOATS) {
        mem_arg mc = m;
        mc.n = BENCH_CACHE_FLOATS;
        static const int ci[2] = {BENCH_MEM_SWIGLU, BENCH_MEM_RMSNORM};
        double med[2];
        for (int i = 0; i < 2; i++) {
            bench_mem_kernel *k = &r->ck[i];
            k->name = ks[ci[i]].name;
            k->bytes = ks[ci[i]].bytes_per_elem * (double)mc.n;
            bench_measure(run, ks[ci[i]].fn, &mc, budget, min_reps, &k->t);
            k->bw_best = k->bytes / k->t.min;
            k->bw_med = med[i] = k->bytes / k->t.med;
            LOG_INFO("bench: %-16s in cache (%zu KiB per array): best %6.2f GB/s, median %6.2f GB/s (%d reps)",
                     k->name, (mc.n * sizeof(float)) >> 10, k->bw_best / 1e9, k->bw_med / 1e9, k->t.reps);
        }
        r->cache_bw = umoe_median(med, 2);
    } else {
        r->cache_bytes = 0; /* L2 unknown or too small for the arrays: no cache rate */
    }
    umoe_free(m.a, bytes);
    umoe_free(m.b, bytes);
    umoe_free(m.c, bytes);
    umoe_free(m.d, bytes);
    umoe_free(m.rstd, rows * sizeof(float));
    umoe_free(m.w, BENCH_RMS_C * sizeof(float));

    r->hbm_bw = r->k[BENCH_MEM_TRIAD].bw_best;
    if (!(r->hbm_bw > 0)) return umoe_fail("bench: memory timing gave no positive rate (clock failure?)");
    double e[3] = {r->k[BENCH_MEM_SWIGLU].bw_med / r->hbm_bw, r->k[BENCH_MEM_RMSNORM].bw_med / r->hbm_bw,
                   r->k[BENCH_MEM_ADAMW].bw_med / r->hbm_bw};
    r->mem_eff = umoe_median(e, 3);
    if (r->mem_eff > 1) r->mem_eff = 1;
    if (r->mem_eff < 1e-3) r->mem_eff = 1e-3;
    return UMOE_OK;
}
