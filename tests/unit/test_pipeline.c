/* test_pipeline.c - the pipeline event simulation (src/sim/pipeline_*.c) against the closed forms of the
 * papers (1F1B, Narayanan's interleaved bubble, ZB-H1's bubble, DualPipe's Table-2 bubble and activation
 * count), a 2-stage p2p case worked by hand, per-device in-flight peaks, and a schedule-independent check
 * that every recorded op starts exactly when its device and its inputs allow. */
#include <string.h>
#include "test.h"
#include "umoe/sim.h"

#define MAXV 64

static void fill(double *x, int n, double v) { for (int i = 0; i < n; i++) x[i] = v; }

/* bubble time = bubble_frac * makespan (the idle time of the busiest device) */
static double bubble_time(const sim_pipeline_result *r) { return r->bubble_frac * r->makespan; }

static void test_1f1b_uniform_exact(void) {
    int pps[] = {1, 2, 4, 8}, extra[] = {1, 2, 3, 4, 16};
    double f = 1.25, b = 2.5;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 5; j++) {
            int pp = pps[i], n = extra[j] * pp + (j == 4 ? 1 : 0);
            double F[MAXV], B[MAXV];
            fill(F, pp, f);
            fill(B, pp, b);
            sim_pipeline_result r;
            CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, pp, 1, n, F, B, NULL, 0.0, 0, &r) == UMOE_OK, "%s", umoe_err);
            CHECK_CLOSE(r.makespan, (n + pp - 1) * (f + b), 1e-12, 0, "1F1B makespan (n+p-1)(f+b)");
            CHECK_CLOSE(bubble_time(&r), (pp - 1) * (f + b), 1e-9, 1e-12, "1F1B bubble (p-1)(f+b)");
        }
    /* fewer micro-batches than stages still follows the same critical path */
    double F[4] = {1, 1, 1, 1}, B[4] = {2, 2, 2, 2};
    sim_pipeline_result r;
    CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, 4, 1, 2, F, B, NULL, 0.0, 0, &r) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(r.makespan, 5 * 3.0, 1e-12, 0, "1F1B n < p");
}

/* Narayanan et al. 2021 Sec. 2.2.2: bubble = (p-1)(t_f + t_b)/v with t_f, t_b a whole stage's times. */
static void test_interleaved_narayanan(void) {
    struct { int pp, vpp, n; } c[] = {{4, 2, 4}, {4, 2, 8}, {4, 2, 16}, {4, 4, 8}, {8, 3, 16}, {2, 2, 6}, {16, 2, 64}};
    double tf = 1.2, tb = 2.4;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int pp = c[i].pp, v = c[i].vpp, n = c[i].n;
        double F[MAXV], B[MAXV];
        fill(F, pp * v, tf / v);
        fill(B, pp * v, tb / v);
        sim_pipeline_result r;
        CHECK(sim_pipeline_run(SPEC_SCHED_INTERLEAVED, pp, v, n, F, B, NULL, 0.0, 0, &r) == UMOE_OK, "%s", umoe_err);
        double bub = (pp - 1) * (tf + tb) / v;
        CHECK_CLOSE(r.makespan, n * (tf + tb) + bub, 1e-9, 0, "interleaved makespan");
        CHECK_CLOSE(bubble_time(&r), bub, 1e-9, 1e-12, "interleaved bubble (p-1)(tf+tb)/v");
        /* and it is smaller than 1F1B's by the factor v */
        sim_pipeline_result r1;
        double F1[MAXV], B1[MAXV];
        fill(F1, pp, tf);
        fill(B1, pp, tb);
        CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, pp, 1, n, F1, B1, NULL, 0.0, 0, &r1) == UMOE_OK, "%s", umoe_err);
        CHECK_CLOSE(bubble_time(&r1) / bubble_time(&r), (double)v, 1e-9, 0, "1F1B bubble / interleaved bubble");
    }
}

/* Qi et al. 2023 Sec. 3.1: ZB-H1 bubble = (p-1)(T_F + T_B - T_W), T_B = backward for the input only
 * (= DeepSeek-V3 Table 2's (PP-1)(F + B - 2W) with B the whole backward). Holds when T_W <= T_F, T_B. */
