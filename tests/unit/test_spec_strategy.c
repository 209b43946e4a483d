/* test_spec_strategy.c - strategy loader, recompute policy parsing, the validity rules of
 * spec_strategy_check (one failing case per rule, each message naming the field), and the layer split
 * over pipeline chunks. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"
#include "umoe/spec.h"

static char tmpdir[256];

static const char *write_tmp(const char *name, const char *text) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    UMOE_CHECK(f != NULL, path);
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults(void) {
    spec_strategy s;
    spec_strategy_defaults(&s);
    CHECK(s.tp == 1 && s.cp == 1 && s.pp == 1 && s.vpp == 1 && s.ep == 1 && s.etp == 1 && s.dp == 0, "degrees");
    CHECK(s.mbs == 1 && s.recompute == 0 && s.schedule == SPEC_SCHED_1F1B && s.imbalance == 1.0 &&
          s.precision_bits == 16 && s.precision == SPEC_PREC_BF16, "others");
}

static void test_recompute(void) {
    unsigned rc = 99;
    CHECK(spec_recompute_parse("none", "f", "recompute", &rc) == UMOE_OK && rc == 0, "none");
    CHECK(spec_recompute_parse("selective", "f", "recompute", &rc) == UMOE_OK && rc == SPEC_RC_ATTN_CORE, "sel");
    CHECK(spec_recompute_parse("full", "f", "recompute", &rc) == UMOE_OK && rc == SPEC_RC_FULL, "full");
    CHECK(spec_recompute_parse("norm, activation,mla_up", "f", "recompute", &rc) == UMOE_OK &&
          rc == (SPEC_RC_NORM | SPEC_RC_ACT | SPEC_RC_MLA_UP), "list %u", rc);
    char buf[128];
    spec_recompute_format(rc, buf, sizeof buf);
    CHECK(!strcmp(buf, "norm,activation,mla_up"), "format %s", buf);
    /* round trip of every single module and of all of them */
    for (int i = 0; spec_recompute_names[i]; i++) {
        unsigned back = 0;
        spec_recompute_format(1u << i, buf, sizeof buf);
        CHECK(spec_recompute_parse(buf, "f", "recompute", &back) == UMOE_OK && back == (1u << i), "%s", buf);
    }
    spec_recompute_format(0, buf, sizeof buf);
    CHECK(!strcmp(buf, "none"), "%s", buf);
    spec_recompute_format(SPEC_RC_ATTN_CORE, buf, sizeof buf);
    CHECK(!strcmp(buf, "selective"), "%s", buf);
    CHECK(spec_recompute_parse("norm,attention", "plan.json", "recompute", &rc) == UMOE_EINPUT &&
          strstr(umoe_err, "plan.json") && strstr(umoe_err, "recompute") && strstr(umoe_err, "norm,attention") &&
          strstr(umoe_err, "mla_up"), "%s", umoe_err);
    CHECK(spec_recompute_parse("", "f", "recompute", &rc) == UMOE_EINPUT, "empty");
    CHECK(spec_recompute_parse("norm,,act", "f", "recompute", &rc) == UMOE_EINPUT, "empty item");
    CHECK(spec_recompute_parse("none,norm", "f", "recompute", &rc) == UMOE_EINPUT, "none with others");
}

