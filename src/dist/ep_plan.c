/* ep_plan.c - builds the EP exchange plan of one MoE layer for one step: who sends how many token-assignment
 * rows to whom, the staging layouts, and for the hierarchical all-to-all (Pangu Ultra MoE, arXiv 2505.04519,
 * and MindSpeed's hierarchical EP all-to-all) the per-node token de-duplication and the proxy's expansion map.
 * The counts are exchanged here once, so every dispatch / combine (and their backward) only moves rows.
 * Does not: move rows (ep_exchange.c) or choose the placement (it takes owner[] as given). */
#ifdef UMOE_MPI
#include <limits.h>
#include <string.h>
#include "ep_plan_internal.h"

#define IALLOC(n, what) umoe_calloc((size_t)(n), sizeof(int32_t), what)

const char *ep_a2a_name(ep_a2a_kind k) { return k == EP_A2A_HIER ? "hierarchical" : "flat"; }

umoe_status ep_plan_init(ep_plan **out, const dist_ctx *d, ep_a2a_kind kind) {
    if (kind != EP_A2A_FLAT && kind != EP_A2A_HIER)
        return umoe_fail("all-to-all kind %d unknown; allowed: flat (0), hierarchical (1)", (int)kind);
    ep_plan *p = umoe_calloc(1, sizeof *p, "ep plan");
    p->d = d;
    p->kind = kind;
    p->E = d->ep_size;
    p->X = d->n_experts;
    p->nl = d->n_local_experts;
    p->Pl = d->ep_local;
    p->Nn = d->ep_nodes;
    p->owner = IALLOC(p->X, "ep plan owner");
    p->loc = IALLOC(p->E * p->nl, "ep plan loc");
    p->in_off = IALLOC(p->X + 1, "ep plan in_off");
    p->scount = IALLOC(p->E, "ep plan");
    p->sdispl = IALLOC(p->E, "ep plan");
    p->rcount = IALLOC(p->E, "ep plan");
    p->rdispl = IALLOC(p->E, "ep plan");
    p->rc = IALLOC(p->E * p->nl, "ep plan rc");
    p->fpos = IALLOC(p->E * p->nl, "ep plan fpos");
    p->roff = IALLOC(p->nl + 1, "ep plan roff");
    p->ha_scount = IALLOC(p->Nn, "ep plan");
    p->ha_sdispl = IALLOC(p->Nn, "ep plan");
    p->ha_rcount = IALLOC(p->Nn, "ep plan");
    p->ha_rdispl = IALLOC(p->Nn, "ep plan");
    p->hb_scount = IALLOC(p->Pl, "ep plan");
    p->hb_sdispl = IALLOC(p->Pl, "ep plan");
    p->hb_rcount = IALLOC(p->Pl, "ep plan");
    p->hb_rdispl = IALLOC(p->Pl, "ep plan");
    p->pmap.what = "ep pack map";
    p->ha_tok.what = "ep hier token map";
    p->hb_src.what = "ep hier expand map";
    p->tmp_i.what = "ep plan scratch";
    p->b_pack.what = "ep pack rows";
    p->b_stage.what = "ep staging rows";
    p->b_ha_send.what = "ep hier inter-node send rows";
    p->b_ha_recv.what = "ep hier inter-node recv rows";
    p->b_hb_send.what = "ep hier intra-node send rows";
    p->b_hb_recv.what = "ep hier intra-node recv rows";
    p->row = MPI_DATATYPE_NULL;
    p->req = MPI_REQUEST_NULL;
    *out = p;
    return UMOE_OK;
}

void ep_plan_free(ep_plan *p) {
    if (!p) return;
    if (p->req != MPI_REQUEST_NULL) MPI_Wait(&p->req, MPI_STATUS_IGNORE);
    if (p->row != MPI_DATATYPE_NULL) MPI_Type_free(&p->row);
    int32_t *ia[] = {p->owner, p->loc, p->in_off, p->rc, p->fpos, p->roff};
    size_t in[] = {(size_t)p->X, (size_t)p->E * p->nl, (size_t)p->X + 1, (size_t)p->E * p->nl,
                   (size_t)p->E * p->nl, (size_t)p->nl + 1};
    for (int i = 0; i < 6; i++) umoe_free(ia[i], in[i] * sizeof(int32_t));
    int *ea[] = {p->scount, p->sdispl, p->rcount, p->rdispl};
    for (int i = 0; i < 4; i++) umoe_free(ea[i], (size_t)p->E * sizeof(int));
    int *na[] = {p->ha_scount, p->ha_sdispl, p->ha_rcount, p->ha_rdispl};
    for (int i = 0; i < 4; i++) umoe_free(na[i], (size_t)p->Nn * sizeof(int));
    int *pa[] = {p->hb_scount, p->hb_sdispl, p->hb_rcount, p->hb_rdispl};
    for (int i = 0; i < 4; i++) umoe_free(pa[i], (size_t)p->Pl * sizeof(int));
    dist_buf *bs[] = {&p->pmap, &p->ha_tok, &p->hb_src, &p->tmp_i, &p->b_pack, &p->b_stage,
                      &p->b_ha_send, &p->b_ha_recv, &p->b_hb_send, &p->b_hb_recv};
    for (size_t i = 0; i < sizeof bs / sizeof *bs; i++) dist_buf_free(bs[i]);
    umoe_free(p, sizeof *p);
}

