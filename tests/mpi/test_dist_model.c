/* test_dist_model.c - the model with expert parallelism (ep_moe hooks) under mpirun: for every EP size that
 * divides the world and both all-to-all kinds, each rank trains one micro-batch of its own tokens on the tiny
 * test model and the results are compared with local expert execution:
 *   - losses equal (within float reassociation) to computing every expert locally;
 *   - after the gradient sync (dense over all ranks, local experts over expert-DP), dense and owned expert grads
 *     equal the all-rank sum of locally computed grads; experts a rank does not own get no grads;
 *   - flat and hierarchical all-to-all give bit-identical losses and grads;
 *   - EP-group aux-loss scope: the aux loss equals that of one model over the EP group's concatenated batch;
 *   - the same with forced imbalance: every token routed to expert 0, so the other ranks receive no rows.
 * Prints PASS/FAIL on rank 0; a test passes only if it passed on every rank. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include "model_test_spec.h"
#include "test.h"
#include "umoe/dist.h"
#include "umoe/model.h"

enum { B = 2, T = 16 };
static int g_rank, g_size;

static void report(const char *name) {
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

static void rank_tokens(int32_t *tok, const spec_model *s, int w) { test_tokens(tok, B, T, s->mtp, s->V, 100 + w); }

/* max |a - b| / max |b| over the tensors of one kind (0 dense, 1 expert owned here) */
static double rel_err(const ep_moe *x, const umoe_model *m, const float *a, const float *b, int want_kind) {
    int n;
    const model_tensor *t = model_tensors(m, &n);
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        int kind = t[i].expert < 0 ? 0 : -1;
        for (int s = 0; kind < 0 && s < model_n_moe_layers(m); s++)
            if (model_moe_layer_index(m, s) == t[i].layer) kind = ep_moe_is_local(x, s, t[i].expert) ? 1 : 2;
        if (kind != want_kind) continue;
        for (size_t k = t[i].offset; k < t[i].offset + t[i].numel; k++) {
            double d = fabs((double)a[k] - b[k]);
            num = d > num ? d : num;
            den = fabs((double)b[k]) > den ? fabs((double)b[k]) : den;
        }
    }
    return den > 0 ? num / den : num;
}

static size_t nonzero_foreign(const ep_moe *x, const umoe_model *m, const float *g) {
    int n;
    const model_tensor *t = model_tensors(m, &n);
    size_t bad = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].expert < 0) continue;
        for (int s = 0; s < model_n_moe_layers(m); s++)
            if (model_moe_layer_index(m, s) == t[i].layer && !ep_moe_is_local(x, s, t[i].expert))
                for (size_t k = t[i].offset; k < t[i].offset + t[i].numel; k++) bad += g[k] != 0;
    }
    return bad;
}

/* forced: top-1 routing with zero router weights, so every score ties and every token goes to expert 0 (the
 * lowest id): one rank receives everything, the others nothing (forced imbalance, zero-token ranks) */
static void run_ep(int E, int forced) {
    char name[160];
    int rpn = E >= 2 ? E / 2 : 1; /* the EP group spans 2 emulated nodes when E >= 2 */
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    if (forced) s.K = 1;
    dist_ctx d;
    dist_config dc = {E, s.E, rpn};
    umoe_status st = dist_init(&d, &dc);
    CHECK(st == UMOE_OK, "dist_init: %s", umoe_err);
    if (st) { report("model_ep_init"); return; }
    umoe_model *m;
    st = model_init(&m, &s, B, T, 3); /* same seed: same weights on every rank */
    CHECK(st == UMOE_OK, "model_init: %s", umoe_err);
    if (st) { dist_free(&d); report("model_ep_init"); return; }
    size_t np = model_n_params(m);
    if (forced) {
        int nt;
        const model_tensor *tt = model_tensors(m, &nt);
        for (int i = 0; i < nt; i++)
            if (strstr(tt[i].name, "mlp.gate.weight")) memset(model_params(m) + tt[i].offset, 0, tt[i].numel * 4);
    }
    int32_t tok[B * (T + 2)];
    rank_tokens(tok, &s, g_rank);
    /* reference: every expert local, grads summed over all ranks */
    model_losses lref, lk[3];
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &lref);
    float *gref = malloc(np * sizeof(float)), *gk[3];
    memcpy(gref, model_grads(m), np * sizeof(float));
    MPI_Allreduce(MPI_IN_PLACE, gref, (int)np, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    ep_moe *x[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 3; k++) { /* flat, hierarchical, hierarchical with overlap (split hooks) */
        st = ep_moe_init(&x[k], &d, m, k ? EP_A2A_HIER : EP_A2A_FLAT);
        CHECK(st == UMOE_OK, "ep_moe_init: %s", umoe_err);
        ep_moe_set_overlap(x[k], k == 2);
        model_set_moe_ops(m, ep_moe_ops(x[k]));
        model_zero_grad(m);
        model_forward_backward(m, tok, B, T, 1.0f, &lk[k]);
        dist_sync_stats ss = {0};
        st = ep_moe_grad_sync(x[k], 4096, &ss);
        CHECK(st == UMOE_OK, "grad sync: %s", umoe_err);
        gk[k] = malloc(np * sizeof(float));
        memcpy(gk[k], model_grads(m), np * sizeof(float));
        model_set_moe_ops(m, NULL);
    }
    if (forced)
        for (int sl = 0; sl < lk[0].n_moe_layers; sl++)
            CHECK(lk[0].expert_load[(size_t)sl * s.E] == B * T, "forced routing: expert 0 got %d of %d",
                  lk[0].expert_load[(size_t)sl * s.E], B * T);
    CHECK_CLOSE(lk[0].loss, lref.loss, 1e-5, 0, "loss with EP (flat) vs local experts");
    CHECK_CLOSE(lk[0].lm_loss, lref.lm_loss, 1e-5, 0, "lm loss with EP vs local");
    double ed = rel_err(x[0], m, gk[0], gref, 0), ee = rel_err(x[0], m, gk[0], gref, 1);
    CHECK(ed < 1e-4, "dense grads: relative error %.3g", ed);
    CHECK(ee < 1e-4, "owned expert grads: relative error %.3g", ee);
    CHECK(nonzero_foreign(x[0], m, gk[0]) == 0, "experts owned elsewhere got grads");
    snprintf(name, sizeof name, "model_ep_matches_local_experts[R%d,E%d,rpn%d%s]", g_size, E, rpn,
             forced ? ",all-to-expert-0" : "");
    report(name);
    CHECK(lk[0].loss == lk[1].loss, "loss flat %.9g hier %.9g", lk[0].loss, lk[1].loss);
    CHECK(!memcmp(gk[0], gk[1], np * sizeof(float)), "grads differ between flat and hierarchical");
    ep_traffic tf, th;
    ep_moe_traffic(x[0], &tf);
    ep_moe_traffic(x[1], &th);
    CHECK(tf.calls == th.calls && tf.calls == (uint64_t)(4 * model_n_moe_layers(m)), "exchanges %llu %llu",
          (unsigned long long)tf.calls, (unsigned long long)th.calls);
    CHECK(th.row_bytes_inter <= tf.row_bytes_inter, "hierarchical sent more across nodes");
    snprintf(name, sizeof name, "model_ep_flat_hier_bit_identical[R%d,E%d,rpn%d%s]", g_size, E, rpn,
             forced ? ",all-to-expert-0" : "");
    report(name);
    CHECK(lk[2].loss == lk[1].loss, "loss overlap %.9g, no overlap %.9g", lk[2].loss, lk[1].loss);
    CHECK(!memcmp(gk[2], gk[1], np * sizeof(float)), "grads differ with overlap");
    snprintf(name, sizeof name, "model_ep_overlap_bit_identical[R%d,E%d,rpn%d%s]", g_size, E, rpn,
             forced ? ",all-to-expert-0" : "");
    report(name);
    for (int k = 0; k < 3; k++) {
        ep_moe_free(x[k]);
        free(gk[k]);
    }
    free(gref);
    model_free(m);
    dist_free(&d);
}

