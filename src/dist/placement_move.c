/* placement_move.c - dynamic expert placement over MPI: the controller that the training loop calls once per
 * step (dist_placer_observe: all-reduce the step's per-expert loads so every rank agrees, measure each MoE
 * layer's imbalance, feed the load window) and every N steps (dist_placer_step: decide per layer with
 * placement.c, move the experts that change owner with point-to-point MPI inside every EP group - weights and
 * AdamW m and v, any flat blocks laid out like the parameters - then install the new table in ep_moe).
 * Every EP group applies the same table, so the expert-DP groups (ranks with the same EP rank) stay
 * consistent. Placement changes no math: the receive layout of an expert's rows does not depend on its owner
 * (src/dist/ep_plan.c), so the expert computes on the same rows in the same order wherever it lives.
 * Does not: choose the placement (placement.c), replicate experts, or move grads (they are zero between steps). */
#ifdef UMOE_MPI
#include <inttypes.h>
#include <string.h>
#include "umoe/dist.h"

struct dist_placer {
    const dist_ctx *d;
    ep_moe *x;
    umoe_model *m;
    dist_placement_config cfg;
    int n_slots, X;
    dist_load_window win;
    double *grp, *world;   /* (n_slots, X) this step's loads summed over the EP group / over all ranks */
    double *recv, *rmax;   /* (n_slots) received token-assignments of this rank; max over ranks */
    double *imb_last;      /* (n_slots) measured imbalance of the last observed step */
    double sec_per_assign; /* latest measured expert seconds per token-assignment (max over ranks) */
    dist_placer_stats st;
};

umoe_status dist_placer_init(dist_placer **out, const dist_ctx *d, ep_moe *x, umoe_model *m,
                             const dist_placement_config *cfg) {
    dist_placer *p = umoe_calloc(1, sizeof *p, "placer");
    p->d = d;
    p->x = x;
    p->m = m;
    p->cfg = *cfg;
    p->n_slots = model_n_moe_layers(m);
    p->X = d->n_experts;
    int ns = p->n_slots > 0 ? p->n_slots : 1;
    umoe_status st = dist_load_window_init(&p->win, ns, p->X, cfg->window, cfg->theta);
    if (st) { umoe_free(p, sizeof *p); return st; }
    p->grp = umoe_calloc((size_t)ns * (size_t)p->X, sizeof(double), "placer loads");
    p->world = umoe_calloc((size_t)ns * (size_t)p->X, sizeof(double), "placer loads");
    p->recv = umoe_calloc((size_t)ns * 2, sizeof(double), "placer recv");
    p->rmax = umoe_calloc((size_t)ns * 2, sizeof(double), "placer recv");
    p->imb_last = umoe_calloc((size_t)ns, sizeof(double), "placer imbalance");
    *out = p;
    return UMOE_OK;
}

void dist_placer_free(dist_placer *p) {
    if (!p) return;
    int ns = p->n_slots > 0 ? p->n_slots : 1;
    dist_load_window_free(&p->win);
    umoe_free(p->grp, (size_t)ns * (size_t)p->X * sizeof(double));
    umoe_free(p->world, (size_t)ns * (size_t)p->X * sizeof(double));
    umoe_free(p->recv, (size_t)ns * 2 * sizeof(double));
    umoe_free(p->rmax, (size_t)ns * 2 * sizeof(double));
    umoe_free(p->imb_last, (size_t)ns * sizeof(double));
    umoe_free(p, sizeof *p);
}

const dist_placer_stats *dist_placer_stats_get(const dist_placer *p) { return &p->st; }

