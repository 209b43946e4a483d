/* dist.h - expert parallelism over MPI: communicators of the DP x EP layout (with
 * emulated nodes), the expert-parallel dispatch/combine exchange of rows of C floats (flat and hierarchical,
 * blocking and non-blocking), bucketed gradient all-reduce, and start-up safety checks (config/binary hash,
 * MPI errors turned into messages). Owned by src/dist. See docs/dist.md for layouts and byte accounting.
 *
 * Last section: ep_moe, the model's MoE hooks (model.h) implemented over the exchange.
 * Does not: route tokens, do expert math (ep_moe calls model_experts_*), or move weights for dynamic
 * placement by itself (dist_placement_* decide, dist_placement_move moves). Everything but the placement
 * arithmetic exists only when built with MPI (UMOE_MPI defined).
 *
 * Units. A "row" is C floats. Token-assignments (tokens x top-k) are the unit of every count below unless it
 * says tokens: the dispatch moves one row per token-assignment (the hierarchical path moves one row per
 * token per destination node across nodes, then one row per token-assignment inside the node). Byte counts
 * are bytes sent by this rank to other ranks (its own copies are not counted). */
#ifndef UMOE_DIST_H
#define UMOE_DIST_H
#include <stddef.h>
#include <stdint.h>
#include "umoe/common.h"

/* ---------------------------------------------------------------- dynamic expert placement, arithmetic
 * (src/dist/placement.c; no MPI, so declared with or without UMOE_MPI). Loads are token-assignments per step.
 * Paper: Pangu Ultra MoE (arXiv 2505.04519) dynamic expert placement; see docs/dist.md. */
typedef struct {
    int n_layers, n_experts; /* MoE layers (slots) and routed experts per layer */
    int window;              /* W: steps kept */
    double theta;            /* EMA decay (0.9 in the paper) */
    double *hist;            /* (W, n_layers, n_experts) ring of per-step loads */
    int n_hist, head;        /* steps kept so far (<= W); next ring slot */
} dist_load_window;
umoe_status dist_load_window_init(dist_load_window *w, int n_layers, int n_experts, int window, double theta);
void dist_load_window_free(dist_load_window *w);
/* Append one step's loads (n_layers, n_experts); the oldest step leaves the window once W are kept. */
void dist_load_window_push(dist_load_window *w, const double *load);
/* pred (n_experts) of one layer: sum_k theta^k x_{t-k} / sum_k theta^k over the kept steps (k = 0 newest). */
void dist_load_window_predict(const dist_load_window *w, int layer, double *pred);

/* rank_load (ep_size) = sum of load[e] over the experts each rank owns. */
void dist_placement_rank_loads(double *rank_load, const int32_t *owner, const double *load, int n_experts,
                               int ep_size);
double dist_cv(const double *v, int n);            /* population std / mean (0 when the mean is 0) */
double dist_max_over_mean(const double *v, int n); /* the imbalance max / mean (0 when all are 0) */
/* Greedy longest-processing-time packing: experts by decreasing load (ties: lower id), each to the least
 * loaded rank (ties: lower rank) among the ranks holding fewer than n_experts / ep_size experts. */
void dist_placement_lpt(int32_t *owner, const double *load, int n_experts, int ep_size);
/* Rename the bins of owner_new (a packing) to ranks so that as many experts as possible keep their rank in
 * owner_old (greedy largest-overlap matching). Returns the number of experts that move. */
int dist_placement_relabel(int32_t *owner_new, const int32_t *owner_old, int n_experts, int ep_size);

typedef struct {
    double min_cv_drop;        /* apply only when CV(before) - CV(after) >= this (paper: 0.08) */
    double sec_per_assignment; /* expert compute seconds per token-assignment on one rank (measured) */
    double bytes_per_sec;      /* bandwidth assumed for the weight moves */
    uint64_t bytes_per_expert; /* bytes moved per expert: weights + AdamW m + v */
    long horizon_steps;        /* steps the placement should last (the re-placement interval) */
} dist_placement_policy;
typedef struct {
    double cv_before, cv_after;   /* CV of the predicted rank loads */
    double imb_before, imb_after; /* predicted max / mean rank load */
    int moves;                    /* experts whose owner changes */
    uint64_t bytes;               /* bytes one EP group moves = moves x bytes_per_expert */
    double gain_s, cost_s;        /* predicted seconds saved over the horizon; seconds to move */
    int apply;                    /* moves > 0, CV drop >= min_cv_drop and gain_s > cost_s */
} dist_placement_decision;
/* LPT + relabel of the predicted loads pred (n_experts) into owner_new, and the decision against owner_old. */
void dist_placement_decide(int32_t *owner_new, const int32_t *owner_old, const double *pred, int n_experts,
                           int ep_size, const dist_placement_policy *pol, dist_placement_decision *dec);

