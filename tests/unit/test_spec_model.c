/* test_spec_model.c - model spec: the presets' parameter counts against the published totals, FLOPs
 * against the Megatron-LM formula, the MoE layer layout, our JSON format and its error messages.
 * "Published" figures are compared either within a relative tolerance or, where the publisher rounded to
 * whole billions, by requiring that our count rounds to the published figure (|ours - pub| <= half a unit of
 * its last digit). Each test says which. */
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

/* our count rounds to the published figure given to `half` (e.g. 37B with half = 0.5e9) */
#define CHECK_ROUNDS_TO(x, pub, half, what) CHECK_CLOSE(x, pub, 0, half, what)

static int load(const char *name, spec_model *m, spec_params *p) {
    umoe_status s = spec_model_load(name, m);
    CHECK(s == UMOE_OK, "load %s: %s", name, umoe_err);
    if (s) return 0;
    spec_params_count(m, p);
    fprintf(stderr, "  %s: total %.4fB active %.4fB (with embedding %.4fB) mtp %.4fB\n", name, p->total / 1e9,
            p->active / 1e9, p->active_with_embed / 1e9, p->mtp / 1e9);
    return 1;
}

static void test_deepseek_v3_params(void) {
    spec_model m;
    spec_params p;
    if (!load("deepseek-v3-671b", &m, &p)) return;
    /* DeepSeek-V3 report (arXiv 2412.19437) Sec. 4.2: 671B total (0.5%), 37B activated (rounded to 1B). */
    CHECK_CLOSE(p.total, 671e9, 0.005, 0, "DeepSeek-V3 total");
    CHECK_ROUNDS_TO(p.active, 37e9, 0.5e9, "DeepSeek-V3 active");
    /* Counting the embedding too gives 37.6B, which would round to 38B: the report does not count it. */
    CHECK(p.active_with_embed > 37.5e9, "with-embedding convention %.3g", p.active_with_embed);
    /* Report Sec. 1: 685B on Hugging Face = main model + 14B MTP module whose weights carry copies of the
     * embedding and the head (2 x 129280 x 7168). */
    CHECK_CLOSE(p.total + p.mtp + p.embed + p.head, 685e9, 0.005, 0, "DeepSeek-V3 with MTP as released");
    CHECK(p.n_dense == 3 && p.n_moe == 58, "layers %d dense %d moe", p.n_dense, p.n_moe);
    /* exact: one MoE layer's attention by hand (MLA, DeepSeek-V2 Eqs. 9-14, 37-38) */
    double attn = 7168.0 * 1536 + 1536.0 * 128 * 192 + 7168.0 * 576 + 512.0 * 128 * 256 + 128.0 * 128 * 7168 +
                  1536 + 512 + 7168;
    CHECK_CLOSE(p.attn_per_layer, attn, 0, 0, "MLA attention params");
    CHECK_CLOSE(p.expert, 3.0 * 7168 * 2048, 0, 0, "expert params");
    CHECK_CLOSE(p.moe_router_per_layer, 7168.0 * 256 + 256, 0, 0, "router + score bias");
}

static void test_pangu_params(void) {
    spec_model m;
    spec_params p;
    if (!load("pangu-ultra-moe-718b", &m, &p)) return;
    /* Pangu Ultra MoE, arXiv 2505.04519: 718B total, 39B activated, within 1% (the brief's tolerance). */
    CHECK_CLOSE(p.total, 718e9, 0.01, 0, "Pangu total");
    CHECK_CLOSE(p.active, 39e9, 0.01, 0, "Pangu active");
    CHECK(m.norm == SPEC_NORM_SANDWICH && m.attn == SPEC_ATTN_MLA && m.mtp == 1, "pangu fields");
    CHECK_CLOSE(p.norms_per_layer, 4.0 * 7680 + 1536 + 512, 0, 0, "sandwich: 4 norms + MLA norms");
}

static void test_mixtral_params(void) {
    spec_model m;
    spec_params p;
    if (!load("mixtral-8x7b", &m, &p)) return;
    /* Mixtral paper (arXiv 2401.04088): 46.7B total, 12.9B active (embedding counted: Mistral's convention);
     * rounded to 0.1B. */
    CHECK_ROUNDS_TO(p.total, 46.7e9, 0.05e9, "Mixtral 8x7B total");
    CHECK_ROUNDS_TO(p.active_with_embed, 12.9e9, 0.05e9, "Mixtral 8x7B active");
    if (!load("mixtral-8x22b", &m, &p)) return;
    /* Mistral's announcement: 141B total (0.5%), 39B active (rounded to 1B). */
    CHECK_CLOSE(p.total, 141e9, 0.005, 0, "Mixtral 8x22B total");
    CHECK_ROUNDS_TO(p.active_with_embed, 39e9, 0.5e9, "Mixtral 8x22B active");
}

