/* validate.c - `umoe validate` core: read a CSV of published training measurements, build (model, cluster,
 * strategy) for each row, predict with sim_run, and compare step time / TFLOP/s / MFU in the row's own
 * FLOP convention. Rows that cannot be modelled are returned as skipped with the reason.
 * Does not: print (src/cli/cmd_validate.c) or fit anything: every row uses the same hardware preset files.
 * Row conventions (docs/validation.md): a measured step time comes from step_s, else from tokens_per_s_per_gpu
 * (free of any FLOP convention or peak), else from tflops_per_gpu in the row's flops_kind (model FLOPs or
 * hardware FLOPs incl. recompute), else from mfu (needs the peak: the row's peak_tflops or the preset's); all
 * reduce to "measured seconds per step" so one error measure, pred_step / meas_step - 1, covers every row. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "csv.h"
#include "cost.h"
#include "umoe/sim.h"

typedef struct { const csv_table *t; int row; const char *file; } rowref;

static const char *cell(const rowref *r, const char *name) { return csv_get(r->t, r->row, csv_col(r->t, name)); }

/* number or NAN when empty; *bad set when present but not a number */
static double num(const rowref *r, const char *name, int *bad) {
    const char *s = cell(r, name);
    if (!*s) return NAN;
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ') end++;
    if (*end) { *bad = 1; return NAN; }
    return v;
}

static int has(double v) { return !isnan(v); }

/* A preset name, a path as given, or a path relative to the CSV's directory. */
static void resolve_rel(const char *csv_path, const char *v, char *out, size_t n) {
    umoe_strlcpy(out, v, n);
    if (access(v, R_OK) == 0) return;
    const char *slash = strrchr(csv_path, '/');
    if (!slash || (!strchr(v, '/') && !strstr(v, ".json"))) return;
    char buf[4096];
    snprintf(buf, sizeof buf, "%.*s/%s", (int)(slash - csv_path), csv_path, v);
    if (access(buf, R_OK) == 0) umoe_strlcpy(out, buf, n);
}

static int skip(sim_validation_row *o, const char *fmt, const char *arg) {
    o->ok = 0;
    snprintf(o->reason, sizeof o->reason, fmt, arg);
    return 0;
}

