/* ep_moe.c - expert parallelism plugged into the model: implements model.h's model_moe_ops with one EP plan
 * per MoE slot (built each forward from the layer's counts), the flat or hierarchical dispatch, the local
 * experts (model_experts_forward/backward), and the combine; the backward reuses the slot's plan (dispatch and
 * combine are each other's backward). Also the EP-group aux-loss statistics (Pangu Ultra MoE's EP-group
 * balancing scope: expert counts summed over the EP group before the loss) and the DP/expert-DP gradient sync.
 * The hooks return nothing, so an MPI failure inside them is logged with rank and call and aborts the job.
 * Does not: route, permute, or decide placement (ep_moe_set_placement takes a table). */
#ifdef UMOE_MPI
#include <string.h>
#include "umoe/dist.h"

typedef struct {
    ep_plan *plan;
    int32_t *owner;      /* (X) */
    int contiguous;      /* local experts are e0, e0+1, ... (one model_experts_* call) */
    dist_buf tok;        /* int32 (NK) token ids of the send rows (hierarchical) */
    dist_buf recv, gu, act, eout; /* saved for backward: (n_recv, C), (n_recv, 2 Fe), (n_recv, Fe), (n_recv, C) */
    dist_buf d_eout, d_recv, dgu, dact, dsend; /* backward scratch */
} ep_slot;

struct ep_moe {
    const dist_ctx *d;
    umoe_model *m;
    ep_a2a_kind kind;
    int n_slots;
    ep_slot *slot;
    model_moe_ops ops;
    ep_moe_times times;
};

static void fatal(const char *where) {
    LOG_ERROR("expert parallelism: %s: %s", where, umoe_err);
    MPI_Abort(MPI_COMM_WORLD, UMOE_EXIT_FAIL);
}

/* one model_experts_* call is possible when the local experts have consecutive ids and sit in consecutive slots
 * of the model's block (always in a full model with consecutive ids; in an expert-sharded model per its slot map) */
static void set_contiguous(ep_slot *s, const umoe_model *m, int slot, int X, int ep_rank) {
    s->contiguous = 1;
    int first = -1, first_sl = -1, j = 0;
    for (int e = 0; e < X; e++)
        if (s->owner[e] == ep_rank) {
            int sl = model_expert_slot(m, slot, e);
            if (first < 0) { first = e; first_sl = sl; }
            s->contiguous &= e == first + j && sl >= 0 && sl == first_sl + j;
            j++;
        }
}

/* model_experts_* over the local experts of the slot's plan: one call when they are consecutive ids,
 * else one per expert with offsets relative to its block. */
static void experts_fwd(ep_moe *x, ep_slot *s, int layer, const float *recv, float *gu, float *act, float *out) {
    const spec_model *sp = model_spec(x->m);
    size_t C = (size_t)sp->C, Fe = (size_t)sp->F_expert;
    const int32_t *roff = ep_plan_recv_offsets(s->plan);
    int nl = ep_plan_n_local(s->plan);
    if (s->contiguous) {
        model_experts_forward(x->m, layer, ep_plan_local_expert(s->plan, 0), nl, roff, recv, gu, act, out);
        return;
    }
    for (int j = 0; j < nl; j++) {
        size_t r0 = (size_t)roff[j];
        int32_t off[2] = {0, roff[j + 1] - roff[j]};
        model_experts_forward(x->m, layer, ep_plan_local_expert(s->plan, j), 1, off, recv + r0 * C,
                              gu + r0 * 2 * Fe, act + r0 * Fe, out + r0 * C);
    }
}
static void experts_bwd(ep_moe *x, ep_slot *s, int layer, const float *dout, float *din) {
    const spec_model *sp = model_spec(x->m);
    size_t C = (size_t)sp->C, Fe = (size_t)sp->F_expert, n = ep_plan_n_recv(s->plan);
    const int32_t *roff = ep_plan_recv_offsets(s->plan);
    int nl = ep_plan_n_local(s->plan);
    const float *recv = s->recv.p, *gu = s->gu.p, *act = s->act.p;
    float *dgu = dist_buf_reserve(&s->dgu, n * 2 * Fe * sizeof(float));
    float *dact = dist_buf_reserve(&s->dact, n * Fe * sizeof(float));
    if (s->contiguous) {
        model_experts_backward(x->m, layer, ep_plan_local_expert(s->plan, 0), nl, roff, recv, gu, act, dout, din,
                               dgu, dact);
        return;
    }
    for (int j = 0; j < nl; j++) {
        size_t r0 = (size_t)roff[j];
        int32_t off[2] = {0, roff[j + 1] - roff[j]};
        model_experts_backward(x->m, layer, ep_plan_local_expert(s->plan, j), 1, off, recv + r0 * C,
                               gu + r0 * 2 * Fe, act + r0 * Fe, dout + r0 * C, din + r0 * C, dgu + r0 * 2 * Fe,
                               dact + r0 * Fe);
    }
}

