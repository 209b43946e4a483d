/* train_ep.h - the training loop over MPI ranks with expert parallelism (src/train/train_ep.c): data
 * parallel over all R ranks for the dense parameters, experts sharded over EP groups of E consecutive ranks
 * and replicated over the R / E expert-data-parallel groups, the global batch split into R equal slices, dense
 * gradients summed over all ranks and each expert's over its expert-DP group (flat blocks, in buckets),
 * dynamic expert placement, and checkpoints of the full model written by rank 0.
 * Owned by the EP engineer (issue #4); see docs/dist.md. Without MPI (UMOE_MPI undefined) train_ep_run
 * refuses with UMOE_EINPUT. Does not: parse flags (src/cli/cmd_train.c). */
#ifndef UMOE_TRAIN_EP_H
#define UMOE_TRAIN_EP_H
#include "umoe/train.h"

typedef struct {
    int ep;                 /* E: ranks per expert-parallel group (must divide R and the expert count) */
    int hierarchical;       /* 0: flat all-to-all, 1: hierarchical (Pangu Ultra MoE) */
    int ranks_per_node;     /* 0: detect nodes (MPI_COMM_TYPE_SHARED); N: emulate nodes of N ranks */
    int overlap;            /* 1: dispatch / combine-backward in flight while the shared experts compute */
    int placement;          /* dynamic expert placement every N steps; 0 = off */
    int placement_window;   /* steps of load history (default 10) */
    double placement_bw;    /* bytes/s assumed for expert moves in the gain-vs-cost test (default 1e9) */
    int aux_scope;          /* -1: the model's; else a spec_aux_scope value */
    long bucket_floats;     /* gradient all-reduce bucket, floats (0 = one call per run of tensors) */
} train_ep_opts;
void train_ep_opts_defaults(train_ep_opts *e);

/* Train over MPI_COMM_WORLD (initialises MPI when needed; every rank must call train_ep_finalize afterwards,
 * once rank 0 has printed its result or error, so that mpirun does not end the job before it is printed). c->o.B is the GLOBAL batch: every rank takes B / R sequences of each
 * micro-batch of one shared, seeded data order, so a run gives the same global batches at any R.
 * *is_root = 1 on world rank 0 (the rank that prints). UMOE_EINPUT: bad layout, flags, data on some rank,
 * a config/binary hash mismatch across ranks, or a bad checkpoint (umoe_err says which, on every rank). */
umoe_status train_ep_run(const spec_model *s, const train_config *c, const train_ep_opts *e, train_result *r,
                         int *is_root);
void train_ep_finalize(void); /* MPI_Finalize when train_ep_run initialised MPI; harmless otherwise */
#endif