static void test_zb1p_paper(void) {
    double cases[][3] = {{1, 1, 1}, {1, 1.5, 0.7}, {1.5, 2.0, 0.4}};
    int pps[] = {2, 4, 8};
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 3; i++) {
            int pp = pps[i], n = 3 * pp;
            double f = cases[c][0], b = cases[c][1], w = cases[c][2];
            double F[MAXV], B[MAXV], W[MAXV];
            fill(F, pp, f);
            fill(B, pp, b);
            fill(W, pp, w);
            sim_pipeline_result z, o;
            CHECK(sim_pipeline_run(SPEC_SCHED_ZB1P, pp, 1, n, F, B, W, 0.0, 0, &z) == UMOE_OK, "%s", umoe_err);
            CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, pp, 1, n, F, B, W, 0.0, 0, &o) == UMOE_OK, "%s", umoe_err);
            CHECK_CLOSE(bubble_time(&z), (pp - 1) * (f + b - w), 1e-9, 1e-12, "ZB-H1 bubble (p-1)(f+b-w)");
            CHECK_CLOSE(bubble_time(&o), (pp - 1) * (f + b + w), 1e-9, 1e-12, "1F1B bubble with W inside B");
            CHECK(z.makespan < o.makespan - 1e-9, "ZB-1P %g not faster than 1F1B %g", z.makespan, o.makespan);
            for (int d = 0; d < pp; d++)
                CHECK(z.peak_inflight[d] == o.peak_inflight[d], "ZB-1P in-flight %d != 1F1B %d on device %d",
                      z.peak_inflight[d], o.peak_inflight[d], d);
        }
    /* without a W cost, ZB-1P is 1F1B */
    double F[4] = {1, 2, 1, 3}, B[4] = {2, 2, 3, 4};
    sim_pipeline_result z, o;
    CHECK(sim_pipeline_run(SPEC_SCHED_ZB1P, 4, 1, 8, F, B, NULL, 0.0, 0, &z) == UMOE_OK, "%s", umoe_err);
    CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, 4, 1, 8, F, B, NULL, 0.0, 0, &o) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(z.makespan, o.makespan, 1e-12, 0, "ZB-1P with w == NULL equals 1F1B");
}

/* DeepSeek-V3 report Table 2: DualPipe bubble (PP/2-1)(F&B + B - 3W) and activations PP+1 micro-batch
 * stages per device. With F = B = W (B the backward for the input) and F&B = F + B + W (the overlap hides
 * communication, not compute) the bubble is (PP/2-1) F. */
static void test_dualpipe_table2(void) {
    int pps[] = {2, 4, 8}, ns[] = {2, 3, 5};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int pp = pps[i], n = ns[j] * pp + (ns[j] * pp) % 2;
            double f = 0.75, F[MAXV], B[MAXV], W[MAXV];
            fill(F, pp, f);
            fill(B, pp, f);
            fill(W, pp, f);
            sim_pipeline_result d, z, o;
            CHECK(sim_pipeline_run(SPEC_SCHED_DUALPIPE, pp, 1, n, F, B, W, 0.0, 0, &d) == UMOE_OK, "%s", umoe_err);
            CHECK(sim_pipeline_run(SPEC_SCHED_ZB1P, pp, 1, n, F, B, W, 0.0, 0, &z) == UMOE_OK, "%s", umoe_err);
            CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, pp, 1, n, F, B, W, 0.0, 0, &o) == UMOE_OK, "%s", umoe_err);
            CHECK_CLOSE(bubble_time(&d), (pp / 2 - 1) * f, 1e-9, 1e-12, "DualPipe bubble (PP/2-1)F");
            CHECK_CLOSE(d.makespan, n * 3 * f + (pp / 2 - 1) * f, 1e-9, 0, "DualPipe makespan");
            if (pp > 2) CHECK(d.makespan < z.makespan && z.makespan < o.makespan, "DualPipe %g < ZB %g < 1F1B %g",
                              d.makespan, z.makespan, o.makespan);
            for (int k = 0; k < pp; k++)
                CHECK(d.peak_inflight[k] == pp + 1, "DualPipe in-flight on device %d = %d, want PP+1 = %d", k,
                      d.peak_inflight[k], pp + 1);
        }
}

/* DualPipe's program on device 0 of pp = 4, n = 8, from the eight phases (src/sim/pipeline_dualpipe.c;
 * h = 0, H = 2, 4 micro-batches per direction, direction 1 carries mb 4..7), written out by hand; device 3
 * is its mirror (directions swapped). Notation: kind, direction, micro-batch. */
