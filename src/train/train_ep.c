/* train_ep.c - the training loop over MPI ranks with expert parallelism (issue #4): the loop of train_loop.c
 * with the global batch split over R ranks, the model's MoE layers run through ep_moe (src/dist), gradients
 * summed over all ranks (dense) and over expert-DP groups (experts) and scaled by 1/R, a placement-invariant
 * global gradient norm, AdamW on the parameters this rank owns, dynamic expert placement, per-step EP metrics,
 * and checkpoints of the whole model written by world rank 0 after gathering every expert from its owner.
 * With --ep E > 1 the model is expert-sharded (model_init_sharded: dense tensors + experts/E slots per MoE
 * layer, AdamW m, v alike); a checkpoint save / resume goes through a transient full copy (docs/dist.md).
 *
 * Same math at any R and E (tested): every rank reads the same seeded order of windows and takes rows
 * [rank * B/R, (rank + 1) * B/R) of each global micro-batch (train_loader_next_shard); losses are means over ranks of per-rank means over
 * equal token counts, i.e. the global mean; grads are sums over ranks / R. Aux scopes: micro-batch (each rank's
 * own tokens), ep_group (counts of the EP group, see ep_moe.c), global (counts of all ranks and micro-batches of
 * the step, from a forward-only pass as in train_loop.c).
 * Does not: parse flags (src/cli), define the model, or implement the exchange (src/dist). */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "train_internal.h"
#include "umoe/train_ep.h"

void train_ep_opts_defaults(train_ep_opts *e) {
    memset(e, 0, sizeof *e);
    e->ep = 1;
    e->placement_window = 10;
    e->placement_bw = 1e9; /* conservative: ~10 GB/s links less protocol overhead and contention */
    e->aux_scope = -1;
    e->bucket_floats = 1 << 20;
}

#ifndef UMOE_MPI
void train_ep_finalize(void) {}
umoe_status train_ep_run(const spec_model *s, const train_config *c, const train_ep_opts *e, train_result *r,
                         int *is_root) {
    (void)s; (void)c; (void)e; (void)r;
    *is_root = 1;
    return umoe_fail("expert parallelism (--ep) needs MPI, and this umoe was built without it (make USE_MPI=1)");
}
#else
#include "umoe/dist.h"
#include "umoe/nn.h"

static int g_we_inited; /* train_ep_run called MPI_Init: train_ep_finalize calls MPI_Finalize */

typedef struct {
    dist_ctx d;
    int have_d;
    ep_moe *x;
    dist_placer *pl;
    umoe_model *m;
    const model_tensor *t;
    int n_t, n_moe, X;
    int *slot_of_layer;  /* (L + mtp + 1) MoE slot of a layer index, -1 for dense layers */
    int n_layers_tab;
    int sharded;         /* the model holds only this rank's experts (model_init_sharded; E > 1) */
} ep_run;

/* Collective: the status some ranks saw becomes every rank's; the message of the lowest failing rank. */
static umoe_status agree(umoe_status st, int rank) {
    int mine = st ? rank : 1 << 30, first = 0, worst = 0, ist = (int)st;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&ist, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (first == 1 << 30) return UMOE_OK;
    char msg[sizeof umoe_err];
    if (rank == first) snprintf(msg, sizeof msg, "rank %d: %.*s", rank, (int)sizeof msg - 24, umoe_err);
    MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD);
    umoe_strlcpy(umoe_err, msg, sizeof umoe_err);
    return worst == UMOE_EINPUT ? UMOE_EINPUT : (umoe_status)worst;
}

/* 0 dense, 1 expert owned by this rank, 2 expert owned elsewhere */
static int tensor_kind(const ep_run *R, const model_tensor *t) {
    if (t->expert < 0) return 0;
    int sl = t->layer >= 0 && t->layer < R->n_layers_tab ? R->slot_of_layer[t->layer] : -1;
    return sl >= 0 && ep_moe_is_local(R->x, sl, t->expert) ? 1 : 2;
}

/* Global grad norm that does not depend on R, E or the placement: the dense part (equal on every rank after
 * the sync) plus one sum of squares per (MoE slot, expert) taken by its owner, all-reduced over the EP group
 * (every other entry is an exact 0) and added in index order. The clip's scale (train_clip_scale) is applied
 * by the AdamW pass (adamw_owned), as in train_loop.c. */
