/* test_dist_ep.c - MPI tests of src/dist, run under mpirun by tests/mpi/test_dist.sh (any world size; the
 * layouts tried are those that divide it). Every rank generates deterministic tokens and routing from its
 * world rank, so any rank can recompute what any other rank sends: the serial reference of what each rank must
 * receive is built locally and compared bit for bit.
 * Prints one PASS/FAIL line per test on rank 0; a test passes only if it passed on every rank.
 * Modes: (none) all tests; --layout-errors (needs 6 ranks: E vs ranks-per-node that do not nest);
 * --hash-mismatch (rank 2's config hash differs: every rank must exit 2). */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "umoe/dist.h"

static int g_rank, g_size;

/* A test passes only if no rank recorded a failure. */
static void report(const char *name) {
    int f = t_fail_cur, any = 0;
    MPI_Allreduce(&f, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (g_rank == 0) {
        printf("%s %s\n", any ? "FAIL" : "PASS", name);
        fflush(stdout);
    }
    if (any) t_failed++;
    else t_passed++;
    t_fail_cur = 0;
}

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
/* exact small floats (multiples of 1/8 in [-250, 250]) so that 2x + e is exact too */
static float val(uint64_t a, uint64_t b, uint64_t c) {
    return (float)((int)(mix(a * 1000003u + b * 7919u + c) % 4001) - 2000) / 8.0f;
}

enum { SC_RANDOM, SC_SKEW, SC_ZERO };
static const char *sc_name[] = {"random", "skew", "zero"};
typedef struct {
    int E, rpn, X, scen, place; /* place: 0 default blocks, 1 round-robin owner[e] = e % E */
} cfg_t;
enum { C_W = 5 }; /* row width used by the tests */

typedef struct {
    int N, K;            /* tokens, top-k */
    size_t n;            /* token-assignment rows */
    int32_t *counts;     /* (X) */
    int32_t *row_token;  /* (n) */
    int32_t *row_expert; /* (n) */
    float *rows;         /* (n, C) token copies */
    float *rows_d;       /* (n, C) distinct rows (a gradient-like payload) */
} source;

/* What world rank w sends under cfg: tokens, routing, grouped rows (expert id ascending, then (token, k)). */
static void make_source(const cfg_t *c, int w, const int32_t *owner, source *s) {
    int E = c->E, X = c->X, s_ep = w % E;
    s->K = c->scen == SC_SKEW ? 2 : 3;
    s->N = c->scen == SC_ZERO && s_ep == 1 ? 0 : 4 + (w * 7 + c->scen) % 9;
    int K = s->K, N = s->N;
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)(N * K + 1));
    int32_t allowed[64];
    int na = 0;
    for (int e = 0; e < X; e++)
        if (c->scen != SC_ZERO || E == 1 || owner[e] != E - 1) allowed[na++] = e; /* rank E-1 receives nothing */
    umoe_rng rng;
    umoe_rng_seed(&rng, 1000 + (uint64_t)w * 31 + (uint64_t)c->scen);
    for (int t = 0; t < N; t++) {
        if (c->scen == SC_SKEW) {
            for (int k = 0; k < K; k++) idx[t * K + k] = X - 1; /* every assignment to one expert */
            continue;
        }
        int32_t pool[64];
        memcpy(pool, allowed, sizeof(int32_t) * (size_t)na);
        for (int k = 0; k < K; k++) { /* K distinct experts, partial Fisher-Yates */
            int r = k + (int)(umoe_rng_u64(&rng) % (uint64_t)(na - k));
            int32_t tmp = pool[k];
            pool[k] = pool[r];
            pool[r] = tmp;
            idx[t * K + k] = pool[k];
        }
    }
    s->n = (size_t)N * K;
    s->counts = calloc((size_t)X, sizeof(int32_t));
    s->row_token = malloc(sizeof(int32_t) * (s->n + 1));
    s->row_expert = malloc(sizeof(int32_t) * (s->n + 1));
    s->rows = malloc(sizeof(float) * (s->n * C_W + 1));
    s->rows_d = malloc(sizeof(float) * (s->n * C_W + 1));
    size_t i = 0;
    for (int e = 0; e < X; e++)
        for (int a = 0; a < N * K; a++)
            if (idx[a] == e) {
                s->counts[e]++;
                s->row_token[i] = a / K;
                s->row_expert[i] = e;
                for (int cc = 0; cc < C_W; cc++) {
                    s->rows[i * C_W + cc] = val((uint64_t)w, (uint64_t)(a / K), (uint64_t)cc);
                    s->rows_d[i * C_W + cc] = val((uint64_t)w + 5000, i, (uint64_t)cc);
                }
                i++;
            }
    free(idx);
}
static void free_source(source *s) {
    free(s->counts);
    free(s->row_token);
    free(s->row_expert);
    free(s->rows);
    free(s->rows_d);
}

