/* test_dist_placement.c - dynamic expert placement under mpirun on the tiny test model: for each EP size that
 * divides the world, one forward/backward + grad sync with the default placement, then a re-placement (the
 * experts rotated across EP ranks, moved with dist_placement_move: params, the grads of that step as a stand-in
 * block, and rank-marked AdamW-like blocks), then the same step again. Asserts:
 *   - the moved blocks arrive exactly (params bit-equal on every rank that now owns them, markers of the old
 *     owner) and the bytes sent are exactly moves x expert floats x blocks x 4;
 *   - placement changes no math: the loss and dense grads are bit-identical, each owned expert's grads equal
 *     those its old owner computed (bit-identical when the expert-DP group has at most 2 ranks);
 *   - dist_placer_observe's imbalance equals max / mean of the received token-assignments recomputed from
 *     all ranks' loads, and dist_placer_step with a skewed load history applies a placement that lowers it.
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

static int slot_of_layer(const umoe_model *m, int layer) {
    for (int s = 0; s < model_n_moe_layers(m); s++)
        if (model_moe_layer_index(m, s) == layer) return s;
    return -1;
}

static void run_move(int E) {
    char name[160];
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    dist_ctx d;
    dist_config dc = {E, s.E, 0};
    dc.ranks_per_node = E >= 2 ? E / 2 : 1;
    if (dist_init(&d, &dc)) { CHECK(0, "dist_init: %s", umoe_err); report("placement_init"); return; }
    umoe_model *m;
    CHECK(model_init(&m, &s, B, T, 7) == UMOE_OK, "%s", umoe_err);
    size_t np = model_n_params(m);
    int nt, X = s.E, ns = model_n_moe_layers(m);
    const model_tensor *t = model_tensors(m, &nt);
    int32_t tok[B * (T + 2)];
    test_tokens(tok, B, T, s.mtp, s.V, 300 + g_rank);
    ep_moe *x;
    CHECK(ep_moe_init(&x, &d, m, EP_A2A_FLAT) == UMOE_OK, "%s", umoe_err);
    model_set_moe_ops(m, ep_moe_ops(x));
    model_losses l1, l2;
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &l1);
    CHECK(ep_moe_grad_sync(x, 1000, NULL) == UMOE_OK, "%s", umoe_err);
    float *g1 = malloc(np * sizeof(float)), *mk = malloc(np * sizeof(float));
    float *pcopy = malloc(np * sizeof(float));
    memcpy(g1, model_grads(m), np * sizeof(float));
    memcpy(pcopy, model_params(m), np * sizeof(float));
    for (size_t i = 0; i < np; i++) mk[i] = (float)(d.ep_rank + 1);
    /* rotate every slot's experts by one EP rank: expert e goes to (owner + 1) % E; every expert moves */
    int32_t old[X], nw[X];
    uint64_t sent_all = 0, want_sent = 0;
    float *blocks[3] = {model_params(m), g1, mk};
    for (int sl = 0; sl < ns; sl++) {
        memcpy(old, ep_moe_owner(x, sl), sizeof old);
        for (int e = 0; e < X; e++) nw[e] = (old[e] + 1) % E;
        uint64_t sent = 0;
        CHECK(dist_placement_move(&d, m, sl, old, nw, blocks, 3, &sent) == UMOE_OK, "%s", umoe_err);
        sent_all += sent;
        size_t per = 0;
        for (int i = 0; i < nt; i++)
            if (t[i].layer == model_moe_layer_index(m, sl) && t[i].expert == 0) per += t[i].numel;
        for (int e = 0; e < X; e++)
            if (E > 1 && old[e] == d.ep_rank) want_sent += per * 3 * sizeof(float);
        CHECK(ep_moe_set_placement(x, sl, nw) == UMOE_OK, "%s", umoe_err);
    }
    CHECK(sent_all == want_sent, "sent %llu bytes, want %llu", (unsigned long long)sent_all,
          (unsigned long long)want_sent);
    size_t bad_marker = 0;
    for (int i = 0; i < nt; i++) {
        int sl = t[i].expert >= 0 ? slot_of_layer(m, t[i].layer) : -1;
        if (sl < 0 || !ep_moe_is_local(x, sl, t[i].expert)) continue;
        int from = E > 1 ? (d.ep_rank + E - 1) % E : 0; /* the old owner */
        for (size_t k = t[i].offset; k < t[i].offset + t[i].numel; k++) bad_marker += mk[k] != (float)(from + 1);
    }
    CHECK(bad_marker == 0, "%zu moved values do not carry the old owner's marker", bad_marker);
    CHECK(!memcmp(pcopy, model_params(m), np * sizeof(float)), "params changed by the move (all ranks start equal)");
    snprintf(name, sizeof name, "placement_move_exact_bytes[R%d,E%d]", g_size, E);
    report(name);

    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &l2);
    CHECK(ep_moe_grad_sync(x, 1000, NULL) == UMOE_OK, "%s", umoe_err);
    CHECK(l1.loss == l2.loss, "loss %.9g before, %.9g after re-placement", l1.loss, l2.loss);
    const float *g2 = model_grads(m);
    size_t bad_dense = 0, bad_exp = 0;
    double maxrel = 0;
    for (int i = 0; i < nt; i++) {
        int sl = t[i].expert >= 0 ? slot_of_layer(m, t[i].layer) : -1;
        if (t[i].expert >= 0 && (sl < 0 || !ep_moe_is_local(x, sl, t[i].expert))) continue;
        for (size_t k = t[i].offset; k < t[i].offset + t[i].numel; k++) {
            if (g1[k] == g2[k]) continue;
            if (t[i].expert < 0) bad_dense++;
            else bad_exp++;
            double r = fabs((double)g1[k] - g2[k]) / (fabs((double)g1[k]) + 1e-30);
            maxrel = r > maxrel ? r : maxrel;
        }
    }
    CHECK(bad_dense == 0, "%zu dense grads differ after re-placement", bad_dense);
    if (d.n_ep_groups <= 2) CHECK(bad_exp == 0, "%zu expert grads differ after re-placement", bad_exp);
    else CHECK(maxrel < 1e-5, "expert grads differ by %.3g (relative)", maxrel);
    snprintf(name, sizeof name, "placement_changes_no_math[R%d,E%d]", g_size, E);
    report(name);

    /* the controller: imbalance from observe vs a recount from all ranks' loads; a skewed history re-places */
    dist_placer *p;
    dist_placement_config pc = {1, 4, 0.9, 0.08, 1e12};
    CHECK(dist_placer_init(&p, &d, x, m, &pc) == UMOE_OK, "%s", umoe_err);
    double load[ns * X], imb[ns], all[g_size * ns * X];
    for (int sl = 0; sl < ns; sl++)
        for (int e = 0; e < X; e++) load[sl * X + e] = (e < X / 2 ? 10.0 * (e + 1) : 1.0) + g_rank;
    CHECK(dist_placer_observe(p, load, 1e-3, imb) == UMOE_OK, "%s", umoe_err);
    MPI_Allgather(load, ns * X, MPI_DOUBLE, all, ns * X, MPI_DOUBLE, MPI_COMM_WORLD);
    for (int sl = 0; sl < ns; sl++) {
        const int32_t *own = ep_moe_owner(x, sl);
        double mx = 0, sum = 0;
        for (int r = 0; r < g_size; r++) {
            int grp = r / E, er = r % E;
            double rec = 0;
            for (int q = grp * E; q < grp * E + E; q++)
                for (int e = 0; e < X; e++)
                    if (own[e] == er) rec += all[(q * ns + sl) * X + e];
            mx = rec > mx ? rec : mx;
            sum += rec;
        }
        CHECK_CLOSE(imb[sl], mx / (sum / g_size), 1e-12, 0, "observed imbalance");
    }
    float *mv[2] = {model_params(m), mk};
    CHECK(dist_placer_step(p, 1, mv, 2) == UMOE_OK, "%s", umoe_err);
    const dist_placer_stats *ps = dist_placer_stats_get(p);
    double imb2[ns];
    CHECK(dist_placer_observe(p, load, 1e-3, imb2) == UMOE_OK, "%s", umoe_err);
    if (E > 1) {
        CHECK(ps->replacements == (uint64_t)ns, "%llu re-placements, want %d", (unsigned long long)ps->replacements, ns);
        for (int sl = 0; sl < ns; sl++) CHECK(imb2[sl] < imb[sl], "imbalance %g -> %g", imb[sl], imb2[sl]);
    } else {
        CHECK(ps->replacements == 0, "EP 1 cannot re-place");
    }
    snprintf(name, sizeof name, "placement_controller_lowers_imbalance[R%d,E%d]", g_size, E);
    report(name);
    dist_placer_free(p);
    model_set_moe_ops(m, NULL);
    ep_moe_free(x);
    free(g1);
    free(mk);
    free(pcopy);
    model_free(m);
    dist_free(&d);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    umoe_log_set_level(UMOE_LOG_WARN);
    for (int E = 1; E <= g_size; E++)
        if (g_size % E == 0 && 8 % E == 0) run_move(E);
    CHECK(umoe_alloc_current() == 0, "%zu bytes still allocated", umoe_alloc_current());
    report("placement_frees_everything");
    MPI_Finalize();
    return t_failed ? 1 : 0;
}
