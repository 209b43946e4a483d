/* test_sweep.c - the architecture sweep (src/sim/sweep*.c): shapes of the Cartesian product, the parameter
 * budget filter, the ranking, the JSON loader's errors, and the SVG file. A small local cost function
 * stands in for the simulator (faster throughput for fewer activated parameters). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "umoe/json.h"
#include "umoe/plan.h"

static spec_model base_model(void) {
    spec_model m;
    spec_model_defaults(&m);
    umoe_strlcpy(m.name, "sweep-base", sizeof m.name);
    m.L = 4, m.C = 256, m.H = 8, m.H_kv = 8, m.head_dim = 32, m.attn = SPEC_ATTN_MHA;
    m.ffn = SPEC_FFN_SWIGLU, m.F = 512, m.first_k_dense = 1, m.E = 8, m.E_shared = 1, m.K = 2, m.F_expert = 128;
    m.V = 1024, m.T = 512;
    return m;
}

static spec_cluster cluster(void) {
    spec_cluster c;
    memset(&c, 0, sizeof c);
    umoe_strlcpy(c.name, "sweep-cluster", sizeof c.name);
    c.devices = 8;
    c.hw.devices_per_node = 8;
    c.hw.hbm_bytes = 80.0 * (1 << 30);
    c.hw.peak_bf16 = 1e14;
    return c;
}

/* time per token proportional to activated parameters (6 N FLOPs per token); memory grows with the total
 * and shrinks with the model-parallel degree. */
static umoe_status toy_eval(const spec_model *m, const spec_cluster *c, const spec_strategy *s, const sim_options *o,
                            sim_result *r) {
    memset(r, 0, sizeof *r);
    spec_params p;
    spec_params_count(m, &p);
    double tokens = (double)s->gbs * m->T;
    r->params_total = p.total, r->params_active = p.active;
    r->step_time_s = 6 * p.active * tokens / (c->devices * 1e14) * (1 + 0.05 * s->tp + 0.02 * s->pp);
    r->tokens_per_s = tokens / r->step_time_s;
    r->memory_peak_bytes = 16 * p.total / (s->tp * s->pp * s->ep) + 1e6 * s->mbs;
    r->fits = r->memory_peak_bytes <= c->hw.hbm_bytes;
    r->mfu = 0.5;
    return UMOE_OK;
}

static sweep_space space(void) {
    sweep_space sp;
    memset(&sp, 0, sizeof sp);
    umoe_strlcpy(sp.name, "test-space", sizeof sp.name);
    sp.base = base_model();
    sp.n[SWEEP_DIM_LAYERS] = 3, sp.v[SWEEP_DIM_LAYERS][0] = 2, sp.v[SWEEP_DIM_LAYERS][1] = 4;
    sp.v[SWEEP_DIM_LAYERS][2] = 8;
    sp.n[SWEEP_DIM_EXPERTS] = 2, sp.v[SWEEP_DIM_EXPERTS][0] = 8, sp.v[SWEEP_DIM_EXPERTS][1] = 16;
    sp.n[SWEEP_DIM_TOPK] = 2, sp.v[SWEEP_DIM_TOPK][0] = 1, sp.v[SWEEP_DIM_TOPK][1] = 2;
    sp.n[SWEEP_DIM_HEADS] = 2, sp.v[SWEEP_DIM_HEADS][0] = 8, sp.v[SWEEP_DIM_HEADS][1] = 6; /* 256 % 6: invalid? */
    sp.budget_kind = SWEEP_BUDGET_NONE;
    sp.tolerance = 0.1;
    return sp;
}