/* Build the inputs of one row; 0 (with o->reason) when it cannot be modelled. */
static int build(const rowref *r, sim_validation_row *o, spec_model *m, spec_cluster *c, spec_strategy *s,
                 sim_options *opt) {
    int bad = 0;
    char path[4096];
    const char *mp = cell(r, "model_preset");
    double layers = num(r, "layers", &bad), hidden = num(r, "hidden", &bad), heads = num(r, "heads", &bad);
    double kv = num(r, "kv_heads", &bad), ffn = num(r, "ffn", &bad), vocab = num(r, "vocab", &bad);
    double seq = num(r, "seq", &bad), experts = num(r, "experts", &bad), topk = num(r, "topk", &bad);
    double first_dense = num(r, "first_dense", &bad), mtp = num(r, "mtp", &bad);
    double gpus = num(r, "gpus", &bad);
    if (bad) return skip(o, "a numeric column holds text%s", "");
    if (!has(gpus) || gpus < 1) return skip(o, "no device count (gpus)%s", "");
    if (*mp) {
        resolve_rel(r->file, mp, path, sizeof path);
        if (spec_model_load(path, m)) return skip(o, "model preset: %s", umoe_err);
        if (has(layers)) m->L = (int)layers;
        if (has(seq)) m->T = (int)seq;
        if (has(first_dense)) m->first_k_dense = (int)first_dense;
        if (has(mtp)) m->mtp = (int)mtp;
    } else {
        if (!has(layers) || !has(hidden) || !has(heads) || !has(vocab) || !has(seq))
            return skip(o, "model dimensions (layers, hidden, heads, vocab, seq) not in the row and no "
                           "model_preset%s", "");
        spec_model_defaults(m);
        umoe_strlcpy(m->name, cell(r, "model"), sizeof m->name);
        m->L = (int)layers; m->C = (int)hidden; m->H = (int)heads;
        m->H_kv = has(kv) ? (int)kv : m->H;
        m->head_dim = m->C / m->H;
        m->attn = m->H_kv < m->H ? SPEC_ATTN_GQA : SPEC_ATTN_MHA;
        m->ffn = SPEC_FFN_GELU; /* GPT rows (Megatron GPT: GeLU, 4h unless given) */
        m->F = has(ffn) ? (int)ffn : 4 * m->C;
        m->V = (int)vocab; m->T = (int)seq;
        m->norm = SPEC_NORM_PRE;
        m->mtp = 0;
        m->first_k_dense = 0;
        if (has(experts) && experts > 0) {
            m->E = (int)experts; m->K = has(topk) ? (int)topk : 2; m->F_expert = m->F; m->ffn = SPEC_FFN_SWIGLU;
        } else {
            m->E = 0;
        }
        if (spec_model_validate(m, o->id)) return skip(o, "model: %s", umoe_err);
    }
    const char *hw = cell(r, "hardware");
    if (!*hw) return skip(o, "no hardware preset named%s", "");
    memset(c, 0, sizeof *c);
    if (spec_hardware_load(hw, &c->hw)) return skip(o, "hardware: %s", umoe_err);
    c->devices = (int)gpus;
    umoe_strlcpy(c->name, hw, sizeof c->name);

    const char *sp_preset = cell(r, "strategy_preset");
    if (*sp_preset) {
        resolve_rel(r->file, sp_preset, path, sizeof path);
        if (spec_strategy_load(path, s)) return skip(o, "strategy preset: %s", umoe_err);
    } else {
        spec_strategy_defaults(s);
        double tp = num(r, "tp", &bad), pp = num(r, "pp", &bad), vpp = num(r, "vpp", &bad), dp = num(r, "dp", &bad);
        double ep = num(r, "ep", &bad), cp = num(r, "cp", &bad), mbs = num(r, "mbs", &bad), gbs = num(r, "gbs", &bad);
        double sp = num(r, "sp", &bad), zero1 = num(r, "zero1", &bad), ov = num(r, "overlap", &bad);
        if (bad) return skip(o, "a numeric strategy column holds text%s", "");
        if (!has(tp) && !has(pp) && !has(dp)) return skip(o, "no parallel strategy (tp, pp, dp) in the row%s", "");
        if (!has(gbs)) return skip(o, "no global batch (gbs) in the row%s", "");
        s->tp = has(tp) ? (int)tp : 1; s->pp = has(pp) ? (int)pp : 1; s->vpp = has(vpp) ? (int)vpp : 1;
        s->dp = has(dp) ? (int)dp : 0; s->ep = has(ep) ? (int)ep : 1; s->cp = has(cp) ? (int)cp : 1;
        s->mbs = has(mbs) ? (int)mbs : 1; s->gbs = (int)gbs;
        s->schedule = s->vpp > 1 ? SPEC_SCHED_INTERLEAVED : SPEC_SCHED_1F1B;
        const char *sch = cell(r, "schedule");
        if (*sch) {
            int k = -1;
            for (int i = 0; spec_schedule_names[i]; i++) if (umoe_streq_nocase(sch, spec_schedule_names[i])) k = i;
            if (k < 0) return skip(o, "unknown schedule \"%s\"", sch);
            s->schedule = (spec_schedule)k;
        }
        char rc[128];
        umoe_strlcpy(rc, cell(r, "recompute"), sizeof rc);
        char *plus = strstr(rc, "+SP");
        if (!plus) plus = strstr(rc, "+sp");
        if (plus) { *plus = '\0'; s->sp = 1; }
        if (*rc && spec_recompute_parse(rc, o->id, "recompute", &s->recompute)) return skip(o, "%s", umoe_err);
        if (has(sp)) s->sp = sp != 0;
        if (s->tp == 1) s->sp = 0;
        if (has(zero1)) s->zero1 = zero1 != 0;
        if (has(ov)) s->overlap_tp = s->overlap_dp = s->overlap_pp = s->overlap_ep = ov != 0;
        if (s->overlap_tp && s->tp > 1) s->sp = 1; /* Megatron's TP comm overlap requires SP */
        const char *prec = cell(r, "precision");
        s->precision = umoe_streq_nocase(prec, "fp8")    ? SPEC_PREC_FP8
                       : umoe_streq_nocase(prec, "fp16") ? SPEC_PREC_FP16
                                                         : SPEC_PREC_BF16;
        s->precision_bits = s->precision == SPEC_PREC_FP8 ? 8 : 16;
        s->imbalance = 1.0; /* published MoE benchmarks: balanced (shared/validation-data README) */
    }
    if (spec_strategy_finish(s, m, c->devices, o->id)) return skip(o, "strategy: %s", umoe_err);
    memset(opt, 0, sizeof *opt);
    opt->attn_no_flash = umoe_streq_nocase(cell(r, "attn_kernel"), "unfused");
    {
        const char *lk = cell(r, "loss_kernel"); /* fused (default) | unfused (Megatron's vocab-parallel CE) */
        if (*lk && !umoe_streq_nocase(lk, "fused") && !umoe_streq_nocase(lk, "unfused"))
            return skip(o, "loss_kernel \"%s\" is not fused or unfused", lk);
        opt->loss_unfused = umoe_streq_nocase(lk, "unfused");
    }
    opt->detailed = 1; /* event simulation of the schedule */
    {
        const char *g = getenv("UMOE_CAL_GROUPED_GEMM"); /* calibration script only (tools/calibrate_sim.py) */
        if (g && *g) opt->grouped_gemm_factor = atof(g);
    }
    return 1;
}

