/* loader.c - the training data loader: a train/validation split of one token stream, windows of
 * W = T + 1 + mtp tokens (inputs, then the targets shifted by 1 for the main head and by 1 + d for MTP
 * depth d), training windows visited in a seeded per-epoch permutation, validation windows in order.
 * The position (epoch, cursor, generator state before the epoch's shuffle) is all that a resume needs.
 * Does not: read files (token_data.c) or evaluate (evaluate.c). */
#include <math.h>
#include <string.h>
#include "umoe/train.h"

uint64_t train_windows_count(uint64_t begin, uint64_t end, int T, int W) {
    if (end < begin || end - begin < (uint64_t)W) return 0;
    return (end - begin - (uint64_t)W) / (uint64_t)T + 1;
}

void train_windows_read(const train_data *d, uint64_t begin, int T, int W, uint64_t first, int rows,
                        int32_t *tokens) {
    for (int r = 0; r < rows; r++) {
        uint64_t start = begin + (first + (uint64_t)r) * (uint64_t)T;
        UMOE_ASSERT(start + (uint64_t)W <= d->n);
        for (int j = 0; j < W; j++) tokens[(size_t)r * W + j] = (int32_t)train_data_at(d, start + (uint64_t)j);
    }
}

/* Uniform integer in [0, n): Lemire's multiply-shift (ACM TOMACS 2019), without the rejection step; the
 * bias is below n / 2^64, far under anything measurable here. */
static uint64_t below(umoe_rng *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)umoe_rng_u64(r) * n) >> 64);
}

/* Fisher-Yates shuffle (Knuth, TAOCP vol. 2, Algorithm 3.4.2 P) of the identity, from generator state g. */
static void build_perm(train_loader *l) {
    umoe_rng g = l->pos.rng;
    for (uint64_t i = 0; i < l->n_train_win; i++) l->perm[i] = i;
    for (uint64_t i = l->n_train_win; i > 1; i--) {
        uint64_t j = below(&g, i);
        uint64_t t = l->perm[i - 1];
        l->perm[i - 1] = l->perm[j];
        l->perm[j] = t;
    }
    l->rng_next = g;
}

umoe_status train_loader_init(train_loader *l, const train_data *d, int B, int T, int mtp, double val_frac,
                              uint64_t seed) {
    memset(l, 0, sizeof *l);
    if (B < 1 || T < 1 || mtp < 0) return umoe_fail("loader: B = %d, T = %d, mtp = %d not allowed", B, T, mtp);
    if (!(val_frac >= 0 && val_frac < 1))
        return umoe_fail("validation fraction %g not allowed (0 <= fraction < 1)", val_frac);
    l->d = d;
    l->B = B;
    l->T = T;
    l->W = T + 1 + mtp;
    uint64_t W = (uint64_t)l->W, n_val = 0;
    if (val_frac > 0) {
        n_val = (uint64_t)ceil((double)d->n * val_frac);
        if (n_val < W) n_val = W;
    }
    if (d->n < W + n_val)
        return umoe_fail("data file %s is too short: %llu tokens, but one training window needs %llu (T + 1 + mtp "
                         "= %d + 1 + %d)%s%llu more for validation (fraction %g); use a longer file or a smaller "
                         "--seq", d->path, (unsigned long long)d->n, (unsigned long long)W, T, mtp,
                         n_val ? " and " : "", (unsigned long long)n_val, val_frac);
    l->train_end = d->n - n_val;
    l->val_begin = l->train_end;
    l->val_end = d->n;
    l->n_train_win = train_windows_count(0, l->train_end, T, l->W);
    l->n_val_win = train_windows_count(l->val_begin, l->val_end, T, l->W);
    l->perm = umoe_malloc(l->n_train_win * sizeof *l->perm, "loader permutation");
    umoe_rng_seed(&l->pos.rng, seed);
    build_perm(l);
    return UMOE_OK;
}

void train_loader_free(train_loader *l) {
    if (l->perm) umoe_free(l->perm, l->n_train_win * sizeof *l->perm);
    l->perm = NULL;
}

void train_loader_seek(train_loader *l, const train_loader_pos *p) {
    l->pos = *p;
    build_perm(l);
}

void train_loader_next_shard(train_loader *l, int32_t *tokens, int rank, int world) {
    UMOE_ASSERT(world >= 1 && rank >= 0 && rank < world);
    for (int k = 0; k < world * l->B; k++) {
        if (l->pos.cursor == l->n_train_win) { /* next epoch: a fresh permutation */
            l->pos.epoch++;
            l->pos.cursor = 0;
            l->pos.rng = l->rng_next;
            build_perm(l);
        }
        uint64_t w = l->perm[l->pos.cursor++];
        if (k / l->B == rank) train_windows_read(l->d, 0, l->T, l->W, w, 1, tokens + (size_t)(k % l->B) * l->W);
    }
}

void train_loader_next(train_loader *l, int32_t *tokens) { train_loader_next_shard(l, tokens, 0, 1); }