/* Serial reference of what EP rank q of this EP group receives: local experts ascending, then sources
 * ascending, then each source's rows in its order. distinct: rows_d instead of rows. */
static size_t reference(const cfg_t *c, const int32_t *owner, int group, int q, int distinct, float *out,
                        int32_t *out_expert) {
    size_t r = 0;
    for (int e = 0; e < c->X; e++) {
        if (owner[e] != q) continue;
        for (int s = 0; s < c->E; s++) {
            source src;
            make_source(c, group * c->E + s, owner, &src);
            size_t off = 0;
            for (int e2 = 0; e2 < e; e2++) off += (size_t)src.counts[e2];
            for (int i = 0; i < src.counts[e]; i++) {
                if (out) memcpy(out + r * C_W, (distinct ? src.rows_d : src.rows) + (off + i) * C_W, sizeof(float) * C_W);
                if (out_expert) out_expert[r] = e;
                r++;
            }
            free_source(&src);
        }
    }
    return r;
}

/* Expected row bytes this rank sends: flat to other ranks of its node / other nodes; hierarchical across
 * nodes (distinct (token, node) pairs) and inside the node as a proxy for the sources with its local index. */
static void expected_traffic(const cfg_t *c, const dist_ctx *d, const int32_t *owner, const source *me,
                             uint64_t *flat_intra, uint64_t *flat_inter, uint64_t *hier_intra, uint64_t *hier_inter) {
    const uint64_t rb = C_W * sizeof(float);
    int Pl = d->ep_local, mynode = d->ep_node_idx;
    *flat_intra = *flat_inter = *hier_intra = *hier_inter = 0;
    for (size_t i = 0; i < me->n; i++) {
        int q = owner[me->row_expert[i]];
        if (q == d->ep_rank) continue;
        if (q / Pl == mynode) *flat_intra += rb;
        else *flat_inter += rb;
    }
    /* distinct (token, destination node) pairs with the node not mine */
    for (int b = 0; b < d->ep_nodes; b++) {
        if (b == mynode) continue;
        for (int t = 0; t < me->N; t++) {
            int hit = 0;
            for (size_t i = 0; i < me->n && !hit; i++)
                hit = me->row_token[i] == t && owner[me->row_expert[i]] / Pl == b;
            if (hit) *hier_inter += rb;
        }
    }
    /* as a proxy: rows of sources (a, my local index) to the other ranks of my node */
    for (int a = 0; a < d->ep_nodes; a++) {
        source s;
        make_source(c, d->ep_group * c->E + a * Pl + d->ep_local_rank, owner, &s);
        for (size_t i = 0; i < s.n; i++) {
            int q = owner[s.row_expert[i]];
            if (q / Pl == mynode && q != d->ep_rank) *hier_intra += rb;
        }
        free_source(&s);
    }
}

static void busy_work(void) { /* stand-in for shared-expert compute while the exchange is in flight */
    volatile double x = 0;
    for (int i = 0; i < 20000; i++) x += (double)i * 1e-9;
}

