/* cost_comm.c - alpha-beta model of collectives per tier (inside a node / across nodes).
 * Pure functions, no allocation. Does not: decide which collectives a strategy issues (cost_layer.c, step.c).
 * Sources (docs/cost-model.md, "Communication"): ring all-reduce moves 2(n-1)/n of the buffer per rank,
 * all-gather and reduce-scatter (n-1)/n (Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms for
 * clusters of workstations", JPDC 2009; NCCL's "bus bandwidth" convention, nccl-tests PERFORMANCE.md).
 * A group spanning nodes with k ranks per node runs k rings/channels, one per NIC, so its bandwidth is
 * min(intra, k x inter) per rank (rail-optimised clusters: one NIC per device). */
#include "umoe/sim.h"

static double bw_intra(const spec_hardware *h) { return h->intra_bw * (h->comm_eff_intra > 0 ? h->comm_eff_intra : 1.0); }
static double bw_inter(const spec_hardware *h) { return h->inter_bw * (h->comm_eff_inter > 0 ? h->comm_eff_inter : 1.0); }

/* Bandwidth (bytes/s per rank) and per-step latency of a ring over n ranks, k per node. */
static void ring_bw(const spec_hardware *h, int n, int k, double *bw, double *lat) {
    if (k >= n) { *bw = bw_intra(h); *lat = h->intra_lat; return; }
    double bi = bw_intra(h), be = bw_inter(h) * (k > 0 ? k : 1);
    *bw = bi < be ? bi : be;
    *lat = h->inter_lat;
}

double sim_allreduce_time(const spec_hardware *h, int n, int k, double bytes) {
    if (n <= 1 || bytes <= 0) return 0;
    double bw, lat;
    ring_bw(h, n, k, &bw, &lat);
    return 2.0 * (n - 1) * lat + 2.0 * (n - 1) / n * bytes / bw;
}

double sim_allgather_time(const spec_hardware *h, int n, int k, double bytes) {
    if (n <= 1 || bytes <= 0) return 0;
    double bw, lat;
    ring_bw(h, n, k, &bw, &lat);
    return (n - 1) * lat + (double)(n - 1) / n * bytes / bw;
}

double sim_reducescatter_time(const spec_hardware *h, int n, int k, double bytes) {
    return sim_allgather_time(h, n, k, bytes);
}

/* Flat all-to-all: each rank sends bytes/n to every rank; (n-k)/n of it leaves the node over the rank's own
 * NIC, (k-1)/n stays on the intra-node links; both tiers run at once, the slower one sets the time. */
double sim_alltoall_time(const spec_hardware *h, int n, int k, double bytes) {
    if (n <= 1 || bytes <= 0) return 0;
    if (k > n) k = n;
    double t_intra = (double)(k - 1) / n * bytes / bw_intra(h);
    double t_inter = (double)(n - k) / n * bytes / bw_inter(h);
    double lat = k < n ? h->inter_lat : h->intra_lat;
    return lat + (t_intra > t_inter ? t_intra : t_inter);
}

/* Hierarchical: n ranks over g = n/k nodes. Step 1: all-gather of this rank's tokens among the g ranks with
 * the same local index (each sends its tokens once to every other node: (g-1) x tok_bytes over its NIC).
 * Step 2: intra-node all-to-all of the token-assignments now present in the node whose experts live in the
 * node: the rank holds g x asg_bytes of assignments of which 1/g target its node, spread over k ranks. */
double sim_alltoall_hier_time(const spec_hardware *h, int n, int k, double tok_bytes, double asg_bytes) {
    if (n <= 1) return 0;
    if (k >= n) return sim_alltoall_time(h, n, n, asg_bytes);
    int g = n / (k > 0 ? k : 1);
    double t_ag = h->inter_lat * (g - 1) + (g - 1) * tok_bytes / bw_inter(h);
    double t_a2a = h->intra_lat + (double)(k - 1) / k * asg_bytes / bw_intra(h);
    return t_ag + t_a2a;
}

double sim_p2p_time(const spec_hardware *h, int inter_node, double bytes) {
    if (bytes <= 0) return 0;
    return inter_node ? h->inter_lat + bytes / bw_inter(h) : h->intra_lat + bytes / bw_intra(h);
}
