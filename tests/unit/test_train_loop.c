/* test_train_loop.c - the training loop on real (small) runs:
 *  - learning: a random first-order Markov chain over 5 symbols, generated here, whose entropy rate
 *    H = -sum_i pi_i sum_j P_ij ln P_ij is computed exactly from its stationary distribution pi (solved as a
 *    linear system); after a short training run the validation loss must be within 0.05 nats of H;
 *  - gradient accumulation: B = 4 x accum 2 sees the same windows as B = 8 x 1 and must give the same loss
 *    and gradient norm (to float rounding);
 *  - the global-batch aux scope: with accum 2 its aux loss equals the one-micro-batch aux loss of B = 8;
 *  - a checkpoint write that fails leaves the previous checkpoint byte-for-byte intact;
 *  - data errors reach the caller as input errors. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "umoe/train.h"

static char dir[256];

static const char *tmp(const char *name) {
    static char p[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

/* A tiny MoE transformer: MLA, 1 dense + 1 MoE layer (4 experts, top-2, 1 shared), MTP depth 1, bytes. */
static void tiny_spec(spec_model *s) {
    spec_model_defaults(s);
    snprintf(s->name, sizeof s->name, "test-tiny");
    s->L = 2; s->C = 32; s->H = 2; s->attn = SPEC_ATTN_MLA; s->q_lora = 16; s->kv_lora = 16; s->qk_nope = 8;
    s->qk_rope = 8; s->v_head = 8; s->F = 64; s->first_k_dense = 1; s->E = 4; s->E_shared = 1; s->K = 2;
    s->F_expert = 32; s->V = 256; s->mtp = 1; s->T = 32;
    UMOE_ASSERT(spec_model_validate(s, "test") == UMOE_OK);
}

/* ---- the Markov source ---- */
enum { S = 5 };

/* Stationary distribution: solve pi (P - I) = 0 with sum(pi) = 1 (Gaussian elimination, partial pivoting;
 * the last balance equation is replaced by the normalisation). */
static void stationary(const double P[S][S], double pi[S]) {
    double A[S][S + 1];
    for (int j = 0; j < S; j++) {
        for (int i = 0; i < S; i++) A[j][i] = P[i][j] - (i == j);
        A[j][S] = 0;
    }
    for (int i = 0; i < S; i++) A[S - 1][i] = 1;
    A[S - 1][S] = 1;
    for (int c = 0; c < S; c++) {
        int piv = c;
        for (int r = c + 1; r < S; r++) if (fabs(A[r][c]) > fabs(A[piv][c])) piv = r;
        for (int k = 0; k <= S; k++) { double t = A[c][k]; A[c][k] = A[piv][k]; A[piv][k] = t; }
        for (int r = 0; r < S; r++) {
            if (r == c) continue;
            double f = A[r][c] / A[c][c];
            for (int k = c; k <= S; k++) A[r][k] -= f * A[c][k];
        }
    }
    for (int i = 0; i < S; i++) pi[i] = A[i][S] / A[i][i];
}

static void test_learning_markov(void) {
    umoe_rng g;
    umoe_rng_seed(&g, 2024);
    double P[S][S], pi[S];
    for (int i = 0; i < S; i++) { /* peaked random rows: p_ij proportional to u^3 */
        double sum = 0;
        for (int j = 0; j < S; j++) { double u = umoe_rng_uniform(&g); P[i][j] = u * u * u + 1e-3; sum += P[i][j]; }
        for (int j = 0; j < S; j++) P[i][j] /= sum;
    }
    stationary(P, pi);
    double H = 0, check = 0;
    for (int i = 0; i < S; i++) {
        double pj = 0;
        for (int j = 0; j < S; j++) { H -= pi[i] * P[i][j] * log(P[i][j]); pj += pi[j] * P[j][i]; }
        check = fmax(check, fabs(pj - pi[i]));
    }
    CHECK(check < 1e-12, "pi is stationary (residual %g)", check);
    enum { N = 40000 };
    static unsigned char text[N];
    int x = 0;
    for (int n = 0; n < N; n++) {
        double r = umoe_rng_uniform(&g), c = 0;
        int j = 0;
        for (; j < S - 1; j++) { c += P[x][j]; if (r < c) break; }
        x = j;
        text[n] = (unsigned char)('a' + x);
    }
    FILE *f = fopen(tmp("markov.txt"), "wb");
    fwrite(text, 1, N, f);
    fclose(f);
    /* the best possible loss on this very validation sample (the true model), for the log */
    double emp = 0;
    int nv = 0;
    for (int n = N - N / 10 + 1; n < N; n++, nv++) emp -= log(P[text[n - 1] - 'a'][text[n] - 'a']);
    spec_model s;
    tiny_spec(&s);
    train_config c;
    train_config_defaults(&c);
    c.data_path = tmp("markov.txt");
    c.val_batches = 0; /* the whole validation split */
    c.progress = 2;
    c.o.B = 16; c.o.T = 32; c.o.steps = 150; c.o.lr = 1e-2; c.o.warmup = 10; c.o.seed = 3;
    train_result r;
    umoe_log_set_level(UMOE_LOG_WARN);
    double t0 = umoe_now();
    umoe_status st = train_run(&s, &c, &r);
    umoe_log_set_level(UMOE_LOG_INFO);
    CHECK(st == UMOE_OK, "%s", umoe_err);
    fprintf(stderr, "  Markov chain: entropy rate %.4f nats, true model on the validation sample %.4f, trained "
                    "model %.4f (%.1f s, %.0f tokens/s)\n", H, emp / nv, r.val_loss, umoe_now() - t0, r.tokens_per_s);
    CHECK(fabs(r.val_loss - H) < 0.05, "validation loss %.4f, entropy rate %.4f", r.val_loss, H);
    CHECK(H > 0.5 && H < log(S) - 0.1, "the source is neither trivial nor uniform (H = %.3f)", H);
}

