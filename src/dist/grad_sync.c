/* grad_sync.c - gradient synchronisation: in-place sum all-reduce of one flat float block over a communicator,
 * in buckets (dense grads over all ranks, each expert's grads over its expert-DP group; issue #4). Buckets
 * bound the size of one MPI call so a later version can start each as soon as its grads are ready.
 * Does not: scale by 1/DP (the caller owns the loss normalisation) or know which parameters a block holds. */
#ifdef UMOE_MPI
#include <limits.h>
#include "umoe/dist.h"

umoe_status dist_allreduce_sum(float *x, size_t n, MPI_Comm comm, size_t bucket_floats, dist_sync_stats *stats) {
    double t0 = umoe_now();
    size_t b = bucket_floats ? bucket_floats : (size_t)INT_MAX;
    if (b > (size_t)INT_MAX) b = (size_t)INT_MAX;
    uint64_t calls = 0;
    for (size_t off = 0; off < n; off += b) {
        size_t len = n - off < b ? n - off : b;
        DIST_MPI(MPI_Allreduce(MPI_IN_PLACE, x + off, (int)len, MPI_FLOAT, MPI_SUM, comm));
        calls++;
    }
    if (stats) {
        stats->calls += calls;
        stats->bytes += (uint64_t)n * sizeof(float);
        stats->seconds += umoe_now() - t0;
    }
    return UMOE_OK;
}

umoe_status dist_allreduce_sum_f64(double *x, size_t n, MPI_Comm comm) {
    for (size_t off = 0; off < n; off += (size_t)INT_MAX) {
        size_t len = n - off < (size_t)INT_MAX ? n - off : (size_t)INT_MAX;
        DIST_MPI(MPI_Allreduce(MPI_IN_PLACE, x + off, (int)len, MPI_DOUBLE, MPI_SUM, comm));
    }
    return UMOE_OK;
}
#endif
