/* dist_comm.c - the DP x EP layout over MPI ranks: validates it and builds the communicators (world dup,
 * EP group, expert-DP group, node, EP-group-on-this-node, EP-group-same-local-index-across-nodes).
 * Layout (issue #4): EP groups are blocks of E consecutive world ranks; expert-DP groups hold the ranks with
 * the same position in every EP group; nodes are blocks of ranks_per_node consecutive ranks, either detected
 * with MPI_COMM_TYPE_SHARED or given (so one machine can emulate several nodes).
 * Does not: move data (ep_exchange.c, grad_sync.c) or decide placement (ep_plan.c takes a table). */
#ifdef UMOE_MPI
#include <string.h>
#include "umoe/dist.h"

static void comm_free(MPI_Comm *c) {
    if (*c != MPI_COMM_NULL) MPI_Comm_free(c);
    *c = MPI_COMM_NULL;
}

void dist_free(dist_ctx *d) {
    comm_free(&d->ep_cross);
    comm_free(&d->ep_node);
    comm_free(&d->node);
    comm_free(&d->edp);
    comm_free(&d->ep);
    comm_free(&d->world);
}

/* Split `parent` by color (key = rank in parent) and make its errors return. */
static umoe_status split(MPI_Comm parent, int color, int key, MPI_Comm *out) {
    DIST_MPI(MPI_Comm_split(parent, color, key, out));
    DIST_MPI(MPI_Comm_set_errhandler(*out, MPI_ERRORS_RETURN));
    return UMOE_OK;
}

/* Node detection with MPI_COMM_TYPE_SHARED. Every node must be a block of the same number of consecutive
 * world ranks (what mpirun's default --map-by slot/core gives), since EP groups are consecutive ranks. */
static umoe_status detect_nodes(dist_ctx *d) {
    DIST_MPI(MPI_Comm_split_type(d->world, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &d->node));
    DIST_MPI(MPI_Comm_set_errhandler(d->node, MPI_ERRORS_RETURN));
    int nsize, nrank, lo;
    DIST_MPI(MPI_Comm_size(d->node, &nsize));
    DIST_MPI(MPI_Comm_rank(d->node, &nrank));
    DIST_MPI(MPI_Allreduce(&d->rank, &lo, 1, MPI_INT, MPI_MIN, d->node));
    /* ok = 1 when this node is the block [lo, lo + nsize) and this rank sits at lo + nrank */
    int mine[3] = {nsize, -nsize, lo + nrank == d->rank && lo % nsize == 0}, all[3];
    DIST_MPI(MPI_Allreduce(mine, all, 3, MPI_INT, MPI_MIN, d->world));
    if (all[0] != -all[1] || !all[2]) {
        comm_free(&d->node);
        return umoe_fail("nodes detected by MPI_COMM_TYPE_SHARED are not equal blocks of consecutive ranks "
                         "(node sizes %d..%d); map ranks by slot (mpirun --map-by slot) or give "
                         "ranks_per_node (--ranks-per-node)", all[0], -all[1]);
    }
    d->ranks_per_node = nsize;
    d->nodes_detected = 1;
    return UMOE_OK;
}

umoe_status dist_init(dist_ctx *d, const dist_config *cfg) {
    memset(d, 0, sizeof *d);
    d->world = d->ep = d->edp = d->node = d->ep_node = d->ep_cross = MPI_COMM_NULL;
    DIST_MPI(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    DIST_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    DIST_MPI(MPI_Comm_size(MPI_COMM_WORLD, &d->size));
    const int R = d->size, E = cfg->ep_size, X = cfg->n_experts, P = cfg->ranks_per_node;
    if (E < 1 || R % E != 0)
        return umoe_fail("ep_size (--ep) = %d does not divide the %d MPI ranks; allowed: a divisor of %d", E, R, R);
    if (X < 1 || X % E != 0)
        return umoe_fail("n_experts = %d is not a positive multiple of ep_size = %d; each EP rank must hold the "
                         "same number of experts", X, E);
    if (P < 0 || (P > 0 && R % P != 0))
        return umoe_fail("ranks_per_node (--ranks-per-node) = %d does not divide the %d MPI ranks; allowed: 0 "
                         "(detect) or a divisor of %d", P, R, R);
    DIST_MPI(MPI_Comm_dup(MPI_COMM_WORLD, &d->world));
    DIST_MPI(MPI_Comm_set_errhandler(d->world, MPI_ERRORS_RETURN));
    if (P > 0) {
        d->ranks_per_node = P;
        umoe_status st = split(d->world, d->rank / P, d->rank, &d->node);
        if (st) return st;
    } else {
        umoe_status st = detect_nodes(d);
        if (st) { dist_free(d); return st; }
    }
    const int rpn = d->ranks_per_node;
    if (E % rpn != 0 && rpn % E != 0) {
        dist_free(d);
        return umoe_fail("ep_size = %d and %d ranks per node do not nest: an EP group must be whole nodes "
                         "(ep_size a multiple of ranks per node) or inside one node (ranks per node a "
                         "multiple of ep_size)", E, rpn);
    }
    d->n_nodes = R / rpn;
    d->node_id = d->rank / rpn;
    d->node_rank = d->rank % rpn;
    d->ep_size = E;
    d->ep_rank = d->rank % E;
    d->ep_group = d->rank / E;
    d->n_ep_groups = R / E;
    d->ep_local = rpn < E ? rpn : E;
    d->ep_nodes = E / d->ep_local;
    d->ep_local_rank = d->ep_rank % d->ep_local;
    d->ep_node_idx = d->ep_rank / d->ep_local;
    d->n_experts = X;
    d->n_local_experts = X / E;
    umoe_status st;
    if ((st = split(d->world, d->ep_group, d->rank, &d->ep)) ||
        (st = split(d->world, d->ep_rank, d->rank, &d->edp)) ||
        (st = split(d->ep, d->ep_node_idx, d->ep_rank, &d->ep_node)) ||
        (st = split(d->ep, d->ep_local_rank, d->ep_rank, &d->ep_cross))) {
        dist_free(d);
        return st;
    }
    return UMOE_OK;
}
#endif
