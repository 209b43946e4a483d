/* test_nn_threads.c - results do not depend on the layout of the run. Every kernel that splits its work over OpenMP threads gives bit-identical results with
 * 1 and 2 threads, at sizes above the thresholds where the split happens (NN_PAR_ELEMS = 32768 elements), so
 * the parallel paths themselves are exercised and a layout-independent run is guaranteed. Without OpenMP it
 * checks that two runs agree (trivially) and still runs every large path once. And the float sums do not
 * depend on buffer alignment. */
#include "umoe/nn.h"
#include "nn_check.h"


#define SAME(a, b, n, what) CHECK(memcmp(a, b, (n) * sizeof(float)) == 0, "%s differs between 1 and 2 threads", what)

static void test_threads_elementwise(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 100);
    size_t N = 300, F = 256, n = N * F; /* 76800 elements */
    float *g = nc_alloc(n), *u = nc_alloc(n), *d = nc_alloc(n), *gu = nc_alloc(2 * n);
    float *o[2], *dg[2], *du[2], *dgu[2], *p[2], *m[2], *v[2];
    nc_fill(&rng, g, n, 3); nc_fill(&rng, u, n, 1); nc_fill(&rng, d, n, 1); nc_fill(&rng, gu, 2 * n, 3);
    for (int t = 0; t < 2; t++) {
        nc_set_threads(t + 1);
        o[t] = nc_alloc(n); dg[t] = nc_alloc(n); du[t] = nc_alloc(n); dgu[t] = nc_alloc(2 * n);
        p[t] = nc_alloc(n); m[t] = nc_alloc(n); v[t] = nc_alloc(n);
        swiglu_forward(o[t], g, u, n);
        swiglu_backward(dg[t], du[t], d, g, u, n);
        swiglu_fused_backward(dgu[t], d, gu, N, F);
        memcpy(p[t], g, n * sizeof(float));
        adamw_update(p[t], d, m[t], v[t], n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1);
    }
    SAME(o[0], o[1], n, "swiglu"); SAME(dg[0], dg[1], n, "swiglu dg"); SAME(du[0], du[1], n, "swiglu du");
    SAME(dgu[0], dgu[1], 2 * n, "swiglu fused"); SAME(p[0], p[1], n, "adamw p"); SAME(v[0], v[1], n, "adamw v");
    for (int t = 0; t < 2; t++) {
        nc_free(o[t], n); nc_free(dg[t], n); nc_free(du[t], n); nc_free(dgu[t], 2 * n);
        nc_free(p[t], n); nc_free(m[t], n); nc_free(v[t], n);
    }
    nc_free(g, n); nc_free(u, n); nc_free(d, n); nc_free(gu, 2 * n);
    nc_set_threads(1);
}