#ifdef UMOE_MPI
#include <mpi.h>

/* ---------------------------------------------------------------- layout and communicators */
typedef struct {
    int ep_size;        /* ranks per expert-parallel group (consecutive world ranks); must divide R */
    int n_experts;      /* routed experts (physical expert slots) per MoE layer; must be a multiple of ep_size */
    int ranks_per_node; /* 0: detect nodes with MPI_COMM_TYPE_SHARED; N > 0: ranks r..r+N-1 form an emulated node */
} dist_config;

typedef struct {
    MPI_Comm world;    /* dup of MPI_COMM_WORLD: the dense-gradient DP group (all R ranks) */
    MPI_Comm ep;       /* this rank's EP group, ranks g*E .. g*E+E-1; rank in it = ep_rank */
    MPI_Comm edp;      /* expert-DP group: the R/E ranks with the same ep_rank; rank in it = ep_group */
    MPI_Comm node;     /* ranks of this (possibly emulated) node; rank in it = node_rank */
    MPI_Comm ep_node;  /* EP-group ranks on this node (ep_local of them); rank in it = ep_local_rank */
    MPI_Comm ep_cross; /* EP-group ranks with this ep_local_rank, one per node the group spans; rank = ep_node_idx */
    int rank, size;                 /* world */
    int ep_size, ep_rank, ep_group, n_ep_groups;
    int ranks_per_node, node_id, n_nodes, node_rank, nodes_detected; /* nodes_detected: 1 from MPI, 0 override */
    int ep_local;      /* EP-group ranks per node = min(ranks_per_node, ep_size) */
    int ep_nodes;      /* nodes one EP group spans = ep_size / ep_local */
    int ep_local_rank; /* = ep_rank % ep_local */
    int ep_node_idx;   /* = ep_rank / ep_local */
    int n_experts, n_local_experts; /* n_local_experts = n_experts / ep_size */
} dist_ctx;

/* Collective over MPI_COMM_WORLD (MPI must be initialised). Installs MPI_ERRORS_RETURN on MPI_COMM_WORLD and
 * every communicator made here. A bad layout (R % E, n_experts % E, ranks_per_node vs R and E, nodes that are
 * not equal blocks of consecutive ranks) returns UMOE_EINPUT with the reason in umoe_err, on every rank, and
 * creates nothing. */
umoe_status dist_init(dist_ctx *d, const dist_config *cfg);
void dist_free(dist_ctx *d);
/* EP rank (0..E-1) <-> node index inside the EP group: ep_rank / ep_local. */
static inline int dist_ep_rank_node(const dist_ctx *d, int ep_rank) { return ep_rank / d->ep_local; }

/* ---------------------------------------------------------------- errors and safety */
/* Turn a failed MPI call into umoe_err ("rank R: MPI_Xxx failed at file:line: <MPI's message>"), log it, and
 * return UMOE_EFAIL. */
