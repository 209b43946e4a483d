/* ep_plan_internal.h - the EP exchange plan shared by ep_plan.c (build: counts, displacements, index maps)
 * and ep_exchange.c (moving rows). Private to src/dist. All counts are in rows (one row = C floats) and,
 * unless a field says "tokens", in token-assignments. */
#ifndef UMOE_EP_PLAN_INTERNAL_H
#define UMOE_EP_PLAN_INTERNAL_H
#ifdef UMOE_MPI
#include "umoe/dist.h"

struct ep_plan {
    const dist_ctx *d;
    ep_a2a_kind kind;
    int E, X, nl;          /* EP ranks, experts, local experts per rank */
    int Pl, Nn;            /* EP-group ranks per node, nodes per EP group */
    int built;
    int32_t *owner;        /* (X) EP rank holding expert e */
    int32_t *loc;          /* (E, nl) expert id of local expert j of EP rank q, ascending */
    int32_t *in_off;       /* (X + 1) first send row of expert e (send layout: grouped by expert id) */
    int *scount, *sdispl;  /* (E) rows to EP rank q, packed order (by q, then local expert, then source order) */
    int32_t *rc;           /* (E, nl) rows from source EP rank s for local expert j */
    int *rcount, *rdispl;  /* (E) rows from s, staging layout (source-major: by s, then local expert) */
    int32_t *roff;         /* (nl + 1) first receive row of local expert j (receive layout) */
    int32_t *fpos;         /* (E, nl) first receive row of the block (source s, local expert j) */
    size_t n_send, n_recv; /* token-assignment rows */
    int pack_identity;     /* packed order == send layout (placement monotonic in expert id) */
    dist_buf pmap;         /* int32 (n_send): packed row i comes from send row pmap[i] */
    /* hierarchical (kind == EP_A2A_HIER) */
    int *ha_scount, *ha_sdispl, *ha_rcount, *ha_rdispl; /* (Nn) stage A over ep_cross: TOKEN rows per node */
    int *hb_scount, *hb_sdispl, *hb_rcount, *hb_rdispl; /* (Pl) stage B over ep_node: token-assignment rows */
    dist_buf ha_tok;       /* int32 (sum ha_scount): send row holding the token of stage-A row i */
    dist_buf hb_src;       /* int32 (sum hb_scount): stage-A receive row copied into stage-B send row i */
    dist_buf tmp_i;        /* int32 scratch for the build */
    /* row buffers, grow-only (dropless) */
    dist_buf b_pack, b_stage, b_ha_send, b_ha_recv, b_hb_send, b_hb_recv;
    /* in-flight exchange */
    int busy, stage;
    ep_op op;
    float *out;
    const float *in;
    size_t C;
    MPI_Datatype row;
    MPI_Request req;
    double t_inside; /* seconds spent inside start/wait of this exchange */
    ep_traffic last, total;
};
#endif
#endif