static void test_threads_rows(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 101);
    size_t N = 512, C = 128, V = 256, E = 16, K = 4, NK = N * K;
    float *x = nc_alloc(N * C), *w = nc_alloc(C), *dout = nc_alloc(N * C), *logits = nc_alloc(N * V);
    float *rl = nc_alloc(N * E), *dloss = nc_alloc(N), *rdw = nc_alloc(NK), *big = nc_alloc(NK * C);
    int32_t *tgt = umoe_malloc(N * sizeof(int32_t), "tgt"), *idx[2], counts[16], offsets[17];
    int32_t *order = umoe_malloc(NK * sizeof(int32_t), "order");
    nc_fill(&rng, x, N * C, 2); nc_fill(&rng, w, C, 1); nc_fill(&rng, dout, N * C, 1); nc_fill(&rng, logits, N * V, 4);
    nc_fill(&rng, rl, N * E, 2); nc_fill(&rng, dloss, N, 1); nc_fill(&rng, rdw, NK, 1); nc_fill(&rng, big, NK * C, 1);
    for (size_t i = 0; i < N; i++) tgt[i] = (int32_t)(umoe_rng_u64(&rng) % V) - (i % 7 == 0 ? 300 : 0);
    float *o[2], *rs[2], *dx[2], *ls[2], *dl[2], *sc[2], *rw[2], *drl[2], *rows[2], *y[2], *drows[2], *dwa[2], *rp[2];
    for (int t = 0; t < 2; t++) {
        nc_set_threads(t + 1);
        o[t] = nc_alloc(N * C); rs[t] = nc_alloc(N); dx[t] = nc_alloc(N * C); ls[t] = nc_alloc(N);
        dl[t] = nc_alloc(N * V); sc[t] = nc_alloc(N * E); rw[t] = nc_alloc(NK); drl[t] = nc_alloc(N * E);
        rows[t] = nc_alloc(NK * C); y[t] = nc_alloc(N * C); drows[t] = nc_alloc(NK * C); dwa[t] = nc_alloc(NK);
        rp[t] = nc_alloc(N * C);
        idx[t] = umoe_malloc(NK * sizeof(int32_t), "idx");
        rmsnorm_forward(o[t], rs[t], x, w, N, C, 1e-5f);
        rmsnorm_backward(dx[t], NULL, dout, x, w, rs[t], N, C);
        crossentropy_forward(ls[t], logits, tgt, N, V);
        crossentropy_backward(dl[t], dloss, logits, tgt, N, V);
        router_forward(sc[t], idx[t], rw[t], rl, NULL, N, E, K, NN_SCORE_SIGMOID, 1, 2.0f);
        router_backward(drl[t], rdw, sc[t], sc[t], idx[t], rw[t], N, E, K, NN_SCORE_SIGMOID, 1, 2.0f);
        moe_group(counts, offsets, order, idx[t], N, K, E);
        moe_permute_forward(rows[t], x, order, NK, K, C);
        moe_unpermute_forward(y[t], big, rw[t], order, NK, K, C);
        moe_unpermute_backward(drows[t], dwa[t], dout, big, rw[t], order, NK, K, C);
        moe_permute_backward(y[t], drows[t], order, NK, K, C);
        rope_forward(rp[t], x, 4, N / 4, 2, C / 2, 16, 48, 10000.0f);
    }
    SAME(o[0], o[1], N * C, "rmsnorm"); SAME(dx[0], dx[1], N * C, "rmsnorm dx");
    SAME(ls[0], ls[1], N, "crossentropy"); SAME(dl[0], dl[1], N * V, "crossentropy grad");
    CHECK(memcmp(idx[0], idx[1], NK * sizeof(int32_t)) == 0, "router idx differs");
    SAME(rw[0], rw[1], NK, "router w"); SAME(drl[0], drl[1], N * E, "router grad");
    SAME(rows[0], rows[1], NK * C, "permute"); SAME(y[0], y[1], N * C, "unpermute + permute bwd");
    SAME(drows[0], drows[1], NK * C, "unpermute drows"); SAME(dwa[0], dwa[1], NK, "unpermute dw");
    SAME(rp[0], rp[1], N * C, "rope");
    for (int t = 0; t < 2; t++) {
        nc_free(o[t], N * C); nc_free(rs[t], N); nc_free(dx[t], N * C); nc_free(ls[t], N); nc_free(dl[t], N * V);
        nc_free(sc[t], N * E); nc_free(rw[t], NK); nc_free(drl[t], N * E); nc_free(rows[t], NK * C);
        nc_free(y[t], N * C); nc_free(drows[t], NK * C); nc_free(dwa[t], NK); nc_free(rp[t], N * C);
        umoe_free(idx[t], NK * sizeof(int32_t));
    }
    nc_free(x, N * C); nc_free(w, C); nc_free(dout, N * C); nc_free(logits, N * V); nc_free(rl, N * E);
    nc_free(dloss, N); nc_free(rdw, NK); nc_free(big, NK * C);
    umoe_free(tgt, N * sizeof(int32_t)); umoe_free(order, NK * sizeof(int32_t));
    nc_set_threads(1);
}

