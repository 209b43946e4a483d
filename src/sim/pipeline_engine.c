/* pipeline_engine.c - sim_pipeline_run: event simulation of one pipeline-parallel training step.
 *
 * Each device executes its program (the op list a pipeline_<schedule>.c builder writes) strictly in
 * order. An op starts at max(device free, dependency finished):
 *   F(v, m): F(prev(v), m) finished, + p2p when prev(v) is on another device; the first stage is ready at 0;
 *   B(v, m): B(next(v), m) finished, + p2p when next(v) is on another device; the last stage needs its own
 *            F(v, m); every B also needs its own F(v, m);
 *   W(v, m): B(v, m) finished (same device).
 * Sends are asynchronous: p2p is a latency on the edge, the sender is not busy during it.
 * A work list of devices drives it: a device runs as far as its next op's inputs are known; when an op
 * ends, the device that may wait for it is put back on the list. Ops left when the list is empty mean the
 * program deadlocks (an internal error).
 *
 * Results (see docs/pipeline.md):
 *   makespan     = the last op's end (the first forward starts at 0), seconds;
 *   bubble_frac  = (makespan - max_d busy_d) / makespan: the idle fraction of the busiest device, i.e. the
 *                  share of the step that is not that device's own work (p2p latency counts as idle);
 *   peak_inflight[d] = max over time of the number of (virtual stage on d, micro-batch) whose F is done
 *                  and whose B is not (activations held; a W still pending does not count).
 * One workspace allocation per call, plus the event array when record != 0.
 * Does not: compute the per-stage costs (the step model does), model memory in bytes. */
#include <math.h>
#include <string.h>
#include "umoe/sim.h"
#include "pipeline_ops.h"

static const char *const sched_names[SPEC_SCHED_COUNT] = {"1f1b", "interleaved", "zb1p", "dualpipe"};

typedef struct {
    int V, n;
    int *dev, *cost, *prev, *next; /* (V) device, cost index, neighbours in forward order (-1: none) */
    double *tf, *tb, *tw;          /* (V, n) finish times, -1 = not yet run */
    const double *f, *b, *w;
    int split_w;
    double p2p;
} pipe_state;

static double pipe_hop(const pipe_state *s, int a, int c) { return s->dev[a] != s->dev[c] ? s->p2p : 0.0; }

/* Time at which op o's inputs are available, or -1 when they are not known yet. */
static double pipe_ready(const pipe_state *s, pipe_op o) {
    size_t i = (size_t)o.v * (size_t)s->n + (size_t)o.mb;
    if (o.kind == PIPE_F) {
        int p = s->prev[o.v];
        if (p < 0) return 0.0;
        double t = s->tf[(size_t)p * s->n + o.mb];
        return t < 0 ? -1.0 : t + pipe_hop(s, p, o.v);
    }
    if (o.kind == PIPE_W) return s->tb[i];
    double own = s->tf[i];
    if (own < 0) return -1.0;
    int nx = s->next[o.v];
    if (nx < 0) return own;
    double t = s->tb[(size_t)nx * s->n + o.mb];
    if (t < 0) return -1.0;
    t += pipe_hop(s, nx, o.v);
    return t > own ? t : own;
}

static double pipe_cost(const pipe_state *s, pipe_op o) {
    int c = s->cost[o.v];
    if (o.kind == PIPE_F) return s->f[c];
    if (o.kind == PIPE_W) return s->w[c];
    return s->b[c] + ((s->w && !s->split_w) ? s->w[c] : 0.0);
}

static umoe_status check_costs(const char *what, const double *x, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i]) || x[i] < 0)
            return umoe_fail("pipeline: %s cost of virtual stage %d is %g; allowed: a finite number >= 0 seconds",
                             what, i, x[i]);
    return UMOE_OK;
}

