/* test_dist_placement.c - the arithmetic of dynamic expert placement (src/dist/placement.c) on hand-computed
 * cases: the windowed EMA prediction, LPT packing with the per-rank cap, relabelling to the fewest moves, CV and
 * the apply/keep decision (CV drop threshold and gain vs move cost). No MPI. */
#include <string.h>
#include "test.h"
#include "umoe/dist.h"

static void test_lpt_hand_case(void) {
    /* loads 10 9 8 1 1 1 on 2 ranks, cap 3. LPT: e0 -> r0 (10), e1 -> r1 (9), e2 -> r1 (17), e3 -> r0 (11),
     * e4 -> r0 (12, now full), e5 -> r1 (18). Rank loads 12 / 18, the optimum under the cap (any 3-set with
     * 10 and 9 or 8 is >= 19; {10,1,1} leaves 18). */
    double load[6] = {10, 9, 8, 1, 1, 1};
    int32_t own[6];
    dist_placement_lpt(own, load, 6, 2);
    int32_t want[6] = {0, 1, 1, 0, 0, 1};
    for (int e = 0; e < 6; e++) CHECK(own[e] == want[e], "expert %d on rank %d, want %d", e, own[e], want[e]);
    double rl[2];
    dist_placement_rank_loads(rl, own, load, 6, 2);
    CHECK(rl[0] == 12 && rl[1] == 18, "rank loads %g %g, want 12 18", rl[0], rl[1]);
}