size_t ep_plan_n_send(const ep_plan *p) { return p->n_send; }
size_t ep_plan_n_recv(const ep_plan *p) { return p->n_recv; }
int ep_plan_n_local(const ep_plan *p) { return p->nl; }
int ep_plan_local_expert(const ep_plan *p, int j) { return p->loc[p->d->ep_rank * p->nl + j]; }
const int32_t *ep_plan_recv_offsets(const ep_plan *p) { return p->roff; }
const int32_t *ep_plan_recv_counts(const ep_plan *p) { return p->rc; }
const ep_traffic *ep_plan_traffic_last(const ep_plan *p) { return &p->last; }
const ep_traffic *ep_plan_traffic_total(const ep_plan *p) { return &p->total; }

umoe_status ep_plan_imbalance(const ep_plan *p, double *max_over_mean) {
    uint64_t n = p->n_recv, mx = 0, sm = 0;
    DIST_MPI(MPI_Allreduce(&n, &mx, 1, MPI_UINT64_T, MPI_MAX, p->d->ep));
    DIST_MPI(MPI_Allreduce(&n, &sm, 1, MPI_UINT64_T, MPI_SUM, p->d->ep));
    *max_over_mean = sm ? (double)mx / ((double)sm / p->E) : 0.0;
    return UMOE_OK;
}

static void prefix(int *displ, const int *count, int n) {
    int s = 0;
    for (int i = 0; i < n; i++) { displ[i] = s; s += count[i]; }
}

/* Adds metadata bytes sent to EP rank q (self not counted) to the plan's traffic. */
static void meta_to(ep_plan *p, int q, size_t bytes) {
    const dist_ctx *d = p->d;
    if (q == d->ep_rank || !bytes) return;
    if (dist_ep_rank_node(d, q) == d->ep_node_idx) p->last.meta_bytes_intra += bytes, p->total.meta_bytes_intra += bytes;
    else p->last.meta_bytes_inter += bytes, p->total.meta_bytes_inter += bytes;
}

/* Flat count exchange: MPI_Alltoall over the EP group of nl ints per peer, the token-assignment rows of each of
 * the peer's local experts. */
static umoe_status counts_flat(ep_plan *p, const int32_t *counts) {
    const int E = p->E, nl = p->nl;
    int32_t *sbuf = dist_buf_reserve(&p->tmp_i, (size_t)E * nl * sizeof(int32_t));
    for (int q = 0; q < E; q++)
        for (int j = 0; j < nl; j++) sbuf[q * nl + j] = counts[p->loc[q * nl + j]];
    DIST_MPI(MPI_Alltoall(sbuf, nl, MPI_INT32_T, p->rc, nl, MPI_INT32_T, p->d->ep));
    for (int q = 0; q < E; q++) meta_to(p, q, (size_t)nl * 4);
    return UMOE_OK;
}

/* Hierarchical plan (the paper's scheme, generalised from an all-gather to "only the nodes that need it"):
 * stage A over ep_cross (the ranks with this local index on each node of the EP group) sends every token at
 * most once to each destination node, to the proxy rank there with the same local index; stage B over
 * ep_node lets the proxy expand tokens into token-assignment rows and deliver them to the owning ranks.
 * Here we exchange, per destination node b: header [tokens U_b, rows c(d, j) for each rank d of node b and its
 * local expert j], then the index of the token (into the U_b sent) of every token-assignment row, in packed
 * order. The proxy then builds its expansion map and tells each rank of its node its per-source counts. */