static umoe_status check_args(spec_schedule sched, int pp, int vpp, int n_mb, const double *f, const double *b,
                              const double *w, double p2p, sim_pipeline_result *out) {
    if (!out || !f || !b) return umoe_fail("pipeline: internal: NULL result or cost array");
    if ((int)sched < 0 || sched >= SPEC_SCHED_COUNT)
        return umoe_fail("pipeline: schedule %d is unknown; allowed: 1f1b, interleaved, zb1p, dualpipe", (int)sched);
    const char *nm = sched_names[sched];
    if (pp < 1 || pp > 1024) return umoe_fail("pipeline: pp = %d; allowed: 1..1024", pp);
    if (vpp < 1) return umoe_fail("pipeline: vpp = %d; allowed: >= 1", vpp);
    if (n_mb < 1) return umoe_fail("pipeline: %d micro-batches; allowed: >= 1", n_mb);
    if ((long long)pp * vpp * n_mb > 4000000LL)
        return umoe_fail("pipeline: pp*vpp*micro-batches = %lld is too large to simulate; allowed: <= 4e6",
                         (long long)pp * vpp * n_mb);
    if (sched != SPEC_SCHED_INTERLEAVED && vpp != 1)
        return umoe_fail("pipeline: schedule %s with vpp = %d; allowed: vpp = 1 (virtual stages need schedule "
                         "interleaved)", nm, vpp);
    if (sched == SPEC_SCHED_INTERLEAVED && n_mb % pp != 0)
        return umoe_fail("pipeline: schedule interleaved with %d micro-batches and pp = %d; allowed: a multiple "
                         "of pp (Megatron's interleaved 1F1B)", n_mb, pp);
    if (sched == SPEC_SCHED_DUALPIPE && (pp < 2 || pp % 2 != 0))
        return umoe_fail("pipeline: schedule dualpipe with pp = %d; allowed: an even pp >= 2", pp);
    if (sched == SPEC_SCHED_DUALPIPE && (n_mb % 2 != 0 || n_mb < 2 * pp))
        return umoe_fail("pipeline: schedule dualpipe with %d micro-batches and pp = %d; allowed: an even number "
                         ">= 2*pp = %d (half enter at each end)", n_mb, pp, 2 * pp);
    if (!isfinite(p2p) || p2p < 0) return umoe_fail("pipeline: p2p = %g s; allowed: a finite number >= 0", p2p);
    umoe_status st;
    if ((st = check_costs("forward", f, pp * vpp)) != UMOE_OK) return st;
    if ((st = check_costs("backward", b, pp * vpp)) != UMOE_OK) return st;
    if (w && (st = check_costs("weight-gradient", w, pp * vpp)) != UMOE_OK) return st;
    return UMOE_OK;
}

/* Virtual-stage layout: device, cost index and forward neighbours of every v. */
static void pipe_layout(spec_schedule sched, int pp, int vpp, pipe_state *s) {
    if (sched == SPEC_SCHED_DUALPIPE) {
        for (int v = 0; v < 2 * pp; v++) {
            int dir = v / pp, st = v % pp;
            s->dev[v] = dir == 0 ? st : pp - 1 - st;
            s->cost[v] = st;
            s->prev[v] = st == 0 ? -1 : v - 1;
            s->next[v] = st == pp - 1 ? -1 : v + 1;
        }
        return;
    }
    int V = pp * vpp;
    for (int v = 0; v < V; v++) {
        s->dev[v] = v % pp;
        s->cost[v] = v;
        s->prev[v] = v - 1;
        s->next[v] = v == V - 1 ? -1 : v + 1;
    }
}

