/* sweep_report.c - outputs of the architecture sweep: a ranked table, JSON, and an SVG scatter of the best
 * simulated tokens/s against parameters (total or activated, as the budget) with the budget band shaded.
 * Writes to the FILE* it is given, or (SVG) atomically to a path. Does not: plan anything. */
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include "umoe/json.h"
#include "umoe/plan.h"

static const char *attn_name(spec_attn_kind a) { return a == SPEC_ATTN_MLA ? "mla" : a == SPEC_ATTN_GQA ? "gqa" : "mha"; }

void sweep_report_table(FILE *f, const sweep_space *sp, const spec_cluster *c, const sweep_result *r, int top) {
    fprintf(f, "sweep: %s around %s on %s, %d devices; %d shapes, %d valid models, %d within the budget", sp->name,
            sp->base.name, c->name, r->devices ? r->devices : c->devices, r->n_total, r->n_valid, r->n_budget);
    if (sp->budget_kind != SWEEP_BUDGET_NONE)
        fprintf(f, " (%s parameters %.1fB +- %.0f%%)", sp->budget_kind == SWEEP_BUDGET_ACTIVE ? "activated" : "total",
                sp->budget / 1e9, 100 * sp->tolerance);
    if (sp->budget2_kind != SWEEP_BUDGET_NONE)
        fprintf(f, " (%s parameters %.1fB +- %.0f%%)", sp->budget2_kind == SWEEP_BUDGET_ACTIVE ? "activated" : "total",
                sp->budget2 / 1e9, 100 * sp->tolerance2);
    fprintf(f, ", %d fit; %lld strategies simulated in %.2f s\n", r->n_feasible, r->evaluated, r->seconds);
    fprintf(f, "global batch %d sequences x %d tokens; ranked by the tokens/s of each shape's best strategy\n\n",
            r->gbs, r->seq);
    fprintf(f, "%4s %4s %6s %5s %4s %3s %3s %5s %-4s %8s %8s %10s %6s %7s  %s\n", "rank", "L", "hidden", "heads", "E",
            "K", "shr", "F_exp", "attn", "total_B", "active_B", "tokens/s", "MFU%", "mem_GiB", "best strategy");
    int shown = 0;
    for (int i = 0; i < r->n && shown < top; i++) {
        const sweep_shape *s = &r->s[i];
        if (!s->planned) continue;
        shown++;
        const spec_model *m = &s->m;
        fprintf(f, "%4d %4d %6d %5d %4d %3d %3d %5d %-4s %8.1f %8.2f ", shown, m->L, m->C, m->H, m->E, m->K,
                m->E_shared, m->F_expert, attn_name(m->attn), s->params_total / 1e9, s->params_active / 1e9);
        if (s->has_best) {
            const plan_entry *e = &s->best;
            char rc[128];
            plan_entry_policy_label(e, rc, sizeof rc);
            fprintf(f, "%10.4g %6.2f %7.2f  tp%d cp%d pp%d vpp%d ep%d etp%d dp%d mbs%d %s %s%s\n", e->r.tokens_per_s,
                    100 * e->r.mfu, e->r.memory_peak_bytes / (1024.0 * 1024 * 1024), e->tp, e->cp, e->pp, e->vpp,
                    e->ep, e->etp, e->dp, e->mbs, plan_schedule_name(e->schedule), rc, e->zero1 ? " zero1" : "");
        } else {
            fprintf(f, "%10s %6s %7s  %s\n", "-", "-", "-", s->skip);
        }
    }
}

