/* test_model_reference.c - the C model against the PyTorch twin (tools/twin), through the committed fixtures
 * tests/fixtures/model_<case>.umfx (see tools/twin/gen_fixtures.py). For each case (MLA pre-norm, MLA sandwich
 * norm with sigmoid router + score bias + a zero-token expert, GQA with qkv bias and MTP depth 2) it loads the
 * twin's parameters by HF name, runs forward + backward and compares:
 *   losses (total, lm, mtp, aux, z) and logits   |err| <= 1e-5 * scale + 1e-6
 *   every parameter's gradient                     max_i |err_i| <= 1e-4 * max_i |want_i| + 1e-7 (per tensor)
 *   router top-k ids (exact) and weights           |err| <= 1e-4 * scale
 *   the losses of 10 AdamW steps (fixed lr, betas, eps, wd; score-bias update when enabled)  rel 1e-4
 * where scale = max |want| over the tensor (so near-zero elements are judged against the tensor's size).
 * The reference is float64 arithmetic on the same float32 parameters; the tolerances cover float32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include "test.h"
#include "umoe/model.h"
#include "umoe/nn.h"

static const char *fixture_dir(void) {
    const char *d = getenv("UMOE_FIXTURES");
    return d ? d : "tests/fixtures";
}

/* max |a - b| and max |b| over n values */
static void diff(const float *a, const float *b, size_t n, double *maxerr, double *scale) {
    *maxerr = 0;
    *scale = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - (double)b[i]);
        if (!(e <= *maxerr)) *maxerr = isnan(e) ? INFINITY : e;
        if (fabs(b[i]) > *scale) *scale = fabs(b[i]);
    }
}

static int load_params(umoe_model *m, const fx_file *f) {
    int n, ok = 1, nfx = 0;
    const model_tensor *t = model_tensors(m, &n);
    for (int i = 0; i < f->n; i++) nfx += strncmp(f->t[i].name, "param.", 6) == 0;
    CHECK(nfx == n, "fixture has %d parameters, model %d", nfx, n);
    for (int i = 0; i < n; i++) {
        char key[160];
        snprintf(key, sizeof key, "param.%s", t[i].name);
        size_t numel = 0;
        const float *src = fx_f32(f, key, &numel);
        CHECK(src && numel == t[i].numel, "tensor %s missing or wrong size in the fixture", t[i].name);
        if (!src || numel != t[i].numel) { ok = 0; continue; }
        const fx_tensor *ft = fx_get(f, key);
        for (int d = 0; d < t[i].ndim; d++)
            CHECK(ft->shape[d] == t[i].shape[d], "%s: dim %d is %zu, fixture %llu", t[i].name, d, t[i].shape[d],
                  (unsigned long long)ft->shape[d]);
        memcpy(model_params(m) + t[i].offset, src, numel * sizeof(float));
    }
    return ok;
}