static void test_shapes_and_ranking(void) {
    sweep_space sp = space();
    spec_cluster c = cluster();
    plan_options o;
    plan_options_defaults(&o);
    sweep_result r;
    CHECK(sweep_run(&sp, &c, &o, toy_eval, &r) == UMOE_OK, "sweep_run: %s", umoe_err);
    CHECK(r.n_total == 24, "3 x 2 x 2 x 2 shapes, got %d", r.n_total);
    CHECK(r.n_valid == r.n && r.n_valid <= 24 && r.n_valid >= 12, "valid shapes %d", r.n_valid);
    CHECK(r.n_budget == r.n_valid, "no budget: every valid shape planned");
    CHECK(r.n_feasible == r.n_valid, "everything fits in 80 GiB");
    for (int i = 0; i < r.n; i++) {
        CHECK(spec_model_validate(&r.s[i].m, "shape") == UMOE_OK, "shape %d valid", i);
        spec_params p;
        spec_params_count(&r.s[i].m, &p);
        CHECK(p.total == r.s[i].params_total && p.active == r.s[i].params_active, "params of shape %d", i);
        if (i > 0 && r.s[i].has_best && r.s[i - 1].has_best)
            CHECK(r.s[i - 1].best.r.tokens_per_s >= r.s[i].best.r.tokens_per_s, "ranked by tokens/s at %d", i);
    }
    /* fewest activated parameters = fastest in the toy: the winner has 2 layers and top-1 */
    CHECK(r.s[0].m.L == 2 && r.s[0].m.K == 1, "best shape L%d K%d", r.s[0].m.L, r.s[0].m.K);
    /* each shape's best strategy equals a direct plan of that shape */
    plan_options po = o;
    po.top = 1;
    po.detailed_top = 1;
    plan_result pr;
    CHECK(plan_search(&r.s[3].m, &c, &po, toy_eval, &pr) == UMOE_OK && pr.n == 1, "direct plan");
    CHECK(pr.best[0].key == r.s[3].best.key && pr.best[0].r.tokens_per_s == r.s[3].best.r.tokens_per_s,
          "sweep's best = plan's best");
    plan_result_free(&pr);
    sweep_result_free(&r);
}

static void test_budget(void) {
    sweep_space sp = space();
    spec_cluster c = cluster();
    plan_options o;
    plan_options_defaults(&o);
    spec_model b = base_model();
    spec_params p;
    spec_params_count(&b, &p);
    sp.budget_kind = SWEEP_BUDGET_TOTAL;
    sp.budget = p.total;
    sp.tolerance = 0.02;
    sweep_result r;
    CHECK(sweep_run(&sp, &c, &o, toy_eval, &r) == UMOE_OK, "sweep_run: %s", umoe_err);
    CHECK(r.n_budget >= 1 && r.n_budget < r.n_valid, "budget keeps some: %d of %d", r.n_budget, r.n_valid);
    int planned = 0;
    for (int i = 0; i < r.n; i++) {
        const sweep_shape *s = &r.s[i];
        int in = s->params_total >= 0.98 * p.total && s->params_total <= 1.02 * p.total;
        CHECK(s->in_budget == in && s->planned == in, "shape %s: in budget %d, planned %d, want %d", s->m.name,
              s->in_budget, s->planned, in);
        CHECK(in || s->skip[0], "an unplanned shape says why");
        planned += s->planned;
    }
    CHECK(planned == r.n_budget, "planned count");
    sweep_result_free(&r);
    /* activated budget */
    sp.budget_kind = SWEEP_BUDGET_ACTIVE;
    sp.budget = p.active;
    CHECK(sweep_run(&sp, &c, &o, toy_eval, &r) == UMOE_OK, "sweep_run: %s", umoe_err);
    for (int i = 0; i < r.n; i++)
        CHECK(r.s[i].planned == (r.s[i].params_active >= 0.98 * p.active && r.s[i].params_active <= 1.02 * p.active),
              "active budget on %s", r.s[i].m.name);
    int n_active = r.n_budget;
    sweep_result_free(&r);
    /* both budgets: the shapes within each */
    sp.budget2_kind = SWEEP_BUDGET_TOTAL;
    sp.budget2 = p.total;
    sp.tolerance2 = 0.02;
    CHECK(sweep_run(&sp, &c, &o, toy_eval, &r) == UMOE_OK, "sweep_run: %s", umoe_err);
    int both = 0;
    for (int i = 0; i < r.n; i++) {
        const sweep_shape *s = &r.s[i];
        int in = s->params_active >= 0.98 * p.active && s->params_active <= 1.02 * p.active &&
                 s->params_total >= 0.98 * p.total && s->params_total <= 1.02 * p.total;
        CHECK(s->planned == in, "both budgets on %s", s->m.name);
        both += in;
    }
    CHECK(both == r.n_budget && both >= 1 && both <= n_active, "both budgets: %d planned", both);
    sweep_result_free(&r);
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fputs(text, f);
    fclose(f);
    return 1;
}

static void expect_load_error(const char *dir, const char *body, const char *want) {
    char path[512], text[2048];
    snprintf(path, sizeof path, "%s/space.json", dir);
    snprintf(text, sizeof text, "{\"base\": \"%s/base.json\", %s}", dir, body);
    CHECK(write_file(path, text), "write %s", path);
    sweep_space sp;
    umoe_status st = sweep_space_load(path, &sp);
    CHECK(st == UMOE_EINPUT && strstr(umoe_err, want), "space {%s}: status %d, message \"%s\", want \"%s\"", body,
          st, umoe_err, want);
}

