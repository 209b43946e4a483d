/* test_model_recompute.c - fine-grained recomputation (model_set_recompute): for every policy of spec.h's
 * module list (each module alone, selective, all modules, full) the losses and ALL gradients are bit-identical
 * to the run without recomputation, over two optimiser-like steps, on the tiny MoE + MLA + MTP shapes of the
 * other model tests (sandwich and pre-norm MLA, GQA with MTP depth 2); and the activation arena really
 * shrinks: none > selective > full, every module alone below none, all modules below each alone.
 * Also prints the arena bytes per policy for the shipped tiny-moe preset at the trainer's default batch
 * (B 8, T 128) on stderr: `build/tests/test_model_recompute` (docs/engine-memory.md quotes them). */
#include <stdio.h>
#include <string.h>
#include "model_test_spec.h"
#include "test.h"
#include "umoe/model.h"

enum { B = 2, T = 16 };

static const char *const policies[] = {"norm", "activation", "attn_core", "mla_up", "expert_fc1", "permute",
                                       "selective", "norm,activation,attn_core,mla_up,expert_fc1,permute",
                                       "full", NULL};

static unsigned parse(const char *p) {
    unsigned rc = 0;
    umoe_status st = spec_recompute_parse(p, "test", "recompute", &rc);
    UMOE_ASSERT(st == UMOE_OK);
    return rc;
}

/* two steps: forward+backward, a plain SGD update from the grads, forward+backward again */
static void run_two_steps(umoe_model *m, const int32_t *tok, int mtp, model_losses L[2], float *g_out) {
    size_t np = model_n_params(m);
    (void)mtp;
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &L[0]);
    float *p = model_params(m), *g = model_grads(m);
    for (size_t i = 0; i < np; i++) p[i] -= 0.05f * g[i];
    model_zero_grad(m);
    model_forward_backward(m, tok + B * (T + 1 + mtp), B, T, 0.5f, &L[1]);
    memcpy(g_out, g, np * sizeof(float));
}

static int same_losses(const model_losses *a, const model_losses *b) {
    return a->loss == b->loss && a->lm_loss == b->lm_loss && a->mtp_loss == b->mtp_loss &&
           a->aux_loss == b->aux_loss && a->z_loss == b->z_loss;
}

static void check_policies(spec_attn_kind attn, spec_norm_kind norm, int mtp) {
    spec_model s;
    test_spec_tiny(&s, attn, norm);
    s.mtp = mtp;
    int32_t tok[2 * B * (T + 1 + 2)];
    test_tokens(tok, 2 * B, T, mtp, s.V, 21);
    umoe_model *ref;
    CHECK(model_init(&ref, &s, B, T, 7) == UMOE_OK, "%s", umoe_err);
    size_t np = model_n_params(ref);
    float *g_ref = umoe_malloc(np * sizeof(float), "ref grads"), *g = umoe_malloc(np * sizeof(float), "grads");
    model_losses Lr[2], L[2];
    run_two_steps(ref, tok, mtp, Lr, g_ref);
    for (int i = 0; policies[i]; i++) {
        umoe_model *m;
        CHECK(model_init(&m, &s, B, T, 7) == UMOE_OK, "%s", umoe_err);
        CHECK(model_set_recompute(m, parse(policies[i])) == UMOE_OK, "%s", umoe_err);
        run_two_steps(m, tok, mtp, L, g);
        for (int k = 0; k < 2; k++)
            CHECK(same_losses(&L[k], &Lr[k]), "%s step %d: loss %.17g vs %.17g without recompute", policies[i], k,
                  L[k].loss, Lr[k].loss);
        size_t differ = 0;
        for (size_t j = 0; j < np; j++) differ += memcmp(&g[j], &g_ref[j], sizeof(float)) != 0;
        CHECK(differ == 0, "%s: %zu of %zu gradients differ from the run without recompute", policies[i], differ, np);
        CHECK(memcmp(model_params(m), model_params(ref), np * sizeof(float)) == 0, "%s: parameters after a step",
              policies[i]);
        model_memory mr;
        model_memory_report(m, &mr);
        CHECK(mr.recompute_s > 0, "%s: recompute time %g s", policies[i], mr.recompute_s);
        const int32_t *i1, *i2;
        const float *w1, *w2;
        if (model_n_moe_layers(m) > 0) { /* router top-k of the first MoE layer still readable after backward */
            model_router_topk(m, 0, &i1, &w1);
            model_router_topk(ref, 0, &i2, &w2);
            CHECK(memcmp(i1, i2, (size_t)B * T * s.K * sizeof(int32_t)) == 0, "%s: router top-k ids", policies[i]);
        }
        model_free(m);
    }
    umoe_free(g_ref, np * sizeof(float));
    umoe_free(g, np * sizeof(float));
    model_free(ref);
}

