/* validate_engine_report.c - the output of `umoe validate --engine`: per run, measured and predicted step
 * time, counted-allocator peak and peak RSS with their relative errors (predicted / measured - 1), the CPU
 * share the run got, and the medians of the absolute errors; as a table or as JSON (docs/engine-validation.md).
 * Does not: run or simulate anything (validate_engine.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "umoe/json.h"
#include "validate_engine.h"

/* median of |v| over the ok rows */
static double med_abs(const engine_row *r, int n, size_t off, int *count) {
    double v[64];
    int k = 0;
    for (int i = 0; i < n && k < 64; i++) {
        if (!r[i].ok) continue;
        double x = *(const double *)((const char *)&r[i] + off);
        if (isfinite(x)) v[k++] = fabs(x);
    }
    if (count) *count = k;
    return k ? umoe_median(v, k) : NAN;
}
static double max_abs(const engine_row *r, int n, size_t off) {
    double m = NAN;
    for (int i = 0; i < n; i++) {
        if (!r[i].ok) continue;
        double x = fabs(*(const double *)((const char *)&r[i] + off));
        if (isfinite(x) && !(x <= m)) m = x;
    }
    return m;
}

/* --repeat: round j's median |predicted / measured - 1| over the ok rows that ran it */
static double round_med(const engine_row *r, int n, int j) {
    double v[64];
    int k = 0;
    for (int i = 0; i < n && k < 64; i++)
        if (r[i].ok && r[i].n_rounds > j && r[i].round_meas[j] > 0)
            v[k++] = fabs(r[i].round_pred[j] / r[i].round_meas[j] - 1);
    return k ? umoe_median(v, k) : NAN;
}