static void run_config(const cfg_t *c) {
    char label[160], name[256];
    snprintf(label, sizeof label, "[R%d,E%d,rpn%d,X%d,%s,%s]", g_size, c->E, c->rpn, c->X, sc_name[c->scen],
             c->place ? "roundrobin" : "blocks");
    dist_ctx d;
    dist_config dc = {c->E, c->X, c->rpn};
    umoe_status st = dist_init(&d, &dc);
    CHECK(st == UMOE_OK, "dist_init: %s", umoe_err);
    if (st) { snprintf(name, sizeof name, "dist_init%s", label); report(name); return; }
    int32_t owner[64];
    for (int e = 0; e < c->X; e++) owner[e] = c->place ? e % c->E : e / (c->X / c->E);
    source me;
    make_source(c, g_rank, owner, &me);
    ep_plan *pf = NULL, *ph = NULL;
    ep_plan_init(&pf, &d, EP_A2A_FLAT);
    ep_plan_init(&ph, &d, EP_A2A_HIER);
    const int32_t *own_arg = c->place ? owner : NULL; /* NULL: the default blocks */
    st = ep_plan_build(pf, me.counts, NULL, own_arg);
    CHECK(st == UMOE_OK, "flat build: %s", umoe_err);
    umoe_status st2 = ep_plan_build(ph, me.counts, me.row_token, own_arg);
    CHECK(st2 == UMOE_OK, "hier build: %s", umoe_err);
    if (st || st2) goto out;

    /* 1. flat dispatch delivers what the serial reference says, in the documented layout */
    size_t nref = reference(c, owner, d.ep_group, d.ep_rank, 0, NULL, NULL);
    float *ref = malloc(sizeof(float) * (nref * C_W + 1));
    int32_t *ref_e = malloc(sizeof(int32_t) * (nref + 1));
    reference(c, owner, d.ep_group, d.ep_rank, 0, ref, ref_e);
    size_t nr = ep_plan_n_recv(pf);
    CHECK(nr == nref, "n_recv %zu, reference %zu", nr, nref);
    CHECK(ep_plan_n_send(pf) == me.n, "n_send %zu, rows %zu", ep_plan_n_send(pf), me.n);
    float *rf = calloc(nr * C_W + 1, sizeof(float)), *rh = calloc(nr * C_W + 1, sizeof(float));
    st = ep_dispatch_forward(pf, rf, me.rows, C_W);
    CHECK(st == UMOE_OK, "flat dispatch: %s", umoe_err);
    if (nr == nref) CHECK(!memcmp(rf, ref, sizeof(float) * nr * C_W), "flat received rows differ from reference");
    const int32_t *roff = ep_plan_recv_offsets(pf);
    for (int j = 0; j < ep_plan_n_local(pf) && nr == nref; j++)
        for (int32_t r = roff[j]; r < roff[j + 1]; r++)
            CHECK(ref_e[r] == ep_plan_local_expert(pf, j), "row %d: local expert %d, reference expert %d", r,
                  ep_plan_local_expert(pf, j), ref_e[r]);
    /* imbalance = max / mean of received token-assignments over the EP group, against the reference */
    double imb = -1, imb_ref = 0;
    CHECK(ep_plan_imbalance(pf, &imb) == UMOE_OK, "imbalance: %s", umoe_err);
    {
        size_t mx = 0, sm = 0;
        for (int q = 0; q < c->E; q++) {
            size_t n = reference(c, owner, d.ep_group, q, 0, NULL, NULL);
            mx = n > mx ? n : mx;
            sm += n;
        }
        imb_ref = sm ? (double)mx / ((double)sm / c->E) : 0.0;
    }
    CHECK_CLOSE(imb, imb_ref, 1e-12, 0, "imbalance");
    snprintf(name, sizeof name, "ep_dispatch_flat_matches_reference%s", label);
    report(name);

    /* 2. hierarchical dispatch is bit-identical to flat; both send the expected bytes */
    CHECK(ep_plan_n_recv(ph) == nr, "hier n_recv %zu, flat %zu", ep_plan_n_recv(ph), nr);
    CHECK(!memcmp(ep_plan_recv_offsets(ph), roff, sizeof(int32_t) * (size_t)(ep_plan_n_local(pf) + 1)),
          "hier receive offsets differ");
    st = ep_dispatch_forward(ph, rh, me.rows, C_W);
    CHECK(st == UMOE_OK, "hier dispatch: %s", umoe_err);
    CHECK(!memcmp(rf, rh, sizeof(float) * nr * C_W), "hierarchical received rows differ from flat");
    uint64_t fi, fx, hi, hx;
    expected_traffic(c, &d, owner, &me, &fi, &fx, &hi, &hx);
    const ep_traffic *tf = ep_plan_traffic_last(pf), *th = ep_plan_traffic_last(ph);
    CHECK(tf->row_bytes_intra == fi && tf->row_bytes_inter == fx, "flat bytes intra %llu inter %llu, want %llu %llu",
          (unsigned long long)tf->row_bytes_intra, (unsigned long long)tf->row_bytes_inter,
          (unsigned long long)fi, (unsigned long long)fx);
    CHECK(th->row_bytes_intra == hi && th->row_bytes_inter == hx, "hier bytes intra %llu inter %llu, want %llu %llu",
          (unsigned long long)th->row_bytes_intra, (unsigned long long)th->row_bytes_inter,
          (unsigned long long)hi, (unsigned long long)hx);
    CHECK(th->row_bytes_inter <= tf->row_bytes_inter, "hierarchical sent more across nodes than flat");
    /* token ids from row contents give the same partition, hence the same plan and bytes */
    {
        int32_t *ids = malloc(sizeof(int32_t) * (me.n + 1));
        size_t nd = ep_rows_token_ids(me.rows, me.n, C_W, ids);
        CHECK(nd == (size_t)me.N, "distinct rows %zu, tokens %d", nd, me.N); /* every token has K rows */
        int same = 1;
        for (size_t i = 0; i < me.n; i++)
            for (size_t k = 0; k < i; k++) same &= (ids[i] == ids[k]) == (me.row_token[i] == me.row_token[k]);
        CHECK(same, "content ids partition rows differently from tokens");
        ep_plan *pc = NULL;
        ep_plan_init(&pc, &d, EP_A2A_HIER);
        st = ep_plan_build(pc, me.counts, ids, own_arg);
        CHECK(st == UMOE_OK, "content-id build: %s", umoe_err);
        float *rc = calloc(nr * C_W + 1, sizeof(float));
        st = st ? st : ep_dispatch_forward(pc, rc, me.rows, C_W);
        CHECK(st == UMOE_OK && !memcmp(rc, rf, sizeof(float) * nr * C_W), "content-id dispatch differs from flat");
        CHECK(ep_plan_traffic_last(pc)->row_bytes_inter == hx, "content-id inter bytes");
        free(rc);
        free(ids);
        ep_plan_free(pc);
    }
    snprintf(name, sizeof name, "ep_dispatch_hier_bit_identical_and_bytes%s", label);
    report(name);

    /* 3. combine is the exact reverse: experts compute y = 2x + e, combine returns it to each source row */
    float *y = malloc(sizeof(float) * (nr * C_W + 1));
    for (int j = 0; j < ep_plan_n_local(pf); j++)
        for (int32_t r = roff[j]; r < roff[j + 1]; r++)
            for (int cc = 0; cc < C_W; cc++)
                y[(size_t)r * C_W + cc] = 2.0f * rf[(size_t)r * C_W + cc] + (float)ep_plan_local_expert(pf, j);
    float *bf = calloc(me.n * C_W + 1, sizeof(float)), *bh = calloc(me.n * C_W + 1, sizeof(float));
    st = ep_combine_forward(pf, bf, y, C_W);
    CHECK(st == UMOE_OK, "flat combine: %s", umoe_err);
    st = ep_combine_forward(ph, bh, y, C_W);
    CHECK(st == UMOE_OK, "hier combine: %s", umoe_err);
    int bad = 0;
    for (size_t i = 0; i < me.n * C_W; i++)
        bad += bf[i] != 2.0f * me.rows[i] + (float)me.row_expert[i / C_W];
    CHECK(bad == 0, "%d combined values differ from 2x + e", bad);
    CHECK(!memcmp(bf, bh, sizeof(float) * me.n * C_W), "hierarchical combine differs from flat");
    /* dispatch backward = combine: identity round trip on the unmodified rows */
    st = ep_dispatch_backward(ph, bh, rf, C_W);
    CHECK(st == UMOE_OK && !memcmp(bh, me.rows, sizeof(float) * me.n * C_W), "combine(dispatch(x)) != x");
    snprintf(name, sizeof name, "ep_combine_reverses_dispatch%s", label);
    report(name);

    /* 4. distinct rows (combine backward) reach the reference under both plans */
    float *refd = malloc(sizeof(float) * (nref * C_W + 1));
    reference(c, owner, d.ep_group, d.ep_rank, 1, refd, NULL);
    st = ep_combine_backward(pf, rf, me.rows_d, C_W);
    CHECK(st == UMOE_OK, "flat combine backward: %s", umoe_err);
    st = ep_combine_backward(ph, rh, me.rows_d, C_W);
    CHECK(st == UMOE_OK, "hier combine backward: %s", umoe_err);
    if (nr == nref) {
        CHECK(!memcmp(rf, refd, sizeof(float) * nr * C_W), "flat distinct rows differ from reference");
        CHECK(!memcmp(rh, refd, sizeof(float) * nr * C_W), "hier distinct rows differ from reference");
    }
    snprintf(name, sizeof name, "ep_combine_backward_distinct_rows%s", label);
    report(name);

    /* 5. non-blocking start/wait with work in between == blocking */
    float *nb = calloc(nr * C_W + 1, sizeof(float)), *nbc = calloc(me.n * C_W + 1, sizeof(float));
    ep_plan *plans[2] = {pf, ph};
    for (int k = 0; k < 2; k++) {
        memset(nb, 0, sizeof(float) * nr * C_W);
        st = ep_start(plans[k], EP_OP_DISPATCH, nb, me.rows, C_W);
        CHECK(st == UMOE_OK, "start: %s", umoe_err);
        busy_work();
        CHECK(ep_start(plans[k], EP_OP_COMBINE, nbc, y, C_W) == UMOE_EINPUT, "second start while in flight accepted");
        for (int it = 0, done = 0; it < 50 && !done && !st; it++) { /* work in chunks, letting MPI progress */
            st = ep_progress(plans[k], &done);
            busy_work();
        }
        CHECK(st == UMOE_OK, "progress: %s", umoe_err);
        st = ep_wait(plans[k]);
        CHECK(st == UMOE_OK, "wait: %s", umoe_err);
        if (nr == nref) CHECK(!memcmp(nb, ref, sizeof(float) * nr * C_W), "%s non-blocking dispatch differs",
                              k ? "hier" : "flat");
        st = ep_start(plans[k], EP_OP_COMBINE, nbc, y, C_W);
        busy_work();
        st = st ? st : ep_wait(plans[k]);
        CHECK(st == UMOE_OK && !memcmp(nbc, bf, sizeof(float) * me.n * C_W), "%s non-blocking combine differs",
              k ? "hier" : "flat");
    }
    CHECK(ep_wait(pf) == UMOE_EINPUT, "wait without start accepted");
    snprintf(name, sizeof name, "ep_nonblocking_equals_blocking%s", label);
    report(name);

    free(nb);
    free(nbc);
    free(refd);
    free(y);
    free(bf);
    free(bh);
    free(rf);
    free(rh);
    free(ref);
    free(ref_e);
out:
    ep_plan_free(pf);
    ep_plan_free(ph);
    free_source(&me);
    dist_free(&d);
}

