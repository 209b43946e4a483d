/* optimizer_state.c - the AdamW state: first and second moments, one flat block each with the same layout
 * as the parameters (so checkpointing and, later, MPI reductions are one call each), plus the
 * hyper-parameters. Does not: update anything (optimizer.c) or save it (train_state.c). */
#include "umoe/train.h"

void train_adamw_init(train_adamw *o, size_t n, double beta1, double beta2, double eps, double wd) {
    o->n = n;
    o->m = umoe_calloc(n, sizeof(float), "AdamW m");
    o->v = umoe_calloc(n, sizeof(float), "AdamW v");
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->wd = wd;
}

void train_adamw_free(train_adamw *o) {
    umoe_free(o->m, o->n * sizeof(float));
    umoe_free(o->v, o->n * sizeof(float));
    o->m = o->v = NULL;
}