static void test_identical_mla_sandwich(void) { check_policies(SPEC_ATTN_MLA, SPEC_NORM_SANDWICH, 1); }
static void test_identical_mla_pre(void) { check_policies(SPEC_ATTN_MLA, SPEC_NORM_PRE, 1); }
static void test_identical_gqa_mtp2(void) { check_policies(SPEC_ATTN_GQA, SPEC_NORM_PRE, 2); }

/* the recompute policy can change between steps: switching back to none gives the reference again */
static void test_switch_policy(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    int32_t tok[B * (T + 2)];
    test_tokens(tok, B, T, s.mtp, s.V, 5);
    umoe_model *m;
    CHECK(model_init(&m, &s, B, T, 3) == UMOE_OK, "%s", umoe_err);
    model_losses a, b, c;
    model_forward(m, tok, B, T, &a);
    CHECK(model_set_recompute(m, SPEC_RC_FULL | SPEC_RC_NORM) == UMOE_OK, "%s", umoe_err);
    CHECK(model_recompute(m) == SPEC_RC_FULL, "full subsumes the modules (got %#x)", model_recompute(m));
    model_forward(m, tok, B, T, &b);
    CHECK(model_set_recompute(m, 0) == UMOE_OK, "%s", umoe_err);
    model_forward(m, tok, B, T, &c);
    CHECK(a.loss == b.loss && a.loss == c.loss, "loss %.17g / %.17g / %.17g", a.loss, b.loss, c.loss);
    model_free(m);
}

static size_t arena_of(const spec_model *s, int Bn, int Tn, unsigned rc, model_memory *out) {
    umoe_model *m;
    if (model_init(&m, s, Bn, Tn, 1) != UMOE_OK) return 0;
    if (model_set_recompute(m, rc) != UMOE_OK) { model_free(m); return 0; }
    model_memory r;
    model_memory_report(m, &r);
    if (out) *out = r;
    model_free(m);
    return r.arena;
}

static void check_ordering(const spec_model *s, int Bn, int Tn, const char *label, int print) {
    model_memory r;
    size_t none = arena_of(s, Bn, Tn, 0, &r), sel = arena_of(s, Bn, Tn, SPEC_RC_SELECTIVE, NULL);
    size_t full = arena_of(s, Bn, Tn, SPEC_RC_FULL, NULL);
    size_t all = arena_of(s, Bn, Tn, parse(policies[7]), NULL);
    if (print) {
        fprintf(stderr, "  %s, B %d T %d: activation arena bytes per recompute policy (params %zu B)\n", label, Bn,
                Tn, r.params);
        fprintf(stderr, "  %-52s %12s %9s %12s %12s %12s\n", "policy", "arena", "vs none", "resident", "shared",
                "other");
    }
    for (int i = -1; policies[i < 0 ? 0 : i]; i++) {
        const char *name = i < 0 ? "none" : policies[i];
        model_memory q;
        size_t b = arena_of(s, Bn, Tn, i < 0 ? 0 : parse(name), &q);
        if (print)
            fprintf(stderr, "  %-52s %12zu %8.1f%% %12zu %12zu %12zu\n", name, b, 100.0 * (double)b / (double)none,
                    q.arena_resident, q.arena_shared, q.arena_other);
        if (i >= 0 && i < 6) {
            CHECK(b < none, "%s: %s alone does not shrink the arena (%zu vs none %zu)", label, name, b, none);
            CHECK(all < b, "%s: all modules (%zu) not below %s alone (%zu)", label, all, name, b);
        }
    }
    if (print) { /* with offload to a host pool: the arena keeps two layers' slots, the pool the rest */
        for (int i = 0; i < 2; i++) {
            umoe_model *m;
            model_memory q;
            if (model_init(&m, s, Bn, Tn, 1) != UMOE_OK) break;
            CHECK(model_set_recompute(m, i ? parse(policies[7]) : 0) == UMOE_OK, "%s", umoe_err);
            CHECK(model_set_offload(m, MODEL_OFFLOAD_HOST, NULL) == UMOE_OK, "%s", umoe_err);
            model_memory_report(m, &q);
            fprintf(stderr, "  %-52s %12zu %8.1f%% %12zu %12zu %12zu  slots %zu, pool %zu\n",
                    i ? "all six modules + offload host" : "none + offload host", q.arena,
                    100.0 * (double)q.arena / (double)none, q.arena_resident, q.arena_shared, q.arena_other,
                    q.arena_slots, q.offload_pool);
            CHECK(q.arena < (i ? all : none), "offload shrinks the arena");
            model_free(m);
        }
    }
    CHECK(none > sel && sel > full, "%s: none %zu > selective %zu > full %zu", label, none, sel, full);
    CHECK(all > full, "%s: all modules %zu still above full %zu", label, all, full);
}

