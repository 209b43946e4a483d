/* cmd_sim.c - `umoe sim MODEL CLUSTER STRATEGY [--devices N] [--gbs B] [--json] [--causal-half]
 * [--no-flash] [--trace FILE] [--svg FILE]`: one strategy in detail (src/sim): step time with its breakdown,
 * MFU/HFU, tokens/s, memory per device and whether it fits; optionally the pipeline timeline.
 * Does not: search strategies (umoe plan). The --json keys are a stable interface (docs/cost-model.md). */
#include <math.h>
#include <string.h>
#include "cli.h"
#include "umoe/json.h"
#include "umoe/sim.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: umoe sim MODEL CLUSTER STRATEGY [--devices N] [--gbs B] [--json] [--causal-half] [--no-flash]\n"
            "                [--trace FILE.json] [--svg FILE.svg]\n\n"
            "Simulates one training step of MODEL on CLUSTER with the parallel STRATEGY (JSON files or preset\n"
            "names from configs/models, configs/clusters, configs/strategies): step time and its breakdown\n"
            "(compute, recompute, exposed TP/CP/EP/PP/DP communication, pipeline bubble, optimizer), MFU and HFU,\n"
            "tokens/s, memory per device of the most loaded pipeline stage, and whether it fits.\n\n"
            "  --devices N     override the cluster's device count\n"
            "  --gbs B         override the strategy's global batch (sequences)\n"
            "  --json          one JSON object (keys in docs/cost-model.md)\n"
            "  --causal-half   MFU counts only the causal half of attention's s^2 FLOPs\n"
            "  --no-flash      unfused attention (Megatron-LM 2022): s^2 scores stored and moved through HBM\n"
            "  --trace FILE    Chrome-trace / Perfetto timeline of one step across the pipeline stages\n"
            "  --svg FILE      the same timeline as an SVG picture\n");
}

static void print_human(const spec_model *m, const spec_cluster *c, const spec_strategy *s, const sim_result *r) {
    char rc[128];
    spec_recompute_format(s->recompute, rc, sizeof rc);
    printf("model     %s: %.1fB parameters (%.1fB active), %.3g FLOPs/token (fwd+bwd)\n", m->name,
           r->params_total / 1e9, r->params_active / 1e9, r->flops_per_token);
    printf("cluster   %s: %d x %s, %d per node\n", c->name, c->devices, c->hw.name, c->hw.devices_per_node);
    printf("strategy  %s: tp %d%s cp %d pp %d vpp %d ep %d etp %d dp %d, mbs %d, gbs %d (%d micro-batches), "
           "%s, recompute %s%s\n", s->name, s->tp, s->sp ? "+sp" : "", s->cp, s->pp, s->vpp, s->ep, s->etp, s->dp,
           s->mbs, s->gbs, r->n_microbatches, spec_schedule_names[s->schedule], rc, s->zero1 ? ", zero1" : "");
    printf("\nstep time %.4f s   tokens/s %.4g   MFU %.1f%%   HFU %.1f%%\n", r->step_time_s, r->tokens_per_s,
           100 * r->mfu, 100 * r->hfu);
    printf("\n%-18s %12s %8s\n", "time", "seconds", "share");
    for (int i = 0; i < SIM_T_COUNT; i++)
        printf("%-18s %12.4f %7.1f%%\n", sim_time_names[i], r->breakdown[i], 100 * r->breakdown[i] / r->step_time_s);
    printf("\n%-18s %12s   (pipeline stage %d, %.2f micro-batches in flight)\n", "memory", "GiB", r->worst_stage,
           r->inflight);
    for (int i = 0; i < SIM_M_COUNT; i++) printf("%-18s %12.2f\n", sim_mem_names[i], r->memory[i] / 1073741824.0);
    printf("%-18s %12.2f of %.2f GiB: %s\n", "peak", r->memory_peak_bytes / 1073741824.0,
           c->hw.hbm_bytes / 1073741824.0, r->fits ? "fits" : "DOES NOT FIT");
}