umoe_status dist_placer_observe(dist_placer *p, const double *load, double sec_per_assignment, double *imb) {
    const dist_ctx *d = p->d;
    int ns = p->n_slots, X = p->X;
    if (ns == 0) return UMOE_OK;
    size_t n = (size_t)ns * (size_t)X;
    memcpy(p->grp, load, n * sizeof(double));
    umoe_status st = dist_allreduce_sum_f64(p->grp, n, d->ep);
    if (st) return st;
    memcpy(p->world, p->grp, n * sizeof(double));
    if ((st = dist_allreduce_sum_f64(p->world, n, d->edp))) return st;
    /* rank r of an EP group receives the group's assignments to the experts it owns */
    for (int s = 0; s < ns; s++) {
        const int32_t *own = ep_moe_owner(p->x, s);
        double r = 0;
        for (int e = 0; e < X; e++)
            if (own[e] == d->ep_rank) r += p->grp[(size_t)s * X + e];
        p->recv[s] = r;
        p->recv[ns + s] = r;
    }
    DIST_MPI(MPI_Allreduce(p->recv, p->rmax, ns, MPI_DOUBLE, MPI_MAX, d->world));
    DIST_MPI(MPI_Allreduce(p->recv + ns, p->rmax + ns, ns, MPI_DOUBLE, MPI_SUM, d->world));
    for (int s = 0; s < ns; s++) {
        double mean = p->rmax[ns + s] / d->size;
        p->imb_last[s] = mean > 0 ? p->rmax[s] / mean : 0;
        if (imb) imb[s] = p->imb_last[s];
    }
    double spa = sec_per_assignment;
    DIST_MPI(MPI_Allreduce(&spa, &p->sec_per_assign, 1, MPI_DOUBLE, MPI_MAX, d->world));
    dist_load_window_push(&p->win, p->world);
    return UMOE_OK;
}

/* floats of one routed expert (gate + up + down, the same for every expert and layer) */
static size_t expert_floats(const umoe_model *m) {
    const spec_model *sp = model_spec(m);
    return 3 * (size_t)sp->F_expert * (size_t)sp->C;
}

/* copy the expert's tensors of every block into buf (pack) or back (unpack), in tensor-table order */
static void expert_pack(const umoe_model *m, int layer, int e, float *const *blocks, int nb, float *buf, int unpack) {
    int n;
    const model_tensor *t = model_tensors(m, &n);
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < n; i++) {
            if (t[i].layer != layer || t[i].expert != e) continue;
            float *blk = blocks[b] + t[i].offset;
            if (unpack) memcpy(blk, buf, t[i].numel * sizeof(float));
            else memcpy(buf, blk, t[i].numel * sizeof(float));
            buf += t[i].numel;
        }
}

umoe_status dist_placement_move(const dist_ctx *d, umoe_model *m, int slot, const int32_t *owner_old,
                                const int32_t *owner_new, float *const *blocks, int n_blocks, uint64_t *bytes_sent) {
    int X = d->n_experts, layer = model_moe_layer_index(m, slot), n_mv = 0;
    for (int e = 0; e < X; e++) n_mv += owner_old[e] != owner_new[e] && (owner_old[e] == d->ep_rank ||
                                                                         owner_new[e] == d->ep_rank);
    if (bytes_sent) *bytes_sent = 0;
    if (!n_mv) return UMOE_OK;
    size_t per = expert_floats(m) * (size_t)n_blocks;
    if (per > (size_t)INT32_MAX) return umoe_fail("expert placement: one expert is %zu floats, above INT_MAX", per);
    float *buf = umoe_malloc((size_t)n_mv * per * sizeof(float), "placement move buffer");
    MPI_Request *req = umoe_malloc((size_t)n_mv * sizeof(MPI_Request), "placement move requests");
    int k = 0, rc = MPI_SUCCESS;
    for (int e = 0; e < X && rc == MPI_SUCCESS; e++) {
        if (owner_old[e] == owner_new[e]) continue;
        if (owner_old[e] == d->ep_rank) {
            expert_pack(m, layer, e, blocks, n_blocks, buf + (size_t)k * per, 0);
            rc = MPI_Isend(buf + (size_t)k * per, (int)per, MPI_FLOAT, owner_new[e], e, d->ep, &req[k]);
            if (bytes_sent) *bytes_sent += per * sizeof(float);
            k++;
        } else if (owner_new[e] == d->ep_rank) {
            rc = MPI_Irecv(buf + (size_t)k * per, (int)per, MPI_FLOAT, owner_old[e], e, d->ep, &req[k]);
            k++;
        }
    }
    if (rc == MPI_SUCCESS) rc = MPI_Waitall(k, req, MPI_STATUSES_IGNORE);
    if (rc == MPI_SUCCESS) {
        /* swap semantics: an arriving expert this model does not hold (expert-sharded) takes the slot of the
         * next departing one (ascending ids); one it already holds (a full model) is overwritten in place */
        int dep = 0;
        k = 0;
        for (int e = 0; e < X; e++) {
            if (owner_old[e] == owner_new[e]) continue;
            if (owner_new[e] == d->ep_rank) {
                if (model_expert_slot(m, slot, e) < 0) {
                    while (dep < X && !(owner_old[dep] == d->ep_rank && owner_new[dep] != d->ep_rank &&
                                        model_expert_slot(m, slot, dep) >= 0))
                        dep++;
                    UMOE_ASSERT(dep < X); /* every rank holds the same number of experts */
                    model_expert_rebind(m, slot, model_expert_slot(m, slot, dep), e);
                    dep++;
                }
                expert_pack(m, layer, e, blocks, n_blocks, buf + (size_t)k * per, 1);
            }
            if (owner_old[e] == d->ep_rank || owner_new[e] == d->ep_rank) k++;
        }
    }
    umoe_free(req, (size_t)n_mv * sizeof(MPI_Request));
    umoe_free(buf, (size_t)n_mv * per * sizeof(float));
    if (rc != MPI_SUCCESS) return dist_mpi_fail(rc, "MPI_Isend/Irecv/Waitall (expert move)", __FILE__, __LINE__);
    return UMOE_OK;
}