/* Layout checks: communicator sizes and the position of this rank in each. */
static void test_layout(int E, int rpn) {
    char name[128];
    dist_ctx d;
    dist_config dc = {E, 2 * E, rpn};
    umoe_status st = dist_init(&d, &dc);
    CHECK(st == UMOE_OK, "dist_init: %s", umoe_err);
    if (!st) {
        int s;
        MPI_Comm_size(d.ep, &s);
        CHECK(s == E, "ep comm size %d", s);
        MPI_Comm_size(d.edp, &s);
        CHECK(s == g_size / E, "edp comm size %d", s);
        int r;
        MPI_Comm_rank(d.edp, &r);
        CHECK(r == g_rank / E, "edp rank %d", r);
        MPI_Comm_size(d.node, &s);
        CHECK(s == rpn, "node comm size %d", s);
        MPI_Comm_size(d.ep_node, &s);
        CHECK(s == (rpn < E ? rpn : E), "ep_node size %d", s);
        MPI_Comm_size(d.ep_cross, &s);
        CHECK(s == E / (rpn < E ? rpn : E), "ep_cross size %d", s);
        MPI_Comm_rank(d.ep_cross, &r);
        CHECK(r == d.ep_node_idx, "ep_cross rank %d, node idx %d", r, d.ep_node_idx);
        /* ep_cross really spans nodes: its members' node ids all differ */
        int nid = d.node_id, *ids = malloc(sizeof(int) * (size_t)d.ep_nodes);
        MPI_Allgather(&nid, 1, MPI_INT, ids, 1, MPI_INT, d.ep_cross);
        for (int i = 1; i < d.ep_nodes; i++) CHECK(ids[i] != ids[i - 1], "ep_cross members share a node");
        free(ids);
        CHECK(d.node_id == g_rank / rpn, "node id %d", d.node_id);
        dist_free(&d);
    }
    snprintf(name, sizeof name, "dist_layout_communicators[R%d,E%d,rpn%d]", g_size, E, rpn);
    report(name);
}

