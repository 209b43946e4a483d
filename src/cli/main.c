/* main.c - the umoe binary: dispatches to one file per command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "umoe/nn.h"

typedef struct { const char *name; int (*fn)(int, char **); const char *summary; } command;

static const command commands[] = {
    {"plan", cmd_plan, "search every valid parallel strategy for a model on a cluster, rank by throughput"},
    {"sim", cmd_sim, "one strategy in detail: step-time breakdown, MFU, memory, timeline"},
    {"sweep", cmd_sweep, "model-architecture study within a parameter budget"},
    {"validate", cmd_validate, "predicted vs published (or engine-measured) training step times"},
    {"params", cmd_params, "parameter counts and FLOPs per token of a model"},
    {"bench", cmd_bench, "measure this machine into a hardware spec"},
    {"train", cmd_train, "train a model (DP x EP over MPI ranks under mpirun)"},
    {"eval", cmd_eval, "loss and perplexity of a checkpoint"},
    {"tokens", cmd_tokens, "turn a text file into a token shard"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: umoe COMMAND [ARGS]   (umoe COMMAND --help for each)\n\n"
               "ultramoe: plan, simulate and train large Mixture-of-Experts models.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nMODEL, CLUSTER and STRATEGY are JSON files or preset names from configs/.\n"
               "Exit codes: 0 ok, 1 the run failed, 2 bad input.\n");
}

/* Runtime settings that the libraries read only when they are loaded, so the commands that run GEMMs start
 * again with them set (a variable the user set is never overridden):
 * - OPENBLAS_CORETYPE: where OpenBLAS picked an older kernel family than this CPU runs (nn.h: 0.3.21 takes
 *   recent Xeons for Prescott, ~7x slower sgemm).
 * - OMP_WAIT_POLICY=passive: our OpenMP threads and OpenBLAS's own threads share the cores; spinning OpenMP
 *   workers starve the BLAS threads (tiny-moe on 2 threads: 2536 tokens/s spinning, 5664 passive, measured
 *   with build/bench/bench_train). */
static void runtime_env_fix(int argc, char **argv) {
    if (argc < 2 || (strcmp(argv[1], "train") && strcmp(argv[1], "eval") && strcmp(argv[1], "bench"))) return;
    int restart = 0;
    const char *better = nn_blas_better_coretype();
    if (better && !getenv("OPENBLAS_CORETYPE")) {
        setenv("OPENBLAS_CORETYPE", better, 1);
        restart = 1;
    }
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        restart = 1;
    }
    if (restart) execv("/proc/self/exe", argv); /* returns only on failure: go on as loaded */
}

int main(int argc, char **argv) {
    runtime_env_fix(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return UMOE_EXIT_INPUT;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return UMOE_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "umoe: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return UMOE_EXIT_INPUT;
}