static void test_qwen3_params(void) {
    spec_model m;
    spec_params p;
    if (!load("qwen3-235b-a22b", &m, &p)) return;
    /* Qwen3 report Table 2: 235B total (0.5%), 22B activated (rounded to 1B; both conventions round to 22). */
    CHECK_CLOSE(p.total, 235e9, 0.005, 0, "Qwen3-235B total");
    CHECK_ROUNDS_TO(p.active, 22e9, 0.5e9, "Qwen3-235B active");
    CHECK_ROUNDS_TO(p.active_with_embed, 22e9, 0.5e9, "Qwen3-235B active with embedding");
}

static void test_dense_params(void) {
    spec_model m;
    spec_params p;
    if (!load("llama3-405b", &m, &p)) return;
    CHECK_CLOSE(p.total, 405e9, 0.005, 0, "Llama 3 405B"); /* Llama 3 paper */
    CHECK_CLOSE(p.active, p.total - p.embed, 0, 1, "dense: active = total - embedding");
    if (!load("llama3-70b", &m, &p)) return;
    CHECK_CLOSE(p.total, 70.6e9, 0.005, 0, "Llama 3 70B"); /* HF model card: 70.6B ("70B" is the name) */
    if (!load("gpt3-175b", &m, &p)) return;
    CHECK_CLOSE(p.total, 175e9, 0.005, 0, "GPT-3 175B"); /* GPT-3 paper Table 2.1 */
    CHECK(p.head == 0 && p.active == p.active_with_embed, "tied: the table is the head");
}

/* Narayanan et al. 2021 (arXiv 2104.04473) Sec. 5.1: F = 72 B s L h^2 (1 + s/(6h) + V/(12 h L)) FLOPs per
 * iteration = 3 x forward (fwd + 2x bwd), i.e. forward per token = 24 L h^2 (1 + s/(6h) + V/(12 h L)).
 * The formula assumes F = 4h, MHA, and leaves out element-wise work and biases, as we do: the agreement
 * must be exact to rounding (we assert 1%, and report the difference). */
static void test_flops_gpt3_megatron(void) {
    spec_model m;
    spec_flops f;
    if (spec_model_load("gpt3-175b", &m)) { CHECK(0, "%s", umoe_err); return; }
    spec_flops_count(&m, 0, &f);
    double h = m.C, L = m.L, s = m.T, V = m.V;
    double megatron = 24.0 * L * h * h * (1 + s / (6 * h) + V / (12 * h * L));
    fprintf(stderr, "  GPT-3 forward FLOPs/token: ours %.6e, Megatron formula %.6e (rel diff %.2e)\n", f.fwd_total,
            megatron, f.fwd_total / megatron - 1);
    CHECK_CLOSE(f.fwd_total, megatron, 0.01, 0, "GPT-3 fwd FLOPs/token vs Megatron formula");
    CHECK_CLOSE(f.attn_core, 4.0 * s * h, 1e-12, 0, "attention core = 4 s h");
    spec_flops half;
    spec_flops_count(&m, 1, &half);
    CHECK_CLOSE(half.attn_core, f.attn_core / 2, 1e-12, 0, "causal half");
    CHECK_CLOSE(f.fwd_total - half.fwd_total, L * f.attn_core / 2, 1e-9, 0, "causal half total");
}

/* For any model: forward GEMM FLOPs minus the attention core and MTP = 2 x active parameters, up to the
 * norm weights and router biases (which are parameters but not multiply-adds). */
static void test_flops_vs_active(void) {
    const char *names[] = {"deepseek-v3-671b", "pangu-ultra-moe-718b", "mixtral-8x7b", "qwen3-235b-a22b",
                           "llama3-70b"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        spec_model m;
        spec_params p;
        spec_flops f;
        if (spec_model_load(names[i], &m)) { CHECK(0, "%s", umoe_err); continue; }
        spec_params_count(&m, &p);
        spec_flops_count(&m, 0, &f);
        double gemm = f.fwd_total - m.L * f.attn_core - f.mtp;
        CHECK_CLOSE(gemm, 2 * p.active, 2e-4, 0, names[i]);
        CHECK(f.mtp > 0 || m.mtp == 0, "%s mtp flops", names[i]);
    }
}