/* Forward in two halves: start = plan (a blocking exchange of counts) + the dispatch started non-blocking;
 * finish = wait, local experts, combine. hook_forward runs both back to back; the split hooks (overlap) let the
 * model compute the shared experts in between. Same calls on the same buffers: the same bits either way. */
static void fwd_start(ep_moe *x, ep_slot *s, const float *rows, const int32_t *counts, size_t NK) {
    size_t C = (size_t)model_spec(x->m)->C;
    int32_t *tok = NULL;
    double t0 = umoe_now();
    if (x->kind == EP_A2A_HIER) {
        tok = dist_buf_reserve(&s->tok, NK * sizeof(int32_t));
        ep_rows_token_ids(rows, NK, C, tok);
    }
    if (ep_plan_build(s->plan, counts, tok, s->owner)) fatal("plan build");
    float *recv = dist_buf_reserve(&s->recv, ep_plan_n_recv(s->plan) * C * sizeof(float));
    if (ep_start(s->plan, EP_OP_DISPATCH, recv, rows, C)) fatal("dispatch");
    x->times.dispatch_s += umoe_now() - t0;
}
static void fwd_finish(ep_moe *x, ep_slot *s, int layer, float *out) {
    const spec_model *sp = model_spec(x->m);
    size_t C = (size_t)sp->C, Fe = (size_t)sp->F_expert, n = ep_plan_n_recv(s->plan);
    double t0 = umoe_now();
    if (ep_wait(s->plan)) fatal("dispatch");
    float *gu = dist_buf_reserve(&s->gu, n * 2 * Fe * sizeof(float));
    float *act = dist_buf_reserve(&s->act, n * Fe * sizeof(float));
    float *eout = dist_buf_reserve(&s->eout, n * C * sizeof(float));
    double t1 = umoe_now();
    experts_fwd(x, s, layer, s->recv.p, gu, act, eout);
    double t2 = umoe_now();
    if (ep_combine_forward(s->plan, out, eout, C)) fatal("combine");
    x->times.dispatch_s += t1 - t0;
    x->times.expert_s += t2 - t1;
    x->times.combine_s += umoe_now() - t2;
    x->times.rows_recv += (double)n;
}

static void hook_forward(void *ctx, umoe_model *m, int layer, int slot, const float *rows, const int32_t *counts,
                         const int32_t *offsets, size_t NK, float *out) {
    ep_moe *x = ctx;
    (void)m;
    (void)offsets;
    fwd_start(x, &x->slot[slot], rows, counts, NK);
    fwd_finish(x, &x->slot[slot], layer, out);
}
static void hook_forward_start(void *ctx, umoe_model *m, int layer, int slot, const float *rows,
                               const int32_t *counts, const int32_t *offsets, size_t NK) {
    (void)m;
    (void)layer;
    (void)offsets;
    fwd_start(ctx, &((ep_moe *)ctx)->slot[slot], rows, counts, NK);
}
static void hook_forward_finish(void *ctx, umoe_model *m, int layer, int slot, float *out) {
    (void)m;
    fwd_finish(ctx, &((ep_moe *)ctx)->slot[slot], layer, out);
}

/* Backward in two halves: start = the combine's backward (dout rows to the experts) started non-blocking;
 * finish = wait, local experts' backward, the dispatch's backward, drows += . */
static void bwd_start(ep_moe *x, ep_slot *s, int slot, const float *dout, size_t NK) {
    size_t C = (size_t)model_spec(x->m)->C, n = ep_plan_n_recv(s->plan);
    if (ep_plan_n_send(s->plan) != NK) {
        umoe_fail("slot %d: backward with %zu rows, forward planned %zu", slot, NK, ep_plan_n_send(s->plan));
        fatal("backward");
    }
    double t0 = umoe_now();
    float *d_eout = dist_buf_reserve(&s->d_eout, n * C * sizeof(float));
    if (ep_start(s->plan, EP_OP_DISPATCH_ROWS, d_eout, dout, C)) fatal("combine backward");
    x->times.combine_s += umoe_now() - t0;
}
static void bwd_finish(ep_moe *x, ep_slot *s, int layer, float *drows) {
    size_t C = (size_t)model_spec(x->m)->C, n = ep_plan_n_recv(s->plan), NK = ep_plan_n_send(s->plan);
    double t0 = umoe_now();
    if (ep_wait(s->plan)) fatal("combine backward");
    double t1 = umoe_now();
    float *d_recv = dist_buf_reserve(&s->d_recv, n * C * sizeof(float));
    float *dsend = dist_buf_reserve(&s->dsend, NK * C * sizeof(float));
    memset(d_recv, 0, n * C * sizeof(float));
    experts_bwd(x, s, layer, s->d_eout.p, d_recv);
    double t2 = umoe_now();
    if (ep_dispatch_backward(s->plan, dsend, d_recv, C)) fatal("dispatch backward");
    x->times.combine_s += t1 - t0;
    x->times.expert_s += t2 - t1;
    x->times.dispatch_s += umoe_now() - t2;
    for (size_t i = 0; i < NK * C; i++) drows[i] += dsend[i];
}