/* EP-group aux scope == micro-batch scope over the group's concatenated batch */
static void run_aux_scope(int E) {
    char name[160];
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    s.aux_scope = SPEC_AUX_EP_GROUP;
    dist_ctx d;
    dist_config dc = {E, s.E, 1};
    umoe_status st = dist_init(&d, &dc);
    CHECK(st == UMOE_OK, "dist_init: %s", umoe_err);
    if (st) { report("model_ep_aux_scope"); return; }
    umoe_model *m, *mc;
    CHECK(model_init(&m, &s, B, T, 5) == UMOE_OK, "%s", umoe_err);
    s.aux_scope = SPEC_AUX_MICRO;
    CHECK(model_init(&mc, &s, B * E, T, 5) == UMOE_OK, "%s", umoe_err);
    const int W = T + 1 + s.mtp;
    int32_t tok[B * (T + 2)], *cat = malloc(sizeof(int32_t) * (size_t)(B * E * W));
    rank_tokens(tok, &s, g_rank);
    for (int q = 0; q < E; q++) rank_tokens(cat + (size_t)q * B * W, &s, d.ep_group * E + q);
    ep_moe *x;
    CHECK(ep_moe_init(&x, &d, m, EP_A2A_FLAT) == UMOE_OK, "%s", umoe_err);
    CHECK(ep_moe_ops(x)->aux_reduce != NULL, "EP-group scope installs no aux reduction");
    model_set_moe_ops(m, ep_moe_ops(x));
    model_losses l, lc;
    model_forward(m, tok, B, T, &l);
    model_forward(mc, cat, B * E, T, &lc);
    CHECK(l.aux_loss > 0, "aux loss %g", l.aux_loss);
    /* each rank's aux loss uses the group's f with its own P: their mean over the group is the group's loss */
    double mean_aux = l.aux_loss / E;
    MPI_Allreduce(MPI_IN_PLACE, &mean_aux, 1, MPI_DOUBLE, MPI_SUM, d.ep);
    CHECK_CLOSE(mean_aux, lc.aux_loss, 1e-5, 0, "EP-group aux loss (mean over the group) vs concatenated batch");
    model_set_moe_ops(m, NULL);
    ep_moe_free(x);
    free(cat);
    model_free(m);
    model_free(mc);
    dist_free(&d);
    snprintf(name, sizeof name, "model_ep_group_aux_scope[R%d,E%d]", g_size, E);
    report(name);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    umoe_log_set_level(UMOE_LOG_WARN);
    for (int E = 1; E <= g_size; E++)
        if (g_size % E == 0) {
            run_ep(E, 0);
            run_ep(E, 1);
        }
    for (int E = 2; E <= g_size; E *= 2)
        if (g_size % E == 0) run_aux_scope(E);
    CHECK(umoe_alloc_current() == 0, "%zu bytes still allocated", umoe_alloc_current());
    report("model_ep_frees_everything");
    MPI_Finalize();
    return t_failed ? 1 : 0;
}