umoe_status sim_pipeline_run(spec_schedule sched, int pp, int vpp, int n_mb, const double *f, const double *b,
                             const double *w, double p2p, int record, sim_pipeline_result *out) {
    if (out) memset(out, 0, sizeof *out);
    umoe_status st = check_args(sched, pp, vpp, n_mb, f, b, w, p2p, out);
    if (st != UMOE_OK) return st;

    int dual = sched == SPEC_SCHED_DUALPIPE;
    int V = dual ? 2 * pp : pp * vpp;
    int per_dev = 3 * vpp * n_mb; /* program capacity per device (F + B + W of every (v on d, mb)) */
    size_t n_vm = (size_t)V * (size_t)n_mb;
    /* One workspace: times (3 V n doubles), device state (free, busy, cursor, end, inflight, work list),
     * layout (4 V ints), programs (pp * per_dev ops), DualPipe W queue (n ints). */
    size_t sz_t = 3 * n_vm * sizeof(double), sz_dev = (size_t)pp * (2 * sizeof(double) + 5 * sizeof(int));
    size_t sz_lay = 4 * (size_t)V * sizeof(int), sz_ops = (size_t)pp * per_dev * sizeof(pipe_op);
    size_t sz_q = (size_t)n_mb * sizeof(int);
    size_t bytes = sz_t + sz_dev + sz_lay + sz_ops + sz_q;
    char *ws = umoe_malloc(bytes, "pipeline workspace");
    char *p = ws;
    pipe_state s = {.V = V, .n = n_mb, .f = f, .b = b, .w = w, .p2p = p2p};
    s.split_w = w && (sched == SPEC_SCHED_ZB1P || sched == SPEC_SCHED_DUALPIPE);
    s.tf = (double *)p; s.tb = s.tf + n_vm; s.tw = s.tb + n_vm; p += sz_t;
    double *dfree = (double *)p, *busy = dfree + pp; p += (size_t)pp * 2 * sizeof(double);
    int *cur = (int *)p, *end = cur + pp, *inflight = end + pp, *stack = inflight + pp, *queued = stack + pp;
    p += (size_t)pp * 5 * sizeof(int);
    s.dev = (int *)p; s.cost = s.dev + V; s.prev = s.cost + V; s.next = s.prev + V; p += sz_lay;
    pipe_op *ops = (pipe_op *)p; p += sz_ops;
    int *queue = (int *)p;
    for (size_t i = 0; i < 3 * n_vm; i++) s.tf[i] = -1.0;
    pipe_layout(sched, pp, vpp, &s);

    /* Programs, device after device, packed. */
    int n_ops = 0;
    for (int d = 0; d < pp; d++) {
        pipe_op *o = ops + n_ops;
        int k = 0;
        switch (sched) {
        case SPEC_SCHED_1F1B: k = pipe_build_1f1b(pp, n_mb, d, o); break;
        case SPEC_SCHED_ZB1P: k = pipe_build_zb1p(pp, n_mb, d, s.split_w, o); break;
        case SPEC_SCHED_INTERLEAVED: k = pipe_build_interleaved(pp, vpp, n_mb, d, o); break;
        case SPEC_SCHED_DUALPIPE: k = pipe_build_dualpipe(pp, n_mb, d, s.split_w, queue, o); break;
        default: UMOE_ASSERT(0);
        }
        UMOE_ASSERT(k <= per_dev);
        cur[d] = n_ops;
        end[d] = n_ops + k;
        dfree[d] = busy[d] = 0.0;
        inflight[d] = queued[d] = 0;
        n_ops += k;
    }
    sim_event *ev = NULL;
    if (record) ev = umoe_malloc((size_t)n_ops * sizeof *ev, "pipeline events");

    /* Work list of devices that may be able to run: all of them at first; then, whenever an op ends, the
     * devices whose next op can depend on it (the next stage's device after an F, the previous stage's
     * after a B). Each device runs until its next op's inputs are unknown. O(ops) in total. */
    int n_stack = 0, left = n_ops;
    for (int d = pp - 1; d >= 0; d--) { stack[n_stack++] = d; queued[d] = 1; }
    while (n_stack > 0) {
        int d = stack[--n_stack];
        queued[d] = 0;
        while (cur[d] < end[d]) {
            pipe_op o = ops[cur[d]];
            double r = pipe_ready(&s, o);
            if (r >= 0 && o.join) {
                UMOE_ASSERT(cur[d] + 1 < end[d]);
                double r2 = pipe_ready(&s, ops[cur[d] + 1]);
                /* the fused B's own F is never this F, so -1 only means its input has not arrived */
                r = r2 < 0 ? -1.0 : (r2 > r ? r2 : r);
            }
            if (r < 0) break;
            double t0 = r > dfree[d] ? r : dfree[d], dur = pipe_cost(&s, o), t1 = t0 + dur;
            size_t i = (size_t)o.v * (size_t)n_mb + (size_t)o.mb;
            int wake = -1;
            if (o.kind == PIPE_F) {
                s.tf[i] = t1;
                if (++inflight[d] > out->peak_inflight[d]) out->peak_inflight[d] = inflight[d];
                if (s.next[o.v] >= 0) wake = s.dev[s.next[o.v]];
            } else if (o.kind == PIPE_B) {
                s.tb[i] = t1;
                inflight[d]--;
                if (s.prev[o.v] >= 0) wake = s.dev[s.prev[o.v]];
            } else {
                s.tw[i] = t1;
            }
            if (wake >= 0 && wake != d && !queued[wake]) { stack[n_stack++] = wake; queued[wake] = 1; }
            dfree[d] = t1;
            busy[d] += dur;
            if (ev) {
                sim_event *e = &ev[cur[d]];
                e->device = d;
                e->chunk = o.v / pp; /* interleaved: model chunk; DualPipe: direction; else 0 */
                e->mb = o.mb;
                e->kind = "FBW"[o.kind];
                e->t0 = t0;
                e->t1 = t1;
            }
            cur[d]++;
            left--;
        }
    }
    if (left > 0) {
        if (ev) umoe_free(ev, (size_t)n_ops * sizeof *ev);
        umoe_free(ws, bytes);
        memset(out, 0, sizeof *out);
        umoe_fail("pipeline: internal error: schedule %s deadlocked (pp=%d vpp=%d n_mb=%d)", sched_names[sched],
                  pp, vpp, n_mb);
        return UMOE_EFAIL;
    }

    double makespan = 0.0, busiest = 0.0;
    for (int d = 0; d < pp; d++) {
        if (dfree[d] > makespan) makespan = dfree[d];
        if (busy[d] > busiest) busiest = busy[d];
    }
    out->makespan = makespan;
    out->bubble_frac = makespan > 0 ? (makespan - busiest) / makespan : 0.0;
    out->events = ev;
    out->n_events = ev ? n_ops : 0;
    umoe_free(ws, bytes);
    return UMOE_OK;
}

void sim_pipeline_free(sim_pipeline_result *r) {
    if (!r) return;
    if (r->events) umoe_free(r->events, (size_t)r->n_events * sizeof *r->events);
    r->events = NULL;
    r->n_events = 0;
}
