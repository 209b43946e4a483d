/* validate_engine.h - `umoe validate --engine`: run real training configurations of the engine on this
 * machine and compare them with the simulator's prediction (src/sim/cost_engine*.c). Private to src/cli. */
#ifndef UMOE_CLI_VALIDATE_ENGINE_H
#define UMOE_CLI_VALIDATE_ENGINE_H
#include "umoe/sim_engine.h"

#define VE_MAX_ROUNDS 16 /* --repeat */

typedef struct {
    char id[64];
    char model[4096];      /* path or preset name */
    int ranks, ep, ranks_per_node, hierarchical, placement, batch;
    char recompute[128];
    /* measured (NAN when unknown) */
    double meas_step_s, meas_step_min, meas_step_max; /* median over the steps after warm-up, and the spread */
    double meas_cpu_step_s;  /* median over the same steps of (CPU seconds of all ranks) / min(ranks, cores) */
    double meas_alloc, meas_rss, meas_arena, meas_params_bytes;
    double meas_imbalance;  /* slowest EP rank over the mean, mean over MoE layers, median over steps */
    double recv_scale;      /* rank 0's high-water of received routed rows over a balanced rank's, mean over
                             * MoE layers (from the logged expert loads, block owners) */
    double cpu_share;       /* CPU seconds the run got / (wall seconds x min(ranks, cores)) */
    double wall_s;          /* the whole run */
    int measured_steps;
    /* predicted */
    sim_engine_result pred;  /* with --bench-each, step_s = the mean of the two below */
    double pred_step_before_s, pred_step_after_s; /* with the spec measured just before / after the run (NAN: none) */
    double err_step, err_cpu_step, err_alloc, err_rss;
    double err_step_fastest; /* pred.step_s / meas_step_min - 1: against the fastest measured step, the run's
                              * figure least slowed by other tenants, as the bench's medians of short samples are */
    int ok;
    char reason[512];
    /* --repeat N: each round's figures (measured median step, its fastest step, CPU step, predicted step); the
     * row's meas_step_s, meas_step_min, meas_cpu_step_s and pred.step_s are then the medians over the rounds */
    int n_rounds;
    double round_meas[VE_MAX_ROUNDS], round_min[VE_MAX_ROUNDS], round_cpu[VE_MAX_ROUNDS], round_pred[VE_MAX_ROUNDS];
} engine_row;

int cmd_validate_engine(int argc, char **argv);
/* validate_engine_watch.c: waits for `pid` (reaping it: *status, *ru), recording in cpu_at_line[k] the CPU
 * seconds its `ranks` ranks had used when line k + 1 of `log` appeared (NAN when unknown); returns the
 * number of lines seen (at most max_lines). */
#include <sys/resource.h>
#include <sys/types.h>
int ve_watch(pid_t pid, int ranks, const char *log, double *cpu_at_line, int max_lines, int *status,
             struct rusage *ru);
/* validate_engine_report.c */
void engine_report_print(const engine_row *rows, int n, const char *hw, int json, double cores, int rounds);
#endif