static umoe_status counts_hier(ep_plan *p, const int32_t *counts, const int32_t *row_token) {
    const dist_ctx *d = p->d;
    const int nl = p->nl, Pl = p->Pl, Nn = p->Nn, hl = 1 + Pl * nl;
    const int32_t *pmap = p->pmap.p;
    /* stamp[t]: last node that saw token t + 1; uid[t]: its index in that node's unique list */
    int32_t maxtok = -1;
    for (size_t i = 0; i < p->n_send; i++) {
        if (row_token[i] < 0)
            return umoe_fail("ep plan: row_token[%zu] = %d; token indices must be >= 0", i, row_token[i]);
        if (row_token[i] > maxtok) maxtok = row_token[i];
    }
    size_t ntok = (size_t)maxtok + 1;
    /* scratch layout (int32): stamp (ntok) | uid (ntok) | hdr_s (Nn*hl) | hdr_r (Nn*hl) | idx_s (n_send) |
     * bh_s (Pl*Nn*nl) | bh_r (Pl*Nn*nl) | ic_r (Nn) | id_r (Nn) | ic_s (Nn) | id_s(Nn) */
    size_t nbh = (size_t)Pl * Nn * nl;
    size_t need = 2 * ntok + 2 * (size_t)Nn * hl + p->n_send + 2 * nbh + 4 * (size_t)Nn;
    int32_t *stamp = dist_buf_reserve(&p->tmp_i, need * sizeof(int32_t));
    int32_t *uid = stamp + ntok, *hdr_s = uid + ntok, *hdr_r = hdr_s + (size_t)Nn * hl;
    int32_t *idx_s = hdr_r + (size_t)Nn * hl, *bh_s = idx_s + p->n_send, *bh_r = bh_s + nbh;
    int *ic_r = (int *)(bh_r + nbh), *id_r = ic_r + Nn, *ic_s = id_r + Nn, *id_s = ic_s + Nn;
    memset(stamp, 0, ntok * sizeof *stamp);
    /* unique tokens per destination node, in order of first appearance in packed order */
    int32_t *tok = dist_buf_reserve(&p->ha_tok, p->n_send * sizeof(int32_t));
    int nu = 0;
    for (int b = 0; b < Nn; b++) {
        int lo = p->sdispl[b * Pl], hi = p->sdispl[b * Pl + Pl - 1] + p->scount[b * Pl + Pl - 1];
        int u0 = nu;
        for (int i = lo; i < hi; i++) {
            int32_t t = row_token[pmap ? pmap[i] : i];
            if (stamp[t] != b + 1) {
                stamp[t] = b + 1;
                uid[t] = nu - u0;
                tok[nu++] = pmap ? pmap[i] : i;
            }
            idx_s[i] = uid[t];
        }
        p->ha_scount[b] = nu - u0;
        ic_s[b] = hi - lo;
        int32_t *h = hdr_s + (size_t)b * hl;
        h[0] = nu - u0;
        for (int dd = 0; dd < Pl; dd++)
            for (int j = 0; j < nl; j++) h[1 + dd * nl + j] = counts[p->loc[(b * Pl + dd) * nl + j]];
    }
    prefix(p->ha_sdispl, p->ha_scount, Nn);
    prefix(id_s, ic_s, Nn);
    DIST_MPI(MPI_Alltoall(hdr_s, hl, MPI_INT32_T, hdr_r, hl, MPI_INT32_T, d->ep_cross));
    for (int a = 0; a < Nn; a++) {
        p->ha_rcount[a] = hdr_r[(size_t)a * hl];
        ic_r[a] = 0;
        for (int k = 1; k < hl; k++) ic_r[a] += hdr_r[(size_t)a * hl + k];
    }
    prefix(p->ha_rdispl, p->ha_rcount, Nn);
    prefix(id_r, ic_r, Nn);
    size_t n_idx_r = Nn ? (size_t)id_r[Nn - 1] + ic_r[Nn - 1] : 0;
    int32_t *idx_r = dist_buf_reserve(&p->hb_src, n_idx_r * sizeof(int32_t) * 2); /* idx_r | expansion map */
    DIST_MPI(MPI_Alltoallv(idx_s, ic_s, id_s, MPI_INT32_T, idx_r, ic_r, id_r, MPI_INT32_T, d->ep_cross));
    for (int b = 0; b < Nn; b++)
        if (b != d->ep_node_idx) {
            meta_to(p, b * Pl + (d->ep_local_rank), (size_t)hl * 4 + (size_t)ic_s[b] * 4);
        }
    /* proxy: expansion map in stage-B send order (dest rank dd of this node, source node a, local expert j,
     * source order); block (dd, j) of source node a starts in its index list at the prefix of its header */
    int32_t *map = idx_r + n_idx_r;
    size_t m = 0;
    for (int dd = 0; dd < Pl; dd++) {
        size_t m0 = m;
        for (int a = 0; a < Nn; a++) {
            const int32_t *h = hdr_r + (size_t)a * hl + 1;
            size_t off = (size_t)id_r[a];
            for (int k = 0; k < dd * nl; k++) off += (size_t)h[k];
            for (int j = 0; j < nl; j++) {
                int c = h[dd * nl + j];
                for (int i = 0; i < c; i++) map[m++] = p->ha_rdispl[a] + idx_r[off + i];
                off += (size_t)c;
                bh_s[((size_t)dd * Nn + a) * nl + j] = c;
            }
        }
        p->hb_scount[dd] = (int)(m - m0);
    }
    memmove(idx_r, map, m * sizeof(int32_t)); /* hb_src now holds the expansion map from its start */
    prefix(p->hb_sdispl, p->hb_scount, Pl);
    DIST_MPI(MPI_Alltoall(bh_s, Nn * nl, MPI_INT32_T, bh_r, Nn * nl, MPI_INT32_T, d->ep_node));
    for (int dd = 0; dd < Pl; dd++) meta_to(p, d->ep_node_idx * Pl + dd, (size_t)Nn * nl * 4);
    /* bh_r from proxy l2: (source node a, local expert j) = rows from source EP rank a*Pl + l2 */
    for (int l2 = 0; l2 < Pl; l2++) {
        p->hb_rcount[l2] = 0;
        for (int a = 0; a < Nn; a++)
            for (int j = 0; j < nl; j++) {
                int c = bh_r[((size_t)l2 * Nn + a) * nl + j];
                p->rc[(a * Pl + l2) * nl + j] = c;
                p->hb_rcount[l2] += c;
            }
    }
    prefix(p->hb_rdispl, p->hb_rcount, Pl);
    return UMOE_OK;
}