static void test_dualpipe_order(void) {
    const char *want[2] = {
        "F0.0 F0.1 F0.2 F1.4 B1.4 W1.4 F1.5 F0.3 B1.5 W1.5 F1.6 B0.0 W0.0 B1.6 W1.6 F1.7 B0.1 W0.1 B1.7 W1.7 "
        "B0.2 W0.2 B0.3 W0.3 ",
        "F1.4 F1.5 F1.6 F0.0 B0.0 W0.0 F0.1 F1.7 B0.1 W0.1 F0.2 B1.4 W1.4 B0.2 W0.2 F0.3 B1.5 W1.5 B0.3 W0.3 "
        "B1.6 W1.6 B1.7 W1.7 "};
    double F[4] = {1, 1, 1, 1};
    sim_pipeline_result r;
    CHECK(sim_pipeline_run(SPEC_SCHED_DUALPIPE, 4, 1, 8, F, F, F, 0.0, 1, &r) == UMOE_OK, "%s", umoe_err);
    for (int k = 0; k < 2; k++) {
        int dev = k == 0 ? 0 : 3;
        char got[512] = "";
        size_t len = 0;
        for (int i = 0; i < r.n_events; i++)
            if (r.events[i].device == dev && len + 16 < sizeof got)
                len += (size_t)snprintf(got + len, sizeof got - len, "%c%d.%d ", r.events[i].kind, r.events[i].chunk,
                                        r.events[i].mb);
        CHECK(strcmp(got, want[k]) == 0, "device %d program\n   got  %s\n   want %s", dev, got, want[k]);
    }
    sim_pipeline_free(&r);
}

/* DualPipe pp = 2, n = 4, f = b = w = 1, p2p = 2, worked by hand (docs/pipeline.md has the table). Both
 * devices are middle ranks; the fused forward-backward pair F*(mb3 on d0 | mb1 on d1) must wait for its
 * backward's input (6 + 2 = 8) although its forward input is there at 7; makespan 16 (15 if the pair did
 * not wait). */
static void test_dualpipe_by_hand(void) {
    double one[2] = {1, 1};
    sim_pipeline_result r;
    CHECK(sim_pipeline_run(SPEC_SCHED_DUALPIPE, 2, 1, 4, one, one, one, 2.0, 1, &r) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(r.makespan, 16.0, 1e-12, 0, "DualPipe pp=2 makespan by hand");
    /* device 0: F0 F2' F1 B2' W2' F3'* B0 W0 B3' W3' B1 W1 */
    double t0_d0[12] = {0, 3, 4, 5, 6, 8, 9, 10, 11, 12, 14, 15};
    int k = 0;
    for (int i = 0; i < r.n_events; i++)
        if (r.events[i].device == 0 && k < 12) {
            CHECK_CLOSE(r.events[i].t0, t0_d0[k], 1e-12, 0, "device 0 op start");
            k++;
        }
    CHECK(k == 12, "device 0 ops %d", k);
    sim_pipeline_free(&r);
}

static void test_peak_inflight_1f1b(void) {
    int ns[] = {1, 2, 3, 8, 20};
    for (int j = 0; j < 5; j++) {
        int pp = 4, n = ns[j];
        double F[4] = {1, 1, 1, 1}, B[4] = {2, 2, 2, 2};
        sim_pipeline_result r;
        CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, pp, 1, n, F, B, NULL, 0.0, 0, &r) == UMOE_OK, "%s", umoe_err);
        for (int d = 0; d < pp; d++) {
            int want = pp - d < n ? pp - d : n;
            CHECK(r.peak_inflight[d] == want, "n=%d device %d: in-flight %d, want %d", n, d, r.peak_inflight[d], want);
        }
    }
    /* Megatron interleaved: device d holds its warm-up forwards (pp-1-d)*2 + (vpp-1)*pp plus one chunk */
    double F[8], B[8];
    fill(F, 8, 0.5);
    fill(B, 8, 1.0);
    sim_pipeline_result r;
    CHECK(sim_pipeline_run(SPEC_SCHED_INTERLEAVED, 4, 2, 8, F, B, NULL, 0.0, 0, &r) == UMOE_OK, "%s", umoe_err);
    for (int d = 0; d < 4; d++)
        CHECK(r.peak_inflight[d] == (4 - 1 - d) * 2 + 4 + 1, "interleaved device %d in-flight %d", d,
              r.peak_inflight[d]);
}

/* Last stage heavier (LM head): it is the bottleneck, so 1F1B's makespan is the fill of the earlier
 * forwards, the last stage's n (f + b), and the drain of the earlier backwards; every schedule is at least
 * the busiest device's work. */