void sweep_report_json(FILE *f, const sweep_space *sp, const sweep_result *r, int top) {
    json_writer w;
    jw_begin(&w, f);
    jw_obj_open(&w, NULL);
    jw_str(&w, "space", sp->name);
    jw_str(&w, "base", sp->base.name);
    jw_str(&w, "budget_params", sp->budget_kind == SWEEP_BUDGET_ACTIVE ? "active"
                                : sp->budget_kind == SWEEP_BUDGET_TOTAL ? "total" : NULL);
    if (sp->budget_kind != SWEEP_BUDGET_NONE) {
        jw_num(&w, "budget", sp->budget);
        jw_num(&w, "tolerance", sp->tolerance);
    }
    if (sp->budget2_kind != SWEEP_BUDGET_NONE) {
        jw_str(&w, "budget2_params", sp->budget2_kind == SWEEP_BUDGET_ACTIVE ? "active" : "total");
        jw_num(&w, "budget2", sp->budget2);
        jw_num(&w, "tolerance2", sp->tolerance2);
    }
    jw_int(&w, "shapes", r->n_total);
    jw_int(&w, "valid", r->n_valid);
    jw_int(&w, "in_budget", r->n_budget);
    jw_int(&w, "feasible", r->n_feasible);
    jw_int(&w, "evaluated", r->evaluated);
    jw_num(&w, "seconds", r->seconds);
    jw_int(&w, "devices", r->devices);
    jw_int(&w, "gbs", r->gbs);
    jw_int(&w, "seq", r->seq);
    jw_arr_open(&w, "results");
    int shown = 0;
    for (int i = 0; i < r->n && shown < top; i++) {
        const sweep_shape *s = &r->s[i];
        if (!s->planned) continue;
        shown++;
        const spec_model *m = &s->m;
        jw_obj_open(&w, NULL);
        jw_int(&w, "rank", shown);
        jw_str(&w, "name", m->name);
        jw_int(&w, "layers", m->L);
        jw_int(&w, "hidden", m->C);
        jw_int(&w, "heads", m->H);
        jw_int(&w, "experts", m->E);
        jw_int(&w, "top_k", m->K);
        jw_int(&w, "shared_experts", m->E_shared);
        jw_int(&w, "expert_ffn_hidden", m->F_expert);
        jw_int(&w, "first_k_dense", m->first_k_dense);
        jw_str(&w, "attention", attn_name(m->attn));
        jw_num(&w, "params_total", s->params_total);
        jw_num(&w, "params_active", s->params_active);
        jw_int(&w, "strategies_evaluated", s->evaluated);
        jw_int(&w, "strategies_feasible", s->feasible);
        jw_bool(&w, "fits", s->has_best);
        if (s->has_best) {
            const plan_entry *e = &s->best;
            jw_num(&w, "tokens_per_s", e->r.tokens_per_s);
            jw_num(&w, "step_time_s", e->r.step_time_s);
            jw_num(&w, "mfu", e->r.mfu);
            jw_num(&w, "memory_peak_bytes", e->r.memory_peak_bytes);
            jw_obj_open(&w, "strategy");
            plan_entry_json_fields(&w, e);
            jw_obj_close(&w);
        } else {
            jw_null(&w, "tokens_per_s");
            jw_str(&w, "reason", s->skip);
        }
        jw_obj_close(&w);
    }
    jw_arr_close(&w);
    jw_obj_close(&w);
    jw_end(&w);
}

/* "Nice" axis ticks: 1, 2 or 5 x 10^k, about n of them over [lo, hi]. */
static double tick_step(double lo, double hi, int n) {
    double raw = (hi - lo) / n, p = pow(10, floor(log10(raw))), f = raw / p;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Is this shape the space's base model (every swept dimension at the base's value)? */
static int is_base_shape(const sweep_space *sp, const spec_model *m) {
    const spec_model *b = &sp->base;
    return m->L == b->L && m->C == b->C && m->H == b->H && m->E == b->E && m->K == b->K && m->E_shared == b->E_shared &&
           m->F_expert == b->F_expert && m->attn == b->attn && m->first_k_dense == b->first_k_dense;
}

/* A growable text buffer (counted allocator) for the SVG, written atomically at the end. */
typedef struct { char *p; size_t len, cap; } svg_buf;
static void sb_printf(svg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(svg_buf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->p = umoe_realloc(b->p, b->cap, 2 * b->cap + (size_t)n, "sweep svg");
        b->cap = 2 * b->cap + (size_t)n;
    }
}

