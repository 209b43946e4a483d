/* search.c - the planner: evaluate every valid strategy of a model on a device count and keep the best.
 *
 * Candidates are grouped into chains: one structural layout (search_space.c) x one schedule x one EP
 * all-to-all style, over ascending micro-batch sizes; each micro-batch size tries every recompute policy
 * and ZeRO-1 on/off. A chain is a unit of parallel work (OpenMP) and of pruning:
 *   - memory only grows with the micro-batch size (activations and dispatch buffers scale with it; the
 *     in-flight count min(pp, n_mb) times mbs never shrinks), and full recompute with ZeRO-1 is the lightest
 *     variant of a micro-batch size. So when that lightest variant does not fit, no variant of this or any
 *     larger micro-batch size fits, and those candidates are counted as pruned, not evaluated;
 *   - recompute only adds work, so no recompute is the fastest policy of a (micro-batch size, ZeRO-1)
 *     setting: when even it ranks below the current K-th best, the other policies are skipped (bounded).
 *     The threshold is fixed per block of chains, so the work done is the same for any thread count.
 * --no-prune evaluates everything; tests check that both give the same strategies and that
 * evaluated + pruned + bounded = the unpruned evaluation count.
 * Offload: the recompute policies are extended with their activation- and optimizer-offload variants
 * (PLAN_RC_OFFLOAD, PLAN_RC_OFFLOAD_OPT; search_space.c) when the hardware has a host link. Offload only adds
 * time and only lowers memory, full recompute keeps fewer activations than any policy with activation
 * offload, and the last policy with full is full + optimizer offload, so both rules above still hold (the
 * lightest variant is that one with ZeRO-1). An offloaded candidate is kept only where none of its variants
 * with fewer offloads (its twins, evaluated before it at the same micro-batch size and ZeRO-1) fits, in every
 * mode, so pruning still changes only the work done.
 * Schedules tried: pp = 1: 1F1B only (every schedule is the same without a pipeline); pp > 1: every
 * schedule that spec_strategy_check accepts (today: 1F1B, ZB-1P and DualPipe at vpp = 1, interleaved at vpp > 1),
 * except interleaved at vpp = 1 (one chunk per device: the same schedule as 1F1B). EP all-to-all: flat, plus hierarchical for MoE models whose
 * expert group spans more than one node. ZeRO-1 on is tried wherever some data-parallel group (dense or
 * expert) has more than one rank. Each (layout, schedule, a2a, mbs) passes spec_strategy_check before any
 * evaluation.
 * Then the best N (default: K) are re-evaluated with the event-driven pipeline simulation and re-ranked
 * among themselves; entries after N keep their closed-form figures and order.
 * Does not: print (reports are in search_report.c), or know how the simulator computes anything. */
#include <string.h>
#ifdef UMOE_OPENMP
#include <omp.h>
#endif
#include "search_internal.h"

void plan_options_defaults(plan_options *o) {
    memset(o, 0, sizeof *o);
    o->top = 10;
    o->detailed_top = -1;
    o->threads = 1;
}

void plan_strategy_base(spec_strategy *s, int gbs) {
    spec_strategy_defaults(s);
    s->gbs = gbs;
    s->mbs = 1;
    s->pad_layers = 1;
    s->overlap_tp = s->overlap_ep = s->overlap_dp = s->overlap_pp = 1;
}

void plan_result_free(plan_result *r) {
    if (r->best) umoe_free(r->best, (size_t)(r->n ? r->n : 1) * sizeof *r->best);
    r->best = NULL;
    r->n = 0;
}

typedef struct {
    int layout;
    spec_schedule sched;
    spec_a2a a2a;
    int mbs0, n_mbs; /* valid micro-batch sizes: mbs_pool[mbs0 .. mbs0 + n_mbs) */
} plan_chain;