static void test_arena_shrinks(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    check_ordering(&s, B, T, "test-tiny MLA sandwich", 0);
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    check_ordering(&s, B, T, "test-tiny MLA pre-norm", 0);
    CHECK(spec_model_load("tiny-moe", &s) == UMOE_OK, "%s", umoe_err);
    check_ordering(&s, 8, s.T, "tiny-moe", 1);
}

/* ---- expert-parallel hooks: experts run by a pretend remote side with its own saved buffers. Under full
 * recompute the hook's forward runs again before the layer's backward (as an all-to-all would rerun). */
enum { MAXROWS = B * T * 2 };
typedef struct {
    float in[4][MAXROWS * 32], gu[4][MAXROWS * 16], act[4][MAXROWS * 8];
    int32_t off[4][9];
    int fwd, bwd;
} remote_ctx;

static void remote_forward(void *ctx, umoe_model *m, int layer, int slot, const float *rows, const int32_t *counts,
                           const int32_t *offsets, size_t NK, float *out) {
    remote_ctx *c = ctx;
    size_t C = (size_t)model_spec(m)->C;
    memcpy(c->in[slot], rows, NK * C * sizeof(float));
    memcpy(c->off[slot], offsets, 9 * sizeof(int32_t));
    model_experts_forward(m, layer, 0, 8, c->off[slot], c->in[slot], c->gu[slot], c->act[slot], out);
    c->fwd++;
    (void)counts;
}

static void remote_backward(void *ctx, umoe_model *m, int layer, int slot, const float *dout, const int32_t *counts,
                            const int32_t *offsets, size_t NK, float *drows) {
    remote_ctx *c = ctx;
    static float dgu[MAXROWS * 16], dact[MAXROWS * 8];
    model_experts_backward(m, layer, 0, 8, c->off[slot], c->in[slot], c->gu[slot], c->act[slot], dout, drows, dgu,
                           dact);
    c->bwd++;
    (void)counts;
    (void)offsets;
    (void)NK;
}

static void test_with_moe_ops(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    int32_t tok[2 * B * (T + 2)];
    test_tokens(tok, 2 * B, T, s.mtp, s.V, 4);
    umoe_model *ref;
    CHECK(model_init(&ref, &s, B, T, 5) == UMOE_OK, "%s", umoe_err);
    size_t np = model_n_params(ref);
    float *gr = umoe_malloc(np * sizeof(float), "ref grads"), *g = umoe_malloc(np * sizeof(float), "grads");
    model_losses Lr[2], L[2];
    run_two_steps(ref, tok, s.mtp, Lr, gr);
    static remote_ctx ctx;
    const char *pol[] = {"full", policies[7]};
    for (int i = 0; i < 2; i++) {
        memset(&ctx, 0, sizeof ctx);
        model_moe_ops ops = {&ctx, remote_forward, remote_backward, NULL};
        umoe_model *m;
        CHECK(model_init(&m, &s, B, T, 5) == UMOE_OK, "%s", umoe_err);
        model_set_moe_ops(m, &ops);
        CHECK(model_set_recompute(m, parse(pol[i])) == UMOE_OK, "%s", umoe_err);
        run_two_steps(m, tok, s.mtp, L, g);
        int nm = model_n_moe_layers(m);
        CHECK(ctx.bwd == 2 * nm && ctx.fwd == (i == 0 ? 4 : 2) * nm, "%s: hook forward %d, backward %d times",
              pol[i], ctx.fwd, ctx.bwd);
        CHECK(L[0].loss == Lr[0].loss && L[1].loss == Lr[1].loss, "%s with hooks: losses", pol[i]);
        size_t differ = 0;
        for (size_t j = 0; j < np; j++) differ += memcmp(&g[j], &gr[j], sizeof(float)) != 0;
        CHECK(differ == 0, "%s with hooks: %zu gradients differ", pol[i], differ);
        model_free(m);
    }
    umoe_free(gr, np * sizeof(float));
    umoe_free(g, np * sizeof(float));
    model_free(ref);
}

int main(void) {
    RUN(test_with_moe_ops);
    RUN(test_identical_mla_sandwich);
    RUN(test_identical_mla_pre);
    RUN(test_identical_gqa_mtp2);
    RUN(test_switch_policy);
    RUN(test_arena_shrinks);
    TEST_MAIN_END();
}