static void test_nonuniform_last_heavy(void) {
    int pp = 4, n = 8;
    double F[4] = {1, 1, 1, 2.5}, B[4] = {2, 2, 2, 5}, W[4] = {0.5, 0.5, 0.5, 1.5};
    sim_pipeline_result r;
    CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, pp, 1, n, F, B, NULL, 0.0, 0, &r) == UMOE_OK, "%s", umoe_err);
    double heavy = n * (F[3] + B[3]);
    CHECK(r.makespan >= heavy, "makespan %g < heaviest stage work %g", r.makespan, heavy);
    CHECK_CLOSE(r.makespan, 3 * 1.0 + heavy + 3 * 2.0, 1e-12, 0, "1F1B fill + bottleneck + drain");
    CHECK_CLOSE(r.bubble_frac, (r.makespan - heavy) / r.makespan, 1e-12, 0, "bubble of the busiest device");
    spec_schedule s[] = {SPEC_SCHED_1F1B, SPEC_SCHED_ZB1P, SPEC_SCHED_DUALPIPE};
    for (int i = 0; i < 3; i++) {
        CHECK(sim_pipeline_run(s[i], pp, 1, n, F, B, W, 0.1, 0, &r) == UMOE_OK, "%s", umoe_err);
        double work = s[i] == SPEC_SCHED_DUALPIPE ? n / 2 * (F[0] + B[0] + W[0] + F[3] + B[3] + W[3])
                                                  : n * (F[3] + B[3] + W[3]);
        CHECK(r.makespan >= work - 1e-12, "schedule %d: makespan %g < busiest device work %g", i, r.makespan, work);
        CHECK_CLOSE(r.bubble_frac, (r.makespan - work) / r.makespan, 1e-9, 1e-12, "bubble_frac definition");
    }
}

/* 2 stages, 2 micro-batches, f = 1, b = 2, p2p = 0.5, worked by hand:
 *   d0: F0 [0,1] F1 [1,2]            d1: F0 [1.5,2.5] B0 [2.5,4.5] F1 [4.5,5.5] B1 [5.5,7.5]
 *   d0: B0 [4.5+0.5, 7] B1 [7.5+0.5, 10]  -> makespan 10 (9 without p2p: one hop each way on the path). */
static void test_p2p_two_stage_by_hand(void) {
    double F[2] = {1, 1}, B[2] = {2, 2};
    sim_pipeline_result r0, r;
    CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, 2, 1, 2, F, B, NULL, 0.0, 0, &r0) == UMOE_OK, "%s", umoe_err);
    CHECK(sim_pipeline_run(SPEC_SCHED_1F1B, 2, 1, 2, F, B, NULL, 0.5, 1, &r) == UMOE_OK, "%s", umoe_err);
    CHECK_CLOSE(r0.makespan, 9.0, 1e-12, 0, "no p2p");
    CHECK_CLOSE(r.makespan, 10.0, 1e-12, 0, "with p2p 0.5");
    CHECK(r.n_events == 8, "events %d", r.n_events);
    double want[2][4][2] = {{{0, 1}, {1, 2}, {5, 7}, {8, 10}}, {{1.5, 2.5}, {2.5, 4.5}, {4.5, 5.5}, {5.5, 7.5}}};
    int k[2] = {0, 0};
    for (int i = 0; i < r.n_events; i++) {
        const sim_event *e = &r.events[i];
        int d = e->device;
        CHECK(d == 0 || d == 1, "device %d", d);
        if (d < 0 || d > 1 || k[d] >= 4) continue;
        CHECK_CLOSE(e->t0, want[d][k[d]][0], 1e-12, 0, "op start");
        CHECK_CLOSE(e->t1, want[d][k[d]][1], 1e-12, 0, "op end");
        k[d]++;
    }
    sim_pipeline_free(&r);
    CHECK(r.events == NULL && r.n_events == 0, "free resets");
}

static void expect_einput(umoe_status st, const char *must_contain) {
    CHECK(st == UMOE_EINPUT, "status %d", (int)st);
    CHECK(strstr(umoe_err, must_contain) != NULL, "message '%s' lacks '%s'", umoe_err, must_contain);
}