static umoe_status clip_grads(ep_run *R, double clip, double *norm_out, float *scale_out) {
    float *g = model_grads(R->m);
    size_t ne = (size_t)(R->n_moe > 0 ? R->n_moe : 1) * (size_t)R->X;
    double *ex = umoe_calloc(ne, sizeof(double), "expert grad norms");
    double dense = 0;
    for (int i = 0; i < R->n_t; i++) {
        const model_tensor *t = &R->t[i];
        int k = tensor_kind(R, t);
        if (k == 0) dense += nn_sumsq(g + t->offset, t->numel);
        else if (k == 1) ex[(size_t)R->slot_of_layer[t->layer] * R->X + (size_t)t->expert] += nn_sumsq(g + t->offset, t->numel);
    }
    umoe_status st = dist_allreduce_sum_f64(ex, ne, R->d.ep);
    double sum = dense;
    for (size_t i = 0; i < ne; i++) sum += ex[i];
    umoe_free(ex, ne * sizeof(double));
    if (st) return st;
    double norm = sqrt(sum);
    *norm_out = norm;
    *scale_out = train_clip_scale(norm, clip);
    return UMOE_OK;
}

static void scale_grads(ep_run *R, float s) {
    float *g = model_grads(R->m);
    for (int i = 0; i < R->n_t; i++) {
        const model_tensor *t = &R->t[i];
        if (tensor_kind(R, t) == 2) continue;
        nn_scale_inplace(g + t->offset, t->numel, s); /* over the threads; the same bits as the plain loop */
    }
}

/* AdamW on dense tensors and the experts this rank owns (with --ep > 1 the model holds no others), in one
 * pass with the clip's scale applied as each gradient is read (the step still starts with model_zero_grad) */
static void adamw_owned(ep_run *R, train_adamw *o, double lr, long step, float clip_scale) {
    size_t bytes = (size_t)(R->n_t > 0 ? R->n_t : 1) * sizeof(model_tensor);
    model_tensor *own = umoe_malloc(bytes, "owned tensors");
    int n = 0;
    for (int i = 0; i < R->n_t; i++)
        if (tensor_kind(R, &R->t[i]) != 2) own[n++] = R->t[i];
    train_adamw_step_fused(o, model_params(R->m), model_grads(R->m), own, n, lr, step, clip_scale, 0);
    umoe_free(own, bytes);
}

/* A full (unsharded) copy of the model and its AdamW m, v, for the checkpoint's HF layout: batch 1 x 1 token,
 * so its activations are small; its weights are overwritten. */
static umoe_status full_copy_init(const spec_model *s, const train_opts *o, umoe_model **fm, train_adamw *fo) {
    umoe_status st = model_init(fm, s, 1, 1, o->seed);
    if (!st) train_adamw_init(fo, model_n_params(*fm), o->beta1, o->beta2, o->eps, o->wd);
    return st;
}

/* copy every tensor of table t (of block set a) that table u also has (by name) between the two block sets:
 * to_full = 1 copies a -> b, else b -> a */
static void copy_by_name(const model_tensor *t, int n, float *const *a, umoe_model *full, float *const *b,
                         int to_full) {
    for (int i = 0; i < n; i++) {
        const model_tensor *f = model_tensor_find(full, t[i].name);
        if (!f) continue;
        for (int k = 0; k < 3; k++) {
            float *x = a[k] + t[i].offset, *y = b[k] + f->offset;
            memcpy(to_full ? y : x, to_full ? x : y, t[i].numel * sizeof(float));
        }
    }
}

static uint64_t full_hash(const umoe_model *fm) {
    int n;
    const model_tensor *t = model_tensors(fm, &n);
    return train_shape_hash(t, n);
}

/* pack (or unpack) expert e of `layer` from the tensors of table t, in table order (gate, up, down), k blocks */
static size_t pack_expert(const model_tensor *t, int n, int layer, int e, float *const *blocks, float *buf,
                          int unpack) {
    size_t w = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < n; i++) {
            if (t[i].layer != layer || t[i].expert != e) continue;
            if (unpack) memcpy(blocks[k] + t[i].offset, buf + w, t[i].numel * sizeof(float));
            else memcpy(buf + w, blocks[k] + t[i].offset, t[i].numel * sizeof(float));
            w += t[i].numel;
        }
    return w;
}

/* Checkpoint of an expert-sharded run: world rank 0 fills a full copy (fm, fo) with the dense tensors and its
 * own experts, and receives every other expert (weights, m, v) from its owner in EP group 0, in (MoE slot,
 * expert) order. Collective over EP group 0; the other ranks return at once. */