/* attention (parallel over heads and blocks forward, over kv heads backward) */
static void test_threads_attention(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 102);
    size_t B = 2, T = 200, H = 4, Hk = 2, Dk = 16, Dv = 8, nq = B * T * H * Dk, nk = B * T * Hk * Dk,
           nv = B * T * Hk * Dv, no = B * T * H * Dv;
    float *q = nc_alloc(nq), *k = nc_alloc(nk), *v = nc_alloc(nv), *d = nc_alloc(no);
    nc_fill(&rng, q, nq, 2); nc_fill(&rng, k, nk, 1); nc_fill(&rng, v, nv, 1); nc_fill(&rng, d, no, 1);
    float *o[2], *l[2], *dq[2], *dk[2], *dv[2];
    for (int t = 0; t < 2; t++) {
        nc_set_threads(t + 1);
        o[t] = nc_alloc(no); l[t] = nc_alloc(B * H * T); dq[t] = nc_alloc(nq); dk[t] = nc_alloc(nk); dv[t] = nc_alloc(nv);
        attention_forward(o[t], l[t], q, k, v, B, T, H, Hk, Dk, Dv, 0.25f);
        attention_backward(dq[t], dk[t], dv[t], d, q, k, v, o[t], l[t], B, T, H, Hk, Dk, Dv, 0.25f);
    }
    SAME(o[0], o[1], no, "attention out"); SAME(l[0], l[1], B * H * T, "lse");
    SAME(dq[0], dq[1], nq, "dq"); SAME(dk[0], dk[1], nk, "dk"); SAME(dv[0], dv[1], nv, "dv");
    for (int t = 0; t < 2; t++) {
        nc_free(o[t], no); nc_free(l[t], B * H * T); nc_free(dq[t], nq); nc_free(dk[t], nk); nc_free(dv[t], nv);
    }
    nc_free(q, nq); nc_free(k, nk); nc_free(v, nv); nc_free(d, no);
    nc_set_threads(1);
}

/* the same inputs at buffer offsets 0..15 floats (every 64-byte alignment) give the same bits: the sums are
 * not reordered by alignment peeling (nn_internal.h) */
/* matmul cuts a large GEMM into shape-determined chunks that run over the threads (and backward's din and
 * dw GEMMs side by side): same bits with 1 and 2 threads, for rows > columns (cut along rows), columns > rows
 * (cut along columns), a row count that is not a multiple of the 16-row chunk edge, bias, and the
 * overwrite (backward_set) and accumulate forms. */
static void test_threads_matmul(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 103);
    size_t shapes[3][3] = {{1000, 96, 160}, {72, 200, 900}, {600, 256, 544}}; /* N, C, O */
    for (int s = 0; s < 3; s++) {
        size_t N = shapes[s][0], C = shapes[s][1], O = shapes[s][2];
        float *in = nc_alloc(N * C), *w = nc_alloc(O * C), *b = nc_alloc(O), *d = nc_alloc(N * O);
        nc_fill(&rng, in, N * C, 1); nc_fill(&rng, w, O * C, 1); nc_fill(&rng, b, O, 1); nc_fill(&rng, d, N * O, 1);
        float *o[2], *di[2], *dw[2], *db[2];
        for (int t = 0; t < 2; t++) {
            nc_set_threads(t + 1);
            o[t] = nc_alloc(N * O); di[t] = nc_alloc(N * C); dw[t] = nc_alloc(O * C); db[t] = nc_alloc(O);
            nc_fill(&rng, di[t], N * C, 1); /* overwritten by backward_set */
            matmul_forward(o[t], in, w, b, N, C, O);
            matmul_backward_set(di[t], dw[t], db[t], d, in, w, N, C, O);
            matmul_backward(di[t], dw[t], db[t], d, in, w, N, C, O); /* accumulates: din and dw doubled */
        }
        SAME(o[0], o[1], N * O, "matmul forward"); SAME(di[0], di[1], N * C, "matmul din");
        SAME(dw[0], dw[1], O * C, "matmul dw"); SAME(db[0], db[1], O, "matmul dbias");
        /* and it is the product: one element of each against a double dot product */
        double ref = b[O - 1], rdw = 0;
        for (size_t c = 0; c < C; c++) ref += (double)in[(N - 1) * C + c] * w[(O - 1) * C + c];
        for (size_t n = 0; n < N; n++) rdw += 2.0 * d[n * O + O - 1] * in[n * C + C - 1];
        CHECK_CLOSE(o[1][N * O - 1], ref, 1e-4, 1e-4, "matmul forward value");
        CHECK_CLOSE(dw[1][O * C - 1], rdw, 1e-3, 1e-3, "matmul dw value");
        for (int t = 0; t < 2; t++) { nc_free(o[t], N * O); nc_free(di[t], N * C); nc_free(dw[t], O * C); nc_free(db[t], O); }
        nc_free(in, N * C); nc_free(w, O * C); nc_free(b, O); nc_free(d, N * O);
    }
    nc_set_threads(1);
}

