/* search_report.c - the planner's outputs: a human table and the stable JSON
 * {"evaluated", "feasible", "seconds", ..., "strategies": [ {strategy fields, sim fields} ... ]} best first.
 * Writes to the FILE* it is given (the CLI passes stdout); never opens stdout itself.
 * Does not: search or rank. */
#include <string.h>
#include "umoe/json.h"
#include "umoe/plan.h"

const char *plan_schedule_name(spec_schedule s) {
    static const char *const names[] = {"1f1b", "interleaved", "zb1p", "dualpipe"};
    return (unsigned)s < SPEC_SCHED_COUNT ? names[s] : "?";
}

const char *plan_a2a_name(spec_a2a a) { return a == SPEC_A2A_HIER ? "hierarchical" : "flat"; }

void plan_entry_policy_label(const plan_entry *e, char *out, size_t n) {
    spec_recompute_format(e->recompute, out, n);
    size_t len = strlen(out);
    if (e->offload_act && len < n) len += (size_t)snprintf(out + len, n - len, "+offload_act");
    len = strlen(out);
    if (e->offload_opt && len < n) snprintf(out + len, n - len, "+offload_opt");
}

static double exposed_comm(const plan_sim *r) {
    return r->breakdown[SIM_T_TP] + r->breakdown[SIM_T_CP] + r->breakdown[SIM_T_EP] + r->breakdown[SIM_T_PP] +
           r->breakdown[SIM_T_DP];
}

void plan_report_table(FILE *f, const spec_model *m, const spec_cluster *c, const plan_result *r) {
    double tokens = (double)r->gbs * r->seq;
    fprintf(f, "plan: %s on %s, %d devices (%s), global batch %d x %d tokens = %.2fM tokens per step%s\n", m->name,
            c->name, r->devices, c->hw.name, r->gbs, r->seq, tokens / 1e6,
            r->gbs_defaulted ? " (default: one sequence per device; set --gbs)" : "");
    fprintf(f, "simulated %lld strategies (%lld fit) over %lld layouts in %.3f s (%.2fM evaluations/s); skipped %lld "
               "that provably do not fit and %lld that provably rank below the best %d; best %d re-simulated with the "
               "pipeline event simulation\n",
            r->evaluated, r->feasible, r->layouts, r->seconds,
            r->seconds_closed > 0 ? r->evaluated / r->seconds_closed / 1e6 : 0.0, r->pruned, r->bounded,
            r->n_cap, r->detailed);
    if (r->n == 0) return;
    if (r->n > 0) {
        const plan_sim *b = &r->best[0].r;
        fprintf(f, "model: %.1fB parameters, %.1fB activated, %.3g model FLOPs per token (fwd+bwd)\n",
                b->params_total / 1e9, b->params_active / 1e9, b->flops_per_token);
    }
    int rcw = 9; /* the recompute column fits the longest policy shown */
    for (int i = 0; i < r->n; i++) {
        char rc[256];
        plan_entry_policy_label(&r->best[i], rc, sizeof rc);
        if ((int)strlen(rc) > rcw) rcw = (int)strlen(rc);
    }
    fprintf(f, "\n%4s %3s %3s %3s %3s %4s %3s %5s %3s %-11s %-*s %-5s %-5s %9s %10s %6s %7s %7s %9s %-4s\n", "rank",
            "tp", "cp", "pp", "vpp", "ep", "etp", "dp", "mbs", "schedule", rcw, "recompute", "zero1", "a2a", "step_s",
            "tokens/s", "MFU%", "mem_GiB", "bubble%", "comm_s", "sim");
    for (int i = 0; i < r->n; i++) {
        const plan_entry *e = &r->best[i];
        char rc[256];
        plan_entry_policy_label(e, rc, sizeof rc);
        fprintf(f, "%4d %3d %3d %3d %3d %4d %3d %5d %3d %-11s %-*s %-5s %-5s %9.3f %10.4g %6.2f %7.2f %7.2f %9.4f %-4s\n",
                i + 1, e->tp, e->cp, e->pp, e->vpp, e->ep, e->etp, e->dp, e->mbs, plan_schedule_name(e->schedule), rcw, rc,
                e->zero1 ? "on" : "off", e->a2a == SPEC_A2A_HIER ? "hier" : "flat", e->r.step_time_s,
                e->r.tokens_per_s, 100 * e->r.mfu, e->r.memory_peak_bytes / (1024.0 * 1024 * 1024),
                100 * e->r.bubble_frac, exposed_comm(&e->r), i < r->detailed ? "pipe" : "form");
    }
    fprintf(f, "\nsim: pipe = event simulation of the schedule, form = closed form. comm_s = exposed TP+CP+EP+PP+DP "
               "communication per step (overlap switches %s). Memory on the most loaded device; the device has "
               "%.1f GiB.\n", r->overlap ? "on" : "off", c->hw.hbm_bytes / (1024.0 * 1024 * 1024));
}