static void expect_layout_error(int E, int X, int rpn, const char *needle) {
    char name[128];
    dist_ctx d;
    dist_config dc = {E, X, rpn};
    umoe_err[0] = 0;
    umoe_status st = dist_init(&d, &dc);
    CHECK(st == UMOE_EINPUT, "dist_init(E=%d, X=%d, rpn=%d) returned %d", E, X, rpn, (int)st);
    CHECK(strstr(umoe_err, needle) != NULL, "message '%s' lacks '%s'", umoe_err, needle);
    if (st == UMOE_OK) dist_free(&d);
    snprintf(name, sizeof name, "dist_init_rejects[R%d,E%d,X%d,rpn%d]", g_size, E, X, rpn);
    report(name);
}

static void test_plan_errors(void) {
    dist_ctx d;
    dist_config dc = {g_size, 2 * g_size, 1};
    umoe_status st = dist_init(&d, &dc);
    CHECK(st == UMOE_OK, "dist_init: %s", umoe_err);
    if (st) { report("ep_plan_rejects_bad_input"); return; }
    ep_plan *p;
    ep_plan_init(&p, &d, EP_A2A_HIER);
    int32_t counts[64] = {0}, owner[64];
    for (int e = 0; e < d.n_experts; e++) owner[e] = 0; /* rank 0 holds every expert */
    st = ep_plan_build(p, counts, (int32_t[]){0}, owner);
    CHECK(g_size == 1 ? st == UMOE_OK : st == UMOE_EINPUT, "overloaded placement: %d", (int)st);
    if (g_size > 1) CHECK(strstr(umoe_err, "holds") != NULL, "message: %s", umoe_err);
    st = ep_plan_build(p, counts, NULL, NULL);
    CHECK(st == UMOE_EINPUT && strstr(umoe_err, "row_token"), "hier without row_token: %d %s", (int)st, umoe_err);
    counts[0] = -1;
    st = ep_plan_build(p, counts, (int32_t[]){0}, NULL);
    CHECK(st == UMOE_EINPUT && strstr(umoe_err, "negative"), "negative count: %d %s", (int)st, umoe_err);
    ep_plan_free(p);
    ep_plan_init(&p, &d, EP_A2A_FLAT);
    float x = 0;
    CHECK(ep_start(p, EP_OP_DISPATCH, &x, &x, 4) == UMOE_EINPUT, "exchange on an unbuilt plan accepted");
    ep_plan_free(p);
    dist_free(&d);
    report("ep_plan_rejects_bad_input");
}