typedef struct {
    plan_topk top;
    long long evaluated, feasible, pruned, bounded, errors, groups;
    double min_peak;
    sim_result sr; /* the evaluator's output (large: kept per worker, not per candidate) */
    spec_strategy s; /* the base strategy; each chain overwrites the searched fields (copied once per worker, not
                      * per chain: spec_strategy carries an 8 KB load histogram) */
    long long fit_group[8 * PLAN_RC_MAX]; /* per variant: the group (micro-batch visit) it was last evaluated in */
    char fit[8 * PLAN_RC_MAX];            /* and whether it fit then (offloaded candidates look their twins up) */
    char pad[64]; /* keep workers' counters on separate cache lines */
} plan_worker;

/* Everything a worker reads; shared, read-only during the parallel part. */
typedef struct {
    const spec_model *m;
    const spec_cluster *c;
    const spec_strategy *base;
    const plan_layout *lay;
    const plan_chain *ch;
    const int *mbs_pool;
    const unsigned *rc;
    int n_rc, rc_full, rc_none; /* indices of SPEC_RC_FULL and of no recompute in rc[], -1 if absent */
    const int (*twin)[2];       /* per policy: the policies with one offload fewer (earlier in rc[]), or -1 */
    int no_prune, no_bound;
    plan_eval_fn eval;
    sim_options opt;
} plan_ctx;

static int zero1_useful(const plan_layout *l) {
    int edp = (l->tp * l->cp * l->dp) / (l->ep * l->etp); /* expert data-parallel degree */
    return l->dp > 1 || edp > 1;
}

/* 1 when a twin of variant v (the same policy with one offload fewer) was evaluated in this group and fits. */
static int twin_fits(const plan_ctx *x, const plan_worker *w, int v, int nz) {
    for (int k = 0; k < 2; k++) {
        int tp = x->twin[v / nz][k], tw = tp >= 0 ? tp * nz + v % nz : -1;
        if (tw >= 0 && w->fit_group[tw] == w->groups && w->fit[tw]) return 1;
    }
    return 0;
}

/* Evaluate one candidate (the variant v of micro-batch index im of chain ci); returns 1 when it fits. keep = 0:
 * do not offer it to the best list (the caller decides once its twins are known). */
static int eval_one(const plan_ctx *x, plan_worker *w, spec_strategy *s, plan_entry *e, int ci, int im, int v, int nz,
                    int keep) {
    unsigned pol = x->rc[v / nz];
    e->recompute = s->recompute = pol & ~(PLAN_RC_OFFLOAD | PLAN_RC_OFFLOAD_OPT);
    e->offload_act = s->offload_activations = (pol & PLAN_RC_OFFLOAD) != 0;
    e->offload_opt = s->offload_optimizer = (pol & PLAN_RC_OFFLOAD_OPT) != 0;
    e->zero1 = s->zero1 = nz == 2 ? v % nz : 0;
    e->key = ((uint64_t)ci << 24) | ((uint64_t)im << 12) | (uint64_t)v;
    if (x->eval(x->m, x->c, s, &x->opt, &w->sr) != UMOE_OK) {
        w->errors++;
        e->r.tokens_per_s = 0;
        return 0;
    }
    plan_sim_from(&e->r, &w->sr);
    w->evaluated++;
    if (e->r.memory_peak_bytes < w->min_peak) w->min_peak = e->r.memory_peak_bytes;
    w->fit_group[v] = w->groups;
    w->fit[v] = (char)e->r.fits;
    if (!e->r.fits) return 0;
    w->feasible++;
    /* a twin with fewer offloads fits: it is never slower, so this one is not kept */
    if (keep && !twin_fits(x, w, v, nz)) plan_topk_add(&w->top, e);
    return 1;
}

/* One chain. thr: tokens/s of the current cap-th best (-1 while fewer are known), fixed for the whole block
 * of chains this one belongs to, so every decision is independent of the thread count. */
