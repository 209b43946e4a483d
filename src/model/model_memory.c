/* model_memory.c - the memory optimisation switches of the model and its own memory report: the recompute
 * policy (which rebuilds the arena with the policy's buffers in the shared region) and the bytes held by
 * parameters, gradients, the activation arena by region, MoE dispatch buffers, the offload pool, the counted
 * allocator and the process's peak resident set (getrusage); the MoE-block wall-time counter (model_moe_seconds).
 * Does not: the optimizer state (the trainer owns AdamW m/v and adds them), move or recompute anything. */
#include <string.h>
#include <sys/resource.h>
#include "model_internal.h"

umoe_status model_set_recompute(umoe_model *m, unsigned rc) {
    const char *dir = NULL;
    char dirbuf[4096] = "";
    model_offload_kind kind = model_offload_kind_of(m, &dir);
    if (dir) umoe_strlcpy(dirbuf, dir, sizeof dirbuf);
    m->rc = rc & SPEC_RC_FULL ? SPEC_RC_FULL : rc; /* full subsumes every module */
    return model_set_offload(m, kind, dir ? dirbuf : NULL); /* rebuilds the arena (and the pool) */
}

unsigned model_recompute(const umoe_model *m) { return m->rc; }

void model_memory_report(const umoe_model *m, model_memory *r) {
    memset(r, 0, sizeof *r);
    r->params = m->n_params * sizeof(float);
    r->grads = m->n_params * sizeof(float);
    r->arena = m->arena_bytes;
    r->arena_resident = m->arena_resident;
    r->arena_shared = m->arena_shared;
    r->arena_slots = m->arena_slots;
    r->arena_other = m->arena_other;
    r->dispatch = m->arena_dispatch;
    r->offload_pool = model_offload_pool_bytes(m);
    r->offload_moved = model_offload_moved(m);
    r->offload_wait_s = model_offload_wait_s(m);
    r->offload_busy_s = model_offload_busy_s(m);
    r->recompute_s = m->rc_seconds;
    r->alloc_current = umoe_alloc_current();
    r->alloc_peak = umoe_alloc_peak();
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) r->peak_rss = (size_t)ru.ru_maxrss * 1024; /* Linux: KiB */
}

double model_moe_seconds(const umoe_model *m) { return m->moe_seconds; }
void model_moe_seconds_reset(umoe_model *m) { m->moe_seconds = 0; }
