/* cmd_sweep.c - `umoe sweep SPACE CLUSTER`: the architecture study. Plans every model shape of SPACE within
 * its parameter budget on CLUSTER and ranks the shapes by the simulated tokens/s of their best strategy
 * (src/sim/sweep.c). Table, --json, --svg scatter. Exit codes: 0 ok, 1 no shape fits, 2 bad input. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "umoe/plan.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: umoe sweep SPACE CLUSTER [options]\n\n"
            "Architecture study (Pangu Ultra MoE sec. 3): vary layers, hidden size, heads, experts, top-k, shared\n"
            "experts, expert width, first dense layers and attention kind around a base model, keep the shapes\n"
            "within a total- or activated-parameter budget, plan each on CLUSTER (every valid parallel strategy,\n"
            "as `umoe plan`) and rank the shapes by the tokens/s of their best strategy (tie: memory headroom).\n"
            "SPACE is a JSON file or a preset name from configs/sweeps/ (format: docs/planner.md).\n\n"
            "options:\n"
            "  --devices N       device count (default: the cluster's)\n"
            "  --gbs B           global batch in sequences (default: the space's, else one per device)\n"
            "  --top K           shapes to print (default 20)\n"
            "  --detailed-top N  per shape, re-simulate the best N strategies with the event simulation and keep\n"
            "                    the best of them (default 10, as umoe plan's default)\n"
            "  --threads N       OpenMP threads for each plan (default 1)\n"
            "  --svg FILE        write a scatter of best tokens/s against parameters\n"
            "  --json            print {\"shapes\", \"in_budget\", \"results\": [...]} best first\n\n"
            "Exit codes: 0 ok, 1 no shape in the budget fits, 2 bad input.\n");
}

int cmd_sweep(int argc, char **argv) {
    const char *pos[2] = {NULL, NULL}, *svg = NULL;
    int npos = 0, json = 0, top = 20;
    long long v;
    plan_options o;
    plan_options_defaults(&o);
    o.detailed_top = 10;
    o.progress = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        if (cli_is_help(a)) {
            usage(stdout);
            return UMOE_EXIT_OK;
        }
        if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--svg")) {
            if (!(svg = cli_value("sweep", argc, argv, i))) return UMOE_EXIT_INPUT;
            i++;
        } else if (!strcmp(a, "--devices") || !strcmp(a, "--gbs") || !strcmp(a, "--top") ||
                   !strcmp(a, "--detailed-top") || !strcmp(a, "--threads")) {
            if (!(val = cli_value("sweep", argc, argv, i))) return UMOE_EXIT_INPUT;
            i++;
            long long lo = !strcmp(a, "--detailed-top") ? 0 : 1;
            long long hi = !strcmp(a, "--threads") ? 1024 : 1 << 26;
            if (cli_parse_int("sweep", a, val, lo, hi, &v)) return UMOE_EXIT_INPUT;
            if (!strcmp(a, "--devices")) o.devices = (int)v;
            else if (!strcmp(a, "--gbs")) o.gbs = (int)v;
            else if (!strcmp(a, "--top")) top = (int)v;
            else if (!strcmp(a, "--detailed-top")) o.detailed_top = (int)v;
            else o.threads = (int)v;
        } else if (a[0] == '-' && a[1]) return cli_unknown("sweep", a);
        else if (npos < 2) pos[npos++] = a;
        else return cli_unknown("sweep", a);
    }
    if (npos != 2) {
        fprintf(stderr, "umoe sweep: needs SPACE and CLUSTER (see umoe sweep --help)\n");
        return UMOE_EXIT_INPUT;
    }
#ifndef UMOE_OPENMP
    if (o.threads > 1) o.threads = 1;
#endif
    sweep_space *sp = umoe_malloc(sizeof *sp, "sweep space");
    spec_cluster c;
    int rc = UMOE_EXIT_INPUT;
    if (sweep_space_load(pos[0], sp) != UMOE_OK || spec_cluster_load(pos[1], &c) != UMOE_OK) {
        cli_input_error();
        goto done;
    }
    sweep_result r;
    if (sweep_run(sp, &c, &o, sim_run, &r) != UMOE_OK) {
        cli_input_error();
        goto done;
    }
    if (json) sweep_report_json(stdout, sp, &r, top);
    else sweep_report_table(stdout, sp, &c, &r, top);
    rc = UMOE_EXIT_OK;
    if (svg && sweep_report_svg(svg, sp, &r) != UMOE_OK) {
        fprintf(stderr, "umoe sweep: %s\n", umoe_err);
        rc = UMOE_EXIT_FAIL;
    }
    if (r.n_feasible == 0) {
        fprintf(stderr, "umoe sweep: no shape %s fits on the cluster (%d shapes, %d valid, %d within the budget)\n",
                r.n_budget ? "within the budget" : "is within the budget, so none", r.n_total, r.n_valid, r.n_budget);
        rc = UMOE_EXIT_FAIL;
    }
    sweep_result_free(&r);
done:
    umoe_free(sp, sizeof *sp);
    return rc;
}