umoe_status ep_plan_build(ep_plan *p, const int32_t *counts, const int32_t *row_token, const int32_t *owner) {
    const dist_ctx *d = p->d;
    const int E = p->E, X = p->X, nl = p->nl;
    if (p->busy) return umoe_fail("ep plan: rebuilt while an exchange is in flight (call ep_wait first)");
    if (owner) {
        umoe_status st = dist_placement_check(owner, X, E);
        if (st) return st;
        memcpy(p->owner, owner, (size_t)X * sizeof *owner);
    } else {
        dist_placement_default(p->owner, X, E);
    }
    if (p->kind == EP_A2A_HIER && !row_token)
        return umoe_fail("ep plan: the hierarchical all-to-all needs row_token (the token of every send row)");
    /* local experts of each rank, ascending */
    int fill[4096];
    if (E > 4096) return umoe_fail("ep_size %d above the supported 4096", E);
    memset(fill, 0, sizeof fill);
    for (int e = 0; e < X; e++) p->loc[p->owner[e] * nl + fill[p->owner[e]]++] = e;
    /* send layout: expert groups in expert-id order */
    long long tot = 0;
    for (int e = 0; e < X; e++) {
        if (counts[e] < 0) return umoe_fail("ep plan: counts[%d] = %d is negative", e, counts[e]);
        p->in_off[e] = (int32_t)tot;
        tot += counts[e];
        if (tot > INT_MAX) return umoe_fail("ep plan: %lld send rows exceed MPI's int counts", tot);
    }
    p->in_off[X] = (int32_t)tot;
    p->n_send = (size_t)tot;
    /* packed order: by destination rank, local expert, source order */
    p->pack_identity = 1;
    int32_t *pmap = dist_buf_reserve(&p->pmap, p->n_send * sizeof(int32_t));
    int32_t i = 0;
    for (int q = 0; q < E; q++) {
        p->scount[q] = 0;
        for (int j = 0; j < nl; j++) {
            int e = p->loc[q * nl + j];
            for (int32_t r = p->in_off[e]; r < p->in_off[e + 1]; r++) {
                if (r != i) p->pack_identity = 0;
                pmap[i++] = r;
            }
            p->scount[q] += counts[e];
        }
    }
    prefix(p->sdispl, p->scount, E);
    p->last = (ep_traffic){0};
    umoe_status st = p->kind == EP_A2A_HIER ? counts_hier(p, counts, row_token) : counts_flat(p, counts);
    if (st) return st;
    /* receive side */
    long long rtot = 0;
    for (int s = 0; s < E; s++) {
        p->rcount[s] = 0;
        for (int j = 0; j < nl; j++) p->rcount[s] += p->rc[s * nl + j];
        rtot += p->rcount[s];
    }
    if (rtot > INT_MAX) return umoe_fail("ep plan: %lld receive rows exceed MPI's int counts", rtot);
    prefix(p->rdispl, p->rcount, E);
    int32_t r = 0;
    for (int j = 0; j < nl; j++) {
        p->roff[j] = r;
        for (int s = 0; s < E; s++) {
            p->fpos[s * nl + j] = r;
            r += p->rc[s * nl + j];
        }
    }
    p->roff[nl] = r;
    p->n_recv = (size_t)r;
    p->built = 1;
    (void)d;
    return UMOE_OK;
}
#endif
