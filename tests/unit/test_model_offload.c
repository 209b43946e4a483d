/* test_model_offload.c - activation offload (model_set_offload): with a host pool and with a file, alone and
 * together with recomputation, the losses and all gradients of two steps are bit-identical to the run that
 * keeps everything in the arena; the arena keeps only two layers' worth of the offloaded activations (it
 * shrinks, the pool holds every layer's); the background thread really moved the bytes; an unusable
 * directory is refused with a message naming it; the option parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "model_test_spec.h"
#include "test.h"
#include "umoe/model.h"

enum { B = 2, T = 16 };

static void two_steps(umoe_model *m, const int32_t *tok, int mtp, model_losses L[2], float *g_out) {
    size_t np = model_n_params(m);
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &L[0]);
    float *p = model_params(m), *g = model_grads(m);
    for (size_t i = 0; i < np; i++) p[i] -= 0.05f * g[i];
    model_losses ev;
    model_forward(m, tok, B, T, &ev); /* a forward-only call in between (evaluation): overwrites the slots */
    model_zero_grad(m);
    model_forward_backward(m, tok + B * (T + 1 + mtp), B, T, 0.5f, &L[1]);
    memcpy(g_out, g, np * sizeof(float));
}

static char g_dir[64];

static void check_mode(const spec_model *s, model_offload_kind kind, unsigned rc, const char *label) {
    int mtp = s->mtp;
    int32_t tok[2 * B * (T + 1 + 2)];
    test_tokens(tok, 2 * B, T, mtp, s->V, 33);
    umoe_model *ref, *m;
    CHECK(model_init(&ref, s, B, T, 9) == UMOE_OK, "%s", umoe_err);
    CHECK(model_init(&m, s, B, T, 9) == UMOE_OK, "%s", umoe_err);
    CHECK(model_set_recompute(m, rc) == UMOE_OK, "%s", umoe_err);
    CHECK(model_set_offload(m, kind, kind == MODEL_OFFLOAD_FILE ? g_dir : NULL) == UMOE_OK, "%s", umoe_err);
    size_t np = model_n_params(ref);
    float *gr = umoe_malloc(np * sizeof(float), "ref grads"), *g = umoe_malloc(np * sizeof(float), "grads");
    model_losses Lr[2], L[2];
    two_steps(ref, tok, mtp, Lr, gr);
    two_steps(m, tok, mtp, L, g);
    for (int k = 0; k < 2; k++)
        CHECK(L[k].loss == Lr[k].loss && L[k].aux_loss == Lr[k].aux_loss && L[k].mtp_loss == Lr[k].mtp_loss,
              "%s step %d: loss %.17g vs %.17g", label, k, L[k].loss, Lr[k].loss);
    size_t differ = 0;
    for (size_t j = 0; j < np; j++) differ += memcmp(&g[j], &gr[j], sizeof(float)) != 0;
    CHECK(differ == 0, "%s: %zu of %zu gradients differ", label, differ, np);
    model_memory a, r;
    model_memory_report(m, &a);
    model_memory_report(ref, &r);
    CHECK(a.arena < r.arena, "%s: arena %zu not below %zu without offload", label, a.arena, r.arena);
    CHECK(a.arena_slots > 0 && a.offload_pool >= a.arena_slots, "%s: slots %zu, pool %zu", label, a.arena_slots,
          a.offload_pool);
    CHECK(a.offload_moved > a.arena_slots, "%s: the thread moved %.0f bytes", label, a.offload_moved);
    fprintf(stderr, "  %s: arena %zu (without offload %zu), slots %zu, pool %zu, moved %.0f B, waited %.2g s\n",
            label, a.arena, r.arena, a.arena_slots, a.offload_pool, a.offload_moved, a.offload_wait_s);
    model_free(m);
    model_free(ref);
    umoe_free(gr, np * sizeof(float));
    umoe_free(g, np * sizeof(float));
}

static void test_host(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    check_mode(&s, MODEL_OFFLOAD_HOST, 0, "host");
    check_mode(&s, MODEL_OFFLOAD_HOST, SPEC_RC_SELECTIVE | SPEC_RC_PERMUTE, "host + attn_core,permute");
    test_spec_tiny(&s, SPEC_ATTN_GQA, SPEC_NORM_PRE);
    s.mtp = 2;
    check_mode(&s, MODEL_OFFLOAD_HOST, SPEC_RC_NORM | SPEC_RC_ACT, "host, GQA MTP 2 + norm,activation");
}

