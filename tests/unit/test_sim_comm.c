/* test_sim_comm.c - alpha-beta collectives and the GEMM roofline against hand-computed values. */
#include "test.h"
#include "sim_fixtures.h"

static void test_allreduce_intra(void) {
    spec_hardware h;
    fx_hw_simple(&h);
    /* ring: 2 (n-1)/n x bytes / bw = 2 x 7/8 x 1e9 / 1e11 */
    CHECK_CLOSE(sim_allreduce_time(&h, 8, 8, 1e9), 0.0175, 1e-12, 0, "8 ranks in a node");
    h.intra_lat = 1e-6;
    CHECK_CLOSE(sim_allreduce_time(&h, 8, 8, 1e9), 0.0175 + 14e-6, 1e-12, 0, "plus 2(n-1) latency steps");
    CHECK(sim_allreduce_time(&h, 1, 1, 1e9) == 0, "one rank: nothing to do");
}

static void test_allreduce_inter(void) {
    spec_hardware h;
    fx_hw_simple(&h);
    /* 16 ranks, 8 per node: bandwidth min(intra 100, 8 x inter 10 = 80) GB/s */
    CHECK_CLOSE(sim_allreduce_time(&h, 16, 8, 1e9), 2 * 15.0 / 16 * 1e9 / 80e9, 1e-12, 0, "8 per node");
    /* one rank per node: the NIC's 10 GB/s */
    CHECK_CLOSE(sim_allreduce_time(&h, 4, 1, 1e9), 2 * 3.0 / 4 * 1e9 / 10e9, 1e-12, 0, "1 per node");
}

static void test_allgather_reducescatter(void) {
    spec_hardware h;
    fx_hw_simple(&h);
    CHECK_CLOSE(sim_allgather_time(&h, 4, 4, 4e9), 3.0 / 4 * 4e9 / 100e9, 1e-12, 0, "all-gather (n-1)/n");
    CHECK_CLOSE(sim_reducescatter_time(&h, 4, 4, 4e9), 3.0 / 4 * 4e9 / 100e9, 1e-12, 0, "reduce-scatter");
}

static void test_alltoall(void) {
    spec_hardware h;
    fx_hw_simple(&h);
    CHECK_CLOSE(sim_alltoall_time(&h, 8, 8, 8e9), 7.0 / 8 * 8e9 / 100e9, 1e-12, 0, "intra-node a2a");
    /* 32 ranks over 4 nodes: 24/32 leaves the node at 10 GB/s; 7/32 stays at 100 GB/s */
    CHECK_CLOSE(sim_alltoall_time(&h, 32, 8, 8e9), 24.0 / 32 * 8e9 / 10e9, 1e-12, 0, "flat a2a over 4 nodes");
    /* hierarchical: all-gather of 1 GB of tokens to 3 other nodes, then intra a2a of 7/8 of 8 GB */
    CHECK_CLOSE(sim_alltoall_hier_time(&h, 32, 8, 1e9, 8e9), 3 * 1e9 / 10e9 + 7.0 / 8 * 8e9 / 100e9, 1e-12, 0,
                "hierarchical a2a");
    /* the paper's case (PAPER-NOTES: 4 nodes x 8, top-8): hierarchical beats flat */
    CHECK(sim_alltoall_hier_time(&h, 32, 8, 1e9, 8e9) < sim_alltoall_time(&h, 32, 8, 8e9), "hier < flat");
}

static void test_p2p(void) {
    spec_hardware h;
    fx_hw_simple(&h);
    h.inter_lat = 5e-6;
    CHECK_CLOSE(sim_p2p_time(&h, 1, 1e8), 5e-6 + 1e8 / 10e9, 1e-12, 0, "inter-node p2p");
    CHECK_CLOSE(sim_p2p_time(&h, 0, 1e8), 1e8 / 100e9, 1e-12, 0, "intra-node p2p");
}

static void test_gemm_eff_table(void) {
    spec_hardware h;
    fx_hw_simple(&h);
    CHECK_CLOSE(sim_gemm_eff(&h, 1e10), 0.7, 0, 1e-15, "no table: documented default");
    h.n_gemm_eff = 3;
    h.gemm_eff_flops[0] = 1e8;  h.gemm_eff[0] = 0.1;
    h.gemm_eff_flops[1] = 1e10; h.gemm_eff[1] = 0.5;
    h.gemm_eff_flops[2] = 1e12; h.gemm_eff[2] = 0.9;
    CHECK_CLOSE(sim_gemm_eff(&h, 1e9), 0.3, 1e-12, 0, "halfway in log10 between 1e8 and 1e10");
    CHECK_CLOSE(sim_gemm_eff(&h, 1e11), 0.7, 1e-12, 0, "halfway between 1e10 and 1e12");
    CHECK_CLOSE(sim_gemm_eff(&h, 1e6), 0.1, 0, 1e-15, "clamped low");
    CHECK_CLOSE(sim_gemm_eff(&h, 1e14), 0.9, 0, 1e-15, "clamped high");
}

static void test_gemm_roofline(void) {
    spec_hardware h;
    fx_hw_simple(&h);
    h.n_gemm_eff = 1; h.gemm_eff_flops[0] = 1; h.gemm_eff[0] = 0.5;
    /* compute bound: 2 x 4096^3 FLOPs at 50 TFLOP/s */
    double f = 2.0 * 4096 * 4096 * 4096;
    CHECK_CLOSE(sim_gemm_time(&h, 4096, 4096, 4096, 16), f / 50e12, 1e-12, 0, "compute bound");
    /* memory bound: m = 1 (a GEMV): bytes 2 (k + k n + n) at 1 TB/s */
    double bytes = 2.0 * (4096 + 4096.0 * 4096 + 4096);
    CHECK_CLOSE(sim_gemm_time(&h, 1, 4096, 4096, 16), bytes / 1e12, 1e-12, 0, "memory bound");
    CHECK_CLOSE(sim_mem_time(&h, 1e9), 1e-3, 1e-12, 0, "1 GB at 1 TB/s");
}

int main(void) {
    RUN(test_allreduce_intra);
    RUN(test_allreduce_inter);
    RUN(test_allgather_reducescatter);
    RUN(test_alltoall);
    RUN(test_p2p);
    RUN(test_gemm_eff_table);
    RUN(test_gemm_roofline);
    TEST_MAIN_END();
}
