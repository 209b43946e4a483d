/* bench_optim.c - the optimizer pass of a training step on a model's real parameter table, in the engine's
 * former form (model_zero_grad, then train_clip_global_norm: sum of squares + a scaling pass, then
 * train_adamw_step: one adamw_update per tensor) against the fused form the training loop now uses
 * (train_grad_norm, then train_adamw_step_fused: one pass with the clip's scale applied as each gradient is
 * read and the gradient zeroed after use). The clip is set below the gradient norm so the scaling pass runs,
 * as it does in the early steps of a run. Rounds alternate old / new; prints the median ms of each and the
 * bytes per parameter each moves (44 and 36). A benchmark, not a test.
 * Usage: bench_optim [MODEL [ROUNDS]]   (threads: OMP_NUM_THREADS)
 * Does not: run forward or backward, or check the numbers (tests/unit/test_train_optim.c does). */
#include <stdio.h>
#include <stdlib.h>
#include "umoe/nn.h"
#include "umoe/train.h"

int main(int argc, char **argv) {
    const char *model = argc > 1 ? argv[1] : "small-moe-512";
    int rounds = argc > 2 ? atoi(argv[2]) : 8;
    if (rounds < 1 || rounds > 1000) rounds = 8;
    spec_model s;
    umoe_model *m;
    if (spec_model_load(model, &s) || spec_model_validate(&s, model) || model_init(&m, &s, 1, 1, 1)) {
        fprintf(stderr, "bench_optim: %s\n", umoe_err);
        return 2;
    }
    size_t n = model_n_params(m);
    int nt;
    const model_tensor *tt = model_tensors(m, &nt);
    train_adamw o;
    train_adamw_init(&o, n, 0.9, 0.95, 1e-8, 0.1);
    float *g = model_grads(m);
    double t_old[1000], t_new[1000];
    for (int r = -1; r < rounds; r++) { /* round -1: first touch of m and v, not timed */
        for (int k = 0; k < 2; k++) {
            for (size_t i = 0; i < n; i += 1024) g[i] = 1e-3f; /* some non-zero gradients */
            double t0 = umoe_now();
            if (k == 0) {
                model_zero_grad(m);
                for (size_t i = 0; i < n; i += 1024) g[i] = 1e-3f; /* (the backward's writes; ~n/1024 stores) */
                train_clip_global_norm(g, n, 1e-3);
                train_adamw_step(&o, model_params(m), g, tt, nt, 1e-4, r + 2);
            } else {
                double norm = train_grad_norm(g, n);
                train_adamw_step_fused(&o, model_params(m), g, tt, nt, 1e-4, r + 2, train_clip_scale(norm, 1e-3), 1);
            }
            double dt = umoe_now() - t0;
            if (r >= 0) (k == 0 ? t_old : t_new)[r] = dt;
        }
    }
    printf("optimizer pass, %s, %zu parameters, %d rounds (median):\n", model, n, rounds);
    printf("  zero + clip (norm, scale) + per-tensor AdamW: %.1f ms (44 B/param)\n", 1e3 * umoe_median(t_old, rounds));
    printf("  norm + fused AdamW (scale inside, zeroing):   %.1f ms (36 B/param)\n", 1e3 * umoe_median(t_new, rounds));
    train_adamw_free(&o);
    model_free(m);
    return 0;
}