static void run_chain(const plan_ctx *x, int ci, plan_worker *w, double thr) {
    const plan_chain *ch = &x->ch[ci];
    const plan_layout *l = &x->lay[ch->layout];
    spec_strategy *s = &w->s; /* every field run_chain and eval_one set is set for each chain: no state leaks */
    plan_entry e;
    memset(&e, 0, sizeof e);
    e.tp = s->tp = l->tp;
    s->sp = l->tp > 1;
    e.cp = s->cp = l->cp;
    e.pp = s->pp = l->pp;
    e.vpp = s->vpp = l->vpp;
    e.ep = s->ep = l->ep;
    e.etp = s->etp = l->etp;
    e.dp = s->dp = l->dp;
    e.schedule = s->schedule = ch->sched;
    e.a2a = s->a2a = ch->a2a;
    int nz = zero1_useful(l) ? 2 : 1;
    int variants = x->n_rc * nz;
    /* lightest variant: full recompute with ZeRO-1 (when both are searched) */
    int light = x->rc_full >= 0 ? x->rc_full * nz + (nz - 1) : -1;
    int prune = !x->no_prune;
    for (int im = 0; im < ch->n_mbs; im++) {
        e.mbs = s->mbs = x->mbs_pool[ch->mbs0 + im];
        w->groups++;
        /* the lightest is evaluated first and offered to the best list last, once its twins are known (a twin
         * skipped by the bound leaves it below the threshold, so it could not rank anyway) */
        int light_fits = light >= 0 && eval_one(x, w, s, &e, ci, im, light, nz, 0);
        plan_entry le = e;
        if (light >= 0 && !light_fits && prune) {
            /* the lightest does not fit: no variant of this or a larger micro-batch does */
            w->pruned += (long long)(ch->n_mbs - im) * variants - 1;
            break;
        }
        for (int z = 0; z < nz; z++) {
            /* bound: no recompute is the fastest policy at this ZeRO-1 setting */
            double ub = 1e300;
            int vn = x->rc_none >= 0 ? x->rc_none * nz + z : -1;
            if (vn >= 0) {
                eval_one(x, w, s, &e, ci, im, vn, nz, 1);
                ub = e.r.tokens_per_s;
            }
            if (prune && !x->no_bound && ub < thr) {
                w->bounded += x->n_rc - (vn >= 0) - (light >= 0 && light % nz == z);
                continue;
            }
            for (int r = 0; r < x->n_rc; r++) {
                int v = r * nz + z;
                if (v != vn && v != light) eval_one(x, w, s, &e, ci, im, v, nz, 1);
            }
        }
        if (light_fits && !twin_fits(x, w, light, nz)) plan_topk_add(&w->top, &le);
    }
}

/* Divisors of n, ascending, appended to pool; returns how many. */
static int push_divisors(int n, int **pool, int *len, int *cap) {
    int k = 0;
    for (int d = 1; d <= n; d++) {
        if (n % d) continue;
        if (*len == *cap) {
            *pool = umoe_realloc(*pool, (size_t)*cap * sizeof **pool, (size_t)*cap * 2 * sizeof **pool, "plan mbs");
            *cap *= 2;
        }
        (*pool)[(*len)++] = d;
        k++;
    }
    return k;
}

/* A cheap pre-filter with the schedule rules of spec_strategy_check (which still decides: this only spares
 * it formatting messages for the many combinations it would reject; the brute-force test checks the planner
 * against spec_strategy_check alone). n_mb = micro-batches per step. */
static int schedule_may_apply(spec_schedule sc, const plan_layout *l, int n_mb) {
    switch (sc) {
    case SPEC_SCHED_INTERLEAVED: return l->vpp > 1 && n_mb % l->pp == 0; /* at vpp 1 it is 1F1B: not repeated */
    case SPEC_SCHED_DUALPIPE: return l->vpp == 1 && l->pp % 2 == 0 && n_mb % 2 == 0 && n_mb >= 2 * l->pp;
    default: return l->vpp == 1;
    }
}

/* Build the chains: every (layout, schedule, a2a) with its micro-batch sizes that pass spec_strategy_check.
 * Sequential: spec_strategy_check reports through the global umoe_err. */