static umoe_status gather_full(ep_run *R, train_adamw *o, umoe_model *fm, train_adamw *fo) {
    if (R->d.ep_group != 0) return UMOE_OK;
    const spec_model *sp = model_spec(R->m);
    size_t per = 3 * 3 * (size_t)sp->F_expert * (size_t)sp->C;
    float *buf = umoe_malloc(per * sizeof(float), "checkpoint expert buffer");
    float *mine[3] = {model_params(R->m), o->m, o->v};
    float *full[3] = {fm ? model_params(fm) : NULL, fo ? fo->m : NULL, fo ? fo->v : NULL};
    int n_full = 0;
    const model_tensor *ft = fm ? model_tensors(fm, &n_full) : NULL;
    if (R->d.ep_rank == 0) copy_by_name(R->t, R->n_t, mine, fm, full, 1);
    int rc = MPI_SUCCESS;
    for (int s = 0; s < R->n_moe && rc == MPI_SUCCESS; s++) {
        const int32_t *own = ep_moe_owner(R->x, s);
        int layer = model_moe_layer_index(R->m, s);
        for (int e = 0; e < R->X && rc == MPI_SUCCESS; e++) {
            if (own[e] == 0) continue;
            if (R->d.ep_rank == own[e]) {
                size_t w = pack_expert(R->t, R->n_t, layer, e, mine, buf, 0);
                rc = MPI_Send(buf, (int)w, MPI_FLOAT, 0, e, R->d.ep);
            } else if (R->d.ep_rank == 0) {
                rc = MPI_Recv(buf, (int)per, MPI_FLOAT, own[e], e, R->d.ep, MPI_STATUS_IGNORE);
                if (rc == MPI_SUCCESS) pack_expert(ft, n_full, layer, e, full, buf, 1);
            }
        }
    }
    umoe_free(buf, per * sizeof(float));
    if (rc != MPI_SUCCESS) return dist_mpi_fail(rc, "MPI_Send/Recv (checkpoint gather)", __FILE__, __LINE__);
    return UMOE_OK;
}

/* the resume checks of train_loop.c that matter for reading the data the same way */
static umoe_status check_resume(const char *dir, const train_state_header *h, const train_opts *b,
                                uint64_t shape_hash) {
    const train_opts *a = &h->opts;
    if (h->shape_hash != shape_hash)
        return umoe_fail("checkpoint %s is of a different model shape: cannot resume", dir);
    if (a->B != b->B || a->T != b->T || a->accum != b->accum || a->seed != b->seed || a->val_frac != b->val_frac ||
        a->data_tokens != b->data_tokens)
        return umoe_fail("checkpoint %s was trained with --batch %d --seq %d --accum %d --seed %" PRIu64
                         " --val-frac %g on %" PRIu64 " tokens; this run differs (a resumed run must read the data "
                         "the same way; --batch is the global batch, whatever the ranks)", dir, a->B, a->T, a->accum,
                         a->seed, a->val_frac, a->data_tokens);
    if (h->step >= b->steps)
        return umoe_fail("checkpoint %s is already at step %ld; --steps %ld leaves nothing to do", dir, h->step,
                         b->steps);
    return UMOE_OK;
}

/* Validation: whole global batches, every rank its slice; falls back to every rank evaluating all windows (the
 * same forwards on every rank, so the collectives match) when the split holds less than one global batch. */