umoe_status dist_placer_step(dist_placer *p, long step, float *const *blocks, int n_blocks) {
    const dist_ctx *d = p->d;
    int X = p->X, E = d->ep_size;
    if (p->cfg.interval <= 0 || step % p->cfg.interval != 0 || p->n_slots == 0 || E == 1) return UMOE_OK;
    double pred[X];
    int32_t nw[X];
    dist_placement_policy pol = {p->cfg.min_cv_drop, p->sec_per_assign, p->cfg.bytes_per_sec,
                                 (uint64_t)expert_floats(p->m) *
                                     (uint64_t)n_blocks * sizeof(float),
                                 p->cfg.interval};
    for (int s = 0; s < p->n_slots; s++) {
        const int32_t *old = ep_moe_owner(p->x, s);
        dist_load_window_predict(&p->win, s, pred);
        dist_placement_decision dec;
        dist_placement_decide(nw, old, pred, X, E, &pol, &dec);
        p->st.decisions++;
        if (!dec.apply) {
            if (d->rank == 0)
                LOG_DEBUG("placement: step %ld layer %d: kept (CV %.3f -> %.3f, %d moves, gain %.3g s vs cost %.3g s)",
                          step, model_moe_layer_index(p->m, s), dec.cv_before, dec.cv_after, dec.moves, dec.gain_s,
                          dec.cost_s);
            continue;
        }
        uint64_t sent = 0, total = 0;
        umoe_status st = dist_placement_move(d, p->m, s, old, nw, blocks, n_blocks, &sent);
        if (st) return st;
        DIST_MPI(MPI_Allreduce(&sent, &total, 1, MPI_UINT64_T, MPI_SUM, d->world));
        if ((st = ep_moe_set_placement(p->x, s, nw))) return st;
        p->st.replacements++;
        p->st.moves += (uint64_t)dec.moves;
        p->st.bytes += total;
        p->st.last_imb_before = dec.imb_before;
        p->st.last_imb_after = dec.imb_after;
        if (d->rank == 0)
            LOG_INFO("placement: step %ld layer %d: %d experts moved per EP group, %" PRIu64 " bytes over all ranks "
                     "(weights + AdamW m, v); predicted imbalance %.3f -> %.3f, CV %.3f -> %.3f (measured at this "
                     "step: %.3f; the next steps' is in the step log)",
                     step, model_moe_layer_index(p->m, s), dec.moves, total, dec.imb_before, dec.imb_after,
                     dec.cv_before, dec.cv_after, p->imb_last[s]);
    }
    return UMOE_OK;
}
#endif
