/* placement.c - dynamic expert placement, the arithmetic (no MPI): the per-expert load prediction (an EMA with
 * decay theta over a sliding window of the last W steps), greedy longest-processing-time (LPT) packing of
 * experts onto EP ranks with a per-rank expert cap, relabelling of the packed bins so that as few experts as
 * possible move, and the decision whether a new placement is worth its weight moves.
 *
 * Source: Pangu Ultra MoE (arXiv 2505.04519) and MindSpeed's dynamic expert placement, as summarised in
 * shared/PAPER-NOTES.md: predict each expert's load by an EMA (theta 0.9) over a window, all-reduce the
 * prediction so every replica agrees, place greedily by load with a per-device cap, and migrate only when the
 * coefficient of variation (CV = std / mean) of the device loads drops by at least 0.08.
 * LPT: Graham, "Bounds on multiprocessing timing anomalies", SIAM J. Appl. Math. 17 (1969): jobs in
 * decreasing size, each to the least-loaded machine (here: among machines below the cap).
 *
 * Units: loads are token-assignments (tokens x top-k) per step; bytes are those one EP group moves.
 * Does not: talk MPI or move weights (placement_move.c), or replicate hot experts (every expert has exactly
 * one owner per EP group, since the exchange's placement table maps an expert to one EP rank). */
#include <math.h>
#include <string.h>
#include "umoe/dist.h"

umoe_status dist_load_window_init(dist_load_window *w, int n_layers, int n_experts, int window, double theta) {
    memset(w, 0, sizeof *w);
    if (n_layers < 1 || n_experts < 1)
        return umoe_fail("expert placement: %d MoE layers and %d experts; need at least 1 of each", n_layers,
                         n_experts);
    if (window < 1) return umoe_fail("expert placement: load window of %d steps; allowed 1 or more", window);
    if (!(theta >= 0 && theta < 1)) return umoe_fail("expert placement: EMA theta %g; allowed [0, 1)", theta);
    w->n_layers = n_layers;
    w->n_experts = n_experts;
    w->window = window;
    w->theta = theta;
    w->hist = umoe_calloc((size_t)window * (size_t)n_layers * (size_t)n_experts, sizeof(double), "load window");
    return UMOE_OK;
}

void dist_load_window_free(dist_load_window *w) {
    if (w->hist) umoe_free(w->hist, (size_t)w->window * (size_t)w->n_layers * (size_t)w->n_experts * sizeof(double));
    memset(w, 0, sizeof *w);
}

void dist_load_window_push(dist_load_window *w, const double *load) {
    size_t per = (size_t)w->n_layers * (size_t)w->n_experts;
    memcpy(w->hist + (size_t)w->head * per, load, per * sizeof(double));
    w->head = (w->head + 1) % w->window;
    if (w->n_hist < w->window) w->n_hist++;
}

/* pred_i = sum_{k<n} theta^k x_{t-k,i} / sum_{k<n} theta^k: the EMA s_t = theta s_{t-1} + (1 - theta) x_t
 * unrolled over the n <= W steps kept, renormalised so that a constant load predicts itself. */
void dist_load_window_predict(const dist_load_window *w, int layer, double *pred) {
    size_t per = (size_t)w->n_layers * (size_t)w->n_experts, X = (size_t)w->n_experts;
    memset(pred, 0, X * sizeof(double));
    double wk = 1, norm = 0;
    for (int k = 0; k < w->n_hist; k++) {
        int slot = ((w->head - 1 - k) % w->window + w->window) % w->window;
        const double *x = w->hist + (size_t)slot * per + (size_t)layer * X;
        for (size_t i = 0; i < X; i++) pred[i] += wk * x[i];
        norm += wk;
        wk *= w->theta;
    }
    if (norm > 0)
        for (size_t i = 0; i < X; i++) pred[i] /= norm;
}

void dist_placement_rank_loads(double *rank_load, const int32_t *owner, const double *load, int n_experts,
                               int ep_size) {
    memset(rank_load, 0, (size_t)ep_size * sizeof(double));
    for (int e = 0; e < n_experts; e++) rank_load[owner[e]] += load[e];
}

double dist_cv(const double *v, int n) {
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += v[i];
    mean /= n;
    if (mean <= 0) return 0;
    for (int i = 0; i < n; i++) var += (v[i] - mean) * (v[i] - mean);
    return sqrt(var / n) / mean; /* population standard deviation over the E ranks */
}

double dist_max_over_mean(const double *v, int n) {
    double mx = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        sum += v[i];
        mx = v[i] > mx ? v[i] : mx;
    }
    return sum > 0 ? mx * n / sum : 0;
}

