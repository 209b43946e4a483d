/* ep_exchange.c - moves rows along a built EP plan: dispatch (token-assignment rows to the ranks owning their
 * experts), combine (the exact reverse) and their backward, flat (one MPI_Ialltoallv over the EP group) or
 * hierarchical (MPI_Ialltoallv of de-duplicated token rows across nodes, then of token-assignment rows inside
 * the node), each as start + wait so the caller can overlap computation with the exchange.
 * Both kinds deliver the same bytes in the same order (the receive layout of dist.h), because rows are only
 * copied, never combined. Does not: build counts (ep_plan.c) or do arithmetic on rows. */
#ifdef UMOE_MPI
#include <string.h>
#include "ep_plan_internal.h"

static void copy_rows(float *dst, const float *src, size_t n, size_t C) { memcpy(dst, src, n * C * sizeof(float)); }

/* Traffic of a row exchange: count[i] rows to peer i of a communicator whose peer i is EP rank rank_of(i). */
static void add_rows(ep_plan *p, const int *count, int n, int ep_base, int ep_stride, size_t C) {
    const dist_ctx *d = p->d;
    for (int i = 0; i < n; i++) {
        int q = ep_base + i * ep_stride;
        if (q == d->ep_rank || !count[i]) continue;
        uint64_t b = (uint64_t)count[i] * C * sizeof(float);
        if (dist_ep_rank_node(d, q) == d->ep_node_idx) p->last.row_bytes_intra += b, p->total.row_bytes_intra += b;
        else p->last.row_bytes_inter += b, p->total.row_bytes_inter += b;
    }
}

/* staging (source-major: s, j) <-> receive layout (j, s): the block (s, j) sits at fpos[s, j] */
static void stage_to_recv(const ep_plan *p, float *recv, const float *stage, size_t C) {
    size_t r = 0;
    for (int s = 0; s < p->E; s++)
        for (int j = 0; j < p->nl; j++) {
            size_t c = (size_t)p->rc[s * p->nl + j];
            copy_rows(recv + (size_t)p->fpos[s * p->nl + j] * C, stage + r * C, c, C);
            r += c;
        }
}
static void recv_to_stage(const ep_plan *p, float *stage, const float *recv, size_t C) {
    size_t r = 0;
    for (int s = 0; s < p->E; s++)
        for (int j = 0; j < p->nl; j++) {
            size_t c = (size_t)p->rc[s * p->nl + j];
            copy_rows(stage + r * C, recv + (size_t)p->fpos[s * p->nl + j] * C, c, C);
            r += c;
        }
}
/* hierarchical stage-B receive (proxy l, source node a, j) -> receive layout; source EP rank s = a*Pl + l */
static void hb_to_recv(const ep_plan *p, float *recv, const float *stage, size_t C) {
    size_t r = 0;
    for (int l = 0; l < p->Pl; l++)
        for (int a = 0; a < p->Nn; a++)
            for (int j = 0; j < p->nl; j++) {
                int s = a * p->Pl + l;
                size_t c = (size_t)p->rc[s * p->nl + j];
                copy_rows(recv + (size_t)p->fpos[s * p->nl + j] * C, stage + r * C, c, C);
                r += c;
            }
}

static void gather_rows(float *dst, const float *src, const int32_t *idx, size_t n, size_t C) {
    for (size_t i = 0; i < n; i++) memcpy(dst + i * C, src + (size_t)idx[i] * C, C * sizeof(float));
}
static void scatter_rows(float *dst, const float *src, const int32_t *idx, size_t n, size_t C) {
    for (size_t i = 0; i < n; i++) memcpy(dst + (size_t)idx[i] * C, src + i * C, C * sizeof(float));
}

static size_t sum(const int *c, int n) {
    size_t s = 0;
    for (int i = 0; i < n; i++) s += (size_t)c[i];
    return s;
}

umoe_status ep_start(ep_plan *p, ep_op op, float *out, const float *in, size_t C) {
    double t0 = umoe_now();
    const dist_ctx *d = p->d;
    if (!p->built) return umoe_fail("ep exchange: plan not built (call ep_plan_build)");
    if (p->busy) return umoe_fail("ep exchange: another exchange of this plan is in flight (call ep_wait)");
    if (C < 1 || C > (size_t)1 << 24) return umoe_fail("ep exchange: row width C = %zu; allowed 1..2^24", C);
    if (op != EP_OP_DISPATCH && op != EP_OP_DISPATCH_ROWS && op != EP_OP_COMBINE)
        return umoe_fail("ep exchange: unknown op %d", (int)op);
    DIST_MPI(MPI_Type_contiguous((int)C, MPI_FLOAT, &p->row));
    DIST_MPI(MPI_Type_commit(&p->row));
    p->op = op;
    p->out = out;
    p->in = in;
    p->C = C;
    p->stage = 0;
    p->last.row_bytes_intra = p->last.row_bytes_inter = 0;
    p->last.calls = 1;
    p->total.calls++;
    const size_t fb = C * sizeof(float);
    if (op == EP_OP_DISPATCH && p->kind == EP_A2A_HIER) {
        /* stage A: one row per token per destination node, to the same-local-index proxy there */
        size_t na = sum(p->ha_scount, p->Nn), nr = sum(p->ha_rcount, p->Nn);
        float *sa = dist_buf_reserve(&p->b_ha_send, na * fb);
        float *ra = dist_buf_reserve(&p->b_ha_recv, nr * fb);
        gather_rows(sa, in, p->ha_tok.p, na, C);
        add_rows(p, p->ha_scount, p->Nn, d->ep_local_rank, p->Pl, C);
        DIST_MPI(MPI_Ialltoallv(sa, p->ha_scount, p->ha_sdispl, p->row, ra, p->ha_rcount, p->ha_rdispl, p->row,
                                d->ep_cross, &p->req));
    } else if (op != EP_OP_COMBINE) {
        /* flat dispatch: pack by destination (unless the placement keeps expert-id order), one all-to-all; with
         * one local expert the staging layout is the receive layout */
        const float *src = in;
        if (!p->pack_identity) {
            float *pk = dist_buf_reserve(&p->b_pack, p->n_send * fb);
            gather_rows(pk, in, p->pmap.p, p->n_send, C);
            src = pk;
        }
        float *dst = p->nl == 1 ? out : dist_buf_reserve(&p->b_stage, p->n_recv * fb);
        add_rows(p, p->scount, p->E, 0, 1, C);
        DIST_MPI(MPI_Ialltoallv(src, p->scount, p->sdispl, p->row, dst, p->rcount, p->rdispl, p->row, d->ep,
                                &p->req));
    } else {
        /* combine: receive layout -> source-major staging -> back to each source, in packed order */
        const float *src = in;
        if (p->nl != 1) {
            float *st = dist_buf_reserve(&p->b_stage, p->n_recv * fb);
            recv_to_stage(p, st, in, C);
            src = st;
        }
        float *dst = p->pack_identity ? out : dist_buf_reserve(&p->b_pack, p->n_send * fb);
        add_rows(p, p->rcount, p->E, 0, 1, C);
        DIST_MPI(MPI_Ialltoallv(src, p->rcount, p->rdispl, p->row, dst, p->scount, p->sdispl, p->row, d->ep,
                                &p->req));
    }
    p->busy = 1;
    p->t_inside = umoe_now() - t0;
    return UMOE_OK;
}