/* ---- JSONL log helpers ---- */
static int read_log(const char *path, double *loss, double *gnorm, double *aux, int max) {
    size_t len;
    char *t = umoe_read_file(path, &len);
    if (!t) return 0;
    int n = 0;
    for (char *line = strtok(t, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        if (!o) break;
        loss[n] = cJSON_GetObjectItem(o, "loss")->valuedouble;
        gnorm[n] = cJSON_GetObjectItem(o, "grad_norm")->valuedouble;
        aux[n] = cJSON_GetObjectItem(o, "aux_loss")->valuedouble;
        n++;
        cJSON_Delete(o);
    }
    umoe_free(t, len + 1);
    return n;
}

static void write_text(const char *path, size_t n) {
    FILE *f = fopen(path, "wb");
    umoe_rng g;
    umoe_rng_seed(&g, 7);
    for (size_t i = 0; i < n; i++) fputc("the quick brown fox jumps over a lazy dog "[umoe_rng_u64(&g) % 42], f);
    fclose(f);
}

static umoe_status run(spec_model *s, int B, int accum, long steps, const char *log, const char *out,
                       const char *resume, train_result *r) {
    train_config c;
    train_config_defaults(&c);
    c.data_path = tmp("text.txt");
    c.log_path = log;
    c.out_dir = out;
    c.resume_dir = resume;
    c.progress = 2;
    c.val_batches = 2;
    c.o.B = B; c.o.accum = accum; c.o.T = 16; c.o.steps = steps; c.o.lr = 3e-3; c.o.warmup = 1;
    umoe_log_set_level(UMOE_LOG_ERROR);
    umoe_status st = train_run(s, &c, r);
    umoe_log_set_level(UMOE_LOG_INFO);
    return st;
}

static void test_accumulation_matches_big_batch(void) {
    write_text(tmp("text.txt"), 20000);
    spec_model s;
    tiny_spec(&s);
    s.aux_alpha = 0; /* the micro-batch aux loss legitimately differs between the two; compare the rest */
    train_result r;
    double l1[4], g1[4], a1[4], l2[4], g2[4], a2[4];
    size_t held = umoe_alloc_current();
    CHECK(run(&s, 8, 1, 3, tmp("big.jsonl"), NULL, NULL, &r) == UMOE_OK, "%s", umoe_err);
    CHECK(umoe_alloc_current() == held, "a run frees all it allocated (%zu bytes left)", umoe_alloc_current() - held);
    CHECK(run(&s, 4, 2, 3, tmp("acc.jsonl"), NULL, NULL, &r) == UMOE_OK, "%s", umoe_err);
    int n1 = read_log(tmp("big.jsonl"), l1, g1, a1, 4), n2 = read_log(tmp("acc.jsonl"), l2, g2, a2, 4);
    CHECK(n1 == 3 && n2 == 3, "3 log lines each (%d, %d)", n1, n2);
    for (int i = 0; i < 3 && n1 == 3 && n2 == 3; i++) {
        CHECK_CLOSE(l2[i], l1[i], 1e-5, 0, "loss, accum 2 vs one batch");
        CHECK_CLOSE(g2[i], g1[i], 1e-4, 0, "grad norm, accum 2 vs one batch");
    }
    CHECK(n1 == 3 && g1[0] > 0 && l1[2] < l1[0], "it trains (loss %g -> %g)", l1[0], l1[2]);
}

static void test_global_aux_scope(void) {
    spec_model s;
    tiny_spec(&s);
    s.aux_alpha = 0.1;
    train_result r;
    double l1[2], g1[2], a1[2], l2[2], g2[2], a2[2], l3[2], g3[2], a3[2];
    CHECK(run(&s, 8, 1, 1, tmp("one.jsonl"), NULL, NULL, &r) == UMOE_OK, "%s", umoe_err);
    s.aux_scope = SPEC_AUX_GLOBAL;
    CHECK(run(&s, 4, 2, 1, tmp("glob.jsonl"), NULL, NULL, &r) == UMOE_OK, "%s", umoe_err);
    s.aux_scope = SPEC_AUX_MICRO;
    CHECK(run(&s, 4, 2, 1, tmp("micro.jsonl"), NULL, NULL, &r) == UMOE_OK, "%s", umoe_err);
    int ok = read_log(tmp("one.jsonl"), l1, g1, a1, 2) == 1 && read_log(tmp("glob.jsonl"), l2, g2, a2, 2) == 1 &&
             read_log(tmp("micro.jsonl"), l3, g3, a3, 2) == 1;
    CHECK(ok, "logs");
    if (!ok) return;
    /* sum_i f_i(global) * mean_a P_i(a) = sum_i f_i P_i over the whole batch (equal micro-batches) */
    CHECK_CLOSE(a2[0], a1[0], 1e-5, 0, "global-scope aux loss = the aux loss of the whole batch");
    CHECK(fabs(a3[0] - a1[0]) > 1e-6 * a1[0], "micro scope differs (%.9g vs %.9g): the test can tell them apart",
          a3[0], a1[0]);
}

static int same_file(const char *a, const char *b) {
    size_t la, lb;
    char *x = umoe_read_file(a, &la), *y = umoe_read_file(b, &lb);
    int same = x && y && la == lb && !memcmp(x, y, la);
    if (x) umoe_free(x, la + 1);
    if (y) umoe_free(y, lb + 1);
    return same;
}

static void test_failed_save_keeps_checkpoint(void) {
    spec_model s;
    tiny_spec(&s);
    train_result r;
    CHECK(run(&s, 2, 1, 2, NULL, tmp("ck"), NULL, &r) == UMOE_OK, "%s", umoe_err);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", tmp("ck"), tmp("ck_copy"));
    CHECK(system(cmd) == 0, "copy");
    const char *files[] = {"model.safetensors", "config.json", "train_state.bin"};
    for (int fail_at = 1; fail_at <= 3; fail_at++) { /* fail on the 1st, 2nd or 3rd file's fsync */
        train_afile_fail_countdown = fail_at;
        umoe_status st = run(&s, 2, 1, 4, NULL, tmp("ck"), tmp("ck"), &r);
        train_afile_fail_countdown = 0;
        CHECK(st == UMOE_EFAIL, "a failed save fails the run (file %d): %d", fail_at, (int)st);
        CHECK(strstr(umoe_err, "previous file is kept") != NULL, "message: %s", umoe_err);
        for (int i = 0; i < 3; i++) {
            char a[600], b[600];
            snprintf(a, sizeof a, "%s/%s", tmp("ck"), files[i]);
            snprintf(b, sizeof b, "%s/%s", tmp("ck_copy"), files[i]);
            CHECK(same_file(a, b), "%s unchanged after a failure at file %d", files[i], fail_at);
        }
    }
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c tmp", tmp("ck"));
    FILE *p = popen(cmd, "r");
    int n_tmp = -1;
    if (p) { if (fscanf(p, "%d", &n_tmp) != 1) n_tmp = -1; pclose(p); }
    CHECK(n_tmp == 0, "no temp files left (%d)", n_tmp);
    CHECK(run(&s, 2, 1, 4, NULL, tmp("ck"), tmp("ck"), &r) == UMOE_OK && r.steps_done == 4,
          "the kept checkpoint resumes: %s", umoe_err);
}

static void test_input_errors(void) {
    spec_model s;
    tiny_spec(&s);
    s.V = 100; /* the text holds bytes >= 100 ('t' = 116) */
    train_result r;
    CHECK(run(&s, 2, 1, 1, NULL, NULL, NULL, &r) == UMOE_EINPUT && strstr(umoe_err, "outside the model's vocabulary"),
          "%s", umoe_err);
    tiny_spec(&s);
    CHECK(run(&s, 2, 1, 1, NULL, NULL, tmp("nowhere"), &r) == UMOE_EINPUT && strstr(umoe_err, "nowhere"), "%s",
          umoe_err);
    s.C = 48; /* a different shape than the checkpoint of test_failed_save_keeps_checkpoint */
    CHECK(run(&s, 2, 1, 8, NULL, NULL, tmp("ck"), &r) == UMOE_EINPUT && strstr(umoe_err, "different model shape"),
          "%s", umoe_err);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/umoe_test_train_loop_XXXXXX");
    UMOE_ASSERT(mkdtemp(dir));
    RUN(test_learning_markov);
    RUN(test_accumulation_matches_big_batch);
    RUN(test_global_aux_scope);
    RUN(test_failed_save_keeps_checkpoint);
    RUN(test_input_errors);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