/* bucketed all-reduce == one-shot all-reduce (exactly on integer-valued data, whose sums are exact in any
 * order; within 1e-6 on random data, since MPI may pick a different reduction order per message size), and
 * both == the serial sum. Over world and over the expert-DP group. */
static void test_allreduce(int E) {
    char name[128];
    dist_ctx d;
    dist_config dc = {E, E, 1};
    umoe_status st = dist_init(&d, &dc);
    CHECK(st == UMOE_OK, "dist_init: %s", umoe_err);
    if (st) { report("dist_allreduce"); return; }
    enum { N = 1003 };
    static float a[N], b[N], ref[N];
    MPI_Comm comms[2] = {d.world, d.edp};
    for (int ci = 0; ci < 2; ci++) {
        int csize, crank;
        MPI_Comm_size(comms[ci], &csize);
        MPI_Comm_rank(comms[ci], &crank);
        for (int integer = 0; integer < 2; integer++) {
            size_t buckets[] = {1, 7, 64, 1003, 5000};
            for (size_t bi = 0; bi < 5; bi++) {
                for (int i = 0; i < N; i++) {
                    ref[i] = 0;
                    for (int r = 0; r < csize; r++) {
                        float v = integer ? (float)((int)(mix((uint64_t)r * N + i) % 2001) - 1000)
                                          : (float)umoe_rng_uniform(&(umoe_rng){{mix(r * 7 + 1), mix(i + 3), 5, 9}});
                        if (r == crank) a[i] = b[i] = v;
                        ref[i] += v;
                    }
                }
                dist_sync_stats ss = {0};
                st = dist_allreduce_sum(a, N, comms[ci], 0, NULL);
                CHECK(st == UMOE_OK, "one-shot: %s", umoe_err);
                st = dist_allreduce_sum(b, N, comms[ci], buckets[bi], &ss);
                CHECK(st == UMOE_OK, "bucketed: %s", umoe_err);
                CHECK(ss.calls == (N + buckets[bi] - 1) / buckets[bi], "calls %llu", (unsigned long long)ss.calls);
                CHECK(ss.bytes == N * sizeof(float), "bytes %llu", (unsigned long long)ss.bytes);
                int bad = 0;
                for (int i = 0; i < N; i++) {
                    if (integer) bad += a[i] != b[i] || a[i] != ref[i];
                    else bad += fabsf(a[i] - b[i]) > 1e-6f * fabsf(a[i]) + 1e-6f || fabsf(a[i] - ref[i]) > 1e-5f;
                }
                CHECK(bad == 0, "comm %d integer %d bucket %zu: %d elements differ", ci, integer, buckets[bi], bad);
            }
        }
    }
    /* doubles over the EP group: sum of ep ranks 0..E-1 and of each rank's world rank */
    double v[2] = {(double)d.ep_rank, (double)g_rank};
    st = dist_allreduce_sum_f64(v, 2, d.ep);
    CHECK(st == UMOE_OK, "f64: %s", umoe_err);
    CHECK(v[0] == E * (E - 1) / 2.0, "sum of ep ranks %g", v[0]);
    CHECK(v[1] == d.ep_group * E * E + E * (E - 1) / 2.0, "sum of world ranks in the EP group %g", v[1]);
    dist_free(&d);
    snprintf(name, sizeof name, "dist_allreduce_bucketed_equals_oneshot[R%d,E%d]", g_size, E);
    report(name);
}