static void predict_row(const rowref *r, sim_validation_row *o) {
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    sim_options opt;
    int bad = 0;
    umoe_strlcpy(o->id, cell(r, "id"), sizeof o->id);
    umoe_strlcpy(o->flops_kind, *cell(r, "flops_kind") ? cell(r, "flops_kind") : "model", sizeof o->flops_kind);
    o->pred_step_s = o->meas_step_s = o->pred_tflops = o->pred_mfu = o->error = NAN;
    o->pred_mem_gib = o->mem_error = NAN;
    o->meas_mem_gib = num(r, "mem_gib", &bad);
    o->meas_tflops = num(r, "tflops_per_gpu", &bad);
    o->meas_mfu = num(r, "mfu", &bad);
    double step = num(r, "step_s", &bad), peak_row = num(r, "peak_tflops", &bad);
    double tok_s = num(r, "tokens_per_s_per_gpu", &bad);
    if (bad) { skip(o, "a measured column holds text%s", ""); return; }
    if (!has(step) && !has(tok_s) && !has(o->meas_tflops) && !has(o->meas_mfu)) {
        skip(o, "no measurement (step_s, tokens_per_s_per_gpu, tflops_per_gpu or mfu)%s", "");
        return;
    }
    if (!build(r, o, &m, &c, &s, &opt)) return;
    sim_result res;
    if (sim_run(&m, &c, &s, &opt, &res)) { skip(o, "sim: %s", umoe_err); return; }
    int hwk = umoe_streq_nocase(o->flops_kind, "hardware");
    double flops = hwk ? res.flops_per_step_hw : res.flops_per_step_model;
    double peak = has(peak_row) ? peak_row * 1e12 : c.hw.peak_bf16;
    o->pred_step_s = res.step_time_s;
    o->pred_tflops = flops / (res.step_time_s * c.devices) / 1e12;
    o->pred_mfu = res.mfu;
    if (has(step)) {
        o->meas_step_s = step;
        umoe_strlcpy(o->compared, "step_s", sizeof o->compared);
    } else if (has(tok_s)) { /* independent of any FLOP count or peak */
        o->meas_step_s = res.tokens_per_s * res.step_time_s / (tok_s * c.devices);
        umoe_strlcpy(o->compared, "tokens_per_s", sizeof o->compared);
    } else if (has(o->meas_tflops)) {
        o->meas_step_s = flops / (o->meas_tflops * 1e12 * c.devices);
        umoe_strlcpy(o->compared, "tflops", sizeof o->compared);
    } else {
        o->meas_step_s = res.flops_per_step_model / (o->meas_mfu * c.devices * peak);
        umoe_strlcpy(o->compared, "mfu", sizeof o->compared);
    }
    o->error = o->pred_step_s / o->meas_step_s - 1;
    LOG_DEBUG("validate %s: n_mb %d, breakdown (s): compute %.4f recompute %.4f tp %.4f cp %.4f ep %.4f pp %.4f "
              "dp %.4f bubble %.4f optimizer %.4f", o->id, res.n_microbatches, res.breakdown[SIM_T_COMPUTE],
              res.breakdown[SIM_T_RECOMPUTE], res.breakdown[SIM_T_TP], res.breakdown[SIM_T_CP],
              res.breakdown[SIM_T_EP], res.breakdown[SIM_T_PP], res.breakdown[SIM_T_DP], res.breakdown[SIM_T_BUBBLE],
              res.breakdown[SIM_T_OPTIMIZER]);
    if (umoe_log_enabled(UMOE_LOG_DEBUG)) { /* diagnostics (UMOE_LOG=debug): one layer's, the embedding's and the
                                            * head's costs per micro-batch, ms; computed only when printed */
        sim_geom g; sim_cost lc, ec, hc;
        sim_geom_init(&m, &c, &s, &g);
        sim_layer_cost(&m, &c.hw, &s, &opt, &g, m.E > 0, &lc);
        sim_embed_cost(&m, &c.hw, &s, &g, &ec);
        sim_head_cost(&m, &c.hw, &s, &opt, &g, &hc);
        LOG_DEBUG("validate %s per micro-batch (ms): layer fwd %.3f bwd %.3f gemm_f %.3f rc %.3f tp_f %.3f "
                  "tp_b %.3f ep %.3f/%.3f | emb f %.3f b %.3f tp %.3f/%.3f | head f %.3f b %.3f tp %.3f/%.3f",
                  o->id, lc.fwd * 1e3, lc.bwd * 1e3, lc.gemm_fwd * 1e3, lc.rc * 1e3, lc.tp_fwd * 1e3, lc.tp_bwd * 1e3,
                  lc.ep_fwd * 1e3, lc.ep_bwd * 1e3, ec.fwd * 1e3, ec.bwd * 1e3, ec.tp_fwd * 1e3, ec.tp_bwd * 1e3,
                  hc.fwd * 1e3, hc.bwd * 1e3, hc.tp_fwd * 1e3, hc.tp_bwd * 1e3);
    }
    /* memory: the allocator's peak (what PyTorch reports as allocated) excludes the runtime's reserved share */
    o->pred_mem_gib = (res.memory_peak_bytes - res.memory[SIM_M_RESERVED]) / 1073741824.0;
    if (has(o->meas_mem_gib) && o->meas_mem_gib > 0) o->mem_error = o->pred_mem_gib / o->meas_mem_gib - 1;
    o->ok = 1;
}

umoe_status sim_validate_csv(const char *path, sim_validation_row **rows, int *n_rows) {
    csv_table t;
    *rows = NULL;
    *n_rows = 0;
    if (csv_read(path, &t)) return UMOE_EINPUT;
    if (csv_col(&t, "id") < 0 || csv_col(&t, "hardware") < 0 || csv_col(&t, "gpus") < 0) {
        csv_free(&t);
        return umoe_fail("%s: the header needs at least the columns id, hardware and gpus (see "
                         "data/validation/published_points.csv)", path);
    }
    int n = t.n_rows - 1;
    sim_validation_row *out = umoe_calloc(n > 0 ? n : 1, sizeof *out, "validation rows");
    for (int i = 0; i < n; i++) {
        rowref r = {&t, i + 1, path};
        predict_row(&r, &out[i]);
    }
    csv_free(&t);
    *rows = out;
    *n_rows = n;
    return UMOE_OK;
}

void sim_validation_free(sim_validation_row *rows, int n_rows) {
    if (rows) umoe_free(rows, sizeof *rows * (n_rows > 0 ? n_rows : 1));
}
