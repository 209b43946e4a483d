/* dist_check.c - start-up safety for multi-rank runs: MPI errors turned into messages naming the rank and
 * the call, 64-bit hashes of bytes/files/this executable, and the all-ranks-agree hash check (issue #4:
 * mismatched binaries or configs across ranks are an input error, not a hang).
 * Does not: exit or abort (callers decide; see docs/dist.md). */
#ifdef UMOE_MPI
#include <stdlib.h>
#include <string.h>
#include "umoe/dist.h"

umoe_status dist_mpi_fail(int mpi_rc, const char *call, const char *file, int line) {
    char msg[MPI_MAX_ERROR_STRING] = "unknown MPI error";
    int len = 0, rank = -1, inited = 0;
    MPI_Error_string(mpi_rc, msg, &len);
    MPI_Initialized(&inited);
    if (inited) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    /* the call's name: the text up to its '(' */
    size_t n = strcspn(call, "(");
    snprintf(umoe_err, sizeof umoe_err, "rank %d: %.*s failed at %s:%d: %s", rank, (int)n, call, file, line, msg);
    LOG_ERROR("%s", umoe_err);
    return UMOE_EFAIL;
}

/* FNV-1a, 64-bit: offset basis 14695981039346656037, prime 1099511628211 (Fowler, Noll, Vo). `seed` is
 * xor-ed into the basis so hashes of several parts can be chained. */
uint64_t dist_hash_bytes(const void *p, size_t n, uint64_t seed) {
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ull ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

uint64_t dist_hash_file(const char *path) {
    size_t len = 0;
    char *s = umoe_read_file(path, &len);
    if (!s) return 0;
    uint64_t h = dist_hash_bytes(s, len, 0);
    umoe_free(s, len + 1);
    return h;
}

uint64_t dist_hash_self_exe(void) { return dist_hash_file("/proc/self/exe"); }

umoe_status dist_check_hash(MPI_Comm comm, uint64_t hash, const char *what) {
    int rank, size;
    DIST_MPI(MPI_Comm_rank(comm, &rank));
    DIST_MPI(MPI_Comm_size(comm, &size));
    uint64_t mine[2] = {hash, ~hash}, lo[2];
    DIST_MPI(MPI_Allreduce(mine, lo, 2, MPI_UINT64_T, MPI_MIN, comm));
    if (lo[0] == ~lo[1]) return UMOE_OK; /* min == max */
    /* mismatch: gather every hash to rank 0 to name the ranks that differ from it */
    uint64_t *all = rank == 0 ? umoe_malloc((size_t)size * sizeof *all, "hash check") : NULL;
    DIST_MPI(MPI_Gather(&hash, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, comm));
    if (rank == 0) {
        char list[256] = "";
        int n = 0, shown = 0;
        for (int r = 1; r < size; r++)
            if (all[r] != all[0]) {
                n++;
                if (shown < 8) {
                    size_t l = strlen(list);
                    snprintf(list + l, sizeof list - l, "%s%d", shown ? ", " : "", r);
                    shown++;
                }
            }
        umoe_fail("%s mismatch across MPI ranks: %d of %d ranks (%s%s) have %s hash different from rank 0's "
                  "%016llx; run the same binary and the same %s on every rank", what, n, size, list,
                  n > shown ? ", ..." : "", what, (unsigned long long)all[0], what);
        LOG_ERROR("%s", umoe_err);
        umoe_free(all, (size_t)size * sizeof *all);
    } else {
        umoe_fail("%s mismatch across MPI ranks (rank 0 reports which)", what);
    }
    return UMOE_EINPUT;
}

umoe_status dist_check_startup(const dist_ctx *d, uint64_t config_hash) {
    umoe_status st = dist_check_hash(d->world, dist_hash_self_exe(), "binary");
    return st ? st : dist_check_hash(d->world, config_hash, "config");
}

void dist_finalize_exit(int code) {
    fflush(stdout);
    fflush(stderr);
    MPI_Finalize();
    exit(code);
}

void *dist_buf_reserve(dist_buf *b, size_t bytes) {
    if (bytes <= b->cap && b->p) return b->p;
    if (bytes > b->cap) {
        int rank = -1;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        LOG_INFO("dist: rank %d: %s buffer grows %zu -> %zu bytes (new high-water mark)", rank,
                 b->what ? b->what : "?", b->cap, bytes);
        b->p = umoe_realloc(b->p, b->cap, bytes, b->what ? b->what : "dist buffer");
        b->cap = bytes;
    } else {
        b->p = umoe_malloc(0, b->what ? b->what : "dist buffer"); /* a valid pointer for 0 bytes */
    }
    return b->p;
}

void dist_buf_free(dist_buf *b) {
    umoe_free(b->p, b->cap);
    b->p = NULL;
    b->cap = 0;
}

void dist_placement_default(int32_t *owner, int n_experts, int ep_size) {
    int per = n_experts / ep_size;
    for (int e = 0; e < n_experts; e++) owner[e] = e / per;
}

umoe_status dist_placement_check(const int32_t *owner, int n_experts, int ep_size) {
    int per = n_experts / ep_size;
    int held[4096];
    if (ep_size > 4096) return umoe_fail("ep_size %d above the supported 4096", ep_size);
    memset(held, 0, sizeof held);
    for (int e = 0; e < n_experts; e++) {
        if (owner[e] < 0 || owner[e] >= ep_size)
            return umoe_fail("expert placement: expert %d placed on EP rank %d; allowed 0..%d", e, owner[e],
                             ep_size - 1);
        held[owner[e]]++;
    }
    for (int r = 0; r < ep_size; r++)
        if (held[r] != per)
            return umoe_fail("expert placement: EP rank %d holds %d experts; every rank must hold n_experts / "
                             "ep_size = %d", r, held[r], per);
    return UMOE_OK;
}
#endif
