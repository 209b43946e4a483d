/* embedding.c - token embedding lookup: out (N,C) = wte[tokens[n]], backward dwte[tokens[n]] += dout[n].
 * The backward scatters serially in row order (repeated tokens add up deterministically).
 * Does not: check tokens against the vocabulary size (the data loader does; a negative id is an invariant
 * failure here). */
#include <string.h>
#include "umoe/common.h"
#include "umoe/nn.h"

void embedding_forward(float *out, const int32_t *tokens, const float *wte, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++) {
        UMOE_ASSERT(tokens[n] >= 0);
        memcpy(out + n * C, wte + (size_t)tokens[n] * C, C * sizeof(float));
    }
}

void embedding_backward(float *dwte, const float *dout, const int32_t *tokens, size_t N, size_t C) {
    for (size_t n = 0; n < N; n++) {
        UMOE_ASSERT(tokens[n] >= 0);
        float *g = dwte + (size_t)tokens[n] * C;
        const float *d = dout + n * C;
        for (size_t c = 0; c < C; c++) g[c] += d[c];
    }
}