static void test_flops_recompute(void) {
    spec_model m;
    spec_flops f;
    if (spec_model_load("deepseek-v3-671b", &m)) { CHECK(0, "%s", umoe_err); return; }
    spec_flops_count(&m, 0, &f);
    CHECK(spec_flops_recompute(&m, 0, 0) == 0, "none");
    CHECK(spec_flops_recompute(&m, SPEC_RC_NORM | SPEC_RC_ACT | SPEC_RC_PERMUTE, 0) == 0, "element-wise only");
    CHECK_CLOSE(spec_flops_recompute(&m, SPEC_RC_ATTN_CORE, 0), 62 * f.attn_core, 1e-12, 0, "selective: 61 + 1 MTP");
    /* MLA up-projections per layer by hand: q_b 1536 x 128*192, kv_b 512 x 128*256 */
    double up = 2.0 * (1536.0 * 128 * 192 + 512.0 * 128 * 256);
    CHECK_CLOSE(spec_flops_recompute(&m, SPEC_RC_MLA_UP, 0), 62 * up, 1e-12, 0, "mla_up");
    double fc1 = 2.0 * 9 * 2 * 7168.0 * 2048; /* 8 routed + 1 shared, gate + up */
    CHECK_CLOSE(spec_flops_recompute(&m, SPEC_RC_EXPERT_FC1, 0), 59 * fc1, 1e-12, 0, "expert_fc1: 58 + 1 MTP");
    double full = spec_flops_recompute(&m, SPEC_RC_FULL, 0);
    CHECK(full < f.fwd_total && full > 0.9 * f.fwd_total, "full: the layers, not the heads");
    CHECK_CLOSE(full + 2 * f.head + 4.0 * 7168 * 7168, f.fwd_total, 1e-12, 0, "full = forward - heads - MTP proj");
    CHECK_CLOSE(spec_flops_recompute(&m, SPEC_RC_ATTN_CORE | SPEC_RC_MLA_UP, 0), 62 * (f.attn_core + up), 1e-12, 0,
                "sum of modules");
}

static void test_layer_is_moe(void) {
    spec_model m;
    if (spec_model_load("deepseek-v3-671b", &m)) { CHECK(0, "%s", umoe_err); return; }
    CHECK(!spec_layer_is_moe(&m, 0) && !spec_layer_is_moe(&m, 2) && spec_layer_is_moe(&m, 3) &&
          spec_layer_is_moe(&m, 60) && !spec_layer_is_moe(&m, 61), "first 3 dense, rest MoE");
    if (spec_model_load("llama3-70b", &m)) { CHECK(0, "%s", umoe_err); return; }
    CHECK(!spec_layer_is_moe(&m, 5), "dense model");
}

static void test_own_format_defaults(void) {
    spec_model m;
    const char *p = write_tmp("small.json", "{\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"vocab\": 100, "
                                            "\"ffn_hidden\": 128, \"experts\": 8, \"top_k\": 2, "
                                            "\"expert_ffn_hidden\": 32, \"first_k_dense\": 1, \"kv_heads\": 2}");
    umoe_status s = spec_model_load(p, &m);
    CHECK(s == UMOE_OK, "%s", umoe_err);
    CHECK(!strcmp(m.name, "small"), "name from file: %s", m.name);
    CHECK(m.attn == SPEC_ATTN_GQA && m.head_dim == 16 && m.T == 4096 && m.ffn == SPEC_FFN_SWIGLU, "derived fields");
    spec_params pc;
    spec_params_count(&m, &pc);
    /* by hand: attn q 64*64 + k,v 2*64*32 + o 64*64 + norm 64; ffn norm 64; expert 3*64*32; router 64*8 */
    double attn = 64.0 * 64 * 2 + 2 * 64.0 * 32 + 64;
    double dense = attn + 64 + 3.0 * 64 * 128, moe = attn + 64 + 64 * 8 + 8 * 3.0 * 64 * 32;
    CHECK_CLOSE(pc.total, dense + 3 * moe + 2 * 100.0 * 64 + 64, 0, 0, "hand count");
    CHECK_CLOSE(pc.active, dense + 3 * (attn + 64 + 64 * 8 + 2 * 3.0 * 64 * 32) + 100.0 * 64 + 64, 0, 0, "active");
}

/* Every bad input: UMOE_EINPUT and a message naming the file and the field. */
static void expect_bad(const char *json, const char *field, const char *also) {
    spec_model m;
    const char *p = write_tmp("bad.json", json);
    umoe_status s = spec_model_load(p, &m);
    CHECK(s == UMOE_EINPUT, "accepted bad input for %s", field);
    CHECK(strstr(umoe_err, "bad.json") && strstr(umoe_err, field), "message must name file and %s: %s", field,
          umoe_err);
    if (also) CHECK(strstr(umoe_err, also), "message should contain \"%s\": %s", also, umoe_err);
}