void engine_report_print(const engine_row *rows, int n, const char *hw, int json, double cores, int rounds) {
    int ok = 0;
    for (int i = 0; i < n; i++) ok += rows[i].ok;
    double ms = med_abs(rows, n, offsetof(engine_row, err_step), NULL);
    double mc = med_abs(rows, n, offsetof(engine_row, err_cpu_step), NULL);
    double xc = max_abs(rows, n, offsetof(engine_row, err_cpu_step));
    double ma = med_abs(rows, n, offsetof(engine_row, err_alloc), NULL);
    double mr = med_abs(rows, n, offsetof(engine_row, err_rss), NULL);
    double xs = max_abs(rows, n, offsetof(engine_row, err_step));
    double mq = med_abs(rows, n, offsetof(engine_row, err_step_fastest), NULL);
    double xa = max_abs(rows, n, offsetof(engine_row, err_alloc));
    double xr = max_abs(rows, n, offsetof(engine_row, err_rss));
    double share = med_abs(rows, n, offsetof(engine_row, cpu_share), NULL);
    if (json) {
        json_writer w;
        jw_begin(&w, stdout);
        jw_obj_open(&w, NULL);
        jw_str(&w, "hardware", hw);
        jw_num(&w, "cores", cores);
        jw_arr_open(&w, "rows");
        for (int i = 0; i < n; i++) {
            const engine_row *r = &rows[i];
            jw_obj_open(&w, NULL);
            jw_str(&w, "id", r->id);
            jw_str(&w, "model", r->model);
            jw_int(&w, "ranks", r->ranks);
            jw_int(&w, "ep", r->ep);
            jw_str(&w, "a2a", r->hierarchical ? "hierarchical" : "flat");
            jw_int(&w, "ranks_per_node", r->ranks_per_node);
            jw_int(&w, "placement", r->placement);
            jw_int(&w, "batch", r->batch);
            jw_str(&w, "recompute", r->recompute);
            jw_str(&w, "status", r->ok ? "ok" : "failed");
            if (r->ok) jw_null(&w, "reason"); else jw_str(&w, "reason", r->reason);
            if (r->ok) {
                jw_int(&w, "measured_steps", r->measured_steps);
                jw_num(&w, "measured_step_s", r->meas_step_s);
                jw_num(&w, "measured_step_min_s", r->meas_step_min);
                jw_num(&w, "measured_step_max_s", r->meas_step_max);
                jw_num(&w, "predicted_step_s", r->pred.step_s);
                if (r->n_rounds > 1) {
                    jw_arr_open(&w, "round_measured_step_s");
                    for (int j = 0; j < r->n_rounds; j++) jw_num(&w, NULL, r->round_meas[j]);
                    jw_arr_close(&w);
                    jw_arr_open(&w, "round_predicted_step_s");
                    for (int j = 0; j < r->n_rounds; j++) jw_num(&w, NULL, r->round_pred[j]);
                    jw_arr_close(&w);
                }
                jw_num(&w, "predicted_step_before_s", r->pred_step_before_s);
                jw_num(&w, "predicted_step_after_s", r->pred_step_after_s);
                jw_num(&w, "step_error", r->err_step);
                jw_num(&w, "step_fastest_error", r->err_step_fastest);
                jw_num(&w, "measured_cpu_step_s", r->meas_cpu_step_s);
                jw_num(&w, "cpu_step_error", r->err_cpu_step);
                jw_num(&w, "measured_alloc_peak", r->meas_alloc);
                jw_num(&w, "predicted_alloc_peak", r->pred.alloc_peak);
                jw_num(&w, "alloc_error", r->err_alloc);
                jw_num(&w, "measured_peak_rss", r->meas_rss);
                jw_num(&w, "predicted_peak_rss", r->pred.rss);
                jw_num(&w, "rss_error", r->err_rss);
                jw_num(&w, "measured_arena", r->meas_arena);
                jw_num(&w, "predicted_arena", r->pred.arena);
                jw_num(&w, "imbalance", r->meas_imbalance);
                jw_num(&w, "cpu_share", r->cpu_share);
                jw_num(&w, "wall_s", r->wall_s);
                jw_obj_open(&w, "predicted");
                jw_num(&w, "gemm_s", r->pred.gemm_s);
                jw_num(&w, "attention_s", r->pred.attn_s);
                jw_num(&w, "elementwise_s", r->pred.elementwise_s);
                jw_num(&w, "recompute_s", r->pred.recompute_s);
                jw_num(&w, "optimizer_s", r->pred.optimizer_s);
                jw_num(&w, "ep_s", r->pred.ep_s);
                jw_num(&w, "sync_s", r->pred.sync_s);
                jw_num(&w, "oversub_s", r->pred.oversub_s);
                jw_num(&w, "ep_copy_s", r->pred.ep_copy_s);
                jw_num(&w, "share", r->pred.share);
                jw_num(&w, "slow", r->pred.slow);
                jw_num(&w, "params", r->pred.params);
                jw_num(&w, "grads", r->pred.grads);
                jw_num(&w, "optimizer", r->pred.optimizer);
                jw_num(&w, "arena", r->pred.arena);
                jw_num(&w, "ep_buffers", r->pred.ep_buffers);
                jw_num(&w, "host_other", r->pred.host_other);
                jw_num(&w, "init_peak", r->pred.init_peak);
                jw_obj_close(&w);
            }
            jw_obj_close(&w);
        }
        jw_arr_close(&w);
        jw_obj_open(&w, "summary");
        jw_int(&w, "rows", n);
        jw_int(&w, "ok", ok);
        jw_num(&w, "step_median_abs_error", ms);
        jw_num(&w, "step_max_abs_error", xs);
        jw_num(&w, "step_fastest_median_abs_error", mq);
        jw_num(&w, "cpu_step_median_abs_error", mc);
        jw_num(&w, "cpu_step_max_abs_error", xc);
        jw_num(&w, "alloc_median_abs_error", ma);
        jw_num(&w, "alloc_max_abs_error", xa);
        jw_num(&w, "rss_median_abs_error", mr);
        jw_num(&w, "rss_max_abs_error", xr);
        jw_num(&w, "median_cpu_share", share);
        jw_int(&w, "rounds", rounds);
        jw_arr_open(&w, "round_step_median_abs_error");
        for (int j = 0; j < rounds; j++) jw_num(&w, NULL, round_med(rows, n, j));
        jw_arr_close(&w);
        jw_obj_close(&w);
        jw_obj_close(&w);
        jw_end(&w);
        return;
    }
    printf("engine runs on this machine (%g cores) vs the simulator with %s\n", cores, hw);
    printf("%-20s %2s %2s %-4s %-9s | %7s %7s %7s %7s %7s | %7s %7s %7s | %7s %7s %7s | %4s\n", "run", "R", "EP",
           "a2a", "recompute", "pred ms", "wall ms", "error", "cpu ms", "error", "meas MB", "pred MB", "error", "RSS MB",
           "pred MB", "error", "cpu%");
    for (int i = 0; i < n; i++) {
        const engine_row *r = &rows[i];
        if (!r->ok) {
            printf("%-22.22s %2d %2d %-4s %-9.9s | failed: %s\n", r->id, r->ranks, r->ep, r->hierarchical ? "hier" : "flat",
                   r->recompute, r->reason);
            continue;
        }
        printf("%-20.20s %2d %2d %-4s %-9.9s | %7.1f %7.1f %+6.1f%% %7.1f %+6.1f%% | %7.2f %7.2f %+6.2f%% | %7.2f %7.2f "
               "%+6.2f%% | %4.0f\n", r->id, r->ranks, r->ep, r->hierarchical ? "hier" : "flat", r->recompute,
               1e3 * r->pred.step_s, 1e3 * r->meas_step_s, 100 * r->err_step, 1e3 * r->meas_cpu_step_s,
               100 * r->err_cpu_step, r->meas_alloc / 1e6, r->pred.alloc_peak / 1e6, 100 * r->err_alloc,
               r->meas_rss / 1e6, r->pred.rss / 1e6, 100 * r->err_rss, 100 * r->cpu_share);
    }
    printf("\n%d runs, %d ok. |error| median (max): step time vs wall %.1f%% (%.1f%%), vs CPU %.1f%% (%.1f%%); "
           "allocator peak %.2f%% (%.2f%%); peak RSS %.2f%% (%.2f%%)\n", n, ok, 100 * ms, 100 * xs, 100 * mc,
           100 * xc, 100 * ma, 100 * xa, 100 * mr, 100 * xr);
    if (rounds > 1) {
        printf("%d rounds: measured and predicted step = medians over the rounds; each round's median |step error|:",
               rounds);
        for (int j = 0; j < rounds; j++) printf(" %.1f%%", 100 * round_med(rows, n, j));
        printf("\n");
    }
    printf("step time vs the fastest measured step (the quiet-machine figure, docs/engine-validation.md): median "
           "|error| %.1f%%\n", 100 * mq);
    printf("wall ms: median step wall time after warm-up; cpu ms: median CPU seconds of all ranks per step / "
           "min(ranks, cores).\nmedian CPU share of the runs: %.0f%% of min(ranks, cores) (below 100%%: other load "
           "stretches the wall times)\n", 100 * share);
}
