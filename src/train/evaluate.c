/* evaluate.c - forward-only evaluation over consecutive windows of a token range (the validation split,
 * or a whole file for `umoe eval`): the token-weighted mean of the model's next-token cross-entropy and of
 * its total loss. Perplexity = exp(mean cross-entropy) is left to the caller.
 * Does not: train, shuffle, or touch gradients. */
#include "umoe/train.h"

void train_evaluate(umoe_model *m, const train_data *d, uint64_t begin, uint64_t end, int B, int T,
                    long max_batches, train_eval_result *r) {
    int W = T + 1 + model_spec(m)->mtp;
    uint64_t n_win = train_windows_count(begin, end, T, W);
    int32_t *tok = umoe_malloc((size_t)B * W * sizeof *tok, "eval tokens");
    double lm = 0, tot = 0, ntok = 0;
    long batches = 0;
    for (uint64_t first = 0; first < n_win; first += (uint64_t)B) {
        if (max_batches > 0 && batches == max_batches) break;
        int rows = n_win - first < (uint64_t)B ? (int)(n_win - first) : B;
        train_windows_read(d, begin, T, W, first, rows, tok);
        model_losses L;
        model_forward(m, tok, rows, T, &L);
        double w = (double)rows * T; /* the model's losses are means over rows x T positions */
        lm += L.lm_loss * w;
        tot += L.loss * w;
        ntok += w;
        batches++;
    }
    umoe_free(tok, (size_t)B * W * sizeof *tok);
    r->tokens = ntok;
    r->lm_loss = ntok > 0 ? lm / ntok : 0;
    r->loss = ntok > 0 ? tot / ntok : 0;
}