static void test_load(void) {
    char dir[] = "/tmp/umoe_sweep_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[512];
    snprintf(path, sizeof path, "%s/base.json", dir);
    CHECK(write_file(path, "{\"name\": \"b\", \"layers\": 4, \"hidden\": 256, \"heads\": 8, \"vocab\": 1024, "
                           "\"ffn_hidden\": 512, \"experts\": 8, \"top_k\": 2, \"expert_ffn_hidden\": 128, "
                           "\"first_k_dense\": 1, \"seq_len\": 512}"),
          "write base");
    sweep_space sp;
    snprintf(path, sizeof path, "%s/ok.json", dir);
    char text[1024];
    snprintf(text, sizeof text, "{\"name\": \"s\", \"base\": \"%s/base.json\", \"layers\": [2, 4], \"attention\": "
                                "[\"mha\", \"gqa\"], \"budget\": {\"params\": \"active\", \"value\": 1e6, "
                                "\"tolerance\": 0.5}, \"gbs\": 16}", dir);
    CHECK(write_file(path, text), "write ok");
    CHECK(sweep_space_load(path, &sp) == UMOE_OK, "load: %s", umoe_err);
    CHECK(sp.n[SWEEP_DIM_LAYERS] == 2 && sp.v[SWEEP_DIM_LAYERS][1] == 4 && sp.n[SWEEP_DIM_ATTN] == 2 &&
          sp.v[SWEEP_DIM_ATTN][1] == SPEC_ATTN_GQA && sp.budget_kind == SWEEP_BUDGET_ACTIVE && sp.budget == 1e6 &&
          sp.tolerance == 0.5 && sp.gbs == 16 && sp.base.L == 4 && sp.n[SWEEP_DIM_HIDDEN] == 0, "fields read");
    expect_load_error(dir, "\"layerz\": [1]", "layerz");
    expect_load_error(dir, "\"layers\": 4", "layers");
    expect_load_error(dir, "\"layers\": [4, 4]", "twice");
    expect_load_error(dir, "\"hidden\": [0]", "hidden");
    expect_load_error(dir, "\"attention\": [\"flash\"]", "attention");
    expect_load_error(dir, "\"budget\": {\"params\": \"total\"}", "value");
    expect_load_error(dir, "\"budget\": {\"params\": \"half\", \"value\": 1}", "params");
    expect_load_error(dir, "\"budget\": [{\"value\": 1}, {\"value\": 2}]", "different counts");
    expect_load_error(dir, "\"budget\": []", "budget");
    /* two budgets */
    snprintf(text, sizeof text, "{\"base\": \"%s/base.json\", \"budget\": [{\"value\": 5e6}, {\"params\": "
                                "\"active\", \"value\": 2e6, \"tolerance\": 0.2}]}", dir);
    CHECK(write_file(path, text), "write");
    CHECK(sweep_space_load(path, &sp) == UMOE_OK, "load two budgets: %s", umoe_err);
    CHECK(sp.budget_kind == SWEEP_BUDGET_TOTAL && sp.budget == 5e6 && sp.tolerance == 0.1 &&
          sp.budget2_kind == SWEEP_BUDGET_ACTIVE && sp.budget2 == 2e6 && sp.tolerance2 == 0.2, "two budgets read");
    /* a missing base model names the field */
    snprintf(path, sizeof path, "%s/nobase.json", dir);
    CHECK(write_file(path, "{\"base\": \"/nonexistent/model.json\"}"), "write");
    CHECK(sweep_space_load(path, &sp) == UMOE_EINPUT && strstr(umoe_err, "base"), "missing base: %s", umoe_err);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
}

static void test_svg(void) {
    sweep_space sp = space();
    spec_cluster c = cluster();
    plan_options o;
    plan_options_defaults(&o);
    sweep_result r;
    CHECK(sweep_run(&sp, &c, &o, toy_eval, &r) == UMOE_OK, "sweep_run");
    char path[] = "/tmp/umoe_sweep_svg_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    CHECK(sweep_report_svg(path, &sp, &r) == UMOE_OK, "svg: %s", umoe_err);
    size_t len = 0;
    char *text = umoe_read_file(path, &len);
    CHECK(text && strstr(text, "<svg") && strstr(text, "</svg>"), "an SVG document");
    int circles = 0;
    for (const char *p = text; p && (p = strstr(p, "fill-opacity")); p++) circles++; /* the points */
    CHECK(circles == r.n_feasible, "one point per feasible shape: %d vs %d", circles, r.n_feasible);
    if (text) umoe_free(text, len + 1);
    unlink(path);
    sweep_result_free(&r);
}

int main(void) {
    RUN(test_shapes_and_ranking);
    RUN(test_budget);
    RUN(test_load);
    RUN(test_svg);
    TEST_MAIN_END();
}