static void hook_backward(void *ctx, umoe_model *m, int layer, int slot, const float *dout, const int32_t *counts,
                          const int32_t *offsets, size_t NK, float *drows) {
    ep_moe *x = ctx;
    (void)m;
    (void)counts;
    (void)offsets;
    bwd_start(x, &x->slot[slot], slot, dout, NK);
    bwd_finish(x, &x->slot[slot], layer, drows);
}
static void hook_backward_start(void *ctx, umoe_model *m, int layer, int slot, const float *dout, size_t NK) {
    (void)m;
    (void)layer;
    bwd_start(ctx, &((ep_moe *)ctx)->slot[slot], slot, dout, NK);
}
static void hook_backward_finish(void *ctx, umoe_model *m, int layer, int slot, float *drows) {
    (void)m;
    bwd_finish(ctx, &((ep_moe *)ctx)->slot[slot], layer, drows);
}

/* EP-group scope (Pangu Ultra MoE): f_i counts the token-assignments of the whole EP group,
 * f_i = E / (K N_group) count_group_i, while P_i stays this rank's mean probability, so that each rank's aux
 * gradient alpha f_i / N_local, averaged over the data-parallel ranks like the LM loss, equals the gradient of
 * the group-scope loss of one model over the whole batch (the loss value, averaged over the group's ranks,
 * equals it too). The model computes f from (counts, tokens) and P from (psum, tokens): returning
 * counts = count_group * N_local / N_group and tokens = N_local gives exactly that. */
static void hook_aux(void *ctx, int slot, double *counts, double *psum, double *tokens) {
    ep_moe *x = ctx;
    int X = x->d->n_experts;
    double buf[4096 + 1];
    (void)slot;
    (void)psum;
    if (X > 4096) { umoe_fail("aux reduce: %d experts above 4096", X); fatal("aux reduce"); }
    memcpy(buf, counts, (size_t)X * sizeof(double));
    buf[X] = *tokens;
    if (dist_allreduce_sum_f64(buf, (size_t)(X + 1), x->d->ep)) fatal("aux reduce");
    double scale = buf[X] > 0 ? *tokens / buf[X] : 0;
    for (int i = 0; i < X; i++) counts[i] = buf[i] * scale;
}

umoe_status ep_moe_init(ep_moe **out, const dist_ctx *d, umoe_model *m, ep_a2a_kind kind) {
    const spec_model *sp = model_spec(m);
    if (sp->E != d->n_experts)
        return umoe_fail("expert parallelism: the model has %d routed experts, the layout was built for %d", sp->E,
                         d->n_experts);
    ep_moe *x = umoe_calloc(1, sizeof *x, "ep moe");
    x->d = d;
    x->m = m;
    x->kind = kind;
    x->n_slots = model_n_moe_layers(m);
    x->slot = umoe_calloc((size_t)(x->n_slots > 0 ? x->n_slots : 1), sizeof *x->slot, "ep moe slots");
    for (int i = 0; i < x->n_slots; i++) {
        ep_slot *s = &x->slot[i];
        umoe_status st = ep_plan_init(&s->plan, d, kind);
        if (st) { ep_moe_free(x); return st; }
        s->owner = umoe_malloc((size_t)d->n_experts * sizeof(int32_t), "ep moe owner");
        dist_placement_default(s->owner, d->n_experts, d->ep_size);
        set_contiguous(s, m, i, d->n_experts, d->ep_rank);
        s->tok.what = "ep moe token ids";
        s->recv.what = "ep moe recv rows";
        s->gu.what = "ep moe expert gate/up";
        s->act.what = "ep moe expert act";
        s->eout.what = "ep moe expert out";
        s->d_eout.what = "ep moe d expert out";
        s->d_recv.what = "ep moe d recv rows";
        s->dgu.what = "ep moe d gate/up";
        s->dact.what = "ep moe d act";
        s->dsend.what = "ep moe d send rows";
    }
    memset(&x->ops, 0, sizeof x->ops);
    x->ops.ctx = x;
    x->ops.experts_forward = hook_forward;
    x->ops.experts_backward = hook_backward;
    x->ops.aux_reduce = sp->aux_scope == SPEC_AUX_EP_GROUP ? hook_aux : NULL;
    *out = x;
    return UMOE_OK;
}

