/* sim_engine.h - the simulator's model of OUR engine (`umoe train`, fp32 on CPU with OpenBLAS, expert
 * parallelism over MPI ranks on one host), so that `umoe validate --engine` can predict real runs on this
 * machine from the hardware spec `umoe bench` measured. Reads only spec.h (never the engine's headers): the
 * engine's operator list and buffer layout are restated here from its documentation (docs/engine-memory.md,
 * docs/dist.md, docs/engine-validation.md), the same way the published-point model restates Megatron-LM's.
 * Units: seconds, bytes. Counts are tokens unless they say token-assignments (tokens x top-k). */
#ifndef UMOE_SIM_ENGINE_H
#define UMOE_SIM_ENGINE_H
#include "umoe/spec.h"

typedef struct {
    int ranks;            /* MPI ranks (1 = a plain process, no MPI), all on this host */
    int ep;               /* expert-parallel group size (divides ranks) */
    int ranks_per_node;   /* emulated node size (0 = every rank on one node) */
    int hierarchical;     /* 1: hierarchical dispatch (MindSpeed / Pangu), 0: flat all-to-all */
    int placement;        /* dynamic expert placement on (only changes the routing imbalance, an input) */
    int batch;            /* global sequences per step (each rank takes batch / ranks) */
    int T;                /* tokens per sequence */
    unsigned recompute;   /* SPEC_RC_* flags */
    double cores;         /* CPU cores of the host the ranks share */
    double threads;       /* BLAS/OpenMP threads per rank (the engine's runs here: 1) */
    double imbalance;     /* slowest EP rank: max / mean routed token-assignments (>= 1; 1 = balanced) */
    double data_bytes;    /* size of the training data file (the loader reads it whole) */
    double recv_scale;    /* memory: high-water of the routed rows the reporting rank received, relative to a
                           * balanced rank's N K (mean over MoE layers); 0 = 1 (balanced) */
} sim_engine_config;

typedef struct {
    /* time per optimizer step, seconds (the slowest rank) */
    double step_s;
    double gemm_s, attn_s, elementwise_s, recompute_s, ep_s, sync_s, optimizer_s;
    double oversub_s;     /* ranks > cores: collectives waiting for descheduled peers (spec oversub_wait) */
    double ep_copy_s;     /* the engine's row copies around the EP exchanges (packing, staging) */
    double share;         /* fraction of one core each rank gets: min(1, cores / (ranks x threads)) */
    double slow;          /* compute-time factor of the cores the ranks use (spec rank_time_mean for one
                           * process, rank_time_max for several; 1 when the spec has none) */
    /* memory of one rank, bytes (rank 0: the one whose report the engine logs) */
    double params, grads, optimizer;   /* fp32 weights, gradients, AdamW m + v (every expert on every rank) */
    double arena;                       /* the activation arena (docs/engine-memory.md: all four regions) */
    double arena_resident, arena_shared, arena_other;
    double ep_buffers;                  /* EP staging and per-slot expert buffers outside the arena */
    double host_other;                  /* the data file, loader and batch tables */
    double init_peak;                   /* with a recompute policy: held while the default arena is rebuilt
                                         * (before the optimizer state exists); 0 without one */
    double alloc_peak;                  /* everything the counted allocator holds at its peak: the larger of
                                         * the steady state and init_peak */
    double rss;                         /* alloc_peak + the hardware's mem_reserved (the runtime's share) */
} sim_engine_result;

/* Predicts one training step of the engine. UMOE_EINPUT (umoe_err) when the configuration is invalid. */
umoe_status sim_engine_run(const spec_model *m, const spec_hardware *h, const sim_engine_config *c,
                           sim_engine_result *r);
/* The memory half alone (fills the memory fields of r; no hardware needed). */
void sim_engine_memory(const spec_model *m, const sim_engine_config *c, sim_engine_result *r);
/* Expected nodes one token's top-K experts land on, the experts in `nodes` equal blocks (uniform top-K). */
double sim_engine_nodes_touched(const spec_model *m, double nodes);
#endif