umoe_status sweep_report_svg(const char *path, const sweep_space *sp, const sweep_result *r) {
    svg_buf sb = {umoe_malloc(4096, "sweep svg"), 0, 4096}, *f = &sb;
    const int W = 820, H = 520, L = 80, R = 30, T = 50, B = 60;
    int active = sp->budget_kind == SWEEP_BUDGET_ACTIVE;
    double x0 = 1e300, x1 = -1e300, y0 = 0, y1 = 0;
    for (int i = 0; i < r->n; i++) {
        const sweep_shape *s = &r->s[i];
        if (!s->planned) continue;
        double x = (active ? s->params_active : s->params_total) / 1e9;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (s->has_best && s->best.r.tokens_per_s > y1) y1 = s->best.r.tokens_per_s;
    }
    if (x0 > x1) x0 = 0, x1 = 1;
    if (x1 - x0 < 1e-9) x0 -= 1, x1 += 1;
    double pad = 0.05 * (x1 - x0);
    x0 -= pad, x1 += pad;
    if (y1 <= 0) y1 = 1;
    y1 *= 1.1;
#define PX(x) (L + ((x) - x0) / (x1 - x0) * (W - L - R))
#define PY(y) (H - B - ((y) - y0) / (y1 - y0) * (H - T - B))
    sb_printf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
               "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H);
    sb_printf(f, "<text x=\"%d\" y=\"24\" font-size=\"14\">%s: best simulated tokens/s per model shape (%d shapes "
               "planned, %d fit)</text>\n", L, sp->name, r->n_budget, r->n_feasible);
    if (sp->budget_kind != SWEEP_BUDGET_NONE) {
        double b0 = sp->budget * (1 - sp->tolerance) / 1e9, b1 = sp->budget * (1 + sp->tolerance) / 1e9;
        if (b0 < x0) b0 = x0;
        if (b1 > x1) b1 = x1;
        if (b1 > b0)
            sb_printf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"#eef4ff\"/>\n", PX(b0), T,
                    PX(b1) - PX(b0), H - T - B);
    }
    double xs = tick_step(x0, x1, 8), ys = tick_step(y0, y1, 6);
    for (double x = ceil(x0 / xs) * xs; x <= x1; x += xs)
        sb_printf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%d\" "
                   "text-anchor=\"middle\">%g</text>\n", PX(x), T, PX(x), H - B, PX(x), H - B + 16, x);
    for (double y = 0; y <= y1; y += ys)
        sb_printf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" "
                   "text-anchor=\"end\">%.3g</text>\n", L, PY(y), W - R, PY(y), L - 6, PY(y) + 4, y);
    sb_printf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", L, T,
            W - L - R, H - T - B);
    sb_printf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s parameters (billions)</text>\n", (L + W - R) / 2,
            H - 18, active ? "activated" : "total");
    sb_printf(f, "<text x=\"18\" y=\"%d\" transform=\"rotate(-90 18 %d)\" text-anchor=\"middle\">tokens/s (best "
               "strategy)</text>\n", (T + H - B) / 2, (T + H - B) / 2);
    /* legend rows: the best five feasible shapes and the base model when it ranks lower */
    int legend_rows = 0, legend_i = 0;
    for (int i = 0, k = 0; i < r->n; i++) {
        const sweep_shape *s = &r->s[i];
        if (!s->has_best) continue;
        if (++k <= 5 || is_base_shape(sp, &s->m)) legend_rows++;
    }
    int rank = 0;
    for (int i = 0; i < r->n; i++) {
        const sweep_shape *s = &r->s[i];
        if (!s->planned) continue;
        double x = (active ? s->params_active : s->params_total) / 1e9;
        if (!s->has_best) {
            sb_printf(f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#c00\" text-anchor=\"middle\"><title>%s: does not fit"
                       "</title>x</text>\n", PX(x), PY(0) - 2, s->m.name);
            continue;
        }
        rank++;
        double y = s->best.r.tokens_per_s;
        sb_printf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" fill-opacity=\"0.75\"><title>#%d %s: %.4g "
                   "tokens/s, MFU %.1f%%</title></circle>\n", PX(x), PY(y), rank == 1 ? 6 : 4,
                rank == 1 ? "#d62728" : "#1f77b4", rank, s->m.name, y, 100 * s->best.r.mfu);
        int is_base = is_base_shape(sp, &s->m);
        if (is_base)
            sb_printf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"9\" fill=\"none\" stroke=\"#2ca02c\" "
                         "stroke-width=\"2\"/>\n", PX(x), PY(y));
        if (rank > 5 && !is_base) continue;
        /* the best five and the base: a rank number at the point, the names in a legend at the bottom */
        sb_printf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\">%d</text>\n", PX(x),
                  PY(y) - 8 - (is_base ? 4 : 0), rank);
        sb_printf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\"%s>#%d %s: %.4g tokens/s, MFU %.1f%%%s</text>\n", L + 10,
                  H - B - 12 - 13 * (legend_rows - 1 - legend_i), is_base ? " fill=\"#2ca02c\"" : "", rank, s->m.name,
                  y, 100 * s->best.r.mfu, is_base ? " (base model)" : "");
        legend_i++;
    }
#undef PX
#undef PY
    sb_printf(f, "</svg>\n");
    umoe_status st = umoe_write_atomic(path, sb.p, sb.len);
    umoe_free(sb.p, sb.cap);
    return st;
}