static void test_hash_and_errors(void) {
    uint64_t h = dist_hash_bytes("abc", 3, 0);
    CHECK(h == 0xe71fa2190541574bull, "FNV-1a(abc) = %016llx", (unsigned long long)h); /* published test vector */
    CHECK(dist_hash_self_exe() != 0, "cannot hash /proc/self/exe");
    CHECK(dist_check_hash(MPI_COMM_WORLD, h, "config") == UMOE_OK, "equal hashes rejected: %s", umoe_err);
    if (g_size > 2) {
        umoe_status st = dist_check_hash(MPI_COMM_WORLD, g_rank == 2 ? h + 1 : h, "config");
        CHECK(st == UMOE_EINPUT, "mismatch not detected on rank %d", g_rank);
        if (g_rank == 0) CHECK(strstr(umoe_err, "config mismatch") && strstr(umoe_err, "(2)"), "message: %s", umoe_err);
    }
    {
        dist_ctx d0;
        dist_config dc0 = {1, 1, 1};
        CHECK(dist_init(&d0, &dc0) == UMOE_OK, "dist_init: %s", umoe_err);
        CHECK(dist_check_startup(&d0, dist_hash_bytes("cfg", 3, 0)) == UMOE_OK, "startup check: %s", umoe_err);
        dist_free(&d0);
    }
    report("dist_check_hash");
    /* MPI errors come back as a message naming rank and call, not an abort */
    dist_ctx d;
    dist_config dc = {1, 1, 1};
    CHECK(dist_init(&d, &dc) == UMOE_OK, "dist_init: %s", umoe_err);
    float x[4] = {0};
    umoe_log_set_level(UMOE_LOG_ERROR + 1); /* the expected error would be logged */
    umoe_status st = dist_allreduce_sum(x, 4, MPI_COMM_NULL, 0, NULL);
    umoe_log_set_level(UMOE_LOG_INFO);
    char want[32];
    snprintf(want, sizeof want, "rank %d: MPI_Allreduce failed", g_rank);
    CHECK(st == UMOE_EFAIL && strstr(umoe_err, want), "status %d, message: %s", (int)st, umoe_err);
    dist_free(&d);
    report("dist_mpi_error_becomes_message");
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    umoe_log_set_level(UMOE_LOG_WARN); /* buffer-growth lines would flood the test log */
    if (argc > 1 && !strcmp(argv[1], "--hash-mismatch")) {
        dist_ctx d;
        dist_config dc = {1, 1, 0};
        if (dist_init(&d, &dc)) return 1;
        umoe_status st = dist_check_hash(d.world, g_rank == 2 ? 7 : 5, "config");
        dist_free(&d);
        dist_finalize_exit(st ? UMOE_EXIT_INPUT : 0);
    }
    if (argc > 1 && !strcmp(argv[1], "--layout-errors")) {
        /* 6 ranks: EP 3 with 2 ranks per node does not nest; EP 4 does not divide 6 */
        expect_layout_error(3, 6, 2, "do not nest");
        expect_layout_error(4, 8, 0, "does not divide");
        MPI_Finalize();
        return t_failed ? 1 : 0;
    }
    /* bad layouts */
    if (g_size % 3) expect_layout_error(3, 6, 1, "does not divide");
    expect_layout_error(g_size, g_size > 1 ? 3 * g_size + 1 : 0, 1, "n_experts");
    if (g_size % 3) expect_layout_error(1, 4, 3, "ranks_per_node");
    expect_layout_error(0, 4, 1, "ep_size");
    /* good layouts and the EP exchange over every EP size and emulated node size that divide R */
    for (int E = 1; E <= g_size; E++) {
        if (g_size % E) continue;
        for (int rpn = 1; rpn <= g_size; rpn++) {
            if (g_size % rpn || (E % rpn && rpn % E)) continue;
            test_layout(E, rpn);
            for (int scen = 0; scen < 3; scen++) {
                if (scen == SC_ZERO && E < 2) continue;
                cfg_t c = {E, rpn, 8 > E ? 8 : E, scen, 0};
                run_config(&c);
                if (scen == SC_RANDOM && c.X / E > 1) { /* non-monotonic placement */
                    c.place = 1;
                    run_config(&c);
                }
            }
            if (E == g_size && rpn > 1 && rpn < E) { /* one local expert per rank: direct receive path */
                cfg_t c = {E, rpn, E, SC_RANDOM, 0};
                run_config(&c);
            }
        }
    }
    if (g_size == 1) { /* detected nodes (MPI_COMM_TYPE_SHARED) */
        cfg_t c = {1, 0, 4, SC_RANDOM, 0};
        run_config(&c);
    } else {
        cfg_t c = {g_size, 0, 2 * g_size, SC_RANDOM, 0}; /* one real node: hierarchical == flat intra-node */
        run_config(&c);
    }
    test_plan_errors();
    test_allreduce(1);
    if (g_size % 2 == 0) test_allreduce(2);
    test_hash_and_errors();
    /* every plan, buffer and communicator table freed: the counted allocator is back to zero */
    CHECK(umoe_alloc_current() == 0, "%zu bytes still allocated through umoe_malloc", umoe_alloc_current());
    report("dist_frees_everything");
    MPI_Finalize();
    return t_failed ? 1 : 0;
}