static void build_chains(const spec_model *m, const spec_cluster *c, const spec_strategy *base, const plan_layout *lay,
                         int n_lay, int gbs, plan_chain **chains, int *n_chains, int *chain_cap, int **pool,
                         int *pool_len, int *pool_cap) {
    spec_strategy s = *base;
    int *div = NULL, nd_cap = 64, nd = 0;
    div = umoe_malloc((size_t)nd_cap * sizeof *div, "plan divisors");
    char saved_err[UMOE_ERRLEN];
    memcpy(saved_err, umoe_err, sizeof saved_err);
    int dpn = c->hw.devices_per_node > 0 ? c->hw.devices_per_node : 1;
    for (int li = 0; li < n_lay; li++) {
        const plan_layout *l = &lay[li];
        s.tp = l->tp, s.sp = l->tp > 1, s.cp = l->cp, s.pp = l->pp, s.vpp = l->vpp;
        s.ep = l->ep, s.etp = l->etp, s.dp = l->dp;
        s.recompute = 0, s.zero1 = 0;
        nd = 0;
        push_divisors(gbs / l->dp, &div, &nd, &nd_cap);
        /* without a pipeline every schedule is the same: 1F1B only; otherwise every schedule, and
         * spec_strategy_check keeps those that apply (interleaved iff vpp > 1, DualPipe's pp and micro-batch
         * rules, ...) */
        spec_schedule scheds[SPEC_SCHED_COUNT];
        int ns = 0;
        if (l->pp == 1) scheds[ns++] = SPEC_SCHED_1F1B;
        else
            for (int k = 0; k < SPEC_SCHED_COUNT; k++) scheds[ns++] = (spec_schedule)k;
        /* hierarchical all-to-all only matters when an EP group can span nodes: the devices of one pipeline
         * stage (tp x cp x dp, where experts spread) are more than a node */
        int hier = m->E > 0 && l->ep > 1 && l->tp * l->cp * l->dp > dpn;
        for (int ia = 0; ia <= hier; ia++) {
            for (int is = 0; is < ns; is++) {
                s.schedule = scheds[is];
                s.a2a = ia ? SPEC_A2A_HIER : SPEC_A2A_FLAT;
                int mbs0 = *pool_len, k = 0;
                for (int id = 0; id < nd; id++) {
                    s.mbs = div[id];
                    if (gbs % (l->dp * s.mbs)) continue;
                    if (!schedule_may_apply(s.schedule, l, gbs / (l->dp * s.mbs))) continue;
                    if (spec_strategy_check(&s, m, c->devices, "plan") != UMOE_OK) continue;
                    if (*pool_len == *pool_cap) {
                        *pool = umoe_realloc(*pool, (size_t)*pool_cap * sizeof **pool,
                                             (size_t)*pool_cap * 2 * sizeof **pool, "plan mbs");
                        *pool_cap *= 2;
                    }
                    (*pool)[(*pool_len)++] = s.mbs;
                    k++;
                }
                if (!k) continue;
                if (*n_chains == *chain_cap) {
                    *chains = umoe_realloc(*chains, (size_t)*chain_cap * sizeof **chains,
                                           (size_t)*chain_cap * 2 * sizeof **chains, "plan chains");
                    *chain_cap *= 2;
                }
                (*chains)[(*n_chains)++] = (plan_chain){li, s.schedule, s.a2a, mbs0, k};
            }
        }
    }
    memcpy(umoe_err, saved_err, sizeof saved_err);
    umoe_free(div, (size_t)nd_cap * sizeof *div);
}

