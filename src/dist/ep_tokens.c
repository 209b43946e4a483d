/* ep_tokens.c - token ids from row contents, for callers that hand the EP layer grouped rows without saying
 * which token each row copies (e.g. model.h's model_moe_ops hooks): rows that are bytewise equal get the same
 * id, so the hierarchical dispatch sends one copy per node. Equal bytes are the only thing that matters for
 * the dispatch: expanding one copy delivers exactly the bytes the flat path would.
 * Does not: look at routing (ids are numbered by first appearance in the given rows). */
#ifdef UMOE_MPI
#include <string.h>
#include "umoe/dist.h"

static uint64_t row_hash(const float *r, size_t C) {
    uint64_t h = 0x9e3779b97f4a7c15ull;
    const uint32_t *w = (const uint32_t *)(const void *)r;
    for (size_t c = 0; c < C; c++) {
        h ^= w[c];
        h *= 0xbf58476d1ce4e5b9ull; /* splitmix64 multiplier (Steele, Lea, Flood 2014) */
        h ^= h >> 29;
    }
    return h;
}

size_t ep_rows_token_ids(const float *rows, size_t n, size_t C, int32_t *row_token) {
    size_t cap = 16;
    while (cap < 2 * n) cap <<= 1;
    int32_t *slot = umoe_malloc(cap * sizeof(int32_t), "ep token id table"); /* row index of the first copy */
    memset(slot, 0xff, cap * sizeof(int32_t));                             /* -1: empty */
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        const float *r = rows + i * C;
        size_t h = (size_t)row_hash(r, C) & (cap - 1);
        for (;;) {
            int32_t j = slot[h];
            if (j < 0) {
                slot[h] = (int32_t)i;
                row_token[i] = (int32_t)distinct++;
                break;
            }
            if (!memcmp(rows + (size_t)j * C, r, C * sizeof(float))) {
                row_token[i] = row_token[j];
                break;
            }
            h = (h + 1) & (cap - 1);
        }
    }
    umoe_free(slot, cap * sizeof(int32_t));
    return distinct;
}
#endif