static void print_json(const spec_strategy *s, const sim_result *r) {
    json_writer w;
    jw_begin(&w, stdout);
    jw_obj_open(&w, NULL);
    jw_num(&w, "params_total", r->params_total);
    jw_num(&w, "params_active", r->params_active);
    jw_num(&w, "flops_per_token", r->flops_per_token);
    jw_num(&w, "step_time_s", r->step_time_s);
    jw_num(&w, "tokens_per_s", r->tokens_per_s);
    jw_num(&w, "mfu", r->mfu);
    jw_num(&w, "hfu", r->hfu);
    jw_num(&w, "memory_peak_bytes", r->memory_peak_bytes);
    jw_bool(&w, "fits", r->fits);
    jw_obj_open(&w, "breakdown");
    for (int i = 0; i < SIM_T_COUNT; i++) jw_num(&w, sim_time_names[i], r->breakdown[i]);
    jw_obj_close(&w);
    jw_obj_open(&w, "memory");
    for (int i = 0; i < SIM_M_COUNT; i++) jw_num(&w, sim_mem_names[i], r->memory[i]);
    jw_obj_close(&w);
    jw_num(&w, "bubble_frac", r->bubble_frac);
    jw_int(&w, "worst_stage", r->worst_stage);
    jw_int(&w, "microbatches", r->n_microbatches);
    jw_num(&w, "inflight_microbatches", r->inflight);
    jw_obj_open(&w, "strategy");
    jw_int(&w, "tp", s->tp); jw_bool(&w, "sp", s->sp); jw_int(&w, "cp", s->cp); jw_int(&w, "pp", s->pp);
    jw_int(&w, "vpp", s->vpp); jw_int(&w, "ep", s->ep); jw_int(&w, "etp", s->etp); jw_int(&w, "dp", s->dp);
    jw_int(&w, "mbs", s->mbs); jw_int(&w, "gbs", s->gbs);
    jw_str(&w, "schedule", spec_schedule_names[s->schedule]);
    jw_obj_close(&w);
    jw_obj_close(&w);
    jw_end(&w);
}

int cmd_sim(int argc, char **argv) {
    const char *pos[3] = {0}, *trace = NULL, *svg = NULL;
    int npos = 0, json = 0;
    long long devices = 0, gbs = 0;
    sim_options o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) { usage(stdout); return UMOE_EXIT_OK; }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--causal-half")) o.causal_half = 1;
        else if (!strcmp(a, "--no-flash")) o.attn_no_flash = 1;
        else if (!strcmp(a, "--devices") || !strcmp(a, "--gbs") || !strcmp(a, "--trace") || !strcmp(a, "--svg")) {
            const char *v = cli_value("sim", argc, argv, i);
            if (!v) return UMOE_EXIT_INPUT;
            if (!strcmp(a, "--devices")) { if (cli_parse_int("sim", a, v, 1, 100000000, &devices)) return UMOE_EXIT_INPUT; }
            else if (!strcmp(a, "--gbs")) { if (cli_parse_int("sim", a, v, 1, 1000000000, &gbs)) return UMOE_EXIT_INPUT; }
            else if (!strcmp(a, "--trace")) trace = v;
            else svg = v;
            i++;
        } else if (a[0] == '-' && a[1]) return cli_unknown("sim", a);
        else if (npos < 3) pos[npos++] = a;
        else return cli_unknown("sim", a);
    }
    if (npos < 3) {
        fprintf(stderr, "umoe sim: MODEL, CLUSTER and STRATEGY are needed\n\n");
        usage(stderr);
        return UMOE_EXIT_INPUT;
    }
    spec_model m;
    spec_cluster c;
    spec_strategy s;
    if (spec_model_load(pos[0], &m)) return cli_input_error();
    if (spec_cluster_load(pos[1], &c)) return cli_input_error();
    if (spec_strategy_load(pos[2], &s)) return cli_input_error();
    if (devices) c.devices = (int)devices;
    if (gbs) s.gbs = (int)gbs;
    if (spec_strategy_finish(&s, &m, c.devices, pos[2])) return cli_input_error();
    o.detailed = 1; /* one strategy: the event simulation of the schedule (the planner uses the closed form) */
    o.record_events = o.detailed;
    sim_result r;
    umoe_status st = sim_run(&m, &c, &s, &o, &r);
    if (st == UMOE_EINPUT) return cli_input_error();
    if (st) { fprintf(stderr, "umoe sim: %s\n", umoe_err); return UMOE_EXIT_FAIL; }
    int rc = UMOE_EXIT_OK;
    char title[256];
    snprintf(title, sizeof title, "%s on %d x %s, %s", m.name, c.devices, c.hw.name, s.name);
    if (trace && r.pipeline.events && sim_trace_write_chrome(trace, &r.pipeline, title)) {
        fprintf(stderr, "umoe sim: %s\n", umoe_err);
        rc = UMOE_EXIT_FAIL;
    }
    if (svg && r.pipeline.events && sim_trace_write_svg(svg, &r.pipeline, title)) {
        fprintf(stderr, "umoe sim: %s\n", umoe_err);
        rc = UMOE_EXIT_FAIL;
    }
    if (json) print_json(&s, &r);
    else print_human(&m, &c, &s, &r);
    sim_result_free(&r);
    return rc;
}
