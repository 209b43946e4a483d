/* cmd_plan.c - `umoe plan MODEL CLUSTER`: search every valid parallel strategy, rank by simulated tokens/s
 * under the memory limit, print the best K (table or --json). The search is src/sim/search.c.
 * Exit codes: 0 ok, 1 nothing fits (the run failed), 2 bad input. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "umoe/plan.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: umoe plan MODEL CLUSTER [options]\n\n"
            "Enumerate every valid parallel strategy (TP, CP, PP, VPP, EP, ETP, DP, micro-batch, recompute policy,\n"
            "pipeline schedule, ZeRO-1, EP all-to-all style) of MODEL on CLUSTER, simulate each in closed form,\n"
            "drop what does not fit in device memory, rank by tokens/s (tie: more memory headroom), re-simulate\n"
            "the best with the pipeline event simulation and print them. MODEL and CLUSTER are JSON files or\n"
            "preset names from configs/.\n\n"
            "options:\n"
            "  --devices N        device count (default: the cluster's)\n"
            "  --gbs B            global batch in sequences (default: one sequence per device)\n"
            "  --seq T            sequence length in tokens (default: the model's)\n"
            "  --top K            how many strategies to print (default 10)\n"
            "  --detailed-top N   re-simulate the best N with the event simulation (default K; 0 = none)\n"
            "  --threads N        OpenMP threads (default 1; results are identical for any N)\n"
            "  --recompute-space default|all\n"
            "                     recompute policies to try: none, selective, full and the fine-grained ladder\n"
            "                     (default), or every subset of the model's recompute modules (all)\n"
            "  --causal-half      MFU counts only the causal half of attention's s^2 term\n"
            "  --no-overlap       every strategy without communication overlap (default: TP, EP, DP and PP\n"
            "                     overlap on, as Megatron-LM and MindSpeed offer)\n"
            "  --exhaustive       also context parallelism below 1024 tokens per rank and expert TP other than\n"
            "                     1 or tp (the default search leaves these out; docs/planner.md)\n"
            "  --no-offload       do not search activation offload (default: searched when the hardware spec\n"
            "                     has host_bw; an offloaded strategy is kept only where it does not fit without)\n"
            "  --no-prune         evaluate every candidate, also those that provably do not fit or cannot rank\n"
            "                     in the best K (slower; the same strategies)\n"
            "  --json             print {\"evaluated\", \"feasible\", \"seconds\", \"strategies\": [...]} best first\n\n"
            "Progress goes to stderr when stderr is a terminal (or UMOE_PROGRESS=1).\n"
            "Exit codes: 0 ok, 1 no strategy fits, 2 bad input.\n");
}

int cmd_plan(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL};
    int npos = 0, json = 0, rc_all = 0;
    long long v;
    plan_options o;
    plan_options_defaults(&o);
    o.progress = 1;
    long long seq = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (cli_is_help(a)) {
            usage(stdout);
            return UMOE_EXIT_OK;
        }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--no-prune")) o.no_prune = 1;
        else if (!strcmp(a, "--exhaustive")) o.exhaustive = 1;
        else if (!strcmp(a, "--no-overlap")) o.no_overlap = 1;
        else if (!strcmp(a, "--no-offload")) o.no_offload = 1;
        else if (!strcmp(a, "--causal-half")) o.causal_half = 1;
        else if (!strcmp(a, "--devices") || !strcmp(a, "--gbs") || !strcmp(a, "--seq") || !strcmp(a, "--top") ||
                 !strcmp(a, "--detailed-top") || !strcmp(a, "--threads")) {
            if (!(val = cli_value("plan", argc, argv, i))) return UMOE_EXIT_INPUT;
            i++;
            if (!strcmp(a, "--devices")) {
                if (cli_parse_int("plan", a, val, 1, 1 << 24, &v)) return UMOE_EXIT_INPUT;
                o.devices = (int)v;
            } else if (!strcmp(a, "--gbs")) {
                if (cli_parse_int("plan", a, val, 1, 1 << 26, &v)) return UMOE_EXIT_INPUT;
                o.gbs = (int)v;
            } else if (!strcmp(a, "--seq")) {
                if (cli_parse_int("plan", a, val, 1, 1 << 24, &seq)) return UMOE_EXIT_INPUT;
            } else if (!strcmp(a, "--top")) {
                if (cli_parse_int("plan", a, val, 1, 100000, &v)) return UMOE_EXIT_INPUT;
                o.top = (int)v;
            } else if (!strcmp(a, "--detailed-top")) {
                if (cli_parse_int("plan", a, val, 0, 100000, &v)) return UMOE_EXIT_INPUT;
                o.detailed_top = (int)v;
            } else {
                if (cli_parse_int("plan", a, val, 1, 1024, &v)) return UMOE_EXIT_INPUT;
                o.threads = (int)v;
            }
        } else if (!strcmp(a, "--recompute-space")) {
            if (!(val = cli_value("plan", argc, argv, i))) return UMOE_EXIT_INPUT;
            i++;
            if (!strcmp(val, "all")) rc_all = 1;
            else if (strcmp(val, "default")) {
                fprintf(stderr, "umoe plan: --recompute-space = \"%s\" is not allowed (default or all)\n", val);
                return UMOE_EXIT_INPUT;
            }
        } else if (a[0] == '-' && a[1]) return cli_unknown("plan", a);
        else if (npos < 2) pos[npos++] = a;
        else return cli_unknown("plan", a);
    }
    if (npos != 2) {
        fprintf(stderr, "umoe plan: needs MODEL and CLUSTER (see umoe plan --help)\n");
        return UMOE_EXIT_INPUT;
    }
#ifndef UMOE_OPENMP
    if (o.threads > 1) {
        LOG_WARN("plan: built without OpenMP; --threads %d runs on one thread", o.threads);
        o.threads = 1;
    }
#endif
    spec_model m;
    spec_cluster c;
    if (spec_model_load(pos[0], &m) != UMOE_OK) return cli_input_error();
    if (spec_cluster_load(pos[1], &c) != UMOE_OK) return cli_input_error();
    if (seq > 0) {
        m.T = (int)seq;
        if (spec_model_validate(&m, "--seq") != UMOE_OK) return cli_input_error();
    }
    if (rc_all) o.n_recompute = plan_recompute_all(&m, o.recompute);
    if (o.gbs <= 0) {
        int devices = o.devices > 0 ? o.devices : c.devices;
        LOG_INFO("plan: --gbs not given: global batch = %d sequences (one per device) x %d tokens", 
                 plan_default_gbs(devices, m.T), m.T);
    }
    plan_result r;
    if (plan_search(&m, &c, &o, sim_run, &r) != UMOE_OK) return cli_input_error();
    if (json) plan_report_json(stdout, &m, &r);
    else plan_report_table(stdout, &m, &c, &r);
    int rc = UMOE_EXIT_OK;
    if (r.feasible == 0) {
        if (r.evaluated == 0)
            fprintf(stderr, "umoe plan: no valid strategy for %s on %d devices (no layout passes the strategy "
                            "rules: check the device count against heads, layers and experts)\n", m.name, r.devices);
        else
            fprintf(stderr, "umoe plan: no strategy fits in memory: %s on %d x %s needs at least %.1f GiB per "
                            "device with the lightest of %lld strategies, the device has %.1f GiB\n", m.name,
                    r.devices, c.hw.name, r.min_peak_bytes / (1024.0 * 1024 * 1024), r.evaluated,
                    c.hw.hbm_bytes / (1024.0 * 1024 * 1024));
        rc = UMOE_EXIT_FAIL;
    }
    plan_result_free(&r);
    return rc;
}