static double validate(ep_run *R, const train_data *data, const train_loader *ld, int Bg, int Bl, int T, long maxb) {
    int W = ld->W, rank = R->d.rank;
    uint64_t nwin = ld->n_val_win, nb = nwin / (uint64_t)Bg;
    if (maxb > 0 && nb > (uint64_t)maxb) nb = (uint64_t)maxb;
    if (nb == 0) {
        train_eval_result ev;
        train_evaluate(R->m, data, ld->val_begin, ld->val_end, Bl, T, maxb, &ev);
        return ev.lm_loss;
    }
    int32_t *tok = umoe_malloc((size_t)Bl * W * sizeof *tok, "val tokens");
    double lm = 0;
    for (uint64_t b = 0; b < nb; b++) {
        train_windows_read(data, ld->val_begin, T, W, b * (uint64_t)Bg + (uint64_t)rank * Bl, Bl, tok);
        model_losses L;
        model_forward(R->m, tok, Bl, T, &L);
        lm += L.lm_loss;
    }
    umoe_free(tok, (size_t)Bl * W * sizeof *tok);
    MPI_Allreduce(MPI_IN_PLACE, &lm, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return lm / ((double)nb * R->d.size);
}

typedef struct {
    double bytes_intra, bytes_inter, dispatch_s, expert_s, combine_s, sync_s, exposed_s;
} ep_step_stats;

/* the step's metrics line of train_metrics_log with an "ep" object appended */
static void log_step(FILE *log, const train_step_metrics *sm, const ep_run *R, const ep_step_stats *es,
                     const double *imb, int hier) {
    if (!log) return;
    char *buf = NULL;
    size_t len = 0;
    FILE *mf = open_memstream(&buf, &len);
    if (!mf) return;
    train_metrics_log(mf, sm);
    fclose(mf);
    if (len >= 2 && buf[len - 2] == '}') {
        buf[len - 2] = 0;
        fputs(buf, log);
        fprintf(log, ",\"ep\":{\"ranks\":%d,\"ep\":%d,\"a2a\":\"%s\",\"bytes_intra\":%.0f,\"bytes_inter\":%.0f,"
                     "\"dispatch_s\":%.6f,\"expert_s\":%.6f,\"combine_s\":%.6f,\"grad_sync_s\":%.6f,"
                     "\"comm_exposed_s\":%.6f,\"imbalance\":[",
                R->d.size, R->d.ep_size, hier ? "hierarchical" : "flat", es->bytes_intra, es->bytes_inter,
                es->dispatch_s, es->expert_s, es->combine_s, es->sync_s, es->exposed_s);
        for (int s = 0; s < R->n_moe; s++) fprintf(log, "%s%.4f", s ? "," : "", imb[s]);
        fputs("]}}\n", log);
        fflush(log);
    }
    free(buf);
}

umoe_status train_ep_run(const spec_model *s_in, const train_config *cin, const train_ep_opts *eo, train_result *r,
                         int *is_root) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) MPI_Init(NULL, NULL);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    *is_root = rank == 0;
    if (rank != 0) umoe_log_set_level(UMOE_LOG_WARN);
    spec_model sm_ = *s_in, *s = &sm_;
    if (eo->aux_scope >= 0) s->aux_scope = (spec_aux_scope)eo->aux_scope;
    train_config cfg = *cin;
    train_config *c = &cfg;
    train_opts *o = &c->o;
    if (o->T == 0) o->T = s->T;
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    if (o->warmup < 0) o->warmup = o->steps / 10 < 100 ? o->steps / 10 : 100;
    memset(r, 0, sizeof *r);
    r->val_loss = NAN;

    ep_run R;
    memset(&R, 0, sizeof R);
    train_data data = {0};
    int have_data = 0;
    train_loader ld = {0};
    train_adamw opt = {0};
    FILE *log = NULL;
    int32_t *tok = NULL;
    double *load = NULL, *wload = NULL, *imb = NULL;
    int *moe_layers = NULL;
    size_t tok_bytes = 0, load_bytes = 0;
    umoe_status st = UMOE_OK;

    /* flags and layout: every rank sees the same values, so every rank fails alike */
    if (o->T < 1 || o->T > s->T)
        st = umoe_fail("--seq %d is not allowed for model \"%s\" (1..%d)", o->T, s->name, s->T);
    else if (o->B % size != 0)
        st = umoe_fail("--batch %d (the global batch) must be a multiple of the %d MPI ranks (each rank takes "
                       "B / R sequences)", o->B, size);
    else if (s->E == 0)
        st = umoe_fail("--ep needs a MoE model; \"%s\" has no routed experts", s->name);
    else if (c->stop_at < 0 || c->stop_at > o->steps)
        st = umoe_fail("--stop-at %ld is not allowed (1..--steps %ld)", c->stop_at, o->steps);
    if (st) goto fail_early;
    dist_config dc = {eo->ep, s->E, eo->ranks_per_node};
    if ((st = dist_init(&R.d, &dc))) goto fail_early;
    R.have_d = 1;
    /* same binary and same configuration on every rank */
    uint64_t h = train_spec_hash(s);
    h = train_fnv1a(h, o, sizeof *o);
    h = train_fnv1a(h, eo, sizeof *eo);
    h = train_fnv1a(h, &s->router_groups, sizeof s->router_groups); /* not in train_spec_hash */
    h = train_fnv1a(h, c->data_path, strlen(c->data_path));
    if ((st = dist_check_startup(&R.d, h))) goto fail_early;

    /* data: every rank reads the file itself */
    st = train_data_load(&data, c->data_path);
    have_data = st == UMOE_OK;
    if (!st) st = train_data_check_vocab(&data, s->V);
    if ((st = agree(st, rank))) goto done;
    o->data_tokens = data.n;
    int Bg = o->B, Bl = o->B / size;
    /* the loader holds B / R rows; train_loader_next_shard walks the R x B / R windows of one shared permutation */
    st = train_loader_init(&ld, &data, Bl, o->T, s->mtp, o->val_frac, o->seed ^ 0x6c6f61646572ULL);
    if ((st = agree(st, rank))) goto done;
    /* experts sharded over the EP group: this rank's slots hold experts ep_rank * X/E .. (the default placement) */
    R.sharded = eo->ep > 1 && s->E > 0;
    if (R.sharded) {
        int nl = s->E / eo->ep, nm = 0;
        for (int l = 0; l < s->L + s->mtp; l++) nm += s->E > 0 && l >= s->first_k_dense;
        int32_t *map = umoe_malloc((size_t)(nm > 0 ? nm : 1) * (size_t)nl * sizeof(int32_t), "expert slot map");
        for (int l = 0; l < nm; l++)
            for (int j = 0; j < nl; j++) map[(size_t)l * nl + j] = R.d.ep_rank * nl + j;
        st = model_init_sharded(&R.m, s, Bl, o->T, o->seed, nl, map);
        umoe_free(map, (size_t)(nm > 0 ? nm : 1) * (size_t)nl * sizeof(int32_t));
    } else {
        st = model_init(&R.m, s, Bl, o->T, o->seed);
    }
    if (!st) st = model_set_recompute(R.m, c->recompute); /* memory optimisations: docs/engine-memory.md */
    if (!st) st = model_set_offload(R.m, c->offload, c->offload_dir);
    if ((st = agree(st, rank))) goto done;
    R.t = model_tensors(R.m, &R.n_t);
    R.n_moe = model_n_moe_layers(R.m);
    R.X = s->E;
    R.n_layers_tab = s->L + s->mtp + 1;
    R.slot_of_layer = umoe_malloc((size_t)R.n_layers_tab * sizeof(int), "slot table");
    for (int l = 0; l < R.n_layers_tab; l++) R.slot_of_layer[l] = -1;
    for (int k = 0; k < R.n_moe; k++) R.slot_of_layer[model_moe_layer_index(R.m, k)] = k;
    st = ep_moe_init(&R.x, &R.d, R.m, eo->hierarchical ? EP_A2A_HIER : EP_A2A_FLAT);
    if ((st = agree(st, rank))) goto done;
    ep_moe_set_overlap(R.x, eo->overlap);
    model_set_moe_ops(R.m, ep_moe_ops(R.x));
    dist_placement_config pc = {eo->placement, eo->placement_window > 0 ? eo->placement_window : 10, 0.9, 0.08,
                                eo->placement_bw > 0 ? eo->placement_bw : 1e9};
    st = dist_placer_init(&R.pl, &R.d, R.x, R.m, &pc);
    if ((st = agree(st, rank))) goto done;
    size_t n_params = model_n_params(R.m);
    train_adamw_init(&opt, n_params, o->beta1, o->beta2, o->eps, o->wd);
    uint64_t shape_hash = train_shape_hash(R.t, R.n_t), spec_hash = train_spec_hash(s);
    long step0 = 0;
    if (c->resume_dir) {
        /* every rank reads the whole checkpoint: all experts and their m, v, whatever the layout that wrote it */
        char path[4200];
        snprintf(path, sizeof path, "%s/train_state.bin", c->resume_dir);
        train_state_header hd;
        long wstep = 0;
        st = train_state_read(path, &hd, NULL);
        /* an expert-sharded run reads it into a full copy, then keeps its own experts and the dense tensors */
        umoe_model *fm = NULL;
        train_adamw fo = {0};
        if (!st && R.sharded) st = full_copy_init(s, o, &fm, &fo);
        if (!st) st = check_resume(c->resume_dir, &hd, o, R.sharded ? full_hash(fm) : shape_hash);
        if (!st) st = train_checkpoint_load_weights(c->resume_dir, R.sharded ? fm : R.m, &wstep);
        if (!st && wstep != hd.step)
            st = umoe_fail("checkpoint %s is inconsistent: weights at step %ld, train_state.bin at step %ld",
                           c->resume_dir, wstep, hd.step);
        if (!st) st = train_state_read(path, &hd, R.sharded ? &fo : &opt);
        if (!st && R.sharded) {
            float *mine[3] = {model_params(R.m), opt.m, opt.v}, *full[3] = {model_params(fm), fo.m, fo.v};
            copy_by_name(R.t, R.n_t, mine, fm, full, 0);
        }
        if (fm) {
            train_adamw_free(&fo);
            model_free(fm);
        }
        if ((st = agree(st, rank))) goto done;
        train_loader_seek(&ld, &hd.pos);
        step0 = hd.step;
        if (c->stop_at > 0 && c->stop_at <= step0) {
            st = umoe_fail("--stop-at %ld is not after the checkpoint's step %ld (%s)", c->stop_at, step0,
                           c->resume_dir);
            goto done;
        }
        LOG_INFO("resuming from %s at step %ld", c->resume_dir, step0);
    }
    if (c->log_path && rank == 0) {
        log = fopen(c->log_path, c->resume_dir ? "a" : "w");
        if (!log) st = umoe_fail("--log %s: cannot open for writing", c->log_path);
    }
    if ((st = agree(st, rank))) goto done;

    int n_moe = R.n_moe, X = R.X, W = ld.W;
    moe_layers = umoe_malloc((size_t)(n_moe + 1) * sizeof *moe_layers, "MoE layer ids");
    for (int k = 0; k < n_moe; k++) moe_layers[k] = model_moe_layer_index(R.m, k);
    size_t mb_local = (size_t)Bl * (size_t)W;
    tok_bytes = mb_local * (size_t)o->accum * sizeof *tok;
    tok = umoe_malloc(tok_bytes, "batch tokens");
    load_bytes = (size_t)(n_moe ? n_moe : 1) * (size_t)X * sizeof(double);
    load = umoe_malloc(load_bytes, "expert loads");
    wload = umoe_malloc(load_bytes, "expert loads (all ranks)");
    imb = umoe_calloc((size_t)(n_moe ? n_moe : 1), sizeof(double), "imbalance");
    int global_aux = s->aux_scope == SPEC_AUX_GLOBAL && n_moe > 0 && (o->accum > 1 || size > 1);
    int quiet = c->progress == 2 || rank != 0;
    long print_every = o->steps / 20 > 1 ? o->steps / 20 : 1;
    train_schedule sched = {o->lr, o->min_lr, o->warmup, o->steps};
    double t_run = umoe_now(), tokens_run = 0;
    LOG_INFO("training \"%s\" on %d ranks: EP %d (%d expert-DP groups), %s all-to-all over %d node(s) of %d ranks, "
             "%zu parameters, global batch %d x %d tokens (%d per rank) x %d micro-batches, placement %s, overlap %s",
             s->name, size, R.d.ep_size, R.d.n_ep_groups, eo->hierarchical ? "hierarchical" : "flat", R.d.n_nodes,
             R.d.ranks_per_node, n_params, Bg, o->T, Bl, o->accum, eo->placement ? "on" : "off",
             eo->overlap ? "on" : "off");
    ep_traffic tr_prev;
    ep_moe_traffic(R.x, &tr_prev);
    ep_moe_times tm_prev = *ep_moe_times_get(R.x);
    float *blocks[3] = {model_params(R.m), opt.m, opt.v};
    for (long step = step0; step < o->steps; step++) {
        double t0 = umoe_now();
        model_zero_grad(R.m);
        train_step_metrics sm = {0};
        sm.step = step + 1;
        sm.val_loss = NAN;
        memset(load, 0, load_bytes);
        for (int a = 0; a < o->accum; a++) train_loader_next_shard(&ld, tok + (size_t)a * mb_local, rank, size);
        if (global_aux) {
            /* global-batch scope: counts of every rank and micro-batch of the step (see train_loop.c) */
            for (int a = 0; a < o->accum; a++) {
                model_losses L;
                model_forward(R.m, tok + (size_t)a * mb_local, Bl, o->T, &L);
                for (size_t i = 0; i < (size_t)n_moe * X; i++) load[i] += L.expert_load[i];
            }
            if ((st = agree(dist_allreduce_sum_f64(load, (size_t)n_moe * X, R.d.world), rank))) goto done;
            model_set_aux_counts(R.m, load, (double)Bg * o->T * o->accum);
            memset(load, 0, load_bytes);
        }
        double part[5] = {0};
        for (int a = 0; a < o->accum; a++) {
            model_losses L;
            model_forward_backward(R.m, tok + (size_t)a * mb_local, Bl, o->T, 1.0f / (float)o->accum, &L);
            part[0] += L.loss / o->accum;
            part[1] += L.lm_loss / o->accum;
            part[2] += L.aux_loss / o->accum;
            part[3] += L.z_loss / o->accum;
            part[4] += L.mtp_loss / o->accum;
            if (L.expert_load && L.n_moe_layers == n_moe)
                for (size_t i = 0; i < (size_t)n_moe * X; i++) load[i] += L.expert_load[i];
        }
        if (global_aux) model_set_aux_counts(R.m, NULL, 0);
        /* gradients: sums over ranks (dense) and expert-DP groups (experts), then the mean over the R slices */
        dist_sync_stats ss = {0};
        st = ep_moe_grad_sync(R.x, (size_t)eo->bucket_floats, &ss);
        if ((st = agree(st, rank))) goto done;
        scale_grads(&R, 1.0f / (float)size);
        MPI_Allreduce(MPI_IN_PLACE, part, 5, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        sm.loss = part[0] / size;
        sm.lm_loss = part[1] / size;
        sm.aux_loss = part[2] / size;
        sm.z_loss = part[3] / size;
        sm.mtp_loss = part[4] / size;
        if (!isfinite(sm.loss)) {
            st = umoe_fail("the loss became %g at step %ld: the run diverged (try a lower --lr or a --clip)",
                           sm.loss, step + 1);
            st = UMOE_EFAIL;
            goto done;
        }
        float clip_scale = 1.0f;
        if ((st = agree(clip_grads(&R, o->clip, &sm.grad_norm, &clip_scale), rank))) goto done;
        sm.lr = train_lr_at(&sched, step);
        adamw_owned(&R, &opt, sm.lr, step + 1, clip_scale);
        /* EP metrics of the step: loads over all ranks, per-layer imbalance, bytes and times */
        ep_moe_times tm = *ep_moe_times_get(R.x);
        double rows = tm.rows_recv - tm_prev.rows_recv, exs = tm.expert_s - tm_prev.expert_s;
        if ((st = agree(dist_placer_observe(R.pl, load, rows > 0 ? exs / rows : 0, imb), rank))) goto done;
        memcpy(wload, load, load_bytes);
        if ((st = agree(dist_allreduce_sum_f64(wload, (size_t)n_moe * X, R.d.world), rank))) goto done;
        /* aux-loss-free balancing on the loads of all ranks, so the biases stay equal everywhere */
        if (s->score_bias && n_moe > 0 && o->bias_rate > 0) model_score_bias_update(R.m, wload, (float)o->bias_rate);
        ep_traffic tr;
        ep_moe_traffic(R.x, &tr);
        ep_step_stats es = {(double)(tr.row_bytes_intra + tr.meta_bytes_intra - tr_prev.row_bytes_intra -
                                     tr_prev.meta_bytes_intra),
                            (double)(tr.row_bytes_inter + tr.meta_bytes_inter - tr_prev.row_bytes_inter -
                                     tr_prev.meta_bytes_inter),
                            tm.dispatch_s - tm_prev.dispatch_s, exs, tm.combine_s - tm_prev.combine_s, ss.seconds,
                            tr.seconds - tr_prev.seconds};
        MPI_Allreduce(MPI_IN_PLACE, &es.bytes_intra, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &es.dispatch_s, 5, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        tr_prev = tr;
        tm_prev = tm;
        /* dynamic placement after the update: weights and AdamW m, v move with their expert */
        if ((st = agree(dist_placer_step(R.pl, step + 1, blocks, 3), rank))) goto done;
        double dt = umoe_now() - t0;
        sm.tokens = (long long)Bg * o->T * o->accum;
        sm.tokens_per_s = dt > 0 ? (double)sm.tokens / dt : 0;
        sm.seconds = dt;
        sm.n_moe_layers = n_moe;
        sm.E = X;
        sm.moe_layer = moe_layers;
        sm.load = wload;
        tokens_run += (double)sm.tokens;
        int last = step + 1 == o->steps, stop = step + 1 == c->stop_at;
        /* Ctrl-C / SIGTERM on any rank (mpirun forwards them): every rank finishes this step and checkpoints */
        int intr = !last && c->interrupt && *c->interrupt;
        MPI_Allreduce(MPI_IN_PLACE, &intr, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        if (((c->val_every > 0 && (step + 1) % c->val_every == 0) || last) && ld.n_val_win > 0) {
            sm.val_loss = validate(&R, &data, &ld, Bg, Bl, o->T, c->val_batches);
            r->val_loss = sm.val_loss;
        }
        model_memory mem; /* this rank's (rank 0 writes the log); the AdamW m and v are the trainer's */
        model_memory_report(R.m, &mem);
        mem.optimizer = 2 * n_params * sizeof(float);
        sm.mem = &mem;
        log_step(log, &sm, &R, &es, imb, eo->hierarchical);
        if (!quiet && (step == step0 || (step + 1) % print_every == 0 || last || stop)) {
            double el = umoe_now() - t_run;
            train_metrics_progress(0, &sm, o->steps, el / (double)(step + 1 - step0) * (double)(o->steps - step - 1));
            char ib[256] = "";
            for (int k = 0, n = 0; k < n_moe && n < 200; k++)
                n += snprintf(ib + n, sizeof ib - (size_t)n, "%s%.2f", k ? " " : "", imb[k]);
            LOG_INFO("step %ld EP: %.2f MB in-node, %.2f MB across nodes; dispatch %.1f ms, experts %.1f ms, combine "
                     "%.1f ms (exposed communication %.1f ms), grad sync %.1f ms; imbalance per MoE layer %s", step + 1,
                     es.bytes_intra / 1e6, es.bytes_inter / 1e6, es.dispatch_s * 1e3, es.expert_s * 1e3,
                     es.combine_s * 1e3, es.exposed_s * 1e3, es.sync_s * 1e3, ib);
        }
        if (!isnan(sm.val_loss))
            LOG_INFO("step %ld: validation loss %.4f nats/token (perplexity %.3f)", step + 1, sm.val_loss,
                     exp(sm.val_loss));
        r->steps_done = step + 1;
        r->last_loss = sm.loss;
        r->last_lm_loss = sm.lm_loss;
        if (c->out_dir && ((c->save_every > 0 && (step + 1) % c->save_every == 0) || last || stop || intr)) {
            /* sharded: world rank 0 gathers every expert into a full copy and saves that */
            umoe_model *fm = NULL;
            train_adamw fo = {0};
            if (R.sharded && rank == 0) st = full_copy_init(s, o, &fm, &fo);
            if ((st = agree(st, rank))) goto done;
            if (R.sharded) st = gather_full(&R, &opt, fm, &fo);
            if (!st && rank == 0) {
                train_state_header hd = {0};
                hd.shape_hash = R.sharded ? full_hash(fm) : shape_hash;
                hd.spec_hash = spec_hash;
                hd.step = step + 1;
                hd.n_params = R.sharded ? model_n_params(fm) : n_params;
                hd.pos = ld.pos;
                hd.opts = *o;
                st = train_checkpoint_save(c->out_dir, R.sharded ? fm : R.m, R.sharded ? &fo : &opt, &hd);
            }
            if (fm) {
                train_adamw_free(&fo);
                model_free(fm);
            }
            if ((st = agree(st, rank))) goto done;
            LOG_INFO("step %ld: checkpoint of the whole model (every expert) saved to %s", step + 1, c->out_dir);
        }
        if (stop || intr) {
            LOG_INFO("stopped at step %ld of %ld (%s)", step + 1, o->steps, stop ? "--stop-at" : "interrupted");
            r->interrupted = intr;
            break;
        }
    }
    r->seconds = umoe_now() - t_run;
    r->tokens_per_s = r->seconds > 0 ? tokens_run / r->seconds : 0;
    {
        const dist_placer_stats *ps = dist_placer_stats_get(R.pl);
        if (eo->placement)
            LOG_INFO("placement: %" PRIu64 " re-placements, %" PRIu64 " expert moves, %" PRIu64 " bytes moved",
                     ps->replacements, ps->moves, ps->bytes);
    }
done:
    if (log) fclose(log);
    if (tok) umoe_free(tok, tok_bytes);
    if (load) umoe_free(load, load_bytes);
    if (wload) umoe_free(wload, load_bytes);
    if (imb) umoe_free(imb, (size_t)(R.n_moe ? R.n_moe : 1) * sizeof(double));
    if (moe_layers) umoe_free(moe_layers, (size_t)(R.n_moe + 1) * sizeof *moe_layers);
    if (opt.m) train_adamw_free(&opt);
    dist_placer_free(R.pl);
    if (R.m) model_set_moe_ops(R.m, NULL);
    ep_moe_free(R.x);
    if (R.slot_of_layer) umoe_free(R.slot_of_layer, (size_t)R.n_layers_tab * sizeof(int));
    if (R.m) model_free(R.m);
    train_loader_free(&ld);
    if (have_data) train_data_free(&data);
fail_early:
    if (R.have_d) dist_free(&R.d);
    g_we_inited = !inited;
    return st;
}

void train_ep_finalize(void) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (g_we_inited && !fin) MPI_Finalize();
    g_we_inited = 0;
}
#endif