static void test_load(void) {
    spec_strategy s;
    const char *p = write_tmp("s.json", "{\"tp\": 4, \"sp\": true, \"cp\": 2, \"pp\": 4, \"vpp\": 2, \"ep\": 8, "
                                        "\"etp\": 2, \"dp\": 16, \"zero1\": true, \"mbs\": 2, \"gbs\": 512, "
                                        "\"recompute\": [\"norm\", \"expert_fc1\"], \"offload_activations\": 1, "
                                        "\"schedule\": \"interleaved\", \"a2a\": \"hierarchical\", "
                                        "\"overlap_ep\": true, \"imbalance\": 1.3, \"hist\": [1, 2, 3, 2], "
                                        "\"precision\": \"fp8\", \"pad_layers\": false}");
    CHECK(spec_strategy_load(p, &s) == UMOE_OK, "%s", umoe_err);
    CHECK(s.tp == 4 && s.sp && s.cp == 2 && s.pp == 4 && s.vpp == 2 && s.ep == 8 && s.etp == 2 && s.dp == 16,
          "degrees");
    CHECK(s.zero1 && s.mbs == 2 && s.gbs == 512 && s.recompute == (SPEC_RC_NORM | SPEC_RC_EXPERT_FC1) &&
          s.offload_activations && !s.offload_optimizer, "batch, recompute, offload");
    CHECK(s.schedule == SPEC_SCHED_INTERLEAVED && s.a2a == SPEC_A2A_HIER && s.overlap_ep && !s.overlap_tp, "sched");
    CHECK(s.imbalance == 1.3 && s.n_hist == 4 && s.hist[2] == 3 && s.precision_bits == 8 &&
          s.precision == SPEC_PREC_FP8, "imbalance, hist, precision");
    CHECK(!strcmp(s.name, "s"), "name %s", s.name);
    struct { const char *json, *field; } bad[] = {
        {"{\"tp\": 0}", "tp"},
        {"{\"tpp\": 2}", "tpp"},
        {"{\"schedule\": \"gpipe\"}", "schedule"},
        {"{\"a2a\": \"tree\"}", "a2a"},
        {"{\"precision\": \"fp32\"}", "precision"},
        {"{\"recompute\": 3}", "recompute"},
        {"{\"recompute\": \"some\"}", "recompute"},
        {"{\"imbalance\": 0.5}", "imbalance"},
        {"{\"hist\": [1, -1]}", "hist"},
        {"{\"hist\": []}", "hist"},
        {"{\"sp\": \"on\"}", "sp"},
        {"{\"mbs\": 1.5}", "mbs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        p = write_tmp("bad_s.json", bad[i].json);
        CHECK(spec_strategy_load(p, &s) == UMOE_EINPUT && strstr(umoe_err, bad[i].field) &&
              strstr(umoe_err, "bad_s.json"), "%s: %s", bad[i].json, umoe_err);
    }
}

/* A small MoE model for the rules: 8 layers, 16 heads, 4 KV heads, 16 experts. */
static void small_moe(spec_model *m) {
    spec_model_defaults(m);
    m->L = 8; m->C = 256; m->H = 16; m->H_kv = 4; m->head_dim = 16; m->attn = SPEC_ATTN_GQA;
    m->F = 512; m->first_k_dense = 1; m->E = 16; m->K = 2; m->F_expert = 64; m->V = 1000; m->T = 1024;
    UMOE_CHECK(spec_model_validate(m, "small") == UMOE_OK, umoe_err);
}

static spec_strategy base(void) {
    spec_strategy s;
    spec_strategy_defaults(&s);
    s.tp = 2; s.pp = 2; s.ep = 4; s.gbs = 64; /* 32 devices: dp 8 */
    return s;
}

#define RULE(mod, field, want)                                                                            \
    do {                                                                                                  \
        spec_strategy s = base();                                                                         \
        spec_model m = m0;                                                                                \
        mod;                                                                                              \
        umoe_status st = spec_strategy_check(&s, &m, devices, "strat.json");                              \
        CHECK(st == UMOE_EINPUT, "rule not enforced: %s", #mod);                                          \
        CHECK(st == UMOE_OK || (strstr(umoe_err, "strat.json") && strstr(umoe_err, field) &&              \
                                strstr(umoe_err, want)), "%s: message %s", #mod, umoe_err);               \
    } while (0)

static void test_check_rules(void) {
    spec_model m0, m;
    small_moe(&m0);
    m = m0;
    int devices = 32;
    spec_strategy ok = base();
    CHECK(spec_strategy_check(&ok, &m, devices, "strat.json") == UMOE_OK, "base valid: %s", umoe_err);
    CHECK(spec_strategy_finish(&ok, &m, devices, "strat.json") == UMOE_OK && ok.dp == 8, "dp derived %d", ok.dp);
    RULE(s.tp = 3, "tp", "divide");                          /* tp*cp*pp does not divide 32 */
    RULE(s.dp = 4, "dp", "32");                              /* 4*2*2 != 32 */
    RULE((s.tp = 8, s.pp = 1), "tp", "kv_heads");            /* 8 does not divide 4 KV heads */
    RULE((s.tp = 32, s.pp = 1), "tp", "heads");              /* 32 does not divide 16 heads */
    RULE(s.sp = 1 + 0 * (s.tp = 1), "sp", "tp > 1");
    RULE((s.cp = 2, s.tp = 1, m.T = 1026), "cp", "2*cp");
    RULE((s.pp = 16, s.tp = 1, s.ep = 2), "pp", "exceed");   /* 16 chunks > 8 layers */
    RULE((s.pp = 2, s.tp = 2, s.vpp = 3, s.schedule = SPEC_SCHED_INTERLEAVED), "pp", "divide");
    RULE(s.vpp = 2, "vpp", "interleaved");
    RULE((s.vpp = 2, s.schedule = SPEC_SCHED_DUALPIPE), "vpp", "interleaved");
    RULE((s.pp = 1, s.tp = 4, s.schedule = SPEC_SCHED_DUALPIPE), "dualpipe", "even");
    RULE((s.pp = 2, s.vpp = 2, s.schedule = SPEC_SCHED_INTERLEAVED, s.gbs = 24), "gbs", "multiple of pp");
    RULE((s.schedule = SPEC_SCHED_DUALPIPE, s.gbs = 24), "gbs", "even and >= 2*pp"); /* 3 micro-batches */
    RULE((s.schedule = SPEC_SCHED_DUALPIPE, s.gbs = 16), "gbs", "even and >= 2*pp"); /* 2 < 4 */
    RULE((s.schedule = SPEC_SCHED_INTERLEAVED, s.pp = 1, s.tp = 4), "interleaved", "pp >= 2");
    RULE(s.ep = 32, "ep", "dp*tp*cp");                      /* 32 does not divide 8*2 = 16 */
    RULE((s.ep = 16, s.etp = 2), "etp", "dp*tp*cp");
    RULE((s.ep = 3), "ep", "divide");                        /* 3 divides 16 devices? no: dp*tp*cp first */
    RULE((s.ep = 8, s.tp = 1, s.pp = 4, m.E = 12, m.K = 2), "ep", "experts");
    RULE((s.etp = 2, s.ep = 1, m.F_expert = 63), "etp", "expert_ffn_hidden");
    RULE(s.gbs = 0, "gbs", "set");
    RULE(s.gbs = 60, "gbs", "mbs*dp");
    RULE(s.imbalance = 0.9, "imbalance", ">= 1");
    RULE(s.imbalance = 5, "imbalance", "<= ep");
    RULE(s.n_hist = 8, "hist", "experts = 16");
    /* dense model: no EP */
    spec_model d = m;
    d.E = 0; d.K = 0; d.F_expert = 0; d.first_k_dense = 0;
    spec_strategy s = base();
    CHECK(spec_strategy_check(&s, &d, 32, "strat.json") == UMOE_EINPUT && strstr(umoe_err, "dense"), "%s", umoe_err);
    s.ep = 1;
    CHECK(spec_strategy_check(&s, &d, 32, "strat.json") == UMOE_OK, "%s", umoe_err);
    /* valid uses of the less common features */
    s = base();
    s.pp = 4; s.vpp = 2; s.tp = 1; s.schedule = SPEC_SCHED_INTERLEAVED; /* 8 chunks, 8 layers, 8 mb */
    CHECK(spec_strategy_check(&s, &m, 32, "strat.json") == UMOE_OK, "interleaved: %s", umoe_err);
    s.vpp = 1; s.schedule = SPEC_SCHED_DUALPIPE; /* 8 micro-batches >= 2*4 */
    CHECK(spec_strategy_check(&s, &m, 32, "strat.json") == UMOE_OK, "dualpipe: %s", umoe_err);
    s = base();
    s.cp = 2; s.tp = 1; s.sp = 0;
    CHECK(spec_strategy_check(&s, &m, 32, "strat.json") == UMOE_OK, "cp: %s", umoe_err);
}

static void test_chunk_layers(void) {
    spec_model m;
    small_moe(&m);
    spec_strategy s;
    spec_strategy_defaults(&s);
    s.pp = 4; s.vpp = 1;
    for (int c = 0; c < 4; c++) CHECK(spec_chunk_layers(&s, &m, c) == 2, "even split");
    /* 61 layers over 16 x 2 chunks with padding: 29 chunks of 2, 3 of 1 (last, first, second-to-last) */
    m.L = 61; m.first_k_dense = 3;
    s.pp = 16; s.vpp = 2; s.pad_layers = 1;
    int sum = 0, ones = 0;
    for (int c = 0; c < 32; c++) {
        int l = spec_chunk_layers(&s, &m, c);
        sum += l;
        ones += l == 1;
        CHECK(l == 1 || l == 2, "chunk %d holds %d", c, l);
    }
    CHECK(sum == 61 && ones == 3, "sum %d ones %d", sum, ones);
    CHECK(spec_chunk_layers(&s, &m, 31) == 1 && spec_chunk_layers(&s, &m, 0) == 1 &&
          spec_chunk_layers(&s, &m, 30) == 1 && spec_chunk_layers(&s, &m, 1) == 2, "which chunks are short");
    s.pad_layers = 0;
    m.H = 16; s.gbs = 32 * 16; s.ep = 1; s.tp = 1;
    CHECK(spec_strategy_check(&s, &m, 32 * 16 / 16 * 1, "x") == UMOE_EINPUT && strstr(umoe_err, "pad_layers"),
          "uneven split needs pad_layers: %s", umoe_err);
}

static void test_presets(void) {
    /* The shipped strategies load and are valid for the models they were written for. */
    struct { const char *strategy, *model; int devices; } p[] = {
        {"pangu-ultra-moe-6k", "pangu-ultra-moe-718b", 6144},
        {"deepseek-v3-2048", "deepseek-v3-671b", 2048},
        {"tp8-node", "llama3-70b", 8},
    };
    for (size_t i = 0; i < sizeof p / sizeof *p; i++) {
        spec_strategy s;
        spec_model m;
        CHECK(spec_strategy_load(p[i].strategy, &s) == UMOE_OK, "%s: %s", p[i].strategy, umoe_err);
        CHECK(spec_model_load(p[i].model, &m) == UMOE_OK, "%s: %s", p[i].model, umoe_err);
        CHECK(spec_strategy_finish(&s, &m, p[i].devices, p[i].strategy) == UMOE_OK, "%s: %s", p[i].strategy,
              umoe_err);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/umoe_test_spec_strategy.%d", (int)getpid());
    mkdir(tmpdir, 0700);
    RUN(test_defaults);
    RUN(test_recompute);
    RUN(test_load);
    RUN(test_check_rules);
    RUN(test_chunk_layers);
    RUN(test_presets);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) {}
    TEST_MAIN_END();
}