/* Hierarchical dispatch, after stage A arrived: the proxy expands tokens into token-assignment rows for each
 * rank of its node and starts stage B. */
static umoe_status hier_start_b(ep_plan *p) {
    const size_t C = p->C, fb = C * sizeof(float);
    size_t nb = sum(p->hb_scount, p->Pl);
    float *sb = dist_buf_reserve(&p->b_hb_send, nb * fb);
    float *rb = p->Pl == 1 && p->nl == 1 ? p->out : dist_buf_reserve(&p->b_hb_recv, p->n_recv * fb);
    gather_rows(sb, p->b_ha_recv.p, p->hb_src.p, nb, C);
    add_rows(p, p->hb_scount, p->Pl, p->d->ep_node_idx * p->Pl, 1, C);
    DIST_MPI(MPI_Ialltoallv(sb, p->hb_scount, p->hb_sdispl, p->row, rb, p->hb_rcount, p->hb_rdispl, p->row,
                            p->d->ep_node, &p->req));
    p->stage = 1;
    return UMOE_OK;
}

umoe_status ep_progress(ep_plan *p, int *done) {
    double t0 = umoe_now();
    int flag = 0;
    if (!p->busy) return umoe_fail("ep exchange: ep_progress without ep_start");
    DIST_MPI(MPI_Test(&p->req, &flag, MPI_STATUS_IGNORE));
    if (flag && p->op == EP_OP_DISPATCH && p->kind == EP_A2A_HIER && p->stage == 0) {
        umoe_status st = hier_start_b(p);
        if (st) return st;
        flag = 0;
    }
    if (done) *done = flag;
    p->t_inside += umoe_now() - t0;
    return UMOE_OK;
}

umoe_status ep_wait(ep_plan *p) {
    double t0 = umoe_now();
    if (!p->busy) return umoe_fail("ep exchange: ep_wait without ep_start");
    const size_t C = p->C;
    DIST_MPI(MPI_Wait(&p->req, MPI_STATUS_IGNORE));
    if (p->op == EP_OP_DISPATCH && p->kind == EP_A2A_HIER) {
        if (p->stage == 0) {
            umoe_status st = hier_start_b(p);
            if (st) return st;
            DIST_MPI(MPI_Wait(&p->req, MPI_STATUS_IGNORE));
        }
        if (!(p->Pl == 1 && p->nl == 1)) hb_to_recv(p, p->out, p->b_hb_recv.p, C);
    } else if (p->op != EP_OP_COMBINE) {
        if (p->nl != 1) stage_to_recv(p, p->out, p->b_stage.p, C);
    } else {
        if (!p->pack_identity) scatter_rows(p->out, p->b_pack.p, p->pmap.p, p->n_send, C);
    }
    p->busy = 0;
    DIST_MPI(MPI_Type_free(&p->row));
    p->t_inside += umoe_now() - t0;
    p->last.seconds = p->t_inside;
    p->total.seconds += p->t_inside;
    return UMOE_OK;
}

static umoe_status run(ep_plan *p, ep_op op, float *out, const float *in, size_t C) {
    umoe_status st = ep_start(p, op, out, in, C);
    return st ? st : ep_wait(p);
}
umoe_status ep_dispatch_forward(ep_plan *p, float *recv, const float *send, size_t C) {
    return run(p, EP_OP_DISPATCH, recv, send, C);
}
umoe_status ep_dispatch_backward(ep_plan *p, float *dsend, const float *drecv, size_t C) {
    return run(p, EP_OP_COMBINE, dsend, drecv, C);
}
umoe_status ep_combine_forward(ep_plan *p, float *out, const float *in, size_t C) {
    return run(p, EP_OP_COMBINE, out, in, C);
}
umoe_status ep_combine_backward(ep_plan *p, float *din, const float *dout, size_t C) {
    return run(p, EP_OP_DISPATCH_ROWS, din, dout, C);
}
#endif