void ep_moe_free(ep_moe *x) {
    if (!x) return;
    for (int i = 0; i < x->n_slots; i++) {
        ep_slot *s = &x->slot[i];
        ep_plan_free(s->plan);
        umoe_free(s->owner, s->owner ? (size_t)x->d->n_experts * sizeof(int32_t) : 0);
        dist_buf *b[] = {&s->tok, &s->recv, &s->gu, &s->act, &s->eout, &s->d_eout, &s->d_recv, &s->dgu, &s->dact,
                         &s->dsend};
        for (size_t k = 0; k < sizeof b / sizeof *b; k++) dist_buf_free(b[k]);
    }
    umoe_free(x->slot, (size_t)(x->n_slots > 0 ? x->n_slots : 1) * sizeof *x->slot);
    umoe_free(x, sizeof *x);
}

const model_moe_ops *ep_moe_ops(const ep_moe *x) { return &x->ops; }

umoe_status ep_moe_set_placement(ep_moe *x, int slot, const int32_t *owner) {
    if (slot < 0 || slot >= x->n_slots)
        return umoe_fail("expert placement: MoE slot %d; allowed 0..%d", slot, x->n_slots - 1);
    ep_slot *s = &x->slot[slot];
    if (owner) {
        umoe_status st = dist_placement_check(owner, x->d->n_experts, x->d->ep_size);
        if (st) return st;
        memcpy(s->owner, owner, (size_t)x->d->n_experts * sizeof(int32_t));
    } else {
        dist_placement_default(s->owner, x->d->n_experts, x->d->ep_size);
    }
    set_contiguous(s, x->m, slot, x->d->n_experts, x->d->ep_rank);
    return UMOE_OK;
}

int ep_moe_is_local(const ep_moe *x, int slot, int expert) {
    return slot >= 0 && slot < x->n_slots && expert >= 0 && expert < x->d->n_experts &&
           x->slot[slot].owner[expert] == x->d->ep_rank;
}

const int32_t *ep_moe_owner(const ep_moe *x, int slot) { return x->slot[slot].owner; }

void ep_moe_set_overlap(ep_moe *x, int on) {
    x->ops.experts_forward_start = on ? hook_forward_start : NULL;
    x->ops.experts_forward_finish = on ? hook_forward_finish : NULL;
    x->ops.experts_backward_start = on ? hook_backward_start : NULL;
    x->ops.experts_backward_finish = on ? hook_backward_finish : NULL;
}
const ep_moe_times *ep_moe_times_get(const ep_moe *x) { return &x->times; }

void ep_moe_traffic(const ep_moe *x, ep_traffic *t) {
    memset(t, 0, sizeof *t);
    for (int i = 0; i < x->n_slots; i++) {
        const ep_traffic *s = ep_plan_traffic_total(x->slot[i].plan);
        t->row_bytes_intra += s->row_bytes_intra;
        t->row_bytes_inter += s->row_bytes_inter;
        t->meta_bytes_intra += s->meta_bytes_intra;
        t->meta_bytes_inter += s->meta_bytes_inter;
        t->calls += s->calls;
        t->seconds += s->seconds;
    }
}

/* kind of a tensor for the sync: 0 dense (world), 1 local expert (edp), 2 non-local expert (skip) */
static int tensor_kind(const ep_moe *x, const model_tensor *t) {
    if (t->expert < 0) return 0;
    for (int s = 0; s < x->n_slots; s++)
        if (model_moe_layer_index(x->m, s) == t->layer) return ep_moe_is_local(x, s, t->expert) ? 1 : 2;
    return 2;
}

umoe_status ep_moe_grad_sync(ep_moe *x, size_t bucket_floats, dist_sync_stats *stats) {
    int n = 0;
    const model_tensor *t = model_tensors(x->m, &n);
    float *g = model_grads(x->m);
    /* tensors are laid out in offset order; merge neighbours of the same kind into one run */
    int i = 0;
    while (i < n) {
        int k = tensor_kind(x, &t[i]);
        size_t lo = t[i].offset, hi = t[i].offset + t[i].numel;
        int j = i + 1;
        while (j < n && tensor_kind(x, &t[j]) == k && t[j].offset == hi) hi += t[j++].numel;
        if (k != 2) {
            umoe_status st = dist_allreduce_sum(g + lo, hi - lo, k == 0 ? x->d->world : x->d->edp, bucket_floats,
                                                stats);
            if (st) return st;
        }
        i = j;
    }
    return UMOE_OK;
}
#endif
