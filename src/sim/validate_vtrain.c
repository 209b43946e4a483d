/* validate_vtrain.c - the vTrain sweeps (Bang et al., "vTrain: A Simulation Framework for Evaluating
 * Cost-effective and Compute-optimal Large Language Model Training", MICRO 2024; data: VIA-Research/vTrain,
 * MIT): measured Megatron-DeepSpeed iteration times on A100 80GB for many (TP, PP, DP, micro-batch) of the
 * same model. Reports, per model of the multi-node sweep, the Spearman rank correlation of predicted vs
 * measured times (does the simulator rank strategies right?), and on the single-node sweep the median
 * absolute error and the rank correlation.
 * Row conventions (from the vTrain paper, Sec. 5): GPT with 4h GeLU FFN, vocabulary 51200 (GPT-2's 50257
 * padded, as Megatron does), activation checkpointing on (full recompute), 1F1B, unfused attention
 * (Megatron-DeepSpeed's fused softmax), no sequence parallelism, no communication overlap.
 * Does not: print (cmd_validate.c) or fit anything. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "csv.h"
#include "umoe/sim.h"

static const double *sort_vals;
static int cmp_idx(const void *a, const void *b) {
    double x = sort_vals[*(const int *)a], y = sort_vals[*(const int *)b];
    return x < y ? -1 : x > y;
}

static void ranks(const double *v, int n, double *r, int *idx) {
    for (int i = 0; i < n; i++) idx[i] = i;
    sort_vals = v;
    qsort(idx, n, sizeof *idx, cmp_idx);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[idx[j + 1]] == v[idx[i]]) j++;
        double avg = (i + j) / 2.0 + 1;
        for (int k = i; k <= j; k++) r[idx[k]] = avg;
        i = j + 1;
    }
}

double sim_spearman(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    size_t b = sizeof(double) * n;
    double *rx = umoe_malloc(b, "ranks"), *ry = umoe_malloc(b, "ranks");
    int *idx = umoe_malloc(sizeof(int) * n, "rank index");
    ranks(x, n, rx, idx);
    ranks(y, n, ry, idx);
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) { mx += rx[i]; my += ry[i]; }
    mx /= n; my /= n;
    for (int i = 0; i < n; i++) {
        sxy += (rx[i] - mx) * (ry[i] - my);
        sxx += (rx[i] - mx) * (rx[i] - mx);
        syy += (ry[i] - my) * (ry[i] - my);
    }
    umoe_free(rx, b); umoe_free(ry, b); umoe_free(idx, sizeof(int) * n);
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : NAN;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median_abs(double *v, int n) {
    if (n == 0) return NAN;
    for (int i = 0; i < n; i++) v[i] = fabs(v[i]);
    qsort(v, n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Predict one vTrain row; returns predicted seconds or NAN when the strategy is invalid. */
static double predict(const spec_hardware *hw, double host, int gpus, int gbs, int mbs, int hidden, int heads, int layers,
                      int seq, int tp, int dp, int pp) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_options o = {0};
    spec_model_defaults(&m);
    strcpy(m.name, "vtrain-gpt");
    m.L = layers; m.C = hidden; m.H = heads; m.H_kv = heads; m.head_dim = hidden / heads; m.attn = SPEC_ATTN_MHA;
    m.ffn = SPEC_FFN_GELU; m.F = 4 * hidden; m.V = 51200; m.T = seq; m.norm = SPEC_NORM_PRE; m.E = 0; m.mtp = 0;
    m.first_k_dense = 0;
    c.hw = *hw;
    c.devices = gpus;
    spec_strategy_defaults(&s);
    s.tp = tp; s.dp = dp; s.pp = pp; s.mbs = mbs; s.gbs = gbs;
    s.recompute = SPEC_RC_FULL;
    s.precision_bits = 16;
    o.attn_no_flash = 1;
    o.loss_unfused = 1; /* Megatron-DeepSpeed: unfused vocab-parallel cross-entropy */
    o.detailed = 1;
    o.host_s_per_kernel = host;
    if (spec_strategy_finish(&s, &m, gpus, "vtrain row")) return NAN;
    sim_result r;
    if (sim_run(&m, &c, &s, &o, &r)) return NAN;
    return r.step_time_s;
}

typedef struct { int gpus, gbs, mbs, hidden, heads, layers, seq, tp, dp, pp; double ms, params; } vrow;