static void test_errors(void) {
    double F[16], B[16];
    fill(F, 16, 1);
    fill(B, 16, 1);
    sim_pipeline_result r;
    size_t before = umoe_alloc_current();
    expect_einput(sim_pipeline_run(SPEC_SCHED_1F1B, 4, 1, 0, F, B, NULL, 0, 1, &r), "0 micro-batches");
    expect_einput(sim_pipeline_run(SPEC_SCHED_1F1B, 0, 1, 4, F, B, NULL, 0, 1, &r), "pp = 0");
    expect_einput(sim_pipeline_run(SPEC_SCHED_INTERLEAVED, 4, 2, 6, F, B, NULL, 0, 1, &r), "multiple of pp");
    expect_einput(sim_pipeline_run(SPEC_SCHED_1F1B, 4, 2, 8, F, B, NULL, 0, 1, &r), "vpp = 2");
    expect_einput(sim_pipeline_run(SPEC_SCHED_DUALPIPE, 3, 1, 8, F, B, NULL, 0, 1, &r), "even pp");
    expect_einput(sim_pipeline_run(SPEC_SCHED_DUALPIPE, 4, 1, 6, F, B, NULL, 0, 1, &r), ">= 2*pp");
    expect_einput(sim_pipeline_run(SPEC_SCHED_1F1B, 4, 1, 4, F, B, NULL, -1, 1, &r), "p2p");
    F[2] = -1;
    expect_einput(sim_pipeline_run(SPEC_SCHED_1F1B, 4, 1, 4, F, B, NULL, 0, 1, &r), "virtual stage 2");
    F[2] = NAN;
    expect_einput(sim_pipeline_run(SPEC_SCHED_1F1B, 4, 1, 4, F, B, NULL, 0, 1, &r), "virtual stage 2");
    CHECK(umoe_alloc_current() == before, "errors leak %zu bytes", umoe_alloc_current() - before);
}

/* Virtual stage of an event, and the neighbours, for the layout of pipeline_ops.h. */
static int ev_v(spec_schedule s, int pp, const sim_event *e) {
    if (s != SPEC_SCHED_DUALPIPE) return e->chunk * pp + e->device;
    return e->chunk * pp + (e->chunk == 0 ? e->device : pp - 1 - e->device);
}
static int ev_dev(spec_schedule s, int pp, int v) {
    if (s != SPEC_SCHED_DUALPIPE) return v % pp;
    return v < pp ? v : pp - 1 - (v - pp);
}

/* For every schedule: each (v, mb) has one F, one B (and one W when split); ops on a device never overlap;
 * every op starts exactly at max(device free, inputs ready) (DualPipe's fused F may wait longer, for its B's
 * input); makespan and bubble_frac agree with the events. */
