/* cmd_validate.c - `umoe validate [FILE.csv] [--json]` and `umoe validate --vtrain [--json]`: predicted vs
 * published training measurements (src/sim/validate*.c). Prints a table per row (measured vs predicted step
 * time, TFLOP/s per device in the row's FLOP convention, MFU, relative error) and a summary: median and max
 * absolute step-time error over the modelled rows; skipped rows are listed with the reason.
 * Does not: fit anything (one hardware preset file per device type for every row). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "umoe/json.h"
#include "umoe/sim.h"
#include "validate_engine.h"

#define DEFAULT_CSV "data/validation/published_points.csv"
#define VTRAIN_MULTI "data/validation/vtrain_ground_truth_multi_a100.csv"
#define VTRAIN_SINGLE "data/validation/vtrain_ground_truth_single_a100.csv"

static void usage(FILE *f) {
    fprintf(f,
            "usage: umoe validate [FILE.csv] [--json]\n"
            "       umoe validate --engine [--hw FILE] [--quick] [--set FILE] [--json]   (see --engine --help)\n"
            "       umoe validate --vtrain [--json] [--multi FILE] [--single FILE] [--hardware NAME]\n"
            "                              [--host-s-per-kernel S]\n\n"
            "Predicts every row of a CSV of published training measurements (default " DEFAULT_CSV ")\n"
            "and prints measured vs predicted step time, TFLOP/s per device (in the row's flops_kind: model\n"
            "FLOPs, or hardware FLOPs incl. recompute) and MFU, the relative step-time error, and the median and\n"
            "max absolute error. Rows that cannot be modelled are listed as skipped with the reason.\n"
            "Columns: those of " DEFAULT_CSV " (id, layers, hidden, heads, kv_heads, ffn, vocab, seq,\n"
            "experts, topk, hardware, gpus, tp, pp, vpp, dp, ep, cp, mbs, gbs, recompute, precision, step_s,\n"
            "tflops_per_gpu, flops_kind, mfu) plus the optional model_preset, strategy_preset, first_dense, mtp,\n"
            "sp, zero1, overlap, schedule, attn_kernel (flash|unfused); other columns are ignored.\n\n"
            "--vtrain: the vTrain A100 sweeps (" VTRAIN_MULTI ", " VTRAIN_SINGLE "):\n"
            "Spearman rank correlation of predicted vs measured iteration time per model, and the single-node\n"
            "median absolute error. --json prints machine-readable output (format in docs/validation.md).\n"
            "--hardware and --host-s-per-kernel override the A100 preset and the host launch constant; they exist\n"
            "for the calibration script (tools/calibrate_sim.sh), which fits them on the vTrain data only.\n");
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void num_or_null(json_writer *w, const char *k, double v) {
    if (isnan(v)) jw_null(w, k); else jw_num(w, k, v);
}

static void fmt(char *b, size_t n, const char *f, double v) {
    if (isnan(v)) snprintf(b, n, "-"); else snprintf(b, n, f, v);
}

static int run_vtrain(const char *multi, const char *single, const char *hw, double host, int json) {
    sim_vtrain_result r;
    if (sim_validate_vtrain(multi, single, hw, host, &r)) return cli_input_error();
    if (json) {
        json_writer w;
        jw_begin(&w, stdout);
        jw_obj_open(&w, NULL);
        jw_str(&w, "hardware", hw);
        jw_arr_open(&w, "models");
        for (int i = 0; i < r.n_models; i++) {
            jw_obj_open(&w, NULL);
            jw_num(&w, "params_b", r.model_params_b[i]);
            jw_int(&w, "rows", r.model_rows[i]);
            num_or_null(&w, "spearman", r.model_spearman[i]);
            num_or_null(&w, "median_abs_error", r.model_median_err[i]);
            jw_obj_close(&w);
        }
        jw_arr_close(&w);
        jw_int(&w, "multi_skipped", r.multi_skipped);
        jw_obj_open(&w, "single_node");
        jw_int(&w, "rows", r.single_rows);
        jw_int(&w, "skipped", r.single_skipped);
        num_or_null(&w, "median_abs_error", r.single_median_err);
        num_or_null(&w, "spearman", r.single_spearman);
        jw_obj_close(&w);
        jw_obj_close(&w);
        jw_end(&w);
        return UMOE_EXIT_OK;
    }
    printf("vTrain multi-node sweep (%s): rank correlation of predicted vs measured iteration time\n", multi);
    printf("%10s %6s %10s %18s\n", "params(B)", "rows", "spearman", "median |error|");
    for (int i = 0; i < r.n_models; i++)
        printf("%10.1f %6d %10.3f %17.1f%%\n", r.model_params_b[i], r.model_rows[i], r.model_spearman[i],
               100 * r.model_median_err[i]);
    if (r.multi_skipped) printf("(%d rows skipped: strategy invalid for the model)\n", r.multi_skipped);
    if (single)
        printf("\nvTrain single-node sweep (%s): %d rows (%d skipped), median |error| %.1f%%, spearman %.3f\n", single,
               r.single_rows, r.single_skipped, 100 * r.single_median_err, r.single_spearman);
    return UMOE_EXIT_OK;
}

int cmd_validate(int argc, char **argv) {
    for (int i = 1; i < argc; i++) /* real runs of the engine on this machine: validate_engine.c */
        if (!strcmp(argv[i], "--engine")) return cmd_validate_engine(argc, argv);
    const char *file = DEFAULT_CSV, *multi = VTRAIN_MULTI, *single = VTRAIN_SINGLE, *hw = "a100-sxm-80gb";
    int json = 0, vtrain = 0, have_file = 0;
    double host = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { usage(stdout); return UMOE_EXIT_OK; }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--vtrain")) vtrain = 1;
        else if (!strcmp(a, "--host-s-per-kernel")) {
            const char *v = cli_value("validate", argc, argv, i);
            if (!v || cli_parse_num("validate", a, v, 1e-9, 1, &host)) return UMOE_EXIT_INPUT;
            i++;
        } else if (!strcmp(a, "--multi") || !strcmp(a, "--single") || !strcmp(a, "--hardware")) {
            const char *v = cli_value("validate", argc, argv, i);
            if (!v) return UMOE_EXIT_INPUT;
            if (!strcmp(a, "--multi")) multi = v; else if (!strcmp(a, "--single")) single = v; else hw = v;
            i++;
        } else if (a[0] == '-' && a[1]) return cli_unknown("validate", a);
        else if (have_file) return cli_unknown("validate", a);
        else { file = a; have_file = 1; }
    }
    if (vtrain) return run_vtrain(multi, single, hw, host, json);

    sim_validation_row *rows;
    int n;
    if (sim_validate_csv(file, &rows, &n)) return cli_input_error();
    double *abs_err = umoe_malloc(sizeof(double) * (n > 0 ? n : 1), "errors");
    int ok = 0;
    double mx = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        if (!rows[i].ok) continue;
        double e = fabs(rows[i].error);
        abs_err[ok++] = e;
        sum += e;
        if (e > mx) mx = e;
    }
    double *mem_err = umoe_malloc(sizeof(double) * (n > 0 ? n : 1), "memory errors");
    int nm = 0;
    for (int i = 0; i < n; i++)
        if (rows[i].ok && !isnan(rows[i].mem_error)) mem_err[nm++] = fabs(rows[i].mem_error);
    qsort(mem_err, nm, sizeof *mem_err, cmp_dbl);
    double mem_med = nm == 0 ? NAN : nm % 2 ? mem_err[nm / 2] : 0.5 * (mem_err[nm / 2 - 1] + mem_err[nm / 2]);
    double mem_max = nm ? mem_err[nm - 1] : NAN;
    qsort(abs_err, ok, sizeof *abs_err, cmp_dbl);
    double med = ok == 0 ? NAN : ok % 2 ? abs_err[ok / 2] : 0.5 * (abs_err[ok / 2 - 1] + abs_err[ok / 2]);
    double mean = ok ? sum / ok : NAN;
    if (json) {
        json_writer w;
        jw_begin(&w, stdout);
        jw_obj_open(&w, NULL);
        jw_arr_open(&w, "rows");
        for (int i = 0; i < n; i++) {
            sim_validation_row *r = &rows[i];
            jw_obj_open(&w, NULL);
            jw_str(&w, "id", r->id);
            jw_str(&w, "status", r->ok ? "ok" : "skipped");
            if (r->ok) jw_null(&w, "reason"); else jw_str(&w, "reason", r->reason);
            num_or_null(&w, "predicted_step_s", r->pred_step_s);
            num_or_null(&w, "measured_step_s", r->meas_step_s);
            num_or_null(&w, "predicted_tflops_per_gpu", r->pred_tflops);
            num_or_null(&w, "measured_tflops_per_gpu", r->meas_tflops);
            num_or_null(&w, "predicted_mfu", r->pred_mfu);
            num_or_null(&w, "measured_mfu", r->meas_mfu);
            num_or_null(&w, "error", r->error);
            jw_str(&w, "flops_kind", r->flops_kind);
            if (r->ok) jw_str(&w, "measured_from", r->compared); else jw_null(&w, "measured_from");
            num_or_null(&w, "predicted_mem_gib", r->pred_mem_gib);
            num_or_null(&w, "measured_mem_gib", r->meas_mem_gib);
            num_or_null(&w, "mem_error", r->mem_error);
            jw_obj_close(&w);
        }
        jw_arr_close(&w);
        jw_obj_open(&w, "summary");
        jw_int(&w, "rows", n);
        jw_int(&w, "modelled", ok);
        jw_int(&w, "skipped", n - ok);
        num_or_null(&w, "median_abs_error", med);
        num_or_null(&w, "mean_abs_error", mean);
        num_or_null(&w, "max_abs_error", ok ? mx : NAN);
        jw_int(&w, "memory_rows", nm);
        num_or_null(&w, "memory_median_abs_error", mem_med);
        num_or_null(&w, "memory_max_abs_error", mem_max);
        jw_obj_close(&w);
        jw_obj_close(&w);
        jw_end(&w);
    } else {
        printf("%-44s %9s %9s %7s %7s %6s %6s %8s\n", "id", "meas s", "pred s", "meas TF", "pred TF", "meas%",
               "pred%", "error");
        for (int i = 0; i < n; i++) {
            sim_validation_row *r = &rows[i];
            if (!r->ok) continue;
            char a[32], b[32], c[32], d[32], e[32], f[32];
            fmt(a, sizeof a, "%.3f", r->meas_step_s); fmt(b, sizeof b, "%.3f", r->pred_step_s);
            fmt(c, sizeof c, "%.0f", r->meas_tflops); fmt(d, sizeof d, "%.0f", r->pred_tflops);
            fmt(e, sizeof e, "%.1f", 100 * r->meas_mfu); fmt(f, sizeof f, "%.1f", 100 * r->pred_mfu);
            printf("%-44.44s %9s %9s %7s %7s %6s %6s %+7.1f%%\n", r->id, a, b, c, d, e, f, 100 * r->error);
        }
        int sk = 0;
        for (int i = 0; i < n; i++)
            if (!rows[i].ok) {
                if (!sk++) printf("\nskipped:\n");
                printf("  %s: %s\n", rows[i].id, rows[i].reason);
            }
        printf("\n%d rows, %d modelled, %d skipped. |step-time error|: median %.1f%%, mean %.1f%%, max %.1f%%\n", n,
               ok, n - ok, 100 * med, 100 * mean, 100 * (ok ? mx : NAN));
        if (nm)
            printf("peak memory per device (%d rows with a measured allocation): |error| median %.1f%%, max %.1f%%\n",
                   nm, 100 * mem_med, 100 * mem_max);
    }
    umoe_free(abs_err, sizeof(double) * (n > 0 ? n : 1));
    umoe_free(mem_err, sizeof(double) * (n > 0 ? n : 1));
    sim_validation_free(rows, n);
    return UMOE_EXIT_OK;
}