umoe_status dist_mpi_fail(int mpi_rc, const char *call, const char *file, int line);
#define DIST_MPI(call)                                                                     \
    do {                                                                                   \
        int dist_rc_ = (call);                                                             \
        if (dist_rc_ != MPI_SUCCESS) return dist_mpi_fail(dist_rc_, #call, __FILE__, __LINE__); \
    } while (0)

/* 64-bit FNV-1a (Fowler-Noll-Vo, 1991) of bytes; a file's contents (0 if unreadable); this executable. */
uint64_t dist_hash_bytes(const void *p, size_t n, uint64_t seed);
uint64_t dist_hash_file(const char *path);
uint64_t dist_hash_self_exe(void);
/* Collective over comm: MPI_Allreduce of (hash, ~hash) with MPI_MIN gives min and max. All equal: UMOE_OK.
 * Otherwise UMOE_EINPUT on every rank; rank 0 names the ranks whose hash differs from rank 0's in umoe_err
 * and logs it. `what` names the thing hashed ("config", "binary"). A caller exits UMOE_EXIT_INPUT on all ranks. */
umoe_status dist_check_hash(MPI_Comm comm, uint64_t hash, const char *what);
/* Start-up check over d->world: this executable's hash, then config_hash (e.g. dist_hash_file of the model
 * config, chained with the command line). */
umoe_status dist_check_startup(const dist_ctx *d, uint64_t config_hash);
/* For a failure every rank saw (a status from the checks above, a bad layout): MPI_Finalize, then exit(code)
 * (UMOE_EXIT_INPUT for bad input). A failure only some ranks saw must use MPI_Abort instead. */
void dist_finalize_exit(int code) __attribute__((noreturn));

/* ---------------------------------------------------------------- grow-only buffers (dropless) */
typedef struct {
    void *p;
    size_t cap;       /* bytes */
    const char *what; /* name in the growth log */
} dist_buf;
/* Ensure at least `bytes`; grows to exactly the new high-water mark with umoe_realloc and logs each growth. */
void *dist_buf_reserve(dist_buf *b, size_t bytes);
void dist_buf_free(dist_buf *b);

/* ---------------------------------------------------------------- expert placement */
/* owner[e] = EP rank that holds expert e, for e < n_experts. Every rank must hold exactly n_experts / E
 * experts. The default is blocks: owner[e] = e / (n_experts / E). */
void dist_placement_default(int32_t *owner, int n_experts, int ep_size);
umoe_status dist_placement_check(const int32_t *owner, int n_experts, int ep_size);

/* ---------------------------------------------------------------- EP dispatch / combine */
typedef enum { EP_A2A_FLAT = 0, EP_A2A_HIER = 1 } ep_a2a_kind;
const char *ep_a2a_name(ep_a2a_kind k);

typedef struct {
    uint64_t row_bytes_intra, row_bytes_inter;   /* row payload sent to ranks on this node / on other nodes */
    uint64_t meta_bytes_intra, meta_bytes_inter; /* counts and index lists sent when building plans */
    uint64_t calls;                               /* exchanges (dispatch or combine) */
    double seconds; /* wall time inside ep_start/ep_progress/ep_wait: the communication left exposed */
} ep_traffic;
/* ep_plan_traffic_last: row fields and seconds of the last exchange, meta fields of the last plan build. */

/* Which exchange. DISPATCH: rows are copies of their tokens (several token-assignments of one token carry the
 * same row), so the hierarchical plan may send one copy per token per node. DISPATCH_ROWS: every row distinct
 * (e.g. the gradient of a combine): always the flat exchange, since no copy can be shared. COMBINE: the exact
 * reverse of a dispatch (flat; each row is a distinct expert output). */
typedef enum { EP_OP_DISPATCH = 0, EP_OP_DISPATCH_ROWS = 1, EP_OP_COMBINE = 2 } ep_op;

typedef struct ep_plan ep_plan; /* opaque (src/dist/ep_plan_internal.h); build once per layer per step */

umoe_status ep_plan_init(ep_plan **p, const dist_ctx *d, ep_a2a_kind kind);
void ep_plan_free(ep_plan *p);
/* Collective over the EP group. counts[e] (e < n_experts): this rank's token-assignment rows for expert e.
 * Send rows are laid out grouped by expert id ascending (rows of expert e at sum_{e'<e} counts[e']), in any
 * order inside a group: that order is the "source order". row_token (n_send entries) names the token of each
 * send row (rows with the same value are copies of one token); required for EP_A2A_HIER, ignored for flat.
 * owner: placement table (NULL = dist_placement_default). Exchanges counts (and, for HIER, the per-node
 * token index lists), so the dispatch and combine calls after it move rows only.
 *
 * Receive layout (both kinds, bit-identical): this rank's local experts in ascending expert id; inside one,
 * source EP ranks ascending; inside one source, that source's rows in source order. */
umoe_status ep_plan_build(ep_plan *p, const int32_t *counts, const int32_t *row_token, const int32_t *owner);
/* When the caller does not track tokens: ids from row contents (bytewise-equal rows share an id, numbered by
 * first appearance), usable as row_token. Returns the number of distinct rows. One hash pass over the rows. */
size_t ep_rows_token_ids(const float *rows, size_t n, size_t C, int32_t *row_token);
size_t ep_plan_n_send(const ep_plan *p);          /* token-assignment rows this rank sends */
size_t ep_plan_n_recv(const ep_plan *p);          /* token-assignment rows this rank receives */
int ep_plan_n_local(const ep_plan *p);            /* local experts */
int ep_plan_local_expert(const ep_plan *p, int j); /* expert id of local expert j (ascending) */
const int32_t *ep_plan_recv_offsets(const ep_plan *p); /* (n_local + 1): rows of local expert j in recv */
const int32_t *ep_plan_recv_counts(const ep_plan *p);  /* (E, n_local): rows from source s for local expert j */
const ep_traffic *ep_plan_traffic_last(const ep_plan *p);  /* see ep_traffic */
const ep_traffic *ep_plan_traffic_total(const ep_plan *p); /* cumulative since init */
/* Collective over the EP group: max over its ranks of received token-assignments / mean (1 when balanced;
 * 0 when nothing is routed). */
umoe_status ep_plan_imbalance(const ep_plan *p, double *max_over_mean);

/* Non-blocking exchange: one in flight per plan; `in` and `out` must stay untouched until ep_wait.
 *   DISPATCH / DISPATCH_ROWS: in = send rows (n_send, C), out = recv rows (n_recv, C).
 *   COMBINE: in = rows in the receive layout (n_recv, C), out = rows in the send layout (n_send, C).
 * The hierarchical DISPATCH overlaps its inter-node stage with the caller's work; its intra-node stage starts in
 * ep_progress (if called after the first stage arrived) or else in ep_wait. */
umoe_status ep_start(ep_plan *p, ep_op op, float *out, const float *in, size_t C);
umoe_status ep_wait(ep_plan *p);
/* Optional, between chunks of the caller's work: lets MPI progress; for the hierarchical dispatch, starts the
 * intra-node stage as soon as the inter-node stage has arrived, so both stages can overlap the caller's work.
 * *done = 1 when the exchange is complete (ep_wait is still required). */
umoe_status ep_progress(ep_plan *p, int *done);
/* Blocking forms. Dispatch and combine are each other's backward and reuse the plan's counts. */
umoe_status ep_dispatch_forward(ep_plan *p, float *recv, const float *send, size_t C);
umoe_status ep_dispatch_backward(ep_plan *p, float *dsend, const float *drecv, size_t C);
umoe_status ep_combine_forward(ep_plan *p, float *out, const float *in, size_t C);
umoe_status ep_combine_backward(ep_plan *p, float *din, const float *dout, size_t C);

/* ---------------------------------------------------------------- gradient sync */
typedef struct {
    uint64_t calls, bytes; /* MPI_Allreduce calls and bytes of data reduced (floats x 4), cumulative */
    double seconds;
} dist_sync_stats;
/* In-place sum all-reduce of x (n floats) over comm in buckets of bucket_floats (0: one bucket, split only
 * at INT_MAX). Dense grads: comm = world; expert grads: comm = edp. stats may be NULL. */
umoe_status dist_allreduce_sum(float *x, size_t n, MPI_Comm comm, size_t bucket_floats, dist_sync_stats *stats);
/* In-place sum all-reduce of a few doubles (statistics: aux-loss expert counts and probability sums over the
 * EP group, d->ep, for the EP-group scope; over world for the global-batch scope). */
umoe_status dist_allreduce_sum_f64(double *x, size_t n, MPI_Comm comm);

/* ---------------------------------------------------------------- the model's MoE hooks over EP */
/* ep_moe installs model_moe_ops (model.h) that run each MoE layer's routed experts with expert parallelism:
 * dispatch the grouped token-assignment rows to the ranks owning the experts (flat or hierarchical), run
 * model_experts_* on the local experts, combine the outputs back; backward reuses the layer's plan. With the
 * spec's aux_scope == SPEC_AUX_EP_GROUP it also sums the aux-loss statistics over the EP group.
 * Works on a full model (model_init: every expert on every rank, only the owners' used) and on an
 * expert-sharded one (model_init_sharded: only this rank's experts, in slots; model_experts_* map ids). */
#include "umoe/model.h"
typedef struct ep_moe ep_moe;
umoe_status ep_moe_init(ep_moe **x, const dist_ctx *d, umoe_model *m, ep_a2a_kind kind);
void ep_moe_free(ep_moe *x);
const model_moe_ops *ep_moe_ops(const ep_moe *x); /* pass to model_set_moe_ops */
/* Placement of MoE slot `slot` from its next forward on (NULL: default blocks); see dist_placement_check. */
umoe_status ep_moe_set_placement(ep_moe *x, int slot, const int32_t *owner);
int ep_moe_is_local(const ep_moe *x, int slot, int expert); /* this rank owns `expert` in `slot` */
const int32_t *ep_moe_owner(const ep_moe *x, int slot); /* (n_experts) the slot's placement table */
/* Overlap (--overlap on): install the model's split hooks, so the dispatch (forward) and the combine's backward
 * are in flight (non-blocking MPI) while the model computes the shared experts; same results bit for bit.
 * Takes effect from the next forward (the model keeps a pointer to ep_moe_ops(x)). */
void ep_moe_set_overlap(ep_moe *x, int on);
typedef struct {
    double dispatch_s; /* wall seconds in dispatch forward + dispatch backward (incl. waiting for peers) */
    double expert_s;   /* in the local experts, forward + backward */
    double combine_s;  /* in combine forward + combine backward */
    double rows_recv;  /* token-assignments received (forward passes) */
} ep_moe_times;
const ep_moe_times *ep_moe_times_get(const ep_moe *x); /* cumulative since init */
/* Traffic summed over all MoE slots' plans since init. */
void ep_moe_traffic(const ep_moe *x, ep_traffic *total);
/* Gradient sync of the model's flat grad block: dense tensors summed over d->world, each local expert's
 * tensors over d->edp, non-local experts' left untouched (zero here; their owners hold them). In buckets of
 * bucket_floats over contiguous runs of tensors of the same kind. Sums, not means. */
umoe_status ep_moe_grad_sync(ep_moe *x, size_t bucket_floats, dist_sync_stats *stats);

/* ---------------------------------------------------------------- dynamic expert placement over MPI
 * (src/dist/placement_move.c). Collective over d->ep: for every expert of MoE slot `slot` whose owner changes,
 * the old owner sends the expert's tensors of each block (flat blocks laid out like the model's params, e.g.
 * params, AdamW m, v) to the new owner (MPI_Isend/Irecv, tag = expert id). bytes_sent: this rank's bytes.
 * An expert-sharded model (model_init_sharded) receives an expert into the slot of one leaving it (swap
 * semantics; model_expert_rebind renames the slot); a full model receives it in place. */
umoe_status dist_placement_move(const dist_ctx *d, umoe_model *m, int slot, const int32_t *owner_old,
                                const int32_t *owner_new, float *const *blocks, int n_blocks, uint64_t *bytes_sent);
typedef struct {
    int interval;         /* N: decide every N steps; 0 = off (loads and imbalance are still measured) */
    int window;           /* steps in the load window */
    double theta;         /* EMA decay (0.9) */
    double min_cv_drop;   /* 0.08 */
    double bytes_per_sec; /* assumed move bandwidth for the cost side of the decision */
} dist_placement_config;
typedef struct {
    uint64_t decisions, replacements, moves, bytes; /* bytes: all ranks together, cumulative */
    double last_imb_before, last_imb_after;         /* predicted, of the last applied re-placement */
} dist_placer_stats;
typedef struct dist_placer dist_placer;
umoe_status dist_placer_init(dist_placer **p, const dist_ctx *d, ep_moe *x, umoe_model *m,
                             const dist_placement_config *cfg);
void dist_placer_free(dist_placer *p);
/* Collective over world, once per step. load (n_moe, n_experts): this rank's token-assignments of the step.
 * Sums them over the EP group (what each owner receives) and over all ranks (what all ranks agree to predict
 * from), and writes imb (n_moe): max over all ranks of received token-assignments / mean, with the placement
 * in force. sec_per_assignment: this rank's measured expert seconds per received assignment (max is used). */
umoe_status dist_placer_observe(dist_placer *p, const double *load, double sec_per_assignment, double *imb);
/* Collective over world, after the optimizer step `step` (1-based): when step % interval == 0, decide each
 * layer's placement from the window's prediction and, when it pays, move the experts (blocks: params, m, v)
 * and install the table in ep_moe. Each applied re-placement is logged (rank 0). */
umoe_status dist_placer_step(dist_placer *p, long step, float *const *blocks, int n_blocks);
const dist_placer_stats *dist_placer_stats_get(const dist_placer *p);
#endif /* UMOE_MPI */
#endif