static void test_alignment_independent(void) {
    umoe_rng rng; umoe_rng_seed(&rng, 103);
    size_t N = 3, V = 1000, T = 40, D = 24;
    float *base = nc_alloc(N * V + 16), *x = nc_alloc(N * V), *w = nc_alloc(V), *l0 = nc_alloc(N), *l1 = nc_alloc(N);
    float *o0 = nc_alloc(N * V), *o1 = nc_alloc(N * V), *r0 = nc_alloc(N), *r1 = nc_alloc(N);
    float *q = nc_alloc(T * D + 16), *at0 = nc_alloc(T * D), *at1 = nc_alloc(T * D), *ls0 = nc_alloc(T), *ls1 = nc_alloc(T);
    int32_t tgt[3] = {5, 999, 0};
    nc_fill(&rng, x, N * V, 5); nc_fill(&rng, w, V, 1);
    crossentropy_forward(l0, x, tgt, N, V);
    rmsnorm_forward(o0, r0, x, w, N, V, 1e-5f);
    attention_forward(at0, ls0, x, x + 2000, x + 1000, 1, T, 1, 1, D, D, 0.3f);
    for (size_t off = 1; off < 16; off++) {
        float *y = base + off;
        memcpy(y, x, N * V * sizeof(float));
        crossentropy_forward(l1, y, tgt, N, V);
        rmsnorm_forward(o1, r1, y, w, N, V, 1e-5f);
        memcpy(q + off, x, T * D * sizeof(float));
        attention_forward(at1, ls1, q + off, x + 2000, x + 1000, 1, T, 1, 1, D, D, 0.3f);
        CHECK(memcmp(l0, l1, N * sizeof(float)) == 0, "crossentropy depends on alignment (offset %zu)", off);
        CHECK(memcmp(r0, r1, N * sizeof(float)) == 0, "rmsnorm depends on alignment (offset %zu)", off);
        CHECK(memcmp(ls0, ls1, T * sizeof(float)) == 0, "attention lse depends on alignment (offset %zu)", off);
        CHECK(memcmp(at0, at1, T * D * sizeof(float)) == 0, "attention out depends on alignment (offset %zu)", off);
    }
    nc_free(base, N * V + 16); nc_free(x, N * V); nc_free(w, V); nc_free(l0, N); nc_free(l1, N);
    nc_free(o0, N * V); nc_free(o1, N * V); nc_free(r0, N); nc_free(r1, N);
    nc_free(q, T * D + 16); nc_free(at0, T * D); nc_free(at1, T * D); nc_free(ls0, T); nc_free(ls1, T);
}

int main(void) {
    RUN(test_threads_elementwise);
    RUN(test_threads_rows);
    RUN(test_threads_attention);
    RUN(test_threads_matmul);
    RUN(test_alignment_independent);
    TEST_MAIN_END();
}