/* The strategy fields of one entry (tp .. a2a), shared by the plan and sweep JSON reports. */
void plan_entry_json_fields(json_writer *w, const plan_entry *e) {
    char rc[256];
    spec_recompute_format(e->recompute, rc, sizeof rc);
    jw_int(w, "tp", e->tp);
    jw_int(w, "cp", e->cp);
    jw_int(w, "pp", e->pp);
    jw_int(w, "vpp", e->vpp);
    jw_int(w, "ep", e->ep);
    jw_int(w, "etp", e->etp);
    jw_int(w, "dp", e->dp);
    jw_int(w, "mbs", e->mbs);
    jw_str(w, "recompute", rc);
    jw_str(w, "schedule", plan_schedule_name(e->schedule));
    jw_bool(w, "zero1", e->zero1);
    jw_bool(w, "offload_activations", e->offload_act);
    jw_bool(w, "offload_optimizer", e->offload_opt);
    jw_str(w, "a2a", plan_a2a_name(e->a2a));
}

void plan_report_json(FILE *f, const spec_model *m, const plan_result *r) {
    json_writer w;
    jw_begin(&w, f);
    jw_obj_open(&w, NULL);
    jw_int(&w, "evaluated", r->evaluated);
    jw_int(&w, "feasible", r->feasible);
    jw_num(&w, "seconds", r->seconds);
    jw_int(&w, "pruned", r->pruned);
    jw_int(&w, "bounded", r->bounded);
    jw_int(&w, "layouts", r->layouts);
    jw_str(&w, "model", m->name);
    jw_int(&w, "devices", r->devices);
    jw_int(&w, "gbs", r->gbs);
    jw_bool(&w, "gbs_default", r->gbs_defaulted);
    jw_int(&w, "seq", r->seq);
    jw_int(&w, "detailed", r->detailed);
    jw_bool(&w, "overlap", r->overlap);
    jw_arr_open(&w, "strategies");
    for (int i = 0; i < r->n; i++) {
        const plan_entry *e = &r->best[i];
        jw_obj_open(&w, NULL);
        jw_int(&w, "rank", i + 1);
        plan_entry_json_fields(&w, e);
        jw_bool(&w, "sp", e->tp > 1);
        jw_int(&w, "gbs", r->gbs);
        jw_int(&w, "seq", r->seq);
        jw_bool(&w, "overlap", r->overlap);
        jw_bool(&w, "detailed", i < r->detailed);
        const plan_sim *s = &e->r;
        jw_num(&w, "params_total", s->params_total);
        jw_num(&w, "params_active", s->params_active);
        jw_num(&w, "flops_per_token", s->flops_per_token);
        jw_num(&w, "step_time_s", s->step_time_s);
        jw_num(&w, "tokens_per_s", s->tokens_per_s);
        jw_num(&w, "mfu", s->mfu);
        jw_num(&w, "hfu", s->hfu);
        jw_num(&w, "memory_peak_bytes", s->memory_peak_bytes);
        jw_bool(&w, "fits", s->fits);
        jw_num(&w, "bubble_frac", s->bubble_frac);
        jw_int(&w, "worst_stage", s->worst_stage);
        jw_obj_open(&w, "breakdown");
        for (int k = 0; k < SIM_T_COUNT; k++) jw_num(&w, sim_time_names[k], s->breakdown[k]);
        jw_obj_close(&w);
        jw_obj_open(&w, "memory");
        for (int k = 0; k < SIM_M_COUNT; k++) jw_num(&w, sim_mem_names[k], s->memory[k]);
        jw_obj_close(&w);
        jw_obj_close(&w);
    }
    jw_arr_close(&w);
    jw_obj_close(&w);
    jw_end(&w);
}