static umoe_status read_rows(const char *path, int multi, vrow **out, int *n, int *cap) {
    csv_table t;
    if (csv_read(path, &t)) return UMOE_EINPUT;
    const char *names[] = {"# GPUs", "global batch", "micro batch", "hidden size", "attention heads", "# layers",
                           "sequence length", "tensor parallelism", "data parallelism", "pipeline parallelism",
                           "iteration time (ms)", "Parameters (billion)"};
    int col[12];
    for (int i = 0; i < 12; i++) {
        col[i] = csv_col(&t, names[i]);
        if (col[i] < 0 && (i < 11 || multi)) {
            csv_free(&t);
            return umoe_fail("%s: missing column \"%s\" (vTrain ground_truth format)", path, names[i]);
        }
    }
    vrow *v = umoe_calloc(t.n_rows, sizeof *v, "vtrain rows");
    *cap = t.n_rows;
    int k = 0;
    for (int r = 1; r < t.n_rows; r++) {
        int *f[] = {&v[k].gpus, &v[k].gbs, &v[k].mbs, &v[k].hidden, &v[k].heads, &v[k].layers, &v[k].seq, &v[k].tp,
                    &v[k].dp, &v[k].pp};
        for (int i = 0; i < 10; i++) *f[i] = atoi(csv_get(&t, r, col[i]));
        v[k].ms = atof(csv_get(&t, r, col[10]));
        v[k].params = col[11] >= 0 ? atof(csv_get(&t, r, col[11])) : 0;
        if (v[k].gpus > 0 && v[k].ms > 0) k++;
    }
    csv_free(&t);
    *out = v;
    *n = k;
    return UMOE_OK;
}

/* Predict rows [v, v + n) filtered by params (< 0: all); fills pred/meas/err, returns how many were modelled. */
static int run_rows(const spec_hardware *hw, double host, const vrow *v, int n, double params, double *pred, double *meas,
                    double *err, int *skipped) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (params >= 0 && v[i].params != params) continue;
        double p = predict(hw, host, v[i].gpus, v[i].gbs, v[i].mbs, v[i].hidden, v[i].heads, v[i].layers, v[i].seq,
                           v[i].tp, v[i].dp, v[i].pp);
        if (isnan(p)) { (*skipped)++; continue; }
        pred[k] = p; meas[k] = v[i].ms / 1e3; err[k] = p / meas[k] - 1; k++;
    }
    return k;
}

umoe_status sim_validate_vtrain(const char *multi_csv, const char *single_csv, const char *hardware,
                                double host, sim_vtrain_result *out) {
    memset(out, 0, sizeof *out);
    spec_hardware hw;
    if (spec_hardware_load(hardware, &hw)) return UMOE_EINPUT;
    for (int pass = 0; pass < 2; pass++) {
        const char *path = pass == 0 ? multi_csv : single_csv;
        if (!path) continue;
        vrow *v = NULL;
        int n = 0, cap = 0;
        if (read_rows(path, pass == 0, &v, &n, &cap)) return UMOE_EINPUT;
        size_t b = sizeof(double) * (n > 0 ? n : 1);
        double *pred = umoe_malloc(b, "pred"), *meas = umoe_malloc(b, "meas"), *err = umoe_malloc(b, "err");
        if (pass == 0) {
            for (int i = 0; i < n; i++) {
                int mi = -1;
                for (int j = 0; j < out->n_models; j++) if (out->model_params_b[j] == v[i].params) mi = j;
                if (mi < 0 && out->n_models < SIM_VTRAIN_MAX_MODELS) out->model_params_b[out->n_models++] = v[i].params;
            }
            for (int j = 0; j < out->n_models; j++) {
                int k = run_rows(&hw, host, v, n, out->model_params_b[j], pred, meas, err, &out->multi_skipped);
                out->model_rows[j] = k;
                out->model_spearman[j] = sim_spearman(pred, meas, k);
                out->model_median_err[j] = median_abs(err, k);
            }
        } else {
            int k = run_rows(&hw, host, v, n, -1, pred, meas, err, &out->single_skipped);
            out->single_rows = k;
            out->single_spearman = sim_spearman(pred, meas, k);
            out->single_median_err = median_abs(err, k);
        }
        umoe_free(pred, b); umoe_free(meas, b); umoe_free(err, b);
        umoe_free(v, sizeof(vrow) * cap);
    }
    return UMOE_OK;
}