static void run_case(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/model_%s.umfx", fixture_dir(), name);
    fx_file f;
    CHECK(fx_load(&f, path) == 0, "cannot load %s", path);
    if (!f.buf) return;
    spec_model s;
    CHECK(fx_build_spec(&f, &s), "bad config in %s", path);
    const fx_tensor *tk = fx_get(&f, "tokens");
    CHECK(tk && tk->ndim == 2, "tokens missing");
    if (!tk) { fx_free(&f); return; }
    int B = (int)tk->shape[0], T = (int)tk->shape[1] - 1 - s.mtp;
    const int32_t *tokens = tk->data;
    umoe_model *m = NULL;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_OK, "model_init: %s", umoe_err);
    if (!m) { fx_free(&f); return; }
    if (!load_params(m, &f)) goto done;

    /* forward + backward */
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
    const float *want_logits = fx_f32(&f, "logits", &numel);
    CHECK(want_logits && numel == N * (size_t)s.V, "logits missing");
    double err, scale, worst_grad = 0;
    if (want_logits) {
        diff(model_logits(m), want_logits, numel, &err, &scale);
        fprintf(stderr, "  %s logits: max err %.3g (scale %.3g)\n", name, err, scale);
        CHECK(err <= 1e-5 * scale + 1e-6, "logits: max err %.3g, scale %.3g", err, scale);
    }
    /* gradients, per tensor */
    int n, zero_expert_tensors = 0;
    const model_tensor *t = model_tensors(m, &n);
    for (int i = 0; i < n; i++) {
        char key[160];
        snprintf(key, sizeof key, "grad.%s", t[i].name);
        const float *want = fx_f32(&f, key, &numel);
        CHECK(want && numel == t[i].numel, "%s missing", key);
        if (!want) continue;
        const float *got = model_grads(m) + t[i].offset;
        diff(got, want, numel, &err, &scale);
        double rel = scale > 0 ? err / scale : err;
        if (rel > worst_grad) worst_grad = rel;
        CHECK(err <= 1e-4 * scale + 1e-7, "grad %s: max err %.3g, scale %.3g", t[i].name, err, scale);
        if (t[i].expert >= 0 && scale == 0) { /* an expert that received no token: grads exactly zero */
            zero_expert_tensors++;
            for (size_t j = 0; j < numel; j++) CHECK(got[j] == 0.0f, "zero-token expert %s: grad %g", t[i].name, got[j]);
        }
    }
    fprintf(stderr, "  %s grads: worst per-tensor max err / scale %.3g; %d zero-token expert tensors\n", name,
            worst_grad, zero_expert_tensors);
    if (strcmp(name, "mla_sandwich") == 0)
        CHECK(zero_expert_tensors >= 3, "the sandwich case must exercise an expert with zero tokens (%d tensors)",
              zero_expert_tensors);
    /* router top-k */
    CHECK(model_n_moe_layers(m) == L.n_moe_layers, "n_moe_layers");
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
        CHECK(ww != NULL, "%s missing", key);
        if (ww) {
            diff(w, ww, numel, &err, &scale);
            CHECK(err <= 1e-4 * scale, "MoE layer %d weights: max err %.3g scale %.3g", i, err, scale);
        }
        long total = 0;
        for (int e = 0; e < s.E; e++) total += L.expert_load[(size_t)i * (size_t)s.E + (size_t)e];
        CHECK(total == (long)(N * (size_t)s.K), "MoE layer %d: load sums to %ld, want %zu token-assignments", i,
              total, N * (size_t)s.K);
    }
    /* model_forward gives the same loss; grads accumulate (two half-scaled passes = one full pass) */
    model_losses L2;
    model_forward(m, tokens, B, T, &L2);
    CHECK(L2.loss == L.loss, "model_forward loss %.9g != forward_backward loss %.9g", L2.loss, L.loss);
    {
        size_t np = model_n_params(m);
        float *g1 = umoe_malloc(np * sizeof(float), "test grads");
        memcpy(g1, model_grads(m), np * sizeof(float));
        model_zero_grad(m);
        model_forward_backward(m, tokens, B, T, 0.5f, &L2);
        model_forward_backward(m, tokens, B, T, 0.5f, &L2);
        diff(model_grads(m), g1, np, &err, &scale);
        CHECK(err <= 1e-6 * scale, "accumulated half grads differ from full grads: %.3g", err);
        umoe_free(g1, np * sizeof(float));
    }
    /* 10 AdamW steps */
    {
        load_params(m, &f);
        size_t np = model_n_params(m), nsteps;
        float *mo = umoe_calloc(np, sizeof(float), "adam m"), *vo = umoe_calloc(np, sizeof(float), "adam v");
        float lr = (float)fx_scalar(&f, "train.lr"), b1 = (float)fx_scalar(&f, "train.beta1");
        float b2 = (float)fx_scalar(&f, "train.beta2"), eps = (float)fx_scalar(&f, "train.eps");
        float wd = (float)fx_scalar(&f, "train.wd"), gamma = (float)fx_scalar(&f, "train.gamma");
        const float *want = fx_f32(&f, "train.loss", &nsteps);
        CHECK(want != NULL, "train.loss missing");
        for (size_t step = 1; want && step <= nsteps; step++) {
            model_zero_grad(m);
            model_forward_backward(m, tokens, B, T, 1.0f, &L2);
            fprintf(stderr, "  %s step %zu: loss %.6f want %.6f\n", name, step, L2.loss, want[step - 1]);
            CHECK_CLOSE(L2.loss, want[step - 1], 1e-4, 0, "AdamW step loss");
            for (int i = 0; i < n; i++) {
                size_t o = t[i].offset;
                adamw_update(model_params(m) + o, model_grads(m) + o, mo + o, vo + o, t[i].numel, lr, b1, b2, eps,
                             t[i].decay ? wd : 0.0f, (int)step);
            }
            model_score_bias_update(m, NULL, gamma);
        }
        umoe_free(mo, np * sizeof(float));
        umoe_free(vo, np * sizeof(float));
    }
done:
    model_free(m);
    fx_free(&f);
}

static void test_reference_mla_pre(void) { run_case("mla_pre"); }
static void test_reference_mla_sandwich(void) { run_case("mla_sandwich"); }
static void test_reference_gqa(void) { run_case("gqa"); }

int main(void) {
    RUN(test_reference_mla_pre);
    RUN(test_reference_mla_sandwich);
    RUN(test_reference_gqa);
    TEST_MAIN_END();
}