void dist_placement_lpt(int32_t *owner, const double *load, int n_experts, int ep_size) {
    int X = n_experts, E = ep_size, cap = X / E;
    int order[X > 0 ? X : 1], cnt[E];
    double bin[E];
    for (int e = 0; e < X; e++) order[e] = e;
    /* decreasing load, ties by lower id (insertion sort: X is at most a few hundred) */
    for (int i = 1; i < X; i++) {
        int v = order[i], j = i - 1;
        while (j >= 0 && (load[order[j]] < load[v] || (load[order[j]] == load[v] && order[j] > v))) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
    memset(cnt, 0, sizeof cnt);
    for (int r = 0; r < E; r++) bin[r] = 0;
    for (int i = 0; i < X; i++) {
        int best = -1;
        for (int r = 0; r < E; r++)
            if (cnt[r] < cap && (best < 0 || bin[r] < bin[best])) best = r;
        owner[order[i]] = best;
        bin[best] += load[order[i]];
        cnt[best]++;
    }
}

int dist_placement_relabel(int32_t *owner_new, const int32_t *owner_old, int n_experts, int ep_size) {
    int X = n_experts, E = ep_size;
    int map[E], used_bin[E], used_rank[E];
    size_t ovb = (size_t)E * (size_t)E * sizeof(int);
    int *ovm = umoe_calloc((size_t)E * (size_t)E, sizeof(int), "placement overlap"); /* (E bins, E ranks) */
#define ov(b, r) ovm[(size_t)(b) * (size_t)E + (size_t)(r)]
    for (int e = 0; e < X; e++) ov(owner_new[e], owner_old[e])++;
    for (int r = 0; r < E; r++) used_bin[r] = used_rank[r] = 0, map[r] = -1;
    /* greedy maximum-overlap matching of bins to ranks: repeatedly take the largest overlap left (ties: lower
     * bin, then lower rank), so the kept experts are as many as this greedy finds */
    for (int k = 0; k < E; k++) {
        int bb = -1, br = -1;
        for (int b = 0; b < E; b++) {
            if (used_bin[b]) continue;
            for (int r = 0; r < E; r++)
                if (!used_rank[r] && (bb < 0 || ov(b, r) > ov(bb, br))) bb = b, br = r;
        }
        map[bb] = br;
        used_bin[bb] = used_rank[br] = 1;
    }
#undef ov
    umoe_free(ovm, ovb);
    int moves = 0;
    for (int e = 0; e < X; e++) {
        owner_new[e] = map[owner_new[e]];
        moves += owner_new[e] != owner_old[e];
    }
    return moves;
}

void dist_placement_decide(int32_t *owner_new, const int32_t *owner_old, const double *pred, int n_experts,
                           int ep_size, const dist_placement_policy *pol, dist_placement_decision *dec) {
    int E = ep_size;
    double before[E], after[E];
    memset(dec, 0, sizeof *dec);
    dist_placement_lpt(owner_new, pred, n_experts, ep_size);
    dec->moves = dist_placement_relabel(owner_new, owner_old, n_experts, ep_size);
    dist_placement_rank_loads(before, owner_old, pred, n_experts, E);
    dist_placement_rank_loads(after, owner_new, pred, n_experts, E);
    dec->cv_before = dist_cv(before, E);
    dec->cv_after = dist_cv(after, E);
    dec->imb_before = dist_max_over_mean(before, E);
    dec->imb_after = dist_max_over_mean(after, E);
    double mx_b = 0, mx_a = 0;
    for (int r = 0; r < E; r++) {
        mx_b = before[r] > mx_b ? before[r] : mx_b;
        mx_a = after[r] > mx_a ? after[r] : mx_a;
    }
    dec->bytes = (uint64_t)dec->moves * pol->bytes_per_expert;
    /* gain: the step waits for the most loaded rank, so the saved time is the drop of the maximum rank load
     * (token-assignments per step) x seconds per assignment x the steps until the next decision */
    dec->gain_s = (mx_b - mx_a) * pol->sec_per_assignment * (double)pol->horizon_steps;
    /* cost: the moving ranks send their bytes in parallel; bound by all of one group's bytes over one link */
    dec->cost_s = pol->bytes_per_sec > 0 ? (double)dec->bytes / pol->bytes_per_sec : 0;
    dec->apply = dec->moves > 0 && dec->cv_before - dec->cv_after >= pol->min_cv_drop && dec->gain_s > dec->cost_s;
}
