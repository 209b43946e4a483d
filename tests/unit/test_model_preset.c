/* test_model_preset.c - the C model against the PyTorch twin at the shape of the shipped preset
 * configs/models/tiny-moe.json (2.3M parameters: too many to store, so both sides generate the parameters with
 * the same portable hash, tools/twin/model.py init_params_hashed). Cases: the preset as shipped (DSSN + MLA),
 * with pre-norm, and with GQA (H_kv 2). Compared with tests/fixtures/model_preset_*.umfx:
 *   regenerated parameters: per tensor sum and sum of squares, rel 1e-6 (proves both sides use the same weights)
 *   losses and logits:   |err| <= 1e-5 * scale + 1e-6   (scale = max |reference|)
 *   gradients: per tensor ||g||_2 rel 1e-4, and <g, r> (r a fixed hashed vector in [-1,1)) within
 *              1e-4 * ||g||_2 ||r||_2 / sqrt(n) (a random projection; an error delta moves it by about
 *              ||delta|| ||r|| / sqrt(n), so this bounds the error per element at ~1e-4 of the rms gradient)
 *   router top-k ids exact, weights 1e-4 * scale;  10 AdamW step losses rel 1e-4 (early) / 1e-3 (late steps,
 *   where the loss is small and float32 drift over the steps is relatively larger).
 * The shipped case also checks that the fixture was made from the current tiny-moe.json (else: regenerate). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include "test.h"
#include "umoe/model.h"
#include "umoe/nn.h"

#define GOLDEN 0x9E3779B97F4A7C15ULL
#define PROJ_SEED 777

/* tools/twin/model.py hash_uniform: u_i = splitmix64((seed + i + 1) * GOLDEN) >> 11 times 2^-53 */
static double hash_u(uint64_t seed, uint64_t i) {
    uint64_t z = (seed + i + 1) * GOLDEN;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

/* tools/twin/model.py init_params_hashed, on top of the model's own init (for the norm start values g0) */
static void init_hashed(umoe_model *m, uint64_t seed) {
    const spec_model *s = model_spec(m);
    double sigma = s->init_std > 0 ? s->init_std : sqrt(1.0 / (2.0 * s->C * s->L));
    double sigma_e = s->init_std > 0 ? s->init_std : 0.5;
    int n;
    const model_tensor *t = model_tensors(m, &n);
    for (int k = 0; k < n; k++) {
        float *p = model_params(m) + t[k].offset;
        uint64_t sd = seed + 1000003ULL * (uint64_t)(k + 1);
        size_t len = strlen(t[k].name);
        int is_norm = len >= 11 && strcmp(t[k].name + len - 11, "norm.weight") == 0;
        double a = sqrt(3.0) * (strcmp(t[k].name, "model.embed_tokens.weight") == 0 ? sigma_e : sigma);
        double g0 = p[0];
        for (size_t j = 0; j < t[k].numel; j++) {
            double v = 2.0 * hash_u(sd, j) - 1.0;
            if (t[k].ndim == 2) p[j] = (float)(v * a);
            else if (is_norm) p[j] = (float)((1.0 + 0.2 * v) * g0);
            else p[j] = (float)(0.02 * v);
        }
    }
}

/* the fixture was generated from the current preset file (all fields the model uses; T is the test's) */
static void check_same_as_preset(const spec_model *fx) {
    spec_model p;
    CHECK(spec_model_load("tiny-moe", &p) == UMOE_OK, "%s", umoe_err);
#define SAME(f) CHECK(p.f == fx->f, "tiny-moe.json " #f " changed since the fixture (regenerate with tools/twin/gen_fixtures.py)")
    SAME(L); SAME(C); SAME(H); SAME(attn); SAME(q_lora); SAME(kv_lora); SAME(qk_nope); SAME(qk_rope); SAME(v_head);
    SAME(F); SAME(first_k_dense); SAME(E); SAME(E_shared); SAME(K); SAME(F_expert); SAME(V); SAME(tied);
    SAME(mtp); SAME(norm); SAME(score); SAME(norm_topk); SAME(score_bias);
#undef SAME
#define NEAR(f) CHECK(fabs(p.f - fx->f) <= 1e-6 * fabs(p.f), "tiny-moe.json " #f " changed since the fixture")
    NEAR(norm_eps); NEAR(rope_theta); NEAR(routed_scale); NEAR(aux_alpha); NEAR(z_loss); NEAR(mtp_weight);
#undef NEAR
}

static void run_case(const char *name) {
    char path[512];
    const char *dir = getenv("UMOE_FIXTURES");
    snprintf(path, sizeof path, "%s/model_%s.umfx", dir ? dir : "tests/fixtures", name);
    fx_file f;
    CHECK(fx_load(&f, path) == 0, "cannot load %s", path);
    if (!f.buf) return;
    spec_model s;
    fx_build_spec(&f, &s);
    if (strcmp(name, "preset_sandwich") == 0) check_same_as_preset(&s);
    const fx_tensor *tk = fx_get(&f, "tokens");
    CHECK(tk && tk->ndim == 2, "tokens missing");
    if (!tk) { fx_free(&f); return; }
    int B = (int)tk->shape[0], T = (int)tk->shape[1] - 1 - s.mtp;
    const int32_t *tokens = tk->data;
    umoe_model *m = NULL;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_OK, "model_init: %s", umoe_err);
    if (!m) { fx_free(&f); return; }
    uint64_t seed = (uint64_t)fx_scalar(&f, "init.seed");
    init_hashed(m, seed);
    int n;
    const model_tensor *t = model_tensors(m, &n);
    size_t np = model_n_params(m);
    float *p0 = umoe_malloc(np * sizeof(float), "initial params");
    memcpy(p0, model_params(m), np * sizeof(float));
    for (int k = 0; k < n; k++) {
        char key[160];
        snprintf(key, sizeof key, "paramstat.%s", t[k].name);
        const float *ps = fx_f32(&f, key, NULL);
        CHECK(ps != NULL, "%s missing: the fixture's tensor table differs from the model's", key);
        if (!ps) continue;
        double sum = 0, sq = 0;
        for (size_t j = 0; j < t[k].numel; j++) {
            double v = model_params(m)[t[k].offset + j];
            sum += v;
            sq += v * v;
        }
        CHECK(fabs(sq - ps[1]) <= 1e-6 * ps[1], "%s: regenerated params differ (sum of squares %.9g vs %.9g)",
              t[k].name, sq, ps[1]);
        CHECK(fabs(sum - ps[0]) <= 1e-6 * sqrt(ps[1] * (double)t[k].numel) + 1e-7, "%s: sum %.9g vs %.9g",
              t[k].name, sum, ps[0]);
    }

    model_losses L;
    model_zero_grad(m);
    model_forward_backward(m, tokens, B, T, 1.0f, &L);
    struct { const char *k; double got; } losses[] = {
        {"loss.total", L.loss}, {"loss.lm", L.lm_loss}, {"loss.mtp", L.mtp_loss},
        {"loss.aux", L.aux_loss}, {"loss.z", L.z_loss}};
    for (size_t i = 0; i < sizeof losses / sizeof *losses; i++) {
        double want = fx_scalar(&f, losses[i].k);
        fprintf(stderr, "  %s %s: got %.8f want %.8f\n", name, losses[i].k, losses[i].got, want);
        CHECK_CLOSE(losses[i].got, want, 1e-5, 1e-6, losses[i].k);
    }
    size_t N = (size_t)B * (size_t)T, numel;
    const float *wl = fx_f32(&f, "logits", &numel);
    CHECK(wl && numel == N * (size_t)s.V, "logits missing");
    if (wl) {
        double err = 0, scale = 0;
        for (size_t i = 0; i < numel; i++) {
            err = fmax(err, fabs((double)model_logits(m)[i] - wl[i]));
            scale = fmax(scale, fabs(wl[i]));
        }
        fprintf(stderr, "  %s logits: max err %.3g (scale %.3g)\n", name, err, scale);
        CHECK(err <= 1e-5 * scale + 1e-6, "logits: max err %.3g, scale %.3g", err, scale);
    }
    double worst_norm = 0, worst_proj = 0;
    for (int k = 0; k < n; k++) {
        char key[160];
        snprintf(key, sizeof key, "gradstat.%s", t[k].name);
        const float *gs = fx_f32(&f, key, NULL);
        CHECK(gs != NULL, "%s missing", key);
        if (!gs) continue;
        const float *g = model_grads(m) + t[k].offset;
        double nrm = 0, proj = 0, rn = 0;
        uint64_t sd = PROJ_SEED + 1000003ULL * (uint64_t)(k + 1);
        for (size_t j = 0; j < t[k].numel; j++) {
            double r = 2.0 * hash_u(sd, j) - 1.0;
            nrm += (double)g[j] * g[j];
            proj += g[j] * r;
            rn += r * r;
        }
        nrm = sqrt(nrm);
        /* an error delta in g moves <g,r> by about ||delta|| ||r|| / sqrt(n): judge it per element */
        double pscale = gs[0] * sqrt(rn / (double)t[k].numel);
        double en = fabs(nrm - gs[0]) / (gs[0] > 0 ? gs[0] : 1), ep = fabs(proj - gs[1]) / (pscale + 1e-30);
        worst_norm = fmax(worst_norm, en);
        worst_proj = fmax(worst_proj, ep);
        CHECK(fabs(nrm - gs[0]) <= 1e-4 * gs[0] + 1e-9, "grad %s: ||g|| %.9g, want %.9g", t[k].name, nrm, gs[0]);
        CHECK(fabs(proj - gs[1]) <= 1e-4 * pscale + 1e-9, "grad %s: <g,r> %.9g, want %.9g", t[k].name, proj, gs[1]);
    }
    fprintf(stderr, "  %s grads: worst |d||g|||/||g|| %.3g, worst |d<g,r>|/(||g|| ||r|| / sqrt(n)) %.3g\n", name, worst_norm,
            worst_proj);
    for (int i = 0; i < model_n_moe_layers(m); i++) {
        char key[64];
        const int32_t *idx;
        const float *w;
        model_router_topk(m, i, &idx, &w);
        snprintf(key, sizeof key, "router.%d.idx", i);
        const int32_t *widx = fx_i32(&f, key, &numel);
        CHECK(widx && numel == N * (size_t)s.K, "%s missing", key);
        if (!widx) continue;
        size_t mism = 0;
        for (size_t j = 0; j < numel; j++) mism += idx[j] != widx[j];
        CHECK(mism == 0, "MoE layer %d: %zu of %zu top-k ids differ", i, mism, numel);
        snprintf(key, sizeof key, "router.%d.w", i);
        const float *ww = fx_f32(&f, key, &numel);
        double err = 0, scale = 0;
        for (size_t j = 0; ww && j < numel; j++) {
            err = fmax(err, fabs((double)w[j] - ww[j]));
            scale = fmax(scale, fabs(ww[j]));
        }
        CHECK(ww && err <= 1e-4 * scale, "MoE layer %d weights: max err %.3g", i, err);
    }
    /* 10 AdamW steps */
    memcpy(model_params(m), p0, np * sizeof(float));
    float *mo = umoe_calloc(np, sizeof(float), "adam m"), *vo = umoe_calloc(np, sizeof(float), "adam v");
    float lr = (float)fx_scalar(&f, "train.lr"), b1 = (float)fx_scalar(&f, "train.beta1");
    float b2 = (float)fx_scalar(&f, "train.beta2"), eps = (float)fx_scalar(&f, "train.eps");
    float wd = (float)fx_scalar(&f, "train.wd"), gamma = (float)fx_scalar(&f, "train.gamma");
    size_t nsteps;
    const float *want = fx_f32(&f, "train.loss", &nsteps);
    CHECK(want != NULL, "train.loss missing");
    for (size_t step = 1; want && step <= nsteps; step++) {
        model_losses L2;
        model_zero_grad(m);
        model_forward_backward(m, tokens, B, T, 1.0f, &L2);
        fprintf(stderr, "  %s step %zu: loss %.6f want %.6f\n", name, step, L2.loss, want[step - 1]);
        CHECK_CLOSE(L2.loss, want[step - 1], step <= 5 ? 1e-4 : 1e-3, 0, "AdamW step loss");
        for (int i = 0; i < n; i++) {
            size_t o = t[i].offset;
            adamw_update(model_params(m) + o, model_grads(m) + o, mo + o, vo + o, t[i].numel, lr, b1, b2, eps,
                         t[i].decay ? wd : 0.0f, (int)step);
        }
        model_score_bias_update(m, NULL, gamma);
    }
    umoe_free(mo, np * sizeof(float));
    umoe_free(vo, np * sizeof(float));
    umoe_free(p0, np * sizeof(float));
    model_free(m);
    fx_free(&f);
}

static void test_preset_sandwich_mla(void) { run_case("preset_sandwich"); }
static void test_preset_pre_mla(void) { run_case("preset_pre"); }
static void test_preset_gqa(void) { run_case("preset_gqa"); }

int main(void) {
    RUN(test_preset_sandwich_mla);
    RUN(test_preset_pre_mla);
    RUN(test_preset_gqa);
    TEST_MAIN_END();
}