static void test_events_valid(void) {
    struct { spec_schedule s; int pp, vpp, n, use_w; } c[] = {
        {SPEC_SCHED_1F1B, 4, 1, 7, 1}, {SPEC_SCHED_INTERLEAVED, 4, 3, 8, 0}, {SPEC_SCHED_ZB1P, 5, 1, 9, 1},
        {SPEC_SCHED_DUALPIPE, 6, 1, 14, 1}, {SPEC_SCHED_DUALPIPE, 4, 1, 8, 0}};
    double p2p = 0.05;
    for (size_t ci = 0; ci < sizeof c / sizeof c[0]; ci++) {
        spec_schedule s = c[ci].s;
        int pp = c[ci].pp, V = s == SPEC_SCHED_DUALPIPE ? 2 * pp : pp * c[ci].vpp, n = c[ci].n, nc = pp * c[ci].vpp;
        double F[MAXV], B[MAXV], W[MAXV];
        for (int i = 0; i < nc; i++) {
            F[i] = 0.3 + 0.1 * (i % 3);
            B[i] = 0.5 + 0.2 * (i % 2);
            W[i] = 0.2 + 0.05 * (i % 4);
        }
        int split = c[ci].use_w && (s == SPEC_SCHED_ZB1P || s == SPEC_SCHED_DUALPIPE);
        sim_pipeline_result r;
        CHECK(sim_pipeline_run(s, pp, c[ci].vpp, n, F, B, c[ci].use_w ? W : NULL, p2p, 1, &r) == UMOE_OK, "%s",
              umoe_err);
        static double t1[3][MAXV][64];
        static int cnt[3][MAXV][64];
        memset(cnt, 0, sizeof cnt);
        for (int i = 0; i < r.n_events; i++) {
            const sim_event *e = &r.events[i];
            int k = e->kind == 'F' ? 0 : e->kind == 'B' ? 1 : 2, v = ev_v(s, pp, e);
            CHECK(v >= 0 && v < V && e->mb >= 0 && e->mb < n, "event out of range v=%d mb=%d", v, e->mb);
            if (v < 0 || v >= V || e->mb < 0 || e->mb >= n) continue;
            cnt[k][v][e->mb]++;
            t1[k][v][e->mb] = e->t1;
        }
        int nmb_v = s == SPEC_SCHED_DUALPIPE ? n / 2 : n; /* DualPipe: each direction carries half */
        for (int v = 0; v < V; v++)
            for (int m = 0; m < n; m++) {
                int present = s != SPEC_SCHED_DUALPIPE || (m / nmb_v) == v / pp;
                CHECK(cnt[0][v][m] == present && cnt[1][v][m] == present && cnt[2][v][m] == (present && split),
                      "case %zu: v=%d mb=%d counts F%d B%d W%d", ci, v, m, cnt[0][v][m], cnt[1][v][m], cnt[2][v][m]);
            }
        double busy[64] = {0}, free_at[64] = {0}, mk = 0;
        for (int i = 0; i < r.n_events; i++) { /* events are stored device after device, in program order */
            const sim_event *e = &r.events[i];
            int v = ev_v(s, pp, e), m = e->mb, d = e->device, st = v % pp;
            int last = s == SPEC_SCHED_DUALPIPE ? st == pp - 1 : v == V - 1, first = s == SPEC_SCHED_DUALPIPE ? st == 0 : v == 0;
            double ready = 0;
            if (e->kind == 'F' && !first) ready = t1[0][v - 1][m] + (ev_dev(s, pp, v - 1) != d ? p2p : 0);
            if (e->kind == 'B') {
                ready = t1[0][v][m];
                if (!last) {
                    double t = t1[1][v + 1][m] + (ev_dev(s, pp, v + 1) != d ? p2p : 0);
                    if (t > ready) ready = t;
                }
            }
            if (e->kind == 'W') ready = t1[1][v][m];
            double want = ready > free_at[d] ? ready : free_at[d];
            if (s == SPEC_SCHED_DUALPIPE && e->kind == 'F')
                CHECK(e->t0 >= want - 1e-12, "case %zu: F v=%d mb=%d starts %g before %g", ci, v, m, e->t0, want);
            else
                CHECK_CLOSE(e->t0, want, 1e-12, 1e-12, "op starts as soon as possible");
            int cix = s == SPEC_SCHED_DUALPIPE ? st : v; /* DualPipe: both directions use stage st's costs */
            double cost = e->kind == 'F' ? F[cix] : e->kind == 'W' ? W[cix] : B[cix] + (c[ci].use_w && !split ? W[cix] : 0);
            CHECK_CLOSE(e->t1 - e->t0, cost, 1e-12, 1e-12, "op duration = its cost");
            free_at[d] = e->t1;
            busy[d] += e->t1 - e->t0;
            if (e->t1 > mk) mk = e->t1;
        }
        double busiest = 0;
        for (int d = 0; d < pp; d++) busiest = busy[d] > busiest ? busy[d] : busiest;
        CHECK_CLOSE(r.makespan, mk, 1e-12, 0, "makespan = last op end");
        CHECK_CLOSE(r.bubble_frac, (mk - busiest) / mk, 1e-9, 1e-12, "bubble_frac");
        sim_pipeline_free(&r);
    }
}

static void test_no_leak(void) {
    size_t before = umoe_alloc_current();
    double F[32], B[32], W[32];
    fill(F, 32, 1);
    fill(B, 32, 2);
    fill(W, 32, 1);
    sim_pipeline_result r;
    CHECK(sim_pipeline_run(SPEC_SCHED_INTERLEAVED, 16, 2, 64, F, B, NULL, 1e-3, 1, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.n_events == 2 * 32 * 64, "events %d", r.n_events);
    sim_pipeline_free(&r);
    CHECK(sim_pipeline_run(SPEC_SCHED_DUALPIPE, 16, 1, 64, F, B, W, 1e-3, 0, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(r.events == NULL && r.n_events == 0, "no events unless recorded");
    sim_pipeline_free(&r);
    CHECK(umoe_alloc_current() == before, "leaked %zu bytes", umoe_alloc_current() - before);
}

int main(void) {
    RUN(test_1f1b_uniform_exact);
    RUN(test_interleaved_narayanan);
    RUN(test_zb1p_paper);
    RUN(test_dualpipe_table2);
    RUN(test_dualpipe_order);
    RUN(test_dualpipe_by_hand);
    RUN(test_peak_inflight_1f1b);
    RUN(test_nonuniform_last_heavy);
    RUN(test_p2p_two_stage_by_hand);
    RUN(test_errors);
    RUN(test_events_valid);
    RUN(test_no_leak);
    TEST_MAIN_END();
}