static void test_lpt_ties_and_cap(void) {
    /* equal loads: decreasing order is by id, each to the least-loaded rank, ties to the lower rank: round robin */
    double load[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    int32_t own[8];
    dist_placement_lpt(own, load, 8, 4);
    for (int e = 0; e < 8; e++) CHECK(own[e] == e % 4, "expert %d on rank %d, want %d", e, own[e], e % 4);
    /* one hot expert: the cap (2 per rank) still holds, the hot one is alone with the lightest */
    double hot[8] = {100, 1, 2, 3, 4, 5, 6, 7};
    dist_placement_lpt(own, hot, 8, 4);
    int cnt[4] = {0};
    for (int e = 0; e < 8; e++) cnt[own[e]]++;
    for (int r = 0; r < 4; r++) CHECK(cnt[r] == 2, "rank %d holds %d experts, want 2", r, cnt[r]);
    /* order 100(e0) 7 6 5 4 3 2 1: e0->r0, e7->r1, e6->r2, e5->r3, e4->r3(5<6<7? r3=5 least) ... hand:
     * after 4: r0 100, r1 7, r2 6, r3 5; e4 (4) -> r3 (9); e3 (3) -> r2 (9); e2 (2) -> r1 (9); e1 (1) -> r0 */
    int32_t want[8] = {0, 0, 1, 2, 3, 3, 2, 1};
    for (int e = 0; e < 8; e++) CHECK(own[e] == want[e], "expert %d on rank %d, want %d", e, own[e], want[e]);
}

static void test_relabel_fewest_moves(void) {
    /* the hand case's packing against the default blocks {0,1,2} {3,4,5}: bin 0 = {0,3,4} overlaps rank 1 in 2,
     * bin 1 = {1,2,5} overlaps rank 0 in 2: bin 0 -> rank 1, bin 1 -> rank 0; only e0 and e5 move */
    int32_t own[6] = {0, 1, 1, 0, 0, 1}, old[6] = {0, 0, 0, 1, 1, 1};
    int moves = dist_placement_relabel(own, old, 6, 2);
    int32_t want[6] = {1, 0, 0, 1, 1, 0};
    CHECK(moves == 2, "moves %d, want 2", moves);
    for (int e = 0; e < 6; e++) CHECK(own[e] == want[e], "expert %d on rank %d, want %d", e, own[e], want[e]);
    /* a packing equal to the old one up to renaming moves nothing */
    int32_t same[6] = {1, 1, 1, 0, 0, 0};
    CHECK(dist_placement_relabel(same, old, 6, 2) == 0, "a renamed identical packing must not move");
}

static void test_cv_and_decision(void) {
    double v[2] = {27, 3};
    CHECK_CLOSE(dist_cv(v, 2), 0.8, 1e-12, 0, "CV of 27, 3 (mean 15, std 12)");
    CHECK_CLOSE(dist_max_over_mean(v, 2), 1.8, 1e-12, 0, "max/mean of 27, 3");
    double zero[3] = {0, 0, 0};
    CHECK(dist_cv(zero, 3) == 0 && dist_max_over_mean(zero, 3) == 0, "all-zero loads");
    double load[6] = {10, 9, 8, 1, 1, 1};
    int32_t old[6] = {0, 0, 0, 1, 1, 1}, nw[6];
    /* 2 moves x 100 bytes; gain (27 - 18) x 1e-3 s x 10 steps = 0.09 s; cost 200 B / 1e4 B/s = 0.02 s */
    dist_placement_policy pol = {0.08, 1e-3, 1e4, 100, 10};
    dist_placement_decision dec;
    dist_placement_decide(nw, old, load, 6, 2, &pol, &dec);
    CHECK(dec.apply == 1, "should apply");
    CHECK(dec.moves == 2 && dec.bytes == 200, "moves %d bytes %llu", dec.moves, (unsigned long long)dec.bytes);
    CHECK_CLOSE(dec.cv_before, 0.8, 1e-12, 0, "CV before");
    CHECK_CLOSE(dec.cv_after, 0.2, 1e-12, 0, "CV after (18, 12: std 3, mean 15)");
    CHECK_CLOSE(dec.imb_before, 1.8, 1e-12, 0, "imbalance before");
    CHECK_CLOSE(dec.imb_after, 1.2, 1e-12, 0, "imbalance after");
    CHECK_CLOSE(dec.gain_s, 0.09, 1e-12, 0, "gain");
    CHECK_CLOSE(dec.cost_s, 0.02, 1e-12, 0, "cost");
    /* the same with a slow link: cost 200 / 1e3 = 0.2 s > gain: kept */
    pol.bytes_per_sec = 1e3;
    dist_placement_decide(nw, old, load, 6, 2, &pol, &dec);
    CHECK(dec.apply == 0, "the move costs more than it gains: keep");
    /* a small CV drop is kept: loads 7 4 4 4 4 3, blocks (15, 11): CV 2/13; LPT 7->r0, 4->r1, 4->r1 (8),
     * 4->r0 (11), 4->r1 (12), 3->r0 (14): (14, 12), CV 1/13; the drop 1/13 = 0.077 < 0.08 */
    double mild[6] = {7, 4, 4, 4, 4, 3};
    pol.bytes_per_sec = 1e9;
    dist_placement_decide(nw, old, mild, 6, 2, &pol, &dec);
    CHECK_CLOSE(dec.cv_before, 2.0 / 13, 1e-12, 0, "CV before of 15, 11");
    CHECK_CLOSE(dec.cv_after, 1.0 / 13, 1e-12, 0, "CV after of 14, 12");
    CHECK(dec.apply == 0, "a CV drop of %.4f < 0.08 must be kept", dec.cv_before - dec.cv_after);
    pol.min_cv_drop = 0.07;
    dist_placement_decide(nw, old, mild, 6, 2, &pol, &dec);
    CHECK(dec.apply == 1, "with a 0.07 threshold the same drop applies");
}

static void test_load_window_ema(void) {
    dist_load_window w;
    CHECK(dist_load_window_init(&w, 1, 2, 3, 0.9) == UMOE_OK, "init");
    double pred[2];
    double a[2] = {10, 0}, b[2] = {0, 10};
    dist_load_window_push(&w, a);
    dist_load_window_predict(&w, 0, pred);
    CHECK(pred[0] == 10 && pred[1] == 0, "one step predicts itself: %g %g", pred[0], pred[1]);
    dist_load_window_push(&w, b); /* newest b weight 1, a weight 0.9: pred = (0.9*10, 10) / 1.9 */
    dist_load_window_predict(&w, 0, pred);
    CHECK_CLOSE(pred[0], 9.0 / 1.9, 1e-12, 0, "EMA of expert 0");
    CHECK_CLOSE(pred[1], 10.0 / 1.9, 1e-12, 0, "EMA of expert 1");
    /* after 3 more b's the window (3) holds only b: a has left it */
    for (int i = 0; i < 3; i++) dist_load_window_push(&w, b);
    dist_load_window_predict(&w, 0, pred);
    CHECK(pred[0] == 0 && pred[1] == 10, "window of 3 forgets older steps: %g %g", pred[0], pred[1]);
    dist_load_window_free(&w);
    CHECK(dist_load_window_init(&w, 1, 2, 0, 0.9) == UMOE_EINPUT, "window 0 refused");
    CHECK(dist_load_window_init(&w, 1, 2, 4, 1.0) == UMOE_EINPUT, "theta 1 refused");
}

int main(void) {
    RUN(test_lpt_hand_case);
    RUN(test_lpt_ties_and_cap);
    RUN(test_relabel_fewest_moves);
    RUN(test_cv_and_decision);
    RUN(test_load_window_ema);
    TEST_MAIN_END();
}
