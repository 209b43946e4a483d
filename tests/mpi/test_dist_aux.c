/* test_dist_aux.c - aux-loss scope invariance under mpirun: the same global batch (4 sequences) split over the
 * R ranks of this run (each rank B / R rows), or over 4 gradient-accumulation steps on one rank, gives the same
 * aux-loss gradients as one model over the whole batch, for the global-batch scope (counts of all ranks and
 * micro-batches, set with model_set_aux_counts as src/train does) and the EP-group scope (EP = R, counts summed
 * by ep_moe's aux_reduce). The aux part of a gradient is isolated as grad(alpha = 1) - grad(alpha = 0) of the
 * router weights (same weights, same tokens). The micro-batch scope is expected to differ when R > 1 (checked,
 * so the comparison is shown to be able to fail). Prints PASS/FAIL on rank 0. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include "model_test_spec.h"
#include "test.h"
#include "umoe/dist.h"
#include "umoe/model.h"

enum { BG = 4, T = 16 };
static int g_rank, g_size;

static double g_last_e;
static void report(const char *name) {
    if (g_rank == 0) fprintf(stderr, "  %s: max relative difference %.3g\n", name, g_last_e);
    int f = t_fail_cur, any = 0;
    MPI_Allreduce(&f, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (g_rank == 0) {
        printf("%s %s\n", any ? "FAIL" : "PASS", name);
        fflush(stdout);
    }
    if (any) t_failed++;
    else t_passed++;
    t_fail_cur = 0;
}

/* router-weight grads of every MoE layer, concatenated: out must hold n_router_floats */
static size_t router_grads(const umoe_model *m, float *out) {
    int n;
    const model_tensor *t = model_tensors(m, &n);
    const float *g = model_grads((umoe_model *)m);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(t[i].name);
        if (len < 15 || strcmp(t[i].name + len - 15, "mlp.gate.weight")) continue;
        if (out) memcpy(out + k, g + t[i].offset, t[i].numel * sizeof(float));
        k += t[i].numel;
    }
    return k;
}

/* the aux part of the router grads of one configuration: scope, ranks (EP = R for the EP-group scope), or
 * accumulation steps on one rank (accum > 1 splits this rank's rows further) */