umoe_status plan_search(const spec_model *m, const spec_cluster *c_in, const plan_options *o, plan_eval_fn eval,
                        plan_result *out) {
    double t0 = umoe_now();
    memset(out, 0, sizeof *out);
    spec_cluster c = *c_in;
    if (o->devices > 0) c.devices = o->devices;
    if (c.devices < 1) return umoe_fail("plan: device count %d is not allowed (at least 1)", c.devices);
    int gbs = o->gbs > 0 ? o->gbs : plan_default_gbs(c.devices, m->T);
    out->devices = c.devices;
    out->gbs = gbs;
    out->seq = m->T;
    out->gbs_defaulted = o->gbs <= 0;
    int top = o->top > 0 ? o->top : 10;
    int ndet = o->detailed_top < 0 ? top : o->detailed_top;
    int cap = top > ndet ? top : ndet;
    out->n_cap = cap;

    unsigned rc[4 * PLAN_RC_MAX];
    int n_rc = o->n_recompute > 0 ? o->n_recompute : plan_recompute_default(m, rc);
    if (o->n_recompute > 0) memcpy(rc, o->recompute, (size_t)n_rc * sizeof *rc);
    if (!o->no_offload) n_rc = plan_offload_variants(&c.hw, rc, n_rc, 4 * PLAN_RC_MAX);
    int rc_full = -1, rc_none = -1, twin[4 * PLAN_RC_MAX][2];
    for (int i = 0; i < n_rc; i++) {
        if (rc[i] & SPEC_RC_FULL) rc_full = i;
        if (rc[i] == 0) rc_none = i;
        /* twins: the same policy with one offload fewer; only those evaluated before it count (eval_one), and
         * plan_offload_variants puts them earlier in the list */
        twin[i][0] = twin[i][1] = -1;
        for (int j = 0; j < i; j++) {
            if ((rc[i] & PLAN_RC_OFFLOAD) && rc[j] == (rc[i] & ~PLAN_RC_OFFLOAD)) twin[i][0] = j;
            if ((rc[i] & PLAN_RC_OFFLOAD_OPT) && rc[j] == (rc[i] & ~PLAN_RC_OFFLOAD_OPT)) twin[i][1] = j;
        }
    }

    spec_strategy base;
    plan_strategy_base(&base, gbs);
    if (o->no_overlap) base.overlap_tp = base.overlap_ep = base.overlap_dp = base.overlap_pp = 0;
    out->overlap = !o->no_overlap;

    plan_layout *lay = NULL;
    int n_lay = 0;
    int dpn = c.hw.devices_per_node > 0 ? c.hw.devices_per_node : 1;
    umoe_status st = plan_layouts(m, &base, c.devices, dpn, o->exhaustive, &lay, &n_lay);
    if (st) return st;
    out->layouts = n_lay;

    int chain_cap = 256, n_ch = 0, pool_cap = 1024, pool_len = 0;
    plan_chain *ch = umoe_malloc((size_t)chain_cap * sizeof *ch, "plan chains");
    int *pool = umoe_malloc((size_t)pool_cap * sizeof *pool, "plan mbs");
    build_chains(m, &c, &base, lay, n_lay, gbs, &ch, &n_ch, &chain_cap, &pool, &pool_len, &pool_cap);

    plan_ctx x = {m, &c, &base, lay, ch, pool, rc, n_rc, rc_full, rc_none, (const int (*)[2])twin, o->no_prune,
                  o->no_bound, eval, {0}};
    x.opt.causal_half = o->causal_half;
    x.opt.detailed = 0;
    sim_model_pre pre; /* the model's parameter and FLOP counts, once per search instead of once per call */
    sim_model_pre_init(&pre, m, o->causal_half);
    x.opt.pre = &pre;

    int nt = o->threads > 1 ? o->threads : 1;
#ifndef UMOE_OPENMP
    nt = 1;
#endif
    plan_worker *w = umoe_calloc((size_t)nt, sizeof *w, "plan workers");
    for (int t = 0; t < nt; t++) plan_topk_init(&w[t].top, cap), w[t].min_peak = 1e300, w[t].s = base;
    plan_topk all;
    plan_topk_init(&all, cap);
    umoe_progress prog;
    umoe_progress_start(&prog, "plan", n_ch);
    if (!o->progress) prog.enabled = 0;
    /* Blocks of chains: the bound threshold is the cap-th best after the previous blocks, the same for every
     * thread, so what is evaluated and what is skipped does not depend on the thread count. */
    /* Blocks grow from 64 to 4096 chains: the threshold matters most early, and every block costs the threads a
     * barrier. The boundaries depend on the chain count only. */
    int block = 64;
    for (int b0 = 0, b1; b0 < n_ch; b0 = b1, block = block < 4096 ? 2 * block : block) {
        b1 = b0 + block < n_ch ? b0 + block : n_ch;
        double thr = all.n == all.cap ? all.e[all.n - 1].r.tokens_per_s : -1;
#ifdef UMOE_OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
#endif
        for (int ci = b0; ci < b1; ci++) {
            int tid = 0;
#ifdef UMOE_OPENMP
            tid = omp_get_thread_num();
#endif
            run_chain(&x, ci, &w[tid], thr);
        }
        /* merge the workers' best lists (the order is total: the merge equals the sequential result) */
        for (int t = 0; t < nt; t++) {
            for (int i = 0; i < w[t].top.n; i++) plan_topk_add(&all, &w[t].top.e[i]);
            w[t].top.n = 0;
        }
        umoe_progress_update(&prog, (double)b1);
    }
    umoe_progress_end(&prog);

    long long errors = 0, groups = 0;
    out->min_peak_bytes = 1e300;
    for (int t = 0; t < nt; t++) {
        if (w[t].min_peak < out->min_peak_bytes) out->min_peak_bytes = w[t].min_peak;
        out->evaluated += w[t].evaluated;
        out->feasible += w[t].feasible;
        out->pruned += w[t].pruned;
        out->bounded += w[t].bounded;
        errors += w[t].errors;
        groups += w[t].groups;
        plan_topk_free(&w[t].top);
    }
    umoe_free(w, (size_t)nt * sizeof *w);
    if (errors) LOG_WARN("plan: the simulator rejected %lld candidate strategies (last: %s)", errors, umoe_err);
    out->seconds_closed = umoe_now() - t0;
    LOG_DEBUG("plan: %d layouts, %d chains, %lld (micro-batch, schedule, a2a) groups visited, %lld simulations",
              n_lay, n_ch, groups, out->evaluated);

    /* re-evaluate the best N with the event-driven pipeline simulation and re-rank them */
    int nd = ndet < all.n ? ndet : all.n, kept = 0;
    if (nd > 0) {
        sim_options od = x.opt;
        od.detailed = 1;
        sim_result *sr = umoe_malloc(sizeof *sr, "plan detailed result");
        int warned = 0;
        spec_strategy s;
        for (int i = 0; i < nd; i++) {
            plan_entry e = all.e[i];
            plan_entry_strategy(&e, &base, &s);
            memset(sr, 0, sizeof *sr);
            if (eval(m, &c, &s, &od, sr) != UMOE_OK) {
                LOG_WARN("plan: detailed simulation failed for a candidate: %s", umoe_err);
                continue;
            }
            plan_sim_from(&e.r, sr);
            sim_result_free(sr);
            double busy = e.r.breakdown[SIM_T_COMPUTE] + e.r.breakdown[SIM_T_RECOMPUTE];
            if (e.r.step_time_s < busy * (1 - 1e-9) && !warned++) /* a device cannot compute faster than its work */
                LOG_WARN("plan: the event simulation of %s (tp%d pp%d vpp%d mbs%d) gives a step of %.4g s, shorter "
                         "than the %.4g s of compute in its own breakdown: a simulator issue; figures of this schedule "
                         "are suspect", plan_schedule_name(e.schedule), e.tp, e.pp, e.vpp, e.mbs, e.r.step_time_s,
                         busy);
            if (!e.r.fits) continue; /* the event simulation found a higher in-flight peak */
            all.e[kept++] = e;
        }
        umoe_free(sr, sizeof *sr);
        out->detailed = kept;
        plan_entries_sort(all.e, kept);
        memmove(all.e + kept, all.e + nd, (size_t)(all.n - nd) * sizeof *all.e);
        all.n -= nd - kept;
    }
    out->n = all.n < top ? all.n : top;
    out->best = umoe_malloc((size_t)(out->n ? out->n : 1) * sizeof *out->best, "plan result");
    memcpy(out->best, all.e, (size_t)out->n * sizeof *out->best);
    if (out->detailed > out->n) out->detailed = out->n;
    plan_topk_free(&all);
    umoe_free(ch, (size_t)chain_cap * sizeof *ch);
    umoe_free(pool, (size_t)pool_cap * sizeof *pool);
    umoe_free(lay, (size_t)(n_lay ? n_lay : 1) * sizeof *lay);
    out->seconds = umoe_now() - t0;
    return UMOE_OK;
}
