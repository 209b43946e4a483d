/* search_rank.c - the planner's ranking order, the bounded best-K list, and turning a compact plan_entry
 * back into a full spec_strategy.
 * Ranking: tokens/s descending; tie: peak memory ascending (more headroom); tie: enumeration key ascending.
 * The order is total, so the best-K of any partition of the candidates, merged, equals the sequential one.
 * Does not: evaluate or enumerate. */
#include <string.h>
#include "search_internal.h"

int plan_entry_cmp(const plan_entry *a, const plan_entry *b) {
    if (a->r.tokens_per_s != b->r.tokens_per_s) return a->r.tokens_per_s > b->r.tokens_per_s ? -1 : 1;
    if (a->r.memory_peak_bytes != b->r.memory_peak_bytes)
        return a->r.memory_peak_bytes < b->r.memory_peak_bytes ? -1 : 1;
    return a->key < b->key ? -1 : a->key > b->key;
}

static int cmp_qsort(const void *a, const void *b) { return plan_entry_cmp(a, b); }

void plan_entries_sort(plan_entry *e, int n) {
    if (n > 1) qsort(e, (size_t)n, sizeof *e, cmp_qsort);
}

void plan_topk_init(plan_topk *t, int cap) {
    t->cap = cap > 0 ? cap : 1;
    t->n = 0;
    t->e = umoe_malloc((size_t)t->cap * sizeof *t->e, "plan best-K");
}

void plan_topk_free(plan_topk *t) {
    umoe_free(t->e, (size_t)t->cap * sizeof *t->e);
    t->e = NULL;
    t->n = t->cap = 0;
}

/* Insertion into a sorted array of at most cap entries; O(1) rejection of anything worse than the last. */
void plan_topk_add(plan_topk *t, const plan_entry *x) {
    if (t->n == t->cap && plan_entry_cmp(x, &t->e[t->n - 1]) >= 0) return;
    int i = t->n < t->cap ? t->n++ : t->n - 1;
    while (i > 0 && plan_entry_cmp(x, &t->e[i - 1]) < 0) {
        t->e[i] = t->e[i - 1];
        i--;
    }
    t->e[i] = *x;
}

void plan_sim_from(plan_sim *p, const sim_result *r) {
    p->params_total = r->params_total;
    p->params_active = r->params_active;
    p->flops_per_token = r->flops_per_token;
    p->step_time_s = r->step_time_s;
    p->tokens_per_s = r->tokens_per_s;
    p->mfu = r->mfu;
    p->hfu = r->hfu;
    memcpy(p->breakdown, r->breakdown, sizeof p->breakdown);
    memcpy(p->memory, r->memory, sizeof p->memory);
    p->memory_peak_bytes = r->memory_peak_bytes;
    p->fits = r->fits;
    p->worst_stage = r->worst_stage;
    p->bubble_frac = r->bubble_frac;
}

void plan_entry_strategy(const plan_entry *e, const spec_strategy *base, spec_strategy *s) {
    *s = *base;
    s->tp = e->tp;
    s->sp = e->tp > 1;
    s->cp = e->cp;
    s->pp = e->pp;
    s->vpp = e->vpp;
    s->ep = e->ep;
    s->etp = e->etp;
    s->dp = e->dp;
    s->mbs = e->mbs;
    s->zero1 = e->zero1;
    s->recompute = e->recompute;
    s->offload_activations = e->offload_act;
    s->offload_optimizer = e->offload_opt;
    s->schedule = e->schedule;
    s->a2a = e->a2a;
}