static void aux_grads(spec_aux_scope scope, int distributed, int accum, const int32_t *tok, float *out, size_t nr) {
    const int W = T + 2, R = distributed ? g_size : 1, Bl = BG / R / accum;
    float *g[2];
    for (int k = 0; k < 2; k++) {
        spec_model s;
        test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
        s.aux_alpha = k == 0 ? 1.0 : 0.0;
        s.aux_scope = scope;
        umoe_model *m;
        model_init(&m, &s, Bl, T, 11);
        dist_ctx d;
        ep_moe *x = NULL;
        if (distributed) {
            dist_config dc = {g_size, s.E, 0};
            dc.ranks_per_node = g_size;
            CHECK(dist_init(&d, &dc) == UMOE_OK, "%s", umoe_err);
            CHECK(ep_moe_init(&x, &d, m, EP_A2A_FLAT) == UMOE_OK, "%s", umoe_err);
            model_set_moe_ops(m, ep_moe_ops(x));
        }
        const int32_t *mine = tok + (size_t)(distributed ? g_rank : 0) * (BG / R) * W;
        int nm = model_n_moe_layers(m);
        double cnt[nm * s.E];
        if (scope == SPEC_AUX_GLOBAL) {
            memset(cnt, 0, sizeof cnt);
            for (int a = 0; a < accum; a++) {
                model_losses L;
                model_forward(m, mine + (size_t)a * Bl * W, Bl, T, &L);
                for (int i = 0; i < nm * s.E; i++) cnt[i] += L.expert_load[i];
            }
            if (distributed) MPI_Allreduce(MPI_IN_PLACE, cnt, nm * s.E, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
            model_set_aux_counts(m, cnt, (double)BG * T);
        }
        model_zero_grad(m);
        for (int a = 0; a < accum; a++) {
            model_losses L;
            model_forward_backward(m, mine + (size_t)a * Bl * W, Bl, T, 1.0f / accum, &L);
        }
        if (distributed) {
            CHECK(ep_moe_grad_sync(x, 0, NULL) == UMOE_OK, "%s", umoe_err);
            float *gg = model_grads(m);
            for (size_t i = 0; i < model_n_params(m); i++) gg[i] /= (float)R; /* mean over the R slices */
        }
        g[k] = malloc(nr * sizeof(float));
        router_grads(m, g[k]);
        model_set_moe_ops(m, NULL);
        if (x) ep_moe_free(x);
        if (distributed) dist_free(&d);
        model_free(m);
    }
    for (size_t i = 0; i < nr; i++) out[i] = g[0][i] - g[1][i];
    free(g[0]);
    free(g[1]);
}

static double rel_diff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        num = d > num ? d : num;
        den = fabs((double)b[i]) > den ? fabs((double)b[i]) : den;
    }
    return den > 0 ? num / den : num;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    umoe_log_set_level(UMOE_LOG_WARN);
    char name[128];
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    int32_t tok[BG * (T + 2)];
    test_tokens(tok, BG, T, s.mtp, s.V, 77); /* the same global batch on every rank */
    umoe_model *probe;
    model_init(&probe, &s, 1, T, 11);
    size_t nr = router_grads(probe, NULL);
    model_free(probe);
    float *ref = malloc(nr * sizeof(float)), *got = malloc(nr * sizeof(float));
    /* reference: one model over the whole batch; its micro-batch is the global batch */
    aux_grads(SPEC_AUX_MICRO, 0, 1, tok, ref, nr);
    double big = 0;
    for (size_t i = 0; i < nr; i++) big = fabs(ref[i]) > big ? fabs(ref[i]) : big;
    CHECK(big > 1e-4, "the aux gradient is too small to compare (%g)", big);
    const double tol = 1e-5; /* observed <= 1.6e-7: reassociated split sums, and the subtraction of two runs */
    aux_grads(SPEC_AUX_GLOBAL, 1, 1, tok, got, nr);
    double e = g_last_e = rel_diff(got, ref, nr);
    CHECK(e < tol, "global scope over %d ranks: relative difference %.3g", g_size, e);
    snprintf(name, sizeof name, "aux_global_scope_invariant[R%d]", g_size);
    report(name);
    if (BG % g_size == 0) {
        aux_grads(SPEC_AUX_EP_GROUP, 1, 1, tok, got, nr);
        e = g_last_e = rel_diff(got, ref, nr);
        CHECK(e < tol, "EP-group scope (EP = %d): relative difference %.3g", g_size, e);
        snprintf(name, sizeof name, "aux_ep_group_scope_invariant[R%d,E%d]", g_size, g_size);
        report(name);
    }
    if (g_size == 1) {
        aux_grads(SPEC_AUX_GLOBAL, 0, 4, tok, got, nr);
        e = g_last_e = rel_diff(got, ref, nr);
        CHECK(e < tol, "global scope over 4 accumulation steps: relative difference %.3g", e);
        report("aux_global_scope_invariant[accum4]");
    } else {
        aux_grads(SPEC_AUX_MICRO, 1, 1, tok, got, nr);
        e = g_last_e = rel_diff(got, ref, nr);
        CHECK(e > 10 * tol, "micro-batch scope over %d ranks should differ, relative difference %.3g", g_size, e);
        snprintf(name, sizeof name, "aux_micro_scope_differs[R%d]", g_size);
        report(name);
    }
    free(ref);
    free(got);
    CHECK(umoe_alloc_current() == 0, "%zu bytes still allocated", umoe_alloc_current());
    report("aux_frees_everything");
    MPI_Finalize();
    return t_failed ? 1 : 0;
}
