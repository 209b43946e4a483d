/* main.c - the umoe binary: dispatches to one file per command. */
#include <stdio.h>
#include <string.h>
#include "cli.h"

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

int main(int argc, char **argv) {
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