#define BASE "\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"vocab\": 100, \"ffn_hidden\": 128"
static void test_own_format_errors(void) {
    expect_bad("{" BASE ", \"hiden\": 3}", "hiden", "unknown field");
    expect_bad("{" BASE ", \"top_k\": \"two\"}", "top_k", "number");
    expect_bad("{\"layers\": 0, \"hidden\": 64, \"heads\": 4, \"vocab\": 100}", "layers", "1..");
    expect_bad("{\"hidden\": 64, \"heads\": 4, \"vocab\": 100}", "layers", "missing");
    expect_bad("{" BASE ", \"experts\": 8, \"top_k\": 9, \"expert_ffn_hidden\": 8}", "top_k", "1..experts");
    expect_bad("{" BASE ", \"experts\": 8, \"expert_ffn_hidden\": 8}", "top_k", "missing");
    expect_bad("{" BASE ", \"experts\": 8, \"top_k\": 2}", "expert_ffn_hidden", NULL);
    expect_bad("{" BASE ", \"kv_heads\": 3}", "kv_heads", "divide");
    expect_bad("{" BASE ", \"attention\": \"mha\", \"kv_heads\": 2}", "kv_heads", "equal");
    expect_bad("{" BASE ", \"attention\": \"flash\"}", "attention", "mha, gqa, mla");
    expect_bad("{" BASE ", \"attention\": \"mla\"}", "kv_lora_rank", NULL);
    expect_bad("{" BASE ", \"experts\": 8, \"top_k\": 2, \"expert_ffn_hidden\": 8, \"first_k_dense\": 4}",
               "first_k_dense", "range");
    expect_bad("{\"layers\": 4, \"hidden\": 64, \"heads\": 4, \"vocab\": 100}", "ffn_hidden", "missing");
    expect_bad("{" BASE ", \"tied_embeddings\": \"yes\"}", "tied_embeddings", "true or false");
    expect_bad("{" BASE ", \"norm_eps\": -1}", "norm_eps", "range");
    expect_bad("{\"layers\": 4, \"hidden\": 66, \"heads\": 4, \"vocab\": 100, \"ffn_hidden\": 128}", "head_dim",
               NULL); /* 66/4 is not whole */
    expect_bad("{" BASE ", \"layers\": 8}", "layers", "twice");
    spec_model m;
    CHECK(spec_model_load("no-such-model", &m) == UMOE_EINPUT && strstr(umoe_err, "no-such-model") &&
          strstr(umoe_err, "models"), "missing preset: %s", umoe_err);
    const char *p = write_tmp("broken.json", "{\"layers\": 4,\n \"hidden\": }");
    CHECK(spec_model_load(p, &m) == UMOE_EINPUT && strstr(umoe_err, "line 2"), "bad JSON: %s", umoe_err);
}

static void test_model_finish(void) {
    spec_model m;
    spec_model_defaults(&m);
    m.L = 2; m.C = 64; m.H = 4; m.V = 10; m.F = 128;
    CHECK(spec_model_finish(&m, "row 3") == UMOE_OK && m.head_dim == 16 && m.H_kv == 4, "%s", umoe_err);
    spec_model_defaults(&m);
    m.L = 2; m.C = 64; m.H = 4; m.V = 10; m.F = 128; m.H_kv = 2;
    CHECK(spec_model_finish(&m, "row 4") == UMOE_EINPUT && strstr(umoe_err, "row 4") && strstr(umoe_err, "kv_heads"),
          "MHA with fewer KV heads must say so: %s", umoe_err);
    m.attn = SPEC_ATTN_GQA;
    CHECK(spec_model_finish(&m, "row 4") == UMOE_OK, "%s", umoe_err);
}

static void test_all_presets_load(void) {
    const char *names[] = {"pangu-ultra-moe-718b", "deepseek-v3-671b", "mixtral-8x7b", "mixtral-8x22b",
                           "qwen3-235b-a22b", "llama3-405b", "llama3-70b", "gpt3-175b"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        spec_model m;
        CHECK(spec_model_load(names[i], &m) == UMOE_OK, "%s: %s", names[i], umoe_err);
        CHECK(!strcmp(m.name, names[i]), "name %s", m.name);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/umoe_test_spec_model.%d", (int)getpid());
    mkdir(tmpdir, 0700);
    RUN(test_all_presets_load);
    RUN(test_deepseek_v3_params);
    RUN(test_pangu_params);
    RUN(test_mixtral_params);
    RUN(test_qwen3_params);
    RUN(test_dense_params);
    RUN(test_flops_gpt3_megatron);
    RUN(test_flops_vs_active);
    RUN(test_flops_recompute);
    RUN(test_layer_is_moe);
    RUN(test_own_format_defaults);
    RUN(test_own_format_errors);
    RUN(test_model_finish);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) {}
    TEST_MAIN_END();
}