static void test_file(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    check_mode(&s, MODEL_OFFLOAD_FILE, 0, "file");
    check_mode(&s, MODEL_OFFLOAD_FILE, SPEC_RC_MLA_UP | SPEC_RC_EXPERT_FC1, "file + mla_up,expert_fc1");
    /* the file is unlinked at once: nothing is left in the directory */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", g_dir);
    CHECK(system(cmd) == 0, "offload directory %s is not empty after the models were freed", g_dir);
}

/* full recompute keeps nothing per layer but the layer output: offload then has nothing to move */
static void test_full_with_offload(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_SANDWICH);
    umoe_model *m;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_OK, "%s", umoe_err);
    CHECK(model_set_offload(m, MODEL_OFFLOAD_HOST, NULL) == UMOE_OK, "%s", umoe_err);
    CHECK(model_set_recompute(m, SPEC_RC_FULL) == UMOE_OK, "%s", umoe_err);
    int32_t tok[B * (T + 2)];
    test_tokens(tok, B, T, s.mtp, s.V, 2);
    model_losses L;
    model_zero_grad(m);
    model_forward_backward(m, tok, B, T, 1.0f, &L);
    model_memory r;
    model_memory_report(m, &r);
    CHECK(r.arena_slots == 0 && r.offload_moved == 0, "slots %zu, moved %.0f", r.arena_slots, r.offload_moved);
    model_free(m);
}

static void test_bad_dir(void) {
    spec_model s;
    test_spec_tiny(&s, SPEC_ATTN_MLA, SPEC_NORM_PRE);
    umoe_model *m;
    CHECK(model_init(&m, &s, B, T, 1) == UMOE_OK, "%s", umoe_err);
    model_memory before, after;
    model_memory_report(m, &before);
    CHECK(model_set_offload(m, MODEL_OFFLOAD_FILE, "/nonexistent/umoe-dir") == UMOE_EINPUT, "missing directory");
    CHECK(strstr(umoe_err, "/nonexistent/umoe-dir") != NULL, "message names the directory: %s", umoe_err);
    char file[96];
    snprintf(file, sizeof file, "%s/plain-file", g_dir);
    FILE *f = fopen(file, "w");
    if (f) fclose(f);
    CHECK(model_set_offload(m, MODEL_OFFLOAD_FILE, file) == UMOE_EINPUT, "a regular file is not a directory");
    unlink(file);
    model_memory_report(m, &after);
    CHECK(after.arena == before.arena && after.arena_slots == 0, "a refused offload leaves the model as it was");
    int32_t tok[B * (T + 2)];
    test_tokens(tok, B, T, s.mtp, s.V, 2);
    model_losses L;
    model_forward_backward(m, tok, B, T, 1.0f, &L); /* still usable */
    model_free(m);
}

static void test_parse(void) {
    model_offload_kind k;
    const char *dir;
    CHECK(model_offload_parse("none", "--offload", &k, &dir) == UMOE_OK && k == MODEL_OFFLOAD_NONE, "none");
    CHECK(model_offload_parse("host", "--offload", &k, &dir) == UMOE_OK && k == MODEL_OFFLOAD_HOST, "host");
    CHECK(model_offload_parse("file:/tmp/x", "--offload", &k, &dir) == UMOE_OK && k == MODEL_OFFLOAD_FILE &&
              !strcmp(dir, "/tmp/x"), "file:DIR");
    CHECK(model_offload_parse("file:", "--offload", &k, &dir) == UMOE_EINPUT, "file: without a directory");
    CHECK(model_offload_parse("disk", "--offload", &k, &dir) == UMOE_EINPUT, "unknown mode");
    CHECK(strstr(umoe_err, "--offload") && strstr(umoe_err, "file:DIR"), "message: %s", umoe_err);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/umoe-offload-test-XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    RUN(test_host);
    RUN(test_file);
    RUN(test_full_with_offload);
    RUN(test_bad_dir);
    RUN(test_parse);
    rmdir(g_dir);
    TEST_MAIN_END();
}
