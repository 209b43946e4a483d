/* train_internal.h - shared between the files of src/train only (not a public interface). */
#ifndef UMOE_TRAIN_INTERNAL_H
#define UMOE_TRAIN_INTERNAL_H
#include <stdio.h>
#include "umoe/train.h"

typedef struct {
    long step;                 /* 1-based: the number of optimizer steps done after this one */
    double loss, lm_loss, aux_loss, z_loss, mtp_loss, grad_norm, lr;
    long long tokens;          /* tokens (not token-assignments) in this step: B x T x accum */
    double tokens_per_s, seconds;
    int n_moe_layers, E;
    const int *moe_layer;      /* (n_moe_layers) layer index of each MoE layer */
    const double *load;        /* (n_moe_layers, E) routed token-assignments, summed over micro-batches */
    double val_loss;           /* NAN when not evaluated at this step */
    const model_memory *mem;   /* may be NULL: bytes held (model_memory_report + the optimizer state) */
} train_step_metrics;

void train_metrics_log(FILE *f, const train_step_metrics *s);
void train_metrics_progress(int overwrite, const train_step_metrics *s, long total, double eta_s);
#endif
